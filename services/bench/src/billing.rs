//! `billing_events_per_s`: the billing fold and its rating over the
//! replay log's `instances` topic, side effects off (the summaries it
//! would publish are counted, not appended).

use std::sync::Arc;
use std::time::Instant;

use novalog_billing::period::Period;
use novalog_billing::rate::{PriceTable, bill};
use novalog_billing::service::Replay;
use novalog_log::embedded::EmbeddedReader;
use novalog_store::RocksStore;

/// Records folded per transaction (as `novalog-replay rebuild`).
const BATCH: i64 = 50_000;

pub struct Figures {
    /// Records of `instances` folded.
    pub records: u64,
    pub seconds: f64,
    pub events_per_s: f64,
    /// Period summaries the fold would have published.
    pub summaries: usize,
    /// Projects rated over the whole log.
    pub projects: usize,
}

pub async fn run(cfg: &novalog_runtime::Config) -> anyhow::Result<Figures> {
    let reader = EmbeddedReader::open(cfg.data_dir.join("log"))?;
    let topic = cfg.topics().instances;
    let scratch = tempfile::tempdir()?;
    let store = Arc::new(RocksStore::create_for_rebuild(
        scratch.path().join("billing"),
    )?);
    let table = PriceTable::from_options(&cfg.billing).map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    let mut replay = Replay::new(cfg, store)?;
    let (mut records, mut summaries) = (0u64, 0usize);
    // One arena per batch: the records' bytes copied end to end, no
    // allocation per record.
    let mut arena: Vec<u8> = Vec::new();
    let mut spans: Vec<(i64, usize, usize)> = Vec::new();
    for (p, end) in reader.end_offsets(&topic)?.into_iter().enumerate() {
        let p = p as i32;
        let mut from = 0;
        while from < end {
            let until = (from + BATCH).min(end);
            arena.clear();
            spans.clear();
            reader.for_each(&topic, p, from, until, |offset, _, _, value| {
                spans.push((offset, arena.len(), value.len()));
                arena.extend_from_slice(value);
            })?;
            records += spans.len() as u64;
            let batch = spans
                .iter()
                .map(|&(offset, at, len)| (p, offset, &arena[at..at + len]));
            summaries += replay.fold_raw(batch).await?.len();
            from = until;
        }
    }
    // Rating: every project over the whole log.
    let ledger = replay.ledger();
    let all = ledger.all();
    let start = all.iter().map(|i| i.start_ms).min().unwrap_or(0);
    let end = all
        .iter()
        .map(|i| i.end_ms.unwrap_or(i.start_ms))
        .max()
        .unwrap_or(0);
    let period = Period::new(start, end.max(start))?;
    let projects = ledger.projects();
    for p in &projects {
        let b = bill(&table, p, &ledger.intervals(p), period, period.end_ms);
        std::hint::black_box(b);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Figures {
        records,
        seconds,
        events_per_s: records as f64 / seconds.max(1e-9),
        summaries,
        projects: projects.len(),
    })
}

/// Records, in `samples`, each boot's billing lag: from the append of its
/// `InstanceBecameActive` (the log's append time) to the billing ledger
/// showing the server running (the state the rating API reads). Runs
/// until aborted.
pub async fn watch_lag(
    log: Arc<dyn novalog_log::EventLog>,
    topic: String,
    ledger: Arc<novalog_billing::service::Ledger>,
    samples: Arc<parking_lot::Mutex<Vec<f64>>>,
) -> anyhow::Result<()> {
    let ends = log.end_offsets(&topic).await?;
    let lookup: novalog_log::OffsetLookup = Arc::new(move |_, p| ends.get(p as usize).copied());
    let mut sub = log
        .subscribe(
            &format!("bench-lag-{}", uuid::Uuid::new_v4()),
            &[topic],
            lookup,
        )
        .await?;
    let mut committed = ledger.watch_committed();
    let mut pending: std::collections::HashMap<uuid::Uuid, i64> = Default::default();
    loop {
        tokio::select! {
            batch = sub.next_batch(1024) => {
                for rec in batch? {
                    let Ok((meta, type_name)) = novalog_schemas::decode_meta(&rec.value) else {
                        continue;
                    };
                    if type_name == "InstanceBecameActive"
                        && let Ok(id) = meta.aggregate_id.parse()
                    {
                        pending.insert(id, rec.timestamp_ms);
                    }
                }
            }
            changed = committed.changed() => changed?,
        }
        if pending.is_empty() {
            continue;
        }
        let now = novalog_schemas::now_ms();
        pending.retain(|id, appended| {
            if ledger.is_running(id) {
                samples.lock().push((now - *appended) as f64);
                false
            } else {
                true
            }
        });
    }
}
