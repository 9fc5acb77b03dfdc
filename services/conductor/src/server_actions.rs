//! Short server actions (DESIGN §5): reboot, stop, start, pause, unpause,
//! suspend, resume go straight to the instance's host; lock and unlock are
//! decided here alone.
//!
//! accept (preconditions, task_state set: the API's verdict) → the host
//! carries the action out → `InstanceTaskCompleted` with the vm_state and
//! power_state Nova's compute manager sets, or `InstanceTaskFailed` with
//! the fault. A result that does not match the instance's current task
//! and host is stale (a delete pre-empted the task, or a redelivery) and
//! is ignored.

use novalog_schemas::{
    ComputeCommand, Envelope, Event, Fault, InstanceEvent, PowerState, Rejection, ServerAction,
    VmState,
};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit, emit};
use crate::preconditions::{self, Caller};
use crate::saga::{HOST_ACTIONS, Step};

fn not_found(env: &Envelope, id: Uuid) -> Emit {
    Conductor::reject(
        env,
        id.to_string(),
        Rejection::not_found(format!("Instance {id} could not be found.")),
    )
}

pub(crate) fn on_requested(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    action: &ServerAction,
    now_ms: i64,
) -> Vec<Emit> {
    let actor = &env.meta.actor;
    let caller = Caller {
        is_admin: actor.is_admin(),
        project_id: &actor.project_id,
    };
    let Some(i) = c.instances.get(&id) else {
        return vec![not_found(env, id)];
    };
    // Another project's server does not exist for this caller.
    if i.is_deleted() || (i.project_id != actor.project_id && !caller.is_admin) {
        return vec![not_found(env, id)];
    }
    if let Err(refusal) = preconditions::check(action, i, caller) {
        return vec![Conductor::reject(
            env,
            id.to_string(),
            refusal.rejection(action.name(), &id),
        )];
    }
    let project = i.project_id.clone();
    // What the host is asked to do: the shelve names its snapshot, a
    // rescue its image; an offloaded unshelve is a saga of its own.
    let action = &match action {
        ServerAction::Shelve { .. } => ServerAction::Shelve {
            image_id: Some(crate::shelve::shelved_image_id(env)),
        },
        ServerAction::CreateImage { name, metadata, .. } => ServerAction::CreateImage {
            image_id: Some(crate::snapshot::image_id(env)),
            name: name.clone(),
            metadata: metadata.clone(),
        },
        // A restore of a server no host holds is ACTIVE at once (Nova's
        // `restore` without `instance.host`).
        ServerAction::Restore if i.host.is_none() => {
            return vec![decided(c, env, id, action, VmState::Active)];
        }
        ServerAction::ResetState { state } => {
            // Whatever the instance waited for is over; a late answer to
            // it is dropped.
            c.stop_awaiting(id);
            return vec![decided(c, env, id, action, *state)];
        }
        ServerAction::Rescue { image_id } => {
            let image = image_id.unwrap_or(i.image.id);
            let usable = c.images.get(&image).is_some_and(|im| im.status == "active");
            if !usable {
                // Nova's UnsupportedRescueImage (400).
                return vec![Conductor::reject(
                    env,
                    id.to_string(),
                    Rejection::invalid(format!(
                        "Requested rescue image '{image}' is not supported"
                    )),
                )];
            }
            ServerAction::Rescue {
                image_id: Some(image),
            }
        }
        ServerAction::Unshelve {
            availability_zone,
            host,
        } => {
            if (availability_zone.is_some() || host.is_some())
                && i.vm_state != VmState::ShelvedOffloaded
            {
                // Nova's UnshelveInstanceInvalidState.
                return vec![Conductor::reject(
                    env,
                    id.to_string(),
                    Rejection::conflict(format!(
                        "Specifying an availability zone or a host when unshelving server \"{id}\" with status \"{}\" is not supported. The server status must be SHELVED_OFFLOADED.",
                        i.status()
                    )),
                )];
            }
            if i.vm_state == VmState::ShelvedOffloaded {
                return crate::shelve::on_unshelve_offloaded(c, env, id, action, now_ms);
            }
            action.clone()
        }
        other => other.clone(),
    };
    let i = &c.instances[&id];
    match action {
        ServerAction::Lock { reason } => {
            let locked = Event::Instance(InstanceEvent::InstanceLocked {
                locked_by: preconditions::locked_by(i, caller).to_owned(),
                reason: reason.clone(),
            });
            vec![c.instance_event(&env.meta, "locked", id, &project, locked)]
        }
        ServerAction::Unlock => {
            vec![c.instance_event(
                &env.meta,
                "unlocked",
                id,
                &project,
                Event::Instance(InstanceEvent::InstanceUnlocked),
            )]
        }
        // The actions a host carries out (`HOST_ACTIONS`).
        ServerAction::Reboot { .. }
        | ServerAction::Stop
        | ServerAction::Start
        | ServerAction::Pause
        | ServerAction::Unpause
        | ServerAction::Suspend
        | ServerAction::Resume
        | ServerAction::Shelve { .. }
        | ServerAction::ShelveOffload
        | ServerAction::Unshelve { .. }
        | ServerAction::Rescue { .. }
        | ServerAction::Unrescue
        | ServerAction::CreateImage { .. }
        | ServerAction::SoftDelete
        | ServerAction::Restore => {
            let (Some(task_state), Some(host)) = (action.task_state(), i.host.clone()) else {
                // Every host action has a task, and its rule demands a
                // launched (hence placed) instance.
                return vec![Conductor::reject(
                    env,
                    id.to_string(),
                    Rejection::conflict(format!("Instance {id} is not ready")),
                )];
            };
            let started = Event::Instance(InstanceEvent::InstanceTaskStarted {
                action: action.clone(),
                task_state,
            });
            let snapshot = match action {
                ServerAction::Shelve {
                    image_id: Some(image),
                } => {
                    let inst = i.clone();
                    Some(crate::shelve::create_snapshot(c, env, &inst, *image))
                }
                ServerAction::CreateImage {
                    image_id: Some(image),
                    name,
                    metadata,
                } => {
                    let inst = i.clone();
                    Some(crate::snapshot::create(
                        c,
                        env,
                        &inst,
                        *image,
                        name,
                        metadata,
                        "snapshot-image-created",
                    ))
                }
                _ => None,
            };
            let out = c.instance_event(&env.meta, "task-started", id, &project, started);
            let command = emit(
                Dest::Compute,
                host.clone(),
                &env.meta,
                "perform",
                id.to_string(),
                Event::Compute(ComputeCommand::PerformServerAction {
                    instance_id: id,
                    host: host.clone(),
                    action: action.clone(),
                }),
            );
            // A host that never answers must not leave the task forever.
            c.await_step(
                id,
                &env.meta,
                Step::Action(action.name()),
                crate::snapshot::image_of(action),
                Some(host),
                now_ms,
            );
            snapshot.into_iter().chain([out, command]).collect()
        }
        // Nova casts it to the host and records the action; no task.
        ServerAction::TriggerCrashDump => {
            let Some(host) = i.host.clone() else {
                return vec![Conductor::reject(
                    env,
                    id.to_string(),
                    Rejection::conflict(format!("Instance {id} is not ready")),
                )];
            };
            let vm_state = i.vm_state;
            let recorded = decided(c, env, id, action, vm_state);
            let command = emit(
                Dest::Compute,
                host.clone(),
                &env.meta,
                "perform",
                id.to_string(),
                Event::Compute(ComputeCommand::PerformServerAction {
                    instance_id: id,
                    host,
                    action: action.clone(),
                }),
            );
            vec![recorded, command]
        }
        // Decided above.
        ServerAction::ResetState { .. } => Vec::new(),
    }
}

