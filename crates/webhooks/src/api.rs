//! The webhook routes, for admins only:
//!
//! - `POST /v1/webhooks`: register `{url, event_types, categories, secret?}`;
//!   the answer (201) carries the secret, generated when none was given. It
//!   is never shown again.
//! - `GET /v1/webhooks`, `GET /v1/webhooks/{id}`, `DELETE /v1/webhooks/{id}`.
//! - `POST /v1/webhooks/{id}/pause`, `POST /v1/webhooks/{id}/resume`: while
//!   paused, deliveries are queued but none is sent; resumed, they go out.
//!   A webhook whose receiver answered `410 Gone` is disabled (`disabled_at`
//!   and `disabled_reason` in its view): nothing is queued or sent for it;
//!   resuming enables it again, from the next event on.
//! - `GET /v1/webhooks/{id}/deliveries?status=pending|delivered|dead&limit=N`:
//!   the delivery log, newest first, with every attempt.
//! - `POST /v1/webhooks/deliveries/{delivery_id}/replay`: queue a delivered or
//!   dead delivery again.
//!
//! Errors are problem details; every bad field is named. [`ApiDoc`] is the
//! OpenAPI document of these routes, which `trellis serve` merges into
//! `/openapi.json`; the bodies below are typed so that it describes exactly
//! what the handlers write.

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::{FromRef, FromRequest, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use trellis_http::HttpState;
use trellis_http::auth::{Claims, Role};
use trellis_http::extract::{JsonBody, PathIds, Principal};
use trellis_http::openapi::{BearerAuth, CommonErrors};
use trellis_http::problem::{ApiError, ErrorDetail, Fields, Problem};
use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, Type};
use utoipa::{IntoResponses, OpenApi, ToSchema};
use uuid::Uuid;

use crate::store::{Attempt, Delivery, DeliveryStatus, Replay, Secret, Subscription};
use crate::{CATEGORIES, Error, Webhooks, client, signing};

/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// The most event types or categories one subscription may list.
pub const MAX_FILTERS: usize = 100;
/// The most deliveries one page of the delivery log shows.
pub const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;

/// What a webhook handler needs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct WebhooksState {
    /// What every API shares: the log, the token key, the clock.
    pub http: HttpState,
    pub hooks: Webhooks,
}

impl WebhooksState {
    pub fn new(http: HttpState, hooks: Webhooks) -> Self {
        WebhooksState { http, hooks }
    }
}

impl FromRef<WebhooksState> for HttpState {
    fn from_ref(state: &WebhooksState) -> HttpState {
        state.http.clone()
    }
}

/// The webhook admin API, for [`trellis_http::app`]: every webhook route
/// with `state` applied, and its OpenAPI document.
pub fn api(state: WebhooksState) -> trellis_http::Api {
    trellis_http::Api {
        routes: routes(state),
        doc: Some(document()),
    }
}

/// Every webhook route, with `state` applied and no fallback.
fn routes(state: WebhooksState) -> Router {
    Router::new()
        .route("/v1/webhooks", post(create).get(list))
        .route("/v1/webhooks/{webhook_id}", get(show).delete(remove))
        .route("/v1/webhooks/{webhook_id}/pause", post(pause))
        .route("/v1/webhooks/{webhook_id}/resume", post(resume))
        .route("/v1/webhooks/{webhook_id}/deliveries", get(deliveries))
        .route("/v1/webhooks/deliveries/{delivery_id}/replay", post(replay))
        .with_state(state)
}

/// The body of `POST /v1/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where to POST deliveries: an absolute `http://` or `https://` URL
    /// without credentials, at most 2048 characters.
    #[schema(max_length = 2048, example = "https://hooks.example.com/trellis")]
    pub url: String,
    /// Event type names (`FeedbackGiven`, …); empty or absent: every type.
    #[serde(default)]
    #[schema(schema_with = event_type_filter)]
    pub event_types: Vec<String>,
    /// `rep`, `team`, `standard`, `competency`, `alert`; empty or absent:
    /// every category.
    #[serde(default)]
    #[schema(schema_with = category_filter)]
    pub categories: Vec<String>,
    /// `whsec_<base64 of 24 to 64 bytes>`; absent: one is generated.
    #[serde(default)]
    pub secret: Option<String>,
}

