//! The fast path decides exactly as the brute force: on random clouds
//! (classes, aggregates, overrides, down and disabled hosts, metrics) and
//! random request streams (hints, groups, zones, images, extra specs),
//! through sequences of decisions, claim results, spawns, deletions,
//! heartbeats, re-registrations, aggregate changes and pending expiry.

use std::collections::{BTreeMap, BTreeSet};

use novalog_runtime::config::FilterSchedulerOptions;
use novalog_scheduler::filters::{self, Context};
use novalog_scheduler::scheduler::PENDING_TTL_MS;
use novalog_scheduler::{Aggregate, Scheduler, weighers};
use novalog_schemas::events::{
    HostRegistered, SelectHostsRequested, ServerGroupPolicy, ServerGroupSpec,
};
use novalog_schemas::{ComputeFact, Event, HostEvent, HostUsage, Resources};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

const OPTIONAL_FILTERS: [&str; 15] = [
    "RetryFilter",
    "SameHostFilter",
    "DifferentHostFilter",
    "AggregateInstanceExtraSpecsFilter",
    "AggregateMultiTenancyIsolation",
    "AggregateImagePropertiesIsolation",
    "AggregateIoOpsFilter",
    "AggregateNumInstancesFilter",
    "AggregateTypeAffinityFilter",
    "NumInstancesFilter",
    "IoOpsFilter",
    "IsolatedHostsFilter",
    "JsonFilter",
    "MetricsFilter",
    "ServerGroupAffinityFilter",
];

const ISOLATED_IMAGE: u128 = 0x1507;

fn pick<'a>(rng: &mut StdRng, v: &'a [&'a str]) -> &'a str {
    v.choose(rng).copied().unwrap()
}

fn options(rng: &mut StdRng) -> FilterSchedulerOptions {
    let d = FilterSchedulerOptions::default();
    let mut enabled = d.enabled_filters.clone();
    for f in OPTIONAL_FILTERS {
        if rng.random_bool(0.5) {
            enabled.push(f.to_string());
        }
    }
    let mult = |rng: &mut StdRng| *[-2.0, -1.0, 0.0, 0.5, 1.0, 3.0].choose(rng).unwrap();
    FilterSchedulerOptions {
        enabled_filters: enabled,
        weight_classes: vec!["all_weighers".into()],
        ram_weight_multiplier: mult(rng),
        cpu_weight_multiplier: mult(rng),
        disk_weight_multiplier: mult(rng),
        io_ops_weight_multiplier: mult(rng),
        num_instances_weight_multiplier: mult(rng),
        build_failure_weight_multiplier: *[0.0, 10.0, 1e6].choose(rng).unwrap(),
        soft_affinity_weight_multiplier: mult(rng),
        soft_anti_affinity_weight_multiplier: mult(rng),
        host_subset_size: rng.random_range(1..=3),
        shuffle_best_same_weighed_hosts: rng.random_bool(0.3),
        max_instances_per_host: rng.random_range(2..12),
        max_io_ops_per_host: rng.random_range(1..6),
        isolated_hosts: if rng.random_bool(0.5) {
            vec!["h03".into(), "h07".into()]
        } else {
            vec![]
        },
        isolated_images: if rng.random_bool(0.5) {
            vec![Uuid::from_u128(ISOLATED_IMAGE).to_string()]
        } else {
            vec![]
        },
        restrict_isolated_hosts_to_isolated_images: rng.random_bool(0.5),
        aggregate_image_properties_isolation_namespace: rng
            .random_bool(0.3)
            .then(|| "iso".to_string()),
        metrics_weight_setting: if rng.random_bool(0.4) {
            vec!["cpu=-1.0, mem=0.5".into()]
        } else {
            vec![]
        },
        ..d
    }
}

fn build(opts: &FilterSchedulerOptions) -> Scheduler {
    Scheduler::new(
        filters::by_names(&opts.enabled_filters, opts).unwrap(),
        weighers::by_names(&opts.weight_classes, opts).unwrap(),
        opts.host_subset_size,
        Context::default(),
    )
    .with_shuffle_best_same_weighed_hosts(opts.shuffle_best_same_weighed_hosts)
}

/// How varied a random cloud is.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// Hosts of many sizes and classes (mostly small classes).
    Mixed,
    /// Hosts of one size in few classes: large classes (a tree each) and
    /// many hosts tying on every metric.
    Uniform,
}

