use std::sync::{Arc, OnceLock};

use proptest::prelude::*;

use super::*;

/// One engine for every test (compiling it is slow in a debug build); the JSON masking tests share it.
pub(super) fn engine() -> &'static Arc<Engine> {
    static E: OnceLock<Arc<Engine>> = OnceLock::new();
    E.get_or_init(|| Arc::new(Engine::new(&[]).unwrap()))
}

const ALL: Categories = !0;

/// Both wake-up passes, to compare (with the feature, `engine()` is the Hyperscan one).
#[cfg(feature = "hyperscan")]
fn both_engines() -> &'static (Engine, Engine) {
    static E: OnceLock<(Engine, Engine)> = OnceLock::new();
    E.get_or_init(|| {
        (
            Engine::with_wakeup(&[], Wakeup::Prefilter).unwrap(),
            Engine::with_wakeup(&[], Wakeup::Hyperscan).unwrap(),
        )
    })
}

#[cfg(feature = "hyperscan")]
#[test]
fn hyperscan_finds_what_the_prefilter_finds() {
    let text = "Dear Mr Smith, card 4111 1111 1111 1111 exp 09/27, mail jane@acme.io, \
        AWS_ACCESS_KEY_ID=AKIAQWERTYUIOPASDFGH, IBAN DE89 3704 0044 0532 0130 00, ssn 123-45-6788, \
        DATABASE_URL=postgres://app:s3cr3tPw@db.internal:5432/app and ghp_ token sk-ant-api03-x";
    let (pure, hs) = both_engines();
    for cats in [DEFAULT_CATEGORIES, ALL] {
        let want = pure.scan(text, cats);
        assert!(want.len() >= 7, "{want:?}");
        // Hyperscan's pass over the whole text, whether or not these categories would pick it.
        assert_eq!(hs.scan_with(text, cats, true), want);
        assert_eq!(hs.scan(text, cats), want);
    }
}

fn kinds(text: &str) -> Vec<(String, String)> {
    let e = engine();
    e.scan(text, ALL)
        .iter()
        .map(|f| (e.kind(f.rule).to_owned(), text[f.start..f.end].to_owned()))
        .collect()
}

fn mask(text: &str) -> String {
    let e = engine();
    let f = e.scan(text, DEFAULT_CATEGORIES);
    Masker::default().apply(e, text, &f)
}

#[test]
fn finds_each_category() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "mail me at jane.doe@acme-corp.io please",
            "EMAIL",
            "jane.doe@acme-corp.io",
        ),
        ("call +44 20 7946 0958 today", "PHONE", "+44 20 7946 0958"),
        ("office (415) 555-2671 ext", "PHONE", "(415) 555-2671"),
        ("SSN: 123-45-6788.", "SSN", "123-45-6788"),
        ("my ssn is 123456788", "SSN", "123456788"),
        (
            "server at 203.0.113.42 is down",
            "IP_ADDRESS",
            "203.0.113.42",
        ),
        ("DOB: 04/07/1985", "DATE_OF_BIRTH", "04/07/1985"),
        (
            "card 4111 1111 1111 1111 exp",
            "CARD",
            "4111 1111 1111 1111",
        ),
        ("mc 2221-0000-0000-0009.", "CARD", "2221-0000-0000-0009"),
        ("CVV: 123", "CVV", "123"),
        ("expires 09/27", "CARD_EXPIRY", "09/27"),
        (
            "IBAN DE89 3704 0044 0532 0130 00 thanks",
            "IBAN",
            "DE89 3704 0044 0532 0130 00",
        ),
        ("routing number 021000021", "ABA_ROUTING", "021000021"),
        ("account no. 123456789012", "BANK_ACCOUNT", "123456789012"),
        ("SWIFT: DEUTDEFF500", "SWIFT_BIC", "DEUTDEFF500"),
        (
            "aws key AKIAQWERTYUIOPASDFGH here",
            "AWS_ACCESS_KEY",
            "AKIAQWERTYUIOPASDFGH",
        ),
        (
            "DATABASE_URL=postgres://app:s3cr3tPw@db.internal:5432/app",
            "URL_PASSWORD",
            "s3cr3tPw",
        ),
        ("password = \"hunter22\"", "PASSWORD", "hunter22"),
        (
            "my portfolio balance is $1,234,567.89",
            "FINANCIAL_AMOUNT",
            "$1,234,567.89",
        ),
        ("I bought 500 shares of AAPL", "TRADE", "500 shares of AAPL"),
    ];
    for (text, kind, value) in cases {
        let got = kinds(text);
        assert!(
            got.iter().any(|(k, v)| k == kind && v == value),
            "{text:?}: expected {kind} {value:?}, got {got:?}"
        );
    }
}

