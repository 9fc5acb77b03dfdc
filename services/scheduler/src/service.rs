//! The scheduler's shell: consumes `scheduler` (requests), `hosts` and
//! `compute-events` (usage) and `catalog` (host aggregates, persisted
//! beside the hosts), answers on `scheduler`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use novalog_log::EventLog;
use novalog_runtime::consumer::{self, ConsumerSpec, Rejected, Wrap};
use novalog_runtime::{Config, Handler, Input, Outbox, Shutdown, Topics};
use novalog_schemas::events::HostAggregate;
use novalog_schemas::{CatalogEvent, Envelope, Event, SchedulerEvent};
use novalog_store::{RocksStore, Store, StoreExt, Transaction};

use crate::filters::{self, Context};
use crate::host_state::{Aggregate, HostState};
use crate::scheduler::Scheduler;
use crate::weighers;

// `_v2`: HostState gained `service_deleted`; stores of older builds keep
// their rows in `hosts`, which this build does not read (agents register
// again on start).
const HOSTS: &str = "hosts_v2";
const AGGREGATES: &str = "aggregates";
pub const NAME: &str = "scheduler";

/// What both of a scheduler's consumers share: the host states they fold
/// and decide on.
struct Shared {
    core: Scheduler,
    dirty: BTreeSet<String>,
    /// Host aggregates by id, as the `catalog` topic has them.
    aggregates: BTreeMap<u32, HostAggregate>,
    /// Aggregates changed in this batch (`None`: deleted).
    aggregates_dirty: BTreeMap<u32, Option<HostAggregate>>,
}

impl Shared {
    /// Folds an aggregate fact; true when it was one.
    fn observe_aggregate(&mut self, event: &Event) -> bool {
        let (id, next) = match event {
            Event::Catalog(CatalogEvent::AggregateCreated(a))
            | Event::Catalog(CatalogEvent::AggregateUpdated(a))
            | Event::Catalog(CatalogEvent::AggregateMetadataSet(a))
            | Event::Catalog(CatalogEvent::AggregateHostAdded { aggregate: a, .. })
            | Event::Catalog(CatalogEvent::AggregateHostRemoved { aggregate: a, .. }) => {
                (a.id, Some((**a).clone()))
            }
            Event::Catalog(CatalogEvent::AggregateDeleted { aggregate_id }) => {
                (*aggregate_id, None)
            }
            Event::Catalog(
                CatalogEvent::FlavorCreated(_)
                | CatalogEvent::ImageCreated(_)
                | CatalogEvent::ImageUpdated(_)
                | CatalogEvent::ImageDeleted { .. }
                | CatalogEvent::ServerGroupCreated(_)
                | CatalogEvent::ServerGroupDeleted { .. }
                | CatalogEvent::QuotaSetUpdated { .. }
                | CatalogEvent::QuotaSetDeleted { .. }
                | CatalogEvent::QuotaClassSetUpdated { .. }
                | CatalogEvent::TokenRevoked { .. }
                | CatalogEvent::KeypairCreated(_)
                | CatalogEvent::KeypairDeleted { .. }
                | CatalogEvent::FlavorUpdated(_)
                | CatalogEvent::FlavorDeleted { .. }
                | CatalogEvent::FlavorAccessAdded { .. }
                | CatalogEvent::FlavorAccessRemoved { .. }
                | CatalogEvent::DomainCreated(_)
                | CatalogEvent::DomainUpdated(_)
                | CatalogEvent::DomainDeleted { .. }
                | CatalogEvent::ProjectCreated(_)
                | CatalogEvent::ProjectUpdated(_)
                | CatalogEvent::ProjectDeleted { .. }
                | CatalogEvent::UserCreated(_)
                | CatalogEvent::UserUpdated(_)
                | CatalogEvent::UserDeleted { .. }
                | CatalogEvent::GroupCreated(_)
                | CatalogEvent::GroupUpdated(_)
                | CatalogEvent::GroupDeleted { .. }
                | CatalogEvent::RoleCreated(_)
                | CatalogEvent::RoleUpdated(_)
                | CatalogEvent::RoleDeleted { .. }
                | CatalogEvent::RoleGranted(_)
                | CatalogEvent::RoleRevoked(_)
                | CatalogEvent::GroupMemberAdded { .. }
                | CatalogEvent::GroupMemberRemoved { .. }
                | CatalogEvent::ApplicationCredentialCreated(_)
                | CatalogEvent::ApplicationCredentialDeleted { .. },
            ) => return false,
            // Hosts and compute facts are folded by the scheduler core.
            Event::Host(_)
            | Event::ComputeFact(_)
            | Event::Intent(_)
            | Event::Instance(_)
            | Event::Scheduler(_)
            | Event::Compute(_)
            | Event::DeadLetter(_)
            | Event::Billing(_) => return false,
        };
        match &next {
            Some(a) => self.aggregates.insert(id, a.clone()),
            None => self.aggregates.remove(&id),
        };
        self.aggregates_dirty.insert(id, next);
        true
    }

