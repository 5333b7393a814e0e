//! The webhook routes, for admins only:
//!
//! - `POST /v1/webhooks`: register `{url, event_types, categories, secret?}`;
//!   the answer (201) carries the secret, generated when none was given. It
//!   is never shown again.
//! - `GET /v1/webhooks`, `GET /v1/webhooks/{id}`, `DELETE /v1/webhooks/{id}`.
//! - `GET /v1/webhooks/{id}/deliveries?status=pending|delivered|dead&limit=N`:
//!   the delivery log, newest first, with every attempt.
//! - `POST /v1/webhooks/deliveries/{delivery_id}/replay`: queue a delivered or
//!   dead delivery again.
//!
//! Errors are problem details; every bad field is named.

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::{FromRef, FromRequest, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use trellis_commands::AppState;
use trellis_commands::auth::{Claims, Role};
use trellis_commands::extract::{JsonBody, Principal};
use trellis_commands::problem::{ApiError, ErrorDetail, Fields, Problem};
use trellis_commands::routes::PathIds;
use uuid::Uuid;

use crate::store::{Delivery, DeliveryStatus, Replay, Subscription};
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
    /// The command service's state: the log, the token key, the clock.
    pub app: AppState,
    pub hooks: Webhooks,
}

impl WebhooksState {
    pub fn new(app: AppState, hooks: Webhooks) -> Self {
        WebhooksState { app, hooks }
    }
}

impl FromRef<WebhooksState> for AppState {
    fn from_ref(state: &WebhooksState) -> AppState {
        state.app.clone()
    }
}

/// Every webhook route, with `state` applied and no fallback: merge it into
/// the command service with `trellis_commands::router_with(app, routes(state))`.
pub fn routes(state: WebhooksState) -> Router {
    Router::new()
        .route("/v1/webhooks", post(create).get(list))
        .route("/v1/webhooks/{webhook_id}", get(show).delete(remove))
        .route("/v1/webhooks/{webhook_id}/deliveries", get(deliveries))
        .route("/v1/webhooks/deliveries/{delivery_id}/replay", post(replay))
        .with_state(state)
}

/// The body of `POST /v1/webhooks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    pub url: String,
    /// Event type names (`FeedbackGiven`, …); empty or absent: every type.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// `rep`, `team`, `standard`, `competency`; empty or absent: every category.
    #[serde(default)]
    pub categories: Vec<String>,
    /// `whsec_<base64 of 24 to 64 bytes>`; absent: one is generated.
    #[serde(default)]
    pub secret: Option<String>,
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

fn subscription_json(s: &Subscription) -> Value {
    json!({
        "id": s.id,
        "url": s.url,
        "event_types": s.event_types,
        "categories": s.categories,
        "created_at": s.created_at,
        "created_by": s.created_by,
    })
}

fn delivery_json(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "webhook_id": d.subscription_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "stream": d.stream_id,
        "global_position": d.global_position,
        "status": d.status,
        "attempts": d.attempts,
        "replays": d.replays,
        "next_attempt_at": (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "created_at": d.created_at,
        "delivered_at": d.delivered_at,
        "history": d.history,
    })
}

fn ok_json(status: StatusCode, value: &Value) -> Response {
    (status, axum::Json(value)).into_response()
}

/// `POST /v1/webhooks`
async fn create(
    State(state): State<WebhooksState>,
    Principal(claims): Principal,
    request: Request,
) -> Result<Response, ApiError> {
    admin_only(&claims)?;
    let body = JsonBody::<CreateWebhook>::from_request(request, &state.app)
        .await?
        .value;
    let mut f = Fields::default();

    let url = body.url.trim();
    if url.len() > MAX_URL_LEN {
        f.push(
            "url",
            format!("the URL is longer than {MAX_URL_LEN} characters"),
        );
    } else {
        match url::Url::parse(url) {
            Ok(parsed) => {
                f.check("url", client::check_url(&parsed));
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
    f.finish()?;

    let secret = match body.secret {
        Some(secret) => secret,
        None => signing::generate_secret().map_err(ApiError::Internal)?,
    };
    let start = state.app.store().head().await?;
    let subscription = Subscription {
        id: Uuid::now_v7(),
        url: url.to_owned(),
        event_types,
        categories,
        secret,
        start,
        created_at: state.app.clock().now(),
        created_by: claims.sub.clone(),
    };
    state
        .hooks
        .store()
        .create_subscription(&subscription)
        .await
        .map_err(store_error)?;
    tracing::info!(webhook = %subscription.id, url = %subscription.url, "webhook registered");

    let mut value = subscription_json(&subscription);
    value["secret"] = Value::from(subscription.secret.clone());
    let mut response = ok_json(StatusCode::CREATED, &value);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/webhooks/{}", subscription.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /v1/webhooks`
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
    let items: Vec<Value> = subscriptions.iter().map(subscription_json).collect();
    Ok(ok_json(StatusCode::OK, &json!({ "items": items })))
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

/// `GET /v1/webhooks/{webhook_id}`
async fn show(
    State(state): State<WebhooksState>,
    Principal(claims): Principal,
    path: PathIds,
) -> Result<Response, ApiError> {
    admin_only(&claims)?;
    let subscription = existing(&state, path.uuid("webhook_id")?).await?;
    Ok(ok_json(StatusCode::OK, &subscription_json(&subscription)))
}

/// `DELETE /v1/webhooks/{webhook_id}`
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
        .delete_subscription(id, state.app.clock().now())
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

/// `GET /v1/webhooks/{webhook_id}/deliveries`
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
    let items: Vec<Value> = items.iter().map(delivery_json).collect();
    Ok(ok_json(StatusCode::OK, &json!({ "items": items })))
}

/// `POST /v1/webhooks/deliveries/{delivery_id}/replay`
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
            Ok(ok_json(StatusCode::OK, &delivery_json(&delivery)))
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
