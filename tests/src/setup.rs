//! An admin sets up an organisation in the dashboard: teams and leaders,
//! people, the competency framework and standards, each through the write
//! API; a measurement CSV is checked, its bad rows listed, and nothing is
//! recorded until the admin confirms. Nobody else opens these pages.

use axum::http::{Method, StatusCode};
use trellis_eventstore::Checkpoint;
use trellis_tests::Kind;
use uuid::Uuid;

use crate::forms::{browser, hidden, project, serving_with_a_rep, settle};
use crate::http::{TestApp, build_request};
use crate::week::{inputs, open, record, said, send};

/// How many events of `event_type` the whole log holds (once it reads
/// whole: on PostgreSQL, readers of the global log wait for transactions
/// still in flight).
async fn in_log(app: &TestApp, event_type: &str) -> usize {
    settle(app).await;
    app.store
        .read_all(Checkpoint::START, 1_000_000)
        .await
        .expect("read the log")
        .iter()
        .filter(|e| e.event_type == event_type)
        .count()
}

/// The id after `prefix` in `html` that is not in `not`.
fn new_id_after(html: &str, prefix: &str, not: &[Uuid]) -> Uuid {
    html.match_indices(prefix)
        .filter_map(|(at, _)| html.get(at + prefix.len()..at + prefix.len() + 36))
        .filter_map(|id| Uuid::parse_str(id).ok())
        .find(|id| !not.contains(id))
        .unwrap_or_else(|| panic!("no new {prefix}… in {}", said(html)))
}

