//! When an action may start: Nova's `check_instance_lock`,
//! `check_instance_host` and `check_instance_state` (nova/compute/api.py),
//! as one pure function over the instance and who asks. The allowed sets
//! sit next to each other in [`rule`], one row per action, so adding an
//! action is one row. The conductor decides with it; the API's web
//! console shows with it which actions a server's state allows now, and
//! why the others would be refused.

use crate::{Instance, Rejection, ServerAction, TaskState, VmState};

/// Why an action may not start; each becomes the rejection Nova answers
/// with ([`Refusal::rejection`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `InstanceInvalidState`: "Cannot '<action>' instance <uuid> while it
    /// is in <attr> <state>".
    InvalidState { attr: &'static str, state: String },
    /// `InstanceIsLocked`, for anyone but an administrator.
    Locked,
    /// `InstanceNotReady`: the instance has no host yet.
    NotReady,
    /// A policy refusal, e.g. unlocking an administrator's lock.
    Forbidden(String),
}

impl Refusal {
    /// The rejection, with Nova's message, for `action` on instance `id`.
    pub fn rejection(self, action: &str, id: &uuid::Uuid) -> Rejection {
        match self {
            Refusal::InvalidState { attr, state } => {
                Rejection::invalid_state(attr, state, action, id)
            }
            Refusal::Locked => Rejection::conflict(format!("Instance {id} is locked")),
            Refusal::NotReady => Rejection::conflict(format!("Instance {id} is not ready")),
            Refusal::Forbidden(m) => Rejection::forbidden(m),
        }
    }
}

/// Who asks: whether they are an administrator, and their project.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub is_admin: bool,
    pub project_id: &'a str,
}

/// An action's preconditions (the decorators on Nova's API method).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// `check_instance_lock`: a locked instance refuses non-administrators.
    pub lock: bool,
    /// `check_instance_host`: the instance must have a host.
    pub host: bool,
    /// Allowed vm_states; `None`: any.
    pub vm_states: Option<&'static [VmState]>,
    /// Allowed task states (`None` in the slice: no task); `None`: any.
    pub task_states: Option<&'static [Option<TaskState>]>,
    /// The instance must have launched once (`launched_at` set).
    pub must_have_launched: bool,
}

/// No task in progress: the default of Nova's `check_instance_state`.
const NO_TASK: &[Option<TaskState>] = &[None];

/// `vm_states.ALLOW_HARD_REBOOT`.
const ALLOW_HARD_REBOOT: &[VmState] = &[
    VmState::Active,
    VmState::Stopped,
    VmState::Paused,
    VmState::Suspended,
    VmState::Error,
];

/// `vm_states.ALLOW_TRIGGER_CRASH_DUMP`.
const ALLOW_TRIGGER_CRASH_DUMP: &[VmState] = &[
    VmState::Active,
    VmState::Paused,
    VmState::Rescued,
    VmState::Resized,
    VmState::Error,
];

/// `task_states.ALLOW_REBOOT`: a hard reboot may interrupt these tasks.
const ALLOW_REBOOT: &[Option<TaskState>] = &[
    None,
    Some(TaskState::Rebooting),
    Some(TaskState::RebootPending),
    Some(TaskState::RebootStarted),
    Some(TaskState::Resuming),
    Some(TaskState::RebootingHard),
    Some(TaskState::Unpausing),
    Some(TaskState::Pausing),
    Some(TaskState::Suspending),
];

const fn state_rule(
    host: bool,
    vm_states: &'static [VmState],
    task_states: &'static [Option<TaskState>],
) -> Rule {
    Rule {
        lock: true,
        host,
        vm_states: Some(vm_states),
        task_states: Some(task_states),
        must_have_launched: true,
    }
}

