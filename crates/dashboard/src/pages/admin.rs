//! Setting up an organisation, for admins: `GET /admin` lists the teams,
//! the people, the competency framework and the standards, each with the
//! forms that change them, all small forms ([`super::quick`]) posting the
//! write API's requests:
//!
//! | form | request |
//! | --- | --- |
//! | `/admin/teams/new` | `POST /v1/teams` |
//! | `/admin/teams/{id}/name` | `PUT /v1/teams/{id}/name` |
//! | `/admin/teams/{id}/leaders` | `POST /v1/teams/{id}/leaders` (a new leader) |
//! | `/admin/teams/{id}/leaders/existing` | the same, for a leader of another team |
//! | `/admin/reps/new` | `POST /v1/reps` (hire) |
//! | `/admin/reps/{id}/team`, `…/role`, `…/departure` | the rep's team move, role change, departure |
//! | `/admin/reps/{id}/erasure` | `POST /v1/people/{id}/erasure` (erase their personal data) |
//! | `/admin/leaders/{id}/erasure` | `POST /v1/people/{id}/erasure` (erase a leader's name) |
//! | `/admin/competencies/new`, `…/{id}/edit`, `…/{id}/retirement` | define, revise (`PUT`), retire |
//! | `/admin/standards/new`, `…/{id}/revision`, `…/{id}/retirement` | set, revise from a period on, retire |

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use axum::http::Method;
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;
use trellis_domain::competency::CompetencyState;
use trellis_domain::standard::Standard;
use trellis_domain::{LeaderId, Name, PersonName, RepId};
use trellis_projections::growth::derive::{RepProfile, RepStatus};
use trellis_projections::growth::{TeamDoc, kinds};
use trellis_queries::framework;

use super::quick::{Ask, Field, Kind, Question, Quick, RUBRIC_SEPARATOR, Spec};
use super::{AdminVisit, SetUpVisit};
use crate::data;
use crate::error::PageError;
use crate::forms::Typed;
use crate::html::{NOTHING_CHANGED, esc, notice_ok, num, page, stacked_table_start, table_start};
use crate::state::DashboardState;

/// Where every admin form leads back to.
const ADMIN: &str = "/admin";

/// What a form that led back here did: `saved` names the section it
/// changed; `unchanged`, that it found nothing to change.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Said {
    saved: Option<String>,
    unchanged: Option<String>,
}

impl Said {
    /// The notice under the heading of `section`, when a form led there.
    fn under(&self, section: &str) -> String {
        match (&self.saved, &self.unchanged) {
            (Some(saved), _) if saved == section => notice_ok("Saved. The list below shows it."),
            (_, Some(unchanged)) if unchanged == section => NOTHING_CHANGED.to_owned(),
            _ => String::new(),
        }
    }
}