fn registration(rng: &mut StdRng, name: String, shape: Shape) -> HostRegistered {
    if shape == Shape::Uniform {
        let mut capabilities = BTreeMap::new();
        if rng.random_bool(0.3) {
            capabilities.insert("ssd".to_string(), "true".to_string());
        }
        return HostRegistered {
            host: name,
            capacity: Resources {
                vcpus: 4,
                memory_mb: 8_192,
                disk_gb: 40,
            },
            usage: HostUsage::default(),
            cpu_arch: "x86_64".into(),
            hypervisor_type: "fake".into(),
            hypervisor_version: 1,
            availability_zone: pick(rng, &["nova", "nova", "az2"]).into(),
            capabilities,
            driver: "fake".into(),
        };
    }
    let mut capabilities = BTreeMap::new();
    if rng.random_bool(0.4) {
        capabilities.insert("ssd".to_string(), pick(rng, &["true", "false"]).to_string());
    }
    if rng.random_bool(0.3) {
        capabilities.insert(
            "cpu_info".to_string(),
            r#"{"arch": "x86_64", "features": ["sse", "avx"]}"#.to_string(),
        );
    }
    HostRegistered {
        host: name,
        capacity: Resources {
            vcpus: *[2, 4, 8].choose(rng).unwrap(),
            memory_mb: *[2_048, 4_096, 8_192].choose(rng).unwrap(),
            disk_gb: *[10, 20, 40].choose(rng).unwrap(),
        },
        usage: HostUsage::default(),
        cpu_arch: pick(rng, &["x86_64", "x86_64", "aarch64"]).into(),
        hypervisor_type: pick(rng, &["fake", "fake", "kvm"]).into(),
        hypervisor_version: *[1, 6_002_001].choose(rng).unwrap(),
        availability_zone: pick(rng, &["nova", "nova", "az2"]).into(),
        capabilities,
        driver: "fake".into(),
    }
}

fn aggregates(rng: &mut StdRng, hosts: &[String], shape: Shape) -> Vec<Aggregate> {
    let metadata_choices: [(&str, &[&str]); 10] = [
        ("tier", &["gold", "silver, gold", "bronze"]),
        ("filter_tenant_id", &["p1", "p1, p2", "p3"]),
        ("ram_weight_multiplier", &["2.0", "-1.0", "junk"]),
        ("build_failure_weight_multiplier", &["10", "0"]),
        ("ssd", &["true"]),
        ("max_io_ops_per_host", &["1", "3", "2.5"]),
        ("max_instances_per_host", &["2", "6", "x"]),
        ("os_distro", &["ubuntu", "ubuntu, centos"]),
        ("iso.os_distro", &["centos"]),
        ("instance_type", &["m1.small", "m1.large, gpu", "gpu"]),
    ];
    let count = match shape {
        Shape::Mixed => rng.random_range(0..4),
        Shape::Uniform => rng.random_range(0..2),
    };
    (0..count)
        .map(|i| Aggregate {
            name: format!("agg{i}"),
            metadata: {
                let mut m = BTreeMap::new();
                for (k, vs) in &metadata_choices {
                    if rng.random_bool(0.4) {
                        m.insert(k.to_string(), vs.choose(rng).unwrap().to_string());
                    }
                }
                m
            },
            hosts: hosts
                .iter()
                .filter(|_| rng.random_bool(0.4))
                .cloned()
                .collect(),
        })
        .collect()
}

struct World {
    hosts: Vec<String>,
    usage: BTreeMap<String, HostUsage>,
    /// Decided or placed instances: id → (host, resources, claimed).
    instances: BTreeMap<Uuid, (String, Resources, bool)>,
    next: u128,
    now: i64,
}

