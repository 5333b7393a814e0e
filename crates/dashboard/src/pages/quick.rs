//! Forms of a few fields, each recording one request of the write API: a
//! rep raising a support request or dropping an action item; a leader
//! resolving a request, recording a measurement, starting, checkpointing and
//! closing an improvement plan, retracting or correcting a record, and
//! recording a review. Each form is a [`Spec`] its module builds for the rep
//! and the path; this module shows it, posts it through the write API
//! (the same parsing, rules, events and idempotency as `/v1`), and shows it
//! again with each error beside its field when the API refuses it.
//!
//! A form about a record that already exists (`guarded`) carries the
//! version of the rep's history it was opened at and sends it as
//! `If-Match`: when someone recorded something in between, nothing is
//! recorded and the form says what changed since it was opened.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::{Query, RawPathParams};
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{Value, json};
use trellis_domain::Event;
use trellis_queries::asof::readable_history;

use super::{Posted, Seen};
use crate::data;
use crate::error::PageError;
use crate::forms::{Outcome, Shown, Typed, Widgets, alert, field, fresh, new_key, record_if};
use crate::html::{csrf_field, esc, page};
use trellis_projections::growth::derive::RepProfile;

/// What a field takes.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// One line of text.
    Text,
    /// A few lines of text.
    Area,
    /// A day, no later than today.
    Date,
    /// A day, today or later.
    Later,
    /// Any day.
    Day,
    /// A number, sent as one; the words to show when what was typed is not.
    Number(&'static str),
    /// One of `(value, label)`.
    Choice(Vec<(String, String)>),
    /// A level, 1 to 5, sent as a number.
    Level,
    /// One of `(id, name)` people: sends the id, and the name at `name_at`.
    Person {
        people: Vec<(String, String)>,
        name_at: &'static str,
    },
    /// One entry per line, each sent in a list as `{key: line}`, or as the
    /// line itself without a key.
    Lines { key: Option<&'static str> },
    /// A ramp: one percentage per line, of the target a new rep is held to
    /// in their first, second… period, sent as the API's ramp steps.
    Ramp,
    /// A rubric: five texts, what levels 1 to 5 look like, sent as a list
    /// (typed as `name[0]` to `name[4]`; the default holds the five joined
    /// by [`RUBRIC_SEPARATOR`]).
    Rubric,
    /// Carried as it is, not shown.
    Hidden,
}

/// What separates the five levels in a [`Kind::Rubric`] field's default.
pub(crate) const RUBRIC_SEPARATOR: char = '\u{1f}';

/// One field: its name in the API's body (dots nest: `correction.level`),
/// its label, what it takes, and what it holds when the form opens.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub name: &'static str,
    pub label: String,
    pub kind: Kind,
    pub default: String,
    /// Marked when left empty in a refused form, along with what the API
    /// refused ([`crate::forms::also_missing`]).
    pub required: bool,
}

impl Field {
    pub(crate) fn new(name: &'static str, label: &str, kind: Kind) -> Self {
        Field {
            name,
            label: label.to_owned(),
            kind,
            default: String::new(),
            required: false,
        }
    }

    /// Must be filled in: a refused form marks it when it was left empty.
    pub(crate) fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Opens holding `value`.
    pub(crate) fn with(mut self, value: impl ToString) -> Self {
        self.default = value.to_string();
        self
    }
}

/// A form: what it is called, the words above it (HTML), its fields, its
/// button, the write API request it makes (`method` and `api`, with `fixed`
/// as the rest of the body), where a recorded form leads (`done`) and where
/// "Cancel" does (`back`).
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub title: String,
    pub lead: String,
    pub fields: Vec<Field>,
    pub button: &'static str,
    pub method: Method,
    pub api: String,
    pub fixed: Value,
    pub done: String,
    pub back: String,
    /// Sends the version of the rep's history the form was opened at as
    /// `If-Match` (a form about a rep only).
    pub guarded: bool,
}

/// The path's parameters and the query of a form's request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ask {
    pub path: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
}

impl Ask {
    /// The path parameter `name` as a UUID: 404 when it is not one.
    pub(crate) fn id(&self, name: &str) -> Result<uuid::Uuid, PageError> {
        let raw = self.path.get(name).map_or("", String::as_str);
        uuid::Uuid::parse_str(raw).map_err(|_| {
            PageError::NotFound(format!(
                "{raw:?} is not an id; ids are UUIDs, as the links in Trellis give them."
            ))
        })
    }
}