/// `GET /admin`: everything an admin sets up, with the forms that change
/// it; to an auditor, the same without them (each record's state instead).
pub(crate) async fn overview(
    visit: SetUpVisit,
    axum::extract::Query(said): axum::extract::Query<Said>,
) -> Result<Response, PageError> {
    let state = &visit.state;
    let may_change = visit.may_change();
    // An admin's buttons; nothing for an auditor.
    let act = |html: &str| {
        if may_change {
            html.to_owned()
        } else {
            String::new()
        }
    };
    let change = if may_change { "Change" } else { "State" };
    let teams = data::all_teams(state).await?;
    let mut reps: Vec<RepProfile> = state.models().all(kinds::REP_PROFILE).await?;
    reps.sort_by_key(|r| (r.status != RepStatus::Active, r.name.to_string()));
    let store = state.reads().http.store();
    let competencies = framework::competencies(store).await?;
    let standards = framework::standards(store).await?;
    let team_name = |id| {
        teams
            .iter()
            .find(|t| t.team_id == id)
            .map_or("a team".to_owned(), |t| esc(t.name.as_ref()))
    };

    let mut b = String::from(
        "<h1>Set up</h1><p class=\"lead\">Teams and their leaders, the people on them, the \
         competencies they grow in and the standards their work is measured against.</p>\
         <p><a class=\"button\" href=\"/admin/access\">Sign-in: who may use Trellis</a></p>",
    );
    if !may_change {
        b.push_str(
            "<p class=\"notice\">You see this as an auditor: only an admin changes the \
             teams, people, competencies and standards.</p>",
        );
    }

    let _ = write!(
        b,
        "<h2 id=\"teams\">Teams</h2>{}{}{}",
        said.under("teams"),
        act("<p><a class=\"button\" href=\"/admin/teams/new\">Form a team</a></p>"),
        table_start(&["Team", "Leaders", "#Reps", change])
    );
    for t in &teams {
        let _ = write!(
            b,
            "<tr><th scope=\"row\"><a href=\"/teams/{id}\">{}</a></th><td>{}</td><td class=\"n\">{}</td>\
             <td>{}</td></tr>",
            esc(t.name.as_ref()),
            super::leader_links(&visit.viewer, &t.leaders),
            reps.iter()
                .filter(|r| r.team_id == t.team_id && r.status == RepStatus::Active)
                .count(),
            if may_change {
                format!(
                    "<a href=\"/admin/teams/{id}/name\">Rename</a> · <a href=\"/admin/teams/{id}/leaders\">Add a new leader</a> · \
                     <a href=\"/admin/teams/{id}/leaders/existing\">Add a leader from another team</a>",
                    id = t.team_id
                )
            } else {
                "formed".to_owned()
            },
            id = t.team_id,
        );
    }
    b.push_str("</tbody></table></div>");

    let _ = write!(
        b,
        "<h2 id=\"people\">People</h2>{}{}{}",
        said.under("people"),
        act("<p><a class=\"button\" href=\"/admin/reps/new\">Hire a rep</a></p>"),
        // On a phone each person is a block of labelled lines: six columns
        // side by side pushed the changes off the screen's edge.
        stacked_table_start(&[
            "Rep",
            "Team",
            "Role",
            "Started",
            change,
            "Id (for CSV files)"
        ])
    );
    for r in &reps {
        let state = match r.status {
            _ if r.erased_on.is_some() => format!(
                "personal data erased on {}",
                r.erased_on.map(|d| d.to_string()).unwrap_or_default()
            ),
            RepStatus::Active if !may_change => "active".to_owned(),
            RepStatus::Departed if !may_change => format!(
                "departed on {}",
                r.departed_on.map(|d| d.to_string()).unwrap_or_default()
            ),
            RepStatus::Active => format!(
                "<a href=\"/admin/reps/{id}/team\">Move</a> · <a href=\"/admin/reps/{id}/role\">Change role</a> · \
                 <a href=\"/admin/reps/{id}/name\">Rename</a> · \
                 <a href=\"/admin/reps/{id}/departure\">Departure</a> · \
                 <a href=\"/admin/reps/{id}/erasure\">Erase personal data</a>",
                id = r.rep_id
            ),
            RepStatus::Departed => format!(
                "departed on {} · <a href=\"/admin/reps/{id}/name\">Rename</a> · \
                 <a href=\"/admin/reps/{id}/erasure\">Erase personal data</a>",
                r.departed_on.map(|d| d.to_string()).unwrap_or_default(),
                id = r.rep_id
            ),
        };
        let _ = write!(
            b,
            "<tr><th scope=\"row\"><a href=\"/reps/{id}\">{}</a></th><td data-label=\"Team\">{}</td>\
             <td data-label=\"Role\">{}</td><td data-label=\"Started\">{}</td>\
             <td data-label=\"{change}\"><span>{state}</span></td>\
             <td data-label=\"Id\"><span><code class=\"id\">{id}</code></span></td></tr>",
            esc(r.name.as_ref()),
            team_name(r.team_id),
            esc(r.role.as_ref()),
            r.start_date,
            id = r.rep_id,
        );
    }
    b.push_str("</tbody></table></div>");

    let leaders = every_leader(&teams);
    let _ = write!(
        b,
        "<h2 id=\"leaders\">Leaders</h2>{}{}",
        said.under("leaders"),
        stacked_table_start(&["Leader", "Teams", change, "Id"])
    );
    for (id, name, led) in &leaders {
        let state = if *name == PersonName::erased() {
            "personal data erased".to_owned()
        } else if may_change {
            format!("<a href=\"/admin/leaders/{id}/erasure\">Erase personal data</a>")
        } else {
            "leading".to_owned()
        };
        let _ = write!(
            b,
            "<tr><th scope=\"row\"><a href=\"/leaders/{id}\">{}</a></th><td data-label=\"Teams\">{}</td>\
             <td data-label=\"{change}\"><span>{state}</span></td>\
             <td data-label=\"Id\"><span><code class=\"id\">{id}</code></span></td></tr>",
            esc(name.as_ref()),
            led.iter()
                .map(|t| esc(t.as_ref()))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if leaders.is_empty() {
        b.push_str("<tr><td colspan=\"4\">No team has a leader yet.</td></tr>");
    }
    b.push_str("</tbody></table></div>");

    let _ = write!(
        b,
        "<h2 id=\"competencies\">Competency framework</h2>{}{}{}",
        said.under("competencies"),
        act("<p><a class=\"button\" href=\"/admin/competencies/new\">Define a competency</a></p>"),
        table_start(&["Competency", "What it is", change])
    );
    for c in &competencies {
        if let CompetencyState::Defined {
            competency_id,
            name,
            description,
            retired,
            ..
        } = c
        {
            let _ = write!(
                b,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td></tr>",
                esc(name.as_ref()),
                esc(description.as_ref()),
                if *retired {
                    "retired".to_owned()
                } else if !may_change {
                    "in use".to_owned()
                } else {
                    format!(
                        "<a href=\"/admin/competencies/{competency_id}/edit\">Edit the rubric</a> · \
                         <a href=\"/admin/competencies/{competency_id}/retirement\">Retire</a>"
                    )
                }
            );
        }
    }
    b.push_str("</tbody></table></div>");

    let _ = write!(
        b,
        "<h2 id=\"standards\">Standards</h2>{}{}{}",
        said.under("standards"),
        act(
            "<p><a class=\"button\" href=\"/admin/standards/new\">Set a standard</a> \
             <a class=\"button\" href=\"/admin/measurements\">Upload measurements (CSV)</a> \
             <a class=\"button\" href=\"/admin/webhooks\">Webhooks</a></p>"
        ),
        table_start(&["Standard", "Target now", "For", "Versions", change])
    );
    for s in &standards {
        let latest = s.latest();
        let _ = write!(
            b,
            "<tr><th scope=\"row\">{}</th><td>{} {} {} a {}, from {}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(s.name.as_ref()),
            match s.direction {
                trellis_domain::standard::Direction::AtLeast => "at least",
                trellis_domain::standard::Direction::AtMost => "at most",
            },
            num(latest.target.get()),
            esc(s.unit.as_ref()),
            period_word(s),
            latest.effective_from,
            esc(&roles(s)),
            s.versions.len(),
            match &s.retired {
                Some((on, _)) => format!("retired from {on}"),
                None if !may_change => "in force".to_owned(),
                None => format!(
                    "<a href=\"/admin/standards/{id}/revision\">Revise</a> · \
                     <a href=\"/admin/standards/{id}/retirement\">Retire</a>",
                    id = s.standard_id
                ),
            }
        );
    }
    b.push_str("</tbody></table></div>");
    Ok(Html(page("Set up", Some(visit.viewer.signed()), &b)).into_response())
}

fn period_word(s: &Standard) -> &'static str {
    match s.period {
        trellis_domain::PeriodKind::Week => "week",
        trellis_domain::PeriodKind::Month => "month",
        trellis_domain::PeriodKind::Quarter => "quarter",
    }
}

/// The label of a standard's roles field: the roles reps have now and
/// standards name, for a role is matched exactly ("ae" is not "AE").
async fn roles_label(state: &DashboardState) -> Result<String, PageError> {
    let reps: Vec<RepProfile> = state.models().all(kinds::REP_PROFILE).await?;
    let standards = framework::standards(state.reads().http.store()).await?;
    let in_use: BTreeSet<String> = reps
        .iter()
        .filter(|r| r.status == RepStatus::Active)
        .map(|r| r.role.to_string())
        .chain(
            standards
                .iter()
                .filter(|s| s.retired.is_none())
                .flat_map(|s| s.latest().roles.iter().map(ToString::to_string)),
        )
        .collect();
    Ok(if in_use.is_empty() {
        "Roles it applies to, one per line".to_owned()
    } else {
        format!(
            "Roles it applies to, one per line. In use: {}. A role is matched exactly, \
             capitals included",
            in_use.into_iter().collect::<Vec<_>>().join(", ")
        )
    })
}

/// The roles of the standard's latest version, comma-separated.
fn roles(s: &Standard) -> String {
    s.latest()
        .roles
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A form of this page: posts `method` `api` and leads back to `/admin`.
fn spec(title: &str, lead: String, fields: Vec<Field>, button: &'static str) -> Spec {
    Spec {
        title: title.to_owned(),
        lead,
        fields,
        button,
        method: Method::POST,
        api: String::new(),
        fixed: json!({}),
        done: ADMIN.to_owned(),
        back: ADMIN.to_owned(),
        guarded: false,
    }
}

impl Spec {
    /// This spec, sending `method` to `api`, then back to `/admin#{anchor}`.
    fn sends(mut self, method: Method, api: String, anchor: &str) -> Spec {
        self.method = method;
        self.api = api;
        self.done = format!("{ADMIN}?saved={anchor}#{anchor}");
        self
    }
}

fn choices(pairs: &[(&str, &str)]) -> Kind {
    Kind::Choice(
        pairs
            .iter()
            .map(|(v, l)| ((*v).to_owned(), (*l).to_owned()))
            .collect(),
    )
}

/// The teams, to choose one.
async fn team_choice(visit: &AdminVisit) -> Result<Kind, PageError> {
    let teams = data::all_teams(&visit.state).await?;
    Ok(Kind::Choice(
        teams
            .iter()
            .map(|t| (t.team_id.to_string(), t.name.to_string()))
            .collect(),
    ))
}

/// The team the path names.
async fn team(visit: &AdminVisit, ask: &Ask) -> Result<TeamDoc, PageError> {
    let id = trellis_domain::TeamId::from_uuid(ask.id("team_id")?);
    data::team(&visit.state, id)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("There is no team {id}.")))
}

