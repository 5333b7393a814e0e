//! Bearer tokens: JWTs signed with HMAC-SHA256 (HS256) under a secret from
//! configuration, and who may do what.
//!
//! Only HS256 is accepted; a token naming any other algorithm (including
//! `none`) is refused before its signature is looked at.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// What a token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The subject: recorded as the actor of every event it writes. For a
    /// leader it is the leader's id; for a rep, the rep's id.
    pub sub: String,
    pub role: Role,
    /// The teams a leader leads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<Uuid>,
    /// What a service may do, e.g. `measurements:write`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

impl Claims {
    /// The subject as a UUID, when it is one (leaders and reps).
    pub fn subject_id(&self) -> Option<Uuid> {
        Uuid::parse_str(&self.sub).ok()
    }

    pub fn has_grant(&self, grant: &str) -> bool {
        self.grants.iter().any(|g| g == grant)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Writes for the reps of the teams in `teams`.
    Leader,
    /// Acknowledges, raises support requests and completes their own action items.
    Rep,
    /// Reads everything, writes nothing.
    Auditor,
    /// Another system, limited to its `grants`.
    Service,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "leader" => Ok(Role::Leader),
            "rep" => Ok(Role::Rep),
            "auditor" => Ok(Role::Auditor),
            "service" => Ok(Role::Service),
            other => Err(format!(
                "{other:?} is not a role: use admin, leader, rep, auditor or service"
            )),
        }
    }
}

/// Why a token was refused. Each is a 401 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token: send the header `Authorization: Bearer <token>`")]
    Missing,
    #[error("the Authorization header must be `Bearer <token>`")]
    NotBearer,
    #[error("the bearer token is not a JWT (three base64url parts separated by dots)")]
    Malformed,
    #[error("the token is signed with {0}, but only HS256 is accepted")]
    WrongAlgorithm(String),
    #[error("the token's signature does not match: it was not issued by this Trellis")]
    BadSignature,
    #[error("the token expired; ask for a new one")]
    Expired,
    #[error("the token's claims are invalid: {0}")]
    BadClaims(String),
    #[error("this service token is not one Trellis issued (or it was copied incompletely)")]
    UnknownServiceToken,
    #[error("this service token was revoked; ask an admin for a new one")]
    Revoked,
    /// Where service tokens are kept could not be asked: a 503, not a 401.
    #[error("the token cannot be checked right now (the database is unreachable); retry shortly")]
    Unavailable,
}

/// How a service account's token starts: such a bearer token is looked up
/// by the [`Authenticator`], not verified by the [`TokenKey`].
pub const SERVICE_TOKEN_PREFIX: &str = "trs_";

/// Credentials kept in a store rather than signed: service accounts' tokens,
/// looked up at each request so that a revoked one is refused at once.
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    /// The claims of a service account's token (`trs_…`) as it stands now.
    async fn service_token(
        &self,
        token: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Claims, AuthError>;
}

/// Signs and verifies tokens with one secret.
#[derive(Clone)]
pub struct TokenKey {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<secret>)")
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

