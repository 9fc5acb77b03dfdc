//! The Kafka backend: production and multi-host deployments (DESIGN §3).
//!
//! Plain Kafka protocol through rdkafka, nothing broker-specific, so it runs
//! on Apache Kafka and on Kafka-compatible brokers (our tests use tansu).
//!
//! # Appends
//! One idempotent `FutureProducer` (`acks=all`, at most 5 requests in flight)
//! per [`KafkaLog`]: a batch is enqueued in order and its deliveries are
//! awaited together, so records with the same key keep their order (the
//! idempotent producer never reorders within a partition) and a batch costs
//! one round trip, not one per record. Keys are partitioned with
//! `murmur2_random`, the Java client's partitioner, so other Kafka clients
//! agree on where a key lives.
//!
//! # Consumer groups and offsets
//! Consumers never commit offsets to the broker (`enable.auto.commit=false`);
//! the caller stores them with its own state. [`GroupContext`] takes over
//! librdkafka's rebalance callback: every partition assigned to this member is
//! assigned with the offset the caller's [`OffsetLookup`] returns (or the
//! beginning), so no fetch ever starts from a broker-side commit.
//!
//! # Topics
//! Appending to or subscribing to a topic this client has not seen yet first
//! makes sure it exists, creating it with [`KafkaOptions::partitions`] and
//! [`KafkaOptions::replication_factor`] when missing — the same rule as the
//! embedded log, without relying on the broker's `auto.create.topics.enable`
//! (which would pick the broker's partition count).
//!
//! # Closing
//! Closing a group member (leave group, final rebalance) can block inside
//! librdkafka for as long as the broker takes; some Kafka-compatible brokers
//! never answer. The consumer is therefore dropped on a detached thread and
//! `close` waits for it only up to [`KafkaOptions::close_timeout`]. A plain
//! thread, not `spawn_blocking`: a runtime waits for its blocking tasks when it
//! shuts down, so a hung close would hang the runtime's shutdown with it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use parking_lot::Mutex;
use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigResource, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;

use crate::{
    Consumed, Error, EventLog, OffsetLookup, Position, Record, Result, Subscription, TopicSpec,
};

/// How to reach the cluster and how to create topics on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaOptions {
    /// `host:port[,host:port...]` (librdkafka `bootstrap.servers`).
    pub bootstrap_servers: String,
    /// Sent to the broker with every request; shows up in broker logs and
    /// quotas. Also the prefix of the group id used by [`EventLog::read`].
    pub client_id: String,
    /// Partition count of topics this client creates.
    pub partitions: i32,
    /// Replication factor of topics this client creates.
    pub replication_factor: i32,
    /// Extra librdkafka properties for every client (producer, consumers,
    /// admin); they override the defaults set here, e.g.
    /// `session.timeout.ms` for production or `security.protocol`.
    pub properties: BTreeMap<String, String>,
    /// Bound on admin and metadata requests and on [`EventLog::read`].
    pub request_timeout: Duration,
    /// How long [`Subscription::close`] waits for the consumer to leave its
    /// group before giving up on it.
    pub close_timeout: Duration,
}

impl KafkaOptions {
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            ..Self::default()
        }
    }
}

impl Default for KafkaOptions {
    fn default() -> Self {
        Self {
            bootstrap_servers: "127.0.0.1:9092".into(),
            client_id: "novalog".into(),
            partitions: 8,
            replication_factor: 1,
            properties: BTreeMap::new(),
            request_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
        }
    }
}

/// The Kafka-backed log.
pub struct KafkaLog {
    options: KafkaOptions,
    producer: FutureProducer,
    /// Creates topics, and answers metadata and watermark queries (it has its
    /// own polling thread, so its queues never fill up unattended).
    admin: Arc<AdminClient<DefaultClientContext>>,
    /// Topics known to exist, so appends check the cluster once per topic.
    known_topics: Mutex<HashSet<String>>,
}

