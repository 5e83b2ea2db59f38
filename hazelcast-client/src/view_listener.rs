//! The cluster view listener (protocol sheet §3.4): `Client.AddClusterViewListener` on one
//! connection, whose MembersView and PartitionsView events keep the client's member list and
//! partition table current, and the `Client.TriggerPartitionAssignment` that makes a fresh
//! cluster assign its partitions. The apply rules (versions, which connection may update the
//! table) are sans-IO in `cluster`; this module only registers and feeds it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use crate::cluster::ConnectionId;
use crate::codec::client_add_cluster_view_listener as view_codec;
use crate::codec::client_trigger_partition_assignment as trigger_codec;
use crate::connection::EventHandler;
use crate::invocation::{Backups, Target};
use crate::proto::ClientMessage;
use crate::state::Shared;

impl Shared {
    /// Asks a fresh cluster to assign partitions while the client has no table yet, so routing
    /// by owner starts without waiting for the first keyed operation (§3.4).
    pub(crate) async fn ensure_partition_table(&self) {
        if self.state().view.partitions_version().is_some() {
            return;
        }
        let req = trigger_codec::encode_request();
        match self.invoke(req, Target::Any, true, Backups::None).await {
            Ok(answer) => {
                let _ = trigger_codec::decode_response(&answer);
            }
            Err(e) => tracing::debug!(error = %e, "partition assignment trigger failed"),
        }
    }

    /// Registers the cluster view listener on one connection if none carries it (§3.4).
    pub(crate) async fn ensure_view_listener(self: &Arc<Self>) {
        let conn = {
            let mut state = self.state();
            if state.view_listener.is_some() {
                return;
            }
            let Some(conn) = state.connections.values().find(|c| !c.is_closed()).cloned() else {
                return;
            };
            state.view_listener = Some(conn.id);
            conn
        };
        let handler = view_handler(Arc::downgrade(self), conn.id);
        let result = self
            .invoke_on(&conn, view_codec::encode_request(), Some(handler))
            .await
            .and_then(|(_, answer)| Ok(view_codec::decode_response(&answer)?));
        match result {
            Ok(()) => tracing::debug!(member = %conn.address, "cluster view listener registered"),
            Err(e) => {
                tracing::warn!(member = %conn.address, error = %e, "cluster view listener registration failed; will retry");
                let mut state = self.state();
                if state.view_listener == Some(conn.id) {
                    state.view_listener = None;
                }
            }
        }
    }
}

/// Applies MembersView / PartitionsView events from connection `conn` to the view. Runs on the
/// reader task: decoding and a short locked update, nothing that blocks. Other event types
/// (MemberGroupsView, ClusterVersion) are dropped (§8.3).
fn view_handler(client: Weak<Shared>, conn: ConnectionId) -> EventHandler {
    Arc::new(move |msg: ClientMessage| {
        let Some(shared) = client.upgrade() else {
            return;
        };
        match msg.message_type() {
            view_codec::EVENT_MEMBERS_VIEW => match view_codec::decode_members_view(&msg) {
                Ok((version, members)) => {
                    let applied = {
                        let mut state = shared.state();
                        let addresses: Vec<String> = members
                            .iter()
                            .map(|m| {
                                let a = m.client_facing_address();
                                format!("{}:{}", a.host, a.port)
                            })
                            .collect();
                        state
                            .view
                            .apply_members(version, members)
                            .then_some(addresses)
                    };
                    if let Some(addresses) = applied {
                        tracing::info!(version, members = ?addresses, "cluster member list");
                        // A member joined or left: backup acks wait until every member has a
                        // connection with the backup listener again (the manager re-checks).
                        shared.acks_ready.store(false, Ordering::Relaxed);
                        shared.wake.notify_one();
                    }
                }
                Err(e) => tracing::warn!(error = %e, "bad MembersView event dropped"),
            },
            view_codec::EVENT_PARTITIONS_VIEW => match view_codec::decode_partitions_view(&msg) {
                Ok((version, table)) => {
                    let count = shared.partition_count();
                    let applied = shared
                        .state()
                        .view
                        .apply_partitions(conn, version, &table, count);
                    if applied {
                        tracing::debug!(version, "partition table updated");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "bad PartitionsView event dropped"),
            },
            _ => {}
        }
    })
}
