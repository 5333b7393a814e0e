//! What is done to a person rather than recorded about their growth:
//! erasing their personal data.

use axum::response::Response;
use trellis_domain::rep::PersonalDataErased;
use trellis_domain::{NonEmptyText, RepCommand};

use crate::edge::{Edge, OnRep, WriteRequest, field};
use crate::respond::WriteErrors;
use crate::wire::{self, Recorded};
use trellis_http::problem::ApiError;

/// Erases a person's personal data (an admin's write). A rep's name and
/// every free text about them, or a leader's name, read as erased from now
/// on, in every view, packet and export; figures stay, under the person's
/// id; the log and its proofs stay whole. Nothing personal can be recorded
/// about them again. The erasure (`PersonalDataErased` on a rep's stream,
/// `LeaderErased` on a leader's) is published like any other event: see the
/// event contract for what a subscriber must do with it.
#[utoipa::path(post, path = "/v1/people/{person_id}/erasure", tag = "people",
    params(("person_id" = uuid::Uuid, Path, description = "The person: a rep's or a leader's id")),
    request_body = wire::ErasePerson,
    responses((status = 200, description = "The person's personal data is erased", body = Recorded),
        WriteErrors))]
pub async fn erase(request: WriteRequest<wire::ErasePerson>) -> Result<Response, ApiError> {
    request.erase_person().await
}

impl TryFrom<Edge<'_, wire::ErasePerson>> for OnRep {
    type Error = ApiError;

    fn try_from(edge: Edge<'_, wire::ErasePerson>) -> Result<Self, ApiError> {
        let reason = field("reason", NonEmptyText::try_from(edge.body.reason.as_str()))?;
        let now = edge.ctx.now;
        Ok(OnRep::Ready(RepCommand::ErasePersonalData {
            erased: PersonalDataErased {
                reason,
                on: now.date_naive(),
            },
            now,
        }))
    }
}
