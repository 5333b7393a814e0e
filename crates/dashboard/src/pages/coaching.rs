//! `GET /reps/{id}/coaching`: the form a leader logs a 1:1 coaching session
//! with (focus competencies, length, notes, who sees them, and any number of
//! action items, each with an owner and a due date); `POST` records it
//! through the write API (`POST /v1/reps/{id}/coaching-sessions`). Without
//! script: "Add another action item" sends the form back with one more row,
//! recording nothing.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};

use super::{Posted, RepVisit};
use crate::data;
use crate::error::PageError;
use crate::forms::{
    Outcome, Shown, Typed, Widgets, aim, alert, also_missing, field, fresh, id, leader_field,
    new_key, record, recorded, with_leader,
};
use crate::html::{csrf_field, esc, page};

/// Action item rows a new form shows.
const ROWS: usize = 2;
/// The most rows a form grows to.
const MAX_ROWS: usize = 20;

/// `GET`: the empty form.
pub(crate) async fn form(visit: RepVisit) -> Result<Response, PageError> {
    visit.viewer.may_record_as_leader()?;
    let mut typed = Typed::new();
    typed.insert("idempotency_key".into(), new_key());
    typed.insert("held_on".into(), visit.state.today().to_string());
    typed.insert("duration_minutes".into(), "30".into());
    typed.insert("visibility".into(), "shared".into());
    typed.insert("rows".into(), ROWS.to_string());
    render(&visit, fresh(&typed)).await
}

/// How many action item rows the form has.
fn rows(typed: &Typed) -> usize {
    field(typed, "rows")
        .parse::<usize>()
        .unwrap_or(ROWS)
        .clamp(1, MAX_ROWS)
}

/// The field of action item row `i`.
fn item(i: usize, name: &str) -> String {
    format!("action_items[{i}].{name}")
}

/// `POST`: records the session, or shows the form again (with another row
/// when asked, or with what was wrong).
pub(crate) async fn submit(Posted { visit, mut typed }: Posted) -> Result<Response, PageError> {
    let (state, viewer) = (&visit.state, &visit.viewer);
    if typed.contains_key("more") {
        let more = (rows(&typed) + 1).min(MAX_ROWS);
        typed.insert("rows".into(), more.to_string());
        // The row just added is where the keyboard goes next.
        typed.insert("added".into(), (more - 1).to_string());
        return render(&visit, fresh(&typed)).await;
    }
    let rep_id = visit.profile.rep_id;
    let focus: Vec<&str> = typed
        .iter()
        .filter(|(k, v)| k.starts_with("focus.") && v.as_str() == "on")
        .map(|(k, _)| &k["focus.".len()..])
        .collect();
    // Rows left blank are not action items; `sent[k]` is the row of the
    // k-th item sent, to put the API's `action_items[k]` errors back.
    let mut sent = Vec::new();
    let mut items = Vec::new();
    for i in 0..rows(&typed) {
        let (description, due_on) = (
            field(&typed, &item(i, "description")),
            field(&typed, &item(i, "due_on")),
        );
        if description.is_empty() && due_on.is_empty() {
            continue;
        }
        sent.push(i);
        items.push(json!({
            "description": description,
            "owner": field(&typed, &item(i, "owner")),
            "due_on": due_on,
        }));
    }
    let duration = field(&typed, "duration_minutes");
    let mut body = json!({
        "held_on": field(&typed, "held_on"),
        "duration_minutes": duration.parse::<u32>().map_or_else(|_| json!(duration), |m| json!(m)),
        "focus": focus,
        "notes": field(&typed, "notes"),
        "visibility": field(&typed, "visibility"),
        "action_items": Value::Array(items),
    });
    with_leader(&mut body, &typed);
    let path = format!("/v1/reps/{rep_id}/coaching-sessions");
    let key = field(&typed, "idempotency_key");
    match record(state, viewer, &path, key, &body).await? {
        Outcome::Recorded { .. } => Ok(recorded(rep_id, "coaching")),
        Outcome::Repeated { general } => render(&visit, Shown::asked(&typed, &general)).await,
        Outcome::Refused {
            status,
            mut errors,
            general,
        } => {
            aim(&mut errors, "held_on");
            also_missing(
                &mut errors,
                &typed,
                &[
                    ("held_on", "Required: pick the day the session was held."),
                    (
                        "duration_minutes",
                        "Required: enter its length in minutes, e.g. 45.",
                    ),
                    ("notes", "Required: write what you worked on."),
                ],
            );
            let mut shown = BTreeMap::new();
            let mut stray = Vec::new();
            for (name, why) in errors {
                match place(&name, &sent) {
                    // Not a number: in words, rather than the parser's.
                    Some(field)
                        if field == "duration_minutes" && duration.parse::<u32>().is_err() =>
                    {
                        shown.insert(
                            field,
                            "Enter the length of the session in minutes, a whole number like 45."
                                .to_owned(),
                        );
                    }
                    // A due date left empty beside an item written down:
                    // the picker's words, not the API's "YYYY-MM-DD".
                    Some(field)
                        if field.ends_with(".due_on")
                            && crate::forms::field(&typed, &field).trim().is_empty() =>
                    {
                        shown.insert(field, "Required: pick the day it is due.".to_owned());
                    }
                    Some(field) => {
                        shown.insert(field, why);
                    }
                    None => stray.push(format!("{name}: {why}")),
                }
            }
            let general = general.or_else(|| (!stray.is_empty()).then(|| stray.join("; ")));
            let shown = Shown::refused(&typed, &shown, general.as_deref(), status);
            render(&visit, shown).await
        }
    }
}