fn request(rng: &mut StdRng, w: &mut World) -> SelectHostsRequested {
    w.next += 1;
    let id = Uuid::from_u64_pair(rng.random(), w.next as u64);
    let placed: Vec<Uuid> = w.instances.keys().copied().collect();
    let some_placed = |rng: &mut StdRng| -> Vec<Uuid> {
        placed
            .iter()
            .filter(|_| rng.random_bool(0.3))
            .copied()
            .collect()
    };
    let mut image_properties = BTreeMap::new();
    for (k, vs) in [
        ("architecture", &["x86_64", "aarch64", "AMD64"][..]),
        ("hypervisor_type", &["fake", "kvm"][..]),
        ("vm_mode", &["hvm", "xen"][..]),
        ("img_hv_requested_version", &[">= 6.0", "< 2"][..]),
        ("os_distro", &["ubuntu", "centos", "windows"][..]),
        ("iso.os_distro", &["centos", "ubuntu"][..]),
    ] {
        if rng.random_bool(0.15) {
            image_properties.insert(k.to_string(), vs.choose(rng).unwrap().to_string());
        }
    }
    let mut extra_specs = BTreeMap::new();
    for (k, vs) in [
        ("capabilities:ssd", &["true", "s== false"][..]),
        ("ssd", &["true"][..]),
        (
            "capabilities:cpu_info:features",
            &["<in> avx", "<in> sse4"][..],
        ),
        (
            "aggregate_instance_extra_specs:tier",
            &["gold", "<or> silver <or> bronze"][..],
        ),
        ("hw:cpu_policy", &["dedicated"][..]),
    ] {
        if rng.random_bool(0.12) {
            extra_specs.insert(k.to_string(), vs.choose(rng).unwrap().to_string());
        }
    }
    let mut scheduler_hints = BTreeMap::new();
    if rng.random_bool(0.15) {
        scheduler_hints.insert(
            "same_host".into(),
            some_placed(rng).iter().map(Uuid::to_string).collect(),
        );
    }
    if rng.random_bool(0.15) {
        scheduler_hints.insert(
            "different_host".into(),
            some_placed(rng).iter().map(Uuid::to_string).collect(),
        );
    }
    if rng.random_bool(0.15) {
        let q = pick(
            rng,
            &[
                r#"[">=", "$free_ram_mb", 2048]"#,
                r#"["and", ["<", "$num_instances", 3], ["=", "$hypervisor_type", "fake"]]"#,
                r#"["or", ["in", "$host", "h01", "h02"], ["not", ["<", "$metrics.cpu", 50]]]"#,
            ],
        );
        scheduler_hints.insert("query".into(), vec![q.to_string()]);
    }
    let server_group = rng.random_bool(0.3).then(|| {
        let members = some_placed(rng);
        let hosts: BTreeSet<String> = members.iter().map(|m| w.instances[m].0.clone()).collect();
        ServerGroupSpec {
            id: Uuid::from_u128(0x6e0),
            policy: *[
                ServerGroupPolicy::Affinity,
                ServerGroupPolicy::AntiAffinity,
                ServerGroupPolicy::SoftAffinity,
                ServerGroupPolicy::SoftAntiAffinity,
            ]
            .choose(rng)
            .unwrap(),
            max_server_per_host: rng.random_bool(0.5).then(|| rng.random_range(1..3)),
            hosts: hosts.into_iter().collect(),
            members,
        }
    });
    let az = pick(rng, &["", "", "", "nova", "az2", "nova:h02", ":h05"]);
    SelectHostsRequested {
        request_id: id,
        instance_id: id,
        project_id: pick(rng, &["p1", "p2"]).into(),
        resources: Resources {
            vcpus: rng.random_range(1..=4),
            memory_mb: *[256, 512, 1_024, 2_048, 4_096].choose(rng).unwrap(),
            disk_gb: *[1, 5, 10].choose(rng).unwrap(),
        },
        image_properties,
        extra_specs,
        availability_zone: (!az.is_empty()).then(|| az.to_string()),
        ignore_hosts: w
            .hosts
            .iter()
            .filter(|_| rng.random_bool(0.05))
            .cloned()
            .collect(),
        num_alternates: rng.random_range(0..4),
        scheduler_hints,
        server_group,
        image_id: rng
            .random_bool(0.8)
            .then(|| Uuid::from_u128(*[ISOLATED_IMAGE, 1, 2].choose(rng).unwrap())),
        flavor_name: pick(rng, &["m1.small", "m1.large", "gpu"]).into(),
        requested_host: None,
    }
}