/// A form of this module: builds its [`Spec`] for the page it is on (a
/// rep's, or an admin's) and the request.
pub(crate) trait Quick {
    type On: Seen;
    fn spec(
        on: &Self::On,
        ask: &Ask,
    ) -> impl std::future::Future<Output = Result<Spec, PageError>> + Send;

    /// What to ask before recording what was typed, once: the form comes
    /// back with the question above it and what was typed, and sent again
    /// with the same answer (the question's key) it records. `None`: record.
    fn question(
        _on: &Self::On,
        _ask: &Ask,
        _typed: &Typed,
    ) -> impl std::future::Future<Output = Result<Option<Question>, PageError>> + Send {
        std::future::ready(Ok(None))
    }
}

/// A question a form asks before it records ([`Quick::question`]): `key`
/// names what was asked about (sent back in `_asked`), `text` says it.
pub(crate) struct Question {
    pub(crate) key: String,
    pub(crate) text: String,
}

fn ask(path: &RawPathParams, query: BTreeMap<String, String>) -> Ask {
    Ask {
        path: path
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        query,
    }
}

/// `GET`: the form as it opens.
pub(crate) async fn open<F: Quick>(
    path: RawPathParams,
    Query(query): Query<BTreeMap<String, String>>,
    visit: F::On,
) -> Result<Response, PageError> {
    visit.viewer().may_write()?;
    let spec = F::spec(&visit, &ask(&path, query)).await?;
    let mut typed = Typed::new();
    for f in &spec.fields {
        if matches!(f.kind, Kind::Rubric) {
            for (i, level) in f.default.split(RUBRIC_SEPARATOR).enumerate() {
                typed.insert(format!("{}[{i}]", f.name), level.to_owned());
            }
        } else {
            typed.insert(f.name.to_owned(), f.default.clone());
        }
    }
    typed.insert("idempotency_key".into(), new_key());
    if let (true, Some(rep)) = (spec.guarded, visit.rep()) {
        let (_, now) = changes_since(&visit, rep, u64::MAX).await?;
        typed.insert("_version".into(), now.to_string());
    }
    render(&visit, &spec, fresh(&typed))
}

/// `POST`: records the form, or shows it again with what was wrong (or
/// what changed since it was opened).
pub(crate) async fn submit<F: Quick>(
    path: RawPathParams,
    Query(query): Query<BTreeMap<String, String>>,
    Posted { visit, mut typed }: Posted<F::On>,
) -> Result<Response, PageError> {
    let asked = ask(&path, query);
    let spec = F::spec(&visit, &asked).await?;
    let if_match = spec
        .guarded
        .then(|| field(&typed, "_version").to_owned())
        .filter(|v| !v.is_empty());
    let key = field(&typed, "idempotency_key").to_owned();
    if let Some(question) = F::question(&visit, &asked, &typed).await?
        && field(&typed, "_asked") != question.key
    {
        typed.insert("_asked".into(), question.key);
        return render(&visit, &spec, Shown::asked(&typed, &question.text));
    }
    let outcome = record_if(
        visit.state(),
        visit.viewer(),
        (&spec.method, &spec.api),
        &key,
        if_match.as_deref(),
        &body(&spec, &typed),
    )
    .await?;
    match (outcome, visit.rep()) {
        (Outcome::Recorded { changed: true }, _) => Ok(Redirect::to(&spec.done).into_response()),
        // Nothing to record (it was so already): the page says so rather
        // than that something was saved.
        (Outcome::Recorded { changed: false }, _) => {
            Ok(Redirect::to(&unchanged(&spec.done)).into_response())
        }
        (Outcome::Repeated { general }, _) => render(&visit, &spec, Shown::asked(&typed, &general)),
        (Outcome::Refused { status, .. }, Some(rep))
            if status == StatusCode::CONFLICT && if_match.is_some() =>
        {
            let seen = field(&typed, "_version").parse::<u64>().unwrap_or(0);
            let (changes, now) = changes_since(&visit, rep, seen).await?;
            typed.insert("_version".into(), now.to_string());
            let general = format!(
                "Since you opened this form, someone else recorded: {}. Check the form \
                 against that, then send it again.",
                if changes.is_empty() {
                    "a change you may not see".to_owned()
                } else {
                    changes.join("; ")
                }
            );
            let none = BTreeMap::new();
            render(
                &visit,
                &spec,
                Shown::refused(&typed, &none, Some(&general), status),
            )
        }
        (
            Outcome::Refused {
                status,
                errors,
                general,
            },
            _,
        ) => {
            let (mut errors, general) = place(&spec, &typed, errors, general);
            let required: Vec<(&str, &str)> = spec
                .fields
                .iter()
                .filter(|f| f.required)
                .map(|f| {
                    let why = match f.kind {
                        Kind::Choice(_) | Kind::Person { .. } | Kind::Level => {
                            "Required: choose one."
                        }
                        Kind::Date | Kind::Day | Kind::Later => "Required: pick a date.",
                        _ => "Required: fill this in.",
                    };
                    (f.name, why)
                })
                .collect();
            crate::forms::also_missing(&mut errors, &typed, &required);
            // A ramp line that is not a whole percentage, in words rather
            // than the parser's ("expected u16").
            for f in spec.fields.iter().filter(|f| matches!(f.kind, Kind::Ramp)) {
                let bad = field(&typed, f.name)
                    .lines()
                    .map(|l| l.trim().trim_end_matches('%').trim())
                    .filter(|l| !l.is_empty())
                    .zip(1..)
                    .find(|(l, _)| l.parse::<u16>().is_err());
                if let Some((line, n)) = bad {
                    errors.insert(
                        f.name.to_owned(),
                        format!(
                            "Each line is a whole percentage of the target, like 50 or 75: \
                             line {n}, “{line}”, is not."
                        ),
                    );
                }
            }
            render(
                &visit,
                &spec,
                Shown::refused(&typed, &errors, general.as_deref(), status),
            )
        }
    }
}

