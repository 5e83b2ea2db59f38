//! The client's configuration: what to connect to, how long to wait, what to bound. Plain data,
//! read once by `Client::start`.

use std::time::Duration;

use crate::backoff::BackoffConfig;
use crate::proto::ReaderLimits;

/// Everything the client needs. Start from [`Default`] and change what differs:
///
/// ```
/// use std::time::Duration;
/// use hazelcast_client::ClientConfig;
///
/// let config = ClientConfig {
///     cluster_name: "prod".into(),
///     addresses: vec!["10.0.0.1:5701".into(), "10.0.0.2:5701".into()],
///     invocation_timeout: Duration::from_secs(10),
///     ..ClientConfig::default()
/// };
/// assert_eq!(config.client_name, "hazelcast-client-rust");
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The cluster to join: members refuse a client whose cluster name differs from theirs.
    pub cluster_name: String,
    /// Member addresses as `host:port`, tried in order.
    pub addresses: Vec<String>,
    /// The name this client shows in the member's logs and Management Center.
    pub client_name: String,
    /// Bounds the TCP connect and the authentication round trip together.
    pub connect_timeout: Duration,
    /// Deadline for one operation including its retries. Short by default: a cache answer that
    /// takes seconds is worth less than going to the origin.
    pub invocation_timeout: Duration,
    /// How long a connection may stay silent before the client sends a ping on it.
    pub heartbeat_interval: Duration,
    /// How long a connection may go without hearing anything from its member before the
    /// client closes it as dead.
    pub heartbeat_timeout: Duration,
    /// Waits between attempts to reach the cluster while no member answers.
    pub backoff: BackoffConfig,
    /// What one connection may make the client hold in memory; see
    /// [`ReaderLimits::max_bytes_value_len`] for sizing them from the largest value.
    pub reader_limits: ReaderLimits,
    /// Backup-aware writes (on by default), as the official clients' "backup ack to client":
    /// a keyed write sent to its partition owner completes only once the owner's sync backups
    /// have acknowledged it to the client, so a write the caller saw succeed survives the loss
    /// of its owner. With it off, the owner collects the acks itself before it answers; the
    /// guarantee is the same, the acks just take one hop more. Applies only while the client
    /// holds a connection to every member (each backup member acks on its own connection).
    pub backup_acks: bool,
    /// How long a backup-aware write waits for its acks after the owner's answer before it
    /// completes anyway (Java's `hazelcast.client.operation.backup.timeout.millis`): the
    /// member applied the write, and an ack can be lost with a backup member's connection.
    /// Never past the `invocation_timeout` deadline; a member connection that closes ends the
    /// wait of every write at once (its acks cannot come any more).
    pub backup_ack_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            cluster_name: "dev".into(),
            addresses: vec!["127.0.0.1:5701".into()],
            client_name: "hazelcast-client-rust".into(),
            connect_timeout: Duration::from_secs(5),
            invocation_timeout: Duration::from_secs(3),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(60),
            backoff: BackoffConfig::default(),
            reader_limits: ReaderLimits::default(),
            backup_acks: true,
            backup_ack_timeout: Duration::from_secs(5),
        }
    }
}
