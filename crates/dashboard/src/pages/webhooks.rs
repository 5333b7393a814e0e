//! Webhook subscriptions, for admins: which services hear of which events,
//! and how their deliveries went. Every page asks the webhook API (through
//! the write router the binary hands the dashboard) as the signed-in admin:
//!
//! | page | request |
//! | --- | --- |
//! | `GET /admin/webhooks` | `GET /v1/webhooks`, and the form to add one |
//! | `POST /admin/webhooks` | `POST /v1/webhooks`: the new secret, shown once |
//! | `GET /admin/webhooks/{id}?status=` | `GET /v1/webhooks/{id}` and its deliveries |
//! | `POST /admin/webhooks/{id}/delete` | `DELETE /v1/webhooks/{id}` |
//! | `POST /admin/webhooks/{id}/pause`, `…/resume` | `POST /v1/webhooks/{id}/pause`, `…/resume` (which also enables one disabled by a `410 Gone`) |
//! | `POST /admin/webhooks/{id}/deliveries/{delivery_id}/replay` | `POST /v1/webhooks/deliveries/{delivery_id}/replay` |

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::{Query, RawPathParams};
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::{AdminVisit, Posted, id_in};
use crate::error::PageError;
use crate::forms::{Widgets, Write, alert, field, plain, send};
use crate::html::{csrf_field, esc, page, stacked_table_start, table_start, when_written};

/// The event categories a subscription may be limited to.
const CATEGORIES: [(&str, &str); 6] = [
    ("rep", "Reps' records"),
    ("team", "Teams"),
    ("standard", "Standards"),
    ("competency", "Competencies"),
    ("alert", "Alerts"),
    ("leader", "Leaders' erasures"),
];