/// Where a form that changed nothing leads: where it would have, saying
/// so instead of what it would have recorded (`?recorded=…`, `?saved=…`).
fn unchanged(done: &str) -> String {
    let (path, anchor) = done.split_once('#').map_or((done, ""), |(p, a)| (p, a));
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if anchor.is_empty() {
        format!("{path}?unchanged=top")
    } else {
        format!("{path}?unchanged={anchor}#{anchor}")
    }
}

/// The body the form sends: `fixed`, then each field at its place.
fn body(spec: &Spec, typed: &Typed) -> Value {
    let mut body = spec.fixed.clone();
    for f in &spec.fields {
        let raw = field(typed, f.name);
        let value = match &f.kind {
            Kind::Number(_) | Kind::Level => raw
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| raw.parse::<f64>().map(Value::from))
                .unwrap_or_else(|_| Value::from(raw)),
            Kind::Lines { key } => Value::Array(
                raw.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| match key {
                        Some(key) => json!({ *key: l }),
                        None => json!(l),
                    })
                    .collect(),
            ),
            Kind::Ramp => Value::Array(
                raw.lines()
                    .map(|l| l.trim().trim_end_matches('%').trim())
                    .filter(|l| !l.is_empty())
                    .zip(1u32..)
                    .map(|(l, i)| {
                        json!({
                            "period_index": i,
                            "percent_of_target": l.parse::<u64>().map_or_else(|_| json!(l), |n| json!(n)),
                        })
                    })
                    .collect(),
            ),
            Kind::Rubric => Value::Array(
                (0..5)
                    .map(|i| Value::from(field(typed, &format!("{}[{i}]", f.name))))
                    .collect(),
            ),
            Kind::Person { people, name_at } => {
                if let Some((_, name)) = people.iter().find(|(id, _)| id == raw) {
                    body[*name_at] = Value::from(name.as_str());
                }
                Value::from(raw)
            }
            _ => Value::from(raw),
        };
        let mut at = &mut body;
        let mut parts = f.name.split('.').peekable();
        while let Some(part) = parts.next() {
            if !at.is_object() {
                *at = json!({});
            }
            if parts.peek().is_none() {
                at[part] = value;
                break;
            }
            at = &mut at[part];
        }
    }
    body
}

