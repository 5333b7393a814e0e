//! A message that is not a valid event is refused with an error naming the field.

use prost::Message as _;
use trellis_contracts::proto::{self, envelope::Payload};
use trellis_contracts::{ContractError, Envelope, decode_envelope, event_of, from_wire, to_wire};

use crate::samples::samples;

fn sample(event_type: &str) -> Payload {
    let event = samples()
        .into_iter()
        .find(|e| e.event_type() == event_type)
        .unwrap();
    to_wire(&event)
}

fn feedback() -> proto::FeedbackGiven {
    match sample("FeedbackGiven") {
        Payload::FeedbackGiven(m) => m,
        other => panic!("{other:?}"),
    }
}

fn error_of(message: proto::FeedbackGiven) -> String {
    from_wire(&Payload::FeedbackGiven(message))
        .unwrap_err()
        .to_string()
}

#[test]
fn a_missing_field_is_named() {
    let mut m = feedback();
    m.given_on = None;
    assert_eq!(error_of(m), "FeedbackGiven.given_on is missing");
    let mut m = feedback();
    m.leader_id.clear();
    assert_eq!(error_of(m), "FeedbackGiven.leader_id is missing");
    let mut m = feedback();
    m.visibility = 0;
    assert_eq!(error_of(m), "FeedbackGiven.visibility is missing");
}

#[test]
fn a_bad_id_is_named_with_the_input() {
    let mut m = feedback();
    m.competency_id = "not-a-uuid".to_owned();
    let message = error_of(m);
    assert!(
        message.starts_with(
            "FeedbackGiven.competency_id is invalid: “not-a-uuid” is not a valid competency id"
        ),
        "{message}"
    );
}

#[test]
fn a_bad_date_is_named_with_its_parts() {
    let mut m = feedback();
    m.given_on = Some(proto::Date {
        year: 2026,
        month: 2,
        day: 30,
    });
    assert_eq!(
        error_of(m),
        "FeedbackGiven.given_on is not a calendar date: year 2026, month 2, day 30"
    );
}

#[test]
fn an_unknown_enum_value_is_named() {
    let mut m = feedback();
    m.kind = 9;
    assert!(matches!(
        from_wire(&Payload::FeedbackGiven(m)),
        Err(ContractError::UnknownEnumValue {
            message: "FeedbackGiven",
            field: "kind",
            value: 9
        })
    ));
}

#[test]
fn domain_rules_are_checked_on_the_way_in() {
    let Payload::SkillAssessed(mut m) = sample("SkillAssessed") else {
        unreachable!()
    };
    m.level = 6;
    let message = from_wire(&Payload::SkillAssessed(m))
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("SkillAssessed.level is invalid: A skill level must be"),
        "{message}"
    );

    let Payload::PerformanceMeasured(mut m) = sample("PerformanceMeasured") else {
        unreachable!()
    };
    m.period = "2026-W54".to_owned();
    let message = from_wire(&Payload::PerformanceMeasured(m.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("PerformanceMeasured.period is invalid"),
        "{message}"
    );
    m.period = "2026-W05".to_owned();
    m.value = f64::NAN;
    let message = from_wire(&Payload::PerformanceMeasured(m))
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("PerformanceMeasured.value is invalid"),
        "{message}"
    );

    let Payload::CompetencyDefined(mut m) = sample("CompetencyDefined") else {
        unreachable!()
    };
    m.rubric.pop();
    let message = from_wire(&Payload::CompetencyDefined(m))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("exactly 5 level descriptions"),
        "{message}"
    );

    let Payload::StandardSet(mut m) = sample("StandardSet") else {
        unreachable!()
    };
    m.ramp[0].percent_of_target = 70_000;
    let message = from_wire(&Payload::StandardSet(m)).unwrap_err().to_string();
    assert_eq!(
        message,
        "RampStep.percent_of_target is 70000, outside the accepted range 0 to 65535"
    );
}

#[test]
fn nested_messages_are_named() {
    let Payload::CoachingSessionHeld(mut m) = sample("CoachingSessionHeld") else {
        unreachable!()
    };
    m.action_items[1].owner = Some(proto::ActionItemOwner { owner: None });
    let message = from_wire(&Payload::CoachingSessionHeld(m))
        .unwrap_err()
        .to_string();
    assert_eq!(message, "ActionItemOwner.owner is missing");

    let Payload::FactCorrected(mut m) = sample("FactCorrected") else {
        unreachable!()
    };
    m.correction = None;
    let message = from_wire(&Payload::FactCorrected(m))
        .unwrap_err()
        .to_string();
    assert_eq!(message, "FactCorrected.correction is missing");
}

#[test]
fn an_envelope_without_payload_or_with_the_wrong_one_is_refused() {
    let empty = Envelope {
        event_type: "SomethingNew".to_owned(),
        ..Envelope::default()
    };
    assert_eq!(
        event_of(&empty),
        Err(ContractError::MissingPayload {
            event_type: "SomethingNew".to_owned()
        })
    );
    let mismatched = Envelope {
        event_type: "TeamFormed".to_owned(),
        payload: Some(Payload::FeedbackGiven(feedback())),
        ..Envelope::default()
    };
    assert_eq!(
        event_of(&mismatched).unwrap_err().to_string(),
        "the envelope says event type “TeamFormed” but carries a FeedbackGiven payload"
    );
}

#[test]
fn bytes_that_are_not_an_envelope_are_refused() {
    let err = decode_envelope(&[0xff, 0xff, 0xff]).unwrap_err();
    assert!(matches!(err, ContractError::Decode { .. }), "{err:?}");
    // An envelope from a newer contract whose payload field this build does not
    // know decodes, but says which event type it could not read.
    let mut bytes = Envelope {
        event_type: "FromTheFuture".to_owned(),
        ..Envelope::default()
    }
    .encode_to_vec();
    bytes.extend([0xfa, 0x3e, 0x00]); // field 999, length-delimited, empty
    assert_eq!(
        decode_envelope(&bytes).unwrap_err().to_string(),
        "the envelope of a “FromTheFuture” event has no payload this build knows (is the contract older than the sender's?)"
    );
}
