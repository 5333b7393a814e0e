//! Identifiers: one newtype per kind of thing, each wrapping a [`Uuid`].
//!
//! Ids are minted by the caller (the write side uses UUID v7, which reads the
//! clock — so the domain never mints one). They serialize as a bare UUID string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::ValueError;

macro_rules! id_newtype {
    ($( $(#[$doc:meta])* $Name:ident => $what:literal ),+ $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $Name(Uuid);

        impl $Name {
            /// Wraps an already-parsed UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $Name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$Name> for Uuid {
            fn from(id: $Name) -> Self {
                id.0
            }
        }

        impl FromStr for $Name {
            type Err = ValueError;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(input.trim())
                    .map(Self)
                    .map_err(|_| ValueError::InvalidId { what: $what, input: input.to_owned() })
            }
        }

        impl TryFrom<&str> for $Name {
            type Error = ValueError;

            fn try_from(input: &str) -> Result<Self, Self::Error> {
                input.parse()
            }
        }

        impl fmt::Display for $Name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )+};
}

id_newtype! {
    /// A salesperson.
    RepId => "rep id",
    /// A team of reps.
    TeamId => "team id",
    /// A person who leads a team.
    LeaderId => "leader id",
    /// A skill in the competency framework.
    CompetencyId => "competency id",
    /// A benchmark a rep is held to.
    StandardId => "standard id",
    /// One piece of feedback.
    FeedbackId => "feedback id",
    /// One skill assessment.
    AssessmentId => "assessment id",
    /// One coaching session.
    SessionId => "coaching session id",
    /// One follow-up agreed in a coaching session.
    ActionItemId => "action item id",
    /// One completed training.
    TrainingId => "training id",
    /// One measured value of a metric for a period.
    MeasurementId => "measurement id",
    /// One obstacle a rep raised.
    SupportRequestId => "support request id",
    /// One improvement plan.
    PlanId => "improvement plan id",
    /// One performance review.
    ReviewId => "review id",
    /// One alert occurrence (a name-based UUID of its occurrence key).
    AlertId => "alert id",
}

/// The stream id of one aggregate instance: `"<category>-<uuid>"`, e.g. `rep-0190…`.
pub fn stream_id(category: &str, id: Uuid) -> String {
    format!("{category}-{id}")
}
