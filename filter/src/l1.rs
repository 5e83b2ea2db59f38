//! The in-Envoy L1: a fixed table of slots in proxy-wasm shared data, shared by every worker of
//! one Envoy, holding copies of the companion's answers for fresh entries so that repeated
//! hits need no callout. Pure: the glue moves the slot bytes between this module and the host.
//!
//! - **Bounded by construction**: shared-data keys are never freed, so the table is exactly
//!   `slots` keys (`hzcache.l1.N`), each holding at most one entry of at most
//!   `max_entry_bytes`: memory is `slots × max_entry_bytes` at most, whatever is requested. A
//!   key's slot is a hash of its map and key; a newer entry evicts whatever held the slot.
//! - **Never past freshness**: an entry is kept for the freshness the companion says is left
//!   (`x-hzcache-fresh-ms`), at most `max_ttl_ms`, and only while the invalidation feed is
//!   current; a drop of everything bumps a shared generation instead of touching every slot.
//! - **Exact answers only**: L1 answers plain GET and HEAD requests (no validators, ranges or
//!   request directives, whose answers depend on more than the entry) whose `Vary`-selected
//!   header values equal the stored ones byte for byte; everything else goes to the companion,
//!   which answers it as it always does. The answer is the companion's own, with `Age`
//!   advanced by the time spent here.

use crate::config::L1Settings;
use hzcache_contract::decode_key;

/// The shared-data key of slot `n`.
pub fn slot_key(n: u32) -> String {
    format!("hzcache.l1.{n}")
}

/// The shared-data key of slot `n`'s tag: which entry the slot holds, small enough that a
/// lookup for another key (the common case of a busy table) reads a few dozen bytes, not the
/// whole answer.
pub fn tag_key(n: u32) -> String {
    format!("hzcache.l1.{n}.tag")
}

const TAG_MAGIC: &[u8; 4] = b"HZLT";

/// The tag of an entry: its generation, expiry, map and key.
pub fn encode_tag(e: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(e.map.len().saturating_add(e.key.len()).saturating_add(32));
    out.extend_from_slice(TAG_MAGIC);
    out.extend_from_slice(&e.generation.to_le_bytes());
    out.extend_from_slice(&e.expires_at_ms.to_le_bytes());
    put_bytes(&mut out, e.map.as_bytes());
    put_bytes(&mut out, e.key.as_bytes());
    out
}

/// Whether a tag says its slot holds a live entry of `(map, key)` in `generation` (`None` for
/// the generation: any).
pub fn tag_matches(tag: &[u8], generation: Option<u64>, map: &str, key: &str, now_ms: u64) -> bool {
    let read = || -> Option<bool> {
        let mut r = Reader(tag);
        if r.take(4)? != TAG_MAGIC {
            return Some(false);
        }
        let (g, expires) = (r.u64()?, r.u64()?);
        let live = match generation {
            Some(want) => want == g && now_ms < expires,
            None => true,
        };
        Some(live && r.bytes()? == map.as_bytes() && r.bytes()? == key.as_bytes())
    };
    read().unwrap_or(false)
}

/// The shared-data key of the generation: entries of an older generation are dead.
pub const GENERATION_KEY: &str = "hzcache.l1.gen";

const MAGIC: &[u8; 4] = b"HZL1";

/// Request fields whose presence makes the answer depend on more than the stored entry.
const NOT_FOR_L1: [&str; 8] = [
    "cache-control",
    "pragma",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
    "range",
];

/// The slot of a (map, key): FNV-1a 64 over `map NUL key`, reduced to the table.
pub fn slot_of(map: &str, key: &str, slots: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in map.bytes().chain([0u8]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    u32::try_from(h.checked_rem(u64::from(slots.max(1))).unwrap_or(0)).unwrap_or(0)
}

/// Whether L1 may answer this request: GET or HEAD without the fields that make an answer
/// depend on more than the entry. `request` is the request header list.
pub fn request_eligible(method: &str, request: &[(String, Vec<u8>)]) -> bool {
    matches!(method, "GET" | "HEAD")
        && !request
            .iter()
            .any(|(n, _)| NOT_FOR_L1.iter().any(|x| n.eq_ignore_ascii_case(x)))
}

/// The values of `name` in `request`, joined with `,` in order (`None`: absent): what a
/// variant is compared by.
fn selected(request: &[(String, Vec<u8>)], name: &str) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for (n, v) in request {
        if n.eq_ignore_ascii_case(name) {
            let joined = out.get_or_insert_with(Vec::new);
            if !joined.is_empty() {
                joined.push(b',');
            }
            joined.extend_from_slice(v);
        }
    }
    out
}

