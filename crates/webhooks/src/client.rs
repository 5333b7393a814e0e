//! The HTTP/1.1 client deliveries go out on: hyper's, with its pool of
//! connections, over a connector of our own that decides where it may
//! connect.
//!
//! - **Connections are reused.** After an answer, the connection to a
//!   receiver (`scheme://host:port`) is kept for the next delivery to it,
//!   until it has been idle for the pool's idle timeout
//!   ([`Client::with_pool`]). A kept connection the receiver closed
//!   meanwhile is replaced; a request not yet written on it is sent again on
//!   a new one by hyper.
//! - **Where to.** The connector resolves the URL's host and connects only
//!   to an address that [`is_public`], unless private targets are allowed
//!   ([`Client::allowing_private_targets`]): a name that resolves to a
//!   private address is refused as the address itself is, at every new
//!   connection.
//! - **TLS.** `https://` URLs go over rustls, with the configuration of
//!   [`crate::tls`] built once and shared by every connection. The server's
//!   certificate is verified for the URL's host, a name or an IP address,
//!   which is also the SNI sent. A certificate that does not verify fails
//!   the attempt with the reason (`TLS handshake with hooks.example.com
//!   failed: invalid peer certificate: UnknownIssuer`).
//! - **What is sent is HTTP.** The URL must make a valid request target
//!   ([`check_url`], also when a subscription is registered), and every
//!   header name and value is checked before anything is sent: a value with
//!   a line break or another control character fails the attempt as
//!   [`SendError::Unsendable`] without touching the network, so nothing
//!   taken from a subscription or an event can add a header or a request of
//!   its own.
//! - **What is read.** The answer's status code and `Retry-After`
//!   ([`retry_after`]); its body only so the connection can carry the next
//!   delivery (at most [`MAX_BODY`] bytes, beyond which the connection is
//!   dropped instead).
//!
//! Redirects are not followed: a 3xx is a failed attempt, as the Standard
//! Webhooks specification recommends.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use url::{Host, Url};

use crate::tls::{self, TlsSetupError};

/// How long a connection to a receiver is kept unused, by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How many unused connections to one receiver are kept, by default.
pub const DEFAULT_MAX_IDLE: usize = 8;
/// The most bytes of an answer's body read to keep its connection; a longer
/// body closes the connection instead.
pub const MAX_BODY: usize = 64 * 1024;

/// Headers the client sets itself (from the URL and the body) or that
/// would change how the request is framed: never taken from a caller.
const RESERVED: &[HeaderName] = &[
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::CONTENT_TYPE,
    header::USER_AGENT,
];

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

/// Why a URL cannot be delivered to, in words for the person who registered it.
pub fn check_url(url: &Url) -> Result<(), String> {
    request_target(url).map(drop)
}

/// The URL as the URI of a request, or why it cannot be one.
fn request_target(url: &Url) -> Result<Uri, String> {
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "the address must start with https:// (like \"https://hooks.example.com/trellis\"), \
                 not {other}://; plain http:// is for a receiver on a private network only"
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
    // The URL parser accepts some characters that a request may not carry
    // (`"`, `{`, `}` or a backquote in a host name, which goes out in the
    // `Host` header): refused here, before anything is sent.
    Uri::try_from(url.as_str()).map_err(|e| {
        let host = url.host_str().unwrap_or_default();
        match host.chars().find(|c| matches!(c, '"' | '`' | '{' | '}')) {
            Some(c) => format!(
                "the host {host:?} holds {c:?}, which no host name has and an HTTP request \
                 cannot carry"
            ),
            None => format!("the URL cannot be sent in an HTTP request: {e}"),
        }
    })
}

/// What a receiver answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// How long the receiver asked the next attempt to wait, when it sent a
    /// `Retry-After` that could be read ([`retry_after`]).
    pub retry_after: Option<Duration>,
}

/// Why there is no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Nothing was sent, and nothing would be however often it was tried: a
    /// URL or a header that HTTP cannot carry.
    #[error("{0}")]
    Unsendable(String),
    /// No answer this time: the receiver could not be reached, its
    /// certificate did not verify, it broke the connection or took too long.
    /// Another attempt may get one.
    #[error("{0}")]
    NoAnswer(String),
}

impl SendError {
    /// Whether trying again cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Unsendable(_))
    }
}

