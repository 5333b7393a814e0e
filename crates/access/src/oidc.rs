//! Sign-in with the company's OpenID Connect provider, as a relying party:
//! discovery, the authorization code flow with PKCE, and validation of the
//! ID token (by `openidconnect`: signature against the provider's key set,
//! issuer, audience, expiry, nonce). Many providers put only `sub` in the ID
//! token and serve the email and name from their UserInfo endpoint; when the
//! ID token says nothing of the email, UserInfo is asked (with the access
//! token, and only an answer about the ID token's subject is taken).
//!
//! This module owns no storage and no HTTP routes: [`Oidc::start`] hands the
//! caller a [`PendingSignIn`] to keep server-side until the callback, and
//! [`Oidc::finish`] turns the callback into an [`Identity`]. Which account an
//! identity may sign in as is decided elsewhere.
//!
//! It must never log or print a client secret, an authorization code, a token,
//! a state, a nonce or a PKCE verifier: the types holding them redact `Debug`,
//! and error messages name causes, not values.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreIdTokenClaims, CoreJsonWebKeySet,
    CoreProviderMetadata,
};
use openidconnect::{
    AccessToken, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, DiscoveryError, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    JsonWebKeySet, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, SignatureVerificationError, SubjectIdentifier,
    TokenResponse as _, UserInfoError, reqwest,
};
use sha2::{Digest as _, Sha256};

/// How long one request to the provider may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The discovered client: authorization and token endpoints known.
type DiscoveredClient = CoreClient<
    EndpointSet,      // authorization
    EndpointNotSet,   // device authorization
    EndpointNotSet,   // introspection
    EndpointNotSet,   // revocation
    EndpointSet,      // token
    EndpointMaybeSet, // user info
>;

/// How Trellis is registered at the provider.
#[derive(Clone)]
pub struct OidcConfig {
    /// The provider's issuer, exactly as its discovery document names it,
    /// e.g. `https://login.example.com/realms/acme`.
    pub issuer: String,
    pub client_id: String,
    /// `None` for a public client (PKCE only).
    pub client_secret: Option<String>,
    /// `<public url>/auth/oidc/callback`, registered at the provider.
    pub redirect_url: String,
}

impl fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("redirect_url", &self.redirect_url)
            .finish()
    }
}

/// A relying party of one provider, discovered. Cheap to clone; clones share
/// the provider's key set, so a key rotation seen by one is seen by all.
#[derive(Clone)]
pub struct Oidc {
    config: Arc<OidcConfig>,
    metadata: Arc<CoreProviderMetadata>,
    /// Replaced, key set and all, when the provider rotates its keys.
    client: Arc<RwLock<Arc<DiscoveredClient>>>,
    http: reqwest::Client,
}

impl fmt::Debug for Oidc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Oidc")
            .field("config", &self.config)
            .field(
                "token_endpoint",
                &self.metadata.token_endpoint().map(|url| url.as_str()),
            )
            .field("jwks_uri", &self.metadata.jwks_uri().as_str())
            .finish_non_exhaustive()
    }
}

/// What the caller keeps server-side between [`Oidc::start`] and
/// [`Oidc::finish`]. Every field is a secret.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct PendingSignIn {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

impl fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("state", &"[redacted]")
            .field("nonce", &"[redacted]")
            .field("pkce_verifier", &"[redacted]")
            .finish()
    }
}

/// Who the provider says signed in, from a validated ID token (and, for
/// what the ID token leaves out, the provider's UserInfo endpoint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub issuer: String,
    /// The provider's stable id for the person (`sub`).
    pub subject: String,
    pub email: Option<String>,
    /// Whether the provider vouches for `email`; false when it does not say.
    pub email_verified: bool,
    pub name: Option<String>,
}

