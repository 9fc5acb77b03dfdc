//! What each saga waits for, and until when. Every saga step that needs an
//! answer from another service records an [`Awaiting`] for its instance:
//! the step, the host (or scheduler) that must answer, and a deadline. A
//! fact is accepted only if it answers what is awaited, which is also how
//! stale and redelivered facts are dropped.
//!
//! Deadlines live in the conductor's `awaiting` table, persisted with its
//! offsets, so they survive a restart. The core never reads a clock: once
//! a batch is committed the shell copies the changed deadlines to the timer
//! task ([`crate::service`]), which sleeps until the earliest one (or until
//! the deadlines change), then appends a [`timeout_record`] to `intents`
//! for each that passed. Their ids derive from the instance, the step and
//! the deadline, so a timer that fires twice (say, across a restart) yields
//! one record that readers keep once, and the conductor acts on a timeout
//! only while the step it names is still awaited ([`on_timed_out`], which
//! hands it to the saga [`Step`] names).

use novalog_schemas::{Actor, Envelope, Event, Fault, Intent, Meta, VmState};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit};
use crate::saga::Step;

/// One instance's awaited answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Awaiting {
    /// The saga and its step (stored as `<saga>:<step>`, e.g.
    /// `resize:finish_migration`, `build`).
    pub step: Step,
    /// When the step times out; `None`: never (its timeout is 0).
    pub deadline_ms: Option<i64>,
    pub project_id: String,
    /// The request the saga serves (for the timeout record).
    pub correlation_id: String,
    /// The migration (or rebuild) the answer must name.
    pub operation_id: Option<Uuid>,
    /// The host that must answer (`None`: the scheduler).
    pub host: Option<String>,
    /// While compensating: the failure being compensated.
    pub fault: Option<Fault>,
    /// The state the instance returns to (rebuild).
    pub original_vm_state: Option<VmState>,
}

impl Conductor {
    /// Records that `id` now waits for `step`, answered by `host`; the
    /// deadline is `now_ms` plus the step's timeout.
    pub(crate) fn await_step(
        &mut self,
        id: Uuid,
        cause: &Meta,
        step: Step,
        operation_id: Option<Uuid>,
        host: Option<String>,
        now_ms: i64,
    ) {
        let project_id = self
            .instances
            .get(&id)
            .map(|i| i.project_id.clone())
            .unwrap_or_default();
        let timeout = self.settings.timeout_ms(step);
        let previous = self.awaiting.remove(&id);
        self.awaiting.insert(
            id,
            Awaiting {
                step,
                deadline_ms: (timeout > 0).then_some(now_ms.saturating_add(timeout)),
                project_id,
                correlation_id: cause.correlation_id.clone(),
                operation_id,
                host,
                fault: None,
                original_vm_state: previous.and_then(|p| p.original_vm_state),
            },
        );
    }

    /// `id` waits for nothing any more.
    pub(crate) fn stop_awaiting(&mut self, id: Uuid) -> Option<Awaiting> {
        self.awaiting.remove(&id)
    }

    /// What `id` awaits, if it is `step` for `operation_id` from `host`.
    pub(crate) fn awaits(
        &self,
        id: Uuid,
        step: Step,
        operation_id: Uuid,
        host: &str,
    ) -> Option<&Awaiting> {
        self.awaiting.get(&id).filter(|a| {
            a.step == step
                && a.operation_id == Some(operation_id)
                && a.host.as_deref() == Some(host)
        })
    }

    pub(crate) fn awaiting_mut(&mut self, id: Uuid) -> Option<&mut Awaiting> {
        self.awaiting.get_mut(&id)
    }

    /// The timeout records for every deadline at or before `now_ms` (keyed
    /// by project): what the shell's timer task appends to `intents` once
    /// they pass, for tests to drive sagas by.
    pub fn expired(&self, now_ms: i64) -> Vec<Emit> {
        self.awaiting
            .iter()
            .filter_map(|(id, a)| {
                let at = a.deadline_ms.filter(|at| *at <= now_ms)?;
                Some(timeout_record(*id, a, at))
            })
            .collect()
    }

    /// The earliest deadline, if any (the timer task sleeps until then).
    pub fn next_deadline(&self) -> Option<i64> {
        self.awaiting.values().filter_map(|a| a.deadline_ms).min()
    }
}

/// The record announcing that `a`'s deadline `at` passed.
pub fn timeout_record(id: Uuid, a: &Awaiting, at: i64) -> Emit {
    let event_id = Uuid::new_v5(&id, format!("timeout/{}/{at}", a.step).as_bytes());
    let mut meta = Meta::origin(
        event_id,
        a.correlation_id.clone(),
        Actor::service("conductor"),
        id.to_string(),
    );
    meta.occurred_at_ms = at;
    Emit {
        dest: Dest::Intents,
        key: a.project_id.clone(),
        env: Envelope {
            meta,
            event: Event::Intent(Intent::SagaStepTimedOut {
                instance_id: id,
                step: a.step.to_string(),
                deadline_ms: at,
            }),
        },
    }
}

/// Acts on a timeout if its step is still the one awaited.
pub(crate) fn on_timed_out(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    step: &str,
    deadline_ms: i64,
    now_ms: i64,
) -> Vec<Emit> {
    let Some(a) = c.awaiting.get(&id) else {
        return Vec::new();
    };
    if step.parse::<Step>().ok() != Some(a.step) || a.deadline_ms != Some(deadline_ms) {
        return Vec::new(); // the step was answered, or a later one is awaited
    }
    let a = a.clone();
    match a.step {
        Step::Build => crate::build::on_timeout(c, env, id, &a, now_ms),
        Step::Schedule => crate::migration::on_schedule_timeout(c, env, id, &a, now_ms),
        Step::Resize(_) => crate::resize::on_timeout(c, env, id, &a, now_ms),
        Step::Rebuild => crate::rebuild::on_timeout(c, env, id, &a, now_ms),
        Step::Evacuate => crate::evacuate::on_timeout(c, env, id, &a, now_ms),
        Step::LiveMigrate(_) => crate::live_migrate::on_timeout(c, env, id, &a, now_ms),
        Step::Action(_) => crate::server_actions::on_timeout(c, env, id, &a, now_ms),
        Step::Unshelve => crate::shelve::on_timeout(c, env, id, &a, now_ms),
        Step::ShelvedOffload => crate::shelve::on_offload_due(c, env, id, now_ms),
        Step::Reclaim => crate::delete::on_reclaim_due(c, env, id, now_ms),
    }
}

/// A fault for a step that did not answer in time.
pub(crate) fn timeout_fault(a: &Awaiting, timeout_ms: i64, now_ms: i64) -> Fault {
    let step = a.step.name();
    let on = a
        .host
        .as_deref()
        .map_or_else(|| "the scheduler".to_owned(), |h| format!("host {h}"));
    Fault {
        code: 500,
        message: format!("{step} timed out"),
        details: format!(
            "No answer from {on} to {step} within {} s.",
            timeout_ms / 1000
        ),
        created_at_ms: now_ms,
    }
}
