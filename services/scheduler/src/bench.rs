//! Decisions per second and p99 decision latency on a synthetic cloud, with
//! the default filters and weighers (`FilterSchedulerOptions::default()`).
//!
//! The cloud: hosts of mixed sizes (16–64 vCPUs, 64–512 GiB, 1–4 TB), 10 %
//! in a second zone, 5 % aarch64, a third with an `ssd` capability, each
//! partly used. The stream: five flavors, some requests pinned to a zone, to
//! an architecture or to `capabilities:ssd`, two alternates each. After each
//! decision the claim succeeds and the instance spawns (the events the
//! scheduler folds), and once the cloud holds eight instances per host the
//! oldest is destroyed, so load stays steady however long the run.
//! Throughput counts all of that work; the latency is `select_hosts` alone.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use novalog_runtime::config::FilterSchedulerOptions;
use novalog_schemas::events::{HostRegistered, SelectHostsRequested};
use novalog_schemas::{ComputeFact, Event, HostEvent, HostUsage, Resources};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::filters::{self, Context};
use crate::scheduler::Scheduler;
use crate::weighers;

const T0: i64 = 1_000_000;

const FLAVORS: [(&str, u32, u64, u64); 5] = [
    ("m1.tiny", 1, 512, 1),
    ("m1.small", 1, 2_048, 20),
    ("m1.medium", 2, 4_096, 40),
    ("m1.large", 4, 8_192, 80),
    ("m1.xlarge", 8, 16_384, 160),
];

/// A scheduler with the default filters and weighers over `hosts` random
/// hosts (reproducible from `seed`).
pub fn cloud(hosts: usize, seed: u64) -> Scheduler {
    cloud_with(hosts, seed, &FilterSchedulerOptions::default())
}

/// The benchmark's cloud under other filters, weighers and options (the
/// property test runs the fast path against brute force on it).
pub fn cloud_with(hosts: usize, seed: u64, opts: &FilterSchedulerOptions) -> Scheduler {
    let mut s = Scheduler::new(
        filters::by_names(&opts.enabled_filters, opts).expect("known filters"),
        weighers::by_names(&opts.weight_classes, opts).expect("known weighers"),
        opts.host_subset_size,
        Context::default(),
    )
    .with_shuffle_best_same_weighed_hosts(opts.shuffle_best_same_weighed_hosts);
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..hosts {
        let capacity = Resources {
            vcpus: [16, 32, 48, 64][rng.random_range(0..4)],
            memory_mb: [65_536, 131_072, 262_144, 524_288][rng.random_range(0..4)],
            disk_gb: [1_000, 2_000, 4_000][rng.random_range(0..3)],
        };
        let fill = rng.random_range(0.0..0.6);
        let usage = HostUsage {
            vcpus_used: (f64::from(capacity.vcpus) * fill) as u32,
            memory_mb_used: (capacity.memory_mb as f64 * fill) as u64,
            disk_gb_used: (capacity.disk_gb as f64 * fill) as u64,
            instances: rng.random_range(0..10),
            generation: 1,
        };
        let mut capabilities = BTreeMap::new();
        if rng.random_bool(1.0 / 3.0) {
            capabilities.insert("ssd".to_string(), "true".to_string());
        }
        let reg = HostRegistered {
            host: format!("host-{i:06}"),
            capacity,
            usage,
            cpu_arch: if rng.random_bool(0.05) {
                "aarch64"
            } else {
                "x86_64"
            }
            .into(),
            hypervisor_type: "fake".into(),
            hypervisor_version: 1,
            availability_zone: if rng.random_bool(0.1) { "az2" } else { "nova" }.into(),
            capabilities,
            driver: "fake".into(),
        };
        s.observe(&Event::Host(HostEvent::HostRegistered(Box::new(reg))), T0);
    }
    s
}

