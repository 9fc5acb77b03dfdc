//! The billing service's shell: folds `instances` into usage intervals on
//! the shared consumer loop, with its RocksDB projection and its offsets in
//! one batch, and keeps a [`Ledger`] that readers (the rating API) query.
//!
//! # Store
//! - `meters`: server id → [`ServerMeter`] (the folded instance and its
//!   open interval; a tombstone once deleted).
//! - `usage`: server id ‖ start ms (big-endian, sign flipped) → the closed
//!   [`Interval`]. A server's intervals are disjoint and never empty, so
//!   the key is unique, and derived from the log alone: a replay into a
//!   fresh store writes the same bytes.
//! - `period_ends`: partition (big-endian) → [`NextEnd`], the end of the
//!   partition's first period not yet closed (see [`crate::summary`]).
//! - `projects`: partition (big-endian) ‖ project id → `()`, the projects
//!   whose servers the partition carries.
//!
//! # Outputs
//! Each closed period's summaries (`UsageRated`, one per project with
//! usage in it) go to the `billing` topic through the consumer's outbox,
//! committed with the batch's offsets: a crash neither loses one nor
//! publishes a different one (a copy sent again has the same id and
//! bytes).

use std::collections::{BTreeSet, HashMap};

use crate::fasthash::FastMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use novalog_log::EventLog;
use novalog_runtime::consumer::{self, ConsumerSpec, Rejected, Wrap};
use novalog_runtime::{Config, Handler, Input, Outbox, Shutdown};
use novalog_store::{RocksStore, Store, StoreExt, Transaction};
use uuid::Uuid;

use crate::meter::{Interval, ServerMeter, server_of};
use crate::period::Period;
use crate::rate::{LineUsage, PriceTable, merge_lines, sum_lines};
use crate::summary::{Closing, NextEnd, PartitionPeriods, summary_envelope};
use crate::totals::Totals;

pub const NAME: &str = "billing";
pub const METERS: &str = "meters";
pub const USAGE: &str = "usage";
pub const PERIOD_ENDS: &str = "period_ends";
pub const PROJECTS: &str = "projects";

fn project_key(partition: i32, project: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + project.len());
    k.extend_from_slice(&partition.to_be_bytes());
    k.extend_from_slice(project.as_bytes());
    k
}

/// Every partition's periods as the store has them: the stored period ends
/// and projects, with the intervals read back from the ledger and meters.
fn load_periods<S: Store>(
    store: &S,
    ledger: &Ledger,
    meters: &FastMap<Uuid, ServerMeter>,
    closing: Closing,
) -> novalog_store::Result<FastMap<i32, PartitionPeriods>> {
    let mut periods: FastMap<i32, PartitionPeriods> = FastMap::default();
    let partition_of =
        |k: &[u8]| -> Option<i32> { Some(i32::from_be_bytes(k.get(..4)?.try_into().ok()?)) };
    for (k, end) in store.scan::<NextEnd>(PERIOD_ENDS)? {
        if let Some(p) = partition_of(&k) {
            periods.entry(p).or_default().next_end_ms = Some(end.0);
        }
    }
    let mut project_partitions: HashMap<String, Vec<i32>> = HashMap::new();
    for (k, ()) in store.scan::<()>(PROJECTS)? {
        let (Some(p), Ok(project)) = (partition_of(&k), std::str::from_utf8(&k[4..])) else {
            continue;
        };
        periods
            .entry(p)
            .or_default()
            .projects
            .insert(project.to_owned());
        project_partitions
            .entry(project.to_owned())
            .or_default()
            .push(p);
    }
    let state = ledger.state.read().unwrap_or_else(|e| e.into_inner());
    for (project, intervals) in &state.closed {
        for p in project_partitions.get(project).into_iter().flatten() {
            let pp = periods.entry(*p).or_default();
            let Some(start) = pp.next_end_ms.map(|e| e - closing.period_ms) else {
                continue;
            };
            pp.closed.extend(
                intervals
                    .iter()
                    .filter(|i| i.end_ms.is_some_and(|e| e > start))
                    .cloned(),
            );
        }
    }
    for (id, m) in meters {
        if let Some(open) = &m.open {
            for p in project_partitions
                .get(&open.project_id)
                .into_iter()
                .flatten()
            {
                periods.entry(*p).or_default().open.insert(*id);
            }
        }
    }
    // Closed intervals in the order they closed, as the live fold keeps
    // them (the bill does not depend on it, but equality in tests does).
    for pp in periods.values_mut() {
        pp.closed.sort_by_key(|i| (i.end_ms, i.server_id));
    }
    Ok(periods)
}

