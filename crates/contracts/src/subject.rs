//! Where an event is published and how it is labelled, shared by the relay,
//! webhooks and subscribers.

/// The `Content-Type` of every message body: one encoded [`Envelope`](crate::Envelope).
pub const CONTENT_TYPE: &str = "application/protobuf";

/// The JetStream stream that holds every event.
pub const EVENTS_STREAM: &str = "TRELLIS_EVENTS";

/// The first two tokens of every event subject.
pub const EVENTS_SUBJECT_PREFIX: &str = "trellis.events";

/// The subject of an event: `trellis.events.<category>.<entity id>.<event type>`,
/// e.g. `trellis.events.rep.0190a5b2-….FeedbackGiven`.
///
/// `stream_id` is `<category>-<entity id>`; a stream id without `-` is its own
/// category with entity id `_`. Characters that NATS gives a meaning in subjects
/// (`.`, `*`, `>`, whitespace) are replaced by `_`, so each part stays one token.
pub fn subject(stream_id: &str, event_type: &str) -> String {
    let (category, entity) = stream_id.split_once('-').unwrap_or((stream_id, "_"));
    format!(
        "{EVENTS_SUBJECT_PREFIX}.{}.{}.{}",
        token(category),
        token(entity),
        token(event_type)
    )
}

/// The CloudEvents `ce-type` of an event type: the full protobuf message name,
/// e.g. `trellis.events.v1.FeedbackGiven`.
pub fn ce_type(event_type: &str) -> String {
    format!("{}.{}", crate::PACKAGE, token(event_type))
}

fn token(part: &str) -> String {
    let token: String = part
        .chars()
        .map(|c| match c {
            '.' | '*' | '>' => '_',
            c if c.is_whitespace() || c.is_control() => '_',
            c => c,
        })
        .collect();
    if token.is_empty() {
        "_".to_owned()
    } else {
        token
    }
}
