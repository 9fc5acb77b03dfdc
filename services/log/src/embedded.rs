//! The embedded backend: a durable append-only log in RocksDB inside the
//! process, so a single machine runs Novalog with zero setup (DESIGN §3).
//!
//! # Layout on disk
//! - one column family per topic, named `topic:<name>`; key = partition
//!   (u32 big-endian) + offset (u64 big-endian), so a partition is one
//!   contiguous, ordered key range; value = [`encode_frame`] of the record's
//!   append time, key and value.
//! - the column family [`META_CF`] holds each topic's partition count, so the
//!   key → partition mapping survives restarts.
//!
//! # Appends
//! One writer thread owns offset assignment. `append` hands its records to
//! it and awaits the reply; the writer drains every request that is waiting,
//! writes them as ONE `WriteBatch` (so concurrent appenders share one WAL
//! write, and one fsync when `sync` is on — group commit), then publishes the
//! new end offsets and wakes tailing subscribers through a `watch` channel per
//! topic. A single writer also means offsets become visible strictly in
//! order: a reader never sees offset n+1 before n.
//!
//! # Consumer groups
//! There is one process, so a group has one member in practice: every
//! subscription gets all partitions of its topics and starts where the
//! caller's [`OffsetLookup`] says. Two subscriptions in one group both read
//! everything; they do not split partitions as on Kafka.
//!
//! # Topics
//! Appending to or subscribing to a topic that does not exist creates it with
//! [`EmbeddedOptions::default_partitions`]; `create_topics` lets a deployment
//! choose other counts first. A topic's partition count never changes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use rocksdb::{
    BoundColumnFamily, DBCompressionType, DBWithThreadMode, IteratorMode, MultiThreaded, Options,
    ReadOptions, WriteBatch, WriteOptions,
};
use tokio::sync::{oneshot, watch};

use crate::{
    Consumed, Error, EventLog, OffsetLookup, Position, Record, Result, Subscription, TopicSpec,
    partition_for,
};

type Db = DBWithThreadMode<MultiThreaded>;

/// Column family holding topic metadata (`partitions/<topic>` → i32 BE).
const META_CF: &str = "novalog:meta";
const TOPIC_CF_PREFIX: &str = "topic:";
const PARTITIONS_KEY_PREFIX: &str = "partitions/";
/// Upper bound of records the writer folds into one WriteBatch, so one huge
/// burst does not delay the replies of the first appenders for long.
const MAX_GROUP_RECORDS: usize = 4096;

/// How the embedded log is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// Partition count of topics created implicitly (by `append` or
    /// `subscribe` on a topic nobody created).
    pub default_partitions: i32,
    /// fsync the WAL before an append returns. Off, an append survives a
    /// crash of the process but not of the machine; on, it survives both, at
    /// the cost of one fsync per write group.
    pub sync: bool,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            default_partitions: 4,
            sync: false,
        }
    }
}

/// The embedded log. Cheap to clone; the database closes when the last clone
/// and the last subscription are gone.
#[derive(Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

/// What the handle owns besides the shared state: the way to the writer
/// thread, so dropping the last handle stops the writer.
struct Inner {
    shared: Arc<Shared>,
    /// Requests to the writer thread; `None` once shut down.
    writer_tx: Option<mpsc::Sender<AppendRequest>>,
    writer: Option<JoinHandle<()>>,
}

/// State shared by the handle, the writer thread and subscriptions.
struct Shared {
    db: Db,
    options: EmbeddedOptions,
    topics: RwLock<HashMap<String, Arc<TopicState>>>,
    /// Serialises topic creation (metadata write + column family creation).
    create_lock: Mutex<()>,
}

struct TopicState {
    name: String,
    cf_name: String,
    partitions: i32,
    /// Next offset to be written, per partition. Written only by the writer
    /// thread, after the records below it are in RocksDB.
    ends: Vec<AtomicI64>,
    /// Bumped after every write that touched this topic; tailing
    /// subscribers wait on it.
    changed: watch::Sender<u64>,
}