/// Applies `event` to both schedulers.
fn both(a: &mut Scheduler, b: &mut Scheduler, event: Event, at: i64) {
    assert_eq!(a.observe(&event, at), b.observe(&event, at));
}

fn run_case(seed: u64, max_hosts: usize, steps: usize, shape: Shape) -> (usize, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let opts = options(&mut rng);
    let (mut fast, mut brute) = (build(&opts), build(&opts));
    let n_hosts = rng.random_range(1..=max_hosts);
    let mut w = World {
        hosts: Vec::new(),
        usage: BTreeMap::new(),
        instances: BTreeMap::new(),
        next: 0,
        now: 1_000_000,
    };
    // Names registered in a shuffled order, so dense order ≠ name order.
    let mut order: Vec<usize> = (0..n_hosts).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    for i in order {
        let name = format!("h{i:02}");
        let mut reg = registration(&mut rng, name.clone(), shape);
        if shape == Shape::Uniform && rng.random_bool(0.3) {
            // Overcommitted: less than no RAM free, which the RAM weigher
            // counts as none.
            reg.usage = HostUsage {
                memory_mb_used: rng.random_range(8_300..12_000),
                vcpus_used: 1,
                disk_gb_used: 1,
                instances: 1,
                generation: 1,
            };
        }
        w.usage.insert(name.clone(), reg.usage);
        both(
            &mut fast,
            &mut brute,
            Event::Host(HostEvent::HostRegistered(Box::new(reg))),
            w.now,
        );
        w.hosts.push(name);
    }
    let aggs = aggregates(&mut rng, &w.hosts, shape);
    fast.set_aggregates(aggs.clone());
    brute.set_aggregates(aggs);
    let overrides = match shape {
        Shape::Mixed => 0.2,
        Shape::Uniform => 0.02,
    };
    for name in &w.hosts {
        let enabled = rng.random_bool(0.9);
        let ratio = rng
            .random_bool(overrides)
            .then(|| *[1.0, 2.0, 4.0].choose(&mut rng).unwrap());
        let mut metrics = BTreeMap::new();
        if rng.random_bool(0.7) {
            metrics.insert("cpu".to_string(), f64::from(rng.random_range(0..100)));
        }
        if rng.random_bool(0.7) {
            metrics.insert("mem".to_string(), f64::from(rng.random_range(0..100)));
        }
        let late = rng.random_bool(0.1);
        let change = |h: &mut novalog_scheduler::HostState| {
            h.enabled = enabled;
            h.ram_allocation_ratio = ratio;
            h.cpu_allocation_ratio = ratio.map(|r| r * 2.0);
            h.metrics = metrics.clone();
            if late {
                h.last_heartbeat_ms -= 61_000;
            }
        };
        assert!(fast.update_host(name, change));
        assert!(brute.update_host(name, change));
    }

    let (mut decided, mut refused) = (0, 0);
    for step in 0..steps {
        match rng.random_range(0..100) {
            0..50 => {
                let spec = request(&mut rng, &mut w);
                let f = fast.select_hosts(&spec, w.now);
                let b = brute.select_hosts_brute_force(&spec, w.now);
                assert_eq!(
                    f, b,
                    "seed {seed} step {step}: fast ≠ brute force for {spec:#?}"
                );
                match f {
                    Ok(hosts) => {
                        decided += 1;
                        w.instances
                            .insert(spec.instance_id, (hosts[0].clone(), spec.resources, false));
                    }
                    Err(_) => refused += 1,
                }
            }
            50..65 => {
                // A claim result for an unanswered decision.
                let open: Vec<Uuid> = w
                    .instances
                    .iter()
                    .filter(|(_, v)| !v.2)
                    .map(|(k, _)| *k)
                    .collect();
                let Some(id) = open.choose(&mut rng).copied() else {
                    continue;
                };
                let (host, r, _) = w.instances[&id].clone();
                if rng.random_bool(0.75) {
                    let u = w.usage.get_mut(&host).unwrap();
                    u.add(r);
                    let usage = *u;
                    w.instances.get_mut(&id).unwrap().2 = true;
                    let e = Event::ComputeFact(ComputeFact::ClaimSucceeded {
                        instance_id: id,
                        host,
                        attempt: 1,
                        usage,
                    });
                    both(&mut fast, &mut brute, e, w.now);
                } else {
                    w.instances.remove(&id);
                    let usage = w.usage[&host];
                    let e = Event::ComputeFact(ComputeFact::ClaimFailed {
                        instance_id: id,
                        host,
                        attempt: 1,
                        reason: "x".into(),
                        usage,
                    });
                    both(&mut fast, &mut brute, e, w.now);
                }
            }
            65..75 => {
                let claimed: Vec<Uuid> = w
                    .instances
                    .iter()
                    .filter(|(_, v)| v.2)
                    .map(|(k, _)| *k)
                    .collect();
                let Some(id) = claimed.choose(&mut rng).copied() else {
                    continue;
                };
                let host = w.instances[&id].0.clone();
                if rng.random_bool(0.6) {
                    let e = Event::ComputeFact(ComputeFact::InstanceSpawned {
                        instance_id: id,
                        host,
                        attempt: 1,
                        power_state: novalog_schemas::PowerState::Running,
                    });
                    both(&mut fast, &mut brute, e, w.now);
                } else {
                    let r = w.instances.remove(&id).unwrap().1;
                    let u = w.usage.get_mut(&host).unwrap();
                    u.remove(r);
                    let usage = *u;
                    let e = if rng.random_bool(0.5) {
                        Event::ComputeFact(ComputeFact::InstanceDestroyed {
                            instance_id: id,
                            host,
                            usage,
                        })
                    } else {
                        Event::ComputeFact(ComputeFact::SpawnFailed {
                            instance_id: id,
                            host,
                            attempt: 1,
                            reason: "x".into(),
                            usage,
                        })
                    };
                    both(&mut fast, &mut brute, e, w.now);
                }
            }
            75..83 => {
                let host = w.hosts.choose(&mut rng).unwrap().clone();
                let usage = w.usage[&host];
                both(
                    &mut fast,
                    &mut brute,
                    Event::Host(HostEvent::HostHeartbeat { host, usage }),
                    w.now,
                );
            }
            83..88 => {
                // A re-registration, or a new host.
                let name = if rng.random_bool(0.5) {
                    w.hosts.choose(&mut rng).unwrap().clone()
                } else {
                    let name = format!("h{:02}", w.hosts.len());
                    w.hosts.push(name.clone());
                    w.usage.insert(name.clone(), HostUsage::default());
                    name
                };
                let mut reg = registration(&mut rng, name.clone(), shape);
                reg.usage = w.usage[&name];
                both(
                    &mut fast,
                    &mut brute,
                    Event::Host(HostEvent::HostRegistered(Box::new(reg))),
                    w.now,
                );
            }
            88..91 => {
                let aggs = aggregates(&mut rng, &w.hosts, shape);
                fast.set_aggregates(aggs.clone());
                brute.set_aggregates(aggs);
            }
            91 => {
                // The configured allocation ratios change.
                let ratio = |rng: &mut StdRng| *[1.0, 1.5, 2.0, 16.0].choose(rng).unwrap();
                let ctx = Context {
                    cpu_allocation_ratio: ratio(&mut rng),
                    ram_allocation_ratio: ratio(&mut rng),
                    disk_allocation_ratio: ratio(&mut rng),
                    ..fast.ctx.clone()
                };
                fast.ctx = ctx.clone();
                brute.ctx = ctx;
            }
            92..96 => w.now += rng.random_range(1..5_000),
            _ => {
                // Past the pending TTL (hosts stay up through heartbeats).
                w.now += PENDING_TTL_MS;
                w.instances.retain(|_, v| v.2);
                for host in w.hosts.clone() {
                    let usage = w.usage[&host];
                    both(
                        &mut fast,
                        &mut brute,
                        Event::Host(HostEvent::HostHeartbeat { host, usage }),
                        w.now,
                    );
                }
            }
        }
    }
    let hosts = |s: &Scheduler| {
        let mut v: Vec<_> = s.hosts().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    };
    assert_eq!(
        hosts(&fast),
        hosts(&brute),
        "seed {seed}: host states diverged"
    );
    (decided, refused)
}

