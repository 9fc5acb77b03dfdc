//! Migrations (Nova's `Migration` object) and the records of the sagas that
//! move or rebuild an instance: resize and cold migrate with confirm and
//! revert, live migrate, evacuate, rebuild. Also how those records fold into
//! the instance ([`evolve`]), called from [`crate::instance::evolve`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::events::InstanceEvent;
use crate::instance::Instance;
use crate::state::{PowerState, TaskState, VmState};
use crate::values::{AccessChange, AccessConfig, Fault, Flavor, HostUsage, Image};

/// Nova's `migration_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MigrationType {
    /// Cold migrate: a resize to the same flavor on another host.
    Migration,
    Resize,
    LiveMigration,
    Evacuation,
}

impl MigrationType {
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationType::Migration => "migration",
            MigrationType::Resize => "resize",
            MigrationType::LiveMigration => "live-migration",
            MigrationType::Evacuation => "evacuation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "migration" => MigrationType::Migration,
            "resize" => MigrationType::Resize,
            "live-migration" => MigrationType::LiveMigration,
            "evacuation" => MigrationType::Evacuation,
            _ => return None,
        })
    }
}

/// Nova's migration statuses. Spelled as Nova spells them wherever they
/// leave the process (protobuf, the API, the projections' stores).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MigrationStatus {
    /// Live migration: accepted, no destination claim yet.
    Preparing,
    PreMigrating,
    Migrating,
    PostMigrating,
    Finished,
    Confirming,
    Confirmed,
    Reverting,
    Reverted,
    Error,
    /// Live migration: the guest runs on the destination.
    Running,
    Completed,
    /// Evacuation: rebuilt on the destination.
    Done,
    Failed,
}

impl MigrationStatus {
    const ALL: [MigrationStatus; 14] = [
        MigrationStatus::Preparing,
        MigrationStatus::PreMigrating,
        MigrationStatus::Migrating,
        MigrationStatus::PostMigrating,
        MigrationStatus::Finished,
        MigrationStatus::Confirming,
        MigrationStatus::Confirmed,
        MigrationStatus::Reverting,
        MigrationStatus::Reverted,
        MigrationStatus::Error,
        MigrationStatus::Running,
        MigrationStatus::Completed,
        MigrationStatus::Done,
        MigrationStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MigrationStatus::Preparing => "preparing",
            MigrationStatus::PreMigrating => "pre-migrating",
            MigrationStatus::Migrating => "migrating",
            MigrationStatus::PostMigrating => "post-migrating",
            MigrationStatus::Finished => "finished",
            MigrationStatus::Confirming => "confirming",
            MigrationStatus::Confirmed => "confirmed",
            MigrationStatus::Reverting => "reverting",
            MigrationStatus::Reverted => "reverted",
            MigrationStatus::Error => "error",
            MigrationStatus::Running => "running",
            MigrationStatus::Completed => "completed",
            MigrationStatus::Done => "done",
            MigrationStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Statuses after which nothing more happens to the migration.
    pub fn is_final(self) -> bool {
        use MigrationStatus as S;
        matches!(
            self,
            S::Confirmed | S::Reverted | S::Error | S::Completed | S::Done | S::Failed
        )
    }
}

/// Stored as it is spelled, as it was when it was a string.
impl Serialize for MigrationStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MigrationStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        MigrationStatus::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown migration status {s:?}")))
    }
}

/// One migration of an instance (Nova's `Migration`), with what the saga
/// needs to go on or to undo it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Migration {
    /// Nova's integer id (`/os-migrations` shows it).
    pub id: u64,
    pub uuid: Uuid,
    pub migration_type: MigrationType,
    pub status: MigrationStatus,
    pub source_compute: String,
    /// `None` until a destination is scheduled.
    pub dest_compute: Option<String>,
    pub old_flavor: Flavor,
    pub new_flavor: Flavor,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Destinations still to try if the current one's claim fails.
    pub alternates: Vec<String>,
    /// Destinations tried so far.
    pub attempt: u32,
    /// The state the instance returns to (active, stopped, paused, error).
    pub original_vm_state: VmState,
    pub original_power_state: PowerState,
    /// The host the caller asked for (`migrate` with `host`, 2.56).
    pub requested_host: Option<String>,
    pub project_id: String,
    pub user_id: String,
    /// An evacuation asked for at 2.95 or later: the guest ends stopped
    /// whatever its state before.
    #[serde(default)]
    pub stop_at_destination: bool,
}

