//! The `trellis` binary as an operator runs it: exit codes and what it prints.

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use trellis_eventstore::{CommandMeta, ExpectedVersion, NewEvent};
use trellis_tests::{Backend, Kind, stream};

use common::{Serving, exchange, printed, run, run_on, serve, trellis, trellis_on};

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
    let (code, out) = run_on(&backend, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact: 3 events in 1 streams"), "{out}");
    // And what that pass did not cover, so it is not read as more.
    assert!(
        out.contains("checked against no kept checkpoint (give --checkpoints FILE")
            && out.contains("checked without the service's public key (give --public-key)"),
        "{out}"
    );

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
    let (code, out) = run_on(&backend, &["audit", "verify"]);
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
    let (code, out) = run(trellis().args([
        "--database-url",
        "postgres://postgres@127.0.0.1:1/none",
        "audit",
        "verify",
    ]));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("Connection refused"), "{out}");
}

/// A mistyped `--data-dir` names no log: `audit verify` says it could not
/// check (2), never "intact", and leaves nothing behind where it looked;
/// `trellis log` refuses it too.
#[test]
fn a_data_dir_with_no_log_is_exit_code_two_and_is_not_made() {
    let parent = trellis_tests::temp_dir();
    let typo = parent.join("trellis-dta");
    let (code, out) = run(trellis()
        .arg("--data-dir")
        .arg(&typo)
        .args(["audit", "verify"]));
    assert_eq!(code, 2, "{out}");
    assert!(!out.contains("intact"), "{out}");
    assert!(out.contains("there is no Trellis log in"), "{out}");
    assert!(out.contains("Check --data-dir"), "{out}");
    assert!(!typo.exists(), "audit verify made {}", typo.display());

    let (code, out) = run(trellis().arg("--data-dir").arg(&typo).arg("log"));
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("there is no Trellis log in"), "{out}");
    assert!(!typo.exists(), "trellis log made {}", typo.display());
    let _ = std::fs::remove_dir_all(&parent);
}

/// `trellis serve` stops on SIGTERM at once though a live-feed subscriber is
/// connected: the feed ends with an event telling the subscriber to
/// reconnect, and the process exits cleanly, well within its grace.
#[test]
fn sigterm_stops_serve_promptly_with_a_live_feed_subscriber_told_to_reconnect() {
    use std::io::{Read, Write};

    let dir = trellis_tests::temp_dir();
    let token = printed(
        trellis()
            .arg("--data-dir")
            .arg(&dir)
            .args(["token", "--role", "auditor"]),
    );
    let (mut serving, address) =
        serve(
            trellis()
                .arg("--data-dir")
                .arg(&dir)
                .args(["serve", "--listen", "127.0.0.1:0"]),
        );

    let mut feed = std::net::TcpStream::connect(&address).expect("connect");
    write!(
        feed,
        "GET /v1/events/stream HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Accept: text/event-stream\r\n\r\n"
    )
    .expect("send the request");
    feed.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("a timeout");
    let mut head = [0u8; 512];
    let n = feed.read(&mut head).expect("the answer starts");
    assert!(
        String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head[..n])
    );

    let started = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &serving.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = serving
        .exited(Duration::from_secs(20))
        .expect("serve stops within 20 s of SIGTERM");
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");
    eprintln!("SIGTERM with a live-feed subscriber connected: serve exited in {took:?}");
    let mut rest = Vec::new();
    let _ = feed.read_to_end(&mut rest);
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.contains("event: shutdown"),
        "the subscriber is told: {rest}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// With `--log-format json` every log line is one JSON object a collector
