//! How far a consumer is behind the log: `novalog_consumer_lag` per
//! partition and the consumer's readiness.
//!
//! A consumer is ready once every partition it holds has been applied up
//! to where the partition ended when the consumer started (the target):
//! after a restart, a service answers `/readyz` with 503 until its
//! projection holds everything that was in the log when it came up. Ready
//! stays ready: falling behind later is lag, not unreadiness.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use novalog_log::{EventLog, OffsetLookup};

use crate::Shutdown;
use crate::observe::{Health, Registration};

type Partition = (String, i32);

/// Pure bookkeeping: targets, known ends, committed offsets.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Where each partition ended when the consumer started; `None` until
    /// the ends could be read.
    target: Option<BTreeMap<Partition, i64>>,
    /// The latest end seen per partition.
    end: BTreeMap<Partition, i64>,
    /// The next offset to apply per partition.
    next: BTreeMap<Partition, i64>,
    ready: bool,
}

impl Tracker {
    /// Records the partitions' ends as read from the log; the first read
    /// becomes the readiness target.
    pub fn ends_read(&mut self, ends: BTreeMap<Partition, i64>) {
        for (p, e) in &ends {
            let slot = self.end.entry(p.clone()).or_insert(0);
            *slot = (*slot).max(*e);
        }
        if self.target.is_none() {
            self.target = Some(ends);
        }
    }

    /// Records the committed next offsets of a batch (or those stored when
    /// the consumer started).
    pub fn committed(&mut self, next: impl IntoIterator<Item = (Partition, i64)>) {
        for (p, n) in next {
            let slot = self.next.entry(p.clone()).or_insert(0);
            *slot = (*slot).max(n);
            // A record at `n - 1` exists, so the end is at least `n`.
            let end = self.end.entry(p).or_insert(0);
            *end = (*end).max(n);
        }
    }

    /// Lag per partition known.
    pub fn lag(&self) -> impl Iterator<Item = (&Partition, i64)> {
        self.end
            .iter()
            .map(|(p, e)| (p, (e - self.next.get(p).copied().unwrap_or(0)).max(0)))
    }

    /// Whether every partition in `assignment` (every partition of the
    /// target when the assignment is not known yet) has reached its target.
    pub fn check_ready(&mut self, assignment: &[Partition]) -> bool {
        if self.ready {
            return true;
        }
        let Some(target) = &self.target else {
            return false;
        };
        let reached = |p: &Partition, t: i64| self.next.get(p).copied().unwrap_or(0) >= t;
        self.ready = if assignment.is_empty() {
            target.iter().all(|(p, t)| reached(p, *t))
        } else {
            assignment
                .iter()
                .all(|p| reached(p, target.get(p).copied().unwrap_or(0)))
        };
        self.ready
    }
}

/// A consumer loop's progress, published as metrics and readiness.
pub struct Progress {
    consumer: String,
    tracker: Arc<parking_lot::Mutex<Tracker>>,
    registration: Registration,
}

impl Progress {
    /// Registers `consumer` in [`Health`], reads where its topics end and
    /// where its stored offsets are, and keeps the ends fresh every few
    /// seconds (so lag shows while the consumer is idle or stuck) until
    /// `shutdown`.
    pub async fn start(
        log: Arc<dyn EventLog>,
        consumer: &str,
        topics: &[String],
        stored: &OffsetLookup,
        mut shutdown: Shutdown,
    ) -> Progress {
        let registration = Health::global().register(consumer);
        let tracker = Arc::new(parking_lot::Mutex::new(Tracker::default()));
        let progress = Progress {
            consumer: consumer.to_owned(),
            tracker: tracker.clone(),
            registration,
        };
        if let Some(ends) = read_ends(&*log, topics).await {
            let stored: Vec<_> = ends
                .keys()
                .filter_map(|(t, p)| stored(t, *p).map(|o| ((t.clone(), *p), o)))
                .collect();
            let mut t = tracker.lock();
            t.ends_read(ends);
            t.committed(stored);
        }
        progress.publish(&[]);
        let (topics, consumer) = (topics.to_vec(), consumer.to_owned());
        let ready = progress.registration.ready.clone();
        // Weak: a stopped service must not keep its log open (the embedded
        // log's lock) while this task winds down.
        let log = Arc::downgrade(&log);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
                let Some(log) = log.upgrade() else { break };
                let ends = read_ends(&*log, &topics).await;
                drop(log);
                if let Some(ends) = ends {
                    let mut t = tracker.lock();
                    t.ends_read(ends);
                    let ready_now = t.check_ready(&[]);
                    publish(&consumer, &t);
                    if ready_now {
                        ready.store(true, Ordering::Release);
                    }
                }
            }
        });
        progress
    }

    /// After a batch committed `next` offsets; `assignment` is what the
    /// consumer holds now.
    pub fn committed(&self, next: &BTreeMap<Partition, i64>, assignment: &[Partition]) {
        self.tracker
            .lock()
            .committed(next.iter().map(|(p, o)| (p.clone(), *o)));
        self.publish(assignment);
    }

    fn publish(&self, assignment: &[Partition]) {
        let mut t = self.tracker.lock();
        if t.check_ready(assignment) {
            self.registration.ready.store(true, Ordering::Release);
        }
        publish(&self.consumer, &t);
    }
}

