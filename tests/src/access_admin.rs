//! The admin's sign-in pages, driven as a browser drives them (the session
//! cookie, the page's token against forged requests): giving a leader
//! access and a one-time link that signs them in once; ending a person's
//! sessions and stopping their access, each taking effect at once; a
//! service account whose token works with its grants only, until revoked,
//! and is kept only as a hash; nobody but an admin changes anything (an
//! auditor looks); a refused form keeps what was typed and says what is
//! wrong beside the field.

use axum::http::{Method, StatusCode};
use trellis_access::NewAccount;
use trellis_http::auth::Role;
use trellis_tests::Kind;
use uuid::Uuid;

use crate::forms::{hidden, serving_with_a_rep, urlencode};
use crate::http::{Resp, Route, TestApp, build_request};

const HOST: &str = "trellis.example";

/// The `trellis_session` cookie `r` sets (panics when it sets none).
fn session_cookie(r: &Resp) -> String {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("trellis_session="))
        .and_then(|c| c.split(';').next())
        .filter(|c| !c.is_empty())
        .map(|c| format!("trellis_session={c}"))
        .unwrap_or_else(|| panic!("no session cookie in {:?}", r.headers))
}

/// A browser signed in with the developer token `token`: its cookie.
async fn signed_in(app: &TestApp, token: &str) -> String {
    let r = app
        .send(build_request(
            Method::GET,
            &format!("/login?token={token}"),
            "",
            None,
            "",
            &[("host", HOST)],
        ))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    session_cookie(&r)
}

/// A browser's request with `cookie` (none when empty), this site's host
/// and `extra` headers; a form when `form` is given.
async fn browse(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
    form: Option<&[(&str, &str)]>,
    extra: &[(&str, &str)],
) -> Resp {
    let mut headers = vec![("host", HOST)];
    if !cookie.is_empty() {
        headers.push(("cookie", cookie));
    }
    headers.extend_from_slice(extra);
    let body = form.map(urlencode).unwrap_or_default();
    let content_type = form.map(|_| "application/x-www-form-urlencoded");
    app.send(build_request(
        method,
        path,
        "",
        content_type,
        body,
        &headers,
    ))
    .await
}

async fn get(app: &TestApp, path: &str, cookie: &str) -> Resp {
    browse(app, Method::GET, path, cookie, None, &[]).await
}

/// Posts `fields` to `path` with the page's token against forged requests.
async fn post(
    app: &TestApp,
    path: &str,
    cookie: &str,
    csrf: &str,
    fields: &[(&str, &str)],
) -> Resp {
    let mut all = vec![("_csrf", csrf)];
    all.extend_from_slice(fields);
    browse(app, Method::POST, path, cookie, Some(&all), &[]).await
}

/// The token against forged requests of the page at `path` (every page's
/// sign-out form carries it).
async fn csrf_of(app: &TestApp, path: &str, cookie: &str) -> String {
    let page = get(app, path, cookie).await;
    assert_eq!(page.status, StatusCode::OK, "GET {path}: {}", said(&page));
    hidden(&page.text(), "_csrf")
}

/// What a page says: its `<main>`, for failure messages.
fn said(r: &Resp) -> String {
    let html = r.text();
    let main = html.find("<main").map_or(html.as_str(), |at| &html[at..]);
    format!("{} {main}", r.status)
}

fn location(r: &Resp) -> &str {
    r.header("location")
        .unwrap_or_else(|| panic!("no location: {}", said(r)))
}

/// The text from `start` up to the next quote or tag in `html`.
fn value_from(html: &str, start: &str) -> String {
    let at = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"));
    let rest = &html[at..];
    rest[..rest.find(['"', '<']).unwrap_or(rest.len())].to_owned()
}