/// The names a response varies on (lower-case); `None` for `Vary: *`.
fn vary_names(headers: &[(String, String)]) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for (n, v) in headers {
        if !n.eq_ignore_ascii_case("vary") {
            continue;
        }
        for name in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if name == "*" {
                return None;
            }
            names.push(name.to_ascii_lowercase());
        }
    }
    Some(names)
}

/// An answer L1 gives: what `send_local_response` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// One stored answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub generation: u64,
    pub map: String,
    pub key: String,
    pub stored_at_ms: u64,
    pub expires_at_ms: u64,
    /// The answer's `Age` when stored, seconds.
    pub age_secs: u64,
    /// Vary-selected request values: (lower-case name, value or absent).
    pub vary: Vec<(String, Option<Vec<u8>>)>,
    pub status: u32,
    /// The answer's headers, without `age`.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What to keep of a companion answer, or `None` when L1 must not keep it.
#[allow(clippy::too_many_arguments)]
pub fn entry_for(
    settings: &L1Settings,
    generation: u64,
    map: &str,
    key: &str,
    request: &[(String, Vec<u8>)],
    status: u32,
    headers: &[(String, String)],
    body: &[u8],
    fresh_ms: u64,
    now_ms: u64,
) -> Option<Entry> {
    if settings.slots == 0 || fresh_ms == 0 {
        return None;
    }
    // Only whole answers: a 206 (or anything carrying `Content-Range`) answers one request's
    // range, and replayed to a plain GET it would pass a slice off as the whole
    // representation. The companion never marks one fresh; this holds even if it did.
    if status == 206
        || headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-range"))
    {
        return None;
    }
    let names = vary_names(headers)?;
    let age_secs = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("age"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let entry = Entry {
        generation,
        map: map.to_string(),
        key: key.to_string(),
        stored_at_ms: now_ms,
        expires_at_ms: now_ms.saturating_add(fresh_ms.min(settings.max_ttl_ms)),
        age_secs,
        vary: names
            .iter()
            .map(|n| (n.clone(), selected(request, n)))
            .collect(),
        status,
        headers: headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("age"))
            .cloned()
            .collect(),
        body: body.to_vec(),
    };
    Some(entry)
}

/// The answer L1 gives for `(map, key)` from a slot's bytes, if the entry is there, alive and
/// the request's Vary-selected values are the stored ones.
pub fn answer(
    slot: &[u8],
    generation: u64,
    map: &str,
    key: &str,
    request: &[(String, Vec<u8>)],
    now_ms: u64,
) -> Option<Answer> {
    let e = decode(slot)?;
    if e.generation != generation || e.map != map || e.key != key || now_ms >= e.expires_at_ms {
        return None;
    }
    if e.vary
        .iter()
        .any(|(name, value)| selected(request, name) != *value)
    {
        return None;
    }
    let age = e
        .age_secs
        .saturating_add(now_ms.saturating_sub(e.stored_at_ms) / 1000);
    let mut headers = e.headers;
    headers.push(("age".into(), age.to_string()));
    for (n, v) in &mut headers {
        if n.eq_ignore_ascii_case("x-cache") {
            *v = "HIT".into();
        }
    }
    Some(Answer {
        status: e.status,
        headers,
        body: e.body,
    })
}

/// Whether a slot's bytes hold the entry of `(map, key)` (of any generation).
pub fn holds(slot: &[u8], map: &str, key: &str) -> bool {
    decode(slot).is_some_and(|e| e.map == map && e.key == key)
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(b);
}

/// The slot bytes of an entry; `None` when they would exceed `max_bytes` (the slot bound).
pub fn encode(e: &Entry, max_bytes: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(e.body.len().saturating_add(256));
    out.extend_from_slice(MAGIC);
    for n in [e.generation, e.stored_at_ms, e.expires_at_ms, e.age_secs] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.extend_from_slice(&e.status.to_le_bytes());
    put_bytes(&mut out, e.map.as_bytes());
    put_bytes(&mut out, e.key.as_bytes());
    out.extend_from_slice(&u32::try_from(e.vary.len()).ok()?.to_le_bytes());
    for (name, value) in &e.vary {
        put_bytes(&mut out, name.as_bytes());
        match value {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                put_bytes(&mut out, v);
            }
        }
    }
    out.extend_from_slice(&u32::try_from(e.headers.len()).ok()?.to_le_bytes());
    for (n, v) in &e.headers {
        put_bytes(&mut out, n.as_bytes());
        put_bytes(&mut out, v.as_bytes());
    }
    put_bytes(&mut out, &e.body);
    (out.len() <= max_bytes).then_some(out)
}

