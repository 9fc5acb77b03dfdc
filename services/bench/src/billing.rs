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
/// `InstanceBecameActive` (the log's append time) to the answer of the
/// first `GET /billing/v1/projects/{project}` on the API's listener that
/// shows the server's usage running. One client polls back to back (the
/// next request as soon as the last answer is read) while any boot is
/// waiting, so a sample is the lag as a client of the API sees it: the
/// billing fold and commit, then up to one request's round trip. The
/// append times come from a subscriber of `instances`, which may see a
/// record after the bill already shows it: the lag is then counted to
/// the first answer that showed it, not to the watcher's own delay. Runs
/// until aborted.
pub async fn watch_lag(
    log: Arc<dyn novalog_log::EventLog>,
    topic: String,
    api: std::net::SocketAddr,
    project: String,
    token: String,
    lag: Lag,
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
    let wake = Arc::new(tokio::sync::Notify::new());
    // The month so far (the default period): every server booted.
    let url = format!("http://{api}/billing/v1/projects/{project}?format=csv");
    let poller = tokio::spawn(poll_bill(url, token, lag.clone(), wake.clone()));
    let mut poller = AbortOnDrop(poller);
    loop {
        if poller.0.is_finished() {
            // It failed: say why.
            return (&mut poller.0).await?;
        }
        for rec in sub.next_batch(1024).await? {
            let Ok((meta, type_name)) = novalog_schemas::decode_meta(&rec.value) else {
                continue;
            };
            if type_name == "InstanceBecameActive" {
                lag.appended(meta.aggregate_id, rec.timestamp_ms);
                wake.notify_one();
            }
        }
    }
}

/// Polls the bill at `url` back to back while `lag` has servers waiting,
/// and notes each server the first time the bill shows it running.
async fn poll_bill(
    url: String,
    token: String,
    lag: Lag,
    wake: Arc<tokio::sync::Notify>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    loop {
        if lag.state.lock().pending.is_empty() {
            wake.notified().await;
            continue;
        }
        let asked = Instant::now();
        let resp = http.get(&url).header("X-Auth-Token", &token).send().await?;
        anyhow::ensure!(resp.status().is_success(), "GET {url}: {}", resp.status());
        let body = resp.text().await?;
        let now = novalog_schemas::now_ms();
        lag.polls.lock().push(asked.elapsed().as_secs_f64() * 1e3);
        lag.seen_running(running_servers(&body), now);
    }
}

/// What [`watch_lag`] measured, shared with the bench.
#[derive(Clone, Default)]
pub struct Lag {
    /// Lags in ms, one per boot seen in the bill.
    pub samples: Arc<parking_lot::Mutex<Vec<f64>>>,
    state: Arc<parking_lot::Mutex<LagState>>,
    /// Each GET's round trip in ms (request to the whole answer read).
    pub polls: Arc<parking_lot::Mutex<Vec<f64>>>,
    /// The part of each lag before the API: from the append to the
    /// billing ledger (what the API reads) having committed the server
    /// running, in ms ([`watch_ledger`]).
    pub folded: Arc<parking_lot::Mutex<Vec<f64>>>,
}

/// Servers by their id's text (as the CSV shows it).
#[derive(Default)]
struct LagState {
    /// `InstanceBecameActive` on the log, not yet seen running in the
    /// bill: its append time.
    pending: std::collections::HashMap<String, i64>,
    /// Seen running in the bill before the watcher saw its
    /// `InstanceBecameActive`: the first answer's time.
    early: std::collections::HashMap<String, i64>,
    /// Measured.
    done: std::collections::HashSet<String>,
    /// Appended, not yet seen running in the ledger.
    unfolded: std::collections::HashMap<uuid::Uuid, i64>,
}

impl Lag {
    /// `server`'s `InstanceBecameActive` was appended at `at_ms`.
    fn appended(&self, server: String, at_ms: i64) {
        let mut s = self.state.lock();
        if let Ok(id) = server.parse() {
            s.unfolded.insert(id, at_ms);
        }
        if s.done.contains(&server) {
            return;
        }
        match s.early.remove(&server) {
            Some(seen) => {
                self.samples.lock().push((seen - at_ms) as f64);
                s.done.insert(server);
            }
            None => {
                s.pending.insert(server, at_ms);
            }
        }
    }

    /// An answer read at `now_ms` showed `running`.
    fn seen_running(&self, running: std::collections::HashSet<&str>, now_ms: i64) {
        let mut s = self.state.lock();
        for id in running {
            if let Some(at) = s.pending.remove(id) {
                self.samples.lock().push((now_ms - at) as f64);
                s.done.insert(id.to_owned());
            } else if !s.done.contains(id) {
                s.early.entry(id.to_owned()).or_insert(now_ms);
            }
        }
    }

    /// Waits (up to `limit`) until every boot seen on the log was seen in
    /// the bill, so the last boots of a run are measured too.
    pub async fn drain(&self, limit: std::time::Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        while !self.state.lock().pending.is_empty() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} boots never showed in /billing/v1",
                self.state.lock().pending.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        Ok(())
    }
}

/// Records in `lag.folded`, for each boot [`watch_lag`] saw appended, when
/// `ledger` committed it running (checked at each of its commits): the
/// lag's share before the API. Runs until aborted.
pub async fn watch_ledger(ledger: Arc<novalog_billing::service::Ledger>, lag: Lag) {
    let mut committed = ledger.watch_committed();
    while committed.changed().await.is_ok() {
        let now = novalog_schemas::now_ms();
        let mut s = lag.state.lock();
        s.unfolded.retain(|id, at| {
            if ledger.is_running(id) {
                lag.folded.lock().push((now - *at) as f64);
                false
            } else {
                true
            }
        });
    }
}

/// Aborts its task when dropped (the watcher is aborted by the bench).
struct AbortOnDrop(tokio::task::JoinHandle<anyhow::Result<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The server ids with a `running` line item in a `/billing/v1` CSV bill.
fn running_servers(csv: &str) -> std::collections::HashSet<&str> {
    csv.lines()
        .skip(1)
        .filter_map(|row| {
            // server_id is the 4th column, state the 13th, of 17 (no field
            // of a bench server is quoted).
            let mut fields = row.trim_end_matches('\r').split(',');
            let id = fields.nth(3)?;
            let state = fields.nth(8)?;
            (state == "running" && fields.count() == 4).then_some(id)
        })
        .collect()
}
