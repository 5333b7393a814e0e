//! Accounts, sessions, links and service accounts in the embedded file,
//! beside the log: the same tables as PostgreSQL, on a connection of their
//! own.

use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use trellis_eventstore::sqlite::text::time as ts;
use trellis_eventstore::sqlite::{ComponentConnection, Migrations};
use uuid::Uuid;

use super::{
    AccessStore, Account, AccountKey, Holder, LinkUse, ServiceAccount, Session, SignInFlow,
    SignInLink, Via, role_of, role_text, taken,
};
use crate::Error;

/// The access tables' migrations (`access_migrations`).
pub const MIGRATIONS: Migrations = Migrations {
    component: "access",
    dir: "crates/access/migrations/sqlite",
    steps: &[(
        1,
        "access",
        include_str!("../../migrations/sqlite/0001_access.sql"),
    )],
};

/// The access tables in the embedded file.
#[derive(Debug, Clone)]
pub struct SqliteAccessStore {
    conn: ComponentConnection,
}

impl SqliteAccessStore {
    /// Opens the embedded store's file (`SqliteStore::path`) and applies the
    /// access migrations.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let conn = ComponentConnection::open(path, MIGRATIONS).await?;
        Ok(SqliteAccessStore { conn })
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        self.conn.call(f).await
    }
}

fn parse_ts(text: &str) -> Result<DateTime<Utc>, Error> {
    trellis_eventstore::sqlite::text::parse_time(text).map_err(Error::Database)
}

fn opt_ts(text: Option<String>) -> Result<Option<DateTime<Utc>>, Error> {
    text.as_deref().map(parse_ts).transpose()
}

fn parse_uuid(text: &str) -> Result<Uuid, Error> {
    trellis_eventstore::sqlite::text::parse_id(text).map_err(Error::Database)
}

/// A unique violation as [`Error::Taken`]; anything else as it is.
fn unique(e: rusqlite::Error) -> Error {
    match &e {
        rusqlite::Error::SqliteFailure(f, Some(message))
            if f.code == rusqlite::ErrorCode::ConstraintViolation
                && message.starts_with("UNIQUE") =>
        {
            // "UNIQUE constraint failed: accounts.email"
            taken(message.rsplit('.').next().unwrap_or_default())
        }
        _ => e.into(),
    }
}

const ACCOUNT: &str =
    "id, role, person, name, email, oidc_subject, created_at, created_by, disabled_at";

type AccountRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
);

fn account_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRow> {
    row.try_into()
}

fn to_account(
    (id, role, person, name, email, subject, created_at, created_by, disabled_at): AccountRow,
) -> Result<Account, Error> {
    Ok(Account {
        id: parse_uuid(&id)?,
        role: role_of(&role)?,
        person: parse_uuid(&person)?,
        name,
        email,
        oidc_subject: subject,
        created_at: parse_ts(&created_at)?,
        created_by,
        disabled_at: opt_ts(disabled_at)?,
    })
}

const SESSION: &str = "id_hash, account_id, claims, via, created_at, last_seen_at, expires_at, \
    ended_at, ended_by";

type SessionRow = (
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn session_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    row.try_into()
}

fn to_session(
    (id_hash, account, claims, via, created_at, last_seen_at, expires_at, ended_at, ended_by): SessionRow,
) -> Result<Session, Error> {
    let holder = match (account, claims) {
        (Some(id), _) => Holder::Account(parse_uuid(&id)?),
        (None, Some(claims)) => Holder::Token(
            serde_json::from_str(&claims)
                .map_err(|e| Error::Database(format!("a session's claims: {e}")))?,
        ),
        (None, None) => return Err(Error::Database("a session without a holder".into())),
    };
    Ok(Session {
        id_hash,
        holder,
        via: Via::parse(&via)?,
        created_at: parse_ts(&created_at)?,
        last_seen_at: parse_ts(&last_seen_at)?,
        expires_at: parse_ts(&expires_at)?,
        ended_at: opt_ts(ended_at)?,
        ended_by,
    })
}

const LINK: &str = "token_hash, account_id, created_at, created_by, expires_at, used_at";

type LinkRow = (String, String, String, String, String, Option<String>);

fn link_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<LinkRow> {
    row.try_into()
}

