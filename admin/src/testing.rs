//! Helpers for the tests of HTTP clients (the feature `testing`, for dev-dependencies).

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// A server on a free loopback port that reads one request (its first 4 KiB) and answers
/// it with the bytes `raw`, as they are, then closes the connection.
///
/// # Panics
///
/// If no loopback port can be bound; the server task panics if the exchange fails.
pub async fn answer_once(raw: impl Into<Vec<u8>>) -> SocketAddr {
    let raw = raw.into();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("the bound address");
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("a connection");
        let mut request = vec![0; 4096];
        let _ = stream.read(&mut request).await.expect("the request");
        stream.write_all(&raw).await.expect("the answer written");
    });
    address
}
