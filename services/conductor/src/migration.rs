//! The steps every migration shares (resize and cold migrate, live
//! migrate, evacuate), each saga's own steps being in its file: the
//! request and its checks (Nova's `check_instance_state`, quota on a
//! resize up), the migration record (Nova's `Migration`), scheduling a
//! destination and claiming on it (the next alternate when a claim fails),
//! the commands to hosts, and the two ends a failed saga comes to:
//!
//! - [`abort`]: nothing left on any host, the instance back as it was on
//!   its source, the migration in `error` (MigrationAborted);
//! - [`error`]: what could not be undone, ERROR on the host the guest is
//!   left on with a fault naming the step (MigrationErrored).
//!
//! ```text
//! request ─ MigrationStarted ─ scheduler (or the named host)  [Step::Schedule]
//!   → MigrationScheduled → dest claims: PrepResize (evacuate:
//!     RebuildEvacuatedInstance)  [each saga's claim step]
//!   claim failed / timed out → the next alternate, at most max_attempts,
//!     then abort (No valid host)
//! ```

use novalog_schemas::events::SelectHostsRequested;
use novalog_schemas::instance::Instance;
use novalog_schemas::migration::{
    Migration, MigrationCommand, MigrationProgress, MigrationStatus, MigrationType,
    ServerMigrationRequested,
};
use novalog_schemas::{
    ComputeCommand, Envelope, Event, Fault, Flavor, InstanceEvent, Meta, Rejection, SchedulerEvent,
    VmState,
};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit, emit};
use crate::preconditions::{Caller, Rule, check_rule};
use crate::saga::{Side, Step};
use crate::timers::{Awaiting, timeout_fault};

/// Nova's InstanceInvalidState message.
pub(crate) fn invalid_state(method: &str, id: Uuid, i: &Instance) -> Rejection {
    match i.task_state {
        Some(t) => Rejection::invalid_state("task_state", t.as_str(), method, &id),
        None => Rejection::invalid_state("vm_state", i.vm_state.as_str(), method, &id),
    }
}

/// Nova's check_instance_lock and check_instance_state for `method`:
/// `vm_state` among `allowed`, no task, and (where `lock`) not locked
/// unless an administrator asks. The rejection if not.
pub(crate) fn check_state(
    method: &str,
    env: &Envelope,
    i: &Instance,
    allowed: &'static [VmState],
    lock: bool,
) -> Result<(), Rejection> {
    let rule = Rule {
        lock,
        host: false,
        vm_states: Some(allowed),
        task_states: Some(&[None]),
        must_have_launched: false,
    };
    let caller = Caller {
        is_admin: env.meta.actor.is_admin(),
        project_id: &env.meta.actor.project_id,
    };
    check_rule(rule, i, caller).map_err(|r| r.rejection(method, &i.id))
}

/// The instance `id` as the caller may see it, or the not-found verdict.
pub(crate) fn visible<'a>(
    c: &'a Conductor,
    env: &Envelope,
    id: Uuid,
) -> Result<&'a Instance, Box<Emit>> {
    match c.instances.get(&id) {
        Some(i)
            if !i.is_deleted()
                && (i.project_id == env.meta.actor.project_id || env.meta.actor.is_admin()) =>
        {
            Ok(i)
        }
        _ => Err(Box::new(Conductor::reject(
            env,
            id.to_string(),
            Rejection::not_found(format!("Instance {id} could not be found.")),
        ))),
    }
}

pub(crate) fn select_request_id(migration: Uuid) -> Uuid {
    Uuid::new_v5(&migration, b"select-hosts")
}

/// Whether `request_id` is the scheduling request of `id`'s migration.
pub(crate) fn is_migration_request(c: &Conductor, id: Uuid, request_id: Uuid) -> bool {
    c.instances
        .get(&id)
        .and_then(Instance::migration)
        .is_some_and(|m| select_request_id(m.uuid) == request_id)
}

