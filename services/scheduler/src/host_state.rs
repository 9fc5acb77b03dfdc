//! A host as the scheduler sees it, and the aggregates it belongs to.
//!
//! The arithmetic every capacity filter and weigher uses lives here as small
//! functions of plain numbers ([`fits`], [`free`], [`free_scaled`]), so the
//! fast path in [`crate::index`] computes bit-for-bit what the filters and
//! weighers compute from a [`HostState`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use novalog_schemas::events::HostRegistered;
use novalog_schemas::{HostUsage, Resources};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::filters::Context;

/// A host aggregate (Nova's `Aggregate`): a named set of hosts with metadata
/// that filters (`AggregateInstanceExtraSpecsFilter`,
/// `AggregateMultiTenancyIsolation`) and weigher multipliers consult.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregate {
    pub name: String,
    pub metadata: BTreeMap<String, String>,
    pub hosts: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostState {
    pub name: String,
    pub capacity: Resources,
    /// Usage as the host's agent last reported it.
    pub usage: HostUsage,
    /// Resources of this scheduler's decisions for the host that no claim
    /// result has answered yet (Nova's `consume_from_request`).
    #[serde(skip)]
    pub pending: Resources,
    #[serde(skip)]
    pub pending_instances: u32,
    pub cpu_arch: String,
    pub hypervisor_type: String,
    pub hypervisor_version: u64,
    pub availability_zone: String,
    /// What the host advertises beyond the fixed fields (Nova's `stats`);
    /// ComputeCapabilitiesFilter matches flavor extra specs against it.
    pub capabilities: BTreeMap<String, String>,
    pub last_heartbeat_ms: i64,
    /// False while an operator has the host's service disabled or forced
    /// down (`ServiceUpdated`), or deleted it (`ServiceDeleted`).
    pub enabled: bool,
    /// The service record was deleted: the host's next registration is a
    /// new service, enabled (Nova re-creates the record on restart).
    #[serde(default)]
    pub service_deleted: bool,
    /// Instances on the host: those the host's facts put there (a build's
    /// or a migration's claim, a landed migration or evacuation), and this
    /// scheduler's unanswered decisions (so group and same/different-host
    /// filters see them; those are also in `picked`).
    pub instances: BTreeSet<Uuid>,
    /// The instances in `instances` only because of this scheduler's
    /// unanswered decisions. The stored row leaves them out
    /// ([`HostState::as_stored`]): like `pending`, they depend on which
    /// requests this replica answered and when, not on the log alone.
    #[serde(skip)]
    pub picked: Vec<Uuid>,
    /// Claimed instances not yet spawned (Nova's `num_io_ops`, with
    /// `pending_instances`).
    pub building: BTreeSet<Uuid>,
    /// Failed builds since the last successful one (BuildFailureWeigher).
    pub failed_builds: u32,
    /// Monitor metrics by name (MetricsWeigher, MetricsFilter, JsonFilter).
    pub metrics: BTreeMap<String, f64>,
    /// Per-host allocation ratios; `None` takes the configured one.
    pub cpu_allocation_ratio: Option<f64>,
    pub ram_allocation_ratio: Option<f64>,
    pub disk_allocation_ratio: Option<f64>,
    /// Aggregates the host is in, set by the scheduler from its aggregate list.
    #[serde(skip)]
    pub aggregates: Vec<Arc<Aggregate>>,
}

impl HostState {
    /// The zone the host is in: an aggregate's `availability_zone`
    /// metadata, else the zone it registered with (Nova's
    /// `default_availability_zone`).
    pub fn zone(&self) -> &str {
        self.aggregates
            .iter()
            .find_map(|a| a.metadata.get("availability_zone"))
            .unwrap_or(&self.availability_zone)
    }
}

/// Whether `want` more fits beside `used` under `capacity × ratio` (the
/// Ram, Core and Disk filters).
#[inline]
pub fn fits(used: u64, want: u64, capacity: u64, ratio: f64) -> bool {
    // Saturating: `want` comes from a user's flavor.
    used.saturating_add(want) as f64 <= capacity as f64 * ratio
}

/// `capacity − used` (RAM and disk weighers weigh free space without overcommit).
#[inline]
pub fn free(capacity: u64, used: u64) -> f64 {
    capacity as f64 - used as f64
}

