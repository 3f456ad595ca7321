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
    let (state, rid) = c.answer(api, body.as_bytes()).unwrap();
    index.answered(p, id, state, true, rid.as_deref(), 0.0);
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
