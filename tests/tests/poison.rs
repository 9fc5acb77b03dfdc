//! Poison records (issue 9): a record that panics its handler, fed to each
//! service's real consumer loop on both log backends, is dead-lettered with
//! the panic's message, the service goes on consuming the records after
//! it, and a restart does not replay it.
//!
//! No service ships a panic trigger: each test wraps the real service's
//! handler (through the service's `*_wrapped` entry) in [`Poisoned`], which
//! panics on records marked with [`MARK`] and hands every other record to
//! the real handler.

use novalog_schemas::{
    CatalogEvent, ComputeCommand, ComputeFact, HostEvent, InstanceEvent, Intent, SchedulerEvent,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use novalog_log::{EventLog, Record};
use novalog_runtime::consumer::{DeadRecord, Rejected, Wrap};
use novalog_runtime::{Config, Handler, Input, Outbox, Shutdown, ShutdownTrigger};
use novalog_schemas::events::{HostRegistered, SelectHostsRequested};
use novalog_schemas::{Actor, Envelope, Event, Flavor, HostUsage, Meta, RejectionKind, Resources};
use novalog_store::Transaction;
use novalog_tests::{Client, kafka_brokers, read_topic, test_config};
use uuid::Uuid;

/// The request id that marks a poison record.
const MARK: &str = "req-poison";
const WAIT: Duration = Duration::from_secs(60);

/// A service's real handler that panics on marked records.
struct Poisoned {
    inner: Box<dyn Handler>,
    /// Marked records that reached `handle`, across restarts.
    hits: Arc<AtomicUsize>,
}

#[async_trait]
impl Handler for Poisoned {
    async fn handle(
        &mut self,
        input: &Input,
        out: &mut Outbox,
        tx: &mut Transaction,
    ) -> Result<(), Rejected> {
        if input.env.meta.correlation_id == MARK {
            self.hits.fetch_add(1, Ordering::SeqCst);
            panic!("poison record {}/{}", input.topic, input.offset);
        }
        self.inner.handle(input, out, tx).await
    }

    async fn finish_batch(
        &mut self,
        out: &mut Outbox,
        tx: &mut Transaction,
    ) -> novalog_runtime::Result<()> {
        self.inner.finish_batch(out, tx).await
    }

    fn committed(&mut self) {
        self.inner.committed()
    }

    async fn recover(&mut self) -> novalog_runtime::Result<()> {
        self.inner.recover().await
    }

    fn dead_lettered(&mut self, dead: &DeadRecord<'_>, out: &mut Outbox) {
        self.inner.dead_lettered(dead, out)
    }
}

fn poisoned(hits: &Arc<AtomicUsize>) -> Wrap {
    let hits = hits.clone();
    Box::new(move |inner| Box::new(Poisoned { inner, hits }))
}

/// One test's cloud: its configuration on the backend asked for, and the
/// log (which outlives the service's restarts, as a broker would).
struct Bed {
    _dir: tempfile::TempDir,
    cfg: Config,
    log: Arc<dyn EventLog>,
    hits: Arc<AtomicUsize>,
}

impl Bed {
    /// `None` when `kafka` is asked for and no broker is configured.
    async fn new(kafka: bool) -> Option<Bed> {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = test_config(dir.path());
        if kafka {
            let Some(brokers) = kafka_brokers() else {
                eprintln!("skipped: NOVALOG_KAFKA_BROKERS not set (make test sets it)");
                return None;
            };
            cfg.log.backend = novalog_runtime::config::Backend::Kafka;
            cfg.log.bootstrap_servers = brokers;
            cfg.log.partitions = 2;
            // Every client, readers included, must have a session timeout
            // no longer than the poll interval.
            for (k, v) in [
                ("max.poll.interval.ms", "10000"),
                ("session.timeout.ms", "6000"),
            ] {
                cfg.log.kafka_properties.insert(k.into(), v.into());
            }
        }
        let log = novalog_runtime::backend::open_log(&cfg).await.unwrap();
        Some(Bed {
            _dir: dir,
            cfg,
            log,
            hits: Arc::new(AtomicUsize::new(0)),
        })
    }

    fn envelope(&self, correlation_id: &str, aggregate_id: &str, event: Event) -> Envelope {
        Envelope {
            meta: Meta::origin(
                Uuid::new_v4(),
                correlation_id.to_owned(),
                Actor {
                    user_id: "admin".into(),
                    project_id: "admin".into(),
                    roles: vec!["admin".into()],
                },
                aggregate_id.to_owned(),
            ),
            event,
        }
    }

    /// Appends `envs` to `topic`, all under one key (one partition: the
    /// service sees them in this order).
    async fn append(&self, topic: &str, envs: &[Envelope]) {
        let records = envs
            .iter()
            .map(|e| Record::new(topic, "poison-test", novalog_schemas::encode(e)))
            .collect();
        self.log.append(records).await.unwrap();
    }

    /// Waits until `topic` holds a record `pred` accepts.
    async fn wait_for(
        &self,
        topic: &str,
        what: &str,
        pred: impl Fn(&Envelope) -> bool,
    ) -> Envelope {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = read_topic(&self.log, topic)
                .await
                .unwrap()
                .into_iter()
                .find(|e| pred(e))
            {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} on {topic} after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The dead letters `consumer` wrote: (source offset, error).
    async fn dead_letters(&self, consumer: &str) -> Vec<(i64, String)> {
        read_topic(&self.log, &self.cfg.topics().dead_letter)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.event {
                Event::DeadLetter(d) if d.consumer == consumer => Some((d.offset, d.error)),
                _ => None,
            })
            .collect()
    }

    /// Checks the one dead letter of a poison record and that the marked
    /// record reached a handler exactly once.
    async fn assert_one_poison_dead_letter(&self, consumer: &str) {
        let dead = self.dead_letters(consumer).await;
        assert_eq!(dead.len(), 1, "{consumer}: {dead:?}");
        assert!(
            dead[0].1.starts_with("panic: poison record "),
            "{consumer}: {}",
            dead[0].1
        );
        assert_eq!(
            self.hits.load(Ordering::SeqCst),
            1,
            "{consumer}: handled once"
        );
    }
}

/// A service task started by a test, stopped by it.
struct Running {
    stop: ShutdownTrigger,
    task: tokio::task::JoinHandle<novalog_runtime::Result<()>>,
}

impl Running {
    fn spawn(
        run: impl FnOnce(Shutdown) -> futures::future::BoxFuture<'static, novalog_runtime::Result<()>>,
    ) -> Running {
        let (stop, shutdown) = Shutdown::new();
        Running {
            stop,
            task: tokio::spawn(run(shutdown)),
        }
    }

    /// Stops the service; it must not have failed (a panic escaping the
    /// loop would show here).
    async fn stop(self) {
        self.stop.trigger();
        self.task.await.unwrap().unwrap();
    }
}

fn flavor(id: &str) -> Flavor {
    Flavor {
        id: id.into(),
        name: id.into(),
        vcpus: 1,
        ram_mb: 64,
        disk_gb: 1,
        ephemeral_gb: 0,
        swap_mb: 0,
        rxtx_factor: 1.0,
        is_public: true,
        extra_specs: Default::default(),
        description: None,
    }
}

// ---- conductor ----

async fn conductor(bed: &Bed) -> Running {
    let (cfg, log, wrap) = (bed.cfg.clone(), bed.log.clone(), poisoned(&bed.hits));
    Running::spawn(move |shutdown| {
        Box::pin(
            async move { novalog_conductor::service::run_wrapped(&cfg, log, shutdown, wrap).await },
        )
    })
}

async fn conductor_survives_a_poison_intent(kafka: bool) {
    let Some(bed) = Bed::new(kafka).await else {
        return;
    };
    let topics = bed.cfg.topics();
    let created = |id: &'static str| move |e: &Envelope| matches!(&e.event, Event::Catalog(CatalogEvent::FlavorCreated(f)) if f.id == id);
    let service = conductor(&bed).await;
    let poison = bed.envelope(
        MARK,
        "poison",
        Event::Intent(Intent::FlavorCreateRequested(flavor("poison"))),
    );
    let after = bed.envelope(
        "req-after",
        "after",
        Event::Intent(Intent::FlavorCreateRequested(flavor("after"))),
    );
    bed.append(&topics.intents, &[poison.clone(), after]).await;
    bed.wait_for(&topics.catalog, "flavor after", created("after"))
        .await;
    bed.assert_one_poison_dead_letter("conductor").await;
    // The poisoned intent got its verdict: an internal error naming its
    // request.
    let verdict = bed
        .wait_for(&topics.instances, "verdict", |e| {
            e.meta.causation_id == Some(poison.meta.event_id)
        })
        .await;
    match verdict.event {
        Event::Instance(InstanceEvent::IntentRejected { kind, message, .. }) => {
            assert_eq!(kind, RejectionKind::Internal);
            assert!(message.contains(MARK), "{message}");
        }
        other => panic!("not a rejection: {other:?}"),
    }
    let catalog = read_topic(&bed.log, &topics.catalog).await.unwrap();
    assert!(!catalog.iter().any(created("poison")));
    service.stop().await;

    let service = conductor(&bed).await;
    let again = bed.envelope(
        "req-again",
        "again",
        Event::Intent(Intent::FlavorCreateRequested(flavor("again"))),
    );
    bed.append(&topics.intents, &[again]).await;
    bed.wait_for(&topics.catalog, "flavor again", created("again"))
        .await;
    bed.assert_one_poison_dead_letter("conductor").await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conductor_survives_a_poison_intent_embedded() {
    conductor_survives_a_poison_intent(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conductor_survives_a_poison_intent_kafka() {
    conductor_survives_a_poison_intent(true).await;
}

// ---- scheduler (both of its consumers) ----

async fn scheduler(bed: &Bed) -> Running {
    let (cfg, log) = (bed.cfg.clone(), bed.log.clone());
    let (facts, requests) = (poisoned(&bed.hits), poisoned(&bed.hits));
    Running::spawn(move |shutdown| {
        Box::pin(async move {
            novalog_scheduler::service::run_wrapped(&cfg, log, shutdown, facts, requests).await
        })
    })
}

fn host(name: &str) -> Event {
    Event::Host(HostEvent::HostRegistered(Box::new(HostRegistered {
        host: name.into(),
        capacity: Resources {
            vcpus: 8,
            memory_mb: 8192,
            disk_gb: 100,
        },
        usage: HostUsage::default(),
        cpu_arch: "x86_64".into(),
        hypervisor_type: "fake".into(),
        hypervisor_version: 1,
        availability_zone: "nova".into(),
        capabilities: Default::default(),
        driver: "fake".into(),
    })))
}

fn select(request_id: Uuid) -> Event {
    Event::Scheduler(SchedulerEvent::SelectHostsRequested(Box::new(
        SelectHostsRequested {
            request_id,
            instance_id: Uuid::new_v4(),
            project_id: "admin".into(),
            resources: Resources {
                vcpus: 1,
                memory_mb: 64,
                disk_gb: 1,
            },
            image_properties: Default::default(),
            extra_specs: Default::default(),
            availability_zone: None,
            ignore_hosts: Vec::new(),
            num_alternates: 0,
            scheduler_hints: Default::default(),
            server_group: None,
            image_id: None,
            flavor_name: "tiny".into(),
            requested_host: None,
        },
    )))
}

/// Waits for the scheduler's answer to request `id`: the hosts chosen.
async fn answer(bed: &Bed, id: Uuid) -> Vec<String> {
    let e = bed
        .wait_for(&bed.cfg.topics().scheduler, "answer", |e| {
            matches!(&e.event, Event::Scheduler(SchedulerEvent::HostsSelected { request_id, .. }) | Event::Scheduler(SchedulerEvent::NoValidHostFound { request_id, .. }) if *request_id == id)
        })
        .await;
    match e.event {
        Event::Scheduler(SchedulerEvent::HostsSelected { hosts, .. }) => hosts,
        other => panic!("no host for {id}: {other:?}"),
    }
}

async fn scheduler_survives_poison_facts_and_requests(kafka: bool) {
    let Some(bed) = Bed::new(kafka).await else {
        return;
    };
    let topics = bed.cfg.topics();
    let service = scheduler(&bed).await;
    // A poison fact, then a real one: the host is known afterwards.
    bed.append(
        &topics.hosts,
        &[
            bed.envelope(MARK, "h-poison", host("h-poison")),
            bed.envelope("req-h1", "h1", host("h1")),
        ],
    )
    .await;
    let first = Uuid::new_v4();
    bed.append(
        &topics.scheduler,
        &[bed.envelope("req-1", "i", select(first))],
    )
    .await;
    assert_eq!(answer(&bed, first).await, vec!["h1"]);
    bed.assert_one_poison_dead_letter("scheduler").await;
    // A poison request, then a real one: answered.
    let (poison, second) = (Uuid::new_v4(), Uuid::new_v4());
    bed.append(
        &topics.scheduler,
        &[
            bed.envelope(MARK, "i", select(poison)),
            bed.envelope("req-2", "i", select(second)),
        ],
    )
    .await;
    assert_eq!(answer(&bed, second).await, vec!["h1"]);
    let dead = bed.dead_letters("scheduler").await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(
        dead.iter()
            .all(|(_, e)| e.starts_with("panic: poison record"))
    );
    assert_eq!(bed.hits.load(Ordering::SeqCst), 2);
    service.stop().await;

    let service = scheduler(&bed).await;
    let third = Uuid::new_v4();
    bed.append(
        &topics.scheduler,
        &[bed.envelope("req-3", "i", select(third))],
    )
    .await;
    assert_eq!(answer(&bed, third).await, vec!["h1"]);
    assert_eq!(bed.dead_letters("scheduler").await.len(), 2);
    assert_eq!(bed.hits.load(Ordering::SeqCst), 2, "nothing replayed");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_survives_poison_facts_and_requests_embedded() {
    scheduler_survives_poison_facts_and_requests(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_survives_poison_facts_and_requests_kafka() {
    scheduler_survives_poison_facts_and_requests(true).await;
}

// ---- compute agent ----

async fn compute(bed: &Bed) -> Running {
    let (cfg, log, wrap) = (bed.cfg.clone(), bed.log.clone(), poisoned(&bed.hits));
    let driver = novalog_compute::service::driver(&cfg).unwrap();
    let agent = novalog_compute::service::Agent::register(&cfg, log, driver)
        .await
        .unwrap();
    Running::spawn(move |shutdown| Box::pin(agent.run_wrapped(shutdown, wrap)))
}

async fn compute_survives_a_poison_command(kafka: bool) {
    let Some(bed) = Bed::new(kafka).await else {
        return;
    };
    let topics = bed.cfg.topics();
    let host = novalog_compute::service::host_names(&bed.cfg)[0].clone();
    let destroy = |correlation: &str| {
        let id = Uuid::new_v4();
        bed.envelope(
            correlation,
            &id.to_string(),
            Event::Compute(ComputeCommand::DestroyInstance {
                instance_id: id,
                host: host.clone(),
            }),
        )
    };
    let destroyed = |cmd: &Envelope| {
        let id = cmd.meta.event_id;
        move |e: &Envelope| {
            e.meta.causation_id == Some(id)
                && matches!(
                    e.event,
                    Event::ComputeFact(ComputeFact::InstanceDestroyed { .. })
                )
        }
    };
    let service = compute(&bed).await;
    let after = destroy("req-after");
    bed.append(&topics.compute, &[destroy(MARK), after.clone()])
        .await;
    bed.wait_for(&topics.compute_events, "destroyed", destroyed(&after))
        .await;
    bed.assert_one_poison_dead_letter(&format!("compute-{}", agent_id(&bed.cfg)))
        .await;
    service.stop().await;

    let service = compute(&bed).await;
    let again = destroy("req-again");
    bed.append(&topics.compute, std::slice::from_ref(&again))
        .await;
    bed.wait_for(&topics.compute_events, "destroyed", destroyed(&again))
        .await;
    bed.assert_one_poison_dead_letter(&format!("compute-{}", agent_id(&bed.cfg)))
        .await;
    service.stop().await;
}

/// The agent's consumer name: its fake hosts' prefix and count.
fn agent_id(cfg: &Config) -> String {
    format!("{}{}", cfg.compute.fake_host_prefix, cfg.compute.fake_hosts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_survives_a_poison_command_embedded() {
    compute_survives_a_poison_command(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_survives_a_poison_command_kafka() {
    compute_survives_a_poison_command(true).await;
}

// ---- API projection ----

async fn api(bed: &Bed) -> (Running, Client) {
    let (stop, shutdown) = Shutdown::new();
    let handle = novalog_api::service::ApiService::start_wrapped(
        &bed.cfg,
        bed.log.clone(),
        shutdown,
        poisoned(&bed.hits),
    )
    .await
    .unwrap();
    let client = Client::admin(handle.local_addr());
    let task = tokio::spawn(handle.join());
    (Running { stop, task }, client)
}

async fn wait_flavor(client: &Client, id: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, _) = client
            .request(reqwest::Method::GET, &format!("/flavors/{id}"), None)
            .await
            .unwrap();
        if status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "flavor {id} not visible after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn api_projection_survives_a_poison_fact(kafka: bool) {
    let Some(bed) = Bed::new(kafka).await else {
        return;
    };
    let topics = bed.cfg.topics();
    let (service, client) = api(&bed).await;
    bed.append(
        &topics.catalog,
        &[
            bed.envelope(
                MARK,
                "poison",
                Event::Catalog(CatalogEvent::FlavorCreated(flavor("poison"))),
            ),
            bed.envelope(
                "req-after",
                "after",
                Event::Catalog(CatalogEvent::FlavorCreated(flavor("after"))),
            ),
        ],
    )
    .await;
    wait_flavor(&client, "after").await;
    let (status, _) = client
        .request(reqwest::Method::GET, "/flavors/poison", None)
        .await
        .unwrap();
    assert_eq!(status, 404, "the poison record applied nothing");
    bed.assert_one_poison_dead_letter("api").await;
    service.stop().await;

    let (service, client) = api(&bed).await;
    bed.append(
        &topics.catalog,
        &[bed.envelope(
            "req-again",
            "again",
            Event::Catalog(CatalogEvent::FlavorCreated(flavor("again"))),
        )],
    )
    .await;
    wait_flavor(&client, "again").await;
    bed.assert_one_poison_dead_letter("api").await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_projection_survives_a_poison_fact_embedded() {
    api_projection_survives_a_poison_fact(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_projection_survives_a_poison_fact_kafka() {
    api_projection_survives_a_poison_fact(true).await;
}
