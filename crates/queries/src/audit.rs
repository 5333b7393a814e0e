//! A rep's audit trail: every event of the rep's stream in order, with its
//! actor, type, both times and payload; each correction linked to the event
//! that recorded what it corrects (and each corrected event to its
//! corrections); and whether the stream's hash chain verifies.
//!
//! A rep reading their own trail sees every event, but not the content of
//! what the rep may not see: feedback and coaching sessions the domain does
//! not show them ([`Rep::sees_feedback`], [`Rep::sees_coaching_session`]:
//! private, or retracted since), the reason of a correction to either, and
//! the reason an item of such a session was dropped, are withheld
//! (`"withheld": true`, `payload: null`).
//!
//! Who may read the trail is decided before the trail is read: the rep's
//! current team comes from the decoded stream the
//! [`StreamCache`](crate::streams::StreamCache) keeps
//! (which reads only what was appended since it last looked), and the
//! stored events, with their hashes, are read only for a caller who may see
//! them. Their decoded forms are the cache's, not decoded again.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use trellis_domain::rep::{Rep, RepEvent, RepState, evolve, hidden_from_rep};
use trellis_domain::{Event, RepId};
use trellis_eventstore::chain::Verifier;
use trellis_eventstore::{EventStore, RecordedEvent};
use trellis_http::auth::Claims;
use trellis_http::problem::{ApiError, Problem};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::View;
use crate::params::Params;
use crate::schemas::ReadErrors;
use crate::state::{About, QueryState};
use crate::streams::{PAGE, decode_rep_events, read_rep_stream, readable_stream};
use trellis_http::openapi::CommonErrors;

/// The most entries one page of the trail holds.
pub const MAX_PAGE: usize = 10_000;

/// One event of the trail.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    pub stream_version: u64,
    pub global_position: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u16,
    pub actor: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    /// The event as stored; `null` when withheld from a rep.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
    /// True when the payload is withheld from this reader: a private note's,
    /// or feedback retracted since, which a rep no longer sees.
    pub withheld: bool,
    /// For a correction: the event that recorded the fact it corrects.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub corrects: Option<Link>,
    /// For an event whose fact was corrected: the corrections, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub corrected_by: Vec<Link>,
    /// The hash of the previous event of the stream (hex; zeros for the first).
    pub prev_hash: String,
    /// `sha256(prev_hash ‖ version ‖ sha256(canonical content))`, hex.
    pub hash: String,
}

/// A reference to another event of the same stream.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = AuditLink)]
pub struct Link {
    pub event_id: Uuid,
    pub stream_version: u64,
    pub event_type: String,
}

/// The trail of one rep.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditTrail {
    #[schema(value_type = uuid::Uuid)]
    pub rep_id: RepId,
    pub stream_id: String,
    /// Events in the stream.
    pub events_total: u64,
    /// Whether every event's hash matches its content and its predecessor.
    pub chain_intact: bool,
    /// The first problem found, when the chain does not verify.
    pub chain_problem: Option<String>,
    /// The page of entries after `after_version`.
    pub events: Vec<AuditEntry>,
    /// The version to pass as `after_version` for the next page, if there is one.
    pub next_after_version: Option<u64>,
}

/// The ids of the facts an event records (what a `FactCorrected.fact_id` names).
fn fact_ids(event: &RepEvent) -> Vec<Uuid> {
    match event {
        RepEvent::SkillAssessed(e) => vec![e.assessment_id.as_uuid()],
        RepEvent::PerformanceMeasured(e) => vec![e.measurement_id.as_uuid()],
        RepEvent::FeedbackGiven(e) => vec![e.feedback_id.as_uuid()],
        RepEvent::CoachingSessionHeld(e) => vec![e.session_id.as_uuid()],
        RepEvent::TrainingCompleted(e) => vec![e.training_id.as_uuid()],
        _ => vec![],
    }
}

