//! Server actions (`POST /servers/{id}/action`): what a user can ask of an
//! existing server, as one value that travels from the API's intent through
//! the conductor's verdict to the host's command and back.
//!
//! Adding an action: a variant here, its name in [`ServerAction::name`], its
//! wire form in `convert.rs`, its preconditions in
//! [`crate::preconditions`], and a match arm in the API's `server_actions.rs`.

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
            ServerAction::Lock { .. } | ServerAction::Unlock => return None,
        })
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
        }
    }

    /// The vm_state after the host carried the action out (Nova's compute
    /// manager).
    pub fn vm_state_after(&self) -> VmState {
        match self {
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
