//! Shelve, offload and unshelve (Nova's `shelve_instance`,
//! `shelve_offload_instance`, `unshelve_instance`), each step an event on
//! `instances` so that a conductor that dies mid-way resumes where it was.
//!
//! - **shelve**: accepted (SHELVING, the `<name>-shelved` snapshot image
//!   created `queued`, its id recorded as the instance's
//!   `shelved_image_id`) → the host powers off and snapshots → SHELVED and
//!   the image `active`; then, by `shelved_offload_time`, the offload
//!   starts in the same step (0), after that many seconds (a deadline in
//!   the `awaiting` table, [`Step::ShelvedOffload`]), or never (-1).
//! - **shelveOffload**: SHELVING_OFFLOADING → the host destroys the guest
//!   and releases its claim → SHELVED_OFFLOADED with no host.
//! - **unshelve** of a SHELVED instance: the host powers it on (a host
//!   action). Of a SHELVED_OFFLOADED one: UNSHELVING → the scheduler picks
//!   a host (or the one an administrator named, 2.91) → SPAWNING there
//!   from the shelved image, moving to an alternate when a claim or spawn
//!   fails → ACTIVE, and the shelved image is deleted. No host, or none
//!   that spawns it in time: back to SHELVED_OFFLOADED with a fault.
//!
//! The host steps go through [`crate::server_actions`] (their task, their
//! deadline, stale answers dropped); what is particular to shelving is
//! here.

use novalog_schemas::events::{SelectHostsRequested, SpawnInstance};
use novalog_schemas::instance::Instance;
use novalog_schemas::{
    ComputeCommand, Envelope, Event, Fault, Image, InstanceEvent, PowerState, Rejection,
    SchedulerEvent, ServerAction, TaskState, VmState,
};
use uuid::Uuid;

use crate::build::NO_VALID_HOST;
use crate::core::{Conductor, Dest, Emit, emit};
use crate::saga::Step;
use crate::timers::Awaiting;

/// The id of the snapshot a shelve accepted by `env` creates.
pub(crate) fn shelved_image_id(env: &Envelope) -> Uuid {
    Uuid::new_v5(&env.meta.event_id, b"shelved-image")
}

/// The shelve's snapshot image, `<name>-shelved`, created `queued` (first
/// record of an accepted shelve).
pub(crate) fn create_snapshot(
    c: &mut Conductor,
    env: &Envelope,
    i: &Instance,
    image_id: Uuid,
) -> Emit {
    let name = format!("{}-shelved", i.name);
    crate::snapshot::create(
        c,
        env,
        i,
        image_id,
        &name,
        &Default::default(),
        "shelved-image-created",
    )
}

/// Starts the offload of the shelved instance `id` on its host (the
/// caller checked that it is SHELVED with no task): SHELVING_OFFLOADING,
/// the host's command, its deadline.
pub(crate) fn start_offload(c: &mut Conductor, env: &Envelope, id: Uuid, now_ms: i64) -> Vec<Emit> {
    let Some(i) = c.instances.get(&id) else {
        return Vec::new();
    };
    let Some(host) = i.host.clone() else {
        return Vec::new();
    };
    let project = i.project_id.clone();
    let action = ServerAction::ShelveOffload;
    let started = c.instance_event(
        &env.meta,
        "offload-started",
        id,
        &project,
        Event::Instance(InstanceEvent::InstanceTaskStarted {
            action: action.clone(),
            task_state: TaskState::ShelvingOffloading,
        }),
    );
    let command = emit(
        Dest::Compute,
        host.clone(),
        &env.meta,
        "offload",
        id.to_string(),
        Event::Compute(ComputeCommand::PerformServerAction {
            instance_id: id,
            host: host.clone(),
            action: action.clone(),
        }),
    );
    c.await_step(
        id,
        &env.meta,
        Step::Action(action.name()),
        None,
        Some(host),
        now_ms,
    );
    vec![started, command]
}

