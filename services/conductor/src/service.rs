//! The conductor's shell: its consumer, its store, its binary's entry.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use novalog_log::EventLog;
use novalog_runtime::consumer::{self, ConsumerSpec, DeadRecord, Rejected, Wrap};
use novalog_runtime::{Config, Handler, Input, Outbox, Shutdown, Topics};
use novalog_schemas::instance::Instance;
use novalog_schemas::{Flavor, Image};
use novalog_store::{RocksStore, Store, StoreExt, Transaction};
use parking_lot::Mutex;
use uuid::Uuid;

use crate::core::{Conductor, Dest, Settings};
use crate::timers::{Awaiting, timeout_record};

const INSTANCES: &str = "instances";
const FLAVORS: &str = "flavors";
const IMAGES: &str = "images";
const SERVER_GROUPS: &str = "server_groups";
const AGGREGATES: &str = "aggregates";
const AWAITING: &str = "awaiting";
const COUNTERS: &str = "counters";
const QUOTAS: &str = "quotas";
const KEYPAIRS: &str = "keypairs";
const FLAVOR_ACCESS: &str = "flavor_access";
const SERVICES: &str = "services";
/// Consumer group and offset namespace.
pub const NAME: &str = "conductor";

/// The deadlines as of the last committed batch, read by the timer task.
pub(crate) type DeadlineBoard = Arc<Mutex<BTreeMap<Uuid, Awaiting>>>;

pub(crate) struct ConductorHandler<S: Store> {
    pub(crate) core: Conductor,
    topics: Topics,
    board: DeadlineBoard,
    /// Awaited steps changed in the batch being committed.
    board_changes: BTreeSet<Uuid>,
    /// Where deleted instances are read back from when a record concerns
    /// one (they are not kept in memory).
    store: Arc<S>,
    /// Instances restored from the store in the batch being applied: they
    /// leave memory again at its end.
    restored: BTreeSet<Uuid>,
    /// Sagas in flight, for their durations in Prometheus.
    sagas: crate::saga_metrics::SagaClock,
}

impl<S: Store> ConductorHandler<S> {
    pub(crate) fn new(
        core: Conductor,
        topics: Topics,
        board: DeadlineBoard,
        store: Arc<S>,
    ) -> Self {
        ConductorHandler {
            core,
            topics,
            board,
            board_changes: BTreeSet::new(),
            store,
            restored: BTreeSet::new(),
            sagas: Default::default(),
        }
    }

    /// Brings back from the store the deleted instance a record concerns
    /// (its aggregate), so the core decides on it as it always did.
    fn restore_subject(&mut self, input: &Input) -> Result<(), Rejected> {
        let Ok(id) = Uuid::parse_str(&input.env.meta.aggregate_id) else {
            return Ok(());
        };
        if self.core.instances.contains_key(&id) {
            return Ok(());
        }
        let stored = self
            .store
            .get::<Instance>(INSTANCES, id.as_bytes())
            .map_err(|e| Rejected(format!("reading instance {id}: {e}")))?;
        if let Some(i) = stored {
            self.core.restore(i);
            self.restored.insert(id);
        }
        Ok(())
    }

    fn topic(&self, dest: Dest) -> &str {
        match dest {
            Dest::Instances => &self.topics.instances,
            Dest::Scheduler => &self.topics.scheduler,
            Dest::Compute => &self.topics.compute,
            Dest::Catalog => &self.topics.catalog,
            Dest::Intents => &self.topics.intents,
            Dest::Hosts => &self.topics.hosts,
        }
    }
}

#[async_trait]
impl<S: Store> Handler for ConductorHandler<S> {
    async fn handle(
        &mut self,
        input: &Input,
        out: &mut Outbox,
        _tx: &mut Transaction,
    ) -> Result<(), Rejected> {
        self.restore_subject(input)?;
        for e in self.core.handle(&input.env, novalog_schemas::now_ms()) {
            if let Dest::Instances = e.dest {
                for ended in self.sagas.observe(&e.env) {
                    crate::saga_metrics::record(&ended);
                }
            }
            out.emit(self.topic(e.dest), e.key.into_bytes(), &e.env);
        }
        Ok(())
    }

