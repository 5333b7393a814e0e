//! `GET /reps/{id}/audit`: the rep's events in order, who recorded each and
//! when, corrections linked to what they correct, and whether the stream's
//! hash chain verifies. The queries crate's audit trail is shown when its
//! hook answers; until then the dashboard reads the rep's stream itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use trellis_domain::rep::{RepEvent, Visibility};
use trellis_eventstore::chain::Verifier;

use super::rep::visible_profile;
use crate::auth::Viewer;
use crate::data;
use crate::html::{esc, page};
use crate::{DashboardState, PageError};

/// The ids an event introduces (for corrections to link to).
fn fact_ids(event: &RepEvent) -> Vec<String> {
    match event {
        RepEvent::FeedbackGiven(e) => vec![e.feedback_id.to_string()],
        RepEvent::SkillAssessed(e) => vec![e.assessment_id.to_string()],
        RepEvent::CoachingSessionHeld(e) => vec![e.session_id.to_string()],
        RepEvent::TrainingCompleted(e) => vec![e.training_id.to_string()],
        RepEvent::PerformanceMeasured(e) => vec![e.measurement_id.to_string()],
        _ => vec![],
    }
}

/// The id of the record whose content the event shows, for those a rep may
/// not see (see [`data::hidden_from_rep`]).
fn record_of(event: &RepEvent) -> Option<String> {
    match event {
        RepEvent::FeedbackGiven(e) => Some(e.feedback_id.to_string()),
        RepEvent::CoachingSessionHeld(e) => Some(e.session_id.to_string()),
        RepEvent::FactCorrected(e) => Some(e.fact_id.to_string()),
        RepEvent::ActionItemCompleted(e) => Some(e.action_item_id.to_string()),
        RepEvent::ActionItemDropped(e) => Some(e.action_item_id.to_string()),
        _ => None,
    }
}

fn is_private(event: &RepEvent) -> bool {
    match event {
        RepEvent::FeedbackGiven(e) => e.visibility == Visibility::Private,
        RepEvent::CoachingSessionHeld(e) => e.visibility == Visibility::Private,
        _ => false,
    }
}

pub(crate) async fn handler(
    State(state): State<DashboardState>,
    viewer: Viewer,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    let profile = visible_profile(&state, &viewer, &raw).await?;
    let rep_id = profile.rep_id;
    let title = format!("Audit trail: {}", profile.name);
    let mut b = format!(
        "<h1>Audit trail</h1><p class=\"lead\"><a href=\"/reps/{rep_id}\">{}</a>: every event recorded about \
         this rep, oldest first, with who recorded it and when.</p>",
        esc(profile.name.as_ref())
    );
    if let Some(hooks) = state.hooks() {
        match hooks.audit_trail(viewer.claims(), rep_id.as_uuid()).await {
            Ok(Some(fragment)) => {
                b.push_str(&fragment);
                return Ok(Html(page(&title, Some(viewer.claims()), &b)).into_response());
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "the audit_trail hook failed"),
        }
    }
    let events = data::rep_events(&state, rep_id).await?;
    let mut verifier = Verifier::new();
    for event in &events {
        verifier.check(event);
    }
    let report = verifier.finish();
    if report.is_intact() {
        let _ = write!(
            b,
            "<p class=\"notice\" role=\"status\"><strong>Hash chain verified:</strong> all {} events of this \
             stream follow each other unaltered.</p>",
            events.len()
        );
    } else {
        for finding in &report.findings {
            let _ = write!(
                b,
                "<p class=\"error\" role=\"alert\"><strong>Hash chain broken:</strong> {}</p>",
                esc(&finding.to_string())
            );
        }
    }
    let leaders = data::leader_names(&state).await?;
    let decoded = trellis_commands::streams::decode_rep_events(&events);
    // A rep sees neither what the domain hides from them (private notes,
    // feedback and coaching sessions retracted since) nor the corrections of it.
    let hidden = if viewer.sees_private() {
        BTreeSet::new()
    } else {
        data::hidden_from_rep(decoded.iter().flatten())
    };
    let mut version_of: BTreeMap<String, u64> = BTreeMap::new();
    for (e, d) in events.iter().zip(&decoded) {
        for id in d.iter().flat_map(fact_ids) {
            version_of.insert(id, e.stream_version);
        }
    }
    b.push_str(
        "<div class=\"scroll\"><table><thead><tr><th scope=\"col\" class=\"n\">#</th><th scope=\"col\">Event</th>\
         <th scope=\"col\">Happened</th><th scope=\"col\">Recorded</th><th scope=\"col\">By</th>\
         <th scope=\"col\">Note</th></tr></thead><tbody>",
    );
    for (e, d) in events.iter().zip(&decoded) {
        if d.as_ref()
            .and_then(record_of)
            .is_some_and(|id| hidden.contains(&id))
        {
            continue;
        }
        let actor = &e.metadata.actor;
        let by = leaders.get(actor).map_or_else(
            || {
                if *actor == rep_id.to_string() {
                    "the rep".to_owned()
                } else {
                    actor.clone()
                }
            },
            Clone::clone,
        );
        let note = match d {
            Some(RepEvent::FactCorrected(c)) => {
                let target = version_of.get(&c.fact_id.to_string()).map_or_else(
                    || "an earlier record".to_owned(),
                    |v| format!("<a href=\"#v{v}\">event #{v}</a>"),
                );
                format!("corrects {target}: {}", esc(c.reason.as_ref()))
            }
            Some(RepEvent::PerformanceMeasured(m)) => {
                format!(
                    "{} for {}: {}",
                    esc(&m.metric.to_string()),
                    m.period,
                    m.value.get()
                )
            }
            Some(event) if is_private(event) => {
                "<span class=\"tag private\">private</span>".to_owned()
            }
            _ => String::new(),
        };
        let _ = write!(
            b,
            "<tr id=\"v{v}\"><td class=\"n\">{v}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{note}</td></tr>",
            esc(&e.event_type),
            e.metadata.occurred_at.date_naive(),
            e.metadata.recorded_at.format("%Y-%m-%d %H:%M:%S UTC"),
            esc(&by),
            v = e.stream_version,
        );
    }
    b.push_str("</tbody></table></div>");
    Ok(Html(page(&title, Some(viewer.claims()), &b)).into_response())
}
