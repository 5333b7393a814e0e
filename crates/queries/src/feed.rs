//! The global feed, for auditors and services: every event in global order,
//! paged by checkpoint (`GET /v1/events?after=&limit=`), and the same as
//! Server-Sent Events (`GET /v1/events/stream`) that resume from
//! `Last-Event-ID`.
//!
//! A checkpoint is the text `tx.position` (see ADR 1): pass the `next` of a
//! page as the following page's `after`; every SSE event's `id` is the
//! checkpoint after it, so a reconnecting `EventSource` resumes exactly there,
//! without a duplicate and without a gap. Checkpoints of one backend mean
//! nothing to another.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use trellis_eventstore::{Checkpoint, Follower, RecordedEvent};
use trellis_http::problem::{ApiError, Problem};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access;
use crate::params::Params;
use crate::schemas::ReadErrors;
use crate::state::Reader;
use trellis_http::openapi::CommonErrors;

/// The largest page.
pub const MAX_LIMIT: u64 = 1_000;
/// Events read per round trip by the stream.
const STREAM_BATCH: usize = 500;

/// One event of the feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedEvent {
    /// Where a reader that has consumed this event stands: the next `after`.
    pub checkpoint: String,
    pub global_position: u64,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: u64,
    pub event_type: String,
    pub schema_version: u16,
    pub actor: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    /// The event as stored (its schema depends on `event_type` and `schema_version`).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<RecordedEvent> for FeedEvent {
    fn from(e: RecordedEvent) -> Self {
        FeedEvent {
            checkpoint: e.checkpoint.to_string(),
            global_position: e.global_position,
            event_id: e.event_id,
            stream_id: String::from(e.stream_id),
            stream_version: e.stream_version,
            event_type: e.event_type,
            schema_version: e.schema_version,
            actor: e.metadata.actor,
            occurred_at: e.metadata.occurred_at,
            recorded_at: e.metadata.recorded_at,
            command_id: e.metadata.command_id,
            correlation_id: e.metadata.correlation_id,
            causation_id: e.metadata.causation_id,
            payload: e.payload,
        }
    }
}

/// One page of the feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedPage {
    /// The checkpoint the page starts after.
    pub after: String,
    pub events: Vec<FeedEvent>,
    /// Pass as `after` for the next page (the same as `after` when the page is empty).
    pub next: String,
    /// True when the page is full: more may follow at once.
    pub more: bool,
}

fn checkpoint(text: &str, what: &str) -> Result<Checkpoint, ApiError> {
    text.trim().parse::<Checkpoint>().map_err(|_| {
        ApiError::BadRequest(format!(
            "{what} is {text:?}; expected a checkpoint as the feed returned it: two whole \
             numbers joined by a dot, like \"1234.567\" (\"0.0\" for the start)"
        ))
    })
}

/// A page of the global feed: every event in global order.
///
/// `GET /v1/events?after=<checkpoint>&limit=` (default 100, at most 1000).
#[utoipa::path(get, path = "/v1/events", operation_id = "list_events", tag = "feed",
    params(
        ("after" = Option<String>, Query, description = "The checkpoint to read after, as the \
            feed returned it (`next` of the previous page); absent: the start of the log",
            example = "1234.567"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "The most \
            events on the page (1 to 1000; default 100)")),
    responses(
        (status = 200, description = "The events after the checkpoint, in global order",
            body = FeedPage),
        (status = 400, description = "`after` is not a checkpoint or `limit` is out of range",
            body = Problem, content_type = "application/problem+json"),
        ReadErrors, CommonErrors))]
pub async fn page(Reader { state, claims }: Reader, params: Params) -> Result<Response, ApiError> {
    let after = match params.get("after") {
        Some(text) => checkpoint(text, "the query parameter after")?,
        None => Checkpoint::START,
    };
    let limit = params.number("limit", 1, MAX_LIMIT)?.unwrap_or(100);
    access::log_read(&claims)?;
    let batch = state.http.store().read_all(after, limit as usize).await?;
    let next = batch.last().map_or(after, |e| e.checkpoint);
    let more = batch.len() as u64 == limit;
    Ok(Json(FeedPage {
        after: after.to_string(),
        events: batch.into_iter().map(FeedEvent::from).collect(),
        next: next.to_string(),
        more,
    })
    .into_response())
}

/// The global feed as Server-Sent Events.
///
/// `GET /v1/events/stream`: Server-Sent Events from `Last-Event-ID` (or
/// `?after=`, or the start), one `message` per event whose `id` is its
/// checkpoint and whose data is the [`FeedEvent`] as JSON. A comment is sent
/// every 15 seconds to keep proxies from closing an idle stream. If the log
/// cannot be read, the stream ends; the client reconnects with its last id.
#[utoipa::path(get, path = "/v1/events/stream", operation_id = "stream_events", tag = "feed",
    params(
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event \
            received: the stream resumes after it (an `EventSource` sends it when it \
            reconnects); takes precedence over `after`"),
        ("after" = Option<String>, Query, description = "The checkpoint to start after when \
            there is no `Last-Event-ID`; absent: the start of the log", example = "1234.567")),
    responses(
        (status = 200, description = "Server-Sent Events, unending: one `message` per event, \
            whose `id` is the event's checkpoint and whose `data` is the event as JSON (a \
            FeedEvent); a comment every 15 seconds keeps proxies from closing an idle stream",
            body = String, content_type = "text/event-stream"),
        (status = 400, description = "`Last-Event-ID` or `after` is not a checkpoint",
            body = Problem, content_type = "application/problem+json"),
        ReadErrors, CommonErrors))]
pub async fn stream(
    Reader { state, claims }: Reader,
    params: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let from = match headers.get("last-event-id") {
        Some(value) => checkpoint(value.to_str().unwrap_or(""), "the Last-Event-ID header")?,
        None => match params.get("after") {
            Some(text) => checkpoint(text, "the query parameter after")?,
            None => Checkpoint::START,
        },
    };
    access::log_read(&claims)?;
    let follower = Follower::new(state.http.store_arc(), from, STREAM_BATCH)
        .with_poll_interval(state.feed_poll);
    let events = futures_util::stream::unfold(
        (follower, VecDeque::<RecordedEvent>::new()),
        |(mut follower, mut queue)| async move {
            loop {
                if let Some(event) = queue.pop_front() {
                    return Some((Ok::<_, Infallible>(sse(event)), (follower, queue)));
                }
                match follower.next_batch().await {
                    Ok(batch) => queue.extend(batch),
                    Err(error) => {
                        tracing::warn!(%error, "the event stream cannot read the log; closing it");
                        return None;
                    }
                }
            }
        },
    );
    // When the server stops, the stream ends with an event that says so, so
    // that shutdown never waits on a subscriber (who reconnects, resuming
    // from its Last-Event-ID).
    let farewell = futures_util::stream::once(async {
        Ok::<_, Infallible>(
            SseEvent::default()
                .event("shutdown")
                .retry(Duration::from_secs(1))
                .data("the server is restarting: reconnect with Last-Event-ID to resume"),
        )
    });
    let events = futures_util::StreamExt::chain(
        futures_util::StreamExt::take_until(events, state.http.stopped()),
        farewell,
    );
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

fn sse(event: RecordedEvent) -> SseEvent {
    let id = event.checkpoint.to_string();
    let data = serde_json::to_string(&FeedEvent::from(event)).expect("an event serializes");
    SseEvent::default().id(id).data(data)
}
