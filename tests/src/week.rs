//! The rest of a week's records in the dashboard, each through the write
//! API: a rep asks for support and their leader acknowledges and resolves
//! it; a plan is started, checkpointed and closed; a measurement, a drop, a
//! retraction, a level correction and a review are recorded; a rep
//! acknowledges a standard. A form opened before someone else recorded
//! something says what changed and records nothing.

use axum::http::{Method, StatusCode};
use trellis_tests::Kind;
use uuid::Uuid;

use crate::forms::{browser, hidden, project, serving_with_a_rep};
use crate::http::{TestApp, feedback_body};

/// A form as `token` opens it at `path`: its page, and what a browser
/// would send of it untouched (every input's value, the options selected).
pub(crate) async fn open(
    app: &TestApp,
    path: &str,
    token: &str,
) -> (String, Vec<(String, String)>) {
    let page = browser(app, Method::GET, path, token, None, &[]).await;
    assert_eq!(page.status, StatusCode::OK, "GET {path}: {}", page.text());
    let html = page.text();
    let carried = inputs(&html);
    (html, carried)
}

/// What a browser sends of `html`'s form untouched: the `name` and `value`
/// of every `<input>` (radio buttons and check boxes only when checked),
/// every `<textarea>` and every `<select>` (its selected option, else its
/// first).
pub(crate) fn inputs(html: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| {
        let key = format!(" {name}=\"");
        let tag = format!(" {tag}");
        tag.find(&key).map(|at| {
            let rest = &tag[at + key.len()..];
            unescape(&rest[..rest.find('"').unwrap_or(0)])
        })
    };
    let mut sent: Vec<(String, String)> = html
        .split("<input ")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
            let choice = tag.contains("type=\"radio\"") || tag.contains("type=\"checkbox\"");
            if choice && !tag.contains(" checked") {
                return None;
            }
            Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default()))
        })
        .collect();
    for rest in html.split("<textarea ").skip(1) {
        let end = rest.find('>').unwrap_or(rest.len());
        let content = &rest[end + 1..rest.find("</textarea>").unwrap_or(end + 1)];
        if let Some(name) = attr(&rest[..end], "name") {
            sent.push((name, unescape(content)));
        }
    }
    for rest in html.split("<select ").skip(1) {
        let end = rest.find('>').unwrap_or(rest.len());
        let options = &rest[end..rest.find("</select>").unwrap_or(end)];
        let chosen = options
            .split("<option ")
            .skip(1)
            .find(|o| o[..o.find('>').unwrap_or(0)].contains(" selected"))
            .or_else(|| options.split("<option ").nth(1))
            .and_then(|o| attr(o, "value"));
        if let Some(name) = attr(&rest[..end], "name") {
            sent.push((name, chosen.unwrap_or_default()));
        }
    }
    sent
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Posts `carried`, with `fields` in place of the same names, to `path` as `token`.
pub(crate) async fn send(
    app: &TestApp,
    path: &str,
    token: &str,
    carried: &[(String, String)],
    fields: &[(&str, &str)],
) -> crate::http::Resp {
    let mut all: Vec<(&str, &str)> = carried
        .iter()
        .filter(|(k, _)| !fields.iter().any(|(name, _)| name == k))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    all.extend_from_slice(fields);
    browser(app, Method::POST, path, token, Some(&all), &[]).await
}

/// [`send`]s the form and expects it refused (422): the page it answers.
pub(crate) async fn refused(
    app: &TestApp,
    path: &str,
    token: &str,
    carried: &[(String, String)],
    fields: &[(&str, &str)],
) -> String {
    let answer = send(app, path, token, carried, fields).await;
    let html = answer.text();
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "POST {path} {fields:?}: {}",
        said(&html)
    );
    html
}

/// What a page says: its `<main>`, for failure messages.
pub(crate) fn said(html: &str) -> &str {
    html.find("<main").map_or(html, |at| &html[at..])
}

/// Opens the form at `path` and sends it with `fields`: recorded (303).
pub(crate) async fn record(app: &TestApp, path: &str, token: &str, fields: &[(&str, &str)]) {
    let (_, carried) = open(app, path, token).await;
    let sent = send(app, path, token, &carried, fields).await;
    assert_eq!(
        sent.status,
        StatusCode::SEE_OTHER,
        "POST {path}: {}",
        said(&sent.text())
    );
}

