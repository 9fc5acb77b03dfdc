//! The build saga (DESIGN §5): accept → schedule (host + alternates) →
//! the host claims and spawns → ACTIVE. A failed claim or spawn moves to
//! the next alternate, at most `max_attempts` in all, then ERROR with
//! "No valid host was found".
//!
//! Every step is an event on `instances`, so a conductor that restarts
//! mid-build resumes from its folded state; facts that do not match the
//! instance's current host and attempt are stale and ignored, which is also
//! how redelivered facts are dropped.

use novalog_schemas::events::{
    InstanceCreated, SelectHostsRequested, ServerCreateRequested, SpawnInstance,
};
use novalog_schemas::instance::Instance;
use novalog_schemas::{
    ComputeCommand, Envelope, Event, Fault, InstanceEvent, Rejection, SchedulerEvent, TaskState,
    VmState,
};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit, emit};
use crate::saga::Step;

pub const NO_VALID_HOST: &str = "No valid host was found.";

pub(crate) fn on_create(
    c: &mut Conductor,
    env: &Envelope,
    req: &ServerCreateRequested,
    now_ms: i64,
) -> Vec<Emit> {
    let id = req.instance_id;
    if c.instances.contains_key(&id) {
        return Vec::new(); // redelivered intent: already decided
    }
    if !c.flavors.contains_key(&req.flavor.id) {
        return vec![Conductor::reject(
            env,
            id.to_string(),
            Rejection::invalid(format!("Flavor {} could not be found.", req.flavor.id)),
        )];
    }
    match c.images.get(&req.image.id) {
        None => {
            return vec![Conductor::reject(
                env,
                id.to_string(),
                Rejection::invalid(format!("Image {} could not be found.", req.image.id)),
            )];
        }
        Some(i) if i.status == "deleted" => {
            return vec![Conductor::reject(
                env,
                id.to_string(),
                Rejection::invalid(format!("Image {} could not be found.", req.image.id)),
            )];
        }
        // Deactivated (or never uploaded) since the API looked: Nova's
        // ImageNotActive.
        Some(i) if i.status != "active" => {
            return vec![Conductor::reject(
                env,
                id.to_string(),
                Rejection::invalid(format!("Image {} is not active.", req.image.id)),
            )];
        }
        Some(_) => {}
    }
    let actor = &env.meta.actor;
    // Checked against everything accepted before it in this project's
    // partition: exact, whatever the concurrency.
    if let Err(message) = crate::quotas::check_create(c, &actor.project_id, req, now_ms) {
        return vec![Conductor::reject(
            env,
            id.to_string(),
            Rejection::over_quota(message),
        )];
    }
    let group = match crate::server_groups::check_hint(
        c,
        &req.scheduler_hints,
        &actor.project_id,
        actor.is_admin(),
    ) {
        Ok(g) => g,
        Err(message) => {
            return vec![Conductor::reject(
                env,
                id.to_string(),
                Rejection::invalid(message),
            )];
        }
    };
    let created = Event::Instance(InstanceEvent::InstanceCreated(Box::new(InstanceCreated {
        name: req.name.clone(),
        project_id: actor.project_id.clone(),
        user_id: actor.user_id.clone(),
        flavor: req.flavor.clone(),
        image: req.image.clone(),
        metadata: req.metadata.clone(),
        availability_zone: req.availability_zone.clone(),
        key_name: req.key_name.clone(),
        user_data: req.user_data.clone(),
        description: req.description.clone(),
        tags: req.tags.clone(),
        reservation_id: req.reservation_id.clone(),
        launch_index: req.launch_index,
        created_at_ms: now_ms,
        scheduler_hints: req.scheduler_hints.clone(),
        access: req.access,
        hostname: req.hostname.clone(),
        trusted_image_certificates: req.trusted_image_certificates.clone(),
        requested_host: req.requested_host.clone(),
    })));
    let mut out = vec![c.instance_event(&env.meta, "created", id, &actor.project_id, created)];
    c.await_step(id, &env.meta, Step::Build, None, None, now_ms);
    let server_group = group.and_then(|g| crate::server_groups::spec_for(c, g, id));
    if let Some(g) = group {
        crate::server_groups::join(c, g, id);
        if crate::server_groups::hold_if_busy(c, g, id, &req.scheduler_hints) {
            // Asked for once the group's other builds have settled
            // ([`release_held`]).
            return out;
        }
    }
    let instance = &c.instances[&id];
    out.push(select_hosts(
        c,
        env,
        instance,
        req.scheduler_hints.clone(),
        server_group,
    ));
    out
}