    /// Stages the changed host states and aggregates in `tx`.
    fn persist(&mut self, tx: &mut Transaction) -> novalog_store::Result<()> {
        if !self.aggregates_dirty.is_empty() {
            for (id, a) in std::mem::take(&mut self.aggregates_dirty) {
                match a {
                    Some(a) => tx.put(AGGREGATES, &id.to_be_bytes(), &a)?,
                    None => tx.delete(AGGREGATES, &id.to_be_bytes()),
                }
            }
            self.core
                .set_aggregates(scheduler_aggregates(&self.aggregates));
        }
        for host in std::mem::take(&mut self.dirty) {
            if let Some(h) = self.core.host(&host) {
                tx.put(HOSTS, host.as_bytes(), &*h.as_stored())?;
            }
        }
        Ok(())
    }
}

/// The scheduler's form of the aggregates.
fn scheduler_aggregates(all: &BTreeMap<u32, HostAggregate>) -> Vec<Aggregate> {
    all.values()
        .map(|a| Aggregate {
            name: a.name.clone(),
            metadata: a.metadata.clone(),
            hosts: a.hosts.iter().cloned().collect(),
        })
        .collect()
}

type SharedRef = Arc<std::sync::Mutex<Shared>>;

/// Where the shared state is loaded from, on start and after a failed
/// record.
#[derive(Clone)]
struct Source {
    cfg: Arc<Config>,
    store: Arc<RocksStore>,
}

impl Source {
    fn load(&self) -> novalog_runtime::Result<Shared> {
        let mut core = build(&self.cfg, &*self.store)?;
        let aggregates: BTreeMap<u32, HostAggregate> = self
            .store
            .scan::<HostAggregate>(AGGREGATES)?
            .into_iter()
            .map(|(_, a)| (a.id, a))
            .collect();
        core.set_aggregates(scheduler_aggregates(&aggregates));
        Ok(Shared {
            core,
            dirty: BTreeSet::new(),
            aggregates,
            aggregates_dirty: BTreeMap::new(),
        })
    }

    /// Replaces the shared state with the committed one. Both consumers
    /// share it and run on one task; the other one's batch can be between
    /// its `finish_batch` and its commit only while it appends, and what it
    /// staged then (hosts' pending claims) is lost from memory until the
    /// hosts' next usage report, never from the store.
    fn reload(&self, shared: &SharedRef) -> novalog_runtime::Result<()> {
        let fresh = self.load()?;
        *lock(shared) = fresh;
        Ok(())
    }
}

fn lock(shared: &SharedRef) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Folds the facts about hosts (`hosts`, `compute-events`, `catalog`).
///
/// Every scheduler instance must see every host, so this consumer is in a
/// group of its own (one per instance): replicas in the shared group would
/// split the host partitions between them, and each would know only part
/// of the cloud.
struct FactsHandler {
    shared: SharedRef,
    source: Source,
    /// Partitions not yet read up to where they ended when the scheduler
    /// started; `caught_up` is sent when none is left.
    behind: BTreeMap<(String, i32), i64>,
    caught_up: Option<tokio::sync::watch::Sender<bool>>,
}

