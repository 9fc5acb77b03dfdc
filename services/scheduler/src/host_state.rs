//! A host as the scheduler sees it.

use std::collections::BTreeMap;

use novalog_schemas::events::HostRegistered;
use novalog_schemas::{HostUsage, Resources};
use serde::{Deserialize, Serialize};

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
    pub capabilities: BTreeMap<String, String>,
    pub last_heartbeat_ms: i64,
    pub enabled: bool,
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
        }
    }

    /// Takes a usage snapshot if it is newer than the one held.
    pub fn observe_usage(&mut self, usage: HostUsage) {
        if usage.generation > self.usage.generation {
            self.usage = usage;
        }
    }

    pub fn used_vcpus(&self) -> u64 {
        u64::from(self.usage.vcpus_used) + u64::from(self.pending.vcpus)
    }

    pub fn used_ram_mb(&self) -> u64 {
        self.usage.memory_mb_used + self.pending.memory_mb
    }

    pub fn used_disk_gb(&self) -> u64 {
        self.usage.disk_gb_used + self.pending.disk_gb
    }

    pub fn num_instances(&self) -> u32 {
        self.usage.instances + self.pending_instances
    }

    /// Free RAM without overcommit (what Nova's RAM weigher weighs).
    pub fn free_ram_mb(&self) -> f64 {
        self.capacity.memory_mb as f64 - self.used_ram_mb() as f64
    }

    pub fn add_pending(&mut self, r: Resources) {
        self.pending.vcpus += r.vcpus;
        self.pending.memory_mb += r.memory_mb;
        self.pending.disk_gb += r.disk_gb;
        self.pending_instances += 1;
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
    }
}
