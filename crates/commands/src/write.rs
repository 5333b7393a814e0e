//! The write path every command takes: load the aggregate, authorize, decide,
//! append with the expected version; retry on a conflict unless the client
//! pinned a version with `If-Match`; answer a retried `Idempotency-Key` with
//! the first outcome.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, NaiveTime, Utc};
use trellis_domain::{
    Aggregate, CompetencyAggregate, CompetencyEvent, Event, LeaderAggregate, LeaderEvent,
    RepAggregate, RepEvent, StandardAggregate, StandardEvent, TeamAggregate, TeamEvent,
};
use trellis_eventstore::{
    AppendOutcome, AppendRequest, CommandMeta, EventStore, ExpectedVersion, Hash, NewEvent,
    StreamId,
};
use uuid::Uuid;

use crate::cache::{Cacheable, Loaded};
use crate::extract::WriteHeaders;
use crate::state::CommandState;
use trellis_http::auth::Claims;
use trellis_http::problem::ApiError;

/// How many times a conflicting append is re-decided on fresh state. A
/// conflict means another writer made progress, so retrying is safe; the
/// jittered backoff between attempts spreads contending writers apart.
pub const MAX_ATTEMPTS: u32 = 20;

/// Waits before attempt `attempt + 1`: 1, 2, 4 … up to 64 ms, plus up to as
/// much again of jitter, so writers that collided do not collide again.
pub async fn backoff(attempt: u32) {
    let base = 1u64 << attempt.min(6);
    let jitter = u64::from(Uuid::now_v7().as_bytes()[15]) % (base + 1);
    tokio::time::sleep(std::time::Duration::from_millis(base + jitter)).await;
}

/// The namespace of command ids derived from idempotency keys.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x5f1c_37a2_9b0e_4c61_8d2f_7a3e_b9c4_d051);

/// An aggregate whose events can be picked out of the domain's [`Event`].
pub trait Stored: Aggregate {
    fn from_event(event: Event) -> Option<Self::Event>;
    fn into_event(event: Self::Event) -> Event;
}

macro_rules! stored {
    ($aggregate:ty, $variant:ident, $event:ty) => {
        impl Stored for $aggregate {
            fn from_event(event: Event) -> Option<$event> {
                match event {
                    Event::$variant(e) => Some(e),
                    _ => None,
                }
            }
            fn into_event(event: $event) -> Event {
                Event::$variant(event)
            }
        }
    };
}

stored!(TeamAggregate, Team, TeamEvent);
stored!(CompetencyAggregate, Competency, CompetencyEvent);
stored!(StandardAggregate, Standard, StandardEvent);
stored!(RepAggregate, Rep, RepEvent);
stored!(LeaderAggregate, Leader, LeaderEvent);

/// How long a fact about another stream is trusted without a read.
pub const FACT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(1);

/// Folds a stream into its aggregate's state: from the cached state (taken
/// out of the cache), reading only the events after it.
#[tracing::instrument(name = "commands.load", skip_all, fields(stream = %stream), err)]
pub async fn load<A: Stored>(
    app: &CommandState,
    stream: &StreamId,
) -> Result<Loaded<A::State>, ApiError>
where
    A::State: Cacheable,
{
    let Loaded { mut state, version } =
        app.state_cache()
            .take::<A::State>(stream)
            .unwrap_or(Loaded {
                state: A::State::default(),
                version: 0,
            });
    let version = trellis_eventstore::read_stream_after(
        app.store(),
        stream,
        version,
        trellis_eventstore::STREAM_PAGE,
        |recorded| {
            let event = Event::from_stored(
                &recorded.event_type,
                recorded.schema_version,
                recorded.payload,
            )
            .map_err(|e| {
                ApiError::Internal(format!(
                    "stream {stream} version {}: {e}",
                    recorded.stream_version
                ))
            })?;
            let event = A::from_event(event).ok_or_else(|| {
                ApiError::Internal(format!(
                    "stream {stream} version {} holds an event of another aggregate",
                    recorded.stream_version
                ))
            })?;
            // `state` is moved through the fold; the default is never seen.
            state = A::evolve(std::mem::take(&mut state), &event);
            Ok::<_, ApiError>(())
        },
    )
    .await?;
    Ok(Loaded { state, version })
}

