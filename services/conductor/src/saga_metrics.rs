//! Saga durations and outcomes, read off the instance events the
//! conductor emits: a saga starts with its first event (a create, a
//! delete, a task, a migration, a rebuild) and ends with the event that
//! settles it. Pure: [`SagaClock::observe`] says which saga ended and how
//! long it took; the service records it in Prometheus.
//!
//! Start times live in memory only: a saga that started before a restart
//! is still counted when it ends, without a duration.

use std::collections::BTreeMap;

use novalog_schemas::{Envelope, Event, InstanceEvent};

/// A saga that ended.
#[derive(Debug, Clone, PartialEq)]
pub struct SagaEnded {
    /// `build`, `delete`, `action`, `resize`, `migration`,
    /// `live-migration`, `evacuation`, `rebuild`.
    pub kind: &'static str,
    /// `active`, `error`, `deleted`, `completed`, `failed`, `confirmed`,
    /// `reverted`, `aborted`, `done`.
    pub outcome: &'static str,
    /// Milliseconds from the start, when the start was seen.
    pub duration_ms: Option<i64>,
}

/// The sagas in flight: (aggregate or migration id, kind) → start.
#[derive(Debug, Default)]
pub struct SagaClock {
    open: BTreeMap<(String, &'static str), i64>,
    /// Migration id → its kind and its instance (a delete ends the
    /// instance's migrations: without it, a server deleted mid-migration
    /// left its migration here for as long as the process ran).
    migrations: BTreeMap<String, (&'static str, String)>,
    /// A build a delete ended, reported with the delete.
    pre_empted: Option<SagaEnded>,
}

impl SagaClock {
    /// The sagas `env` ends (a delete can end a build as well as itself).
    pub fn observe(&mut self, env: &Envelope) -> Vec<SagaEnded> {
        self.observe_one(env)
            .into_iter()
            .chain(self.pre_empted.take())
            .collect()
    }

    fn observe_one(&mut self, env: &Envelope) -> Option<SagaEnded> {
        let (id, at) = (env.meta.aggregate_id.clone(), env.meta.occurred_at_ms);
        let start = |s: &mut Self, id: String, kind| {
            s.open.insert((id, kind), at);
            None
        };
        let event = match &env.event {
            Event::Instance(event) => event,
            // Sagas start and end on `instances` only.
            Event::Intent(_)
            | Event::Scheduler(_)
            | Event::Compute(_)
            | Event::ComputeFact(_)
            | Event::Host(_)
            | Event::Catalog(_)
            | Event::DeadLetter(_)
            | Event::Billing(_) => return None,
        };
        match event {
            InstanceEvent::InstanceCreated(_) => start(self, id, "build"),
            InstanceEvent::InstanceDeleteStarted => start(self, id, "delete"),
            InstanceEvent::InstanceTaskStarted { .. } => start(self, id, "action"),
            InstanceEvent::RebuildStarted(_) => start(self, id, "rebuild"),
            InstanceEvent::MigrationStarted(m) => {
                let kind = m.migration_type.as_str();
                let mid = m.uuid.to_string();
                self.migrations.insert(mid.clone(), (kind, id));
                start(self, mid, kind)
            }
            InstanceEvent::InstanceBecameActive { .. } => self.end(&id, "build", "active", at),
            InstanceEvent::InstanceFailed { .. } => self
                .end(&id, "build", "error", at)
                .or_else(|| self.end(&id, "rebuild", "error", at)),
            InstanceEvent::InstanceDeleted { .. } => {
                // A delete pre-empts whatever was running on the instance.
                self.pre_empted = self.end(&id, "build", "deleted", at);
                self.open.retain(|(i, k), _| i != &id || *k == "delete");
                let mut gone = Vec::new();
                self.migrations.retain(|mid, (kind, instance)| {
                    let keep = instance != &id;
                    if !keep {
                        gone.push((mid.clone(), *kind));
                    }
                    keep
                });
                for key in gone {
                    self.open.remove(&key);
                }
                self.end(&id, "delete", "deleted", at)
            }
            InstanceEvent::InstanceTaskCompleted { .. } => self.end(&id, "action", "completed", at),
            InstanceEvent::InstanceTaskFailed { .. } => self.end(&id, "action", "failed", at),
            InstanceEvent::RebuildCompleted { .. } => self.end(&id, "rebuild", "completed", at),
            InstanceEvent::ResizeConfirmed(p) => self.end_migration(p, "confirmed", at),
            InstanceEvent::ResizeReverted(p) => self.end_migration(p, "reverted", at),
            InstanceEvent::MigrationAborted(p) => self.end_migration(p, "aborted", at),
            InstanceEvent::MigrationErrored(p) => self.end_migration(p, "error", at),
            InstanceEvent::LiveMigrated(p) | InstanceEvent::Evacuated(p) => {
                self.end_migration(p, "done", at)
            }
            // Steps inside a saga: neither its start nor its end.
            InstanceEvent::IntentRejected { .. }
            | InstanceEvent::ConsoleOutputRead { .. }
            | InstanceEvent::InstanceScheduled { .. }
            | InstanceEvent::InstanceRescheduled { .. }
            | InstanceEvent::InstanceLocked { .. }
            | InstanceEvent::InstanceUnlocked
            | InstanceEvent::InstancePowerStateSynced { .. }
            | InstanceEvent::InstanceUpdated { .. }
            | InstanceEvent::InstanceMetadataSet { .. }
            | InstanceEvent::InstanceTagsSet { .. }
            | InstanceEvent::MigrationScheduled(_)
            | InstanceEvent::ResizeMigrationStarted(_)
            | InstanceEvent::ResizeMigrated(_)
            | InstanceEvent::ResizeFinishStarted(_)
            | InstanceEvent::ResizeFinished(_)
            | InstanceEvent::ResizeConfirmStarted(_)
            | InstanceEvent::ResizeRevertStarted(_)
            | InstanceEvent::LiveMigrationStarted(_)
            | InstanceEvent::RebuildSpawnBegan
            | InstanceEvent::ConsoleTokenIssued(_) => None,
        }
    }

    fn end(
        &mut self,
        id: &str,
        kind: &'static str,
        outcome: &'static str,
        at: i64,
    ) -> Option<SagaEnded> {
        let started = self.open.remove(&(id.to_owned(), kind))?;
        Some(SagaEnded {
            kind,
            outcome,
            duration_ms: Some((at - started).max(0)),
        })
    }

    fn end_migration(
        &mut self,
        p: &novalog_schemas::migration::MigrationProgress,
        outcome: &'static str,
        at: i64,
    ) -> Option<SagaEnded> {
        let mid = p.migration_id.to_string();
        let (kind, _) = self.migrations.remove(&mid)?;
        let started = self.open.remove(&(mid, kind));
        Some(SagaEnded {
            kind,
            outcome,
            duration_ms: started.map(|s| (at - s).max(0)),
        })
    }
}

/// Records an ended saga: `novalog_sagas_total`, its duration, and for a
/// build `novalog_builds_total`.
pub fn record(ended: &SagaEnded) {
    let labels = [("kind", ended.kind), ("outcome", ended.outcome)];
    metrics::counter!("novalog_sagas_total", &labels).increment(1);
    if let Some(ms) = ended.duration_ms {
        metrics::histogram!("novalog_saga_duration_seconds", &labels).record(ms as f64 / 1000.0);
    }
    if ended.kind == "build" {
        metrics::counter!("novalog_builds_total", "outcome" => ended.outcome).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use novalog_schemas::{Actor, Meta};
    use uuid::Uuid;

    fn env(instance: &str, at: i64, event: Event) -> Envelope {
        let mut meta = Meta::origin(
            Uuid::new_v4(),
            "req-1".into(),
            Actor::service("t"),
            instance.into(),
        );
        meta.occurred_at_ms = at;
        Envelope { meta, event }
    }

    #[test]
    fn a_delete_ends_with_its_duration() {
        let mut c = SagaClock::default();
        let created = env(
            "i1",
            1_000,
            Event::Instance(InstanceEvent::InstanceDeleteStarted),
        );
        assert_eq!(c.observe(&created), vec![]);
        let done = c.observe(&env(
            "i1",
            1_500,
            Event::Instance(InstanceEvent::InstanceDeleted {
                deleted_at_ms: 1_500,
            }),
        ));
        assert_eq!(
            done,
            vec![SagaEnded {
                kind: "delete",
                outcome: "deleted",
                duration_ms: Some(500)
            }]
        );
    }

    #[test]
    fn an_end_without_a_start_is_not_a_saga() {
        let mut c = SagaClock::default();
        let active = Event::Instance(InstanceEvent::InstanceBecameActive {
            power_state: novalog_schemas::PowerState::Running,
            launched_at_ms: 0,
        });
        assert_eq!(c.observe(&env("i1", 10, active)), vec![]);
    }

    #[test]
    fn a_delete_pre_empts_a_build() {
        let mut c = SagaClock::default();
        c.open.insert(("i1".into(), "build"), 100);
        c.observe(&env(
            "i1",
            200,
            Event::Instance(InstanceEvent::InstanceDeleteStarted),
        ));
        let ended = c.observe(&env(
            "i1",
            400,
            Event::Instance(InstanceEvent::InstanceDeleted { deleted_at_ms: 400 }),
        ));
        let ended: Vec<_> = ended
            .iter()
            .map(|e| (e.kind, e.outcome, e.duration_ms))
            .collect();
        assert_eq!(
            ended,
            vec![
                ("delete", "deleted", Some(200)),
                ("build", "deleted", Some(300))
            ]
        );
        assert!(c.open.is_empty(), "the build is closed too: {:?}", c.open);
    }
    #[test]
    fn a_delete_forgets_the_instance_s_migrations() {
        let mut c = SagaClock::default();
        use novalog_schemas::migration::{Migration, MigrationStatus, MigrationType};
        let migration = Migration {
            id: 1,
            uuid: Uuid::new_v4(),
            migration_type: MigrationType::Resize,
            status: MigrationStatus::PreMigrating,
            source_compute: "h1".into(),
            dest_compute: None,
            old_flavor: crate::tests::flavor(),
            new_flavor: crate::tests::flavor(),
            created_at_ms: 0,
            updated_at_ms: 0,
            alternates: vec![],
            attempt: 0,
            original_vm_state: novalog_schemas::VmState::Active,
            original_power_state: novalog_schemas::PowerState::Running,
            requested_host: None,
            project_id: "p1".into(),
            user_id: "u1".into(),
            stop_at_destination: false,
        };
        c.observe(&env(
            "i1",
            100,
            Event::Instance(InstanceEvent::MigrationStarted(Box::new(migration))),
        ));
        assert_eq!(c.migrations.len(), 1);
        c.observe(&env(
            "i1",
            200,
            Event::Instance(InstanceEvent::InstanceDeleteStarted),
        ));
        c.observe(&env(
            "i1",
            400,
            Event::Instance(InstanceEvent::InstanceDeleted { deleted_at_ms: 400 }),
        ));
        assert!(c.migrations.is_empty(), "{:?}", c.migrations);
        assert!(c.open.is_empty(), "{:?}", c.open);
    }
}
