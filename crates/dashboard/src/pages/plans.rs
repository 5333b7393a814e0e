//! Improvement plans, accountability with empathy: a leader starts one with
//! its targets and review date (`/reps/{id}/improvement-plans/new`), records
//! checkpoints as it runs (`…/{plan_id}/checkpoints`) and closes it with its
//! outcome (`…/{plan_id}/closure`). Each posts the write API's request of
//! the same path.

use chrono::Days;
use trellis_projections::growth::derive::PlanView;

use super::RepVisit;
use axum::http::Method;

use super::quick::{Ask, Field, Kind, Quick, Spec, leader};
use crate::error::PageError;
use crate::html::esc;
use trellis_queries::export::plural;

/// Days from the start of a plan to its review, as the form proposes.
const REVIEW_AFTER_DAYS: u64 = 30;

/// A leader starts an improvement plan.
pub(crate) struct Start;

impl Quick for Start {
    type On = RepVisit;

    async fn spec(visit: &RepVisit, _: &Ask) -> Result<Spec, PageError> {
        visit.viewer.may_record_as_leader()?;
        let rep_id = visit.profile.rep_id;
        let today = visit.state.today();
        let review = today
            .checked_add_days(Days::new(REVIEW_AFTER_DAYS))
            .unwrap_or(today);
        let mut fields: Vec<Field> = leader(visit, "Plan led by").await?.into_iter().collect();
        fields.extend([
            Field::new(
                "targets",
                "Targets, one per line: what good looks like by the review",
                Kind::Lines {
                    key: Some("description"),
                },
            )
            .required(),
            Field::new("started_on", "Starts on", Kind::Date)
                .with(today)
                .required(),
            Field::new("review_on", "Review on", Kind::Later)
                .with(review)
                .required(),
        ]);
        Ok(Spec {
            title: "Start an improvement plan".into(),
            lead: format!(
                "For {}: clear targets, a date to review them, and your support on the way.",
                esc(visit.profile.name.as_ref())
            ),
            fields,
            button: "Start the plan",
            api: format!("/v1/reps/{rep_id}/improvement-plans"),
            fixed: serde_json::json!({}),
            done: format!("/reps/{rep_id}?recorded=plan#plans"),
            guarded: true,
            back: format!("/reps/{rep_id}"),
            method: Method::POST,
        })
    }
}

/// The plan the path names, among the rep's: 404 when it is not theirs.
fn plan<'a>(visit: &'a RepVisit, ask: &Ask) -> Result<&'a PlanView, PageError> {
    let id = ask.id("plan_id")?;
    let plan = visit
        .profile
        .plans
        .iter()
        .find(|p| p.plan_id.as_uuid() == id)
        .ok_or_else(|| {
            PageError::NotFound(format!(
                "{} has no improvement plan {id}.",
                visit.profile.name
            ))
        })?;
    // A closed plan takes no checkpoint and no second closing.
    if let Some(on) = plan.closed_on {
        return Err(PageError::Closed {
            why: format!(
                "This improvement plan (started on {}) was closed on {on}. To go on, start a \
                 new plan from {}'s page.",
                plan.started_on, visit.profile.name
            ),
            back: format!("/reps/{}", visit.profile.rep_id),
        });
    }
    Ok(plan)
}

/// What the plan is, above its forms.
fn described(p: &PlanView) -> String {
    let targets: Vec<String> = p
        .targets
        .iter()
        .map(|t| format!("<q>{}</q>", esc(t.description.as_ref())))
        .collect();
    format!(
        "Started on {}, to review on {}, with {} so far. Targets: {}.",
        p.started_on,
        p.review_on,
        plural(p.checkpoints.len() as u64, "checkpoint", "checkpoints"),
        targets.join(", ")
    )
}

/// A leader records a checkpoint of an open plan.
pub(crate) struct Checkpoint;

impl Quick for Checkpoint {
    type On = RepVisit;

    async fn spec(visit: &RepVisit, ask: &Ask) -> Result<Spec, PageError> {
        visit.viewer.may_record_as_leader()?;
        let p = plan(visit, ask)?;
        let rep_id = visit.profile.rep_id;
        Ok(Spec {
            title: "Record a plan checkpoint".into(),
            lead: described(p),
            fields: vec![
                Field::new("note", "How it is going against the targets", Kind::Area).required(),
                Field::new("on", "Checked on", Kind::Date)
                    .with(visit.state.today())
                    .required(),
            ],
            button: "Record the checkpoint",
            api: format!(
                "/v1/reps/{rep_id}/improvement-plans/{}/checkpoints",
                p.plan_id
            ),
            fixed: serde_json::json!({}),
            done: format!("/reps/{rep_id}?recorded=checkpoint#plans"),
            guarded: true,
            back: format!("/reps/{rep_id}"),
            method: Method::POST,
        })
    }
}

/// A leader closes a plan with its outcome.
pub(crate) struct Close;

impl Quick for Close {
    type On = RepVisit;

    async fn spec(visit: &RepVisit, ask: &Ask) -> Result<Spec, PageError> {
        visit.viewer.may_record_as_leader()?;
        let p = plan(visit, ask)?;
        let rep_id = visit.profile.rep_id;
        let outcomes = [
            ("met", "Met: the targets were reached"),
            ("extended", "Extended: more time, with a new plan"),
            ("not_met", "Not met"),
        ]
        .iter()
        .map(|(v, l)| ((*v).to_owned(), (*l).to_owned()))
        .collect();
        Ok(Spec {
            title: "Close an improvement plan".into(),
            lead: described(p),
            fields: vec![
                Field::new("outcome", "Outcome", Kind::Choice(outcomes)).required(),
                Field::new("note", "Why, in a few words", Kind::Area).required(),
                Field::new("on", "Closed on", Kind::Date)
                    .with(visit.state.today())
                    .required(),
            ],
            button: "Close the plan",
            api: format!("/v1/reps/{rep_id}/improvement-plans/{}/closure", p.plan_id),
            fixed: serde_json::json!({}),
            done: format!("/reps/{rep_id}?recorded=closed#plans"),
            guarded: true,
            back: format!("/reps/{rep_id}"),
            method: Method::POST,
        })
    }
}