#[test]
fn ignores_lookalikes() {
    for text in [
        "commit 37003c714fb6ea2f9bd2cfbae49f6a6f896ed368 fixed it",
        "id 732f51d4-033a-47be-baf4-c4d2a22f9368",
        "build 858-12-4680 deployed",
        "release v2 build no. 858-12-4680",
        "firmware 123-45-6788 flashed",
        "ts 1500000000009 ms",
        "version 10.7.31.9 released",
        "pi is 3.14159265358979323846",
        "use sk-... as your key",
        "AKIAIOSFODNN7EXAMPLE",
        "The key idea is simple, and the token count is 512.",
        "password: ${DB_PASSWORD}",
        "Meet me at 12:30:45 near gate 4.",
    ] {
        assert_eq!(kinds(text), vec![], "{text:?}");
    }
}

/// A number with a card issuer's prefix and length and a valid Luhn digit is a card whatever words stand
/// before it: the words that label order, ticket and invoice numbers are exactly where cards get pasted.
#[test]
fn a_card_number_is_found_whatever_words_surround_it() {
    let cases: &[(&str, &str)] = &[
        (
            "Refund order 88123 to card 4111 1111 1111 1111",
            "4111 1111 1111 1111",
        ),
        (
            "ticket #4411: customer card 378282246310005",
            "378282246310005",
        ),
        ("order 4111111111111111 shipped", "4111111111111111"),
        ("invoice 5555555555554444 is overdue", "5555555555554444"),
        ("serial: 6011111111111117", "6011111111111117"),
        ("tracking 3530111333300000 timestamp", "3530111333300000"),
        (
            "INV-2026-0042 paid with 2221-0000-0000-0009",
            "2221-0000-0000-0009",
        ),
        ("ORD-4111111111111111", "4111111111111111"),
        (
            "https://shop.test/orders/4111111111111111",
            "4111111111111111",
        ),
        ("pan,4111111111111111,5555555555554444", "5555555555554444"),
        ("pan,4111111111111111,5555555555554444", "4111111111111111"),
    ];
    for (text, value) in cases {
        let got = kinds(text);
        assert!(
            got.iter().any(|(k, v)| k == "CARD" && v == value),
            "{text:?}: expected CARD {value:?}, got {got:?}"
        );
        assert!(!mask(text).contains(value), "{text:?}");
    }
    // Numbers, not cards: only the characters glued to the digits decide.
    for text in [
        "ratio 0.4111111111111111",
        "4111111111111111.5 units",
        "x = 1e-4111111111111111",
    ] {
        assert!(
            kinds(text).iter().all(|(k, _)| k != "CARD"),
            "{text:?}: {:?}",
            kinds(text)
        );
    }
}

/// Context lowers a bare SSN shape only when the word right before it labels it as another number; a cue
/// word anywhere else, or an SSN cue, leaves it an SSN.
#[test]
fn a_label_right_before_an_ssn_shape_makes_it_another_number() {
    for (text, value) in [
        ("build 858-12-4680, SSN 123-45-6788", "123-45-6788"),
        ("SSN for build 858-12-4680", "858-12-4680"),
        ("built on 2026-11-23; employee 123-45-6788", "123-45-6788"),
        ("ticket 12 123-45-6788", "123-45-6788"),
        ("the build failed; her number is 123-45-6788", "123-45-6788"),
    ] {
        let got = kinds(text);
        assert!(
            got.iter().any(|(k, v)| k == "SSN" && v == value),
            "{text:?}: expected SSN {value:?}, got {got:?}"
        );
    }
    for text in [
        "build 858-12-4680",
        "Build #858-12-4680",
        "part number: 123-45-6788",
        "version 858 12 4680",
    ] {
        assert!(
            kinds(text).iter().all(|(k, _)| k != "SSN"),
            "{text:?}: {:?}",
            kinds(text)
        );
    }
}

