//! Who is looking, and what they may see.
//!
//! A browser signs in with a one-time link, at the company's identity
//! provider, or (for development) with a token from `trellis token`; each
//! starts a session kept on the server, and the browser's HttpOnly cookie
//! carries only the session's random id. What the person may see is worked
//! out at each request from who they are now. A request may instead send a
//! bearer token (`Authorization: Bearer`), checked as the API checks it.

use axum::Form;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use trellis_access::store::{Account, Holder, Via};
use trellis_access::{FlowRefused, Refused};
use trellis_http::auth::{AuthError, Claims, Role};
use trellis_http::extract::cookie;
use uuid::Uuid;

use crate::error::PageError;
use crate::html::{SignInNote, Signed, esc, page, sign_in_html};
use crate::state::DashboardState;

/// The cookie that carries the session id.
pub const COOKIE: &str = "trellis_session";

/// The cookie that binds a sign-in at the identity provider to the browser
/// that started it (closing login CSRF).
const FLOW_COOKIE: &str = "trellis_signin";

/// How long the token a page's form sends to the write API lasts: it never
/// leaves the process.
const FORM_TOKEN_SECONDS: i64 = 300;

/// The signed-in viewer: who they are, the token their forms' requests to
/// the write API carry, and the token against forged requests.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    claims: Claims,
    token: String,
    csrf: String,
    /// Signed in with the session cookie (a browser), not a bearer header.
    by_cookie: bool,
    /// The account of a person's session (none for a developer token's).
    account: Option<Account>,
    /// The session cookie's value, to end it.
    session: Option<String>,
}

impl Viewer {
    pub(crate) fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The bearer token for the writes a form sends through the write API:
    /// the request's own, or one minted for this request from the
    /// session's claims as they stand now.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// The account of the person signed in, when they signed in as a person.
    pub(crate) fn account(&self) -> Option<&Account> {
        self.account.as_ref()
    }

    /// Who is recorded as doing what they do outside the log (ending
    /// sessions, creating links).
    pub(crate) fn actor(&self) -> String {
        self.claims.sub.clone()
    }