/// A bounds-checked reader over slot bytes: shared data is written by other workers (and by
/// other versions of this filter after a reload), so nothing is trusted.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

pub fn decode(slot: &[u8]) -> Option<Entry> {
    let mut r = Reader(slot);
    if r.take(4)? != MAGIC {
        return None;
    }
    let (generation, stored_at_ms, expires_at_ms, age_secs) =
        (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
    let status = r.u32()?;
    let map = r.string()?;
    let key = r.string()?;
    let vary_n = r.u32()?;
    let mut vary = Vec::new();
    for _ in 0..vary_n {
        let name = r.string()?;
        let value = match r.take(1)?.first()? {
            0 => None,
            _ => Some(r.bytes()?.to_vec()),
        };
        vary.push((name, value));
    }
    let header_n = r.u32()?;
    let mut headers = Vec::new();
    for _ in 0..header_n {
        headers.push((r.string()?, r.string()?));
    }
    let body = r.bytes()?.to_vec();
    Some(Entry {
        generation,
        map,
        key,
        stored_at_ms,
        expires_at_ms,
        age_secs,
        vary,
        status,
        headers,
        body,
    })
}

// ---------------------------------------------------------------------------------------------
// The invalidation feed (docs/callout-protocol.md, "Invalidation feed")

/// What one feed answer asks of L1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedUpdate {
    /// Drop everything (a gap, an overflow, another companion process), then continue from
    /// `cursor` of `epoch`. `incident` names the cause the same way for every worker that
    /// reads it (`EPOCH:SEQUENCE` of the `* all` event, `EPOCH:0` for a new epoch), so the
    /// workers of one Envoy drop once, not once each.
    DropAll {
        epoch: String,
        cursor: u64,
        incident: String,
    },
    /// Drop these (map, key) entries, then continue from `cursor`.
    Drop {
        cursor: u64,
        keys: Vec<(String, String)>,
    },
}

/// Where the filter is in a companion's feed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedPosition {
    pub epoch: Option<String>,
    pub cursor: u64,
}

