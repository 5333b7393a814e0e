//! The authorization matrix of the command service: every write route ×
//! every role, each cell asserting the exact status. Derived from
//! `crates/commands/src/policy.rs`:
//!
//! - team, competency and standard writes: admins, and services granted
//!   `teams:write` / `framework:write`;
//! - who is on which team, in which role (a rep joining, moving, changing
//!   role, departing): admins and services granted `reps:write`, as the
//!   dashboard's Set up offers these to admins alone;
//! - other rep writes: admins, leaders of the rep's team, services granted
//!   the route's scope; the rep themselves only to acknowledge expectations
//!   and feedback, raise support requests and complete action items they
//!   own;
//! - auditors write nothing.
//!
//! Every refused cell must also record nothing, and be refused before its
//! body is judged, unless the refusal depends on the rep's team.

use trellis_commands::policy::Scope;
use uuid::Uuid;

use crate::http::{Route, TestApp, World, both_backends};

both_backends!(
    every_write_route_allows_exactly_the_roles_the_policy_names,
    a_caller_a_route_refuses_is_told_so_whatever_their_body_lacks
);

/// The columns of the matrix.
#[derive(Debug, Clone, Copy)]
enum Who {
    Admin,
    /// A leader of the rep's team.
    LeaderOfTeam,
    /// A leader of another team only.
    LeaderOfOtherTeam,
    /// The rep the request is about.
    RepThemselves,
    AnotherRep,
    Auditor,
    /// A service granted the route's scope.
    ServiceWithGrant,
    /// A service granted every write scope but the route's.
    ServiceWithoutGrant,
}

const WHO: [Who; 8] = [
    Who::Admin,
    Who::LeaderOfTeam,
    Who::LeaderOfOtherTeam,
    Who::RepThemselves,
    Who::AnotherRep,
    Who::Auditor,
    Who::ServiceWithGrant,
    Who::ServiceWithoutGrant,
];

const ALL_SCOPES: [Scope; 9] = [
    Scope::Teams,
    Scope::Framework,
    Scope::Reps,
    Scope::Coaching,
    Scope::Measurements,
    Scope::Support,
    Scope::Plans,
    Scope::Corrections,
    Scope::Reviews,
];

// Short names for the table.
const ADMIN_ONLY_201: [u16; 8] = [201, 403, 403, 403, 403, 403, 201, 403];
const ADMIN_ONLY_200: [u16; 8] = [200, 403, 403, 403, 403, 403, 200, 403];
const LEAD_201: [u16; 8] = [201, 201, 403, 403, 403, 403, 201, 403];
const LEAD_200: [u16; 8] = [200, 200, 403, 403, 403, 403, 200, 403];
const LEAD_OR_SELF_201: [u16; 8] = [201, 201, 403, 201, 403, 403, 201, 403];
const LEAD_OR_SELF_200: [u16; 8] = [200, 200, 403, 200, 403, 403, 200, 403];
/// An admin alone: no leader, rep or service, whatever its grants.
const ADMIN_ALONE_200: [u16; 8] = [200, 403, 403, 403, 403, 403, 403, 403];

/// route, the scope a service needs, and the status per column of [`WHO`]:
/// admin, leader of the rep's team, leader of another team, the rep
/// themselves, another rep, auditor, service with the grant, service without.
const MATRIX: [(Route, Scope, [u16; 8]); 33] = [
    (Route::FormTeam, Scope::Teams, ADMIN_ONLY_201),
    (Route::AssignLeader, Scope::Teams, ADMIN_ONLY_200),
    (Route::RenameTeam, Scope::Teams, ADMIN_ONLY_200),
    (Route::DefineCompetency, Scope::Framework, ADMIN_ONLY_201),
    (Route::ReviseCompetency, Scope::Framework, ADMIN_ONLY_200),
    (Route::RetireCompetency, Scope::Framework, ADMIN_ONLY_200),
    (Route::SetStandard, Scope::Framework, ADMIN_ONLY_201),
    (Route::ReviseStandard, Scope::Framework, ADMIN_ONLY_200),
    (Route::RetireStandard, Scope::Framework, ADMIN_ONLY_200),
    (Route::JoinRep, Scope::Reps, ADMIN_ONLY_201),
    (Route::MoveTeam, Scope::Reps, ADMIN_ONLY_200),
    (Route::ChangeRole, Scope::Reps, ADMIN_ONLY_200),
    (Route::RenameRep, Scope::Reps, ADMIN_ONLY_200),
    (Route::Depart, Scope::Reps, ADMIN_ONLY_200),
    (
        Route::AcknowledgeExpectations,
        Scope::Reps,
        LEAD_OR_SELF_200,
    ),
    (Route::GiveFeedback, Scope::Coaching, LEAD_201),
    (
        Route::AcknowledgeFeedback,
        Scope::Coaching,
        LEAD_OR_SELF_200,
    ),
    (Route::AssessSkill, Scope::Coaching, LEAD_201),
    (Route::HoldCoachingSession, Scope::Coaching, LEAD_201),
    // The fixture's action item is owned by the rep, so they may complete
    // or drop it.
    (Route::CompleteActionItem, Scope::Coaching, LEAD_OR_SELF_200),
    (Route::DropActionItem, Scope::Coaching, LEAD_OR_SELF_200),
    (Route::RecordTraining, Scope::Coaching, LEAD_201),
    (Route::RecordMeasurement, Scope::Measurements, LEAD_201),
    (Route::ImportMeasurements, Scope::Measurements, LEAD_200),
    (Route::RaiseSupportRequest, Scope::Support, LEAD_OR_SELF_201),
    (Route::AcknowledgeSupportRequest, Scope::Support, LEAD_200),
    (Route::ResolveSupportRequest, Scope::Support, LEAD_200),
    (Route::StartImprovementPlan, Scope::Plans, LEAD_201),
    (Route::RecordPlanCheckpoint, Scope::Plans, LEAD_200),
    (Route::CloseImprovementPlan, Scope::Plans, LEAD_200),
    (Route::CorrectFact, Scope::Corrections, LEAD_200),
    (Route::HoldReview, Scope::Reviews, LEAD_201),
    (Route::ErasePerson, Scope::Reps, ADMIN_ALONE_200),
];

