//! A person's export (subject access): everything Trellis holds about one
//! person, for an admin or for the person themself.
//!
//! A person is a rep or a leader (their id in the log), or the holder of a
//! sign-in account (an admin's or auditor's account id). The export holds:
//!
//! - a rep's own stream: every event decoded to the current schema, with
//!   both times and its actor, and whether the stream's hash chain verifies.
//!   It is read through [`audit::audit_trail`], so what a rep may not see
//!   is decided by the one rule the audit trail follows;
//! - events elsewhere in the log that the person recorded or that name
//!   them: the catalogue streams (teams, competencies, standards), the
//!   alert streams and, for a leader, the streams of every rep ever on a
//!   team they lead and of every rep they coached. The export lists what
//!   was searched, and what was not and why;
//! - the read models about them: a rep's profile with its standing and
//!   their growth timeline week by week, month by month and quarter by
//!   quarter; what a leader did per rep, and the
//!   teams they lead;
//! - their sign-in records ([`trellis_access::Access::records_of_person`]):
//!   the account, every session and every one-time link with their times,
//!   never a secret or its hash.
//!
//! # Who may read it
//!
//! An admin: anyone's, complete. The person themself, under the rules
//! they read Trellis by: a rep never sees what the domain hides from them
//! (private notes, and records retracted since: `rep::hidden_from_rep`), a
//! leader reads only the reps of the teams they lead today. What those
//! rules leave out is counted in `left_out`, which says that an admin can
//! produce the complete export. Anyone else gets a 403 (auditors and
//! services included: an auditor reads the log, not people's exports),
//! decided before anything is loaded, so a refusal says nothing of whether
//! the person exists; an admin asking about an unknown id gets a 404.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use axum::Json;
use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use trellis_access::Access;
use trellis_domain::rep::{RepEvent, RepState, evolve, hidden_from_rep};
use trellis_domain::{Event, LeaderId, PeriodKind, RepId, TeamId};
use trellis_eventstore::{EventStore, RecordedEvent, StreamId, scan_streams_after};
use trellis_http::HttpState;
use trellis_http::auth::{Claims, Role};
use trellis_http::extract::{PathIds, Principal};
use trellis_http::openapi::CommonErrors;
use trellis_http::problem::{ApiError, Problem};
use trellis_projections::growth::model::LeaderDoc;
use trellis_projections::projection::Envelope;
use trellis_projections::query::{RepProfileView, TimelineRowView};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::schemas::{RepProfileSchema, TimelineRowSchema};
use crate::state::QueryState;
use crate::streams::PAGE;

/// The catalogue categories searched for what a person recorded or what
/// names them: few streams, read whole (a leader's own stream holds only
/// their erasure).
const CATALOGUE: [&str; 4] = ["team", "competency", "standard", "leader"];

/// Everything Trellis holds about one person, as the reader may see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PersonExport {
    pub person: Person,
    /// When the export was made (the service's clock).
    pub generated_at: DateTime<Utc>,
    /// The day the read models' time-dependent parts (overdue items, the
    /// standing) are judged on.
    pub as_of: NaiveDate,
    /// True when nothing was left out for this reader.
    pub complete: bool,
    /// What the reader's rules left out, counted, and why.
    pub left_out: Vec<LeftOut>,
    /// Where Trellis looked, and what it found there.
    pub searched: Vec<Searched>,
    /// What Trellis holds that is not in the export, and why.
    pub not_included: Vec<NotIncluded>,
    /// A rep's own stream (`rep-<id>`); null for anyone else.
    pub own_stream: Option<OwnStream>,
    /// Events in other streams that the person recorded or that name them,
    /// in the order they were recorded.
    pub events_elsewhere: Vec<ExportEvent>,
    pub read_models: ReadModelsExport,
    pub sign_in: SignInExport,
}

/// Who the export is about.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ExportPerson)]
pub struct Person {
    pub id: Uuid,
    pub kind: PersonKind,
    /// Their name as Trellis holds it, when it holds one.
    pub name: Option<String>,
}

/// What kind of person the id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PersonKind {
    Rep,
    Leader,
    Admin,
    Auditor,
}

impl PersonKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PersonKind::Rep => "rep",
            PersonKind::Leader => "leader",
            PersonKind::Admin => "admin",
            PersonKind::Auditor => "auditor",
        }
    }
}

/// Records the reader's rules left out of their export.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeftOut {
    /// What was left out, e.g. "private or retracted notes".
    pub what: String,
    pub count: u64,
    /// Which rule left it out, and who can produce the complete export.
    pub why: String,
}

