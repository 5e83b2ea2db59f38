//! The client's picture of the cluster (protocol sheet §3.4, §6.4): the versioned member list,
//! the partition table (partition id → owner uuid) and the routing decision made from them.
//! Sans-IO: events and auth answers come in as decoded values, decisions go out; the client
//! module feeds it and owns the lock around it.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use super::codec::custom::MemberInfo;
use super::codec::PartitionTable;
use uuid::Uuid;

/// Identifies one connection for the "came from another connection" partition rule.
pub(crate) type ConnectionId = u64;

/// Member list and partition table, each with the version it was last updated to.
#[derive(Debug, Default)]
pub(crate) struct ClusterView {
    members_version: Option<i32>,
    members: Vec<MemberInfo>,
    partitions_version: Option<i32>,
    partitions_source: Option<ConnectionId>,
    /// Indexed by partition id; `None` for a partition with no known owner.
    owners: Vec<Option<Uuid>>,
}

impl ClusterView {
    /// Applies a MembersView (or the member list of an auth answer) if it is newer than the
    /// list held; says whether it did.
    pub fn apply_members(&mut self, version: i32, members: Vec<MemberInfo>) -> bool {
        if self.members_version.is_some_and(|held| version <= held) {
            return false;
        }
        self.members_version = Some(version);
        self.members = members;
        true
    }

    /// Applies a PartitionsView (or the table of an auth answer) by the rules of §3.4: an
    /// empty table is ignored (the cluster has not assigned partitions yet); otherwise it is
    /// applied when it comes from a different connection than the table held (a new listener
    /// connection starts a new version sequence) or when its version is newer. Partition ids
    /// outside `0..partition_count` are ignored, so a bad table cannot make the client
    /// allocate more than one slot per real partition.
    pub fn apply_partitions(
        &mut self,
        source: ConnectionId,
        version: i32,
        table: &PartitionTable,
        partition_count: i32,
    ) -> bool {
        if table.iter().all(|(_, ids)| ids.is_empty()) || partition_count <= 0 {
            return false;
        }
        let same_source = self.partitions_source == Some(source);
        if same_source && self.partitions_version.is_some_and(|held| version <= held) {
            return false;
        }
        let mut owners = vec![None; partition_count as usize];
        for (member, ids) in table {
            for &pid in ids {
                if let Some(slot) = usize::try_from(pid).ok().and_then(|i| owners.get_mut(i)) {
                    *slot = Some(*member);
                }
            }
        }
        self.owners = owners;
        self.partitions_version = Some(version);
        self.partitions_source = Some(source);
        true
    }

    /// Forgets everything: after a whole-cluster restart (new cluster id) nothing held is true.
    pub fn clear(&mut self) {
        *self = ClusterView::default();
    }

    pub fn members(&self) -> &[MemberInfo] {
        &self.members
    }

    /// Whether a member list has been received at all.
    pub fn has_members(&self) -> bool {
        self.members_version.is_some()
    }

    pub fn is_member(&self, uuid: Uuid) -> bool {
        self.members.iter().any(|m| m.uuid == uuid)
    }

    pub fn owner(&self, partition_id: i32) -> Option<Uuid> {
        usize::try_from(partition_id)
            .ok()
            .and_then(|i| self.owners.get(i).copied().flatten())
    }

    pub fn partitions_version(&self) -> Option<i32> {
        self.partitions_version
    }
}

/// Where one request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// To the partition owner's connection.
    Owner(usize),
    /// To another connection: the owner is unknown or not connected (the member forwards by the
    /// header's partition id), or the request has no partition.
    Any(usize),
}