/// Why discovery or a sign-in failed. Messages are for an operator (or a log)
/// and never contain a secret, a code or a token.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The configuration cannot be used as it is (a malformed URL).
    #[error("OpenID Connect configuration: {0}")]
    Config(String),
    /// The provider's discovery document or key set could not be had.
    #[error("OpenID Connect discovery failed: {0}")]
    Discovery(String),
    /// The callback's `state` is not the one this sign-in started with:
    /// a forged or stale callback.
    #[error("the sign-in callback's state does not match the sign-in that was started")]
    WrongState,
    /// The provider did not exchange the authorization code for tokens.
    #[error("the provider refused the authorization code exchange: {0}")]
    Exchange(String),
    /// The provider's ID token was refused; the message names the cause.
    #[error("the provider's ID token was refused: {0}")]
    IdToken(String),
    /// The provider's UserInfo endpoint, asked for what the ID token left
    /// out, gave no usable answer; the message names the cause.
    #[error("the provider's UserInfo endpoint failed: {0}")]
    UserInfo(String),
}

impl Oidc {
    /// Discovery (`<issuer>/.well-known/openid-configuration`) and the
    /// provider's JWKS. Errors say, in plain words for an operator, what
    /// failed and what to check.
    #[tracing::instrument(name = "oidc.discover", skip_all, fields(issuer = %config.issuer), err)]
    pub async fn discover(config: OidcConfig) -> Result<Oidc, OidcError> {
        let issuer = IssuerUrl::new(config.issuer.clone()).map_err(|error| {
            OidcError::Config(format!(
                "the issuer `{}` is not a valid URL ({error}); set it to the provider's \
                 issuer, e.g. https://login.example.com/realms/acme",
                config.issuer
            ))
        })?;
        RedirectUrl::new(config.redirect_url.clone()).map_err(|error| {
            OidcError::Config(format!(
                "the redirect URL `{}` is not a valid URL ({error}); it should be \
                 <public url>/auth/oidc/callback",
                config.redirect_url
            ))
        })?;
        let http = reqwest::Client::builder()
            // Following redirects would open the client up to SSRF.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|error| {
                OidcError::Config(format!("cannot set up the HTTP client: {}", chain(&error)))
            })?;

        let metadata = fetch_metadata(&http, &issuer).await?;
        let jwks = fetch_jwks(&http, &metadata).await?;
        tracing::info!(keys = jwks.keys().len(), "discovered the OpenID provider");
        let metadata = metadata.set_jwks(JsonWebKeySet::default());
        let client = build_client(&metadata, &config, jwks)?;
        Ok(Oidc {
            config: Arc::new(config),
            metadata: Arc::new(metadata),
            client: Arc::new(RwLock::new(Arc::new(client))),
            http,
        })
    }

    /// A new sign-in: the provider URL to send the browser to (authorization
    /// code flow, scopes `openid email profile`, PKCE S256, random state and
    /// nonce), and what the caller must keep server-side until the callback.
    pub fn start(&self) -> (String, PendingSignIn) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = self.client();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".to_owned()))
            .add_scope(Scope::new("profile".to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        let pending = PendingSignIn {
            state: state.into_secret(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.into_secret(),
        };
        (url.into(), pending)
    }

    /// The callback: `state` must equal `pending.state`, then the code is
    /// exchanged with the PKCE verifier and the ID token validated (signature
    /// against the provider's key set, issuer, audience, expiry, nonce). When
    /// no key matches the token's key id, the key set is fetched once more
    /// (the provider may have rotated its keys) and the token checked again.
    ///
    /// When the ID token has no `email` or no `email_verified` and the
    /// provider has a UserInfo endpoint, that endpoint is asked with the
    /// access token; its answer must be about the ID token's subject. It
    /// fills in what the ID token left out (`email_verified` is false unless
    /// the provider says true of that very address); what the ID token says
    /// is kept.
    #[tracing::instrument(
        name = "oidc.finish",
        skip_all,
        fields(issuer = %self.config.issuer),
        err(level = "warn")
    )]
    pub async fn finish(
        &self,
        pending: &PendingSignIn,
        state: &str,
        code: &str,
    ) -> Result<Identity, OidcError> {
        if !same_secret(&pending.state, state) {
            return Err(OidcError::WrongState);
        }

        let client = self.client();
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(exchange_error)?;
        let id_token = response.id_token().ok_or_else(|| {
            OidcError::IdToken(
                "the provider's token response has no ID token; check that the client is \
                 registered for OpenID Connect"
                    .to_owned(),
            )
        })?;

        let nonce = Nonce::new(pending.nonce.clone());
        let verified = id_token
            .claims(&client.id_token_verifier(), &nonce)
            .map(Claimed::from);
        let (claimed, client) = match verified {
            Ok(claimed) => (claimed, client),
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                let client = self.refresh_keys().await?;
                let claimed = id_token
                    .claims(&client.id_token_verifier(), &nonce)
                    .map(Claimed::from)
                    .map_err(|error| self.id_token_error(error))?;
                (claimed, client)
            }
            Err(error) => return Err(self.id_token_error(error)),
        };

        let says_email = claimed.identity.email.is_some() && claimed.email_verified.is_some();
        if says_email || client.user_info_url().is_none() {
            return Ok(claimed.identity);
        }
        self.complete_from_user_info(&client, response.access_token().clone(), claimed)
            .await
    }

    /// Asks the provider's UserInfo endpoint, with the access token, for what
    /// the ID token left out. The answer must be about the ID token's subject
    /// (`openidconnect` checks `sub`, and a signed answer's signature, issuer
    /// and audience).
    async fn complete_from_user_info(
        &self,
        client: &DiscoveredClient,
        access_token: AccessToken,
        claimed: Claimed,
    ) -> Result<Identity, OidcError> {
        let Claimed {
            mut identity,
            email_verified,
        } = claimed;
        let subject = SubjectIdentifier::new(identity.subject.clone());
        let request = client
            .user_info(access_token, Some(subject))
            .map_err(|error| OidcError::UserInfo(chain(&error)))?;
        let info: openidconnect::core::CoreUserInfoClaims = request
            .request_async(&self.http)
            .await
            .map_err(user_info_error)?;
        tracing::debug!("the ID token left the email out: asked the UserInfo endpoint");

        let info_email = info.email().map(|email| email.as_str().to_owned());
        let info_verified = info.email_verified() == Some(true);
        match (&identity.email, email_verified) {
            // The ID token's email, and whether it is verified, stand.
            (Some(_), Some(verified)) => identity.email_verified = verified,
            // The ID token's email: verified only if UserInfo vouches for
            // that same address.
            (Some(email), None) => {
                identity.email_verified = info_verified
                    && info_email
                        .as_deref()
                        .is_some_and(|other| same_address(email, other));
            }
            // No email in the ID token: UserInfo's, as UserInfo vouches.
            (None, _) => {
                identity.email_verified = info_verified && info_email.is_some();
                identity.email = info_email;
            }
        }
        if identity.name.is_none() {
            identity.name = info
                .name()
                .and_then(|name| name.get(None))
                .map(|name| name.as_str().to_owned());
        }
        Ok(identity)
    }

    /// The issuer, as configured (and as the provider names itself).
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    fn client(&self) -> Arc<DiscoveredClient> {
        // The lock only guards swapping an `Arc`: a panic cannot leave it
        // half-written, so a poisoned lock is still good.
        Arc::clone(&self.client.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Fetches the provider's key set again and makes it the one every clone
    /// of this relying party uses.
    async fn refresh_keys(&self) -> Result<Arc<DiscoveredClient>, OidcError> {
        tracing::info!("no key matches the ID token's key id: fetching the provider's keys again");
        let jwks = fetch_jwks(&self.http, &self.metadata)
            .await
            .map_err(|error| match error {
                OidcError::Discovery(message) => OidcError::IdToken(format!(
                    "signature does not verify: no key matches the ID token's key id, and \
                     fetching the provider's keys again failed: {message}"
                )),
                other => other,
            })?;
        let client = Arc::new(build_client(&self.metadata, &self.config, jwks)?);
        *self.client.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&client);
        Ok(client)
    }

    fn id_token_error(&self, error: ClaimsVerificationError) -> OidcError {
        use ClaimsVerificationError as E;
        use SignatureVerificationError as S;
        let message = match error {
            E::InvalidNonce(detail) => {
                format!("wrong nonce: the ID token was not issued for this sign-in ({detail})")
            }
            E::Expired(detail) => format!(
                "expired: {detail}; if this happens for every sign-in, check this server's clock"
            ),
            E::InvalidIssuer(detail) => format!(
                "issued by another issuer: {detail}; Trellis only accepts tokens from `{}`",
                self.config.issuer
            ),
            E::InvalidAudience(detail) => format!(
                "wrong audience: the ID token is not for client `{}` ({detail})",
                self.config.client_id
            ),
            E::SignatureVerification(S::NoMatchingKey) => "signature does not verify: no key in \
                 the provider's key set matches the ID token, even after fetching the keys again"
                .to_owned(),
            E::SignatureVerification(S::CryptoError(detail)) => {
                format!("signature does not verify with the provider's key ({detail})")
            }
            E::SignatureVerification(S::DisallowedAlg(detail)) => format!(
                "signature does not verify: the algorithm is not one the provider advertises \
                 ({detail})"
            ),
            E::SignatureVerification(other) => format!("signature does not verify: {other}"),
            other => other.to_string(),
        };
        OidcError::IdToken(message)
    }
}

