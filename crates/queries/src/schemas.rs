//! The schemas of the read API's bodies that this crate describes by hand,
//! and the errors every read can answer with.
//!
//! Bodies built by this crate are described field by field. Those that are
//! documents of the `growth` projection (a profile, a timeline row, a team
//! view, a scorecard, a coaching-impact row) are described as JSON objects
//! with a description of their fields: deriving schemas inside
//! `trellis-projections` would teach a storage crate about HTTP. Enums of
//! the domain are described as strings whose values are serialized from the
//! domain's own variants, so their spelling cannot drift.

use std::borrow::Cow;

use serde::Serialize;
use trellis_domain::rep::{PlanOutcome, SupportCategory};
use trellis_domain::{PeriodKind, StandardKind};
use trellis_http::problem::Problem;
use trellis_projections::growth::derive::StandingKind;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, Object, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::{IntoResponses, PartialSchema, ToSchema};

/// The refusal every read can answer with, an `application/problem+json`
/// body; routes list it with `trellis_http::openapi::CommonErrors` (401,
/// 503), and add their own 400 (a bad query parameter, named) and 404 (what
/// they did not find), each described where it applies.
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum ReadErrors {
    /// The token may not read this: a rep reads only their own records, a
    /// leader only their teams, a service needs the grant `reads:read`.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
}

/// The 404 of a read about a rep in the read models.
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum RepNotProjected {
    /// No such rep in the read models (or the id is not a UUID); a rep who
    /// joined a moment ago appears once the projection catches up.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
}

/// The 404 of a read about a team in the read models.
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum TeamNotProjected {
    /// No such team in the read models (or the id is not a UUID); a team
    /// formed a moment ago appears once the projection catches up.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
}

/// A schema for a body this crate does not own: a named JSON object with a
/// description of its fields, so generated clients get a type name and a
/// person knows what is in it.
macro_rules! described_object {
    ($(#[$doc:meta])* $marker:ident as $name:literal: $description:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $marker;

        impl PartialSchema for $marker {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .description(Some($description))
                    .build()
                    .into()
            }
        }

        impl ToSchema for $marker {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

described_object!(
    /// `trellis_projections::query::RepProfileView`.
    RepProfileSchema as "RepProfileView":
    "A rep's profile as of a day (a document of the `growth` projection): `as_of` (the day it \
     is judged on), `standing` (a Standing: `standing` and its `reasons`), \
     `open_action_items` (each with `overdue`), `overdue_action_items` (a count) and \
     `profile`: the rep's name, role, team, start date, phase, skill levels by competency, \
     coaching and feedback counts, support requests, improvement plans, open action \
     items, `feedback` (each piece with `given_on` and `acknowledged_on`, null until the rep \
     acknowledges it) and `acknowledged_standards` (each standard's `version` the rep \
     acknowledged, and `on`). A rep reading their own profile sees nothing that came from \
     a private session and no private feedback."
);

described_object!(
    /// `trellis_projections::query::TimelineRowView`.
    TimelineRowSchema as "TimelineRow":
    "One period of a rep's growth timeline (a document of the `growth` projection): the \
     period (`kind`, `start`, `end`), each standard's target, actual and attainment in it, \
     skill levels at its end, coaching, feedback (per competency: `praise`, `constructive` \
     and how many of them the rep has `acknowledged`) and training counts, and \
     `action_items_overdue` (overdue at the end of the period, or today if it has not ended)."
);

described_object!(
    /// `trellis_projections::query::TeamView`.
    TeamViewSchema as "TeamView":
    "A team in one period (from the `growth` projection): `team_id`, `name`, `period`, \
     `as_of`, `leaders` (leader id to name), `headcount`, `reps`, `coaching` (coverage, \
     sessions, minutes), `attainment` (per standard: reps measured, met, near, missed badly, \
     min, median, max), `needs_support` (reps and their standing), `ramp` (new hires' ramp \
     targets and results), `open_plans` and `support` (open, raised, resolved, median days \
     to resolve)."
);

described_object!(
    /// `trellis_projections::query::LeaderScorecard`.
    LeaderScorecardSchema as "LeaderScorecard":
    "How well a leader served their teams between `from` and `to` (inclusive), from the \
     `growth` projection: `leader_id`, `name`, `as_of`, sessions held, coaching minutes, reps \
     coached, praise and constructive feedback with `praise_share`, support requests \
     resolved with the median days to resolve, and the action items they own that were due \
     in the range (completed on time, late, dropped, overdue, `on_time_rate`), and \
     `action_items_overdue_from_before`: those due before the range and still open today."
);

described_object!(
    /// `trellis_projections::query::CoachingImpact`.
    CoachingImpactSchema as "CoachingImpact":
    "How one competency moved after coaching on it (from the `growth` projection): \
     `competency_id`, `coached_weeks` (weeks with coaching on it whose after-window has \
     ended), `level_before` and `level_after` (the mean skill level the week before and N \
     weeks after), `attainment_before` and `attainment_after` (mean weekly attainment in \
     the N weeks before and after). Values are null when there is nothing to average."
);

/// `trellis_projections::growth::Standing`, small enough to describe field
/// by field; a unit test checks it against what the type serializes.
#[derive(Debug)]
pub struct StandingSchema;

impl PartialSchema for StandingSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "A rep's standing and the reasons that made it so, in words a leader reads.",
            ))
            .property("standing", standing_kind())
            .required("standing")
            .property(
                "reasons",
                ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String).build()),
            )
            .required("reasons")
            .build()
            .into()
    }
}