/// One place searched.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Searched {
    /// The streams, read models or tables looked in.
    pub source: String,
    /// What was looked for there.
    pub looked_for: String,
    /// How many records were found (before any were left out).
    pub found: u64,
}

/// Something Trellis holds that the export leaves out on purpose.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotIncluded {
    pub what: String,
    pub why: String,
}

/// A rep's own stream.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OwnStream {
    pub stream_id: String,
    /// Events in the stream (those left out for this reader included).
    pub events_total: u64,
    /// Whether every event's hash matches its content and its predecessor.
    pub chain_intact: bool,
    /// The events this reader may see, oldest first.
    pub events: Vec<ExportEvent>,
}

/// Why an event is in the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// It is in the rep's own stream.
    OwnStream,
    /// The person recorded it (its actor).
    RecordedBy,
    /// Its content names the person's id.
    Names,
}

/// One event of the log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExportEvent {
    pub stream_id: String,
    pub stream_version: u64,
    pub event_id: Uuid,
    pub event_type: String,
    /// The schema version of `payload`: events written under an older one
    /// are upcast to the current schema.
    pub schema_version: u16,
    /// Who recorded it (a token's subject: a person's id, or a service).
    pub actor: String,
    /// When it happened (business time).
    pub occurred_at: DateTime<Utc>,
    /// When the log learned of it (recorded time).
    pub recorded_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub payload: Value,
    pub found_by: Vec<FoundBy>,
}

/// The read models about the person.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReadModelsExport {
    /// A rep's profile as of `as_of`, with the standing and its reasons.
    #[schema(value_type = Option<RepProfileSchema>)]
    pub profile: Option<RepProfileView>,
    /// A rep's growth timeline, week by week: the attainment of the
    /// standards measured weekly, and the week's coaching, feedback and
    /// action items.
    #[schema(value_type = Vec<TimelineRowSchema>)]
    pub timeline_by_week: Vec<TimelineRowView>,
    /// A rep's growth timeline, month by month: the attainment of the
    /// standards measured monthly, and the month's coaching, feedback and
    /// action items.
    #[schema(value_type = Vec<TimelineRowSchema>)]
    pub timeline_by_month: Vec<TimelineRowView>,
    /// A rep's growth timeline, quarter by quarter: the attainment of the
    /// standards measured quarterly, and the quarter's coaching, feedback
    /// and action items.
    #[schema(value_type = Vec<TimelineRowSchema>)]
    pub timeline_by_quarter: Vec<TimelineRowView>,
    /// What a leader did per rep (the `leader` document of the `growth`
    /// projection: sessions, feedback, support resolved, action items owned).
    #[schema(value_type = Option<Object>)]
    pub leader_activity: Option<LeaderDoc>,
    /// The teams a leader leads.
    pub teams_led: Vec<TeamLed>,
}

/// A team the person leads.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TeamLed {
    pub team_id: Uuid,
    pub name: String,
}

/// The person's sign-in records.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SignInExport {
    /// False when this service was started without the sign-in records (it
    /// then cannot say what they hold).
    pub available: bool,
    pub account: Option<AccountExport>,
    /// Sessions running now.
    pub running_sessions: u64,
    /// When the person last signed in.
    pub last_sign_in_at: Option<DateTime<Utc>>,
    /// Every session, ended ones included, oldest first.
    pub sessions: Vec<SessionExport>,
    /// Every one-time sign-in link made for the account, oldest first.
    pub sign_in_links: Vec<LinkExport>,
}

/// A sign-in account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountExport {
    pub account_id: Uuid,
    pub role: PersonKind,
    pub name: String,
    pub email: Option<String>,
    /// The identity provider's subject for the person.
    pub oidc_subject: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// Since when the account may not sign in.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A signed-in browser (its secret id is never shown).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionExport {
    /// How it was started: `link`, `oidc` or `token` (a developer token).
    pub via: String,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// Its absolute end.
    pub expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Who or what ended it (`expired`, `idle`, a person's id).
    pub ended_by: Option<String>,
    /// Whether it runs now.
    pub running: bool,
}

/// A one-time sign-in link (its token is never shown).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LinkExport {
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// How much of the export the reader sees.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reach {
    /// Everything (an admin; an auditor or admin about themself).
    Complete,
    /// A rep about themself: nothing the domain hides from the rep.
    OwnRep,
    /// A leader about themself: only reps of these teams (those they lead today).
    OwnLeader(BTreeSet<TeamId>),
}

