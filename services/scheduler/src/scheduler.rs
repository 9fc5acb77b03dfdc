//! The decision: filter, weigh, pick; then count the decision against the
//! chosen host until its claim result arrives.
//!
//! [`Scheduler::select_hosts`] decides through the host index's fast path;
//! [`Scheduler::select_hosts_brute_force`] is the reference — every filter on
//! every host, every weigher on every candidate, a full sort — and decides
//! the same.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use novalog_schemas::events::SelectHostsRequested;
use novalog_schemas::{ComputeFact, Event, HostEvent, HostUsage, Resources};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::filters::{Context, Filter};
use crate::host_state::{Aggregate, HostState};
use crate::index::HostIndex;
use crate::weighers::{Weigher, weigh};

/// How long a decision counts against a host with no claim result (the
/// instance was deleted before it reached the host, or the result was lost).
pub const PENDING_TTL_MS: i64 = 120_000;

struct Pending {
    host: String,
    resources: Resources,
    /// Whether the decision put the instance into the host's instance set
    /// (undone if the claim fails or never comes).
    added_instance: bool,
}

pub struct Scheduler {
    index: HostIndex,
    filters: Vec<Box<dyn Filter>>,
    weighers: Vec<Box<dyn Weigher>>,
    host_subset_size: usize,
    shuffle_best_same_weighed_hosts: bool,
    pub ctx: Context,
    aggregates: Vec<Arc<Aggregate>>,
    pending: HashMap<Uuid, Pending>,
    pending_order: VecDeque<(i64, Uuid)>,
}

impl Scheduler {
    pub fn new(
        filters: Vec<Box<dyn Filter>>,
        weighers: Vec<Box<dyn Weigher>>,
        host_subset_size: usize,
        ctx: Context,
    ) -> Self {
        Scheduler {
            index: HostIndex::new(&ctx),
            filters,
            weighers,
            host_subset_size: host_subset_size.max(1),
            shuffle_best_same_weighed_hosts: false,
            ctx,
            aggregates: Vec::new(),
            pending: HashMap::new(),
            pending_order: VecDeque::new(),
        }
    }

    /// Nova's `shuffle_best_same_weighed_hosts`: hosts tying for the best
    /// weight are shuffled before the pick.
    pub fn with_shuffle_best_same_weighed_hosts(mut self, on: bool) -> Self {
        self.shuffle_best_same_weighed_hosts = on;
        self
    }

    // ---- hosts ----

    pub fn host(&self, name: &str) -> Option<&HostState> {
        self.index.get(name)
    }

    /// Every known host, in no particular order.
    pub fn hosts(&self) -> impl Iterator<Item = &HostState> {
        self.index.iter()
    }

    pub fn num_hosts(&self) -> usize {
        self.index.len()
    }

    /// Adds or replaces a host (e.g. from the store at start); its aggregate
    /// membership comes from the scheduler's aggregates.
    pub fn insert_host(&mut self, mut h: HostState) {
        h.aggregates = self.aggregates_of(&h.name);
        self.index.insert(h);
    }

    /// Changes a host (enabled, metrics, allocation ratio overrides, ...).
    /// Returns whether the host is known.
    pub fn update_host(&mut self, name: &str, f: impl FnOnce(&mut HostState)) -> bool {
        match self.index.id(name) {
            Some(id) => {
                self.index.update(id, f);
                true
            }
            None => false,
        }
    }

    // ---- aggregates ----

    pub fn aggregates(&self) -> &[Arc<Aggregate>] {
        &self.aggregates
    }

    /// Replaces every aggregate; each host's membership follows.
    pub fn set_aggregates(&mut self, aggregates: Vec<Aggregate>) {
        self.aggregates = aggregates.into_iter().map(Arc::new).collect();
        let names: Vec<String> = self.index.iter().map(|h| h.name.clone()).collect();
        for name in names {
            let member_of = self.aggregates_of(&name);
            if let Some(id) = self.index.id(&name) {
                self.index.update(id, |h| h.aggregates = member_of);
            }
        }
    }

    fn aggregates_of(&self, host: &str) -> Vec<Arc<Aggregate>> {
        self.aggregates
            .iter()
            .filter(|a| a.hosts.contains(host))
            .cloned()
            .collect()
    }

