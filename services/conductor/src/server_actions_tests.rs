//! Given / when / then tests of the server actions: Nova's preconditions
//! for every action, the state transitions its compute manager makes, and
//! the lock.

use novalog_schemas::{
    Actor, Envelope, Event, Instance, PowerState, RejectionKind, ServerAction, TaskState, VmState,
};
use novalog_schemas::{ComputeCommand, ComputeFact, InstanceEvent, Intent};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit};
use crate::tests::{NOW, actor, create, fact, given, record, selected, spawned, types};

const HOST: &str = "h1";

fn admin() -> Actor {
    Actor {
        user_id: "admin".into(),
        project_id: "admin".into(),
        roles: vec!["admin".into()],
    }
}

/// Given an ACTIVE server of project `demo` on `h1`.
fn active() -> (Conductor, Uuid) {
    let mut c = given();
    let id = Uuid::new_v4();
    create(&mut c, id);
    selected(&mut c, id, &[HOST]);
    spawned(&mut c, id, HOST, 1);
    assert_eq!(c.instances[&id].vm_state, VmState::Active);
    (c, id)
}

fn ask(c: &mut Conductor, who: Actor, id: Uuid, action: ServerAction) -> Vec<Emit> {
    c.handle(
        &record(
            who,
            Event::Intent(Intent::ServerActionRequested {
                instance_id: id,
                action,
            }),
        ),
        NOW,
    )
}

fn performed(c: &mut Conductor, id: Uuid, action: ServerAction, power: PowerState) -> Vec<Emit> {
    c.handle(
        &fact(Event::ComputeFact(ComputeFact::ServerActionPerformed {
            instance_id: id,
            host: HOST.into(),
            action,
            power_state: power,
        })),
        NOW,
    )
}

fn failed(c: &mut Conductor, id: Uuid, action: ServerAction, power: PowerState) -> Vec<Emit> {
    c.handle(
        &fact(Event::ComputeFact(ComputeFact::ServerActionFailed {
            instance_id: id,
            host: HOST.into(),
            action,
            reason: "the hypervisor said no".into(),
            power_state: power,
        })),
        NOW,
    )
}

/// Nova's `InstanceInvalidState` kind: `method` refused while the
/// instance's `attribute` is `state`.
fn invalid_state(attribute: &str, state: &str, method: &str) -> RejectionKind {
    RejectionKind::InvalidState {
        attribute: attribute.into(),
        state: state.into(),
        method: method.into(),
    }
}

fn rejection(out: &[Emit]) -> Option<(RejectionKind, String)> {
    match out {
        [
            Emit {
                env:
                    Envelope {
                        event: Event::Instance(InstanceEvent::IntentRejected { kind, message, .. }),
                        ..
                    },
                ..
            },
        ] => Some((kind.clone(), message.clone())),
        _ => None,
    }
}

fn state(i: &Instance) -> (VmState, Option<TaskState>, PowerState) {
    (i.vm_state, i.task_state, i.power_state)
}

#[test]
fn each_action_goes_to_the_host_and_lands_where_novas_compute_manager_puts_it() {
    use PowerState as P;
    use VmState as V;
    // (action, vm_state before, task while on the host, vm_state after,
    // power after, API status while in the task)
    let cases = [
        (
            ServerAction::Reboot { hard: false },
            V::Active,
            TaskState::Rebooting,
            V::Active,
            P::Running,
            "REBOOT",
        ),
        (
            ServerAction::Reboot { hard: true },
            V::Active,
            TaskState::RebootingHard,
            V::Active,
            P::Running,
            "HARD_REBOOT",
        ),
        (
            ServerAction::Reboot { hard: true },
            V::Stopped,
            TaskState::RebootingHard,
            V::Active,
            P::Running,
            "SHUTOFF",
        ),
        (
            ServerAction::Stop,
            V::Active,
            TaskState::PoweringOff,
            V::Stopped,
            P::Shutdown,
            "ACTIVE",
        ),
        (
            ServerAction::Stop,
            V::Error,
            TaskState::PoweringOff,
            V::Stopped,
            P::Shutdown,
            "ERROR",
        ),
        (
            ServerAction::Start,
            V::Stopped,
            TaskState::PoweringOn,
            V::Active,
            P::Running,
            "SHUTOFF",
        ),
        (
            ServerAction::Pause,
            V::Active,
            TaskState::Pausing,
            V::Paused,
            P::Paused,
            "ACTIVE",
        ),
        (
            ServerAction::Unpause,
            V::Paused,
            TaskState::Unpausing,
            V::Active,
            P::Running,
            "PAUSED",
        ),
        (
            ServerAction::Suspend,
            V::Active,
            TaskState::Suspending,
            V::Suspended,
            P::Suspended,
            "ACTIVE",
        ),
        (
            ServerAction::Resume,
            V::Suspended,
            TaskState::Resuming,
            V::Active,
            P::Running,
            "SUSPENDED",
        ),
    ];
    for (action, before, task, after, power, status) in cases {
        let (mut c, id) = active();
        c.instances.get_mut(&id).unwrap().vm_state = before;
        let out = ask(&mut c, actor("demo"), id, action.clone());
        assert_eq!(
            types(&out),
            ["InstanceTaskStarted", "PerformServerAction"],
            "{action:?}"
        );
        assert_eq!(out[0].key, "demo", "instance events are keyed by project");
        assert_eq!((out[1].dest, out[1].key.as_str()), (Dest::Compute, HOST));
        match &out[1].env.event {
            Event::Compute(ComputeCommand::PerformServerAction {
                instance_id,
                host,
                action: a,
            }) => assert_eq!((*instance_id, host.as_str(), a), (id, HOST, &action)),
            e => panic!("{e:?}"),
        }
        let i = &c.instances[&id];
        assert_eq!((i.vm_state, i.task_state), (before, Some(task)));
        assert_eq!(i.status(), status, "{action:?}");

        let done = performed(&mut c, id, action.clone(), power);
        assert_eq!(types(&done), ["InstanceTaskCompleted"]);
        assert_eq!(state(&c.instances[&id]), (after, None, power), "{action:?}");
        assert!(
            performed(&mut c, id, action.clone(), power).is_empty(),
            "a redelivered result changes nothing"
        );
    }
}

