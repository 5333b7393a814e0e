//! The dashboard's forms and the web security every response carries: a
//! form records through the write API (the same rules and idempotency as
//! `/v1`), only from this site and with the sign-in's token against forged
//! requests; a refused form keeps what was typed and says what is wrong
//! beside each field; every route answers with the security headers.

use axum::http::{Method, StatusCode};
use trellis_projections::engine::Engine;
use trellis_projections::growth::{Growth, GrowthSettings};
use trellis_tests::Kind;
use uuid::Uuid;

use crate::http::{Resp, TestApp, World, build_request, read_store};

const HOST: &str = "trellis.example";
/// The `Origin` a browser sends with a form of [`HOST`]'s.
const ORIGIN: &str = "http://trellis.example";

/// The app `trellis serve` builds, a world, a rep in it, and read models
/// caught up with them.
pub(crate) async fn serving_with_a_rep(kind: Kind) -> (TestApp, World, Uuid) {
    let app = TestApp::spawn_serving(kind).await;
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    project(&app).await;
    (app, world, rep)
}

/// Brings the read models up to date with everything committed (on
/// PostgreSQL, other tests' transactions can hold the readers' horizon back
/// for a moment, so it waits until the log reads whole).
pub(crate) async fn project(app: &TestApp) {
    settle(app).await;
    Engine::new(app.store.clone(), read_store(&app.backend).await)
        .catch_up(&Growth::new(GrowthSettings::default()))
        .await
        .expect("catch up")
        .expect("the runner lease");
}

/// Waits until every committed event reads in global order (on PostgreSQL,
/// other tests' transactions can hold the readers' horizon back a moment).
pub(crate) async fn settle(app: &TestApp) {
    trellis_tests::settle(&*app.store).await;
}

/// A browser's request: the sign-in cookie, this site's host, and `extra`.
pub(crate) async fn browser(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    form: Option<&[(&str, &str)]>,
    extra: &[(&str, &str)],
) -> Resp {
    // No token: a browser that has not signed in.
    let cookie = if token.is_empty() {
        String::new()
    } else {
        app.session_cookie(token).await
    };
    let mut headers = vec![("cookie", cookie.as_str()), ("host", HOST)];
    headers.extend_from_slice(extra);
    let body = form.map(urlencode).unwrap_or_default();
    let content_type = form.map(|_| "application/x-www-form-urlencoded");
    app.send(build_request(
        method,
        path,
        "",
        content_type,
        body,
        &headers,
    ))
    .await
}

/// The page at `path` as `token`'s browser opens it: its HTML, once it
/// answered 200.
pub(crate) async fn shown(app: &TestApp, path: &str, token: &str) -> String {
    let page = browser(app, Method::GET, path, token, None, &[]).await;
    page.expect(200);
    page.text()
}

/// A form's fields as `application/x-www-form-urlencoded`.
pub(crate) fn urlencode(fields: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `value` of the hidden input `name` in `html`.
pub(crate) fn hidden(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no hidden {name} in the form: {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').expect("a closing quote")].to_owned()
}

/// The feedback form as `token` opens it: (its CSRF token, its idempotency key).
async fn open_form(app: &TestApp, rep: Uuid, token: &str) -> (String, String) {
    let html = shown(app, &format!("/reps/{rep}/feedback"), token).await;
    (hidden(&html, "_csrf"), hidden(&html, "idempotency_key"))
}

fn feedbacks(events: &[trellis_eventstore::RecordedEvent]) -> usize {
    events
        .iter()
        .filter(|e| e.event_type == "FeedbackGiven")
        .count()
}

async fn a_leader_gives_feedback_through_the_form_and_a_double_submit_or_a_resend_after_back_records_once(
    kind: Kind,
) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let leader = app.leader_as(world.leader, &[world.team]);
    let (csrf, key) = open_form(&app, rep, &leader).await;
    let competency = world.competency.to_string();
    let form = [
        ("_csrf", csrf.as_str()),
        ("idempotency_key", key.as_str()),
        ("competency_id", competency.as_str()),
        ("kind", "praise"),
        (
            "note",
            "You asked about the budget before the demo: keep doing that.",
        ),
        ("visibility", "shared"),
        ("given_on", "2026-02-02"),
    ];
    let origin = format!("http://{HOST}");
    for _ in 0..2 {
        let sent = browser(
            &app,
            Method::POST,
            &format!("/reps/{rep}/feedback"),
            &leader,
            Some(&form),
            &[("origin", origin.as_str())],
        )
        .await;
        assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text());
        assert_eq!(
            sent.header("location"),
            Some(format!("/reps/{rep}?recorded=feedback#timeline").as_str())
        );
    }
    let events = app.events("rep", rep).await;
    assert_eq!(feedbacks(&events), 1, "a double submit records once");
    let given = events
        .iter()
        .find(|e| e.event_type == "FeedbackGiven")
        .expect("the feedback");
    assert_eq!(given.metadata.actor, world.leader.to_string());
    assert_eq!(given.payload["leader_id"], world.leader.to_string());

    // Back, then Send: the form comes again from the server with a new key,
    // and the browser fills in what was typed. It records nothing and says
    // so; sent once more, it records a second time.
    let path = format!("/reps/{rep}/feedback");
    let (_, again) = open_form(&app, rep, &leader).await;
    assert_ne!(again, key);
    let mut resent = form;
    resent[1] = ("idempotency_key", again.as_str());
    let send = |fields: &[(&str, &str)]| {
        let fields = urlencode(fields);
        let (app, path, leader, origin) = (&app, path.clone(), leader.clone(), origin.clone());
        async move {
            let cookie = app.session_cookie(&leader).await;
            app.send(build_request(
                Method::POST,
                &path,
                "",
                Some("application/x-www-form-urlencoded"),
                fields,
                &[
                    ("cookie", cookie.as_str()),
                    ("host", HOST),
                    ("origin", origin.as_str()),
                ],
            ))
            .await
        }
    };
    let asked = send(&resent).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.text());
    let html = asked.text();
    assert!(
        html.contains("You already sent this same form at ")
            && html
                .contains("and it was recorded then. To record it a second time, send it again."),
        "{html}"
    );
    assert!(
        html.contains("keep doing that."),
        "what was typed stays: {html}"
    );
    assert_eq!(hidden(&html, "idempotency_key"), again);
    assert_eq!(feedbacks(&app.events("rep", rep).await), 1, "not twice");
    let sent = send(&resent).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text());
    assert_eq!(
        feedbacks(&app.events("rep", rep).await),
        2,
        "asked, then meant"
    );

    // Other words are another feedback: recorded at once.
    let (_, other) = open_form(&app, rep, &leader).await;
    let mut changed = form;
    changed[1] = ("idempotency_key", other.as_str());
    changed[4] = (
        "note",
        "Your follow-up email named the next step and a date.",
    );
    let sent = send(&changed).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text());
    assert_eq!(feedbacks(&app.events("rep", rep).await), 3);
    app.cleanup().await;
}