impl KafkaLog {
    /// Creates the producer and admin clients. Connects lazily: a broker that
    /// is down shows up as errors of the first calls, not here.
    pub fn new(options: KafkaOptions) -> Result<Self> {
        if options.partitions < 1 || options.replication_factor < 1 {
            return Err(Error::Kafka(
                "partitions and replication factor must be at least 1".into(),
            ));
        }
        let producer = client_config(
            &options,
            &[
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("max.in.flight.requests.per.connection", "5"),
                // Batches still form while requests are in flight; lingering
                // (librdkafka's default is 5 ms) would add its wait to every
                // append, and saga steps chain appends one after another.
                ("linger.ms", "0"),
                ("partitioner", "murmur2_random"),
                ("message.timeout.ms", "30000"),
                // Topics are created explicitly with our partition count.
                ("allow.auto.create.topics", "false"),
            ],
        )
        .create()
        .map_err(kafka)?;
        let admin = client_config(&options, &[("allow.auto.create.topics", "false")])
            .create()
            .map_err(kafka)?;
        Ok(Self {
            options,
            producer,
            admin: Arc::new(admin),
            known_topics: Mutex::new(HashSet::new()),
        })
    }

    /// Makes sure every topic in `names` exists, creating missing ones with
    /// the configured partition count.
    async fn ensure_topics(&self, names: &[&str]) -> Result<()> {
        let unknown: Vec<String> = {
            let known = self.known_topics.lock();
            let mut unknown: Vec<String> = names
                .iter()
                .filter(|n| !known.contains(**n))
                .map(|n| n.to_string())
                .collect();
            unknown.sort();
            unknown.dedup();
            unknown
        };
        if unknown.is_empty() {
            return Ok(());
        }
        let specs: Vec<TopicSpec> = unknown
            .into_iter()
            .map(|name| TopicSpec {
                name,
                partitions: self.options.partitions,
            })
            .collect();
        self.create_topics(&specs).await
    }

    /// Metadata of one topic: `Ok(None)` if the cluster does not know it.
    async fn topic_partitions(&self, topic: &str) -> Result<Option<TopicMeta>> {
        let admin = self.admin.clone();
        let topic = topic.to_string();
        let timeout = self.options.request_timeout;
        blocking(move || {
            let metadata = admin
                .inner()
                .fetch_metadata(Some(&topic), timeout)
                .map_err(kafka)?;
            let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
                return Ok(None);
            };
            match t.error().map(RDKafkaErrorCode::from) {
                None => {}
                Some(RDKafkaErrorCode::UnknownTopicOrPartition) => return Ok(None),
                // A topic just created may have no leader yet; report it with
                // no partitions so callers wait for it.
                Some(RDKafkaErrorCode::LeaderNotAvailable) => {
                    return Ok(Some(TopicMeta {
                        partitions: 0,
                        all_led: false,
                    }));
                }
                Some(code) => return Err(Error::Kafka(format!("metadata of {topic}: {code}"))),
            }
            Ok(Some(TopicMeta {
                partitions: t.partitions().len() as i32,
                all_led: t
                    .partitions()
                    .iter()
                    .all(|p| p.leader() >= 0 && p.error().is_none()),
            }))
        })
        .await
    }

    /// Waits until the cluster's metadata shows `topic` with a leader for
    /// every partition, so a consumer subscribing next sees all of it.
    async fn wait_for_topic(&self, topic: &str, deadline: Instant) -> Result<()> {
        loop {
            if let Some(meta) = self.topic_partitions(topic).await?
                && meta.partitions > 0
                && meta.all_led
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!("topic {topic} did not appear")));
            }
            // Only on topic creation, never on the append or consume path.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn consumer_config(&self, group: &str) -> ClientConfig {
        client_config(
            &self.options,
            &[
                ("group.id", group),
                // Offsets live with the caller's state (DESIGN §3).
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", "earliest"),
                // librdkafka's default makes every fetch of a tailing consumer
                // wait 500 ms on brokers that hold fetches to the maximum.
                ("fetch.wait.max.ms", "10"),
                // Short enough that tests see failover quickly, and the
                // smallest Apache Kafka accepts by default
                // (group.min.session.timeout.ms = 6000).
                ("session.timeout.ms", "6000"),
                ("heartbeat.interval.ms", "1000"),
                ("allow.auto.create.topics", "false"),
            ],
        )
    }
}

struct TopicMeta {
    partitions: i32,
    all_led: bool,
}

