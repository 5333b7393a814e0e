//! `serve --roles`: which parts of Trellis one process runs, and how a
//! worker that must be active in one process at a time stands by in the
//! others.
//!
//! - `api`: the HTTP API under `/v1`, the dashboard and sign-in. Stateless:
//!   any number run side by side.
//! - `projector`: the read models (the projection engine) and the log's
//!   Merkle tree with its signed checkpoints.
//! - `relay`: the log to JetStream `TRELLIS_EVENTS` (with `--nats-url`).
//! - `alerts`: the evaluator, which records alerts in the log, and, with
//!   `--nats-url`, their publisher to `TRELLIS_ALERTS`.
//! - `webhooks`: the dispatcher (log → deliveries) and the sender.
//!
//! Every worker is single-active: it holds a lease (on PostgreSQL a session
//! advisory lock on a connection of its own, [`trellis_notifications::lease`];
//! the projection engine its own of the same kind) and the same worker in
//! other processes stands by, trying again every second or two, and takes
//! over when the holder's session ends. On the embedded store a lease is
//! held within one process only, so the worker roles of one file belong in
//! one process.
//!
//! Every process, whatever its roles, serves `/healthz`, `/readyz` and
//! `/metrics` on `--listen`.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use trellis_notifications::lease::{Lease, LeaseConfig};

/// One part of Trellis a process may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Api,
    Projector,
    Relay,
    Alerts,
    Webhooks,
}

impl Role {
    /// Every role, in the order they are listed.
    pub const ALL: [Role; 5] = [
        Role::Api,
        Role::Projector,
        Role::Relay,
        Role::Alerts,
        Role::Webhooks,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Projector => "projector",
            Role::Relay => "relay",
            Role::Alerts => "alerts",
            Role::Webhooks => "webhooks",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The roles of one process: a non-empty set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles(u8);

impl Roles {
    /// Every role: one process runs all of Trellis.
    pub fn all() -> Roles {
        Roles(Role::ALL.iter().fold(0, |bits, role| bits | role.bit()))
    }

    pub fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }
}

impl Default for Roles {
    fn default() -> Self {
        Roles::all()
    }
}

/// The names of the roles, comma-separated, for messages.
fn valid() -> String {
    Role::ALL.map(Role::name).join(", ")
}

impl FromStr for Roles {
    type Err = String;

    /// `all`, or role names separated by commas (spaces around them are
    /// ignored; a role named twice is there once).
    fn from_str(text: &str) -> Result<Roles, String> {
        let mut bits = 0;
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if word == "all" {
                bits |= Roles::all().0;
                continue;
            }
            let Some(role) = Role::ALL.into_iter().find(|r| r.name() == word) else {
                return Err(format!(
                    "`{word}` is not a role; the roles are {} (or all)",
                    valid()
                ));
            };
            bits |= role.bit();
        }
        if bits == 0 {
            return Err(format!("name at least one role: {} (or all)", valid()));
        }
        Ok(Roles(bits))
    }
}

impl fmt::Display for Roles {
    /// The roles' names, comma-separated, in [`Role::ALL`]'s order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Role::ALL
            .into_iter()
            .filter(|&r| self.contains(r))
            .map(Role::name)
            .collect();
        f.write_str(&names.join(","))
    }
}

/// How long a standby waits between two tries at a lease.
pub const STANDBY_RETRY: Duration = Duration::from_secs(1);

/// Runs `work` while this process holds the lease `key`, until `stop`
/// completes: stands by until the lease is free, runs `work` (dropping it
/// when the lease is lost) and stands by again. `work` runs until dropped;
/// if it ends on its own, it is started again after a pause.
pub async fn single_active<W, F>(
    lease: LeaseConfig,
    key: &'static str,
    worker: &'static str,
    stop: impl Future<Output = ()>,
    mut work: W,
) where
    W: FnMut() -> F,
    F: Future<Output = ()>,
{
    tokio::pin!(stop);
    loop {
        let mut held = tokio::select! {
            () = &mut stop => return,
            held = Lease::acquire(&lease, key, STANDBY_RETRY) => held,
        };
        tracing::info!(worker, "active: this process holds the lease");
        tokio::select! {
            () = &mut stop => return,
            () = held.lost() => {
                tracing::warn!(worker, "lost the lease; standing by");
            }
            () = work() => {
                tracing::warn!(worker, "stopped on its own; starting again");
            }
        }
        drop(held);
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(STANDBY_RETRY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_and_lists_of_names_parse_into_their_roles() {
        assert_eq!("all".parse::<Roles>(), Ok(Roles::all()));
        assert_eq!(Roles::default(), Roles::all());
        let api: Roles = "api".parse().expect("one role");
        assert!(api.contains(Role::Api));
        assert!(Role::ALL[1..].iter().all(|&r| !api.contains(r)));
        let workers: Roles = " projector, relay,alerts ,webhooks,relay"
            .parse()
            .expect("a list");
        assert!(!workers.contains(Role::Api));
        assert_eq!(workers.to_string(), "projector,relay,alerts,webhooks");
        assert_eq!(
            Roles::all().to_string(),
            "api,projector,relay,alerts,webhooks"
        );
        assert_eq!(
            workers.to_string().parse::<Roles>(),
            Ok(workers),
            "what it prints parses back"
        );
    }

    #[test]
    fn an_unknown_or_no_role_is_refused_naming_the_valid_ones() {
        let error = "api,frontend".parse::<Roles>().expect_err("unknown");
        assert!(error.contains("`frontend` is not a role"), "{error}");
        assert!(
            error.contains("api, projector, relay, alerts, webhooks (or all)"),
            "{error}"
        );
        for empty in ["", ",", " , "] {
            let error = empty.parse::<Roles>().expect_err("no role");
            assert!(error.contains("name at least one role"), "{error}");
        }
    }
}
