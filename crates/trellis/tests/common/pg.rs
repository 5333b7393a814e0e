//! PostgreSQL servers of a test's own: a primary made with `initdb` and a
//! streaming replica of it made with `pg_basebackup`, on spare ports in
//! directories of their own, stopped and removed on drop. The shared server
//! is not touched.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{spare_port, wait_for};

/// Where the PostgreSQL server programs are (`TRELLIS_TEST_PG_BIN`, or
/// Debian's directory for the installed major version).
pub fn pg_bin(name: &str) -> PathBuf {
    let dir = std::env::var("TRELLIS_TEST_PG_BIN").unwrap_or_else(|_| {
        std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|dirs| {
                dirs.filter_map(Result::ok)
                    .map(|d| d.path().join("bin"))
                    .filter(|bin| bin.join("initdb").exists())
                    .max()
            })
            .map_or_else(
                || "/usr/lib/postgresql/15/bin".to_owned(),
                |p| p.display().to_string(),
            )
    });
    Path::new(&dir).join(name)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `program`, as the postgres user when we are root (initdb and the server
/// refuse to run as root).
pub fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Gives `dir` to the postgres user when we are root.
pub fn give_to_server_user(dir: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(dir)
            .status()
            .expect("chown runs");
        assert!(status.success());
    }
}

/// One PostgreSQL server of the test's own.
pub struct LocalPostgres {
    pub dir: PathBuf,
    pub port: u16,
}

impl LocalPostgres {
    /// A new cluster (`initdb`, trust authentication, replication allowed
    /// from loopback) started with `settings` (`-c name=value` each).
    pub fn primary(settings: &[&str]) -> LocalPostgres {
        let dir = trellis_tests::temp_dir();
        give_to_server_user(&dir);
        let output = as_server_user(&pg_bin("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", "postgres", "-A", "trust", "--no-sync"])
            .output()
            .expect("initdb runs");
        assert!(output.status.success(), "initdb: {output:?}");
        let server = LocalPostgres {
            dir,
            port: spare_port(),
        };
        server.start(settings);
        server
    }

    /// A hot standby streaming from `primary` (`pg_basebackup -R`), started
    /// with `settings` (for example a `recovery_min_apply_delay`).
    pub fn replica_of(primary: &LocalPostgres, settings: &[&str]) -> LocalPostgres {
        let dir = trellis_tests::temp_dir();
        give_to_server_user(&dir);
        let output = as_server_user(&pg_bin("pg_basebackup"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-h", "127.0.0.1", "-p", &primary.port.to_string()])
            .args(["-U", "postgres", "-R", "-X", "stream", "--no-sync"])
            .output()
            .expect("pg_basebackup runs");
        assert!(output.status.success(), "pg_basebackup: {output:?}");
        let server = LocalPostgres {
            dir,
            port: spare_port(),
        };
        let mut settings = settings.to_vec();
        settings.push("hot_standby=on");
        server.start(&settings);
        server
    }

    fn start(&self, settings: &[&str]) {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        for setting in settings {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        let output = as_server_user(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-o", &options, "-w", "start"])
            .output()
            .expect("pg_ctl runs");
        assert!(
            output.status.success(),
            "pg_ctl start: {output:?}\n{}",
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
    }

    /// A URL to its `postgres` database.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?application_name=trellis-test",
            self.port
        )
    }

    /// One value `sql` selects, as text (through psql).
    pub fn select(&self, sql: &str) -> String {
        let output = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-Atc", sql])
            .output()
            .expect("psql runs");
        assert!(output.status.success(), "psql {sql}: {output:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// How far its write-ahead log reaches: written on a primary, replayed
    /// on a standby (bytes from the start).
    pub fn wal_position(&self) -> u64 {
        self.select(
            "SELECT (COALESCE(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
             ELSE pg_current_wal_lsn() END, '0/0') - '0/0'::pg_lsn)::bigint",
        )
        .parse()
        .expect("a position")
    }

    /// Waits until this standby has replayed everything `primary` had
    /// written when asked.
    pub fn caught_up_with(&self, primary: &LocalPostgres, within: Duration) -> Duration {
        let target = primary.wal_position();
        wait_for("the replica replays the primary's log", within, || {
            self.wal_position() >= target
        })
    }
}

impl LocalPostgres {
    /// Stops the server at once (`pg_ctl stop -m immediate`), as a crash would.
    pub fn stop(&self) {
        let _ = as_server_user(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
