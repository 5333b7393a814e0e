//! Subscriptions and deliveries in PostgreSQL, schema `trellis`, beside the log.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};
use tokio_postgres::Row;
use trellis_eventstore::Checkpoint;
use trellis_eventstore::postgres::Migrations;
use uuid::Uuid;

use super::{
    Attempt, AttemptOutcome, Backlog, Bodies, Claimed, Delivery, DeliveryStatus, Disabled,
    LEADER_ASSIGNED, NewDelivery, Replay, Secret, Subscription, WebhookStore, disabled_error,
    status_of, to_i64, to_u16, to_u32, to_u64,
};
use crate::Error;

/// The webhook tables' migrations (`trellis.webhook_migrations`).
pub const MIGRATIONS: Migrations = Migrations {
    component: "webhook",
    dir: "crates/webhooks/migrations/postgres",
    steps: &[
        (
            1,
            "webhooks",
            include_str!("../../migrations/postgres/0001_webhooks.sql"),
        ),
        (
            2,
            "pause",
            include_str!("../../migrations/postgres/0002_pause.sql"),
        ),
        (
            3,
            "disable",
            include_str!("../../migrations/postgres/0003_disable.sql"),
        ),
        (
            4,
            "traceparent",
            include_str!("../../migrations/postgres/0004_traceparent.sql"),
        ),
    ],
};

/// Subscriptions and deliveries in the log's PostgreSQL database.
#[derive(Clone)]
pub struct PostgresWebhookStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresWebhookStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresWebhookStore")
            .finish_non_exhaustive()
    }
}

impl PostgresWebhookStore {
    /// Uses the event store's pool (`PostgresStore::pool`) and checks the
    /// webhook migrations (`trellis_eventstore::postgres::prepare`).
    pub async fn new(pool: Pool) -> Result<Self, Error> {
        let mut client = pool.get().await?;
        trellis_eventstore::postgres::prepare(&mut client, &MIGRATIONS)
            .await
            .map_err(|e| Error::Database(e.to_string()))?;
        Ok(PostgresWebhookStore { pool })
    }

    async fn client(&self) -> Result<Object, Error> {
        Ok(self.pool.get().await?)
    }
}

const SUBSCRIPTION_COLUMNS: &str = "id, url, event_types, categories, secret, start_tx, \
    start_position, created_at, created_by";
/// What is read of a subscription: what is written, whether it is paused,
/// and whether it is disabled.
const SUBSCRIPTION_READ: &str = "id, url, event_types, categories, secret, start_tx, \
    start_position, created_at, created_by, paused_at, disabled_at, disabled_reason";

fn strings(value: serde_json::Value) -> Vec<String> {
    serde_json::from_value(value).unwrap_or_default()
}

fn subscription_of(row: &Row) -> Subscription {
    Subscription {
        id: row.get(0),
        url: row.get(1),
        event_types: strings(row.get(2)),
        categories: strings(row.get(3)),
        secret: Secret::new(row.get::<_, String>(4)),
        start: Checkpoint {
            tx: to_u64(row.get(5)),
            position: to_u64(row.get(6)),
        },
        created_at: row.get(7),
        created_by: row.get(8),
        paused_at: row.get(9),
        disabled: row.get::<_, Option<DateTime<Utc>>>(10).map(|at| Disabled {
            at,
            reason: row.get::<_, Option<String>>(11).unwrap_or_default(),
        }),
    }
}

const DELIVERY_COLUMNS: &str = "id, subscription_id, event_id, event_type, stream_id, \
    global_position, status, attempts, replays, next_attempt_at, last_status_code, last_error, \
    created_at, delivered_at";

fn delivery_of(row: &Row) -> Result<Delivery, Error> {
    Ok(Delivery {
        id: row.get(0),
        subscription_id: row.get(1),
        event_id: row.get(2),
        event_type: row.get(3),
        stream_id: row.get(4),
        global_position: to_u64(row.get(5)),
        status: status_of(row.get(6))?,
        attempts: to_u32(i64::from(row.get::<_, i32>(7))),
        replays: to_u32(i64::from(row.get::<_, i32>(8))),
        next_attempt_at: row.get(9),
        last_status_code: row.get::<_, Option<i32>>(10).map(|c| to_u16(i64::from(c))),
        last_error: row.get(11),
        created_at: row.get(12),
        delivered_at: row.get(13),
        history: Vec::new(),
    })
}

