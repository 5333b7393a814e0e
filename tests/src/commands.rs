//! The command service over HTTP, against PostgreSQL and the embedded store:
//! every route's success, every error status with its problem body,
//! malformed inputs, idempotency, concurrent writers, bulk imports, the
//! recorded actor, and the operational endpoints; and the OpenAPI document,
//! alone and as `trellis serve` serves it with every API mounted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use axum::http::Method;
use serde_json::{Value, json};
use trellis_commands::CommandsConfig;
use trellis_http::auth::{Claims, Role, TokenKey};
use uuid::Uuid;

use crate::http::{
    ADMIN_SUB, Route, SERVICE_SUB, TestApp, World, assessment_body, both_backends, feedback_body,
    plan_body, post_request, stream_of, support_body,
};

both_backends!(
    every_route_succeeds_once_and_its_event_lands_in_the_store,
    a_write_records_the_callers_traceparent_and_ignores_a_malformed_one,
    the_actor_is_the_tokens_subject_never_a_body_field,
    a_leader_records_only_under_their_own_id,
    malformed_json_csv_and_headers_are_400,
    missing_bad_expired_and_foreign_tokens_are_401,
    a_write_the_policy_refuses_is_403_and_records_nothing,
    unknown_reps_teams_standards_and_ids_are_404,
    a_stale_if_match_is_409_with_the_current_version,
    a_body_above_the_configured_limit_is_413,
    an_import_above_the_row_limit_is_413,
    a_wrong_content_type_is_415,
    domain_rules_are_422_with_a_sentence,
    a_team_name_another_team_has_is_422_beside_the_name,
    a_competency_name_the_framework_has_is_422_beside_the_name_until_it_is_retired,
    a_second_standard_holding_a_role_to_a_metric_is_422_until_the_first_is_retired,
    one_team_name_sent_eight_times_at_once_to_two_processes_is_one_team,
    one_competency_name_sent_eight_times_at_once_to_two_processes_is_one_competency,
    overlapping_standards_sent_eight_times_at_once_to_two_processes_are_one_standard,
    forty_teams_formed_at_once_are_all_recorded,
    completing_an_unknown_action_item_is_404,
    an_action_item_of_a_retracted_session_is_422_and_records_nothing,
    wrong_json_types_missing_and_unknown_fields_are_422_naming_the_field,
    a_missing_field_is_named_in_errors,
    an_unknown_field_is_named_in_errors,
    a_standard_and_a_coaching_session_name_every_bad_field_in_one_answer,
    a_huge_note_is_422_naming_the_note,
    an_impossible_date_is_422_naming_the_field,
    invalid_utf8_in_csv_is_refused_naming_the_line,
    a_retried_request_with_the_same_idempotency_key_records_once,
    concurrent_retries_of_one_idempotency_key_all_answer_the_first_outcome,
    the_same_idempotency_key_with_another_body_is_422,
    a_retried_import_with_the_same_idempotency_key_records_once,
    two_leaders_giving_feedback_at_once_all_succeed,
    concurrent_writers_pinned_with_if_match_get_409,
    a_2000_row_csv_import_is_recorded_in_one_go,
    a_50000_row_csv_import_is_recorded_in_one_go,
    an_import_with_bad_rows_names_every_bad_row_and_records_nothing,
    a_dry_run_import_names_format_and_domain_errors_at_once_and_records_nothing,
    a_csv_row_with_too_many_columns_is_refused,
    a_json_array_import_is_recorded,
    a_measurement_of_a_standard_set_a_moment_ago_is_recorded,
    a_value_a_raised_target_makes_plausible_is_recorded,
    a_corrected_value_far_above_every_target_is_refused_as_a_likely_typo,
    health_readiness_and_metrics_answer,
    the_command_services_own_document_describes_each_of_its_routes,
    a_refused_command_keeps_the_cached_state_so_the_next_command_reads_no_stream,
);

both_backends!(
    serving:
    the_served_document_describes_every_v1_route_of_trellis_serve_with_its_errors,
    the_served_document_is_openapi_3_1_with_unique_operation_ids_and_resolvable_refs,
    every_documented_v1_route_is_served_and_answers_no_token_with_its_documented_401,
);

fn rep_path(rep: Uuid, rest: &str) -> String {
    format!("/v1/reps/{rep}/{rest}")
}

async fn every_route_succeeds_once_and_its_event_lands_in_the_store(app: &TestApp) {
    let world = app.world().await;
    let admin = app.admin();
    for route in Route::ALL {
        let prepared = app.prepare(&world, route).await;
        let r = app.send_prepared(&prepared, &admin).await;
        let name = route.template();
        let expected = if route.creates() { 201 } else { 200 };
        assert_eq!(r.status.as_u16(), expected, "{name}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"), "{name}");
        let stream = match &prepared.stream {
            Some(stream) => stream.clone(),
            None => stream_of(route.created_category(), r.id()),
        };
        let events = app.stream_events(&stream).await;
        let last = events.last().unwrap_or_else(|| panic!("{name}: no events"));
        assert_eq!(last.event_type, route.event_type(), "{name}");
        assert_eq!(last.metadata.actor, ADMIN_SUB, "{name}: the actor");
        if route == Route::ImportMeasurements {
            assert_eq!(r.json["rows"], 2, "{name}: {}", r.text());
            assert_eq!(r.json["reps"], 1, "{name}");
            assert_eq!(r.json["events"], 2, "{name}");
            assert_eq!(r.json["replayed"], false, "{name}");
            continue;
        }
        if route.creates() {
            assert!(!r.id().is_nil(), "{name}: an id");
        } else {
            assert!(r.json.get("id").is_none(), "{name}: no id for an action");
        }
        assert_eq!(r.stream_version(), last.stream_version, "{name}");
        assert_eq!(r.json["events"], 1, "{name}");
        assert_eq!(r.json["replayed"], false, "{name}");
        assert_eq!(
            r.header("etag"),
            Some(format!("\"{}\"", last.stream_version).as_str()),
            "{name}: the ETag is the stream version"
        );
        assert!(r.header("idempotent-replayed").is_none(), "{name}");
        assert!(r.header("x-request-id").is_some(), "{name}: a request id");
    }
}

/// The events of a write carry the caller's W3C trace context (passed
/// through unchanged: no span is exported in this process); a malformed
/// `traceparent` is no error and records none, nor does a write without one.
async fn a_write_records_the_callers_traceparent_and_ignores_a_malformed_one(app: &TestApp) {
    let admin = app.admin();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut recorded = Vec::new();
    for header in [
        Some(traceparent),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"),
        Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        Some("zz-not-a-trace-context"),
        None,
    ] {
        let extra: Vec<(&str, &str)> = header.map(|h| ("traceparent", h)).into_iter().collect();
        let r = app
            .post_json_with(
                "/v1/teams",
                &admin,
                &json!({ "name": crate::http::unique("Traced") }),
                &extra,
            )
            .await;
        r.expect(201);
        let events = app.stream_events(&stream_of("team", r.id())).await;
        recorded.push(
            events[0]
                .metadata
                .traceparent
                .as_ref()
                .map(|t| t.as_str().to_owned()),
        );
    }
    assert_eq!(
        recorded,
        [Some(traceparent.to_owned()), None, None, None, None]
    );
}

async fn the_actor_is_the_tokens_subject_never_a_body_field(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    // An admin names the leader the feedback is from; the actor is the admin.
    let r = app
        .post_json(
            &rep_path(rep, "feedback"),
            &app.admin(),
            &feedback_body(&world, "2026-02-02"),
        )
        .await;
    r.expect(201);
    let events = app.events("rep", rep).await;
    let given = events.last().expect("an event");
    assert_eq!(given.metadata.actor, ADMIN_SUB);
    assert_eq!(given.payload["leader_id"], json!(world.leader));

    // A leader's own token: the leader is both the author and the actor.
    let mut body = feedback_body(&world, "2026-02-03");
    body.as_object_mut().expect("an object").remove("leader_id");
    app.post_json(
        &rep_path(rep, "feedback"),
        &app.leader_as(world.leader, &[world.team]),
        &body,
    )
    .await
    .expect(201);
    let events = app.events("rep", rep).await;
    let given = events.last().expect("an event");
    assert_eq!(given.metadata.actor, world.leader.to_string());
    assert_eq!(given.payload["leader_id"], json!(world.leader));

    // A rep raising a request is the actor; a service is recorded as itself.
    app.post_json(
        &rep_path(rep, "support-requests"),
        &app.rep(rep),
        &support_body(),
    )
    .await
    .expect(201);
    app.post_json(
        &rep_path(rep, "measurements"),
        &app.service(&["measurements:write"]),
        &json!({ "metric": "calls_made", "period": "2026-W10", "value": 42 }),
    )
    .await
    .expect(201);
    let actors: Vec<String> = app
        .events("rep", rep)
        .await
        .into_iter()
        .map(|e| e.metadata.actor)
        .collect();
    assert_eq!(
        actors,
        [
            ADMIN_SUB.to_owned(),
            ADMIN_SUB.to_owned(),
            world.leader.to_string(),
            rep.to_string(),
            SERVICE_SUB.to_owned()
        ]
    );

    // A client cannot name the actor: the field does not exist.
    let mut body = feedback_body(&world, "2026-02-04");
    body["actor"] = json!("someone-else");
    let r = app
        .post_json(&rep_path(rep, "feedback"), &app.admin(), &body)
        .await;
    r.expect_problem(422, "validation");
    assert!(r.text().contains("actor"), "{}", r.text());
    assert_eq!(app.events("rep", rep).await.len(), 5);
}

async fn a_leader_records_only_under_their_own_id(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let r = app
        .post_json(
            &rep_path(rep, "feedback"),
            &app.leader(&[world.team]),
            &feedback_body(&world, "2026-02-02"),
        )
        .await;
    r.expect_problem(403, "forbidden");
    assert!(r.json["detail"].as_str().unwrap_or("").contains("own id"));
    // An admin must name the leader.
    let mut body = feedback_body(&world, "2026-02-02");
    body.as_object_mut().expect("an object").remove("leader_id");
    let r = app
        .post_json(&rep_path(rep, "feedback"), &app.admin(), &body)
        .await;
    r.expect_invalid_field("leader_id");
    assert_eq!(app.events("rep", rep).await.len(), 1);
}

async fn malformed_json_csv_and_headers_are_400(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let admin = app.admin();
    let path = rep_path(rep, "feedback");
    for bad in [
        &b"{\"note\": "[..],
        b"{not json}",
        b"",
        b"{\"note\": \"unterminated}",
    ] {
        let r = app
            .post_raw(&path, &admin, "application/json", bad.to_vec(), &[])
            .await;
        r.expect_problem(400, "malformed-body");
        assert!(
            r.json["detail"].as_str().unwrap_or("").contains("JSON"),
            "{}",
            r.text()
        );
    }
    // A CSV without the header line naming the columns.
    let r = app
        .post_raw(
            "/v1/measurements",
            &admin,
            "text/csv",
            format!("who,what\n{rep},calls_made\n"),
            &[],
        )
        .await;
    r.expect_problem(400, "malformed-body");
    assert!(r.text().contains("header"), "{}", r.text());
    // A CSV with an unterminated quote.
    let r = app
        .post_raw(
            "/v1/measurements",
            &admin,
            "text/csv",
            format!("rep,metric,period,value\n{rep},\"calls_made,2026-W10,1\n"),
            &[],
        )
        .await;
    assert!(
        r.status.as_u16() == 400 || r.status.as_u16() == 422,
        "a broken quote is refused: {}",
        r.text()
    );
    // If-Match must be a version.
    for bad in ["abc", "\"v3\"", "-1"] {
        let r = app
            .post_json_with(
                &path,
                &admin,
                &feedback_body(&world, "2026-02-02"),
                &[("if-match", bad)],
            )
            .await;
        r.expect_problem(400, "bad-request");
        assert!(r.text().contains("If-Match"), "{}", r.text());
    }
    // An empty or overlong Idempotency-Key.
    for bad in [" ".to_owned(), "k".repeat(201)] {
        let r = app
            .post_json_with(
                &path,
                &admin,
                &feedback_body(&world, "2026-02-02"),
                &[("idempotency-key", bad.as_str())],
            )
            .await;
        r.expect_problem(400, "bad-request");
    }
    assert_eq!(app.events("rep", rep).await.len(), 1, "nothing recorded");
}

async fn missing_bad_expired_and_foreign_tokens_are_401(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let path = rep_path(rep, "feedback");
    let body = serde_json::to_vec(&feedback_body(&world, "2026-02-02")).expect("json");
    let now = chrono::Utc::now().timestamp();
    let expired = app.mint(&Claims {
        sub: ADMIN_SUB.into(),
        role: Role::Admin,
        teams: vec![],
        grants: vec![],
        exp: now - 60,
        iat: Some(now - 3660),
    });
    let foreign = TokenKey::new(b"another-trellis-another-secret!!".to_vec())
        .expect("a key")
        .mint(&Claims {
            sub: ADMIN_SUB.into(),
            role: Role::Admin,
            teams: vec![],
            grants: vec![],
            exp: now + 3600,
            iat: Some(now),
        });
    let cases: [(&str, Option<String>, &str); 6] = [
        ("missing", None, "no bearer token"),
        ("garbage", Some("Bearer garbage".into()), "not a JWT"),
        (
            "not bearer",
            Some(format!("Basic {}", app.admin())),
            "Bearer",
        ),
        ("expired", Some(format!("Bearer {expired}")), "expired"),
        (
            "another secret",
            Some(format!("Bearer {foreign}")),
            "signature",
        ),
        (
            "three garbage parts",
            Some("Bearer a.b.c".into()),
            "not a JWT",
        ),
    ];
    for (name, authorization, says) in cases {
        let mut extra = vec![];
        if let Some(value) = &authorization {
            extra.push(("authorization", value.as_str()));
        }
        let r = app
            .request(
                Method::POST,
                &path,
                "",
                Some("application/json"),
                body.clone(),
                &extra,
            )
            .await;
        r.expect_problem(401, "unauthorized");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{name}");
        assert!(
            r.json["detail"].as_str().unwrap_or("").contains(says),
            "{name}: {}",
            r.text()
        );
    }
    assert_eq!(app.events("rep", rep).await.len(), 1, "nothing recorded");
}