fn token(app: &TestApp, who: Who, scope: Scope, world: &World, rep: Option<Uuid>) -> String {
    let (leader, other_leader) = (world.leader, world.other_leader);
    let (team, other_team) = (world.team, world.other_team);
    match who {
        Who::Admin => app.admin(),
        Who::LeaderOfTeam => app.leader_as(leader, &[team]),
        Who::LeaderOfOtherTeam => app.leader_as(other_leader, &[other_team]),
        // A route about no existing rep: a rep token that is nobody's in particular.
        Who::RepThemselves => app.rep(rep.unwrap_or_else(Uuid::now_v7)),
        Who::AnotherRep => app.rep(Uuid::now_v7()),
        Who::Auditor => app.auditor(),
        Who::ServiceWithGrant => app.service(&[scope.grant()]),
        Who::ServiceWithoutGrant => {
            let others: Vec<&str> = ALL_SCOPES
                .iter()
                .filter(|s| **s != scope)
                .map(|s| s.grant())
                .collect();
            app.service(&others)
        }
    }
}

async fn every_write_route_allows_exactly_the_roles_the_policy_names(app: &TestApp) {
    // The table covers every write route the router declares.
    let declared: Vec<String> = crate::http::declared_routes()
        .into_iter()
        .filter(|(_, path)| path.starts_with("/v1/"))
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    let covered: Vec<String> = MATRIX
        .iter()
        .map(|(route, _, _)| format!("{} {}", route.method(), route.template()))
        .collect();
    for route in &declared {
        assert!(
            covered.contains(route),
            "the auth matrix has no row for {route}"
        );
    }
    assert_eq!(covered.len(), declared.len(), "one row per declared route");

    let world = app.world().await;
    let mut failures = Vec::new();
    let mut cells = 0;
    for (route, scope, expected) in MATRIX {
        for (who, expected) in WHO.into_iter().zip(expected) {
            cells += 1;
            let prepared = app.prepare(&world, route).await;
            let token = token(app, who, scope, &world, prepared.rep);
            let head_before = app.events_in_log().await;
            let response = app.send_prepared(&prepared, &token).await;
            let got = response.status.as_u16();
            if got != expected {
                failures.push(format!(
                    "{} {} as {who:?}: expected {expected}, got {got}: {}",
                    route.method(),
                    route.template(),
                    response.text()
                ));
                continue;
            }
            if expected == 403 {
                if response.header("content-type") != Some("application/problem+json") {
                    failures.push(format!(
                        "{} as {who:?}: a 403 must be application/problem+json",
                        route.template()
                    ));
                }
                let head_after = app.events_in_log().await;
                if head_after != head_before {
                    failures.push(format!(
                        "{} as {who:?}: refused, yet something was recorded",
                        route.template()
                    ));
                }
            }
        }
    }
    assert_eq!(cells, 33 * 8);
    assert!(
        failures.is_empty(),
        "{} of {cells} cells of the auth matrix are wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every refused cell of [`MATRIX`] sent with an empty body: still 403, not
/// 422 for what the body lacks, and nothing recorded. Only a leader of
/// another team may hear about their body first: whose team a rep is on is
/// read once the body parses.
async fn a_caller_a_route_refuses_is_told_so_whatever_their_body_lacks(app: &TestApp) {
    let world = app.world().await;
    let mut failures = Vec::new();
    let mut cells = 0;
    for (route, scope, expected) in MATRIX {
        let team_decides = !matches!(expected, ADMIN_ONLY_201 | ADMIN_ONLY_200 | ADMIN_ALONE_200);
        for (who, expected) in WHO.into_iter().zip(expected) {
            if expected != 403 || (team_decides && matches!(who, Who::LeaderOfOtherTeam)) {
                continue;
            }
            cells += 1;
            let mut prepared = app.prepare(&world, route).await;
            prepared.body = serde_json::json!({});
            let token = token(app, who, scope, &world, prepared.rep);
            let head_before = app.events_in_log().await;
            let response = app.send_prepared(&prepared, &token).await;
            let got = response.status.as_u16();
            if got != 403 {
                failures.push(format!(
                    "{} {} as {who:?} with {{}}: expected 403, got {got}: {}",
                    route.method(),
                    route.template(),
                    response.text()
                ));
            } else if app.events_in_log().await != head_before {
                failures.push(format!(
                    "{} as {who:?}: refused, yet something was recorded",
                    route.template()
                ));
            }
        }
    }
    // Every route has refused cells that do not hang on a team.
    assert!(cells > MATRIX.len() * 3, "only {cells} cells were tried");
    assert!(
        failures.is_empty(),
        "{} of {cells} refused cells judged the body first:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