/// (action, vm_state, task_state, launched, refusal; `None`: accepted)
type Precondition = (
    ServerAction,
    VmState,
    Option<TaskState>,
    bool,
    Option<&'static str>,
);

#[test]
fn every_precondition_is_novas_with_its_exact_invalid_state() {
    use TaskState as T;
    use VmState as V;
    let cases: Vec<Precondition> = vec![
        (
            ServerAction::Reboot { hard: false },
            V::Stopped,
            None,
            true,
            Some("vm_state stopped"),
        ),
        (
            ServerAction::Reboot { hard: false },
            V::Active,
            Some(T::Pausing),
            true,
            Some("task_state pausing"),
        ),
        (
            ServerAction::Reboot { hard: true },
            V::Paused,
            None,
            true,
            None,
        ),
        (
            ServerAction::Reboot { hard: true },
            V::Suspended,
            None,
            true,
            None,
        ),
        (
            ServerAction::Reboot { hard: true },
            V::Error,
            None,
            true,
            None,
        ),
        (
            ServerAction::Reboot { hard: true },
            V::Active,
            Some(T::Rebooting),
            true,
            None,
        ),
        (
            ServerAction::Reboot { hard: true },
            V::Active,
            Some(T::Pausing),
            true,
            None,
        ),
        (
            ServerAction::Reboot { hard: true },
            V::Active,
            Some(T::PoweringOff),
            true,
            Some("task_state powering-off"),
        ),
        (
            ServerAction::Reboot { hard: true },
            V::Resized,
            None,
            true,
            Some("vm_state resized"),
        ),
        (
            ServerAction::Reboot { hard: true },
            V::Active,
            None,
            false,
            Some("launched_at None"),
        ),
        (
            ServerAction::Stop,
            V::Stopped,
            None,
            true,
            Some("vm_state stopped"),
        ),
        (
            ServerAction::Stop,
            V::Active,
            Some(T::Rebooting),
            true,
            Some("task_state rebooting"),
        ),
        (
            ServerAction::Start,
            V::Active,
            None,
            true,
            Some("vm_state active"),
        ),
        (
            ServerAction::Start,
            V::Stopped,
            Some(T::PoweringOff),
            true,
            Some("task_state powering-off"),
        ),
        (
            ServerAction::Pause,
            V::Paused,
            None,
            true,
            Some("vm_state paused"),
        ),
        (
            ServerAction::Pause,
            V::Active,
            Some(T::Suspending),
            true,
            Some("task_state suspending"),
        ),
        (
            ServerAction::Unpause,
            V::Active,
            None,
            true,
            Some("vm_state active"),
        ),
        (
            ServerAction::Suspend,
            V::Stopped,
            None,
            true,
            Some("vm_state stopped"),
        ),
        (
            ServerAction::Resume,
            V::Active,
            None,
            true,
            Some("vm_state active"),
        ),
        (
            ServerAction::Resume,
            V::Suspended,
            Some(T::Deleting),
            true,
            Some("task_state deleting"),
        ),
        (
            ServerAction::Lock { reason: None },
            V::Building,
            Some(T::Scheduling),
            false,
            None,
        ),
        (ServerAction::Unlock, V::Error, None, true, None),
    ];
    for (action, vm, task, launched, refusal) in cases {
        let (mut c, id) = active();
        let i = c.instances.get_mut(&id).unwrap();
        i.vm_state = vm;
        i.task_state = task;
        if !launched {
            i.launched_at_ms = None;
        }
        let out = ask(&mut c, actor("demo"), id, action.clone());
        match refusal {
            None => assert!(
                rejection(&out).is_none(),
                "{action:?} {vm:?} {task:?}: {out:?}"
            ),
            Some(why) => assert_eq!(
                rejection(&out),
                Some((
                    {
                        let (attribute, state) = why.split_once(' ').unwrap();
                        invalid_state(attribute, state, action.name())
                    },
                    format!(
                        "Cannot '{}' instance {id} while it is in {why}",
                        action.name()
                    )
                )),
                "{action:?} {vm:?} {task:?}"
            ),
        }
    }
}

