//! The conductor's state: its tables, the settings its sagas run with, and
//! the one way an instance changes ([`Conductor::instance_event`]). No I/O
//! but through [`Conductor::load`] and [`Conductor::persist`], and no
//! clock: the shell passes `now_ms` in, so every flow is tested as
//! given/when/then. Which flow decides on a record is
//! [`crate::dispatch`]'s.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use novalog_schemas::instance::{Instance, evolve};
use novalog_schemas::{Envelope, Event, Flavor, Image, InstanceEvent, Meta, Rejection, Topic};
use novalog_store::{Store, Transaction};
use uuid::Uuid;

use crate::saga::Step;
use crate::table::Table;

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
    /// How long an upload may keep its image `saving`
    /// (`[conductor] image_upload_lease`).
    pub upload_lease_ms: i64,
    /// Seconds a shelved instance keeps its host before it is offloaded
    /// (`shelved_offload_time`): 0 at once, -1 never.
    pub shelved_offload_time_s: i64,
    /// How long a console token works (`[consoleauth] token_ttl`).
    pub console_token_ttl_ms: i64,
    /// Seconds a soft-deleted instance waits before it is deleted for
    /// real (`reclaim_instance_interval`); 0: deletes are not soft.
    pub reclaim_instance_interval_s: i64,
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
            upload_lease_ms: novalog_schemas::image::DEFAULT_UPLOAD_LEASE_MS,
            shelved_offload_time_s: 0,
            console_token_ttl_ms: 600_000,
            reclaim_instance_interval_s: 0,
        }
    }
}

impl Settings {
    /// The timeout of `step`, 0 for none.
    pub fn timeout_ms(&self, step: Step) -> i64 {
        if !self.step_timeouts_ms.is_empty()
            && let Some(t) = self.step_timeouts_ms.get(&step.to_string())
        {
            return *t;
        }
        match step {
            Step::Build => self.build_timeout_ms,
            Step::Resize(crate::resize::Step::AutoConfirm) => self.resize_confirm_window_ms,
            Step::ShelvedOffload => self.shelved_offload_time_s.max(0).saturating_mul(1000),
            Step::Reclaim => self.reclaim_instance_interval_s.max(0).saturating_mul(1000),
            Step::Schedule
            | Step::Resize(_)
            | Step::Rebuild
            | Step::Evacuate
            | Step::LiveMigrate(_)
            | Step::Action(_)
            | Step::Unshelve => self.step_timeout_ms,
        }
    }
}

/// The conductor's state: one [`Table`] per kind of row it keeps, each
/// persisted by itself ([`Conductor::persist`]), plus what is recounted
/// from them on load.
#[derive(Debug)]
pub struct Conductor {
    pub settings: Settings,
    /// Instances not deleted, and deleted ones while a record about them is
    /// being decided: the shell restores a deleted one from its store
    /// before such a record ([`Conductor::restore`]) and evicts it once it
    /// is persisted ([`Conductor::evict_deleted`]), so memory is bounded by
    /// the live servers, not by every server ever created.
    pub instances: Table<Uuid, Instance>,
    pub flavors: Table<String, Flavor>,
    /// Images not deleted, and deleted ones while a record about them is
    /// being decided: as with instances, the shell restores a deleted one
    /// from the store before such a record ([`Conductor::restore_image`])
    /// and evicts it once persisted ([`Conductor::evict_deleted_images`]).
    /// A deleted image stays in the store so its id is never reused.
    pub images: Table<Uuid, Image>,
    /// Server groups not deleted, with the instances that joined them.
    pub server_groups: Table<Uuid, crate::server_groups::GroupState>,
    /// Host aggregates by id.
    pub aggregates: Table<u32, novalog_schemas::events::HostAggregate>,
    /// What each instance in a saga waits for, with its deadline.
    pub awaiting: Table<Uuid, crate::timers::Awaiting>,
    /// Ids handed out so far, by kind (`migration`: Nova's integer
    /// migration ids).
    counters: Table<String, u64>,
    /// The log position of the record being decided ([`Conductor::at`]).
    position: Option<(i32, i64)>,
    /// Projects' own quota limits (the defaults apply to the rest).
    pub quota_overrides: Table<String, BTreeMap<String, i64>>,
    /// Quota classes' limits by class name (Nova's `quota_classes`);
    /// class `default` sits between the config defaults and a project's
    /// own limits.
    pub quota_classes: Table<String, BTreeMap<String, i64>>,
    /// What each project's instances use, as its quota counts it; kept as
    /// instance events are folded ([`Conductor::rebuild_usage`] on load).
    pub usage: HashMap<String, novalog_schemas::quota::Usage>,
    /// Room reserved for multiple creates, by reservation id.
    pub reservations: HashMap<String, crate::quotas::Reservation>,
    /// Projects given each non-public flavor (Nova's flavor access).
    pub flavor_access: Table<String, BTreeSet<String>>,
    /// Keypairs by `user_id/name` ([`crate::keypairs::key`]).
    pub keypairs: Table<String, novalog_schemas::events::Keypair>,
    /// What operators set on each host's `nova-compute` service, as
    /// decided here (hosts never changed are absent).
    pub services: Table<String, novalog_schemas::events::ServiceStatus>,
    /// Each live instance's VNC display, as its host last reported it.
    pub consoles: Table<Uuid, crate::consoles::Display>,
    /// The time of the record being decided ([`Conductor::handle`]'s
    /// `now_ms`): what the instance events it causes say they occurred at,
    /// so a replay given the same time folds the same instances.
    pub(crate) now_ms: i64,
}

