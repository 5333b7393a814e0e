//! One module per page, and what they share.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::NaiveDate;
use trellis_domain::{LeaderId, RepId, TeamId};
use uuid::Uuid;

use trellis_projections::growth::derive::RepProfile;

use crate::auth::Viewer;
use crate::data;
use crate::error::PageError;
use crate::state::DashboardState;

pub(crate) mod access;
pub(crate) mod actions;
pub(crate) mod admin;
pub(crate) mod assessment;
pub(crate) mod audit;
pub(crate) mod coaching;
pub(crate) mod export;
pub(crate) mod facts;
pub(crate) mod feedback;
pub(crate) mod home;
pub(crate) mod import;
pub(crate) mod leader;
pub(crate) mod packet;
pub(crate) mod plans;
pub(crate) mod quick;
pub(crate) mod rep;
pub(crate) mod support;
pub(crate) mod team;
pub(crate) mod webhooks;

/// Who is looking, with the state to answer from: every page handler's
/// first argument.
#[derive(Debug, Clone)]
pub(crate) struct Visit {
    pub state: DashboardState,
    pub viewer: Viewer,
}

impl FromRequestParts<DashboardState> for Visit {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DashboardState,
    ) -> Result<Self, PageError> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        Ok(Visit {
            state: state.clone(),
            viewer,
        })
    }
}

/// A page about one rep the viewer may see: who looks, the state, and the
/// rep's stored profile (403 for another rep's page, 404 for no such rep).
#[derive(Debug, Clone)]
pub(crate) struct RepVisit {
    pub state: DashboardState,
    pub viewer: Viewer,
    pub profile: RepProfile,
}

impl FromRequestParts<DashboardState> for RepVisit {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DashboardState,
    ) -> Result<Self, PageError> {
        let Visit { state, viewer } = Visit::from_request_parts(parts, state).await?;
        let PageId(rep_id) = PageId::<RepId>::from_request_parts(parts, &state).await?;
        let profile = visible_profile(&state, &viewer, rep_id).await?;
        Ok(RepVisit {
            state,
            viewer,
            profile,
        })
    }
}

/// Loads the stored profile and checks the viewer may see the rep.
pub(crate) async fn visible_profile(
    state: &DashboardState,
    viewer: &Viewer,
    rep_id: RepId,
) -> Result<RepProfile, PageError> {
    // A rep asking for another rep's page gets a 403 whether or not it exists.
    if viewer.is_rep() && viewer.claims().subject_id() != Some(rep_id.as_uuid()) {
        return Err(PageError::Forbidden(
            "A rep sees only their own pages.".into(),
        ));
    }
    let profile = data::doc::<RepProfile>(
        state,
        trellis_projections::growth::kinds::REP_PROFILE,
        rep_id,
    )
    .await?
    .ok_or_else(|| {
        PageError::NotFound(
            "There is no rep with this id (or the read models have not caught up with them yet)."
                .into(),
        )
    })?;
    viewer.may_see_rep(rep_id.as_uuid(), profile.team_id.as_uuid())?;
    Ok(profile)
}

/// What a page about something knows: the state and who looks. The
/// extractors of the pages that take forms: [`RepVisit`] (a rep the viewer
/// may see) and [`AdminVisit`] (an admin).
pub(crate) trait Seen:
    FromRequestParts<DashboardState, Rejection = PageError> + Send + Sync + 'static
{
    fn state(&self) -> &DashboardState;
    fn viewer(&self) -> &Viewer;
    /// The rep the page is about, if it is about one.
    fn rep(&self) -> Option<&RepProfile> {
        None
    }
}

impl Seen for RepVisit {
    fn state(&self) -> &DashboardState {
        &self.state
    }
    fn viewer(&self) -> &Viewer {
        &self.viewer
    }
    fn rep(&self) -> Option<&RepProfile> {
        Some(&self.profile)
    }
}

/// Why a set-up page is refused to whoever may not open it.
fn set_up_refused() -> PageError {
    PageError::Forbidden("Only an admin sets up teams, people, competencies and standards.".into())
}