#[test]
fn a_task_in_progress_blocks_other_tasks_until_the_host_reports() {
    let (mut c, id) = active();
    ask(&mut c, actor("demo"), id, ServerAction::Pause);
    let out = ask(&mut c, actor("demo"), id, ServerAction::Stop);
    assert_eq!(
        rejection(&out),
        Some((
            invalid_state("task_state", "pausing", "stop"),
            format!("Cannot 'stop' instance {id} while it is in task_state pausing")
        ))
    );
    performed(&mut c, id, ServerAction::Pause, PowerState::Paused);
    let out = ask(&mut c, actor("demo"), id, ServerAction::Unpause);
    assert_eq!(types(&out), ["InstanceTaskStarted", "PerformServerAction"]);
}

#[test]
fn a_host_action_needs_a_host_and_an_unknown_or_foreign_server_is_404() {
    let mut c = given();
    let id = Uuid::new_v4();
    create(&mut c, id);
    let out = ask(&mut c, actor("demo"), id, ServerAction::Stop);
    assert_eq!(
        rejection(&out),
        Some((
            RejectionKind::Conflict,
            format!("Instance {id} is not ready")
        ))
    );
    let out = ask(&mut c, actor("demo"), id, ServerAction::Pause);
    assert_eq!(
        rejection(&out),
        Some((
            invalid_state("vm_state", "building", "pause"),
            format!("Cannot 'pause' instance {id} while it is in vm_state building")
        ))
    );
    let (mut c, id) = active();
    let missing = Uuid::new_v4();
    let not_found = |id: Uuid| {
        Some((
            RejectionKind::NotFound,
            format!("Instance {id} could not be found."),
        ))
    };
    assert_eq!(
        rejection(&ask(&mut c, actor("demo"), missing, ServerAction::Stop)),
        not_found(missing)
    );
    assert_eq!(
        rejection(&ask(&mut c, actor("other"), id, ServerAction::Stop)),
        not_found(id)
    );
    // An administrator acts on any project's server.
    let out = ask(&mut c, admin(), id, ServerAction::Stop);
    assert_eq!(out[0].key, "demo", "still keyed by the instance's project");
    assert_eq!(types(&out), ["InstanceTaskStarted", "PerformServerAction"]);
}

#[test]
fn a_failed_action_records_a_fault_and_reverts_only_the_task() {
    let (mut c, id) = active();
    ask(&mut c, actor("demo"), id, ServerAction::Pause);
    let out = failed(&mut c, id, ServerAction::Pause, PowerState::Running);
    assert_eq!(types(&out), ["InstanceTaskFailed"]);
    let i = &c.instances[&id];
    assert_eq!(state(i), (VmState::Active, None, PowerState::Running));
    let fault = i.fault.as_ref().expect("a fault");
    assert_eq!(
        (fault.code, fault.message.as_str()),
        (500, "the hypervisor said no")
    );
    assert!(
        fault.details.contains("pause_instance"),
        "{}",
        fault.details
    );
}

#[test]
fn a_failed_reboot_is_active_if_the_guest_runs_else_error() {
    let (mut c, id) = active();
    ask(
        &mut c,
        actor("demo"),
        id,
        ServerAction::Reboot { hard: false },
    );
    failed(
        &mut c,
        id,
        ServerAction::Reboot { hard: false },
        PowerState::Running,
    );
    assert_eq!(
        state(&c.instances[&id]),
        (VmState::Active, None, PowerState::Running)
    );
    ask(
        &mut c,
        actor("demo"),
        id,
        ServerAction::Reboot { hard: true },
    );
    failed(
        &mut c,
        id,
        ServerAction::Reboot { hard: true },
        PowerState::Shutdown,
    );
    let i = &c.instances[&id];
    assert_eq!(state(i), (VmState::Error, None, PowerState::Shutdown));
    assert_eq!(i.status(), "ERROR");
    // From ERROR a hard reboot is still allowed (Nova's way out).
    let out = ask(
        &mut c,
        actor("demo"),
        id,
        ServerAction::Reboot { hard: true },
    );
    assert_eq!(types(&out), ["InstanceTaskStarted", "PerformServerAction"]);
}