fn publish(consumer: &str, t: &Tracker) {
    for ((topic, partition), lag) in t.lag() {
        metrics::gauge!("novalog_consumer_lag", "consumer" => consumer.to_owned(),
            "topic" => topic.clone(), "partition" => partition.to_string())
        .set(lag as f64);
    }
    metrics::gauge!("novalog_consumer_ready", "consumer" => consumer.to_owned()).set(if t.ready {
        1.0
    } else {
        0.0
    });
}

async fn read_ends(log: &dyn EventLog, topics: &[String]) -> Option<BTreeMap<Partition, i64>> {
    let mut ends = BTreeMap::new();
    for topic in topics {
        match log.end_offsets(topic).await {
            Ok(per_partition) => {
                for (p, e) in per_partition.into_iter().enumerate() {
                    ends.insert((topic.clone(), p as i32), e);
                }
            }
            Err(e) => {
                tracing::debug!(%topic, error = %e, "end offsets not read");
                return None;
            }
        }
    }
    Some(ends)
}

#[cfg(test)]
mod tests {
    use novalog_schemas::InstanceEvent;

    use super::*;

    fn p(t: &str, n: i32) -> Partition {
        (t.to_owned(), n)
    }

    #[test]
    fn ready_once_every_partition_reaches_where_it_ended_at_start() {
        let mut t = Tracker::default();
        assert!(!t.check_ready(&[]), "ends not read yet");
        t.ends_read([(p("a", 0), 10), (p("a", 1), 0)].into());
        t.committed([(p("a", 0), 4)]);
        assert!(!t.check_ready(&[]));
        assert_eq!(
            t.lag().collect::<Vec<_>>(),
            vec![(&p("a", 0), 6), (&p("a", 1), 0)]
        );
        // Records appended after the start raise the end, not the target.
        t.ends_read([(p("a", 0), 20), (p("a", 1), 0)].into());
        t.committed([(p("a", 0), 10)]);
        assert!(t.check_ready(&[]));
        assert_eq!(t.lag().next(), Some((&p("a", 0), 10)));
    }

    #[test]
    fn a_member_of_a_shared_group_waits_only_for_its_partitions() {
        let mut t = Tracker::default();
        t.ends_read([(p("a", 0), 5), (p("a", 1), 5)].into());
        t.committed([(p("a", 1), 5)]);
        assert!(
            !t.check_ready(&[]),
            "assignment unknown: all partitions count"
        );
        assert!(t.check_ready(&[p("a", 1)]));
        assert!(t.check_ready(&[p("a", 0)]), "ready stays ready");
    }

    struct Gated(Arc<tokio::sync::Semaphore>);

    #[async_trait::async_trait]
    impl crate::Handler for Gated {
        async fn handle(
            &mut self,
            _input: &crate::Input,
            _out: &mut crate::Outbox,
            _tx: &mut novalog_store::Transaction,
        ) -> Result<(), crate::consumer::Rejected> {
            self.0.acquire().await.unwrap().forget();
            Ok(())
        }

        async fn recover(&mut self) -> crate::Result<()> {
            Ok(())
        }
    }

    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_consumer_is_not_ready_until_it_has_applied_what_the_log_held_at_its_start() {
        use novalog_log::embedded::{EmbeddedLog, EmbeddedOptions};
        use novalog_schemas::{Actor, Envelope, Event, Meta};
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn EventLog> = Arc::new(
            EmbeddedLog::open(
                dir.path(),
                EmbeddedOptions {
                    default_partitions: 1,
                    sync: false,
                },
            )
            .unwrap(),
        );
        let records = (0..3)
            .map(|_| {
                let env = Envelope {
                    meta: Meta::origin(
                        uuid::Uuid::new_v4(),
                        "req-1".into(),
                        Actor::service("t"),
                        "i".into(),
                    ),
                    event: Event::Instance(InstanceEvent::InstanceDeleteStarted),
                };
                novalog_log::Record::new("t", b"k".to_vec(), novalog_schemas::encode(&env))
            })
            .collect();
        log.append(records).await.unwrap();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let (stop, shutdown) = Shutdown::new();
        let spec = crate::consumer::ConsumerSpec {
            name: "gated".into(),
            group: "gated".into(),
            topics: vec!["t".into()],
            dead_letter_topic: "dl".into(),
            max_batch: 1,
        };
        let store = Arc::new(novalog_store::MemStore::new());
        let run = tokio::spawn(crate::consumer::run(
            log,
            store,
            spec,
            Gated(gate.clone()),
            shutdown,
        ));
        until("registered", || Health::global().behind() == vec!["gated"]).await;
        // Two of three applied: still behind.
        gate.add_permits(2);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(Health::global().behind(), vec!["gated"]);
        gate.add_permits(1);
        until("ready", || Health::global().behind().is_empty()).await;
        stop.trigger();
        run.await.unwrap().unwrap();
    }
}
