//! `Client.Authentication` (§4): the first message on every connection. We send the 2.8 form
//! (routingMode + cpDirectToLeaderRouting) with null username/password (OSS members) and read
//! the response fields up to 2.7/2.8, each only when the member sent it (§0.2).

use bytes::BufMut;

use super::custom::{
    decode_member_info, decode_nullable_address, encode_address, encode_member_info, Address,
    MemberInfo,
};
use super::{
    fixed_bool, fixed_i32, fixed_i8, fixed_u8, fixed_uuid, open, put_bool, put_uuid, CodecError,
    MessageBuilder, RESPONSE_FIXED, UUID_SIZE,
};
use crate::proto::ClientMessage;
use uuid::Uuid;

/// hex: 0x000100
pub const REQUEST_TYPE: i32 = 256;
/// hex: 0x000101
pub const RESPONSE_TYPE: i32 = 257;

/// The only serialization version members accept.
pub const SERIALIZATION_VERSION: u8 = 1;

/// Authentication status values (§4.3).
pub mod status {
    pub const AUTHENTICATED: u8 = 0;
    pub const CREDENTIALS_FAILED: u8 = 1;
    pub const SERIALIZATION_VERSION_MISMATCH: u8 = 2;
    pub const NOT_ALLOWED_IN_CLUSTER: u8 = 3;
}

/// Values of `AuthRequest::routing_mode` (2.8).
pub mod routing_mode {
    pub const UNISOCKET: u8 = 0;
    pub const SMART: u8 = 1;
    pub const SUBSET: u8 = 2;
}

const RESPONSE_STATUS_OFFSET: usize = RESPONSE_FIXED;
const RESPONSE_MEMBER_UUID_OFFSET: usize = RESPONSE_STATUS_OFFSET + 1;
const RESPONSE_SERIALIZATION_VERSION_OFFSET: usize = RESPONSE_MEMBER_UUID_OFFSET + UUID_SIZE;
const RESPONSE_PARTITION_COUNT_OFFSET: usize = RESPONSE_SERIALIZATION_VERSION_OFFSET + 1;
const RESPONSE_CLUSTER_ID_OFFSET: usize = RESPONSE_PARTITION_COUNT_OFFSET + 4;
const RESPONSE_FAILOVER_OFFSET: usize = RESPONSE_CLUSTER_ID_OFFSET + UUID_SIZE;
/// Since 2.7.
const RESPONSE_MEMBER_LIST_VERSION_OFFSET: usize = RESPONSE_FAILOVER_OFFSET + 1;
/// Since 2.7.
const RESPONSE_PARTITION_LIST_VERSION_OFFSET: usize = RESPONSE_MEMBER_LIST_VERSION_OFFSET + 4;

/// What the client says about itself.
#[derive(Clone, Debug)]
pub struct AuthRequest<'a> {
    pub cluster_name: &'a str,
    /// Random v4, kept for the client's lifetime and reused on every connection.
    pub client_uuid: Uuid,
    pub client_type: &'a str,
    pub client_version: &'a str,
    pub client_name: &'a str,
    pub labels: &'a [String],
    /// See [`routing_mode`].
    pub routing_mode: u8,
}

/// The member's answer. Fields added in 2.7 are `None`/empty when an older member omits them.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthResponse {
    /// See [`status`].
    pub status: u8,
    pub member_uuid: Option<Uuid>,
    pub serialization_version: i8,
    pub partition_count: i32,
    pub cluster_id: Option<Uuid>,
    pub failover_supported: bool,
    pub address: Option<Address>,
    pub server_version: String,
    pub member_list_version: Option<i32>,
    pub partition_list_version: Option<i32>,
    pub members: Vec<MemberInfo>,
    pub partitions: Vec<(Uuid, Vec<i32>)>,
}

pub fn encode_request(req: &AuthRequest<'_>) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |f| {
        put_uuid(f, Some(req.client_uuid));
        f.put_u8(SERIALIZATION_VERSION);
        f.put_u8(req.routing_mode);
        put_bool(f, false); // cpDirectToLeaderRouting
    });
    b.string(req.cluster_name)
        .null() // username
        .null() // password
        .string(req.client_type)
        .string(req.client_version)
        .string(req.client_name)
        .list_string(req.labels);
    b.build()
}

