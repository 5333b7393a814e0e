//! Leader events.

use trellis_domain::EventPayload;
use trellis_domain::leader::LeaderErased;

use super::{Convert, Fields, date, id_text};
use crate::error::ContractError;
use crate::proto as w;

impl Convert for LeaderErased {
    type Wire = w::LeaderErased;

    fn to_wire(&self) -> Self::Wire {
        w::LeaderErased {
            leader_id: id_text(self.leader_id),
            reason: self.reason.as_str().to_owned(),
            on: Some(date(self.on)),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(LeaderErased {
            leader_id: f.id("leader_id", &m.leader_id)?,
            reason: f.text("reason", &m.reason)?,
            on: f.date("on", m.on)?,
        })
    }
}
