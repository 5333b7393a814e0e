//! The OpenAPI document of the writes, generated from the handlers'
//! annotations and the wire types, never written by hand. `trellis serve`
//! merges it with the other APIs' (`trellis_http::openapi::document`).

use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;

use crate::routes::{framework, measurements, people, reps, teams};
use trellis_http::openapi::BearerAuth;

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Trellis writes"),
    paths(
        teams::form, teams::assign_leader, teams::rename,
        framework::define_competency, framework::revise_competency, framework::retire_competency,
        framework::set_standard, framework::revise_standard, framework::retire_standard,
        people::erase, reps::join, reps::move_team, reps::change_role, reps::rename_rep,
        reps::depart,
        reps::acknowledge_expectations, reps::give_feedback, reps::acknowledge_feedback,
        reps::assess_skill, reps::hold_coaching_session, reps::complete_action_item,
        reps::drop_action_item, reps::record_training, reps::record_measurement,
        measurements::import,
        reps::raise_support_request, reps::acknowledge_support_request,
        reps::resolve_support_request, reps::start_improvement_plan,
        reps::record_plan_checkpoint, reps::close_improvement_plan, reps::correct_fact,
        reps::hold_review,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// This API's document.
pub fn document() -> Document {
    ApiDoc::openapi()
}
