//! A minimal HTTP/1.1 client for deliveries: one `POST` per connection
//! (`Connection: close`) over a plain TCP stream, reading the status line and
//! headers of the answer and nothing more.
//!
//! Only `http://` URLs are supported: this build carries no TLS client for
//! webhooks (receivers that need `https://` go behind a TLS-terminating proxy
//! or sidecar, or wait for TLS support). Redirects are not followed: a 3xx is
//! a failed attempt, as the Standard Webhooks specification recommends.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::{Host, Url};

/// The most bytes of an answer's head read before giving up on it.
const MAX_HEAD: usize = 64 * 1024;

/// Why a URL cannot be delivered to, in words for the person who registered it.
pub fn check_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(
                "https:// receivers are not supported yet by this build (no TLS client); use an \
                 http:// URL, for example a TLS-terminating proxy on your network"
                    .into(),
            );
        }
        other => {
            return Err(format!(
                "the scheme must be http, not {other:?} (like \"http://hooks.example.com/trellis\")"
            ));
        }
    }
    if url.host().is_none() {
        return Err("the URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "the URL must not carry credentials; authenticate with the signature instead".into(),
        );
    }
    if url.fragment().is_some() {
        return Err("the URL must not have a fragment (#…)".into());
    }
    Ok(())
}

/// Sends one `POST` and returns the status code of the answer, or why there was none.
pub async fn post(
    url: &Url,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<u16, String> {
    match tokio::time::timeout(timeout, post_inner(url, headers, body)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no answer within {} ms (timed out)",
            timeout.as_millis()
        )),
    }
}

async fn post_inner(url: &Url, headers: &[(&str, String)], body: &[u8]) -> Result<u16, String> {
    check_url(url)?;
    let port = url.port_or_known_default().unwrap_or(80);
    let mut stream = match url.host() {
        Some(Host::Domain(domain)) => TcpStream::connect((domain, port)).await,
        Some(Host::Ipv4(ip)) => TcpStream::connect(SocketAddr::from((ip, port))).await,
        Some(Host::Ipv6(ip)) => TcpStream::connect(SocketAddr::from((ip, port))).await,
        None => return Err("the URL has no host".into()),
    }
    .map_err(|e| format!("cannot connect to {}: {e}", host_port(url)))?;
    stream.set_nodelay(true).ok();

    let mut target = url.path().to_owned();
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    let mut head = format!(
        "POST {target} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\nUser-Agent: trellis-webhooks/{}\r\n",
        host_port(url),
        body.len(),
        env!("CARGO_PKG_VERSION"),
    );
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream
        .write_all(&request)
        .await
        .map_err(|e| format!("sending the request failed: {e}"))?;
    stream.flush().await.ok();

    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if !buf.is_empty() {
            let mut parsed_headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut parsed_headers);
            match response.parse(&buf) {
                Ok(httparse::Status::Complete(consumed)) => {
                    let code = response.code.ok_or("the answer has no status code")?;
                    // 1xx answers are interim; a final one follows.
                    if (100..200).contains(&code) {
                        buf.drain(..consumed);
                        continue;
                    }
                    return Ok(code);
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
                Ok(httparse::Status::Partial) => {
                    return Err(format!("the answer's head is larger than {MAX_HEAD} bytes"));
                }
                Err(e) => return Err(format!("the answer is not HTTP/1.1: {e}")),
            }
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?;
        if n == 0 {
            return Err(if buf.is_empty() {
                "the receiver closed the connection without answering".into()
            } else {
                "the receiver closed the connection in the middle of its answer".into()
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}
