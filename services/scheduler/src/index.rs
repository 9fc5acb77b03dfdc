//! The host index behind the fast path: hosts in a dense vector, each with
//! a compact [`Row`] of what capacity filters and built-in weighers read,
//! grouped into classes of identical static attributes, and arranged in a
//! forest of trees (one per large class) whose nodes summarise their hosts:
//! the most room of each resource, the latest heartbeat, the fewest
//! instances, every metric's smallest and largest value, and the largest
//! projection of the metrics on a direction — the direction recent
//! decisions weighed in. Each tree is over its hosts sorted by that
//! projection, so a node holds hosts that weigh alike.
//!
//! A decision is a branch and bound over that forest:
//! - class-scoped filters (zone, capabilities, image properties,
//!   aggregates) are evaluated once per class, not per host; capacity and
//!   liveness checks once per node against its summary. A subtree that no
//!   host of it can pass is never entered.
//! - Nova normalises each weigher's metric over the hosts that passed the
//!   filters, so the normalisation bounds come first: for each weighed
//!   metric, a best-first descent by the nodes' largest (or smallest) value
//!   finds the candidates' extreme after a handful of leaves.
//! - then a best-first descent by an upper bound on each node's best total
//!   stops as soon as the `top`th best found beats every unvisited node.
//!   The bound is the lesser of two: one per weigher from the node's metric
//!   ranges ([`Query::bound`]), and one from its largest projection
//!   ([`Query::projected_bound`]), tight when the request weighs in the
//!   index's direction. Ties on the weight are broken by name, as the brute
//!   force's stable sort over name-ordered hosts breaks them; each node
//!   knows its smallest name rank for that.
//! - the server-group soft weighers are 0 except on the hosts holding a
//!   member of the group: those few hosts (found through an instance → hosts
//!   map kept beside the rows) are weighed first, and every other host
//!   weighs the same on them, a constant in the bounds.
//! - weighers whose metric neither rows hold nor is sparse (metrics) need
//!   every candidate's value for the bounds: the candidates are then
//!   collected (still pruned by the tree) and all weighed.
//!
//! After a change only the changed host's row, its leaf and the summaries
//! above it are recomputed (the climb stops where a summary does not
//! change). The trees are rebuilt when hosts or classes change, after as
//! many load changes as there are hosts (so the order follows the load),
//! and when most recent decisions weighed in another direction.
//!
//! The result equals [`crate::Scheduler::select_hosts_brute_force`]: the same
//! filters and arithmetic (the helpers in [`crate::host_state`]), the same
//! normalisation, the same tie-breaking; the bounds only decide what need
//! not be looked at.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use novalog_schemas::events::SelectHostsRequested;
use uuid::Uuid;

use crate::filters::{Check, Context, Filter, Scope};
use crate::host_state::{HostState, free, free_scaled};
use crate::weighers::{Feature, Norm, Weigher, clamp};

/// The metrics rows hold, in [`Row::feat`] order.
const TRACKED: [Feature; 6] = [
    Feature::FreeRam,
    Feature::FreeVcpus,
    Feature::FreeDiskMb,
    Feature::IoOps,
    Feature::NumInstances,
    Feature::FailedBuilds,
];

/// The metrics the default direction weighs (the default weighers').
const DEFAULT_DIRECTION: [usize; 3] = [0, 1, 2];

/// Hosts per leaf, at most.
const LEAF: usize = 16;

/// A summary's class when its hosts are of several classes.
const MIXED: u32 = u32::MAX;
/// A summary's class before any host is added.
const NONE: u32 = u32::MAX - 1;

fn slot(f: Feature) -> Option<usize> {
    TRACKED.iter().position(|t| *t == f)
}

/// An order-preserving map of (non-NaN) floats onto integers.
fn key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

/// The inverse of [`key`].
fn unkey(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// The most of a resource a request may ask for and still fit beside
/// `used` under `capacity × ratio`: `want ≤ room` exactly when
/// [`crate::host_state::fits`] holds (an integer is at most a float exactly
/// when it is at most its floor).
fn room(capacity: u64, ratio: f64, used: u64) -> i64 {
    let limit = capacity as f64 * ratio;
    if limit.is_nan() {
        return i64::MIN;
    }
    (limit.floor() as i64).saturating_sub(i64::try_from(used).unwrap_or(i64::MAX))
}

/// How far apart two directions are: the least, over scalings of `u`, of
/// `Σ |a − λu| × magnitude`, relative to `Σ |a| × magnitude` (0: parallel).
fn misalignment(a: &[f64; 6], u: &[f64; 6], magnitude: &[f64; 6]) -> f64 {
    let off = |lambda: f64| -> f64 {
        (0..TRACKED.len())
            .map(|k| (a[k] - lambda * u[k]).abs() * magnitude[k])
            .sum()
    };
    let scale = off(0.0);
    if scale.is_nan() || scale <= 0.0 {
        return 0.0;
    }
    let least = (0..TRACKED.len())
        .filter(|k| u[*k] != 0.0)
        .map(|k| off(a[k] / u[k]))
        .fold(scale, f64::min);
    least / scale
}

/// A row's metrics, raised to 0, projected on `direction` (0 where the
/// direction is).
fn project(direction: &[f64; 6], row: &Row) -> f64 {
    let mut p = 0.0;
    for (d, v) in direction.iter().zip(&row.feat) {
        if *d != 0.0 {
            p += d * v.max(0.0);
        }
    }
    p
}

/// What capacity checks and built-in weighers read of a host, computed from
/// its [`HostState`] at each change.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    /// [`room`] for RAM (MB), vCPUs and disk (GB).
    room: [i64; 3],
    /// The last heartbeat if the host is enabled, else `i64::MIN`.
    up_hb: i64,
    num_instances: u32,
    io_ops: u32,
    /// The [`TRACKED`] metrics, as the weighers compute them.
    feat: [f64; 6],
}

impl Row {
    fn of(h: &HostState, ratios: [f64; 3]) -> Self {
        let [cpu, ram, disk] = ratios;
        let cpu = h.cpu_allocation_ratio.unwrap_or(cpu);
        let ram = h.ram_allocation_ratio.unwrap_or(ram);
        let disk = h.disk_allocation_ratio.unwrap_or(disk);
        let vcpus = u64::from(h.capacity.vcpus);
        Row {
            room: [
                room(h.capacity.memory_mb, ram, h.used_ram_mb()),
                room(vcpus, cpu, h.used_vcpus()),
                room(h.capacity.disk_gb, disk, h.used_disk_gb()),
            ],
            up_hb: if h.enabled {
                h.last_heartbeat_ms
            } else {
                i64::MIN
            },
            num_instances: h.num_instances(),
            io_ops: h.num_io_ops(),
            feat: [
                free(h.capacity.memory_mb, h.used_ram_mb()),
                free_scaled(vcpus, cpu, h.used_vcpus()),
                free(h.capacity.disk_gb, h.used_disk_gb()) * 1024.0,
                f64::from(h.num_io_ops()),
                f64::from(h.num_instances()),
                f64::from(h.failed_builds),
            ],
        }
    }
}