/// Who may ask for `person`'s export: an admin, or the person themself.
/// Decided on the token alone, before anything is loaded.
fn reach(claims: &Claims, person: Uuid) -> Result<Reach, ApiError> {
    let themself = claims.subject_id() == Some(person);
    match claims.role {
        Role::Admin => Ok(Reach::Complete),
        Role::Auditor if themself => Ok(Reach::Complete),
        Role::Rep if themself => Ok(Reach::OwnRep),
        Role::Leader if themself => Ok(Reach::OwnLeader(
            claims
                .teams
                .iter()
                .copied()
                .map(TeamId::from_uuid)
                .collect(),
        )),
        Role::Service => Err(ApiError::Forbidden(
            "everything Trellis holds about a person is for an admin or the person \
             themself, never for a service token"
                .into(),
        )),
        Role::Auditor => Err(ApiError::Forbidden(
            "everything Trellis holds about a person is for an admin or the person \
             themself; an auditor reads the log (the feed, audit trails), not other \
             people's exports"
                .into(),
        )),
        Role::Rep | Role::Leader => Err(ApiError::Forbidden(
            "everything Trellis holds about a person is for an admin or the person \
             themself; you may ask for your own"
                .into(),
        )),
    }
}

fn read_error(e: trellis_projections::Error) -> ApiError {
    use trellis_projections::Error as E;
    match e {
        E::Store(e) => ApiError::from(e),
        E::Unavailable(why) => ApiError::Unavailable(why),
        other => ApiError::Internal(other.to_string()),
    }
}

fn access_error(e: trellis_access::Error) -> ApiError {
    tracing::warn!(error = %e, "the sign-in records could not be read for an export");
    ApiError::Unavailable("the sign-in records cannot be read just now; retry in a moment".into())
}

/// Whether `value` holds the string `id` anywhere (a field, a list item).
fn names(value: &Value, id: &str) -> bool {
    match value {
        Value::String(s) => s == id,
        Value::Array(items) => items.iter().any(|v| names(v, id)),
        Value::Object(fields) => fields.values().any(|v| names(v, id)),
        _ => false,
    }
}

/// Whether `value` names any of `ids`.
fn names_any(value: &Value, ids: &BTreeSet<String>) -> bool {
    match value {
        Value::String(s) => ids.contains(s),
        Value::Array(items) => items.iter().any(|v| names_any(v, ids)),
        Value::Object(fields) => fields.values().any(|v| names_any(v, ids)),
        _ => false,
    }
}

/// Why `actor` and `payload` make an event the person's, if they do.
fn found_by(actor: &str, payload: &Value, id: &str) -> Vec<FoundBy> {
    let mut why = Vec::new();
    if actor == id {
        why.push(FoundBy::RecordedBy);
    }
    if names(payload, id) {
        why.push(FoundBy::Names);
    }
    why
}

impl ExportEvent {
    /// From a decoded event of a stream.
    fn from_envelope(e: &Envelope, found_by: Vec<FoundBy>) -> Self {
        ExportEvent {
            stream_id: e.stream_id.clone(),
            stream_version: e.stream_version,
            event_id: e.event_id,
            event_type: e.event.event_type().to_owned(),
            schema_version: e.event.schema_version(),
            actor: e.actor.clone(),
            occurred_at: e.occurred_at,
            recorded_at: e.recorded_at,
            payload: e.event.to_payload(),
            found_by,
        }
    }

    /// From a stored event: decoded (upcast) when the domain knows it, as
    /// stored when it does not.
    fn from_recorded(e: RecordedEvent, found_by: Vec<FoundBy>) -> Self {
        match Event::from_stored_ref(&e.event_type, e.schema_version, &e.payload) {
            Ok(event) => ExportEvent {
                stream_id: e.stream_id.to_string(),
                stream_version: e.stream_version,
                event_id: e.event_id,
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                actor: e.metadata.actor,
                occurred_at: e.metadata.occurred_at,
                recorded_at: e.metadata.recorded_at,
                payload: event.to_payload(),
                found_by,
            },
            Err(_) => ExportEvent {
                stream_id: e.stream_id.to_string(),
                stream_version: e.stream_version,
                event_id: e.event_id,
                event_type: e.event_type,
                schema_version: e.schema_version,
                actor: e.metadata.actor,
                occurred_at: e.metadata.occurred_at,
                recorded_at: e.metadata.recorded_at,
                payload: e.payload,
                found_by,
            },
        }
    }

