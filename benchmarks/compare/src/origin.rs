//! The one origin every cache sits in front of: the harness's programmable origin
//! (`hzcache_e2e::stack::programmable_origin`, which documents its query language), so the
//! comparison and the end-to-end tests speak to the same origin.

use anyhow::Result;
use hzcache_e2e::Origin;

pub use hzcache_e2e::stack::pattern;

pub fn start() -> Result<Origin> {
    hzcache_e2e::stack::programmable_origin()
}