/// A webhook subscription as the API shows it: never its secret, but in
/// the answer to its registration.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookView {
    pub id: Uuid,
    pub url: String,
    /// The event types delivered; empty: every type.
    pub event_types: Vec<String>,
    /// The stream categories delivered; empty: every category.
    pub categories: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// The subject of the admin token that registered it.
    pub created_by: String,
    /// Since when it is paused: its deliveries are queued, none is sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<DateTime<Utc>>,
    /// Since when it is disabled because its receiver answered `410 Gone`:
    /// nothing is queued or sent until it is resumed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<DateTime<Utc>>,
    /// Why it is disabled, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
}

impl From<&Subscription> for WebhookView {
    fn from(s: &Subscription) -> Self {
        WebhookView {
            id: s.id,
            url: s.url.clone(),
            event_types: s.event_types.clone(),
            categories: s.categories.clone(),
            created_at: s.created_at,
            created_by: s.created_by.clone(),
            paused_at: s.paused_at,
            disabled_at: s.disabled.as_ref().map(|d| d.at),
            disabled_reason: s.disabled.as_ref().map(|d| d.reason.clone()),
        }
    }
}

/// The answer to a registration: the webhook and its secret, shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegisteredWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_<base64>`: the key receivers verify the Standard Webhooks
    /// signatures with. It is never shown again.
    pub secret: String,
}

/// Every webhook not deleted, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookView>,
}

/// One attempt to deliver.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = WebhookAttempt)]
pub struct AttemptView {
    pub attempted_at: DateTime<Utc>,
    /// The receiver's status code, when it answered.
    pub status_code: Option<u16>,
    /// Why the attempt failed (null for a 2xx).
    pub error: Option<String>,
    pub duration_ms: u32,
}

impl From<&Attempt> for AttemptView {
    fn from(a: &Attempt) -> Self {
        AttemptView {
            attempted_at: a.attempted_at,
            status_code: a.status_code,
            error: a.error.clone(),
            duration_ms: a.duration_ms,
        }
    }
}

/// One event's delivery to one webhook, with every attempt.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryView {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    /// The stream the event belongs to.
    pub stream: String,
    pub global_position: u64,
    #[schema(schema_with = delivery_status)]
    pub status: DeliveryStatus,
    /// Attempts since it was queued or last replayed.
    pub attempts: u32,
    pub replays: u32,
    /// When the next attempt is due; null unless pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first, across replays.
    pub history: Vec<AttemptView>,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        DeliveryView {
            id: d.id,
            webhook_id: d.subscription_id,
            event_id: d.event_id,
            event_type: d.event_type.clone(),
            stream: d.stream_id.clone(),
            global_position: d.global_position,
            status: d.status,
            attempts: d.attempts,
            replays: d.replays,
            next_attempt_at: (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            created_at: d.created_at,
            delivered_at: d.delivered_at,
            history: d.history.iter().map(AttemptView::from).collect(),
        }
    }
}

/// A page of a webhook's delivery log, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryList {
    pub items: Vec<DeliveryView>,
}

/// A filter of a subscription: at most [`MAX_FILTERS`] of `values`.
fn filter_schema(description: &str, values: impl IntoIterator<Item = &'static str>) -> Array {
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(values)),
        )
        .max_items(Some(MAX_FILTERS))
        .description(Some(description))
        .build()
}

/// The schema of `event_types`: the names the domain knows, as the handler
/// checks them.
fn event_type_filter() -> Array {
    filter_schema(
        "Event type names; empty or absent: every type.",
        known_event_types(),
    )
}

/// The schema of `categories`: [`CATEGORIES`], as the handler checks them.
fn category_filter() -> Array {
    filter_schema(
        "Stream categories; empty or absent: every category.",
        CATEGORIES.iter().copied(),
    )
}

