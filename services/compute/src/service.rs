//! The compute agent's shell: registers its hosts, heartbeats, consumes
//! `compute` and carries out the commands for its own hosts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use novalog_log::{EventLog, Record};
use novalog_runtime::consumer::{self, ConsumerSpec, Rejected, Wrap};
use novalog_runtime::{Config, Handler, Input, Outbox, Shutdown, Topics};
use novalog_schemas::events::HostRegistered;
use novalog_schemas::{
    Actor, ComputeCommand, ComputeFact, Envelope, Event, HostEvent, HostUsage, Meta, PowerState,
    Resources,
};
use novalog_store::{RocksStore, Store, Transaction};
use parking_lot::Mutex;
use uuid::Uuid;

use crate::agent::{Command, Job, run_host};
use crate::driver::VirtDriver;
use crate::fake::{FakeDriver, FakeOptions};
use crate::tracker::{HostRecord, LegacyHostRecord, Ratios};

const HOSTS: &str = "hosts";

type UsageBoard = Arc<Mutex<HashMap<String, HostUsage>>>;

/// Each host's guests and the power state its record holds for them, as
/// last committed: what the power-state sync compares the hypervisor with.
type PowerBoard = Arc<Mutex<HashMap<String, BTreeMap<Uuid, PowerState>>>>;

/// What the power-state sync last reported of each guest (by host), so a
/// difference the conductor already has is not reported every interval.
type Reported = HashMap<String, HashMap<Uuid, PowerState>>;

fn powers_of(rec: &HostRecord) -> BTreeMap<Uuid, PowerState> {
    rec.instances
        .iter()
        .map(|(id, i)| (*id, i.power_state))
        .collect()
}

struct ComputeHandler {
    driver: Arc<dyn VirtDriver>,
    hosts: BTreeMap<String, HostRecord>,
    /// Where the host records are reloaded from after a failed record.
    store: Arc<RocksStore>,
    /// Every host's capacity, by configuration.
    capacity: Resources,
    ratios: Ratios,
    topics: Topics,
    queue: BTreeMap<String, Vec<Job>>,
    dirty: BTreeSet<String>,
    usage: UsageBoard,
    powers: PowerBoard,
    /// Held from a batch's driver calls until its facts are appended, so
    /// the power-state sync never reports a state from before an action
    /// after the action's own result.
    sync_lock: Arc<tokio::sync::Mutex<()>>,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

#[async_trait]
impl Handler for ComputeHandler {
    async fn handle(
        &mut self,
        input: &Input,
        _out: &mut Outbox,
        _tx: &mut Transaction,
    ) -> Result<(), Rejected> {
        let command = match &input.env.event {
            Event::Compute(command) => command,
            // Not on `compute`: never handed to it.
            Event::Intent(_)
            | Event::Instance(_)
            | Event::Scheduler(_)
            | Event::ComputeFact(_)
            | Event::Host(_)
            | Event::Catalog(_)
            | Event::DeadLetter(_)
            | Event::Billing(_) => return Ok(()),
        };
        let (host, command) = match command {
            ComputeCommand::SpawnInstance(s) => (s.host.clone(), Command::Spawn(s.clone())),
            ComputeCommand::DestroyInstance { instance_id, host } => (
                host.clone(),
                Command::Destroy {
                    instance_id: *instance_id,
                },
            ),
            ComputeCommand::PrepResize(c)
            | ComputeCommand::MigrateDiskAndPowerOff(c)
            | ComputeCommand::FinishMigration(c)
            | ComputeCommand::ConfirmMigration(c)
            | ComputeCommand::RevertMigration(c)
            | ComputeCommand::FinishRevertMigration(c)
            | ComputeCommand::DropMigrationClaim(c)
            | ComputeCommand::RebuildInstance(c)
            | ComputeCommand::LiveMigrateInstance(c)
            | ComputeCommand::RebuildEvacuatedInstance(c)
            | ComputeCommand::CleanupEvacuatedInstance(c) => {
                (c.host.clone(), Command::Saga(Box::new(command.clone())))
            }
            ComputeCommand::PerformServerAction {
                instance_id,
                host,
                action,
            } => (
                host.clone(),
                Command::Action {
                    instance_id: *instance_id,
                    action: action.clone(),
                },
            ),
            ComputeCommand::GetConsoleOutput {
                instance_id,
                host,
                length,
                request_id,
            } => (
                host.clone(),
                Command::ConsoleOutput {
                    instance_id: *instance_id,
                    length: *length,
                    request_id: *request_id,
                },
            ),
        };
        if self.hosts.contains_key(&host) {
            self.queue.entry(host).or_default().push(Job {
                cause: input.env.meta.clone(),
                command,
            });
        }
        Ok(())
    }