async fn a_write_the_policy_refuses_is_403_and_records_nothing(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let mut own_body = assessment_body(&world, 3);
    own_body["leader_id"] = json!(world.other_leader);
    let cases = [
        (app.auditor(), "auditors", assessment_body(&world, 3)),
        (
            app.leader_as(world.other_leader, &[world.other_team]),
            "team you lead",
            own_body,
        ),
        (app.rep(rep), "a rep may", assessment_body(&world, 3)),
        (
            app.service(&["support:write"]),
            "coaching:write",
            assessment_body(&world, 3),
        ),
    ];
    for (token, says, body) in cases {
        let r = app
            .post_json(&rep_path(rep, "skill-assessments"), &token, &body)
            .await;
        r.expect_problem(403, "forbidden");
        assert!(
            r.json["detail"].as_str().unwrap_or("").contains(says),
            "{says}: {}",
            r.text()
        );
    }
    let r = app
        .post_json(
            "/v1/teams",
            &app.leader(&[world.team]),
            &json!({ "name": "Mine" }),
        )
        .await;
    r.expect_problem(403, "forbidden");
    assert_eq!(app.events("rep", rep).await.len(), 1, "nothing recorded");
}

async fn unknown_reps_teams_standards_and_ids_are_404(app: &TestApp) {
    let world = app.world().await;
    let admin = app.admin();
    let nobody = Uuid::now_v7();
    // Feedback for an unknown rep.
    let r = app
        .post_json(
            &rep_path(nobody, "feedback"),
            &admin,
            &feedback_body(&world, "2026-02-02"),
        )
        .await;
    r.expect_problem(404, "not-found");
    assert!(r.text().contains("no such rep"), "{}", r.text());
    // A leader writing for an unknown rep learns it does not exist.
    app.post_json(
        &rep_path(nobody, "feedback"),
        &app.leader_as(world.leader, &[world.team]),
        &json!({ "competency_id": world.competency, "kind": "praise", "note": "Good", "given_on": "2026-02-02" }),
    )
    .await
    .expect_problem(404, "not-found");
    // An id that is not a UUID.
    let r = app
        .post_json(
            "/v1/reps/not-a-uuid/feedback",
            &admin,
            &feedback_body(&world, "2026-02-02"),
        )
        .await;
    r.expect_problem(404, "not-found");
    assert!(r.text().contains("not-a-uuid"), "{}", r.text());
    // Unknown teams.
    app.post_json(
        &format!("/v1/teams/{nobody}/leaders"),
        &admin,
        &json!({ "leader_id": Uuid::now_v7(), "leader_name": "Lee" }),
    )
    .await
    .expect_problem(404, "not-found");
    let r = app
        .post_json(
            "/v1/reps",
            &admin,
            &json!({ "name": "Riley", "role": "SDR", "team_id": nobody, "start_date": "2026-01-05" }),
        )
        .await;
    r.expect_problem(404, "not-found");
    assert!(r.text().contains("no such team"), "{}", r.text());
    // Unknown standards.
    let rep = app.join_rep(world.team).await;
    app.post_json(
        &rep_path(rep, "expectations-acknowledgements"),
        &admin,
        &json!({ "standard_id": nobody, "on": "2026-02-02" }),
    )
    .await
    .expect_problem(404, "not-found");
    app.post_json(
        &format!("/v1/standards/{nobody}/revisions"),
        &admin,
        &json!({ "target": 10, "effective_from": "2026-03-01" }),
    )
    .await
    .expect_problem(404, "not-found");
    // Unknown feedback, support request, competency; an unknown route.
    app.post_json(
        &rep_path(rep, &format!("feedback/{nobody}/acknowledgement")),
        &app.rep(rep),
        &json!({ "on": "2026-02-02" }),
    )
    .await
    .expect_problem(404, "not-found");
    app.post_json(
        &rep_path(rep, &format!("support-requests/{nobody}/resolution")),
        &admin,
        &json!({ "leader_id": world.leader, "resolution": "Done", "on": "2026-02-02" }),
    )
    .await
    .expect_problem(404, "not-found");
    let mut body = feedback_body(&world, "2026-02-02");
    body["competency_id"] = json!(nobody);
    app.post_json(&rep_path(rep, "feedback"), &admin, &body)
        .await
        .expect_problem(404, "not-found");
    app.post_json("/v1/nothing-here", &admin, &json!({}))
        .await
        .expect_problem(404, "not-found");
    assert_eq!(app.events("rep", rep).await.len(), 1, "nothing recorded");
}

async fn a_stale_if_match_is_409_with_the_current_version(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let admin = app.admin();
    let path = rep_path(rep, "feedback");
    // The version the client saw: 1 (the join). Matching it succeeds.
    let r = app
        .post_json_with(
            &path,
            &admin,
            &feedback_body(&world, "2026-02-02"),
            &[("if-match", "\"1\"")],
        )
        .await;
    r.expect(201);
    assert_eq!(r.stream_version(), 2);
    // The same stale version again: 409 with where the stream is.
    let r = app
        .post_json_with(
            &path,
            &admin,
            &feedback_body(&world, "2026-02-03"),
            &[("if-match", "\"1\"")],
        )
        .await;
    r.expect_problem(409, "version-conflict");
    assert_eq!(r.json["current_version"], 2, "{}", r.text());
    assert_eq!(r.header("etag"), Some("\"2\""));
    // A version from the future is stale too.
    let r = app
        .post_json_with(
            &path,
            &admin,
            &feedback_body(&world, "2026-02-03"),
            &[("if-match", "7")],
        )
        .await;
    r.expect_problem(409, "version-conflict");
    assert_eq!(r.json["current_version"], 2);
    assert_eq!(app.events("rep", rep).await.len(), 2);
}

async fn a_body_above_the_configured_limit_is_413(app: &TestApp) {
    let small = TestApp::with_config(app.kind(), 1024, CommandsConfig::default()).await;
    let world = small.world().await;
    let rep = small.join_rep(world.team).await;
    let mut body = feedback_body(&world, "2026-02-02");
    body["note"] = json!("x".repeat(2000));
    let r = small
        .post_json(&rep_path(rep, "feedback"), &small.admin(), &body)
        .await;
    r.expect_problem(413, "payload-too-large");
    assert!(r.text().contains("1024"), "{}", r.text());
    // An import too.
    let csv = format!(
        "rep,metric,period,value\n{}",
        format!("{rep},calls_made,2026-W10,1\n").repeat(40)
    );
    small
        .post_raw("/v1/measurements", &small.admin(), "text/csv", csv, &[])
        .await
        .expect_problem(413, "payload-too-large");
    // Under the limit is fine.
    small
        .post_json(
            &rep_path(rep, "feedback"),
            &small.admin(),
            &feedback_body(&world, "2026-02-02"),
        )
        .await
        .expect(201);
    assert_eq!(small.events("rep", rep).await.len(), 2);
    small.cleanup().await;
}

async fn an_import_above_the_row_limit_is_413(app: &TestApp) {
    let small = TestApp::with_config(
        app.kind(),
        trellis_http::DEFAULT_BODY_LIMIT,
        CommandsConfig {
            max_import_rows: 3,
            ..CommandsConfig::default()
        },
    )
    .await;
    let world = small.world().await;
    let rep = small.join_rep(world.team).await;
    let rows: String = (10..14)
        .map(|w| format!("{rep},calls_made,2026-W{w},1\n"))
        .collect();
    let r = small
        .post_raw(
            "/v1/measurements",
            &small.admin(),
            "text/csv",
            format!("rep,metric,period,value\n{rows}"),
            &[],
        )
        .await;
    r.expect_problem(413, "payload-too-large");
    assert!(r.text().contains("at most 3 rows"), "{}", r.text());
    let json_rows: Vec<Value> = (10..14)
        .map(|w| json!({ "rep_id": rep, "metric": "calls_made", "period": format!("2026-W{w}"), "value": 1 }))
        .collect();
    small
        .post_json("/v1/measurements", &small.admin(), &json!(json_rows))
        .await
        .expect_problem(413, "payload-too-large");
    assert_eq!(small.events("rep", rep).await.len(), 1);
    small.cleanup().await;
}

async fn a_wrong_content_type_is_415(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let admin = app.admin();
    let body = serde_json::to_vec(&feedback_body(&world, "2026-02-02")).expect("json");
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let r = app
            .request(
                Method::POST,
                &rep_path(rep, "feedback"),
                &admin,
                content_type,
                body.clone(),
                &[],
            )
            .await;
        r.expect_problem(415, "unsupported-media-type");
        assert!(r.text().contains("application/json"), "{}", r.text());
    }
    // JSON with parameters, and +json types, are JSON.
    app.post_raw(
        &rep_path(rep, "feedback"),
        &admin,
        "application/json; charset=utf-8",
        body.clone(),
        &[],
    )
    .await
    .expect(201);
    let r = app
        .post_raw(
            "/v1/measurements",
            &admin,
            "application/xml",
            "<rows/>",
            &[],
        )
        .await;
    r.expect_problem(415, "unsupported-media-type");
    assert!(r.text().contains("text/csv"), "{}", r.text());
}

async fn domain_rules_are_422_with_a_sentence(app: &TestApp) {
    let world = app.world().await;
    let admin = app.admin();

    // Feedback for a departed rep.
    let departed = app.join_rep(world.team).await;
    app.post_json(
        &rep_path(departed, "departure"),
        &admin,
        &json!({ "on": "2026-03-02", "reason": "Left" }),
    )
    .await
    .expect(200);
    let r = app
        .post_json(
            &rep_path(departed, "feedback"),
            &admin,
            &feedback_body(&world, "2026-02-02"),
        )
        .await;
    r.expect_problem(422, "rejected");
    assert!(r.text().contains("departed on 2026-03-02"), "{}", r.text());

    let rep = app.join_rep(world.team).await;
    // Level 7.
    let reason = app
        .post_json(
            &rep_path(rep, "skill-assessments"),
            &admin,
            &assessment_body(&world, 7),
        )
        .await
        .expect_invalid_field("level");
    assert!(reason.contains("1 to 5"), "{reason}");

    // Resolving a request twice.
    let request = app.support_request(rep).await;
    let resolve = json!({ "leader_id": world.leader, "resolution": "Fixed", "on": "2026-02-17" });
    let path = rep_path(rep, &format!("support-requests/{request}/resolution"));
    app.post_json(&path, &admin, &resolve).await.expect(200);
    let r = app.post_json(&path, &admin, &resolve).await;
    r.expect_problem(422, "rejected");
    assert!(r.text().contains("already resolved"), "{}", r.text());

    // A second open improvement plan.
    app.improvement_plan(&world, rep).await;
    let r = app
        .post_json(
            &rep_path(rep, "improvement-plans"),
            &admin,
            &plan_body(&world),
        )
        .await;
    r.expect_problem(422, "rejected");
    assert!(r.text().contains("already has an open improvement plan"));

    // A date in the future, a date before the rep joined.
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Days::new(1)).to_string();
    let mut assessment = assessment_body(&world, 3);
    assessment["assessed_on"] = json!(tomorrow);
    let r = app
        .post_json(&rep_path(rep, "skill-assessments"), &admin, &assessment)
        .await;
    r.expect_problem(422, "rejected");
    assert!(r.text().contains("in the future"), "{}", r.text());
    // Feedback and coaching judge a day ahead with their fields (the same
    // rule, the same words), so that it is named with any other mistake.
    let reason = app
        .post_json(
            &rep_path(rep, "feedback"),
            &admin,
            &feedback_body(&world, &tomorrow),
        )
        .await
        .expect_invalid_field("given_on");
    assert!(reason.contains("in the future"), "{reason}");
    let r = app
        .post_json(
            &rep_path(rep, "feedback"),
            &admin,
            &feedback_body(&world, "2026-01-02"),
        )
        .await;
    r.expect_problem(422, "rejected");
    assert!(r.text().contains("before the rep joined"), "{}", r.text());

    // An empty note.
    let mut body = feedback_body(&world, "2026-02-02");
    body["note"] = json!("   ");
    let reason = app
        .post_json(&rep_path(rep, "feedback"), &admin, &body)
        .await
        .expect_invalid_field("note");
    assert!(reason.contains("empty"), "{reason}");

    // A non-positive target.
    for target in [0.0, -5.0] {
        let mut body = crate::http::standard_body("calls_made");
        body["target"] = json!(target);
        let reason = app
            .post_json("/v1/standards", &admin, &body)
            .await
            .expect_invalid_field("target");
        assert!(reason.contains("greater than zero"), "{reason}");
    }

    // A measurement for a period that has not started.
    let r = app
        .post_json(
            &rep_path(rep, "measurements"),
            &admin,
            &json!({ "metric": "calls_made", "period": "2027-Q1", "value": 3 }),
        )
        .await;
    r.expect_problem(422, "rejected");
    // Nothing of the refused writes was recorded: joined, raised, resolved, plan.
    assert_eq!(
        app.event_types("rep", rep).await,
        [
            "RepJoined",
            "SupportRequested",
            "SupportResolved",
            "ImprovementPlanStarted"
        ]
    );
}

async fn completing_an_unknown_action_item_is_404(app: &TestApp) {
    // `ActionItemNotFound` maps to 404 in problem.rs (the item is named in
    // the path); the brief listed it under 422.
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let item = Uuid::now_v7();
    let r = app
        .post_json(
            &rep_path(rep, &format!("action-items/{item}/completion")),
            &app.admin(),
            &json!({ "on": "2026-02-10" }),
        )
        .await;
    r.expect_problem(404, "not-found");
    assert!(r.text().contains("no action item"), "{}", r.text());
    // Completing one twice is a domain rule.
    let item = app.action_item(&world, rep).await;
    let path = rep_path(rep, &format!("action-items/{item}/completion"));
    app.post_json(&path, &app.rep(rep), &json!({ "on": "2026-02-10" }))
        .await
        .expect(200);
    let r = app
        .post_json(&path, &app.rep(rep), &json!({ "on": "2026-02-11" }))
        .await;
    r.expect_problem(422, "rejected");
    assert!(r.text().contains("already"), "{}", r.text());
}

