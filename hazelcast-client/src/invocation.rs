//! The invocation service (protocol sheet §6.4, §7, §8.4): runs one request to completion.
//! Owns routing each attempt (the partition owner's connection, any connection while the owner
//! is unknown), fresh correlation and partition ids per attempt, the per-request deadline, the
//! retry rules of §7.3, turning error answers into `HazelcastError::Server`, and backup-aware
//! writes: the `BACKUP_AWARE` flag, the `Client.LocalBackupListener` that receives the acks,
//! and the wait for them. Knows nothing of maps or user listeners: requests come in encoded,
//! answers go out undecoded.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::backup_acks::Registration;
use crate::cluster::{self, Route};
use crate::codec::client_local_backup_listener as backup_codec;
use crate::codec::error as error_codec;
use crate::connection::{Connection, EventHandler};
use crate::error::HazelcastError;
use crate::listener_registry::ListenerEntry;
use crate::proto::{flags, patch_initial_flags, patch_request_ids, ClientMessage};
use crate::serialization::Data;
use crate::state::Shared;

/// Retries of retryable failures: the first few go at once, later ones wait a little longer
/// each time, up to this pause (protocol sheet §7.3, Java's scheme).
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Where a request must execute: the partition of a key, a given partition (Map.GetAll and
/// PutAll, already grouped by partition), or anywhere (cluster-wide operations).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    Key(&'a Data),
    Partition(i32),
    Any,
}

/// Whether a request changes an entry that has sync backups: such a request may be sent
/// backup-aware (§8.4). Reads never are: they have no backups to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backups {
    None,
    Sync,
}

