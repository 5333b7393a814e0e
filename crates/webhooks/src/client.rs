//! A minimal HTTP/1.1 client for deliveries: one `POST` per connection
//! (`Connection: close`), reading the status line and headers of the answer
//! and nothing more.
//!
//! `http://` URLs go over a plain TCP stream; `https://` URLs over TLS
//! (rustls), with the rustls configuration of [`crate::tls`] built once and
//! shared by every connection. The server's certificate is verified for the
//! URL's host, a name or an IP address, which is also the SNI sent. A
//! certificate that does not verify fails the attempt with the reason
//! (`TLS handshake with hooks.example.com failed: invalid peer certificate:
//! UnknownIssuer`), retried like any other failure. Redirects are not
//! followed: a 3xx is a failed attempt, as the Standard Webhooks
//! specification recommends.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use url::{Host, Url};

use crate::tls::{self, TlsSetupError};

/// The most bytes of an answer's head read before giving up on it.
const MAX_HEAD: usize = 64 * 1024;

/// Why a URL cannot be delivered to, in words for the person who registered it.
/// Whether an address is on the public internet: not loopback, private
/// (RFC 1918, unique local), link-local, shared (CGNAT), unspecified,
/// broadcast or multicast, nor an IPv4 address in IPv6 clothing that is one
/// of those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

pub fn check_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "the scheme must be http or https, not {other:?} (like \"https://hooks.example.com/trellis\")"
            ));
        }
    }
    match url.host() {
        None => return Err("the URL has no host".into()),
        // The name the certificate is checked against must be one.
        Some(host) if url.scheme() == "https" => {
            server_name(&host)?;
        }
        Some(_) => {}
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

/// Sends deliveries over plain TCP or TLS. Cheap to clone: the TLS
/// configuration (trust roots parsed once, at startup) is shared.
#[derive(Debug, Clone)]
pub struct Client {
    tls: Arc<ClientConfig>,
    /// Whether loopback, link-local and private addresses may be receivers.
    allow_private: bool,
}

impl Client {
    /// Over a TLS configuration of the caller's (for tests and embedders),
    /// sending to public addresses only.
    pub fn new(tls: Arc<ClientConfig>) -> Self {
        Client {
            tls,
            allow_private: false,
        }
    }

    /// The same, sending to loopback, link-local and private addresses too
    /// when `allow` (a receiver on the same machine or network).
    pub fn allowing_private_targets(mut self, allow: bool) -> Self {
        self.allow_private = allow;
        self
    }

    /// Trusting the system's roots and those of `ca_file` ([`tls::client_config`]).
    pub fn with_ca_file(ca_file: Option<&Path>) -> Result<Self, TlsSetupError> {
        Ok(Client::new(tls::client_config(ca_file)?))
    }

    /// The TLS configuration every `https://` delivery uses.
    pub fn tls_config(&self) -> &Arc<ClientConfig> {
        &self.tls
    }

    /// Sends one `POST` and returns the status code of the answer, or why there was none.
    pub async fn post(
        &self,
        url: &Url,
        headers: &[(&str, String)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<u16, String> {
        match tokio::time::timeout(timeout, self.post_inner(url, headers, body)).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "no answer within {} ms (timed out)",
                timeout.as_millis()
            )),
        }
    }

    async fn post_inner(
        &self,
        url: &Url,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<u16, String> {
        check_url(url)?;
        let host = url.host().ok_or("the URL has no host")?;
        let https = url.scheme() == "https";
        let port = url
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        // The addresses are checked after the name is resolved, and the
        // connection goes to a checked one: a name that resolves to a
        // private address is refused as the address itself is.
        let addresses: Vec<SocketAddr> = match &host {
            Host::Domain(domain) => tokio::net::lookup_host((*domain, port))
                .await
                .map_err(|e| format!("cannot resolve {}: {e}", host_port(url)))?
                .collect(),
            Host::Ipv4(ip) => vec![SocketAddr::from((*ip, port))],
            Host::Ipv6(ip) => vec![SocketAddr::from((*ip, port))],
        };
        let allowed: Vec<SocketAddr> = addresses
            .iter()
            .copied()
            .filter(|a| self.allow_private || is_public(a.ip()))
            .collect();
        if allowed.is_empty() {
            let first = addresses
                .first()
                .map_or_else(|| "no address".to_owned(), |a| a.ip().to_string());
            return Err(format!(
                "{} is at {first}, a private address (loopback, link-local or a private \
                 network): webhooks go to public addresses only, unless Trellis is started \
                 with --webhook-allow-private-targets",
                host_port(url)
            ));
        }
        let stream = TcpStream::connect(&allowed[..])
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", host_port(url)))?;
        stream.set_nodelay(true).ok();
        let request = request(url, headers, body);
        if !https {
            return exchange(stream, &request).await;
        }
        let name = server_name(&host)?;
        let stream = TlsConnector::from(self.tls.clone())
            .connect(name, stream)
            .await
            // The io::Error wraps rustls' own error, whose text says what
            // was wrong with the certificate (UnknownIssuer, NotValidForName, …).
            .map_err(|e| format!("TLS handshake with {host} failed: {e}"))?;
        exchange(stream, &request).await
    }
}

/// The name a receiver's certificate must be valid for, and the SNI: the
/// URL's host, a DNS name or an IP address (sent without SNI, as TLS wants).
fn server_name(host: &Host<&str>) -> Result<ServerName<'static>, String> {
    match host {
        Host::Domain(domain) => ServerName::try_from((*domain).to_owned()).map_err(|e| {
            format!("the host {domain:?} cannot be checked against a TLS certificate: {e}")
        }),
        Host::Ipv4(ip) => Ok(ServerName::from(IpAddr::V4(*ip))),
        Host::Ipv6(ip) => Ok(ServerName::from(IpAddr::V6(*ip))),
    }
}