/// The `usage` key of a closed interval.
pub fn usage_key(i: &Interval) -> Vec<u8> {
    let mut k = Vec::with_capacity(24);
    k.extend_from_slice(i.server_id.as_bytes());
    // Flipping the sign bit keeps negative instants in order.
    k.extend_from_slice(&((i.start_ms as u64) ^ (1 << 63)).to_be_bytes());
    k
}

/// Every interval as of the last committed batch, by project: what the
/// rating API reads.
#[derive(Debug, Default)]
pub struct Ledger {
    state: RwLock<LedgerState>,
    /// Records committed so far by this process (for waiting in tests and
    /// the lag figure).
    committed: tokio::sync::watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct LedgerState {
    /// Closed intervals by project, in the order they closed (shared with
    /// the fold's periods, not copied).
    closed: HashMap<String, Vec<Arc<Interval>>>,
    /// Open intervals by server.
    open: FastMap<Uuid, Interval>,
    /// `closed` summed by project, month and line, as far as a read
    /// needed them.
    totals: std::sync::Mutex<Totals>,
}

impl LedgerState {
    fn close(&mut self, i: Arc<Interval>) {
        match self.closed.get_mut(&i.project_id) {
            Some(v) => v.push(i),
            None => {
                self.closed.insert(i.project_id.clone(), vec![i]);
            }
        }
    }
}

impl Ledger {
    /// A ledger holding `intervals` (for readers' tests).
    pub fn of(intervals: impl IntoIterator<Item = Interval>) -> Ledger {
        let ledger = Ledger::default();
        {
            let mut s = ledger.state.write().unwrap_or_else(|e| e.into_inner());
            for i in intervals {
                match i.end_ms {
                    Some(_) => s.close(Arc::new(i)),
                    None => {
                        s.open.insert(i.server_id, i);
                    }
                }
            }
        }
        ledger
    }

    /// Every interval of `project`, closed and open.
    pub fn intervals(&self, project: &str) -> Vec<Interval> {
        let s = self.state.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<Interval> = s
            .closed
            .get(project)
            .into_iter()
            .flatten()
            .map(|i| Interval::clone(i))
            .collect();
        out.extend(s.open.values().filter(|i| i.project_id == project).cloned());
        out
    }

    /// Projects with any usage, sorted.
    pub fn projects(&self) -> Vec<String> {
        let s = self.state.read().unwrap_or_else(|e| e.into_inner());
        let set: BTreeSet<&String> = s
            .closed
            .keys()
            .chain(s.open.values().map(|i| &i.project_id))
            .collect();
        set.into_iter().cloned().collect()
    }

    /// Every interval of every project.
    pub fn all(&self) -> Vec<Interval> {
        let s = self.state.read().unwrap_or_else(|e| e.into_inner());
        s.closed
            .values()
            .flatten()
            .map(|i| &**i)
            .chain(s.open.values())
            .cloned()
            .collect()
    }

