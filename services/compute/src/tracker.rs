//! Resource tracking and claims for one host (Nova's ResourceTracker and
//! Claim). The tracker is the authority: the scheduler's view is advisory,
//! and a claim that does not fit fails here.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

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

/// Which side of a migration a migration claim holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClaimSide {
    /// The destination's claim for the new flavor, before the guest lands.
    Incoming,
    /// A same-host resize's hold on the old flavor after the guest moved to
    /// the new one, until confirm (released) or revert (restored).
    Outgoing,
}

/// Resources held for a migration, apart from the instance's own claim
/// (Nova's migration-context claims).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationClaim {
    pub instance_id: Uuid,
    pub resources: Resources,
    pub side: ClaimSide,
}

/// The saga commands one migration (or rebuild, or evacuation) had
/// carried out on this host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SagaSteps {
    pub instance_id: Uuid,
    /// `step/event id` of each command carried out.
    pub done: BTreeSet<String>,
}

/// How many sagas whose instance has left a host keep their markers
/// there: a copy of a command can still come after its instance left (a
/// conductor that died before committing sends its last batch again), but
/// only soon after, so the markers of the last few departures are enough.
pub const DEPARTED_SAGAS_KEPT: usize = 32;

/// One host's tracked state, persisted in the agent's store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    pub name: String,
    pub capacity: Resources,
    pub usage: HostUsage,
    pub instances: BTreeMap<Uuid, LocalInstance>,
    /// Claims held for migrations, by migration id.
    pub migration_claims: BTreeMap<Uuid, MigrationClaim>,
    /// Saga commands carried out here, by migration id, so a command sent
    /// again is not carried out twice. Bounded by the live state: an
    /// instance keeps the markers of its current saga only (a new saga of
    /// it ends the earlier ones), and once it holds nothing here its sagas
    /// join `departed`.
    pub sagas: BTreeMap<Uuid, SagaSteps>,
    /// Sagas whose instance holds nothing here any more, oldest first; at
    /// most [`DEPARTED_SAGAS_KEPT`], the oldest forgotten beyond that.
    pub departed: VecDeque<Uuid>,
}

/// A host record as stored before sagas' markers were bounded (one set of
/// every step ever carried out); read once, on the first start after an
/// upgrade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegacyHostRecord {
    pub name: String,
    pub capacity: Resources,
    pub usage: HostUsage,
    pub instances: BTreeMap<Uuid, LocalInstance>,
    pub migration_claims: BTreeMap<Uuid, MigrationClaim>,
    pub done_steps: BTreeSet<(Uuid, String)>,
}

impl From<LegacyHostRecord> for HostRecord {
    /// The old markers do not say their instance: they are kept as
    /// departed sagas, the most recent migration ids first to go last.
    fn from(old: LegacyHostRecord) -> Self {
        let mut rec = HostRecord {
            name: old.name,
            capacity: old.capacity,
            usage: old.usage,
            instances: old.instances,
            migration_claims: old.migration_claims,
            sagas: BTreeMap::new(),
            departed: VecDeque::new(),
        };
        for (migration, marker) in old.done_steps {
            rec.sagas
                .entry(migration)
                .or_insert_with(|| SagaSteps {
                    instance_id: Uuid::nil(),
                    done: BTreeSet::new(),
                })
                .done
                .insert(marker);
        }
        rec.departed = rec.sagas.keys().copied().collect();
        rec.forget_oldest_departed();
        rec
    }
}

impl HostRecord {
    pub fn new(name: String, capacity: Resources) -> Self {
        HostRecord {
            name,
            capacity,
            usage: HostUsage::default(),
            instances: BTreeMap::new(),
            migration_claims: BTreeMap::new(),
            sagas: BTreeMap::new(),
            departed: VecDeque::new(),
        }
    }

    /// Whether the command `marker` of `migration` was carried out here.
    pub fn step_done(&self, migration: Uuid, marker: &str) -> bool {
        self.sagas
            .get(&migration)
            .is_some_and(|s| s.done.contains(marker))
    }

    /// Records that the command `marker` of `migration` (a saga of
    /// `instance`) was carried out here. The first command of a saga ends
    /// the instance's earlier sagas here: the conductor runs one saga per
    /// instance at a time and sends a saga's first command only after the
    /// previous saga's last answer, so nothing of those can come again.
    pub fn record_step(&mut self, migration: Uuid, instance: Uuid, marker: String) {
        if !self.sagas.contains_key(&migration) {
            self.sagas.retain(|_, s| s.instance_id != instance);
            let sagas = &self.sagas;
            self.departed.retain(|m| sagas.contains_key(m));
        }
        self.sagas
            .entry(migration)
            .or_insert_with(|| SagaSteps {
                instance_id: instance,
                done: BTreeSet::new(),
            })
            .done
            .insert(marker);
        self.note_departure(instance);
    }

    /// Whether `instance` has a guest's claim or a migration claim here.
    pub fn holds(&self, instance: Uuid) -> bool {
        self.instances.contains_key(&instance)
            || self
                .migration_claims
                .values()
                .any(|c| c.instance_id == instance)
    }