fn to_link(
    (token_hash, account, created_at, created_by, expires_at, used_at): LinkRow,
) -> Result<SignInLink, Error> {
    Ok(SignInLink {
        token_hash,
        account_id: parse_uuid(&account)?,
        created_at: parse_ts(&created_at)?,
        created_by,
        expires_at: parse_ts(&expires_at)?,
        used_at: opt_ts(used_at)?,
    })
}

const SERVICE: &str =
    "id, name, token_hash, grants, created_at, created_by, revoked_at, revoked_by";

type ServiceRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn service_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ServiceRow> {
    row.try_into()
}

fn to_service(
    (id, name, token_hash, grants, created_at, created_by, revoked_at, revoked_by): ServiceRow,
) -> Result<ServiceAccount, Error> {
    Ok(ServiceAccount {
        id: parse_uuid(&id)?,
        name,
        token_hash,
        grants: serde_json::from_str(&grants).unwrap_or_default(),
        created_at: parse_ts(&created_at)?,
        created_by,
        revoked_at: opt_ts(revoked_at)?,
        revoked_by,
    })
}

#[async_trait]
impl AccessStore for SqliteAccessStore {
    async fn add_account(&self, a: &Account) -> Result<(), Error> {
        let a = a.clone();
        self.call(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO accounts ({ACCOUNT}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    a.id.to_string(),
                    role_text(a.role),
                    a.person.to_string(),
                    a.name,
                    a.email,
                    a.oidc_subject,
                    ts(a.created_at),
                    a.created_by,
                    a.disabled_at.map(ts),
                ],
            )
            .map_err(unique)?;
            Ok(())
        })
        .await
    }

    async fn update_account(&self, a: &Account) -> Result<(), Error> {
        let a = a.clone();
        self.call(move |conn| {
            conn.execute(
                "UPDATE accounts SET name = ?2, email = ?3, oidc_subject = ?4, disabled_at = ?5 \
                 WHERE id = ?1",
                params![
                    a.id.to_string(),
                    a.name,
                    a.email,
                    a.oidc_subject,
                    a.disabled_at.map(ts)
                ],
            )
            .map_err(unique)?;
            Ok(())
        })
        .await
    }

    async fn rename_account(&self, id: Uuid, name: &str) -> Result<(), Error> {
        let name = name.to_owned();
        self.call(move |conn| {
            conn.execute(
                "UPDATE accounts SET name = ?2 WHERE id = ?1 AND name <> ?2",
                params![id.to_string(), name],
            )?;
            Ok(())
        })
        .await
    }

    async fn account(&self, id: Uuid) -> Result<Option<Account>, Error> {
        self.call(move |conn| {
            conn.query_row(
                &format!("SELECT {ACCOUNT} FROM accounts WHERE id = ?1"),
                [id.to_string()],
                account_row,
            )
            .optional()?
            .map(to_account)
            .transpose()
        })
        .await
    }

    async fn account_where(&self, key: AccountKey<'_>) -> Result<Option<Account>, Error> {
        let (column, value) = match key {
            AccountKey::Person(person) => ("person", person.to_string()),
            AccountKey::Email(email) => ("email", email.to_owned()),
            AccountKey::Subject(subject) => ("oidc_subject", subject.to_owned()),
        };
        self.call(move |conn| {
            conn.query_row(
                &format!("SELECT {ACCOUNT} FROM accounts WHERE {column} = ?1"),
                [value],
                account_row,
            )
            .optional()?
            .map(to_account)
            .transpose()
        })
        .await
    }

    async fn accounts(&self) -> Result<Vec<Account>, Error> {
        self.call(|conn| {
            let mut statement =
                conn.prepare(&format!("SELECT {ACCOUNT} FROM accounts ORDER BY name, id"))?;
            let rows = statement
                .query_map([], account_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(to_account).collect()
        })
        .await
    }

    async fn add_session(&self, s: &Session) -> Result<(), Error> {
        let s = s.clone();
        self.call(move |conn| {
            let (account, claims) = match &s.holder {
                Holder::Account(id) => (Some(id.to_string()), None),
                Holder::Token(claims) => (
                    None,
                    Some(
                        serde_json::to_string(claims)
                            .map_err(|e| Error::Database(e.to_string()))?,
                    ),
                ),
            };
            conn.execute(
                &format!(
                    "INSERT INTO sessions ({SESSION}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    s.id_hash,
                    account,
                    claims,
                    s.via.as_str(),
                    ts(s.created_at),
                    ts(s.last_seen_at),
                    ts(s.expires_at),
                    s.ended_at.map(ts),
                    s.ended_by,
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn session(&self, id_hash: &str) -> Result<Option<Session>, Error> {
        let id_hash = id_hash.to_owned();
        self.call(move |conn| {
            conn.query_row(
                &format!("SELECT {SESSION} FROM sessions WHERE id_hash = ?1"),
                [id_hash],
                session_row,
            )
            .optional()?
            .map(to_session)
            .transpose()
        })
        .await
    }

    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<(), Error> {
        let id_hash = id_hash.to_owned();
        self.call(move |conn| {
            conn.execute(
                "UPDATE sessions SET last_seen_at = max(last_seen_at, ?2) \
                 WHERE id_hash = ?1 AND ended_at IS NULL",
                params![id_hash, ts(at)],
            )?;
            Ok(())
        })
        .await
    }

    async fn end_session(&self, id_hash: &str, at: DateTime<Utc>, by: &str) -> Result<bool, Error> {
        let (id_hash, by) = (id_hash.to_owned(), by.to_owned());
        self.call(move |conn| {
            Ok(conn.execute(
                "UPDATE sessions SET ended_at = ?2, ended_by = ?3 \
                 WHERE id_hash = ?1 AND ended_at IS NULL",
                params![id_hash, ts(at), by],
            )? > 0)
        })
        .await
    }

    async fn end_sessions_of(
        &self,
        account: Uuid,
        at: DateTime<Utc>,
        by: &str,
    ) -> Result<u64, Error> {
        let by = by.to_owned();
        self.call(move |conn| {
            let n = conn.execute(
                "UPDATE sessions SET ended_at = ?2, ended_by = ?3 \
                 WHERE account_id = ?1 AND ended_at IS NULL",
                params![account.to_string(), ts(at), by],
            )?;
            Ok(n as u64)
        })
        .await
    }

    async fn forget_person(&self, person: Uuid) -> Result<(), Error> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let person = person.to_string();
            tx.execute(
                "DELETE FROM sign_in_links WHERE account_id IN \
                 (SELECT id FROM accounts WHERE person = ?1)",
                [&person],
            )?;
            tx.execute(
                "DELETE FROM sessions WHERE json_extract(claims, '$.sub') = ?1 OR account_id IN \
                 (SELECT id FROM accounts WHERE person = ?1)",
                [&person],
            )?;
            tx.execute("DELETE FROM accounts WHERE person = ?1", [&person])?;
            tx.commit()?;
            trellis_eventstore::sqlite::empty_the_wal(conn)
                .map_err(|e| Error::Database(e.to_string()))?;
            Ok(())
        })
        .await
    }

    async fn open_sessions_of(&self, account: Uuid) -> Result<Vec<Session>, Error> {
        self.call(move |conn| {
            let mut statement = conn.prepare(&format!(
                "SELECT {SESSION} FROM sessions WHERE account_id = ?1 AND ended_at IS NULL \
                 ORDER BY created_at"
            ))?;
            let rows = statement
                .query_map([account.to_string()], session_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(to_session).collect()
        })
        .await
    }

    async fn sessions_of(&self, account: Uuid) -> Result<Vec<Session>, Error> {
        self.call(move |conn| {
            let mut statement = conn.prepare(&format!(
                "SELECT {SESSION} FROM sessions WHERE account_id = ?1 ORDER BY created_at"
            ))?;
            let rows = statement
                .query_map([account.to_string()], session_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(to_session).collect()
        })
        .await
    }

    async fn token_sessions_of(&self, subject: &str) -> Result<Vec<Session>, Error> {
        let subject = subject.to_owned();
        self.call(move |conn| {
            let mut statement = conn.prepare(&format!(
                "SELECT {SESSION} FROM sessions WHERE json_extract(claims, '$.sub') = ?1 \
                 ORDER BY created_at"
            ))?;
            let rows = statement
                .query_map([subject], session_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(to_session).collect()
        })
        .await
    }

    async fn add_link(&self, l: &SignInLink) -> Result<(), Error> {
        let l = l.clone();
        self.call(move |conn| {
            conn.execute(
                &format!("INSERT INTO sign_in_links ({LINK}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![
                    l.token_hash,
                    l.account_id.to_string(),
                    ts(l.created_at),
                    l.created_by,
                    ts(l.expires_at),
                    l.used_at.map(ts),
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn use_link(&self, token_hash: &str, at: DateTime<Utc>) -> Result<LinkUse, Error> {
        let token_hash = token_hash.to_owned();
        self.call(move |conn| {
            let used = conn
                .query_row(
                    &format!(
                        "UPDATE sign_in_links SET used_at = ?2 \
                         WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 \
                         RETURNING {LINK}"
                    ),
                    params![token_hash, ts(at)],
                    link_row,
                )
                .optional()?;
            if let Some(row) = used {
                return Ok(LinkUse::Used(to_link(row)?));
            }
            let row = conn
                .query_row(
                    &format!("SELECT {LINK} FROM sign_in_links WHERE token_hash = ?1"),
                    [token_hash],
                    link_row,
                )
                .optional()?;
            Ok(match row.map(to_link).transpose()? {
                None => LinkUse::Unknown,
                Some(link) if link.used_at.is_some() => LinkUse::AlreadyUsed(link),
                Some(link) => LinkUse::Expired(link),
            })
        })
        .await
    }

    async fn links_of(&self, account: Uuid) -> Result<Vec<SignInLink>, Error> {
        self.call(move |conn| {
            let mut statement = conn.prepare(&format!(
                "SELECT {LINK} FROM sign_in_links WHERE account_id = ?1 ORDER BY created_at"
            ))?;
            let rows = statement
                .query_map([account.to_string()], link_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(to_link).collect()
        })
        .await
    }

    async fn add_flow(&self, f: &SignInFlow) -> Result<(), Error> {
        let f = f.clone();
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO sign_in_flows (id_hash, pending, next, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    f.id_hash,
                    f.pending,
                    f.next,
                    ts(f.created_at),
                    ts(f.expires_at)
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn take_flow(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SignInFlow>, Error> {
        let id_hash = id_hash.to_owned();
        self.call(move |conn| {
            let row: Option<(String, String, Option<String>, String, String)> = conn
                .query_row(
                    "DELETE FROM sign_in_flows WHERE id_hash = ?1 \
                     RETURNING id_hash, pending, next, created_at, expires_at",
                    [id_hash],
                    |row| row.try_into(),
                )
                .optional()?;
            conn.execute(
                "DELETE FROM sign_in_flows WHERE expires_at <= ?1",
                [ts(now)],
            )?;
            row.map(|(id_hash, pending, next, created_at, expires_at)| {
                Ok(SignInFlow {
                    id_hash,
                    pending,
                    next,
                    created_at: parse_ts(&created_at)?,
                    expires_at: parse_ts(&expires_at)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn add_service_account(&self, s: &ServiceAccount) -> Result<(), Error> {
        let s = s.clone();
        self.call(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO service_accounts ({SERVICE}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    s.id.to_string(),
                    s.name,
                    s.token_hash,
                    serde_json::Value::from(s.grants.clone()).to_string(),
                    ts(s.created_at),
                    s.created_by,
                    s.revoked_at.map(ts),
                    s.revoked_by,
                ],
            )
            .map_err(unique)?;
            Ok(())
        })
        .await
    }

    async fn service_account_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<ServiceAccount>, Error> {
        let token_hash = token_hash.to_owned();
        self.call(move |conn| {
            conn.query_row(
                &format!("SELECT {SERVICE} FROM service_accounts WHERE token_hash = ?1"),
                [token_hash],
                service_row,
            )
            .optional()?
            .map(to_service)
            .transpose()
        })
        .await
    }

    async fn service_accounts(&self) -> Result<Vec<ServiceAccount>, Error> {
        self.call(|conn| {
            let mut statement = conn.prepare(&format!(
                "SELECT {SERVICE} FROM service_accounts ORDER BY name, id"
            ))?;
            let rows = statement
                .query_map([], service_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(to_service).collect()
        })
        .await
    }

    async fn revoke_service_account(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        by: &str,
    ) -> Result<bool, Error> {
        let by = by.to_owned();
        self.call(move |conn| {
            Ok(conn.execute(
                "UPDATE service_accounts SET revoked_at = ?2, revoked_by = ?3 \
                 WHERE id = ?1 AND revoked_at IS NULL",
                params![id.to_string(), ts(at), by],
            )? > 0)
        })
        .await
    }
}
