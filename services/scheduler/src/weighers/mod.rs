//! Host weighers, configured by name as in nova.conf's `weight_classes`.
//!
//! Each weigher returns a raw metric; [`weigh`] clamps it to the weigher's
//! `minval` (Nova's RAM, CPU, disk and I/O weighers use 0), normalises each
//! weigher's metrics to 0..1 across the candidates (from `minval`, or the
//! smallest metric, to the largest; all equal → 0), multiplies by the
//! host's multiplier (the configured one, or the smallest value an
//! aggregate of the host sets under the weigher's metadata key) and sums,
//! as Nova's `nova/weights.py` does. Higher totals win.
//!
//! [`Weigher::feature`] tells the fast path which built-in metric a weigher
//! is, so it can compute it from compact records; `weight` stays the
//! definition.

mod build_failure;
mod cpu;
mod disk;
mod io_ops;
mod metrics;
mod num_instances;
mod ram;
mod soft_affinity;
mod soft_anti_affinity;

use novalog_runtime::config::FilterSchedulerOptions;
use novalog_schemas::events::SelectHostsRequested;
use uuid::Uuid;

use crate::filters::{Context, class_name};
use crate::host_state::HostState;

pub use build_failure::BuildFailureWeigher;
pub use cpu::CpuWeigher;
pub use disk::DiskWeigher;
pub use io_ops::IoOpsWeigher;
pub use metrics::{MetricsWeigher, parse_weight_setting};
pub use num_instances::NumInstancesWeigher;
pub use ram::RamWeigher;
pub use soft_affinity::ServerGroupSoftAffinityWeigher;
pub use soft_anti_affinity::ServerGroupSoftAntiAffinityWeigher;

/// Which metric a weigher weighs, for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// [`HostState::free_ram_mb`].
    FreeRam,
    /// [`HostState::free_vcpus`].
    FreeVcpus,
    /// [`HostState::free_disk_mb`].
    FreeDiskMb,
    /// [`HostState::num_io_ops`].
    IoOps,
    /// [`HostState::num_instances`].
    NumInstances,
    /// `HostState::failed_builds`.
    FailedBuilds,
    /// 0 for every host: the weigher cannot change the order.
    Zero,
    /// Anything else: `weight` is called for each candidate.
    PerHost,
}

pub trait Weigher: Send + Sync {
    fn name(&self) -> &'static str;
    /// The configured multiplier (negated where Nova negates it).
    fn multiplier(&self) -> f64;
    /// The aggregate metadata key that overrides the multiplier per host.
    fn multiplier_key(&self) -> Option<&'static str> {
        None
    }
    /// The multiplier for `host`. Depends on the host's aggregates only.
    fn host_multiplier(&self, host: &HostState) -> f64 {
        match self.multiplier_key() {
            Some(key) => host.aggregate_min(key, self.multiplier()),
            None => self.multiplier(),
        }
    }
    /// Nova's `minval`: raw metrics are clamped to at least this, and
    /// normalised from it rather than from the smallest one.
    fn minval(&self) -> Option<f64> {
        None
    }
    /// The raw metric; larger is better before the multiplier.
    fn weight(&self, host: &HostState, spec: &SelectHostsRequested, ctx: &Context) -> f64;
    /// What `weight` computes for `spec`; [`Feature::PerHost`] is always correct.
    fn feature(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Feature {
        Feature::PerHost
    }
    /// For a [`Feature::PerHost`] weigher: instances such that `weight` is 0
    /// on every host holding none of them, so only their hosts need weighing.
    fn zero_without<'s>(&self, _spec: &'s SelectHostsRequested) -> Option<&'s [Uuid]> {
        None
    }
}

/// Every weigher, in Nova's `all_weighers` spirit.
pub const ALL_WEIGHERS: [&str; 9] = [
    "RAMWeigher",
    "CPUWeigher",
    "DiskWeigher",
    "IoOpsWeigher",
    "NumInstancesWeigher",
    "BuildFailureWeigher",
    "ServerGroupSoftAffinityWeigher",
    "ServerGroupSoftAntiAffinityWeigher",
    "MetricsWeigher",
];

/// Builds the weighers named in `names` (`all_weighers` for every one),
/// with their multipliers from `opts`; an unknown name is an error.
pub fn by_names(
    names: &[String],
    opts: &FilterSchedulerOptions,
) -> Result<Vec<Box<dyn Weigher>>, String> {
    let mut out: Vec<Box<dyn Weigher>> = Vec::new();
    for n in names {
        let n = class_name(n);
        if n == "all_weighers" {
            out.extend(by_names(&ALL_WEIGHERS.map(String::from), opts)?);
            continue;
        }
        out.push(match n {
            "RAMWeigher" | "RamWeigher" => Box::new(RamWeigher {
                multiplier: opts.ram_weight_multiplier,
            }),
            "CPUWeigher" | "CpuWeigher" => Box::new(CpuWeigher {
                multiplier: opts.cpu_weight_multiplier,
            }),
            "DiskWeigher" => Box::new(DiskWeigher {
                multiplier: opts.disk_weight_multiplier,
            }),
            "IoOpsWeigher" => Box::new(IoOpsWeigher {
                multiplier: opts.io_ops_weight_multiplier,
            }),
            "NumInstancesWeigher" => Box::new(NumInstancesWeigher {
                multiplier: opts.num_instances_weight_multiplier,
            }),
            "BuildFailureWeigher" => Box::new(BuildFailureWeigher {
                multiplier: opts.build_failure_weight_multiplier,
            }),
            "ServerGroupSoftAffinityWeigher" => Box::new(ServerGroupSoftAffinityWeigher {
                multiplier: opts.soft_affinity_weight_multiplier,
            }),
            "ServerGroupSoftAntiAffinityWeigher" => Box::new(ServerGroupSoftAntiAffinityWeigher {
                multiplier: opts.soft_anti_affinity_weight_multiplier,
            }),
            "MetricsWeigher" => Box::new(MetricsWeigher {
                setting: parse_weight_setting(&opts.metrics_weight_setting)?,
                multiplier: opts.metrics_weight_multiplier,
                weight_of_unavailable: opts.metrics_weight_of_unavailable,
            }),
            other => return Err(format!("unknown weigher {other:?}")),
        });
    }
    Ok(out)
}

