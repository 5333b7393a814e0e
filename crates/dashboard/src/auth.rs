//! Who is looking, and what they may see: the API's bearer tokens, carried
//! in an HttpOnly cookie after signing in (or sent as `Authorization:
//! Bearer`), checked by the same key and the same role rules.

use axum::Form;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use trellis_http::auth::{AuthError, Claims, Role};
use uuid::Uuid;

use crate::error::PageError;
use crate::html::{Signed, sign_in_html};
use crate::state::DashboardState;

/// The cookie that carries the token.
pub(crate) const COOKIE: &str = "trellis_token";

/// The signed-in viewer: who they are, the token that says so, and the
/// token against forged requests their forms carry.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    claims: Claims,
    token: String,
    csrf: String,
    /// Signed in with the cookie (a browser), not a bearer header.
    by_cookie: bool,
}

impl Viewer {
    pub(crate) fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The bearer token, for the writes a form sends through the write API.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// What a page's shell needs to know of the viewer.
    pub(crate) fn signed(&self) -> Signed<'_> {
        Signed {
            claims: &self.claims,
            csrf: &self.csrf,
        }
    }

    /// Checks a state-changing request made with the sign-in cookie: it
    /// comes from this site (`Origin`, when the browser sends one) and
    /// carries this sign-in's token against forged requests. A request with
    /// a bearer header is not a browser's and needs neither.
    pub(crate) fn check_form(
        &self,
        state: &DashboardState,
        headers: &HeaderMap,
        csrf: Option<&str>,
    ) -> Result<(), PageError> {
        if !self.by_cookie {
            return Ok(());
        }
        if !same_origin(headers) {
            return Err(PageError::Forbidden(
                "This form was sent from another site; nothing was recorded. Open Trellis \
                 and send it from there."
                    .into(),
            ));
        }
        match csrf {
            Some(given) if state.http().token_key().check_csrf(&self.token, given) => Ok(()),
            _ => Err(PageError::Forbidden(
                "This form is out of date or was not sent from Trellis; nothing was recorded. \
                 Reload the page and send it again."
                    .into(),
            )),
        }
    }

    /// Whether private notes may be shown (never to a rep).
    pub(crate) fn sees_private(&self) -> bool {
        !matches!(self.claims.role, Role::Rep)
    }

    pub(crate) fn is_rep(&self) -> bool {
        matches!(self.claims.role, Role::Rep)
    }

    /// May record what leaders record (feedback, coaching): leaders and
    /// admins; the write API decides for which reps.
    pub(crate) fn writes_for_leaders(&self) -> bool {
        matches!(self.claims.role, Role::Leader | Role::Admin)
    }

    /// Reads everything: admins and auditors.
    pub(crate) fn reads_all(&self) -> bool {
        matches!(self.claims.role, Role::Admin | Role::Auditor)
    }

    pub(crate) fn may_see_team(&self, team: Uuid) -> Result<(), PageError> {
        match self.claims.role {
            Role::Admin | Role::Auditor => Ok(()),
            Role::Leader if self.claims.teams.contains(&team) => Ok(()),
            Role::Leader => Err(PageError::Forbidden(
                "This team is not one you lead; a leader sees only their own teams.".into(),
            )),
            Role::Rep => Err(PageError::Forbidden(
                "A rep sees their own pages only, not their team's.".into(),
            )),
            Role::Service => Err(service()),
        }
    }

    /// `teams`: every team the rep has been on (current last).
    pub(crate) fn may_see_rep(&self, rep: Uuid, team: Uuid) -> Result<(), PageError> {
        match self.claims.role {
            Role::Admin | Role::Auditor => Ok(()),
            Role::Leader if self.claims.teams.contains(&team) => Ok(()),
            Role::Leader => Err(PageError::Forbidden(
                "This rep is not in a team you lead; a leader sees only their own teams.".into(),
            )),
            Role::Rep if self.claims.subject_id() == Some(rep) => Ok(()),
            Role::Rep => Err(PageError::Forbidden(
                "A rep sees only their own pages.".into(),
            )),
            Role::Service => Err(service()),
        }
    }

    pub(crate) fn may_see_leader(&self, leader: Uuid) -> Result<(), PageError> {
        match self.claims.role {
            Role::Admin | Role::Auditor => Ok(()),
            Role::Leader if self.claims.subject_id() == Some(leader) => Ok(()),
            Role::Leader => Err(PageError::Forbidden(
                "A leader sees their own scorecard only.".into(),
            )),
            Role::Rep => Err(PageError::Forbidden(
                "A leader's scorecard is for the leader and their managers.".into(),
            )),
            Role::Service => Err(service()),
        }
    }
}

fn service() -> PageError {
    PageError::Forbidden("Service tokens are for the API, not for the dashboard.".into())
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
}

/// Whether a browser's request comes from this site: no `Origin` (an old
/// browser, a same-origin GET), or one whose host is the request's `Host`.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

fn explain(e: &AuthError) -> String {
    match e {
        AuthError::Expired => "Your token has expired. Ask for a new one and sign in again.".into(),
        AuthError::BadSignature => {
            "That token was not issued by this Trellis (its signature does not match).".into()
        }
        other => format!("That token cannot be used: {other}."),
    }
}

