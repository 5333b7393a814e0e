//! Subjects and CloudEvents types.

use trellis_contracts::{ce_type, subject, subject_under};

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
    assert_eq!(
        subject("rep-a b\tc", "Odd Type"),
        "trellis.events.rep.a_b_c.Odd_Type"
    );
    // Letters beyond ASCII are kept; control characters and spaces, ASCII
    // or not, are not.
    assert_eq!(subject("rep-José\u{7f}", "X"), "trellis.events.rep.José_.X");
    assert_eq!(
        subject("rep-a\u{a0}b\u{85}", "X"),
        "trellis.events.rep.a_b_.X"
    );
}

#[test]
fn a_subject_under_another_prefix_keeps_the_same_tokens() {
    assert_eq!(
        subject_under("bench.x", "rep-a.b", "FeedbackGiven"),
        "bench.x.rep.a_b.FeedbackGiven"
    );
    assert_eq!(
        subject_under("trellis.events", "team-1", "TeamFormed"),
        subject("team-1", "TeamFormed")
    );
}

#[test]
fn the_cloudevents_type_is_the_message_name() {
    assert_eq!(ce_type("FeedbackGiven"), "trellis.events.v1.FeedbackGiven");
    assert_eq!(ce_type("A.B"), "trellis.events.v1.A_B");
}
