//! Erasing a person's personal data (crypto-shredding), end to end through
//! `trellis serve`, on both backends: the person reads as erased in every
//! view and export, nothing more is recorded about them, no byte of their
//! personal data is left in the embedded file or in a `pg_dump`, while the
//! log still verifies against the checkpoints kept before the erasure and a
//! replay of the log equals what was served live.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use trellis_tests::{Backend, Kind};

use common::{api, eventually, fetch, printed, run, run_on, serve, trellis_on, wait_for};

const ORIGIN: &str = "trellis.test/log";

/// Personal data of the rep, each string unlike anything else in the file.
const NAME: &str = "Zebulon Quixwright";
const FEEDBACK: &str = "Qwyvern opened the Fjordmark call with a sharp question";
const EVIDENCE: &str = "Plovdivka discovery notes from three calls";
const SESSION_NOTES: &str = "Sprocketfen objection practice went well";
const ACTION_ITEM: &str = "Glimmerdash the pricing page twice";
const SUPPORT: &str = "Brontowidget headset crackles on every call";
/// The leader's name, erased in a second step.
const LEADER_NAME: &str = "Ysoldine Marchbanks";
const SECRETS: [&str; 7] = [
    NAME,
    LEADER_NAME,
    FEEDBACK,
    EVIDENCE,
    SESSION_NOTES,
    ACTION_ITEM,
    SUPPORT,
];

struct Org {
    team: String,
    rep: String,
    leader: String,
    competency: String,
}

fn post(address: &str, token: &str, path: &str, body: Value) -> (u16, Value) {
    let (status, text) = api(address, "POST", path, token, Some(&body));
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

fn created(address: &str, token: &str, path: &str, body: Value) -> String {
    let (status, answer) = post(address, token, path, body);
    assert!(status == 200 || status == 201, "{path}: {status} {answer}");
    answer["id"].as_str().map(str::to_owned).unwrap_or_default()
}

fn get(address: &str, token: &str, path: &str) -> String {
    let (status, body) = api(address, "GET", path, token, None);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// A team, its leader (a name: personal data), a competency and one rep
/// with personal data in every kind of record that holds some.
fn record_a_rep(address: &str, admin: &str) -> Org {
    let team = created(address, admin, "/v1/teams", json!({"name": "North"}));
    let leader = uuid::Uuid::now_v7().to_string();
    created(
        address,
        admin,
        &format!("/v1/teams/{team}/leaders"),
        json!({"leader_id": leader, "leader_name": LEADER_NAME}),
    );
    let competency = created(
        address,
        admin,
        "/v1/competencies",
        json!({"name": "Discovery", "description": "Asking good questions",
               "rubric": ["one", "two", "three", "four", "five"]}),
    );
    let rep = created(
        address,
        admin,
        "/v1/reps",
        json!({"name": NAME, "role": "AE", "team_id": team, "start_date": "2026-01-05"}),
    );
    let on_rep = |what: &str, body: Value| {
        created(address, admin, &format!("/v1/reps/{rep}/{what}"), body);
    };
    on_rep(
        "feedback",
        json!({"leader_id": leader, "competency_id": competency, "kind": "constructive",
               "note": FEEDBACK, "visibility": "shared", "given_on": "2026-02-02"}),
    );
    on_rep(
        "skill-assessments",
        json!({"leader_id": leader, "competency_id": competency, "level": 3,
               "evidence": EVIDENCE, "assessed_on": "2026-02-03"}),
    );
    on_rep(
        "coaching-sessions",
        json!({"leader_id": leader, "held_on": "2026-02-04", "duration_minutes": 30,
               "notes": SESSION_NOTES, "visibility": "shared",
               "action_items": [{"description": ACTION_ITEM, "owner": "rep", "due_on": "2026-03-01"}]}),
    );
    on_rep(
        "support-requests",
        json!({"category": "tools", "description": SUPPORT, "raised_on": "2026-02-05"}),
    );
    Org {
        team,
        rep,
        leader,
        competency,
    }
}

/// Which of the personal strings `bytes` holds.
fn secrets_in(bytes: &[u8]) -> Vec<&'static str> {
    SECRETS
        .into_iter()
        .filter(|s| bytes.windows(s.len()).any(|w| w == s.as_bytes()))
        .collect()
}

/// Every byte of the embedded store's files (the database and its
/// write-ahead log).
fn embedded_files(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("trellis.db") {
            all.extend(std::fs::read(&path).unwrap_or_default());
        }
    }
    all
}