struct AppendRequest {
    records: Vec<Record>,
    reply: oneshot::Sender<Result<Vec<Position>>>,
}

impl EmbeddedLog {
    /// Opens (or creates) the log in directory `path`.
    pub fn open(path: impl AsRef<Path>, options: EmbeddedOptions) -> Result<Self> {
        let path = path.as_ref();
        let db_opts = db_options();
        // A new directory has no column families yet; list_cf fails then.
        let mut cfs = Db::list_cf(&db_opts, path).unwrap_or_default();
        if !cfs.iter().any(|c| c == META_CF) {
            cfs.push(META_CF.to_string());
        }
        let db = Db::open_cf_descriptors(
            &db_opts,
            path,
            cfs.iter()
                .map(|name| rocksdb::ColumnFamilyDescriptor::new(name, cf_options())),
        )
        .map_err(storage)?;

        let shared = Arc::new(Shared {
            db,
            options,
            topics: RwLock::new(HashMap::new()),
            create_lock: Mutex::new(()),
        });
        shared.load_topics()?;

        let (writer_tx, writer_rx) = mpsc::channel();
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("novalog-log-writer".into())
                .spawn(move || writer_loop(&shared, &writer_rx))
                .map_err(|e| Error::Storage(format!("spawn log writer: {e}")))?
        };
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                writer_tx: Some(writer_tx),
                writer: Some(writer),
            }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer loop once it has answered what
        // is queued; joining makes sure the writer's hold on the database is
        // gone before the caller reopens the same path.
        self.writer_tx.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Shared {
    fn load_topics(&self) -> Result<()> {
        let meta = self.meta_cf()?;
        let mut specs = Vec::new();
        for item in self.db.iterator_cf(&meta, IteratorMode::Start) {
            let (key, value) = item.map_err(storage)?;
            let Some(name) = key.strip_prefix(PARTITIONS_KEY_PREFIX.as_bytes()) else {
                continue;
            };
            let name = String::from_utf8(name.to_vec())
                .map_err(|_| Error::Storage("topic name in metadata is not UTF-8".into()))?;
            let partitions = <[u8; 4]>::try_from(&*value)
                .map(i32::from_be_bytes)
                .map_err(|_| Error::Storage(format!("bad partition count for topic {name}")))?;
            specs.push((name, partitions));
        }
        drop(meta);
        for (name, partitions) in specs {
            let cf_name = cf_name(&name);
            // The metadata is written before the column family is created, so
            // a crash in between leaves metadata without a column family.
            if self.db.cf_handle(&cf_name).is_none() {
                self.db
                    .create_cf(&cf_name, &cf_options())
                    .map_err(storage)?;
            }
            let ends = self.load_ends(&cf_name, partitions)?;
            self.topics.write().insert(
                name.clone(),
                Arc::new(TopicState::new(name, partitions, ends)),
            );
        }
        Ok(())
    }

    /// The next offset of each partition, found from the last key on disk.
    fn load_ends(&self, cf_name: &str, partitions: i32) -> Result<Vec<i64>> {
        let cf = self.topic_cf(cf_name)?;
        let mut ends = Vec::with_capacity(partitions as usize);
        for p in 0..partitions {
            let mut opts = ReadOptions::default();
            opts.set_iterate_lower_bound(record_key(p, 0).to_vec());
            opts.set_iterate_upper_bound(partition_upper_bound(p));
            let mut it = self.db.raw_iterator_cf_opt(&cf, opts);
            it.seek_to_last();
            let end = match it.key() {
                Some(key) => decode_key(key)?.1 + 1,
                None => {
                    it.status().map_err(storage)?;
                    0
                }
            };
            ends.push(end);
        }
        Ok(ends)
    }

    fn meta_cf(&self) -> Result<Arc<BoundColumnFamily<'_>>> {
        self.db
            .cf_handle(META_CF)
            .ok_or_else(|| Error::Storage("metadata column family missing".into()))
    }

    fn topic_cf(&self, cf_name: &str) -> Result<Arc<BoundColumnFamily<'_>>> {
        self.db
            .cf_handle(cf_name)
            .ok_or_else(|| Error::Storage(format!("column family {cf_name} missing")))
    }

    fn topic(&self, name: &str) -> Option<Arc<TopicState>> {
        self.topics.read().get(name).cloned()
    }

    /// Returns the topic, creating it with `partitions` if it does not exist.
    fn ensure_topic(&self, name: &str, partitions: i32) -> Result<Arc<TopicState>> {
        if let Some(topic) = self.topic(name) {
            return Ok(topic);
        }
        if partitions < 1 {
            return Err(Error::Storage(format!(
                "topic {name}: partition count must be at least 1, got {partitions}"
            )));
        }
        let _guard = self.create_lock.lock();
        if let Some(topic) = self.topic(name) {
            return Ok(topic);
        }
        let cf_name = cf_name(name);
        let meta = self.meta_cf()?;
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        self.db
            .put_cf_opt(
                &meta,
                format!("{PARTITIONS_KEY_PREFIX}{name}"),
                partitions.to_be_bytes(),
                &sync,
            )
            .map_err(storage)?;
        drop(meta);
        if self.db.cf_handle(&cf_name).is_none() {
            self.db
                .create_cf(&cf_name, &cf_options())
                .map_err(storage)?;
        }
        let topic = Arc::new(TopicState::new(
            name.to_string(),
            partitions,
            vec![0; partitions as usize],
        ));
        self.topics.write().insert(name.to_string(), topic.clone());
        tracing::debug!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Reads offsets `[from, min(from + max, end))` of one partition.
    fn read_range(
        &self,
        topic: &TopicState,
        partition: i32,
        from: i64,
        max: usize,
    ) -> Result<Vec<Consumed>> {
        let end = topic.end(partition);
        let from = from.max(0);
        if from >= end || max == 0 {
            return Ok(Vec::new());
        }
        let until = end.min(from.saturating_add(i64::try_from(max).unwrap_or(i64::MAX)));
        let cf = self.topic_cf(&topic.cf_name)?;
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(record_key(partition, until).to_vec());
        let start = record_key(partition, from);
        let mut out = Vec::with_capacity((until - from) as usize);
        let it = self.db.iterator_cf_opt(
            &cf,
            opts,
            IteratorMode::From(&start, rocksdb::Direction::Forward),
        );
        for item in it {
            let (key, value) = item.map_err(storage)?;
            let (p, offset) = decode_key(&key)?;
            let (timestamp_ms, key, value) = decode_frame(&value)?;
            out.push(Consumed {
                topic: topic.name.clone(),
                partition: p,
                offset,
                key: key.to_vec(),
                value: value.to_vec(),
                timestamp_ms,
            });
        }
        Ok(out)
    }

    /// Writes one group of append requests as one WriteBatch and answers
    /// each request.
    fn write_group(&self, group: Vec<AppendRequest>) {
        let now = now_ms();
        let topics = self.topics.read();
        // Offsets handed out in this group, published only once it is durable.
        let mut pending: HashMap<&str, (&Arc<TopicState>, Vec<i64>)> = HashMap::new();
        let mut cfs: HashMap<&str, Arc<BoundColumnFamily<'_>>> = HashMap::new();
        let mut batch = WriteBatch::default();
        // One answer per request, in the order of `group`.
        let mut answers: Vec<Result<Vec<Position>>> = Vec::with_capacity(group.len());

        for req in &group {
            // `append` creates topics before queueing, so a miss here means a
            // bug; reject the whole request rather than write part of it.
            if let Some(missing) = req.records.iter().find(|r| !topics.contains_key(&r.topic)) {
                answers.push(Err(Error::UnknownTopic(missing.topic.clone())));
                continue;
            }
            let mut positions = Vec::with_capacity(req.records.len());
            for record in &req.records {
                let topic = &topics[&record.topic];
                if !cfs.contains_key(topic.name.as_str()) {
                    match self.topic_cf(&topic.cf_name) {
                        Ok(cf) => {
                            cfs.insert(&topic.name, cf);
                        }
                        Err(e) => {
                            drop(cfs);
                            return fail_group(group, &e);
                        }
                    }
                }
                let (_, ends) = pending
                    .entry(&topic.name)
                    .or_insert_with(|| (topic, topic.ends_snapshot()));
                let partition = partition_for(&record.key, topic.partitions);
                let offset = ends[partition as usize];
                ends[partition as usize] += 1;
                batch.put_cf(
                    &cfs[topic.name.as_str()],
                    record_key(partition, offset),
                    encode_frame(now, &record.key, &record.value),
                );
                positions.push(Position { partition, offset });
            }
            answers.push(Ok(positions));
        }

        let mut write_opts = WriteOptions::default();
        write_opts.set_sync(self.options.sync);
        if let Err(e) = self.db.write_opt(batch, &write_opts) {
            drop(cfs);
            return fail_group(group, &storage(e));
        }
        // Publish ends before waking anyone: a woken subscriber must see them.
        for (topic, ends) in pending.values() {
            for (slot, end) in topic.ends.iter().zip(ends) {
                slot.store(*end, Ordering::Release);
            }
            topic.changed.send_modify(|v| *v = v.wrapping_add(1));
        }
        for (req, answer) in group.into_iter().zip(answers) {
            let _ = req.reply.send(answer);
        }
    }
}