impl FactsHandler {
    fn progress(&mut self, topic: &str, partition: i32, offset: i64) {
        let key = (topic.to_owned(), partition);
        if self.behind.get(&key).is_some_and(|end| offset + 1 >= *end) {
            self.behind.remove(&key);
        }
        self.signal_if_caught_up();
    }

    fn signal_if_caught_up(&mut self) {
        if self.behind.is_empty()
            && let Some(tx) = self.caught_up.take()
        {
            let _ = tx.send(true);
        }
    }
}

#[async_trait]
impl Handler for FactsHandler {
    async fn handle(
        &mut self,
        input: &Input,
        _out: &mut Outbox,
        _tx: &mut Transaction,
    ) -> Result<(), Rejected> {
        let env = &input.env;
        {
            let mut s = lock(&self.shared);
            if !s.observe_aggregate(&env.event)
                && let Some(host) = s.core.observe(&env.event, env.meta.occurred_at_ms)
            {
                s.dirty.insert(host);
            }
        }
        self.progress(&input.topic, input.partition, input.offset);
        Ok(())
    }

    async fn finish_batch(
        &mut self,
        _out: &mut Outbox,
        tx: &mut Transaction,
    ) -> novalog_runtime::Result<()> {
        Ok(lock(&self.shared).persist(tx)?)
    }

    async fn recover(&mut self) -> novalog_runtime::Result<()> {
        self.source.reload(&self.shared)
    }
}

/// Answers the requests of the `scheduler` topic. Replicas share this
/// consumer's group and split the requests between them; the compute
/// agent's claim settles any race between their decisions.
struct RequestsHandler {
    shared: SharedRef,
    source: Source,
    topics: Topics,
    requests: Vec<Envelope>,
    decisions: u64,
}

#[async_trait]
impl Handler for RequestsHandler {
    async fn handle(
        &mut self,
        input: &Input,
        _out: &mut Outbox,
        _tx: &mut Transaction,
    ) -> Result<(), Rejected> {
        match &input.env.event {
            Event::Scheduler(SchedulerEvent::SelectHostsRequested(_)) => {
                self.requests.push(input.env.clone())
            }
            // Its own answers, on the topic it shares with the requests.
            Event::Scheduler(
                SchedulerEvent::HostsSelected { .. } | SchedulerEvent::NoValidHostFound { .. },
            ) => {}
            // Not on `scheduler`: never handed to it.
            Event::Intent(_)
            | Event::Instance(_)
            | Event::Compute(_)
            | Event::ComputeFact(_)
            | Event::Host(_)
            | Event::Catalog(_)
            | Event::DeadLetter(_)
            | Event::Billing(_) => {}
        }
        Ok(())
    }

    async fn finish_batch(
        &mut self,
        out: &mut Outbox,
        tx: &mut Transaction,
    ) -> novalog_runtime::Result<()> {
        let mut s = lock(&self.shared);
        for env in std::mem::take(&mut self.requests) {
            let Event::Scheduler(SchedulerEvent::SelectHostsRequested(spec)) = &env.event else {
                continue;
            };
            let started = std::time::Instant::now();
            let selected = s.core.select_hosts(spec, novalog_schemas::now_ms());
            metrics::histogram!("novalog_scheduler_decision_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            let outcome = if selected.is_ok() {
                "selected"
            } else {
                "no_valid_host"
            };
            metrics::counter!("novalog_scheduler_decisions_total", "outcome" => outcome)
                .increment(1);
            let event = match selected {
                Ok(hosts) => Event::Scheduler(SchedulerEvent::HostsSelected {
                    request_id: spec.request_id,
                    instance_id: spec.instance_id,
                    hosts,
                }),
                Err(reason) => Event::Scheduler(SchedulerEvent::NoValidHostFound {
                    request_id: spec.request_id,
                    instance_id: spec.instance_id,
                    reason,
                }),
            };
            self.decisions += 1;
            if self.decisions == 1 || self.decisions.is_multiple_of(DECISIONS_LOG_EVERY) {
                tracing::info!(decisions = self.decisions, "scheduler decisions");
            }
            let answer = Envelope {
                meta: env.meta.caused("select", spec.instance_id.to_string(), 0),
                event,
            };
            out.emit(
                &self.topics.scheduler,
                spec.request_id.to_string().into_bytes(),
                &answer,
            );
        }
        Ok(s.persist(tx)?)
    }

