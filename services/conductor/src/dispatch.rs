//! Which flow decides on a record: one exhaustive match per input topic's
//! event type, each arm handing the record to its flow's file. A
//! host's fact about a migration or a rebuild goes to the saga the
//! instance is in, by the type of the step it awaits.

use novalog_schemas::migration::MigrationFact;
use novalog_schemas::{ComputeFact, Envelope, Event, Intent, SchedulerEvent};

use crate::aggregates::AggregateIntent;
use crate::core::{Conductor, Emit};
use crate::saga::{Answer, Step};

impl Conductor {
    /// Decides on one input record; returns what to append, in order.
    pub fn handle(&mut self, env: &Envelope, now_ms: i64) -> Vec<Emit> {
        self.now_ms = now_ms;
        let mut out = match &env.event {
            Event::Intent(intent) => self.on_intent(env, intent, now_ms),
            Event::Scheduler(s) => self.on_scheduler(env, s, now_ms),
            Event::ComputeFact(fact) => self.on_compute_fact(env, fact, now_ms),
            // Topics the conductor writes but does not read.
            Event::Instance(_)
            | Event::Compute(_)
            | Event::Host(_)
            | Event::Catalog(_)
            | Event::DeadLetter(_)
            | Event::Billing(_) => Vec::new(),
        };
        out.extend(crate::build::release_held(self, env));
        out
    }

