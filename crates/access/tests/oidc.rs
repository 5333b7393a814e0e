//! Sign-in with OpenID Connect against a small fake provider on loopback: a
//! real HTTP server (discovery document, key set, token endpoint, UserInfo
//! endpoint) whose ID tokens are ES256 JWSs built here by hand. There is no authorize endpoint:
//! a test plays the browser and the provider's login page by reading the
//! state, nonce and PKCE challenge from the URL `start()` returns and
//! granting a code for them, with the scenario the test is about.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use trellis_access::oidc::{Identity, Oidc, OidcConfig, OidcError, PendingSignIn};

const REALM: &str = "/realms/acme";
const CLIENT_ID: &str = "trellis";
const CLIENT_SECRET: &str = "client-secret-do-not-print";
const REDIRECT_URL: &str = "https://trellis.example.com/auth/oidc/callback";

#[tokio::test]
async fn a_good_sign_in_returns_the_identity() {
    let provider = Provider::start().await;
    let oidc = provider.discover().await;

    let (url, pending) = oidc.start();
    let query = query(&url);
    assert!(
        url.starts_with(&format!("{}/auth?", provider.issuer)),
        "{url}"
    );
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["redirect_uri"], REDIRECT_URL);
    let mut scopes: Vec<&str> = query["scope"].split(' ').collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["email", "openid", "profile"]);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["state"], pending.state);
    assert_eq!(query["nonce"], pending.nonce);

    let code = provider.grant(&url, Scenario::Good);
    let identity = oidc.finish(&pending, &query["state"], &code).await.unwrap();

    assert_eq!(
        identity,
        Identity {
            issuer: provider.issuer.clone(),
            subject: "user-42".to_owned(),
            email: Some("ada@example.com".to_owned()),
            email_verified: true,
            name: Some("Ada Lovelace".to_owned()),
        }
    );
    assert_eq!(oidc.issuer(), provider.issuer);
    assert_eq!(provider.state().token_calls, 1);
    // The ID token said it all: UserInfo is not asked.
    assert_eq!(provider.state().userinfo_calls, 0);
}

#[tokio::test]
async fn an_id_token_without_email_gets_the_email_from_userinfo() {
    let provider = Provider::start().await;
    let oidc = provider.discover().await;
    let (url, pending) = oidc.start();
    let code = provider.grant(&url, Scenario::SubjectOnly);

    let identity = oidc.finish(&pending, &pending.state, &code).await.unwrap();

    assert_eq!(
        identity,
        Identity {
            issuer: provider.issuer.clone(),
            subject: "user-42".to_owned(),
            email: Some("ada@example.com".to_owned()),
            email_verified: true,
            name: Some("Ada Lovelace".to_owned()),
        }
    );
    // Asked once, with the access token issued for this sign-in (the
    // endpoint refuses any other).
    assert_eq!(provider.state().userinfo_calls, 1);
}

#[tokio::test]
async fn an_unverified_email_from_userinfo_stays_unverified() {
    let provider = Provider::start().await;
    let oidc = provider.discover().await;
    let (url, pending) = oidc.start();
    let code = provider.grant(&url, Scenario::UnverifiedInUserInfo);

    let identity = oidc.finish(&pending, &pending.state, &code).await.unwrap();

    assert_eq!(identity.email.as_deref(), Some("ada@example.com"));
    assert!(!identity.email_verified, "{identity:?}");
    assert_eq!(provider.state().userinfo_calls, 1);
}

#[tokio::test]
async fn a_userinfo_answer_for_another_subject_is_refused() {
    let provider = Provider::start().await;
    let oidc = provider.discover().await;
    let (url, pending) = oidc.start();
    let code = provider.grant(&url, Scenario::UserInfoOfAnotherSubject);

    let error = oidc
        .finish(&pending, &pending.state, &code)
        .await
        .unwrap_err();

    let OidcError::UserInfo(message) = &error else {
        panic!("expected a UserInfo error, got {error:?}");
    };
    assert!(message.contains("another subject"), "{message}");
    assert!(message.contains("user-42"), "{message}");
    assert!(message.contains("user-7"), "{message}");
    assert_no_access_token(&provider, &error);
    assert_eq!(provider.state().userinfo_calls, 1);
}