impl Migration {
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }
}

/// A step of a migration saga as the instance records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationProgress {
    pub migration_id: Uuid,
    #[serde(with = "crate::state::power_code")]
    pub power_state: PowerState,
    /// Scheduling: the chosen destination; errors: where the guest is.
    pub host: Option<String>,
    pub alternates: Vec<String>,
    pub attempt: u32,
    pub fault: Option<Fault>,
}

impl MigrationProgress {
    pub fn of(migration_id: Uuid) -> Self {
        MigrationProgress {
            migration_id,
            power_state: PowerState::NoState,
            host: None,
            alternates: Vec::new(),
            attempt: 0,
            fault: None,
        }
    }
}

/// `resize`, `migrate`, `os-migrateLive`, `evacuate` (topic `intents`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerMigrationRequested {
    pub instance_id: Uuid,
    pub migration_type: MigrationType,
    /// Resize: the new flavor.
    pub flavor: Option<Flavor>,
    /// The target host the caller named; `None`: the scheduler picks.
    pub host: Option<String>,
    /// Evacuate: the API found the source host down (by heartbeat or
    /// forced down) when it accepted the request.
    pub source_host_down: bool,
    /// Resize: `OS-DCF:diskConfig` if given (Nova sets it on the instance
    /// when the resize is accepted).
    pub auto_disk_config: Option<bool>,
    /// Evacuate from 2.95: the guest is left stopped at the destination.
    #[serde(default)]
    pub stop_at_destination: bool,
}

/// `rebuild` (topic `intents`); the API has validated the image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerRebuildRequested {
    pub instance_id: Uuid,
    pub image: Image,
    pub name: Option<String>,
    /// `Some`: replaces the instance's metadata.
    pub metadata: Option<BTreeMap<String, String>>,
    /// `Some(None)`: unset; `None`: unchanged (key_name from 2.54).
    pub key_name: Option<Option<String>>,
    /// `Some(None)`: unset; `None`: unchanged (user_data from 2.57).
    pub user_data: Option<Option<String>>,
    /// `Some(None)`: unset; `None`: unchanged (description from 2.19).
    pub description: Option<Option<String>>,
    /// `accessIPv4`, `accessIPv6`, `OS-DCF:diskConfig` given.
    pub access: AccessChange,
    /// `Some(None)`: unset; `None`: unchanged (2.63).
    #[serde(default)]
    pub trusted_image_certificates: Option<Option<Vec<String>>>,
    /// `Some`: the new hostname (2.90); `None`: unchanged.
    #[serde(default)]
    pub hostname: Option<String>,
}

/// The instance's image, name and metadata as a rebuild sets them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RebuildSpec {
    pub image: Image,
    pub name: String,
    pub metadata: BTreeMap<String, String>,
    pub key_name: Option<String>,
    pub user_data: Option<String>,
    pub description: Option<String>,
    /// The access settings after the rebuild; `None` in records written
    /// before they existed (unchanged).
    pub access: Option<AccessConfig>,
    /// The certificates after the rebuild (2.63).
    #[serde(default)]
    pub trusted_image_certificates: Option<Vec<String>>,
    /// The hostname after the rebuild; `None` in records written before
    /// it (unchanged).
    #[serde(default)]
    pub hostname: Option<String>,
}

/// A command to one compute host within a migration or rebuild saga
/// (topic `compute`, key: `host`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationCommand {
    pub instance_id: Uuid,
    /// The migration (for a rebuild: a per-rebuild id).
    pub migration_id: Uuid,
    /// The host that carries it out.
    pub host: String,
    pub source_host: String,
    pub dest_host: String,
    pub attempt: u32,
    /// The flavor the guest has after this step.
    pub flavor: Flavor,
    pub image: Image,
    pub name: String,
    pub project_id: String,
    /// Power the guest on at the end of the step (off for a stopped
    /// instance, which stays stopped).
    pub power_on: bool,
}