/// The schema of [`DeliveryStatus`]: its values as it serializes them. The
/// match names every variant, so a new one fails to compile here instead of
/// going undocumented.
fn delivery_status() -> Object {
    use DeliveryStatus::*;
    let _every = |s: DeliveryStatus| match s {
        Pending | Delivered | Dead => (),
    };
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([Pending, Delivered, Dead].map(DeliveryStatus::as_str)))
        .description(Some(
            "`pending`: waiting for its next attempt; `delivered`: the receiver answered 2xx; \
             `dead`: every attempt failed, none could succeed (a request HTTP cannot carry), \
             the receiver answered 410 Gone, or its webhook was deleted or disabled (the \
             dead-letter list).",
        ))
        .build()
}

/// The refusal every webhook route can answer with, an
/// `application/problem+json` body; routes list it with
/// `trellis_http::openapi::CommonErrors` (401, 503) and add the others they
/// can answer with (400, 404, 409, 413, 415, 422), each described where it
/// applies.
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum AdminErrors {
    /// The token is not an admin's: only an admin manages webhooks and sees
    /// their deliveries.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
}

/// The webhook admin API, described.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Trellis webhooks",
        description = "Signed webhooks (Standard Webhooks) for systems that do not speak NATS: \
                       subscriptions, their delivery log, and replays. For admins only."
    ),
    paths(create, list, show, remove, pause, resume, deliveries, replay),
    tags((name = "webhooks", description = "Webhook subscriptions, their delivery log and \
                                            replays; for admins only.")),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// [`ApiDoc`] as a document, for callers that do not depend on utoipa
/// ([`api`] hands it to `trellis_http::app`).
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

fn admin_only(claims: &Claims) -> Result<(), ApiError> {
    if claims.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only an admin may manage webhooks and see their deliveries".into(),
        ))
    }
}

fn store_error(e: Error) -> ApiError {
    match e {
        Error::Log(e) => ApiError::from(e),
        Error::Database(message) => ApiError::Unavailable(message),
        Error::Tls(e) => ApiError::Internal(e.to_string()),
    }
}

/// Every event type the domain knows.
fn known_event_types() -> BTreeSet<&'static str> {
    trellis_domain::Event::types()
        .map(|(name, _)| name)
        .chain([crate::CHECKPOINT_TYPE])
        .collect()
}

/// A problem the shared error type has no variant for (a 409 on a delivery).
fn problem(status: StatusCode, kind: &str, title: &str, detail: String) -> Response {
    let body = Problem {
        kind: format!("https://trellis.dev/problems/{kind}"),
        title: title.to_owned(),
        status: status.as_u16(),
        detail: detail.clone(),
        errors: Vec::new(),
        current_version: None,
        concerns: None,
    };
    let mut response = (
        status,
        serde_json::to_vec(&body).expect("a problem serializes"),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response.extensions_mut().insert(ErrorDetail(detail));
    response
}

fn ok_json(status: StatusCode, value: &impl Serialize) -> Response {
    (status, axum::Json(value)).into_response()
}

/// A receiver named by a private address, or by `localhost`, is refused
/// when registered (a name that resolves to one is refused when sent to).
fn public_host(url: &url::Url) -> Result<(), String> {
    let private = match url.host() {
        Some(url::Host::Ipv4(ip)) => !client::is_public(ip.into()),
        Some(url::Host::Ipv6(ip)) => !client::is_public(ip.into()),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => false,
    };
    if private {
        return Err(format!(
            "{} is a private address (loopback, link-local or a private network): webhooks go \
             to public addresses only, unless Trellis is started with \
             --webhook-allow-private-targets",
            url.host_str().unwrap_or_default()
        ));
    }
    Ok(())
}

/// A receiver on a public address is reached over TLS only: events carry
/// what leaders wrote about people, and their signature proves who sent
/// them, not that no one else read them. (A receiver on a private network,
/// allowed with --webhook-allow-private-targets, may use plain http.)
fn encrypted(url: &url::Url) -> Result<(), String> {
    if url.scheme() == "http" {
        return Err(format!(
            "use https:// (\"https://{}\"): events carry what leaders wrote about people and \
             must not cross the internet in plain text",
            &url.as_str()["http://".len()..]
        ));
    }
    Ok(())
}

/// Register a webhook.
///
/// `POST /v1/webhooks`: from the next event appended on, every event that
/// matches the filters is POSTed to `url`, signed with the secret. The
/// answer carries the secret, generated when none was given; it is never
/// shown again.
#[utoipa::path(post, path = "/v1/webhooks", operation_id = "create_webhook", tag = "webhooks",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "The webhook is registered; `Location` names it",
            body = RegisteredWebhook,
            headers(("Location" = String, description = "`/v1/webhooks/{webhook_id}`"))),
        (status = 400, description = "The body is not valid JSON",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the configured limit",
            body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as JSON",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named in `errors`: a URL that is not \
            an absolute http(s) URL (https for a public address), an unknown event type or \
            category, a bad secret",
            body = Problem, content_type = "application/problem+json"),
        AdminErrors, CommonErrors))]
