//! The byte budget of origin bodies in flight (`--max-inflight-body-bytes`): every origin
//! fetch reserves the bytes of its body before holding them (the declared `Content-Length` up
//! front, otherwise chunk by chunk as they arrive), and gives them back when the last holder
//! of that body on the miss path lets go — the store is done and the answer has been written
//! to the filter. A fetch that finds the budget spent does not wait: it answers `pass`, and
//! the filter's own upstream request answers the client. So the companion's memory is bounded
//! by the budget, not by the number of connections.
//!
//! What is counted is the body as read from the origin. The store makes transient copies of it
//! (the envelope, its Hazelcast `Data`, the request on the wire) that live only while that one
//! entry is written, so the companion's peak is the budget times a small constant (at most
//! four copies of a body at once) plus a fixed base; the e2e test `memory_e2e` measures it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The budget shared by every fetch of one companion; cheap to clone.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit: usize,
    used: AtomicUsize,
}

/// Bytes taken from a [`BodyBudget`]; they go back when this is dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Inner>,
    bytes: usize,
}

impl BodyBudget {
    pub fn new(limit: usize) -> BodyBudget {
        BodyBudget {
            inner: Arc::new(Inner {
                limit,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// Takes `bytes` now, or `None` when that would pass the limit (never waits).
    pub fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        self.inner.take(bytes).then(|| Reservation {
            budget: self.inner.clone(),
            bytes,
        })
    }

    /// Bytes reserved right now, for metrics and tests.
    pub fn in_use(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.inner.limit
    }
}

impl Inner {
    fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|n| *n <= self.limit)
            })
            .is_ok()
    }
}

impl Reservation {
    /// Grows the reservation by `bytes`; `false` (and unchanged) when the budget has no room.
    pub fn grow(&mut self, bytes: usize) -> bool {
        let ok = self.budget.take(bytes);
        if ok {
            self.bytes += bytes;
        }
        ok
    }

    /// Grows the reservation to at least `bytes` in all.
    pub fn grow_to(&mut self, bytes: usize) -> bool {
        bytes <= self.bytes || self.grow(bytes - self.bytes)
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fit_the_limit_and_give_their_bytes_back_when_dropped() {
        let budget = BodyBudget::new(100);
        let a = budget.try_reserve(60).unwrap();
        assert!(budget.try_reserve(41).is_none(), "over the limit: refused");
        let mut b = budget.try_reserve(40).unwrap();
        assert_eq!(budget.in_use(), 100);
        assert!(!b.grow(1));
        assert_eq!(b.bytes(), 40);
        drop(a);
        assert_eq!(budget.in_use(), 40);
        assert!(b.grow_to(90));
        assert!(b.grow_to(50), "already that large");
        assert_eq!((b.bytes(), budget.in_use()), (90, 90));
        drop(b);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn a_zero_byte_reservation_always_fits_and_a_huge_one_never_overflows() {
        let budget = BodyBudget::new(10);
        let _full = budget.try_reserve(10).unwrap();
        assert!(budget.try_reserve(0).is_some());
        assert!(budget.try_reserve(usize::MAX).is_none());
    }
}