    // ---- facts ----

    /// Folds a fact about hosts. Returns the host whose state changed.
    pub fn observe(&mut self, event: &Event, at_ms: i64) -> Option<String> {
        match event {
            Event::Host(e) => self.observe_host(e, at_ms),
            Event::ComputeFact(f) => self.observe_compute(f),
            // Aggregates (on `catalog`) are folded by the service; the
            // other topics say nothing about hosts.
            Event::Catalog(_)
            | Event::Intent(_)
            | Event::Instance(_)
            | Event::Scheduler(_)
            | Event::Compute(_)
            | Event::DeadLetter(_)
            | Event::Billing(_) => None,
        }
    }

    fn observe_host(&mut self, event: &HostEvent, at_ms: i64) -> Option<String> {
        match event {
            HostEvent::HostRegistered(r) => {
                match self.index.id(&r.host) {
                    Some(id) => self.index.update(id, |h| h.reregister(r, at_ms)),
                    None => self.insert_host(HostState::from_registration(r, at_ms)),
                }
                Some(r.host.clone())
            }
            // The ComputeFilter skips a host whose service an operator
            // disabled or forced down.
            HostEvent::ServiceUpdated(st) => self.with_load(&st.host, |h| {
                h.enabled = !(st.disabled || st.forced_down);
            }),
            HostEvent::ServiceDeleted { host } => self.with_load(host, |h| {
                h.enabled = false;
                h.service_deleted = true;
            }),
            HostEvent::HostHeartbeat { host, usage } => self.with_load(host, |h| {
                h.last_heartbeat_ms = h.last_heartbeat_ms.max(at_ms);
                h.observe_usage(*usage);
            }),
        }
    }

    fn observe_compute(&mut self, fact: &ComputeFact) -> Option<String> {
        match fact {
            // Migration and rebuild facts carry the host's usage after them.
            // Those that put the instance on their host (the destination's
            // claim, the landed migration, a rebuild or evacuation there)
            // add it themselves, so the host's instances are a fold of the
            // facts, whoever decided.
            ComputeFact::ResizeClaimSucceeded(f)
            | ComputeFact::MigrationFinishedOnDest(f)
            | ComputeFact::InstanceRebuilt(f) => {
                self.answer_pending(f.instance_id, &f.host, true);
                self.with_load(&f.host, |h| {
                    h.instances.insert(f.instance_id);
                    h.observe_usage(f.usage);
                })
            }
            ComputeFact::ResizeClaimFailed(f)
            | ComputeFact::MigrationConfirmedOnSource(f)
            | ComputeFact::MigrationRevertedOnDest(f)
            | ComputeFact::DiskMigratedAndPoweredOff(f)
            | ComputeFact::RevertFinishedOnSource(f)
            | ComputeFact::InstanceLiveMigrated(f)
            | ComputeFact::EvacuatedInstanceCleanedUp(f)
            | ComputeFact::MigrationStepFailed(f) => {
                self.answer_pending(f.instance_id, &f.host, false);
                self.with_load(&f.host, |h| h.observe_usage(f.usage))
            }
            ComputeFact::ClaimSucceeded {
                instance_id,
                host,
                usage,
                ..
            } => {
                self.answer_pending(*instance_id, host, true);
                self.with_load(host, |h| {
                    h.instances.insert(*instance_id);
                    h.building.insert(*instance_id);
                    h.observe_usage(*usage);
                })
            }
            ComputeFact::ClaimFailed {
                instance_id,
                host,
                usage,
                ..
            }
            | ComputeFact::SpawnFailed {
                instance_id,
                host,
                usage,
                ..
            } => {
                self.answer_pending(*instance_id, host, false);
                self.with_load(host, |h| {
                    h.instances.remove(instance_id);
                    h.building.remove(instance_id);
                    h.failed_builds = h.failed_builds.saturating_add(1);
                    h.observe_usage(*usage);
                })
            }
            ComputeFact::InstanceSpawned {
                instance_id, host, ..
            } => self.with_load(host, |h| {
                h.building.remove(instance_id);
                h.failed_builds = 0;
            }),
            ComputeFact::InstanceDestroyed {
                instance_id,
                host,
                usage,
            } => self.with_load(host, |h| {
                h.instances.remove(instance_id);
                h.building.remove(instance_id);
                h.observe_usage(*usage);
            }),
            // Facts that change nothing the filters and weighers read.
            ComputeFact::ServerActionPerformed { .. }
            | ComputeFact::ServerActionFailed { .. }
            | ComputeFact::ConsoleEndpointReported { .. }
            | ComputeFact::SnapshotProgressed { .. }
            | ComputeFact::ConsoleOutputFetched { .. }
            | ComputeFact::PowerStateObserved { .. }
            | ComputeFact::RebuildSpawnStarted(_) => None,
        }
    }

