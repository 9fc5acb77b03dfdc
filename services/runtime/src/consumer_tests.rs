//! The loop's isolation of failing records, on a real embedded log: what
//! is dead-lettered, what is committed, what memory holds afterwards, and
//! that a restart does not see a failed record again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use novalog_log::embedded::{EmbeddedLog, EmbeddedOptions};
use novalog_log::{EventLog, Record};
use novalog_schemas::{Actor, Envelope, Event, InstanceEvent, Meta};
use novalog_store::{MemStore, StoreExt, Transaction};
use uuid::Uuid;

use super::*;

const IN: &str = "in";
const OUT: &str = "out";
const DEAD: &str = "dead";
const ANSWERS: &str = "answers";
const NAME: &str = "t";

/// Applies every record as a row and a count; misbehaves on records whose
/// correlation id says so.
struct Folder {
    store: MemStore,
    /// Records applied, as of the last commit plus this batch.
    count: u64,
    /// A record of this batch asked `finish_batch` to panic.
    finish_panics: bool,
    /// Times a record marked `panic` reached `handle`.
    poison_hits: Arc<AtomicUsize>,
}

impl Folder {
    fn new(store: MemStore, poison_hits: Arc<AtomicUsize>) -> Folder {
        let count = store.get::<u64>("count", b"n").unwrap().unwrap_or(0);
        Folder {
            store,
            count,
            finish_panics: false,
            poison_hits,
        }
    }
}

