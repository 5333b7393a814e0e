//! The domain's tests, as one binary. Aggregate tests are data: given events,
//! when a command, then events or a rejection — all through [`support::check`].

mod alert;
mod competency;
mod events;
mod period;
mod rep;
mod standard;
mod support;
mod team;
mod values;