impl Shared {
    /// Picks the connection for one attempt (§6.4) and counts it; `true` with it when it is
    /// the partition owner's.
    fn pick(&self, pid: i32) -> Option<(Arc<Connection>, bool)> {
        let state = self.state();
        // The common case first, without building the lists below (two allocations per
        // operation): a keyed request whose owner is known and connected goes to that
        // connection, exactly what `cluster::route` decides for it. The round-robin `turn`
        // now advances only for the requests that use it.
        if pid >= 0 {
            if let Some(conn) = state
                .view
                .owner(pid)
                .and_then(|owner| state.connections.get(&owner))
                .filter(|c| !c.is_closed())
            {
                conn.keyed_requests.fetch_add(1, Ordering::Relaxed);
                return Some((conn.clone(), true));
            }
        }
        let open: Vec<&Arc<Connection>> = state
            .connections
            .values()
            .filter(|c| !c.is_closed())
            .collect();
        let uuids: Vec<Uuid> = open.iter().map(|c| c.member).collect();
        let owner = if pid >= 0 {
            state.view.owner(pid)
        } else {
            None
        };
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let (chosen, to_owner) = match cluster::route(owner, &uuids, turn)? {
            Route::Owner(i) => (open.get(i).copied()?, pid >= 0),
            Route::Any(i) => {
                if pid >= 0 {
                    self.keyed_not_to_owner.fetch_add(1, Ordering::Relaxed);
                }
                (open.get(i).copied()?, false)
            }
        };
        let counter = if pid >= 0 {
            &chosen.keyed_requests
        } else {
            &chosen.other_requests
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Some((chosen.clone(), to_owner))
    }

    /// Runs one request: sets its partition id (from `target`) and a fresh correlation id
    /// for every attempt, sends it to the partition owner's connection (or any), waits for the
    /// answer within the invocation timeout, turns an error answer into
    /// `HazelcastError::Server`, and retries what §7.3 allows on whichever connection is then
    /// right. `idempotent` says the request may be sent again after its connection dropped
    /// (the message definition's `retryable` flag, or a map operation that is safe to redo).
    /// A write with `Backups::Sync` sent to its owner while acks can reach the client goes
    /// backup-aware and completes once its backups acknowledged it (or the backup timeout
    /// passed).
    ///
    /// With no connection at all it fails at once: the caller (the cache) has a better answer
    /// than waiting, the origin. While at least one connection is open (a member died, the
    /// others live), retries continue within the deadline.
    pub(crate) async fn invoke(
        &self,
        request: ClientMessage,
        target: Target<'_>,
        idempotent: bool,
        backups: Backups,
    ) -> Result<ClientMessage, HazelcastError> {
        let timeout = self.config.invocation_timeout;
        let deadline = Instant::now() + timeout;
        let mut attempt: u32 = 0;
        loop {
            let pid = match target {
                Target::Key(k) => k.partition_id(self.partition_count()),
                Target::Partition(p) => p,
                Target::Any => -1,
            };
            let (conn, to_owner) = self.pick(pid).ok_or(HazelcastError::NotConnected)?;
            let id = conn.next_correlation_id();
            // Each attempt encodes `request` (kept untouched for a retry) into one wire buffer
            // and patches the two ids in place; the connection takes that buffer as is. This
            // replaced a clone of the frame list per attempt (in case of a retry) plus a copy
            // of the initial frame per patched id, several allocations per operation
            // (docs/benchmarks.md, "Hot-path work": mallocs per op counted before and after).
            let mut wire = request.to_wire();
            if !patch_request_ids(&mut wire, id, pid) {
                // Encoders always write a full request header; this is a bug, not input.
                return Err(HazelcastError::Protocol(format!(
                    "request of type {:#08x} has no room for its header",
                    request.message_type()
                )));
            }
            // Backup-aware only towards the owner (a forwarded request's acks could not be
            // matched by the member) and while every backup member can reach us.
            let backup_aware = backups == Backups::Sync
                && to_owner
                && self.acks_ready.load(Ordering::Relaxed)
                && patch_initial_flags(&mut wire, flags::BACKUP_AWARE);
            // Registered before the send: an ack may beat the answer. Dropped (forgotten) on
            // every way out of this attempt.
            let registration = backup_aware.then(|| {
                self.backup_aware_requests.fetch_add(1, Ordering::Relaxed);
                Registration::new(&self.acks, id)
            });

            let err = match conn.send_wire(id, wire.freeze()) {
                Err(e) => e,
                Ok(rx) => match tokio::time::timeout_at(deadline.into(), rx).await {
                    Err(_) => {
                        conn.forget(id);
                        return Err(HazelcastError::Timeout(timeout));
                    }
                    Ok(Err(_)) => HazelcastError::ConnectionClosed {
                        member: conn.address.clone(),
                        reason: "connection dropped the request".into(),
                    },
                    Ok(Ok(Err(e))) => e,
                    Ok(Ok(Ok(answer))) => {
                        if answer.message_type() != error_codec::ERROR_MESSAGE_TYPE {
                            if registration.is_some() {
                                self.wait_for_backups(id, &answer, deadline).await;
                            }
                            return Ok(answer);
                        }
                        let holders = error_codec::decode_error(&answer)?;
                        HazelcastError::from_holders(&holders)
                    }
                },
            };
            drop(registration);
            if !err.is_retryable(idempotent) || Instant::now() >= deadline {
                return Err(err);
            }
            attempt += 1;
            let pause = if attempt <= 5 {
                Duration::ZERO
            } else {
                Duration::from_millis(1u64 << (attempt - 5).min(20)).min(MAX_RETRY_PAUSE)
            };
            tracing::debug!(%err, attempt, ?pause, "retrying Hazelcast invocation");
            if !pause.is_zero() {
                tokio::time::sleep_until((Instant::now() + pause).min(deadline).into()).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
    }

    /// The owner answered backup-aware request `id`: waits for the acks its answer announced,
    /// at most the backup timeout and never past the invocation's deadline. The write is
    /// applied either way, so a missing ack (a backup member's connection lost) delays the
    /// answer, it does not fail it (the official clients' default,
    /// `fail_on_indeterminate_operation_state = false`).
    async fn wait_for_backups(&self, id: i64, answer: &ClientMessage, deadline: Instant) {
        let expected = answer.backup_acks();
        if expected == 0 {
            return;
        }
        let Some(rx) = self.acks.answered(id, expected) else {
            return;
        };
        let until = (Instant::now() + self.config.backup_ack_timeout).min(deadline);
        if tokio::time::timeout_at(until.into(), rx).await.is_err() {
            self.backup_ack_timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                correlation_id = id,
                expected,
                timeout = ?self.config.backup_ack_timeout,
                "backup acks missing; completing the write without them"
            );
        }
    }

    /// Sends a request bound to one connection (listener registration and removal) and waits
    /// for its answer within the invocation timeout. Never retried elsewhere (§7.3): the
    /// registration belongs to that connection. `handler`, if given, receives the events of
    /// the registration; it is installed before the request leaves, since events may follow
    /// the answer at once.
    pub(crate) async fn invoke_on(
        &self,
        conn: &Connection,
        mut request: ClientMessage,
        handler: Option<EventHandler>,
    ) -> Result<(i64, ClientMessage), HazelcastError> {
        request.set_partition_id(-1);
        let id = conn.next_correlation_id();
        request.set_correlation_id(id);
        if let Some(h) = handler.clone() {
            conn.add_listener(id, h);
        }
        let result = async {
            let rx = conn.send(request)?;
            match tokio::time::timeout(self.config.invocation_timeout, rx).await {
                Err(_) => {
                    conn.forget(id);
                    Err(HazelcastError::Timeout(self.config.invocation_timeout))
                }
                Ok(Err(_)) => Err(HazelcastError::ConnectionClosed {
                    member: conn.address.clone(),
                    reason: "connection dropped the request".into(),
                }),
                Ok(Ok(Err(e))) => Err(e),
                Ok(Ok(Ok(answer))) if answer.message_type() == error_codec::ERROR_MESSAGE_TYPE => {
                    Err(HazelcastError::from_holders(&error_codec::decode_error(
                        &answer,
                    )?))
                }
                Ok(Ok(Ok(answer))) => Ok(answer),
            }
        }
        .await;
        if result.is_err() && handler.is_some() {
            conn.remove_listener(id);
        }
        result.map(|answer| (id, answer))
    }
}

/// The client's `Client.LocalBackupListener` (§8.4), registered like any listener on every
/// connection: each backup member sends its acks on its own connection. Its events feed the
/// client's `BackupAcks`.
pub(crate) struct BackupListener {
    pub acks: std::sync::Weak<Shared>,
}

impl ListenerEntry for BackupListener {
    fn add_request(&self) -> ClientMessage {
        backup_codec::encode_request()
    }

    fn decode_add(&self, answer: &ClientMessage) -> Result<Uuid, HazelcastError> {
        Ok(backup_codec::decode_response(answer)?)
    }

    fn remove_request(&self, _server_id: Uuid) -> Option<ClientMessage> {
        // The protocol has no removal message: the registration ends with its connection.
        None
    }

    fn handler(&self) -> EventHandler {
        let shared = self.acks.clone();
        Arc::new(move |msg: ClientMessage| {
            if msg.message_type() != backup_codec::EVENT_BACKUP {
                return;
            }
            match backup_codec::decode_backup_event(&msg) {
                Ok(source) => {
                    if let Some(shared) = shared.upgrade() {
                        shared.acks.ack(source);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "bad backup event dropped"),
            }
        })
    }
}
