//! Bookkeeping of user listeners across connections (protocol sheet §8): a smart client
//! registers every listener on every member connection (`localOnly = true`), on new
//! connections as they open, and again after a reconnect. This module only records which
//! listener is registered (or being registered) on which connection and answers "what is
//! missing"; the listener binder does the I/O. Sans-IO and generic over what a listener carries,
//! so it is tested with plain values; the client stores [`ListenerEntry`] trait objects, so the
//! layers below the map API never see what kind of listener an entry is.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::collections::{BTreeMap, HashMap};

use super::cluster::ConnectionId;
use super::connection::EventHandler;
use super::error::HazelcastError;
use super::proto::ClientMessage;
use uuid::Uuid;

/// What the listener binder needs of one listener to register it on any connection, route its
/// events and remove it again; implemented by the API layer (entry and invalidation listeners)
/// and by the invocation layer (its backup-ack listener).
pub(crate) trait ListenerEntry: Send + Sync {
    /// The registration request (correlation and partition ids are set by the binder).
    fn add_request(&self) -> ClientMessage;
    /// The member's registration id, from its answer to [`Self::add_request`].
    fn decode_add(&self, answer: &ClientMessage) -> Result<Uuid, HazelcastError>;
    /// The request that removes registration `server_id`, if the listener has one (some
    /// registrations only end with their connection).
    fn remove_request(&self, server_id: Uuid) -> Option<ClientMessage>;
    /// Receives the registration's events on the connection's reader task: must not block.
    fn handler(&self) -> EventHandler;
}

/// Identifies one listener added through the map API; pass it to `Map::remove_listener`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(u64);

/// A registration on one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Registration {
    /// The request is in flight.
    Pending,
    /// The member accepted it: events carry `correlation_id`; `server_id` deregisters it.
    Active {
        correlation_id: i64,
        server_id: Uuid,
    },
}

/// An active registration to undo: (connection, correlation id, server registration id).
pub(crate) type Undo = (ConnectionId, i64, Uuid);

/// Listeners by id and their registrations by connection.
#[derive(Debug)]
pub(crate) struct ListenerRegistry<S> {
    next: u64,
    listeners: BTreeMap<ListenerId, S>,
    registrations: HashMap<(ConnectionId, ListenerId), Registration>,
    /// Successful registrations per listener since it was added (a consumer that sees this
    /// grow knows its listener came back on a connection and may have missed events).
    made: HashMap<ListenerId, u64>,
}

impl<S> Default for ListenerRegistry<S> {
    fn default() -> Self {
        ListenerRegistry {
            next: 1,
            listeners: BTreeMap::new(),
            registrations: HashMap::new(),
            made: HashMap::new(),
        }
    }
}

impl<S: Clone> ListenerRegistry<S> {
    pub fn add(&mut self, spec: S) -> ListenerId {
        let id = ListenerId(self.next);
        self.next += 1;
        self.listeners.insert(id, spec);
        id
    }

    /// Forgets a listener; returns its spec and the active registrations to undo (connection,
    /// correlation id, server registration id).
    pub fn remove(&mut self, id: ListenerId) -> Option<(S, Vec<Undo>)> {
        let spec = self.listeners.remove(&id)?;
        self.made.remove(&id);
        let mut undo = Vec::new();
        self.registrations.retain(|(conn, lid), reg| {
            if *lid != id {
                return true;
            }
            if let Registration::Active {
                correlation_id,
                server_id,
            } = reg
            {
                undo.push((*conn, *correlation_id, *server_id));
            }
            false
        });
        undo.sort_unstable_by_key(|(conn, _, _)| *conn);
        Some((spec, undo))
    }

    /// The registrations missing on the `open` connections, each marked pending so that a
    /// second call does not hand it out again while it is in flight.
    pub fn take_missing(&mut self, open: &[ConnectionId]) -> Vec<(ConnectionId, ListenerId, S)> {
        let mut out = Vec::new();
        for conn in open {
            for (id, spec) in &self.listeners {
                if let std::collections::hash_map::Entry::Vacant(e) =
                    self.registrations.entry((*conn, *id))
                {
                    e.insert(Registration::Pending);
                    out.push((*conn, *id, spec.clone()));
                }
            }
        }
        out
    }

    /// A registration succeeded. Returns `false` if it is no longer wanted (the listener was
    /// removed or the connection closed meanwhile): the caller then undoes it.
    pub fn registered(
        &mut self,
        conn: ConnectionId,
        id: ListenerId,
        correlation_id: i64,
        server_id: Uuid,
    ) -> bool {
        match self.registrations.get_mut(&(conn, id)) {
            Some(reg @ Registration::Pending) => {
                *reg = Registration::Active {
                    correlation_id,
                    server_id,
                };
                *self.made.entry(id).or_default() += 1;
                true
            }
            _ => false,
        }
    }

    /// A registration failed: it becomes missing again, to be retried.
    pub fn failed(&mut self, conn: ConnectionId, id: ListenerId) {
        if self.registrations.get(&(conn, id)) == Some(&Registration::Pending) {
            self.registrations.remove(&(conn, id));
        }
    }