    async fn finish_batch(
        &mut self,
        out: &mut Outbox,
        tx: &mut Transaction,
    ) -> novalog_runtime::Result<()> {
        let mut queue = std::mem::take(&mut self.queue);
        if queue.is_empty() {
            return Ok(());
        }
        if self.held.is_none() {
            self.held = Some(self.sync_lock.clone().lock_owned().await);
        }
        let driver = &*self.driver;
        let ratios = self.ratios;
        // Each host's commands in order; hosts side by side. The queue is
        // this batch's own: its jobs are handed over, not copied.
        let work = self.hosts.iter_mut().filter_map(|(name, rec)| {
            queue.remove(name).map(|jobs| async move {
                (name.clone(), run_host(driver, rec, jobs, ratios).await)
            })
        });
        for (host, facts) in join_all(work).await {
            for f in &facts {
                out.emit(&self.topics.compute_events, host.clone().into_bytes(), f);
            }
            self.dirty.insert(host);
        }
        for host in &self.dirty {
            tx.put(HOSTS, host.as_bytes(), &self.hosts[host])?;
        }
        Ok(())
    }

    /// The host records as last committed, the driver reconciled with them
    /// as on start. A batch that failed in `finish_batch` may have reached
    /// the driver before it failed; its commands are carried out again one
    /// at a time, and the driver's own refusals (a guest that already
    /// exists) are reported like any failure.
    async fn recover(&mut self) -> novalog_runtime::Result<()> {
        for (name, rec) in self.hosts.iter_mut() {
            let capacity = self
                .driver
                .available_resource(name)
                .unwrap_or(self.capacity);
            *rec = load_host(&self.store, &*self.driver, name, capacity)?;
            destroy_orphans(&*self.driver, rec).await;
            self.powers.lock().insert(name.clone(), powers_of(rec));
        }
        self.queue.clear();
        self.dirty.clear();
        self.held = None;
        Ok(())
    }

