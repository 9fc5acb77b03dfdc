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
//! file is what only a resize does, as one table, [`row`]: each step's
//! host, the answers that move it on, and what undoes it when it fails
//! or its host stays silent. [`on_fact`] and [`on_timeout`] look the
//! step up there and [`follow`] it.
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
    ComputeCommand, Envelope, Event, Fault, InstanceEvent, Meta, PowerState, Rejection, VmState,
};
use uuid::Uuid;

use crate::core::{Conductor, Emit};
use crate::migration::{
    abort, await_on, check_state, command, current, error, host_of, next_alternate, progress,
    step_fault, visible, was_running,
};
use crate::saga::{self, Answer, Row, Side, Then};
use crate::timers::{Awaiting, timeout_fault};

/// The steps of a resize (and cold migrate) after scheduling, each
/// awaiting one host (`resize:<step>`; scheduling is
/// [`saga::Step::Schedule`], shared by every migration). Each step's
/// host, answers and compensations are its [`row`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The destination claims the new flavor (Nova's prep_resize).
    PrepResize,
    /// The source powers off and moves the disk.
    MigrateDisk,
    /// The destination finishes and boots the guest.
    FinishMigration,
    /// The source cleans up (a confirm, or the window running out).
    Confirm,
    /// The destination lets go (a revert).
    Revert,
    /// The source takes the guest back with the old flavor.
    FinishRevert,
    /// Compensation: the destination dropped its claim, the source
    /// powers the guest back after a failure.
    Compensate,
    /// VERIFY_RESIZE until `resize_confirm_window` runs out.
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
}

/// Where a resize comes to rest or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// ResizeFinished: VERIFY_RESIZE on the destination, until a confirm
    /// or a revert (or the confirm window, when one is set).
    Verify,
    /// ResizeConfirmed: ACTIVE (or SHUTOFF) on the destination.
    Confirmed,
    /// ResizeReverted: ACTIVE (or SHUTOFF) on the source.
    Reverted,
    /// Compensated (MigrationAborted): back on the source as it was,
    /// with the fault that was compensated.
    Compensated,
}

/// What undoes a step that failed or timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// The claim failed: the next alternate, or abort when none is left.
    NextAlternate,
    /// The claim did not answer: the destination drops any claim it makes
    /// later, then as [`Recovery::NextAlternate`].
    DropClaimThenNextAlternate,
    /// Undone on both hosts, back on the source ([`Step::Compensate`]).
    Compensate,
    /// Cannot be undone: ERROR on that host.
    Error(Side),
    /// The compensation itself failed: ERROR on the source, with both
    /// faults.
    ErrorAfterCompensating,
}

type ResizeRow = Row<Step, End, Recovery>;