async fn create(
    State(state): State<WebhooksState>,
    Principal(claims): Principal,
    request: Request,
) -> Result<Response, ApiError> {
    admin_only(&claims)?;
    let body = JsonBody::<CreateWebhook>::from_request(request, &state.http)
        .await?
        .value;
    let mut f = Fields::default();

    let url = body.url.trim();
    if url.is_empty() {
        f.push(
            "url",
            "enter the address that should receive the events, like \"https://hooks.example.com/trellis\"",
        );
    } else if url.contains(char::is_whitespace) {
        // The URL parser would write an inner space as %20 and record an
        // address nobody typed: most often two pasted halves, or a typo.
        f.push(
            "url",
            "the address has a space in it: remove it (a space the receiver's path really has is written %20)",
        );
    } else if url.len() > MAX_URL_LEN {
        f.push(
            "url",
            format!("the URL is longer than {MAX_URL_LEN} characters"),
        );
    } else {
        match url::Url::parse(url) {
            Ok(parsed) => {
                f.check("url", client::check_url(&parsed));
                if !state.hooks.allows_private_targets() {
                    f.check("url", public_host(&parsed).and_then(|()| encrypted(&parsed)));
                }
            }
            Err(e) => f.push(
                "url",
                format!("{url:?} is not an absolute URL ({e}); send one like \"https://hooks.example.com/trellis\""),
            ),
        }
    }

    let known = known_event_types();
    if body.event_types.len() > MAX_FILTERS {
        f.push(
            "event_types",
            format!("list at most {MAX_FILTERS} event types"),
        );
    }
    let mut event_types: Vec<String> = Vec::new();
    for (i, name) in body.event_types.iter().enumerate() {
        if known.contains(name.as_str()) {
            if !event_types.contains(name) {
                event_types.push(name.clone());
            }
        } else {
            f.push(
                format!("event_types[{i}]"),
                format!(
                    "{name:?} is not an event type; use one of {}",
                    known.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }

    if body.categories.len() > MAX_FILTERS {
        f.push(
            "categories",
            format!("list at most {MAX_FILTERS} categories"),
        );
    }
    let mut categories: Vec<String> = Vec::new();
    for (i, name) in body.categories.iter().enumerate() {
        if CATEGORIES.contains(&name.as_str()) {
            if !categories.contains(name) {
                categories.push(name.clone());
            }
        } else {
            f.push(
                format!("categories[{i}]"),
                format!("{name:?} is not a category; use {}", CATEGORIES.join(", ")),
            );
        }
    }

    if let Some(secret) = &body.secret {
        f.check("secret", signing::secret_key(secret));
    }
    // A second subscription like one that exists would deliver every event
    // twice: a form sent again, a page reloaded.
    let same_filters = |a: &[String], b: &[String]| {
        let (mut a, mut b) = (a.to_vec(), b.to_vec());
        a.sort();
        b.sort();
        a == b
    };
    let existing = state
        .hooks
        .store()
        .subscriptions()
        .await
        .map_err(store_error)?;
    if let Some(twin) = existing.iter().find(|s| {
        s.url == url
            && same_filters(&s.event_types, &event_types)
            && same_filters(&s.categories, &categories)
    }) {
        f.push(
            "url",
            format!(
                "the subscription added on {} already sends these events to this URL (webhook \
                 {}); a second one would deliver each of them twice. Change or delete that one \
                 instead",
                twin.created_at.format("%-d %B %Y"),
                twin.id
            ),
        );
    }
    f.finish()?;

    let secret = match body.secret {
        Some(secret) => secret,
        None => signing::generate_secret().map_err(ApiError::Internal)?,
    };
    let start = state.http.store().head().await?;
    let subscription = Subscription {
        id: Uuid::now_v7(),
        url: url.to_owned(),
        event_types,
        categories,
        secret: Secret::new(secret),
        start,
        created_at: state.http.clock().now(),
        created_by: claims.sub.clone(),
        paused_at: None,
        disabled: None,
    };
    state
        .hooks
        .store()
        .create_subscription(&subscription)
        .await
        .map_err(store_error)?;
    tracing::info!(webhook = %subscription.id, url = %subscription.url, "webhook registered");

    let body = RegisteredWebhook {
        webhook: WebhookView::from(&subscription),
        secret: subscription.secret.as_str().to_owned(),
    };
    let mut response = ok_json(StatusCode::CREATED, &body);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/webhooks/{}", subscription.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// List the webhooks.
///
/// `GET /v1/webhooks`: every webhook not deleted, oldest first, without
/// their secrets.
#[utoipa::path(get, path = "/v1/webhooks", operation_id = "list_webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "Every webhook not deleted", body = WebhookList),
        AdminErrors, CommonErrors))]
async fn list(
    State(state): State<WebhooksState>,
    Principal(claims): Principal,
) -> Result<Response, ApiError> {
    admin_only(&claims)?;
    let subscriptions = state
        .hooks
        .store()
        .subscriptions()
        .await
        .map_err(store_error)?;
    let items = subscriptions.iter().map(WebhookView::from).collect();
    Ok(ok_json(StatusCode::OK, &WebhookList { items }))
}

async fn existing(state: &WebhooksState, id: Uuid) -> Result<Subscription, ApiError> {
    state
        .hooks
        .store()
        .subscription(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "there is no webhook {id} (it may have been deleted)"
            ))
        })
}