    /// From an entry of the audit trail (whose payload is as stored).
    fn from_audit(e: &AuditEntry, stream_id: &str) -> Self {
        let stored = e.payload.clone().unwrap_or(Value::Null);
        let (event_type, schema_version, payload) =
            match Event::from_stored_ref(&e.event_type, e.schema_version, &stored) {
                Ok(event) => (
                    event.event_type().to_owned(),
                    event.schema_version(),
                    event.to_payload(),
                ),
                Err(_) => (e.event_type.clone(), e.schema_version, stored),
            };
        ExportEvent {
            stream_id: stream_id.to_owned(),
            stream_version: e.stream_version,
            event_id: e.event_id,
            event_type,
            schema_version,
            actor: e.actor.clone(),
            occurred_at: e.occurred_at,
            recorded_at: e.recorded_at,
            payload,
            found_by: vec![FoundBy::OwnStream],
        }
    }
}

/// Calls `each` with every event of every stream of `category`, page by
/// page (nothing is kept but what `each` keeps); how many streams there were.
async fn scan_category(
    store: &dyn EventStore,
    category: &str,
    mut each: impl FnMut(RecordedEvent),
) -> Result<u64, ApiError> {
    let first = StreamId::new(category).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut streams = 0;
    let mut last_stream: Option<StreamId> = None;
    scan_streams_after(store, Some((first, 0)), PAGE, |event| {
        if event.stream_id.category() != category {
            return Ok::<_, ApiError>(ControlFlow::Break(()));
        }
        if last_stream.as_ref() != Some(&event.stream_id) {
            streams += 1;
            last_stream = Some(event.stream_id.clone());
        }
        each(event);
        Ok(ControlFlow::Continue(()))
    })
    .await?;
    Ok(streams)
}

/// A count with its noun as a reader says it: "1 row", "3 rows", "0 rows".
/// Shared with the dashboard, whose pages count rows, days and checkpoints.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// What an export is being built from, as it is gathered.
struct Gathering {
    id: String,
    left_out: BTreeMap<&'static str, (u64, &'static str)>,
    searched: Vec<Searched>,
    elsewhere: Vec<ExportEvent>,
}

impl Gathering {
    fn leave_out(&mut self, what: &'static str, why: &'static str) {
        self.left_out.entry(what).or_insert((0, why)).0 += 1;
    }
}

const PRIVATE: &str = "private or retracted notes, and records that refer to them";
const PRIVATE_WHY: &str = "a rep never sees a leader's private notes, nor feedback or coaching \
                           sessions retracted since (the rule every view of a rep's own record \
                           follows); an admin can produce the complete export";
const OTHER_TEAMS: &str = "records about reps of teams you no longer lead";
const OTHER_TEAMS_WHY: &str = "a leader reads only the reps of the teams they lead today; an \
                               admin can produce the complete export";

