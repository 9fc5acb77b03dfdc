//! The service on an embedded log: truth under replay, redelivery and
//! restarts, as the bytes of its store.

use std::sync::Arc;
use std::time::Duration;

use novalog_log::embedded::{EmbeddedLog, EmbeddedOptions};
use novalog_log::{EventLog, Record};
use novalog_runtime::consumer::unwrapped;
use novalog_runtime::{Config, Shutdown};
use novalog_schemas::Envelope;
use novalog_store::{RocksStore, Store, StoreExt};

use crate::period::Period;
use crate::rate::bill;
use crate::scenario_tests::{T0, cloud, table};
use crate::service::{Billing, METERS, NAME, USAGE};

struct Cloud {
    _dir: tempfile::TempDir,
    cfg: Config,
    log: Arc<dyn EventLog>,
}

async fn cloud_log() -> Cloud {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        data_dir: dir.path().to_path_buf(),
        billing: crate::scenario_tests::options(),
        ..Config::default()
    };
    let log: Arc<dyn EventLog> =
        Arc::new(EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default()).unwrap());
    log.create_topics(&cfg.topics().specs(1)).await.unwrap();
    Cloud {
        _dir: dir,
        cfg,
        log,
    }
}

async fn append(c: &Cloud, envs: &[Envelope]) {
    let topic = c.cfg.topics().instances;
    let records = envs
        .iter()
        .map(|e| {
            Record::new(
                topic.clone(),
                e.meta.actor.project_id.clone().into_bytes(),
                novalog_schemas::encode(e),
            )
        })
        .collect();
    c.log.append(records).await.unwrap();
}

/// Runs the billing service on `store` until it has consumed everything in
/// the log, then stops it.
async fn fold_into(c: &Cloud, store: Arc<RocksStore>) -> Arc<crate::service::Ledger> {
    let billing = Billing::on(store.clone()).unwrap();
    let ledger = billing.ledger.clone();
    let (trigger, shutdown) = Shutdown::new();
    let (cfg, log) = (c.cfg.clone(), c.log.clone());
    let task = tokio::spawn(async move { billing.run(&cfg, log, shutdown, unwrapped()).await });
    let topic = c.cfg.topics().instances;
    let end = c.log.end_offsets(&topic).await.unwrap()[0];
    let caught_up = async {
        while store.offset(NAME, &topic, 0).unwrap().unwrap_or(0) < end {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), caught_up)
        .await
        .expect("the billing consumer caught up");
    trigger.trigger();
    task.await.unwrap().unwrap();
    ledger
}

fn store(dir: &tempfile::TempDir, name: &str) -> Arc<RocksStore> {
    Arc::new(RocksStore::open(dir.path().join(name), false).unwrap())
}

/// The projection's bytes (offsets apart: a log with copies has more).
fn bytes(s: &RocksStore) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut all = s.scan_raw(USAGE).unwrap();
    all.extend(s.scan_raw(METERS).unwrap());
    all
}

fn demo_total(ledger: &crate::service::Ledger) -> String {
    let t = table();
    let day = Period::new(T0, T0 + 86_400_000).unwrap();
    let b = bill(&t, "demo", &ledger.intervals("demo"), day, T0 + 86_400_000);
    format!("{} {:?}", t.round(b.total), b.total)
}

#[tokio::test]
async fn a_replay_into_a_fresh_store_is_byte_equal_and_bills_the_same() {
    let c = cloud_log().await;
    append(&c, &cloud()).await;
    let dir = tempfile::tempdir().unwrap();
    let (live, fresh) = (store(&dir, "live"), store(&dir, "fresh"));
    let a = fold_into(&c, live.clone()).await;
    let b = fold_into(&c, fresh.clone()).await;
    assert!(!bytes(&live).is_empty());
    assert_eq!(bytes(&live), bytes(&fresh));
    assert_eq!(demo_total(&a), demo_total(&b));
    assert!(demo_total(&a).starts_with("0.13 "), "{}", demo_total(&a));
    // And the store reloads into the same ledger.
    let reloaded = Billing::on(live).unwrap().ledger;
    assert_eq!(demo_total(&reloaded), demo_total(&a));
}