#[test]
fn a_result_for_a_task_a_delete_pre_empted_is_ignored() {
    let (mut c, id) = active();
    ask(&mut c, actor("demo"), id, ServerAction::Suspend);
    c.handle(
        &record(
            actor("demo"),
            Event::Intent(Intent::ServerDeleteRequested {
                instance_id: id,
                force: false,
            }),
        ),
        NOW,
    );
    assert!(performed(&mut c, id, ServerAction::Suspend, PowerState::Suspended).is_empty());
    assert_eq!(c.instances[&id].task_state, Some(TaskState::Deleting));
    // And a result from another host than the instance's is ignored too.
    let (mut c, id) = active();
    ask(&mut c, actor("demo"), id, ServerAction::Stop);
    let out = c.handle(
        &fact(Event::ComputeFact(ComputeFact::ServerActionPerformed {
            instance_id: id,
            host: "elsewhere".into(),
            action: ServerAction::Stop,
            power_state: novalog_schemas::PowerState::Shutdown,
        })),
        NOW,
    );
    assert!(out.is_empty());
}

#[test]
fn a_lock_blocks_everyone_but_administrators() {
    let (mut c, id) = active();
    let out = ask(
        &mut c,
        actor("demo"),
        id,
        ServerAction::Lock {
            reason: Some("maintenance".into()),
        },
    );
    assert_eq!(types(&out), ["InstanceLocked"]);
    let i = &c.instances[&id];
    assert_eq!(i.locked_by.as_deref(), Some("owner"));
    assert_eq!(i.locked_reason.as_deref(), Some("maintenance"));
    assert_eq!(i.task_state, None, "a lock is no task");

    let locked = Some((RejectionKind::Conflict, format!("Instance {id} is locked")));
    for action in [
        ServerAction::Stop,
        ServerAction::Reboot { hard: true },
        ServerAction::Pause,
        ServerAction::Suspend,
    ] {
        assert_eq!(rejection(&ask(&mut c, actor("demo"), id, action)), locked);
    }
    let delete = Event::Intent(Intent::ServerDeleteRequested {
        instance_id: id,
        force: false,
    });
    assert_eq!(
        rejection(&c.handle(&record(actor("demo"), delete.clone()), NOW)),
        locked
    );
    // Administrators are not held by a lock.
    let out = ask(&mut c, admin(), id, ServerAction::Pause);
    assert_eq!(types(&out), ["InstanceTaskStarted", "PerformServerAction"]);
    performed(&mut c, id, ServerAction::Pause, PowerState::Paused);
    // The owner may lift their own lock.
    assert_eq!(
        types(&ask(&mut c, actor("demo"), id, ServerAction::Unlock)),
        ["InstanceUnlocked"]
    );
    let i = &c.instances[&id];
    assert_eq!(
        (i.locked_by.as_ref(), i.locked_reason.as_ref()),
        (None, None)
    );
    assert_eq!(
        types(&ask(&mut c, actor("demo"), id, ServerAction::Unpause)),
        ["InstanceTaskStarted", "PerformServerAction"]
    );
}

#[test]
fn only_an_administrator_lifts_an_administrators_lock() {
    let (mut c, id) = active();
    ask(&mut c, admin(), id, ServerAction::Lock { reason: None });
    assert_eq!(c.instances[&id].locked_by.as_deref(), Some("admin"));
    assert_eq!(
        rejection(&ask(&mut c, actor("demo"), id, ServerAction::Unlock)),
        Some((
            RejectionKind::Forbidden,
            "Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override to be performed.".into()
        ))
    );
    assert_eq!(
        types(&ask(&mut c, admin(), id, ServerAction::Unlock)),
        ["InstanceUnlocked"]
    );
}

#[test]
fn action_output_ids_are_deterministic() {
    let (mut a, id) = active();
    let mut b = Conductor::new(Default::default());
    b.instances = a.instances.clone();
    let req = record(
        actor("demo"),
        Event::Intent(Intent::ServerActionRequested {
            instance_id: id,
            action: ServerAction::Stop,
        }),
    );
    let x = a.handle(&req, NOW);
    let y = b.handle(&req, NOW);
    let ids = |o: &[Emit]| o.iter().map(|e| e.env.meta.event_id).collect::<Vec<_>>();
    assert_eq!(ids(&x), ids(&y));
    assert_eq!(x[0].env.meta.correlation_id, "req-test");
}

