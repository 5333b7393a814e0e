//! PostgreSQL's guards ([`crate::guards`]): the triggers of migrations 0001,
//! 0004, 0006 and 0009 that refuse changes to the log, its stored tree, its
//! checkpoints and its people's data keys, and the two functions they call.
//! A trigger is compared as `pg_get_triggerdef` prints it, a function by its
//! body.

use tokio_postgres::GenericClient;

use crate::Error;
use crate::guards::{Guard, GuardFinding, compare};

const UPDATES: &str = "updates of its rows";
const DELETES: &str = "deletes of its rows";
const TRUNCATES: &str = "emptying it with TRUNCATE";

/// A trigger that calls `trellis.refuse_change()`.
macro_rules! refusing {
    ($table:literal, $name:literal, $op:literal, $each:literal, $refuses:expr) => {
        Guard {
            table: $table,
            name: $name,
            refuses: $refuses,
            sql: concat!(
                "CREATE TRIGGER ",
                $name,
                " BEFORE ",
                $op,
                " ON trellis.",
                $table,
                " FOR EACH ",
                $each,
                " EXECUTE FUNCTION trellis.refuse_change()"
            ),
        }
    };
}

/// Every trigger, as `pg_get_triggerdef` prints the one its migration made.
const TRIGGERS: &[Guard] = &[
    refusing!("events", "events_no_update", "UPDATE", "ROW", UPDATES),
    refusing!("events", "events_no_delete", "DELETE", "ROW", DELETES),
    refusing!(
        "events",
        "events_no_truncate",
        "TRUNCATE",
        "STATEMENT",
        TRUNCATES
    ),
    refusing!(
        "tree_segments",
        "tree_segments_no_update",
        "UPDATE",
        "ROW",
        UPDATES
    ),
    refusing!(
        "tree_segments",
        "tree_segments_no_delete",
        "DELETE",
        "ROW",
        DELETES
    ),
    refusing!(
        "tree_segments",
        "tree_segments_no_truncate",
        "TRUNCATE",
        "STATEMENT",
        TRUNCATES
    ),
    refusing!(
        "tree_nodes",
        "tree_nodes_no_update",
        "UPDATE",
        "ROW",
        UPDATES
    ),
    refusing!(
        "tree_nodes",
        "tree_nodes_no_delete",
        "DELETE",
        "ROW",
        DELETES
    ),
    refusing!(
        "tree_nodes",
        "tree_nodes_no_truncate",
        "TRUNCATE",
        "STATEMENT",
        TRUNCATES
    ),
    refusing!(
        "tree_checkpoints",
        "tree_checkpoints_no_update",
        "UPDATE",
        "ROW",
        UPDATES
    ),
    refusing!(
        "tree_checkpoints",
        "tree_checkpoints_no_delete",
        "DELETE",
        "ROW",
        DELETES
    ),
    refusing!(
        "tree_checkpoints",
        "tree_checkpoints_no_truncate",
        "TRUNCATE",
        "STATEMENT",
        TRUNCATES
    ),
    Guard {
        table: "personal_data_keys",
        name: "personal_data_keys_keep",
        refuses: "deletes of people's data keys, an erased key brought back or a key replaced",
        sql: "CREATE TRIGGER personal_data_keys_keep BEFORE DELETE OR UPDATE ON \
              trellis.personal_data_keys FOR EACH ROW EXECUTE FUNCTION \
              trellis.refuse_key_revival()",
    },
];

/// The migrations that made the two functions every trigger calls.
const MIGRATION_0001: &str = include_str!("../../migrations/postgres/0001_events.sql");
const MIGRATION_0006: &str = include_str!("../../migrations/postgres/0006_personal_data_keys.sql");