    async fn recover(&mut self) -> novalog_runtime::Result<()> {
        self.requests.clear();
        self.source.reload(&self.shared)
    }
}

/// What a replay of the scheduler reads: the topics its facts handler
/// folds, and those whose offsets it only carries (`scheduler`: its
/// requests and its own answers, which the facts handler leaves alone, so
/// a replay does not read them at all; their offsets, which the requests
/// consumer commits live, are set to where the replay ends).
pub fn replay_topics(t: &Topics) -> (Vec<String>, Vec<String>) {
    (
        vec![t.hosts.clone(), t.compute_events.clone(), t.catalog.clone()],
        vec![t.scheduler.clone()],
    )
}

/// The scheduler's handler for a replay into `store` (fresh): folds the
/// host facts (`hosts`, `compute-events`, `catalog`) with the facts
/// consumer's own handler, and leaves `scheduler` unread, deciding nothing
/// ([`replay_topics`]). The
/// decisions are on the log already (deciding again would be the side
/// effect a replay turns off), and the stored rows hold none of them: a
/// host's row is what its facts say ([`HostState::as_stored`]), and the
/// facts that put an instance on a host add it themselves. So the wall
/// clock a decision reads, its random pick among the best hosts and the
/// decisions still unanswered stay out of the store, and the rows are a
/// function of the log. The facts fold the same in any interleaving of
/// their topics (usage by generation, heartbeats by the latest time, the
/// rest from the host's own partition), so merging them by append time
/// is enough.
pub fn replay_handler(
    cfg: &Config,
    store: Arc<RocksStore>,
) -> novalog_runtime::Result<impl Handler> {
    let source = Source {
        cfg: Arc::new(cfg.clone()),
        store,
    };
    let shared: SharedRef = Arc::new(std::sync::Mutex::new(source.load()?));
    Ok(FactsHandler {
        shared,
        source,
        behind: BTreeMap::new(),
        caught_up: None,
    })
}

/// How long requests wait for a starting instance to read the host facts.
const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// An instance logs its count of decisions (info) at the first and then
/// every this many.
const DECISIONS_LOG_EVERY: u64 = 10;

/// This instance's own consumer group for the facts, stable across
/// restarts (kept in its store).
fn facts_group(topics: &Topics, store: &RocksStore) -> novalog_store::Result<String> {
    let id = novalog_runtime::replica_id(store)?;
    Ok(topics.group(&format!("{NAME}-facts-{id}")))
}

/// Builds a scheduler from configuration, with the host states in `store`.
pub fn build(cfg: &Config, store: &impl Store) -> novalog_runtime::Result<Scheduler> {
    let fs = &cfg.filter_scheduler;
    let mut core = Scheduler::new(
        filters::by_names(&fs.enabled_filters, fs).map_err(novalog_runtime::Error::Service)?,
        weighers::by_names(&fs.weight_classes, fs).map_err(novalog_runtime::Error::Service)?,
        fs.host_subset_size,
        Context {
            now_ms: 0,
            service_down_time_ms: cfg.service_down_time as i64 * 1000,
            cpu_allocation_ratio: cfg.cpu_allocation_ratio,
            ram_allocation_ratio: cfg.ram_allocation_ratio,
            disk_allocation_ratio: cfg.disk_allocation_ratio,
        },
    )
    .with_shuffle_best_same_weighed_hosts(fs.shuffle_best_same_weighed_hosts);
    for (_, h) in store.scan::<HostState>(HOSTS)? {
        core.insert_host(h);
    }
    Ok(core)
}

/// Runs the scheduler until `shutdown`.
pub async fn run(
    cfg: &Config,
    log: Arc<dyn EventLog>,
    shutdown: Shutdown,
) -> novalog_runtime::Result<()> {
    run_wrapped(
        cfg,
        log,
        shutdown,
        consumer::unwrapped(),
        consumer::unwrapped(),
    )
    .await
}

