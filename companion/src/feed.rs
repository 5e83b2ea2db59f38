//! The invalidation feed, sans-IO: what `GET /v1/feed` answers, and the bookkeeping that makes
//! it trustworthy. Owns
//!
//! - the **ring**: the newest invalidations (one line `MAP KEY` each, percent-encoded like
//!   `x-hzcache-key`) and `* all` resets, each with its own sequence number (1, 2, 3, … per
//!   process), bounded by [`RING_EVENTS`] and [`RING_BYTES`];
//! - the **answer** for a caller's `after`: the lines after it, or `* all` when it cannot be
//!   answered line by line (it is older than the ring, or from another process, or a reset
//!   came since);
//! - the **repair tracking** per map and partition (protocol sheet §8.2): the partition uuid
//!   and the latest invalidation sequence seen. A sequence that jumps, a partition uuid that
//!   changes, a map-wide clear, or member metadata (`Map.FetchNearCacheInvalidationMetadata`)
//!   that is still ahead of what arrived after [`REPAIR_GRACE`] each put one `* all` in the
//!   ring, as do the driver's own findings (a member joined or left, a listener registered
//!   again). An event is never held back: its key line goes out whatever its sequence says.
//!
//! No I/O, no clock: events, metadata and `now` come in as values. The driver
//! (`feed_driver`) registers the listeners, fetches metadata and holds the lock around this.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::fetch_request::MAX_KEY_BYTES;
use hazelcast_client::{Invalidation, InvalidationMetadata, Uuid};

/// Events the ring keeps. A filter polls about every 250 ms, so at 65 536 events a filter
/// falls behind only past ~260 000 invalidations a second (or after a pause of its own); it then
/// gets `* all`, never a wrong answer. The memory is bounded by [`RING_BYTES`] as well.
pub const RING_EVENTS: usize = 65_536;
/// Bytes of lines the ring keeps at most (keys can be up to 8 KiB): the older events go
/// first when either bound is reached.
pub const RING_BYTES: usize = 16 * 1024 * 1024;
/// Lines in one answer at most; the filter asks again from the answer's cursor.
pub const MAX_LINES: usize = 4096;
/// Bytes of lines in one answer at most (one line is always sent): keeps the answer within
/// what a filter reads in one callout whatever the keys look like.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// How long a member's metadata may be ahead of the events received before the difference
/// counts as lost events: the metadata answer can overtake events already on their way (they
/// are sent asynchronously by the member), so it is checked again after this.
pub const REPAIR_GRACE: Duration = Duration::from_secs(2);
/// The first line's magic and format version.
pub const FORMAT: &str = "hzcache-feed 1";

/// Why the feed told its readers to drop everything; `hzcache_feed_resets_total{reason}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// An answer for an `after` older than the ring's oldest event.
    Overflow,
    /// An answer for an `after` beyond the cursor: the caller talked to another process.
    Foreign,
    /// An event's sequence skipped numbers: events between were lost.
    Gap,
    /// Member metadata stayed ahead of the events received: events were lost.
    Missed,
    /// A partition uuid changed (its history was lost, say with a member), or metadata
    /// reported a sequence below what arrived.
    Uuid,
    /// A map was cleared or evicted as a whole (`clear`, `evictAll`).
    Clear,
    /// The member list changed: partitions moved.
    Members,
    /// A listener was registered again on a connection (events in between were lost).
    Reregistered,
    /// The feed became ready under a new epoch (start-up, every connection lost, a new
    /// cluster): the epoch's first event.
    Epoch,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Reason::Overflow,
        Reason::Foreign,
        Reason::Gap,
        Reason::Missed,
        Reason::Uuid,
        Reason::Clear,
        Reason::Members,
        Reason::Reregistered,
        Reason::Epoch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Reason::Overflow => "overflow",
            Reason::Foreign => "foreign",
            Reason::Gap => "gap",
            Reason::Missed => "missed",
            Reason::Uuid => "uuid",
            Reason::Clear => "clear",
            Reason::Members => "members",
            Reason::Reregistered => "reregistered",
            Reason::Epoch => "epoch",
        }
    }
}

