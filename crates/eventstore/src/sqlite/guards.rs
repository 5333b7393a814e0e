//! The embedded file's guards ([`crate::guards`]): the triggers of
//! migrations 0001, 0003, 0005 and 0007 that refuse changes to the log, its
//! commands, its stored tree, its checkpoints and its people's data keys.

use rusqlite::{Connection, OptionalExtension};

use crate::Error;
use crate::guards::{Guard, GuardFinding, compare};

const UPDATES: &str = "updates of its rows";
const DELETES: &str = "deletes of its rows";

/// Every guard, with the statement its migration made it with.
pub(super) const GUARDS: &[Guard] = &[
    Guard {
        table: "events",
        name: "events_no_update",
        refuses: UPDATES,
        sql: "CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events is append-only: UPDATE is not allowed; record a correction as a new event');
END",
    },
    Guard {
        table: "events",
        name: "events_no_delete",
        refuses: DELETES,
        sql: "CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events is append-only: DELETE is not allowed; record a correction as a new event');
END",
    },
    Guard {
        table: "commands",
        name: "commands_no_update",
        refuses: UPDATES,
        sql: "CREATE TRIGGER commands_no_update BEFORE UPDATE ON commands
BEGIN
    SELECT RAISE(ABORT, 'commands is append-only: UPDATE is not allowed');
END",
    },
    Guard {
        table: "commands",
        name: "commands_no_delete",
        refuses: DELETES,
        sql: "CREATE TRIGGER commands_no_delete BEFORE DELETE ON commands
BEGIN
    SELECT RAISE(ABORT, 'commands is append-only: DELETE is not allowed');
END",
    },
    Guard {
        table: "tree_checkpoints",
        name: "tree_checkpoints_no_update",
        refuses: UPDATES,
        sql: "CREATE TRIGGER tree_checkpoints_no_update BEFORE UPDATE ON tree_checkpoints
BEGIN SELECT RAISE(ABORT, 'tree_checkpoints is append-only: UPDATE is not allowed'); END",
    },
    Guard {
        table: "tree_checkpoints",
        name: "tree_checkpoints_no_delete",
        refuses: DELETES,
        sql: "CREATE TRIGGER tree_checkpoints_no_delete BEFORE DELETE ON tree_checkpoints
BEGIN SELECT RAISE(ABORT, 'tree_checkpoints is append-only: DELETE is not allowed'); END",
    },
    Guard {
        table: "tree_segments",
        name: "tree_segments_no_update",
        refuses: UPDATES,
        sql: "CREATE TRIGGER tree_segments_no_update BEFORE UPDATE ON tree_segments
BEGIN SELECT RAISE(ABORT, 'tree_segments is append-only: UPDATE is not allowed'); END",
    },
    Guard {
        table: "tree_segments",
        name: "tree_segments_no_delete",
        refuses: DELETES,
        sql: "CREATE TRIGGER tree_segments_no_delete BEFORE DELETE ON tree_segments
BEGIN SELECT RAISE(ABORT, 'tree_segments is append-only: DELETE is not allowed'); END",
    },
    Guard {
        table: "tree_nodes",
        name: "tree_nodes_no_update",
        refuses: UPDATES,
        sql: "CREATE TRIGGER tree_nodes_no_update BEFORE UPDATE ON tree_nodes
BEGIN SELECT RAISE(ABORT, 'tree_nodes is append-only: UPDATE is not allowed'); END",
    },
    Guard {
        table: "tree_nodes",
        name: "tree_nodes_no_delete",
        refuses: DELETES,
        sql: "CREATE TRIGGER tree_nodes_no_delete BEFORE DELETE ON tree_nodes
BEGIN SELECT RAISE(ABORT, 'tree_nodes is append-only: DELETE is not allowed'); END",
    },
    Guard {
        table: "personal_data_keys",
        name: "personal_data_keys_never_deleted",
        refuses: "deletes of people's data keys",
        sql: "CREATE TRIGGER personal_data_keys_never_deleted BEFORE DELETE ON personal_data_keys
BEGIN
    SELECT RAISE(ABORT, 'personal data keys are never deleted: erase one instead');
END",
    },
    Guard {
        table: "personal_data_keys",
        name: "personal_data_keys_stay_erased",
        refuses: "an erased data key brought back, or a key replaced",
        sql: "CREATE TRIGGER personal_data_keys_stay_erased BEFORE UPDATE ON personal_data_keys
    WHEN OLD.erased_at IS NOT NULL
      OR (OLD.data_key IS NOT NULL AND NEW.data_key IS NOT NULL AND NEW.data_key <> OLD.data_key)
BEGIN
    SELECT RAISE(ABORT, 'an erased data key cannot be brought back, nor a key replaced');
END",
    },
];

/// The guards of `tables` (all when `None`) that are not as made.
fn findings_in(conn: &Connection, tables: Option<&[&str]>) -> Result<Vec<GuardFinding>, Error> {
    let guards: Vec<Guard> = GUARDS
        .iter()
        .filter(|g| tables.is_none_or(|t| t.contains(&g.table)))
        .copied()
        .collect();
    let mut statement =
        conn.prepare_cached("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?1")?;
    let mut failed = None;
    let findings = compare(&guards, |guard| {
        match statement
            .query_row([guard.name], |r| r.get::<_, String>(0))
            .optional()
        {
            // The file has no way to switch a trigger off: one there is on.
            Ok(sql) => sql.map(|sql| (sql, true)),
            Err(e) => {
                failed.get_or_insert(e);
                None
            }
        }
    });
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(findings),
    }
}

/// Every guard that is not as its migration made it.
pub(super) fn findings(conn: &Connection) -> Result<Vec<GuardFinding>, Error> {
    findings_in(conn, None)
}

/// Makes again, in `conn`'s transaction, each guard of `tables` (all when
/// `None`) that is not as made; the ones it made again.
pub(super) fn restore_in(
    conn: &Connection,
    tables: Option<&[&str]>,
) -> Result<Vec<GuardFinding>, Error> {
    let findings = findings_in(conn, tables)?;
    for finding in &findings {
        let guard = GUARDS
            .iter()
            .find(|g| g.name == finding.name)
            .ok_or_else(|| Error::Internal(format!("no guard is called {}", finding.name)))?;
        conn.execute_batch(&format!(
            "DROP TRIGGER IF EXISTS \"{}\"; {};",
            guard.name, guard.sql
        ))?;
    }
    Ok(findings)
}

/// Makes again every guard that is not as its migration made it, in one
/// transaction; the ones it made again.
pub(super) fn restore(conn: &mut Connection) -> Result<Vec<GuardFinding>, Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let restored = restore_in(&tx, None)?;
    tx.commit()?;
    Ok(restored)
}
