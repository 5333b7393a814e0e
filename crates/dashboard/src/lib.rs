//! The face of Trellis: server-rendered HTML pages over the read models,
//! with charts drawn server-side as inline SVG.
//!
//! It owns presentation only. Every question the read API answers too (a
//! rep as of an instant, the review packet, the audit trail, reading a rep's
//! stream) it asks the read side's functions (`trellis-queries`), so a page
//! and `/v1` never disagree; otherwise it reads the `growth` projection's
//! documents. It never writes. No JavaScript framework, no CDN: every byte a
//! page needs is in the binary (the CSS is inlined, the charts are SVG, the
//! only script is a print button).
//!
//! Authentication and authorization follow the API's rules: the same bearer
//! tokens (pasted into the sign-in form, or opened as `/login?token=…`, then
//! kept in an HttpOnly cookie), a rep sees only their own pages and never a
//! private note, a leader only their teams, an auditor every record
//! (of the set-up pages, the overview alone, without its forms; not a
//! person's subject-access export).
//!
//! # Wiring
//!
//! ```text
//! let state = DashboardState::new(query_state.clone(), read_store.clone());
//! let router = trellis_http::app(http, [trellis_dashboard::api(state) /* , … */]);
//! ```
//!
//! # Layout
//! - [`DashboardState`], [`api`]: the service and its pages.
//! - `auth`: who is looking (cookie or bearer) and what they may see; sign in and out.
//! - `data`: loading documents; a rep's timeline of notes.
//! - `html`, `svg`: page shell, escaping, CSS; line charts.
//! - `pages`: one module per page.

use axum::Router;
use axum::routing::{get, post};

use pages::{admin, facts, plans, support};

mod auth;
mod data;
mod error;
mod forms;
mod html;
mod pages;
mod sent;
mod state;
mod svg;

pub use auth::COOKIE as SESSION_COOKIE;
pub use state::DashboardState;

/// The dashboard, for [`trellis_http::app`]: its pages with `state` applied
/// (no OpenAPI document: pages are not an API).
pub fn api(state: DashboardState) -> trellis_http::Api {
    trellis_http::Api {
        routes: routes(state),
        doc: None,
    }
}

