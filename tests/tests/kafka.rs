//! End-to-end on Kafka: every service in its own process, on the broker
//! `make test` starts (NOVALOG_KAFKA_BROKERS).

use novalog_schemas::ComputeFact;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use novalog_schemas::Event;
use novalog_tests::{Client, ProcessCluster, demo_image_id, read_topic, skip_without_kafka};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(45);

/// Every service in its own process on `brokers`, each spawn taking
/// `spawn_latency_ms`.
async fn start(brokers: &str, spawn_latency_ms: u64) -> ProcessCluster {
    ProcessCluster::start(
        brokers,
        |cfg| cfg.compute.fake_spawn_latency_ms = spawn_latency_ms,
        &[],
        WAIT,
    )
    .await
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
    let cluster = start(&brokers, 0).await;
    let client = Client::admin(cluster.addr);
    let ids = create_many(&client, "k", 50).await;
    let built = match client.wait_built(&ids, WAIT).await {
        Ok(b) => b,
        Err(e) => {
            cluster.dump_logs(60);
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
    let mut cluster = start(&brokers, 400).await;
    let client = Client::admin(cluster.addr);
    let ids = create_many(&client, "crash", 50).await;

    cluster.kill("novalog-conductor");
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
            cluster.dump_logs(60);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_server_actions_and_quota_edge_across_processes() {
    let Some(brokers) = skip_without_kafka("kafka_server_actions_and_quota_edge_across_processes")
    else {
        return;
    };
    let cluster = start(&brokers, 0).await;
    let admin = Client::admin(cluster.addr);
    let alice = Client::new(cluster.addr, "alice", "p1");
    let id = alice
        .create_server("acts", "1", demo_image_id())
        .await
        .unwrap();
    if let Err(e) = alice.wait_built(&[id], WAIT).await {
        cluster.dump_logs(60);
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
        let s = alice.wait_status(id, status, WAIT).await;
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
