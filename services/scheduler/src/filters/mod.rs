//! Host filters, configured by name as in nova.conf's `enabled_filters`.
//! Each one file, each a pure `host_passes(host, spec, ctx)`.
//!
//! Besides `host_passes`, a filter says through [`Filter::scope`] what its
//! answer depends on for a given request, so the fast path
//! ([`crate::index`]) can skip it, evaluate it once per class of identical
//! hosts, or evaluate it on compact capacity records instead of calling it
//! for every host. `host_passes` stays the definition; the scope is a promise
//! about it that the property test checks.

mod affinity;
mod aggregate_image_properties_isolation;
mod aggregate_instance_extra_specs;
mod aggregate_io_ops;
mod aggregate_multitenancy_isolation;
mod aggregate_num_instances;
mod aggregate_type_affinity;
mod anti_affinity;
mod availability_zone;
mod compute;
mod compute_capabilities;
mod core;
mod different_host;
mod disk;
pub mod extra_specs_ops;
mod image_properties;
mod io_ops;
mod isolated_hosts;
mod json;
mod metrics;
mod num_instances;
mod ram;
mod retry;
mod same_host;

use novalog_runtime::config::FilterSchedulerOptions;
use novalog_schemas::events::SelectHostsRequested;

use crate::host_state::HostState;

pub use affinity::ServerGroupAffinityFilter;
pub use aggregate_image_properties_isolation::AggregateImagePropertiesIsolation;
pub use aggregate_instance_extra_specs::AggregateInstanceExtraSpecsFilter;
pub use aggregate_io_ops::AggregateIoOpsFilter;
pub use aggregate_multitenancy_isolation::AggregateMultiTenancyIsolation;
pub use aggregate_num_instances::AggregateNumInstancesFilter;
pub use aggregate_type_affinity::AggregateTypeAffinityFilter;
pub use anti_affinity::ServerGroupAntiAffinityFilter;
pub use availability_zone::AvailabilityZoneFilter;
pub use compute::ComputeFilter;
pub use compute_capabilities::ComputeCapabilitiesFilter;
pub use core::CoreFilter;
pub use different_host::DifferentHostFilter;
pub use disk::DiskFilter;
pub use image_properties::ImagePropertiesFilter;
pub use io_ops::IoOpsFilter;
pub use isolated_hosts::IsolatedHostsFilter;
pub use json::JsonFilter;
pub use metrics::MetricsFilter;
pub use num_instances::NumInstancesFilter;
pub use ram::RamFilter;
pub use retry::RetryFilter;
pub use same_host::SameHostFilter;

/// What filters and weighers may consult besides host and request.
#[derive(Debug, Clone)]
pub struct Context {
    pub now_ms: i64,
    pub service_down_time_ms: i64,
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            now_ms: 0,
            service_down_time_ms: 60_000,
            cpu_allocation_ratio: 16.0,
            ram_allocation_ratio: 1.5,
            disk_allocation_ratio: 1.0,
        }
    }
}

/// What a filter's answer depends on, for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every host passes.
    All,
    /// Only the host's class: `availability_zone`, `cpu_arch`,
    /// `hypervisor_type`, `hypervisor_version`, `capabilities` and
    /// `aggregates` (never its name, usage or instances).
    Class,
    /// A capacity or liveness check the fast path evaluates on its compact
    /// per-host records, with the same arithmetic as `host_passes`.
    Check(Check),
    /// Anything else: `host_passes` is called for the host.
    Host,
}

/// The capacity and liveness checks of [`Scope::Check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Enabled, and a heartbeat within `service_down_time`.
    Up,
    Ram,
    Core,
    Disk,
    /// Fewer instances than this.
    MaxInstances(u32),
    /// Fewer I/O-heavy tasks than this.
    MaxIoOps(u32),
    /// Fewer instances than the filter's [`Filter::class_limit`] for the
    /// host.
    ClassMaxInstances,
    /// Fewer I/O-heavy tasks than the filter's [`Filter::class_limit`] for
    /// the host.
    ClassMaxIoOps,
}

pub trait Filter: Send + Sync {
    fn name(&self) -> &'static str;
    fn host_passes(&self, host: &HostState, spec: &SelectHostsRequested, ctx: &Context) -> bool;
    /// What `host_passes` depends on for `spec`; [`Scope::Host`] is always
    /// correct.
    fn scope(&self, _spec: &SelectHostsRequested, _ctx: &Context) -> Scope {
        Scope::Host
    }
    /// For [`Check::ClassMaxInstances`] and [`Check::ClassMaxIoOps`]: the
    /// limit for `host`, which depends on its class only.
    fn class_limit(&self, _host: &HostState) -> i64 {
        i64::MAX
    }
}

/// The smallest of the host's aggregates' `key` values as integers, or
/// `default` when none sets it or one is not an integer (Nova's
/// `validate_num_values` with `cast_to=int`).
pub(crate) fn aggregate_int_min(host: &HostState, key: &str, default: i64) -> i64 {
    let mut min: Option<i64> = None;
    for a in &host.aggregates {
        if let Some(v) = a.metadata.get(key) {
            match v.trim().parse::<i64>() {
                Ok(x) => min = Some(min.map_or(x, |m| m.min(x))),
                Err(_) => return default,
            }
        }
    }
    min.unwrap_or(default)
}

