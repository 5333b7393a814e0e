//! Accounts, sessions, links and service accounts in PostgreSQL, schema
//! `trellis`, beside the log.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};
use tokio_postgres::Row;
use trellis_eventstore::postgres::Migrations;
use uuid::Uuid;

use super::{
    AccessStore, Account, AccountKey, Holder, LinkUse, ServiceAccount, Session, SignInFlow,
    SignInLink, Via, role_of, role_text, taken,
};
use crate::Error;

/// The access tables' migrations (`trellis.access_migrations`).
pub const MIGRATIONS: Migrations = Migrations {
    component: "access",
    dir: "crates/access/migrations/postgres",
    steps: &[
        (
            1,
            "access",
            include_str!("../../migrations/postgres/0001_access.sql"),
        ),
        (
            2,
            "forget_people",
            include_str!("../../migrations/postgres/0002_forget_people.sql"),
        ),
    ],
};

/// The access tables in the log's PostgreSQL database.
#[derive(Clone)]
pub struct PostgresAccessStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresAccessStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresAccessStore")
            .finish_non_exhaustive()
    }
}

impl PostgresAccessStore {
    /// Uses the event store's pool (`PostgresStore::pool`) and checks the
    /// access migrations (`trellis_eventstore::postgres::prepare`).
    pub async fn new(pool: Pool) -> Result<Self, Error> {
        let mut client = pool.get().await?;
        trellis_eventstore::postgres::prepare(&mut client, &MIGRATIONS)
            .await
            .map_err(|e| Error::Database(e.to_string()))?;
        Ok(PostgresAccessStore { pool })
    }

    async fn client(&self) -> Result<Object, Error> {
        Ok(self.pool.get().await?)
    }
}

/// A unique violation as [`Error::Taken`]; anything else as it is.
fn unique(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) if db.code() == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION => {
            taken(db.constraint().unwrap_or_default())
        }
        _ => e.into(),
    }
}

const ACCOUNT: &str =
    "id, role, person, name, email, oidc_subject, created_at, created_by, disabled_at";

fn account_of(row: &Row) -> Result<Account, Error> {
    Ok(Account {
        id: row.get(0),
        role: role_of(row.get(1))?,
        person: row.get(2),
        name: row.get(3),
        email: row.get(4),
        oidc_subject: row.get(5),
        created_at: row.get(6),
        created_by: row.get(7),
        disabled_at: row.get(8),
    })
}

const SESSION: &str = "id_hash, account_id, claims, via, created_at, last_seen_at, expires_at, \
    ended_at, ended_by";

fn session_of(row: &Row) -> Result<Session, Error> {
    let account: Option<Uuid> = row.get(1);
    let claims: Option<serde_json::Value> = row.get(2);
    let holder = match (account, claims) {
        (Some(id), _) => Holder::Account(id),
        (None, Some(claims)) => Holder::Token(
            serde_json::from_value(claims)
                .map_err(|e| Error::Database(format!("a session's claims: {e}")))?,
        ),
        (None, None) => return Err(Error::Database("a session without a holder".into())),
    };
    Ok(Session {
        id_hash: row.get(0),
        holder,
        via: Via::parse(row.get(3))?,
        created_at: row.get(4),
        last_seen_at: row.get(5),
        expires_at: row.get(6),
        ended_at: row.get(7),
        ended_by: row.get(8),
    })
}

const LINK: &str = "token_hash, account_id, created_at, created_by, expires_at, used_at";

fn link_of(row: &Row) -> SignInLink {
    SignInLink {
        token_hash: row.get(0),
        account_id: row.get(1),
        created_at: row.get(2),
        created_by: row.get(3),
        expires_at: row.get(4),
        used_at: row.get(5),
    }
}

const SERVICE: &str =
    "id, name, token_hash, grants, created_at, created_by, revoked_at, revoked_by";

fn service_of(row: &Row) -> ServiceAccount {
    ServiceAccount {
        id: row.get(0),
        name: row.get(1),
        token_hash: row.get(2),
        grants: serde_json::from_value(row.get(3)).unwrap_or_default(),
        created_at: row.get(4),
        created_by: row.get(5),
        revoked_at: row.get(6),
        revoked_by: row.get(7),
    }
}

