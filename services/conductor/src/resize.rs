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
//! The steps every migration shares (the request, scheduling, the claim
//! and its alternates, abort and error) are [`crate::migration`]'s; this
//! file is what only a resize does, as two tables: [`Step`]'s forward
//! moves in [`on_fact`], and [`recovery`], what undoes each step.
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

use novalog_schemas::instance::Instance;
use novalog_schemas::migration::{Migration, MigrationFact, MigrationProgress, MigrationStatus};
use novalog_schemas::{
    ComputeCommand, ComputeFact, Envelope, Event, Fault, InstanceEvent, Meta, Rejection, VmState,
};
use uuid::Uuid;

use crate::core::{Conductor, Emit};
use crate::migration::{
    abort, check_state, command, current, error, next_alternate, progress, step_fault, visible,
    was_running,
};
use crate::saga;
use crate::timers::{Awaiting, timeout_fault};

/// The steps of a resize (and cold migrate) after scheduling, each
/// awaiting one host (`resize:<step>`; scheduling is
/// [`saga::Step::Schedule`], shared by every migration).
///
/// | step | host | answered by | then |
/// |---|---|---|---|
/// | `PrepResize` | dest | ResizeClaimSucceeded | ResizeMigrationStarted, `MigrateDisk` |
/// | `MigrateDisk` | source | DiskMigratedAndPoweredOff | ResizeMigrated, ResizeFinishStarted, `FinishMigration` |
/// | `FinishMigration` | dest | MigrationFinishedOnDest | ResizeFinished (VERIFY_RESIZE), `AutoConfirm` if a window is set |
/// | `AutoConfirm` | dest | the window's deadline | as a confirm |
/// | `Confirm` | source | MigrationConfirmedOnSource | ResizeConfirmed |
/// | `Revert` | dest | MigrationRevertedOnDest | `FinishRevert` |
/// | `FinishRevert` | source | RevertFinishedOnSource | ResizeReverted |
/// | `Compensate` | source | RevertFinishedOnSource | MigrationAborted |
///
/// What a failure or a timeout of each leads to is [`recovery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    PrepResize,
    MigrateDisk,
    FinishMigration,
    Confirm,
    Revert,
    FinishRevert,
    /// Compensation: the source powers the guest back after a failure.
    Compensate,
    AutoConfirm,
}

const STEPS: [(Step, &str); 8] = [
    (Step::PrepResize, "prep_resize"),
    (Step::MigrateDisk, "migrate_disk_and_power_off"),
    (Step::FinishMigration, "finish_migration"),
    (Step::Confirm, "confirm_migration"),
    (Step::Revert, "revert_migration"),
    (Step::FinishRevert, "finish_revert_migration"),
    (Step::Compensate, "compensate"),
    (Step::AutoConfirm, "auto_confirm"),
];

impl Step {
    pub fn name(self) -> &'static str {
        STEPS
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("", |(_, n)| n)
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        STEPS.iter().find(|(_, n)| *n == name).map(|(s, _)| *s)
    }

    /// The driver step whose failure a host reports for this step.
    fn driver_step(self) -> &'static str {
        match self {
            Step::Compensate => "finish_revert_migration",
            s => s.name(),
        }
    }
}

/// The host a step is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Source,
    Dest,
}

/// What undoes a step that failed or timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// The claim failed: the next alternate, or abort when none is left.
    NextAlternate,
    /// Undone on both hosts, back on the source ([`compensate`]).
    Compensate,
    /// Cannot be undone: ERROR on that host.
    Error(Side),
    /// The compensation itself failed: ERROR on the source, with both
    /// faults.
    ErrorAfterCompensating,
}

/// The compensation table: what a failure (or a timeout) of each step
/// leads to. `None`: nothing fails there (the confirm window only runs
/// out).
const fn recovery(step: Step) -> Option<Recovery> {
    Some(match step {
        Step::PrepResize => Recovery::NextAlternate,
        Step::MigrateDisk | Step::FinishMigration => Recovery::Compensate,
        Step::Confirm | Step::Revert => Recovery::Error(Side::Dest),
        Step::FinishRevert => Recovery::Error(Side::Source),
        Step::Compensate => Recovery::ErrorAfterCompensating,
        Step::AutoConfirm => return None,
    })
}