/// The rep as the domain folds their stream (for the rules of what the rep
/// sees), from the decoded events.
fn rep_state<'a>(events: impl IntoIterator<Item = &'a RepEvent>) -> RepState {
    events.into_iter().fold(RepState::default(), evolve)
}

/// Builds the trail from the whole stream, in version order: `events` as
/// stored and `decoded`, the same events decoded (one per stored event, in
/// the same order; `None` for one that is not a rep event). For
/// [`View::OwnRecord`], `rep` is the rep's current state, whose rules say
/// what the rep may see.
pub fn trail(
    rep_id: RepId,
    events: Vec<RecordedEvent>,
    decoded: &[Option<&RepEvent>],
    view: View,
    rep: Option<&Rep>,
    after_version: u64,
    limit: usize,
) -> AuditTrail {
    let mut verifier = Verifier::new();
    for event in &events {
        verifier.check(event);
    }
    let report = verifier.finish();

    let link = |i: usize| Link {
        event_id: events[i].event_id,
        stream_version: events[i].stream_version,
        event_type: events[i].event_type.clone(),
    };

    // fact id → the event that recorded it.
    let mut recorded_by: BTreeMap<Uuid, usize> = BTreeMap::new();
    for (i, event) in decoded.iter().enumerate() {
        let Some(event) = event else { continue };
        for id in fact_ids(event) {
            recorded_by.entry(id).or_insert(i);
        }
    }
    // What the reader may not see the content of.
    let hidden = match view {
        View::Full => BTreeSet::new(),
        View::OwnRecord => hidden_from_rep(rep, decoded.iter().flatten().copied()),
    };
    let mut corrects: BTreeMap<usize, usize> = BTreeMap::new();
    let mut corrected_by: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, event) in decoded.iter().enumerate() {
        if let Some(RepEvent::FactCorrected(c)) = event
            && let Some(&target) = recorded_by.get(&c.fact_id)
        {
            corrects.insert(i, target);
            corrected_by.entry(target).or_default().push(i);
        }
    }

    let withheld = |event: Option<&RepEvent>| -> bool {
        match event {
            Some(RepEvent::FeedbackGiven(e)) => hidden.contains(&e.feedback_id.as_uuid()),
            Some(RepEvent::CoachingSessionHeld(e)) => hidden.contains(&e.session_id.as_uuid()),
            Some(RepEvent::FactCorrected(e)) => hidden.contains(&e.fact_id),
            Some(RepEvent::ActionItemDropped(e)) => hidden.contains(&e.action_item_id.as_uuid()),
            _ => false,
        }
    };

    let total = events.len() as u64;
    let stream_id = events
        .first()
        .map_or_else(|| rep_id.stream_id(), |e| e.stream_id.to_string());
    let start = events.partition_point(|e| e.stream_version <= after_version);
    let end = (start + limit).min(events.len());
    let mut entries = Vec::with_capacity(end - start);
    for i in start..end {
        let hide = withheld(decoded[i]);
        let e = &events[i];
        entries.push(AuditEntry {
            stream_version: e.stream_version,
            global_position: e.global_position,
            event_id: e.event_id,
            event_type: e.event_type.clone(),
            schema_version: e.schema_version,
            actor: e.metadata.actor.clone(),
            occurred_at: e.metadata.occurred_at,
            recorded_at: e.metadata.recorded_at,
            command_id: e.metadata.command_id,
            correlation_id: e.metadata.correlation_id,
            payload: (!hide).then(|| e.payload.clone()),
            withheld: hide,
            corrects: corrects.get(&i).map(|t| link(*t)),
            corrected_by: corrected_by
                .get(&i)
                .map(|v| v.iter().map(|c| link(*c)).collect())
                .unwrap_or_default(),
            prev_hash: e.prev_hash.to_string(),
            hash: e.hash.to_string(),
        });
    }
    AuditTrail {
        rep_id,
        stream_id,
        events_total: total,
        chain_intact: report.is_intact(),
        chain_problem: report.findings.first().map(ToString::to_string),
        next_after_version: (end < events.len()).then(|| events[end - 1].stream_version),
        events: entries,
    }
}