/// A retracted coaching session takes its action items along (the domain's
/// rule): completing or dropping one is refused with a sentence naming the
/// item (not the session, which may be private), and nothing is recorded.
async fn an_action_item_of_a_retracted_session_is_422_and_records_nothing(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let admin = app.admin();
    let session = app
        .post_json(
            &rep_path(rep, "coaching-sessions"),
            &admin,
            &crate::http::session_body(&world),
        )
        .await;
    session.expect(201);
    let session_id = session.id();
    let item = session.json["action_item_ids"][0]
        .as_str()
        .expect("an item id")
        .to_owned();
    app.post_json(
        &rep_path(rep, "corrections"),
        &admin,
        &json!({
            "fact_id": session_id,
            "reason": "Held with another rep",
            "correction": { "kind": "retracted" },
        }),
    )
    .await
    .expect(200);
    for (action, body) in [
        ("completion", json!({ "on": "2026-02-10" })),
        (
            "drop",
            json!({ "on": "2026-02-10", "reason": "No longer needed" }),
        ),
    ] {
        let r = app
            .post_json(
                &rep_path(rep, &format!("action-items/{item}/{action}")),
                &admin,
                &body,
            )
            .await;
        r.expect_problem(422, "rejected");
        assert!(
            r.text().contains("This action item was agreed")
                && r.text().contains("since been retracted"),
            "{action}: {}",
            r.text()
        );
        assert!(
            !r.text().contains(&session_id.to_string()),
            "the session (it may be private) is not named: {}",
            r.text()
        );
    }
    assert_eq!(
        app.event_types("rep", rep).await,
        ["RepJoined", "CoachingSessionHeld", "FactCorrected"]
    );
}

async fn wrong_json_types_missing_and_unknown_fields_are_422_naming_the_field(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let admin = app.admin();
    let path = rep_path(rep, "skill-assessments");

    let mut body = assessment_body(&world, 3);
    body["level"] = json!("high");
    let reason = app
        .post_json(&path, &admin, &body)
        .await
        .expect_invalid_field("level");
    // In words, not the parser's Rust types.
    assert!(
        reason.starts_with("must be a whole number") && reason.contains("\"high\""),
        "{reason}"
    );

    let mut body = assessment_body(&world, 3);
    body["competency_id"] = json!(12);
    app.post_json(&path, &admin, &body)
        .await
        .expect_invalid_field("competency_id");

    let mut body = assessment_body(&world, 3);
    body["competency_id"] = json!("not-a-uuid");
    app.post_json(&path, &admin, &body)
        .await
        .expect_invalid_field("competency_id");

    // A missing field: the problem names it.
    let mut body = assessment_body(&world, 3);
    body.as_object_mut().expect("an object").remove("evidence");
    let r = app.post_json(&path, &admin, &body).await;
    r.expect_problem(422, "validation");
    assert!(
        r.field_errors()
            .iter()
            .any(|(field, reason)| field == "evidence" || reason.contains("`evidence`")),
        "{}",
        r.text()
    );

    // A typo in a field name is refused, not silently dropped.
    let mut body = assessment_body(&world, 3);
    let evidence = body["evidence"].take();
    body.as_object_mut().expect("an object").remove("evidence");
    body["evidense"] = evidence;
    let r = app.post_json(&path, &admin, &body).await;
    r.expect_problem(422, "validation");
    assert!(r.text().contains("evidense"), "{}", r.text());

    // Wrong enum values and nested types.
    let mut body = feedback_body(&world, "2026-02-02");
    body["kind"] = json!("rant");
    app.post_json(&rep_path(rep, "feedback"), &admin, &body)
        .await
        .expect_invalid_field("kind");
    let r = app
        .post_json(
            &rep_path(rep, "coaching-sessions"),
            &admin,
            &json!({
                "leader_id": world.leader, "held_on": "2026-02-09", "duration_minutes": 30,
                "notes": "n", "action_items": [ { "description": "d", "owner": "rep", "due_on": 5 } ],
            }),
        )
        .await;
    r.expect_invalid_field("action_items[0].due_on");
    // A JSON value that is not an object.
    app.post_json(&path, &admin, &json!("an assessment"))
        .await
        .expect_invalid_field("body");
    assert_eq!(app.events("rep", rep).await.len(), 1, "nothing recorded");
}

async fn a_missing_field_is_named_in_errors(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let path = rep_path(rep, "skill-assessments");
    let mut body = assessment_body(&world, 3);
    body.as_object_mut().expect("an object").remove("evidence");
    let reason = app
        .post_json(&path, &app.admin(), &body)
        .await
        .expect_invalid_field("evidence");
    assert!(reason.contains("missing"), "{reason}");
}

async fn an_unknown_field_is_named_in_errors(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let path = rep_path(rep, "skill-assessments");
    let mut body = assessment_body(&world, 3);
    body["evidense"] = body["evidence"].take();
    body.as_object_mut().expect("an object").remove("evidence");
    let reason = app
        .post_json(&path, &app.admin(), &body)
        .await
        .expect_invalid_field("evidense");
    // In words, naming the fields there are, without the parser's marks.
    assert!(
        reason.starts_with("“evidense” is not a field of this request; its fields are ")
            && reason.contains("evidence")
            && !reason.contains('`'),
        "{reason}"
    );
}

/// A number or a date the parser cannot read is named with the fields the
/// conversion refuses, in one answer: a form shows every mistake at once,
/// not one a send.
async fn a_standard_and_a_coaching_session_name_every_bad_field_in_one_answer(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let admin = app.admin();
    let before = app.events_in_log().await;
    let fields = |r: &crate::http::Resp| -> Vec<String> {
        r.expect_problem(422, "validation");
        let mut fields: Vec<String> = r.field_errors().into_iter().map(|(f, _)| f).collect();
        fields.sort();
        fields
    };

    let r = app
        .post_json(
            "/v1/standards",
            &admin,
            &json!({ "name": "Weekly calls", "metric": "Calls Made", "kind": "",
                "direction": "at_least", "unit": "calls", "period": "week",
                "target": "fifty", "roles": ["SDR"], "effective_from": "",
                "ramp": [ { "period_index": 1, "percent_of_target": 50 },
                          { "period_index": 2, "percent_of_target": "most" } ] }),
        )
        .await;
    assert_eq!(
        fields(&r),
        [
            "effective_from",
            "kind",
            "metric",
            "ramp[1].percent_of_target",
            "target"
        ],
        "{}",
        r.text()
    );
    let reasons = r.field_errors();
    let reason = |field: &str| {
        reasons
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, why)| why.clone())
            .unwrap_or_default()
    };
    assert!(
        reason("target").contains("a number") && reason("target").contains("\"fifty\""),
        "{}",
        r.text()
    );
    assert!(
        reason("effective_from").contains("required"),
        "{}",
        r.text()
    );

    // Absent altogether, a judged field is required, with the others.
    let r = app
        .post_json(
            &format!("/v1/standards/{}/revisions", world.standard),
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(fields(&r), ["effective_from", "target"], "{}", r.text());

    let r = app
        .post_json(
            &rep_path(rep, "coaching-sessions"),
            &admin,
            &json!({
                "leader_id": world.leader, "held_on": "", "duration_minutes": "half an hour",
                "notes": " ", "action_items": [
                    { "description": "Call back Acme", "owner": "rep", "due_on": "" },
                    { "description": "", "owner": "leader", "due_on": "2026-02-30" },
                ],
            }),
        )
        .await;
    assert_eq!(
        fields(&r),
        [
            "action_items[0].due_on",
            "action_items[1].description",
            "action_items[1].due_on",
            "duration_minutes",
            "held_on",
            "notes"
        ],
        "{}",
        r.text()
    );
    let length = r
        .field_errors()
        .into_iter()
        .find(|(f, _)| f == "duration_minutes")
        .map(|(_, why)| why)
        .unwrap_or_default();
    assert!(
        length.contains("from 1 to 480") && !length.contains("0 or more"),
        "{length}"
    );

    // The rules of a session's own dates and length that need no rep are
    // named with the fields the parser refuses, not one send later.
    let ahead = (chrono::Utc::now().date_naive() + chrono::Days::new(3)).to_string();
    let r = app
        .post_json(
            &rep_path(rep, "coaching-sessions"),
            &admin,
            &json!({
                "leader_id": world.leader, "held_on": "2026-03-10", "duration_minutes": 99999,
                "notes": " ", "action_items": [
                    { "description": "Call back Acme", "owner": "rep", "due_on": "2026-03-01" },
                ],
            }),
        )
        .await;
    assert_eq!(
        fields(&r),
        ["action_items[0].due_on", "duration_minutes", "notes"],
        "{}",
        r.text()
    );
    let reasons = r.field_errors();
    assert!(
        reasons.iter().any(|(f, why)| f == "action_items[0].due_on"
            && why.contains("before the session on 2026-03-10")),
        "{}",
        r.text()
    );
    // Feedback: no competency chosen, no kind, and a day still ahead.
    let r = app
        .post_json(
            &rep_path(rep, "feedback"),
            &admin,
            &json!({ "leader_id": world.leader, "competency_id": "", "note": "Good call.",
                     "given_on": ahead }),
        )
        .await;
    assert_eq!(
        fields(&r),
        ["competency_id", "given_on", "kind"],
        "{}",
        r.text()
    );
    assert!(
        r.field_errors()
            .iter()
            .any(|(f, why)| f == "given_on" && why.contains("is in the future")),
        "{}",
        r.text()
    );
    let r = app
        .post_json(
            &rep_path(rep, "coaching-sessions"),
            &admin,
            &json!({ "leader_id": world.leader, "held_on": ahead, "duration_minutes": 30,
                     "notes": "" }),
        )
        .await;
    assert_eq!(fields(&r), ["held_on", "notes"], "{}", r.text());
    // A support request with no category, no words and a day ahead.
    let r = app
        .post_json(
            &rep_path(rep, "support-requests"),
            &admin,
            &json!({ "category": "", "description": " ", "raised_on": ahead }),
        )
        .await;
    assert_eq!(
        fields(&r),
        ["category", "description", "raised_on"],
        "{}",
        r.text()
    );
    assert_eq!(app.events_in_log().await, before, "nothing recorded");

    // A level's correction with neither a level nor evidence: both named.
    let assessment = app
        .post_json(
            &rep_path(rep, "skill-assessments"),
            &admin,
            &assessment_body(&world, 3),
        )
        .await
        .expect(201)
        .id();
    let before = app.events_in_log().await;
    let r = app
        .post_json(
            &rep_path(rep, "corrections"),
            &admin,
            &json!({ "fact_id": assessment, "reason": "",
                     "correction": { "kind": "skill_level", "level": "", "evidence": " " } }),
        )
        .await;
    assert_eq!(
        fields(&r),
        ["correction.evidence", "correction.level", "reason"],
        "{}",
        r.text()
    );
    assert_eq!(app.events_in_log().await, before, "nothing recorded");
}

async fn a_huge_note_is_422_naming_the_note(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let mut body = feedback_body(&world, "2026-02-02");
    body["note"] = json!("a".repeat(20_000));
    let reason = app
        .post_json(&rep_path(rep, "feedback"), &app.admin(), &body)
        .await
        .expect_invalid_field("note");
    assert!(
        reason.contains("20000") && reason.contains("10000"),
        "{reason}"
    );
    let mut body = json!({ "name": "n".repeat(5_000) });
    let r = app.post_json("/v1/teams", &app.admin(), &body).await;
    r.expect_invalid_field("name");
    body["name"] = json!("Two\nlines");
    app.post_json("/v1/teams", &app.admin(), &body)
        .await
        .expect_invalid_field("name");
    assert_eq!(app.events("rep", rep).await.len(), 1);
}

/// Two teams of one name cannot be told apart in any list: forming or
/// renaming a team to another's name (whatever its case and spacing) is
/// refused, beside the name; keeping one's own is not.
async fn a_team_name_another_team_has_is_422_beside_the_name(app: &TestApp) {
    let west = crate::http::unique("West");
    app.form_team(&west).await;
    let taken = format!("  {}  ", west.to_uppercase());
    let r = app
        .post_json("/v1/teams", &app.admin(), &json!({ "name": taken }))
        .await;
    r.expect_problem(422, "rejected");
    assert_eq!(r.json["concerns"], json!("name"), "{}", r.text());
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("Another team is already called “{west}”")),
        "{}",
        r.text()
    );
    let east = crate::http::unique("East");
    let team = app.form_team(&east).await;
    let rename = format!("/v1/teams/{team}/name");
    app.put_json(&rename, &app.admin(), &json!({ "name": west }))
        .await
        .expect_problem(422, "rejected");
    app.put_json(&rename, &app.admin(), &json!({ "name": east }))
        .await
        .expect(200);
    assert_eq!(
        app.events("team", team).await.len(),
        1,
        "still its first name"
    );
}

async fn a_competency_name_the_framework_has_is_422_beside_the_name_until_it_is_retired(
    app: &TestApp,
) {
    let discovery = app.define_competency("Discovery").await;
    let r = app
        .post_json(
            "/v1/competencies",
            &app.admin(),
            &crate::http::competency_body("  discovery "),
        )
        .await;
    r.expect_problem(422, "rejected");
    assert_eq!(r.json["concerns"], json!("name"), "{}", r.text());
    let detail = r.json["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("already has a competency called “Discovery”"),
        "{detail}"
    );
    // Renaming another to it is refused; a revision keeping its own name is not.
    let closing = app.define_competency("Closing").await;
    let path = format!("/v1/competencies/{closing}");
    app.put_json(
        &path,
        &app.admin(),
        &crate::http::competency_body("DISCOVERY"),
    )
    .await
    .expect_problem(422, "rejected");
    let mut own = crate::http::competency_body("Discovery");
    own["description"] = json!("Uncovers the buyer's problem, impact and urgency.");
    app.put_json(&format!("/v1/competencies/{discovery}"), &app.admin(), &own)
        .await
        .expect(200);
    // Once retired, its name may be given to a new competency.
    app.post_json(
        &format!("/v1/competencies/{discovery}/retirement"),
        &app.admin(),
        &json!({ "reason": "Split into two." }),
    )
    .await
    .expect(200);
    app.define_competency("Discovery").await;
}