#[tokio::test]
async fn every_record_delivered_twice_gives_the_same_bill() {
    let once = cloud_log().await;
    append(&once, &cloud()).await;
    let twice = cloud_log().await;
    let doubled: Vec<Envelope> = cloud().into_iter().flat_map(|e| [e.clone(), e]).collect();
    append(&twice, &doubled).await;
    // And the whole history once more after it.
    append(&twice, &cloud()).await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (store(&dir, "a"), store(&dir, "b"));
    let la = fold_into(&once, a.clone()).await;
    let lb = fold_into(&twice, b.clone()).await;
    assert_eq!(bytes(&a), bytes(&b));
    assert_eq!(demo_total(&la), demo_total(&lb));
}

#[tokio::test]
async fn a_service_stopped_mid_stream_and_restarted_gives_the_same_bill() {
    let c = cloud_log().await;
    let history = cloud();
    let dir = tempfile::tempdir().unwrap();
    let restarted = store(&dir, "restarted");
    // Stopped at several points, each a fresh process on the same store.
    for part in history.chunks(7) {
        append(&c, part).await;
        fold_into(&c, restarted.clone()).await;
    }
    let fresh = store(&dir, "fresh");
    fold_into(&c, fresh.clone()).await;
    assert_eq!(bytes(&restarted), bytes(&fresh));
}

/// The `billing` topic's records: (event id, key, value) in log order.
async fn published(c: &Cloud) -> Vec<(uuid::Uuid, Vec<u8>, Vec<u8>)> {
    let topic = c.cfg.topics().billing;
    let end = c.log.end_offsets(&topic).await.unwrap()[0];
    let records = c.log.read(&topic, 0, 0, end as usize + 1).await.unwrap();
    records
        .into_iter()
        .map(|r| {
            let env = novalog_schemas::decode_on(novalog_schemas::Topic::Billing, &r.value)
                .expect("a published summary decodes");
            (env.meta.event_id, r.key, r.value)
        })
        .collect()
}

/// Published summaries by id, every copy of an id byte-equal.
fn by_id(
    records: &[(uuid::Uuid, Vec<u8>, Vec<u8>)],
) -> std::collections::BTreeMap<uuid::Uuid, (Vec<u8>, Vec<u8>)> {
    let mut out = std::collections::BTreeMap::new();
    for (id, k, v) in records {
        if let Some(prev) = out.insert(*id, (k.clone(), v.clone())) {
            assert_eq!(
                prev,
                (k.clone(), v.clone()),
                "two different summaries under {id}"
            );
        }
    }
    out
}

fn summaries(
    records: &[(uuid::Uuid, Vec<u8>, Vec<u8>)],
) -> Vec<novalog_schemas::billing::UsageRated> {
    records
        .iter()
        .map(
            |(_, _, v)| match novalog_schemas::decode(v).unwrap().event {
                novalog_schemas::Event::Billing(
                    novalog_schemas::billing::BillingEvent::UsageRated(u),
                ) => *u,
                other => panic!("not a summary: {other:?}"),
            },
        )
        .collect()
}

#[tokio::test]
async fn each_closed_period_is_published_once_per_project_and_adds_up_to_the_bill() {
    let c = cloud_log().await;
    append(&c, &cloud()).await;
    let dir = tempfile::tempdir().unwrap();
    let ledger = fold_into(&c, store(&dir, "live")).await;
    let records = published(&c).await;
    let got = summaries(&records);
    const H: i64 = 3_600_000;
    // The cloud's records run from T0 to T0 + 14,460 s: the first four
    // hours are closed (each by a record at least 60 s after its end), the
    // fifth is not.
    let periods: Vec<(String, i64)> = got
        .iter()
        .map(|u| (u.project_id.clone(), (u.period_start_ms - T0) / H))
        .collect();
    assert_eq!(
        periods,
        [
            ("demo".to_owned(), 0),
            ("other".to_owned(), 0),
            ("demo".to_owned(), 1),
            ("demo".to_owned(), 2),
            ("demo".to_owned(), 3),
        ]
    );
    for (u, (_, key, _)) in got.iter().zip(&records) {
        assert_eq!(key, u.project_id.as_bytes(), "keyed by project");
        assert_eq!(u.period_end_ms - u.period_start_ms, H);
    }
    // Four hours of summaries are the four hours' bill, to the last unit.
    let t = table();
    let four = Period::new(T0, T0 + 4 * H).unwrap();
    let whole = bill(&t, "demo", &ledger.intervals("demo"), four, T0 + 4 * H);
    for u in got.iter().filter(|u| u.project_id == "demo") {
        let p = Period::new(u.period_start_ms, u.period_end_ms).unwrap();
        let b = bill(&t, "demo", &ledger.intervals("demo"), p, p.end_ms);
        assert_eq!(u.total_exact, b.total.0, "period {p:?}");
    }
    let summed: i128 = got
        .iter()
        .filter(|u| u.project_id == "demo")
        .map(|u| u.total_exact)
        .sum();
    assert_eq!(summed, whole.total.0);
    assert!(summed > 0);
    // A replay into a fresh store publishes the same bytes again.
    fold_into(&c, store(&dir, "fresh")).await;
    let again = published(&c).await;
    assert_eq!(again.len(), 2 * records.len());
    assert_eq!(again[records.len()..], records[..]);
}