async fn a_form_without_its_csrf_token_or_from_another_site_records_nothing_and_a_stale_one_is_offered_back(
    kind: Kind,
) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let leader = app.leader_as(world.leader, &[world.team]);
    let (csrf, key) = open_form(&app, rep, &leader).await;
    let competency = world.competency.to_string();
    let form = |csrf: &str| -> Vec<(String, String)> {
        [
            ("_csrf", csrf),
            ("idempotency_key", key.as_str()),
            ("competency_id", competency.as_str()),
            ("kind", "praise"),
            ("note", "A forged note"),
            ("visibility", "shared"),
            ("given_on", "2026-02-02"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec()
    };
    let post = |fields: Vec<(String, String)>, origin: Option<&'static str>| {
        let (app, leader, path) = (&app, &leader, format!("/reps/{rep}/feedback"));
        async move {
            let fields: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let extra: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
            browser(app, Method::POST, &path, leader, Some(&fields), &extra).await
        }
    };
    let without = post(form(""), None).await;
    without.expect(403);
    assert!(
        without.text().contains("nothing was recorded"),
        "{}",
        without.text()
    );
    // Headed by what happened, not by an access rule the viewer broke.
    for refused in [
        &without,
        &post(form(&csrf), Some("https://evil.example")).await,
    ] {
        assert!(
            refused.text().contains("<h1>Nothing was recorded</h1>")
                && !refused.text().contains("Not yours to see"),
            "{}",
            refused.text()
        );
    }
    let elsewhere = post(form(&csrf), Some("https://evil.example")).await;
    elsewhere.expect(403);
    assert!(
        elsewhere.text().contains("another site"),
        "{}",
        elsewhere.text()
    );
    // Another sign-in's token does not do either.
    let other = app.token(
        &world.leader.to_string(),
        trellis_http::auth::Role::Leader,
        &[world.team],
        &["x"],
    );
    let (other_csrf, _) = open_form(&app, rep, &other).await;
    assert_ne!(other_csrf, csrf, "each sign-in has its own");
    post(form(&other_csrf), None).await.expect(403);
    assert_eq!(feedbacks(&app.events("rep", rep).await), 0);
    // Sent from this site with an earlier sign-in's token (a page opened
    // before signing in again): nothing is recorded, and what was typed is
    // offered back, to send again with this sign-in's token.
    let stale = post(form(&other_csrf), Some(ORIGIN)).await;
    stale.expect(403);
    let html = stale.text();
    assert!(html.contains("Send this form again"), "{html}");
    assert!(
        html.contains("<dt>Note</dt><dd>A forged note</dd>"),
        "what was typed, shown under its field's name: {html}"
    );
    assert_eq!(hidden(&html, "_csrf"), csrf, "this sign-in's token");
    assert_eq!(feedbacks(&app.events("rep", rep).await), 0);
    let again: Vec<(String, String)> = html
        .split("<input type=\"hidden\" name=\"")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once("\" value=\"")?;
            let value = rest.split('"').next()?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect();
    let sent = post(again, Some(ORIGIN)).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text());
    assert_eq!(
        feedbacks(&app.events("rep", rep).await),
        1,
        "sent again, once"
    );
    // Signing out from another site does not sign anyone out.
    let out = browser(
        &app,
        Method::POST,
        "/logout",
        &leader,
        Some(&[("_csrf", csrf.as_str())]),
        &[("origin", "https://evil.example")],
    )
    .await;
    out.expect(403);
    app.cleanup().await;
}

async fn a_refused_form_keeps_what_was_typed_and_names_every_error_beside_its_field(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let leader = app.leader_as(world.leader, &[world.team]);
    let (csrf, key) = open_form(&app, rep, &leader).await;
    let competency = world.competency.to_string();
    let form = [
        ("_csrf", csrf.as_str()),
        ("idempotency_key", key.as_str()),
        ("competency_id", competency.as_str()),
        ("kind", "constructive"),
        ("note", "   "),
        ("visibility", "private"),
        ("given_on", "2026-02-02"),
    ];
    let page = browser(
        &app,
        Method::POST,
        &format!("/reps/{rep}/feedback"),
        &leader,
        Some(&form),
        &[],
    )
    .await;
    page.expect(422);
    let html = page.text();
    assert!(html.contains("Nothing was recorded"), "{html}");
    assert!(
        html.contains("id=\"note\" name=\"note\" rows=\"5\" aria-invalid=\"true\" aria-describedby=\"note-error\" autofocus"),
        "the note is marked, described by its error and focused: {html}"
    );
    assert!(
        html.contains("<p class=\"field-error\" id=\"note-error\">"),
        "{html}"
    );
    assert!(
        html.contains(&format!("<option value=\"{competency}\" selected>")),
        "the chosen competency is kept: {html}"
    );
    assert!(html.contains("value=\"constructive\" checked"), "{html}");
    assert!(html.contains("value=\"private\" checked"), "{html}");
    assert_eq!(
        hidden(&html, "idempotency_key"),
        key,
        "the same key, so a retry records once"
    );
    // Sent empty, every empty field is marked at once: the API stops at
    // the first thing it cannot read (the competency), but a person should
    // not need a round trip for each field.
    let empty = [
        ("_csrf", csrf.as_str()),
        ("idempotency_key", key.as_str()),
        ("competency_id", ""),
        ("kind", "praise"),
        ("note", ""),
        ("visibility", "shared"),
        ("given_on", ""),
    ];
    let page = browser(
        &app,
        Method::POST,
        &format!("/reps/{rep}/feedback"),
        &leader,
        Some(&empty),
        &[],
    )
    .await;
    page.expect(422);
    let html = page.text();
    for field in ["competency_id", "note", "given_on"] {
        assert!(
            html.contains(&format!(
                "<p class=\"field-error\" id=\"{field}-error\">Required"
            )),
            "{field} is marked: {html}"
        );
    }
    assert_eq!(feedbacks(&app.events("rep", rep).await), 0);
    app.cleanup().await;
}