/// Two standards that would hold one role to one metric, in one kind of
/// period, at the same time would judge each measurement twice: the
/// second is refused (concerning the metric; a revision, its roles), and
/// accepted for other roles, or from the day the first is retired.
async fn a_second_standard_holding_a_role_to_a_metric_is_422_until_the_first_is_retired(
    app: &TestApp,
) {
    // The world's standard: calls_made, weekly, SDR, from 2026-01-01.
    let world = app.world().await;
    let admin = app.admin();
    let mut second = crate::http::standard_body("calls_made");
    second["name"] = json!("Calls, the new way");
    let r = app.post_json("/v1/standards", &admin, &second).await;
    r.expect_problem(422, "rejected");
    assert_eq!(r.json["concerns"], json!("metric"), "{}", r.text());
    let detail = r.json["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("“Weekly calls” already holds SDR reps to calls_made, weekly"),
        "{detail}"
    );
    // For AEs only, it may; a monthly one for SDRs may too.
    second["roles"] = json!(["AE"]);
    let for_aes = app
        .post_json("/v1/standards", &admin, &second)
        .await
        .expect(201)
        .id();
    let mut monthly = crate::http::standard_body("calls_made");
    monthly["period"] = json!("month");
    app.post_json("/v1/standards", &admin, &monthly)
        .await
        .expect(201);
    // Giving it SDRs too is refused beside the roles.
    let revise = format!("/v1/standards/{for_aes}/revisions");
    let r = app
        .post_json(
            &revise,
            &admin,
            &json!({ "target": 60, "effective_from": "2026-04-01", "roles": ["AE", "SDR"] }),
        )
        .await;
    r.expect_problem(422, "rejected");
    assert_eq!(r.json["concerns"], json!("roles"), "{}", r.text());
    // Once the world's is retired from that day, it may.
    app.post_json(
        &format!("/v1/standards/{}/retirement", world.standard),
        &admin,
        &json!({ "effective_from": "2026-04-01", "reason": "Folded into the AE standard." }),
    )
    .await
    .expect(200);
    app.post_json(
        &revise,
        &admin,
        &json!({ "target": 60, "effective_from": "2026-04-01", "roles": ["AE", "SDR"] }),
    )
    .await
    .expect(200);
}

async fn one_team_name_sent_eight_times_at_once_to_two_processes_is_one_team(app: &TestApp) {
    let name = crate::http::unique("West");
    one_of_eight_at_once_is_recorded(app, "/v1/teams", &json!({ "name": name }), "name").await;
}

async fn one_competency_name_sent_eight_times_at_once_to_two_processes_is_one_competency(
    app: &TestApp,
) {
    let body = crate::http::competency_body(&crate::http::unique("Discovery"));
    one_of_eight_at_once_is_recorded(app, "/v1/competencies", &body, "name").await;
}

async fn overlapping_standards_sent_eight_times_at_once_to_two_processes_are_one_standard(
    app: &TestApp,
) {
    let body = crate::http::standard_body(&crate::http::unique_metric("demos_booked"));
    one_of_eight_at_once_is_recorded(app, "/v1/standards", &body, "metric").await;
}

/// More commands waiting for their category than the store has
/// connections: each is recorded in turn (a writer waiting its turn holds
/// no connection the one checking needs).
async fn forty_teams_formed_at_once_are_all_recorded(app: &TestApp) {
    let admin = app.admin();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let router = app.router.clone();
            let request = post_request(
                "/v1/teams",
                &admin,
                &json!({ "name": format!("Team {i}") }),
                &[],
            );
            tokio::spawn(async move { TestApp::send_via(&router, request).await })
        })
        .collect();
    for task in tasks {
        let r = task.await.expect("the request ran");
        assert_eq!(r.status.as_u16(), 201, "{}", r.text());
    }
}

/// Eight requests, each of which a check against the others of its kind
/// would accept alone, sent at once, alternately to this app and to a
/// second process over the same log: one is recorded, the other seven
/// are refused beside `concerns`. Without a writer holding the category
/// from its check to its append, several found the others absent.
async fn one_of_eight_at_once_is_recorded(app: &TestApp, path: &str, body: &Value, concerns: &str) {
    let routers = [app.router.clone(), app.second_process().await];
    let admin = app.admin();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let router = routers[i % 2].clone();
            let request = post_request(path, &admin, body, &[]);
            tokio::spawn(async move { TestApp::send_via(&router, request).await })
        })
        .collect();
    let (mut recorded, mut refused) = (0, 0);
    for task in tasks {
        let r = task.await.expect("the request ran");
        match r.status.as_u16() {
            201 => recorded += 1,
            422 => {
                assert_eq!(r.json["concerns"], json!(concerns), "{}", r.text());
                refused += 1;
            }
            other => panic!("POST {path} answered {other}: {}", r.text()),
        }
    }
    assert_eq!((recorded, refused), (1, 7), "POST {path}, eight at once");
}

async fn an_impossible_date_is_422_naming_the_field(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    for bad in [
        "2026-02-30",
        "2026-13-01",
        "02/03/2026",
        "2026-02-03T10:00:00",
    ] {
        let reason = app
            .post_json(
                &rep_path(rep, "feedback"),
                &app.admin(),
                &feedback_body(&world, bad),
            )
            .await
            .expect_invalid_field("given_on");
        assert!(!reason.is_empty(), "{bad}");
    }
    app.post_json(
        "/v1/reps",
        &app.admin(),
        &json!({ "name": "Riley", "role": "SDR", "team_id": world.team, "start_date": "2026-02-30" }),
    )
    .await
    .expect_invalid_field("start_date");
    // A date given as a number, or null, is told what a date looks like.
    for given in [json!(20260216), json!(null)] {
        let mut body = feedback_body(&world, "2026-02-16");
        body["given_on"] = given.clone();
        let reason = app
            .post_json(&rep_path(rep, "feedback"), &app.admin(), &body)
            .await
            .expect_invalid_field("given_on");
        assert!(reason.contains("YYYY-MM-DD"), "{given}: {reason}");
    }
    assert_eq!(app.events("rep", rep).await.len(), 1);
}

async fn invalid_utf8_in_csv_is_refused_naming_the_line(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let mut csv = format!("rep,metric,period,value\n{rep},calls_made,2026-W10,1\n").into_bytes();
    csv.extend_from_slice(format!("{rep},calls_").as_bytes());
    csv.extend_from_slice(&[0xff, 0xfe]);
    csv.extend_from_slice(b"made,2026-W11,2\n");
    let r = app
        .post_raw("/v1/measurements", &app.admin(), "text/csv", csv, &[])
        .await;
    assert!(
        r.status.as_u16() == 422 || r.status.as_u16() == 400,
        "{}",
        r.text()
    );
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert!(r.text().contains("line 3"), "{}", r.text());
    assert!(r.text().contains("UTF-8"), "{}", r.text());
    assert_eq!(app.events("rep", rep).await.len(), 1, "nothing recorded");
}

