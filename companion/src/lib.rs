//! hzcache companion: the native service beside Envoy that the hzcache filter calls out to.
//!
//! - `config`: command-line and environment settings, validated once.
//! - `server`: the HTTP server (`/v1/fetch`, `/v1/invalidate`, `/admin/purge`, `/metrics`,
//!   `/healthz`, `/readyz`), bounded and draining.
//! - `cache`: the cache flow: lookup, hit, stale, revalidation, coalesced miss → origin → store.
//! - `freshness`: whether a response may be stored, and for how long (RFC 9111 for a shared cache).
//! - `entry`: the versioned envelope stored for a response.
//! - `headers`: which headers travel to the origin, into an entry and back to the client.
//! - `metrics`: Prometheus counters and histograms for `/metrics`.
//! - `purge`: the admin API (bearer token) that purges by key, prefix or tag.
//! - `origin`: the bounded origin fetch.
//! - `hazelcast`: the project's own Hazelcast client (Open Binary Client Protocol).

pub mod cache;
pub mod config;
pub mod entry;
pub mod freshness;
pub mod hazelcast;
pub mod headers;
pub mod metrics;
pub mod origin;
pub mod purge;
pub mod server;
