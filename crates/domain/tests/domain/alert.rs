use serde_json::json;
use trellis_domain::alert::{AlertDetails, AlertRaised, OccurrenceKey, Recipient};
use trellis_domain::{
    AlertAggregate, AlertCommand, AlertEvent, AlertId, AlertKind, Event, Rejection, ValueError,
};
use uuid::Uuid;

use crate::support::{date, id};

fn key(k: &str) -> OccurrenceKey {
    OccurrenceKey::try_from(k).expect("a valid key")
}

fn raise(k: &str, details: AlertDetails, recipients: Vec<Recipient>) -> AlertCommand {
    AlertCommand::Raise {
        occurrence_key: key(k),
        team_id: id(1),
        rep_id: id(10),
        recipients,
        details,
        raised_on: date("2026-03-02"),
    }
}

/// The event `raise(k, details, [leader 20, rep 10])` records.
pub fn raised(k: &str, details: AlertDetails) -> AlertRaised {
    AlertRaised {
        alert_id: AlertId::for_occurrence(&key(k)),
        occurrence_key: key(k),
        team_id: id(1),
        rep_id: id(10),
        recipients: vec![Recipient::Leader(id(20)), Recipient::Rep(id(10))],
        details,
        raised_on: date("2026-03-02"),
    }
}

fn not_coached() -> AlertDetails {
    AlertDetails::NotCoached {
        last_coached_on: None,
        days: 20,
    }
}

#[test]
fn raising_an_occurrence_records_it_once() {
    crate::support::check::<AlertAggregate>(
        vec![],
        raise(
            "not_coached/10/2026-02-10",
            not_coached(),
            vec![Recipient::Rep(id(10)), Recipient::Leader(id(20))],
        ),
        Ok(vec![
            raised("not_coached/10/2026-02-10", not_coached()).into(),
        ]),
    );
}

#[test]
fn raising_the_same_occurrence_again_records_nothing() {
    crate::support::check::<AlertAggregate>(
        vec![raised("not_coached/10/2026-02-10", not_coached()).into()],
        raise(
            "not_coached/10/2026-02-10",
            not_coached(),
            vec![Recipient::Leader(id(20))],
        ),
        Ok(vec![]),
    );
}

#[test]
fn an_alert_for_no_one_is_refused() {
    crate::support::check::<AlertAggregate>(
        vec![],
        raise("not_coached/10/2026-02-10", not_coached(), vec![]),
        Err(Rejection::AlertWithoutRecipients {
            occurrence_key: "not_coached/10/2026-02-10".to_owned(),
        }),
    );
}

#[test]
fn the_alert_id_is_a_name_based_uuid_of_the_key_and_names_the_stream() {
    let a = AlertId::for_occurrence(&key("plan_review_near/3/2026-03-09"));
    assert_eq!(
        a,
        AlertId::for_occurrence(&key("plan_review_near/3/2026-03-09"))
    );
    assert_ne!(
        a,
        AlertId::for_occurrence(&key("plan_review_near/3/2026-03-10"))
    );
    assert_eq!(a.as_uuid().get_version_num(), 5);
    assert_eq!(a.stream_id(), format!("alert-{a}"));
}

#[test]
fn occurrence_keys_are_one_token() {
    assert!(matches!(
        OccurrenceKey::try_from(""),
        Err(ValueError::EmptyLine { .. })
    ));
    assert!(matches!(
        OccurrenceKey::try_from("a b"),
        Err(ValueError::NotOneLine { .. })
    ));
    assert!(matches!(
        OccurrenceKey::try_from("x".repeat(401).as_str()),
        Err(ValueError::TextTooLong { .. })
    ));
}

#[test]
fn the_payload_tags_details_and_recipients_with_their_kind() {
    let event: Event = raised(
        "action_item_overdue/7",
        AlertDetails::ActionItemOverdue {
            action_item_id: id(7),
            due_on: date("2026-02-20"),
            days_overdue: 10,
        },
    )
    .into();
    let payload = event.to_payload();
    assert_eq!(
        payload["details"],
        json!({
            "kind": "action_item_overdue",
            "action_item_id": Uuid::from_u128(7),
            "due_on": "2026-02-20",
            "days_overdue": 10,
        })
    );
    assert_eq!(
        payload["recipients"],
        json!([
            {"kind": "leader", "id": Uuid::from_u128(20)},
            {"kind": "rep", "id": Uuid::from_u128(10)},
        ])
    );
    assert_eq!(event.category(), "alert");
    assert_eq!(event.occurred_on(), Some(date("2026-03-02")));
    let Event::Alert(AlertEvent::Raised(alert)) = &event else {
        panic!("an alert")
    };
    assert_eq!(alert.kind(), AlertKind::ActionItemOverdue);
    assert_eq!(
        Event::from_stored("AlertRaised", 1, payload).as_ref(),
        Ok(&event)
    );
}
