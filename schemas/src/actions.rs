//! Server actions (`POST /servers/{id}/action`): what a user can ask of an
//! existing server, as one value that travels from the API's intent through
//! the conductor's verdict to the host's command and back.
//!
//! Adding an action: a variant here, its name in [`ServerAction::name`], its
//! wire form in `convert.rs`, its preconditions in the conductor's
//! `preconditions.rs`, and a match arm in the API's `server_actions.rs`.

use serde::{Deserialize, Serialize};

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
        }
    }

    /// The vm_state after the host carried the action out (Nova's compute
    /// manager).
    pub fn vm_state_after(&self) -> VmState {
        match self {
            ServerAction::Stop => VmState::Stopped,
            ServerAction::Pause => VmState::Paused,
            ServerAction::Suspend => VmState::Suspended,
            _ => VmState::Active,
        }
    }

    /// The vm_state after the host failed to carry the action out, from
    /// `before` with the guest now in `power`: a reboot that leaves the
    /// guest running leaves it ACTIVE, any other failed reboot is ERROR;
    /// the other actions revert only their task (Nova's
    /// `reverts_task_state`, `_error_out_instance_on_exception` with the
    /// old state).
    pub fn vm_state_after_failure(&self, before: VmState, power: PowerState) -> VmState {
        match self {
            ServerAction::Reboot { .. } if power == PowerState::Running => VmState::Active,
            ServerAction::Reboot { .. } => VmState::Error,
            _ => before,
        }
    }
}