/// Reads a feed answer's body against the position the filter had. `None`: not a feed answer
/// (the caller counts it as a feed error; a feed that stays unreadable goes stale).
pub fn read_feed(body: &[u8], at: &FeedPosition) -> Option<FeedUpdate> {
    let text = std::str::from_utf8(body).ok()?;
    let mut lines = text.lines();
    let mut head = lines.next()?.split(' ');
    if head.next()? != "hzcache-feed" || head.next()? != "1" {
        return None;
    }
    let epoch = head.next()?.to_string();
    let cursor: u64 = head.next()?.parse().ok()?;
    // A first answer, or another process: nothing before this point can be vouched for.
    if at.epoch.as_deref() != Some(epoch.as_str()) || cursor < at.cursor {
        let incident = format!("{epoch}:0");
        return Some(FeedUpdate::DropAll {
            epoch,
            cursor,
            incident,
        });
    }
    let mut keys = Vec::new();
    // Events follow each other one sequence number apart, so the k-th line is `after + k`.
    for (k, line) in (1u64..).zip(lines.filter(|l| !l.is_empty())) {
        if line == "* all" {
            let incident = format!("{epoch}:{}", at.cursor.saturating_add(k));
            return Some(FeedUpdate::DropAll {
                epoch,
                cursor,
                incident,
            });
        }
        let (map, key) = line.split_once(' ')?;
        let (map, key) = (decode_key(map)?, decode_key(key)?);
        // A variant's change concerns the entry stored under its primary key.
        let primary = match key.find("\0v:") {
            Some(i) => key.get(..i).unwrap_or(&key).to_string(),
            None => key,
        };
        keys.push((map, primary));
    }
    Some(FeedUpdate::Drop { cursor, keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> L1Settings {
        L1Settings {
            slots: 64,
            max_entry_bytes: 4096,
            max_ttl_ms: 5000,
            feed_interval_ms: 250,
            feed_stale_ms: 1000,
        }
    }

    fn req(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn hdrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn stored(vary: &str, request: &[(String, Vec<u8>)], fresh_ms: u64) -> Vec<u8> {
        let h = hdrs(&[
            ("content-type", "text/plain"),
            ("age", "7"),
            ("x-cache", "HIT"),
            ("vary", vary),
        ]);
        let e = entry_for(
            &settings(),
            3,
            "m",
            "k",
            request,
            200,
            &h,
            b"body",
            fresh_ms,
            1000,
        )
        .unwrap();
        encode(&e, 4096).unwrap()
    }

    #[test]
    fn a_stored_answer_comes_back_with_age_advanced_until_it_expires() {
        let slot = stored("", &req(&[]), 60_000);
        let Answer {
            status,
            headers,
            body,
        } = answer(&slot, 3, "m", "k", &req(&[]), 3500).unwrap();
        assert_eq!((status, body.as_slice()), (200, &b"body"[..]));
        assert!(headers.contains(&("age".into(), "9".into())), "{headers:?}");
        assert!(headers.contains(&("x-cache".into(), "HIT".into())));
        assert_eq!(headers.iter().filter(|(n, _)| n == "age").count(), 1);
        // Capped by max_ttl_ms (5 s) although fresh for a minute.
        assert!(answer(&slot, 3, "m", "k", &req(&[]), 5999).is_some());
        assert!(answer(&slot, 3, "m", "k", &req(&[]), 6000).is_none());
        // Another generation, key or map: not this entry.
        assert!(answer(&slot, 4, "m", "k", &req(&[]), 2000).is_none());
        assert!(answer(&slot, 3, "m", "k2", &req(&[]), 2000).is_none());
        assert!(answer(&slot, 3, "m2", "k", &req(&[]), 2000).is_none());
        assert!(holds(&slot, "m", "k") && !holds(&slot, "m", "x"));
    }

    #[test]
    fn rfc9110_15_3_7_a_partial_answer_is_never_kept_as_a_whole_one() {
        let h = hdrs(&[("content-range", "bytes 0-3/10")]);
        assert!(entry_for(&settings(), 0, "m", "k", &[], 206, &h, b"body", 60_000, 0).is_none());
        assert!(entry_for(&settings(), 0, "m", "k", &[], 200, &h, b"body", 60_000, 0).is_none());
        let range = hdrs(&[("Content-Range", "bytes */10")]);
        assert!(entry_for(&settings(), 0, "m", "k", &[], 416, &range, b"", 60_000, 0).is_none());
        let whole = hdrs(&[("content-type", "text/plain")]);
        assert!(entry_for(
            &settings(),
            0,
            "m",
            "k",
            &[],
            200,
            &whole,
            b"body",
            60_000,
            0
        )
        .is_some());
        // And a Range request never reads the L1.
        assert!(!request_eligible("GET", &req(&[("Range", "bytes=0-3")])));
    }

    #[test]
    fn never_past_the_freshness_the_companion_gives() {
        let slot = stored("", &req(&[]), 800);
        assert!(answer(&slot, 3, "m", "k", &req(&[]), 1799).is_some());
        assert!(answer(&slot, 3, "m", "k", &req(&[]), 1800).is_none());
        let h = hdrs(&[("content-type", "text/plain")]);
        assert!(entry_for(&settings(), 0, "m", "k", &[], 200, &h, b"", 0, 0).is_none());
        let off = L1Settings {
            slots: 0,
            ..settings()
        };
        assert!(entry_for(&off, 0, "m", "k", &[], 200, &h, b"", 10, 0).is_none());
    }

    #[test]
    fn variants_must_match_byte_for_byte() {
        let de = req(&[("accept-language", "de")]);
        let slot = stored("Accept-Language", &de, 60_000);
        assert!(answer(&slot, 3, "m", "k", &de, 2000).is_some());
        assert!(answer(&slot, 3, "m", "k", &req(&[("Accept-Language", "de")]), 2000).is_some());
        assert!(answer(&slot, 3, "m", "k", &req(&[("accept-language", "fr")]), 2000).is_none());
        assert!(answer(&slot, 3, "m", "k", &req(&[]), 2000).is_none());
        let none = stored("accept-language", &req(&[]), 60_000);
        assert!(answer(&none, 3, "m", "k", &req(&[]), 2000).is_some());
        assert!(answer(&none, 3, "m", "k", &de, 2000).is_none());
        let h = hdrs(&[("vary", "*")]);
        assert!(entry_for(&settings(), 0, "m", "k", &[], 200, &h, b"", 10, 0).is_none());
    }

    #[test]
    fn only_plain_gets_and_heads_are_answered() {
        assert!(request_eligible("GET", &req(&[("accept", "*/*")])));
        assert!(request_eligible("HEAD", &req(&[])));
        assert!(!request_eligible("POST", &req(&[])));
        for h in NOT_FOR_L1 {
            assert!(!request_eligible("GET", &req(&[(h, "x")])), "{h}");
        }
        assert!(!request_eligible(
            "GET",
            &req(&[("If-None-Match", "\"a\"")])
        ));
    }

    #[test]
    fn the_slot_bound_holds_and_bad_bytes_decode_to_nothing() {
        let h = hdrs(&[("content-type", "text/plain")]);
        let e = entry_for(&settings(), 0, "m", "k", &[], 200, &h, &[b'x'; 4000], 10, 0).unwrap();
        assert!(encode(&e, 4096).is_some());
        let big = entry_for(&settings(), 0, "m", "k", &[], 200, &h, &[b'x'; 4096], 10, 0).unwrap();
        assert!(encode(&big, 4096).is_none());
        let good = encode(&e, 4096).unwrap();
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_none(), "{cut}");
        }
        assert!(decode(b"").is_none());
        assert!(decode(b"XXXX").is_none());
        assert_eq!(decode(&good).unwrap(), e);
    }

    #[test]
    fn a_tag_names_its_entry_and_nothing_else() {
        let h = hdrs(&[("content-type", "text/plain")]);
        let e = entry_for(&settings(), 3, "m", "k", &[], 200, &h, b"x", 60_000, 1000).unwrap();
        let tag = encode_tag(&e);
        assert!(tag.len() < 64, "a tag is small: {}", tag.len());
        assert!(tag_matches(&tag, Some(3), "m", "k", 1000));
        assert!(
            !tag_matches(&tag, Some(3), "m", "k", 6000),
            "expired (max_ttl 5 s)"
        );
        assert!(!tag_matches(&tag, Some(4), "m", "k", 1000));
        assert!(!tag_matches(&tag, Some(3), "m", "kk", 1000));
        assert!(!tag_matches(&tag, Some(3), "mm", "k", 1000));
        assert!(
            tag_matches(&tag, None, "m", "k", 9_999_999),
            "any generation, any time"
        );
        for cut in 0..tag.len() {
            assert!(!tag_matches(&tag[..cut], None, "m", "k", 0), "{cut}");
        }
        assert!(!tag_matches(b"", None, "m", "k", 0));
    }

    #[test]
    fn slots_spread_keys_and_stay_in_the_table() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            let s = slot_of("m", &format!("k{i}"), 64);
            assert!(s < 64);
            seen.insert(s);
        }
        assert_eq!(seen.len(), 64);
        assert_ne!(slot_of("a", "bc", 1 << 20), slot_of("ab", "c", 1 << 20));
        assert_eq!(slot_of("m", "k", 0), 0);
        assert_eq!(slot_key(7), "hzcache.l1.7");
    }

    #[test]
    fn feed_answers_become_drops() {
        let at = FeedPosition {
            epoch: Some("00000000000000aa".into()),
            cursor: 10,
        };
        assert_eq!(
            read_feed(
                b"hzcache-feed 1 00000000000000aa 12\nhzcache a%20b\ncache k\n",
                &at
            ),
            Some(FeedUpdate::Drop {
                cursor: 12,
                keys: vec![
                    ("hzcache".into(), "a b".into()),
                    ("cache".into(), "k".into())
                ]
            })
        );
        assert_eq!(
            read_feed(
                b"hzcache-feed 1 00000000000000aa 12\nhzcache k%00v:1:2\n",
                &at
            ),
            Some(FeedUpdate::Drop {
                cursor: 12,
                keys: vec![("hzcache".into(), "k".into())]
            }),
            "a variant drops its primary entry"
        );
        assert_eq!(
            read_feed(b"hzcache-feed 1 00000000000000aa 12\nm k\n* all\nm j", &at),
            Some(FeedUpdate::DropAll {
                epoch: "00000000000000aa".into(),
                cursor: 12,
                incident: "00000000000000aa:12".into(),
            }),
            "the second line after cursor 10 is event 12, whoever reads it"
        );
        // Another process, a first answer, or a cursor that went backwards: drop everything.
        for body in [
            &b"hzcache-feed 1 00000000000000bb 3\n"[..],
            b"hzcache-feed 1 00000000000000aa 9\n",
        ] {
            assert!(matches!(
                read_feed(body, &at),
                Some(FeedUpdate::DropAll { .. })
            ));
        }
        assert!(matches!(
            read_feed(
                b"hzcache-feed 1 00000000000000aa 0\n",
                &FeedPosition::default()
            ),
            Some(FeedUpdate::DropAll { .. })
        ));
        for bad in [
            &b""[..],
            b"nope",
            b"hzcache-feed 2 aa 1\n",
            b"hzcache-feed 1 aa x\n",
            b"hzcache-feed 1 00000000000000aa 12\nnospace\n",
            b"hzcache-feed 1 00000000000000aa 12\nm %zz\n",
            b"\xff\xfe",
        ] {
            assert_eq!(
                read_feed(bad, &at),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
