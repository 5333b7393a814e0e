//! `GET /reps/{id}/audit`: the rep's events in order, who recorded each and
//! when, corrections linked to what they correct, and whether the stream's
//! hash chain verifies: the read side's audit trail, the one
//! `GET /v1/reps/{id}/audit` serves, as a table. A rep reading their own
//! sees no row whose content the trail withholds from them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;
use trellis_domain::{Period, PeriodKind, Role};
use trellis_projections::growth::{StandardDoc, kinds};
use trellis_queries::audit::{AuditEntry, MAX_PAGE, audit_trail};

use super::RepVisit;
use crate::data;
use crate::error::PageError;
use crate::html::{esc, notice_ok, page, stacked_table_start};

/// Each metric's standard, by metric id and the kind of period measured:
/// its name and unit, when the standards measuring it in that kind of
/// period for the rep's role agree on them (several may share a metric:
/// other roles, other periods).
type Metrics = BTreeMap<(String, PeriodKind), (String, String)>;

fn metrics_of(standards: &[StandardDoc], role: &Role) -> Metrics {
    let mut found: BTreeMap<(String, PeriodKind), BTreeSet<(String, String)>> = BTreeMap::new();
    for s in standards {
        if s.versions.iter().any(|v| v.roles.contains(role)) {
            found
                .entry((s.metric.to_string(), s.period))
                .or_default()
                .insert((s.name.to_string(), s.unit.to_string()));
        }
    }
    found
        .into_iter()
        .filter_map(|(key, names)| {
            let mut names = names.into_iter();
            match (names.next(), names.next()) {
                (Some(only), None) => Some((key, only)),
                _ => None,
            }
        })
        .collect()
}

/// What the note column says of an entry, from its payload; `metrics`:
/// how the standards name a measured metric ([`metrics_of`]).
fn note(entry: &AuditEntry, metrics: &Metrics) -> String {
    let payload = entry.payload.as_ref().unwrap_or(&Value::Null);
    let text = |field: &str| payload[field].as_str().unwrap_or_default().to_owned();
    if let Some(target) = &entry.corrects {
        // What the record became, so an auditor reads the new value here and
        // not only in the event's JSON.
        let correction = &payload["correction"];
        let became = match correction["kind"].as_str() {
            Some("measured_value") => format!("value now {}", correction["value"]),
            Some("skill_level") => format!("level now {}", correction["level"]),
            Some("retracted") => "retracted".to_owned(),
            _ => String::new(),
        };
        return format!(
            "corrects <a href=\"#v{v}\">event #{v}</a>{}: {}",
            if became.is_empty() {
                String::new()
            } else {
                format!(" ({})", esc(&became))
            },
            esc(&text("reason")),
            v = target.stream_version
        );
    }
    let private = if payload["visibility"] == "private" {
        " <span class=\"tag private\">private</span>"
    } else {
        ""
    };
    match entry.event_type.as_str() {
        // The metric as the standards name it, its id beside it for who
        // cross-checks the log, as the event's type is.
        "PerformanceMeasured" => {
            // The value exactly as recorded, as a correction's row shows it.
            let metric = text("metric");
            let value = &payload["value"];
            let kind = text("period").parse::<Period>().ok().map(|p| p.kind());
            match kind.and_then(|kind| metrics.get(&(metric.clone(), kind))) {
                // One item of the cell's line, as the event's words are.
                Some((name, unit)) => format!(
                    "<span>{} <span class=\"muted\">({})</span>, {}: {value} {}</span>",
                    esc(name),
                    esc(&metric),
                    esc(&text("period")),
                    esc(unit)
                ),
                None => format!("{}, {}: {value}", esc(&metric), esc(&text("period"))),
            }
        }
        // Why, as the admin gave it: kept readable after the erasure so an
        // auditor can see what it rests on.
        "PersonalDataErased" => esc(&text("reason")),
        // The figures of the record, so an auditor need not open the
        // rep's page to read them.
        "SkillAssessed" => format!("level {}", payload["level"]),
        "FeedbackGiven" => format!("{}{private}", esc(&text("kind"))),
        "CoachingSessionHeld" => format!("{} minutes{private}", payload["duration_minutes"]),
        _ if payload["visibility"] == "private" => {
            "<span class=\"tag private\">private</span>".to_owned()
        }
        _ => String::new(),
    }
}

