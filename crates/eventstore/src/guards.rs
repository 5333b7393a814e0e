//! The log's guards: the triggers (and, on PostgreSQL, the functions they
//! call) that make the log's tables refuse updates and deletes, as each
//! backend's migrations made them.
//!
//! A guard is not history: with one dropped the log's chains, tree and
//! checkpoints still say whether anything changed, and `trellis audit
//! verify` still checks them. But whoever could drop it could then change
//! the log without being refused, and an operator should hear of it. So
//! each store names the guards that are missing, disabled or no longer the
//! ones its migrations made ([`GuardFinding`]), `audit verify` warns of them,
//! and `trellis migrate` puts them back.

use std::fmt;

/// One guard, as the migrations made it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guard {
    /// The table it guards (for a function, the tables whose guards call it).
    pub table: &'static str,
    /// The trigger's name, or the function's with `()`.
    pub name: &'static str,
    /// What it refuses, in words.
    pub refuses: &'static str,
    /// The statement that makes it, as the migrations wrote it.
    pub sql: &'static str,
}

/// How a guard differs from the one the migrations made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardState {
    /// Dropped.
    Missing,
    /// Still there, but switched off.
    Disabled,
    /// There, but not the statement the migrations made.
    Altered,
}

/// A guard that is not as the migrations made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardFinding {
    /// The table it guards (for a function, the tables whose guards call it).
    pub table: &'static str,
    /// The trigger's name, or the function's with `()`.
    pub name: &'static str,
    /// What it refuses when in place, in words.
    pub refuses: &'static str,
    pub state: GuardState,
}

impl GuardFinding {
    pub(crate) fn of(guard: &Guard, state: GuardState) -> Self {
        GuardFinding {
            table: guard.table,
            name: guard.name,
            refuses: guard.refuses,
            state,
        }
    }
}

impl fmt::Display for GuardFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            GuardState::Missing => "is missing",
            GuardState::Disabled => "is disabled",
            GuardState::Altered => "is not the one the migrations made",
        };
        if self.name.ends_with("()") {
            return write!(
                f,
                "the function {}, which the guards on {} call, {state}: the database may no \
                 longer refuse {}",
                self.name, self.table, self.refuses
            );
        }
        write!(
            f,
            "the guard {} on {} {state}: the database may no longer refuse {}",
            self.name, self.table, self.refuses
        )
    }
}

/// `sql` with its whitespace runs made single spaces and no final `;`, so
/// that a statement compares equal however it was laid out.
pub(crate) fn normalized(sql: &str) -> String {
    sql.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches(';')
        .trim_end()
        .to_owned()
}

/// Each guard of `guards` that is not as made: `found` gives a guard's
/// statement as stored and whether it is enabled, or `None` when it is gone.
pub(crate) fn compare(
    guards: &[Guard],
    mut found: impl FnMut(&Guard) -> Option<(String, bool)>,
) -> Vec<GuardFinding> {
    guards
        .iter()
        .filter_map(|guard| {
            let state = match found(guard) {
                None => GuardState::Missing,
                Some((sql, _)) if normalized(&sql) != normalized(guard.sql) => GuardState::Altered,
                Some((_, false)) => GuardState::Disabled,
                Some((_, true)) => return None,
            };
            Some(GuardFinding::of(guard, state))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUARD: Guard = Guard {
        table: "events",
        name: "events_no_delete",
        refuses: "deletes of its rows",
        sql: "CREATE TRIGGER events_no_delete BEFORE DELETE ON events\nBEGIN\n    SELECT 1;\nEND;",
    };

    #[test]
    fn a_guard_laid_out_otherwise_is_the_same_guard() {
        let stored = "CREATE TRIGGER events_no_delete  BEFORE DELETE ON events BEGIN SELECT 1; END";
        assert!(compare(&[GUARD], |_| Some((stored.into(), true))).is_empty());
    }

    #[test]
    fn a_missing_disabled_or_altered_guard_is_named_as_such() {
        let state = |found: Option<(String, bool)>| {
            compare(&[GUARD], |_| found.clone())
                .first()
                .map(|f| f.state)
        };
        assert_eq!(state(None), Some(GuardState::Missing));
        assert_eq!(
            state(Some((GUARD.sql.into(), false))),
            Some(GuardState::Disabled)
        );
        let emptied = "CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT 2; END";
        assert_eq!(
            state(Some((emptied.into(), true))),
            Some(GuardState::Altered)
        );
        let finding = GuardFinding::of(&GUARD, GuardState::Missing);
        assert_eq!(
            finding.to_string(),
            "the guard events_no_delete on events is missing: the database may no longer refuse \
             deletes of its rows"
        );
    }
}