/// Asks the scheduler for the held builds whose groups have settled
/// ([`crate::server_groups::release_held`]); run after every record, since
/// any record may settle a build (active, failed, deleted, timed out).
pub(crate) fn release_held(c: &mut Conductor, env: &Envelope) -> Vec<Emit> {
    crate::server_groups::release_held(c)
        .into_iter()
        .map(|(held, group)| {
            let i = &c.instances[&held.instance];
            select_hosts(c, env, i, held.scheduler_hints, group)
        })
        .collect()
}

fn select_hosts(
    c: &Conductor,
    env: &Envelope,
    i: &Instance,
    scheduler_hints: std::collections::BTreeMap<String, Vec<String>>,
    server_group: Option<novalog_schemas::events::ServerGroupSpec>,
) -> Emit {
    let request_id = Uuid::new_v5(&i.id, b"select-hosts");
    emit(
        Dest::Scheduler,
        request_id.to_string(),
        &env.meta,
        "select-hosts",
        i.id.to_string(),
        Event::Scheduler(SchedulerEvent::SelectHostsRequested(Box::new(
            SelectHostsRequested {
                request_id,
                instance_id: i.id,
                project_id: i.project_id.clone(),
                resources: i.flavor.resources(),
                image_properties: i.image.properties.clone(),
                extra_specs: i.flavor.extra_specs.clone(),
                availability_zone: i.availability_zone.clone(),
                ignore_hosts: Vec::new(),
                num_alternates: c.settings.max_attempts.saturating_sub(1),
                scheduler_hints,
                server_group,
                image_id: Some(i.image.id),
                flavor_name: i.flavor.name.clone(),
                requested_host: i.requested_host.clone(),
            },
        ))),
    )
}

fn spawn_command(env: &Envelope, i: &Instance, step: &str) -> Emit {
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
            image: i.image.clone(),
        }))),
    )
}

/// Still waiting for a host decision: building, scheduling, no host yet.
fn awaiting_schedule(i: &Instance) -> bool {
    i.vm_state == VmState::Building
        && i.task_state == Some(TaskState::Scheduling)
        && i.host.is_none()
}

/// Building on `host` at `attempt`, and not being deleted.
fn building_on(i: &Instance, host: &str, attempt: u32) -> bool {
    i.vm_state == VmState::Building
        && i.task_state == Some(TaskState::Spawning)
        && i.host.as_deref() == Some(host)
        && i.attempt == attempt
}

pub(crate) fn on_hosts_selected(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    hosts: &[String],
    _now_ms: i64,
) -> Vec<Emit> {
    let Some(i) = c.instances.get(&id) else {
        return Vec::new();
    };
    if !awaiting_schedule(i) || hosts.is_empty() {
        return Vec::new();
    }
    let project = i.project_id.clone();
    let scheduled = Event::Instance(InstanceEvent::InstanceScheduled {
        host: hosts[0].clone(),
        alternates: hosts[1..].to_vec(),
        attempt: 1,
    });
    let out = c.instance_event(&env.meta, "scheduled", id, &project, scheduled);
    let spawn = spawn_command(env, &c.instances[&id], "spawn");
    vec![out, spawn]
}

