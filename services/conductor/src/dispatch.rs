//! Which flow decides on a record: one match over what the conductor's
//! input topics carry, each arm handing the record to its flow's file. A
//! host's fact about a migration or a rebuild goes to the saga the
//! instance is in, by the type of the step it awaits.

use novalog_schemas::migration::MigrationFact;
use novalog_schemas::{Envelope, Event};

use crate::core::{Conductor, Emit};
use crate::saga::Step;

impl Conductor {
    /// Decides on one input record; returns what to append, in order.
    pub fn handle(&mut self, env: &Envelope, now_ms: i64) -> Vec<Emit> {
        let c = self;
        match &env.event {
            Event::ServerCreateRequested(req) => crate::build::on_create(c, env, req, now_ms),
            Event::HostsSelected {
                request_id,
                instance_id,
                hosts,
            } => {
                if crate::migration::is_migration_request(c, *instance_id, *request_id) {
                    crate::migration::on_hosts_selected(c, env, *instance_id, hosts, now_ms)
                } else {
                    crate::build::on_hosts_selected(c, env, *instance_id, hosts, now_ms)
                }
            }
            Event::NoValidHostFound {
                request_id,
                instance_id,
                reason,
            } => {
                if crate::migration::is_migration_request(c, *instance_id, *request_id) {
                    crate::migration::on_no_valid_host(c, env, *instance_id, reason, now_ms)
                } else {
                    crate::build::on_no_valid_host(c, env, *instance_id, reason, now_ms)
                }
            }
            Event::InstanceSpawned {
                instance_id,
                host,
                attempt,
                power_state,
            } => {
                crate::build::on_spawned(c, env, *instance_id, host, *attempt, *power_state, now_ms)
            }
            Event::ClaimFailed {
                instance_id,
                host,
                attempt,
                reason,
                ..
            }
            | Event::SpawnFailed {
                instance_id,
                host,
                attempt,
                reason,
                ..
            } => {
                crate::build::on_build_failed(c, env, *instance_id, host, *attempt, reason, now_ms)
            }
            Event::ServerDeleteRequested { instance_id, force } => {
                crate::delete::on_delete(c, env, *instance_id, *force, now_ms)
            }
            Event::InstanceDestroyed {
                instance_id, host, ..
            } => crate::delete::on_destroyed(c, env, *instance_id, host, now_ms),
            Event::ServerActionRequested {
                instance_id,
                action,
            } => crate::server_actions::on_requested(c, env, *instance_id, action, now_ms),
            Event::ServerActionPerformed {
                instance_id,
                host,
                action,
                power_state,
            } => crate::server_actions::on_outcome(
                c,
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
            Event::ServerActionFailed {
                instance_id,
                host,
                action,
                reason,
                power_state,
            } => crate::server_actions::on_outcome(
                c,
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
            Event::ServerUpdateRequested {
                instance_id,
                name,
                description,
            } => crate::server_updates::on_update(c, env, *instance_id, name, description),
            Event::ServerMetadataChangeRequested {
                instance_id,
                replace_all,
                set,
                remove,
            } => {
                crate::server_updates::on_metadata(c, env, *instance_id, *replace_all, set, remove)
            }
            Event::ServerTagsChangeRequested {
                instance_id,
                replace_all,
                add,
                remove,
            } => crate::server_updates::on_tags(c, env, *instance_id, *replace_all, add, remove),
            Event::QuotaSetRequested {
                project_id,
                limits,
                force,
            } => crate::quotas::on_set(c, env, project_id, limits, *force),
            Event::QuotaResetRequested { project_id } => {
                crate::quotas::on_reset(c, env, project_id)
            }
            Event::FlavorCreateRequested(f) => crate::catalog::on_flavor_create(c, env, f),
            Event::ImageCreateRequested(i) => crate::images::on_create(c, env, i),
            Event::ImageUpdateRequested(i) => crate::images::on_whole_update(env, i),
            Event::ImagePatchRequested(p) => crate::images::on_patch(c, env, p),
            Event::ImageUploadRequested { image_id } => {
                crate::images::on_upload_start(c, env, *image_id)
            }
            Event::ImageUploadFinishRequested(d) => crate::images::on_upload_finish(c, env, d),
            Event::ImageUploadAbortRequested { image_id } => {
                crate::images::on_upload_abort(c, env, *image_id)
            }
            Event::ImageDeleteRequested { image_id } => crate::images::on_delete(c, env, *image_id),
            Event::ServerGroupCreateRequested(g) => {
                crate::server_groups::on_create(c, env, g, now_ms)
            }
            Event::ServerGroupDeleteRequested { group_id } => {
                crate::server_groups::on_delete(c, env, *group_id)
            }
            Event::AggregateCreateRequested(_)
            | Event::AggregateUpdateRequested { .. }
            | Event::AggregateDeleteRequested { .. }
            | Event::AggregateHostAddRequested { .. }
            | Event::AggregateHostRemoveRequested { .. }
            | Event::AggregateMetadataSetRequested { .. } => {
                crate::aggregates::on_intent(c, env, now_ms)
            }
            Event::SagaStepTimedOut {
                instance_id,
                step,
                deadline_ms,
            } => crate::timers::on_timed_out(c, env, *instance_id, step, *deadline_ms, now_ms),
            // Every kind of migration starts alike (migration.rs); each
            // goes on in its own file.
            Event::ServerMigrationRequested(r) => crate::migration::on_request(c, env, r, now_ms),
            Event::ServerResizeConfirmRequested { instance_id } => {
                crate::resize::on_confirm_request(c, env, *instance_id, now_ms)
            }
            Event::ServerResizeRevertRequested { instance_id } => {
                crate::resize::on_revert_request(c, env, *instance_id, now_ms)
            }
            Event::ServerRebuildRequested(r) => crate::rebuild::on_request(c, env, r, now_ms),
            Event::ResizeClaimSucceeded(f)
            | Event::ResizeClaimFailed(f)
            | Event::DiskMigratedAndPoweredOff(f)
            | Event::MigrationFinishedOnDest(f)
            | Event::MigrationConfirmedOnSource(f)
            | Event::MigrationRevertedOnDest(f)
            | Event::RevertFinishedOnSource(f)
            | Event::InstanceLiveMigrated(f)
            | Event::RebuildSpawnStarted(f)
            | Event::InstanceRebuilt(f)
            | Event::MigrationStepFailed(f) => on_migration_fact(c, env, f, now_ms),
            Event::FlavorUpdateRequested(u) => crate::catalog::on_flavor_update(c, env, u),
            Event::FlavorDeleteRequested { flavor_id } => {
                crate::catalog::on_flavor_delete(c, env, flavor_id)
            }
            Event::FlavorAccessChangeRequested {
                flavor_id,
                project_id,
                add,
            } => crate::catalog::on_flavor_access(c, env, flavor_id, project_id, *add),
            Event::KeypairCreateRequested(k) => crate::keypairs::on_create(c, env, k, now_ms),
            Event::KeypairDeleteRequested { user_id, name } => {
                crate::keypairs::on_delete(c, env, user_id, name)
            }
            Event::ServiceUpdateRequested(s) => crate::services::on_update(c, env, s),
            Event::ServiceChangeRequested(ch) => crate::services::on_change(c, env, ch),
            Event::ServiceDeleteRequested { host } => crate::services::on_delete(c, env, host),
            // Facts the conductor needs no decision on, and records of other
            // services that share its input topics.
            _ => Vec::new(),
        }
    }
}

/// A host's fact about a migration or a rebuild, to the saga the instance
/// awaits it in; facts for none are stale.
fn on_migration_fact(
    c: &mut Conductor,
    env: &Envelope,
    f: &MigrationFact,
    now_ms: i64,
) -> Vec<Emit> {
    let Some(step) = c.awaiting.get(&f.instance_id).map(|a| a.step) else {
        return Vec::new();
    };
    match step {
        Step::Resize(_) => crate::resize::on_fact(c, env, f, now_ms),
        Step::Rebuild => crate::rebuild::on_fact(c, env, f, now_ms),
        Step::Evacuate => crate::evacuate::on_fact(c, env, f, now_ms),
        Step::LiveMigrate(_) => crate::live_migrate::on_fact(c, env, f, now_ms),
        // No host answers these with a migration fact.
        Step::Build | Step::Schedule | Step::Action(_) => Vec::new(),
    }
}
