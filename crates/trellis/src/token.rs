//! `trellis token`: mints a bearer token, for development, tests and scripts.

use std::io::Write;
use std::process::ExitCode;

use chrono::Utc;
use trellis_http::auth::{Claims, Role};
use uuid::Uuid;

use crate::secret::SecretArgs;
use crate::store::StoreArgs;

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// admin, leader, rep, auditor or service.
    #[arg(long)]
    role: Role,
    /// The subject, recorded as the actor of every event the token writes.
    /// Leaders and reps: their id (a UUID). Default: a new UUID.
    #[arg(long)]
    sub: Option<String>,
    /// A team a leader leads (repeat for several).
    #[arg(long = "team")]
    teams: Vec<Uuid>,
    /// What a service may write, e.g. measurements:write (repeat for several).
    #[arg(long = "grant")]
    grants: Vec<String>,
    /// Hours until the token expires.
    #[arg(long, default_value_t = 24)]
    ttl_hours: i64,
    #[command(flatten)]
    secret: SecretArgs,
}

pub fn run(store: &StoreArgs, args: TokenArgs) -> anyhow::Result<ExitCode> {
    let key = args.secret.key(&store.data_dir)?;
    let now = Utc::now().timestamp();
    let claims = Claims {
        sub: args.sub.unwrap_or_else(|| Uuid::now_v7().to_string()),
        role: args.role,
        teams: args.teams,
        grants: args.grants,
        exp: now + args.ttl_hours.max(1) * 3600,
        iat: Some(now),
    };
    if matches!(claims.role, Role::Leader | Role::Rep) && claims.subject_id().is_none() {
        anyhow::bail!(
            "--sub must be the leader's or rep's id (a UUID) for role {:?}",
            claims.role
        );
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", key.mint(&claims))?;
    Ok(ExitCode::SUCCESS)
}