    fn on_intent(&mut self, env: &Envelope, intent: &Intent, now_ms: i64) -> Vec<Emit> {
        match intent {
            Intent::ServerCreateRequested(req) => crate::build::on_create(self, env, req, now_ms),
            Intent::ServerDeleteRequested { instance_id, force } => {
                crate::delete::on_delete(self, env, *instance_id, *force, now_ms)
            }
            Intent::ServerActionRequested {
                instance_id,
                action,
            } => crate::server_actions::on_requested(self, env, *instance_id, action, now_ms),
            Intent::ServerUpdateRequested {
                instance_id,
                name,
                description,
                access,
                hostname,
            } => crate::server_updates::on_update(
                self,
                env,
                *instance_id,
                name,
                description,
                access,
                hostname,
            ),
            Intent::ServerMetadataChangeRequested {
                instance_id,
                replace_all,
                set,
                remove,
            } => crate::server_updates::on_metadata(
                self,
                env,
                *instance_id,
                *replace_all,
                set,
                remove,
            ),
            Intent::ServerTagsChangeRequested {
                instance_id,
                replace_all,
                add,
                remove,
            } => crate::server_updates::on_tags(self, env, *instance_id, *replace_all, add, remove),
            Intent::QuotaSetRequested {
                project_id,
                limits,
                force,
            } => crate::quotas::on_set(self, env, project_id, limits, *force),
            Intent::QuotaResetRequested { project_id } => {
                crate::quotas::on_reset(self, env, project_id)
            }
            Intent::QuotaClassSetRequested { class_name, limits } => {
                crate::quotas::on_class_set(self, env, class_name, limits)
            }
            Intent::FlavorCreateRequested(f) => crate::catalog::on_flavor_create(self, env, f),
            Intent::ImageCreateRequested(i) => crate::images::on_create(self, env, i),
            Intent::ImageUpdateRequested(i) => crate::images::on_whole_update(env, i),
            Intent::ImagePatchRequested(p) => crate::images::on_patch(self, env, p),
            Intent::ImageUploadRequested { image_id } => {
                crate::images::on_upload_start(self, env, *image_id)
            }
            Intent::ImageUploadFinishRequested(d) => crate::images::on_upload_finish(self, env, d),
            Intent::ImageUploadAbortRequested { image_id } => {
                crate::images::on_upload_abort(self, env, *image_id)
            }
            Intent::ImageDeleteRequested { image_id } => {
                crate::images::on_delete(self, env, *image_id)
            }
            Intent::ImageChangeRequested { image_id, change } => {
                crate::images::on_change(self, env, *image_id, change)
            }
            Intent::ServerGroupCreateRequested(g) => {
                crate::server_groups::on_create(self, env, g, now_ms)
            }
            Intent::ServerGroupDeleteRequested { group_id } => {
                crate::server_groups::on_delete(self, env, *group_id)
            }
            Intent::AggregateCreateRequested(a) => {
                crate::aggregates::on_intent(self, env, AggregateIntent::Create(a), now_ms)
            }
            Intent::AggregateUpdateRequested {
                aggregate_id,
                name,
                availability_zone,
            } => {
                let update = AggregateIntent::Update {
                    aggregate_id,
                    name,
                    availability_zone,
                };
                crate::aggregates::on_intent(self, env, update, now_ms)
            }
            Intent::AggregateDeleteRequested { aggregate_id } => {
                let delete = AggregateIntent::Delete { aggregate_id };
                crate::aggregates::on_intent(self, env, delete, now_ms)
            }
            Intent::AggregateHostAddRequested { aggregate_id, host } => {
                let add = AggregateIntent::HostAdd { aggregate_id, host };
                crate::aggregates::on_intent(self, env, add, now_ms)
            }
            Intent::AggregateHostRemoveRequested { aggregate_id, host } => {
                let remove = AggregateIntent::HostRemove { aggregate_id, host };
                crate::aggregates::on_intent(self, env, remove, now_ms)
            }
            Intent::AggregateMetadataSetRequested {
                aggregate_id,
                metadata,
            } => {
                let set = AggregateIntent::MetadataSet {
                    aggregate_id,
                    metadata,
                };
                crate::aggregates::on_intent(self, env, set, now_ms)
            }
            Intent::SagaStepTimedOut {
                instance_id,
                step,
                deadline_ms,
            } => crate::timers::on_timed_out(self, env, *instance_id, step, *deadline_ms, now_ms),
            Intent::ConsoleOutputRequested {
                instance_id,
                length,
            } => crate::console::on_requested(self, env, *instance_id, *length),
            // Every kind of migration starts alike (migration.rs); each goes
            // on in its own file.
            Intent::ServerMigrationRequested(r) => {
                crate::migration::on_request(self, env, r, now_ms)
            }
            Intent::ServerResizeConfirmRequested { instance_id } => {
                crate::resize::on_confirm_request(self, env, *instance_id, now_ms)
            }
            Intent::ServerResizeRevertRequested { instance_id } => {
                crate::resize::on_revert_request(self, env, *instance_id, now_ms)
            }
            Intent::ServerRebuildRequested(r) => crate::rebuild::on_request(self, env, r, now_ms),
            Intent::FlavorUpdateRequested(u) => crate::catalog::on_flavor_update(self, env, u),
            Intent::FlavorDeleteRequested { flavor_id } => {
                crate::catalog::on_flavor_delete(self, env, flavor_id)
            }
            Intent::FlavorAccessChangeRequested {
                flavor_id,
                project_id,
                add,
            } => crate::catalog::on_flavor_access(self, env, flavor_id, project_id, *add),
            Intent::KeypairCreateRequested(k) => crate::keypairs::on_create(self, env, k, now_ms),
            Intent::KeypairDeleteRequested { user_id, name } => {
                crate::keypairs::on_delete(self, env, user_id, name)
            }
            Intent::ServiceUpdateRequested(s) => crate::services::on_update(self, env, s),
            Intent::ServiceChangeRequested(ch) => crate::services::on_change(self, env, ch),
            Intent::ServiceDeleteRequested { host } => crate::services::on_delete(self, env, host),
            Intent::ConsoleTokenRequested {
                instance_id,
                token_hash,
                console_type,
            } => crate::consoles::on_requested(
                self,
                env,
                *instance_id,
                token_hash,
                console_type,
                now_ms,
            ),
        }
    }

