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

/// The leading fields of a record's envelope, read in place: no payload
/// decoded, nothing allocated. What a reader that needs only some records
/// looks at before it decodes the rest (see [`peek_header`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The event id as written (a UUID's text).
    pub event_id: &'a str,
    pub type_name: &'a str,
    pub occurred_at_ms: i64,
    /// The causing record's event id as written; `None` when absent
    /// (empty on the wire).
    pub causation_id: Option<&'a str>,
}

/// Reads a record's [`Header`] (the envelope's fields 1 to 6) without
/// decoding the rest; `None` when the bytes are not an envelope with an
/// event id and a type (the full [`decode`] says why). The header is
/// read as [`decode`] would read it; it is not validated (an event id
/// that is not a UUID is returned as written).
pub fn peek_header(bytes: &[u8]) -> Option<Header<'_>> {
    fn varint(b: &[u8], at: &mut usize) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *b.get(*at)?;
            *at += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let (mut event_id, mut type_name, mut occurred_at_ms, mut causation_id) =
        (None, None, 0i64, None);
    let mut at = 0;
    while at < bytes.len() {
        let key = varint(bytes, &mut at)?;
        let field = key >> 3;
        // prost writes fields in number order, and the payload (10) is
        // last: stop at the first field past the header. (A field seen
        // twice is taken last, as protobuf does.)
        if field > 6 && event_id.is_some() && type_name.is_some() {
            break;
        }
        match key & 7 {
            2 => {
                let len = usize::try_from(varint(bytes, &mut at)?).ok()?;
                let value = bytes.get(at..at.checked_add(len)?)?;
                at += len;
                match field {
                    1 => event_id = Some(std::str::from_utf8(value).ok()?),
                    2 => type_name = Some(std::str::from_utf8(value).ok()?),
                    6 => causation_id = Some(std::str::from_utf8(value).ok()?),
                    _ => {}
                }
            }
            0 => {
                let v = varint(bytes, &mut at)?;
                if field == 4 {
                    // int64: two's complement in ten bytes when negative.
                    occurred_at_ms = v as i64;
                }
            }
            1 => at = at.checked_add(8)?,
            5 => at = at.checked_add(4)?,
            _ => return None,
        }
    }
    Some(Header {
        event_id: event_id?,
        type_name: type_name?,
        occurred_at_ms,
        causation_id: causation_id.filter(|c: &&str| !c.is_empty()),
    })
}

#[cfg(test)]
mod peek_tests {
    use super::*;
    use crate::{Event, InstanceEvent};
    use uuid::Uuid;

    fn record(at: i64, cause: Option<Uuid>) -> Envelope {
        let mut meta = Meta::origin(
            Uuid::new_v4(),
            "req-1".into(),
            Actor {
                user_id: "u".into(),
                project_id: "p".into(),
                roles: vec!["admin".into()],
            },
            Uuid::new_v4().to_string(),
        );
        meta.occurred_at_ms = at;
        meta.aggregate_version = 7;
        meta.causation_id = cause;
        Envelope {
            meta,
            event: Event::Instance(InstanceEvent::InstanceDeleteStarted),
        }
    }

    #[test]
    fn the_header_is_read_as_decode_reads_it() {
        for (at, cause) in [
            (1_796_083_200_123, Some(Uuid::new_v4())),
            (0, None),
            (-5, Some(Uuid::new_v4())),
        ] {
            let env = record(at, cause);
            let bytes = encode(&env);
            let h = peek_header(&bytes).unwrap();
            let decoded = decode(&bytes).unwrap();
            assert_eq!(h.event_id, decoded.meta.event_id.to_string());
            assert_eq!(h.type_name, "InstanceDeleteStarted");
            assert_eq!(h.occurred_at_ms, decoded.meta.occurred_at_ms);
            assert_eq!(
                h.causation_id.map(|c| Uuid::parse_str(c).unwrap()),
                decoded.meta.causation_id
            );
            assert_eq!(decoded.meta.causation_id, cause);
        }
    }

    #[test]
    fn a_cut_or_garbled_record_has_no_header_and_never_panics() {
        let bytes = encode(&record(1, Some(Uuid::new_v4())));
        for cut in 0..20 {
            let _ = peek_header(&bytes[..cut]);
        }
        assert!(peek_header(&bytes[..3]).is_none());
        assert!(peek_header(&[0xff; 12]).is_none());
        assert!(peek_header(b"not protobuf").is_none());
    }
}