/// Runs the scheduler with the handler of its host facts passed through
/// `wrap_facts` and that of its requests through `wrap_requests` (tests
/// wrap them to inject failures).
pub async fn run_wrapped(
    cfg: &Config,
    log: Arc<dyn EventLog>,
    shutdown: Shutdown,
    wrap_facts: Wrap,
    wrap_requests: Wrap,
) -> novalog_runtime::Result<()> {
    let dir = cfg.data_dir.join("scheduler");
    std::fs::create_dir_all(&dir)
        .map_err(|e| novalog_runtime::Error::io(format!("creating {}", dir.display()), e))?;
    let store = Arc::new(RocksStore::open(&dir, cfg.log.sync)?);
    let source = Source {
        cfg: Arc::new(cfg.clone()),
        store: store.clone(),
    };
    let topics = cfg.topics();
    let shared: SharedRef = Arc::new(std::sync::Mutex::new(source.load()?));
    // Both consumers store offsets under NAME: their topics are disjoint.
    let facts = ConsumerSpec {
        name: NAME.to_owned(),
        group: facts_group(&topics, &store)?,
        topics: vec![
            topics.hosts.clone(),
            topics.compute_events.clone(),
            topics.catalog.clone(),
        ],
        dead_letter_topic: topics.dead_letter.clone(),
        max_batch: cfg.log.max_batch,
    };
    let requests = ConsumerSpec {
        name: NAME.to_owned(),
        group: topics.group(NAME),
        topics: vec![topics.scheduler.clone()],
        dead_letter_topic: topics.dead_letter.clone(),
        max_batch: cfg.log.max_batch,
    };
    // Requests wait (bounded) until the facts that were in the log when
    // this instance started are folded: a fresh replica must not answer
    // "no valid host" for want of hosts it has not read yet.
    let mut behind = BTreeMap::new();
    for topic in &facts.topics {
        for (partition, end) in log.end_offsets(topic).await?.into_iter().enumerate() {
            let from = store.offset(NAME, topic, partition as i32)?.unwrap_or(0);
            if from < end {
                behind.insert((topic.clone(), partition as i32), end);
            }
        }
    }
    let (caught_up_tx, mut caught_up) = tokio::sync::watch::channel(false);
    let mut facts_handler = FactsHandler {
        shared: shared.clone(),
        source: source.clone(),
        behind,
        caught_up: Some(caught_up_tx),
    };
    facts_handler.signal_if_caught_up();
    let facts_handler = wrap_facts(Box::new(facts_handler));
    let requests_handler = wrap_requests(Box::new(RequestsHandler {
        shared,
        source,
        topics,
        requests: Vec::new(),
        decisions: 0,
    }));
    let (log2, store2, mut shutdown2) = (log.clone(), store.clone(), shutdown.clone());
    let answer = async move {
        let wait = tokio::time::timeout(CATCH_UP_WAIT, caught_up.wait_for(|done| *done));
        tokio::select! {
            _ = shutdown2.wait() => return Ok(()),
            r = wait => if r.is_err() {
                tracing::warn!("host facts not caught up after {CATCH_UP_WAIT:?}; answering anyway");
            },
        }
        consumer::run(log2, store2, requests, requests_handler, shutdown2).await
    };
    tokio::try_join!(
        consumer::run(log, store, facts, facts_handler, shutdown),
        answer,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> SharedRef {
        let cfg = Config::default();
        let core = build(&cfg, &novalog_store::MemStore::new()).unwrap();
        Arc::new(std::sync::Mutex::new(Shared {
            core,
            dirty: BTreeSet::new(),
            aggregates: BTreeMap::new(),
            aggregates_dirty: BTreeMap::new(),
        }))
    }

    /// What lets a replay leave `scheduler` unread: every record type of
    /// that topic changes nothing the facts handler stores.
    #[tokio::test]
    async fn the_facts_handler_stores_nothing_for_the_scheduler_topic() {
        use novalog_schemas::{Actor, HostEvent, HostUsage, Meta};
        let dir = std::env::temp_dir().join(format!("novalog-sched-{}", uuid::Uuid::new_v4()));
        let store = Arc::new(RocksStore::open(&dir, false).unwrap());
        let topics = Config::default().topics();
        let (folded, carried) = replay_topics(&topics);
        assert_eq!(carried, vec![topics.scheduler.clone()]);
        assert!(!folded.contains(&topics.scheduler));
        let mut h = FactsHandler {
            shared: shared(),
            source: Source {
                cfg: Arc::new(Config::default()),
                store,
            },
            behind: BTreeMap::new(),
            caught_up: None,
        };
        let env = |event| Envelope {
            meta: Meta::origin(
                uuid::Uuid::new_v4(),
                "req-1".into(),
                Actor::default(),
                "a".into(),
            ),
            event,
        };
        let input = |topic: &str, event| Input {
            topic: topic.to_owned(),
            partition: 0,
            offset: 0,
            env: env(event),
        };
        let (mut out, mut tx) = (Outbox::discarding(), Transaction::new());
        // A host the answers below name, stored as its facts say.
        let reg = novalog_schemas::events::HostRegistered {
            host: "h1".into(),
            capacity: novalog_schemas::Resources {
                vcpus: 8,
                memory_mb: 16_384,
                disk_gb: 100,
            },
            usage: HostUsage::default(),
            cpu_arch: "x86_64".into(),
            hypervisor_type: "fake".into(),
            hypervisor_version: 1,
            availability_zone: "nova".into(),
            capabilities: BTreeMap::new(),
            driver: "fake".into(),
        };
        let reg = Event::Host(HostEvent::HostRegistered(Box::new(reg)));
        h.handle(&input(&topics.hosts, reg), &mut out, &mut tx)
            .await
            .unwrap();
        h.finish_batch(&mut out, &mut tx).await.unwrap();
        assert!(!tx.is_empty(), "a registered host is stored");
        let mut tx = Transaction::new();
        let id = uuid::Uuid::new_v4();
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
        let mut spec = crate::bench::request(&mut rng, 1);
        spec.instance_id = id;
        for event in [
            SchedulerEvent::SelectHostsRequested(Box::new(spec)),
            SchedulerEvent::HostsSelected {
                request_id: id,
                instance_id: id,
                hosts: vec!["h1".into()],
            },
            SchedulerEvent::NoValidHostFound {
                request_id: id,
                instance_id: id,
                reason: "none".into(),
            },
        ] {
            h.handle(
                &input(&topics.scheduler, Event::Scheduler(event)),
                &mut out,
                &mut tx,
            )
            .await
            .unwrap();
        }
        h.finish_batch(&mut out, &mut tx).await.unwrap();
        assert!(tx.is_empty(), "nothing staged");
        drop(h);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn each_instance_reads_the_facts_in_a_group_of_its_own() {
        let topics = Config::default().topics();
        let base = std::env::temp_dir().join(format!("novalog-sched-{}", uuid::Uuid::new_v4()));
        let (a, b) = (base.join("a"), base.join("b"));
        let group_of = |dir: &std::path::Path| {
            let store = RocksStore::open(dir, false).unwrap();
            facts_group(&topics, &store).unwrap()
        };
        let first = group_of(&a);
        assert_eq!(first, group_of(&a), "stable across restarts");
        assert_ne!(first, group_of(&b), "one group per instance");
        assert_ne!(first, topics.group(NAME), "not the requests' shared group");
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn caught_up_once_every_partition_reaches_its_start_end() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let dir = std::env::temp_dir().join(format!("novalog-sched-{}", uuid::Uuid::new_v4()));
        let source = Source {
            cfg: Arc::new(Config::default()),
            store: Arc::new(RocksStore::open(&dir, false).unwrap()),
        };
        let mut h = FactsHandler {
            shared: shared(),
            source,
            behind: BTreeMap::from([(("h".to_owned(), 0), 2), (("h".to_owned(), 1), 1)]),
            caught_up: Some(tx),
        };
        h.progress("h", 0, 0);
        h.progress("h", 1, 0);
        assert!(!*rx.borrow());
        h.progress("h", 0, 1);
        assert!(*rx.borrow());
        drop(h);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