/// reads: its level, its message and its fields.
#[test]
fn json_logs_are_one_object_a_line() {
    let dir = trellis_tests::temp_dir();
    let serving = Serving::spawn(
        trellis()
            .args(["--log-format", "json", "--data-dir"])
            .arg(&dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("RUST_LOG"),
    )
    .removing(dir);
    let seen = serving
        .wait_for_line("trellis is serving", Duration::from_secs(60))
        .unwrap_or_else(|log| panic!("serve logs that it is serving:\n{log}"));
    drop(serving);
    let line = seen.rsplit('\n').next().unwrap_or_default();
    let object: serde_json::Value = serde_json::from_str(line).expect("a JSON object");
    assert_eq!(object["level"], "INFO", "{line}");
    assert_eq!(object["message"], "trellis is serving", "{line}");
    assert!(object["address"].is_string(), "its fields: {line}");
}

/// A new installation's first admin: `trellis sign-in-link --admin NAME`
/// prints a one-time link that signs them in to a `trellis serve` on the
/// same store, once; a second link for the same name is for the same
/// account.
async fn the_first_admin_signs_in_with_a_link_from_the_command_line(kind: Kind) {
    let backend = Backend::new(kind).await;
    // Served before anyone may sign in, it says how the first admin starts.
    let dir = trellis_tests::temp_dir();
    let (fresh, address) =
        serve(trellis_on(&backend, &dir).args(["serve", "--listen", "127.0.0.1:0"]));
    // Logged, and said in words with the command to run.
    let hint = fresh
        .wait_for_line(
            "nobody can sign in yet. Make the first admin's one-time sign-in link",
            Duration::from_secs(30),
        )
        .unwrap_or_else(|log| panic!("no word of the first admin: {log}"));
    assert!(
        hint.contains("nobody can sign in yet: make the first admin's sign-in link"),
        "{hint}"
    );
    let said = fresh.log();
    assert!(
        said.contains(&format!(
            "sign-in-link --admin \"Your Name\" --public-url http://{address}"
        )),
        "{said}"
    );
    match kind {
        Kind::Sqlite => assert!(said.contains(" --data-dir "), "{said}"),
        Kind::Postgres => assert!(said.contains(" --database-url <the same URL>"), "{said}"),
    }
    drop(fresh);

    let (code, out) = run_on(
        &backend,
        &[
            "sign-in-link",
            "--admin",
            "Ada Admin",
            "--public-url",
            "https://trellis.example/",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let link = out.lines().next().expect("the link").trim().to_owned();
    let token = link
        .strip_prefix("https://trellis.example/sign-in?link=")
        .unwrap_or_else(|| panic!("a link on the public URL: {out}"))
        .to_owned();
    assert!(out.contains("works once"), "{out}");
    let (code, again) = run_on(&backend, &["sign-in-link", "--admin", "Ada Admin"]);
    assert_eq!(code, 0, "{again}");
    let (code, refused) = run_on(
        &backend,
        &["sign-in-link", "--rep", &uuid::Uuid::now_v7().to_string()],
    );
    assert_eq!(code, 2, "{refused}");
    assert!(
        refused.contains("There is no rep with this id"),
        "{refused}"
    );

    let (serving, address) = serve(trellis_on(&backend, &trellis_tests::temp_dir()).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]));
    let sign_in = |address: &str| {
        exchange(
            address,
            "POST",
            "/sign-in",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &format!("link={token}"),
        )
    };
    let first = sign_in(&address);
    assert!(first.starts_with("HTTP/1.1 303"), "{first}");
    assert!(first.contains("set-cookie: trellis_session="), "{first}");
    assert!(first.contains("location: /home"), "{first}");
    let second = sign_in(&address);
    assert!(second.starts_with("HTTP/1.1 401"), "{second}");
    assert!(
        !serving.logged(|line| line.contains("nobody can sign in yet")),
        "an admin may sign in now: {}",
        serving.log()
    );
    drop(serving);
    backend.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_admin_link_on_postgres() {
    the_first_admin_signs_in_with_a_link_from_the_command_line(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_admin_link_on_the_embedded_store() {
    the_first_admin_signs_in_with_a_link_from_the_command_line(Kind::Sqlite).await;
}