async fn forms_are_refused_as_they_open_to_whom_they_are_not_for_and_a_hand_made_one_records_nothing(
    kind: Kind,
) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let token = app.rep(rep);
    let page = shown(&app, &format!("/reps/{rep}"), &token).await;
    assert!(!page.contains("Give feedback"), "no form for a rep");
    // The form itself is refused before anything is typed in it, to a rep
    // and to an auditor alike; so are the small forms of what leaders
    // record, and every form to an auditor, who records nothing: a rep's
    // own support request included.
    let (for_a_rep, for_an_auditor) = (
        "This form is for a rep",
        "Auditors read everything and write nothing",
    );
    let auditor = app.auditor();
    let mut refusals = Vec::new();
    for form in ["feedback", "coaching", "assessment"] {
        refusals.push((&token, form, for_a_rep));
        refusals.push((&auditor, form, for_an_auditor));
    }
    refusals.extend([
        (&token, "measurements/new", for_a_rep),
        (&token, "improvement-plans/new", for_a_rep),
        (&auditor, "improvement-plans/new", for_an_auditor),
        (&auditor, "support-requests/new", for_an_auditor),
    ]);
    for (who, form, refused) in refusals {
        let opened = browser(
            &app,
            Method::GET,
            &format!("/reps/{rep}/{form}"),
            who,
            None,
            &[],
        )
        .await;
        assert_eq!(opened.status, StatusCode::FORBIDDEN, "{form}");
        assert!(opened.text().contains(refused), "{form}: {}", opened.text());
        assert!(opened.text().contains("Not a form for you"), "{form}");
    }
    // The rep's own form stays open to the rep.
    let own = browser(
        &app,
        Method::GET,
        &format!("/reps/{rep}/support-requests/new"),
        &token,
        None,
        &[],
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text());
    // A form made by hand, with the rep's own CSRF token.
    let (csrf, key) = (hidden(&page, "_csrf"), uuid::Uuid::now_v7().to_string());
    let competency = world.competency.to_string();
    let leader = world.leader.to_string();
    let form = [
        ("_csrf", csrf.as_str()),
        ("idempotency_key", key.as_str()),
        ("leader_id", leader.as_str()),
        ("competency_id", competency.as_str()),
        ("kind", "praise"),
        ("note", "Praising myself"),
        ("visibility", "shared"),
        ("given_on", "2026-02-02"),
    ];
    let sent = browser(
        &app,
        Method::POST,
        &format!("/reps/{rep}/feedback"),
        &token,
        Some(&form),
        &[],
    )
    .await;
    sent.expect(403);
    assert_eq!(feedbacks(&app.events("rep", rep).await), 0);
    app.cleanup().await;
}

/// Every record's date would fall before a rep who starts next month
/// joined: their page says when recording starts and offers no leader's
/// form until then.
async fn a_rep_who_has_not_started_yet_is_offered_no_leader_forms(kind: Kind) {
    let (app, world, _) = serving_with_a_rep(kind).await;
    let start = chrono::Utc::now().date_naive() + chrono::Days::new(30);
    let rep = app
        .post_json(
            "/v1/reps",
            &app.admin(),
            &serde_json::json!({
                "name": "Nia New", "role": "SDR", "team_id": world.team, "start_date": start,
            }),
        )
        .await
        .expect(201)
        .id();
    project(&app).await;
    let leader = app.leader_as(world.leader, &[world.team]);
    let html = shown(&app, &format!("/reps/{rep}"), &leader).await;
    assert!(html.contains(&format!("starts on {start}")), "{html}");
    assert!(
        !html.contains(&format!("href=\"/reps/{rep}/coaching\"")),
        "{html}"
    );
    assert!(
        !html.contains(&format!("href=\"/reps/{rep}/feedback\"")),
        "{html}"
    );
    app.cleanup().await;
}

async fn a_leader_logs_a_coaching_session_with_two_action_items_through_the_form(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let leader = app.leader_as(world.leader, &[world.team]);
    let path = format!("/reps/{rep}/coaching");
    let page = browser(&app, Method::GET, &path, &leader, None, &[]).await;
    page.expect(200);
    let html = page.text();
    let (csrf, key) = (hidden(&html, "_csrf"), hidden(&html, "idempotency_key"));
    let focus = format!("focus.{}", world.competency);
    let mut form = vec![
        ("_csrf", csrf.as_str()),
        ("idempotency_key", key.as_str()),
        ("rows", "2"),
        ("held_on", "2026-02-09"),
        ("duration_minutes", "45"),
        (focus.as_str(), "on"),
        ("notes", "Role-played the pricing objection."),
        ("visibility", "shared"),
        (
            "action_items[0].description",
            "Rewrite the discovery script",
        ),
        ("action_items[0].owner", "rep"),
        ("action_items[0].due_on", "2026-02-20"),
        ("action_items[1].description", "Send the pricing one-pager"),
        ("action_items[1].owner", "leader"),
        ("action_items[1].due_on", "not a date"),
    ];
    // "Add another action item" records nothing and shows a third row.
    let mut more = form.clone();
    more.push(("more", "1"));
    let grown = browser(&app, Method::POST, &path, &leader, Some(&more), &[]).await;
    grown.expect(200);
    assert!(
        grown
            .text()
            .contains("name=\"action_items[2].description\""),
        "{}",
        grown.text()
    );
    assert_eq!(hidden(&grown.text(), "rows"), "3");
    // The keyboard goes to the new row, and only there.
    assert!(
        grown
            .text()
            .contains("name=\"action_items[2].description\" value=\"\" autofocus>"),
        "{}",
        grown.text()
    );
    assert_eq!(grown.text().matches("autofocus").count(), 1);
    // A bad date in the second row is shown beside that row's date.
    let refused = browser(&app, Method::POST, &path, &leader, Some(&form), &[]).await;
    refused.expect(422);
    let html = refused.text();
    assert!(
        html.contains("id=\"action_items-1-due_on-error\""),
        "the second row's date is marked: {html}"
    );
    assert!(
        html.contains("value=\"Send the pricing one-pager\""),
        "typed text kept: {html}"
    );
    assert_eq!(
        app.events("rep", rep).await.len(),
        1,
        "nothing recorded yet"
    );
    // Every field left empty or unreadable is marked in one answer, the
    // first row's empty due date in the picker's words: none of them waits
    // for the others to be mended first.
    let mut empty = form.clone();
    for (name, value) in empty.iter_mut() {
        if ["held_on", "notes", "action_items[0].due_on"].contains(name) {
            *value = "";
        }
    }
    let refused = browser(&app, Method::POST, &path, &leader, Some(&empty), &[]).await;
    refused.expect(422);
    let html = refused.text();
    for (field, words) in [
        ("held_on", "Required: pick the day the session was held."),
        ("notes", "Required: write what you worked on."),
        ("action_items-0-due_on", "Required: pick the day it is due."),
        ("action_items-1-due_on", "not a date"),
    ] {
        assert!(
            html.contains(&format!("<p class=\"field-error\" id=\"{field}-error\">"))
                && html[html.find(&format!("id=\"{field}-error\">")).unwrap_or(0)..]
                    .split("</p>")
                    .next()
                    .is_some_and(|shown| shown.contains(words)),
            "{field} says {words:?}: {html}"
        );
    }
    // The domain's refusals stand beside their fields too: the row due
    // before the session, named by its place in the list, and a length
    // out of range, in the domain's words.
    form[13].1 = "2026-02-01";
    let refused = browser(&app, Method::POST, &path, &leader, Some(&form), &[]).await;
    refused.expect(422);
    let html = refused.text();
    let beside = |field: &str| {
        let at = html
            .find(&format!("id=\"{field}-error\">"))
            .unwrap_or_else(|| panic!("no error beside {field}: {html}"));
        html[at..]
            .split("</p>")
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        beside("action_items-1-due_on").contains("Action item 2 is due on 2026-02-01"),
        "{html}"
    );
    assert!(
        html.contains("max=\"480\" id=\"duration_minutes\""),
        "{html}"
    );
    form[13].1 = "2026-02-27";
    form[4].1 = "500";
    let refused = browser(&app, Method::POST, &path, &leader, Some(&form), &[]).await;
    refused.expect(422);
    let html = refused.text();
    let at = html
        .find("id=\"duration_minutes-error\">")
        .unwrap_or_else(|| panic!("no error beside the length: {html}"));
    assert!(html[at..].contains("between 1 and 480 minutes"), "{html}");
    form[4].1 = "45";
    let sent = browser(&app, Method::POST, &path, &leader, Some(&form), &[]).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text());
    let events = app.events("rep", rep).await;
    let session = events
        .iter()
        .find(|e| e.event_type == "CoachingSessionHeld")
        .expect("the session");
    let items = session.payload["action_items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["description"], "Send the pricing one-pager");
    assert_eq!(session.payload["focus"][0], world.competency.to_string());
    assert_eq!(session.metadata.actor, world.leader.to_string());
    app.cleanup().await;
}

