//! What every form shares: recording through the write API (one write path:
//! the same parsing, rules, events and idempotency as `/v1`), the API's
//! refusals turned into errors beside their fields, and the widgets that
//! show what was typed again with its error.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;
use uuid::Uuid;

use axum::response::{IntoResponse, Redirect, Response};
use trellis_domain::RepId;
use trellis_projections::growth::TeamDoc;

use crate::auth::Viewer;
use crate::error::PageError;
use crate::html::esc;
use crate::state::DashboardState;

pub(crate) use crate::error::Typed;

/// What the write API made of a form's request.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Recorded (or recorded before, for a retried idempotency key);
    /// `changed` is false when the API recorded nothing because it was so
    /// already (a rep moved to their own team, a value measured again).
    Recorded { changed: bool },
    /// Refused: the problem's field errors by field, and its detail when no
    /// field is to blame; the status to answer the page with.
    Refused {
        status: StatusCode,
        errors: BTreeMap<String, String>,
        general: Option<String>,
    },
    /// Not sent: the same form made a record lately ([`crate::sent`]).
    /// `general` says when; sent again, the form records.
    Repeated { general: String },
}

/// Sends `body` to `path` of the write API as `viewer`, under the form's
/// idempotency key (`key`, a UUID the form was given when it opened).
pub(crate) async fn record(
    state: &DashboardState,
    viewer: &Viewer,
    path: &str,
    key: &str,
    body: &Value,
) -> Result<Outcome, PageError> {
    record_if(state, viewer, (&Method::POST, path), key, None, body).await
}