/// Puts each of the API's errors beside the field it names (a list's
/// `targets[1].description` beside `targets`), in plain words for a number
/// that is not one; what no field shows goes above the form.
fn place(
    spec: &Spec,
    typed: &Typed,
    errors: BTreeMap<String, String>,
    general: Option<String>,
) -> (BTreeMap<String, String>, Option<String>) {
    let mut errors = errors;
    let date_field = spec
        .fields
        .iter()
        .find(|f| matches!(f.kind, Kind::Date | Kind::Day | Kind::Later))
        .map_or("", |f| f.name);
    crate::forms::aim(&mut errors, date_field);
    let mut placed = BTreeMap::new();
    let mut stray = Vec::new();
    for (name, why) in errors {
        // A hidden field has nowhere to show its error: it goes above.
        let shown = |f: &&Field| !matches!(f.kind, Kind::Hidden);
        // The field the error names, one inside it, or the one inside an
        // object that carries that name (the domain's refusal of a `value`
        // beside a correction's `correction.value`).
        let owner = spec.fields.iter().filter(shown).find(|f| {
            name == f.name
                || name
                    .strip_prefix(f.name)
                    .is_some_and(|rest| rest.starts_with(['[', '.']))
        });
        let owner = owner.or_else(|| {
            spec.fields.iter().filter(shown).find(|f| {
                f.name
                    .strip_suffix(name.as_str())
                    .is_some_and(|parent| parent.ends_with('.'))
            })
        });
        // An error about the object that holds fields (`correction`, which
        // the API could not read for its `correction.level`) goes beside
        // the first of them left empty, or else the first of them.
        let within = |f: &&Field| {
            f.name
                .strip_prefix(name.as_str())
                .is_some_and(|rest| rest.starts_with('.'))
        };
        let owner = owner.or_else(|| {
            spec.fields
                .iter()
                .filter(shown)
                .filter(within)
                .find(|f| field(typed, f.name).trim().is_empty())
                .or_else(|| spec.fields.iter().filter(shown).find(within))
        });
        match owner {
            Some(f) => {
                let why = match &f.kind {
                    Kind::Number(plain) if field(typed, f.name).parse::<f64>().is_err() => {
                        (*plain).to_owned()
                    }
                    // The parser's words ("expected i64") are not a leader's.
                    Kind::Level if field(typed, f.name).parse::<u8>().is_err() => {
                        format!(
                            "Choose the level, from {} to {}.",
                            trellis_domain::SkillLevel::MIN.get(),
                            trellis_domain::SkillLevel::MAX.get()
                        )
                    }
                    // `rubric[1]` is what level 2 looks like.
                    Kind::Rubric => match name
                        .strip_prefix(f.name)
                        .and_then(|rest| rest.strip_prefix('['))
                        .and_then(|rest| rest.strip_suffix(']'))
                        .and_then(|k| k.parse::<usize>().ok())
                    {
                        Some(k) => format!("Level {}: {why}", k + 1),
                        None => why,
                    },
                    _ => why,
                };
                placed
                    .entry(f.name.to_owned())
                    .or_insert_with(|| as_chosen(spec, typed, why));
            }
            None => stray.push(format!("{name}: {why}")),
        }
    }
    let general = general.or_else(|| (!stray.is_empty()).then(|| stray.join("; ")));
    (placed, general)
}

/// `why` with a chosen option's value, where it quotes one (“calls_made”),
/// named as the form offered it: the words of its label before any ": "
/// (“Weekly calls”, of "Weekly calls: calls, weekly").
fn as_chosen(spec: &Spec, typed: &Typed, why: String) -> String {
    spec.fields.iter().fold(why, |why, f| {
        let Kind::Choice(options) = &f.kind else {
            return why;
        };
        let chosen = field(typed, f.name);
        match options
            .iter()
            .find(|(value, _)| !value.is_empty() && value == chosen)
        {
            Some((value, label)) => {
                let name = label.split_once(": ").map_or(label.as_str(), |(n, _)| n);
                why.replace(&format!("“{value}”"), &format!("“{name}”"))
            }
            None => why,
        }
    })
}

