//! The error response (§3.5, message type 0): a List_ErrorHolder, the thrown exception first
//! and then its causes. Owns decoding it and the list of retryable error codes (§7.3); what
//! the client does with an error lives in the invocation layer.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use bytes::{BufMut, BytesMut};

use super::{fixed_i32, open, CodecError, FrameCursor, MessageBuilder};
use crate::proto::ClientMessage;

/// hex: 0x000000
pub const ERROR_MESSAGE_TYPE: i32 = 0;

const ERROR_CODE_OFFSET: usize = 0;

/// Error codes of §3.5 that the client reacts to by name.
pub mod code {
    pub const UNDEFINED: i32 = 0;
    pub const AUTHENTICATION: i32 = 3;
    pub const CALLER_NOT_MEMBER: i32 = 8;
    pub const HAZELCAST_INSTANCE_NOT_ACTIVE: i32 = 19;
    pub const HAZELCAST_OVERLOAD: i32 = 20;
    pub const ILLEGAL_STATE: i32 = 27;
    pub const MEMBER_LEFT: i32 = 33;
    pub const PARTITION_MIGRATING: i32 = 39;
    pub const RETRYABLE_HAZELCAST: i32 = 46;
    pub const RETRYABLE_IO: i32 = 47;
    pub const TARGET_DISCONNECTED: i32 = 52;
    pub const TARGET_NOT_MEMBER: i32 = 53;
    pub const WRONG_TARGET: i32 = 62;
    pub const MAX_MESSAGE_SIZE_EXCEEDED: i32 = 69;
    pub const TARGET_NOT_REPLICA: i32 = 82;
    pub const CANNOT_REPLICATE: i32 = 90;
}

/// One exception of the chain. Stack traces are parsed (to find the END) and dropped.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorHolder {
    pub error_code: i32,
    pub class_name: String,
    pub message: Option<String>,
}

/// Server errors after which a request may be retried (§7.3): the "retryable" family plus
/// HAZELCAST_INSTANCE_NOT_ACTIVE (19). TARGET_DISCONNECTED (52) depends on the request and
/// is not included; TARGET_NOT_MEMBER (53) should not be retried for member-targeted calls.
pub fn is_retryable_code(code: i32) -> bool {
    matches!(code, 8 | 19 | 33 | 39 | 46 | 47 | 53 | 62 | 82 | 90)
}

fn decode_error_holder(c: &mut FrameCursor<'_>) -> Result<ErrorHolder, CodecError> {
    c.begin("ErrorHolder")?;
    let fixed = &c.value("ErrorHolder fixed fields")?.content;
    let error_code = fixed_i32(fixed, ERROR_CODE_OFFSET, "ErrorHolder.errorCode")?;
    let class_name = c.string("ErrorHolder.className")?;
    let message = c.nullable_string("ErrorHolder.message")?;
    // stackTraceElements: BEGIN … END; each element is itself BEGIN … END.
    c.begin("ErrorHolder.stackTraceElements")?;
    c.skip_to_end("ErrorHolder.stackTraceElements")?;
    c.skip_to_end("ErrorHolder")?;
    Ok(ErrorHolder {
        error_code,
        class_name,
        message,
    })
}

/// Decodes an error response into its exception chain (outermost first).
pub fn decode_error(msg: &ClientMessage) -> Result<Vec<ErrorHolder>, CodecError> {
    let (_, mut c) = open(msg, ERROR_MESSAGE_TYPE)?;
    c.list("error holders", decode_error_holder)
}

/// Builds an error response as a member would (empty stack traces). For tests and fakes.
pub fn encode_error(errors: &[ErrorHolder]) -> ClientMessage {
    let mut b = MessageBuilder::response(ERROR_MESSAGE_TYPE, |_| {});
    b.begin();
    for e in errors {
        let mut fixed = BytesMut::with_capacity(4);
        fixed.put_i32_le(e.error_code);
        b.begin()
            .bytes(fixed.freeze())
            .string(&e.class_name)
            .nullable_string(e.message.as_deref())
            .begin()
            .end()
            .end();
    }
    b.end();
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::msg;

    const ERROR: &str = r#"1300000000c0 00000000 0300000000000000 00
        | 060000000010
        | 060000000010
        | 0a0000000000 1b000000
        | 250000000000 "java.lang.IllegalStateException"
        | 0a0000000000 626f6f6d
        | 060000000010
        | 060000000010 | 0a0000000000 0a000000 | 090000000000 436c73 | 070000000000 6d | 060000000004 | 060000000008
        | 060000000008
        | 060000000008
        | 060000000028"#;

    #[test]
    fn the_documented_error_response_decodes_to_one_holder() {
        let m = msg(ERROR);
        assert_eq!(m.correlation_id(), 3);
        assert_eq!(
            decode_error(&m).unwrap(),
            vec![ErrorHolder {
                error_code: code::ILLEGAL_STATE,
                class_name: "java.lang.IllegalStateException".into(),
                message: Some("boom".into()),
            }]
        );
    }

    #[test]
    fn an_error_chain_round_trips() {
        let chain = vec![
            ErrorHolder {
                error_code: 62,
                class_name: "WrongTargetException".into(),
                message: None,
            },
            ErrorHolder {
                error_code: 0,
                class_name: "Cause".into(),
                message: Some("why".into()),
            },
        ];
        assert_eq!(decode_error(&encode_error(&chain)).unwrap(), chain);
    }

    #[test]
    fn retryable_codes_follow_the_retry_rules() {
        for c in [8, 19, 33, 39, 46, 47, 53, 62, 82, 90] {
            assert!(is_retryable_code(c), "{c}");
        }
        for c in [0, 3, 22, 27, 52, 54, 69] {
            assert!(!is_retryable_code(c), "{c}");
        }
    }

    #[test]
    fn a_non_error_message_is_refused() {
        let m = msg("1700000000e0 012a0100 0600000000000000 00 03000000");
        assert!(matches!(
            decode_error(&m),
            Err(CodecError::UnexpectedMessageType {
                expected: 0,
                got: 0x012a01
            })
        ));
    }
}
