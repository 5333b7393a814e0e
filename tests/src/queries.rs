//! The query service (`trellis-queries`) on both backends: the read-model
//! routes with numbers worked out by hand, who may read what, time travel
//! against what was live at each instant, the audit trail and its chain,
//! review packets and their hash, the global feed and its event stream.
//!
//! One script for every test ([`script`]): a rep, Riley, in a team led by
//! `world.leader`, written in three sittings at fixed clock times T1, T2, T3,
//! so recorded time and business time differ:
//!
//! - T1 = 2026-02-10 09:00Z: Discovery assessed 3 (on 02-05, A1); shared
//!   praise (02-02); private constructive feedback (02-06); a shared session
//!   (02-09, 45 min, Discovery) with an item Riley owes by 02-20; calls 40 in
//!   2026-W06 (target 50: 80%). Sam joins the same team.
//! - T2 = 2026-03-01 09:00Z: Discovery assessed 4 (on 02-25, A2); calls 60
//!   in W08 (120%); a support request raised 02-15 and resolved 02-18 (both
//!   recorded only now).
//! - T3 = 2026-03-20 09:00Z: A2 corrected to level 2 (recorded, and so
//!   happening, at T3); calls 50 in W05 (recorded late, about an earlier
//!   week: 100%); a private session (03-10) with an item due 03-25.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, header};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use trellis_commands::{CommandState, CommandsConfig};
use trellis_dashboard::DashboardState;
use trellis_http::auth::{Role, TokenKey};
use trellis_http::{Clock, HttpState};
use trellis_projections::engine::Engine;
use trellis_projections::growth::{Growth, GrowthSettings};
use trellis_projections::query::ReadModels;
use trellis_queries::QueryState;
use trellis_tests::{CountingStore, Kind};
use uuid::Uuid;

use crate::http::{
    Resp, SECRET, TestApp, World, assert_documented, feedback_body, read_store, session_body,
};

pub(crate) const T0: &str = "2026-01-02T09:00:00Z";
pub(crate) const T1: &str = "2026-02-10T09:00:00Z";
const T2: &str = "2026-03-01T09:00:00Z";
const T3: &str = "2026-03-20T09:00:00Z";

fn instant(text: &str) -> DateTime<Utc> {
    text.parse().expect("an instant")
}

/// A clock the test sets.
#[derive(Debug)]
struct TestClock(Mutex<DateTime<Utc>>);

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("the clock")
    }
}

/// The command service, the query service and the dashboard in one router
/// (as `trellis serve` mounts them), over a backend of the test's own, with a
/// clock the test sets and the `growth` projection. The services read the
/// log through a [`CountingStore`] (`reads`); the test's own helpers do not.
pub(crate) struct QueryApp {
    app: TestApp,
    clock: Arc<TestClock>,
    engine: Engine,
    pub(crate) reads: Arc<CountingStore>,
}

impl std::ops::Deref for QueryApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl QueryApp {
    pub(crate) async fn spawn(kind: Kind) -> Self {
        let mut app = TestApp::spawn(kind).await;
        let clock = Arc::new(TestClock(Mutex::new(instant(T0))));
        let reads = CountingStore::new(app.store.clone());
        let http = HttpState::new(
            reads.clone(),
            TokenKey::new(SECRET.to_vec()).expect("a key"),
            clock.clone(),
        );
        let state = CommandState::new(http.clone(), CommandsConfig::default());
        let read = read_store(&app.backend).await;
        let engine = Engine::new(app.store.clone(), read.clone());
        let queries = QueryState::new(http.clone(), ReadModels::new(read.clone()))
            .with_feed_poll(Duration::from_millis(50));
        let access =
            crate::http::access(&app.backend, ReadModels::new(read), Default::default()).await;
        let dashboard = DashboardState::new(queries.clone()).with_access(access, false);
        app.router = trellis_http::app(
            http,
            [
                trellis_commands::api(state.clone()),
                trellis_queries::api(queries),
                trellis_dashboard::api(dashboard),
            ],
        );
        app.state = state;
        QueryApp {
            app,
            clock,
            engine,
            reads,
        }
    }

    pub(crate) async fn cleanup(self) {
        drop(self.engine);
        drop(self.reads);
        self.app.cleanup().await;
    }

    pub(crate) fn set_clock(&self, at: &str) {
        *self.clock.0.lock().expect("the clock") = instant(at);
    }

    /// Waits until every committed event is readable in global order (on
    /// PostgreSQL, transactions of other tests hold the horizon back), then
    /// brings the read models up to date.
    pub(crate) async fn project(&self) {
        self.settle().await;
        self.engine
            .catch_up(&Growth::new(GrowthSettings::default()))
            .await
            .expect("catch up")
            .expect("the runner lease");
    }

    async fn settle(&self) {
        trellis_tests::settle(&*self.store).await;
    }

    pub(crate) async fn get_as(&self, path: &str, token: &str) -> Resp {
        self.request(Method::GET, path, token, None, Bytes::new(), &[])
            .await
    }

    pub(crate) async fn get_with(&self, path: &str, token: &str, extra: &[(&str, &str)]) -> Resp {
        self.request(Method::GET, path, token, None, Bytes::new(), extra)
            .await
    }

    fn reader(&self) -> String {
        self.service(&["reads:read"])
    }
}

/// What the script made.
struct Script {
    world: World,
    riley: Uuid,
    sam: Uuid,
    a2_event: Uuid,
    correction_event: Uuid,
    private_feedback_event: Uuid,
    /// Riley's profile as the read models showed it live at T1, T2 and T3.
    live: Vec<(&'static str, Value)>,
}

async fn script(app: &QueryApp) -> Script {
    let admin = app.admin();
    app.set_clock(T0);
    let world = app.world().await;
    let riley = app.join_rep(world.team).await;
    let sam = app.join_rep(world.team).await;
    let rep = |suffix: &str| format!("/v1/reps/{riley}/{suffix}");
    let mut live = Vec::new();

    // T1
    app.set_clock(T1);
    app.skill_assessment(&world, riley).await;
    app.post_json(
        &rep("feedback"),
        &admin,
        &feedback_body(&world, "2026-02-02"),
    )
    .await
    .expect(201);
    let mut private = feedback_body(&world, "2026-02-06");
    private["kind"] = json!("constructive");
    private["visibility"] = json!("private");
    private["note"] = json!("PRIVATE-NOTE: talks over the customer; watch it.");
    app.post_json(&rep("feedback"), &admin, &private)
        .await
        .expect(201);
    app.post_json(&rep("coaching-sessions"), &admin, &session_body(&world))
        .await
        .expect(201);
    measure(app, riley, "2026-W06", 40.0).await;
    app.project().await;
    live.push((T1, profile_json(app, riley).await));

    // T2
    app.set_clock(T2);
    let mut a2 = crate::http::assessment_body(&world, 4);
    a2["assessed_on"] = json!("2026-02-25");
    let a2_id = app
        .post_json(&rep("skill-assessments"), &admin, &a2)
        .await
        .expect(201)
        .id();
    measure(app, riley, "2026-W08", 60.0).await;
    let request = app.support_request(riley).await;
    app.post_json(
        &rep(&format!("support-requests/{request}/resolution")),
        &admin,
        &json!({ "leader_id": world.leader, "resolution": "Licence renewed", "on": "2026-02-18" }),
    )
    .await
    .expect(200);
    app.project().await;
    live.push((T2, profile_json(app, riley).await));

    // T3
    app.set_clock(T3);
    app.post_json(
        &rep("corrections"),
        &admin,
        &json!({
            "fact_id": a2_id,
            "reason": "Entered for the wrong rep's call review",
            "correction": { "kind": "skill_level", "level": 2, "evidence": "Re-reviewed the calls" },
        }),
    )
    .await
    .expect(200);
    measure(app, riley, "2026-W05", 50.0).await;
    let mut session = session_body(&world);
    session["held_on"] = json!("2026-03-10");
    session["visibility"] = json!("private");
    session["notes"] = json!("PRIVATE-NOTE: attitude");
    session["action_items"] = json!([
        { "description": "PRIVATE-ITEM: read the handbook", "owner": "rep", "due_on": "2026-03-25" },
    ]);
    app.post_json(&rep("coaching-sessions"), &admin, &session)
        .await
        .expect(201);
    app.project().await;
    live.push((T3, profile_json(app, riley).await));

    let events = app.events("rep", riley).await;
    let find = |ty: &str, pred: &dyn Fn(&Value) -> bool| {
        events
            .iter()
            .find(|e| e.event_type == ty && pred(&e.payload))
            .unwrap_or_else(|| panic!("no {ty}"))
            .event_id
    };
    Script {
        world,
        riley,
        sam,
        a2_event: find("SkillAssessed", &|p| p["level"] == json!(4)),
        correction_event: find("FactCorrected", &|_| true),
        private_feedback_event: find("FeedbackGiven", &|p| p["visibility"] == json!("private")),
        live,
    }
}

async fn measure(app: &QueryApp, rep: Uuid, period: &str, value: f64) {
    app.post_json(
        &format!("/v1/reps/{rep}/measurements"),
        &app.admin(),
        &json!({ "metric": "calls_made", "period": period, "value": value, "source": "crm_import" }),
    )
    .await
    .expect(201);
}

async fn profile_json(app: &QueryApp, rep: Uuid) -> Value {
    app.get_as(&format!("/v1/reps/{rep}"), &app.auditor())
        .await
        .expect(200)
        .json
        .clone()
}

fn approx(value: &Value, expected: f64) -> bool {
    value.as_f64().is_some_and(|v| (v - expected).abs() < 1e-9)
}

#[track_caller]
fn assert_num(value: &Value, expected: f64, what: &str) {
    assert!(
        approx(value, expected),
        "{what}: expected {expected}, got {value}"
    );
}

macro_rules! query_tests {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = super::QueryApp::spawn(trellis_tests::Kind::Postgres).await;
                    super::$name(&app).await;
                    app.cleanup().await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = super::QueryApp::spawn(trellis_tests::Kind::Sqlite).await;
                    super::$name(&app).await;
                    app.cleanup().await;
                }
            )*
        }
    };
}

