//! Hand-written conversion between domain events and wire messages.
//!
//! Every domain event struct implements [`Convert`] with its wire message; the
//! [`catalogue!`] below pairs each [`Event`] variant with its `Envelope.payload`
//! field. Both matches are exhaustive, so a new domain event or a new payload
//! field does not compile until it is converted here.
//!
//! Going to the wire cannot fail: a domain value is valid by construction.
//! Coming from the wire checks everything the domain's own parsers check (ids,
//! texts, levels, periods, targets, dates) and names the offending field.

mod alert;
mod competency;
mod leader;
mod rep;
mod standard;
mod team;

use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use trellis_domain::alert::AlertRaised;
use trellis_domain::competency::{CompetencyDefined, CompetencyRetired, CompetencyRevised};
use trellis_domain::leader::LeaderErased;
use trellis_domain::rep::{
    ActionItemCompleted, ActionItemDropped, CoachingSessionHeld, ExpectationsAcknowledged,
    FactCorrected, FeedbackAcknowledged, FeedbackGiven, ImprovementPlanClosed,
    ImprovementPlanStarted, PerformanceMeasured, PersonalDataErased, PlanCheckpointRecorded,
    RepDeparted, RepJoined, RepMovedTeam, RepRenamed, RepRoleChanged, ReviewHeld, SkillAssessed,
    SupportAcknowledged, SupportRequested, SupportResolved, TrainingCompleted,
};
use trellis_domain::standard::{StandardRetired, StandardRevised, StandardSet};
use trellis_domain::team::{LeaderAssigned, TeamFormed, TeamRenamed};
use trellis_domain::{
    AlertEvent, CompetencyEvent, DecodeError, Event, EventPayload, LeaderEvent, RepEvent,
    StandardEvent, TeamEvent, ValueError,
};
use trellis_eventstore::RecordedEvent;

use crate::error::ContractError;
use crate::proto::envelope::Payload;
use crate::proto::{self as w, Envelope};

/// A domain type and its wire message.
pub(crate) trait Convert: Sized {
    type Wire;

    /// The wire message; cannot fail, a domain value is always valid.
    fn to_wire(&self) -> Self::Wire;

    /// The domain value, checked as the domain's own parsers check it.
    fn from_wire(wire: &Self::Wire) -> Result<Self, ContractError>;
}

/// Pairs each domain event with its `Envelope.payload` field.
macro_rules! catalogue {
    ($( $Category:ident($Enum:ident::$Variant:ident($Struct:ident)) <=> $Payload:ident ),+ $(,)?) => {
        /// The `Envelope.payload` of a domain event.
        pub fn to_wire(event: &Event) -> Payload {
            match event {
                $( Event::$Category($Enum::$Variant(e)) => Payload::$Payload(e.to_wire()), )+
            }
        }

        /// The domain event a payload holds, checked field by field.
        pub fn from_wire(payload: &Payload) -> Result<Event, ContractError> {
            match payload {
                $( Payload::$Payload(m) => <$Struct as Convert>::from_wire(m).map(Event::from), )+
            }
        }

        /// The stable event type name (`"FeedbackGiven"`) of the event a payload holds.
        pub fn payload_type(payload: &Payload) -> &'static str {
            match payload {
                $( Payload::$Payload(_) => <$Struct as EventPayload>::EVENT_TYPE, )+
            }
        }
    };
}