pub(crate) async fn types(app: &TestApp, rep: Uuid) -> Vec<String> {
    app.events("rep", rep)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

pub(crate) fn count(types: &[String], event_type: &str) -> usize {
    types.iter().filter(|t| *t == event_type).count()
}

/// The id that follows `prefix` in `html` (a link's path segment).
fn id_after(html: &str, prefix: &str) -> String {
    let at = html
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} in {html}"));
    html[at + prefix.len()..at + prefix.len() + 36].to_owned()
}

async fn a_rep_asks_for_support_and_their_leader_acknowledges_and_resolves_it(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let rep_token = app.rep(rep);
    let own = browser(
        &app,
        Method::GET,
        &format!("/reps/{rep}"),
        &rep_token,
        None,
        &[],
    )
    .await;
    let ask = format!("/reps/{rep}/support-requests/new");
    assert!(
        own.text().contains(&format!("href=\"{ask}\"")),
        "{}",
        said(&own.text())
    );

    // Left empty: refused beside the field, the category kept.
    let (_, carried) = open(&app, &ask, &rep_token).await;
    let html = refused(
        &app,
        &ask,
        &rep_token,
        &carried,
        &[("category", "tools"), ("description", " ")],
    )
    .await;
    assert!(html.contains("id=\"description-error\""), "{}", said(&html));
    assert!(html.contains("value=\"tools\" selected"), "{html}");
    // Sent with nothing chosen or written, both are marked at once.
    let html = refused(
        &app,
        &ask,
        &rep_token,
        &carried,
        &[("category", ""), ("description", "")],
    )
    .await;
    for field in ["category", "description"] {
        assert!(
            html.contains(&format!("id=\"{field}-error\"")),
            "{field}: {}",
            said(&html)
        );
    }
    assert_eq!(count(&types(&app, rep).await, "SupportRequested"), 0);
    // A date before they joined (2026-01-05): the rep is told as "you".
    let html = refused(
        &app,
        &ask,
        &rep_token,
        &carried,
        &[
            ("category", "tools"),
            ("description", "The dialer licence expired on Monday."),
            ("raised_on", "2025-12-01"),
        ],
    )
    .await;
    assert!(
        html.contains("2025-12-01 is before you joined on 2026-01-05."),
        "{}",
        said(&html)
    );
    assert!(!html.contains("the rep joined"), "{}", said(&html));

    let sent = send(
        &app,
        &ask,
        &rep_token,
        &carried,
        &[
            ("category", "tools"),
            ("description", "The dialer licence expired on Monday."),
            ("raised_on", "2026-02-15"),
        ],
    )
    .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text());
    assert_eq!(count(&types(&app, rep).await, "SupportRequested"), 1);
    project(&app).await;

    // The leader sees it open, with the links to answer it.
    let leader = app.leader_as(world.leader, &[world.team]);
    let page = browser(
        &app,
        Method::GET,
        &format!("/reps/{rep}"),
        &leader,
        None,
        &[],
    )
    .await;
    let html = page.text();
    let request = id_after(&html, &format!("/reps/{rep}/support-requests/"));
    record(
        &app,
        &format!("/reps/{rep}/support-requests/{request}/acknowledgement"),
        &leader,
        &[("on", "2026-02-16")],
    )
    .await;
    record(
        &app,
        &format!("/reps/{rep}/support-requests/{request}/resolution"),
        &leader,
        &[
            ("resolution", "Renewed the licence for a year."),
            ("on", "2026-02-17"),
        ],
    )
    .await;
    let recorded = types(&app, rep).await;
    assert_eq!(count(&recorded, "SupportAcknowledged"), 1, "{recorded:?}");
    assert_eq!(count(&recorded, "SupportResolved"), 1, "{recorded:?}");
    // A rep cannot answer their own request: a form they make by hand, with
    // their own valid CSRF token, is refused by the write API's policy.
    let (_, carried) = open(&app, &ask, &rep_token).await;
    let path = format!("/reps/{rep}/support-requests/{request}/resolution");
    let forbidden = send(
        &app,
        &path,
        &rep_token,
        &carried,
        &[("resolution", "I solved it myself."), ("on", "2026-02-18")],
    )
    .await;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        said(&forbidden.text())
    );
    assert_eq!(count(&types(&app, rep).await, "SupportResolved"), 1);
    app.cleanup().await;
}