/// The same request sent eight times at once under one Idempotency-Key (a
/// client retrying while the first is still in flight): every answer is the
/// first outcome (the same id), none a refusal, and one event is recorded.
async fn concurrent_retries_of_one_idempotency_key_all_answer_the_first_outcome(app: &TestApp) {
    let world = app.world().await;
    let admin = app.admin();
    let join = json!({ "name": "Ada Lovelace", "role": "SDR", "team_id": world.team, "start_date": "2026-01-05" });
    let key = [("idempotency-key", "join-ada-once")];
    let answers = futures_util::future::join_all(
        (0..8).map(|_| app.post_json_with("/v1/reps", &admin, &join, &key)),
    )
    .await;
    let ids: BTreeSet<Uuid> = answers
        .iter()
        .map(|r| {
            assert_eq!(r.status.as_u16(), 201, "{}", r.text());
            r.id()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one rep, whoever answered");
    let rep = *ids.iter().next().expect("the rep");
    assert_eq!(app.event_types("rep", rep).await, ["RepJoined"]);

    let body = feedback_body(&world, "2026-02-02");
    let key = [("idempotency-key", "feedback-once")];
    let path = rep_path(rep, "feedback");
    let answers = futures_util::future::join_all(
        (0..8).map(|_| app.post_json_with(&path, &admin, &body, &key)),
    )
    .await;
    let ids: BTreeSet<Uuid> = answers
        .iter()
        .map(|r| {
            assert_eq!(r.status.as_u16(), 201, "{}", r.text());
            r.id()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one feedback, whoever answered");
    eprintln!(
        "8 concurrent retries of one Idempotency-Key, twice: every answer 201 with the first \
         outcome"
    );
    assert_eq!(
        app.event_types("rep", rep).await,
        ["RepJoined", "FeedbackGiven"]
    );
}

async fn a_retried_request_with_the_same_idempotency_key_records_once(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let body = feedback_body(&world, "2026-02-02");
    let key = [("idempotency-key", "feedback-7f3a")];
    let first = app
        .post_json_with(&rep_path(rep, "feedback"), &app.admin(), &body, &key)
        .await;
    first.expect(201);
    assert_eq!(first.json["replayed"], false);
    let again = app
        .post_json_with(&rep_path(rep, "feedback"), &app.admin(), &body, &key)
        .await;
    again.expect(201);
    assert_eq!(again.id(), first.id(), "the same id");
    assert_eq!(again.stream_version(), first.stream_version());
    assert_eq!(again.json["replayed"], true);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        app.event_types("rep", rep).await,
        ["RepJoined", "FeedbackGiven"]
    );
    // A create with a key: the retry names the same new entity.
    let key = [("idempotency-key", "team-1")];
    let a = app
        .post_json_with("/v1/teams", &app.admin(), &json!({ "name": "Keyed" }), &key)
        .await;
    let b = app
        .post_json_with("/v1/teams", &app.admin(), &json!({ "name": "Keyed" }), &key)
        .await;
    a.expect(201);
    b.expect(201);
    assert_eq!(a.id(), b.id());
    assert_eq!(app.events("team", a.id()).await.len(), 1);
    let metrics = app.get("/metrics").await.text();
    assert!(
        metrics.contains("trellis_idempotent_replays_total 2"),
        "{metrics}"
    );
}

async fn the_same_idempotency_key_with_another_body_is_422(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let key = [("idempotency-key", "feedback-1")];
    app.post_json_with(
        &rep_path(rep, "feedback"),
        &app.admin(),
        &feedback_body(&world, "2026-02-02"),
        &key,
    )
    .await
    .expect(201);
    let r = app
        .post_json_with(
            &rep_path(rep, "feedback"),
            &app.admin(),
            &feedback_body(&world, "2026-02-03"),
            &key,
        )
        .await;
    r.expect_problem(422, "idempotency-key-reused");
    // The same key on another path is another request too.
    let r = app
        .post_json_with(
            &rep_path(rep, "support-requests"),
            &app.admin(),
            &support_body(),
            &key,
        )
        .await;
    r.expect_problem(422, "idempotency-key-reused");
    assert_eq!(app.events("rep", rep).await.len(), 2);
}

async fn a_retried_import_with_the_same_idempotency_key_records_once(app: &TestApp) {
    let world = app.world().await;
    let reps = [
        app.join_rep(world.team).await,
        app.join_rep(world.team).await,
    ];
    let csv: String = std::iter::once("rep,metric,period,value\n".to_owned())
        .chain(
            reps.iter()
                .flat_map(|rep| (10..15).map(move |w| format!("{rep},calls_made,2026-W{w},{w}\n"))),
        )
        .collect();
    let key = [("idempotency-key", "import-2026-w15")];
    let first = app
        .post_raw(
            "/v1/measurements",
            &app.admin(),
            "text/csv",
            csv.clone(),
            &key,
        )
        .await;
    first.expect(200);
    assert_eq!(first.json["events"], 10);
    let again = app
        .post_raw(
            "/v1/measurements",
            &app.admin(),
            "text/csv",
            csv.clone(),
            &key,
        )
        .await;
    again.expect(200);
    assert_eq!(again.json["replayed"], true, "{}", again.text());
    assert_eq!(again.json["rows"], 10);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    for rep in reps {
        assert_eq!(app.events("rep", rep).await.len(), 6);
    }
    let changed = csv.replace(",10\n", ",11\n");
    app.post_raw("/v1/measurements", &app.admin(), "text/csv", changed, &key)
        .await
        .expect_problem(422, "idempotency-key-reused");
}

async fn two_leaders_giving_feedback_at_once_all_succeed(app: &TestApp) {
    let world = app.world().await;
    let second_leader = Uuid::now_v7();
    app.assign_leader(world.team, second_leader).await;
    let rep = app.join_rep(world.team).await;
    let tokens = [
        app.leader_as(world.leader, &[world.team]),
        app.leader_as(second_leader, &[world.team]),
    ];
    let mut tasks = Vec::new();
    for i in 0..8 {
        let router = app.router.clone();
        let token = tokens[i % 2].clone();
        let body = json!({
            "competency_id": world.competency,
            "kind": if i % 2 == 0 { "praise" } else { "constructive" },
            "note": format!("Note {i} from the call review"),
            "given_on": "2026-02-02",
        });
        let path = rep_path(rep, "feedback");
        tasks.push(tokio::spawn(async move {
            let request = post_request(&path, &token, &body, &[]);
            let response = TestApp::send_via(&router, request).await;
            (
                response.status.as_u16(),
                String::from_utf8_lossy(&response.body).into_owned(),
            )
        }));
    }
    let mut failures = String::new();
    for task in tasks {
        let (status, body) = task.await.expect("the task ran");
        if status != 201 {
            let _ = writeln!(failures, "{status}: {body}");
        }
    }
    let events = app.events("rep", rep).await;
    assert!(
        failures.is_empty(),
        "every concurrent feedback must succeed (the stream has {} events):\n{failures}",
        events.len()
    );
    assert_eq!(events.len(), 9, "the join and all eight feedbacks");
    let versions: Vec<u64> = events.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, (1..=9).collect::<Vec<_>>());
    let mut actors: Vec<String> = events[1..]
        .iter()
        .map(|e| e.metadata.actor.clone())
        .collect();
    actors.sort();
    actors.dedup();
    assert_eq!(actors.len(), 2, "both leaders wrote");
}

async fn concurrent_writers_pinned_with_if_match_get_409(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let mut tasks = Vec::new();
    for i in 0..4 {
        let router = app.router.clone();
        let token = app.leader_as(world.leader, &[world.team]);
        let body = json!({
            "competency_id": world.competency, "kind": "praise",
            "note": format!("Pinned {i}"), "given_on": "2026-02-02",
        });
        let path = rep_path(rep, "feedback");
        tasks.push(tokio::spawn(async move {
            let request = post_request(&path, &token, &body, &[("if-match", "\"1\"")]);
            TestApp::send_via(&router, request).await
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        let r = task.await.expect("the task ran");
        if r.status == 409 {
            assert_eq!(r.json["current_version"], 2, "{}", r.json);
        }
        statuses.push(r.status.as_u16());
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [201, 409, 409, 409],
        "exactly one pinned writer wins"
    );
    assert_eq!(app.events("rep", rep).await.len(), 2);
}

/// A CSV of `reps × weeks × metrics` rows, and the reps it is about.
async fn big_csv(
    app: &TestApp,
    world: &World,
    reps: usize,
    weeks: u32,
    metrics: usize,
) -> (String, Vec<Uuid>) {
    let mut ids = Vec::with_capacity(reps);
    for _ in 0..reps {
        ids.push(app.join_rep(world.team).await);
    }
    // Each metric is measured weekly by a standard of its own.
    for metric in 0..metrics {
        app.set_standard(&format!("metric_{metric}")).await;
    }
    let mut csv = String::from("rep,metric,period,value\n");
    for week in 0..weeks {
        for metric in 0..metrics {
            for (i, rep) in ids.iter().enumerate() {
                let _ = writeln!(
                    csv,
                    "{rep},metric_{metric},2026-W{:02},{}",
                    week + 2,
                    (i + metric) as u32 * 3 + week
                );
            }
        }
    }
    (csv, ids)
}

async fn import_and_check(app: &TestApp, reps: usize, weeks: u32, metrics: usize) {
    let world = app.world().await;
    let (csv, ids) = big_csv(app, &world, reps, weeks, metrics).await;
    let rows = reps * weeks as usize * metrics;
    let started = std::time::Instant::now();
    let r = app
        .post_raw("/v1/measurements", &app.admin(), "text/csv", csv, &[])
        .await;
    let elapsed = started.elapsed();
    r.expect(200);
    assert_eq!(r.json["rows"], rows, "{}", r.text());
    assert_eq!(r.json["reps"], reps);
    assert_eq!(r.json["events"], rows);
    assert_eq!(r.json["replayed"], false);
    assert!(
        elapsed < std::time::Duration::from_secs(60),
        "{rows} rows took {elapsed:?}"
    );
    let per_rep = weeks as usize * metrics;
    for rep in ids {
        let events = app.events("rep", rep).await;
        assert_eq!(events.len(), 1 + per_rep, "rep {rep}");
        assert!(
            events[1..]
                .iter()
                .all(|e| e.event_type == "PerformanceMeasured" && e.metadata.actor == ADMIN_SUB)
        );
        assert_eq!(events[1].payload["source"], "crm_import");
    }
}

async fn a_2000_row_csv_import_is_recorded_in_one_go(app: &TestApp) {
    // 50 reps × 40 weeks × 1 metric.
    import_and_check(app, 50, 40, 1).await;
}

async fn a_50000_row_csv_import_is_recorded_in_one_go(app: &TestApp) {
    if !trellis_tests::slow_tests_enabled() {
        return;
    }
    // 50 reps × 40 weeks × 25 metrics.
    import_and_check(app, 50, 40, 25).await;
}

async fn a_dry_run_import_names_format_and_domain_errors_at_once_and_records_nothing(
    app: &TestApp,
) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let head = app.events_in_log().await;
    // Line 3 cannot be read; line 4 is refused by the domain (before the
    // rep joined on 2026-01-05): one answer names both.
    let bad = format!(
        "rep,metric,period,value\n\
         {rep},calls_made,2026-W10,12\n\
         {rep},calls_made,2026-W11,lots\n\
         {rep},calls_made,2025-W40,7\n"
    );
    let r = app
        .post_raw(
            "/v1/measurements?dry_run=true",
            &app.admin(),
            "text/csv",
            bad,
            &[],
        )
        .await;
    r.expect_problem(422, "validation");
    let fields: Vec<String> = r.field_errors().into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["line 3: value", "line 4: period"], "{}", r.text());
    let good = format!(
        "rep,metric,period,value\n\
         {rep},calls_made,2026-W10,12\n\
         {rep},calls_made,2026-W11,14\n"
    );
    let r = app
        .post_raw(
            "/v1/measurements?dry_run=true",
            &app.admin(),
            "text/csv",
            good.clone(),
            &[],
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["dry_run"], true, "{}", r.text());
    assert_eq!(r.json["events"], 2, "{}", r.text());
    assert_eq!(app.events_in_log().await, head, "a dry run records nothing");
    let r = app
        .post_raw("/v1/measurements", &app.admin(), "text/csv", good, &[])
        .await;
    r.expect(200);
    assert_eq!(r.json["dry_run"], false);
    assert_eq!(app.events_in_log().await, head + 2);
}

async fn an_import_with_bad_rows_names_every_bad_row_and_records_nothing(app: &TestApp) {
    let world = app.world().await;
    let (rep, other) = (
        app.join_rep(world.team).await,
        app.join_rep(world.team).await,
    );
    let head = app.events_in_log().await;
    let csv = format!(
        "rep,metric,period,value\n\
         {rep},calls_made,2026-W10,12\n\
         {rep},calls_made,2026-13,-12\n\
         {other},calls_made,2026-W10,8\n\
         {rep},calls_made,2026-W11,-4\n\
         {other},calls_made,2026-W11,9\n\
         rep-42,calls_made,2026-W12,3\n\
         {other},calls_made,2026-W12,10\n\
         {rep},calls_made\n\
         {other},calls_made,2026-W13,11\n"
    );
    let r = app
        .post_raw("/v1/measurements", &app.admin(), "text/csv", csv, &[])
        .await;
    r.expect_problem(422, "validation");
    let errors = r.field_errors();
    let lines: Vec<&str> = errors.iter().map(|(field, _)| field.as_str()).collect();
    assert_eq!(
        lines,
        [
            "line 3: period",
            "line 3: value",
            "line 5: value",
            "line 7: rep",
            "line 9"
        ],
        "{}",
        r.text()
    );
    // Counted as the rows a person mends (line 3 twice), not as "fields".
    assert!(
        r.json["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("4 rows are invalid: line 3: period:")),
        "{}",
        r.text()
    );
    assert!(
        errors[0].1.contains("months run from 01 to 12"),
        "{}",
        r.text()
    );
    assert!(errors[2].1.contains("zero or more"), "{}", r.text());
    assert!(errors[3].1.contains("rep-42"), "{}", r.text());
    assert!(
        errors[4].1.contains("2 columns where the header has 4"),
        "{}",
        r.text()
    );
    assert_eq!(app.events_in_log().await, head, "nothing recorded");

    // A domain refusal in one row (a period before the rep joined) refuses the whole file.
    let csv = format!(
        "rep,metric,period,value\n{rep},calls_made,2026-W10,12\n{other},calls_made,2025-W10,3\n"
    );
    let r = app
        .post_raw("/v1/measurements", &app.admin(), "text/csv", csv, &[])
        .await;
    r.expect_problem(422, "validation");
    assert_eq!(r.field_errors()[0].0, "line 3: period", "{}", r.text());
    assert!(r.text().contains("before the rep joined"), "{}", r.text());
    // An unknown rep id is named too.
    let nobody = Uuid::now_v7();
    let csv = format!(
        "rep,metric,period,value\n{rep},calls_made,2026-W10,12\n{nobody},calls_made,2026-W10,3\n"
    );
    let r = app
        .post_raw("/v1/measurements", &app.admin(), "text/csv", csv, &[])
        .await;
    assert!(
        r.status.as_u16() == 404 || r.status.as_u16() == 422,
        "{}",
        r.text()
    );
    r.expect_problem(422, "validation");
    assert_eq!(r.field_errors()[0].0, "line 3: rep", "{}", r.text());
    assert!(
        r.text().contains(&format!("there is no rep {nobody}")),
        "the id quoted: {}",
        r.text()
    );
    assert_eq!(app.events_in_log().await, head, "nothing recorded");
}

async fn a_csv_row_with_too_many_columns_is_refused(app: &TestApp) {
    // A CRM export with a thousands separator: `1,234` unquoted is five
    // columns. Taking the value as 1 and dropping `234` would record a wrong
    // number; the row must be refused, naming its line.
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let csv = format!(
        "rep,metric,period,value\n{rep},revenue,2026-W10,980\n{rep},revenue,2026-W11,1,234\n"
    );
    let r = app
        .post_raw("/v1/measurements", &app.admin(), "text/csv", csv, &[])
        .await;
    assert_eq!(
        r.status.as_u16(),
        422,
        "a row with 5 columns under a 4-column header was accepted: {}; recorded {:?}",
        r.text(),
        app.events("rep", rep)
            .await
            .iter()
            .skip(1)
            .map(|e| e.payload["value"].clone())
            .collect::<Vec<_>>()
    );
    assert!(r.text().contains("line 3"), "{}", r.text());
    assert_eq!(app.events("rep", rep).await.len(), 1, "nothing recorded");
}

/// The write side keeps what the standards measure and reads it again when
/// a measurement asks for more: a metric refused as measured by no
/// standard (422, concerning `metric`) is recorded once a standard measures it,
/// at once, with no read model to wait for.
async fn a_measurement_of_a_standard_set_a_moment_ago_is_recorded(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let body = json!({ "metric": "demos_given", "period": "2026-W10", "value": 3 });
    let path = rep_path(rep, "measurements");
    let r = app.post_json(&path, &app.admin(), &body).await;
    r.expect_problem(422, "rejected");
    assert_eq!(r.json["concerns"], "metric", "{}", r.text());
    let why = r.json["detail"].as_str().unwrap_or_default();
    assert!(why.contains("No standard measures “demos_given”"), "{why}");
    assert_eq!(app.events("rep", rep).await.len(), 1, "nothing recorded");
    app.set_standard("demos_given").await;
    let r = app.post_json(&path, &app.admin(), &body).await;
    r.expect(201);
    assert_eq!(
        app.event_types("rep", rep).await,
        ["RepJoined", "PerformanceMeasured"]
    );
}

/// A value refused as a likely typo against the targets as they stood is
/// recorded once a revision raises the target (revisions count), in the
/// same process whose catalogue of the standards read the old target.
async fn a_value_a_raised_target_makes_plausible_is_recorded(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let standard = app.set_standard("won_revenue").await;
    let path = rep_path(rep, "measurements");
    let body =
        |value: u64| json!({ "metric": "won_revenue", "period": "2026-W10", "value": value });
    // The catalogue is read with the target of 50.
    app.post_json(&path, &app.admin(), &body(40))
        .await
        .expect(201);
    let r = app.post_json(&path, &app.admin(), &body(900_000)).await;
    r.expect_problem(422, "rejected");
    assert_eq!(r.json["concerns"], "value", "{}", r.text());
    app.post_json(
        &format!("/v1/standards/{standard}/revisions"),
        &app.admin(),
        &json!({ "target": 20000, "effective_from": "2026-04-01" }),
    )
    .await
    .expect(200);
    app.post_json(&path, &app.admin(), &body(900_000))
        .await
        .expect(201);
}

/// A correction of a measured value is judged as a measurement is: a value
/// far above every target of its metric is refused beside the value, and
/// the measurement keeps what it had.
async fn a_corrected_value_far_above_every_target_is_refused_as_a_likely_typo(app: &TestApp) {
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let measured = app
        .post_json(
            &rep_path(rep, "measurements"),
            &app.admin(),
            &json!({ "metric": "calls_made", "period": "2026-W10", "value": 42 }),
        )
        .await;
    measured.expect(201);
    let fact = measured.json["id"].clone();
    let correct = |value: u64| {
        json!({ "fact_id": fact, "reason": "Typed the week's total wrong.",
                "correction": { "kind": "measured_value", "value": value } })
    };
    let path = rep_path(rep, "corrections");
    let r = app
        .post_json(&path, &app.admin(), &correct(4_200_000))
        .await;
    r.expect_problem(422, "rejected");
    assert_eq!(r.json["concerns"], "value", "{}", r.text());
    assert!(
        r.json["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("4200000 is more than 100 times")),
        "{}",
        r.text()
    );
    app.post_json(&path, &app.admin(), &correct(45))
        .await
        .expect(200);
    assert_eq!(
        app.event_types("rep", rep).await,
        ["RepJoined", "PerformanceMeasured", "FactCorrected"]
    );
}

async fn a_json_array_import_is_recorded(app: &TestApp) {
    let world = app.world().await;
    let mut monthly = crate::http::standard_body("meetings_booked");
    monthly["period"] = json!("month");
    app.post_json("/v1/standards", &app.admin(), &monthly)
        .await
        .expect(201);
    let (a, b) = (
        app.join_rep(world.team).await,
        app.join_rep(world.team).await,
    );
    let rows = json!([
        { "rep_id": a, "metric": "calls_made", "period": "2026-W10", "value": 12 },
        { "rep_id": b, "metric": "calls_made", "period": "2026-W10", "value": 8.5 },
        { "rep_id": a, "metric": "meetings_booked", "period": "2026-03", "value": 4 },
    ]);
    let r = app.post_json("/v1/measurements", &app.admin(), &rows).await;
    r.expect(200);
    assert_eq!(r.json["rows"], 3);
    assert_eq!(r.json["reps"], 2);
    assert_eq!(r.json["events"], 3);
    assert_eq!(app.events("rep", a).await.len(), 3);
    assert_eq!(app.events("rep", b).await.len(), 2);
    // The same file again records nothing new; a changed value is a correction.
    let r = app.post_json("/v1/measurements", &app.admin(), &rows).await;
    r.expect(200);
    assert_eq!(r.json["events"], 0);
    let mut changed = rows.clone();
    changed[1]["value"] = json!(9);
    let r = app
        .post_json("/v1/measurements", &app.admin(), &changed)
        .await;
    r.expect(200);
    assert_eq!(r.json["events"], 1);
    // The answer names the row whose value replaced one, with both.
    assert_eq!(
        r.json["replaced"],
        json!([{ "row": "[1]", "rep_id": b, "metric": "calls_made", "period": "2026-W10",
                 "was": 8.5, "value": 9.0 }]),
        "{}",
        r.text()
    );
    assert_eq!(
        app.event_types("rep", b).await,
        ["RepJoined", "PerformanceMeasured", "FactCorrected"]
    );
    // A metric no standard measures, and a period of another kind than its
    // standard's, are refused by their row, with what would do; nothing
    // of the file is recorded.
    let unmeasured = json!([
        { "rep_id": a, "metric": "calls_made", "period": "2026-W12", "value": 1 },
        { "rep_id": a, "metric": "calls_made", "period": "2026-03", "value": 1 },
        { "rep_id": a, "metric": "emails_sent", "period": "2026-W12", "value": 1 },
    ]);
    let r = app
        .post_json("/v1/measurements", &app.admin(), &unmeasured)
        .await;
    let why = r.expect_invalid_field("[1].period");
    assert!(
        why.contains("measured weekly") && why.contains("2026-W05"),
        "{why}"
    );
    let why = r.expect_invalid_field("[2].metric");
    assert!(why.contains("No standard measures “emails_sent”"), "{why}");
    assert_eq!(app.events("rep", a).await.len(), 3, "nothing recorded");
    // Bad rows in JSON are named by index.
    let bad = json!([
        { "rep_id": a, "metric": "calls_made", "period": "2026-W12", "value": 1 },
        { "rep_id": a, "metric": "Calls Made", "period": "2026-W12", "value": -1 },
    ]);
    let r = app.post_json("/v1/measurements", &app.admin(), &bad).await;
    r.expect_invalid_field("[1].metric");
    r.expect_invalid_field("[1].value");
    let r = app
        .post_json("/v1/measurements", &app.admin(), &json!([]))
        .await;
    r.expect_invalid_field("body");
    assert_eq!(app.events("rep", a).await.len(), 3);
}

async fn health_readiness_and_metrics_answer(app: &TestApp) {
    app.get("/healthz").await.expect(200);
    app.get("/readyz").await.expect(200);
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    app.post_json(
        &rep_path(rep, "feedback"),
        &app.admin(),
        &feedback_body(&world, "2026-02-02"),
    )
    .await
    .expect(201);
    app.post_json(&rep_path(rep, "feedback"), "", &json!({}))
        .await
        .expect(401);
    let r = app.get("/metrics").await;
    r.expect(200);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        r.header("content-type")
    );
    let text = r.text();
    // Requests are counted by the duration histogram's `_count`.
    assert!(
        text.contains("trellis_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(
            "trellis_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/reps/{rep_id}/feedback\",status=\"201\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "trellis_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/reps/{rep_id}/feedback\",status=\"401\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("trellis_append_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("trellis_append_duration_seconds_bucket{le=\"+Inf\"}"));
    assert!(text.contains("trellis_version_conflicts_total"));
}

/// The error statuses every write can answer with.
const WRITE_ERRORS: [u16; 9] = [400, 401, 403, 404, 409, 413, 415, 422, 503];

/// The error statuses every read and webhook route can answer with.
const READ_ERRORS: [u16; 3] = [401, 403, 503];

/// A read or webhook route as the served document must describe it.
struct Documented {
    method: &'static str,
    path: &'static str,
    /// The success status, and the content types it answers with.
    success: u16,
    content: &'static [&'static str],
    /// The error statuses it answers with besides [`READ_ERRORS`].
    errors: &'static [u16],
}

const fn documented(
    method: &'static str,
    path: &'static str,
    success: u16,
    content: &'static [&'static str],
    errors: &'static [u16],
) -> Documented {
    Documented {
        method,
        path,
        success,
        content,
        errors,
    }
}

/// Every read and webhook route `trellis serve` offers, in one place.
/// Checked against the routes the services declare, so a new route fails
/// the tests until it is listed here and documented.
const READ_AND_WEBHOOK_ROUTES: &[Documented] = &[
    documented("GET", "/v1/teams", 200, &[JSON], &[400]),
    documented("GET", "/v1/leaders", 200, &[JSON], &[400]),
    documented("GET", "/v1/reps", 200, &[JSON], &[400]),
    documented("GET", "/v1/competencies", 200, &[JSON], &[400]),
    documented("GET", "/v1/action-items", 200, &[JSON], &[400]),
    documented("GET", "/v1/standards", 200, &[JSON], &[400]),
    documented("GET", "/v1/support-requests", 200, &[JSON], &[400]),
    documented("GET", "/v1/reps/{rep_id}", 200, &[JSON], &[404]),
    documented("GET", "/v1/reps/{rep_id}/profile", 200, &[JSON], &[404]),
    documented(
        "GET",
        "/v1/reps/{rep_id}/timeline",
        200,
        &[JSON],
        &[400, 404],
    ),
    documented("GET", "/v1/reps/{rep_id}/as-of", 200, &[JSON], &[400, 404]),
    documented("GET", "/v1/reps/{rep_id}/audit", 200, &[JSON], &[400, 404]),
    documented(
        "GET",
        "/v1/reps/{rep_id}/review-packet",
        200,
        &[JSON, "text/markdown", "text/html"],
        &[400, 404],
    ),
    documented("GET", "/v1/teams/{team_id}/view", 200, &[JSON], &[400, 404]),
    documented(
        "GET",
        "/v1/teams/{team_id}/coaching-impact",
        200,
        &[JSON],
        &[400, 404],
    ),
    documented(
        "GET",
        "/v1/leaders/{leader_id}/scorecard",
        200,
        &[JSON],
        &[400, 404],
    ),
    documented("GET", "/v1/people/{person_id}/export", 200, &[JSON], &[404]),
    documented("GET", "/v1/events", 200, &[JSON], &[400]),
    documented(
        "GET",
        "/v1/events/stream",
        200,
        &["text/event-stream"],
        &[400],
    ),
    documented("POST", "/v1/webhooks", 201, &[JSON], &[400, 413, 415, 422]),
    documented("GET", "/v1/webhooks", 200, &[JSON], &[]),
    documented("GET", "/v1/webhooks/{webhook_id}", 200, &[JSON], &[404]),
    documented("DELETE", "/v1/webhooks/{webhook_id}", 204, &[], &[404]),
    documented(
        "POST",
        "/v1/webhooks/{webhook_id}/pause",
        200,
        &[JSON],
        &[404],
    ),
    documented(
        "POST",
        "/v1/webhooks/{webhook_id}/resume",
        200,
        &[JSON],
        &[404],
    ),
    documented(
        "GET",
        "/v1/webhooks/{webhook_id}/deliveries",
        200,
        &[JSON],
        &[404, 422],
    ),
    documented(
        "POST",
        "/v1/webhooks/deliveries/{delivery_id}/replay",
        200,
        &[JSON],
        &[404, 409],
    ),
];

const JSON: &str = "application/json";
const PROBLEM: &str = "application/problem+json";
const PROBLEM_REF: &str = "#/components/schemas/Problem";

/// `/openapi.json` as `app` serves it, checked to be served as JSON.
async fn served_document(app: &TestApp) -> Value {
    let r = app.get("/openapi.json").await;
    r.expect(200);
    assert_eq!(r.header("content-type"), Some(JSON));
    r.json.clone()
}

/// Every operation of `doc`, as (METHOD, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("a path item")
                .iter()
                .map(move |(method, op)| (method.to_uppercase(), path.clone(), op))
        })
        .collect()
}

