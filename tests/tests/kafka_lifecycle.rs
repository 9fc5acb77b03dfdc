//! createImage and soft delete survive a kill -9 of the conductor on
//! Kafka, every service in its own process: servers are snapshotted while
//! the conductor is killed and restarted (every snapshot ends active with
//! the guest's bytes, none stays queued or saving, no server keeps a
//! task); then deleted softly and restored through a kill; then deleted
//! again, the conductor killed while their reclaim deadlines wait, and
//! every server is still reclaimed (the deadlines are records on the log,
//! not timers in a process).

use std::time::{Duration, Instant};

use novalog_tests::{Client, ProcessCluster, demo_image_id, skip_without_kafka};
use serde_json::json;
use uuid::Uuid;

const SERVERS: usize = 12;
const WAIT: Duration = Duration::from_secs(240);
/// Long enough to restore through a kill, short enough to wait out.
const RECLAIM_S: &str = "20";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_and_soft_deletes_survive_kill_9_of_the_conductor() {
    let Some(brokers) =
        skip_without_kafka("snapshots_and_soft_deletes_survive_kill_9_of_the_conductor")
    else {
        return;
    };
    let mut cluster = ProcessCluster::start(
        &brokers,
        |cfg| cfg.compute.fake_hosts = 3,
        &[
            ("NOVALOG_COMPUTE__FAKE_STEP_LATENCY_MS", "50"),
            ("NOVALOG_COMPUTE__FAKE_ACTION_LATENCY_MS", "50"),
            ("NOVALOG_CONDUCTOR__STEP_TIMEOUT", "30"),
            ("NOVALOG_CONDUCTOR__TIMER_TICK_MS", "200"),
            ("NOVALOG_INSTANCE_BUILD_TIMEOUT", "120"),
            ("NOVALOG_RECLAIM_INSTANCE_INTERVAL", RECLAIM_S),
        ],
        WAIT,
    )
    .await;
    let client = Client::admin(cluster.addr);
    let creates = (0..SERVERS).map(|i| {
        let c = client.clone();
        async move {
            c.create_server(&format!("life-{i}"), "1", demo_image_id())
                .await
        }
    });
    let ids: Vec<Uuid> = futures::future::try_join_all(creates).await.unwrap();
    if let Err(e) = client.wait_built(&ids, WAIT).await {
        cluster.dump_logs(40);
        panic!("{e}");
    }

    // Snapshots through a kill: each ends active or, its task failed,
    // deleted; none is left half-way, and the servers are ACTIVE.
    cluster
        .all_at_once_through_a_kill(
            &client,
            &ids,
            json!({"createImage": {"name": "life-snap"}}),
            &["ACTIVE"],
            WAIT,
        )
        .await;
    let deadline = Instant::now() + WAIT;
    let snaps = loop {
        let snaps: Vec<_> = cluster
            .images()
            .await
            .into_iter()
            .filter(|i| i["name"] == "life-snap")
            .collect();
        if snaps.iter().all(|i| i["status"] == "active") {
            break snaps;
        }
        assert!(
            Instant::now() < deadline,
            "snapshots left half-way: {snaps:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!snaps.is_empty(), "snapshots ran to the end");
    for s in &snaps {
        let owner = Uuid::parse_str(s["instance_uuid"].as_str().unwrap()).unwrap();
        assert!(ids.contains(&owner), "{s}");
        assert!(s["size"].as_u64().unwrap() > 0, "the guest's bytes: {s}");
        let file = cluster
            .cfg
            .data_dir
            .join("images")
            .join(s["id"].as_str().unwrap());
        assert_eq!(
            std::fs::metadata(&file).unwrap().len(),
            s["size"].as_u64().unwrap()
        );
    }

    // Soft delete, then restore through a kill.
    let deletes = ids.iter().map(|id| client.delete_server(*id));
    futures::future::try_join_all(deletes).await.unwrap();
    for id in &ids {
        client.wait_status(*id, "SOFT_DELETED", WAIT).await;
    }
    cluster
        .all_at_once_through_a_kill(&client, &ids, json!({"restore": null}), &["ACTIVE"], WAIT)
        .await;

    // Deleted again; the conductor dies while the reclaims wait.
    let deletes = ids.iter().map(|id| client.delete_server(*id));
    futures::future::try_join_all(deletes).await.unwrap();
    for id in &ids {
        client.wait_status(*id, "SOFT_DELETED", WAIT).await;
    }
    cluster.kill("novalog-conductor");
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.start_proc("novalog-conductor");
    if let Err(e) = client.wait_gone(&ids, WAIT).await {
        cluster.dump_logs(40);
        panic!("not reclaimed after a restart: {e}");
    }
}
