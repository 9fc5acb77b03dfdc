//! The Kafka path's own limits, beside the boots on it: the broker's
//! append→delivery latency for one record when idle (`kafka_hop_ms`), its
//! throughput with Novalog's client settings and batch sizes and nothing
//! else running (`kafka_broker_ceiling_records_per_s`), and boots on
//! librdkafka's in-process mock cluster (`kafka_mock_boots_per_s`): the
//! client path without a broker's storage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use novalog_log::{EventLog, Record, TopicSpec};
use novalog_runtime::Config;
use uuid::Uuid;

/// A record the size of an average Novalog record on the log.
const RECORD_BYTES: usize = 400;

pub struct Ceiling {
    pub records: usize,
    pub batch: usize,
    pub records_per_s: f64,
}

async fn topic(log: &Arc<dyn EventLog>, partitions: i32) -> anyhow::Result<String> {
    let name = format!("bench-broker-{}", Uuid::new_v4().simple());
    log.create_topics(&[TopicSpec {
        name: name.clone(),
        partitions,
    }])
    .await?;
    Ok(name)
}

/// Median append→delivery of one record on an idle topic, over `n`.
pub async fn hop_ms(log: &Arc<dyn EventLog>, n: usize) -> anyhow::Result<f64> {
    let topic = topic(log, 1).await?;
    let mut sub = log
        .subscribe(
            &format!("bench-hop-{}", Uuid::new_v4().simple()),
            std::slice::from_ref(&topic),
            novalog_log::from_beginning(),
        )
        .await?;
    let mut samples = Vec::with_capacity(n);
    // The first round trip pays for the group join and the assignment.
    for i in 0..n + 3 {
        let t0 = Instant::now();
        log.append(vec![Record::new(
            topic.clone(),
            b"k".to_vec(),
            vec![i as u8; RECORD_BYTES],
        )])
        .await?;
        let mut got = 0;
        while got == 0 {
            got = tokio::time::timeout(Duration::from_secs(30), sub.next_batch(16))
                .await
                .context("no delivery in 30 s")??
                .len();
        }
        if i >= 3 {
            samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        // Idle between records, as a quiet cloud is.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sub.close().await;
    Ok(crate::percentile(&samples, 0.5))
}

/// `records` records appended `batch` at a time by `writers` concurrent
/// writers over 4 partitions, read back by one subscriber: records/s from
/// the first append to the last delivery.
pub async fn ceiling(
    log: &Arc<dyn EventLog>,
    records: usize,
    batch: usize,
    writers: usize,
) -> anyhow::Result<Ceiling> {
    let topic = topic(log, 4).await?;
    let mut sub = log
        .subscribe(
            &format!("bench-ceiling-{}", Uuid::new_v4().simple()),
            std::slice::from_ref(&topic),
            novalog_log::from_beginning(),
        )
        .await?;
    // Join the group before the clock starts.
    log.append(vec![Record::new(topic.clone(), b"w".to_vec(), vec![0; 8])])
        .await?;
    let mut seen = 0;
    while seen == 0 {
        seen = tokio::time::timeout(Duration::from_secs(30), sub.next_batch(16))
            .await
            .context("no delivery in 30 s")??
            .len();
    }
    let started = Instant::now();
    let per_writer = records / writers / batch;
    let producers = (0..writers).map(|w| {
        let (log, topic) = (log.clone(), topic.clone());
        async move {
            for b in 0..per_writer {
                let batch: Vec<Record> = (0..batch)
                    .map(|i| {
                        Record::new(
                            topic.clone(),
                            format!("{w}-{b}-{i}").into_bytes(),
                            vec![7; RECORD_BYTES],
                        )
                    })
                    .collect();
                log.append(batch).await?;
            }
            anyhow::Ok(())
        }
    });
    let total = per_writer * writers * batch;
    let reader = async {
        let mut got = 0;
        while got < total {
            got += tokio::time::timeout(Duration::from_secs(60), sub.next_batch(4096))
                .await
                .context("delivery stalled for 60 s")??
                .len();
        }
        anyhow::Ok(())
    };
    let (written, read) = tokio::join!(futures::future::try_join_all(producers), reader);
    written?;
    read?;
    let secs = started.elapsed().as_secs_f64();
    sub.close().await;
    Ok(Ceiling {
        records: total,
        batch,
        records_per_s: total as f64 / secs,
    })
}

/// The Kafka log of `cfg` pointed at `brokers`.
pub async fn open(cfg: &Config, brokers: &str) -> anyhow::Result<Arc<dyn EventLog>> {
    let mut cfg = cfg.clone();
    cfg.log.backend = novalog_runtime::config::Backend::Kafka;
    cfg.log.bootstrap_servers = brokers.to_owned();
    Ok(novalog_runtime::backend::open_log(&cfg).await?)
}

/// Boots on librdkafka's mock cluster (in this process, no storage): the
/// client path's own cost. `cfg` is a bench cloud's configuration.
pub async fn mock_boots(
    cfg: &Config,
    boots: usize,
    concurrency: usize,
) -> anyhow::Result<crate::BootRun> {
    let mock = rdkafka::mocking::MockCluster::new(1)?;
    let mut cfg = cfg.clone();
    cfg.log.backend = novalog_runtime::config::Backend::Kafka;
    cfg.log.bootstrap_servers = mock.bootstrap_servers();
    cfg.log.partitions = 4;
    let system = novalog_all_in_one::System::start(&cfg, None).await?;
    crate::boot_run(&system, 50, concurrency).await?;
    let run = crate::boot_run(&system, boots, concurrency).await;
    system.stop().await?;
    drop(mock);
    run
}