/// A random request of the benchmark's stream.
pub fn request(rng: &mut StdRng, n: u64) -> SelectHostsRequested {
    let (flavor, vcpus, memory_mb, disk_gb) = FLAVORS[rng.random_range(0..FLAVORS.len())];
    let mut image_properties = BTreeMap::new();
    if rng.random_bool(0.1) {
        image_properties.insert("architecture".to_string(), "x86_64".to_string());
    }
    let mut extra_specs = BTreeMap::new();
    if rng.random_bool(0.05) {
        extra_specs.insert("capabilities:ssd".to_string(), "true".to_string());
    }
    let id = Uuid::from_u64_pair(n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, n);
    SelectHostsRequested {
        request_id: id,
        instance_id: id,
        project_id: "bench".into(),
        resources: Resources {
            vcpus,
            memory_mb,
            disk_gb,
        },
        image_properties,
        extra_specs,
        availability_zone: rng.random_bool(0.1).then(|| "nova".to_string()),
        ignore_hosts: Vec::new(),
        num_alternates: 2,
        scheduler_hints: BTreeMap::new(),
        server_group: None,
        image_id: None,
        flavor_name: flavor.into(),
        requested_host: None,
    }
}

/// Runs `decisions` decisions (after a short warm-up) on a cloud of `hosts`
/// hosts with the default filters and weighers. Returns (decisions per
/// second, p99 `select_hosts` latency in microseconds).
pub fn run(hosts: usize, decisions: usize) -> (f64, f64) {
    let mut s = cloud(hosts, 42);
    let mut rng = StdRng::seed_from_u64(7);
    let mut usage: BTreeMap<String, HostUsage> =
        s.hosts().map(|h| (h.name.clone(), h.usage)).collect();
    let mut live: VecDeque<(Uuid, String, Resources)> = VecDeque::new();
    let warmup = 100.min(decisions);
    let mut latencies = Vec::with_capacity(decisions);
    let mut started = Instant::now();
    for n in 0..(warmup + decisions) {
        if n == warmup {
            started = Instant::now();
        }
        let now = T0 + (n as i64) / 100;
        let spec = request(&mut rng, n as u64);
        let t = Instant::now();
        let result = s.select_hosts(&spec, now);
        let took = t.elapsed();
        if n >= warmup {
            latencies.push(took.as_secs_f64() * 1e6);
        }
        let Ok(chosen) = result else { continue };
        let host = chosen[0].clone();
        let u = usage.get_mut(&host).expect("chosen host is known");
        u.add(spec.resources);
        s.observe(
            &Event::ComputeFact(ComputeFact::ClaimSucceeded {
                instance_id: spec.instance_id,
                host: host.clone(),
                attempt: 1,
                usage: *u,
            }),
            now,
        );
        s.observe(
            &Event::ComputeFact(ComputeFact::InstanceSpawned {
                instance_id: spec.instance_id,
                host: host.clone(),
                attempt: 1,
                power_state: novalog_schemas::PowerState::Running,
            }),
            now,
        );
        live.push_back((spec.instance_id, host, spec.resources));
        if live.len() > hosts * 8
            && let Some((id, host, r)) = live.pop_front()
        {
            let u = usage.get_mut(&host).expect("known host");
            u.remove(r);
            s.observe(
                &Event::ComputeFact(ComputeFact::InstanceDestroyed {
                    instance_id: id,
                    host,
                    usage: *u,
                }),
                now,
            );
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let p99 = latencies
        .get((latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0);
    (decisions as f64 / elapsed.max(f64::MIN_POSITIVE), p99)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_run_reports_positive_figures() {
        let (per_s, p99) = run(50, 200);
        assert!(per_s > 0.0 && p99 > 0.0, "{per_s} {p99}");
    }

    #[test]
    fn cloud_is_reproducible() {
        let a: Vec<_> = cloud(20, 1)
            .hosts()
            .map(|h| (h.name.clone(), h.capacity))
            .collect();
        let b: Vec<_> = cloud(20, 1)
            .hosts()
            .map(|h| (h.name.clone(), h.capacity))
            .collect();
        assert_eq!(a, b);
    }
}