fn method(t: MigrationType) -> &'static str {
    match t {
        MigrationType::Resize => "resize",
        MigrationType::Migration => "migrate",
        MigrationType::LiveMigration => "os-migrateLive",
        MigrationType::Evacuation => "evacuate",
    }
}

pub(crate) fn migration_uuid(env: &Envelope) -> Uuid {
    Uuid::new_v5(&env.meta.event_id, b"migration")
}

pub(crate) fn on_request(
    c: &mut Conductor,
    env: &Envelope,
    req: &ServerMigrationRequested,
    now_ms: i64,
) -> Vec<Emit> {
    let id = req.instance_id;
    let i = match visible(c, env, id) {
        Ok(i) => i.clone(),
        Err(e) => return vec![*e],
    };
    let i = &i;
    if i.migrations.iter().any(|m| m.uuid == migration_uuid(env)) {
        return Vec::new(); // redelivered intent: already decided
    }
    let reject = |r: Rejection| vec![Conductor::reject(env, id.to_string(), r)];
    let allowed: &'static [VmState] = match req.migration_type {
        MigrationType::Resize | MigrationType::Migration => &[VmState::Active, VmState::Stopped],
        MigrationType::LiveMigration => &[VmState::Active, VmState::Paused],
        MigrationType::Evacuation => &[VmState::Active, VmState::Stopped, VmState::Error],
    };
    // Evacuate alone ignores the lock, as in Nova.
    let lock = req.migration_type != MigrationType::Evacuation;
    if let Err(r) = check_state(method(req.migration_type), env, i, allowed, lock) {
        return reject(r);
    }
    if req.migration_type == MigrationType::Evacuation && !req.source_host_down {
        return reject(Rejection::invalid(format!(
            "Compute service of {} is still in use.",
            i.host.as_deref().unwrap_or_default()
        )));
    }
    let new_flavor = match (&req.migration_type, &req.flavor) {
        (MigrationType::Resize, Some(f)) => {
            let Some(f) = c.flavors.get(&f.id) else {
                return reject(Rejection::invalid(format!(
                    "Flavor {} could not be found.",
                    f.id
                )));
            };
            if f.id == i.flavor.id {
                return reject(Rejection::invalid(
                    "When resizing, instances must change flavor!",
                ));
            }
            if f.disk_gb == 0 && i.flavor.disk_gb > 0 {
                return reject(Rejection::invalid(
                    "Resize to zero disk flavor is not allowed.",
                ));
            }
            f.clone()
        }
        (MigrationType::Resize, None) => {
            return reject(Rejection::invalid("Resize requires a flavor."));
        }
        // The others move the guest with the flavor it has.
        (
            MigrationType::Migration | MigrationType::LiveMigration | MigrationType::Evacuation,
            _,
        ) => i.flavor.clone(),
    };
    if req.migration_type == MigrationType::Resize
        && let Err(m) = check_upsize_quota(c, &i.project_id, &i.flavor, &new_flavor)
    {
        return reject(Rejection::over_quota(m));
    }
    let Some(source) = i.host.clone() else {
        return reject(invalid_state(method(req.migration_type), id, i));
    };
    if req.host.as_deref() == Some(source.as_str()) {
        return reject(Rejection::invalid(
            "Cannot migrate to the host where the server exists.",
        ));
    }
    let migration = Migration {
        id: c.next_migration_id(),
        uuid: migration_uuid(env),
        migration_type: req.migration_type,
        status: match req.migration_type {
            MigrationType::LiveMigration => MigrationStatus::Preparing,
            MigrationType::Resize | MigrationType::Migration | MigrationType::Evacuation => {
                MigrationStatus::PreMigrating
            }
        },
        source_compute: source.clone(),
        dest_compute: None,
        old_flavor: i.flavor.clone(),
        new_flavor,
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
        alternates: Vec::new(),
        attempt: 0,
        original_vm_state: i.vm_state,
        original_power_state: i.power_state,
        requested_host: req.host.clone(),
        project_id: i.project_id.clone(),
        user_id: env.meta.actor.user_id.clone(),
        stop_at_destination: req.migration_type == MigrationType::Evacuation
            && req.stop_at_destination,
    };
    let project = i.project_id.clone();
    let mut out = Vec::new();
    // Nova saves a resize's `OS-DCF:diskConfig` on the instance when it
    // accepts the resize (`extra_instance_updates`); a revert keeps it.
    if let Some(auto) = req.auto_disk_config {
        let access = novalog_schemas::AccessChange {
            auto_disk_config: Some(auto),
            ..Default::default()
        };
        let updated = InstanceEvent::InstanceUpdated {
            name: i.name.clone(),
            description: i.description.clone(),
            access: Some(access.applied_to(i.access)),
            hostname: None,
        };
        out.push(c.instance_event(
            &env.meta,
            "disk-config-set",
            id,
            &project,
            Event::Instance(updated),
        ));
    }
    out.push(c.instance_event(
        &env.meta,
        "migration-started",
        id,
        &project,
        Event::Instance(InstanceEvent::MigrationStarted(Box::new(migration.clone()))),
    ));
    match &req.host {
        // A named host is claimed on directly; its claim is the check.
        Some(host) => out.extend(schedule_to(
            c,
            &env.meta,
            id,
            host.clone(),
            Vec::new(),
            1,
            now_ms,
        )),
        None => {
            out.push(select_hosts(c, env, id, &migration));
            c.await_step(
                id,
                &env.meta,
                Step::Schedule,
                Some(migration.uuid),
                None,
                now_ms,
            );
        }
    }
    out
}