impl TokenKey {
    /// A key from a secret of at least [`MIN_SECRET_LEN`] bytes.
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, String> {
        let secret = secret.into();
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "the JWT secret is {} bytes long; use at least {MIN_SECRET_LEN} random bytes \
                 (for example: head -c 32 /dev/urandom | base64)",
                secret.len()
            ));
        }
        Ok(TokenKey { secret })
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts a key of any length")
    }

    /// A signed token carrying `claims`.
    pub fn mint(&self, claims: &Claims) -> String {
        let header = Header {
            alg: "HS256".into(),
            typ: Some("JWT".into()),
        };
        let header =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("a header serializes"));
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// The token against cross-site request forgery that pages give the
    /// bearer of `token` for their forms: tied to that sign-in, unguessable
    /// without this key, and checked with [`TokenKey::check_csrf`].
    pub fn csrf_token(&self, token: &str) -> String {
        let mut mac = self.mac();
        mac.update(b"csrf\n");
        mac.update(token.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Whether `given` is the [`TokenKey::csrf_token`] of `token` (compared
    /// in constant time).
    pub fn check_csrf(&self, token: &str, given: &str) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(given.trim()) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(b"csrf\n");
        mac.update(token.as_bytes());
        mac.verify_slice(&given).is_ok()
    }

    /// The claims of a valid, unexpired token; `now` is seconds since the epoch.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let signing_input = &token[..header.len() + 1 + payload.len()];
        let header: Header = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(AuthError::Malformed)?;
        if header.alg != "HS256" {
            return Err(AuthError::WrongAlgorithm(header.alg));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| AuthError::Malformed)?;
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| AuthError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| AuthError::Malformed)?;
        let claims: Claims =
            serde_json::from_slice(&payload).map_err(|e| AuthError::BadClaims(e.to_string()))?;
        if claims.exp <= now {
            return Err(AuthError::Expired);
        }
        if claims.sub.trim().is_empty() {
            return Err(AuthError::BadClaims("the subject (sub) is empty".into()));
        }
        match claims.role {
            Role::Leader | Role::Rep if claims.subject_id().is_none() => {
                Err(AuthError::BadClaims(format!(
                    "a {:?} token's subject must be their id (a UUID), not {:?}",
                    claims.role, claims.sub
                )))
            }
            _ => Ok(claims),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::new(vec![7u8; 32]).unwrap()
    }

    fn claims(role: Role) -> Claims {
        Claims {
            sub: Uuid::from_u128(1).to_string(),
            role,
            teams: vec![Uuid::from_u128(2)],
            grants: vec![],
            exp: 2_000,
            iat: Some(1_000),
        }
    }

    #[test]
    fn a_minted_token_verifies_to_its_claims() {
        let token = key().mint(&claims(Role::Leader));
        assert_eq!(key().verify(&token, 1_500).unwrap(), claims(Role::Leader));
    }

    #[test]
    fn expired_forged_and_malformed_tokens_are_refused_with_the_reason() {
        let token = key().mint(&claims(Role::Admin));
        assert_eq!(key().verify(&token, 2_000), Err(AuthError::Expired));
        let other = TokenKey::new(vec![8u8; 32]).unwrap();
        assert_eq!(other.verify(&token, 1_500), Err(AuthError::BadSignature));
        assert_eq!(key().verify("abc", 1_500), Err(AuthError::Malformed));
        // Same payload, claims changed: the signature no longer matches.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_payload = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                role: Role::Admin,
                exp: 9_999,
                ..claims(Role::Admin)
            })
            .unwrap(),
        );
        parts[1] = &forged_payload;
        assert_eq!(
            key().verify(&parts.join("."), 1_500),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn the_none_algorithm_is_refused() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(Role::Admin)).unwrap());
        let token = format!("{header}.{payload}.");
        assert_eq!(
            key().verify(&token, 1_500),
            Err(AuthError::WrongAlgorithm("none".into()))
        );
    }

    #[test]
    fn a_csrf_token_checks_for_its_sign_in_only() {
        let token = key().mint(&claims(Role::Leader));
        let csrf = key().csrf_token(&token);
        assert!(key().check_csrf(&token, &csrf));
        let other = key().mint(&Claims {
            exp: 3_000,
            ..claims(Role::Leader)
        });
        assert!(!key().check_csrf(&other, &csrf), "another sign-in");
        assert!(!key().check_csrf(&token, ""), "none");
        assert!(!key().check_csrf(&token, "bm90IGl0"), "a made-up one");
        let foreign = TokenKey::new(vec![8u8; 32]).unwrap();
        assert!(
            !key().check_csrf(&token, &foreign.csrf_token(&token)),
            "another key's"
        );
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert!(TokenKey::new("short").unwrap_err().contains("at least 32"));
    }

    #[test]
    fn a_leader_token_needs_a_uuid_subject() {
        let token = key().mint(&Claims {
            sub: "bob".into(),
            ..claims(Role::Leader)
        });
        assert!(matches!(
            key().verify(&token, 1_500),
            Err(AuthError::BadClaims(_))
        ));
    }
}