/// What was recorded about `rep` after version `seen`, in the timeline's
/// words (what the viewer may see of it), and the version now.
async fn changes_since(
    visit: &impl Seen,
    rep: &RepProfile,
    seen: u64,
) -> Result<(Vec<String>, u64), PageError> {
    let (history, _) =
        readable_history(visit.state().reads(), visit.viewer().claims(), rep.rep_id).await?;
    let stream = history.stream();
    // What is hidden from a rep depends on the whole history (a retraction
    // of an earlier record): a rep is told that something changed, not what.
    if !visit.viewer().sees_private() {
        return Ok((Vec::new(), stream.version));
    }
    let later = stream
        .events()
        .filter(|e| e.stream_version > seen)
        .filter_map(|e| match &e.event {
            Event::Rep(event) => Some(event),
            _ => None,
        });
    let all: Vec<trellis_projections::growth::CompetencyDoc> = visit
        .state()
        .models()
        .all(trellis_projections::growth::kinds::COMPETENCY)
        .await?;
    let names = all
        .into_iter()
        .map(|c| (c.competency_id.to_string(), c.name.to_string()))
        .collect();
    let entries = data::timeline_entries(later, &names, visit.viewer().sees_private());
    let changes = entries
        .iter()
        .map(|e| format!("{} ({})", e.title, e.on))
        .collect();
    Ok((changes, stream.version))
}

