//! One conformance suite for every [`EventLog`] backend, because nothing above
//! `services/log` may learn which backend it runs on (DESIGN §3): if a case
//! holds on one backend, it must hold on all.
//!
//! Each case runs three times:
//! - `embedded::*` — RocksDB in a temp dir, always;
//! - `mock::*` — the Kafka backend against librdkafka's in-process mock
//!   cluster, always (fast coverage of the Kafka code paths; the mock has no
//!   CreateTopics, so topics are made through the mock itself);
//! - `kafka::*` — the Kafka backend against a real broker when
//!   `NOVALOG_KAFKA_BROKERS` is set (`make test` starts one with
//!   `scripts/broker.sh`), otherwise it prints that it was skipped.
//!
//! Topic and group names are unique per test, so tests share a broker
//! without seeing each other's records. Every case is bounded by
//! `CASE_TIMEOUT` and closes its subscriptions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use novalog_log::embedded::{EmbeddedLog, EmbeddedOptions};
use novalog_log::kafka::{KafkaLog, KafkaOptions};
use novalog_log::{
    Consumed, Error, EventLog, OffsetLookup, Record, Subscription, TopicSpec, from_beginning,
};
use parking_lot::Mutex;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// Partition count of topics the backends create implicitly.
const DEFAULT_PARTITIONS: i32 = 3;
/// Upper bound of one test case, so a broken backend fails instead of hanging.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long to wait for records that are expected to arrive.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(30);

enum Kind {
    Embedded(tempfile::TempDir),
    Mock(MockCluster<'static, DefaultProducerContext>),
    Kafka(String),
}

/// A backend under test: opens fresh client instances of the same log.
///
/// Topics are not deleted after a case: names are unique, the test broker's
/// data goes with `scripts/broker.sh stop`, and tansu 0.6's DeleteTopics
/// deletes every topic of the cluster (its `topic_delete_by.sql` matches on
/// the cluster only), which broke the cases running next to it.
struct Backend {
    kind: Kind,
}

impl Backend {
    fn embedded() -> Option<Self> {
        Some(Self::new(Kind::Embedded(tempfile::tempdir().unwrap())))
    }

    fn mock() -> Option<Self> {
        Some(Self::new(Kind::Mock(MockCluster::new(1).unwrap())))
    }

    fn kafka() -> Option<Self> {
        match std::env::var("NOVALOG_KAFKA_BROKERS") {
            Ok(brokers) if !brokers.is_empty() => Some(Self::new(Kind::Kafka(brokers))),
            _ => {
                println!("skipped: NOVALOG_KAFKA_BROKERS not set");
                None
            }
        }
    }

    fn new(kind: Kind) -> Self {
        Self { kind }
    }

    fn is_kafka(&self) -> bool {
        !matches!(self.kind, Kind::Embedded(_))
    }

    fn kafka_options(&self) -> Option<KafkaOptions> {
        let servers = match &self.kind {
            Kind::Embedded(_) => return None,
            Kind::Mock(mock) => mock.bootstrap_servers(),
            Kind::Kafka(brokers) => brokers.clone(),
        };
        Some(KafkaOptions {
            client_id: "novalog-conformance".into(),
            partitions: DEFAULT_PARTITIONS,
            close_timeout: Duration::from_secs(10),
            ..KafkaOptions::new(servers)
        })
    }

    /// A new client of the same log (for the embedded log: the database
    /// reopened, so every earlier instance must be dropped first).
    fn open(&self) -> Arc<dyn EventLog> {
        match &self.kind {
            Kind::Embedded(dir) => Arc::new(
                EmbeddedLog::open(
                    dir.path(),
                    EmbeddedOptions {
                        default_partitions: DEFAULT_PARTITIONS,
                        sync: false,
                    },
                )
                .unwrap(),
            ),
            Kind::Mock(_) | Kind::Kafka(_) => {
                Arc::new(KafkaLog::new(self.kafka_options().unwrap()).unwrap())
            }
        }
    }

    /// Whether `append` to an unknown topic creates it (the mock cluster has
    /// no CreateTopics API).
    fn can_create_topics(&self) -> bool {
        !matches!(self.kind, Kind::Mock(_))
    }

    async fn create_topic(&self, log: &dyn EventLog, name: &str, partitions: i32) {
        if let Kind::Mock(mock) = &self.kind {
            mock.create_topic(name, partitions, 1).unwrap();
        }
        log.create_topics(&[TopicSpec {
            name: name.to_string(),
            partitions,
        }])
        .await
        .unwrap();
    }
}

fn unique(what: &str) -> String {
    format!("conf-{what}-{}", uuid::Uuid::new_v4().simple())
}

async fn run<F, Fut>(backend: Option<Backend>, case: F)
where
    F: FnOnce(Backend) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(backend) = backend else { return };
    tokio::time::timeout(CASE_TIMEOUT, case(backend))
        .await
        .expect("case timed out");
}

