//! The `trellis` binary as an operator runs it: exit codes and what it prints.

use std::process::Command;

use chrono::Utc;
use serde_json::json;
use trellis_eventstore::{CommandMeta, ExpectedVersion, NewEvent};
use trellis_tests::{Backend, Kind, stream};

fn trellis(backend: &Backend, args: &[&str]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trellis"));
    match backend.kind {
        Kind::Postgres => command.args(["--database-url", &backend.database().url]),
        Kind::Sqlite => command.args(["--data-dir", backend.data_dir().to_str().expect("utf-8")]),
    };
    command.env_remove("TRELLIS_DATABASE_URL");
    let output = command.args(args).output().expect("failed to run trellis");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code().unwrap_or(-1),
        format!("{stdout}{stderr}"),
    )
}

async fn audit_verify_exits_zero_when_intact_and_names_the_altered_event_otherwise(kind: Kind) {
    let backend = Backend::new(kind).await;
    let s = stream("rep");
    for n in 0..3 {
        backend
            .store
            .append(
                &s,
                ExpectedVersion::Any,
                &CommandMeta::new("leader-1", Utc::now()),
                &[NewEvent::new("Noted", 1, json!({ "n": n }), Utc::now())],
            )
            .await
            .unwrap();
    }
    let (code, out) = trellis(&backend, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact: 3 events in 1 streams"), "{out}");

    let second = backend.store.read_stream(&s, 1, 1).await.unwrap().remove(0);
    let payload = match kind {
        Kind::Postgres => r#"'{"n": 42}'::jsonb"#,
        Kind::Sqlite => r#"'{"n":42}'"#,
    };
    backend
        .tamper(&format!(
            "UPDATE events SET payload = {payload} WHERE stream_id = '{s}' AND stream_version = 2"
        ))
        .await;
    let (code, out) = trellis(&backend, &["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "first problem: stream {s} version 2 (event {}",
            second.event_id
        )),
        "{out}"
    );
    assert!(out.contains("altered"), "{out}");
    backend.cleanup().await;
}

#[tokio::test]
async fn audit_verify_on_postgres() {
    audit_verify_exits_zero_when_intact_and_names_the_altered_event_otherwise(Kind::Postgres).await;
}

#[tokio::test]
async fn audit_verify_on_the_embedded_store() {
    audit_verify_exits_zero_when_intact_and_names_the_altered_event_otherwise(Kind::Sqlite).await;
}

#[test]
fn an_unreachable_database_is_exit_code_two_with_the_reason() {
    let output = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args([
            "--database-url",
            "postgres://postgres@127.0.0.1:1/none",
            "audit",
            "verify",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Connection refused"), "{stderr}");
}