/// Everything Trellis holds about `person`, as `claims` may see it (what
/// `GET /v1/people/{person_id}/export` answers and the dashboard's export
/// page shows). `access`: the sign-in records, when this service has them.
pub async fn person_export(
    state: &QueryState,
    claims: &Claims,
    person: Uuid,
    access: Option<&Access>,
) -> Result<PersonExport, ApiError> {
    let reach = reach(claims, person)?;
    let store = state.http.store();
    let now = state.http.clock().now();
    let today = now.date_naive();
    let id = person.to_string();
    let mut g = Gathering {
        id: id.clone(),
        left_out: BTreeMap::new(),
        searched: Vec::new(),
        elsewhere: Vec::new(),
    };

    // Who the id names: a rep (their stream), a leader (a team or their
    // record in the read models), or a sign-in account.
    let rep_id = RepId::from_uuid(person);
    let stream = state.stream_cache.load(store, rep_id).await?;
    let rep_events: Vec<&RepEvent> = stream
        .events()
        .filter_map(|e| match &e.event {
            Event::Rep(r) => Some(r),
            _ => None,
        })
        .collect();
    let rep_state = rep_events.iter().copied().fold(RepState::default(), evolve);
    let teams = state.read.teams().await.map_err(read_error)?;
    let teams_led: Vec<TeamLed> = teams
        .iter()
        .filter(|t| t.leaders.keys().any(|l| l.as_uuid() == person))
        .map(|t| TeamLed {
            team_id: t.team_id.as_uuid(),
            name: t.name.to_string(),
        })
        .collect();
    let leader_doc: Option<LeaderDoc> = state
        .read
        .leader(LeaderId::from_uuid(person))
        .await
        .map_err(read_error)?;
    let records = match access {
        Some(access) => Some(
            access
                .records_of_person(person)
                .await
                .map_err(access_error)?,
        ),
        None => None,
    };
    let account = records.as_ref().and_then(|r| r.account.as_ref());
    let (kind, name) = if let Some(rep) = rep_state.rep() {
        (PersonKind::Rep, Some(rep.name.to_string()))
    } else if !teams_led.is_empty() || leader_doc.is_some() {
        let name = teams
            .iter()
            .find_map(|t| t.leaders.get(&LeaderId::from_uuid(person)))
            .map(ToString::to_string)
            .or_else(|| {
                leader_doc
                    .as_ref()
                    .and_then(|l| l.name.as_ref())
                    .map(ToString::to_string)
            })
            .or_else(|| account.map(|a| a.name.clone()));
        (PersonKind::Leader, name)
    } else if let Some(account) = account {
        let kind = match account.role {
            Role::Admin => PersonKind::Admin,
            Role::Auditor => PersonKind::Auditor,
            Role::Leader => PersonKind::Leader,
            Role::Rep | Role::Service => PersonKind::Rep,
        };
        (kind, Some(account.name.clone()))
    } else {
        return Err(ApiError::NotFound(format!(
            "Trellis holds nothing about {person}: no rep, leader or sign-in account has this \
             id (if they were added a moment ago, the read models may not have caught up yet: \
             retry in a second)"
        )));
    };

    // A rep's own stream, through the audit trail (what a rep may not see
    // is withheld there by the domain's rule).
    let mut own_stream = None;
    let mut hidden = BTreeSet::new();
    if kind == PersonKind::Rep {
        let trail = audit::audit_trail(state, claims, rep_id, 0, usize::MAX >> 1).await?;
        g.searched.push(Searched {
            source: trail.stream_id.clone(),
            looked_for: "every event of the rep's own stream".into(),
            found: trail.events_total,
        });
        let mut events = Vec::with_capacity(trail.events.len());
        for entry in &trail.events {
            if entry.withheld {
                g.leave_out(PRIVATE, PRIVATE_WHY);
            } else {
                events.push(ExportEvent::from_audit(entry, &trail.stream_id));
            }
        }
        if reach == Reach::OwnRep {
            hidden = hidden_from_rep(rep_state.rep(), rep_events.iter().copied())
                .into_iter()
                .map(|id| id.to_string())
                .collect();
        }
        own_stream = Some(OwnStream {
            stream_id: trail.stream_id,
            events_total: trail.events_total,
            chain_intact: trail.chain_intact,
            events,
        });
    }

    // The catalogue streams: what they recorded there, or what names them.
    let mut found = 0;
    let mut streams = 0;
    for category in CATALOGUE {
        streams += scan_category(store, category, |e| {
            let why = found_by(&e.metadata.actor, &e.payload, &g.id);
            if !why.is_empty() {
                found += 1;
                g.elsewhere.push(ExportEvent::from_recorded(e, why));
            }
        })
        .await?;
    }
    g.searched.push(Searched {
        source: format!(
            "the team, competency, standard and leader streams ({})",
            plural(streams, "stream", "streams")
        ),
        looked_for: "events they recorded and events that name them".into(),
        found,
    });

    // A leader: the streams of every rep ever on a team they lead, and of
    // every rep they did something for.
    let mut current_team: BTreeMap<RepId, Option<TeamId>> = BTreeMap::new();
    if kind == PersonKind::Leader {
        let mut reps: BTreeSet<RepId> = teams
            .iter()
            .filter(|t| t.leaders.keys().any(|l| l.as_uuid() == person))
            .flat_map(|t| t.reps.iter().copied())
            .collect();
        if let Some(doc) = &leader_doc {
            reps.extend(doc.reps.keys().copied());
        }
        let mut found = 0;
        for rep in &reps {
            let stream = state.stream_cache.load(store, *rep).await?;
            current_team.insert(*rep, stream.team);
            for e in stream.events() {
                let payload = e.event.to_payload();
                let why = found_by(&e.actor, &payload, &g.id);
                if why.is_empty() {
                    continue;
                }
                found += 1;
                if let Reach::OwnLeader(led) = &reach
                    && !stream.team.is_some_and(|t| led.contains(&t))
                {
                    g.leave_out(OTHER_TEAMS, OTHER_TEAMS_WHY);
                    continue;
                }
                g.elsewhere.push(ExportEvent::from_envelope(e, why));
            }
        }
        g.searched.push(Searched {
            source: format!(
                "the streams of {}: every rep ever on a team they lead, and every rep they \
                 coached, gave feedback to or answered",
                plural(reps.len() as u64, "rep", "reps")
            ),
            looked_for: "events they recorded and events that name them".into(),
            found,
        });
    }

    // The alerts: each names its rep and who must act.
    let mut alerts: Vec<RecordedEvent> = Vec::new();
    let streams = scan_category(store, "alert", |e| {
        if !found_by(&e.metadata.actor, &e.payload, &g.id).is_empty() {
            alerts.push(e);
        }
    })
    .await?;
    g.searched.push(Searched {
        source: format!(
            "the alert streams ({})",
            plural(streams, "stream", "streams")
        ),
        looked_for: "alerts about them or for them to act on".into(),
        found: alerts.len() as u64,
    });
    for e in alerts {
        let why = found_by(&e.metadata.actor, &e.payload, &g.id);
        match &reach {
            Reach::OwnRep if names_any(&e.payload, &hidden) => {
                g.leave_out(PRIVATE, PRIVATE_WHY);
                continue;
            }
            Reach::OwnLeader(led) => {
                let rep = e.payload["rep_id"]
                    .as_str()
                    .and_then(|r| Uuid::parse_str(r).ok())
                    .map(RepId::from_uuid);
                if let Some(rep) = rep {
                    let team = match current_team.get(&rep) {
                        Some(team) => *team,
                        None => state.stream_cache.load(store, rep).await?.team,
                    };
                    if !team.is_some_and(|t| led.contains(&t)) {
                        g.leave_out(OTHER_TEAMS, OTHER_TEAMS_WHY);
                        continue;
                    }
                }
            }
            _ => {}
        }
        g.elsewhere.push(ExportEvent::from_recorded(e, why));
    }
    g.elsewhere.sort_by(|a, b| {
        (a.recorded_at, &a.stream_id, a.stream_version).cmp(&(
            b.recorded_at,
            &b.stream_id,
            b.stream_version,
        ))
    });

    // The read models about them.
    let mut read_models = ReadModelsExport {
        profile: None,
        timeline_by_week: Vec::new(),
        timeline_by_month: Vec::new(),
        timeline_by_quarter: Vec::new(),
        leader_activity: None,
        teams_led,
    };
    let mut looked_for = Vec::new();
    if kind == PersonKind::Rep {
        looked_for.push("the rep's profile with their standing, and their growth timeline");
        read_models.profile = state
            .read
            .rep_profile(rep_id, today)
            .await
            .map_err(read_error)?
            .map(|p| {
                if reach == Reach::OwnRep {
                    p.for_rep()
                } else {
                    p
                }
            });
        // Each period's rows are judged against the standards measured in
        // it, so all three are theirs: a weekly standard's attainment is
        // in no month's row.
        for (kind, rows) in [
            (PeriodKind::Week, &mut read_models.timeline_by_week),
            (PeriodKind::Month, &mut read_models.timeline_by_month),
            (PeriodKind::Quarter, &mut read_models.timeline_by_quarter),
        ] {
            *rows = state
                .read
                .growth_timeline(rep_id, kind, NaiveDate::MIN, NaiveDate::MAX, today)
                .await
                .map_err(read_error)?
                .unwrap_or_default();
        }
    }
    if kind == PersonKind::Leader {
        looked_for.push("what the leader did per rep, and the teams they lead");
        read_models.leader_activity = leader_doc.map(|mut doc| {
            if let Reach::OwnLeader(led) = &reach {
                doc.reps.retain(|rep, _| {
                    let keep = current_team
                        .get(rep)
                        .copied()
                        .flatten()
                        .is_some_and(|t| led.contains(&t));
                    if !keep {
                        g.leave_out(OTHER_TEAMS, OTHER_TEAMS_WHY);
                    }
                    keep
                });
            }
            doc
        });
    }
    let read_found = u64::from(read_models.profile.is_some())
        + u64::from(!read_models.timeline_by_week.is_empty())
        + u64::from(!read_models.timeline_by_month.is_empty())
        + u64::from(!read_models.timeline_by_quarter.is_empty())
        + u64::from(read_models.leader_activity.is_some())
        + read_models.teams_led.len() as u64;
    g.searched.push(Searched {
        source: "the read models of the growth projection".into(),
        looked_for: if looked_for.is_empty() {
            "documents about them (there are none for an admin or auditor)".into()
        } else {
            looked_for.join("; ")
        },
        found: read_found,
    });

    // The sign-in records.
    let sign_in = match (access, &records) {
        (Some(access), Some(records)) => {
            let sign_in = sign_in_export(access, records, now);
            g.searched.push(Searched {
                source: "the sign-in records".into(),
                looked_for: "their account, every session (with those of developer tokens \
                             naming them) and every one-time sign-in link"
                    .into(),
                found: u64::from(sign_in.account.is_some())
                    + sign_in.sessions.len() as u64
                    + sign_in.sign_in_links.len() as u64,
            });
            sign_in
        }
        _ => SignInExport {
            available: false,
            account: None,
            running_sessions: 0,
            last_sign_in_at: None,
            sessions: Vec::new(),
            sign_in_links: Vec::new(),
        },
    };
    let not_included = not_included(kind, &id, sign_in.available);

    let left_out: Vec<LeftOut> = g
        .left_out
        .into_iter()
        .map(|(what, (count, why))| LeftOut {
            what: what.to_owned(),
            count,
            why: why.to_owned(),
        })
        .collect();
    Ok(PersonExport {
        person: Person {
            id: person,
            kind,
            name,
        },
        generated_at: now,
        as_of: today,
        complete: left_out.is_empty(),
        left_out,
        searched: g.searched,
        not_included,
        own_stream,
        events_elsewhere: g.elsewhere,
        read_models,
        sign_in,
    })
}