impl ToSchema for StandingSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Standing")
    }
}

/// A string schema whose values are `variants` as serde writes them; with
/// `nullable`, `null` too (for an `Option` the handler writes as `null`).
fn string_enum<T: Serialize>(description: &str, variants: &[T], nullable: bool) -> Object {
    let mut values: Vec<serde_json::Value> = variants
        .iter()
        .filter_map(|v| serde_json::to_value(v).ok())
        .filter(serde_json::Value::is_string)
        .collect();
    let schema_type = if nullable {
        values.push(serde_json::Value::Null);
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .enum_values(Some(values))
        .description(Some(description))
        .build()
}

// Each list below names every variant in a match first, so that a variant
// added to the domain fails to compile here instead of going undocumented.

pub fn period_kind() -> Object {
    use PeriodKind::*;
    let _every = |k: PeriodKind| match k {
        Week | Month | Quarter => (),
    };
    string_enum(
        "A kind of period: an ISO week, a calendar month or a calendar quarter.",
        &[Week, Month, Quarter],
        false,
    )
}

pub fn standard_kind() -> Object {
    use StandardKind::*;
    let _every = |k: StandardKind| match k {
        Quality | Quantity | Behaviour => (),
    };
    string_enum(
        "What a standard is about: how the work is done, how much, or a habit.",
        &[Quality, Quantity, Behaviour],
        false,
    )
}

pub fn support_category() -> Object {
    use SupportCategory::*;
    let _every = |c: SupportCategory| match c {
        Leads | Tools | Training | Process | Other => (),
    };
    string_enum(
        "What kind of obstacle the rep raised.",
        &[Leads, Tools, Training, Process, Other],
        false,
    )
}

pub fn plan_outcome() -> Object {
    use PlanOutcome::*;
    let _every = |o: PlanOutcome| match o {
        Met | Extended | NotMet => (),
    };
    string_enum(
        "How an improvement plan ended; null while it is open.",
        &[Met, Extended, NotMet],
        true,
    )
}

pub fn standing_kind() -> Object {
    use StandingKind::*;
    let _every = |k: StandingKind| match k {
        Departed | OnImprovementPlan | NeedsSupport | OnTrack | Thriving => (),
    };
    string_enum(
        "A derived standing, most serious first.",
        &[Departed, OnImprovementPlan, NeedsSupport, OnTrack, Thriving],
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use trellis_projections::growth::Standing;

    /// Whether `schema` marks `field` required.
    fn requires(schema: &Object, field: &str) -> bool {
        schema.required.iter().any(|r| r == field)
    }

    #[test]
    fn the_standing_schema_names_exactly_the_fields_a_standing_serializes() {
        let standing = Standing {
            standing: StandingKind::NeedsSupport,
            reasons: vec!["two action items overdue".into()],
        };
        let value = serde_json::to_value(&standing).expect("a standing serializes");
        let RefOr::T(Schema::Object(schema)) = StandingSchema::schema() else {
            panic!("the standing schema is an object");
        };
        let mut serialized: Vec<&String> = value.as_object().expect("an object").keys().collect();
        let mut described: Vec<&String> = schema.properties.keys().collect();
        serialized.sort();
        described.sort();
        assert_eq!(serialized, described);
        assert!(requires(&schema, "standing") && requires(&schema, "reasons"));
        let RefOr::T(Schema::Object(kind)) = &schema.properties["standing"] else {
            panic!("the standing kind is inline");
        };
        let values = kind.enum_values.as_ref().expect("an enum");
        assert!(values.contains(&value["standing"]), "{values:?}");
        assert_eq!(values.len(), 5);
    }

    #[test]
    fn a_nullable_enum_allows_null_and_every_variant_as_serde_writes_it() {
        let schema = plan_outcome();
        let values = schema.enum_values.expect("an enum");
        assert!(values.contains(&serde_json::json!("not_met")), "{values:?}");
        assert!(values.contains(&serde_json::Value::Null), "{values:?}");
        assert!(schema.schema_type == SchemaType::from_iter([Type::String, Type::Null]));
    }
}