    /// The whole history of every server (of `project`, or of every
    /// project) with any time in `[from_ms, to_ms)`: what the usage and
    /// rating reads need (a server's launch may lie before the window).
    pub fn servers_in(&self, project: Option<&str>, from_ms: i64, to_ms: i64) -> Vec<Interval> {
        let s = self.state.read().unwrap_or_else(|e| e.into_inner());
        let closed: Vec<&Interval> = match project {
            Some(p) => s
                .closed
                .get(p)
                .into_iter()
                .flatten()
                .map(|i| &**i)
                .collect(),
            None => s.closed.values().flatten().map(|i| &**i).collect(),
        };
        let open = s
            .open
            .values()
            .filter(|i| project.is_none_or(|p| i.project_id == p));
        let all: Vec<&Interval> = closed.into_iter().chain(open).collect();
        let touching: BTreeSet<Uuid> = all
            .iter()
            .filter(|i| i.start_ms < to_ms && i.end_ms.is_none_or(|e| e > from_ms))
            .map(|i| i.server_id)
            .collect();
        all.into_iter()
            .filter(|i| touching.contains(&i.server_id))
            .cloned()
            .collect()
    }

    /// `project`'s usage in `period` by bill line, sorted (open intervals
    /// running until `now_ms`): what its bill prices. Closed usage comes
    /// from the running [`Totals`] when the period allows, else from the
    /// intervals; the answer is the same.
    pub fn line_usage(&self, project: &str, period: Period, now_ms: i64) -> Vec<LineUsage> {
        let s = self.state.read().unwrap_or_else(|e| e.into_inner());
        let from_totals = {
            let mut totals = s.totals.lock().unwrap_or_else(|e| e.into_inner());
            totals.catch_up(
                project,
                s.closed.get(project).map_or(&[][..], Vec::as_slice),
            );
            totals.lines(project, period)
        };
        let closed = match from_totals {
            Some(lines) => lines,
            None => sum_lines(
                s.closed.get(project).into_iter().flatten().map(|i| &**i),
                period,
                now_ms,
            ),
        };
        let open = s.open.values().filter(|i| i.project_id == project);
        let open = sum_lines(open, period, now_ms);
        drop(s);
        merge_lines(closed, open)
    }

    /// Whether `server`'s open interval, as committed, is running (what
    /// the `billing_lag_ms_p99` figure waits for after a boot).
    pub fn is_running(&self, server: &Uuid) -> bool {
        let s = self.state.read().unwrap_or_else(|e| e.into_inner());
        s.open
            .get(server)
            .is_some_and(|i| i.state == crate::meter::BillableState::Running)
    }

    /// A receiver of the count of records committed so far.
    pub fn watch_committed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.committed.subscribe()
    }

    fn reload<S: Store>(&self, store: &S) -> novalog_store::Result<FastMap<Uuid, ServerMeter>> {
        let mut fresh = LedgerState::default();
        for (_, i) in store.scan::<Interval>(USAGE)? {
            fresh.close(Arc::new(i));
        }
        let mut meters = FastMap::default();
        for (k, m) in store.scan::<ServerMeter>(METERS)? {
            let Ok(id) = Uuid::from_slice(&k) else {
                continue;
            };
            if let Some(open) = &m.open {
                fresh.open.insert(id, open.clone());
            }
            // A deleted server's tombstone stays on disk only (read back
            // when a record about it comes: [`MeterHandler::meter`]).
            if !m.gone {
                meters.insert(id, m);
            }
        }
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(meters)
    }
}

/// What a batch changed in the ledger, published once it is committed.
#[derive(Debug)]
enum Staged {
    Closed(Arc<Interval>),
    Open(Uuid, Option<Interval>),
}

struct MeterHandler<S: Store> {
    store: Arc<S>,
    table: PriceTable,
    closing: Closing,
    billing_topic: String,
    /// By partition of `instances`.
    periods: FastMap<i32, PartitionPeriods>,
    /// The meters of servers not deleted, and of deleted ones a record of
    /// the batch being applied concerns: a deleted server's tombstone is
    /// read back from the store for it ([`MeterHandler::meter`]) and
    /// leaves memory once the batch is committed, so memory is bounded by
    /// the live servers, not by every server ever metered.
    meters: FastMap<Uuid, ServerMeter>,
    /// Servers whose meter the batch changed.
    dirty: crate::fasthash::FastSet<Uuid>,
    /// Deleted servers' meters the batch staged or read back: they leave
    /// memory when it is committed.
    evict: Vec<Uuid>,
    /// On a replay into a fresh store: the servers whose tombstones left
    /// memory, so a server in neither place has no meter on disk either
    /// and is not looked up there (`None`: always look).
    evicted: Option<crate::fasthash::FastSet<Uuid>>,
    staged: Vec<Staged>,
    handled: u64,
    ledger: Arc<Ledger>,
}

