//! The host index behind the fast path: hosts in a dense vector, grouped
//! into classes of identical static attributes, each with a compact record
//! of what capacity filters and weighers read.
//!
//! A decision then costs:
//! - class-scoped filters (zone, capabilities, image properties,
//!   aggregates) evaluated once per class, not per host — a class that
//!   fails drops all its hosts unseen;
//! - capacity and liveness checks on the compact records (a few integer
//!   comparisons per host, no maps, no pointer chasing), then host-scoped
//!   filters only for the hosts still standing, and only the filters the
//!   request triggers (hints, groups);
//! - built-in weigher metrics recomputed from the compact records, weighers
//!   that are zero for the request skipped, and a top-k selection instead of
//!   a sort.
//!
//! The result equals [`crate::Scheduler::select_hosts_brute_force`]: the same
//! arithmetic (the helpers in [`crate::host_state`]), the same
//! normalisation, and ties broken by host name as the brute force's stable
//! sort over name-ordered hosts does.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use novalog_schemas::events::SelectHostsRequested;

use crate::filters::{Check, Context, Filter, Scope};
use crate::host_state::{HostState, fits, free, free_scaled};
use crate::weighers::{Feature, Norm, Weigher, clamp};

/// What capacity checks and built-in weighers read, per host.
#[derive(Debug, Clone, Copy)]
struct Hot {
    used_vcpus: u64,
    used_ram: u64,
    used_disk: u64,
    cap_vcpus: u64,
    cap_ram: u64,
    cap_disk: u64,
    cpu_ratio: Option<f64>,
    ram_ratio: Option<f64>,
    disk_ratio: Option<f64>,
    last_heartbeat_ms: i64,
    num_instances: u32,
    io_ops: u32,
    failed_builds: u32,
    enabled: bool,
}

impl Hot {
    fn of(h: &HostState) -> Self {
        Hot {
            used_vcpus: h.used_vcpus(),
            used_ram: h.used_ram_mb(),
            used_disk: h.used_disk_gb(),
            cap_vcpus: u64::from(h.capacity.vcpus),
            cap_ram: h.capacity.memory_mb,
            cap_disk: h.capacity.disk_gb,
            cpu_ratio: h.cpu_allocation_ratio,
            ram_ratio: h.ram_allocation_ratio,
            disk_ratio: h.disk_allocation_ratio,
            last_heartbeat_ms: h.last_heartbeat_ms,
            num_instances: h.num_instances(),
            io_ops: h.num_io_ops(),
            failed_builds: h.failed_builds,
            enabled: h.enabled,
        }
    }

    #[inline]
    fn passes(&self, check: Check, spec: &SelectHostsRequested, ctx: &Context) -> bool {
        let r = &spec.resources;
        match check {
            Check::Up => {
                self.enabled && ctx.now_ms - self.last_heartbeat_ms <= ctx.service_down_time_ms
            }
            Check::Ram => fits(
                self.used_ram,
                r.memory_mb,
                self.cap_ram,
                self.ram_ratio.unwrap_or(ctx.ram_allocation_ratio),
            ),
            Check::Core => fits(
                self.used_vcpus,
                u64::from(r.vcpus),
                self.cap_vcpus,
                self.cpu_ratio.unwrap_or(ctx.cpu_allocation_ratio),
            ),
            Check::Disk => fits(
                self.used_disk,
                r.disk_gb,
                self.cap_disk,
                self.disk_ratio.unwrap_or(ctx.disk_allocation_ratio),
            ),
            Check::MaxInstances(max) => self.num_instances < max,
            Check::MaxIoOps(max) => self.io_ops < max,
        }
    }

