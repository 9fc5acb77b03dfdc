//! Two scheduler processes in one consumer group on Kafka, over a nearly
//! full cloud: the compute agent's claims settle every race between their
//! decisions, so no host is ever committed beyond its allocation ratios and
//! every request ends ACTIVE or "No valid host".

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use novalog_schemas::{ComputeFact, Event, HostEvent};
use novalog_tests::{
    Client, Proc, demo_image_id, free_port, kafka_env, kafka_test_config_file, read_topic,
    skip_without_kafka, test_config,
};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(45);
const HOSTS: usize = 4;
const MEMORY_MB: u64 = 2048;
const VCPUS: u64 = 4;
const DISK_GB: u64 = 40;
const RAM_RATIO: f64 = 1.5;
const CPU_RATIO: f64 = 16.0;
const DISK_RATIO: f64 = 1.0;
const REQUESTS: usize = 40;

fn with_data_dir(env: &[(String, String)], dir: &Path) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| {
            if k == "NOVALOG_DATA_DIR" {
                (k.clone(), dir.display().to_string())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

fn dump(logs: &[PathBuf]) {
    for path in logs {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        eprintln!("---- {} (last lines) ----", path.display());
        for l in tail.into_iter().rev() {
            eprintln!("{l}");
        }
    }
}

/// Waits until `log_file` has a line with every one of `needles`.
async fn wait_log_line(log_file: &Path, needles: &[&str], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(log_file).unwrap_or_default();
        if text.lines().any(|l| needles.iter().all(|n| l.contains(n))) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_never_overcommit_a_nearly_full_cloud() {
    let Some(brokers) = skip_without_kafka("two_schedulers_never_overcommit_a_nearly_full_cloud")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.log.partitions = 4;
    cfg.log.backend = novalog_runtime::config::Backend::Kafka;
    cfg.log.bootstrap_servers = brokers.clone();
    cfg.api.listen = format!("127.0.0.1:{}", free_port());
    cfg.compute.fake_hosts = HOSTS;
    // Builds stay in flight a while, so decisions overlap.
    cfg.compute.fake_spawn_latency_ms = 100;
    let mut env = kafka_env(&cfg, &brokers);
    env.push(kafka_test_config_file(&cfg.data_dir));
    for (k, v) in [
        ("NOVALOG_COMPUTE__MEMORY_MB", MEMORY_MB),
        ("NOVALOG_COMPUTE__VCPUS", VCPUS),
        ("NOVALOG_COMPUTE__DISK_GB", DISK_GB),
    ] {
        env.push((k.into(), v.to_string()));
    }
    let data = cfg.data_dir.clone();
    let mut procs = Vec::new();
    let mut logs = Vec::new();
    let mut start = |name: &str, env: &[(String, String)], log: PathBuf| {
        procs.push(Proc::start_logging_to(name, env, &log).unwrap());
        logs.push(log);
    };
    start("novalog-conductor", &env, data.join("conductor.log"));
    start("novalog-compute", &env, data.join("compute.log"));

    // Every host registered before the schedulers start: a starting
    // scheduler reads the host facts before it answers.
    let log = novalog_runtime::backend::open_log(&cfg).await.unwrap();
    let topics = cfg.topics();
    let deadline = Instant::now() + WAIT;
    loop {
        let hosts: HashSet<String> = read_topic(&log, &topics.hosts)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| match e.event {
                Event::Host(HostEvent::HostRegistered(r)) => Some(r.host),
                _ => None,
            })
            .collect();
        if hosts.len() == HOSTS {
            break;
        }
        assert!(Instant::now() < deadline, "hosts not registered: {hosts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let scheduler_logs: Vec<PathBuf> = (1..=2)
        .map(|i| data.join(format!("scheduler-{i}.log")))
        .collect();
    for (i, log_file) in scheduler_logs.iter().enumerate() {
        // Each replica has its own store: its own data directory.
        let own = data.join(format!("scheduler-{}", i + 1));
        let mut e = with_data_dir(&env, &own);
        e.push(("RUST_LOG".into(), "info,novalog_log=debug".into()));
        start("novalog-scheduler", &e, log_file.clone());
    }
    start("novalog-api", &env, data.join("api.log"));
    let client = Client::admin(cfg.api.listen.parse().unwrap());
    if let Err(e) = client.wait_up(WAIT).await {
        dump(&logs);
        panic!("{e}");
    }
    // Both replicas hold part of the requests' partitions before the
    // requests come (the second one's assignment ends the rebalance).
    let requests_topic = format!("\"{}\"", topics.scheduler);
    for log_file in &scheduler_logs {
        if !wait_log_line(log_file, &["partitions assigned", &requests_topic], WAIT).await {
            dump(&logs);
            panic!("{} never got a requests partition", log_file.display());
        }
    }

    let (status, flavor) = client
        .request(reqwest::Method::GET, "/flavors/1", None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{flavor}");
    let ram = flavor["flavor"]["ram"].as_u64().unwrap();
    let vcpus = flavor["flavor"]["vcpus"].as_u64().unwrap();
    let disk = flavor["flavor"]["disk"].as_u64().unwrap();
    let ram_cap = MEMORY_MB as f64 * RAM_RATIO;
    let cpu_cap = VCPUS as f64 * CPU_RATIO;
    let disk_cap = DISK_GB as f64 * DISK_RATIO;
    let per_host = [
        ram_cap / ram as f64,
        cpu_cap / vcpus as f64,
        if disk == 0 {
            f64::INFINITY
        } else {
            disk_cap / disk as f64
        },
    ]
    .into_iter()
    .fold(f64::INFINITY, f64::min)
    .floor() as usize;
    let capacity = per_host * HOSTS;
    assert!(REQUESTS > capacity, "the cloud must be too small");

    let creates = (0..REQUESTS).map(|i| {
        let c = client.clone();
        async move {
            c.create_server(&format!("race-{i}"), "1", demo_image_id())
                .await
        }
    });
    let ids = futures::future::try_join_all(creates).await.unwrap();
    let built = match client.wait_built(&ids, WAIT).await {
        Ok(b) => b,
        Err(e) => {
            dump(&logs);
            panic!("{e}");
        }
    };

    // Every request ends ACTIVE or "No valid host".
    let mut active_on: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors = 0;
    for (id, s) in &built {
        match s["status"].as_str() {
            Some("ACTIVE") => {
                let host = s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned();
                *active_on.entry(host).or_default() += 1;
            }
            Some("ERROR") => {
                let msg = s["fault"]["message"].as_str().unwrap_or_default();
                assert!(msg.starts_with("No valid host was found"), "{id}: {s}");
                errors += 1;
            }
            _ => panic!("{id}: {s}"),
        }
    }
    let active: usize = active_on.values().sum();

    // No host holds more than its ratios allow...
    for (host, n) in &active_on {
        let n = *n as f64;
        assert!(n * ram as f64 <= ram_cap, "{host}: {n} × {ram} MB");
        assert!(n * vcpus as f64 <= cpu_cap, "{host}: {n} × {vcpus} vCPU");
        assert!(n * disk as f64 <= disk_cap, "{host}: {n} × {disk} GB");
    }
    // ...and no claim ever took one beyond them, as the agent reported
    // each usage.
    let events = read_topic(&log, &topics.compute_events).await.unwrap();
    let mut last: HashMap<String, novalog_schemas::HostUsage> = HashMap::new();
    let mut claim_failures = 0;
    for e in &events {
        let (host, usage) = match &e.event {
            Event::ComputeFact(ComputeFact::ClaimSucceeded { host, usage, .. }) => (host, usage),
            Event::ComputeFact(ComputeFact::ClaimFailed { host, usage, .. }) => {
                claim_failures += 1;
                (host, usage)
            }
            Event::ComputeFact(ComputeFact::SpawnFailed { host, usage, .. })
            | Event::ComputeFact(ComputeFact::InstanceDestroyed { host, usage, .. }) => {
                (host, usage)
            }
            _ => continue,
        };
        assert!(
            usage.memory_mb_used as f64 <= ram_cap
                && usage.vcpus_used as f64 <= cpu_cap
                && usage.disk_gb_used as f64 <= disk_cap,
            "{host} committed beyond its ratios: {usage:?}"
        );
        let slot = last.entry(host.clone()).or_default();
        if usage.generation >= slot.generation {
            *slot = *usage;
        }
    }
    // The agent's final books agree with what is ACTIVE: no claim leaked.
    for (host, usage) in &last {
        let n = active_on.get(host).copied().unwrap_or(0) as u64;
        assert_eq!(usage.memory_mb_used, n * ram, "{host}: {usage:?}");
        assert_eq!(u64::from(usage.instances), n, "{host}: {usage:?}");
    }
    // Instances that lost a race somewhere and still ended ACTIVE.
    let mut rescued = 0;
    let failed_claims: HashSet<Uuid> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::ComputeFact(ComputeFact::ClaimFailed { instance_id, .. }) => Some(*instance_id),
            _ => None,
        })
        .collect();
    for id in &failed_claims {
        if built.get(id).is_some_and(|s| s["status"] == "ACTIVE") {
            rescued += 1;
        }
    }

    eprintln!(
        "capacity {capacity} ({per_host}/host): {active} ACTIVE, {errors} no valid host; \
         {claim_failures} lost claims, {rescued} instances rescheduled to ACTIVE after one; \
         per host {active_on:?}"
    );

    // Both replicas decided.
    for log_file in &scheduler_logs {
        let text = std::fs::read_to_string(log_file).unwrap_or_default();
        assert!(
            text.contains("scheduler decisions"),
            "{} made no decision",
            log_file.display()
        );
    }
    // The room left, and the room a delete frees, is usable whichever
    // replica answers: every replica knows every host. Sequential creates
    // fill it exactly, and the next one finds no host.
    let emptied = active_on.keys().next().cloned().unwrap();
    let on_emptied: Vec<Uuid> = built
        .iter()
        .filter(|(_, s)| s["OS-EXT-SRV-ATTR:host"] == emptied.as_str() && s["status"] == "ACTIVE")
        .map(|(id, _)| *id)
        .collect();
    for id in &on_emptied {
        client.delete_server(*id).await.unwrap();
    }
    client.wait_gone(&on_emptied, WAIT).await.unwrap();
    // Let the schedulers fold the releases (and a heartbeat) first.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let room = capacity - active + on_emptied.len();
    for i in 0..=room {
        let id = client
            .create_server(&format!("top-{i}"), "1", demo_image_id())
            .await
            .unwrap();
        let s = client
            .wait_built(&[id], WAIT)
            .await
            .unwrap()
            .remove(&id)
            .unwrap();
        if i < room {
            assert_eq!(s["status"], "ACTIVE", "room {i} of {room} not used: {s}");
        } else {
            assert_eq!(
                s["status"], "ERROR",
                "the cloud holds more than {capacity}: {s}"
            );
        }
    }
    drop(procs);
}
