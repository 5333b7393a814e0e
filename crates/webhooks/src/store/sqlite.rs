//! Subscriptions and deliveries in the embedded file, beside the log: the
//! same tables as PostgreSQL, on a connection of our own (WAL mode).

use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use trellis_eventstore::Checkpoint;
use trellis_eventstore::sqlite::text::time as ts;
use trellis_eventstore::sqlite::{ComponentConnection, Migrations};
use uuid::Uuid;

use super::{
    Attempt, AttemptOutcome, Backlog, Bodies, Claimed, Delivery, DeliveryStatus, Disabled,
    LEADER_ASSIGNED, NewDelivery, Replay, Secret, Subscription, WebhookStore, disabled_error,
    status_of, to_i64, to_u16, to_u32, to_u64,
};
use crate::Error;

/// The webhook tables' migrations (`webhook_migrations`).
pub const MIGRATIONS: Migrations = Migrations {
    component: "webhook",
    dir: "crates/webhooks/migrations/sqlite",
    steps: &[
        (
            1,
            "webhooks",
            include_str!("../../migrations/sqlite/0001_webhooks.sql"),
        ),
        (
            2,
            "pause",
            include_str!("../../migrations/sqlite/0002_pause.sql"),
        ),
        (
            3,
            "disable",
            include_str!("../../migrations/sqlite/0003_disable.sql"),
        ),
        (
            4,
            "traceparent",
            include_str!("../../migrations/sqlite/0004_traceparent.sql"),
        ),
    ],
};

/// Subscriptions and deliveries in the embedded file.
#[derive(Debug, Clone)]
pub struct SqliteWebhookStore {
    conn: ComponentConnection,
}

impl SqliteWebhookStore {
    /// Opens the embedded store's file (`SqliteStore::path`) and applies the
    /// webhook migrations.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let conn = ComponentConnection::open(path, MIGRATIONS).await?;
        Ok(SqliteWebhookStore { conn })
    }
}

fn parse_ts(text: &str) -> Result<DateTime<Utc>, Error> {
    trellis_eventstore::sqlite::text::parse_time(text).map_err(Error::Database)
}

fn parse_uuid(text: &str) -> Result<Uuid, Error> {
    trellis_eventstore::sqlite::text::parse_id(text).map_err(Error::Database)
}

fn strings(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn json_strings(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

const SUBSCRIPTION_COLUMNS: &str = "id, url, event_types, categories, secret, start_tx, \
    start_position, created_at, created_by";
/// What is read of a subscription: what is written, whether it is paused,
/// and whether it is disabled.
const SUBSCRIPTION_READ: &str = "id, url, event_types, categories, secret, start_tx, \
    start_position, created_at, created_by, paused_at, disabled_at, disabled_reason";

type SubscriptionRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A row of [`SUBSCRIPTION_READ`], column by column.
fn subscription_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SubscriptionRow> {
    row.try_into()
}

fn to_subscription(
    (
        id,
        url,
        types,
        categories,
        secret,
        tx,
        position,
        created_at,
        created_by,
        paused_at,
        disabled_at,
        disabled_reason,
    ): SubscriptionRow,
) -> Result<Subscription, Error> {
    Ok(Subscription {
        id: parse_uuid(&id)?,
        url,
        event_types: strings(&types),
        categories: strings(&categories),
        secret: Secret::new(secret),
        start: Checkpoint {
            tx: to_u64(tx),
            position: to_u64(position),
        },
        created_at: parse_ts(&created_at)?,
        created_by,
        paused_at: paused_at.as_deref().map(parse_ts).transpose()?,
        disabled: match disabled_at {
            Some(at) => Some(Disabled {
                at: parse_ts(&at)?,
                reason: disabled_reason.unwrap_or_default(),
            }),
            None => None,
        },
    })
}

const DELIVERY_COLUMNS: &str = "id, subscription_id, event_id, event_type, stream_id, \
    global_position, status, attempts, replays, next_attempt_at, last_status_code, last_error, \
    created_at, delivered_at";

struct DeliveryRow {
    id: String,
    subscription_id: String,
    event_id: String,
    event_type: String,
    stream_id: String,
    global_position: i64,
    status: String,
    attempts: i64,
    replays: i64,
    next_attempt_at: String,
    last_status_code: Option<i64>,
    last_error: Option<String>,
    created_at: String,
    delivered_at: Option<String>,
}

fn delivery_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: row.get(0)?,
        subscription_id: row.get(1)?,
        event_id: row.get(2)?,
        event_type: row.get(3)?,
        stream_id: row.get(4)?,
        global_position: row.get(5)?,
        status: row.get(6)?,
        attempts: row.get(7)?,
        replays: row.get(8)?,
        next_attempt_at: row.get(9)?,
        last_status_code: row.get(10)?,
        last_error: row.get(11)?,
        created_at: row.get(12)?,
        delivered_at: row.get(13)?,
    })
}

