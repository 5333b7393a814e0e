//! Leader: what is done to a leader as a person, rather than recorded about
//! a team. Stream category `leader`, stream `leader-<leader id>`.
//!
//! A leader has no history of their own in the log: teams record that they
//! were assigned (`LeaderAssigned`, holding their name). Their stream holds
//! only the erasure of their personal data, after which nothing personal can
//! be recorded about them again.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::ids::{LeaderId, stream_id};
use crate::payload::event_enum;
use crate::rejection::Rejection;
use crate::values::NonEmptyText;

/// A leader's personal data was erased: their data key is destroyed, so
/// their name reads as erased wherever a team recorded it. Their teams and
/// what they recorded stay, under their id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderErased {
    pub leader_id: LeaderId,
    /// Why, in the admin's words. Not personal data: it is kept readable, so
    /// it must not repeat any.
    pub reason: NonEmptyText,
    pub on: NaiveDate,
}

event_enum! {
    /// Everything that can happen in a leader's stream.
    pub enum LeaderEvent in "leader" {
        Erased(LeaderErased) = ("LeaderErased", v 1),
    }
}

impl LeaderId {
    /// This leader's stream, `leader-<uuid>`.
    pub fn stream_id(&self) -> String {
        stream_id(LeaderEvent::CATEGORY, self.as_uuid())
    }
}

/// What a leader aggregate remembers.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum LeaderState {
    /// Nothing done to the leader as a person.
    #[default]
    Present,
    /// Their personal data was erased on this day.
    Erased { on: NaiveDate },
}

/// What can be asked about a leader as a person.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaderCommand {
    /// Erase the leader's personal data (the store destroys their key).
    /// Whether the id names a leader at all is the caller's to check: no
    /// team stream is read here.
    ErasePersonalData {
        erased: LeaderErased,
        now: DateTime<Utc>,
    },
}

/// The leader aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderAggregate;

impl Aggregate for LeaderAggregate {
    const CATEGORY: &'static str = LeaderEvent::CATEGORY;
    type State = LeaderState;
    type Command = LeaderCommand;
    type Event = LeaderEvent;

    fn decide(state: &LeaderState, command: LeaderCommand) -> Result<Vec<LeaderEvent>, Rejection> {
        decide(state, command)
    }

    fn evolve(state: LeaderState, event: &LeaderEvent) -> LeaderState {
        evolve(state, event)
    }
}

pub fn decide(state: &LeaderState, command: LeaderCommand) -> Result<Vec<LeaderEvent>, Rejection> {
    match (state, command) {
        (LeaderState::Erased { on }, _) => Err(Rejection::PersonalDataErased { on: *on }),
        (LeaderState::Present, LeaderCommand::ErasePersonalData { erased, now }) => {
            if erased.on > now.date_naive() {
                return Err(Rejection::DateInFuture {
                    date: erased.on,
                    today: now.date_naive(),
                });
            }
            Ok(vec![erased.into()])
        }
    }
}

pub fn evolve(state: LeaderState, event: &LeaderEvent) -> LeaderState {
    match (state, event) {
        (LeaderState::Present, LeaderEvent::Erased(e)) => LeaderState::Erased { on: e.on },
        (state, _) => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn erase(on: NaiveDate) -> LeaderCommand {
        LeaderCommand::ErasePersonalData {
            erased: LeaderErased {
                leader_id: LeaderId::from_uuid(Uuid::from_u128(7)),
                reason: NonEmptyText::try_from("Asked under article 17").unwrap(),
                on,
            },
            now: Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
    }

    #[test]
    fn a_leader_is_erased_once_and_then_refused_with_the_day() {
        let events = decide(&LeaderState::Present, erase(day(2))).unwrap();
        assert!(matches!(&events[..], [LeaderEvent::Erased(e)] if e.on == day(2)));
        let state = evolve(LeaderState::Present, &events[0]);
        assert_eq!(state, LeaderState::Erased { on: day(2) });
        assert_eq!(
            decide(&state, erase(day(2))),
            Err(Rejection::PersonalDataErased { on: day(2) })
        );
    }

    #[test]
    fn an_erasure_dated_after_today_is_refused() {
        assert!(matches!(
            decide(&LeaderState::Present, erase(day(3))),
            Err(Rejection::DateInFuture { .. })
        ));
    }
}
