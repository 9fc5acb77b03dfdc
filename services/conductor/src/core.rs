//! The conductor's state and dispatch. Pure: no I/O, no clock (the caller
//! passes `now_ms`), so every flow is tested as given/when/then.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use novalog_schemas::instance::{Instance, evolve};
use novalog_schemas::{
    ComputeFact, Envelope, Event, Flavor, Image, InstanceEvent, Intent, Meta, Rejection,
    SchedulerEvent, Topic,
};
use uuid::Uuid;

/// The topic a record goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    Instances,
    Scheduler,
    Compute,
    Catalog,
    /// The conductor's own timeout records.
    Intents,
    Hosts,
}

impl Dest {
    /// The topic this is, whose record type every record sent there has.
    pub fn topic(self) -> Topic {
        match self {
            Dest::Instances => Topic::Instance,
            Dest::Scheduler => Topic::Scheduler,
            Dest::Compute => Topic::Compute,
            Dest::Catalog => Topic::Catalog,
            Dest::Intents => Topic::Intent,
            Dest::Hosts => Topic::Host,
        }
    }
}

/// A record the conductor wants appended.
#[derive(Debug, Clone, PartialEq)]
pub struct Emit {
    pub dest: Dest,
    pub key: String,
    pub env: Envelope,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Build attempts, the first included (`[scheduler] max_attempts`);
    /// also the destinations a resize or migrate tries.
    pub max_attempts: u32,
    /// A build not ACTIVE after this long goes to ERROR
    /// (`instance_build_timeout`; 0: never).
    pub build_timeout_ms: i64,
    /// How long every other saga step waits for its answer before the saga
    /// compensates (0: forever).
    pub step_timeout_ms: i64,
    /// Per-step overrides of `step_timeout_ms`, by step name
    /// (`resize:finish_migration`, `rebuild:rebuild`, ...).
    pub step_timeouts_ms: BTreeMap<String, i64>,
    /// A resize left in VERIFY_RESIZE this long is confirmed
    /// (`resize_confirm_window`; 0: never).
    pub resize_confirm_window_ms: i64,
    /// A resize may land on the host it leaves (`allow_resize_to_same_host`).
    pub allow_resize_to_same_host: bool,
    /// Every project's quotas unless set otherwise (`[quota]`).
    pub quota: novalog_schemas::quota::QuotaDefaults,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_attempts: 3,
            build_timeout_ms: 600_000,
            step_timeout_ms: 300_000,
            step_timeouts_ms: BTreeMap::new(),
            resize_confirm_window_ms: 0,
            allow_resize_to_same_host: false,
            quota: Default::default(),
        }
    }
}

impl Settings {
    /// The timeout of `step`, 0 for none.
    pub fn timeout_ms(&self, step: &str) -> i64 {
        if let Some(t) = self.step_timeouts_ms.get(step) {
            return *t;
        }
        match step {
            "build" => self.build_timeout_ms,
            crate::resize::AUTO_CONFIRM => self.resize_confirm_window_ms,
            _ => self.step_timeout_ms,
        }
    }
}

