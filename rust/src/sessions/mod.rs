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

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed, Xxh3Default};

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

/// Appends a JSON string's inner bytes, unescaped, to what is hashed next (escapes are how the sender wrote the text,
/// not what it says: the answer as the upstream wrote it and as the client echoes it must hash the same).
fn unescape_into(out: &mut Vec<u8>, s: &[u8]) {
    let mut i = 0;
    while let Some(at) = memchr::memchr(b'\\', &s[i..]) {
        out.extend_from_slice(&s[i..i + at]);
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
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            other => other, // \" \\ \/
        };
        out.push(byte);
    }
    out.extend_from_slice(&s[i..]);
}

fn hex4(s: &[u8], i: usize) -> Option<u32> {
    let digits = std::str::from_utf8(s.get(i..i + 4)?).ok()?;
    u32::from_str_radix(digits, 16).ok()
}

/// The incremental hash of one conversation, and the state digested at each unit boundary.
pub struct Conversation {
    // On the heap: the hasher is 64-byte aligned, more than a Python object's storage promises. Shared: a
    // resume point and the turn read up to it hold the same state, copied only when one of them reads on.
    hasher: Arc<Xxh3Default>,
    /// The role of the unit being fed (not yet closed), 0 before the first.
    open: u8,
    /// (role, state after the unit) of every closed unit.
    pub units: Vec<(u8, u64)>,
    /// One message's bytes, gathered to be hashed in one update (each update has a fixed cost).
    scratch: Vec<u8>,
}

/// Raw parts (images, files) longer than this are hashed where they lie, not copied first.
const SCRATCH_MAX: usize = 4096;

impl Clone for Conversation {
    fn clone(&self) -> Self {
        Self {
            hasher: self.hasher.clone(),
            open: self.open,
            units: self.units.clone(),
            scratch: Vec::new(),
        }
    }
}

impl Conversation {
    /// A conversation of `scope` (the key and the end user: identical words from two callers never meet).
    pub fn new(scope: &[&[u8]]) -> Self {
        Self::with_hasher(Arc::new(Xxh3Default::new()), scope)
    }