    async fn finish_batch(
        &mut self,
        _out: &mut Outbox,
        tx: &mut Transaction,
    ) -> novalog_runtime::Result<()> {
        let dirty = self.core.take_dirty();
        for id in &dirty.instances {
            match self.core.instances.get(id) {
                Some(i) => tx.put(INSTANCES, id.as_bytes(), i)?,
                None => tx.delete(INSTANCES, id.as_bytes()),
            }
        }
        // Their rows are staged: deleted ones leave memory (a failed commit
        // stops the consumer, and a restart loads from the store).
        let touched = std::mem::take(&mut self.restored);
        self.core
            .evict_deleted(dirty.instances.iter().copied().chain(touched));
        for id in dirty.flavors {
            match self.core.flavors.get(&id) {
                Some(f) => tx.put(FLAVORS, id.as_bytes(), f)?,
                None => tx.delete(FLAVORS, id.as_bytes()),
            }
        }
        for id in dirty.flavor_access {
            match self.core.flavor_access.get(&id) {
                Some(p) => tx.put(FLAVOR_ACCESS, id.as_bytes(), p)?,
                None => tx.delete(FLAVOR_ACCESS, id.as_bytes()),
            }
        }
        for id in dirty.images {
            if let Some(i) = self.core.images.get(&id) {
                tx.put(IMAGES, id.as_bytes(), i)?;
            }
        }
        for id in dirty.server_groups {
            match self.core.server_groups.get(&id) {
                Some(g) => tx.put(SERVER_GROUPS, id.as_bytes(), g)?,
                None => tx.delete(SERVER_GROUPS, id.as_bytes()),
            }
        }
        for project in dirty.quotas {
            match self.core.quota_overrides.get(&project) {
                Some(q) => tx.put(QUOTAS, project.as_bytes(), q)?,
                None => tx.delete(QUOTAS, project.as_bytes()),
            }
        }
        for id in dirty.aggregates {
            match self.core.aggregates.get(&id) {
                Some(a) => tx.put(AGGREGATES, &id.to_be_bytes(), a)?,
                None => tx.delete(AGGREGATES, &id.to_be_bytes()),
            }
        }
        for id in dirty.awaiting {
            match self.core.awaiting.get(&id) {
                Some(a) => tx.put(AWAITING, id.as_bytes(), a)?,
                None => tx.delete(AWAITING, id.as_bytes()),
            }
            self.board_changes.insert(id);
        }
        if dirty.counters {
            tx.put(COUNTERS, b"migration", &self.core.last_migration_id)?;
        }
        for id in dirty.keypairs {
            match self.core.keypairs.get(&id) {
                Some(k) => tx.put(KEYPAIRS, id.as_bytes(), k)?,
                None => tx.delete(KEYPAIRS, id.as_bytes()),
            }
        }
        for host in dirty.services {
            match self.core.services.get(&host) {
                Some(s) => tx.put(SERVICES, host.as_bytes(), s)?,
                None => tx.delete(SERVICES, host.as_bytes()),
            }
        }
        Ok(())
    }

    async fn recover(&mut self) -> novalog_runtime::Result<()> {
        // The board holds the committed deadlines; so will `core`.
        self.core = load(&*self.store, self.core.settings.clone())?;
        self.board_changes.clear();
        self.restored.clear();
        Ok(())
    }

    /// An intent the conductor cannot decode or apply still gets its
    /// verdict, so the request waiting for it answers at once.
    fn dead_lettered(&mut self, dead: &DeadRecord<'_>, out: &mut Outbox) {
        if dead.topic != self.topics.intents {
            return;
        }
        let Some((meta, type_name)) = &dead.meta else {
            return;
        };
        if let Some(e) = crate::failed_intents::verdict(meta, type_name, dead.failure) {
            out.emit(self.topic(e.dest), e.key.into_bytes(), &e.env);
        }
    }

    fn committed(&mut self) {
        let mut board = self.board.lock();
        for id in std::mem::take(&mut self.board_changes) {
            match self.core.awaiting.get(&id) {
                Some(a) => board.insert(id, a.clone()),
                None => board.remove(&id),
            };
        }
    }
}

