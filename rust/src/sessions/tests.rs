use super::*;

fn conv(key: &str, system: Option<&str>, messages: &str) -> (Conversation, u64) {
    let mut c = Conversation::new(&[key.as_bytes(), b""]);
    if let Some(s) = system {
        c.system(s.as_bytes()).unwrap();
    }
    c.messages(messages.as_bytes()).unwrap();
    let full = c.finish();
    (c, full)
}

fn place(index: &mut Index, key: &str, messages: &str, id: &str) -> (Conversation, Placement) {
    let (c, full) = conv(key, None, messages);
    let req = Request {
        request_id: id,
        explicit: None,
        previous: None,
    };
    let p = index.place(&c, full, &req, 0.0);
    (c, p)
}

fn answer(index: &mut Index, c: &Conversation, p: &Placement, id: &str, api: Api, body: &str) {
    assert_eq!(&*p.request, id);
    let (state, rid) = c.answer(api, body.as_bytes()).unwrap();
    index.answered(p, state, true, rid.as_deref(), 0.0);
}

#[test]
fn escapes_and_key_order_do_not_matter() {
    let (_, a) = conv(
        "k",
        None,
        r#"[{"role":"user","content":"caf\u00e9\n"},{"content":"ok","role":"assistant","tool_calls":null}]"#,
    );
    let (_, b) = conv(
        "k",
        None,
        "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"café\\n\"}]},{\"role\":\"assistant\",\"content\":\"ok\"}]",
    );
    assert_eq!(a, b);
    let (_, other_key) = conv("j", None, r#"[{"role":"user","content":"café\n"}]"#);
    let (_, same_key) = conv("k", None, r#"[{"role":"user","content":"café\n"}]"#);
    assert_ne!(other_key, same_key);
}

#[test]
fn surrogate_pairs_decode() {
    let (_, a) = conv("k", None, r#"[{"role":"user","content":"\ud83e\udd80"}]"#);
    let (_, b) = conv("k", None, r#"[{"role":"user","content":"🦀"}]"#);
    assert_eq!(a, b);
}

#[test]
fn continuation_fork_and_retry() {
    let mut index = Index::new(1000, 3600.0, "ses_");
    let (c1, p1) = place(&mut index, "k", r#"[{"role":"user","content":"hi"}]"#, "r1");
    assert_eq!((p1.branch, p1.parent.clone()), (0, None));
    answer(
        &mut index,
        &c1,
        &p1,
        "r1",
        Api::Chat,
        r#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hello"}}]}"#,
    );
    let turn2 = r#"[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"more"}]"#;
    let (_, p2) = place(&mut index, "k", turn2, "r2");
    assert_eq!(p2.session, p1.session);
    assert_eq!((p2.branch, p2.parent.as_deref()), (0, Some("r1")));
    // The same turn again is a retry, not a fork.
    let (_, p2b) = place(&mut index, "k", turn2, "r2b");
    assert_eq!((p2b.branch, p2b.parent.as_deref()), (0, Some("r1")));
    // A different follow-up to the same answer forks.
    let fork = r#"[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"other"}]"#;
    let (_, p3) = place(&mut index, "k", fork, "r3");
    assert_eq!(p3.session, p1.session);
    assert_eq!((p3.branch, p3.parent.as_deref()), (1, Some("r1")));
    // Another key with the same words: another session.
    let (_, p4) = place(&mut index, "j", turn2, "r4");
    assert_ne!(p4.session, p1.session);
    assert_eq!(p4.parent, None);
}

#[test]
fn unknown_answer_falls_back_to_the_request() {
    let mut index = Index::new(1000, 3600.0, "ses_");
    let (_, p1) = place(
        &mut index,
        "k",
        r#"[{"role":"system","content":"S"},{"role":"user","content":"q"}]"#,
        "r1",
    );
    let (_, p2) = place(
        &mut index,
        "k",
        r#"[{"role":"system","content":"S"},{"role":"user","content":"q"},{"role":"assistant","content":"streamed"},{"role":"user","content":"next"}]"#,
        "r2",
    );
    assert_eq!(p2.session, p1.session);
    assert_eq!(p2.parent.as_deref(), Some("r1"));
}

#[test]
fn tool_loops_and_anthropic_blocks() {
    let mut index = Index::new(1000, 3600.0, "ses_");
    let (c1, p1) = place(
        &mut index,
        "k",
        r#"[{"role":"user","content":"weather?"}]"#,
        "r1",
    );
    answer(
        &mut index,
        &c1,
        &p1,
        "r1",
        Api::Messages,
        r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"s"},{"type":"tool_use","id":"toolu_1","name":"w","input":{"a":1}}]}"#,
    );
    // The client echoes the blocks with another key order and no thinking, then sends the result.
    let (_, p2) = place(
        &mut index,
        "k",
        r#"[{"role":"user","content":"weather?"},{"role":"assistant","content":[{"input":{"a":1},"name":"w","id":"toolu_1","type":"tool_use"}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"}]}]"#,
        "r2",
    );
    assert_eq!(p2.session, p1.session);
    assert_eq!(p2.parent.as_deref(), Some("r1"));
}

#[test]
fn responses_output_items_are_one_answer() {
    let mut index = Index::new(1000, 3600.0, "ses_");
    let (c1, p1) = place(&mut index, "k", r#""hello""#, "r1");
    answer(
        &mut index,
        &c1,
        &p1,
        "r1",
        Api::Responses,
        r#"{"id":"resp_1","output":[{"type":"reasoning","id":"rs","summary":[]},{"type":"message","id":"m","role":"assistant","content":[{"type":"output_text","text":"hi there","annotations":[]}]},{"type":"function_call","id":"fc","call_id":"call_1","name":"f","arguments":"{}"}]}"#,
    );
    let (_, p2) = place(
        &mut index,
        "k",
        r#"[{"role":"user","content":"hello"},{"type":"message","role":"assistant","content":[{"type":"output_text","text":"hi there"}]},{"type":"function_call","call_id":"call_1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"call_1","output":"42"}]"#,
        "r2",
    );
    assert_eq!(p2.session, p1.session);
    assert_eq!(p2.parent.as_deref(), Some("r1"));
    assert!(index.previous_state("resp_1", 0.0).is_some());
}

#[test]
fn explicit_ids_win() {
    let mut index = Index::new(1000, 3600.0, "ses_");
    let (c, full) = conv("k", None, r#"[{"role":"user","content":"hi"}]"#);
    let req = Request {
        request_id: "r1",
        explicit: Some("mine"),
        previous: None,
    };
    assert_eq!(&*index.place(&c, full, &req, 0.0).session, "mine");
}

#[test]
fn lru_is_bounded_and_expires() {
    let mut lru = Lru::new(3, 10.0);
    for k in 0..10u64 {
        lru.insert(k, k, 0.0);
        lru.get(0, 0.0); // 0 stays in use
    }
    assert_eq!(lru.len(), 3);
    assert!(lru.get(0, 1.0).is_some());
    assert!(lru.get(9, 1.0).is_some());
    assert!(lru.get(5, 1.0).is_none());
    assert!(lru.get(9, 20.0).is_none());
    for k in 0..10_000u64 {
        lru.get(0, 1.0);
        lru.insert(k % 2 + 100, k, 1.0);
    }
    assert!(lru.queue.len() <= 2 * 3 + 64);
}

/// One request through an index: its conversation (read by the index), its whole state and placement.
fn place_via(
    index: &mut Index,
    key: &str,
    system: Option<&str>,
    items: &str,
    id: &str,
) -> Option<(Conversation, u64, Placement)> {
    // In a spare hasher when the index has one (a conversation replaced by a resume point).
    let mut c = index.conversation(&[key.as_bytes(), b""]);
    if let Some(s) = system {
        c.system(s.as_bytes())?;
    }
    index.read(&mut c, items.as_bytes(), 0.0)?;
    let full = c.finish();
    let req = Request {
        request_id: id,
        explicit: None,
        previous: None,
    };
    let p = index.place(&c, full, &req, 0.0);
    Some((c, full, p))
}

fn chat_message(role: &str, text: &str) -> String {
    format!(
        r#"{{"role":"{role}","content":{}}}"#,
        serde_json::to_string(text).unwrap()
    )
}

#[test]
fn a_continuation_resumes_where_the_earlier_request_ended() {
    let history: Vec<String> = (0..50)
        .map(|i| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            chat_message(
                role,
                &format!("{i}: keeps \"quoted\" keys }},{{ and \\ slashes\n"),
            )
        })
        .collect();
    let request = |n: usize| format!("[{}]", history[..n].join(", "));
    let mut fast = Index::new(1000, 3600.0, "ses_");
    let mut whole = Index::new(1000, 3600.0, "ses_").without_resume();
    for (n, id) in [(47, "r1"), (49, "r2"), (49, "r2b"), (47, "r3")] {
        let a = place_via(&mut fast, "k", None, &request(n), id).unwrap();
        let b = place_via(&mut whole, "k", None, &request(n), id).unwrap();
        assert_eq!((a.1, &a.2, a.0.anchors()), (b.1, &b.2, b.0.anchors()));
        if id != "r1" && id != "r3" {
            // Carried on from a resume point: only the last units were kept, not all 49.
            assert!(a.0.units.len() < 10, "{} units", a.0.units.len());
        }
        assert_eq!(b.0.units.len(), n);
    }
    let second = place_via(&mut fast, "k", None, &request(49), "r4").unwrap();
    // (The same request sent again as r3 is the latest to have reached that state.)
    assert_eq!(second.2.parent.as_deref(), Some("r3"));
    // Another key, or other leading bytes, never resume from this conversation.
    let other = place_via(&mut fast, "j", None, &request(49), "r5").unwrap();
    assert_eq!(other.0.units.len(), 49);
    let reformatted = format!("[{}]", history[..49].join(","));
    assert_eq!(
        place_via(&mut fast, "k", None, &reformatted, "r6")
            .unwrap()
            .0
            .units
            .len(),
        49
    );
}

mod equivalence {
    use super::*;
    use proptest::prelude::*;

    /// A message as a client may write it: roles, string or part content with escapes and JSON-looking
    /// text (`},{` inside strings makes false element ends), tool calls and results.
    fn message() -> impl Strategy<Value = String> {
        let text = "[ab\"\\\\},{\\[\\]:\n é]{0,12}";
        let role = prop_oneof![
            Just("user"),
            Just("assistant"),
            Just("system"),
            Just("tool"),
            Just("developer"),
        ];
        (role, text, 0..5u8, "[a-c]{1,3}").prop_map(|(role, text, shape, id)| {
            let t = serde_json::to_string(&text).unwrap();
            match shape {
                0 => format!(r#"{{"role":"{role}","content":{t}}}"#),
                1 => format!(
                    r#"{{"content":[{{"type":"text","text":{t}}},{{"type":"image_url","image_url":{{"url":"x"}}}}],"role":"{role}"}}"#
                ),
                2 => format!(
                    r#"{{"role":"{role}","content":null,"tool_calls":[{{"id":"{id}","function":{{"name":"f","arguments":{t}}}}}]}}"#
                ),
                3 => format!(r#"{{"role":"{role}","tool_call_id":"{id}","content":{t}}}"#),
                _ => format!(r#"{{ "role" : "{role}" , "content" : {t} }}"#),
            }
        })
    }

    /// One request: the key, how many pool messages it sends, a replaced last message (a fork), the
    /// separator between messages, and whether its answer (the next pool message) is remembered.
    fn request() -> impl Strategy<Value = (u8, usize, Option<usize>, u8, bool)> {
        (
            0..2u8,
            1..12usize,
            prop::option::weighted(0.2, 0..12usize),
            prop::sample::select(vec![0u8, 0, 0, 1, 2]),
            any::<bool>(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn resuming_reads_what_reading_whole_reads(
            pool in prop::collection::vec(message(), 13),
            system in prop::option::of(Just(r#""be brief""#)),
            requests in prop::collection::vec(request(), 1..24),
        ) {
            let mut fast = Index::new(64, 3600.0, "ses_");
            let mut whole = Index::new(64, 3600.0, "ses_").without_resume();
            for (i, (key, n, fork, sep, answered)) in requests.into_iter().enumerate() {
                let mut messages: Vec<&str> = pool[..n].iter().map(String::as_str).collect();
                if let Some(f) = fork {
                    messages[n - 1] = &pool[f];
                }
                let sep = [",", ", ", " ,\n  "][usize::from(sep)];
                let items = format!("[{}]", messages.join(sep));
                let key = ["k", "j"][usize::from(key)];
                let id = format!("r{i}");
                let a = place_via(&mut fast, key, system, &items, &id);
                let b = place_via(&mut whole, key, system, &items, &id);
                let (Some((ca, fa, pa)), Some((cb, fb, pb))) = (a, b) else {
                    prop_assert!(false, "unreadable: {items}");
                    unreachable!();
                };
                prop_assert_eq!(fa, fb);
                prop_assert_eq!(&pa, &pb);
                prop_assert_eq!(ca.anchors(), cb.anchors());
                prop_assert_eq!(ca.units.last(), cb.units.last());
                if answered {
                    let body = format!(r#"{{"choices":[{{"message":{}}}]}}"#, pool[n]);
                    let sa = ca.answer(Api::Chat, body.as_bytes());
                    let sb = cb.answer(Api::Chat, body.as_bytes());
                    prop_assert_eq!(&sa, &sb);
                    if let Some((state, _)) = sa {
                        fast.answered(&pa, state, true, None, 0.0);
                        whole.answered(&pb, state, true, None, 0.0);
                    }
                }
            }
        }
    }
}
