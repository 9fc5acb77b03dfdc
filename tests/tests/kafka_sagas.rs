//! The saga crash test on Kafka, every service in its own process: 200
//! resize, migrate and rebuild sagas at once while the conductor and the
//! compute agent are killed with SIGKILL at random moments and restarted.
//! Afterwards every server is stable with no task, every host's usage
//! equals the flavors of the servers on it (no claim leaked, none held
//! twice), and the API's live projection equals the instances folded
//! afresh from the log. No guest is left on a second host: the compute
//! agent's own records hold each server on exactly one host.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use novalog_schemas::instance::{Instance, evolve};
use novalog_store::StoreExt;
use novalog_tests::{
    Client, ProcessCluster, demo_image_id, host_usage, read_topic, skip_without_kafka,
};
use serde_json::{Value, json};
use uuid::Uuid;

const SERVERS: usize = 200;
const WAIT: Duration = Duration::from_secs(240);

/// Every service in its own process on `brokers`, eight fake hosts, saga
/// steps slow enough to be in flight when a process dies.
async fn start(brokers: &str) -> ProcessCluster {
    ProcessCluster::start(
        brokers,
        |cfg| cfg.compute.fake_hosts = 8,
        &[
            ("NOVALOG_COMPUTE__FAKE_STEP_LATENCY_MS", "50"),
            ("NOVALOG_CONDUCTOR__STEP_TIMEOUT", "30"),
            ("NOVALOG_CONDUCTOR__TIMER_TICK_MS", "200"),
            ("NOVALOG_INSTANCE_BUILD_TIMEOUT", "120"),
        ],
        WAIT,
    )
    .await
}

/// A pseudo-random duration in `0..max_ms` (no seed needed: any moment will do).
fn random_ms(max_ms: u64) -> Duration {
    Duration::from_millis((Uuid::new_v4().as_u128() % u128::from(max_ms)) as u64)
}

fn ram(flavor_id: &str) -> u64 {
    match flavor_id {
        "1" => 512,
        "2" => 2048,
        other => panic!("unexpected flavor {other}"),
    }
}