async fn a_rep_acknowledges_feedback_and_completes_an_item_from_their_page(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let feedback = app.give_feedback(&world, rep).await;
    let item = app.action_item(&world, rep).await;
    project(&app).await;
    let token = app.rep(rep);
    let leader = app.leader(&[world.team]);
    let seen = shown(&app, &format!("/reps/{rep}"), &leader).await;
    assert!(seen.contains("Not acknowledged by the rep yet"), "{seen}");
    let html = shown(&app, &format!("/reps/{rep}"), &token).await;
    assert!(html.contains("Not acknowledged yet"), "{html}");
    let acknowledge = format!("/reps/{rep}/feedback/{feedback}/acknowledgement");
    let complete = format!("/reps/{rep}/action-items/{item}/completion");
    assert!(
        html.contains(&format!("action=\"{acknowledge}\"")),
        "{html}"
    );
    assert!(html.contains(&format!("action=\"{complete}\"")), "{html}");
    // Each button's name says, to a screen reader, which record it acts on.
    assert!(
        html.contains("Acknowledge<span class=\"vh\"> the feedback of 20"),
        "{html}"
    );
    assert!(html.contains("Mark done<span class=\"vh\"> "), "{html}");
    let csrf = hidden(&html, "_csrf");
    for path in [&acknowledge, &complete] {
        let key = uuid::Uuid::now_v7().to_string();
        let fields = [("_csrf", csrf.as_str()), ("idempotency_key", key.as_str())];
        let sent = browser(&app, Method::POST, path, &token, Some(&fields), &[]).await;
        assert_eq!(
            sent.status,
            StatusCode::SEE_OTHER,
            "{path}: {}",
            sent.text()
        );
    }
    let types: Vec<String> = app
        .events("rep", rep)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert!(
        types.contains(&"FeedbackAcknowledged".to_owned()),
        "{types:?}"
    );
    assert!(
        types.contains(&"ActionItemCompleted".to_owned()),
        "{types:?}"
    );
    // Their leader sees that it was acknowledged, and when.
    project(&app).await;
    let seen = shown(&app, &format!("/reps/{rep}"), &leader).await;
    let on = chrono::Utc::now().date_naive();
    assert!(
        seen.contains(&format!("Acknowledged by the rep on {on}"))
            && !seen.contains("Not acknowledged by the rep yet"),
        "{seen}"
    );
    // As of the day before, it was not acknowledged yet.
    let before = on.pred_opt().expect("a day before");
    let then = shown(&app, &format!("/reps/{rep}?as_of={before}"), &leader).await;
    assert!(
        then.contains("Not acknowledged by the rep yet")
            && !then.contains("Acknowledged by the rep on"),
        "{then}"
    );
    // Another rep's item, by a hand-made form: refused, nothing recorded.
    let other = app.join_rep(world.team).await;
    project(&app).await;
    let other_token = app.rep(other);
    let other_page = browser(
        &app,
        Method::GET,
        &format!("/reps/{other}"),
        &other_token,
        None,
        &[],
    )
    .await;
    let other_csrf = hidden(&other_page.text(), "_csrf");
    let forged = browser(
        &app,
        Method::POST,
        &complete,
        &other_token,
        Some(&[("_csrf", other_csrf.as_str())]),
        &[],
    )
    .await;
    forged.expect(403);
    app.cleanup().await;
}

