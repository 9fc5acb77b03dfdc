//! The resize saga, which is also cold migrate (a resize to the same flavor
//! on another host), with confirm, revert and auto-confirm. Nova's
//! sequence (nova/conductor/tasks/migrate.py, compute manager's
//! prep_resize → resize_instance → finish_resize):
//!
//! ```text
//! request ─ MigrationStarted (resize_prep, pre-migrating)
//!   → scheduler (or the requested host) ─ MigrationScheduled
//!   → dest: PrepResize, claims the new flavor (a failed claim moves to the
//!     next alternate)
//!   → ResizeMigrationStarted (migrating) → source: MigrateDiskAndPowerOff
//!   → ResizeMigrated (post-migrating), ResizeFinishStarted
//!   → dest: FinishMigration → ResizeFinished: RESIZED / VERIFY_RESIZE
//! confirm (or auto-confirm after resize_confirm_window):
//!   ResizeConfirmStarted → source: ConfirmMigration (guest and claim gone)
//!   → ResizeConfirmed: ACTIVE (or SHUTOFF) on the destination
//! revert:
//!   ResizeRevertStarted → dest: RevertMigration (guest and claim gone)
//!   → source: FinishRevertMigration (old flavor, powered as before)
//!   → ResizeReverted: ACTIVE (or SHUTOFF) on the source
//! ```
//!
//! Claims: the destination's from PrepResize through confirm (released on
//! revert or any failure), the source's until confirm.
//!
//! Every step awaits one answer from one host with a deadline
//! ([`crate::timers`]). A failure or a timeout before the guest runs on the
//! destination is compensated in reverse order: the destination drops its
//! claim (and any guest), the source powers the guest back as it was, and
//! the instance is back on the source in its original state with the
//! migration in `error` (MigrationAborted). What cannot be compensated
//! (confirm or revert failing, or the compensation itself failing) ends in
//! ERROR with a fault naming the step (MigrationErrored). Either way
//! task_state is None and no claim is left behind.

use novalog_schemas::events::SelectHostsRequested;
use novalog_schemas::instance::Instance;
use novalog_schemas::migration::{
    Migration, MigrationCommand, MigrationFact, MigrationProgress, MigrationType,
    ServerMigrationRequested, status,
};
use novalog_schemas::{
    ComputeCommand, ComputeFact, Envelope, Event, Fault, Flavor, InstanceEvent, Meta, Rejection,
    SchedulerEvent, VmState,
};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit, emit};
use crate::preconditions::{Caller, Rule, check_rule};
use crate::timers::{Awaiting, timeout_fault};

pub const SCHEDULE: &str = "resize:schedule";
pub const PREP_RESIZE: &str = "resize:prep_resize";
pub const MIGRATE_DISK: &str = "resize:migrate_disk_and_power_off";
pub const FINISH_MIGRATION: &str = "resize:finish_migration";
pub const CONFIRM: &str = "resize:confirm_migration";
pub const REVERT: &str = "resize:revert_migration";
pub const FINISH_REVERT: &str = "resize:finish_revert_migration";
/// Compensation: the source powers the guest back after a failure.
pub const COMPENSATE: &str = "resize:compensate";
pub const AUTO_CONFIRM: &str = "resize:auto_confirm";

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
        _ => i.flavor.clone(),
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
            MigrationType::LiveMigration => "preparing",
            _ => status::PRE_MIGRATING,
        }
        .to_owned(),
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
    };
    let project = i.project_id.clone();
    let mut out = vec![c.instance_event(
        &env.meta,
        "migration-started",
        id,
        &project,
        Event::Instance(InstanceEvent::MigrationStarted(Box::new(migration.clone()))),
    )];
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
            c.await_step(id, &env.meta, SCHEDULE, Some(migration.uuid), None, now_ms);
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
    let none = std::collections::BTreeMap::new();
    let limits = c
        .settings
        .quota
        .limits(c.quota_overrides.get(project).unwrap_or(&none));
    let used = c.usage.get(project).copied().unwrap_or_default();
    novalog_schemas::quota::check(&limits, used, grow)
}

