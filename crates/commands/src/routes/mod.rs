//! The write routes, one module per resource.

use axum::Router;
use axum::routing::{post, put};

use crate::state::CommandState;

pub mod framework;
pub mod measurements;
pub mod people;
pub mod reps;
pub mod teams;

/// Every write route, for the state to be applied.
pub fn router() -> Router<CommandState> {
    Router::new()
        .route("/v1/teams", post(teams::form))
        .route("/v1/teams/{team_id}/leaders", post(teams::assign_leader))
        .route("/v1/teams/{team_id}/name", put(teams::rename))
        .route("/v1/competencies", post(framework::define_competency))
        .route(
            "/v1/competencies/{competency_id}",
            put(framework::revise_competency),
        )
        .route(
            "/v1/competencies/{competency_id}/retirement",
            post(framework::retire_competency),
        )
        .route("/v1/standards", post(framework::set_standard))
        .route(
            "/v1/standards/{standard_id}/revisions",
            post(framework::revise_standard),
        )
        .route(
            "/v1/standards/{standard_id}/retirement",
            post(framework::retire_standard),
        )
        .route("/v1/people/{person_id}/erasure", post(people::erase))
        .route("/v1/reps", post(reps::join))
        .route("/v1/reps/{rep_id}/team-moves", post(reps::move_team))
        .route("/v1/reps/{rep_id}/role-changes", post(reps::change_role))
        .route("/v1/reps/{rep_id}/name", put(reps::rename_rep))
        .route("/v1/reps/{rep_id}/departure", post(reps::depart))
        .route(
            "/v1/reps/{rep_id}/expectations-acknowledgements",
            post(reps::acknowledge_expectations),
        )
        .route("/v1/reps/{rep_id}/feedback", post(reps::give_feedback))
        .route(
            "/v1/reps/{rep_id}/feedback/{feedback_id}/acknowledgement",
            post(reps::acknowledge_feedback),
        )
        .route(
            "/v1/reps/{rep_id}/skill-assessments",
            post(reps::assess_skill),
        )
        .route(
            "/v1/reps/{rep_id}/coaching-sessions",
            post(reps::hold_coaching_session),
        )
        .route(
            "/v1/reps/{rep_id}/action-items/{action_item_id}/completion",
            post(reps::complete_action_item),
        )
        .route(
            "/v1/reps/{rep_id}/action-items/{action_item_id}/drop",
            post(reps::drop_action_item),
        )
        .route("/v1/reps/{rep_id}/trainings", post(reps::record_training))
        .route(
            "/v1/reps/{rep_id}/measurements",
            post(reps::record_measurement),
        )
        .route("/v1/measurements", post(measurements::import))
        .route(
            "/v1/reps/{rep_id}/support-requests",
            post(reps::raise_support_request),
        )
        .route(
            "/v1/reps/{rep_id}/support-requests/{request_id}/acknowledgement",
            post(reps::acknowledge_support_request),
        )
        .route(
            "/v1/reps/{rep_id}/support-requests/{request_id}/resolution",
            post(reps::resolve_support_request),
        )
        .route(
            "/v1/reps/{rep_id}/improvement-plans",
            post(reps::start_improvement_plan),
        )
        .route(
            "/v1/reps/{rep_id}/improvement-plans/{plan_id}/checkpoints",
            post(reps::record_plan_checkpoint),
        )
        .route(
            "/v1/reps/{rep_id}/improvement-plans/{plan_id}/closure",
            post(reps::close_improvement_plan),
        )
        .route("/v1/reps/{rep_id}/corrections", post(reps::correct_fact))
        .route("/v1/reps/{rep_id}/reviews", post(reps::hold_review))
}