/// The request's bytes: the head, then the body.
fn request(url: &Url, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
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
    request
}

/// Writes the request and reads the answer's status, over TCP or TLS alike.
async fn exchange<S>(mut stream: S, request: &[u8]) -> Result<u16, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream
        .write_all(request)
        .await
        .map_err(|e| format!("sending the request failed: {e}"))?;
    // Over TLS the last records may still be buffered until flushed.
    stream
        .flush()
        .await
        .map_err(|e| format!("sending the request failed: {e}"))?;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str) -> Result<(), String> {
        check_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn loopback_private_link_local_and_shared_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "100.128.0.1", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    /// Refused before any connection is tried: by address, and by a name
    /// that resolves to a private address (`localhost`, from the hosts file).
    #[tokio::test]
    async fn a_delivery_to_a_private_address_is_refused_unless_allowed() {
        let client = Client::new(tls::client_config(None).unwrap());
        for url in [
            "http://127.0.0.1:9/hook",
            "http://localhost:9/hook",
            "http://[::1]:9/hook",
        ] {
            let refused = client
                .post(
                    &Url::parse(url).unwrap(),
                    &[],
                    b"{}",
                    Duration::from_secs(5),
                )
                .await
                .unwrap_err();
            assert!(refused.contains("a private address"), "{url}: {refused}");
            assert!(
                refused.contains("--webhook-allow-private-targets"),
                "{refused}"
            );
        }
        let allowed = client.allowing_private_targets(true);
        let failed = allowed
            .post(
                &Url::parse("http://127.0.0.1:9/hook").unwrap(),
                &[],
                b"{}",
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert!(failed.starts_with("cannot connect"), "{failed}");
    }

    #[test]
    fn http_and_https_urls_are_accepted_with_names_or_ip_addresses() {
        for url in [
            "http://hooks.example.com/trellis",
            "https://hooks.example.com/trellis?team=1",
            "https://hooks.example.com:8443/trellis",
            "https://127.0.0.1:9/hook",
            "https://[::1]:9/hook",
        ] {
            assert_eq!(check(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn another_scheme_is_refused_naming_both_that_work() {
        let e = check("ftp://example.com/hook").unwrap_err();
        assert!(e.contains("http or https") && e.contains("\"ftp\""), "{e}");
    }

    #[test]
    fn the_tls_name_is_the_urls_host() {
        let url = Url::parse("https://Hooks.Example.com/x").unwrap();
        let name = server_name(&url.host().unwrap()).unwrap();
        assert_eq!(name.to_str(), "hooks.example.com");
        let url = Url::parse("https://127.0.0.1/x").unwrap();
        assert!(matches!(
            server_name(&url.host().unwrap()).unwrap(),
            ServerName::IpAddress(_)
        ));
        let url = Url::parse("https://[::1]/x").unwrap();
        assert!(matches!(
            server_name(&url.host().unwrap()).unwrap(),
            ServerName::IpAddress(_)
        ));
    }

    #[tokio::test]
    async fn a_receiver_that_is_not_tls_fails_the_handshake_with_a_reason() {
        // A plain-HTTP listener behind an https:// URL.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            if let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        });
        // The receiver listens on loopback.
        let client = Client::with_ca_file(None)
            .unwrap()
            .allowing_private_targets(true);
        let url = Url::parse(&format!("https://{addr}/hook")).unwrap();
        let e = client
            .post(&url, &[], b"{}", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            e.starts_with("TLS handshake with 127.0.0.1 failed: "),
            "{e}"
        );
    }
}
