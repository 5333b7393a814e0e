//! How the binary reaches NATS: the servers, the credentials, TLS, and a
//! start that waits for a server that is not up yet.

use std::path::PathBuf;

use anyhow::Context;
use async_nats::{ConnectErrorKind, ConnectOptions, ServerAddr};

/// The NATS connection's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS servers with JetStream, comma-separated (nats://host:4222, or
    /// tls://host:4222 to require TLS; user:password@ may be in the URL):
    /// every event is published to TRELLIS_EVENTS and every alert to
    /// TRELLIS_ALERTS. Absent: events and alerts are only recorded in the
    /// log (webhooks still work).
    #[arg(long, env = "TRELLIS_NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,
    /// The NATS user (with --nats-password).
    #[arg(long, env = "TRELLIS_NATS_USER", requires = "nats_password")]
    pub nats_user: Option<String>,
    /// The NATS user's password.
    #[arg(
        long,
        env = "TRELLIS_NATS_PASSWORD",
        hide_env_values = true,
        requires = "nats_user"
    )]
    pub nats_password: Option<String>,
    /// A NATS authentication token.
    #[arg(long, env = "TRELLIS_NATS_TOKEN", hide_env_values = true,
          conflicts_with_all = ["nats_user", "nats_creds_file", "nats_nkey_file"])]
    pub nats_token: Option<String>,
    /// A NATS credentials file (a user JWT and its nkey seed, as `nsc` writes).
    #[arg(long, env = "TRELLIS_NATS_CREDS_FILE", value_name = "PATH",
          conflicts_with_all = ["nats_user", "nats_nkey_file"])]
    pub nats_creds_file: Option<PathBuf>,
    /// A file holding the NATS user's nkey seed (SU...).
    #[arg(
        long,
        env = "TRELLIS_NATS_NKEY_FILE",
        value_name = "PATH",
        conflicts_with = "nats_user"
    )]
    pub nats_nkey_file: Option<PathBuf>,
    /// A PEM file of the CA certificates that signed the NATS servers'
    /// certificates. With it TLS is required.
    #[arg(long, env = "TRELLIS_NATS_CA_FILE", value_name = "PATH")]
    pub nats_ca_file: Option<PathBuf>,
}

impl NatsArgs {
    /// Connects to the servers of `--nats-url` (`None` without it).
    ///
    /// Wrong credentials or a refused certificate fail at once. A server
    /// that cannot be reached yet does not: the client keeps trying in the
    /// background (see [`wait_connected`]) and warns meanwhile.
    pub async fn connect(&self) -> anyhow::Result<Option<async_nats::Client>> {
        let Some(url) = &self.nats_url else {
            return Ok(None);
        };
        let servers = servers(url)?;
        let named = describe(&servers);
        match self.options().await?.connect(servers.clone()).await {
            Ok(client) => return Ok(Some(client)),
            Err(e)
                if matches!(
                    e.kind(),
                    ConnectErrorKind::Io
                        | ConnectErrorKind::TimedOut
                        | ConnectErrorKind::Dns
                        | ConnectErrorKind::MaxReconnects
                ) =>
            {
                tracing::warn!(servers = %named, error = %e,
                    "cannot reach NATS yet; retrying in the background");
            }
            Err(e) => {
                return Err(e).with_context(|| format!("failed to connect to NATS at {named}"));
            }
        }
        let client = self
            .options()
            .await?
            .retry_on_initial_connect()
            .connect(servers)
            .await
            .with_context(|| format!("failed to connect to NATS at {named}"))?;
        Ok(Some(client))
    }

    async fn options(&self) -> anyhow::Result<ConnectOptions> {
        let mut options =
            ConnectOptions::new()
                .name("trellis")
                .event_callback(|event| async move {
                    match event {
                        async_nats::Event::Connected => tracing::info!("connected to NATS"),
                        async_nats::Event::Disconnected => {
                            tracing::warn!("disconnected from NATS; reconnecting")
                        }
                        event => tracing::warn!(%event, "NATS connection"),
                    }
                });
        if let (Some(user), Some(password)) = (&self.nats_user, &self.nats_password) {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(token) = &self.nats_token {
            options = options.token(token.clone());
        }
        if let Some(path) = &self.nats_creds_file {
            options = options.credentials_file(path).await.with_context(|| {
                format!("cannot read the NATS credentials file {}", path.display())
            })?;
        }
        if let Some(path) = &self.nats_nkey_file {
            let seed = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the NATS nkey file {}", path.display()))?;
            options = options.nkey(seed.trim().to_owned());
        }
        if let Some(path) = &self.nats_ca_file {
            // Read here so that a missing file is reported before connecting.
            std::fs::metadata(path)
                .with_context(|| format!("cannot read the NATS CA file {}", path.display()))?;
            options = options
                .add_root_certificates(path.clone())
                .require_tls(true);
        }
        Ok(options)
    }
}

/// The comma-separated servers of `--nats-url`.
fn servers(url: &str) -> anyhow::Result<Vec<ServerAddr>> {
    let servers = url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ServerAddr>()
                .map_err(|e| anyhow::anyhow!("--nats-url: a server is not a valid NATS URL ({e})"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if servers.is_empty() {
        anyhow::bail!("--nats-url names no server");
    }
    Ok(servers)
}

/// The servers as host:port, without credentials.
fn describe(servers: &[ServerAddr]) -> String {
    servers
        .iter()
        .map(|s| format!("{}:{}", s.host(), s.port()))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_servers_are_named_without_their_credentials() {
        let parsed = servers("nats://u:secret@a:4222, tls://b:4223,").unwrap();
        assert_eq!(describe(&parsed), "a:4222,b:4223");
        assert!(servers("  ,").is_err());
    }
}