/// `instances` record types that change nothing a bill depends on: a
/// task starting (the vm_state decides), the start of a delete (its end
/// does), locks, metadata, tags, verdicts. The fold does not apply them to
/// a meter (so a stored meter's instance does not show their task state,
/// lock or tags), only lets their instants close periods; a replay skips
/// them by their header without decoding their payload. Console tokens
/// too.
pub const IGNORED: [&str; 8] = [
    "InstanceTaskStarted",
    "InstanceDeleteStarted",
    "InstanceLocked",
    "InstanceUnlocked",
    "InstanceMetadataSet",
    "InstanceTagsSet",
    "IntentRejected",
    "ConsoleTokenIssued",
];

/// Whether records of `type_name` are [`IGNORED`].
pub fn ignored(type_name: &str) -> bool {
    IGNORED.contains(&type_name)
}

impl<S: Store> MeterHandler<S> {
    /// What every record does, whatever its type: closes the periods of
    /// its partition that its instant `at` ends (`cause`: its event id).
    fn tick(
        &mut self,
        partition: i32,
        at: i64,
        cause: Uuid,
        out: &mut Outbox,
        tx: &mut Transaction,
    ) -> Result<(), Rejected> {
        self.handled += 1;
        let periods = self.periods.entry(partition).or_default();
        let before = periods.next_end_ms;
        if before.is_some_and(|end| at < end.saturating_add(self.closing.delay_ms)) {
            // Nothing closes (the common case): no work at all.
            return Ok(());
        }
        // Periods this record closes are rated from the records before it.
        for period in periods.advance(at, self.closing) {
            for b in periods.bills(period, &self.meters, &self.table) {
                let env = summary_envelope(&b, &self.table, cause);
                out.emit(&self.billing_topic, b.project_id.as_bytes(), &env);
            }
        }
        // Billed intervals are forgotten only when a period closes:
        // forgetting on every record scanned every closed interval each
        // time (quadratic on replay). An interval closed in between is kept
        // until the next close; it overlaps no period still to bill either
        // way, so the bills are the same.
        let advanced = periods.next_end_ms != before;
        if advanced {
            periods.forget_billed(self.closing);
        }
        if advanced && let Some(end) = periods.next_end_ms {
            tx.put(PERIOD_ENDS, &partition.to_be_bytes(), &NextEnd(end))
                .map_err(|e| Rejected(e.to_string()))?;
        }
        Ok(())
    }
}

#[async_trait]
impl<S: Store> Handler for MeterHandler<S> {
    async fn handle(
        &mut self,
        input: &Input,
        out: &mut Outbox,
        tx: &mut Transaction,
    ) -> Result<(), Rejected> {
        let failed = |e: novalog_store::Error| Rejected(e.to_string());
        let partition = input.partition;
        let meta = &input.env.meta;
        self.tick(partition, meta.occurred_at_ms, meta.event_id, out, tx)?;
        if ignored(input.env.event.type_name()) {
            return Ok(());
        }
        let periods = self.periods.entry(partition).or_default();
        let Some(id) = server_of(&input.env) else {
            return Ok(());
        };
        let meter = Self::meter(&mut self.meters, &*self.store, self.evicted.as_ref(), id)
            .map_err(failed)?;
        let m = meter.apply(&input.env);
        if m.applied {
            self.dirty.insert(id);
        }
        if let Some(c) = m.closed {
            tx.put(USAGE, &usage_key(&c), &c).map_err(failed)?;
            let c = Arc::new(c);
            periods.closed.push(c.clone());
            self.staged.push(Staged::Closed(c));
        }
        if m.changed {
            match &meter.open {
                Some(open) => {
                    periods.open.insert(id);
                    if !periods.projects.contains(&open.project_id) {
                        periods.projects.insert(open.project_id.clone());
                        tx.put(PROJECTS, &project_key(partition, &open.project_id), &())
                            .map_err(failed)?;
                    }
                }
                None => {
                    periods.open.remove(&id);
                }
            }
            self.staged.push(Staged::Open(id, meter.open.clone()));
        }
        if self.meters.get(&id).is_some_and(|m| m.gone) {
            self.evict.push(id);
        }
        Ok(())
    }