/// `capacity × ratio − used` (the CPU weigher weighs overcommitted vCPUs).
#[inline]
pub fn free_scaled(capacity: u64, ratio: f64, used: u64) -> f64 {
    capacity as f64 * ratio - used as f64
}

impl HostState {
    pub fn from_registration(r: &HostRegistered, at_ms: i64) -> Self {
        HostState {
            name: r.host.clone(),
            capacity: r.capacity,
            usage: r.usage,
            pending: Resources::default(),
            pending_instances: 0,
            cpu_arch: r.cpu_arch.clone(),
            hypervisor_type: r.hypervisor_type.clone(),
            hypervisor_version: r.hypervisor_version,
            availability_zone: r.availability_zone.clone(),
            capabilities: r.capabilities.clone(),
            last_heartbeat_ms: at_ms,
            enabled: true,
            service_deleted: false,
            instances: BTreeSet::new(),
            picked: Vec::new(),
            building: BTreeSet::new(),
            failed_builds: 0,
            metrics: BTreeMap::new(),
            cpu_allocation_ratio: None,
            ram_allocation_ratio: None,
            disk_allocation_ratio: None,
            aggregates: Vec::new(),
        }
    }

    /// Takes a re-registration: what the host says of itself replaces what
    /// was known; what the scheduler tracks (pending decisions, instances,
    /// failures, aggregates, overrides) stays.
    pub fn reregister(&mut self, r: &HostRegistered, at_ms: i64) {
        self.capacity = r.capacity;
        self.observe_usage(r.usage);
        self.cpu_arch = r.cpu_arch.clone();
        self.hypervisor_type = r.hypervisor_type.clone();
        self.hypervisor_version = r.hypervisor_version;
        self.availability_zone = r.availability_zone.clone();
        self.capabilities = r.capabilities.clone();
        self.last_heartbeat_ms = self.last_heartbeat_ms.max(at_ms);
        if self.service_deleted {
            self.service_deleted = false;
            self.enabled = true;
        }
    }

    /// Takes a usage snapshot if it is newer than the one held.
    pub fn observe_usage(&mut self, usage: HostUsage) {
        if usage.generation > self.usage.generation {
            self.usage = usage;
        }
    }

    pub fn used_vcpus(&self) -> u64 {
        u64::from(self.usage.vcpus_used).saturating_add(u64::from(self.pending.vcpus))
    }

    pub fn used_ram_mb(&self) -> u64 {
        self.usage
            .memory_mb_used
            .saturating_add(self.pending.memory_mb)
    }

    pub fn used_disk_gb(&self) -> u64 {
        self.usage.disk_gb_used.saturating_add(self.pending.disk_gb)
    }

    pub fn num_instances(&self) -> u32 {
        self.usage.instances.saturating_add(self.pending_instances)
    }

    /// Instances in a task that loads the host: decided but unclaimed, or
    /// claimed but not yet spawned (Nova counts building, resizing,
    /// snapshotting, ...).
    pub fn num_io_ops(&self) -> u32 {
        let building = u32::try_from(self.building.len()).unwrap_or(u32::MAX);
        self.pending_instances.saturating_add(building)
    }

    /// Free RAM without overcommit (what Nova's RAM weigher weighs).
    pub fn free_ram_mb(&self) -> f64 {
        free(self.capacity.memory_mb, self.used_ram_mb())
    }

    /// Free disk in MB without overcommit (what Nova's disk weigher weighs).
    pub fn free_disk_mb(&self) -> f64 {
        free(self.capacity.disk_gb, self.used_disk_gb()) * 1024.0
    }

    /// vCPUs left under the allocation ratio (what Nova's CPU weigher weighs).
    pub fn free_vcpus(&self, ctx: &Context) -> f64 {
        free_scaled(
            u64::from(self.capacity.vcpus),
            self.cpu_ratio(ctx),
            self.used_vcpus(),
        )
    }

    pub fn cpu_ratio(&self, ctx: &Context) -> f64 {
        self.cpu_allocation_ratio
            .unwrap_or(ctx.cpu_allocation_ratio)
    }

    pub fn ram_ratio(&self, ctx: &Context) -> f64 {
        self.ram_allocation_ratio
            .unwrap_or(ctx.ram_allocation_ratio)
    }

    pub fn disk_ratio(&self, ctx: &Context) -> f64 {
        self.disk_allocation_ratio
            .unwrap_or(ctx.disk_allocation_ratio)
    }

