//! The evacuate saga (admin; the source host is down by heartbeat, as the
//! API saw it): the instance is rebuilt on a host the scheduler picks (or
//! the one named), which claims and spawns it from its image in one step.
//! Then EVACUATED: the instance is on the destination, ACTIVE (SHUTOFF if
//! it was stopped), the migration `done`; the source gets a cleanup
//! command, which it carries out when it comes back (the command waits in
//! its partition of `compute`), releasing its claim and its guest.
//!
//! One step after scheduling, [`crate::saga::Step::Evacuate`]
//! (`evacuate:rebuild`): its host, answers and compensations are [`row`],
//! which [`on_fact`] and [`on_timeout`] follow.

use std::convert::Infallible;

use novalog_schemas::instance::Instance;
use novalog_schemas::migration::{Migration, MigrationFact, MigrationProgress};
use novalog_schemas::{
    ComputeCommand, Envelope, Event, Fault, InstanceEvent, Meta, PowerState, VmState,
};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit, emit};
use crate::migration::{await_on, command, current, error, host_of, next_alternate, step_fault};
use crate::saga::{Answer, Row, Side, Step, Then};
use crate::timers::{Awaiting, timeout_fault};

/// The end of an evacuation that worked: Evacuated, on the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Evacuated;

/// What undoes the step when it fails or times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// The claim failed: the next alternate, or abort when none is left.
    NextAlternate,
    /// The rebuild failed (the destination let go of what it made):
    /// ERROR, the migration `failed`.
    Error,
    /// Whatever the silent destination makes later, it destroys and
    /// releases; ERROR.
    DestroyOnDestThenError,
}

/// The evacuation as a table (one step: nothing follows it, hence
/// [`Infallible`]): the host it awaits, the driver step that host names
/// when it fails, each answer and what follows it, and what follows
/// silence past the deadline.
fn row() -> Row<Infallible, Evacuated, Recovery> {
    use Answer as A;
    use Then::{Done, Progress, Recover};
    Row {
        host: Side::Dest,
        // The host names the part of the rebuild that failed; any
        // failure it reports about this evacuation ends it.
        driver_step: None,
        answers: &[
            (A::ClaimFailed, Recover(Recovery::NextAlternate)),
            (A::SpawnStarted, Progress),
            (A::Rebuilt, Done(Evacuated)),
            (A::StepFailed, Recover(Recovery::Error)),
        ],
        timed_out: Recover(Recovery::DestroyOnDestThenError),
    }
}

/// A host's `answer` about the evacuation `f.migration_id`: what [`row`]
/// says follows.
pub(crate) fn on_fact(
    c: &mut Conductor,
    env: &Envelope,
    answer: Answer,
    f: &MigrationFact,
    now_ms: i64,
) -> Vec<Emit> {
    let id = f.instance_id;
    let Some((i, m)) = current(c, id) else {
        return Vec::new();
    };
    if c.awaits(id, Step::Evacuate, m.uuid, &f.host).is_none() || f.migration_id != m.uuid {
        return Vec::new();
    }
    match row().on(answer, f, m.attempt) {
        Some(then) => {
            let fault = step_fault(&f.step, &f.host, &f.reason, now_ms);
            follow(c, &env.meta, &i, &m, then, fault, f.power_state, now_ms)
        }
        None => Vec::new(),
    }
}

pub(crate) fn on_timeout(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    a: &Awaiting,
    now_ms: i64,
) -> Vec<Emit> {
    let Some((i, m)) = current(c, id) else {
        c.stop_awaiting(id);
        return Vec::new();
    };
    let fault = timeout_fault(a, c.settings.timeout_ms(a.step), now_ms);
    let power_state = m.original_power_state;
    follow(
        c,
        &env.meta,
        &i,
        &m,
        row().timed_out,
        fault,
        power_state,
        now_ms,
    )
}

/// Carries out `then`; `fault` is what a failure records, `power_state`
/// the guest's as the host last reported it.
#[allow(clippy::too_many_arguments)]
fn follow(
    c: &mut Conductor,
    cause: &Meta,
    i: &Instance,
    m: &Migration,
    then: Then<Infallible, Evacuated, Recovery>,
    fault: Fault,
    power_state: PowerState,
    now_ms: i64,
) -> Vec<Emit> {
    let id = i.id;
    match then {
        Then::Progress => vec![c.instance_event(
            cause,
            "evacuate-spawning",
            id,
            &i.project_id,
            Event::Instance(InstanceEvent::RebuildSpawnBegan),
        )],
        Then::Next(never) => match never {},
        Then::Done(Evacuated) => {
            c.stop_awaiting(id);
            let p = MigrationProgress {
                power_state,
                ..MigrationProgress::of(m.uuid)
            };
            let done = c.instance_event(
                cause,
                "evacuated",
                id,
                &i.project_id,
                Event::Instance(InstanceEvent::Evacuated(Box::new(p))),
            );
            // The source is down: the command waits in its partition until
            // it is back.
            let cleanup = command(
                cause,
                "evacuate-cleanup",
                i,
                m,
                &m.source_compute,
                &m.old_flavor,
                false,
                ComputeCommand::CleanupEvacuatedInstance,
            );
            vec![done, cleanup]
        }
        Then::Recover(Recovery::NextAlternate) => {
            next_alternate(c, cause, id, m, &fault.details, now_ms)
        }
        Then::Recover(Recovery::Error) => error(c, cause, id, m, &m.source_compute, fault),
        Then::Recover(Recovery::DestroyOnDestThenError) => {
            let mut out = error(c, cause, id, m, &m.source_compute, fault);
            let dest = host_of(m, Side::Dest);
            if !dest.is_empty() {
                out.push(emit(
                    Dest::Compute,
                    dest.clone(),
                    cause,
                    "evacuate-timed-out-destroy",
                    id.to_string(),
                    Event::Compute(ComputeCommand::DestroyInstance {
                        instance_id: id,
                        host: dest,
                    }),
                ));
            }
            out
        }
    }
}

/// Starts the step: the destination claims and rebuilds the guest from
/// its image; its answer is awaited.
pub(crate) fn enter(
    c: &mut Conductor,
    cause: &Meta,
    i: &Instance,
    m: &Migration,
    now_ms: i64,
) -> Vec<Emit> {
    let host = host_of(m, row().host);
    let cmd = command(
        cause,
        &format!("prep-resize-{}", m.attempt),
        i,
        m,
        &host,
        &m.new_flavor,
        // From 2.95 the guest is left stopped, whatever it was.
        m.original_vm_state != VmState::Stopped && !m.stop_at_destination,
        ComputeCommand::RebuildEvacuatedInstance,
    );
    await_on(c, cause, i.id, m, Step::Evacuate, host, now_ms);
    vec![cmd]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one step moves on, is undone when it fails, and is entered.
    #[test]
    fn the_table_covers_every_step() {
        crate::saga::check_table(&[()], &[()], |()| row(), |never| match never {});
    }
}
