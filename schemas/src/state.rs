//! Nova's three state axes, kept exactly (nova/compute/vm_states.py,
//! task_states.py, power_state.py), and the API status derived from them.
//!
//! "No task" is `Option<TaskState>::None`, never a string.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VmState {
    Active,
    Building,
    Paused,
    Suspended,
    Stopped,
    Rescued,
    Resized,
    SoftDeleted,
    Deleted,
    Error,
    Shelved,
    ShelvedOffloaded,
}

impl VmState {
    /// The name Nova uses (`OS-EXT-STS:vm_state`).
    pub fn as_str(self) -> &'static str {
        match self {
            VmState::Active => "active",
            VmState::Building => "building",
            VmState::Paused => "paused",
            VmState::Suspended => "suspended",
            VmState::Stopped => "stopped",
            VmState::Rescued => "rescued",
            VmState::Resized => "resized",
            VmState::SoftDeleted => "soft-delete",
            VmState::Deleted => "deleted",
            VmState::Error => "error",
            VmState::Shelved => "shelved",
            VmState::ShelvedOffloaded => "shelved_offloaded",
        }
    }

    /// The state Nova names `s`.
    pub fn parse(s: &str) -> Option<Self> {
        use VmState::*;
        [
            Active,
            Building,
            Paused,
            Suspended,
            Stopped,
            Rescued,
            Resized,
            SoftDeleted,
            Deleted,
            Error,
            Shelved,
            ShelvedOffloaded,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskState {
    Scheduling,
    BlockDeviceMapping,
    Networking,
    Spawning,
    Rebooting,
    RebootPending,
    RebootStarted,
    RebootingHard,
    Pausing,
    Unpausing,
    Suspending,
    Resuming,
    PoweringOff,
    PoweringOn,
    Rebuilding,
    RebuildSpawning,
    ResizePrep,
    ResizeMigrating,
    ResizeMigrated,
    ResizeFinish,
    ResizeReverting,
    ResizeConfirming,
    Migrating,
    Deleting,
    // Appended (stores keep the variant's index): shelve, rescue and
    // snapshot tasks, as Nova names them.
    Shelving,
    ShelvingImagePendingUpload,
    ShelvingImageUploading,
    ShelvingOffloading,
    Unshelving,
    Rescuing,
    Unrescuing,
    ImageSnapshot,
    ImageSnapshotPending,
    ImagePendingUpload,
    ImageUploading,
    // Appended: soft delete and restore.
    SoftDeleting,
    Restoring,
}

impl TaskState {
    /// The name Nova uses (`OS-EXT-STS:task_state`).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Scheduling => "scheduling",
            TaskState::BlockDeviceMapping => "block_device_mapping",
            TaskState::Networking => "networking",
            TaskState::Spawning => "spawning",
            TaskState::Rebooting => "rebooting",
            TaskState::RebootPending => "reboot_pending",
            TaskState::RebootStarted => "reboot_started",
            TaskState::RebootingHard => "rebooting_hard",
            TaskState::Pausing => "pausing",
            TaskState::Unpausing => "unpausing",
            TaskState::Suspending => "suspending",
            TaskState::Resuming => "resuming",
            TaskState::PoweringOff => "powering-off",
            TaskState::PoweringOn => "powering-on",
            TaskState::Rebuilding => "rebuilding",
            TaskState::RebuildSpawning => "rebuild_spawning",
            TaskState::ResizePrep => "resize_prep",
            TaskState::ResizeMigrating => "resize_migrating",
            TaskState::ResizeMigrated => "resize_migrated",
            TaskState::ResizeFinish => "resize_finish",
            TaskState::ResizeReverting => "resize_reverting",
            TaskState::ResizeConfirming => "resize_confirming",
            TaskState::Migrating => "migrating",
            TaskState::Deleting => "deleting",
            TaskState::Shelving => "shelving",
            TaskState::ShelvingImagePendingUpload => "shelving_image_pending_upload",
            TaskState::ShelvingImageUploading => "shelving_image_uploading",
            TaskState::ShelvingOffloading => "shelving_offloading",
            TaskState::Unshelving => "unshelving",
            TaskState::Rescuing => "rescuing",
            TaskState::Unrescuing => "unrescuing",
            TaskState::ImageSnapshot => "image_snapshot",
            TaskState::ImageSnapshotPending => "image_snapshot_pending",
            TaskState::ImagePendingUpload => "image_pending_upload",
            TaskState::ImageUploading => "image_uploading",
            TaskState::SoftDeleting => "soft-deleting",
            TaskState::Restoring => "restoring",
        }
    }

    /// The task Nova names `s`.
    pub fn parse(s: &str) -> Option<Self> {
        use TaskState::*;
        [
            Scheduling,
            BlockDeviceMapping,
            Networking,
            Spawning,
            Rebooting,
            RebootPending,
            RebootStarted,
            RebootingHard,
            Pausing,
            Unpausing,
            Suspending,
            Resuming,
            PoweringOff,
            PoweringOn,
            Rebuilding,
            RebuildSpawning,
            ResizePrep,
            ResizeMigrating,
            ResizeMigrated,
            ResizeFinish,
            ResizeReverting,
            ResizeConfirming,
            Migrating,
            Deleting,
            Shelving,
            ShelvingImagePendingUpload,
            ShelvingImageUploading,
            ShelvingOffloading,
            Unshelving,
            Rescuing,
            Unrescuing,
            ImageSnapshot,
            ImageSnapshotPending,
            ImagePendingUpload,
            ImageUploading,
            SoftDeleting,
            Restoring,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// The hypervisor's view; the hypervisor is the authority on it.
///
/// Records carry it as Nova's integer (`power_state` in protobuf and in
/// their JSON and stored forms, through [`power_code`]). An integer that is
/// none of these is not a power state Nova knows (its `STATE_MAP` has no
/// entry for it): such a record does not decode, the error naming the
/// field, and goes to the dead-letter topic. No Novalog build ever wrote
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PowerState {
    NoState = 0,
    Running = 1,
    Paused = 3,
    Shutdown = 4,
    Crashed = 6,
    Suspended = 7,
}

impl PowerState {
    pub fn code(self) -> i32 {
        self as i32
    }

    pub fn from_code(code: i32) -> Option<Self> {
        Some(match code {
            0 => PowerState::NoState,
            1 => PowerState::Running,
            3 => PowerState::Paused,
            4 => PowerState::Shutdown,
            6 => PowerState::Crashed,
            7 => PowerState::Suspended,
            _ => return None,
        })
    }
}

/// Serde for a record's `power_state` field: Nova's integer, as records
/// have always carried it (exports, spools, stores), not the variant name.
pub mod power_code {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use super::PowerState;

    pub fn serialize<S: Serializer>(p: &PowerState, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(p.code())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PowerState, D::Error> {
        let code = i32::deserialize(d)?;
        PowerState::from_code(code)
            .ok_or_else(|| D::Error::custom(format!("unknown power_state {code}")))
    }
}

/// The API `status` Nova derives from (vm_state, task_state)
/// (nova/api/openstack/common.py's state map).
pub fn api_status(vm: VmState, task: Option<TaskState>) -> &'static str {
    use TaskState as T;
    match vm {
        VmState::Building => "BUILD",
        VmState::Active => match task {
            Some(T::Rebooting | T::RebootPending | T::RebootStarted) => "REBOOT",
            Some(T::RebootingHard) => "HARD_REBOOT",
            Some(T::Rebuilding | T::RebuildSpawning) => "REBUILD",
            Some(T::ResizePrep | T::ResizeMigrating | T::ResizeMigrated | T::ResizeFinish) => {
                "RESIZE"
            }
            Some(T::Migrating) => "MIGRATING",
            _ => "ACTIVE",
        },
        VmState::Stopped => match task {
            Some(T::ResizePrep | T::ResizeMigrating | T::ResizeMigrated | T::ResizeFinish) => {
                "RESIZE"
            }
            Some(T::Rebuilding | T::RebuildSpawning) => "REBUILD",
            _ => "SHUTOFF",
        },
        VmState::Resized => match task {
            Some(T::ResizeReverting) => "REVERT_RESIZE",
            _ => "VERIFY_RESIZE",
        },
        VmState::Paused => "PAUSED",
        VmState::Suspended => "SUSPENDED",
        VmState::Rescued => "RESCUE",
        VmState::Error => match task {
            Some(T::Rebuilding | T::RebuildSpawning) => "REBUILD",
            _ => "ERROR",
        },
        VmState::Deleted => "DELETED",
        VmState::SoftDeleted => "SOFT_DELETED",
        VmState::Shelved => "SHELVED",
        VmState::ShelvedOffloaded => "SHELVED_OFFLOADED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_nova_state_map() {
        assert_eq!(
            api_status(VmState::Building, Some(TaskState::Scheduling)),
            "BUILD"
        );
        assert_eq!(api_status(VmState::Active, None), "ACTIVE");
        assert_eq!(
            api_status(VmState::Active, Some(TaskState::Deleting)),
            "ACTIVE"
        );
        assert_eq!(
            api_status(VmState::Active, Some(TaskState::RebootingHard)),
            "HARD_REBOOT"
        );
        assert_eq!(
            api_status(VmState::Stopped, Some(TaskState::ResizeMigrating)),
            "RESIZE"
        );
        assert_eq!(
            api_status(VmState::Resized, Some(TaskState::ResizeReverting)),
            "REVERT_RESIZE"
        );
        assert_eq!(api_status(VmState::Error, None), "ERROR");
    }

    #[test]
    fn power_state_codes_round_trip() {
        for p in [
            PowerState::NoState,
            PowerState::Running,
            PowerState::Paused,
            PowerState::Shutdown,
            PowerState::Crashed,
            PowerState::Suspended,
        ] {
            assert_eq!(PowerState::from_code(p.code()), Some(p));
        }
        assert_eq!(PowerState::from_code(2), None);
    }

    #[test]
    fn state_names_parse_back() {
        assert_eq!(VmState::parse("soft-delete"), Some(VmState::SoftDeleted));
        assert_eq!(VmState::parse("stopped"), Some(VmState::Stopped));
        assert_eq!(VmState::parse("STOPPED"), None);
        assert_eq!(
            TaskState::parse("powering-off"),
            Some(TaskState::PoweringOff)
        );
        assert_eq!(
            TaskState::parse("rebooting_hard"),
            Some(TaskState::RebootingHard)
        );
        assert_eq!(TaskState::parse("napping"), None);
    }
}
