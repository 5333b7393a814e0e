//! The dashboard in a real browser: `tests/browser/journeys.mjs` drives
//! headless Chromium (playwright-core, pinned in `tests/browser`) through
//! what leaders, reps and admins do, and runs axe-core on every page and
//! form in each role, against a Trellis served here on a real port with its
//! read models kept up to date. This test prepares the organisation, runs
//! the journeys, then checks in the log what they recorded: a double click
//! once, a stale form nothing, a previewed import only when confirmed.
//! Screenshots go to `tests/artifacts/journey-*.png`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Days;
use serde_json::json;
use trellis_eventstore::Checkpoint;
use trellis_projections::engine::Engine;
use trellis_projections::growth::{Growth, GrowthSettings};
use trellis_tests::{Kind, slow_tests_enabled};
use uuid::Uuid;

use crate::http::{TestApp, read_store};

pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";

pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// What the browser tests need and is missing here, if anything: Chromium,
/// Node and these npm packages in `tests/browser/node_modules`.
pub(crate) fn missing(modules: &[&str]) -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} (the Debian package chromium)"));
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("node (the Debian package nodejs)".into());
    }
    for module in modules {
        if !workspace()
            .join("tests/browser/node_modules")
            .join(module)
            .exists()
        {
            return Some(format!(
                "tests/browser/node_modules/{module} (run `npm ci` in tests/browser)"
            ));
        }
    }
    None
}

/// A CSV of 25 weeks of calls for each of `reps`.
fn weeks_of_calls(reps: &[Uuid]) -> Vec<String> {
    let mut lines = vec!["rep,metric,period,value".to_owned()];
    for rep in reps {
        for week in 2..27 {
            lines.push(format!("{rep},calls_made,2026-W{week:02},{}", 30 + week));
        }
    }
    lines
}

