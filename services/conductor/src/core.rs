//! The conductor's state and dispatch. Pure: no I/O, no clock (the caller
//! passes `now_ms`), so every flow is tested as given/when/then.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use novalog_schemas::instance::{Instance, evolve};
use novalog_schemas::{Envelope, Event, Flavor, Image, Meta};
use uuid::Uuid;

/// The topic a record goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    Instances,
    Scheduler,
    Compute,
    Catalog,
    Hosts,
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
    /// Build attempts, the first included (`[scheduler] max_attempts`).
    pub max_attempts: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { max_attempts: 3 }
    }
}

#[derive(Debug, Default)]
pub struct Conductor {
    pub settings: Settings,
    pub instances: HashMap<Uuid, Instance>,
    pub flavors: BTreeMap<String, Flavor>,
    pub images: BTreeMap<Uuid, Image>,
    /// Server groups not deleted, with the instances that joined them.
    pub server_groups: BTreeMap<Uuid, crate::server_groups::GroupState>,
    /// Host aggregates by id.
    pub aggregates: BTreeMap<u32, novalog_schemas::events::HostAggregate>,
    /// Projects given each non-public flavor (Nova's flavor access).
    pub flavor_access: BTreeMap<String, BTreeSet<String>>,
    /// Keypairs by `user_id/name` ([`crate::keypairs::key`]).
    pub keypairs: BTreeMap<String, novalog_schemas::events::Keypair>,
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
    pub keypairs: BTreeSet<String>,
    pub flavor_access: BTreeSet<String>,
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
            Event::ServerCreateRequested(req) => crate::build::on_create(self, env, req, now_ms),
            Event::HostsSelected {
                instance_id, hosts, ..
            } => crate::build::on_hosts_selected(self, env, *instance_id, hosts),
            Event::NoValidHostFound {
                instance_id,
                reason,
                ..
            } => crate::build::on_no_valid_host(self, env, *instance_id, reason, now_ms),
            Event::InstanceSpawned {
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
            } => crate::build::on_build_failed(
                self,
                env,
                *instance_id,
                host,
                *attempt,
                reason,
                now_ms,
            ),
            Event::ServerDeleteRequested { instance_id, force } => {
                crate::delete::on_delete(self, env, *instance_id, *force, now_ms)
            }
            Event::InstanceDestroyed {
                instance_id, host, ..
            } => crate::delete::on_destroyed(self, env, *instance_id, host, now_ms),
            Event::FlavorCreateRequested(f) => crate::catalog::on_flavor_create(self, env, f),
            Event::ImageCreateRequested(i) => crate::catalog::on_image_create(self, env, i),
            Event::ImageUpdateRequested(i) => crate::catalog::on_image_update(self, env, i),
            Event::ImageDeleteRequested { image_id } => {
                crate::catalog::on_image_delete(self, env, *image_id)
            }
            Event::ServerGroupCreateRequested(g) => {
                crate::server_groups::on_create(self, env, g, now_ms)
            }
            Event::ServerGroupDeleteRequested { group_id } => {
                crate::server_groups::on_delete(self, env, *group_id)
            }
            Event::AggregateCreateRequested(_)
            | Event::AggregateUpdateRequested { .. }
            | Event::AggregateDeleteRequested { .. }
            | Event::AggregateHostAddRequested { .. }
            | Event::AggregateHostRemoveRequested { .. }
            | Event::AggregateMetadataSetRequested { .. } => {
                crate::aggregates::on_intent(self, env, now_ms)
            }
            Event::FlavorUpdateRequested(u) => crate::catalog::on_flavor_update(self, env, u),
            Event::FlavorDeleteRequested { flavor_id } => {
                crate::catalog::on_flavor_delete(self, env, flavor_id)
            }
            Event::FlavorAccessChangeRequested {
                flavor_id,
                project_id,
                add,
            } => crate::catalog::on_flavor_access(self, env, flavor_id, project_id, *add),
            Event::KeypairCreateRequested(k) => crate::keypairs::on_create(self, env, k, now_ms),
            Event::KeypairDeleteRequested { user_id, name } => {
                crate::keypairs::on_delete(self, env, user_id, name)
            }
            Event::ServiceUpdateRequested(s) => crate::services::on_update(env, s),
            Event::ServiceDeleteRequested { host } => crate::services::on_delete(self, env, host),
            // Facts the conductor needs no decision on, and records of other
            // services that share its input topics.
            _ => Vec::new(),
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
        let version = self.instances.get(&id).map_or(0, |i| i.version) + 1;
        let env = Envelope {
            meta: cause.caused(step, id.to_string(), version),
            event,
        };
        let next = evolve(self.instances.remove(&id), &env);
        if let Some(i) = next {
            self.instances.insert(id, i);
        }
        self.dirty.instances.insert(id);
        Emit {
            dest: Dest::Instances,
            key: project_id.to_owned(),
            env,
        }
    }

    /// A verdict that turns an intent down; `code` is the HTTP status the
    /// API answers with.
    pub(crate) fn reject(
        cause: &Envelope,
        aggregate_id: String,
        code: i32,
        message: String,
    ) -> Emit {
        Emit {
            dest: Dest::Instances,
            key: cause.meta.actor.project_id.clone(),
            env: Envelope {
                meta: cause.meta.caused("rejected", aggregate_id, 0),
                event: Event::IntentRejected {
                    intent_type: cause.event.type_name().to_owned(),
                    code,
                    message,
                },
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

    pub(crate) fn mark_flavor_access(&mut self, id: &str) {
        self.dirty.flavor_access.insert(id.to_owned());
    }

    pub(crate) fn mark_keypair(&mut self, id: &str) {
        self.dirty.keypairs.insert(id.to_owned());
    }

    pub(crate) fn mark_aggregate(&mut self, id: u32) {
        self.dirty.aggregates.insert(id);
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
    Emit {
        dest,
        key,
        env: Envelope {
            meta: cause.caused(step, aggregate_id, 0),
            event,
        },
    }
}
