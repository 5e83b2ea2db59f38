//! The project's Hazelcast client (Open Binary Client Protocol 2.x; see
//! shared docs `hazelcast-protocol.md`), layered like the official clients:
//!
//! - `proto`: frames, messages and the stream reader (sans-IO).
//! - `codec`: one encoder/decoder per protocol message (sans-IO).
//! - `serialization`: keys and values as Hazelcast `Data` (sans-IO).
//! - `partition`: MurmurHash3 and key → partition id (sans-IO).
//! - `backoff`: reconnect timing (sans-IO).
//! - `cluster`: member list, partition table and the routing decision (sans-IO).
//! - `listener_registry`: which listener is registered on which connection (sans-IO).
//! - `connection`: one authenticated socket and its reader, writer and heartbeat tasks.
//! - `client`: a connection per member, cluster view listener, invocations, retries.
//! - `map`: the map API the rest of the companion uses; `listener`: its entry and
//!   invalidation listeners.
//!
//! Only the types re-exported below are meant for use outside this module; protocol bytes
//! stay inside.

pub mod backoff;
mod client;
mod cluster;
pub mod codec;
mod connection;
mod error;
#[cfg(test)]
mod fake_member;
mod listener;
mod listener_registry;
mod map;
pub mod partition;
pub mod proto;
pub mod serialization;
pub mod uuid;

pub use client::{Client, ClientConfig, ClientStats, ListenerStatus, Member, MemberStats};
pub use error::HazelcastError;
pub use listener::{
    EntryEvent, EntryEventKind, EntryEventKinds, Invalidation, InvalidationMetadata,
};
pub use listener_registry::ListenerId;
pub use map::{KeyPages, Map, Ttl};
pub use serialization::Value;
pub use uuid::Uuid;