/// The whole database as `pg_dump` writes it.
fn pg_dump(url: &str) -> Vec<u8> {
    let out = Command::new("pg_dump")
        .arg(url)
        .output()
        .expect("pg_dump runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn stored_bytes(backend: &Backend) -> Vec<u8> {
    match backend.kind {
        Kind::Postgres => pg_dump(&backend.database().url),
        Kind::Sqlite => embedded_files(backend.data_dir()),
    }
}

/// What the read side serves about the rep and their team.
fn views(address: &str, admin: &str, org: &Org) -> Vec<String> {
    let rep = &org.rep;
    let team = &org.team;
    [
        format!("/v1/reps/{rep}"),
        format!("/v1/reps/{rep}/profile"),
        format!("/v1/reps/{rep}/timeline"),
        format!("/v1/teams/{team}/view"),
        "/v1/action-items".to_owned(),
        "/v1/support-requests".to_owned(),
    ]
    .iter()
    .map(|path| get(address, admin, path))
    .collect()
}

fn sigterm(serving: &mut common::Serving) {
    let pid = serving.child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(
        serving.exited(Duration::from_secs(30)).is_some(),
        "trellis stops on SIGTERM"
    );
}

async fn erasing_a_person_leaves_no_trace_of_them_and_keeps_the_proof(kind: Kind) {
    let backend = Backend::new(kind).await;
    let dir = trellis_tests::temp_dir();
    let start = |dir: &Path| {
        serve(trellis_on(&backend, dir).args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--checkpoint-every-events",
            "1",
            "--log-origin",
            ORIGIN,
        ]))
    };
    let (mut serving, address) = start(&dir);
    let token = |args: &[&str]| printed(trellis_on(&backend, &dir).arg("token").args(args));
    let admin = token(&["--role", "admin"]);
    let org = record_a_rep(&address, &admin);
    let rep = &org.rep;
    let rep_token = token(&["--role", "rep", "--sub", rep]);
    printed(trellis_on(&backend, &dir).args(["sign-in-link", "--rep", rep]));
    printed(trellis_on(&backend, &dir).args(["sign-in-link", "--leader", &org.leader]));

    // Served as recorded, while the log holds none of it in the clear.
    // The rep leads a team too, under the same id (promoted): erasing them
    // erases both.
    let east = created(&address, &admin, "/v1/teams", json!({"name": "East"}));
    created(
        &address,
        &admin,
        &format!("/v1/teams/{east}/leaders"),
        json!({"leader_id": rep, "leader_name": NAME}),
    );
    eventually("the rep is projected", Duration::from_secs(30), || {
        let profile = get(&address, &admin, &format!("/v1/reps/{rep}/profile"));
        let teams = get(&address, &admin, "/v1/teams");
        if profile.contains(NAME) && teams.contains(NAME) {
            Ok(())
        } else {
            Err(profile)
        }
    });
    let log = printed(trellis_on(&backend, &dir).args(["log"]));
    assert_eq!(
        secrets_in(log.as_bytes()),
        SECRETS.to_vec(),
        "`trellis log` decrypts"
    );
    let raw: Vec<Value> = backend
        .store
        .read_all(trellis_eventstore::Checkpoint::START, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.payload)
        .collect();
    assert_eq!(
        secrets_in(serde_json::to_string(&raw).unwrap().as_bytes()),
        Vec::<&str>::new(),
        "the log holds personal data only encrypted"
    );
    assert!(serde_json::to_string(&raw).unwrap().contains("enc:v2:n:"));

    // Checkpoints kept outside, before the erasure.
    let public_key = fetch(&address, "/.well-known/trellis/checkpoint-keys")
        .lines()
        .next()
        .unwrap()
        .to_owned();
    // At least the events read above: more may come meanwhile (the worker
    // then signs a larger tree, never one of exactly this size).
    let events = raw.len();
    let kept = eventually(
        "a checkpoint covers the log",
        Duration::from_secs(30),
        || match run_on(&backend, &["audit", "checkpoint"]) {
            (0, out) if checkpoint_size(&out).is_some_and(|size| size >= events as u64) => Ok(out),
            (_, out) => Err(out),
        },
    );
    let kept_file = trellis_tests::temp_dir().join("kept.txt");
    std::fs::create_dir_all(kept_file.parent().unwrap()).unwrap();
    std::fs::write(&kept_file, &kept).unwrap();

    // Only an admin erases, with a reason.
    let erase = |token: &str, body: Value| {
        post(&address, token, &format!("/v1/people/{rep}/erasure"), body)
    };
    let (status, answer) = erase(&rep_token, json!({"reason": "Asked to be forgotten"}));
    assert_eq!(status, 403, "{answer}");
    // An id that names nobody: said plainly, nothing destroyed.
    let (status, answer) = post(
        &address,
        &admin,
        &format!("/v1/people/{}/erasure", uuid::Uuid::now_v7()),
        json!({"reason": "Asked to be forgotten"}),
    );
    assert_eq!(status, 404, "{answer}");
    assert!(answer.to_string().contains("no rep or leader"), "{answer}");
    let (status, answer) = erase(&admin, json!({"reason": " "}));
    assert_eq!(status, 422, "{answer}");
    assert!(answer.to_string().contains("reason"), "{answer}");
    let (status, answer) = erase(
        &admin,
        json!({"reason": "Asked to be forgotten (ticket 4411)"}),
    );
    assert_eq!(status, 200, "{answer}");

    // Nothing more about them: not a second erasure, not a feedback.
    let (status, answer) = erase(&admin, json!({"reason": "Again"}));
    assert_eq!(status, 422, "{answer}");
    assert!(answer.to_string().contains("erased"), "{answer}");
    let (status, answer) = post(
        &address,
        &admin,
        &format!("/v1/reps/{rep}/feedback"),
        json!({"leader_id": org.leader, "competency_id": org.competency, "kind": "praise",
               "note": "More", "given_on": "2026-02-10"}),
    );
    assert_eq!(status, 422, "{answer}");
    assert!(answer.to_string().contains("erased"), "{answer}");

    // The leader next: their name goes from every team that named them.
    let leader_erasure = format!("/v1/people/{}/erasure", org.leader);
    let (status, answer) = post(
        &address,
        &rep_token,
        &leader_erasure,
        json!({"reason": "Left"}),
    );
    assert_eq!(status, 403, "only an admin erases a leader: {answer}");
    let (status, answer) = post(&address, &admin, &leader_erasure, json!({"reason": "Left"}));
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = post(
        &address,
        &admin,
        &leader_erasure,
        json!({"reason": "Again"}),
    );
    assert_eq!(status, 422, "{answer}");
    assert!(answer.to_string().contains("erased"), "{answer}");
    let (status, answer) = post(
        &address,
        &admin,
        &format!(
            "/v1/teams/{}/leaders",
            created(&address, &admin, "/v1/teams", json!({"name": "South"}))
        ),
        json!({"leader_id": org.leader, "leader_name": "Someone Else"}),
    );
    assert_eq!(status, 400, "assigning an erased leader again: {answer}");
    assert!(answer.to_string().contains("erased"), "{answer}");

    // Every view and the export show an erased person; figures stay.
    let served = eventually("the views read as erased", Duration::from_secs(30), || {
        let served = views(&address, &admin, &org);
        let all = served.concat();
        match secrets_in(all.as_bytes()).as_slice() {
            [] if all.contains("Erased person") => Ok(served),
            found => Err(format!("still served: {found:?}")),
        }
    });
    let profile: Value = serde_json::from_str(&served[1]).unwrap();
    assert_eq!(profile["profile"]["name"], "Erased person", "{profile}");
    assert!(
        served[1].contains(&org.competency),
        "the rep's levels stay: {profile}"
    );
    for path in [
        format!("/v1/reps/{rep}/audit"),
        format!("/v1/reps/{rep}/as-of?at=2026-02-10"),
        format!("/v1/reps/{rep}/review-packet?from=2026-01-01&to=2026-06-30"),
        format!("/v1/people/{rep}/export"),
        format!("/v1/people/{}/export", org.leader),
        "/v1/teams".to_owned(),
    ] {
        let body = get(&address, &admin, &path);
        assert_eq!(
            secrets_in(body.as_bytes()),
            Vec::<&str>::new(),
            "{path}: {body}"
        );
        if !path.contains("/audit") && !path.ends_with("/teams") {
            assert!(
                body.contains("Erased person") || body.contains("(erased)"),
                "{path}: {body}"
            );
        }
    }
    let export: Value =
        serde_json::from_str(&get(&address, &admin, &format!("/v1/people/{rep}/export"))).unwrap();
    assert!(export.to_string().contains("Erased person"), "{export}");
    assert_eq!(
        export["sign_in"]["account"],
        Value::Null,
        "the sign-in account is deleted: {export}"
    );
    let export: Value = serde_json::from_str(&get(
        &address,
        &admin,
        &format!("/v1/people/{}/export", org.leader),
    ))
    .unwrap();
    assert_eq!(export["person"]["name"], "Erased person", "{export}");
    assert_eq!(
        export["sign_in"]["account"],
        Value::Null,
        "the leader's sign-in account is deleted: {export}"
    );

    // Nothing of them is left in the database or the file.
    eventually(
        "no personal data is stored",
        Duration::from_secs(30),
        || match secrets_in(&stored_bytes(&backend)).as_slice() {
            [] => Ok(()),
            found => Err(format!("still stored: {found:?}")),
        },
    );

    // The log still verifies against what was kept before.
    let (code, out) = run_on(
        &backend,
        &[
            "audit",
            "verify",
            "--checkpoints",
            kept_file.to_str().unwrap(),
            "--public-key",
            &public_key,
        ],
    );
    assert_eq!(code, 0, "{out}");

    // A replay of the whole log serves exactly what was served live.
    sigterm(&mut serving);
    let (code, out) = run(trellis_on(&backend, &dir).arg("replay"));
    assert_eq!(code, 0, "{out}");
    let (_again, address) = start(&dir);
    wait_for("the replayed views", Duration::from_secs(30), || {
        views(&address, &admin, &org) == served
    });
    assert_eq!(views(&address, &admin, &org), served, "replay equals live");
    if kind == Kind::Sqlite {
        assert_eq!(
            secrets_in(&embedded_files(backend.data_dir())),
            Vec::<&str>::new()
        );
    }
    backend.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn erasing_a_person_leaves_no_trace_of_them_and_keeps_the_proof_on_sqlite() {
    erasing_a_person_leaves_no_trace_of_them_and_keeps_the_proof(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn erasing_a_person_leaves_no_trace_of_them_and_keeps_the_proof_on_postgres() {
    erasing_a_person_leaves_no_trace_of_them_and_keeps_the_proof(Kind::Postgres).await;
}

/// The tree size a checkpoint note names, if it is a note of this test's log.
fn checkpoint_size(note: &str) -> Option<u64> {
    let head = trellis_eventstore::note::SignedCheckpoint::parse(note)
        .ok()?
        .head;
    (head.origin == ORIGIN).then_some(head.size)
}
