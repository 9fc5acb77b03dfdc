//! Flushing the memtables of stores that have gone quiet.
//!
//! A memtable keeps every write since the last flush in memory until it
//! reaches its size ([`crate::MemoryBudget::memtable_bytes`]). A service
//! whose load stopped kept a partly filled memtable per store for as long
//! as it stayed idle: megabytes that look like state when a process's
//! memory is measured, though the rows are already on disk (in the
//! write-ahead log). A store with writes since its last flush and none for
//! a whole [`IDLE`] period is flushed, once, so an idle service holds only
//! what its live state needs. A busy store is left alone: its memtables
//! fill to their size and are flushed as RocksDB always does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long a store must go without a write before its memtables are
/// flushed: long enough that a burst's pauses do not write tiny SST files
/// (each one more for compaction to merge), short enough that a service
/// left idle gives the memory back within seconds.
pub const IDLE: Duration = Duration::from_secs(10);

/// One store as the flusher sees it.
struct Watched {
    db: Weak<rocksdb::DB>,
    /// Commits so far (the store counts them).
    writes: Arc<AtomicU64>,
    /// `writes` at the previous look.
    seen: u64,
    /// `writes` when the memtables were last flushed.
    flushed_at: u64,
}

/// Whether a store is to be flushed now: written to since its last flush,
/// and not since the previous look ([`IDLE`] ago).
pub(crate) fn due(writes_now: u64, seen: u64, flushed_at: u64) -> bool {
    writes_now == seen && writes_now != flushed_at
}

/// The stores a flusher looks at every [`IDLE`].
#[derive(Default)]
pub(crate) struct Watcher {
    stores: Vec<Watched>,
}

impl Watcher {
    pub(crate) fn watch(&mut self, db: &Arc<rocksdb::DB>, writes: Arc<AtomicU64>) {
        let now = writes.load(Ordering::Relaxed);
        self.stores.push(Watched {
            db: Arc::downgrade(db),
            writes,
            seen: now,
            flushed_at: now,
        });
    }

    /// Whether no store is watched (all closed).
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.stores.is_empty()
    }

    /// One look: flushes the stores that are [`due`], forgets closed ones.
    /// Returns how many it flushed.
    pub(crate) fn tick(&mut self) -> usize {
        let mut flushed = 0;
        self.stores.retain_mut(|w| {
            let Some(db) = w.db.upgrade() else {
                return false;
            };
            let now = w.writes.load(Ordering::Relaxed);
            if due(now, w.seen, w.flushed_at) {
                match db.flush() {
                    Ok(()) => {
                        w.flushed_at = now;
                        flushed += 1;
                    }
                    Err(e) => tracing::warn!(error = %e, "flushing an idle store's memtables"),
                }
            }
            w.seen = now;
            true
        });
        flushed
    }
}

static WATCHER: Mutex<Option<Watcher>> = Mutex::new(None);

/// Has the process's flusher look after `db` (started with the first store
/// opened: one thread for every store of the process).
pub(crate) fn watch(db: &Arc<rocksdb::DB>, writes: Arc<AtomicU64>) {
    let mut guard = WATCHER.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let spawned = std::thread::Builder::new()
            .name("store-idle-flush".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(IDLE);
                    if let Some(w) = WATCHER.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                        w.tick();
                    }
                }
            });
        if let Err(e) = spawned {
            // Memtables then stay until they fill, as before.
            tracing::warn!(error = %e, "no idle-flush thread");
        }
    }
    guard.get_or_insert_with(Watcher::default).watch(db, writes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_store_written_since_its_flush_and_then_quiet_is_due() {
        // Quiet, and nothing since the last flush.
        assert!(!due(5, 5, 5));
        // Still being written to.
        assert!(!due(6, 5, 3));
        // Written since the flush, quiet since the last look.
        assert!(due(5, 5, 3));
    }
}
