//! The consumer loop every service runs.
//!
//! For each batch: decode every record (what does not decode goes to the
//! dead-letter topic with the error), let the handler apply the batch —
//! staging projection writes in a [`Transaction`] and outputs in an
//! [`Outbox`] — commit the projection writes, the next offsets and the
//! outputs (in an outbox table) in one transaction, then append the outputs.
//! The outbox row is cleared by the next batch's commit (which overwrites
//! it with its own outputs, or deletes it), or after the consumer has been
//! idle a moment, or when it stops: a separate commit per batch to clear it
//! cost every hop a second RocksDB write. A consumer that stopped after a
//! commit appends that batch's outputs on start, before it consumes
//! anything: the outputs of the last batch only, as every earlier batch's
//! were appended before the next was committed. They may have gone out
//! already (as they could between an append and a clear); outputs carry
//! deterministic ids, so copies sent twice are duplicates that readers drop
//! (DESIGN §3).
//!
//! # Why outputs are committed before they are sent
//! Appending first and committing after left a window where a service had
//! sent a command but its state did not say so. Killed there, it handled
//! the batch again on restart and sent the command again, but the answer
//! to the first copy could reach it first, on another topic, while its
//! state still predated the command: it dropped the answer as stale, and
//! the one it waited for then never came (the host had carried the command
//! out already and ignores a copy). A conductor killed that way left a
//! server in BUILD/spawning or RESIZE/resize_prep until its deadline. With
//! the outputs committed with the state that sent them, no answer can come
//! before the state that awaits it.
//!
//! # Isolation: no record can stop a consumer
//! Applying one record is isolated. When a record does not decode, or its
//! handler returns an error or panics (in `handle`, or in `finish_batch`
//! for a batch of that one record), the record goes to the dead-letter
//! topic with the reason (a panic's message included), its offset is
//! committed after the dead letter is appended, and the loop goes on with
//! the next record: a service never crash-loops on its input, and a
//! restart does not see the record again. Nothing the failed record staged
//! survives: the batch it was in is thrown away whole (its transaction and
//! its outbox were never committed or appended), the handler reloads its
//! in-memory state from its store ([`Handler::recover`]), and the batch is
//! applied again one record per transaction, the failing record (when it
//! is known) dead-lettered without being handled twice. Panics are caught
//! with `catch_unwind`, so this holds as long as the build unwinds on panic
//! (the workspace's profiles do; `panic = "abort"` would end it). Errors of
//! the log or the store are not a record's fault: they stop the loop.

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt as _;
use novalog_log::{Consumed, EventLog, OffsetLookup, Record};
use novalog_schemas::events::DeadLetter;
use novalog_schemas::{DecodeError, Envelope, Event, Meta, Topic};
use novalog_store::{Store, StoreExt, Transaction};
use tracing::Instrument;
use uuid::Uuid;

use crate::Shutdown;

/// A decoded record and where it came from.
#[derive(Debug, Clone)]
pub struct Input {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub env: Envelope,
}

/// Records a handler wants appended once its batch is applied.
#[derive(Debug, Default)]
pub struct Outbox {
    records: Vec<Record>,
    /// Side effects off (a replay): what is emitted is dropped unencoded.
    discard: bool,
}

impl Outbox {
    /// An outbox that drops what is emitted, for a fold whose outputs
    /// nobody appends (a replay): encoding them would be wasted work.
    pub fn discarding() -> Self {
        Outbox {
            records: Vec::new(),
            discard: true,
        }
    }

    pub fn emit(&mut self, topic: &str, key: impl Into<Vec<u8>>, env: &Envelope) {
        if self.discard {
            return;
        }
        self.records
            .push(Record::new(topic, key, novalog_schemas::encode(env)));
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn into_records(self) -> Vec<Record> {
        self.records
    }
}

/// Why one record could not be applied; it goes to the dead-letter topic
/// and the service keeps going.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

/// Why a record was dead-lettered.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The record did not decode.
    Decode(DecodeError),
    /// Its handler returned an error (from `handle`, or from
    /// `finish_batch` for the batch of this one record).
    Apply(String),
    /// Its handler panicked; the panic's message.
    Panic(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Decode(e) => write!(f, "decode: {e}"),
            Failure::Apply(e) => write!(f, "apply: {e}"),
            Failure::Panic(m) => write!(f, "panic: {m}"),
        }
    }
}

/// A record being dead-lettered, as [`Handler::dead_lettered`] sees it.
#[derive(Debug)]
pub struct DeadRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// The record's metadata and type name, when at least those decode.
    pub meta: Option<(Meta, String)>,
    pub failure: &'a Failure,
}