fn change(c: &mut Conductor, who: Actor, event: Event) -> Vec<Emit> {
    c.handle(&record(who, event), NOW)
}

fn metadata(id: Uuid, replace_all: bool, set: &[(&str, &str)], remove: &[&str]) -> Event {
    Event::Intent(Intent::ServerMetadataChangeRequested {
        instance_id: id,
        replace_all,
        set: set
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        remove: remove.iter().map(|k| k.to_string()).collect(),
    })
}

fn tags(id: Uuid, replace_all: bool, add: &[&str], remove: &[&str]) -> Event {
    Event::Intent(Intent::ServerTagsChangeRequested {
        instance_id: id,
        replace_all,
        add: add.iter().map(|t| t.to_string()).collect(),
        remove: remove.iter().map(|t| t.to_string()).collect(),
    })
}

#[test]
fn update_changes_only_what_is_given() {
    let (mut c, id) = active();
    let out = change(
        &mut c,
        actor("demo"),
        Event::Intent(Intent::ServerUpdateRequested {
            instance_id: id,
            name: Some("renamed".into()),
            description: None,
            access: Default::default(),
            hostname: None,
        }),
    );
    assert_eq!(types(&out), ["InstanceUpdated"]);
    assert_eq!(c.instances[&id].name, "renamed");
    change(
        &mut c,
        actor("demo"),
        Event::Intent(Intent::ServerUpdateRequested {
            instance_id: id,
            name: None,
            description: Some(Some("web".into())),
            access: Default::default(),
            hostname: None,
        }),
    );
    let i = &c.instances[&id];
    assert_eq!(
        (i.name.as_str(), i.description.as_deref()),
        ("renamed", Some("web"))
    );
    let out = change(
        &mut c,
        actor("other"),
        Event::Intent(Intent::ServerUpdateRequested {
            instance_id: id,
            name: Some("mine".into()),
            description: None,
            access: Default::default(),
            hostname: None,
        }),
    );
    assert_eq!(rejection(&out).map(|r| r.0), Some(RejectionKind::NotFound));
}

#[test]
fn update_changes_the_access_settings_given_and_keeps_the_others() {
    let (mut c, id) = active();
    let change_to = |access| {
        Event::Intent(Intent::ServerUpdateRequested {
            instance_id: id,
            name: None,
            description: None,
            access,
            hostname: None,
        })
    };
    let out = change(
        &mut c,
        actor("demo"),
        change_to(novalog_schemas::AccessChange {
            access_ip_v4: Some([198, 51, 100, 4].into()),
            auto_disk_config: Some(true),
            ..Default::default()
        }),
    );
    assert_eq!(types(&out), ["InstanceUpdated"]);
    change(
        &mut c,
        actor("demo"),
        change_to(novalog_schemas::AccessChange {
            access_ip_v6: Some("2001:db8::1".parse().unwrap()),
            ..Default::default()
        }),
    );
    let a = c.instances[&id].access;
    assert_eq!(a.access_ip_v4, Some([198, 51, 100, 4].into()));
    assert_eq!(a.access_ip_v6, Some("2001:db8::1".parse().unwrap()));
    assert!(a.auto_disk_config, "not given: kept");
}

#[test]
fn metadata_merges_replaces_and_removes_with_novas_refusals() {
    let (mut c, id) = active();
    change(
        &mut c,
        actor("demo"),
        metadata(id, false, &[("a", "1"), ("b", "2")], &[]),
    );
    change(
        &mut c,
        actor("demo"),
        metadata(id, false, &[("b", "3")], &["a"]),
    );
    assert_eq!(
        c.instances[&id].metadata,
        [("b".to_string(), "3".to_string())].into()
    );
    change(
        &mut c,
        actor("demo"),
        metadata(id, true, &[("c", "4")], &[]),
    );
    assert_eq!(
        c.instances[&id].metadata,
        [("c".to_string(), "4".to_string())].into()
    );
    assert_eq!(
        rejection(&change(
            &mut c,
            actor("demo"),
            metadata(id, false, &[], &["zz"])
        )),
        Some((
            RejectionKind::NotFound,
            "Metadata item was not found".into()
        ))
    );
    let many: Vec<(String, String)> = (0..129).map(|n| (format!("k{n}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        rejection(&change(
            &mut c,
            actor("demo"),
            metadata(id, true, &many, &[])
        )),
        Some((
            RejectionKind::OverQuota,
            "Maximum number of metadata items exceeds 128".into()
        ))
    );
    ask(&mut c, actor("demo"), id, ServerAction::Stop);
    assert_eq!(
        rejection(&change(
            &mut c,
            actor("demo"),
            metadata(id, false, &[], &["c"])
        )),
        Some((
            invalid_state("task_state", "powering-off", "delete metadata"),
            format!(
                "Cannot 'delete metadata' instance {id} while it is in task_state powering-off"
            )
        ))
    );
    performed(&mut c, id, ServerAction::Stop, PowerState::Shutdown);
    ask(
        &mut c,
        actor("demo"),
        id,
        ServerAction::Lock { reason: None },
    );
    assert_eq!(
        rejection(&change(
            &mut c,
            actor("demo"),
            metadata(id, false, &[("d", "")], &[])
        )),
        Some((RejectionKind::Conflict, format!("Instance {id} is locked")))
    );
}

