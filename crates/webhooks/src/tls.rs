//! TLS for `https://` receivers: one rustls client configuration, built when
//! the service starts and shared by every delivery.
//!
//! Trusted roots are the system's, as `rustls-native-certs` finds them (the
//! platform's store, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set), plus the
//! CA certificates of one PEM file an operator may name
//! ([`WebhooksConfig::ca_file`](crate::WebhooksConfig::ca_file)), for
//! receivers behind a private CA. Certificates are verified by rustls'
//! WebPKI verifier against the URL's host; there is no way to turn
//! verification off.
//!
//! The crypto provider (ring) is passed explicitly rather than taken from the
//! process-wide default: which default a process has depends on what other
//! crates installed, and the sender must not panic or change behaviour
//! because of that.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::{self, PemObject};
use rustls::{ClientConfig, RootCertStore};

/// Why the TLS client could not be set up, naming the file and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA file is missing, unreadable, or not a file.
    #[error("cannot read the webhook CA file {}: {error}", path.display())]
    CaFileUnreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The CA file has a broken PEM section.
    #[error("the webhook CA file {} is not valid PEM: {reason}", path.display())]
    CaFileNotPem { path: PathBuf, reason: String },
    /// The CA file has no `CERTIFICATE` section (empty, or only keys).
    #[error(
        "the webhook CA file {} holds no certificate: it needs one or more PEM \
         \"-----BEGIN CERTIFICATE-----\" sections",
        path.display()
    )]
    CaFileEmpty { path: PathBuf },
    /// A certificate in the CA file could not be parsed as a trust anchor.
    #[error(
        "certificate {number} of the webhook CA file {} cannot be trusted as a CA: {reason}",
        path.display()
    )]
    CaCertificateUnusable {
        path: PathBuf,
        /// 1 for the first certificate in the file.
        number: usize,
        reason: String,
    },
    /// The crypto provider refused the default protocol versions (a build problem).
    #[error("the TLS provider cannot be set up: {0}")]
    Provider(String),
}

/// The client configuration for every `https://` delivery: the system's
/// roots plus those of `ca_file`, HTTP/1.1 offered by ALPN (the only
/// protocol the sender speaks).
///
/// Reading the system's store may partly fail (an unreadable file in a
/// certificate directory); that is logged, not fatal: `http://` deliveries
/// do not need it and the other roots still work. A bad `ca_file` is fatal:
/// the operator asked for it.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let mut roots = RootCertStore::empty();

    let system = rustls_native_certs::load_native_certs();
    for error in &system.errors {
        tracing::warn!(%error, "some of the system's root certificates could not be loaded");
    }
    let (system_roots, ignored) = roots.add_parsable_certificates(system.certs);
    if ignored > 0 {
        tracing::debug!(ignored, "system root certificates that rustls cannot use");
    }

    let extra = match ca_file {
        Some(path) => {
            let certificates = read_ca_file(path)?;
            let count = certificates.len();
            add_all(&mut roots, path, certificates)?;
            tracing::info!(
                ca_file = %path.display(), certificates = count,
                "webhooks trust the CA file's certificates besides the system's"
            );
            count
        }
        None => 0,
    };
    if roots.is_empty() {
        tracing::warn!(
            "no trusted root certificates (none found on the system and no webhook CA file): \
             every https:// delivery will fail certificate verification"
        );
    } else {
        tracing::debug!(system_roots, extra, "webhook TLS roots loaded");
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Provider(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Every certificate in a PEM file, each checked to be usable as a trust
/// anchor, or why the file cannot be used. Cheap enough to call early (the
/// binary does, before it starts anything) to refuse a bad file at once.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let bytes = std::fs::read(path).map_err(|error| TlsSetupError::CaFileUnreadable {
        path: path.to_owned(),
        error,
    })?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::CaFileNotPem {
            path: path.to_owned(),
            reason: describe_pem_error(&e),
        })?;
    if certificates.is_empty() {
        return Err(TlsSetupError::CaFileEmpty {
            path: path.to_owned(),
        });
    }
    add_all(&mut RootCertStore::empty(), path, certificates.clone())?;
    Ok(certificates)
}

/// Adds the certificates of `path` to `roots`, naming the first unusable one.
fn add_all(
    roots: &mut RootCertStore,
    path: &Path,
    certificates: Vec<CertificateDer<'static>>,
) -> Result<(), TlsSetupError> {
    for (i, certificate) in certificates.into_iter().enumerate() {
        roots.add(certificate).map_err(|e| {
            let reason = match e {
                // Its display speaks of a "peer": here it is the file's.
                rustls::Error::InvalidCertificate(e) => {
                    format!("it is not a usable X.509 certificate ({e})")
                }
                other => other.to_string(),
            };
            TlsSetupError::CaCertificateUnusable {
                path: path.to_owned(),
                number: i + 1,
                reason,
            }
        })?;
    }
    Ok(())
}

/// The parser's error in words (its own display shows markers as byte lists).
fn describe_pem_error(error: &pem::Error) -> String {
    match error {
        pem::Error::MissingSectionEnd { end_marker } => {
            let label = String::from_utf8_lossy(end_marker);
            format!("a {label} section does not end (no \"-----END {label}-----\" line)")
        }
        pem::Error::IllegalSectionStart { line } => format!(
            "a section starts with a malformed line: {:?}",
            String::from_utf8_lossy(line)
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of its own under the temp dir, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn with(contents: &[u8]) -> TempFile {
            let path = std::env::temp_dir().join(format!(
                "trellis-webhooks-ca-{}.pem",
                uuid::Uuid::now_v7().simple()
            ));
            std::fs::write(&path, contents).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn without_a_ca_file_the_system_roots_are_enough_to_start() {
        let config = client_config(None).unwrap();
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
    }

    #[test]
    fn a_missing_ca_file_names_the_path_and_the_cause() {
        let path = std::env::temp_dir().join("trellis-webhooks-no-such-ca.pem");
        let e = client_config(Some(&path)).unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("cannot read"), "{e}");
        assert!(e.contains("No such file"), "{e}");
    }

    #[test]
    fn an_empty_ca_file_or_one_without_certificates_is_refused() {
        for contents in [
            &b""[..],
            b"just some text\n",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let file = TempFile::with(contents);
            let e = client_config(Some(&file.0)).unwrap_err().to_string();
            assert!(e.contains(&file.0.display().to_string()), "{e}");
            assert!(e.contains("holds no certificate"), "{e}");
        }
    }

    #[test]
    fn a_broken_pem_section_is_refused_with_the_reason() {
        let file = TempFile::with(b"-----BEGIN CERTIFICATE-----\nAAAA\n");
        let e = client_config(Some(&file.0)).unwrap_err().to_string();
        assert!(e.contains("not valid PEM"), "{e}");
        assert!(e.contains("-----END CERTIFICATE-----"), "{e}");

        let file =
            TempFile::with(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
        let e = client_config(Some(&file.0)).unwrap_err().to_string();
        assert!(e.contains("not valid PEM") && e.contains("base64"), "{e}");
    }

    #[test]
    fn a_certificate_that_is_not_x509_is_refused_naming_its_number() {
        // Valid PEM and base64, but not DER.
        let file =
            TempFile::with(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        let e = client_config(Some(&file.0)).unwrap_err().to_string();
        assert!(e.contains("certificate 1 of the webhook CA file"), "{e}");
        assert!(e.contains("not a usable X.509 certificate"), "{e}");
        // The early check the binary makes refuses it too.
        let e = read_ca_file(&file.0).unwrap_err().to_string();
        assert!(e.contains("certificate 1 of the webhook CA file"), "{e}");
    }
}