/// Who recorded an event, when it is no leader of the rep's and not the
/// rep: an admin, an auditor or a service account, by the name their
/// sign-in gave ("admin:demo" is the admin "demo").
fn actor_in_words(actor: &str) -> String {
    match actor.split_once(':') {
        Some(("admin", who)) => format!("admin {who}"),
        Some(("service", who)) => format!("service account {who}"),
        Some(("auditor", who)) => format!("auditor {who}"),
        _ => actor.to_owned(),
    }
}

/// What a rep's event records, in words (its type, for who cross-checks
/// the log, stays beside them).
fn event_in_words(event_type: &str) -> Option<&'static str> {
    Some(match event_type {
        "RepJoined" => "Joined",
        "RepMovedTeam" => "Moved to another team",
        "RepRoleChanged" => "Changed role",
        "RepRenamed" => "Name changed",
        "RepDeparted" => "Departed",
        "ExpectationsAcknowledged" => "Acknowledged a standard",
        "FeedbackGiven" => "Feedback given",
        "FeedbackAcknowledged" => "Acknowledged feedback",
        "SkillAssessed" => "Skill assessed",
        "CoachingSessionHeld" => "Coaching session",
        "ActionItemCompleted" => "Action item done",
        "ActionItemDropped" => "Action item dropped",
        "TrainingCompleted" => "Training completed",
        "PerformanceMeasured" => "Measurement",
        "SupportRequested" => "Asked for support",
        "SupportAcknowledged" => "Support request acknowledged",
        "SupportResolved" => "Support request resolved",
        "ImprovementPlanStarted" => "Improvement plan started",
        "PlanCheckpointRecorded" => "Plan checkpoint",
        "ImprovementPlanClosed" => "Improvement plan closed",
        "FactCorrected" => "Correction",
        "ReviewHeld" => "Review held",
        "PersonalDataErased" => "Personal data erased",
        _ => return None,
    })
}

pub(crate) async fn handler(
    RepVisit {
        state,
        viewer,
        profile,
    }: RepVisit,
) -> Result<Response, PageError> {
    let rep_id = profile.rep_id;
    let title = format!("Audit trail: {}", profile.name);
    let mut b = format!(
        "<h1>Audit trail</h1><p class=\"lead\"><a href=\"/reps/{rep_id}\">{}</a>: every event recorded about \
         this rep, oldest first, with who recorded it and when.</p>",
        esc(profile.name.as_ref())
    );
    let mut trail = audit_trail(state.reads(), viewer.claims(), rep_id, 0, MAX_PAGE).await?;
    while let Some(after) = trail.next_after_version {
        let next = audit_trail(state.reads(), viewer.claims(), rep_id, after, MAX_PAGE).await?;
        trail.events.extend(next.events);
        trail.next_after_version = next.next_after_version;
    }
    match &trail.chain_problem {
        None => {
            b.push_str(&notice_ok(&format!(
                "<strong>Hash chain verified:</strong> all {} events of this stream follow \
                 each other unaltered.",
                trail.events_total
            )));
        }
        Some(problem) => {
            let _ = write!(
                b,
                "<p class=\"error\" role=\"alert\"><strong>Hash chain broken:</strong> {}</p>",
                esc(problem)
            );
        }
    }
    // A rep reading their own trail is told how many events it does not
    // show them, and why, so its numbering's gaps are not a mystery.
    let withheld = trail.events.iter().filter(|e| e.withheld).count();
    if withheld > 0 {
        let _ = write!(
            b,
            "<p class=\"notice\" role=\"status\">{} of these events {} not listed here: \
             they are not shown to reps: private feedback and coaching sessions, those \
             retracted since, and the corrections and dropped items that belong to them. \
             Their places in the numbering are kept, and the hash chain above covers them.</p>",
            withheld,
            if withheld == 1 { "is" } else { "are" }
        );
    }
    let leaders = data::actor_names(&state).await?;
    let standards: Vec<StandardDoc> = state.models().all(kinds::STANDARD).await?;
    let metrics = metrics_of(&standards, &profile.role);
    // On a phone each event is a block of labelled lines (`stack`): six
    // columns, the note among them, left it to scroll sideways.
    b.push_str(&stacked_table_start(&[
        "#", "Event", "Happened", "Recorded", "By", "Note",
    ]));
    // A rep sees neither what the domain hides from them (private notes,
    // feedback and coaching sessions retracted since) nor the corrections of it.
    for entry in trail.events.iter().filter(|e| !e.withheld) {
        let actor = &entry.actor;
        let by = leaders.get(actor).map_or_else(
            || {
                if *actor == rep_id.to_string() {
                    "the rep".to_owned()
                } else {
                    actor_in_words(actor)
                }
            },
            Clone::clone,
        );
        let what = match event_in_words(&entry.event_type) {
            // One item of the cell's line, so the type (one long word)
            // wraps under the words on a phone instead of running off.
            Some(words) => format!(
                "<span>{words} <span class=\"muted\">({})</span></span>",
                esc(&entry.event_type)
            ),
            None => esc(&entry.event_type),
        };
        let _ = write!(
            b,
            "<tr id=\"v{v}\"><td class=\"n\" data-label=\"#\">{v}</td><td data-label=\"Event\">{}</td>\
             <td data-label=\"Happened\">{}</td><td data-label=\"Recorded\">{}</td>\
             <td data-label=\"By\">{}</td><td data-label=\"Note\">{}</td></tr>",
            what,
            entry.occurred_at.date_naive(),
            entry.recorded_at.format("%Y-%m-%d %H:%M:%S UTC"),
            esc(&by),
            note(entry, &metrics),
            v = entry.stream_version,
        );
    }
    b.push_str("</tbody></table></div>");
    Ok(Html(page(&title, Some(viewer.signed()), &b)).into_response())
}