/// The resize as a table: for each step, the host it awaits, the driver
/// step that host names when it fails, each answer and what follows it,
/// and what follows when the host stays silent past the deadline.
fn row(step: Step) -> ResizeRow {
    use Answer as A;
    use Then::{Done, Next, Recover};
    match step {
        Step::PrepResize => Row {
            host: Side::Dest,
            driver_step: Some("prep_resize"),
            answers: &[
                (A::Claimed, Next(Step::MigrateDisk)),
                (A::ClaimFailed, Recover(Recovery::NextAlternate)),
                (A::StepFailed, Recover(Recovery::NextAlternate)),
            ],
            // The host may yet claim.
            timed_out: Recover(Recovery::DropClaimThenNextAlternate),
        },
        Step::MigrateDisk => Row {
            host: Side::Source,
            driver_step: Some("migrate_disk_and_power_off"),
            answers: &[
                (A::DiskMigrated, Next(Step::FinishMigration)),
                (A::StepFailed, Recover(Recovery::Compensate)),
            ],
            timed_out: Recover(Recovery::Compensate),
        },
        Step::FinishMigration => Row {
            host: Side::Dest,
            driver_step: Some("finish_migration"),
            answers: &[
                (A::FinishedOnDest, Done(End::Verify)),
                (A::StepFailed, Recover(Recovery::Compensate)),
            ],
            timed_out: Recover(Recovery::Compensate),
        },
        Step::Confirm => Row {
            host: Side::Source,
            driver_step: Some("confirm_migration"),
            answers: &[
                (A::ConfirmedOnSource, Done(End::Confirmed)),
                (A::StepFailed, Recover(Recovery::Error(Side::Dest))),
            ],
            timed_out: Recover(Recovery::Error(Side::Dest)),
        },
        Step::Revert => Row {
            host: Side::Dest,
            driver_step: Some("revert_migration"),
            answers: &[
                (A::RevertedOnDest, Next(Step::FinishRevert)),
                (A::StepFailed, Recover(Recovery::Error(Side::Dest))),
            ],
            timed_out: Recover(Recovery::Error(Side::Dest)),
        },
        Step::FinishRevert => Row {
            host: Side::Source,
            driver_step: Some("finish_revert_migration"),
            answers: &[
                (A::RevertFinishedOnSource, Done(End::Reverted)),
                (A::StepFailed, Recover(Recovery::Error(Side::Source))),
            ],
            timed_out: Recover(Recovery::Error(Side::Source)),
        },
        Step::Compensate => Row {
            host: Side::Source,
            driver_step: Some("finish_revert_migration"),
            answers: &[
                (A::RevertFinishedOnSource, Done(End::Compensated)),
                (A::StepFailed, Recover(Recovery::ErrorAfterCompensating)),
            ],
            timed_out: Recover(Recovery::ErrorAfterCompensating),
        },
        // Nothing answers the window; when it runs out, the resize is
        // confirmed ([`on_timeout`] checks it is still unconfirmed).
        Step::AutoConfirm => Row {
            host: Side::Dest,
            driver_step: None,
            answers: &[],
            timed_out: Next(Step::Confirm),
        },
    }
}