    /// Whether the heartbeat is recent enough at `ctx.now_ms`.
    pub fn is_up(&self, ctx: &Context) -> bool {
        ctx.now_ms - self.last_heartbeat_ms <= ctx.service_down_time_ms
    }

    /// The values of `key` across the host's aggregates, each metadata value
    /// split at commas and trimmed (Nova's `aggregate_metadata_get_by_host`).
    pub fn aggregate_values(&self, key: &str) -> BTreeSet<&str> {
        self.aggregates
            .iter()
            .filter_map(|a| a.metadata.get(key))
            .flat_map(|v| v.split(',').map(str::trim))
            .collect()
    }

    /// The smallest number among the aggregates' `key` values, or `default`
    /// when none is set or one does not parse (Nova's `validate_num_values`).
    pub fn aggregate_min(&self, key: &str, default: f64) -> f64 {
        let mut min: Option<f64> = None;
        for a in &self.aggregates {
            if let Some(v) = a.metadata.get(key) {
                match v.trim().parse::<f64>() {
                    Ok(x) => min = Some(min.map_or(x, |m| m.min(x))),
                    Err(_) => return default,
                }
            }
        }
        min.unwrap_or(default)
    }

    /// The host as its store row holds it: what the host facts say, this
    /// scheduler's unanswered picks left out, so that folding the log again
    /// gives the row byte for byte (docs/audit-and-replay.md).
    pub fn as_stored(&self) -> std::borrow::Cow<'_, HostState> {
        if self.picked.is_empty() {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut h = self.clone();
        for id in std::mem::take(&mut h.picked) {
            h.instances.remove(&id);
        }
        std::borrow::Cow::Owned(h)
    }

    pub fn add_pending(&mut self, r: Resources) {
        self.pending.vcpus = self.pending.vcpus.saturating_add(r.vcpus);
        self.pending.memory_mb = self.pending.memory_mb.saturating_add(r.memory_mb);
        self.pending.disk_gb = self.pending.disk_gb.saturating_add(r.disk_gb);
        self.pending_instances = self.pending_instances.saturating_add(1);
    }

    pub fn remove_pending(&mut self, r: Resources) {
        self.pending.vcpus = self.pending.vcpus.saturating_sub(r.vcpus);
        self.pending.memory_mb = self.pending.memory_mb.saturating_sub(r.memory_mb);
        self.pending.disk_gb = self.pending.disk_gb.saturating_sub(r.disk_gb);
        self.pending_instances = self.pending_instances.saturating_sub(1);
    }
}

#[cfg(test)]
pub(crate) fn test_host(name: &str) -> HostState {
    HostState {
        name: name.to_owned(),
        capacity: Resources {
            vcpus: 8,
            memory_mb: 16_384,
            disk_gb: 100,
        },
        usage: HostUsage::default(),
        pending: Resources::default(),
        pending_instances: 0,
        cpu_arch: "x86_64".into(),
        hypervisor_type: "fake".into(),
        hypervisor_version: 1,
        availability_zone: "nova".into(),
        capabilities: BTreeMap::new(),
        last_heartbeat_ms: 1_000_000,
        enabled: true,
        service_deleted: false,
        instances: BTreeSet::new(),
        picked: Vec::new(),
        building: BTreeSet::new(),
        failed_builds: 0,
        metrics: BTreeMap::new(),
        cpu_allocation_ratio: None,
        ram_allocation_ratio: None,
        disk_allocation_ratio: None,
        aggregates: Vec::new(),
    }
}

#[cfg(test)]
pub(crate) fn aggregate(name: &str, metadata: &[(&str, &str)]) -> Arc<Aggregate> {
    Arc::new(Aggregate {
        name: name.into(),
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        hosts: BTreeSet::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_values_split_and_min() {
        let mut h = test_host("h");
        h.aggregates = vec![
            aggregate("a", &[("k", "x, y"), ("m", "2.5")]),
            aggregate("b", &[("k", "z"), ("m", "1.5")]),
        ];
        assert_eq!(
            h.aggregate_values("k").into_iter().collect::<Vec<_>>(),
            ["x", "y", "z"]
        );
        assert_eq!(h.aggregate_min("m", 9.0), 1.5);
        assert_eq!(h.aggregate_min("absent", 9.0), 9.0);
        h.aggregates.push(aggregate("c", &[("m", "junk")]));
        assert_eq!(
            h.aggregate_min("m", 9.0),
            9.0,
            "an unparsable value falls back to the default"
        );
    }
}