catalogue! {
    Team(TeamEvent::Formed(TeamFormed)) <=> TeamFormed,
    Team(TeamEvent::LeaderAssigned(LeaderAssigned)) <=> LeaderAssigned,
    Team(TeamEvent::Renamed(TeamRenamed)) <=> TeamRenamed,
    Competency(CompetencyEvent::Defined(CompetencyDefined)) <=> CompetencyDefined,
    Competency(CompetencyEvent::Revised(CompetencyRevised)) <=> CompetencyRevised,
    Competency(CompetencyEvent::Retired(CompetencyRetired)) <=> CompetencyRetired,
    Standard(StandardEvent::Set(StandardSet)) <=> StandardSet,
    Standard(StandardEvent::Revised(StandardRevised)) <=> StandardRevised,
    Standard(StandardEvent::Retired(StandardRetired)) <=> StandardRetired,
    Rep(RepEvent::Joined(RepJoined)) <=> RepJoined,
    Rep(RepEvent::MovedTeam(RepMovedTeam)) <=> RepMovedTeam,
    Rep(RepEvent::RoleChanged(RepRoleChanged)) <=> RepRoleChanged,
    Rep(RepEvent::Departed(RepDeparted)) <=> RepDeparted,
    Rep(RepEvent::Renamed(RepRenamed)) <=> RepRenamed,
    Rep(RepEvent::ExpectationsAcknowledged(ExpectationsAcknowledged)) <=> ExpectationsAcknowledged,
    Rep(RepEvent::FeedbackGiven(FeedbackGiven)) <=> FeedbackGiven,
    Rep(RepEvent::FeedbackAcknowledged(FeedbackAcknowledged)) <=> FeedbackAcknowledged,
    Rep(RepEvent::SkillAssessed(SkillAssessed)) <=> SkillAssessed,
    Rep(RepEvent::CoachingSessionHeld(CoachingSessionHeld)) <=> CoachingSessionHeld,
    Rep(RepEvent::ActionItemCompleted(ActionItemCompleted)) <=> ActionItemCompleted,
    Rep(RepEvent::ActionItemDropped(ActionItemDropped)) <=> ActionItemDropped,
    Rep(RepEvent::TrainingCompleted(TrainingCompleted)) <=> TrainingCompleted,
    Rep(RepEvent::PerformanceMeasured(PerformanceMeasured)) <=> PerformanceMeasured,
    Rep(RepEvent::SupportRequested(SupportRequested)) <=> SupportRequested,
    Rep(RepEvent::SupportAcknowledged(SupportAcknowledged)) <=> SupportAcknowledged,
    Rep(RepEvent::SupportResolved(SupportResolved)) <=> SupportResolved,
    Rep(RepEvent::ImprovementPlanStarted(ImprovementPlanStarted)) <=> ImprovementPlanStarted,
    Rep(RepEvent::PlanCheckpointRecorded(PlanCheckpointRecorded)) <=> PlanCheckpointRecorded,
    Rep(RepEvent::ImprovementPlanClosed(ImprovementPlanClosed)) <=> ImprovementPlanClosed,
    Rep(RepEvent::FactCorrected(FactCorrected)) <=> FactCorrected,
    Rep(RepEvent::ReviewHeld(ReviewHeld)) <=> ReviewHeld,
    Rep(RepEvent::PersonalDataErased(PersonalDataErased)) <=> PersonalDataErased,
    Alert(AlertEvent::Raised(AlertRaised)) <=> AlertRaised,
    Leader(LeaderEvent::Erased(LeaderErased)) <=> LeaderErased,
}

/// The envelope of `event` as the log recorded it in `recorded`: position,
/// stream, times, actor and causation from the record, payload from `event`.
///
/// `event` is `recorded` decoded (and upcast) by [`Event::from_stored`]; the
/// envelope carries its current schema version. See [`envelope_from_stored`]
/// to do both at once.
pub fn envelope<P>(recorded: &RecordedEvent<P>, event: &Event) -> Envelope {
    debug_assert_eq!(recorded.event_type, event.event_type());
    let meta = &recorded.metadata;
    Envelope {
        event_id: uuid_text(recorded.event_id),
        stream_id: recorded.stream_id.as_str().to_owned(),
        stream_version: recorded.stream_version,
        global_position: recorded.global_position,
        event_type: event.event_type().to_owned(),
        schema_version: u32::from(event.schema_version()),
        occurred_at: Some(timestamp(meta.occurred_at)),
        recorded_at: Some(timestamp(meta.recorded_at)),
        actor: meta.actor.clone(),
        correlation_id: uuid_text(meta.correlation_id),
        causation_id: meta.causation_id.map(uuid_text),
        command_id: uuid_text(meta.command_id),
        payload: Some(to_wire(event)),
    }
}

/// A UUID as the envelope and the message headers write it: lowercase,
/// hyphenated. (Without the formatting machinery `to_string` goes through:
/// the relay does this several times per event.)
pub fn uuid_text(id: uuid::Uuid) -> String {
    let mut buffer = uuid::Uuid::encode_buffer();
    String::from(&*id.hyphenated().encode_lower(&mut buffer))
}

/// A domain id as the wire writes it (see [`uuid_text`]).
pub(crate) fn id_text(id: impl Into<uuid::Uuid>) -> String {
    uuid_text(id.into())
}

/// Decodes a stored event (upcasting older schema versions) and wraps it in its envelope.
pub fn envelope_from_stored(recorded: &RecordedEvent) -> Result<Envelope, DecodeError> {
    let event = Event::from_stored_ref(
        &recorded.event_type,
        recorded.schema_version,
        &recorded.payload,
    )?;
    Ok(envelope(recorded, &event))
}

/// The domain event an envelope carries; its payload must match its `event_type`.
pub fn event_of(envelope: &Envelope) -> Result<Event, ContractError> {
    let payload = envelope
        .payload
        .as_ref()
        .ok_or_else(|| ContractError::MissingPayload {
            event_type: envelope.event_type.clone(),
        })?;
    let payload_type = payload_type(payload);
    if envelope.event_type != payload_type {
        return Err(ContractError::TypeMismatch {
            envelope: envelope.event_type.clone(),
            payload: payload_type,
        });
    }
    from_wire(payload)
}

/// Decodes protobuf bytes (an NATS message body, a webhook body) into the
/// envelope and the domain event it carries.
pub fn decode_envelope(bytes: &[u8]) -> Result<(Envelope, Event), ContractError> {
    use prost::Message as _;
    let envelope = Envelope::decode(bytes).map_err(|e| ContractError::Decode {
        reason: e.to_string(),
    })?;
    let event = event_of(&envelope)?;
    Ok((envelope, event))
}