#[async_trait]
impl Handler for Folder {
    async fn handle(
        &mut self,
        input: &Input,
        out: &mut Outbox,
        tx: &mut Transaction,
    ) -> Result<(), Rejected> {
        // Everything a record does is staged first, so that a failure
        // after it has something to throw away.
        let tag = input.env.meta.correlation_id.clone();
        tx.put("rows", tag.as_bytes(), &input.offset).unwrap();
        out.emit(OUT, "k", &input.env);
        self.count += 1;
        match tag.split('-').next() {
            Some("panic") => {
                self.poison_hits.fetch_add(1, Ordering::SeqCst);
                panic!("poison record at offset {}", input.offset);
            }
            Some("reject") => Err(Rejected("refused".into())),
            Some("finish") => {
                self.finish_panics = true;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn finish_batch(&mut self, _out: &mut Outbox, tx: &mut Transaction) -> crate::Result<()> {
        if self.finish_panics {
            panic!("finish poisoned");
        }
        tx.put("count", b"n", &self.count)?;
        Ok(())
    }

    async fn recover(&mut self) -> crate::Result<()> {
        *self = Folder::new(self.store.clone(), self.poison_hits.clone());
        Ok(())
    }

    fn dead_lettered(&mut self, dead: &DeadRecord<'_>, out: &mut Outbox) {
        if let Some((meta, _)) = &dead.meta {
            let answer = Envelope {
                meta: meta.caused("answer", String::new(), 0),
                event: Event::Instance(InstanceEvent::InstanceDeleteStarted),
            };
            out.emit(ANSWERS, "k", &answer);
        }
    }
}

fn record(tag: &str) -> Record {
    let env = Envelope {
        meta: Meta::origin(
            Uuid::new_v4(),
            tag.to_owned(),
            Actor::service("test"),
            String::new(),
        ),
        event: Event::Instance(InstanceEvent::InstanceDeleteStarted),
    };
    Record::new(IN, "k", novalog_schemas::encode(&env))
}

fn spec() -> ConsumerSpec {
    ConsumerSpec {
        name: NAME.into(),
        group: NAME.into(),
        topics: vec![IN.into()],
        dead_letter_topic: DEAD.into(),
        max_batch: 100,
    }
}

async fn topic(log: &EmbeddedLog, name: &str) -> Vec<Envelope> {
    log.read(name, 0, 0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|r| novalog_schemas::decode(&r.value).unwrap())
        .collect()
}

async fn dead_letters(log: &EmbeddedLog) -> Vec<String> {
    topic(log, DEAD)
        .await
        .into_iter()
        .map(|e| match e.event {
            Event::DeadLetter(d) => d.error,
            other => panic!("not a dead letter: {other:?}"),
        })
        .collect()
}

/// Runs the loop until it has committed the offset `until` of `in`.
async fn consume(log: &Arc<EmbeddedLog>, store: &MemStore, handler: Folder, until: i64) {
    let (stop, shutdown) = crate::Shutdown::new();
    let task = tokio::spawn(run(
        log.clone() as Arc<dyn EventLog>,
        Arc::new(store.clone()),
        spec(),
        handler,
        shutdown,
    ));
    // A bound, not a timing assertion: the loop has no reason to be slow.
    for _ in 0..1000 {
        if store.offset(NAME, IN, 0).unwrap() == Some(until) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.trigger();
    task.await.unwrap().unwrap();
    assert_eq!(store.offset(NAME, IN, 0).unwrap(), Some(until));
}

fn open_log(dir: &std::path::Path) -> Arc<EmbeddedLog> {
    Arc::new(
        EmbeddedLog::open(
            dir,
            EmbeddedOptions {
                default_partitions: 1,
                sync: false,
            },
        )
        .unwrap(),
    )
}

fn rows(store: &MemStore) -> Vec<String> {
    store
        .scan::<i64>("rows")
        .unwrap()
        .into_iter()
        .map(|(k, _)| String::from_utf8(k).unwrap())
        .collect()
}

#[tokio::test]
async fn a_failing_record_is_dead_lettered_alone_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let mut records = vec![
        record("ok-a"),
        record("panic-b"),
        record("ok-c"),
        record("reject-d"),
    ];
    records.push(Record::new(IN, "k", b"not an envelope".to_vec()));
    records.push(record("ok-e"));
    log.append(records).await.unwrap();
    let store = MemStore::new();
    let hits = Arc::new(AtomicUsize::new(0));

    consume(&log, &store, Folder::new(store.clone(), hits.clone()), 6).await;

    let dead = dead_letters(&log).await;
    assert_eq!(dead.len(), 3, "{dead:?}");
    assert_eq!(dead[0], "panic: poison record at offset 1");
    assert_eq!(dead[1], "apply: refused");
    assert!(dead[2].starts_with("decode: "), "{}", dead[2]);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "a panicking record is not handled twice"
    );
    // Only the good records' staged writes and outputs survive; the
    // count in memory was recovered from the store, not from the half-done
    // batch (it would be 5 or 6 otherwise).
    assert_eq!(rows(&store), vec!["ok-a", "ok-c", "ok-e"]);
    assert_eq!(store.get::<u64>("count", b"n").unwrap(), Some(3));
    let outputs: Vec<String> = topic(&log, OUT)
        .await
        .into_iter()
        .map(|e| e.meta.correlation_id)
        .collect();
    assert_eq!(outputs, vec!["ok-a", "ok-c", "ok-e"]);
    // The handler answered the two dead letters whose metadata decodes.
    let answers = topic(&log, ANSWERS).await;
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0].meta.correlation_id, "panic-b");

    // A restart resumes after them: nothing replayed, nothing dead-lettered again.
    log.append(vec![record("ok-f")]).await.unwrap();
    consume(&log, &store, Folder::new(store.clone(), hits.clone()), 7).await;
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(dead_letters(&log).await.len(), 3);
    assert_eq!(store.get::<u64>("count", b"n").unwrap(), Some(4));
    assert_eq!(rows(&store), vec!["ok-a", "ok-c", "ok-e", "ok-f"]);
}

#[tokio::test]
async fn a_panic_in_finish_batch_dead_letters_the_record_that_caused_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    log.append(vec![record("ok-a"), record("finish-b"), record("ok-c")])
        .await
        .unwrap();
    let store = MemStore::new();
    let hits = Arc::new(AtomicUsize::new(0));

    consume(&log, &store, Folder::new(store.clone(), hits), 3).await;

    assert_eq!(
        dead_letters(&log).await,
        vec!["panic: finish poisoned (finishing the batch)"]
    );
    assert_eq!(rows(&store), vec!["ok-a", "ok-c"]);
    assert_eq!(store.get::<u64>("count", b"n").unwrap(), Some(2));
    let outputs = topic(&log, OUT).await;
    assert_eq!(outputs.len(), 2, "outputs of the failed batch were dropped");
}

