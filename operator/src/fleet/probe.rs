//! Asking a DNS pod what it serves: the zone's SOA over DNS (UDP, then TCP when the answer
//! is truncated), and the digests its `/zones` shows. (The versions a pod refused reach the
//! checker in its re-sync replies.)

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use hickory_proto::{
    ProtoError,
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Name, RData, RecordType},
    serialize::binary::DecodeError,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
    time::timeout,
};

/// Why a pod could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// A socket error.
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    /// An answer that is not a usable SOA answer.
    #[error("bad answer: {0}")]
    BadAnswer(String),
    /// An answer that is not a DNS message.
    #[error("bad answer: {0}")]
    Decode(#[from] DecodeError),
    /// The query could not be encoded (counted and shown with the bad answers).
    #[error("bad answer: {0}")]
    Encode(#[source] ProtoError),
    /// An admin endpoint failed (the message starts with its path, e.g. `/zones: `).
    #[error("{path}: {source}")]
    Admin {
        /// The endpoint's path.
        path: &'static str,
        /// What failed.
        #[source]
        source: reqwest::Error,
    },
}

impl ProbeError {
    /// The error's kind, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Io(_) => "network",
            Self::BadAnswer(_) | Self::Decode(_) | Self::Encode(_) => "bad_answer",
            Self::Admin { .. } => "admin",
        }
    }
}

/// What the SOA query found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoaAnswer {
    /// The zone's serial.
    Serial(u32),
    /// REFUSED: the pod does not serve the zone.
    Refused,
}

/// Asks `server` for the SOA of `zone`: over UDP (twice if the first datagram gets no
/// answer), over TCP if both are lost or the answer is truncated.
pub async fn soa(server: SocketAddr, zone: &Name, wait: Duration) -> Result<SoaAnswer, ProbeError> {
    let id: u16 = rand_id();
    let mut query = Message::new(id, MessageType::Query, OpCode::Query);
    query.add_query(Query::query(zone.clone(), RecordType::SOA));
    let bytes = query.to_vec().map_err(ProbeError::Encode)?;
    // A datagram can be lost: one more try over UDP, then TCP, all within `wait`.
    let slice = wait / 3;
    let response = match udp_exchange(server, &bytes, slice).await {
        Ok(response) => response,
        Err(_) => match udp_exchange(server, &bytes, slice).await {
            Ok(response) => response,
            Err(_) => tcp_exchange(server, &bytes, slice).await?,
        },
    };
    let response = parse(&response, id)?;
    let response = if response.metadata.truncation {
        parse(&tcp_exchange(server, &bytes, wait).await?, id)?
    } else {
        response
    };
    match response.metadata.response_code {
        ResponseCode::Refused => Ok(SoaAnswer::Refused),
        ResponseCode::NoError => response
            .answers
            .iter()
            .find_map(|r| match &r.data {
                RData::SOA(soa) if r.name.eq_ignore_root(zone) => Some(soa.serial),
                _ => None,
            })
            .map(SoaAnswer::Serial)
            .ok_or_else(|| ProbeError::BadAnswer("no SOA in the answer".into())),
        other => Err(ProbeError::BadAnswer(format!("rcode {other}"))),
    }
}

fn rand_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos().into()),
    );
    (hasher.finish() & 0xffff) as u16
}

fn parse(bytes: &[u8], id: u16) -> Result<Message, ProbeError> {
    let message = Message::from_vec(bytes)?;
    if message.metadata.id != id || message.metadata.message_type != MessageType::Response {
        return Err(ProbeError::BadAnswer(
            "not the response to the query".into(),
        ));
    }
    Ok(message)
}

async fn udp_exchange(
    server: SocketAddr,
    query: &[u8],
    wait: Duration,
) -> Result<Vec<u8>, ProbeError> {
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(server).await?;
    socket.send(query).await?;
    let mut buffer = vec![0; 4096];
    let len = timeout(wait, socket.recv(&mut buffer))
        .await
        .map_err(|_| ProbeError::Timeout)??;
    buffer.truncate(len);
    Ok(buffer)
}

async fn tcp_exchange(
    server: SocketAddr,
    query: &[u8],
    wait: Duration,
) -> Result<Vec<u8>, ProbeError> {
    timeout(wait, async {
        let mut stream = TcpStream::connect(server).await?;
        let len = u16::try_from(query.len())
            .map_err(|_| ProbeError::BadAnswer("query too long".into()))?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(query);
        stream.write_all(&framed).await?;
        let len = stream.read_u16().await?;
        let mut response = vec![0; usize::from(len)];
        stream.read_exact(&mut response).await?;
        Ok(response)
    })
    .await
    .map_err(|_| ProbeError::Timeout)?
}

/// The versions a pod's `/zones` lists: lowercased apex → (serial, digest).
pub type ServedVersions = HashMap<String, (u32, String)>;

/// Reads a pod's `/zones`.
pub async fn served_versions(
    http: &reqwest::Client,
    admin: SocketAddr,
    wait: Duration,
) -> Result<ServedVersions, ProbeError> {
    let zones: Vec<zonefleet_nats::ServedVersion> = admin_get(http, admin, "/zones", wait).await?;
    Ok(zones
        .into_iter()
        .map(|z| (z.zone.to_ascii_lowercase(), (z.serial, z.digest)))
        .collect())
}

/// GETs the JSON of an admin endpoint; errors name the path.
async fn admin_get<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    admin: SocketAddr,
    path: &'static str,
    wait: Duration,
) -> Result<T, ProbeError> {
    let failed = |source| ProbeError::Admin { path, source };
    http.get(format!("http://{admin}{path}"))
        .timeout(wait)
        .send()
        .await
        .map_err(failed)?
        .error_for_status()
        .map_err(failed)?
        .json()
        .await
        .map_err(failed)
}

#[cfg(test)]
mod tests {
    use zonefleet_admin::testing::answer_once;

    use super::*;

    /// An admin port that answers one request with `status` and `body`.
    async fn admin_answering(status: &'static str, body: &'static str) -> SocketAddr {
        answer_once(format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ))
        .await
    }

    #[tokio::test]
    async fn served_versions_reads_the_pods_list() {
        let admin = admin_answering(
            "200 OK",
            r#"[{"zone": "Example.COM.", "serial": 7, "digest": "ab12", "records": 3}]"#,
        )
        .await;
        let served = served_versions(&reqwest::Client::new(), admin, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            served,
            HashMap::from([("example.com.".to_owned(), (7, "ab12".to_owned()))])
        );
    }

    #[tokio::test]
    async fn admin_errors_name_the_endpoint() {
        let admin = admin_answering("404 Not Found", "").await;
        let error = served_versions(&reqwest::Client::new(), admin, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), "admin");
        assert!(error.to_string().starts_with("/zones: "), "{error}");
    }
}
