//! The dashboard and the demo organisation.
//!
//! - The demo is seeded through the command service on both backends, the
//!   projection catches up, and every page is rendered through the real
//!   router (`oneshot`): names and figures on the pages are the read models'.
//! - Who may see what: a rep sees only their own pages and never a private
//!   note; a leader only their teams; no token means the sign-in page.
//! - The demo is deterministic: the same seed records the same events.
//! - End to end in headless Chromium (when installed; required with
//!   `TRELLIS_SLOW_TESTS=1`): sign in as a leader, open the team, a rep, the
//!   rep as of a past date and a review packet; screenshots go to
//!   `tests/artifacts/`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{Days, NaiveDate, Utc};
use serde_json::{Value, json};
use tower::ServiceExt;
use trellis_commands::{CommandState, CommandsConfig};
use trellis_dashboard::DashboardState;
use trellis_demo::{self as demo, DemoOrg};
use trellis_domain::rep::{RepEvent, Visibility};
use trellis_domain::{Event, LeaderId, Period, PeriodKind, RepId, TeamId};
use trellis_eventstore::{EventStore, StreamId};
use trellis_http::auth::TokenKey;
use trellis_http::{HttpState, SystemClock};
use trellis_projections::engine::Engine;
use trellis_projections::growth::{Growth, GrowthSettings};
use trellis_projections::query::ReadModels;
use trellis_projections::store::ReadStore;
use trellis_queries::QueryState;
use trellis_tests::{Backend, Kind, slow_tests_enabled};

use crate::http::{on_each_backend, read_store};

const SECRET: &[u8; 32] = b"trellis-dashboard-tests-secret!!";
const SEED: u64 = 42;