/// The dashboard's pages, with their state applied and no fallback:
///
/// | path | page |
/// | --- | --- |
/// | `GET /` | sign-in form (or to the home page when signed in) |
/// | `GET /sign-in?link=…`, `POST /sign-in` | a one-time sign-in link: a button, then the session |
/// | `GET /auth/oidc/start`, `GET /auth/oidc/callback` | sign in at the company's identity provider |
/// | `GET /login?token=…`, `POST /login` | sign in with a developer token (`trellis token`) |
/// | `POST /logout`, `POST /logout/everywhere` | end this session, or every session of the person |
/// | `GET /home` | the teams the viewer may see; for a leader, what waits on them (their open follow-ups, their reps' open support requests) |
/// | `GET /teams/{id}?period=YYYY-MM` | team |
/// | `GET /reps/{id}?as_of=YYYY-MM-DD` | rep |
/// | `GET /reps/{id}/review?from=…&to=…` | review packet |
/// | `GET /reps/{id}/audit` | audit trail |
/// | `GET /reps/{id}/feedback`, `POST` | give feedback (through the write API) |
/// | `GET /reps/{id}/coaching`, `POST` | log a coaching session (through the write API) |
/// | `GET /reps/{id}/assessment?competency=…`, `POST` | assess a skill against its rubric |
/// | `POST /reps/{id}/feedback/{fid}/acknowledgement`, `POST /reps/{id}/action-items/{iid}/completion` | a rep's one-click records |
/// | `GET /reps/{id}/support-requests/new`, `POST` | a rep asks for support |
/// | `…/support-requests/{rid}/acknowledgement`, `…/resolution` (`GET`, `POST`) | a leader answers it |
/// | `GET /reps/{id}/improvement-plans/new`, `…/{pid}/checkpoints`, `…/{pid}/closure` (and `POST`) | a plan's start, checkpoints and close |
/// | `GET /reps/{id}/measurements/new`, `POST` | record a measurement |
/// | `GET /reps/{id}/action-items/{iid}/drop`, `POST` | drop an action item |
/// | `GET /reps/{id}/corrections/new?fact=…&as=retract\|level\|value`, `POST` | retract or correct a record |
/// | `GET /reps/{id}/reviews/new?from=…&to=…`, `POST` | record a review of a packet |
/// | `POST /reps/{id}/expectations-acknowledgements` | a rep acknowledges a standard |
/// | `GET /leaders/{id}?from=…&to=…` | leader scorecard |
/// | `GET /people/{id}/export?format=json` | everything Trellis holds about a person (printable; `format=json` downloads it) |
/// | `GET /admin` | set up: teams, people, competencies, standards (an auditor reads it, without its forms) |
/// | `/admin/teams/new`, `/admin/teams/{id}/name`, `…/leaders`, `…/leaders/existing` (`GET`, `POST`) | form, rename a team, add a new or an existing leader |
/// | `/admin/reps/new`, `/admin/reps/{id}/team`, `…/role`, `…/departure` | hire, move, change role, depart |
/// | `/admin/competencies/new`, `…/{id}/edit`, `…/{id}/retirement` | the competency framework |
/// | `/admin/standards/new`, `…/{id}/revision`, `…/{id}/retirement` | standards |
/// | `GET /admin/measurements`, `POST` (a CSV file), `POST /admin/measurements/record` | upload measurements: check, then record |
/// | `GET /admin/webhooks`, `POST`; `GET /admin/webhooks/{id}`, `POST …/delete`, `…/pause`, `…/resume`, `…/deliveries/{did}/replay` | webhook subscriptions and their deliveries |
/// | `GET /admin/access`, `POST` | who may sign in (admins; auditors look), and giving someone access |
/// | `POST /admin/access/{id}/link` (`GET`: it was shown once), `…/sessions/end`, `…/stop`, `…/restore`; `GET /admin/access/{id}/identity`, `POST` | a one-time sign-in link (shown once), signing out everywhere, stopping and restoring access, email and subject |
/// | `GET /admin/service-accounts`, `POST`; `GET /admin/service-accounts/{id}/revoke`, `POST` | service accounts: a new one's token (shown once), revoking one |
fn routes(state: DashboardState) -> Router {
    Router::new()
        .route("/", get(auth::sign_in_page))
        .route("/login", get(auth::login_link).post(auth::login_form))
        .route("/logout", post(auth::logout))
        .route("/logout/everywhere", post(auth::logout_everywhere))
        .route("/sign-in", get(auth::link_page).post(auth::link_sign_in))
        .route("/auth/oidc/start", get(auth::oidc_start))
        .route("/auth/oidc/callback", get(auth::oidc_callback))
        .route("/favicon.svg", get(icon))
        .route("/favicon.ico", get(icon))
        .route("/home", get(pages::home::handler))
        .route("/teams/{team_id}", get(pages::team::handler))
        .route("/reps/{rep_id}", get(pages::rep::handler))
        .route("/reps/{rep_id}/review", get(pages::packet::handler))
        .route("/reps/{rep_id}/audit", get(pages::audit::handler))
        .route(
            "/reps/{rep_id}/feedback/{feedback_id}/acknowledgement",
            post(pages::actions::act),
        )
        .route(
            "/reps/{rep_id}/action-items/{action_item_id}/completion",
            post(pages::actions::act),
        )
        .route(
            "/reps/{rep_id}/assessment",
            get(pages::assessment::form).post(pages::assessment::submit),
        )
        .route(
            "/reps/{rep_id}/coaching",
            get(pages::coaching::form).post(pages::coaching::submit),
        )
        .route(
            "/reps/{rep_id}/feedback",
            get(pages::feedback::form).post(pages::feedback::submit),
        )
        .route(
            "/reps/{rep_id}/expectations-acknowledgements",
            post(pages::actions::act),
        )
        .route(
            "/reps/{rep_id}/support-requests/new",
            quick::<support::Raise>(),
        )
        .route(
            "/reps/{rep_id}/support-requests/{request_id}/acknowledgement",
            quick::<support::Acknowledge>(),
        )
        .route(
            "/reps/{rep_id}/support-requests/{request_id}/resolution",
            quick::<support::Resolve>(),
        )
        .route(
            "/reps/{rep_id}/improvement-plans/new",
            quick::<plans::Start>(),
        )
        .route(
            "/reps/{rep_id}/improvement-plans/{plan_id}/checkpoints",
            quick::<plans::Checkpoint>(),
        )
        .route(
            "/reps/{rep_id}/improvement-plans/{plan_id}/closure",
            quick::<plans::Close>(),
        )
        .route("/reps/{rep_id}/measurements/new", quick::<facts::Measure>())
        .route(
            "/reps/{rep_id}/action-items/{action_item_id}/drop",
            quick::<facts::DropItem>(),
        )
        .route("/reps/{rep_id}/corrections/new", quick::<facts::Correct>())
        .route("/reps/{rep_id}/reviews/new", quick::<facts::Review>())
        .route("/leaders/{leader_id}", get(pages::leader::handler))
        .route("/people/{person_id}/export", get(pages::export::handler))
        .route("/admin", get(admin::overview))
        .route("/admin/teams/new", quick::<admin::FormTeam>())
        .route("/admin/teams/{team_id}/name", quick::<admin::RenameTeam>())
        .route(
            "/admin/teams/{team_id}/leaders",
            quick::<admin::AddLeader>(),
        )
        .route(
            "/admin/teams/{team_id}/leaders/existing",
            quick::<admin::AssignLeader>(),
        )
        .route("/admin/reps/new", quick::<admin::HireRep>())
        .route("/admin/reps/{rep_id}/team", quick::<admin::MoveRep>())
        .route("/admin/reps/{rep_id}/role", quick::<admin::ChangeRole>())
        .route("/admin/reps/{rep_id}/name", quick::<admin::RenameRep>())
        .route("/admin/reps/{rep_id}/departure", quick::<admin::Depart>())
        .route("/admin/reps/{rep_id}/erasure", quick::<admin::Erase>())
        .route(
            "/admin/leaders/{leader_id}/erasure",
            quick::<admin::EraseLeader>(),
        )
        .route(
            "/admin/competencies/new",
            quick::<admin::DefineCompetency>(),
        )
        .route(
            "/admin/competencies/{competency_id}/edit",
            quick::<admin::EditCompetency>(),
        )
        .route(
            "/admin/competencies/{competency_id}/retirement",
            quick::<admin::RetireCompetency>(),
        )
        .route(
            "/admin/measurements",
            get(pages::import::form).post(pages::import::check),
        )
        .route("/admin/measurements/record", post(pages::import::record))
        .route(
            "/admin/webhooks",
            get(pages::webhooks::list).post(pages::webhooks::create),
        )
        .route("/admin/webhooks/{webhook_id}", get(pages::webhooks::show))
        .route(
            "/admin/webhooks/{webhook_id}/delete",
            post(pages::webhooks::delete),
        )
        .route(
            "/admin/webhooks/{webhook_id}/pause",
            post(pages::webhooks::pause_or_resume),
        )
        .route(
            "/admin/webhooks/{webhook_id}/resume",
            post(pages::webhooks::pause_or_resume),
        )
        .route(
            "/admin/webhooks/{webhook_id}/deliveries/{delivery_id}/replay",
            post(pages::webhooks::replay),
        )
        .route(
            "/admin/access",
            get(pages::access::list).post(pages::access::add),
        )
        .route(
            "/admin/access/{account_id}/link",
            get(pages::access::link_shown_once).post(pages::access::link),
        )
        .route(
            "/admin/access/{account_id}/sessions/end",
            post(pages::access::end_sessions),
        )
        .route(
            "/admin/access/{account_id}/stop",
            post(pages::access::stop_or_restore),
        )
        .route(
            "/admin/access/{account_id}/restore",
            post(pages::access::stop_or_restore),
        )
        .route(
            "/admin/access/{account_id}/identity",
            get(pages::access::identity_form).post(pages::access::identity),
        )
        .route(
            "/admin/service-accounts",
            get(pages::access::services).post(pages::access::create_service),
        )
        .route(
            "/admin/service-accounts/{service_account_id}/revoke",
            get(pages::access::revoke_form).post(pages::access::revoke),
        )
        .route("/admin/standards/new", quick::<admin::SetStandard>())
        .route(
            "/admin/standards/{standard_id}/revision",
            quick::<admin::ReviseStandard>(),
        )
        .route(
            "/admin/standards/{standard_id}/retirement",
            quick::<admin::RetireStandard>(),
        )
        .layer(axum::middleware::map_response(page_policy))
        .with_state(state)
}

/// The `GET` and `POST` of a [`pages::quick`] form.
/// The pages' icon, at the path a page links it from and at the one
/// browsers ask for unbidden.
async fn icon() -> impl axum::response::IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "image/svg+xml"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        html::ICON,
    )
}

fn quick<F: pages::quick::Quick + 'static>() -> axum::routing::MethodRouter<DashboardState> {
    get(pages::quick::open::<F>).post(pages::quick::submit::<F>)
}

/// Every page's Content-Security-Policy (the shared layer adds the other
/// security headers), and `Cache-Control: no-store` unless the page set its
/// own: pages show a person's record to whoever signed in, and a browser
/// must not keep them, nor show them again from its history after sign-out.
async fn page_policy(mut response: axum::response::Response) -> axum::response::Response {
    if let Ok(value) = axum::http::HeaderValue::from_str(html::content_security_policy()) {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_SECURITY_POLICY, value);
    }
    response
        .headers_mut()
        .entry(axum::http::header::CACHE_CONTROL)
        .or_insert(axum::http::HeaderValue::from_static("no-store"));
    response
}
