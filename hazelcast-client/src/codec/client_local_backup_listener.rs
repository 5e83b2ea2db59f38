//! `Client.LocalBackupListener` (§3.1, §8.4): subscribes a connection to the backup acks of
//! the client's backup-aware requests. Each backup member that applied a backup of such a
//! request sends a `Backup` event naming the request's correlation id, on its own connection
//! to the client. Owns the registration request/response and the event decoder.

use bytes::BufMut;

use super::RESPONSE_FIXED;
use super::{fixed_i64, fixed_uuid, open, put_uuid, CodecError, MessageBuilder, EVENT_FIXED};
use crate::proto::{flags, ClientMessage};
use uuid::Uuid;

/// hex: 0x000F00
pub const REQUEST_TYPE: i32 = 3840;
/// hex: 0x000F01
pub const RESPONSE_TYPE: i32 = 3841;
/// hex: 0x000F02
pub const EVENT_BACKUP: i32 = 3842;

const RESPONSE_REGISTRATION_OFFSET: usize = RESPONSE_FIXED;
const EVENT_SOURCE_CORRELATION_ID_OFFSET: usize = EVENT_FIXED;

/// The registration request: no parameters.
pub fn encode_request() -> ClientMessage {
    MessageBuilder::request(REQUEST_TYPE, |_| {}).build()
}

/// The registration id the member gave the listener.
pub fn decode_response(msg: &ClientMessage) -> Result<Uuid, CodecError> {
    let (fixed, _) = open(msg, RESPONSE_TYPE)?;
    fixed_uuid(fixed, RESPONSE_REGISTRATION_OFFSET, "registration id")?
        .ok_or(CodecError::UnexpectedNull("registration id"))
}

/// The member's answer. For tests and fakes.
pub fn encode_response(registration_id: Uuid) -> ClientMessage {
    MessageBuilder::response(RESPONSE_TYPE, |f| put_uuid(f, Some(registration_id))).build()
}

/// The correlation id of the request whose backup the event acknowledges.
pub fn decode_backup_event(msg: &ClientMessage) -> Result<i64, CodecError> {
    let (fixed, _) = open(msg, EVENT_BACKUP)?;
    fixed_i64(
        fixed,
        EVENT_SOURCE_CORRELATION_ID_OFFSET,
        "Backup.sourceInvocationCorrelationId",
    )
}

/// A backup event as a member sends it (`BACKUP_EVENT` on the initial frame, no `IS_EVENT`).
/// For tests and fakes.
pub fn encode_backup_event(source_correlation_id: i64) -> ClientMessage {
    let mut m =
        MessageBuilder::event(EVENT_BACKUP, |f| f.put_i64_le(source_correlation_id)).build();
    if let Some(f) = m.frames.first_mut() {
        f.flags = (f.flags & !flags::IS_EVENT) | flags::BACKUP_EVENT;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::{bytes_of, hex, msg};

    #[test]
    fn request_matches_the_protocol_layout() {
        let mut m = encode_request();
        m.set_correlation_id(3);
        // One frame (IS_FINAL | UNFRAGMENTED), type 0x000F00, correlation id 3, partition -1.
        assert_eq!(
            bytes_of(&m),
            hex("1600000000e0 000f0000 0300000000000000 ffffffff")
        );
    }

    #[test]
    fn registration_answer_decodes_its_uuid() {
        // Type 0x000F01, correlation id 3, backup acks 0, then the UUID fixed field.
        let answer =
            msg("2400000000e0 010f0000 0300000000000000 00 | 00 7766554433221100 ffeeddccbbaa9988");
        assert_eq!(
            decode_response(&answer).unwrap(),
            Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff)
        );
        let id = Uuid::new_v4();
        assert_eq!(decode_response(&encode_response(id)).unwrap(), id);
        assert!(decode_response(&encode_request()).is_err());
    }

    #[test]
    fn backup_event_carries_the_source_correlation_id() {
        // A backup event: flags 0xE080 (UNFRAGMENTED | IS_FINAL | BACKUP_EVENT), type 0x000F02,
        // the listener's correlation id 3, partition -1, then the acknowledged request's id.
        let wire = "1e00000080e0 020f0000 0300000000000000 ffffffff 2a00000000000000";
        let event = msg(wire);
        assert!(event.is_event());
        assert_eq!(decode_backup_event(&event).unwrap(), 42);
        let mut ours = encode_backup_event(42);
        ours.set_correlation_id(3);
        assert_eq!(bytes_of(&ours), hex(wire));
        let short = msg("1600000080e0 020f0000 0300000000000000 ffffffff");
        assert!(decode_backup_event(&short).is_err());
    }
}
