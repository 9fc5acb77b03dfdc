//! The instance aggregate and its `evolve`: how the `instances` topic folds
//! into one server's state. The conductor decides with it; the API, replay
//! and billing fold with it, so every reader agrees on what an event means.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actions::ServerAction;
use crate::envelope::Envelope;
use crate::events::{Event, InstanceEvent};
use crate::state::{PowerState, TaskState, VmState, api_status};
use crate::values::{AccessConfig, Fault, Flavor, Image};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub id: Uuid,
    pub project_id: String,
    pub user_id: String,
    pub name: String,
    pub flavor: Flavor,
    pub image: Image,
    pub metadata: BTreeMap<String, String>,
    pub availability_zone: Option<String>,
    pub key_name: Option<String>,
    pub user_data: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub reservation_id: String,
    pub launch_index: u32,

    pub vm_state: VmState,
    pub task_state: Option<TaskState>,
    pub power_state: PowerState,

    /// The host the instance is on, or being built on.
    pub host: Option<String>,
    /// Hosts to try next if the current one fails (from the scheduler).
    pub alternates: Vec<String>,
    /// Build attempts so far (1 after the first scheduling).
    pub attempt: u32,
    pub fault: Option<Fault>,
    /// Nova's `locked_by` (`owner` or `admin`) while the instance is
    /// locked; `None` when it is not.
    pub locked_by: Option<String>,
    /// Why it was locked (2.73), while it is.
    pub locked_reason: Option<String>,

    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub launched_at_ms: Option<i64>,
    pub deleted_at_ms: Option<i64>,
    /// Number of events applied; equals the last event's aggregate_version.
    pub version: u64,
    /// Every migration of the instance, oldest first; the last one is the
    /// one in progress, if any (see [`crate::migration`]).
    pub migrations: Vec<crate::migration::Migration>,
    /// Nova's `shelved_image_id` system metadata: the snapshot a shelved
    /// instance is unshelved from, until it is.
    pub shelved_image_id: Option<Uuid>,
    /// `accessIPv4`, `accessIPv6`, `OS-DCF:diskConfig`.
    pub access: AccessConfig,
    /// Nova's `instance.hostname`: set at create (asked for from 2.90, else
    /// derived from the name), changed only by asking (update and rebuild
    /// from 2.90); empty for instances created before it was kept.
    #[serde(default)]
    pub hostname: String,
    /// Certificate ids the image is validated with (2.63); `None`: none.
    #[serde(default)]
    pub trusted_image_certificates: Option<Vec<String>>,
    /// The create's scheduler hints, as Nova's RequestSpec keeps them
    /// (shown from 2.100).
    #[serde(default)]
    pub scheduler_hints: BTreeMap<String, Vec<String>>,
    /// The host an administrator asked the create for (2.74); kept so a
    /// build held for its group asks for it too.
    #[serde(default)]
    pub requested_host: Option<String>,
}

impl Instance {
    pub fn status(&self) -> &'static str {
        api_status(self.vm_state, self.task_state)
    }

    pub fn is_deleted(&self) -> bool {
        self.vm_state == VmState::Deleted
    }

    /// The migration in progress: the last one, unless it is over.
    pub fn migration(&self) -> Option<&crate::migration::Migration> {
        self.migrations.last().filter(|m| !m.is_final())
    }

    pub fn is_locked(&self) -> bool {
        self.locked_by.is_some()
    }
}

