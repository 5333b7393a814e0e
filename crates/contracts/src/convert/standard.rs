//! Standard events.

use trellis_domain::standard::{RampStep, StandardRetired, StandardRevised, StandardSet};
use trellis_domain::{Direction, EventPayload, PeriodKind, StandardKind};

use super::{Convert, Fields, date, id_text};
use crate::error::ContractError;
use crate::proto as w;

fn kind_to_wire(kind: StandardKind) -> w::StandardKind {
    match kind {
        StandardKind::Quality => w::StandardKind::Quality,
        StandardKind::Quantity => w::StandardKind::Quantity,
        StandardKind::Behaviour => w::StandardKind::Behaviour,
    }
}

fn kind_from_wire(f: Fields, value: i32) -> Result<StandardKind, ContractError> {
    match f.enumeration("kind", value)? {
        w::StandardKind::Unspecified => Err(f.missing("kind")),
        w::StandardKind::Quality => Ok(StandardKind::Quality),
        w::StandardKind::Quantity => Ok(StandardKind::Quantity),
        w::StandardKind::Behaviour => Ok(StandardKind::Behaviour),
    }
}

fn direction_to_wire(direction: Direction) -> w::Direction {
    match direction {
        Direction::AtLeast => w::Direction::AtLeast,
        Direction::AtMost => w::Direction::AtMost,
    }
}

fn direction_from_wire(f: Fields, value: i32) -> Result<Direction, ContractError> {
    match f.enumeration("direction", value)? {
        w::Direction::Unspecified => Err(f.missing("direction")),
        w::Direction::AtLeast => Ok(Direction::AtLeast),
        w::Direction::AtMost => Ok(Direction::AtMost),
    }
}

fn period_kind_to_wire(kind: PeriodKind) -> w::PeriodKind {
    match kind {
        PeriodKind::Week => w::PeriodKind::Week,
        PeriodKind::Month => w::PeriodKind::Month,
        PeriodKind::Quarter => w::PeriodKind::Quarter,
    }
}

fn period_kind_from_wire(f: Fields, value: i32) -> Result<PeriodKind, ContractError> {
    match f.enumeration("period", value)? {
        w::PeriodKind::Unspecified => Err(f.missing("period")),
        w::PeriodKind::Week => Ok(PeriodKind::Week),
        w::PeriodKind::Month => Ok(PeriodKind::Month),
        w::PeriodKind::Quarter => Ok(PeriodKind::Quarter),
    }
}

fn ramp_to_wire(ramp: &[RampStep]) -> Vec<w::RampStep> {
    ramp.iter()
        .map(|step| w::RampStep {
            period_index: step.period_index,
            percent_of_target: u32::from(step.percent_of_target),
        })
        .collect()
}

fn ramp_from_wire(steps: &[w::RampStep]) -> Result<Vec<RampStep>, ContractError> {
    let f = Fields("RampStep");
    steps
        .iter()
        .map(|step| {
            Ok(RampStep {
                period_index: step.period_index,
                percent_of_target: f.u16("percent_of_target", step.percent_of_target)?,
            })
        })
        .collect()
}

fn roles_to_wire(roles: &[trellis_domain::Role]) -> Vec<String> {
    roles.iter().map(ToString::to_string).collect()
}

impl Convert for StandardSet {
    type Wire = w::StandardSet;

    fn to_wire(&self) -> Self::Wire {
        w::StandardSet {
            standard_id: id_text(self.standard_id),
            name: self.name.as_str().to_owned(),
            metric: self.metric.as_str().to_owned(),
            kind: kind_to_wire(self.kind).into(),
            direction: direction_to_wire(self.direction).into(),
            unit: self.unit.as_str().to_owned(),
            period: period_kind_to_wire(self.period).into(),
            target: self.target.get(),
            roles: roles_to_wire(&self.roles),
            effective_from: Some(date(self.effective_from)),
            ramp: ramp_to_wire(&self.ramp),
            version: self.version,
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(StandardSet {
            standard_id: f.id("standard_id", &m.standard_id)?,
            name: f.text("name", &m.name)?,
            metric: f.text("metric", &m.metric)?,
            kind: kind_from_wire(f, m.kind)?,
            direction: direction_from_wire(f, m.direction)?,
            unit: f.text("unit", &m.unit)?,
            period: period_kind_from_wire(f, m.period)?,
            target: f.value("target", m.target)?,
            roles: f.texts("roles", &m.roles)?,
            effective_from: f.date("effective_from", m.effective_from)?,
            ramp: ramp_from_wire(&m.ramp)?,
            version: m.version,
        })
    }
}

impl Convert for StandardRevised {
    type Wire = w::StandardRevised;

    fn to_wire(&self) -> Self::Wire {
        w::StandardRevised {
            standard_id: id_text(self.standard_id),
            version: self.version,
            target: self.target.get(),
            effective_from: Some(date(self.effective_from)),
            roles: self.roles.as_ref().map(|roles| w::RoleList {
                roles: roles_to_wire(roles),
            }),
            ramp: self.ramp.as_ref().map(|ramp| w::RampSchedule {
                steps: ramp_to_wire(ramp),
            }),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(StandardRevised {
            standard_id: f.id("standard_id", &m.standard_id)?,
            version: m.version,
            target: f.value("target", m.target)?,
            effective_from: f.date("effective_from", m.effective_from)?,
            roles: m
                .roles
                .as_ref()
                .map(|list| f.texts("roles", &list.roles))
                .transpose()?,
            ramp: m
                .ramp
                .as_ref()
                .map(|schedule| ramp_from_wire(&schedule.steps))
                .transpose()?,
        })
    }
}

impl Convert for StandardRetired {
    type Wire = w::StandardRetired;

    fn to_wire(&self) -> Self::Wire {
        w::StandardRetired {
            standard_id: id_text(self.standard_id),
            effective_from: Some(date(self.effective_from)),
            reason: self.reason.as_str().to_owned(),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(StandardRetired {
            standard_id: f.id("standard_id", &m.standard_id)?,
            effective_from: f.date("effective_from", m.effective_from)?,
            reason: f.text("reason", &m.reason)?,
        })
    }
}