query_tests!(
    read_model_routes_give_the_numbers_worked_out_by_hand,
    reps_see_only_their_own_records_without_private_notes_and_leaders_only_their_teams,
    bad_query_parameters_are_named_in_a_problem,
    time_travel_matches_what_was_live_and_separates_business_from_recorded_time,
    the_audit_trail_links_corrections_and_detects_tampering,
    the_review_packet_comes_as_json_markdown_and_html_and_its_hash_is_what_a_review_records,
    a_packet_s_evidence_proves_the_rep_events_it_replays_and_never_a_review,
    the_feed_pages_by_checkpoint_and_the_event_stream_resumes_without_duplicates,
    every_read_answers_a_documented_status_with_the_body_its_schema_describes,
    the_audit_trail_withholds_retracted_and_private_feedback_from_the_rep,
    the_audit_trail_withholds_a_retracted_coaching_session_from_the_rep,
    a_caller_without_access_is_refused_before_the_audit_trail_or_packet_is_read,
    a_missing_rep_team_or_leader_says_the_projection_may_not_have_caught_up,
    a_scorecard_from_after_today_without_to_says_what_was_sent,
    a_perfect_period_on_an_at_most_standard_is_met_in_the_timeline_and_the_team_view,
    a_team_view_counts_a_period_in_progress_a_recent_one_and_an_older_one_alike,
    collection_reads_page_by_id_and_a_leader_lists_only_their_own,
    the_profile_and_timeline_say_whether_and_when_feedback_and_standards_were_acknowledged,
);

/// A rep acknowledges one piece of feedback and a standard: the profile
/// says which and when (the other piece, private, not to the rep), and the
/// timeline counts the acknowledged feedback in the week it was given.
async fn the_profile_and_timeline_say_whether_and_when_feedback_and_standards_were_acknowledged(
    app: &QueryApp,
) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    app.set_clock("2026-03-02T09:00:00Z");
    let given = |visibility: &str| {
        let mut body = crate::http::feedback_body(&world, "2026-02-10");
        body["visibility"] = json!(visibility);
        body
    };
    let shared = app
        .post_json(
            &format!("/v1/reps/{rep}/feedback"),
            &app.admin(),
            &given("shared"),
        )
        .await
        .expect(201)
        .id();
    let private = app
        .post_json(
            &format!("/v1/reps/{rep}/feedback"),
            &app.admin(),
            &given("private"),
        )
        .await
        .expect(201)
        .id();
    let own = app.rep(rep);
    app.post_json(
        &format!("/v1/reps/{rep}/feedback/{shared}/acknowledgement"),
        &own,
        &json!({ "on": "2026-02-12" }),
    )
    .await
    .expect(200);
    app.post_json(
        &format!("/v1/reps/{rep}/expectations-acknowledgements"),
        &own,
        &json!({ "standard_id": world.standard, "on": "2026-02-13" }),
    )
    .await
    .expect(200);
    app.project().await;

    let profile = &profile_json(app, rep).await["profile"];
    let feedback = profile["feedback"].as_array().expect("feedback").clone();
    assert_eq!(feedback.len(), 2, "{profile}");
    let acknowledged = |id: Uuid| {
        feedback
            .iter()
            .find(|f| f["feedback_id"] == json!(id))
            .map(|f| f["acknowledged_on"].clone())
            .expect("the feedback")
    };
    assert_eq!(acknowledged(shared), json!("2026-02-12"));
    assert_eq!(acknowledged(private), json!(null));
    assert_eq!(
        profile["acknowledged_standards"],
        json!([{ "standard_id": world.standard, "version": 1, "on": "2026-02-13" }])
    );
    let seen = app.get_as(&format!("/v1/reps/{rep}"), &own).await;
    seen.expect(200);
    let ids: Vec<&Value> = seen.json["profile"]["feedback"]
        .as_array()
        .expect("feedback")
        .iter()
        .map(|f| &f["feedback_id"])
        .collect();
    assert_eq!(ids, [&json!(shared)], "a rep sees no private feedback");

    let timeline = app
        .get_as(
            &format!("/v1/reps/{rep}/timeline?bucket=week&from=2026-02-09&to=2026-02-15"),
            &app.auditor(),
        )
        .await;
    timeline.expect(200);
    let count = &timeline.json["rows"][0]["feedback"][world.competency.to_string()];
    assert_eq!(count["praise"], 2, "{}", timeline.text());
    assert_eq!(count["acknowledged"], 1, "{}", timeline.text());
}

/// The collection reads an integration pages through: every team in pages
/// of one, without a gap or a repeat; a leader lists only their teams and
/// their reps; the framework comes with each competency's rubric.
async fn collection_reads_page_by_id_and_a_leader_lists_only_their_own(app: &QueryApp) {
    let s = script(app).await;
    let (team, other_team) = (s.world.team, s.world.other_team);
    let admin = app.admin();
    let mut seen = Vec::new();
    let mut path = "/v1/teams?limit=1".to_owned();
    loop {
        let r = app.get_as(&path, &admin).await;
        r.expect(200);
        let teams = r.json["teams"].as_array().expect("teams").clone();
        assert_eq!(teams.len(), 1, "{}", r.text());
        seen.push(teams[0]["team_id"].as_str().expect("an id").to_owned());
        match r.json["next_after"].as_str() {
            Some(next) => path = format!("/v1/teams?limit=1&after={next}"),
            None => break,
        }
    }
    let mut expected = vec![team.to_string(), other_team.to_string()];
    expected.sort();
    assert_eq!(seen, expected, "every team once, in id order");

    let leader = app.leader_as(s.world.leader, &[team]);
    let r = app.get_as("/v1/teams", &leader).await;
    r.expect(200);
    let ids: Vec<&str> = r.json["teams"]
        .as_array()
        .expect("teams")
        .iter()
        .filter_map(|t| t["team_id"].as_str())
        .collect();
    assert_eq!(ids, [team.to_string()], "a leader lists their own teams");
    // The leaders of the teams they may list: their own team's, themselves.
    let r = app.get_as("/v1/leaders", &leader).await;
    r.expect(200);
    let leaders = r.json["leaders"].as_array().expect("leaders").clone();
    assert_eq!(leaders.len(), 1, "{}", r.text());
    assert_eq!(leaders[0]["leader_id"], json!(s.world.leader));
    assert_eq!(leaders[0]["teams"], json!([team]));
    let r = app.get_as("/v1/leaders", &admin).await;
    assert_eq!(
        r.json["leaders"].as_array().map(Vec::len),
        Some(2),
        "{}",
        r.text()
    );
    app.get_as(&format!("/v1/reps?team={other_team}"), &leader)
        .await
        .expect_problem(403, "forbidden");
    let r = app
        .get_as(&format!("/v1/reps?team={team}&status=active"), &leader)
        .await;
    r.expect(200);
    let reps: Vec<&str> = r.json["reps"]
        .as_array()
        .expect("reps")
        .iter()
        .filter_map(|p| p["rep_id"].as_str())
        .collect();
    assert!(reps.contains(&s.riley.to_string().as_str()), "{}", r.text());
    app.get_as("/v1/reps", &app.rep(s.riley))
        .await
        .expect_problem(403, "forbidden");
    // Open action items and support requests, by team, rep and status.
    let r = app
        .get_as(&format!("/v1/action-items?rep={}", s.riley), &leader)
        .await;
    r.expect(200);
    for item in r.json["action_items"].as_array().expect("items") {
        assert_eq!(item["rep_id"], json!(s.riley), "{}", r.text());
    }
    app.get_as(&format!("/v1/support-requests?team={other_team}"), &leader)
        .await
        .expect_problem(403, "forbidden");
    let r = app
        .get_as(&format!("/v1/support-requests?team={team}"), &admin)
        .await;
    r.expect(200);
    assert!(
        r.json["support_requests"]
            .as_array()
            .expect("requests")
            .iter()
            .all(|q| q["team_id"] == json!(team)),
        "{}",
        r.text()
    );
    let r = app.get_as("/v1/competencies", &app.rep(s.riley)).await;
    r.expect(200);
    let discovery = r.json["competencies"]
        .as_array()
        .expect("competencies")
        .iter()
        .find(|c| c["name"] == "Discovery")
        .expect("the competency")
        .clone();
    assert_eq!(discovery["rubric"].as_array().map(Vec::len), Some(5));
    let r = app.get_as("/v1/standards", &app.rep(s.riley)).await;
    r.expect(200);
    let standard = r.json["standards"]
        .as_array()
        .expect("standards")
        .iter()
        .find(|x| x["standard_id"] == json!(s.world.standard))
        .expect("the world's standard")
        .clone();
    assert_eq!(standard["direction"], "at_least");
    assert!(
        standard["versions"]
            .as_array()
            .is_some_and(|v| !v.is_empty()),
        "{standard}"
    );
}