    fn on_scheduler(&mut self, env: &Envelope, s: &SchedulerEvent, now_ms: i64) -> Vec<Emit> {
        match s {
            SchedulerEvent::HostsSelected {
                request_id,
                instance_id,
                hosts,
            } => {
                if crate::shelve::is_unshelve_request(self, *instance_id, *request_id) {
                    crate::shelve::on_hosts_selected(self, env, *instance_id, hosts, now_ms)
                } else if crate::migration::is_migration_request(self, *instance_id, *request_id) {
                    crate::migration::on_hosts_selected(self, env, *instance_id, hosts, now_ms)
                } else {
                    crate::build::on_hosts_selected(self, env, *instance_id, hosts, now_ms)
                }
            }
            SchedulerEvent::NoValidHostFound {
                request_id,
                instance_id,
                reason,
            } => {
                if crate::shelve::is_unshelve_request(self, *instance_id, *request_id) {
                    crate::shelve::on_no_valid_host(self, env, *instance_id, reason, now_ms)
                } else if crate::migration::is_migration_request(self, *instance_id, *request_id) {
                    crate::migration::on_no_valid_host(self, env, *instance_id, reason, now_ms)
                } else {
                    crate::build::on_no_valid_host(self, env, *instance_id, reason, now_ms)
                }
            }
            // The conductor's own request, on the topic it shares with the
            // scheduler's answers.
            SchedulerEvent::SelectHostsRequested(_) => Vec::new(),
        }
    }

