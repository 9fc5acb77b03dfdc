//! The envelope every record travels in, and its binary form.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::events::{Event, Topic};

/// Current schema version of every payload this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Who asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user_id: String,
    pub project_id: String,
    pub roles: Vec<String>,
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }

    /// The actor as Glance's image policy sees it.
    pub fn image_caller(&self) -> crate::image::Caller<'_> {
        crate::image::Caller {
            project_id: &self.project_id,
            roles: &self.roles,
        }
    }

    /// The actor of records a service writes on its own account.
    pub fn service(name: &str) -> Self {
        Actor {
            user_id: name.to_owned(),
            project_id: "service".to_owned(),
            roles: vec!["service".to_owned()],
        }
    }
}

/// Everything about a record except its payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub event_id: Uuid,
    pub schema_version: u32,
    pub occurred_at_ms: i64,
    /// The request id (`req-<uuid>`) of the API call that started it all.
    pub correlation_id: String,
    /// The record that caused this one.
    pub causation_id: Option<Uuid>,
    pub actor: Actor,
    pub aggregate_id: String,
    /// Version of the aggregate after this event (0 where there is none).
    pub aggregate_version: u64,
}

impl Meta {
    /// Metadata for a record that starts a chain (an API intent, a host's
    /// own report).
    pub fn origin(
        event_id: Uuid,
        correlation_id: String,
        actor: Actor,
        aggregate_id: String,
    ) -> Self {
        Meta {
            event_id,
            schema_version: SCHEMA_VERSION,
            occurred_at_ms: crate::now_ms(),
            correlation_id,
            causation_id: None,
            actor,
            aggregate_id,
            aggregate_version: 0,
        }
    }

    /// Metadata for the record that `self`'s record causes at `step`. The id
    /// is derived from the cause and the step, so handling a redelivered
    /// record again yields the same ids and readers drop the duplicates.
    pub fn caused(&self, step: &str, aggregate_id: String, aggregate_version: u64) -> Self {
        Meta {
            event_id: Uuid::new_v5(&self.event_id, step.as_bytes()),
            schema_version: SCHEMA_VERSION,
            occurred_at_ms: crate::now_ms(),
            correlation_id: self.correlation_id.clone(),
            causation_id: Some(self.event_id),
            actor: self.actor.clone(),
            aggregate_id,
            aggregate_version,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub meta: Meta,
    pub event: Event,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("malformed protobuf in {what}: {message}")]
    Malformed { what: String, message: String },
    #[error("unknown record type {0:?}")]
    UnknownType(String),
    #[error("unsupported schema version {version} of {type_name}")]
    UnsupportedVersion { type_name: String, version: u32 },
    #[error("invalid field {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("missing field {0}")]
    Missing(&'static str),
    #[error("a {type_name} record does not belong on topic {topic}")]
    WrongTopic {
        type_name: String,
        topic: &'static str,
    },
}

/// Encodes an envelope to its wire form.
pub fn encode(env: &Envelope) -> Vec<u8> {
    crate::convert::encode_envelope(env)
}

/// Decodes and validates a record; anything off is an error (for the
/// dead-letter topic), never a panic.
pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    crate::convert::decode_envelope(bytes)
}

/// Decodes a record read from `topic`: as [`decode`], and a record whose
/// type does not belong on that topic is an error too (it goes to the
/// dead-letter topic like any record that does not decode), so every
/// handler sees only its topics' own types.
pub fn decode_on(topic: Topic, bytes: &[u8]) -> Result<Envelope, DecodeError> {
    let env = decode(bytes)?;
    if env.event.topic() == topic {
        Ok(env)
    } else {
        Err(DecodeError::WrongTopic {
            type_name: env.event.type_name().to_owned(),
            topic: topic.name(),
        })
    }
}

/// Decodes only a record's metadata and its type name, leaving the payload
/// alone: enough to answer a record whose payload does not decode (the
/// conductor's verdict on an intent it cannot read).
pub fn decode_meta(bytes: &[u8]) -> Result<(Meta, String), DecodeError> {
    crate::convert::decode_meta(bytes)
}
