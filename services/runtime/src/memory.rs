//! The process's memory: the allocator every Novalog binary uses, and the
//! gauges that show RocksDB's bounded share and the heap on `/metrics`.
//!
//! Every binary (and test) linked with this crate allocates with jemalloc,
//! which also stands in for `malloc` in RocksDB's C++ and librdkafka.
//! glibc's malloc gives each thread that contends for it an arena of its
//! own (up to 8 per core) and keeps what is freed there for reuse: under
//! the soak's load a service with tokio's, RocksDB's and librdkafka's
//! threads held far more than it had allocated, memory no live state
//! accounted for. jemalloc hands unused pages back to the system on a
//! timer (see [`tune_allocator`] for how fast, and why), so RSS follows
//! what is allocated, and its statistics say how much that is
//! (`novalog_heap_*_bytes`).
//!
//! Two of jemalloc's options can only be set before its first allocation,
//! so they are compiled in (`JEMALLOC_SYS_WITH_MALLOC_CONF` in the
//! workspace's `.cargo/config.toml`; a `MALLOC_CONF` in the environment
//! overrides them at start):
//! - one arena per CPU (`narenas_ratio:1`) instead of four: each arena
//!   keeps partly used slabs of its own, which no state accounts for;
//! - threads cache freed objects of at most [`TCACHE_MAX_BYTES`], at most
//!   32 of a size (`tcache_nslots_small_max`), instead of up to 32 KiB and
//!   200: a service's ~25 threads (tokio's, RocksDB's, librdkafka's) kept
//!   3–4.5 MB of freed objects each process, and how much moved by
//!   megabytes with how each thread last ran. The small objects the folds
//!   allocate most are still cached.

use tikv_jemalloc_ctl::{Access, AsName};
use tikv_jemallocator::Jemalloc;

#[global_allocator]
static ALLOCATOR: Jemalloc = Jemalloc;

/// The largest freed object a thread keeps in its cache (`tcache_max`,
/// compiled in: see the module's doc).
pub const TCACHE_MAX_BYTES: usize = 1024;

/// How long a freed ("dirty") page stays in jemalloc before it is handed
/// back to the system. jemalloc's default is 10 s, spread over a curve:
/// a service that has just served a burst (a listing of every server, a
/// batch of replays) held most of that burst's pages for tens of seconds,
/// so its RSS measured memory it no longer used. One second still lets a
/// page freed and wanted again within the same burst be reused without a
/// page fault, and the purging runs on jemalloc's background threads, off
/// the request path.
pub const DIRTY_DECAY_MS: isize = 1_000;

/// How long a purged-lazily ("muzzy", `MADV_FREE`) page stays before it is
/// purged for good. On Linux the kernel takes back an `MADV_FREE` page only
/// under memory pressure, so until then it still counts in RSS: 0 skips
/// that stage, and a dirty page that decays is returned at once
/// (`MADV_DONTNEED`), which is what makes RSS fall when the heap does.
pub const MUZZY_DECAY_MS: isize = 0;

/// Starts jemalloc's background threads, which return freed pages to the
/// system on a timer instead of only when some thread next allocates (an
/// idle service would otherwise keep its peak), and sets how fast freed
/// pages go back ([`DIRTY_DECAY_MS`], [`MUZZY_DECAY_MS`]). Every binary
/// calls it when it starts ([`crate::cli::CommonArgs::init`]); later calls
/// do nothing. (The settings are made at run time, not through
/// `malloc_conf`, because exporting that symbol takes `unsafe` code.)
pub fn tune_allocator() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Err(e) = set_decay(DIRTY_DECAY_MS, MUZZY_DECAY_MS) {
            tracing::warn!(error = %e, "jemalloc decay times not set");
        }
        if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
            tracing::warn!(error = %e, "jemalloc background threads not started");
        }
    });
}

