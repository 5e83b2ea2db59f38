//! The errors the Hazelcast client reports to its users: connection trouble, timeouts, and the
//! member's own exceptions turned into a typed error with the server's message.

use super::codec::error::ErrorHolder;
use super::codec::CodecError;
use super::proto::ProtocolError;
use super::serialization::SerializationError;

/// Every way a Hazelcast operation can fail. `is_retryable` separates what the invocation layer
/// may send again from what it must report at once (it already retried those within the
/// invocation timeout before reporting them).
///
/// ```
/// use hazelcast_client::HazelcastError;
///
/// let err = HazelcastError::Server {
///     code: 36,
///     class_name: "java.lang.IllegalArgumentException".into(),
///     message: "bad argument".into(),
/// };
/// assert!(!err.is_retryable(true));
/// assert_eq!(
///     err.to_string(),
///     "Hazelcast member error 36 java.lang.IllegalArgumentException: bad argument"
/// );
/// // No connection: worth trying again later (an application's fallback, e.g. a cache's origin).
/// assert!(HazelcastError::NotConnected.is_retryable(false));
/// ```
#[derive(Debug, thiserror::Error, Clone)]
pub enum HazelcastError {
    /// No authenticated connection to the cluster right now (still connecting, or all lost).
    #[error("not connected to the Hazelcast cluster")]
    NotConnected,
    /// The connection the request was sent on closed before the answer came.
    #[error("connection to {member} closed: {reason}")]
    ConnectionClosed {
        /// `host:port` of the member.
        member: String,
        /// Why the connection closed.
        reason: String,
    },
    /// No answer within the invocation timeout.
    #[error("Hazelcast operation timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The member answered with an exception.
    #[error("Hazelcast member error {code} {class_name}: {message}")]
    Server {
        /// Hazelcast's error code (protocol sheet §7.1), e.g. 36 for `IllegalArgumentException`.
        code: i32,
        /// The Java exception's class name.
        class_name: String,
        /// The exception's message.
        message: String,
    },
    /// Authentication was refused (wrong cluster name, serialization mismatch, not allowed).
    #[error("authentication refused by {member}: {reason}")]
    AuthenticationFailed {
        /// `host:port` of the member.
        member: String,
        /// What the member said, or why the answer could not be read.
        reason: String,
    },
    /// The bytes from the member did not follow the protocol; the connection is closed.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A value could not be (de)serialized.
    #[error("serialization error: {0}")]
    Serialization(String),
    /// The client was shut down.
    #[error("the Hazelcast client is shut down")]
    Shutdown,
}

impl HazelcastError {
    /// Whether the invocation layer may send the request again (protocol sheet §7.3).
    /// `idempotent` is the message definition's `retryable` flag: a request that may have reached
    /// the member before its connection died is resent only when resending is harmless.
    pub fn is_retryable(&self, idempotent: bool) -> bool {
        match self {
            HazelcastError::NotConnected => true,
            HazelcastError::ConnectionClosed { .. } => idempotent,
            HazelcastError::Server { code, .. } => {
                super::codec::error::is_retryable_code(*code)
                    || (*code == TARGET_DISCONNECTED && idempotent)
            }
            _ => false,
        }
    }

    pub(crate) fn from_holders(holders: &[ErrorHolder]) -> HazelcastError {
        match holders.first() {
            Some(h) => HazelcastError::Server {
                code: h.error_code,
                class_name: h.class_name.clone(),
                message: h.message.clone().unwrap_or_default(),
            },
            None => HazelcastError::Protocol("error response without an error holder".into()),
        }
    }
}

/// TARGET_DISCONNECTED: the member lost the connection the operation depended on.
const TARGET_DISCONNECTED: i32 = 52;

impl From<CodecError> for HazelcastError {
    fn from(e: CodecError) -> Self {
        HazelcastError::Protocol(e.to_string())
    }
}

impl From<ProtocolError> for HazelcastError {
    fn from(e: ProtocolError) -> Self {
        HazelcastError::Protocol(e.to_string())
    }
}

impl From<SerializationError> for HazelcastError {
    fn from(e: SerializationError) -> Self {
        HazelcastError::Serialization(e.to_string())
    }
}
