//! The evacuate saga (admin; the source host is down by heartbeat, as the
//! API saw it): the instance is rebuilt on a host the scheduler picks (or
//! the one named), which claims and spawns it from its image in one step.
//! Then EVACUATED: the instance is on the destination, ACTIVE (SHUTOFF if
//! it was stopped), the migration `done`; the source gets a cleanup
//! command, which it carries out when it comes back (the command waits in
//! its partition of `compute`), releasing its claim and its guest.
//!
//! One step after scheduling, [`Step::Evacuate`] (`evacuate:rebuild`):
//!
//! | answered by | then |
//! |---|---|
//! | RebuildSpawnStarted | RebuildSpawnBegan, still awaiting |
//! | InstanceRebuilt | Evacuated; the source cleans up when it is back |
//! | ResizeClaimFailed | the next alternate (abort when none is left) |
//! | MigrationStepFailed | ERROR, the migration `failed` |
//! | timeout | ERROR; the silent destination destroys and releases what it made |

use novalog_schemas::migration::MigrationFact;
use novalog_schemas::{ComputeCommand, ComputeFact, Envelope, Event, InstanceEvent};
use uuid::Uuid;

use crate::core::Dest;
use crate::core::{Conductor, Emit, emit};
use crate::migration::{command, current, error, next_alternate, step_fault};
use crate::saga::Step;
use crate::timers::{Awaiting, timeout_fault};

pub(crate) fn on_fact(
    c: &mut Conductor,
    env: &Envelope,
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
    let cause = &env.meta;
    match &env.event {
        Event::ComputeFact(ComputeFact::ResizeClaimFailed(_)) if f.attempt == m.attempt => {
            next_alternate(c, cause, id, &m, &f.reason, now_ms)
        }
        Event::ComputeFact(ComputeFact::RebuildSpawnStarted(_)) => vec![c.instance_event(
            cause,
            "evacuate-spawning",
            id,
            &i.project_id,
            Event::Instance(InstanceEvent::RebuildSpawnBegan),
        )],
        Event::ComputeFact(ComputeFact::InstanceRebuilt(_)) => {
            c.stop_awaiting(id);
            let p = novalog_schemas::migration::MigrationProgress {
                power_state: f.power_state,
                ..novalog_schemas::migration::MigrationProgress::of(m.uuid)
            };
            let done = c.instance_event(
                cause,
                "evacuated",
                id,
                &i.project_id,
                Event::Instance(InstanceEvent::Evacuated(Box::new(p))),
            );
            let cleanup = command(
                cause,
                "evacuate-cleanup",
                &i,
                &m,
                &m.source_compute,
                &m.old_flavor,
                false,
                ComputeCommand::CleanupEvacuatedInstance,
            );
            vec![done, cleanup]
        }
        Event::ComputeFact(ComputeFact::MigrationStepFailed(_)) => {
            let fault = step_fault(&f.step, &f.host, &f.reason, now_ms);
            error(c, cause, id, &m, &m.source_compute, fault)
        }
        _ => Vec::new(),
    }
}

pub(crate) fn on_timeout(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    a: &Awaiting,
    now_ms: i64,
) -> Vec<Emit> {
    let Some((_, m)) = current(c, id) else {
        c.stop_awaiting(id);
        return Vec::new();
    };
    let fault = timeout_fault(a, c.settings.timeout_ms(a.step), now_ms);
    let mut out = error(c, &env.meta, id, &m, &m.source_compute, fault);
    if let Some(dest) = &a.host {
        // Whatever the silent host makes later, it destroys and releases.
        out.push(emit(
            Dest::Compute,
            dest.clone(),
            &env.meta,
            "evacuate-timed-out-destroy",
            id.to_string(),
            Event::Compute(ComputeCommand::DestroyInstance {
                instance_id: id,
                host: dest.clone(),
            }),
        ));
    }
    out
}
