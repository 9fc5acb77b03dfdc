//! The projection store: where a service keeps the state it folds from the
//! log, together with the log offsets that state reflects.
//!
//! State and offsets commit in one [`Transaction`] (one RocksDB WriteBatch),
//! so after a crash a service resumes from exactly the offset its state
//! reflects (DESIGN §3, "exactly-once effect").
//!
//! # Layout
//! - [`Store`]: the trait services ask for.
//! - [`RocksStore`]: RocksDB on disk, one directory per service.
//! - [`MemStore`]: the same contract in memory, for pure tests.
//! - [`MemoryBudget`], [`memory_usage`]: RocksDB's memory, capped once per
//!   process for all its stores.
//!
//! Values are bincode-encoded serde types; keys are `table \0 key`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;

mod idle;
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("encode {table}: {message}")]
    Encode { table: String, message: String },
    #[error("decode {table}: {message}")]
    Decode { table: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Reserved table for consumer offsets.
const OFFSETS: &str = "_offsets";

fn full_key(table: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(table.len() + 1 + key.len());
    k.extend_from_slice(table.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

fn table_prefix(table: &str) -> Vec<u8> {
    full_key(table, &[])
}

fn offset_key(consumer: &str, topic: &str, partition: i32) -> Vec<u8> {
    full_key(
        OFFSETS,
        format!("{consumer}\0{topic}\0{partition}").as_bytes(),
    )
}

fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a projection value.
pub fn encode<T: Serialize>(table: &str, value: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, bincode_config()).map_err(|e| Error::Encode {
        table: table.to_owned(),
        message: e.to_string(),
    })
}

/// Decodes a projection value.
pub fn decode<T: DeserializeOwned>(table: &str, bytes: &[u8]) -> Result<T> {
    bincode::serde::decode_from_slice(bytes, bincode_config())
        .map(|(v, _)| v)
        .map_err(|e| Error::Decode {
            table: table.to_owned(),
            message: e.to_string(),
        })
}

/// Staged writes: projection rows and consumer offsets that commit together.
#[derive(Debug, Default)]
pub struct Transaction {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Transaction {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn put<T: Serialize>(&mut self, table: &str, key: &[u8], value: &T) -> Result<()> {
        let bytes = encode(table, value)?;
        self.ops.push((full_key(table, key), Some(bytes)));
        Ok(())
    }

    pub fn delete(&mut self, table: &str, key: &[u8]) {
        self.ops.push((full_key(table, key), None));
    }

    /// Drops every write that a later write in this transaction to the
    /// same key supersedes: the committed result is the same, with one
    /// write per key. For bulk folds (replay), where one batch touches a
    /// key many times.
    pub fn squash(&mut self) {
        let mut last: HashMap<&[u8], usize> = HashMap::with_capacity(self.ops.len());
        for (i, (k, _)) in self.ops.iter().enumerate() {
            last.insert(k, i);
        }
        if last.len() == self.ops.len() {
            return;
        }
        let keep: Vec<bool> = (0..self.ops.len())
            .map(|i| last.get(self.ops[i].0.as_slice()) == Some(&i))
            .collect();
        let mut i = 0;
        self.ops.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }

    /// Records that `consumer` has applied everything before `next_offset`.
    pub fn set_offset(&mut self, consumer: &str, topic: &str, partition: i32, next_offset: i64) {
        self.ops.push((
            offset_key(consumer, topic, partition),
            Some(next_offset.to_be_bytes().to_vec()),
        ));
    }
}

/// What a service needs from its projection store.
pub trait Store: Send + Sync + 'static {
    fn get_raw(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Every row of a table, in key order.
    fn scan_raw(&self, table: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Applies a transaction atomically.
    fn commit(&self, tx: Transaction) -> Result<()>;

    /// Walks a table's rows one at a time, in key order (`reverse`: from
    /// the last), starting at `from` (inclusive; the nearest key beyond it
    /// when absent), until `visit` returns false. Unlike [`Store::scan_raw`]
    /// it holds one row at a time, so a page of a large table costs what
    /// the page reads, not the table.
    fn walk_raw(
        &self,
        table: &str,
        from: Option<&[u8]>,
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let mut rows = self.scan_raw(table)?;
        if reverse {
            rows.reverse();
        }
        for (k, v) in rows {
            let before_start = from.is_some_and(|f| {
                if reverse {
                    k.as_slice() > f
                } else {
                    k.as_slice() < f
                }
            });
            if !before_start && !visit(&k, &v) {
                break;
            }
        }
        Ok(())
    }
}

/// Typed reads on top of any [`Store`].
pub trait StoreExt: Store {
    fn get<T: DeserializeOwned>(&self, table: &str, key: &[u8]) -> Result<Option<T>> {
        self.get_raw(table, key)?
            .map(|b| decode(table, &b))
            .transpose()
    }

    fn scan<T: DeserializeOwned>(&self, table: &str) -> Result<Vec<(Vec<u8>, T)>> {
        self.scan_raw(table)?
            .into_iter()
            .map(|(k, v)| decode(table, &v).map(|v| (k, v)))
            .collect()
    }

    /// The next offset `consumer` should read from (topic, partition).
    fn offset(&self, consumer: &str, topic: &str, partition: i32) -> Result<Option<i64>> {
        let key = format!("{consumer}\0{topic}\0{partition}");
        Ok(self.get_raw(OFFSETS, key.as_bytes())?.map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[..8]);
            i64::from_be_bytes(a)
        }))
    }

    /// Every stored offset of `consumer`, keyed by (topic, partition).
    fn offsets(&self, consumer: &str) -> Result<HashMap<(String, i32), i64>> {
        let prefix = format!("{consumer}\0");
        let mut out = HashMap::new();
        for (k, v) in self.scan_raw(OFFSETS)? {
            let Ok(k) = std::str::from_utf8(&k) else {
                continue;
            };
            let Some(rest) = k.strip_prefix(&prefix) else {
                continue;
            };
            let mut parts = rest.splitn(2, '\0');
            let (Some(topic), Some(partition)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(partition) = partition.parse::<i32>() else {
                continue;
            };
            if v.len() >= 8 {
                let mut a = [0u8; 8];
                a.copy_from_slice(&v[..8]);
                out.insert((topic.to_owned(), partition), i64::from_be_bytes(a));
            }
        }
        Ok(out)
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

/// What RocksDB may hold in memory, for every store a process opens
/// together: memtables (writes not yet flushed) and the block cache (reads,
/// and the SST files' index and filter blocks). RocksDB's defaults give
/// each store 64 MiB memtables (two of them while one flushes) and its
/// own cache, and keep every open SST file's index outside any cache, so
/// a busy service's RSS grew by up to ~130 MiB per store that no live
/// state accounted for. Both are capped once per process instead: a fixed
/// cost, the same for 10 servers or 10,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// All memtables of the process together; a flush starts when they
    /// pass it.
    pub memtables_bytes: usize,
    /// One memtable's size before it is switched out and flushed.
    pub memtable_bytes: usize,
    /// The block cache shared by the process's stores, index and filter
    /// blocks included.
    pub block_cache_bytes: usize,
}

impl Default for MemoryBudget {
    fn default() -> Self {
        MemoryBudget {
            memtables_bytes: 32 << 20,
            memtable_bytes: 8 << 20,
            block_cache_bytes: 8 << 20,
        }
    }
}

/// The process's RocksDB memory: one write buffer manager and one block
/// cache for every store it opens.
struct SharedMemory {
    budget: MemoryBudget,
    write_buffers: rocksdb::WriteBufferManager,
    cache: rocksdb::Cache,
}

static SHARED: std::sync::OnceLock<SharedMemory> = std::sync::OnceLock::new();

fn shared() -> &'static SharedMemory {
    SHARED.get_or_init(|| {
        let budget = MemoryBudget::default();
        SharedMemory {
            budget,
            // No stall: over budget, RocksDB flushes sooner instead of
            // blocking writers.
            write_buffers: rocksdb::WriteBufferManager::new_write_buffer_manager(
                budget.memtables_bytes,
                false,
            ),
            cache: rocksdb::Cache::new_lru_cache(budget.block_cache_bytes),
        }
    })
}

/// RocksDB's memory in this process as it stands, against its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUsage {
    pub budget: MemoryBudget,
    /// Bytes the memtables of every open store hold (arena allocated).
    pub memtables_bytes: usize,
    /// Bytes the shared block cache holds.
    pub block_cache_bytes: usize,
}

/// RocksDB's memory in this process (zero before any store was opened).
pub fn memory_usage() -> MemoryUsage {
    match SHARED.get() {
        Some(s) => MemoryUsage {
            budget: s.budget,
            memtables_bytes: s.write_buffers.get_usage(),
            block_cache_bytes: s.cache.get_usage(),
        },
        None => MemoryUsage {
            budget: MemoryBudget::default(),
            memtables_bytes: 0,
            block_cache_bytes: 0,
        },
    }
}

/// The options every store opens with: no compression, and memory within
/// the process's [`MemoryBudget`].
pub fn rocksdb_options() -> rocksdb::Options {
    let mem = shared();
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.set_compression_type(rocksdb::DBCompressionType::None);
    opts.set_write_buffer_size(mem.budget.memtable_bytes);
    opts.set_write_buffer_manager(&mem.write_buffers);
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_block_cache(&mem.cache);
    // Index and filter blocks count against the cache instead of growing
    // with every SST file; L0's stay pinned, as they are read most.
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    opts.set_block_based_table_factory(&table);
    opts
}

/// Projection store on RocksDB.
pub struct RocksStore {
    db: Arc<rocksdb::DB>,
    /// Commits so far: the idle flusher ([`idle`]) flushes the memtables of
    /// a store that stopped being written to.
    writes: Arc<std::sync::atomic::AtomicU64>,
    sync: bool,
    /// Commits skip the write-ahead log ([`RocksStore::create_for_rebuild`]).
    no_wal: bool,
}

impl RocksStore {
    /// Opens (creating if needed) the store in `path`. With `sync`, every
    /// commit fsyncs its WAL; without, a commit survives a process crash
    /// (the WAL is in the OS page cache) but not a power loss.
    pub fn open(path: impl AsRef<Path>, sync: bool) -> Result<Self> {
        let db = Arc::new(rocksdb::DB::open(&rocksdb_options(), path)?);
        let writes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        idle::watch(&db, writes.clone());
        Ok(Self {
            db,
            writes,
            sync,
            no_wal: false,
        })
    }

    /// A store for a rebuild from the log (`novalog-replay rebuild`):
    /// commits skip the write-ahead log and land in large memtables, and
    /// [`RocksStore::flush`] persists them at the end. A rebuild that dies
    /// half-way leaves a store to throw away and fold again, so nothing is
    /// lost that the log does not hold. Outside the process's
    /// [`MemoryBudget`]: a batch tool, not a service that runs for months.
    pub fn create_for_rebuild(path: impl AsRef<Path>) -> Result<Self> {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.set_compression_type(rocksdb::DBCompressionType::None);
        opts.set_write_buffer_size(256 << 20);
        opts.set_max_write_buffer_number(4);
        opts.set_disable_auto_compactions(true);
        // A fold asks for many keys that are not there yet (every new
        // server); a bloom filter on the memtable answers those without
        // walking its skip list.
        opts.set_memtable_prefix_bloom_ratio(0.1);
        opts.set_memtable_whole_key_filtering(true);
        let db = Arc::new(rocksdb::DB::open(&opts, path)?);
        Ok(Self {
            db,
            writes: Default::default(),
            sync: false,
            no_wal: true,
        })
    }

    /// Writes the memtables to disk (what a rebuild store ends with).
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

impl Store for RocksStore {
    fn get_raw(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(full_key(table, key))?)
    }

    fn scan_raw(&self, table: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let prefix = table_prefix(table);
        let mut out = Vec::new();
        let iter = self.db.iterator(rocksdb::IteratorMode::From(
            &prefix,
            rocksdb::Direction::Forward,
        ));
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            out.push((k[prefix.len()..].to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn commit(&self, tx: Transaction) -> Result<()> {
        if tx.ops.is_empty() {
            return Ok(());
        }
        let mut batch = rocksdb::WriteBatch::default();
        for (k, v) in tx.ops {
            match v {
                Some(v) => batch.put(k, v),
                None => batch.delete(k),
            }
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(self.sync);
        wo.disable_wal(self.no_wal);
        self.db.write_opt(batch, &wo)?;
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn walk_raw(
        &self,
        table: &str,
        from: Option<&[u8]>,
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let prefix = table_prefix(table);
        let start = match (from, reverse) {
            (Some(f), _) => full_key(table, f),
            (None, false) => prefix.clone(),
            // Just past the table: `table \0` + anything sorts below `table \1`.
            (None, true) => {
                let mut end = table.as_bytes().to_vec();
                end.push(1);
                end
            }
        };
        let direction = if reverse {
            rocksdb::Direction::Reverse
        } else {
            rocksdb::Direction::Forward
        };
        let iter = self
            .db
            .iterator(rocksdb::IteratorMode::From(&start, direction));
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            if !visit(&k[prefix.len()..], &v) {
                break;
            }
        }
        Ok(())
    }
}

/// The [`Store`] contract in memory.
#[derive(Default, Clone)]
pub struct MemStore {
    rows: Arc<RwLock<BTreeMap<Vec<u8>, Vec<u8>>>>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemStore {
    fn get_raw(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.rows.read().get(&full_key(table, key)).cloned())
    }

    fn scan_raw(&self, table: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let prefix = table_prefix(table);
        Ok(self
            .rows
            .read()
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k[prefix.len()..].to_vec(), v.clone()))
            .collect())
    }

    fn walk_raw(
        &self,
        table: &str,
        from: Option<&[u8]>,
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        use std::ops::Bound;
        let prefix = table_prefix(table);
        let mut end = table.as_bytes().to_vec();
        end.push(1);
        let rows = self.rows.read();
        let range: (Bound<Vec<u8>>, Bound<Vec<u8>>) = match (from, reverse) {
            (Some(f), false) => (Bound::Included(full_key(table, f)), Bound::Excluded(end)),
            (Some(f), true) => (
                Bound::Included(prefix.clone()),
                Bound::Included(full_key(table, f)),
            ),
            (None, _) => (Bound::Included(prefix.clone()), Bound::Excluded(end)),
        };
        let mut iter = rows.range(range);
        loop {
            let next = if reverse {
                iter.next_back()
            } else {
                iter.next()
            };
            let Some((k, v)) = next else { break };
            if !visit(&k[prefix.len()..], v) {
                break;
            }
        }
        Ok(())
    }

    fn commit(&self, tx: Transaction) -> Result<()> {
        let mut rows = self.rows.write();
        for (k, v) in tx.ops {
            match v {
                Some(v) => rows.insert(k, v),
                None => rows.remove(&k),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Row {
        name: String,
        n: u64,
    }

    fn exercise(store: &dyn Store) {
        let mut tx = Transaction::new();
        tx.put(
            "servers",
            b"a",
            &Row {
                name: "a".into(),
                n: 1,
            },
        )
        .unwrap();
        tx.put(
            "servers",
            b"b",
            &Row {
                name: "b".into(),
                n: 2,
            },
        )
        .unwrap();
        tx.put(
            "flavors",
            b"a",
            &Row {
                name: "f".into(),
                n: 3,
            },
        )
        .unwrap();
        tx.set_offset("conductor", "intents", 0, 42);
        store.commit(tx).unwrap();

        let a: Row = store.get("servers", b"a").unwrap().unwrap();
        assert_eq!(
            a,
            Row {
                name: "a".into(),
                n: 1
            }
        );
        let rows: Vec<(Vec<u8>, Row)> = store.scan("servers").unwrap();
        assert_eq!(rows.len(), 2, "scan stays inside its table");
        assert_eq!(store.offset("conductor", "intents", 0).unwrap(), Some(42));
        assert_eq!(store.offset("conductor", "intents", 1).unwrap(), None);
        assert_eq!(store.offset("api", "intents", 0).unwrap(), None);
        let all = store.offsets("conductor").unwrap();
        assert_eq!(all.get(&("intents".to_owned(), 0)), Some(&42));

        let mut tx = Transaction::new();
        tx.delete("servers", b"a");
        tx.set_offset("conductor", "intents", 0, 43);
        store.commit(tx).unwrap();
        assert!(store.get::<Row>("servers", b"a").unwrap().is_none());
        assert_eq!(store.offset("conductor", "intents", 0).unwrap(), Some(43));
    }

    fn walks(store: &dyn Store) {
        let mut tx = Transaction::new();
        for k in [b"a", b"b", b"c", b"d"] {
            tx.put("t", k, &k[0]).unwrap();
        }
        tx.put("s", b"z", &0u8).unwrap();
        tx.put("u", b"a", &0u8).unwrap();
        store.commit(tx).unwrap();
        let walk = |from: Option<&[u8]>, reverse: bool, take: usize| {
            let mut seen = Vec::new();
            store
                .walk_raw("t", from, reverse, &mut |k, _| {
                    seen.push(String::from_utf8(k.to_vec()).unwrap());
                    seen.len() < take
                })
                .unwrap();
            seen.join("")
        };
        assert_eq!(walk(None, false, 10), "abcd");
        assert_eq!(walk(None, true, 10), "dcba");
        assert_eq!(walk(Some(b"b"), false, 10), "bcd");
        assert_eq!(walk(Some(b"bb"), false, 10), "cd");
        assert_eq!(walk(Some(b"c"), true, 10), "cba");
        assert_eq!(walk(Some(b"bb"), true, 10), "ba");
        assert_eq!(walk(None, true, 2), "dc", "stops when told");
    }

    #[test]
    fn walks_stay_in_their_table_both_ways() {
        walks(&MemStore::new());
        let dir = tempfile::tempdir().unwrap();
        walks(&RocksStore::open(dir.path(), false).unwrap());
    }

    #[test]
    fn squash_keeps_the_last_write_of_each_key() {
        let store = MemStore::new();
        let mut tx = Transaction::new();
        tx.put("t", b"a", &1u32).unwrap();
        tx.put("t", b"b", &1u32).unwrap();
        tx.put("t", b"a", &2u32).unwrap();
        tx.delete("t", b"b");
        tx.put("t", b"c", &3u32).unwrap();
        tx.squash();
        assert_eq!(tx.ops.len(), 3);
        store.commit(tx).unwrap();
        assert_eq!(store.get::<u32>("t", b"a").unwrap(), Some(2));
        assert_eq!(store.get::<u32>("t", b"b").unwrap(), None);
        assert_eq!(store.get::<u32>("t", b"c").unwrap(), Some(3));
    }

    #[test]
    fn mem_store_keeps_rows_and_offsets() {
        exercise(&MemStore::new());
    }

    #[test]
    fn rocks_store_keeps_rows_and_offsets_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RocksStore::open(dir.path(), false).unwrap();
            exercise(&store);
        }
        let store = RocksStore::open(dir.path(), false).unwrap();
        let b: Row = store.get("servers", b"b").unwrap().unwrap();
        assert_eq!(b.n, 2);
        assert_eq!(store.offset("conductor", "intents", 0).unwrap(), Some(43));
    }

    #[test]
    fn a_store_holds_at_most_one_budgeted_memtable_of_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path(), false).unwrap();
        let budget = memory_usage().budget;
        // Four memtables' worth of distinct rows: with RocksDB's default
        // (64 MiB) they would all still sit in the active memtable.
        let row = vec![7u8; 4096];
        let rows = 4 * budget.memtable_bytes / row.len();
        for chunk in 0..rows / 256 {
            let mut tx = Transaction::new();
            for i in 0..256 {
                tx.put("t", format!("{chunk:08}-{i:04}").as_bytes(), &row)
                    .unwrap();
            }
            store.commit(tx).unwrap();
        }
        let active = store
            .db
            .property_int_value("rocksdb.cur-size-active-mem-table")
            .unwrap()
            .unwrap();
        // One write batch may overshoot the switch point.
        let slack = 256 * (row.len() + 64);
        assert!(
            active as usize <= budget.memtable_bytes + slack,
            "active memtable {active} bytes, budget {}",
            budget.memtable_bytes
        );
        assert!(
            memory_usage().memtables_bytes > 0,
            "counted in the shared budget"
        );
    }

    #[test]
    fn an_idle_store_s_memtables_are_flushed_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path(), false).unwrap();
        let mut watcher = idle::Watcher::default();
        watcher.watch(&store.db, store.writes.clone());
        let memtable = |s: &RocksStore| {
            s.db.property_int_value("rocksdb.num-entries-active-mem-table")
                .unwrap()
                .unwrap()
        };
        let mut tx = Transaction::new();
        tx.put("t", b"k", &1u32).unwrap();
        store.commit(tx).unwrap();
        // Written since the last look: not idle yet.
        assert_eq!(watcher.tick(), 0);
        assert_eq!(memtable(&store), 1);
        // Nothing written since: flushed, and the row still there.
        assert_eq!(watcher.tick(), 1);
        assert_eq!(memtable(&store), 0);
        assert_eq!(store.get::<u32>("t", b"k").unwrap(), Some(1));
        // Nothing new to flush.
        assert_eq!(watcher.tick(), 0);
        // A closed store is forgotten.
        drop(store);
        assert_eq!(watcher.tick(), 0);
        assert!(watcher.is_empty());
    }

    #[test]
    fn undecodable_row_is_an_error_not_a_panic() {
        let store = MemStore::new();
        let mut tx = Transaction::new();
        tx.ops
            .push((full_key("servers", b"x"), Some(vec![0xff, 0xff, 0xff])));
        store.commit(tx).unwrap();
        assert!(store.get::<Row>("servers", b"x").is_err());
    }
}