/// What follows a shelve the host carried out (SHELVED recorded): the
/// snapshot becomes active, and the offload starts now, later or never.
pub(crate) fn after_shelved(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    image_id: Option<Uuid>,
    now_ms: i64,
) -> Vec<Emit> {
    let mut out = image_id
        .map(|im| crate::snapshot::uploaded(c, env, im))
        .unwrap_or_default();
    match c.settings.shelved_offload_time_s {
        0 => out.extend(start_offload(c, env, id, now_ms)),
        t if t > 0 => {
            let host = c.instances.get(&id).and_then(|i| i.host.clone());
            c.await_step(id, &env.meta, Step::ShelvedOffload, None, host, now_ms);
        }
        _ => {}
    }
    out
}

/// `shelved_offload_time` passed: a server still SHELVED with no task is
/// offloaded.
pub(crate) fn on_offload_due(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    now_ms: i64,
) -> Vec<Emit> {
    c.stop_awaiting(id);
    match c.instances.get(&id) {
        Some(i) if i.vm_state == VmState::Shelved && i.task_state.is_none() => {
            start_offload(c, env, id, now_ms)
        }
        _ => Vec::new(),
    }
}

/// The scheduling request of the unshelve accepted by `env`.
fn request_id(env: &Envelope) -> Uuid {
    Uuid::new_v5(&env.meta.event_id, b"unshelve")
}

/// Unshelve of a SHELVED_OFFLOADED instance (preconditions checked):
/// UNSHELVING, then the scheduler is asked (or the requested host
/// spawns it at once).
pub(crate) fn on_unshelve_offloaded(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    action: &ServerAction,
    now_ms: i64,
) -> Vec<Emit> {
    let ServerAction::Unshelve {
        availability_zone,
        host,
    } = action
    else {
        return Vec::new();
    };
    let i = &c.instances[&id];
    let image = match i.shelved_image_id.and_then(|im| c.images.get(&im)) {
        Some(im) if im.status == "active" => im.clone(),
        _ => {
            let missing = i.shelved_image_id.unwrap_or_default();
            return vec![Conductor::reject(
                env,
                id.to_string(),
                Rejection::invalid(format!("Image {missing} could not be found.")),
            )];
        }
    };
    let project = i.project_id.clone();
    let started = c.instance_event(
        &env.meta,
        "unshelve-started",
        id,
        &project,
        Event::Instance(InstanceEvent::InstanceTaskStarted {
            action: action.clone(),
            task_state: TaskState::Unshelving,
        }),
    );
    let op = request_id(env);
    let i = &c.instances[&id];
    let mut out = vec![started];
    match host {
        Some(host) => {
            let scheduled = InstanceEvent::InstanceScheduled {
                host: host.clone(),
                alternates: Vec::new(),
                attempt: 1,
            };
            out.push(c.instance_event(
                &env.meta,
                "unshelve-scheduled",
                id,
                &project,
                Event::Instance(scheduled),
            ));
            out.push(spawn(env, &c.instances[&id], &image, "unshelve-spawn"));
            c.await_step(
                id,
                &env.meta,
                Step::Unshelve,
                Some(op),
                Some(host.clone()),
                now_ms,
            );
        }
        None => {
            let zone = match availability_zone {
                Some(az) => az.clone(),
                None => i.availability_zone.clone(),
            };
            out.push(emit(
                Dest::Scheduler,
                op.to_string(),
                &env.meta,
                "unshelve-select-hosts",
                id.to_string(),
                Event::Scheduler(SchedulerEvent::SelectHostsRequested(Box::new(
                    SelectHostsRequested {
                        request_id: op,
                        instance_id: id,
                        project_id: project.clone(),
                        resources: i.flavor.resources(),
                        image_properties: image.properties.clone(),
                        extra_specs: i.flavor.extra_specs.clone(),
                        availability_zone: zone,
                        ignore_hosts: Vec::new(),
                        num_alternates: c.settings.max_attempts.saturating_sub(1),
                        scheduler_hints: Default::default(),
                        server_group: None,
                        image_id: Some(image.id),
                        flavor_name: i.flavor.name.clone(),
                        requested_host: None,
                    },
                ))),
            ));
            c.await_step(id, &env.meta, Step::Unshelve, Some(op), None, now_ms);
        }
    }
    out
}

