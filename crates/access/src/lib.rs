//! Who may sign in, and how.
//!
//! - **Accounts**: a person who may sign in — a leader or a rep (by their id
//!   in the log), an admin or an auditor — linked to an identity at the
//!   company's identity provider by verified email or by subject.
//! - **Sessions**: the dashboard's cookie carries a random session id; the
//!   session lives in the store (so it survives a restart and every API
//!   process sees it), ends after an idle time and at an absolute time, and
//!   ends on the server when the person signs out, signs out everywhere, or
//!   an admin ends it. What a signed-in person may see is worked out at
//!   each request from who they are now: the teams a leader leads today.
//! - **One-time sign-in links** for installations without an identity
//!   provider: used once, within a short lifetime.
//! - **Service accounts**: API tokens for other services (`trs_…`), shown
//!   once, kept as a hash, carrying their grants; revoked at once.
//! - **OpenID Connect** ([`oidc`]): the authorization code flow with PKCE.
//!
//! Every secret (session id, link token, service token, sign-in flow id) is
//! 32 random bytes, stored only as its SHA-256.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use trellis_domain::{PersonName, RepId};
use trellis_http::auth::{AuthError, Authenticator, Claims, Role, SERVICE_TOKEN_PREFIX};
use trellis_projections::query::ReadModels;
use uuid::Uuid;

pub mod oidc;
pub mod store;

use store::{
    AccessStore, Account, AccountKey, Holder, LinkUse, ServiceAccount, Session, SignInFlow,
    SignInLink, Via,
};

/// A failure of the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the access tables: {0}")]
    Database(String),
    /// Another account holds this value already.
    #[error("another account already has this {0}")]
    Taken(&'static str),
}

trellis_eventstore::from_database_errors!(Error, Error::Database);

impl From<trellis_eventstore::Error> for Error {
    fn from(e: trellis_eventstore::Error) -> Self {
        Error::Database(e.to_string())
    }
}

/// Why a request to manage access was refused, in words for the admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// One value is wrong: which field, and what to do.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] Error),
}

impl AccessError {
    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AccessError::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// Why a session, a link or a sign-in was not accepted, in the words the
/// sign-in page shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0}")]
    Refused(String),
    /// The store could not be asked; nothing is known about the credential.
    #[error("{0}")]
    Unavailable(String),
}

impl From<Error> for Refused {
    fn from(e: Error) -> Self {
        tracing::warn!(error = %e, "the access tables could not be read");
        Refused::Unavailable(
            "Trellis cannot check your sign-in right now (its database is unreachable). \
             Try again in a minute."
                .into(),
        )
    }
}

fn refused(message: impl Into<String>) -> Refused {
    Refused::Refused(message.into())
}

/// How long sessions, links and sign-ins last.
#[derive(Debug, Clone, Copy)]
pub struct AccessConfig {
    /// A session with no request for this long ends.
    pub idle: Duration,
    /// No session lasts longer than this, however active.
    pub absolute: Duration,
    /// A sign-in link unless its creator says otherwise.
    pub link_lifetime: Duration,
    /// The longest a sign-in link may be made to last.
    pub max_link_lifetime: Duration,
    /// How long a sign-in at the identity provider may take.
    pub flow_lifetime: Duration,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            idle: Duration::hours(8),
            absolute: Duration::days(7),
            link_lifetime: Duration::minutes(60),
            max_link_lifetime: Duration::days(7),
            flow_lifetime: Duration::minutes(10),
        }
    }
}

/// A random secret (32 bytes, base64url) and the SHA-256 it is kept as.
fn new_secret() -> Result<(String, String), Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Database(format!("no randomness from the system: {e}")))?;
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_secret(&secret);
    Ok((secret, hash))
}

/// The form a secret is kept in: SHA-256, hex. Secrets are 256 random bits,
/// so a fast hash is enough: nothing can be guessed from it.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.trim().as_bytes()))
}

