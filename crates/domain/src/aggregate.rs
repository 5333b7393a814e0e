//! The shape every aggregate shares: decide what happens, then evolve the state.

use std::fmt::Debug;

use crate::rejection::Rejection;

/// A consistency boundary with its own event stream.
///
/// `decide` and `evolve` are pure: the same inputs always give the same outputs,
/// with no I/O and no clock. Whatever a decision needs from outside the stream
/// (today's date, facts from other streams) arrives inside the command.
pub trait Aggregate {
    /// The stream category, e.g. `"rep"`; streams are named `"<category>-<uuid>"`.
    const CATEGORY: &'static str;
    /// What the aggregate remembers to make decisions; `Default` is "does not exist yet".
    type State: Default + Clone + Debug + PartialEq;
    /// What someone asks the aggregate to do.
    type Command: Debug;
    /// What happened.
    type Event: Clone + Debug + PartialEq;

    /// Accepts a command as the events it causes (possibly none), or refuses it.
    fn decide(state: &Self::State, command: Self::Command) -> Result<Vec<Self::Event>, Rejection>;

    /// Applies one event. Never fails: the log is the truth.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// Folds a stream of events, from the first, into the current state.
    fn replay<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events
            .into_iter()
            .fold(Self::State::default(), Self::evolve)
    }
}