async fn count(app: &TestApp, event_type: &str, note: Option<&str>) -> usize {
    app.store
        .read_all(Checkpoint::START, 1_000_000)
        .await
        .expect("read the log")
        .iter()
        .filter(|e| e.event_type == event_type)
        .filter(|e| note.is_none_or(|n| e.payload["note"] == n))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaders_reps_and_admins_do_their_work_in_chromium_and_every_page_passes_axe() {
    if let Some(what) = missing(&["playwright-core"]) {
        assert!(
            !slow_tests_enabled(),
            "TRELLIS_SLOW_TESTS=1 but {what} is missing (tests/run installs it)"
        );
        eprintln!("skipped: {what} is missing (set TRELLIS_SLOW_TESTS=1 to require it)");
        return;
    }
    let app = TestApp::spawn_serving(Kind::Sqlite).await;
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let feedback = app.give_feedback(&world, rep).await;
    // Due months ago, owned by the rep: overdue on the team page.
    app.action_item(&world, rep).await;
    let support_request = app.support_request(rep).await;
    let mut reps = vec![rep];
    for _ in 0..3 {
        reps.push(app.join_rep(world.team).await);
    }
    // The rep the admin erases, last, and a second leader of the team, whose
    // name the admin erases after.
    let to_erase = app.join_rep(world.team).await;
    app.give_feedback(&world, to_erase).await;
    let leader_to_erase = Uuid::now_v7();
    app.post_json(
        &format!("/v1/teams/{}/leaders", world.team),
        &app.admin(),
        &json!({ "leader_id": leader_to_erase, "leader_name": "Ezra Eraseme" }),
    )
    .await
    .expect(200);

    // The read models follow the log, as `trellis serve` keeps them.
    let (store, read) = (app.store.clone(), read_store(&app.backend).await);
    let projector = tokio::spawn(async move {
        let (engine, growth) = (
            Engine::new(store, read),
            Growth::new(GrowthSettings::default()),
        );
        loop {
            let _ = engine.catch_up(&growth).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = app.router.clone();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let today = chrono::Utc::now().date_naive();
    let good = weeks_of_calls(&reps);
    let mut bad = good.clone();
    bad[5] = format!("{rep},calls_made,2026-W06,lots");
    bad[40] = format!("{},calls_made,2026-13,40", reps[1]);
    bad[77] = format!("{},calls_made,2026-W03,40", Uuid::now_v7());
    let double_click_note = format!("Clear next steps on every call ({}).", Uuid::now_v7());
    let artifacts = workspace().join("tests/artifacts");
    std::fs::create_dir_all(&artifacts).expect("tests/artifacts");
    let config = json!({
        "base": base,
        "artifacts": artifacts,
        "chromium": CHROMIUM,
        "rep": { "id": rep, "token": app.rep(rep) },
        "erase": to_erase,
        "eraseLeader": leader_to_erase,
        "team": world.team,
        "leader": app.leader_as(world.leader, &[world.team]),
        "leaderId": world.leader,
        "admin": app.admin(),
        "auditor": app.auditor(),
        "competency": world.competency,
        "standard": world.standard,
        "feedback": feedback,
        "supportRequest": support_request,
        "today": today.to_string(),
        "due": today.checked_add_days(Days::new(14)).expect("a date").to_string(),
        "beforeJoining": "2025-12-01",
        "doubleClickNote": double_click_note,
        "csvGood": good.join("\n"),
        "csvBad": bad.join("\n"),
    });
    let dir = trellis_tests::temp_dir();
    let config_file = dir.join("journeys.json");
    std::fs::write(&config_file, config.to_string()).expect("the config");

    let ran = tokio::task::spawn_blocking(move || {
        let (out, err) = (dir.join("stdout"), dir.join("stderr"));
        let mut child = std::process::Command::new("node")
            .arg(workspace().join("tests/browser/journeys.mjs"))
            .arg(&config_file)
            .current_dir(workspace().join("tests/browser"))
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("node starts");
        let deadline = Instant::now() + Duration::from_secs(300);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let read =
            |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
        (status, read(&out), read(&err))
    })
    .await
    .expect("the journeys ran");
    let (status, stdout, stderr) = ran;
    assert!(
        status.is_some_and(|s| s.success()),
        "the journeys failed ({status:?}):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("ok: every journey"), "{stdout}\n{stderr}");

    // (a): the session the leader logged is in `trellis log`, as an operator
    // reads it (tests/run builds the binary and names it in TRELLIS_BIN).
    match std::env::var("TRELLIS_BIN") {
        Ok(bin) if Path::new(&bin).exists() => {
            let output = std::process::Command::new(&bin)
                .arg("log")
                .arg("--data-dir")
                .arg(app.backend.data_dir())
                .env_remove("TRELLIS_DATABASE_URL")
                .output()
                .expect("trellis log runs");
            let printed = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "trellis log: {output:?}");
            assert!(
                printed.lines().any(|l| l.contains("CoachingSessionHeld")
                    && l.contains("Walked through two discovery calls")),
                "the session in trellis log:\n{printed}"
            );
        }
        _ => assert!(
            !slow_tests_enabled(),
            "TRELLIS_SLOW_TESTS=1 but TRELLIS_BIN names no trellis binary (tests/run builds it)"
        ),
    }

    // What the journeys recorded, as the log has it.
    for (event_type, note, n, why) in [
        (
            "FeedbackGiven",
            Some(double_click_note.as_str()),
            1,
            "a double click records once",
        ),
        (
            "CoachingSessionHeld",
            None,
            3,
            "the seeded one, (a) and (g)",
        ),
        ("FeedbackAcknowledged", None, 1, "(b)"),
        ("ActionItemCompleted", None, 1, "(b)"),
        ("SupportResolved", None, 0, "a stale form records nothing"),
        ("SkillAssessed", None, 0, "a refused form records nothing"),
        (
            "PerformanceMeasured",
            None,
            100,
            "the import, confirmed once",
        ),
    ] {
        assert_eq!(
            count(&app, event_type, note).await,
            n,
            "{event_type}: {why}"
        );
    }
    server.abort();
    projector.abort();
    app.cleanup().await;
}