/// "At most 2 incomplete CRM records a week", and a week with none: the
/// ceiling is kept as well as it can be, so the period is met (at the
/// highest attainment an at-most standard shows), and the team view counts
/// the rep as measured and met, never as not measured.
async fn a_perfect_period_on_an_at_most_standard_is_met_in_the_timeline_and_the_team_view(
    app: &QueryApp,
) {
    app.set_clock(T3);
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let ceiling = app
        .post_json(
            "/v1/standards",
            &app.admin(),
            &json!({
                "name": "Incomplete CRM records",
                "metric": "incomplete_crm_records",
                "kind": "quality",
                "direction": "at_most",
                "unit": "records",
                "period": "week",
                "target": 2,
                "roles": ["SDR"],
                "effective_from": "2026-01-01",
            }),
        )
        .await
        .expect(201)
        .id();
    app.post_json(
        &format!("/v1/reps/{rep}/measurements"),
        &app.admin(),
        &json!({ "metric": "incomplete_crm_records", "period": "2026-W06", "value": 0 }),
    )
    .await
    .expect(201);
    app.project().await;
    let leader = app.leader_as(world.leader, &[world.team]);

    let timeline = app
        .get_as(
            &format!("/v1/reps/{rep}/timeline?bucket=week&from=2026-02-02&to=2026-02-08"),
            &leader,
        )
        .await;
    timeline.expect(200);
    let row = &timeline.json["rows"][0];
    let standard = row["standards"]
        .as_array()
        .expect("standards")
        .iter()
        .find(|s| s["standard_id"] == json!(ceiling))
        .expect("the ceiling in the week");
    assert_eq!(standard["actual"], json!(0.0));
    assert_num(
        &standard["attainment"],
        trellis_domain::MAX_AT_MOST_ATTAINMENT,
        "a perfect period's attainment",
    );

    let view = app
        .get_as(
            &format!("/v1/teams/{}/view?period=2026-W06", world.team),
            &leader,
        )
        .await;
    view.expect(200);
    let dist = view.json["attainment"]
        .as_array()
        .expect("attainment")
        .iter()
        .find(|d| d["standard_id"] == json!(ceiling))
        .expect("the ceiling's distribution")
        .clone();
    assert_eq!(dist["reps_measured"], json!(1), "{dist}");
    assert_eq!(dist["met"], json!(1), "{dist}");
    assert_eq!(dist["missed_badly"], json!(0), "{dist}");
}

/// The team view reads each member's current timeline for the week in
/// progress (its last week, month and quarter), the recent one (its last
/// weeks, months and quarters) for a period a few weeks back, and the whole
/// one for a period older than that, so a week half a year back counts as
/// it did then, and each counts the same as the others.
async fn a_team_view_counts_a_period_in_progress_a_recent_one_and_an_older_one_alike(
    app: &QueryApp,
) {
    app.set_clock("2026-08-05T09:00:00Z");
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let standard = app
        .post_json(
            "/v1/standards",
            &app.admin(),
            &json!({
                "name": "Discovery calls",
                "metric": "discovery_calls",
                "kind": "quantity",
                "direction": "at_least",
                "unit": "calls",
                "period": "week",
                "target": 10,
                "roles": ["SDR"],
                "effective_from": "2026-01-01",
            }),
        )
        .await
        .expect(201)
        .id();
    for (week, value) in [("2026-W06", 12), ("2026-W30", 3), ("2026-W32", 11)] {
        app.post_json(
            &format!("/v1/reps/{rep}/measurements"),
            &app.admin(),
            &json!({ "metric": "discovery_calls", "period": week, "value": value }),
        )
        .await
        .expect(201);
    }
    app.project().await;
    let leader = app.leader_as(world.leader, &[world.team]);
    for (week, met) in [("2026-W06", 1), ("2026-W30", 0), ("2026-W32", 1)] {
        let view = app
            .get_as(
                &format!("/v1/teams/{}/view?period={week}", world.team),
                &leader,
            )
            .await;
        view.expect(200);
        let dist = view.json["attainment"]
            .as_array()
            .expect("attainment")
            .iter()
            .find(|d| d["standard_id"] == json!(standard))
            .unwrap_or_else(|| panic!("{week}: the standard's distribution: {}", view.json))
            .clone();
        assert_eq!(dist["reps_measured"], json!(1), "{week}: {dist}");
        assert_eq!(dist["met"], json!(met), "{week}: {dist}");
    }
}

async fn read_model_routes_give_the_numbers_worked_out_by_hand(app: &QueryApp) {
    let s = script(app).await;
    let (riley, world) = (s.riley, s.world);
    let leader = app.leader_as(world.leader, &[world.team]);

    // Profile, today = T3 (2026-03-20).
    let p = app.get_as(&format!("/v1/reps/{riley}"), &leader).await;
    p.expect(200);
    let p = &p.json;
    assert_eq!(p["as_of"], json!("2026-03-20"));
    let level = &p["profile"]["levels"][world.competency.to_string()];
    assert_eq!(level["level"], json!(2), "A2 corrected from 4 to 2: {p}");
    assert_eq!(level["assessed_on"], json!("2026-02-25"));
    assert_eq!(p["profile"]["coaching_sessions"], json!(2));
    assert_eq!(p["profile"]["last_coached_on"], json!("2026-03-10"));
    assert_eq!(
        p["profile"]["support_requests"][0]["days_to_resolve"],
        json!(3)
    );
    // Two open items: the shared one (due 02-20, overdue) and the private one (03-25).
    assert_eq!(p["open_action_items"].as_array().unwrap().len(), 2);
    assert_eq!(p["overdue_action_items"], json!(1));
    assert_eq!(p["standing"]["standing"], json!("needs_support"));
    assert!(
        p["standing"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("1 action item overdue, the oldest due on 2026-02-20"),
        "{p}"
    );

    // Timeline by week over February's first three full weeks.
    let t = app
        .get_as(
            &format!("/v1/reps/{riley}/timeline?bucket=week&from=2026-02-02&to=2026-02-22"),
            &leader,
        )
        .await;
    t.expect(200);
    let rows = t.json["rows"].as_array().unwrap();
    let periods: Vec<&str> = rows.iter().map(|r| r["period"].as_str().unwrap()).collect();
    assert_eq!(periods, ["2026-W06", "2026-W07", "2026-W08"]);
    let calls = |row: &Value| row["standards"][0].clone();
    assert_num(&calls(&rows[0])["attainment"], 0.8, "W06 attainment");
    assert_num(&calls(&rows[0])["target"], 50.0, "W06 target");
    assert_num(&calls(&rows[2])["attainment"], 1.2, "W08 attainment");
    let feedback = &rows[0]["feedback"][world.competency.to_string()];
    assert_eq!(
        feedback,
        &json!({ "praise": 1, "constructive": 1, "acknowledged": 0 })
    );
    assert_eq!(rows[0]["levels"][world.competency.to_string()], json!(3));
    assert_eq!(rows[1]["coaching_sessions"], json!(1));
    assert_eq!(rows[1]["coaching_minutes"], json!(45));
    assert_eq!(rows[2]["action_items_due"], json!(1));
    assert_eq!(
        rows[2]["action_items_overdue"],
        json!(1),
        "due 02-20, open at the week's end"
    );
    let months = app
        .get_as(&format!("/v1/reps/{riley}/timeline?bucket=month"), &leader)
        .await;
    months.expect(200);
    let months: Vec<&str> = months.json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["period"].as_str().unwrap())
        .collect();
    assert_eq!(months, ["2026-01", "2026-02", "2026-03"]);

    // Team view: February (coaching, support), W06 (attainment).
    let team = app
        .get_as(
            &format!("/v1/teams/{}/view?period=2026-02", world.team),
            &leader,
        )
        .await;
    team.expect(200);
    let v = &team.json;
    assert_eq!(v["headcount"], json!(2));
    assert_eq!(v["coaching"]["reps_coached"], json!(1));
    assert_num(&v["coaching"]["coverage"], 0.5, "coverage");
    assert_eq!(v["coaching"]["sessions"], json!(1));
    assert_num(&v["coaching"]["sessions_per_rep"], 0.5, "sessions per rep");
    assert_eq!(v["coaching"]["minutes"], json!(45));
    assert_eq!(v["support"]["raised_in_period"], json!(1));
    assert_eq!(v["support"]["resolved_in_period"], json!(1));
    assert_eq!(v["support"]["open"], json!(0));
    assert_num(&v["support"]["median_days_to_resolve"], 3.0, "median days");
    let week = app
        .get_as(
            &format!("/v1/teams/{}/view?period=2026-W06", world.team),
            &leader,
        )
        .await;
    week.expect(200);
    let dist = &week.json["attainment"][0];
    assert_eq!(dist["reps_measured"], json!(1));
    assert_eq!(dist["near"], json!(1));
    assert_eq!(dist["met"], json!(0));
    assert_num(&dist["median"], 0.8, "median attainment");

    // Leader scorecard for February.
    let card = app
        .get_as(
            &format!(
                "/v1/leaders/{}/scorecard?from=2026-02-01&to=2026-02-28",
                world.leader
            ),
            &leader,
        )
        .await;
    card.expect(200);
    let c = &card.json;
    assert_eq!(c["sessions_held"], json!(1));
    assert_eq!(c["coaching_minutes"], json!(45));
    assert_eq!(c["reps_coached"], json!(1));
    assert_eq!(c["feedback_praise"], json!(1));
    assert_eq!(c["feedback_constructive"], json!(1));
    assert_num(&c["praise_share"], 0.5, "praise share");
    assert_eq!(c["support_resolved"], json!(1));
    assert_num(&c["median_days_to_resolve"], 3.0, "median days to resolve");

    // Coaching impact, one week either side: coached in W07 (level 3 → 3,
    // attainment 80% in W06 → 120% in W08); the private session of W11 is too
    // recent for its window to have ended.
    let impact = app
        .get_as(
            &format!("/v1/teams/{}/coaching-impact?weeks=1", world.team),
            &leader,
        )
        .await;
    impact.expect(200);
    let i = &impact.json["competencies"][0];
    assert_eq!(i["competency_id"], json!(world.competency));
    assert_eq!(i["coached_weeks"], json!(1));
    assert_num(&i["level_before"], 3.0, "level before");
    assert_num(&i["level_after"], 3.0, "level after");
    assert_num(&i["attainment_before"], 0.8, "attainment before");
    assert_num(&i["attainment_after"], 1.2, "attainment after");
}

