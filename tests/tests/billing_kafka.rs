//! `novalog-billing` in its own process on Kafka, beside the other
//! services in theirs: killed with SIGKILL mid-stream and restarted, it
//! keeps the same usage and publishes the same period summaries as an
//! uninterrupted fold of the same log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use novalog_billing::period::Period;
use novalog_billing::rate::{PriceTable, bill};
use novalog_billing::service::{Billing, METERS, NAME, Replay, USAGE};
use novalog_billing::{BillableState, Interval};
use novalog_log::{Consumed, EventLog};
use novalog_schemas::Event;
use novalog_schemas::billing::{BillingEvent, UsageRated};
use novalog_store::{RocksStore, Store, StoreExt};
use novalog_tests::{Client, ProcessCluster, demo_image_id, skip_without_kafka};
use serde_json::json;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(90);
const BILLING: &str = "novalog-billing";

async fn read_all(log: &Arc<dyn EventLog>, topic: &str) -> Vec<Consumed> {
    let mut out = Vec::new();
    for (p, end) in log
        .end_offsets(topic)
        .await
        .unwrap()
        .into_iter()
        .enumerate()
    {
        let mut from = 0;
        while from < end {
            let batch = log.read(topic, p as i32, from, 1_000).await.unwrap();
            let Some(last) = batch.last() else { break };
            from = last.offset + 1;
            out.extend(batch);
        }
    }
    out
}

/// The projection's bytes (offsets apart).
fn bytes(s: &RocksStore) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut all = s.scan_raw(USAGE).unwrap();
    all.extend(s.scan_raw(METERS).unwrap());
    all
}