/// Show a webhook.
///
/// `GET /v1/webhooks/{webhook_id}`, without its secret.
#[utoipa::path(get, path = "/v1/webhooks/{webhook_id}", operation_id = "get_webhook",
    tag = "webhooks",
    params(("webhook_id" = Uuid, Path, description = "The webhook")),
    responses(
        (status = 200, description = "The webhook", body = WebhookView),
        (status = 404, description = "No such webhook (deleted, or the id is not a UUID)",
            body = Problem, content_type = "application/problem+json"),
        AdminErrors, CommonErrors))]
async fn show(
    State(state): State<WebhooksState>,
    Principal(claims): Principal,
    path: PathIds,
) -> Result<Response, ApiError> {
    admin_only(&claims)?;
    let subscription = existing(&state, path.uuid("webhook_id")?).await?;
    Ok(ok_json(StatusCode::OK, &WebhookView::from(&subscription)))
}

/// Delete a webhook.
///
/// `DELETE /v1/webhooks/{webhook_id}`: nothing more is queued for it, and
/// its pending deliveries go to the dead-letter list.
#[utoipa::path(delete, path = "/v1/webhooks/{webhook_id}", operation_id = "delete_webhook",
    tag = "webhooks",
    params(("webhook_id" = Uuid, Path, description = "The webhook")),
    responses(
        (status = 204, description = "The webhook is deleted"),
        (status = 404, description = "No such webhook (deleted already, or the id is not a UUID)",
            body = Problem, content_type = "application/problem+json"),
        AdminErrors, CommonErrors))]