/// A host's `answer` about the resize `f.migration_id`: what its step's
/// [`row`] says follows.
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
    let Some(a) = c.awaiting.get(&id).cloned() else {
        return Vec::new();
    };
    if m.uuid != f.migration_id
        || a.operation_id != Some(m.uuid)
        || a.host.as_deref() != Some(f.host.as_str())
    {
        return Vec::new(); // not the host whose answer is awaited: stale
    }
    let saga::Step::Resize(step) = a.step else {
        return Vec::new();
    };
    match row(step).on(answer, f, m.attempt) {
        Some(then) => {
            let fault = step_fault(&f.step, &f.host, &f.reason, now_ms);
            follow(c, &env.meta, &i, &m, &a, then, fault, f.power_state, now_ms)
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
    let (Some((i, m)), saga::Step::Resize(step)) = (current(c, id), a.step) else {
        c.stop_awaiting(id);
        return Vec::new();
    };
    if a.operation_id != Some(m.uuid) {
        c.stop_awaiting(id);
        return Vec::new();
    }
    if step == Step::AutoConfirm && (i.vm_state != VmState::Resized || i.task_state.is_some()) {
        // Confirmed, reverted or deleted meanwhile.
        c.stop_awaiting(id);
        return Vec::new();
    }
    let fault = timeout_fault(a, c.settings.timeout_ms(a.step), now_ms);
    let power_state = m.original_power_state;
    follow(
        c,
        &env.meta,
        &i,
        &m,
        a,
        row(step).timed_out,
        fault,
        power_state,
        now_ms,
    )
}

/// Carries out `then` for the step awaited in `a`; `fault` is what a
/// compensation records, `power_state` the guest's as the host last
/// reported it.
#[allow(clippy::too_many_arguments)]
fn follow(
    c: &mut Conductor,
    cause: &Meta,
    i: &Instance,
    m: &Migration,
    a: &Awaiting,
    then: Then<Step, End, Recovery>,
    fault: Fault,
    power_state: PowerState,
    now_ms: i64,
) -> Vec<Emit> {
    match then {
        Then::Progress => Vec::new(),
        Then::Next(step) => enter(c, cause, i, m, step, now_ms),
        Then::Done(end) => finish(c, cause, i.id, m, a, end, power_state, now_ms),
        Then::Recover(r) => recover(c, cause, i, m, a, r, fault, now_ms),
    }
}

/// Starts `step`: its records, its command to the host its [`row`]
/// names, and the wait for that host's answer.
pub(crate) fn enter(
    c: &mut Conductor,
    cause: &Meta,
    i: &Instance,
    m: &Migration,
    step: Step,
    now_ms: i64,
) -> Vec<Emit> {
    let id = i.id;
    let host = host_of(m, row(step).host);
    let mut out = Vec::new();
    let mut record = |c: &mut Conductor, name: &str, e: InstanceEvent| {
        out.push(c.instance_event(cause, name, id, &i.project_id, Event::Instance(e)));
    };
    let cmd = match step {
        Step::PrepResize => Some(command(
            cause,
            &format!("prep-resize-{}", m.attempt),
            i,
            m,
            &host,
            &m.new_flavor,
            m.original_vm_state != VmState::Stopped,
            ComputeCommand::PrepResize,
        )),
        Step::MigrateDisk => {
            record(
                c,
                "resize-migrating",
                InstanceEvent::ResizeMigrationStarted(progress(m)),
            );
            Some(command(
                cause,
                "migrate-disk",
                i,
                m,
                &host,
                &m.new_flavor,
                false,
                ComputeCommand::MigrateDiskAndPowerOff,
            ))
        }
        Step::FinishMigration => {
            record(
                c,
                "resize-migrated",
                InstanceEvent::ResizeMigrated(progress(m)),
            );
            record(
                c,
                "resize-finishing",
                InstanceEvent::ResizeFinishStarted(progress(m)),
            );
            Some(command(
                cause,
                "finish-migration",
                i,
                m,
                &host,
                &m.new_flavor,
                was_running(m),
                ComputeCommand::FinishMigration,
            ))
        }
        Step::Confirm => {
            record(
                c,
                "resize-confirming",
                InstanceEvent::ResizeConfirmStarted(progress(m)),
            );
            Some(command(
                cause,
                "confirm-migration",
                i,
                m,
                &host,
                &m.old_flavor,
                false,
                ComputeCommand::ConfirmMigration,
            ))
        }
        Step::Revert => {
            record(
                c,
                "resize-reverting",
                InstanceEvent::ResizeRevertStarted(progress(m)),
            );
            Some(command(
                cause,
                "revert-migration",
                i,
                m,
                &host,
                &m.new_flavor,
                false,
                ComputeCommand::RevertMigration,
            ))
        }
        Step::FinishRevert => Some(command(
            cause,
            "finish-revert",
            i,
            m,
            &host,
            &m.old_flavor,
            was_running(m),
            ComputeCommand::FinishRevertMigration,
        )),
        Step::Compensate => {
            // The destination drops its claim and any guest first; the
            // source's answer is the one awaited.
            if let Some(dest) = &m.dest_compute {
                out.push(command(
                    cause,
                    "compensate-dest",
                    i,
                    m,
                    dest,
                    &m.new_flavor,
                    false,
                    ComputeCommand::RevertMigration,
                ));
            }
            Some(command(
                cause,
                "compensate-source",
                i,
                m,
                &host,
                &m.old_flavor,
                was_running(m),
                ComputeCommand::FinishRevertMigration,
            ))
        }
        // Only the window's deadline.
        Step::AutoConfirm => None,
    };
    out.extend(cmd);
    await_on(c, cause, id, m, saga::Step::Resize(step), host, now_ms);
    out
}

/// The records of `end`; the confirm window starts at VERIFY_RESIZE.
#[allow(clippy::too_many_arguments)]
fn finish(
    c: &mut Conductor,
    cause: &Meta,
    id: Uuid,
    m: &Migration,
    a: &Awaiting,
    end: End,
    power_state: PowerState,
    now_ms: i64,
) -> Vec<Emit> {
    let project = c.instances[&id].project_id.clone();
    let with_power = || {
        Box::new(MigrationProgress {
            power_state,
            ..MigrationProgress::of(m.uuid)
        })
    };
    let (name, e) = match end {
        End::Verify => (
            "resize-finished",
            InstanceEvent::ResizeFinished(with_power()),
        ),
        End::Confirmed => (
            "resize-confirmed",
            InstanceEvent::ResizeConfirmed(progress(m)),
        ),
        End::Reverted => (
            "resize-reverted",
            InstanceEvent::ResizeReverted(with_power()),
        ),
        End::Compensated => {
            let fault = a.fault.clone().unwrap_or_else(|| {
                step_fault("resize", a.host.as_deref().unwrap_or_default(), "", now_ms)
            });
            return abort(c, cause, id, m, fault, power_state);
        }
    };
    let out = vec![c.instance_event(cause, name, id, &project, Event::Instance(e))];
    let window = saga::Step::Resize(Step::AutoConfirm);
    if end == End::Verify && c.settings.timeout_ms(window) > 0 {
        let i = c.instances[&id].clone();
        enter(c, cause, &i, m, Step::AutoConfirm, now_ms);
    } else {
        c.stop_awaiting(id);
    }
    out
}

/// Carries out `r` for the failed (or silent) step awaited in `a`.
#[allow(clippy::too_many_arguments)]
fn recover(
    c: &mut Conductor,
    cause: &Meta,
    i: &Instance,
    m: &Migration,
    a: &Awaiting,
    r: Recovery,
    mut fault: Fault,
    now_ms: i64,
) -> Vec<Emit> {
    let id = i.id;
    match r {
        Recovery::NextAlternate => next_alternate(c, cause, id, m, &fault.details, now_ms),
        Recovery::DropClaimThenNextAlternate => {
            let dest = host_of(m, Side::Dest);
            let mut out = vec![command(
                cause,
                "prep-resize-timed-out",
                i,
                m,
                &dest,
                &m.new_flavor,
                false,
                ComputeCommand::DropMigrationClaim,
            )];
            out.extend(next_alternate(c, cause, id, m, &fault.details, now_ms));
            out
        }
        Recovery::Compensate => {
            let out = enter(c, cause, i, m, Step::Compensate, now_ms);
            if let Some(a) = c.awaiting_mut(id) {
                a.fault = Some(fault);
            }
            out
        }
        Recovery::Error(side) => error(c, cause, id, m, &host_of(m, side), fault),
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
            let i = c.instances[&id].clone();
            enter(c, &env.meta, &i, &m, Step::Confirm, now_ms)
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
    match resized(c, env, id, "revertResize") {
        Ok(m) => {
            let m = m.clone();
            let i = c.instances[&id].clone();
            enter(c, &env.meta, &i, &m, Step::Revert, now_ms)
        }
        Err(e) => vec![*e],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Step; 8] = [
        Step::PrepResize,
        Step::MigrateDisk,
        Step::FinishMigration,
        Step::Confirm,
        Step::Revert,
        Step::FinishRevert,
        Step::Compensate,
        Step::AutoConfirm,
    ];

    /// Every step has a row that moves it on (or waits for its window),
    /// undoes it when it fails, and can be reached: from the claim, from
    /// VERIFY_RESIZE (the window, confirm, revert) or from a failure
    /// (the compensation).
    #[test]
    fn the_table_covers_every_step() {
        assert_eq!(ALL.len(), STEPS.len());
        saga::check_table(
            &ALL,
            &[
                Step::PrepResize,
                Step::AutoConfirm,
                Step::Confirm,
                Step::Revert,
                Step::Compensate,
            ],
            row,
            |s| s,
        );
    }
}
