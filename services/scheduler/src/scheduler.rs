//! The decision: filter, weigh, pick; then count the decision against the
//! chosen host until its claim result arrives.

use std::collections::{BTreeMap, HashMap, VecDeque};

use novalog_schemas::events::SelectHostsRequested;
use novalog_schemas::{Event, HostUsage, Resources};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::filters::{Context, Filter};
use crate::host_state::HostState;
use crate::weighers::{Weigher, weigh};

/// How long a decision counts against a host with no claim result (the
/// instance was deleted before it reached the host, or the result was lost).
const PENDING_TTL_MS: i64 = 120_000;

struct Pending {
    host: String,
    resources: Resources,
}

pub struct Scheduler {
    pub hosts: BTreeMap<String, HostState>,
    filters: Vec<Box<dyn Filter>>,
    weighers: Vec<Box<dyn Weigher>>,
    host_subset_size: usize,
    pub ctx: Context,
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
            hosts: BTreeMap::new(),
            filters,
            weighers,
            host_subset_size: host_subset_size.max(1),
            ctx,
            pending: HashMap::new(),
            pending_order: VecDeque::new(),
        }
    }

    /// Folds a fact about hosts. Returns the host whose state changed.
    pub fn observe(&mut self, event: &Event, at_ms: i64) -> Option<String> {
        match event {
            Event::HostRegistered(r) => {
                self.hosts.insert(r.host.clone(), HostState::from_registration(r, at_ms));
                Some(r.host.clone())
            }
            Event::HostHeartbeat { host, usage } => {
                let h = self.hosts.get_mut(host)?;
                h.last_heartbeat_ms = h.last_heartbeat_ms.max(at_ms);
                h.observe_usage(*usage);
                Some(host.clone())
            }
            Event::ClaimSucceeded {
                instance_id,
                host,
                usage,
                ..
            }
            | Event::ClaimFailed {
                instance_id,
                host,
                usage,
                ..
            } => {
                self.answer_pending(*instance_id, host);
                self.observe_usage(host, *usage)
            }
            Event::SpawnFailed { host, usage, .. } | Event::InstanceDestroyed { host, usage, .. } => {
                self.observe_usage(host, *usage)
            }
            _ => None,
        }
    }

    fn observe_usage(&mut self, host: &str, usage: HostUsage) -> Option<String> {
        let h = self.hosts.get_mut(host)?;
        h.observe_usage(usage);
        Some(host.to_owned())
    }

    fn answer_pending(&mut self, instance: Uuid, host: &str) {
        if self.pending.get(&instance).is_some_and(|p| p.host == host)
            && let Some(p) = self.pending.remove(&instance)
            && let Some(h) = self.hosts.get_mut(&p.host)
        {
            h.remove_pending(p.resources);
        }
    }

    fn expire_pending(&mut self, now_ms: i64) {
        while let Some((at, id)) = self.pending_order.front().copied() {
            if now_ms - at < PENDING_TTL_MS {
                break;
            }
            self.pending_order.pop_front();
            if let Some(p) = self.pending.remove(&id)
                && let Some(h) = self.hosts.get_mut(&p.host)
            {
                h.remove_pending(p.resources);
            }
        }
    }

    /// The chosen host first, then up to `num_alternates` alternates, best
    /// first; or why no host fits.
    pub fn select_hosts(&mut self, spec: &SelectHostsRequested, now_ms: i64) -> Result<Vec<String>, String> {
        self.expire_pending(now_ms);
        self.ctx.now_ms = now_ms;
        let ctx = &self.ctx;
        let candidates: Vec<&HostState> = self
            .hosts
            .values()
            .filter(|h| self.filters.iter().all(|f| f.host_passes(h, spec, ctx)))
            .collect();
        if candidates.is_empty() {
            return Err(format!(
                "There are not enough hosts available ({} known, none passed the filters).",
                self.hosts.len()
            ));
        }
        let weights = weigh(&self.weighers, &candidates, spec, ctx);
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        // Stable: equal weights keep host-name order, so decisions are
        // reproducible.
        order.sort_by(|a, b| weights[*b].total_cmp(&weights[*a]));
        let subset = self.host_subset_size.min(order.len());
        let mut rng = StdRng::seed_from_u64(spec.request_id.as_u64_pair().0);
        let pick = if subset > 1 { rng.random_range(0..subset) } else { 0 };
        let chosen = order.remove(pick);
        let mut hosts = vec![candidates[chosen].name.clone()];
        hosts.extend(
            order
                .into_iter()
                .take(spec.num_alternates as usize)
                .map(|i| candidates[i].name.clone()),
        );
        let chosen_name = hosts[0].clone();
        if let Some(h) = self.hosts.get_mut(&chosen_name) {
            h.add_pending(spec.resources);
        }
        if let Some(old) = self.pending.insert(
            spec.instance_id,
            Pending {
                host: chosen_name,
                resources: spec.resources,
            },
        ) && let Some(h) = self.hosts.get_mut(&old.host)
        {
            h.remove_pending(old.resources);
        }
        self.pending_order.push_back((now_ms, spec.instance_id));
        Ok(hosts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::{self, test_spec};
    use crate::host_state::test_host;
    use crate::weighers;

    fn scheduler(ram_multiplier: f64, hosts: &[&str]) -> Scheduler {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut s = Scheduler::new(
            filters::by_names(&names(&["RetryFilter", "ComputeFilter", "RamFilter", "CoreFilter", "DiskFilter"])).unwrap(),
            weighers::by_names(&names(&["RAMWeigher"]), ram_multiplier).unwrap(),
            1,
            Context::default(),
        );
        for h in hosts {
            s.hosts.insert(h.to_string(), test_host(h));
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

    #[test]
    fn returns_chosen_plus_alternates() {
        let mut s = scheduler(1.0, &["a", "b", "c", "d"]);
        let hosts = s.select_hosts(&spec(1, 512), NOW).unwrap();
        assert_eq!(hosts.len(), 3, "chosen + max_attempts-1 alternates");
        let mut unique = hosts.clone();
        unique.dedup();
        assert_eq!(unique.len(), 3);
    }

    #[test]
    fn spreading_uses_pending_decisions() {
        let mut s = scheduler(1.0, &["a", "b"]);
        let first = s.select_hosts(&spec(1, 4_096), NOW).unwrap()[0].clone();
        let second = s.select_hosts(&spec(2, 4_096), NOW).unwrap()[0].clone();
        assert_ne!(first, second, "the second decision sees the first one's RAM");
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
        assert_eq!(s.hosts["a"].used_ram_mb(), 4_096);
        let usage = HostUsage {
            memory_mb_used: 4_096,
            vcpus_used: 1,
            disk_gb_used: 1,
            instances: 1,
            generation: 1,
        };
        s.observe(
            &Event::ClaimSucceeded {
                instance_id: Uuid::from_u128(1),
                host: "a".into(),
                attempt: 1,
                usage,
            },
            NOW,
        );
        assert_eq!(s.hosts["a"].used_ram_mb(), 4_096, "counted once, not twice");
        assert_eq!(s.hosts["a"].pending_instances, 0);
    }

    #[test]
    fn no_valid_host_when_full_and_pending_expires() {
        let mut s = scheduler(1.0, &["a"]); // 16 GiB × 1.5
        s.select_hosts(&spec(1, 24_576), NOW).unwrap();
        assert!(s.select_hosts(&spec(2, 1), NOW).is_err());
        // The first decision is never answered: it stops counting eventually.
        s.hosts.get_mut("a").unwrap().last_heartbeat_ms = NOW + PENDING_TTL_MS;
        assert!(s.select_hosts(&spec(3, 1), NOW + PENDING_TTL_MS).is_ok());
    }

    #[test]
    fn down_hosts_are_filtered() {
        let mut s = scheduler(1.0, &["a"]);
        assert!(s.select_hosts(&spec(1, 1), NOW + 61_000).is_err());
    }
}