/// One event in the ring: a key line, or `None` for `* all`.
#[derive(Debug)]
struct Event {
    line: Option<Box<str>>,
}

/// What one map and partition has shown of its history.
#[derive(Clone, Copy, Debug, Default)]
struct Partition {
    uuid: Option<Uuid>,
    /// The latest sequence received (or learnt from metadata); `None` = not known yet.
    sequence: Option<i64>,
}

/// Metadata said the member was at `target`; checked at `deadline`.
#[derive(Clone, Copy, Debug)]
struct Pending {
    target: i64,
    deadline: Instant,
}

/// The feed's whole state. See the module documentation.
#[derive(Debug)]
pub struct Feed {
    epoch: u64,
    /// Percent-encoded names of the fed maps; events name a map by its index here.
    maps: Vec<String>,
    ready: bool,
    ring: VecDeque<Event>,
    ring_bytes: usize,
    /// The sequence of the event before `ring[0]`: everything up to it is forgotten.
    floor: u64,
    /// The sequence of the newest `* all` (0: none yet).
    last_all: u64,
    partitions: HashMap<(usize, i32), Partition>,
    pending: HashMap<(usize, i32), Pending>,
    events_total: u64,
    resets: [u64; Reason::ALL.len()],
}

/// An answer for `GET /v1/feed`.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The feed cannot vouch for anything yet (not connected, listeners not registered).
    NotReady,
    /// The body: the first line and the event lines, separated by `\n`.
    Feed(String),
}