    /// A built-in weigher metric, as the weigher computes it.
    #[inline]
    fn feature(&self, f: Feature, default_cpu_ratio: f64) -> f64 {
        match f {
            Feature::FreeRam => free(self.cap_ram, self.used_ram),
            Feature::FreeVcpus => free_scaled(
                self.cap_vcpus,
                self.cpu_ratio.unwrap_or(default_cpu_ratio),
                self.used_vcpus,
            ),
            Feature::FreeDiskMb => free(self.cap_disk, self.used_disk) * 1024.0,
            Feature::IoOps => f64::from(self.io_ops),
            Feature::NumInstances => f64::from(self.num_instances),
            Feature::FailedBuilds => f64::from(self.failed_builds),
            Feature::Zero | Feature::PerHost => 0.0,
        }
    }
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

/// The metrics kept sorted, for the threshold algorithm.
const TRACKED: [Feature; 6] = [
    Feature::FreeRam,
    Feature::FreeVcpus,
    Feature::FreeDiskMb,
    Feature::IoOps,
    Feature::NumInstances,
    Feature::FailedBuilds,
];

fn slot(f: Feature) -> Option<usize> {
    TRACKED.iter().position(|t| *t == f)
}

/// An order-preserving map of (non-NaN) floats onto integers.
fn key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

fn keys_of(hot: &Hot, default_cpu_ratio: f64) -> [u64; 6] {
    TRACKED.map(|f| key(hot.feature(f, default_cpu_ratio)))
}

/// Buffers reused across decisions.
#[derive(Default)]
struct Scratch {
    candidates: Vec<u32>,
    totals: Vec<f64>,
    per_host: Vec<Vec<f64>>,
    class_pass: Vec<bool>,
    seen: Vec<u32>,
    epoch: u32,
}

/// One active weigher of a decision.
struct Active<'a> {
    weigher: &'a dyn Weigher,
    feature: Feature,
    minval: Option<f64>,
    /// Multiplier per class (0 for classes that fail the filters).
    multiplier: Vec<f64>,
    /// Smallest and largest multiplier over the passing classes.
    lowest: f64,
    highest: f64,
    norm: Norm,
    /// Raw metrics per candidate, for [`Feature::PerHost`].
    slot: usize,
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
    hot: Vec<Hot>,
    class_of: Vec<u32>,
    pos_in_class: Vec<u32>,
    classes: Vec<Class>,
    class_ids: HashMap<ClassKey, u32>,
    /// Position of each host in name order; `sorted` is that order.
    rank: Vec<u32>,
    sorted: Vec<u32>,
    ranks_dirty: bool,
    /// Every host by each [`TRACKED`] metric, and its current keys.
    by_feature: Vec<BTreeSet<(u64, u32)>>,
    keys: Vec<[u64; 6]>,
    /// The default CPU allocation ratio the free-vCPU keys were made with.
    cpu_ratio: f64,
    scratch: Scratch,
}

