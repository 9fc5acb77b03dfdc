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

use novalog_schemas::migration::{MigrationFact, MigrationProgress};
use novalog_schemas::{ComputeCommand, ComputeFact, Envelope, Event, InstanceEvent};
use uuid::Uuid;

use crate::core::{Conductor, Emit};
use crate::migration::{abort, command, current, error, next_alternate, step_fault};
use crate::saga;
use crate::timers::{Awaiting, timeout_fault};

/// The steps of a live migration after scheduling (`live:<step>`), and
/// what undoes each:
///
/// | step | host | answered by | then | failed | timed out |
/// |---|---|---|---|---|---|
/// | `Prep` | dest | ResizeClaimSucceeded | LiveMigrationStarted, `LiveMigration` | next alternate | dest drops the claim; next alternate |
/// | `LiveMigration` | source | InstanceLiveMigrated | `Post` | dest drops the claim; abort | dest drops the claim; ERROR on the source |
/// | `Post` | dest | MigrationFinishedOnDest | LiveMigrated | ERROR on the dest | ERROR on the dest |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Prep,
    LiveMigration,
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
    let cause = &env.meta;
    let dest = m.dest_compute.clone().unwrap_or_default();
    match (&env.event, step) {
        (Event::ComputeFact(ComputeFact::ResizeClaimSucceeded(_)), Step::Prep)
            if f.attempt == m.attempt =>
        {
            let running = c.instance_event(
                cause,
                "live-migration-running",
                id,
                &i.project_id,
                Event::Instance(InstanceEvent::LiveMigrationStarted(Box::new(
                    MigrationProgress::of(m.uuid),
                ))),
            );
            let cmd = command(
                cause,
                "live-migration",
                &i,
                &m,
                &m.source_compute,
                &m.new_flavor,
                true,
                ComputeCommand::LiveMigrateInstance,
            );
            c.await_step(
                id,
                cause,
                saga::Step::LiveMigrate(Step::LiveMigration),
                Some(m.uuid),
                Some(m.source_compute.clone()),
                now_ms,
            );
            vec![running, cmd]
        }
        (Event::ComputeFact(ComputeFact::ResizeClaimFailed(_)), Step::Prep)
            if f.attempt == m.attempt =>
        {
            next_alternate(c, cause, id, &m, &f.reason, now_ms)
        }
        (Event::ComputeFact(ComputeFact::InstanceLiveMigrated(_)), Step::LiveMigration) => {
            let cmd = command(
                cause,
                "post-live-migration",
                &i,
                &m,
                &dest,
                &m.new_flavor,
                true,
                ComputeCommand::FinishMigration,
            );
            c.await_step(
                id,
                cause,
                saga::Step::LiveMigrate(Step::Post),
                Some(m.uuid),
                Some(dest),
                now_ms,
            );
            vec![cmd]
        }
        (Event::ComputeFact(ComputeFact::MigrationFinishedOnDest(_)), Step::Post) => {
            c.stop_awaiting(id);
            let p = MigrationProgress {
                power_state: f.power_state,
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
        (Event::ComputeFact(ComputeFact::MigrationStepFailed(_)), Step::LiveMigration) => {
            // The guest stayed on the source: the destination lets go.
            let drop = command(
                cause,
                "live-migration-failed-drop",
                &i,
                &m,
                &dest,
                &m.new_flavor,
                false,
                ComputeCommand::DropMigrationClaim,
            );
            let fault = step_fault(&f.step, &f.host, &f.reason, now_ms);
            let mut out = vec![drop];
            out.extend(abort(c, cause, id, &m, fault, f.power_state));
            out
        }
        (Event::ComputeFact(ComputeFact::MigrationStepFailed(_)), Step::Post) => {
            let fault = step_fault(&f.step, &f.host, &f.reason, now_ms);
            error(c, cause, id, &m, &dest, fault)
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
    let (Some((i, m)), saga::Step::LiveMigrate(step)) = (current(c, id), a.step) else {
        c.stop_awaiting(id);
        return Vec::new();
    };
    let cause = &env.meta;
    let fault = timeout_fault(a, c.settings.timeout_ms(a.step), now_ms);
    let dest = m.dest_compute.clone().unwrap_or_default();
    let drop = command(
        cause,
        "live-timed-out-drop",
        &i,
        &m,
        &dest,
        &m.new_flavor,
        false,
        ComputeCommand::DropMigrationClaim,
    );
    match step {
        Step::Prep => {
            let mut out = vec![drop];
            out.extend(next_alternate(c, cause, id, &m, &fault.details, now_ms));
            out
        }
        Step::LiveMigration => {
            let mut out = vec![drop];
            out.extend(error(c, cause, id, &m, &m.source_compute, fault));
            out
        }
        Step::Post => error(c, cause, id, &m, &dest, fault),
    }
}