/// A person to give access to.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub role: Role,
    /// The leader's or rep's id; none for an admin or auditor.
    pub person: Option<Uuid>,
    /// Required for an admin or auditor; a leader's or rep's name comes from the log.
    pub name: Option<String>,
    pub email: Option<String>,
    pub oidc_subject: Option<String>,
}

/// A signed-in browser's session, checked.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// What the person may do, as of this request.
    pub claims: Claims,
    /// None for a developer token's session.
    pub account: Option<Account>,
    pub session: Session,
}

/// What the access tables hold about one person ([`Access::records_of_person`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRecords {
    /// Their sign-in account, if they have one.
    pub account: Option<Account>,
    /// Every session of the account and of developer tokens naming them,
    /// oldest first, ended ones included.
    pub sessions: Vec<Session>,
    /// Every one-time sign-in link made for the account, oldest first.
    pub links: Vec<SignInLink>,
}

/// A service account's token, shown once.
#[derive(Debug)]
pub struct NewServiceToken {
    pub account: ServiceAccount,
    /// `trs_…`: never stored, never shown again.
    pub token: String,
}

/// Accounts, sessions, links and service accounts, over a store, with the
/// read models for who a person is now.
#[derive(Debug, Clone)]
pub struct Access {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn AccessStore>,
    read: ReadModels,
    config: AccessConfig,
    oidc: Option<oidc::Oidc>,
}

/// The grants a service account may carry, with what each allows: the
/// read API's and each write scope's (`trellis_commands::policy::Scope`);
/// a test checks the two lists agree.
pub const GRANTS: &[(&str, &str)] = &[
    (
        "reads:read",
        "Read reps' profiles and timelines, team views, lists and the event feed",
    ),
    ("teams:write", "Form and rename teams, assign leaders"),
    ("framework:write", "Define and change competencies"),
    (
        "reps:write",
        "Hire, move, change the role of and depart reps",
    ),
    (
        "coaching:write",
        "Record feedback, coaching sessions and assessments",
    ),
    ("measurements:write", "Record and import measurements"),
    ("support:write", "Raise and answer support requests"),
    (
        "plans:write",
        "Start, checkpoint and close improvement plans",
    ),
    ("corrections:write", "Retract and correct records"),
    ("reviews:write", "Record reviews of review packets"),
];

impl Access {
    pub fn new(store: Arc<dyn AccessStore>, read: ReadModels, config: AccessConfig) -> Self {
        Access {
            inner: Arc::new(Inner {
                store,
                read,
                config,
                oidc: None,
            }),
        }
    }

    /// Over the log's PostgreSQL database (`PostgresStore::pool`).
    pub async fn postgres(
        pool: deadpool_postgres::Pool,
        read: ReadModels,
        config: AccessConfig,
    ) -> Result<Self, Error> {
        let store = store::postgres::PostgresAccessStore::new(pool).await?;
        Ok(Access::new(Arc::new(store), read, config))
    }

    /// Over the embedded store's file (`SqliteStore::path`).
    pub async fn sqlite(
        path: impl AsRef<std::path::Path>,
        read: ReadModels,
        config: AccessConfig,
    ) -> Result<Self, Error> {
        let store = store::sqlite::SqliteAccessStore::open(path).await?;
        Ok(Access::new(Arc::new(store), read, config))
    }

    /// The same, signing people in at the identity provider too.
    pub fn with_oidc(self, oidc: oidc::Oidc) -> Self {
        Access {
            inner: Arc::new(Inner {
                store: self.inner.store.clone(),
                read: self.inner.read.clone(),
                config: self.inner.config,
                oidc: Some(oidc),
            }),
        }
    }

    pub fn oidc(&self) -> Option<&oidc::Oidc> {
        self.inner.oidc.as_ref()
    }

    pub fn config(&self) -> &AccessConfig {
        &self.inner.config
    }

