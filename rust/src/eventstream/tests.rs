use proptest::prelude::*;

use super::codec::{encode, DecodeError, Decoder, HeaderValue, Message, MAX_MESSAGE};

fn decode_chunks(chunks: &[&[u8]]) -> Result<Vec<Message>, DecodeError> {
    let mut d = Decoder::default();
    let mut out = Vec::new();
    for c in chunks {
        out.extend(d.feed(c)?);
    }
    d.finish()?;
    Ok(out)
}

fn bedrock_event(event: &str, payload: &[u8]) -> Vec<u8> {
    let headers = vec![
        (
            ":event-type".to_owned(),
            HeaderValue::String(event.to_owned()),
        ),
        (
            ":content-type".to_owned(),
            HeaderValue::String("application/json".to_owned()),
        ),
        (
            ":message-type".to_owned(),
            HeaderValue::String("event".to_owned()),
        ),
    ];
    encode(&headers, payload).unwrap()
}

#[test]
fn empty_message_matches_the_aws_reference_encoding() {
    // aws-c-event-stream test vector `encoded/positive/empty_message`.
    let wire = [
        0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff,
    ];
    assert_eq!(encode(&[], b"").unwrap(), wire);
    let msgs = decode_chunks(&[&wire]).unwrap();
    assert_eq!(
        msgs,
        vec![Message {
            headers: vec![],
            payload: vec![]
        }]
    );
}

#[test]
fn every_header_type_round_trips() {
    let headers = vec![
        ("t".to_owned(), HeaderValue::Bool(true)),
        ("f".to_owned(), HeaderValue::Bool(false)),
        ("b".to_owned(), HeaderValue::Byte(-3)),
        ("s".to_owned(), HeaderValue::Short(-300)),
        ("i".to_owned(), HeaderValue::Int(40_000_000)),
        ("l".to_owned(), HeaderValue::Long(-5_000_000_000)),
        ("y".to_owned(), HeaderValue::Bytes(vec![0, 1, 2, 255])),
        ("str".to_owned(), HeaderValue::String("héllo".to_owned())),
        ("ts".to_owned(), HeaderValue::Timestamp(1_700_000_000_000)),
        ("u".to_owned(), HeaderValue::Uuid([7; 16])),
    ];
    let wire = encode(&headers, b"{\"x\":1}").unwrap();
    let msgs = decode_chunks(&[&wire]).unwrap();
    assert_eq!(msgs[0].headers, headers);
    assert_eq!(msgs[0].payload, b"{\"x\":1}");
}

#[test]
fn a_stream_cut_inside_a_message_is_truncated() {
    let wire = bedrock_event("messageStop", b"{}");
    let mut d = Decoder::default();
    assert!(d.feed(&wire[..wire.len() - 1]).unwrap().is_empty());
    assert!(matches!(d.finish(), Err(DecodeError::Truncated { .. })));
}

#[test]
fn oversized_messages_are_refused_from_the_prelude() {
    let wire = bedrock_event("contentBlockDelta", &[b'a'; 200]);
    let mut d = Decoder::new(100);
    // Only the prelude is needed to refuse it: nothing beyond 12 bytes gets buffered.
    assert!(matches!(
        d.feed(&wire[..12]),
        Err(DecodeError::BadLength { .. })
    ));
    // The error is sticky.
    assert!(d.feed(b"").is_err());
    assert_eq!(Decoder::new(usize::MAX).max_message(), MAX_MESSAGE);
}

#[test]
fn a_headers_length_past_the_message_is_refused() {
    let mut wire = bedrock_event("x", b"{}");
    let total = wire.len() as u32;
    wire[4..8].copy_from_slice(&total.to_be_bytes());
    let crc = crc32fast::hash(&wire[..8]);
    wire[8..12].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        decode_chunks(&[&wire]),
        Err(DecodeError::BadHeadersLength { .. })
    ));
}

fn arb_header() -> impl Strategy<Value = (String, HeaderValue)> {
    let value = prop_oneof![
        any::<bool>().prop_map(HeaderValue::Bool),
        any::<i8>().prop_map(HeaderValue::Byte),
        any::<i16>().prop_map(HeaderValue::Short),
        any::<i32>().prop_map(HeaderValue::Int),
        any::<i64>().prop_map(HeaderValue::Long),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(HeaderValue::Bytes),
        ".{0,20}".prop_map(HeaderValue::String),
        any::<i64>().prop_map(HeaderValue::Timestamp),
        any::<[u8; 16]>().prop_map(HeaderValue::Uuid),
    ];
    ("[:a-z-]{1,20}", value)
}

fn arb_message() -> impl Strategy<Value = Message> {
    (
        proptest::collection::vec(arb_header(), 0..5),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(headers, payload)| Message { headers, payload })
}

fn wire_of(msgs: &[Message]) -> Vec<u8> {
    msgs.iter()
        .flat_map(|m| encode(&m.headers, &m.payload).unwrap())
        .collect()
}

fn split_at_cuts(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut prev = 0;
    for p in points.into_iter().chain(std::iter::once(data.len())) {
        out.push(data[prev..p].to_vec());
        prev = p;
    }
    out
}

proptest! {
    #[test]
    fn any_split_gives_the_same_messages(
        msgs in proptest::collection::vec(arb_message(), 0..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let wire = wire_of(&msgs);
        let chunks = split_at_cuts(&wire, &cuts);
        let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(decode_chunks(&refs).unwrap(), msgs.clone());
        // Byte by byte too.
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        prop_assert_eq!(decode_chunks(&bytes).unwrap(), msgs);
    }

    #[test]
    fn a_corrupted_byte_is_detected(
        msgs in proptest::collection::vec(arb_message(), 1..4),
        at in any::<usize>(),
        flip in 1u8..=255,
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut wire = wire_of(&msgs);
        let i = at % wire.len();
        wire[i] ^= flip;
        let chunks = split_at_cuts(&wire, &cuts);
        let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        // Any single-byte change breaks a CRC (or the lengths): never silently different messages.
        prop_assert!(decode_chunks(&refs).is_err());
    }
}
