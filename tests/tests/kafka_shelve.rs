//! Shelve, offload and unshelve survive a kill -9 of the conductor on
//! Kafka, every service in its own process: many servers are shelved (and
//! offloaded at once, `shelved_offload_time = 0`) and then unshelved while
//! the conductor is killed with SIGKILL mid-way and restarted. Afterwards
//! every server is where the saga leaves it with no task, each shelved
//! snapshot is deleted once its server is unshelved, and every host's
//! usage equals the flavors of the servers on it (an offload released its
//! claim, an unshelve took one, none twice).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use novalog_tests::{Client, ProcessCluster, demo_image_id, host_usage, skip_without_kafka};
use serde_json::json;
use uuid::Uuid;

const SERVERS: usize = 30;
const WAIT: Duration = Duration::from_secs(240);

async fn start(brokers: &str) -> ProcessCluster {
    ProcessCluster::start(
        brokers,
        |cfg| cfg.compute.fake_hosts = 4,
        &[
            ("NOVALOG_COMPUTE__FAKE_STEP_LATENCY_MS", "50"),
            ("NOVALOG_COMPUTE__FAKE_ACTION_LATENCY_MS", "50"),
            ("NOVALOG_CONDUCTOR__STEP_TIMEOUT", "30"),
            ("NOVALOG_CONDUCTOR__TIMER_TICK_MS", "200"),
            ("NOVALOG_INSTANCE_BUILD_TIMEOUT", "120"),
        ],
        WAIT,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shelve_offload_and_unshelve_survive_kill_9_of_the_conductor() {
    let Some(brokers) =
        skip_without_kafka("shelve_offload_and_unshelve_survive_kill_9_of_the_conductor")
    else {
        return;
    };
    let mut cluster = start(&brokers).await;
    let client = Client::admin(cluster.addr);
    let creates = (0..SERVERS).map(|i| {
        let c = client.clone();
        async move {
            c.create_server(&format!("sh-{i}"), "1", demo_image_id())
                .await
        }
    });
    let ids: Vec<Uuid> = futures::future::try_join_all(creates).await.unwrap();
    if let Err(e) = client.wait_built(&ids, WAIT).await {
        cluster.dump_logs(40);
        panic!("{e}");
    }

    // Shelve (snapshot, then offload at once) through a kill.
    let servers = cluster
        .all_at_once_through_a_kill(
            &client,
            &ids,
            json!({"shelve": null}),
            &["SHELVED_OFFLOADED", "ACTIVE"],
            WAIT,
        )
        .await;
    let offloaded = servers
        .iter()
        .filter(|s| s["status"] == "SHELVED_OFFLOADED")
        .count();
    assert!(offloaded > 0, "shelves ran to the end");
    for s in &servers {
        if s["status"] == "SHELVED_OFFLOADED" {
            assert!(s["OS-EXT-SRV-ATTR:host"].is_null(), "offloaded: {s}");
        }
    }
    let names = cluster.image_names().await;
    for s in servers
        .iter()
        .filter(|s| s["status"] == "SHELVED_OFFLOADED")
    {
        let want = format!("{}-shelved", s["name"].as_str().unwrap());
        assert!(names.contains(&want), "{want} in {names:?}");
    }

    // Unshelve (scheduled, spawned from the snapshot) through a kill.
    let servers = cluster
        .all_at_once_through_a_kill(
            &client,
            &ids,
            json!({"unshelve": null}),
            &["ACTIVE", "SHELVED_OFFLOADED"],
            WAIT,
        )
        .await;
    let active = servers.iter().filter(|s| s["status"] == "ACTIVE").count();
    assert_eq!(active, SERVERS, "every server is back");
    let names = cluster.image_names().await;
    assert!(
        !names.iter().any(|n| n.ends_with("-shelved")),
        "every shelved image is deleted once unshelved: {names:?}"
    );

    // Usage equals the flavors of the servers on each host.
    let log = cluster.log().await;
    let topics = cluster.cfg.topics();
    let mut expected: HashMap<String, (u64, u32)> = HashMap::new();
    for s in &servers {
        let host = s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned();
        let e = expected.entry(host).or_default();
        e.0 += 512;
        e.1 += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let usage = host_usage(&log, &topics).await;
        let actual: HashMap<String, (u64, u32)> = usage
            .iter()
            .filter(|(_, u)| u.instances > 0)
            .map(|(h, u)| (h.clone(), (u.memory_mb_used, u.instances)))
            .collect();
        if actual == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "host usage {actual:?} != flavors of their servers {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
