//! Custom (composite) types of §2.7 used by the messages we speak: Address, MemberVersion,
//! EndpointQualifier and MemberInfo. Each is BEGIN, one frame of fixed fields, the variable
//! fields, END; decoders skip unknown trailing fields up to the matching END.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use bytes::{BufMut, BytesMut};

use super::{
    fixed_bool, fixed_i32, fixed_u8, fixed_uuid, put_bool, put_uuid, CodecError, FrameCursor,
    MessageBuilder, UUID_SIZE,
};
use uuid::Uuid;

/// A member's network address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    pub host: String,
    pub port: i32,
}

/// One cluster member as announced in MembersView and the auth response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    pub uuid: Uuid,
    pub address: Address,
    pub lite_member: bool,
    /// Member version (major, minor, patch).
    pub version: (u8, u8, u8),
    /// `addressMap[EndpointQualifier{CLIENT, null}]` when the member uses advanced networking.
    pub client_address: Option<Address>,
}

impl MemberInfo {
    /// The address a client should dial (§2.7): the CLIENT endpoint if announced, else the
    /// member address (which the member already rewrites for clients).
    pub fn client_facing_address(&self) -> &Address {
        self.client_address.as_ref().unwrap_or(&self.address)
    }
}

/// EndpointQualifier type of client endpoints.
pub const ENDPOINT_CLIENT: i32 = 1;
/// EndpointQualifier type of member-to-member endpoints.
pub const ENDPOINT_MEMBER: i32 = 0;

const ADDRESS_PORT_OFFSET: usize = 0;
const MEMBER_UUID_OFFSET: usize = 0;
const MEMBER_LITE_OFFSET: usize = MEMBER_UUID_OFFSET + UUID_SIZE;
const ENDPOINT_TYPE_OFFSET: usize = 0;

pub fn decode_address(c: &mut FrameCursor<'_>) -> Result<Address, CodecError> {
    c.begin("Address")?;
    let fixed = &c.value("Address fixed fields")?.content;
    let port = fixed_i32(fixed, ADDRESS_PORT_OFFSET, "Address.port")?;
    let host = c.string("Address.host")?;
    c.skip_to_end("Address")?;
    Ok(Address { host, port })
}

pub fn decode_nullable_address(c: &mut FrameCursor<'_>) -> Result<Option<Address>, CodecError> {
    if c.next_is_null() {
        return Ok(None);
    }
    decode_address(c).map(Some)
}

pub fn encode_address(b: &mut MessageBuilder, a: &Address) {
    let mut fixed = BytesMut::with_capacity(4);
    fixed.put_i32_le(a.port);
    b.begin().bytes(fixed.freeze()).string(&a.host).end();
}

fn decode_member_version(c: &mut FrameCursor<'_>) -> Result<(u8, u8, u8), CodecError> {
    c.begin("MemberVersion")?;
    let fixed = &c.value("MemberVersion fixed fields")?.content;
    let v = (
        fixed_u8(fixed, 0, "MemberVersion.major")?,
        fixed_u8(fixed, 1, "MemberVersion.minor")?,
        fixed_u8(fixed, 2, "MemberVersion.patch")?,
    );
    c.skip_to_end("MemberVersion")?;
    Ok(v)
}

/// EndpointQualifier as (type, identifier).
fn decode_endpoint_qualifier(c: &mut FrameCursor<'_>) -> Result<(i32, Option<String>), CodecError> {
    c.begin("EndpointQualifier")?;
    let fixed = &c.value("EndpointQualifier fixed fields")?.content;
    let kind = fixed_i32(fixed, ENDPOINT_TYPE_OFFSET, "EndpointQualifier.type")?;
    let identifier = c.nullable_string("EndpointQualifier.identifier")?;
    c.skip_to_end("EndpointQualifier")?;
    Ok((kind, identifier))
}