/// Summaries by event id; every copy of one id is byte-equal.
fn by_id(records: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> BTreeMap<Uuid, Vec<u8>> {
    let mut out = BTreeMap::new();
    for (key, value) in records {
        let env = novalog_schemas::decode_on(novalog_schemas::Topic::Billing, &value)
            .expect("a published summary decodes");
        assert_eq!(key, env.meta.aggregate_id.as_bytes(), "keyed by project");
        if let Some(prev) = out.insert(env.meta.event_id, value.clone()) {
            assert_eq!(prev, value, "two different summaries under one id");
        }
    }
    out
}

fn usage_rated(value: &[u8]) -> UsageRated {
    match novalog_schemas::decode(value).unwrap().event {
        Event::Billing(BillingEvent::UsageRated(u)) => *u,
        other => panic!("not a summary: {other:?}"),
    }
}

/// Kills the billing process and opens its store; restarts it and tries
/// again while it has not folded `instances` to `ends`.
async fn stop_caught_up(c: &mut ProcessCluster, ends: &[i64]) -> Arc<RocksStore> {
    let topic = c.cfg.topics().instances;
    let deadline = Instant::now() + WAIT;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        c.kill(BILLING);
        let store = Arc::new(RocksStore::open(c.cfg.data_dir.join(NAME), false).unwrap());
        let caught_up = ends
            .iter()
            .enumerate()
            .all(|(p, end)| store.offset(NAME, &topic, p as i32).unwrap().unwrap_or(0) >= *end);
        if caught_up {
            return store;
        }
        if Instant::now() > deadline {
            c.dump_logs(40);
            panic!("billing never caught up with {ends:?}");
        }
        drop(store);
        c.start_proc(BILLING);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_killed_mid_stream_on_kafka_bills_as_an_uninterrupted_fold() {
    let Some(brokers) =
        skip_without_kafka("billing_killed_mid_stream_on_kafka_bills_as_an_uninterrupted_fold")
    else {
        return;
    };
    // Two-second periods closed as soon as a record passes their end, so a
    // short run closes many.
    let mut c = ProcessCluster::start(
        &brokers,
        |cfg| {
            cfg.billing.period_seconds = 2;
            cfg.billing.close_delay_seconds = 0;
        },
        &[
            ("NOVALOG_BILLING__PERIOD_SECONDS", "2"),
            ("NOVALOG_BILLING__CLOSE_DELAY_SECONDS", "0"),
        ],
        WAIT,
    )
    .await;
    c.start_proc(BILLING);
    let client = Client::admin(c.addr);
    let mut resized = Vec::new();
    let mut deleted = Vec::new();
    for round in 0..2 {
        let creates = (0..8).map(|i| {
            let client = client.clone();
            async move {
                client
                    .create_server(&format!("bill-{round}-{i}"), "1", demo_image_id())
                    .await
            }
        });
        let ids = futures::future::try_join_all(creates).await.unwrap();
        if let Err(e) = client.wait_built(&ids, WAIT).await {
            c.dump_logs(40);
            panic!("{e}");
        }
        if round == 0 {
            // Killed while the cloud is busy, restarted a moment later.
            c.kill(BILLING);
        }
        let (status, _, _) = client
            .server_action(ids[0], json!({"resize": {"flavorRef": "2"}}))
            .await
            .unwrap();
        assert_eq!(status, 202);
        client.wait_status(ids[0], "VERIFY_RESIZE", WAIT).await;
        let (status, _, _) = client
            .server_action(ids[0], json!({"confirmResize": null}))
            .await
            .unwrap();
        assert_eq!(status, 204);
        client.wait_status(ids[0], "ACTIVE", WAIT).await;
        resized.push(ids[0]);
        if round == 0 {
            c.start_proc(BILLING);
        }
        for id in &ids[..4] {
            client.delete_server(*id).await.unwrap();
        }
        client.wait_gone(&ids[..4], WAIT).await.unwrap();
        deleted.extend_from_slice(&ids[..4]);
        tokio::time::sleep(Duration::from_millis(2_100)).await;
    }
    // One more record (a boot) after the last period ends closes it.
    let last = client
        .create_server("bill-last", "1", demo_image_id())
        .await
        .unwrap();
    client.wait_built(&[last], WAIT).await.unwrap();

    let log = c.log().await;
    let topics = c.cfg.topics();
    let ends = log.end_offsets(&topics.instances).await.unwrap();
    let live = stop_caught_up(&mut c, &ends).await;

    // The uninterrupted fold: the same log from offset 0 into a fresh store,
    // side effects off.
    let dir = tempfile::tempdir().unwrap();
    let fresh = Arc::new(RocksStore::open(dir.path().join("fresh"), false).unwrap());
    let mut replay = Replay::new(&c.cfg, fresh.clone()).unwrap();
    let records = read_all(&log, &topics.instances).await;
    let mut want = Vec::new();
    for chunk in records.chunks(64) {
        want.extend(
            replay
                .fold(chunk)
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.key, r.value)),
        );
    }
    assert!(!bytes(&live).is_empty());
    assert_eq!(bytes(&live), bytes(&fresh), "the same usage, byte for byte");
    let want = by_id(want);
    let got = by_id(
        read_all(&log, &topics.billing)
            .await
            .into_iter()
            .map(|r| (r.key, r.value)),
    );
    assert!(want.len() >= 2, "periods were closed: {}", want.len());
    assert_eq!(got, want, "the same summaries, each under one id");

    // Every record delivered twice: the same usage again.
    let twice = Arc::new(RocksStore::open(dir.path().join("twice"), false).unwrap());
    let mut replay = Replay::new(&c.cfg, twice.clone()).unwrap();
    let doubled: Vec<Consumed> = records
        .iter()
        .flat_map(|r| [r.clone(), r.clone()])
        .collect();
    let mut again = Vec::new();
    for chunk in doubled.chunks(50) {
        again.extend(
            replay
                .fold(chunk)
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.key, r.value)),
        );
    }
    assert_eq!(bytes(&twice), bytes(&fresh));
    assert_eq!(by_id(again), want);

    // The bill: what the cloud did, and the summaries add up to it.
    let ledger = Billing::on(live).unwrap().ledger;
    let project = ledger.projects();
    assert_eq!(project.len(), 1, "{project:?}");
    let intervals = ledger.intervals(&project[0]);
    let of =
        |id: Uuid| -> Vec<&Interval> { intervals.iter().filter(|i| i.server_id == id).collect() };
    for id in &deleted {
        assert!(of(*id).iter().all(|i| i.end_ms.is_some()), "{id} deleted");
    }
    for id in &resized {
        let flavors: Vec<String> = of(*id)
            .iter()
            .filter(|i| i.state == BillableState::Running)
            .map(|i| i.flavor.id.clone())
            .collect();
        assert_eq!(
            flavors.first().map(String::as_str),
            Some("1"),
            "{id}: {flavors:?}"
        );
        assert_eq!(
            flavors.last().map(String::as_str),
            Some("2"),
            "{id}: {flavors:?}"
        );
    }
    let table = PriceTable::from_options(&c.cfg.billing).unwrap();
    let summaries: Vec<UsageRated> = want.values().map(|v| usage_rated(v)).collect();
    let start = summaries.iter().map(|u| u.period_start_ms).min().unwrap();
    let end = summaries.iter().map(|u| u.period_end_ms).max().unwrap();
    let whole = bill(
        &table,
        &project[0],
        &intervals,
        Period::new(start, end).unwrap(),
        end,
    );
    let summed: i128 = summaries.iter().map(|u| u.total_exact).sum();
    assert_eq!(summed, whole.total.0, "the periods add up to the bill");
    assert!(summed > 0);

    // The bill as users read it: `/billing/v1` on the split API, which
    // asks the restarted novalog-billing's read listener. It is the bill
    // of the uninterrupted fold, to the millisecond and the last digit.
    drop(ledger);
    let period = Period::new(start, end).unwrap();
    let expected_ledger = Billing::on(fresh).unwrap().ledger;
    let expected = novalog_api::controllers::billing::bill_json(
        &table,
        &bill(
            &table,
            &project[0],
            &expected_ledger.servers_in(Some(&project[0]), start, end),
            period,
            end,
        ),
    );
    c.start_proc(BILLING);
    let url = format!(
        "http://{}/billing/v1/projects/{}?start={}&end={}",
        c.addr,
        project[0],
        novalog_api::controllers::billing::bill_time(start),
        novalog_api::controllers::billing::bill_time(end),
    );
    let http = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    let served: serde_json::Value = loop {
        let resp = http
            .get(&url)
            .header("X-Auth-Token", "admin:admin")
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap();
        // 503 until the restarted service listens.
        if status == 200 {
            break body;
        }
        assert_eq!(status, 503, "{body}");
        if Instant::now() > deadline {
            c.dump_logs(40);
            panic!("/billing/v1 never answered: {body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(served, expected, "GET {url}");
    let lines = served["bill"]["line_items"].as_array().unwrap();
    for id in resized.iter().chain(&deleted) {
        assert!(
            lines.iter().any(|l| l["server_id"] == id.to_string()),
            "{id} is on the bill"
        );
    }
    let rounded = table.round(whole.total).to_string();
    assert_eq!(served["bill"]["total"], rounded.as_str());
}