/// [`record`] with another method than `POST` (`PUT` to edit), and only
/// if the record is still at version `if_match` (sent as `If-Match`; the API
/// answers 409 when it is not).
pub(crate) async fn record_if(
    state: &DashboardState,
    viewer: &Viewer,
    (method, path): (&Method, &str),
    key: &str,
    if_match: Option<&str>,
    body: &Value,
) -> Result<Outcome, PageError> {
    let request = Write {
        method,
        path,
        key,
        if_match,
        content_type: "application/json",
        body: body.to_string().into_bytes(),
    };
    // Whether this form repeats one recorded lately (Back, then Send); the
    // `If-Match` of a form opened again after the first was recorded would
    // go through, so it is not part of what is compared.
    let print = Uuid::parse_str(key).is_ok().then(|| {
        let who = &viewer.signed().claims.sub;
        state
            .sent()
            .print(who, method.as_str(), path, &request.body)
    });
    let now = state.now_secs();
    if let Some(first) = print.and_then(|print| state.sent().repeats(print, key, now)) {
        return Ok(Outcome::Repeated {
            general: repeated(first),
        });
    }
    let (status, answer) = send(state, viewer, request).await?;
    if status.is_success() {
        let changed = answer["events"].as_u64() != Some(0) || answer["replayed"] == true;
        // Only what made a new record (201): a change sent twice (a role,
        // a team) is so already the second time, and the API says so.
        if let (Some(print), StatusCode::CREATED, true) = (print, status, changed) {
            state.sent().recorded(print, key, now);
        }
        wait_until_shown(state).await;
        return Ok(Outcome::Recorded { changed });
    }
    // The API speaks of the rep; a rep filling in their own form is "you".
    let to_viewer = |why: String| {
        if viewer.is_rep() {
            addressed_to_the_rep(&why)
        } else {
            why
        }
    };
    let mut errors = BTreeMap::new();
    for e in answer["errors"].as_array().into_iter().flatten() {
        let field = e["field"].as_str().unwrap_or("form").to_owned();
        errors
            .entry(field)
            .or_insert_with(|| to_viewer(plain(e["reason"].as_str().unwrap_or("is not valid"))));
    }
    // A refusal about one value goes beside its field: `@date` until the
    // form names its date field ([`aim`]).
    if let (true, Some(concerns), Some(detail)) = (
        errors.is_empty(),
        answer["concerns"].as_str(),
        answer["detail"].as_str(),
    ) {
        errors.insert(format!("@{concerns}"), to_viewer(detail.to_owned()));
    }
    let general = errors.is_empty().then(|| {
        to_viewer(
            answer["detail"]
                .as_str()
                .unwrap_or("Trellis could not record this.")
                .to_owned(),
        )
    });
    Ok(Outcome::Refused {
        status: if status.is_client_error() {
            status
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        errors,
        general,
    })
}

/// A refusal written about "the rep", as a rep reads it about themself.
fn addressed_to_the_rep(why: &str) -> String {
    [
        ("the rep joined", "you joined"),
        ("the rep departed", "you left"),
        ("the rep worked in", "you worked in"),
    ]
    .iter()
    .fold(why.to_owned(), |why, (about, to)| why.replace(about, to))
}

/// Waits, at most [`DashboardState::shown_within`], until the read models
/// have applied everything the log held once a write returned, so that the
/// page the browser is sent to next shows what was just recorded: a rep
/// who marked an item done saw it still listed, with its button, until the
/// projector caught up a moment later. Past the bound the page is shown as
/// it stands.
async fn wait_until_shown(state: &DashboardState) {
    let Some(max) = state.shown_within() else {
        return;
    };
    let deadline = tokio::time::Instant::now() + max;
    // The head with this write in it: the plain head stops short of
    // transactions still running, and a write recorded behind one of them
    // was not waited for.
    let head = match tokio::time::timeout_at(deadline, state.http().store().settled_head()).await {
        Ok(Ok(head)) => head,
        Ok(Err(e)) => return tracing::debug!(error = %e, "the log's head is unavailable"),
        Err(_) => {
            return tracing::debug!(
                max_ms = max.as_millis() as u64,
                "the log did not settle in time; the page shows the read models as they stand"
            );
        }
    };
    loop {
        match state.models().applied().await {
            Ok(Some(applied)) if applied >= head => return,
            Ok(_) => {}
            Err(e) => return tracing::debug!(error = %e, "the read models' place is unavailable"),
        }
        if tokio::time::Instant::now() >= deadline {
            return tracing::debug!(
                max_ms = max.as_millis() as u64,
                "the read models did not show a write in time; the page shows them as they stand"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A reason without the JSON parser's " at line 1 column 52", which means
/// nothing to someone who filled in a form; the API's "is required: …",
/// which follows a field's name there, reads "Required: …" beside it. It
/// stands alone beside the field, so it begins as a sentence does.
pub(crate) fn plain(reason: &str) -> String {
    if let Some(rest) = reason.strip_prefix("is required") {
        return format!("Required{}", without_place(rest));
    }
    crate::html::capitalised(without_place(reason))
}

fn without_place(reason: &str) -> String {
    let cut = reason.rfind(" at line ").filter(|&at| {
        let rest = &reason[at + " at line ".len()..];
        rest.split_once(" column ").is_some_and(|(line, column)| {
            [line, column]
                .iter()
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
    });
    reason[..cut.unwrap_or(reason.len())].to_owned()
}

/// Marks, on a refusal, each required field of `required` (its name and
/// what to say) that was left empty. The write API answers one layer at a
/// time (the body's shape, then its values, then the rules), so an empty
/// form took a round trip for each field; a refused form now marks every
/// empty one at once. Where the API named an empty field already, it did
/// so as a value that does not parse ("“” is not a metric name"): the
/// form's words replace it. Only on a refusal: the API still decides what
/// is valid.
pub(crate) fn also_missing(
    errors: &mut BTreeMap<String, String>,
    typed: &Typed,
    required: &[(&str, &str)],
) {
    for (name, why) in required {
        if field(typed, name).trim().is_empty() {
            errors.insert((*name).to_owned(), (*why).to_owned());
        }
    }
}

/// Puts a refusal about a value ([`record`]'s `@date`, `@period`, …) on
/// the form's field: `date_field` for the date, the field of the same name
/// for the rest.
pub(crate) fn aim(errors: &mut BTreeMap<String, String>, date_field: &str) {
    let about: Vec<String> = errors
        .keys()
        .filter(|k| k.starts_with('@'))
        .cloned()
        .collect();
    for key in about {
        if let Some(why) = errors.remove(&key) {
            let field = match &key[1..] {
                "date" => date_field.to_owned(),
                other => other.to_owned(),
            };
            errors.entry(field).or_insert(why);
        }
    }
}

/// One request to the write API.
#[derive(Debug)]
pub(crate) struct Write<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    /// The form's idempotency key (sent when it is a UUID).
    pub key: &'a str,
    /// Sent as `If-Match`.
    pub if_match: Option<&'a str>,
    pub content_type: &'a str,
    pub body: Vec<u8>,
}

/// Sends `request` to the write API as `viewer`: its status and its JSON
/// answer (`null` when it has none).
pub(crate) async fn send(
    state: &DashboardState,
    viewer: &Viewer,
    request: Write<'_>,
) -> Result<(StatusCode, Value), PageError> {
    let writes = state.writes().ok_or_else(|| {
        PageError::Forbidden("This Trellis shows records but does not take new ones.".into())
    })?;
    let mut builder = Request::builder()
        .method(request.method.clone())
        .uri(request.path)
        .header(header::AUTHORIZATION, format!("Bearer {}", viewer.token()))
        .header(header::CONTENT_TYPE, request.content_type);
    if Uuid::parse_str(request.key).is_ok() {
        builder = builder.header("idempotency-key", request.key);
    }
    if let Some(version) = request.if_match {
        builder = builder.header(header::IF_MATCH, format!("\"{version}\""));
    }
    let built = builder
        .body(Body::from(request.body))
        .map_err(|e| PageError::Internal(format!("a write request: {e}")))?;
    let response = writes
        .clone()
        .oneshot(built)
        .await
        .map_err(|e| PageError::Internal(format!("the write API: {e}")))?;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .map_err(|e| PageError::Internal(format!("the write API's answer: {e}")))?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// A form as a page shows it: what was typed, each field's error, the
/// error above it, and the status to answer with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shown<'a> {
    pub typed: &'a Typed,
    pub errors: &'a BTreeMap<String, String>,
    pub general: Option<&'a str>,
    pub status: StatusCode,
}

impl<'a> Shown<'a> {
    /// A refused form: what was typed, with what was wrong.
    pub(crate) fn refused(
        typed: &'a Typed,
        errors: &'a BTreeMap<String, String>,
        general: Option<&'a str>,
        status: StatusCode,
    ) -> Self {
        Shown {
            typed,
            errors,
            general,
            status,
        }
    }
}

impl<'a> Shown<'a> {
    /// A form sent again that made its record lately: what was typed, and
    /// `general` above it, saying so ([`Outcome::Repeated`]).
    pub(crate) fn asked(typed: &'a Typed, general: &'a str) -> Self {
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        Shown {
            typed,
            errors: &NONE,
            general: Some(general),
            status: StatusCode::OK,
        }
    }
}

/// A form as first opened: `typed` filled in, nothing wrong yet.
pub(crate) fn fresh(typed: &Typed) -> Shown<'_> {
    static NONE: BTreeMap<String, String> = BTreeMap::new();
    Shown {
        typed,
        errors: &NONE,
        general: None,
        status: StatusCode::OK,
    }
}

/// A new idempotency key for a form being opened.
pub(crate) fn new_key() -> String {
    Uuid::now_v7().to_string()
}

/// Shows a form's fields with what was typed and each field's error: the
/// first field in error is focused, and every one in error is marked and
/// described by its message.
#[derive(Debug)]
pub(crate) struct Widgets<'a> {
    typed: &'a Typed,
    errors: &'a BTreeMap<String, String>,
    first: Option<&'a str>,
}

impl<'a> Widgets<'a> {
    /// `order`: the form's fields in the order they appear (for focus).
    pub(crate) fn new(
        typed: &'a Typed,
        errors: &'a BTreeMap<String, String>,
        order: &[&'a str],
    ) -> Self {
        let first = order.iter().copied().find(|f| errors.contains_key(*f));
        Widgets {
            typed,
            errors,
            first,
        }
    }

    /// What was typed in `name`, escaped.
    pub(crate) fn value(&self, name: &str) -> String {
        esc(self.typed.get(name).map_or("", String::as_str))
    }

    /// The attributes of field `name`: marked invalid, described by its
    /// error and focused when first.
    pub(crate) fn attrs(&self, name: &str) -> String {
        if !self.errors.contains_key(name) {
            return String::new();
        }
        format!(
            " aria-invalid=\"true\" aria-describedby=\"{}-error\"{}",
            id(name),
            if self.first == Some(name) {
                " autofocus"
            } else {
                ""
            }
        )
    }

    /// The attributes of a group of radio buttons `name` (its fieldset):
    /// described by its error. A fieldset takes no focus, so the first
    /// choice does ([`Self::choice_attrs`]).
    pub(crate) fn group_attrs(&self, name: &str) -> String {
        if !self.errors.contains_key(name) {
            return String::new();
        }
        format!(" aria-describedby=\"{}-error\"", id(name))
    }

    /// The attributes of the `index`-th choice (from 0) of the radio group
    /// `name`: each marked invalid when the group is in error, and the
    /// first focused when the group is the first field in error.
    pub(crate) fn choice_attrs(&self, name: &str, index: usize) -> &'static str {
        match (
            self.errors.contains_key(name),
            index == 0 && self.first == Some(name),
        ) {
            (false, _) => "",
            (true, false) => " aria-invalid=\"true\"",
            (true, true) => " aria-invalid=\"true\" autofocus",
        }
    }

    /// Whether field `name` has an error.
    pub(crate) fn in_error(&self, name: &str) -> bool {
        self.errors.contains_key(name)
    }

    /// Whether field `name` is the first in error (the one focused).
    pub(crate) fn is_first(&self, name: &str) -> bool {
        self.first == Some(name)
    }

    /// The error of field `name`, to stand right after it.
    pub(crate) fn error(&self, name: &str) -> String {
        self.errors.get(name).map_or(String::new(), |why| {
            format!(
                "<p class=\"field-error\" id=\"{}-error\">{}</p>",
                id(name),
                esc(why)
            )
        })
    }

    /// ` checked` when `name` was typed as `value`.
    pub(crate) fn checked(&self, name: &str, value: &str) -> &'static str {
        if self.typed.get(name).map(String::as_str) == Some(value) {
            " checked"
        } else {
            ""
        }
    }

    /// ` selected` when `name` was typed as `value`.
    pub(crate) fn selected(&self, name: &str, value: &str) -> &'static str {
        if self.typed.get(name).map(String::as_str) == Some(value) {
            " selected"
        } else {
            ""
        }
    }
}

/// A field name as an HTML id: `action_items[1].due_on` → `action_items-1-due_on`.
pub(crate) fn id(name: &str) -> String {
    name.replace(['[', '.'], "-").replace(']', "")
}

/// The alert above a refused form: nothing was recorded, and why.
pub(crate) fn alert(errors: &BTreeMap<String, String>, general: Option<&str>) -> String {
    if errors.is_empty() && general.is_none() {
        return String::new();
    }
    format!(
        "<div class=\"error\" role=\"alert\"><p><strong>Nothing was recorded.</strong> {}</p></div>",
        match general {
            Some(why) => esc(why),
            None => "Please correct what is marked below.".to_owned(),
        }
    )
}

/// The field `name` of `typed`, trimmed ("" when absent).
pub(crate) fn field<'t>(typed: &'t Typed, name: &str) -> &'t str {
    typed.get(name).map_or("", |v| v.trim())
}