#[tokio::test]
async fn redelivery_and_restarts_publish_the_same_summaries() {
    let once = cloud_log().await;
    append(&once, &cloud()).await;
    let dir = tempfile::tempdir().unwrap();
    fold_into(&once, store(&dir, "once")).await;
    let want = by_id(&published(&once).await);
    assert_eq!(want.len(), 5);

    let twice = cloud_log().await;
    let doubled: Vec<Envelope> = cloud().into_iter().flat_map(|e| [e.clone(), e]).collect();
    append(&twice, &doubled).await;
    append(&twice, &cloud()).await;
    fold_into(&twice, store(&dir, "twice")).await;
    let records = published(&twice).await;
    assert_eq!(records.len(), want.len(), "nothing published twice");
    assert_eq!(by_id(&records), want);

    let restarted = cloud_log().await;
    let s = store(&dir, "restarted");
    for part in cloud().chunks(5) {
        append(&restarted, part).await;
        fold_into(&restarted, s.clone()).await;
    }
    assert_eq!(by_id(&published(&restarted).await), want);
}

#[tokio::test]
async fn a_replay_with_side_effects_off_returns_what_the_service_published() {
    let c = cloud_log().await;
    append(&c, &cloud()).await;
    let dir = tempfile::tempdir().unwrap();
    let live = store(&dir, "live");
    fold_into(&c, live.clone()).await;
    let want: Vec<(Vec<u8>, Vec<u8>)> = published(&c)
        .await
        .into_iter()
        .map(|(_, k, v)| (k, v))
        .collect();
    let topic = c.cfg.topics().instances;
    let records = c.log.read(&topic, 0, 0, 10_000).await.unwrap();
    let replayed = store(&dir, "replayed");
    let mut replay = crate::service::Replay::new(&c.cfg, replayed.clone()).unwrap();
    let mut got = Vec::new();
    // In batches that split periods anywhere.
    for chunk in records.chunks(3) {
        for r in replay.fold(chunk).await.unwrap() {
            assert_eq!(r.topic, c.cfg.topics().billing);
            got.push((r.key, r.value));
        }
    }
    assert_eq!(got, want);
    assert_eq!(bytes(&replayed), bytes(&live));
    assert_eq!(
        demo_total(&replay.ledger()),
        demo_total(&Billing::on(live).unwrap().ledger)
    );
    assert_eq!(
        published(&c).await.len(),
        want.len(),
        "the replay appended nothing"
    );
}

#[tokio::test]
async fn deleted_servers_meters_leave_memory_and_copies_of_their_history_change_nothing() {
    let c = cloud_log().await;
    let history = cloud();
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, "replayed");
    let mut replay = crate::service::Replay::new(&c.cfg, store.clone()).unwrap();
    let encoded: Vec<Vec<u8>> = history.iter().map(novalog_schemas::encode).collect();
    let records = |from: i64| {
        encoded
            .iter()
            .enumerate()
            .map(move |(n, v)| (0, from + n as i64, v.as_slice()))
    };
    replay.fold_raw(records(0)).await.unwrap();
    let meters = store.scan::<crate::meter::ServerMeter>(METERS).unwrap();
    let live = meters.iter().filter(|(_, m)| !m.gone).count();
    assert!(live < meters.len(), "the cloud deletes some servers");
    assert_eq!(replay.resident_meters(), live);
    let before = bytes(&store);
    let total = demo_total(&replay.ledger());
    // The whole history delivered again: the deleted servers' tombstones,
    // read back from the store, keep them deleted.
    replay
        .fold_raw(records(encoded.len() as i64))
        .await
        .unwrap();
    assert_eq!(bytes(&store), before);
    assert_eq!(demo_total(&replay.ledger()), total);
    assert_eq!(replay.resident_meters(), live);
    // And a restart loads only the live servers' meters.
    let reopened = crate::service::Replay::new(&c.cfg, store.clone()).unwrap();
    assert_eq!(reopened.resident_meters(), live);
}