#[test]
fn tags_are_added_removed_and_limited_as_nova_does() {
    let (mut c, id) = active();
    change(&mut c, actor("demo"), tags(id, false, &["red"], &[]));
    change(
        &mut c,
        actor("demo"),
        tags(id, false, &["blue", "red"], &[]),
    );
    assert_eq!(c.instances[&id].tags, ["red", "blue"]);
    change(&mut c, actor("demo"), tags(id, false, &[], &["red"]));
    assert_eq!(c.instances[&id].tags, ["blue"]);
    assert_eq!(
        rejection(&change(
            &mut c,
            actor("demo"),
            tags(id, false, &[], &["red"])
        )),
        Some((
            RejectionKind::NotFound,
            format!("Instance {id} has no tag 'red'")
        ))
    );
    let fifty: Vec<String> = (0..50).map(|n| format!("t{n}")).collect();
    let fifty: Vec<&str> = fifty.iter().map(String::as_str).collect();
    change(&mut c, actor("demo"), tags(id, true, &fifty, &[]));
    assert_eq!(c.instances[&id].tags.len(), 50);
    assert_eq!(
        rejection(&change(
            &mut c,
            actor("demo"),
            tags(id, false, &["one-more"], &[])
        )),
        Some((
            RejectionKind::Invalid,
            "The number of tags exceeded the per-server limit 50".into()
        ))
    );
    change(&mut c, actor("demo"), tags(id, true, &[], &[]));
    assert!(c.instances[&id].tags.is_empty());
    c.instances.get_mut(&id).unwrap().vm_state = VmState::Error;
    assert_eq!(
        rejection(&change(&mut c, actor("demo"), tags(id, false, &["x"], &[]))),
        Some((
            invalid_state("vm_state", "error", "update tag"),
            format!("Cannot 'update tag' instance {id} while it is in vm_state error")
        ))
    );
}

fn set_quota(
    c: &mut Conductor,
    who: Actor,
    project: &str,
    limits: &[(&str, i64)],
    force: bool,
) -> Vec<Emit> {
    change(
        c,
        who,
        Event::Intent(Intent::QuotaSetRequested {
            project_id: project.into(),
            limits: limits.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            force,
        }),
    )
}

#[test]
fn creates_stop_exactly_at_the_quota_and_deletes_give_room_back() {
    let mut c = given();
    let out = set_quota(&mut c, admin(), "demo", &[("instances", 3)], false);
    assert_eq!(types(&out), ["QuotaSetUpdated"]);
    assert_eq!((out[0].dest, out[0].key.as_str()), (Dest::Catalog, "demo"));
    let ids: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    for id in &ids[..3] {
        assert_eq!(types(&create(&mut c, *id))[0], "InstanceCreated");
    }
    assert_eq!(
        rejection(&create(&mut c, ids[3])),
        Some((
            RejectionKind::OverQuota,
            "Quota exceeded for instances: Requested 1, but already used 3 of 3 instances".into()
        ))
    );
    // Another project has its own quota.
    let other = Uuid::new_v4();
    let out = crate::tests::create_with_hints(&mut c, other, "elsewhere", Default::default());
    assert_eq!(types(&out)[0], "InstanceCreated");
    // A deletion (once done) gives the room back.
    change(
        &mut c,
        actor("demo"),
        Event::Intent(Intent::ServerDeleteRequested {
            instance_id: ids[0],
            force: false,
        }),
    );
    assert_eq!(types(&create(&mut c, ids[3]))[0], "InstanceCreated");
    assert_eq!(c.usage["demo"].instances, 3);
}

#[test]
fn cores_and_ram_count_too() {
    let mut c = given();
    set_quota(
        &mut c,
        admin(),
        "demo",
        &[("cores", 2), ("ram", 1024)],
        false,
    );
    create(&mut c, Uuid::new_v4());
    create(&mut c, Uuid::new_v4());
    assert_eq!(
        rejection(&create(&mut c, Uuid::new_v4())),
        Some((
            RejectionKind::OverQuota,
            "Quota exceeded for cores, ram: Requested 1, 512, but already used 2, 1024 of 2, 1024 cores, ram".into()
        ))
    );
}

