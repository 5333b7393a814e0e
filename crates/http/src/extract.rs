//! What a handler takes from a request: the authenticated principal, a JSON
//! body parsed with errors a person can act on, and the ids in its path.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::auth::{AuthError, Claims};
use crate::problem::ApiError;
use crate::state::HttpState;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal(pub Claims);

impl<S> FromRequestParts<S> for Principal
where
    S: Send + Sync,
    HttpState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = HttpState::from_ref(state);
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(AuthError::Missing)?;
        let value = value.to_str().map_err(|_| AuthError::NotBearer)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(AuthError::NotBearer)?;
        Ok(Principal(state.authenticate(token.trim()).await?))
    }
}

/// A JSON body: 415 unless the content type is JSON, 413 past the body limit,
/// 400 for malformed JSON, 422 naming the field for a well-formed body of the
/// wrong shape. Keeps a fingerprint of the raw body for idempotency.
#[derive(Debug)]
pub struct JsonBody<T> {
    pub value: T,
    pub fingerprint: [u8; 32],
}

pub fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// The raw body: 413 past the body limit, 400 when it cannot be read.
pub async fn read_body(req: Request, body_limit: usize) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, &()).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!(
                "the body is larger than the limit of {} bytes; send less at once (split an \
                 import into several requests)",
                body_limit
            ))
        } else {
            ApiError::MalformedBody(format!("the body could not be read: {rejection}"))
        }
    })
}

/// What identifies a request for idempotency: its method, path and body.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b" ");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body);
    h.finalize().into()
}

/// Parses JSON, telling syntax errors (400) from shape errors (422 with the field).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize::<_, T>(&mut deserializer)
        .map_err(|e| json_error(e.path().to_string(), e.into_inner()))?;
    deserializer
        .end()
        .map_err(|e| json_error(String::new(), e))?;
    Ok(value)
}

fn json_error(path: String, error: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::MalformedBody(format!(
            "the body is not valid JSON: {error}; send a JSON object"
        )),
        Category::Data => {
            let parent = if path == "." { String::new() } else { path };
            let message = error.to_string();
            // serde names a missing field only in its message: put it in the path.
            let field = match message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split_once('`'))
            {
                Some((name, _)) if parent.is_empty() => name.to_owned(),
                Some((name, _)) => format!("{parent}.{name}"),
                None if parent.is_empty() => "body".to_owned(),
                None => parent,
            };
            ApiError::Validation(vec![crate::problem::FieldError {
                field,
                reason: plain_reason(&message),
            }])
        }
    }
}

/// A field judged with the others: it reads from any JSON value, or from
/// none, and keeps what was wrong with it in plain words, so one answer
/// names every bad field (a target that is not a number beside a metric
/// that is not a slug) instead of stopping at the first the parser meets.
/// Its handler checks it with the rest ([`crate::problem::Fields::check`]
/// of [`Judged::into_result`]). A field that is absent reads as "is required"
/// (with `#[serde(default)]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Judged<T>(Result<T, String>);

impl<T> Judged<T> {
    /// The value, or why it is not one.
    pub fn value(&self) -> Result<&T, &str> {
        self.0.as_ref().map_err(String::as_str)
    }

    /// The value, or why it is not one, for [`crate::problem::Fields::check`].
    pub fn into_result(self) -> Result<T, String> {
        self.0
    }
}

impl<T> From<T> for Judged<T> {
    fn from(value: T) -> Self {
        Judged(Ok(value))
    }
}

impl<T> Default for Judged<T> {
    fn default() -> Self {
        Judged(Err("is required".to_owned()))
    }
}

impl<'de, T: DeserializeOwned> serde::Deserialize<'de> for Judged<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(Judged(
            T::deserialize(value).map_err(|e| plain_reason(&e.to_string())),
        ))
    }
}

/// serde's words for a value of the wrong shape, put so that whoever
/// filled in a form understands them: a choice left empty is required, a
/// choice not offered names the ones that are, an id is an id. Anything
/// else is said as serde said it, without its place in the text.
fn plain_reason(message: &str) -> String {
    let message = message
        .rfind(" at line ")
        .map_or(message, |at| &message[..at]);
    if let Some((given, choices)) = unknown("unknown variant `", message) {
        return if given.trim().is_empty() {
            format!("is required: choose one of {choices}")
        } else {
            format!("“{given}” is not one of the choices: {choices}")
        };
    }
    if let Some((given, fields)) = unknown("unknown field `", message) {
        return format!("“{given}” is not a field of this request; its fields are {fields}");
    }
    if message.starts_with("UUID parsing failed") {
        return if message.ends_with("found 0") {
            "is required: choose one".to_owned()
        } else {
            "is not an id Trellis gave: expected a UUID such as \
             0190f0e4-5e1a-7c3b-9d2e-3f4a5b6c7d8e"
                .to_owned()
        };
    }
    if let Some((given, expected)) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|rest| rest.rsplit_once(", expected "))
        && let Some(words) = expected_in_words(expected)
    {
        return format!("must be {words} (got {})", given_in_words(given));
    }
    message.to_owned()
}

/// serde's "unknown variant `x`, expected one of `a`, `b`" (after
/// `prefix`): what was given, and what it could have been, unquoted.
fn unknown<'a>(prefix: &str, message: &'a str) -> Option<(&'a str, String)> {
    let (given, rest) = message.strip_prefix(prefix)?.split_once('`')?;
    let expected = rest
        .split_once("expected one of ")
        .or_else(|| rest.split_once("expected "))
        .map_or(String::new(), |(_, expected)| expected.replace('`', ""));
    Some((given, expected))
}

