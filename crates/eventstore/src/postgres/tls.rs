//! TLS to PostgreSQL: libpq's `sslmode` and `sslrootcert` over tokio-rustls
//! (the ring provider the rest of the workspace uses; no second TLS stack).
//!
//! tokio-postgres parses `sslmode` but knows only `disable`, `prefer` and
//! `require`, and no `sslrootcert`: [`connect_config`] takes both out of the
//! URL, gives tokio-postgres the mode it knows, and builds a [`MakeRustls`]
//! that verifies as libpq does:
//!
//! | `sslmode`       | encrypted         | certificate chain | host name |
//! |-----------------|-------------------|-------------------|-----------|
//! | `disable`       | no                | -                 | -         |
//! | `prefer` (default without a CA) | if the server offers | no | no  |
//! | `require`       | yes               | no                | no        |
//! | `verify-ca`     | yes               | yes               | no        |
//! | `verify-full` (default with a CA) | yes | yes           | yes       |
//!
//! The chain is checked against `sslrootcert` (a PEM file), or the system's
//! roots when none is given.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use crate::Error;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" | "allow" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::InvalidInput(format!(
                    "the database URL's sslmode {other:?} is not one of disable, prefer, \
                     require, verify-ca, verify-full"
                )));
            }
        })
    }
}

/// The URL's connection settings and the TLS connector its `sslmode` and
/// `sslrootcert` ask for. Used for every connection Trellis opens to
/// PostgreSQL (the pool, the LISTEN connection, the leases).
pub fn connect_config(url: &str) -> Result<(tokio_postgres::Config, MakeRustls), Error> {
    let (rest, mode, root_cert) = split_ssl_params(url)?;
    let mut config = tokio_postgres::Config::from_str(&rest).map_err(|e| {
        Error::InvalidInput(format!(
            "the database URL is not valid ({e}); expected something like \
             postgres://user@127.0.0.1:5432/trellis"
        ))
    })?;
    let mode = mode.unwrap_or(if root_cert.is_some() {
        SslMode::VerifyFull
    } else {
        SslMode::Prefer
    });
    config.ssl_mode(match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
    });
    let tls = MakeRustls::new(mode, root_cert.as_deref().map(Path::new))?;
    Ok((config, tls))
}

/// `url` with `sslrootcert` set to `path` (unless it names one already), so
/// that every connection made from the URL trusts that CA.
pub fn with_root_cert(url: &str, path: &Path) -> String {
    let path = path.to_string_lossy();
    if url.contains("sslrootcert=") {
        return url.to_owned();
    }
    if is_uri(url) {
        let encoded: String = path
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b => format!("%{b:02X}"),
            })
            .collect();
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}sslrootcert={encoded}")
    } else {
        format!(
            "{url} sslrootcert='{}'",
            path.replace('\\', "\\\\").replace('\'', "\\'")
        )
    }
}

fn is_uri(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The URL without `sslmode` and `sslrootcert`, and their values.
fn split_ssl_params(url: &str) -> Result<(String, Option<SslMode>, Option<String>), Error> {
    let (mut mode, mut root_cert) = (None, None);
    let mut take = |key: &str, value: String| -> Result<bool, Error> {
        match key {
            "sslmode" => mode = Some(value.parse()?),
            "sslrootcert" => root_cert = Some(value),
            _ => return Ok(false),
        }
        Ok(true)
    };
    if is_uri(url) {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_owned(), None, None));
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !take(key, percent_decode(value))? {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok((rest, mode, root_cert))
    } else {
        // key=value pairs, values optionally single-quoted with \ escapes.
        let mut kept = String::new();
        let mut chars = url.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let mut key = String::new();
            while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
                key.push(c);
            }
            if key.is_empty() {
                break;
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            chars.next_if_eq(&'=');
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let (mut value, mut raw) = (String::new(), String::new());
            if chars.next_if_eq(&'\'').is_some() {
                raw.push('\'');
                while let Some(c) = chars.next() {
                    raw.push(c);
                    match c {
                        '\'' => break,
                        '\\' => {
                            if let Some(c) = chars.next() {
                                raw.push(c);
                                value.push(c);
                            }
                        }
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    raw.push(c);
                    value.push(c);
                }
            }
            if !take(&key, value)? {
                kept.push_str(&format!("{key}={raw} "));
            }
        }
        Ok((kept.trim_end().to_owned(), mode, root_cert))
    }
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Makes tokio-postgres's TLS sessions over tokio-rustls. Cheap to clone.
#[derive(Clone)]
pub struct MakeRustls {
    connector: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for MakeRustls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MakeRustls").finish_non_exhaustive()
    }
}

