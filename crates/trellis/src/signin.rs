//! Signing people in: the settings of sessions, links and the identity
//! provider; opening the access tables; `trellis sign-in-link`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{Duration, Utc};
use trellis_access::store::Account;
use trellis_access::{Access, AccessConfig, NewAccount};
use trellis_http::auth::Role;
use trellis_projections::query::ReadModels;
use uuid::Uuid;

use crate::store::{Backend, StoreArgs, Stores};

/// How people sign in to the dashboard.
#[derive(Debug, Clone, clap::Args)]
pub struct SignInArgs {
    /// The URL people reach Trellis at (e.g. https://trellis.example.com):
    /// the identity provider sends them back to <URL>/auth/oidc/callback,
    /// sign-in links start with it, and with https every cookie is Secure.
    #[arg(long, env = "TRELLIS_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// The company's OpenID Connect provider (its issuer URL, as in its
    /// /.well-known/openid-configuration). Needs --oidc-client-id and
    /// --public-url.
    #[arg(long, env = "TRELLIS_OIDC_ISSUER", value_name = "URL")]
    pub oidc_issuer: Option<String>,
    /// The client id Trellis is registered under at the provider.
    #[arg(long, env = "TRELLIS_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// The client secret (better given in the environment than on the
    /// command line).
    #[arg(long, env = "TRELLIS_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// A signed-in browser with no request for this long is signed out.
    #[arg(long, env = "TRELLIS_SESSION_IDLE_MINUTES", value_name = "MINUTES",
          default_value_t = 480, value_parser = clap::value_parser!(u32).range(1..))]
    pub session_idle_minutes: u32,
    /// No sign-in lasts longer than this, however active.
    #[arg(long, env = "TRELLIS_SESSION_MAX_HOURS", value_name = "HOURS",
          default_value_t = 168, value_parser = clap::value_parser!(u32).range(1..))]
    pub session_max_hours: u32,
    /// How long a one-time sign-in link works unless its creator says otherwise.
    #[arg(long, env = "TRELLIS_SIGN_IN_LINK_MINUTES", value_name = "MINUTES",
          default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=10080))]
    pub sign_in_link_minutes: u32,
}

impl SignInArgs {
    fn config(&self) -> AccessConfig {
        AccessConfig {
            idle: Duration::minutes(self.session_idle_minutes.into()),
            absolute: Duration::hours(self.session_max_hours.into()),
            link_lifetime: Duration::minutes(self.sign_in_link_minutes.into()),
            ..AccessConfig::default()
        }
    }

    /// The public URL without a trailing slash, checked.
    pub fn public_url(&self) -> anyhow::Result<Option<String>> {
        let Some(url) = &self.public_url else {
            return Ok(None);
        };
        let parsed =
            url::Url::parse(url).with_context(|| format!("--public-url {url:?} is not a URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            anyhow::bail!("--public-url {url:?} must be an http:// or https:// URL with a host");
        }
        Ok(Some(url.trim_end_matches('/').to_owned()))
    }

    /// Whether cookies must always be `Secure`.
    pub fn https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// The identity provider's settings, when one is configured: all or
    /// nothing, with the flag that is missing named.
    fn oidc(&self) -> anyhow::Result<Option<trellis_access::oidc::OidcConfig>> {
        let Some(issuer) = &self.oidc_issuer else {
            if self.oidc_client_id.is_some() {
                anyhow::bail!("--oidc-client-id is set but --oidc-issuer is not: give both");
            }
            return Ok(None);
        };
        let client_id = self
            .oidc_client_id
            .clone()
            .context("--oidc-issuer is set but --oidc-client-id is not: give both")?;
        let public = self.public_url()?.context(
            "--oidc-issuer needs --public-url (the provider sends people back to \
             <public url>/auth/oidc/callback)",
        )?;
        Ok(Some(trellis_access::oidc::OidcConfig {
            issuer: issuer.clone(),
            client_id,
            client_secret: self.oidc_client_secret.clone(),
            redirect_url: format!("{public}/auth/oidc/callback"),
        }))
    }
}

/// The access tables beside the log, and the identity provider discovered.
pub async fn open_access(stores: &Stores, args: &SignInArgs) -> anyhow::Result<Access> {
    let oidc = args.oidc()?;
    let read = ReadModels::new(stores.read.clone());
    let config = args.config();
    let access = match &stores.backend {
        Backend::Postgres { store, .. } => {
            Access::postgres(store.pool().clone(), read, config).await
        }
        Backend::Sqlite(store) => Access::sqlite(store.path(), read, config).await,
    }
    .map_err(|e| anyhow::anyhow!("failed to open the sign-in tables: {e}"))?;
    let Some(oidc) = oidc else {
        return Ok(access);
    };
    let issuer = oidc.issuer.clone();
    let discovered = trellis_access::oidc::Oidc::discover(oidc)
        .await
        .with_context(|| format!("the identity provider {issuer} (--oidc-issuer)"))?;
    tracing::info!(%issuer, "signing people in at the identity provider");
    Ok(access.with_oidc(discovered))
}

/// The URL a one-time link opens.
pub fn link_url(base: &str, token: &str) -> String {
    format!("{base}/sign-in?link={token}")
}

/// The account of a leader or rep, made when they have none.
pub async fn account_for_person(
    access: &Access,
    role: Role,
    person: Uuid,
    by: &str,
) -> anyhow::Result<Account> {
    if let Some(account) = access.account_of_person(person).await? {
        return Ok(account);
    }
    let new = NewAccount {
        role,
        person: Some(person),
        name: None,
        email: None,
        oidc_subject: None,
    };
    Ok(access.add_account(new, by, Utc::now()).await?)
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("who").required(true)
    .args(["admin", "auditor", "leader", "rep", "account"])))]