    /// To be called after any command for `instance`: once it holds nothing
    /// here (destroyed, moved away, or its claim failed), its sagas become
    /// departed, and the oldest departed beyond [`DEPARTED_SAGAS_KEPT`] are
    /// forgotten.
    pub fn note_departure(&mut self, instance: Uuid) {
        if self.holds(instance) {
            return;
        }
        for (m, s) in &self.sagas {
            if s.instance_id == instance && !self.departed.contains(m) {
                self.departed.push_back(*m);
            }
        }
        self.forget_oldest_departed();
    }

    fn forget_oldest_departed(&mut self) {
        while self.departed.len() > DEPARTED_SAGAS_KEPT {
            if let Some(m) = self.departed.pop_front() {
                self.sagas.remove(&m);
            }
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
        self.fits(r, ratios)?;
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

    /// The destination's claim for a migration (Nova's resize claim);
    /// claiming again for the same migration changes nothing.
    pub fn claim_migration(
        &mut self,
        migration: Uuid,
        instance: Uuid,
        r: Resources,
        ratios: Ratios,
    ) -> Result<(), String> {
        if self.migration_claims.contains_key(&migration) {
            return Ok(());
        }
        self.fits(r, ratios)?;
        self.usage.add(r);
        self.migration_claims.insert(
            migration,
            MigrationClaim {
                instance_id: instance,
                resources: r,
                side: ClaimSide::Incoming,
            },
        );
        Ok(())
    }

    /// Drops the destination's claim of a migration whose guest never
    /// landed here; true if there was one.
    pub fn drop_incoming(&mut self, migration: Uuid) -> bool {
        match self.migration_claims.get(&migration) {
            Some(c) if c.side == ClaimSide::Incoming => {
                let c = self.migration_claims.remove(&migration).expect("present");
                self.usage.remove(c.resources);
                true
            }
            _ => false,
        }
    }

    /// The guest landed here: the incoming claim becomes the instance's
    /// claim. On a same-host resize the instance's old claim becomes the
    /// outgoing hold, kept until confirm or revert.
    pub fn land_migration(&mut self, migration: Uuid, instance: Uuid, power: PowerState) {
        let Some(incoming) = self.migration_claims.remove(&migration) else {
            return;
        };
        if let Some(old) = self.instances.remove(&instance) {
            self.migration_claims.insert(
                migration,
                MigrationClaim {
                    instance_id: instance,
                    resources: old.resources,
                    side: ClaimSide::Outgoing,
                },
            );
        }
        self.instances.insert(
            instance,
            LocalInstance {
                resources: incoming.resources,
                attempt: 1,
                power_state: power,
            },
        );
    }

    /// Confirm on the source: the old flavor's claim goes (the outgoing
    /// hold of a same-host resize, else the instance's claim here).
    pub fn release_source(&mut self, migration: Uuid, instance: Uuid) {
        match self.migration_claims.get(&migration) {
            Some(c) if c.side == ClaimSide::Outgoing => {
                let c = self.migration_claims.remove(&migration).expect("present");
                self.usage.remove(c.resources);
            }
            _ => {
                self.release(instance);
            }
        }
    }

    /// Revert on the destination: the new flavor's claim goes; a same-host
    /// resize gets its old claim back.
    pub fn revert_dest(&mut self, migration: Uuid, instance: Uuid) {
        match self.migration_claims.get(&migration).map(|c| c.side) {
            Some(ClaimSide::Incoming) => {
                self.drop_incoming(migration);
            }
            Some(ClaimSide::Outgoing) => {
                // The hold (counted in usage) is the instance's claim again.
                let old = self.migration_claims.remove(&migration).expect("present");
                if let Some(new) = self.instances.remove(&instance) {
                    self.usage.remove(new.resources);
                }
                self.instances.insert(
                    instance,
                    LocalInstance {
                        resources: old.resources,
                        attempt: 1,
                        power_state: PowerState::Shutdown,
                    },
                );
            }
            None => {
                self.release(instance);
            }
        }
    }

    /// Says whether `r` fits next to what is claimed.
    fn fits(&self, r: Resources, ratios: Ratios) -> Result<(), String> {
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

    /// Releases every claim `instance` has here, migrations' included
    /// (delete).
    pub fn release_all(&mut self, instance: Uuid) -> bool {
        let mut released = self.release(instance);
        let held: Vec<Uuid> = self
            .migration_claims
            .iter()
            .filter(|(_, c)| c.instance_id == instance)
            .map(|(m, _)| *m)
            .collect();
        for m in held {
            if let Some(c) = self.migration_claims.remove(&m) {
                self.usage.remove(c.resources);
                released = true;
            }
        }
        released
    }

    /// The sum of every claim here: what `usage` must equal.
    pub fn claimed(&self) -> HostUsage {
        let mut u = HostUsage::default();
        for i in self.instances.values() {
            u.add(i.resources);
        }
        for c in self.migration_claims.values() {
            u.add(c.resources);
        }
        u
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
