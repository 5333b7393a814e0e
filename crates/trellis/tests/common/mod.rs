//! What the binary's integration tests share (each test file is a crate of
//! its own that says `mod common;`): running `trellis` as an operator does,
//! a `trellis serve` child stopped on drop that keeps what it logs, plain
//! HTTP/1.1 requests to it, and waiting for something to hold.

// Each test crate uses a part of this module.
#![allow(dead_code)]

pub mod nats;
pub mod pg;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use trellis_tests::{Backend, Kind};

// ------------------------------------------------------------------ running trellis

/// `trellis`, without the `TRELLIS_*` variables of the environment the tests
/// run in: it sees only what the test gives it.
pub fn trellis() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trellis"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TRELLIS_") {
            command.env_remove(name);
        }
    }
    command
}

/// `trellis` on `backend`'s store. On PostgreSQL its data directory is `dir`
/// (where `serve` and `token` keep the JWT secret they share, never the
/// crate's directory); the embedded store's is the backend's own.
pub fn trellis_on(backend: &Backend, dir: &Path) -> Command {
    let mut command = trellis();
    match backend.kind {
        Kind::Postgres => command
            .args(["--database-url", &backend.database().url])
            .arg("--data-dir")
            .arg(dir),
        Kind::Sqlite => command.arg("--data-dir").arg(backend.data_dir()),
    };
    command
}

/// Runs `command` to its end: its exit code (-1 when a signal ended it) and
/// what it wrote, standard output then standard error.
pub fn run(command: &mut Command) -> (i32, String) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("failed to run {command:?}: {e}"));
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// Runs `trellis ARGS` on `backend`'s store (on PostgreSQL with a data
/// directory of its own).
pub fn run_on(backend: &Backend, args: &[&str]) -> (i32, String) {
    run(trellis_on(backend, &trellis_tests::temp_dir()).args(args))
}

