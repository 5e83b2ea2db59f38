//! The L1 table in shared data (wasm32 only): reading and writing slots and the generation
//! through the host, and following the companion's invalidation feed. What an entry is and
//! when it answers is `l1.rs`'s (pure); this moves bytes and keeps the per-worker position.

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
}

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
            self.drop_all();
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
            FeedUpdate::DropAll { epoch, cursor } => {
                self.drop_all();
                applied.dropped_all = true;
                self.feed = FeedPosition {
                    epoch: Some(epoch),
                    cursor,
                };
            }
            FeedUpdate::Drop { cursor, keys } => {
                for (map, key) in keys {
                    if self.drop_key(&map, &key) {
                        applied.dropped_keys = applied.dropped_keys.saturating_add(1);
                    }
                }
                self.feed.cursor = cursor;
            }
        }
        self.feed_ok_at = Some(now_ms);
        Some(applied)
    }

    /// Bumps the shared generation: every entry stored before is dead, in every worker as soon
    /// as its tick reads the new generation (and at once in this one).
    pub fn drop_all(&mut self) {
        for _ in 0..4 {
            let (value, cas) = match host::shared_data(GENERATION_KEY) {
                Ok(v) => v,
                Err(status) => {
                    debug!("cannot read the L1 generation: {status:?}");
                    break;
                }
            };
            let shared = value.as_deref().and_then(decode_u64).unwrap_or(0);
            let next = shared.max(self.generation).saturating_add(1);
            match host::set_shared_data(GENERATION_KEY, &next.to_le_bytes(), cas) {
                Ok(()) => {
                    self.generation = next;
                    return;
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
    }

    fn drop_key(&self, map: &str, key: &str) -> bool {
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

fn decode_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

fn read_generation() -> Option<u64> {
    let (value, _) = host::shared_data(GENERATION_KEY).ok()?;
    value.as_deref().and_then(decode_u64)
}