/// Nova's quota check on a resize up: the growth in cores and RAM must fit
/// what the project has left.
fn check_upsize_quota(
    c: &Conductor,
    project: &str,
    old: &Flavor,
    new: &Flavor,
) -> Result<(), String> {
    use novalog_schemas::quota::Usage;
    let delta = Usage::of_flavor(new).minus(Usage::of_flavor(old));
    let grow = Usage {
        instances: 0,
        cores: delta.cores.max(0),
        ram: delta.ram.max(0),
    };
    if grow.cores == 0 && grow.ram == 0 {
        return Ok(());
    }
    let limits = crate::quotas::limits_of(c, project);
    let used = c.usage.get(project).copied().unwrap_or_default();
    novalog_schemas::quota::check(&limits, used, grow)
}

fn select_hosts(c: &Conductor, env: &Envelope, id: Uuid, m: &Migration) -> Emit {
    let i = &c.instances[&id];
    let request_id = select_request_id(m.uuid);
    let resize = matches!(
        m.migration_type,
        MigrationType::Resize | MigrationType::Migration
    );
    let ignore_hosts = if resize && c.settings.allow_resize_to_same_host {
        Vec::new()
    } else {
        vec![m.source_compute.clone()]
    };
    emit(
        Dest::Scheduler,
        request_id.to_string(),
        &env.meta,
        "migration-select-hosts",
        id.to_string(),
        Event::Scheduler(SchedulerEvent::SelectHostsRequested(Box::new(
            SelectHostsRequested {
                request_id,
                instance_id: id,
                project_id: i.project_id.clone(),
                resources: m.new_flavor.resources(),
                image_properties: i.image.properties.clone(),
                extra_specs: m.new_flavor.extra_specs.clone(),
                flavor_name: m.new_flavor.name.clone(),
                requested_host: None,
                availability_zone: i.availability_zone.clone(),
                ignore_hosts,
                num_alternates: c.settings.max_attempts.saturating_sub(1),
                scheduler_hints: Default::default(),
                server_group: crate::server_groups::spec_of_member(c, id),
                image_id: Some(i.image.id),
            },
        ))),
    )
}