/// Appends a timeout record for every deadline that passed, once per
/// deadline (the record's id is deterministic, so one appended again after
/// a restart is a duplicate the conductor ignores).
async fn timers(
    log: Arc<dyn EventLog>,
    topics: Topics,
    board: DeadlineBoard,
    tick: Duration,
    mut shutdown: Shutdown,
) {
    let mut fired: BTreeSet<Uuid> = BTreeSet::new();
    let mut every = tokio::time::interval(tick);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = every.tick() => {}
        }
        let now = novalog_schemas::now_ms();
        let due: Vec<_> = {
            let board = board.lock();
            fired.retain(|e| {
                board.iter().any(|(id, a)| {
                    a.deadline_ms.is_some_and(|at| {
                        Uuid::new_v5(id, format!("timeout/{}/{at}", a.step).as_bytes()) == *e
                    })
                })
            });
            board
                .iter()
                .filter_map(|(id, a)| {
                    let at = a.deadline_ms.filter(|at| *at <= now)?;
                    let e = timeout_record(*id, a, at);
                    (!fired.contains(&e.env.meta.event_id)).then_some(e)
                })
                .collect()
        };
        if due.is_empty() {
            continue;
        }
        let records: Vec<novalog_log::Record> = due
            .iter()
            .map(|e| {
                novalog_log::Record::new(
                    &topics.intents,
                    e.key.clone().into_bytes(),
                    novalog_schemas::encode(&e.env),
                )
            })
            .collect();
        match log.append(records).await {
            Ok(_) => {
                for e in due {
                    tracing::info!(instance = %e.env.meta.aggregate_id,
                        step = ?e.env.event, "saga step timed out");
                    fired.insert(e.env.meta.event_id);
                }
            }
            Err(e) => tracing::warn!(error = %e, "timeout append failed"),
        }
    }
}