async fn a_leader_assesses_a_skill_with_each_level_described_by_its_rubric(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let leader = app.leader_as(world.leader, &[world.team]);
    let path = format!("/reps/{rep}/assessment");
    let choose = browser(&app, Method::GET, &path, &leader, None, &[]).await;
    choose.expect(200);
    let link = format!("{path}?competency={}", world.competency);
    assert!(
        choose.text().contains(&link),
        "a link per competency: {}",
        choose.text()
    );
    let page = browser(&app, Method::GET, &link, &leader, None, &[]).await;
    page.expect(200);
    let html = page.text();
    assert!(
        html.contains("value=\"3\"> <span><strong>3</strong> — Asks follow-up questions</span>"),
        "each level beside its rubric text: {html}"
    );
    let (csrf, key) = (hidden(&html, "_csrf"), hidden(&html, "idempotency_key"));
    let competency = world.competency.to_string();
    let mut form = vec![
        ("_csrf", csrf.as_str()),
        ("idempotency_key", key.as_str()),
        ("competency_id", competency.as_str()),
        ("level", "6"),
        ("evidence", "Three discovery calls reviewed."),
        ("assessed_on", "2026-02-05"),
    ];
    let refused = browser(&app, Method::POST, &path, &leader, Some(&form), &[]).await;
    refused.expect(422);
    assert!(
        refused.text().contains("id=\"level-error\""),
        "{}",
        refused.text()
    );
    assert!(refused.text().contains("Three discovery calls reviewed."));
    // A fieldset takes no focus: the first level does, and every level is
    // marked, the group described by its error.
    let html = refused.text();
    assert!(
        html.contains("<fieldset class=\"field\" id=\"level\" aria-describedby=\"level-error\">"),
        "{html}"
    );
    assert!(
        html.contains("name=\"level\" value=\"1\" aria-invalid=\"true\" autofocus>"),
        "{html}"
    );
    assert_eq!(html.matches("name=\"level\" value=").count(), 5);
    assert_eq!(html.matches("aria-invalid=\"true\"").count(), 5, "{html}");
    form[3].1 = "4";
    let sent = browser(&app, Method::POST, &path, &leader, Some(&form), &[]).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text());
    let events = app.events("rep", rep).await;
    let assessed = events
        .iter()
        .find(|e| e.event_type == "SkillAssessed")
        .expect("the assessment");
    assert_eq!(assessed.payload["level"], 4);
    app.cleanup().await;
}

/// The page a form leads to shows what it recorded, though the projector
/// applies it a moment later: the form waits for the read models. (A rep who
/// marked an item done saw it still listed, with its button.)
async fn the_page_a_form_leads_to_shows_what_it_recorded(kind: Kind) {
    let app = TestApp::spawn_serving_showing_writes(kind, std::time::Duration::from_secs(20)).await;
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let item = app.action_item(&world, rep).await;
    project(&app).await;
    let token = app.rep(rep);
    let page = shown(&app, &format!("/reps/{rep}"), &token).await;
    let complete = format!("/reps/{rep}/action-items/{item}/completion");
    let form = format!("action=\"{complete}\"");
    assert!(page.contains(&form), "listed before: {page}");
    let csrf = hidden(&page, "_csrf");
    let key = uuid::Uuid::now_v7().to_string();
    let fields = [("_csrf", csrf.as_str()), ("idempotency_key", key.as_str())];
    // The projector, as `serve` runs it behind the log, applies the write
    // only after a while.
    let ((sent, after), ()) = tokio::join!(
        async {
            let sent = browser(&app, Method::POST, &complete, &token, Some(&fields), &[]).await;
            let location = sent.header("location").unwrap_or_default().to_owned();
            let after = browser(&app, Method::GET, &location, &token, None, &[]).await;
            (sent, after)
        },
        async {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            project(&app).await;
        }
    );
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text());
    after.expect(200);
    // Said in the section the redirect lands on, where the list changed.
    assert!(
        location_fragment_is(&sent, "#todo")
            && after.text().contains(
                "<h2 id=\"todo-h\">To do</h2><p class=\"notice ok\" role=\"status\">Marked done.</p>"
            ),
        "{}",
        after.text()
    );
    assert_eq!(after.text().matches("Marked done.").count(), 1);
    assert!(
        !after.text().contains(&form),
        "still listed: {}",
        after.text()
    );
    app.cleanup().await;
}

/// A leader's own follow-up from a coaching session is theirs to mark done:
/// the rep page offers them the button (the rep's items stay the rep's),
/// and pressing it records it.
async fn a_leader_marks_their_own_follow_up_done_from_the_rep_page(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let mut body = crate::http::session_body(&world);
    body["action_items"] = serde_json::json!([
        { "description": "Send the pricing deck", "owner": "leader", "due_on": "2026-02-20" },
    ]);
    let made = app
        .post_json(
            &format!("/v1/reps/{rep}/coaching-sessions"),
            &app.admin(),
            &body,
        )
        .await;
    made.expect(201);
    let leaders = made.json["action_item_ids"][0]
        .as_str()
        .expect("an id")
        .to_owned();
    let reps = app.action_item(&world, rep).await;
    app.support_request(rep).await;
    project(&app).await;
    // Their home lists what waits on them: their follow-up, not the rep's,
    // and the rep's support request.
    let me = app.leader_as(world.leader, &[world.team]);
    let home = shown(&app, "/home", &me).await;
    assert!(
        home.contains("Your follow-ups (1)")
            && home.contains(&format!(
                "<li>Send the pricing deck <span class=\"muted\">for <a href=\"/reps/{rep}#items\">"
            ))
            && home.contains("due 2026-02-20</span> <span class=\"tag overdue\">overdue</span>"),
        "{home}"
    );
    assert!(
        home.contains("Support requests open (1)")
            && home.contains(": The dialer licence expired <span class=\"muted\">(tools, raised 2026-02-15)</span> <span class=\"tag overdue\">not acknowledged yet</span>"),
        "{home}"
    );
    let token = app.leader(&[world.team]);
    let other = shown(&app, "/home", &token).await;
    assert!(
        other.contains("Your follow-ups (0)"),
        "another leader's: {other}"
    );
    let html = shown(&app, &format!("/reps/{rep}"), &token).await;
    let complete = |item: &str| format!("action=\"/reps/{rep}/action-items/{item}/completion\"");
    assert!(html.contains(&complete(&leaders)), "{html}");
    assert!(
        !html.contains(&complete(&reps.to_string())),
        "the rep's own: {html}"
    );
    let csrf = hidden(&html, "_csrf");
    let key = uuid::Uuid::now_v7().to_string();
    let fields = [("_csrf", csrf.as_str()), ("idempotency_key", key.as_str())];
    let path = format!("/reps/{rep}/action-items/{leaders}/completion");
    let sent = browser(&app, Method::POST, &path, &token, Some(&fields), &[]).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text());
    let completed = app
        .events("rep", rep)
        .await
        .into_iter()
        .filter(|e| e.event_type == "ActionItemCompleted")
        .count();
    assert_eq!(completed, 1);
    project(&app).await;
    let home = shown(&app, "/home", &me).await;
    assert!(
        home.contains("Your follow-ups (0)") && home.contains("every follow-up you took on"),
        "{home}"
    );
    app.cleanup().await;
}