fn optional_i32(fixed: &[u8], off: usize, what: &'static str) -> Result<Option<i32>, CodecError> {
    if fixed.len() >= off + 4 {
        fixed_i32(fixed, off, what).map(Some)
    } else {
        Ok(None)
    }
}

pub fn decode_response(msg: &ClientMessage) -> Result<AuthResponse, CodecError> {
    let (fixed, mut c) = open(msg, RESPONSE_TYPE)?;
    let status = fixed_u8(fixed, RESPONSE_STATUS_OFFSET, "Authentication.status")?;
    let member_uuid = fixed_uuid(
        fixed,
        RESPONSE_MEMBER_UUID_OFFSET,
        "Authentication.memberUuid",
    )?;
    let serialization_version = fixed_i8(
        fixed,
        RESPONSE_SERIALIZATION_VERSION_OFFSET,
        "Authentication.serializationVersion",
    )?;
    let partition_count = fixed_i32(
        fixed,
        RESPONSE_PARTITION_COUNT_OFFSET,
        "Authentication.partitionCount",
    )?;
    let cluster_id = fixed_uuid(
        fixed,
        RESPONSE_CLUSTER_ID_OFFSET,
        "Authentication.clusterId",
    )?;
    let failover_supported = fixed_bool(
        fixed,
        RESPONSE_FAILOVER_OFFSET,
        "Authentication.failoverSupported",
    )?;
    let member_list_version = optional_i32(
        fixed,
        RESPONSE_MEMBER_LIST_VERSION_OFFSET,
        "Authentication.memberListVersion",
    )?;
    let partition_list_version = optional_i32(
        fixed,
        RESPONSE_PARTITION_LIST_VERSION_OFFSET,
        "Authentication.partitionListVersion",
    )?;

    let address = decode_nullable_address(&mut c)?;
    let server_version = c.string("Authentication.serverHazelcastVersion")?;

    let mut members = Vec::new();
    let mut partitions = Vec::new();
    // 2.7 fields, present only from newer members: tpcPorts?, tpcToken?, memberInfos,
    // partitions. keyValuePairs (2.8) and anything later is ignored.
    if c.has_more() {
        if !c.next_is_null() {
            c.list_i32("Authentication.tpcPorts")?;
        }
        if !c.next_is_null() {
            c.bytes("Authentication.tpcToken")?;
        }
        members = c.list("Authentication.memberInfos", decode_member_info)?;
        partitions = c.partition_table("Authentication.partitions")?;
    }

    Ok(AuthResponse {
        status,
        member_uuid,
        serialization_version,
        partition_count,
        cluster_id,
        failover_supported,
        address,
        server_version,
        member_list_version,
        partition_list_version,
        members,
        partitions,
    })
}