#[derive(Debug, Default)]
pub struct Conductor {
    pub settings: Settings,
    /// Instances not deleted, and deleted ones while a record about them is
    /// being decided: the shell restores a deleted one from its store
    /// before such a record ([`Conductor::restore`]) and evicts it once it
    /// is persisted ([`Conductor::evict_deleted`]), so memory is bounded by
    /// the live servers, not by every server ever created.
    pub instances: HashMap<Uuid, Instance>,
    pub flavors: BTreeMap<String, Flavor>,
    pub images: BTreeMap<Uuid, Image>,
    /// Server groups not deleted, with the instances that joined them.
    pub server_groups: BTreeMap<Uuid, crate::server_groups::GroupState>,
    /// Host aggregates by id.
    pub aggregates: BTreeMap<u32, novalog_schemas::events::HostAggregate>,
    /// What each instance in a saga waits for, with its deadline.
    pub awaiting: BTreeMap<Uuid, crate::timers::Awaiting>,
    /// The last migration id handed out (Nova's integer ids).
    pub last_migration_id: u64,
    /// Projects' own quota limits (the defaults apply to the rest).
    pub quota_overrides: BTreeMap<String, BTreeMap<String, i64>>,
    /// What each project's instances use, as its quota counts it; kept as
    /// instance events are folded ([`Conductor::rebuild_usage`] on load).
    pub usage: HashMap<String, novalog_schemas::quota::Usage>,
    /// Room reserved for multiple creates, by reservation id.
    pub reservations: HashMap<String, crate::quotas::Reservation>,
    /// Projects given each non-public flavor (Nova's flavor access).
    pub flavor_access: BTreeMap<String, BTreeSet<String>>,
    /// Keypairs by `user_id/name` ([`crate::keypairs::key`]).
    pub keypairs: BTreeMap<String, novalog_schemas::events::Keypair>,
    /// What operators set on each host's `nova-compute` service, as
    /// decided here (hosts never changed are absent).
    pub services: BTreeMap<String, novalog_schemas::events::ServiceStatus>,
    /// Rows changed since the last [`Conductor::take_dirty`].
    dirty: Dirty,
}

/// Keys of rows changed since the last persist.
#[derive(Debug, Default)]
pub struct Dirty {
    pub instances: BTreeSet<Uuid>,
    pub flavors: BTreeSet<String>,
    pub images: BTreeSet<Uuid>,
    pub server_groups: BTreeSet<Uuid>,
    pub aggregates: BTreeSet<u32>,
    pub awaiting: BTreeSet<Uuid>,
    pub counters: bool,
    pub quotas: BTreeSet<String>,
    pub keypairs: BTreeSet<String>,
    pub flavor_access: BTreeSet<String>,
    pub services: BTreeSet<String>,
}

impl Conductor {
    pub fn new(settings: Settings) -> Self {
        Conductor {
            settings,
            ..Default::default()
        }
    }