    /// A connection closed: its registrations died with it (the member drops them too).
    pub fn connection_closed(&mut self, conn: ConnectionId) {
        self.registrations.retain(|(c, _), _| *c != conn);
    }

    /// Whether listener `id` is active (not just pending) on every one of the `open`
    /// connections, and there is at least one.
    pub fn active_on_all(&self, id: ListenerId, open: &[ConnectionId]) -> bool {
        !open.is_empty()
            && open.iter().all(|c| {
                matches!(
                    self.registrations.get(&(*c, id)),
                    Some(Registration::Active { .. })
                )
            })
    }

    /// How many registrations of `id` have succeeded since it was added.
    pub fn registrations_made(&self, id: ListenerId) -> u64 {
        self.made.get(&id).copied().unwrap_or(0)
    }

    #[cfg(test)]
    pub fn registration(&self, conn: ConnectionId, id: ListenerId) -> Option<Registration> {
        self.registrations.get(&(conn, id)).copied()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.listeners.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: Uuid = Uuid::from_u128(1);
    const R2: Uuid = Uuid::from_u128(2);

    #[test]
    fn a_new_listener_is_missing_on_every_open_connection_once() {
        let mut r = ListenerRegistry::default();
        let id = r.add("entries");
        let missing = r.take_missing(&[1, 2]);
        assert_eq!(missing, vec![(1, id, "entries"), (2, id, "entries")]);
        assert!(
            r.take_missing(&[1, 2]).is_empty(),
            "pending ones are not handed out twice"
        );
        assert_eq!(r.registration(1, id), Some(Registration::Pending));
    }

    #[test]
    fn a_connection_that_opens_later_gets_every_listener() {
        let mut r = ListenerRegistry::default();
        let a = r.add("a");
        let b = r.add("b");
        for (conn, id, _) in r.take_missing(&[1]) {
            assert!(r.registered(conn, id, 10, R1));
        }
        let missing = r.take_missing(&[1, 3]);
        assert_eq!(missing, vec![(3, a, "a"), (3, b, "b")]);
    }

    #[test]
    fn a_failed_registration_is_retried_on_the_next_round() {
        let mut r = ListenerRegistry::default();
        let id = r.add(());
        r.take_missing(&[1]);
        r.failed(1, id);
        assert_eq!(r.take_missing(&[1]), vec![(1, id, ())]);
    }

    #[test]
    fn after_a_reconnect_listeners_are_registered_on_the_new_connections() {
        let mut r = ListenerRegistry::default();
        let id = r.add(());
        r.take_missing(&[1, 2]);
        assert!(r.registered(1, id, 10, R1));
        assert!(r.registered(2, id, 11, R2));
        r.connection_closed(1);
        r.connection_closed(2);
        assert_eq!(r.registration(1, id), None);
        assert_eq!(r.take_missing(&[3]), vec![(3, id, ())]);
    }

    #[test]
    fn removing_a_listener_returns_its_active_registrations_to_undo() {
        let mut r = ListenerRegistry::default();
        let id = r.add(());
        let other = r.add(());
        r.take_missing(&[1, 2]);
        assert!(r.registered(1, id, 10, R1));
        assert!(r.registered(1, other, 12, R2));
        // Connection 2 is still pending: nothing to undo there yet.
        let (_, undo) = r.remove(id).unwrap();
        assert_eq!(undo, vec![(1, 10, R1)]);
        assert!(r.remove(id).is_none());
        assert_eq!(r.len(), 1);
        // The late answer from connection 2 is no longer wanted.
        assert!(!r.registered(2, id, 13, R1));
    }

    #[test]
    fn a_listener_is_active_everywhere_only_once_every_open_connection_answered() {
        let mut r = ListenerRegistry::default();
        let id = r.add(());
        assert!(!r.active_on_all(id, &[]), "no connection: no feed");
        r.take_missing(&[1, 2]);
        assert!(r.registered(1, id, 10, R1));
        assert!(!r.active_on_all(id, &[1, 2]), "2 is still pending");
        assert!(r.registered(2, id, 11, R2));
        assert!(r.active_on_all(id, &[1, 2]));
        assert_eq!(r.registrations_made(id), 2);
        r.connection_closed(2);
        r.take_missing(&[1, 3]);
        assert!(!r.active_on_all(id, &[1, 3]));
        assert!(r.registered(3, id, 12, R2));
        assert!(r.active_on_all(id, &[1, 3]));
        assert_eq!(
            r.registrations_made(id),
            3,
            "the new connection's registration counts"
        );
    }

    #[test]
    fn a_registration_answered_after_its_connection_closed_is_not_kept() {
        let mut r = ListenerRegistry::default();
        let id = r.add(());
        r.take_missing(&[1]);
        r.connection_closed(1);
        assert!(!r.registered(1, id, 10, R1));
        assert_eq!(r.registration(1, id), None);
    }
}
