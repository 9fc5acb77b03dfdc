//! End-to-end on the embedded log: every service in one process.

use std::sync::Arc;
use std::time::Duration;

use novalog_all_in_one::System;
use novalog_compute::fake::{FakeDriver, FakeOptions};
use novalog_log::Record;
use novalog_schemas::{ComputeCommand, Event};
use novalog_tests::{Client, demo_image_id, read_topic, test_config};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_50_then_delete_50() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(dir.path());
    let driver = Arc::new(FakeDriver::new(FakeOptions::default()));
    let system = System::start(&cfg, Some(driver.clone())).await.unwrap();
    assert_eq!(system.demo_image, Some(demo_image_id()));
    let client = Client::admin(system.api_addr);

    let creates = (0..50).map(|i| {
        let c = client.clone();
        async move {
            c.create_server(&format!("vm-{i}"), "1", demo_image_id())
                .await
        }
    });
    let ids: Vec<Uuid> = futures::future::try_join_all(creates).await.unwrap();
    let built = client.wait_built(&ids, WAIT).await.unwrap();
    for (id, s) in &built {
        assert_eq!(s["status"], "ACTIVE", "{id}: {s}");
        assert_eq!(s["OS-EXT-STS:power_state"], 1);
        assert!(
            s["OS-EXT-SRV-ATTR:host"]
                .as_str()
                .unwrap()
                .starts_with("fake-host-")
        );
        assert_eq!(driver.spawn_count(*id), 1);
    }
    assert_eq!(client.servers_detail().await.unwrap().len(), 50);

    for id in &ids {
        client.delete_server(*id).await.unwrap();
    }
    client.wait_gone(&ids, WAIT).await.unwrap();
    assert!(client.servers_detail().await.unwrap().is_empty());
    let guests: usize = (0..8)
        .map(|h| driver.guests_on(&format!("fake-host-{h}")))
        .sum();
    assert_eq!(guests, 0, "every guest destroyed");
    system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    let system = System::start(&cfg, None).await.unwrap();
    let client = Client::admin(system.api_addr);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            client
                .create_server(&format!("keep-{i}"), "2", demo_image_id())
                .await
                .unwrap(),
        );
    }
    let before = client.wait_built(&ids, WAIT).await.unwrap();
    system.stop().await.unwrap();

    // Same data directory, same port-less config: a new process in effect.
    cfg.api.listen = "127.0.0.1:0".into();
    let system = System::start(&cfg, None).await.unwrap();
    let client = Client::admin(system.api_addr);
    for id in &ids {
        let after = client.server(*id).await.unwrap().expect("server kept");
        let b = &before[id];
        for field in [
            "status",
            "name",
            "OS-EXT-SRV-ATTR:host",
            "OS-EXT-STS:vm_state",
            "created",
        ] {
            assert_eq!(after[field], b[field], "{field} of {id}");
        }
    }
    // And the restarted system still works.
    let id = client
        .create_server("after-restart", "1", demo_image_id())
        .await
        .unwrap();
    let built = client.wait_built(&[id], WAIT).await.unwrap();
    assert_eq!(built[&id]["status"], "ACTIVE");
    system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_claims_reschedule_to_an_alternate() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.compute.fake_hosts = 3;
    cfg.compute.fake_fail_claims = vec!["fake-host-0".into(), "fake-host-1".into()];
    let system = System::start(&cfg, None).await.unwrap();
    let client = Client::admin(system.api_addr);
    let id = client
        .create_server("resilient", "1", demo_image_id())
        .await
        .unwrap();
    let built = client.wait_built(&[id], WAIT).await.unwrap();
    let s = &built[&id];
    assert_eq!(s["status"], "ACTIVE", "{s}");
    assert_eq!(s["OS-EXT-SRV-ATTR:host"], "fake-host-2");
    let spawns = spawn_commands(&system, id).await;
    assert!((1..=3).contains(&spawns.len()), "{spawns:?}");
    assert_eq!(spawns.last().unwrap(), "fake-host-2");
    system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_claim_failing_ends_in_no_valid_host_after_three_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.compute.fake_hosts = 4;
    cfg.compute.fake_fail_claims = (0..4).map(|i| format!("fake-host-{i}")).collect();
    let system = System::start(&cfg, None).await.unwrap();
    let client = Client::admin(system.api_addr);
    let id = client
        .create_server("doomed", "1", demo_image_id())
        .await
        .unwrap();
    let built = client.wait_built(&[id], WAIT).await.unwrap();
    let s = &built[&id];
    assert_eq!(s["status"], "ERROR", "{s}");
    assert_eq!(s["OS-EXT-STS:task_state"], serde_json::Value::Null);
    assert!(
        s["fault"]["message"]
            .as_str()
            .unwrap()
            .starts_with("No valid host was found"),
        "{s}"
    );
    let spawns = spawn_commands(&system, id).await;
    assert_eq!(spawns.len(), 3, "exactly max_attempts attempts: {spawns:?}");
    let mut distinct = spawns.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "each attempt on another host");

    // An ERROR server can be deleted.
    client.delete_server(id).await.unwrap();
    client.wait_gone(&[id], WAIT).await.unwrap();
    system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_record_is_dead_lettered_and_consumption_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(dir.path());
    let system = System::start(&cfg, None).await.unwrap();
    let topics = cfg.topics();
    system
        .log
        .append(vec![Record::new(
            &topics.intents,
            b"admin".to_vec(),
            b"\x08\xff garbage".to_vec(),
        )])
        .await
        .unwrap();
    let client = Client::admin(system.api_addr);
    let id = client
        .create_server("after-garbage", "1", demo_image_id())
        .await
        .unwrap();
    let built = client.wait_built(&[id], WAIT).await.unwrap();
    assert_eq!(built[&id]["status"], "ACTIVE");
    let dead = read_topic(&system.log, &topics.dead_letter).await.unwrap();
    let from_conductor: Vec<_> = dead
        .iter()
        .filter_map(|e| match &e.event {
            Event::DeadLetter(d) if d.consumer == "conductor" => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(from_conductor.len(), 1, "{dead:?}");
    assert_eq!(from_conductor[0].source_topic, topics.intents);
    assert!(
        from_conductor[0].error.starts_with("decode"),
        "{}",
        from_conductor[0].error
    );
    system.stop().await.unwrap();
}

/// The hosts the conductor sent SpawnInstance for `id` to, in order.
async fn spawn_commands(system: &System, id: Uuid) -> Vec<String> {
    read_topic(&system.log, &system.topics.compute)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Compute(ComputeCommand::SpawnInstance(s)) if s.instance_id == id => Some(s.host),
            _ => None,
        })
        .collect()
}