#[test]
fn quota_changes_are_for_administrators_and_respect_usage_unless_forced() {
    let mut c = given();
    for _ in 0..2 {
        create(&mut c, Uuid::new_v4());
    }
    assert_eq!(
        rejection(&set_quota(
            &mut c,
            actor("demo"),
            "demo",
            &[("instances", 50)],
            false
        )),
        Some((
            RejectionKind::Forbidden,
            "Policy doesn't allow os_compute_api:os-quota-sets:update to be performed.".into()
        ))
    );
    assert_eq!(
        rejection(&set_quota(&mut c, admin(), "demo", &[("instances", 1)], false)),
        Some((
            RejectionKind::Invalid,
            "Quota limit 1 for instances must be greater than or equal to already used and reserved 2.".into()
        ))
    );
    assert_eq!(
        types(&set_quota(
            &mut c,
            admin(),
            "demo",
            &[("instances", 1)],
            true
        )),
        ["QuotaSetUpdated"]
    );
    assert!(rejection(&create(&mut c, Uuid::new_v4())).is_some());
    let out = change(
        &mut c,
        admin(),
        Event::Intent(Intent::QuotaResetRequested {
            project_id: "demo".into(),
        }),
    );
    assert_eq!(types(&out), ["QuotaSetDeleted"]);
    assert!(!c.quota_overrides.contains_key("demo"));
    assert_eq!(types(&create(&mut c, Uuid::new_v4()))[0], "InstanceCreated");
}

#[test]
fn usage_rebuilt_on_load_equals_usage_kept_while_folding() {
    let mut c = given();
    for _ in 0..3 {
        create(&mut c, Uuid::new_v4());
    }
    let gone = Uuid::new_v4();
    create(&mut c, gone);
    change(
        &mut c,
        actor("demo"),
        Event::Intent(Intent::ServerDeleteRequested {
            instance_id: gone,
            force: false,
        }),
    );
    let kept = c.usage.clone();
    assert_eq!(kept["demo"].instances, 3);
    let mut reloaded = Conductor::new(Default::default());
    reloaded.instances = c.instances.clone();
    reloaded.rebuild_usage();
    assert_eq!(reloaded.usage, kept);
}

fn multi(c: &mut Conductor, reservation: &str, index: u32, min: u32, max: u32) -> Vec<Emit> {
    let req = Event::Intent(Intent::ServerCreateRequested(Box::new(
        novalog_schemas::events::ServerCreateRequested {
            instance_id: Uuid::new_v4(),
            name: format!("m-{index}"),
            flavor: crate::tests::flavor(),
            image: crate::tests::image(),
            metadata: Default::default(),
            availability_zone: None,
            key_name: None,
            user_data: None,
            description: None,
            tags: vec![],
            reservation_id: reservation.into(),
            launch_index: index,
            scheduler_hints: Default::default(),
            min_count: min,
            max_count: max,
            access: Default::default(),
            hostname: String::new(),
            trusted_image_certificates: None,
            requested_host: None,
        },
    )));
    c.handle(&record(actor("demo"), req), NOW)
}

#[test]
fn a_multiple_create_gets_what_fits_or_nothing_below_min_count() {
    let mut c = given();
    for _ in 0..7 {
        create(&mut c, Uuid::new_v4());
    }
    // 3 of 5 fit: the first instance reserves room for two more.
    assert_eq!(types(&multi(&mut c, "r-a", 0, 2, 5))[0], "InstanceCreated");
    // Another request cannot take the reserved room in between.
    assert_eq!(
        rejection(&create(&mut c, Uuid::new_v4())),
        Some((
            RejectionKind::OverQuota,
            "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances".into()
        ))
    );
    for i in 1..3 {
        assert_eq!(types(&multi(&mut c, "r-a", i, 2, 5))[0], "InstanceCreated");
    }
    for i in 3..5 {
        assert!(rejection(&multi(&mut c, "r-a", i, 2, 5)).is_some());
    }
    assert_eq!(c.usage["demo"].instances, 10);

    // Fewer than min_count fit: none of them is created.
    let mut c = given();
    for _ in 0..7 {
        create(&mut c, Uuid::new_v4());
    }
    let refusal = Some((
        RejectionKind::OverQuota,
        "Quota exceeded for instances: Requested 4-5, but already used 7 of 10 instances".into(),
    ));
    for i in 0..5 {
        assert_eq!(rejection(&multi(&mut c, "r-b", i, 4, 5)), refusal, "{i}");
    }
    assert_eq!(c.usage["demo"].instances, 7);
}

