//! Verdicts on intents the conductor could not decode or apply.
//!
//! An intent that does not decode, or whose handling fails (an error or a
//! panic), is dead-lettered by the consumer loop; the request waiting for
//! its verdict must still get one at once, never wait out its timeout. So
//! the conductor answers it on `instances` like any other rejection:
//! invalid when the intent's content is invalid, else an internal error in
//! Nova's words that names the request id (the operator finds the dead letter by it).

use novalog_runtime::consumer::Failure;
use novalog_schemas::{DecodeError, Envelope, Event, InstanceEvent, Meta, Rejection};

use crate::core::{Dest, Emit};

/// Nova's message for an unexpected failure (`nova/api/openstack/wsgi.py`).
const UNEXPECTED: &str = "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible.";

/// The rejection that answers the failed intent `meta` (of type
/// `type_name`), or `None` when the record is not an API intent (the
/// conductor's own timeout records have a cause; nobody waits on them).
pub fn verdict(meta: &Meta, type_name: &str, failure: &Failure) -> Option<Emit> {
    if meta.causation_id.is_some() {
        return None;
    }
    let Rejection { kind, message } = match failure {
        // The payload has a field that is missing or out of its domain:
        // the request carried invalid input.
        Failure::Decode(e @ (DecodeError::Invalid { .. } | DecodeError::Missing(_))) => {
            Rejection::invalid(format!("Invalid input for the request: {e}."))
        }
        Failure::Decode(_) | Failure::Apply(_) | Failure::Panic(_) => {
            Rejection::internal(format!("{UNEXPECTED} (request {})", meta.correlation_id))
        }
    };
    Some(Emit {
        dest: Dest::Instances,
        key: meta.actor.project_id.clone(),
        env: Envelope {
            // The step of every other rejection: one verdict per intent.
            meta: meta.caused("rejected", meta.aggregate_id.clone(), 0),
            event: Event::Instance(InstanceEvent::IntentRejected {
                intent_type: type_name.to_owned(),
                kind,
                message,
            }),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use novalog_schemas::{Actor, RejectionKind};
    use uuid::Uuid;

    fn intent() -> Meta {
        Meta::origin(
            Uuid::new_v4(),
            "req-42".into(),
            Actor {
                user_id: "u".into(),
                project_id: "p".into(),
                roles: vec!["member".into()],
            },
            "k".into(),
        )
    }

    fn rejected(e: &Emit) -> (RejectionKind, String) {
        match &e.env.event {
            Event::Instance(InstanceEvent::IntentRejected { kind, message, .. }) => {
                (kind.clone(), message.clone())
            }
            other => panic!("not a rejection: {other:?}"),
        }
    }

    #[test]
    fn an_intent_with_a_missing_field_is_invalid_input_to_its_request() {
        let meta = intent();
        let e = verdict(
            &meta,
            "KeypairCreateRequested",
            &Failure::Decode(DecodeError::Missing("keypair.user_id")),
        )
        .unwrap();
        let (kind, message) = rejected(&e);
        assert_eq!(kind, RejectionKind::Invalid);
        assert!(message.contains("keypair.user_id"), "{message}");
        assert_eq!(e.dest, Dest::Instances);
        assert_eq!(e.key, "p", "keyed by the project, like every verdict");
        assert_eq!(e.env.meta.causation_id, Some(meta.event_id));
        assert_eq!(e.env.meta.correlation_id, "req-42");
    }

    #[test]
    fn an_intent_that_panics_is_an_internal_error_naming_the_request() {
        let meta = intent();
        for failure in [
            Failure::Panic("attempt to multiply with overflow".into()),
            Failure::Apply("encode: boom".into()),
            Failure::Decode(DecodeError::UnknownType("Nope".into())),
        ] {
            let (kind, message) = rejected(&verdict(&meta, "X", &failure).unwrap());
            assert_eq!(kind, RejectionKind::Internal);
            assert!(message.starts_with("Unexpected API Error."), "{message}");
            assert!(message.contains("req-42"), "{message}");
            assert!(!message.contains("overflow"), "internals stay in the log");
        }
    }

    #[test]
    fn records_with_a_cause_get_no_verdict() {
        let timer = intent().caused("timeout", "i".into(), 0);
        assert!(verdict(&timer, "SagaStepTimedOut", &Failure::Panic("x".into())).is_none());
    }
}