/// A service's fold over its input topics.
///
/// A handler's state has two parts: what it has committed to the store
/// (with the offsets it reflects), and what it holds in memory. The loop
/// keeps them in step across failures: when handling a record fails, by an
/// error or a panic, nothing that record's batch staged is committed or
/// appended, and the loop calls [`Handler::recover`] before it goes on, so
/// memory that a panic left half-changed never outlives it.
#[async_trait]
pub trait Handler: Send + 'static {
    /// Applies one record. Returning `Rejected` dead-letters the record
    /// (after [`Handler::recover`]: what the record changed is thrown away).
    async fn handle(
        &mut self,
        input: &Input,
        out: &mut Outbox,
        tx: &mut Transaction,
    ) -> Result<(), Rejected>;

    /// Called once per batch after every `handle`, before the outputs are
    /// appended: the place for work that is cheaper done for the batch as a
    /// whole (concurrent driver calls, say). An error or a panic here is
    /// a failure of the batch: the loop recovers and applies its records
    /// one at a time, dead-lettering the one that fails alone.
    async fn finish_batch(
        &mut self,
        _out: &mut Outbox,
        _tx: &mut Transaction,
    ) -> crate::Result<()> {
        Ok(())
    }

    /// Called after the batch's outputs are appended and its transaction
    /// committed (e.g. to wake API requests waiting for it).
    fn committed(&mut self) {}

    /// Throws away everything the handler holds in memory beyond its last
    /// committed batch and reads its state back from its store, as on
    /// start. Called after a record's handling failed, before anything else
    /// is handled: a panic may have left memory half-changed, and records
    /// handled earlier in the failed batch were never committed. A handler
    /// that keeps nothing in memory between batches returns `Ok(())`. An
    /// error stops the consumer (the process restarts and loads its state
    /// from the store anyway).
    async fn recover(&mut self) -> crate::Result<()>;

    /// Called for every record about to be dead-lettered, in the batch that
    /// writes the dead letter: a handler may emit records that answer it
    /// (the conductor's rejection verdict on an intent it cannot apply), so
    /// that the answer and the dead letter are appended together. It may
    /// stage what it publishes on commit (the API resolves a waiting
    /// request), but must not change the state it folds.
    fn dead_lettered(&mut self, _dead: &DeadRecord<'_>, _out: &mut Outbox) {}
}

/// A boxed handler is a handler, so that a service can hand its (private)
/// handler to a wrapper (tests wrap one to inject failures).
#[async_trait]
impl Handler for Box<dyn Handler> {
    async fn handle(
        &mut self,
        input: &Input,
        out: &mut Outbox,
        tx: &mut Transaction,
    ) -> Result<(), Rejected> {
        (**self).handle(input, out, tx).await
    }

    async fn finish_batch(&mut self, out: &mut Outbox, tx: &mut Transaction) -> crate::Result<()> {
        (**self).finish_batch(out, tx).await
    }

    fn committed(&mut self) {
        (**self).committed()
    }

    async fn recover(&mut self) -> crate::Result<()> {
        (**self).recover().await
    }

    fn dead_lettered(&mut self, dead: &DeadRecord<'_>, out: &mut Outbox) {
        (**self).dead_lettered(dead, out)
    }
}

/// What a service hands its handler to before running it: production
/// passes [`unwrapped`]; tests wrap the real handler (to make it panic on a
/// marker record, say) without any such trigger in the service itself.
pub type Wrap = Box<dyn FnOnce(Box<dyn Handler>) -> Box<dyn Handler> + Send>;

/// The [`Wrap`] that leaves a handler as it is.
pub fn unwrapped() -> Wrap {
    Box::new(|h| h)
}

/// Where a consumer's stored offsets live.
pub fn offset_lookup<S: Store>(store: Arc<S>, consumer: String) -> OffsetLookup {
    Arc::new(move |topic: &str, partition: i32| {
        store.offset(&consumer, topic, partition).ok().flatten()
    })
}

pub struct ConsumerSpec {
    /// The name under which offsets are stored (and dead letters signed).
    pub name: String,
    /// The consumer group: replicas of one service share it and split the
    /// partitions. Namespaced like the topics (see [`Topics::group`]), so
    /// clouds sharing a broker never share a group.
    ///
    /// [`Topics::group`]: crate::Topics::group
    pub group: String,
    pub topics: Vec<String>,
    pub dead_letter_topic: String,
    pub max_batch: usize,
}