fn create_with_metadata(c: &mut Conductor, items: usize) -> Vec<Emit> {
    let req = Event::Intent(Intent::ServerCreateRequested(Box::new(
        novalog_schemas::events::ServerCreateRequested {
            instance_id: Uuid::new_v4(),
            name: "meta".into(),
            flavor: crate::tests::flavor(),
            image: crate::tests::image(),
            metadata: (0..items).map(|n| (format!("k{n}"), "v".into())).collect(),
            availability_zone: None,
            key_name: None,
            user_data: None,
            description: None,
            tags: vec![],
            reservation_id: format!("r-meta-{items}"),
            launch_index: 0,
            scheduler_hints: Default::default(),
            min_count: 1,
            max_count: 1,
            access: Default::default(),
            hostname: String::new(),
            trusted_image_certificates: None,
            requested_host: None,
        },
    )));
    c.handle(&record(actor("demo"), req), NOW)
}

#[test]
fn a_create_with_more_metadata_items_than_the_quota_is_refused() {
    let mut c = given();
    assert_eq!(
        types(&create_with_metadata(&mut c, 128))[0],
        "InstanceCreated"
    );
    assert_eq!(
        rejection(&create_with_metadata(&mut c, 129)),
        Some((
            RejectionKind::OverQuota,
            "Maximum number of metadata items exceeds 128".into()
        ))
    );
    // The project's own limit, not a fixed number, both ways.
    c.quota_overrides
        .insert("demo".into(), [("metadata_items".to_string(), 2)].into());
    assert_eq!(
        rejection(&create_with_metadata(&mut c, 3)).map(|r| r.1),
        Some("Maximum number of metadata items exceeds 2".into())
    );
    let (mut c, id) = active();
    c.quota_overrides
        .insert("demo".into(), [("metadata_items".to_string(), 2)].into());
    assert_eq!(
        rejection(&change(
            &mut c,
            actor("demo"),
            metadata(id, true, &[("a", "1"), ("b", "2"), ("c", "3")], &[])
        ))
        .map(|r| r.1),
        Some("Maximum number of metadata items exceeds 2".into())
    );
    c.quota_overrides
        .insert("demo".into(), [("metadata_items".to_string(), -1)].into());
    assert_eq!(
        types(&create_with_metadata(&mut c, 300))[0],
        "InstanceCreated"
    );
}

// ---- a host that never answers ----

#[test]
fn a_host_action_nobody_answers_times_out_and_ends_the_task() {
    let (mut c, id) = active();
    ask(&mut c, actor("demo"), id, ServerAction::Stop);
    assert_eq!(c.instances[&id].task_state, Some(TaskState::PoweringOff));
    let timeout = c.settings.timeout_ms(crate::saga::Step::Action("stop"));
    assert!(timeout > 0);
    assert!(
        c.expired(NOW + timeout - 1).is_empty(),
        "not before its deadline"
    );
    let timers = c.expired(NOW + timeout);
    assert_eq!(timers.len(), 1);
    let out = c.handle(&timers[0].env, NOW + timeout);
    assert_eq!(types(&out), ["InstanceTaskFailed"]);
    let i = &c.instances[&id];
    assert_eq!(state(i), (VmState::Active, None, PowerState::Running));
    let fault = i.fault.as_ref().expect("a fault");
    assert_eq!(fault.message, "stop timed out");
    assert!(fault.details.contains(HOST), "{}", fault.details);
    // The timer fired once; a late answer finds the task over.
    assert!(c.expired(NOW + 10 * timeout).is_empty());
    assert!(c.handle(&timers[0].env, NOW + timeout).is_empty());
    assert!(performed(&mut c, id, ServerAction::Stop, PowerState::Shutdown).is_empty());
    assert_eq!(c.instances[&id].vm_state, VmState::Active);
}

#[test]
fn an_answered_action_leaves_no_deadline_behind() {
    let (mut c, id) = active();
    ask(&mut c, actor("demo"), id, ServerAction::Pause);
    performed(&mut c, id, ServerAction::Pause, PowerState::Paused);
    assert_eq!(c.instances[&id].vm_state, VmState::Paused);
    assert!(c.expired(i64::MAX).is_empty());
    // A hard reboot that never answers: the guest was running, so ACTIVE.
    ask(&mut c, actor("demo"), id, ServerAction::Unpause);
    performed(&mut c, id, ServerAction::Unpause, PowerState::Running);
    ask(
        &mut c,
        actor("demo"),
        id,
        ServerAction::Reboot { hard: true },
    );
    let timers = c.expired(i64::MAX);
    assert_eq!(timers.len(), 1);
    c.handle(&timers[0].env, NOW + 1);
    let i = &c.instances[&id];
    assert_eq!(state(i), (VmState::Active, None, PowerState::Running));
    assert_eq!(i.fault.as_ref().unwrap().message, "reboot timed out");
}