    fn committed(&mut self) {
        {
            let mut board = self.usage.lock();
            let mut powers = self.powers.lock();
            for host in std::mem::take(&mut self.dirty) {
                let rec = &self.hosts[&host];
                board.insert(host.clone(), rec.usage);
                powers.insert(host, powers_of(rec));
            }
        }
        self.held = None;
    }
}

/// The hosts this agent serves, by configuration.
pub fn host_names(cfg: &Config) -> Vec<String> {
    let c = &cfg.compute;
    if c.driver == "fake" && c.fake_hosts > 0 {
        (0..c.fake_hosts)
            .map(|i| format!("{}{i}", c.fake_host_prefix))
            .collect()
    } else {
        vec![c.host.clone()]
    }
}

/// The driver configuration names.
pub fn driver(cfg: &Config) -> novalog_runtime::Result<Arc<dyn VirtDriver>> {
    let c = &cfg.compute;
    match c.driver.as_str() {
        "fake" => Ok(Arc::new(FakeDriver::new(fake_options(cfg)))),
        "libvirt" => crate::libvirt::LibvirtDriver::from_config(cfg)
            .map(|d| Arc::new(d) as Arc<dyn VirtDriver>)
            .map_err(|e| novalog_runtime::Error::Service(e.to_string())),
        other => Err(novalog_runtime::Error::Service(format!(
            "unknown compute driver {other:?} (available: fake, libvirt)"
        ))),
    }
}

/// The fake driver's options from `cfg`; its snapshots go to the image
/// service's store under `data_dir`.
fn fake_options(cfg: &Config) -> FakeOptions {
    let c = &cfg.compute;
    FakeOptions {
        spawn_latency: Duration::from_millis(c.fake_spawn_latency_ms),
        fail_claims: c.fake_fail_claims.iter().cloned().collect(),
        fail_spawns: c.fake_fail_spawns.iter().cloned().collect(),
        fail_steps: steps(&c.fake_fail_steps),
        silent_steps: steps(&c.fake_silent_steps),
        step_latency: Duration::from_millis(c.fake_step_latency_ms),
        action_latency: Duration::from_millis(c.fake_action_latency_ms),
        fail_actions: c.fake_fail_actions.iter().cloned().collect(),
        image_store: Some(cfg.data_dir.join("images")),
        vnc: cfg.vnc.enabled,
    }
}

/// `step@host` entries (`step` alone: every host) as the fake driver's map.
fn steps(entries: &[String]) -> HashMap<String, std::collections::HashSet<String>> {
    let mut m: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
    for e in entries {
        let (step, host) = e.split_once('@').unwrap_or((e.as_str(), "*"));
        m.entry(step.to_owned())
            .or_default()
            .insert(host.to_owned());
    }
    m
}

fn host_record_event(cfg: &Config, driver: &dyn VirtDriver, rec: &HostRecord) -> Envelope {
    let c = &cfg.compute;
    Envelope {
        meta: Meta::origin(
            Uuid::new_v4(),
            String::new(),
            Actor::service("compute"),
            rec.name.clone(),
        ),
        event: Event::Host(HostEvent::HostRegistered(Box::new(HostRegistered {
            host: rec.name.clone(),
            capacity: rec.capacity,
            usage: rec.usage,
            cpu_arch: c
                .fake_host_arch
                .get(&rec.name)
                .unwrap_or(&c.cpu_arch)
                .clone(),
            hypervisor_type: driver.name().to_owned(),
            hypervisor_version: 1,
            availability_zone: c
                .fake_host_availability_zone
                .get(&rec.name)
                .unwrap_or(&c.availability_zone)
                .clone(),
            capabilities: BTreeMap::new(),
            driver: driver.name().to_owned(),
        }))),
    }
}

/// Runs the agent with the configured driver until `shutdown`.
pub async fn run(
    cfg: &Config,
    log: Arc<dyn EventLog>,
    shutdown: Shutdown,
) -> novalog_runtime::Result<()> {
    let driver = driver(cfg)?;
    run_with_driver(cfg, log, driver, shutdown).await
}

/// Runs the agent with `driver` (tests keep a handle on a fake driver).
pub async fn run_with_driver(
    cfg: &Config,
    log: Arc<dyn EventLog>,
    driver: Arc<dyn VirtDriver>,
    shutdown: Shutdown,
) -> novalog_runtime::Result<()> {
    Agent::register(cfg, log, driver).await?.run(shutdown).await
}

/// A compute agent whose hosts are registered on `hosts`, ready to consume
/// commands.
pub struct Agent {
    log: Arc<dyn EventLog>,
    store: Arc<RocksStore>,
    spec: ConsumerSpec,
    handler: ComputeHandler,
    report_interval: Duration,
    /// `[image_cache] manager_interval` (zero: the manager never runs).
    image_cache_interval: Duration,
    /// `sync_power_state_interval` (zero: no periodic sync).
    power_sync_interval: Duration,
    /// What the sync on start reported.
    reported: Reported,
}

impl Agent {
    /// Opens the agent's store, reconciles the driver with it (Nova's
    /// init_host) and announces every host with its capacity and usage.
    pub async fn register(
        cfg: &Config,
        log: Arc<dyn EventLog>,
        driver: Arc<dyn VirtDriver>,
    ) -> novalog_runtime::Result<Agent> {
        let dir = store_dir(cfg);
        std::fs::create_dir_all(&dir)
            .map_err(|e| novalog_runtime::Error::io(format!("creating {}", dir.display()), e))?;
        let store = Arc::new(RocksStore::open(&dir, cfg.log.sync)?);
        let topics = cfg.topics();
        let capacity = Resources {
            vcpus: cfg.compute.vcpus,
            memory_mb: cfg.compute.memory_mb,
            disk_gb: cfg.compute.disk_gb,
        };
        let mut hosts = BTreeMap::new();
        for name in host_names(cfg) {
            // A real hypervisor reports what its host has; the fake one
            // has what it is configured with.
            let capacity = driver.available_resource(&name).unwrap_or(capacity);
            let rec = load_host(&store, &*driver, &name, capacity)?;
            destroy_orphans(&*driver, &rec).await;
            if cfg.resume_guests_state_on_host_boot {
                resume_guests(&*driver, &rec).await;
            }
            hosts.insert(name, rec);
        }
        let mut records: Vec<Record> = hosts
            .values()
            .map(|rec| {
                Record::new(
                    &topics.hosts,
                    rec.name.clone().into_bytes(),
                    novalog_schemas::encode(&host_record_event(cfg, &*driver, rec)),
                )
            })
            .collect();
        // init_host's report: the power state of every guest the record
        // holds that the hypervisor holds otherwise (or not at all).
        let powers: HashMap<String, BTreeMap<Uuid, PowerState>> = hosts
            .iter()
            .map(|(n, r)| (n.clone(), powers_of(r)))
            .collect();
        let mut reported = Reported::new();
        records.extend(power_sync_pass(
            &*driver,
            &powers,
            &mut reported,
            &topics.compute_events,
        ));
        log.append(records).await?;
        tracing::info!(
            hosts = hosts.len(),
            driver = driver.name(),
            "compute hosts registered"
        );

        let usage: UsageBoard = Arc::new(Mutex::new(
            hosts.iter().map(|(n, r)| (n.clone(), r.usage)).collect(),
        ));
        let spec = ConsumerSpec {
            name: consumer_name(cfg),
            group: topics.group(&format!("compute-{}", agent_id(cfg))),
            topics: vec![topics.compute.clone()],
            dead_letter_topic: topics.dead_letter.clone(),
            max_batch: cfg.log.max_batch,
        };
        let handler = ComputeHandler {
            driver,
            hosts,
            store: store.clone(),
            capacity,
            ratios: Ratios {
                cpu: cfg.cpu_allocation_ratio,
                ram: cfg.ram_allocation_ratio,
                disk: cfg.disk_allocation_ratio,
            },
            topics,
            queue: BTreeMap::new(),
            dirty: BTreeSet::new(),
            usage,
            powers: Arc::new(Mutex::new(powers)),
            sync_lock: Arc::new(tokio::sync::Mutex::new(())),
            held: None,
        };
        Ok(Agent {
            log,
            store,
            spec,
            handler,
            report_interval: Duration::from_secs(cfg.report_interval.max(1)),
            image_cache_interval: Duration::from_secs(cfg.image_cache.manager_interval),
            power_sync_interval: Duration::from_secs(cfg.sync_power_state_interval),
            reported,
        })
    }

