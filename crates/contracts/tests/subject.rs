//! Subjects and CloudEvents types.

use trellis_contracts::{ce_type, subject};

#[test]
fn the_subject_is_category_entity_and_type() {
    assert_eq!(
        subject("rep-0190a5b2-7c3e-7d41-9a2b-3c4d5e6f7a8b", "FeedbackGiven"),
        "trellis.events.rep.0190a5b2-7c3e-7d41-9a2b-3c4d5e6f7a8b.FeedbackGiven"
    );
    assert_eq!(
        subject("team-1", "TeamFormed"),
        "trellis.events.team.1.TeamFormed"
    );
}

#[test]
fn each_part_of_the_subject_stays_one_token() {
    assert_eq!(subject("rep-a.b*c>d", "X"), "trellis.events.rep.a_b_c_d.X");
    assert_eq!(subject("framework", "X"), "trellis.events.framework._.X");
    assert_eq!(subject("rep-", "X"), "trellis.events.rep._.X");
}

#[test]
fn the_cloudevents_type_is_the_message_name() {
    assert_eq!(ce_type("FeedbackGiven"), "trellis.events.v1.FeedbackGiven");
}