/// The rep the path names.
async fn rep(visit: &AdminVisit, ask: &Ask) -> Result<RepProfile, PageError> {
    let id = ask.id("rep_id")?;
    data::doc::<RepProfile>(&visit.state, kinds::REP_PROFILE, id)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("There is no rep {id}.")))
}

pub(crate) struct FormTeam;

impl Quick for FormTeam {
    type On = AdminVisit;

    async fn spec(_: &AdminVisit, _: &Ask) -> Result<Spec, PageError> {
        Ok(spec(
            "Form a team",
            "A team has a name and, once formed, leaders and reps.".into(),
            vec![Field::new("name", "Name, e.g. EMEA Mid-Market", Kind::Text)],
            "Form the team",
        )
        .sends(Method::POST, "/v1/teams".into(), "teams"))
    }
}

pub(crate) struct RenameTeam;

impl Quick for RenameTeam {
    type On = AdminVisit;

    async fn spec(visit: &AdminVisit, ask: &Ask) -> Result<Spec, PageError> {
        let team = team(visit, ask).await?;
        Ok(spec(
            "Rename a team",
            format!("Now called {}.", esc(team.name.as_ref())),
            vec![Field::new("name", "New name", Kind::Text).with(&team.name)],
            "Rename",
        )
        .sends(
            Method::PUT,
            format!("/v1/teams/{}/name", team.team_id),
            "teams",
        ))
    }
}

