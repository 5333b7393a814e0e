//! Signing in as people expect it: sessions kept on the server (ended by
//! signing out, by idling, at their absolute end, everywhere at once, and
//! surviving a restart), what a leader sees following the teams they lead
//! now, one-time links, and service accounts' tokens.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use chrono::Utc;
use trellis_access::store::Account;
use trellis_access::{AccessConfig, NewAccount};
use trellis_http::auth::Role;
use trellis_tests::Kind;
use uuid::Uuid;

use crate::forms::{hidden, project, urlencode};
use crate::http::{Resp, TestApp, build_request, on_each_backend};

const HOST: &str = "trellis.example";

/// A browser's GET with a session cookie.
async fn open(app: &TestApp, cookie: &str, path: &str) -> Resp {
    app.send(build_request(
        Method::GET,
        path,
        "",
        None,
        Vec::new(),
        &[("cookie", cookie), ("host", HOST)],
    ))
    .await
}

/// A browser's form POST from this site, with a cookie when given.
async fn post(app: &TestApp, cookie: Option<&str>, path: &str, fields: &[(&str, &str)]) -> Resp {
    let body = urlencode(fields);
    let mut headers = vec![("host", HOST), ("origin", "http://trellis.example")];
    if let Some(cookie) = cookie {
        headers.push(("cookie", cookie));
    }
    app.send(build_request(
        Method::POST,
        path,
        "",
        Some("application/x-www-form-urlencoded"),
        body,
        &headers,
    ))
    .await
}

/// An API GET with a bearer token.
async fn get_as(app: &TestApp, path: &str, token: &str) -> Resp {
    app.request(Method::GET, path, token, None, Vec::new(), &[])
        .await
}

/// The `trellis_session=…` pair a response sets.
fn session_cookie(response: &Resp) -> String {
    response
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("trellis_session=") && !c.starts_with("trellis_session=;"))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no session cookie: {:?}", response.headers))
        .to_owned()
}

async fn account(app: &TestApp, role: Role, person: Option<Uuid>, name: &str) -> Account {
    let new = NewAccount {
        role,
        person,
        name: Some(name.to_owned()),
        email: None,
        oidc_subject: None,
    };
    app.access()
        .add_account(new, "test", Utc::now())
        .await
        .expect("the account")
}

/// What `POST /sign-in` answers with a fresh one-time link for `account`.
async fn use_new_link(app: &TestApp, account: &Account) -> Resp {
    let (token, _) = app
        .access()
        .create_link(account.id, None, "test", Utc::now())
        .await
        .expect("a link");
    post(app, None, "/sign-in", &[("link", &token)]).await
}

/// Signs `account` in with a fresh one-time link; the session cookie.
async fn sign_in(app: &TestApp, account: &Account) -> String {
    let signed_in = use_new_link(app, account).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.text()
    );
    session_cookie(&signed_in)
}

/// The CSRF token the shell's sign-out form carries for this session.
async fn csrf(app: &TestApp, cookie: &str) -> String {
    let home = open(app, cookie, "/home").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.text());
    hidden(&home.text(), "_csrf")
}

async fn a_signed_out_session_cannot_be_used_again(kind: Kind) {
    let app = TestApp::spawn_serving(kind).await;
    let admin = account(&app, Role::Admin, None, "Ada Admin").await;
    let cookie = sign_in(&app, &admin).await;
    assert_eq!(open(&app, &cookie, "/admin").await.status, StatusCode::OK);

    let token = csrf(&app, &cookie).await;
    let out = post(&app, Some(&cookie), "/logout", &[("_csrf", &token)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0")),
        "the browser forgets the cookie"
    );
    // The sign-in page it lands on says so.
    let landed = out.header("location").expect("a location").to_owned();
    assert_eq!(landed, "/?signed-out=here");
    let said = open(&app, "", &landed).await.text();
    assert!(
        said.contains("<p class=\"notice\" role=\"status\">You are signed out on this device.</p>"),
        "{said}"
    );
    // A copy of the cookie kept elsewhere opens nothing: the session ended
    // on the server.
    let again = open(&app, &cookie, "/admin").await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(again.text().contains("signed out"), "{}", again.text());
    app.cleanup().await;
}

async fn a_session_survives_a_restart_of_the_server(kind: Kind) {
    let mut app = TestApp::spawn_serving(kind).await;
    let auditor = account(&app, Role::Auditor, None, "Aud Itor").await;
    let cookie = sign_in(&app, &auditor).await;
    assert_eq!(open(&app, &cookie, "/home").await.status, StatusCode::OK);
    app.restart_serving(AccessConfig::default()).await;
    let after = open(&app, &cookie, "/home").await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text());
    app.cleanup().await;
}

