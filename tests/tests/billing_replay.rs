//! `novalog-replay rebuild billing` and `verify` over billing: the usage
//! projection folded again from the embedded log, side effects off, is
//! byte-equal to the live store the all-in-one's billing subscriber wrote
//! (its outbox apart), with periods closed along the way.

use std::time::{Duration, Instant};

use novalog_all_in_one::System;
use novalog_billing::service::{NAME, PERIOD_ENDS, USAGE};
use novalog_billing::{BillableState, Interval};
use novalog_replay::rebuild::{self, Service};
use novalog_replay::{Silent, Source};
use novalog_store::{RocksStore, Store, StoreExt};
use novalog_tests::{Client, demo_image_id, test_config};
use serde_json::json;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

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

/// Waits until the live billing store has folded `instances` to its end.
async fn wait_billed(system: &System, data_dir: &std::path::Path) {
    let topic = system.topics.instances.clone();
    let deadline = Instant::now() + WAIT;
    loop {
        let ends = system.log.end_offsets(&topic).await.unwrap();
        let snap = rebuild::snapshot(&data_dir.join(NAME)).unwrap();
        let at = rebuild::offsets_in(&snap, NAME);
        if ends
            .iter()
            .enumerate()
            .all(|(p, e)| at.get(&(topic.clone(), p as i32)).copied().unwrap_or(0) >= *e)
        {
            return;
        }
        assert!(Instant::now() < deadline, "billing never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_rebuilt_from_the_log_is_byte_equal_to_the_live_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.report_interval = 5;
    // One-second periods closed at once: a short run closes several.
    cfg.billing.period_seconds = 1;
    cfg.billing.close_delay_seconds = 0;
    let system = System::start(&cfg, None).await.unwrap();
    let c = Client::admin(system.api_addr);

    let a = c.create_server("a", "1", demo_image_id()).await.unwrap();
    let b = c.create_server("b", "1", demo_image_id()).await.unwrap();
    let d = c.create_server("d", "1", demo_image_id()).await.unwrap();
    c.wait_built(&[a, b, d], WAIT).await.unwrap();
    for id in [a, b, d] {
        wait_status(&c, id, "ACTIVE").await;
    }
    action(&c, a, json!({"resize": {"flavorRef": "2"}})).await;
    wait_status(&c, a, "VERIFY_RESIZE").await;
    action(&c, a, json!({"confirmResize": null})).await;
    wait_status(&c, a, "ACTIVE").await;
    action(&c, d, json!({"os-stop": null})).await;
    wait_status(&c, d, "SHUTOFF").await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    c.delete_server(b).await.unwrap();
    c.wait_gone(&[b], WAIT).await.unwrap();
    // A record after the last period's end closes it.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let e = c.create_server("e", "1", demo_image_id()).await.unwrap();
    c.wait_built(&[e], WAIT).await.unwrap();
    wait_billed(&system, dir.path()).await;

    // verify, the services running: billing's store is the log's.
    let src = Source::embedded(&cfg.data_dir.join("log"), cfg.topics()).unwrap();
    let verified = rebuild::verify(
        &src,
        &cfg,
        &cfg.data_dir,
        &[Service::Billing],
        None,
        &Silent,
    )
    .await
    .unwrap();
    assert_eq!(verified.len(), 1);
    assert!(verified[0].stats.records > 0, "folded nothing");
    assert!(
        verified[0].differences.is_empty(),
        "verify: {:?}",
        verified[0]
            .differences
            .iter()
            .map(rebuild::show_key)
            .collect::<Vec<_>>()
    );
    system.stop().await.unwrap();

    // rebuild billing from offset 0 into a fresh directory: the same
    // bytes as the live store, table by table.
    let into = dir.path().join("rebuilt");
    let parsed = Service::parse("billing").unwrap();
    assert_eq!(parsed, [Service::Billing]);
    let all = rebuild::rebuild_all(&src, &cfg, &parsed, &into, |_| {
        std::sync::Arc::new(Silent) as std::sync::Arc<dyn novalog_replay::Progress>
    })
    .await
    .unwrap();
    assert!(all.records() > 0);
    let live = rebuild::snapshot(&cfg.data_dir.join(NAME)).unwrap();
    let rebuilt = rebuild::snapshot(&into.join(Service::Billing.dir_name())).unwrap();
    assert!(!live.is_empty());
    let diffs = rebuild::diff_rows(&live, &rebuilt);
    assert!(
        diffs.is_empty(),
        "{:?}",
        diffs.iter().map(rebuild::show_key).collect::<Vec<_>>()
    );

    // What the rebuilt store holds is the cloud's usage: b's intervals
    // closed, a billed at its new flavor after the resize, periods closed.
    let store = RocksStore::open(into.join(Service::Billing.dir_name()), false).unwrap();
    let usage: Vec<Interval> = store
        .scan::<Interval>(USAGE)
        .unwrap()
        .into_iter()
        .map(|(_, i)| i)
        .collect();
    assert!(
        usage
            .iter()
            .any(|i| i.server_id == b && i.state == BillableState::Running)
    );
    assert!(
        usage
            .iter()
            .any(|i| i.server_id == a && i.state == BillableState::Running && i.flavor.id == "1"),
        "a ran at its old flavor before the resize: {usage:?}"
    );
    assert!(
        usage
            .iter()
            .any(|i| i.server_id == d && i.state == BillableState::Running),
        "d ran until stopped"
    );
    assert!(!store.scan_raw(PERIOD_ENDS).unwrap().is_empty());
}
