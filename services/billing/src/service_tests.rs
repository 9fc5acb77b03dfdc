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