/// The saga `n` starts: a resize, a cold migrate or a rebuild.
fn saga(n: usize) -> Value {
    match n % 3 {
        0 => json!({"resize": {"flavorRef": "2"}}),
        1 => json!({"migrate": null}),
        _ => json!({"rebuild": {"imageRef": demo_image_id()}}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sagas_survive_kill_9_of_the_conductor_and_a_compute_agent() {
    let Some(brokers) =
        skip_without_kafka("sagas_survive_kill_9_of_the_conductor_and_a_compute_agent")
    else {
        return;
    };
    let mut cluster = start(&brokers).await;
    let client = Client::admin(cluster.addr);
    let mut ids = Vec::with_capacity(SERVERS);
    for chunk in 0..(SERVERS / 50) {
        let creates = (0..50).map(|i| {
            let c = client.clone();
            async move {
                c.create_server(&format!("s-{chunk}-{i}"), "1", demo_image_id())
                    .await
            }
        });
        ids.extend(futures::future::try_join_all(creates).await.unwrap());
    }
    if let Err(e) = client.wait_built(&ids, WAIT).await {
        cluster.dump_logs(40);
        panic!("{e}");
    }

    // Every saga at once; the conductor and the agent die meanwhile.
    let sagas = ids.iter().enumerate().map(|(n, id)| {
        let c = client.clone();
        let id = *id;
        async move {
            // An intent appended while the conductor is down is decided
            // after its restart: the answer may be a 503 meanwhile.
            let _ = c.server_action(id, saga(n)).await;
        }
    });
    let sagas = tokio::spawn(futures::future::join_all(sagas));
    // Once sagas are under way, at a random moment.
    let in_flight = || async {
        client
            .servers_detail()
            .await
            .unwrap()
            .iter()
            .filter(|s| !s["OS-EXT-STS:task_state"].is_null())
            .count()
    };
    let deadline = Instant::now() + WAIT;
    while in_flight().await == 0 {
        assert!(Instant::now() < deadline, "no saga started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(random_ms(300)).await;
    cluster.kill("novalog-conductor");
    let busy = in_flight().await;
    eprintln!("conductor killed with {busy} sagas in flight");
    assert!(busy > 0, "the kill must land while sagas are in flight");
    tokio::time::sleep(random_ms(300)).await;
    cluster.kill("novalog-compute");
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.start_proc("novalog-conductor");
    tokio::time::sleep(random_ms(500)).await;
    cluster.start_proc("novalog-compute");
    sagas.await.unwrap();

    // Confirm what reaches VERIFY_RESIZE; wait until everything is stable.
    // The first confirms are in flight when both die a second time.
    let deadline = Instant::now() + WAIT;
    let mut killed_again = false;
    let servers = loop {
        let servers = client.servers_detail().await.unwrap();
        let mut stable = true;
        let mut confirms = Vec::new();
        for s in &servers {
            if !s["OS-EXT-STS:task_state"].is_null() {
                stable = false;
            } else if s["status"] == "VERIFY_RESIZE" {
                stable = false;
                let id: Uuid = s["id"].as_str().unwrap().parse().unwrap();
                let c = client.clone();
                confirms.push(async move {
                    let _ = c.server_action(id, json!({"confirmResize": null})).await;
                });
            }
        }
        if !confirms.is_empty() && !killed_again {
            killed_again = true;
            let confirms = tokio::spawn(futures::future::join_all(confirms));
            tokio::time::sleep(random_ms(200)).await;
            cluster.kill("novalog-compute");
            tokio::time::sleep(random_ms(200)).await;
            cluster.kill("novalog-conductor");
            tokio::time::sleep(Duration::from_millis(300)).await;
            cluster.start_proc("novalog-compute");
            cluster.start_proc("novalog-conductor");
            confirms.await.unwrap();
        } else {
            futures::future::join_all(confirms).await;
        }
        if stable && servers.len() == SERVERS {
            break servers;
        }
        if Instant::now() > deadline {
            cluster.dump_logs(40);
            let busy: Vec<String> = servers
                .iter()
                .filter(|s| !s["OS-EXT-STS:task_state"].is_null() || s["status"] == "VERIFY_RESIZE")
                .map(|s| format!("{} {} {}", s["id"], s["status"], s["OS-EXT-STS:task_state"]))
                .collect();
            panic!("not stable: {busy:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for s in &servers {
        *by_status
            .entry(s["status"].as_str().unwrap().to_owned())
            .or_default() += 1;
        assert!(
            s["status"] == "ACTIVE" || s["status"] == "ERROR",
            "stable and as Nova leaves it: {s}"
        );
    }
    eprintln!("after the crash: {by_status:?}");
    let (status, body) = client
        .request_at(Some("2.23"), reqwest::Method::GET, "/os-migrations", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let mut migrations: BTreeMap<String, usize> = BTreeMap::new();
    for m in body["migrations"].as_array().unwrap() {
        *migrations
            .entry(m["status"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    eprintln!("migrations: {migrations:?}");
    assert!(
        migrations.get("confirmed").copied().unwrap_or(0) > 0,
        "sagas ran to the end: {migrations:?}"
    );

    // Usage equals the flavors of the servers on each host (nothing in
    // flight any more, so no holds), and each server is counted once.
    let log = cluster.log().await;
    let topics = cluster.cfg.topics();
    let mut expected: HashMap<String, (u64, u32)> = HashMap::new();
    for s in &servers {
        let host = s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned();
        let e = expected.entry(host).or_default();
        e.0 += ram(s["flavor"]["id"].as_str().unwrap());
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

    // The API's projection equals the instances folded afresh from the log.
    let mut rebuilt: HashMap<Uuid, Instance> = HashMap::new();
    for env in read_topic(&log, &topics.instances).await.unwrap() {
        let Ok(id) = env.meta.aggregate_id.parse::<Uuid>() else {
            continue;
        };
        if let Some(i) = evolve(rebuilt.remove(&id), &env) {
            rebuilt.insert(id, i);
        }
    }
    for s in &servers {
        let id: Uuid = s["id"].as_str().unwrap().parse().unwrap();
        let i = &rebuilt[&id];
        assert_eq!(s["status"], i.status(), "{id}");
        assert_eq!(s["OS-EXT-SRV-ATTR:host"], json!(i.host), "{id}");
        assert_eq!(s["flavor"]["id"], json!(i.flavor.id), "{id}");
        assert!(i.task_state.is_none(), "{id}");
        assert!(i.migration().is_none(), "{id}: no migration left in flight");
    }

    // After confirm, revert or rebuild no guest is left behind on a second
    // host: the compute agent's own records (what it re-adopts on start)
    // hold each server on exactly one host, the one the API shows, and no
    // migration claim is left.
    cluster.kill("novalog-compute");
    let store =
        novalog_store::RocksStore::open(cluster.cfg.data_dir.join("compute"), false).unwrap();
    let mut guests: HashMap<Uuid, Vec<String>> = HashMap::new();
    for (_, h) in store
        .scan::<novalog_compute::tracker::HostRecord>("hosts")
        .unwrap()
    {
        assert!(
            h.migration_claims.is_empty(),
            "{}: migration claims left: {:?}",
            h.name,
            h.migration_claims
        );
        for id in h.instances.keys() {
            guests.entry(*id).or_default().push(h.name.clone());
        }
    }
    for s in &servers {
        let id: Uuid = s["id"].as_str().unwrap().parse().unwrap();
        let host = s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned();
        assert_eq!(guests.remove(&id).unwrap_or_default(), [host], "{id}");
    }
    assert!(guests.is_empty(), "guests of no server: {guests:?}");
}
