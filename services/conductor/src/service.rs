//! The conductor's shell: its consumer, its store, its binary's entry.

use std::sync::Arc;

use async_trait::async_trait;
use novalog_log::EventLog;
use novalog_runtime::consumer::{self, ConsumerSpec, Rejected};
use novalog_runtime::{Config, Handler, Input, Outbox, Shutdown, Topics};
use novalog_schemas::instance::Instance;
use novalog_schemas::{Flavor, Image};
use novalog_store::{RocksStore, Store, StoreExt, Transaction};

use crate::core::{Conductor, Dest, Settings};

const INSTANCES: &str = "instances";
const FLAVORS: &str = "flavors";
const IMAGES: &str = "images";
const SERVER_GROUPS: &str = "server_groups";
const AGGREGATES: &str = "aggregates";
const KEYPAIRS: &str = "keypairs";
const FLAVOR_ACCESS: &str = "flavor_access";
/// Consumer group and offset namespace.
pub const NAME: &str = "conductor";

struct ConductorHandler {
    core: Conductor,
    topics: Topics,
}

impl ConductorHandler {
    fn topic(&self, dest: Dest) -> &str {
        match dest {
            Dest::Instances => &self.topics.instances,
            Dest::Scheduler => &self.topics.scheduler,
            Dest::Compute => &self.topics.compute,
            Dest::Catalog => &self.topics.catalog,
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
        for id in dirty.aggregates {
            match self.core.aggregates.get(&id) {
                Some(a) => tx.put(AGGREGATES, &id.to_be_bytes(), a)?,
                None => tx.delete(AGGREGATES, &id.to_be_bytes()),
            }
        }
        for id in dirty.keypairs {
            match self.core.keypairs.get(&id) {
                Some(k) => tx.put(KEYPAIRS, id.as_bytes(), k)?,
                None => tx.delete(KEYPAIRS, id.as_bytes()),
            }
        }
        Ok(())
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
    for (id, p) in store.scan::<std::collections::BTreeSet<String>>(FLAVOR_ACCESS)? {
        core.flavor_access
            .insert(String::from_utf8_lossy(&id).into_owned(), p);
    }
    for (id, k) in store.scan::<novalog_schemas::events::Keypair>(KEYPAIRS)? {
        core.keypairs
            .insert(String::from_utf8_lossy(&id).into_owned(), k);
    }
    Ok(core)
}

/// Runs the conductor until `shutdown`.
pub async fn run(cfg: &Config, log: Arc<dyn EventLog>, shutdown: Shutdown) -> anyhow::Result<()> {
    let dir = cfg.data_dir.join("conductor");
    std::fs::create_dir_all(&dir)?;
    let store = Arc::new(RocksStore::open(&dir, cfg.log.sync)?);
    let core = load(
        &*store,
        Settings {
            max_attempts: cfg.scheduler.max_attempts,
        },
    )?;
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
    consumer::run(
        log,
        store,
        spec,
        ConductorHandler { core, topics },
        shutdown,
    )
    .await
}