async fn remove(
    State(state): State<WebhooksState>,
    Principal(claims): Principal,
    path: PathIds,
) -> Result<Response, ApiError> {
    admin_only(&claims)?;
    let id = path.uuid("webhook_id")?;
    let deleted = state
        .hooks
        .store()
        .delete_subscription(id, state.http.clock().now())
        .await
        .map_err(store_error)?;
    if !deleted {
        return Err(ApiError::NotFound(format!(
            "there is no webhook {id} (it may have been deleted already)"
        )));
    }
    tracing::info!(webhook = %id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Pause a webhook.
///
/// `POST /v1/webhooks/{webhook_id}/pause`: its deliveries keep being queued,
/// none is sent until it is resumed (pausing a paused webhook changes
/// nothing).
#[utoipa::path(post, path = "/v1/webhooks/{webhook_id}/pause", operation_id = "pause_webhook",
    tag = "webhooks",
    params(("webhook_id" = Uuid, Path, description = "The webhook")),
    responses(
        (status = 200, description = "The webhook, paused", body = WebhookView),
        (status = 404, description = "No such webhook (deleted, or the id is not a UUID)",
            body = Problem, content_type = "application/problem+json"),
        AdminErrors, CommonErrors))]
async fn pause(
    State(state): State<WebhooksState>,
    Principal(claims): Principal,
    path: PathIds,
) -> Result<Response, ApiError> {
    set_paused(&state, &claims, &path, true).await
}

/// Resume a paused or disabled webhook.
///
/// `POST /v1/webhooks/{webhook_id}/resume`: what was queued meanwhile is
/// sent, oldest first. A webhook its receiver disabled (`410 Gone`) is
/// enabled again: the events from now on are delivered to it.
#[utoipa::path(post, path = "/v1/webhooks/{webhook_id}/resume", operation_id = "resume_webhook",
    tag = "webhooks",
    params(("webhook_id" = Uuid, Path, description = "The webhook")),
    responses(
        (status = 200, description = "The webhook, sending again (neither paused nor disabled)",
            body = WebhookView),
        (status = 404, description = "No such webhook (deleted, or the id is not a UUID)",
            body = Problem, content_type = "application/problem+json"),
        AdminErrors, CommonErrors))]
async fn resume(
    State(state): State<WebhooksState>,
    Principal(claims): Principal,
    path: PathIds,
) -> Result<Response, ApiError> {
    set_paused(&state, &claims, &path, false).await
}

async fn set_paused(
    state: &WebhooksState,
    claims: &Claims,
    path: &PathIds,
    paused: bool,
) -> Result<Response, ApiError> {
    admin_only(claims)?;
    let id = path.uuid("webhook_id")?;
    let store = state.hooks.store();
    let not_found = || {
        ApiError::NotFound(format!(
            "there is no webhook {id} (it may have been deleted)"
        ))
    };
    let current = store
        .subscription(id)
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)?;
    // Resuming also enables a webhook its receiver disabled.
    let enabling = !paused && current.disabled.is_some();
    if current.paused_at.is_some() != paused || enabling {
        let at = paused.then(|| state.http.clock().now());
        if !store.set_paused(id, at).await.map_err(store_error)? {
            return Err(not_found());
        }
        tracing::info!(webhook = %id, paused, "webhook paused or resumed");
    }
    if !paused {
        state.hooks.wake();
    }
    let now = store
        .subscription(id)
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)?;
    Ok(ok_json(StatusCode::OK, &WebhookView::from(&now)))
}

