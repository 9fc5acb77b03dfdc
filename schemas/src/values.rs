//! Plain values carried inside events and kept in projections.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What an instance needs from a host, or what a host has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub vcpus: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
}

/// The attributes Nova translates on create, update, rebuild and resize
/// (`helpers.translate_attributes`) and keeps as the user gave them: the
/// addresses the user says reach the server (nothing is routed to them)
/// and how its disk is partitioned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessConfig {
    /// `accessIPv4`; `None` shows as "".
    pub access_ip_v4: Option<Ipv4Addr>,
    /// `accessIPv6`; `None` shows as "".
    pub access_ip_v6: Option<Ipv6Addr>,
    /// `OS-DCF:diskConfig`: `AUTO` (true) or `MANUAL` (false, the default).
    pub auto_disk_config: bool,
}

/// A change to an [`AccessConfig`]: each `Some` replaces its field, `None`
/// leaves it (Nova's update and rebuild cannot unset an access address).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessChange {
    pub access_ip_v4: Option<Ipv4Addr>,
    pub access_ip_v6: Option<Ipv6Addr>,
    pub auto_disk_config: Option<bool>,
}

impl AccessChange {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// `current` with this change made.
    pub fn applied_to(&self, current: AccessConfig) -> AccessConfig {
        AccessConfig {
            access_ip_v4: self.access_ip_v4.or(current.access_ip_v4),
            access_ip_v6: self.access_ip_v6.or(current.access_ip_v6),
            auto_disk_config: self.auto_disk_config.unwrap_or(current.auto_disk_config),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    pub ram_mb: u64,
    pub disk_gb: u64,
    pub ephemeral_gb: u64,
    pub swap_mb: u64,
    pub rxtx_factor: f32,
    pub is_public: bool,
    pub extra_specs: BTreeMap<String, String>,
    pub description: Option<String>,
}

impl Flavor {
    /// What one instance of this flavor claims on a host (Nova counts root,
    /// ephemeral and swap disk against the host's disk).
    pub fn resources(&self) -> Resources {
        Resources {
            vcpus: self.vcpus,
            memory_mb: self.ram_mb,
            // Saturating: the sizes are users' numbers; a sum past u64 is
            // "more than any host has", never a panic.
            disk_gb: self
                .disk_gb
                .saturating_add(self.ephemeral_gb)
                .saturating_add(self.swap_mb.div_ceil(1024)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub id: Uuid,
    pub name: String,
    /// Glance status: queued, saving, active, deleted, ...
    pub status: String,
    pub size: u64,
    pub min_disk: u64,
    pub min_ram: u64,
    pub disk_format: String,
    pub container_format: String,
    pub properties: BTreeMap<String, String>,
    pub owner: String,
    pub checksum: String,
    pub visibility: String,
    pub created_at_ms: i64,
    /// Glance's `protected`: such an image cannot be deleted.
    pub protected: bool,
    pub tags: Vec<String>,
    /// sha512 of the uploaded bytes (Glance's `os_hash_value`); empty
    /// until data is uploaded.
    pub os_hash_value: String,
    pub updated_at_ms: i64,
    /// The projects a `shared` image is shared with (Glance's image
    /// members), in the order they were added.
    #[serde(default)]
    pub members: Vec<ImageMember>,
}

/// One project an image is shared with (Glance's image member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMember {
    pub member_id: String,
    /// pending, accepted or rejected: only the member changes it.
    pub status: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Why an instance is in ERROR, as Nova's `fault` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub code: i32,
    pub message: String,
    pub details: String,
    pub created_at_ms: i64,
}

/// A host's usage as its compute agent counts it; `generation` grows with
/// every change so readers keep only the newest snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostUsage {
    pub vcpus_used: u32,
    pub memory_mb_used: u64,
    pub disk_gb_used: u64,
    pub instances: u32,
    pub generation: u64,
}

impl HostUsage {
    pub fn add(&mut self, r: Resources) {
        self.vcpus_used = self.vcpus_used.saturating_add(r.vcpus);
        self.memory_mb_used = self.memory_mb_used.saturating_add(r.memory_mb);
        self.disk_gb_used = self.disk_gb_used.saturating_add(r.disk_gb);
        self.instances = self.instances.saturating_add(1);
        self.generation = self.generation.wrapping_add(1);
    }

    pub fn remove(&mut self, r: Resources) {
        self.vcpus_used = self.vcpus_used.saturating_sub(r.vcpus);
        self.memory_mb_used = self.memory_mb_used.saturating_sub(r.memory_mb);
        self.disk_gb_used = self.disk_gb_used.saturating_sub(r.disk_gb);
        self.instances = self.instances.saturating_sub(1);
        self.generation = self.generation.wrapping_add(1);
    }
}