/// A one-time link for `account` made on the page: its token.
async fn link_on_page(app: &TestApp, admin: &str, account: Uuid) -> String {
    let csrf = csrf_of(app, "/admin/access", admin).await;
    let made = post(
        app,
        &format!("/admin/access/{account}/link"),
        admin,
        &csrf,
        &[("lifetime", "60")],
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", said(&made));
    let url = value_from(&made.text(), &format!("http://{HOST}/sign-in?link="));
    url.rsplit('=').next().expect("a token").to_owned()
}

/// Uses a sign-in link as the person's browser does (`POST /sign-in`).
async fn use_link(app: &TestApp, token: &str) -> Resp {
    browse(
        app,
        Method::POST,
        "/sign-in",
        "",
        Some(&[("link", token)]),
        &[],
    )
    .await
}

/// A leader account for `leader`, made directly in the access tables.
async fn leader_account(app: &TestApp, leader: Uuid) -> Uuid {
    app.access()
        .add_account(
            NewAccount {
                role: Role::Leader,
                person: Some(leader),
                name: None,
                email: None,
                oidc_subject: None,
            },
            "test",
            chrono::Utc::now(),
        )
        .await
        .expect("a leader account")
        .id
}

async fn an_admin_gives_a_leader_access_and_their_link_signs_them_in_once(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let admin = signed_in(&app, &app.admin()).await;
    let page = get(&app, "/admin/access", &admin).await;
    assert_eq!(page.status, StatusCode::OK, "{}", said(&page));
    let html = page.text();
    let leader_choice = format!("leader:{}", world.leader);
    assert!(
        html.contains(&format!("value=\"{leader_choice}\"")),
        "{html}"
    );
    assert!(html.contains(&format!("value=\"rep:{rep}\"")), "{html}");
    let csrf = hidden(&html, "_csrf");

    let given = post(
        &app,
        "/admin/access",
        &admin,
        &csrf,
        &[
            ("role", "leader"),
            ("person", &leader_choice),
            ("name", ""),
            ("email", "Lena@Example.com"),
            ("subject", ""),
        ],
    )
    .await;
    assert_eq!(given.status, StatusCode::SEE_OTHER, "{}", said(&given));
    let account = app
        .access()
        .account_of_person(world.leader)
        .await
        .expect("the access tables")
        .expect("the leader's account");
    assert_eq!(account.role, Role::Leader);
    assert_eq!(account.name, "Lena Leader");
    assert_eq!(account.email.as_deref(), Some("lena@example.com"));
    assert!(location(&given).starts_with("/admin/access?done=added"));
    let listed = get(&app, location(&given), &admin).await;
    let html = listed.text();
    assert!(html.contains("Lena Leader may sign in now"), "{html}");
    assert!(html.contains("lena@example.com"));
    assert!(html.contains("Leader of EMEA Mid-Market"), "{html}");
    assert!(
        !html.contains(&format!("value=\"{leader_choice}\"")),
        "a leader with a sign-in is no longer offered"
    );

    // The link is shown once, on a page no cache keeps.
    let csrf = hidden(&html, "_csrf");
    let made = post(
        &app,
        &format!("/admin/access/{}/link", account.id),
        &admin,
        &csrf,
        &[("lifetime", "60")],
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", said(&made));
    assert_eq!(made.header("cache-control"), Some("no-store"));
    let html = made.text();
    assert!(html.contains("Send this link to Lena Leader"), "{html}");
    assert!(html.contains("works until") && html.contains("1 hour from now"));
    let url = value_from(&html, &format!("http://{HOST}/sign-in?link="));
    let token = url.rsplit('=').next().expect("a token").to_owned();
    assert!(token.len() >= 40, "{url}");
    let again = get(&app, "/admin/access", &admin).await;
    assert!(!again.text().contains(&token), "shown once only");
    // Reloaded, the link's page says why the link is not there.
    let reloaded = get(&app, &format!("/admin/access/{}/link", account.id), &admin).await;
    assert_eq!(
        reloaded.status,
        StatusCode::SEE_OTHER,
        "{}",
        said(&reloaded)
    );
    let html = get(&app, location(&reloaded), &admin).await.text();
    // In the account's card, where the browser lands.
    let card = html
        .split(&format!("id=\"account-{}\"", account.id))
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .unwrap_or_else(|| panic!("no card for the account: {html}"));
    assert!(
        card.contains("A sign-in link is shown only once")
            && card.contains("If you did not send Lena Leader theirs"),
        "{card}"
    );
    assert!(!html.contains(&token));

    // The link signs the leader in, once.
    let first = use_link(&app, &token).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", said(&first));
    let leader = session_cookie(&first);
    let team = get(&app, &format!("/teams/{}", world.team), &leader).await;
    assert_eq!(team.status, StatusCode::OK, "{}", said(&team));
    let second = use_link(&app, &token).await;
    assert_eq!(second.status, StatusCode::UNAUTHORIZED, "{}", said(&second));
    assert!(second.text().contains("used already"), "{}", said(&second));
    assert!(
        second.header("set-cookie").is_none(),
        "a second use signs nobody in"
    );
    app.cleanup().await;
}

async fn ending_sessions_signs_a_person_out_at_once_and_stopping_access_refuses_them(kind: Kind) {
    let (app, world, _rep) = serving_with_a_rep(kind).await;
    let admin = signed_in(&app, &app.admin()).await;
    let account = leader_account(&app, world.leader).await;
    let team = format!("/teams/{}", world.team);

    let first = use_link(&app, &link_on_page(&app, &admin, account).await).await;
    let leader = session_cookie(&first);
    get(&app, &team, &leader).await.expect(200);
    let page = get(&app, "/admin/access", &admin).await;
    assert!(
        page.text()
            .contains("Signed in on <strong>1 device</strong>"),
        "{}",
        said(&page)
    );

    let csrf = hidden(&page.text(), "_csrf");
    let ended = post(
        &app,
        &format!("/admin/access/{account}/sessions/end"),
        &admin,
        &csrf,
        &[],
    )
    .await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER, "{}", said(&ended));
    assert_eq!(
        get(&app, &team, &leader).await.status,
        StatusCode::UNAUTHORIZED
    );
    let confirmed = get(&app, location(&ended), &admin).await;
    assert!(
        confirmed
            .text()
            .contains("is signed out</strong> on the one device"),
        "{}",
        said(&confirmed)
    );

    // Stopping access ends the session, and no link signs them in.
    let second = use_link(&app, &link_on_page(&app, &admin, account).await).await;
    let leader = session_cookie(&second);
    get(&app, &team, &leader).await.expect(200);
    let unused = link_on_page(&app, &admin, account).await;
    let stopped = post(
        &app,
        &format!("/admin/access/{account}/stop"),
        &admin,
        &csrf,
        &[],
    )
    .await;
    assert_eq!(stopped.status, StatusCode::SEE_OTHER, "{}", said(&stopped));
    let refused = get(&app, &team, &leader).await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        said(&refused)
    );
    let stored = app.access().account(account).await.expect("the account");
    assert!(stored.disabled_at.is_some());
    assert_eq!(
        use_link(&app, &unused).await.status,
        StatusCode::UNAUTHORIZED
    );
    let no_link = post(
        &app,
        &format!("/admin/access/{account}/link"),
        &admin,
        &csrf,
        &[("lifetime", "60")],
    )
    .await;
    assert_eq!(
        no_link.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        said(&no_link)
    );
    assert!(
        no_link.text().contains("access is stopped"),
        "{}",
        said(&no_link)
    );
    let listed = get(&app, "/admin/access", &admin).await.text();
    assert!(listed.contains("access stopped") && listed.contains("Let them sign in again"));

    let restored = post(
        &app,
        &format!("/admin/access/{account}/restore"),
        &admin,
        &csrf,
        &[],
    )
    .await;
    assert_eq!(
        restored.status,
        StatusCode::SEE_OTHER,
        "{}",
        said(&restored)
    );
    let third = use_link(&app, &link_on_page(&app, &admin, account).await).await;
    get(&app, &team, &session_cookie(&third)).await.expect(200);
    app.cleanup().await;
}

