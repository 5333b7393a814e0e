//! Team events.

use trellis_domain::EventPayload;
use trellis_domain::team::{LeaderAssigned, TeamFormed, TeamRenamed};

use super::{Convert, Fields, id_text};
use crate::error::ContractError;
use crate::proto as w;

impl Convert for TeamFormed {
    type Wire = w::TeamFormed;

    fn to_wire(&self) -> Self::Wire {
        w::TeamFormed {
            team_id: id_text(self.team_id),
            name: self.name.as_str().to_owned(),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(TeamFormed {
            team_id: f.id("team_id", &m.team_id)?,
            name: f.text("name", &m.name)?,
        })
    }
}

impl Convert for LeaderAssigned {
    type Wire = w::LeaderAssigned;

    fn to_wire(&self) -> Self::Wire {
        w::LeaderAssigned {
            team_id: id_text(self.team_id),
            leader_id: id_text(self.leader_id),
            leader_name: self.leader_name.as_str().to_owned(),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(LeaderAssigned {
            team_id: f.id("team_id", &m.team_id)?,
            leader_id: f.id("leader_id", &m.leader_id)?,
            leader_name: f.text("leader_name", &m.leader_name)?,
        })
    }
}

impl Convert for TeamRenamed {
    type Wire = w::TeamRenamed;

    fn to_wire(&self) -> Self::Wire {
        w::TeamRenamed {
            team_id: id_text(self.team_id),
            name: self.name.as_str().to_owned(),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(TeamRenamed {
            team_id: f.id("team_id", &m.team_id)?,
            name: f.text("name", &m.name)?,
        })
    }
}
