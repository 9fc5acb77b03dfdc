//! Server actions (`POST /servers/{id}/action`): what a user can ask of an
//! existing server, as one value that travels from the API's intent through
//! the conductor's verdict to the host's command and back.
//!
//! Adding an action: a variant here, its name in [`ServerAction::name`], its
//! wire form in `convert.rs`, its preconditions in
//! [`crate::preconditions`], and a match arm in the API's `server_actions.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use uuid::Uuid;

use crate::state::{PowerState, TaskState, VmState};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServerAction {
    /// `reboot` with `type` SOFT (`hard: false`) or HARD.
    Reboot {
        hard: bool,
    },
    /// `os-stop`.
    Stop,
    /// `os-start`.
    Start,
    Pause,
    Unpause,
    Suspend,
    Resume,
    /// `lock`, with `locked_reason` from 2.73.
    Lock {
        reason: Option<String>,
    },
    Unlock,
    /// `shelve`: the host powers the guest off and snapshots it into the
    /// `<name>-shelved` image `image_id` (named by the conductor when it
    /// accepts; `None` in the user's intent).
    Shelve {
        image_id: Option<Uuid>,
    },
    /// `shelveOffload`: the host destroys the shelved guest and releases
    /// its claim; the instance has no host afterwards.
    ShelveOffload,
    /// `unshelve`: scheduled again and spawned from the shelved image.
    /// `availability_zone` (2.77): `Some(Some(az))` moves it to `az`,
    /// `Some(None)` (2.91's `null`) unpins it, `None` keeps it; `host`
    /// (2.91, administrators) asks for one host.
    Unshelve {
        availability_zone: Option<Option<String>>,
        host: Option<String>,
    },
    /// `rescue`: reboots the guest from a rescue image, `image_id`
    /// (`rescue_image_ref`; `None` in an intent: the server's own image).
    Rescue {
        image_id: Option<Uuid>,
    },
    /// `unrescue`: back to the guest's own disk.
    Unrescue,
    /// `createImage`: the host snapshots the guest's disk into the image
    /// `image_id` (created `queued` by the conductor when it accepts;
    /// `None` in the user's intent) named `name`, with `metadata` as
    /// extra properties. The guest stays as it was.
    CreateImage {
        image_id: Option<Uuid>,
        name: String,
        metadata: BTreeMap<String, String>,
    },
    /// `trigger_crash_dump` (2.17): the host injects an NMI into the guest;
    /// no task state (Nova casts it and records the action).
    TriggerCrashDump,
    /// `os-resetState` (administrators): vm_state set to `state` (active or
    /// error), task cleared; decided by the conductor alone.
    ResetState {
        state: VmState,
    },
    /// A delete while `reclaim_instance_interval` > 0: the host powers the
    /// guest off and it waits SOFT_DELETED to be reclaimed (not a user's
    /// action by itself: the API's DELETE becomes one).
    SoftDelete,
    /// `restore`: a SOFT_DELETED guest is powered on again, ACTIVE.
    Restore,
}