/// An action decided here with no task of its own: the instance is
/// `vm_state`, its task cleared, its power state as it was.
fn decided(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    action: &ServerAction,
    vm_state: VmState,
) -> Emit {
    let i = &c.instances[&id];
    let project = i.project_id.clone();
    let done = Event::Instance(InstanceEvent::InstanceTaskCompleted {
        action: action.clone(),
        vm_state,
        power_state: i.power_state,
    });
    c.instance_event(&env.meta, "decided", id, &project, done)
}

/// The instance is still in `action`'s task on `host`.
fn awaiting(c: &Conductor, id: Uuid, host: &str, action: &ServerAction) -> bool {
    c.instances
        .get(&id)
        .is_some_and(|i| i.host.as_deref() == Some(host) && action.in_task(i.task_state))
}

/// What a host reported for an action: done (`failure: None`) or failed.
pub(crate) struct Outcome<'a> {
    pub host: &'a str,
    pub action: &'a ServerAction,
    pub power_state: PowerState,
    pub failure: Option<&'a str>,
}

pub(crate) fn on_outcome(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    o: Outcome<'_>,
    now_ms: i64,
) -> Vec<Emit> {
    if !awaiting(c, id, o.host, o.action) {
        return Vec::new();
    }
    if c.awaiting
        .get(&id)
        .is_some_and(|a| matches!(a.step, Step::Action(_)))
    {
        c.stop_awaiting(id);
    }
    let i = &c.instances[&id];
    let project = i.project_id.clone();
    let shelved_image = i.shelved_image_id;
    let action = o.action.clone();
    let event = match o.failure {
        None => Event::Instance(InstanceEvent::InstanceTaskCompleted {
            vm_state: action.vm_state_after(i.vm_state),
            power_state: o.power_state,
            action,
        }),
        Some(reason) => Event::Instance(InstanceEvent::InstanceTaskFailed {
            vm_state: action.vm_state_after_failure(i.vm_state, o.power_state),
            power_state: o.power_state,
            fault: Fault {
                code: 500,
                message: reason.to_owned(),
                details: format!(
                    "{} failed on host {}: {reason}",
                    action.compute_method(),
                    o.host
                ),
                created_at_ms: now_ms,
            },
            action,
        }),
    };
    let step = if o.failure.is_none() {
        "task-completed"
    } else {
        "task-failed"
    };
    let mut out = vec![c.instance_event(&env.meta, step, id, &project, event)];
    out.extend(after_task(
        c,
        env,
        id,
        o.action,
        o.failure.is_none(),
        shelved_image,
        now_ms,
    ));
    out
}