/// Fetches and checks `<issuer>/.well-known/openid-configuration`.
async fn fetch_metadata(
    http: &reqwest::Client,
    issuer: &IssuerUrl,
) -> Result<CoreProviderMetadata, OidcError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.as_str().trim_end_matches('/')
    );
    let issuer = issuer.as_str();
    let unreachable = |error: reqwest::Error| {
        OidcError::Discovery(format!(
            "cannot fetch the discovery document of issuer `{issuer}` from {url}: {}; check \
             the issuer URL and that this server can reach the provider",
            chain(&error)
        ))
    };
    let response = http
        .get(&url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    if !status.is_success() {
        let moved = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|location| location.to_str().ok())
            .map(|location| {
                format!(" (it points to {location}; redirects are not followed, for safety)")
            })
            .unwrap_or_default();
        return Err(OidcError::Discovery(format!(
            "the provider answered HTTP {status}{moved} for the discovery document of issuer \
             `{issuer}` at {url}; check the issuer URL"
        )));
    }
    let body = response.bytes().await.map_err(unreachable)?;
    let metadata: CoreProviderMetadata = serde_json::from_slice(&body).map_err(|error| {
        OidcError::Discovery(format!(
            "the document at {url} is not an OpenID Connect discovery document ({error}); \
             check the issuer URL `{issuer}`"
        ))
    })?;
    if metadata.issuer().as_str() != issuer {
        return Err(OidcError::Discovery(format!(
            "the discovery document at {url} names the issuer `{}`, not `{issuer}`; set the \
             issuer to exactly what the provider names, trailing slash and all",
            metadata.issuer().as_str()
        )));
    }
    if metadata.token_endpoint().is_none() {
        return Err(OidcError::Discovery(format!(
            "the provider `{issuer}` advertises no token endpoint, which sign-in with an \
             authorization code needs"
        )));
    }
    Ok(metadata)
}

