//! `rebuild`, `diff` and `verify`: a projection folded again from the log
//! with the service's own handler, side effects off (DESIGN §3 "Replay"),
//! and compared key by key with another store.
//!
//! The fold reads the service's input topics merged by append time (the
//! order a live consumer saw them, to the millisecond; the conductor's by
//! the time and batch each input was decided in, read back from what it
//! caused: docs/audit-and-replay.md) and commits one
//! WriteBatch per [`BATCH`] records, without the write-ahead log (the
//! store is flushed once at the end): a rebuild that dies is simply run
//! again into a fresh directory.

use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use novalog_runtime::{Handler, Input, Outbox, Topics};
use novalog_store::{RocksStore, Transaction};

use crate::{Error, Progress, Result, Source};

/// Records folded per transaction.
pub const BATCH: usize = 50_000;
/// Records read per partition per refill of the merge.
const READ_AHEAD: i64 = 20_000;

/// A service whose projection can be rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Api,
    Conductor,
    Scheduler,
    Compute,
    /// novalog-billing's usage (its period summaries are not published).
    Billing,
}

impl Service {
    pub fn parse(s: &str) -> Result<Vec<Service>> {
        Ok(match s {
            "api" => vec![Service::Api],
            "conductor" => vec![Service::Conductor],
            "scheduler" => vec![Service::Scheduler],
            "compute" => vec![Service::Compute],
            "billing" => vec![Service::Billing],
            "all" => vec![
                Service::Api,
                Service::Conductor,
                Service::Scheduler,
                Service::Compute,
                Service::Billing,
            ],
            other => {
                return Err(Error::BadInput(format!(
                    "unknown service {other} (api, conductor, scheduler, compute, billing, all)"
                )));
            }
        })
    }

    /// The directory under a data directory (or `--into`) of its store.
    pub fn dir_name(self) -> &'static str {
        match self {
            Service::Api => "api",
            Service::Conductor => "conductor",
            Service::Scheduler => "scheduler",
            Service::Compute => "compute",
            Service::Billing => novalog_billing::service::NAME,
        }
    }

    /// The name its offsets are stored under.
    pub fn consumer(self, cfg: &novalog_runtime::Config) -> String {
        match self {
            Service::Api => novalog_api::projection::CONSUMER.to_owned(),
            Service::Conductor => novalog_conductor::service::NAME.to_owned(),
            Service::Scheduler => novalog_scheduler::service::NAME.to_owned(),
            Service::Compute => novalog_compute::service::consumer_name(cfg),
            Service::Billing => novalog_billing::service::NAME.to_owned(),
        }
    }

    /// Whether this configuration's service can be folded again, and why
    /// not: a compute agent of a real hypervisor took its outcomes from it.
    pub fn replayable(self, cfg: &novalog_runtime::Config) -> std::result::Result<(), String> {
        match self {
            Service::Compute if cfg.compute.driver != "fake" => Err(format!(
                "the compute agent's outcomes were its {} hypervisor's; only an agent of the \
                 fake driver is carried out again",
                cfg.compute.driver
            )),
            _ => Ok(()),
        }
    }

    fn topics(self, t: &Topics) -> Vec<String> {
        match self {
            Service::Api => vec![t.instances.clone(), t.catalog.clone(), t.hosts.clone()],
            Service::Conductor => vec![
                t.intents.clone(),
                t.scheduler.clone(),
                t.compute_events.clone(),
            ],
            Service::Scheduler => novalog_scheduler::service::replay_topics(t).0,
            Service::Compute => vec![t.compute.clone()],
            Service::Billing => vec![t.instances.clone()],
        }
    }

    /// Topics whose offsets the live service commits but whose records
    /// its handler leaves alone: a rebuild does not read them, and sets
    /// their offsets to where it ends.
    fn carried(self, t: &Topics) -> Vec<String> {
        match self {
            Service::Scheduler => novalog_scheduler::service::replay_topics(t).1,
            _ => Vec::new(),
        }
    }
}

/// Tables that are not folded from the log: left out of comparisons (a
/// live store holds a batch's outputs in the outbox while it appends them).
pub const NOT_FROM_THE_LOG: &[&str] = &["_replica", novalog_runtime::consumer::OUTBOX];

/// How far to fold: the next offset per (topic, partition); a partition
/// that is missing is not read at all. `None`: to the end of the log.
pub type Until = HashMap<(String, i32), i64>;

/// What a rebuild did, and where its time went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Records read (every record of the input topics up to the end,
    /// folded or not).
    pub records: u64,
    /// Wall time of the whole rebuild, store creation and flush included.
    pub seconds: f64,
    /// Seconds the reader was busy: iterating the log, decoding, merging.
    pub read_s: f64,
    /// Seconds the fold spent in the handler.
    pub fold_s: f64,
    /// Seconds spent committing batches (the handler's `finish_batch`,
    /// the WriteBatch, publishing) and flushing the store at the end.
    pub write_s: f64,
}