    /// Decides on one input record; returns what to append, in order.
    pub fn handle(&mut self, env: &Envelope, now_ms: i64) -> Vec<Emit> {
        match &env.event {
            Event::Intent(intent) => self.on_intent(env, intent, now_ms),
            Event::Scheduler(s) => self.on_scheduler(env, s, now_ms),
            Event::ComputeFact(fact) => self.on_compute_fact(env, fact, now_ms),
            // Topics the conductor writes but does not read.
            Event::Instance(_)
            | Event::Compute(_)
            | Event::Host(_)
            | Event::Catalog(_)
            | Event::DeadLetter(_) => Vec::new(),
        }
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
            } => crate::server_updates::on_update(self, env, *instance_id, name, description),
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
            Intent::ServerGroupCreateRequested(g) => {
                crate::server_groups::on_create(self, env, g, now_ms)
            }
            Intent::ServerGroupDeleteRequested { group_id } => {
                crate::server_groups::on_delete(self, env, *group_id)
            }
            Intent::AggregateCreateRequested(_)
            | Intent::AggregateUpdateRequested { .. }
            | Intent::AggregateDeleteRequested { .. }
            | Intent::AggregateHostAddRequested { .. }
            | Intent::AggregateHostRemoveRequested { .. }
            | Intent::AggregateMetadataSetRequested { .. } => {
                crate::aggregates::on_intent(self, env, now_ms)
            }
            Intent::SagaStepTimedOut {
                instance_id,
                step,
                deadline_ms,
            } => crate::timers::on_timed_out(self, env, *instance_id, step, *deadline_ms, now_ms),
            // Every kind of migration starts alike (resize.rs); each goes
            // on in its own file.
            Intent::ServerMigrationRequested(r) => crate::resize::on_request(self, env, r, now_ms),
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
        }
    }

    fn on_scheduler(&mut self, env: &Envelope, s: &SchedulerEvent, now_ms: i64) -> Vec<Emit> {
        match s {
            SchedulerEvent::HostsSelected {
                request_id,
                instance_id,
                hosts,
            } => {
                if crate::resize::is_migration_request(self, *instance_id, *request_id) {
                    crate::resize::on_hosts_selected(self, env, *instance_id, hosts, now_ms)
                } else {
                    crate::build::on_hosts_selected(self, env, *instance_id, hosts, now_ms)
                }
            }
            SchedulerEvent::NoValidHostFound {
                request_id,
                instance_id,
                reason,
            } => {
                if crate::resize::is_migration_request(self, *instance_id, *request_id) {
                    crate::resize::on_no_valid_host(self, env, *instance_id, reason, now_ms)
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
            ComputeFact::ResizeClaimSucceeded(f)
            | ComputeFact::ResizeClaimFailed(f)
            | ComputeFact::DiskMigratedAndPoweredOff(f)
            | ComputeFact::MigrationFinishedOnDest(f)
            | ComputeFact::MigrationConfirmedOnSource(f)
            | ComputeFact::MigrationRevertedOnDest(f)
            | ComputeFact::RevertFinishedOnSource(f)
            | ComputeFact::InstanceLiveMigrated(f)
            | ComputeFact::RebuildSpawnStarted(f)
            | ComputeFact::InstanceRebuilt(f)
            | ComputeFact::MigrationStepFailed(f) => {
                // The saga the instance is in takes the fact.
                match self.awaiting.get(&f.instance_id).map(|a| a.step.clone()) {
                    Some(step) if step.starts_with("rebuild:") => {
                        crate::rebuild::on_fact(self, env, f, now_ms)
                    }
                    Some(step) if step.starts_with("evacuate:") => {
                        crate::evacuate::on_fact(self, env, f, now_ms)
                    }
                    Some(step) if step.starts_with("live:") => {
                        crate::live_migrate::on_fact(self, env, f, now_ms)
                    }
                    Some(_) => crate::resize::on_fact(self, env, f, now_ms),
                    None => Vec::new(),
                }
            }
            // Facts that need no decision: a build waits for the spawn, an
            // evacuation is done once the instance is rebuilt elsewhere.
            ComputeFact::ClaimSucceeded { .. } | ComputeFact::EvacuatedInstanceCleanedUp(_) => {
                Vec::new()
            }
        }
    }

    /// Emits an instance event: it gets the next aggregate version, is folded
    /// into the conductor's own state at once, and is keyed by the
    /// instance's project.
    pub(crate) fn instance_event(
        &mut self,
        cause: &Meta,
        step: &str,
        id: Uuid,
        project_id: &str,
        event: Event,
    ) -> Emit {
        debug_assert_eq!(event.topic(), Topic::Instance, "{}", event.type_name());
        let version = self.instances.get(&id).map_or(0, |i| i.version) + 1;
        let env = Envelope {
            meta: cause.caused(step, id.to_string(), version),
            event,
        };
        let prev = self.instances.remove(&id);
        let next = evolve(prev.clone(), &env);
        crate::quotas::account(&mut self.usage, project_id, prev.as_ref(), next.as_ref());
        if let Some(i) = next {
            if i.is_deleted() && !prev.as_ref().is_some_and(Instance::is_deleted) {
                self.leave_groups(id);
            }
            self.instances.insert(id, i);
        }
        self.dirty.instances.insert(id);
        Emit {
            dest: Dest::Instances,
            key: project_id.to_owned(),
            env,
        }
    }

    /// A verdict that turns an intent down: what went wrong, never an HTTP
    /// status (the API maps the kind to one).
    pub(crate) fn reject(cause: &Envelope, aggregate_id: String, rejection: Rejection) -> Emit {
        let Rejection { kind, message } = rejection;
        Emit {
            dest: Dest::Instances,
            key: cause.meta.actor.project_id.clone(),
            env: Envelope {
                meta: cause.meta.caused("rejected", aggregate_id, 0),
                event: Event::Instance(InstanceEvent::IntentRejected {
                    intent_type: cause.event.type_name().to_owned(),
                    kind,
                    message,
                }),
            },
        }
    }

    pub(crate) fn mark_flavor(&mut self, id: &str) {
        self.dirty.flavors.insert(id.to_owned());
    }

    pub(crate) fn mark_image(&mut self, id: Uuid) {
        self.dirty.images.insert(id);
    }

    pub(crate) fn mark_server_group(&mut self, id: Uuid) {
        self.dirty.server_groups.insert(id);
    }

    pub(crate) fn mark_awaiting(&mut self, id: Uuid) {
        self.dirty.awaiting.insert(id);
    }

    /// The next migration id.
    pub(crate) fn next_migration_id(&mut self) -> u64 {
        self.last_migration_id += 1;
        self.dirty.counters = true;
        self.last_migration_id
    }

    pub(crate) fn mark_flavor_access(&mut self, id: &str) {
        self.dirty.flavor_access.insert(id.to_owned());
    }

    pub(crate) fn mark_service(&mut self, host: &str) {
        self.dirty.services.insert(host.to_owned());
    }

    pub(crate) fn mark_keypair(&mut self, id: &str) {
        self.dirty.keypairs.insert(id.to_owned());
    }

    pub(crate) fn mark_aggregate(&mut self, id: u32) {
        self.dirty.aggregates.insert(id);
    }

    pub(crate) fn mark_quota(&mut self, project: &str) {
        self.dirty.quotas.insert(project.to_owned());
    }

    /// A deleted instance leaves the groups it joined: Nova reads only
    /// members not deleted, and a long-lived group would otherwise grow
    /// with every server that ever joined it.
    fn leave_groups(&mut self, id: Uuid) {
        let groups: Vec<Uuid> = self
            .server_groups
            .iter()
            .filter(|(_, g)| g.members.contains(&id))
            .map(|(g, _)| *g)
            .collect();
        for g in groups {
            if let Some(state) = self.server_groups.get_mut(&g) {
                state.members.remove(&id);
            }
            self.mark_server_group(g);
        }
    }

    /// Puts back an instance the shell read from its store (a deleted one,
    /// evicted earlier), so the next record is decided on it exactly as if
    /// it had never left memory: a redelivered create stays a duplicate, a
    /// late fact stays stale.
    pub fn restore(&mut self, instance: Instance) {
        if !self.instances.contains_key(&instance.id) {
            crate::quotas::account(&mut self.usage, &instance.project_id, None, Some(&instance));
            self.instances.insert(instance.id, instance);
        }
    }

    /// Drops from memory those of `ids` that are deleted, no saga awaits
    /// and no unpersisted change holds; the shell calls it once it has
    /// staged their rows. Returns how many left.
    pub fn evict_deleted(&mut self, ids: impl IntoIterator<Item = Uuid>) -> usize {
        let mut evicted = 0;
        for id in ids {
            let gone = self.instances.get(&id).is_some_and(Instance::is_deleted)
                && !self.awaiting.contains_key(&id)
                && !self.dirty.instances.contains(&id);
            if gone {
                self.instances.remove(&id);
                evicted += 1;
            }
        }
        evicted
    }

    /// Instances held in memory (the memory bound's tests count them).
    pub fn resident_instances(&self) -> usize {
        self.instances.len()
    }

    /// Recounts every project's usage from the instances (after a load).
    pub fn rebuild_usage(&mut self) {
        self.usage.clear();
        for i in self.instances.values() {
            crate::quotas::account(&mut self.usage, &i.project_id, None, Some(i));
        }
    }

    /// Rows changed since the last call, for the shell to persist.
    pub fn take_dirty(&mut self) -> Dirty {
        std::mem::take(&mut self.dirty)
    }
}

/// Builds a record for another topic, caused by `cause` at `step`.
pub(crate) fn emit(
    dest: Dest,
    key: String,
    cause: &Meta,
    step: &str,
    aggregate_id: String,
    event: Event,
) -> Emit {
    // Its readers would dead-letter a record of another topic's type.
    debug_assert_eq!(dest.topic(), event.topic(), "{}", event.type_name());
    Emit {
        dest,
        key,
        env: Envelope {
            meta: cause.caused(step, aggregate_id, 0),
            event,
        },
    }
}