/// What a host did with a [`MigrationCommand`] (topic `compute-events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationFact {
    pub instance_id: Uuid,
    pub migration_id: Uuid,
    pub host: String,
    pub attempt: u32,
    #[serde(with = "crate::state::power_code")]
    pub power_state: PowerState,
    /// The driver step that failed (failures only).
    pub step: String,
    pub reason: String,
    pub usage: HostUsage,
}

/// The migration `id` names on `i`, if any.
fn migration_mut(i: &mut Instance, id: Uuid) -> Option<&mut Migration> {
    i.migrations.iter_mut().rev().find(|m| m.uuid == id)
}

fn set_status(i: &mut Instance, id: Uuid, s: MigrationStatus, at: i64) -> Option<Migration> {
    let m = migration_mut(i, id)?;
    m.status = s;
    m.updated_at_ms = at;
    Some(m.clone())
}

/// Folds one saga record into `i`.
pub(crate) fn evolve(i: &mut Instance, event: &InstanceEvent, at: i64) {
    use MigrationStatus as s;
    match event {
        InstanceEvent::MigrationStarted(m) => {
            i.task_state = Some(match m.migration_type {
                MigrationType::LiveMigration => TaskState::Migrating,
                MigrationType::Evacuation => TaskState::Rebuilding,
                _ => TaskState::ResizePrep,
            });
            i.migrations.push((**m).clone());
        }
        InstanceEvent::MigrationScheduled(p) => {
            if let Some(m) = migration_mut(i, p.migration_id) {
                m.dest_compute = p.host.clone();
                m.alternates = p.alternates.clone();
                m.attempt = p.attempt;
                m.updated_at_ms = at;
            }
        }
        InstanceEvent::ResizeMigrationStarted(p) => {
            i.task_state = Some(TaskState::ResizeMigrating);
            set_status(i, p.migration_id, s::Migrating, at);
        }
        InstanceEvent::ResizeMigrated(p) => {
            i.task_state = Some(TaskState::ResizeMigrated);
            i.power_state = PowerState::Shutdown;
            set_status(i, p.migration_id, s::PostMigrating, at);
        }
        InstanceEvent::ResizeFinishStarted(_) => {
            i.task_state = Some(TaskState::ResizeFinish);
        }
        InstanceEvent::ResizeFinished(p) => {
            if let Some(m) = set_status(i, p.migration_id, s::Finished, at) {
                i.vm_state = VmState::Resized;
                i.task_state = None;
                i.host = m.dest_compute.clone();
                i.flavor = m.new_flavor.clone();
                i.power_state = p.power_state;
            }
        }
        InstanceEvent::ResizeConfirmStarted(p) => {
            i.task_state = Some(TaskState::ResizeConfirming);
            set_status(i, p.migration_id, s::Confirming, at);
        }
        InstanceEvent::ResizeConfirmed(p) => {
            if let Some(m) = set_status(i, p.migration_id, s::Confirmed, at) {
                i.vm_state = back_from_resized(m.original_vm_state);
                i.task_state = None;
            }
        }
        InstanceEvent::ResizeRevertStarted(p) => {
            i.task_state = Some(TaskState::ResizeReverting);
            set_status(i, p.migration_id, s::Reverting, at);
        }
        InstanceEvent::ResizeReverted(p) => {
            if let Some(m) = set_status(i, p.migration_id, s::Reverted, at) {
                return_to_source(i, &m, p.power_state);
            }
        }
        InstanceEvent::MigrationAborted(p) => {
            // Compensated: the instance is back where and as it was.
            if let Some(m) = set_status(i, p.migration_id, s::Error, at) {
                return_to_source(i, &m, p.power_state);
                i.fault = p.fault.clone();
            }
        }
        InstanceEvent::MigrationErrored(p) => {
            let failed = match i.migrations.last() {
                Some(m) if m.migration_type == MigrationType::Evacuation => s::Failed,
                _ => s::Error,
            };
            let m = set_status(i, p.migration_id, failed, at);
            i.vm_state = VmState::Error;
            i.task_state = None;
            if p.host.is_some() {
                i.host = p.host.clone();
            }
            // The guest has the flavor of the host it is left on.
            if let Some(m) = m {
                i.flavor = if i.host.as_deref() == Some(m.source_compute.as_str()) {
                    m.old_flavor
                } else {
                    m.new_flavor
                };
            }
            i.fault = p.fault.clone();
        }
        InstanceEvent::LiveMigrationStarted(p) => {
            set_status(i, p.migration_id, s::Running, at);
        }
        InstanceEvent::LiveMigrated(p) => {
            if let Some(m) = set_status(i, p.migration_id, s::Completed, at) {
                i.host = m.dest_compute.clone();
                i.task_state = None;
                i.power_state = p.power_state;
            }
        }
        InstanceEvent::Evacuated(p) => {
            if let Some(m) = set_status(i, p.migration_id, s::Done, at) {
                i.host = m.dest_compute.clone();
                i.vm_state = match m.original_vm_state {
                    _ if m.stop_at_destination => VmState::Stopped,
                    VmState::Stopped => VmState::Stopped,
                    _ => VmState::Active,
                };
                i.task_state = None;
                i.power_state = p.power_state;
                i.fault = None;
            }
        }
        InstanceEvent::RebuildStarted(r) => {
            i.task_state = Some(TaskState::Rebuilding);
            i.image = r.image.clone();
            i.name = r.name.clone();
            i.metadata = r.metadata.clone();
            i.key_name = r.key_name.clone();
            i.user_data = r.user_data.clone();
            i.description = r.description.clone();
            if let Some(access) = r.access {
                i.access = access;
            }
            i.trusted_image_certificates = r.trusted_image_certificates.clone();
            if let Some(h) = &r.hostname {
                i.hostname = h.clone();
            }
        }
        InstanceEvent::RebuildSpawnBegan => {
            i.task_state = Some(TaskState::RebuildSpawning);
        }
        InstanceEvent::RebuildCompleted {
            vm_state,
            power_state,
        } => {
            i.vm_state = *vm_state;
            i.task_state = None;
            i.power_state = *power_state;
            i.fault = None;
        }
        // Not saga records: `instance::evolve` folds them.
        InstanceEvent::IntentRejected { .. }
        | InstanceEvent::ConsoleOutputRead { .. }
        | InstanceEvent::InstanceCreated(_)
        | InstanceEvent::InstanceScheduled { .. }
        | InstanceEvent::InstanceRescheduled { .. }
        | InstanceEvent::InstanceBecameActive { .. }
        | InstanceEvent::InstanceFailed { .. }
        | InstanceEvent::InstanceDeleteStarted
        | InstanceEvent::InstanceDeleted { .. }
        | InstanceEvent::InstanceTaskStarted { .. }
        | InstanceEvent::InstanceTaskCompleted { .. }
        | InstanceEvent::InstanceTaskFailed { .. }
        | InstanceEvent::InstanceLocked { .. }
        | InstanceEvent::InstanceUnlocked
        | InstanceEvent::InstancePowerStateSynced { .. }
        | InstanceEvent::InstanceUpdated { .. }
        | InstanceEvent::InstanceMetadataSet { .. }
        | InstanceEvent::InstanceTagsSet { .. }
        | InstanceEvent::ConsoleTokenIssued(_) => {}
    }
}

/// Confirming a resize leaves the instance as it was before it: a stopped
/// instance stays stopped.
fn back_from_resized(original: VmState) -> VmState {
    match original {
        VmState::Stopped => VmState::Stopped,
        _ => VmState::Active,
    }
}

fn return_to_source(i: &mut Instance, m: &Migration, power_state: PowerState) {
    i.vm_state = m.original_vm_state;
    i.task_state = None;
    i.host = Some(m.source_compute.clone());
    i.flavor = m.old_flavor.clone();
    i.power_state = power_state;
}

#[cfg(test)]
mod tests {
    use super::MigrationStatus;

    /// Statuses keep Nova's spelling in the stores and on the wire, as
    /// when they were strings, so old records still read.
    #[test]
    fn migration_statuses_are_spelled_as_nova_spells_them() {
        for s in MigrationStatus::ALL {
            assert_eq!(MigrationStatus::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<MigrationStatus>(&json).unwrap(), s);
        }
        assert_eq!(
            MigrationStatus::parse("post-migrating"),
            Some(MigrationStatus::PostMigrating)
        );
        assert_eq!(MigrationStatus::parse("POST-MIGRATING"), None);
        assert!(serde_json::from_str::<MigrationStatus>("\"napping\"").is_err());
    }
}
