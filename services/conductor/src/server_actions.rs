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
        | ServerAction::Resume => {
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
                None,
                Some(host),
                now_ms,
            );
            vec![out, command]
        }
    }
}

/// The instance is still in `action`'s task on `host`.
fn awaiting(c: &Conductor, id: Uuid, host: &str, action: &ServerAction) -> bool {
    c.instances.get(&id).is_some_and(|i| {
        i.host.as_deref() == Some(host)
            && action.task_state().is_some()
            && i.task_state == action.task_state()
    })
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
    let action = o.action.clone();
    let event = match o.failure {
        None => Event::Instance(InstanceEvent::InstanceTaskCompleted {
            vm_state: action.vm_state_after(),
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
    vec![c.instance_event(&env.meta, step, id, &project, event)]
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
    let Some(action) = HOST_ACTIONS
        .iter()
        .find(|x| x.task_state().is_some() && x.task_state() == i.task_state)
        .cloned()
    else {
        return Vec::new(); // the task already ended (or a delete took over)
    };
    let timeout_ms = c.settings.timeout_ms(a.step);
    let event = Event::Instance(InstanceEvent::InstanceTaskFailed {
        vm_state: action.vm_state_after_failure(i.vm_state, i.power_state),
        power_state: i.power_state,
        fault: crate::timers::timeout_fault(a, timeout_ms, now_ms),
        action,
    });
    let project = i.project_id.clone();
    vec![c.instance_event(&env.meta, "task-timed-out", id, &project, event)]
}