    async fn finish_batch(
        &mut self,
        _out: &mut Outbox,
        tx: &mut Transaction,
    ) -> novalog_runtime::Result<()> {
        for id in std::mem::take(&mut self.dirty) {
            if let Some(m) = self.meters.get(&id) {
                tx.put(METERS, id.as_bytes(), m)?;
            }
        }
        Ok(())
    }

    fn committed(&mut self) {
        for id in std::mem::take(&mut self.evict) {
            self.meters.remove(&id);
            if let Some(evicted) = &mut self.evicted {
                evicted.insert(id);
            }
        }
        let staged = std::mem::take(&mut self.staged);
        {
            let mut s = self.ledger.state.write().unwrap_or_else(|e| e.into_inner());
            for st in staged {
                match st {
                    Staged::Closed(i) => s.close(i),
                    Staged::Open(id, Some(i)) => {
                        s.open.insert(id, i);
                    }
                    Staged::Open(id, None) => {
                        s.open.remove(&id);
                    }
                }
            }
        }
        let n = self.handled;
        self.ledger.committed.send_modify(|c| *c = n);
    }

    async fn recover(&mut self) -> novalog_runtime::Result<()> {
        self.dirty.clear();
        self.evict.clear();
        self.staged.clear();
        self.evicted = None;
        self.meters = self.ledger.reload(&*self.store)?;
        self.periods = load_periods(&*self.store, &self.ledger, &self.meters, self.closing)?;
        Ok(())
    }
}

impl<S: Store> MeterHandler<S> {
    /// `id`'s meter: in memory, else its tombstone read back from the
    /// store (a deleted server: a copy of its history must not bring it
    /// back), else a new one. With `evicted` (a replay into a fresh
    /// store), only those servers are looked up on disk.
    /// (An associated function: the caller holds a partition's periods.)
    fn meter<'a>(
        meters: &'a mut FastMap<Uuid, ServerMeter>,
        store: &S,
        evicted: Option<&crate::fasthash::FastSet<Uuid>>,
        id: Uuid,
    ) -> novalog_store::Result<&'a mut ServerMeter> {
        Ok(match meters.entry(id) {
            std::collections::hash_map::Entry::Occupied(m) => m.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let stored = match evicted {
                    Some(e) if !e.contains(&id) => None,
                    _ => store.get::<ServerMeter>(METERS, id.as_bytes())?,
                };
                slot.insert(stored.unwrap_or_default())
            }
        })
    }
}

/// The billing projection, open and loaded; [`Billing::run`] folds the log
/// into it.
pub struct Billing<S: Store = RocksStore> {
    pub ledger: Arc<Ledger>,
    pub store: Arc<S>,
}

impl Billing<RocksStore> {
    /// Opens (or creates) the store under `<data_dir>/billing`.
    pub fn open(cfg: &Config) -> novalog_runtime::Result<Self> {
        let dir = cfg.data_dir.join(NAME);
        std::fs::create_dir_all(&dir)
            .map_err(|e| novalog_runtime::Error::io(format!("creating {}", dir.display()), e))?;
        let store = Arc::new(RocksStore::open(&dir, cfg.log.sync)?);
        Billing::on(store)
    }
}