    /// Heartbeats and carries out commands until `shutdown`.
    pub async fn run(self, shutdown: Shutdown) -> novalog_runtime::Result<()> {
        self.run_wrapped(shutdown, consumer::unwrapped()).await
    }

    /// [`Agent::run`] with the command handler passed through `wrap`
    /// (tests wrap it to inject failures).
    pub async fn run_wrapped(self, shutdown: Shutdown, wrap: Wrap) -> novalog_runtime::Result<()> {
        let heartbeat = tokio::spawn(heartbeats(
            self.log.clone(),
            self.handler.topics.hosts.clone(),
            self.handler.usage.clone(),
            self.report_interval,
            shutdown.clone(),
        ));
        let cache_manager = (!self.image_cache_interval.is_zero()).then(|| {
            tokio::spawn(image_cache_manager(
                self.handler.driver.clone(),
                self.image_cache_interval,
                shutdown.clone(),
            ))
        });
        let power_sync = (!self.power_sync_interval.is_zero()).then(|| {
            tokio::spawn(power_sync(
                PowerSync {
                    driver: self.handler.driver.clone(),
                    log: self.log.clone(),
                    topic: self.handler.topics.compute_events.clone(),
                    powers: self.handler.powers.clone(),
                    lock: self.handler.sync_lock.clone(),
                    reported: self.reported,
                },
                self.power_sync_interval,
                shutdown.clone(),
            ))
        });
        let handler = wrap(Box::new(self.handler));
        let result = consumer::run(self.log, self.store, self.spec, handler, shutdown).await;
        heartbeat.abort();
        for task in [cache_manager, power_sync].into_iter().flatten() {
            task.abort();
        }
        result
    }
}

/// Where the agent keeps its store: `compute` for the fake hosts,
/// `compute-<host>` for a real hypervisor's agent, so that both can run
/// in one process (the all-in-one's libvirt host beside its fake ones).
fn store_dir(cfg: &Config) -> std::path::PathBuf {
    if cfg.compute.driver == "fake" {
        cfg.data_dir.join("compute")
    } else {
        cfg.data_dir.join(format!("compute-{}", cfg.compute.host))
    }
}

/// Nova's image cache manager: every `every`, the driver removes the base
/// images no guest uses once they are old enough.
async fn image_cache_manager(driver: Arc<dyn VirtDriver>, every: Duration, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        match driver.manage_image_cache().await {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(
                    removed = removed.len(),
                    "image cache manager removed unused bases"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "image cache manager"),
        }
    }
}