#[tokio::test]
async fn a_userinfo_endpoint_that_refuses_the_access_token_fails_the_sign_in() {
    let provider = Provider::start().await;
    let oidc = provider.discover().await;
    let (url, pending) = oidc.start();
    let code = provider.grant(&url, Scenario::UserInfoRefuses);

    let error = oidc
        .finish(&pending, &pending.state, &code)
        .await
        .unwrap_err();

    let OidcError::UserInfo(message) = &error else {
        panic!("expected a UserInfo error, got {error:?}");
    };
    assert!(message.contains("401"), "{message}");
    assert_no_access_token(&provider, &error);
}

#[tokio::test]
async fn a_wrong_state_is_refused_before_the_provider_is_called() {
    let provider = Provider::start().await;
    let oidc = provider.discover().await;
    let (url, pending) = oidc.start();
    let code = provider.grant(&url, Scenario::Good);

    let error = oidc
        .finish(&pending, "forged-state", &code)
        .await
        .unwrap_err();

    assert!(matches!(error, OidcError::WrongState), "{error:?}");
    assert_eq!(provider.state().token_calls, 0);
}

#[tokio::test]
async fn a_wrong_nonce_is_refused() {
    let error = refused_with(Scenario::WrongNonce).await;
    assert_id_token_error(&error, "wrong nonce");
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    let error = refused_with(Scenario::Expired).await;
    assert_id_token_error(&error, "expired");
}

#[tokio::test]
async fn an_id_token_from_another_issuer_is_refused() {
    let error = refused_with(Scenario::OtherIssuer).await;
    assert_id_token_error(&error, "issued by another issuer");
}

#[tokio::test]
async fn an_id_token_for_another_audience_is_refused() {
    let error = refused_with(Scenario::OtherAudience).await;
    assert_id_token_error(&error, "wrong audience");
}

#[tokio::test]
async fn an_id_token_signed_by_another_key_is_refused() {
    let error = refused_with(Scenario::OtherKey).await;
    assert_id_token_error(&error, "signature does not verify");
}

#[tokio::test]
async fn an_id_token_with_an_unknown_key_id_is_refused_after_one_fresh_look_at_the_keys() {
    let provider = Provider::start().await;
    let oidc = provider.discover().await;
    let (url, pending) = oidc.start();
    let code = provider.grant(&url, Scenario::UnknownKeyId);

    let error = oidc
        .finish(&pending, &pending.state, &code)
        .await
        .unwrap_err();

    assert_id_token_error(&error, "signature does not verify");
    assert_eq!(provider.state().jwks_calls, 2);
}

#[tokio::test]
async fn a_wrong_pkce_verifier_makes_the_provider_refuse_the_exchange() {
    let provider = Provider::start().await;
    let oidc = provider.discover().await;
    let (url, pending) = oidc.start();
    let code = provider.grant(&url, Scenario::Good);
    let (_, other) = oidc.start();
    let tampered = PendingSignIn {
        pkce_verifier: other.pkce_verifier,
        ..pending.clone()
    };

    let error = oidc
        .finish(&tampered, &pending.state, &code)
        .await
        .unwrap_err();

    let OidcError::Exchange(message) = &error else {
        panic!("expected an exchange error, got {error:?}");
    };
    assert!(message.contains("invalid_grant"), "{message}");
    assert!(message.contains("PKCE"), "{message}");
    assert_eq!(provider.state().token_calls, 1);
}

#[tokio::test]
async fn discovery_of_an_issuer_that_is_not_there_names_the_issuer() {
    let provider = Provider::start().await;
    let issuer = format!("{}/realms/nowhere", provider.origin);

    let error = Oidc::discover(config(&issuer)).await.unwrap_err();

    let OidcError::Discovery(message) = &error else {
        panic!("expected a discovery error, got {error:?}");
    };
    assert!(message.contains(&issuer), "{message}");
    assert!(message.contains("404"), "{message}");
}

