//! The JWT secret: from configuration, or a development secret kept in the
//! data directory so `trellis token` and `trellis serve` agree without setup.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use trellis_http::auth::TokenKey;

/// The file a development secret is kept in, inside the data directory.
pub const DEV_SECRET_FILE: &str = "jwt-secret";

#[derive(Debug, clap::Args)]
pub struct SecretArgs {
    /// Secret that signs and verifies bearer tokens (HS256), at least 32 bytes.
    /// Absent: a development secret is generated once and kept in
    /// <data-dir>/jwt-secret.
    #[arg(long, env = "TRELLIS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
}

impl SecretArgs {
    pub fn key(&self, data_dir: &Path) -> anyhow::Result<TokenKey> {
        if let Some(secret) = &self.jwt_secret {
            return TokenKey::new(secret.as_bytes().to_vec()).map_err(anyhow::Error::msg);
        }
        let path = data_dir.join(DEV_SECRET_FILE);
        let secret = match std::fs::read(&path) {
            Ok(secret) => secret,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir)
                    .with_context(|| format!("failed to create {}", data_dir.display()))?;
                let secret: Vec<u8> = (0..4)
                    .flat_map(|_| uuid::Uuid::new_v4().into_bytes())
                    .collect::<Vec<u8>>();
                let secret = hex::encode(secret).into_bytes();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options
                    .open(&path)
                    .with_context(|| format!("failed to create {}", path.display()))?;
                file.write_all(&secret)?;
                tracing::warn!(
                    path = %path.display(),
                    "no TRELLIS_JWT_SECRET given: generated a development secret; set one in production"
                );
                secret
            }
            Err(e) => {
                return Err(e).with_context(|| format!("failed to read {}", path.display()));
            }
        };
        TokenKey::new(secret).map_err(anyhow::Error::msg)
    }
}
