//! Who may sign in, for admins (an auditor may look, not change): the
//! people with a sign-in and what can be done for each, and the service
//! accounts other systems call the API with. Everything here is kept in
//! the access tables ([`trellis_access::Access`]), not in the log.
//!
//! | page | does |
//! | --- | --- |
//! | `GET /admin/access` | everyone who may sign in, and the form to give someone access |
//! | `POST /admin/access` | gives a leader, rep, admin or auditor a sign-in |
//! | `POST /admin/access/{id}/link` | a one-time sign-in link, shown once |
//! | `POST /admin/access/{id}/sessions/end` | signs the person out on every device |
//! | `POST /admin/access/{id}/stop`, `…/restore` | stops their access (ending their sessions), or lets them in again |
//! | `GET /admin/access/{id}/identity`, `POST` | their email and identity-provider subject |
//! | `GET /admin/service-accounts`, `POST` | service accounts, and a new one's token, shown once |
//! | `GET /admin/service-accounts/{id}/revoke`, `POST` | revoke one: asked first, then done |
//!
//! Every page checks on the server who asks: an admin ([`AccessAdmin`]),
//! or, for the two lists only, an auditor too ([`AccessVisit`]); every
//! `POST` also carries the form's token against forged requests
//! ([`Posted`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use axum::extract::{FromRequestParts, Query, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, Utc};
use trellis_access::store::{Account, ServiceAccount};
use trellis_access::{Access, AccessError, GRANTS, NewAccount, spoken};
use trellis_domain::TeamId;
use trellis_http::auth::Role;
use trellis_projections::growth::derive::{RepProfile, RepStatus};
use trellis_projections::growth::{TeamDoc, kinds};
use uuid::Uuid;

use super::{Posted, Seen, Visit, id_in};
use crate::auth::{Viewer, is_own_account, reached_over_https};
use crate::data;
use crate::error::PageError;
use crate::forms::{Typed, Widgets, alert, field};
use crate::html::{csrf_field, esc, page, table_start, when};
use crate::state::DashboardState;

const PEOPLE: &str = "/admin/access";
const SERVICES: &str = "/admin/service-accounts";

/// Who is looking at a sign-in page: an admin, or an auditor (who sees,
/// and changes nothing). 403 for anyone else.
#[derive(Debug, Clone)]
pub(crate) struct AccessVisit {
    pub state: DashboardState,
    pub viewer: Viewer,
    pub access: Access,
}

impl AccessVisit {
    fn may_change(&self) -> bool {
        self.viewer.is_admin()
    }

    fn now(&self) -> DateTime<Utc> {
        self.state.http().clock().now()
    }
}

/// The access tables, or why there are none on this server.
fn access_of(state: &DashboardState) -> Result<Access, PageError> {
    state.access().cloned().ok_or_else(|| {
        PageError::NotFound(
            "Signing in is not set up on this server: it takes bearer tokens only.".into(),
        )
    })
}

impl FromRequestParts<DashboardState> for AccessVisit {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DashboardState,
    ) -> Result<Self, PageError> {
        let Visit { state, viewer } = Visit::from_request_parts(parts, state).await?;
        if !viewer.reads_all() {
            return Err(PageError::Forbidden(
                "Only an admin sees and changes who may sign in to Trellis.".into(),
            ));
        }
        let access = access_of(&state)?;
        Ok(AccessVisit {
            state,
            viewer,
            access,
        })
    }
}

/// Who changes who may sign in: an admin only (an auditor gets a 403).
#[derive(Debug, Clone)]
pub(crate) struct AccessAdmin(AccessVisit);

impl FromRequestParts<DashboardState> for AccessAdmin {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DashboardState,
    ) -> Result<Self, PageError> {
        let visit = AccessVisit::from_request_parts(parts, state).await?;
        if !visit.may_change() {
            return Err(PageError::Forbidden(
                "An auditor sees who may sign in but changes nothing; ask an admin.".into(),
            ));
        }
        Ok(AccessAdmin(visit))
    }
}

impl Seen for AccessAdmin {
    fn state(&self) -> &DashboardState {
        &self.0.state
    }
    fn viewer(&self) -> &Viewer {
        &self.0.viewer
    }
}

/// The store could not be asked: a 503 the admin may retry.
fn unavailable(e: trellis_access::Error) -> PageError {
    PageError::Unavailable(e.to_string())
}

/// A refusal not shown beside a form's field, as a page.
fn refused(e: AccessError) -> PageError {
    match e {
        AccessError::Invalid { message, .. } => PageError::BadRequest(message),
        AccessError::NotFound(why) => PageError::NotFound(why),
        AccessError::Store(e) => unavailable(e),
    }
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn role_word(role: Role) -> &'static str {
    match role {
        Role::Admin => "Admin",
        Role::Auditor => "Auditor",
        Role::Leader => "Leader",
        Role::Rep => "Rep",
        Role::Service => "Service",
    }
}

// ---- who may sign in -----------------------------------------------------------

