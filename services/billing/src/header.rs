//! A record's header read in place (the envelope's protobuf fields 1, 2
//! and 4), without decoding its payload or allocating: the fold skips the
//! record types billing does not need by it, before a full decode.

/// The header of a record read in place, without decoding its payload or
/// allocating: what a reader that needs only some record types looks at
/// before it decodes the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The event id as written (a UUID's text).
    pub event_id: &'a str,
    pub type_name: &'a str,
    pub occurred_at_ms: i64,
}

/// Reads a record's [`Header`]; `None` when the bytes are not an envelope
/// with those fields (the full [`novalog_schemas::decode`] says why).
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
    let (mut event_id, mut type_name, mut occurred_at_ms) = (None, None, 0i64);
    let mut at = 0;
    while at < bytes.len() {
        let key = varint(bytes, &mut at)?;
        match (key >> 3, key & 7) {
            (field, 2) => {
                let len = usize::try_from(varint(bytes, &mut at)?).ok()?;
                let value = bytes.get(at..at.checked_add(len)?)?;
                at += len;
                match field {
                    1 => event_id = Some(std::str::from_utf8(value).ok()?),
                    2 => type_name = Some(std::str::from_utf8(value).ok()?),
                    _ => {}
                }
            }
            (field, 0) => {
                let v = varint(bytes, &mut at)?;
                if field == 4 {
                    // int64: two's complement in ten bytes when negative.
                    occurred_at_ms = v as i64;
                }
            }
            (_, 1) => at = at.checked_add(8)?,
            (_, 5) => at = at.checked_add(4)?,
            _ => return None,
        }
        // The header fields come first (prost writes fields in number
        // order): stop before the payload.
        if event_id.is_some() && type_name.is_some() && key >> 3 >= 4 {
            break;
        }
    }
    Some(Header {
        event_id: event_id?,
        type_name: type_name?,
        occurred_at_ms,
    })
}

#[cfg(test)]
mod peek_tests {
    use super::*;
    use novalog_schemas::{Actor, Envelope, Event, InstanceEvent, Meta, encode};
    use uuid::Uuid;

    #[test]
    fn the_header_is_read_as_decode_reads_it() {
        for at in [1_796_083_200_123, 0, -5] {
            let mut meta = Meta::origin(
                Uuid::new_v4(),
                "req-1".into(),
                Actor::default(),
                Uuid::new_v4().to_string(),
            );
            meta.occurred_at_ms = at;
            meta.aggregate_version = 7;
            let env = Envelope {
                meta,
                event: Event::Instance(InstanceEvent::InstanceDeleteStarted),
            };
            let bytes = encode(&env);
            let h = peek_header(&bytes).unwrap();
            assert_eq!(h.event_id, env.meta.event_id.to_string());
            assert_eq!(h.type_name, "InstanceDeleteStarted");
            assert_eq!(h.occurred_at_ms, at);
            // Cut short or garbage: no header, never a panic.
            assert!(peek_header(&bytes[..3]).is_none());
            assert!(peek_header(&[0xff; 12]).is_none());
        }
    }
}
