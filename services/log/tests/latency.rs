//! Append and wake-up latency of the backends, measured rather than assumed:
//! the system budgets well under a millisecond per append (DESIGN §11, >500
//! boots/s at ~8 appends each). Ignored by default because timings on a busy
//! CI machine say little; run with
//! `cargo test -p novalog-log --test latency -- --ignored --nocapture`
//! (and `NOVALOG_KAFKA_BROKERS` for the Kafka numbers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use novalog_log::embedded::{EmbeddedLog, EmbeddedOptions};
use novalog_log::kafka::{KafkaLog, KafkaOptions};
use novalog_log::{EventLog, Record, TopicSpec, from_beginning};

const VALUE: [u8; 200] = [7; 200];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what}: n={} p50={:?} p90={:?} p99={:?} max={:?}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99),
        samples.last().unwrap()
    );
}

async fn measure(name: &str, log: Arc<dyn EventLog>) {
    let topic = format!("latency-{}", uuid::Uuid::new_v4().simple());
    log.create_topics(&[TopicSpec {
        name: topic.clone(),
        partitions: 8,
    }])
    .await
    .unwrap();

    // Sequential appends, 1 and 8 records (a boot is ~8 appends).
    for batch in [1usize, 8] {
        let mut samples = Vec::new();
        for i in 0..500 {
            let records = (0..batch)
                .map(|j| Record::new(&topic, format!("project-{}", (i + j) % 50), VALUE.to_vec()))
                .collect();
            let started = Instant::now();
            let positions = log.append(records).await.unwrap();
            samples.push(started.elapsed());
            assert_eq!(positions.len(), batch);
        }
        report(&format!("{name} append x{batch}"), samples);
    }

    // Concurrent appenders: throughput of single-record appends.
    let tasks = 16;
    let per_task = 500;
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let log = log.clone();
            let topic = topic.clone();
            tokio::spawn(async move {
                for i in 0..per_task {
                    log.append(vec![Record::new(
                        &topic,
                        format!("project-{t}-{}", i % 5),
                        VALUE.to_vec(),
                    )])
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "{name} {tasks} concurrent appenders: {:.0} appends/s",
        (tasks * per_task) as f64 / elapsed.as_secs_f64()
    );

    // Append → delivery to a subscriber waiting at the end.
    let mut sub = log
        .subscribe(
            &format!("g-{}", uuid::Uuid::new_v4().simple()),
            std::slice::from_ref(&topic),
            from_beginning(),
        )
        .await
        .unwrap();
    let total: i64 = log.end_offsets(&topic).await.unwrap().iter().sum();
    let mut drained = 0;
    while drained < total {
        drained += sub.next_batch(1000).await.unwrap().len() as i64;
    }
    // The subscriber runs in its own task, parked at the end of the log, so
    // this includes waking it.
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        for _ in 0..200 {
            let got = sub.next_batch(10).await.unwrap();
            assert_eq!(got.len(), 1);
            arrived_tx.send(Instant::now()).unwrap();
        }
        sub
    });
    let mut samples = Vec::new();
    for i in 0..200 {
        let started = Instant::now();
        log.append(vec![Record::new(&topic, format!("k{i}"), VALUE.to_vec())])
            .await
            .unwrap();
        let delivered = tokio::time::timeout(Duration::from_secs(10), arrived.recv())
            .await
            .expect("subscriber woke")
            .unwrap();
        samples.push(delivered - started);
    }
    let sub = reader.await.unwrap();
    report(&format!("{name} append->delivery"), samples);
    sub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with --ignored --nocapture"]
async fn embedded_latency() {
    for sync in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(
            dir.path(),
            EmbeddedOptions {
                default_partitions: 8,
                sync,
            },
        )
        .unwrap();
        measure(&format!("embedded sync={sync}"), Arc::new(log)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with --ignored --nocapture"]
async fn kafka_latency() {
    let Ok(brokers) = std::env::var("NOVALOG_KAFKA_BROKERS") else {
        println!("skipped: NOVALOG_KAFKA_BROKERS not set");
        return;
    };
    let log = KafkaLog::new(KafkaOptions::new(brokers)).unwrap();
    measure("kafka", Arc::new(log)).await;
}