    fn on_compute_fact(&mut self, env: &Envelope, fact: &ComputeFact, now_ms: i64) -> Vec<Emit> {
        match fact {
            ComputeFact::InstanceSpawned {
                instance_id,
                host,
                attempt,
                power_state,
            } if crate::shelve::awaits_spawn(self, *instance_id) => {
                crate::shelve::on_spawned(self, env, *instance_id, host, *attempt, *power_state)
            }
            ComputeFact::InstanceSpawned {
                instance_id,
                host,
                attempt,
                power_state,
            } => crate::build::on_spawned(
                self,
                env,
                *instance_id,
                host,
                *attempt,
                *power_state,
                now_ms,
            ),
            ComputeFact::ClaimFailed {
                instance_id,
                host,
                attempt,
                reason,
                ..
            }
            | ComputeFact::SpawnFailed {
                instance_id,
                host,
                attempt,
                reason,
                ..
            } if crate::shelve::awaits_spawn(self, *instance_id) => crate::shelve::on_spawn_failed(
                self,
                env,
                *instance_id,
                host,
                *attempt,
                reason,
                now_ms,
            ),
            ComputeFact::ClaimFailed {
                instance_id,
                host,
                attempt,
                reason,
                ..
            }
            | ComputeFact::SpawnFailed {
                instance_id,
                host,
                attempt,
                reason,
                ..
            } => crate::build::on_build_failed(
                self,
                env,
                *instance_id,
                host,
                *attempt,
                reason,
                now_ms,
            ),
            ComputeFact::InstanceDestroyed {
                instance_id, host, ..
            } => crate::delete::on_destroyed(self, env, *instance_id, host, now_ms),
            ComputeFact::ServerActionPerformed {
                instance_id,
                host,
                action,
                power_state,
            } => crate::server_actions::on_outcome(
                self,
                env,
                *instance_id,
                crate::server_actions::Outcome {
                    host,
                    action,
                    power_state: *power_state,
                    failure: None,
                },
                now_ms,
            ),
            ComputeFact::ServerActionFailed {
                instance_id,
                host,
                action,
                reason,
                power_state,
            } => crate::server_actions::on_outcome(
                self,
                env,
                *instance_id,
                crate::server_actions::Outcome {
                    host,
                    action,
                    power_state: *power_state,
                    failure: Some(reason),
                },
                now_ms,
            ),
            ComputeFact::SnapshotProgressed {
                instance_id,
                host,
                action,
                task_state,
                size,
                checksum,
                os_hash_value,
            } => crate::snapshot::on_progress(
                self,
                env,
                *instance_id,
                host,
                action,
                *task_state,
                (!checksum.is_empty()).then(|| crate::snapshot::Stored {
                    size: *size,
                    checksum: checksum.clone(),
                    os_hash_value: os_hash_value.clone(),
                }),
            ),
            ComputeFact::ConsoleOutputFetched {
                instance_id,
                request_id,
                output,
                error,
                ..
            } => crate::console::on_fetched(
                self,
                env,
                *instance_id,
                *request_id,
                output,
                error.as_deref(),
            ),
            ComputeFact::ResizeClaimSucceeded(f) => {
                on_migration_fact(self, env, Answer::Claimed, f, now_ms)
            }
            ComputeFact::ResizeClaimFailed(f) => {
                on_migration_fact(self, env, Answer::ClaimFailed, f, now_ms)
            }
            ComputeFact::DiskMigratedAndPoweredOff(f) => {
                on_migration_fact(self, env, Answer::DiskMigrated, f, now_ms)
            }
            ComputeFact::MigrationFinishedOnDest(f) => {
                on_migration_fact(self, env, Answer::FinishedOnDest, f, now_ms)
            }
            ComputeFact::MigrationConfirmedOnSource(f) => {
                on_migration_fact(self, env, Answer::ConfirmedOnSource, f, now_ms)
            }
            ComputeFact::MigrationRevertedOnDest(f) => {
                on_migration_fact(self, env, Answer::RevertedOnDest, f, now_ms)
            }
            ComputeFact::RevertFinishedOnSource(f) => {
                on_migration_fact(self, env, Answer::RevertFinishedOnSource, f, now_ms)
            }
            ComputeFact::InstanceLiveMigrated(f) => {
                on_migration_fact(self, env, Answer::LiveMigrated, f, now_ms)
            }
            ComputeFact::RebuildSpawnStarted(f) => {
                on_migration_fact(self, env, Answer::SpawnStarted, f, now_ms)
            }
            ComputeFact::InstanceRebuilt(f) => {
                on_migration_fact(self, env, Answer::Rebuilt, f, now_ms)
            }
            ComputeFact::MigrationStepFailed(f) => {
                on_migration_fact(self, env, Answer::StepFailed, f, now_ms)
            }
            ComputeFact::ConsoleEndpointReported {
                instance_id,
                host,
                address,
                port,
            } => crate::consoles::on_endpoint_reported(self, *instance_id, host, address, *port),
            ComputeFact::PowerStateObserved {
                instance_id,
                host,
                power_state,
            } => {
                crate::power_sync::on_observed(self, env, *instance_id, host, *power_state, now_ms)
            }
            // Facts that need no decision: a build waits for the spawn, an
            // evacuation is done once the instance is rebuilt elsewhere.
            ComputeFact::ClaimSucceeded { .. } | ComputeFact::EvacuatedInstanceCleanedUp(_) => {
                Vec::new()
            }
        }
    }
}

/// A host's answer about a migration or a rebuild, to the saga the
/// instance awaits it in (whose table says what follows); facts for none
/// are stale.
fn on_migration_fact(
    c: &mut Conductor,
    env: &Envelope,
    answer: Answer,
    f: &MigrationFact,
    now_ms: i64,
) -> Vec<Emit> {
    let Some(step) = c.awaiting.get(&f.instance_id).map(|a| a.step) else {
        return Vec::new();
    };
    match step {
        Step::Resize(_) => crate::resize::on_fact(c, env, answer, f, now_ms),
        Step::Rebuild => crate::rebuild::on_fact(c, env, answer, f, now_ms),
        Step::Evacuate => crate::evacuate::on_fact(c, env, answer, f, now_ms),
        Step::LiveMigrate(_) => crate::live_migrate::on_fact(c, env, answer, f, now_ms),
        // No host answers these with a migration fact.
        Step::Build
        | Step::Schedule
        | Step::Action(_)
        | Step::Unshelve
        | Step::ShelvedOffload
        | Step::Reclaim => Vec::new(),
    }
}