impl MakeRustls {
    /// A connector verifying as `mode` says, trusting the CA certificates of
    /// `root_cert` (a PEM file) or, without one, the system's.
    pub fn new(mode: SslMode, root_cert: Option<&Path>) -> Result<Self, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Internal(format!("TLS configuration: {e}")))?;
        let verifier: Arc<dyn ServerCertVerifier> = match mode {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(Lenient {
                chain: None,
                provider,
            }),
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let roots = Arc::new(roots(root_cert)?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| Error::Internal(format!("TLS configuration: {e}")))?;
                if mode == SslMode::VerifyCa {
                    Arc::new(Lenient {
                        chain: Some(webpki),
                        provider,
                    })
                } else {
                    webpki
                }
            }
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }
}

fn roots(root_cert: Option<&Path>) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    let Some(path) = root_cert else {
        let system = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(system.certs);
        if added == 0 {
            return Err(Error::InvalidInput(
                "sslmode verify-ca/verify-full needs CA certificates: no sslrootcert \
                 (--database-ca-file) was given and the system has none"
                    .into(),
            ));
        }
        return Ok(roots);
    };
    let bad = |reason: String| {
        Error::InvalidInput(format!(
            "the database CA file {} cannot be used: {reason}",
            path.display()
        ))
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    for certificate in CertificateDer::pem_slice_iter(&bytes) {
        let certificate = certificate.map_err(|e| bad(e.to_string()))?;
        roots.add(certificate).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("it holds no PEM certificate".into()));
    }
    Ok(roots)
}

/// What libpq checks short of the host name: the chain (`verify-ca`) or
/// nothing of the certificate (`prefer`, `require`, as libpq without a root
/// certificate). Either way the handshake's signatures are checked, with
/// the provider's algorithms as the full check (`verify-full`) does.
#[derive(Debug)]
struct Lenient {
    /// `verify-ca`: the chain must lead to a trusted root, whatever name the
    /// certificate is for. `None`: the certificate is not checked.
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        let name = ServerName::try_from(domain)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
            .to_owned();
        Ok(RustlsConnect {
            connector: self.connector.clone(),
            name,
        })
    }
}

/// One TLS handshake with the server named `name`.
pub struct RustlsConnect {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for RustlsConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RustlsConnect")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let stream = self.connector.connect(self.name, stream).await?;
            Ok(RustlsStream(Box::new(stream)))
        })
    }
}

/// A TLS session with the server.
#[derive(Debug)]
pub struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use crate::postgres::tls::*;

    #[test]
    fn ssl_parameters_are_taken_out_of_a_url() {
        let (rest, mode, ca) = split_ssl_params(
            "postgres://u:p@db.example:5432/t?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:p@db.example:5432/t?application_name=x");
        assert_eq!(mode, Some(SslMode::VerifyFull));
        assert_eq!(ca.as_deref(), Some("/tmp/ca.pem"));
    }

    #[test]
    fn ssl_parameters_are_taken_out_of_key_value_pairs() {
        let (rest, mode, ca) =
            split_ssl_params("host=db user=u sslmode = verify-ca sslrootcert='/a b/c\\'d.pem'")
                .unwrap();
        assert_eq!(rest, "host=db user=u");
        assert_eq!(mode, Some(SslMode::VerifyCa));
        assert_eq!(ca.as_deref(), Some("/a b/c'd.pem"));
    }

    #[test]
    fn a_root_cert_is_added_to_either_form() {
        let path = Path::new("/a b/ca.pem");
        let uri = with_root_cert("postgres://u@h/t", path);
        assert_eq!(uri, "postgres://u@h/t?sslrootcert=/a%20b/ca.pem");
        let (_, mode, ca) = split_ssl_params(&uri).unwrap();
        assert_eq!((mode, ca.as_deref()), (None, Some("/a b/ca.pem")));
        let pairs = with_root_cert("host=h user=u", path);
        let (rest, _, ca) = split_ssl_params(&pairs).unwrap();
        assert_eq!(
            (rest.as_str(), ca.as_deref()),
            ("host=h user=u", Some("/a b/ca.pem"))
        );
    }

    #[test]
    fn an_unknown_mode_is_refused() {
        let error = connect_config("postgres://u@h/t?sslmode=always").unwrap_err();
        assert!(error.to_string().contains("always"), "{error}");
    }
}