    fn with_load(&mut self, host: &str, f: impl FnOnce(&mut HostState)) -> Option<String> {
        let id = self.index.id(host)?;
        self.index.update_load(id, f);
        Some(host.to_owned())
    }

    /// Observes a usage snapshot for `host` (kept for callers that fold
    /// usage alone).
    pub fn observe_usage(&mut self, host: &str, usage: HostUsage) -> Option<String> {
        self.with_load(host, |h| h.observe_usage(usage))
    }

    fn release(&mut self, instance: Uuid, p: Pending) {
        self.with_load(&p.host, |h| {
            h.remove_pending(p.resources);
            if p.added_instance {
                h.instances.remove(&instance);
                unpick(h, instance);
            }
        });
    }

    /// A fact of `host` about `instance` answers this scheduler's decision
    /// for it there, if any: the fact speaks for the instance from here on.
    /// `lands`: the fact itself puts the instance on the host; otherwise
    /// the instance the decision added goes with the decision.
    fn answer_pending(&mut self, instance: Uuid, host: &str, lands: bool) {
        if self.pending.get(&instance).is_some_and(|p| p.host == host)
            && let Some(p) = self.pending.remove(&instance)
        {
            self.with_load(&p.host, |h| {
                h.remove_pending(p.resources);
                if p.added_instance {
                    unpick(h, instance);
                    if !lands {
                        h.instances.remove(&instance);
                    }
                }
            });
        }
    }

    fn expire_pending(&mut self, now_ms: i64) {
        while let Some((at, id)) = self.pending_order.front().copied() {
            if now_ms - at < PENDING_TTL_MS {
                break;
            }
            self.pending_order.pop_front();
            if let Some(p) = self.pending.remove(&id) {
                self.release(id, p);
            }
        }
    }

    // ---- decisions ----

    /// The chosen host first, then up to `num_alternates` alternates, best
    /// first; or why no host fits.
    pub fn select_hosts(
        &mut self,
        spec: &SelectHostsRequested,
        now_ms: i64,
    ) -> Result<Vec<String>, String> {
        self.expire_pending(now_ms);
        self.ctx.now_ms = now_ms;
        if let Some(name) = &spec.requested_host {
            return self.select_requested(spec, name, now_ms);
        }
        let top = self
            .host_subset_size
            .saturating_add(spec.num_alternates as usize);
        let ranked = self.index.rank_hosts(
            &self.filters,
            &self.weighers,
            spec,
            &self.ctx,
            top,
            self.shuffle_best_same_weighed_hosts,
        );
        let Some((order, tied)) = ranked else {
            return Err(self.no_valid_host(spec));
        };
        let order: Vec<String> = order
            .iter()
            .map(|id| self.index.host(*id).name.clone())
            .collect();
        let hosts = self.pick(order, tied, spec);
        self.record(spec, &hosts[0], now_ms);
        Ok(hosts)
    }