async fn a_one_time_link_works_once_and_only_in_its_lifetime(kind: Kind) {
    let app = TestApp::spawn_serving(kind).await;
    let admin = account(&app, Role::Admin, None, "Ada Admin").await;
    let (token, link) = app
        .access()
        .create_link(admin.id, None, "test", Utc::now())
        .await
        .expect("a link");
    // Opening the link shows a button; it does not use the link (a mail
    // scanner following links does not spend it).
    let shown = app.get(&format!("/sign-in?link={token}")).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.header("cache-control"), Some("no-store"));
    let first = post(&app, None, "/sign-in", &[("link", &token)]).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.text());
    let second = post(&app, None, "/sign-in", &[("link", &token)]).await;
    assert_eq!(second.status, StatusCode::UNAUTHORIZED);
    assert!(second.text().contains("used already"), "{}", second.text());
    assert!(
        second.header("set-cookie").is_none(),
        "no session the second time"
    );
    // Only the hash is stored.
    assert_ne!(link.token_hash, token);
    assert_eq!(link.token_hash, trellis_access::hash_secret(&token));

    let (short, _) = app
        .access()
        .create_link(
            admin.id,
            Some(chrono::Duration::seconds(1)),
            "test",
            Utc::now(),
        )
        .await
        .expect("a short link");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let late = post(&app, None, "/sign-in", &[("link", &short)]).await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED);
    assert!(late.text().contains("expired"), "{}", late.text());

    for empty in [&[("link", "  ")][..], &[("next", "/home")][..]] {
        let incomplete = post(&app, None, "/sign-in", empty).await;
        assert_eq!(incomplete.status, StatusCode::BAD_REQUEST, "{empty:?}");
        assert!(
            incomplete.text().contains("incomplete"),
            "{}",
            incomplete.text()
        );
    }
    let made_up = post(&app, None, "/sign-in", &[("link", "not-a-link")]).await;
    assert_eq!(made_up.status, StatusCode::UNAUTHORIZED);
    assert!(made_up.text().contains("not one Trellis made"));
    app.cleanup().await;
}

async fn a_leader_moved_to_another_team_sees_it_at_once(kind: Kind) {
    let app = TestApp::spawn_serving(kind).await;
    let world = app.world().await;
    project(&app).await;
    let leader = account(&app, Role::Leader, Some(world.leader), "").await;
    assert_eq!(
        leader.name, "Lena Leader",
        "a leader's name comes from the log"
    );
    let cookie = sign_in(&app, &leader).await;
    let other = format!("/teams/{}", world.other_team);
    assert_eq!(
        open(&app, &cookie, &other).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        open(&app, &cookie, &format!("/teams/{}", world.team))
            .await
            .status,
        StatusCode::OK
    );

    app.assign_leader(world.other_team, world.leader).await;
    project(&app).await;
    // The same session: what it may see is worked out from who they are now.
    let now = open(&app, &cookie, &other).await;
    assert_eq!(now.status, StatusCode::OK, "{}", now.text());
    app.cleanup().await;
}

async fn a_service_token_works_with_its_grants_only_until_it_is_revoked(kind: Kind) {
    let app = TestApp::spawn_serving(kind).await;
    let made = app
        .access()
        .create_service_account("CRM sync", &["reads:read".to_owned()], "test", Utc::now())
        .await
        .expect("a service account");
    assert!(made.token.starts_with("trs_"), "{}", made.token);
    // Stored as a hash, never as the token.
    let stored = app
        .access()
        .service_accounts()
        .await
        .expect("listed")
        .into_iter()
        .find(|s| s.id == made.account.id)
        .expect("stored");
    assert_ne!(stored.token_hash, made.token);
    assert!(!stored.token_hash.contains(&made.token[4..]));
    assert_eq!(stored.token_hash, trellis_access::hash_secret(&made.token));

    let teams = get_as(&app, "/v1/teams", &made.token).await;
    assert_eq!(teams.status, StatusCode::OK, "{}", teams.text());
    // Its grant is to read: it records nothing.
    let team = app
        .post_json(
            "/v1/teams",
            &made.token,
            &serde_json::json!({ "name": "Sneaky" }),
        )
        .await;
    assert_eq!(team.status, StatusCode::FORBIDDEN, "{}", team.text());

    assert!(
        app.access()
            .revoke_service_account(made.account.id, "test", Utc::now())
            .await
            .expect("revoked")
    );
    let refused = get_as(&app, "/v1/teams", &made.token).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.text().contains("revoked"), "{}", refused.text());
    let unknown = get_as(&app, "/v1/teams", "trs_made-up").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

