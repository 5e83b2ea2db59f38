//! `Client.AddClusterViewListener` (§3.2, §3.4): subscribes one connection to member-list and
//! partition-table pushes. Owns the request and the MembersView / PartitionsView event
//! decoders; MemberGroupsView and ClusterVersion (2.8) are only named so they can be dropped.

use bytes::BufMut;

use super::custom::{decode_member_info, encode_member_info, MemberInfo};
use super::{fixed_i32, open, CodecError, MessageBuilder, PartitionTable, EVENT_FIXED};
use crate::proto::ClientMessage;
use uuid::Uuid;

/// hex: 0x000300
pub const REQUEST_TYPE: i32 = 768;
/// hex: 0x000301
pub const RESPONSE_TYPE: i32 = 769;
/// hex: 0x000302
pub const EVENT_MEMBERS_VIEW: i32 = 770;
/// hex: 0x000303
pub const EVENT_PARTITIONS_VIEW: i32 = 771;
/// hex: 0x000304 (2.8, ignored)
pub const EVENT_MEMBER_GROUPS_VIEW: i32 = 772;
/// hex: 0x000305 (2.8, ignored)
pub const EVENT_CLUSTER_VERSION: i32 = 773;

const VERSION_OFFSET: usize = EVENT_FIXED;

pub fn encode_request() -> ClientMessage {
    MessageBuilder::request(REQUEST_TYPE, |_| {}).build()
}

pub fn decode_response(msg: &ClientMessage) -> Result<(), CodecError> {
    open(msg, RESPONSE_TYPE).map(|_| ())
}

/// MembersView: (member-list version, members).
pub fn decode_members_view(msg: &ClientMessage) -> Result<(i32, Vec<MemberInfo>), CodecError> {
    let (fixed, mut c) = open(msg, EVENT_MEMBERS_VIEW)?;
    let version = fixed_i32(fixed, VERSION_OFFSET, "MembersView.version")?;
    let members = c.list("MembersView.memberInfos", decode_member_info)?;
    Ok((version, members))
}

/// PartitionsView: (partition-table version, member uuid → owned partition ids).
pub fn decode_partitions_view(msg: &ClientMessage) -> Result<(i32, PartitionTable), CodecError> {
    let (fixed, mut c) = open(msg, EVENT_PARTITIONS_VIEW)?;
    let version = fixed_i32(fixed, VERSION_OFFSET, "PartitionsView.version")?;
    let partitions = c.partition_table("PartitionsView.partitions")?;
    Ok((version, partitions))
}

/// A MembersView event as a member would send it. For tests and fakes.
pub fn encode_members_view(version: i32, members: &[MemberInfo]) -> ClientMessage {
    let mut b = MessageBuilder::event(EVENT_MEMBERS_VIEW, |f| f.put_i32_le(version));
    b.begin();
    for m in members {
        encode_member_info(&mut b, m);
    }
    b.end();
    b.build()
}

/// A PartitionsView event as a member would send it. For tests and fakes.
pub fn encode_partitions_view(version: i32, partitions: &[(Uuid, Vec<i32>)]) -> ClientMessage {
    let mut b = MessageBuilder::event(EVENT_PARTITIONS_VIEW, |f| f.put_i32_le(version));
    b.partition_table(partitions);
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::custom::Address;
    use crate::proto::testutil::{bytes_of, hex, msg};

    const MEMBER: Uuid = Uuid::from_u128(0x1111_1111_2222_3333_4444_5555_5555_5555);

    #[test]
    fn request_matches_the_documented_bytes() {
        let mut m = encode_request();
        m.set_correlation_id(2);
        assert_eq!(
            bytes_of(&m),
            hex("1600000000e0 00030000 0200000000000000 ffffffff")
        );
    }

    #[test]
    fn the_documented_partitions_view_decodes() {
        let wire = "1a00000000c2 03030000 0200000000000000 ffffffff 09000000
            | 060000000010 | 120000000000 000000000100000002000000 | 060000000008
            | 170000000020 00 3333222211111111 5555555555554444";
        let m = msg(wire);
        assert!(m.is_event());
        assert_eq!(m.correlation_id(), 2);
        assert_eq!(
            decode_partitions_view(&m).unwrap(),
            (9, vec![(MEMBER, vec![0, 1, 2])])
        );
        let mut ours = encode_partitions_view(9, &[(MEMBER, vec![0, 1, 2])]);
        ours.set_correlation_id(2);
        assert_eq!(bytes_of(&ours), hex(wire));
    }

    #[test]
    fn members_view_round_trips() {
        let members = vec![MemberInfo {
            uuid: MEMBER,
            address: Address {
                host: "127.0.0.1".into(),
                port: 5701,
            },
            lite_member: false,
            version: (5, 7, 0),
            client_address: None,
        }];
        let m = encode_members_view(3, &members);
        assert_eq!(decode_members_view(&m).unwrap(), (3, members));
        assert!(decode_partitions_view(&m).is_err());
    }

    #[test]
    fn a_partition_table_with_mismatched_key_count_is_rejected() {
        let m = msg("1a00000000c2 03030000 0200000000000000 ffffffff 09000000
            | 060000000010 | 120000000000 000000000100000002000000 | 060000000008
            | 060000000020");
        assert!(matches!(
            decode_partitions_view(&m),
            Err(CodecError::ListLengthMismatch(_))
        ));
    }
}