/// The retraction form says which record it retracts, as the timeline names
/// it, before anyone writes why.
async fn the_retraction_form_names_the_record_it_retracts(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let feedback = app.give_feedback(&world, rep).await;
    project(&app).await;
    let token = app.leader(&[world.team]);
    let path = format!("/reps/{rep}/corrections/new?fact={feedback}&as=retract");
    let page = browser(&app, Method::GET, &path, &token, None, &[]).await;
    page.expect(200);
    let html = page.text();
    assert!(html.contains("of 2026-02-02"), "{html}");
    assert!(
        html.contains("“You asked about the budget cycle before pitching: keep doing that.”"),
        "{html}"
    );
    app.cleanup().await;
}

/// A level corrected twice says both corrections on its card, and the
/// correction form opened from an older link says what it was corrected
/// to already.
async fn a_level_corrected_twice_says_both_and_a_stale_form_says_so(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let admin = app.admin();
    let assessment = app
        .post_json(
            &format!("/v1/reps/{rep}/skill-assessments"),
            &admin,
            &crate::http::assessment_body(&world, 2),
        )
        .await
        .expect(201)
        .id();
    for (level, reason) in [(3, "Misread the rubric"), (4, "Second opinion from the VP")] {
        app.post_json(
            &format!("/v1/reps/{rep}/corrections"),
            &admin,
            &serde_json::json!({ "fact_id": assessment, "reason": reason,
                "correction": { "kind": "skill_level", "level": level,
                                "evidence": "Re-rated against the rubric." } }),
        )
        .await
        .expect(200);
    }
    project(&app).await;
    let token = app.leader(&[world.team]);
    let page = shown(&app, &format!("/reps/{rep}"), &token).await;
    assert!(
        page.contains(
            "corrected to level 3: Misread the rubric; then corrected to level 4: \
             Second opinion from the VP"
        ),
        "{page}"
    );
    let path = format!("/reps/{rep}/corrections/new?fact={assessment}&as=level");
    let form = shown(&app, &path, &token).await;
    assert!(
        form.contains("assessed at level 2</strong> of 2026-02-05")
            && form.contains("<strong>Already corrected to level 3"),
        "{form}"
    );
    app.cleanup().await;
}

/// A rep the leader coached who has since moved to a team they do not lead
/// keeps their row on the leader's scorecard, without a link the leader
/// could not open.
async fn a_scorecard_does_not_link_to_a_rep_the_leader_no_longer_sees(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    app.action_item(&world, rep).await;
    app.post_json(
        &format!("/v1/reps/{rep}/team-moves"),
        &app.admin(),
        &serde_json::json!({ "team_id": world.other_team, "on": "2026-03-02" }),
    )
    .await
    .expect(200);
    project(&app).await;
    let token = app.leader_as(world.leader, &[world.team]);
    let html = shown(
        &app,
        &format!("/leaders/{}?from=2026-01-01&to=2026-12-31", world.leader),
        &token,
    )
    .await;
    assert!(html.contains("(now on another team)"), "{html}");
    assert!(!html.contains(&format!("href=\"/reps/{rep}\"")), "{html}");
    let opened = browser(
        &app,
        Method::GET,
        &format!("/reps/{rep}"),
        &token,
        None,
        &[],
    )
    .await;
    assert_eq!(
        opened.status,
        StatusCode::FORBIDDEN,
        "as the link would have led"
    );
    app.cleanup().await;
}

crate::http::on_each_backend!(
    multi_thread: a_leader_gives_feedback_through_the_form_and_a_double_submit_or_a_resend_after_back_records_once,
    a_form_without_its_csrf_token_or_from_another_site_records_nothing_and_a_stale_one_is_offered_back,
    a_refused_form_keeps_what_was_typed_and_names_every_error_beside_its_field,
    forms_are_refused_as_they_open_to_whom_they_are_not_for_and_a_hand_made_one_records_nothing,
    a_rep_who_has_not_started_yet_is_offered_no_leader_forms,
    a_leader_logs_a_coaching_session_with_two_action_items_through_the_form,
    a_rep_acknowledges_feedback_and_completes_an_item_from_their_page,
    the_page_a_form_leads_to_shows_what_it_recorded,
    a_leader_marks_their_own_follow_up_done_from_the_rep_page,
    the_retraction_form_names_the_record_it_retracts,
    a_level_corrected_twice_says_both_and_a_stale_form_says_so,
    a_scorecard_does_not_link_to_a_rep_the_leader_no_longer_sees,
    a_leader_assesses_a_skill_with_each_level_described_by_its_rubric,
);