pub(crate) struct AddLeader;

impl Quick for AddLeader {
    type On = AdminVisit;

    async fn spec(visit: &AdminVisit, ask: &Ask) -> Result<Spec, PageError> {
        let team = team(visit, ask).await?;
        Ok(spec(
            "Add a leader",
            format!(
                "A new leader of {}, who sees its reps and coaches them from today.",
                esc(team.name.as_ref())
            ),
            vec![
                // A new person: their id is made when the form opens, so a
                // double submit names the same leader.
                Field::new("leader_id", "Leader", Kind::Hidden).with(uuid::Uuid::now_v7()),
                Field::new("leader_name", "Leader's name", Kind::Text),
            ],
            "Add the leader",
        )
        .sends(
            Method::POST,
            format!("/v1/teams/{}/leaders", team.team_id),
            "teams",
        ))
    }
}

/// An existing leader (of another team) takes on this team too.
pub(crate) struct AssignLeader;

impl Quick for AssignLeader {
    type On = AdminVisit;

    async fn spec(visit: &AdminVisit, ask: &Ask) -> Result<Spec, PageError> {
        let team = team(visit, ask).await?;
        let people: Vec<(String, String)> = data::leader_names(&visit.state)
            .await?
            .into_iter()
            .filter(|(id, _)| !team.leaders.keys().any(|l| l.to_string() == *id))
            // An erased leader cannot lead a team again.
            .filter(|(_, name)| *name != PersonName::erased().as_ref())
            .collect();
        Ok(spec(
            "Add a leader from another team",
            format!(
                "A leader who already leads another team takes on {} as well.",
                esc(team.name.as_ref())
            ),
            vec![Field::new(
                "leader_id",
                "Leader",
                Kind::Person {
                    people,
                    name_at: "leader_name",
                },
            )],
            "Add the leader",
        )
        .sends(
            Method::POST,
            format!("/v1/teams/{}/leaders", team.team_id),
            "teams",
        ))
    }
}