/// A scheduler hint's values (empty when absent).
pub(crate) fn hint<'a>(spec: &'a SelectHostsRequested, key: &str) -> &'a [String] {
    spec.scheduler_hints.get(key).map_or(&[], Vec::as_slice)
}

/// Nova's class paths (`nova.scheduler.filters.ram_filter.RamFilter`) name
/// the same filter as the bare class name.
pub(crate) fn class_name(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// Builds the filters named in `names`; an unknown name is an error.
pub fn by_names(
    names: &[String],
    opts: &FilterSchedulerOptions,
) -> Result<Vec<Box<dyn Filter>>, String> {
    names
        .iter()
        .map(|n| -> Result<Box<dyn Filter>, String> {
            Ok(match class_name(n) {
                "RetryFilter" => Box::new(RetryFilter),
                "AvailabilityZoneFilter" => Box::new(AvailabilityZoneFilter),
                "ComputeFilter" => Box::new(ComputeFilter),
                "RamFilter" => Box::new(RamFilter),
                "CoreFilter" => Box::new(CoreFilter),
                "DiskFilter" => Box::new(DiskFilter),
                "ComputeCapabilitiesFilter" => Box::new(ComputeCapabilitiesFilter),
                "ImagePropertiesFilter" => Box::new(ImagePropertiesFilter {
                    default_architecture: opts.image_properties_default_architecture.clone(),
                }),
                "ServerGroupAffinityFilter" => Box::new(ServerGroupAffinityFilter),
                "ServerGroupAntiAffinityFilter" => Box::new(ServerGroupAntiAffinityFilter),
                "SameHostFilter" => Box::new(SameHostFilter),
                "DifferentHostFilter" => Box::new(DifferentHostFilter),
                "AggregateInstanceExtraSpecsFilter" => Box::new(AggregateInstanceExtraSpecsFilter),
                "AggregateMultiTenancyIsolation" => Box::new(AggregateMultiTenancyIsolation),
                "AggregateImagePropertiesIsolation" => {
                    Box::new(AggregateImagePropertiesIsolation {
                        namespace: opts.aggregate_image_properties_isolation_namespace.clone(),
                        separator: opts.aggregate_image_properties_isolation_separator.clone(),
                    })
                }
                "AggregateIoOpsFilter" => Box::new(AggregateIoOpsFilter {
                    max_io_ops_per_host: opts.max_io_ops_per_host,
                }),
                "AggregateNumInstancesFilter" => Box::new(AggregateNumInstancesFilter {
                    max_instances_per_host: opts.max_instances_per_host,
                }),
                "AggregateTypeAffinityFilter" => Box::new(AggregateTypeAffinityFilter),
                "NumInstancesFilter" => Box::new(NumInstancesFilter {
                    max_instances_per_host: opts.max_instances_per_host,
                }),
                "IoOpsFilter" => Box::new(IoOpsFilter {
                    max_io_ops_per_host: opts.max_io_ops_per_host,
                }),
                "IsolatedHostsFilter" => Box::new(IsolatedHostsFilter {
                    isolated_hosts: opts.isolated_hosts.iter().cloned().collect(),
                    isolated_images: opts.isolated_images.iter().cloned().collect(),
                    restrict_isolated_hosts_to_isolated_images: opts
                        .restrict_isolated_hosts_to_isolated_images,
                }),
                "JsonFilter" => Box::new(JsonFilter),
                "MetricsFilter" => Box::new(MetricsFilter::new(&opts.metrics_weight_setting)?),
                other => return Err(format!("unknown filter {other:?}")),
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) fn test_spec(vcpus: u32, memory_mb: u64, disk_gb: u64) -> SelectHostsRequested {
    SelectHostsRequested {
        request_id: uuid::Uuid::nil(),
        instance_id: uuid::Uuid::nil(),
        project_id: "p".into(),
        resources: novalog_schemas::Resources {
            vcpus,
            memory_mb,
            disk_gb,
        },
        image_properties: Default::default(),
        extra_specs: Default::default(),
        availability_zone: None,
        ignore_hosts: Vec::new(),
        num_alternates: 2,
        scheduler_hints: Default::default(),
        server_group: None,
        image_id: None,
        flavor_name: "m1.small".into(),
        requested_host: None,
    }
}

#[cfg(test)]
pub(crate) fn test_group(
    policy: novalog_schemas::events::ServerGroupPolicy,
    members: &[u128],
) -> novalog_schemas::events::ServerGroupSpec {
    affinity::group(policy, &[], members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_name_builds_and_unknown_is_refused() {
        let names: Vec<String> = [
            "RetryFilter",
            "AvailabilityZoneFilter",
            "ComputeFilter",
            "RamFilter",
            "CoreFilter",
            "DiskFilter",
            "ComputeCapabilitiesFilter",
            "ImagePropertiesFilter",
            "ServerGroupAffinityFilter",
            "ServerGroupAntiAffinityFilter",
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
            "nova.scheduler.filters.ram_filter.RamFilter",
        ]
        .map(String::from)
        .to_vec();
        let opts = FilterSchedulerOptions::default();
        let built = by_names(&names, &opts).unwrap();
        assert_eq!(built.len(), names.len());
        assert_eq!(built.last().unwrap().name(), "RamFilter");
        assert!(by_names(&["NoSuchFilter".into()], &opts).is_err());
        assert!(by_names(&opts.enabled_filters, &opts).is_ok());
    }
}