/// Answers every request of a group that could not be written. Nothing was
/// published, so the offsets it would have used are handed out again.
fn fail_group(group: Vec<AppendRequest>, error: &Error) {
    tracing::error!(%error, "embedded log write failed");
    for req in group {
        let _ = req.reply.send(Err(Error::Storage(error.to_string())));
    }
}

fn writer_loop(shared: &Shared, rx: &mpsc::Receiver<AppendRequest>) {
    while let Ok(first) = rx.recv() {
        let mut records = first.records.len();
        let mut group = vec![first];
        // Everything that queued up while the previous group was being
        // written goes into this one: that is the group commit.
        while records < MAX_GROUP_RECORDS {
            match rx.try_recv() {
                Ok(req) => {
                    records += req.records.len();
                    group.push(req);
                }
                Err(_) => break,
            }
        }
        shared.write_group(group);
    }
}

impl TopicState {
    fn new(name: String, partitions: i32, ends: Vec<i64>) -> Self {
        Self {
            cf_name: cf_name(&name),
            name,
            partitions,
            ends: ends.into_iter().map(AtomicI64::new).collect(),
            changed: watch::Sender::new(0),
        }
    }

    fn end(&self, partition: i32) -> i64 {
        self.ends[partition as usize].load(Ordering::Acquire)
    }

