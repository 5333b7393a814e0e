//! Alert events.

use trellis_domain::EventPayload;
use trellis_domain::alert::{AlertDetails, AlertRaised, Recipient};

use super::{Convert, Fields, date, id_text};
use crate::error::ContractError;
use crate::proto as w;
use crate::proto::alert_raised::Details;
use crate::proto::alert_recipient::Recipient as WireRecipient;

impl Convert for AlertRaised {
    type Wire = w::AlertRaised;

    fn to_wire(&self) -> Self::Wire {
        w::AlertRaised {
            alert_id: id_text(self.alert_id),
            occurrence_key: self.occurrence_key.as_str().to_owned(),
            team_id: id_text(self.team_id),
            rep_id: id_text(self.rep_id),
            recipients: self
                .recipients
                .iter()
                .map(|r| w::AlertRecipient {
                    recipient: Some(match r {
                        Recipient::Leader(id) => WireRecipient::LeaderId(id_text(*id)),
                        Recipient::Rep(id) => WireRecipient::RepId(id_text(*id)),
                    }),
                })
                .collect(),
            raised_on: Some(date(self.raised_on)),
            details: Some(details_to_wire(&self.details)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        let recipients = m
            .recipients
            .iter()
            .map(|r| match &r.recipient {
                Some(WireRecipient::LeaderId(id)) => {
                    f.id("recipients.leader_id", id).map(Recipient::Leader)
                }
                Some(WireRecipient::RepId(id)) => f.id("recipients.rep_id", id).map(Recipient::Rep),
                None => Err(f.missing("recipients.recipient")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AlertRaised {
            alert_id: f.id("alert_id", &m.alert_id)?,
            occurrence_key: f.text("occurrence_key", &m.occurrence_key)?,
            team_id: f.id("team_id", &m.team_id)?,
            rep_id: f.id("rep_id", &m.rep_id)?,
            recipients,
            raised_on: f.date("raised_on", m.raised_on)?,
            details: details_from_wire(f, m.details.as_ref())?,
        })
    }
}

fn details_to_wire(details: &AlertDetails) -> Details {
    match details {
        AlertDetails::StandardMissed {
            standard_id,
            periods,
        } => Details::StandardMissed(w::StandardMissedAlert {
            standard_id: id_text(*standard_id),
            periods: periods.iter().map(ToString::to_string).collect(),
        }),
        AlertDetails::NotCoached {
            last_coached_on,
            days,
        } => Details::NotCoached(w::NotCoachedAlert {
            last_coached_on: last_coached_on.map(date),
            days: *days,
        }),
        AlertDetails::ActionItemOverdue {
            action_item_id,
            due_on,
            days_overdue,
        } => Details::ActionItemOverdue(w::ActionItemOverdueAlert {
            action_item_id: id_text(*action_item_id),
            due_on: Some(date(*due_on)),
            days_overdue: *days_overdue,
        }),
        AlertDetails::SupportRequestUnresolved {
            request_id,
            raised_on,
            days_open,
        } => Details::SupportRequestUnresolved(w::SupportRequestUnresolvedAlert {
            request_id: id_text(*request_id),
            raised_on: Some(date(*raised_on)),
            days_open: *days_open,
        }),
        AlertDetails::QualityGatePassed { passed_on } => {
            Details::QualityGatePassed(w::QualityGatePassedAlert {
                passed_on: Some(date(*passed_on)),
            })
        }
        AlertDetails::PlanReviewNear {
            plan_id,
            review_on,
            days_until,
        } => Details::PlanReviewNear(w::PlanReviewNearAlert {
            plan_id: id_text(*plan_id),
            review_on: Some(date(*review_on)),
            days_until: *days_until,
        }),
    }
}

fn details_from_wire(f: Fields, details: Option<&Details>) -> Result<AlertDetails, ContractError> {
    Ok(match details.ok_or_else(|| f.missing("details"))? {
        Details::StandardMissed(d) => AlertDetails::StandardMissed {
            standard_id: f.id("standard_missed.standard_id", &d.standard_id)?,
            periods: f.texts("standard_missed.periods", &d.periods)?,
        },
        Details::NotCoached(d) => AlertDetails::NotCoached {
            last_coached_on: d
                .last_coached_on
                .map(|on| f.date("not_coached.last_coached_on", Some(on)))
                .transpose()?,
            days: d.days,
        },
        Details::ActionItemOverdue(d) => AlertDetails::ActionItemOverdue {
            action_item_id: f.id("action_item_overdue.action_item_id", &d.action_item_id)?,
            due_on: f.date("action_item_overdue.due_on", d.due_on)?,
            days_overdue: d.days_overdue,
        },
        Details::SupportRequestUnresolved(d) => AlertDetails::SupportRequestUnresolved {
            request_id: f.id("support_request_unresolved.request_id", &d.request_id)?,
            raised_on: f.date("support_request_unresolved.raised_on", d.raised_on)?,
            days_open: d.days_open,
        },
        Details::QualityGatePassed(d) => AlertDetails::QualityGatePassed {
            passed_on: f.date("quality_gate_passed.passed_on", d.passed_on)?,
        },
        Details::PlanReviewNear(d) => AlertDetails::PlanReviewNear {
            plan_id: f.id("plan_review_near.plan_id", &d.plan_id)?,
            review_on: f.date("plan_review_near.review_on", d.review_on)?,
            days_until: d.days_until,
        },
    })
}