#[test]
fn fast_path_equals_brute_force_on_small_clouds() {
    let (mut decided, mut refused) = (0, 0);
    for seed in 0..300 {
        let (d, r) = run_case(seed, 12, 60, Shape::Mixed);
        decided += d;
        refused += r;
    }
    assert!(
        decided > 2_000 && refused > 500,
        "both outcomes exercised: {decided} decided, {refused} refused"
    );
}

#[test]
fn fast_path_equals_brute_force_on_larger_clouds() {
    for seed in 1_000..1_040 {
        run_case(seed, 150, 200, Shape::Mixed);
    }
}

#[test]
fn fast_path_equals_brute_force_on_uniform_clouds() {
    let (mut decided, mut refused) = (0, 0);
    for seed in 2_000..2_060 {
        let (d, r) = run_case(seed, 300, 200, Shape::Uniform);
        decided += d;
        refused += r;
    }
    assert!(
        decided > 2_000 && refused > 100,
        "both outcomes exercised: {decided} decided, {refused} refused"
    );
}

#[test]
fn fast_path_equals_brute_force_on_the_bench_cloud() {
    let mut fast = novalog_scheduler::bench::cloud(500, 3);
    let mut brute = novalog_scheduler::bench::cloud(500, 3);
    let mut rng = StdRng::seed_from_u64(5);
    for n in 0..300 {
        let spec = novalog_scheduler::bench::request(&mut rng, n);
        let now = 1_000_000 + n as i64;
        assert_eq!(
            fast.select_hosts(&spec, now),
            brute.select_hosts_brute_force(&spec, now),
            "request {n}"
        );
    }
}