impl HostIndex {
    pub fn new(cpu_allocation_ratio: f64) -> Self {
        HostIndex {
            hosts: Vec::new(),
            by_name: HashMap::new(),
            hot: Vec::new(),
            class_of: Vec::new(),
            pos_in_class: Vec::new(),
            classes: Vec::new(),
            class_ids: HashMap::new(),
            rank: Vec::new(),
            sorted: Vec::new(),
            ranks_dirty: false,
            by_feature: TRACKED.iter().map(|_| BTreeSet::new()).collect(),
            keys: Vec::new(),
            cpu_ratio: cpu_allocation_ratio,
            scratch: Scratch::default(),
        }
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
        let hot = Hot::of(&h);
        let keys = keys_of(&hot, self.cpu_ratio);
        for (set, k) in self.by_feature.iter_mut().zip(keys) {
            set.insert((k, id));
        }
        self.keys.push(keys);
        self.by_name.insert(h.name.clone(), id);
        self.hot.push(hot);
        self.hosts.push(h);
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

    fn resync(&mut self, id: u32) {
        let i = id as usize;
        let hot = Hot::of(&self.hosts[i]);
        let keys = keys_of(&hot, self.cpu_ratio);
        for (s, set) in self.by_feature.iter_mut().enumerate() {
            if keys[s] != self.keys[i][s] {
                set.remove(&(self.keys[i][s], id));
                set.insert((keys[s], id));
            }
        }
        self.keys[i] = keys;
        self.hot[i] = hot;
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

    fn refresh(&mut self, ctx: &Context) {
        if self.cpu_ratio != ctx.cpu_allocation_ratio {
            self.cpu_ratio = ctx.cpu_allocation_ratio;
            for id in 0..self.hosts.len() as u32 {
                self.resync(id);
            }
        }
        if !self.ranks_dirty {
            return;
        }
        let hosts = &self.hosts;
        let mut sorted: Vec<u32> = (0..hosts.len() as u32).collect();
        sorted.sort_unstable_by(|a, b| hosts[*a as usize].name.cmp(&hosts[*b as usize].name));
        self.rank = vec![0; hosts.len()];
        for (r, id) in sorted.iter().enumerate() {
            self.rank[*id as usize] = r as u32;
        }
        self.sorted = sorted;
        self.ranks_dirty = false;
    }

    /// Host ids in name order.
    pub fn sorted(&mut self) -> &[u32] {
        if self.ranks_dirty {
            let ctx = Context {
                cpu_allocation_ratio: self.cpu_ratio,
                ..Context::default()
            };
            self.refresh(&ctx);
        }
        &self.sorted
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
        scratch.seen.resize(self.hosts.len(), 0);
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
        let mut checks: Vec<Check> = Vec::new();
        for f in filters {
            match f.scope(spec, ctx) {
                Scope::All => {}
                Scope::Class => class_filters.push(f.as_ref()),
                Scope::Check(c) => checks.push(c),
                Scope::Host => host_filters.push(f.as_ref()),
            }
        }
        // Class-scoped filters once per class.
        s.class_pass.clear();
        s.class_pass.extend(self.classes.iter().map(|c| {
            c.members.first().is_some_and(|rep| {
                let rep = &self.hosts[*rep as usize];
                class_filters.iter().all(|f| f.host_passes(rep, spec, ctx))
            })
        }));
        let class_pass = &s.class_pass;
        let is_candidate = |id: u32| {
            let hot = &self.hot[id as usize];
            class_pass[self.class_of[id as usize] as usize]
                && checks.iter().all(|c| hot.passes(*c, spec, ctx))
                && host_filters
                    .iter()
                    .all(|f| f.host_passes(&self.hosts[id as usize], spec, ctx))
        };

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
                feature,
                minval: w.minval(),
                multiplier,
                lowest,
                highest,
                norm: Norm::new([0.0], None),
                slot: 0,
            });
        }

