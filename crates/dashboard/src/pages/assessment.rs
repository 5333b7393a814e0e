//! `GET /reps/{id}/assessment`: a leader assesses one competency, 1 to 5,
//! with the rubric text of each level shown beside its choice, and the
//! evidence; `POST` records it through the write API
//! (`POST /v1/reps/{id}/skill-assessments`). Without script it takes two
//! steps: choose the competency (a link per competency), then the level.

use std::fmt::Write;

use axum::extract::Query;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use trellis_domain::competency::CompetencyState;
use trellis_queries::framework::competencies;

use super::{Posted, RepVisit};
use crate::data;
use crate::error::PageError;
use crate::forms::{
    Outcome, Shown, Typed, Widgets, aim, alert, also_missing, field, fresh, keep_known,
    leader_field, new_key, record, recorded, with_leader,
};
use crate::html::{csrf_field, esc, page};

/// The form's fields as the API names them, in the order they appear.
const FIELDS: [&str; 5] = [
    "leader_id",
    "competency_id",
    "level",
    "evidence",
    "assessed_on",
];

#[derive(Debug, Deserialize)]
pub(crate) struct Choice {
    competency: Option<String>,
}

/// `GET`: the competencies to choose from, or, once one is chosen, the form.
pub(crate) async fn form(
    visit: RepVisit,
    Query(choice): Query<Choice>,
) -> Result<Response, PageError> {
    visit.viewer.may_record_as_leader()?;
    let mut typed = Typed::new();
    typed.insert("idempotency_key".into(), new_key());
    typed.insert("assessed_on".into(), visit.state.today().to_string());
    typed.insert(
        "competency_id".into(),
        choice.competency.unwrap_or_default(),
    );
    render(&visit, fresh(&typed)).await
}

/// `POST`: records the assessment, or shows the form again with what was wrong.
pub(crate) async fn submit(Posted { visit, typed }: Posted) -> Result<Response, PageError> {
    let (state, viewer) = (&visit.state, &visit.viewer);
    let rep_id = visit.profile.rep_id;
    let level = field(&typed, "level");
    let mut body = json!({
        "competency_id": field(&typed, "competency_id"),
        "level": level.parse::<i64>().map_or_else(|_| json!(level), |l| json!(l)),
        "evidence": field(&typed, "evidence"),
        "assessed_on": field(&typed, "assessed_on"),
    });
    with_leader(&mut body, &typed);
    let path = format!("/v1/reps/{rep_id}/skill-assessments");
    let key = field(&typed, "idempotency_key");
    match record(state, viewer, &path, key, &body).await? {
        Outcome::Recorded { .. } => Ok(recorded(rep_id, "assessment")),
        Outcome::Repeated { general } => render(&visit, Shown::asked(&typed, &general)).await,
        Outcome::Refused {
            status,
            mut errors,
            mut general,
        } => {
            if errors.contains_key("level") && level.parse::<i64>().is_err() {
                errors.insert("level".into(), "Choose a level from 1 to 5.".into());
            }
            aim(&mut errors, "assessed_on");
            keep_known(&mut errors, &mut general, &FIELDS);
            also_missing(
                &mut errors,
                &typed,
                &[
                    ("level", "Required: choose a level from 1 to 5."),
                    (
                        "evidence",
                        "Required: write what you saw that shows this level.",
                    ),
                    ("assessed_on", "Required: pick the day of the assessment."),
                ],
            );
            let shown = Shown::refused(&typed, &errors, general.as_deref(), status);
            render(&visit, shown).await
        }
    }
}

/// The choice of competency, or the form for the chosen one.
async fn render(visit: &RepVisit, shown: Shown<'_>) -> Result<Response, PageError> {
    let (typed, errors) = (shown.typed, shown.errors);
    let (state, viewer, profile) = (&visit.state, &visit.viewer, &visit.profile);
    let framework = competencies(state.reads().http.store()).await?;
    let rep_id = profile.rep_id;
    let chosen = framework.iter().find_map(|c| match c {
        CompetencyState::Defined {
            competency_id,
            name,
            rubric,
            retired: false,
            ..
        } if competency_id.to_string() == field(typed, "competency_id") => {
            Some((competency_id, name, rubric))
        }
        _ => None,
    });
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Assess a skill</h1><p class=\"lead\">Rate one competency of \
         <a href=\"/reps/{rep_id}\">{}</a> from 1 to 5 against its rubric, with the evidence.</p>{}",
        esc(profile.name.as_ref()),
        alert(errors, shown.general),
    );
    let Some((competency_id, name, rubric)) = chosen else {
        b.push_str("<section class=\"card\"><h2>Which competency?</h2><ul class=\"todo\">");
        for c in &framework {
            if let CompetencyState::Defined {
                competency_id,
                name,
                retired: false,
                ..
            } = c
            {
                let _ = write!(
                    b,
                    "<li><a href=\"/reps/{rep_id}/assessment?competency={competency_id}\">{}</a></li>",
                    esc(name.as_ref())
                );
            }
        }
        b.push_str("</ul></section>");
        let title = format!("Assess a skill: {}", profile.name);
        return Ok((shown.status, Html(page(&title, Some(viewer.signed()), &b))).into_response());
    };
    let team = data::team(state, profile.team_id).await?;
    let w = Widgets::new(typed, errors, &FIELDS);
    let _ = write!(
        b,
        "<form class=\"card form\" method=\"post\" action=\"/reps/{rep_id}/assessment\" novalidate>{}\
         <input type=\"hidden\" name=\"idempotency_key\" value=\"{}\">\
         <input type=\"hidden\" name=\"competency_id\" value=\"{competency_id}\">\
         <p><strong>{}</strong> · <a href=\"/reps/{rep_id}/assessment\">choose another</a></p>",
        csrf_field(viewer.signed().csrf),
        w.value("idempotency_key"),
        esc(name.as_ref()),
    );
    b.push_str(&leader_field(viewer, team.as_ref(), &w, "Assessed by"));
    let _ = write!(
        b,
        "<fieldset class=\"field\" id=\"level\"{}><legend>Level</legend>",
        w.group_attrs("level")
    );
    for (i, text) in rubric.levels().iter().enumerate() {
        let level = (i + 1).to_string();
        let _ = write!(
            b,
            "<label><input type=\"radio\" name=\"level\" value=\"{level}\"{}{}> \
             <span><strong>{level}</strong> — {}</span></label>",
            w.checked("level", &level),
            w.choice_attrs("level", i),
            esc(text.as_ref())
        );
    }
    let _ = write!(
        b,
        "{}</fieldset>\
         <div class=\"field\"><label for=\"evidence\">Evidence</label>\
         <textarea id=\"evidence\" name=\"evidence\" rows=\"4\"{}>{}</textarea>{}</div>\
         <div class=\"field\"><label for=\"assessed_on\">Assessed on</label>\
         <input type=\"date\" id=\"assessed_on\" name=\"assessed_on\" value=\"{}\" max=\"{}\"{}>{}</div>\
         <p><button class=\"primary\" type=\"submit\">Record the assessment</button> \
         <a href=\"/reps/{rep_id}\">Cancel</a></p></form>",
        w.error("level"),
        w.attrs("evidence"),
        w.value("evidence"),
        w.error("evidence"),
        w.value("assessed_on"),
        state.today(),
        w.attrs("assessed_on"),
        w.error("assessed_on"),
    );
    let title = format!("Assess a skill: {}", profile.name);
    Ok((shown.status, Html(page(&title, Some(viewer.signed()), &b))).into_response())
}