/// What the periodic power-state sync works with.
struct PowerSync {
    driver: Arc<dyn VirtDriver>,
    log: Arc<dyn EventLog>,
    topic: String,
    powers: PowerBoard,
    lock: Arc<tokio::sync::Mutex<()>>,
    reported: Reported,
}

/// Nova's `_sync_power_states`: every `every`, each guest's power state
/// as the hypervisor has it is compared with the host's record, and the
/// differences are reported on `compute-events` for the conductor to
/// apply Nova's rules to.
async fn power_sync(mut s: PowerSync, every: Duration, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        // No batch's driver calls run between the reading and the append.
        let _quiet = s.lock.lock().await;
        let powers = s.powers.lock().clone();
        let records = power_sync_pass(&*s.driver, &powers, &mut s.reported, &s.topic);
        if records.is_empty() {
            continue;
        }
        tracing::info!(reports = records.len(), "power-state sync");
        if let Err(e) = s.log.append(records).await {
            tracing::warn!(error = %e, "power-state sync append failed");
        }
    }
}

/// One pass of the sync: a `PowerStateObserved` fact for each guest whose
/// power state on the hypervisor (`NoState`: the hypervisor has no such
/// guest) differs from its record, unless the same was reported before.
pub(crate) fn power_sync_pass(
    driver: &dyn VirtDriver,
    powers: &HashMap<String, BTreeMap<Uuid, PowerState>>,
    reported: &mut Reported,
    topic: &str,
) -> Vec<Record> {
    let mut out = Vec::new();
    for (host, guests) in powers {
        let seen = reported.entry(host.clone()).or_default();
        seen.retain(|id, _| guests.contains_key(id));
        for (id, recorded) in guests {
            let observed = driver.get_info(host, *id).unwrap_or(PowerState::NoState);
            if observed == *recorded {
                seen.remove(id);
                continue;
            }
            if seen.get(id) == Some(&observed) {
                continue;
            }
            seen.insert(*id, observed);
            let env = Envelope {
                meta: Meta::origin(
                    Uuid::new_v4(),
                    String::new(),
                    Actor::service("compute"),
                    id.to_string(),
                ),
                event: Event::ComputeFact(ComputeFact::PowerStateObserved {
                    instance_id: *id,
                    host: host.clone(),
                    power_state: observed,
                }),
            };
            out.push(Record::new(
                topic,
                host.clone().into_bytes(),
                novalog_schemas::encode(&env),
            ));
        }
    }
    out
}