pub(crate) fn on_hosts_selected(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    hosts: &[String],
    now_ms: i64,
) -> Vec<Emit> {
    let Some((_, m)) = current(c, id) else {
        return Vec::new();
    };
    let waiting = c
        .awaiting
        .get(&id)
        .is_some_and(|a| a.step == Step::Schedule && a.operation_id == Some(m.uuid));
    if !waiting || hosts.is_empty() {
        return Vec::new();
    }
    schedule_to(
        c,
        &env.meta,
        id,
        hosts[0].clone(),
        hosts[1..].to_vec(),
        1,
        now_ms,
    )
}

pub(crate) fn on_no_valid_host(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    reason: &str,
    now_ms: i64,
) -> Vec<Emit> {
    let Some((_, m)) = current(c, id) else {
        return Vec::new();
    };
    if !c
        .awaiting
        .get(&id)
        .is_some_and(|a| a.step == Step::Schedule && a.operation_id == Some(m.uuid))
    {
        return Vec::new();
    }
    let fault = Fault {
        code: 500,
        message: crate::build::NO_VALID_HOST.to_owned(),
        details: format!("{} {reason}", crate::build::NO_VALID_HOST),
        created_at_ms: now_ms,
    };
    abort(c, &env.meta, id, &m, fault, m.original_power_state)
}

/// Sends the claim to `host` (attempt `attempt`) and awaits it.
pub(crate) fn schedule_to(
    c: &mut Conductor,
    cause: &Meta,
    id: Uuid,
    host: String,
    alternates: Vec<String>,
    attempt: u32,
    now_ms: i64,
) -> Vec<Emit> {
    let Some((i, m)) = current(c, id) else {
        return Vec::new();
    };
    let scheduled = MigrationProgress {
        host: Some(host.clone()),
        alternates,
        attempt,
        ..MigrationProgress::of(m.uuid)
    };
    let out0 = c.instance_event(
        cause,
        &format!("migration-scheduled-{attempt}"),
        id,
        &i.project_id,
        Event::Instance(InstanceEvent::MigrationScheduled(Box::new(scheduled))),
    );
    let (i, m) = current(c, id).expect("still migrating");
    // The destination's claim is the first step of each saga's table (an
    // evacuation's claims and rebuilds at once).
    let mut out = vec![out0];
    out.extend(match m.migration_type {
        MigrationType::Resize | MigrationType::Migration => {
            crate::resize::enter(c, cause, &i, &m, crate::resize::Step::PrepResize, now_ms)
        }
        MigrationType::LiveMigration => {
            crate::live_migrate::enter(c, cause, &i, &m, crate::live_migrate::Step::Prep, now_ms)
        }
        MigrationType::Evacuation => crate::evacuate::enter(c, cause, &i, &m, now_ms),
    });
    out
}

/// The next alternate after `host`'s claim failed (or timed out), or the
/// end: back on the source as it was.
pub(crate) fn next_alternate(
    c: &mut Conductor,
    cause: &Meta,
    id: Uuid,
    m: &Migration,
    reason: &str,
    now_ms: i64,
) -> Vec<Emit> {
    if m.attempt < c.settings.max_attempts && !m.alternates.is_empty() {
        return schedule_to(
            c,
            cause,
            id,
            m.alternates[0].clone(),
            m.alternates[1..].to_vec(),
            m.attempt + 1,
            now_ms,
        );
    }
    let fault = Fault {
        code: 500,
        message: crate::build::NO_VALID_HOST.to_owned(),
        details: format!(
            "Exceeded maximum number of retries. Exceeded max scheduling attempts {} for instance {id}. Last exception: {reason}",
            m.attempt
        ),
        created_at_ms: now_ms,
    };
    abort(c, cause, id, m, fault, m.original_power_state)
}

/// The migration in progress on `id`.
pub(crate) fn current(c: &Conductor, id: Uuid) -> Option<(Instance, Migration)> {
    let i = c.instances.get(&id)?;
    Some((i.clone(), i.migration()?.clone()))
}