#[tokio::test]
async fn discovery_of_an_issuer_nobody_answers_for_names_the_issuer() {
    // A port that was free a moment ago: nothing listens there now.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/realms/acme", listener.local_addr().unwrap());
    drop(listener);

    let error = Oidc::discover(config(&issuer)).await.unwrap_err();

    let OidcError::Discovery(message) = &error else {
        panic!("expected a discovery error, got {error:?}");
    };
    assert!(message.contains(&issuer), "{message}");
}

#[tokio::test]
async fn sign_in_still_works_after_the_provider_rotates_its_key() {
    let provider = Provider::start().await;
    let oidc = provider.discover().await;
    assert_eq!(provider.state().jwks_calls, 1);
    provider.rotate_key();

    let (url, pending) = oidc.start();
    let code = provider.grant(&url, Scenario::Good);
    let identity = oidc.finish(&pending, &pending.state, &code).await.unwrap();
    assert_eq!(identity.subject, "user-42");
    assert_eq!(provider.state().jwks_calls, 2);

    // The fresh key set is kept, by clones too: no further fetch.
    let clone = oidc.clone();
    let (url, pending) = clone.start();
    let code = provider.grant(&url, Scenario::Good);
    clone.finish(&pending, &pending.state, &code).await.unwrap();
    assert_eq!(provider.state().jwks_calls, 2);
}

#[tokio::test]
async fn debug_output_shows_no_secrets() {
    let provider = Provider::start().await;
    let oidc = provider.discover().await;
    let (_, pending) = oidc.start();

    let printed = format!("{:?} {:?} {:?}", config(&provider.issuer), oidc, pending);

    assert!(!printed.contains(CLIENT_SECRET), "{printed}");
    assert!(!printed.contains(&pending.state), "{printed}");
    assert!(!printed.contains(&pending.nonce), "{printed}");
    assert!(!printed.contains(&pending.pkce_verifier), "{printed}");
}

// ---------------------------------------------------------------------------
// Helpers.

async fn refused_with(scenario: Scenario) -> OidcError {
    let provider = Provider::start().await;
    let oidc = provider.discover().await;
    let (url, pending) = oidc.start();
    let code = provider.grant(&url, scenario);
    oidc.finish(&pending, &pending.state, &code)
        .await
        .unwrap_err()
}

/// Neither the error's message nor its `Debug` quote an access token the
/// provider issued.
fn assert_no_access_token(provider: &Provider, error: &OidcError) {
    let printed = format!("{error} {error:?}");
    for token in provider.state().access_tokens.keys() {
        assert!(!printed.contains(token.as_str()), "{printed}");
    }
    assert!(!printed.contains("access-token-"), "{printed}");
}

fn assert_id_token_error(error: &OidcError, cause: &str) {
    let OidcError::IdToken(message) = error else {
        panic!("expected an ID token error naming `{cause}`, got {error:?}");
    };
    assert!(
        message.contains(cause),
        "`{message}` does not name `{cause}`"
    );
}

fn config(issuer: &str) -> OidcConfig {
    OidcConfig {
        issuer: issuer.to_owned(),
        client_id: CLIENT_ID.to_owned(),
        client_secret: Some(CLIENT_SECRET.to_owned()),
        redirect_url: REDIRECT_URL.to_owned(),
    }
}

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

fn now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since_epoch.as_secs()).unwrap()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

// ---------------------------------------------------------------------------
// The fake provider.

/// What the ID token for a granted code (and the UserInfo answer for its
/// access token) looks like.
#[derive(Clone, Copy, Debug)]
enum Scenario {
    Good,
    /// The ID token has `sub` only; UserInfo has the email, verified, and
    /// the name.
    SubjectOnly,
    /// As `SubjectOnly`, but UserInfo does not vouch for the email.
    UnverifiedInUserInfo,
    /// As `SubjectOnly`, but UserInfo answers about another subject.
    UserInfoOfAnotherSubject,
    /// As `SubjectOnly`, but UserInfo refuses the access token.
    UserInfoRefuses,
    WrongNonce,
    Expired,
    OtherIssuer,
    OtherAudience,
    /// Signed by a key the provider never published, under the current key id.
    OtherKey,
    /// Signed by a key the provider never published, under a key id it never used.
    UnknownKeyId,
}