/// A log that sees the consumer's store: each append of outputs notes the
/// offset of `in` the store had committed when it came, and the first one
/// fails as if the process had been killed right before it.
struct Witness {
    log: Arc<EmbeddedLog>,
    store: MemStore,
    /// The committed offset of `in` at each append to `out`.
    committed_at_append: parking_lot::Mutex<Vec<Option<i64>>>,
    /// At each append to `out`: the correlation ids appended, and those
    /// the outbox row held (what a restart then would append again).
    outbox_at_append: parking_lot::Mutex<Vec<(Vec<String>, Vec<String>)>>,
    die_once: std::sync::atomic::AtomicBool,
}

fn correlation_ids<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    values
        .map(|v| novalog_schemas::decode(v).unwrap().meta.correlation_id)
        .collect()
}

#[async_trait]
impl EventLog for Witness {
    async fn create_topics(&self, topics: &[novalog_log::TopicSpec]) -> novalog_log::Result<()> {
        self.log.create_topics(topics).await
    }

    async fn append(
        &self,
        records: Vec<Record>,
    ) -> novalog_log::Result<Vec<novalog_log::Position>> {
        if records.iter().any(|r| r.topic == OUT) {
            if self.die_once.swap(false, Ordering::SeqCst) {
                return Err(novalog_log::Error::Storage(
                    "killed before the append".into(),
                ));
            }
            let committed = self.store.offset(NAME, IN, 0).unwrap();
            self.committed_at_append.lock().push(committed);
            let row = self
                .store
                .get::<Pending>(OUTBOX, NAME.as_bytes())
                .unwrap()
                .unwrap_or_default();
            self.outbox_at_append.lock().push((
                correlation_ids(records.iter().map(|r| r.value.as_slice())),
                correlation_ids(row.iter().map(|(_, _, v)| v.as_slice())),
            ));
        }
        self.log.append(records).await
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[String],
        offsets: novalog_log::OffsetLookup,
    ) -> novalog_log::Result<Box<dyn novalog_log::Subscription>> {
        self.log.subscribe(group, topics, offsets).await
    }

    async fn read(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        max: usize,
    ) -> novalog_log::Result<Vec<Consumed>> {
        self.log.read(topic, partition, from, max).await
    }

    async fn end_offsets(&self, topic: &str) -> novalog_log::Result<Vec<i64>> {
        self.log.end_offsets(topic).await
    }
}

/// The soak's stuck servers: a service that sent a command (an output)
/// had to have committed the state that awaits its answer, or a restart
/// could read the answer first and drop it as stale. Outputs go out only
/// after their batch is committed; a stop between the two sends them on
/// start, before anything is consumed, once, and the batch is not handled
/// again.
#[tokio::test]
async fn outputs_are_appended_only_after_their_batch_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let store = MemStore::new();
    let hits = Arc::new(AtomicUsize::new(0));
    let witness = Arc::new(Witness {
        log: log.clone(),
        store: store.clone(),
        committed_at_append: Default::default(),
        outbox_at_append: Default::default(),
        die_once: true.into(),
    });
    log.append(vec![record("ok-a")]).await.unwrap();

    // Killed between the commit and the append: the batch is committed,
    // its output is not in the log yet.
    let (_stop, shutdown) = crate::Shutdown::new();
    let died = run(
        witness.clone() as Arc<dyn EventLog>,
        Arc::new(store.clone()),
        spec(),
        Folder::new(store.clone(), hits.clone()),
        shutdown,
    )
    .await;
    assert!(died.is_err());
    assert_eq!(store.offset(NAME, IN, 0).unwrap(), Some(1));
    match log.read(OUT, 0, 0, 10).await {
        Ok(appended) => assert!(appended.is_empty()),
        Err(e) => assert!(matches!(e, novalog_log::Error::UnknownTopic(_)), "{e}"),
    }

    // Restarted: the pending output goes out before `ok-b` is consumed.
    log.append(vec![record("ok-b")]).await.unwrap();
    let (stop, shutdown) = crate::Shutdown::new();
    let task = tokio::spawn(run(
        witness.clone() as Arc<dyn EventLog>,
        Arc::new(store.clone()),
        spec(),
        Folder::new(store.clone(), hits),
        shutdown,
    ));
    // A bound, not a timing assertion: the loop has no reason to be slow.
    for _ in 0..1000 {
        if store.offset(NAME, IN, 0).unwrap() == Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.trigger();
    task.await.unwrap().unwrap();

    let outputs: Vec<String> = topic(&log, OUT)
        .await
        .into_iter()
        .map(|e| e.meta.correlation_id)
        .collect();
    assert_eq!(outputs, vec!["ok-a", "ok-b"]);
    assert_eq!(
        *witness.committed_at_append.lock(),
        vec![Some(1), Some(2)],
        "each output appended after the offset of its cause was committed"
    );
    assert_eq!(rows(&store), vec!["ok-a", "ok-b"]);
    assert_eq!(
        store.get::<u64>("count", b"n").unwrap(),
        Some(2),
        "ok-a was not handled again"
    );
    assert!(
        store.scan_raw(OUTBOX).unwrap().is_empty(),
        "nothing left pending"
    );
}