/// The answer to a form that recorded: back to the rep's page, saying what
/// was recorded (`?recorded=…`).
pub(crate) fn recorded(rep_id: RepId, what: &str) -> Response {
    Redirect::to(&format!("/reps/{rep_id}?recorded={what}#timeline")).into_response()
}

/// What a form says that repeats one recorded at `first` (seconds since
/// the epoch): nothing was recorded now, and how to record it twice.
fn repeated(first: i64) -> String {
    let at = chrono::DateTime::from_timestamp(first, 0)
        .map_or_else(String::new, |t| format!(" at {}", crate::html::when(t)));
    format!(
        "You already sent this same form{at}, and it was recorded then. To record it a \
         second time, send it again."
    )
}

/// Adds the leader the form names (an admin's forms name one; a leader's
/// own are theirs, and the API fills it in).
pub(crate) fn with_leader(body: &mut Value, typed: &Typed) {
    let leader = field(typed, "leader_id");
    if !leader.is_empty() {
        body["leader_id"] = Value::from(leader);
    }
}

/// Keeps beside their fields the errors of `fields`, and puts any other
/// above the form (in `general`, when nothing else is there).
pub(crate) fn keep_known(
    errors: &mut BTreeMap<String, String>,
    general: &mut Option<String>,
    fields: &[&str],
) {
    let stray: Vec<String> = errors
        .iter()
        .filter(|(name, _)| !fields.contains(&name.as_str()))
        .map(|(name, why)| format!("{name}: {why}"))
        .collect();
    errors.retain(|name, _| fields.contains(&name.as_str()));
    if !stray.is_empty() && general.is_none() {
        *general = Some(stray.join("; "));
    }
}