/// Reads from `sub` until `n` records have arrived.
async fn collect(sub: &mut Box<dyn Subscription>, n: usize) -> Vec<Consumed> {
    let deadline = Instant::now() + ARRIVAL_TIMEOUT;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, sub.next_batch(100)).await {
            Ok(batch) => out.extend(batch.unwrap()),
            Err(_) => panic!("only {} of {n} records arrived", out.len()),
        }
    }
    out
}

/// Asserts that nothing more arrives for a while.
async fn assert_quiet(sub: &mut Box<dyn Subscription>) {
    if let Ok(batch) = tokio::time::timeout(Duration::from_millis(500), sub.next_batch(100)).await {
        let batch = batch.unwrap();
        panic!("expected no more records, got {}", batch.len());
    }
}

fn record(topic: &str, key: &str, value: &str) -> Record {
    Record::new(topic, key.as_bytes(), value.as_bytes().to_vec())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// An offset store like the services keep: next offset per partition,
/// updated after each batch is processed.
#[derive(Clone, Default)]
struct Offsets(Arc<Mutex<HashMap<(String, i32), i64>>>);

impl Offsets {
    fn lookup(&self) -> OffsetLookup {
        let map = self.0.clone();
        Arc::new(move |topic, partition| map.lock().get(&(topic.to_string(), partition)).copied())
    }

    fn processed(&self, batch: &[Consumed]) {
        let mut map = self.0.lock();
        for r in batch {
            map.insert((r.topic.clone(), r.partition), r.offset + 1);
        }
    }
}

// ---------------------------------------------------------------- cases

/// Many keys interleaved over several appends: each key's values come back
/// in the order they were appended, and each key stays on one partition.
async fn per_key_order(b: Backend) {
    let log = b.open();
    let topic = unique("order");
    b.create_topic(&*log, &topic, 4).await;

    const KEYS: usize = 20;
    const PER_KEY: usize = 50;
    let mut records = Vec::new();
    for i in 0..PER_KEY {
        for k in 0..KEYS {
            records.push(record(&topic, &format!("key-{k}"), &format!("{i}")));
        }
    }
    let mut key_partition = HashMap::new();
    for chunk in records.chunks(37) {
        let positions = log.append(chunk.to_vec()).await.unwrap();
        assert_eq!(positions.len(), chunk.len());
        for (r, p) in chunk.iter().zip(&positions) {
            let first = *key_partition.entry(r.key.clone()).or_insert(p.partition);
            assert_eq!(first, p.partition, "a key moved between partitions");
        }
    }

    let mut sub = log
        .subscribe(&unique("g"), std::slice::from_ref(&topic), from_beginning())
        .await
        .unwrap();
    let got = collect(&mut sub, KEYS * PER_KEY).await;
    let mut per_key: HashMap<String, Vec<usize>> = HashMap::new();
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    for r in &got {
        assert_eq!(r.topic, topic);
        assert_eq!(key_partition[&r.key], r.partition);
        let prev = last_offset.insert(r.partition, r.offset);
        assert!(prev.is_none_or(|p| p < r.offset), "offsets not increasing");
        per_key
            .entry(text(&r.key))
            .or_default()
            .push(text(&r.value).parse().unwrap());
    }
    assert_eq!(per_key.len(), KEYS);
    for (key, values) in per_key {
        assert_eq!(values, (0..PER_KEY).collect::<Vec<_>>(), "order of {key}");
    }
    assert_quiet(&mut sub).await;
    sub.close().await;
}

/// Records appended before a restart (embedded: database reopened; Kafka: a
/// new client) are all there after it, and offsets continue after them.
async fn durable_across_restart(b: Backend) {
    let topic = unique("durable");
    let before_ends;
    {
        let log = b.open();
        b.create_topic(&*log, &topic, 2).await;
        let records: Vec<_> = (0..100)
            .map(|i| record(&topic, &format!("k{}", i % 10), &format!("v{i}")))
            .collect();
        log.append(records).await.unwrap();
        before_ends = log.end_offsets(&topic).await.unwrap();
    }
    assert_eq!(before_ends.iter().sum::<i64>(), 100);

    let log = b.open();
    assert_eq!(log.end_offsets(&topic).await.unwrap(), before_ends);
    let mut values = HashSet::new();
    for (partition, end) in before_ends.iter().enumerate() {
        let records = log.read(&topic, partition as i32, 0, 1000).await.unwrap();
        assert_eq!(records.len() as i64, *end);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
            assert!(r.timestamp_ms > 0);
            values.insert(text(&r.value));
        }
    }
    assert_eq!(values, (0..100).map(|i| format!("v{i}")).collect());

    let positions = log
        .append(vec![record(&topic, "k0", "after-restart")])
        .await
        .unwrap();
    let p = positions[0];
    assert_eq!(p.offset, before_ends[p.partition as usize]);
}