pub(crate) struct HireRep;

impl Quick for HireRep {
    type On = AdminVisit;

    async fn spec(visit: &AdminVisit, _: &Ask) -> Result<Spec, PageError> {
        Ok(spec(
            "Hire a rep",
            "A rep's tenure, ramp and standards run from their start date.".into(),
            vec![
                Field::new("name", "Name", Kind::Text).required(),
                Field::new("role", "Role, e.g. SDR or AE", Kind::Text).required(),
                Field::new("team_id", "Team", team_choice(visit).await?).required(),
                Field::new("start_date", "Start date", Kind::Day)
                    .with(visit.state.today())
                    .required(),
            ],
            "Hire",
        )
        .sends(Method::POST, "/v1/reps".into(), "people"))
    }

    /// A name the people list already has: the same person entered twice,
    /// or another with the same name (who then needs the id in a CSV file).
    async fn question(
        visit: &AdminVisit,
        _: &Ask,
        typed: &Typed,
    ) -> Result<Option<Question>, PageError> {
        name_taken(visit, crate::forms::field(typed, "name"), None, "hire them").await
    }
}

/// The question a form asks before giving a rep `name` when the people
/// list has a rep of that name already (other than `renamed`): the same
/// person twice, or two people a CSV file can no longer tell apart by name.
/// `go_on` is what sending the form again does ("hire them").
async fn name_taken(
    visit: &AdminVisit,
    name: &str,
    renamed: Option<RepId>,
    go_on: &str,
) -> Result<Option<Question>, PageError> {
    let key = trellis_domain::values::name_key(name);
    if key.is_empty() {
        return Ok(None);
    }
    let reps: Vec<RepProfile> = visit.state.models().all(kinds::REP_PROFILE).await?;
    let same: Vec<&RepProfile> = reps
        .iter()
        .filter(|r| r.erased_on.is_none() && Some(r.rep_id) != renamed)
        .filter(|r| trellis_domain::values::name_key(r.name.as_ref()) == key)
        .collect();
    let Some(first) = same.first() else {
        return Ok(None);
    };
    let who = same
        .iter()
        .map(|r| match r.departed_on {
            Some(on) => format!(
                "{}, who started on {} and left on {on}",
                r.role, r.start_date
            ),
            None => format!("{}, who started on {}", r.role, r.start_date),
        })
        .collect::<Vec<_>>()
        .join("; and ");
    let (has, same_person) = if same.len() == 1 {
        ("a rep", "that is this person")
    } else {
        ("reps", "this is one of them")
    };
    Ok(Some(Question {
        key,
        text: format!(
            "The people list already has {has} named {}: {who}. If {same_person}, cancel. \
             If this is someone else, send the form again to {go_on} (a CSV file then names \
             each of them by id).",
            first.name
        ),
    }))
}

pub(crate) struct MoveRep;

impl Quick for MoveRep {
    type On = AdminVisit;

    async fn spec(visit: &AdminVisit, ask: &Ask) -> Result<Spec, PageError> {
        let rep = rep(visit, ask).await?;
        Ok(spec(
            "Move a rep to another team",
            format!(
                "{} moves; their history stays theirs.",
                esc(rep.name.as_ref())
            ),
            vec![
                Field::new("team_id", "To team", team_choice(visit).await?),
                Field::new("on", "On", Kind::Day).with(visit.state.today()),
            ],
            "Move",
        )
        .sends(
            Method::POST,
            format!("/v1/reps/{}/team-moves", rep.rep_id),
            "people",
        ))
    }
}

pub(crate) struct ChangeRole;

impl Quick for ChangeRole {
    type On = AdminVisit;

    async fn spec(visit: &AdminVisit, ask: &Ask) -> Result<Spec, PageError> {
        let rep = rep(visit, ask).await?;
        Ok(spec(
            "Change a rep's role",
            format!(
                "{} is {} now; the standards of the new role apply from the date below.",
                esc(rep.name.as_ref()),
                esc(rep.role.as_ref())
            ),
            vec![
                Field::new("role", "New role", Kind::Text),
                Field::new("on", "From", Kind::Day).with(visit.state.today()),
            ],
            "Change the role",
        )
        .sends(
            Method::POST,
            format!("/v1/reps/{}/role-changes", rep.rep_id),
            "people",
        ))
    }
}