struct Key {
    id: String,
    signing: SigningKey,
}

impl Key {
    fn generate(id: &str) -> Key {
        let mut secret = [0u8; 32];
        loop {
            getrandom::fill(&mut secret).unwrap();
            // Almost every 32 bytes are a valid P-256 scalar.
            if let Ok(signing) = SigningKey::from_slice(&secret) {
                return Key {
                    id: id.to_owned(),
                    signing,
                };
            }
        }
    }

    fn jwk(&self) -> Value {
        let point = self.signing.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes(); // 0x04 || x || y
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": b64(&bytes[1..33]),
            "y": b64(&bytes[33..65]),
            "kid": self.id,
            "alg": "ES256",
            "use": "sig",
        })
    }

    /// A compact ES256 JWS of `claims`, under `kid`.
    fn sign(&self, kid: &str, claims: &Value) -> String {
        let header = json!({ "alg": "ES256", "typ": "JWT", "kid": kid });
        let input = format!(
            "{}.{}",
            b64(serde_json::to_vec(&header).unwrap()),
            b64(serde_json::to_vec(claims).unwrap())
        );
        let signature: Signature = self.signing.sign(input.as_bytes());
        format!("{input}.{}", b64(signature.to_bytes())) // r || s, 64 bytes
    }
}

struct Grant {
    challenge: String,
    nonce: String,
    scenario: Scenario,
}

struct ProviderState {
    issuer: String,
    key: Key,
    keys_made: usize,
    grants: HashMap<String, Grant>,
    /// The access tokens issued, and the sign-in scenario of each.
    access_tokens: HashMap<String, Scenario>,
    token_calls: usize,
    jwks_calls: usize,
    userinfo_calls: usize,
}

type Shared = Arc<Mutex<ProviderState>>;

struct Provider {
    /// `http://127.0.0.1:<port>`
    origin: String,
    issuer: String,
    state: Shared,
}

impl Provider {
    async fn start() -> Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let issuer = format!("{origin}{REALM}");
        let state = Arc::new(Mutex::new(ProviderState {
            issuer: issuer.clone(),
            key: Key::generate("key-1"),
            keys_made: 1,
            grants: HashMap::new(),
            access_tokens: HashMap::new(),
            token_calls: 0,
            jwks_calls: 0,
            userinfo_calls: 0,
        }));
        let router = Router::new()
            .route(
                &format!("{REALM}/.well-known/openid-configuration"),
                get(discovery),
            )
            .route(&format!("{REALM}/jwks"), get(jwks))
            .route(&format!("{REALM}/token"), post(token))
            .route(&format!("{REALM}/userinfo"), get(userinfo))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Provider {
            origin,
            issuer,
            state,
        }
    }

    async fn discover(&self) -> Oidc {
        Oidc::discover(config(&self.issuer)).await.unwrap()
    }

    fn state(&self) -> MutexGuard<'_, ProviderState> {
        self.state.lock().unwrap()
    }

    /// What the authorize endpoint and the login page would do: remember the
    /// PKCE challenge and nonce of the sign-in at `url`, and hand out a code.
    fn grant(&self, url: &str, scenario: Scenario) -> String {
        let query = query(url);
        assert_eq!(query["code_challenge_method"], "S256");
        let mut state = self.state();
        let code = format!("code-{}", state.grants.len() + 1);
        state.grants.insert(
            code.clone(),
            Grant {
                challenge: query["code_challenge"].clone(),
                nonce: query["nonce"].clone(),
                scenario,
            },
        );
        code
    }

    /// Signs with a new key under a new key id from now on, and publishes
    /// only that one.
    fn rotate_key(&self) {
        let mut state = self.state();
        state.keys_made += 1;
        state.key = Key::generate(&format!("key-{}", state.keys_made));
    }
}