async fn reps_see_only_their_own_records_without_private_notes_and_leaders_only_their_teams(
    app: &QueryApp,
) {
    let s = script(app).await;
    let (riley, sam, world) = (s.riley, s.sam, s.world);
    let own = app.rep(riley);
    let rep_paths = [
        format!("/v1/reps/{riley}"),
        format!("/v1/reps/{riley}/timeline"),
        format!("/v1/reps/{riley}/as-of?at=2026-03-20T10:00:00Z"),
        format!("/v1/reps/{riley}/audit"),
        format!("/v1/reps/{riley}/review-packet?from=2026-02-01&to=2026-03-20"),
    ];
    let leader = app.leader_as(world.leader, &[world.team]);
    let other_leader = app.leader_as(world.other_leader, &[world.other_team]);
    for path in &rep_paths {
        for token in [&own, &leader, &app.auditor(), &app.admin(), &app.reader()] {
            app.get_as(path, token).await.expect(200);
        }
        let r = app.get_as(path, &own).await;
        assert!(
            !r.text().contains("PRIVATE-"),
            "a rep sees no private note at {path}: {}",
            r.text()
        );
        app.get_as(path, &other_leader)
            .await
            .expect_problem(403, "forbidden");
        app.get_as(path, &app.rep(sam))
            .await
            .expect_problem(403, "forbidden");
        app.get_as(path, &app.service(&["reps:write"]))
            .await
            .expect_problem(403, "forbidden");
        app.get_as(path, "")
            .await
            .expect_problem(401, "unauthorized");
    }
    // What the rep does not see, the leader and the auditor do.
    let full = app.get_as(&format!("/v1/reps/{riley}"), &leader).await;
    assert!(full.text().contains("PRIVATE-ITEM"), "{}", full.text());
    let audit = app
        .get_as(&format!("/v1/reps/{riley}/audit"), &app.auditor())
        .await;
    assert!(audit.text().contains("PRIVATE-NOTE"));
    let mine = app.get_as(&format!("/v1/reps/{riley}/audit"), &own).await;
    let hidden = mine.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == json!(s.private_feedback_event))
        .expect("the private feedback is listed");
    assert_eq!(hidden["withheld"], json!(true));
    assert_eq!(hidden["payload"], Value::Null);
    let profile = app.get_as(&format!("/v1/reps/{riley}"), &own).await;
    assert_eq!(
        profile.json["open_action_items"].as_array().unwrap().len(),
        1
    );

    // Teams, scorecards and the feed.
    let team_paths = [
        format!("/v1/teams/{}/view?period=2026-02", world.team),
        format!("/v1/teams/{}/coaching-impact", world.team),
    ];
    for path in &team_paths {
        app.get_as(path, &leader).await.expect(200);
        app.get_as(path, &app.auditor()).await.expect(200);
        app.get_as(path, &app.reader()).await.expect(200);
        app.get_as(path, &other_leader)
            .await
            .expect_problem(403, "forbidden");
        app.get_as(path, &own)
            .await
            .expect_problem(403, "forbidden");
    }
    let card = format!("/v1/leaders/{}/scorecard", world.leader);
    app.get_as(&card, &leader).await.expect(200);
    app.get_as(&card, &app.auditor()).await.expect(200);
    app.get_as(&card, &other_leader)
        .await
        .expect_problem(403, "forbidden");
    app.get_as(&card, &own)
        .await
        .expect_problem(403, "forbidden");
    for path in ["/v1/events", "/v1/events/stream"] {
        app.get_as(path, &own)
            .await
            .expect_problem(403, "forbidden");
        app.get_as(path, &leader)
            .await
            .expect_problem(403, "forbidden");
        app.get_as(path, &app.service(&[]))
            .await
            .expect_problem(403, "forbidden");
    }
    app.get_as("/v1/events", &app.reader()).await.expect(200);
    let auditor = app.token("auditor:ada", Role::Auditor, &[], &[]);
    app.get_as("/v1/events", &auditor).await.expect(200);
}

async fn bad_query_parameters_are_named_in_a_problem(app: &QueryApp) {
    let s = script(app).await;
    let (riley, world) = (s.riley, s.world);
    let auditor = app.auditor();
    for (path, param) in [
        (format!("/v1/reps/{riley}/timeline?bucket=day"), "bucket"),
        (format!("/v1/reps/{riley}/timeline?from=yesterday"), "from"),
        (
            format!("/v1/reps/{riley}/timeline?from=2026-03-01&to=2026-02-01"),
            "to",
        ),
        (format!("/v1/reps/{riley}/as-of"), "at"),
        (format!("/v1/reps/{riley}/as-of?at=noon"), "at"),
        (
            format!("/v1/reps/{riley}/as-of?at=2026-03-01T00:00:00Z&time=wall"),
            "time",
        ),
        (
            format!("/v1/reps/{riley}/review-packet?to=2026-03-01"),
            "from",
        ),
        (
            format!("/v1/reps/{riley}/review-packet?from=2026-02-01&to=2026-03-01&format=pdf"),
            "format",
        ),
        (format!("/v1/reps/{riley}/audit?limit=0"), "limit"),
        (
            format!("/v1/teams/{}/view?period=March", world.team),
            "period",
        ),
        (
            format!("/v1/teams/{}/view?period=2026-13", world.team),
            "months run from 01 to 12",
        ),
        (
            format!("/v1/reps/{riley}/review-packet?from=0001-01-01&to=9999-12-31"),
            "longer than a packet covers",
        ),
        (
            format!("/v1/teams/{}/coaching-impact?weeks=x", world.team),
            "weeks",
        ),
        ("/v1/events?after=12".to_owned(), "after"),
        ("/v1/events?limit=5000".to_owned(), "limit"),
    ] {
        let r = app.get_as(&path, &auditor).await;
        r.expect_problem(400, "bad-request");
        assert!(
            r.json["detail"].as_str().unwrap().contains(param),
            "{path}: the problem names {param}: {}",
            r.text()
        );
    }
    let r = app
        .get_with("/v1/events/stream", &auditor, &[("last-event-id", "x")])
        .await;
    r.expect_problem(400, "bad-request");
    assert!(r.text().contains("Last-Event-ID"));
    let unknown = Uuid::now_v7();
    for path in [
        format!("/v1/reps/{unknown}"),
        format!("/v1/reps/{unknown}/timeline"),
        format!("/v1/reps/{unknown}/as-of?at=2026-03-01"),
        format!("/v1/reps/{unknown}/audit"),
        format!("/v1/reps/{unknown}/review-packet?from=2026-02-01&to=2026-03-01"),
        format!("/v1/teams/{unknown}/view"),
        format!("/v1/leaders/{unknown}/scorecard"),
        "/v1/reps/not-a-uuid".to_owned(),
    ] {
        app.get_as(&path, &auditor)
            .await
            .expect_problem(404, "not-found");
    }
    // Before the rep joined, there is no state to show.
    app.get_as(
        &format!("/v1/reps/{riley}/as-of?at=2026-01-01T00:00:00Z&time=recorded"),
        &auditor,
    )
    .await
    .expect_problem(404, "not-found");
}