/// Nova's `resume_guests_state_on_host_boot`: a guest the record holds
/// running that the hypervisor does not run (the host rebooted) is
/// started again by a hard reboot, as Nova's `resume_state_on_host_boot`
/// does.
async fn resume_guests(driver: &dyn VirtDriver, rec: &HostRecord) {
    for (id, i) in &rec.instances {
        if i.power_state != PowerState::Running {
            continue;
        }
        let now = driver.get_info(&rec.name, *id);
        if now == Some(PowerState::Running) {
            continue;
        }
        tracing::info!(host = %rec.name, instance = %id, power = ?now, "resuming a guest after a host boot");
        if let Err(e) = driver.reboot(&rec.name, *id, true).await {
            tracing::warn!(host = %rec.name, instance = %id, error = %e, "resuming a guest");
        }
    }
}

/// The consumer its offsets are stored under (one agent serves the hosts
/// of [`host_names`]).
pub fn consumer_name(cfg: &Config) -> String {
    format!("compute-{}", agent_id(cfg))
}

/// The agent's handler for a replay into `store` (fresh), side effects
/// off: its commands are carried out on a fake driver of its own, as the
/// configured fake driver carried them out live (without the latencies,
/// which change when, not what). What it emits is the caller's to drop.
/// An agent of a real hypervisor cannot be replayed: its outcomes were the
/// hypervisor's.
pub fn replay_handler(
    cfg: &Config,
    store: Arc<RocksStore>,
) -> novalog_runtime::Result<impl Handler> {
    if cfg.compute.driver != "fake" {
        return Err(novalog_runtime::Error::Service(format!(
            "the {} driver's outcomes were its hypervisor's; only an agent of the fake driver \
             can be carried out again",
            cfg.compute.driver
        )));
    }
    let mut replay_cfg = cfg.clone();
    replay_cfg.compute.fake_spawn_latency_ms = 0;
    replay_cfg.compute.fake_step_latency_ms = 0;
    replay_cfg.compute.fake_action_latency_ms = 0;
    // Snapshots are digested, not stored again: the live agent stored them.
    let driver: Arc<dyn VirtDriver> = Arc::new(FakeDriver::new(FakeOptions {
        image_store: None,
        ..fake_options(&replay_cfg)
    }));
    let capacity = Resources {
        vcpus: cfg.compute.vcpus,
        memory_mb: cfg.compute.memory_mb,
        disk_gb: cfg.compute.disk_gb,
    };
    let mut hosts = BTreeMap::new();
    for name in host_names(cfg) {
        let rec = load_host(&store, &*driver, &name, capacity)?;
        hosts.insert(name, rec);
    }
    Ok(ComputeHandler {
        driver,
        hosts,
        store,
        capacity,
        ratios: Ratios {
            cpu: cfg.cpu_allocation_ratio,
            ram: cfg.ram_allocation_ratio,
            disk: cfg.disk_allocation_ratio,
        },
        topics: cfg.topics(),
        queue: BTreeMap::new(),
        dirty: BTreeSet::new(),
        usage: Default::default(),
        powers: Default::default(),
        sync_lock: Default::default(),
        held: None,
    })
}