/// A header as HTTP carries it, or why it cannot be: a name that is not a
/// token, a value with a control character (a line break would end the
/// header and start another), or a header the client sets itself. The
/// reason names the header, never its value (it may be a secret).
pub fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), SendError> {
    let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        SendError::Unsendable(format!(
            "{name:?} is not a valid HTTP header name; nothing was sent"
        ))
    })?;
    if RESERVED.contains(&header_name) {
        return Err(SendError::Unsendable(format!(
            "the {header_name} header is set by the client itself and cannot be given; nothing \
             was sent"
        )));
    }
    let header_value = HeaderValue::from_str(value).map_err(|_| {
        let (at, bad) = value
            .char_indices()
            .find(|&(_, c)| c.is_ascii_control() && c != '\t')
            .map_or((0, '?'), |(i, c)| (i, c));
        SendError::Unsendable(format!(
            "the value of the {header_name} header is not a valid HTTP header value: it holds \
             the control character {bad:?} at byte {at} (a line break would start another \
             header); nothing was sent"
        ))
    })?;
    Ok((header_name, header_value))
}

/// How long a `Retry-After` value asks to wait from `now`: a number of
/// seconds, or an HTTP date (one already past asks for no wait). `None`
/// when it is neither.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is a very long wait all the same.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Sends deliveries over pooled HTTP/1.1 connections, plain or TLS. Cheap
/// to clone: clones share the pool and the TLS configuration (trust roots
/// parsed once, at startup).
#[derive(Clone)]
pub struct Client {
    tls: Arc<ClientConfig>,
    /// Whether loopback, link-local and private addresses may be receivers.
    allow_private: bool,
    idle_timeout: Duration,
    max_idle: usize,
    pool: Pool<Connector, Full<Bytes>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("allow_private", &self.allow_private)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_idle", &self.max_idle)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Over a TLS configuration of the caller's (for tests and embedders),
    /// sending to public addresses only, with the default pool.
    pub fn new(tls: Arc<ClientConfig>) -> Self {
        let pool = pool(&tls, false, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_IDLE);
        Client {
            tls,
            allow_private: false,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_idle: DEFAULT_MAX_IDLE,
            pool,
        }
    }

    /// The same, sending to loopback, link-local and private addresses too
    /// when `allow` (a receiver on the same machine or network). A new pool:
    /// no connection made under the other rule is reused.
    pub fn allowing_private_targets(mut self, allow: bool) -> Self {
        self.allow_private = allow;
        self.rebuild()
    }

    /// The same, keeping an unused connection for `idle_timeout`, at most
    /// `max_idle` of them per receiver (as many as attempts in flight). A
    /// new pool.
    pub fn with_pool(mut self, idle_timeout: Duration, max_idle: usize) -> Self {
        self.idle_timeout = idle_timeout;
        self.max_idle = max_idle;
        self.rebuild()
    }

    fn rebuild(mut self) -> Self {
        self.pool = pool(
            &self.tls,
            self.allow_private,
            self.idle_timeout,
            self.max_idle,
        );
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

    /// Sends one `POST` with `headers` besides `Content-Type:
    /// application/json` and the `User-Agent`, and returns what the
    /// receiver answered, or why it did not. `timeout` covers connecting
    /// and waiting for the answer's head; reading its body to keep the
    /// connection takes what is left of it, and running out there only
    /// costs the connection.
    pub async fn post(
        &self,
        url: &Url,
        headers: &[(&str, String)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<Answer, SendError> {
        // Checked before anything touches the network.
        let request = request(url, headers, body)?;
        let deadline = tokio::time::Instant::now() + timeout;
        let response = match tokio::time::timeout_at(deadline, self.pool.request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Err(SendError::NoAnswer(describe(&e))),
            Err(_) => {
                return Err(SendError::NoAnswer(format!(
                    "no answer within {} ms (timed out)",
                    timeout.as_millis()
                )));
            }
        };
        let answer = Answer {
            status: response.status().as_u16(),
            retry_after: response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, SystemTime::now())),
        };
        // What the body says does not matter; read to its end, the
        // connection goes back to the pool.
        let _ = tokio::time::timeout_at(deadline, drain(response.into_body())).await;
        Ok(answer)
    }
}

/// The pool every delivery goes through, over our connector.
fn pool(
    tls: &Arc<ClientConfig>,
    allow_private: bool,
    idle_timeout: Duration,
    max_idle: usize,
) -> Pool<Connector, Full<Bytes>> {
    let connector = Connector {
        tls: TlsConnector::from(tls.clone()),
        allow_private,
    };
    Pool::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(idle_timeout)
        .pool_max_idle_per_host(max_idle)
        .build(connector)
}

/// The request for a delivery, every part checked.
fn request(
    url: &Url,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<Request<Full<Bytes>>, SendError> {
    let uri = request_target(url).map_err(SendError::Unsendable)?;
    let mut request = Request::new(Full::new(Bytes::copy_from_slice(body)));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    let map = request.headers_mut();
    map.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    map.insert(
        header::USER_AGENT,
        HeaderValue::from_static(concat!("trellis-webhooks/", env!("CARGO_PKG_VERSION"))),
    );
    for (name, value) in headers {
        let (name, value) = header(name, value)?;
        map.append(name, value);
    }
    Ok(request)
}

/// Reads a body to its end, or stops (dropping it, and so its connection)
/// after [`MAX_BODY`] bytes or at a broken frame.
async fn drain(mut body: hyper::body::Incoming) {
    let mut read = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            read += data.len();
            if read > MAX_BODY {
                return;
            }
        }
    }
}

