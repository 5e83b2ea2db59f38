//! Coalescing: one origin fetch per key however many requests miss it at once.
//!
//! - Per companion, the in-flight table ([`Inflight`]): the first request for a key leads
//!   (holds a [`Flight`]), later ones wait on its `watch` channel for how it ended ([`Done`]),
//!   bounded by [`Inflight::wait_limit`].
//! - Per fleet, the in-flight marker in Hazelcast ([`Marker`]): the leader `put-if-absent`s
//!   `MAP\0KEY` into [`INFLIGHT_MAP`] with a TTL of origin timeout + 2 s (a crashed holder
//!   never blocks a key) and removes it when done — only if it still holds this claim's own
//!   value (`Map.RemoveIfSame`): once ours expired, another companion may hold the key, and
//!   its marker is not ours to delete; a companion that finds it taken polls for
//!   the stored entry every [`POLL_INTERVAL`] until the marker goes or origin timeout + 1 s
//!   passes ([`Marker::wait_for_holder`]), then fetches itself.
//!
//! Waiters only ever reuse what was *stored* (looked up again by the cache flow, Vary
//! included), never a leader's private answer. What to fetch and store is the flow's
//! (`cache.rs`); this module only says who fetches and when the others look again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use hazelcast_client::{HazelcastError, Map, Ttl, Value};

/// The Hazelcast map holding in-flight markers (one per key being fetched anywhere in the
/// fleet). Kept apart from the cache maps, which applications may share.
pub const INFLIGHT_MAP: &str = "hzcache-inflight";
/// How often a companion that waits on another companion's fetch looks for its result: a
/// Hazelcast get every 25 ms is cheap, and only one request per key per companion polls.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// Keys being fetched at once in one companion. Bounded by connections anyway; past this,
/// requests fetch without coalescing rather than grow the table.
const MAX_INFLIGHT: usize = 10_000;

/// How a coalesced fetch ended, as the requests that waited for it need to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    /// A reusable response is in Hazelcast now: look it up.
    Stored,
    /// Nothing shareable was stored (private, errors, …): fetch for yourself.
    NotStored,
    /// Too large to store: pass too.
    Pass,
}

/// The in-flight table key (and the marker key) of a request: map and key, NUL-separated.
pub fn flight_key(map: &str, key: &str) -> String {
    format!("{map}\0{key}")
}

/// A request's part in a coalesced fetch.
pub enum Role {
    Leader(Flight),
    Waiter(watch::Receiver<Option<Done>>),
    /// The in-flight table is full: fetch without coalescing.
    Alone,
}

/// Keys with an origin fetch under way in this companion.
pub struct Inflight {
    /// A std mutex: held only to look up, insert or remove, never across an `.await`.
    table: Mutex<HashMap<String, watch::Receiver<Option<Done>>>>,
    origin_timeout: Duration,
}

impl Inflight {
    pub fn new(origin_timeout: Duration) -> Inflight {
        Inflight {
            table: Mutex::new(HashMap::new()),
            origin_timeout,
        }
    }

    /// Leads the fetch of `key`, or waits for the one under way.
    pub fn join_or_lead(self: &Arc<Self>, key: String) -> Role {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = table.get(&key) {
            return Role::Waiter(rx.clone());
        }
        if table.len() >= MAX_INFLIGHT {
            return Role::Alone;
        }
        let (tx, rx) = watch::channel(None);
        table.insert(key.clone(), rx);
        Role::Leader(Flight {
            inflight: self.clone(),
            key,
            tx,
            done: Done::NotStored,
        })
    }

    /// How long a request waits for another's fetch before fetching itself: the other's origin
    /// timeout plus its wait on a third companion, plus slack for storing.
    pub fn wait_limit(&self) -> Duration {
        self.origin_timeout * 2 + Duration::from_secs(2)
    }

    /// Waits for the leader `rx` follows; `None` when it did not finish within
    /// [`Inflight::wait_limit`].
    pub async fn wait(&self, mut rx: watch::Receiver<Option<Done>>) -> Option<Done> {
        tokio::time::timeout(self.wait_limit(), rx.wait_for(|d| d.is_some()))
            .await
            .ok()
            .and_then(|r| r.ok().and_then(|d| *d))
    }
}

/// The leader's hold on a key in the in-flight table. Dropping it (also when the leader's task
/// panics) removes the key and wakes the waiters with `done`, so nobody waits on a leader that
/// is gone.
pub struct Flight {
    inflight: Arc<Inflight>,
    key: String,
    tx: watch::Sender<Option<Done>>,
    /// How the fetch ended; the leader sets it before dropping the flight.
    pub done: Done,
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.inflight
            .table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
        let _ = self.tx.send(Some(self.done));
    }
}

/// One key's in-flight marker in Hazelcast.
#[derive(Clone)]
pub struct Marker {
    markers: Map,
    key: String,
    origin_timeout: Duration,
    /// The marker's value: the holder's name and a random claim id, unique to this claim, so
    /// the release removes this claim's marker and never a later one (another companion's, or
    /// this companion's next claim of the same key).
    token: String,
}

/// What trying to take a marker gave.
pub enum Claim {
    /// This companion holds it: fetch, store, then [`Marker::release`].
    Held,
    /// Another companion fetches the key now.
    Elsewhere,
    /// Hazelcast did not answer: fetch uncoordinated.
    Unavailable(HazelcastError),
    /// Hazelcast did not answer within the bound ([`Marker::claim_within`]): fetch
    /// uncoordinated; the claim finishes on its own and gives back a marker it took.
    Slow,
}

