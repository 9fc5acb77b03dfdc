//! `novalog-replay` end to end, on both log backends: a cloud boots,
//! resizes and confirms, reboots and deletes servers; then verify, check,
//! history, state-at, export, tail and the dead letters are run over its
//! log. The embedded variant reads the log the way the binary does (a
//! read-only secondary of the running services' RocksDB).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use novalog_all_in_one::System;
use novalog_log::{EventLog, Record};
use novalog_replay::history::Subject;
use novalog_replay::rebuild::Service;
use novalog_replay::state_at::At;
use novalog_replay::{Error, Silent, Source};
use novalog_runtime::Config;
use novalog_schemas::{Actor, Envelope, Event, Intent, Meta, ServerAction};
use novalog_store::{StoreExt, Transaction};
use novalog_tests::{Client, demo_image_id, kafka_brokers, test_config};
use serde_json::json;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Embedded,
    Kafka,
}

/// A source over the test's log, as the binary would open it.
fn source(cfg: &Config, log: &Arc<dyn EventLog>, backend: Backend) -> Source {
    match backend {
        Backend::Embedded => Source::embedded(&cfg.data_dir.join("log"), cfg.topics()).unwrap(),
        Backend::Kafka => Source::log(log.clone(), cfg.topics()),
    }
}

async fn wait_status(c: &Client, id: Uuid, status: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = c.server(id).await.unwrap();
        if s.as_ref().is_some_and(|s| s["status"] == status) {
            return;
        }
        assert!(Instant::now() < deadline, "{id} never {status}: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn action(c: &Client, id: Uuid, body: serde_json::Value) {
    let (status, v, _) = c.server_action(id, body.clone()).await.unwrap();
    assert!(status == 202 || status == 204, "{body}: {status} {v}");
}

/// Waits until `topic` has at least `n` records.
async fn wait_records(log: &Arc<dyn EventLog>, topic: &str, n: i64) {
    let deadline = Instant::now() + WAIT;
    while log
        .end_offsets(topic)
        .await
        .map(|e| e.iter().sum::<i64>())
        .unwrap_or(0)
        < n
    {
        assert!(
            Instant::now() < deadline,
            "{topic} never reached {n} records"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the live api store has read everything in its topics, so
/// a verify compares a settled projection (it would pass mid-flight too;
/// settling makes "the key we changed" the only difference).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1_500)).await;
}

async fn scenario(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    if backend == Backend::Kafka {
        let Some(brokers) = kafka_brokers() else {
            eprintln!("skipped: NOVALOG_KAFKA_BROKERS is not set");
            return;
        };
        cfg.log.backend = novalog_runtime::config::Backend::Kafka;
        cfg.log.bootstrap_servers = brokers;
        cfg.log.partitions = 2;
    }
    // Deterministic heartbeats are not needed: the api folds them from the
    // log like everything else. Slow them to keep the log small.
    cfg.report_interval = 5;
    let system = System::start(&cfg, None).await.unwrap();
    let log = system.log.clone();
    let topics = cfg.topics();
    let c = Client::admin(system.api_addr);

    let before_create = novalog_schemas::now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let a = c.create_server("a", "1", demo_image_id()).await.unwrap();
    let b = c.create_server("b", "1", demo_image_id()).await.unwrap();
    c.wait_built(&[a, b], WAIT).await.unwrap();
    wait_status(&c, a, "ACTIVE").await;
    let old_flavor = c.server(a).await.unwrap().unwrap()["flavor"]["id"].clone();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before_resize = novalog_schemas::now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    action(&c, a, json!({"resize": {"flavorRef": "2"}})).await;
    wait_status(&c, a, "VERIFY_RESIZE").await;
    action(&c, a, json!({"confirmResize": null})).await;
    wait_status(&c, a, "ACTIVE").await;
    let new_flavor = c.server(a).await.unwrap().unwrap()["flavor"]["id"].clone();
    assert_ne!(old_flavor, new_flavor);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let after_confirm = novalog_schemas::now_ms();
    action(&c, a, json!({"reboot": {"type": "SOFT"}})).await;
    wait_status(&c, a, "ACTIVE").await;
    c.delete_server(b).await.unwrap();
    c.wait_gone(&[b], WAIT).await.unwrap();
    settle().await;

    // verify: every live projection is what the log says.
    let src = source(&cfg, &log, backend);
    let verified = novalog_replay::rebuild::verify(&src, &cfg, &cfg.data_dir, &ALL, None, &Silent)
        .await
        .unwrap();
    assert_eq!(verified.len(), ALL.len());
    for v in &verified {
        assert!(v.stats.records > 0, "{:?} folded nothing", v.service);
        assert!(
            v.differences.is_empty(),
            "rebuilt {:?} store differs: {:?}",
            v.service,
            v.differences
                .iter()
                .map(|d| format!(
                    "{}: live {} / log {}",
                    novalog_replay::rebuild::show_key(d),
                    novalog_replay::rebuild::show_value(&d.table, d.a.as_deref()),
                    novalog_replay::rebuild::show_value(&d.table, d.b.as_deref())
                ))
                .collect::<Vec<_>>()
        );
    }

    // check: every invariant holds.
    let report = novalog_replay::check::check(&src, &Silent).await.unwrap();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert!(report.records > 20);

    // history of the create's request id: intent → acceptance → decision
    // → claim → spawn → ACTIVE, in that order.
    let of_a = novalog_replay::history::entries(&src, &Subject::Server(a), &Silent)
        .await
        .unwrap();
    let req = of_a
        .iter()
        .find(|e| e.env.event.type_name() == "ServerCreateRequested")
        .expect("the create intent is in a's history")
        .env
        .meta
        .correlation_id
        .clone();
    let flow = novalog_replay::history::entries(&src, &Subject::Request(req.clone()), &Silent)
        .await
        .unwrap();
    let types: Vec<&str> = flow.iter().map(|e| e.env.event.type_name()).collect();
    let want = [
        "ServerCreateRequested",
        "InstanceCreated",
        "HostsSelected",
        "ClaimSucceeded",
        "InstanceSpawned",
        "InstanceBecameActive",
    ];
    let mut at = 0;
    for w in want {
        let pos = types[at..]
            .iter()
            .position(|t| *t == w)
            .unwrap_or_else(|| panic!("{w} missing after {:?} in {types:?}", &types[..at]));
        at += pos + 1;
    }
    let active = flow
        .iter()
        .find(|e| e.env.event.type_name() == "InstanceBecameActive")
        .unwrap();
    assert_eq!(active.state.as_ref().unwrap().vm_state, "active");
    assert!(flow.iter().all(|e| e.env.meta.correlation_id == req));
    let mut table = Vec::new();
    novalog_replay::history::print(&flow, false, &topics.namespace, &mut table).unwrap();
    assert!(
        String::from_utf8(table)
            .unwrap()
            .contains("InstanceBecameActive")
    );
    assert!(matches!(
        novalog_replay::history::entries(&src, &Subject::Request("req-nope".into()), &Silent).await,
        Err(Error::BadInput(_))
    ));

    // state-at: old flavor before the resize, new after the confirm,
    // "did not exist yet" before the create.
    let index_dir = tempfile::tempdir().unwrap();
    let index = novalog_replay::index::Index::open(index_dir.path()).unwrap();
    let flavor_at = |t: i64| {
        let (src, index) = (&src, &index);
        async move {
            let inst = novalog_replay::state_at::instance_at(src, index, a, &At::Time(t))
                .await
                .unwrap();
            let v = novalog_api::microversion::ApiVersion::new(2, 1);
            novalog_replay::state_at::server_body(&inst, v, t)["server"]["flavor"]["id"].clone()
        }
    };
    assert_eq!(flavor_at(before_resize).await, old_flavor);
    assert_eq!(flavor_at(after_confirm).await, new_flavor);
    let gone =
        novalog_replay::state_at::instance_at(&src, &index, a, &At::Time(before_create)).await;
    match gone {
        Err(Error::BadInput(m)) => assert!(m.contains("did not exist yet"), "{m}"),
        other => panic!("before the create: {other:?}"),
    }
    assert!(matches!(
        novalog_replay::state_at::instance_at(
            &src,
            &index,
            Uuid::new_v4(),
            &At::Time(after_confirm)
        )
        .await,
        Err(Error::BadInput(_))
    ));

    // export of a topic: exactly its record count.
    let ends: i64 = log
        .end_offsets(&topics.instances)
        .await
        .unwrap()
        .iter()
        .sum();
    let mut buf = Vec::new();
    let filter = novalog_replay::export::Filter {
        topic: Some(topics.instances.clone()),
        ..Default::default()
    };
    let n = novalog_replay::export::export(
        &src,
        novalog_replay::export::Format::Jsonl,
        &filter,
        &mut buf,
        &Silent,
    )
    .await
    .unwrap();
    assert_eq!(n as i64, ends);
    assert_eq!(String::from_utf8(buf).unwrap().lines().count() as i64, ends);

    // tail --follow prints a record appended after it started.
    let shared = Arc::new(Mutex::new(Vec::<u8>::new()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let tail = {
        let (cfg, log, shared) = (cfg.clone(), log.clone(), shared.clone());
        tokio::spawn(async move {
            let src = source(&cfg, &log, backend);
            let mut w = SharedBuf(shared);
            novalog_replay::export::tail(
                &src,
                &[cfg.topics().intents.clone()],
                0,
                true,
                &mut w,
                async {
                    let _ = stop_rx.await;
                },
            )
            .await
            .unwrap();
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    action(&c, a, json!({"os-stop": null})).await;
    let deadline = Instant::now() + WAIT;
    while !String::from_utf8_lossy(&shared.lock().unwrap()).contains("ServerActionRequested") {
        assert!(
            Instant::now() < deadline,
            "tail --follow never printed the stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(());
    tail.await.unwrap();
    wait_status(&c, a, "SHUTOFF").await;

    // An undecodable intent: check reports it, the conductor dead-letters
    // it and keeps going, dead-letters list shows it, and a fixed copy
    // redriven is applied.
    let dead_before: i64 = log
        .end_offsets(&topics.dead_letter)
        .await
        .map(|e| e.iter().sum())
        .unwrap_or(0);
    let project = "admin";
    let pos = log
        .append(vec![Record::new(
            &topics.intents,
            project,
            b"\x08\xff\xff not protobuf".to_vec(),
        )])
        .await
        .unwrap()[0];
    wait_records(&log, &topics.dead_letter, dead_before + 1).await;
    let src = source(&cfg, &log, backend);
    let report = novalog_replay::check::check(&src, &Silent).await.unwrap();
    let bad = format!("{}/{}/{}", topics.intents, pos.partition, pos.offset);
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.rule == "decode" && v.at.to_string() == bad),
        "{:?}",
        report.violations
    );
    let letters = novalog_replay::dead_letters::list(&src).await.unwrap();
    let letter = letters
        .iter()
        .find(|l| l.letter.source_topic == topics.intents && l.letter.offset == pos.offset)
        .expect("the bad intent is a dead letter");
    assert_eq!(letter.letter.consumer, "conductor");
    let fixed = Envelope {
        meta: Meta::origin(
            Uuid::new_v4(),
            "req-redriven".into(),
            Actor {
                user_id: "admin".into(),
                project_id: project.into(),
                roles: vec!["admin".into()],
            },
            a.to_string(),
        ),
        event: Event::Intent(Intent::ServerActionRequested {
            instance_id: a,
            action: ServerAction::Start,
        }),
    };
    // Redrive appends; on the embedded log the services hold the writer,
    // so it goes through their log, as the binary does once they stop.
    let writable = Source::log(log.clone(), cfg.topics());
    novalog_replay::dead_letters::redrive(
        &writable,
        &letter.id.to_string(),
        Some(novalog_schemas::encode(&fixed)),
    )
    .await
    .unwrap();
    wait_status(&c, a, "ACTIVE").await;
    settle().await;

    // A live projection key changed behind the service's back: verify
    // names it, in the api's projection and in the conductor's.
    system.stop().await.unwrap();
    for service in ["api", "conductor"] {
        let store = novalog_store::RocksStore::open(cfg.data_dir.join(service), false).unwrap();
        let mut inst: novalog_schemas::Instance =
            store.get("instances", a.as_bytes()).unwrap().unwrap();
        inst.name = "tampered".into();
        let mut tx = Transaction::new();
        tx.put("instances", a.as_bytes(), &inst).unwrap();
        novalog_store::Store::commit(&store, tx).unwrap();
    }
    let src = source(&cfg, &log, backend);
    let verified = novalog_replay::rebuild::verify(&src, &cfg, &cfg.data_dir, &ALL, None, &Silent)
        .await
        .unwrap();
    for v in &verified {
        let keys: Vec<String> = v
            .differences
            .iter()
            .map(novalog_replay::rebuild::show_key)
            .collect();
        match v.service {
            Service::Api | Service::Conductor => {
                assert_eq!(keys, vec![format!("instances/{a}")], "{:?}", v.service)
            }
            Service::Scheduler | Service::Compute | Service::Billing => {
                assert!(keys.is_empty(), "{:?}: {keys:?}", v.service)
            }
        }
    }
}

/// Every projection `verify` folds again.
const ALL: [Service; 4] = [
    Service::Api,
    Service::Conductor,
    Service::Scheduler,
    Service::Compute,
];

/// The differences `verify` found, per service, as printable keys.
fn differing_keys(verified: &[novalog_replay::rebuild::Verified]) -> Vec<(Service, Vec<String>)> {
    verified
        .iter()
        .map(|v| {
            let keys = v
                .differences
                .iter()
                .map(|d| {
                    format!(
                        "{}: live {} / log {}",
                        novalog_replay::rebuild::show_key(d),
                        novalog_replay::rebuild::show_value(&d.table, d.a.as_deref()),
                        novalog_replay::rebuild::show_value(&d.table, d.b.as_deref()),
                    )
                })
                .collect();
            (v.service, keys)
        })
        .collect()
}

fn host_of(server: &serde_json::Value) -> String {
    server["OS-EXT-SRV-ATTR:host"]
        .as_str()
        .expect("an admin sees the host")
        .to_owned()
}

/// The scheduler's projection folds again from the log with the others: a
/// cloud that boots, resizes and confirms, resizes and reverts,
/// live-migrates, reboots and deletes servers verifies byte-equal, running
/// and stopped; a scheduler host row changed behind its back is named.
async fn scheduler_verifies(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    if backend == Backend::Kafka {
        let Some(brokers) = kafka_brokers() else {
            eprintln!("skipped: NOVALOG_KAFKA_BROKERS is not set");
            return;
        };
        cfg.log.backend = novalog_runtime::config::Backend::Kafka;
        cfg.log.bootstrap_servers = brokers;
        cfg.log.partitions = 2;
    }
    cfg.report_interval = 5;
    let system = System::start(&cfg, None).await.unwrap();
    let log = system.log.clone();
    let c = Client::admin(system.api_addr);

    let a = c.create_server("a", "1", demo_image_id()).await.unwrap();
    let b = c.create_server("b", "1", demo_image_id()).await.unwrap();
    let d = c.create_server("d", "1", demo_image_id()).await.unwrap();
    c.wait_built(&[a, b, d], WAIT).await.unwrap();
    wait_status(&c, a, "ACTIVE").await;
    action(&c, a, json!({"resize": {"flavorRef": "2"}})).await;
    wait_status(&c, a, "VERIFY_RESIZE").await;
    action(&c, a, json!({"confirmResize": null})).await;
    wait_status(&c, a, "ACTIVE").await;
    wait_status(&c, d, "ACTIVE").await;
    action(&c, d, json!({"resize": {"flavorRef": "2"}})).await;
    wait_status(&c, d, "VERIFY_RESIZE").await;
    action(&c, d, json!({"revertResize": null})).await;
    wait_status(&c, d, "ACTIVE").await;
    let from = host_of(&c.server(a).await.unwrap().unwrap());
    action(
        &c,
        a,
        json!({"os-migrateLive": {"host": null, "block_migration": "auto"}}),
    )
    .await;
    let deadline = Instant::now() + WAIT;
    let on = loop {
        let s = c.server(a).await.unwrap().unwrap();
        if s["status"] == "ACTIVE" && host_of(&s) != from {
            break host_of(&s);
        }
        assert!(Instant::now() < deadline, "never live-migrated: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    action(&c, a, json!({"reboot": {"type": "SOFT"}})).await;
    wait_status(&c, a, "ACTIVE").await;
    c.delete_server(b).await.unwrap();
    c.wait_gone(&[b], WAIT).await.unwrap();
    settle().await;

    // Running: every projection, the scheduler's included, is the log's.
    let src = source(&cfg, &log, backend);
    let verified = novalog_replay::rebuild::verify(&src, &cfg, &cfg.data_dir, &ALL, None, &Silent)
        .await
        .unwrap();
    assert_eq!(verified.len(), ALL.len());
    for v in &verified {
        assert!(v.stats.records > 0, "{:?} folded nothing", v.service);
    }
    let diffs = differing_keys(&verified);
    assert!(diffs.iter().all(|(_, k)| k.is_empty()), "{diffs:?}");
    // A rebuild of the scheduler alone gives the live rows too, and the
    // server is on the host it live-migrated to there.
    let into = dir.path().join("rebuilt-scheduler");
    novalog_replay::rebuild::rebuild(&src, &cfg, Service::Scheduler, &into, None, &Silent)
        .await
        .unwrap();
    {
        let rebuilt = novalog_store::RocksStore::open(&into, false).unwrap();
        let row: novalog_scheduler::HostState =
            rebuilt.get("hosts_v2", on.as_bytes()).unwrap().unwrap();
        assert!(row.instances.contains(&a), "{on}: {:?}", row.instances);
        let rows = rebuilt
            .scan::<novalog_scheduler::HostState>("hosts_v2")
            .unwrap();
        assert!(
            rows.iter().all(|(_, h)| !h.instances.contains(&b)),
            "a deleted server is on no host"
        );
    }

    // Stopped: the same, then a scheduler row changed behind its back is
    // named, and nothing else.
    system.stop().await.unwrap();
    let src = source(&cfg, &log, backend);
    let verified = novalog_replay::rebuild::verify(&src, &cfg, &cfg.data_dir, &ALL, None, &Silent)
        .await
        .unwrap();
    let diffs = differing_keys(&verified);
    assert!(diffs.iter().all(|(_, k)| k.is_empty()), "{diffs:?}");
    {
        let store = novalog_store::RocksStore::open(cfg.data_dir.join("scheduler"), false).unwrap();
        let mut row: novalog_scheduler::HostState =
            store.get("hosts_v2", on.as_bytes()).unwrap().unwrap();
        row.instances.remove(&a);
        let mut tx = Transaction::new();
        tx.put("hosts_v2", on.as_bytes(), &row).unwrap();
        novalog_store::Store::commit(&store, tx).unwrap();
    }
    let src = source(&cfg, &log, backend);
    let verified = novalog_replay::rebuild::verify(&src, &cfg, &cfg.data_dir, &ALL, None, &Silent)
        .await
        .unwrap();
    for v in &verified {
        let keys: Vec<String> = v
            .differences
            .iter()
            .map(novalog_replay::rebuild::show_key)
            .collect();
        match v.service {
            Service::Scheduler => {
                assert_eq!(keys, vec![format!("hosts_v2/{on}")]);
                let d = &v.differences[0];
                let shown = novalog_replay::rebuild::show_value(&d.table, d.b.as_deref());
                assert!(shown.contains(&a.to_string()), "decoded: {shown}");
            }
            Service::Api | Service::Conductor | Service::Compute | Service::Billing => {
                assert!(keys.is_empty(), "{:?}: {keys:?}", v.service)
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_verifies_on_the_embedded_log() {
    scheduler_verifies(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_verifies_on_kafka() {
    scheduler_verifies(Backend::Kafka).await;
}

struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_tools_on_the_embedded_log() {
    scenario(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_tools_on_kafka() {
    scenario(Backend::Kafka).await;
}

/// Kafka topics are created to be kept forever, and a service refuses a
/// topic whose retention would delete history unless the operator opted
/// out.
#[tokio::test]
async fn a_topic_that_deletes_history_is_refused_at_start() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let Some(brokers) = kafka_brokers() else {
        eprintln!("skipped: NOVALOG_KAFKA_BROKERS is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.log.backend = novalog_runtime::config::Backend::Kafka;
    cfg.log.bootstrap_servers = brokers.clone();

    // Topics Novalog creates: nothing to refuse.
    let log = novalog_runtime::backend::open_log(&cfg).await.unwrap();
    let names: Vec<String> = cfg.topics().all().into_iter().map(str::to_owned).collect();
    assert_eq!(
        log.retention_problems(&names).await.unwrap(),
        Vec::<String>::new()
    );

    // A topic made by hand with a week's retention, in a new namespace.
    cfg.log.namespace = format!("t{}.", Uuid::new_v4().simple());
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let instances = cfg.topics().instances.clone();
    let topic =
        NewTopic::new(&instances, 1, TopicReplication::Fixed(1)).set("retention.ms", "604800000");
    admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .unwrap()
        .into_iter()
        .for_each(|r| {
            r.unwrap();
        });
    let refused = novalog_runtime::backend::open_log(&cfg)
        .await
        .err()
        .expect("refused");
    let message = refused.to_string();
    assert!(message.contains(&instances), "{message}");
    assert!(message.contains("retention.ms=604800000"), "{message}");
    cfg.log.allow_deleting_retention = true;
    novalog_runtime::backend::open_log(&cfg).await.unwrap();
}

/// `rebuild all` folds its services side by side; each store must be what
/// that service's rebuild alone gives, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_all_side_by_side_gives_each_service_its_rebuild_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.report_interval = 5;
    let system = System::start(&cfg, None).await.unwrap();
    let c = Client::admin(system.api_addr);
    let a = c.create_server("a", "1", demo_image_id()).await.unwrap();
    let b = c.create_server("b", "1", demo_image_id()).await.unwrap();
    c.wait_built(&[a, b], WAIT).await.unwrap();
    wait_status(&c, a, "ACTIVE").await;
    action(&c, a, json!({"resize": {"flavorRef": "2"}})).await;
    wait_status(&c, a, "VERIFY_RESIZE").await;
    action(&c, a, json!({"confirmResize": null})).await;
    wait_status(&c, a, "ACTIVE").await;
    c.delete_server(b).await.unwrap();
    c.wait_gone(&[b], WAIT).await.unwrap();
    settle().await;
    // Stopped, so both rebuilds read the same log.
    system.stop().await.unwrap();

    let src = Source::embedded(&cfg.data_dir.join("log"), cfg.topics()).unwrap();
    let services = Service::parse("all").unwrap();
    let out = tempfile::tempdir().unwrap();
    let together = out.path().join("together");
    let all = novalog_replay::rebuild::rebuild_all(&src, &cfg, &services, &together, |_| {
        Arc::new(Silent) as Arc<dyn novalog_replay::Progress>
    })
    .await
    .unwrap();
    assert_eq!(all.services.len(), services.len());
    for (service, stats) in &all.services {
        assert!(stats.records > 0, "{service:?} folded nothing");
        let alone = out.path().join("alone").join(service.dir_name());
        novalog_replay::rebuild::rebuild(&src, &cfg, *service, &alone, None, &Silent)
            .await
            .unwrap();
        let differences =
            novalog_replay::rebuild::diff(&together.join(service.dir_name()), &alone).unwrap();
        assert!(
            differences.is_empty(),
            "{service:?}: {:?}",
            differences
                .iter()
                .map(novalog_replay::rebuild::show_key)
                .collect::<Vec<_>>()
        );
    }
}