    fn ends_snapshot(&self) -> Vec<i64> {
        self.ends
            .iter()
            .map(|e| e.load(Ordering::Acquire))
            .collect()
    }
}

#[async_trait]
impl EventLog for EmbeddedLog {
    async fn create_topics(&self, topics: &[TopicSpec]) -> Result<()> {
        for spec in topics {
            self.shared().ensure_topic(&spec.name, spec.partitions)?;
        }
        Ok(())
    }

    async fn append(&self, records: Vec<Record>) -> Result<Vec<Position>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let shared = self.shared();
        let default_partitions = shared.options.default_partitions;
        for (i, record) in records.iter().enumerate() {
            // Batches usually target one topic; check each name once.
            if records[..i].iter().all(|r| r.topic != record.topic) {
                shared.ensure_topic(&record.topic, default_partitions)?;
            }
        }
        let (reply, answer) = oneshot::channel();
        self.inner
            .writer_tx
            .as_ref()
            .ok_or(Error::Closed)?
            .send(AppendRequest { records, reply })
            .map_err(|_| Error::Storage("log writer stopped".into()))?;
        answer
            .await
            .map_err(|_| Error::Storage("log writer stopped".into()))?
    }

    async fn subscribe(
        &self,
        _group: &str,
        topics: &[String],
        offsets: OffsetLookup,
    ) -> Result<Box<dyn Subscription>> {
        let shared = self.shared();
        let mut cursors = Vec::new();
        let mut watches = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for name in topics {
            if !seen.insert(name.as_str()) {
                continue;
            }
            let topic = shared.ensure_topic(name, shared.options.default_partitions)?;
            for partition in 0..topic.partitions {
                cursors.push(Cursor {
                    topic: topic.clone(),
                    partition,
                    next: offsets(name, partition).unwrap_or(0).max(0),
                });
            }
            watches.push(topic.changed.subscribe());
        }
        Ok(Box::new(EmbeddedSubscription {
            shared: shared.clone(),
            cursors,
            watches,
            start: 0,
        }))
    }

    async fn read(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        max: usize,
    ) -> Result<Vec<Consumed>> {
        let shared = self.shared();
        let state = shared
            .topic(topic)
            .ok_or_else(|| Error::UnknownTopic(topic.to_string()))?;
        if partition < 0 || partition >= state.partitions {
            return Err(Error::UnknownTopic(format!(
                "{topic} partition {partition}"
            )));
        }
        shared.read_range(&state, partition, from, max)
    }

    async fn end_offsets(&self, topic: &str) -> Result<Vec<i64>> {
        self.shared()
            .topic(topic)
            .map(|t| t.ends_snapshot())
            .ok_or_else(|| Error::UnknownTopic(topic.to_string()))
    }
}