    /// What a page's shell needs to know of the viewer.
    pub(crate) fn signed(&self) -> Signed<'_> {
        Signed {
            claims: &self.claims,
            csrf: &self.csrf,
            everywhere: self.account.is_some(),
            name: self.account.as_ref().map(|a| a.name.as_str()),
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
            return Err(PageError::FormRefused(
                "This form was sent from another site; nothing was recorded. Open Trellis \
                 and send it from there."
                    .into(),
            ));
        }
        match csrf {
            Some(given)
                if state
                    .http()
                    .token_key()
                    .check_csrf(self.session.as_deref().unwrap_or(&self.token), given) =>
            {
                Ok(())
            }
            // Sent from this site (its browser said so), with the token of
            // another sign-in: a page opened before the viewer signed in
            // again. What was typed is offered back ([`PageError::StaleForm`]).
            Some(_) if origin_given(headers) => Err(PageError::StaleForm(None)),
            _ => Err(PageError::FormRefused(
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

    /// Refuses a leader's form, before anything is typed in it, to whoever
    /// may not record as a rep's leader (the write API would refuse the
    /// save anyway).
    pub(crate) fn may_record_as_leader(&self) -> Result<(), PageError> {
        if self.writes_for_leaders() {
            return Ok(());
        }
        Err(PageError::NotYourForm(
            match self.claims.role {
                Role::Auditor => {
                    "Auditors read everything and write nothing: this form is for the rep's \
                     leaders."
                }
                Role::Rep => {
                    "This form is for a rep's leaders. From your own page you acknowledge \
                     feedback, mark your action items done and ask for support."
                }
                _ => "This form is for a rep's leaders.",
            }
            .into(),
        ))
    }

    /// Refuses a form, before anything is typed in it, to an auditor, who
    /// may record nothing (the write API would refuse the save anyway).
    pub(crate) fn may_write(&self) -> Result<(), PageError> {
        if matches!(self.claims.role, Role::Auditor) {
            return Err(PageError::NotYourForm(
                "Auditors read everything and write nothing: this form is for the people \
                 whose work it records."
                    .into(),
            ));
        }
        Ok(())
    }

    /// An admin: sets up teams, people, standards and who may sign in.
    pub(crate) fn is_admin(&self) -> bool {
        matches!(self.claims.role, Role::Admin)
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

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
}

/// Whether a browser said the request comes from this site: an `Origin`
/// whose host is the request's `Host` (not merely none given).
pub(crate) fn sent_from_here(headers: &HeaderMap) -> bool {
    origin_given(headers) && same_origin(headers)
}

/// Whether the browser said where the request comes from (`Origin`), as
/// every current browser does on a form's POST: with [`same_origin`], that
/// it comes from this site.
fn origin_given(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ORIGIN)
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
        let key = state.http().token_key();
        if let Some(token) = bearer_token(&parts.headers) {
            let claims = state
                .http()
                .authenticate(&token)
                .await
                .map_err(|e| match e {
                    AuthError::Unavailable => PageError::Unavailable(e.to_string()),
                    other => PageError::Unauthorized(explain(&other)),
                })?;
            return Ok(Viewer {
                csrf: key.csrf_token(&token),
                claims,
                token,
                by_cookie: false,
                account: None,
                session: None,
            });
        }
        let id = cookie(&parts.headers, COOKIE)
            .ok_or_else(|| PageError::Unauthorized("Sign in to see this page.".into()))?;
        let access = state
            .access()
            .ok_or_else(|| PageError::Unauthorized("Sign in to see this page.".into()))?;
        let signed_in = access
            .session(&id, state.http().clock().now())
            .await
            .map_err(|e| match e {
                Refused::Refused(why) => PageError::Unauthorized(why),
                Refused::Unavailable(why) => PageError::Unavailable(why),
            })?;
        let form_claims = Claims {
            exp: state.now_secs() + FORM_TOKEN_SECONDS,
            ..signed_in.claims.clone()
        };
        Ok(Viewer {
            token: key.mint(&form_claims),
            csrf: key.csrf_token(&id),
            claims: signed_in.claims,
            by_cookie: true,
            account: signed_in.account,
            session: Some(id),
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

/// Where to go after signing in (`?next=`), carried through every way in.
#[derive(Debug, Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
    /// Set by a sign-out: `here` or `everywhere`.
    #[serde(rename = "signed-out")]
    signed_out: Option<String>,
}

/// `GET /`: the sign-in page, or the home page for a signed-in viewer.
pub(crate) async fn sign_in_page(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Response {
    if let (Some(id), Some(access)) = (cookie(&headers, COOKIE), state.access())
        && access
            .session(&id, state.http().clock().now())
            .await
            .is_ok()
    {
        return Redirect::to("/home").into_response();
    }
    let said = match query.signed_out.as_deref() {
        Some("here") => Some(SignInNote::Done("You are signed out on this device.")),
        Some("everywhere") => Some(SignInNote::Done(
            "You are signed out on every device you had signed in on.",
        )),
        _ => None,
    };
    Html(sign_in_html(&state, said, query.next.as_deref())).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    token: String,
    /// Where to go after signing in: a path on this server.
    next: Option<String>,
}

/// `GET /login?token=…`: a developer token (`trellis token`) as a link.
pub(crate) async fn login_link(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    Query(form): Query<TokenForm>,
) -> Response {
    sign_in_with_token(&state, &form, &headers).await
}

/// `POST /login` from the sign-in page's developer form.
pub(crate) async fn login_form(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    sign_in_with_token(&state, &form, &headers).await
}

/// Whether the browser reached us over HTTPS: Trellis speaks plain HTTP, so
/// that is a TLS-terminating proxy in front saying so (`X-Forwarded-Proto`
/// or `Forwarded: proto=https`). The cookie is then `Secure`, never sent
/// over plain HTTP. A client that sends the header itself only makes its
/// own cookie stricter.
pub(crate) fn reached_over_https(headers: &HeaderMap) -> bool {
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

/// The sign-in page again, with why the attempt was refused.
fn refused_page(
    state: &DashboardState,
    status: StatusCode,
    why: &str,
    next: Option<&str>,
) -> Response {
    (
        status,
        Html(sign_in_html(state, Some(SignInNote::Refused(why)), next)),
    )
        .into_response()
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

const ELSEWHERE: &str = "This sign-in was started by another site, so it was not used. Open \
     your sign-in link yourself (paste it into the address bar) or sign in here.";

/// `next` when it is a path on this server, written in visible ASCII only:
/// never another site (`//host`, `/\host`), never a control character or
/// a space that a browser would drop or a header would choke on.
fn local_path(next: &str) -> Option<&str> {
    let visible = next
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && b != b'\\');
    (visible && next.starts_with('/') && !next.starts_with("//")).then_some(next)
}

async fn sign_in_with_token(
    state: &DashboardState,
    form: &TokenForm,
    headers: &HeaderMap,
) -> Response {
    let next = form.next.as_deref();
    if started_elsewhere(headers) {
        return refused_page(state, StatusCode::FORBIDDEN, ELSEWHERE, next);
    }
    let token: String = form.token.chars().filter(|c| !c.is_whitespace()).collect();
    let claims = match state.http().token_key().verify(&token, state.now_secs()) {
        Ok(claims) => claims,
        Err(e) => return refused_page(state, StatusCode::UNAUTHORIZED, &explain(&e), next),
    };
    if claims.role == Role::Service {
        return service().into_response();
    }
    let landing = landing(&claims);
    start_session(
        state,
        headers,
        Holder::Token(claims),
        Via::Token,
        next,
        landing,
    )
    .await
}

/// Starts a session and sends the browser on with its cookie.
async fn start_session(
    state: &DashboardState,
    headers: &HeaderMap,
    holder: Holder,
    via: Via,
    next: Option<&str>,
    landing: String,
) -> Response {
    let Some(access) = state.access() else {
        return refused_page(
            state,
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing in is not set up on this server.",
            next,
        );
    };
    let now = state.http().clock().now();
    let (id, _) = match access.start_session(holder, via, now).await {
        Ok(started) => started,
        Err(e) => return PageError::Unavailable(e.to_string()).into_response(),
    };
    // Only a path on this server: never an open redirect.
    let target = next.and_then(local_path).map_or(landing, str::to_owned);
    let mut response = Redirect::to(&target).into_response();
    let max_age = access.config().absolute.num_seconds();
    set_cookie(&mut response, state, headers, COOKIE, &id, "/", max_age);
    set_cookie(&mut response, state, headers, FLOW_COOKIE, "", "/auth/", 0);
    response
}

fn set_cookie(
    response: &mut Response,
    state: &DashboardState,
    headers: &HeaderMap,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
) {
    let secure = if state.https() || reached_over_https(headers) {
        "; Secure"
    } else {
        ""
    };
    let cookie =
        format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
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

fn landing_of(account: &Account) -> String {
    match account.role {
        Role::Rep => format!("/reps/{}", account.person),
        _ => "/home".to_owned(),
    }
}

const INCOMPLETE_LINK: &str =
    "This sign-in link is incomplete: copy the whole link into the address bar.";

// ---- one-time links ----------------------------------------------------------

#[derive(Debug, Deserialize)]
pub(crate) struct LinkQuery {
    link: Option<String>,
    next: Option<String>,
}

/// `GET /sign-in?link=…`: a one-time link opens a page with one button, and
/// only pressing it uses the link (so a mail scanner that follows links
/// does not use it up).
pub(crate) async fn link_page(
    State(state): State<DashboardState>,
    Query(query): Query<LinkQuery>,
) -> Response {
    let Some(link) = query.link.filter(|l| !l.trim().is_empty()) else {
        return refused_page(&state, StatusCode::BAD_REQUEST, INCOMPLETE_LINK, None);
    };
    let next = query
        .next
        .as_deref()
        .and_then(local_path)
        .map(|n| format!("<input type=\"hidden\" name=\"next\" value=\"{}\">", esc(n)))
        .unwrap_or_default();
    let body = format!(
        "<div class=\"signin\"><h1>Sign in to Trellis</h1>\
         <p class=\"lead\">This link signs you in once. Press the button to go on.</p>\
         <form method=\"post\" action=\"/sign-in\" class=\"card\">\
         <input type=\"hidden\" name=\"link\" value=\"{}\">{next}\
         <button class=\"primary\" type=\"submit\" autofocus>Sign in</button></form></div>",
        esc(link.trim())
    );
    let mut response = Html(page("Sign in", None, &body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct LinkForm {
    /// Missing from a hand-made form: refused like an incomplete link.
    #[serde(default)]
    link: String,
    next: Option<String>,
}

/// `POST /sign-in`: uses the link and starts the session.
pub(crate) async fn link_sign_in(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    Form(form): Form<LinkForm>,
) -> Response {
    let next = form.next.as_deref();
    if started_elsewhere(&headers) {
        return refused_page(&state, StatusCode::FORBIDDEN, ELSEWHERE, next);
    }
    let Some(access) = state.access() else {
        return refused_page(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing in is not set up on this server.",
            next,
        );
    };
    if form.link.trim().is_empty() {
        return refused_page(&state, StatusCode::BAD_REQUEST, INCOMPLETE_LINK, next);
    }
    match access
        .use_link(form.link.trim(), state.http().clock().now())
        .await
    {
        Ok(account) => {
            let landing = landing_of(&account);
            start_session(
                &state,
                &headers,
                Holder::Account(account.id),
                Via::Link,
                next,
                landing,
            )
            .await
        }
        Err(Refused::Refused(why)) => refused_page(&state, StatusCode::UNAUTHORIZED, &why, next),
        Err(Refused::Unavailable(why)) => PageError::Unavailable(why).into_response(),
    }
}

// ---- the identity provider -----------------------------------------------------

/// `GET /auth/oidc/start?next=…`: off to the identity provider, with a
/// cookie that binds the answer to this browser.
pub(crate) async fn oidc_start(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Response {
    let next = query
        .next
        .as_deref()
        .and_then(local_path)
        .map(str::to_owned);
    let Some(access) = state.access() else {
        return refused_page(&state, StatusCode::NOT_FOUND, NO_PROVIDER, None);
    };
    match access.start_flow(next, state.http().clock().now()).await {
        Ok(Some((flow, url))) => {
            let mut response = Redirect::to(&url).into_response();
            let max_age = access.config().flow_lifetime.num_seconds();
            set_cookie(
                &mut response,
                &state,
                &headers,
                FLOW_COOKIE,
                &flow,
                "/auth/",
                max_age,
            );
            response
        }
        Ok(None) => refused_page(&state, StatusCode::NOT_FOUND, NO_PROVIDER, None),
        Err(e) => PageError::Unavailable(e.to_string()).into_response(),
    }
}

const NO_PROVIDER: &str = "Signing in with a company account is not set up on this server; \
     ask your Trellis admin for a sign-in link.";

#[derive(Debug, Deserialize)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/oidc/callback`: the provider's answer.
pub(crate) async fn oidc_callback(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    Query(answer): Query<Callback>,
) -> Response {
    let Some(access) = state.access() else {
        return refused_page(&state, StatusCode::NOT_FOUND, NO_PROVIDER, None);
    };
    if let Some(error) = &answer.error {
        let detail = answer.error_description.as_deref().unwrap_or(error);
        let why = format!(
            "The identity provider did not sign you in ({}). Start again from this page.",
            detail.chars().take(200).collect::<String>()
        );
        return refused_page(&state, StatusCode::UNAUTHORIZED, &why, None);
    }
    let (Some(code), Some(flow_state)) = (&answer.code, &answer.state) else {
        return refused_page(
            &state,
            StatusCode::BAD_REQUEST,
            "The identity provider's answer is incomplete (no code or state). Start again from \
             this page.",
            None,
        );
    };
    let flow = cookie(&headers, FLOW_COOKIE);
    let now = state.http().clock().now();
    match access
        .finish_flow(flow.as_deref(), flow_state, code, now)
        .await
    {
        Ok((account, next)) => {
            let landing = landing_of(&account);
            start_session(
                &state,
                &headers,
                Holder::Account(account.id),
                Via::Oidc,
                next.as_deref(),
                landing,
            )
            .await
        }
        Err(FlowRefused::Refused(Refused::Refused(why))) => {
            refused_page(&state, StatusCode::UNAUTHORIZED, &why, None)
        }
        Err(FlowRefused::Refused(Refused::Unavailable(why))) => {
            PageError::Unavailable(why).into_response()
        }
        Err(FlowRefused::Unlinked(identity)) => {
            let admins = match access.active_admins().await {
                Ok(admins) => admins.into_iter().map(|a| a.name).collect::<Vec<_>>(),
                Err(_) => Vec::new(),
            };
            let ask = match admins.as_slice() {
                [] => "your Trellis admin".to_owned(),
                [one] => one.clone(),
                many => format!("one of your Trellis admins ({})", many.join(", ")),
            };
            let (who, what) = match &identity.email {
                Some(email) => (
                    email.clone(),
                    format!("add your email ({email}) to your name"),
                ),
                None => (
                    identity.subject.clone(),
                    format!(
                        "add your identity provider id ({}) to your name",
                        identity.subject
                    ),
                ),
            };
            let body = format!(
                "<h1>Your account is not linked to Trellis yet</h1>\
                 <p class=\"lead\">You signed in at your company's identity provider as \
                 <strong>{}</strong>, but nobody in Trellis is linked to that identity, so \
                 Trellis shows you nothing.</p>\
                 <p>Ask {} to link it: under <em>Set up → Sign-in</em> they {}. Then sign in \
                 again.</p>\
                 <p><a href=\"/\">Back to the sign-in page</a></p>",
                esc(&who),
                esc(&ask),
                esc(&what)
            );
            (
                StatusCode::FORBIDDEN,
                Html(page("Not linked yet", None, &body)),
            )
                .into_response()
        }
    }
}

// ---- signing out ---------------------------------------------------------------

/// The hidden field every cookie-authenticated form carries.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// `POST /logout`: ends this browser's session on the server and forgets
/// the cookie. A signed-in browser's sign-out must come from this site (so
/// no other site can sign people out).
pub(crate) async fn logout(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    viewer: Option<Viewer>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    if let Some(viewer) = viewer {
        viewer.check_form(&state, &headers, form.csrf.as_deref())?;
        if let (Some(id), Some(access)) = (&viewer.session, state.access()) {
            access
                .end_session(id, state.http().clock().now(), "signed out")
                .await
                .map_err(|e| PageError::Unavailable(e.to_string()))?;
        }
    }
    Ok(forget_cookie(&state, &headers, "here"))
}

/// `POST /logout/everywhere`: ends every session of the person, in every
/// browser.
pub(crate) async fn logout_everywhere(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    viewer: Viewer,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_form(&state, &headers, form.csrf.as_deref())?;
    if let (Some(account), Some(access)) = (viewer.account(), state.access()) {
        access
            .end_sessions_of(
                account.id,
                state.http().clock().now(),
                "signed out everywhere",
            )
            .await
            .map_err(|e| PageError::Unavailable(e.to_string()))?;
    }
    Ok(forget_cookie(&state, &headers, "everywhere"))
}

/// Back to the sign-in page, which says the browser was signed out
/// (`where`: `here` or `everywhere`), without the session's cookie.
fn forget_cookie(state: &DashboardState, headers: &HeaderMap, r#where: &str) -> Response {
    let mut response = Redirect::to(&format!("/?signed-out={where}")).into_response();
    set_cookie(&mut response, state, headers, COOKIE, "", "/", 0);
    response
}

/// The identity of a viewer's session, for the admin pages' "you".
pub(crate) fn is_own_account(viewer: &Viewer, account: Uuid) -> bool {
    viewer.account().is_some_and(|a| a.id == account)
}