/// A rep renamed after their sign-in account was made is named anew in
/// the admin's list of accounts and in the page's header at their next
/// page: the account had copied the old name.
async fn a_rep_renamed_is_named_anew_by_their_sign_in(kind: Kind) {
    let app = TestApp::spawn_serving(kind).await;
    let world = app.world().await;
    let rep = app.join_rep(world.team).await;
    project(&app).await;
    let made = account(&app, Role::Rep, Some(rep), "").await;
    assert_eq!(made.name, "Riley Rep");
    let cookie = sign_in(&app, &made).await;
    let own = format!("/reps/{rep}");
    let page = open(&app, &cookie, &own).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(page.text().contains("Riley Rep (rep)"), "{}", page.text());
    app.put_json(
        &format!("/v1/reps/{rep}/name"),
        &app.admin(),
        &serde_json::json!({ "name": "Riley Okafor" }),
    )
    .await
    .expect(200);
    project(&app).await;
    // The rep's next page names them anew, and keeps the name in the
    // account (read as stored, no listing between).
    let page = open(&app, &cookie, &own).await;
    assert!(
        page.text().contains("Riley Okafor (rep)") && !page.text().contains("Riley Rep"),
        "{}",
        page.text()
    );
    let stored = app.access().account(made.id).await.expect("the account");
    assert_eq!(stored.name, "Riley Okafor");
    // Renamed again: the admin's list names them anew before the rep
    // opens a page, and an access stopped meanwhile stays stopped.
    app.put_json(
        &format!("/v1/reps/{rep}/name"),
        &app.admin(),
        &serde_json::json!({ "name": "Riley Okafor-Lind" }),
    )
    .await
    .expect(200);
    project(&app).await;
    app.access()
        .set_disabled(made.id, true, "test", Utc::now())
        .await
        .expect("access stopped");
    let listed = app.access().accounts().await.expect("the accounts");
    let listed = listed
        .iter()
        .find(|a| a.id == made.id)
        .expect("the account");
    assert_eq!(listed.name, "Riley Okafor-Lind");
    let stored = app.access().account(made.id).await.expect("the account");
    assert_eq!(stored.name, "Riley Okafor-Lind");
    assert!(stored.disabled_at.is_some(), "the rename undid nothing");
    app.cleanup().await;
}

on_each_backend!(
    multi_thread: a_signed_out_session_cannot_be_used_again,
    a_rep_renamed_is_named_anew_by_their_sign_in,
    a_session_survives_a_restart_of_the_server,
    a_one_time_link_works_once_and_only_in_its_lifetime,
    a_leader_moved_to_another_team_sees_it_at_once,
    a_service_token_works_with_its_grants_only_until_it_is_revoked,
);