/// The choice of the leader a record is from, for those who are not a
/// leader themselves (an admin): the rep's team's leaders. Empty for a
/// leader, whose records are their own.
pub(crate) fn leader_field(
    viewer: &Viewer,
    team: Option<&TeamDoc>,
    w: &Widgets<'_>,
    label: &str,
) -> String {
    use std::fmt::Write;
    if viewer.claims().role == trellis_http::auth::Role::Leader {
        return String::new();
    }
    let mut b = format!(
        "<div class=\"field\"><label for=\"leader_id\">{}</label>\
         <select id=\"leader_id\" name=\"leader_id\"{}><option value=\"\">Choose a leader</option>",
        esc(label),
        w.attrs("leader_id")
    );
    for (leader, name) in team.iter().flat_map(|t| t.leaders.iter()) {
        let leader = leader.to_string();
        let _ = write!(
            b,
            "<option value=\"{leader}\"{}>{}</option>",
            w.selected("leader_id", &leader),
            esc(name.as_ref())
        );
    }
    let _ = write!(b, "</select>{}</div>", w.error("leader_id"));
    b
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn a_reason_reads_as_words_beside_its_field() {
        assert_eq!(
            plain("is required: choose one of met, not_met at line 1 column 12"),
            "Required: choose one of met, not_met"
        );
        assert_eq!(
            plain("must last between 1 and 480 minutes"),
            "Must last between 1 and 480 minutes"
        );
        assert_eq!(
            plain("é first"),
            "é first",
            "only an ASCII letter is changed"
        );
    }
}