/// The routing decision of §6.4 over the open connections (`open[i]` = that connection's member
/// uuid): the owner's connection if there is one, else round robin by `turn`. `None` when there
/// is no connection at all.
pub(crate) fn route(owner: Option<Uuid>, open: &[Uuid], turn: usize) -> Option<Route> {
    if open.is_empty() {
        return None;
    }
    if let Some(i) = owner.and_then(|o| open.iter().position(|m| *m == o)) {
        return Some(Route::Owner(i));
    }
    Some(Route::Any(turn % open.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::client_add_cluster_view_listener as view_codec;
    use crate::codec::custom::Address;
    use crate::proto::testutil::msg;

    const A: Uuid = Uuid::from_u128(0xa);
    const B: Uuid = Uuid::from_u128(0xb);
    const DOC_MEMBER: Uuid = Uuid::from_u128(0x1111_1111_2222_3333_4444_5555_5555_5555);

    fn member(uuid: Uuid, port: i32) -> MemberInfo {
        MemberInfo {
            uuid,
            address: Address {
                host: "127.0.0.1".into(),
                port,
            },
            lite_member: false,
            version: (5, 7, 0),
            client_address: None,
        }
    }

    #[test]
    fn a_members_view_is_applied_only_when_newer() {
        let mut v = ClusterView::default();
        assert!(!v.has_members());
        assert!(v.apply_members(2, vec![member(A, 1), member(B, 2)]));
        assert!(!v.apply_members(2, vec![member(A, 1)]));
        assert!(!v.apply_members(1, vec![member(A, 1)]));
        assert_eq!(v.members().len(), 2);
        assert!(v.apply_members(3, vec![member(B, 2)]));
        assert!(!v.is_member(A));
        assert!(v.is_member(B));
    }

    #[test]
    fn the_documented_partitions_view_bytes_set_the_owners() {
        // Protocol sheet §12.5: version 9, the member owns partitions 0, 1 and 2.
        let m = msg("1a00000000c2 03030000 0200000000000000 ffffffff 09000000
            | 060000000010 | 120000000000 000000000100000002000000 | 060000000008
            | 170000000020 00 3333222211111111 5555555555554444");
        let (version, table) = view_codec::decode_partitions_view(&m).unwrap();
        let mut v = ClusterView::default();
        assert!(v.apply_partitions(1, version, &table, 271));
        assert_eq!(v.owner(0), Some(DOC_MEMBER));
        assert_eq!(v.owner(2), Some(DOC_MEMBER));
        assert_eq!(v.owner(3), None);
        assert_eq!(v.partitions_version(), Some(9));
    }

    #[test]
    fn a_stale_partitions_view_from_the_same_connection_is_ignored() {
        let mut v = ClusterView::default();
        assert!(v.apply_partitions(1, 5, &vec![(A, vec![0, 1])], 4));
        assert!(!v.apply_partitions(1, 5, &vec![(B, vec![0, 1])], 4));
        assert!(!v.apply_partitions(1, 4, &vec![(B, vec![0, 1])], 4));
        assert_eq!(v.owner(0), Some(A));
        assert!(v.apply_partitions(1, 6, &vec![(B, vec![0]), (A, vec![1])], 4));
        assert_eq!((v.owner(0), v.owner(1)), (Some(B), Some(A)));
    }

    #[test]
    fn a_partitions_view_from_a_new_connection_is_applied_even_with_a_lower_version() {
        let mut v = ClusterView::default();
        assert!(v.apply_partitions(1, 50, &vec![(A, vec![0])], 2));
        assert!(v.apply_partitions(2, 3, &vec![(B, vec![0])], 2));
        assert_eq!(v.owner(0), Some(B));
    }

    #[test]
    fn an_empty_partition_table_is_ignored() {
        let mut v = ClusterView::default();
        assert!(v.apply_partitions(1, 1, &vec![(A, vec![0])], 2));
        assert!(!v.apply_partitions(2, 2, &vec![], 2));
        assert!(!v.apply_partitions(2, 2, &vec![(B, vec![])], 2));
        assert_eq!(v.owner(0), Some(A));
    }

    #[test]
    fn partition_ids_outside_the_partition_count_are_ignored() {
        let mut v = ClusterView::default();
        assert!(v.apply_partitions(1, 1, &vec![(A, vec![-1, 0, 7, i32::MAX])], 2));
        assert_eq!(v.owner(0), Some(A));
        assert_eq!(v.owner(1), None);
        assert_eq!(v.owner(7), None);
        assert_eq!(v.owner(-1), None);
    }

    #[test]
    fn clearing_forgets_members_and_owners() {
        let mut v = ClusterView::default();
        v.apply_members(4, vec![member(A, 1)]);
        v.apply_partitions(1, 1, &vec![(A, vec![0])], 1);
        v.clear();
        assert!(!v.has_members());
        assert_eq!(v.owner(0), None);
        // A restarted cluster starts its versions again from 1.
        assert!(v.apply_members(1, vec![member(B, 2)]));
    }

    #[test]
    fn a_keyed_request_goes_to_its_owners_connection() {
        assert_eq!(route(Some(B), &[A, B], 0), Some(Route::Owner(1)));
        assert_eq!(route(Some(B), &[A, B], 7), Some(Route::Owner(1)));
    }

    #[test]
    fn without_a_connected_owner_requests_go_round_robin() {
        let c = Uuid::from_u128(0xc);
        assert_eq!(route(Some(c), &[A, B], 0), Some(Route::Any(0)));
        assert_eq!(route(Some(c), &[A, B], 1), Some(Route::Any(1)));
        assert_eq!(route(None, &[A, B], 2), Some(Route::Any(0)));
    }

    #[test]
    fn with_no_connection_there_is_no_route() {
        assert_eq!(route(Some(A), &[], 0), None);
        assert_eq!(route(None, &[], 0), None);
    }
}