async fn discovery(State(state): State<Shared>) -> Json<Value> {
    let issuer = state.lock().unwrap().issuer.clone();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "scopes_supported": ["openid", "email", "profile"],
    }))
}

async fn jwks(State(state): State<Shared>) -> Json<Value> {
    let mut state = state.lock().unwrap();
    state.jwks_calls += 1;
    Json(json!({ "keys": [state.key.jwk()] }))
}

async fn token(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut state = state.lock().unwrap();
    state.token_calls += 1;

    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers
        .get(header::AUTHORIZATION)
        .map(|value| value.as_bytes())
        != Some(basic.as_bytes())
    {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "bad client credentials",
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code")
        || form.get("redirect_uri").map(String::as_str) != Some(REDIRECT_URL)
    {
        return refuse(StatusCode::BAD_REQUEST, "invalid_request", "bad grant");
    }
    let Some(grant) = form.get("code").and_then(|code| state.grants.remove(code)) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_grant", "unknown code");
    };
    let verifier = form.get("code_verifier").map_or("", String::as_str);
    if b64(Sha256::digest(verifier.as_bytes())) != grant.challenge {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "PKCE verification failed",
        );
    }

    let now = now();
    let mut claims = json!({
        "iss": state.issuer,
        "sub": "user-42",
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 300,
        "nonce": grant.nonce,
        "email": "ada@example.com",
        "email_verified": true,
        "name": "Ada Lovelace",
    });
    let key = &state.key;
    let id_token = match grant.scenario {
        Scenario::Good => key.sign(&key.id, &claims),
        Scenario::SubjectOnly
        | Scenario::UnverifiedInUserInfo
        | Scenario::UserInfoOfAnotherSubject
        | Scenario::UserInfoRefuses => {
            let object = claims.as_object_mut().unwrap();
            for claim in ["email", "email_verified", "name"] {
                object.remove(claim);
            }
            key.sign(&key.id, &claims)
        }
        Scenario::WrongNonce => {
            claims["nonce"] = json!("a-nonce-of-another-sign-in");
            key.sign(&key.id, &claims)
        }
        Scenario::Expired => {
            claims["iat"] = json!(now - 900);
            claims["exp"] = json!(now - 600);
            key.sign(&key.id, &claims)
        }
        Scenario::OtherIssuer => {
            claims["iss"] = json!("https://login.example.org/realms/other");
            key.sign(&key.id, &claims)
        }
        Scenario::OtherAudience => {
            claims["aud"] = json!("another-app");
            key.sign(&key.id, &claims)
        }
        Scenario::OtherKey => Key::generate("unpublished").sign(&key.id, &claims),
        Scenario::UnknownKeyId => Key::generate("unpublished").sign("unpublished", &claims),
    };
    let access_token = format!("access-token-{}", state.access_tokens.len() + 1);
    state
        .access_tokens
        .insert(access_token.clone(), grant.scenario);
    Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

/// The UserInfo endpoint: answers for an access token it issued, sent as
/// `Authorization: Bearer`, and for nothing else.
async fn userinfo(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let mut state = state.lock().unwrap();
    state.userinfo_calls += 1;
    let scenario = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .and_then(|token| state.access_tokens.get(token).copied());
    let unauthorized = || {
        let challenge = [(header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#)];
        (StatusCode::UNAUTHORIZED, challenge).into_response()
    };
    let Some(scenario) = scenario else {
        return unauthorized();
    };
    let mut claims = json!({
        "sub": "user-42",
        "email": "ada@example.com",
        "email_verified": true,
        "name": "Ada Lovelace",
    });
    match scenario {
        Scenario::UserInfoRefuses => return unauthorized(),
        Scenario::UserInfoOfAnotherSubject => {
            claims["sub"] = json!("user-7");
        }
        Scenario::UnverifiedInUserInfo => {
            claims["email_verified"] = json!(false);
        }
        _ => {}
    }
    Json(claims).into_response()
}

fn refuse(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({ "error": error, "error_description": description });
    (status, Json(body)).into_response()
}
