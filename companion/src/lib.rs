//! hzcache companion: the native service beside Envoy that the hzcache filter calls out to.
//!
//! - `config`: command-line and environment settings, validated once.
//! - `server`: the HTTP server (`/v1/fetch`, `/v1/invalidate`, `/v1/feed`, `/admin/purge`, `/metrics`,
//!   `/healthz`, `/readyz`), bounded and draining.
//! - `cache`: the cache flow: lookup → hit / stale / revalidate / miss → store; its `store`
//!   part writes entries, variant indexes and tag records, and runs invalidation and purge.
//! - `fetch_request`: the filter's control headers → a `FetchRequest`; key decoding.
//! - `answer`: what the companion answers, and how entries, values and origin responses
//!   become answers (304s to conditional clients included).
//! - `vary`: variant selection and normalisation, variant keys, the variant index.
//! - `coalesce`: the local in-flight table and the Hazelcast in-flight marker protocol.
//! - `cache/store`: writing entries, variant indexes and tag records; invalidation and purge.
//! - `http`: the HTTP caching rules as pure functions, one module per concern (RFC 9111, and
//!   the parts of RFC 9110 and RFC 9213 a cache needs): storability, lifetime, age, reuse,
//!   validation, dates, `Cache-Control` and targeted fields, `Vary`, `Range`.
//! - `entry`: the versioned envelope stored for a response.
//! - `headers`: which headers travel to the origin, into an entry and back to the client.
//! - `feed`: the invalidation feed (`/v1/feed`) as a pure state machine: the ring of
//!   invalidated keys and resets, the answer for a cursor, the per-partition repair tracking;
//!   `feed_driver`: its listeners, repair metadata rounds and watch over the client.
//! - `metrics`: Prometheus counters and histograms for `/metrics`.
//! - `purge`: the admin API (bearer token) that purges by key, prefix or tag.
//! - `secret`: credentials (callout secret, admin token): read from the environment or a file,
//!   compared in constant time, never printed.
//! - `origin`: the bounded origin fetch.
//! - `budget`: the byte budget of origin bodies in flight across all fetches.
//!
//! The Hazelcast client is the workspace crate `hazelcast-client` (`hazelcast_client`).

// Input from the network, headers and configuration must never panic the service: an
// `unwrap` that an invariant makes safe says so in a comment and an `allow`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod answer;
pub mod budget;
pub mod cache;
pub mod coalesce;
pub mod config;
pub mod entry;
pub mod feed;
pub mod feed_driver;
pub mod fetch_request;
pub mod headers;
pub mod http;
pub mod metrics;
pub mod origin;
pub mod purge;
pub mod secret;
pub mod server;
pub mod vary;