/// One weigher's normalisation across the candidates.
#[derive(Debug, Clone, Copy)]
pub struct Norm {
    min: f64,
    range: f64,
}

impl Norm {
    /// From the candidates' (clamped) metrics: `minval` or their minimum, to
    /// their maximum.
    pub fn new(values: impl IntoIterator<Item = f64>, minval: Option<f64>) -> Self {
        let (lo, hi) = values
            .into_iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        Norm::from_bounds(lo, hi, minval)
    }

    /// From the smallest and largest (clamped) metric.
    pub fn from_bounds(lo: f64, hi: f64, minval: Option<f64>) -> Self {
        let min = minval.unwrap_or(lo);
        Norm {
            min,
            range: hi - min,
        }
    }

    /// What normalises to 0.
    pub fn min(&self) -> f64 {
        self.min
    }

    /// What a metric `min + range` normalises to 1 by.
    pub fn range(&self) -> f64 {
        self.range
    }

    /// Whether every metric normalises to 0.
    pub fn is_constant(&self) -> bool {
        self.range.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
    }

    #[inline]
    pub fn apply(&self, v: f64) -> f64 {
        if self.range > 0.0 {
            (v - self.min) / self.range
        } else {
            0.0
        }
    }
}

/// The raw metric clamped to `minval`.
#[inline]
pub fn clamp(v: f64, minval: Option<f64>) -> f64 {
    match minval {
        Some(m) => v.max(m),
        None => v,
    }
}

/// Min-max normalisation to 0..1; all-equal values normalise to 0.
pub fn normalize(values: &mut [f64]) {
    let norm = Norm::new(values.iter().copied(), None);
    for v in values.iter_mut() {
        *v = norm.apply(*v);
    }
}

/// Total weight of each candidate, in the candidates' order. A single
/// candidate is not weighed (Nova's shortcut).
pub fn weigh(
    weighers: &[Box<dyn Weigher>],
    hosts: &[&HostState],
    spec: &SelectHostsRequested,
    ctx: &Context,
) -> Vec<f64> {
    let mut total = vec![0.0; hosts.len()];
    if hosts.len() <= 1 {
        return total;
    }
    let mut raw = vec![0.0; hosts.len()];
    for w in weighers {
        let minval = w.minval();
        for (r, h) in raw.iter_mut().zip(hosts) {
            *r = clamp(w.weight(h, spec, ctx), minval);
        }
        let norm = Norm::new(raw.iter().copied(), minval);
        for ((t, r), h) in total.iter_mut().zip(&raw).zip(hosts) {
            *t += w.host_multiplier(h) * norm.apply(*r);
        }
    }
    total
}

#[cfg(test)]
pub(crate) fn weigh_one(
    w: impl Weigher + 'static,
    hosts: &[&HostState],
    spec: &SelectHostsRequested,
) -> Vec<f64> {
    weigh(
        &[Box::new(w) as Box<dyn Weigher>],
        hosts,
        spec,
        &Context::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_to_unit_range() {
        let mut v = vec![10.0, 20.0, 15.0];
        normalize(&mut v);
        assert_eq!(v, vec![0.0, 1.0, 0.5]);
        let mut same = vec![3.0, 3.0];
        normalize(&mut same);
        assert_eq!(same, vec![0.0, 0.0]);
    }

    #[test]
    fn minval_normalises_from_it() {
        let n = Norm::new([10.0, 20.0], Some(0.0));
        assert_eq!((n.apply(10.0), n.apply(20.0)), (0.5, 1.0));
        let same = Norm::new([20.0, 20.0], Some(0.0));
        assert_eq!(same.apply(20.0), 1.0, "equal but above minval: all 1");
        let zero = Norm::new([0.0, 0.0], Some(0.0));
        assert_eq!(zero.apply(0.0), 0.0);
        assert_eq!(clamp(-5.0, Some(0.0)), 0.0);
    }

    #[test]
    fn every_name_builds() {
        let opts = FilterSchedulerOptions::default();
        assert_eq!(
            by_names(&["all_weighers".into()], &opts).unwrap().len(),
            ALL_WEIGHERS.len()
        );
        assert_eq!(
            by_names(&opts.weight_classes, &opts).unwrap().len(),
            opts.weight_classes.len()
        );
        assert!(by_names(&["nova.scheduler.weights.ram.RAMWeigher".into()], &opts).is_ok());
        assert!(by_names(&["Nope".into()], &opts).is_err());
    }
}
