//! The rest of a week's records, each a small form posting the write API's
//! request of the same path: a measurement against a standard
//! (`/reps/{id}/measurements/new`), dropping an open action item
//! (`/reps/{id}/action-items/{item_id}/drop`), retracting or correcting a
//! record with a reason (`/reps/{id}/corrections/new?fact=…&as=…`), and
//! recording a review of the packet a leader has just read
//! (`/reps/{id}/reviews/new?from=…&to=…`).

use std::collections::BTreeSet;

use serde_json::json;
use trellis_domain::{Period, PeriodKind};
use trellis_projections::growth::{StandardDoc, kinds};
use trellis_queries::packet::review_packet;

use axum::http::Method;

use super::quick::{Ask, Field, Kind, Quick, Spec};
use super::{RepVisit, query_date};
use crate::error::PageError;
use crate::html::esc;

/// A leader records a measured value for a period.
pub(crate) struct Measure;

impl Quick for Measure {
    type On = RepVisit;

    async fn spec(visit: &RepVisit, _: &Ask) -> Result<Spec, PageError> {
        visit.viewer.may_record_as_leader()?;
        let rep_id = visit.profile.rep_id;
        let today = visit.state.today();
        let standards: Vec<StandardDoc> = visit.state.models().all(kinds::STANDARD).await?;
        let in_force: Vec<&StandardDoc> = standards
            .iter()
            .filter(|s| s.version_in_force(today).is_some())
            .collect();
        // Each standard with the period it is measured in: a month entered
        // for a weekly standard counts against nothing.
        let every = |kind: PeriodKind| match kind {
            PeriodKind::Week => "weekly",
            PeriodKind::Month => "monthly",
            PeriodKind::Quarter => "quarterly",
        };
        let metrics: BTreeSet<(String, String)> = in_force
            .iter()
            .map(|s| {
                (
                    s.metric.to_string(),
                    format!("{}: {}, {}", s.name, s.unit, every(s.period)),
                )
            })
            .collect();
        // The form opens on the current period of the kind most standards
        // are measured in (weeks when there are none).
        let kind = [PeriodKind::Week, PeriodKind::Month, PeriodKind::Quarter]
            .into_iter()
            .max_by_key(|k| {
                (
                    in_force.iter().filter(|s| s.period == *k).count(),
                    *k == PeriodKind::Week,
                )
            })
            .unwrap_or(PeriodKind::Week);
        Ok(Spec {
            title: "Record a measurement".into(),
            lead: format!(
                "What {} achieved in a period, measured against a standard. Recording a \
                 period again replaces its value; the earlier one stays in the audit trail.",
                esc(visit.profile.name.as_ref())
            ),
            fields: vec![
                Field::new(
                    "metric",
                    "Standard",
                    Kind::Choice(metrics.into_iter().collect()),
                )
                .required(),
                Field::new(
                    "period",
                    "Period: a week like 2026-W05, a month like 2026-03 or a quarter like 2026-Q1",
                    Kind::Text,
                )
                .with(Period::containing(kind, today))
                .required(),
                Field::new(
                    "value",
                    "Value",
                    Kind::Number("Enter the measured value as a number, like 12 or 4.5."),
                )
                .required(),
            ],
            button: "Record the measurement",
            api: format!("/v1/reps/{rep_id}/measurements"),
            fixed: json!({ "source": "manual" }),
            done: format!("/reps/{rep_id}?recorded=measurement"),
            guarded: false,
            back: format!("/reps/{rep_id}"),
            method: Method::POST,
        })
    }
}

/// A leader, or the rep who owns it, drops an open action item with a reason.
pub(crate) struct DropItem;

impl Quick for DropItem {
    type On = RepVisit;

    async fn spec(visit: &RepVisit, ask: &Ask) -> Result<Spec, PageError> {
        let id = ask.id("action_item_id")?;
        let rep_id = visit.profile.rep_id;
        let item = visit
            .profile
            .open_action_items
            .iter()
            .find(|i| i.action_item_id.as_uuid() == id)
            // A rep sees nothing of a private session, its items included.
            .filter(|i| {
                !visit.viewer.is_rep() || i.visibility == trellis_domain::rep::Visibility::Shared
            })
            .ok_or_else(|| {
                PageError::NotFound(format!(
                    "{} has no open action item {id}: it may be done or dropped already.",
                    visit.profile.name
                ))
            })?;
        Ok(Spec {
            title: "Drop an action item".into(),
            lead: format!(
                "<q>{}</q>, due on {}. It stays in the history as dropped, with your reason.",
                esc(item.description.as_ref()),
                item.due_on
            ),
            fields: vec![
                Field::new("reason", "Why it no longer needs doing", Kind::Area).required(),
                Field::new("on", "Dropped on", Kind::Date)
                    .with(visit.state.today())
                    .required(),
            ],
            button: "Drop the item",
            api: format!("/v1/reps/{rep_id}/action-items/{id}/drop"),
            fixed: json!({}),
            done: format!("/reps/{rep_id}?recorded=dropped#todo"),
            guarded: true,
            back: format!("/reps/{rep_id}"),
            method: Method::POST,
        })
    }
}

/// A leader retracts a record, or corrects an assessment's level or a
/// measurement's value; the record stays in the history, superseded.
pub(crate) struct Correct;

impl Quick for Correct {
    type On = RepVisit;