/// The preconditions of `action`.
pub fn rule(action: &ServerAction) -> Rule {
    use VmState::*;
    match action {
        ServerAction::Reboot { hard: false } => state_rule(false, &[Active], NO_TASK),
        ServerAction::Reboot { hard: true } => state_rule(false, ALLOW_HARD_REBOOT, ALLOW_REBOOT),
        ServerAction::Stop => state_rule(true, &[Active, Error], NO_TASK),
        ServerAction::Start => state_rule(true, &[Stopped], NO_TASK),
        ServerAction::Pause => state_rule(false, &[Active], NO_TASK),
        ServerAction::Unpause => state_rule(false, &[Paused], NO_TASK),
        ServerAction::Suspend => state_rule(false, &[Active], NO_TASK),
        ServerAction::Resume => state_rule(false, &[Suspended], NO_TASK),
        ServerAction::Shelve { .. } => {
            state_rule(false, &[Active, Stopped, Paused, Suspended], NO_TASK)
        }
        ServerAction::ShelveOffload => state_rule(false, &[Shelved], NO_TASK),
        ServerAction::Unshelve { .. } => state_rule(false, &[Shelved, ShelvedOffloaded], NO_TASK),
        ServerAction::Rescue { .. } => state_rule(false, &[Active, Stopped, Error], NO_TASK),
        ServerAction::Unrescue => state_rule(false, &[Rescued], NO_TASK),
        // Nova's `snapshot`: no lock check (a lock guards against changes,
        // and a snapshot changes nothing).
        ServerAction::CreateImage { .. } => Rule {
            lock: false,
            ..state_rule(false, &[Active, Stopped, Paused, Suspended], NO_TASK)
        },
        ServerAction::TriggerCrashDump => state_rule(true, ALLOW_TRIGGER_CRASH_DUMP, NO_TASK),
        // `soft_delete`: any state, no task, launched (else a plain delete).
        ServerAction::SoftDelete => Rule {
            lock: true,
            host: false,
            vm_states: None,
            task_states: Some(NO_TASK),
            must_have_launched: true,
        },
        ServerAction::Restore => Rule {
            must_have_launched: false,
            ..state_rule(false, &[SoftDeleted], NO_TASK)
        },
        // Lock and unlock are allowed in any state; unlock has its own
        // ownership rule in `check`. os-resetState (administrators) is
        // meant for any state and task.
        ServerAction::Lock { .. } | ServerAction::Unlock | ServerAction::ResetState { .. } => {
            Rule {
                lock: false,
                host: false,
                vm_states: None,
                task_states: None,
                must_have_launched: false,
            }
        }
    }
}

/// The states whose metadata and tags may change (Nova's
/// `update_instance_metadata` and the server tags controller).
const CHANGEABLE: &[VmState] = &[
    VmState::Active,
    VmState::Paused,
    VmState::Suspended,
    VmState::Stopped,
];

/// `force_delete`: any vm_state but no task, locked instances refuse
/// non-administrators.
pub const FORCE_DELETE: Rule = Rule {
    lock: true,
    host: false,
    vm_states: None,
    task_states: Some(NO_TASK),
    must_have_launched: false,
};

/// Metadata changes: locked or busy instances refuse them.
pub const METADATA: Rule = Rule {
    lock: true,
    host: false,
    vm_states: Some(CHANGEABLE),
    task_states: Some(NO_TASK),
    must_have_launched: false,
};

/// Tag changes: by vm_state only.
pub const TAGS: Rule = Rule {
    lock: false,
    host: false,
    vm_states: Some(CHANGEABLE),
    task_states: None,
    must_have_launched: false,
};

/// Whether `caller` may start `action` on `i` now, in Nova's order: lock,
/// host, vm_state, task_state, launched.
pub fn check(action: &ServerAction, i: &Instance, caller: Caller<'_>) -> Result<(), Refusal> {
    // os-resetState is an administrator's (Nova's default policy).
    if matches!(action, ServerAction::ResetState { .. }) && !caller.is_admin {
        return Err(Refusal::Forbidden(
            "Policy doesn't allow os_compute_api:os-admin-actions:reset_state to be performed."
                .to_owned(),
        ));
    }
    check_rule(rule(action), i, caller)?;
    if matches!(action, ServerAction::Unlock) && !expected_locked_by(i, caller) && !caller.is_admin
    {
        return Err(Refusal::Forbidden(
            "Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override to be performed."
                .to_owned(),
        ));
    }
    Ok(())
}

/// Whether `i` meets `r` for `caller` (also the saga actions: resize,
/// migrate, rebuild, evacuate, live migrate, confirm, revert).
pub fn check_rule(r: Rule, i: &Instance, caller: Caller<'_>) -> Result<(), Refusal> {
    if r.lock && i.is_locked() && !caller.is_admin {
        return Err(Refusal::Locked);
    }
    if r.host && i.host.is_none() {
        return Err(Refusal::NotReady);
    }
    if let Some(allowed) = r.vm_states
        && !allowed.contains(&i.vm_state)
    {
        return Err(Refusal::InvalidState {
            attr: "vm_state",
            state: i.vm_state.as_str().to_owned(),
        });
    }
    if let Some(allowed) = r.task_states
        && !allowed.contains(&i.task_state)
    {
        return Err(Refusal::InvalidState {
            attr: "task_state",
            state: i.task_state.map_or("None", |t| t.as_str()).to_owned(),
        });
    }
    if r.must_have_launched && i.launched_at_ms.is_none() {
        return Err(Refusal::InvalidState {
            attr: "launched_at",
            state: "None".to_owned(),
        });
    }
    Ok(())
}

/// Nova's `locked_by` value a lock by `caller` records.
pub fn locked_by(i: &Instance, caller: Caller<'_>) -> &'static str {
    if i.project_id == caller.project_id {
        "owner"
    } else {
        "admin"
    }
}

/// Nova's `is_expected_locked_by`: the lock, if any, was taken by the
/// same kind of caller (owner or admin) as `caller`.
fn expected_locked_by(i: &Instance, caller: Caller<'_>) -> bool {
    i.locked_by
        .as_deref()
        .is_none_or(|by| by == locked_by(i, caller))
}