async fn a_leader_starts_checkpoints_and_closes_an_improvement_plan(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let leader = app.leader_as(world.leader, &[world.team]);
    // Sent empty: every field it needs is marked at once, not one a send.
    let new_plan = format!("/reps/{rep}/improvement-plans/new");
    let (_, carried) = open(&app, &new_plan, &leader).await;
    let html = refused(
        &app,
        &new_plan,
        &leader,
        &carried,
        &[("targets", ""), ("started_on", ""), ("review_on", "")],
    )
    .await;
    for field in ["targets", "started_on", "review_on"] {
        assert!(
            html.contains(&format!("id=\"{field}-error\"")),
            "{field}: {}",
            said(&html)
        );
    }
    record(
        &app,
        &format!("/reps/{rep}/improvement-plans/new"),
        &leader,
        &[
            (
                "targets",
                "50 calls a week\r\n\r\nA discovery call reviewed each week\r\n",
            ),
            ("started_on", "2026-03-02"),
            ("review_on", "2026-05-04"),
        ],
    )
    .await;
    let events = app.events("rep", rep).await;
    let started = events
        .iter()
        .find(|e| e.event_type == "ImprovementPlanStarted")
        .expect("the plan");
    assert_eq!(started.payload["targets"].as_array().map(Vec::len), Some(2));
    project(&app).await;
    let page = browser(
        &app,
        Method::GET,
        &format!("/reps/{rep}"),
        &leader,
        None,
        &[],
    )
    .await;
    let plan = id_after(&page.text(), &format!("/reps/{rep}/improvement-plans/"));
    record(
        &app,
        &format!("/reps/{rep}/improvement-plans/{plan}/checkpoints"),
        &leader,
        &[
            ("note", "Calls at 42 a week, up from 30."),
            ("on", "2026-03-16"),
        ],
    )
    .await;
    // Closed with nothing chosen or written: the outcome and the reason
    // are both marked.
    let closure = format!("/reps/{rep}/improvement-plans/{plan}/closure");
    let (_, carried) = open(&app, &closure, &leader).await;
    let html = refused(
        &app,
        &closure,
        &leader,
        &carried,
        &[("outcome", ""), ("note", ""), ("on", "2026-04-27")],
    )
    .await;
    for field in ["outcome", "note"] {
        assert!(
            html.contains(&format!("id=\"{field}-error\"")),
            "{field}: {}",
            said(&html)
        );
    }
    record(
        &app,
        &format!("/reps/{rep}/improvement-plans/{plan}/closure"),
        &leader,
        &[
            ("outcome", "met"),
            ("note", "Both targets met for four weeks."),
            ("on", "2026-04-27"),
        ],
    )
    .await;
    let recorded = types(&app, rep).await;
    assert_eq!(
        count(&recorded, "PlanCheckpointRecorded"),
        1,
        "{recorded:?}"
    );
    assert_eq!(count(&recorded, "ImprovementPlanClosed"), 1, "{recorded:?}");
    app.cleanup().await;
}

async fn a_form_opened_before_someone_else_recorded_says_what_changed_and_records_nothing(
    kind: Kind,
) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    app.support_request(rep).await;
    project(&app).await;
    let leader = app.leader_as(world.leader, &[world.team]);
    let page = browser(
        &app,
        Method::GET,
        &format!("/reps/{rep}"),
        &leader,
        None,
        &[],
    )
    .await;
    let request = id_after(&page.text(), &format!("/reps/{rep}/support-requests/"));
    let path = format!("/reps/{rep}/support-requests/{request}/resolution");
    let (_, carried) = open(&app, &path, &leader).await;
    // Meanwhile another leader's client records feedback.
    app.post_json(
        &format!("/v1/reps/{rep}/feedback"),
        &app.admin(),
        &feedback_body(&world, "2026-02-16"),
    )
    .await
    .expect(201);
    let fields = [("resolution", "Renewed the licence."), ("on", "2026-02-17")];
    let stale = send(&app, &path, &leader, &carried, &fields).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.text());
    let html = stale.text();
    assert!(html.contains("Since you opened this form"), "{html}");
    assert!(html.contains("Praise on"), "the change is named: {html}");
    assert!(
        html.contains("Renewed the licence."),
        "typed text kept: {html}"
    );
    assert_eq!(count(&types(&app, rep).await, "SupportResolved"), 0);
    // Sent again from the page it came back on: recorded.
    let sent = send(&app, &path, &leader, &inputs(&html), &fields).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text());
    assert_eq!(count(&types(&app, rep).await, "SupportResolved"), 1);
    // Resolved, the request offers no form: the page says when, and leads back.
    project(&app).await;
    let closed = browser(&app, Method::GET, &path, &leader, None, &[]).await;
    assert_eq!(
        closed.status,
        StatusCode::CONFLICT,
        "{}",
        said(&closed.text())
    );
    assert!(
        closed.text().contains("was resolved on"),
        "{}",
        said(&closed.text())
    );
    assert!(
        closed.text().contains(&format!("href=\"/reps/{rep}\"")),
        "{}",
        said(&closed.text())
    );
    app.cleanup().await;
}