/// What a node knows of its hosts: enough to tell that none passes a
/// request, and to bound their metrics and weights.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Summary {
    /// The hosts' class, or [`MIXED`].
    class: u32,
    /// The smallest name rank.
    min_rank: u32,
    /// The largest [`Row::room`] of each resource.
    room: [i64; 3],
    /// The latest [`Row::up_hb`].
    up_hb: i64,
    /// The fewest instances and I/O operations.
    num_instances: u32,
    io_ops: u32,
    /// Each metric's smallest and largest value.
    lo: [f64; 6],
    hi: [f64; 6],
    /// The largest projection of the hosts' metrics on the index's direction.
    proj: f64,
}

impl Summary {
    const EMPTY: Summary = Summary {
        class: NONE,
        min_rank: u32::MAX,
        room: [i64::MIN; 3],
        up_hb: i64::MIN,
        num_instances: u32::MAX,
        io_ops: u32::MAX,
        lo: [f64::INFINITY; 6],
        hi: [f64::NEG_INFINITY; 6],
        proj: f64::NEG_INFINITY,
    };

    fn merge_class(&mut self, class: u32) {
        if self.class == NONE {
            self.class = class;
        } else if class != NONE && class != self.class {
            self.class = MIXED;
        }
    }

    fn add_row(&mut self, class: u32, rank: u32, r: &Row, proj: f64) {
        self.merge_class(class);
        self.proj = self.proj.max(proj);
        self.min_rank = self.min_rank.min(rank);
        for k in 0..3 {
            self.room[k] = self.room[k].max(r.room[k]);
        }
        self.up_hb = self.up_hb.max(r.up_hb);
        self.num_instances = self.num_instances.min(r.num_instances);
        self.io_ops = self.io_ops.min(r.io_ops);
        for k in 0..TRACKED.len() {
            self.lo[k] = self.lo[k].min(r.feat[k]);
            self.hi[k] = self.hi[k].max(r.feat[k]);
        }
    }

    fn merge(&mut self, o: &Summary) {
        self.merge_class(o.class);
        self.proj = self.proj.max(o.proj);
        self.min_rank = self.min_rank.min(o.min_rank);
        for k in 0..3 {
            self.room[k] = self.room[k].max(o.room[k]);
        }
        self.up_hb = self.up_hb.max(o.up_hb);
        self.num_instances = self.num_instances.min(o.num_instances);
        self.io_ops = self.io_ops.min(o.io_ops);
        for k in 0..TRACKED.len() {
            self.lo[k] = self.lo[k].min(o.lo[k]);
            self.hi[k] = self.hi[k].max(o.hi[k]);
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    /// The node's hosts: `Tree::perm[start..end]`.
    start: u32,
    end: u32,
    children: Option<[u32; 2]>,
    parent: Option<u32>,
    sum: Summary,
}

/// A forest of trees over the hosts, one per class of at least [`LEAF`]
/// hosts and one for the hosts of smaller classes, each over its hosts
/// sorted by their projection on the index's direction (so a node's hosts
/// weigh alike under requests weighing in about that direction).
#[derive(Debug, Default)]
struct Tree {
    nodes: Vec<Node>,
    /// Host ids, each node's hosts contiguous.
    perm: Vec<u32>,
    /// Each host's leaf.
    leaf_of: Vec<u32>,
    roots: Vec<u32>,
}

/// The attributes class-scoped filters and weigher multipliers may read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClassKey {
    availability_zone: String,
    cpu_arch: String,
    hypervisor_type: String,
    hypervisor_version: u64,
    capabilities: BTreeMap<String, String>,
    aggregates: Vec<String>,
}

impl ClassKey {
    fn of(h: &HostState) -> Self {
        ClassKey {
            availability_zone: h.availability_zone.clone(),
            cpu_arch: h.cpu_arch.clone(),
            hypervisor_type: h.hypervisor_type.clone(),
            hypervisor_version: h.hypervisor_version,
            capabilities: h.capabilities.clone(),
            aggregates: h.aggregates.iter().map(|a| a.name.clone()).collect(),
        }
    }
}

struct Class {
    members: Vec<u32>,
}

/// Buffers reused across decisions.
#[derive(Default)]
struct Scratch {
    /// Per host: the epoch of its last candidacy check, shifted left once,
    /// with the answer in the low bit.
    stamp: Vec<u32>,
    epoch: u32,
    /// Per host: the epoch in which it is one of the decision's sparse
    /// hosts, and its position among them.
    sparse_stamp: Vec<u32>,
    sparse_pos: Vec<u32>,
    class_pass: Vec<bool>,
    heap: BinaryHeap<(u64, u32, u32)>,
    candidates: Vec<u32>,
    per_host: Vec<Vec<f64>>,
    /// The direction (per metric, multiplier over range) the last decision
    /// weighed in, for the next build.
    last_direction: Option<[f64; 6]>,
    /// A moving average of how often decisions weigh in a direction away
    /// from the index's (1: always).
    misaligned: f64,
}

/// One active weigher of a decision.
struct Active<'a> {
    weigher: &'a dyn Weigher,
    /// Index into [`Row::feat`]; `None` for [`Feature::PerHost`].
    slot: Option<usize>,
    minval: Option<f64>,
    /// Multiplier per class (0 for classes that fail the filters).
    multiplier: Vec<f64>,
    /// Smallest and largest multiplier over the passing classes.
    lowest: f64,
    highest: f64,
    norm: Norm,
    /// Raw metrics per candidate (index into `Scratch::per_host`), for
    /// [`Feature::PerHost`].
    raws: usize,
    /// For a weigher 0 on hosts holding none of these instances
    /// ([`Weigher::zero_without`]): the instances; in the branch and bound,
    /// its (clamped) metric on each of their hosts, in `Query::sparse_hosts`
    /// order, and on every other host.
    zero_without: Option<&'a [Uuid]>,
    sparse: Option<Vec<f64>>,
    zero: f64,
}

/// An upper limit (exclusive) on a count, per class.
#[derive(Debug, Default)]
struct Limit {
    per_class: Vec<i64>,
    /// The largest over the classes (for nodes of several classes).
    any: i64,
}

impl Limit {
    fn new(classes: usize) -> Self {
        Limit {
            per_class: vec![i64::MAX; classes],
            any: i64::MAX,
        }
    }

    fn cap(&mut self, class: usize, limit: i64) {
        self.per_class[class] = self.per_class[class].min(limit);
    }

    fn finish(&mut self) {
        self.any = self.per_class.iter().copied().max().unwrap_or(i64::MAX);
    }

    /// Whether `count` is below the limit for `class` ([`MIXED`]: any).
    #[inline]
    fn admits(&self, count: u32, class: u32) -> bool {
        i64::from(count)
            < self
                .per_class
                .get(class as usize)
                .copied()
                .unwrap_or(self.any)
    }
}