/// The benchmark's run, long enough for spreading to bring most hosts to
/// one level of free resources and to overcommit the small ones (where the
/// bounds are tightest and clamping matters).
#[test]
fn fast_path_equals_brute_force_through_a_long_benchmark_run() {
    let hosts = 300;
    let mut fast = novalog_scheduler::bench::cloud(hosts, 11);
    let mut brute = novalog_scheduler::bench::cloud(hosts, 11);
    let mut usage: BTreeMap<String, HostUsage> =
        fast.hosts().map(|h| (h.name.clone(), h.usage)).collect();
    let mut rng = StdRng::seed_from_u64(12);
    let (mut decided, mut overcommitted) = (0, 0);
    for n in 0..3_000u64 {
        let now = 1_000_000 + n as i64;
        let spec = novalog_scheduler::bench::request(&mut rng, n);
        let f = fast.select_hosts(&spec, now);
        assert_eq!(f, brute.select_hosts_brute_force(&spec, now), "request {n}");
        let Ok(chosen) = f else { continue };
        decided += 1;
        let host = chosen[0].clone();
        let u = usage.get_mut(&host).unwrap();
        u.add(spec.resources);
        for e in [
            Event::ComputeFact(ComputeFact::ClaimSucceeded {
                instance_id: spec.instance_id,
                host: host.clone(),
                attempt: 1,
                usage: *u,
            }),
            Event::ComputeFact(ComputeFact::InstanceSpawned {
                instance_id: spec.instance_id,
                host,
                attempt: 1,
                power_state: novalog_schemas::PowerState::Running,
            }),
        ] {
            both(&mut fast, &mut brute, e, now);
        }
    }
    for h in fast.hosts() {
        if h.free_ram_mb() < 0.0 {
            overcommitted += 1;
        }
    }
    assert!(
        decided > 2_000 && overcommitted > 10,
        "{decided} decided, {overcommitted} hosts overcommitted"
    );
}