/// The stored events of the rep's stream up to `version` (what the cache
/// decoded when it was asked who may read them): one appended since is left
/// for the next read, so the trail is of the stream the decision was made on.
async fn stored_events(
    store: &dyn EventStore,
    rep_id: RepId,
    version: u64,
) -> Result<Vec<RecordedEvent>, ApiError> {
    let mut events = Vec::with_capacity(usize::try_from(version).unwrap_or(0));
    read_rep_stream(store, rep_id, 0, PAGE, |e| {
        if e.stream_version <= version {
            events.push(e);
        }
        Ok::<_, ApiError>(())
    })
    .await?;
    Ok(events)
}

/// A page of the rep's audit trail as `claims` may see it (what
/// `GET /v1/reps/{rep_id}/audit` answers, and the dashboard's audit page
/// shows): the entries after `after_version`, at most `limit`.
pub async fn audit_trail(
    state: &QueryState,
    claims: &Claims,
    rep_id: RepId,
    after_version: u64,
    limit: usize,
) -> Result<AuditTrail, ApiError> {
    // Who may read is decided on the decoded stream the cache keeps (reading
    // only what was appended since), before the stored events are read.
    let store = state.http.store();
    let (stream, view) = readable_stream(store, &state.stream_cache, claims, rep_id).await?;
    let events = stored_events(store, rep_id, stream.version).await?;
    // Each event's decoded form: the cache's, unless the stored stream is no
    // longer the one the cache read (someone altered it; the chain says so).
    let cached_is_stored = stream
        .events()
        .map(|e| e.stream_version)
        .eq(events.iter().map(|e| e.stream_version));
    let decoded_here;
    let decoded: Vec<Option<&RepEvent>> = if cached_is_stored {
        stream
            .events()
            .map(|e| match &e.event {
                Event::Rep(r) => Some(r),
                _ => None,
            })
            .collect()
    } else {
        // The stored stream was altered after the cache read it: decode
        // what is stored now.
        decoded_here = decode_rep_events(&events);
        decoded_here.iter().map(Option::as_ref).collect()
    };
    let rep = match view {
        View::Full => RepState::default(),
        View::OwnRecord => rep_state(decoded.iter().flatten().copied()),
    };
    Ok(trail(
        rep_id,
        events,
        &decoded,
        view,
        rep.rep(),
        after_version,
        limit,
    ))
}

/// A rep's audit trail, with the hash chain verified.
///
/// `GET /v1/reps/{rep_id}/audit?after_version=&limit=`: every event of the
/// rep's stream in order, each correction linked to what it corrects.
#[utoipa::path(get, path = "/v1/reps/{rep_id}/audit", operation_id = "get_audit_trail",
    tag = "audit",
    params(
        ("rep_id" = uuid::Uuid, Path, description = "The rep"),
        ("after_version" = Option<u64>, Query, minimum = 0, description = "Start after this \
            stream version (default 0: from the first event); pass `next_after_version` of the \
            previous page"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 10000, description = "The most \
            entries on the page (1 to 10000; default 1000)")),
    responses(
        (status = 200, description = "A page of the rep's audit trail, with whether the whole \
            stream's hash chain verifies; a rep reading their own sees private notes and \
            retracted feedback and sessions withheld",
            body = AuditTrail),
        (status = 400, description = "`after_version` or `limit` is not a whole number in range",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rep (or the id is not a UUID)",
            body = Problem, content_type = "application/problem+json"),
        ReadErrors, CommonErrors))]
pub async fn route(about: About<RepId>, params: Params) -> Result<Response, ApiError> {
    let (state, claims, rep_id) = (about.state, about.claims, about.id);
    let after_version = params
        .number("after_version", 0, u64::MAX >> 1)?
        .unwrap_or(0);
    let limit = params.number("limit", 1, MAX_PAGE as u64)?.unwrap_or(1_000) as usize;
    let trail = audit_trail(&state, &claims, rep_id, after_version, limit).await?;
    Ok(Json(trail).into_response())
}