impl ServerAction {
    /// Nova's name of the action: the instance action recorded
    /// (nova/compute/instance_actions.py) and the word in its 409 messages
    /// ("Cannot 'stop' instance ...").
    pub fn name(&self) -> &'static str {
        match self {
            ServerAction::Reboot { .. } => "reboot",
            ServerAction::Stop => "stop",
            ServerAction::Start => "start",
            ServerAction::Pause => "pause",
            ServerAction::Unpause => "unpause",
            ServerAction::Suspend => "suspend",
            ServerAction::Resume => "resume",
            ServerAction::Lock { .. } => "lock",
            ServerAction::Unlock => "unlock",
            ServerAction::Shelve { .. } => "shelve",
            ServerAction::ShelveOffload => "shelveOffload",
            ServerAction::Unshelve { .. } => "unshelve",
            ServerAction::Rescue { .. } => "rescue",
            ServerAction::Unrescue => "unrescue",
            ServerAction::CreateImage { .. } => "createImage",
            ServerAction::TriggerCrashDump => "trigger_crash_dump",
            ServerAction::ResetState { .. } => "resetState",
            // Nova records a soft delete as the instance action `delete`.
            ServerAction::SoftDelete => "delete",
            ServerAction::Restore => "restore",
        }
    }

    /// The task the instance is in while its host carries the action out
    /// (`None`: the conductor decides it alone, as lock and unlock).
    pub fn task_state(&self) -> Option<TaskState> {
        Some(match self {
            ServerAction::Reboot { hard: false } => TaskState::Rebooting,
            ServerAction::Reboot { hard: true } => TaskState::RebootingHard,
            ServerAction::Stop => TaskState::PoweringOff,
            ServerAction::Start => TaskState::PoweringOn,
            ServerAction::Pause => TaskState::Pausing,
            ServerAction::Unpause => TaskState::Unpausing,
            ServerAction::Suspend => TaskState::Suspending,
            ServerAction::Resume => TaskState::Resuming,
            ServerAction::Shelve { .. } => TaskState::Shelving,
            ServerAction::ShelveOffload => TaskState::ShelvingOffloading,
            ServerAction::Unshelve { .. } => TaskState::Unshelving,
            ServerAction::Rescue { .. } => TaskState::Rescuing,
            ServerAction::Unrescue => TaskState::Unrescuing,
            // Nova's API sets image_snapshot_pending; the host moves it on.
            ServerAction::CreateImage { .. } => TaskState::ImageSnapshotPending,
            ServerAction::SoftDelete => TaskState::SoftDeleting,
            ServerAction::Restore => TaskState::Restoring,
            ServerAction::Lock { .. }
            | ServerAction::Unlock
            | ServerAction::TriggerCrashDump
            | ServerAction::ResetState { .. } => return None,
        })
    }

    /// Whether `task` is this action's task, or one of the steps its host
    /// moves it through (a snapshot's `image_pending_upload`,
    /// `image_uploading`; a shelve's `shelving_image_*`).
    pub fn in_task(&self, task: Option<TaskState>) -> bool {
        let Some(own) = self.task_state() else {
            return false;
        };
        let Some(task) = task else {
            return false;
        };
        task == own
            || match self {
                ServerAction::CreateImage { .. } => matches!(
                    task,
                    TaskState::ImageSnapshot
                        | TaskState::ImagePendingUpload
                        | TaskState::ImageUploading
                ),
                ServerAction::Shelve { .. } => matches!(
                    task,
                    TaskState::ShelvingImagePendingUpload | TaskState::ShelvingImageUploading
                ),
                _ => false,
            }
    }

    /// The compute manager's method that carries the action out, as Nova
    /// names the instance action's event (`compute_<method>`).
    pub fn compute_method(&self) -> &'static str {
        match self {
            ServerAction::Reboot { .. } => "reboot_instance",
            ServerAction::Stop => "stop_instance",
            ServerAction::Start => "start_instance",
            ServerAction::Pause => "pause_instance",
            ServerAction::Unpause => "unpause_instance",
            ServerAction::Suspend => "suspend_instance",
            ServerAction::Resume => "resume_instance",
            ServerAction::Lock { .. } => "lock",
            ServerAction::Unlock => "unlock",
            ServerAction::Shelve { .. } => "shelve_instance",
            ServerAction::ShelveOffload => "shelve_offload_instance",
            ServerAction::Unshelve { .. } => "unshelve_instance",
            ServerAction::Rescue { .. } => "rescue_instance",
            ServerAction::Unrescue => "unrescue_instance",
            ServerAction::CreateImage { .. } => "snapshot_instance",
            ServerAction::TriggerCrashDump => "trigger_crash_dump",
            ServerAction::ResetState { .. } => "reset_state",
            ServerAction::SoftDelete => "soft_delete_instance",
            ServerAction::Restore => "restore_instance",
        }
    }

    /// The vm_state after the host carried the action out of `before`
    /// (Nova's compute manager).
    pub fn vm_state_after(&self, before: VmState) -> VmState {
        match self {
            // A snapshot or a crash dump leaves the guest as it was.
            ServerAction::CreateImage { .. } | ServerAction::TriggerCrashDump => before,
            ServerAction::ResetState { state } => *state,
            ServerAction::SoftDelete => VmState::SoftDeleted,
            ServerAction::Stop => VmState::Stopped,
            ServerAction::Pause => VmState::Paused,
            ServerAction::Suspend => VmState::Suspended,
            ServerAction::Shelve { .. } => VmState::Shelved,
            ServerAction::ShelveOffload => VmState::ShelvedOffloaded,
            ServerAction::Rescue { .. } => VmState::Rescued,
            _ => VmState::Active,
        }
    }

    /// The vm_state after the host failed to carry the action out, from
    /// `before` with the guest now in `power`: a reboot that leaves the
    /// guest running leaves it ACTIVE, any other failed reboot is ERROR;
    /// a failed rescue is ERROR (Nova's `rescue_instance` sets the error
    /// state); the other actions revert only their task (Nova's
    /// `reverts_task_state`, `_error_out_instance_on_exception` with the
    /// old state): a failed unshelve stays SHELVED_OFFLOADED.
    pub fn vm_state_after_failure(&self, before: VmState, power: PowerState) -> VmState {
        match self {
            ServerAction::Rescue { .. } => VmState::Error,
            ServerAction::Reboot { .. } if power == PowerState::Running => VmState::Active,
            ServerAction::Reboot { .. } => VmState::Error,
            _ => before,
        }
    }
}