/// Runs `command`, which must succeed; what it printed on standard output,
/// trimmed (a token, a link).
pub fn printed(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("failed to run {command:?}: {e}"));
    assert!(output.status.success(), "{command:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

// ------------------------------------------------------------------ serving

/// A `trellis` child (usually `serve`): killed when dropped, whatever the
/// test's outcome, with every line it writes to standard error kept.
pub struct Serving {
    pub child: Child,
    /// Every line it wrote to standard error so far, with when it came.
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    reader: Option<JoinHandle<()>>,
    /// A directory removed once the child is gone.
    dir: Option<PathBuf>,
}

impl Serving {
    /// Starts `command`, reading its standard error line by line.
    pub fn spawn(command: &mut Command) -> Serving {
        let mut child = command
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {command:?}: {e}"));
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().expect("lines").push((Instant::now(), line));
            }
        });
        Serving {
            child,
            lines,
            reader: Some(reader),
            dir: None,
        }
    }

    /// Removes `dir` (the child's data directory) once the child is gone.
    pub fn removing(mut self, dir: PathBuf) -> Serving {
        self.dir = Some(dir);
        self
    }

    /// Every line it logged so far.
    pub fn log(&self) -> String {
        let lines = self.lines.lock().expect("lines");
        let lines: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        lines.join("\n")
    }

    /// When it first logged a line `what` holds for.
    pub fn logged_at(&self, what: impl Fn(&str) -> bool) -> Option<Instant> {
        let lines = self.lines.lock().expect("lines");
        lines.iter().find(|(_, l)| what(l)).map(|(at, _)| *at)
    }

    pub fn logged(&self, what: impl Fn(&str) -> bool) -> bool {
        self.logged_at(what).is_some()
    }

    /// Waits at most `within` for a line holding `text`: the lines up to
    /// that one, or (when it never came, or the child closed its standard
    /// error first) every line it logged.
    pub fn wait_for_line(&self, text: &str, within: Duration) -> Result<String, String> {
        let deadline = Instant::now() + within;
        loop {
            let closed = self.reader.as_ref().is_none_or(JoinHandle::is_finished);
            {
                let lines = self.lines.lock().expect("lines");
                if let Some(at) = lines.iter().position(|(_, l)| l.contains(text)) {
                    let seen: Vec<&str> = lines[..=at].iter().map(|(_, l)| l.as_str()).collect();
                    return Ok(seen.join("\n"));
                }
            }
            if closed || Instant::now() >= deadline {
                return Err(self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Where it says it listens: the address after `marker` (`serving on
    /// http://`, `metrics on http://`) in what it logs, within 60 s.
    pub fn address(&self, marker: &str) -> String {
        self.address_within(marker, Duration::from_secs(60))
    }

    /// [`Serving::address`], waiting at most `within`.
    pub fn address_within(&self, marker: &str, within: Duration) -> String {
        let seen = self
            .wait_for_line(marker, within)
            .unwrap_or_else(|log| panic!("it did not say where it listens ({marker}):\n{log}"));
        let line = seen.rsplit('\n').next().unwrap_or_default();
        let rest = line.split(marker).nth(1).unwrap_or_default();
        rest.split(['/', ' ']).next().unwrap_or_default().to_owned()
    }

    /// Waits at most `within` for the child to exit by itself; how it
    /// exited, with everything it logged read.
    pub fn exited(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Starts `command` (a `trellis … serve --listen 127.0.0.1:0`) and waits
/// until it says where it listens; the child and that address.
pub fn serve(command: &mut Command) -> (Serving, String) {
    let serving = Serving::spawn(command);
    let address = serving.address("serving on http://");
    (serving, address)
}

/// A port nothing listens on now.
pub fn spare_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a spare port")
        .port()
}

// ------------------------------------------------------------------ workers

/// Whether a log line says something.
pub type Says = fn(&str) -> bool;

/// Each worker, and the line a process logs when it becomes the active one
/// (the relay's needs NATS: [`RELAY_ACTIVE`]).
pub const ACTIVE: [(&str, Says); 4] = [
    ("projector: read models", |l| {
        l.contains("projection.run") && l.trim_end().ends_with(" active")
    }),
    ("projector: checkpoints", |l| {
        l.contains("took the publishing lease") && l.contains("TRELLIS_TREE")
    }),
    ("alerts evaluator", |l| {
        l.contains("holds the lease") && l.contains("\"alerts evaluator\"")
    }),
    ("webhooks", |l| {
        l.contains("holds the lease") && l.contains("\"webhooks\"")
    }),
];

/// The relay, when the process has NATS.
pub const RELAY_ACTIVE: (&str, Says) = ("relay", |l| {
    l.contains("took the publishing lease") && l.contains("TRELLIS_EVENTS")
});

// ------------------------------------------------------------------ HTTP

/// One HTTP/1.1 request with `Connection: close` that may fail (a process
/// killed, a refused connection): the status and the body, or why not.
pub fn try_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(address).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    write!(stream, "{head}\r\n{body}").map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("receive: {e}"))?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, rest) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP answer: {answer:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status: {answer:?}"))?;
    Ok((status, rest.to_owned()))
}

/// One HTTP/1.1 request to `address` with `Connection: close`: the whole
/// answer, head and body, as text.
pub fn exchange(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    write!(stream, "{head}\r\n{body}").expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("the answer");
    String::from_utf8_lossy(&answer).into_owned()
}

/// One request ([`exchange`]): the status and the body (a chunked one put
/// back together).
pub fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let answer = exchange(address, method, path, headers, body);
    let (head, rest) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("an HTTP answer: {answer}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status: {answer}"));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            unchunk(rest)
        } else {
            rest.to_owned()
        },
    )
}

fn unchunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}

/// A call of the JSON API as the holder of `token`: the status and the body.
pub fn api(
    address: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&serde_json::Value>,
) -> (u16, String) {
    let bearer = format!("Bearer {token}");
    let body = body.map(serde_json::Value::to_string).unwrap_or_default();
    request(
        address,
        method,
        path,
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        &body,
    )
}

/// The body of a GET that must answer 200.
pub fn fetch(address: &str, path: &str) -> String {
    let (status, body) = request(address, "GET", path, &[], "");
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

// ------------------------------------------------------------------ waiting

/// Tries `attempt` every 50 ms until it gives a value, for at most `limit`;
/// panics naming `what` and why the last attempt failed when none does.
pub fn eventually<T>(
    what: &str,
    limit: Duration,
    mut attempt: impl FnMut() -> Result<T, String>,
) -> T {
    let started = Instant::now();
    loop {
        match attempt() {
            Ok(value) => return value,
            Err(why) => assert!(
                started.elapsed() < limit,
                "not within {limit:?}: {what}: {why}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `done` holds, at most `limit`; how long it took.
pub fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    eventually(what, limit, || {
        if done() {
            Ok(())
        } else {
            Err("it does not hold".to_owned())
        }
    });
    started.elapsed()
}
