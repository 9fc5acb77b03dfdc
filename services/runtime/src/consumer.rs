//! The consumer loop every service runs.
//!
//! For each batch: decode every record (what does not decode goes to the
//! dead-letter topic with the error), let the handler apply the batch —
//! staging projection writes in a [`Transaction`] and outputs in an
//! [`Outbox`] — append the outputs, then commit the projection writes and
//! the next offsets in one transaction. A crash between the append and the
//! commit replays the batch; outputs carry deterministic ids, so the re-sent
//! copies are duplicates that readers drop (DESIGN §3).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use novalog_log::{Consumed, EventLog, OffsetLookup, Record};
use novalog_schemas::events::DeadLetter;
use novalog_schemas::{Envelope, Event, Meta};
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
}

impl Outbox {
    pub fn emit(&mut self, topic: &str, key: impl Into<Vec<u8>>, env: &Envelope) {
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

/// A service's fold over its input topics.
#[async_trait]
pub trait Handler: Send + 'static {
    /// Applies one record. Returning `Rejected` dead-letters the record.
    async fn handle(
        &mut self,
        input: &Input,
        out: &mut Outbox,
        tx: &mut Transaction,
    ) -> Result<(), Rejected>;

    /// Called once per batch after every `handle`, before the outputs are
    /// appended: the place for work that is cheaper done for the batch as a
    /// whole (concurrent driver calls, say).
    async fn finish_batch(
        &mut self,
        _out: &mut Outbox,
        _tx: &mut Transaction,
    ) -> anyhow::Result<()> {
        Ok(())
    }

    /// Called after the batch's outputs are appended and its transaction
    /// committed (e.g. to wake API requests waiting for it).
    fn committed(&mut self) {}
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
/// its state is still consistent); a record that fails is dead-lettered.
pub async fn run<S: Store, H: Handler>(
    log: Arc<dyn EventLog>,
    store: Arc<S>,
    spec: ConsumerSpec,
    mut handler: H,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
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
    let result = loop {
        let batch = tokio::select! {
            _ = shutdown.wait() => break Ok(()),
            b = sub.next_batch(spec.max_batch) => b,
        };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => break Err(e.into()),
        };
        let next = crate::observe::count_consumed(&spec.name, &batch);
        if let Err(e) = apply_batch(&*log, &*store, &spec, &mut handler, batch).await {
            break Err(e);
        }
        progress.committed(&next, &sub.assignment());
    };
    sub.close().await;
    result
}

async fn apply_batch<S: Store, H: Handler>(
    log: &dyn EventLog,
    store: &S,
    spec: &ConsumerSpec,
    handler: &mut H,
    batch: Vec<Consumed>,
) -> anyhow::Result<()> {
    let mut out = Outbox::default();
    let mut tx = Transaction::new();
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for rec in batch {
        let slot = next.entry((rec.topic.clone(), rec.partition)).or_insert(0);
        *slot = (*slot).max(rec.offset + 1);
        let error = match novalog_schemas::decode(&rec.value) {
            Ok(env) => {
                let input = Input {
                    topic: rec.topic.clone(),
                    partition: rec.partition,
                    offset: rec.offset,
                    env,
                };
                // Every line logged while handling the record carries its
                // request id and event id.
                let span = crate::observe::record_span(&spec.name, &input);
                let handled = handler
                    .handle(&input, &mut out, &mut tx)
                    .instrument(span.clone())
                    .await;
                span.in_scope(|| crate::observe::record_handled(&input, handled.is_ok()));
                match handled {
                    Ok(()) => continue,
                    Err(e) => format!("apply: {e}"),
                }
            }
            Err(e) => format!("decode: {e}"),
        };
        tracing::warn!(consumer = %spec.name, topic = %rec.topic, partition = rec.partition,
            offset = rec.offset, %error, "record dead-lettered");
        metrics::counter!("novalog_dead_letters_total", "consumer" => spec.name.clone(),
            "topic" => rec.topic.clone())
        .increment(1);
        let env = dead_letter(&spec.name, &rec, error);
        out.emit(&spec.dead_letter_topic, rec.topic.as_bytes().to_vec(), &env);
    }
    handler.finish_batch(&mut out, &mut tx).await?;
    if !out.is_empty() {
        let records = out.into_records();
        crate::observe::count_produced(&spec.name, &records);
        log.append(records).await?;
    }
    for ((topic, partition), offset) in next {
        tx.set_offset(&spec.name, &topic, partition, offset);
    }
    store.commit(tx)?;
    handler.committed();
    Ok(())
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