/// The member's answer in the 2.8 layout (empty keyValuePairs, no TPC). For tests and fakes.
pub fn encode_response(r: &AuthResponse) -> ClientMessage {
    let mut b = MessageBuilder::response(RESPONSE_TYPE, |f| {
        f.put_u8(r.status);
        put_uuid(f, r.member_uuid);
        f.put_i8(r.serialization_version);
        f.put_i32_le(r.partition_count);
        put_uuid(f, r.cluster_id);
        put_bool(f, r.failover_supported);
        f.put_i32_le(r.member_list_version.unwrap_or(-1));
        f.put_i32_le(r.partition_list_version.unwrap_or(-1));
    });
    match &r.address {
        Some(a) => encode_address(&mut b, a),
        None => {
            b.null();
        }
    }
    b.string(&r.server_version).null().null().begin();
    for m in &r.members {
        encode_member_info(&mut b, m);
    }
    b.end()
        .partition_table(&r.partitions)
        .map_string_string(&[]);
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::{bytes_of, hex, msg};

    const CLIENT: Uuid = Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff);
    const MEMBER: Uuid = Uuid::from_u128(0x1111_1111_2222_3333_4444_5555_5555_5555);
    const CLUSTER: Uuid = Uuid::from_u128(0xaaaa_aaaa_bbbb_cccc_dddd_eeee_eeee_eeee);

    const FIXED_PART: &str = "4400000000c0 01010000 0100000000000000 00 00 00
        3333222211111111 5555555555554444 01 0f010000 00 ccccbbbbaaaaaaaa eeeeeeeeeeeedddd 00 01000000 01000000";

    #[test]
    fn request_matches_the_documented_2_8_bytes() {
        let mut m = encode_request(&AuthRequest {
            cluster_name: "dev",
            client_uuid: CLIENT,
            client_type: "RST",
            client_version: "5.5.0",
            client_name: "rust-client",
            labels: &[],
            routing_mode: routing_mode::SMART,
        });
        m.set_correlation_id(1);
        let wire = bytes_of(&m);
        assert_eq!(wire.len(), 112);
        assert_eq!(
            wire,
            hex("2a00000000c0 00010000 0100000000000000 ffffffff 00 7766554433221100 ffeeddccbbaa9988 01 01 00
                | 090000000000 646576
                | 060000000004
                | 060000000004
                | 090000000000 525354
                | 0b0000000000 352e352e30
                | 110000000000 727573742d636c69656e74
                | 060000000010
                | 060000000028")
        );
    }

    fn full_response() -> AuthResponse {
        AuthResponse {
            status: status::AUTHENTICATED,
            member_uuid: Some(MEMBER),
            serialization_version: 1,
            partition_count: 271,
            cluster_id: Some(CLUSTER),
            failover_supported: false,
            address: Some(Address {
                host: "127.0.0.1".into(),
                port: 5701,
            }),
            server_version: "5.5.0".into(),
            member_list_version: Some(1),
            partition_list_version: Some(1),
            members: vec![MemberInfo {
                uuid: MEMBER,
                address: Address {
                    host: "127.0.0.1".into(),
                    port: 5701,
                },
                lite_member: false,
                version: (5, 5, 0),
                client_address: None,
            }],
            partitions: vec![(MEMBER, (0..271).collect())],
        }
    }

    #[test]
    fn the_documented_fixed_part_decodes_with_the_variable_part_appended() {
        let full = encode_response(&full_response());
        // Our encoder's initial frame is byte-identical to the documented one.
        let mut initial = ClientMessage::new(vec![full.frames[0].clone()]);
        initial.set_correlation_id(1);
        assert_eq!(bytes_of(&initial), hex(FIXED_PART));

        // Documented fixed part + the variable frames.
        let mut wire = hex(FIXED_PART);
        let rest = ClientMessage::new(full.frames[1..].to_vec());
        wire.extend(bytes_of(&rest));
        let m = msg(&wire.iter().map(|b| format!("{b:02x}")).collect::<String>());
        assert_eq!(decode_response(&m).unwrap(), full_response());
    }

    #[test]
    fn a_2_0_member_response_decodes_without_the_newer_fields() {
        let mut b = MessageBuilder::response(RESPONSE_TYPE, |f| {
            f.put_u8(status::AUTHENTICATED);
            put_uuid(f, Some(MEMBER));
            f.put_i8(1);
            f.put_i32_le(271);
            put_uuid(f, Some(CLUSTER));
            put_bool(f, false);
        });
        b.null().string("4.2");
        let r = decode_response(&b.build()).unwrap();
        assert_eq!(r.partition_count, 271);
        assert_eq!(r.member_list_version, None);
        assert_eq!(r.partition_list_version, None);
        assert!(r.members.is_empty() && r.partitions.is_empty());
        assert_eq!(r.server_version, "4.2");
        assert_eq!(r.address, None);
    }

    #[test]
    fn a_failed_authentication_decodes_its_status() {
        let failed = AuthResponse {
            status: status::CREDENTIALS_FAILED,
            member_uuid: None,
            serialization_version: -1,
            partition_count: -1,
            cluster_id: None,
            failover_supported: false,
            address: None,
            server_version: String::new(),
            member_list_version: Some(-1),
            partition_list_version: Some(-1),
            members: vec![],
            partitions: vec![],
        };
        assert_eq!(decode_response(&encode_response(&failed)).unwrap(), failed);
    }

    #[test]
    fn tpc_fields_when_present_are_skipped() {
        let r = full_response();
        let base = encode_response(&r);
        // Replace the two NULL frames (tpcPorts, tpcToken) after address (4 frames) + version.
        let mut frames = base.frames.clone();
        frames[6] = crate::proto::Frame::new(0, vec![1, 0, 0, 0]);
        frames[7] = crate::proto::Frame::new(0, vec![9, 9]);
        assert_eq!(decode_response(&ClientMessage::new(frames)).unwrap(), r);
    }
}