/// The digits of a valid card for one of the issuer prefixes and lengths, Luhn digit last.
fn luhn_card(prefix: &str, len: usize, body: &[u8]) -> String {
    let mut d: Vec<u8> = prefix.bytes().map(|b| b - b'0').collect();
    d.extend(body.iter().take(len - 1 - d.len()).map(|b| b % 10));
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 0 {
                if x * 2 > 9 {
                    x * 2 - 9
                } else {
                    x * 2
                }
            } else {
                x
            }
        })
        .sum();
    d.push(((10 - sum % 10) % 10) as u8);
    d.iter().map(|x| char::from(b'0' + x)).collect()
}

#[test]
fn an_ipv6_address_is_found_whatever_surrounds_it() {
    for text in [
        "host 2001:db8:85a3::8a2e:370:7334 down",
        "host fe80::1ff:fe23:4567:890a",
        "[KEY_1] fe80::1ff:fe23",
    ] {
        assert!(
            kinds(text).iter().any(|(k, _)| k == "IP_ADDRESS"),
            "{text:?}"
        );
    }
    // A letters-only form is never one, with or without a digit nearby (the rule wakes on digits).
    for text in [
        "AKIAQWERTYUIOPASDFGH A::A",
        "[AWS_ACCESS_KEY_1] A::A",
        "dead::beef:cafe 7",
    ] {
        assert!(
            !kinds(text).iter().any(|(k, _)| k == "IP_ADDRESS"),
            "{text:?}"
        );
    }
}