impl<S: Store> Billing<S> {
    /// The projection in `store`, loaded.
    pub fn on(store: Arc<S>) -> novalog_runtime::Result<Self> {
        let ledger = Arc::new(Ledger::default());
        ledger.reload(&*store)?;
        Ok(Billing { ledger, store })
    }

    /// The handler the service folds with, configured by `cfg`.
    fn handler(&self, cfg: &Config) -> novalog_runtime::Result<MeterHandler<S>> {
        let topics = cfg.topics();
        let table = PriceTable::from_options(&cfg.billing)
            .map_err(|e| novalog_runtime::Error::Service(format!("[billing]: {e}")))?;
        let closing = Closing {
            period_ms: table.period_ms,
            delay_ms: i64::try_from(cfg.billing.close_delay_seconds)
                .ok()
                .and_then(|s| s.checked_mul(1000))
                .unwrap_or(i64::MAX),
        };
        let meters = self.ledger.reload(&*self.store)?;
        let periods = load_periods(&*self.store, &self.ledger, &meters, closing)?;
        Ok(MeterHandler {
            store: self.store.clone(),
            table,
            closing,
            billing_topic: topics.billing.clone(),
            periods,
            meters,
            dirty: Default::default(),
            evict: Vec::new(),
            evicted: None,
            staged: Vec::new(),
            handled: 0,
            ledger: self.ledger.clone(),
        })
    }

    /// Folds `instances` until `shutdown`.
    pub async fn run(
        self,
        cfg: &Config,
        log: Arc<dyn EventLog>,
        shutdown: Shutdown,
        wrap: Wrap,
    ) -> novalog_runtime::Result<()> {
        let topics = cfg.topics();
        let handler = wrap(Box::new(self.handler(cfg)?));
        let spec = ConsumerSpec {
            name: NAME.to_owned(),
            // Replicas split the projects between them (`instances` is
            // keyed by project): each bills its partitions' projects.
            group: topics.group(NAME),
            topics: vec![topics.instances.clone()],
            dead_letter_topic: topics.dead_letter.clone(),
            max_batch: cfg.log.max_batch,
        };
        consumer::run(log, self.store, spec, handler, shutdown).await
    }
}

/// The billing fold's handler over `store` (fresh, or one a replay left),
/// for a caller that feeds it records itself (`novalog-replay rebuild
/// billing`): the service's own, whose outputs the caller discards.
pub fn replay_handler<S: Store>(
    cfg: &Config,
    store: Arc<S>,
) -> novalog_runtime::Result<impl Handler + use<S>> {
    Billing::on(store)?.handler(cfg)
}

/// Runs the billing service until `shutdown` (the `novalog-billing` binary).
pub async fn run(
    cfg: &Config,
    log: Arc<dyn EventLog>,
    shutdown: Shutdown,
) -> novalog_runtime::Result<()> {
    crate::rate::PriceTable::from_options(&cfg.billing)
        .map_err(|e| novalog_runtime::Error::Service(format!("[billing]: {e}")))?;
    let billing = Billing::open(cfg)?;
    // The API's reads (`[billing] listen`; empty: none); they stop with
    // the service.
    let listen = &cfg.billing.listen;
    let reads = if listen.is_empty() {
        None
    } else {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            novalog_runtime::Error::io(format!("binding [billing] listen {listen}"), e)
        })?;
        tracing::info!(addr = %listen, "billing read listener (internal)");
        Some(tokio::spawn(crate::read::serve(
            listener,
            billing.ledger.clone(),
            shutdown.clone(),
        )))
    };
    let result = billing.run(cfg, log, shutdown, consumer::unwrapped()).await;
    if let Some(r) = reads {
        r.abort();
    }
    result
}

/// The billing fold with its side effects off (DESIGN §3 "Replay"): the
/// same handler as the service's, fed records by the caller, its summaries
/// returned instead of appended. For rebuilds, benchmarks and tests that
/// compare a live store and its summaries with a fold of the same log.
pub struct Replay<S: Store> {
    handler: MeterHandler<S>,
    store: Arc<S>,
    topic: String,
    /// `topic`'s kind, looked up once (not per record).
    kind: Option<novalog_schemas::Topic>,
}

