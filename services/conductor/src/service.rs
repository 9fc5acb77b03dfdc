//! The conductor's shell: its consumer, its store, its binary's entry.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use novalog_log::EventLog;
use novalog_runtime::consumer::{self, ConsumerSpec, DeadRecord, Rejected, Wrap};
use novalog_runtime::{Config, Handler, Input, Outbox, Shutdown, Topics};
use novalog_store::{RocksStore, Store, Transaction};
use parking_lot::Mutex;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::core::{Conductor, Dest, Settings};
use crate::timers::{Awaiting, timeout_record};

/// Consumer group and offset namespace.
pub const NAME: &str = "conductor";

/// The deadlines as of the last committed batch, shared with the timer
/// task, which is woken when one of them comes before the deadline it
/// sleeps until.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeadlineBoard {
    state: Arc<Mutex<BoardState>>,
    changed: Arc<Notify>,
}

#[derive(Debug)]
struct BoardState {
    awaiting: BTreeMap<Uuid, Awaiting>,
    /// The deadline the timer sleeps until (`i64::MAX`: none, so any
    /// deadline wakes it; `i64::MIN`: it is about to look again). Almost
    /// every batch adds or moves a deadline, nearly always to later than
    /// this one: waking the timer for those (to find nothing due) cost the
    /// conductor a task switch and a pass over every awaited step per
    /// batch, so only an earlier deadline wakes it.
    wake_at: i64,
}

impl Default for BoardState {
    fn default() -> Self {
        BoardState {
            awaiting: BTreeMap::new(),
            // Until the timer has looked, any deadline wakes it.
            wake_at: i64::MAX,
        }
    }
}

impl DeadlineBoard {
    fn new(awaiting: BTreeMap<Uuid, Awaiting>) -> Self {
        DeadlineBoard {
            state: Arc::new(Mutex::new(BoardState {
                awaiting,
                ..BoardState::default()
            })),
            changed: Arc::new(Notify::new()),
        }
    }
}

pub(crate) struct ConductorHandler<S: Store> {
    pub(crate) core: Conductor,
    topics: Topics,
    board: DeadlineBoard,
    /// Awaited steps changed in the batch being committed.
    board_changes: Vec<Uuid>,
    /// Where deleted instances are read back from when a record concerns
    /// one (they are not kept in memory).
    store: Arc<S>,
    /// Instances restored from the store in the batch being applied: they
    /// leave memory again at its end.
    restored: BTreeSet<Uuid>,
    /// Likewise for images.
    restored_images: BTreeSet<Uuid>,
    /// Sagas in flight, for their durations in Prometheus.
    sagas: crate::saga_metrics::SagaClock,
    /// Where each decision's `now` comes from.
    clock: Clock,
}

/// The time a record is decided at. Live, one reading of the wall clock
/// per batch, later than the batch before (so no two batches share a
/// time), stamped on everything the batch emits; a replay reads each
/// input's time back from what it caused (docs/audit-and-replay.md).
#[derive(Debug, Clone)]
enum Clock {
    Wall {
        /// The time of the batch being handled (`None`: none yet).
        batch: Option<i64>,
        /// The time of the last batch.
        last: i64,
    },
    /// The time each input was decided at live, handed over by the
    /// replay's reader before the input; an input that caused nothing
    /// takes the time of the one before it.
    Replay { decided_at: DecidedAt, last: i64 },
}

/// The time the live conductor decided the input a replay hands its
/// handler next, set by the replay's reader before each input (it looks
/// each one up once, by event id, to merge the inputs in that order;
/// looking it up again here cost a hash lookup in a table of every input
/// per record).
#[derive(Debug, Clone)]
pub struct DecidedAt(Arc<std::sync::atomic::AtomicI64>);

impl DecidedAt {
    /// What says "caused nothing live, so no time".
    const NONE: i64 = i64::MIN;

    pub fn new() -> Self {
        DecidedAt(Arc::new(std::sync::atomic::AtomicI64::new(Self::NONE)))
    }