#[test]
fn cue_words_wake_rules_only_at_a_word_start() {
    // Every alternative of a cue rule's regex has its own wake-up literal, so skipping cues inside longer
    // words ("ms" in "streams", "ach" in "each", "token" in "tokens" without an assignment) loses nothing.
    let found = kinds("The streams were checked by Dr Smith, and each ACH 021000021 too.");
    assert!(
        found.contains(&("PERSON".into(), "Smith".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&("ABA_ROUTING".into(), "021000021".into())),
        "{found:?}"
    );
    let prose =
        "Items, programs and teams: each author of the tokens keeps a passage of monkey business.";
    assert_eq!(kinds(prose), vec![]);
    assert_eq!(
        kinds("auth_token = 'Zx9Qw7Lp2Rt5Vb8N'"),
        vec![("SECRET".into(), "Zx9Qw7Lp2Rt5Vb8N".into())]
    );
}

#[test]
fn placeholders_are_numbered_per_value() {
    let out = mask("a@x.io, b@y.io, a@x.io");
    assert_eq!(out, "[EMAIL_1], [EMAIL_2], [EMAIL_1]");
}

#[test]
fn pem_block_is_one_finding() {
    let body = "MIIEowIBAAKCAQEA1234567890abcdefghijklmnopqrstuvwxyzABCDEFGH\nIJKLMNOPQRSTUVWXYZ";
    let text =
        format!("key:\n-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\nok");
    assert_eq!(mask(&text), "key:\n[PRIVATE_KEY_1]\nok");
    // Cut short: masked to the end rather than leaked.
    assert_eq!(
        mask("x -----BEGIN PRIVATE KEY-----\nMIIEow"),
        "x [PRIVATE_KEY_1]"
    );
}

#[test]
fn custom_patterns_are_validated() {
    let bad = Engine::new(&[("EMP".into(), "EMP-(".into())]);
    assert!(bad.err().unwrap().contains("not a valid regex"));
    let empty = Engine::new(&[("EMP".into(), "x*".into())]);
    assert!(empty.err().unwrap().contains("empty string"));
    let e = Engine::new(&[("employee_id".into(), r"EMP-[0-9]{6}".into())]).unwrap();
    let f = e.scan("ticket for EMP-123456", ALL);
    assert_eq!(e.kind(f[0].rule), "EMPLOYEE_ID");
}

fn stream_all(text: &str, cuts: &[usize]) -> String {
    let mut s = StreamScanner::new(engine().clone(), DEFAULT_CATEGORIES, Masker::default());
    let mut out = String::new();
    let mut last = 0;
    for &c in cuts {
        out.push_str(&s.feed(&text[last..c]));
        last = c;
    }
    out.push_str(&s.feed(&text[last..]));
    out.push_str(&s.finish());
    out
}

const SAMPLES: &[&str] = &[
    "Card: 4111 1111 1111 1111, exp 09/27, CVV 123. Mail jane.doe@acme-corp.io",
    "IBAN GB29 NWBK 6016 1331 9268 19 and routing 021000021 for the wire",
    "export OPENAI_API_KEY=sk-proj-abcDEF123ghiJKL456mnoPQR789stuVWX012yzaBCD345efgHIJ678",
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n",
    "I bought 500 shares of AAPL; my SSN is 123-45-6788 and phone +1 415 555 2671.",
    "postgres://admin:Sup3rS3cret@db.prod:5432/app?sslmode=require",
];

#[test]
fn every_split_of_samples_never_leaks() {
    for text in SAMPLES {
        let whole = mask(text);
        let values: Vec<String> = engine()
            .scan(text, DEFAULT_CATEGORIES)
            .iter()
            .map(|f| text[f.start..f.end].to_owned())
            .collect();
        assert!(!values.is_empty(), "{text:?}");
        let bounds: Vec<usize> = (1..text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        for &i in &bounds {
            let out = stream_all(text, &[i]);
            for v in &values {
                assert!(
                    !out.contains(v.as_str()),
                    "split {i} of {text:?} leaked {v:?}: {out:?}"
                );
            }
            assert_eq!(out, whole, "split at {i}");
        }
        // One character at a time.
        assert_eq!(stream_all(text, &bounds), whole);
    }
}

#[test]
fn text_without_spaces_is_not_held_back() {
    let mut s = StreamScanner::new(engine().clone(), DEFAULT_CATEGORIES, Masker::default());
    assert_eq!(s.feed("我的邮箱是"), "我的邮箱是");
    assert_eq!(s.feed("jane@ac"), "");
    assert_eq!(s.feed("me.io，谢谢"), "[EMAIL_1]，谢谢");
    assert_eq!(s.feed("余额€1,2"), "余额");
    assert_eq!(s.feed("34"), "");
    assert_eq!(s.finish(), "€1,234");
}

#[test]
fn a_long_spaceless_text_is_not_held_to_its_end() {
    let key = "ghp_".to_owned() + &"A".repeat(30);
    let blob = "QUJD".repeat(5000) + &key + &"QUJD".repeat(500);
    let mut s = StreamScanner::new(engine().clone(), DEFAULT_CATEGORIES, Masker::default());
    let mut out = String::new();
    for piece in blob.as_bytes().chunks(64) {
        out.push_str(&s.feed(std::str::from_utf8(piece).unwrap()));
        assert!(s.held() <= 8192 + 64);
    }
    assert!(out.len() > 10_000);
    out.push_str(&s.finish());
    assert_eq!(out, mask(&blob));
}

fn text_strategy() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("4111 1111 1111 1111".to_owned()),
        Just("jane@acme.io".to_owned()),
        Just("DE89370400440532013000".to_owned()),
        Just("password: hunter22".to_owned()),
        Just("SSN 123-45-6788".to_owned()),
        Just("build 858-12-4680".to_owned()),
        Just("order 4111111111111111".to_owned()),
        Just("-----BEGIN PRIVATE KEY-----\n".to_owned()),
        Just("[EMAIL_1]".to_owned()),
        Just("NL36WJDV7289075496".to_owned()),
        Just("AKIAQWERTYUIOPASDFGH".to_owned()),
        Just("sk-ant-api03-".to_owned()),
        Just("routing 021000021".to_owned()),
        Just("swift DEUTDEFF".to_owned()),
        Just("token: aB3dE5gH7jK9".to_owned()),
        Just("https://u:pw12345@h.io".to_owned()),
        "[ -~]{0,12}",
        "\\PC{0,6}",
        "[一-龥]{1,8}",
        "[0-9 .:/@-]{0,10}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn scan_is_total_and_well_formed(text in text_strategy()) {
        let f = engine().scan(&text, ALL);
        for w in f.windows(2) {
            prop_assert!(w[0].end <= w[1].start);
        }
        for x in &f {
            prop_assert!(x.start < x.end);
            prop_assert!(text.is_char_boundary(x.start) && text.is_char_boundary(x.end));
        }
        let (chars, offs) = (text.chars().count(), engine::char_offsets(&text, &f));
        for (s, e) in offs {
            prop_assert!(s < e && e <= chars);
        }
    }

    #[test]
    fn prefilter_loses_nothing(text in text_strategy()) {
        let e = engine();
        prop_assert_eq!(e.scan_with(&text, DEFAULT_CATEGORIES, false), e.scan_with(&text, DEFAULT_CATEGORIES, true));
    }

    #[cfg(feature = "hyperscan")]
    #[test]
    fn hyperscan_wakes_the_same_rules(text in text_strategy()) {
        let (pure, hs) = both_engines();
        for cats in [DEFAULT_CATEGORIES, ALL] {
            prop_assert_eq!(hs.scan_with(&text, cats, true), pure.scan(&text, cats));
        }
    }

    #[test]
    fn masking_is_idempotent(text in text_strategy()) {
        let once = mask(&text);
        prop_assert_eq!(mask(&once), once.clone());
    }

    /// Whatever words stand before or after it, a valid card number is masked, whole or streamed.
    #[test]
    fn context_never_hides_a_card(
        lead in prop::sample::select(vec![
            "order", "Order #", "ticket #4411:", "invoice", "INV-2026-0042", "serial", "tracking", "shipment",
            "isbn", "imei", "timestamp", "build", "version", "ref", "Refund order 88123 to card", "",
        ]),
        tail in prop::sample::select(vec!["", " shipped", ", thanks", ". Order 88123", " (ticket 4411)"]),
        brand in prop::sample::select(vec![
            ("4", 16), ("4", 19), ("4", 13), ("51", 16), ("2720", 16), ("34", 15), ("37", 15), ("6011", 16),
            ("65", 16), ("3528", 16), ("36", 14), ("62", 16),
        ]),
        body in prop::collection::vec(0u8..10, 18),
        sep in prop::sample::select(vec!["", " ", "-"]),
        cut in 0usize..80,
    ) {
        let digits = luhn_card(brand.0, brand.1, &body);
        prop_assume!(!digits.bytes().all(|b| b == digits.as_bytes()[0]));
        let value = if sep.is_empty() {
            digits.clone()
        } else {
            digits.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(sep)
        };
        let text = format!("{lead} {value}{tail}");
        let found = kinds(&text);
        prop_assert!(found.iter().any(|(k, v)| k == "CARD" && *v == value), "{:?}: {:?}", text, found);
        let masked = mask(&text);
        prop_assert!(!masked.contains(&value) && !masked.contains(&digits), "{:?}", masked);
        let cut = engine::floor_boundary(&text, cut.min(text.len()));
        prop_assert_eq!(stream_all(&text, &[cut]), masked);
    }

    #[test]
    fn streaming_never_leaks(text in text_strategy(), cuts in prop::collection::vec(0usize..200, 0..6)) {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| engine::floor_boundary(&text, c)).collect();
        cuts.sort_unstable();
        // What the client gets is exactly what masking the whole text gives, wherever the cuts fall.
        prop_assert_eq!(stream_all(&text, &cuts), mask(&text));
    }
}