fn spawn(env: &Envelope, i: &Instance, image: &Image, step: &str) -> Emit {
    let host = i.host.clone().unwrap_or_default();
    emit(
        Dest::Compute,
        host.clone(),
        &env.meta,
        step,
        i.id.to_string(),
        Event::Compute(ComputeCommand::SpawnInstance(Box::new(SpawnInstance {
            instance_id: i.id,
            host,
            attempt: i.attempt,
            project_id: i.project_id.clone(),
            name: i.name.clone(),
            flavor: i.flavor.clone(),
            image: image.clone(),
        }))),
    )
}

/// Whether `request_id` is the scheduling request of `id`'s unshelve.
pub(crate) fn is_unshelve_request(c: &Conductor, id: Uuid, request_id: Uuid) -> bool {
    c.awaiting.get(&id).is_some_and(|a| {
        a.step == Step::Unshelve && a.operation_id == Some(request_id) && a.host.is_none()
    })
}

/// Whether `id` awaits an unshelve's spawn.
pub(crate) fn awaits_spawn(c: &Conductor, id: Uuid) -> bool {
    c.awaiting
        .get(&id)
        .is_some_and(|a| a.step == Step::Unshelve && a.host.is_some())
}

fn unshelving(i: &Instance) -> bool {
    i.vm_state == VmState::ShelvedOffloaded
        && matches!(
            i.task_state,
            Some(TaskState::Unshelving | TaskState::Spawning)
        )
}

fn shelved_image(c: &Conductor, i: &Instance) -> Option<Image> {
    i.shelved_image_id.and_then(|im| c.images.get(&im)).cloned()
}

pub(crate) fn on_hosts_selected(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    hosts: &[String],
    now_ms: i64,
) -> Vec<Emit> {
    let Some(a) = c.awaiting.get(&id).cloned() else {
        return Vec::new();
    };
    let Some(i) = c.instances.get(&id).filter(|i| unshelving(i)) else {
        return Vec::new();
    };
    let (Some(first), Some(image)) = (hosts.first(), shelved_image(c, i)) else {
        return Vec::new();
    };
    let project = i.project_id.clone();
    let scheduled = InstanceEvent::InstanceScheduled {
        host: first.clone(),
        alternates: hosts[1..].to_vec(),
        attempt: 1,
    };
    let out = c.instance_event(
        &env.meta,
        "unshelve-scheduled",
        id,
        &project,
        Event::Instance(scheduled),
    );
    let cmd = spawn(env, &c.instances[&id], &image, "unshelve-spawn");
    let mut cause = env.meta.clone();
    cause.correlation_id = a.correlation_id.clone();
    c.await_step(
        id,
        &cause,
        Step::Unshelve,
        a.operation_id,
        Some(first.clone()),
        now_ms,
    );
    vec![out, cmd]
}

/// Back to SHELVED_OFFLOADED with `fault`: no host took the instance.
fn fail(c: &mut Conductor, env: &Envelope, id: Uuid, fault: Fault) -> Vec<Emit> {
    c.stop_awaiting(id);
    let Some(i) = c.instances.get(&id) else {
        return Vec::new();
    };
    let project = i.project_id.clone();
    let failed = InstanceEvent::InstanceTaskFailed {
        action: ServerAction::Unshelve {
            availability_zone: None,
            host: None,
        },
        vm_state: VmState::ShelvedOffloaded,
        power_state: PowerState::NoState,
        fault,
    };
    vec![c.instance_event(
        &env.meta,
        "unshelve-failed",
        id,
        &project,
        Event::Instance(failed),
    )]
}

pub(crate) fn on_no_valid_host(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    reason: &str,
    now_ms: i64,
) -> Vec<Emit> {
    if !c.instances.get(&id).is_some_and(unshelving) {
        return Vec::new();
    }
    let fault = Fault {
        code: 500,
        message: NO_VALID_HOST.to_owned(),
        details: format!("{NO_VALID_HOST} {reason}"),
        created_at_ms: now_ms,
    };
    fail(c, env, id, fault)
}