async fn time_travel_matches_what_was_live_and_separates_business_from_recorded_time(
    app: &QueryApp,
) {
    let s = script(app).await;
    let (riley, world) = (s.riley, s.world);
    let as_of = |at: &str, time: &'static str| as_of_json(app, riley, at.to_owned(), time);
    // As it was known at T1, T2, T3: exactly the profile that was live then.
    for (at, live) in &s.live {
        let replayed = as_of(at, "recorded").await;
        assert_eq!(
            &replayed["profile"], live,
            "the state as known at {at} is the live profile of then"
        );
    }
    let level = |v: &Value| {
        v["profile"]["profile"]["levels"][world.competency.to_string()]["level"].clone()
    };
    let requests = |v: &Value| {
        v["profile"]["profile"]["support_requests"]
            .as_array()
            .unwrap()
            .len()
    };

    // 2026-02-20 noon: as it happened, the support request (raised 02-15,
    // resolved 02-18) and the late W05 measurement count, though recorded at
    // T2 and T3; as known then, neither did.
    let happened = as_of("2026-02-20T12:00:00Z", "business").await;
    let known = as_of("2026-02-20T12:00:00Z", "recorded").await;
    assert_eq!(level(&happened), json!(3));
    assert_eq!(level(&known), json!(3));
    assert_eq!(requests(&happened), 1);
    assert_eq!(
        happened["profile"]["profile"]["support_requests"][0]["days_to_resolve"],
        json!(3)
    );
    assert_eq!(requests(&known), 0);
    assert_eq!(happened["profile"]["overdue_action_items"], json!(0));
    assert_eq!(happened["as_of_date"], json!("2026-02-20"));
    assert!(
        happened["events_applied"].as_u64().unwrap() > known["events_applied"].as_u64().unwrap()
    );

    // 02-26: A2 (level 4, on 02-25) had happened, but was recorded only at
    // T2; its correction (recorded and happening at T3) had not happened.
    assert_eq!(
        level(&as_of("2026-02-26T00:00:00Z", "business").await),
        json!(4)
    );
    assert_eq!(
        level(&as_of("2026-02-26T00:00:00Z", "recorded").await),
        json!(3)
    );
    // After T2, before the correction: 4 both ways; after it: 2 both ways.
    assert_eq!(
        level(&as_of("2026-03-05T00:00:00Z", "business").await),
        json!(4)
    );
    assert_eq!(
        level(&as_of("2026-03-05T00:00:00Z", "recorded").await),
        json!(4)
    );
    assert_eq!(
        level(&as_of("2026-03-21T00:00:00Z", "business").await),
        json!(2)
    );
    assert_eq!(
        level(&as_of("2026-03-21T00:00:00Z", "recorded").await),
        json!(2)
    );
    // A date means the end of that day.
    assert_eq!(level(&as_of("2026-02-25", "business").await), json!(4));

    // The state as of now is the live profile.
    let now = as_of(T3, "business").await;
    assert_eq!(&now["profile"], &s.live[2].1);

    // What is appended after a query counts in the next one.
    let mut a3 = crate::http::assessment_body(&world, 5);
    a3["assessed_on"] = json!("2026-03-19");
    app.post_json(
        &format!("/v1/reps/{riley}/skill-assessments"),
        &app.admin(),
        &a3,
    )
    .await
    .expect(201);
    assert_eq!(level(&as_of(T3, "business").await), json!(5));
    assert_eq!(
        level(&as_of("2026-03-18", "business").await),
        json!(4),
        "before the correction happened"
    );
}

async fn as_of_json(app: &QueryApp, rep: Uuid, at: String, time: &'static str) -> Value {
    let r = app
        .get_as(
            &format!("/v1/reps/{rep}/as-of?at={at}&time={time}"),
            &app.auditor(),
        )
        .await;
    r.expect(200);
    r.json.clone()
}

async fn the_audit_trail_links_corrections_and_detects_tampering(app: &QueryApp) {
    let s = script(app).await;
    let riley = s.riley;
    let auditor = app.auditor();
    let path = format!("/v1/reps/{riley}/audit");
    let r = app.get_as(&path, &auditor).await;
    r.expect(200);
    let trail = &r.json;
    assert_eq!(trail["chain_intact"], json!(true));
    assert_eq!(trail["chain_problem"], Value::Null);
    let events = trail["events"].as_array().unwrap();
    let stored = app.events("rep", riley).await;
    assert_eq!(events.len(), stored.len());
    assert_eq!(trail["events_total"], json!(stored.len()));
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["stream_version"], json!(i + 1));
        assert_eq!(e["event_type"], json!(stored[i].event_type));
        assert_eq!(e["actor"], json!(crate::http::ADMIN_SUB));
        assert!(e["occurred_at"].is_string() && e["recorded_at"].is_string());
    }
    let by_id = |id: Uuid| {
        events
            .iter()
            .find(|e| e["event_id"] == json!(id))
            .unwrap_or_else(|| panic!("event {id} listed"))
    };
    let correction = by_id(s.correction_event);
    assert_eq!(correction["event_type"], json!("FactCorrected"));
    assert_eq!(correction["corrects"]["event_id"], json!(s.a2_event));
    assert_eq!(correction["corrects"]["event_type"], json!("SkillAssessed"));
    let corrected = by_id(s.a2_event);
    assert_eq!(
        corrected["corrected_by"][0]["event_id"],
        json!(s.correction_event)
    );
    // The business time of the correction is when it was recorded; A2's is its date.
    assert_eq!(corrected["occurred_at"], json!("2026-02-25T00:00:00Z"));
    assert_eq!(corrected["recorded_at"], json!("2026-03-01T09:00:00Z"));

    // Paging.
    let page = app.get_as(&format!("{path}?limit=3"), &auditor).await;
    assert_eq!(page.json["events"].as_array().unwrap().len(), 3);
    assert_eq!(page.json["next_after_version"], json!(3));
    let next = app
        .get_as(&format!("{path}?after_version=3&limit=3"), &auditor)
        .await;
    assert_eq!(next.json["events"][0]["stream_version"], json!(4));

    // Someone with database access rewrites who recorded A2.
    let stream = format!("rep-{riley}");
    app.backend
        .tamper(&format!(
            "UPDATE events SET actor = 'mallory' WHERE stream_id = '{stream}' AND event_id = '{}'",
            s.a2_event
        ))
        .await;
    let r = app.get_as(&path, &auditor).await;
    r.expect(200);
    assert_eq!(r.json["chain_intact"], json!(false));
    let problem = r.json["chain_problem"].as_str().unwrap();
    assert!(problem.contains("altered"), "{problem}");
}