/// A rep's name corrected (a typo at hire) or changed.
pub(crate) struct RenameRep;

impl Quick for RenameRep {
    type On = AdminVisit;

    async fn spec(visit: &AdminVisit, ask: &Ask) -> Result<Spec, PageError> {
        let rep = rep(visit, ask).await?;
        Ok(spec(
            "Rename a rep",
            format!(
                "Now called {}. Today's pages show the new name; a view as of an earlier day, \
                 and a review packet of a period that ended before today, show the name the \
                 rep had then, and the audit trail keeps both.",
                esc(rep.name.as_ref())
            ),
            vec![Field::new("name", "New name", Kind::Text).with(&rep.name)],
            "Rename",
        )
        .sends(
            Method::PUT,
            format!("/v1/reps/{}/name", rep.rep_id),
            "people",
        ))
    }

    /// A name another rep has: two reps a CSV file cannot tell apart.
    async fn question(
        visit: &AdminVisit,
        ask: &Ask,
        typed: &Typed,
    ) -> Result<Option<Question>, PageError> {
        let rep = RepId::from_uuid(ask.id("rep_id")?);
        name_taken(
            visit,
            crate::forms::field(typed, "name"),
            Some(rep),
            "give them this name",
        )
        .await
    }
}

pub(crate) struct Depart;

impl Quick for Depart {
    type On = AdminVisit;

    async fn spec(visit: &AdminVisit, ask: &Ask) -> Result<Spec, PageError> {
        let rep = rep(visit, ask).await?;
        Ok(spec(
            "Record a departure",
            format!(
                "{} leaves; everything recorded about them stays in the history.",
                esc(rep.name.as_ref())
            ),
            vec![
                Field::new("on", "Last day", Kind::Day).with(visit.state.today()),
                Field::new("reason", "Why", Kind::Area),
            ],
            "Record the departure",
        )
        .sends(
            Method::POST,
            format!("/v1/reps/{}/departure", rep.rep_id),
            "people",
        ))
    }
}

/// Erasing a rep's personal data: for good, so the form says what happens.
pub(crate) struct Erase;

impl Quick for Erase {
    type On = AdminVisit;

    async fn spec(visit: &AdminVisit, ask: &Ask) -> Result<Spec, PageError> {
        let rep = rep(visit, ask).await?;
        Ok(spec(
            "Erase a person's personal data",
            format!(
                "<p>{name}'s name and everything written about them — feedback, evidence, \
                 coaching notes and action items, support requests, plan notes — will read \
                 as erased everywhere, for good, and their sign-in stops working. Their \
                 figures (levels, measurements, dates) stay under their id, and the history \
                 still proves it was not rewritten. Nothing more can be recorded about \
                 them. <strong>This cannot be undone.</strong></p>\
                 <p>Write why (a request under data protection law, a ticket number), but \
                 not their name: the reason stays readable.</p>",
                name = esc(rep.name.as_ref())
            ),
            vec![Field::new("reason", "Why", Kind::Area)],
            "Erase their personal data for good",
        )
        .sends(
            Method::POST,
            format!("/v1/people/{}/erasure", rep.rep_id),
            "people",
        ))
    }
}

/// Every leader some team has had, by name: their id, name and the names
/// of their teams.
fn every_leader(teams: &[TeamDoc]) -> Vec<(LeaderId, PersonName, Vec<Name>)> {
    let mut leaders: BTreeMap<LeaderId, (PersonName, Vec<Name>)> = BTreeMap::new();
    for team in teams {
        for (id, name) in &team.leaders {
            leaders
                .entry(*id)
                .or_insert_with(|| (name.clone(), Vec::new()))
                .1
                .push(team.name.clone());
        }
    }
    let mut leaders: Vec<_> = leaders
        .into_iter()
        .map(|(id, (name, teams))| (id, name, teams))
        .collect();
    leaders.sort_by(|a, b| (a.1.as_ref(), a.0).cmp(&(b.1.as_ref(), b.0)));
    leaders
}

/// Erasing a leader's personal data (their name): for good, so the form
/// says what happens.
pub(crate) struct EraseLeader;

impl Quick for EraseLeader {
    type On = AdminVisit;