#[test]
fn builtin_patterns_are_made_ascii() {
    assert_eq!(
        engine::asciify(r"\b[\w.-]\s[^\s\]]\\w"),
        r"(?-u:\b)[0-9A-Za-z_.-][\t\n\x0B\x0C\r ][^\t\n\x0B\x0C\r \]]\\w"
    );
}

/// Digit-heavy text: numbers in every shape the digit rules know, near misses of them, separators, hex
/// words, capitals, and the values themselves.
fn digits_strategy() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[0-9]{1,5}",
        "[0-9]{6,20}",
        "[ .:/()+,_-]{1,2}",
        "[ -]",
        "[A-Z]{2}[0-9]{2}",
        "[a-fA-F0-9]{1,4}:",
        "[a-z]{1,6}",
        "[0-9]{3}[ -][0-9]{2}[ -][0-9]{4}",
        "\\(?[2-9][0-9]{2}\\)?[ .-]?[2-9][0-9]{2}[ .-][0-9]{4}",
        "1[ .-][2-9][0-9]{2}[ .-][0-9]{3}[ .-][0-9]{4}",
        "\\+[1-9][0-9]{0,2}[ .-]?[0-9]{1,5}[ .-]?[0-9]{2,6}",
        "0[1-9][0-9]{2,3} [0-9]{3,4} ?[0-9]{3,4}",
        "0[1-9]([ .][0-9]{2}){4}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        "([0-9a-f]{1,4}::?){1,7}[0-9a-f]{0,4}",
        "::[0-9a-f]{0,4}(:[0-9a-f]{1,4}){0,3}",
        "[0-9]{4}([ -]?[0-9]{4}){3}",
        "2026-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]\\.[0-9]{3}Z",
        Just("4111 1111 1111 1111".to_owned()),
        Just("378282246310005".to_owned()),
        Just("DE89 3704 0044 0532 0130 00".to_owned()),
        Just("GB29NWBK60161331926819".to_owned()),
        Just("123-45-6788".to_owned()),
        Just("(212) 555-0187".to_owned()),
        Just("+44 20 7946 0958".to_owned()),
        Just("192.168.10.20".to_owned()),
        Just("2001:db8::8a2e:370:7334".to_owned()),
        Just("fe80::1".to_owned()),
        Just("ssn ".to_owned()),
        Just("card ".to_owned()),
        Just("build ".to_owned()),
        Just("version ".to_owned()),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// The digit shapes lose nothing: the same findings as every digit rule's regex searched over the whole
    /// window around each cluster of digits.
    #[test]
    fn digit_shapes_find_what_searching_whole_windows_finds(text in digits_strategy()) {
        let e = engine();
        for cats in [DEFAULT_CATEGORIES, ALL, Category::Pii.bit(), Category::Pci.bit() | Category::Banking.bit()] {
            prop_assert_eq!(e.scan(&text, cats), e.scan_searching_digit_windows(&text, cats), "{:?}", text);
        }
    }

    #[test]
    fn digit_shapes_on_mixed_text(text in text_strategy()) {
        let e = engine();
        prop_assert_eq!(e.scan(&text, ALL), e.scan_searching_digit_windows(&text, ALL));
    }
}