async fn the_review_packet_comes_as_json_markdown_and_html_and_its_hash_is_what_a_review_records(
    app: &QueryApp,
) {
    let s = script(app).await;
    let (riley, world) = (s.riley, s.world);
    let leader = app.leader_as(world.leader, &[world.team]);
    let path = format!("/v1/reps/{riley}/review-packet?from=2026-02-09&to=2026-02-28");
    let r = app.get_as(&path, &leader).await;
    r.expect(200);
    let sha = r.json["sha256"].as_str().unwrap().to_owned();
    assert_eq!(sha.len(), 64);
    assert_eq!(r.header("x-packet-sha256"), Some(sha.as_str()));
    let p = &r.json["packet"];
    assert_eq!(p["period_from"], json!("2026-02-09"));
    // Levels: 3 before the period (A1), 4 at its end (A2; its correction came later).
    let level = &p["levels"][0];
    assert_eq!(level["competency"], json!("Discovery"));
    assert_eq!(
        (
            level["start"].clone(),
            level["end"].clone(),
            level["change"].clone()
        ),
        (json!(3), json!(4), json!(1))
    );
    // Calls by week: W07 unmeasured, W08 120%, W09 unmeasured.
    let calls = &p["standards"][0];
    let periods: Vec<&str> = calls["periods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["period"].as_str().unwrap())
        .collect();
    assert_eq!(periods, ["2026-W07", "2026-W08", "2026-W09"]);
    assert_eq!(calls["periods_measured"], json!(1));
    assert_eq!(calls["periods_met"], json!(1));
    assert_num(&calls["last"], 1.2, "last attainment");
    // Coaching and feedback in the period: the 02-09 session; both feedback notes were before it.
    assert_eq!(p["coaching"]["sessions"], json!(1));
    assert_eq!(p["coaching"]["minutes"], json!(45));
    assert_eq!(p["coaching"]["feedback_praise"], json!(0));
    assert_eq!(p["coaching"]["by_competency"][0]["sessions"], json!(1));
    // The item due 02-20, still open at the end: overdue.
    assert_eq!(p["action_items"]["items"].as_array().unwrap().len(), 1);
    assert_eq!(p["action_items"]["items"][0]["status"], json!("open"));
    assert_eq!(p["action_items"]["overdue_at_end"], json!(1));
    // The support request, resolved in 3 days.
    assert_eq!(p["support_requests"]["resolved"], json!(1));
    assert_num(
        &p["support_requests"]["median_days_to_resolve"],
        3.0,
        "days to resolve",
    );
    // On track before; from the Sunday the request was open, needs support.
    assert_eq!(p["standing"]["at_start"]["standing"], json!("on_track"));
    assert_eq!(p["standing"]["at_end"]["standing"], json!("needs_support"));
    assert_eq!(
        p["standing"]["changes"],
        json!([{
            "on": "2026-02-15",
            "from": "on_track",
            "to": "needs_support",
            "reasons": ["support request (tools) open since 2026-02-15"],
        }])
    );

    // The same packet as Markdown and HTML, with the same hash.
    let md = app
        .get_with(&path, &leader, &[("accept", "text/markdown")])
        .await;
    md.expect(200);
    assert!(
        md.header("content-type")
            .unwrap()
            .starts_with("text/markdown")
    );
    assert!(
        md.text().starts_with("# Review packet: Riley Rep"),
        "{}",
        md.text()
    );
    assert!(md.text().contains(&sha));
    assert!(
        md.text().contains("| Discovery | 3 | 4 | +1 |"),
        "{}",
        md.text()
    );
    // Read by people: the team by its name, a standard by its own name and
    // its kind in words, counts as counted.
    for words in [
        "Riley Rep (SDR), team EMEA Mid-Market, started",
        "### Weekly calls (quantity, weekly)",
        "1 coaching session (45 minutes)",
        "| tools | 2026-02-15 | 2026-02-18 | 3 |",
    ] {
        assert!(md.text().contains(words), "{words:?} in {}", md.text());
    }
    let html = app.get_as(&format!("{path}&format=html"), &leader).await;
    html.expect(200);
    assert!(
        html.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(html.text().contains("<table>") && html.text().contains(&sha));

    // A review records the hash; recomputing the packet later gives it again.
    app.post_json(
        &format!("/v1/reps/{riley}/reviews"),
        &app.admin(),
        &json!({ "period_from": "2026-02-09", "period_to": "2026-02-28", "packet_sha256": sha, "on": "2026-02-28" }),
    )
    .await
    .expect(201);
    let recorded = app
        .events("rep", riley)
        .await
        .into_iter()
        .find(|e| e.event_type == "ReviewHeld")
        .expect("the review is in the log");
    let again = app.get_as(&path, &app.auditor()).await;
    assert_eq!(again.json["sha256"], recorded.payload["packet_sha256"]);
    assert_eq!(again.json["sha256"], json!(sha));
    // The rep reads the same packet.
    let mine = app.get_as(&path, &app.rep(riley)).await;
    assert_eq!(mine.json["sha256"], json!(sha));
}

/// Brings the log's Merkle tree up to date and signs a checkpoint of it, as
/// the checkpoint worker of `trellis serve` does.
async fn sign_checkpoint(app: &QueryApp) {
    use trellis_eventstore::note::SignerKey;
    use trellis_eventstore::tree::TreeBuilder;
    app.settle().await;
    let store = &*app.store;
    let mut builder = TreeBuilder::load(store).await.expect("the stored tree");
    builder.catch_up(store).await.expect("the tree grows");
    let key = SignerKey::generate("trellis.test/log").expect("a key");
    builder
        .sign(store, &key, "trellis.test/log", Utc::now())
        .await
        .expect("a signed checkpoint");
}

/// A packet's evidence proves exactly the rep's events the packet replays
/// (as many as `events_replayed`), never a recorded review: not before the
/// review is recorded, and not after, when the review happened within the
/// period and the packet, its hash and its evidence stay the same.
async fn a_packet_s_evidence_proves_the_rep_events_it_replays_and_never_a_review(app: &QueryApp) {
    let s = script(app).await;
    let riley = s.riley;
    // The period ends on the day the clock stands at (T3): a review
    // recorded now happens within it.
    let path = format!("/v1/reps/{riley}/review-packet?from=2026-02-09&to=2026-03-20");
    let rep_stream = format!("rep-{riley}");
    let proven = |body: &Value| -> Vec<String> {
        assert_eq!(body["evidence"]["not_yet_covered"], json!([]), "{body}");
        body["evidence"]["events"]
            .as_array()
            .expect("evidence")
            .iter()
            .filter(|e| e["stream_id"] == json!(rep_stream))
            .map(|e| {
                assert_ne!(e["event_type"], json!("ReviewHeld"), "{e}");
                e["event_id"].as_str().expect("an id").to_owned()
            })
            .collect()
    };
    sign_checkpoint(app).await;
    let before = app.get_as(&path, &app.auditor()).await;
    before.expect(200);
    let ids = proven(&before.json);
    assert_eq!(
        Some(ids.len() as u64),
        before.json["packet"]["events_replayed"].as_u64()
    );

    app.post_json(
        &format!("/v1/reps/{riley}/reviews"),
        &app.admin(),
        &json!({
            "period_from": "2026-02-09",
            "period_to": "2026-03-20",
            "packet_sha256": before.json["sha256"],
            "on": "2026-03-20",
        }),
    )
    .await
    .expect(201);
    sign_checkpoint(app).await;
    let after = app.get_as(&path, &app.auditor()).await;
    after.expect(200);
    assert!(
        app.events("rep", riley)
            .await
            .iter()
            .any(|e| e.event_type == "ReviewHeld"),
        "the review is in the log"
    );
    assert_eq!(after.json["sha256"], before.json["sha256"]);
    assert_eq!(proven(&after.json), ids);
}

/// A stored tree that lacks a node the proofs need (every node above the
/// leaves removed behind the store's back) makes the packet's JSON a 500
/// that says the log's tree is damaged and to run `trellis audit verify`,
/// logged with the same words; the Markdown packet, which carries no
/// evidence, is still served.
#[tokio::test(flavor = "current_thread")]
async fn a_damaged_tree_makes_the_packet_an_error_that_names_trellis_audit_verify_and_is_logged() {
    let app = QueryApp::spawn(Kind::Sqlite).await;
    let s = script(&app).await;
    sign_checkpoint(&app).await;
    let path = format!(
        "/v1/reps/{}/review-packet?from=2026-02-09&to=2026-02-28",
        s.riley
    );
    app.get_as(&path, &app.auditor()).await.expect(200);
    app.backend
        .tamper("DROP TRIGGER IF EXISTS tree_nodes_no_delete; DELETE FROM tree_nodes")
        .await;

    let logs = trellis_tests::LogCapture::install();
    // Reach the failure's callsites once, then make their caches this thread's.
    app.get_as(&path, &app.auditor()).await.expect(500);
    logs.rebuild();
    let r = app.get_as(&path, &app.auditor()).await;
    let log = logs.text();
    drop(logs);
    r.expect_problem(500, "log-damaged");
    let detail = r.json["detail"].as_str().expect("a detail");
    assert!(
        detail.contains("the evidence of the packet cannot be built")
            && detail.contains("lacks its node")
            && detail.contains("trellis audit verify"),
        "{detail}"
    );
    assert!(
        log.contains("request failed") && log.contains("trellis audit verify"),
        "the 500 is logged with what to do:\n{log}"
    );

    let md = app
        .get_with(&path, &app.auditor(), &[("accept", "text/markdown")])
        .await;
    md.expect(200);
    app.cleanup().await;
}

async fn the_feed_pages_by_checkpoint_and_the_event_stream_resumes_without_duplicates(
    app: &QueryApp,
) {
    let s = script(app).await;
    app.settle().await;
    let auditor = app.auditor();
    let total = app.events_in_log().await;

    // Pages of 7 until an empty page.
    let mut after = "0.0".to_owned();
    let mut seen: Vec<(String, String)> = Vec::new();
    loop {
        let r = app
            .get_as(&format!("/v1/events?after={after}&limit=7"), &auditor)
            .await;
        r.expect(200);
        let events = r.json["events"].as_array().unwrap().clone();
        assert_eq!(r.json["after"], json!(after));
        if events.is_empty() {
            assert_eq!(r.json["next"], json!(after));
            assert_eq!(r.json["more"], json!(false));
            break;
        }
        assert!(events.len() <= 7);
        assert_eq!(r.json["more"], json!(events.len() == 7));
        assert_eq!(r.json["next"], events.last().unwrap()["checkpoint"]);
        for e in &events {
            seen.push((
                e["checkpoint"].as_str().unwrap().to_owned(),
                e["event_id"].as_str().unwrap().to_owned(),
            ));
        }
        after = r.json["next"].as_str().unwrap().to_owned();
    }
    assert_eq!(seen.len(), total);
    let ids: BTreeSet<&String> = seen.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), total, "no event twice");
    let positions: Vec<(u64, u64)> = seen
        .iter()
        .map(|(c, _)| {
            let (tx, p) = c.split_once('.').unwrap();
            (tx.parse().unwrap(), p.parse().unwrap())
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "global order");

    // The stream from the 5th event's checkpoint gives the rest, then what is appended next.
    let resume = seen[4].0.clone();
    let request = Request::builder()
        .method(Method::GET)
        .uri("/v1/events/stream")
        .header(header::AUTHORIZATION, format!("Bearer {auditor}"))
        .header("last-event-id", &resume)
        .body(Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = response.into_body().into_data_stream();
    let mut buffer = String::new();
    let mut received: Vec<(String, Value)> = Vec::new();
    let mut appended = false;
    let expected_first = total - 5;
    tokio::time::timeout(Duration::from_secs(30), async {
        while received.len() < expected_first + 1 {
            if received.len() == expected_first && !appended {
                appended = true;
                app.post_json(
                    &format!("/v1/reps/{}/feedback", s.sam),
                    &app.admin(),
                    &feedback_body(&s.world, "2026-03-02"),
                )
                .await
                .expect(201);
            }
            let chunk = body
                .next()
                .await
                .expect("the stream stays open")
                .expect("a chunk");
            buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if let Some(id) = id {
                    received.push((id, serde_json::from_str(&data).unwrap()));
                }
            }
        }
    })
    .await
    .expect("the stream delivered every event in time");
    assert_eq!(
        received.len(),
        expected_first + 1,
        "no extra or duplicate frame"
    );
    let expected: Vec<&String> = seen[5..].iter().map(|(c, _)| c).collect();
    let got: Vec<&String> = received[..expected_first].iter().map(|(c, _)| c).collect();
    assert_eq!(
        got, expected,
        "resumed after Last-Event-ID, no duplicate, no gap"
    );
    let last = &received[expected_first].1;
    assert_eq!(last["event_type"], json!("FeedbackGiven"));
    assert_eq!(last["stream_id"], json!(format!("rep-{}", s.sam)));
    assert_eq!(last["checkpoint"], json!(received[expected_first].0));
}

/// The read API's OpenAPI document describes what the routes really answer:
/// each success body matches its documented schema field by field, and a
/// missing rep or team, a bad parameter and a forbidden read are answered
/// with statuses the document lists, as problems.
async fn every_read_answers_a_documented_status_with_the_body_its_schema_describes(app: &QueryApp) {
    let s = script(app).await;
    let doc = serde_json::to_value(trellis_queries::openapi::document()).expect("JSON");
    let (riley, team, leader) = (s.riley, s.world.team, s.world.leader);
    let admin = app.admin();
    let nobody = Uuid::now_v7();
    // (template, a request that succeeds, one that finds nothing, one with a bad parameter)
    let reads: Vec<(&str, String, Option<String>, Option<String>)> = vec![
        (
            "/v1/reps/{rep_id}",
            format!("/v1/reps/{riley}"),
            Some(format!("/v1/reps/{nobody}")),
            None,
        ),
        (
            "/v1/reps/{rep_id}/profile",
            format!("/v1/reps/{riley}/profile"),
            Some(format!("/v1/reps/{nobody}/profile")),
            None,
        ),
        (
            "/v1/reps/{rep_id}/timeline",
            format!("/v1/reps/{riley}/timeline?bucket=week&from=2026-01-01&to=2026-03-31"),
            Some(format!("/v1/reps/{nobody}/timeline")),
            Some(format!("/v1/reps/{riley}/timeline?bucket=fortnight")),
        ),
        (
            "/v1/reps/{rep_id}/as-of",
            format!("/v1/reps/{riley}/as-of?at={T2}&time=recorded"),
            Some(format!("/v1/reps/{nobody}/as-of?at={T2}")),
            Some(format!("/v1/reps/{riley}/as-of?at=yesterday")),
        ),
        (
            "/v1/reps/{rep_id}/audit",
            format!("/v1/reps/{riley}/audit?limit=50"),
            Some(format!("/v1/reps/{nobody}/audit")),
            Some(format!("/v1/reps/{riley}/audit?limit=0")),
        ),
        (
            "/v1/reps/{rep_id}/review-packet",
            format!("/v1/reps/{riley}/review-packet?from=2026-02-01&to=2026-03-31"),
            Some(format!(
                "/v1/reps/{nobody}/review-packet?from=2026-02-01&to=2026-03-31"
            )),
            Some(format!("/v1/reps/{riley}/review-packet?from=2026-02-01")),
        ),
        (
            "/v1/teams/{team_id}/view",
            format!("/v1/teams/{team}/view?period=2026-02"),
            Some(format!("/v1/teams/{nobody}/view")),
            Some(format!("/v1/teams/{team}/view?period=February")),
        ),
        (
            "/v1/teams/{team_id}/coaching-impact",
            format!("/v1/teams/{team}/coaching-impact?weeks=2"),
            Some(format!("/v1/teams/{nobody}/coaching-impact")),
            Some(format!("/v1/teams/{team}/coaching-impact?weeks=27")),
        ),
        (
            "/v1/leaders/{leader_id}/scorecard",
            format!("/v1/leaders/{leader}/scorecard?from=2026-01-01&to=2026-03-31"),
            Some(format!("/v1/leaders/{nobody}/scorecard")),
            Some(format!(
                "/v1/leaders/{leader}/scorecard?from=2026-04-01&to=2026-03-01"
            )),
        ),
        (
            "/v1/people/{person_id}/export",
            format!("/v1/people/{riley}/export"),
            Some(format!("/v1/people/{nobody}/export")),
            None,
        ),
        (
            "/v1/events",
            "/v1/events?limit=50".to_owned(),
            None,
            Some("/v1/events?after=the-start".to_owned()),
        ),
        (
            "/v1/teams",
            "/v1/teams?limit=1".to_owned(),
            None,
            Some("/v1/teams?limit=0".to_owned()),
        ),
        (
            "/v1/leaders",
            format!("/v1/leaders?team={team}"),
            None,
            Some("/v1/leaders?team=emea".to_owned()),
        ),
        (
            "/v1/reps",
            format!("/v1/reps?team={team}&status=active"),
            None,
            Some("/v1/reps?status=gone".to_owned()),
        ),
        (
            "/v1/competencies",
            "/v1/competencies".to_owned(),
            None,
            Some("/v1/competencies?after=the-start".to_owned()),
        ),
        (
            "/v1/standards",
            "/v1/standards?limit=10".to_owned(),
            None,
            Some("/v1/standards?limit=1001".to_owned()),
        ),
        (
            "/v1/action-items",
            format!("/v1/action-items?team={team}"),
            None,
            Some("/v1/action-items?status=late".to_owned()),
        ),
        (
            "/v1/support-requests",
            format!("/v1/support-requests?rep={riley}&status=resolved"),
            None,
            Some("/v1/support-requests?rep=riley".to_owned()),
        ),
    ];
    for (template, ok, missing, bad) in &reads {
        let r = app.get_as(ok, &admin).await;
        r.expect(200);
        assert_eq!(r.header("content-type"), Some("application/json"), "{ok}");
        assert_documented(&doc, "GET", template, 200, &r.json);
        for path in missing.iter().chain(bad) {
            let r = app.get_as(path, &admin).await;
            assert!(r.status.is_client_error(), "{path}: {}", r.text());
            assert_documented(&doc, "GET", template, r.status.as_u16(), &r.json);
        }
        // Sam may not read Riley's records, nor any team's or the feed
        // (the competency framework, rubrics included, is everyone's).
        let r = app.get_as(ok, &app.rep(s.sam)).await;
        if ["/v1/competencies", "/v1/standards"].contains(template) {
            r.expect(200);
            continue;
        }
        r.expect_problem(403, "forbidden");
        assert_documented(&doc, "GET", template, 403, &r.json);
    }
    assert_eq!(
        reads.len() + 1,
        crate::http::declared_query_routes().len(),
        "every JSON read is checked here; the event stream in its own test"
    );
}

// ---------------------------------------------------------------------------
// What a rep sees of retracted and private feedback

pub(crate) const KEPT_NOTE: &str = "SHARED-KEPT: you asked about the budget cycle first.";
pub(crate) const RETRACTED_NOTE: &str = "SHARED-RETRACTED: meant for another rep.";
pub(crate) const PRIVATE_NOTE: &str = "PRIVATE-NOTE: talks over the customer.";
pub(crate) const RETRACTION_REASON: &str = "RETRACTION-REASON: given to the wrong rep.";

/// Riley (in `world.team`), given three pieces of feedback at T1: shared
/// and kept, shared and then retracted, private. Stream versions: 1 joined,
/// 2 kept, 3 retracted, 4 private, 5 the retraction. Projected.
pub(crate) struct Retraction {
    pub(crate) world: World,
    pub(crate) riley: Uuid,
}

/// The notes and the action item of [`retracted_session`].
pub(crate) const RETRACTED_SESSION_NOTES: &str = "RETRACTED-SESSION: held with another rep.";
pub(crate) const RETRACTED_ITEM: &str = "RETRACTED-ITEM: call the customer back";

/// Records a shared coaching session with `rep`, with one action item, and
/// retracts it (reason [`RETRACTION_REASON`]), at the app's clock.
pub(crate) async fn retracted_session(app: &QueryApp, world: &World, rep: Uuid) {
    let admin = app.admin();
    let mut session = session_body(world);
    session["visibility"] = json!("shared");
    session["notes"] = json!(RETRACTED_SESSION_NOTES);
    session["action_items"] =
        json!([{ "description": RETRACTED_ITEM, "owner": "rep", "due_on": "2026-02-20" }]);
    let session_id = app
        .post_json(
            &format!("/v1/reps/{rep}/coaching-sessions"),
            &admin,
            &session,
        )
        .await
        .expect(201)
        .id();
    app.post_json(
        &format!("/v1/reps/{rep}/corrections"),
        &admin,
        &json!({
            "fact_id": session_id,
            "reason": RETRACTION_REASON,
            "correction": { "kind": "retracted" },
        }),
    )
    .await
    .expect(200);
}

pub(crate) async fn retraction(app: &QueryApp) -> Retraction {
    let admin = app.admin();
    app.set_clock(T0);
    let world = app.world().await;
    let riley = app.join_rep(world.team).await;
    app.set_clock(T1);
    let path = format!("/v1/reps/{riley}/feedback");
    let mut ids = Vec::new();
    for (note, visibility) in [
        (KEPT_NOTE, "shared"),
        (RETRACTED_NOTE, "shared"),
        (PRIVATE_NOTE, "private"),
    ] {
        let mut body = feedback_body(&world, "2026-02-02");
        body["note"] = json!(note);
        body["visibility"] = json!(visibility);
        ids.push(app.post_json(&path, &admin, &body).await.expect(201).id());
    }
    app.post_json(
        &format!("/v1/reps/{riley}/corrections"),
        &admin,
        &json!({
            "fact_id": ids[1],
            "reason": RETRACTION_REASON,
            "correction": { "kind": "retracted" },
        }),
    )
    .await
    .expect(200);
    app.project().await;
    Retraction { world, riley }
}

/// The domain's rule (`Rep::sees_feedback`): a rep sees feedback only when
/// it is shared and not retracted. Their audit trail lists every event but
/// withholds the content of the rest, and of the retraction; a leader of
/// the team sees it all.
async fn the_audit_trail_withholds_retracted_and_private_feedback_from_the_rep(app: &QueryApp) {
    let s = retraction(app).await;
    let path = format!("/v1/reps/{}/audit", s.riley);
    let mine = app.get_as(&path, &app.rep(s.riley)).await;
    mine.expect(200);
    let at = audit_entry;
    let kept = at(&mine.json, 2);
    assert_eq!(kept["event_type"], json!("FeedbackGiven"));
    assert_eq!(kept["withheld"], json!(false), "{kept}");
    assert_eq!(kept["payload"]["note"], json!(KEPT_NOTE));
    for (version, what) in [
        (3, "the retracted feedback"),
        (4, "the private feedback"),
        (5, "the retraction"),
    ] {
        let entry = at(&mine.json, version);
        assert_eq!(entry["withheld"], json!(true), "{what}: {entry}");
        assert_eq!(entry["payload"], Value::Null, "{what}: {entry}");
    }
    assert_eq!(
        at(&mine.json, 5)["corrects"]["stream_version"],
        json!(3),
        "the rep still sees that a record was corrected"
    );
    let text = mine.text();
    for hidden in [RETRACTED_NOTE, PRIVATE_NOTE, RETRACTION_REASON] {
        assert!(
            !text.contains(hidden),
            "the rep's trail shows {hidden:?}: {text}"
        );
    }

    let leader = app.leader_as(s.world.leader, &[s.world.team]);
    let full = app.get_as(&path, &leader).await;
    full.expect(200);
    for version in 1..=5 {
        assert_eq!(at(&full.json, version)["withheld"], json!(false));
    }
    assert_eq!(at(&full.json, 3)["payload"]["note"], json!(RETRACTED_NOTE));
    assert_eq!(at(&full.json, 4)["payload"]["note"], json!(PRIVATE_NOTE));
    assert_eq!(
        at(&full.json, 5)["payload"]["reason"],
        json!(RETRACTION_REASON)
    );
}

/// The entry of an audit trail at a stream version.
fn audit_entry(trail: &Value, version: u64) -> Value {
    trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["stream_version"] == json!(version))
        .unwrap_or_else(|| panic!("version {version} is listed: {trail}"))
        .clone()
}

