//! Subject access: everything Trellis holds about a person
//! (`GET /v1/people/{id}/export`, and the dashboard's printable page
//! `/people/{id}/export` with its JSON download), for an admin or the
//! person themself, under the rules they read Trellis by.

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode};
use chrono::Utc;
use serde_json::{Value, json};
use trellis_access::NewAccount;
use trellis_http::HttpState;
use trellis_http::auth::{Role, TokenKey};
use trellis_projections::query::ReadModels;
use trellis_tests::Kind;
use uuid::Uuid;

use crate::forms::{browser, project, serving_with_a_rep, urlencode};
use crate::http::{
    Resp, SECRET, TestApp, World, assert_documented, build_request, feedback_body, on_each_backend,
    read_store, session_body,
};

const TEMPLATE: &str = "/v1/people/{person_id}/export";
const PRIVATE_NOTES: &str = "PRIVATE-COACHING: talks over the customer on every call.";
const SHARED_NOTE: &str = "SHARED-FEEDBACK: great discovery questions on the Acme call.";
const HOST: &str = "trellis.example";

/// The read API as `trellis serve` should mount it, with the sign-in
/// records (`trellis_queries::api_with_access`), over the app's log, read
/// models and access tables.
async fn reads_with_access(app: &TestApp) -> Router {
    let key = TokenKey::new(SECRET.to_vec()).expect("a 32-byte secret");
    let http = HttpState::new(app.store.clone(), key, Arc::new(trellis_http::SystemClock))
        .with_authenticator(Arc::new(app.access().clone()));
    let reads = trellis_queries::QueryState::new(
        http.clone(),
        ReadModels::new(read_store(&app.backend).await),
    );
    trellis_http::app(
        http,
        [trellis_queries::api_with_access(
            reads,
            app.access().clone(),
        )],
    )
}

async fn get(router: &Router, path: &str, token: &str) -> Resp {
    TestApp::send_via(
        router,
        build_request(Method::GET, path, token, None, Vec::new(), &[]),
    )
    .await
}

/// The document `/openapi.json` serves.
async fn document(app: &TestApp) -> Value {
    let r = app.get("/openapi.json").await;
    r.expect(200);
    r.json.clone()
}

/// Every event of one list of the export, by type.
fn types(events: &Value) -> Vec<&str> {
    events
        .as_array()
        .expect("a list of events")
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect()
}

/// Gives `rep` a sign-in account and signs them in once with a one-time
/// link, as a browser does.
async fn sign_in_once(app: &TestApp, rep: Uuid) {
    let account = app
        .access()
        .add_account(
            NewAccount {
                role: Role::Rep,
                person: Some(rep),
                name: None,
                email: Some("Riley@Example.com".into()),
                oidc_subject: Some("idp|riley".into()),
            },
            "admin:alex",
            Utc::now(),
        )
        .await
        .expect("the account");
    let (link, _) = app
        .access()
        .create_link(account.id, None, "admin:alex", Utc::now())
        .await
        .expect("a link");
    let signed_in = app
        .send(build_request(
            Method::POST,
            "/sign-in",
            "",
            Some("application/x-www-form-urlencoded"),
            urlencode(&[("link", &link)]),
            &[("host", HOST), ("origin", "http://trellis.example")],
        ))
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.text()
    );
}

/// The rep's calls in 2026-W10, at the weekly standard's target of 50
/// (their ramp is over by then).
async fn measured(app: &TestApp, rep: Uuid) {
    app.post_json(
        &format!("/v1/reps/{rep}/measurements"),
        &app.admin(),
        &json!({ "metric": "calls_made", "period": "2026-W10", "value": 50 }),
    )
    .await
    .expect(201);
}

/// A private coaching session and a shared piece of feedback from
/// `world.leader`, recorded by the leader.
async fn coached(app: &TestApp, world: &World, rep: Uuid) {
    let leader = app.leader_as(world.leader, &[world.team]);
    let mut session = session_body(world);
    session["visibility"] = json!("private");
    session["notes"] = json!(PRIVATE_NOTES);
    app.post_json(
        &format!("/v1/reps/{rep}/coaching-sessions"),
        &leader,
        &session,
    )
    .await
    .expect(201);
    let mut feedback = feedback_body(world, "2026-02-02");
    feedback["note"] = json!(SHARED_NOTE);
    feedback["visibility"] = json!("shared");
    app.post_json(&format!("/v1/reps/{rep}/feedback"), &leader, &feedback)
        .await
        .expect(201);
}

