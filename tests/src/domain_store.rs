//! The domain and the log together: domain events survive the store
//! unchanged, and an old schema version is upcast when read back.

use chrono::Utc;
use serde_json::json;
use trellis_domain::Event;
use trellis_domain::rep::{FeedbackKind, RepEvent, Visibility};
use trellis_eventstore::{CommandMeta, ExpectedVersion, NewEvent, StreamId};
use trellis_tests::{Backend, Kind};
use uuid::Uuid;

async fn a_stored_v1_feedback_is_read_back_as_the_current_version(kind: Kind) {
    let backend = Backend::new(kind).await;
    let rep = Uuid::now_v7();
    let stream = StreamId::for_entity("rep", rep).unwrap();
    let feedback_id = Uuid::now_v7();
    // Written years ago by the first release: "sentiment" and "text", no visibility.
    let v1 = json!({
        "feedback_id": feedback_id,
        "leader_id": Uuid::now_v7(),
        "competency_id": Uuid::now_v7(),
        "sentiment": "negative",
        "text": "Let the customer finish before pitching.",
        "given_on": "2024-05-02"
    });
    backend
        .store
        .append(
            &stream,
            ExpectedVersion::Exact(0),
            &CommandMeta::new("leader-1", Utc::now()),
            &[NewEvent::new("FeedbackGiven", 1, v1, Utc::now())],
        )
        .await
        .unwrap();

    let stored = backend
        .store
        .read_stream(&stream, 0, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(stored.schema_version, 1, "the log keeps what was written");
    let event =
        Event::from_stored(&stored.event_type, stored.schema_version, stored.payload).unwrap();
    let Event::Rep(RepEvent::FeedbackGiven(feedback)) = event else {
        panic!("expected FeedbackGiven, got {event:?}")
    };
    assert_eq!(feedback.feedback_id.as_uuid(), feedback_id);
    assert_eq!(feedback.kind, FeedbackKind::Constructive);
    assert_eq!(
        feedback.note.as_str(),
        "Let the customer finish before pitching."
    );
    assert_eq!(feedback.visibility, Visibility::Shared);
    assert_eq!(
        Event::Rep(RepEvent::FeedbackGiven(feedback)).schema_version(),
        2
    );
    backend.cleanup().await;
}

crate::http::on_each_backend!(a_stored_v1_feedback_is_read_back_as_the_current_version);