/// Sets the decay times for the arenas created from now on (threads get
/// theirs lazily) and for those that already exist (at least the one this
/// thread has used so far).
fn set_decay(dirty_ms: isize, muzzy_ms: isize) -> tikv_jemalloc_ctl::Result<()> {
    b"arenas.dirty_decay_ms\0".name().write(dirty_ms)?;
    b"arenas.muzzy_decay_ms\0".name().write(muzzy_ms)?;
    let narenas: u32 = b"arenas.narenas\0".name().read()?;
    for i in 0..narenas {
        // An arena slot not yet initialised answers an error; it will take
        // the defaults set above when it is.
        let _ = format!("arena.{i}.dirty_decay_ms\0").name().write(dirty_ms);
        let _ = format!("arena.{i}.muzzy_decay_ms\0").name().write(muzzy_ms);
    }
    Ok(())
}

/// The allocator's figures, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapUsage {
    /// Handed out to the program and not given back.
    pub allocated_bytes: u64,
    /// In pages the allocator holds in memory (allocated, its metadata,
    /// and freed pages not yet returned).
    pub resident_bytes: u64,
    /// In pages in use by allocations (allocated plus the unused parts of
    /// those pages: `active - allocated` is fragmentation).
    pub active_bytes: u64,
    /// The allocator's own bookkeeping.
    pub metadata_bytes: u64,
    /// Address space kept mapped for reuse but handed back to the system
    /// (not in RSS).
    pub retained_bytes: u64,
    /// Freed objects the threads' caches keep for their next allocations
    /// (counted in `allocated_bytes`: the arenas see them as in use).
    pub tcache_bytes: u64,
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
        active_bytes: read(tikv_jemalloc_ctl::stats::active::read()),
        metadata_bytes: read(tikv_jemalloc_ctl::stats::metadata::read()),
        retained_bytes: read(tikv_jemalloc_ctl::stats::retained::read()),
        // 4096 is MALLCTL_ARENAS_ALL: every arena's figure merged.
        tcache_bytes: read(b"stats.arenas.4096.tcache_bytes\0".name().read()),
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
    metrics::gauge!("novalog_heap_active_bytes").set(heap.active_bytes as f64);
    metrics::gauge!("novalog_heap_metadata_bytes").set(heap.metadata_bytes as f64);
    metrics::gauge!("novalog_heap_retained_bytes").set(heap.retained_bytes as f64);
    metrics::gauge!("novalog_heap_tcache_bytes").set(heap.tcache_bytes as f64);
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

    #[test]
    fn freed_objects_a_thread_keeps_are_counted() {
        tune_allocator();
        // A thread's cache keeps some of what it frees for its next
        // allocations of that size; jemalloc counts them as allocated.
        let small: Vec<Box<[u8; 64]>> = (0..1000).map(|_| Box::new([1u8; 64])).collect();
        drop(small);
        let heap = heap_usage();
        assert!(heap.tcache_bytes > 0, "{heap:?}");
        assert!(heap.tcache_bytes <= heap.allocated_bytes, "{heap:?}");
    }

    #[test]
    fn the_build_s_allocator_options_are_in_effect() {
        // Set in .cargo/config.toml; lost, threads would cache objects up
        // to 32 KiB again.
        if std::env::var_os("MALLOC_CONF").is_some() {
            return;
        }
        let tcache_max: usize = b"opt.tcache_max\0".name().read().unwrap();
        assert_eq!(tcache_max, TCACHE_MAX_BYTES);
        let tcache: bool = b"opt.tcache\0".name().read().unwrap();
        assert!(tcache, "thread caches stay on, only smaller");
    }

    #[test]
    fn freed_pages_go_back_within_the_set_decay() {
        tune_allocator();
        let read = |name: &str| -> isize { name.name().read().unwrap() };
        // New arenas and the one this thread already had both take them.
        assert_eq!(read("arenas.dirty_decay_ms\0"), DIRTY_DECAY_MS);
        assert_eq!(read("arenas.muzzy_decay_ms\0"), MUZZY_DECAY_MS);
        assert_eq!(read("arena.0.dirty_decay_ms\0"), DIRTY_DECAY_MS);
        assert_eq!(read("arena.0.muzzy_decay_ms\0"), MUZZY_DECAY_MS);
        let background: bool = tikv_jemalloc_ctl::background_thread::read().unwrap();
        assert!(background);
    }
}