/// Every route the router declares (writes, reads, webhooks, pages and the
/// operational ones) and a path it does not: each answer carries a
/// Content-Security-Policy without inline script, `nosniff`, no framing, a
/// referrer policy and (but the icon's) `Cache-Control: no-store`; a page's
/// policy allows its one script by hash only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_with_the_security_headers() {
    let (app, _world, rep) = serving_with_a_rep(Kind::Sqlite).await;
    let mut routes = crate::http::declared_routes();
    routes.extend(crate::http::declared_query_routes());
    routes.extend(crate::http::declared_webhook_routes());
    routes.extend(crate::http::declared_dashboard_routes());
    routes.push(("GET".into(), "/no/such/route".into()));
    let admin = app.admin();
    let mut checked = 0;
    for (method, path) in &routes {
        let concrete: String = path
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    rep.to_string()
                } else {
                    s.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        for token in ["", admin.as_str()] {
            let r = browser(&app, method.clone(), &concrete, token, None, &[]).await;
            let csp = r.header("content-security-policy").unwrap_or_else(|| {
                panic!("{method} {concrete} answered {} without a CSP", r.status)
            });
            assert!(
                csp.contains("frame-ancestors 'none'"),
                "{method} {concrete}: {csp}"
            );
            assert!(
                !csp.contains("'unsafe-inline' 'self'")
                    && !script_src(csp).contains("unsafe-inline"),
                "{method} {concrete}: inline script allowed: {csp}"
            );
            assert_eq!(
                r.header("x-content-type-options"),
                Some("nosniff"),
                "{method} {concrete}"
            );
            assert_eq!(
                r.header("x-frame-options"),
                Some("DENY"),
                "{method} {concrete}"
            );
            assert!(r.header("referrer-policy").is_some(), "{method} {concrete}");
            // Nothing about people is kept by a browser or a proxy; only
            // the icon says how long it may be.
            if !concrete.starts_with("/favicon") {
                assert_eq!(
                    r.header("cache-control"),
                    Some("no-store"),
                    "{method} {concrete}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked} answers checked");
    let page = browser(
        &app,
        Method::GET,
        &format!("/reps/{rep}/review"),
        &admin,
        None,
        &[],
    )
    .await;
    page.expect(200);
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(script_src(csp).starts_with("script-src 'sha256-"), "{csp}");
    // A signed-in page is not kept by the browser: Back after sign-out
    // must not show it again.
    for path in [
        format!("/reps/{rep}"),
        format!("/reps/{rep}/review"),
        "/home".into(),
    ] {
        let page = browser(&app, Method::GET, &path, &admin, None, &[]).await;
        assert_eq!(page.header("cache-control"), Some("no-store"), "{path}");
    }
    assert!(page.text().contains("data-print") && !page.text().contains("onclick"));
    // The pages' icon, unsigned-in, where a page links it and where a
    // browser asks for it unbidden, and which the pages' policy allows.
    assert!(
        page.text()
            .contains("<link rel=\"icon\" href=\"/favicon.svg\"")
    );
    for path in ["/favicon.svg", "/favicon.ico"] {
        let icon = browser(&app, Method::GET, path, "", None, &[]).await;
        assert_eq!(icon.status, StatusCode::OK, "{path}");
        assert_eq!(icon.header("content-type"), Some("image/svg+xml"), "{path}");
        assert!(icon.text().starts_with("<svg"), "{path}");
    }
    assert!(csp.contains("img-src 'self'"), "{csp}");
    app.cleanup().await;
}

/// The `script-src` directive of a policy (empty when there is none).
fn script_src(csp: &str) -> &str {
    csp.split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .unwrap_or("")
}

/// After sign-in `next` leads only to a path here: a tab or a newline that a
/// browser would drop, `//host` and `/\host` all land on the viewer's start
/// page instead (never another site, never a 500). A sign-in another site
/// started (a form it posted, a link or image on it the browser followed)
/// is refused and sets no cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_leads_only_to_a_path_here_and_refuses_one_another_site_started() {
    let (app, world, _rep) = serving_with_a_rep(Kind::Sqlite).await;
    let token = app.leader_as(world.leader, &[world.team]);
    let start = format!("/teams/{}", world.team);
    let login = |next: &str, extra: Vec<(&'static str, &'static str)>| {
        let path = format!("/login?token={token}&next={next}");
        let mut headers = vec![("host", HOST)];
        headers.extend(extra);
        build_request(Method::GET, &path, "", None, "", &headers)
    };
    for (next, lands) in [
        ("/%09/evil.example", start.as_str()),
        ("/%0d%0aX:1", start.as_str()),
        ("//evil.example", start.as_str()),
        ("/%5Cevil.example", start.as_str()),
        ("https://evil.example/", start.as_str()),
        ("/reps?x=1", "/reps?x=1"),
    ] {
        let r = app.send(login(next, vec![])).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "next={next}: {}", r.text());
        assert_eq!(r.header("location"), Some(lands), "next={next}");
        assert!(r.header("set-cookie").is_some(), "next={next}");
    }
    for extra in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("origin", "https://evil.example")],
    ] {
        let r = app.send(login("/home", extra.clone())).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{extra:?}");
        assert!(r.header("set-cookie").is_none(), "{extra:?}: no cookie");
    }
    let form = format!("token={token}");
    let posted = app
        .send(build_request(
            Method::POST,
            "/login",
            "",
            Some("application/x-www-form-urlencoded"),
            form,
            &[("host", HOST), ("origin", "https://evil.example")],
        ))
        .await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN);
    assert!(posted.header("set-cookie").is_none());
    app.cleanup().await;
}

/// An address with no page (a mistyped or old link) answers a person's
/// browser with a page that says so and leads home, not the API's JSON; a
/// client of the API, and any path under `/v1/`, still gets the problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_with_no_page_answers_a_browser_with_a_page_and_a_client_with_a_problem() {
    let app = TestApp::spawn_serving(Kind::Sqlite).await;
    let html = [("accept", "text/html,application/xhtml+xml,*/*;q=0.8")];
    let page = browser(&app, Method::GET, "/setup", "", None, &html).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        page.header("content-type")
    );
    assert!(
        page.text().contains("<h1>Page not found</h1>"),
        "{}",
        page.text()
    );
    assert!(page.text().contains("href=\"/home\""), "{}", page.text());
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(
        script_src(csp).is_empty() && csp.contains("default-src 'none'"),
        "{csp}"
    );

    for (path, accept) in [
        ("/setup", "application/json"),
        ("/v1/no-such-thing", "text/html"),
    ] {
        let r = browser(&app, Method::GET, path, "", None, &[("accept", accept)]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{path}"
        );
        assert!(r.text().contains("/openapi.json"), "{path}: {}", r.text());
    }
    app.cleanup().await;
}

/// The home page counts a team's reps in words that agree with the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_home_page_counts_one_rep_as_one_rep() {
    let (app, _world, _rep) = serving_with_a_rep(Kind::Sqlite).await;
    let html = shown(&app, "/home", &app.admin()).await;
    assert!(html.contains("1 rep has been on this team."), "{html}");
    assert!(!html.contains("1 reps"), "{html}");
    app.cleanup().await;
}

/// A new installation's home leads its admin to Set up, and tells a leader
/// with no team who forms teams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_home_says_where_teams_come_from() {
    let app = TestApp::spawn_serving(Kind::Sqlite).await;
    let html = shown(&app, "/home", &app.admin()).await;
    assert!(
        html.contains("No team yet. Open <a href=\"/admin\">Set up</a> to form the first team"),
        "{html}"
    );
    let html = shown(&app, "/home", &app.leader(&[])).await;
    assert!(
        html.contains("No team of yours to show yet: an admin forms the teams"),
        "{html}"
    );
    app.cleanup().await;
}

/// Whether a redirect sends the browser to `fragment` of its page.
fn location_fragment_is(sent: &crate::http::Resp, fragment: &str) -> bool {
    sent.header("location")
        .is_some_and(|location| location.ends_with(fragment))
}