/// The store tables, one per [`Table`] of the conductor.
pub(crate) mod tables {
    pub const INSTANCES: &str = "instances";
    pub const FLAVORS: &str = "flavors";
    pub const IMAGES: &str = "images";
    pub const SERVER_GROUPS: &str = "server_groups";
    pub const AGGREGATES: &str = "aggregates";
    pub const AWAITING: &str = "awaiting";
    pub const COUNTERS: &str = "counters";
    pub const QUOTAS: &str = "quotas";
    pub const QUOTA_CLASSES: &str = "quota_classes";
    pub const KEYPAIRS: &str = "keypairs";
    pub const FLAVOR_ACCESS: &str = "flavor_access";
    pub const SERVICES: &str = "services";
    pub const CONSOLES: &str = "consoles";
}

/// What a [`Conductor::persist`] staged that the shell acts on.
#[derive(Debug, Default)]
pub struct Persisted {
    /// Instances whose rows were written.
    pub instances: Vec<Uuid>,
    /// Images whose rows were written.
    pub images: Vec<Uuid>,
    /// Instances whose awaited step changed (or ended).
    pub awaiting: Vec<Uuid>,
}

const MIGRATION_IDS: &str = "migration";

impl Default for Conductor {
    fn default() -> Self {
        Conductor::new(Settings::default())
    }
}

/// Partitions an id leaves room for: 2^16, far above any topic's count.
const PARTITION_BITS: u32 = 16;

/// The migration id of the intent at `offset` of `partition`: distinct for
/// every (partition, offset) pair, growing with the offset, below 2^53 (a
/// JSON number's exact range) for offsets below 2^37 - 1.
pub fn migration_id_at(partition: i32, offset: i64) -> u64 {
    let partition = u64::from(partition.max(0) as u32) & ((1 << PARTITION_BITS) - 1);
    ((offset.max(0) as u64 + 1) << PARTITION_BITS) | partition
}

impl Conductor {
    pub fn new(settings: Settings) -> Self {
        use tables::*;
        Conductor {
            settings,
            now_ms: 0,
            instances: Table::new(INSTANCES),
            flavors: Table::new(FLAVORS),
            images: Table::new(IMAGES),
            server_groups: Table::new(SERVER_GROUPS),
            aggregates: Table::new(AGGREGATES),
            awaiting: Table::new(AWAITING),
            counters: Table::new(COUNTERS),
            position: None,
            quota_overrides: Table::new(QUOTAS),
            quota_classes: Table::new(QUOTA_CLASSES),
            usage: HashMap::new(),
            reservations: HashMap::new(),
            flavor_access: Table::new(FLAVOR_ACCESS),
            keypairs: Table::new(KEYPAIRS),
            services: Table::new(SERVICES),
            consoles: Table::new(CONSOLES),
        }
    }

    /// Loads the conductor's state from its store: every table, but of the
    /// instances only those not deleted, and the deleted ones a saga still
    /// awaits, and of the images those not deleted (the others are read
    /// back when a record concerns them).
    pub fn load(store: &impl Store, settings: Settings) -> novalog_store::Result<Self> {
        use tables::*;
        let mut instances = Table::load_where(store, INSTANCES, |i: &Instance| !i.is_deleted())?;
        let awaiting: Table<Uuid, crate::timers::Awaiting> = Table::load(store, AWAITING)?;
        for id in awaiting.keys() {
            if !instances.contains_key(id)
                && let Some(i) = instances.fetch(store, id)?
            {
                instances.restore(*id, i);
            }
        }
        let mut core = Conductor {
            settings,
            instances,
            flavors: Table::load(store, FLAVORS)?,
            images: Table::load_where(store, IMAGES, |i: &Image| {
                i.status != novalog_schemas::image::DELETED
            })?,
            server_groups: Table::load(store, SERVER_GROUPS)?,
            aggregates: Table::load(store, AGGREGATES)?,
            awaiting,
            counters: Table::load(store, COUNTERS)?,
            position: None,
            quota_overrides: Table::load(store, QUOTAS)?,
            quota_classes: Table::load(store, QUOTA_CLASSES)?,
            usage: HashMap::new(),
            reservations: HashMap::new(),
            flavor_access: Table::load(store, FLAVOR_ACCESS)?,
            keypairs: Table::load(store, KEYPAIRS)?,
            services: Table::load(store, SERVICES)?,
            consoles: Table::load(store, CONSOLES)?,
            now_ms: 0,
        };
        core.rebuild_usage();
        Ok(core)
    }