/// The form, with what was typed and what was wrong.
fn render(visit: &impl Seen, spec: &Spec, shown: Shown<'_>) -> Result<Response, PageError> {
    let order: Vec<&str> = spec.fields.iter().map(|f| f.name).collect();
    let w = Widgets::new(shown.typed, shown.errors, &order);
    let today = visit.state().today();
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>{}</h1><p class=\"lead\">{}</p>",
        esc(&spec.title),
        spec.lead
    );
    b.push_str(&alert(shown.errors, shown.general));
    let _ = write!(
        b,
        "<form class=\"card form\" method=\"post\" novalidate>{}\
         <input type=\"hidden\" name=\"idempotency_key\" value=\"{}\">",
        csrf_field(visit.viewer().signed().csrf),
        w.value("idempotency_key")
    );
    if spec.guarded {
        let _ = write!(
            b,
            "<input type=\"hidden\" name=\"_version\" value=\"{}\">",
            w.value("_version")
        );
    }
    if shown.typed.contains_key("_asked") {
        let _ = write!(
            b,
            "<input type=\"hidden\" name=\"_asked\" value=\"{}\">",
            w.value("_asked")
        );
    }
    for f in &spec.fields {
        let (name, id) = (f.name, crate::forms::id(f.name));
        let label = esc(&f.label);
        match &f.kind {
            Kind::Hidden => {
                let _ = write!(
                    b,
                    "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                    w.value(name)
                );
                continue;
            }
            Kind::Text | Kind::Number(_) => {
                let _ = write!(
                    b,
                    "<div class=\"field\"><label for=\"{id}\">{label}</label>\
                     <input type=\"text\" id=\"{id}\" name=\"{name}\" value=\"{}\"{}{}>",
                    w.value(name),
                    if matches!(f.kind, Kind::Number(_)) {
                        " inputmode=\"decimal\""
                    } else {
                        ""
                    },
                    w.attrs(name)
                );
            }
            Kind::Area | Kind::Lines { .. } | Kind::Ramp => {
                let _ = write!(
                    b,
                    "<div class=\"field\"><label for=\"{id}\">{label}</label>\
                     <textarea id=\"{id}\" name=\"{name}\" rows=\"4\"{}>{}</textarea>",
                    w.attrs(name),
                    w.value(name)
                );
            }
            Kind::Date => {
                let _ = write!(
                    b,
                    "<div class=\"field\"><label for=\"{id}\">{label}</label>\
                     <input type=\"date\" id=\"{id}\" name=\"{name}\" value=\"{}\" max=\"{today}\"{}>",
                    w.value(name),
                    w.attrs(name)
                );
            }
            Kind::Day => {
                let _ = write!(
                    b,
                    "<div class=\"field\"><label for=\"{id}\">{label}</label>\
                     <input type=\"date\" id=\"{id}\" name=\"{name}\" value=\"{}\"{}>",
                    w.value(name),
                    w.attrs(name)
                );
            }
            Kind::Rubric => {
                let _ = write!(
                    b,
                    "<fieldset class=\"field\" id=\"{id}\"><legend>{label}</legend>"
                );
                // With the rubric in error, each level left empty says so
                // beside itself, the first of them focused; an error about
                // something else (a level too long) marks the first level
                // and stands below the rubric.
                let empty: Vec<bool> = (0..5)
                    .map(|i| {
                        field(shown.typed, &format!("{name}[{i}]"))
                            .trim()
                            .is_empty()
                    })
                    .collect();
                let per_level = w.in_error(name) && empty.contains(&true);
                let first_empty = empty.iter().position(|e| *e);
                for (i, &left_empty) in empty.iter().enumerate() {
                    let level = format!("{name}[{i}]");
                    let (attrs, error) = if per_level && left_empty {
                        (
                            format!(
                                " aria-invalid=\"true\" aria-describedby=\"{id}-{i}-error\"{}",
                                if w.is_first(name) && first_empty == Some(i) {
                                    " autofocus"
                                } else {
                                    ""
                                }
                            ),
                            format!(
                                "<p class=\"field-error\" id=\"{id}-{i}-error\">Level {} is empty: \
                                 write what a rep at this level does.</p>",
                                i + 1
                            ),
                        )
                    } else if !per_level && i == 0 {
                        (w.attrs(name), String::new())
                    } else {
                        (String::new(), String::new())
                    };
                    let _ = write!(
                        b,
                        "<label for=\"{id}-{i}\">Level {}</label>\
                         <textarea id=\"{id}-{i}\" name=\"{level}\" rows=\"2\"{attrs}>{}</textarea>{error}",
                        i + 1,
                        w.value(&level)
                    );
                }
                if !per_level {
                    b.push_str(&w.error(name));
                }
                b.push_str("</fieldset>");
                continue;
            }
            Kind::Later => {
                let _ = write!(
                    b,
                    "<div class=\"field\"><label for=\"{id}\">{label}</label>\
                     <input type=\"date\" id=\"{id}\" name=\"{name}\" value=\"{}\" min=\"{today}\"{}>",
                    w.value(name),
                    w.attrs(name)
                );
            }
            Kind::Level => {
                let _ = write!(
                    b,
                    "<div class=\"field\"><label for=\"{id}\">{label}</label>\
                     <select id=\"{id}\" name=\"{name}\"{}><option value=\"\">Choose…</option>",
                    w.attrs(name)
                );
                for level in 1..=5 {
                    let level = level.to_string();
                    let _ = write!(
                        b,
                        "<option value=\"{level}\"{}>Level {level}</option>",
                        w.selected(name, &level)
                    );
                }
                b.push_str("</select>");
            }
            Kind::Choice(options)
            | Kind::Person {
                people: options, ..
            } => {
                let _ = write!(
                    b,
                    "<div class=\"field\"><label for=\"{id}\">{label}</label>\
                     <select id=\"{id}\" name=\"{name}\"{}><option value=\"\">Choose…</option>",
                    w.attrs(name)
                );
                for (value, text) in options {
                    let _ = write!(
                        b,
                        "<option value=\"{}\"{}>{}</option>",
                        esc(value),
                        w.selected(name, value),
                        esc(text)
                    );
                }
                b.push_str("</select>");
            }
        }
        let _ = write!(b, "{}</div>", w.error(name));
    }
    let _ = write!(
        b,
        "<p><button class=\"primary\" type=\"submit\">{}</button> \
         <a href=\"{}\">Cancel</a></p></form>",
        esc(spec.button),
        esc(&spec.back)
    );
    let title = match visit.rep() {
        Some(rep) => format!("{}: {}", spec.title, rep.name),
        None => spec.title.clone(),
    };
    Ok((
        shown.status,
        Html(page(&title, Some(visit.viewer().signed()), &b)),
    )
        .into_response())
}

/// The choice of the leader a record is from, for a viewer who is not a
/// leader (an admin names one of the rep's team's leaders); none for a
/// leader, whose records are their own.
pub(crate) async fn leader(
    visit: &super::RepVisit,
    label: &str,
) -> Result<Option<Field>, PageError> {
    // A leader's records are their own; a rep names no leader (the write API
    // refuses what a rep may not do); an admin chooses one.
    if visit.viewer.claims().role != trellis_http::auth::Role::Admin {
        return Ok(None);
    }
    let team = data::team(&visit.state, visit.profile.team_id).await?;
    let options = team
        .iter()
        .flat_map(|t| t.leaders.iter())
        .map(|(id, name)| (id.to_string(), name.to_string()))
        .collect();
    Ok(Some(Field::new("leader_id", label, Kind::Choice(options))))
}