/// The benchmark's cloud and request stream under random options, with the
/// benchmark's claims, spawns and deletions (so the trees are rebuilt as
/// load drifts) and every so often a failed claim.
#[test]
fn fast_path_equals_brute_force_on_the_bench_cloud_under_random_options() {
    for seed in 0..6u64 {
        let mut rng = StdRng::seed_from_u64(100 + seed);
        let mut opts = options(&mut rng);
        if seed % 2 == 0 {
            opts.weight_classes = FilterSchedulerOptions::default().weight_classes;
        }
        let hosts = 400;
        let mut fast = novalog_scheduler::bench::cloud_with(hosts, seed, &opts);
        let mut brute = novalog_scheduler::bench::cloud_with(hosts, seed, &opts);
        let mut usage: BTreeMap<String, HostUsage> =
            fast.hosts().map(|h| (h.name.clone(), h.usage)).collect();
        let mut live = std::collections::VecDeque::new();
        for n in 0..800u64 {
            let now = 1_000_000 + n as i64;
            let mut spec = novalog_scheduler::bench::request(&mut rng, n);
            if rng.random_bool(0.3) {
                // A group of recent instances, of any policy.
                let members: Vec<Uuid> = live
                    .iter()
                    .rev()
                    .take(6)
                    .map(|l: &(Uuid, String, Resources)| l.0)
                    .collect();
                let hosts: BTreeSet<String> =
                    live.iter().rev().take(6).map(|l| l.1.clone()).collect();
                spec.server_group = Some(ServerGroupSpec {
                    id: Uuid::from_u128(0x6e1),
                    policy: *[
                        ServerGroupPolicy::Affinity,
                        ServerGroupPolicy::AntiAffinity,
                        ServerGroupPolicy::SoftAffinity,
                        ServerGroupPolicy::SoftAntiAffinity,
                    ]
                    .choose(&mut rng)
                    .unwrap(),
                    max_server_per_host: None,
                    hosts: hosts.into_iter().collect(),
                    members,
                });
            }
            let f = fast.select_hosts(&spec, now);
            assert_eq!(
                f,
                brute.select_hosts_brute_force(&spec, now),
                "seed {seed} request {n}"
            );
            let Ok(chosen) = f else { continue };
            let host = chosen[0].clone();
            if rng.random_bool(0.05) {
                let e = Event::ComputeFact(ComputeFact::ClaimFailed {
                    instance_id: spec.instance_id,
                    host,
                    attempt: 1,
                    reason: "x".into(),
                    usage: usage[&chosen[0]],
                });
                both(&mut fast, &mut brute, e, now);
                continue;
            }
            let u = usage.get_mut(&host).unwrap();
            u.add(spec.resources);
            let e = Event::ComputeFact(ComputeFact::ClaimSucceeded {
                instance_id: spec.instance_id,
                host: host.clone(),
                attempt: 1,
                usage: *u,
            });
            both(&mut fast, &mut brute, e, now);
            if rng.random_bool(0.8) {
                let e = Event::ComputeFact(ComputeFact::InstanceSpawned {
                    instance_id: spec.instance_id,
                    host: host.clone(),
                    attempt: 1,
                    power_state: novalog_schemas::PowerState::Running,
                });
                both(&mut fast, &mut brute, e, now);
            }
            live.push_back((spec.instance_id, host, spec.resources));
            if live.len() > hosts / 2
                && let Some((id, host, r)) = live.pop_front()
            {
                let u = usage.get_mut(&host).unwrap();
                u.remove(r);
                let e = Event::ComputeFact(ComputeFact::InstanceDestroyed {
                    instance_id: id,
                    host,
                    usage: *u,
                });
                both(&mut fast, &mut brute, e, now);
            }
        }
    }
}