async fn an_admins_export_of_a_rep_holds_their_events_profile_and_account(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    coached(&app, &world, rep).await;
    measured(&app, rep).await;
    sign_in_once(&app, rep).await;
    project(&app).await;
    let reads = reads_with_access(&app).await;
    let doc = document(&app).await;
    let path = format!("/v1/people/{rep}/export");

    let r = get(&reads, &path, &app.admin()).await;
    r.expect(200);
    assert_documented(&doc, "GET", TEMPLATE, 200, &r.json);
    let export = &r.json;
    assert_eq!(export["person"]["id"], json!(rep));
    assert_eq!(export["person"]["kind"], json!("rep"));
    assert_eq!(export["person"]["name"], json!("Riley Rep"));
    assert_eq!(export["complete"], json!(true), "{export}");
    assert_eq!(export["left_out"], json!([]));
    // Their own stream, every event decoded, the private note included.
    let own = &export["own_stream"];
    assert_eq!(own["stream_id"], json!(format!("rep-{rep}")));
    assert_eq!(own["chain_intact"], json!(true));
    assert_eq!(
        types(&own["events"]),
        [
            "RepJoined",
            "CoachingSessionHeld",
            "FeedbackGiven",
            "PerformanceMeasured"
        ]
    );
    assert_eq!(own["events"][1]["payload"]["notes"], json!(PRIVATE_NOTES));
    assert_eq!(own["events"][1]["actor"], json!(world.leader.to_string()));
    assert!(
        own["events"][0]["occurred_at"].is_string() && own["events"][0]["recorded_at"].is_string()
    );
    // The read models about them.
    let profile = &export["read_models"]["profile"];
    assert_eq!(profile["profile"]["name"], json!("Riley Rep"));
    assert!(profile["standing"]["standing"].is_string(), "{profile}");
    assert!(
        !export["read_models"]["timeline_by_month"]
            .as_array()
            .expect("months")
            .is_empty()
    );
    // The weekly standard's attainment is in the week it was measured, and
    // in no month: each period is judged against the standards measured in it.
    let week = export["read_models"]["timeline_by_week"]
        .as_array()
        .expect("weeks")
        .iter()
        .find(|row| row["period"] == json!("2026-W10"))
        .unwrap_or_else(|| panic!("no 2026-W10: {export}"));
    assert_eq!(week["quantity_attainment"], json!(1.0), "{week}");
    assert!(
        export["read_models"]["timeline_by_month"]
            .as_array()
            .expect("months")
            .iter()
            .all(|row| row["quantity_attainment"].is_null()),
        "{export}"
    );
    assert!(
        export["read_models"]["timeline_by_quarter"].is_array(),
        "{export}"
    );
    // Their sign-in: the account, the link's times and the session it started.
    let sign_in = &export["sign_in"];
    assert_eq!(sign_in["available"], json!(true));
    assert_eq!(sign_in["account"]["email"], json!("riley@example.com"));
    assert_eq!(sign_in["account"]["oidc_subject"], json!("idp|riley"));
    assert_eq!(sign_in["account"]["role"], json!("rep"));
    let links = sign_in["sign_in_links"].as_array().expect("links");
    assert_eq!(links.len(), 1, "{sign_in}");
    assert!(links[0]["used_at"].is_string(), "{sign_in}");
    assert_eq!(sign_in["running_sessions"], json!(1), "{sign_in}");
    assert_eq!(sign_in["sessions"][0]["via"], json!("link"));
    assert!(sign_in["last_sign_in_at"].is_string());
    // What was searched, and what is not here.
    let searched: Vec<&str> = export["searched"]
        .as_array()
        .expect("searched")
        .iter()
        .filter_map(|s| s["source"].as_str())
        .collect();
    assert!(
        searched.contains(&format!("rep-{rep}").as_str()),
        "{searched:?}"
    );
    assert!(searched.iter().any(|s| s.contains("alert")), "{searched:?}");
    assert!(
        export["not_included"]
            .as_array()
            .expect("not included")
            .iter()
            .any(|n| n["what"] == json!("webhook deliveries")),
        "{export}"
    );
    // No secret, nor its hash.
    let text = r.text();
    for secret in ["hash", "token\"", "id_hash"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    // The dashboard's download is the same export.
    let download = browser(
        &app,
        Method::GET,
        &format!("/people/{rep}/export?format=json"),
        &app.admin(),
        None,
        &[],
    )
    .await;
    download.expect(200);
    assert!(
        download
            .header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment") && d.contains(".json")),
        "{:?}",
        download.headers
    );
    assert_documented(&doc, "GET", TEMPLATE, 200, &download.json);
    assert_eq!(
        download.json["sign_in"]["account"],
        export["sign_in"]["account"]
    );
    assert_eq!(download.json["own_stream"], export["own_stream"]);

    // The read API, wired as `trellis serve` wires it, shows the same.
    let api = app
        .request(Method::GET, &path, &app.admin(), None, Vec::new(), &[])
        .await;
    api.expect(200);
    assert_documented(&doc, "GET", TEMPLATE, 200, &api.json);
    assert_eq!(api.json["sign_in"]["available"], json!(true));
    assert_eq!(api.json["sign_in"]["account"], export["sign_in"]["account"]);
    assert_eq!(api.json["own_stream"], export["own_stream"]);
    app.cleanup().await;
}

async fn a_reps_own_export_leaves_out_a_private_coaching_note_and_says_so(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    coached(&app, &world, rep).await;
    project(&app).await;
    let reads = reads_with_access(&app).await;
    let doc = document(&app).await;

    let r = get(&reads, &format!("/v1/people/{rep}/export"), &app.rep(rep)).await;
    r.expect(200);
    assert_documented(&doc, "GET", TEMPLATE, 200, &r.json);
    let text = r.text();
    assert!(!text.contains(PRIVATE_NOTES), "the private note: {text}");
    assert!(
        !text.contains("Rewrite the discovery script"),
        "its action item: {text}"
    );
    assert!(text.contains(SHARED_NOTE), "{text}");
    assert_eq!(r.json["complete"], json!(false));
    assert_eq!(
        types(&r.json["own_stream"]["events"]),
        ["RepJoined", "FeedbackGiven"]
    );
    assert_eq!(r.json["own_stream"]["events_total"], json!(3));
    let left_out = r.json["left_out"].as_array().expect("left out");
    assert_eq!(left_out.len(), 1, "{left_out:?}");
    assert_eq!(left_out[0]["count"], json!(1));
    assert!(
        left_out[0]["why"].as_str().is_some_and(
            |w| w.contains("private") && w.contains("an admin can produce the complete export")
        ),
        "{left_out:?}"
    );

    // The page says the same, and shows no private note.
    let page = browser(
        &app,
        Method::GET,
        &format!("/people/{rep}/export"),
        &app.rep(rep),
        None,
        &[],
    )
    .await;
    page.expect(200);
    let html = page.text();
    assert!(
        html.contains("Everything Trellis holds about you"),
        "{html}"
    );
    assert!(html.contains("left out"), "{html}");
    assert!(html.contains("complete export"), "{html}");
    assert!(!html.contains(PRIVATE_NOTES), "{html}");
    assert!(html.contains("SHARED-FEEDBACK"), "{html}");
    // The rep's own page links to it.
    let mine = browser(
        &app,
        Method::GET,
        &format!("/reps/{rep}"),
        &app.rep(rep),
        None,
        &[],
    )
    .await;
    mine.expect(200);
    assert!(
        mine.text().contains(&format!(
            "href=\"/people/{rep}/export\">Download everything Trellis holds about me</a>"
        )),
        "{}",
        mine.text()
    );
    app.cleanup().await;
}

async fn only_an_admin_or_the_person_may_read_an_export(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let other = app.join_rep(world.team).await;
    project(&app).await;
    let reads = reads_with_access(&app).await;
    let doc = document(&app).await;
    let unknown = Uuid::now_v7();
    let refused = [
        (app.rep(rep), other, "another rep's"),
        (app.rep(rep), unknown, "an unknown id, asked by a rep"),
        (
            app.leader_as(world.leader, &[world.team]),
            rep,
            "their rep's, asked by a leader",
        ),
        (app.auditor(), rep, "a rep's, asked by an auditor"),
        (
            app.service(&["reads:read"]),
            rep,
            "a rep's, asked by a service",
        ),
    ];
    for (token, person, what) in &refused {
        let r = get(&reads, &format!("/v1/people/{person}/export"), token).await;
        r.expect_problem(403, "forbidden");
        assert_documented(&doc, "GET", TEMPLATE, 403, &r.json);
        assert!(
            !r.text().contains("Riley"),
            "{what}: a refusal says nothing of the person: {}",
            r.text()
        );
    }
    // An admin learns that there is nobody with an unknown id.
    let r = get(
        &reads,
        &format!("/v1/people/{unknown}/export"),
        &app.admin(),
    )
    .await;
    r.expect(404);
    assert_documented(&doc, "GET", TEMPLATE, 404, &r.json);
    let r = get(&reads, "/v1/people/not-a-uuid/export", &app.admin()).await;
    r.expect(404);
    let r = get(&reads, &format!("/v1/people/{rep}/export"), "").await;
    r.expect(401);
    assert_documented(&doc, "GET", TEMPLATE, 401, &r.json);
    // The page refuses the same.
    let page = browser(
        &app,
        Method::GET,
        &format!("/people/{other}/export"),
        &app.rep(rep),
        None,
        &[],
    )
    .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.text());
    app.cleanup().await;
}

