//! A scripted stand-in for a Hazelcast member on a loopback socket, for the unit tests of the
//! connection and the client: it accepts connections on 127.0.0.1, answers `CP2` +
//! authentication like a member would, and then hands each session to the test's script, which
//! reads requests and writes whatever bytes it likes (good answers, events, or garbage).

use std::future::Future;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::codec::client_authentication::{self, AuthResponse};
use super::codec::custom::Address;
use super::proto::{ClientMessage, MessageReader, ReaderLimits};
use uuid::Uuid;

pub(crate) const MEMBER: Uuid = Uuid::from_u128(0x1111_1111_2222_3333_4444_5555_5555_5555);
const CLUSTER: Uuid = Uuid::from_u128(0xaaaa_aaaa_bbbb_cccc_dddd_eeee_eeee_eeee);

/// One authenticated session with the client.
pub(crate) struct Session {
    stream: TcpStream,
    reader: MessageReader,
    buf: BytesMut,
    /// The member uuid this session authenticated as.
    pub member: Uuid,
    /// The port the fake member listens on.
    pub port: u16,
}

impl Session {
    /// The next whole message from the client, or `None` when it closed.
    pub async fn read(&mut self) -> Option<ClientMessage> {
        loop {
            if let Ok(Some(m)) = self.reader.read(&mut self.buf) {
                return Some(m);
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Sends `msg` as the answer to (or event of) correlation id `id`.
    pub async fn send(&mut self, mut msg: ClientMessage, id: i64) {
        msg.set_correlation_id(id);
        let mut out = BytesMut::new();
        msg.write_to(&mut out);
        self.send_raw(&out).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
        let _ = self.stream.flush().await;
    }

    /// Waits until the client closes the connection (or `limit` passes).
    pub async fn wait_closed_by_client(&mut self, limit: std::time::Duration) -> bool {
        let mut scratch = [0u8; 1024];
        tokio::time::timeout(limit, async {
            loop {
                match self.stream.read(&mut scratch).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }
}

/// Listens on 127.0.0.1 and runs `script` on every authenticated session; returns the address.
pub(crate) async fn start<F, Fut>(script: F) -> String
where
    F: Fn(Session) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    start_as(|| (MEMBER, CLUSTER), script).await
}

/// [`start`], with the member uuid and cluster id each new session authenticates with taken
/// from `identity` (called once per connection): a whole-cluster restart is a new pair.
pub(crate) async fn start_as<I, F, Fut>(identity: I, script: F) -> String
where
    I: Fn() -> (Uuid, Uuid) + Send + Sync + 'static,
    F: Fn(Session) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let address = addr.to_string();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (member, cluster) = identity();
            if let Some(session) = authenticate(stream, addr.port(), member, cluster).await {
                tokio::spawn(script(session));
            }
        }
    });
    address
}

async fn authenticate(
    mut stream: TcpStream,
    port: u16,
    member: Uuid,
    cluster: Uuid,
) -> Option<Session> {
    let mut buf = BytesMut::new();
    while buf.len() < 3 {
        if stream.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
    }
    assert_eq!(&buf[..3], b"CP2");
    let _ = buf.split_to(3);
    let mut reader = MessageReader::new(ReaderLimits::default());
    let request = loop {
        if let Some(m) = reader.read(&mut buf).ok()? {
            break m;
        }
        if stream.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
    };
    assert_eq!(request.message_type(), client_authentication::REQUEST_TYPE);
    let mut answer = client_authentication::encode_response(&AuthResponse {
        status: 0,
        member_uuid: Some(member),
        serialization_version: 1,
        partition_count: 271,
        cluster_id: Some(cluster),
        failover_supported: false,
        address: Some(Address {
            host: "127.0.0.1".into(),
            port: i32::from(port),
        }),
        server_version: "5.7.0".into(),
        member_list_version: None,
        partition_list_version: None,
        members: vec![],
        partitions: vec![],
    });
    answer.set_correlation_id(request.correlation_id());
    let mut out = BytesMut::new();
    answer.write_to(&mut out);
    stream.write_all(&out).await.ok()?;
    Some(Session {
        stream,
        reader,
        buf,
        member,
        port,
    })
}