/// A person's sign-in records as the export shows them: times, never a
/// secret or its hash.
fn sign_in_export(
    access: &Access,
    records: &trellis_access::PersonRecords,
    now: DateTime<Utc>,
) -> SignInExport {
    let sessions: Vec<SessionExport> = records
        .sessions
        .iter()
        .map(|s| SessionExport {
            via: s.via.as_str().to_owned(),
            started_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            ended_at: s.ended_at,
            ended_by: s.ended_by.clone(),
            running: access.runs(s, now),
        })
        .collect();
    let account = records.account.as_ref().map(|a| AccountExport {
        account_id: a.id,
        role: match a.role {
            Role::Admin => PersonKind::Admin,
            Role::Auditor => PersonKind::Auditor,
            Role::Leader => PersonKind::Leader,
            Role::Rep | Role::Service => PersonKind::Rep,
        },
        name: a.name.clone(),
        email: a.email.clone(),
        oidc_subject: a.oidc_subject.clone(),
        created_at: a.created_at,
        created_by: a.created_by.clone(),
        disabled_at: a.disabled_at,
    });
    SignInExport {
        available: true,
        running_sessions: sessions.iter().filter(|s| s.running).count() as u64,
        // Each session is a sign-in: by a link, at the identity provider,
        // or with a developer token.
        last_sign_in_at: records.sessions.iter().map(|s| s.created_at).max(),
        account,
        sessions,
        sign_in_links: records
            .links
            .iter()
            .map(|l| LinkExport {
                created_at: l.created_at,
                created_by: l.created_by.clone(),
                expires_at: l.expires_at,
                used_at: l.used_at,
            })
            .collect(),
    }
}