/// The error statuses (4xx, 5xx) an operation documents.
fn documented_errors(operation: &Value) -> BTreeSet<u16> {
    operation["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .filter_map(|status| status.parse::<u16>().ok())
        .filter(|status| *status >= 400)
        .collect()
}

/// Checks that every error `operation` documents is a problem body.
#[track_caller]
fn errors_are_problems(method: &str, path: &str, operation: &Value) {
    for status in documented_errors(operation) {
        let content = &operation["responses"][status.to_string()]["content"];
        assert_eq!(
            content.as_object().map(|c| c.keys().collect::<Vec<_>>()),
            Some(vec![&PROBLEM.to_owned()]),
            "{method} {path} {status} must be {PROBLEM} only"
        );
        assert_eq!(
            content[PROBLEM]["schema"]["$ref"], PROBLEM_REF,
            "{method} {path} {status} must be a Problem"
        );
    }
}

async fn the_command_services_own_document_describes_each_of_its_routes(app: &TestApp) {
    let doc = served_document(app).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let declared = crate::http::declared_routes();
    assert_eq!(declared.len(), 37, "4 operational routes and 33 writes");
    each_route_is_documented_with_the_write_errors(&doc, &declared);
    assert_eq!(
        operations(&doc).len(),
        declared.len(),
        "no undeclared operations"
    );
    // Fields judged with the others (read from any value, so that one
    // answer names every bad field) are still required ones.
    for (schema, fields) in [
        (
            "SetStandard",
            &["kind", "direction", "period", "target", "effective_from"][..],
        ),
        ("ReviseStandard", &["target", "effective_from"]),
        ("RampStep", &["percent_of_target"]),
        ("HoldCoachingSession", &["held_on", "duration_minutes"]),
        ("NewActionItem", &["due_on"]),
    ] {
        let required = &doc["components"]["schemas"][schema]["required"];
        for field in fields {
            assert!(
                required
                    .as_array()
                    .is_some_and(|r| r.iter().any(|f| f == field)),
                "{schema}.{field} is not required: {required}"
            );
        }
    }
}

/// Every one of `routes` (the command service's) is in `doc`; each `/v1/`
/// write documents exactly the write errors, as problem details, and a
/// request body.
fn each_route_is_documented_with_the_write_errors(doc: &Value, routes: &[(String, String)]) {
    for (method, path) in routes {
        let operation = &doc["paths"][path][method.to_lowercase()];
        assert!(
            operation.is_object(),
            "/openapi.json has no {method} {path}"
        );
        if path.starts_with("/v1/") {
            assert_eq!(
                documented_errors(operation),
                BTreeSet::from(WRITE_ERRORS),
                "{method} {path}"
            );
            errors_are_problems(method, path, operation);
            assert!(
                operation["requestBody"].is_object(),
                "{method} {path} has no request body"
            );
        }
    }
}

async fn the_served_document_describes_every_v1_route_of_trellis_serve_with_its_errors(
    app: &TestApp,
) {
    let doc = served_document(app).await;
    let writes = crate::http::declared_routes();
    let reads = crate::http::declared_query_routes();
    let hooks = crate::http::declared_webhook_routes();
    assert_eq!(reads.len(), 19, "the read API's routes: {reads:?}");
    assert_eq!(hooks.len(), 8, "the webhook admin API's routes: {hooks:?}");

    // The table lists exactly the read and webhook routes the services declare.
    let listed: BTreeSet<(String, String)> = READ_AND_WEBHOOK_ROUTES
        .iter()
        .map(|route| (route.method.to_owned(), route.path.to_owned()))
        .collect();
    let declared: BTreeSet<(String, String)> = reads.iter().chain(&hooks).cloned().collect();
    assert_eq!(
        listed, declared,
        "READ_AND_WEBHOOK_ROUTES must list every read and webhook route, with its errors"
    );

    each_route_is_documented_with_the_write_errors(&doc, &writes);
    for route in READ_AND_WEBHOOK_ROUTES {
        let (method, path) = (route.method, route.path);
        let operation = &doc["paths"][path][method.to_lowercase()];
        assert!(
            operation.is_object(),
            "/openapi.json has no {method} {path}"
        );
        let expected: BTreeSet<u16> = READ_ERRORS.iter().chain(route.errors).copied().collect();
        assert_eq!(documented_errors(operation), expected, "{method} {path}");
        let success = route.success;
        let response = &operation["responses"][success.to_string()];
        assert!(
            response.is_object(),
            "{method} {path} does not describe its {success}"
        );
        let content: BTreeSet<&str> = response["content"]
            .as_object()
            .map(|c| c.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let expected: BTreeSet<&str> = route.content.iter().copied().collect();
        assert_eq!(
            content, expected,
            "{method} {path}: the content types of {success}"
        );
        if method == "POST" && path == "/v1/webhooks" {
            assert!(
                operation["requestBody"]["content"][JSON].is_object(),
                "{path}: a JSON body"
            );
        }
    }
    for (method, path, operation) in operations(&doc) {
        if path.starts_with("/v1/") {
            errors_are_problems(&method, &path, operation);
            assert_eq!(
                operation["security"],
                json!([{ "bearer": [] }]),
                "{method} {path} must name the bearer scheme"
            );
        }
    }

    // Nothing else: no dashboard page, no operation no service declares.
    for (method, path) in crate::http::declared_dashboard_routes() {
        assert!(
            doc["paths"][&path][method.to_lowercase()].is_null(),
            "the dashboard page {method} {path} is not part of the API"
        );
    }
    assert_eq!(
        operations(&doc).len(),
        writes.len() + reads.len() + hooks.len(),
        "no undeclared operations"
    );
}

/// Every `$ref` in `value`, with where it was found.
fn refs<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(target)) => out.push((at.clone(), target)),
                    _ => refs(v, format!("{at}/{key}"), out),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                refs(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

async fn the_served_document_is_openapi_3_1_with_unique_operation_ids_and_resolvable_refs(
    app: &TestApp,
) {
    let doc = served_document(app).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc["openapi"]
    );
    let top: BTreeSet<&str> = doc
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let allowed = BTreeSet::from([
        "openapi",
        "info",
        "paths",
        "components",
        "tags",
        "servers",
        "security",
    ]);
    assert!(
        top.is_subset(&allowed),
        "unexpected top-level fields: {top:?}"
    );

    // One info, covering the whole API.
    assert_eq!(doc["info"]["title"], "Trellis");
    assert!(
        doc["info"]["version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    let description = doc["info"]["description"].as_str().expect("a description");
    for topic in [
        "Writes",
        "Reads",
        "webhooks",
        "Server-Sent Events",
        "problem+json",
    ] {
        assert!(
            description.contains(topic),
            "the description does not mention {topic}"
        );
    }
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");

    let methods = BTreeSet::from([
        "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE",
    ]);
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (method, path, operation) in operations(&doc) {
        let name = format!("{method} {path}");
        assert!(
            methods.contains(method.as_str()),
            "{name}: not an HTTP method"
        );
        assert!(path.starts_with('/'), "{name}: a path starts with /");
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no operationId"));
        ids.entry(id.to_owned()).or_default().push(name.clone());

        let responses = operation["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{name}: no success response"
        );
        for (status, response) in responses {
            assert!(
                status.len() == 3 && status.parse::<u16>().is_ok_and(|s| (100..600).contains(&s)),
                "{name}: {status:?} is not a status"
            );
            assert!(
                response["description"].is_string(),
                "{name} {status}: a description is required"
            );
        }

        // Path parameters: each placeholder declared, required, and nothing more.
        let placeholders: BTreeSet<&str> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let parameters = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut in_path = BTreeSet::new();
        for parameter in &parameters {
            let location = parameter["in"].as_str().expect("in");
            assert!(
                ["path", "query", "header", "cookie"].contains(&location),
                "{name}: parameter in {location}"
            );
            assert!(
                parameter["schema"].is_object(),
                "{name}: {parameter} has no schema"
            );
            assert!(
                parameter["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{name}: {parameter} has no description"
            );
            if location == "path" {
                assert_eq!(parameter["required"], true, "{name}: {parameter}");
                in_path.insert(parameter["name"].as_str().expect("a name").to_owned());
            }
        }
        let in_path: BTreeSet<&str> = in_path.iter().map(String::as_str).collect();
        assert_eq!(in_path, placeholders, "{name}: path parameters");
    }
    let duplicates: Vec<_> = ids.iter().filter(|(_, ops)| ops.len() > 1).collect();
    assert!(
        duplicates.is_empty(),
        "operationIds must be unique: {duplicates:?}"
    );

    // Every reference resolves to a component of the document.
    let mut found = Vec::new();
    refs(&doc, String::new(), &mut found);
    assert!(!found.is_empty());
    for (at, target) in found {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: {target} is not a local reference"));
        assert!(
            doc.pointer(pointer).is_some(),
            "{at}: {target} does not resolve"
        );
    }
}

async fn every_documented_v1_route_is_served_and_answers_no_token_with_its_documented_401(
    app: &TestApp,
) {
    let doc = served_document(app).await;
    let mut checked = 0;
    for (method, path, operation) in operations(&doc) {
        if !path.starts_with("/v1/") {
            continue;
        }
        assert!(
            operation["responses"]["401"].is_object(),
            "{method} {path} does not document its 401"
        );
        let concrete: String = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    Uuid::now_v7().to_string()
                } else {
                    segment.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        let r = app
            .request(method.clone(), &concrete, "", Some(JSON), "{}", &[])
            .await;
        assert_eq!(
            r.status.as_u16(),
            401,
            "{method} {concrete} (documented as {path}) is not served as documented: {}",
            r.text()
        );
        r.expect_problem(401, "unauthorized");
        checked += 1;
    }
    assert_eq!(checked, 33 + 19 + 8, "every write, read and webhook route");
}

/// Each service's document survives the merge whole: the merge keeps the
/// first of two operations or schemas with one name, so a clash between
/// services would silently drop one of them from `/openapi.json`.
#[test]
fn merging_the_services_documents_loses_no_operation_schema_or_scheme() {
    let shared = serde_json::to_value(trellis_http::openapi::document([])).expect("JSON");
    let commands = serde_json::to_value(trellis_commands::openapi::document()).expect("JSON");
    let reads = serde_json::to_value(trellis_queries::openapi::document()).expect("JSON");
    let hooks = serde_json::to_value(trellis_webhooks::openapi::document()).expect("JSON");
    let merged = serde_json::to_value(trellis_http::openapi::document([
        trellis_commands::openapi::document(),
        trellis_queries::openapi::document(),
        trellis_webhooks::openapi::document(),
    ]))
    .expect("JSON");
    let mut total = 0;
    for (name, doc) in [
        ("shared", &shared),
        ("commands", &commands),
        ("queries", &reads),
        ("webhooks", &hooks),
    ] {
        for (method, path, operation) in operations(doc) {
            assert_eq!(
                &merged["paths"][&path][method.to_lowercase()],
                operation,
                "{name}: {method} {path} was lost or replaced in the merge"
            );
            total += 1;
        }
        for section in ["schemas", "securitySchemes"] {
            for (key, value) in doc["components"][section].as_object().into_iter().flatten() {
                assert_eq!(
                    &merged["components"][section][key], value,
                    "{name}: the {section} entry {key} was replaced in the merge"
                );
            }
        }
    }
    assert_eq!(
        operations(&merged).len(),
        total,
        "no operation appears twice"
    );
    assert_eq!(merged["info"], shared["info"], "one info: the shared one");
}

/// The crates `trellis_<name>::api(` names in `source`.
fn crates_named(source: &str, before: &str, after: &str) -> BTreeSet<String> {
    source
        .match_indices(before)
        .filter_map(|(at, _)| {
            let rest = &source[at + before.len()..];
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
            rest[end..]
                .starts_with(after)
                .then(|| rest[..end].to_owned())
        })
        .collect()
}

/// `TestApp::spawn_serving` builds the router `trellis serve` builds; this
/// keeps the two in step: both mount the same APIs (each brings its own
/// document to `/openapi.json`).
#[test]
fn trellis_serve_mounts_the_apis_the_serving_test_app_mounts() {
    const SERVE: &str = include_str!("../../crates/trellis/src/serve.rs");
    const TEST_APP: &str = include_str!("http.rs");
    // An API mounted with its sign-in records (`api_with_access`) counts too.
    let mounted: BTreeSet<String> = crates_named(SERVE, "trellis_", "::api(")
        .into_iter()
        .chain(crates_named(SERVE, "trellis_", "::api_with_access("))
        .collect();
    assert_eq!(
        mounted,
        BTreeSet::from(["commands", "dashboard", "queries", "webhooks"].map(str::to_owned)),
        "trellis serve mounts another API: mount it in TestApp::spawn_serving too"
    );
    let test_app: BTreeSet<String> = crates_named(TEST_APP, "trellis_", "::api(")
        .into_iter()
        .chain(crates_named(TEST_APP, "trellis_", "::api_with_access("))
        .collect();
    assert_eq!(test_app, mounted);
}

/// A TCP link to PostgreSQL the test can cut, as when the database host goes
/// away: open connections are closed and new ones refused until it is
/// restored on the same port.
struct DatabaseLink {
    port: u16,
    accept: tokio::task::JoinHandle<()>,
    open: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl DatabaseLink {
    async fn start(port: u16) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket
            .bind(([127, 0, 0, 1], port).into())
            .expect("the link's port");
        let listener = socket.listen(64).expect("listen");
        let port = listener.local_addr().expect("an address").port();
        let open: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> =
            std::sync::Arc::default();
        let accept = tokio::spawn({
            let open = open.clone();
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect("127.0.0.1:5432").await
                    else {
                        continue;
                    };
                    let relay = tokio::spawn(async move {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    });
                    open.lock().unwrap().push(relay.abort_handle());
                }
            }
        });
        DatabaseLink { port, accept, open }
    }

    /// Closes every connection through the link and refuses new ones.
    fn cut(&self) {
        self.accept.abort();
        for relay in self.open.lock().unwrap().drain(..) {
            relay.abort();
        }
    }
}

/// The database goes away under the service: a write is a 503 with
/// `Retry-After`, never a 500, and records nothing; when the database is back
/// writes succeed again and nothing acknowledged was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_a_503_and_writes_resume_when_it_returns() {
    let app = crate::http::TestApp::spawn(trellis_tests::Kind::Postgres).await;
    let link = DatabaseLink::start(0).await;
    let database = app.backend.database();
    let config: tokio_postgres::Config = database.url.parse().unwrap();
    let user = config.get_user().unwrap_or("postgres");
    let url = format!(
        "postgres://{user}@127.0.0.1:{}/{}",
        link.port, database.name
    );
    let store: std::sync::Arc<dyn trellis_eventstore::EventStore> = std::sync::Arc::new(
        trellis_eventstore::postgres::PostgresStore::connect(
            &trellis_eventstore::postgres::PostgresConfig::new(url),
        )
        .await
        .expect("the store over the link"),
    );
    let app = app.with_store(store);
    let before = app.form_team("Before the outage").await;

    link.cut();
    let r = app
        .post_json("/v1/teams", &app.admin(), &json!({"name": "During"}))
        .await;
    r.expect_problem(503, "unavailable");
    assert_eq!(r.header("retry-after"), Some("5"));

    let link = DatabaseLink::start(link.port).await;
    let after = app.form_team("After the outage").await;
    let log = app.backend.store.clone();
    for id in [before, after] {
        let stream = trellis_eventstore::StreamId::for_entity("team", id).unwrap();
        assert_eq!(log.stream_version(&stream).await.unwrap(), 1, "team {id}");
    }
    let everything = log
        .read_all(trellis_eventstore::Checkpoint::START, 1000)
        .await
        .unwrap();
    assert!(
        !everything
            .iter()
            .any(|e| e.payload.to_string().contains("During")),
        "the refused write recorded nothing"
    );
    link.cut();
    app.cleanup().await;
}

/// The database refuses new connections (an administrator closed it with
/// `ALLOW_CONNECTIONS false`, an error outside the connection classes) while
/// the service's connections are dropped: a write is a 503 with
/// `Retry-After`, not a 500, and writes resume when it accepts them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_refusing_connections_is_a_503_not_a_500() {
    let app = crate::http::TestApp::spawn(trellis_tests::Kind::Postgres).await;
    app.form_team("Before").await;
    let (admin, name) = close_database(&app).await;
    let r = app
        .post_json("/v1/teams", &app.admin(), &json!({"name": "During"}))
        .await;
    r.expect_problem(503, "unavailable");
    assert_eq!(r.header("retry-after"), Some("5"));

    reopen_database(&admin, &name).await;
    app.form_team("After").await;
    drop(admin);
    app.cleanup().await;
}