/// A subscription started from offsets the caller stored sees exactly the
/// records after them: nothing processed before, nothing missing.
async fn resume_from_stored_offsets(b: Backend) {
    let log = b.open();
    let topic = unique("resume");
    b.create_topic(&*log, &topic, 3).await;
    let records: Vec<_> = (0..200)
        .map(|i| record(&topic, &format!("k{}", i % 13), &format!("v{i}")))
        .collect();
    log.append(records).await.unwrap();

    let group = unique("g");
    let offsets = Offsets::default();
    let mut first = log
        .subscribe(&group, std::slice::from_ref(&topic), offsets.lookup())
        .await
        .unwrap();
    let seen_first = collect(&mut first, 80).await;
    offsets.processed(&seen_first);
    first.close().await;

    let mut second = log
        .subscribe(&group, std::slice::from_ref(&topic), offsets.lookup())
        .await
        .unwrap();
    let rest = collect(&mut second, 200 - seen_first.len()).await;
    assert_quiet(&mut second).await;
    second.close().await;

    let stored = offsets.0.lock().clone();
    for r in &rest {
        let from = stored
            .get(&(topic.clone(), r.partition))
            .copied()
            .unwrap_or(0);
        assert!(
            r.offset >= from,
            "re-delivered {}/{} below {from}",
            r.partition,
            r.offset
        );
    }
    let all: Vec<String> = seen_first
        .iter()
        .chain(&rest)
        .map(|r| text(&r.value))
        .collect();
    let unique_values: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 200, "duplicates or losses");
    assert_eq!(unique_values.len(), 200);
}

/// Four producers appending at once: every record arrives exactly once and
/// each producer's keys keep their order.
async fn concurrent_producers_no_loss_no_duplicates(b: Backend) {
    let log = b.open();
    let topic = unique("concurrent");
    b.create_topic(&*log, &topic, 4).await;

    const PRODUCERS: usize = 4;
    const PER_PRODUCER: usize = 500;
    let mut tasks = Vec::new();
    for p in 0..PRODUCERS {
        let log = log.clone();
        let topic = topic.clone();
        tasks.push(tokio::spawn(async move {
            let records: Vec<_> = (0..PER_PRODUCER)
                .map(|i| record(&topic, &format!("p{p}-k{}", i % 7), &format!("{p}:{i}")))
                .collect();
            // Mixed batch sizes, including single-record appends.
            let mut positions = Vec::new();
            for chunk in records.chunks(if p % 2 == 0 { 1 } else { 25 }) {
                positions.extend(log.append(chunk.to_vec()).await.unwrap());
            }
            positions
        }));
    }
    let mut positions = HashSet::new();
    for task in tasks {
        for p in task.await.unwrap() {
            assert!(
                positions.insert((p.partition, p.offset)),
                "position handed out twice"
            );
        }
    }
    assert_eq!(positions.len(), PRODUCERS * PER_PRODUCER);

    let mut sub = log
        .subscribe(&unique("g"), std::slice::from_ref(&topic), from_beginning())
        .await
        .unwrap();
    let got = collect(&mut sub, PRODUCERS * PER_PRODUCER).await;
    assert_quiet(&mut sub).await;
    sub.close().await;

    let mut seen = HashSet::new();
    let mut last_per_key: HashMap<String, usize> = HashMap::new();
    for r in &got {
        let value = text(&r.value);
        assert!(seen.insert(value.clone()), "duplicate {value}");
        assert!(positions.contains(&(r.partition, r.offset)));
        let i: usize = value.split(':').nth(1).unwrap().parse().unwrap();
        if let Some(prev) = last_per_key.insert(text(&r.key), i) {
            assert!(prev < i, "key {} out of order", text(&r.key));
        }
    }
    assert_eq!(seen.len(), PRODUCERS * PER_PRODUCER);
}