/// What Trellis holds that an export about a `kind` of person leaves out,
/// and why; `sign_in`: whether the sign-in records were available.
fn not_included(kind: PersonKind, id: &str, sign_in: bool) -> Vec<NotIncluded> {
    let item = |what: &str, why: &str| NotIncluded {
        what: what.to_owned(),
        why: why.to_owned(),
    };
    let mut out = vec![
        item(
            "webhook deliveries",
            "a delivery carries an event to a subscriber: it is about events, not people, \
             and the events it carries are the log's, searched here",
        ),
        item(
            "secrets: session ids, sign-in link tokens, service tokens",
            "Trellis keeps only their SHA-256, which is no use to anyone and is not shown; \
             the times of each session and link are",
        ),
    ];
    if !sign_in {
        out.push(item(
            "sign-in records",
            "this service was started without the sign-in records; the dashboard's export \
             page shows them",
        ));
    }
    out.push(match kind {
        PersonKind::Rep => item(
            "other reps' streams",
            "a rep records only in their own stream (the write API's rule), and no other \
             rep's record names them",
        ),
        PersonKind::Leader => item(
            "the streams of reps never on a team they lead",
            "a leader records only for the reps of the teams they lead (the write API's rule)",
        ),
        PersonKind::Admin | PersonKind::Auditor => item(
            "events they recorded in reps' streams",
            &format!(
                "an admin may record in any rep's stream, so finding them is a scan of the \
                 whole log; an operator can run it: `trellis log | jq 'select(.actor == \
                 \"{id}\")'`"
            ),
        ),
    });
    out
}

