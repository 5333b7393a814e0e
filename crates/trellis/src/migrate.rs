//! `trellis migrate`: brings every component's tables up to date as the
//! schema's owner, so that `trellis serve` runs as a login role that is a
//! member of `trellis_writer` and needs no more than that role's grants.
//!
//! Each migration is recorded with the SHA-256 of its text: a file changed
//! after it was applied, or a database holding a migration this binary does
//! not know (a newer schema), stops it before anything is applied (on
//! PostgreSQL every component is checked first). On the embedded store the
//! same runs on the file (opening it does so too).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use trellis_eventstore::drivers::tokio_postgres;
use trellis_eventstore::guards::{GuardFinding, GuardState};
use trellis_eventstore::postgres::{self, Grant, Outcome, PostgresStore, RUNTIME_ROLE};
use trellis_eventstore::sqlite::SqliteStore;

use crate::store::{POSTGRES, SQLITE, StoreArgs, refuse_unknown_components};

/// What the runtime role must never be able to do to the log.
const LOG_CHANGES: [&str; 4] = ["INSERT", "UPDATE", "DELETE", "TRUNCATE"];

/// `trellis migrate`: applies what is pending and prints what it did.
pub async fn run(store: &StoreArgs) -> anyhow::Result<ExitCode> {
    match &store.url() {
        Some(url) => on_postgres(url).await?,
        None => on_embedded(&store.data_dir).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Connects as the role in `url` (the schema's owner), refuses a schema
/// newer than this binary, applies every component's migrations, then checks
/// and prints what the runtime role may do.
async fn on_postgres(url: &str) -> anyhow::Result<()> {
    // TLS as every other connection makes it: libpq's `sslmode` and `sslrootcert`.
    let (config, tls) = trellis_eventstore::postgres::tls::connect_config(url)?;
    let (mut client, connection) = config
        .connect(tls)
        .await
        .context("failed to connect to PostgreSQL (--database-url)")?;
    let connection = tokio::spawn(connection);
    let result = migrate_postgres(&mut client).await;
    drop(client);
    let _ = connection.await;
    let (outcomes, grants, restored) = result?;
    let mut out = std::io::stdout().lock();
    print_outcomes(&mut out, &outcomes, "PostgreSQL")?;
    print_restored(&mut out, &restored)?;
    writeln!(
        out,
        "the runtime role {RUNTIME_ROLE} may (run `trellis serve` as a login role that is a \
         member of it):"
    )?;
    for grant in &grants {
        let privileges = if grant.privileges.is_empty() {
            "-".to_owned()
        } else {
            grant.privileges.join(", ")
        };
        writeln!(
            out,
            "  {:<9}trellis.{:<28} {privileges}",
            grant.kind, grant.name
        )?;
    }
    Ok(())
}

/// The work of [`on_postgres`] on one connection: what each component
/// applied, what the runtime role may do, and the guards it put back.
pub async fn migrate_postgres(
    client: &mut tokio_postgres::Client,
) -> anyhow::Result<(Vec<Outcome>, Vec<Grant>, Vec<GuardFinding>)> {
    refuse_unknown_components(client).await?;
    for migrations in &POSTGRES {
        postgres::pending(client, migrations)
            .await
            .with_context(|| format!("failed to check the {} migrations", migrations.component))?;
    }
    let mut outcomes = Vec::new();
    for migrations in &POSTGRES {
        let outcome = postgres::migrate(client, migrations)
            .await
            .with_context(|| format!("failed to apply the {} migrations", migrations.component))?;
        outcomes.push(outcome);
    }
    // A guard dropped or switched off since its migration ran is not
    // pending: each is compared with what its migration made.
    let restored = PostgresStore::restore_guards(client)
        .await
        .context("failed to put back the log's guards")?;
    let grants = postgres::runtime_grants(client)
        .await
        .context("failed to read the runtime role's grants")?;
    check_the_log_is_append_only(&grants)?;
    Ok((outcomes, grants, restored))
}

/// The role the services run as may read the log and append through the
/// append functions, never change it.
fn check_the_log_is_append_only(grants: &[Grant]) -> anyhow::Result<()> {
    let events = grants
        .iter()
        .find(|g| g.kind == "table" && g.name == "events")
        .context("the schema has no table trellis.events")?;
    let changes: Vec<&str> = events
        .privileges
        .iter()
        .map(String::as_str)
        .filter(|p| LOG_CHANGES.contains(p))
        .collect();
    if !changes.is_empty() {
        anyhow::bail!(
            "the runtime role {RUNTIME_ROLE} may {} trellis.events, which only the append \
             functions may write: revoke it (REVOKE {} ON trellis.events FROM {RUNTIME_ROLE}, \
             and from any role it is a member of)",
            changes.join(", "),
            changes.join(", ")
        );
    }
    Ok(())
}

/// The embedded file: the log's migrations, then each component's.
async fn on_embedded(dir: &Path) -> anyhow::Result<()> {
    let outcomes = trellis_eventstore::sqlite::migrate_dir(dir, &SQLITE)
        .await
        .with_context(|| format!("failed to migrate the embedded store in {}", dir.display()))?;
    let restored = SqliteStore::open(dir)
        .await?
        .restore_guards()
        .await
        .context("failed to put back the log's guards")?;
    let mut out = std::io::stdout().lock();
    print_outcomes(
        &mut out,
        &outcomes,
        &format!("the embedded store in {}", dir.display()),
    )?;
    print_restored(&mut out, &restored)?;
    Ok(())
}

/// A line for each guard put back, saying what it was found as.
fn print_restored(out: &mut impl Write, restored: &[GuardFinding]) -> anyhow::Result<()> {
    for finding in restored {
        let state = match finding.state {
            GuardState::Missing => "it was missing",
            GuardState::Disabled => "it was disabled",
            GuardState::Altered => "it was not the one the migrations made",
        };
        writeln!(
            out,
            "guard put back: {} on {} ({state}); it refuses {} again",
            finding.name, finding.table, finding.refuses
        )?;
    }
    Ok(())
}

/// One line per file applied or given its checksum, then where each
/// component stands.
fn print_outcomes(out: &mut impl Write, outcomes: &[Outcome], store: &str) -> anyhow::Result<()> {
    let mut changed = false;
    for outcome in outcomes {
        for file in &outcome.checksummed {
            writeln!(
                out,
                "checksum recorded: {file} (applied before checksums were kept)"
            )?;
            changed = true;
        }
        for file in &outcome.applied {
            writeln!(out, "applied: {file}")?;
            changed = true;
        }
    }
    let versions: Vec<String> = outcomes
        .iter()
        .map(|o| format!("{} {}", o.component, o.version))
        .collect();
    writeln!(
        out,
        "{store}: {} ({})",
        if changed {
            "migrated"
        } else {
            "already up to date"
        },
        versions.join(", ")
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use trellis_tests::TestDatabase;

    use super::*;

    fn grant(kind: &str, name: &str, privileges: &[&str]) -> Grant {
        Grant {
            kind: kind.to_owned(),
            name: name.to_owned(),
            privileges: privileges.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    #[test]
    fn a_runtime_role_that_may_change_the_log_is_refused_naming_what_it_may_do() {
        let reads = [grant("table", "events", &["SELECT"])];
        check_the_log_is_append_only(&reads).expect("reading the log is what it may do");
        let writes = [grant("table", "events", &["SELECT", "INSERT", "TRUNCATE"])];
        let refused = check_the_log_is_append_only(&writes)
            .expect_err("a role that may insert into the log")
            .to_string();
        assert!(
            refused.contains("may INSERT, TRUNCATE trellis.events"),
            "{refused}"
        );
    }

    #[derive(Debug, Parser)]
    struct Serve {
        #[command(flatten)]
        args: crate::serve::ServeArgs,
    }

    /// `trellis migrate` as the owner (a changed file stops it before any
    /// component is migrated), then `trellis serve` as a login role that is
    /// only a member of trellis_writer: it starts, and stops; a database with
    /// a component this binary does not have stops it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serve_runs_as_the_runtime_role_once_trellis_migrate_ran_and_refuses_a_newer_schema() {
        let db = TestDatabase::create().await;
        let mut owner = db.superuser().await;
        let (outcomes, grants, _) = migrate_postgres(&mut owner).await.expect("trellis migrate");
        assert!(
            outcomes.iter().all(|o| !o.applied.is_empty()),
            "{outcomes:?}"
        );
        assert!(grants.iter().any(|g| g.name == "events"));

        // A changed file stops it before any component is migrated.
        owner
            .batch_execute(
                "DELETE FROM trellis.projection_migrations WHERE version = 3; \
                 UPDATE trellis.webhook_migrations SET checksum = repeat('0', 64) \
                  WHERE version = 1",
            )
            .await
            .expect("a pending migration, and a changed one");
        let refused = migrate_postgres(&mut owner)
            .await
            .expect_err("a changed migration")
            .to_string();
        assert!(refused.contains("the webhook migrations"), "{refused}");
        let projection = owner
            .query_one(
                "SELECT count(*) FROM trellis.projection_migrations WHERE version = 3",
                &[],
            )
            .await
            .expect("the records")
            .get::<_, i64>(0);
        assert_eq!(projection, 0, "nothing applied");
        owner
            .batch_execute(&format!(
                "UPDATE trellis.webhook_migrations SET checksum = '{}' WHERE version = 1",
                trellis_eventstore::postgres::Migrations::checksum(
                    trellis_webhooks::store::postgres::MIGRATIONS.steps[0].2
                )
            ))
            .await
            .expect("the file as it was");
        migrate_postgres(&mut owner).await.expect("trellis migrate");

        let role = format!("trellis_test_app_{}", uuid::Uuid::now_v7().simple());
        owner
            .batch_execute(&format!("CREATE ROLE {role} LOGIN IN ROLE {RUNTIME_ROLE}"))
            .await
            .expect("the login role");
        let mut url: tokio_postgres::Config = db.url.parse().expect("a URL");
        url.user(&role);
        let host = match url.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = url.get_ports().first().copied().unwrap_or(5432);
        let store = StoreArgs {
            database_url: Some(format!("postgres://{role}@{host}:{port}/{}", db.name)),
            database_ca_file: None,
            data_dir: trellis_tests::temp_dir(),
        };
        let serve = || {
            Serve::try_parse_from(["trellis", "--listen", "127.0.0.1:0"])
                .expect("serve's flags")
                .args
        };
        let app = crate::serve::Application::build(&store, serve())
            .await
            .expect("serve starts as the runtime role");
        app.run_until_stopped(async {}).await.expect("and stops");

        owner
            .batch_execute("CREATE TABLE trellis.reports_migrations (version integer)")
            .await
            .expect("a component of a newer release");
        let refused = crate::serve::Application::build(&store, serve())
            .await
            .expect_err("a newer schema")
            .to_string();
        assert!(
            refused.contains("newer than this trellis")
                && refused.contains("trellis.reports_migrations"),
            "{refused}"
        );
        let _ = std::fs::remove_dir_all(&store.data_dir);
        drop(owner);
        db.drop_now().await;
        let (admin, connection) =
            tokio_postgres::connect(&trellis_tests::admin_url(), tokio_postgres::NoTls)
                .await
                .expect("the server");
        tokio::spawn(connection);
        admin
            .batch_execute(&format!("DROP ROLE {role}"))
            .await
            .expect("drop the role");
    }
}
