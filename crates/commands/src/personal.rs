//! The domain's knowledge of personal data, handed to the log's
//! [`Vault`](trellis_eventstore::vault::Vault): which strings the write path
//! encrypts with whose key, and what an erased one reads as.

use serde_json::Value;
use trellis_domain::personal;
use trellis_eventstore::vault::{Kind, PersonalData};
use uuid::Uuid;

/// [`PersonalData`] as `trellis_domain::personal` says.
#[derive(Debug, Clone, Copy, Default)]
pub struct DomainPersonalData;

impl PersonalData for DomainPersonalData {
    fn owner(&self, stream: &str, event_type: &str, payload: &Value) -> Option<Uuid> {
        personal::owner(stream, event_type, payload)
    }

    fn visit(&self, event_type: &str, payload: &mut Value, each: &mut dyn FnMut(Kind, &mut Value)) {
        personal::visit(event_type, payload, &mut |kind, value| {
            each(
                match kind {
                    personal::Kind::Name => Kind::Name,
                    personal::Kind::Text => Kind::Text,
                },
                value,
            )
        });
    }

    fn erased(&self, kind: Kind) -> &'static str {
        match kind {
            Kind::Name => personal::ERASED_NAME,
            Kind::Text => personal::ERASED_TEXT,
        }
    }
}