pub struct SignInLinkArgs {
    /// An admin, by name: their sign-in is made when there is none by this
    /// name (the first admin of a new installation starts here).
    #[arg(long, value_name = "NAME")]
    admin: Option<String>,
    /// An auditor, by name (made when there is none by this name).
    #[arg(long, value_name = "NAME")]
    auditor: Option<String>,
    /// A leader, by their id in the log.
    #[arg(long, value_name = "ID")]
    leader: Option<Uuid>,
    /// A rep, by their id in the log.
    #[arg(long, value_name = "ID")]
    rep: Option<Uuid>,
    /// An existing sign-in account, by its id.
    #[arg(long, value_name = "ID")]
    account: Option<Uuid>,
    /// How long the link works.
    #[arg(long, value_name = "MINUTES", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..=10080))]
    valid_minutes: u32,
    /// The URL people reach Trellis at; the link starts with it.
    #[arg(
        long,
        env = "TRELLIS_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    public_url: String,
}

/// `trellis sign-in-link`: a one-time sign-in link for a person, printed.
pub async fn run(store_args: &StoreArgs, args: SignInLinkArgs) -> anyhow::Result<ExitCode> {
    let stores = store_args.open_all().await?;
    let access = open_access(
        &stores,
        &SignInArgs {
            public_url: None,
            oidc_issuer: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            session_idle_minutes: 480,
            session_max_hours: 168,
            sign_in_link_minutes: args.valid_minutes,
        },
    )
    .await?;
    let by = "trellis sign-in-link";
    let account = if let Some(id) = args.account {
        access.account(id).await?
    } else if let Some(leader) = args.leader {
        account_for_person(&access, Role::Leader, leader, by).await?
    } else if let Some(rep) = args.rep {
        account_for_person(&access, Role::Rep, rep, by).await?
    } else {
        let (role, name) = match (&args.admin, &args.auditor) {
            (Some(name), _) => (Role::Admin, name),
            (_, Some(name)) => (Role::Auditor, name),
            _ => unreachable!("clap requires one of the group"),
        };
        let existing = access
            .accounts()
            .await?
            .into_iter()
            .find(|a| a.role == role && a.name == name.trim());
        match existing {
            Some(account) => account,
            None => {
                let new = NewAccount {
                    role,
                    person: None,
                    name: Some(name.clone()),
                    email: None,
                    oidc_subject: None,
                };
                access.add_account(new, by, Utc::now()).await?
            }
        }
    };
    let lifetime = Duration::minutes(args.valid_minutes.into());
    let (token, link) = access
        .create_link(account.id, Some(lifetime), by, Utc::now())
        .await?;
    let base = args.public_url.trim_end_matches('/');
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", link_url(base, &token))?;
    drop(out);
    eprintln!(
        "trellis: a sign-in link for {} ({:?}); it works once, until {} UTC",
        account.name,
        account.role,
        link.expires_at.format("%Y-%m-%d %H:%M")
    );
    Ok(ExitCode::SUCCESS)
}
