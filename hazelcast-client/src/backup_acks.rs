//! Backup acks of backup-aware requests (protocol sheet §8.4), as the official clients collect
//! them: the owner answers a backup-aware write as soon as it applied it, saying in the
//! answer's backup-ack byte how many sync backups to wait for, and each backup member sends a
//! `Client.LocalBackupListener` event naming the request's correlation id once it applied its
//! copy. The invocation completes when all acks are in (or the backup timeout passes), so a
//! write the caller saw succeed is on its backups too.
//!
//! Owns only the bookkeeping, keyed by correlation id (unique across the client's
//! connections: an ack arrives on the backup member's connection, not the owner's). Acks may
//! come before the answer, so a request is registered before it is sent. No I/O, no clocks:
//! the invocation layer waits on the receiver it is handed, with its own timeout.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// Outstanding backup-aware requests. A std `Mutex`: every section is one map operation, with
/// no `.await` inside.
#[derive(Default)]
pub(crate) struct BackupAcks {
    pending: Mutex<HashMap<i64, Pending>>,
}

#[derive(Default)]
struct Pending {
    received: u32,
    /// Set once the answer came: how many acks it announced, and who waits for them.
    waiting: Option<(u32, oneshot::Sender<()>)>,
}

impl BackupAcks {
    /// Registers request `id` before it is sent, so an ack that beats the answer is counted.
    pub fn expect(&self, id: i64) {
        self.lock().insert(id, Pending::default());
    }

    /// One backup member acknowledged request `id`. Acks of requests no longer registered (the
    /// call already completed, timed out, or was retried) are dropped.
    pub fn ack(&self, id: i64) {
        let mut pending = self.lock();
        let Some(p) = pending.get_mut(&id) else {
            return;
        };
        p.received += 1;
        let complete = p
            .waiting
            .as_ref()
            .is_some_and(|(expected, _)| p.received >= *expected);
        if complete {
            if let Some((_, tx)) = pending.remove(&id).and_then(|p| p.waiting) {
                let _ = tx.send(());
            }
        }
    }

    /// The answer to request `id` came and announced `expected` acks. `None` when every ack is
    /// already in (nothing to wait for; the request is forgotten); otherwise the receiver fires
    /// when the last one arrives.
    /// A request no longer registered (released by [`Self::release_all`]) waits for nothing.
    pub fn answered(&self, id: i64, expected: u8) -> Option<oneshot::Receiver<()>> {
        let mut pending = self.lock();
        let p = pending.get_mut(&id)?;
        if p.received >= u32::from(expected) {
            pending.remove(&id);
            return None;
        }
        let (tx, rx) = oneshot::channel();
        p.waiting = Some((u32::from(expected), tx));
        Some(rx)
    }

    /// A member connection closed: an ack it was to carry can no longer come, and which
    /// request expected an ack from which member is not known (an answer only says how many).
    /// Every outstanding request stops waiting at once instead of after the backup timeout;
    /// the owner applied each of them, as it does for a write that is not backup-aware.
    pub fn release_all(&self) {
        let released: Vec<Pending> = self.lock().drain().map(|(_, p)| p).collect();
        for p in released {
            if let Some((_, tx)) = p.waiting {
                let _ = tx.send(());
            }
        }
    }

    /// Drops request `id` (its answer failed, it timed out, or the caller gave up).
    pub fn forget(&self, id: i64) {
        self.lock().remove(&id);
    }

    /// Requests registered right now, for tests.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Pending>> {
        // Recover from poisoning: the map is consistent after every single operation.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Forgets its request when dropped: an invocation that ends in any way (an error, a timeout,
/// its caller dropping the future) leaves nothing behind.
pub(crate) struct Registration<'a> {
    acks: &'a BackupAcks,
    id: i64,
}

impl<'a> Registration<'a> {
    /// [`BackupAcks::expect`], undone on drop.
    pub fn new(acks: &'a BackupAcks, id: i64) -> Registration<'a> {
        acks.expect(id);
        Registration { acks, id }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.acks.forget(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_waits_for_the_announced_acks() {
        let acks = BackupAcks::default();
        acks.expect(7);
        let mut rx = acks.answered(7, 2).expect("acks outstanding");
        acks.ack(7);
        assert!(rx.try_recv().is_err(), "one of two acks is not enough");
        acks.ack(7);
        assert!(rx.try_recv().is_ok());
        assert_eq!(acks.len(), 0);
    }

    #[test]
    fn acks_that_beat_the_answer_count() {
        let acks = BackupAcks::default();
        acks.expect(7);
        acks.ack(7);
        assert!(acks.answered(7, 1).is_none(), "nothing left to wait for");
        assert_eq!(acks.len(), 0);
    }

    #[test]
    fn acks_of_unknown_requests_are_dropped() {
        let acks = BackupAcks::default();
        acks.ack(99);
        assert_eq!(acks.len(), 0);
        acks.expect(1);
        acks.ack(2);
        let rx = acks.answered(1, 1);
        assert!(rx.is_some(), "an ack for another request does not count");
    }

    #[test]
    fn a_closed_connection_releases_every_waiting_request() {
        let acks = BackupAcks::default();
        acks.expect(1);
        acks.expect(2);
        let mut waiting = acks.answered(1, 1).expect("waits");
        acks.release_all();
        assert!(waiting.try_recv().is_ok(), "released without its ack");
        assert!(
            acks.answered(2, 1).is_none(),
            "an answer after the release waits for nothing"
        );
        assert_eq!(acks.len(), 0);
    }

    #[test]
    fn a_dropped_registration_forgets_its_request() {
        let acks = BackupAcks::default();
        {
            let _r = Registration::new(&acks, 5);
            assert_eq!(acks.len(), 1);
            let _rx = acks.answered(5, 1);
        }
        assert_eq!(acks.len(), 0);
        acks.ack(5);
        assert_eq!(acks.len(), 0, "a late ack does not bring it back");
    }
}
