//! The scheduler's shell: consumes `scheduler` (requests), `hosts` and
//! `compute-events` (usage) and `catalog` (host aggregates, persisted
//! beside the hosts), answers on `scheduler`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use novalog_log::EventLog;
use novalog_runtime::consumer::{self, ConsumerSpec, Rejected};
use novalog_runtime::{Config, Handler, Input, Outbox, Shutdown, Topics};
use novalog_schemas::events::HostAggregate;
use novalog_schemas::{Envelope, Event};
use novalog_store::{RocksStore, Store, StoreExt, Transaction};

use crate::filters::{self, Context};
use crate::host_state::{Aggregate, HostState};
use crate::scheduler::Scheduler;
use crate::weighers;

const HOSTS: &str = "hosts";
const AGGREGATES: &str = "aggregates";
pub const NAME: &str = "scheduler";

struct SchedulerHandler {
    core: Scheduler,
    topics: Topics,
    dirty: BTreeSet<String>,
    /// Requests of the current batch, decided after the batch's host facts
    /// are folded: a batch mixes topics, and a decision must not miss a
    /// host that registered before the request was made.
    requests: Vec<Envelope>,
    /// Host aggregates by id, as the `catalog` topic has them.
    aggregates: BTreeMap<u32, HostAggregate>,
    /// Aggregates changed in this batch (`None`: deleted).
    aggregates_dirty: BTreeMap<u32, Option<HostAggregate>>,
}

impl SchedulerHandler {
    /// Folds an aggregate fact; true when it was one.
    fn observe_aggregate(&mut self, event: &Event) -> bool {
        let (id, next) = match event {
            Event::AggregateCreated(a)
            | Event::AggregateUpdated(a)
            | Event::AggregateMetadataSet(a)
            | Event::AggregateHostAdded { aggregate: a, .. }
            | Event::AggregateHostRemoved { aggregate: a, .. } => (a.id, Some((**a).clone())),
            Event::AggregateDeleted { aggregate_id } => (*aggregate_id, None),
            _ => return false,
        };
        match &next {
            Some(a) => self.aggregates.insert(id, a.clone()),
            None => self.aggregates.remove(&id),
        };
        self.aggregates_dirty.insert(id, next);
        true
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

#[async_trait]
impl Handler for SchedulerHandler {
    async fn handle(
        &mut self,
        input: &Input,
        _out: &mut Outbox,
        _tx: &mut Transaction,
    ) -> Result<(), Rejected> {
        let env = &input.env;
        match &env.event {
            Event::SelectHostsRequested(_) => self.requests.push(env.clone()),
            other if self.observe_aggregate(other) => {}
            other => {
                if let Some(host) = self.core.observe(other, env.meta.occurred_at_ms) {
                    self.dirty.insert(host);
                }
            }
        }
        Ok(())
    }

    async fn finish_batch(&mut self, out: &mut Outbox, tx: &mut Transaction) -> anyhow::Result<()> {
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
        for env in std::mem::take(&mut self.requests) {
            let Event::SelectHostsRequested(spec) = &env.event else {
                continue;
            };
            let event = match self.core.select_hosts(spec, novalog_schemas::now_ms()) {
                Ok(hosts) => Event::HostsSelected {
                    request_id: spec.request_id,
                    instance_id: spec.instance_id,
                    hosts,
                },
                Err(reason) => Event::NoValidHostFound {
                    request_id: spec.request_id,
                    instance_id: spec.instance_id,
                    reason,
                },
            };
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
        for host in std::mem::take(&mut self.dirty) {
            if let Some(h) = self.core.host(&host) {
                tx.put(HOSTS, host.as_bytes(), h)?;
            }
        }
        Ok(())
    }
}

/// Builds a scheduler from configuration, with the host states in `store`.
pub fn build(cfg: &Config, store: &impl Store) -> anyhow::Result<Scheduler> {
    let fs = &cfg.filter_scheduler;
    let mut core = Scheduler::new(
        filters::by_names(&fs.enabled_filters, fs).map_err(anyhow::Error::msg)?,
        weighers::by_names(&fs.weight_classes, fs).map_err(anyhow::Error::msg)?,
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
pub async fn run(cfg: &Config, log: Arc<dyn EventLog>, shutdown: Shutdown) -> anyhow::Result<()> {
    let dir = cfg.data_dir.join("scheduler");
    std::fs::create_dir_all(&dir)?;
    let store = Arc::new(RocksStore::open(&dir, cfg.log.sync)?);
    let mut core = build(cfg, &*store)?;
    let aggregates: BTreeMap<u32, HostAggregate> = store
        .scan::<HostAggregate>(AGGREGATES)?
        .into_iter()
        .map(|(_, a)| (a.id, a))
        .collect();
    core.set_aggregates(scheduler_aggregates(&aggregates));
    let topics = cfg.topics();
    let spec = ConsumerSpec {
        name: NAME.to_owned(),
        group: topics.group(NAME),
        topics: vec![
            topics.scheduler.clone(),
            topics.hosts.clone(),
            topics.compute_events.clone(),
            topics.catalog.clone(),
        ],
        dead_letter_topic: topics.dead_letter.clone(),
        max_batch: cfg.log.max_batch,
    };
    let handler = SchedulerHandler {
        core,
        topics,
        dirty: BTreeSet::new(),
        requests: Vec::new(),
        aggregates,
        aggregates_dirty: BTreeMap::new(),
    };
    consumer::run(log, store, spec, handler, shutdown).await
}