    /// [`Scheduler::select_hosts`] the plain way: every filter on every host,
    /// every weigher on every candidate, a stable sort. The reference the
    /// fast path must equal.
    pub fn select_hosts_brute_force(
        &mut self,
        spec: &SelectHostsRequested,
        now_ms: i64,
    ) -> Result<Vec<String>, String> {
        self.expire_pending(now_ms);
        self.ctx.now_ms = now_ms;
        if let Some(name) = &spec.requested_host {
            return self.select_requested(spec, name, now_ms);
        }
        let ctx = &self.ctx;
        let sorted = self.index.sorted().to_vec();
        let candidates: Vec<&HostState> = sorted
            .iter()
            .map(|id| self.index.host(*id))
            .filter(|h| self.filters.iter().all(|f| f.host_passes(h, spec, ctx)))
            .collect();
        if candidates.is_empty() {
            return Err(self.no_valid_host(spec));
        }
        let weights = weigh(&self.weighers, &candidates, spec, ctx);
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by(|a, b| weights[*b].total_cmp(&weights[*a]));
        let tied = if self.shuffle_best_same_weighed_hosts {
            order
                .iter()
                .take_while(|i| weights[**i] == weights[order[0]])
                .count()
        } else {
            0
        };
        let order: Vec<String> = order
            .into_iter()
            .map(|i| candidates[i].name.clone())
            .collect();
        let hosts = self.pick(order, tied, spec);
        self.record(spec, &hosts[0], now_ms);
        Ok(hosts)
    }

    /// Nova's `requested_destination` (a create's 2.74 `host`): that host
    /// alone is a candidate, every filter still runs on it, and there are
    /// no alternates.
    fn select_requested(
        &mut self,
        spec: &SelectHostsRequested,
        name: &str,
        now_ms: i64,
    ) -> Result<Vec<String>, String> {
        let Some(host) = self.index.get(name) else {
            return Err(format!(
                "There are not enough hosts available: the requested host {name} is not known."
            ));
        };
        if let Some(f) = self
            .filters
            .iter()
            .find(|f| !f.host_passes(host, spec, &self.ctx))
        {
            return Err(format!(
                "There are not enough hosts available: the requested host {name} did not pass {}.",
                f.name()
            ));
        }
        let chosen = host.name.clone();
        self.record(spec, &chosen, now_ms);
        Ok(vec![chosen])
    }

    /// From hosts best first (the first `tied` tying for the best, to be
    /// shuffled): a random one of the best `host_subset_size`, then the
    /// alternates. Seeded by the request, so a decision is reproducible.
    fn pick(
        &self,
        mut order: Vec<String>,
        tied: usize,
        spec: &SelectHostsRequested,
    ) -> Vec<String> {
        let (hi, lo) = spec.request_id.as_u64_pair();
        let mut rng = StdRng::seed_from_u64(hi ^ lo);
        if tied > 1 {
            order[..tied].shuffle(&mut rng);
        }
        let subset = self.host_subset_size.min(order.len());
        let pick = if subset > 1 {
            rng.random_range(0..subset)
        } else {
            0
        };
        let chosen = order.remove(pick);
        // Bounded by the hosts ranked, not by the record's number.
        let mut hosts = Vec::with_capacity(1 + order.len().min(spec.num_alternates as usize));
        hosts.push(chosen);
        hosts.extend(order.into_iter().take(spec.num_alternates as usize));
        hosts
    }

    /// Counts the decision against the chosen host until its claim result.
    fn record(&mut self, spec: &SelectHostsRequested, chosen: &str, now_ms: i64) {
        if let Some(old) = self.pending.remove(&spec.instance_id) {
            self.release(spec.instance_id, old);
        }
        let instance = spec.instance_id;
        let resources = spec.resources;
        let added_instance = match self.index.id(chosen) {
            Some(id) => self.index.update_load(id, |h| {
                h.add_pending(resources);
                let added = h.instances.insert(instance);
                if added {
                    h.picked.push(instance);
                }
                added
            }),
            None => false,
        };
        self.pending.insert(
            instance,
            Pending {
                host: chosen.to_owned(),
                resources,
                added_instance,
            },
        );
        self.pending_order.push_back((now_ms, instance));
    }

    /// Why no host fits: how many hosts each filter kept, in order, up to
    /// the one that left none.
    fn no_valid_host(&self, spec: &SelectHostsRequested) -> String {
        let mut left: Vec<&HostState> = self.index.iter().collect();
        if left.is_empty() {
            return "There are not enough hosts available: no compute hosts are known.".into();
        }
        let known = left.len();
        let mut steps = Vec::new();
        for f in &self.filters {
            left.retain(|h| f.host_passes(h, spec, &self.ctx));
            steps.push(format!("{} kept {}", f.name(), left.len()));
            if left.is_empty() {
                break;
            }
        }
        format!(
            "There are not enough hosts available: {known} known; {}.",
            steps.join(", ")
        )
    }

