use trellis_domain::{
    CompetencyId, MetricName, MetricValue, Name, NonEmptyText, PersonName, Rejection, RepId, Role,
    Rubric, Sha256Hex, SkillLevel, StandardId, Target, TeamId, ValueError, stream_id,
};
use uuid::Uuid;

use crate::support::{id, text};

#[test]
fn skill_level_accepts_each_level_from_1_to_5() {
    for n in 1u8..=5 {
        assert_eq!(SkillLevel::try_from(n).map(SkillLevel::get), Ok(n));
    }
}

#[test]
fn skill_level_outside_1_to_5_is_rejected_at_parse_time() {
    for n in [0i64, 6, -1, 256] {
        assert_eq!(
            SkillLevel::try_from(n),
            Err(ValueError::SkillLevelOutOfRange {
                value: n.to_string()
            })
        );
    }
    assert!(matches!(
        "three".parse::<SkillLevel>(),
        Err(ValueError::SkillLevelOutOfRange { .. })
    ));
    assert_eq!("4".parse::<SkillLevel>().map(SkillLevel::get), Ok(4));
}

#[test]
fn skill_level_out_of_range_becomes_a_rejection_at_the_edge() {
    let rejection: Rejection = SkillLevel::try_from(7u8).unwrap_err().into();
    assert_eq!(
        rejection,
        Rejection::Invalid(ValueError::SkillLevelOutOfRange { value: "7".into() })
    );
    assert_eq!(
        rejection.to_string(),
        "A skill level must be a whole number from 1 to 5, but 7 was given. \
         Pick the rubric level that best matches the evidence."
    );
}

#[test]
fn skill_level_deserializes_only_from_1_to_5() {
    assert_eq!(
        serde_json::from_str::<SkillLevel>("3")
            .map(SkillLevel::get)
            .ok(),
        Some(3)
    );
    assert!(serde_json::from_str::<SkillLevel>("6").is_err());
    assert!(serde_json::from_str::<SkillLevel>("0").is_err());
}

#[test]
fn non_empty_text_is_trimmed() {
    assert_eq!(
        text("  good discovery call \n").as_str(),
        "good discovery call"
    );
}

#[test]
fn an_empty_or_blank_note_is_rejected_with_a_rejection_for_the_edge() {
    for blank in ["", "   ", "\n\t"] {
        assert_eq!(
            NonEmptyText::try_from(blank),
            Err(ValueError::EmptyText { what: "text" })
        );
    }
    let rejection = Rejection::from(NonEmptyText::try_from("").unwrap_err());
    assert_eq!(
        rejection.to_string(),
        "The text is empty. Write at least a few words."
    );
}

#[test]
fn text_longer_than_its_limit_is_rejected() {
    let long = "x".repeat(NonEmptyText::MAX_CHARS + 1);
    assert_eq!(
        NonEmptyText::try_from(long.as_str()),
        Err(ValueError::TextTooLong {
            what: "text",
            max: 10_000,
            actual: 10_001
        })
    );
    assert!(NonEmptyText::try_from("x".repeat(NonEmptyText::MAX_CHARS).as_str()).is_ok());
}

#[test]
fn names_and_roles_must_be_one_line() {
    assert_eq!(
        Name::try_from("Team\nWest"),
        Err(ValueError::NotOneLine { what: "name" })
    );
    assert_eq!(
        PersonName::try_from("Ada\rLovelace"),
        Err(ValueError::NotOneLine { what: "name" })
    );
    assert_eq!(
        Role::try_from(" AE ").map(String::from),
        Ok("AE".to_owned())
    );
}

#[test]
fn metric_names_are_lowercase_slugs() {
    for good in ["calls_made", "discovery_score", "meetings2", "x"] {
        assert_eq!(
            MetricName::try_from(good).map(String::from),
            Ok(good.to_owned()),
            "{good}"
        );
    }
    for bad in [
        "",
        "Calls",
        "calls made",
        "2calls",
        "_calls",
        "calls_",
        "calls__made",
        "calls-made",
        "ç",
    ] {
        assert_eq!(
            MetricName::try_from(bad),
            Err(ValueError::InvalidMetricName {
                input: bad.to_owned()
            }),
            "{bad}"
        );
    }
}

