//! Resource tracking and claims for one host (Nova's ResourceTracker and
//! Claim). The tracker is the authority: the scheduler's view is advisory,
//! and a claim that does not fit fails here.

use std::collections::BTreeMap;

use novalog_schemas::{HostUsage, PowerState, Resources};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratios {
    pub cpu: f64,
    pub ram: f64,
    pub disk: f64,
}

/// An instance this host holds a claim for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalInstance {
    pub resources: Resources,
    pub attempt: u32,
    pub power_state: PowerState,
}

/// One host's tracked state, persisted in the agent's store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    pub name: String,
    pub capacity: Resources,
    pub usage: HostUsage,
    pub instances: BTreeMap<Uuid, LocalInstance>,
}

impl HostRecord {
    pub fn new(name: String, capacity: Resources) -> Self {
        HostRecord {
            name,
            capacity,
            usage: HostUsage::default(),
            instances: BTreeMap::new(),
        }
    }

    /// Claims `r` for `instance`, or says why it does not fit.
    pub fn claim(
        &mut self,
        instance: Uuid,
        r: Resources,
        attempt: u32,
        ratios: Ratios,
    ) -> Result<(), String> {
        let u = &self.usage;
        let c = &self.capacity;
        let free_ram = c.memory_mb as f64 * ratios.ram - u.memory_mb_used as f64;
        if r.memory_mb as f64 > free_ram {
            return Err(format!(
                "Insufficient compute resources: Free memory {free_ram:.2} MB < requested {} MB.",
                r.memory_mb
            ));
        }
        let free_cpu = f64::from(c.vcpus) * ratios.cpu - f64::from(u.vcpus_used);
        if f64::from(r.vcpus) > free_cpu {
            return Err(format!(
                "Insufficient compute resources: Free vcpu {free_cpu:.2} VCPU < requested {} VCPU.",
                r.vcpus
            ));
        }
        let free_disk = c.disk_gb as f64 * ratios.disk - u.disk_gb_used as f64;
        if r.disk_gb as f64 > free_disk {
            return Err(format!(
                "Insufficient compute resources: Free disk {free_disk:.2} GB < requested {} GB.",
                r.disk_gb
            ));
        }
        self.usage.add(r);
        self.instances.insert(
            instance,
            LocalInstance {
                resources: r,
                attempt,
                power_state: PowerState::NoState,
            },
        );
        Ok(())
    }

    /// Releases `instance`'s claim; releasing twice changes nothing.
    pub fn release(&mut self, instance: Uuid) -> bool {
        match self.instances.remove(&instance) {
            Some(i) => {
                self.usage.remove(i.resources);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATIOS: Ratios = Ratios {
        cpu: 16.0,
        ram: 1.5,
        disk: 1.0,
    };

    fn host() -> HostRecord {
        HostRecord::new(
            "h".into(),
            Resources {
                vcpus: 2,
                memory_mb: 2_048,
                disk_gb: 10,
            },
        )
    }

    fn res(vcpus: u32, memory_mb: u64, disk_gb: u64) -> Resources {
        Resources {
            vcpus,
            memory_mb,
            disk_gb,
        }
    }

    #[test]
    fn claims_up_to_the_ratios_and_no_further() {
        let mut h = host();
        h.claim(Uuid::from_u128(1), res(1, 3_000, 5), 1, RATIOS)
            .unwrap();
        let err = h
            .claim(Uuid::from_u128(2), res(1, 100, 1), 1, RATIOS)
            .unwrap_err();
        assert!(err.contains("Free memory"), "{err}");
        let err = h
            .claim(Uuid::from_u128(3), res(1, 1, 6), 1, RATIOS)
            .unwrap_err();
        assert!(err.contains("Free disk"), "{err}");
        assert_eq!(h.usage.instances, 1);
        assert_eq!(h.usage.memory_mb_used, 3_000);
    }

    #[test]
    fn release_is_idempotent_and_bumps_generation() {
        let mut h = host();
        let id = Uuid::from_u128(1);
        h.claim(id, res(1, 512, 1), 1, RATIOS).unwrap();
        let g = h.usage.generation;
        assert!(h.release(id));
        assert!(h.usage.generation > g);
        assert!(!h.release(id));
        assert_eq!(
            h.usage,
            HostUsage {
                generation: h.usage.generation,
                ..Default::default()
            }
        );
    }
}