    /// Decisions still awaiting a claim result, by instance.
    pub fn pending_decisions(&self) -> BTreeMap<Uuid, String> {
        self.pending
            .iter()
            .map(|(id, p)| (*id, p.host.clone()))
            .collect()
    }
}

/// Forgets that `instance` is on `h` by this scheduler's decision.
fn unpick(h: &mut HostState, instance: Uuid) {
    if let Some(i) = h.picked.iter().position(|id| *id == instance) {
        h.picked.swap_remove(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::{self, test_spec};
    use crate::host_state::test_host;
    use crate::weighers;
    use novalog_runtime::config::FilterSchedulerOptions;
    use novalog_schemas::migration::MigrationFact;

    fn scheduler(ram_multiplier: f64, hosts: &[&str]) -> Scheduler {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let opts = FilterSchedulerOptions {
            ram_weight_multiplier: ram_multiplier,
            ..FilterSchedulerOptions::default()
        };
        let mut s = Scheduler::new(
            filters::by_names(
                &names(&[
                    "RetryFilter",
                    "ComputeFilter",
                    "RamFilter",
                    "CoreFilter",
                    "DiskFilter",
                ]),
                &opts,
            )
            .unwrap(),
            weighers::by_names(&names(&["RAMWeigher"]), &opts).unwrap(),
            1,
            Context::default(),
        );
        for h in hosts {
            s.insert_host(test_host(h));
        }
        s
    }

    fn spec(n: u128, mb: u64) -> SelectHostsRequested {
        let mut s = test_spec(1, mb, 1);
        s.instance_id = Uuid::from_u128(n);
        s.request_id = Uuid::from_u128(n);
        s
    }

    const NOW: i64 = 1_000_000;

    fn usage(mb: u64, generation: u64) -> HostUsage {
        HostUsage {
            memory_mb_used: mb,
            vcpus_used: 1,
            disk_gb_used: 1,
            instances: 1,
            generation,
        }
    }

    #[test]
    fn a_requested_host_is_the_only_candidate_and_still_filtered() {
        let mut s = scheduler(1.0, &["a", "b", "c"]);
        let mut req = spec(1, 512);
        req.requested_host = Some("b".into());
        assert_eq!(s.select_hosts(&req, NOW).unwrap(), vec!["b".to_string()]);
        assert_eq!(
            s.select_hosts_brute_force(&req, NOW).unwrap(),
            vec!["b".to_string()]
        );
        req.requested_host = Some("nowhere".into());
        assert!(s.select_hosts(&req, NOW).unwrap_err().contains("nowhere"));
        // Filters still run: too much RAM for host b.
        let mut big = spec(2, 1 << 40);
        big.requested_host = Some("b".into());
        assert!(
            s.select_hosts(&big, NOW)
                .unwrap_err()
                .contains("did not pass RamFilter")
        );
    }

    #[test]
    fn returns_chosen_plus_alternates() {
        let mut s = scheduler(1.0, &["a", "b", "c", "d"]);
        let hosts = s.select_hosts(&spec(1, 512), NOW).unwrap();
        assert_eq!(hosts.len(), 3, "chosen + max_attempts-1 alternates");
        let mut unique = hosts.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 3);
    }

    #[test]
    fn spreading_uses_pending_decisions() {
        let mut s = scheduler(1.0, &["a", "b"]);
        let first = s.select_hosts(&spec(1, 4_096), NOW).unwrap()[0].clone();
        let second = s.select_hosts(&spec(2, 4_096), NOW).unwrap()[0].clone();
        assert_ne!(
            first, second,
            "the second decision sees the first one's RAM"
        );
    }

    #[test]
    fn stacking_fills_one_host() {
        let mut s = scheduler(-1.0, &["a", "b"]);
        let first = s.select_hosts(&spec(1, 1_024), NOW).unwrap()[0].clone();
        let second = s.select_hosts(&spec(2, 1_024), NOW).unwrap()[0].clone();
        assert_eq!(first, second);
    }

    #[test]
    fn claim_result_replaces_pending_with_reported_usage() {
        let mut s = scheduler(1.0, &["a"]);
        s.select_hosts(&spec(1, 4_096), NOW).unwrap();
        assert_eq!(s.host("a").unwrap().used_ram_mb(), 4_096);
        assert!(s.host("a").unwrap().instances.contains(&Uuid::from_u128(1)));
        s.observe(
            &Event::ComputeFact(ComputeFact::ClaimSucceeded {
                instance_id: Uuid::from_u128(1),
                host: "a".into(),
                attempt: 1,
                usage: usage(4_096, 1),
            }),
            NOW,
        );
        let a = s.host("a").unwrap();
        assert_eq!(a.used_ram_mb(), 4_096, "counted once, not twice");
        assert_eq!(a.pending_instances, 0);
        assert_eq!(a.num_io_ops(), 1, "building until spawned");
        s.observe(
            &Event::ComputeFact(ComputeFact::InstanceSpawned {
                instance_id: Uuid::from_u128(1),
                host: "a".into(),
                attempt: 1,
                power_state: novalog_schemas::PowerState::Running,
            }),
            NOW,
        );
        assert_eq!(s.host("a").unwrap().num_io_ops(), 0);
        assert!(s.pending_decisions().is_empty());
    }

    #[test]
    fn failed_builds_count_until_a_success() {
        let mut s = scheduler(1.0, &["a"]);
        let failed = |n: u128| {
            Event::ComputeFact(ComputeFact::ClaimFailed {
                instance_id: Uuid::from_u128(n),
                host: "a".into(),
                attempt: 1,
                reason: "full".into(),
                usage: HostUsage::default(),
            })
        };
        s.select_hosts(&spec(1, 1), NOW).unwrap();
        s.observe(&failed(1), NOW);
        s.observe(&failed(2), NOW);
        let a = s.host("a").unwrap();
        assert_eq!(a.failed_builds, 2);
        assert!(
            !a.instances.contains(&Uuid::from_u128(1)),
            "a failed claim leaves no instance"
        );
        assert_eq!(a.pending_instances, 0);
        s.observe(
            &Event::ComputeFact(ComputeFact::InstanceSpawned {
                instance_id: Uuid::from_u128(3),
                host: "a".into(),
                attempt: 1,
                power_state: novalog_schemas::PowerState::Running,
            }),
            NOW,
        );
        assert_eq!(s.host("a").unwrap().failed_builds, 0);
    }

    #[test]
    fn no_valid_host_when_full_and_pending_expires() {
        let mut s = scheduler(1.0, &["a"]); // 16 GiB × 1.5
        s.select_hosts(&spec(1, 24_576), NOW).unwrap();
        let why = s.select_hosts(&spec(2, 1), NOW).unwrap_err();
        assert_eq!(
            why,
            "There are not enough hosts available: 1 known; RetryFilter kept 1, ComputeFilter kept 1, RamFilter kept 0."
        );
        // The first decision is never answered: it stops counting eventually.
        s.update_host("a", |h| h.last_heartbeat_ms = NOW + PENDING_TTL_MS);
        assert!(s.select_hosts(&spec(3, 1), NOW + PENDING_TTL_MS).is_ok());
        assert!(!s.host("a").unwrap().instances.contains(&Uuid::from_u128(1)));
    }

    #[test]
    fn down_hosts_are_filtered() {
        let mut s = scheduler(1.0, &["a"]);
        assert!(s.select_hosts(&spec(1, 1), NOW + 61_000).is_err());
        let mut empty = scheduler(1.0, &[]);
        assert!(
            empty
                .select_hosts(&spec(1, 1), NOW)
                .unwrap_err()
                .contains("no compute hosts")
        );
    }

    #[test]
    fn disabled_or_forced_down_services_are_not_chosen() {
        use novalog_schemas::events::ServiceStatus;
        let mut s = scheduler(1.0, &["a", "b"]);
        let status = |host: &str, disabled, forced_down| {
            Event::Host(HostEvent::ServiceUpdated(Box::new(ServiceStatus {
                host: host.into(),
                disabled,
                disabled_reason: None,
                forced_down,
            })))
        };
        // Given a disabled and b forced down, nothing is chosen.
        s.observe(&status("a", true, false), NOW);
        s.observe(&status("b", false, true), NOW);
        assert!(s.select_hosts(&spec(1, 1), NOW).is_err());
        // When a is enabled again, it is the one chosen.
        s.observe(&status("a", false, false), NOW);
        assert_eq!(s.select_hosts(&spec(1, 1), NOW).unwrap()[0], "a");
    }

    #[test]
    fn a_deleted_service_comes_back_enabled_when_its_host_registers() {
        let mut s = scheduler(1.0, &["a"]);
        s.observe(
            &Event::Host(HostEvent::ServiceDeleted { host: "a".into() }),
            NOW,
        );
        assert!(s.select_hosts(&spec(1, 1), NOW).is_err());
        let reg = novalog_schemas::events::HostRegistered {
            host: "a".into(),
            capacity: Resources {
                vcpus: 8,
                memory_mb: 16_384,
                disk_gb: 100,
            },
            usage: HostUsage::default(),
            cpu_arch: "x86_64".into(),
            hypervisor_type: "fake".into(),
            hypervisor_version: 1,
            availability_zone: "nova".into(),
            capabilities: Default::default(),
            driver: "fake".into(),
        };
        s.observe(&Event::Host(HostEvent::HostRegistered(Box::new(reg))), NOW);
        assert!(s.select_hosts(&spec(1, 1), NOW).is_ok());
    }

    #[test]
    fn reregistration_keeps_pending_decisions() {
        let mut s = scheduler(1.0, &[]);
        let reg = novalog_schemas::events::HostRegistered {
            host: "a".into(),
            capacity: Resources {
                vcpus: 8,
                memory_mb: 16_384,
                disk_gb: 100,
            },
            usage: HostUsage::default(),
            cpu_arch: "x86_64".into(),
            hypervisor_type: "fake".into(),
            hypervisor_version: 1,
            availability_zone: "nova".into(),
            capabilities: Default::default(),
            driver: "fake".into(),
        };
        s.observe(
            &Event::Host(HostEvent::HostRegistered(Box::new(reg.clone()))),
            NOW,
        );
        s.select_hosts(&spec(1, 4_096), NOW).unwrap();
        s.observe(&Event::Host(HostEvent::HostRegistered(Box::new(reg))), NOW);
        assert_eq!(s.host("a").unwrap().used_ram_mb(), 4_096);
    }

    fn migration(n: u128, host: &str, generation: u64) -> Box<MigrationFact> {
        Box::new(MigrationFact {
            instance_id: Uuid::from_u128(n),
            migration_id: Uuid::from_u128(1_000 + n),
            host: host.into(),
            attempt: 1,
            power_state: novalog_schemas::PowerState::NoState,
            step: String::new(),
            reason: String::new(),
            usage: usage(512 * generation, generation),
        })
    }

    fn claimed(n: u128, host: &str, generation: u64) -> Event {
        Event::ComputeFact(ComputeFact::ClaimSucceeded {
            instance_id: Uuid::from_u128(n),
            host: host.into(),
            attempt: 1,
            usage: usage(512 * generation, generation),
        })
    }

    /// Every host's row as the store holds it (its bytes), by name.
    fn rows(s: &Scheduler) -> BTreeMap<String, Vec<u8>> {
        s.hosts()
            .map(|h| {
                let row = novalog_store::encode("hosts", &*h.as_stored()).unwrap();
                (h.name.clone(), row)
            })
            .collect()
    }

    #[test]
    fn the_stored_row_leaves_unanswered_picks_out() {
        let mut s = scheduler(1.0, &["a"]);
        s.select_hosts(&spec(1, 512), NOW).unwrap();
        let a = s.host("a").unwrap();
        assert!(a.instances.contains(&Uuid::from_u128(1)), "filters see it");
        assert!(
            !a.as_stored().instances.contains(&Uuid::from_u128(1)),
            "the row holds facts only"
        );
        s.observe(&claimed(1, "a", 1), NOW);
        let a = s.host("a").unwrap();
        assert!(a.picked.is_empty());
        assert!(a.as_stored().instances.contains(&Uuid::from_u128(1)));
    }

    #[test]
    fn a_migration_claim_puts_the_instance_on_its_destination_whoever_decided() {
        // Given one scheduler that decides and one that only reads the
        // facts (a replay, or a replica that answered other requests).
        let mut deciding = scheduler(1.0, &["a", "b"]);
        let mut reading = scheduler(1.0, &["a", "b"]);
        let both = |s: &mut Scheduler, e: Event| {
            s.observe(&e, NOW);
        };
        let boot = deciding.select_hosts(&spec(1, 512), NOW).unwrap()[0].clone();
        let other = if boot == "a" { "b" } else { "a" };
        for s in [&mut deciding, &mut reading] {
            both(s, claimed(1, &boot, 1));
        }
        assert_eq!(rows(&deciding), rows(&reading));
        // When the instance is resized to the other host.
        let mut resize = spec(1, 512);
        resize.request_id = Uuid::from_u128(77);
        resize.ignore_hosts = vec![boot.clone()];
        assert_eq!(deciding.select_hosts(&resize, NOW).unwrap()[0], other);
        assert_eq!(rows(&deciding), rows(&reading), "a pick is not stored");
        let facts = [
            ComputeFact::ResizeClaimSucceeded(migration(1, other, 2)),
            ComputeFact::DiskMigratedAndPoweredOff(migration(1, &boot, 3)),
            ComputeFact::MigrationFinishedOnDest(migration(1, other, 4)),
            ComputeFact::MigrationConfirmedOnSource(migration(1, &boot, 5)),
        ];
        for f in facts {
            for s in [&mut deciding, &mut reading] {
                both(s, Event::ComputeFact(f.clone()));
            }
            // Then both hold the same rows after every fact.
            assert_eq!(rows(&deciding), rows(&reading), "after {f:?}");
        }
        assert!(
            reading
                .host(other)
                .unwrap()
                .instances
                .contains(&Uuid::from_u128(1)),
            "the destination's claim put it there"
        );
    }

    #[test]
    fn a_failed_migration_claim_leaves_no_instance_on_the_destination() {
        let mut s = scheduler(1.0, &["a", "b"]);
        s.observe(&claimed(1, "a", 1), NOW);
        let mut resize = spec(1, 512);
        resize.ignore_hosts = vec!["a".into()];
        assert_eq!(s.select_hosts(&resize, NOW).unwrap()[0], "b");
        s.observe(
            &Event::ComputeFact(ComputeFact::ResizeClaimFailed(migration(1, "b", 2))),
            NOW,
        );
        let b = s.host("b").unwrap();
        assert!(!b.instances.contains(&Uuid::from_u128(1)));
        assert_eq!(b.pending_instances, 0);
        assert!(s.host("a").unwrap().instances.contains(&Uuid::from_u128(1)));
    }

    #[test]
    fn aggregates_apply_to_members() {
        let mut s = scheduler(1.0, &["a", "b"]);
        s.set_aggregates(vec![Aggregate {
            name: "gold".into(),
            metadata: [("tier".to_string(), "gold".to_string())].into(),
            hosts: ["b".to_string()].into(),
        }]);
        assert!(s.host("a").unwrap().aggregates.is_empty());
        assert_eq!(s.host("b").unwrap().aggregates[0].name, "gold");
        s.insert_host(test_host("b"));
        assert_eq!(
            s.host("b").unwrap().aggregates.len(),
            1,
            "membership survives replacement"
        );
    }

    #[test]
    fn host_subset_size_picks_among_the_best() {
        let mut s = scheduler(1.0, &["a", "b", "c", "d"]);
        s.host_subset_size = 4;
        let chosen: std::collections::BTreeSet<String> = (0..40)
            .map(|n| {
                let mut r = spec(100 + n, 1);
                r.num_alternates = 0;
                let hosts = s.select_hosts(&r, NOW).unwrap();
                s.observe(
                    &Event::ComputeFact(ComputeFact::ClaimFailed {
                        instance_id: r.instance_id,
                        host: hosts[0].clone(),
                        attempt: 1,
                        reason: "x".into(),
                        usage: HostUsage::default(),
                    }),
                    NOW,
                );
                hosts[0].clone()
            })
            .collect();
        assert!(
            chosen.len() > 1,
            "a random pick, not always the best: {chosen:?}"
        );
    }
}