/// Two members of one group split the partitions; when one leaves, the
/// other takes them all and resumes them from the stored offsets.
async fn group_members_split_partitions(b: Backend) {
    let log = b.open();
    let topic = unique("group");
    b.create_topic(&*log, &topic, 4).await;
    let topics = std::slice::from_ref(&topic);
    let all_partitions: HashSet<(String, i32)> = (0..4).map(|p| (topic.clone(), p)).collect();

    if !b.is_kafka() {
        // The embedded log has one member per group: it holds everything.
        let sub = log.subscribe("g", topics, from_beginning()).await.unwrap();
        let held: HashSet<_> = sub.assignment().into_iter().collect();
        assert_eq!(held, all_partitions);
        sub.close().await;
        return;
    }

    let group = unique("g");
    let offsets = Offsets::default();
    let mut a = log
        .subscribe(&group, topics, offsets.lookup())
        .await
        .unwrap();
    let mut b_member = Some(
        log.subscribe(&group, topics, offsets.lookup())
            .await
            .unwrap(),
    );

    // Poll both until the group has settled with the partitions split.
    let deadline = Instant::now() + ARRIVAL_TIMEOUT;
    loop {
        let _ = tokio::time::timeout(Duration::from_millis(100), a.next_batch(10)).await;
        let member = b_member.as_mut().unwrap();
        let _ = tokio::time::timeout(Duration::from_millis(100), member.next_batch(10)).await;
        let held_a: HashSet<_> = a.assignment().into_iter().collect();
        let held_b: HashSet<_> = member.assignment().into_iter().collect();
        if !held_a.is_empty()
            && !held_b.is_empty()
            && held_a.is_disjoint(&held_b)
            && held_a.union(&held_b).cloned().collect::<HashSet<_>>() == all_partitions
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "group did not split: a={held_a:?} b={held_b:?}"
        );
    }

    let records: Vec<_> = (0..200)
        .map(|i| record(&topic, &format!("k{i}"), &format!("v{i}")))
        .collect();
    log.append(records).await.unwrap();

    let mut got_a = Vec::new();
    let mut got_b = Vec::new();
    let deadline = Instant::now() + ARRIVAL_TIMEOUT;
    while got_a.len() + got_b.len() < 200 {
        assert!(
            Instant::now() < deadline,
            "only {} + {} of 200 arrived",
            got_a.len(),
            got_b.len()
        );
        if let Ok(batch) = tokio::time::timeout(Duration::from_millis(100), a.next_batch(100)).await
        {
            let batch = batch.unwrap();
            offsets.processed(&batch);
            got_a.extend(batch);
        }
        let member = b_member.as_mut().unwrap();
        if let Ok(batch) =
            tokio::time::timeout(Duration::from_millis(100), member.next_batch(100)).await
        {
            let batch = batch.unwrap();
            offsets.processed(&batch);
            got_b.extend(batch);
        }
    }
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "one member got nothing"
    );
    let parts_a: HashSet<i32> = got_a.iter().map(|r| r.partition).collect();
    let parts_b: HashSet<i32> = got_b.iter().map(|r| r.partition).collect();
    assert!(parts_a.is_disjoint(&parts_b), "{parts_a:?} vs {parts_b:?}");
    let values: HashSet<String> = got_a.iter().chain(&got_b).map(|r| text(&r.value)).collect();
    assert_eq!(values.len(), 200);
    assert_eq!(got_a.len() + got_b.len(), 200, "duplicates");

    // Member b leaves; a takes over b's partitions from the stored offsets.
    b_member.take().unwrap().close().await;
    let more: Vec<_> = (200..300)
        .map(|i| record(&topic, &format!("k{i}"), &format!("v{i}")))
        .collect();
    log.append(more).await.unwrap();
    let deadline = Instant::now() + ARRIVAL_TIMEOUT;
    let mut after = Vec::new();
    while after.len() < 100 {
        assert!(
            Instant::now() < deadline,
            "only {} of 100 arrived after b left (a holds {:?})",
            after.len(),
            a.assignment()
        );
        if let Ok(batch) = tokio::time::timeout(Duration::from_millis(200), a.next_batch(100)).await
        {
            let batch = batch.unwrap();
            offsets.processed(&batch);
            after.extend(batch);
        }
    }
    let held: HashSet<_> = a.assignment().into_iter().collect();
    assert_eq!(held, all_partitions);
    let values: HashSet<String> = after.iter().map(|r| text(&r.value)).collect();
    assert_eq!(values, (200..300).map(|i| format!("v{i}")).collect());
    assert_eq!(after.len(), 100, "duplicates after takeover");
    assert_quiet(&mut a).await;
    a.close().await;
}

