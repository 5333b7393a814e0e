//! How an aggregate's events become stored payloads: each event struct's
//! stable type name and schema version ([`EventPayload`]), declared with
//! `event_enum!` beside the aggregate. The catalogue of every aggregate's
//! events is [`crate::event::Event`].

use serde::Serialize;
use serde_json::Value;

/// Implemented by every event struct: its stable type name and current schema version.
pub trait EventPayload: Serialize {
    /// The stable type name, in PascalCase (e.g. `"FeedbackGiven"`).
    const EVENT_TYPE: &'static str;
    /// The current schema version of the payload, starting at 1.
    const SCHEMA_VERSION: u16;
}

/// Serializes an event struct's own fields.
pub(crate) fn payload_of<E: Serialize>(event: &E) -> Value {
    // Event structs hold only strings, numbers, dates, sequences and string-keyed
    // structs, for which serialization to a JSON value cannot fail.
    serde_json::to_value(event).expect("event structs always serialize to JSON")
}

/// Declares one aggregate's event enum over its event structs, with each
/// struct's stable type name and current schema version.
macro_rules! event_enum {
    (
        $(#[$meta:meta])*
        pub enum $Enum:ident in $category:literal {
            $( $(#[$vmeta:meta])* $Variant:ident($Struct:ident) = ($type_name:literal, v $version:literal) ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $Enum {
            $( $(#[$vmeta])* $Variant($Struct), )+
        }

        $(
            impl $crate::payload::EventPayload for $Struct {
                const EVENT_TYPE: &'static str = $type_name;
                const SCHEMA_VERSION: u16 = $version;
            }

            impl From<$Struct> for $Enum {
                fn from(event: $Struct) -> Self {
                    $Enum::$Variant(event)
                }
            }

            impl From<$Struct> for $crate::event::Event {
                fn from(event: $Struct) -> Self {
                    $crate::event::Event::from($Enum::$Variant(event))
                }
            }
        )+

        impl $Enum {
            /// The stream category of this aggregate.
            pub const CATEGORY: &'static str = $category;

            /// Every event type of this aggregate with its current schema version.
            pub const TYPES: &'static [(&'static str, u16)] = &[ $( ($type_name, $version), )+ ];

            /// The stable type name.
            pub fn event_type(&self) -> &'static str {
                match self {
                    $( Self::$Variant(_) => $type_name, )+
                }
            }

            /// The schema version the payload is written in.
            pub fn schema_version(&self) -> u16 {
                match self {
                    $( Self::$Variant(_) => $version, )+
                }
            }

            /// The event's own fields as JSON.
            pub fn to_payload(&self) -> serde_json::Value {
                match self {
                    $( Self::$Variant(event) => $crate::payload::payload_of(event), )+
                }
            }

            /// Decodes a payload already in the current schema version; `None` when
            /// `event_type` is not one of this aggregate's.
            pub(crate) fn decode_current(
                event_type: &str,
                payload: serde_json::Value,
            ) -> Option<Result<Self, serde_json::Error>> {
                match event_type {
                    $( $type_name => Some(serde_json::from_value::<$Struct>(payload).map(Self::$Variant)), )+
                    _ => None,
                }
            }

            /// [`Self::decode_current`] from a borrowed payload, with no copy of it.
            pub(crate) fn decode_current_ref(
                event_type: &str,
                payload: &serde_json::Value,
            ) -> Option<Result<Self, serde_json::Error>> {
                match event_type {
                    $( $type_name => Some(<$Struct as serde::Deserialize>::deserialize(payload).map(Self::$Variant)), )+
                    _ => None,
                }
            }

            /// [`Self::decode_current`] from the payload's JSON text, with no
            /// `serde_json::Value` in between.
            pub(crate) fn decode_current_json(
                event_type: &str,
                payload: &str,
            ) -> Option<Result<Self, serde_json::Error>> {
                match event_type {
                    $( $type_name => Some(serde_json::from_str::<$Struct>(payload).map(Self::$Variant)), )+
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use event_enum;