/// Asks the webhook API `method` `path` as the admin.
async fn ask(
    visit: &AdminVisit,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<(StatusCode, Value), PageError> {
    let request = Write {
        method: &method,
        path,
        key: "",
        if_match: None,
        content_type: "application/json",
        body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
    };
    send(&visit.state, &visit.viewer, request).await
}

/// The API's refusal as a page error (what it says, in its status).
fn refused(status: StatusCode, answer: &Value) -> PageError {
    let why = answer["detail"]
        .as_str()
        .unwrap_or("Trellis could not do this.")
        .to_owned();
    PageError::from_status(status, why)
}

/// `GET /admin/webhooks`: the subscriptions, and the form to add one.
pub(crate) async fn list(visit: AdminVisit) -> Result<Response, PageError> {
    let empty = BTreeMap::new();
    listed(&visit, &empty, &BTreeMap::new(), None, StatusCode::OK, "").await
}

/// The list page: `above` (HTML) first, then the subscriptions and the form
/// with `typed` and `errors`.
async fn listed(
    visit: &AdminVisit,
    typed: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
    general: Option<&str>,
    status: StatusCode,
    above: &str,
) -> Result<Response, PageError> {
    let (got, answer) = ask(visit, Method::GET, "/v1/webhooks", None).await?;
    if !got.is_success() {
        return Err(refused(got, &answer));
    }
    let mut b = String::from(
        "<h1>Webhooks</h1><p class=\"lead\">Other services your organisation runs hear of what \
         is recorded in Trellis as it happens: each subscription receives the events it asks \
         for, signed with its own secret, retried until it answers.</p>",
    );
    b.push_str(above);
    let items = answer["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        b.push_str("<p>No subscription yet.</p>");
    } else {
        b.push_str(&table_start(&["Receiver", "Events", "Added", ""]));
        for w in &items {
            let id = w["id"].as_str().unwrap_or("");
            let _ = write!(
                b,
                "<tr><th scope=\"row\"><code>{}</code>{}{}</th><td>{}</td><td>{}</td>\
                 <td><a href=\"/admin/webhooks/{}\">Deliveries</a></td></tr>",
                esc(w["url"].as_str().unwrap_or("")),
                if w["paused_at"].is_string() {
                    " <span class=\"tag overdue\">paused</span>"
                } else {
                    ""
                },
                match disabled(w) {
                    // The reason in words beside the tag (a phone shows no
                    // title attribute).
                    Some((at, reason)) => format!(
                        " <span class=\"tag overdue\">disabled</span><br>\
                         <small>Since {}: {}. Nothing is sent until it is resumed.</small>",
                        esc(&when_written(at)),
                        esc(reason)
                    ),
                    None => String::new(),
                },
                esc(&filters(w)),
                esc(w["created_at"]
                    .as_str()
                    .unwrap_or("")
                    .get(..10)
                    .unwrap_or("")),
                esc(id)
            );
        }
        b.push_str("</tbody></table></div>");
    }
    let order = ["url", "event_types", "categories"];
    let w = Widgets::new(typed, errors, &order);
    b.push_str("<h2 id=\"add\">Add a subscription</h2>");
    b.push_str(&alert(errors, general));
    let _ = write!(
        b,
        "<form class=\"card form\" method=\"post\" action=\"/admin/webhooks\" novalidate>{}\
         <div class=\"field\"><label for=\"url\">Receiver URL (https://…)</label>\
         <input type=\"text\" id=\"url\" name=\"url\" inputmode=\"url\" value=\"{}\"{}>{}</div>\
         <div class=\"field\"><label for=\"event_types\">Event types, one per line \
         (e.g. FeedbackGiven); leave empty for every type</label>\
         <textarea id=\"event_types\" name=\"event_types\" rows=\"3\"{}>{}</textarea>{}</div>\
         <fieldset class=\"field\"{}><legend>Only these records (none ticked: all)</legend>",
        csrf_field(visit.viewer.signed().csrf),
        w.value("url"),
        w.attrs("url"),
        w.error("url"),
        w.attrs("event_types"),
        w.value("event_types"),
        w.error("event_types"),
        w.group_attrs("categories"),
    );
    for (i, (value, label)) in CATEGORIES.iter().enumerate() {
        let name = format!("category.{value}");
        let _ = write!(
            b,
            "<label><input type=\"checkbox\" name=\"{name}\" value=\"on\"{}{}> {label}</label>",
            w.checked(&name, "on"),
            w.choice_attrs("categories", i)
        );
    }
    let _ = write!(
        b,
        "{}</fieldset><p><button class=\"primary\" type=\"submit\">Add the subscription</button> \
         <a href=\"/admin\">Cancel</a></p></form>",
        w.error("categories")
    );
    Ok((
        status,
        Html(page("Webhooks", Some(visit.viewer.signed()), &b)),
    )
        .into_response())
}

/// Since when, and why, a subscription is disabled (its receiver answered
/// `410 Gone`), when it is.
fn disabled(w: &Value) -> Option<(&str, &str)> {
    let at = w["disabled_at"].as_str()?;
    let reason = w["disabled_reason"]
        .as_str()
        .unwrap_or("its receiver said it wants no more deliveries");
    Some((at, reason))
}

/// What a subscription receives, in words.
fn filters(w: &Value) -> String {
    let list = |name: &str| -> Vec<String> {
        w[name]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let (types, categories) = (list("event_types"), list("categories"));
    match (types.is_empty(), categories.is_empty()) {
        (true, true) => "every event".to_owned(),
        (false, true) => types.join(", "),
        (true, false) => format!("every event of: {}", categories.join(", ")),
        (false, false) => format!("{} (of: {})", types.join(", "), categories.join(", ")),
    }
}

/// `POST /admin/webhooks`: adds a subscription and shows its secret once.
pub(crate) async fn create(
    Posted { visit, typed }: Posted<AdminVisit>,
) -> Result<Response, PageError> {
    let event_types: Vec<&str> = field(&typed, "event_types")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let categories: Vec<&str> = CATEGORIES
        .iter()
        .map(|(v, _)| *v)
        .filter(|v| {
            typed
                .get(&format!("category.{v}"))
                .is_some_and(|c| c == "on")
        })
        .collect();
    let body = json!({
        "url": field(&typed, "url"),
        "event_types": event_types,
        "categories": categories,
    });
    let (status, answer) = ask(&visit, Method::POST, "/v1/webhooks", Some(body)).await?;
    if status.is_success() {
        let secret = answer["secret"].as_str().unwrap_or("");
        let said = format!(
            "<div class=\"notice\" role=\"status\"><p><strong>Subscription added.</strong> Its \
             signing secret is below: give it to the receiving service now, it is not shown \
             again. Deliveries carry a signature made with it.</p>\
             <p><code class=\"secret\">{}</code></p></div>",
            esc(secret)
        );
        let empty = BTreeMap::new();
        // The secret is on this page only: no cache may keep it.
        let mut page = listed(&visit, &empty, &empty, None, StatusCode::CREATED, &said).await?;
        page.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        return Ok(page);
    }
    let mut errors = BTreeMap::new();
    for e in answer["errors"].as_array().into_iter().flatten() {
        let name = e["field"].as_str().unwrap_or("");
        let field = ["url", "event_types", "categories"]
            .into_iter()
            .find(|f| name.starts_with(f))
            .unwrap_or("url");
        errors
            .entry(field.to_owned())
            .or_insert_with(|| plain(e["reason"].as_str().unwrap_or("is not valid")));
    }
    let general = errors
        .is_empty()
        .then(|| answer["detail"].as_str().unwrap_or("").to_owned());
    let status = if status.is_client_error() {
        status
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    listed(&visit, &typed, &errors, general.as_deref(), status, "").await
}

/// `GET /admin/webhooks/{id}?status=pending|delivered|dead`: the
/// subscription and its deliveries, newest first.
pub(crate) async fn show(
    path: RawPathParams,
    Query(query): Query<BTreeMap<String, String>>,
    visit: AdminVisit,
) -> Result<Response, PageError> {
    let id = id_in(&path, "webhook_id")?;
    let (got, webhook) = ask(&visit, Method::GET, &format!("/v1/webhooks/{id}"), None).await?;
    if !got.is_success() {
        return Err(refused(got, &webhook));
    }
    let status = query
        .get("status")
        .map(String::as_str)
        .filter(|s| ["pending", "delivered", "dead"].contains(s));
    let deliveries_path = match status {
        Some(s) => format!("/v1/webhooks/{id}/deliveries?status={s}&limit=100"),
        None => format!("/v1/webhooks/{id}/deliveries?limit=100"),
    };
    let (got, deliveries) = ask(&visit, Method::GET, &deliveries_path, None).await?;
    if !got.is_success() {
        return Err(refused(got, &deliveries));
    }
    let csrf = visit.viewer.signed().csrf;
    let mut b = format!(
        "<h1>Webhook</h1><p class=\"lead\"><code>{}</code> · {} · <a href=\"/admin/webhooks\">All webhooks</a></p>",
        esc(webhook["url"].as_str().unwrap_or("")),
        esc(&filters(&webhook))
    );
    let paused = webhook["paused_at"].as_str();
    // Disabled (410 Gone) or paused: resume; else: pause.
    let (state, verb, button) = match (disabled(&webhook), paused) {
        (Some((at, reason)), _) => (
            format!(
                "<strong>Disabled</strong> since {}: {}. Nothing is queued or sent for it, and \
                 what was waiting went to the failed deliveries. Resume it once the receiver \
                 wants deliveries again; then send again the failed ones it still needs.",
                esc(&when_written(at)),
                esc(reason)
            ),
            "resume",
            "Resume",
        ),
        (None, Some(at)) => (
            format!(
                "<strong>Paused</strong> since {}: deliveries are queued, none is sent.",
                esc(&when_written(at))
            ),
            "resume",
            "Resume: send what is queued",
        ),
        (None, None) => (
            "Sending deliveries as events are recorded.".to_owned(),
            "pause",
            "Pause",
        ),
    };
    let _ = write!(
        b,
        "<form method=\"post\" action=\"/admin/webhooks/{id}/{verb}\">{}<p>{state} \
         <button type=\"submit\">{button}</button></p></form>",
        csrf_field(csrf),
    );
    if query.contains_key("replayed") {
        b.push_str("<p class=\"notice\" role=\"status\">Queued again: it is sent with the next deliveries.</p>");
    }
    b.push_str("<nav aria-label=\"Deliveries\"><p>Show: ");
    for (value, label) in [
        ("", "all"),
        ("pending", "pending"),
        ("delivered", "delivered"),
        ("dead", "failed (dead letters)"),
    ] {
        let current = status.unwrap_or("") == value;
        let _ = write!(
            b,
            "<a href=\"/admin/webhooks/{id}{}\"{}>{label}</a> ",
            if value.is_empty() {
                String::new()
            } else {
                format!("?status={value}")
            },
            if current {
                " aria-current=\"page\""
            } else {
                ""
            }
        );
    }
    b.push_str("</p></nav>");
    let items = deliveries["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        b.push_str("<p>No delivery here yet.</p>");
    } else {
        b.push_str(&stacked_table_start(&[
            "Event",
            "Status",
            "#Attempts",
            "Last answer",
            "",
        ]));
        for d in &items {
            let delivery = d["id"].as_str().unwrap_or("");
            let state = d["status"].as_str().unwrap_or("");
            let last = match (d["last_status_code"].as_u64(), d["last_error"].as_str()) {
                (Some(code), _) => format!("HTTP {code}"),
                (None, Some(error)) => esc(error),
                (None, None) => "–".to_owned(),
            };
            let replay = if state == "pending" {
                String::new()
            } else {
                format!(
                    "<form class=\"inline\" method=\"post\" action=\"/admin/webhooks/{id}/deliveries/{}/replay\">{}\
                     <button type=\"submit\">Send again</button></form>",
                    esc(delivery),
                    csrf_field(csrf)
                )
            };
            let _ = write!(
                b,
                "<tr><th scope=\"row\">{}<br><small>{}</small></th><td data-label=\"Status\">{}</td>\
                 <td class=\"n\" data-label=\"Attempts\">{}</td><td data-label=\"Last answer\">{last}</td>\
                 <td data-label=\"\">{replay}</td></tr>",
                esc(d["event_type"].as_str().unwrap_or("")),
                esc(&when_written(d["created_at"].as_str().unwrap_or(""))),
                match state {
                    "dead" => "<span class=\"tag overdue\">failed</span>",
                    "delivered" => "delivered",
                    _ => "pending",
                },
                d["attempts"]
            );
        }
        b.push_str("</tbody></table></div>");
    }
    let _ = write!(
        b,
        "<h2>Delete</h2><form method=\"post\" action=\"/admin/webhooks/{id}/delete\">{}\
         <p>Deleting stops every delivery to this receiver; what is pending is given up.</p>\
         <p><button type=\"submit\">Delete this subscription</button></p></form>",
        csrf_field(csrf)
    );
    Ok(Html(page("Webhook", Some(visit.viewer.signed()), &b)).into_response())
}

/// `POST /admin/webhooks/{id}/pause` and `…/resume`.
pub(crate) async fn pause_or_resume(
    path: RawPathParams,
    uri: axum::http::Uri,
    Posted { visit, .. }: Posted<AdminVisit>,
) -> Result<Response, PageError> {
    let id = id_in(&path, "webhook_id")?;
    let verb = if uri.path().ends_with("/resume") {
        "resume"
    } else {
        "pause"
    };
    let (status, answer) = ask(
        &visit,
        Method::POST,
        &format!("/v1/webhooks/{id}/{verb}"),
        Some(json!({})),
    )
    .await?;
    if !status.is_success() {
        return Err(refused(status, &answer));
    }
    Ok(Redirect::to(&format!("/admin/webhooks/{id}")).into_response())
}

/// `POST /admin/webhooks/{id}/delete`.
pub(crate) async fn delete(
    path: RawPathParams,
    Posted { visit, .. }: Posted<AdminVisit>,
) -> Result<Response, PageError> {
    let id = id_in(&path, "webhook_id")?;
    let (status, answer) = ask(&visit, Method::DELETE, &format!("/v1/webhooks/{id}"), None).await?;
    if !status.is_success() {
        return Err(refused(status, &answer));
    }
    Ok(Redirect::to("/admin/webhooks").into_response())
}

/// `POST /admin/webhooks/{id}/deliveries/{delivery_id}/replay`.
pub(crate) async fn replay(
    path: RawPathParams,
    Posted { visit, .. }: Posted<AdminVisit>,
) -> Result<Response, PageError> {
    let (id, delivery) = (id_in(&path, "webhook_id")?, id_in(&path, "delivery_id")?);
    let (status, answer) = ask(
        &visit,
        Method::POST,
        &format!("/v1/webhooks/deliveries/{delivery}/replay"),
        Some(json!({})),
    )
    .await?;
    if !status.is_success() {
        return Err(refused(status, &answer));
    }
    Ok(Redirect::to(&format!("/admin/webhooks/{id}?replayed=1")).into_response())
}