#[test]
fn a_non_positive_or_non_finite_target_is_rejected() {
    assert_eq!(Target::try_from(40.0).map(Target::get), Ok(40.0));
    for bad in [0.0, -5.0, f64::INFINITY] {
        assert_eq!(
            Target::try_from(bad),
            Err(ValueError::TargetNotPositive { value: bad })
        );
    }
    assert!(Target::try_from(f64::NAN).is_err());
    let rejection = Rejection::from(Target::try_from(0.0).unwrap_err());
    assert_eq!(
        rejection.to_string(),
        "A target must be a number greater than zero, but 0 was given. \
         Set the level a rep is expected to reach."
    );
}

#[test]
fn a_metric_value_is_zero_or_more_and_finite() {
    assert_eq!(MetricValue::try_from(0.0).map(MetricValue::get), Ok(0.0));
    assert_eq!(MetricValue::try_from(12.5).map(MetricValue::get), Ok(12.5));
    assert_eq!(
        MetricValue::try_from(-1.0),
        Err(ValueError::MetricValueInvalid { value: -1.0 })
    );
    assert!(MetricValue::try_from(f64::NAN).is_err());
    assert!(MetricValue::try_from(f64::INFINITY).is_err());
}

#[test]
fn a_rubric_needs_exactly_five_levels() {
    let levels = |n: usize| {
        (1..=n)
            .map(|i| text(&format!("level {i}")))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        Rubric::try_from(levels(4)),
        Err(ValueError::RubricNotFiveLevels { count: 4 })
    );
    assert_eq!(
        Rubric::try_from(levels(6)),
        Err(ValueError::RubricNotFiveLevels { count: 6 })
    );
    let rubric = Rubric::try_from(levels(5)).expect("five levels");
    assert_eq!(rubric.describe(SkillLevel::MAX).as_str(), "level 5");
    assert_eq!(rubric.describe(SkillLevel::MIN).as_str(), "level 1");
}

#[test]
fn ids_parse_from_their_string_form_and_reject_anything_else() {
    let uuid = Uuid::from_u128(42);
    assert_eq!(
        uuid.to_string().parse::<RepId>(),
        Ok(RepId::from_uuid(uuid))
    );
    assert_eq!(
        "not-an-id".parse::<TeamId>(),
        Err(ValueError::InvalidId {
            what: "team id",
            input: "not-an-id".into()
        })
    );
    assert_eq!(
        serde_json::to_string(&RepId::from_uuid(uuid)).ok(),
        Some(format!("\"{uuid}\""))
    );
}

#[test]
fn stream_ids_are_category_dash_uuid() {
    let uuid = Uuid::from_u128(7);
    assert_eq!(stream_id("rep", uuid), format!("rep-{uuid}"));
    assert_eq!(id::<RepId>(7).stream_id(), format!("rep-{uuid}"));
    assert_eq!(id::<TeamId>(7).stream_id(), format!("team-{uuid}"));
    assert_eq!(
        id::<CompetencyId>(7).stream_id(),
        format!("competency-{uuid}")
    );
    assert_eq!(id::<StandardId>(7).stream_id(), format!("standard-{uuid}"));
}

#[test]
fn sha256_digest_is_64_lowercase_hex_characters() {
    let digest = "ab".repeat(32);
    assert_eq!(
        Sha256Hex::try_from(digest.as_str()).map(String::from),
        Ok(digest.clone())
    );
    for bad in ["AB".repeat(32), "ab".repeat(31), "zz".repeat(32)] {
        assert_eq!(
            Sha256Hex::try_from(bad.as_str()),
            Err(ValueError::InvalidSha256 { input: bad.clone() })
        );
    }
}

#[test]
fn an_error_about_a_value_can_name_what_the_value_is() {
    let empty = Name::try_from("  ").expect_err("empty");
    assert_eq!(
        empty.about("unit").to_string(),
        "The unit is empty: fill it in."
    );
    let note = NonEmptyText::try_from("\n ").expect_err("empty");
    assert_eq!(
        note.to_string(),
        "The text is empty. Write at least a few words."
    );
}
