//! Why an intent was turned down, as a domain value: what went wrong and
//! Nova's message for it. Deciders (the conductor, Glance's rules in
//! [`crate::image`]) say *what* went wrong; only the API maps a
//! [`RejectionKind`] to an HTTP status, in one place, so no decider names a
//! status.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What went wrong, in Nova's (and Glance's) exception vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectionKind {
    /// The request is malformed or names something unusable (`Invalid`,
    /// `FlavorNotFound` in a body, `ValidationError`).
    Invalid,
    /// Policy refuses the caller (`Forbidden`, `PolicyNotAuthorized`).
    Forbidden,
    /// The project would exceed a quota (`OverQuota`).
    OverQuota,
    /// No such thing, or one the caller may not see (`NotFound`).
    NotFound,
    /// The request conflicts with what exists or what is going on: a
    /// duplicate name, a resource in use, a locked or not yet ready
    /// instance, a changed image (`Conflict`, `InstanceIsLocked`, ...).
    Conflict,
    /// Nova's `InstanceInvalidState`: `method` may not run while the
    /// instance's `attribute` (vm_state, task_state, ...) is `state`.
    InvalidState {
        attribute: String,
        state: String,
        method: String,
    },
    /// The thing went away while the request was under way (Glance's 410
    /// for an upload to an image deleted meanwhile).
    Gone,
    /// A size or count limit other than a Nova quota (Glance's image size
    /// cap and property/tag limits).
    OverLimit,
    /// The decider failed on the request (a poisoned intent, a record the
    /// API could not apply); the message names the request.
    Internal,
}

/// A verdict against an intent: what went wrong and the message the user
/// is shown (Nova's wording).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    pub kind: RejectionKind,
    pub message: String,
}

impl Rejection {
    pub fn new(kind: RejectionKind, message: impl Into<String>) -> Self {
        Rejection {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(RejectionKind::Invalid, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(RejectionKind::Forbidden, message)
    }

    pub fn over_quota(message: impl Into<String>) -> Self {
        Self::new(RejectionKind::OverQuota, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(RejectionKind::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(RejectionKind::Conflict, message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(RejectionKind::Gone, message)
    }

    pub fn over_limit(message: impl Into<String>) -> Self {
        Self::new(RejectionKind::OverLimit, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(RejectionKind::Internal, message)
    }

    /// Nova's `InstanceInvalidState` for `method` on instance `id`, whose
    /// `attribute` is `state`: "Cannot '<method>' instance <uuid> while it
    /// is in <attribute> <state>".
    pub fn invalid_state(
        attribute: impl Into<String>,
        state: impl Into<String>,
        method: impl Into<String>,
        id: &Uuid,
    ) -> Self {
        let (attribute, state, method) = (attribute.into(), state.into(), method.into());
        let message = format!("Cannot '{method}' instance {id} while it is in {attribute} {state}");
        Self::new(
            RejectionKind::InvalidState {
                attribute,
                state,
                method,
            },
            message,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_state_carries_novas_fields_and_message() {
        let id = Uuid::nil();
        let r = Rejection::invalid_state("vm_state", "stopped", "reboot", &id);
        assert_eq!(
            r.message,
            format!("Cannot 'reboot' instance {id} while it is in vm_state stopped")
        );
        assert_eq!(
            r.kind,
            RejectionKind::InvalidState {
                attribute: "vm_state".into(),
                state: "stopped".into(),
                method: "reboot".into(),
            }
        );
        assert_eq!(r.to_string(), r.message);
    }
}