fn to_delivery(conn: &Connection, r: DeliveryRow) -> Result<Delivery, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT attempted_at, status_code, error, duration_ms FROM webhook_attempts \
         WHERE delivery_id = ?1 ORDER BY id",
    )?;
    let history = stmt
        .query_map([&r.id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<i64>>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|(at, code, error, duration)| {
            Ok(Attempt {
                attempted_at: parse_ts(&at)?,
                status_code: code.map(to_u16),
                error,
                duration_ms: to_u32(duration),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Delivery {
        id: parse_uuid(&r.id)?,
        subscription_id: parse_uuid(&r.subscription_id)?,
        event_id: parse_uuid(&r.event_id)?,
        event_type: r.event_type,
        stream_id: r.stream_id,
        global_position: to_u64(r.global_position),
        status: status_of(&r.status)?,
        attempts: to_u32(r.attempts),
        replays: to_u32(r.replays),
        next_attempt_at: parse_ts(&r.next_attempt_at)?,
        last_status_code: r.last_status_code.map(to_u16),
        last_error: r.last_error,
        created_at: parse_ts(&r.created_at)?,
        delivered_at: r.delivered_at.as_deref().map(parse_ts).transpose()?,
        history,
    })
}

fn load_delivery(conn: &Connection, id: &str) -> Result<Option<Delivery>, Error> {
    let row = conn
        .query_row(
            &format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = ?1"),
            [id],
            delivery_row,
        )
        .optional()?;
    row.map(|r| to_delivery(conn, r)).transpose()
}

#[async_trait]
impl WebhookStore for SqliteWebhookStore {
    async fn create_subscription(&self, s: &Subscription) -> Result<(), Error> {
        let s = s.clone();
        self.conn
            .call(move |conn| {
                conn.execute(
                    &format!(
                        "INSERT INTO webhook_subscriptions ({SUBSCRIPTION_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                    ),
                    params![
                        s.id.to_string(),
                        s.url,
                        json_strings(&s.event_types),
                        json_strings(&s.categories),
                        s.secret.as_str(),
                        to_i64(s.start.tx),
                        to_i64(s.start.position),
                        ts(s.created_at),
                        s.created_by,
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, Error> {
        self.conn
            .call(|conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {SUBSCRIPTION_READ} FROM webhook_subscriptions \
                 WHERE deleted_at IS NULL ORDER BY created_at, id"
                ))?;
                let rows = stmt
                    .query_map([], subscription_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                rows.into_iter().map(to_subscription).collect()
            })
            .await
    }

    async fn subscription(&self, id: Uuid) -> Result<Option<Subscription>, Error> {
        self.conn
            .call(move |conn| {
                conn.query_row(
                    &format!(
                        "SELECT {SUBSCRIPTION_READ} FROM webhook_subscriptions \
                     WHERE id = ?1 AND deleted_at IS NULL"
                    ),
                    [id.to_string()],
                    subscription_row,
                )
                .optional()?
                .map(to_subscription)
                .transpose()
            })
            .await
    }

    async fn set_paused(&self, id: Uuid, paused_at: Option<DateTime<Utc>>) -> Result<bool, Error> {
        self.conn
            .call(move |conn| {
                let changed = conn.execute(
                    "UPDATE webhook_subscriptions SET paused_at = ?2, \
                         disabled_at = CASE WHEN ?2 IS NULL THEN NULL ELSE disabled_at END, \
                         disabled_reason = CASE WHEN ?2 IS NULL THEN NULL ELSE disabled_reason END \
                     WHERE id = ?1 AND deleted_at IS NULL",
                    params![id.to_string(), paused_at.map(ts)],
                )?;
                Ok(changed == 1)
            })
            .await
    }

    async fn delete_subscription(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, Error> {
        self.conn
            .call(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let deleted = tx.execute(
                    "UPDATE webhook_subscriptions SET deleted_at = ?2 \
                 WHERE id = ?1 AND deleted_at IS NULL",
                    params![id.to_string(), ts(at)],
                )?;
                if deleted > 0 {
                    tx.execute(
                        "UPDATE webhook_deliveries SET status = 'dead', \
                         last_error = 'the subscription was deleted' \
                     WHERE subscription_id = ?1 AND status = 'pending'",
                        [id.to_string()],
                    )?;
                }
                tx.commit()?;
                Ok(deleted > 0)
            })
            .await
    }

    async fn rewrite_bodies(
        &self,
        of: &Bodies,
        rewrite: for<'b> fn(&'b str) -> Option<String>,
    ) -> Result<u64, Error> {
        let (sql, params) = match of {
            Bodies::OfStream(stream) => (
                "SELECT id, body FROM webhook_deliveries WHERE stream_id = ?1",
                vec![stream.clone()],
            ),
            Bodies::LeaderAssigned(leader) => (
                "SELECT id, body FROM webhook_deliveries \
                 WHERE event_type = ?1 AND json_extract(body, '$.payload.leader_id') = ?2",
                vec![LEADER_ASSIGNED.to_owned(), leader.to_string()],
            ),
        };
        self.conn
            .call(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let rows: Vec<(String, String)> = tx
                    .prepare(sql)?
                    .query_map(rusqlite::params_from_iter(&params), |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?
                    .collect::<Result<_, _>>()?;
                let mut rewritten = 0;
                for (id, body) in rows {
                    if let Some(body) = rewrite(&body) {
                        tx.execute(
                            "UPDATE webhook_deliveries SET body = ?2 WHERE id = ?1",
                            params![id, body],
                        )?;
                        rewritten += 1;
                    }
                }
                tx.commit()?;
                if rewritten > 0 {
                    trellis_eventstore::sqlite::empty_the_wal(conn)?;
                }
                Ok(rewritten)
            })
            .await
    }

    async fn enqueue(&self, deliveries: &[NewDelivery]) -> Result<u64, Error> {
        if deliveries.is_empty() {
            return Ok(0);
        }
        let deliveries = deliveries.to_vec();
        self.conn
            .call(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut inserted = 0u64;
                {
                    let mut stmt = tx.prepare_cached(
                    "INSERT INTO webhook_deliveries (id, subscription_id, event_id, event_type, \
                         stream_id, global_position, body, status, next_attempt_at, created_at, \
                         traceparent) \
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8, ?9 \
                      WHERE EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.id = ?2 \
                                       AND s.deleted_at IS NULL AND s.disabled_at IS NULL) \
                     ON CONFLICT (subscription_id, event_id) DO NOTHING",
                )?;
                    for d in &deliveries {
                        inserted += stmt.execute(params![
                            d.id.to_string(),
                            d.subscription_id.to_string(),
                            d.event_id.to_string(),
                            d.event_type,
                            d.stream_id,
                            to_i64(d.global_position),
                            d.body,
                            ts(d.created_at),
                            d.traceparent,
                        ])? as u64;
                    }
                }
                tx.commit()?;
                Ok(inserted)
            })
            .await
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max: usize,
    ) -> Result<Vec<Claimed>, Error> {
        let limit = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
        self.conn
            .call(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let rows = {
                    let mut stmt = tx.prepare_cached(
                        "SELECT d.id, d.event_id, d.attempts, d.body, s.url, s.secret, \
                            d.subscription_id, d.traceparent \
                       FROM webhook_deliveries d \
                       JOIN webhook_subscriptions s ON s.id = d.subscription_id \
                      WHERE d.status = 'pending' AND d.next_attempt_at <= ?1 \
                        AND s.deleted_at IS NULL AND s.paused_at IS NULL \
                        AND s.disabled_at IS NULL \
                      ORDER BY d.next_attempt_at, d.global_position LIMIT ?2",
                    )?;
                    stmt.query_map(params![ts(now), limit], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, i64>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, String>(4)?,
                            row.get::<_, String>(5)?,
                            row.get::<_, String>(6)?,
                            row.get::<_, Option<String>>(7)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?
                };
                let mut claimed = Vec::with_capacity(rows.len());
                {
                    let mut lease = tx.prepare_cached(
                        "UPDATE webhook_deliveries SET next_attempt_at = ?2 WHERE id = ?1",
                    )?;
                    for (id, event_id, attempts, body, url, secret, subscription_id, traceparent) in
                        rows
                    {
                        lease.execute(params![id, ts(lease_until)])?;
                        claimed.push(Claimed {
                            id: parse_uuid(&id)?,
                            subscription_id: parse_uuid(&subscription_id)?,
                            event_id: parse_uuid(&event_id)?,
                            attempts: to_u32(attempts),
                            body,
                            traceparent,
                            url,
                            secret: Secret::new(secret),
                        });
                    }
                }
                tx.commit()?;
                Ok(claimed)
            })
            .await
    }

    async fn record_attempt(
        &self,
        delivery_id: Uuid,
        outcome: &AttemptOutcome,
    ) -> Result<(), Error> {
        let outcome = outcome.clone();
        self.conn
            .call(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let a = &outcome.attempt;
                let id = delivery_id.to_string();
                tx.execute(
                    "INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, error, \
                     duration_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        id,
                        ts(a.attempted_at),
                        a.status_code,
                        a.error,
                        a.duration_ms
                    ],
                )?;
                if let Some(reason) = &outcome.disable {
                    // The first reason stays when several attempts are told at once.
                    tx.execute(
                        "UPDATE webhook_subscriptions \
                            SET disabled_at = coalesce(disabled_at, ?2), \
                                disabled_reason = coalesce(disabled_reason, ?3) \
                          WHERE id = (SELECT subscription_id FROM webhook_deliveries WHERE id = ?1) \
                            AND deleted_at IS NULL",
                        params![id, ts(a.attempted_at), reason],
                    )?;
                    tx.execute(
                        "UPDATE webhook_deliveries SET status = 'dead', last_error = ?2 \
                          WHERE subscription_id = \
                                (SELECT subscription_id FROM webhook_deliveries WHERE id = ?1) \
                            AND id <> ?1 AND status = 'pending'",
                        params![id, disabled_error(reason)],
                    )?;
                }
                let delivered_at =
                    (outcome.status == DeliveryStatus::Delivered).then(|| ts(a.attempted_at));
                // Left pending under a subscription disabled meanwhile (by
                // another attempt's 410): dead, as the others were.
                tx.execute(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, \
                     status = CASE WHEN ?2 = 'pending' AND EXISTS ( \
                                  SELECT 1 FROM webhook_subscriptions s \
                                   WHERE s.id = webhook_deliveries.subscription_id \
                                     AND s.disabled_at IS NOT NULL) \
                              THEN 'dead' ELSE ?2 END, \
                     next_attempt_at = ?3, last_status_code = ?4, last_error = ?5, \
                     delivered_at = coalesce(?6, delivered_at) \
                 WHERE id = ?1",
                    params![
                        id,
                        outcome.status.as_str(),
                        ts(outcome.next_attempt_at),
                        a.status_code,
                        a.error,
                        delivered_at,
                    ],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, Error> {
        self.conn
            .call(|conn| {
                let next: Option<String> = conn.query_row(
                    "SELECT min(d.next_attempt_at) FROM webhook_deliveries d \
                       JOIN webhook_subscriptions s ON s.id = d.subscription_id \
                      WHERE d.status = 'pending' AND s.deleted_at IS NULL AND s.paused_at IS NULL \
                        AND s.disabled_at IS NULL",
                    [],
                    |row| row.get(0),
                )?;
                next.as_deref().map(parse_ts).transpose()
            })
            .await
    }

    async fn backlog(&self) -> Result<Backlog, Error> {
        self.conn
            .call(|conn| {
                let (pending, dead): (i64, i64) = conn.query_row(
                    "SELECT count(*) FILTER (WHERE d.status = 'pending'), \
                            count(*) FILTER (WHERE d.status = 'dead') \
                       FROM webhook_deliveries d \
                       JOIN webhook_subscriptions s ON s.id = d.subscription_id \
                      WHERE d.status IN ('pending', 'dead') AND s.deleted_at IS NULL",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )?;
                Ok(Backlog {
                    pending: to_u64(pending),
                    dead: to_u64(dead),
                })
            })
            .await
    }

    async fn deliveries(
        &self,
        subscription_id: Uuid,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.conn
            .call(move |conn| {
                let rows = {
                    let mut stmt = conn.prepare_cached(&format!(
                        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
                     WHERE subscription_id = ?1 AND (?2 IS NULL OR status = ?2) \
                     ORDER BY global_position DESC, created_at DESC LIMIT ?3"
                    ))?;
                    stmt.query_map(
                        params![
                            subscription_id.to_string(),
                            status.map(DeliveryStatus::as_str),
                            limit
                        ],
                        delivery_row,
                    )?
                    .collect::<Result<Vec<_>, _>>()?
                };
                rows.into_iter().map(|r| to_delivery(conn, r)).collect()
            })
            .await
    }

    async fn delivery(&self, id: Uuid) -> Result<Option<Delivery>, Error> {
        self.conn
            .call(move |conn| load_delivery(conn, &id.to_string()))
            .await
    }

    async fn replay(&self, id: Uuid, now: DateTime<Utc>) -> Result<Replay, Error> {
        self.conn
            .call(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let id = id.to_string();
                let row = tx
                    .query_row(
                        "SELECT d.status, s.deleted_at IS NOT NULL FROM webhook_deliveries d \
                       JOIN webhook_subscriptions s ON s.id = d.subscription_id \
                      WHERE d.id = ?1",
                        [&id],
                        |row| Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?)),
                    )
                    .optional()?;
                let Some((status, deleted)) = row else {
                    return Ok(Replay::NotFound);
                };
                if deleted {
                    return Ok(Replay::SubscriptionDeleted);
                }
                if status_of(&status)? == DeliveryStatus::Pending {
                    return Ok(Replay::AlreadyPending);
                }
                tx.execute(
                    "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, \
                     replays = replays + 1, next_attempt_at = ?2 WHERE id = ?1",
                    params![id, ts(now)],
                )?;
                let delivery = load_delivery(&tx, &id)?;
                tx.commit()?;
                Ok(delivery.map_or(Replay::NotFound, |d| Replay::Requeued(Box::new(d))))
            })
            .await
    }
}