/// The unshelve's host (at the attempt awaited) spawned it: ACTIVE, and
/// the shelved image is deleted.
pub(crate) fn on_spawned(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    host: &str,
    attempt: u32,
    power_state: PowerState,
) -> Vec<Emit> {
    let Some(i) = c.instances.get(&id) else {
        return Vec::new();
    };
    if !unshelving(i) || i.host.as_deref() != Some(host) || i.attempt != attempt {
        return Vec::new();
    }
    let project = i.project_id.clone();
    let image = i.shelved_image_id;
    c.stop_awaiting(id);
    let done = InstanceEvent::InstanceTaskCompleted {
        action: ServerAction::Unshelve {
            availability_zone: None,
            host: None,
        },
        vm_state: VmState::Active,
        power_state,
    };
    let mut out =
        vec![c.instance_event(&env.meta, "unshelved", id, &project, Event::Instance(done))];
    if let Some(image) = image {
        out.extend(crate::snapshot::delete_image(
            c,
            env,
            image,
            "shelved-image-deleted",
        ));
    }
    out
}

/// The unshelve's host could not claim or spawn: the next alternate, or
/// SHELVED_OFFLOADED with the last reason once none is left.
pub(crate) fn on_spawn_failed(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    host: &str,
    attempt: u32,
    reason: &str,
    now_ms: i64,
) -> Vec<Emit> {
    let Some(i) = c.instances.get(&id) else {
        return Vec::new();
    };
    if !unshelving(i) || i.host.as_deref() != Some(host) || i.attempt != attempt {
        return Vec::new();
    }
    if attempt >= c.settings.max_attempts || i.alternates.is_empty() {
        let fault = Fault {
            code: 500,
            message: NO_VALID_HOST.to_owned(),
            details: format!(
                "Exceeded maximum number of retries. Exceeded max scheduling attempts {attempt} for instance {id}. Last exception: {reason}"
            ),
            created_at_ms: now_ms,
        };
        return fail(c, env, id, fault);
    }
    let Some(image) = shelved_image(c, i) else {
        return Vec::new();
    };
    let project = i.project_id.clone();
    let next = InstanceEvent::InstanceRescheduled {
        host: i.alternates[0].clone(),
        alternates: i.alternates[1..].to_vec(),
        attempt: attempt + 1,
        reason: reason.to_owned(),
    };
    let a = c.awaiting.get(&id).cloned();
    let out = c.instance_event(
        &env.meta,
        "unshelve-rescheduled",
        id,
        &project,
        Event::Instance(next),
    );
    let i = &c.instances[&id];
    let next_host = i.host.clone();
    let cmd = spawn(env, i, &image, "unshelve-spawn");
    if let Some(a) = a {
        let mut cause = env.meta.clone();
        cause.correlation_id = a.correlation_id;
        c.await_step(
            id,
            &cause,
            Step::Unshelve,
            a.operation_id,
            next_host,
            now_ms,
        );
    }
    vec![out, cmd]
}

/// No host and no spawn in time: back to SHELVED_OFFLOADED, and the host
/// it was spawning on (if any) destroys what it made and releases its
/// claim (a spawn that lands later is undone by that command too).
pub(crate) fn on_timeout(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    a: &Awaiting,
    now_ms: i64,
) -> Vec<Emit> {
    if !c.instances.get(&id).is_some_and(unshelving) {
        c.stop_awaiting(id);
        return Vec::new();
    }
    let fault = crate::timers::timeout_fault(a, c.settings.timeout_ms(a.step), now_ms);
    let host = c.instances.get(&id).and_then(|i| i.host.clone());
    let mut out = fail(c, env, id, fault);
    if let Some(host) = host {
        out.push(emit(
            Dest::Compute,
            host.clone(),
            &env.meta,
            "unshelve-timed-out-destroy",
            id.to_string(),
            Event::Compute(ComputeCommand::DestroyInstance {
                instance_id: id,
                host,
            }),
        ));
    }
    out
}