async fn a_leader_records_a_measurement_and_a_value_that_is_no_number_is_explained(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let leader = app.leader_as(world.leader, &[world.team]);
    let path = format!("/reps/{rep}/measurements/new");
    let (html, carried) = open(&app, &path, &leader).await;
    assert!(html.contains("value=\"calls_made\""), "{html}");
    // Each standard says the period it is measured in, and the form opens
    // on the current period of that kind (the world's standard is weekly).
    assert!(
        html.contains(">Weekly calls: calls, weekly</option>"),
        "{html}"
    );
    let period = html
        .split("name=\"period\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default();
    assert!(
        period.len() == 8 && period.contains("-W"),
        "a week like 2026-W05: {period:?}"
    );
    let html = refused(
        &app,
        &path,
        &leader,
        &carried,
        &[
            ("metric", "calls_made"),
            ("period", "2026-03"),
            ("value", "lots"),
        ],
    )
    .await;
    assert!(
        html.contains("Enter the measured value as a number"),
        "{html}"
    );
    assert!(html.contains("value=\"lots\""), "{html}");
    // No standard chosen: asked for in the form's words, not as a metric
    // name that does not parse.
    let html = refused(
        &app,
        &path,
        &leader,
        &carried,
        &[("metric", ""), ("period", "2026-W10"), ("value", "4")],
    )
    .await;
    assert!(html.contains("Required: choose one."), "{}", said(&html));
    assert!(!html.contains("is not a metric name"), "{}", said(&html));
    // Each period refused beside the period, in words that say why: one
    // that does not parse; a month, for a weekly standard; a week before
    // the rep joined (2026-01-05), the domain's refusal.
    // The standard is named as the form offered it, not by its metric's id.
    for (period, why) in [
        ("March", "period-error"),
        (
            "2026-03",
            "“Weekly calls” is measured weekly, so 2026-03 is not one of its periods",
        ),
        ("2025-W50", "joined"),
    ] {
        let html = refused(
            &app,
            &path,
            &leader,
            &carried,
            &[
                ("metric", "calls_made"),
                ("period", period),
                ("value", "42"),
            ],
        )
        .await;
        assert!(
            html.contains("id=\"period-error\""),
            "{period}: {}",
            said(&html)
        );
        assert!(html.contains(why), "{period}: {}", said(&html));
        assert!(!html.contains("“calls_made”"), "{period}: {}", said(&html));
    }
    // A stray run of digits, far above the standard's target of 50: refused
    // beside the value as a likely typo, the value kept to fix.
    let html = refused(
        &app,
        &path,
        &leader,
        &carried,
        &[
            ("metric", "calls_made"),
            ("period", "2026-W10"),
            ("value", "999999999"),
        ],
    )
    .await;
    assert!(
        html.contains(
            "id=\"value-error\">999999999 is more than 100 times the largest target of the \
             standards for “Weekly calls” (50). Check it for a typo"
        ),
        "{}",
        said(&html)
    );
    assert!(html.contains("value=\"999999999\""), "{}", said(&html));
    assert_eq!(count(&types(&app, rep).await, "PerformanceMeasured"), 0);
    let sent = send(
        &app,
        &path,
        &leader,
        &carried,
        &[
            ("metric", "calls_made"),
            ("period", "2026-W10"),
            ("value", "42"),
        ],
    )
    .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text());
    let events = app.events("rep", rep).await;
    let measured = events
        .iter()
        .find(|e| e.event_type == "PerformanceMeasured")
        .expect("the measurement");
    assert_eq!(measured.payload["value"], 42.0);
    // Corrected to a stray run of digits: refused the same way, beside the
    // correction's value, and the measurement keeps its 42.
    let correct = format!(
        "/reps/{rep}/corrections/new?fact={}&as=value",
        measured.payload["measurement_id"]
            .as_str()
            .expect("the measurement's id")
    );
    let (_, carried) = open(&app, &correct, &leader).await;
    let html = refused(
        &app,
        &correct,
        &leader,
        &carried,
        &[
            ("correction.value", "4200000"),
            ("reason", "Typed the week's total wrong."),
        ],
    )
    .await;
    assert!(
        html.contains(
            "id=\"correction-value-error\">4200000 is more than 100 times the largest target"
        ),
        "{}",
        said(&html)
    );
    assert_eq!(count(&types(&app, rep).await, "FactCorrected"), 0);
    app.cleanup().await;
}

