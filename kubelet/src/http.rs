//! HTTP GETs for kubelet probes and for tests that talk to Pods, on the workspace's HTTP
//! client (reqwest): one request per connection, no proxy, redirects not followed (a 3xx is
//! an answer, as the kubelet's prober counts it).

use std::{net::SocketAddr, sync::OnceLock, time::Duration};

/// A response's status code and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .user_agent("zonefleet-e2e")
            .build()
            .unwrap_or_else(|_| reqwest::Client::new())
    })
}

/// Sends one request to `address` and reads the whole response within `timeout`.
pub async fn request(
    method: &str,
    address: SocketAddr,
    path: &str,
    timeout: Duration,
) -> std::io::Result<Response> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(std::io::Error::other)?;
    let exchange = async {
        let response = client()
            .request(method, format!("http://{address}{path}"))
            .send()
            .await?;
        let status = response.status().as_u16();
        let body = response.text().await?;
        Ok::<_, reqwest::Error>(Response { status, body })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(std::io::Error::other(e)),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {timeout:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use zonefleet_admin::testing::answer_once;

    use super::*;

    #[tokio::test]
    async fn reads_plain_chunked_and_redirect_responses() {
        let wait = Duration::from_secs(5);
        let plain = answer_once(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        assert_eq!(
            request("GET", plain, "/", wait).await.unwrap(),
            Response {
                status: 200,
                body: "ok".into()
            }
        );
        let chunked = answer_once(
            b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .await;
        assert_eq!(
            request("GET", chunked, "/", wait).await.unwrap(),
            Response {
                status: 503,
                body: "abcde".into()
            }
        );
        let redirect =
            answer_once(b"HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n")
                .await;
        assert_eq!(
            request("GET", redirect, "/", wait).await.unwrap().status,
            302
        );
        let not_http = answer_once(b"SSH-2.0-OpenSSH\r\n\r\n").await;
        assert!(request("GET", not_http, "/", wait).await.is_err());
    }
}