/// Base config for every client: ours first, then the caller's properties,
/// which win.
fn client_config(options: &KafkaOptions, defaults: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &options.bootstrap_servers)
        .set("client.id", &options.client_id);
    for (key, value) in defaults {
        config.set(*key, *value);
    }
    for (key, value) in &options.properties {
        config.set(key, value);
    }
    config
}

#[async_trait]
impl EventLog for KafkaLog {
    async fn create_topics(&self, topics: &[TopicSpec]) -> Result<()> {
        if topics.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + self.options.request_timeout;
        // Only ask the broker to create what it does not have: fewer admin
        // requests, and clusters that refuse CreateTopics still work with
        // topics provisioned by their operators.
        let mut missing = Vec::new();
        for spec in topics {
            if self.topic_partitions(&spec.name).await?.is_none() {
                missing.push(spec);
            }
        }
        if !missing.is_empty() {
            let replication = self.options.replication_factor;
            let new_topics: Vec<NewTopic<'_>> = missing
                .iter()
                .map(|spec| {
                    // Kept forever: the log is the truth every projection,
                    // audit and bill is rebuilt from (DESIGN §3).
                    NewTopic::new(
                        &spec.name,
                        spec.partitions,
                        TopicReplication::Fixed(replication),
                    )
                    .set("retention.ms", "-1")
                    .set("retention.bytes", "-1")
                })
                .collect();
            let admin_options = AdminOptions::new()
                .request_timeout(Some(self.options.request_timeout))
                .operation_timeout(Some(self.options.request_timeout));
            let results = self
                .admin
                .create_topics(new_topics.iter(), &admin_options)
                .await
                .map_err(kafka)?;
            for result in results {
                match result {
                    Ok(name) => tracing::info!(topic = %name, "created topic"),
                    // Someone else created it between our check and now.
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((name, code)) => {
                        return Err(Error::Kafka(format!("create topic {name}: {code}")));
                    }
                }
            }
        }
        for spec in topics {
            self.wait_for_topic(&spec.name, deadline).await?;
            self.known_topics.lock().insert(spec.name.clone());
        }
        Ok(())
    }

    async fn retention_problems(&self, topics: &[String]) -> Result<Vec<String>> {
        let specs: Vec<ResourceSpecifier<'_>> =
            topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
        let options = AdminOptions::new().request_timeout(Some(self.options.request_timeout));
        let results = self
            .admin
            .describe_configs(specs.iter(), &options)
            .await
            .map_err(kafka)?;
        let mut problems = Vec::new();
        for (topic, result) in topics.iter().zip(results) {
            match result {
                Ok(config) => problems.extend(retention_problem(topic, &config)),
                // A topic that does not exist yet is created with -1.
                Err(RDKafkaErrorCode::UnknownTopicOrPartition) => {}
                Err(code) => {
                    return Err(Error::Kafka(format!("describe configs of {topic}: {code}")));
                }
            }
        }
        Ok(problems)
    }

    async fn append(&self, records: Vec<Record>) -> Result<Vec<Position>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let topics: Vec<&str> = records.iter().map(|r| r.topic.as_str()).collect();
        self.ensure_topics(&topics).await?;

        // Enqueue strictly in order, then await all deliveries at once.
        let deadline = Instant::now() + self.options.request_timeout;
        let mut deliveries = Vec::with_capacity(records.len());
        for record in &records {
            loop {
                let future_record = FutureRecord::to(&record.topic)
                    .key(&record.key)
                    .payload(&record.value);
                match self.producer.send_result(future_record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    // The local queue is full (100k messages by default): a
                    // burst far above what the broker takes. Back off.
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                        if Instant::now() < deadline =>
                    {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => return Err(kafka(e)),
                }
            }
        }
        let mut positions = Vec::with_capacity(deliveries.len());
        for delivery in futures::future::join_all(deliveries).await {
            match delivery {
                Ok(Ok(d)) => positions.push(Position {
                    partition: d.partition,
                    offset: d.offset,
                }),
                Ok(Err((e, _))) => return Err(kafka(e)),
                Err(_) => return Err(Error::Kafka("producer dropped a delivery".into())),
            }
        }
        Ok(positions)
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[String],
        offsets: OffsetLookup,
    ) -> Result<Box<dyn Subscription>> {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        self.ensure_topics(&names).await?;
        let consumer: StreamConsumer<GroupContext> = self
            .consumer_config(group)
            .create_with_context(GroupContext { offsets })
            .map_err(kafka)?;
        consumer.subscribe(&names).map_err(kafka)?;
        Ok(Box::new(KafkaSubscription {
            consumer: Some(consumer),
            close_timeout: self.options.close_timeout,
        }))
    }