/// A UTC instant as a `google.protobuf.Timestamp`.
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    // chrono represents a leap second as nanos >= 1e9; Timestamp has no leap seconds.
    let nanos = at.timestamp_subsec_nanos().min(999_999_999);
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(nanos).expect("below one billion fits in i32"),
    }
}

/// A `google.protobuf.Timestamp` as a UTC instant; `field` names it in the error.
pub fn from_timestamp(
    message: &'static str,
    field: &'static str,
    at: Option<prost_types::Timestamp>,
) -> Result<DateTime<Utc>, ContractError> {
    let at = at.ok_or(ContractError::MissingField { message, field })?;
    u32::try_from(at.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(at.seconds, nanos))
        .filter(|_| at.nanos < 1_000_000_000)
        .ok_or(ContractError::InvalidTimestamp {
            message,
            field,
            seconds: at.seconds,
            nanos: at.nanos,
        })
}

/// A calendar date on the wire.
pub(crate) fn date(on: NaiveDate) -> w::Date {
    w::Date {
        year: on.year(),
        // Months are 1–12 and days 1–31: always within i32.
        month: on.month() as i32,
        day: on.day() as i32,
    }
}

/// Reads the fields of one wire message, naming the message in every error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields(pub &'static str);

impl Fields {
    pub(crate) fn missing(self, field: &'static str) -> ContractError {
        ContractError::MissingField {
            message: self.0,
            field,
        }
    }

    fn invalid(self, field: &'static str, source: ValueError) -> ContractError {
        ContractError::InvalidValue {
            message: self.0,
            field,
            source,
        }
    }

    /// An id (UUID text); empty is missing.
    pub(crate) fn id<T>(self, field: &'static str, value: &str) -> Result<T, ContractError>
    where
        T: FromStr<Err = ValueError>,
    {
        if value.is_empty() {
            return Err(self.missing(field));
        }
        value.parse().map_err(|e| self.invalid(field, e))
    }

    /// An optional id: absent is `None`, present must be valid.
    pub(crate) fn opt_id<T>(
        self,
        field: &'static str,
        value: Option<&String>,
    ) -> Result<Option<T>, ContractError>
    where
        T: FromStr<Err = ValueError>,
    {
        value.map(|v| self.id(field, v)).transpose()
    }

    /// Each id of a list.
    pub(crate) fn ids<T>(
        self,
        field: &'static str,
        values: &[String],
    ) -> Result<Vec<T>, ContractError>
    where
        T: FromStr<Err = ValueError>,
    {
        values.iter().map(|v| self.id(field, v)).collect()
    }

    /// A checked text (name, note, role, metric, period, digest); empty is missing.
    pub(crate) fn text<T>(self, field: &'static str, value: &str) -> Result<T, ContractError>
    where
        T: for<'a> TryFrom<&'a str, Error = ValueError>,
    {
        if value.is_empty() {
            return Err(self.missing(field));
        }
        T::try_from(value).map_err(|e| self.invalid(field, e))
    }

    /// Each text of a list.
    pub(crate) fn texts<T>(
        self,
        field: &'static str,
        values: &[String],
    ) -> Result<Vec<T>, ContractError>
    where
        T: for<'a> TryFrom<&'a str, Error = ValueError>,
    {
        values.iter().map(|v| self.text(field, v)).collect()
    }

    /// A checked number or other value with a `TryFrom` parser.
    pub(crate) fn value<T, V>(self, field: &'static str, value: V) -> Result<T, ContractError>
    where
        T: TryFrom<V, Error = ValueError>,
    {
        T::try_from(value).map_err(|e| self.invalid(field, e))
    }

    /// A required nested message.
    pub(crate) fn message<'a, M>(
        self,
        field: &'static str,
        value: Option<&'a M>,
    ) -> Result<&'a M, ContractError> {
        value.ok_or_else(|| self.missing(field))
    }

    /// A required calendar date.
    pub(crate) fn date(
        self,
        field: &'static str,
        value: Option<w::Date>,
    ) -> Result<NaiveDate, ContractError> {
        let d = value.ok_or_else(|| self.missing(field))?;
        u32::try_from(d.month)
            .ok()
            .zip(u32::try_from(d.day).ok())
            .and_then(|(month, day)| NaiveDate::from_ymd_opt(d.year, month, day))
            .ok_or(ContractError::InvalidDate {
                message: self.0,
                field,
                year: d.year,
                month: d.month,
                day: d.day,
            })
    }

    /// A known, specified enum value (`*_UNSPECIFIED` is missing).
    pub(crate) fn enumeration<E>(self, field: &'static str, value: i32) -> Result<E, ContractError>
    where
        E: TryFrom<i32>,
    {
        if value == 0 {
            return Err(self.missing(field));
        }
        E::try_from(value).map_err(|_| ContractError::UnknownEnumValue {
            message: self.0,
            field,
            value,
        })
    }

    /// A `u32` narrowed to `u16`.
    pub(crate) fn u16(self, field: &'static str, value: u32) -> Result<u16, ContractError> {
        u16::try_from(value).map_err(|_| ContractError::OutOfRange {
            message: self.0,
            field,
            value: u64::from(value),
            range: "0 to 65535",
        })
    }
}