/// Folds one `instances` record into the instance it concerns. Records at or
/// below the version already applied are duplicates and change nothing.
/// Records that are not instance transitions (verdicts) change nothing.
pub fn evolve(state: Option<Instance>, env: &Envelope) -> Option<Instance> {
    let at = env.meta.occurred_at_ms;
    if let Some(i) = &state
        && env.meta.aggregate_version <= i.version
    {
        return state;
    }
    let event = match &env.event {
        Event::Instance(event) => event,
        // Only the instance's own history changes it.
        Event::Intent(_)
        | Event::Scheduler(_)
        | Event::Compute(_)
        | Event::ComputeFact(_)
        | Event::Host(_)
        | Event::Catalog(_)
        | Event::DeadLetter(_)
        | Event::Billing(_) => return state,
    };
    if let InstanceEvent::InstanceCreated(c) = event {
        if state.is_some() {
            return state;
        }
        let Ok(id) = Uuid::parse_str(&env.meta.aggregate_id) else {
            return None;
        };
        return Some(Instance {
            id,
            project_id: c.project_id.clone(),
            user_id: c.user_id.clone(),
            name: c.name.clone(),
            flavor: c.flavor.clone(),
            image: c.image.clone(),
            metadata: c.metadata.clone(),
            availability_zone: c.availability_zone.clone(),
            key_name: c.key_name.clone(),
            user_data: c.user_data.clone(),
            description: c.description.clone(),
            tags: c.tags.clone(),
            reservation_id: c.reservation_id.clone(),
            launch_index: c.launch_index,
            vm_state: VmState::Building,
            task_state: Some(TaskState::Scheduling),
            power_state: PowerState::NoState,
            host: None,
            alternates: Vec::new(),
            attempt: 0,
            fault: None,
            locked_by: None,
            locked_reason: None,
            created_at_ms: c.created_at_ms,
            updated_at_ms: at,
            launched_at_ms: None,
            deleted_at_ms: None,
            version: env.meta.aggregate_version,
            migrations: Vec::new(),
            shelved_image_id: None,
            access: c.access,
            hostname: c.hostname.clone(),
            trusted_image_certificates: c.trusted_image_certificates.clone(),
            scheduler_hints: c.scheduler_hints.clone(),
            requested_host: c.requested_host.clone(),
        });
    }
    let mut i = state?;
    match event {
        InstanceEvent::InstanceScheduled {
            host,
            alternates,
            attempt,
        }
        | InstanceEvent::InstanceRescheduled {
            host,
            alternates,
            attempt,
            ..
        } => {
            i.host = Some(host.clone());
            i.alternates = alternates.clone();
            i.attempt = *attempt;
            if i.task_state != Some(TaskState::Deleting) {
                i.task_state = Some(TaskState::Spawning);
            }
        }
        InstanceEvent::InstanceBecameActive {
            power_state,
            launched_at_ms,
        } => {
            i.vm_state = VmState::Active;
            i.task_state = None;
            i.power_state = *power_state;
            i.launched_at_ms = Some(*launched_at_ms);
        }
        InstanceEvent::InstanceFailed { fault } => {
            i.vm_state = VmState::Error;
            i.task_state = None;
            i.fault = Some(fault.clone());
        }
        InstanceEvent::InstanceDeleteStarted => {
            i.task_state = Some(TaskState::Deleting);
        }
        InstanceEvent::InstanceTaskStarted { task_state, action } => {
            i.task_state = Some(*task_state);
            match action {
                ServerAction::Shelve { image_id } => i.shelved_image_id = *image_id,
                // 2.77: unshelved into another zone; 2.91's null unpins it.
                ServerAction::Unshelve {
                    availability_zone: Some(az),
                    ..
                } => i.availability_zone = az.clone(),
                _ => {}
            }
        }
        InstanceEvent::InstanceTaskCompleted {
            vm_state,
            power_state,
            action,
        } => {
            i.vm_state = *vm_state;
            i.task_state = None;
            i.power_state = *power_state;
            match action {
                // Offloaded: the host let go of it (Nova clears host and
                // node).
                ServerAction::ShelveOffload => {
                    i.host = None;
                    i.alternates.clear();
                }
                ServerAction::Unshelve { .. } => i.shelved_image_id = None,
                // Nova's soft delete stamps deleted_at (shown as
                // terminated_at); a restore clears it.
                ServerAction::SoftDelete => i.deleted_at_ms = Some(env.meta.occurred_at_ms),
                ServerAction::Restore => i.deleted_at_ms = None,
                _ => {}
            }
        }
        InstanceEvent::InstanceTaskFailed {
            vm_state,
            power_state,
            fault,
            action,
        } => {
            i.vm_state = *vm_state;
            i.task_state = None;
            i.power_state = *power_state;
            i.fault = Some(fault.clone());
            match action {
                // Not spawned anywhere: still offloaded, without a host.
                ServerAction::Unshelve { .. } if *vm_state == VmState::ShelvedOffloaded => {
                    i.host = None;
                    i.alternates.clear();
                }
                // The snapshot was not taken: there is no shelved image.
                ServerAction::Shelve { .. } => i.shelved_image_id = None,
                _ => {}
            }
        }
        InstanceEvent::InstanceLocked { locked_by, reason } => {
            i.locked_by = Some(locked_by.clone());
            i.locked_reason = reason.clone();
        }
        InstanceEvent::InstanceUnlocked => {
            i.locked_by = None;
            i.locked_reason = None;
        }
        InstanceEvent::InstancePowerStateSynced { power_state } => {
            i.power_state = *power_state;
        }
        InstanceEvent::InstanceUpdated {
            name,
            description,
            access,
            hostname,
        } => {
            i.name = name.clone();
            i.description = description.clone();
            if let Some(access) = access {
                i.access = *access;
            }
            if let Some(h) = hostname {
                i.hostname = h.clone();
            }
        }
        InstanceEvent::InstanceMetadataSet { metadata } => {
            i.metadata = metadata.clone();
        }
        InstanceEvent::InstanceTagsSet { tags } => {
            i.tags = tags.clone();
        }
        InstanceEvent::InstanceDeleted { deleted_at_ms } => {
            i.vm_state = VmState::Deleted;
            i.task_state = None;
            i.power_state = PowerState::NoState;
            i.deleted_at_ms = Some(*deleted_at_ms);
        }
        // A verdict changes nothing, nor does a console token or a
        // console output; a create was folded above.
        InstanceEvent::IntentRejected { .. }
        | InstanceEvent::ConsoleOutputRead { .. }
        | InstanceEvent::InstanceCreated(_)
        | InstanceEvent::ConsoleTokenIssued(_) => return Some(i),
        InstanceEvent::MigrationStarted(_)
        | InstanceEvent::MigrationScheduled(_)
        | InstanceEvent::ResizeMigrationStarted(_)
        | InstanceEvent::ResizeMigrated(_)
        | InstanceEvent::ResizeFinishStarted(_)
        | InstanceEvent::ResizeFinished(_)
        | InstanceEvent::ResizeConfirmStarted(_)
        | InstanceEvent::ResizeConfirmed(_)
        | InstanceEvent::ResizeRevertStarted(_)
        | InstanceEvent::ResizeReverted(_)
        | InstanceEvent::MigrationAborted(_)
        | InstanceEvent::MigrationErrored(_)
        | InstanceEvent::LiveMigrationStarted(_)
        | InstanceEvent::LiveMigrated(_)
        | InstanceEvent::Evacuated(_)
        | InstanceEvent::RebuildStarted(_)
        | InstanceEvent::RebuildSpawnBegan
        | InstanceEvent::RebuildCompleted { .. } => crate::migration::evolve(&mut i, event, at),
    }
    i.updated_at_ms = at;
    i.version = env.meta.aggregate_version;
    Some(i)
}