/// How waiting on another companion's fetch ended.
pub enum Waited<T> {
    /// `look` found the result.
    Found(T),
    /// The marker went (released or expired) or could not be read: look once more, then fetch.
    Released,
    /// The holder took longer than origin timeout + 1 s.
    TimedOut,
}

impl Marker {
    /// A marker for `key` that `holder` (the companion's instance name) may claim.
    pub fn new(markers: Map, key: String, origin_timeout: Duration, holder: &str) -> Marker {
        Marker {
            markers,
            key,
            origin_timeout,
            token: claim_token(holder, rand::random()),
        }
    }

    /// `put-if-absent` of the marker with this claim's token. A crashed holder's marker
    /// expires after origin timeout + 2 s; a live one releases it much earlier.
    pub async fn claim(&self) -> Claim {
        let ttl = Ttl::After(self.origin_timeout + Duration::from_secs(2));
        match self
            .markers
            .put_if_absent(&self.key, &Value::String(self.token.clone()), ttl)
            .await
        {
            Ok(None) => Claim::Held,
            Ok(Some(_)) => Claim::Elsewhere,
            Err(e) => Claim::Unavailable(e),
        }
    }

    /// [`Marker::claim`], waited for at most `bound` (`None`: as long as it takes). The
    /// marker's partition may live on a member that stopped answering, whose calls wait for
    /// the Hazelcast timeout; a request is not held for that. A claim past the bound runs on
    /// in its own task and releases the marker if it got it, so no other companion waits on
    /// a marker nobody fetches under.
    pub async fn claim_within(&self, bound: Option<Duration>) -> Claim {
        let Some(bound) = bound else {
            return self.claim().await;
        };
        let this = self.clone();
        let mut task = tokio::spawn(async move { this.claim().await });
        match tokio::time::timeout(bound, &mut task).await {
            Ok(Ok(claim)) => claim,
            // The claim task panicked: as if Hazelcast had not answered in time.
            Ok(Err(_)) => Claim::Slow,
            Err(_) => {
                let this = self.clone();
                tokio::spawn(async move {
                    if let Ok(Claim::Held) = task.await {
                        this.release().await;
                    }
                });
                Claim::Slow
            }
        }
    }

    /// Removes the marker if it is still this claim's. A fetch slower than the marker's TTL
    /// finds it expired and maybe taken by another companion, whose marker stays.
    pub async fn release(&self) {
        match self
            .markers
            .remove_if_same(&self.key, &Value::String(self.token.clone()))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!("in-flight marker expired before release; another one stays")
            }
            Err(e) => {
                tracing::debug!(error = %e, "could not release the in-flight marker; it expires")
            }
        }
    }

    /// Polls while another companion holds the marker: every [`POLL_INTERVAL`] `look` for its
    /// result, then whether the marker is still there; at most origin timeout + 1 s.
    pub async fn wait_for_holder<T, F, Fut>(&self, mut look: F) -> Waited<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + self.origin_timeout + Duration::from_secs(1);
        while Instant::now() < deadline {
            tokio::time::sleep(POLL_INTERVAL).await;
            if let Some(found) = look().await {
                return Waited::Found(found);
            }
            match self.markers.contains_key(&self.key).await {
                Ok(true) => continue,
                _ => break,
            }
        }
        if Instant::now() >= deadline {
            Waited::TimedOut
        } else {
            Waited::Released
        }
    }
}

/// The value of one claim's marker: readable (who holds the key) and unique (64 random bits
/// per claim).
fn claim_token(holder: &str, claim_id: u64) -> String {
    format!("{holder}/{claim_id:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_claim_names_its_holder_and_differs_from_every_other_claim() {
        assert_eq!(
            claim_token("companion-1-ab", 0xbeef),
            "companion-1-ab/000000000000beef"
        );
        assert_ne!(claim_token("c", 1), claim_token("c", 2));
    }

    #[test]
    fn the_first_request_leads_and_the_next_waits_until_the_flight_is_dropped() {
        let inflight = Arc::new(Inflight::new(Duration::from_secs(1)));
        let Role::Leader(mut flight) = inflight.join_or_lead(flight_key("m", "k")) else {
            panic!("the first request leads")
        };
        let Role::Waiter(rx) = inflight.join_or_lead(flight_key("m", "k")) else {
            panic!("the second request waits")
        };
        assert!(matches!(
            inflight.join_or_lead(flight_key("m", "other")),
            Role::Leader(_)
        ));
        flight.done = Done::Stored;
        drop(flight);
        assert_eq!(*rx.borrow(), Some(Done::Stored));
        assert!(
            matches!(inflight.join_or_lead(flight_key("m", "k")), Role::Leader(_)),
            "a finished key can be led again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_gives_up_after_twice_the_origin_timeout_plus_slack() {
        let inflight = Arc::new(Inflight::new(Duration::from_secs(1)));
        assert_eq!(inflight.wait_limit(), Duration::from_secs(4));
        let Role::Leader(_flight) = inflight.join_or_lead(flight_key("m", "k")) else {
            panic!()
        };
        let Role::Waiter(rx) = inflight.join_or_lead(flight_key("m", "k")) else {
            panic!()
        };
        assert_eq!(inflight.wait(rx).await, None);
    }
}
