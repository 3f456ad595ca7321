//! Automatic session reconstruction: which earlier request a conversation continues.
//!
//! A conversation is read as *units*: runs of consecutive messages with the same role (system, user,
//! assistant, tool), each reduced to what a client echoes back unchanged (its text, tool-call ids, tool-result
//! ids, other parts byte for byte; never thinking or reasoning, which clients may drop). One streaming XXH3
//! over the key, the end user and the units, digested at every unit boundary, gives each prefix of the
//! conversation a 64-bit *state*: one hash per message, nothing hashed twice.
//!
//! The [`Index`] remembers states: each request's whole conversation, and the conversation plus its answer
//! once the answer is known. A new request is read up to its last assistant unit before its final unit (the
//! earlier answer as the client echoes it): that prefix is probed once as "earlier messages + earlier answer",
//! and only if unknown (a streamed answer, whose text the gateway does not keep) once more without the answer.
//! A hit continues that request's session; a state continued a second time with a different conversation is a
//! fork and gets a new branch number in the same session.
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;
use std::sync::Arc;

use xxhash_rust::xxh3::{xxh3_64, Xxh3Default};

use crate::json::Walker;

pub mod py;

/// The request's wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Chat,
    Messages,
    Responses,
}

impl Api {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "chat" => Some(Self::Chat),
            "messages" => Some(Self::Messages),
            "responses" => Some(Self::Responses),
            _ => None,
        }
    }
}

// Unit roles; SKIP items (reasoning) make no unit at all.
const SYSTEM: u8 = b's';
const USER: u8 = b'u';
const ASSISTANT: u8 = b'a';
const TOOL: u8 = b't';
const OTHER: u8 = b'x';
const SKIP: u8 = 0;
// Never in UTF-8: ends each part, so "ab"+"c" and "a"+"bc" hash apart.
const END: &[u8] = &[0xFF];

/// What one message contributes, gathered before hashing so key order never matters.
#[derive(Default)]
struct Item {
    role: u8,
    texts: Vec<Range<usize>>,
    ids: Vec<Range<usize>>,
    raws: Vec<Range<usize>>,
    response_id: Option<Range<usize>>,
}

impl Item {
    fn clear(&mut self) {
        self.role = OTHER;
        self.texts.clear();
        self.ids.clear();
        self.raws.clear();
        self.response_id = None;
    }
}

fn role_of(name: &[u8]) -> u8 {
    match name {
        b"system" | b"developer" => SYSTEM,
        b"user" => USER,
        b"assistant" | b"model" => ASSISTANT,
        b"tool" | b"function" => TOOL,
        _ => OTHER,
    }
}

/// A Responses item's role from its type, when it has no `role`.
fn role_of_type(kind: &[u8]) -> u8 {
    match kind {
        b"reasoning" => SKIP,
        b"message" => OTHER,
        k if k.ends_with(b"_output") => TOOL,
        k if k.ends_with(b"_call") => ASSISTANT,
        _ => OTHER,
    }
}

/// A string value's inner range (quotes off), or None for anything else (the value is consumed either way).
fn string_inner(w: &mut Walker<'_>) -> Option<Option<Range<usize>>> {
    w.ws();
    if w.peek() == Some(b'"') {
        let r = w.string()?;
        return Some(Some(r.start + 1..r.end - 1));
    }
    w.skip()?;
    Some(None)
}

/// A content part (or an Anthropic block): its text, its tool ids, else its bytes.
fn part(w: &mut Walker<'_>, item: &mut Item, depth: u8) -> Option<()> {
    w.ws();
    match w.peek()? {
        b'"' => {
            let r = w.string()?;
            item.texts.push(r.start + 1..r.end - 1);
            return Some(());
        }
        b'{' => {}
        _ => return w.skip(),
    }
    let start = w.i;
    let (texts, ids) = (item.texts.len(), item.ids.len());
    let mut hidden = false;
    w.object(|w, key| match key {
        b"type" => {
            if let Some(kind) = string_inner(w)? {
                let kind = &w.s[kind];
                hidden = matches!(kind, b"thinking" | b"redacted_thinking" | b"reasoning");
            }
            Some(())
        }
        b"text" | b"output" => {
            if let Some(r) = string_inner(w)? {
                item.texts.push(r);
            }
            Some(())
        }
        b"id" | b"tool_use_id" | b"call_id" => {
            if let Some(r) = string_inner(w)? {
                item.ids.push(r);
            }
            Some(())
        }
        b"content" if depth < 2 => content(w, item, depth + 1),
        _ => w.skip(),
    })?;
    if hidden {
        item.texts.truncate(texts);
        item.ids.truncate(ids);
    } else if item.texts.len() == texts && item.ids.len() == ids {
        item.raws.push(start..w.i);
    }
    Some(())
}