/// What the export route needs: the read side, and the sign-in records
/// when the service was given them ([`crate::api_with_access`]).
#[derive(Debug, Clone)]
pub struct ExportState {
    pub reads: QueryState,
    pub access: Option<Access>,
}

impl FromRef<ExportState> for HttpState {
    fn from_ref(state: &ExportState) -> HttpState {
        state.reads.http.clone()
    }
}

/// Everything Trellis holds about a person (subject access).
///
/// `GET /v1/people/{person_id}/export`: for an admin, or for the person
/// themself (a rep or leader by their id, an admin or auditor by their
/// account id).
#[utoipa::path(get, path = "/v1/people/{person_id}/export", operation_id = "get_person_export",
    tag = "people",
    params(("person_id" = uuid::Uuid, Path, description = "The person: a rep's or leader's \
        id, or an admin's or auditor's sign-in account id")),
    responses(
        (status = 200, description = "Everything Trellis holds about the person: a rep's own \
            stream, events elsewhere that they recorded or that name them, the read models \
            about them and their sign-in records, with what was searched. A rep reading their \
            own leaves out what the domain hides from them, a leader reading their own what \
            is about reps of teams they no longer lead; `left_out` counts it",
            body = PersonExport),
        (status = 403, description = "Only an admin or the person themself may read it; \
            decided before anything is looked up",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No rep, leader or sign-in account has this id (or the id \
            is not a UUID)",
            body = Problem, content_type = "application/problem+json"),
        CommonErrors))]
pub async fn route(
    State(state): State<ExportState>,
    Principal(claims): Principal,
    ids: PathIds,
) -> Result<Response, ApiError> {
    let person = ids.uuid("person_id")?;
    let export = person_export(&state.reads, &claims, person, state.access.as_ref()).await?;
    Ok(Json(export).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_count_of_one_takes_the_singular_and_any_other_the_plural() {
        assert_eq!(plural(1, "row", "rows"), "1 row");
        assert_eq!(plural(0, "row", "rows"), "0 rows");
        assert_eq!(plural(3, "row", "rows"), "3 rows");
    }

    fn claims(role: Role, sub: &str) -> Claims {
        Claims {
            sub: sub.to_owned(),
            role,
            teams: vec![],
            grants: vec!["reads:read".into()],
            exp: i64::MAX,
            iat: None,
        }
    }

    #[test]
    fn an_admin_reads_anyone_and_everyone_else_only_themself() {
        let me = Uuid::now_v7();
        let other = Uuid::now_v7();
        let mine = me.to_string();
        assert_eq!(
            reach(&claims(Role::Admin, "admin"), other).ok(),
            Some(Reach::Complete)
        );
        assert_eq!(
            reach(&claims(Role::Rep, &mine), me).ok(),
            Some(Reach::OwnRep)
        );
        assert!(matches!(
            reach(&claims(Role::Leader, &mine), me),
            Ok(Reach::OwnLeader(_))
        ));
        assert_eq!(
            reach(&claims(Role::Auditor, &mine), me).ok(),
            Some(Reach::Complete)
        );
        for role in [Role::Rep, Role::Leader, Role::Auditor, Role::Service] {
            let refused = reach(&claims(role, &mine), other).unwrap_err();
            assert_eq!(refused.status().as_u16(), 403, "{role:?}");
        }
        assert!(reach(&claims(Role::Service, &mine), me).is_err());
    }

    #[test]
    fn an_event_is_found_by_its_actor_or_by_naming_the_id_anywhere() {
        let id = Uuid::now_v7().to_string();
        let payload = json!({"recipients": [{"kind": "leader", "id": id}], "n": 3});
        assert_eq!(found_by("someone", &payload, &id), vec![FoundBy::Names]);
        assert_eq!(
            found_by(&id, &json!({"team_id": "x"}), &id),
            vec![FoundBy::RecordedBy]
        );
        assert!(found_by("someone", &json!({"name": format!("{id}!")}), &id).is_empty());
        let hidden = BTreeSet::from([id.clone()]);
        assert!(names_any(
            &json!({"details": {"action_item_id": id}}),
            &hidden
        ));
    }
}