impl Feed {
    /// A feed for `maps` (the names as configured), with `epoch` (random per process). Not
    /// ready until [`Feed::set_ready`].
    pub fn new(maps: &[String], epoch: u64) -> Feed {
        Feed {
            epoch,
            maps: maps.iter().map(|m| encode(m)).collect(),
            ready: false,
            ring: VecDeque::new(),
            ring_bytes: 0,
            floor: 0,
            last_all: 0,
            partitions: HashMap::new(),
            pending: HashMap::new(),
            events_total: 0,
            resets: [0; Reason::ALL.len()],
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The sequence of the newest event (0 when none yet).
    pub fn cursor(&self) -> u64 {
        self.floor + self.ring.len() as u64
    }

    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Becoming ready starts the epoch's history with a `* all`, so the cursor a reader gets
    /// is never 0: `after=0` means "I know nothing", and a reader that synced at an empty
    /// ring would otherwise keep asking for nothing and never get the first event's line.
    pub fn set_ready(&mut self, ready: bool) {
        if ready && !self.ready {
            self.reset(Reason::Epoch);
        }
        self.ready = ready;
    }

    /// Starts over under `epoch`: the ring, the tracking and readiness are gone (the cursor
    /// keeps counting, so an `after` from the old epoch is answered `* all`).
    pub fn new_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.floor = self.cursor();
        self.ring.clear();
        self.ring_bytes = 0;
        self.partitions.clear();
        self.pending.clear();
        self.ready = false;
    }

    /// One invalidation event of map number `map`.
    pub fn on_invalidation(&mut self, map: usize, inv: &Invalidation) {
        let Some(name) = self.maps.get(map) else {
            return;
        };
        let line = match (&inv.key, inv.all) {
            (Some(k), false) if k.len() <= MAX_KEY_BYTES => Some(format!("{name} {}", encode(k))),
            // Longer keys cannot be in any filter's L1 (it never sends them): nothing to say.
            _ => None,
        };
        self.track_event(map, inv);
        if inv.all {
            // Members count a clear (or evict-all) once in every partition of the map: the
            // event in the partition of the map's name, a silent increment in all others.
            for ((m, pid), p) in self.partitions.iter_mut() {
                if *m == map && *pid != inv.partition {
                    p.sequence = p.sequence.map(|s| s.saturating_add(1));
                }
            }
            self.reset(Reason::Clear);
        }
        if let Some(line) = line {
            self.events_total += 1;
            self.push(Some(line.into_boxed_str()));
        }
    }

    fn track_event(&mut self, map: usize, inv: &Invalidation) {
        let key = (map, inv.partition);
        let p = self.partitions.entry(key).or_default();
        let mut reason = None;
        match (p.uuid, inv.partition_uuid) {
            (Some(held), Some(got)) if held != got => {
                reason = Some(Reason::Uuid);
                p.uuid = Some(got);
                p.sequence = Some(inv.sequence);
            }
            (None, Some(got)) => p.uuid = Some(got),
            _ => {}
        }
        if reason.is_none() {
            match p.sequence {
                Some(held) if inv.sequence > held.saturating_add(1) => {
                    tracing::info!(
                        partition = inv.partition,
                        received = held,
                        got = inv.sequence,
                        "invalidation sequence skipped numbers"
                    );
                    reason = Some(Reason::Gap);
                    p.sequence = Some(inv.sequence);
                }
                Some(held) if inv.sequence <= held => {} // a repeat, or late: its key went out
                _ => p.sequence = Some(inv.sequence),
            }
        }
        let now_at = p.sequence;
        if let (Some(pending), Some(at)) = (self.pending.get(&key), now_at) {
            if at >= pending.target {
                self.pending.remove(&key);
            }
        }
        if let Some(r) = reason {
            self.reset(r);
        }
    }

    /// One repair round's metadata, from every member. `baseline`: the first round after
    /// the listeners were registered, which only learns where each partition stands (events
    /// from before the registration were never the feed's to deliver).
    pub fn on_metadata(&mut self, now: Instant, members: &[InvalidationMetadata], baseline: bool) {
        let mut uuid_changed = false;
        let mut regressed = false;
        for md in members {
            for &(pid, uuid) in &md.partition_uuids {
                for map in 0..self.maps.len() {
                    let p = self.partitions.entry((map, pid)).or_default();
                    match p.uuid {
                        Some(held) if held != uuid => {
                            uuid_changed |= !baseline;
                            p.uuid = Some(uuid);
                            // The sequences below belong to the new history.
                            p.sequence = None;
                            self.pending.remove(&(map, pid));
                        }
                        Some(_) => {}
                        None => p.uuid = Some(uuid),
                    }
                }
            }
            for (name, seqs) in &md.sequences {
                let Some(map) = self.maps.iter().position(|m| *m == encode(name)) else {
                    continue;
                };
                for &(pid, seq) in seqs {
                    let key = (map, pid);
                    let p = self.partitions.entry(key).or_default();
                    match p.sequence {
                        None => p.sequence = Some(seq),
                        Some(held) if seq > held => {
                            if baseline {
                                p.sequence = Some(seq);
                            } else {
                                // Keep an older check: its target is the one to verify first.
                                self.pending.entry(key).or_insert(Pending {
                                    target: seq,
                                    deadline: now + REPAIR_GRACE,
                                });
                            }
                        }
                        // The member knows less than it told us: history was lost. (At
                        // the baseline, events that came first simply stand.)
                        Some(_) if seq < p.sequence.unwrap_or(0) && !baseline => {
                            regressed = true;
                            p.sequence = Some(seq);
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        if uuid_changed || regressed {
            self.reset(Reason::Uuid);
        }
        self.poll(now);
    }

    /// Settles the metadata checks whose grace has passed: a partition still behind what its
    /// member reported lost events.
    pub fn poll(&mut self, now: Instant) {
        let due: Vec<(usize, i32)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        let mut missed = false;
        for key in due {
            let Some(pending) = self.pending.remove(&key) else {
                continue;
            };
            let p = self.partitions.entry(key).or_default();
            if p.sequence.is_none_or(|s| s < pending.target) {
                tracing::info!(
                    map = %self.maps.get(key.0).map_or("?", |m| m.as_str()),
                    partition = key.1,
                    received = ?p.sequence,
                    reported = pending.target,
                    "invalidation events missed (member metadata is ahead)"
                );
                missed = true;
                p.sequence = Some(pending.target);
            }
        }
        if missed {
            self.reset(Reason::Missed);
        }
    }

    /// Puts one `* all` in the ring (once: a reset right after a reset adds nothing).
    pub fn reset(&mut self, reason: Reason) {
        self.resets[reason as usize] += 1;
        if self.last_all != 0 && self.last_all == self.cursor() {
            return;
        }
        self.push(None);
        self.last_all = self.cursor();
    }

    fn push(&mut self, line: Option<Box<str>>) {
        self.ring_bytes += line.as_ref().map_or(0, |l| l.len());
        self.ring.push_back(Event { line });
        while self.ring.len() > RING_EVENTS || self.ring_bytes > RING_BYTES {
            let Some(old) = self.ring.pop_front() else {
                break;
            };
            self.ring_bytes -= old.line.as_ref().map_or(0, |l| l.len());
            self.floor += 1;
        }
    }

    /// The answer for a caller that has seen everything up to `after` (0: nothing).
    pub fn answer(&mut self, after: u64) -> Answer {
        if !self.ready {
            return Answer::NotReady;
        }
        let cursor = self.cursor();
        let all = if after > cursor {
            self.resets[Reason::Foreign as usize] += 1;
            true
        } else if after == 0 {
            return Answer::Feed(self.head(cursor));
        } else if after < self.floor {
            self.resets[Reason::Overflow as usize] += 1;
            true
        } else {
            // A reset since `after` subsumes every line around it.
            after < self.last_all
        };
        if all {
            let mut body = self.head(cursor);
            body.push_str("\n* all");
            return Answer::Feed(body);
        }
        // The ring holds `floor + 1 ..= cursor` in order, so `after` is an index.
        let start = (after - self.floor) as usize;
        let mut lines = String::new();
        let mut last = after;
        for (i, event) in self.ring.iter().enumerate().skip(start) {
            let Some(line) = &event.line else {
                continue; // cannot happen: `after >= last_all`
            };
            if last > after
                && (last - after >= MAX_LINES as u64
                    || lines.len() + line.len() + 1 > MAX_ANSWER_BYTES)
            {
                break;
            }
            lines.push('\n');
            lines.push_str(line);
            last = self.floor + i as u64 + 1;
        }
        let mut body = self.head(last);
        body.push_str(&lines);
        Answer::Feed(body)
    }

    fn head(&self, cursor: u64) -> String {
        format!("{FORMAT} {:016x} {cursor}", self.epoch)
    }

    /// What the feed's metrics show (`feed_driver` exposes them).
    pub fn stats(&self) -> FeedStats {
        FeedStats {
            events_total: self.events_total,
            resets: Reason::ALL.map(|r| (r, self.resets[r as usize])),
            cursor: self.cursor(),
            ready: self.ready,
        }
    }
}

/// A snapshot of the feed's counters for `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedStats {
    /// Invalidated keys put in the feed.
    pub events_total: u64,
    /// Resets by reason, every reason listed.
    pub resets: [(Reason, u64); Reason::ALL.len()],
    /// The newest event's sequence.
    pub cursor: u64,
    /// Whether `/v1/feed` answers.
    pub ready: bool,
}

/// `after=N` from a query string: absent or empty = 0; anything else that is not a decimal
/// u64 is an error.
pub fn parse_after(query: Option<&str>) -> Result<u64, String> {
    let mut after = 0;
    for pair in query.unwrap_or("").split('&') {
        if let Some(v) = pair.strip_prefix("after=") {
            after = v
                .parse::<u64>()
                .map_err(|_| "after must be a decimal number".to_string())?;
        }
    }
    Ok(after)
}

/// The key encoding of the callout (`x-hzcache-key`), which feed lines use too.
pub use hzcache_contract::encode_key as encode;

#[cfg(test)]
mod tests {
    use super::*;

    const EPOCH: u64 = 0x0123_4567_89ab_cdef;
    const P1: Uuid = Uuid::from_u128(0x11);
    const P2: Uuid = Uuid::from_u128(0x22);

    /// A ready feed without its opening `* all`, so events number from 1 here.
    fn feed() -> Feed {
        let mut f = Feed::new(&["hzcache".into(), "my map".into()], EPOCH);
        f.ready = true;
        f
    }

    fn inv(key: &str, partition: i32, sequence: i64) -> Invalidation {
        Invalidation {
            key: Some(key.into()),
            all: false,
            from_this_client: false,
            partition,
            partition_uuid: Some(P1),
            sequence,
        }
    }

    fn body(f: &mut Feed, after: u64) -> String {
        match f.answer(after) {
            Answer::Feed(b) => b,
            Answer::NotReady => panic!("not ready"),
        }
    }

    fn metadata(map: &str, seqs: &[(i32, i64)], uuid: Uuid) -> Vec<InvalidationMetadata> {
        vec![InvalidationMetadata {
            member: Uuid::from_u128(1),
            sequences: vec![(map.into(), seqs.to_vec())],
            partition_uuids: seqs.iter().map(|(p, _)| (*p, uuid)).collect(),
        }]
    }

    #[test]
    fn keys_are_listed_after_the_callers_cursor_oldest_first_percent_encoded() {
        let mut f = feed();
        f.on_invalidation(0, &inv("http://a/x?b=1", 3, 1));
        f.on_invalidation(1, &inv("k é\0v:1", 4, 1));
        f.on_invalidation(0, &inv("http://a/y", 3, 2));
        assert_eq!(
            body(&mut f, 1),
            "hzcache-feed 1 0123456789abcdef 3\nmy%20map k%20%C3%A9%00v:1\nhzcache http://a/y"
        );
        assert_eq!(body(&mut f, 3), "hzcache-feed 1 0123456789abcdef 3");
        assert_eq!(f.cursor(), 3);
    }

    #[test]
    fn after_zero_gets_the_cursor_and_no_lines() {
        let mut f = feed();
        assert_eq!(body(&mut f, 0), "hzcache-feed 1 0123456789abcdef 0");
        f.on_invalidation(0, &inv("k", 1, 1));
        assert_eq!(body(&mut f, 0), "hzcache-feed 1 0123456789abcdef 1");
    }

    #[test]
    fn a_cursor_beyond_ours_is_from_another_process_and_gets_all() {
        let mut f = feed();
        f.on_invalidation(0, &inv("k", 1, 1));
        assert_eq!(body(&mut f, 7), "hzcache-feed 1 0123456789abcdef 1\n* all");
        assert_eq!(f.resets[Reason::Foreign as usize], 1);
    }

    #[test]
    fn a_caller_older_than_the_ring_gets_all() {
        let mut f = feed();
        for i in 0..(RING_EVENTS as i64 + 10) {
            f.on_invalidation(0, &inv("k", 1, i + 1));
        }
        assert_eq!(f.ring.len(), RING_EVENTS);
        let cursor = f.cursor();
        assert_eq!(
            body(&mut f, 5),
            format!("hzcache-feed 1 0123456789abcdef {cursor}\n* all")
        );
        // The oldest retained events are still answered line by line.
        let floor = f.floor;
        let b = body(&mut f, floor);
        assert!(!b.contains("* all"));
        assert_eq!(b.lines().count(), 1 + MAX_LINES);
    }

    #[test]
    fn the_ring_is_bounded_in_bytes_too() {
        let mut f = feed();
        let long = "x".repeat(8000);
        for i in 0..3000 {
            f.on_invalidation(0, &inv(&long, 1, i + 1));
        }
        assert!(f.ring_bytes <= RING_BYTES);
        assert!(f.ring.len() < 3000);
        assert_eq!(f.cursor(), 3000);
    }

    #[test]
    fn a_long_backlog_comes_in_pages_whose_cursor_is_the_last_line() {
        let mut f = feed();
        for i in 0..5000 {
            f.on_invalidation(0, &inv(&format!("k{i}"), 1, i + 1));
        }
        let first = body(&mut f, 1);
        let head = first.lines().next().unwrap().to_string();
        assert_eq!(head, "hzcache-feed 1 0123456789abcdef 4097");
        assert_eq!(first.lines().nth(1), Some("hzcache k1"));
        assert_eq!(first.lines().count(), 1 + MAX_LINES);
        let second = body(&mut f, 4097);
        assert_eq!(
            second.lines().next(),
            Some("hzcache-feed 1 0123456789abcdef 5000")
        );
        assert_eq!(second.lines().nth(1), Some("hzcache k4097"));
        assert_eq!(second.lines().count(), 1 + 5000 - 4097);
        // Large keys: the byte bound cuts the page, and one line always goes.
        let mut g = feed();
        let long = "y".repeat(8000);
        for i in 0..200 {
            g.on_invalidation(0, &inv(&long, 1, i + 1));
        }
        let page = body(&mut g, 1);
        assert!(page.len() <= MAX_ANSWER_BYTES + 100);
        let n = page.lines().count() as u64 - 1;
        assert!(n > 1 && n < 199);
        assert!(page.starts_with(&format!("hzcache-feed 1 0123456789abcdef {}\n", 1 + n)));
    }

    #[test]
    fn a_sequence_jump_is_a_gap_and_puts_one_reset_in_the_ring() {
        let mut f = feed();
        f.on_invalidation(0, &inv("a", 5, 1));
        f.on_invalidation(0, &inv("b", 5, 2));
        f.on_invalidation(0, &inv("c", 5, 4)); // 3 was lost
        assert_eq!(f.resets[Reason::Gap as usize], 1);
        // Ring: a(1) b(2) * all(3) c(4).
        assert_eq!(f.cursor(), 4);
        assert_eq!(body(&mut f, 2), "hzcache-feed 1 0123456789abcdef 4\n* all");
        // A caller that already saw the reset is not told again.
        assert_eq!(
            body(&mut f, 3),
            "hzcache-feed 1 0123456789abcdef 4\nhzcache c"
        );
        // Other partitions and maps count on their own.
        f.on_invalidation(0, &inv("d", 6, 9));
        f.on_invalidation(1, &inv("e", 5, 1));
        assert_eq!(f.resets[Reason::Gap as usize], 1);
    }

    #[test]
    fn repeated_and_late_events_are_listed_but_are_no_gap() {
        let mut f = feed();
        f.on_invalidation(0, &inv("a", 5, 2));
        f.on_invalidation(0, &inv("a", 5, 2));
        f.on_invalidation(0, &inv("b", 5, 1));
        assert_eq!(f.resets.iter().sum::<u64>(), 0);
        assert_eq!(body(&mut f, 1).lines().count(), 3);
    }

    #[test]
    fn a_new_partition_uuid_is_a_reset() {
        let mut f = feed();
        f.on_invalidation(0, &inv("a", 5, 7));
        let other = Invalidation {
            partition_uuid: Some(P2),
            ..inv("b", 5, 1)
        };
        f.on_invalidation(0, &other);
        assert_eq!(f.resets[Reason::Uuid as usize], 1);
        assert_eq!(f.resets[Reason::Gap as usize], 0);
        assert_eq!(body(&mut f, 1), "hzcache-feed 1 0123456789abcdef 3\n* all");
        // The new history goes on from there.
        f.on_invalidation(
            0,
            &Invalidation {
                partition_uuid: Some(P2),
                ..inv("c", 5, 2)
            },
        );
        assert_eq!(f.resets.iter().sum::<u64>(), 1);
    }

    #[test]
    fn a_cleared_map_is_a_reset() {
        let mut f = feed();
        f.on_invalidation(0, &inv("a", 5, 1));
        let clear = Invalidation {
            key: None,
            all: true,
            ..inv("", 9, 1)
        };
        f.on_invalidation(0, &clear);
        assert_eq!(f.resets[Reason::Clear as usize], 1);
        assert_eq!(body(&mut f, 1), "hzcache-feed 1 0123456789abcdef 2\n* all");
        assert_eq!(body(&mut f, 2), "hzcache-feed 1 0123456789abcdef 2");
        // The clear counted once in partition 5 too (silently): its next write is 3, and
        // metadata saying 3 is no loss.
        let t0 = Instant::now();
        f.on_metadata(t0, &metadata("hzcache", &[(5, 2)], P1), false);
        f.on_invalidation(0, &inv("b", 5, 3));
        f.poll(t0 + REPAIR_GRACE);
        assert_eq!(f.resets.iter().sum::<u64>(), 1);
    }

    #[test]
    fn back_to_back_resets_are_one_incident_in_the_ring() {
        let mut f = feed();
        f.on_invalidation(0, &inv("a", 5, 1));
        f.reset(Reason::Members);
        f.reset(Reason::Reregistered);
        assert_eq!(f.cursor(), 2);
        f.on_invalidation(0, &inv("b", 5, 2));
        f.reset(Reason::Members);
        assert_eq!(f.cursor(), 4);
        assert_eq!(f.resets[Reason::Members as usize], 2);
    }

    #[test]
    fn keys_of_other_types_and_oversized_keys_advance_the_sequence_silently() {
        let mut f = feed();
        f.on_invalidation(0, &inv("a", 5, 1));
        let foreign = Invalidation {
            key: None,
            ..inv("", 5, 2)
        };
        f.on_invalidation(0, &foreign);
        f.on_invalidation(0, &inv(&"z".repeat(MAX_KEY_BYTES + 1), 5, 3));
        f.on_invalidation(0, &inv("b", 5, 4));
        assert_eq!(f.resets.iter().sum::<u64>(), 0);
        assert_eq!(
            body(&mut f, 1),
            "hzcache-feed 1 0123456789abcdef 2\nhzcache b"
        );
        assert_eq!(f.events_total, 2);
    }

    #[test]
    fn metadata_sets_the_baseline_and_then_the_events_must_follow_it() {
        let mut f = feed();
        let t0 = Instant::now();
        f.on_metadata(t0, &metadata("hzcache", &[(5, 10), (6, 0)], P1), true);
        f.on_invalidation(0, &inv("a", 5, 11));
        f.on_invalidation(0, &inv("b", 6, 1));
        assert_eq!(f.resets.iter().sum::<u64>(), 0);
        f.on_invalidation(0, &inv("c", 6, 3));
        assert_eq!(f.resets[Reason::Gap as usize], 1);
    }

    #[test]
    fn metadata_ahead_of_the_events_is_a_loss_once_the_grace_has_passed() {
        let mut f = feed();
        let t0 = Instant::now();
        f.on_metadata(t0, &metadata("hzcache", &[(5, 10), (6, 3)], P1), true);
        // The member is at 12 on partition 5 and 4 on partition 6.
        f.on_metadata(t0, &metadata("hzcache", &[(5, 12), (6, 4)], P1), false);
        // Partition 6's event arrives within the grace; partition 5's never do.
        f.on_invalidation(0, &inv("late", 6, 4));
        f.poll(t0 + REPAIR_GRACE / 2);
        assert_eq!(f.resets.iter().sum::<u64>(), 0);
        f.poll(t0 + REPAIR_GRACE);
        assert_eq!(f.resets[Reason::Missed as usize], 1);
        let cursor = f.cursor();
        assert_eq!(
            body(&mut f, 1),
            format!("hzcache-feed 1 0123456789abcdef {cursor}\n* all")
        );
        // Partition 5 now stands at 12: its next event is no gap.
        f.on_invalidation(0, &inv("next", 5, 13));
        assert_eq!(f.resets.iter().sum::<u64>(), 1);
        assert!(f.pending.is_empty());
    }

    #[test]
    fn metadata_with_another_partition_uuid_or_a_lower_sequence_is_a_reset() {
        let mut f = feed();
        let t0 = Instant::now();
        f.on_metadata(t0, &metadata("hzcache", &[(5, 10)], P1), true);
        f.on_metadata(t0, &metadata("hzcache", &[(5, 10)], P2), false);
        assert_eq!(f.resets[Reason::Uuid as usize], 1);
        f.on_invalidation(
            0,
            &Invalidation {
                partition_uuid: Some(P2),
                ..inv("a", 5, 11)
            },
        );
        f.on_metadata(t0, &metadata("hzcache", &[(5, 3)], P2), false);
        assert_eq!(f.resets[Reason::Uuid as usize], 2);
        // Maps not fed are ignored.
        f.on_metadata(t0, &metadata("other", &[(5, 99)], P2), false);
        f.poll(t0 + REPAIR_GRACE * 2);
        assert_eq!(f.resets.iter().sum::<u64>(), 2);
    }

    #[test]
    fn a_new_epoch_forgets_the_ring_and_old_cursors_get_all() {
        let mut f = feed();
        f.on_invalidation(0, &inv("a", 5, 1));
        f.on_invalidation(0, &inv("b", 5, 2));
        f.new_epoch(7);
        assert_eq!(f.answer(1), Answer::NotReady);
        f.set_ready(true);
        // The new epoch opens with a reset (3): every cursor of the old one gets it.
        assert_eq!(body(&mut f, 1), "hzcache-feed 1 0000000000000007 3\n* all");
        assert_eq!(body(&mut f, 2), "hzcache-feed 1 0000000000000007 3\n* all");
        assert_eq!(body(&mut f, 3), "hzcache-feed 1 0000000000000007 3");
        // Tracking starts over too: a sequence far ahead is a baseline, not a gap.
        f.on_invalidation(0, &inv("c", 5, 40));
        assert_eq!(
            body(&mut f, 3),
            "hzcache-feed 1 0000000000000007 4\nhzcache c"
        );
    }

    #[test]
    fn a_feed_not_ready_answers_nothing() {
        let mut f = Feed::new(&["m".into()], 1);
        assert_eq!(f.answer(0), Answer::NotReady);
    }

    #[test]
    fn becoming_ready_opens_the_epoch_with_a_reset_so_no_cursor_is_zero() {
        let mut f = Feed::new(&["m".into()], 1);
        f.set_ready(true);
        f.set_ready(true);
        // A reader syncs with after=0 and gets cursor 1; the first event then reaches it.
        assert_eq!(body(&mut f, 0), "hzcache-feed 1 0000000000000001 1");
        f.on_invalidation(0, &inv("k", 1, 1));
        assert_eq!(body(&mut f, 1), "hzcache-feed 1 0000000000000001 2\nm k");
        assert_eq!(f.resets[Reason::Epoch as usize], 1);
        f.new_epoch(2);
        f.set_ready(true);
        assert_eq!(body(&mut f, 0), "hzcache-feed 1 0000000000000002 3");
        assert_eq!(f.resets[Reason::Epoch as usize], 2);
    }

    #[test]
    fn after_is_parsed_strictly() {
        assert_eq!(parse_after(None), Ok(0));
        assert_eq!(parse_after(Some("after=12")), Ok(12));
        assert_eq!(parse_after(Some("x=1&after=3")), Ok(3));
        assert!(parse_after(Some("after=-1")).is_err());
        assert!(parse_after(Some("after=")).is_err());
    }

    #[test]
    fn the_encoding_is_the_filters() {
        assert_eq!(encode("a-._~/:?=&Z9"), "a-._~/:?=&Z9");
        assert_eq!(encode("a b%\n"), "a%20b%25%0A");
        assert_eq!(
            crate::fetch_request::decode_key(&encode("k é\0v:1")).unwrap(),
            "k é\0v:1"
        );
    }

    #[test]
    fn stats_count_events_resets_by_reason_and_the_cursor() {
        let mut f = feed();
        f.on_invalidation(0, &inv("a", 5, 1));
        f.reset(Reason::Clear);
        let stats = f.stats();
        assert_eq!(stats.events_total, 1);
        assert!(stats.resets.contains(&(Reason::Clear, 1)));
        assert!(stats.resets.contains(&(Reason::Overflow, 0)));
        assert_eq!(stats.resets.len(), Reason::ALL.len());
        assert_eq!(stats.cursor, 2);
        assert!(stats.ready);
    }
}