async fn with_history(
    client: &Object,
    mut deliveries: Vec<Delivery>,
) -> Result<Vec<Delivery>, Error> {
    if deliveries.is_empty() {
        return Ok(deliveries);
    }
    let ids: Vec<Uuid> = deliveries.iter().map(|d| d.id).collect();
    let rows = client
        .query(
            "SELECT delivery_id, attempted_at, status_code, error, duration_ms \
             FROM trellis.webhook_attempts WHERE delivery_id = ANY($1) ORDER BY id",
            &[&ids],
        )
        .await?;
    let mut by_delivery: HashMap<Uuid, Vec<Attempt>> = HashMap::new();
    for row in rows {
        by_delivery.entry(row.get(0)).or_default().push(Attempt {
            attempted_at: row.get(1),
            status_code: row.get::<_, Option<i32>>(2).map(|c| to_u16(i64::from(c))),
            error: row.get(3),
            duration_ms: to_u32(i64::from(row.get::<_, i32>(4))),
        });
    }
    for delivery in &mut deliveries {
        delivery.history = by_delivery.remove(&delivery.id).unwrap_or_default();
    }
    Ok(deliveries)
}

fn json_strings(items: &[String]) -> serde_json::Value {
    serde_json::Value::from(items.to_vec())
}

#[async_trait]
impl WebhookStore for PostgresWebhookStore {
    async fn create_subscription(&self, s: &Subscription) -> Result<(), Error> {
        let client = self.client().await?;
        client
            .execute(
                &format!(
                    "INSERT INTO trellis.webhook_subscriptions ({SUBSCRIPTION_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ),
                &[
                    &s.id,
                    &s.url,
                    &json_strings(&s.event_types),
                    &json_strings(&s.categories),
                    &s.secret.as_str(),
                    &to_i64(s.start.tx),
                    &to_i64(s.start.position),
                    &s.created_at,
                    &s.created_by,
                ],
            )
            .await?;
        Ok(())
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, Error> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {SUBSCRIPTION_READ} FROM trellis.webhook_subscriptions \
                     WHERE deleted_at IS NULL ORDER BY created_at, id"
                ),
                &[],
            )
            .await?;
        Ok(rows.iter().map(subscription_of).collect())
    }

    async fn subscription(&self, id: Uuid) -> Result<Option<Subscription>, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {SUBSCRIPTION_READ} FROM trellis.webhook_subscriptions \
                     WHERE id = $1 AND deleted_at IS NULL"
                ),
                &[&id],
            )
            .await?;
        Ok(row.as_ref().map(subscription_of))
    }

    async fn set_paused(&self, id: Uuid, paused_at: Option<DateTime<Utc>>) -> Result<bool, Error> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE trellis.webhook_subscriptions SET paused_at = $2, \
                     disabled_at = CASE WHEN $2::timestamptz IS NULL THEN NULL ELSE disabled_at END, \
                     disabled_reason = CASE WHEN $2::timestamptz IS NULL THEN NULL ELSE disabled_reason END \
                 WHERE id = $1 AND deleted_at IS NULL",
                &[&id, &paused_at],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn delete_subscription(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, Error> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let deleted = tx
            .execute(
                "UPDATE trellis.webhook_subscriptions SET deleted_at = $2 \
                 WHERE id = $1 AND deleted_at IS NULL",
                &[&id, &at],
            )
            .await?;
        if deleted > 0 {
            tx.execute(
                "UPDATE trellis.webhook_deliveries SET status = 'dead', \
                     last_error = 'the subscription was deleted' \
                 WHERE subscription_id = $1 AND status = 'pending'",
                &[&id],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn rewrite_bodies(
        &self,
        of: &Bodies,
        rewrite: for<'b> fn(&'b str) -> Option<String>,
    ) -> Result<u64, Error> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let rows = match of {
            Bodies::OfStream(stream) => {
                tx.query(
                    "SELECT id, body FROM trellis.webhook_deliveries WHERE stream_id = $1 \
                     FOR UPDATE",
                    &[stream],
                )
                .await?
            }
            Bodies::LeaderAssigned(leader) => {
                tx.query(
                    "SELECT id, body FROM trellis.webhook_deliveries \
                     WHERE event_type = $1 AND body::jsonb -> 'payload' ->> 'leader_id' = $2 \
                     FOR UPDATE",
                    &[&LEADER_ASSIGNED, &leader.to_string()],
                )
                .await?
            }
        };
        let mut rewritten = 0;
        for row in rows {
            let id: Uuid = row.get(0);
            let body: &str = row.get(1);
            if let Some(body) = rewrite(body) {
                tx.execute(
                    "UPDATE trellis.webhook_deliveries SET body = $2 WHERE id = $1",
                    &[&id, &body],
                )
                .await?;
                rewritten += 1;
            }
        }
        tx.commit().await?;
        Ok(rewritten)
    }

    async fn enqueue(&self, deliveries: &[NewDelivery]) -> Result<u64, Error> {
        if deliveries.is_empty() {
            return Ok(0);
        }
        let client = self.client().await?;
        let mut ids = Vec::with_capacity(deliveries.len());
        let mut subscriptions = Vec::with_capacity(deliveries.len());
        let mut events = Vec::with_capacity(deliveries.len());
        let mut types = Vec::with_capacity(deliveries.len());
        let mut streams = Vec::with_capacity(deliveries.len());
        let mut positions = Vec::with_capacity(deliveries.len());
        let mut bodies = Vec::with_capacity(deliveries.len());
        let mut traceparents = Vec::with_capacity(deliveries.len());
        let mut created = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            ids.push(d.id);
            subscriptions.push(d.subscription_id);
            events.push(d.event_id);
            types.push(d.event_type.as_str());
            streams.push(d.stream_id.as_str());
            positions.push(to_i64(d.global_position));
            bodies.push(d.body.as_str());
            traceparents.push(d.traceparent.as_deref());
            created.push(d.created_at);
        }
        let inserted = client
            .execute(
                "INSERT INTO trellis.webhook_deliveries (id, subscription_id, event_id, event_type, \
                     stream_id, global_position, body, status, next_attempt_at, created_at, \
                     traceparent) \
                 SELECT u.id, u.subscription_id, u.event_id, u.event_type, u.stream_id, \
                        u.global_position, u.body, 'pending', u.created_at, u.created_at, \
                        u.traceparent \
                   FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], \
                               $6::bigint[], $7::text[], $8::timestamptz[], $9::text[]) \
                        AS u(id, subscription_id, event_id, event_type, stream_id, \
                             global_position, body, created_at, traceparent) \
                   JOIN trellis.webhook_subscriptions s ON s.id = u.subscription_id \
                  WHERE s.deleted_at IS NULL AND s.disabled_at IS NULL \
                 ON CONFLICT (subscription_id, event_id) DO NOTHING",
                &[
                    &ids,
                    &subscriptions,
                    &events,
                    &types,
                    &streams,
                    &positions,
                    &bodies,
                    &created,
                    &traceparents,
                ],
            )
            .await?;
        Ok(inserted)
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max: usize,
    ) -> Result<Vec<Claimed>, Error> {
        let client = self.client().await?;
        let limit = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "WITH due AS ( \
                     SELECT d.id FROM trellis.webhook_deliveries d \
                       JOIN trellis.webhook_subscriptions s ON s.id = d.subscription_id \
                      WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
                        AND s.deleted_at IS NULL AND s.paused_at IS NULL \
                        AND s.disabled_at IS NULL \
                      ORDER BY d.next_attempt_at, d.global_position \
                      LIMIT $3 \
                        FOR UPDATE OF d SKIP LOCKED) \
                 UPDATE trellis.webhook_deliveries d SET next_attempt_at = $2 \
                   FROM due, trellis.webhook_subscriptions s \
                  WHERE d.id = due.id AND s.id = d.subscription_id \
                 RETURNING d.id, d.event_id, d.attempts, d.body, s.url, s.secret, \
                           d.subscription_id, d.traceparent",
                &[&now, &lease_until, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Claimed {
                id: r.get(0),
                event_id: r.get(1),
                attempts: to_u32(i64::from(r.get::<_, i32>(2))),
                body: r.get(3),
                url: r.get(4),
                secret: Secret::new(r.get::<_, String>(5)),
                subscription_id: r.get(6),
                traceparent: r.get(7),
            })
            .collect())
    }

    async fn record_attempt(
        &self,
        delivery_id: Uuid,
        outcome: &AttemptOutcome,
    ) -> Result<(), Error> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let a = &outcome.attempt;
        let code = a.status_code.map(i32::from);
        let duration = i32::try_from(a.duration_ms).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO trellis.webhook_attempts (delivery_id, attempted_at, status_code, error, \
                 duration_ms) VALUES ($1, $2, $3, $4, $5)",
            &[&delivery_id, &a.attempted_at, &code, &a.error, &duration],
        )
        .await?;
        if let Some(reason) = &outcome.disable {
            // The first reason stays when several attempts are told at once.
            tx.execute(
                "UPDATE trellis.webhook_subscriptions s \
                    SET disabled_at = coalesce(s.disabled_at, $2), \
                        disabled_reason = coalesce(s.disabled_reason, $3) \
                   FROM trellis.webhook_deliveries d \
                  WHERE d.id = $1 AND s.id = d.subscription_id AND s.deleted_at IS NULL",
                &[&delivery_id, &a.attempted_at, reason],
            )
            .await?;
            tx.execute(
                "UPDATE trellis.webhook_deliveries o SET status = 'dead', last_error = $2 \
                   FROM trellis.webhook_deliveries d \
                  WHERE d.id = $1 AND o.subscription_id = d.subscription_id \
                    AND o.id <> d.id AND o.status = 'pending'",
                &[&delivery_id, &disabled_error(reason)],
            )
            .await?;
        }
        let delivered_at = (outcome.status == DeliveryStatus::Delivered).then_some(a.attempted_at);
        // Left pending under a subscription disabled meanwhile (by another
        // attempt's 410): dead, as the others were.
        tx.execute(
            "UPDATE trellis.webhook_deliveries d SET attempts = attempts + 1, \
                 status = CASE WHEN $2::text = 'pending' AND EXISTS ( \
                              SELECT 1 FROM trellis.webhook_subscriptions s \
                               WHERE s.id = d.subscription_id AND s.disabled_at IS NOT NULL) \
                          THEN 'dead' ELSE $2::text END, \
                 next_attempt_at = $3, last_status_code = $4, last_error = $5, \
                 delivered_at = coalesce($6, delivered_at) \
             WHERE id = $1",
            &[
                &delivery_id,
                &outcome.status.as_str(),
                &outcome.next_attempt_at,
                &code,
                &a.error,
                &delivered_at,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, Error> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT min(d.next_attempt_at) FROM trellis.webhook_deliveries d \
                   JOIN trellis.webhook_subscriptions s ON s.id = d.subscription_id \
                  WHERE d.status = 'pending' AND s.deleted_at IS NULL AND s.paused_at IS NULL \
                    AND s.disabled_at IS NULL",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    async fn backlog(&self) -> Result<Backlog, Error> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE d.status = 'pending'), \
                        count(*) FILTER (WHERE d.status = 'dead') \
                   FROM trellis.webhook_deliveries d \
                   JOIN trellis.webhook_subscriptions s ON s.id = d.subscription_id \
                  WHERE d.status IN ('pending', 'dead') AND s.deleted_at IS NULL",
                &[],
            )
            .await?;
        Ok(Backlog {
            pending: to_u64(row.get(0)),
            dead: to_u64(row.get(1)),
        })
    }

    async fn deliveries(
        &self,
        subscription_id: Uuid,
        status: Option<DeliveryStatus>,
        limit: usize,
    ) -> Result<Vec<Delivery>, Error> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let status = status.map(DeliveryStatus::as_str);
        let rows = client
            .query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM trellis.webhook_deliveries \
                     WHERE subscription_id = $1 AND ($2::text IS NULL OR status = $2) \
                     ORDER BY global_position DESC, created_at DESC LIMIT $3"
                ),
                &[&subscription_id, &status, &limit],
            )
            .await?;
        let deliveries = rows
            .iter()
            .map(delivery_of)
            .collect::<Result<Vec<_>, _>>()?;
        with_history(&client, deliveries).await
    }

    async fn delivery(&self, id: Uuid) -> Result<Option<Delivery>, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {DELIVERY_COLUMNS} FROM trellis.webhook_deliveries WHERE id = $1"),
                &[&id],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let delivery = delivery_of(&row)?;
        Ok(with_history(&client, vec![delivery]).await?.pop())
    }

    async fn replay(&self, id: Uuid, now: DateTime<Utc>) -> Result<Replay, Error> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "SELECT d.status, s.deleted_at IS NOT NULL FROM trellis.webhook_deliveries d \
                   JOIN trellis.webhook_subscriptions s ON s.id = d.subscription_id \
                  WHERE d.id = $1 FOR UPDATE OF d",
                &[&id],
            )
            .await?;
        let Some(row) = row else {
            return Ok(Replay::NotFound);
        };
        if row.get::<_, bool>(1) {
            return Ok(Replay::SubscriptionDeleted);
        }
        if status_of(row.get(0))? == DeliveryStatus::Pending {
            return Ok(Replay::AlreadyPending);
        }
        tx.execute(
            "UPDATE trellis.webhook_deliveries SET status = 'pending', attempts = 0, \
                 replays = replays + 1, next_attempt_at = $2 WHERE id = $1",
            &[&id, &now],
        )
        .await?;
        tx.commit().await?;
        match self.delivery(id).await? {
            Some(d) => Ok(Replay::Requeued(Box::new(d))),
            None => Ok(Replay::NotFound),
        }
    }
}
