//! The process's memory: the allocator every Novalog binary uses, and the
//! gauges that show RocksDB's bounded share and the heap on `/metrics`.
//!
//! Every binary (and test) linked with this crate allocates with jemalloc,
//! which also stands in for `malloc` in RocksDB's C++ and librdkafka.
//! glibc's malloc gives each thread that contends for it an arena of its
//! own (up to 8 per core) and keeps what is freed there for reuse: under
//! the soak's load a service with tokio's, RocksDB's and librdkafka's
//! threads held far more than it had allocated, memory no live state
//! accounted for. jemalloc hands unused pages back to the system after a
//! few seconds (its background threads, started by [`tune_allocator`]),
//! so RSS follows what is allocated, and its statistics say how much that
//! is (`novalog_heap_allocated_bytes`).

use tikv_jemallocator::Jemalloc;

#[global_allocator]
static ALLOCATOR: Jemalloc = Jemalloc;

/// Starts jemalloc's background threads, which return freed pages to the
/// system on a timer instead of only when some thread next allocates (an
/// idle service would otherwise keep its peak). Every binary calls it when
/// it starts ([`crate::cli::CommonArgs::init`]); later calls do nothing.
pub fn tune_allocator() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
            tracing::warn!(error = %e, "jemalloc background threads not started");
        }
    });
}

/// The allocator's figures, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapUsage {
    /// Handed out to the program and not given back.
    pub allocated_bytes: u64,
    /// In pages the allocator holds in memory (allocated, its metadata,
    /// and freed pages not yet returned).
    pub resident_bytes: u64,
}

/// What the allocator has handed out and holds, as of now.
pub fn heap_usage() -> HeapUsage {
    // jemalloc's statistics are a snapshot refreshed by advancing its epoch.
    if tikv_jemalloc_ctl::epoch::advance().is_err() {
        return HeapUsage::default();
    }
    let read = |r: tikv_jemalloc_ctl::Result<usize>| r.map_or(0, |v| v as u64);
    HeapUsage {
        allocated_bytes: read(tikv_jemalloc_ctl::stats::allocated::read()),
        resident_bytes: read(tikv_jemalloc_ctl::stats::resident::read()),
    }
}

/// Sets the memory gauges (called when `/metrics` is rendered).
pub fn record_gauges() {
    let rocks = novalog_store::memory_usage();
    metrics::gauge!("novalog_rocksdb_memtables_bytes").set(rocks.memtables_bytes as f64);
    metrics::gauge!("novalog_rocksdb_block_cache_bytes").set(rocks.block_cache_bytes as f64);
    metrics::gauge!("novalog_rocksdb_memory_budget_bytes")
        .set((rocks.budget.memtables_bytes + rocks.budget.block_cache_bytes) as f64);
    let heap = heap_usage();
    metrics::gauge!("novalog_heap_allocated_bytes").set(heap.allocated_bytes as f64);
    metrics::gauge!("novalog_heap_resident_bytes").set(heap.resident_bytes as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heap_figures_follow_what_is_allocated() {
        tune_allocator();
        let before = heap_usage();
        let block = vec![1u8; 64 << 20];
        let during = heap_usage();
        assert!(
            during.allocated_bytes >= before.allocated_bytes + (64 << 20),
            "{before:?} → {during:?}"
        );
        assert!(during.resident_bytes >= during.allocated_bytes);
        drop(block);
        let after = heap_usage();
        assert!(after.allocated_bytes < during.allocated_bytes);
    }
}