/// Runs `handler` over `spec.topics` until `shutdown`. An error from the
/// log or the store stops the loop (the process should exit and restart:
/// its state is still consistent); a record that fails — it does not
/// decode, or its handler returns an error or panics — is dead-lettered
/// and the loop goes on.
pub async fn run<S: Store, H: Handler>(
    log: Arc<dyn EventLog>,
    store: Arc<S>,
    spec: ConsumerSpec,
    mut handler: H,
    mut shutdown: Shutdown,
) -> crate::Result<()> {
    append_pending(&*log, &*store, &spec.name).await?;
    let offsets = offset_lookup(store.clone(), spec.name.clone());
    let mut sub = log
        .subscribe(&spec.group, &spec.topics, offsets.clone())
        .await?;
    let progress = crate::progress::Progress::start(
        log.clone(),
        &spec.name,
        &spec.topics,
        &offsets,
        shutdown.clone(),
    )
    .await;
    // Whether the outbox row holds outputs already appended.
    let mut appended = false;
    let result = loop {
        let batch = tokio::select! {
            _ = shutdown.wait() => break Ok(()),
            b = sub.next_batch(spec.max_batch) => b,
            // Idle: nothing will overwrite the row soon, so it goes now
            // (a restart would otherwise send its outputs again). Both
            // backends' `next_batch` lose nothing when dropped while waiting.
            _ = tokio::time::sleep(OUTBOX_IDLE_CLEAR), if appended => {
                if let Err(e) = clear_pending(&*store, &spec.name) {
                    break Err(e);
                }
                appended = false;
                continue;
            }
        };
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => break Err(e.into()),
        };
        in_replay_order(&mut batch, &spec.topics);
        let next = crate::observe::count_consumed(&spec.name, &batch);
        let mut consumer = Consumer {
            log: &*log,
            store: &*store,
            spec: &spec,
            handler: &mut handler,
            appended: &mut appended,
        };
        if let Err(e) = consumer.apply(batch).await {
            break Err(e);
        }
        progress.committed(&next, &sub.assignment());
    };
    sub.close().await;
    let cleared = if appended && result.is_ok() {
        clear_pending(&*store, &spec.name)
    } else {
        Ok(())
    };
    result.and(cleared)
}

/// Puts a batch in the order a replay can follow: by the topic's place in
/// the consumer's topics, then partition, then offset. A batch comes in
/// whatever order the backend fetched its partitions; within a partition
/// this is the order it came in. A replay knows which records one batch
/// held (from what the batch caused, see docs/audit-and-replay.md) but not
/// the order they were fetched in, so the handler sees them in this one.
fn in_replay_order(batch: &mut [Consumed], topics: &[String]) {
    let rank = |t: &str| topics.iter().position(|x| x == t).unwrap_or(usize::MAX);
    batch.sort_by(|a, b| {
        (rank(&a.topic), a.partition, a.offset).cmp(&(rank(&b.topic), b.partition, b.offset))
    });
}

/// How long a consumer waits for its next batch before it clears the
/// outbox row of its last one by a commit of its own.
const OUTBOX_IDLE_CLEAR: std::time::Duration = std::time::Duration::from_millis(100);

/// One record of a batch failed; nothing of the batch was appended or
/// committed.
struct BatchFailed {
    /// Which record, when it is known (not when `finish_batch` failed).
    index: Option<usize>,
    failure: Failure,
}

struct Consumer<'a, S, H> {
    log: &'a dyn EventLog,
    store: &'a S,
    spec: &'a ConsumerSpec,
    handler: &'a mut H,
    /// Whether the outbox row holds outputs already appended, which the
    /// next commit clears.
    appended: &'a mut bool,
}

