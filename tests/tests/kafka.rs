//! End-to-end on Kafka: every service in its own process, on the broker
//! `make test` starts (NOVALOG_KAFKA_BROKERS).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use novalog_schemas::{ComputeFact, Event};
use novalog_tests::{
    Client, Proc, demo_image_id, free_port, kafka_env, kafka_test_config_file, read_topic,
    skip_without_kafka, test_config,
};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(45);

struct Cluster {
    _dir: tempfile::TempDir,
    cfg: novalog_runtime::Config,
    env: Vec<(String, String)>,
    procs: HashMap<&'static str, Proc>,
    addr: SocketAddr,
}

impl Cluster {
    async fn start(brokers: &str, spawn_latency_ms: u64) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = test_config(dir.path());
        cfg.log.partitions = 4;
        cfg.log.backend = novalog_runtime::config::Backend::Kafka;
        cfg.log.bootstrap_servers = brokers.to_owned();
        cfg.api.listen = format!("127.0.0.1:{}", free_port());
        cfg.compute.fake_spawn_latency_ms = spawn_latency_ms;
        let mut env = kafka_env(&cfg, brokers);
        env.push(kafka_test_config_file(&cfg.data_dir));
        let mut c = Cluster {
            addr: cfg.api.listen.parse().unwrap(),
            _dir: dir,
            cfg,
            env,
            procs: HashMap::new(),
        };
        for name in [
            "novalog-conductor",
            "novalog-scheduler",
            "novalog-compute",
            "novalog-api",
        ] {
            c.start_proc(name);
        }
        Client::admin(c.addr).wait_up(WAIT).await.unwrap();
        c
    }

    fn start_proc(&mut self, name: &'static str) {
        let p = Proc::start(name, &self.env, self.cfg.data_dir.as_path()).unwrap();
        self.procs.insert(name, p);
    }

    async fn log(&self) -> std::sync::Arc<dyn novalog_log::EventLog> {
        novalog_runtime::backend::open_log(&self.cfg).await.unwrap()
    }

    fn dump_logs(&self) {
        for name in self.procs.keys() {
            let path = self.cfg.data_dir.join(format!("{name}.log"));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            eprintln!("---- {name} (last lines) ----");
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

async fn create_many(client: &Client, prefix: &str, n: usize) -> Vec<Uuid> {
    let creates = (0..n).map(|i| {
        let c = client.clone();
        let name = format!("{prefix}-{i}");
        async move { c.create_server(&name, "1", demo_image_id()).await }
    });
    futures::future::try_join_all(creates).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_processes_boot_50_then_delete_50() {
    let Some(brokers) = skip_without_kafka("kafka_processes_boot_50_then_delete_50") else {
        return;
    };
    let cluster = Cluster::start(&brokers, 0).await;
    let client = Client::admin(cluster.addr);
    let ids = create_many(&client, "k", 50).await;
    let built = match client.wait_built(&ids, WAIT).await {
        Ok(b) => b,
        Err(e) => {
            cluster.dump_logs();
            panic!("{e}");
        }
    };
    for (id, s) in &built {
        assert_eq!(s["status"], "ACTIVE", "{id}: {s}");
    }
    for id in &ids {
        client.delete_server(*id).await.unwrap();
    }
    client.wait_gone(&ids, WAIT).await.unwrap();
    assert!(client.servers_detail().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conductor_killed_mid_build_resumes_and_never_spawns_twice() {
    let Some(brokers) =
        skip_without_kafka("conductor_killed_mid_build_resumes_and_never_spawns_twice")
    else {
        return;
    };
    // Slow spawns keep the builds in flight when the conductor dies.
    let mut cluster = Cluster::start(&brokers, 400).await;
    let client = Client::admin(cluster.addr);
    let ids = create_many(&client, "crash", 50).await;

    cluster.procs.get_mut("novalog-conductor").unwrap().kill();
    let building = {
        let mut n = 0;
        for id in &ids {
            if client.server(*id).await.unwrap().unwrap()["status"] == "BUILD" {
                n += 1;
            }
        }
        n
    };
    assert!(
        building > 0,
        "the kill must land while builds are in flight"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.start_proc("novalog-conductor");

    let built = match client.wait_built(&ids, WAIT).await {
        Ok(b) => b,
        Err(e) => {
            cluster.dump_logs();
            panic!("{e}");
        }
    };
    for (id, s) in &built {
        assert_eq!(s["status"], "ACTIVE", "{id}: {s}");
    }

    let log = cluster.log().await;
    let events = read_topic(&log, &cluster.cfg.topics().compute_events)
        .await
        .unwrap();
    let mut spawned: HashMap<Uuid, HashSet<Uuid>> = HashMap::new();
    for e in &events {
        if let Event::ComputeFact(ComputeFact::InstanceSpawned { instance_id, .. }) = &e.event {
            spawned
                .entry(*instance_id)
                .or_default()
                .insert(e.meta.event_id);
        }
    }
    assert!(!events.is_empty());
    for id in &ids {
        assert_eq!(
            spawned.get(id).map_or(0, |s| s.len()),
            1,
            "{id} spawned exactly once"
        );
    }
}

/// Waits until `id` shows `status` with no task.
async fn wait_status(client: &Client, id: Uuid, status: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let s = client.server(id).await.unwrap().expect("server exists");
        if s["status"] == status && s["OS-EXT-STS:task_state"].is_null() {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "never {status}: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_server_actions_and_quota_edge_across_processes() {
    let Some(brokers) = skip_without_kafka("kafka_server_actions_and_quota_edge_across_processes")
    else {
        return;
    };
    let cluster = Cluster::start(&brokers, 0).await;
    let admin = Client::admin(cluster.addr);
    let alice = Client::new(cluster.addr, "alice", "p1");
    let id = alice
        .create_server("acts", "1", demo_image_id())
        .await
        .unwrap();
    if let Err(e) = alice.wait_built(&[id], WAIT).await {
        cluster.dump_logs();
        panic!("{e}");
    }
    use serde_json::json;
    for (body, status, power) in [
        (json!({"os-stop": null}), "SHUTOFF", 4),
        (json!({"os-start": null}), "ACTIVE", 1),
        (json!({"pause": null}), "PAUSED", 3),
        (json!({"unpause": null}), "ACTIVE", 1),
        (json!({"reboot": {"type": "SOFT"}}), "ACTIVE", 1),
    ] {
        let (code, reply, _) = alice.server_action(id, body.clone()).await.unwrap();
        assert_eq!(code, 202, "{body}: {reply}");
        let s = wait_status(&alice, id, status).await;
        assert_eq!(s["OS-EXT-STS:power_state"], power, "{body}");
    }
    let (code, reply, _) = alice
        .server_action(id, json!({"os-start": null}))
        .await
        .unwrap();
    assert_eq!(code, 409, "{reply}");
    let (_, list) = alice
        .request(
            reqwest::Method::GET,
            &format!("/servers/{id}/os-instance-actions"),
            None,
        )
        .await
        .unwrap();
    let names: Vec<&str> = list["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["reboot", "unpause", "pause", "start", "stop", "create"]
    );

    // The quota edge holds with every service in its own process.
    let (code, _) = admin
        .request(
            reqwest::Method::PUT,
            "/os-quota-sets/p1",
            Some(json!({"quota_set": {"instances": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(code, 200);
    let creates = (0..8).map(|i| {
        let c = alice.clone();
        async move {
            c.create_server(&format!("edge-{i}"), "1", demo_image_id())
                .await
        }
    });
    let results = futures::future::join_all(creates).await;
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(accepted, 2, "{results:?}");
    assert_eq!(alice.servers_detail().await.unwrap().len(), 3);
}