/// What serde expected (a Rust type), in words.
fn expected_in_words(expected: &str) -> Option<&'static str> {
    Some(match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a string" | "a borrowed string" => "text, in quotes",
        "a boolean" => "true or false",
        "a sequence" => "a list, [ … ]",
        e if e == "a map" || e.starts_with("struct ") => "an object, { … }",
        _ => return None,
    })
}

/// What serde was given (`string "abc"`, ``integer `-5` ``), in words.
fn given_in_words(given: &str) -> String {
    if let Some(text) = given.strip_prefix("string ") {
        return format!("the text {text}");
    }
    let value = given
        .split_once(" `")
        .and_then(|(_, rest)| rest.strip_suffix('`'));
    match (given, value) {
        (_, Some(value)) => value.to_owned(),
        ("sequence", _) => "a list".to_owned(),
        ("map", _) => "an object".to_owned(),
        ("unit value", _) => "null".to_owned(),
        _ => given.to_owned(),
    }
}

/// A JSON body read but not yet parsed: 415 unless the content type is
/// JSON, 413 past the body limit. A handler that authorizes the caller
/// before judging the body's shape takes this, and parses it
/// ([`RawJson::parse`]) once the caller may write: someone refused a route
/// is told so, not what their body lacks.
#[derive(Debug)]
pub struct RawJson {
    bytes: Bytes,
    /// The request's fingerprint for idempotency: method, path and body.
    pub fingerprint: [u8; 32],
}

impl RawJson {
    /// The body as a `T`: 400 for malformed JSON, 422 naming the field for a
    /// well-formed body of the wrong shape (or one that is not an object).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self
            .bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b != b'{')
        {
            return Err(ApiError::Validation(vec![crate::problem::FieldError {
                field: "body".into(),
                reason: "the body must be a JSON object ({\"field\": value, …})".into(),
            }]));
        }
        parse_json(&self.bytes)
    }
}

impl<S> FromRequest<S> for RawJson
where
    S: Send + Sync,
    HttpState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let body_limit = HttpState::from_ref(state).body_limit();
        match content_type(req.headers()).as_deref() {
            Some("application/json") => {}
            Some(other) if other.ends_with("+json") => {}
            other => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "the body must be JSON, sent with `Content-Type: application/json` (got {})",
                    other.map_or("no content type".to_owned(), |t| format!("{t:?}"))
                )));
            }
        }
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let bytes = read_body(req, body_limit).await?;
        Ok(RawJson {
            fingerprint: fingerprint(&method, &path, &bytes),
            bytes,
        })
    }
}

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    HttpState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let raw = RawJson::from_request(req, state).await?;
        Ok(JsonBody {
            value: raw.parse()?,
            fingerprint: raw.fingerprint,
        })
    }
}

/// Path parameters, parsed with messages that say which one was wrong.
#[derive(Debug)]
pub struct PathIds(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for PathIds {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("the path could not be read: {e}")))?;
        Ok(PathIds(
            raw.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        ))
    }
}

impl PathIds {
    /// The UUID in path parameter `name`; 404 when it is not one, since no
    /// such resource can exist.
    pub fn uuid(&self, name: &str) -> Result<uuid::Uuid, ApiError> {
        let value = self
            .0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| ApiError::Internal(format!("route has no {name} parameter")))?;
        uuid::Uuid::parse_str(value).map_err(|_| {
            ApiError::NotFound(format!(
                "{value:?} is not a valid {}: ids are UUIDs, as Trellis returned them",
                name.replace('_', " ")
            ))
        })
    }
}

/// The value of the cookie `wanted` in `headers` (trimmed; `None` when
/// absent or empty).
pub fn cookie(headers: &HeaderMap, wanted: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::plain_reason;

    #[test]
    fn a_value_of_the_wrong_shape_is_explained_in_plain_words() {
        assert_eq!(
            plain_reason("unknown variant ``, expected one of `leads`, `tools`, `training`"),
            "is required: choose one of leads, tools, training"
        );
        assert_eq!(
            plain_reason(
                "unknown variant `maybe`, expected one of `met`, `not_met` at line 1 column 9"
            ),
            "“maybe” is not one of the choices: met, not_met"
        );
        assert_eq!(
            plain_reason(
                "UUID parsing failed: invalid length: expected length 32 for simple format, found 0"
            ),
            "is required: choose one"
        );
        assert!(plain_reason("UUID parsing failed: invalid character").starts_with("is not an id"));
        assert_eq!(
            plain_reason("invalid type: integer `3`, expected a string at line 1 column 3"),
            "must be text, in quotes (got 3)"
        );
        // No Rust type names ("expected u32") reach whoever filled it in.
        assert_eq!(
            plain_reason("invalid type: string \"abc\", expected u32 at line 1 column 30"),
            "must be a whole number, 0 or more (got the text \"abc\")"
        );
        assert_eq!(
            plain_reason("invalid value: integer `-5`, expected u32"),
            "must be a whole number, 0 or more (got -5)"
        );
        assert_eq!(
            plain_reason("invalid type: floating point `4.5`, expected i64"),
            "must be a whole number (got 4.5)"
        );
        assert_eq!(
            plain_reason("invalid type: sequence, expected struct Correction"),
            "must be an object, { … } (got a list)"
        );
        assert_eq!(
            plain_reason("invalid type: null, expected f64"),
            "must be a number (got null)"
        );
        // What it cannot put in words stays as serde said it.
        assert_eq!(
            plain_reason("invalid length 2, expected 5 levels"),
            "invalid length 2, expected 5 levels"
        );
    }
}