    pub fn store(&self) -> &dyn AccessStore {
        &*self.inner.store
    }

    // ---- accounts -----------------------------------------------------------

    /// Gives a person access. A leader or rep must be in the log; an admin
    /// or auditor needs a name.
    pub async fn add_account(
        &self,
        new: NewAccount,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Account, AccessError> {
        let email = new.email.as_deref().map(email).transpose()?;
        let subject = new.oidc_subject.as_deref().map(subject).transpose()?;
        let (person, name) = match (new.role, new.person) {
            (Role::Leader | Role::Rep, None) => {
                return Err(AccessError::invalid(
                    "person",
                    "Choose the leader or rep this sign-in is for.",
                ));
            }
            (Role::Leader, Some(leader)) => (leader, self.leader_name(leader).await?),
            (Role::Rep, Some(rep)) => (rep, self.rep_name(rep).await?),
            (Role::Admin | Role::Auditor, _) => {
                // A person's name, by the domain's rule for names.
                let name =
                    PersonName::try_from(new.name.as_deref().unwrap_or_default()).map_err(|e| {
                        AccessError::invalid(
                            "name",
                            format!(
                                "Give their name ({e}: one line, at most {} characters).",
                                PersonName::MAX_CHARS
                            ),
                        )
                    })?;
                (Uuid::now_v7(), name.as_str().to_owned())
            }
            (Role::Service, _) => {
                return Err(AccessError::invalid(
                    "role",
                    "Services get a service account, not a sign-in.",
                ));
            }
        };
        if let Some(existing) = self
            .inner
            .store
            .account_where(AccountKey::Person(person))
            .await?
        {
            return Err(AccessError::invalid(
                "person",
                format!("{} can sign in already.", existing.name),
            ));
        }
        let account = Account {
            id: if matches!(new.role, Role::Admin | Role::Auditor) {
                person
            } else {
                Uuid::now_v7()
            },
            role: new.role,
            person,
            name,
            email,
            oidc_subject: subject,
            created_at: now,
            created_by: by.to_owned(),
            disabled_at: None,
        };
        self.inner
            .store
            .add_account(&account)
            .await
            .map_err(taken_field)?;
        Ok(account)
    }

    /// Links an account to an identity (email and/or subject; empty clears).
    pub async fn link_identity(
        &self,
        account: Uuid,
        email_given: Option<&str>,
        subject_given: Option<&str>,
    ) -> Result<Account, AccessError> {
        let mut found = self.account(account).await?;
        found.email = email_given
            .filter(|e| !e.trim().is_empty())
            .map(email)
            .transpose()?;
        found.oidc_subject = subject_given
            .filter(|s| !s.trim().is_empty())
            .map(subject)
            .transpose()?;
        self.inner
            .store
            .update_account(&found)
            .await
            .map_err(taken_field)?;
        Ok(found)
    }

    /// Stops (or lets again) an account sign in; stopping ends its sessions.
    pub async fn set_disabled(
        &self,
        account: Uuid,
        disabled: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Account, AccessError> {
        let mut found = self.account(account).await?;
        found.disabled_at = if disabled {
            found.disabled_at.or(Some(now))
        } else {
            None
        };
        self.inner.store.update_account(&found).await?;
        if disabled {
            self.inner.store.end_sessions_of(account, now, by).await?;
        }
        Ok(found)
    }

    pub async fn account(&self, id: Uuid) -> Result<Account, AccessError> {
        self.inner
            .store
            .account(id)
            .await?
            .ok_or_else(|| AccessError::NotFound("There is no such sign-in account.".into()))
    }

    /// The account of a leader or rep, when they have one.
    pub async fn account_of_person(&self, person: Uuid) -> Result<Option<Account>, Error> {
        self.inner
            .store
            .account_where(AccountKey::Person(person))
            .await
    }

    /// Every account, a rep's named as the rep is now (a rename since the
    /// account was made is kept in it here too).
    pub async fn accounts(&self) -> Result<Vec<Account>, Error> {
        let mut accounts = self.inner.store.accounts().await?;
        if !accounts.iter().any(|a| a.role == Role::Rep) {
            return Ok(accounts);
        }
        let names: std::collections::HashMap<Uuid, String> = self
            .inner
            .read
            .all::<trellis_projections::growth::derive::RepProfile>(
                trellis_projections::growth::kinds::REP_PROFILE,
            )
            .await
            .map_err(|e| Error::Database(e.to_string()))?
            .into_iter()
            .filter(|p| p.erased_on.is_none())
            .map(|p| (p.rep_id.as_uuid(), p.name.to_string()))
            .collect();
        for account in accounts.iter_mut().filter(|a| a.role == Role::Rep) {
            if let Some(name) = names.get(&account.person)
                && *name != account.name
            {
                account.name.clone_from(name);
                self.inner.store.rename_account(account.id, name).await?;
            }
        }
        Ok(accounts)
    }

    /// The admins who may sign in now (their access not stopped).
    pub async fn active_admins(&self) -> Result<Vec<Account>, Error> {
        let mut accounts = self.inner.store.accounts().await?;
        accounts.retain(|a| a.role == Role::Admin && a.disabled_at.is_none());
        Ok(accounts)
    }

    async fn leader_name(&self, leader: Uuid) -> Result<String, AccessError> {
        let teams = self.teams().await?;
        teams
            .iter()
            .flat_map(|t| t.leaders.iter())
            .find(|(id, _)| id.as_uuid() == leader)
            .map(|(_, name)| name.to_string())
            .ok_or_else(|| {
                AccessError::invalid(
                    "person",
                    "No team has this leader; add them to a team first.",
                )
            })
    }

    async fn rep_name(&self, rep: Uuid) -> Result<String, AccessError> {
        let profile = self
            .inner
            .read
            .stored_profile(RepId::from_uuid(rep))
            .await
            .map_err(|e| Error::Database(e.to_string()))?;
        profile
            .map(|p| p.name.to_string())
            .ok_or_else(|| AccessError::invalid("person", "There is no rep with this id."))
    }

    /// A rep's account with the name the rep has now: the account copied it
    /// when it was made, and a rename since (`RepRenamed`) reaches it at the
    /// rep's next page, kept for the admin's list too.
    /// When the read models cannot say, the account's own name stands: the
    /// rep still signs in.
    async fn named_as_now(&self, mut account: Account) -> Result<Account, Error> {
        if account.role != Role::Rep {
            return Ok(account);
        }
        let profile = match self
            .inner
            .read
            .stored_profile(RepId::from_uuid(account.person))
            .await
        {
            Ok(profile) => profile,
            Err(e) => {
                tracing::warn!(error = %e, account = %account.id,
                    "could not read the rep's name; the account's stands");
                return Ok(account);
            }
        };
        if let Some(profile) = profile
            && profile.erased_on.is_none()
            && profile.name.as_str() != account.name
        {
            account.name = profile.name.to_string();
            self.inner
                .store
                .rename_account(account.id, &account.name)
                .await?;
        }
        Ok(account)
    }

    async fn teams(&self) -> Result<Vec<trellis_projections::growth::model::TeamDoc>, Error> {
        self.inner
            .read
            .teams()
            .await
            .map_err(|e| Error::Database(e.to_string()))
    }

    /// What an account may do now: a leader's teams are the teams they lead
    /// today.
    pub async fn claims_of(
        &self,
        account: &Account,
        expires: DateTime<Utc>,
    ) -> Result<Claims, Error> {
        let teams = if account.role == Role::Leader {
            self.teams()
                .await?
                .iter()
                .filter(|t| t.leaders.keys().any(|l| l.as_uuid() == account.person))
                .map(|t| t.team_id.as_uuid())
                .collect()
        } else {
            Vec::new()
        };
        Ok(Claims {
            sub: account.person.to_string(),
            role: account.role,
            teams,
            grants: Vec::new(),
            exp: expires.timestamp(),
            iat: None,
        })
    }

    // ---- sessions -----------------------------------------------------------

    /// Starts a session; returns the id for the cookie (never stored).
    pub async fn start_session(
        &self,
        holder: Holder,
        via: Via,
        now: DateTime<Utc>,
    ) -> Result<(String, Session), Error> {
        let (id, id_hash) = new_secret()?;
        let mut expires_at = now + self.inner.config.absolute;
        if let Holder::Token(claims) = &holder
            && let Some(token_end) = DateTime::from_timestamp(claims.exp, 0)
        {
            expires_at = expires_at.min(token_end);
        }
        let session = Session {
            id_hash,
            holder,
            via,
            created_at: now,
            last_seen_at: now,
            expires_at,
            ended_at: None,
            ended_by: None,
        };
        self.inner.store.add_session(&session).await?;
        Ok((id, session))
    }

    /// The session a cookie names, when it is running: not ended, not idle
    /// too long, not past its absolute end, its account not disabled.
    pub async fn session(&self, id: &str, now: DateTime<Utc>) -> Result<SignedIn, Refused> {
        let id_hash = hash_secret(id);
        let store = &self.inner.store;
        let Some(session) = store.session(&id_hash).await? else {
            return Err(refused("You are not signed in. Sign in to go on."));
        };
        if session.ended_at.is_some() {
            return Err(refused(
                "You were signed out of this browser. Sign in again to go on.",
            ));
        }
        let config = &self.inner.config;
        if now >= session.expires_at {
            store.end_session(&id_hash, now, "expired").await?;
            return Err(refused(format!(
                "Your sign-in has ended: a sign-in lasts at most {}. Sign in again to go on.",
                spoken(config.absolute)
            )));
        }
        if now - session.last_seen_at >= config.idle {
            store.end_session(&id_hash, now, "idle").await?;
            return Err(refused(format!(
                "You were signed out after {} without activity. Sign in again to go on.",
                spoken(config.idle)
            )));
        }
        let (claims, account) = match &session.holder {
            Holder::Token(claims) => (claims.clone(), None),
            Holder::Account(id) => {
                let account = store.account(*id).await?.ok_or_else(|| {
                    refused("This sign-in's account no longer exists. Ask your Trellis admin.")
                })?;
                if account.disabled_at.is_some() {
                    return Err(refused(
                        "Your access to Trellis was stopped. Ask your Trellis admin if this is \
                         a mistake.",
                    ));
                }
                let account = self.named_as_now(account).await?;
                (
                    self.claims_of(&account, session.expires_at).await?,
                    Some(account),
                )
            }
        };
        // Activity is written at most once a minute per session (more often
        // only when sessions idle out sooner).
        if now - session.last_seen_at >= Duration::minutes(1).min(config.idle / 4) {
            store.touch_session(&id_hash, now).await?;
        }
        Ok(SignedIn {
            claims,
            account,
            session,
        })
    }

    /// Ends the session a cookie names (signing out).
    pub async fn end_session(&self, id: &str, now: DateTime<Utc>, by: &str) -> Result<bool, Error> {
        self.inner
            .store
            .end_session(&hash_secret(id), now, by)
            .await
    }

    /// Ends every session of an account ("sign out everywhere", or an
    /// admin's doing); how many were running.
    pub async fn end_sessions_of(
        &self,
        account: Uuid,
        now: DateTime<Utc>,
        by: &str,
    ) -> Result<u64, Error> {
        self.inner.store.end_sessions_of(account, now, by).await
    }

    /// The sessions of an account that still run at `now`.
    pub async fn running_sessions_of(
        &self,
        account: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, Error> {
        Ok(self
            .inner
            .store
            .open_sessions_of(account)
            .await?
            .into_iter()
            .filter(|s| self.runs(s, now))
            .collect())
    }

    /// Whether `session` still runs at `now`: not ended, not past its
    /// absolute end, not idle too long.
    pub fn runs(&self, session: &Session, now: DateTime<Utc>) -> bool {
        session.ended_at.is_none()
            && now < session.expires_at
            && now - session.last_seen_at < self.inner.config.idle
    }

    /// What the access tables hold about a person (a leader's or rep's id
    /// in the log, or an admin's or auditor's account id), for their
    /// export: their account, every session (ended ones too, and those of
    /// developer tokens naming them) and every sign-in link made for them.
    /// Only reads; the secrets behind sessions and links are not kept, and
    /// their hashes are for the caller to leave out.
    pub async fn records_of_person(&self, person: Uuid) -> Result<PersonRecords, Error> {
        let store = &self.inner.store;
        let account = store.account_where(AccountKey::Person(person)).await?;
        let mut sessions = store.token_sessions_of(&person.to_string()).await?;
        let mut links = Vec::new();
        if let Some(account) = &account {
            sessions.extend(store.sessions_of(account.id).await?);
            links = store.links_of(account.id).await?;
        }
        sessions.sort_by_key(|s| s.created_at);
        Ok(PersonRecords {
            account,
            sessions,
            links,
        })
    }

    // ---- one-time links -----------------------------------------------------

    /// A one-time sign-in link's token for an account, valid for `lifetime`
    /// (the configured default when none).
    pub async fn create_link(
        &self,
        account: Uuid,
        lifetime: Option<Duration>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, SignInLink), AccessError> {
        let config = &self.inner.config;
        let lifetime = lifetime.unwrap_or(config.link_lifetime);
        if lifetime <= Duration::zero() || lifetime > config.max_link_lifetime {
            return Err(AccessError::invalid(
                "lifetime",
                format!(
                    "A sign-in link lasts between a minute and {}.",
                    spoken(config.max_link_lifetime)
                ),
            ));
        }
        let found = self.account(account).await?;
        if found.disabled_at.is_some() {
            return Err(AccessError::invalid(
                "account",
                format!(
                    "{}'s access is stopped; let them in again first.",
                    found.name
                ),
            ));
        }
        let (token, token_hash) = new_secret()?;
        let link = SignInLink {
            token_hash,
            account_id: account,
            created_at: now,
            created_by: by.to_owned(),
            expires_at: now + lifetime,
            used_at: None,
        };
        self.inner.store.add_link(&link).await?;
        Ok((token, link))
    }

    /// Uses a one-time link: the account it signs in, once, in time.
    pub async fn use_link(&self, token: &str, now: DateTime<Utc>) -> Result<Account, Refused> {
        let ask = "Ask your Trellis admin for a new sign-in link.";
        match self.inner.store.use_link(&hash_secret(token), now).await? {
            LinkUse::Used(link) => {
                let account = self
                    .inner
                    .store
                    .account(link.account_id)
                    .await?
                    .ok_or_else(|| refused(format!("This link's account is gone. {ask}")))?;
                if account.disabled_at.is_some() {
                    return Err(refused(
                        "Your access to Trellis was stopped. Ask your Trellis admin if this is \
                         a mistake.",
                    ));
                }
                Ok(account)
            }
            LinkUse::AlreadyUsed(_) => Err(refused(format!(
                "This sign-in link was used already; each link works once. {ask}"
            ))),
            LinkUse::Expired(_) => Err(refused(format!("This sign-in link has expired. {ask}"))),
            LinkUse::Unknown => Err(refused(format!(
                "This sign-in link is not one Trellis made (check it was copied whole). {ask}"
            ))),
        }
    }

    // ---- the identity provider ----------------------------------------------

    /// Starts a sign-in at the identity provider: the id for the browser's
    /// flow cookie and the provider URL to send it to.
    pub async fn start_flow(
        &self,
        next: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, String)>, Error> {
        let Some(oidc) = self.oidc() else {
            return Ok(None);
        };
        let (url, pending) = oidc.start();
        let (id, id_hash) = new_secret()?;
        let pending =
            serde_json::to_string(&pending).map_err(|e| Error::Database(e.to_string()))?;
        self.inner
            .store
            .add_flow(&SignInFlow {
                id_hash,
                pending,
                next,
                created_at: now,
                expires_at: now + self.inner.config.flow_lifetime,
            })
            .await?;
        Ok(Some((id, url)))
    }

    /// The provider's answer: the flow this browser started must be the one
    /// answered (`state`), then the code is exchanged and the ID token
    /// checked; the identity must be linked to an account. Returns the
    /// account and where the person was going.
    pub async fn finish_flow(
        &self,
        flow_id: Option<&str>,
        state: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<(Account, Option<String>), FlowRefused> {
        let again = "Start again from the sign-in page.";
        let oidc = self.oidc().ok_or_else(|| {
            FlowRefused::Refused(refused("Sign-in with an identity provider is not set up."))
        })?;
        let Some(flow_id) = flow_id else {
            return Err(FlowRefused::Refused(refused(format!(
                "This sign-in was not started in this browser, so it was not used. {again}"
            ))));
        };
        let flow = self
            .inner
            .store
            .take_flow(&hash_secret(flow_id), now)
            .await
            .map_err(|e| FlowRefused::Refused(e.into()))?
            .filter(|f| now < f.expires_at)
            .ok_or_else(|| {
                FlowRefused::Refused(refused(format!(
                    "This sign-in took too long or was used already. {again}"
                )))
            })?;
        let pending: oidc::PendingSignIn = serde_json::from_str(&flow.pending).map_err(|e| {
            FlowRefused::Refused(Error::Database(format!("a stored sign-in: {e}")).into())
        })?;
        let identity = oidc.finish(&pending, state, code).await.map_err(|e| {
            tracing::warn!(error = %e, "a sign-in at the identity provider was refused");
            FlowRefused::Refused(refused(format!(
                "The identity provider's answer could not be accepted: {e}. {again}"
            )))
        })?;
        let store = &self.inner.store;
        let mut account = store
            .account_where(AccountKey::Subject(&identity.subject))
            .await
            .map_err(|e| FlowRefused::Refused(e.into()))?;
        if account.is_none()
            && identity.email_verified
            && let Some(address) = &identity.email
        {
            account = store
                .account_where(AccountKey::Email(&address.trim().to_lowercase()))
                .await
                .map_err(|e| FlowRefused::Refused(e.into()))?;
        }
        match account {
            Some(account) if account.disabled_at.is_none() => Ok((account, flow.next)),
            Some(_) => Err(FlowRefused::Refused(refused(
                "Your access to Trellis was stopped. Ask your Trellis admin if this is a mistake.",
            ))),
            None => Err(FlowRefused::Unlinked(identity)),
        }
    }

    // ---- service accounts ---------------------------------------------------

    /// A service account with `grants`; its token is shown once.
    pub async fn create_service_account(
        &self,
        name: &str,
        grants: &[String],
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<NewServiceToken, AccessError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(|c| c.is_control()) {
            return Err(AccessError::invalid(
                "name",
                "Name the service (one line, at most 100 characters), e.g. \"CRM sync\".",
            ));
        }
        if grants.is_empty() {
            return Err(AccessError::invalid(
                "grants",
                "Choose at least one thing the service may do.",
            ));
        }
        if let Some(unknown) = grants.iter().find(|g| !GRANTS.iter().any(|(k, _)| k == g)) {
            return Err(AccessError::invalid(
                "grants",
                format!("{unknown:?} is not a grant Trellis knows."),
            ));
        }
        let (secret, _) = new_secret()?;
        let token = format!("{SERVICE_TOKEN_PREFIX}{secret}");
        let account = ServiceAccount {
            id: Uuid::now_v7(),
            name: name.to_owned(),
            token_hash: hash_secret(&token),
            grants: grants.to_vec(),
            created_at: now,
            created_by: by.to_owned(),
            revoked_at: None,
            revoked_by: None,
        };
        self.inner.store.add_service_account(&account).await?;
        Ok(NewServiceToken { account, token })
    }

    pub async fn revoke_service_account(
        &self,
        id: Uuid,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        self.inner.store.revoke_service_account(id, now, by).await
    }

    pub async fn service_accounts(&self) -> Result<Vec<ServiceAccount>, Error> {
        self.inner.store.service_accounts().await
    }
}

/// Why a sign-in at the identity provider did not sign anyone in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowRefused {
    Refused(Refused),
    /// The identity is real, but linked to nobody in Trellis.
    Unlinked(oidc::Identity),
}

#[async_trait::async_trait]
impl Authenticator for Access {
    async fn service_token(&self, token: &str, _now: DateTime<Utc>) -> Result<Claims, AuthError> {
        let found = self
            .inner
            .store
            .service_account_by_token(&hash_secret(token))
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "a service token could not be checked");
                AuthError::Unavailable
            })?
            .ok_or(AuthError::UnknownServiceToken)?;
        if found.revoked_at.is_some() {
            return Err(AuthError::Revoked);
        }
        Ok(Claims {
            sub: format!("service:{}", found.id),
            role: Role::Service,
            teams: Vec::new(),
            grants: found.grants,
            exp: i64::MAX,
            iat: None,
        })
    }
}