    async fn spec(visit: &AdminVisit, ask: &Ask) -> Result<Spec, PageError> {
        let id = ask.id("leader_id")?;
        let teams = data::all_teams(&visit.state).await?;
        let Some((leader_id, name, led)) = every_leader(&teams)
            .into_iter()
            .find(|(l, ..)| l.as_uuid() == id)
        else {
            return Err(PageError::NotFound(format!("No team has a leader {id}.")));
        };
        if name == PersonName::erased() {
            return Err(PageError::NotFound(
                "This leader's personal data is already erased.".into(),
            ));
        }
        Ok(spec(
            "Erase a leader's personal data",
            format!(
                "<p>{name}'s name will read as erased on every team that named them ({teams}), \
                 for good; their sign-in stops working and they cannot lead a team again. What \
                 they recorded — feedback, coaching sessions, answers to support requests — \
                 stays, under their id, and the history can still be checked as untouched. \
                 <strong>This cannot be undone.</strong></p>\
                 <p>Write why (a request under data protection law, a ticket number), but \
                 not their name: the reason stays readable.</p>",
                name = esc(name.as_ref()),
                teams = led
                    .iter()
                    .map(|t| esc(t.as_ref()))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            vec![Field::new("reason", "Why", Kind::Area)],
            "Erase their personal data for good",
        )
        .sends(
            Method::POST,
            format!("/v1/people/{leader_id}/erasure"),
            "leaders",
        ))
    }
}

/// A competency's fields, holding `current` (name, description, rubric).
fn competency_fields(current: Option<(&str, &str, String)>) -> Vec<Field> {
    let (name, description, rubric) = current.unwrap_or_default();
    vec![
        Field::new("name", "Name, e.g. Discovery", Kind::Text)
            .with(name)
            .required(),
        Field::new("description", "What it is", Kind::Area)
            .with(description)
            .required(),
        Field::new("rubric", "Rubric: what each level looks like", Kind::Rubric).with(rubric),
    ]
}

pub(crate) struct DefineCompetency;

impl Quick for DefineCompetency {
    type On = AdminVisit;

    async fn spec(_: &AdminVisit, _: &Ask) -> Result<Spec, PageError> {
        Ok(spec(
            "Define a competency",
            "A skill reps are assessed on, level 1 to 5, each level described so that \
             leaders assess alike."
                .into(),
            competency_fields(None),
            "Define",
        )
        .sends(Method::POST, "/v1/competencies".into(), "competencies"))
    }
}

/// The competency the path names, as the log defines it now.
async fn competency(visit: &AdminVisit, ask: &Ask) -> Result<CompetencyState, PageError> {
    let id = ask.id("competency_id")?;
    framework::competencies(visit.state.reads().http.store())
        .await?
        .into_iter()
        .find(|c| matches!(c, CompetencyState::Defined { competency_id, .. } if competency_id.as_uuid() == id))
        .ok_or_else(|| PageError::NotFound(format!("There is no competency {id}.")))
}

pub(crate) struct EditCompetency;

impl Quick for EditCompetency {
    type On = AdminVisit;

    async fn spec(visit: &AdminVisit, ask: &Ask) -> Result<Spec, PageError> {
        let CompetencyState::Defined {
            competency_id,
            name,
            description,
            rubric,
            ..
        } = competency(visit, ask).await?
        else {
            return Err(PageError::NotFound("There is no such competency.".into()));
        };
        let levels: Vec<&str> = rubric.levels().iter().map(AsRef::as_ref).collect();
        let current = (
            name.as_ref(),
            description.as_ref(),
            levels.join(&RUBRIC_SEPARATOR.to_string()),
        );
        Ok(spec(
            "Edit a competency",
            "Assessments already recorded keep the rubric they were made against.".into(),
            competency_fields(Some(current)),
            "Save",
        )
        .sends(
            Method::PUT,
            format!("/v1/competencies/{competency_id}"),
            "competencies",
        ))
    }
}

pub(crate) struct RetireCompetency;

impl Quick for RetireCompetency {
    type On = AdminVisit;

    async fn spec(visit: &AdminVisit, ask: &Ask) -> Result<Spec, PageError> {
        let CompetencyState::Defined {
            competency_id,
            name,
            ..
        } = competency(visit, ask).await?
        else {
            return Err(PageError::NotFound("There is no such competency.".into()));
        };
        Ok(spec(
            "Retire a competency",
            format!(
                "{} is no longer assessed; what was recorded on it stays.",
                esc(name.as_ref())
            ),
            vec![Field::new("reason", "Why", Kind::Area)],
            "Retire",
        )
        .sends(
            Method::POST,
            format!("/v1/competencies/{competency_id}/retirement"),
            "competencies",
        ))
    }
}

pub(crate) struct SetStandard;

impl Quick for SetStandard {
    type On = AdminVisit;

