//! An async client for [Hazelcast](https://hazelcast.com) (Open Binary Client Protocol 2.x),
//! written for tokio. It is a *smart* client in the sense of the official ones: it keeps one
//! connection per cluster member, learns the member list and partition table from the
//! cluster, and sends every keyed operation straight to the member that owns the key.
//!
//! ```no_run
//! use hazelcast_client::{Client, ClientConfig, Ttl, Value};
//! # async fn run() -> Result<(), hazelcast_client::HazelcastError> {
//! let client = Client::start(ClientConfig {
//!     cluster_name: "dev".into(),
//!     addresses: vec!["127.0.0.1:5701".into()],
//!     ..ClientConfig::default()
//! });
//! client.wait_connected(std::time::Duration::from_secs(10)).await;
//! let map = client.map("greetings");
//! map.set("hello", &Value::String("world".into()), Ttl::MapDefault).await?;
//! assert_eq!(map.get("hello").await?, Some(Value::String("world".into())));
//! client.shutdown();
//! # Ok(()) }
//! ```
//!
//! Inside, the crate is layered like the official clients (each module's own `//!` says what it
//! owns); only the types re-exported here are public, protocol bytes stay inside:
//!
//! - `proto`: frames, messages and the stream reader (sans-IO).
//! - `codec`: one encoder/decoder per protocol message (sans-IO).
//! - `serialization`: keys and values as Hazelcast `Data` (sans-IO).
//! - `partition`: MurmurHash3 and key → partition id (sans-IO).
//! - `backoff`: reconnect timing (sans-IO).
//! - `cluster`: member list, partition table and the routing decision (sans-IO).
//! - `listener_registry`: which listener is registered on which connection (sans-IO).
//! - `backup_acks`: outstanding backup acks by correlation id (no I/O).
//! - `connection`: one authenticated socket and its reader, writer and heartbeat tasks.
//! - `config`: `ClientConfig`; `state`: the shared core the layers below the API work on.
//! - `invocation`: routing, correlation ids, deadlines, retries, backup-aware writes.
//! - `view_listener`: the cluster view listener (member list, partition table).
//! - `listener_binder`: every listener on every connection.
//! - `connection_manager`: a connection per member, reconnects, departures.
//! - `client`: the public `Client`; `map`: the map API; `listener`: its entry and
//!   invalidation listeners.

#![warn(missing_docs)]
// Bytes from the network and configuration must never panic the client: an `unwrap` that an
// invariant makes safe says so in a comment and an `allow`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod backoff;
mod backup_acks;
mod client;
mod cluster;
mod codec;
mod config;
mod connection;
mod connection_manager;
mod error;
#[cfg(test)]
mod fake_member;
mod invocation;
mod listener;
mod listener_binder;
mod listener_registry;
mod map;
mod partition;
mod proto;
mod serialization;
mod state;
mod view_listener;

pub use backoff::BackoffConfig;
pub use client::{Client, ClientStats, ListenerStatus, Member, MemberStats};
pub use config::ClientConfig;
pub use error::HazelcastError;
pub use listener::{
    EntryEvent, EntryEventKind, EntryEventKinds, Invalidation, InvalidationMetadata,
};
pub use listener_registry::ListenerId;
pub use map::{KeyPages, Map, Ttl};
pub use proto::ReaderLimits;
pub use serialization::Value;
/// Hazelcast UUIDs (member, cluster, listener and partition ids) are the `uuid` crate's type;
/// on the wire they are Java's two signed 64-bit halves ([`Uuid::as_u64_pair`]).
pub use uuid::Uuid;

/// The README's examples, compiled as doctests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