/// Loads the conductor's state from its store: instances not deleted
/// (deleted ones are read back when a record concerns them).
pub fn load(store: &impl Store, settings: Settings) -> novalog_store::Result<Conductor> {
    let mut core = Conductor::new(settings);
    let mut failed = None;
    store.walk_raw(
        INSTANCES,
        None,
        false,
        &mut |_, v| match novalog_store::decode::<Instance>(INSTANCES, v) {
            Ok(i) => {
                if !i.is_deleted() {
                    core.instances.insert(i.id, i);
                }
                true
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        },
    )?;
    if let Some(e) = failed {
        return Err(e);
    }
    for (_, f) in store.scan::<Flavor>(FLAVORS)? {
        core.flavors.insert(f.id.clone(), f);
    }
    for (_, i) in store.scan::<Image>(IMAGES)? {
        core.images.insert(i.id, i);
    }
    for (_, g) in store.scan::<crate::server_groups::GroupState>(SERVER_GROUPS)? {
        core.server_groups.insert(g.group.id, g);
    }
    for (_, a) in store.scan::<novalog_schemas::events::HostAggregate>(AGGREGATES)? {
        core.aggregates.insert(a.id, a);
    }
    for (k, a) in store.scan::<Awaiting>(AWAITING)? {
        if let Ok(id) = Uuid::from_slice(&k) {
            core.awaiting.insert(id, a);
        }
    }
    // A saga that still awaits a deleted instance decides on it.
    let awaited: Vec<Uuid> = core.awaiting.keys().copied().collect();
    for id in awaited {
        if !core.instances.contains_key(&id)
            && let Some(i) = store.get::<Instance>(INSTANCES, id.as_bytes())?
        {
            core.instances.insert(id, i);
        }
    }
    core.last_migration_id = store.get::<u64>(COUNTERS, b"migration")?.unwrap_or(0);
    for (key, q) in store.scan::<std::collections::BTreeMap<String, i64>>(QUOTAS)? {
        core.quota_overrides
            .insert(String::from_utf8_lossy(&key).into_owned(), q);
    }
    core.rebuild_usage();
    for (id, p) in store.scan::<std::collections::BTreeSet<String>>(FLAVOR_ACCESS)? {
        core.flavor_access
            .insert(String::from_utf8_lossy(&id).into_owned(), p);
    }
    for (id, k) in store.scan::<novalog_schemas::events::Keypair>(KEYPAIRS)? {
        core.keypairs
            .insert(String::from_utf8_lossy(&id).into_owned(), k);
    }
    for (_, s) in store.scan::<novalog_schemas::events::ServiceStatus>(SERVICES)? {
        core.services.insert(s.host.clone(), s);
    }
    Ok(core)
}

/// Runs the conductor until `shutdown`.
pub async fn run(
    cfg: &Config,
    log: Arc<dyn EventLog>,
    shutdown: Shutdown,
) -> novalog_runtime::Result<()> {
    run_wrapped(cfg, log, shutdown, consumer::unwrapped()).await
}

/// Runs the conductor with its handler passed through `wrap` (tests wrap
/// it to inject failures).
pub async fn run_wrapped(
    cfg: &Config,
    log: Arc<dyn EventLog>,
    shutdown: Shutdown,
    wrap: Wrap,
) -> novalog_runtime::Result<()> {
    let dir = cfg.data_dir.join("conductor");
    std::fs::create_dir_all(&dir)
        .map_err(|e| novalog_runtime::Error::io(format!("creating {}", dir.display()), e))?;
    let store = Arc::new(RocksStore::open(&dir, cfg.log.sync)?);
    let core = load(&*store, settings(cfg))?;
    tracing::info!(instances = core.instances.len(), "conductor state loaded");
    let topics = cfg.topics();
    let spec = ConsumerSpec {
        name: NAME.to_owned(),
        group: topics.group(NAME),
        topics: vec![
            topics.intents.clone(),
            topics.scheduler.clone(),
            topics.compute_events.clone(),
        ],
        dead_letter_topic: topics.dead_letter.clone(),
        max_batch: cfg.log.max_batch,
    };
    let board: DeadlineBoard = Arc::new(Mutex::new(core.awaiting.clone()));
    let timer = tokio::spawn(timers(
        log.clone(),
        topics.clone(),
        board.clone(),
        Duration::from_millis(cfg.conductor.timer_tick_ms.max(10)),
        shutdown.clone(),
    ));
    let handler = wrap(Box::new(ConductorHandler::new(
        core,
        topics,
        board,
        store.clone(),
    )));
    let result = consumer::run(log, store, spec, handler, shutdown).await;
    timer.abort();
    result
}

/// The conductor's settings from the configuration.
pub fn settings(cfg: &Config) -> Settings {
    let s = |secs: u64| (secs as i64).saturating_mul(1000);
    Settings {
        max_attempts: cfg.scheduler.max_attempts,
        build_timeout_ms: s(cfg.instance_build_timeout),
        step_timeout_ms: s(cfg.conductor.step_timeout),
        step_timeouts_ms: cfg
            .conductor
            .step_timeouts
            .iter()
            .map(|(k, v)| (k.clone(), s(*v)))
            .collect(),
        resize_confirm_window_ms: s(cfg.resize_confirm_window),
        allow_resize_to_same_host: cfg.allow_resize_to_same_host,
        quota: cfg.quota.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use novalog_schemas::events::ServerCreateRequested;
    use novalog_schemas::{
        Actor, ComputeFact, Envelope, Event, InstanceEvent, Intent, Meta, RejectionKind,
        SchedulerEvent,
    };
    use novalog_store::MemStore;

    use super::*;
    use crate::tests::{actor, flavor, given, image};

    fn on(aggregate: Uuid, actor: Actor, event: Event) -> Input {
        Input {
            topic: "t.intents".into(),
            partition: 0,
            offset: 0,
            env: Envelope {
                meta: Meta::origin(
                    Uuid::new_v4(),
                    "req-test".into(),
                    actor,
                    aggregate.to_string(),
                ),
                event,
            },
        }
    }

    fn create_intent(id: Uuid) -> Input {
        on(
            id,
            actor("demo"),
            Event::Intent(Intent::ServerCreateRequested(Box::new(
                ServerCreateRequested {
                    instance_id: id,
                    name: "vm".into(),
                    flavor: flavor(),
                    image: image(),
                    metadata: BTreeMap::new(),
                    availability_zone: None,
                    key_name: None,
                    user_data: None,
                    description: None,
                    tags: vec![],
                    reservation_id: "r-1".into(),
                    launch_index: 0,
                    scheduler_hints: BTreeMap::new(),
                    min_count: 1,
                    max_count: 1,
                },
            ))),
        )
    }

    fn delete_intent(id: Uuid) -> Input {
        on(
            id,
            actor("demo"),
            Event::Intent(Intent::ServerDeleteRequested {
                instance_id: id,
                force: false,
            }),
        )
    }

    /// One batch through the shell as the consumer runs it; what it emitted.
    async fn batch(
        h: &mut ConductorHandler<MemStore>,
        store: &MemStore,
        inputs: Vec<Input>,
    ) -> Vec<Event> {
        let mut out = Outbox::default();
        let mut tx = Transaction::new();
        for input in &inputs {
            h.handle(input, &mut out, &mut tx).await.unwrap();
        }
        h.finish_batch(&mut out, &mut tx).await.unwrap();
        store.commit(tx).unwrap();
        h.committed();
        out.into_records()
            .iter()
            .map(|r| novalog_schemas::decode(&r.value).unwrap().event)
            .collect()
    }

    /// Builds `id` on h1 and returns once it is ACTIVE.
    async fn boot(h: &mut ConductorHandler<MemStore>, store: &MemStore, id: Uuid) {
        batch(h, store, vec![create_intent(id)]).await;
        let scheduler = Actor::service("scheduler");
        let compute = Actor::service("compute");
        let facts = vec![
            on(
                id,
                scheduler,
                Event::Scheduler(SchedulerEvent::HostsSelected {
                    request_id: Uuid::new_v5(&id, b"select-hosts"),
                    instance_id: id,
                    hosts: vec!["h1".into()],
                }),
            ),
            on(
                id,
                compute,
                Event::ComputeFact(ComputeFact::InstanceSpawned {
                    instance_id: id,
                    host: "h1".into(),
                    attempt: 1,
                    power_state: 1,
                }),
            ),
        ];
        batch(h, store, facts).await;
        assert_eq!(h.core.instances[&id].status(), "ACTIVE");
    }

    async fn destroy(h: &mut ConductorHandler<MemStore>, store: &MemStore, id: Uuid) {
        batch(h, store, vec![delete_intent(id)]).await;
        let destroyed = on(
            id,
            Actor::service("compute"),
            Event::ComputeFact(ComputeFact::InstanceDestroyed {
                instance_id: id,
                host: "h1".into(),
                usage: Default::default(),
            }),
        );
        let out = batch(h, store, vec![destroyed]).await;
        assert!(
            out.iter()
                .any(|e| matches!(e, Event::Instance(InstanceEvent::InstanceDeleted { .. }))),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn deleted_servers_leave_the_conductors_memory_and_stay_in_its_store() {
        let store = MemStore::new();
        let board: DeadlineBoard = Default::default();
        let mut h =
            ConductorHandler::new(given(), Topics::new("t."), board, Arc::new(store.clone()));
        let live = [Uuid::new_v4(), Uuid::new_v4()];
        for id in live {
            boot(&mut h, &store, id).await;
        }
        let mut gone = Vec::new();
        for _ in 0..25 {
            let id = Uuid::new_v4();
            boot(&mut h, &store, id).await;
            destroy(&mut h, &store, id).await;
            gone.push(id);
        }
        assert_eq!(h.core.resident_instances(), live.len());
        assert_eq!(h.core.usage["demo"].instances, live.len() as i64);
        let stored: Vec<(Vec<u8>, Instance)> = store.scan(INSTANCES).unwrap();
        assert_eq!(stored.len(), live.len() + gone.len());
        assert!(
            gone.iter()
                .all(|id| stored.iter().any(|(_, i)| i.id == *id && i.is_deleted()))
        );

        // Decided as before, from the store: a redelivered create of a
        // deleted server is a duplicate, a second delete is not found, a late
        // fact is stale; none brings it back into memory.
        let old = gone[3];
        assert!(
            batch(&mut h, &store, vec![create_intent(old)])
                .await
                .is_empty()
        );
        let out = batch(&mut h, &store, vec![delete_intent(old)]).await;
        assert!(
            matches!(
                &out[..],
                [Event::Instance(InstanceEvent::IntentRejected {
                    kind: RejectionKind::NotFound,
                    ..
                })]
            ),
            "{out:?}"
        );
        let late = on(
            old,
            Actor::service("compute"),
            Event::ComputeFact(ComputeFact::InstanceSpawned {
                instance_id: old,
                host: "h1".into(),
                attempt: 1,
                power_state: 1,
            }),
        );
        assert!(batch(&mut h, &store, vec![late]).await.is_empty());
        assert_eq!(h.core.resident_instances(), live.len());

        // A restart loads the live ones only.
        let core = load(&store, Settings::default()).unwrap();
        assert_eq!(core.resident_instances(), live.len());
        assert_eq!(core.usage["demo"].instances, live.len() as i64);
    }
}