/// Where a subscription is in one partition.
struct Cursor {
    topic: Arc<TopicState>,
    partition: i32,
    /// Next offset to hand out.
    next: i64,
}

struct EmbeddedSubscription {
    shared: Arc<Shared>,
    cursors: Vec<Cursor>,
    /// One per subscribed topic; fires after each write to it.
    watches: Vec<watch::Receiver<u64>>,
    /// Cursor that reads first in the next batch; rotates so a busy partition
    /// cannot starve the others.
    start: usize,
}

impl EmbeddedSubscription {
    /// Reads what is there now, up to `max` records, sharing `max` evenly
    /// among the partitions that have records.
    fn read_ready(&mut self, max: usize) -> Result<Vec<Consumed>> {
        let n = self.cursors.len();
        let mut out = Vec::new();
        if n == 0 {
            return Ok(out);
        }
        let start = self.start;
        self.start = (self.start + 1) % n;
        loop {
            let ready = self
                .cursors
                .iter()
                .filter(|c| c.next < c.topic.end(c.partition))
                .count();
            let room = max - out.len();
            if ready == 0 || room == 0 {
                return Ok(out);
            }
            let share = (room / ready).max(1);
            let before = out.len();
            for i in 0..n {
                let room = max - out.len();
                if room == 0 {
                    break;
                }
                let cursor = &mut self.cursors[(start + i) % n];
                let records = self.shared.read_range(
                    &cursor.topic,
                    cursor.partition,
                    cursor.next,
                    share.min(room),
                )?;
                if let Some(last) = records.last() {
                    cursor.next = last.offset + 1;
                }
                out.extend(records);
            }
            if out.len() == before {
                // Published ends promise records that are not there.
                return Err(Error::Storage("log ends ahead of its records".into()));
            }
        }
    }
}