async fn fetch_jwks(
    http: &reqwest::Client,
    metadata: &CoreProviderMetadata,
) -> Result<CoreJsonWebKeySet, OidcError> {
    let url = metadata.jwks_uri();
    JsonWebKeySet::fetch_async(url, http)
        .await
        .map_err(|error| {
            let cause = match error {
                DiscoveryError::Request(error) => chain(&error),
                DiscoveryError::Response(_, _, message) => message,
                DiscoveryError::Parse(error) => format!("not a JSON Web Key Set ({error})"),
                other => chain(&other),
            };
            OidcError::Discovery(format!(
                "cannot fetch the provider's signing keys from {}: {cause}; check the `jwks_uri` \
             of issuer `{}`",
                url.as_str(),
                metadata.issuer().as_str()
            ))
        })
}

fn build_client(
    metadata: &CoreProviderMetadata,
    config: &OidcConfig,
    jwks: CoreJsonWebKeySet,
) -> Result<DiscoveredClient, OidcError> {
    let token_url = metadata.token_endpoint().cloned().ok_or_else(|| {
        OidcError::Discovery(format!(
            "the provider `{}` advertises no token endpoint",
            config.issuer
        ))
    })?;
    let redirect_url = RedirectUrl::new(config.redirect_url.clone()).map_err(|error| {
        OidcError::Config(format!(
            "the redirect URL `{}` is not a valid URL ({error})",
            config.redirect_url
        ))
    })?;
    let client = CoreClient::from_provider_metadata(
        metadata.clone().set_jwks(jwks),
        ClientId::new(config.client_id.clone()),
        config.client_secret.clone().map(ClientSecret::new),
    )
    .set_token_uri(token_url)
    .set_redirect_uri(redirect_url);
    // A confidential client authenticates with HTTP Basic unless the provider
    // only takes the secret in the form body.
    let methods = metadata.token_endpoint_auth_methods_supported();
    let post_only = methods.is_some_and(|methods| {
        methods.contains(&CoreClientAuthMethod::ClientSecretPost)
            && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
    });
    Ok(if post_only {
        client.set_auth_type(AuthType::RequestBody)
    } else {
        client
    })
}

