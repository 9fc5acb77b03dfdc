//! The hosts page: each host's capacity, what its agent reports used,
//! what the allocation ratios let the scheduler place, its heartbeat
//! state, its service status, its zone and aggregates. Pure.

use novalog_schemas::events::HostAggregate;
use serde::Serialize;

use crate::projection::HostView;

/// `cpu_allocation_ratio`, `ram_allocation_ratio`,
/// `disk_allocation_ratio` (nova.conf, the top of the configuration):
/// what the scheduler's Core, Ram and Disk filters allow per unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AllocationRatios {
    pub cpu: f64,
    pub ram: f64,
    pub disk: f64,
}

impl AllocationRatios {
    pub fn of(cfg: &novalog_runtime::Config) -> Self {
        AllocationRatios {
            cpu: cfg.cpu_allocation_ratio,
            ram: cfg.ram_allocation_ratio,
            disk: cfg.disk_allocation_ratio,
        }
    }
}

impl Default for AllocationRatios {
    fn default() -> Self {
        AllocationRatios::of(&novalog_runtime::Config::default())
    }
}

/// One resource of a host.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Resource {
    /// Physical capacity.
    pub total: u64,
    pub used: u64,
    pub ratio: f64,
    /// What may be allocated: `total × ratio`, rounded down.
    pub allocatable: u64,
}

impl Resource {
    fn new(total: u64, used: u64, ratio: f64) -> Self {
        Resource {
            total,
            used,
            ratio,
            allocatable: (total as f64 * ratio).floor() as u64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostRow {
    pub name: String,
    pub availability_zone: String,
    /// Names of the aggregates it is in.
    pub aggregates: Vec<String>,
    /// `up` while its heartbeats are fresher than `service_down_time`
    /// (and it is not forced down), else `down`.
    pub state: &'static str,
    /// `enabled` or `disabled` (the operator's).
    pub status: &'static str,
    pub disabled_reason: Option<String>,
    pub forced_down: bool,
    pub vcpus: Resource,
    pub memory_mb: Resource,
    pub disk_gb: Resource,
    pub instances: u32,
    pub last_seen_ms: i64,
}

pub fn rows(
    hosts: &[HostView],
    aggregates: &[std::sync::Arc<HostAggregate>],
    ratios: AllocationRatios,
    now_ms: i64,
    service_down_time_ms: i64,
) -> Vec<HostRow> {
    hosts
        .iter()
        .map(|h| HostRow {
            name: h.name.clone(),
            availability_zone: h.availability_zone.clone(),
            aggregates: aggregates
                .iter()
                .filter(|a| a.hosts.contains(&h.name))
                .map(|a| a.name.clone())
                .collect(),
            state: if h.is_up(now_ms, service_down_time_ms) {
                "up"
            } else {
                "down"
            },
            status: if h.service.disabled {
                "disabled"
            } else {
                "enabled"
            },
            disabled_reason: h.service.disabled_reason.clone(),
            forced_down: h.service.forced_down,
            vcpus: Resource::new(
                u64::from(h.capacity.vcpus),
                u64::from(h.usage.vcpus_used),
                ratios.cpu,
            ),
            memory_mb: Resource::new(h.capacity.memory_mb, h.usage.memory_mb_used, ratios.ram),
            disk_gb: Resource::new(h.capacity.disk_gb, h.usage.disk_gb_used, ratios.disk),
            instances: h.usage.instances,
            last_seen_ms: h.last_seen_ms,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn ratios_scale_what_may_be_allocated_and_heartbeats_decide_up() {
        let mut h = HostView {
            name: "fake-1".into(),
            availability_zone: "nova".into(),
            last_seen_ms: 1_000,
            ..HostView::default()
        };
        h.capacity.vcpus = 8;
        h.capacity.memory_mb = 1_000;
        h.capacity.disk_gb = 100;
        h.usage.vcpus_used = 3;
        h.service.disabled = true;
        h.service.disabled_reason = Some("maintenance".into());
        let agg = Arc::new(HostAggregate {
            id: 1,
            uuid: uuid::Uuid::nil(),
            name: "fast".into(),
            hosts: vec!["fake-1".into()],
            metadata: Default::default(),
            created_at_ms: 0,
            updated_at_ms: 0,
        });
        let ratios = AllocationRatios {
            cpu: 16.0,
            ram: 1.5,
            disk: 1.0,
        };
        let r = &rows(std::slice::from_ref(&h), &[agg], ratios, 50_000, 60_000)[0];
        assert_eq!((r.vcpus.allocatable, r.vcpus.used), (128, 3));
        assert_eq!(r.memory_mb.allocatable, 1_500);
        assert_eq!(r.disk_gb.allocatable, 100);
        assert_eq!((r.state, r.status), ("up", "disabled"));
        assert_eq!(r.aggregates, ["fast"]);
        let late = &rows(&[h], &[], ratios, 70_000, 60_000)[0];
        assert_eq!(late.state, "down");
        assert!(late.aggregates.is_empty());
    }
}
