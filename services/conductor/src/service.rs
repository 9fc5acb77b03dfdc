//! The conductor's shell: its consumer, its store, its binary's entry.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use novalog_log::EventLog;
use novalog_runtime::consumer::{self, ConsumerSpec, Rejected};
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
type DeadlineBoard = Arc<Mutex<BTreeMap<Uuid, Awaiting>>>;

struct ConductorHandler {
    core: Conductor,
    topics: Topics,
    board: DeadlineBoard,
    /// Awaited steps changed in the batch being committed.
    board_changes: BTreeSet<Uuid>,
    /// Sagas in flight, for their durations in Prometheus.
    sagas: crate::saga_metrics::SagaClock,
}

impl ConductorHandler {
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
impl Handler for ConductorHandler {
    async fn handle(
        &mut self,
        input: &Input,
        out: &mut Outbox,
        _tx: &mut Transaction,
    ) -> Result<(), Rejected> {
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
    ) -> anyhow::Result<()> {
        let dirty = self.core.take_dirty();
        for id in dirty.instances {
            match self.core.instances.get(&id) {
                Some(i) => tx.put(INSTANCES, id.as_bytes(), i)?,
                None => tx.delete(INSTANCES, id.as_bytes()),
            }
        }
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

/// Loads the conductor's state from its store.
pub fn load(store: &impl Store, settings: Settings) -> anyhow::Result<Conductor> {
    let mut core = Conductor::new(settings);
    for (_, i) in store.scan::<Instance>(INSTANCES)? {
        core.instances.insert(i.id, i);
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
pub async fn run(cfg: &Config, log: Arc<dyn EventLog>, shutdown: Shutdown) -> anyhow::Result<()> {
    let dir = cfg.data_dir.join("conductor");
    std::fs::create_dir_all(&dir)?;
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
    let handler = ConductorHandler {
        core,
        topics,
        board,
        board_changes: BTreeSet::new(),
        sagas: Default::default(),
    };
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