/// The capacity and liveness checks of a request, on rows and summaries.
#[derive(Debug, Default)]
struct Need {
    /// What the request asks of RAM, vCPUs and disk, and whether it is
    /// checked.
    want: [i64; 3],
    on: [bool; 3],
    up: bool,
    now_ms: i64,
    down_ms: i64,
    max_instances: Option<Limit>,
    max_io_ops: Option<Limit>,
}

impl Need {
    fn new(
        checks: &[(Check, &dyn Filter)],
        classes: &[Class],
        hosts: &[HostState],
        spec: &SelectHostsRequested,
        ctx: &Context,
    ) -> Self {
        let r = &spec.resources;
        let want = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut need = Need {
            want: [want(r.memory_mb), want(u64::from(r.vcpus)), want(r.disk_gb)],
            now_ms: ctx.now_ms,
            down_ms: ctx.service_down_time_ms,
            ..Need::default()
        };
        for (c, f) in checks {
            let limit = match *c {
                Check::Up => {
                    need.up = true;
                    continue;
                }
                Check::Ram | Check::Core | Check::Disk => {
                    let k = [Check::Ram, Check::Core, Check::Disk]
                        .iter()
                        .position(|x| x == c)
                        .expect("a resource check");
                    need.on[k] = true;
                    continue;
                }
                Check::MaxInstances(_) | Check::ClassMaxInstances => &mut need.max_instances,
                Check::MaxIoOps(_) | Check::ClassMaxIoOps => &mut need.max_io_ops,
            };
            let limit = limit.get_or_insert_with(|| Limit::new(classes.len()));
            for (k, class) in classes.iter().enumerate() {
                let value = match *c {
                    Check::MaxInstances(m) | Check::MaxIoOps(m) => i64::from(m),
                    _ => match class.members.first() {
                        Some(rep) => f.class_limit(&hosts[*rep as usize]),
                        None => continue,
                    },
                };
                limit.cap(k, value);
            }
        }
        for l in [&mut need.max_instances, &mut need.max_io_ops]
            .into_iter()
            .flatten()
        {
            l.finish();
        }
        need
    }

    /// Whether a host with these values passes (the checks' own arithmetic).
    #[inline]
    fn passes(
        &self,
        room: &[i64; 3],
        up_hb: i64,
        num_instances: u32,
        io_ops: u32,
        class: u32,
    ) -> bool {
        (0..3).all(|k| !self.on[k] || self.want[k] <= room[k])
            && (!self.up || (up_hb != i64::MIN && self.now_ms - up_hb <= self.down_ms))
            && self
                .max_instances
                .as_ref()
                .is_none_or(|l| l.admits(num_instances, class))
            && self
                .max_io_ops
                .as_ref()
                .is_none_or(|l| l.admits(io_ops, class))
    }

    #[inline]
    fn row(&self, r: &Row, class: u32) -> bool {
        self.passes(&r.room, r.up_hb, r.num_instances, r.io_ops, class)
    }

    /// Whether some host of the node may pass: the summary holds the most
    /// favourable value of each checked quantity.
    #[inline]
    fn node(&self, s: &Summary) -> bool {
        self.passes(&s.room, s.up_hb, s.num_instances, s.io_ops, s.class)
    }
}

/// Best first: higher total, then lower name rank.
fn better(a: (f64, u32), b: (f64, u32)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
}

/// Keeps `best` the `top` best of what it is offered, best first.
fn offer(best: &mut Vec<(f64, u32, u32)>, top: usize, entry: (f64, u32, u32)) {
    if best.len() == top && !better((entry.0, entry.1), (best[top - 1].0, best[top - 1].1)) {
        return;
    }
    let at = best.partition_point(|b| better((b.0, b.1), (entry.0, entry.1)));
    best.insert(at, entry);
    best.truncate(top);
}

/// The order handed to the pick: the best `top` (or every host tying for
/// the best, name-ordered, then the rest of the best), and how many tie.
fn finish(
    best: Vec<(f64, u32, u32)>,
    mut ties: Vec<(u32, u32)>,
    all_best_ties: bool,
) -> (Vec<u32>, usize) {
    if !all_best_ties {
        return (best.into_iter().map(|b| b.2).collect(), 0);
    }
    let best_weight = best[0].0;
    ties.sort_unstable();
    let tied = ties.len();
    let order = ties
        .into_iter()
        .map(|(_, id)| id)
        .chain(best.iter().filter(|b| b.0 != best_weight).map(|b| b.2))
        .collect();
    (order, tied)
}

pub(crate) struct HostIndex {
    hosts: Vec<HostState>,
    by_name: HashMap<String, u32>,
    rows: Vec<Row>,
    class_of: Vec<u32>,
    pos_in_class: Vec<u32>,
    classes: Vec<Class>,
    class_ids: HashMap<ClassKey, u32>,
    /// Position of each host in name order; `sorted` is that order.
    rank: Vec<u32>,
    sorted: Vec<u32>,
    ranks_dirty: bool,
    /// The default allocation ratios (cpu, ram, disk) the rows were made with.
    ratios: [f64; 3],
    tree: Tree,
    /// The trees no longer match the hosts or their classes.
    tree_dirty: bool,
    /// Load changes since the trees were built.
    drift: usize,
    /// The direction hosts are projected on (see [`Query::projected_bound`]),
    /// and each host's projection.
    direction: [f64; 6],
    proj: Vec<f64>,
    /// Whether `direction` came from a decision (rather than a default).
    direction_from_decision: bool,
    /// Each metric's largest magnitude at the last build.
    magnitude: [f64; 6],
    /// Each host's instances as last seen, and the hosts holding each
    /// instance (for weighers that only some instances' hosts move).
    known_instances: Vec<BTreeSet<Uuid>>,
    instance_hosts: HashMap<Uuid, Vec<u32>>,
    scratch: Scratch,
}

impl HostIndex {
    pub fn new(ctx: &Context) -> Self {
        HostIndex {
            hosts: Vec::new(),
            by_name: HashMap::new(),
            rows: Vec::new(),
            class_of: Vec::new(),
            pos_in_class: Vec::new(),
            classes: Vec::new(),
            class_ids: HashMap::new(),
            rank: Vec::new(),
            sorted: Vec::new(),
            ranks_dirty: false,
            ratios: Self::ratios_of(ctx),
            tree: Tree::default(),
            tree_dirty: true,
            drift: 0,
            direction: [0.0; 6],
            proj: Vec::new(),
            direction_from_decision: false,
            magnitude: [0.0; 6],
            known_instances: Vec::new(),
            instance_hosts: HashMap::new(),
            scratch: Scratch::default(),
        }
    }