/// A page only an admin may open (403 for anyone else).
#[derive(Debug, Clone)]
pub(crate) struct AdminVisit {
    pub state: DashboardState,
    pub viewer: Viewer,
}

impl FromRequestParts<DashboardState> for AdminVisit {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DashboardState,
    ) -> Result<Self, PageError> {
        let Visit { state, viewer } = Visit::from_request_parts(parts, state).await?;
        if viewer.claims().role != trellis_http::auth::Role::Admin {
            return Err(set_up_refused());
        }
        Ok(AdminVisit { state, viewer })
    }
}

impl Seen for AdminVisit {
    fn state(&self) -> &DashboardState {
        &self.state
    }
    fn viewer(&self) -> &Viewer {
        &self.viewer
    }
}

/// The set-up overview's visitor: an admin, who changes it, or an auditor,
/// who reads what reps are measured against and changes nothing (403 for
/// anyone else).
#[derive(Debug, Clone)]
pub(crate) struct SetUpVisit {
    pub state: DashboardState,
    pub viewer: Viewer,
}

impl SetUpVisit {
    pub(crate) fn may_change(&self) -> bool {
        self.viewer.is_admin()
    }
}

impl FromRequestParts<DashboardState> for SetUpVisit {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DashboardState,
    ) -> Result<Self, PageError> {
        let Visit { state, viewer } = Visit::from_request_parts(parts, state).await?;
        if !viewer.reads_all() {
            return Err(set_up_refused());
        }
        Ok(SetUpVisit { state, viewer })
    }
}

/// The path parameter `name` as a UUID (404 when it is not one): for pages
/// about records outside the log (webhooks, sign-in accounts).
pub(crate) fn id_in(
    path: &axum::extract::RawPathParams,
    name: &str,
) -> Result<uuid::Uuid, PageError> {
    let raw = path.iter().find(|(k, _)| *k == name).map_or("", |(_, v)| v);
    uuid::Uuid::parse_str(raw).map_err(|_| {
        PageError::NotFound(format!(
            "{raw:?} is not an id of Trellis; open the page from its list."
        ))
    })
}

/// A form posted on a page the viewer may open (`V`, a rep's by default):
/// checked to come from this site with the sign-in's token against forged
/// requests ([`Viewer::check_form`]) before a handler sees it; its fields
/// as typed.
#[derive(Debug)]
pub(crate) struct Posted<V = RepVisit> {
    pub visit: V,
    pub typed: std::collections::BTreeMap<String, String>,
}

impl<V: Seen> axum::extract::FromRequest<DashboardState> for Posted<V> {
    type Rejection = PageError;

    async fn from_request(
        request: axum::extract::Request,
        state: &DashboardState,
    ) -> Result<Self, PageError> {
        let (mut parts, body) = request.into_parts();
        let visit = match V::from_request_parts(&mut parts, state).await {
            Ok(visit) => visit,
            // Sent from this site after the sign-in ended: nothing can be
            // recorded, but what was typed is shown to keep. Never for a
            // form sent from elsewhere, whose words would be shown as ours.
            Err(PageError::Unauthorized(why)) if crate::auth::sent_from_here(&parts.headers) => {
                let request = axum::extract::Request::from_parts(parts, body);
                let typed = read_form(request, state).await?;
                return Err(PageError::SignedOut { why, typed });
            }
            Err(e) => return Err(e),
        };
        let headers = parts.headers.clone();
        let action = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), ToString::to_string);
        let request = axum::extract::Request::from_parts(parts, body);
        let typed = read_form(request, state).await?;
        let csrf = typed.get("_csrf").map(String::as_str);
        match visit.viewer().check_form(visit.state(), &headers, csrf) {
            Ok(()) => Ok(Posted { visit, typed }),
            // Nothing is recorded; what was typed is offered back.
            Err(PageError::StaleForm(None)) => {
                Err(PageError::StaleForm(Some(Box::new(crate::error::Resend {
                    action,
                    csrf: visit.viewer().signed().csrf.to_owned(),
                    typed,
                }))))
            }
            Err(e) => Err(e),
        }
    }
}

