//! Requests waiting for the conductor's answer to their intent.
//!
//! A write registers a waiter under its intent's event id *before* it
//! appends the intent; the projection resolves the waiter once it has
//! applied and committed the first record caused by that intent, so the
//! caller's next read sees its write.

use std::collections::HashMap;

use novalog_schemas::{Event, InstanceEvent, Rejection};
use parking_lot::Mutex;
use tokio::sync::oneshot;
use uuid::Uuid;

/// The conductor's answer to one intent.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The first record the conductor wrote for an accepted intent.
    Accepted(Box<Event>),
    /// `IntentRejected`: what went wrong; [`crate::error`] alone maps it
    /// to an HTTP status.
    Rejected(Rejection),
}

impl Verdict {
    /// The verdict a record caused by an intent carries.
    pub fn of(event: &Event) -> Verdict {
        match event {
            Event::Instance(InstanceEvent::IntentRejected { kind, message, .. }) => {
                Verdict::Rejected(Rejection::new(kind.clone(), message.clone()))
            }
            other => Verdict::Accepted(Box::new(other.clone())),
        }
    }
}

/// Waiters keyed by intent event id. One lock, taken once per request to
/// register and once per applied batch to resolve.
#[derive(Default)]
pub struct Verdicts {
    waiters: Mutex<HashMap<Uuid, oneshot::Sender<Verdict>>>,
}

impl Verdicts {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers interest in the verdict on intent `id`.
    pub fn register(&self, id: Uuid) -> oneshot::Receiver<Verdict> {
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().insert(id, tx);
        rx
    }

    /// Drops the waiter on `id` (timed out, or the request went away).
    pub fn forget(&self, id: &Uuid) {
        self.waiters.lock().remove(id);
    }

    /// Hands each verdict to its waiter, if anyone still waits. `causes` may
    /// name records that nobody waits for (other services' causes).
    pub fn resolve(&self, causes: Vec<(Uuid, Verdict)>) {
        if causes.is_empty() {
            return;
        }
        let mut ready = Vec::new();
        {
            let mut waiters = self.waiters.lock();
            if waiters.is_empty() {
                return;
            }
            for (id, verdict) in causes {
                if let Some(tx) = waiters.remove(&id) {
                    ready.push((tx, verdict));
                }
            }
        }
        for (tx, verdict) in ready {
            let _ = tx.send(verdict);
        }
    }

    pub fn pending(&self) -> usize {
        self.waiters.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use novalog_schemas::RejectionKind;

    #[tokio::test]
    async fn a_verdict_reaches_its_waiter_only() {
        let v = Verdicts::new();
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        let rx_a = v.register(a);
        let mut rx_b = v.register(b);
        v.resolve(vec![
            (
                Uuid::new_v4(),
                Verdict::Accepted(Box::new(Event::Instance(
                    InstanceEvent::InstanceDeleteStarted,
                ))),
            ),
            (
                a,
                Verdict::of(&Event::Instance(InstanceEvent::IntentRejected {
                    intent_type: "ServerDeleteRequested".into(),
                    kind: RejectionKind::Conflict,
                    message: "busy".into(),
                })),
            ),
        ]);
        assert_eq!(
            rx_a.await.unwrap(),
            Verdict::Rejected(Rejection::conflict("busy"))
        );
        assert!(rx_b.try_recv().is_err(), "b is still waiting");
        assert_eq!(v.pending(), 1);
        v.forget(&b);
        assert_eq!(v.pending(), 0);
    }
}