/// `GET /admin/access?done=…&account=…`: everyone who may sign in, what
/// can be done for each, and the form to give someone access.
pub(crate) async fn list(
    visit: AccessVisit,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, PageError> {
    let said = done_notice(&visit, &query).await?;
    let about = query.get("account").and_then(|id| Uuid::parse_str(id).ok());
    let empty = Typed::new();
    people_page(
        &visit,
        &empty,
        &BTreeMap::new(),
        None,
        StatusCode::OK,
        about.map(|id| (id, said.as_str())),
    )
    .await
}

/// The confirmation a redirect asks for (`?done=…&account=…`), as HTML.
async fn done_notice(
    visit: &AccessVisit,
    query: &BTreeMap<String, String>,
) -> Result<String, PageError> {
    let account = query.get("account").and_then(|id| Uuid::parse_str(id).ok());
    let name = match account {
        Some(id) => match visit.access.account(id).await {
            Ok(a) => esc(&a.name),
            Err(AccessError::Store(e)) => return Err(unavailable(e)),
            Err(_) => return Ok(String::new()),
        },
        None => return Ok(String::new()),
    };
    let ended = query.get("n").and_then(|n| n.parse::<u64>().ok());
    let text = match query.get("done").map(String::as_str) {
        Some("added") => format!(
            "<strong>{name} may sign in now.</strong> Create a sign-in link for them below \
             and send it to them{}.",
            if visit.access.oidc().is_some() {
                ", or let them sign in with their company account"
            } else {
                ""
            }
        ),
        Some("ended") => match ended {
            Some(0) => format!("{name} was not signed in anywhere; nothing to end."),
            Some(1) => {
                format!("<strong>{name} is signed out</strong> on the one device they used.")
            }
            Some(n) => format!("<strong>{name} is signed out</strong> on all {n} devices."),
            None => format!("<strong>{name} is signed out</strong> everywhere."),
        },
        Some("stopped") => format!(
            "<strong>{name} can no longer sign in.</strong> They were signed out everywhere, \
             and no sign-in link works for them while their access is stopped."
        ),
        Some("restored") => format!(
            "<strong>{name} may sign in again.</strong> Send them a new sign-in link if they \
             need one."
        ),
        Some("identity") => format!("<strong>Saved</strong> {name}'s email and subject."),
        Some("link-shown") => format!(
            "<strong>A sign-in link is shown only once</strong>, when it is made: Trellis \
             keeps no copy to show again. If you did not send {name} theirs, create a new \
             one below."
        ),
        _ => return Ok(String::new()),
    };
    Ok(format!("<p class=\"notice\" role=\"status\">{text}</p>"))
}

/// A leader or rep who may be given a sign-in: `leader:<id>` or
/// `rep:<id>`, their name, and what they are.
#[derive(Debug)]
struct Candidate {
    value: String,
    name: String,
    about: String,
}

/// The teams and the reps of the log: who the leaders and reps are.
#[derive(Debug)]
struct Directory {
    teams: Vec<TeamDoc>,
    reps: Vec<RepProfile>,
}

impl Directory {
    async fn load(state: &DashboardState) -> Result<Self, PageError> {
        Ok(Directory {
            teams: data::all_teams(state).await?,
            reps: state.models().all(kinds::REP_PROFILE).await?,
        })
    }

    fn team_name(&self, id: TeamId) -> String {
        self.teams
            .iter()
            .find(|t| t.team_id == id)
            .map_or_else(|| "a team".to_owned(), |t| t.name.to_string())
    }

    /// The teams `leader` leads today, comma-separated.
    fn led_by(&self, leader: Uuid) -> String {
        self.teams
            .iter()
            .filter(|t| t.leaders.keys().any(|l| l.as_uuid() == leader))
            .map(|t| t.name.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// What an account's person is now, in words: "Leader of EMEA".
    fn role_of(&self, account: &Account) -> String {
        match account.role {
            Role::Leader => match self.led_by(account.person) {
                teams if teams.is_empty() => "Leader (of no team now)".to_owned(),
                teams => format!("Leader of {teams}"),
            },
            Role::Rep => match self
                .reps
                .iter()
                .find(|r| r.rep_id.as_uuid() == account.person)
            {
                Some(r) if r.status == RepStatus::Departed => "Rep (departed)".to_owned(),
                Some(r) => format!("Rep on {}", self.team_name(r.team_id)),
                None => "Rep".to_owned(),
            },
            role => role_word(role).to_owned(),
        }
    }

    /// The leaders and the reps still with the company who have no
    /// sign-in yet, each by name.
    fn candidates(&self, accounts: &[Account]) -> (Vec<Candidate>, Vec<Candidate>) {
        let taken: BTreeSet<Uuid> = accounts.iter().map(|a| a.person).collect();
        let mut leaders: BTreeMap<Uuid, String> = BTreeMap::new();
        for (leader, name) in self.teams.iter().flat_map(|t| t.leaders.iter()) {
            if !taken.contains(&leader.as_uuid()) {
                leaders.insert(leader.as_uuid(), name.to_string());
            }
        }
        let mut leaders: Vec<Candidate> = leaders
            .into_iter()
            .map(|(id, name)| Candidate {
                value: format!("leader:{id}"),
                about: format!("leads {}", self.led_by(id)),
                name,
            })
            .collect();
        leaders.sort_by(|a, b| a.name.cmp(&b.name));
        let mut reps: Vec<Candidate> = self
            .reps
            .iter()
            .filter(|r| r.status == RepStatus::Active && !taken.contains(&r.rep_id.as_uuid()))
            .map(|r| Candidate {
                value: format!("rep:{}", r.rep_id),
                name: r.name.to_string(),
                about: self.team_name(r.team_id),
            })
            .collect();
        reps.sort_by(|a, b| a.name.cmp(&b.name));
        (leaders, reps)
    }
}

/// The people page: everyone who may sign in, then the form to give
/// someone access with `typed` and `errors`. `said` (HTML) confirms what
/// was done for an account, in that account's card, where the browser
/// lands.
async fn people_page(
    visit: &AccessVisit,
    typed: &Typed,
    errors: &BTreeMap<String, String>,
    general: Option<&str>,
    status: StatusCode,
    said: Option<(Uuid, &str)>,
) -> Result<Response, PageError> {
    let access = &visit.access;
    let now = visit.now();
    let accounts = access.accounts().await.map_err(unavailable)?;
    let directory = Directory::load(&visit.state).await?;
    let mut b = String::from(
        "<h1>Who may sign in</h1><p class=\"lead\">The people who may sign in to Trellis, and \
         what each may see: a leader their teams, a rep their own growth, an admin \
         everything, an auditor every record and who may sign in. Other systems use <a href=\"/admin/service-accounts\">service \
         accounts</a>.</p>",
    );
    if !visit.may_change() {
        b.push_str(
            "<p class=\"notice\">You see this as an auditor: only an admin changes who may \
             sign in.</p>",
        );
    }
    // An account no longer listed: what was done for it, above the list.
    if let Some((about, said)) = said
        && !accounts.iter().any(|a| a.id == about)
    {
        b.push_str(said);
    }
    if general.is_some() && errors.is_empty() {
        b.push_str(&alert(errors, general));
    }
    let _ = write!(b, "<h2 id=\"people\">People ({})</h2>", accounts.len());
    if accounts.is_empty() {
        b.push_str("<p>Nobody has a sign-in yet. Give someone access below.</p>");
    } else {
        b.push_str("<div class=\"grid\">");
        for account in &accounts {
            let devices = access
                .running_sessions_of(account.id, now)
                .await
                .map_err(unavailable)?
                .len();
            let said = said
                .filter(|(about, _)| *about == account.id)
                .map_or("", |(_, said)| said);
            b.push_str(&person_card(
                visit,
                account,
                &directory.role_of(account),
                devices,
                said,
            ));
        }
        b.push_str("</div>");
    }
    if visit.may_change() {
        let (leaders, reps) = directory.candidates(&accounts);
        b.push_str(&give_form(visit, &leaders, &reps, typed, errors, general));
    }
    Ok((
        status,
        Html(page("Sign-in", Some(visit.viewer.signed()), &b)),
    )
        .into_response())
}

/// One person who may sign in, with what an admin may do for them; `said`
/// (HTML) under their name and role, confirming what was just done.
fn person_card(
    visit: &AccessVisit,
    account: &Account,
    role: &str,
    devices: usize,
    said: &str,
) -> String {
    let id = account.id;
    let you = is_own_account(&visit.viewer, id);
    let mut b = format!(
        "<section class=\"card\" id=\"account-{id}\" aria-labelledby=\"name-{id}\">\
         <h3 id=\"name-{id}\">{}{}{}</h3><p class=\"muted\">{}</p>{said}",
        esc(&account.name),
        if you {
            " <span class=\"tag\">you</span>"
        } else {
            ""
        },
        if account.disabled_at.is_some() {
            " <span class=\"tag overdue\">access stopped</span>"
        } else {
            ""
        },
        esc(role),
    );
    let identity = match (&account.email, &account.oidc_subject) {
        (None, None) => "No company account linked: they sign in with a link.".to_owned(),
        (email, subject) => [
            email.as_deref().map(|e| format!("Email: {}", esc(e))),
            subject
                .as_deref()
                .map(|s| format!("Subject: <code class=\"secret\">{}</code>", esc(s))),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("<br>"),
    };
    let _ = write!(b, "<p>{identity}</p>");
    let _ = write!(
        b,
        "<p>{}</p>",
        match (account.disabled_at, devices) {
            (Some(at), _) => format!("Access stopped on {}.", esc(&when(at))),
            (None, 0) => "Not signed in now.".to_owned(),
            (None, 1) => "Signed in on <strong>1 device</strong>.".to_owned(),
            (None, n) => format!("Signed in on <strong>{n} devices</strong>."),
        }
    );
    if !visit.may_change() {
        b.push_str("</section>");
        return b;
    }
    let csrf = csrf_field(visit.viewer.signed().csrf);
    if account.disabled_at.is_some() {
        let _ = write!(
            b,
            "<form method=\"post\" action=\"{PEOPLE}/{id}/restore\">{csrf}\
             <p><button type=\"submit\">Let them sign in again</button></p></form>"
        );
    } else {
        let _ = write!(
            b,
            "<form class=\"form\" method=\"post\" action=\"{PEOPLE}/{id}/link\">{csrf}\
             <div class=\"field\"><label for=\"lifetime-{id}\">A one-time sign-in link, \
             working for</label><select id=\"lifetime-{id}\" name=\"lifetime\">{}</select> \
             <button type=\"submit\">Create a sign-in link</button></div></form>",
            lifetimes(visit.access.config())
        );
        b.push_str("<p>");
        if devices > 0 && !you {
            let _ = write!(
                b,
                "<form class=\"inline\" method=\"post\" action=\"{PEOPLE}/{id}/sessions/end\">\
                 {csrf}<button type=\"submit\">End their sessions</button></form> "
            );
        }
        if !you {
            let _ = write!(
                b,
                "<form class=\"inline\" method=\"post\" action=\"{PEOPLE}/{id}/stop\">{csrf}\
                 <button type=\"submit\">Stop their access</button></form> "
            );
        }
        b.push_str("</p>");
    }
    let _ = write!(
        b,
        "<p><a href=\"{PEOPLE}/{id}/identity\">Edit email and subject<span class=\"skip\"> \
         of {}</span></a></p></section>",
        esc(&account.name)
    );
    b
}

/// The choices of how long a sign-in link works, the configured default
/// chosen, none longer than the longest allowed (values in minutes).
fn lifetimes(config: &trellis_access::AccessConfig) -> String {
    let mut choices: Vec<Duration> = [
        Duration::minutes(15),
        Duration::hours(1),
        Duration::hours(4),
        Duration::days(1),
        Duration::days(3),
        Duration::days(7),
    ]
    .into_iter()
    .chain([config.link_lifetime])
    .filter(|d| *d <= config.max_link_lifetime && *d > Duration::zero())
    .collect();
    choices.sort();
    choices.dedup();
    choices
        .into_iter()
        .map(|d| {
            format!(
                "<option value=\"{}\"{}>{}</option>",
                d.num_minutes(),
                if d == config.link_lifetime {
                    " selected"
                } else {
                    ""
                },
                esc(&spoken(d))
            )
        })
        .collect()
}

/// The attributes of field `name` described by its help text `help` (an
/// id) as well as by its error.
fn described(w: &Widgets<'_>, name: &str, help: &str) -> String {
    let attrs = w.attrs(name);
    if attrs.is_empty() {
        format!(" aria-describedby=\"{help}\"")
    } else {
        attrs.replacen("-error\"", &format!("-error {help}\""), 1)
    }
}

/// The form that gives someone access.
fn give_form(
    visit: &AccessVisit,
    leaders: &[Candidate],
    reps: &[Candidate],
    typed: &Typed,
    errors: &BTreeMap<String, String>,
    general: Option<&str>,
) -> String {
    let order = ["role", "person", "name", "email", "subject"];
    let w = Widgets::new(typed, errors, &order);
    let mut b = String::from("<h2 id=\"give\">Give someone access</h2>");
    if !errors.is_empty() {
        b.push_str(&alert(errors, general));
    }
    let _ = write!(
        b,
        "<form class=\"card form\" method=\"post\" action=\"{PEOPLE}\" novalidate>{}\
         <fieldset class=\"field\" id=\"role\"{}><legend>Their role</legend>",
        csrf_field(visit.viewer.signed().csrf),
        w.group_attrs("role"),
    );
    for (i, (value, label)) in [
        ("leader", "Leader: sees the teams they lead"),
        ("rep", "Rep: sees their own growth"),
        ("admin", "Admin: sets Trellis up, sees everything"),
        (
            "auditor",
            "Auditor: reads every record, audit trail and sign-in; changes nothing",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let _ = write!(
            b,
            "<label><input type=\"radio\" name=\"role\" value=\"{value}\"{}{}> {label}</label>",
            w.checked("role", value),
            w.choice_attrs("role", i)
        );
    }
    let _ = write!(
        b,
        "{}</fieldset>\
         <div class=\"field\"><label for=\"person\">For a leader or a rep: who</label>\
         <select id=\"person\" name=\"person\"{}><option value=\"\">Choose a leader or a rep\
         </option>",
        w.error("role"),
        described(&w, "person", "person-help"),
    );
    for (group, people) in [("Leaders", leaders), ("Reps", reps)] {
        if people.is_empty() {
            continue;
        }
        let _ = write!(b, "<optgroup label=\"{group}\">");
        for c in people {
            let _ = write!(
                b,
                "<option value=\"{}\"{}>{}{}</option>",
                esc(&c.value),
                w.selected("person", &c.value),
                esc(&c.name),
                if c.about.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", esc(&c.about))
                }
            );
        }
        b.push_str("</optgroup>");
    }
    let _ = write!(
        b,
        "</select>{}<p class=\"muted\" id=\"person-help\">Only people without a sign-in are \
         listed. Someone new is first added under <a href=\"/admin\">Set up</a> (a leader to \
         a team, a rep hired).</p></div>\
         <div class=\"field\"><label for=\"name\">For an admin or an auditor: their name</label>\
         <input type=\"text\" id=\"name\" name=\"name\" autocomplete=\"off\" value=\"{}\"{}>{}\
         </div>",
        w.error("person"),
        w.value("name"),
        w.attrs("name"),
        w.error("name"),
    );
    b.push_str(&identity_fields(&w));
    b.push_str("<p><button class=\"primary\" type=\"submit\">Give access</button></p></form>");
    b
}

/// The email and subject fields (the give-access and the identity forms).
fn identity_fields(w: &Widgets<'_>) -> String {
    format!(
        "<div class=\"field\"><label for=\"email\">Email (optional)</label>\
         <input type=\"text\" id=\"email\" name=\"email\" inputmode=\"email\" \
         autocomplete=\"off\" spellcheck=\"false\" value=\"{}\"{}>{}\
         <p class=\"muted\" id=\"email-help\">The address of their company account: when \
         they sign in with it and the identity provider says the address is verified, \
         Trellis knows them by it.</p></div>\
         <div class=\"field\"><label for=\"subject\">Identity-provider subject (optional)\
         </label><input type=\"text\" id=\"subject\" name=\"subject\" autocomplete=\"off\" \
         spellcheck=\"false\" value=\"{}\"{}>{}\
         <p class=\"muted\" id=\"subject-help\">The identity provider's own id for them (the \
         \u{201c}sub\u{201d} of their ID token), if your IT team gives you one. Leave it \
         empty otherwise.</p></div>",
        w.value("email"),
        described(w, "email", "email-help"),
        w.error("email"),
        w.value("subject"),
        described(w, "subject", "subject-help"),
        w.error("subject"),
    )
}

/// What an admin's form said, as a new account; or what is wrong, by
/// field (what the form alone shows: the access tables check the rest).
fn new_account(typed: &Typed) -> Result<NewAccount, BTreeMap<String, String>> {
    let mut errors = BTreeMap::new();
    let mut wrong = |field: &str, message: &str| {
        errors.insert(field.to_owned(), message.to_owned());
    };
    let role = match field(typed, "role") {
        "leader" => Some(Role::Leader),
        "rep" => Some(Role::Rep),
        "admin" => Some(Role::Admin),
        "auditor" => Some(Role::Auditor),
        _ => None,
    };
    let chosen = field(typed, "person").split_once(':');
    let person = chosen.and_then(|(_, id)| Uuid::parse_str(id).ok());
    match (role, chosen) {
        (None, _) => wrong("role", "Choose their role."),
        (Some(Role::Leader | Role::Rep), None) => {
            wrong("person", "Choose the leader or rep this sign-in is for.")
        }
        (Some(Role::Leader), Some((kind, _))) if kind != "leader" => wrong(
            "person",
            "The role is Leader: choose one of the leaders (the one chosen is a rep).",
        ),
        (Some(Role::Rep), Some((kind, _))) if kind != "rep" => wrong(
            "person",
            "The role is Rep: choose one of the reps (the one chosen is a leader).",
        ),
        (Some(Role::Leader | Role::Rep), Some(_)) if person.is_none() => {
            wrong("person", "Choose the person from the list.");
        }
        (Some(Role::Admin | Role::Auditor), _) if field(typed, "name").is_empty() => wrong(
            "name",
            "Give their name (one line, at most 200 characters).",
        ),
        _ => {}
    }
    let optional = |name: &str| {
        Some(field(typed, name))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    match role {
        Some(role) if errors.is_empty() => Ok(NewAccount {
            role,
            person: person.filter(|_| matches!(role, Role::Leader | Role::Rep)),
            name: optional("name"),
            email: optional("email"),
            oidc_subject: optional("subject"),
        }),
        _ => Err(errors),
    }
}

/// `POST /admin/access`: gives someone access.
pub(crate) async fn add(
    Posted { visit, typed }: Posted<AccessAdmin>,
) -> Result<Response, PageError> {
    let AccessAdmin(visit) = visit;
    let errors = match new_account(&typed) {
        Ok(new) => match visit
            .access
            .add_account(new, &visit.viewer.actor(), visit.now())
            .await
        {
            Ok(account) => {
                return Ok(Redirect::to(&format!(
                    "{PEOPLE}?done=added&account={id}#account-{id}",
                    id = account.id
                ))
                .into_response());
            }
            Err(AccessError::Invalid { field, message }) => {
                BTreeMap::from([(field.to_owned(), message)])
            }
            Err(e) => return Err(refused(e)),
        },
        Err(errors) => errors,
    };
    people_page(
        &visit,
        &typed,
        &errors,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
    )
    .await
}

// ---- one person ------------------------------------------------------------------

/// The request's own address (`https://host`), to write a link that opens
/// here: https when the server says its public URL is, or a proxy in front
/// says the browser came over TLS. None without a host.
fn origin(state: &DashboardState, headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b".-:[]".contains(&c))
        })?;
    let scheme = if state.https() || reached_over_https(headers) {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{host}"))
}

/// `POST /admin/access/{account_id}/link` (`lifetime`: minutes; the
/// configured default when none): the link, shown this once.
pub(crate) async fn link(
    path: RawPathParams,
    headers: HeaderMap,
    uri: Uri,
    Posted { visit, typed }: Posted<AccessAdmin>,
) -> Result<Response, PageError> {
    let AccessAdmin(visit) = visit;
    let id = id_in(&path, "account_id")?;
    let lifetime = match field(&typed, "lifetime") {
        "" => None,
        minutes => match minutes.parse::<i64>() {
            Ok(m) if (1..=60 * 24 * 366).contains(&m) => Some(Duration::minutes(m)),
            _ => {
                return link_refused(
                    &visit,
                    "A sign-in link's lifetime is a number of minutes; choose one from the list.",
                )
                .await;
            }
        },
    };
    let now = visit.now();
    let (token, made) = match visit
        .access
        .create_link(id, lifetime, &visit.viewer.actor(), now)
        .await
    {
        Ok(made) => made,
        Err(AccessError::Invalid { message, .. }) => {
            return link_refused(&visit, &message).await;
        }
        Err(e) => return Err(refused(e)),
    };
    let account = visit.access.account(id).await.map_err(refused)?;
    let path = format!("/sign-in?link={token}");
    let url = origin(&visit.state, &headers, &uri).map_or(path.clone(), |o| format!("{o}{path}"));
    let name = esc(&account.name);
    let body = format!(
        "<h1>A sign-in link for {name}</h1>\
         <div class=\"notice\" role=\"status\"><p><strong>Send this link to {name} now</strong>, \
         in an email or a chat message only they read. It is shown only this once: Trellis \
         keeps no copy it could show again.</p></div>\
         <div class=\"card form\"><div class=\"field\"><label for=\"link\">The sign-in link\
         </label><input type=\"text\" id=\"link\" readonly value=\"{}\" \
         aria-describedby=\"link-help\" spellcheck=\"false\"></div>\
         <p id=\"link-help\">It signs {name} in <strong>once</strong>, and works until \
         <strong>{}</strong> ({} from now). Once used or past that time it no longer works: \
         then create a new one.</p></div>\
         <p><a href=\"{PEOPLE}#account-{id}\">Back to who may sign in</a></p>",
        esc(&url),
        esc(&when(made.expires_at)),
        esc(&spoken(made.expires_at - now)),
    );
    Ok(no_store(
        (
            StatusCode::CREATED,
            Html(page("Sign-in link", Some(visit.viewer.signed()), &body)),
        )
            .into_response(),
    ))
}

/// `GET /admin/access/{account_id}/link` (the page of a link made, opened
/// again: reloaded, or from the browser's history): the link is not kept,
/// so the people page says so beside the account.
pub(crate) async fn link_shown_once(
    path: RawPathParams,
    AccessAdmin(_): AccessAdmin,
) -> Result<Response, PageError> {
    Ok(done("link-shown", id_in(&path, "account_id")?, ""))
}

/// The people page again, saying why no link was made.
async fn link_refused(visit: &AccessVisit, why: &str) -> Result<Response, PageError> {
    people_page(
        visit,
        &Typed::new(),
        &BTreeMap::new(),
        Some(why),
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
    )
    .await
}

/// Back to the people page, confirming `done` for `account`.
fn done(done: &str, account: Uuid, extra: &str) -> Response {
    Redirect::to(&format!(
        "{PEOPLE}?done={done}&account={account}{extra}#account-{account}"
    ))
    .into_response()
}

/// `POST /admin/access/{account_id}/sessions/end`: signs the person out on
/// every device, at once.
pub(crate) async fn end_sessions(
    path: RawPathParams,
    Posted { visit, .. }: Posted<AccessAdmin>,
) -> Result<Response, PageError> {
    let AccessAdmin(visit) = visit;
    let id = id_in(&path, "account_id")?;
    visit.access.account(id).await.map_err(refused)?;
    let ended = visit
        .access
        .end_sessions_of(id, visit.now(), &visit.viewer.actor())
        .await
        .map_err(unavailable)?;
    Ok(done("ended", id, &format!("&n={ended}")))
}

/// `POST /admin/access/{account_id}/stop` and `…/restore`.
pub(crate) async fn stop_or_restore(
    path: RawPathParams,
    uri: Uri,
    Posted { visit, .. }: Posted<AccessAdmin>,
) -> Result<Response, PageError> {
    let AccessAdmin(visit) = visit;
    let id = id_in(&path, "account_id")?;
    let stop = !uri.path().ends_with("/restore");
    if stop && is_own_account(&visit.viewer, id) {
        return Err(PageError::BadRequest(
            "You cannot stop your own access: ask another admin to do it.".into(),
        ));
    }
    visit
        .access
        .set_disabled(id, stop, &visit.viewer.actor(), visit.now())
        .await
        .map_err(refused)?;
    Ok(done(if stop { "stopped" } else { "restored" }, id, ""))
}

/// `GET /admin/access/{account_id}/identity`: the form, as stored.
pub(crate) async fn identity_form(
    path: RawPathParams,
    AccessAdmin(visit): AccessAdmin,
) -> Result<Response, PageError> {
    let id = id_in(&path, "account_id")?;
    let account = visit.access.account(id).await.map_err(refused)?;
    let typed = Typed::from([
        (
            "email".to_owned(),
            account.email.clone().unwrap_or_default(),
        ),
        (
            "subject".to_owned(),
            account.oidc_subject.clone().unwrap_or_default(),
        ),
    ]);
    identity_page(&visit, &account, &typed, &BTreeMap::new(), StatusCode::OK)
}

fn identity_page(
    visit: &AccessVisit,
    account: &Account,
    typed: &Typed,
    errors: &BTreeMap<String, String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let w = Widgets::new(typed, errors, &["email", "subject"]);
    let id = account.id;
    let body = format!(
        "<h1>{}: email and subject</h1><p class=\"lead\">When {} signs in with their company \
         account, Trellis knows them by the subject, or by the email when the identity \
         provider says it is verified. Empty both to unlink the company account: they then \
         sign in only with a one-time link.</p>{}\
         <form class=\"card form\" method=\"post\" action=\"{PEOPLE}/{id}/identity\" novalidate>\
         {}{}<p><button class=\"primary\" type=\"submit\">Save</button> \
         <a href=\"{PEOPLE}#account-{id}\">Cancel</a></p></form>",
        esc(&account.name),
        esc(&account.name),
        alert(errors, None),
        csrf_field(visit.viewer.signed().csrf),
        identity_fields(&w),
    );
    Ok((
        status,
        Html(page(
            "Email and subject",
            Some(visit.viewer.signed()),
            &body,
        )),
    )
        .into_response())
}

/// `POST /admin/access/{account_id}/identity`.
pub(crate) async fn identity(
    path: RawPathParams,
    Posted { visit, typed }: Posted<AccessAdmin>,
) -> Result<Response, PageError> {
    let AccessAdmin(visit) = visit;
    let id = id_in(&path, "account_id")?;
    let account = visit.access.account(id).await.map_err(refused)?;
    match visit
        .access
        .link_identity(
            id,
            Some(field(&typed, "email")),
            Some(field(&typed, "subject")),
        )
        .await
    {
        Ok(_) => Ok(done("identity", id, "")),
        Err(AccessError::Invalid { field, message }) => {
            let field = if field == "subject" {
                "subject"
            } else {
                "email"
            };
            let errors = BTreeMap::from([(field.to_owned(), message)]);
            identity_page(
                &visit,
                &account,
                &typed,
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(e) => Err(refused(e)),
    }
}

// ---- service accounts ------------------------------------------------------------

/// `GET /admin/service-accounts?done=revoked&account=…`: the service
/// accounts, and the form to create one.
pub(crate) async fn services(
    visit: AccessVisit,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, PageError> {
    let revoked = match (query.get("done").map(String::as_str), query.get("account")) {
        (Some("revoked"), Some(id)) => {
            let all = visit.access.service_accounts().await.map_err(unavailable)?;
            all.into_iter()
                .find(|s| s.id.to_string() == *id)
                .map(|s| {
                    format!(
                        "<p class=\"notice\" role=\"status\"><strong>{} is revoked:</strong> \
                         its token no longer works.</p>",
                        esc(&s.name)
                    )
                })
                .unwrap_or_default()
        }
        _ => String::new(),
    };
    services_page(
        &visit,
        &Typed::new(),
        &BTreeMap::new(),
        StatusCode::OK,
        &revoked,
    )
    .await
}

/// What `grants` allow, in words.
fn grant_words(grants: &[String]) -> String {
    grants
        .iter()
        .map(|g| {
            GRANTS
                .iter()
                .find(|(k, _)| k == g)
                .map_or_else(|| esc(g), |(_, words)| esc(words))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

async fn services_page(
    visit: &AccessVisit,
    typed: &Typed,
    errors: &BTreeMap<String, String>,
    status: StatusCode,
    above: &str,
) -> Result<Response, PageError> {
    let all = visit.access.service_accounts().await.map_err(unavailable)?;
    let mut b = String::from(
        "<h1>Service accounts</h1><p class=\"lead\">Other systems your organisation runs \
         (a CRM sync, a reporting tool) call the Trellis API with a service account's token, \
         and may do only what it allows. <a href=\"/admin/access\">People who may sign \
         in</a>.</p>",
    );
    if !visit.may_change() {
        b.push_str(
            "<p class=\"notice\">You see this as an auditor: only an admin creates or \
             revokes service accounts.</p>",
        );
    }
    b.push_str(above);
    if all.is_empty() {
        b.push_str("<p>No service account yet.</p>");
    } else {
        let people = visit.access.accounts().await.map_err(unavailable)?;
        // Who did it: an admin's name, when the actor is an admin's account.
        let who = |actor: &str| {
            people
                .iter()
                .find(|a| a.person.to_string() == actor)
                .map_or_else(|| esc(actor), |a| esc(&a.name))
        };
        b.push_str(&table_start(&["Service", "May", "Created"]));
        for s in &all {
            let state = match (&s.revoked_at, visit.may_change()) {
                (Some(at), _) => format!(
                    "<span class=\"tag overdue\">revoked</span><br><small>on {}{}</small>",
                    esc(&when(*at)),
                    s.revoked_by
                        .as_deref()
                        .map(|by| format!(" by {}", who(by)))
                        .unwrap_or_default()
                ),
                (None, true) => format!(
                    "<a href=\"{SERVICES}/{}/revoke\">Revoke<span class=\"skip\"> {}</span>\
                     </a>",
                    s.id,
                    esc(&s.name)
                ),
                (None, false) => String::new(),
            };
            let _ = write!(
                b,
                "<tr><th scope=\"row\">{}<br>{state}</th><td>{}</td><td>{}<br><small>by {}\
                 </small></td></tr>",
                esc(&s.name),
                grant_words(&s.grants),
                esc(&when(s.created_at)),
                who(&s.created_by),
            );
        }
        b.push_str("</tbody></table></div>");
    }
    if visit.may_change() {
        b.push_str(&service_form(visit, typed, errors));
    }
    Ok((
        status,
        Html(page("Service accounts", Some(visit.viewer.signed()), &b)),
    )
        .into_response())
}

fn service_form(visit: &AccessVisit, typed: &Typed, errors: &BTreeMap<String, String>) -> String {
    let w = Widgets::new(typed, errors, &["name", "grants"]);
    let mut b = String::from("<h2 id=\"create\">Create a service account</h2>");
    b.push_str(&alert(errors, None));
    let _ = write!(
        b,
        "<form class=\"card form\" method=\"post\" action=\"{SERVICES}\" novalidate>{}\
         <div class=\"field\"><label for=\"name\">Name of the service</label>\
         <input type=\"text\" id=\"name\" name=\"name\" autocomplete=\"off\" value=\"{}\"{}>{}\
         <p id=\"name-help\" class=\"muted\">Which system it is, in words people know: \
         e.g. \u{201c}CRM sync\u{201d}.</p></div>\
         <fieldset class=\"field\" id=\"grants\"{}><legend>It may</legend>",
        csrf_field(visit.viewer.signed().csrf),
        w.value("name"),
        described(&w, "name", "name-help"),
        w.error("name"),
        w.group_attrs("grants"),
    );
    for (i, (grant, words)) in GRANTS.iter().enumerate() {
        let name = format!("grant.{grant}");
        let _ = write!(
            b,
            "<label><input type=\"checkbox\" name=\"{}\" value=\"on\"{}{}> {}</label>",
            esc(&name),
            w.checked(&name, "on"),
            w.choice_attrs("grants", i),
            esc(words)
        );
    }
    let _ = write!(
        b,
        "{}</fieldset><p>Its token is shown once, when it is created: give it to whoever \
         sets the service up.</p>\
         <p><button class=\"primary\" type=\"submit\">Create the service account</button></p>\
         </form>",
        w.error("grants")
    );
    b
}

/// `POST /admin/service-accounts`: creates one and shows its token once.
pub(crate) async fn create_service(
    Posted { visit, typed }: Posted<AccessAdmin>,
) -> Result<Response, PageError> {
    let AccessAdmin(visit) = visit;
    let grants: Vec<String> = GRANTS
        .iter()
        .map(|(g, _)| (*g).to_owned())
        .filter(|g| typed.get(&format!("grant.{g}")).is_some_and(|v| v == "on"))
        .collect();
    match visit
        .access
        .create_service_account(
            field(&typed, "name"),
            &grants,
            &visit.viewer.actor(),
            visit.now(),
        )
        .await
    {
        Ok(made) => {
            let said = format!(
                "<div class=\"notice\" role=\"status\"><p><strong>{} is created.</strong> Its \
                 token is below: give it to whoever sets the service up now, it is not shown \
                 again. The service sends it with every request, as \
                 <code>Authorization: Bearer …</code>.</p>\
                 <p><code class=\"secret\">{}</code></p></div>",
                esc(&made.account.name),
                esc(&made.token)
            );
            let page = services_page(
                &visit,
                &Typed::new(),
                &BTreeMap::new(),
                StatusCode::CREATED,
                &said,
            )
            .await?;
            // The token is on this page only: no cache may keep it.
            Ok(no_store(page))
        }
        Err(AccessError::Invalid { field, message }) => {
            let field = if field == "grants" { "grants" } else { "name" };
            let errors = BTreeMap::from([(field.to_owned(), message)]);
            services_page(
                &visit,
                &typed,
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
                "",
            )
            .await
        }
        Err(e) => Err(refused(e)),
    }
}

/// The service account the path names (404 when there is none).
async fn service_in(
    visit: &AccessVisit,
    path: &RawPathParams,
) -> Result<ServiceAccount, PageError> {
    let id = id_in(path, "service_account_id")?;
    visit
        .access
        .service_accounts()
        .await
        .map_err(unavailable)?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| PageError::NotFound("There is no such service account.".into()))
}

/// `GET /admin/service-accounts/{service_account_id}/revoke`: asks first.
pub(crate) async fn revoke_form(
    path: RawPathParams,
    AccessAdmin(visit): AccessAdmin,
) -> Result<Response, PageError> {
    let service = service_in(&visit, &path).await?;
    let name = esc(&service.name);
    let body = match service.revoked_at {
        Some(at) => format!(
            "<h1>{name} is revoked</h1><p class=\"lead\">Since {}: its token no longer works.\
             </p><p><a href=\"{SERVICES}\">Back to the service accounts</a></p>",
            esc(&when(at))
        ),
        None => format!(
            "<h1>Revoke {name}?</h1><p class=\"lead\">From the moment you revoke it, every \
             request with its token is refused: the service stops working with Trellis. This \
             cannot be undone; a service that needs access again gets a new service account.\
             </p><form method=\"post\" action=\"{SERVICES}/{}/revoke\">{}<p>\
             <button class=\"primary\" type=\"submit\">Revoke {name}</button> \
             <a href=\"{SERVICES}\">Cancel</a></p></form>",
            service.id,
            csrf_field(visit.viewer.signed().csrf),
        ),
    };
    Ok(Html(page(
        "Revoke a service account",
        Some(visit.viewer.signed()),
        &body,
    ))
    .into_response())
}

/// `POST /admin/service-accounts/{service_account_id}/revoke`.
pub(crate) async fn revoke(
    path: RawPathParams,
    Posted { visit, .. }: Posted<AccessAdmin>,
) -> Result<Response, PageError> {
    let AccessAdmin(visit) = visit;
    let service = service_in(&visit, &path).await?;
    visit
        .access
        .revoke_service_account(service.id, &visit.viewer.actor(), visit.now())
        .await
        .map_err(unavailable)?;
    Ok(Redirect::to(&format!("{SERVICES}?done=revoked&account={}", service.id)).into_response())
}