/// One host's record as the store has it (new when it has none), with
/// the configured capacity; init_host: the guests the record says exist
/// are adopted by the driver.
fn load_host(
    store: &RocksStore,
    driver: &dyn VirtDriver,
    name: &str,
    capacity: Resources,
) -> novalog_store::Result<HostRecord> {
    let stored = store.get_raw(HOSTS, name.as_bytes())?;
    let mut rec = match stored {
        None => HostRecord::new(name.to_owned(), capacity),
        Some(bytes) => match novalog_store::decode::<HostRecord>(HOSTS, &bytes) {
            Ok(rec) => rec,
            // Written before sagas' markers were bounded.
            Err(e) => novalog_store::decode::<LegacyHostRecord>(HOSTS, &bytes)
                .map(HostRecord::from)
                .map_err(|_| e)?,
        },
    };
    rec.capacity = capacity;
    for (id, i) in &rec.instances {
        driver.adopt(name, *id, i.power_state);
    }
    Ok(rec)
}

/// init_host's other half: a guest the hypervisor holds on the host but
/// the record does not (a batch that failed after the driver acted, whose
/// record was never committed) is destroyed. The batch's commands are
/// carried out again after a recover, so a spawn lost that way is made
/// afresh and recorded, instead of being refused as already existing and
/// leaving the guest orphaned.
async fn destroy_orphans(driver: &dyn VirtDriver, rec: &HostRecord) {
    let known: BTreeSet<Uuid> = rec
        .instances
        .keys()
        .copied()
        .chain(rec.migration_claims.values().map(|c| c.instance_id))
        .collect();
    for id in driver.guests(&rec.name) {
        if known.contains(&id) {
            continue;
        }
        tracing::warn!(host = %rec.name, instance = %id, "destroying a guest the host's record does not know");
        if let Err(e) = driver.destroy(&rec.name, id).await {
            tracing::error!(host = %rec.name, instance = %id, error = %e, "destroying an orphaned guest");
        }
    }
}

/// Every agent reads every command (its own consumer group) and keeps those
/// for its hosts; the group is named after the agent's hosts.
fn agent_id(cfg: &Config) -> String {
    let c = &cfg.compute;
    if c.driver == "fake" && c.fake_hosts > 0 {
        format!("{}{}", c.fake_host_prefix, c.fake_hosts)
    } else {
        c.host.clone()
    }
}