impl<S: Store> Replay<S> {
    /// A fold of `cfg`'s `instances` into `store` (fresh, or one a replay
    /// left).
    pub fn new(cfg: &Config, store: Arc<S>) -> novalog_runtime::Result<Self> {
        let billing = Billing::on(store.clone())?;
        let mut handler = billing.handler(cfg)?;
        // A fresh store: every meter it will hold is one this fold wrote.
        let mut empty = true;
        store.walk_raw(METERS, None, false, &mut |_, _| {
            empty = false;
            false
        })?;
        if empty {
            handler.evicted = Some(Default::default());
        }
        let topic = cfg.topics().instances;
        Ok(Replay {
            handler,
            store,
            kind: novalog_schemas::Topic::of_name(&topic),
            topic,
        })
    }

    /// Folds `records` (of `instances`, in each partition's order) in one
    /// transaction with their offsets, and returns the summaries they
    /// publish. A record that does not decode or apply is skipped, as the
    /// service dead-letters it.
    pub async fn fold(
        &mut self,
        records: &[novalog_log::Consumed],
    ) -> novalog_runtime::Result<Vec<novalog_log::Record>> {
        self.fold_raw(
            records
                .iter()
                .map(|r| (r.partition, r.offset, r.value.as_slice())),
        )
        .await
    }

    /// [`Replay::fold`] of `(partition, offset, value)` triples, borrowed
    /// from wherever the caller reads them (no copy of a record).
    pub async fn fold_raw<'a>(
        &mut self,
        records: impl IntoIterator<Item = (i32, i64, &'a [u8])>,
    ) -> novalog_runtime::Result<Vec<novalog_log::Record>> {
        let mut out = Outbox::default();
        let mut tx = Transaction::new();
        let mut next: std::collections::BTreeMap<i32, i64> = Default::default();
        // One input, its envelope replaced record by record: no copy of
        // the topic's name per record.
        let mut input: Option<Input> = None;
        for (partition, offset, value) in records {
            let slot = next.entry(partition).or_insert(0);
            *slot = (*slot).max(offset + 1);
            // A record billing ignores only ticks the clock of its
            // partition: read off its header, its payload never decoded.
            // (A record whose header is intact but whose payload is not is
            // dead-lettered live, so ticks nothing there; no writer makes
            // one.)
            if let Some(h) = crate::header::peek_header(value)
                && ignored(h.type_name)
                && let Ok(cause) = Uuid::try_parse(h.event_id)
            {
                let _ = self
                    .handler
                    .tick(partition, h.occurred_at_ms, cause, &mut out, &mut tx);
                continue;
            }
            // As the consumer decodes (`consumer::decode_record`).
            let decoded = match self.kind {
                Some(t) => novalog_schemas::decode_on(t, value),
                None => novalog_schemas::decode(value),
            };
            let Ok(env) = decoded else {
                continue;
            };
            let input = match &mut input {
                Some(i) => {
                    i.partition = partition;
                    i.offset = offset;
                    i.env = env;
                    i
                }
                None => input.insert(Input {
                    topic: self.topic.clone(),
                    partition,
                    offset,
                    env,
                }),
            };
            let _ = self.handler.handle(input, &mut out, &mut tx).await;
        }
        self.handler.finish_batch(&mut out, &mut tx).await?;
        for (p, o) in next {
            tx.set_offset(NAME, &self.topic, p, o);
        }
        self.store.commit(tx)?;
        self.handler.committed();
        Ok(out.into_records())
    }

    /// Meters held in memory (the memory bound's tests count them).
    pub fn resident_meters(&self) -> usize {
        self.handler.meters.len()
    }

    /// The ledger the fold keeps.
    pub fn ledger(&self) -> Arc<Ledger> {
        self.handler.ledger.clone()
    }
}