    async fn spec(visit: &RepVisit, ask: &Ask) -> Result<Spec, PageError> {
        visit.viewer.may_record_as_leader()?;
        let rep_id = visit.profile.rep_id;
        let fact = ask.query.get("fact").map_or("", String::as_str);
        if uuid::Uuid::parse_str(fact).is_err() {
            return Err(PageError::BadRequest(
                "Open this form from the record you want to correct (its link names the record)."
                    .into(),
            ));
        }
        let mut fields = vec![Field::new("fact_id", "Record", Kind::Hidden).with(fact)];
        let (title, kind) = match ask.query.get("as").map(String::as_str) {
            Some("level") => {
                fields.push(
                    Field::new(
                        "correction.level",
                        "The level it should have been",
                        Kind::Level,
                    )
                    .required(),
                );
                fields.push(Field::new(
                    "correction.evidence",
                    "Evidence for that level",
                    Kind::Area,
                ));
                ("Correct an assessment's level", "skill_level")
            }
            Some("value") => {
                fields.push(Field::new(
                    "correction.value",
                    "The value it should have been",
                    Kind::Number("Enter the correct value as a number, like 12 or 4.5."),
                ));
                ("Correct a measurement's value", "measured_value")
            }
            Some("retract") => ("Retract a record", "retracted"),
            other => {
                return Err(PageError::BadRequest(format!(
                    "A correction is a retraction (as=retract), a level (as=level) or a value \
                     (as=value), not {:?}; open it from the record you want to correct.",
                    other.unwrap_or("")
                )));
            }
        };
        fields.push(Field::new("reason", "Why", Kind::Area).required());
        let named = the_record(visit, fact)
            .await?
            .map_or(String::new(), |record| format!("{record}. "));
        Ok(Spec {
            title: title.into(),
            lead: format!(
                "{named}The record stays in the history, marked as corrected with your reason; \
                 what is derived from it counts the correction from now on."
            ),
            fields,
            button: "Record the correction",
            api: format!("/v1/reps/{rep_id}/corrections"),
            fixed: json!({ "correction": { "kind": kind } }),
            done: format!("/reps/{rep_id}?recorded=corrected#timeline"),
            guarded: true,
            back: format!("/reps/{rep_id}"),
            method: Method::POST,
        })
    }
}

/// The record `fact` of the rep's timeline, as the timeline names it (its
/// title, date and the start of its text), escaped for the page; None when
/// the viewer's timeline has no such record.
async fn the_record(visit: &RepVisit, fact: &str) -> Result<Option<String>, PageError> {
    use super::Seen;
    let (history, _) = trellis_queries::asof::readable_history(
        visit.state().reads(),
        visit.viewer().claims(),
        visit.profile.rep_id,
    )
    .await?;
    let names = visit
        .state()
        .models()
        .all::<trellis_projections::growth::CompetencyDoc>(kinds::COMPETENCY)
        .await?
        .into_iter()
        .map(|c| (c.competency_id.to_string(), c.name.to_string()))
        .collect();
    let events = history.stream().events().filter_map(|e| match &e.event {
        trellis_domain::Event::Rep(event) => Some(event),
        _ => None,
    });
    let entries = crate::data::timeline_entries(events, &names, visit.viewer().sees_private());
    Ok(entries
        .into_iter()
        .find(|e| e.fact.as_ref().is_some_and(|(id, _)| id == fact))
        .map(|e| {
            let text = e.text.as_deref().map_or(String::new(), |t| {
                let start: String = t.chars().take(120).collect();
                let more = if start.len() < t.len() { "…" } else { "" };
                format!(": “{}{more}”", esc(&start))
            });
            let since = e.corrected.as_deref().map_or(String::new(), |c| {
                format!(". <strong>Already {}</strong>", esc(c))
            });
            format!(
                "<strong>{}</strong> of {}{text}{since}",
                esc(&e.title),
                e.on
            )
        }))
}

/// A leader records that the review of a period was held, on the packet
/// they read (its SHA-256 as the page showed it).
pub(crate) struct Review;

impl Quick for Review {
    type On = RepVisit;

    async fn spec(visit: &RepVisit, ask: &Ask) -> Result<Spec, PageError> {
        visit.viewer.may_record_as_leader()?;
        let rep_id = visit.profile.rep_id;
        let date = |name: &str| {
            query_date(ask.query.get(name).map(String::as_str), name)?.ok_or_else(|| {
                PageError::BadRequest(format!(
                    "Open this form from a review packet (its link gives the period's {name})."
                ))
            })
        };
        let (from, to) = (date("from")?, date("to")?);
        let (_, sha256) =
            review_packet(visit.state.reads(), visit.viewer.claims(), rep_id, from, to).await?;
        Ok(Spec {
            title: "Record a review".into(),
            lead: format!(
                "The review of {} for {from} to {to}, based on the review packet you read. \
                 The log keeps the packet's fingerprint with the review, so the packet can be \
                 shown unchanged later: <code>{sha256}</code>.",
                esc(visit.profile.name.as_ref())
            ),
            fields: vec![
                Field::new("period_from", "From", Kind::Hidden).with(from),
                Field::new("period_to", "To", Kind::Hidden).with(to),
                Field::new("packet_sha256", "Packet", Kind::Hidden).with(&sha256),
                Field::new("on", "Held on", Kind::Date)
                    .with(visit.state.today())
                    .required(),
            ],
            button: "Record the review",
            api: format!("/v1/reps/{rep_id}/reviews"),
            fixed: json!({}),
            done: format!("/reps/{rep_id}?recorded=review#reviews"),
            guarded: false,
            back: format!("/reps/{rep_id}"),
            method: Method::POST,
        })
    }
}