/// `read` returns a range of one partition and `end_offsets` the next offset
/// of each; `create_topics` leaves existing topics as they are.
async fn read_range_and_end_offsets(b: Backend) {
    let log = b.open();
    let topic = unique("read");
    b.create_topic(&*log, &topic, 3).await;
    // Idempotent, and a different count does not change an existing topic.
    log.create_topics(&[TopicSpec {
        name: topic.clone(),
        partitions: 5,
    }])
    .await
    .unwrap();
    assert_eq!(log.end_offsets(&topic).await.unwrap(), vec![0, 0, 0]);

    let positions = log
        .append(
            (0..30)
                .map(|i| record(&topic, "one-key", &format!("v{i}")))
                .collect(),
        )
        .await
        .unwrap();
    let partition = positions[0].partition;
    assert!(positions.iter().all(|p| p.partition == partition));
    assert_eq!(
        positions.iter().map(|p| p.offset).collect::<Vec<_>>(),
        (0..30).collect::<Vec<_>>()
    );
    let mut expected_ends = vec![0; 3];
    expected_ends[partition as usize] = 30;
    assert_eq!(log.end_offsets(&topic).await.unwrap(), expected_ends);

    let range = log.read(&topic, partition, 5, 10).await.unwrap();
    assert_eq!(
        range.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (5..15).collect::<Vec<_>>()
    );
    assert_eq!(
        range.iter().map(|r| text(&r.value)).collect::<Vec<_>>(),
        (5..15).map(|i| format!("v{i}")).collect::<Vec<_>>()
    );
    assert!(
        range
            .iter()
            .all(|r| r.key == b"one-key" && r.topic == topic)
    );
    let tail = log.read(&topic, partition, 25, 100).await.unwrap();
    assert_eq!(tail.len(), 5);
    assert_eq!(tail.last().unwrap().offset, 29);
    assert!(
        log.read(&topic, partition, 30, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let other = (partition + 1) % 3;
    assert!(log.read(&topic, other, 0, 10).await.unwrap().is_empty());

    match log.end_offsets(&unique("missing")).await {
        Err(Error::UnknownTopic(_)) => {}
        other => panic!("expected UnknownTopic, got {other:?}"),
    }
}

/// Appending to a topic nobody created creates it with the default
/// partition count (not on the mock cluster, which cannot create topics).
async fn append_creates_missing_topic(b: Backend) {
    if !b.can_create_topics() {
        println!("skipped: the mock cluster has no CreateTopics");
        return;
    }
    let log = b.open();
    let topic = unique("auto");
    let positions = log.append(vec![record(&topic, "k", "v")]).await.unwrap();
    let ends = log.end_offsets(&topic).await.unwrap();
    assert_eq!(ends.len(), DEFAULT_PARTITIONS as usize);
    assert_eq!(ends[positions[0].partition as usize], 1);
    let got = log
        .read(&topic, positions[0].partition, 0, 10)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].value, b"v");
}

/// A subscriber waiting at the end of a topic gets a new record promptly,
/// and a subscription to several topics gets records from all of them.
async fn tailing_subscriber_wakes(b: Backend) {
    let log = b.open();
    let t1 = unique("tail1");
    let t2 = unique("tail2");
    b.create_topic(&*log, &t1, 2).await;
    b.create_topic(&*log, &t2, 2).await;
    let mut sub = log
        .subscribe(&unique("g"), &[t1.clone(), t2.clone()], from_beginning())
        .await
        .unwrap();
    // Let a Kafka member join and go idle at the end before appending.
    assert_quiet(&mut sub).await;
    let mut wake_ms = BTreeMap::new();
    for (i, topic) in [&t1, &t2, &t1].into_iter().enumerate() {
        let started = Instant::now();
        log.append(vec![record(topic, "k", &format!("v{i}"))])
            .await
            .unwrap();
        let got = collect(&mut sub, 1).await;
        wake_ms.insert(i, started.elapsed().as_millis());
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0].topic, topic);
        assert_eq!(text(&got[0].value), format!("v{i}"));
    }
    println!("append-to-delivery ms: {wake_ms:?}");
    sub.close().await;
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::run(super::Backend::embedded(), super::$case).await;
                }
            )*
        }
        mod mock {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::run(super::Backend::mock(), super::$case).await;
                }
            )*
        }
        mod kafka {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::run(super::Backend::kafka(), super::$case).await;
                }
            )*
        }
    };
}

conformance!(
    per_key_order,
    durable_across_restart,
    resume_from_stored_offsets,
    concurrent_producers_no_loss_no_duplicates,
    group_members_split_partitions,
    read_range_and_end_offsets,
    append_creates_missing_topic,
    tailing_subscriber_wakes,
);