/// The body (between its `$$`) of the function `name` as `migration`
/// creates it: the migration is the one statement of what it must be.
fn body_in(migration: &'static str, name: &str) -> &'static str {
    migration
        .split_once(&format!("CREATE FUNCTION {name}"))
        .and_then(|(_, rest)| rest.split_once("$$"))
        .and_then(|(_, rest)| rest.split_once("$$"))
        .map_or("", |(body, _)| body)
}

/// The functions every trigger calls: a trigger that calls one emptied
/// refuses nothing. `sql` is the body.
fn functions() -> [Guard; 2] {
    [
        Guard {
            table: "the log's tables",
            name: "trellis.refuse_change()",
            refuses: "any change to the log, its stored tree or its checkpoints",
            sql: body_in(MIGRATION_0001, "trellis.refuse_change()"),
        },
        Guard {
            table: "personal_data_keys",
            name: "trellis.refuse_key_revival()",
            refuses: "deletes of people's data keys, an erased key brought back or a key replaced",
            sql: body_in(MIGRATION_0006, "trellis.refuse_key_revival()"),
        },
    ]
}

/// The guards of `tables` (every one when `None`) that are not as made.
async fn findings_in(
    client: &impl GenericClient,
    tables: Option<&[&str]>,
) -> Result<Vec<GuardFinding>, Error> {
    let in_tables = |g: &&Guard| tables.is_none_or(|t| t.contains(&g.table));
    let rows = client
        .query(
            "SELECT t.tgname::text, pg_get_triggerdef(t.oid), t.tgenabled::text <> 'D' \
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'trellis' AND NOT t.tgisinternal",
            &[],
        )
        .await?;
    let triggers: Vec<(String, String, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let guarded: Vec<Guard> = TRIGGERS.iter().filter(in_tables).copied().collect();
    let mut findings = compare(&guarded, |guard| {
        triggers
            .iter()
            .find(|(name, _, _)| name == guard.name)
            .map(|(_, sql, enabled)| (sql.clone(), *enabled))
    });
    if tables.is_none() {
        let rows = client
            .query(
                "SELECT p.proname::text || '()', p.prosrc FROM pg_proc p \
                 JOIN pg_namespace n ON n.oid = p.pronamespace \
                 WHERE n.nspname = 'trellis' AND p.pronargs = 0 \
                 AND p.proname IN ('refuse_change', 'refuse_key_revival')",
                &[],
            )
            .await?;
        let bodies: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        findings.extend(compare(&functions(), |guard| {
            bodies
                .iter()
                .find(|(name, _)| guard.name == format!("trellis.{name}"))
                .map(|(_, body)| (body.clone(), true))
        }));
    }
    Ok(findings)
}

/// Every guard that is not as its migration made it.
pub(super) async fn findings(client: &impl GenericClient) -> Result<Vec<GuardFinding>, Error> {
    findings_in(client, None).await
}

/// Makes again, in `client`'s transaction, each guard of `tables` (every
/// one, the functions too, when `None`) that is not as made; the ones it
/// made again. Only the schema's owner may.
pub(super) async fn restore_in(
    client: &impl GenericClient,
    tables: Option<&[&str]>,
) -> Result<Vec<GuardFinding>, Error> {
    let mut findings = findings_in(client, tables).await?;
    // A function first: a trigger cannot be made to call one that is gone.
    let functions = functions();
    findings.sort_by_key(|f| !functions.iter().any(|g| g.name == f.name));
    for finding in &findings {
        let statement = if let Some(function) = functions.iter().find(|g| g.name == finding.name) {
            format!(
                "CREATE OR REPLACE FUNCTION {} RETURNS trigger LANGUAGE plpgsql AS $guard${}$guard$",
                function.name, function.sql
            )
        } else {
            let trigger = TRIGGERS
                .iter()
                .find(|g| g.name == finding.name)
                .ok_or_else(|| Error::Internal(format!("no guard is called {}", finding.name)))?;
            format!(
                "DROP TRIGGER IF EXISTS {} ON trellis.{}; {}",
                trigger.name, trigger.table, trigger.sql
            )
        };
        client.batch_execute(&statement).await?;
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use crate::postgres::guards::functions;

    #[test]
    fn each_function_body_is_found_in_its_migration() {
        for function in functions() {
            let body = function.sql.trim();
            assert!(
                body.starts_with("BEGIN") && body.ends_with("END;"),
                "{}: {body:?}",
                function.name
            );
            assert!(body.contains("RAISE EXCEPTION"), "{}", function.name);
        }
    }
}