#[test]
fn digit_shapes_on_texts_that_hold_each_value() {
    let e = engine();
    let texts = [
        "card 4111 1111 1111 1111, amex 378282246310005, ssn 123-45-6788, call (212) 555-0187 or +44 20 7946 0958",
        "ip 192.168.10.20 and 2001:db8::8a2e:370:7334, fe80::1%eth0, IBAN DE89 3704 0044 0532 0130 00",
        "uk 01632 960 961, fr 01 23 45 67 89, 1-212-555-0187, 1 (212) 555-0187, 212.555.0187",
        r#"{"ts":"2026-12-06T04:15:04.123Z","client":"203.0.113.9","status":200,"card":"4111111111111111"}"#,
    ];
    for t in texts {
        let want = e.scan_searching_digit_windows(t, ALL);
        assert!(want.len() >= 2, "{t}: {want:?}");
        assert_eq!(e.scan(t, ALL), want, "{t}");
    }
}

/// Long digit-dense text (logs, code, tables) with cue words and token prefixes among the numbers: long
/// enough for the automaton's walk to be cut into lanes, with literals across the lanes' edges.
fn long_digits_strategy() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "account ",
        "routing: ",
        "dob ",
        "exp ",
        "balance $",
        "sk-ant-api03-",
        "ghp_",
        "AKIA",
        "password=",
        "key: ",
        "https://",
        "-us",
        ":AA",
        "Q~",
        "eyJ",
        "aws_secret=",
        "GR1348941",
        "401k ",
        "Dear Mr ",
        "ms",
        "-----BEGIN",
        "BEGIN SSH2 ENCRYPTED PRIVATE KEY",
        "name: ",
        "\"status\":",
        "_ms\":",
        "é",
        "\n",
    ]);
    let piece = prop_oneof![
        3 => digits_strategy(),
        2 => words.prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The compact table's walk (in lanes over long windows) reports the crate's search's matches in its
    /// order, wakes the same rules on the same windows, and the scan finds what the search over whole
    /// digit windows finds.
    #[test]
    fn lanes_wake_what_one_walk_wakes(text in long_digits_strategy(), cut in 0usize..400) {
        let e = engine();
        // The table's walk reports the crate's matches in the crate's order, on the whole text (in lanes
        // when long) and on a window inside it.
        let (walked, searched) = e.literal_matches(&text, 0, text.len());
        prop_assert_eq!(walked, searched);
        let (ws, we) = (cut.min(text.len()), text.len().saturating_sub(cut / 3).max(cut.min(text.len())));
        let (walked, searched) = e.literal_matches(&text, ws, we);
        prop_assert_eq!(walked, searched);
        for cats in [DEFAULT_CATEGORIES, ALL] {
            prop_assert_eq!(e.wake_windows(&text, cats, true), e.wake_windows(&text, cats, false), "{:?}", text);
        }
        // (The oracle wakes rules from the hot windows only: person names, which need the whole text, off.)
        let no_names = ALL & !Category::Names.bit();
        prop_assert_eq!(e.scan(&text, no_names), e.scan_searching_digit_windows(&text, no_names));
    }
}