async fn a_leader_retracts_feedback_and_corrects_a_level_from_the_timeline(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let feedback = app.give_feedback(&world, rep).await;
    let assessment = app.skill_assessment(&world, rep).await;
    project(&app).await;
    let leader = app.leader_as(world.leader, &[world.team]);
    let page = browser(
        &app,
        Method::GET,
        &format!("/reps/{rep}"),
        &leader,
        None,
        &[],
    )
    .await;
    let html = page.text();
    let retract = format!("/reps/{rep}/corrections/new?fact={feedback}&amp;as=retract");
    let level = format!("/reps/{rep}/corrections/new?fact={assessment}&amp;as=level");
    assert!(html.contains(&retract), "{html}");
    assert!(html.contains(&level), "{html}");
    record(
        &app,
        &retract.replace("&amp;", "&"),
        &leader,
        &[("reason", "Given to the wrong rep.")],
    )
    .await;
    // No level chosen: said beside the level in a leader's words, and
    // what was typed is kept.
    let (_, carried) = open(&app, &level.replace("&amp;", "&"), &leader).await;
    let unchosen = send(
        &app,
        &level.replace("&amp;", "&"),
        &leader,
        &carried,
        &[
            ("correction.level", ""),
            (
                "correction.evidence",
                "Two of three calls had no discovery questions.",
            ),
            ("reason", "Entered 3 by mistake."),
        ],
    )
    .await;
    assert_eq!(unchosen.status, StatusCode::UNPROCESSABLE_ENTITY);
    let html = unchosen.text();
    assert!(
        html.contains(
            "name=\"correction.level\" aria-invalid=\"true\" \
             aria-describedby=\"correction-level-error\" autofocus"
        ),
        "{}",
        said(&html)
    );
    assert!(
        html.contains("id=\"correction-level-error\">Required: choose one.</p>"),
        "{}",
        said(&html)
    );
    assert!(!html.contains("expected"), "{}", said(&html));
    assert!(html.contains("Entered 3 by mistake."), "{}", said(&html));
    record(
        &app,
        &level.replace("&amp;", "&"),
        &leader,
        &[
            ("correction.level", "2"),
            (
                "correction.evidence",
                "Two of three calls had no discovery questions.",
            ),
            ("reason", "Entered 3 by mistake."),
        ],
    )
    .await;
    let events = app.events("rep", rep).await;
    let corrections: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e.event_type == "FactCorrected")
        .map(|e| &e.payload)
        .collect();
    assert_eq!(corrections.len(), 2, "{corrections:?}");
    assert_eq!(corrections[0]["correction"]["kind"], "retracted");
    assert_eq!(corrections[1]["correction"]["level"], 2);
    // A rep sees no correction links, and a hand-made one is refused.
    let rep_token = app.rep(rep);
    let own = browser(
        &app,
        Method::GET,
        &format!("/reps/{rep}"),
        &rep_token,
        None,
        &[],
    )
    .await;
    assert!(!own.text().contains("/corrections/new"), "{}", own.text());
    let (_, carried) = open(
        &app,
        &format!("/reps/{rep}/support-requests/new"),
        &rep_token,
    )
    .await;
    let fact = feedback.to_string();
    let forged = send(
        &app,
        &format!("/reps/{rep}/corrections/new?fact={fact}&as=retract"),
        &rep_token,
        &carried,
        &[("fact_id", fact.as_str()), ("reason", "I did not like it.")],
    )
    .await;
    assert_eq!(
        forged.status,
        StatusCode::FORBIDDEN,
        "{}",
        said(&forged.text())
    );
    let facts: Vec<&serde_json::Value> = corrections.iter().map(|c| &c["fact_id"]).collect();
    assert_eq!(
        facts,
        [&serde_json::json!(feedback), &serde_json::json!(assessment)],
        "each correction names its record"
    );
    assert_eq!(
        app.events("rep", rep)
            .await
            .iter()
            .filter(|e| e.event_type == "FactCorrected")
            .count(),
        2,
        "the rep's forged retraction recorded nothing"
    );
    app.cleanup().await;
}