pub fn decode_member_info(c: &mut FrameCursor<'_>) -> Result<MemberInfo, CodecError> {
    c.begin("MemberInfo")?;
    let fixed = &c.value("MemberInfo fixed fields")?.content;
    let uuid = fixed_uuid(fixed, MEMBER_UUID_OFFSET, "MemberInfo.uuid")?
        .ok_or(CodecError::UnexpectedNull("MemberInfo.uuid"))?;
    let lite_member = fixed_bool(fixed, MEMBER_LITE_OFFSET, "MemberInfo.liteMember")?;
    let address = decode_address(c)?;
    // Attributes are not used by this client; decode to validate and drop.
    c.entry_list(
        "MemberInfo.attributes",
        |c| c.string("attribute key"),
        |c| c.string("attribute value"),
    )?;
    let version = decode_member_version(c)?;
    let mut client_address = None;
    // addressMap was added in 2.0.1: present only if END does not follow.
    if !c.at_end() {
        let map = c.entry_list(
            "MemberInfo.addressMap",
            decode_endpoint_qualifier,
            decode_address,
        )?;
        client_address = map
            .into_iter()
            .find(|((kind, id), _)| *kind == ENDPOINT_CLIENT && id.is_none())
            .map(|(_, a)| a);
    }
    c.skip_to_end("MemberInfo")?;
    Ok(MemberInfo {
        uuid,
        address,
        lite_member,
        version,
        client_address,
    })
}

/// Encodes a MemberInfo as a member would (empty attributes; the address map carries the
/// CLIENT endpoint when `client_address` is set). For tests and fakes.
pub fn encode_member_info(b: &mut MessageBuilder, m: &MemberInfo) {
    let mut fixed = BytesMut::with_capacity(UUID_SIZE + 1);
    put_uuid(&mut fixed, Some(m.uuid));
    put_bool(&mut fixed, m.lite_member);
    b.begin().bytes(fixed.freeze());
    encode_address(b, &m.address);
    b.map_string_string(&[]);
    b.begin()
        .bytes(vec![m.version.0, m.version.1, m.version.2])
        .end();
    b.begin();
    if let Some(a) = &m.client_address {
        let mut q = BytesMut::with_capacity(4);
        q.put_i32_le(ENDPOINT_CLIENT);
        b.begin().bytes(q.freeze()).null().end();
        encode_address(b, a);
    }
    b.end();
    b.end();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(client: Option<Address>) -> MemberInfo {
        MemberInfo {
            uuid: Uuid::from_u128(0x1111_1111_2222_3333_4444_5555_5555_5555),
            address: Address {
                host: "127.0.0.1".into(),
                port: 5701,
            },
            lite_member: false,
            version: (5, 5, 0),
            client_address: client,
        }
    }

    #[test]
    fn member_info_round_trips_with_and_without_a_client_endpoint() {
        for m in [
            member(None),
            member(Some(Address {
                host: "10.0.0.1".into(),
                port: 5702,
            })),
        ] {
            let mut b = MessageBuilder::event(1, |_| {});
            encode_member_info(&mut b, &m);
            let msg = b.build();
            let mut c = FrameCursor::new(&msg.frames[1..]);
            assert_eq!(decode_member_info(&mut c).unwrap(), m);
            assert!(!c.has_more());
        }
        assert_eq!(member(None).client_facing_address().port, 5701);
    }

    #[test]
    fn a_member_info_without_the_address_map_decodes() {
        // The 2.0 layout: no addressMap before END.
        let m = member(None);
        let mut b = MessageBuilder::event(1, |_| {});
        let mut fixed = BytesMut::new();
        put_uuid(&mut fixed, Some(m.uuid));
        put_bool(&mut fixed, true);
        b.begin().bytes(fixed.freeze());
        encode_address(&mut b, &m.address);
        b.map_string_string(&[("k".into(), "v".into())]);
        b.begin().bytes(vec![5, 5, 0]).end();
        b.end();
        let msg = b.build();
        let got = decode_member_info(&mut FrameCursor::new(&msg.frames[1..])).unwrap();
        assert_eq!(got.address, m.address);
        assert!(got.lite_member);
        assert_eq!(got.client_address, None);
    }

    #[test]
    fn unknown_trailing_fields_of_an_address_are_skipped() {
        let mut b = MessageBuilder::event(1, |_| {});
        b.begin()
            .bytes(vec![0x45, 0x16, 0, 0, 9, 9])
            .string("h")
            .string("future field")
            .begin()
            .end()
            .end()
            .string("next");
        let msg = b.build();
        let mut c = FrameCursor::new(&msg.frames[1..]);
        assert_eq!(
            decode_address(&mut c).unwrap(),
            Address {
                host: "h".into(),
                port: 5701
            }
        );
        assert_eq!(c.string("next").unwrap(), "next");
    }
}