/// A service account made on the page: its token (shown once, stored only
/// as its hash), the grant-limited answers it gets, and the revocation.
async fn a_service_account_made_on_the_page_works_with_its_grant_only_until_revoked(kind: Kind) {
    let (app, world, _rep) = serving_with_a_rep(kind).await;
    let admin = signed_in(&app, &app.admin()).await;
    let csrf = csrf_of(&app, "/admin/service-accounts", &admin).await;
    let made = post(
        &app,
        "/admin/service-accounts",
        &admin,
        &csrf,
        &[("name", "CRM sync"), ("grant.measurements:write", "on")],
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", said(&made));
    assert_eq!(made.header("cache-control"), Some("no-store"));
    let token = value_from(&made.text(), "trs_");
    let stored = app.access().service_accounts().await.expect("the table");
    let [service] = stored.as_slice() else {
        panic!("one service account: {stored:?}")
    };
    assert_eq!(service.grants, ["measurements:write"]);
    assert_ne!(service.token_hash, token);
    assert!(!service.token_hash.contains(&token[4..]));
    assert_eq!(service.token_hash, trellis_access::hash_secret(&token));
    let listed = get(&app, "/admin/service-accounts", &admin).await.text();
    assert!(
        listed.contains("CRM sync") && !listed.contains(&token),
        "shown once"
    );

    let measure = app.prepare(&world, Route::RecordMeasurement).await;
    app.send_prepared(&measure, &token).await.expect(201);
    let teams = |token: String| {
        let app = &app;
        async move {
            app.request(Method::GET, "/v1/teams", &token, None, "", &[])
                .await
        }
    };
    teams(token.clone()).await.expect(403);

    let confirm = get(
        &app,
        &format!("/admin/service-accounts/{}/revoke", service.id),
        &admin,
    )
    .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", said(&confirm));
    assert!(confirm.text().contains("Revoke CRM sync?"));
    let csrf = hidden(&confirm.text(), "_csrf");
    let revoked = post(
        &app,
        &format!("/admin/service-accounts/{}/revoke", service.id),
        &admin,
        &csrf,
        &[],
    )
    .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", said(&revoked));
    let listed = get(&app, location(&revoked), &admin).await.text();
    assert!(listed.contains("CRM sync is revoked"), "{listed}");
    let measure = app.prepare(&world, Route::RecordMeasurement).await;
    app.send_prepared(&measure, &token).await.expect(401);
    teams(token).await.expect(401);
    app.cleanup().await;
}

/// The read API's grant is offered on the page, and opens the read API
/// (`GET /v1/teams`).
async fn the_read_grant_the_page_offers_opens_the_read_api(kind: Kind) {
    let app = TestApp::spawn_serving(kind).await;
    let admin = signed_in(&app, &app.admin()).await;
    let csrf = csrf_of(&app, "/admin/service-accounts", &admin).await;
    let page = get(&app, "/admin/service-accounts", &admin).await.text();
    let read_grant = trellis_access::GRANTS
        .iter()
        .find(|(g, _)| *g == trellis_queries::access::READS_GRANT)
        .map(|(g, _)| format!("grant.{g}"))
        .expect("the page offers the read API's grant");
    assert!(page.contains(&format!("name=\"{read_grant}\"")), "{page}");
    let made = post(
        &app,
        "/admin/service-accounts",
        &admin,
        &csrf,
        &[("name", "Reporting"), (&read_grant, "on")],
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", said(&made));
    let token = value_from(&made.text(), "trs_");
    app.request(Method::GET, "/v1/teams", &token, None, "", &[])
        .await
        .expect(200);
    app.cleanup().await;
}

/// Every sign-in page and form, with its path's ids filled in.
fn sign_in_routes(account: Uuid, service: Uuid) -> Vec<(Method, String)> {
    let routes: Vec<(Method, String)> = crate::http::declared_dashboard_routes()
        .into_iter()
        .filter(|(_, p)| p.starts_with("/admin/access") || p.starts_with("/admin/service-accounts"))
        .map(|(m, p)| {
            (
                Method::from_bytes(m.as_bytes()).expect("a method"),
                p.replace("{account_id}", &account.to_string())
                    .replace("{service_account_id}", &service.to_string()),
            )
        })
        .collect();
    assert!(routes.len() >= 12, "{routes:?}");
    routes
}

async fn a_leader_and_a_rep_are_refused_every_sign_in_page_and_an_auditor_only_looks(kind: Kind) {
    let (app, world, rep) = serving_with_a_rep(kind).await;
    let now = chrono::Utc::now();
    let account = leader_account(&app, world.leader).await;
    let service = app
        .access()
        .create_service_account("CRM sync", &["measurements:write".to_owned()], "test", now)
        .await
        .expect("a service account")
        .account
        .id;
    let signed_in_leader = use_link(
        &app,
        &app.access()
            .create_link(account, None, "test", now)
            .await
            .expect("a link")
            .0,
    )
    .await;
    let target_session = session_cookie(&signed_in_leader);
    let routes = sign_in_routes(account, service);
    let form = [
        ("role", "admin"),
        ("name", "Mallory"),
        ("lifetime", "60"),
        ("email", "mallory@example.com"),
        ("grant.measurements:write", "on"),
    ];

    let leader_token = app.leader_as(world.other_leader, &[world.other_team]);
    let rep_token = app.rep(rep);
    for (who, token, start) in [
        (
            "leader",
            &leader_token,
            format!("/teams/{}", world.other_team),
        ),
        ("rep", &rep_token, format!("/reps/{rep}")),
    ] {
        let cookie = signed_in(&app, token).await;
        let csrf = csrf_of(&app, &start, &cookie).await;
        for (method, path) in &routes {
            let mut fields = vec![("_csrf", csrf.as_str())];
            fields.extend_from_slice(&form);
            let by_cookie = if method == Method::GET {
                get(&app, path, &cookie).await
            } else {
                browse(&app, method.clone(), path, &cookie, Some(&fields), &[]).await
            };
            assert_eq!(
                by_cookie.status,
                StatusCode::FORBIDDEN,
                "{who} {method} {path}"
            );
            let by_bearer = app
                .request(
                    method.clone(),
                    path,
                    token,
                    Some("application/x-www-form-urlencoded"),
                    urlencode(&form),
                    &[("host", HOST)],
                )
                .await;
            assert_eq!(
                by_bearer.status,
                StatusCode::FORBIDDEN,
                "{who} (bearer) {method} {path}"
            );
        }
    }

    // An auditor sees who may sign in, without a form, and changes nothing.
    let auditor = signed_in(&app, &app.auditor()).await;
    let csrf = csrf_of(&app, "/admin/access", &auditor).await;
    for path in ["/admin/access", "/admin/service-accounts"] {
        let page = get(&app, path, &auditor).await;
        assert_eq!(page.status, StatusCode::OK, "{}", said(&page));
        let html = page.text();
        assert!(html.contains("You see this as an auditor"), "{html}");
        assert!(
            !html.contains("action=\"/admin/"),
            "no form for an auditor: {html}"
        );
    }
    for (method, path) in &routes {
        let r = if method == Method::GET {
            if path == "/admin/access" || path == "/admin/service-accounts" {
                continue;
            }
            get(&app, path, &auditor).await
        } else {
            let mut fields = vec![("_csrf", csrf.as_str())];
            fields.extend_from_slice(&form);
            browse(&app, method.clone(), path, &auditor, Some(&fields), &[]).await
        };
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "auditor {method} {path}: {}",
            said(&r)
        );
    }

    // Nothing changed.
    let access = app.access();
    let accounts = access.accounts().await.expect("the accounts");
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert!(accounts[0].disabled_at.is_none() && accounts[0].email.is_none());
    let services = access.service_accounts().await.expect("the services");
    assert_eq!(services.len(), 1);
    assert!(services[0].revoked_at.is_none());
    let team = format!("/teams/{}", world.team);
    get(&app, &team, &target_session).await.expect(200);
    app.cleanup().await;
}

async fn a_form_without_its_csrf_token_or_from_another_site_records_nothing(kind: Kind) {
    let app = TestApp::spawn_serving(kind).await;
    let admin = signed_in(&app, &app.admin()).await;
    let csrf = csrf_of(&app, "/admin/access", &admin).await;
    let give = [("role", "admin"), ("name", "Mallory")];
    let service = [("name", "Exfiltrator"), ("grant.measurements:write", "on")];
    for (path, fields) in [
        ("/admin/access", &give[..]),
        ("/admin/service-accounts", &service[..]),
    ] {
        let without = browse(&app, Method::POST, path, &admin, Some(fields), &[]).await;
        assert_eq!(
            without.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            said(&without)
        );
        let forged = post(&app, path, &admin, "forged", fields).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{path}");
        let mut all = vec![("_csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let elsewhere = browse(
            &app,
            Method::POST,
            path,
            &admin,
            Some(&all),
            &[("origin", "https://evil.example")],
        )
        .await;
        assert_eq!(elsewhere.status, StatusCode::FORBIDDEN, "{path}");
    }
    let access = app.access();
    assert!(access.accounts().await.expect("accounts").is_empty());
    assert!(
        access
            .service_accounts()
            .await
            .expect("services")
            .is_empty()
    );

    // The same forms with their token record.
    let given = post(&app, "/admin/access", &admin, &csrf, &give).await;
    assert_eq!(given.status, StatusCode::SEE_OTHER, "{}", said(&given));
    let account = access.accounts().await.expect("accounts")[0].id;
    let stop = format!("/admin/access/{account}/stop");
    let nothing: &[(&str, &str)] = &[];
    let without = browse(&app, Method::POST, &stop, &admin, Some(nothing), &[]).await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    let stored = access.account(account).await.expect("the account");
    assert!(
        stored.disabled_at.is_none(),
        "not stopped without the token"
    );
    app.cleanup().await;
}

/// `html` shows `why` as the error of field `name`, right after the field
/// and before `next` (the next field's id).
#[track_caller]
fn error_beside(html: &str, name: &str, next: &str, why: &str) {
    let field = html
        .find(&format!("id=\"{name}\""))
        .unwrap_or_else(|| panic!("no field {name}: {html}"));
    let error = html
        .find(&format!("id=\"{name}-error\""))
        .unwrap_or_else(|| panic!("no error beside {name}: {html}"));
    let after = html
        .find(&format!("id=\"{next}\""))
        .unwrap_or_else(|| panic!("no field {next}: {html}"));
    assert!(
        field < error && error < after,
        "the error of {name} is beside it"
    );
    let message = &html[error..];
    let message = &message[..message.find("</p>").expect("the error's end")];
    assert!(message.contains(why), "{name}: {message}");
    let tag = &html[html[..field].rfind('<').expect("the field's tag")..];
    let tag = &tag[..tag.find('>').expect("the tag's end")];
    assert!(
        tag.contains("aria-invalid=\"true\""),
        "{name} is marked: {tag}"
    );
}

async fn a_refused_form_keeps_what_was_typed_and_says_why_beside_the_field(kind: Kind) {
    let (app, world, _rep) = serving_with_a_rep(kind).await;
    let admin = signed_in(&app, &app.admin()).await;
    let csrf = csrf_of(&app, "/admin/access", &admin).await;
    let give = |fields: Vec<(&'static str, String)>| {
        let (app, admin, csrf) = (&app, &admin, &csrf);
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = post(app, "/admin/access", admin, csrf, &fields).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", said(&r));
            assert!(r.text().contains("Nothing was recorded"));
            r.text()
        }
    };
    let s = |v: &str| v.to_owned();

    let html = give(vec![
        ("role", s("admin")),
        ("name", s(" ")),
        ("email", s("ada@example.com")),
    ])
    .await;
    error_beside(&html, "name", "email", "Give their name");
    assert!(
        html.contains("value=\"ada@example.com\""),
        "kept what was typed"
    );
    assert!(html.contains("name=\"role\" value=\"admin\" checked"));

    let html = give(vec![
        ("role", s("auditor")),
        ("name", s("Ada")),
        ("email", s("ada at example")),
    ])
    .await;
    error_beside(&html, "email", "subject", "is not an email address");
    assert!(html.contains("value=\"Ada\"") && html.contains("value=\"ada at example\""));

    let html = give(vec![("role", s("leader")), ("person", s(""))]).await;
    error_beside(&html, "person", "name", "Choose the leader or rep");
    let html = give(vec![
        ("role", s("rep")),
        ("person", format!("leader:{}", world.leader)),
    ])
    .await;
    error_beside(&html, "person", "name", "choose one of the reps");
    assert!(html.contains(&format!("value=\"leader:{}\" selected", world.leader)));
    let html = give(vec![("name", s("Ada"))]).await;
    assert!(html.contains("id=\"role-error\""), "{html}");

    // A second person with the same email (in any case) is refused.
    let first = post(
        &app,
        "/admin/access",
        &admin,
        &csrf,
        &[
            ("role", "admin"),
            ("name", "Ada Admin"),
            ("email", "ada@example.com"),
        ],
    )
    .await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", said(&first));
    let html = give(vec![
        ("role", s("auditor")),
        ("name", s("Bea")),
        ("email", s("ADA@example.com")),
    ])
    .await;
    error_beside(&html, "email", "subject", "sign-in has this email");
    assert!(html.contains("value=\"Bea\""));

    // The identity form, and the service account form.
    let account = app.access().accounts().await.expect("accounts")[0].id;
    let path = format!("/admin/access/{account}/identity");
    let form = get(&app, &path, &admin).await;
    assert_eq!(form.status, StatusCode::OK, "{}", said(&form));
    assert!(form.text().contains("value=\"ada@example.com\""));
    let r = post(
        &app,
        &path,
        &admin,
        &csrf,
        &[("email", "nobody"), ("subject", "sub-1")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", said(&r));
    error_beside(&r.text(), "email", "subject", "is not an email address");
    assert!(r.text().contains("value=\"sub-1\""));
    let saved = post(
        &app,
        &path,
        &admin,
        &csrf,
        &[("email", ""), ("subject", "sub-1")],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", said(&saved));
    let stored = app.access().account(account).await.expect("the account");
    assert_eq!(
        (stored.email, stored.oidc_subject.as_deref()),
        (None, Some("sub-1"))
    );

    let r = post(
        &app,
        "/admin/service-accounts",
        &admin,
        &csrf,
        &[("name", ""), ("grant.measurements:write", "on")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", said(&r));
    error_beside(&r.text(), "name", "grants", "Name the service");
    assert!(
        r.text()
            .contains("name=\"grant.measurements:write\" value=\"on\" checked")
    );
    let r = post(
        &app,
        "/admin/service-accounts",
        &admin,
        &csrf,
        &[("name", "CRM sync")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", said(&r));
    assert!(r.text().contains("id=\"grants-error\"") && r.text().contains("value=\"CRM sync\""));
    assert_eq!(app.access().accounts().await.expect("accounts").len(), 1);
    assert!(
        app.access()
            .service_accounts()
            .await
            .expect("services")
            .is_empty()
    );
    app.cleanup().await;
}

/// An admin who signs in with an account records as that account's id. An
/// auditor reading the trail sees their name, and an erasure's reason
/// beside it: what the erasure rests on, kept readable for them.
async fn the_audit_trail_names_the_admin_by_their_account_and_shows_an_erasures_reason(kind: Kind) {
    let (app, _world, rep) = serving_with_a_rep(kind).await;
    let bootstrap = signed_in(&app, &app.admin()).await;
    let dana = app
        .access()
        .add_account(
            NewAccount {
                role: Role::Admin,
                person: None,
                name: Some("Dana Reyes".into()),
                email: None,
                oidc_subject: None,
            },
            "test",
            chrono::Utc::now(),
        )
        .await
        .expect("an admin account")
        .id;
    let link = link_on_page(&app, &bootstrap, dana).await;
    let signed = use_link(&app, &link).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", said(&signed));
    let dana = session_cookie(&signed);
    let form = format!("/admin/reps/{rep}/erasure");
    let csrf = csrf_of(&app, &form, &dana).await;
    let reason = "Asked to be forgotten, ticket DP-1042";
    let erased = post(&app, &form, &dana, &csrf, &[("reason", reason)]).await;
    assert_eq!(erased.status, StatusCode::SEE_OTHER, "{}", said(&erased));

    let auditor = signed_in(&app, &app.auditor()).await;
    let trail = get(&app, &format!("/reps/{rep}/audit"), &auditor).await;
    assert_eq!(trail.status, StatusCode::OK, "{}", said(&trail));
    let html = trail.text();
    let row = html
        .split("<tr ")
        .find(|row| row.contains("(PersonalDataErased)"))
        .unwrap_or_else(|| panic!("no erasure row: {}", said(&trail)));
    assert!(
        row.contains("<td data-label=\"By\">Dana Reyes, admin</td>"),
        "by the admin's name, not their account id: {row}"
    );
    assert!(
        row.contains(&format!("<td data-label=\"Note\">{reason}</td>")),
        "the reason: {row}"
    );
    app.cleanup().await;
}

crate::http::on_each_backend!(
    multi_thread: an_admin_gives_a_leader_access_and_their_link_signs_them_in_once,
    the_audit_trail_names_the_admin_by_their_account_and_shows_an_erasures_reason,
    ending_sessions_signs_a_person_out_at_once_and_stopping_access_refuses_them,
    a_service_account_made_on_the_page_works_with_its_grant_only_until_revoked,
    the_read_grant_the_page_offers_opens_the_read_api,
    a_leader_and_a_rep_are_refused_every_sign_in_page_and_an_auditor_only_looks,
    a_form_without_its_csrf_token_or_from_another_site_records_nothing,
    a_refused_form_keeps_what_was_typed_and_says_why_beside_the_field,
);
