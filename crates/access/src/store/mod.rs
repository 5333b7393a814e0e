//! Where accounts, sessions, links and service accounts live: their own
//! tables in the log's database, one backend per event store backend
//! (PostgreSQL schema `trellis`, or the embedded file), each with its own
//! migrations. Secrets are never stored: only their SHA-256.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use trellis_http::auth::{Claims, Role};
use uuid::Uuid;

use crate::Error;

pub mod postgres;
pub mod sqlite;

/// A person who may sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: Uuid,
    /// Admin, auditor, leader or rep (never a service).
    pub role: Role,
    /// The leader's or rep's id in the log; an admin's or auditor's is the
    /// account id. Recorded as the actor of what they write.
    pub person: Uuid,
    pub name: String,
    /// Lowercase; matched against the identity provider's verified email.
    pub email: Option<String>,
    /// The identity provider's subject (`sub`) for this person.
    pub oidc_subject: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// Since when the account may not sign in; its sessions ended then.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// How a session was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A one-time sign-in link.
    Link,
    /// The company's identity provider.
    Oidc,
    /// A developer token (`trellis token`).
    Token,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Link => "link",
            Via::Oidc => "oidc",
            Via::Token => "token",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Via, Error> {
        match text {
            "link" => Ok(Via::Link),
            "oidc" => Ok(Via::Oidc),
            "token" => Ok(Via::Token),
            other => Err(Error::Database(format!("unknown session origin {other:?}"))),
        }
    }
}

/// Whom a session is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A person: what they may see is worked out from who they are now.
    Account(Uuid),
    /// A developer token's claims, as the token said them.
    Token(Claims),
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 (hex) of the id the cookie carries.
    pub id_hash: String,
    pub holder: Holder,
    pub via: Via,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The absolute end: no activity keeps a session past it.
    pub expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_by: Option<String>,
}

/// A one-time sign-in link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInLink {
    pub token_hash: String,
    pub account_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// What using a link found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkUse {
    /// The link was unused and in time; it is used now.
    Used(SignInLink),
    AlreadyUsed(SignInLink),
    Expired(SignInLink),
    Unknown,
}

/// A sign-in at the identity provider under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInFlow {
    pub id_hash: String,
    /// What the callback checks, as JSON (`oidc::PendingSignIn`).
    pub pending: String,
    pub next: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Another service's access to the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub id: Uuid,
    pub name: String,
    pub token_hash: String,
    pub grants: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
}

/// The storage of every backend; [`crate::Access`] holds the rules.
#[async_trait]
pub trait AccessStore: Send + Sync + std::fmt::Debug {
    /// Adds an account; [`Error::Taken`] names what another account holds
    /// already (the person, the email or the subject).
    async fn add_account(&self, account: &Account) -> Result<(), Error>;
    /// Replaces an account's name, email, subject and disabled time.
    async fn update_account(&self, account: &Account) -> Result<(), Error>;
    /// Sets an account's name, and nothing else: a rename the log made
    /// reaches the account without writing back what an admin may have
    /// changed meanwhile (its email, its access stopped).
    async fn rename_account(&self, id: Uuid, name: &str) -> Result<(), Error>;
    async fn account(&self, id: Uuid) -> Result<Option<Account>, Error>;
    async fn account_where(&self, key: AccountKey<'_>) -> Result<Option<Account>, Error>;
    /// Every account, by name.
    async fn accounts(&self) -> Result<Vec<Account>, Error>;

    async fn add_session(&self, session: &Session) -> Result<(), Error>;
    async fn session(&self, id_hash: &str) -> Result<Option<Session>, Error>;
    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<(), Error>;
    /// Ends a session still running; false when it had ended.
    async fn end_session(&self, id_hash: &str, at: DateTime<Utc>, by: &str) -> Result<bool, Error>;
    /// Ends every running session of an account; how many.
    async fn end_sessions_of(
        &self,
        account: Uuid,
        at: DateTime<Utc>,
        by: &str,
    ) -> Result<u64, Error>;
    /// The sessions of an account not ended (some may have run out).
    async fn open_sessions_of(&self, account: Uuid) -> Result<Vec<Session>, Error>;
    /// Every session of an account, ended ones included, oldest first (a
    /// person's export).
    async fn sessions_of(&self, account: Uuid) -> Result<Vec<Session>, Error>;
    /// Every session started with a developer token whose subject is
    /// `subject`, ended ones included, oldest first (a person's export).
    async fn token_sessions_of(&self, subject: &str) -> Result<Vec<Session>, Error>;

    async fn add_link(&self, link: &SignInLink) -> Result<(), Error>;
    /// Uses a link at `at` when it is unused and in time, in one statement
    /// (two browsers cannot both use it).
    async fn use_link(&self, token_hash: &str, at: DateTime<Utc>) -> Result<LinkUse, Error>;
    /// Every sign-in link made for an account, oldest first (a person's export).
    async fn links_of(&self, account: Uuid) -> Result<Vec<SignInLink>, Error>;
    /// Deletes, in one transaction, the person's account with its sessions
    /// and links, and the sessions of developer tokens naming them.
    async fn forget_person(&self, person: Uuid) -> Result<(), Error>;

    async fn add_flow(&self, flow: &SignInFlow) -> Result<(), Error>;
    /// Removes and returns a flow (each is used once), with the flows that
    /// ran out before `now`.
    async fn take_flow(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SignInFlow>, Error>;

    async fn add_service_account(&self, account: &ServiceAccount) -> Result<(), Error>;
    async fn service_account_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<ServiceAccount>, Error>;
    /// Every service account, revoked ones included, by name.
    async fn service_accounts(&self) -> Result<Vec<ServiceAccount>, Error>;
    /// Revokes a service account not revoked; false when there is none.
    async fn revoke_service_account(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        by: &str,
    ) -> Result<bool, Error>;
}

/// How an account is looked up.
#[derive(Debug, Clone, Copy)]
pub enum AccountKey<'a> {
    Person(Uuid),
    Email(&'a str),
    Subject(&'a str),
}

pub(crate) fn role_text(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Auditor => "auditor",
        Role::Leader => "leader",
        Role::Rep => "rep",
        Role::Service => "service",
    }
}

pub(crate) fn role_of(text: &str) -> Result<Role, Error> {
    text.parse()
        .map_err(|e: String| Error::Database(format!("a stored role: {e}")))
}

/// Which unique column a duplicate broke, from the constraint's name.
pub(crate) fn taken(constraint: &str) -> Error {
    let what = if constraint.contains("email") {
        "email"
    } else if constraint.contains("subject") {
        "identity provider subject"
    } else if constraint.contains("person") {
        "person"
    } else {
        "id"
    };
    Error::Taken(what)
}