/// A leader's feedback, once recorded, is said at the head of the timeline
/// the browser is sent to, not at the top of the page out of view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_form_recorded_is_said_where_the_browser_lands() {
    let (app, world, rep) = serving_with_a_rep(Kind::Sqlite).await;
    let leader = app.leader_as(world.leader, &[world.team]);
    let page = format!("/reps/{rep}?recorded=feedback");
    let html = shown(&app, &page, &leader).await;
    assert!(
        html.contains(
            "<h2 id=\"timeline\">Coaching and feedback</h2><p class=\"notice ok\" role=\"status\">Feedback recorded.</p>"
        ),
        "{html}"
    );
    assert_eq!(html.matches("Feedback recorded.").count(), 1);
    // A leader's "Mark done" lands where the rep's own to-do list would be,
    // which a leader's page has not: said at the top.
    let html = shown(&app, &format!("/reps/{rep}?recorded=completed"), &leader).await;
    assert_eq!(html.matches("Marked done.").count(), 1, "{html}");
    let notice = html.find("Marked done.").expect("the notice");
    assert!(notice < html.find("<h2").expect("a heading"), "{html}");
    // A review that changed nothing is said beside the reviews, where the
    // browser lands, not at the top.
    app.post_json(
        &format!("/v1/reps/{rep}/reviews"),
        &app.admin(),
        &serde_json::json!({ "period_from": "2026-01-05",
            "period_to": "2026-03-31", "packet_sha256": "ab".repeat(32), "on": "2026-04-02" }),
    )
    .await
    .expect(201);
    settle(&app).await;
    let html = shown(&app, &format!("/reps/{rep}?unchanged=reviews"), &leader).await;
    let notice = html.find("Nothing changed").expect("the notice");
    assert!(
        notice > html.find("id=\"reviews\"").expect("the reviews"),
        "{html}"
    );
    // One that names no section is said at the top.
    let html = shown(&app, &format!("/reps/{rep}?recorded=measurement"), &leader).await;
    let notice = html.find("Measurement recorded.").expect("the notice");
    assert!(notice < html.find("<h2").expect("a heading"), "{html}");
    app.cleanup().await;
}

/// A follow-up the leader owes that fell due before the scorecard's range
/// and is still open is owed all the same: the card says so, though its
/// figures count what fell due in the range ("0 overdue").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scorecard_names_follow_ups_still_overdue_from_before_its_range() {
    let (app, world, rep) = serving_with_a_rep(Kind::Sqlite).await;
    let mut session = crate::http::session_body(&world);
    session["action_items"] = serde_json::json!([
        { "description": "Introduce the rep to the solutions engineer", "owner": "leader", "due_on": "2026-02-20" },
    ]);
    app.post_json(
        &format!("/v1/reps/{rep}/coaching-sessions"),
        &app.admin(),
        &session,
    )
    .await
    .expect(201);
    project(&app).await;
    let token = app.leader_as(world.leader, &[world.team]);
    let page = |from: &'static str| {
        let (app, token) = (&app, &token);
        async move {
            shown(
                app,
                &format!("/leaders/{}?from={from}&to=2026-06-30", world.leader),
                token,
            )
            .await
        }
    };
    let html = page("2026-04-01").await;
    assert!(
        html.contains("0 due: 0 on time, 0 late, 0 dropped, 0 overdue."),
        "{html}"
    );
    assert!(
        html.contains(
            "<strong>Also overdue:</strong> 1 follow-up due before 2026-04-01, still open."
        ),
        "{html}"
    );
    // A range it falls due in counts it there, and says nothing more.
    let html = page("2026-02-01").await;
    assert!(
        html.contains("1 due: 0 on time, 0 late, 0 dropped, 1 overdue."),
        "{html}"
    );
    assert!(!html.contains("Also overdue"), "{html}");
    app.cleanup().await;
}

/// A form sent after its sign-in ended (it expired, or the viewer signed
/// out in another tab) records nothing, and what was typed is shown to
/// keep, with the way to sign in again; never for a form sent from
/// another site, whose words would read as Trellis's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_sent_after_its_sign_in_ended_shows_what_was_typed_to_keep() {
    let (app, world, rep) = serving_with_a_rep(Kind::Sqlite).await;
    let competency = world.competency.to_string();
    let form = [
        ("_csrf", "from-the-old-sign-in"),
        ("idempotency_key", "01a250b6-0000-7000-8000-000000000001"),
        ("competency_id", competency.as_str()),
        ("kind", "praise"),
        ("note", "Handled the pricing pushback calmly & clearly."),
        ("visibility", "shared"),
        ("given_on", "2026-02-02"),
    ];
    let path = format!("/reps/{rep}/feedback");
    let signed_out = browser(
        &app,
        Method::POST,
        &path,
        "",
        Some(&form),
        &[("origin", ORIGIN)],
    )
    .await;
    signed_out.expect(401);
    let html = signed_out.text();
    assert!(html.contains("Nothing was recorded."), "{html}");
    assert!(
        html.contains("<dt>Note</dt><dd>Handled the pricing pushback calmly &amp; clearly.</dd>"),
        "{html}"
    );
    assert!(html.contains("Sign in again (in a new tab)"), "{html}");
    assert!(
        !html.contains("from-the-old-sign-in"),
        "the old token is not shown: {html}"
    );
    let elsewhere = browser(
        &app,
        Method::POST,
        &path,
        "",
        Some(&form),
        &[("origin", "https://evil.example")],
    )
    .await;
    elsewhere.expect(401);
    assert!(
        !elsewhere.text().contains("pricing pushback"),
        "{}",
        elsewhere.text()
    );
    assert_eq!(
        app.event_types("rep", rep)
            .await
            .iter()
            .filter(|t| *t == "FeedbackGiven")
            .count(),
        0
    );
    app.cleanup().await;
}

/// A plan closed as extended goes on in a new one: the page the closure
/// leads to offers its leader the form to start it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_closed_as_extended_offers_the_new_plan() {
    let (app, world, rep) = serving_with_a_rep(Kind::Sqlite).await;
    let plan = app.improvement_plan(&world, rep).await;
    app.post_json(
        &format!("/v1/reps/{rep}/improvement-plans/{plan}/closure"),
        &app.admin(),
        &serde_json::json!({ "outcome": "extended", "note": "Close; four more weeks.", "on": "2026-04-27" }),
    )
    .await
    .expect(200);
    project(&app).await;
    let leader = app.leader_as(world.leader, &[world.team]);
    let html = shown(&app, &format!("/reps/{rep}?recorded=closed"), &leader).await;
    assert!(
        html.contains(&format!(
            "Improvement plan closed as extended. <a href=\"/reps/{rep}/improvement-plans/new\">Start the new plan</a>"
        )),
        "{html}"
    );
    // A rep reading their own page is offered no leader's form.
    let own = shown(&app, &format!("/reps/{rep}?recorded=closed"), &app.rep(rep)).await;
    assert!(!own.contains("Start the new plan"), "{own}");
    app.cleanup().await;
}