/// The write API over `backend`, as the demo records through it.
fn commands(backend: &Backend) -> CommandState {
    let key = TokenKey::new(SECRET.to_vec()).expect("a 32-byte secret");
    let http = HttpState::new(backend.store.clone(), key, Arc::new(SystemClock));
    CommandState::new(http, CommandsConfig::default())
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// The demo on a backend of its own, caught up, behind the dashboard and
/// the read API, as `trellis serve` mounts them.
struct Demo {
    backend: Backend,
    reads: QueryState,
    read: Arc<dyn ReadStore>,
    org: DemoOrg,
    router: Router,
    seeding: Duration,
}

impl Demo {
    async fn seed(kind: Kind, seed: u64) -> Demo {
        let backend = Backend::new(kind).await;
        let commands = commands(&backend);
        let started = Instant::now();
        let org = demo::seed(&commands, seed, today())
            .await
            .expect("the demo seeds");
        let seeding = started.elapsed();
        trellis_tests::settle(&*backend.store).await;
        let read = read_store(&backend).await;
        Engine::new(backend.store.clone(), read.clone())
            .catch_up(&Growth::new(GrowthSettings::default()))
            .await
            .expect("catch up")
            .expect("the runner lease");
        let http = commands.http().clone();
        let reads = QueryState::new(http.clone(), ReadModels::new(read.clone()));
        let router = trellis_http::app(
            http,
            [
                trellis_queries::api(reads.clone()),
                trellis_dashboard::api(
                    DashboardState::new(reads.clone()).with_access(
                        crate::http::access(
                            &backend,
                            ReadModels::new(read.clone()),
                            Default::default(),
                        )
                        .await,
                        false,
                    ),
                ),
            ],
        );
        Demo {
            backend,
            reads,
            read,
            org,
            router,
            seeding,
        }
    }

    fn models(&self) -> ReadModels {
        ReadModels::new(self.read.clone())
    }

    /// GET `path` with `token` as a bearer (empty: none); (status, body).
    async fn get(&self, path: &str, token: &str) -> (StatusCode, String) {
        let mut request = Request::builder().uri(path);
        if !token.is_empty() {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(request.body(Body::empty()).expect("a request"))
            .await
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, String) {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn leader_token(&self, team: usize) -> &str {
        &self.org.leaders[team].token
    }

    fn rep(&self, name: &str) -> &demo::DemoRep {
        self.org
            .rep(name)
            .unwrap_or_else(|| panic!("the demo has {name}"))
    }

    async fn cleanup(self) {
        drop(self.router);
        drop(self.reads);
        drop(self.read);
        self.backend.cleanup().await;
    }
}

/// Each event of the log as (stream, version, type, actor, payload), in stream order.
async fn events(store: &dyn EventStore) -> Vec<(String, u64, String, String, Value)> {
    let mut out = vec![];
    trellis_eventstore::scan_streams_after(store, None, 1000, |e| {
        out.push((
            e.stream_id.to_string(),
            e.stream_version,
            e.event_type,
            e.metadata.actor,
            e.payload,
        ));
        Ok::<_, trellis_eventstore::Error>(std::ops::ControlFlow::Continue(()))
    })
    .await
    .expect("scan");
    out
}

fn assert_contains(body: &str, needle: &str, what: &str) {
    assert!(
        body.contains(needle),
        "{what}: expected the page to contain {needle:?}; it was {} bytes: {}",
        body.len(),
        &body[..body.len().min(3000)]
    );
}

// ---------------------------------------------------------------------------

async fn the_demo_pages_show_the_read_models(kind: Kind) {
    let demo = Demo::seed(kind, SEED).await;
    let today = today();
    let org = &demo.org;
    eprintln!(
        "{kind:?}: seeded the demo with {} requests in {:.1}s",
        org.requests,
        demo.seeding.as_secs_f64()
    );
    assert_eq!(org.reps.len(), 12);
    assert_eq!(org.teams.len(), 2);
    let models = demo.models();

    // The team page, as its leader.
    let team = &org.teams[0];
    let (status, body) = demo
        .get(&format!("/teams/{}", team.id), demo.leader_token(0))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_contains(&body, "<html lang=\"en\">", "team page");
    assert_contains(&body, &team.name, "team page");
    assert_contains(&body, "Maya Okafor", "team page");
    for name in ["Priya Nair", "Tom Becker", "Aisha Khan", "Marcus Hale"] {
        assert_contains(&body, name, "team page lists its reps");
    }
    let period = Period::containing(PeriodKind::Month, today);
    let view = models
        .team_view(TeamId::from_uuid(team.id), period, today)
        .await
        .expect("team view")
        .expect("the team");
    assert_contains(
        &body,
        &format!(
            "{} of {} reps coached",
            view.coaching.reps_coached, view.headcount
        ),
        "coaching coverage",
    );
    for rep in &view.needs_support {
        assert_contains(&body, rep.name.as_ref(), "who needs support");
        assert_contains(
            &body,
            &rep.standing.reasons[0].replace('\'', "&#39;"),
            "why they need support",
        );
    }
    assert!(
        view.needs_support
            .iter()
            .any(|r| r.name.as_ref() == "Aisha Khan"),
        "the rep with an open tools request needs support"
    );
    assert_contains(&body, "Attainment heat map", "heat map");
    assert_contains(&body, "Quality standards", "quality apart");
    assert_contains(&body, "Quantity standards", "quantity apart");
    assert_contains(&body, "New hires on the ramp", "ramp");
    assert_contains(&body, "The dialer drops calls", "open support request");

    // A rep page, as their leader.
    let priya = demo.rep("Priya Nair");
    let started = Instant::now();
    let (status, body) = demo
        .get(&format!("/reps/{}", priya.id), demo.leader_token(0))
        .await;
    let rep_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(status, StatusCode::OK, "{body}");
    let profile = models
        .rep_profile(RepId::from_uuid(priya.id), today)
        .await
        .expect("profile")
        .expect("Priya");
    assert_contains(&body, "Priya Nair", "rep page");
    for reason in &profile.standing.reasons {
        assert_contains(&body, &reason.replace('\'', "&#39;"), "standing reasons");
    }
    assert_contains(&body, "Level per competency", "levels chart");
    assert_contains(&body, "<svg", "charts are inline SVG");
    assert_contains(&body, "Quality standards, weekly", "quality chart");
    assert_contains(&body, "Quantity standards, weekly", "quantity chart");
    assert_contains(&body, "Coaching and feedback", "timeline");
    assert_contains(&body, "Standing over time", "standing history");
    assert_contains(&body, "correction", "the corrected assessment");
    if profile.profile.phase.quality_gate_passed_on.is_some() {
        assert_contains(&body, "Quality gate passed", "the gate is marked");
    }
    eprintln!(
        "{kind:?}: rep page rendered in {rep_ms:.1} ms ({} KiB)",
        body.len() / 1024
    );

    // The rep as of a past date.
    let as_of = today.checked_sub_days(Days::new(120)).expect("a date");
    let started = Instant::now();
    let (status, body) = demo
        .get(
            &format!("/reps/{}?as_of={as_of}", priya.id),
            demo.leader_token(0),
        )
        .await;
    eprintln!(
        "{kind:?}: rep page as of {as_of} rendered in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_contains(&body, &format!("as of {as_of}"), "the as-of notice");
    // A date the page cannot show is said beside the field, on today's
    // page: the reader stays with the rep.
    let tomorrow = today.succ_opt().expect("a date");
    for (as_of, why) in [
        (tomorrow.to_string(), format!("{tomorrow} is in the future")),
        (
            "yesterday".to_owned(),
            "&quot;yesterday&quot; is not a date".to_owned(),
        ),
        (
            "2020-01-01".to_owned(),
            "Priya Nair had not joined by 2020-01-01".to_owned(),
        ),
    ] {
        let (status, body) = demo
            .get(
                &format!("/reps/{}?as_of={as_of}", priya.id),
                demo.leader_token(0),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{as_of}: {body}");
        assert_contains(&body, "id=\"as_of-error\"", "the error beside the field");
        assert_contains(&body, &why, "what was wrong");
        assert_contains(&body, "Standing", "today's page");
    }

    // The leader's scorecard.
    let leader = &org.leaders[0];
    let (status, body) = demo
        .get(&format!("/leaders/{}", leader.id), &leader.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let from = today.checked_sub_days(Days::new(89)).expect("a date");
    let card = models
        .leader_scorecard(LeaderId::from_uuid(leader.id), from, today, today)
        .await
        .expect("scorecard")
        .expect("the leader");
    assert_contains(
        &body,
        &format!("{} <small>sessions</small>", card.sessions_held),
        "sessions held",
    );
    assert_contains(
        &body,
        &format!("{} reps coached", card.reps_coached),
        "reps coached",
    );

    // Review packet and audit trail.
    let (status, body) = demo
        .get(&format!("/reps/{}/review", priya.id), demo.leader_token(0))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_contains(&body, "Review packet", "review packet");
    assert_contains(&body, "Skill levels", "review packet levels");
    assert_contains(&body, "team Northside SDRs", "the team by its name");
    // A period it cannot show is said beside its field, with the form.
    for (query, field, why) in [
        (
            "from=2026-13-01",
            "from",
            "&quot;2026-13-01&quot; is not a date",
        ),
        (
            "from=2026-11-02&to=2026-11-01",
            "to",
            "The period ends (2026-11-01) before it starts (2026-11-02)",
        ),
        (
            "from=2020-01-01&to=2020-02-01",
            "to",
            "had not joined by 2020-02-01",
        ),
    ] {
        let (status, body) = demo
            .get(
                &format!("/reps/{}/review?{query}", priya.id),
                demo.leader_token(0),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_contains(&body, &format!("id=\"{field}-error\""), query);
        assert_contains(&body, why, query);
        assert_contains(&body, "Pick the period above", query);
    }
    // A period that runs on past today is shown up to today, and says so.
    let (status, body) = demo
        .get(
            &format!("/reps/{}/review?to=2099-01-01", priya.id),
            demo.leader_token(0),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_contains(
        &body,
        "ends on 2099-01-01, which is still ahead",
        "the cut period",
    );
    assert_contains(&body, "Skill levels", "the packet up to today");
    let (status, body) = demo
        .get(&format!("/reps/{}/audit", priya.id), &org.auditor_token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_contains(&body, "Hash chain verified", "audit trail");
    // Each cell says its column, so a phone shows an event as labelled lines.
    assert_contains(&body, "<table class=\"stack\">", "a table a phone stacks");
    assert_contains(&body, "<td data-label=\"Note\">", "labelled cells");
    // Each event in words, its type beside them; the figures of a record
    // in its note.
    assert_contains(
        &body,
        "<td data-label=\"Event\"><span>Joined <span class=\"muted\">(RepJoined)</span></span></td>",
        "an event in words",
    );
    assert_contains(
        &body,
        "<td data-label=\"Note\">level ",
        "an assessment's level",
    );
    // A measurement by its standard's name and unit, the metric's id
    // beside it.
    assert_contains(
        &body,
        "<td data-label=\"Note\"><span>Calls made <span class=\"muted\">(calls_made)</span>, 20",
        "a measurement's standard",
    );
    assert!(
        body.contains(" calls</span></td>"),
        "a measurement in its unit: {body}"
    );
    assert_contains(
        &body,
        "corrects <a href=\"#v",
        "a correction links to what it corrects",
    );
    // And says what the record became, not only why.
    assert!(
        ["</a> (level now ", "</a> (value now ", "</a> (retracted)"]
            .iter()
            .any(|became| body.contains(became)),
        "a correction says what the record became: {body}"
    );

    // The home page lists the teams for an admin.
    let (status, body) = demo.get("/home", &org.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for t in &org.teams {
        assert_contains(&body, &t.name, "home page");
    }

    // A departed rep and a rep on a plan.
    let jonas = demo.rep("Jonas Weber");
    let (_, body) = demo
        .get(&format!("/reps/{}", jonas.id), &org.admin_token)
        .await;
    assert_contains(&body, "Departed", "the rep who moved on");
    assert_contains(&body, "not met", "the plan not met");
    let marcus = demo.rep("Marcus Hale");
    let (_, body) = demo
        .get(&format!("/reps/{}", marcus.id), &org.admin_token)
        .await;
    assert_contains(&body, "met on", "the plan met");

    demo.cleanup().await;
}

on_each_backend!(multi_thread: the_demo_pages_show_the_read_models);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rep_sees_only_their_own_pages_and_no_private_note() {
    let demo = Demo::seed(Kind::Sqlite, SEED).await;
    let org = &demo.org;
    let priya = demo.rep("Priya Nair");
    let tom = demo.rep("Tom Becker");

    // Another rep's pages, the team and a leader's scorecard: 403.
    for path in [
        format!("/reps/{}", tom.id),
        format!("/reps/{}/review", tom.id),
        format!("/reps/{}/audit", tom.id),
        format!("/teams/{}", org.teams[0].id),
        format!("/leaders/{}", org.leaders[0].id),
    ] {
        let (status, body) = demo.get(&path, &priya.token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_contains(&body, "Not yours to see", "a friendly 403 page");
    }
    // A leader of the other team: 403; no token: the sign-in page with 401.
    let (status, _) = demo
        .get(&format!("/teams/{}", org.teams[0].id), demo.leader_token(1))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = demo
        .get(&format!("/reps/{}", priya.id), demo.leader_token(1))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = demo.get(&format!("/reps/{}", priya.id), "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_contains(&body, "Go to the sign-in page", "the way to sign in");
    let (status, body) = demo.get("/reps/not-a-uuid", &org.admin_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = demo
        .get(&format!("/reps/{}", uuid::Uuid::nil()), &org.admin_token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // One private note about Priya that no shared one repeats. The demo
    // draws its notes from a few phrases, and on some days (its history
    // ends today) every private note of hers is also given shared.
    let unique = format!(
        "Rehearse the renewal call before Thursday ({})",
        uuid::Uuid::now_v7().simple()
    );
    let writes = commands(&demo.backend);
    let request = Request::builder()
        .method("POST")
        .uri(format!("/v1/reps/{}/feedback", priya.id))
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", demo.leader_token(0)),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"competency_id": org.competencies[0].0, "kind": "constructive",
                   "note": unique, "visibility": "private", "given_on": today()})
            .to_string(),
        ))
        .expect("a request");
    let response = trellis_http::app(writes.http().clone(), [trellis_commands::api(writes)])
        .oneshot(request)
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::CREATED);
    trellis_tests::settle(&*demo.backend.store).await;
    Engine::new(demo.backend.store.clone(), demo.read.clone())
        .catch_up(&Growth::new(GrowthSettings::default()))
        .await
        .expect("catch up")
        .expect("the runner lease");

    // The private notes about Priya, and the shared ones.
    let stream = StreamId::for_entity("rep", priya.id).expect("stream");
    let recorded = demo
        .backend
        .store
        .read_stream(&stream, 0, 10_000)
        .await
        .expect("read");
    let (mut private, mut shared) = (vec![], vec![]);
    for e in recorded {
        match Event::from_stored(&e.event_type, e.schema_version, e.payload) {
            Ok(Event::Rep(RepEvent::FeedbackGiven(f))) => {
                if f.visibility == Visibility::Private {
                    private.push(f.note.to_string());
                } else {
                    shared.push(f.note.to_string());
                }
            }
            Ok(Event::Rep(RepEvent::CoachingSessionHeld(s))) => {
                if s.visibility == Visibility::Private {
                    private.push(s.notes.to_string());
                } else {
                    shared.push(s.notes.to_string());
                }
            }
            _ => {}
        }
    }
    assert!(
        !private.is_empty(),
        "the demo has private notes about Priya"
    );
    let (status, as_rep) = demo.get(&format!("/reps/{}", priya.id), &priya.token).await;
    assert_eq!(status, StatusCode::OK, "{as_rep}");
    let (_, as_leader) = demo
        .get(&format!("/reps/{}", priya.id), demo.leader_token(0))
        .await;
    assert_contains(&as_leader, "tag private", "the leader sees private notes");
    assert!(
        !as_rep.contains("tag private"),
        "a rep's page shows no private record"
    );
    let only_private: Vec<&String> = private.iter().filter(|n| !shared.contains(n)).collect();
    assert!(only_private.contains(&&unique), "{only_private:?}");
    for note in only_private {
        let escaped = note.replace('\'', "&#39;");
        assert_contains(&as_leader, &escaped, "the leader sees the private note");
        assert!(
            !as_rep.contains(&escaped),
            "the private note {note:?} reached the rep"
        );
    }
    let (_, audit) = demo
        .get(&format!("/reps/{}/audit", priya.id), &priya.token)
        .await;
    assert!(!audit.contains("tag private"), "nor does their audit trail");

    demo.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_sets_an_http_only_cookie_that_opens_the_pages() {
    let demo = Demo::seed(Kind::Sqlite, SEED).await;
    let team = demo.org.teams[0].id;
    let (status, body) = demo.get("/", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_contains(&body, "<label for=\"token\">", "a labelled token field");

    let response = demo
        .router
        .clone()
        .oneshot(
            Request::builder()
                .uri(format!("/login?token={}", demo.leader_token(0)))
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[header::LOCATION],
        format!("/teams/{team}").as_str(),
        "a leader of one team lands on it"
    );
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "reached over plain HTTP, the cookie cannot be Secure: {cookie}"
    );
    let pair = cookie.split(';').next().expect("name=value").to_owned();
    let (status, body) = demo
        .send(
            Request::builder()
                .uri(format!("/teams/{team}"))
                .header(header::COOKIE, pair)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_contains(&body, "Northside SDRs", "the team page through the cookie");

    // A bad token: the form again, with the reason.
    let (status, body) = demo.get("/login?token=nonsense", "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_contains(&body, "role=\"alert\"", "the reason is announced");
    // `next` only goes to a path on this server.
    let response = demo
        .router
        .clone()
        .oneshot(
            Request::builder()
                .uri(format!(
                    "/login?token={}&next=//evil.example/",
                    demo.leader_token(0)
                ))
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(
        response.headers()[header::LOCATION],
        format!("/teams/{team}").as_str()
    );
    demo.cleanup().await;
}

/// One time travel: for every demo rep at ten instants from their start to
/// today, each figure the rep page shows as of a day is the one
/// `GET /v1/reps/{id}/as-of` replays for the end of that day — the standing
/// and its reasons, the focus, coaching, open action items, plans, support
/// requests and skill levels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rep_page_as_of_a_day_shows_what_the_api_replays_for_that_instant() {
    let demo = Demo::seed(Kind::Sqlite, SEED).await;
    let token = demo.org.auditor_token.clone();
    let today = today();
    let mut compared = 0;
    for rep in &demo.org.reps {
        let span = (today - rep.start_date).num_days();
        for k in 1..=10 {
            let day = rep.start_date + chrono::Duration::days(span * k / 10);
            let (status, page) = demo
                .get(&format!("/reps/{}?as_of={day}", rep.id), &token)
                .await;
            assert_eq!(status, StatusCode::OK, "{} on {day}: {page}", rep.name);
            let (status, api) = demo
                .get(&format!("/v1/reps/{}/as-of?at={day}", rep.id), &token)
                .await;
            assert_eq!(status, StatusCode::OK, "{} on {day}: {api}", rep.name);
            let api: Value = serde_json::from_str(&api).expect("JSON");
            let what = format!("{} as of {day}", rep.name);
            assert_page_shows_profile(&page, &api["profile"], &what);
            compared += 1;
        }
    }
    assert_eq!(compared, demo.org.reps.len() * 10);
    demo.cleanup().await;
}

/// Escapes as the dashboard does.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Checks that `page` shows each figure of `view` (a `RepProfileView` as the
/// read API serializes it).
#[track_caller]
fn assert_page_shows_profile(page: &str, view: &Value, what: &str) {
    let p = &view["profile"];
    let label = match view["standing"]["standing"].as_str().expect("a standing") {
        "thriving" => "Thriving",
        "on_track" => "On track",
        "needs_support" => "Needs support",
        "on_improvement_plan" => "On an improvement plan",
        "departed" => "Departed",
        other => panic!("{what}: an unknown standing {other}"),
    };
    let standing = "<h3 id=\"standing\">Standing</h3><p><span class=\"badge";
    let at = page
        .find(standing)
        .unwrap_or_else(|| panic!("{what}: no standing"));
    assert!(
        page[at..]
            .split("</section>")
            .next()
            .is_some_and(|card| card.contains(label)
                && view["standing"]["reasons"]
                    .as_array()
                    .expect("reasons")
                    .iter()
                    .all(|r| card.contains(&format!("<li>{}</li>", esc(r.as_str().unwrap()))))),
        "{what}: the standing card shows {label} and its reasons {}",
        view["standing"]
    );
    let focus = match p["phase"]["phase"].as_str().expect("a phase") {
        "quality" => "Focus: quality first",
        _ => "Focus: quantity",
    };
    assert_contains(page, focus, what);
    for r in p["support_requests"].as_array().expect("support requests") {
        let stands = match (r["resolved_on"].as_str(), r["acknowledged_on"].as_str()) {
            (Some(on), _) => format!("Resolved on {on} ("),
            (None, Some(on)) => format!("Acknowledged on {on}; "),
            (None, None) => "<span class=\"tag overdue\">not acknowledged yet</span> ".to_owned(),
        };
        assert_contains(page, &stands, what);
    }
    let sessions = p["coaching_sessions"].as_u64().expect("a count");
    let noun = if sessions == 1 { "session" } else { "sessions" };
    assert_contains(
        page,
        &format!("{sessions} <small>{noun} in all</small>"),
        what,
    );
    match p["last_coached_on"].as_str() {
        Some(on) => assert_contains(page, &format!("Last coached on {on} ("), what),
        None => assert_contains(page, "Not coached yet.", what),
    }
    match p["levels"].as_object().map_or(0, |l| l.len()) {
        0 => assert_contains(page, "<h2>Levels</h2><p>No skill assessed yet.</p>", what),
        n => assert_eq!(
            page.split("<h2>Levels</h2>")
                .nth(1)
                .and_then(|levels| levels.split("</table>").next())
                .map(|table| table.matches("<tr><th scope=\"row\">").count()),
            Some(n),
            "{what}: a row for each level"
        ),
    }
    let items = view["open_action_items"].as_array().expect("items");
    assert_eq!(
        page.matches("<span class=\"when\">due ").count(),
        items.len(),
        "{what}: the open action items"
    );
    for item in items {
        assert_contains(
            page,
            &format!(
                "<span class=\"when\">due {}</span>{}",
                item["due_on"].as_str().unwrap(),
                esc(item["description"].as_str().unwrap())
            ),
            what,
        );
    }
    for plan in p["plans"].as_array().expect("plans") {
        assert_contains(
            page,
            &format!(
                "<tr><td data-label=\"Started\">{}</td><td data-label=\"Review on\">{}</td>",
                plan["started_on"].as_str().unwrap(),
                plan["review_on"].as_str().unwrap()
            ),
            what,
        );
    }
    for request in p["support_requests"].as_array().expect("support requests") {
        assert_contains(
            page,
            &format!(
                "<tr><td data-label=\"Raised\">{}</td><td data-label=\"Category\">",
                request["raised_on"].as_str().unwrap()
            ),
            what,
        );
        assert_contains(page, &esc(request["description"].as_str().unwrap()), what);
    }
    let levels = p["levels"].as_object().expect("levels");
    for level in levels.values() {
        assert_contains(
            page,
            &format!(
                "<td class=\"n\">{}</td><td>{}</td></tr>",
                level["level"],
                level["assessed_on"].as_str().unwrap()
            ),
            what,
        );
    }
    assert!(
        page.matches("<th scope=\"row\">").count() >= levels.len(),
        "{what}: a row per level"
    );
}

/// The packet page shows the packet `GET /v1/reps/{id}/review-packet`
/// serves (replayed), with the same hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_packet_page_shows_the_packet_the_api_serves_with_its_hash() {
    let demo = Demo::seed(Kind::Sqlite, SEED).await;
    let router = demo.router.clone();
    let priya = demo.rep("Priya Nair");
    let to = today();
    let from = to.checked_sub_days(Days::new(90)).expect("a date");
    let get = |path: String| {
        let router = router.clone();
        let token = demo.leader_token(0).to_owned();
        async move {
            let response = router
                .oneshot(
                    Request::builder()
                        .uri(path)
                        .header(header::AUTHORIZATION, format!("Bearer {token}"))
                        .body(Body::empty())
                        .expect("request"),
                )
                .await
                .expect("infallible");
            let status = response.status();
            let sha = response
                .headers()
                .get("x-packet-sha256")
                .map(|v| v.to_str().expect("ascii").to_owned());
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("a body");
            (status, sha, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let (status, sha, body) = get(format!(
        "/v1/reps/{}/review-packet?from={from}&to={to}",
        priya.id
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sha = sha.expect("the API names the packet's hash");

    let (status, _, page) = get(format!("/reps/{}/review?from={from}&to={to}", priya.id)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_contains(&page, &sha, "the page shows the API's packet hash");
    assert!(
        !page.contains("assembled from the read models"),
        "the page shows the replayed packet, not its read-model sketch"
    );
    assert_eq!(
        page.matches("<h1>").count(),
        1,
        "one title: the page's, not the packet's as well"
    );
    demo.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_an_https_proxy_the_sign_in_cookie_is_secure() {
    let demo = Demo::seed(Kind::Sqlite, SEED).await;
    for (header_name, value) in [
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43"),
    ] {
        let response = demo
            .router
            .clone()
            .oneshot(
                Request::builder()
                    .uri(format!("/login?token={}", demo.leader_token(0)))
                    .header(header_name, value)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let cookie = response.headers()[header::SET_COOKIE]
            .to_str()
            .expect("ascii");
        assert!(
            cookie.contains("; Secure") && cookie.contains("HttpOnly"),
            "{header_name}: {value} -> {cookie}"
        );
    }
    let response = demo
        .router
        .clone()
        .oneshot(
            Request::builder()
                .uri(format!("/login?token={}", demo.leader_token(0)))
                .header("x-forwarded-proto", "http")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii");
    assert!(
        !cookie.contains("Secure"),
        "a proxy that says http: {cookie}"
    );
    demo.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_records_the_same_events() {
    let today = today();
    let mut logs = vec![];
    for seed in [7, 7, 8] {
        let backend = Backend::new(Kind::Sqlite).await;
        let org = demo::seed(&commands(&backend), seed, today)
            .await
            .expect("seed");
        logs.push((events(&*backend.store).await, org.reps[0].id));
        backend.cleanup().await;
    }
    let (a, b, c) = (&logs[0], &logs[1], &logs[2]);
    assert!(
        a.0.len() > 2000,
        "a demo of some size: {} events",
        a.0.len()
    );
    assert_eq!(a.0.len(), b.0.len());
    for (x, y) in a.0.iter().zip(&b.0) {
        assert_eq!(x, y, "the same seed, the same event");
    }
    assert_eq!(a.1, b.1, "the same ids");
    assert_ne!(a.0, c.0, "another seed, another organisation");
}

// ---------------------------------------------------------------------------
// Headless Chromium

const CHROMIUM: &str = "/usr/bin/chromium";

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&dir).expect("tests/artifacts");
    dir
}

/// Runs Chromium headless with `args` and `url`, with a profile of its own
/// (a profile still held by an exiting browser would block the next one);
/// (stdout, stderr).
fn chromium(args: &[String], url: &str) -> (String, String) {
    let profile = trellis_tests::temp_dir();
    let mut child = std::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        // Files, not pipes: a page's DOM overflows a pipe nobody reads yet.
        .stdout(std::fs::File::create(profile.join("stdout")).expect("stdout file"))
        .stderr(std::fs::File::create(profile.join("stderr")).expect("stderr file"))
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s for {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let read = |name: &str| {
        String::from_utf8_lossy(&std::fs::read(profile.join(name)).unwrap_or_default()).into_owned()
    };
    let output = (read("stdout"), read("stderr"));
    let _ = std::fs::remove_dir_all(&profile);
    output
}

fn console_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("Uncaught") || l.contains("ERROR:CONSOLE"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_signs_in_and_browses_in_headless_chromium() {
    if !std::path::Path::new(CHROMIUM).exists() {
        assert!(
            !slow_tests_enabled(),
            "TRELLIS_SLOW_TESTS=1 but {CHROMIUM} is missing: install the Debian package \
             `chromium` (tests/run does)"
        );
        eprintln!("skipped: {CHROMIUM} is not installed (set TRELLIS_SLOW_TESTS=1 to require it)");
        return;
    }
    let demo = Demo::seed(Kind::Sqlite, SEED).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = demo.router.clone();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let org = demo.org.clone();
    let priya = demo.rep("Priya Nair").clone();
    let team = org.teams[0].clone();
    let token = org.leaders[0].token.clone();
    let as_of = today().checked_sub_days(Days::new(120)).expect("a date");
    let pages: Vec<(&str, String, Vec<String>)> = vec![
        (
            "team",
            format!("/teams/{}", team.id),
            vec![
                team.name.clone(),
                "Who needs support".into(),
                "Aisha Khan".into(),
            ],
        ),
        (
            "rep",
            format!("/reps/{}", priya.id),
            vec!["Priya Nair".into(), "Level per competency".into()],
        ),
        (
            "rep-as-of",
            format!("/reps/{}?as_of={as_of}", priya.id),
            vec!["Priya Nair".into(), format!("as of {as_of}")],
        ),
        (
            "review-packet",
            format!("/reps/{}/review", priya.id),
            vec!["Review packet".into(), "Skill levels".into()],
        ),
    ];
    let artifacts = artifacts();
    let result = tokio::task::spawn_blocking(move || {
        for (name, path, expected) in pages {
            let next: String = path
                .bytes()
                .map(|b| match b {
                    b'?' => "%3F".to_owned(),
                    b'=' => "%3D".to_owned(),
                    b'&' => "%26".to_owned(),
                    b => (b as char).to_string(),
                })
                .collect();
            // Each run signs in as the leader and lands on the page.
            let url = format!("{base}/login?token={token}&next={next}");
            let (dom, stderr) = chromium(&["--dump-dom".to_owned()], &url);
            for text in &expected {
                assert!(
                    dom.contains(text.as_str()),
                    "{name}: the browser shows {text:?}; DOM: {}",
                    &dom[..dom.len().min(2000)]
                );
            }
            assert!(
                console_errors(&stderr).is_empty(),
                "{name}: the browser logged errors: {:?}",
                console_errors(&stderr)
            );
            let shot = artifacts.join(format!("dashboard-{name}.png"));
            let (_, stderr) = chromium(
                &[
                    format!("--screenshot={}", shot.display()),
                    "--window-size=1280,900".to_owned(),
                    "--hide-scrollbars".to_owned(),
                ],
                &url,
            );
            assert!(
                shot.exists(),
                "{name}: a screenshot at {}; chromium said: {stderr}",
                shot.display()
            );
            assert!(console_errors(&stderr).is_empty(), "{name}: {stderr}");
        }
        // The rep page on a phone.
        let url = format!("{base}/login?token={}", priya.token);
        let shot = artifacts.join("dashboard-rep-phone.png");
        chromium(
            &[
                format!("--screenshot={}", shot.display()),
                "--window-size=390,844".to_owned(),
            ],
            &url,
        );
        assert!(shot.exists(), "a phone-sized screenshot");
    })
    .await;
    server.abort();
    demo.cleanup().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

// ---------------------------------------------------------------------------
// What a rep sees of retracted and private feedback

/// The domain's rule (`Rep::sees_feedback`): a rep sees feedback only when it
/// is shared and not retracted. Signed in, the rep's page shows the kept
/// feedback and neither the retracted nor the private one, and their audit
/// page neither the retraction's reason; the team's leader sees all three,
/// the retracted one labelled with its reason.
async fn a_rep_signed_in_sees_no_retracted_or_private_record(kind: Kind) {
    use crate::queries::{
        KEPT_NOTE, PRIVATE_NOTE, QueryApp, RETRACTED_ITEM, RETRACTED_NOTE, RETRACTED_SESSION_NOTES,
        RETRACTION_REASON, retracted_session, retraction,
    };

    let app = QueryApp::spawn(kind).await;
    let s = retraction(&app).await;
    // A shared coaching session, with an action item, retracted since.
    retracted_session(&app, &s.world, s.riley).await;
    app.project().await;
    let login = app.get(&format!("/login?token={}", app.rep(s.riley))).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.text());
    let cookie = login
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("the sign-in cookie")
        .to_owned();
    let as_rep = |path: String| {
        let cookie = cookie.clone();
        let app = &app;
        async move {
            let r = app
                .get_with(&path, "", &[("cookie", cookie.as_str())])
                .await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
            r.text()
        }
    };

    let page = as_rep(format!("/reps/{}", s.riley)).await;
    assert_contains(&page, KEPT_NOTE, "the rep sees their shared feedback");
    let hidden = [
        RETRACTED_NOTE,
        PRIVATE_NOTE,
        RETRACTION_REASON,
        RETRACTED_SESSION_NOTES,
        RETRACTED_ITEM,
    ];
    for hidden in hidden {
        assert!(
            !page.contains(hidden),
            "the rep's page shows {hidden:?}: {page}"
        );
    }
    let audit = as_rep(format!("/reps/{}/audit", s.riley)).await;
    // The audit page lists events, not their texts: the session's row is gone.
    for hidden in [RETRACTION_REASON, "tag private", "CoachingSessionHeld"] {
        assert!(
            !audit.contains(hidden),
            "the rep's audit page shows {hidden:?}: {audit}"
        );
    }
    // And says how many it leaves out, and why, where the numbering skips.
    let listed = audit.matches("<tr id=\"v").count();
    let total: usize = audit
        .split("<strong>Hash chain verified:</strong> all ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the chain's count");
    assert!(listed < total, "{listed} of {total}: {audit}");
    assert_contains(
        &audit,
        &format!(
            "{} of these events {} not listed here: they are not shown to reps",
            total - listed,
            if total - listed == 1 { "is" } else { "are" }
        ),
        "the rep is told what is left out",
    );

    let leader = app.leader_as(s.world.leader, &[s.world.team]);
    let page = app.get_as(&format!("/reps/{}", s.riley), &leader).await;
    page.expect(200);
    let page = page.text();
    for shown in [
        KEPT_NOTE,
        RETRACTED_NOTE,
        PRIVATE_NOTE,
        RETRACTED_SESSION_NOTES,
        RETRACTED_ITEM,
    ] {
        assert_contains(&page, shown, "the leader sees every record");
    }
    assert_contains(
        &page,
        &format!("retracted: {RETRACTION_REASON}"),
        "the retracted feedback is labelled for the leader",
    );
    let audit = app
        .get_as(&format!("/reps/{}/audit", s.riley), &leader)
        .await;
    audit.expect(200);
    let audit = audit.text();
    assert_contains(&audit, RETRACTION_REASON, "the leader's audit page");
    assert_contains(
        &audit,
        "CoachingSessionHeld",
        "the leader's audit page lists the retracted session",
    );
    assert!(
        !audit.contains("not listed here"),
        "a leader's trail leaves nothing out: {audit}"
    );
    app.cleanup().await;
}

crate::http::on_each_backend!(multi_thread: a_rep_signed_in_sees_no_retracted_or_private_record);

/// "New hires on the ramp" lists a rep only in the periods their ramp runs:
/// their second week shows them on step 2 of 2, the month after their ramp
/// ended does not (although nothing was recorded about them since).
async fn the_team_page_lists_a_rep_on_the_ramp_only_while_the_ramp_runs(kind: Kind) {
    use crate::queries::QueryApp;

    let app = QueryApp::spawn(kind).await;
    app.set_clock("2026-03-20T09:00:00Z");
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    // The world's standard, weekly calls with a two-week ramp. The rep
    // started on 2026-01-05: week 2 of the ramp is 2026-W03.
    app.post_json(
        &format!("/v1/reps/{rep}/measurements"),
        &app.admin(),
        &json!({ "metric": "calls_made", "period": "2026-W03", "value": 30 }),
    )
    .await
    .expect(201);
    // A unit is an admin's text, shown escaped in its heat table's title.
    let mut standard = crate::http::standard_body("demos_booked");
    standard["name"] = json!("Demos");
    standard["unit"] = json!("<b>demos</b>");
    app.post_json("/v1/standards", &app.admin(), &standard)
        .await
        .expect(201);
    app.post_json(
        &format!("/v1/reps/{rep}/measurements"),
        &app.admin(),
        &json!({ "metric": "demos_booked", "period": "2026-W03", "value": 30 }),
    )
    .await
    .expect(201);
    app.project().await;
    let leader = app.leader_as(world.leader, &[world.team]);
    let page = |period: &'static str| {
        let (app, leader) = (&app, &leader);
        async move {
            let r = app
                .get_as(&format!("/teams/{}?period={period}", world.team), leader)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{period}: {}", r.text());
            r.text()
        }
    };
    let during = page("2026-W03").await;
    assert_contains(&during, "week 2 of 2", "the ramp in its second week");
    assert_contains(
        &during,
        "Demos — weekly, at least 50 &lt;b&gt;demos&lt;/b&gt;</h4>",
        "the unit, escaped",
    );
    assert!(!during.contains("<b>demos</b>"), "{during}");
    let after = page("2026-03").await;
    assert_contains(
        &after,
        "No rep is on a ramp schedule in this period.",
        "the month after the ramp",
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ramp_on_the_team_page_on_postgres() {
    the_team_page_lists_a_rep_on_the_ramp_only_while_the_ramp_runs(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ramp_on_the_team_page_on_the_embedded_store() {
    the_team_page_lists_a_rep_on_the_ramp_only_while_the_ramp_runs(Kind::Sqlite).await;
}
