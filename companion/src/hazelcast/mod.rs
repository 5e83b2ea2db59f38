//! The project's Hazelcast client (Open Binary Client Protocol 2.x; see
//! shared docs `hazelcast-protocol.md`), layered like the official clients:
//!
//! - `proto`: frames, messages and the stream reader (sans-IO).
//! - `codec`: one encoder/decoder per protocol message (sans-IO).
//! - `serialization`: keys and values as Hazelcast `Data` (sans-IO).
//! - `partition`: MurmurHash3 and key → partition id (sans-IO).
//! - `backoff`: reconnect timing (sans-IO).
//! - `connection`: one authenticated socket and its reader, writer and heartbeat tasks.
//! - `client`: keeping connected, invocations, retries.
//! - `map`: the map API the rest of the companion uses.
//!
//! Only `Client`, `ClientConfig`, `Map`, `Ttl`, `Value` and `HazelcastError` are meant for use
//! outside this module; protocol bytes stay inside.

pub mod backoff;
mod client;
pub mod codec;
mod connection;
mod error;
mod map;
pub mod partition;
pub mod proto;
pub mod serialization;
pub mod uuid;

pub use client::{Client, ClientConfig};
pub use error::HazelcastError;
pub use map::{Map, Ttl};
pub use serialization::Value;