#[cfg(test)]
mod tests {
    use super::event_in_words;

    fn standard(
        name: &str,
        metric: &str,
        period: &str,
        unit: &str,
        role: &str,
    ) -> super::StandardDoc {
        serde_json::from_value(serde_json::json!({
            "standard_id": uuid::Uuid::new_v4(), "name": name, "metric": metric,
            "kind": "quantity", "direction": "at_least", "unit": unit, "period": period,
            "versions": [ { "version": 1, "target": 10.0, "roles": [role], "ramp": [],
                            "effective_from": "2026-01-01" } ],
            "retired_from": null,
        }))
        .expect("a standard")
    }

    /// Several standards may measure one metric: a measurement is named by
    /// the one for its kind of period and the rep's role, or by its metric
    /// id alone when two of them would name it differently.
    #[test]
    fn a_measurement_is_named_by_its_own_standard_or_by_its_metric() {
        use trellis_domain::{PeriodKind, Role};
        let sdr = Role::try_from("SDR").expect("a role");
        let standards = [
            standard("Calls made", "calls", "week", "calls", "SDR"),
            standard("Calls a month", "calls", "month", "calls", "SDR"),
            standard("AE calls", "calls", "week", "dials", "AE"),
            standard("Demos", "demos", "week", "demos", "SDR"),
            standard("Demos held", "demos", "week", "demos", "SDR"),
        ];
        let metrics = super::metrics_of(&standards, &sdr);
        let named = |metric: &str, kind| metrics.get(&(metric.to_owned(), kind)).cloned();
        assert_eq!(
            named("calls", PeriodKind::Week),
            Some(("Calls made".into(), "calls".into()))
        );
        assert_eq!(
            named("calls", PeriodKind::Month),
            Some(("Calls a month".into(), "calls".into()))
        );
        assert_eq!(named("demos", PeriodKind::Week), None, "two names: neither");
    }

    #[test]
    fn who_recorded_an_event_reads_as_their_role_and_name() {
        use super::actor_in_words;
        assert_eq!(actor_in_words("admin:demo"), "admin demo");
        assert_eq!(
            actor_in_words("service:crm-sync"),
            "service account crm-sync"
        );
        assert_eq!(actor_in_words("someone"), "someone");
    }

    /// A new event type of a rep's stream would show as its bare type name.
    #[test]
    fn every_event_of_a_rep_is_said_in_words() {
        for (event_type, _) in trellis_domain::RepEvent::TYPES {
            assert!(event_in_words(event_type).is_some(), "{event_type}");
        }
    }
}