impl Stats {
    pub fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.records as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Folds `service`'s input topics into a fresh store in `into`, with the
/// services' configuration `cfg` (their handlers are built from it as the
/// services build them).
pub async fn rebuild(
    src: &Source,
    cfg: &novalog_runtime::Config,
    service: Service,
    into: &Path,
    until: Option<&Until>,
    progress: &dyn Progress,
) -> Result<Stats> {
    if let Err(why) = service.replayable(cfg) {
        return Err(Error::BadInput(format!(
            "rebuild of {} is not supported: {why}",
            service.dir_name()
        )));
    }
    if into.exists() && std::fs::read_dir(into)?.next().is_some() {
        return Err(Error::BadInput(format!(
            "{} is not empty; rebuild writes a fresh store",
            into.display()
        )));
    }
    let store = Arc::new(
        RocksStore::create_for_rebuild(into)
            .map_err(|e| Error::BadInput(format!("cannot create {}: {e}", into.display())))?,
    );
    let topics = src.topics().clone();
    let consumer = service.consumer(cfg);
    let refused = |e: novalog_runtime::Error| {
        Error::BadInput(format!("cannot rebuild {}: {e}", service.dir_name()))
    };
    let inputs = service.topics(&topics);
    let carried = service.carried(&topics);
    match service {
        Service::Api => {
            // Loaded from the fresh store as the service loads its own: the
            // projection reads deleted servers back from it, and marks its
            // indexes current there.
            let projection = novalog_api::projection::Projection::load(store.clone())
                .map_err(|e| Error::Io(format!("cannot load {}: {e}", into.display())))?;
            let handler = novalog_api::projection::ProjectionHandler::new(
                Arc::new(projection),
                Arc::new(novalog_api::projection::verdicts::Verdicts::new()),
                store.clone(),
            );
            fold(
                src, &inputs, &carried, &consumer, &store, handler, until, None, progress,
            )
            .await
        }
        Service::Conductor => {
            // Each input is decided at the time it was decided live, and in
            // the order it was: both read back from what it caused.
            let decided_at = Arc::new(conductor_decisions(src, &topics).await?);
            let feed = novalog_conductor::service::DecidedAt::new();
            let handler =
                novalog_conductor::service::replay_handler(cfg, store.clone(), feed.clone())
                    .map_err(refused)?;
            let order = Some(Order {
                decided_at,
                feed: Some(feed),
            });
            fold(
                src, &inputs, &carried, &consumer, &store, handler, until, order, progress,
            )
            .await
        }
        Service::Scheduler => {
            // Its host facts folded again; its requests read, not decided
            // again (the rows hold no decision).
            let handler =
                novalog_scheduler::service::replay_handler(cfg, store.clone()).map_err(refused)?;
            fold(
                src, &inputs, &carried, &consumer, &store, handler, until, None, progress,
            )
            .await
        }
        Service::Compute => {
            let handler =
                novalog_compute::service::replay_handler(cfg, store.clone()).map_err(refused)?;
            fold(
                src, &inputs, &carried, &consumer, &store, handler, until, None, progress,
            )
            .await
        }
        Service::Billing => {
            // The billing fold's own replay (its handler, fed raw
            // records): what it ignores is skipped by the header, never
            // decoded, as the service's replay does.
            let replay =
                novalog_billing::service::Replay::new(cfg, store.clone()).map_err(refused)?;
            fold_billing(src, &inputs, &store, replay, until, progress).await
        }
    }
}

/// What [`rebuild_all`] did: each service's own [`Stats`], and the wall
/// time of them all together.
#[derive(Debug, Clone)]
pub struct AllStats {
    pub services: Vec<(Service, Stats)>,
    /// Wall time from the first store created to the last one flushed.
    pub seconds: f64,
}

impl AllStats {
    /// Records read by every fold together.
    pub fn records(&self) -> u64 {
        self.services.iter().map(|(_, s)| s.records).sum()
    }