/// What follows a host's task beyond its own end: a shelve's snapshot
/// and offload, the deletion of a shelved image no longer needed.
fn after_task(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    action: &ServerAction,
    done: bool,
    shelved_image: Option<Uuid>,
    now_ms: i64,
) -> Vec<Emit> {
    match (action, done) {
        (ServerAction::Shelve { image_id }, true) => {
            crate::shelve::after_shelved(c, env, id, *image_id, now_ms)
        }
        // No snapshot was taken, or the guest runs from its disk again.
        (ServerAction::Shelve { .. }, false) | (ServerAction::Unshelve { .. }, true) => {
            shelved_image
                .map(|im| crate::snapshot::delete_image(c, env, im, "shelved-image-deleted"))
                .unwrap_or_default()
        }
        (ServerAction::CreateImage { image_id, .. }, true) => image_id
            .map(|im| crate::snapshot::uploaded(c, env, im))
            .unwrap_or_default(),
        // Nova's `delete_image_on_error`.
        (ServerAction::CreateImage { image_id, .. }, false) => image_id
            .map(|im| crate::snapshot::delete_image(c, env, im, "snapshot-image-deleted"))
            .unwrap_or_default(),
        // Soft-deleted: reclaimed once `reclaim_instance_interval` passes.
        (ServerAction::SoftDelete, true) => {
            let host = c.instances.get(&id).and_then(|i| i.host.clone());
            c.await_step(id, &env.meta, Step::Reclaim, None, host, now_ms);
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// The host did not answer in time: the task ends as a failure of the
/// action (fault "<action> timed out"), from what is known of the guest.
/// A late answer is then dropped, as the task it answers is over.
pub(crate) fn on_timeout(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    a: &crate::timers::Awaiting,
    now_ms: i64,
) -> Vec<Emit> {
    c.stop_awaiting(id);
    let Some(i) = c.instances.get(&id).filter(|i| !i.is_deleted()) else {
        return Vec::new();
    };
    let Some(mut action) = HOST_ACTIONS
        .iter()
        .find(|x| x.in_task(i.task_state))
        .cloned()
    else {
        return Vec::new(); // the task already ended (or a delete took over)
    };
    // The snapshot whose image goes with the failed task.
    if let ServerAction::CreateImage { image_id, .. } = &mut action {
        *image_id = a.operation_id;
    }
    let timeout_ms = c.settings.timeout_ms(a.step);
    let event = Event::Instance(InstanceEvent::InstanceTaskFailed {
        vm_state: action.vm_state_after_failure(i.vm_state, i.power_state),
        power_state: i.power_state,
        fault: crate::timers::timeout_fault(a, timeout_ms, now_ms),
        action: action.clone(),
    });
    let project = i.project_id.clone();
    let shelved_image = i.shelved_image_id;
    let mut out = vec![c.instance_event(&env.meta, "task-timed-out", id, &project, event)];
    if let ServerAction::Shelve { .. } | ServerAction::CreateImage { .. } = action {
        out.extend(after_task(
            c,
            env,
            id,
            &action,
            false,
            shelved_image,
            now_ms,
        ));
    }
    out
}