fn fail(c: &mut Conductor, env: &Envelope, id: Uuid, details: String, now_ms: i64) -> Vec<Emit> {
    c.stop_awaiting(id);
    let project = c.instances[&id].project_id.clone();
    let failed = Event::Instance(InstanceEvent::InstanceFailed {
        fault: Fault {
            code: 500,
            message: NO_VALID_HOST.to_owned(),
            details,
            created_at_ms: now_ms,
        },
    });
    vec![c.instance_event(&env.meta, "failed", id, &project, failed)]
}

pub(crate) fn on_no_valid_host(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    reason: &str,
    now_ms: i64,
) -> Vec<Emit> {
    match c.instances.get(&id) {
        Some(i) if awaiting_schedule(i) => {
            fail(c, env, id, format!("{NO_VALID_HOST} {reason}"), now_ms)
        }
        _ => Vec::new(),
    }
}

pub(crate) fn on_spawned(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    host: &str,
    attempt: u32,
    power_state: novalog_schemas::PowerState,
    now_ms: i64,
) -> Vec<Emit> {
    let Some(i) = c.instances.get(&id) else {
        return Vec::new();
    };
    // Only the host the instance is assigned to may report it spawned.
    if !building_on(i, host, attempt) {
        return Vec::new();
    }
    let project = i.project_id.clone();
    c.stop_awaiting(id);
    let active = Event::Instance(InstanceEvent::InstanceBecameActive {
        power_state,
        launched_at_ms: now_ms,
    });
    vec![c.instance_event(&env.meta, "active", id, &project, active)]
}

pub(crate) fn on_build_failed(
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
    if !building_on(i, host, attempt) {
        return Vec::new();
    }
    if attempt >= c.settings.max_attempts || i.alternates.is_empty() {
        let details = format!(
            "Exceeded maximum number of retries. Exceeded max scheduling attempts {} for instance {id}. Last exception: {reason}",
            attempt
        );
        return fail(c, env, id, details, now_ms);
    }
    let project = i.project_id.clone();
    let next = Event::Instance(InstanceEvent::InstanceRescheduled {
        host: i.alternates[0].clone(),
        alternates: i.alternates[1..].to_vec(),
        attempt: attempt + 1,
        reason: reason.to_owned(),
    });
    let out = c.instance_event(&env.meta, "rescheduled", id, &project, next);
    let spawn = spawn_command(env, &c.instances[&id], "spawn");
    vec![out, spawn]
}

/// The build did not end in time: ERROR with a fault saying so, and the
/// host it was on (if any) destroys whatever it made and releases its
/// claim. That command follows the spawn on the host's partition, so a
/// spawn that lands late is undone too; its report is stale by then.
pub(crate) fn on_timeout(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    a: &crate::timers::Awaiting,
    now_ms: i64,
) -> Vec<Emit> {
    let Some(i) = c.instances.get(&id) else {
        return Vec::new();
    };
    if i.vm_state != VmState::Building {
        c.stop_awaiting(id);
        return Vec::new();
    }
    let project = i.project_id.clone();
    let host = i.host.clone();
    let timeout = c.settings.timeout_ms(Step::Build);
    c.stop_awaiting(id);
    let on = host
        .as_deref()
        .map_or_else(|| "scheduling".to_owned(), |h| format!("on host {h}"));
    let failed = Event::Instance(InstanceEvent::InstanceFailed {
        fault: Fault {
            code: 500,
            message: "Build of instance timed out.".to_owned(),
            details: format!(
                "Instance {id} was not ACTIVE {} s after it was created (still {on}); step {}.",
                timeout / 1000,
                a.step
            ),
            created_at_ms: now_ms,
        },
    });
    let mut out = vec![c.instance_event(&env.meta, "build-timed-out", id, &project, failed)];
    if let Some(host) = host {
        out.push(emit(
            Dest::Compute,
            host.clone(),
            &env.meta,
            "build-timed-out-destroy",
            id.to_string(),
            Event::Compute(ComputeCommand::DestroyInstance {
                instance_id: id,
                host,
            }),
        ));
    }
    out
}