impl FromRequestParts<DashboardState> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DashboardState,
    ) -> Result<Self, PageError> {
        let (token, by_cookie) = match bearer_token(&parts.headers) {
            Some(token) => (token, false),
            None => (
                cookie_token(&parts.headers)
                    .ok_or_else(|| PageError::Unauthorized("Sign in to see this page.".into()))?,
                true,
            ),
        };
        let key = state.http().token_key();
        let claims = key
            .verify(&token, state.now_secs())
            .map_err(|e| PageError::Unauthorized(explain(&e)))?;
        Ok(Viewer {
            csrf: key.csrf_token(&token),
            claims,
            token,
            by_cookie,
        })
    }
}

/// A viewer, when the request carries a good token; none otherwise.
impl OptionalFromRequestParts<DashboardState> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DashboardState,
    ) -> Result<Option<Self>, PageError> {
        Ok(
            <Viewer as FromRequestParts<DashboardState>>::from_request_parts(parts, state)
                .await
                .ok(),
        )
    }
}

/// `GET /`: the sign-in form, or the home page for a signed-in viewer.
pub(crate) async fn sign_in_page(
    State(state): State<DashboardState>,
    headers: HeaderMap,
) -> Response {
    if let Some(token) = cookie_token(&headers)
        && state
            .http()
            .token_key()
            .verify(&token, state.now_secs())
            .is_ok()
    {
        return Redirect::to("/home").into_response();
    }
    Html(sign_in_html(None)).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    token: String,
    /// Where to go after signing in: a path on this server.
    next: Option<String>,
}

/// `GET /login?token=…`: the links `trellis demo` prints.
pub(crate) async fn login_link(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    Query(form): Query<TokenForm>,
) -> Response {
    sign_in(&state, &form, &headers)
}

/// `POST /login` from the sign-in form.
pub(crate) async fn login_form(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    sign_in(&state, &form, &headers)
}

/// Whether the browser reached us over HTTPS: Trellis speaks plain HTTP, so
/// that is a TLS-terminating proxy in front saying so (`X-Forwarded-Proto`
/// or `Forwarded: proto=https`). The cookie is then `Secure`, never sent
/// over plain HTTP. A client that sends the header itself only makes its
/// own cookie stricter.
fn reached_over_https(headers: &HeaderMap) -> bool {
    let says_https = |name: &str, pick: fn(&str) -> Option<&str>| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|v| pick(v.trim()))
            .any(|proto| proto.trim_matches('"').eq_ignore_ascii_case("https"))
    };
    says_https("x-forwarded-proto", |value| Some(value))
        || says_https("forwarded", |element| {
            element.split(';').find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                name.eq_ignore_ascii_case("proto").then_some(value)
            })
        })
}

/// A sign-in another site started (a form posted from it, or a link or
/// image on it that the browser followed): refused, so that nobody can sign
/// a person's browser in as someone else (login CSRF). A browser says where
/// a request came from in `Origin` and `Sec-Fetch-Site`; a request without
/// them (a pasted link, a script) is not a browser's cross-site one.
fn started_elsewhere(headers: &HeaderMap) -> bool {
    let fetched_from = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none");
    !same_origin(headers) || matches!(fetched_from, "cross-site" | "same-site")
}

/// `next` when it is a path on this server, written in visible ASCII only:
/// never another site (`//host`, `/\host`), never a control character or
/// a space that a browser would drop or a header would choke on.
fn local_path(next: &str) -> Option<&str> {
    let visible = next
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && b != b'\\');
    (visible && next.starts_with('/') && !next.starts_with("//")).then_some(next)
}

fn sign_in(state: &DashboardState, form: &TokenForm, headers: &HeaderMap) -> Response {
    if started_elsewhere(headers) {
        return (
            StatusCode::FORBIDDEN,
            Html(sign_in_html(Some(
                "This sign-in was started by another site, so it was not used. Open your \
                 sign-in link yourself (paste it into the address bar) or sign in here.",
            ))),
        )
            .into_response();
    }
    let (next, https) = (form.next.as_deref(), reached_over_https(headers));
    let token: String = form.token.chars().filter(|c| !c.is_whitespace()).collect();
    let claims = match state.http().token_key().verify(&token, state.now_secs()) {
        Ok(claims) => claims,
        Err(e) => {
            return (
                StatusCode::UNAUTHORIZED,
                Html(sign_in_html(Some(&explain(&e)))),
            )
                .into_response();
        }
    };
    if claims.role == Role::Service {
        return service().into_response();
    }
    let max_age = (claims.exp - state.now_secs()).max(0);
    let secure = if https { "; Secure" } else { "" };
    let cookie =
        format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    // Only a path on this server: never an open redirect.
    let target = next
        .and_then(local_path)
        .map_or_else(|| landing(&claims), str::to_owned);
    let mut response = Redirect::to(&target).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Where a viewer starts: a rep on their own page, a leader on their
/// (first) team, everyone else on the home page.
pub(crate) fn landing(claims: &Claims) -> String {
    match claims.role {
        Role::Rep => format!("/reps/{}", claims.sub),
        Role::Leader => match claims.teams.as_slice() {
            [only] => format!("/teams/{only}"),
            _ => "/home".to_owned(),
        },
        _ => "/home".to_owned(),
    }
}

/// The hidden field every cookie-authenticated form carries.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// `POST /logout`: forgets the cookie. A signed-in browser's sign-out must
/// come from this site (so no other site can sign people out).
pub(crate) async fn logout(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    viewer: Option<Viewer>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    if let Some(viewer) = viewer {
        viewer.check_form(&state, &headers, form.csrf.as_deref())?;
    }
    Ok(forget_cookie())
}

fn forget_cookie() -> Response {
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("trellis_token=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    response
}