        let (seen, epoch) = (&mut s.seen, &mut s.epoch);
        if let Some(result) = self.threshold(
            &is_candidate,
            &mut active,
            ctx,
            top,
            all_best_ties,
            seen,
            epoch,
        ) {
            return result;
        }
        self.scan(
            &is_candidate,
            &mut active,
            &mut s.candidates,
            &mut s.totals,
            &mut s.per_host,
            spec,
            ctx,
            top,
            all_best_ties,
        )
    }

    /// A candidate's total from the compact records (no per-host weighers).
    #[inline]
    fn total(&self, id: u32, active: &[Active<'_>], per_host: Option<(&[Vec<f64>], usize)>) -> f64 {
        let hot = &self.hot[id as usize];
        let class = self.class_of[id as usize] as usize;
        let mut total = 0.0;
        for a in active {
            let raw = match (a.feature, per_host) {
                (Feature::PerHost, Some((raws, k))) => raws[a.slot][k],
                _ => clamp(hot.feature(a.feature, self.cpu_ratio), a.minval),
            };
            total += a.multiplier[class] * a.norm.apply(raw);
        }
        total
    }

    /// Every host through the filters, every candidate weighed.
    #[allow(clippy::too_many_arguments)]
    fn scan(
        &self,
        is_candidate: &dyn Fn(u32) -> bool,
        active: &mut [Active<'_>],
        candidates: &mut Vec<u32>,
        totals: &mut Vec<f64>,
        per_host: &mut Vec<Vec<f64>>,
        spec: &SelectHostsRequested,
        ctx: &Context,
        top: usize,
        all_best_ties: bool,
    ) -> Option<(Vec<u32>, usize)> {
        candidates.clear();
        for class in &self.classes {
            candidates.extend(class.members.iter().copied().filter(|id| is_candidate(*id)));
        }
        if candidates.is_empty() {
            return None;
        }
        // Built-in metrics: one pass for every bound.
        let mut lo = [f64::INFINITY; TRACKED.len()];
        let mut hi = [f64::NEG_INFINITY; TRACKED.len()];
        let used: Vec<usize> = TRACKED
            .iter()
            .enumerate()
            .filter(|(_, f)| active.iter().any(|a| a.feature == **f))
            .map(|(i, _)| i)
            .collect();
        for id in candidates.iter() {
            let hot = &self.hot[*id as usize];
            for &i in &used {
                let v = hot.feature(TRACKED[i], self.cpu_ratio);
                lo[i] = lo[i].min(v);
                hi[i] = hi[i].max(v);
            }
        }
        let mut slots = 0;
        for a in active.iter_mut() {
            let minval = a.minval;
            if let Some(i) = slot(a.feature) {
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
                        a.weigher.weight(&self.hosts[*id as usize], spec, ctx),
                        minval,
                    )
                }));
                a.norm = Norm::new(raw.iter().copied(), minval);
                a.slot = slots;
                slots += 1;
            }
        }
        totals.clear();
        for (k, id) in candidates.iter().enumerate() {
            totals.push(self.total(*id, active, Some((per_host, k))));
        }
        let mut best = Vec::with_capacity(top + 1);
        for (k, id) in candidates.iter().enumerate() {
            offer(&mut best, top, (totals[k], self.rank[*id as usize], *id));
        }
        let ties = if all_best_ties {
            candidates
                .iter()
                .zip(totals.iter())
                .filter(|(_, t)| **t == best[0].0)
                .map(|(id, _)| (self.rank[*id as usize], *id))
                .collect()
        } else {
            Vec::new()
        };
        Some(finish(best, ties, all_best_ties))
    }

    /// Fagin's threshold algorithm over the per-metric sorted sets: walk
    /// each weighed metric from its best end, weigh each host met, and stop
    /// once no host not yet met can beat (or tie into) the best `top`.
    /// Exact, because each bound term is at least what any unmet host's term
    /// can be and float arithmetic is monotone. `None` when it does not
    /// apply (per-host weighers, multipliers of both signs) or would visit
    /// too many hosts; the scan then decides.
    #[allow(clippy::too_many_arguments)]
    fn threshold(
        &self,
        is_candidate: &dyn Fn(u32) -> bool,
        active: &mut [Active<'_>],
        _ctx: &Context,
        top: usize,
        all_best_ties: bool,
        seen: &mut [u32],
        epoch: &mut u32,
    ) -> Option<Option<(Vec<u32>, usize)>> {
        if active.iter().any(|a| slot(a.feature).is_none()) {
            return None;
        }
        let budget = self.hosts.len() / 4 + 64;
        let mut visited = 0usize;
        let value = |id: u32, a: &Active<'_>| {
            clamp(
                self.hot[id as usize].feature(a.feature, self.cpu_ratio),
                a.minval,
            )
        };

        // Normalisation bounds: the largest (and, without minval, smallest)
        // metric among candidates, from the ends of the sorted sets.
        for a in active.iter_mut() {
            let set = &self.by_feature[slot(a.feature)?];
            let mut first = |it: &mut dyn Iterator<Item = &(u64, u32)>| -> Option<Option<f64>> {
                for (_, id) in it {
                    visited += 1;
                    if visited > budget {
                        return None;
                    }
                    if is_candidate(*id) {
                        return Some(Some(value(*id, a)));
                    }
                }
                Some(None)
            };
            let Some(hi) = first(&mut set.iter().rev())? else {
                return Some(None);
            };
            let lo = match a.minval {
                Some(m) => m,
                None => first(&mut set.iter())?.unwrap_or(hi),
            };
            a.norm = Norm::from_bounds(lo, hi, a.minval);
        }

        // Which end of each metric is best, and whether it can move the bound.
        struct Walk<'s> {
            active: usize,
            iter: Box<dyn Iterator<Item = &'s (u64, u32)> + 's>,
            last: f64,
        }
        let mut walks: Vec<Walk<'_>> = Vec::new();
        for (i, a) in active.iter().enumerate() {
            if a.norm.is_constant() {
                continue;
            }
            let set = &self.by_feature[slot(a.feature)?];
            let (iter, last): (Box<dyn Iterator<Item = &(u64, u32)>>, f64) = if a.lowest >= 0.0 {
                (Box::new(set.iter().rev()), f64::INFINITY)
            } else if a.highest <= 0.0 {
                (Box::new(set.iter()), f64::NEG_INFINITY)
            } else {
                return None;
            };
            walks.push(Walk {
                active: i,
                iter,
                last,
            });
        }
        let mut best: Vec<(f64, u32, u32)> = Vec::with_capacity(top + 1);
        let mut met: Vec<(f64, u32, u32)> = Vec::new();
        *epoch = epoch.wrapping_add(1);
        if *epoch == 0 {
            seen.fill(0);
            *epoch = 1;
        }
        if walks.is_empty() {
            // Every candidate weighs the same: name order decides.
            if all_best_ties {
                return None;
            }
            for id in &self.sorted {
                visited += 1;
                if visited > budget {
                    return None;
                }
                if is_candidate(*id) {
                    best.push((0.0, self.rank[*id as usize], *id));
                    if best.len() == top {
                        break;
                    }
                }
            }
            return Some((!best.is_empty()).then(|| finish(best, Vec::new(), false)));
        }
        'rounds: loop {
            for w in walks.iter_mut() {
                let Some((_, id)) = w.iter.next() else {
                    break 'rounds; // every host met
                };
                let id = *id;
                w.last = value(id, &active[w.active]);
                if seen[id as usize] == *epoch {
                    continue;
                }
                seen[id as usize] = *epoch;
                visited += 1;
                if visited > budget {
                    return None;
                }
                if is_candidate(id) {
                    let entry = (self.total(id, active, None), self.rank[id as usize], id);
                    offer(&mut best, top, entry);
                    if all_best_ties {
                        met.push(entry);
                    }
                }
            }
            // The most any host not yet met can total, summed in weigher order.
            let mut bound = 0.0;
            let mut w = walks.iter().peekable();
            for (i, a) in active.iter().enumerate() {
                let x = match w.peek() {
                    Some(walk) if walk.active == i => {
                        a.norm.apply(w.next().map_or(0.0, |w| w.last))
                    }
                    _ => a.norm.apply(if a.lowest >= 0.0 {
                        f64::INFINITY
                    } else {
                        f64::NEG_INFINITY
                    }),
                };
                bound += a.highest * x;
            }
            let kth = if best.len() == top {
                best[top - 1].0
            } else {
                f64::NEG_INFINITY
            };
            if kth > bound && (!all_best_ties || best[0].0 > bound) {
                break;
            }
        }
        if best.is_empty() {
            return Some(None);
        }
        let ties = met
            .into_iter()
            .filter(|m| m.0 == best[0].0)
            .map(|m| (m.1, m.2))
            .collect();
        Some(Some(finish(best, ties, all_best_ties)))
    }
}