impl<S: Store, H: Handler> Consumer<'_, S, H> {
    /// Applies a batch as one transaction; when one of its records fails,
    /// recovers the handler and applies the batch again one record per
    /// transaction, so that exactly the failing record is dead-lettered and
    /// every other one is applied once.
    async fn apply(&mut self, batch: Vec<Consumed>) -> crate::Result<()> {
        let mut known = BTreeMap::new();
        let failed = match self.try_batch(&batch, &known).await? {
            Ok(()) => return Ok(()),
            Err(failed) => failed,
        };
        self.handler.recover().await?;
        if let Some(i) = failed.index {
            // Not handled a second time: a panic may have side effects.
            known.insert(i, failed.failure);
        }
        for (i, rec) in batch.iter().enumerate() {
            let single = std::slice::from_ref(rec);
            let failure = match known.remove(&i) {
                Some(f) => f,
                None => match self.try_batch(single, &BTreeMap::new()).await? {
                    Ok(()) => continue,
                    Err(failed) => {
                        self.handler.recover().await?;
                        failed.failure
                    }
                },
            };
            self.commit_dead_letter(rec, failure).await?;
        }
        Ok(())
    }

    /// Handles `records` and commits them with their offsets in one
    /// transaction; `poisoned` are dead-lettered without being handled.
    async fn try_batch(
        &mut self,
        records: &[Consumed],
        poisoned: &BTreeMap<usize, Failure>,
    ) -> crate::Result<Result<(), BatchFailed>> {
        let mut out = Outbox::default();
        let mut tx = Transaction::new();
        let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for (i, rec) in records.iter().enumerate() {
            let slot = next.entry((rec.topic.clone(), rec.partition)).or_insert(0);
            *slot = (*slot).max(rec.offset + 1);
            let failure = match poisoned.get(&i) {
                Some(f) => f.clone(),
                None => match decode_record(&rec.topic, &rec.value) {
                    Ok(env) => {
                        let input = Input {
                            topic: rec.topic.clone(),
                            partition: rec.partition,
                            offset: rec.offset,
                            env,
                        };
                        // Every line logged while handling the record
                        // carries its request id and event id.
                        let span = crate::observe::record_span(&self.spec.name, &input);
                        let handled = AssertUnwindSafe(
                            self.handler
                                .handle(&input, &mut out, &mut tx)
                                .instrument(span.clone()),
                        )
                        .catch_unwind()
                        .await;
                        span.in_scope(|| {
                            crate::observe::record_handled(&input, matches!(handled, Ok(Ok(()))))
                        });
                        let failure = match handled {
                            Ok(Ok(())) => continue,
                            Ok(Err(e)) => Failure::Apply(e.0),
                            Err(panic) => Failure::Panic(panic_message(&*panic)),
                        };
                        return Ok(Err(BatchFailed {
                            index: Some(i),
                            failure,
                        }));
                    }
                    Err(e) => Failure::Decode(e),
                },
            };
            self.dead_letter(rec, &failure, &mut out);
        }
        let finished = AssertUnwindSafe(self.handler.finish_batch(&mut out, &mut tx))
            .catch_unwind()
            .await;
        let failure = match finished {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(Failure::Apply(format!("finishing the batch: {e}"))),
            Err(panic) => Some(Failure::Panic(format!(
                "{} (finishing the batch)",
                panic_message(&*panic)
            ))),
        };
        if let Some(failure) = failure {
            let index = (records.len() == 1).then_some(0);
            return Ok(Err(BatchFailed { index, failure }));
        }
        self.commit(out, tx, next).await?;
        Ok(Ok(()))
    }

    /// Commits `rec`'s dead letter (and the handler's answer to it) with
    /// the offset after it, handling nothing.
    async fn commit_dead_letter(&mut self, rec: &Consumed, failure: Failure) -> crate::Result<()> {
        let mut out = Outbox::default();
        self.dead_letter(rec, &failure, &mut out);
        let next = BTreeMap::from([((rec.topic.clone(), rec.partition), rec.offset + 1)]);
        self.commit(out, Transaction::new(), next).await
    }

    /// Commits the staged writes with the next offsets and the outputs
    /// (see the module doc), clearing the previous batch's from the outbox
    /// table, then appends the outputs, then tells the handler.
    async fn commit(
        &mut self,
        out: Outbox,
        mut tx: Transaction,
        next: BTreeMap<(String, i32), i64>,
    ) -> crate::Result<()> {
        let records = out.into_records();
        if !records.is_empty() {
            // Overwrites the previous batch's row, if any.
            tx.put(OUTBOX, self.spec.name.as_bytes(), &pending(&records))?;
        } else if *self.appended {
            tx.delete(OUTBOX, self.spec.name.as_bytes());
        }
        for ((topic, partition), offset) in next {
            tx.set_offset(&self.spec.name, &topic, partition, offset);
        }
        self.store.commit(tx)?;
        *self.appended = false;
        if !records.is_empty() {
            crate::observe::count_produced(&self.spec.name, &records);
            self.log.append(records).await?;
            *self.appended = true;
        }
        let handler = &mut *self.handler;
        if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| handler.committed())) {
            // The batch is committed; only memory may be off.
            tracing::error!(consumer = %self.spec.name, panic = %panic_message(&*panic),
                "handler panicked after a commit; reloading its state");
            self.handler.recover().await?;
        }
        Ok(())
    }

    /// Stages `rec`'s dead letter, and whatever the handler answers it
    /// with, in `out`.
    fn dead_letter(&mut self, rec: &Consumed, failure: &Failure, out: &mut Outbox) {
        tracing::warn!(consumer = %self.spec.name, topic = %rec.topic, partition = rec.partition,
            offset = rec.offset, error = %failure, "record dead-lettered");
        metrics::counter!("novalog_dead_letters_total", "consumer" => self.spec.name.clone(),
            "topic" => rec.topic.clone())
        .increment(1);
        let dead = DeadRecord {
            topic: &rec.topic,
            partition: rec.partition,
            offset: rec.offset,
            meta: novalog_schemas::decode_meta(&rec.value).ok(),
            failure,
        };
        let mut answer = Outbox::default();
        let handler = &mut *self.handler;
        match std::panic::catch_unwind(AssertUnwindSafe(|| {
            handler.dead_lettered(&dead, &mut answer)
        })) {
            Ok(()) => out.records.append(&mut answer.records),
            Err(panic) => tracing::error!(consumer = %self.spec.name,
                panic = %panic_message(&*panic), "answering a dead letter panicked"),
        }
        let env = dead_letter(&self.spec.name, rec, failure.to_string());
        out.emit(
            &self.spec.dead_letter_topic,
            rec.topic.as_bytes().to_vec(),
            &env,
        );
    }
}