    async fn read(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        max: usize,
    ) -> Result<Vec<Consumed>> {
        let admin = self.admin.clone();
        let timeout = self.options.request_timeout;
        let topic_owned = topic.to_string();
        let (low, high) = blocking(move || {
            admin
                .inner()
                .fetch_watermarks(&topic_owned, partition, timeout)
                .map_err(|e| unknown_or_kafka(e, &topic_owned, partition))
        })
        .await?;
        let start = from.max(low);
        if start >= high || max == 0 {
            return Ok(Vec::new());
        }

        // A consumer that is assigned the partition but never joins the
        // group (librdkafka wants a group id for assign) and never commits.
        let config = client_config(
            &self.options,
            &[
                ("group.id", &format!("{}.read", self.options.client_id)),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", "earliest"),
                ("fetch.wait.max.ms", "10"),
                ("allow.auto.create.topics", "false"),
            ],
        );
        let topic = topic.to_string();
        blocking(move || {
            let consumer: BaseConsumer = config.create().map_err(kafka)?;
            let result = (|| {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&topic, partition, Offset::Offset(start))
                    .map_err(kafka)?;
                consumer.assign(&tpl).map_err(kafka)?;
                let deadline = Instant::now() + timeout;
                let mut out = Vec::new();
                while out.len() < max {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::Timeout(format!(
                            "read {topic}/{partition} from {start}: got {} records",
                            out.len()
                        )));
                    }
                    match consumer.poll(left) {
                        None => {}
                        Some(Ok(message)) => {
                            let record = to_consumed(&message);
                            let last = record.offset >= high - 1;
                            out.push(record);
                            if last {
                                break;
                            }
                        }
                        Some(Err(KafkaError::PartitionEOF(_))) => break,
                        Some(Err(e)) => return Err(kafka(e)),
                    }
                }
                Ok(out)
            })();
            drop_detached(consumer);
            result
        })
        .await
    }

    async fn end_offsets(&self, topic: &str) -> Result<Vec<i64>> {
        let meta = self
            .topic_partitions(topic)
            .await?
            .ok_or_else(|| Error::UnknownTopic(topic.to_string()))?;
        let admin = self.admin.clone();
        let timeout = self.options.request_timeout;
        let topic = topic.to_string();
        blocking(move || {
            (0..meta.partitions)
                .map(|p| {
                    admin
                        .inner()
                        .fetch_watermarks(&topic, p, timeout)
                        .map(|(_, high)| high)
                        .map_err(|e| unknown_or_kafka(e, &topic, p))
                })
                .collect()
        })
        .await
    }
}

/// Consumer context that assigns partitions at the caller's offsets.
struct GroupContext {
    offsets: OffsetLookup,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let mut assignment = TopicPartitionList::with_capacity(tpl.count());
                for elem in tpl.elements() {
                    let offset = match (self.offsets)(elem.topic(), elem.partition()) {
                        Some(offset) => Offset::Offset(offset.max(0)),
                        None => Offset::Beginning,
                    };
                    if let Err(e) =
                        assignment.add_partition_offset(elem.topic(), elem.partition(), offset)
                    {
                        tracing::error!(error = %e, "cannot build assignment");
                    }
                }
                // Info, not debug: rare (a member joins or leaves), and the
                // first thing to look at when a restarted service sits idle.
                tracing::info!(assignment = ?assignment.to_topic_map(), "partitions assigned");
                let result = if cooperative {
                    consumer.incremental_assign(&assignment)
                } else {
                    consumer.assign(&assignment)
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, "assign failed");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(revoked = ?tpl.to_topic_map(), "partitions revoked");
                let result = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, "unassign failed");
                }
            }
            other => {
                // librdkafka asks for the assignment to be dropped on error.
                tracing::warn!(error = ?other, "rebalance error");
                if let Err(e) = consumer.unassign() {
                    tracing::error!(error = %e, "unassign failed");
                }
            }
        }
    }
}