/// A posted form's fields, as typed. One that cannot be read (not a form's
/// encoding) is refused in words, not the parser's.
async fn read_form(
    request: axum::extract::Request,
    state: &DashboardState,
) -> Result<crate::forms::Typed, PageError> {
    let axum::Form(typed) = <axum::Form<crate::forms::Typed> as axum::extract::FromRequest<
        DashboardState,
    >>::from_request(request, state)
    .await
    .map_err(|e| {
        tracing::debug!(error = %e.body_text(), "a form could not be read");
        PageError::BadRequest(
            "What was sent could not be read as a form. Open the page again and send the \
                 form from it."
                .into(),
        )
    })?;
    Ok(typed)
}

/// The id a page's path names, as the domain's id type: 404 when it is not
/// a UUID (no such page can exist).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageId<T>(pub T);

/// A domain id a page's path names, and what to call it in a message.
pub(crate) trait PageParam: Sized {
    const WHAT: &'static str;
    fn from_uuid(id: Uuid) -> Self;
}

impl PageParam for RepId {
    const WHAT: &'static str = "rep";
    fn from_uuid(id: Uuid) -> Self {
        RepId::from_uuid(id)
    }
}

impl PageParam for TeamId {
    const WHAT: &'static str = "team";
    fn from_uuid(id: Uuid) -> Self {
        TeamId::from_uuid(id)
    }
}

impl PageParam for LeaderId {
    const WHAT: &'static str = "leader";
    fn from_uuid(id: Uuid) -> Self {
        LeaderId::from_uuid(id)
    }
}

impl<T: PageParam, S: Send + Sync> FromRequestParts<S> for PageId<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PageError> {
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| PageError::NotFound(e.body_text()))?;
        let name = format!("{}_id", T::WHAT);
        let raw = params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
            .ok_or_else(|| PageError::Internal(format!("the route has no {name}")))?;
        Uuid::parse_str(&raw)
            .map(|id| PageId(T::from_uuid(id)))
            .map_err(|_| {
                PageError::NotFound(format!(
                    "{raw:?} is not a {} id; ids are UUIDs, as the links in Trellis give them.",
                    T::WHAT
                ))
            })
    }
}

/// An optional `YYYY-MM-DD` query value; a bad one is a 400 that says why.
pub(crate) fn query_date(raw: Option<&str>, field: &str) -> Result<Option<NaiveDate>, PageError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| {
                PageError::BadRequest(format!(
                    "{field} must be a date written YYYY-MM-DD, e.g. 2026-03-16; {text:?} is not."
                ))
            }),
    }
}

/// [`query_date`] for a page that shows what it can: the date, or why
/// not, in words to stand beside its field.
pub(crate) fn lenient_date(raw: Option<&str>, field: &str) -> (Option<NaiveDate>, Option<String>) {
    match query_date(raw, field) {
        Ok(date) => (date, None),
        Err(_) => (
            None,
            Some(format!(
                "{:?} is not a date. Pick one, or write it as YYYY-MM-DD, e.g. 2026-03-16.",
                raw.unwrap_or_default().trim()
            )),
        ),
    }
}

/// A team's leaders, comma-separated: a link to each one's scorecard where
/// the viewer may open it; "nobody yet" for a team without one.
pub(crate) fn leader_links(
    viewer: &Viewer,
    leaders: &std::collections::BTreeMap<LeaderId, trellis_domain::PersonName>,
) -> String {
    let links: Vec<String> = leaders
        .iter()
        .map(|(id, name)| {
            if viewer.reads_all() || viewer.claims().subject_id() == Some(id.as_uuid()) {
                format!(
                    "<a href=\"/leaders/{id}\">{}</a>",
                    crate::html::esc(name.as_ref())
                )
            } else {
                crate::html::esc(name.as_ref())
            }
        })
        .collect();
    if links.is_empty() {
        "nobody yet".to_owned()
    } else {
        links.join(", ")
    }
}

/// Days between two dates, in words.
pub(crate) fn days_ago(from: NaiveDate, today: NaiveDate) -> String {
    match (today - from).num_days() {
        0 => "today".to_owned(),
        1 => "1 day ago".to_owned(),
        n if n < 0 => format!("in {} days", -n),
        n => format!("{n} days ago"),
    }
}