#[async_trait]
impl Subscription for EmbeddedSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Vec<Consumed>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        loop {
            // Mark every topic seen *before* reading, so a write that lands
            // after the read below still wakes the wait.
            for w in &mut self.watches {
                w.borrow_and_update();
            }
            let batch = self.read_ready(max)?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            if self.watches.is_empty() {
                return Err(Error::Closed);
            }
            let changed = self.watches.iter_mut().map(|w| Box::pin(w.changed()));
            // The senders live in `shared`, which this subscription holds, so
            // `changed` cannot fail.
            let (result, _, _) = futures::future::select_all(changed).await;
            result.map_err(|_| Error::Closed)?;
        }
    }

    fn assignment(&self) -> Vec<(String, i32)> {
        self.cursors
            .iter()
            .map(|c| (c.topic.name.clone(), c.partition))
            .collect()
    }

    async fn close(self: Box<Self>) {}
}

fn db_options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    // Memtables of all topics together; a topic written rarely would
    // otherwise pin old WAL files, which max_total_wal_size bounds.
    opts.set_db_write_buffer_size(64 << 20);
    opts.set_max_total_wal_size(256 << 20);
    opts.set_max_background_jobs(2);
    opts.set_compression_type(DBCompressionType::None);
    opts
}

fn cf_options() -> Options {
    let mut opts = Options::default();
    // Records are small protobufs written once and read mostly from the
    // memtable by tailing consumers; compression would cost CPU on every
    // flush for little gain.
    opts.set_compression_type(DBCompressionType::None);
    opts.set_write_buffer_size(16 << 20);
    opts
}

fn cf_name(topic: &str) -> String {
    format!("{TOPIC_CF_PREFIX}{topic}")
}

fn record_key(partition: i32, offset: i64) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..4].copy_from_slice(&(partition as u32).to_be_bytes());
    key[4..].copy_from_slice(&(offset as u64).to_be_bytes());
    key
}

/// The first key after every key of `partition`.
fn partition_upper_bound(partition: i32) -> Vec<u8> {
    (partition as u32 + 1).to_be_bytes().to_vec()
}

fn decode_key(key: &[u8]) -> Result<(i32, i64)> {
    let key: &[u8; 12] = key
        .try_into()
        .map_err(|_| Error::Storage(format!("bad record key length {}", key.len())))?;
    let partition = u32::from_be_bytes(key[..4].try_into().expect("4 bytes")) as i32;
    let offset = u64::from_be_bytes(key[4..].try_into().expect("8 bytes")) as i64;
    Ok((partition, offset))
}

/// Value of a record row: timestamp ms (i64 BE), key length (u32 BE), key,
/// value (the rest).
fn encode_frame(timestamp_ms: i64, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(12 + key.len() + value.len());
    frame.extend_from_slice(&timestamp_ms.to_be_bytes());
    frame.extend_from_slice(&(key.len() as u32).to_be_bytes());
    frame.extend_from_slice(key);
    frame.extend_from_slice(value);
    frame
}

fn decode_frame(frame: &[u8]) -> Result<(i64, &[u8], &[u8])> {
    let bad = || Error::Storage("corrupt record frame".into());
    let (ts, rest) = frame.split_first_chunk::<8>().ok_or_else(bad)?;
    let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err(bad());
    }
    let (key, value) = rest.split_at(len);
    Ok((i64::from_be_bytes(*ts), key, value))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn storage(e: rocksdb::Error) -> Error {
    Error::Storage(e.into_string())
}

/// A read-only view of an embedded log that another process may be
/// writing (audit and replay, `novalog-replay`): a RocksDB secondary
/// instance, so it never takes the writer's lock and never writes to the
/// log. [`EmbeddedReader::refresh`] catches up with what the writer
/// appended since.
pub struct EmbeddedReader {
    db: Db,
    /// The secondary's own info-log directory, removed on drop.
    _scratch: tempfile::TempDir,
    /// Partition count per topic, from the log's metadata.
    topics: RwLock<HashMap<String, i32>>,
}

