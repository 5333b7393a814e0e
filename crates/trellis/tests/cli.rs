//! The `trellis` binary as an operator runs it: exit codes and what it prints.

use std::process::Command;

use chrono::Utc;
use serde_json::json;
use trellis_eventstore::{CommandMeta, ExpectedVersion, NewEvent};
use trellis_tests::{Backend, Kind, stream};

fn trellis(backend: &Backend, args: &[&str]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trellis"));
    match backend.kind {
        // A data dir of the test's own even so: `serve` keeps its JWT
        // secret there, never in the crate's directory.
        Kind::Postgres => command
            .args(["--database-url", &backend.database().url])
            .arg("--data-dir")
            .arg(trellis_tests::temp_dir()),
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

/// A `trellis serve` child, killed when dropped whatever the test's outcome.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command` (a `trellis … serve --listen 127.0.0.1:0`) and waits
/// until it says where it listens.
fn serve(command: &mut Command) -> (Serving, String) {
    use std::io::{BufRead, BufReader};
    let mut serving = Serving(
        command
            .env_remove("TRELLIS_DATABASE_URL")
            .env_remove("TRELLIS_NATS_URL")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("trellis serve starts"),
    );
    let stderr = serving.0.stderr.take().expect("stderr");
    let (found, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("serving on http://").nth(1) {
                let _ = found.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
    });
    let address = address
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("serve says where it listens");
    (serving, address)
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

/// `trellis serve` stops on SIGTERM at once though a live-feed subscriber is
/// connected: the feed ends with an event telling the subscriber to
/// reconnect, and the process exits cleanly, well within its grace.
#[test]
fn sigterm_stops_serve_promptly_with_a_live_feed_subscriber_told_to_reconnect() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    let bin = env!("CARGO_BIN_EXE_trellis");
    let dir = trellis_tests::temp_dir();
    let dir_arg = dir.to_str().expect("utf-8");
    let token = Command::new(bin)
        .args(["--data-dir", dir_arg, "token", "--role", "auditor"])
        .env_remove("TRELLIS_DATABASE_URL")
        .output()
        .expect("trellis token runs");
    assert!(token.status.success(), "{token:?}");
    let token = String::from_utf8_lossy(&token.stdout).trim().to_owned();
    let (mut serve, address) =
        serve(Command::new(bin).args(["--data-dir", dir_arg, "serve", "--listen", "127.0.0.1:0"]));

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
    let killed = Command::new("kill")
        .args(["-TERM", &serve.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = loop {
        if let Some(status) = serve.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve still running 20 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");
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
    use std::io::{BufRead, BufReader};
    use std::time::Duration;

    let dir = trellis_tests::temp_dir();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["--log-format", "json", "--data-dir"])
        .arg(&dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("TRELLIS_DATABASE_URL")
        .env_remove("TRELLIS_NATS_URL")
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("trellis serve starts");
    let stderr = serve.stderr.take().expect("stderr");
    let (found, line) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for text in BufReader::new(stderr).lines().map_while(Result::ok) {
            if text.contains("trellis is serving") {
                let _ = found.send(text);
            }
        }
    });
    let line = line.recv_timeout(Duration::from_secs(60));
    let _ = serve.kill();
    let _ = serve.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let line = line.expect("serve logs that it is serving");
    let object: serde_json::Value = serde_json::from_str(&line).expect("a JSON object");
    assert_eq!(object["level"], "INFO", "{line}");
    assert_eq!(object["message"], "trellis is serving", "{line}");
    assert!(object["address"].is_string(), "its fields: {line}");
}

/// A new installation's first admin: `trellis sign-in-link --admin NAME`
/// prints a one-time link that signs them in to a `trellis serve` on the
/// same store, once; a second link for the same name is for the same
/// account.
async fn the_first_admin_signs_in_with_a_link_from_the_command_line(kind: Kind) {
    use std::io::{Read, Write};

    let backend = Backend::new(kind).await;
    let (code, out) = trellis(
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
    let (code, again) = trellis(&backend, &["sign-in-link", "--admin", "Ada Admin"]);
    assert_eq!(code, 0, "{again}");
    let (code, refused) = trellis(
        &backend,
        &["sign-in-link", "--rep", &uuid::Uuid::now_v7().to_string()],
    );
    assert_eq!(code, 2, "{refused}");
    assert!(
        refused.contains("There is no rep with this id"),
        "{refused}"
    );

    let mut command = Command::new(env!("CARGO_BIN_EXE_trellis"));
    match kind {
        // A data dir of the test's own even so: `serve` keeps its JWT
        // secret there, never in the crate's directory.
        Kind::Postgres => command
            .args(["--database-url", &backend.database().url])
            .arg("--data-dir")
            .arg(trellis_tests::temp_dir()),
        Kind::Sqlite => command.args(["--data-dir", backend.data_dir().to_str().expect("utf-8")]),
    };
    let (serving, address) = serve(command.args(["serve", "--listen", "127.0.0.1:0"]));
    let sign_in = |address: &str| {
        let mut http = std::net::TcpStream::connect(address).expect("connect");
        let body = format!("link={token}");
        write!(
            http,
            "POST /sign-in HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        let mut answer = String::new();
        http.read_to_string(&mut answer).expect("the answer");
        answer
    };
    let first = sign_in(&address);
    assert!(first.starts_with("HTTP/1.1 303"), "{first}");
    assert!(first.contains("set-cookie: trellis_session="), "{first}");
    assert!(first.contains("location: /home"), "{first}");
    let second = sign_in(&address);
    assert!(second.starts_with("HTTP/1.1 401"), "{second}");
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