async fn a_rep_drops_their_own_item_and_acknowledges_a_standard(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let item = app.action_item(&world, rep).await;
    project(&app).await;
    let token = app.rep(rep);
    let html = crate::forms::shown(&app, &format!("/reps/{rep}"), &token).await;
    let drop = format!("/reps/{rep}/action-items/{item}/drop");
    assert!(html.contains(&format!("href=\"{drop}\"")), "{html}");
    assert!(
        html.contains("Weekly calls</strong>"),
        "the standard to acknowledge: {html}"
    );
    let csrf = hidden(&html, "_csrf");
    let standard = world.standard.to_string();
    let acknowledged = browser(
        &app,
        Method::POST,
        &format!("/reps/{rep}/expectations-acknowledgements"),
        &token,
        Some(&[
            ("_csrf", csrf.as_str()),
            ("idempotency_key", &Uuid::now_v7().to_string()),
            ("standard_id", standard.as_str()),
        ]),
        &[],
    )
    .await;
    assert_eq!(
        acknowledged.status,
        StatusCode::SEE_OTHER,
        "{}",
        acknowledged.text()
    );
    record(
        &app,
        &drop,
        &token,
        &[("reason", "The script was replaced by the new playbook.")],
    )
    .await;
    let recorded = types(&app, rep).await;
    assert_eq!(
        count(&recorded, "ExpectationsAcknowledged"),
        1,
        "{recorded:?}"
    );
    assert_eq!(count(&recorded, "ActionItemDropped"), 1, "{recorded:?}");
    project(&app).await;
    let page = browser(
        &app,
        Method::GET,
        &format!("/reps/{rep}"),
        &token,
        None,
        &[],
    )
    .await;
    assert!(
        !page.text().contains("Weekly calls</strong>"),
        "acknowledged, so no longer to do: {}",
        page.text()
    );
    app.cleanup().await;
}

async fn a_leader_records_a_review_of_the_packet_they_read(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let leader = app.leader_as(world.leader, &[world.team]);
    let packet = browser(
        &app,
        Method::GET,
        &format!("/reps/{rep}/review?from=2026-01-05&to=2026-03-31"),
        &leader,
        None,
        &[],
    )
    .await;
    let link = format!("/reps/{rep}/reviews/new?from=2026-01-05&amp;to=2026-03-31");
    assert!(packet.text().contains(&link), "{}", packet.text());
    let path = link.replace("&amp;", "&");
    let (html, _) = open(&app, &path, &leader).await;
    let sha = hidden(&html, "packet_sha256");
    assert_eq!(sha.len(), 64, "{html}");
    assert!(
        packet.text().contains(&sha),
        "the packet shows the same hash"
    );
    record(&app, &path, &leader, &[("on", "2026-04-02")]).await;
    let events = app.events("rep", rep).await;
    let review = events
        .iter()
        .find(|e| e.event_type == "ReviewHeld")
        .expect("the review");
    assert_eq!(review.payload["packet_sha256"], sha.as_str());
    // The rep's page names it near the top, linking to its packet, however
    // much history its date sits among.
    let page = crate::forms::shown(&app, &format!("/reps/{rep}?recorded=review"), &leader).await;
    assert!(
        page.contains(&format!(
            "<p id=\"reviews\"><strong>Reviews held:</strong> <a href=\"/reps/{rep}/review?from=2026-01-05&amp;to=2026-03-31\">2026-04-02, of 2026-01-05 to 2026-03-31</a></p>\
             <p class=\"notice ok\" role=\"status\">Review recorded.</p>"
        )),
        "{page}"
    );
    app.cleanup().await;
}

crate::http::on_each_backend!(
    multi_thread: a_rep_asks_for_support_and_their_leader_acknowledges_and_resolves_it,
    a_leader_starts_checkpoints_and_closes_an_improvement_plan,
    a_form_opened_before_someone_else_recorded_says_what_changed_and_records_nothing,
    a_leader_records_a_measurement_and_a_value_that_is_no_number_is_explained,
    a_leader_retracts_feedback_and_corrects_a_level_from_the_timeline,
    a_rep_drops_their_own_item_and_acknowledges_a_standard,
    a_leader_records_a_review_of_the_packet_they_read,
);