/// The table where a batch's outputs wait from the commit that decided
/// them until they are appended, one row per consumer (not folded from
/// the log: a rebuild has none).
pub const OUTBOX: &str = "outbox";

/// Outputs as the outbox table holds them: topic, key, value.
type Pending = Vec<(String, Vec<u8>, Vec<u8>)>;

fn pending(records: &[Record]) -> Vec<(&str, &[u8], &[u8])> {
    records
        .iter()
        .map(|r| (r.topic.as_str(), r.key.as_slice(), r.value.as_slice()))
        .collect()
}

fn clear_pending<S: Store>(store: &S, consumer: &str) -> crate::Result<()> {
    let mut tx = Transaction::new();
    tx.delete(OUTBOX, consumer.as_bytes());
    store.commit(tx)?;
    Ok(())
}

/// Appends the outputs of the last batch `consumer` committed if the
/// process stopped before it had appended them all (see the module doc);
/// called before anything is consumed.
async fn append_pending<S: Store>(
    log: &dyn EventLog,
    store: &S,
    consumer: &str,
) -> crate::Result<()> {
    let Some(pending) = store.get::<Pending>(OUTBOX, consumer.as_bytes())? else {
        return Ok(());
    };
    tracing::info!(
        consumer,
        records = pending.len(),
        "appending the outputs of the last batch committed before a stop"
    );
    let records: Vec<Record> = pending
        .into_iter()
        .map(|(topic, key, value)| Record::new(topic, key, value))
        .collect();
    crate::observe::count_produced(consumer, &records);
    log.append(records).await?;
    clear_pending(store, consumer)
}

/// Decodes a record read from `topic`. A topic named after one of Novalog's
/// (whatever its namespace) takes only its own record types: one of another
/// topic's does not decode there, so a handler's match over its topic's
/// type sees everything it can be given.
pub fn decode_record(topic: &str, bytes: &[u8]) -> Result<Envelope, DecodeError> {
    match Topic::of_name(topic) {
        Some(t) => novalog_schemas::decode_on(t, bytes),
        None => novalog_schemas::decode(bytes),
    }
}

/// The message a panic was raised with.
fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

fn dead_letter(consumer: &str, rec: &Consumed, error: String) -> Envelope {
    // Deterministic id: the same bad record dead-letters once, however often
    // it is redelivered.
    let id = Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!(
            "dead-letter/{consumer}/{}/{}/{}",
            rec.topic, rec.partition, rec.offset
        )
        .as_bytes(),
    );
    Envelope {
        meta: Meta::origin(
            id,
            String::new(),
            novalog_schemas::Actor::service(consumer),
            rec.topic.clone(),
        ),
        event: Event::DeadLetter(Box::new(DeadLetter {
            source_topic: rec.topic.clone(),
            partition: rec.partition,
            offset: rec.offset,
            consumer: consumer.to_owned(),
            error,
            key: rec.key.clone(),
            value: rec.value.clone(),
        })),
    }
}

#[cfg(test)]
#[path = "consumer_tests.rs"]
mod tests;