#[async_trait]
impl AccessStore for PostgresAccessStore {
    async fn add_account(&self, a: &Account) -> Result<(), Error> {
        self.client()
            .await?
            .execute(
                &format!(
                    "INSERT INTO trellis.accounts ({ACCOUNT}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ),
                &[
                    &a.id,
                    &role_text(a.role),
                    &a.person,
                    &a.name,
                    &a.email,
                    &a.oidc_subject,
                    &a.created_at,
                    &a.created_by,
                    &a.disabled_at,
                ],
            )
            .await
            .map_err(unique)?;
        Ok(())
    }

    async fn update_account(&self, a: &Account) -> Result<(), Error> {
        self.client()
            .await?
            .execute(
                "UPDATE trellis.accounts SET name = $2, email = $3, oidc_subject = $4, \
                 disabled_at = $5 WHERE id = $1",
                &[&a.id, &a.name, &a.email, &a.oidc_subject, &a.disabled_at],
            )
            .await
            .map_err(unique)?;
        Ok(())
    }

    async fn rename_account(&self, id: Uuid, name: &str) -> Result<(), Error> {
        self.client()
            .await?
            .execute(
                "UPDATE trellis.accounts SET name = $2 WHERE id = $1 AND name <> $2",
                &[&id, &name],
            )
            .await?;
        Ok(())
    }

    async fn account(&self, id: Uuid) -> Result<Option<Account>, Error> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {ACCOUNT} FROM trellis.accounts WHERE id = $1"),
                &[&id],
            )
            .await?;
        row.as_ref().map(account_of).transpose()
    }

    async fn account_where(&self, key: AccountKey<'_>) -> Result<Option<Account>, Error> {
        let client = self.client().await?;
        let row = match key {
            AccountKey::Person(person) => {
                client
                    .query_opt(
                        &format!("SELECT {ACCOUNT} FROM trellis.accounts WHERE person = $1"),
                        &[&person],
                    )
                    .await?
            }
            AccountKey::Email(email) => {
                client
                    .query_opt(
                        &format!("SELECT {ACCOUNT} FROM trellis.accounts WHERE email = $1"),
                        &[&email],
                    )
                    .await?
            }
            AccountKey::Subject(subject) => {
                client
                    .query_opt(
                        &format!("SELECT {ACCOUNT} FROM trellis.accounts WHERE oidc_subject = $1"),
                        &[&subject],
                    )
                    .await?
            }
        };
        row.as_ref().map(account_of).transpose()
    }

    async fn accounts(&self) -> Result<Vec<Account>, Error> {
        self.client()
            .await?
            .query(
                &format!("SELECT {ACCOUNT} FROM trellis.accounts ORDER BY name, id"),
                &[],
            )
            .await?
            .iter()
            .map(account_of)
            .collect()
    }

    async fn add_session(&self, s: &Session) -> Result<(), Error> {
        let (account, claims) = match &s.holder {
            Holder::Account(id) => (Some(*id), None),
            Holder::Token(claims) => (
                None,
                Some(serde_json::to_value(claims).map_err(|e| Error::Database(e.to_string()))?),
            ),
        };
        self.client()
            .await?
            .execute(
                &format!(
                    "INSERT INTO trellis.sessions ({SESSION}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ),
                &[
                    &s.id_hash,
                    &account,
                    &claims,
                    &s.via.as_str(),
                    &s.created_at,
                    &s.last_seen_at,
                    &s.expires_at,
                    &s.ended_at,
                    &s.ended_by,
                ],
            )
            .await?;
        Ok(())
    }

    async fn session(&self, id_hash: &str) -> Result<Option<Session>, Error> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {SESSION} FROM trellis.sessions WHERE id_hash = $1"),
                &[&id_hash],
            )
            .await?;
        row.as_ref().map(session_of).transpose()
    }

    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<(), Error> {
        self.client()
            .await?
            .execute(
                "UPDATE trellis.sessions SET last_seen_at = greatest(last_seen_at, $2) \
                 WHERE id_hash = $1 AND ended_at IS NULL",
                &[&id_hash, &at],
            )
            .await?;
        Ok(())
    }

    async fn end_session(&self, id_hash: &str, at: DateTime<Utc>, by: &str) -> Result<bool, Error> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE trellis.sessions SET ended_at = $2, ended_by = $3 \
                 WHERE id_hash = $1 AND ended_at IS NULL",
                &[&id_hash, &at, &by],
            )
            .await?;
        Ok(n > 0)
    }

    async fn end_sessions_of(
        &self,
        account: Uuid,
        at: DateTime<Utc>,
        by: &str,
    ) -> Result<u64, Error> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE trellis.sessions SET ended_at = $2, ended_by = $3 \
                 WHERE account_id = $1 AND ended_at IS NULL",
                &[&account, &at, &by],
            )
            .await?)
    }

    async fn open_sessions_of(&self, account: Uuid) -> Result<Vec<Session>, Error> {
        self.client()
            .await?
            .query(
                &format!(
                    "SELECT {SESSION} FROM trellis.sessions \
                     WHERE account_id = $1 AND ended_at IS NULL ORDER BY created_at"
                ),
                &[&account],
            )
            .await?
            .iter()
            .map(session_of)
            .collect()
    }

    async fn sessions_of(&self, account: Uuid) -> Result<Vec<Session>, Error> {
        self.client()
            .await?
            .query(
                &format!(
                    "SELECT {SESSION} FROM trellis.sessions WHERE account_id = $1 \
                     ORDER BY created_at"
                ),
                &[&account],
            )
            .await?
            .iter()
            .map(session_of)
            .collect()
    }

    async fn token_sessions_of(&self, subject: &str) -> Result<Vec<Session>, Error> {
        self.client()
            .await?
            .query(
                &format!(
                    "SELECT {SESSION} FROM trellis.sessions WHERE claims ->> 'sub' = $1 \
                     ORDER BY created_at"
                ),
                &[&subject],
            )
            .await?
            .iter()
            .map(session_of)
            .collect()
    }

    async fn add_link(&self, l: &SignInLink) -> Result<(), Error> {
        self.client()
            .await?
            .execute(
                &format!(
                    "INSERT INTO trellis.sign_in_links ({LINK}) VALUES ($1, $2, $3, $4, $5, $6)"
                ),
                &[
                    &l.token_hash,
                    &l.account_id,
                    &l.created_at,
                    &l.created_by,
                    &l.expires_at,
                    &l.used_at,
                ],
            )
            .await?;
        Ok(())
    }

    async fn use_link(&self, token_hash: &str, at: DateTime<Utc>) -> Result<LinkUse, Error> {
        let client = self.client().await?;
        let used = client
            .query_opt(
                &format!(
                    "UPDATE trellis.sign_in_links SET used_at = $2 \
                     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                     RETURNING {LINK}"
                ),
                &[&token_hash, &at],
            )
            .await?;
        if let Some(row) = used {
            return Ok(LinkUse::Used(link_of(&row)));
        }
        let row = client
            .query_opt(
                &format!("SELECT {LINK} FROM trellis.sign_in_links WHERE token_hash = $1"),
                &[&token_hash],
            )
            .await?;
        Ok(match row.as_ref().map(link_of) {
            None => LinkUse::Unknown,
            Some(link) if link.used_at.is_some() => LinkUse::AlreadyUsed(link),
            Some(link) => LinkUse::Expired(link),
        })
    }

    async fn links_of(&self, account: Uuid) -> Result<Vec<SignInLink>, Error> {
        Ok(self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {LINK} FROM trellis.sign_in_links WHERE account_id = $1 \
                     ORDER BY created_at"
                ),
                &[&account],
            )
            .await?
            .iter()
            .map(link_of)
            .collect())
    }

    async fn forget_person(&self, person: Uuid) -> Result<(), Error> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let subject = person.to_string();
        tx.execute(
            "DELETE FROM trellis.sign_in_links WHERE account_id IN \
             (SELECT id FROM trellis.accounts WHERE person = $1)",
            &[&person],
        )
        .await?;
        tx.execute(
            "DELETE FROM trellis.sessions WHERE claims ->> 'sub' = $2 OR account_id IN \
             (SELECT id FROM trellis.accounts WHERE person = $1)",
            &[&person, &subject],
        )
        .await?;
        tx.execute("DELETE FROM trellis.accounts WHERE person = $1", &[&person])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_flow(&self, f: &SignInFlow) -> Result<(), Error> {
        let pending: serde_json::Value =
            serde_json::from_str(&f.pending).map_err(|e| Error::Database(e.to_string()))?;
        self.client()
            .await?
            .execute(
                "INSERT INTO trellis.sign_in_flows (id_hash, pending, next, created_at, \
                 expires_at) VALUES ($1, $2, $3, $4, $5)",
                &[&f.id_hash, &pending, &f.next, &f.created_at, &f.expires_at],
            )
            .await?;
        Ok(())
    }

    async fn take_flow(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SignInFlow>, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "DELETE FROM trellis.sign_in_flows WHERE id_hash = $1 \
                 RETURNING id_hash, pending, next, created_at, expires_at",
                &[&id_hash],
            )
            .await?;
        client
            .execute(
                "DELETE FROM trellis.sign_in_flows WHERE expires_at <= $1",
                &[&now],
            )
            .await?;
        Ok(row.map(|row| SignInFlow {
            id_hash: row.get(0),
            pending: row.get::<_, serde_json::Value>(1).to_string(),
            next: row.get(2),
            created_at: row.get(3),
            expires_at: row.get(4),
        }))
    }

    async fn add_service_account(&self, s: &ServiceAccount) -> Result<(), Error> {
        let grants = serde_json::Value::from(s.grants.clone());
        self.client()
            .await?
            .execute(
                &format!(
                    "INSERT INTO trellis.service_accounts ({SERVICE}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ),
                &[
                    &s.id,
                    &s.name,
                    &s.token_hash,
                    &grants,
                    &s.created_at,
                    &s.created_by,
                    &s.revoked_at,
                    &s.revoked_by,
                ],
            )
            .await
            .map_err(unique)?;
        Ok(())
    }

    async fn service_account_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<ServiceAccount>, Error> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {SERVICE} FROM trellis.service_accounts WHERE token_hash = $1"),
                &[&token_hash],
            )
            .await?;
        Ok(row.as_ref().map(service_of))
    }

    async fn service_accounts(&self) -> Result<Vec<ServiceAccount>, Error> {
        Ok(self
            .client()
            .await?
            .query(
                &format!("SELECT {SERVICE} FROM trellis.service_accounts ORDER BY name, id"),
                &[],
            )
            .await?
            .iter()
            .map(service_of)
            .collect())
    }

    async fn revoke_service_account(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        by: &str,
    ) -> Result<bool, Error> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE trellis.service_accounts SET revoked_at = $2, revoked_by = $3 \
                 WHERE id = $1 AND revoked_at IS NULL",
                &[&id, &at, &by],
            )
            .await?;
        Ok(n > 0)
    }
}
