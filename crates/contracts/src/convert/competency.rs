//! Competency events.

use trellis_domain::competency::{CompetencyDefined, CompetencyRetired, CompetencyRevised};
use trellis_domain::{EventPayload, NonEmptyText, Rubric};

use super::{Convert, Fields, id_text};
use crate::error::ContractError;
use crate::proto as w;

fn rubric_to_wire(rubric: &Rubric) -> Vec<String> {
    rubric.levels().iter().map(ToString::to_string).collect()
}

fn rubric_from_wire(f: Fields, levels: &[String]) -> Result<Rubric, ContractError> {
    let levels: Vec<NonEmptyText> = f.texts("rubric", levels)?;
    f.value("rubric", levels)
}

impl Convert for CompetencyDefined {
    type Wire = w::CompetencyDefined;

    fn to_wire(&self) -> Self::Wire {
        w::CompetencyDefined {
            competency_id: id_text(self.competency_id),
            name: self.name.as_str().to_owned(),
            description: self.description.as_str().to_owned(),
            rubric: rubric_to_wire(&self.rubric),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(CompetencyDefined {
            competency_id: f.id("competency_id", &m.competency_id)?,
            name: f.text("name", &m.name)?,
            description: f.text("description", &m.description)?,
            rubric: rubric_from_wire(f, &m.rubric)?,
        })
    }
}

impl Convert for CompetencyRevised {
    type Wire = w::CompetencyRevised;

    fn to_wire(&self) -> Self::Wire {
        w::CompetencyRevised {
            competency_id: id_text(self.competency_id),
            name: self.name.as_str().to_owned(),
            description: self.description.as_str().to_owned(),
            rubric: rubric_to_wire(&self.rubric),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(CompetencyRevised {
            competency_id: f.id("competency_id", &m.competency_id)?,
            name: f.text("name", &m.name)?,
            description: f.text("description", &m.description)?,
            rubric: rubric_from_wire(f, &m.rubric)?,
        })
    }
}

impl Convert for CompetencyRetired {
    type Wire = w::CompetencyRetired;

    fn to_wire(&self) -> Self::Wire {
        w::CompetencyRetired {
            competency_id: id_text(self.competency_id),
            reason: self.reason.as_str().to_owned(),
        }
    }

    fn from_wire(m: &Self::Wire) -> Result<Self, ContractError> {
        let f = Fields(Self::EVENT_TYPE);
        Ok(CompetencyRetired {
            competency_id: f.id("competency_id", &m.competency_id)?,
            reason: f.text("reason", &m.reason)?,
        })
    }
}
