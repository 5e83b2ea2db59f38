//! The load: a bounded, open-loop, steady stream of GETs over both Envoys (a fixed rate, a cap
//! on requests in flight), over a warm set of fresh, stale-if-error and uncached keys, with one
//! [`Sample`] per request: when it started, which node, status, `x-cache`, whether the body
//! matched the origin's, latency, and the kind of error if any. A failed request is data.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;

use crate::origin::{body_for, checksum};
use crate::runtime::rt;

/// A client gives up on a request after this long.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The `Host` of every load request.
pub const HOST: &str = "faults.example";
/// Most load requests in flight at once; beyond it a tick is skipped (counted as shed).
const MAX_IN_FLIGHT: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `max-age` long: always answerable from the cache once stored.
    Fresh,
    /// `max-age=1, stale-if-error=300`: answerable by a stale entry when the origin fails.
    StaleIfError,
    /// `no-store`: only the origin can answer.
    Uncached,
    /// Anything else (big bodies, the stampede's key).
    Other,
}

impl Family {
    pub fn of(path: &str) -> Family {
        if path.starts_with("/f/") {
            Family::Fresh
        } else if path.starts_with("/s/") {
            Family::StaleIfError
        } else if path.starts_with("/u/") {
            Family::Uncached
        } else {
            Family::Other
        }
    }
}

/// How a request failed, from the client's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// No response: connection refused or reset before the headers.
    Connect,
    /// No complete answer within [`CLIENT_TIMEOUT`].
    Timeout,
    /// A 5xx status.
    Status5xx,
    /// Any other status but 200.
    OtherStatus,
    /// A 200 whose body is not the origin's body for the path.
    WrongBody,
    /// The body ended early or broke off.
    Truncated,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Status5xx,
        ErrorKind::OtherStatus,
        ErrorKind::WrongBody,
        ErrorKind::Truncated,
    ];
    pub fn short(self) -> &'static str {
        match self {
            ErrorKind::Connect => "conn",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Status5xx => "5xx",
            ErrorKind::OtherStatus => "status",
            ErrorKind::WrongBody => "wrong",
            ErrorKind::Truncated => "trunc",
        }
    }
}

/// One request's outcome.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Start, from the load's epoch.
    pub start: Duration,
    pub latency: Duration,
    pub node: usize,
    pub path: String,
    pub family: Family,
    /// 0 when no response came.
    pub status: u16,
    /// `x-cache`, "" when absent (the origin answered through Envoy).
    pub cache: String,
    pub error: Option<ErrorKind>,
}

impl Sample {
    pub fn end(&self) -> Duration {
        self.start + self.latency
    }
    /// A 200 with the right body.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
    pub fn is_hit(&self) -> bool {
        self.ok() && self.cache == "HIT"
    }
    /// Answered from a stored entry (fresh or stale).
    pub fn from_store(&self) -> bool {
        self.ok() && matches!(self.cache.as_str(), "HIT" | "STALE" | "REVALIDATED")
    }
    /// Answered by the cache at all (a stored entry or a miss the companion fetched).
    pub fn by_cache(&self) -> bool {
        self.from_store() || (self.ok() && self.cache == "MISS")
    }
}

/// The HTTP client every part of the suite uses (pooled connections to the Envoys).
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Empty<Bytes>>,
    expected: Arc<Mutex<HashMap<String, (usize, u64)>>>,
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    pub fn new() -> Http {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(20))
            .pool_max_idle_per_host(64)
            .build(connector);
        Http {
            client,
            expected: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The origin's body length and checksum for `path`, computed once.
    fn expected(&self, path: &str) -> (usize, u64) {
        let key = path.split('?').next().unwrap_or(path).to_string();
        if let Some(v) = self
            .expected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return *v;
        }
        let body = body_for(&key);
        let v = (body.len(), checksum(&body));
        self.expected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, v);
        v
    }

    /// GETs `path` from `base` (`http://127.0.0.1:PORT`) and judges the answer.
    pub async fn get(&self, epoch: Instant, node: usize, base: &str, path: &str) -> Sample {
        let started = Instant::now();
        let mut sample = Sample {
            start: started.saturating_duration_since(epoch),
            latency: Duration::ZERO,
            node,
            path: path.to_string(),
            family: Family::of(path),
            status: 0,
            cache: String::new(),
            error: None,
        };
        let url = format!("{base}{path}");
        // One Host for both Envoys: the default key starts with the host, and the point of a
        // shared cache is that both Envoys find each other's entries.
        let req = match hyper::Request::get(url.as_str())
            .header("host", HOST)
            .body(Empty::<Bytes>::new())
        {
            Ok(r) => r,
            Err(_) => {
                sample.error = Some(ErrorKind::OtherStatus);
                return sample;
            }
        };
        let exchange = async {
            let resp = match self.client.request(req).await {
                Ok(r) => r,
                Err(_) => return (0, String::new(), None, Err(ErrorKind::Connect)),
            };
            let status = resp.status().as_u16();
            let cache = resp
                .headers()
                .get("x-cache")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let declared = resp
                .headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            match resp.into_body().collect().await {
                Ok(b) => (status, cache, declared, Ok(b.to_bytes())),
                Err(_) => (status, cache, declared, Err(ErrorKind::Truncated)),
            }
        };
        let outcome = tokio::time::timeout(CLIENT_TIMEOUT, exchange).await;
        sample.latency = started.elapsed();
        let (status, cache, declared, body) = match outcome {
            Ok(v) => v,
            Err(_) => {
                sample.error = Some(ErrorKind::Timeout);
                return sample;
            }
        };
        sample.status = status;
        sample.cache = cache;
        sample.error = match body {
            Err(kind) => Some(kind),
            Ok(_) if status >= 500 => Some(ErrorKind::Status5xx),
            Ok(_) if status != 200 => Some(ErrorKind::OtherStatus),
            Ok(body) => {
                let (len, sum) = self.expected(path);
                let short_read = declared.is_some_and(|d| d != body.len())
                    || (body.len() < len && body_for(path).starts_with(&body));
                if short_read {
                    Some(ErrorKind::Truncated)
                } else if body.len() != len || checksum(&body) != sum {
                    Some(ErrorKind::WrongBody)
                } else {
                    None
                }
            }
        };
        sample
    }
}