pub(crate) fn migration_uuid(env: &Envelope) -> Uuid {
    Uuid::new_v5(&env.meta.event_id, b"migration")
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

fn was_running(m: &Migration) -> bool {
    m.original_vm_state == VmState::Active
}

pub(crate) fn progress(m: &Migration) -> Box<MigrationProgress> {
    Box::new(MigrationProgress::of(m.uuid))
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
    // The destination's claim; an evacuation's claims and rebuilds at once.
    let (step, make): (&str, fn(Box<MigrationCommand>) -> ComputeCommand) = match m.migration_type {
        MigrationType::Resize | MigrationType::Migration => {
            (PREP_RESIZE, ComputeCommand::PrepResize)
        }
        MigrationType::LiveMigration => (crate::live_migrate::PREP, ComputeCommand::PrepResize),
        MigrationType::Evacuation => (
            crate::evacuate::REBUILD,
            ComputeCommand::RebuildEvacuatedInstance,
        ),
    };
    let power_on = m.original_vm_state != VmState::Stopped;
    let prep = command(
        cause,
        &format!("prep-resize-{attempt}"),
        &i,
        &m,
        &host,
        &m.new_flavor,
        power_on,
        make,
    );
    c.await_step(id, cause, step, Some(m.uuid), Some(host), now_ms);
    vec![out0, prep]
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
        .is_some_and(|a| a.step == SCHEDULE && a.operation_id == Some(m.uuid));
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
        .is_some_and(|a| a.step == SCHEDULE && a.operation_id == Some(m.uuid))
    {
        return Vec::new();
    }
    let fault = Fault {
        code: 500,
        message: crate::build::NO_VALID_HOST.to_owned(),
        details: format!("{} {reason}", crate::build::NO_VALID_HOST),
        created_at_ms: now_ms,
    };
    abort(c, &env.meta, id, &m, fault, m.original_power_state.code())
}

/// Nothing to undo on any host: back as it was, the migration in error.
pub(crate) fn abort(
    c: &mut Conductor,
    cause: &Meta,
    id: Uuid,
    m: &Migration,
    fault: Fault,
    power_state: i32,
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

/// Undoes what was done before the guest ran on the destination: the
/// destination drops its claim and any guest (`RevertMigration`), then the
/// source powers the guest back as it was; awaits the source.
fn compensate(
    c: &mut Conductor,
    cause: &Meta,
    id: Uuid,
    m: &Migration,
    fault: Fault,
    now_ms: i64,
) -> Vec<Emit> {
    let i = c.instances[&id].clone();
    let mut out = Vec::new();
    if let Some(dest) = &m.dest_compute {
        out.push(command(
            cause,
            "compensate-dest",
            &i,
            m,
            dest,
            &m.new_flavor,
            false,
            ComputeCommand::RevertMigration,
        ));
    }
    out.push(command(
        cause,
        "compensate-source",
        &i,
        m,
        &m.source_compute,
        &m.old_flavor,
        was_running(m),
        ComputeCommand::FinishRevertMigration,
    ));
    c.await_step(
        id,
        cause,
        COMPENSATE,
        Some(m.uuid),
        Some(m.source_compute.clone()),
        now_ms,
    );
    if let Some(a) = c.awaiting_mut(id) {
        a.fault = Some(fault);
    }
    out
}

pub(crate) fn step_fault(step: &str, host: &str, reason: &str, now_ms: i64) -> Fault {
    Fault {
        code: 500,
        message: format!("{step} failed on {host}"),
        details: reason.to_owned(),
        created_at_ms: now_ms,
    }
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
    abort(c, cause, id, m, fault, m.original_power_state.code())
}

/// A fact from a host about `f.migration_id`.
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
    if m.uuid != f.migration_id {
        return Vec::new();
    }
    let Some(a) = c.awaiting.get(&id).cloned() else {
        return Vec::new();
    };
    if a.operation_id != Some(m.uuid) || a.host.as_deref() != Some(f.host.as_str()) {
        return Vec::new(); // not the host whose answer is awaited: stale
    }
    let cause = &env.meta;
    let project = i.project_id.clone();
    let dest = m.dest_compute.clone().unwrap_or_default();
    match (&env.event, a.step.as_str()) {
        (Event::ComputeFact(ComputeFact::ResizeClaimSucceeded(_)), PREP_RESIZE)
            if f.attempt == m.attempt =>
        {
            let e = c.instance_event(
                cause,
                "resize-migrating",
                id,
                &project,
                Event::Instance(InstanceEvent::ResizeMigrationStarted(progress(&m))),
            );
            let cmd = command(
                cause,
                "migrate-disk",
                &i,
                &m,
                &m.source_compute,
                &m.new_flavor,
                false,
                ComputeCommand::MigrateDiskAndPowerOff,
            );
            c.await_step(
                id,
                cause,
                MIGRATE_DISK,
                Some(m.uuid),
                Some(m.source_compute.clone()),
                now_ms,
            );
            vec![e, cmd]
        }
        (Event::ComputeFact(ComputeFact::ResizeClaimFailed(_)), PREP_RESIZE)
            if f.attempt == m.attempt =>
        {
            next_alternate(c, cause, id, &m, &f.reason, now_ms)
        }
        (Event::ComputeFact(ComputeFact::DiskMigratedAndPoweredOff(_)), MIGRATE_DISK) => {
            let migrated = c.instance_event(
                cause,
                "resize-migrated",
                id,
                &project,
                Event::Instance(InstanceEvent::ResizeMigrated(progress(&m))),
            );
            let finishing = c.instance_event(
                cause,
                "resize-finishing",
                id,
                &project,
                Event::Instance(InstanceEvent::ResizeFinishStarted(progress(&m))),
            );
            let cmd = command(
                cause,
                "finish-migration",
                &i,
                &m,
                &dest,
                &m.new_flavor,
                was_running(&m),
                ComputeCommand::FinishMigration,
            );
            c.await_step(
                id,
                cause,
                FINISH_MIGRATION,
                Some(m.uuid),
                Some(dest),
                now_ms,
            );
            vec![migrated, finishing, cmd]
        }
        (Event::ComputeFact(ComputeFact::MigrationFinishedOnDest(_)), FINISH_MIGRATION) => {
            let p = MigrationProgress {
                power_state: f.power_state,
                ..MigrationProgress::of(m.uuid)
            };
            let e = c.instance_event(
                cause,
                "resize-finished",
                id,
                &project,
                Event::Instance(InstanceEvent::ResizeFinished(Box::new(p))),
            );
            if c.settings.timeout_ms(AUTO_CONFIRM) > 0 {
                c.await_step(id, cause, AUTO_CONFIRM, Some(m.uuid), Some(dest), now_ms);
            } else {
                c.stop_awaiting(id);
            }
            vec![e]
        }
        (Event::ComputeFact(ComputeFact::MigrationConfirmedOnSource(_)), CONFIRM) => {
            c.stop_awaiting(id);
            vec![c.instance_event(
                cause,
                "resize-confirmed",
                id,
                &project,
                Event::Instance(InstanceEvent::ResizeConfirmed(progress(&m))),
            )]
        }
        (Event::ComputeFact(ComputeFact::MigrationRevertedOnDest(_)), REVERT) => {
            let cmd = command(
                cause,
                "finish-revert",
                &i,
                &m,
                &m.source_compute,
                &m.old_flavor,
                was_running(&m),
                ComputeCommand::FinishRevertMigration,
            );
            c.await_step(
                id,
                cause,
                FINISH_REVERT,
                Some(m.uuid),
                Some(m.source_compute.clone()),
                now_ms,
            );
            vec![cmd]
        }
        (Event::ComputeFact(ComputeFact::RevertFinishedOnSource(_)), FINISH_REVERT) => {
            c.stop_awaiting(id);
            let p = MigrationProgress {
                power_state: f.power_state,
                ..MigrationProgress::of(m.uuid)
            };
            vec![c.instance_event(
                cause,
                "resize-reverted",
                id,
                &project,
                Event::Instance(InstanceEvent::ResizeReverted(Box::new(p))),
            )]
        }
        (Event::ComputeFact(ComputeFact::RevertFinishedOnSource(_)), COMPENSATE) => {
            let fault = a
                .fault
                .clone()
                .unwrap_or_else(|| step_fault("resize", &f.host, "", now_ms));
            abort(c, cause, id, &m, fault, f.power_state)
        }
        (Event::ComputeFact(ComputeFact::MigrationStepFailed(_)), step)
            if driver_step(step) == f.step =>
        {
            let fault = step_fault(&f.step, &f.host, &f.reason, now_ms);
            match step {
                PREP_RESIZE => next_alternate(c, cause, id, &m, &f.reason, now_ms),
                MIGRATE_DISK | FINISH_MIGRATION => compensate(c, cause, id, &m, fault, now_ms),
                CONFIRM | REVERT => error(c, cause, id, &m, &dest, fault),
                FINISH_REVERT => error(c, cause, id, &m, &m.source_compute, fault),
                COMPENSATE => {
                    let mut fault = fault;
                    if let Some(first) = &a.fault {
                        fault.details = format!(
                            "{} ({}); then {}",
                            first.message, first.details, fault.details
                        );
                    }
                    error(c, cause, id, &m, &m.source_compute, fault)
                }
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// The driver step a saga step waits on.
fn driver_step(step: &str) -> &str {
    match step {
        COMPENSATE => "finish_revert_migration",
        s => s.split_once(':').map_or(s, |(_, d)| d),
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
    if a.operation_id != Some(m.uuid) {
        c.stop_awaiting(id);
        return Vec::new();
    }
    let cause = &env.meta;
    let fault = timeout_fault(a, c.settings.timeout_ms(&a.step), now_ms);
    let dest = m.dest_compute.clone().unwrap_or_default();
    match a.step.as_str() {
        SCHEDULE => abort(c, cause, id, &m, fault, m.original_power_state.code()),
        PREP_RESIZE => {
            // The host may yet claim: it drops the claim after it.
            let drop = command(
                cause,
                "prep-resize-timed-out",
                &i,
                &m,
                &dest,
                &m.new_flavor,
                false,
                ComputeCommand::DropMigrationClaim,
            );
            let mut out = vec![drop];
            out.extend(next_alternate(c, cause, id, &m, &fault.details, now_ms));
            out
        }
        MIGRATE_DISK | FINISH_MIGRATION => compensate(c, cause, id, &m, fault, now_ms),
        CONFIRM | REVERT => error(c, cause, id, &m, &dest, fault),
        FINISH_REVERT => error(c, cause, id, &m, &m.source_compute, fault),
        COMPENSATE => {
            let mut fault = fault;
            if let Some(first) = &a.fault {
                fault.details = format!(
                    "{} ({}); then {}",
                    first.message, first.details, fault.details
                );
            }
            error(c, cause, id, &m, &m.source_compute, fault)
        }
        AUTO_CONFIRM => {
            if i.vm_state == VmState::Resized && i.task_state.is_none() {
                confirm(c, cause, id, &m, now_ms)
            } else {
                c.stop_awaiting(id);
                Vec::new()
            }
        }
        _ => {
            // Nothing known to wait for: let go rather than hang.
            c.stop_awaiting(id);
            Vec::new()
        }
    }
}

fn confirm(c: &mut Conductor, cause: &Meta, id: Uuid, m: &Migration, now_ms: i64) -> Vec<Emit> {
    let project = c.instances[&id].project_id.clone();
    let e = c.instance_event(
        cause,
        "resize-confirming",
        id,
        &project,
        Event::Instance(InstanceEvent::ResizeConfirmStarted(progress(m))),
    );
    let i = c.instances[&id].clone();
    let cmd = command(
        cause,
        "confirm-migration",
        &i,
        m,
        &m.source_compute,
        &m.old_flavor,
        false,
        ComputeCommand::ConfirmMigration,
    );
    c.await_step(
        id,
        cause,
        CONFIRM,
        Some(m.uuid),
        Some(m.source_compute.clone()),
        now_ms,
    );
    vec![e, cmd]
}

/// The finished resize a confirm or revert acts on, or the verdict.
fn resized<'a>(
    c: &'a Conductor,
    env: &Envelope,
    id: Uuid,
    method: &str,
) -> Result<&'a Migration, Box<Emit>> {
    let i = visible(c, env, id)?;
    if let Err(r) = check_state(method, env, i, &[VmState::Resized], true) {
        return Err(Box::new(Conductor::reject(env, id.to_string(), r)));
    }
    i.migration()
        .filter(|m| m.status == status::FINISHED)
        .ok_or_else(|| {
            Box::new(Conductor::reject(
                env,
                id.to_string(),
                Rejection::invalid("Instance has not been resized."),
            ))
        })
}

pub(crate) fn on_confirm_request(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    now_ms: i64,
) -> Vec<Emit> {
    match resized(c, env, id, "confirmResize") {
        Ok(m) => {
            let m = m.clone();
            confirm(c, &env.meta, id, &m, now_ms)
        }
        Err(e) => vec![*e],
    }
}

pub(crate) fn on_revert_request(
    c: &mut Conductor,
    env: &Envelope,
    id: Uuid,
    now_ms: i64,
) -> Vec<Emit> {
    let m = match resized(c, env, id, "revertResize") {
        Ok(m) => m.clone(),
        Err(e) => return vec![*e],
    };
    let cause = &env.meta;
    let project = c.instances[&id].project_id.clone();
    let e = c.instance_event(
        cause,
        "resize-reverting",
        id,
        &project,
        Event::Instance(InstanceEvent::ResizeRevertStarted(progress(&m))),
    );
    let i = c.instances[&id].clone();
    let dest = m.dest_compute.clone().unwrap_or_default();
    let cmd = command(
        cause,
        "revert-migration",
        &i,
        &m,
        &dest,
        &m.new_flavor,
        false,
        ComputeCommand::RevertMigration,
    );
    c.await_step(id, cause, REVERT, Some(m.uuid), Some(dest), now_ms);
    vec![e, cmd]
}