#[test]
fn a_record_of_another_topics_type_does_not_decode() {
    let bytes = record("ok-a").value;
    // An instance event read from an intents topic, whatever the namespace,
    // is dead-lettered like any record that does not decode.
    assert_eq!(
        super::decode_record("test-1.intents", &bytes).unwrap_err(),
        novalog_schemas::DecodeError::WrongTopic {
            type_name: "InstanceDeleteStarted".into(),
            topic: "intents",
        }
    );
    assert!(super::decode_record("test-1.instances", &bytes).is_ok());
    // A topic that is none of Novalog's takes any record.
    assert!(super::decode_record(IN, &bytes).is_ok());
}

/// The outbox row is cleared by the next batch's commit, not by a commit
/// of its own: at every append it holds exactly the outputs being appended
/// (none of an earlier batch, which were appended before it), and once the
/// consumer is idle it is gone.
#[tokio::test]
async fn the_outbox_holds_only_the_last_batch_and_is_cleared_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let store = MemStore::new();
    let witness = Arc::new(Witness {
        log: log.clone(),
        store: store.clone(),
        committed_at_append: Default::default(),
        outbox_at_append: Default::default(),
        die_once: false.into(),
    });
    let (stop, shutdown) = crate::Shutdown::new();
    let task = tokio::spawn(run(
        witness.clone() as Arc<dyn EventLog>,
        Arc::new(store.clone()),
        spec(),
        Folder::new(store.clone(), Arc::default()),
        shutdown,
    ));
    let committed = |n: i64| {
        let store = store.clone();
        async move {
            // A bound, not a timing assertion.
            for _ in 0..1000 {
                if store.offset(NAME, IN, 0).unwrap() == Some(n) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("offset {n} never committed");
        }
    };
    log.append(vec![record("ok-a")]).await.unwrap();
    committed(1).await;
    log.append(vec![record("ok-b"), record("ok-c")])
        .await
        .unwrap();
    committed(3).await;
    let mut cleared = false;
    for _ in 0..1000 {
        if store.scan_raw(OUTBOX).unwrap().is_empty() {
            cleared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(cleared, "an idle consumer clears its outbox row");
    stop.trigger();
    task.await.unwrap().unwrap();

    let appends = witness.outbox_at_append.lock().clone();
    assert!(!appends.is_empty());
    for (appended, row) in &appends {
        assert_eq!(appended, row, "the row holds exactly what is appended");
    }
    let all: Vec<String> = appends.into_iter().flat_map(|(a, _)| a).collect();
    assert_eq!(all, vec!["ok-a", "ok-b", "ok-c"]);
}

#[test]
fn a_discarding_outbox_keeps_nothing_and_a_default_one_keeps_everything() {
    let env = Envelope {
        meta: Meta::origin(
            Uuid::new_v4(),
            "req-x".into(),
            Actor::service("test"),
            String::new(),
        ),
        event: Event::Instance(InstanceEvent::InstanceDeleteStarted),
    };
    let mut kept = Outbox::default();
    let mut dropped = Outbox::discarding();
    for _ in 0..3 {
        kept.emit(IN, "k", &env);
        dropped.emit(IN, "k", &env);
    }
    assert_eq!(kept.len(), 3);
    assert!(dropped.is_empty());
    assert!(dropped.into_records().is_empty());
}
