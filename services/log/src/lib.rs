//! The event log: an ordered, durable, partitioned record log with consumer
//! groups, behind one trait with two backends.
//!
//! Everything above this crate talks to [`EventLog`] only and never learns
//! which backend it is on.
//!
//! # Layout
//! - [`EventLog`] / [`Subscription`]: the contract every backend keeps.
//! - [`embedded`]: a durable append-only log in RocksDB inside the process
//!   (a column family per topic, key = partition + offset), with wake-ups for
//!   tailing consumers.
//! - [`kafka`]: rdkafka with an idempotent producer (`acks=all`) and consumer
//!   groups; runs on Apache Kafka or any Kafka-protocol broker.
//!
//! # Offsets
//! Consumers store their own offsets next to the state they derive from the
//! records (DESIGN §3), so a subscription starts where the caller's
//! [`OffsetLookup`] says, never where the broker last saw a commit.

use std::sync::Arc;

use async_trait::async_trait;

pub mod embedded;
pub mod kafka;

/// A record to append: the partition is chosen from the key, so records with
/// the same key keep their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl Record {
    pub fn new(topic: impl Into<String>, key: impl Into<Vec<u8>>, value: Vec<u8>) -> Self {
        Self {
            topic: topic.into(),
            key: key.into(),
            value,
        }
    }
}

/// A record as read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// Append time, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// Where an appended record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
}

/// Returns the next offset to read for (topic, partition), or `None` to start
/// at the beginning of the partition. Called whenever a partition is assigned.
pub type OffsetLookup = Arc<dyn Fn(&str, i32) -> Option<i64> + Send + Sync>;

/// An offset lookup that always starts from the beginning.
pub fn from_beginning() -> OffsetLookup {
    Arc::new(|_, _| None)
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("kafka error: {0}")]
    Kafka(String),
    #[error("subscription closed")]
    Closed,
    #[error("timed out: {0}")]
    Timeout(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The log every service reads and writes.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Creates topics that do not exist yet; existing topics are left as they are.
    async fn create_topics(&self, topics: &[TopicSpec]) -> Result<()>;

    /// Appends a batch. Returns once every record is durable by the backend's
    /// standard (acknowledged by all in-sync replicas on Kafka, written to the
    /// RocksDB WAL for the embedded log). Records with the same key keep the
    /// order they have in `records`. The positions are in the order of
    /// `records`. A topic that does not exist yet is created with the
    /// backend's default partition count.
    async fn append(&self, records: Vec<Record>) -> Result<Vec<Position>>;

    /// Joins consumer group `group` on `topics`. Each assigned partition is
    /// read from the offset `offsets` returns for it. Topics that do not
    /// exist yet are created as by [`EventLog::append`].
    async fn subscribe(
        &self,
        group: &str,
        topics: &[String],
        offsets: OffsetLookup,
    ) -> Result<Box<dyn Subscription>>;

    /// Reads up to `max` records of one partition from `from` on (for replay,
    /// audit and tests). Returns fewer, or none, at the end of the partition.
    async fn read(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        max: usize,
    ) -> Result<Vec<Consumed>>;

    /// The next offset to be written, per partition (index = partition).
    async fn end_offsets(&self, topic: &str) -> Result<Vec<i64>>;

    /// Which of `topics` are configured to delete records (retention by
    /// time or size, compaction), each named with the setting that does.
    /// Every topic is kept forever (DESIGN §3); the embedded log never
    /// deletes, so it has none.
    async fn retention_problems(&self, _topics: &[String]) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// A live membership in a consumer group.
#[async_trait]
pub trait Subscription: Send {
    /// Waits until at least one record is available and returns up to `max`
    /// records, in offset order within each partition.
    async fn next_batch(&mut self, max: usize) -> Result<Vec<Consumed>>;

    /// The partitions this member holds now.
    fn assignment(&self) -> Vec<(String, i32)>;

    /// Leaves the group (bounded in time; never hangs).
    async fn close(self: Box<Self>);
}

/// Picks the partition of a key the way every backend does for the embedded
/// log (the Kafka backend leaves it to the client's partitioner).
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    // FNV-1a: stable across processes and releases.
    let mut h: u32 = 0x811c_9dc5;
    for b in key {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % partitions.max(1) as u32) as i32
}