async fn heartbeats(
    log: Arc<dyn EventLog>,
    topic: String,
    usage: UsageBoard,
    every: Duration,
    mut shutdown: Shutdown,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        let records: Vec<Record> = usage
            .lock()
            .iter()
            .map(|(host, u)| {
                let env = Envelope {
                    meta: Meta::origin(
                        Uuid::new_v4(),
                        String::new(),
                        Actor::service("compute"),
                        host.clone(),
                    ),
                    event: Event::Host(HostEvent::HostHeartbeat {
                        host: host.clone(),
                        usage: *u,
                    }),
                };
                Record::new(
                    &topic,
                    host.clone().into_bytes(),
                    novalog_schemas::encode(&env),
                )
            })
            .collect();
        if let Err(e) = log.append(records).await {
            tracing::warn!(error = %e, "heartbeat append failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::{ClaimSide, LocalInstance, MigrationClaim};
    use novalog_schemas::PowerState;

    /// A batch whose driver calls ran but whose record was not committed
    /// (a panic in `finish_batch`) left a guest the record does not know:
    /// start and recover destroy it, and keep the guests the record holds,
    /// a migration's included.
    #[tokio::test]
    async fn guests_the_record_does_not_know_are_destroyed() {
        let driver = FakeDriver::new(FakeOptions::default());
        let capacity = Resources {
            vcpus: 8,
            memory_mb: 8192,
            disk_gb: 100,
        };
        let mut rec = HostRecord::new("h1".into(), capacity);
        let (kept, migrating, orphan, elsewhere) = (
            Uuid::from_u128(1),
            Uuid::from_u128(2),
            Uuid::from_u128(3),
            Uuid::from_u128(4),
        );
        rec.instances.insert(
            kept,
            LocalInstance {
                resources: capacity,
                attempt: 1,
                power_state: PowerState::Running,
            },
        );
        rec.migration_claims.insert(
            Uuid::from_u128(9),
            MigrationClaim {
                instance_id: migrating,
                resources: capacity,
                side: ClaimSide::Outgoing,
            },
        );
        for id in [kept, migrating, orphan] {
            driver.adopt("h1", id, PowerState::Running);
        }
        driver.adopt("h2", elsewhere, PowerState::Running);

        destroy_orphans(&driver, &rec).await;

        let mut left = driver.guests("h1");
        left.sort();
        assert_eq!(left, [kept, migrating]);
        assert_eq!(
            driver.guests("h2"),
            [elsewhere],
            "another host's guests are its own"
        );
    }

    fn observed(records: &[Record]) -> Vec<(Uuid, PowerState)> {
        let mut out: Vec<(Uuid, PowerState)> = records
            .iter()
            .map(|r| {
                let env = novalog_schemas::decode(&r.value).unwrap();
                match env.event {
                    Event::ComputeFact(ComputeFact::PowerStateObserved {
                        instance_id,
                        power_state,
                        host,
                    }) => {
                        assert_eq!(host, "h1");
                        (instance_id, power_state)
                    }
                    other => panic!("not a power observation: {other:?}"),
                }
            })
            .collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }

    /// The sync reports the guests whose hypervisor state differs from the
    /// record (a guest gone altogether as NOSTATE), each difference once
    /// until it changes again.
    #[tokio::test]
    async fn the_sync_reports_each_difference_once() {
        let driver = FakeDriver::new(FakeOptions::default());
        let (same, off, gone) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let recorded = BTreeMap::from([
            (same, PowerState::Running),
            (off, PowerState::Running),
            (gone, PowerState::Running),
        ]);
        driver.adopt("h1", same, PowerState::Running);
        // Shut down from inside the guest, behind Novalog's back.
        driver.adopt("h1", off, PowerState::Shutdown);
        let powers = HashMap::from([("h1".to_owned(), recorded.clone())]);
        let mut reported = Reported::new();

        let first = power_sync_pass(&driver, &powers, &mut reported, "events");
        assert_eq!(
            observed(&first),
            [(off, PowerState::Shutdown), (gone, PowerState::NoState)]
        );
        assert!(first.iter().all(|r| r.key == b"h1"), "keyed by host");
        // Already reported: nothing new.
        assert!(power_sync_pass(&driver, &powers, &mut reported, "events").is_empty());
        // It changes again: reported again.
        driver.adopt("h1", off, PowerState::Paused);
        let again = power_sync_pass(&driver, &powers, &mut reported, "events");
        assert_eq!(observed(&again), [(off, PowerState::Paused)]);
        // Back as recorded, then off again: a new difference.
        driver.adopt("h1", off, PowerState::Running);
        assert!(power_sync_pass(&driver, &powers, &mut reported, "events").is_empty());
        driver.adopt("h1", off, PowerState::Shutdown);
        let third = power_sync_pass(&driver, &powers, &mut reported, "events");
        assert_eq!(observed(&third), [(off, PowerState::Shutdown)]);
    }

    /// `resume_guests_state_on_host_boot`: guests recorded running that
    /// the hypervisor holds stopped are started; stopped ones stay so.
    #[tokio::test]
    async fn resume_on_host_boot_starts_what_ran() {
        let driver = FakeDriver::new(FakeOptions::default());
        let capacity = Resources {
            vcpus: 8,
            memory_mb: 8192,
            disk_gb: 100,
        };
        let mut rec = HostRecord::new("h1".into(), capacity);
        let (ran, stopped) = (Uuid::from_u128(1), Uuid::from_u128(2));
        for (id, p) in [(ran, PowerState::Running), (stopped, PowerState::Shutdown)] {
            rec.instances.insert(
                id,
                LocalInstance {
                    resources: capacity,
                    attempt: 1,
                    power_state: p,
                },
            );
            // The host rebooted: every guest is off.
            driver.adopt("h1", id, PowerState::Shutdown);
        }
        resume_guests(&driver, &rec).await;
        assert_eq!(driver.get_info("h1", ran), Some(PowerState::Running));
        assert_eq!(driver.get_info("h1", stopped), Some(PowerState::Shutdown));
    }
}