    /// The next input was decided at `at` (`None`: it caused nothing).
    pub fn set(&self, at: Option<i64>) {
        self.0.store(
            at.unwrap_or(Self::NONE),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    fn get(&self) -> Option<i64> {
        let at = self.0.load(std::sync::atomic::Ordering::Relaxed);
        (at != Self::NONE).then_some(at)
    }
}

impl Default for DecidedAt {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    fn wall() -> Self {
        Clock::Wall {
            batch: None,
            last: i64::MIN,
        }
    }

    fn now(&mut self) -> i64 {
        match self {
            Clock::Wall { batch, last } => *batch.get_or_insert_with(|| {
                *last = novalog_schemas::now_ms().max(last.saturating_add(1));
                *last
            }),
            Clock::Replay { decided_at, last } => {
                if let Some(at) = decided_at.get() {
                    *last = at;
                }
                *last
            }
        }
    }

    /// The batch ended (committed or not): the next one reads the clock.
    fn end_batch(&mut self) {
        if let Clock::Wall { batch, .. } = self {
            *batch = None;
        }
    }
}

impl<S: Store> ConductorHandler<S> {
    pub(crate) fn new(
        core: Conductor,
        topics: Topics,
        board: DeadlineBoard,
        store: Arc<S>,
    ) -> Self {
        ConductorHandler {
            core,
            topics,
            board,
            board_changes: Vec::new(),
            store,
            restored: BTreeSet::new(),
            restored_images: BTreeSet::new(),
            sagas: Default::default(),
            clock: Clock::wall(),
        }
    }

    /// Brings back from the store the deleted instance a record concerns
    /// (its aggregate), and the deleted image it names, so the core decides
    /// on them as it always did.
    fn restore_subject(&mut self, input: &Input) -> Result<(), Rejected> {
        if let Some(id) = crate::images::image_concerned(&input.env.event)
            && !self.core.images.contains_key(&id)
        {
            let stored = self
                .core
                .images
                .fetch(&*self.store, &id)
                .map_err(|e| Rejected(format!("reading image {id}: {e}")))?;
            if let Some(i) = stored {
                self.core.restore_image(i);
                self.restored_images.insert(id);
            }
        }
        let Ok(id) = Uuid::parse_str(&input.env.meta.aggregate_id) else {
            return Ok(());
        };
        if self.core.instances.contains_key(&id) {
            return Ok(());
        }
        let stored = self
            .core
            .instances
            .fetch(&*self.store, &id)
            .map_err(|e| Rejected(format!("reading instance {id}: {e}")))?;
        if let Some(i) = stored {
            self.core.restore(i);
            self.restored.insert(id);
        }
        Ok(())
    }

    fn topic(&self, dest: Dest) -> &str {
        match dest {
            Dest::Instances => &self.topics.instances,
            Dest::Scheduler => &self.topics.scheduler,
            Dest::Compute => &self.topics.compute,
            Dest::Catalog => &self.topics.catalog,
            Dest::Intents => &self.topics.intents,
            Dest::Hosts => &self.topics.hosts,
        }
    }
}

#[async_trait]
impl<S: Store> Handler for ConductorHandler<S> {
    async fn handle(
        &mut self,
        input: &Input,
        out: &mut Outbox,
        _tx: &mut Transaction,
    ) -> Result<(), Rejected> {
        self.restore_subject(input)?;
        let now = self.clock.now();
        self.core.at(input.partition, input.offset);
        for mut e in self.core.handle(&input.env, now) {
            // What the record caused says when it was decided.
            e.env.meta.occurred_at_ms = now;
            if let Dest::Instances = e.dest {
                for ended in self.sagas.observe(&e.env) {
                    crate::saga_metrics::record(&ended);
                }
            }
            out.emit(self.topic(e.dest), e.key.into_bytes(), &e.env);
        }
        Ok(())
    }

    async fn finish_batch(
        &mut self,
        _out: &mut Outbox,
        tx: &mut Transaction,
    ) -> novalog_runtime::Result<()> {
        self.clock.end_batch();
        let persisted = self.core.persist(tx)?;
        // Their rows are staged: deleted ones leave memory (a failed commit
        // stops the consumer, and a restart loads from the store).
        let touched = std::mem::take(&mut self.restored);
        self.core
            .evict_deleted(persisted.instances.into_iter().chain(touched));
        let touched = std::mem::take(&mut self.restored_images);
        self.core
            .evict_deleted_images(persisted.images.into_iter().chain(touched));
        self.board_changes.extend(persisted.awaiting);
        Ok(())
    }

    async fn recover(&mut self) -> novalog_runtime::Result<()> {
        // The board holds the committed deadlines; so will `core`.
        self.core = Conductor::load(&*self.store, self.core.settings.clone())?;
        self.clock.end_batch();
        self.board_changes.clear();
        self.restored.clear();
        self.restored_images.clear();
        Ok(())
    }

    /// An intent the conductor cannot decode or apply still gets its
    /// verdict, so the request waiting for it answers at once.
    fn dead_lettered(&mut self, dead: &DeadRecord<'_>, out: &mut Outbox) {
        if dead.topic != self.topics.intents {
            return;
        }
        let Some((meta, type_name)) = &dead.meta else {
            return;
        };
        if let Some(e) = crate::failed_intents::verdict(meta, type_name, dead.failure) {
            out.emit(self.topic(e.dest), e.key.into_bytes(), &e.env);
        }
    }

    fn committed(&mut self) {
        if self.board_changes.is_empty() {
            return;
        }
        let mut board = self.board.state.lock();
        let mut earlier = false;
        for id in self.board_changes.drain(..) {
            match self.core.awaiting.get(&id) {
                Some(a) => {
                    earlier |= a.deadline_ms.is_some_and(|at| at < board.wake_at);
                    board.awaiting.insert(id, a.clone())
                }
                // A step no longer awaited: the timer, when it wakes,
                // finds it gone.
                None => board.awaiting.remove(&id),
            };
        }
        drop(board);
        if earlier {
            self.board.changed.notify_one();
        }
    }
}

/// Appends a timeout record for every deadline that passed, once per
/// deadline (the record's id is deterministic, so one appended again after
/// a restart is a duplicate the conductor ignores). Sleeps until the
/// earliest deadline not yet fired, or until an earlier one is committed;
/// after a failed append it retries every `retry`.
async fn timers(
    log: Arc<dyn EventLog>,
    topics: Topics,
    board: DeadlineBoard,
    retry: Duration,
    mut shutdown: Shutdown,
) {
    let mut fired = Fired::new();
    loop {
        let now = novalog_schemas::now_ms();
        let (due, next) = {
            let mut state = board.state.lock();
            let (due, next) = due_timeouts(&state.awaiting, &mut fired, now);
            // Due records (appended next, or retried) make it look again
            // at once; otherwise it sleeps until `next`.
            state.wake_at = match (due.is_empty(), next) {
                (true, Some(at)) => at,
                (true, None) => i64::MAX,
                (false, _) => i64::MIN,
            };
            (due, next)
        };
        if !due.is_empty() {
            let records: Vec<novalog_log::Record> = due
                .iter()
                .map(|d| {
                    novalog_log::Record::new(
                        &topics.intents,
                        d.emit.key.clone().into_bytes(),
                        novalog_schemas::encode(&d.emit.env),
                    )
                })
                .collect();
            match log.append(records).await {
                Ok(_) => {
                    for d in due {
                        tracing::info!(instance = %d.emit.env.meta.aggregate_id,
                            step = ?d.emit.env.event, "saga step timed out");
                        fired.insert(d.instance, d.deadline);
                    }
                    continue;
                }
                Err(e) => tracing::warn!(error = %e, "timeout append failed"),
            }
        }
        let sleep = if due.is_empty() {
            next.map(|at| Duration::from_millis(at.saturating_sub(now).max(0) as u64))
        } else {
            Some(retry)
        };
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = board.changed.notified() => {}
            _ = async {
                match sleep {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
}

/// The deadline the timer appended a timeout record for, per instance:
/// its step and when (what the record's id derives from).
type Fired = BTreeMap<Uuid, (crate::saga::Step, i64)>;

/// A timeout record due, and the deadline it is for.
struct Due {
    instance: Uuid,
    deadline: (crate::saga::Step, i64),
    emit: crate::core::Emit,
}

/// The timeout records due at `now` and not in `fired`, and the earliest
/// deadline still to come. `fired` forgets deadlines no longer awaited.
/// Only the due records are built: a record costs allocations and a hash,
/// and the timer looks whenever an earlier deadline is committed.
fn due_timeouts(
    awaiting: &BTreeMap<Uuid, Awaiting>,
    fired: &mut Fired,
    now: i64,
) -> (Vec<Due>, Option<i64>) {
    let deadline = |a: &Awaiting| Some((a.step, a.deadline_ms?));
    fired.retain(|id, f| awaiting.get(id).and_then(deadline) == Some(*f));
    let mut due = Vec::new();
    let mut next = None;
    for (id, a) in awaiting {
        let Some((step, at)) = deadline(a) else {
            continue;
        };
        if fired.get(id) == Some(&(step, at)) {
            continue;
        }
        if at <= now {
            due.push(Due {
                instance: *id,
                deadline: (step, at),
                emit: timeout_record(*id, a, at),
            });
        } else {
            next = Some(next.map_or(at, |n: i64| n.min(at)));
        }
    }
    (due, next)
}

/// The conductor's handler for a replay into `store` (fresh): decides
/// each input at the time it was decided live, which the caller sets in
/// `decided_at` before handing it the input (see [`Clock`]); what it emits
/// is the caller's to drop. Its deadlines go to no timer: timeouts that
/// fired live are records on `intents`.
pub fn replay_handler(
    cfg: &Config,
    store: Arc<RocksStore>,
    decided_at: DecidedAt,
) -> novalog_runtime::Result<impl Handler> {
    let core = load(&*store, settings(cfg))?;
    let mut h = ConductorHandler::new(core, cfg.topics(), DeadlineBoard::default(), store);
    h.clock = Clock::Replay {
        decided_at,
        last: 0,
    };
    Ok(h)
}

/// Loads the conductor's state from its store: instances not deleted
/// (deleted ones are read back when a record concerns them).
pub fn load(store: &impl Store, settings: Settings) -> novalog_store::Result<Conductor> {
    Conductor::load(store, settings)
}

/// Runs the conductor until `shutdown`.
pub async fn run(
    cfg: &Config,
    log: Arc<dyn EventLog>,
    shutdown: Shutdown,
) -> novalog_runtime::Result<()> {
    run_wrapped(cfg, log, shutdown, consumer::unwrapped()).await
}

/// Runs the conductor with its handler passed through `wrap` (tests wrap
/// it to inject failures).
pub async fn run_wrapped(
    cfg: &Config,
    log: Arc<dyn EventLog>,
    shutdown: Shutdown,
    wrap: Wrap,
) -> novalog_runtime::Result<()> {
    let dir = cfg.data_dir.join("conductor");
    std::fs::create_dir_all(&dir)
        .map_err(|e| novalog_runtime::Error::io(format!("creating {}", dir.display()), e))?;
    let store = Arc::new(RocksStore::open(&dir, cfg.log.sync)?);
    let core = load(&*store, settings(cfg))?;
    tracing::info!(instances = core.instances.len(), "conductor state loaded");
    let topics = cfg.topics();
    let spec = ConsumerSpec {
        name: NAME.to_owned(),
        group: topics.group(NAME),
        topics: vec![
            topics.intents.clone(),
            topics.scheduler.clone(),
            topics.compute_events.clone(),
        ],
        dead_letter_topic: topics.dead_letter.clone(),
        max_batch: cfg.log.max_batch,
    };
    let board = DeadlineBoard::new(
        core.awaiting
            .iter()
            .map(|(id, a)| (*id, a.clone()))
            .collect(),
    );
    let timer = tokio::spawn(timers(
        log.clone(),
        topics.clone(),
        board.clone(),
        Duration::from_millis(cfg.conductor.timer_tick_ms.max(10)),
        shutdown.clone(),
    ));
    let handler = wrap(Box::new(ConductorHandler::new(
        core,
        topics,
        board,
        store.clone(),
    )));
    let result = consumer::run(log, store, spec, handler, shutdown).await;
    timer.abort();
    result
}

/// The conductor's settings from the configuration.
pub fn settings(cfg: &Config) -> Settings {
    let s = |secs: u64| (secs as i64).saturating_mul(1000);
    Settings {
        max_attempts: cfg.scheduler.max_attempts,
        build_timeout_ms: s(cfg.instance_build_timeout),
        step_timeout_ms: s(cfg.conductor.step_timeout),
        step_timeouts_ms: cfg
            .conductor
            .step_timeouts
            .iter()
            .map(|(k, v)| (k.clone(), s(*v)))
            .collect(),
        resize_confirm_window_ms: s(cfg.resize_confirm_window),
        allow_resize_to_same_host: cfg.allow_resize_to_same_host,
        quota: cfg.quota.clone(),
        upload_lease_ms: s(cfg.conductor.image_upload_lease),
        shelved_offload_time_s: cfg.shelved_offload_time,
        console_token_ttl_ms: s(cfg.consoleauth.token_ttl),
        reclaim_instance_interval_s: cfg.reclaim_instance_interval,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use novalog_schemas::events::ServerCreateRequested;
    use novalog_schemas::{
        Actor, CatalogEvent, ComputeFact, Envelope, Event, Image, InstanceEvent, Intent, Meta,
        RejectionKind, SchedulerEvent,
    };
    use novalog_store::MemStore;

    use super::*;
    use novalog_schemas::instance::Instance;
    use novalog_store::StoreExt;

    use crate::core::tables::{IMAGES, INSTANCES};
    use crate::tests::{actor, flavor, given, image};

    fn on(aggregate: Uuid, actor: Actor, event: Event) -> Input {
        Input {
            topic: "t.intents".into(),
            partition: 0,
            offset: 0,
            env: Envelope {
                meta: Meta::origin(
                    Uuid::new_v4(),
                    "req-test".into(),
                    actor,
                    aggregate.to_string(),
                ),
                event,
            },
        }
    }

    fn create_intent(id: Uuid) -> Input {
        on(
            id,
            actor("demo"),
            Event::Intent(Intent::ServerCreateRequested(Box::new(
                ServerCreateRequested {
                    instance_id: id,
                    name: "vm".into(),
                    flavor: flavor(),
                    image: image(),
                    metadata: BTreeMap::new(),
                    availability_zone: None,
                    key_name: None,
                    user_data: None,
                    description: None,
                    tags: vec![],
                    reservation_id: "r-1".into(),
                    launch_index: 0,
                    scheduler_hints: BTreeMap::new(),
                    min_count: 1,
                    max_count: 1,
                    access: Default::default(),
                    hostname: String::new(),
                    trusted_image_certificates: None,
                    requested_host: None,
                },
            ))),
        )
    }

    fn delete_intent(id: Uuid) -> Input {
        on(
            id,
            actor("demo"),
            Event::Intent(Intent::ServerDeleteRequested {
                instance_id: id,
                force: false,
            }),
        )
    }

    /// One batch through the shell as the consumer runs it; what it emitted.
    async fn batch(
        h: &mut ConductorHandler<MemStore>,
        store: &MemStore,
        inputs: Vec<Input>,
    ) -> Vec<Event> {
        let mut out = Outbox::default();
        let mut tx = Transaction::new();
        for input in &inputs {
            h.handle(input, &mut out, &mut tx).await.unwrap();
        }
        h.finish_batch(&mut out, &mut tx).await.unwrap();
        store.commit(tx).unwrap();
        h.committed();
        out.into_records()
            .iter()
            .map(|r| novalog_schemas::decode(&r.value).unwrap().event)
            .collect()
    }

    /// Builds `id` on h1 and returns once it is ACTIVE.
    async fn boot(h: &mut ConductorHandler<MemStore>, store: &MemStore, id: Uuid) {
        batch(h, store, vec![create_intent(id)]).await;
        let scheduler = Actor::service("scheduler");
        let compute = Actor::service("compute");
        let facts = vec![
            on(
                id,
                scheduler,
                Event::Scheduler(SchedulerEvent::HostsSelected {
                    request_id: Uuid::new_v5(&id, b"select-hosts"),
                    instance_id: id,
                    hosts: vec!["h1".into()],
                }),
            ),
            on(
                id,
                compute,
                Event::ComputeFact(ComputeFact::InstanceSpawned {
                    instance_id: id,
                    host: "h1".into(),
                    attempt: 1,
                    power_state: novalog_schemas::PowerState::Running,
                }),
            ),
        ];
        batch(h, store, facts).await;
        assert_eq!(h.core.instances[&id].status(), "ACTIVE");
    }

    async fn destroy(h: &mut ConductorHandler<MemStore>, store: &MemStore, id: Uuid) {
        batch(h, store, vec![delete_intent(id)]).await;
        let destroyed = on(
            id,
            Actor::service("compute"),
            Event::ComputeFact(ComputeFact::InstanceDestroyed {
                instance_id: id,
                host: "h1".into(),
                usage: Default::default(),
            }),
        );
        let out = batch(h, store, vec![destroyed]).await;
        assert!(
            out.iter()
                .any(|e| matches!(e, Event::Instance(InstanceEvent::InstanceDeleted { .. }))),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn deleted_servers_leave_the_conductors_memory_and_stay_in_its_store() {
        let store = MemStore::new();
        let board: DeadlineBoard = Default::default();
        let mut h =
            ConductorHandler::new(given(), Topics::new("t."), board, Arc::new(store.clone()));
        let live = [Uuid::new_v4(), Uuid::new_v4()];
        for id in live {
            boot(&mut h, &store, id).await;
        }
        let mut gone = Vec::new();
        for _ in 0..25 {
            let id = Uuid::new_v4();
            boot(&mut h, &store, id).await;
            destroy(&mut h, &store, id).await;
            gone.push(id);
        }
        assert_eq!(h.core.resident_instances(), live.len());
        assert_eq!(h.core.usage["demo"].instances, live.len() as i64);
        let stored: Vec<(Vec<u8>, Instance)> = store.scan(INSTANCES).unwrap();
        assert_eq!(stored.len(), live.len() + gone.len());
        assert!(
            gone.iter()
                .all(|id| stored.iter().any(|(_, i)| i.id == *id && i.is_deleted()))
        );

        // Decided as before, from the store: a redelivered create of a
        // deleted server is a duplicate, a second delete is not found, a late
        // fact is stale; none brings it back into memory.
        let old = gone[3];
        assert!(
            batch(&mut h, &store, vec![create_intent(old)])
                .await
                .is_empty()
        );
        let out = batch(&mut h, &store, vec![delete_intent(old)]).await;
        assert!(
            matches!(
                &out[..],
                [Event::Instance(InstanceEvent::IntentRejected {
                    kind: RejectionKind::NotFound,
                    ..
                })]
            ),
            "{out:?}"
        );
        let late = on(
            old,
            Actor::service("compute"),
            Event::ComputeFact(ComputeFact::InstanceSpawned {
                instance_id: old,
                host: "h1".into(),
                attempt: 1,
                power_state: novalog_schemas::PowerState::Running,
            }),
        );
        assert!(batch(&mut h, &store, vec![late]).await.is_empty());
        assert_eq!(h.core.resident_instances(), live.len());

        // A restart loads the live ones only.
        let core = load(&store, Settings::default()).unwrap();
        assert_eq!(core.resident_instances(), live.len());
        assert_eq!(core.usage["demo"].instances, live.len() as i64);
    }

    fn rejection(out: &[Event]) -> Option<RejectionKind> {
        match out {
            [Event::Instance(InstanceEvent::IntentRejected { kind, .. })] => Some(kind.clone()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn deleted_images_leave_the_conductors_memory_and_stay_in_its_store() {
        let store = MemStore::new();
        let board: DeadlineBoard = Default::default();
        let mut h =
            ConductorHandler::new(given(), Topics::new("t."), board, Arc::new(store.clone()));
        let live = h.core.resident_images();
        let mut gone = Vec::new();
        for _ in 0..10 {
            let mut mine = image();
            mine.id = Uuid::new_v4();
            mine.owner = "demo".into();
            mine.status = "queued".into();
            mine.size = 0;
            mine.visibility = "private".into();
            let create = Event::Intent(Intent::ImageCreateRequested(mine.clone()));
            let out = batch(&mut h, &store, vec![on(mine.id, actor("demo"), create)]).await;
            assert!(
                matches!(&out[..], [Event::Catalog(CatalogEvent::ImageCreated(_))]),
                "{out:?}"
            );
            let delete = Event::Intent(Intent::ImageDeleteRequested { image_id: mine.id });
            let out = batch(&mut h, &store, vec![on(mine.id, actor("demo"), delete)]).await;
            assert!(
                matches!(
                    &out[..],
                    [Event::Catalog(CatalogEvent::ImageDeleted { .. })]
                ),
                "{out:?}"
            );
            gone.push(mine);
        }
        assert_eq!(h.core.resident_images(), live);
        let stored: Vec<(Vec<u8>, Image)> = store.scan(IMAGES).unwrap();
        assert!(gone.iter().all(|g| {
            stored
                .iter()
                .any(|(_, i)| i.id == g.id && i.status == "deleted")
        }));

        // Decided as before, from the store: the id of a deleted image is
        // never reused, it cannot be deleted again, and no server is built
        // from it; none brings it back into memory.
        let old = gone[3].clone();
        let recreate = Event::Intent(Intent::ImageCreateRequested(old.clone()));
        let out = batch(&mut h, &store, vec![on(old.id, actor("demo"), recreate)]).await;
        assert_eq!(rejection(&out), Some(RejectionKind::Conflict), "{out:?}");
        let delete = Event::Intent(Intent::ImageDeleteRequested { image_id: old.id });
        let out = batch(&mut h, &store, vec![on(old.id, actor("demo"), delete)]).await;
        assert_eq!(rejection(&out), Some(RejectionKind::NotFound), "{out:?}");
        let server = Uuid::new_v4();
        let mut create = create_intent(server);
        if let Event::Intent(Intent::ServerCreateRequested(req)) = &mut create.env.event {
            req.image = old.clone();
        }
        let out = batch(&mut h, &store, vec![create]).await;
        assert_eq!(rejection(&out), Some(RejectionKind::Invalid), "{out:?}");
        assert_eq!(h.core.resident_images(), live);

        // A restart loads the live ones only.
        let core = load(&store, Settings::default()).unwrap();
        assert_eq!(core.resident_images(), live);
    }

    fn awaiting(step: crate::saga::Step, deadline_ms: Option<i64>) -> Awaiting {
        Awaiting {
            step,
            deadline_ms,
            project_id: "demo".into(),
            correlation_id: "req-1".into(),
            operation_id: None,
            host: None,
            fault: None,
            original_vm_state: None,
        }
    }

    /// The timer sleeps until its earliest deadline: a batch that adds a
    /// later one (nearly every batch) leaves it asleep, an earlier one
    /// wakes it.
    #[tokio::test]
    async fn only_an_earlier_deadline_wakes_the_timer() {
        let store = MemStore::new();
        let board: DeadlineBoard = Default::default();
        let mut core = given();
        core.settings.build_timeout_ms = 60_000;
        let mut h = ConductorHandler::new(
            core,
            Topics::new("t."),
            board.clone(),
            Arc::new(store.clone()),
        );
        // Whether a wake-up is pending (taking it).
        let woken = || async {
            tokio::time::timeout(Duration::ZERO, board.changed.notified())
                .await
                .is_ok()
        };
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        batch(&mut h, &store, vec![create_intent(a)]).await;
        assert!(woken().await, "a timer that has not looked yet is woken");

        // The timer looked, and sleeps until a's deadline.
        let a_at = board.state.lock().awaiting[&a].deadline_ms.unwrap();
        board.state.lock().wake_at = a_at;
        batch(&mut h, &store, vec![create_intent(b)]).await;
        assert!(!woken().await, "b's deadline is not before a's");
        assert!(
            board.state.lock().awaiting.contains_key(&b),
            "the board has it all the same"
        );

        // A timer with nothing to wait for is woken by any deadline.
        board.state.lock().wake_at = i64::MAX;
        batch(&mut h, &store, vec![create_intent(c)]).await;
        assert!(woken().await);
    }

    #[test]
    fn the_timer_fires_each_passed_deadline_once_and_sleeps_until_the_next() {
        use crate::saga::Step;
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let mut board = BTreeMap::from([
            (a, awaiting(Step::Build, Some(100))),
            (b, awaiting(Step::Action("stop"), Some(300))),
            (c, awaiting(Step::Rebuild, None)),
        ]);
        let mut fired = Fired::new();
        let (due, next) = due_timeouts(&board, &mut fired, 200);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].emit.env.meta.aggregate_id, a.to_string());
        assert_eq!(due[0].deadline, (Step::Build, 100));
        assert_eq!(next, Some(300));
        fired.insert(due[0].instance, due[0].deadline);

        // Fired, not yet acted on: not again, and nothing to wake for
        // before the next deadline.
        let (due, next) = due_timeouts(&board, &mut fired, 250);
        assert!(due.is_empty());
        assert_eq!(next, Some(300));

        // The step moved on to a new deadline: that one fires in its turn.
        board.insert(a, awaiting(Step::Build, Some(400)));
        let (due, next) = due_timeouts(&board, &mut fired, 300);
        assert!(fired.is_empty(), "the old deadline is forgotten");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].emit.env.meta.aggregate_id, b.to_string());
        assert_eq!(next, Some(400));
    }

    #[test]
    fn every_table_persists_its_changes_and_loads_back() {
        let store = MemStore::new();
        let persist = |c: &mut Conductor| {
            let mut tx = Transaction::new();
            let persisted = c.persist(&mut tx).unwrap();
            store.commit(tx).unwrap();
            persisted
        };
        let same = |a: &Conductor, b: &Conductor| {
            assert_eq!(format!("{:?}", a.instances), format!("{:?}", b.instances));
            assert_eq!(format!("{:?}", a.flavors), format!("{:?}", b.flavors));
            assert_eq!(format!("{:?}", a.images), format!("{:?}", b.images));
            assert_eq!(format!("{:?}", a.awaiting), format!("{:?}", b.awaiting));
            assert_eq!(
                format!("{:?}", a.quota_overrides),
                format!("{:?}", b.quota_overrides)
            );
            assert_eq!(
                format!("{:?}", a.quota_classes),
                format!("{:?}", b.quota_classes)
            );
            assert_eq!(
                format!("{:?}", a.flavor_access),
                format!("{:?}", b.flavor_access)
            );
            assert_eq!(a.last_migration_id(), b.last_migration_id());
            assert_eq!(a.usage, b.usage);
        };
        let mut c = given();
        let id = Uuid::new_v4();
        crate::tests::create(&mut c, id);
        c.next_migration_id();
        c.next_migration_id();
        c.quota_overrides
            .insert("demo".into(), BTreeMap::from([("ram".to_owned(), 4096)]));
        c.quota_classes
            .insert("default".into(), BTreeMap::from([("cores".to_owned(), 64)]));
        c.flavor_access
            .insert("1".into(), BTreeSet::from(["other".to_owned()]));
        let persisted = persist(&mut c);
        assert_eq!(persisted.instances, [id]);
        assert_eq!(persisted.awaiting, [id], "the build awaits its host");
        assert!(
            persist(&mut c).instances.is_empty(),
            "nothing changed since"
        );
        let loaded = load(&store, Settings::default()).unwrap();
        same(&c, &loaded);
        assert_eq!(loaded.last_migration_id(), 2);

        // Removals are persisted as deletes.
        c.flavor_access.remove("1");
        c.quota_overrides.clear();
        c.stop_awaiting(id);
        let persisted = persist(&mut c);
        assert_eq!(persisted.awaiting, [id]);
        let loaded = load(&store, Settings::default()).unwrap();
        same(&c, &loaded);
        assert!(loaded.flavor_access.is_empty() && loaded.awaiting.is_empty());
    }
}
