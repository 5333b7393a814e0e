//! Upcasters: turn a stored payload of an older schema version into the next one.
//!
//! Each step takes version `n` to `n + 1`; [`to_latest`] chains them. When an
//! event's shape changes: bump its version in the catalogue, add one arm to
//! [`step`], and add a test that decodes a payload of the old version.

use serde_json::{Map, Value};

use crate::decode::DecodeError;

/// Upcasts `payload` from `version` to `latest`, one step at a time.
pub(crate) fn to_latest(
    event_type: &str,
    version: u16,
    latest: u16,
    payload: Value,
) -> Result<Value, DecodeError> {
    (version..latest).try_fold(payload, |payload, from| step(event_type, from, payload))
}

fn step(event_type: &str, from: u16, payload: Value) -> Result<Value, DecodeError> {
    match (event_type, from) {
        ("FeedbackGiven", 1) => feedback_given_v1_to_v2(payload),
        _ => Err(DecodeError::MissingUpcaster {
            event_type: event_type.to_owned(),
            version: from,
        }),
    }
}

/// `FeedbackGiven` v1 said `"sentiment": "positive" | "negative"` and `"text"`, and
/// had no visibility (every note was shown to the rep). v2 says `"kind": "praise" |
/// "constructive"`, `"note"`, and `"visibility"`, which is `"shared"` for v1 notes.
fn feedback_given_v1_to_v2(payload: Value) -> Result<Value, DecodeError> {
    let malformed = |reason: &str| DecodeError::Malformed {
        event_type: "FeedbackGiven".to_owned(),
        version: 1,
        reason: reason.to_owned(),
    };
    let Value::Object(mut fields) = payload else {
        return Err(malformed("expected a JSON object"));
    };
    let kind = match fields.remove("sentiment") {
        Some(Value::String(s)) if s == "positive" => "praise",
        Some(Value::String(s)) if s == "negative" => "constructive",
        _ => {
            return Err(malformed(
                "`sentiment` must be \"positive\" or \"negative\"",
            ));
        }
    };
    let note = fields
        .remove("text")
        .ok_or_else(|| malformed("missing field `text`"))?;
    let mut upcast: Map<String, Value> = fields;
    upcast.insert("kind".to_owned(), Value::from(kind));
    upcast.insert("note".to_owned(), note);
    upcast.insert("visibility".to_owned(), Value::from("shared"));
    Ok(Value::Object(upcast))
}