/// A `content` value: a string, an array of parts, or null.
fn content(w: &mut Walker<'_>, item: &mut Item, depth: u8) -> Option<()> {
    w.ws();
    match w.peek()? {
        b'"' => part(w, item, depth),
        b'[' => w.array(|w| part(w, item, depth)),
        _ => w.skip(),
    }
}

/// One message (chat, Messages) or input item (Responses) into `item`.
fn message(w: &mut Walker<'_>, item: &mut Item) -> Option<()> {
    item.clear();
    w.ws();
    if w.peek() != Some(b'{') {
        // Not an object: hashed as it is (validation refused anything a model would read).
        let r = w.value()?;
        item.raws.push(r);
        return Some(());
    }
    let mut role = None;
    let mut kind = None;
    w.object(|w, key| match key {
        b"role" => {
            role = string_inner(w)?;
            Some(())
        }
        b"type" => {
            kind = string_inner(w)?;
            Some(())
        }
        b"content" => content(w, item, 0),
        b"output" => content(w, item, 0),
        b"tool_calls"
            if {
                w.ws();
                w.peek() == Some(b'[')
            } =>
        {
            w.array(|w| {
                w.object(|w, key| match key {
                    b"id" => {
                        if let Some(r) = string_inner(w)? {
                            item.ids.push(r);
                        }
                        Some(())
                    }
                    _ => w.skip(),
                })
            })
        }
        b"tool_call_id" | b"call_id" => {
            if let Some(r) = string_inner(w)? {
                item.ids.push(r);
            }
            Some(())
        }
        _ => w.skip(),
    })?;
    item.role = match (role, kind) {
        (Some(r), _) => role_of(&w.s[r]),
        (None, Some(k)) => role_of_type(&w.s[k]),
        (None, None) => OTHER,
    };
    Some(())
}

