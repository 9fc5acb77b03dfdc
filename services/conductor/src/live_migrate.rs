//! The live-migrate saga (admin; ACTIVE or PAUSED, and it stays so): the
//! destination (scheduled, or the one named) claims the flavor; the source
//! moves the running guest there and lets go of its claim; the destination
//! then takes the guest's claim as its own (post live migration). Task
//! state MIGRATING throughout; the migration `preparing` → `completed`.
//!
//! A failed claim moves on to the next alternate. A failed live migration
//! leaves the guest on the source: the destination drops its claim and the
//! instance is back as it was, the migration in `error`. A failure after
//! the guest moved, or a host that does not answer in time, ends in ERROR
//! with a fault naming the step.
//!
//! The saga is its table, [`row`]: [`on_fact`] and [`on_timeout`] look the
//! awaited step up there and follow what it says.

use novalog_schemas::instance::Instance;
use novalog_schemas::migration::{Migration, MigrationFact, MigrationProgress};
use novalog_schemas::{
    ComputeCommand, Envelope, Event, Fault, InstanceEvent, Meta, PowerState, VmState,
};
use uuid::Uuid;

use crate::core::{Conductor, Emit};
use crate::migration::{
    abort, await_on, command, current, error, host_of, next_alternate, step_fault,
};
use crate::saga::{self, Answer, Row, Side, Then};
use crate::timers::{Awaiting, timeout_fault};

/// The steps of a live migration after scheduling (`live:<step>`); each
/// one's host, answers and compensations are its [`row`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The destination claims the flavor.
    Prep,
    /// The source moves the running guest to the destination.
    LiveMigration,
    /// The destination takes the guest's claim as its own.
    Post,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Prep => "prep",
            Step::LiveMigration => "live_migration",
            Step::Post => "post_live_migration",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        [Step::Prep, Step::LiveMigration, Step::Post]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// The end of a live migration that worked: LiveMigrated, on the
/// destination in the state it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Migrated;

/// What undoes a step that failed or timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// The claim failed: the next alternate, or abort when none is left.
    NextAlternate,
    /// The destination drops its claim (and any it makes later), then
    /// the next alternate.
    DropClaimThenNextAlternate,
    /// The guest stayed on the source: the destination drops its claim,
    /// and the instance is back as it was (MigrationAborted).
    DropClaimThenAbort,
    /// Where the guest is is unknown: the destination drops its claim;
    /// ERROR on the source.
    DropClaimThenError,
    /// After the guest moved: ERROR on the destination.
    ErrorOnDest,
}

/// The live migration as a table: for each step, the host it awaits, the
/// driver step that host names when it fails, each answer and what
/// follows it, and what follows silence past the deadline.
fn row(step: Step) -> Row<Step, Migrated, Recovery> {
    use Answer as A;
    use Then::{Done, Next, Recover};
    match step {
        Step::Prep => Row {
            host: Side::Dest,
            driver_step: Some("prep_resize"),
            answers: &[
                (A::Claimed, Next(Step::LiveMigration)),
                (A::ClaimFailed, Recover(Recovery::NextAlternate)),
            ],
            timed_out: Recover(Recovery::DropClaimThenNextAlternate),
        },
        Step::LiveMigration => Row {
            host: Side::Source,
            driver_step: Some("live_migration"),
            answers: &[
                (A::LiveMigrated, Next(Step::Post)),
                (A::StepFailed, Recover(Recovery::DropClaimThenAbort)),
            ],
            timed_out: Recover(Recovery::DropClaimThenError),
        },
        Step::Post => Row {
            host: Side::Dest,
            driver_step: Some("finish_migration"),
            answers: &[
                (A::FinishedOnDest, Done(Migrated)),
                (A::StepFailed, Recover(Recovery::ErrorOnDest)),
            ],
            timed_out: Recover(Recovery::ErrorOnDest),
        },
    }
}