    fn ratios_of(ctx: &Context) -> [f64; 3] {
        [
            ctx.cpu_allocation_ratio,
            ctx.ram_allocation_ratio,
            ctx.disk_allocation_ratio,
        ]
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn get(&self, name: &str) -> Option<&HostState> {
        self.by_name.get(name).map(|i| &self.hosts[*i as usize])
    }

    pub fn id(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    pub fn host(&self, id: u32) -> &HostState {
        &self.hosts[id as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = &HostState> {
        self.hosts.iter()
    }

    /// Adds a host, or replaces the one of the same name.
    pub fn insert(&mut self, h: HostState) -> u32 {
        if let Some(id) = self.id(&h.name) {
            self.update(id, |old| *old = h);
            return id;
        }
        let id = self.hosts.len() as u32;
        let key = ClassKey::of(&h);
        let fast_rank = !self.ranks_dirty
            && self
                .sorted
                .last()
                .is_none_or(|last| self.hosts[*last as usize].name < h.name);
        let row = Row::of(&h, self.ratios);
        self.proj.push(project(&self.direction, &row));
        self.rows.push(row);
        self.by_name.insert(h.name.clone(), id);
        self.hosts.push(h);
        self.known_instances.push(BTreeSet::new());
        self.track_instances(id);
        self.class_of.push(0);
        self.pos_in_class.push(0);
        self.join_class(id, key);
        if fast_rank {
            self.rank.push(self.sorted.len() as u32);
            self.sorted.push(id);
        } else {
            self.rank.push(0);
            self.ranks_dirty = true;
        }
        self.tree_dirty = true;
        id
    }

    /// Changes a host in any way; its class follows.
    pub fn update<R>(&mut self, id: u32, f: impl FnOnce(&mut HostState) -> R) -> R {
        let i = id as usize;
        let r = f(&mut self.hosts[i]);
        let key = ClassKey::of(&self.hosts[i]);
        let current = self.class_of[i];
        if self.class_ids.get(&key) != Some(&current) {
            self.leave_class(id);
            self.join_class(id, key);
            self.tree_dirty = true;
        }
        self.resync(id);
        r
    }

    /// Changes a host's usage, instances or heartbeat — never its class.
    pub fn update_load<R>(&mut self, id: u32, f: impl FnOnce(&mut HostState) -> R) -> R {
        let r = f(&mut self.hosts[id as usize]);
        self.resync(id);
        r
    }

    /// Recomputes a host's row, its leaf's summary and the summaries above
    /// as far as they change.
    fn resync(&mut self, id: u32) {
        self.track_instances(id);
        let i = id as usize;
        let row = Row::of(&self.hosts[i], self.ratios);
        if row == self.rows[i] {
            return;
        }
        self.proj[i] = project(&self.direction, &row);
        self.rows[i] = row;
        self.drift += 1;
        if self.tree_dirty {
            return;
        }
        let mut n = self.tree.leaf_of[i];
        let mut sum = self.leaf_summary(n);
        loop {
            let node = &mut self.tree.nodes[n as usize];
            if node.sum == sum {
                break;
            }
            node.sum = sum;
            let Some(parent) = node.parent else { break };
            let [a, b] = self.tree.nodes[parent as usize]
                .children
                .expect("a parent has children");
            sum = self.tree.nodes[a as usize].sum;
            sum.merge(&self.tree.nodes[b as usize].sum);
            n = parent;
        }
    }

    /// Brings `instance_hosts` up to date with the host's instances.
    fn track_instances(&mut self, id: u32) {
        let i = id as usize;
        let now = &self.hosts[i].instances;
        if *now == self.known_instances[i] {
            return;
        }
        for gone in self.known_instances[i].difference(now) {
            if let Some(hosts) = self.instance_hosts.get_mut(gone) {
                hosts.retain(|h| *h != id);
                if hosts.is_empty() {
                    self.instance_hosts.remove(gone);
                }
            }
        }
        for new in now.difference(&self.known_instances[i]) {
            self.instance_hosts.entry(*new).or_default().push(id);
        }
        self.known_instances[i] = now.clone();
    }

    fn leaf_summary(&self, n: u32) -> Summary {
        let node = &self.tree.nodes[n as usize];
        let mut sum = Summary::EMPTY;
        for id in &self.tree.perm[node.start as usize..node.end as usize] {
            let i = *id as usize;
            sum.add_row(self.class_of[i], self.rank[i], &self.rows[i], self.proj[i]);
        }
        sum
    }

    fn join_class(&mut self, id: u32, key: ClassKey) {
        let next = self.classes.len() as u32;
        let c = *self.class_ids.entry(key).or_insert(next);
        if c == next {
            self.classes.push(Class {
                members: Vec::new(),
            });
        }
        let members = &mut self.classes[c as usize].members;
        self.class_of[id as usize] = c;
        self.pos_in_class[id as usize] = members.len() as u32;
        members.push(id);
    }

    fn leave_class(&mut self, id: u32) {
        let c = self.class_of[id as usize] as usize;
        let pos = self.pos_in_class[id as usize] as usize;
        let members = &mut self.classes[c].members;
        members.swap_remove(pos);
        if let Some(moved) = members.get(pos).copied() {
            self.pos_in_class[moved as usize] = pos as u32;
        }
    }

    /// Brings rows, ranks and trees up to date for a decision at `ctx`.
    fn refresh(&mut self, ctx: &Context) {
        let ratios = Self::ratios_of(ctx);
        if ratios != self.ratios {
            self.ratios = ratios;
            for (row, h) in self.rows.iter_mut().zip(&self.hosts) {
                *row = Row::of(h, ratios);
            }
            self.tree_dirty = true;
        }
        if self.ranks_dirty {
            let hosts = &self.hosts;
            let mut sorted: Vec<u32> = (0..hosts.len() as u32).collect();
            sorted.sort_unstable_by(|a, b| hosts[*a as usize].name.cmp(&hosts[*b as usize].name));
            self.rank = vec![0; hosts.len()];
            for (r, id) in sorted.iter().enumerate() {
                self.rank[*id as usize] = r as u32;
            }
            self.sorted = sorted;
            self.ranks_dirty = false;
            self.tree_dirty = true;
        }
        // Decisions weighing in another direction loosen the bounds: most
        // of the recent ones doing so is worth a rebuild, now and then.
        let better_direction = self.scratch.last_direction.is_some()
            && (!self.direction_from_decision
                || (self.scratch.misaligned > 0.5 && self.drift > self.hosts.len() / 8 + 16));
        if self.tree_dirty || better_direction || self.drift > self.hosts.len() + 64 {
            self.build_tree();
        }
    }

    /// Host ids in name order.
    pub fn sorted(&mut self) -> &[u32] {
        if self.ranks_dirty {
            let ctx = Context {
                cpu_allocation_ratio: self.ratios[0],
                ram_allocation_ratio: self.ratios[1],
                disk_allocation_ratio: self.ratios[2],
                ..Context::default()
            };
            self.refresh(&ctx);
        }
        &self.sorted
    }

    fn build_tree(&mut self) {
        // The direction of the last decision; before any, the default
        // weighers' at multiplier 1 over the metrics' largest values.
        match self.scratch.last_direction {
            Some(d) => {
                self.direction = d;
                self.direction_from_decision = true;
            }
            None => {
                self.direction = [0.0; 6];
                for k in DEFAULT_DIRECTION {
                    let hi = self.rows.iter().fold(0.0f64, |hi, r| hi.max(r.feat[k]));
                    if hi > 0.0 && hi.is_finite() {
                        self.direction[k] = 1.0 / hi;
                    }
                }
            }
        }
        self.scratch.misaligned = 0.0;
        self.magnitude = [0.0; 6];
        for (p, row) in self.proj.iter_mut().zip(&self.rows) {
            *p = project(&self.direction, row);
            for k in 0..TRACKED.len() {
                self.magnitude[k] = self.magnitude[k].max(row.feat[k].abs());
            }
        }
        let mut tree = Tree {
            nodes: Vec::new(),
            perm: Vec::with_capacity(self.hosts.len()),
            leaf_of: vec![0; self.hosts.len()],
            roots: Vec::new(),
        };
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut small: Vec<u32> = Vec::new();
        for class in &self.classes {
            if class.members.len() >= LEAF {
                let start = tree.perm.len();
                tree.perm.extend(&class.members);
                groups.push((start, tree.perm.len()));
            } else {
                small.extend(&class.members);
            }
        }
        if !small.is_empty() {
            let start = tree.perm.len();
            tree.perm.extend(small);
            groups.push((start, tree.perm.len()));
        }
        for (start, end) in groups {
            let proj = &self.proj;
            tree.perm[start..end].sort_unstable_by(|a, b| {
                proj[*b as usize]
                    .total_cmp(&proj[*a as usize])
                    .then(a.cmp(b))
            });
            let root = self.build_node(&mut tree, start, end, None);
            tree.roots.push(root);
        }
        self.tree = tree;
        self.tree_dirty = false;
        self.drift = 0;
    }

    fn build_node(&self, tree: &mut Tree, start: usize, end: usize, parent: Option<u32>) -> u32 {
        let n = tree.nodes.len() as u32;
        tree.nodes.push(Node {
            start: start as u32,
            end: end as u32,
            children: None,
            parent,
            sum: Summary::EMPTY,
        });
        let mut sum = Summary::EMPTY;
        if end - start <= LEAF {
            for id in &tree.perm[start..end] {
                let i = *id as usize;
                tree.leaf_of[i] = n;
                sum.add_row(self.class_of[i], self.rank[i], &self.rows[i], self.proj[i]);
            }
        } else {
            let mid = start + (end - start) / 2;
            let a = self.build_node(tree, start, mid, Some(n));
            let b = self.build_node(tree, mid, end, Some(n));
            tree.nodes[n as usize].children = Some([a, b]);
            sum = tree.nodes[a as usize].sum;
            sum.merge(&tree.nodes[b as usize].sum);
        }
        tree.nodes[n as usize].sum = sum;
        n
    }

    /// The fast path: the hosts passing the filters, best first as far as
    /// `top` hosts (with every host tying for the best first, in name order,
    /// if `all_best_ties`), and how many tie; `None` when none passes.
    pub fn rank_hosts(
        &mut self,
        filters: &[Box<dyn Filter>],
        weighers: &[Box<dyn Weigher>],
        spec: &SelectHostsRequested,
        ctx: &Context,
        top: usize,
        all_best_ties: bool,
    ) -> Option<(Vec<u32>, usize)> {
        self.refresh(ctx);
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.stamp.resize(self.hosts.len(), 0);
        scratch.sparse_stamp.resize(self.hosts.len(), 0);
        scratch.sparse_pos.resize(self.hosts.len(), 0);
        scratch.epoch += 1;
        if scratch.epoch >= 1 << 31 {
            scratch.stamp.fill(0);
            scratch.sparse_stamp.fill(0);
            scratch.epoch = 1;
        }
        let out = self.rank_with(
            &mut scratch,
            filters,
            weighers,
            spec,
            ctx,
            top.max(1),
            all_best_ties,
        );
        self.scratch = scratch;
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn rank_with(
        &self,
        s: &mut Scratch,
        filters: &[Box<dyn Filter>],
        weighers: &[Box<dyn Weigher>],
        spec: &SelectHostsRequested,
        ctx: &Context,
        top: usize,
        all_best_ties: bool,
    ) -> Option<(Vec<u32>, usize)> {
        let mut class_filters: Vec<&dyn Filter> = Vec::new();
        let mut host_filters: Vec<&dyn Filter> = Vec::new();
        let mut checks: Vec<(Check, &dyn Filter)> = Vec::new();
        for f in filters {
            match f.scope(spec, ctx) {
                Scope::All => {}
                Scope::Class => class_filters.push(f.as_ref()),
                Scope::Check(c) => checks.push((c, f.as_ref())),
                Scope::Host => host_filters.push(f.as_ref()),
            }
        }
        // Class-scoped filters once per class.
        let mut class_pass = std::mem::take(&mut s.class_pass);
        class_pass.clear();
        class_pass.extend(self.classes.iter().map(|c| {
            c.members.first().is_some_and(|rep| {
                let rep = &self.hosts[*rep as usize];
                class_filters.iter().all(|f| f.host_passes(rep, spec, ctx))
            })
        }));

        // Weighers that can change the order, with their multiplier per class.
        let mut active: Vec<Active<'_>> = Vec::new();
        for w in weighers {
            let feature = w.feature(spec, ctx);
            if feature == Feature::Zero {
                continue;
            }
            let mut multiplier = vec![0.0; self.classes.len()];
            let (mut lowest, mut highest) = (f64::INFINITY, f64::NEG_INFINITY);
            for (c, class) in self.classes.iter().enumerate() {
                if class_pass[c]
                    && let Some(rep) = class.members.first()
                {
                    multiplier[c] = w.host_multiplier(&self.hosts[*rep as usize]);
                    lowest = lowest.min(multiplier[c]);
                    highest = highest.max(multiplier[c]);
                }
            }
            if lowest == 0.0 && highest == 0.0 {
                continue;
            }
            active.push(Active {
                weigher: w.as_ref(),
                slot: slot(feature),
                minval: w.minval(),
                multiplier,
                lowest,
                highest,
                norm: Norm::new([0.0], None),
                raws: 0,
                zero_without: if feature == Feature::PerHost {
                    w.zero_without(spec)
                } else {
                    None
                },
                sparse: None,
                zero: clamp(0.0, w.minval()),
            });
        }

        let mut q = Query {
            ix: self,
            need: Need::new(&checks, &self.classes, &self.hosts, spec, ctx),
            class_pass,
            host_filters,
            spec,
            ctx,
            stamp: std::mem::take(&mut s.stamp),
            sparse_stamp: std::mem::take(&mut s.sparse_stamp),
            sparse_pos: std::mem::take(&mut s.sparse_pos),
            sparse_hosts: Vec::new(),
            epoch: s.epoch,
            heap: std::mem::take(&mut s.heap),
            last_direction: s.last_direction,
            misaligned: s.misaligned,
        };
        let out = if active
            .iter()
            .any(|a| a.slot.is_none() && a.zero_without.is_none())
        {
            q.scan(
                &mut active,
                &mut s.candidates,
                &mut s.per_host,
                top,
                all_best_ties,
            )
        } else {
            q.branch_and_bound(&mut active, top, all_best_ties)
        };
        s.class_pass = q.class_pass;
        s.stamp = q.stamp;
        s.sparse_stamp = q.sparse_stamp;
        s.sparse_pos = q.sparse_pos;
        s.heap = q.heap;
        s.last_direction = q.last_direction;
        s.misaligned = q.misaligned;
        out
    }
}

/// One decision's view of the index.
struct Query<'a> {
    ix: &'a HostIndex,
    need: Need,
    class_pass: Vec<bool>,
    host_filters: Vec<&'a dyn Filter>,
    spec: &'a SelectHostsRequested,
    ctx: &'a Context,
    stamp: Vec<u32>,
    epoch: u32,
    sparse_stamp: Vec<u32>,
    sparse_pos: Vec<u32>,
    /// The hosts holding an instance some sparse weigher counts.
    sparse_hosts: Vec<u32>,
    heap: BinaryHeap<(u64, u32, u32)>,
    last_direction: Option<[f64; 6]>,
    misaligned: f64,
}

impl Query<'_> {
    /// Whether the host passes every filter (remembered for the decision).
    fn is_candidate(&mut self, id: u32) -> bool {
        let i = id as usize;
        let stamp = self.stamp[i];
        if stamp >> 1 == self.epoch {
            return stamp & 1 == 1;
        }
        let ix = self.ix;
        let ok = self.class_pass[ix.class_of[i] as usize]
            && self.need.row(&ix.rows[i], ix.class_of[i])
            && self
                .host_filters
                .iter()
                .all(|f| f.host_passes(&ix.hosts[i], self.spec, self.ctx));
        self.stamp[i] = (self.epoch << 1) | u32::from(ok);
        ok
    }

    /// Whether some host under the node may pass the filters.
    fn open(&self, n: u32) -> bool {
        let sum = &self.ix.tree.nodes[n as usize].sum;
        (sum.class == MIXED || self.class_pass.get(sum.class as usize) == Some(&true))
            && self.need.node(sum)
    }

    /// The candidates' largest (or smallest) value of a tracked metric;
    /// `None` when no host passes.
    fn extreme(&mut self, slot: usize, largest: bool) -> Option<f64> {
        let ix = self.ix;
        let edge = |n: u32| {
            let sum = &ix.tree.nodes[n as usize].sum;
            if largest { sum.hi[slot] } else { sum.lo[slot] }
        };
        let order = |v: f64| if largest { key(v) } else { !key(v) };
        let mut heap = std::mem::take(&mut self.heap);
        heap.clear();
        for &r in &ix.tree.roots {
            if self.open(r) {
                heap.push((order(edge(r)), 0, r));
            }
        }
        let mut best: Option<f64> = None;
        while let Some((_, _, n)) = heap.pop() {
            if let Some(b) = best
                && (if largest { edge(n) <= b } else { edge(n) >= b })
            {
                break;
            }
            let node = &ix.tree.nodes[n as usize];
            match node.children {
                None => {
                    for id in &ix.tree.perm[node.start as usize..node.end as usize] {
                        if self.is_candidate(*id) {
                            let v = ix.rows[*id as usize].feat[slot];
                            best = Some(match best {
                                None => v,
                                Some(b) if largest => b.max(v),
                                Some(b) => b.min(v),
                            });
                        }
                    }
                }
                Some(children) => {
                    for c in children {
                        if self.open(c) {
                            heap.push((order(edge(c)), 0, c));
                        }
                    }
                }
            }
        }
        self.heap = heap;
        best
    }

    /// A candidate's total, as [`crate::weighers::weigh`] sums it.
    #[inline]
    fn total(&self, id: u32, active: &[Active<'_>], per_host: Option<(&[Vec<f64>], usize)>) -> f64 {
        let i = id as usize;
        let row = &self.ix.rows[i];
        let class = self.ix.class_of[i] as usize;
        let mut total = 0.0;
        for a in active {
            let raw = match (a.slot, &a.sparse, per_host) {
                (Some(s), _, _) => clamp(row.feat[s], a.minval),
                (None, Some(raws), _) => {
                    if self.sparse_stamp[i] == self.epoch {
                        raws[self.sparse_pos[i] as usize]
                    } else {
                        a.zero
                    }
                }
                (None, None, Some((raws, k))) => raws[a.raws][k],
                (None, None, None) => unreachable!("per-host metrics are weighed in the scan"),
            };
            total += a.multiplier[class] * a.norm.apply(raw);
        }
        total
    }

    /// The most any candidate under the node can total: each term at the
    /// worst corner of multiplier × normalised metric, summed in weigher
    /// order (float rounding is monotone, so no total exceeds it).
    fn bound(&self, n: u32, active: &[Active<'_>]) -> f64 {
        let sum = &self.ix.tree.nodes[n as usize].sum;
        let mut bound = 0.0;
        for a in active {
            let (mlo, mhi) = if (sum.class as usize) < a.multiplier.len() {
                let m = a.multiplier[sum.class as usize];
                (m, m)
            } else {
                (a.lowest, a.highest)
            };
            // A sparse weigher's hosts are weighed before the descent: every
            // host left weighs `zero` on it.
            let (xlo, xhi) = match a.slot {
                Some(s) => (
                    a.norm.apply(clamp(sum.lo[s], a.minval)),
                    a.norm.apply(clamp(sum.hi[s], a.minval)),
                ),
                None => (a.norm.apply(a.zero), a.norm.apply(a.zero)),
            };
            let corners = [mlo * xlo, mlo * xhi, mhi * xlo, mhi * xhi];
            if corners.iter().any(|c| c.is_nan()) {
                return f64::INFINITY;
            }
            bound += corners.into_iter().fold(f64::NEG_INFINITY, f64::max);
        }
        if bound.is_nan() {
            return f64::INFINITY;
        }
        match self.projected_bound(sum, active) {
            Some(p) => bound.min(p),
            None => bound,
        }
    }

    /// A bound from the node's largest projection on the index's direction
    /// `u`, tight when the request weighs in about that direction.
    ///
    /// Projections are of the metrics raised to 0 (as the RAM, CPU, disk
    /// and I/O weighers clamp them; the other metrics are never negative).
    /// Where every host of the node weighs with the same multipliers and
    /// each weigher clamps at 0 or sees no negative metric here, a total is
    /// (in real arithmetic) `Σ a·v⁺ − c` with `a = multiplier / range` and
    /// `c = Σ multiplier × min / range`. Written as `λ·(u·v⁺) + Σ (a −
    /// λu)·v⁺`, its first part is at most `λ × proj` (λ ≥ 0), each term of
    /// the second at most its coefficient times the node's largest (or, if
    /// negative, smallest) metric. The float total differs from the real
    /// one, and so does this bound's evaluation, by far less than the
    /// margin added.
    fn projected_bound(&self, sum: &Summary, active: &[Active<'_>]) -> Option<f64> {
        let u = &self.ix.direction;
        let lo = sum.lo.map(|v| v.max(0.0));
        let hi = sum.hi.map(|v| v.max(0.0));
        let mut a = [0.0f64; 6];
        let mut c = 0.0;
        let mut slack = 1.0;
        for w in active {
            let m = if (sum.class as usize) < w.multiplier.len() {
                w.multiplier[sum.class as usize]
            } else if w.lowest == w.highest {
                w.highest
            } else {
                return None;
            };
            let Some(s) = w.slot else {
                // Sparse: the same term for every host left.
                let term = m * w.norm.apply(w.zero);
                c -= term;
                slack += term.abs();
                continue;
            };
            match w.minval {
                Some(0.0) => {}
                None if sum.lo[s] >= 0.0 => {}
                _ => return None,
            }
            let (min, range) = (w.norm.min(), w.norm.range());
            if range.is_nan() || range <= 0.0 {
                continue;
            }
            a[s] += m / range;
            c += m * min / range;
            slack += m.abs() * (w.norm.apply(lo[s]).abs() + w.norm.apply(hi[s]).abs());
        }
        // The bound is convex and piecewise linear in λ, least at λ = 0 or
        // where some coefficient of the second part changes sign.
        let eval = |lambda: f64| {
            let mut bound = -c;
            let mut slack = slack + c.abs();
            if lambda > 0.0 {
                bound += lambda * sum.proj;
                slack += lambda * sum.proj.abs();
                for k in 0..TRACKED.len() {
                    slack += lambda * (u[k] * hi[k]).abs();
                }
            }
            for k in 0..TRACKED.len() {
                let beta = a[k] - lambda * u[k];
                let v = if beta > 0.0 {
                    hi[k]
                } else if beta < 0.0 {
                    lo[k]
                } else {
                    continue;
                };
                bound += beta * v;
                slack += (beta * v).abs();
            }
            (bound, slack)
        };
        let mut best = eval(0.0);
        for k in 0..TRACKED.len() {
            if u[k] != 0.0 && a[k] / u[k] > 0.0 {
                let b = eval(a[k] / u[k]);
                if b.0 < best.0 {
                    best = b;
                }
            }
        }
        let (bound, slack) = best;
        let bound = bound + slack * 1e-9;
        bound.is_finite().then_some(bound)
    }

    /// For weighers that are 0 on hosts holding none of some instances: finds
    /// those hosts (`sparse_hosts`), weighs them, and normalises each such
    /// weigher over them and, if some candidate holds none, 0. `None` when
    /// no host passes.
    fn weigh_sparse_hosts(&mut self, active: &mut [Active<'_>]) -> Option<()> {
        let ix = self.ix;
        self.sparse_hosts.clear();
        if active.iter().all(|a| a.slot.is_some()) {
            return Some(());
        }
        for a in active.iter() {
            let Some(instances) = a.zero_without else {
                continue;
            };
            for instance in instances {
                for h in ix.instance_hosts.get(instance).into_iter().flatten() {
                    let i = *h as usize;
                    if self.sparse_stamp[i] != self.epoch {
                        self.sparse_stamp[i] = self.epoch;
                        self.sparse_pos[i] = self.sparse_hosts.len() as u32;
                        self.sparse_hosts.push(*h);
                    }
                }
            }
        }
        let outside = self.candidate_outside_sparse_hosts();
        for a in active.iter_mut().filter(|a| a.slot.is_none()) {
            let raws: Vec<f64> = self
                .sparse_hosts
                .iter()
                .map(|h| {
                    clamp(
                        a.weigher
                            .weight(&ix.hosts[*h as usize], self.spec, self.ctx),
                        a.minval,
                    )
                })
                .collect();
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for (k, v) in raws.iter().enumerate() {
                if self.is_candidate(self.sparse_hosts[k]) {
                    lo = lo.min(*v);
                    hi = hi.max(*v);
                }
            }
            if outside {
                lo = lo.min(a.zero);
                hi = hi.max(a.zero);
            }
            if lo > hi {
                return None;
            }
            a.norm = Norm::from_bounds(lo, hi, a.minval);
            a.sparse = Some(raws);
        }
        Some(())
    }

    /// Whether some candidate is not one of `sparse_hosts`.
    fn candidate_outside_sparse_hosts(&mut self) -> bool {
        let ix = self.ix;
        let mut stack: Vec<u32> = ix.tree.roots.clone();
        while let Some(n) = stack.pop() {
            if !self.open(n) {
                continue;
            }
            let node = &ix.tree.nodes[n as usize];
            match node.children {
                None => {
                    for id in &ix.tree.perm[node.start as usize..node.end as usize] {
                        if self.sparse_stamp[*id as usize] != self.epoch && self.is_candidate(*id) {
                            return true;
                        }
                    }
                }
                Some(children) => stack.extend(children),
            }
        }
        false
    }

    /// Normalisation bounds from the tree, then the best `top` by a
    /// best-first descent on [`Query::bound`].
    fn branch_and_bound(
        &mut self,
        active: &mut Vec<Active<'_>>,
        top: usize,
        all_best_ties: bool,
    ) -> Option<(Vec<u32>, usize)> {
        let ix = self.ix;
        self.weigh_sparse_hosts(active)?;
        for a in active.iter_mut() {
            let Some(s) = a.slot else { continue };
            let hi = clamp(self.extreme(s, true)?, a.minval);
            let lo = match a.minval {
                Some(m) => m,
                None => self.extreme(s, false)?,
            };
            a.norm = Norm::from_bounds(lo, hi, a.minval);
        }
        let mut direction = [0.0f64; 6];
        for w in active.iter() {
            if let Some(s) = w.slot
                && w.norm.range() > 0.0
            {
                direction[s] += w.highest / w.norm.range();
            }
        }
        if direction.iter().all(|d| d.is_finite()) {
            self.last_direction = Some(direction);
            let off = misalignment(&direction, &ix.direction, &ix.magnitude);
            self.misaligned = 0.9 * self.misaligned + if off > 1e-4 { 0.1 } else { 0.0 };
        }
        // A weigher every candidate weighs 0 on adds nothing to any total.
        active.retain(|a| !a.norm.is_constant() || !a.multiplier.iter().all(|m| m.is_finite()));

        let mut best: Vec<(f64, u32, u32)> = Vec::with_capacity(top + 1);
        let mut met: Vec<(f64, u32, u32)> = Vec::new();
        for k in 0..self.sparse_hosts.len() {
            let id = self.sparse_hosts[k];
            if self.is_candidate(id) {
                let entry = (self.total(id, active, None), ix.rank[id as usize], id);
                offer(&mut best, top, entry);
                if all_best_ties {
                    met.push(entry);
                }
            }
        }

        let mut heap = std::mem::take(&mut self.heap);
        heap.clear();
        let item = |q: &Self, n: u32, active: &[Active<'_>]| {
            let rank = ix.tree.nodes[n as usize].sum.min_rank;
            (key(q.bound(n, active)), u32::MAX - rank, n)
        };
        for &r in &ix.tree.roots {
            if self.open(r) {
                heap.push(item(self, r, active));
            }
        }
        while let Some((k, inv_rank, n)) = heap.pop() {
            let bound = unkey(k);
            if best.len() == top {
                let kth = best[top - 1];
                if kth.0 > bound {
                    break;
                }
                // A node that can at best tie the `top`th, with every host
                // after it in name order, cannot displace it (unless every
                // host tying for the best is wanted).
                if kth.0 == bound
                    && u32::MAX - inv_rank > kth.1
                    && !(all_best_ties && best[0].0 == bound)
                {
                    continue;
                }
            }
            let node = &ix.tree.nodes[n as usize];
            match node.children {
                None => {
                    for id in &ix.tree.perm[node.start as usize..node.end as usize] {
                        if self.sparse_stamp[*id as usize] != self.epoch && self.is_candidate(*id) {
                            let entry = (self.total(*id, active, None), ix.rank[*id as usize], *id);
                            offer(&mut best, top, entry);
                            if all_best_ties {
                                met.push(entry);
                            }
                        }
                    }
                }
                Some(children) => {
                    for c in children {
                        if self.open(c) {
                            heap.push(item(self, c, active));
                        }
                    }
                }
            }
        }
        self.heap = heap;
        if best.is_empty() {
            return None;
        }
        let ties = met
            .into_iter()
            .filter(|m| m.0 == best[0].0)
            .map(|m| (m.1, m.2))
            .collect();
        Some(finish(best, ties, all_best_ties))
    }

    /// Every candidate weighed (for weighers whose metric rows do not hold).
    fn scan(
        &mut self,
        active: &mut [Active<'_>],
        candidates: &mut Vec<u32>,
        per_host: &mut Vec<Vec<f64>>,
        top: usize,
        all_best_ties: bool,
    ) -> Option<(Vec<u32>, usize)> {
        let ix = self.ix;
        candidates.clear();
        let mut stack: Vec<u32> = ix.tree.roots.clone();
        while let Some(n) = stack.pop() {
            if !self.open(n) {
                continue;
            }
            let node = &ix.tree.nodes[n as usize];
            match node.children {
                None => {
                    for id in &ix.tree.perm[node.start as usize..node.end as usize] {
                        if self.is_candidate(*id) {
                            candidates.push(*id);
                        }
                    }
                }
                Some(children) => stack.extend(children),
            }
        }
        if candidates.is_empty() {
            return None;
        }
        // Built-in metrics: one pass for every bound.
        let mut lo = [f64::INFINITY; TRACKED.len()];
        let mut hi = [f64::NEG_INFINITY; TRACKED.len()];
        for id in candidates.iter() {
            let row = &ix.rows[*id as usize];
            for k in 0..TRACKED.len() {
                lo[k] = lo[k].min(row.feat[k]);
                hi[k] = hi[k].max(row.feat[k]);
            }
        }
        let mut slots = 0;
        for a in active.iter_mut() {
            let minval = a.minval;
            if let Some(i) = a.slot {
                // Clamping is monotone: the clamped bounds are the bounds clamped.
                a.norm = Norm::from_bounds(clamp(lo[i], minval), clamp(hi[i], minval), minval);
            } else {
                if per_host.len() <= slots {
                    per_host.push(Vec::new());
                }
                let raw = &mut per_host[slots];
                raw.clear();
                raw.extend(candidates.iter().map(|id| {
                    clamp(
                        a.weigher
                            .weight(&ix.hosts[*id as usize], self.spec, self.ctx),
                        minval,
                    )
                }));
                a.norm = Norm::new(raw.iter().copied(), minval);
                a.raws = slots;
                slots += 1;
            }
        }
        let mut best = Vec::with_capacity(top + 1);
        let mut ties = Vec::new();
        let totals: Vec<f64> = candidates
            .iter()
            .enumerate()
            .map(|(k, id)| self.total(*id, active, Some((per_host, k))))
            .collect();
        for (k, id) in candidates.iter().enumerate() {
            offer(&mut best, top, (totals[k], ix.rank[*id as usize], *id));
        }
        if all_best_ties {
            ties = candidates
                .iter()
                .zip(totals.iter())
                .filter(|(_, t)| **t == best[0].0)
                .map(|(id, _)| (ix.rank[*id as usize], *id))
                .collect();
        }
        Some(finish(best, ties, all_best_ties))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_state::fits;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn room_admits_exactly_what_fits() {
        let mut rng = StdRng::seed_from_u64(1);
        let ratios = [
            1.0,
            1.5,
            0.7,
            16.0,
            1.0 / 3.0,
            0.0,
            -1.0,
            2.5e-3,
            f64::INFINITY,
        ];
        for _ in 0..200_000 {
            let capacity = rng.random_range(0..70_000u64);
            let ratio = ratios[rng.random_range(0..ratios.len())];
            let used = rng.random_range(0..120_000u64);
            let want = rng.random_range(0..120_000u64);
            assert_eq!(
                i64::try_from(want).unwrap() <= room(capacity, ratio, used),
                fits(used, want, capacity, ratio),
                "capacity {capacity} × {ratio}, used {used}, want {want}"
            );
        }
        assert_eq!(room(10, f64::NAN, 0), i64::MIN, "nothing fits under NaN");
    }

    #[test]
    fn keys_order_floats_and_invert() {
        let values = [
            f64::NEG_INFINITY,
            -3.5,
            -0.0,
            0.0,
            1e-300,
            2.0,
            f64::INFINITY,
        ];
        for w in values.windows(2) {
            assert!(key(w[0]) <= key(w[1]), "{} {}", w[0], w[1]);
        }
        for v in values {
            assert_eq!(unkey(key(v)).to_bits(), v.to_bits());
        }
    }

    #[test]
    fn misalignment_ignores_scale_and_sees_turns() {
        let m = [1e5, 1e3, 1e6, 0.0, 0.0, 0.0];
        let u = [1e-5, 1e-3, 1e-6, 0.0, 0.0, 0.0];
        let scaled = u.map(|x| 3.0 * x);
        assert!(misalignment(&scaled, &u, &m) < 1e-12);
        let mut turned = u;
        turned[0] *= 1.1;
        assert!(misalignment(&turned, &u, &m) > 1e-3);
    }
}