/// The domain's rule (`Rep::sees_coaching_session`): a coaching session
/// retracted since (held with another rep, say) no longer counts, for the
/// rep as for the read models. The rep's audit trail withholds its notes,
/// its items and the retraction's reason; a leader of the team sees it all.
async fn the_audit_trail_withholds_a_retracted_coaching_session_from_the_rep(app: &QueryApp) {
    app.set_clock(T0);
    let world = app.world().await;
    let riley = app.join_rep(world.team).await;
    app.set_clock(T1);
    retracted_session(app, &world, riley).await;
    app.project().await;

    // Stream versions: 1 joined, 2 the session, 3 the retraction.
    let path = format!("/v1/reps/{riley}/audit");
    let mine = app.get_as(&path, &app.rep(riley)).await;
    mine.expect(200);
    for (version, what) in [(2, "the retracted session"), (3, "the retraction")] {
        let entry = audit_entry(&mine.json, version);
        assert_eq!(entry["withheld"], json!(true), "{what}: {entry}");
        assert_eq!(entry["payload"], Value::Null, "{what}: {entry}");
    }
    let text = mine.text();
    for hidden in [RETRACTED_SESSION_NOTES, RETRACTED_ITEM, RETRACTION_REASON] {
        assert!(
            !text.contains(hidden),
            "the rep's trail shows {hidden:?}: {text}"
        );
    }

    let leader = app.leader_as(world.leader, &[world.team]);
    let full = app.get_as(&path, &leader).await;
    full.expect(200);
    assert_eq!(
        audit_entry(&full.json, 2)["payload"]["notes"],
        json!(RETRACTED_SESSION_NOTES)
    );
    assert_eq!(
        audit_entry(&full.json, 3)["payload"]["reason"],
        json!(RETRACTION_REASON)
    );
}