impl EmbeddedReader {
    /// Opens the log in `path` read-only. Fails when `path` holds no log.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut opts = Options::default();
        // A secondary keeps every file it may need open (RocksDB's rule).
        opts.set_max_open_files(-1);
        let cfs = Db::list_cf(&opts, path)
            .map_err(|e| Error::Storage(format!("{}: {}", path.display(), e.into_string())))?;
        let scratch =
            tempfile::tempdir().map_err(|e| Error::Storage(format!("secondary directory: {e}")))?;
        let db = Db::open_cf_as_secondary(&opts, path, scratch.path(), &cfs).map_err(storage)?;
        let reader = Self {
            db,
            _scratch: scratch,
            topics: RwLock::new(HashMap::new()),
        };
        reader.load_topics()?;
        Ok(reader)
    }

    /// Sees what the writer appended since the open or the last refresh.
    /// Topics created since then need a new reader (their column families
    /// are fixed at open).
    pub fn refresh(&self) -> Result<()> {
        self.db.try_catch_up_with_primary().map_err(storage)?;
        self.load_topics()
    }

    fn load_topics(&self) -> Result<()> {
        let Some(meta) = self.db.cf_handle(META_CF) else {
            return Err(Error::Storage("not a novalog log (no metadata)".into()));
        };
        let mut topics = HashMap::new();
        for item in self.db.iterator_cf(&meta, IteratorMode::Start) {
            let (key, value) = item.map_err(storage)?;
            let Some(name) = key.strip_prefix(PARTITIONS_KEY_PREFIX.as_bytes()) else {
                continue;
            };
            let name = String::from_utf8_lossy(name).into_owned();
            if self.db.cf_handle(&cf_name(&name)).is_none() {
                continue;
            }
            if let Ok(p) = <[u8; 4]>::try_from(&*value) {
                topics.insert(name, i32::from_be_bytes(p));
            }
        }
        *self.topics.write() = topics;
        Ok(())
    }

    /// The topics of the log and their partition counts.
    pub fn topics(&self) -> Vec<(String, i32)> {
        let mut all: Vec<_> = self
            .topics
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        all.sort();
        all
    }

    /// The next offset to be written, per partition, as of the last refresh.
    pub fn end_offsets(&self, topic: &str) -> Result<Vec<i64>> {
        let partitions = self.partitions(topic)?;
        let cf = self.cf(topic)?;
        (0..partitions)
            .map(|p| {
                let mut opts = ReadOptions::default();
                opts.set_iterate_lower_bound(record_key(p, 0).to_vec());
                opts.set_iterate_upper_bound(partition_upper_bound(p));
                let mut it = self.db.raw_iterator_cf_opt(&cf, opts);
                it.seek_to_last();
                match it.key() {
                    Some(key) => Ok(decode_key(key)?.1 + 1),
                    None => it.status().map(|()| 0).map_err(storage),
                }
            })
            .collect()
    }

    fn partitions(&self, topic: &str) -> Result<i32> {
        self.topics
            .read()
            .get(topic)
            .copied()
            .ok_or_else(|| Error::UnknownTopic(topic.to_string()))
    }

    fn cf(&self, topic: &str) -> Result<Arc<BoundColumnFamily<'_>>> {
        self.db
            .cf_handle(&cf_name(topic))
            .ok_or_else(|| Error::UnknownTopic(topic.to_string()))
    }

    /// Calls `f` on every record of one partition in `[from, until)`, in
    /// offset order, without copying the frames: the fast path of replay.
    pub fn for_each(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        until: i64,
        mut f: impl FnMut(i64, i64, &[u8], &[u8]),
    ) -> Result<()> {
        let cf = self.cf(topic)?;
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(record_key(partition, until.max(0)).to_vec());
        // Sequential scans should not evict what the services read.
        opts.fill_cache(false);
        opts.set_readahead_size(4 << 20);
        let mut it = self.db.raw_iterator_cf_opt(&cf, opts);
        it.seek(record_key(partition, from.max(0)));
        while let (Some(key), Some(frame)) = (it.key(), it.value()) {
            let (_, offset) = decode_key(key)?;
            let (timestamp_ms, key, value) = decode_frame(frame)?;
            f(offset, timestamp_ms, key, value);
            it.next();
        }
        it.status().map_err(storage)
    }

    /// Reads up to `max` records of one partition from `from` on.
    pub fn read(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        max: usize,
    ) -> Result<Vec<Consumed>> {
        let partitions = self.partitions(topic)?;
        if partition < 0 || partition >= partitions {
            return Err(Error::UnknownTopic(format!(
                "{topic} partition {partition}"
            )));
        }
        let until = from
            .max(0)
            .saturating_add(i64::try_from(max).unwrap_or(i64::MAX));
        let mut out = Vec::new();
        self.for_each(
            topic,
            partition,
            from,
            until,
            |offset, timestamp_ms, key, value| {
                out.push(Consumed {
                    topic: topic.to_string(),
                    partition,
                    offset,
                    key: key.to_vec(),
                    value: value.to_vec(),
                    timestamp_ms,
                })
            },
        )?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trips() {
        let frame = encode_frame(1_700_000_000_123, b"project-1", b"payload");
        let (ts, key, value) = decode_frame(&frame).unwrap();
        assert_eq!(ts, 1_700_000_000_123);
        assert_eq!(key, b"project-1");
        assert_eq!(value, b"payload");
        let empty = encode_frame(0, b"", b"");
        assert_eq!(decode_frame(&empty).unwrap(), (0, &b""[..], &b""[..]));
        assert!(decode_frame(&frame[..10]).is_err());
    }

    #[test]
    fn record_keys_sort_by_partition_then_offset() {
        let mut keys = [
            record_key(1, 0),
            record_key(0, 256),
            record_key(0, 1),
            record_key(1, 255),
        ];
        keys.sort();
        let decoded: Vec<_> = keys.iter().map(|k| decode_key(k).unwrap()).collect();
        assert_eq!(decoded, vec![(0, 1), (0, 256), (1, 0), (1, 255)]);
        assert!(partition_upper_bound(0).as_slice() > record_key(0, i64::MAX).as_slice());
        assert!(partition_upper_bound(0).as_slice() <= record_key(1, 0).as_slice());
    }

    #[tokio::test]
    async fn reader_sees_a_running_writers_log_and_catches_up() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).unwrap();
        log.create_topics(&[TopicSpec {
            name: "t".into(),
            partitions: 2,
        }])
        .await
        .unwrap();
        let first = log
            .append(vec![Record::new("t", "k", b"one".to_vec())])
            .await
            .unwrap()[0];
        // The writer still holds the database: the reader must not need its lock.
        let reader = EmbeddedReader::open(dir.path()).unwrap();
        assert_eq!(reader.topics(), vec![("t".to_string(), 2)]);
        let got = reader.read("t", first.partition, 0, 10).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].value, b"one");
        log.append(vec![Record::new("t", "k", b"two".to_vec())])
            .await
            .unwrap();
        reader.refresh().unwrap();
        let ends = reader.end_offsets("t").unwrap();
        assert_eq!(ends[first.partition as usize], 2);
        let mut seen = Vec::new();
        reader
            .for_each("t", first.partition, 1, 2, |offset, _, _, v| {
                seen.push((offset, v.to_vec()))
            })
            .unwrap();
        assert_eq!(seen, vec![(1, b"two".to_vec())]);
        assert!(matches!(
            reader.end_offsets("nope"),
            Err(Error::UnknownTopic(_))
        ));
        assert!(EmbeddedReader::open(dir.path().join("missing")).is_err());
    }

    #[tokio::test]
    async fn tailing_subscriber_wakes_on_append() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).unwrap();
        let mut sub = log
            .subscribe("g", &["t".to_string()], crate::from_beginning())
            .await
            .unwrap();
        let waiter = tokio::spawn(async move { sub.next_batch(10).await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        log.append(vec![Record::new("t", "k", b"v".to_vec())])
            .await
            .unwrap();
        let batch = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("subscriber woke")
            .unwrap()
            .unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].value, b"v");
    }
}