/// A lowercase email address, or why it is not one.
fn email(given: &str) -> Result<String, AccessError> {
    let address = given.trim().to_lowercase();
    let ok = address.len() <= 254
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(address.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.contains('@'));
    if ok {
        Ok(address)
    } else {
        Err(AccessError::invalid(
            "email",
            format!("{given:?} is not an email address (like name@example.com)."),
        ))
    }
}

fn subject(given: &str) -> Result<String, AccessError> {
    let subject = given.trim();
    if subject.is_empty() || subject.len() > 255 || subject.chars().any(|c| c.is_control()) {
        return Err(AccessError::invalid(
            "subject",
            "The subject is the identity provider's id for the person (the `sub` of their \
             ID token), at most 255 characters.",
        ));
    }
    Ok(subject.to_owned())
}

fn taken_field(e: Error) -> AccessError {
    match e {
        Error::Taken(what) => {
            let field = match what {
                "email" => "email",
                "identity provider subject" => "subject",
                _ => "person",
            };
            AccessError::invalid(field, format!("Another person's sign-in has this {what}."))
        }
        other => AccessError::Store(other),
    }
}

/// A duration in words: "8 hours", "7 days", "15 minutes".
pub fn spoken(d: Duration) -> String {
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    if d.num_days() > 0 && d.num_hours() % 24 == 0 {
        plural(d.num_days(), "day")
    } else if d.num_hours() > 0 && d.num_minutes() % 60 == 0 {
        plural(d.num_hours(), "hour")
    } else if d.num_minutes() > 0 {
        plural(d.num_minutes(), "minute")
    } else {
        plural(d.num_seconds(), "second")
    }
}

/// Erasing a person deletes their sign-in account (their name and email),
/// its sessions and links, and their developer tokens' sessions.
#[async_trait::async_trait]
impl trellis_eventstore::vault::ForgetsPeople for Access {
    fn holds(&self) -> &'static str {
        "sign-in account and sessions"
    }

    async fn forget(&self, person: Uuid) -> Result<(), trellis_eventstore::Error> {
        self.inner
            .store
            .forget_person(person)
            .await
            .map_err(|e| trellis_eventstore::Error::Unavailable(e.to_string()))
    }
}