/// The keys a scenario's load asks for.
#[derive(Debug, Clone)]
pub struct KeySet {
    pub fresh: Vec<String>,
    pub stale: Vec<String>,
    pub uncached: Vec<String>,
}

impl KeySet {
    /// `fresh`, `stale` and `uncached` keys under a tag unique to the scenario.
    pub fn new(tag: &str, fresh: usize, stale: usize, uncached: usize) -> KeySet {
        KeySet {
            fresh: (0..fresh).map(|i| format!("/f/{tag}/{i}")).collect(),
            stale: (0..stale).map(|i| format!("/s/{tag}/{i}")).collect(),
            uncached: (0..uncached).map(|i| format!("/u/{tag}/{i}")).collect(),
        }
    }

    /// The keys that can be stored.
    pub fn cacheable(&self) -> impl Iterator<Item = &String> {
        self.fresh.iter().chain(&self.stale)
    }

    /// The `n`-th pick of the load: 60 % fresh, 25 % stale-if-error, 15 % uncached.
    fn pick(&self, n: u64) -> &str {
        let r = splitmix(n);
        let bucket = r % 100;
        let list = if bucket < 60 || (self.stale.is_empty() && self.uncached.is_empty()) {
            &self.fresh
        } else if bucket < 85 && !self.stale.is_empty() {
            &self.stale
        } else if !self.uncached.is_empty() {
            &self.uncached
        } else {
            &self.fresh
        };
        if list.is_empty() {
            return "/f/empty";
        }
        &list[((r >> 8) % list.len() as u64) as usize]
    }
}

fn splitmix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A running load. [`Load::stop`] ends it and returns every sample.
pub struct Load {
    pub epoch: Instant,
    samples: Arc<Mutex<Vec<Sample>>>,
    running: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    shed: Arc<AtomicU64>,
    in_flight: Arc<Semaphore>,
    driver: Option<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts `rate` requests a second, spread round robin over `bases` (one per Envoy).
    pub fn start(http: &Http, bases: Vec<String>, keys: KeySet, rate: u32, epoch: Instant) -> Load {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(AtomicBool::new(true));
        let paused = Arc::new(AtomicBool::new(false));
        let shed = Arc::new(AtomicU64::new(0));
        let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let (s, run, pause, sh, sem) = (
            samples.clone(),
            running.clone(),
            paused.clone(),
            shed.clone(),
            in_flight.clone(),
        );
        let http = http.clone();
        let keys = Arc::new(keys);
        let bases = Arc::new(bases);
        let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
        let driver = rt().spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n: u64 = 0;
            while run.load(Ordering::Relaxed) {
                tick.tick().await;
                if pause.load(Ordering::Relaxed) {
                    continue;
                }
                n += 1;
                let Ok(permit) = sem.clone().try_acquire_owned() else {
                    sh.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let node = (n % bases.len().max(1) as u64) as usize;
                let base = bases.get(node).cloned().unwrap_or_default();
                let path = keys.pick(n).to_string();
                let (http, s) = (http.clone(), s.clone());
                tokio::spawn(async move {
                    let sample = http.get(epoch, node, &base, &path).await;
                    s.lock().unwrap_or_else(|p| p.into_inner()).push(sample);
                    drop(permit);
                });
            }
        });
        Load {
            epoch,
            samples,
            running,
            paused,
            shed,
            in_flight,
            driver: Some(driver),
        }
    }

    /// Seconds since the epoch, as samples count them.
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub fn pause(&self, on: bool) {
        self.paused.store(on, Ordering::Relaxed);
    }

    /// The samples so far.
    pub fn snapshot(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops sending, waits for the requests in flight (each ends within the client timeout)
    /// and returns every sample and how many ticks were shed.
    pub fn stop(mut self) -> (Vec<Sample>, u64) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(d) = self.driver.take() {
            let _ = rt().block_on(d);
        }
        let sem = self.in_flight.clone();
        let _ = rt().block_on(async {
            tokio::time::timeout(
                CLIENT_TIMEOUT + Duration::from_secs(2),
                sem.acquire_many(MAX_IN_FLIGHT as u32),
            )
            .await
        });
        let samples = std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()));
        (samples, self.shed.load(Ordering::Relaxed))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
    }
}