    async fn spec(visit: &AdminVisit, _: &Ask) -> Result<Spec, PageError> {
        Ok(spec(
            "Set a standard",
            "A clear standard performance is measured against: what, how much, how often, \
             for which roles, and how a new rep ramps up to it."
                .into(),
            vec![
                Field::new("name", "Name, e.g. Weekly calls", Kind::Text).required(),
                Field::new(
                    "metric",
                    "Metric, a lowercase name like calls_made",
                    Kind::Text,
                )
                .required(),
                Field::new(
                    "kind",
                    "Kind",
                    choices(&[
                        ("quality", "Quality: how the work is done"),
                        ("quantity", "Quantity: how much"),
                        ("behaviour", "Behaviour"),
                    ]),
                )
                .required(),
                Field::new(
                    "direction",
                    "Met when the value is",
                    choices(&[
                        ("at_least", "at least the target"),
                        ("at_most", "at most the target"),
                    ]),
                )
                .with("at_least"),
                Field::new("target", "Target", Kind::Number("Enter the target as a number, like 50 or 12.5.")).required(),
                Field::new("unit", "Unit, e.g. calls, %, EUR", Kind::Text).required(),
                Field::new(
                    "period",
                    "Measured per",
                    choices(&[("week", "week"), ("month", "month"), ("quarter", "quarter")]),
                )
                .with("week"),
                Field::new("roles", &roles_label(&visit.state).await?, Kind::Lines { key: None })
                    .required(),
                Field::new("effective_from", "From", Kind::Day)
                    .with(visit.state.today())
                    .required(),
                Field::new(
                    "ramp",
                    "Ramp for new reps (optional): one percentage of the target per line, for their first, second… period",
                    Kind::Ramp,
                ),
            ],
            "Set the standard",
        )
        .sends(Method::POST, "/v1/standards".into(), "standards"))
    }
}

/// The standard the path names, as the log has it now.
async fn standard(visit: &AdminVisit, ask: &Ask) -> Result<Standard, PageError> {
    let id = ask.id("standard_id")?;
    framework::standards(visit.state.reads().http.store())
        .await?
        .into_iter()
        .find(|s| s.standard_id.as_uuid() == id)
        .ok_or_else(|| PageError::NotFound(format!("There is no standard {id}.")))
}

pub(crate) struct ReviseStandard;

impl Quick for ReviseStandard {
    type On = AdminVisit;

    async fn spec(visit: &AdminVisit, ask: &Ask) -> Result<Spec, PageError> {
        let s = standard(visit, ask).await?;
        let latest = s.latest();
        Ok(spec(
            "Revise a standard",
            format!(
                "{}: {} {} a {} from {}. A revision applies from the date you give; periods \
                 before it keep the version they were measured against.",
                esc(s.name.as_ref()),
                latest.target,
                esc(s.unit.as_ref()),
                period_word(&s),
                latest.effective_from
            ),
            vec![
                Field::new(
                    "target",
                    "New target",
                    Kind::Number("Enter the target as a number, like 50 or 12.5."),
                )
                .with(latest.target),
                Field::new(
                    "roles",
                    &roles_label(&visit.state).await?,
                    Kind::Lines { key: None },
                )
                .with(roles(&s).replace(", ", "\n")),
                Field::new("effective_from", "From", Kind::Day)
                    .with(visit.state.today())
                    .required(),
            ],
            "Revise",
        )
        .sends(
            Method::POST,
            format!("/v1/standards/{}/revisions", s.standard_id),
            "standards",
        ))
    }
}

pub(crate) struct RetireStandard;

impl Quick for RetireStandard {
    type On = AdminVisit;

    async fn spec(visit: &AdminVisit, ask: &Ask) -> Result<Spec, PageError> {
        let s = standard(visit, ask).await?;
        Ok(spec(
            "Retire a standard",
            format!(
                "{} stops applying from the date you give; what was measured stays.",
                esc(s.name.as_ref())
            ),
            vec![
                Field::new("effective_from", "From", Kind::Day)
                    .with(visit.state.today())
                    .required(),
                Field::new("reason", "Why", Kind::Area),
            ],
            "Retire",
        )
        .sends(
            Method::POST,
            format!("/v1/standards/{}/retirement", s.standard_id),
            "standards",
        ))
    }
}