/// Another stream's state, as a fact a decision needs: from the cache when
/// read in the last [`FACT_MAX_AGE`], else read (and cached for the next).
pub async fn load_fact<A: Stored>(
    app: &CommandState,
    stream: &StreamId,
) -> Result<Loaded<A::State>, ApiError>
where
    A::State: Cacheable,
{
    if let Some(loaded) = app.state_cache().peek::<A::State>(stream, FACT_MAX_AGE) {
        return Ok(loaded);
    }
    let loaded = load::<A>(app, stream).await?;
    app.state_cache()
        .put(stream, loaded.version, loaded.state.clone());
    Ok(loaded)
}

/// The state of every entity of aggregate `A`, by its id, folded from
/// its stream: what a command checks its entity against (the other teams'
/// names, the other standards of a metric), read whole (`scan`).
pub async fn states_of<A: Stored>(
    store: &dyn EventStore,
) -> Result<BTreeMap<Uuid, A::State>, ApiError> {
    let mut states: BTreeMap<Uuid, A::State> = BTreeMap::new();
    crate::scan::each_event_of(store, A::CATEGORY, |stream, event| {
        if let (Some(id), Some(event)) = (stream.entity_uuid(), A::from_event(event)) {
            let state = states.entry(id).or_default();
            *state = A::evolve(std::mem::take(state), &event);
        }
    })
    .await?;
    Ok(states)
}

/// Who writes, under which command id, at what time.
#[derive(Debug, Clone)]
pub struct WriteCtx {
    pub claims: Claims,
    pub headers: WriteHeaders,
    pub fingerprint: [u8; 32],
    pub command_id: Uuid,
    pub now: DateTime<Utc>,
}

impl WriteCtx {
    pub fn new(
        app: &CommandState,
        claims: Claims,
        headers: WriteHeaders,
        fingerprint: [u8; 32],
    ) -> Self {
        // A keyed request gets the same command id every time it is retried,
        // so the store records it once.
        let command_id = match &headers.idempotency_key {
            Some(key) => Uuid::new_v5(
                &IDEMPOTENCY_NAMESPACE,
                format!("{}\n{key}", claims.sub).as_bytes(),
            ),
            None => Uuid::now_v7(),
        };
        WriteCtx {
            claims,
            headers,
            fingerprint,
            command_id,
            now: app.http().clock().now(),
        }
    }

    /// A new entity id for this command. For a keyed request it is derived
    /// from the command id, so a retry names the same entity.
    pub fn new_id(&self, label: &str) -> Uuid {
        if self.headers.idempotency_key.is_some() {
            Uuid::new_v5(&self.command_id, label.as_bytes())
        } else {
            Uuid::now_v7()
        }
    }

    pub fn meta(&self) -> CommandMeta {
        CommandMeta {
            command_id: self.command_id,
            actor: self.claims.sub.clone(),
            correlation_id: self.headers.request_id.unwrap_or(self.command_id),
            causation_id: None,
            recorded_at: self.now,
            request_hash: Some(Hash(self.fingerprint)),
            traceparent: self.headers.traceparent.clone(),
        }
    }

    /// The first outcome of a retried keyed request, if it was recorded.
    pub async fn replay(&self, app: &CommandState) -> Result<Option<AppendOutcome>, ApiError> {
        if self.headers.idempotency_key.is_none() {
            return Ok(None);
        }
        let Some(outcome) = app.store().recorded_command(self.command_id).await? else {
            return Ok(None);
        };
        self.check_same_request(&outcome)?;
        app.metrics().idempotent_replay();
        Ok(Some(outcome))
    }