/// Code and config with keys, assignments and values: the rules searched anchored near their cue words
/// (`near_cue`: secret and password assignments, a token after its cue), several cues to a window,
/// keys inside longer names, values that fail and pass their checks.
fn assignments_strategy() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "api_key",
        "apiKey",
        "API-KEY",
        "x.apikey",
        "auth_key",
        "AccessKey",
        "secret_key",
        "private-key",
        "PrivateKey",
        "client_secret",
        "ClientSecret",
        "secret",
        "tokens",
        "max_token",
        "Token",
        "credentials",
        "auth",
        "DB_PASSWORD",
        "password",
        "passwd",
        "Pwd",
        "pass",
        "passphrase",
        "bypass",
        "api key",
        "access key",
        "private key",
        "keyboard",
        "monkey",
    ]);
    let glue = prop::sample::select(vec![
        "=",
        ": ",
        " = ",
        ":=",
        "=>",
        "==",
        "\"",
        "'",
        "`",
        " ",
        "_",
        "-",
        ".",
        "\n",
        " is ",
        ", ",
        "(",
        "é",
        "tokens: int = ",
    ]);
    let piece = prop_oneof![
        3 => keys.prop_map(str::to_owned),
        3 => glue.prop_map(str::to_owned),
        1 => "[A-Za-z0-9+/_=.~-]{1,40}",
        1 => "[A-Za-z0-9]{16,40}",
        1 => "[a-z]{2,10}",
        1 => "[0-9]{1,5}",
        1 => Just("S3cr3tP@ssw0rd!xyz".to_owned()),
        1 => Just("hunter22".to_owned()),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// The rules run anchored at key starts near their cues find what their regex searched over the
    /// whole window finds.
    #[test]
    fn near_cue_rules_find_what_searching_whole_windows_finds(text in assignments_strategy()) {
        let e = engine();
        for cats in [DEFAULT_CATEGORIES, Category::Secrets.bit(), ALL & !Category::Names.bit()] {
            prop_assert_eq!(e.scan(&text, cats), e.scan_searching_digit_windows(&text, cats), "{:?}", text);
        }
    }
}

#[test]
fn near_cue_rules_on_code_with_several_cues() {
    let e = engine();
    let texts = [
        "def f(tokens: int = 0, max_token: int = 5):\n    api_key = \"Zx8Qw3Lp9Rt2Vb7Nm4Kd\"\n",
        "tokens: int = 0; DB_PASSWORD=S3cr3tP@ssw0rd!xyz; client_secret: 'q8Vn2Lw9Xr4Tz7Pk'",
        "the access key is AbCdEfGh12345678IjKlMnOp and the token: 0 and bypass=no",
    ];
    for t in texts {
        let want = e.scan_searching_digit_windows(t, ALL & !Category::Names.bit());
        assert!(!want.is_empty(), "{t}");
        assert_eq!(e.scan(t, ALL & !Category::Names.bit()), want, "{t}");
    }
}
