//! The HTTP caching rules, as pure functions over header maps and times passed in (nothing
//! here reads a clock, touches Hazelcast or the network, or imports the cache flow). One
//! module per concern, each naming the RFC sections it owns:
//!
//! - `syntax`: list whitespace and delta-seconds shared by the fields (RFC 9110 §5.6, RFC 9111
//!   §1.2.2).
//! - `date`: HTTP-dates and the `Date` and `Expires` fields (RFC 9110 §5.6.7, §6.6.1; RFC 9111
//!   §5.3), on the `httpdate` crate.
//! - `cache_control`: the `Cache-Control` directives (RFC 9111 §5.2).
//! - `targeted`: `Hzcache-Cache-Control` and `CDN-Cache-Control` (RFC 9213, RFC 8941
//!   Dictionaries), which replace `Cache-Control` for this cache.
//! - `storable`: whether a response may be stored, and the record it is stored with (RFC 9111
//!   §3, §3.5, §5.2.2.3, §7.3).
//! - `lifetime`: explicit and heuristic freshness lifetimes, the stored [`Freshness`] record,
//!   how long Hazelcast keeps it (RFC 9111 §4.2.1, §4.2.2, §4.2.4).
//! - `age`: `Age` and the age calculation (RFC 9111 §4.2.3, §5.1).
//! - `reuse`: whether a stored response may answer now, with the request's directives (RFC
//!   9111 §4.2, §4.2.4, §5.2.1, §5.4; RFC 8246).
//! - `validation`: validators, revalidation requests and clients' conditional requests (RFC
//!   9111 §4.3; RFC 9110 §13, §15.4.5).
//! - `vary`: the meaning of `Vary` and the request fields normalised for it (RFC 9111 §4.1; RFC
//!   9110 §12).
//! - `range`: a client's `Range` and `If-Range` (RFC 9110 §13.1.5, §14).
//! - `partial`: 206 responses stored as pieces, served, completed and combined (RFC 9111
//!   §3.3, §3.4; RFC 9110 §14.4, §15.3.7).
//!
//! [`Freshness`]: lifetime::Freshness

pub mod age;
pub mod cache_control;
pub mod date;
pub mod lifetime;
pub mod partial;
pub mod range;
pub mod reuse;
pub mod storable;
pub mod syntax;
pub mod targeted;
pub mod validation;
pub mod vary;
