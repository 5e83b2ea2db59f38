//! The invalidation feed's driver: the I/O around the pure [`feed`](crate::feed). It registers
//! one near-cache invalidation listener per fed map (every `--map`, both modes) and hands each
//! event to the feed; it fetches the members' repair metadata once the listeners are
//! registered (the baseline) and then every [`REPAIR_INTERVAL`]; and it watches the client:
//!
//! - no connection at all → a new epoch, and `503` until the listeners are back everywhere
//!   and a new baseline is fetched (the client registers them again by itself);
//! - a new cluster id (the cluster was replaced) → a new epoch, likewise;
//! - the member list changed (partitions move) → `* all`;
//! - a listener registered again on some connection (a member's connection came back, a new
//!   member) → `* all`: events in between went nowhere.
//!
//! Nothing here runs on the request path: `/v1/feed` only takes the feed's lock and copies
//! lines out.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::feed::{Answer, Feed, Reason};
use hazelcast_client::{Client, HazelcastError, ListenerId};

/// How often the members' invalidation metadata is compared with the events received. The
/// official clients reconcile every 60 s and tolerate a few misses because a stale near cache
/// only costs them a stale read for a while; an L1 copy the feed fails to drop lives until
/// the filter's L1 lifetime cap, so the feed checks much more often. One small request per
/// member every 5 s is negligible.
pub const REPAIR_INTERVAL: Duration = Duration::from_secs(5);
/// How often the driver looks at the client (connection, member list, registrations) and
/// settles metadata checks whose grace has passed: well inside the filter's one-second budget.
const TICK: Duration = Duration::from_millis(100);
/// Pause between attempts to register the listeners while that fails.
const RETRY: Duration = Duration::from_secs(1);

/// The feed shared by the listeners, the driver and the HTTP route; cheap to clone.
#[derive(Clone)]
pub struct FeedHandle {
    /// A std `Mutex`: every section is a few map and ring operations, no `.await` inside.
    feed: Arc<Mutex<Feed>>,
    maps: Arc<[String]>,
}

