//! The face of Trellis: server-rendered HTML pages over the read models,
//! with charts drawn server-side as inline SVG, and the demo organisation a
//! new user sees on the first run.
//!
//! It owns presentation only. It reads the `growth` projection's documents
//! (through [`trellis_projections::store::ReadStore`]) and, for the notes a
//! timeline shows, the rep's own stream; it never writes to the log except
//! through the command service's HTTP routes in [`demo`]. No JavaScript
//! framework, no CDN: every byte a page needs is in the binary (the CSS is
//! inlined, the charts are SVG, the only script is a print button).
//!
//! Authentication and authorization follow the API's rules: the same bearer
//! tokens (pasted into the sign-in form, or opened as `/login?token=…`, then
//! kept in an HttpOnly cookie), a rep sees only their own pages and never a
//! private note, a leader only their teams, an auditor everything.
//!
//! # Wiring
//!
//! ```text
//! let state = DashboardState::new(app.clone(), read_store.clone());
//! let router = trellis_commands::router_with(app, trellis_dashboard::routes(state));
//! ```
//! and, for the first run, [`demo::seed`] into an empty store.
//!
//! # Layout
//! - [`DashboardState`], [`QueryHooks`], [`routes`]: the service.
//! - `auth`: who is looking (cookie or bearer) and what they may see; sign in and out.
//! - `data`: loading documents and a rep's stream; "as of" a date.
//! - `html`, `svg`: page shell, escaping, CSS; line charts.
//! - `pages`: one module per page.
//! - [`demo`]: the demo organisation.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use trellis_commands::AppState;
use trellis_commands::auth::Claims;
use trellis_projections::store::ReadStore;
use uuid::Uuid;

mod auth;
mod data;
pub mod demo;
mod html;
mod pages;
mod rng;
mod svg;

/// Hooks for the queries crate: when one answers `Ok(Some(html))`, the page
/// shows that fragment instead of what the dashboard renders from the read
/// models. The fragment is trusted HTML: the implementation must escape
/// what it embeds. The viewer has already been checked to be allowed to see
/// the rep; private notes must still be left out for a rep's own token.
#[async_trait::async_trait]
pub trait QueryHooks: Send + Sync + std::fmt::Debug {
    /// The review packet of `rep` for `from..=to` (the printable body).
    async fn review_packet(
        &self,
        viewer: &Claims,
        rep: Uuid,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Option<String>, String> {
        let _ = (viewer, rep, from, to);
        Ok(None)
    }

    /// The audit trail of `rep`: events, actors, corrections, chain status.
    async fn audit_trail(&self, viewer: &Claims, rep: Uuid) -> Result<Option<String>, String> {
        let _ = (viewer, rep);
        Ok(None)
    }

    /// Time travel by replaying the rep's stream: the rep as of the end of
    /// `as_of`, as it happened. Shown above the dashboard's own as-of view.
    async fn rep_as_of(
        &self,
        viewer: &Claims,
        rep: Uuid,
        as_of: NaiveDate,
    ) -> Result<Option<String>, String> {
        let _ = (viewer, rep, as_of);
        Ok(None)
    }
}

/// Everything a page needs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DashboardState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    app: AppState,
    read: Arc<dyn ReadStore>,
    hooks: Option<Arc<dyn QueryHooks>>,
}

impl DashboardState {
    /// Pages over `read` (the read models of the log `app` writes to), with
    /// `app`'s token key and clock.
    pub fn new(app: AppState, read: Arc<dyn ReadStore>) -> Self {
        DashboardState {
            inner: Arc::new(Inner {
                app,
                read,
                hooks: None,
            }),
        }
    }

    /// The same, with the queries crate's hooks.
    pub fn with_hooks(self, hooks: Arc<dyn QueryHooks>) -> Self {
        DashboardState {
            inner: Arc::new(Inner {
                app: self.inner.app.clone(),
                read: self.inner.read.clone(),
                hooks: Some(hooks),
            }),
        }
    }

    pub(crate) fn app(&self) -> &AppState {
        &self.inner.app
    }

    pub(crate) fn read(&self) -> &Arc<dyn ReadStore> {
        &self.inner.read
    }

    pub(crate) fn hooks(&self) -> Option<&Arc<dyn QueryHooks>> {
        self.inner.hooks.as_ref()
    }

    /// Today, from the service's clock.
    pub(crate) fn today(&self) -> NaiveDate {
        self.inner.app.clock().now().date_naive()
    }

    pub(crate) fn now_secs(&self) -> i64 {
        self.inner.app.clock().now().timestamp()
    }
}

/// The dashboard's pages, with their state applied and no fallback (mount
/// them with [`trellis_commands::router_with`]):
///
/// | path | page |
/// | --- | --- |
/// | `GET /` | sign-in form (or to the home page when signed in) |
/// | `GET /login?token=…`, `POST /login` | sign in: sets the HttpOnly cookie |
/// | `POST /logout` | sign out |
/// | `GET /home` | the teams the viewer may see |
/// | `GET /teams/{id}?period=YYYY-MM` | team |
/// | `GET /reps/{id}?as_of=YYYY-MM-DD` | rep |
/// | `GET /reps/{id}/review?from=…&to=…` | review packet |
/// | `GET /reps/{id}/audit` | audit trail |
/// | `GET /leaders/{id}?from=…&to=…` | leader scorecard |
pub fn routes(state: DashboardState) -> Router {
    Router::new()
        .route("/", get(auth::sign_in_page))
        .route("/login", get(auth::login_link).post(auth::login_form))
        .route("/logout", post(auth::logout))
        .route("/home", get(pages::home::handler))
        .route("/teams/{team_id}", get(pages::team::handler))
        .route("/reps/{rep_id}", get(pages::rep::handler))
        .route("/reps/{rep_id}/review", get(pages::packet::handler))
        .route("/reps/{rep_id}/audit", get(pages::audit::handler))
        .route("/leaders/{leader_id}", get(pages::leader::handler))
        .with_state(state)
}

/// Why a page could not be shown; each renders as a friendly HTML page.
#[derive(Debug)]
pub(crate) enum PageError {
    /// Not signed in, or the token is no good: the sign-in form.
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    BadRequest(String),
    /// Details go to the log, not the page.
    Internal(String),
}

impl From<trellis_projections::Error> for PageError {
    fn from(e: trellis_projections::Error) -> Self {
        PageError::Internal(e.to_string())
    }
}

impl From<trellis_eventstore::Error> for PageError {
    fn from(e: trellis_eventstore::Error) -> Self {
        PageError::Internal(e.to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            PageError::Unauthorized(why) => {
                return (
                    StatusCode::UNAUTHORIZED,
                    Html(auth::sign_in_html(Some(&why))),
                )
                    .into_response();
            }
            PageError::Forbidden(why) => (StatusCode::FORBIDDEN, "Not yours to see", why),
            PageError::NotFound(why) => (StatusCode::NOT_FOUND, "Not found", why),
            PageError::BadRequest(why) => (StatusCode::BAD_REQUEST, "That did not work", why),
            PageError::Internal(detail) => {
                tracing::error!(error = %detail, "a dashboard page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The page could not be built just now. Try again in a moment; if it keeps \
                     happening, the operator will find the details in the service's log."
                        .to_owned(),
                )
            }
        };
        let body = format!(
            "<h1>{}</h1><p class=\"lead\">{}</p><p><a href=\"/home\">Back to the home page</a> · \
             <a href=\"/\">Sign in with another token</a></p>",
            html::esc(title),
            html::esc(&message)
        );
        (status, Html(html::page(title, None, &body))).into_response()
    }
}