/// The form field an API error names: the session's own fields as they
/// are, `action_items[k].x` as the row it came from, `focus[k]` as focus.
fn place(name: &str, sent: &[usize]) -> Option<String> {
    const OWN: [&str; 6] = [
        "leader_id",
        "held_on",
        "duration_minutes",
        "notes",
        "visibility",
        "action_items",
    ];
    if OWN.contains(&name) {
        return Some(name.to_owned());
    }
    if name.starts_with("focus") {
        return Some("focus".to_owned());
    }
    let rest = name.strip_prefix("action_items[")?;
    let (k, field) = rest.split_once("].")?;
    let row = sent.get(k.parse::<usize>().ok()?)?;
    Some(item(*row, field))
}

/// The form, with `typed` in its fields and `errors` beside them.
async fn render(visit: &RepVisit, shown: Shown<'_>) -> Result<Response, PageError> {
    let (typed, errors) = (shown.typed, shown.errors);
    let (state, viewer, profile) = (&visit.state, &visit.viewer, &visit.profile);
    let competencies = data::active_competencies(state).await?;
    let team = data::team(state, profile.team_id).await?;
    let rows = rows(typed);
    let mut order: Vec<String> = [
        "leader_id",
        "held_on",
        "duration_minutes",
        "focus",
        "notes",
        "visibility",
    ]
    .map(str::to_owned)
    .to_vec();
    for i in 0..rows {
        order.extend(["description", "owner", "due_on"].map(|f| item(i, f)));
    }
    let order: Vec<&str> = order.iter().map(String::as_str).collect();
    let w = Widgets::new(typed, errors, &order);
    let rep_id = profile.rep_id;
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Log a coaching session</h1><p class=\"lead\">A 1:1 with \
         <a href=\"/reps/{rep_id}\">{}</a>: what you worked on, and who does what next.</p>{}\
         <form class=\"card form\" method=\"post\" action=\"/reps/{rep_id}/coaching\" novalidate>{}\
         <input type=\"hidden\" name=\"idempotency_key\" value=\"{}\">\
         <input type=\"hidden\" name=\"rows\" value=\"{rows}\">",
        esc(profile.name.as_ref()),
        alert(errors, shown.general),
        csrf_field(viewer.signed().csrf),
        w.value("idempotency_key"),
    );
    b.push_str(&leader_field(viewer, team.as_ref(), &w, "Held by"));
    let _ = write!(
        b,
        "<div class=\"field\"><label for=\"held_on\">Held on</label>\
         <input type=\"date\" id=\"held_on\" name=\"held_on\" value=\"{}\" max=\"{}\"{}>{}</div>\
         <div class=\"field\"><label for=\"duration_minutes\">Length (minutes)</label>\
         <input type=\"number\" inputmode=\"numeric\" min=\"1\" max=\"{}\" id=\"duration_minutes\" \
         name=\"duration_minutes\" value=\"{}\"{}>{}</div>\
         <fieldset class=\"field\" id=\"focus\"{}><legend>Focus</legend>",
        w.value("held_on"),
        state.today(),
        w.attrs("held_on"),
        w.error("held_on"),
        trellis_domain::rep::MAX_SESSION_MINUTES,
        w.value("duration_minutes"),
        w.attrs("duration_minutes"),
        w.error("duration_minutes"),
        w.group_attrs("focus"),
    );
    for (i, c) in competencies.iter().enumerate() {
        let name = format!("focus.{}", c.competency_id);
        let _ = write!(
            b,
            "<label><input type=\"checkbox\" name=\"{name}\" value=\"on\"{}{}> {}</label>",
            w.checked(&name, "on"),
            w.choice_attrs("focus", i),
            esc(c.name.as_ref())
        );
    }
    let _ = write!(
        b,
        "{}</fieldset>\
         <div class=\"field\"><label for=\"notes\">Notes</label>\
         <textarea id=\"notes\" name=\"notes\" rows=\"5\"{}>{}</textarea>{}</div>\
         <fieldset class=\"field\"{}><legend>Who sees the notes</legend>\
         <label><input type=\"radio\" name=\"visibility\" value=\"shared\"{}{}> The rep and their leaders</label>\
         <label><input type=\"radio\" name=\"visibility\" value=\"private\"{}{}> Leaders only (private)</label>{}</fieldset>\
         <h2>Action items</h2><p class=\"muted\">Leave a row blank to skip it.</p>",
        w.error("focus"),
        w.attrs("notes"),
        w.value("notes"),
        w.error("notes"),
        w.group_attrs("visibility"),
        w.checked("visibility", "shared"),
        w.choice_attrs("visibility", 0),
        w.checked("visibility", "private"),
        w.choice_attrs("visibility", 1),
        w.error("visibility"),
    );
    for i in 0..rows {
        let (d, o, due) = (item(i, "description"), item(i, "owner"), item(i, "due_on"));
        let _ = write!(
            b,
            "<fieldset class=\"field item\"><legend>Action item {n}</legend>\
             <label for=\"{did}\">What</label><input type=\"text\" id=\"{did}\" name=\"{d}\" value=\"{}\"{}>{}\
             <label for=\"{oid}\">Owner</label><select id=\"{oid}\" name=\"{o}\"{}>\
             <option value=\"rep\"{}>The rep</option><option value=\"leader\"{}>The leader</option></select>{}\
             <label for=\"{dueid}\">Due on</label><input type=\"date\" id=\"{dueid}\" name=\"{due}\" value=\"{}\"{}>{}\
             </fieldset>",
            w.value(&d),
            if field(typed, "added") == i.to_string() {
                format!("{} autofocus", w.attrs(&d))
            } else {
                w.attrs(&d)
            },
            w.error(&d),
            w.attrs(&o),
            w.selected(&o, "rep"),
            w.selected(&o, "leader"),
            w.error(&o),
            w.value(&due),
            w.attrs(&due),
            w.error(&due),
            n = i + 1,
            did = id(&d),
            oid = id(&o),
            dueid = id(&due),
        );
    }
    let _ = write!(
        b,
        "{}<p><button class=\"primary\" type=\"submit\">Record the session</button> \
         <button type=\"submit\" name=\"more\" value=\"1\">Add another action item</button> \
         <a href=\"/reps/{rep_id}\">Cancel</a></p></form>",
        w.error("action_items"),
    );
    let title = format!("Log a coaching session: {}", profile.name);
    Ok((shown.status, Html(page(&title, Some(viewer.signed()), &b))).into_response())
}