    /// As [`Self::new`], in `hasher`'s storage (reset first; copied if shared): an aligned allocation saved.
    fn with_hasher(mut hasher: Arc<Xxh3Default>, scope: &[&[u8]]) -> Self {
        let h = Arc::make_mut(&mut hasher);
        h.reset();
        for part in scope {
            h.update(part);
            h.update(END);
        }
        Self {
            hasher,
            open: 0,
            units: Vec::new(),
            scratch: Vec::new(),
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
        let opens = item.role != self.open;
        if opens {
            self.close();
            self.open = item.role;
        }
        let buf = &mut self.scratch;
        buf.clear();
        let spans = item.texts.iter().chain(&item.ids).chain(&item.raws);
        buf.reserve(spans.map(|r| r.len().min(SCRATCH_MAX) + 2).sum::<usize>() + 2);
        if opens {
            buf.extend_from_slice(&[item.role, 0xFE]);
        }
        for (tag, ranges) in [(b'T', &item.texts), (b'C', &item.ids)] {
            for r in ranges.iter() {
                if r.is_empty() {
                    continue;
                }
                buf.push(tag);
                unescape_into(buf, &s[r.clone()]);
                buf.extend_from_slice(END);
            }
        }
        for r in &item.raws {
            buf.push(b'B');
            if r.len() > SCRATCH_MAX {
                Arc::make_mut(&mut self.hasher).update(buf);
                buf.clear();
                Arc::make_mut(&mut self.hasher).update(&s[r.clone()]);
            } else {
                buf.extend_from_slice(&s[r.clone()]);
            }
            buf.extend_from_slice(END);
        }
        Arc::make_mut(&mut self.hasher).update(buf);
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
        self.read(raw).map(|_| ())
    }

    /// As [`Self::messages`]; for an array, also where its last element ends (0 when empty).
    fn read(&mut self, raw: &[u8]) -> Option<Option<usize>> {
        let mut w = Walker::new(raw);
        w.ws();
        if w.peek() == Some(b'"') {
            let mut item = Item::default();
            content(&mut w, &mut item, 0)?;
            item.role = USER;
            self.add(raw, &item);
            return Some(None);
        }
        if !w.eat(b'[') {
            return None;
        }
        let mut w = Walker::resume(raw, w.i, 1);
        self.elements(&mut w, true, 0).map(Some)
    }

    /// The elements of an array from `w` on (just after its `[` when `first`, else just after an element
    /// that ends at `last`) through its `]`: where the last element ends. The same steps as `Walker::array`.
    fn elements(&mut self, w: &mut Walker<'_>, first: bool, mut last: usize) -> Option<usize> {
        let mut item = Item::default();
        if first {
            w.ws();
            if w.peek() == Some(b']') {
                w.i += 1;
                return Some(last);
            }
        } else if !w.eat(b',') {
            return w.eat(b']').then_some(last);
        }
        loop {
            w.ws();
            message(w, &mut item)?;
            self.add(w.s, &item);
            last = w.i;
            if !w.eat(b',') {
                return w.eat(b']').then_some(last);
            }
        }
    }

    /// A copy that can carry on reading: the hash state, and only the units a continuation's anchors can
    /// still reach (from the one before the last assistant unit on, see [`Self::anchors`]). The hash state is
    /// shared, not copied.
    fn resumable(&self) -> Self {
        let from = self
            .units
            .iter()
            .rposition(|u| u.0 == ASSISTANT)
            .map_or(0, |a| a.saturating_sub(1));
        Self {
            hasher: self.hasher.clone(),
            open: self.open,
            units: self.units[from..].to_vec(),
            scratch: Vec::new(),
        }
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
    /// The request placed (its id, shared with the index's entry for it).
    pub request: Arc<str>,
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

    /// The live entry for `key`, taken out (its place in the queue is skipped when reached).
    pub fn take(&mut self, key: u64, now: f64) -> Option<V> {
        let (value, _, used) = self.map.remove(&key)?;
        (now - used <= self.ttl).then_some(value)
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

/// Where reading conversations can carry on: the conversation read through the end of an array element, for
/// a request whose leading bytes are the same.
///
/// Byte-identical history is the common case: a client resends the earlier request's array, one answer and one
/// new message later. The earlier array ended at one of the `}` that close an element; a *tail* key (the last
/// bytes before such a `}`, where it lies, and the conversation before the array) says cheaply which of them
/// an earlier request ended at, and the *point* there is keyed by the XXH3 of every byte before it (a stream
/// that then carries on to key this request's own point).
struct Resumes {
    tails: Lru<()>,
    points: Lru<Conversation>,
}

/// Only so many `}` closing elements are tried, the last first, as where an earlier array ended.
const RESUME_TRIES: usize = 64;
/// And only so many of them whose tail is known (and whose point is not) are hashed up to and probed.
const RESUME_PROBES: usize = 8;
/// A tail key samples this many bytes before a candidate end, as many before each quarter of it, and twice as
/// many at the start.
const RESUME_SAMPLE: usize = 32;

/// A tail key: the conversation before the array (`seed`), where the element ends, and samples of the bytes
/// before (the last ones, the first ones, and some at a quarter, half and three quarters of the way, where
/// conversations that end alike, such as one agent's, still differ).
fn tail_key(seed: u64, raw: &[u8], end: usize) -> u64 {
    let mut sample = [0u8; 6 * RESUME_SAMPLE];
    let head = end.min(2 * RESUME_SAMPLE);
    sample[..head].copy_from_slice(&raw[..head]);
    for (i, at) in [end / 4, end / 2, end - end / 4, end]
        .into_iter()
        .enumerate()
    {
        let from = at.saturating_sub(RESUME_SAMPLE);
        sample[(i + 2) * RESUME_SAMPLE..][..at - from].copy_from_slice(&raw[from..at]);
    }
    xxh3_64_with_seed(&sample, seed ^ (end as u64).wrapping_mul(RESPONSE_TAG))
}

/// A point key: the conversation before the array (`seed`) and the XXH3 of the array's bytes so far.
fn point_key(seed: u64, prefix: &Xxh3Default) -> u64 {
    prefix.digest() ^ seed.rotate_left(29)
}

/// Where array elements that are objects may end in `raw` (an array, `..]`), last first: after the last
/// element, then after each `}` followed by a comma. Inside strings too: a wrong guess finds nothing.
fn element_ends(raw: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let trimmed = |end: usize| {
        raw[..end]
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .map_or(0, |i| i + 1)
    };
    let close = trimmed(raw.len());
    let last = if close > 0 && raw[close - 1] == b']' {
        trimmed(close - 1)
    } else {
        0
    };
    let own = (last > 0 && raw[last - 1] == b'}').then_some(last);
    let earlier = memchr::memrchr_iter(b'}', &raw[..last.saturating_sub(1)])
        .filter(move |&at| {
            raw[at + 1..]
                .iter()
                .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
                == Some(&b',')
        })
        .map(|at| at + 1);
    own.into_iter().chain(earlier)
}

/// The session index of one worker: conversation states and response ids → the request that reached them.
pub struct Index {
    states: Lru<Node>,
    /// Resume points of recent requests' arrays, one per request.
    resumes: Option<Resumes>,
    /// Branches handed out so far, by hash of the session id.
    branches: Lru<u32>,
    prefix: String,
    next: u64,
    /// A hasher no longer used (a conversation's replaced by a resume point), kept for the next conversation:
    /// its allocation is 64-byte aligned, the slowest kind to make and free. Held only when not shared.
    spare: Option<Arc<Xxh3Default>>,
}

const RESPONSE_TAG: u64 = 0x9E37_79B9_7F4A_7C15;

fn response_key(id: &str) -> u64 {
    xxh3_64(id.as_bytes()) ^ RESPONSE_TAG
}

impl Index {
    pub fn new(max_entries: usize, ttl: f64, prefix: &str) -> Self {
        Self {
            states: Lru::new(max_entries, ttl),
            resumes: Some(Resumes {
                tails: Lru::new(max_entries / 4, ttl),
                points: Lru::new(max_entries / 4, ttl),
            }),
            branches: Lru::new(max_entries, ttl),
            prefix: prefix.to_owned(),
            next: 0,
            spare: None,
        }
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// A conversation of `scope`, as [`Conversation::new`], in a spare hasher when there is one.
    pub fn conversation(&mut self, scope: &[&[u8]]) -> Conversation {
        match self.spare.take() {
            Some(hasher) => Conversation::with_hasher(hasher, scope),
            None => Conversation::new(scope),
        }
    }

    /// An index that reads every conversation whole (no resume points): the straightforward path.
    pub fn without_resume(mut self) -> Self {
        self.resumes = None;
        self
    }

    /// Reads the messages (or Responses input) `raw` into `conv` (its scope and system read already), as
    /// [`Conversation::messages`] does, carrying on from where an earlier request with the same leading bytes
    /// left off when one is remembered; and remembers where this one ends.
    pub fn read(&mut self, conv: &mut Conversation, raw: &[u8], now: f64) -> Option<()> {
        let Some(r) = &mut self.resumes else {
            return conv.messages(raw);
        };
        let seed = conv.hasher.digest();
        // Where an earlier request may have ended (its tail known), the last first, is probed by its point key.
        let mut prefix = Xxh3Default::new();
        let mut hashed = 0;
        let mut resumed = None;
        let mut probes = 0;
        for end in element_ends(raw).take(RESUME_TRIES) {
            if r.tails.get(tail_key(seed, raw, end), now).is_none() {
                continue;
            }
            if hashed > end {
                prefix = Xxh3Default::new();
                hashed = 0;
            }
            prefix.update(&raw[hashed..end]);
            hashed = end;
            let key = point_key(seed, &prefix);
            // Taken, not copied: this request's own point supersedes it (a fork from there reads whole).
            if let Some(point) = r.points.take(key, now) {
                let replaced = std::mem::replace(conv, point).hasher;
                if Arc::strong_count(&replaced) == 1 {
                    self.spare = Some(replaced);
                }
                resumed = Some(end);
                break;
            }
            probes += 1;
            if probes == RESUME_PROBES {
                break;
            }
        }
        let last = match resumed {
            Some(end) => {
                let mut w = Walker::resume(raw, end, 1);
                conv.elements(&mut w, false, end)?
            }
            None => match conv.read(raw)? {
                Some(last) => last,
                None => return Some(()), // a string input: nothing to carry on from
            },
        };
        if last == 0 || raw[last - 1] != b'}' {
            return Some(());
        }
        if hashed > last {
            prefix = Xxh3Default::new();
            hashed = 0;
        }
        prefix.update(&raw[hashed..last]);
        let key = point_key(seed, &prefix);
        r.points.insert(key, conv.resumable(), now);
        r.tails.insert(tail_key(seed, raw, last), (), now);
        Some(())
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
        let request: Arc<str> = req.request_id.into();
        let placement = match found {
            Some((session, branch, parent, true)) => Placement {
                session,
                branch,
                request,
                parent: Some(parent),
            },
            Some((session, _, parent, false)) => {
                let branch = self.fork(&session, now);
                Placement {
                    session,
                    branch,
                    request,
                    parent: Some(parent),
                }
            }
            None => Placement {
                session: match req.explicit {
                    Some(e) => e.into(),
                    None => self.new_session(),
                },
                branch: 0,
                request,
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
            request: placement.request.clone(),
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
        state: u64,
        known: bool,
        response_id: Option<&str>,
        now: f64,
    ) {
        let node = Node {
            session: placement.session.clone(),
            branch: placement.branch,
            request: placement.request.clone(),
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
