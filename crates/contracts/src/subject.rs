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
    subject_under(EVENTS_SUBJECT_PREFIX, stream_id, event_type)
}

/// [`subject`] with `prefix` in place of `trellis.events` (tests and
/// side-by-side deployments publish under prefixes of their own).
pub fn subject_under(prefix: &str, stream_id: &str, event_type: &str) -> String {
    let (category, entity) = stream_id.split_once('-').unwrap_or((stream_id, "_"));
    let mut subject = String::with_capacity(prefix.len() + stream_id.len() + event_type.len() + 4);
    subject.push_str(prefix);
    for part in [category, entity, event_type] {
        subject.push('.');
        push_token(&mut subject, part);
    }
    subject
}

/// The CloudEvents `ce-type` of an event type: the full protobuf message name,
/// e.g. `trellis.events.v1.FeedbackGiven`.
pub fn ce_type(event_type: &str) -> String {
    let mut ce_type = String::with_capacity(crate::PACKAGE.len() + 1 + event_type.len());
    ce_type.push_str(crate::PACKAGE);
    ce_type.push('.');
    push_token(&mut ce_type, event_type);
    ce_type
}

/// The bytes a subject token keeps as they are: printable ASCII but the
/// token separator and the wildcards. (A table: this runs for every byte of
/// every published event's subject.)
const KEPT_IN_TOKEN: [bool; 256] = {
    let mut kept = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        kept[b] = byte.is_ascii_graphic() && !matches!(byte, b'.' | b'*' | b'>');
        b += 1;
    }
    kept
};

/// Appends `part` as one subject token: `_` for an empty part, and `_` in
/// place of every character NATS gives a meaning to.
fn push_token(out: &mut String, part: &str) {
    if part.is_empty() {
        out.push('_');
    } else if part.bytes().all(|b| KEPT_IN_TOKEN[usize::from(b)]) {
        // The common case (ids, type names): printable ASCII, kept as it is.
        out.push_str(part);
    } else {
        out.extend(part.chars().map(|c| match c {
            '.' | '*' | '>' => '_',
            c if c.is_whitespace() || c.is_control() => '_',
            c => c,
        }));
    }
}
