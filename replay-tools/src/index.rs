//! The per-instance index `state-at` answers from: for every instance, the
//! (time, partition, offset) of each of its records on `instances`. Built
//! incrementally: each use first indexes what was appended since (it keeps
//! its own offsets), so one answer costs the instance's own records, not a
//! scan of the log.
//!
//! # Layout (one RocksDB)
//! - `i` + instance uuid (16) + occurred_at ms (i64 BE) + partition (u32 BE)
//!   + offset (u64 BE) → empty.
//! - `o` + topic + `\0` + partition (u32 BE) → next offset to index (i64 BE).
//! - `first` → occurred_at of the earliest record of the log (i64 BE).

use std::path::Path;

use uuid::Uuid;

use crate::{Progress, Result, Source};

pub struct Index {
    db: rocksdb::DB,
}

/// One record of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub occurred_at_ms: i64,
    pub partition: i32,
    pub offset: i64,
}

const FIRST: &[u8] = b"first";

fn offset_key(topic: &str, partition: i32) -> Vec<u8> {
    let mut k = b"o".to_vec();
    k.extend_from_slice(topic.as_bytes());
    k.push(0);
    k.extend_from_slice(&(partition as u32).to_be_bytes());
    k
}

fn entry_key(id: &Uuid, e: &Entry) -> [u8; 37] {
    let mut k = [0u8; 37];
    k[0] = b'i';
    k[1..17].copy_from_slice(id.as_bytes());
    k[17..25].copy_from_slice(&e.occurred_at_ms.to_be_bytes());
    k[25..29].copy_from_slice(&(e.partition as u32).to_be_bytes());
    k[29..37].copy_from_slice(&(e.offset as u64).to_be_bytes());
    k
}

fn i64_of(b: &[u8]) -> Option<i64> {
    <[u8; 8]>::try_from(b).ok().map(i64::from_be_bytes)
}

/// Records indexed per WriteBatch.
const BATCH: usize = 50_000;

impl Index {
    pub fn open(path: &Path) -> Result<Self> {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        Ok(Index {
            db: rocksdb::DB::open(&opts, path)?,
        })
    }

    /// Indexes the records of `instances` appended since the last call.
    /// Returns how many it read.
    pub async fn catch_up(&self, src: &Source, progress: &dyn Progress) -> Result<u64> {
        let topic = src.topics().instances.clone();
        let ends = src.end_offsets(&topic).await?;
        let mut plan = Vec::new();
        for (p, end) in ends.into_iter().enumerate() {
            let p = p as i32;
            let from = self
                .db
                .get(offset_key(&topic, p))?
                .and_then(|b| i64_of(&b))
                .unwrap_or(0);
            if from < end {
                plan.push((p, from, end));
            }
        }
        progress.set_total(plan.iter().map(|(_, f, e)| (e - f) as u64).sum());
        let mut first = self.db.get(FIRST)?.and_then(|b| i64_of(&b));
        // The first record of the log is the first of some partition; a
        // partition made later starts later.
        let topics = if first.is_none() {
            src.existing_topics().await
        } else {
            Vec::new()
        };
        for t in topics {
            for p in 0..src.end_offsets(&t).await?.len() as i32 {
                if let Some(r) = src.read_one(&t, p, 0).await? {
                    let at = novalog_schemas::decode(&r.value)
                        .map(|e| e.meta.occurred_at_ms)
                        .unwrap_or(r.timestamp_ms);
                    first = Some(first.map_or(at, |f| f.min(at)));
                }
            }
        }
        let mut read = 0u64;
        for (p, from, end) in plan {
            let mut chunk = from;
            while chunk < end {
                let until = end.min(chunk + BATCH as i64);
                let mut batch = rocksdb::WriteBatch::default();
                src.scan(&topic, p, chunk, until, |r| {
                    let Ok(env) = novalog_schemas::decode(r.value) else {
                        return;
                    };
                    let Ok(id) = Uuid::parse_str(&env.meta.aggregate_id) else {
                        return;
                    };
                    let e = Entry {
                        occurred_at_ms: env.meta.occurred_at_ms,
                        partition: p,
                        offset: r.offset,
                    };
                    first = Some(first.map_or(e.occurred_at_ms, |f| f.min(e.occurred_at_ms)));
                    batch.put(entry_key(&id, &e), b"");
                })
                .await?;
                batch.put(offset_key(&topic, p), until.to_be_bytes());
                if let Some(f) = first {
                    batch.put(FIRST, f.to_be_bytes());
                }
                self.db.write(batch)?;
                progress.advance((until - chunk) as u64);
                read += (until - chunk) as u64;
                chunk = until;
            }
        }
        Ok(read)
    }

    /// Every indexed record of instance `id`, by time.
    pub fn entries(&self, id: &Uuid) -> Result<Vec<Entry>> {
        let mut prefix = vec![b'i'];
        prefix.extend_from_slice(id.as_bytes());
        let mut out = Vec::new();
        for item in self.db.prefix_iterator(&prefix) {
            let (k, _) = item?;
            if !k.starts_with(&prefix) || k.len() != 37 {
                break;
            }
            out.push(Entry {
                occurred_at_ms: i64_of(&k[17..25]).unwrap_or_default(),
                partition: u32::from_be_bytes(k[25..29].try_into().expect("4 bytes")) as i32,
                offset: u64::from_be_bytes(k[29..37].try_into().expect("8 bytes")) as i64,
            });
        }
        Ok(out)
    }

    /// When the earliest record of the log occurred.
    pub fn first_ms(&self) -> Result<Option<i64>> {
        Ok(self.db.get(FIRST)?.and_then(|b| i64_of(&b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_sort_by_instance_then_time() {
        let a = Uuid::from_u128(1);
        let e = |t, o| Entry {
            occurred_at_ms: t,
            partition: 0,
            offset: o,
        };
        let mut keys = [
            entry_key(&a, &e(20, 1)),
            entry_key(&Uuid::from_u128(0), &e(99, 9)),
            entry_key(&a, &e(10, 7)),
        ];
        keys.sort();
        assert_eq!(keys[0][1..17], *Uuid::from_u128(0).as_bytes());
        assert_eq!(i64_of(&keys[1][17..25]), Some(10));
        assert_eq!(i64_of(&keys[2][17..25]), Some(20));
    }
}
