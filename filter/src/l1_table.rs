//! The L1 table in shared data (wasm32 only): reading and writing slots and the generation
//! through the host, and following the companion's invalidation feed. What an entry is and
//! when it answers is `l1.rs`'s (pure); this moves bytes and keeps the per-worker position.

use std::collections::VecDeque;

use crate::config::L1Settings;
use crate::host;
use crate::l1::{self, Entry, FeedPosition, FeedUpdate, GENERATION_KEY};
use log::debug;

/// One worker's view of the L1: the generation it serves, where it is in the feed, and when
/// the feed was last read.
#[derive(Debug)]
pub struct L1 {
    pub settings: L1Settings,
    generation: u64,
    feed: FeedPosition,
    feed_ok_at: Option<u64>,
    /// The feed poll in flight, and when the last one went out.
    pub poll: Option<u32>,
    pub last_poll_at: u64,
    /// Whether the feed was current at the last look (to drop everything once when it goes
    /// stale).
    was_current: bool,
    /// Keys the feed dropped recently, with the cursor of the answer that named them: an
    /// answer whose callout went out before one of these must not be kept.
    recent: VecDeque<(u64, String, String)>,
    /// The cursor of the last drop of everything.
    dropped_all_at: u64,
}

/// How many recently dropped keys are remembered; past that, answers from before the oldest
/// are not kept (a cost in hits only).
const RECENT_DROPS: usize = 4096;

/// What applying a feed answer did, for the counters.
pub struct Applied {
    pub dropped_keys: u64,
    pub dropped_all: bool,
}