/// What a validated ID token says.
struct Claimed {
    identity: Identity,
    /// The `email_verified` claim, if the ID token has one
    /// (`identity.email_verified` is false when it does not).
    email_verified: Option<bool>,
}

impl From<&CoreIdTokenClaims> for Claimed {
    fn from(claims: &CoreIdTokenClaims) -> Claimed {
        Claimed {
            identity: Identity {
                issuer: claims.issuer().as_str().to_owned(),
                subject: claims.subject().as_str().to_owned(),
                email: claims.email().map(|email| email.as_str().to_owned()),
                email_verified: claims.email_verified().unwrap_or(false),
                name: claims
                    .name()
                    .and_then(|name| name.get(None))
                    .map(|name| name.as_str().to_owned()),
            },
            email_verified: claims.email_verified(),
        }
    }
}

/// Whether two email addresses are the same one, as Trellis compares them
/// (trimmed, case-insensitive).
fn same_address(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// Why the UserInfo endpoint's answer was not taken, without the answer's
/// body (it may quote the token).
fn user_info_error<RE>(error: UserInfoError<RE>) -> OidcError
where
    RE: std::error::Error + 'static,
{
    let message = match error {
        UserInfoError::ClaimsVerification(ClaimsVerificationError::InvalidSubject(detail)) => {
            format!("its answer is about another subject than the ID token: {detail}")
        }
        UserInfoError::ClaimsVerification(error) => {
            format!("its signed answer does not verify: {}", chain(&error))
        }
        UserInfoError::Request(error) => format!("cannot reach it: {}", chain(&error)),
        UserInfoError::Response(status, _body, detail) => {
            if status == reqwest::StatusCode::UNAUTHORIZED
                || status == reqwest::StatusCode::FORBIDDEN
            {
                format!(
                    "it answered HTTP {status}: it did not accept the access token the \
                     provider had just issued"
                )
            } else if status.is_success() {
                format!("its answer cannot be read: {detail}")
            } else {
                format!("it answered HTTP {status}")
            }
        }
        // Only the path: serde's message may quote the offending value.
        UserInfoError::Parse(error) => format!(
            "its answer is not valid UserInfo claims (the problem is at `{}`)",
            error.path()
        ),
        UserInfoError::Other(detail) => detail,
        other => chain(&other),
    };
    OidcError::UserInfo(message)
}

/// Why the token endpoint said no, without the response body (it may hold
/// tokens).
fn exchange_error<RE, T>(error: RequestTokenError<RE, T>) -> OidcError
where
    RE: std::error::Error + 'static,
    T: openidconnect::ErrorResponse + fmt::Display + 'static,
{
    let message = match error {
        RequestTokenError::ServerResponse(response) => {
            format!("the provider answered `{response}`")
        }
        RequestTokenError::Request(error) => {
            format!("cannot reach the token endpoint: {}", chain(&error))
        }
        // Only the path: serde's message may quote the offending value.
        RequestTokenError::Parse(error, _body) => format!(
            "the token endpoint's answer is not a valid token response (the problem is at `{}`)",
            error.path(),
        ),
        RequestTokenError::Other(message) => message,
    };
    OidcError::Exchange(message)
}

/// An error and its causes, `: `-separated (many of these errors say little
/// at the top, and the useful part is a source or two down).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

/// Compares two secrets without leaking through timing where they differ:
/// the SHA-256 digests are compared, which an attacker cannot steer.
fn same_secret(expected: &str, actual: &str) -> bool {
    Sha256::digest(expected.as_bytes()) == Sha256::digest(actual.as_bytes())
}