/// Idle and absolute timeouts, on short durations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_ends_and_so_does_one_past_its_absolute_end() {
    let idle = AccessConfig {
        idle: chrono::Duration::seconds(1),
        ..AccessConfig::default()
    };
    let app = TestApp::spawn_serving_with(Kind::Sqlite, idle).await;
    let admin = account(&app, Role::Admin, None, "Ada Admin").await;
    let cookie = sign_in(&app, &admin).await;
    assert_eq!(open(&app, &cookie, "/home").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let idled = open(&app, &cookie, "/home").await;
    assert_eq!(idled.status, StatusCode::UNAUTHORIZED);
    assert!(
        idled.text().contains("without activity"),
        "{}",
        idled.text()
    );
    app.cleanup().await;

    let short = AccessConfig {
        absolute: chrono::Duration::seconds(2),
        ..AccessConfig::default()
    };
    let app = TestApp::spawn_serving_with(Kind::Sqlite, short).await;
    let admin = account(&app, Role::Admin, None, "Ada Admin").await;
    let cookie = sign_in(&app, &admin).await;
    // Active all along, and still it ends.
    for _ in 0..4 {
        assert_eq!(open(&app, &cookie, "/home").await.status, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ended = open(&app, &cookie, "/home").await;
    assert_eq!(ended.status, StatusCode::UNAUTHORIZED);
    assert!(
        ended.text().contains("at most 2 seconds"),
        "{}",
        ended.text()
    );
    app.cleanup().await;
}

/// Two browsers of one person: "sign out everywhere" in one ends both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_everywhere_ends_the_sessions_of_every_browser() {
    let app = TestApp::spawn_serving(Kind::Postgres).await;
    let admin = account(&app, Role::Admin, None, "Ada Admin").await;
    let other = account(&app, Role::Auditor, None, "Aud Itor").await;
    let (laptop, phone) = (sign_in(&app, &admin).await, sign_in(&app, &admin).await);
    let bystander = sign_in(&app, &other).await;
    let token = csrf(&app, &phone).await;
    let out = post(
        &app,
        Some(&phone),
        "/logout/everywhere",
        &[("_csrf", &token)],
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.header("location"), Some("/?signed-out=everywhere"));
    for cookie in [&laptop, &phone] {
        assert_eq!(
            open(&app, cookie, "/home").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        open(&app, &bystander, "/home").await.status,
        StatusCode::OK,
        "another person's session runs on"
    );
    // Without the CSRF token nothing ends.
    let laptop = sign_in(&app, &admin).await;
    let forged = post(&app, Some(&laptop), "/logout/everywhere", &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(open(&app, &laptop, "/home").await.status, StatusCode::OK);
    app.cleanup().await;
}

/// A sign-in another site starts is refused (login CSRF), and so is a link
/// posted from another origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_link_posted_from_another_site_is_refused() {
    let app = TestApp::spawn_serving(Kind::Sqlite).await;
    let admin = account(&app, Role::Admin, None, "Ada Admin").await;
    let (token, _) = app
        .access()
        .create_link(admin.id, None, "test", Utc::now())
        .await
        .expect("a link");
    let body = format!("link={token}");
    let forged = app
        .send(build_request(
            Method::POST,
            "/sign-in",
            "",
            Some("application/x-www-form-urlencoded"),
            body,
            &[("host", HOST), ("origin", "https://evil.example")],
        ))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.header("set-cookie").is_none());
    // Not spent by the forged attempt: the person can still use it.
    let mine = post(&app, None, "/sign-in", &[("link", &token)]).await;
    assert_eq!(mine.status, StatusCode::SEE_OTHER);
    app.cleanup().await;
}

/// The grants an admin may give a service account are exactly those the
/// read API and the write policy check.
#[test]
fn the_grants_offered_are_the_grants_the_apis_check() {
    use trellis_commands::policy::Scope;
    // A new scope stops this compiling until it is listed below.
    let _every_scope_listed = |scope: Scope| match scope {
        Scope::Teams
        | Scope::Framework
        | Scope::Reps
        | Scope::Coaching
        | Scope::Measurements
        | Scope::Support
        | Scope::Plans
        | Scope::Corrections
        | Scope::Reviews => (),
    };
    let offered: std::collections::BTreeSet<&str> =
        trellis_access::GRANTS.iter().map(|(g, _)| *g).collect();
    let mut checked: std::collections::BTreeSet<&str> = [
        Scope::Teams,
        Scope::Framework,
        Scope::Reps,
        Scope::Coaching,
        Scope::Measurements,
        Scope::Support,
        Scope::Plans,
        Scope::Corrections,
        Scope::Reviews,
    ]
    .into_iter()
    .map(Scope::grant)
    .collect();
    checked.insert(trellis_queries::access::READS_GRANT);
    assert_eq!(offered, checked);
}

/// With an https public URL every cookie is Secure, though the request
/// itself came over plain HTTP (a proxy that says nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_https_public_url_the_session_cookie_is_secure() {
    let app = TestApp::spawn_serving_https(Kind::Sqlite).await;
    let admin = account(&app, Role::Admin, None, "Ada Admin").await;
    let signed_in = use_new_link(&app, &admin).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    let cookie = signed_in.header("set-cookie").expect("a cookie");
    assert!(cookie.starts_with("trellis_session="), "{cookie}");
    for part in ["; Secure", "; HttpOnly", "; SameSite=Lax", "; Path=/"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    app.cleanup().await;

    let plain = TestApp::spawn_serving(Kind::Sqlite).await;
    let admin = account(&plain, Role::Admin, None, "Ada Admin").await;
    let signed_in = use_new_link(&plain, &admin).await;
    let cookie = signed_in.header("set-cookie").expect("a cookie");
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    plain.cleanup().await;
}