async fn an_admin_sets_up_an_organisation_through_the_forms(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let admin = app.admin();
    let overview = browser(&app, Method::GET, "/admin", &admin, None, &[]).await;
    assert_eq!(
        overview.status,
        StatusCode::OK,
        "{}",
        said(&overview.text())
    );
    assert!(overview.text().contains("href=\"/admin/teams/new\""));
    // Each person's changes reach a phone as a labelled line, not a sixth
    // column past the screen's edge.
    let people = overview.text();
    let people = &people[people.find("<h2 id=\"people\">").expect("people")..];
    assert!(
        people.contains("<table class=\"stack\">")
            && people.contains(&format!(
                "<td data-label=\"Change\"><span><a href=\"/admin/reps/{rep}/team\">Move</a>"
            )),
        "{}",
        said(people)
    );

    record(
        &app,
        "/admin/teams/new",
        &admin,
        &[("name", "APAC Enterprise")],
    )
    .await;
    project(&app).await;
    let html = browser(&app, Method::GET, "/admin", &admin, None, &[])
        .await
        .text();
    assert!(html.contains("APAC Enterprise"), "{}", said(&html));
    let team = new_id_after(&html, "/admin/teams/", &[world.team, world.other_team]);
    // A second team of that name is refused, beside the name, the name kept.
    let (_, carried) = open(&app, "/admin/teams/new", &admin).await;
    let again = send(
        &app,
        "/admin/teams/new",
        &admin,
        &carried,
        &[("name", "apac enterprise")],
    )
    .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    let html = again.text();
    assert!(html.contains("id=\"name-error\""), "{}", said(&html));
    assert!(
        html.contains("Another team is already called"),
        "{}",
        said(&html)
    );
    assert!(
        html.contains("value=\"apac enterprise\""),
        "{}",
        said(&html)
    );
    record(
        &app,
        &format!("/admin/teams/{team}/leaders"),
        &admin,
        &[("leader_name", "Kenji Watanabe")],
    )
    .await;
    // The leader of another team takes this one on too.
    let other_leader = world.other_leader.to_string();
    record(
        &app,
        &format!("/admin/teams/{team}/leaders/existing"),
        &admin,
        &[("leader_id", other_leader.as_str())],
    )
    .await;
    record(
        &app,
        &format!("/admin/teams/{team}/name"),
        &admin,
        &[("name", "APAC Strategic")],
    )
    .await;
    let team_text = team.to_string();
    record(
        &app,
        "/admin/reps/new",
        &admin,
        &[
            ("name", "Mei Lin"),
            ("role", "AE"),
            ("team_id", team_text.as_str()),
            ("start_date", "2026-04-01"),
        ],
    )
    .await;
    record(
        &app,
        &format!("/admin/reps/{rep}/role"),
        &admin,
        &[("role", "AE"), ("on", "2026-06-01")],
    )
    .await;
    record(
        &app,
        &format!("/admin/reps/{rep}/team"),
        &admin,
        &[("team_id", team_text.as_str()), ("on", "2026-07-01")],
    )
    .await;
    record(
        &app,
        "/admin/competencies/new",
        &admin,
        &[
            ("name", "Negotiation"),
            ("description", "Reaching agreements that hold."),
            ("rubric[0]", "Concedes at once."),
            ("rubric[1]", "Trades, but without a plan."),
            ("rubric[2]", "Plans what to give and get."),
            ("rubric[3]", "Anchors and trades with a plan."),
            ("rubric[4]", "Coaches others to negotiate."),
        ],
    )
    .await;
    // Sent with almost nothing, the form marks every required field left
    // empty at once, and a ramp line that is no percentage in words.
    let (_, carried) = open(&app, "/admin/standards/new", &admin).await;
    // The roles field names the roles in use: a role is matched exactly.
    project(&app).await;
    let (form_now, _) = open(&app, "/admin/standards/new", &admin).await;
    let in_use = form_now
        .split_once("one per line. In use: ")
        .and_then(|(_, rest)| rest.split_once(". A role is matched exactly, capitals included"))
        .map(|(roles, _)| roles.split(", ").collect::<Vec<_>>())
        .unwrap_or_else(|| panic!("no roles in use: {}", said(&form_now)));
    assert!(in_use.contains(&"AE"), "{in_use:?}");
    let refused = send(
        &app,
        "/admin/standards/new",
        &admin,
        &carried,
        &[("target", "8"), ("ramp", "50\r\nabc")],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text();
    for field in ["name", "metric", "kind", "unit", "roles"] {
        assert!(
            html.contains(&format!("id=\"{field}-error\"")),
            "{field}: {}",
            said(&html)
        );
    }
    assert!(
        html.contains("line 2, “abc”, is not") && !html.contains("u16"),
        "{}",
        said(&html)
    );
    // What the parser cannot read (a kind not chosen, a target in words,
    // no date) is marked with what the rules refuse (a metric that is no
    // slug), in one answer.
    let refused = send(
        &app,
        "/admin/standards/new",
        &admin,
        &carried,
        &[
            ("name", "Weekly demos"),
            ("metric", "Demos Booked"),
            ("kind", ""),
            ("target", "ten"),
            ("unit", "demos"),
            ("roles", "AE"),
            ("effective_from", ""),
        ],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text();
    for (field, words) in [
        ("metric", "is not a metric name"),
        ("kind", "Required: choose one."),
        ("target", "Enter the target as a number"),
        ("effective_from", "Required: pick a date."),
    ] {
        let at = html.find(&format!("id=\"{field}-error\">"));
        assert!(
            at.is_some_and(|at| html[at..]
                .split("</p>")
                .next()
                .is_some_and(|p| p.contains(words))),
            "{field} says {words:?}: {}",
            said(&html)
        );
    }
    record(
        &app,
        "/admin/standards/new",
        &admin,
        &[
            ("name", "Meetings booked"),
            ("metric", "meetings_booked"),
            ("kind", "quantity"),
            ("direction", "at_least"),
            ("target", "8"),
            ("unit", "meetings"),
            ("period", "week"),
            ("roles", "SDR\r\nAE"),
            ("effective_from", "2026-01-05"),
            ("ramp", "25%\r\n50\r\n75"),
        ],
    )
    .await;
    record(
        &app,
        &format!("/admin/standards/{}/revision", world.standard),
        &admin,
        &[("target", "1500"), ("effective_from", "2026-09-07")],
    )
    .await;
    record(
        &app,
        &format!("/admin/competencies/{}/retirement", world.competency),
        &admin,
        &[("reason", "Folded into Negotiation.")],
    )
    .await;
    record(
        &app,
        &format!("/admin/reps/{rep}/departure"),
        &admin,
        &[
            ("on", "2026-10-30"),
            ("reason", "Moved to another company."),
        ],
    )
    .await;
    for (event_type, n) in [
        ("TeamFormed", 3),
        ("LeaderAssigned", 4),
        ("TeamRenamed", 1),
        ("RepJoined", 2),
        ("RepRoleChanged", 1),
        ("RepMovedTeam", 1),
        ("CompetencyDefined", 2),
        ("StandardSet", 2),
        ("StandardRevised", 1),
        ("CompetencyRetired", 1),
        ("RepDeparted", 1),
    ] {
        assert_eq!(in_log(&app, event_type).await, n, "{event_type}");
    }
    let events = app
        .store
        .read_all(Checkpoint::START, 10_000)
        .await
        .expect("log");
    let set = events
        .iter()
        .rfind(|e| e.event_type == "StandardSet")
        .expect("the new standard");
    assert_eq!(set.payload["roles"], serde_json::json!(["SDR", "AE"]));
    let taken_on = events
        .iter()
        .find(|e| {
            e.event_type == "LeaderAssigned"
                && e.payload["leader_id"] == serde_json::json!(world.other_leader)
                && e.payload["team_id"] == serde_json::json!(team)
        })
        .expect("the existing leader on the new team");
    assert_eq!(
        taken_on.payload["leader_name"], "Lena Leader",
        "their name, as known"
    );
    assert_eq!(set.payload["ramp"][2]["percent_of_target"], 75);
    // A target reads with its thousands grouped.
    project(&app).await;
    let html = browser(&app, Method::GET, "/admin", &admin, None, &[])
        .await
        .text();
    assert!(
        html.contains("at least 1,500 calls a week, from 2026-09-07"),
        "{}",
        said(&html)
    );
    app.cleanup().await;
}

async fn a_rubric_with_levels_left_empty_marks_each_beside_itself_and_keeps_the_rest(kind: Kind) {
    let (app, _world, _rep) = serving_with_a_rep(kind).await;
    let admin = app.admin();
    let (_, carried) = open(&app, "/admin/competencies/new", &admin).await;
    let refused = send(
        &app,
        "/admin/competencies/new",
        &admin,
        &carried,
        &[
            ("name", "Prospecting"),
            ("description", "Finding the right accounts."),
            ("rubric[0]", "Calls whoever is next."),
            ("rubric[1]", "Uses a list."),
            ("rubric[2]", " "),
            ("rubric[3]", "Researches each account."),
            ("rubric[4]", ""),
        ],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text();
    assert!(html.contains("Researches each account."), "{}", said(&html));
    // Each level left empty is marked and says so right after itself, the
    // first of them focused; the levels written are not marked.
    for (k, n) in [(2, 3), (4, 5)] {
        let marked = format!(
            "name=\"rubric[{k}]\" rows=\"2\" aria-invalid=\"true\" \
             aria-describedby=\"rubric-{k}-error\""
        );
        assert!(html.contains(&marked), "{marked} in {}", said(&html));
        let error = format!(
            "</textarea><p class=\"field-error\" id=\"rubric-{k}-error\">Level {n} is empty"
        );
        assert!(html.contains(&error), "{error} in {}", said(&html));
    }
    assert_eq!(html.matches("aria-invalid=\"true\"").count(), 2);
    assert_eq!(html.matches(" autofocus").count(), 1);
    assert!(
        html.contains("aria-describedby=\"rubric-2-error\" autofocus"),
        "{}",
        said(&html)
    );
    assert_eq!(in_log(&app, "CompetencyDefined").await, 1);
    app.cleanup().await;
}

async fn only_an_admin_opens_the_set_up_pages(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let leader = app.leader_as(world.leader, &[world.team]);
    // The overview: an admin's, and an auditor's to read.
    for token in [leader.clone(), app.rep(rep)] {
        let page = browser(&app, Method::GET, "/admin", &token, None, &[]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
    }
    project(&app).await;
    let read = browser(&app, Method::GET, "/admin", &app.auditor(), None, &[]).await;
    assert_eq!(read.status, StatusCode::OK, "{}", said(&read.text()));
    let html = read.text();
    assert!(
        html.contains("You see this as an auditor: only an admin changes"),
        "{}",
        said(&html)
    );
    // What reps are measured against, and no way to change it.
    assert!(html.contains("Weekly calls"), "{}", said(&html));
    let main = &html[html.find("<main").expect("main")..];
    for form in [
        "href=\"/admin/teams/new\"",
        "href=\"/admin/reps/",
        "/revision\"",
        "<form",
    ] {
        assert!(!main.contains(form), "{form}: {}", said(&html));
    }
    let pages = [
        "/admin/teams/new".to_owned(),
        format!("/admin/teams/{}/leaders", world.team),
        "/admin/reps/new".to_owned(),
        format!("/admin/reps/{rep}/departure"),
        format!("/admin/competencies/{}/edit", world.competency),
        "/admin/standards/new".to_owned(),
        "/admin/measurements".to_owned(),
        "/admin/webhooks".to_owned(),
    ];
    for token in [leader.clone(), app.rep(rep), app.auditor()] {
        for path in &pages {
            let page = browser(&app, Method::GET, path, &token, None, &[]).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        }
    }
    // A hand-made form with the leader's own CSRF token: refused.
    let home = browser(&app, Method::GET, "/home", &leader, None, &[]).await;
    let csrf = hidden(&home.text(), "_csrf");
    let forged = browser(
        &app,
        Method::POST,
        "/admin/teams/new",
        &leader,
        Some(&[("_csrf", csrf.as_str()), ("name", "Shadow team")]),
        &[],
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(in_log(&app, "TeamFormed").await, 2);
    app.cleanup().await;
}

/// A multipart upload of `csv` as the admin's browser sends it.
async fn upload(app: &TestApp, token: &str, csrf: &str, csv: &str) -> crate::http::Resp {
    let boundary = "trellis-test-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"crm.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    );
    let cookie = app.session_cookie(token).await;
    app.send(build_request(
        Method::POST,
        "/admin/measurements",
        "",
        Some(&format!("multipart/form-data; boundary={boundary}")),
        body,
        &[("cookie", cookie.as_str()), ("host", "trellis.example")],
    ))
    .await
}

async fn an_admin_uploads_a_csv_and_nothing_is_recorded_until_they_confirm(kind: Kind) {
    let (app, world, first) = serving_with_a_rep(kind).await;
    let mut reps = vec![first];
    for _ in 0..3 {
        reps.push(app.join_rep(world.team).await);
    }
    project(&app).await;
    let admin = app.admin();
    let (html, _) = open(&app, "/admin/measurements", &admin).await;
    let csrf = hidden(&html, "_csrf");
    // 100 rows: 4 reps, 25 weeks each.
    let mut lines = vec!["rep,metric,period,value".to_owned()];
    for rep in &reps {
        for week in 2..27 {
            lines.push(format!("{rep},calls_made,2026-W{week:02},{}", 30 + week));
        }
    }
    let good = lines.join("\n");
    let mut bad = lines.clone();
    bad[5] = format!("{},calls_made,2026-W06,lots", reps[0]);
    // Two faults on one line: still one row to mend.
    bad[40] = format!("{},calls_made,2026-13,-40", reps[1]);
    let stranger = Uuid::now_v7();
    bad[77] = format!("{stranger},calls_made,2026-W03,40");
    // A likely typo: far above the standard's target of 50.
    bad[90] = format!("{},calls_made,2026-W16,4000000", reps[3]);
    // The file contradicts itself: line 102 gives another value for the
    // rep, metric and week of line 52 (32).
    bad.push(format!("{},calls_made,2026-W02,99", reps[2]));
    // An empty file is said on the upload form, to choose another.
    let empty = upload(&app, &admin, &csrf, "").await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty.text().contains("The file is empty") && empty.text().contains("id=\"file\""),
        "{}",
        said(&empty.text())
    );
    let refused = upload(&app, &admin, &csrf, &bad.join("\n")).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text();
    assert!(
        html.contains("5 rows cannot be recorded. Correct them in the file"),
        "{}",
        said(&html)
    );
    assert!(
        html.contains(
            "99 for the same rep, metric and period as line 52, which gives 32: keep the right one"
        ),
        "{}",
        said(&html)
    );
    assert!(
        html.contains("4000000 is more than 100 times the largest target"),
        "{}",
        said(&html)
    );
    assert!(
        html.contains(&format!("here is no rep {stranger}: check the id")),
        "{}",
        said(&html)
    );
    for line in [6, 41, 78, 91, 102] {
        assert!(
            html.contains(&format!("<td class=\"n\">{line}</td>")),
            "line {line}: {}",
            said(&html)
        );
    }
    assert_eq!(in_log(&app, "PerformanceMeasured").await, 0);

    let preview = upload(&app, &admin, &csrf, &good).await;
    assert_eq!(preview.status, StatusCode::OK, "{}", said(&preview.text()));
    let html = preview.text();
    assert!(html.contains("100 rows for 4 reps"), "{}", said(&html));
    // The preview names the reps, not their ids.
    assert!(html.contains("<td>Riley Rep</td>"), "{}", said(&html));
    assert_eq!(
        in_log(&app, "PerformanceMeasured").await,
        0,
        "a preview records nothing"
    );
    let carried = inputs(&html);
    for _ in 0..2 {
        let done = send(&app, "/admin/measurements/record", &admin, &carried, &[]).await;
        assert_eq!(done.status, StatusCode::OK, "{}", said(&done.text()));
        assert!(
            done.text().contains("Recorded: 100 rows"),
            "{}",
            said(&done.text())
        );
    }
    assert_eq!(
        in_log(&app, "PerformanceMeasured").await,
        100,
        "confirmed twice, recorded once"
    );
    // The file again with one value changed: before anything is recorded,
    // the preview names the row that would replace a value, with both.
    let mut changed = lines.clone();
    changed[30] = format!("{},calls_made,2026-W06,77", reps[1]);
    let preview = upload(&app, &admin, &csrf, &changed.join("\n")).await;
    assert_eq!(preview.status, StatusCode::OK, "{}", said(&preview.text()));
    let html = preview.text();
    assert!(
        html.contains("1 row replaces a value recorded before"),
        "{}",
        said(&html)
    );
    assert!(
        html.contains(
            "<td class=\"n\" data-label=\"Line\">31</td><td data-label=\"Rep\">Riley Rep</td>\
             <td data-label=\"Metric\">calls_made</td><td data-label=\"Period\">2026-W06</td>\
             <td class=\"n\" data-label=\"Recorded\">36</td><td class=\"n\" data-label=\"New\">77</td>"
        ),
        "{}",
        said(&html)
    );
    assert_eq!(
        in_log(&app, "FactCorrected").await,
        0,
        "a preview records nothing"
    );
    app.cleanup().await;
}

/// A CRM export names its reps: the upload takes the name the people list
/// gives, sends it as that rep's id, and says beside its line a name that
/// is no rep's, or more than one rep's, in the same answer as every other
/// fault. Nothing is recorded until the file is right and confirmed.
async fn an_admin_uploads_a_csv_that_names_its_reps(kind: Kind) {
    let (app, world, riley) = serving_with_a_rep(kind).await;
    let admin = app.admin();
    let hire = async |name: &str| {
        app.post_json(
            "/v1/reps",
            &admin,
            &serde_json::json!({"name": name, "role": "SDR", "team_id": world.team,
                "start_date": crate::http::START_DATE}),
        )
        .await
        .expect(201)
        .id()
    };
    let aisha = hire("Aisha Khan").await;
    hire("Sam Lee").await;
    hire("Sam Lee").await;
    project(&app).await;
    let (html, _) = open(&app, "/admin/measurements", &admin).await;
    assert!(
        html.contains("the rep's name or id, as the people list gives them"),
        "{}",
        said(&html)
    );
    let csrf = hidden(&html, "_csrf");
    let refused = upload(
        &app,
        &admin,
        &csrf,
        &format!(
            "Rep,metric,period,value\r\naisha khan,calls_made,2026-W05,40\r\n\
             Sam Lee,calls_made,2026-W05,41\r\nJon Smith,calls_made,2026-W05,42\r\n\
             {riley},calls_made,2026-W05,lots"
        ),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text();
    assert!(
        html.contains("3 rows cannot be recorded"),
        "{}",
        said(&html)
    );
    for row in [
        "<tr><td class=\"n\">3</td><td>rep</td><td>2 reps are named “Sam Lee”: write the id \
         of the one you mean, from the people list</td></tr>",
        "<tr><td class=\"n\">4</td><td>rep</td><td>No rep is named “Jon Smith”: write the \
         name as the people list gives it, or the rep&#39;s id from there</td></tr>",
        "<tr><td class=\"n\">5</td><td>value</td><td>&quot;lots&quot; is not a number (write \
         12 or 12.5)</td></tr>",
    ] {
        assert!(html.contains(row), "{row} in {}", said(&html));
    }
    assert!(!html.contains("is not a rep id"), "{}", said(&html));

    let preview = upload(
        &app,
        &admin,
        &csrf,
        &format!(
            "Rep,metric,period,value\r\naisha  khan,calls_made,2026-W05,40\r\n\
             {riley},calls_made,2026-W05,41"
        ),
    )
    .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", said(&preview.text()));
    let html = preview.text();
    assert!(html.contains("2 rows for 2 reps"), "{}", said(&html));
    assert!(html.contains("<td>Aisha Khan</td>"), "{}", said(&html));
    assert_eq!(in_log(&app, "PerformanceMeasured").await, 0);
    let carried = inputs(&html);
    let done = send(&app, "/admin/measurements/record", &admin, &carried, &[]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", said(&done.text()));
    assert!(
        done.text().contains("Recorded: 2 rows"),
        "{}",
        said(&done.text())
    );
    assert_eq!(in_log(&app, "PerformanceMeasured").await, 2);
    // Recorded as Aisha Khan's: her value again, changed, by her id now,
    // replaces the one the name recorded.
    let again = upload(
        &app,
        &admin,
        &csrf,
        &format!("rep,metric,period,value\n{aisha},calls_made,2026-W05,44"),
    )
    .await;
    let html = again.text();
    assert!(
        html.contains("1 row replaces a value recorded before")
            && html.contains("<td data-label=\"Rep\">Aisha Khan</td>"),
        "{}",
        said(&html)
    );
    app.cleanup().await;
}

async fn an_admin_adds_a_webhook_sees_its_secret_once_and_deletes_it(kind: Kind) {
    let (app, world, _rep) = serving_with_a_rep(kind).await;
    let admin = app.admin();
    let (html, carried) = open(&app, "/admin/webhooks", &admin).await;
    assert!(html.contains("No subscription yet"), "{}", said(&html));
    let refused = send(
        &app,
        "/admin/webhooks",
        &admin,
        &carried,
        &[("url", "ftp://hooks.example.com/x"), ("category.rep", "on")],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text();
    assert!(html.contains("id=\"url-error\""), "{}", said(&html));
    assert!(
        html.contains("value=\"ftp://hooks.example.com/x\""),
        "{}",
        said(&html)
    );
    assert!(
        html.contains("name=\"category.rep\" value=\"on\" checked"),
        "{}",
        said(&html)
    );

    let url = "https://hooks.example.com/trellis";
    let added = send(
        &app,
        "/admin/webhooks",
        &admin,
        &carried,
        &[
            ("url", url),
            ("event_types", "FeedbackGiven\r\n"),
            ("category.rep", "on"),
        ],
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", said(&added.text()));
    assert!(
        added.text().contains("whsec_"),
        "the secret, once: {}",
        said(&added.text())
    );
    assert_eq!(
        added.header("cache-control"),
        Some("no-store"),
        "no cache keeps the secret"
    );
    let listed = browser(&app, Method::GET, "/admin/webhooks", &admin, None, &[]).await;
    let html = listed.text();
    assert!(
        html.contains(url) && html.contains("FeedbackGiven (of: rep)"),
        "{}",
        said(&html)
    );
    assert!(!html.contains("whsec_"), "the secret is shown only once");
    let id = new_id_after(&html, "/admin/webhooks/", &[]);
    let detail = browser(
        &app,
        Method::GET,
        &format!("/admin/webhooks/{id}"),
        &admin,
        None,
        &[],
    )
    .await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(
        detail.text().contains("No delivery here yet"),
        "{}",
        said(&detail.text())
    );
    let csrf = hidden(&detail.text(), "_csrf");
    for verb in ["pause", "resume"] {
        let r = browser(
            &app,
            Method::POST,
            &format!("/admin/webhooks/{id}/{verb}"),
            &admin,
            Some(&[("_csrf", csrf.as_str())]),
            &[],
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::SEE_OTHER,
            "{verb}: {}",
            said(&r.text())
        );
        let page = browser(
            &app,
            Method::GET,
            &format!("/admin/webhooks/{id}"),
            &admin,
            None,
            &[],
        )
        .await;
        let paused = page.text().contains("<strong>Paused</strong>");
        assert_eq!(paused, verb == "pause", "{verb}: {}", said(&page.text()));
    }
    let unknown = browser(
        &app,
        Method::POST,
        &format!("/admin/webhooks/{id}/deliveries/{}/replay", Uuid::now_v7()),
        &admin,
        Some(&[("_csrf", csrf.as_str())]),
        &[],
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let leader = app.leader_as(world.leader, &[world.team]);
    let forbidden = browser(&app, Method::GET, "/admin/webhooks", &leader, None, &[]).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let deleted = browser(
        &app,
        Method::POST,
        &format!("/admin/webhooks/{id}/delete"),
        &admin,
        Some(&[("_csrf", csrf.as_str())]),
        &[],
    )
    .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    let listed = browser(&app, Method::GET, "/admin/webhooks", &admin, None, &[]).await;
    assert!(
        !listed.text().contains(url),
        "deleted: {}",
        said(&listed.text())
    );
    app.cleanup().await;
}

/// A subscription whose receiver answered `410 Gone` is disabled: the list
/// tags it and says why in words (a phone shows no tooltip), its page says
/// why and offers to resume it, and resuming enables it again.
async fn a_webhook_disabled_by_its_receiver_shows_why_and_can_be_resumed(kind: Kind) {
    use trellis_webhooks::store::{AttemptOutcome, NewDelivery};
    use trellis_webhooks::{Attempt, DeliveryStatus, GONE_REASON};

    let (app, _world, _rep) = serving_with_a_rep(kind).await;
    let admin = app.admin();
    let url = "https://hooks.example.com/gone";
    let created = app
        .post_json("/v1/webhooks", &admin, &serde_json::json!({ "url": url }))
        .await;
    created.expect(201);
    let id = created.id();
    // The sender's verdict on a 410, recorded as it records it.
    let hooks = crate::http::webhooks(&app.backend, crate::http::local_receivers()).await;
    let store = hooks.store();
    let now = chrono::Utc::now();
    let queued = NewDelivery {
        id: Uuid::now_v7(),
        subscription_id: id,
        event_id: Uuid::now_v7(),
        event_type: "TeamFormed".to_owned(),
        stream_id: format!("team-{}", Uuid::now_v7()),
        global_position: 1,
        body: "{}".to_owned(),
        traceparent: None,
        created_at: now,
    };
    assert_eq!(store.enqueue(&[queued]).await.expect("queued"), 1);
    let claimed = store
        .claim_due(now, now + chrono::Duration::seconds(60), 1)
        .await
        .expect("claimed");
    let gone = AttemptOutcome {
        attempt: Attempt {
            attempted_at: now,
            status_code: Some(410),
            error: Some("the receiver answered 410".to_owned()),
            duration_ms: 1,
        },
        status: DeliveryStatus::Dead,
        next_attempt_at: now,
        disable: Some(GONE_REASON.to_owned()),
    };
    store
        .record_attempt(claimed[0].id, &gone)
        .await
        .expect("recorded");

    let listed = browser(&app, Method::GET, "/admin/webhooks", &admin, None, &[]).await;
    let html = listed.text();
    assert!(
        html.contains("<span class=\"tag overdue\">disabled</span>"),
        "{}",
        said(&html)
    );
    assert!(
        html.contains(&format!(
            "{GONE_REASON}. Nothing is sent until it is resumed."
        )),
        "the reason in words: {}",
        said(&html)
    );
    let detail_path = format!("/admin/webhooks/{id}");
    let detail = browser(&app, Method::GET, &detail_path, &admin, None, &[]).await;
    let html = detail.text();
    assert!(
        html.contains("<strong>Disabled</strong> since "),
        "{}",
        said(&html)
    );
    assert!(html.contains(GONE_REASON), "{}", said(&html));
    // Its deliveries become labelled lines on a phone, the last answer
    // among them (it was cut off at the right).
    assert!(
        html.contains("<table class=\"stack\">")
            && html.contains("<td data-label=\"Last answer\">HTTP 410</td>"),
        "{}",
        said(&html)
    );
    // When each delivery was made reads as the pages say times, not as
    // the API writes them.
    let made = html
        .split_once("</th><td data-label=\"Status\">")
        .and_then(|(row, _)| row.rsplit_once("<small>"))
        .map(|(_, made)| made.trim_end_matches("</small>"))
        .unwrap_or_default();
    assert!(
        chrono::NaiveDateTime::parse_from_str(made, "%-d %b %Y, %H:%M UTC").is_ok(),
        "{made:?} in {}",
        said(&html)
    );
    assert!(
        html.contains(&format!("action=\"/admin/webhooks/{id}/resume\"")),
        "{}",
        said(&html)
    );
    assert!(html.contains(">Resume</button>"), "{}", said(&html));
    assert!(!html.contains(">Pause</button>"), "{}", said(&html));

    let csrf = hidden(&html, "_csrf");
    let resumed = browser(
        &app,
        Method::POST,
        &format!("/admin/webhooks/{id}/resume"),
        &admin,
        Some(&[("_csrf", csrf.as_str())]),
        &[],
    )
    .await;
    assert_eq!(
        resumed.status,
        StatusCode::SEE_OTHER,
        "{}",
        said(&resumed.text())
    );
    let html = browser(&app, Method::GET, &detail_path, &admin, None, &[])
        .await
        .text();
    assert!(!html.contains("Disabled"), "{}", said(&html));
    assert!(html.contains(">Pause</button>"), "{}", said(&html));
    let html = browser(&app, Method::GET, "/admin/webhooks", &admin, None, &[])
        .await
        .text();
    assert!(!html.contains(">disabled</span>"), "{}", said(&html));
    drop(hooks);
    app.cleanup().await;
}

crate::http::on_each_backend!(
    multi_thread: an_admin_sets_up_an_organisation_through_the_forms,
    a_set_up_form_says_it_saved_or_that_nothing_changed,
    an_admin_corrects_a_rep_s_name,
    hiring_a_rep_whose_name_is_taken_asks_first,
    an_admin_adds_a_webhook_sees_its_secret_once_and_deletes_it,
    a_webhook_disabled_by_its_receiver_shows_why_and_can_be_resumed,
    a_rubric_with_levels_left_empty_marks_each_beside_itself_and_keeps_the_rest,
    only_an_admin_opens_the_set_up_pages,
    an_admin_uploads_a_csv_and_nothing_is_recorded_until_they_confirm,
    an_admin_uploads_a_csv_that_names_its_reps,
);

/// A set-up form that records says so under the heading of what it
/// changed; one that finds it so already (a rep's role "changed" to the
/// role they have) says nothing changed, not that it saved.
async fn a_set_up_form_says_it_saved_or_that_nothing_changed(kind: Kind) {
    let (app, _world, rep) = serving_with_a_rep(kind).await;
    let admin = app.admin();
    let path = format!("/admin/reps/{rep}/role");
    for (role, location, notice) in [
        (
            "AE",
            "/admin?saved=people#people",
            "<h2 id=\"people\">People</h2><p class=\"notice ok\" role=\"status\">Saved.",
        ),
        (
            "AE",
            "/admin?unchanged=people#people",
            "<h2 id=\"people\">People</h2><p class=\"notice\" role=\"status\">Nothing changed: \
             it was already so, and nothing was recorded.</p>",
        ),
    ] {
        let (_, carried) = open(&app, &path, &admin).await;
        let sent = send(
            &app,
            &path,
            &admin,
            &carried,
            &[("role", role), ("on", "2026-03-02")],
        )
        .await;
        assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", said(&sent.text()));
        assert_eq!(sent.header("location"), Some(location));
        let page = crate::forms::shown(&app, location, &admin).await;
        assert!(page.contains(notice), "{notice} in {}", said(&page));
    }
    assert_eq!(in_log(&app, "RepRoleChanged").await, 1);
    app.cleanup().await;
}

/// Hiring a rep under a name the people list has asks first, recording
/// nothing: the same person entered twice is caught, and someone else of
/// that name is hired when the form is sent again as it came back.
async fn hiring_a_rep_whose_name_is_taken_asks_first(kind: Kind) {
    let (app, world, _riley) = serving_with_a_rep(kind).await;
    project(&app).await;
    let admin = app.admin();
    let team = world.team.to_string();
    let (_, carried) = open(&app, "/admin/reps/new", &admin).await;
    let typed = [
        ("name", " riley  rep "),
        ("role", "AE"),
        ("team_id", team.as_str()),
        ("start_date", "2026-04-01"),
    ];
    let asked = send(&app, "/admin/reps/new", &admin, &carried, &typed).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", said(&asked.text()));
    let html = asked.text();
    assert!(
        html.contains(
            "<strong>Nothing was recorded.</strong> The people list already has a rep named \
             Riley Rep: SDR, who started on 2026-01-05. If that is this person, cancel."
        ),
        "{}",
        said(&html)
    );
    assert!(
        html.contains("value=\" riley  rep \""),
        "what was typed stays: {}",
        said(&html)
    );
    assert_eq!(in_log(&app, "RepJoined").await, 1);
    let again = send(&app, "/admin/reps/new", &admin, &inputs(&html), &[]).await;
    assert_eq!(
        again.status,
        StatusCode::SEE_OTHER,
        "{}",
        said(&again.text())
    );
    assert_eq!(in_log(&app, "RepJoined").await, 2);
    // A name no rep has is hired at once.
    let (_, carried) = open(&app, "/admin/reps/new", &admin).await;
    let fresh = [
        ("name", "Mei Lin"),
        ("role", "AE"),
        ("team_id", team.as_str()),
        ("start_date", "2026-04-01"),
    ];
    let hired = send(&app, "/admin/reps/new", &admin, &carried, &fresh).await;
    assert_eq!(
        hired.status,
        StatusCode::SEE_OTHER,
        "{}",
        said(&hired.text())
    );
    assert_eq!(in_log(&app, "RepJoined").await, 3);
    app.cleanup().await;
}

/// A name mistyped at hire is corrected from the people list: the form
/// starts from the name as it is, an empty name is said beside the field
/// and a name another rep has is asked about, each with nothing recorded,
/// and the list shows the new name once saved.
async fn an_admin_corrects_a_rep_s_name(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let admin = app.admin();
    let list = crate::forms::shown(&app, "/admin", &admin).await;
    let path = format!("/admin/reps/{rep}/name");
    assert!(
        list.contains(&format!("<a href=\"{path}\">Rename</a>")),
        "{}",
        said(&list)
    );
    let (form, carried) = open(&app, &path, &admin).await;
    assert!(
        form.contains("Now called Riley Rep.") && form.contains("value=\"Riley Rep\""),
        "{}",
        said(&form)
    );
    let empty = send(&app, &path, &admin, &carried, &[("name", "  ")]).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty.text().contains("id=\"name-error\"")
            && empty.text().contains("The name is empty: fill it in."),
        "{}",
        said(&empty.text())
    );
    // A name another rep has asks first.
    app.post_json(
        "/v1/reps",
        &admin,
        &serde_json::json!({"name": "Mei Lin", "role": "AE", "team_id": world.team,
            "start_date": crate::http::START_DATE}),
    )
    .await
    .expect(201);
    project(&app).await;
    let asked = send(&app, &path, &admin, &carried, &[("name", "mei lin")]).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", said(&asked.text()));
    assert!(
        asked.text().contains(
            "The people list already has a rep named Mei Lin: AE, who started on 2026-01-05. \
             If that is this person, cancel. If this is someone else, send the form again to \
             give them this name"
        ),
        "{}",
        said(&asked.text())
    );
    assert_eq!(in_log(&app, "RepRenamed").await, 0);
    // Sent again as it came back, it records: two reps may share a name.
    let confirmed = send(&app, &path, &admin, &inputs(&asked.text()), &[]).await;
    assert_eq!(
        confirmed.status,
        StatusCode::SEE_OTHER,
        "{}",
        said(&confirmed.text())
    );
    assert_eq!(in_log(&app, "RepRenamed").await, 1);
    // The form opened anew: the one sent carried its own idempotency key.
    let (_, carried) = open(&app, &path, &admin).await;
    let sent = send(
        &app,
        &path,
        &admin,
        &carried,
        &[("name", "Riley Rep-Okafor")],
    )
    .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", said(&sent.text()));
    assert_eq!(sent.header("location"), Some("/admin?saved=people#people"));
    project(&app).await;
    let list = crate::forms::shown(&app, "/admin?saved=people#people", &admin).await;
    assert!(
        list.contains(&format!("<a href=\"/reps/{rep}\">Riley Rep-Okafor</a>")),
        "{}",
        said(&list)
    );
    assert_eq!(in_log(&app, "RepRenamed").await, 2);
    // The rep's page as of a day before the rename names them as they
    // were named then.
    let then = crate::forms::shown(&app, &format!("/reps/{rep}?as_of=2026-01-20"), &admin).await;
    assert!(
        then.contains("<h1>Riley Rep</h1>") && !then.contains("Riley Rep-Okafor"),
        "{}",
        said(&then)
    );
    app.cleanup().await;
}