    /// Records folded per second of wall time, every fold counted.
    pub fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.records() as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Rebuilds each of `services` into `into/<service>` at the same time,
/// one task each: the folds are independent (each its own store, handler
/// and reader), and one service's fold alone leaves a core idle while
/// its reader waits (the conductor's fold takes twice its reading), so
/// side by side they keep both cores busy. `progress` gives each service
/// its own report. The first error is returned once every fold ended.
pub async fn rebuild_all(
    src: &Source,
    cfg: &novalog_runtime::Config,
    services: &[Service],
    into: &Path,
    progress: impl Fn(Service) -> Arc<dyn Progress>,
) -> Result<AllStats> {
    // Refused before anything starts, so no store is left half-built.
    for &service in services {
        if let Err(why) = service.replayable(cfg) {
            return Err(Error::BadInput(format!(
                "rebuild of {} is not supported: {why}",
                service.dir_name()
            )));
        }
    }
    let started = Instant::now();
    let cfg = Arc::new(cfg.clone());
    let tasks: Vec<_> = services
        .iter()
        .map(|&service| {
            let (src, cfg, dir, bar) = (
                src.clone(),
                cfg.clone(),
                into.join(service.dir_name()),
                progress(service),
            );
            tokio::spawn(async move {
                let stats = rebuild(&src, &cfg, service, &dir, None, &*bar).await;
                stats.map(|s| (service, s))
            })
        })
        .collect();
    let mut out = Vec::new();
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok(Ok(done)) => out.push(done),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(Error::Io(format!("a rebuild task failed: {e}")));
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(AllStats {
        services: out,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// When the live conductor decided each of its inputs, by the input's
/// event id: the time stamped on what the decision emitted (instance
/// events, scheduler requests, compute commands, catalog and service
/// records, each caused by the input it decides). The conductor reads
/// the clock once per batch, later each time, so the time also says which
/// batch handled the input; within a batch it handled them in topic,
/// partition, offset order (the consumer loop sorts each batch so).
async fn conductor_decisions(src: &Source, t: &Topics) -> Result<DecisionTimes> {
    use novalog_schemas::{Event, SchedulerEvent};
    let mut at = DecisionTimes::default();
    for topic in [&t.instances, &t.scheduler, &t.compute, &t.catalog, &t.hosts] {
        let ends = match src.end_offsets(topic).await {
            Ok(e) => e,
            Err(Error::BadInput(_)) => continue,
            Err(e) => return Err(e),
        };
        for (p, end) in ends.into_iter().enumerate() {
            let mut from = 0;
            while from < end {
                let until = end.min(from + READ_AHEAD);
                src.scan(topic, p as i32, from, until, |r| {
                    // Most records cannot change the table: no cause, or
                    // a cause already timed by an earlier record. Their
                    // header alone says so, read in place; only the others
                    // are decoded whole (and skipped when that fails: a
                    // cause that is not a UUID does not decode either).
                    match novalog_schemas::peek_header(r.value) {
                        Some(h) => match h.causation_id.map(uuid::Uuid::try_parse) {
                            Some(Ok(cause)) if !at.contains_key(&cause) => {}
                            _ => return,
                        },
                        None => return,
                    }
                    let Ok(env) = novalog_runtime::consumer::decode_record(topic, r.value) else {
                        return;
                    };
                    let by_conductor = match &env.event {
                        // The scheduler's answers share the topic.
                        Event::Scheduler(SchedulerEvent::SelectHostsRequested(_)) => true,
                        Event::Scheduler(_) => false,
                        _ => true,
                    };
                    if let (true, Some(cause)) = (by_conductor, env.meta.causation_id) {
                        at.entry(cause).or_insert(env.meta.occurred_at_ms);
                    }
                })
                .await?;
                from = until;
            }
        }
    }
    Ok(at)
}

/// One partition's cursor in the merge (on the reader's thread).
struct Stream {
    topic: String,
    /// The topic's type, found once rather than per record.
    kind: Option<novalog_schemas::Topic>,
    rank: usize,
    partition: i32,
    /// The next offset to read.
    next: i64,
    end: i64,
    /// The merge key of the last record read (with an `order`).
    floor: i64,
    /// With an `order`: records read that decided nothing live, so their
    /// batch is not on the log; they wait here for the next record of
    /// their partition that did (see [`refill`]).
    held: Vec<Ahead>,
    /// Records read ahead, decoded as they were read (no copy of their
    /// bytes is kept).
    buf: VecDeque<Ahead>,
}

struct Ahead {
    offset: i64,
    /// Merge key: the append time, or with an `order` the time its input
    /// was decided at.
    timestamp_ms: i64,
    /// With an `order`: when it was decided live (`None`: it caused
    /// nothing).
    decided: Option<i64>,
    /// `None`: it does not decode.
    env: Option<novalog_schemas::Envelope>,
}

/// A record handed from the reader to the fold, in merged order.
struct Item {
    /// Index of its partition in the fold's table.
    stream: u32,
    offset: i64,
    decided: Option<i64>,
    env: Option<novalog_schemas::Envelope>,
}

/// The conductor's decision times, by the id of the input decided.
type DecisionTimes = HashMap<uuid::Uuid, i64, std::hash::BuildHasherDefault<IdHasher>>;

/// Hashes event ids, which are random (v4) or SHA-1 derived (v5) and
/// written by the services, not chosen by users: their own bits are as
/// good a hash as SipHash's, at a fraction of its cost (the decision
/// table is looked up once per record read by the conductor's rebuild).
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(29) ^ u64::from_le_bytes(b))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// How the conductor's inputs are merged: by when each was decided live,
/// and that time handed to its handler before each input.
struct Order {
    decided_at: Arc<DecisionTimes>,
    feed: Option<novalog_conductor::service::DecidedAt>,
}

/// One partition as the fold sees it.
struct Folded {
    /// Its topic's name, lent to each [`Input`] in turn (no copy per
    /// record).
    topic: String,
    partition: i32,
    /// The offset after the last record folded (0: none yet).
    next: i64,
}

/// The merge heap's entry: the head of stream `i`.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Head(std::cmp::Reverse<(i64, usize, i32, i64)>, usize);

/// Records the reader hands over at a time.
const CHUNK: usize = 4_096;
/// Chunks in flight between the reader and the fold.
const CHUNKS_AHEAD: usize = 8;

/// Runs `handler` over `topics` merged by append time, like the consumer
/// loop does live but with its outputs dropped. With `order`, merged by
/// the time each record was decided at live instead (by event id; a
/// record not in it comes after the one before it in its partition).
///
/// Two stages on two threads: the reader iterates the partitions, decodes
/// each record and merges them by append time; the fold applies them with
/// `handler` and commits a batch every [`BATCH`] records. Decoding is
/// about a third of the work, so the two overlap well on two cores.
#[allow(clippy::too_many_arguments)]
async fn fold<H: Handler>(
    src: &Source,
    topics: &[String],
    carried: &[String],
    consumer: &str,
    store: &RocksStore,
    mut handler: H,
    until: Option<&Until>,
    order: Option<Order>,
    progress: &dyn Progress,
) -> Result<Stats> {
    let started = Instant::now();
    let mut streams = Vec::new();
    for (rank, t) in topics.iter().enumerate() {
        let ends = match src.end_offsets(t).await {
            Ok(e) => e,
            // A topic nobody wrote to yet has nothing to fold.
            Err(Error::BadInput(_)) => continue,
            Err(e) => return Err(e),
        };
        for (p, end) in ends.into_iter().enumerate() {
            let p = p as i32;
            let end = match until {
                Some(u) => u.get(&(t.clone(), p)).copied().unwrap_or(0).min(end),
                None => end,
            };
            if end > 0 {
                streams.push(Stream {
                    topic: t.clone(),
                    kind: novalog_schemas::Topic::of_name(t),
                    rank,
                    partition: p,
                    next: 0,
                    end,
                    floor: i64::MIN,
                    held: Vec::new(),
                    buf: Default::default(),
                });
            }
        }
    }
    progress.set_total(streams.iter().map(|s| s.end as u64).sum());
    let mut folded: Vec<Folded> = streams
        .iter()
        .map(|s| Folded {
            topic: s.topic.clone(),
            partition: s.partition,
            next: 0,
        })
        .collect();
    // Not read: their offsets are where the fold ends.
    for t in carried {
        let ends = match src.end_offsets(t).await {
            Ok(e) => e,
            Err(Error::BadInput(_)) => continue,
            Err(e) => return Err(e),
        };
        for (p, end) in ends.into_iter().enumerate() {
            let p = p as i32;
            let end = match until {
                Some(u) => u.get(&(t.clone(), p)).copied().unwrap_or(0).min(end),
                None => end,
            };
            folded.push(Folded {
                topic: t.clone(),
                partition: p,
                next: end,
            });
        }
    }

    let (send, mut recv) = tokio::sync::mpsc::channel::<Vec<Item>>(CHUNKS_AHEAD);
    let (decided_at, feed) = match order {
        Some(o) => (Some(o.decided_at), o.feed),
        None => (None, None),
    };
    let reader = {
        let src = src.clone();
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            rt.block_on(read_merged(src, streams, decided_at, send))
        })
    };

    let mut stats = Stats::default();
    let mut in_batch = 0usize;
    let mut tx = Transaction::new();
    // Side effects off: what the service would append is not even encoded.
    let mut out = Outbox::discarding();
    while let Some(chunk) = recv.recv().await {
        let mut t = Instant::now();
        for item in chunk {
            let s = &mut folded[item.stream as usize];
            s.next = item.offset + 1;
            // What does not decode or apply was dead-lettered live; its
            // offset still counts, as it did there.
            if let Some(env) = item.env {
                if let Some(feed) = &feed {
                    feed.set(item.decided);
                }
                let input = Input {
                    topic: std::mem::take(&mut s.topic),
                    partition: s.partition,
                    offset: item.offset,
                    env,
                };
                let _ = handler.handle(&input, &mut out, &mut tx).await;
                s.topic = input.topic;
            }
            stats.records += 1;
            in_batch += 1;
            if in_batch >= BATCH {
                stats.fold_s += t.elapsed().as_secs_f64();
                let w = Instant::now();
                commit(store, consumer, &mut handler, &mut tx, &mut out, &folded).await?;
                stats.write_s += w.elapsed().as_secs_f64();
                progress.advance(in_batch as u64);
                in_batch = 0;
                t = Instant::now();
            }
        }
        stats.fold_s += t.elapsed().as_secs_f64();
    }
    // The reader's error, if it stopped early.
    stats.read_s = reader
        .await
        .map_err(|e| Error::Io(format!("the log reader failed: {e}")))??;
    let w = Instant::now();
    commit(store, consumer, &mut handler, &mut tx, &mut out, &folded).await?;
    progress.advance(in_batch as u64);
    store.flush()?;
    stats.write_s += w.elapsed().as_secs_f64();
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// The billing fold over `topics` (`instances`): each partition in its
/// own order, one transaction per [`BATCH`] records. Billing's state is
/// per partition (its periods) or per server (whose records share a
/// partition, keyed by project), so the order between partitions does not
/// change it, and no merge is needed.
async fn fold_billing(
    src: &Source,
    topics: &[String],
    store: &RocksStore,
    mut replay: novalog_billing::service::Replay<RocksStore>,
    until: Option<&Until>,
    progress: &dyn Progress,
) -> Result<Stats> {
    let started = Instant::now();
    let mut plan = Vec::new();
    for t in topics {
        let ends = match src.end_offsets(t).await {
            Ok(e) => e,
            Err(Error::BadInput(_)) => continue,
            Err(e) => return Err(e),
        };
        for (p, end) in ends.into_iter().enumerate() {
            let p = p as i32;
            let end = match until {
                Some(u) => u.get(&(t.clone(), p)).copied().unwrap_or(0).min(end),
                None => end,
            };
            if end > 0 {
                plan.push((t.clone(), p, end));
            }
        }
    }
    progress.set_total(plan.iter().map(|(_, _, e)| *e as u64).sum());
    let mut stats = Stats::default();
    // One batch's records, copied into one buffer (the fold borrows them).
    let mut bytes = Vec::new();
    let mut spans: Vec<(i64, usize, usize)> = Vec::with_capacity(BATCH);
    for (t, p, end) in plan {
        let mut from = 0;
        while from < end {
            let until = end.min(from + BATCH as i64);
            let r = Instant::now();
            bytes.clear();
            spans.clear();
            src.scan(&t, p, from, until, |rec| {
                let at = bytes.len();
                bytes.extend_from_slice(rec.value);
                spans.push((rec.offset, at, bytes.len()));
            })
            .await?;
            stats.read_s += r.elapsed().as_secs_f64();
            let f = Instant::now();
            // Side effects off: the summaries it would publish are dropped.
            // (A vector, not a lazy map: a closure held across the await
            // would make the future not `Send` for every lifetime.)
            let records: Vec<(i32, i64, &[u8])> = spans
                .iter()
                .map(|&(o, a, b)| (p, o, &bytes[a..b]))
                .collect();
            replay
                .fold_raw(records)
                .await
                .map_err(|e| Error::Io(e.to_string()))?;
            stats.fold_s += f.elapsed().as_secs_f64();
            stats.records += spans.len() as u64;
            progress.advance(spans.len() as u64);
            from = until;
        }
    }
    let w = Instant::now();
    store.flush()?;
    stats.write_s += w.elapsed().as_secs_f64();
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// The reader's stage: merges `streams` by append time, decoding as it
/// reads, and sends the records on in chunks. Returns the seconds it was
/// busy (not waiting for the fold).
async fn read_merged(
    src: Source,
    mut streams: Vec<Stream>,
    order: Option<Arc<DecisionTimes>>,
    send: tokio::sync::mpsc::Sender<Vec<Item>>,
) -> Result<f64> {
    let mut busy = 0.0;
    let mut t = Instant::now();
    let mut heap = BinaryHeap::new();
    for i in 0..streams.len() {
        refill(&src, &mut streams[i], order.as_deref()).await?;
        push_head(&mut heap, &streams, i);
    }
    let mut chunk = Vec::with_capacity(CHUNK);
    while let Some(Head(_, i)) = heap.pop() {
        let rec = streams[i].buf.pop_front().expect("a head has a record");
        if streams[i].buf.is_empty() {
            refill(&src, &mut streams[i], order.as_deref()).await?;
        }
        push_head(&mut heap, &streams, i);
        chunk.push(Item {
            stream: i as u32,
            offset: rec.offset,
            decided: rec.decided,
            env: rec.env,
        });
        if chunk.len() == CHUNK {
            busy += t.elapsed().as_secs_f64();
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if send.send(full).await.is_err() {
                // The fold stopped (its error is the one reported).
                return Ok(busy);
            }
            t = Instant::now();
        }
    }
    busy += t.elapsed().as_secs_f64();
    if !chunk.is_empty() {
        let _ = send.send(chunk).await;
    }
    Ok(busy)
}

async fn commit<H: Handler>(
    store: &RocksStore,
    consumer: &str,
    handler: &mut H,
    tx: &mut Transaction,
    out: &mut Outbox,
    streams: &[Folded],
) -> Result<()> {
    use novalog_store::Store;
    handler
        .finish_batch(out, tx)
        .await
        .map_err(|e| Error::Io(e.to_string()))?;
    // Side effects off: what the service would have appended is dropped.
    *out = Outbox::discarding();
    let mut staged = std::mem::take(tx);
    for st in streams.iter().filter(|st| st.next > 0) {
        staged.set_offset(consumer, &st.topic, st.partition, st.next);
    }
    // A batch writes each instance once per event; only the last counts.
    staged.squash();
    store.commit(staged)?;
    handler.committed();
    Ok(())
}

/// Reads the next records of `s` into its buffer, until it holds at
/// least one or the partition's end is reached.
///
/// With an `order` (the conductor's), a record's merge key is the time
/// its batch was decided at live, read back from what it caused. A
/// record that caused nothing (a stale fact, a late answer to a step a
/// delete pre-empted, a duplicate, a timeout whose step was answered, the
/// conductor's own requests read back) names no batch: it was handled in
/// one no earlier than the last record before it in its partition that
/// did cause something, and no later than the next one. It takes the
/// later bound: the merge places it just before that next record.
/// The earlier bound was wrong where it mattered: a reboot's answer that
/// came in one batch with the delete that pre-empted it was handled after
/// the delete live (intents before compute events within a batch) and
/// ignored; placed at the earlier batch, the replay handled it before the
/// delete and finished the reboot, one instance event more than live.
/// Later is the safe side: what made a record change nothing (its step
/// answered or superseded, its instance deleted, its request handled)
/// stays so as the state moves on. Records after the last one that caused
/// something come at the very end.
async fn refill(src: &Source, s: &mut Stream, order: Option<&DecisionTimes>) -> Result<()> {
    while s.buf.is_empty() && s.next < s.end {
        let until = s.end.min(s.next + READ_AHEAD);
        let (buf, held, kind, floor) = (&mut s.buf, &mut s.held, s.kind, &mut s.floor);
        src.scan(&s.topic, s.partition, s.next, until, |r| {
            let env = match kind {
                Some(t) => novalog_schemas::decode_on(t, r.value),
                None => novalog_schemas::decode(r.value),
            }
            .ok();
            let (timestamp_ms, decided) = match order {
                None => (r.timestamp_ms, None),
                Some(at) => {
                    let decided = env.as_ref().and_then(|e| at.get(&e.meta.event_id));
                    let Some(&decided) = decided else {
                        held.push(Ahead {
                            offset: r.offset,
                            timestamp_ms: 0,
                            decided: None,
                            env,
                        });
                        return;
                    };
                    let key = decided.max(*floor);
                    *floor = key;
                    for mut h in held.drain(..) {
                        h.timestamp_ms = key;
                        buf.push_back(h);
                    }
                    (key, Some(decided))
                }
            };
            buf.push_back(Ahead {
                offset: r.offset,
                timestamp_ms,
                decided,
                env,
            })
        })
        .await?;
        s.next = until;
        if s.next >= s.end {
            for mut h in s.held.drain(..) {
                h.timestamp_ms = i64::MAX;
                s.buf.push_back(h);
            }
        }
    }
    Ok(())
}

fn push_head(heap: &mut BinaryHeap<Head>, streams: &[Stream], i: usize) {
    let s = &streams[i];
    if let Some(r) = s.buf.front() {
        heap.push(Head(
            std::cmp::Reverse((r.timestamp_ms, s.rank, s.partition, r.offset)),
            i,
        ));
    }
}

/// One key whose values differ (`None`: missing on that side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub table: String,
    pub key: Vec<u8>,
    pub a: Option<Vec<u8>>,
    pub b: Option<Vec<u8>>,
}

/// Opens a projection store read-only, whether or not its service runs.
fn open_store(path: &Path) -> Result<(rocksdb::DB, tempfile::TempDir)> {
    if !path.is_dir() {
        return Err(Error::BadInput(format!("no store in {}", path.display())));
    }
    let scratch = tempfile::tempdir()?;
    let mut opts = rocksdb::Options::default();
    opts.set_max_open_files(-1);
    let db = rocksdb::DB::open_as_secondary(&opts, path, scratch.path()).map_err(|e| {
        Error::BadInput(format!("cannot read the store in {}: {e}", path.display()))
    })?;
    Ok((db, scratch))
}

fn split_key(k: &[u8]) -> (String, Vec<u8>) {
    match k.iter().position(|b| *b == 0) {
        Some(i) => (
            String::from_utf8_lossy(&k[..i]).into_owned(),
            k[i + 1..].to_vec(),
        ),
        None => (String::new(), k.to_vec()),
    }
}

/// Every row of the store in `path` (tables in [`NOT_FROM_THE_LOG`] left
/// out), read from one consistent view.
pub fn snapshot(path: &Path) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let (db, _scratch) = open_store(path)?;
    let mut rows = BTreeMap::new();
    for item in db.iterator(rocksdb::IteratorMode::Start) {
        let (k, v) = item?;
        let (table, _) = split_key(&k);
        if !NOT_FROM_THE_LOG.contains(&table.as_str()) {
            rows.insert(k.to_vec(), v.to_vec());
        }
    }
    Ok(rows)
}

/// The offsets `consumer` had reached in a [`snapshot`].
pub fn offsets_in(rows: &BTreeMap<Vec<u8>, Vec<u8>>, consumer: &str) -> Until {
    let prefix = format!("_offsets\0{consumer}\0");
    let mut out = Until::new();
    for (k, v) in rows.range(prefix.as_bytes().to_vec()..) {
        let Some(rest) = k.strip_prefix(prefix.as_bytes()) else {
            break;
        };
        let Ok(rest) = std::str::from_utf8(rest) else {
            continue;
        };
        let Some((topic, partition)) = rest.rsplit_once('\0') else {
            continue;
        };
        if let (Ok(p), Ok(b)) = (
            partition.parse::<i32>(),
            <[u8; 8]>::try_from(&v[..v.len().min(8)]),
        ) {
            out.insert((topic.to_owned(), p), i64::from_be_bytes(b));
        }
    }
    out
}

/// Every key whose value differs between two snapshots, in key order.
pub fn diff_rows(
    ra: &BTreeMap<Vec<u8>, Vec<u8>>,
    rb: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Vec<Difference> {
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&Vec<u8>> = ra.keys().chain(rb.keys()).collect();
    for k in keys {
        let (va, vb) = (ra.get(k), rb.get(k));
        if va != vb {
            let (table, key) = split_key(k);
            out.push(Difference {
                table,
                key,
                a: va.cloned(),
                b: vb.cloned(),
            });
        }
    }
    out
}

/// Every key whose value differs between the stores in `a` and `b`
/// (tables in [`NOT_FROM_THE_LOG`] left out), in key order.
pub fn diff(a: &Path, b: &Path) -> Result<Vec<Difference>> {
    Ok(diff_rows(&snapshot(a)?, &snapshot(b)?))
}

/// A stored value, decoded where its table is known.
pub fn show_value(table: &str, v: Option<&[u8]>) -> String {
    let Some(v) = v else {
        return "(missing)".into();
    };
    let decoded = match table {
        "instances" => novalog_store::decode::<novalog_schemas::Instance>(table, v)
            .ok()
            .and_then(|i| serde_json::to_string(&i).ok()),
        "flavors" => novalog_store::decode::<novalog_schemas::Flavor>(table, v)
            .ok()
            .and_then(|i| serde_json::to_string(&i).ok()),
        "images" => novalog_store::decode::<novalog_schemas::Image>(table, v)
            .ok()
            .and_then(|i| serde_json::to_string(&i).ok()),
        // The api's and the scheduler's host rows share the table name.
        "hosts_v2" => exactly::<novalog_api::projection::HostView>(table, v)
            .or_else(|| exactly::<novalog_scheduler::HostState>(table, v)),
        "_offsets" => <[u8; 8]>::try_from(v)
            .ok()
            .map(|b| i64::from_be_bytes(b).to_string()),
        _ => None,
    };
    decoded.unwrap_or_else(|| format!("{} bytes: {}", v.len(), hex(&v[..v.len().min(64)])))
}

/// `v` as JSON when it is exactly the encoding of a `T` (a row of
/// another type can decode as a `T` from a prefix of its bytes).
fn exactly<T: serde::Serialize + serde::de::DeserializeOwned>(
    table: &str,
    v: &[u8],
) -> Option<String> {
    let x: T = novalog_store::decode(table, v).ok()?;
    if novalog_store::encode(table, &x).ok()? != v {
        return None;
    }
    serde_json::to_string(&x).ok()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The printable form of a key.
pub fn show_key(d: &Difference) -> String {
    let key = match std::str::from_utf8(&d.key) {
        Ok(s) if !s.contains('\0') => s.to_owned(),
        Ok(s) => s.replace('\0', "/"),
        Err(_) => match uuid::Uuid::from_slice(&d.key) {
            Ok(u) => u.to_string(),
            Err(_) => hex(&d.key),
        },
    };
    format!("{}/{}", d.table, key)
}

/// Prints differences, both values decoded.
pub fn print_diff(diffs: &[Difference], labels: (&str, &str), out: &mut dyn Write) -> Result<()> {
    for d in diffs {
        writeln!(out, "{}", show_key(d))?;
        writeln!(
            out,
            "  {}: {}",
            labels.0,
            show_value(&d.table, d.a.as_deref())
        )?;
        writeln!(
            out,
            "  {}: {}",
            labels.1,
            show_value(&d.table, d.b.as_deref())
        )?;
    }
    Ok(())
}

/// What `verify` found for one service.
#[derive(Debug)]
pub struct Verified {
    pub service: Service,
    pub stats: Stats,
    pub differences: Vec<Difference>,
}

/// Rebuilds each of `services` up to the offsets its live store (under
/// `data_dir`) has reached, into a scratch directory, and diffs the two.
/// The services are verified side by side, one task each (as
/// [`rebuild_all`] folds them); `progress` sees their records together.
/// The first error is returned once every service's verify ended.
pub async fn verify(
    src: &Source,
    cfg: &novalog_runtime::Config,
    data_dir: &Path,
    services: &[Service],
    scratch: Option<PathBuf>,
    progress: &dyn Progress,
) -> Result<Vec<Verified>> {
    let tmp;
    let scratch = match scratch {
        Some(p) => p,
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let counts = Arc::new(Counts::default());
    let cfg = Arc::new(cfg.clone());
    let mut tasks: Vec<_> = services
        .iter()
        .map(|&service| {
            let (src, cfg, live_dir, into, counts) = (
                src.clone(),
                cfg.clone(),
                data_dir.join(service.dir_name()),
                scratch.join(service.dir_name()),
                counts.clone(),
            );
            tokio::spawn(async move {
                // Rows and offsets from one view of the live store: a
                // service that keeps running commits after it, and that
                // must not count.
                let live = snapshot(&live_dir)?;
                let until = offsets_in(&live, &service.consumer(&cfg));
                let stats = rebuild(&src, &cfg, service, &into, Some(&until), &*counts).await?;
                let differences = diff_rows(&live, &snapshot(&into)?);
                Result::<Verified>::Ok(Verified {
                    service,
                    stats,
                    differences,
                })
            })
        })
        .collect();
    // The tasks report into `counts`; `progress` is only borrowed, so it
    // is handed their sums from here.
    let mut out = Vec::new();
    let mut first_error = None;
    let mut shown = (0, 0);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    for t in tasks.iter_mut() {
        let done = loop {
            tokio::select! {
                done = &mut *t => break done,
                _ = tick.tick() => counts.show(progress, &mut shown),
            }
        };
        match done {
            Ok(Ok(v)) => out.push(v),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(Error::Io(format!("a verify task failed: {e}")));
            }
        }
    }
    counts.show(progress, &mut shown);
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Progress of folds running side by side, summed.
#[derive(Default)]
struct Counts {
    total: std::sync::atomic::AtomicU64,
    done: std::sync::atomic::AtomicU64,
}

impl Progress for Counts {
    fn set_total(&self, total: u64) {
        self.total
            .fetch_add(total, std::sync::atomic::Ordering::Relaxed);
    }
    fn advance(&self, n: u64) {
        self.done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Counts {
    /// Passes on to `to` what changed since `shown` (total, done).
    fn show(&self, to: &dyn Progress, shown: &mut (u64, u64)) {
        use std::sync::atomic::Ordering::Relaxed;
        let (total, done) = (self.total.load(Relaxed), self.done.load(Relaxed));
        if total != shown.0 {
            to.set_total(total);
        }
        if done > shown.1 {
            to.advance(done - shown.1);
        }
        *shown = (total, done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_read_per_consumer_from_a_snapshot() {
        let mut rows = BTreeMap::new();
        let key = |c: &str, t: &str, p: i32| format!("_offsets\0{c}\0{t}\0{p}").into_bytes();
        rows.insert(
            key("api", "novalog.instances", 0),
            7i64.to_be_bytes().to_vec(),
        );
        rows.insert(key("api", "novalog.hosts", 3), 9i64.to_be_bytes().to_vec());
        rows.insert(key("apix", "novalog.hosts", 0), 1i64.to_be_bytes().to_vec());
        rows.insert(b"instances\0x".to_vec(), vec![1]);
        let until = offsets_in(&rows, "api");
        assert_eq!(until.len(), 2);
        assert_eq!(until[&("novalog.instances".to_owned(), 0)], 7);
        assert_eq!(until[&("novalog.hosts".to_owned(), 3)], 9);
    }

    #[test]
    fn diff_names_changed_missing_and_extra_keys() {
        let a: BTreeMap<_, _> = [
            (b"t\0same".to_vec(), vec![1]),
            (b"t\0changed".to_vec(), vec![1]),
            (b"t\0only-a".to_vec(), vec![1]),
        ]
        .into();
        let b: BTreeMap<_, _> = [
            (b"t\0same".to_vec(), vec![1]),
            (b"t\0changed".to_vec(), vec![2]),
            (b"u\0only-b".to_vec(), vec![1]),
        ]
        .into();
        let d = diff_rows(&a, &b);
        let keys: Vec<String> = d.iter().map(show_key).collect();
        assert_eq!(keys, vec!["t/changed", "t/only-a", "u/only-b"]);
        assert_eq!(d[1].b, None);
    }
}

#[cfg(test)]
mod pipeline_tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use novalog_log::EventLog;
    use novalog_log::embedded::{EmbeddedLog, EmbeddedOptions};
    use novalog_runtime::consumer::Rejected;
    use novalog_schemas::{Actor, Envelope, Event, HostEvent, HostUsage, Meta};
    use novalog_store::StoreExt;

    use super::*;

    /// Records the (topic, offset, host) of every record it is handed.
    struct Recorder(Arc<std::sync::Mutex<Vec<(String, i64, String)>>>);

    #[async_trait]
    impl Handler for Recorder {
        async fn handle(
            &mut self,
            input: &Input,
            _out: &mut Outbox,
            _tx: &mut Transaction,
        ) -> Result<(), Rejected> {
            if let Event::Host(HostEvent::HostHeartbeat { host, .. }) = &input.env.event {
                self.0
                    .lock()
                    .unwrap()
                    .push((input.topic.clone(), input.offset, host.clone()));
            }
            Ok(())
        }

        async fn recover(&mut self) -> novalog_runtime::Result<()> {
            Ok(())
        }
    }

    fn heartbeat(host: &str) -> Vec<u8> {
        novalog_schemas::encode(&Envelope {
            meta: Meta::origin(
                uuid::Uuid::new_v4(),
                "req-test".into(),
                Actor::default(),
                host.into(),
            ),
            event: Event::Host(HostEvent::HostHeartbeat {
                host: host.into(),
                usage: HostUsage::default(),
            }),
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_pipelined_fold_hands_every_record_over_in_log_order_and_counts_the_undecodable() {
        let dir = tempfile::tempdir().unwrap();
        let topics = Topics::new("t.");
        let log_dir = dir.path().join("log");
        {
            let log = EmbeddedLog::open(&log_dir, EmbeddedOptions::default()).unwrap();
            log.create_topics(&topics.specs(1)).await.unwrap();
            // More than one chunk of the reader's, over two topics, one
            // record that does not decode among them.
            for i in 0..(CHUNK + 100) {
                let (topic, value) = match i % 3 {
                    0 => (topics.hosts.clone(), heartbeat(&format!("h{i}"))),
                    1 if i == 1 => (topics.instances.clone(), b"not protobuf".to_vec()),
                    _ => (topics.catalog.clone(), heartbeat(&format!("h{i}"))),
                };
                log.append(vec![novalog_log::Record::new(topic, b"k".to_vec(), value)])
                    .await
                    .unwrap();
            }
            // A carried topic: its offsets only, its records never read.
            for i in 0..3 {
                let value = heartbeat(&format!("s{i}"));
                log.append(vec![novalog_log::Record::new(
                    topics.scheduler.clone(),
                    b"k".to_vec(),
                    value,
                )])
                .await
                .unwrap();
            }
        }
        let src = Source::embedded(&log_dir, topics.clone()).unwrap();
        let into = dir.path().join("out");
        let store = RocksStore::create_for_rebuild(&into).unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let inputs = vec![
            topics.hosts.clone(),
            topics.catalog.clone(),
            topics.instances.clone(),
        ];
        let stats = fold(
            &src,
            &inputs,
            std::slice::from_ref(&topics.scheduler),
            "test",
            &store,
            Recorder(seen.clone()),
            None,
            None,
            &crate::Silent,
        )
        .await
        .unwrap();
        assert_eq!(
            stats.records,
            (CHUNK + 100) as u64,
            "every record read counts"
        );
        let seen = seen.lock().unwrap();
        // Catalog records carry a host event, so they decode only as
        // something that is not on their topic: dropped like a dead letter.
        let hosts: Vec<&String> = seen.iter().map(|(_, _, h)| h).collect();
        let want: Vec<String> = (0..(CHUNK + 100))
            .filter(|i| i % 3 == 0)
            .map(|i| format!("h{i}"))
            .collect();
        assert_eq!(hosts, want.iter().collect::<Vec<_>>(), "in append order");
        assert!(seen.iter().all(|(t, _, _)| *t == topics.hosts));
        // The offsets committed are those after the last record of each
        // partition, undecodable ones included.
        let offsets = store.offsets("test").unwrap();
        assert_eq!(offsets[&(topics.instances.clone(), 0)], 1);
        assert_eq!(offsets[&(topics.scheduler.clone(), 0)], 3, "carried");
        assert_eq!(
            offsets[&(topics.hosts.clone(), 0)],
            want.len() as i64,
            "{offsets:?}"
        );
    }
}
