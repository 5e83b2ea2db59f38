//! The listener binder (protocol sheet §8): puts every listener on every open connection, on
//! new connections as they open and again after a reconnect, and takes it off them when it is
//! removed. Listeners are opaque [`ListenerEntry`] objects that encode their own add and remove
//! requests and handle their own events; the bookkeeping of which is registered where is the
//! sans-IO `listener_registry`. The I/O is one `invoke_on` per connection and listener.

use std::sync::Arc;

use crate::error::HazelcastError;
use crate::listener_registry::{ListenerEntry, ListenerId};
use crate::state::Shared;

impl Shared {
    /// Adds a listener and registers it on every open connection; later connections get it
    /// from the manager. Fails (and keeps nothing) when there is no connection or a
    /// registration fails, so that a caller never believes in a feed that is not there.
    pub(crate) async fn add_listener(
        self: &Arc<Self>,
        entry: Arc<dyn ListenerEntry>,
    ) -> Result<ListenerId, HazelcastError> {
        if !self.is_connected() {
            return Err(HazelcastError::NotConnected);
        }
        let id = self.state().listeners.add(entry);
        let outcomes = self.register_missing().await;
        if let Some(err) = outcomes
            .into_iter()
            .filter(|(lid, _)| *lid == id)
            .find_map(|(_, r)| r.err())
        {
            let _ = self.remove_listener(id).await;
            return Err(err);
        }
        Ok(id)
    }

    /// Removes a listener from every connection; `false` if it was not there.
    pub(crate) async fn remove_listener(&self, id: ListenerId) -> Result<bool, HazelcastError> {
        let removed = self.state().listeners.remove(id);
        let Some((entry, undo)) = removed else {
            return Ok(false);
        };
        for (conn_id, correlation_id, server_id) in undo {
            if let Some(conn) = self.connection_by_id(conn_id) {
                conn.remove_listener(correlation_id);
                let Some(req) = entry.remove_request(server_id) else {
                    continue;
                };
                // Best effort: if the member does not answer, the registration dies with the
                // connection anyway, and its events are already dropped here.
                if let Err(e) = self.invoke_on(&conn, req, None).await {
                    tracing::debug!(member = %conn.address, error = %e, "listener removal failed");
                }
            }
        }
        Ok(true)
    }

    /// Registers every listener missing on an open connection; returns each outcome.
    pub(crate) async fn register_missing(
        self: &Arc<Self>,
    ) -> Vec<(ListenerId, Result<(), HazelcastError>)> {
        let work = {
            let mut state = self.state();
            let open = state.open_ids();
            state.listeners.take_missing(&open)
        };
        let mut tasks = tokio::task::JoinSet::new();
        for (conn_id, lid, entry) in work {
            let shared = self.clone();
            tasks.spawn(async move {
                let Some(conn) = shared.connection_by_id(conn_id) else {
                    shared.state().listeners.failed(conn_id, lid);
                    return (lid, Err(HazelcastError::NotConnected));
                };
                let outcome = async {
                    let (correlation_id, answer) = shared
                        .invoke_on(&conn, entry.add_request(), Some(entry.handler()))
                        .await?;
                    let server_id = entry.decode_add(&answer)?;
                    Ok::<_, HazelcastError>((correlation_id, server_id))
                }
                .await;
                match outcome {
                    Ok((correlation_id, server_id)) => {
                        let keep = shared.state().listeners.registered(
                            conn_id,
                            lid,
                            correlation_id,
                            server_id,
                        );
                        if !keep {
                            conn.remove_listener(correlation_id);
                        }
                        tracing::debug!(member = %conn.address, listener = ?lid, "listener registered");
                        (lid, Ok(()))
                    }
                    Err(e) => {
                        shared.state().listeners.failed(conn_id, lid);
                        tracing::warn!(member = %conn.address, error = %e, "listener registration failed; will retry");
                        (lid, Err(e))
                    }
                }
            });
        }
        let mut out = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok(r) = joined {
                out.push(r);
            }
        }
        out
    }
}