impl FeedHandle {
    /// A feed of `maps`, with a random epoch; not ready until [`spawn`]'s driver says so.
    pub fn new(maps: Vec<String>) -> FeedHandle {
        FeedHandle {
            feed: Arc::new(Mutex::new(Feed::new(&maps, rand::random()))),
            maps: maps.into(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Feed> {
        // Every section leaves the feed consistent; a panic in one must not stop the feed.
        self.feed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer for a caller that has seen everything up to `after`.
    pub fn answer(&self, after: u64) -> Answer {
        self.lock().answer(after)
    }

    pub fn epoch(&self) -> u64 {
        self.lock().epoch()
    }
}

impl std::fmt::Debug for FeedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedHandle")
            .field("maps", &self.maps)
            .finish()
    }
}

/// The feed's series, read from the feed at each scrape: `hzcache_feed_events_total`,
/// `hzcache_feed_resets_total{reason}`, `hzcache_feed_cursor`, `hzcache_feed_ready`.
impl Collector for FeedHandle {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.lock().stats();
        let events = ConstCounter::new(stats.events_total);
        events.encode(encoder.encode_descriptor(
            "hzcache_feed_events",
            "Invalidated keys put in the feed",
            None,
            events.metric_type(),
        )?)?;
        let mut resets = encoder.encode_descriptor(
            "hzcache_feed_resets",
            "Times the feed told its readers to drop everything, by reason",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in stats.resets {
            ConstCounter::new(n).encode(resets.encode_family(&[("reason", reason.name())])?)?;
        }
        let cursor = ConstGauge::new(stats.cursor);
        cursor.encode(encoder.encode_descriptor(
            "hzcache_feed_cursor",
            "Sequence number of the newest feed event",
            None,
            cursor.metric_type(),
        )?)?;
        let ready = ConstGauge::new(i64::from(stats.ready));
        ready.encode(encoder.encode_descriptor(
            "hzcache_feed_ready",
            "Whether the feed is served (1) or answers 503 (0)",
            None,
            ready.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Starts the driver; it runs until the returned task is aborted (at shutdown).
pub fn spawn(handle: FeedHandle, client: Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(handle, client))
}

/// Registers one invalidation listener per fed map, retrying until it works.
async fn register(handle: &FeedHandle, client: &Client) -> Vec<ListenerId> {
    loop {
        if client.wait_connected(RETRY).await {
            match try_register(handle, client).await {
                Ok(ids) => return ids,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot register the feed's listeners; retrying")
                }
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn try_register(
    handle: &FeedHandle,
    client: &Client,
) -> Result<Vec<ListenerId>, HazelcastError> {
    let mut ids = Vec::new();
    for (index, name) in handle.maps.iter().enumerate() {
        let feed = handle.clone();
        let added = client
            .map(name)
            .add_invalidation_listener(move |inv| feed.lock().on_invalidation(index, &inv))
            .await;
        match added {
            Ok(id) => ids.push(id),
            Err(e) => {
                for id in ids {
                    let _ = client.map(name).remove_listener(id).await;
                }
                return Err(e);
            }
        }
    }
    Ok(ids)
}

/// What the driver saw when the feed last became ready; a change means events may be lost.
struct Seen {
    cluster: Option<u128>,
    members: BTreeSet<String>,
    registrations: Vec<u64>,
    next_repair: Instant,
}

async fn run(handle: FeedHandle, client: Client) {
    let ids = register(&handle, &client).await;
    tracing::info!(maps = ?handle.maps, "feed listeners registered");
    let mut seen: Option<Seen> = None;
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let statuses: Vec<_> = ids.iter().map(|id| client.listener_status(*id)).collect();
        let cluster = client.cluster_id().map(|u| u.as_u128());
        if !client.is_connected() || seen.as_ref().is_some_and(|s| s.cluster != cluster) {
            if seen.take().is_some() {
                tracing::warn!(
                    "feed lost its continuity (no connection, or a new cluster); new epoch"
                );
                handle.lock().new_epoch(rand::random());
            }
            continue;
        }
        let Some(s) = seen.as_mut() else {
            // Not ready: wait until every listener is registered on every connection, then
            // learn where each partition stands.
            if !statuses.iter().all(|st| st.everywhere) {
                continue;
            }
            let members = member_set(&client);
            match client.fetch_invalidation_metadata(&handle.maps).await {
                Ok(md) => {
                    let mut feed = handle.lock();
                    feed.on_metadata(Instant::now(), &md, true);
                    feed.set_ready(true);
                    tracing::info!(epoch = %format!("{:016x}", feed.epoch()), members = md.len(), "feed ready");
                    seen = Some(Seen {
                        cluster,
                        members,
                        registrations: statuses.iter().map(|st| st.registrations).collect(),
                        next_repair: Instant::now() + REPAIR_INTERVAL,
                    });
                }
                Err(e) => tracing::debug!(error = %e, "feed baseline metadata failed; retrying"),
            }
            continue;
        };
        let members = member_set(&client);
        if members != s.members {
            tracing::info!(?members, "member list changed; feed resets");
            handle.lock().reset(Reason::Members);
            s.members = members;
        }
        let registrations: Vec<u64> = statuses.iter().map(|st| st.registrations).collect();
        if registrations != s.registrations {
            tracing::info!("feed listener registered again on a connection; feed resets");
            handle.lock().reset(Reason::Reregistered);
            s.registrations = registrations;
        }
        let now = Instant::now();
        if now >= s.next_repair {
            s.next_repair = now + REPAIR_INTERVAL;
            match client.fetch_invalidation_metadata(&handle.maps).await {
                Ok(md) => handle.lock().on_metadata(Instant::now(), &md, false),
                Err(e) => tracing::debug!(error = %e, "feed repair metadata failed; next round"),
            }
        }
        handle.lock().poll(Instant::now());
    }
}

fn member_set(client: &Client) -> BTreeSet<String> {
    client.members().into_iter().map(|m| m.uuid).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn the_feed_series_are_read_at_each_scrape() {
        let handle = FeedHandle::new(vec!["hzcache".into()]);
        let mut metrics = Metrics::default();
        metrics.register_collector(Box::new(handle.clone()));
        let before = metrics.render();
        assert!(before.contains("hzcache_feed_events_total 0\n"), "{before}");
        assert!(before.contains("hzcache_feed_ready 0\n"), "{before}");
        assert!(before.contains("hzcache_feed_cursor 0\n"), "{before}");
        for r in Reason::ALL {
            let line = format!("hzcache_feed_resets_total{{reason=\"{}\"}} 0\n", r.name());
            assert!(before.contains(&line), "{line}: {before}");
        }
        handle.lock().set_ready(true);
        let after = metrics.render();
        assert!(after.contains("hzcache_feed_ready 1\n"), "{after}");
        assert!(after.contains("hzcache_feed_cursor 1\n"), "{after}");
        assert!(
            after.contains("hzcache_feed_resets_total{reason=\"epoch\"} 1\n"),
            "{after}"
        );
        assert!(after.contains("# TYPE hzcache_feed_resets counter\n"));
        assert_eq!(after.matches("# EOF").count(), 1);
        assert!(after.ends_with("# EOF\n"));
    }
}