/// Feeds a JSON string's inner bytes, unescaped, to the hasher (escapes are how the sender wrote the text,
/// not what it says: the answer as the upstream wrote it and as the client echoes it must hash the same).
fn feed_text(h: &mut Xxh3Default, s: &[u8]) {
    let mut i = 0;
    while let Some(at) = memchr::memchr(b'\\', &s[i..]) {
        h.update(&s[i..i + at]);
        i += at + 1;
        let Some(&e) = s.get(i) else { return };
        i += 1;
        let byte = match e {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'b' => 8,
            b'f' => 12,
            b'u' => {
                let Some(mut code) = hex4(s, i) else { return };
                i += 4;
                if (0xD800..0xDC00).contains(&code) && s.get(i..i + 2) == Some(b"\\u") {
                    if let Some(low) = hex4(s, i + 2).filter(|l| (0xDC00..0xE000).contains(l)) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                        i += 6;
                    }
                }
                let c = char::from_u32(code).unwrap_or('\u{FFFD}');
                let mut buf = [0u8; 4];
                h.update(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            other => other, // \" \\ \/
        };
        h.update(&[byte]);
    }
    h.update(&s[i..]);
}

fn hex4(s: &[u8], i: usize) -> Option<u32> {
    let digits = std::str::from_utf8(s.get(i..i + 4)?).ok()?;
    u32::from_str_radix(digits, 16).ok()
}

/// The incremental hash of one conversation, and the state digested at each unit boundary.
#[derive(Clone)]
pub struct Conversation {
    // Boxed: the hasher is 64-byte aligned, more than a Python object's storage promises.
    hasher: Box<Xxh3Default>,
    /// The role of the unit being fed (not yet closed), 0 before the first.
    open: u8,
    /// (role, state after the unit) of every closed unit.
    pub units: Vec<(u8, u64)>,
}

impl Conversation {
    /// A conversation of `scope` (the key and the end user: identical words from two callers never meet).
    pub fn new(scope: &[&[u8]]) -> Self {
        let mut hasher = Box::new(Xxh3Default::new());
        for part in scope {
            hasher.update(part);
            hasher.update(END);
        }
        Self {
            hasher,
            open: 0,
            units: Vec::new(),
        }
    }

    fn close(&mut self) {
        if self.open != 0 {
            self.units.push((self.open, self.hasher.digest()));
            self.open = 0;
        }
    }

    fn add(&mut self, s: &[u8], item: &Item) {
        if item.role == SKIP {
            return;
        }
        if item.role != self.open {
            self.close();
            self.open = item.role;
            self.hasher.update(&[item.role, 0xFE]);
        }
        for (tag, ranges) in [(b'T', &item.texts), (b'C', &item.ids)] {
            for r in ranges.iter() {
                if r.is_empty() {
                    continue;
                }
                self.hasher.update(&[tag]);
                feed_text(&mut self.hasher, &s[r.clone()]);
                self.hasher.update(END);
            }
        }
        for r in &item.raws {
            self.hasher.update(b"B");
            self.hasher.update(&s[r.clone()]);
            self.hasher.update(END);
        }
    }

    /// A system prompt (Messages `system`, Responses `instructions`): a string or an array of text blocks.
    pub fn system(&mut self, raw: &[u8]) -> Option<()> {
        let mut item = Item::default();
        let mut w = Walker::new(raw);
        content(&mut w, &mut item, 0)?;
        item.role = SYSTEM;
        self.add(raw, &item);
        Some(())
    }

    /// The messages (chat, Messages) or the input (Responses: a string is one user turn).
    pub fn messages(&mut self, raw: &[u8]) -> Option<()> {
        let mut w = Walker::new(raw);
        w.ws();
        let mut item = Item::default();
        if w.peek() == Some(b'"') {
            content(&mut w, &mut item, 0)?;
            item.role = USER;
            self.add(raw, &item);
            return Some(());
        }
        w.array(|w| {
            message(w, &mut item)?;
            self.add(raw, &item);
            Some(())
        })
    }

    /// Closes the last unit: the conversation as the request sent it.
    pub fn finish(&mut self) -> u64 {
        self.close();
        self.units
            .last()
            .map_or_else(|| self.hasher.digest(), |u| u.1)
    }

    /// Where this request continues an earlier one: the state up to its last assistant unit before its final
    /// unit (the earlier answer, as echoed), and the state just before that (the earlier request itself).
    pub fn anchors(&self) -> (Option<u64>, Option<u64>) {
        let n = self.units.len();
        if n < 2 {
            return (None, None);
        }
        match self.units[..n - 1].iter().rposition(|u| u.0 == ASSISTANT) {
            Some(a) => (
                Some(self.units[a].1),
                a.checked_sub(1).map(|b| self.units[b].1),
            ),
            None => (None, None),
        }
    }

    /// The state after the request's answer (an answer body in `api`'s format as the client got it), and
    /// the Responses `id` of it; None when the body cannot be read.
    pub fn answer(&self, api: Api, body: &[u8]) -> Option<(u64, Option<String>)> {
        let mut this = self.clone();
        let mut w = Walker::new(body);
        let mut item = Item::default();
        let mut response_id = None;
        match api {
            Api::Messages => {
                message(&mut w, &mut item)?;
                item.role = ASSISTANT;
                this.add(body, &item);
            }
            Api::Chat => {
                let mut first = true;
                w.object(|w, key| match key {
                    b"choices" => w.array(|w| {
                        if !first {
                            return w.skip();
                        }
                        first = false;
                        w.object(|w, key| match key {
                            b"message" => {
                                message(w, &mut item)?;
                                item.role = ASSISTANT;
                                this.add(body, &item);
                                Some(())
                            }
                            _ => w.skip(),
                        })
                    }),
                    _ => w.skip(),
                })?;
            }
            Api::Responses => {
                w.object(|w, key| match key {
                    b"id" => {
                        response_id = string_inner(w)?;
                        Some(())
                    }
                    b"output" => w.array(|w| {
                        message(w, &mut item)?;
                        if item.role != SKIP {
                            // Every output item is the assistant's, whatever its type.
                            item.role = ASSISTANT;
                        }
                        this.add(body, &item);
                        Some(())
                    }),
                    _ => w.skip(),
                })?;
            }
        }
        if this.open == 0 {
            return None; // no answer in it (an error body, an empty output)
        }
        let state = this.finish();
        let id = response_id.and_then(|r| std::str::from_utf8(&body[r]).ok().map(str::to_owned));
        Some((state, id))
    }
}

/// Where a request belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub session: Arc<str>,
    pub branch: u32,
    /// The request this one continues (None: the first of its session, as far as the index knows).
    pub parent: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
struct Node {
    session: Arc<str>,
    branch: u32,
    request: Arc<str>,
    /// The whole conversation of the first request that continued this state (0: none yet).
    child: u64,
    /// For a response id: the state after that response.
    state: u64,
}

/// Keys are hashes already: used as they are.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxh3_64(bytes);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map bounded by size and idle time: the least recently used entry goes first, an entry idle for longer
/// than the TTL is gone. Recency is a queue with lazy deletion (a touched entry is queued again and its old
/// place skipped when reached), so every operation is O(1) amortised.
pub struct Lru<V> {
    map: HashMap<u64, (V, u64, f64), BuildHasherDefault<Identity>>,
    queue: VecDeque<(u64, u64)>,
    stamp: u64,
    max: usize,
    ttl: f64,
}

impl<V> Lru<V> {
    pub fn new(max: usize, ttl: f64) -> Self {
        Self {
            map: HashMap::default(),
            queue: VecDeque::new(),
            stamp: 0,
            max: max.max(1),
            ttl,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The live entry for `key`, marked as just used.
    pub fn get(&mut self, key: u64, now: f64) -> Option<&mut V> {
        let ttl = self.ttl;
        let expired = match self.map.get(&key) {
            None => return None,
            Some(e) => now - e.2 > ttl,
        };
        if expired {
            self.map.remove(&key);
            return None;
        }
        self.stamp += 1;
        let stamp = self.stamp;
        self.queue.push_back((key, stamp));
        self.compact();
        let entry = self.map.get_mut(&key)?;
        entry.1 = stamp;
        entry.2 = now;
        Some(&mut entry.0)
    }

    pub fn insert(&mut self, key: u64, value: V, now: f64) {
        self.stamp += 1;
        self.map.insert(key, (value, self.stamp, now));
        self.queue.push_back((key, self.stamp));
        self.evict(now);
        self.compact();
    }

    /// Drops the oldest entries while over the bound or idle too long.
    fn evict(&mut self, now: f64) {
        while let Some(&(key, stamp)) = self.queue.front() {
            let live = self.map.get(&key).filter(|e| e.1 == stamp);
            let Some(entry) = live else {
                self.queue.pop_front();
                continue;
            };
            if self.map.len() <= self.max && now - entry.2 <= self.ttl {
                break;
            }
            self.map.remove(&key);
            self.queue.pop_front();
        }
    }

    /// Keeps the queue's stale places bounded (a hot key touched over and over queues itself again).
    fn compact(&mut self) {
        if self.queue.len() > 2 * self.max + 64 {
            let map = &self.map;
            self.queue
                .retain(|(key, stamp)| map.get(key).is_some_and(|e| e.1 == *stamp));
        }
    }
}

/// What [`Index::place`] needs from a request.
pub struct Request<'a> {
    pub request_id: &'a str,
    /// The client's own session id (`requesty.session_id`, else its trace id).
    pub explicit: Option<&'a str>,
    /// A Responses `previous_response_id`.
    pub previous: Option<&'a str>,
}

/// The session index of one worker: conversation states and response ids → the request that reached them.
pub struct Index {
    states: Lru<Node>,
    /// Branches handed out so far, by hash of the session id.
    branches: Lru<u32>,
    prefix: String,
    next: u64,
}

const RESPONSE_TAG: u64 = 0x9E37_79B9_7F4A_7C15;

fn response_key(id: &str) -> u64 {
    xxh3_64(id.as_bytes()) ^ RESPONSE_TAG
}

impl Index {
    pub fn new(max_entries: usize, ttl: f64, prefix: &str) -> Self {
        Self {
            states: Lru::new(max_entries, ttl),
            branches: Lru::new(max_entries, ttl),
            prefix: prefix.to_owned(),
            next: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// The scope part of a conversation that continues `previous` (a response id), if that is known.
    pub fn previous_state(&mut self, previous: &str, now: f64) -> Option<u64> {
        self.states
            .get(response_key(previous), now)
            .map(|n| n.state)
    }

    fn new_session(&mut self) -> Arc<str> {
        self.next += 1;
        format!("{}{:08x}", self.prefix, self.next).into()
    }

    fn fork(&mut self, session: &str, now: f64) -> u32 {
        let key = xxh3_64(session.as_bytes());
        if let Some(n) = self.branches.get(key, now) {
            *n += 1;
            return *n;
        }
        self.branches.insert(key, 1, now);
        1
    }

    /// Places a request whose conversation is `conv` (finished), and remembers its state.
    pub fn place(
        &mut self,
        conv: &Conversation,
        full: u64,
        req: &Request<'_>,
        now: f64,
    ) -> Placement {
        let mut parent_key = None;
        if let Some(previous) = req.previous {
            let key = response_key(previous);
            if self.states.get(key, now).is_some() {
                parent_key = Some(key);
            }
        }
        if parent_key.is_none() {
            let (answered, asked) = conv.anchors();
            for key in [answered, asked].into_iter().flatten() {
                if self.states.get(key, now).is_some() {
                    parent_key = Some(key);
                    break;
                }
            }
        }
        let found = parent_key.and_then(|key| {
            let node = self.states.get(key, now)?;
            if req.explicit.is_some_and(|e| *e != *node.session) {
                return None; // the client says it is another session
            }
            let same = node.child == 0 || node.child == full;
            if node.child == 0 {
                node.child = full;
            }
            Some((
                node.session.clone(),
                node.branch,
                node.request.clone(),
                same,
            ))
        });
        let placement = match found {
            Some((session, branch, parent, true)) => Placement {
                session,
                branch,
                parent: Some(parent),
            },
            Some((session, _, parent, false)) => {
                let branch = self.fork(&session, now);
                Placement {
                    session,
                    branch,
                    parent: Some(parent),
                }
            }
            None => Placement {
                session: match req.explicit {
                    Some(e) => e.into(),
                    None => self.new_session(),
                },
                branch: 0,
                parent: None,
            },
        };
        // The same conversation sent again (a retry) keeps what continued it.
        let child = match self.states.get(full, now) {
            Some(n) if n.session == placement.session => n.child,
            _ => 0,
        };
        let node = Node {
            session: placement.session.clone(),
            branch: placement.branch,
            request: req.request_id.into(),
            child,
            state: full,
        };
        self.states.insert(full, node, now);
        placement
    }

    /// Remembers the state after a request's answer (`known`: the answer was read, so the state is that of
    /// the conversation with it), and the answer's Responses id.
    pub fn answered(
        &mut self,
        placement: &Placement,
        request_id: &str,
        state: u64,
        known: bool,
        response_id: Option<&str>,
        now: f64,
    ) {
        let node = Node {
            session: placement.session.clone(),
            branch: placement.branch,
            request: request_id.into(),
            child: 0,
            state,
        };
        if let Some(id) = response_id {
            self.states.insert(response_key(id), node.clone(), now);
        }
        if known {
            self.states.insert(state, node, now);
        }
    }
}

#[cfg(test)]
mod tests;