    /// Stages every row changed since the last call into `tx`, which also
    /// carries the consumed offsets.
    pub fn persist(&mut self, tx: &mut Transaction) -> novalog_store::Result<Persisted> {
        let instances = self.instances.persist(tx)?;
        self.flavors.persist(tx)?;
        self.flavor_access.persist(tx)?;
        let images = self.images.persist(tx)?;
        self.server_groups.persist(tx)?;
        self.quota_overrides.persist(tx)?;
        self.quota_classes.persist(tx)?;
        self.aggregates.persist(tx)?;
        let awaiting = self.awaiting.persist(tx)?;
        self.counters.persist(tx)?;
        self.keypairs.persist(tx)?;
        self.services.persist(tx)?;
        self.consoles.persist(tx)?;
        Ok(Persisted {
            instances,
            images,
            awaiting,
        })
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
        let mut meta = cause.caused(step, id.to_string(), version);
        meta.occurred_at_ms = self.now_ms;
        let env = Envelope { meta, event };
        let prev = self.instances.remove(&id);
        let next = evolve(prev.clone(), &env);
        crate::quotas::account(&mut self.usage, project_id, prev.as_ref(), next.as_ref());
        if let Some(i) = next {
            if i.is_deleted() && !prev.as_ref().is_some_and(Instance::is_deleted) {
                self.leave_groups(id);
                crate::consoles::forget(self, id);
            }
            self.instances.insert(id, i);
        }
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

    /// Where the record being decided sits in the log: its partition and
    /// offset. The shell sets it before [`Conductor::handle`]; ids the
    /// decision hands out are derived from it, so two conductors (each
    /// owning other partitions) never hand out the same one, and a replay
    /// hands out the same ones again.
    pub fn at(&mut self, partition: i32, offset: i64) {
        self.position = Some((partition, offset));
    }

    /// The next migration id: Nova's integer id, derived from the position
    /// of the intent that starts the migration ([`migration_id_at`]).
    /// Without a position (a decider driven directly, as in unit tests) it
    /// falls back to a counter in the conductor's state.
    pub(crate) fn next_migration_id(&mut self) -> u64 {
        let next = match self.position {
            Some((partition, offset)) => migration_id_at(partition, offset),
            None => self.last_migration_id() + 1,
        };
        self.counters.insert(MIGRATION_IDS.to_owned(), next);
        next
    }

    /// The last migration id handed out (Nova's integer ids).
    pub fn last_migration_id(&self) -> u64 {
        self.counters.get(MIGRATION_IDS).copied().unwrap_or(0)
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
        }
    }

    /// Puts back an instance the shell read from its store (a deleted one,
    /// evicted earlier), so the next record is decided on it exactly as if
    /// it had never left memory: a redelivered create stays a duplicate, a
    /// late fact stays stale.
    pub fn restore(&mut self, instance: Instance) {
        if !self.instances.contains_key(&instance.id) {
            crate::quotas::account(&mut self.usage, &instance.project_id, None, Some(&instance));
            self.instances.restore(instance.id, instance);
        }
    }

    /// Drops from memory those of `ids` that are deleted, no saga awaits
    /// and no unpersisted change holds; the shell calls it once it has
    /// staged their rows. Returns how many left.
    pub fn evict_deleted(&mut self, ids: impl IntoIterator<Item = Uuid>) -> usize {
        let mut evicted = 0;
        for id in ids {
            let awaited = self.awaiting.contains_key(&id);
            if self.instances.evict(&id, |i| i.is_deleted() && !awaited) {
                evicted += 1;
            }
        }
        evicted
    }

    /// Puts back an image the shell read from its store (a deleted one,
    /// evicted earlier), so a record is decided on it as if it had never
    /// left memory: a create with its id is still a conflict.
    pub fn restore_image(&mut self, image: Image) {
        if !self.images.contains_key(&image.id) {
            self.images.restore(image.id, image);
        }
    }

    /// Drops from memory those of `ids` that are deleted images with no
    /// unpersisted change; the shell calls it once it has staged their
    /// rows. Returns how many left.
    pub fn evict_deleted_images(&mut self, ids: impl IntoIterator<Item = Uuid>) -> usize {
        ids.into_iter()
            .filter(|id| {
                self.images
                    .evict(id, |i| i.status == novalog_schemas::image::DELETED)
            })
            .count()
    }

    /// Images held in memory (the memory bound's tests count them).
    pub fn resident_images(&self) -> usize {
        self.images.len()
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