/// The pool's error in words: the connector's own when connecting failed.
fn describe(error: &hyper_util::client::legacy::Error) -> String {
    let mut source = error.source();
    while let Some(e) = source {
        if let Some(ConnectError(reason)) = e.downcast_ref::<ConnectError>() {
            return reason.clone();
        }
        if let Some(e) = e.downcast_ref::<hyper::Error>() {
            return if e.is_incomplete_message() {
                "the receiver closed the connection without answering".into()
            } else if e.is_parse() || e.is_parse_status() {
                format!("the answer is not HTTP/1.1: {}", chain(e))
            } else {
                format!("the exchange with the receiver failed: {}", chain(e))
            };
        }
        source = e.source();
    }
    format!("the request failed: {}", chain(error))
}

/// An error and its sources, each after a colon.
fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let more = e.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = e.source();
    }
    text
}

/// Why a new connection could not be made, in words for the delivery log.
#[derive(Debug)]
struct ConnectError(String);

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for ConnectError {}

/// Makes the pool's new connections: resolves the host, refuses private
/// addresses unless allowed, connects, and over `https://` shakes hands.
#[derive(Clone)]
struct Connector {
    tls: TlsConnector,
    allow_private: bool,
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = self.clone();
        Box::pin(async move {
            connector
                .connect(&uri)
                .await
                .map(TokioIo::new)
                .map_err(ConnectError)
        })
    }
}

impl Connector {
    async fn connect(&self, uri: &Uri) -> Result<Stream, String> {
        // The pool names the receiver as `scheme://authority`.
        let url = Url::parse(&uri.to_string())
            .map_err(|e| format!("cannot connect to {uri}: not a URL ({e})"))?;
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
                .map_err(|e| format!("cannot resolve {}: {}", host_port(&url), io_words(&e)))?
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
                host_port(&url)
            ));
        }
        let stream = TcpStream::connect(&allowed[..])
            .await
            .map_err(|e| format!("cannot connect to {}: {}", host_port(&url), io_words(&e)))?;
        stream.set_nodelay(true).ok();
        if !https {
            return Ok(Stream::Plain(stream));
        }
        let name = server_name(&host)?;
        let stream = self
            .tls
            .connect(name, stream)
            .await
            // The io::Error wraps rustls' own error, whose text says what
            // was wrong with the certificate (UnknownIssuer, NotValidForName, …).
            .map_err(|e| format!("TLS handshake with {host} failed: {}", io_words(&e)))?;
        Ok(Stream::Tls(Box::new(stream)))
    }
}

/// An operating system's error in words for the delivery log, without its
/// number ("Connection refused (os error 111)" is "the connection was
/// refused: nothing listens at that port").
fn io_words(error: &io::Error) -> String {
    use io::ErrorKind as Kind;
    let words = match error.kind() {
        Kind::ConnectionRefused => "the connection was refused: nothing listens at that port",
        Kind::TimedOut => "the connection timed out: nothing answered at that address",
        Kind::ConnectionReset => "the connection was reset by the receiver",
        Kind::HostUnreachable => "that host cannot be reached from here",
        Kind::NetworkUnreachable => "that network cannot be reached from here",
        Kind::AddrNotAvailable => "that address is not available",
        _ => {
            // The system's own text, less its number: "… (os error 3)".
            let text = error.to_string();
            return match text.rfind(" (os error ") {
                Some(at) if text.ends_with(')') => text[..at].to_owned(),
                _ => text,
            };
        }
    };
    words.to_owned()
}

/// A connection to a receiver, plain or TLS.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
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

fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::serve::ListenerExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn check(url: &str) -> Result<(), String> {
        check_url(&Url::parse(url).unwrap())
    }

    /// A client for receivers on loopback.
    fn local() -> Client {
        Client::with_ca_file(None)
            .unwrap()
            .allowing_private_targets(true)
    }

    /// A receiver on loopback that answers every request with `status` and
    /// `headers`, counting the connections it accepts and the requests it gets.
    struct Receiver {
        addr: SocketAddr,
        connections: Arc<AtomicUsize>,
        requests: Arc<AtomicUsize>,
    }

    impl Receiver {
        async fn start(status: u16, headers: &[(&'static str, &'static str)]) -> Receiver {
            let connections = Arc::new(AtomicUsize::new(0));
            let requests = Arc::new(AtomicUsize::new(0));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let counted = connections.clone();
            let listener = listener.tap_io(move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
            });
            let (seen, headers) = (requests.clone(), headers.to_vec());
            let router = axum::Router::new().route(
                "/hook",
                axum::routing::post(move || {
                    seen.fetch_add(1, Ordering::SeqCst);
                    let mut response = axum::response::Response::new(axum::body::Body::from(
                        "a body the sender reads and forgets",
                    ));
                    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                    for (name, value) in &headers {
                        response
                            .headers_mut()
                            .insert(*name, HeaderValue::from_static(value));
                    }
                    std::future::ready(response)
                }),
            );
            tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            });
            Receiver {
                addr,
                connections,
                requests,
            }
        }

        fn url(&self) -> Url {
            Url::parse(&format!("http://{}/hook", self.addr)).unwrap()
        }

        fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }

        fn requests(&self) -> usize {
            self.requests.load(Ordering::SeqCst)
        }
    }

    async fn post(
        client: &Client,
        url: &Url,
        headers: &[(&str, String)],
    ) -> Result<Answer, SendError> {
        client
            .post(url, headers, b"{}", Duration::from_secs(5))
            .await
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
            let refused = post(&client, &Url::parse(url).unwrap(), &[])
                .await
                .unwrap_err();
            assert!(!refused.is_permanent(), "{url}: {refused}");
            let refused = refused.to_string();
            assert!(refused.contains("a private address"), "{url}: {refused}");
            assert!(
                refused.contains("--webhook-allow-private-targets"),
                "{refused}"
            );
        }
        let allowed = client.allowing_private_targets(true);
        let failed = post(
            &allowed,
            &Url::parse("http://127.0.0.1:9/hook").unwrap(),
            &[],
        )
        .await
        .unwrap_err()
        .to_string();
        assert_eq!(
            failed,
            "cannot connect to 127.0.0.1:9: the connection was refused: nothing listens at \
             that port",
        );
    }

    #[test]
    fn a_system_error_is_told_without_its_number() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            io_words(&refused),
            "the connection was refused: nothing listens at that port"
        );
        let other = io::Error::other("Temporary failure in name resolution (os error 3)");
        assert_eq!(io_words(&other), "Temporary failure in name resolution");
        let plain = io::Error::other("no route");
        assert_eq!(io_words(&plain), "no route");
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
    fn another_scheme_is_refused_asking_for_https() {
        let e = check("ftp://example.com/hook").unwrap_err();
        assert!(
            e.starts_with("the address must start with https://") && e.contains("not ftp://"),
            "{e}"
        );
    }

    /// The URL parser lets `"`, `{`, `}` and a backquote through in a host
    /// name; the `Host` header of a request may not carry them.
    #[test]
    fn a_url_that_cannot_be_a_request_target_is_refused_saying_why() {
        for (url, c) in [
            ("http://hooks{x}.example.com/hook", "'{'"),
            ("http://hooks\"x.example.com/hook", "'\"'"),
            ("http://hooks`x.example.com/hook", "'`'"),
        ] {
            let url = Url::parse(url).unwrap();
            let e = check_url(&url).unwrap_err();
            assert!(e.starts_with("the host \"hooks"), "{e}");
            assert!(e.contains(&format!("holds {c}")), "{e}");
            assert!(e.contains("an HTTP request cannot carry"), "{e}");
            let e = request(&url, &[], b"{}").unwrap_err();
            assert!(e.is_permanent(), "{e}");
        }
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
        let url = Url::parse(&format!("https://{addr}/hook")).unwrap();
        let e = post(&local(), &url, &[]).await.unwrap_err();
        assert!(!e.is_permanent(), "{e}");
        assert!(
            e.to_string()
                .starts_with("TLS handshake with 127.0.0.1 failed: "),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_receiver_that_closes_without_answering_is_no_answer_with_a_reason() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                drop(stream);
            }
        });
        let url = Url::parse(&format!("http://{addr}/hook")).unwrap();
        let e = post(&local(), &url, &[]).await.unwrap_err();
        assert_eq!(
            e,
            SendError::NoAnswer("the receiver closed the connection without answering".into())
        );
    }

    #[tokio::test]
    async fn deliveries_to_one_receiver_reuse_one_connection() {
        let receiver = Receiver::start(200, &[]).await;
        let client = local();
        for _ in 0..3 {
            let answer = post(&client, &receiver.url(), &[]).await.unwrap();
            assert_eq!(answer.status, 200);
        }
        assert_eq!(receiver.requests(), 3);
        assert_eq!(receiver.connections(), 1, "one connection for three posts");
        // A clone shares the pool.
        post(&client.clone(), &receiver.url(), &[]).await.unwrap();
        assert_eq!(receiver.connections(), 1, "a clone reuses it too");
    }

    #[tokio::test]
    async fn a_connection_idle_past_the_idle_timeout_is_not_reused() {
        let receiver = Receiver::start(204, &[]).await;
        let client = local().with_pool(Duration::from_millis(100), 4);
        post(&client, &receiver.url(), &[]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        post(&client, &receiver.url(), &[]).await.unwrap();
        assert_eq!(receiver.requests(), 2);
        assert_eq!(receiver.connections(), 2, "a new connection after idling");
    }

    /// A value with a line break would end the header and start another
    /// (`webhook-id: x\r\nX-Injected: yes`): refused before connecting.
    #[tokio::test]
    async fn a_header_value_with_a_line_break_is_refused_and_nothing_is_sent() {
        let receiver = Receiver::start(200, &[]).await;
        for (name, value, bad) in [
            ("webhook-id", "msg_1\r\nX-Injected: yes", "'\\r' at byte 5"),
            ("webhook-id", "msg_1\nX-Injected: yes", "'\\n' at byte 5"),
            ("webhook-timestamp", "1\u{0}", "'\\0' at byte 1"),
        ] {
            let e = post(&local(), &receiver.url(), &[(name, value.to_owned())])
                .await
                .unwrap_err();
            assert!(e.is_permanent(), "{e}");
            let e = e.to_string();
            assert!(
                e.contains(&format!(
                    "the value of the {name} header is not a valid HTTP header value"
                )),
                "{e}"
            );
            assert!(e.contains(bad), "names the character and where: {e}");
            assert!(e.contains("nothing was sent"), "{e}");
            assert!(!e.contains("X-Injected"), "the value is not repeated: {e}");
        }
        for (name, why) in [
            ("bad name", "not a valid HTTP header name"),
            ("Content-Length", "set by the client itself"),
            ("host", "set by the client itself"),
        ] {
            let e = post(&local(), &receiver.url(), &[(name, "1".to_owned())])
                .await
                .unwrap_err();
            assert!(
                e.is_permanent() && e.to_string().contains(why),
                "{name}: {e}"
            );
        }
        assert_eq!(receiver.connections(), 0, "nothing reached the receiver");
        // A valid one goes through.
        let answer = post(
            &local(),
            &receiver.url(),
            &[("webhook-id", "msg_1".to_owned())],
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 200);
    }

    #[tokio::test]
    async fn the_answers_retry_after_is_read() {
        let receiver = Receiver::start(503, &[("retry-after", "7")]).await;
        let answer = post(&local(), &receiver.url(), &[]).await.unwrap();
        assert_eq!(
            answer,
            Answer {
                status: 503,
                retry_after: Some(Duration::from_secs(7))
            }
        );
        let receiver = Receiver::start(429, &[]).await;
        let answer = post(&local(), &receiver.url(), &[]).await.unwrap();
        assert_eq!(answer.retry_after, None);
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let secs = |s| retry_after(s, now);
        assert_eq!(secs("120"), Some(Duration::from_secs(120)));
        assert_eq!(secs(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            secs("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            secs("Sun, 06 Nov 1994 08:50:07 GMT"),
            Some(Duration::from_secs(30))
        );
        // The two obsolete forms HTTP still allows.
        assert_eq!(
            secs("Sunday, 06-Nov-94 08:50:07 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            secs("Sun Nov  6 08:50:07 1994"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(secs("Sun, 06 Nov 1994 08:00:00 GMT"), Some(Duration::ZERO));
        for garbage in ["", "-5", "1.5", "soon", "Sun, 06 Nov 1994"] {
            assert_eq!(secs(garbage), None, "{garbage:?}");
        }
    }
}
