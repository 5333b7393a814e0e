//! Support requests, the leader's side of "my customer is the sales team":
//! a rep raises one (`/reps/{id}/support-requests/new`: an obstacle, a
//! resource or training they need), their leader acknowledges it
//! (`…/{request_id}/acknowledgement`) and resolves it saying what was done
//! (`…/{request_id}/resolution`). Each posts the write API's request of
//! the same name.

use trellis_projections::growth::derive::SupportRequestView;

use super::RepVisit;
use axum::http::Method;

use super::quick::{Ask, Field, Kind, Quick, Spec, leader};
use crate::error::PageError;
use crate::html::esc;

/// The categories a request is raised under, as the API names them.
pub(crate) const CATEGORIES: [(&str, &str); 5] = [
    ("leads", "Leads: not enough, or not the right ones"),
    ("tools", "Tools: something I work with is in the way"),
    ("training", "Training I need"),
    ("process", "A process that slows me down"),
    ("other", "Something else"),
];

/// A rep raises a support request.
pub(crate) struct Raise;

impl Quick for Raise {
    type On = RepVisit;

    async fn spec(visit: &RepVisit, _: &Ask) -> Result<Spec, PageError> {
        let rep_id = visit.profile.rep_id;
        let options = CATEGORIES
            .iter()
            .map(|(v, l)| ((*v).to_owned(), (*l).to_owned()))
            .collect();
        Ok(Spec {
            title: "Ask for support".into(),
            lead: "Tell your leader what is in your way, or what you need to do your best \
                   work. They see it at once and answer here."
                .into(),
            fields: vec![
                Field::new("category", "What it is about", Kind::Choice(options)).required(),
                Field::new(
                    "description",
                    "What is in your way, and what would help",
                    Kind::Area,
                )
                .required(),
                Field::new("raised_on", "Raised on", Kind::Date)
                    .with(visit.state.today())
                    .required(),
            ],
            button: "Send to my leader",
            api: format!("/v1/reps/{rep_id}/support-requests"),
            fixed: serde_json::json!({}),
            done: format!("/reps/{rep_id}?recorded=support#support"),
            guarded: false,
            back: format!("/reps/{rep_id}"),
            method: Method::POST,
        })
    }
}

/// The request the path names, among the rep's: 404 when it is not theirs.
fn request<'a>(visit: &'a RepVisit, ask: &Ask) -> Result<&'a SupportRequestView, PageError> {
    let id = ask.id("request_id")?;
    let request = visit
        .profile
        .support_requests
        .iter()
        .find(|r| r.request_id.as_uuid() == id)
        .ok_or_else(|| {
            PageError::NotFound(format!(
                "{} has no support request {id}.",
                visit.profile.name
            ))
        })?;
    // A resolved request takes nothing more: say so rather than offer a
    // form whose save is refused.
    if let Some(on) = request.resolved_on {
        return Err(PageError::Closed {
            why: format!(
                "This support request ({}, raised on {}) was resolved on {on}. If the \
                 obstacle is back, {} can raise a new one.",
                super::team::category(request.category),
                request.raised_on,
                visit.profile.name
            ),
            back: format!("/reps/{}", visit.profile.rep_id),
        });
    }
    Ok(request)
}

/// What the request says, above the leader's forms.
fn quoted(r: &SupportRequestView) -> String {
    format!(
        "Raised on {}, about {}: <q>{}</q>",
        r.raised_on,
        super::team::category(r.category),
        esc(r.description.as_ref())
    )
}

/// A leader acknowledges a request: they have seen it and are on it.
pub(crate) struct Acknowledge;

impl Quick for Acknowledge {
    type On = RepVisit;

    async fn spec(visit: &RepVisit, ask: &Ask) -> Result<Spec, PageError> {
        visit.viewer.may_record_as_leader()?;
        let r = request(visit, ask)?;
        let rep_id = visit.profile.rep_id;
        let mut fields: Vec<Field> = leader(visit, "Acknowledged by")
            .await?
            .into_iter()
            .collect();
        fields.push(
            Field::new("on", "Acknowledged on", Kind::Date)
                .with(visit.state.today())
                .required(),
        );
        Ok(Spec {
            title: "Acknowledge a support request".into(),
            lead: quoted(r),
            fields,
            button: "Acknowledge",
            api: format!(
                "/v1/reps/{rep_id}/support-requests/{}/acknowledgement",
                r.request_id
            ),
            fixed: serde_json::json!({}),
            done: format!("/reps/{rep_id}?recorded=support_acknowledged#support"),
            guarded: true,
            back: format!("/reps/{rep_id}"),
            method: Method::POST,
        })
    }
}

/// A leader resolves a request, saying what was done.
pub(crate) struct Resolve;

impl Quick for Resolve {
    type On = RepVisit;

    async fn spec(visit: &RepVisit, ask: &Ask) -> Result<Spec, PageError> {
        visit.viewer.may_record_as_leader()?;
        let r = request(visit, ask)?;
        let rep_id = visit.profile.rep_id;
        let mut fields: Vec<Field> = leader(visit, "Resolved by").await?.into_iter().collect();
        fields.push(Field::new("resolution", "What was done", Kind::Area).required());
        fields.push(
            Field::new("on", "Resolved on", Kind::Date)
                .with(visit.state.today())
                .required(),
        );
        Ok(Spec {
            title: "Resolve a support request".into(),
            lead: quoted(r),
            fields,
            button: "Resolve",
            api: format!(
                "/v1/reps/{rep_id}/support-requests/{}/resolution",
                r.request_id
            ),
            fixed: serde_json::json!({}),
            done: format!("/reps/{rep_id}?recorded=resolved#support"),
            guarded: true,
            back: format!("/reps/{rep_id}"),
            method: Method::POST,
        })
    }
}