/// A webhook's delivery log.
///
/// `GET /v1/webhooks/{webhook_id}/deliveries?status=&limit=`: newest first,
/// each delivery with every attempt.
#[utoipa::path(get, path = "/v1/webhooks/{webhook_id}/deliveries",
    operation_id = "list_webhook_deliveries", tag = "webhooks",
    params(
        ("webhook_id" = Uuid, Path, description = "The webhook"),
        ("status" = Option<String>, Query, description = "Only the deliveries in this state: \
            `pending`, `delivered` or `dead` (the dead-letter list); absent: all"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "The most \
            deliveries on the page (1 to 1000; default 100)")),
    responses(
        (status = 200, description = "The delivery log, newest first", body = DeliveryList),
        (status = 404, description = "No such webhook (deleted, or the id is not a UUID)",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad or unknown query parameter, named in `errors`",
            body = Problem, content_type = "application/problem+json"),
        AdminErrors, CommonErrors))]
async fn deliveries(
    State(state): State<WebhooksState>,
    Principal(claims): Principal,
    path: PathIds,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    admin_only(&claims)?;
    let id = path.uuid("webhook_id")?;
    let mut f = Fields::default();
    let mut status = None;
    let mut limit = DEFAULT_PAGE;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "status" => match DeliveryStatus::parse(&value) {
                Some(s) => status = Some(s),
                None => f.push(
                    "status",
                    format!("{value:?} is not a delivery status; use pending, delivered or dead"),
                ),
            },
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => limit = n,
                _ => f.push(
                    "limit",
                    format!(
                        "{value:?} is not a page size; use a whole number from 1 to {MAX_PAGE}"
                    ),
                ),
            },
            other => f.push(
                other.to_owned(),
                "unknown query parameter; use status and limit",
            ),
        }
    }
    f.finish()?;
    existing(&state, id).await?;
    let items = state
        .hooks
        .store()
        .deliveries(id, status, limit)
        .await
        .map_err(store_error)?;
    let items = items.iter().map(DeliveryView::from).collect();
    Ok(ok_json(StatusCode::OK, &DeliveryList { items }))
}

/// Replay a delivery.
///
/// `POST /v1/webhooks/deliveries/{delivery_id}/replay`: queue a delivered
/// or dead delivery again, due now (one of a paused or disabled webhook
/// waits until the webhook is resumed).
#[utoipa::path(post, path = "/v1/webhooks/deliveries/{delivery_id}/replay",
    operation_id = "replay_webhook_delivery", tag = "webhooks",
    params(("delivery_id" = Uuid, Path, description = "The delivery")),
    responses(
        (status = 200, description = "The delivery, queued again", body = DeliveryView),
        (status = 404, description = "No such delivery (or the id is not a UUID)",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The delivery is still pending (`delivery-pending`), or \
            its webhook was deleted (`webhook-deleted`)",
            body = Problem, content_type = "application/problem+json"),
        AdminErrors, CommonErrors))]
async fn replay(
    State(state): State<WebhooksState>,
    Principal(claims): Principal,
    path: PathIds,
) -> Result<Response, ApiError> {
    admin_only(&claims)?;
    let id = path.uuid("delivery_id")?;
    let outcome = state
        .hooks
        .store()
        .replay(id, chrono::Utc::now())
        .await
        .map_err(store_error)?;
    match outcome {
        Replay::Requeued(delivery) => {
            tracing::info!(delivery = %id, "webhook delivery replayed");
            state.hooks.wake();
            Ok(ok_json(StatusCode::OK, &DeliveryView::from(&*delivery)))
        }
        Replay::NotFound => Err(ApiError::NotFound(format!("there is no delivery {id}"))),
        Replay::AlreadyPending => Ok(problem(
            StatusCode::CONFLICT,
            "delivery-pending",
            "The delivery is still pending",
            format!(
                "delivery {id} is still pending: it will be attempted again on its own; only a \
                 delivered or dead delivery can be replayed"
            ),
        )),
        Replay::SubscriptionDeleted => Ok(problem(
            StatusCode::CONFLICT,
            "webhook-deleted",
            "The webhook was deleted",
            format!("delivery {id} belongs to a deleted webhook; register the URL again instead"),
        )),
    }
}
