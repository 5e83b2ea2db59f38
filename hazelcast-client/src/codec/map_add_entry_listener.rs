//! `Map.AddEntryListener` (§3.3, §8.1): subscribes to entry events of a whole map. Owns the
//! registration request/response and the entry event decoder.

use bytes::BufMut;

use super::{
    fixed_i32, fixed_uuid, open, put_bool, put_uuid, CodecError, MessageBuilder, EVENT_FIXED,
    RESPONSE_FIXED, UUID_SIZE,
};
use crate::proto::ClientMessage;
use crate::serialization::Data;
use uuid::Uuid;

/// hex: 0x011900
pub const REQUEST_TYPE: i32 = 71936;
/// hex: 0x011901
pub const RESPONSE_TYPE: i32 = 71937;
/// hex: 0x011902
pub const EVENT_ENTRY: i32 = 71938;

/// EntryEventType bits for `listener_flags` and [`EntryEvent::event_type`] (§8.1).
pub mod event_type {
    pub const ADDED: i32 = 1;
    pub const REMOVED: i32 = 2;
    pub const UPDATED: i32 = 4;
    pub const EVICTED: i32 = 8;
    pub const EXPIRED: i32 = 16;
    pub const EVICT_ALL: i32 = 32;
    pub const CLEAR_ALL: i32 = 64;
    pub const MERGED: i32 = 128;
    pub const INVALIDATION: i32 = 256;
    pub const LOADED: i32 = 512;
}

const RESPONSE_REGISTRATION_OFFSET: usize = RESPONSE_FIXED;
const EVENT_TYPE_OFFSET: usize = EVENT_FIXED;
const EVENT_UUID_OFFSET: usize = EVENT_TYPE_OFFSET + 4;
const EVENT_AFFECTED_OFFSET: usize = EVENT_UUID_OFFSET + UUID_SIZE;

/// One entry event.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryEvent {
    pub event_type: i32,
    /// The member that produced the event.
    pub member: Option<Uuid>,
    /// Number of entries affected (EVICT_ALL / CLEAR_ALL).
    pub affected: i32,
    pub key: Option<Data>,
    pub value: Option<Data>,
    pub old_value: Option<Data>,
    pub merging_value: Option<Data>,
}

pub fn encode_request(
    name: &str,
    include_value: bool,
    listener_flags: i32,
    local_only: bool,
) -> ClientMessage {
    let mut b = MessageBuilder::request(REQUEST_TYPE, |f| {
        put_bool(f, include_value);
        f.put_i32_le(listener_flags);
        put_bool(f, local_only);
    });
    b.string(name);
    b.build()
}

/// The registration id.
pub fn decode_response(msg: &ClientMessage) -> Result<Uuid, CodecError> {
    let (fixed, _) = open(msg, RESPONSE_TYPE)?;
    fixed_uuid(fixed, RESPONSE_REGISTRATION_OFFSET, "registration id")?
        .ok_or(CodecError::UnexpectedNull("registration id"))
}

/// The member's answer. For tests and fakes.
pub fn encode_response(registration_id: Uuid) -> ClientMessage {
    MessageBuilder::response(RESPONSE_TYPE, |f| put_uuid(f, Some(registration_id))).build()
}

pub fn decode_entry_event(msg: &ClientMessage) -> Result<EntryEvent, CodecError> {
    let (fixed, mut c) = open(msg, EVENT_ENTRY)?;
    Ok(EntryEvent {
        event_type: fixed_i32(fixed, EVENT_TYPE_OFFSET, "EntryEvent.eventType")?,
        member: fixed_uuid(fixed, EVENT_UUID_OFFSET, "EntryEvent.uuid")?,
        affected: fixed_i32(
            fixed,
            EVENT_AFFECTED_OFFSET,
            "EntryEvent.numberOfAffectedEntries",
        )?,
        key: c.nullable_data("EntryEvent.key")?,
        value: c.nullable_data("EntryEvent.value")?,
        old_value: c.nullable_data("EntryEvent.oldValue")?,
        merging_value: c.nullable_data("EntryEvent.mergingValue")?,
    })
}

/// An entry event as a member would send it. For tests and fakes.
pub fn encode_entry_event(e: &EntryEvent) -> ClientMessage {
    let mut b = MessageBuilder::event(EVENT_ENTRY, |f| {
        f.put_i32_le(e.event_type);
        put_uuid(f, e.member);
        f.put_i32_le(e.affected);
    });
    b.nullable_data(e.key.as_ref())
        .nullable_data(e.value.as_ref())
        .nullable_data(e.old_value.as_ref())
        .nullable_data(e.merging_value.as_ref());
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::{bytes_of, hex, msg};

    const EVENT: &str = "2f00000000c2 02190100 0a00000000000000 ffffffff 01000000 00 3333222211111111 5555555555554444 01000000
        | 170000000000 00000000fffffff5000000056b65792d31
        | 190000000000 00000000fffffff50000000776616c75652d31
        | 060000000004 | 060000000024";

    fn added() -> EntryEvent {
        EntryEvent {
            event_type: event_type::ADDED,
            member: Some(Uuid::from_u128(0x1111_1111_2222_3333_4444_5555_5555_5555)),
            affected: 1,
            key: Some(Data::from_string("key-1")),
            value: Some(Data::from_string("value-1")),
            old_value: None,
            merging_value: None,
        }
    }

    #[test]
    fn the_documented_entry_event_decodes() {
        let m = msg(EVENT);
        assert!(m.is_event());
        assert_eq!(m.correlation_id(), 10);
        assert_eq!(decode_entry_event(&m).unwrap(), added());
        let mut ours = encode_entry_event(&added());
        ours.set_correlation_id(10);
        assert_eq!(bytes_of(&ours), hex(EVENT));
    }

    #[test]
    fn request_packs_the_three_fixed_fields() {
        assert_eq!(
            bytes_of(&encode_request("my-map", true, 0x7f, false)),
            hex(
                "1c00000000c0 00190100 0000000000000000 ffffffff 01 7f000000 00
                | 0c0000000020 6d792d6d6170"
            )
        );
    }

    #[test]
    fn registration_id_decodes_and_null_is_refused() {
        let id = Uuid::new_v4();
        assert_eq!(decode_response(&encode_response(id)).unwrap(), id);
        let null = MessageBuilder::response(RESPONSE_TYPE, |f| put_uuid(f, None)).build();
        assert!(matches!(
            decode_response(&null),
            Err(CodecError::UnexpectedNull(_))
        ));
    }
}