impl L1 {
    pub fn new(settings: L1Settings) -> Self {
        Self {
            settings,
            generation: 0,
            feed: FeedPosition::default(),
            feed_ok_at: None,
            poll: None,
            last_poll_at: 0,
            was_current: false,
            recent: VecDeque::new(),
            dropped_all_at: 0,
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.slots > 0
    }

    /// Whether L1 may answer now: on, and the feed read within `feed_stale_ms`.
    pub fn current(&self, now_ms: u64) -> bool {
        self.enabled()
            && self
                .feed_ok_at
                .is_some_and(|t| now_ms.saturating_sub(t) < self.settings.feed_stale_ms)
    }

    /// Milliseconds since the feed was last read (`None`: never).
    pub fn feed_lag(&self, now_ms: u64) -> Option<u64> {
        self.feed_ok_at.map(|t| now_ms.saturating_sub(t))
    }

    /// The tick: adopts the generation another worker may have bumped, and drops everything
    /// once when the feed goes stale. Returns whether it dropped everything.
    pub fn tick(&mut self, now_ms: u64) -> bool {
        if !self.enabled() {
            return false;
        }
        if let Some(g) = read_generation() {
            self.generation = self.generation.max(g);
        }
        let current = self.current(now_ms);
        let went_stale = self.was_current && !current;
        self.was_current = current;
        if went_stale {
            self.drop_all(None);
        }
        went_stale
    }

    /// Whether a feed poll is due.
    pub fn poll_due(&self, now_ms: u64) -> bool {
        self.enabled()
            && self.poll.is_none()
            && now_ms.saturating_sub(self.last_poll_at) >= self.settings.feed_interval_ms
    }

    pub fn cursor(&self) -> u64 {
        self.feed.cursor
    }

    /// A feed answer's body arrived (status 200 from the companion).
    pub fn apply_feed(&mut self, body: &[u8], now_ms: u64) -> Option<Applied> {
        let update = l1::read_feed(body, &self.feed)?;
        let mut applied = Applied {
            dropped_keys: 0,
            dropped_all: false,
        };
        match update {
            FeedUpdate::DropAll {
                epoch,
                cursor,
                incident,
            } => {
                // Every worker reads the same incident from the feed: one bump for all.
                applied.dropped_all = self.drop_all(Some(&incident));
                self.feed = FeedPosition {
                    epoch: Some(epoch),
                    cursor,
                };
                self.recent.clear();
                self.dropped_all_at = cursor;
            }
            FeedUpdate::Drop { cursor, keys } => {
                for (map, key) in keys {
                    if self.drop_key(&map, &key) {
                        applied.dropped_keys = applied.dropped_keys.saturating_add(1);
                    }
                    if self.recent.len() == RECENT_DROPS {
                        self.recent.pop_front();
                    }
                    self.recent.push_back((cursor, map, key));
                }
                self.feed.cursor = cursor;
            }
        }
        self.feed_ok_at = Some(now_ms);
        Some(applied)
    }

    /// Bumps the shared generation: every entry stored before is dead, in every worker as soon
    /// as its tick reads the new generation (and at once in this one). `incident` names what
    /// caused it (the feed's `EPOCH:CURSOR`): a worker that finds the same incident already
    /// applied by another only adopts its generation. Returns whether it bumped.
    pub fn drop_all(&mut self, incident: Option<&str>) -> bool {
        for _ in 0..4 {
            let (value, cas) = match host::shared_data(GENERATION_KEY) {
                Ok(v) => v,
                Err(status) => {
                    debug!("cannot read the L1 generation: {status:?}");
                    break;
                }
            };
            let (shared, applied) = value.as_deref().map(decode_generation).unwrap_or((0, ""));
            if incident.is_some_and(|i| i == applied) {
                self.generation = self.generation.max(shared);
                return false;
            }
            let next = shared.max(self.generation).saturating_add(1);
            let mut bytes = next.to_le_bytes().to_vec();
            bytes.extend_from_slice(incident.unwrap_or("").as_bytes());
            match host::set_shared_data(GENERATION_KEY, &bytes, cas) {
                Ok(()) => {
                    self.generation = next;
                    return true;
                }
                Err(host::Status::CAS_MISMATCH) => continue,
                Err(status) => {
                    debug!("cannot write the L1 generation: {status:?}");
                    break;
                }
            }
        }
        // Without the shared bump at least this worker stops serving what it had.
        self.generation = self.generation.saturating_add(1);
        true
    }

    /// Whether an answer whose callout went out at feed cursor `since` may be kept: nothing
    /// the feed said since then concerns its key (or, not knowing, assume it did).
    pub fn unchanged_since(&self, since: u64, map: &str, key: &str) -> bool {
        if self.dropped_all_at > since {
            return false;
        }
        if self.recent.front().is_some_and(|(c, _, _)| *c <= since)
            || self.recent.len() < RECENT_DROPS
        {
            return !self
                .recent
                .iter()
                .any(|(c, m, k)| *c > since && m == map && k == key);
        }
        false
    }

    /// Drops the entry of `(map, key)` if its slot holds it; whether it did.
    pub fn drop_key(&self, map: &str, key: &str) -> bool {
        if !self.enabled() {
            return false;
        }
        let slot = l1::slot_key(l1::slot_of(map, key, self.settings.slots));
        let Ok((Some(bytes), cas)) = host::shared_data(&slot) else {
            return false;
        };
        if !l1::holds(&bytes, map, key) {
            return false;
        }
        host::set_shared_data(&slot, b"", cas).is_ok()
    }

    /// The L1 answer for a request, if its entry is here and alive.
    pub fn lookup(
        &self,
        map: &str,
        key: &str,
        request: &[(String, Vec<u8>)],
        now_ms: u64,
    ) -> Option<l1::Answer> {
        if !self.current(now_ms) {
            return None;
        }
        let slot = l1::slot_key(l1::slot_of(map, key, self.settings.slots));
        let (bytes, _) = host::shared_data(&slot).ok()?;
        l1::answer(&bytes?, self.generation, map, key, request, now_ms)
    }

    /// Keeps a copy of a companion answer (if it may be kept). Returns whether it did.
    #[allow(clippy::too_many_arguments)]
    pub fn store(
        &self,
        map: &str,
        key: &str,
        request: &[(String, Vec<u8>)],
        status: u32,
        headers: &[(String, String)],
        body: &[u8],
        fresh_ms: u64,
        now_ms: u64,
    ) -> bool {
        if !self.current(now_ms) {
            return false;
        }
        let Some(entry): Option<Entry> = l1::entry_for(
            &self.settings,
            self.generation,
            map,
            key,
            request,
            status,
            headers,
            body,
            fresh_ms,
            now_ms,
        ) else {
            return false;
        };
        let Some(bytes) = l1::encode(&entry, self.settings.max_entry_bytes) else {
            return false;
        };
        let slot = l1::slot_key(l1::slot_of(map, key, self.settings.slots));
        host::set_shared_data(&slot, &bytes, 0).is_ok()
    }
}

/// The shared generation value: 8 bytes of generation, then the incident that set it.
fn decode_generation(b: &[u8]) -> (u64, &str) {
    let (n, rest) = b.split_at(b.len().min(8));
    let n = n.try_into().map(u64::from_le_bytes).unwrap_or(0);
    (n, std::str::from_utf8(rest).unwrap_or(""))
}

fn read_generation() -> Option<u64> {
    let (value, _) = host::shared_data(GENERATION_KEY).ok()?;
    value.as_deref().map(|v| decode_generation(v).0)
}