    fn check_same_request(&self, outcome: &AppendOutcome) -> Result<(), ApiError> {
        if outcome
            .request_hash
            .is_some_and(|h| h.0 != self.fingerprint)
        {
            return Err(ApiError::IdempotencyMismatch(
                "this Idempotency-Key was already used for a different request (another body \
                 or path); use a new key for a new request"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The stream's version after the write.
    pub stream_version: u64,
    /// Events recorded (0 when the command changed nothing).
    pub events: usize,
    /// True when this is the answer to a retried request.
    pub replayed: bool,
}

/// The time a domain event happened: its business date at midnight UTC, or
/// the recorded time when it has none.
pub fn occurred_at(event: &Event, now: DateTime<Utc>) -> DateTime<Utc> {
    event
        .occurred_on()
        .map_or(now, |d| d.and_time(NaiveTime::MIN).and_utc())
}

pub fn to_new_event(event: &Event, now: DateTime<Utc>) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        payload: event.to_payload(),
        occurred_at: occurred_at(event, now),
    }
}

/// Runs one command against one stream. `command` authorizes and builds the
/// domain command from the loaded state (it runs again on each retry).
#[tracing::instrument(
    name = "commands.execute",
    skip_all,
    fields(stream = %stream, command_id = %ctx.command_id),
    err(level = "debug")
)]
pub async fn execute<A: Stored>(
    app: &CommandState,
    ctx: &WriteCtx,
    stream: &StreamId,
    mut command: impl FnMut(&Loaded<A::State>) -> Result<A::Command, ApiError>,
) -> Result<Written, ApiError>
where
    A::State: Cacheable,
{
    let replayed = |outcome: trellis_eventstore::AppendOutcome| Written {
        stream_version: outcome.stream_version,
        events: 0,
        replayed: true,
    };
    if let Some(outcome) = ctx.replay(app).await? {
        return Ok(replayed(outcome));
    }
    let store = app.store();
    let mut attempt = 0;
    loop {
        attempt += 1;
        // A retry after a conflict: the writer that won may have been this
        // same request, sent again at once (a double submit, a client's
        // retry): answer with its outcome, never decide it a second time.
        if attempt > 1
            && let Some(outcome) = ctx.replay(app).await?
        {
            return Ok(replayed(outcome));
        }
        // First try on the cached state without reading: a stale one costs a
        // conflict and a reload, a fresh one saves a read per command. With
        // If-Match the client's version is compared with the store's.
        let cached = match (attempt, ctx.headers.if_match) {
            (1, None) => app.state_cache().take::<A::State>(stream),
            _ => None,
        };
        let loaded = match cached {
            Some(loaded) => loaded,
            None => load::<A>(app, stream).await?,
        };
        if let Some(expected) = ctx.headers.if_match
            && expected != loaded.version
        {
            app.metrics().conflict();
            return Err(ApiError::Conflict {
                expected: expected.to_string(),
                current: loaded.version,
            });
        }
        let decided = match command(&loaded) {
            Ok(command) => A::decide(&loaded.state, command).map_err(ApiError::from),
            Err(e) => Err(e),
        };
        // Refused, perhaps because the same request, sent again at once,
        // recorded first (the id it creates is then taken): its outcome.
        if matches!(decided, Err(ApiError::Rejected(_)))
            && let Some(outcome) = ctx.replay(app).await?
        {
            return Ok(replayed(outcome));
        }
        let decided = match decided {
            Ok(decided) if !decided.is_empty() => decided,
            // Refused, or nothing to record: the state is still the stream's
            // current one, so it goes back into the cache for the next command.
            other => {
                let version = loaded.version;
                app.state_cache().put(stream, version, loaded.state);
                return other.map(|_| Written {
                    stream_version: version,
                    events: 0,
                    replayed: false,
                });
            }
        };
        let version = loaded.version;
        let after = decided
            .iter()
            .fold(loaded.state, |state, e| A::evolve(state, e));
        let events: Vec<NewEvent> = decided
            .into_iter()
            .map(|e| to_new_event(&A::into_event(e), ctx.now))
            .collect();
        let count = events.len();
        let started = Instant::now();
        // Handed over, not lent: the vault encrypts the events in place and
        // group commit queues them, neither copying them.
        let result = store
            .append_owned(AppendRequest {
                stream: stream.clone(),
                expected: ExpectedVersion::Exact(loaded.version),
                meta: ctx.meta(),
                events,
            })
            .await;
        app.metrics().append_latency(started.elapsed());
        match result {
            Ok(outcome) => {
                if outcome.replayed {
                    ctx.check_same_request(&outcome)?;
                    app.metrics().idempotent_replay();
                } else {
                    app.state_cache().put(stream, outcome.stream_version, after);
                }
                return Ok(Written {
                    stream_version: outcome.stream_version,
                    events: if outcome.replayed { 0 } else { count },
                    replayed: outcome.replayed,
                });
            }
            Err(trellis_eventstore::Error::Conflict { current, .. }) => {
                app.metrics().conflict();
                if ctx.headers.if_match.is_some() || attempt >= MAX_ATTEMPTS {
                    return Err(ApiError::Conflict {
                        expected: version.to_string(),
                        current,
                    });
                }
                // Someone else wrote first: decide again on fresh state.
                backoff(attempt).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}