/// A fact from a host about the resize `f.migration_id`: the forward
/// moves of [`Step`]'s table, or its [`recovery`] on a failure.
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
    let saga::Step::Resize(step) = a.step else {
        return Vec::new();
    };
    let cause = &env.meta;
    let claim_attempt = f.attempt == m.attempt;
    match (&env.event, step) {
        (Event::ComputeFact(ComputeFact::ResizeClaimSucceeded(_)), Step::PrepResize)
            if claim_attempt =>
        {
            migrate_disk(c, cause, &i, &m, now_ms)
        }
        (Event::ComputeFact(ComputeFact::ResizeClaimFailed(_)), Step::PrepResize)
            if claim_attempt =>
        {
            next_alternate(c, cause, id, &m, &f.reason, now_ms)
        }
        (Event::ComputeFact(ComputeFact::DiskMigratedAndPoweredOff(_)), Step::MigrateDisk) => {
            finish_migration(c, cause, &i, &m, now_ms)
        }
        (Event::ComputeFact(ComputeFact::MigrationFinishedOnDest(_)), Step::FinishMigration) => {
            finished(c, cause, id, &m, f.power_state, now_ms)
        }
        (Event::ComputeFact(ComputeFact::MigrationConfirmedOnSource(_)), Step::Confirm) => {
            confirmed(c, cause, id, &m)
        }
        (Event::ComputeFact(ComputeFact::MigrationRevertedOnDest(_)), Step::Revert) => {
            finish_revert(c, cause, &i, &m, now_ms)
        }
        (Event::ComputeFact(ComputeFact::RevertFinishedOnSource(_)), Step::FinishRevert) => {
            reverted(c, cause, id, &m, f.power_state)
        }
        (Event::ComputeFact(ComputeFact::RevertFinishedOnSource(_)), Step::Compensate) => {
            let fault = a
                .fault
                .clone()
                .unwrap_or_else(|| step_fault("resize", &f.host, "", now_ms));
            abort(c, cause, id, &m, fault, f.power_state)
        }
        (Event::ComputeFact(ComputeFact::MigrationStepFailed(_)), step)
            if step.driver_step() == f.step =>
        {
            let fault = step_fault(&f.step, &f.host, &f.reason, now_ms);
            match recovery(step) {
                Some(r) => recover(c, cause, id, &m, &a, r, fault, now_ms),
                None => Vec::new(),
            }
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
    let (Some((i, m)), saga::Step::Resize(step)) = (current(c, id), a.step) else {
        c.stop_awaiting(id);
        return Vec::new();
    };
    if a.operation_id != Some(m.uuid) {
        c.stop_awaiting(id);
        return Vec::new();
    }
    let cause = &env.meta;
    if step == Step::AutoConfirm {
        if i.vm_state == VmState::Resized && i.task_state.is_none() {
            return confirm(c, cause, id, &m, now_ms);
        }
        c.stop_awaiting(id);
        return Vec::new();
    }
    let fault = timeout_fault(a, c.settings.timeout_ms(a.step), now_ms);
    let mut out = Vec::new();
    if step == Step::PrepResize {
        // The host may yet claim: it drops the claim after it.
        let dest = m.dest_compute.clone().unwrap_or_default();
        out.push(command(
            cause,
            "prep-resize-timed-out",
            &i,
            &m,
            &dest,
            &m.new_flavor,
            false,
            ComputeCommand::DropMigrationClaim,
        ));
    }
    match recovery(step) {
        Some(r) => out.extend(recover(c, cause, id, &m, a, r, fault, now_ms)),
        None => {
            c.stop_awaiting(id);
        }
    }
    out
}

/// Carries out `r` for the failed (or silent) step awaited in `a`.
#[allow(clippy::too_many_arguments)]
fn recover(
    c: &mut Conductor,
    cause: &Meta,
    id: Uuid,
    m: &Migration,
    a: &Awaiting,
    r: Recovery,
    mut fault: Fault,
    now_ms: i64,
) -> Vec<Emit> {
    let dest = m.dest_compute.clone().unwrap_or_default();
    match r {
        Recovery::NextAlternate => {
            let reason = fault.details;
            next_alternate(c, cause, id, m, &reason, now_ms)
        }
        Recovery::Compensate => compensate(c, cause, id, m, fault, now_ms),
        Recovery::Error(Side::Dest) => error(c, cause, id, m, &dest, fault),
        Recovery::Error(Side::Source) => error(c, cause, id, m, &m.source_compute, fault),
        Recovery::ErrorAfterCompensating => {
            if let Some(first) = &a.fault {
                fault.details = format!(
                    "{} ({}); then {}",
                    first.message, first.details, fault.details
                );
            }
            error(c, cause, id, m, &m.source_compute, fault)
        }
    }
}

/// The destination claimed: the source powers off and moves the disk.
fn migrate_disk(
    c: &mut Conductor,
    cause: &Meta,
    i: &Instance,
    m: &Migration,
    now_ms: i64,
) -> Vec<Emit> {
    let id = i.id;
    let e = c.instance_event(
        cause,
        "resize-migrating",
        id,
        &i.project_id,
        Event::Instance(InstanceEvent::ResizeMigrationStarted(progress(m))),
    );
    let cmd = command(
        cause,
        "migrate-disk",
        i,
        m,
        &m.source_compute,
        &m.new_flavor,
        false,
        ComputeCommand::MigrateDiskAndPowerOff,
    );
    c.await_step(
        id,
        cause,
        saga::Step::Resize(Step::MigrateDisk),
        Some(m.uuid),
        Some(m.source_compute.clone()),
        now_ms,
    );
    vec![e, cmd]
}

/// The disk moved: the destination finishes and boots the guest.
fn finish_migration(
    c: &mut Conductor,
    cause: &Meta,
    i: &Instance,
    m: &Migration,
    now_ms: i64,
) -> Vec<Emit> {
    let id = i.id;
    let dest = m.dest_compute.clone().unwrap_or_default();
    let migrated = c.instance_event(
        cause,
        "resize-migrated",
        id,
        &i.project_id,
        Event::Instance(InstanceEvent::ResizeMigrated(progress(m))),
    );
    let finishing = c.instance_event(
        cause,
        "resize-finishing",
        id,
        &i.project_id,
        Event::Instance(InstanceEvent::ResizeFinishStarted(progress(m))),
    );
    let cmd = command(
        cause,
        "finish-migration",
        i,
        m,
        &dest,
        &m.new_flavor,
        was_running(m),
        ComputeCommand::FinishMigration,
    );
    c.await_step(
        id,
        cause,
        saga::Step::Resize(Step::FinishMigration),
        Some(m.uuid),
        Some(dest),
        now_ms,
    );
    vec![migrated, finishing, cmd]
}

/// VERIFY_RESIZE; the confirm window (if any) starts.
fn finished(
    c: &mut Conductor,
    cause: &Meta,
    id: Uuid,
    m: &Migration,
    power_state: i32,
    now_ms: i64,
) -> Vec<Emit> {
    let project = c.instances[&id].project_id.clone();
    let dest = m.dest_compute.clone().unwrap_or_default();
    let p = MigrationProgress {
        power_state,
        ..MigrationProgress::of(m.uuid)
    };
    let e = c.instance_event(
        cause,
        "resize-finished",
        id,
        &project,
        Event::Instance(InstanceEvent::ResizeFinished(Box::new(p))),
    );
    let window = saga::Step::Resize(Step::AutoConfirm);
    if c.settings.timeout_ms(window) > 0 {
        c.await_step(id, cause, window, Some(m.uuid), Some(dest), now_ms);
    } else {
        c.stop_awaiting(id);
    }
    vec![e]
}

fn confirmed(c: &mut Conductor, cause: &Meta, id: Uuid, m: &Migration) -> Vec<Emit> {
    let project = c.instances[&id].project_id.clone();
    c.stop_awaiting(id);
    vec![c.instance_event(
        cause,
        "resize-confirmed",
        id,
        &project,
        Event::Instance(InstanceEvent::ResizeConfirmed(progress(m))),
    )]
}

/// The destination let go: the source takes the guest back.
fn finish_revert(
    c: &mut Conductor,
    cause: &Meta,
    i: &Instance,
    m: &Migration,
    now_ms: i64,
) -> Vec<Emit> {
    let cmd = command(
        cause,
        "finish-revert",
        i,
        m,
        &m.source_compute,
        &m.old_flavor,
        was_running(m),
        ComputeCommand::FinishRevertMigration,
    );
    c.await_step(
        i.id,
        cause,
        saga::Step::Resize(Step::FinishRevert),
        Some(m.uuid),
        Some(m.source_compute.clone()),
        now_ms,
    );
    vec![cmd]
}

fn reverted(
    c: &mut Conductor,
    cause: &Meta,
    id: Uuid,
    m: &Migration,
    power_state: i32,
) -> Vec<Emit> {
    let project = c.instances[&id].project_id.clone();
    c.stop_awaiting(id);
    let p = MigrationProgress {
        power_state,
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
        saga::Step::Resize(Step::Compensate),
        Some(m.uuid),
        Some(m.source_compute.clone()),
        now_ms,
    );
    if let Some(a) = c.awaiting_mut(id) {
        a.fault = Some(fault);
    }
    out
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
        saga::Step::Resize(Step::Confirm),
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
        .filter(|m| m.status == MigrationStatus::Finished)
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
    c.await_step(
        id,
        cause,
        saga::Step::Resize(Step::Revert),
        Some(m.uuid),
        Some(dest),
        now_ms,
    );
    vec![e, cmd]
}
