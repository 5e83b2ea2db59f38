//! hzcache proxy-wasm HTTP filter: decides whether a request is cached and under which key,
//! asks the companion over an Envoy callout, and relays its answer (or lets the request go
//! upstream untouched when anything fails).
//!
//! - `config`: the JSON configuration, parsed and validated once in `on_configure`.
//! - `rules`: which rule applies to a request.
//! - `key`: cache key computation and its header encoding.
//! - `url`: target splitting, host without port, percent-decoding (a leaf the others share).
//! - `callout`: the callout header list and the classification of the companion's reply.
//! - `l1`: the in-Envoy L1 table in shared data and the invalidation feed it follows.
//! - `breaker`: the circuit breaker that stops callouts to a failing companion.
//! - `metrics`: counter names.
//! - `abi`: the proxy-wasm ABI's status codes and serialized header-map format, parsed with
//!   bounds checks (pure, so the parser is tested natively).
//! - `host` (wasm only): the host calls the filter makes, each returning `Result` for every
//!   status, and the `log` backend.
//! - `glue` (wasm only): the proxy-wasm root and HTTP contexts, which only move data between
//!   Envoy and the modules above. Keeping it out of native builds lets `cargo test` run the
//!   pure modules without the host's imports.

// No panic on any path outside tests: a panic in the wasm traps the VM (see `host` and the
// README's "When the VM fails").
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod abi;
pub mod breaker;
pub mod callout;
pub mod config;
pub mod key;
pub mod l1;
pub mod metrics;
pub mod rules;
pub mod url;

#[cfg(target_arch = "wasm32")]
mod glue;
#[cfg(target_arch = "wasm32")]
mod host;
#[cfg(target_arch = "wasm32")]
mod l1_table;