struct KafkaSubscription {
    /// `None` once closed.
    consumer: Option<StreamConsumer<GroupContext>>,
    close_timeout: Duration,
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Vec<Consumed>> {
        let consumer = self.consumer.as_ref().ok_or(Error::Closed)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut stream = consumer.stream();
        let mut out = Vec::new();
        while out.is_empty() {
            match stream.next().await {
                Some(Ok(message)) => out.push(to_consumed(&message)),
                Some(Err(e)) => consumer_error(e)?,
                None => return Err(Error::Closed),
            }
        }
        // Then whatever is already fetched, without waiting for more.
        while out.len() < max {
            match stream.next().now_or_never() {
                Some(Some(Ok(message))) => out.push(to_consumed(&message)),
                Some(Some(Err(e))) => consumer_error(e)?,
                Some(None) | None => break,
            }
        }
        Ok(out)
    }

    fn assignment(&self) -> Vec<(String, i32)> {
        let Some(consumer) = &self.consumer else {
            return Vec::new();
        };
        match consumer.assignment() {
            Ok(tpl) => tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read assignment");
                Vec::new()
            }
        }
    }

    async fn close(mut self: Box<Self>) {
        if let Some(consumer) = self.consumer.take() {
            let done = drop_detached(consumer);
            if tokio::time::timeout(self.close_timeout, done)
                .await
                .is_err()
            {
                tracing::warn!(
                    timeout = ?self.close_timeout,
                    "consumer did not leave its group in time; leaving it behind"
                );
            }
        }
    }
}

impl Drop for KafkaSubscription {
    fn drop(&mut self) {
        if let Some(consumer) = self.consumer.take() {
            drop(drop_detached(consumer));
        }
    }
}

/// Drops `value` on a thread of its own; the returned channel fires when the
/// drop has finished. The thread is never joined (see the module doc).
fn drop_detached<T: Send + 'static>(value: T) -> tokio::sync::oneshot::Receiver<()> {
    let (done, wait) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("novalog-kafka-close".into())
        .spawn(move || {
            drop(value);
            let _ = done.send(());
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot spawn consumer close thread");
    }
    wait
}

/// Decides whether a consumer error ends the subscription. Most are
/// transient (a broker restarting, a topic's leader moving) and librdkafka
/// recovers from them by itself.
fn consumer_error(e: KafkaError) -> Result<()> {
    match e {
        KafkaError::PartitionEOF(_) => Ok(()),
        KafkaError::MessageConsumptionFatal(_) => Err(kafka(e)),
        other => {
            tracing::warn!(error = %other, "consumer error");
            Ok(())
        }
    }
}

fn to_consumed(message: &BorrowedMessage<'_>) -> Consumed {
    Consumed {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().unwrap_or_default().to_vec(),
        value: message.payload().unwrap_or_default().to_vec(),
        timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
    }
}

fn unknown_or_kafka(e: KafkaError, topic: &str, partition: i32) -> Error {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownPartition) => {
            Error::UnknownTopic(format!("{topic} partition {partition}"))
        }
        Some(RDKafkaErrorCode::UnknownTopic) => Error::UnknownTopic(topic.to_string()),
        _ => kafka(e),
    }
}

/// Runs a blocking librdkafka call off the async workers. These calls are
/// bounded by `request_timeout`, so `spawn_blocking` is fine here.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Kafka(format!("blocking task failed: {e}")))?
}

fn kafka(e: KafkaError) -> Error {
    Error::Kafka(e.to_string())
}

/// What in a topic's configuration would delete history, if anything:
/// compaction (older values of a key), or time or size retention.
fn retention_problem(topic: &str, config: &ConfigResource) -> Option<String> {
    let value = |name: &str| {
        config
            .get(name)
            .and_then(|e| e.value.clone())
            .unwrap_or_default()
    };
    let policy = value("cleanup.policy");
    if policy.contains("compact") {
        return Some(format!(
            "topic {topic}: cleanup.policy={policy} (compaction deletes history)"
        ));
    }
    for setting in ["retention.ms", "retention.bytes"] {
        let v = value(setting);
        if v.parse::<i64>().is_ok_and(|n| n >= 0) {
            return Some(format!(
                "topic {topic}: {setting}={v} (must be -1: the log is kept forever)"
            ));
        }
    }
    None
}