async fn a_leaders_own_export_lists_the_events_they_recorded(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    coached(&app, &world, rep).await;
    // A rep the leader gave feedback to, who has since moved to a team
    // the leader does not lead.
    let moved = app.join_rep(world.team).await;
    let leader = app.leader_as(world.leader, &[world.team]);
    app.post_json(
        &format!("/v1/reps/{moved}/feedback"),
        &leader,
        &feedback_body(&world, "2026-02-03"),
    )
    .await
    .expect(201);
    app.post_json(
        &format!("/v1/reps/{moved}/team-moves"),
        &app.admin(),
        &json!({ "team_id": world.other_team, "on": "2026-03-02" }),
    )
    .await
    .expect(200);
    project(&app).await;
    let reads = reads_with_access(&app).await;
    let doc = document(&app).await;
    let path = format!("/v1/people/{}/export", world.leader);

    let r = get(&reads, &path, &leader).await;
    r.expect(200);
    assert_documented(&doc, "GET", TEMPLATE, 200, &r.json);
    let export = &r.json;
    assert_eq!(export["person"]["kind"], json!("leader"));
    assert_eq!(export["own_stream"], Value::Null);
    let elsewhere = export["events_elsewhere"].as_array().expect("events");
    let recorded: Vec<(&str, &str)> = elsewhere
        .iter()
        .filter(|e| {
            e["found_by"]
                .as_array()
                .is_some_and(|f| f.contains(&json!("recorded_by")))
        })
        .map(|e| {
            (
                e["event_type"].as_str().unwrap_or_default(),
                e["stream_id"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let stream = format!("rep-{rep}");
    assert_eq!(
        recorded,
        [
            ("CoachingSessionHeld", stream.as_str()),
            ("FeedbackGiven", stream.as_str())
        ],
        "{export}"
    );
    for e in elsewhere {
        assert_eq!(
            e["actor"] == json!(world.leader.to_string()),
            e["found_by"]
                .as_array()
                .is_some_and(|f| f.contains(&json!("recorded_by")))
        );
    }
    // The team stream names them: they were assigned to lead it.
    assert!(
        elsewhere
            .iter()
            .any(|e| e["event_type"] == json!("LeaderAssigned")
                && e["stream_id"] == json!(format!("team-{}", world.team))),
        "{export}"
    );
    // The leader wrote the private note: it is theirs to read.
    assert!(r.text().contains(PRIVATE_NOTES));
    // What they recorded about a rep of a team they no longer lead is left
    // out for them, and said so.
    assert!(!r.text().contains(&moved.to_string()), "{export}");
    let left_out = export["left_out"].as_array().expect("left out");
    assert_eq!(left_out.len(), 1, "{left_out:?}");
    assert!(left_out[0]["count"].as_u64().is_some_and(|n| n >= 1));
    assert_eq!(
        export["read_models"]["teams_led"][0]["name"],
        json!("EMEA Mid-Market")
    );
    assert!(
        export["read_models"]["leader_activity"].is_object(),
        "{export}"
    );
    // An admin's export of the leader holds it all.
    let all = get(&reads, &path, &app.admin()).await;
    all.expect(200);
    assert_eq!(all.json["complete"], json!(true));
    assert!(
        all.text().contains(&format!("rep-{moved}")),
        "{}",
        all.text()
    );

    // The leader's page renders it.
    let page = browser(
        &app,
        Method::GET,
        &format!("/people/{}/export", world.leader),
        &leader,
        None,
        &[],
    )
    .await;
    page.expect(200);
    assert!(
        page.text().contains("Coaching session held"),
        "{}",
        page.text()
    );
    app.cleanup().await;
}

async fn the_export_page_renders_escaped_and_printable(kind: Kind) {
    let (app, world, _) = serving_with_a_rep(kind).await;
    let admin = app.admin();
    let rep = app
        .post_json(
            "/v1/reps",
            &admin,
            &json!({
                "name": "<script>alert(1)</script> Rae",
                "role": "SDR",
                "team_id": world.team,
                "start_date": "2026-01-05",
            }),
        )
        .await
        .expect(201)
        .id();
    let mut feedback = feedback_body(&world, "2026-02-02");
    feedback["note"] = json!("<img src=x onerror=alert(2)> keep asking");
    app.post_json(&format!("/v1/reps/{rep}/feedback"), &admin, &feedback)
        .await
        .expect(201);
    measured(&app, rep).await;
    project(&app).await;

    let page = browser(
        &app,
        Method::GET,
        &format!("/people/{rep}/export"),
        &admin,
        None,
        &[],
    )
    .await;
    page.expect(200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.text();
    assert!(
        html.contains("Everything Trellis holds about &lt;script&gt;alert(1)&lt;/script&gt; Rae"),
        "{html}"
    );
    assert!(!html.contains("<script>alert(1)"), "{html}");
    // A weekly standard's attainment, in its own table.
    assert!(
        html.contains("<h3>Week by week</h3>")
            && html.contains(
                "<tr><td>2026-W10</td><td class=\"n\">–</td><td class=\"n\">100%</td></tr>"
            ),
        "{html}"
    );
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(
        html.contains("&lt;img src=x onerror=alert(2)&gt; keep asking"),
        "{html}"
    );
    // Printable: a print button, a JSON download, and the toolbar kept off paper.
    assert!(html.contains("data-print"), "{html}");
    assert!(
        html.contains(&format!("href=\"/people/{rep}/export?format=json\"")),
        "{html}"
    );
    assert!(html.contains("class=\"asof noprint\""), "{html}");
    // The admin reaches it from the rep's page; a leader does not see the link.
    let rep_page = browser(
        &app,
        Method::GET,
        &format!("/reps/{rep}"),
        &admin,
        None,
        &[],
    )
    .await;
    assert!(
        rep_page
            .text()
            .contains(&format!("href=\"/people/{rep}/export\"")),
        "{}",
        rep_page.text()
    );
    let leader = app.leader_as(world.leader, &[world.team]);
    let led = browser(
        &app,
        Method::GET,
        &format!("/reps/{rep}"),
        &leader,
        None,
        &[],
    )
    .await;
    led.expect(200);
    assert!(!led.text().contains("/export"), "{}", led.text());
    let bad = browser(
        &app,
        Method::GET,
        &format!("/people/{rep}/export?format=xml"),
        &admin,
        None,
        &[],
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    app.cleanup().await;
}

on_each_backend!(
    multi_thread: an_admins_export_of_a_rep_holds_their_events_profile_and_account,
    a_reps_own_export_leaves_out_a_private_coaching_note_and_says_so,
    only_an_admin_or_the_person_may_read_an_export,
    a_leaders_own_export_lists_the_events_they_recorded,
    the_export_page_renders_escaped_and_printable,
);
