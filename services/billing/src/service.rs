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

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use novalog_log::EventLog;
use novalog_runtime::consumer::{self, ConsumerSpec, Rejected, Wrap};
use novalog_runtime::{Config, Handler, Input, Outbox, Shutdown};
use novalog_store::{RocksStore, Store, StoreExt, Transaction};
use uuid::Uuid;

use crate::meter::{Interval, ServerMeter, server_of};

pub const NAME: &str = "billing";
pub const METERS: &str = "meters";
pub const USAGE: &str = "usage";

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
    closed: HashMap<String, Vec<Interval>>,
    /// Open intervals by server.
    open: HashMap<Uuid, Interval>,
}

impl Ledger {
    /// A ledger holding `intervals` (for readers' tests).
    pub fn of(intervals: impl IntoIterator<Item = Interval>) -> Ledger {
        let ledger = Ledger::default();
        {
            let mut s = ledger.state.write().unwrap_or_else(|e| e.into_inner());
            for i in intervals {
                match i.end_ms {
                    Some(_) => s.closed.entry(i.project_id.clone()).or_default().push(i),
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
        let mut out: Vec<Interval> = s.closed.get(project).cloned().unwrap_or_default();
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
            Some(p) => s.closed.get(p).into_iter().flatten().collect(),
            None => s.closed.values().flatten().collect(),
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

    /// A receiver of the count of records committed so far.
    pub fn watch_committed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.committed.subscribe()
    }

    fn reload<S: Store>(&self, store: &S) -> novalog_store::Result<HashMap<Uuid, ServerMeter>> {
        let mut fresh = LedgerState::default();
        for (_, i) in store.scan::<Interval>(USAGE)? {
            fresh
                .closed
                .entry(i.project_id.clone())
                .or_default()
                .push(i);
        }
        let mut meters = HashMap::new();
        for (k, m) in store.scan::<ServerMeter>(METERS)? {
            let Ok(id) = Uuid::from_slice(&k) else {
                continue;
            };
            if let Some(open) = &m.open {
                fresh.open.insert(id, open.clone());
            }
            meters.insert(id, m);
        }
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(meters)
    }
}

/// What a batch changed in the ledger, published once it is committed.
#[derive(Debug)]
enum Staged {
    Closed(Interval),
    Open(Uuid, Option<Interval>),
}

struct MeterHandler<S: Store> {
    store: Arc<S>,
    meters: HashMap<Uuid, ServerMeter>,
    /// Servers whose meter the batch changed.
    dirty: BTreeSet<Uuid>,
    staged: Vec<Staged>,
    handled: u64,
    ledger: Arc<Ledger>,
}

#[async_trait]
impl<S: Store> Handler for MeterHandler<S> {
    async fn handle(
        &mut self,
        input: &Input,
        _out: &mut Outbox,
        tx: &mut Transaction,
    ) -> Result<(), Rejected> {
        self.handled += 1;
        let Some(id) = server_of(&input.env) else {
            return Ok(());
        };
        let meter = self.meters.entry(id).or_default();
        let m = meter.apply(&input.env);
        if m.applied {
            self.dirty.insert(id);
        }
        if let Some(c) = m.closed {
            tx.put(USAGE, &usage_key(&c), &c)
                .map_err(|e| Rejected(e.to_string()))?;
            self.staged.push(Staged::Closed(c));
        }
        if m.changed {
            self.staged.push(Staged::Open(id, meter.open.clone()));
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
        let staged = std::mem::take(&mut self.staged);
        {
            let mut s = self.ledger.state.write().unwrap_or_else(|e| e.into_inner());
            for st in staged {
                match st {
                    Staged::Closed(i) => s.closed.entry(i.project_id.clone()).or_default().push(i),
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
        self.staged.clear();
        self.meters = self.ledger.reload(&*self.store)?;
        Ok(())
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

    /// Folds `instances` until `shutdown`.
    pub async fn run(
        self,
        cfg: &Config,
        log: Arc<dyn EventLog>,
        shutdown: Shutdown,
        wrap: Wrap,
    ) -> novalog_runtime::Result<()> {
        let topics = cfg.topics();
        let meters = self.ledger.reload(&*self.store)?;
        let handler = wrap(Box::new(MeterHandler {
            store: self.store.clone(),
            meters,
            dirty: BTreeSet::new(),
            staged: Vec::new(),
            handled: 0,
            ledger: self.ledger.clone(),
        }));
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
