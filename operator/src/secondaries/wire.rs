//! Talking to a secondary over UDP: a NOTIFY (RFC 1996), signed with TSIG when the secondary
//! has a key, and an SOA query for the serial it serves.

use std::{net::SocketAddr, time::Duration};

use hickory_proto::{
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Name, RData, RecordType},
};
use tokio::net::UdpSocket;
use zonefleet_tsig::{Key, ResponseError, sign_request, unix_now};

/// Why a secondary did not answer as it should.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecondaryError {
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The socket failed.
    #[error("{0}")]
    Io(String),
    /// An answer that is not one to our message.
    #[error("a malformed answer")]
    Malformed,
    /// An error response code.
    #[error("answered {0}")]
    Rcode(String),
    /// The answer's signature does not verify.
    #[error("the answer's TSIG: {0}")]
    Tsig(#[from] ResponseError),
    /// No SOA in the answer.
    #[error("no SOA in the answer")]
    NoSoa,
}

/// A NOTIFY for `origin` (RFC 1996 §3.7: opcode NOTIFY, AA, the SOA question; no answer
/// section, so the secondary checks our serial itself).
pub fn notify_message(id: u16, origin: &Name) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Notify);
    message.metadata.authoritative = true;
    message.add_query(Query::query(origin.clone(), RecordType::SOA));
    message.to_vec().unwrap_or_default()
}

/// An SOA query for `origin`.
pub fn soa_query(id: u16, origin: &Name) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(origin.clone(), RecordType::SOA));
    message.to_vec().unwrap_or_default()
}

/// Sends a NOTIFY for `origin` to `secondary` and waits for its acknowledgement.
pub async fn notify(
    secondary: SocketAddr,
    origin: &Name,
    key: Option<&Key>,
    timeout: Duration,
) -> Result<(), SecondaryError> {
    let id = rand_id();
    let mut request = notify_message(id, origin);
    let mut verifier = key.map(|key| sign_request(&mut request, key, unix_now()));
    let answer = exchange(secondary, &request, id, timeout).await?;
    let message = Message::from_vec(&answer).map_err(|_| SecondaryError::Malformed)?;
    if message.metadata.op_code != OpCode::Notify {
        return Err(SecondaryError::Malformed);
    }
    if let Some(verifier) = &mut verifier {
        verifier.verify(&answer)?;
    }
    match message.metadata.response_code {
        ResponseCode::NoError => Ok(()),
        rcode => Err(SecondaryError::Rcode(rcode.to_string())),
    }
}

/// The SOA serial `secondary` serves for `origin`.
pub async fn serial(
    secondary: SocketAddr,
    origin: &Name,
    timeout: Duration,
) -> Result<u32, SecondaryError> {
    let id = rand_id();
    let answer = exchange(secondary, &soa_query(id, origin), id, timeout).await?;
    let message = Message::from_vec(&answer).map_err(|_| SecondaryError::Malformed)?;
    if message.metadata.response_code != ResponseCode::NoError {
        return Err(SecondaryError::Rcode(
            message.metadata.response_code.to_string(),
        ));
    }
    message
        .answers
        .iter()
        .find_map(|record| match &record.data {
            RData::SOA(soa) if record.name == *origin => Some(soa.serial),
            _ => None,
        })
        .ok_or(SecondaryError::NoSoa)
}

/// Sends `request` and returns the first answer with its ID, from the secondary's address.
async fn exchange(
    secondary: SocketAddr,
    request: &[u8],
    id: u16,
    timeout: Duration,
) -> Result<Vec<u8>, SecondaryError> {
    let local: SocketAddr = if secondary.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let io = |e: std::io::Error| SecondaryError::Io(e.to_string());
    let socket = UdpSocket::bind(local).await.map_err(io)?;
    socket.connect(secondary).await.map_err(io)?;
    socket.send(request).await.map_err(io)?;
    let mut buffer = vec![0; 4096];
    let wait = async {
        loop {
            let len = socket.recv(&mut buffer).await.map_err(io)?;
            let answer = &buffer[..len];
            let is_ours = answer.len() >= 12
                && u16::from_be_bytes([answer[0], answer[1]]) == id
                && answer[2] & 0x80 != 0;
            if is_ours {
                return Ok(answer.to_vec());
            }
        }
    };
    tokio::time::timeout(timeout, wait)
        .await
        .map_err(|_| SecondaryError::Timeout(timeout))?
}

/// A random message ID (the time's low bits should the system's random source fail).
fn rand_id() -> u16 {
    ring::rand::generate::<[u8; 2]>(&ring::rand::SystemRandom::new()).map_or_else(
        |_| u16::try_from(unix_now() & 0xffff).unwrap_or(0),
        |bytes| u16::from_be_bytes(bytes.expose()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notify_is_an_authoritative_soa_question_with_the_notify_opcode() {
        let origin = Name::from_ascii("example.test.").expect("name");
        let message = Message::from_vec(&notify_message(7, &origin)).expect("parses");
        assert_eq!(message.metadata.op_code, OpCode::Notify);
        assert!(message.metadata.authoritative);
        assert_eq!(message.metadata.message_type, MessageType::Query);
        let query = &message.queries[0];
        assert_eq!(query.name(), &origin);
        assert_eq!(query.query_type(), RecordType::SOA);
        assert!(message.answers.is_empty());
    }
}
