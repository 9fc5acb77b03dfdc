//! Reading the log, read-only, from either backend.

use std::path::Path;
use std::sync::Arc;

use novalog_log::embedded::EmbeddedReader;
use novalog_log::{Consumed, EventLog, Record};
use novalog_runtime::Topics;

use crate::{Error, Progress, Result};

/// One record as the log holds it, borrowed from the read buffer.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// Append time (ms since the epoch).
    pub timestamp_ms: i64,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

enum Backend {
    /// An embedded log on disk, opened as a RocksDB secondary: works while
    /// the services run, and never writes to the log.
    Embedded(EmbeddedReader),
    /// Any [`EventLog`]: Kafka, or the log a test's services run on.
    Log(Arc<dyn EventLog>),
}

/// The log of one Novalog cloud (one topic namespace). Cloning is cheap
/// (the reader is shared): a rebuild reads on a thread of its own.
#[derive(Clone)]
pub struct Source {
    backend: Arc<Backend>,
    topics: Topics,
}

/// Records read per request from a backend without a streaming scan.
const READ_CHUNK: usize = 5_000;

impl Source {
    /// The embedded log in `log_dir` (`<data_dir>/log`).
    pub fn embedded(log_dir: &Path, topics: Topics) -> Result<Self> {
        if !log_dir.is_dir() {
            return Err(Error::BadInput(format!(
                "no embedded log in {} (is --data-dir right?)",
                log_dir.display()
            )));
        }
        let reader = EmbeddedReader::open(log_dir).map_err(|e| {
            Error::BadInput(format!("cannot read the log in {}: {e}", log_dir.display()))
        })?;
        Ok(Source {
            backend: Arc::new(Backend::Embedded(reader)),
            topics,
        })
    }

    /// Any open log (Kafka; or the one a test runs its services on).
    pub fn log(log: Arc<dyn EventLog>, topics: Topics) -> Self {
        Source {
            backend: Arc::new(Backend::Log(log)),
            topics,
        }
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// `name` as a full topic name: `instances` or `novalog.instances`.
    /// A name that is not one of Novalog's topics is bad input.
    pub fn topic(&self, name: &str) -> Result<String> {
        let all = self.topics.all();
        if let Some(t) = all.iter().find(|t| **t == name) {
            return Ok((*t).to_owned());
        }
        let full = format!("{}{name}", self.topics.namespace);
        if all.contains(&full.as_str()) {
            return Ok(full);
        }
        Err(Error::BadInput(format!(
            "topic {name} does not exist (topics: {})",
            all.iter()
                .map(|t| t.strip_prefix(&self.topics.namespace).unwrap_or(t))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    /// Novalog's topics that exist in this log.
    pub async fn existing_topics(&self) -> Vec<String> {
        let mut out = Vec::new();
        for t in self.topics.all() {
            if self.end_offsets(t).await.is_ok() {
                out.push(t.to_owned());
            }
        }
        out
    }

    /// Catches up with what was appended since the last look (embedded).
    pub fn refresh(&self) -> Result<()> {
        if let Backend::Embedded(r) = &*self.backend {
            r.refresh()?;
        }
        Ok(())
    }

    /// The next offset to be written, per partition.
    pub async fn end_offsets(&self, topic: &str) -> Result<Vec<i64>> {
        Ok(match &*self.backend {
            Backend::Embedded(r) => r.end_offsets(topic)?,
            Backend::Log(l) => l.end_offsets(topic).await?,
        })
    }

    /// Calls `f` on every record of one partition in `[from, until)`.
    pub async fn scan(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        until: i64,
        mut f: impl FnMut(RawRecord<'_>),
    ) -> Result<()> {
        match &*self.backend {
            Backend::Embedded(r) => {
                r.for_each(topic, partition, from, until, |offset, ts, key, value| {
                    f(RawRecord {
                        topic,
                        partition,
                        offset,
                        timestamp_ms: ts,
                        key,
                        value,
                    })
                })?;
            }
            Backend::Log(l) => {
                let mut next = from;
                while next < until {
                    let want = (until - next).min(READ_CHUNK as i64) as usize;
                    let chunk = l.read(topic, partition, next, want).await?;
                    let Some(last) = chunk.last() else { break };
                    next = last.offset + 1;
                    for c in chunk.iter().filter(|c| c.offset < until) {
                        f(raw(c));
                    }
                }
            }
        }
        Ok(())
    }

    /// One record, if it exists.
    pub async fn read_one(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Option<Consumed>> {
        let mut found = None;
        self.scan(topic, partition, offset, offset + 1, |r| {
            found = Some(owned(r));
        })
        .await?;
        Ok(found)
    }

    /// Every record of `topics`, in log order: by append time, then topic,
    /// partition and offset (the order a reader of all of them would have
    /// seen, to the millisecond).
    pub async fn read_all(
        &self,
        topics: &[String],
        progress: &dyn Progress,
    ) -> Result<Vec<Consumed>> {
        let mut plan = Vec::new();
        let mut total = 0;
        for t in topics {
            for (p, end) in self.end_offsets(t).await?.into_iter().enumerate() {
                total += end.max(0) as u64;
                plan.push((t.clone(), p as i32, end));
            }
        }
        progress.set_total(total);
        let mut out = Vec::with_capacity(total as usize);
        for (t, p, end) in plan {
            self.scan(&t, p, 0, end, |r| out.push(owned(r))).await?;
            progress.advance(end as u64);
        }
        novalog_history::log_order(&mut out, topics);
        Ok(out)
    }

    /// Appends records (redrive). The embedded log is single-writer: while
    /// a service holds it, redrive must go through that process.
    pub async fn append(&self, records: Vec<Record>) -> Result<()> {
        match &*self.backend {
            Backend::Log(l) => {
                l.append(records).await?;
                Ok(())
            }
            Backend::Embedded(_) => Err(Error::BadInput(
                "this source is read-only; open the log for writing (see --write)".into(),
            )),
        }
    }
}

pub(crate) fn raw(c: &Consumed) -> RawRecord<'_> {
    RawRecord {
        topic: &c.topic,
        partition: c.partition,
        offset: c.offset,
        timestamp_ms: c.timestamp_ms,
        key: &c.key,
        value: &c.value,
    }
}

pub(crate) fn owned(r: RawRecord<'_>) -> Consumed {
    Consumed {
        topic: r.topic.to_owned(),
        partition: r.partition,
        offset: r.offset,
        key: r.key.to_vec(),
        value: r.value.to_vec(),
        timestamp_ms: r.timestamp_ms,
    }
}