/// A host's `answer` about the live migration `f.migration_id`: what its
/// step's [`row`] says follows.
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
    if f.migration_id != m.uuid
        || a.operation_id != Some(m.uuid)
        || a.host.as_deref() != Some(f.host.as_str())
    {
        return Vec::new();
    }
    let saga::Step::LiveMigrate(step) = a.step else {
        return Vec::new();
    };
    match row(step).on(answer, f, m.attempt) {
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
    let (Some((i, m)), saga::Step::LiveMigrate(step)) = (current(c, id), a.step) else {
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
        row(step).timed_out,
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
    then: Then<Step, Migrated, Recovery>,
    fault: Fault,
    power_state: PowerState,
    now_ms: i64,
) -> Vec<Emit> {
    let id = i.id;
    let drop_claim = |id_step: &str| {
        command(
            cause,
            id_step,
            i,
            m,
            &host_of(m, Side::Dest),
            &m.new_flavor,
            false,
            ComputeCommand::DropMigrationClaim,
        )
    };
    match then {
        Then::Progress => Vec::new(),
        Then::Next(step) => enter(c, cause, i, m, step, now_ms),
        Then::Done(Migrated) => {
            c.stop_awaiting(id);
            let p = MigrationProgress {
                power_state,
                ..MigrationProgress::of(m.uuid)
            };
            vec![c.instance_event(
                cause,
                "live-migrated",
                id,
                &i.project_id,
                Event::Instance(InstanceEvent::LiveMigrated(Box::new(p))),
            )]
        }
        Then::Recover(Recovery::NextAlternate) => {
            next_alternate(c, cause, id, m, &fault.details, now_ms)
        }
        Then::Recover(Recovery::DropClaimThenNextAlternate) => {
            let mut out = vec![drop_claim("live-timed-out-drop")];
            out.extend(next_alternate(c, cause, id, m, &fault.details, now_ms));
            out
        }
        Then::Recover(Recovery::DropClaimThenAbort) => {
            let mut out = vec![drop_claim("live-migration-failed-drop")];
            out.extend(abort(c, cause, id, m, fault, power_state));
            out
        }
        Then::Recover(Recovery::DropClaimThenError) => {
            let mut out = vec![drop_claim("live-timed-out-drop")];
            out.extend(error(c, cause, id, m, &m.source_compute, fault));
            out
        }
        Then::Recover(Recovery::ErrorOnDest) => {
            error(c, cause, id, m, &host_of(m, Side::Dest), fault)
        }
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
    let cmd = match step {
        Step::Prep => command(
            cause,
            &format!("prep-resize-{}", m.attempt),
            i,
            m,
            &host,
            &m.new_flavor,
            m.original_vm_state != VmState::Stopped,
            ComputeCommand::PrepResize,
        ),
        Step::LiveMigration => {
            out.push(c.instance_event(
                cause,
                "live-migration-running",
                id,
                &i.project_id,
                Event::Instance(InstanceEvent::LiveMigrationStarted(Box::new(
                    MigrationProgress::of(m.uuid),
                ))),
            ));
            command(
                cause,
                "live-migration",
                i,
                m,
                &host,
                &m.new_flavor,
                true,
                ComputeCommand::LiveMigrateInstance,
            )
        }
        Step::Post => command(
            cause,
            "post-live-migration",
            i,
            m,
            &host,
            &m.new_flavor,
            true,
            ComputeCommand::FinishMigration,
        ),
    };
    out.push(cmd);
    await_on(c, cause, id, m, saga::Step::LiveMigrate(step), host, now_ms);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every step has a row that moves it on and undoes it when it fails,
    /// and each is reached from the claim.
    #[test]
    fn the_table_covers_every_step() {
        saga::check_table(
            &[Step::Prep, Step::LiveMigration, Step::Post],
            &[Step::Prep],
            row,
            |s| s,
        );
    }
}