/// The audit route and the review packet decide who may read on the rep's
/// stream as the stream cache holds it (reading only what was appended
/// since), before the stored trail is read or the packet built: a leader of
/// another team is refused without a read of the stream from its start.
async fn a_caller_without_access_is_refused_before_the_audit_trail_or_packet_is_read(
    app: &QueryApp,
) {
    let s = retraction(app).await;
    let stream = format!("rep-{}", s.riley);
    let leader = app.leader_as(s.world.leader, &[s.world.team]);
    let other_leader = app.leader_as(s.world.other_leader, &[s.world.other_team]);
    let audit = format!("/v1/reps/{}/audit", s.riley);
    let packet = format!(
        "/v1/reps/{}/review-packet?from=2026-02-01&to=2026-02-28",
        s.riley
    );

    // Another rep: refused before anything is read.
    app.reads.clear();
    for path in [&audit, &packet] {
        app.get_as(path, &app.rep(Uuid::now_v7()))
            .await
            .expect_problem(403, "forbidden");
    }
    assert_eq!(app.reads.reads_of(&stream), Vec::<u64>::new());

    // The team's leader, cold: the cache reads the stream, then the trail is read.
    app.reads.clear();
    app.get_as(&audit, &leader).await.expect(200);
    assert_eq!(app.reads.reads_of(&stream), [0, 0]);

    // A leader of another team: refused on what the cache holds, having read
    // only what was appended since its last look (nothing) — never the trail,
    // never the stream again for a packet.
    app.reads.clear();
    for path in [&audit, &packet] {
        let r = app.get_as(path, &other_leader).await;
        r.expect_problem(403, "forbidden");
        assert!(
            r.json["detail"]
                .as_str()
                .unwrap()
                .contains("not in a team you lead"),
            "{}",
            r.text()
        );
    }
    assert_eq!(
        app.reads.reads_of(&stream),
        [5, 5],
        "each refusal read only after the cached version 5"
    );

    // The team's leader, warm: the trail is read once; the packet replays the
    // cached stream without reading it again.
    app.reads.clear();
    app.get_as(&audit, &leader).await.expect(200);
    assert_eq!(app.reads.reads_of(&stream), [5, 0]);
    app.reads.clear();
    app.get_as(&packet, &leader).await.expect(200);
    assert_eq!(app.reads.reads_of(&stream), [5]);
}

/// Every read that finds nothing in the read models says why it may be so:
/// the projection may not have caught up with what was just recorded.
async fn a_missing_rep_team_or_leader_says_the_projection_may_not_have_caught_up(app: &QueryApp) {
    let admin = app.admin();
    let nobody = Uuid::now_v7();
    for path in [
        format!("/v1/reps/{nobody}"),
        format!("/v1/reps/{nobody}/profile"),
        format!("/v1/reps/{nobody}/timeline"),
        format!("/v1/teams/{nobody}/view"),
        format!("/v1/teams/{nobody}/coaching-impact"),
        format!("/v1/leaders/{nobody}/scorecard"),
    ] {
        let r = app.get_as(&path, &admin).await;
        r.expect_problem(404, "not-found");
        let detail = r.json["detail"].as_str().unwrap();
        assert!(
            detail.contains(&nobody.to_string())
                && detail.contains("the projection may not have caught up yet: retry in a second"),
            "{path}: {detail}"
        );
    }
}

/// With `to` left out the scorecard ends today; a `from` after today is
/// refused naming today and what to send, not a `to` nobody sent.
async fn a_scorecard_from_after_today_without_to_says_what_was_sent(app: &QueryApp) {
    app.set_clock(T0);
    let admin = app.admin();
    let leader = Uuid::now_v7();
    let r = app
        .get_as(
            &format!("/v1/leaders/{leader}/scorecard?from=2026-02-01"),
            &admin,
        )
        .await;
    r.expect_problem(400, "bad-request");
    let detail = r.json["detail"].as_str().unwrap();
    assert!(
        detail.contains("from (2026-02-01) is after today (2026-01-02)"),
        "{detail}"
    );
    assert!(
        detail.contains("send a from on or before 2026-01-02")
            && detail.contains("a to on or after 2026-02-01"),
        "{detail}"
    );
    assert!(!detail.contains("after to ("), "no `to` was sent: {detail}");
    // Both sent and out of order: both named as sent.
    let r = app
        .get_as(
            &format!("/v1/leaders/{leader}/scorecard?from=2026-02-01&to=2026-01-15"),
            &admin,
        )
        .await;
    r.expect_problem(400, "bad-request");
    let detail = r.json["detail"].as_str().unwrap();
    assert!(
        detail.contains("to (2026-01-15)") && detail.contains("from (2026-02-01)"),
        "{detail}"
    );
}