/// A command for `host` about `m`, leaving the guest with `flavor`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn command(
    cause: &Meta,
    step: &str,
    i: &Instance,
    m: &Migration,
    host: &str,
    flavor: &Flavor,
    power_on: bool,
    make: fn(Box<MigrationCommand>) -> ComputeCommand,
) -> Emit {
    emit(
        Dest::Compute,
        host.to_owned(),
        cause,
        step,
        i.id.to_string(),
        Event::Compute(make(Box::new(MigrationCommand {
            instance_id: i.id,
            migration_id: m.uuid,
            host: host.to_owned(),
            source_host: m.source_compute.clone(),
            dest_host: m.dest_compute.clone().unwrap_or_default(),
            attempt: m.attempt,
            flavor: flavor.clone(),
            image: i.image.clone(),
            name: i.name.clone(),
            project_id: i.project_id.clone(),
            power_on,
        }))),
    )
}

/// The host on `side` of `m` (the destination once one is scheduled).
pub(crate) fn host_of(m: &Migration, side: Side) -> String {
    match side {
        Side::Source => m.source_compute.clone(),
        Side::Dest => m.dest_compute.clone().unwrap_or_default(),
    }
}

/// `id` now awaits `step` of `m`'s saga from `host`.
pub(crate) fn await_on(
    c: &mut Conductor,
    cause: &Meta,
    id: Uuid,
    m: &Migration,
    step: Step,
    host: String,
    now_ms: i64,
) {
    c.await_step(id, cause, step, Some(m.uuid), Some(host), now_ms);
}

pub(crate) fn was_running(m: &Migration) -> bool {
    m.original_vm_state == VmState::Active
}

pub(crate) fn progress(m: &Migration) -> Box<MigrationProgress> {
    Box::new(MigrationProgress::of(m.uuid))
}

pub(crate) fn step_fault(step: &str, host: &str, reason: &str, now_ms: i64) -> Fault {
    Fault {
        code: 500,
        message: format!("{step} failed on {host}"),
        details: reason.to_owned(),
        created_at_ms: now_ms,
    }
}

/// Nothing to undo on any host: back as it was, the migration in error.
pub(crate) fn abort(
    c: &mut Conductor,
    cause: &Meta,
    id: Uuid,
    m: &Migration,
    fault: Fault,
    power_state: novalog_schemas::PowerState,
) -> Vec<Emit> {
    c.stop_awaiting(id);
    let project = c.instances[&id].project_id.clone();
    let p = MigrationProgress {
        power_state,
        fault: Some(fault),
        ..MigrationProgress::of(m.uuid)
    };
    vec![c.instance_event(
        cause,
        "migration-aborted",
        id,
        &project,
        Event::Instance(InstanceEvent::MigrationAborted(Box::new(p))),
    )]
}

/// Could not be compensated: ERROR on `host` with `fault`.
pub(crate) fn error(
    c: &mut Conductor,
    cause: &Meta,
    id: Uuid,
    m: &Migration,
    host: &str,
    fault: Fault,
) -> Vec<Emit> {
    c.stop_awaiting(id);
    let project = c.instances[&id].project_id.clone();
    let p = MigrationProgress {
        host: Some(host.to_owned()),
        fault: Some(fault),
        ..MigrationProgress::of(m.uuid)
    };
    vec![c.instance_event(
        cause,
        "migration-errored",
        id,
        &project,
        Event::Instance(InstanceEvent::MigrationErrored(Box::new(p))),
    )]
}

/// The scheduler did not answer in time: nothing was done on any host.
pub(crate) fn on_schedule_timeout(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    a: &Awaiting,
    now_ms: i64,
) -> Vec<Emit> {
    let Some((_, m)) = current(c, id).filter(|(_, m)| a.operation_id == Some(m.uuid)) else {
        c.stop_awaiting(id);
        return Vec::new();
    };
    let fault = timeout_fault(a, c.settings.timeout_ms(a.step), now_ms);
    abort(c, &env.meta, id, &m, fault, m.original_power_state)
}