/// Closes `app`'s database to new connections and terminates its backends,
/// as a database that goes away does; the superuser connection that did it
/// (to the server's maintenance database) and the database's name.
async fn close_database(app: &TestApp) -> (tokio_postgres::Client, String) {
    let database = app.backend.database();
    // A superuser on the server's maintenance database: a database cannot
    // be closed from a connection to itself.
    let mut config: tokio_postgres::Config = database.url.parse().unwrap();
    config.dbname("postgres");
    let (admin, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
            name = database.name
        ))
        .await
        .expect("close the database to new connections");
    // pg_terminate_backend only signals, and a connection the pool was
    // opening as the database closed may appear a moment later: terminate
    // again until none is left three checks in a row.
    let (mut gone, mut quiet) = (false, 0);
    for _ in 0..1200 {
        let left: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = $1",
                &[&database.name],
            )
            .await
            .expect("terminate the backends")
            .get(0);
        quiet = if left == 0 { quiet + 1 } else { 0 };
        if quiet == 3 {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(gone, "the database's backends were still there after 30 s");
    (admin, database.name.clone())
}

async fn reopen_database(admin: &tokio_postgres::Client, name: &str) {
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .expect("reopen the database");
}

/// While the database refuses connections, the reads and the dashboard's
/// pages answer 503 with Retry-After (or from what they hold in memory),
/// never 500; once it is back they answer again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_pages_answer_503_not_500_while_the_database_refuses_connections() {
    let app = TestApp::spawn_serving(trellis_tests::Kind::Postgres).await;
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    crate::forms::project(&app).await;
    let admin_token = app.admin();
    let cookie = app.session_cookie(&admin_token).await;
    let team = world.team;
    let reads = [
        format!("/v1/reps/{rep}/profile"),
        format!("/v1/reps/{rep}/timeline?bucket=week"),
        format!("/v1/teams/{team}/view"),
        "/v1/teams".to_owned(),
        format!("/v1/reps?team={team}"),
        "/v1/events".to_owned(),
    ];
    let pages = [
        format!("/teams/{team}"),
        format!("/reps/{rep}"),
        "/home".to_owned(),
    ];
    let (admin, name) = close_database(&app).await;
    let mut refused = 0;
    for (path, page) in reads
        .iter()
        .map(|p| (p, false))
        .chain(pages.iter().map(|p| (p, true)))
    {
        let r = if page {
            app.send(crate::http::build_request(
                Method::GET,
                path,
                "",
                None,
                "",
                &[("cookie", cookie.as_str())],
            ))
            .await
        } else {
            app.request(
                Method::GET,
                path,
                &admin_token,
                None,
                axum::body::Bytes::new(),
                &[],
            )
            .await
        };
        assert_ne!(r.status.as_u16(), 500, "{path}: {}", r.text());
        if r.status.as_u16() == 503 {
            assert_eq!(r.header("retry-after"), Some("5"), "{path}");
            refused += 1;
        } else {
            assert!(r.status.is_success(), "{path}: {} {}", r.status, r.text());
        }
    }
    assert!(
        refused >= 5,
        "the reads that need the database say so: {refused}"
    );
    reopen_database(&admin, &name).await;
    let reopened = std::time::Instant::now();
    let mut back = false;
    for _ in 0..200 {
        if app
            .request(
                Method::GET,
                &reads[0],
                &admin_token,
                None,
                axum::body::Bytes::new(),
                &[],
            )
            .await
            .status
            .is_success()
        {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(back, "the profile reads again once the database is back");
    eprintln!(
        "database refusing connections: {refused} of {} reads and pages answered 503 with \
         Retry-After: 5, none 500; the profile read again {:?} after it accepted connections",
        reads.len() + pages.len(),
        reopened.elapsed()
    );
    drop(admin);
    app.cleanup().await;
}

/// The database connections drop under the service (a failover, a restart):
/// the next writes succeed, on fresh connections, and nothing acknowledged is
/// lost or recorded twice. (With the database itself down, a write is a 503
/// with Retry-After: see `the_database_going_away_is_a_503_and_writes_resume`
/// style tests in this file.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_database_dropped_are_replaced_without_failing_a_request() {
    let app = crate::http::TestApp::spawn(trellis_tests::Kind::Postgres).await;
    let team = app.form_team("Before the outage").await;
    let database = app.backend.database();
    let events_before = app.events_in_log().await;
    // A write that is using its connection when the connection dies: it waits
    // for a lock the test holds on the log.
    let holder = database.superuser().await;
    let holder_pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    holder
        .batch_execute("BEGIN; LOCK TABLE trellis.events IN EXCLUSIVE MODE")
        .await
        .expect("lock the log");
    let admin = database.superuser().await;
    let (token, body) = (app.admin(), json!({ "name": "During" }));
    let write = app.post_json("/v1/teams", &token, &body);
    let outage = async {
        let waiting = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' \
             AND wait_event_type = 'Lock'",
            database.name
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let n: i64 = admin.query_one(&waiting, &[]).await.unwrap().get(0);
            if n > 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the write never waited"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // Every connection of the service dies, the busy one and those idle
        // in the pool, as in a database restart or failover.
        admin
            .batch_execute(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{}' AND pid NOT IN (pg_backend_pid(), {holder_pid})",
                database.name
            ))
            .await
            .expect("terminate the service's connections");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        holder
            .batch_execute("COMMIT")
            .await
            .expect("release the log");
    };
    let (during, ()) = tokio::join!(write, outage);
    // The store noticed each dead connection when it used it and ran the
    // operation again on another: no request failed for it (a 503 would have
    // recorded nothing, but its caller would have had to retry).
    assert_eq!(
        during.status.as_u16(),
        201,
        "the write whose connection died: {}",
        during.text()
    );
    let r = app
        .post_json("/v1/teams", &app.admin(), &json!({ "name": "After" }))
        .await;
    assert_eq!(r.status.as_u16(), 201, "the next write: {}", r.text());
    let acknowledged = [team, during.id(), r.id()];
    for id in &acknowledged {
        let stream = trellis_eventstore::StreamId::for_entity("team", *id).unwrap();
        assert_eq!(
            app.store.stream_version(&stream).await.unwrap(),
            1,
            "acknowledged team {id} is in the log once"
        );
    }
    assert_eq!(
        app.events_in_log().await,
        events_before + acknowledged.len() - 1,
        "exactly the acknowledged writes were recorded"
    );
    drop(admin);
    app.cleanup().await;
}

/// Requests the process sends itself in bulk (the demo's organisation) are
/// logged at DEBUG; every other handled request keeps its INFO line.
#[tokio::test(flavor = "current_thread")]
async fn bulk_requests_are_logged_at_debug_and_others_at_info() {
    use tower::ServiceExt;

    let app = TestApp::spawn(trellis_tests::Kind::Sqlite).await;
    let request = |bulk: bool| {
        let mut request = axum::http::Request::builder().uri("/healthz");
        if bulk {
            request = request.extension(trellis_http::BulkRequest);
        }
        request.body(axum::body::Body::empty()).expect("a request")
    };
    let send = |bulk: bool| {
        let router = app.router.clone();
        async move {
            let response = router.oneshot(request(bulk)).await.expect("infallible");
            assert_eq!(response.status(), 200);
        }
    };
    let logs = trellis_tests::LogCapture::install();
    // Reach both callsites, then make their caches this thread's.
    send(true).await;
    send(false).await;
    logs.rebuild();

    for bulk in [true, true, false] {
        send(bulk).await;
    }
    let log = logs.text();
    assert_eq!(
        log.matches("request handled").count(),
        1,
        "only the request not marked bulk logs at INFO:\n{log}"
    );
    drop(logs);
    app.cleanup().await;
}

/// `write::execute` takes a stream's cached state out for a command and puts
/// it back when the command is refused (by the policy or by the domain), so
/// the next command on the stream decides on it without reading the stream
/// again. Over a store that notes every per-stream read: after one command
/// has warmed the cache, refusals followed by valid commands read nothing of
/// the rep's stream.
async fn a_refused_command_keeps_the_cached_state_so_the_next_command_reads_no_stream(
    app: &TestApp,
) {
    use trellis_tests::CountingStore;

    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    let stream = stream_of("rep", rep).to_string();

    // The command service again, over the same log, with reads noted (and a
    // state cache of its own, cold).
    let counted = CountingStore::new(app.store.clone());
    let router = app.router_over(counted.clone());
    let post = |path: String, token: String, body: Value| {
        let router = router.clone();
        async move {
            let r = TestApp::send_via(&router, post_request(&path, &token, &body, &[])).await;
            (r.status.as_u16(), r.json)
        }
    };
    let admin = app.admin();
    let feedback = || feedback_body(&world, "2026-02-02");

    // Warm: the first command on the rep reads the stream once, from the start.
    let (status, body) = post(rep_path(rep, "feedback"), admin.clone(), feedback()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["stream_version"], json!(2));
    assert_eq!(
        counted.reads_of(&stream),
        [0],
        "the cold cache reads the stream"
    );
    counted.clear();

    // Refused by the domain: the rep acknowledges feedback that does not exist.
    let (status, body) = post(
        rep_path(rep, &format!("feedback/{}/acknowledgement", Uuid::now_v7())),
        app.rep(rep),
        json!({ "on": "2026-02-03" }),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = post(rep_path(rep, "feedback"), admin.clone(), feedback()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["stream_version"], json!(3));

    // Refused by the policy, on the loaded state: a leader of another team.
    let mut foreign = feedback();
    foreign["leader_id"] = json!(world.other_leader);
    let (status, body) = post(
        rep_path(rep, "feedback"),
        app.leader_as(world.other_leader, &[world.other_team]),
        foreign,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = post(rep_path(rep, "feedback"), admin.clone(), feedback()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["stream_version"], json!(4));

    assert_eq!(
        counted.reads_of(&stream),
        Vec::<u64>::new(),
        "after a refusal the next command decides on the cached state: no read of {stream}"
    );
    assert_eq!(
        app.event_types("rep", rep).await,
        [
            "RepJoined",
            "FeedbackGiven",
            "FeedbackGiven",
            "FeedbackGiven"
        ],
        "the refusals recorded nothing"
    );
}

/// Every limit the domain checks that a schema can state is in the served
/// document, so a client generated from it refuses what the server would:
/// lengths and non-empty texts, one-line names, the level's range, the
/// rubric's five levels, the metric slug and the period format (each pattern
/// run here against what the domain accepts and refuses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_states_the_limits_the_domain_checks() {
    let app = TestApp::spawn_serving(trellis_tests::Kind::Sqlite).await;
    let doc = served_document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let field = |schema: &str, name: &str| schemas[schema]["properties"][name].clone();
    let note = field("GiveFeedback", "note");
    assert_eq!(note["minLength"], 1, "{note}");
    assert_eq!(note["maxLength"], 10_000, "{note}");
    let level = field("AssessSkill", "level");
    assert_eq!(
        (level["minimum"].clone(), level["maximum"].clone()),
        (json!(1), json!(5))
    );
    let rubric = field("DefineCompetency", "rubric");
    assert_eq!(
        (rubric["minItems"].clone(), rubric["maxItems"].clone()),
        (json!(5), json!(5))
    );
    assert_eq!(field("JoinRep", "role")["maxLength"], 50);
    assert_eq!(
        field("HoldCoachingSession", "duration_minutes")["maximum"],
        480
    );
    assert_eq!(field("StartImprovementPlan", "targets")["minItems"], 1);
    assert_eq!(field("SetStandard", "roles")["minItems"], 1);
    assert_eq!(field("SetStandard", "target")["exclusiveMinimum"], 0);
    for (schema, name) in [("FeedbackKind", "praise"), ("Visibility", "private")] {
        let values = schemas[schema]["enum"].as_array().expect("an enumeration");
        assert!(values.contains(&json!(name)), "{schema}: {values:?}");
    }

    let pattern = |schema: &str, name: &str| {
        let p = field(schema, name)["pattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{schema}.{name} has a pattern"))
            .to_owned();
        regex::Regex::new(&p).expect("a pattern the regex crate reads")
    };
    let period = pattern("RecordMeasurement", "period");
    for text in [
        "2026-W05", "2026-03", "2026-Q1", "2026-12", "2026-W53", "2026-13", "2026-W54", "2026-Q5",
        "26-03", "2026-3", "March", "2026-W00", "2026-00",
    ] {
        // W53 exists only in long years: the pattern is the shape, the
        // domain the calendar.
        let shape_ok = text.parse::<trellis_domain::Period>().is_ok() || text == "2026-W53";
        assert_eq!(period.is_match(text), shape_ok, "period {text:?}");
    }
    let metric = pattern("RecordMeasurement", "metric");
    for text in [
        "calls_made",
        "nps2",
        "a",
        "Calls",
        "calls__made",
        "calls_",
        "_calls",
        "2calls",
        "calls-made",
    ] {
        let ok = trellis_domain::MetricName::try_from(text).is_ok();
        assert_eq!(metric.is_match(text), ok, "metric {text:?}");
    }
    let name = pattern("FormTeam", "name");
    for (text, ok) in [
        ("EMEA", true),
        ("  ", false),
        ("two\nlines", false),
        ("", false),
    ] {
        assert_eq!(name.is_match(text), ok, "name {text:?}");
    }
    let text = pattern("GiveFeedback", "note");
    for (note, ok) in [("Good call.", true), ("line\nbreak", true), (" \n ", false)] {
        assert_eq!(text.is_match(note), ok, "note {note:?}");
    }
    app.cleanup().await;
}

/// The live feed's events are described in the served document, and every
/// payload the write routes record matches its event type's description:
/// each required property present, none undocumented, each of its type (a
/// UUID, a date, an enumeration's value, …). Every event type is covered
/// (a leader's erasure as well as a rep's) but `AlertRaised`, which the
/// alert tests record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_payload_matches_the_feeds_description_of_its_event_type() {
    let app = TestApp::spawn_serving(trellis_tests::Kind::Sqlite).await;
    let doc = served_document(&app).await;
    let world = app.world().await;
    let admin = app.admin();
    for route in Route::ALL {
        let prepared = app.prepare(&world, route).await;
        let r = app.send_prepared(&prepared, &admin).await;
        assert!(r.status.is_success(), "{}: {}", route.template(), r.text());
    }
    // The erasure route erased a rep above; a leader's erasure is another
    // event type (the read models say who the leaders are).
    crate::forms::project(&app).await;
    app.post_json(
        &format!("/v1/people/{}/erasure", world.leader),
        &admin,
        &json!({ "reason": "Left the company" }),
    )
    .await
    .expect(200);
    let feed = &doc["components"]["schemas"]["FeedEvent"]["properties"]["payload"]["oneOf"];
    assert_eq!(
        feed.as_array().map(Vec::len),
        Some(trellis_domain::Event::types().count()),
        "one payload schema per event type"
    );
    let events = app
        .store
        .read_all(trellis_eventstore::Checkpoint::START, 100_000)
        .await
        .expect("the log");
    let mut seen = BTreeSet::new();
    for event in &events {
        let schema = &doc["components"]["schemas"][format!("{}Payload", event.event_type)];
        assert!(schema.is_object(), "{} is described", event.event_type);
        let what = format!("{} {}", event.event_type, event.payload);
        check_against(schema, &event.payload, &what);
        seen.insert(event.event_type.clone());
    }
    for (event_type, _) in trellis_domain::Event::types() {
        assert!(
            seen.contains(event_type) || event_type == "AlertRaised",
            "no route recorded {event_type}"
        );
    }
    app.cleanup().await;
}

/// Checks `value` against the subset of JSON Schema the payload
/// descriptions use.
fn check_against(schema: &Value, value: &Value, what: &str) {
    if value.is_null() {
        return;
    }
    match schema["type"].as_str() {
        Some("object") => {
            assert!(value.is_object(), "{what}: an object");
            if let Some(properties) = schema["properties"].as_object() {
                for (name, field) in value.as_object().into_iter().flatten() {
                    let described = properties
                        .get(name)
                        .unwrap_or_else(|| panic!("{what}: {name} is not described"));
                    check_against(described, field, &format!("{what}.{name}"));
                }
                for name in schema["required"].as_array().into_iter().flatten() {
                    let name = name.as_str().expect("a name");
                    assert!(
                        value.get(name).is_some_and(|v| !v.is_null()),
                        "{what}: {name} is required"
                    );
                }
            }
        }
        Some("array") => {
            let items = value
                .as_array()
                .unwrap_or_else(|| panic!("{what}: an array"));
            for (i, item) in items.iter().enumerate() {
                check_against(&schema["items"], item, &format!("{what}[{i}]"));
            }
        }
        Some("string") => {
            let text = value.as_str().unwrap_or_else(|| panic!("{what}: a string"));
            match schema["format"].as_str() {
                Some("uuid") => assert!(Uuid::parse_str(text).is_ok(), "{what}: a UUID"),
                Some("date") => assert!(
                    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok(),
                    "{what}: a date"
                ),
                _ => {}
            }
            if let Some(allowed) = schema["enum"].as_array() {
                assert!(allowed.contains(value), "{what}: one of {allowed:?}");
            }
        }
        Some("integer") => assert!(value.is_u64() || value.is_i64(), "{what}: an integer"),
        Some("number") => assert!(value.is_number(), "{what}: a number"),
        other => panic!("{what}: a schema of type {other:?}"),
    }
}

/// A served app with a rep promoted under the same id: they lead the
/// world's team too, and the read models already say so.
async fn a_rep_who_leads() -> (TestApp, World, Uuid) {
    let app = TestApp::spawn_serving(trellis_tests::Kind::Sqlite).await;
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    app.assign_leader(world.team, rep).await;
    crate::forms::project(&app).await;
    (app, world, rep)
}

/// A keyed erasure sent twice records once and answers the first outcome:
/// for a leader, and for a person who is a rep and a leader under one id
/// (both erased, each once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_erasure_sent_again_records_once_for_a_leader_and_for_a_rep_who_leads() {
    let (app, world, rep) = a_rep_who_leads().await;
    let admin = app.admin();
    let body = json!({ "reason": "Asked to be forgotten" });
    for (person, key) in [(world.leader, "erase-leader"), (rep, "erase-rep")] {
        let path = format!("/v1/people/{person}/erasure");
        let key = [("idempotency-key", key)];
        let first = app.post_json_with(&path, &admin, &body, &key).await;
        first.expect(200);
        assert!(first.header("idempotent-replayed").is_none(), "{person}");
        let again = app.post_json_with(&path, &admin, &body, &key).await;
        again.expect(200);
        assert_eq!(
            again.header("idempotent-replayed"),
            Some("true"),
            "{person}"
        );
    }
    assert_eq!(
        app.event_types("leader", world.leader).await,
        ["LeaderErased"]
    );
    assert_eq!(app.event_types("leader", rep).await, ["LeaderErased"]);
    let of_rep = app.event_types("rep", rep).await;
    assert_eq!(
        of_rep.iter().filter(|t| *t == "PersonalDataErased").count(),
        1,
        "{of_rep:?}"
    );
    app.cleanup().await;
}

/// An erasure's reason stays readable in the log after the erasure, so one
/// that names the person (as a rep, or as the leader teams named them) is
/// refused beside the reason, and nothing of the erasure is done: their
/// key is kept and no erasure is recorded. The same request without the
/// name then erases them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_whose_reason_names_the_person_is_refused_and_erases_nothing() {
    // The teams name them "Lena Leader".
    let (app, _, rep) = a_rep_who_leads().await;
    let admin = app.admin();
    let path = format!("/v1/people/{rep}/erasure");
    for reason in ["Riley asked to be forgotten", "Request from Lena's manager"] {
        let r = app
            .post_json(&path, &admin, &json!({ "reason": reason }))
            .await;
        r.expect(422);
        assert_eq!(
            r.json["concerns"],
            json!("reason"),
            "{reason}: {}",
            r.text()
        );
        assert!(
            r.json["detail"]
                .as_str()
                .is_some_and(|d| d.contains("names the person being erased")),
            "{reason}: {}",
            r.text()
        );
    }
    assert!(app.event_types("leader", rep).await.is_empty());
    let of_rep = app.event_types("rep", rep).await;
    assert!(
        !of_rep.iter().any(|t| t == "PersonalDataErased"),
        "{of_rep:?}"
    );
    // The key is kept: the rep's name still reads.
    let joined = app.events("rep", rep).await.remove(0);
    assert_eq!(joined.payload["name"], json!("Riley Rep"));

    // Once the key is destroyed the names read as the erased name, whose
    // words this reason holds: still erased whole, rep and leader.
    app.post_json(
        &path,
        &admin,
        &json!({ "reason": "The person asked to be erased" }),
    )
    .await
    .expect(200);
    assert_eq!(app.event_types("leader", rep).await, ["LeaderErased"]);
    let of_rep = app.event_types("rep", rep).await;
    assert_eq!(
        of_rep.iter().filter(|t| *t == "PersonalDataErased").count(),
        1,
        "{of_rep:?}"
    );
    app.cleanup().await;
}
