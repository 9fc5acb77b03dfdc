//! Given / when / then tests of createImage, os-getConsoleOutput, soft
//! delete (restore, forceDelete, the reclaim timer), os-resetState and
//! trigger_crash_dump: Nova's preconditions, the snapshot image's life,
//! the console read relayed as the intent's verdict, and what failures
//! and timeouts leave.

use std::collections::BTreeMap;

use novalog_schemas::{
    Actor, CatalogEvent, ComputeCommand, ComputeFact, Envelope, Event, InstanceEvent, Intent,
    PowerState, RejectionKind, ServerAction, TaskState, VmState,
};
use uuid::Uuid;

use crate::core::{Conductor, Emit, Settings};
use crate::saga::Step;
use crate::tests::{NOW, actor, create, fact, flavor, image, record, selected, spawned, types};

const HOST: &str = "h1";

fn admin() -> Actor {
    Actor {
        user_id: "admin".into(),
        project_id: "admin".into(),
        roles: vec!["admin".into()],
    }
}

/// An ACTIVE server of project `demo` on `h1`, with these settings.
fn active_with(settings: Settings) -> (Conductor, Uuid) {
    let mut c = Conductor::new(settings);
    c.flavors.insert("1".into(), flavor());
    c.images.insert(image().id, image());
    let id = Uuid::new_v4();
    create(&mut c, id);
    selected(&mut c, id, &[HOST]);
    spawned(&mut c, id, HOST, 1);
    assert_eq!(c.instances[&id].vm_state, VmState::Active);
    (c, id)
}

fn active() -> (Conductor, Uuid) {
    active_with(Settings::default())
}

fn soft() -> Settings {
    Settings {
        reclaim_instance_interval_s: 3600,
        ..Settings::default()
    }
}

fn ask(c: &mut Conductor, who: Actor, id: Uuid, action: ServerAction) -> Vec<Emit> {
    let intent = Event::Intent(Intent::ServerActionRequested {
        instance_id: id,
        action,
    });
    c.handle(&record(who, intent), NOW)
}

fn owner_asks(c: &mut Conductor, id: Uuid, action: ServerAction) -> Vec<Emit> {
    ask(c, actor("demo"), id, action)
}

fn delete(c: &mut Conductor, who: Actor, id: Uuid, force: bool) -> Vec<Emit> {
    let intent = Event::Intent(Intent::ServerDeleteRequested {
        instance_id: id,
        force,
    });
    c.handle(&record(who, intent), NOW)
}

fn performed(c: &mut Conductor, id: Uuid, action: ServerAction, power: PowerState) -> Vec<Emit> {
    let f = ComputeFact::ServerActionPerformed {
        instance_id: id,
        host: HOST.into(),
        action,
        power_state: power,
    };
    c.handle(&fact(Event::ComputeFact(f)), NOW)
}

fn failed(c: &mut Conductor, id: Uuid, action: ServerAction, power: PowerState) -> Vec<Emit> {
    let f = ComputeFact::ServerActionFailed {
        instance_id: id,
        host: HOST.into(),
        action,
        reason: "disk unreadable".into(),
        power_state: power,
    };
    c.handle(&fact(Event::ComputeFact(f)), NOW)
}

fn progressed(
    c: &mut Conductor,
    id: Uuid,
    host: &str,
    action: &ServerAction,
    task_state: TaskState,
    stored: bool,
) -> Vec<Emit> {
    let f = ComputeFact::SnapshotProgressed {
        instance_id: id,
        host: host.into(),
        action: action.clone(),
        task_state,
        size: if stored { 4242 } else { 0 },
        checksum: if stored {
            "c0ffee".into()
        } else {
            String::new()
        },
        os_hash_value: if stored { "beef".into() } else { String::new() },
    };
    c.handle(&fact(Event::ComputeFact(f)), NOW)
}

fn host_action(out: &[Emit]) -> Option<ServerAction> {
    out.iter().find_map(|e| match &e.env.event {
        Event::Compute(ComputeCommand::PerformServerAction { action, .. }) => Some(action.clone()),
        _ => None,
    })
}

fn destroyed(out: &[Emit]) -> bool {
    out.iter().any(|e| {
        matches!(
            e.env.event,
            Event::Compute(ComputeCommand::DestroyInstance { .. })
        )
    })
}

fn rejected(out: &[Emit]) -> Option<RejectionKind> {
    out.iter().find_map(|e| match &e.env.event {
        Event::Instance(InstanceEvent::IntentRejected { kind, .. }) => Some(kind.clone()),
        _ => None,
    })
}

/// Nova's InstanceInvalidState (409).
fn invalid_state(out: &[Emit]) -> bool {
    matches!(rejected(out), Some(RejectionKind::InvalidState { .. }))
}

fn catalog(out: &[Emit]) -> Vec<&CatalogEvent> {
    out.iter()
        .filter_map(|e| match &e.env.event {
            Event::Catalog(ev) => Some(ev),
            _ => None,
        })
        .collect()
}

fn create_image(name: &str) -> ServerAction {
    ServerAction::CreateImage {
        image_id: None,
        name: name.into(),
        metadata: BTreeMap::from([("purpose".to_owned(), "backup".to_owned())]),
    }
}

/// Asks for a snapshot of `id`; the command's action (naming the image).
fn snapshot(c: &mut Conductor, id: Uuid) -> (Vec<Emit>, ServerAction) {
    let out = owner_asks(c, id, create_image("snap"));
    let action = host_action(&out).unwrap_or_else(|| panic!("no command: {:?}", types(&out)));
    (out, action)
}

fn image_of(action: &ServerAction) -> Uuid {
    crate::snapshot::image_of(action).expect("an image")
}

#[test]
fn create_image_fills_a_snapshot_from_queued_through_saving_to_active() {
    let (mut c, id) = active();
    let (accepted, action) = snapshot(&mut c, id);
    let image = image_of(&action);
    // Accepted: the image queued as Nova's create_image makes it, the
    // task image_snapshot_pending (the API's).
    let created = catalog(&accepted);
    let [CatalogEvent::ImageCreated(snap)] = created.as_slice() else {
        panic!("{created:?}");
    };
    assert_eq!((snap.id, snap.name.as_str()), (image, "snap"));
    assert_eq!(snap.status, "queued");
    assert_eq!(snap.properties["image_type"], "snapshot");
    assert_eq!(snap.properties["instance_uuid"], id.to_string());
    assert_eq!(snap.properties["base_image_ref"], image_ref());
    assert_eq!(snap.properties["purpose"], "backup");
    assert_eq!(snap.owner, "demo");
    assert_eq!(
        c.instances[&id].task_state,
        Some(TaskState::ImageSnapshotPending)
    );
    assert_eq!(c.awaiting[&id].step, Step::Action("createImage"));
    // Another host's word on it changes nothing.
    assert!(
        progressed(
            &mut c,
            id,
            "h9",
            &action,
            TaskState::ImagePendingUpload,
            false
        )
        .is_empty()
    );
    // The host copies the disk, then stores it: saving, with its digests.
    progressed(
        &mut c,
        id,
        HOST,
        &action,
        TaskState::ImagePendingUpload,
        false,
    );
    assert_eq!(
        c.instances[&id].task_state,
        Some(TaskState::ImagePendingUpload)
    );
    let out = progressed(&mut c, id, HOST, &action, TaskState::ImageUploading, true);
    assert!(matches!(
        catalog(&out).as_slice(),
        [CatalogEvent::ImageUpdated(i)] if i.status == "saving" && i.size == 4242 && i.checksum == "c0ffee"
    ));
    assert_eq!(c.instances[&id].task_state, Some(TaskState::ImageUploading));
    // Done: the server as it was, the image active with the host's bytes.
    let out = performed(&mut c, id, action, PowerState::Running);
    assert!(matches!(
        catalog(&out).as_slice(),
        [CatalogEvent::ImageUpdated(i)] if i.status == "active" && i.os_hash_value == "beef"
    ));
    let i = &c.instances[&id];
    assert_eq!((i.vm_state, i.task_state), (VmState::Active, None));
    assert!(c.awaiting.get(&id).is_none());
    assert_eq!(c.images[&image].status, "active");
}

fn image_ref() -> String {
    image().id.to_string()
}

#[test]
fn create_image_from_a_stopped_server_leaves_it_stopped() {
    let (mut c, id) = active();
    owner_asks(&mut c, id, ServerAction::Stop);
    performed(&mut c, id, ServerAction::Stop, PowerState::Shutdown);
    let (_, action) = snapshot(&mut c, id);
    performed(&mut c, id, action, PowerState::Shutdown);
    let i = &c.instances[&id];
    assert_eq!((i.vm_state, i.task_state), (VmState::Stopped, None));
}

#[test]
fn create_image_is_refused_where_nova_refuses_it_but_not_for_a_lock() {
    // Busy: a task in progress.
    let (mut c, id) = active();
    owner_asks(&mut c, id, ServerAction::Reboot { hard: false });
    let out = owner_asks(&mut c, id, create_image("x"));
    assert!(invalid_state(&out), "{:?}", rejected(&out));
    assert!(catalog(&out).is_empty(), "no image for a refused snapshot");
    // ERROR, RESCUED, SHELVED: not among ACTIVE, STOPPED, PAUSED, SUSPENDED.
    let (mut c, id) = active();
    ask(
        &mut c,
        admin(),
        id,
        ServerAction::ResetState {
            state: VmState::Error,
        },
    );
    let out = owner_asks(&mut c, id, create_image("x"));
    assert!(invalid_state(&out), "{:?}", rejected(&out));
    // Still building: never launched.
    let mut c = Conductor::new(Settings::default());
    c.flavors.insert("1".into(), flavor());
    c.images.insert(image().id, image());
    let building = Uuid::new_v4();
    create(&mut c, building);
    let out = owner_asks(&mut c, building, create_image("x"));
    assert!(invalid_state(&out), "{:?}", rejected(&out));
    // A lock guards against changes; a snapshot changes nothing.
    let (mut c, id) = active();
    ask(&mut c, admin(), id, ServerAction::Lock { reason: None });
    let out = owner_asks(&mut c, id, create_image("x"));
    assert_eq!(rejected(&out), None);
    assert!(host_action(&out).is_some());
}

#[test]
fn a_failed_or_silent_snapshot_takes_its_image_with_it() {
    let (mut c, id) = active();
    let (_, action) = snapshot(&mut c, id);
    let image = image_of(&action);
    let out = failed(&mut c, id, action, PowerState::Running);
    assert!(matches!(
        catalog(&out).as_slice(),
        [CatalogEvent::ImageDeleted { image_id }] if *image_id == image
    ));
    let i = &c.instances[&id];
    assert_eq!((i.vm_state, i.task_state), (VmState::Active, None));
    assert!(i.fault.is_some());

    // No answer: the deadline fails the task, after an upload began too.
    let (mut c, id) = active();
    let (_, action) = snapshot(&mut c, id);
    let image = image_of(&action);
    progressed(&mut c, id, HOST, &action, TaskState::ImageUploading, true);
    let due = c.expired(i64::MAX);
    assert_eq!(due.len(), 1);
    let out = c.handle(&due[0].env, NOW + 300_000);
    assert!(matches!(
        catalog(&out).as_slice(),
        [CatalogEvent::ImageDeleted { image_id }] if *image_id == image
    ));
    assert_eq!(c.instances[&id].task_state, None);
    // The late answer is stale.
    assert!(performed(&mut c, id, action, PowerState::Running).is_empty());
}

#[test]
fn shelve_takes_its_snapshot_through_the_same_path() {
    let (mut c, id) = active_with(Settings {
        shelved_offload_time_s: -1,
        ..Settings::default()
    });
    let out = owner_asks(&mut c, id, ServerAction::Shelve { image_id: None });
    let action = host_action(&out).unwrap();
    let image = image_of(&action);
    progressed(
        &mut c,
        id,
        HOST,
        &action,
        TaskState::ShelvingImageUploading,
        true,
    );
    assert_eq!(
        c.instances[&id].task_state,
        Some(TaskState::ShelvingImageUploading)
    );
    assert_eq!(c.images[&image].status, "saving");
    performed(&mut c, id, action, PowerState::Shutdown);
    let snap = &c.images[&image];
    // The host's bytes, not the base image's.
    assert_eq!(
        (snap.status.as_str(), snap.size, snap.checksum.as_str()),
        ("active", 4242, "c0ffee")
    );
    assert_eq!(c.instances[&id].status(), "SHELVED");
}

fn console(c: &mut Conductor, who: Actor, id: Uuid, length: Option<i64>) -> (Envelope, Vec<Emit>) {
    let env = record(
        who,
        Event::Intent(Intent::ConsoleOutputRequested {
            instance_id: id,
            length,
        }),
    );
    let out = c.handle(&env, NOW);
    (env, out)
}

#[test]
fn console_output_is_asked_of_the_host_and_relayed_as_the_verdict() {
    let (mut c, id) = active();
    let version = c.instances[&id].version;
    let (intent, out) = console(&mut c, actor("demo"), id, Some(10));
    let [cmd] = out.as_slice() else {
        panic!("{:?}", types(&out));
    };
    let Event::Compute(ComputeCommand::GetConsoleOutput {
        host,
        length,
        request_id,
        ..
    }) = &cmd.env.event
    else {
        panic!("{:?}", cmd.env.event);
    };
    assert_eq!(
        (host.as_str(), *length, *request_id),
        (HOST, Some(10), intent.meta.event_id)
    );
    let answer = ComputeFact::ConsoleOutputFetched {
        instance_id: id,
        host: HOST.into(),
        request_id: intent.meta.event_id,
        output: "login: ".into(),
        error: None,
    };
    let out = c.handle(&fact(Event::ComputeFact(answer)), NOW);
    let [verdict] = out.as_slice() else {
        panic!("{:?}", types(&out));
    };
    // The API waits on the intent: the answer names it as its cause.
    assert_eq!(verdict.env.meta.causation_id, Some(intent.meta.event_id));
    assert_eq!(
        verdict.env.event,
        Event::Instance(InstanceEvent::ConsoleOutputRead {
            output: "login: ".into()
        })
    );
    assert_eq!(c.instances[&id].version, version, "a read changes nothing");
    // A host without a console: Nova's ConsoleNotAvailable (404).
    let (intent, _) = console(&mut c, actor("demo"), id, None);
    let answer = ComputeFact::ConsoleOutputFetched {
        instance_id: id,
        host: HOST.into(),
        request_id: intent.meta.event_id,
        output: String::new(),
        error: Some("Guest does not have a console available.".into()),
    };
    let out = c.handle(&fact(Event::ComputeFact(answer)), NOW);
    assert_eq!(rejected(&out), Some(RejectionKind::NotFound));
    assert_eq!(out[0].env.meta.causation_id, Some(intent.meta.event_id));
}

#[test]
fn console_output_needs_a_host_and_the_callers_server() {
    let mut c = Conductor::new(Settings::default());
    c.flavors.insert("1".into(), flavor());
    c.images.insert(image().id, image());
    let id = Uuid::new_v4();
    create(&mut c, id);
    // Not scheduled yet: Nova's InstanceNotReady (409).
    let (_, out) = console(&mut c, actor("demo"), id, None);
    assert_eq!(rejected(&out), Some(RejectionKind::Conflict));
    let (_, out) = console(&mut c, actor("other"), id, None);
    assert_eq!(rejected(&out), Some(RejectionKind::NotFound));
    selected(&mut c, id, &[HOST]);
    let (_, out) = console(&mut c, admin(), id, None);
    assert_eq!(rejected(&out), None);
}

/// Soft-deletes `id` and lets its host power it off.
fn soft_delete(c: &mut Conductor, id: Uuid) {
    let out = delete(c, actor("demo"), id, false);
    assert_eq!(host_action(&out), Some(ServerAction::SoftDelete));
    assert!(!destroyed(&out));
    assert_eq!(c.instances[&id].task_state, Some(TaskState::SoftDeleting));
    performed(c, id, ServerAction::SoftDelete, PowerState::Shutdown);
}

#[test]
fn with_a_reclaim_interval_delete_is_soft_and_the_timer_reclaims() {
    let (mut c, id) = active_with(soft());
    let before = c.usage["demo"];
    soft_delete(&mut c, id);
    let i = &c.instances[&id];
    assert_eq!(i.status(), "SOFT_DELETED");
    assert_eq!(i.power_state, PowerState::Shutdown);
    assert!(i.deleted_at_ms.is_some());
    // Soft-deleted servers still count against the quota (Nova).
    assert_eq!(c.usage["demo"], before);
    assert_eq!(c.awaiting[&id].step, Step::Reclaim);
    assert!(c.expired(NOW + 3_599_999).is_empty());
    let due = c.expired(NOW + 3_600_000);
    assert_eq!(due.len(), 1);
    // The timer is a record: what decides on it is the conductor, later.
    let out = c.handle(&due[0].env, NOW + 3_600_000);
    assert!(destroyed(&out));
    assert_eq!(c.instances[&id].task_state, Some(TaskState::Deleting));
}

#[test]
fn restore_brings_a_soft_deleted_server_back_and_cancels_the_reclaim() {
    let (mut c, id) = active_with(soft());
    soft_delete(&mut c, id);
    let out = owner_asks(&mut c, id, ServerAction::Restore);
    assert_eq!(host_action(&out), Some(ServerAction::Restore));
    assert_eq!(c.instances[&id].task_state, Some(TaskState::Restoring));
    performed(&mut c, id, ServerAction::Restore, PowerState::Running);
    let i = &c.instances[&id];
    assert_eq!((i.vm_state, i.task_state), (VmState::Active, None));
    assert_eq!(i.deleted_at_ms, None);
    assert!(c.expired(i64::MAX).is_empty(), "no reclaim is due any more");
    // Only SOFT_DELETED servers are restored.
    let out = owner_asks(&mut c, id, ServerAction::Restore);
    assert!(invalid_state(&out), "{:?}", rejected(&out));
}

#[test]
fn force_delete_deletes_at_once_in_any_state_but_not_while_busy_or_locked() {
    let (mut c, id) = active_with(soft());
    soft_delete(&mut c, id);
    let out = delete(&mut c, actor("demo"), id, true);
    assert!(destroyed(&out));
    // ACTIVE, with a reclaim interval: not soft.
    let (mut c, id) = active_with(soft());
    let out = delete(&mut c, actor("demo"), id, true);
    assert!(destroyed(&out));
    // A task in progress (Nova's check_instance_state(task_state=None)).
    let (mut c, id) = active_with(soft());
    owner_asks(&mut c, id, ServerAction::Stop);
    let out = delete(&mut c, actor("demo"), id, true);
    assert!(invalid_state(&out), "{:?}", rejected(&out));
    // Locked by an administrator.
    let (mut c, id) = active_with(soft());
    ask(&mut c, admin(), id, ServerAction::Lock { reason: None });
    let out = delete(&mut c, actor("demo"), id, true);
    assert_eq!(rejected(&out), Some(RejectionKind::Conflict));
}

#[test]
fn without_a_reclaim_interval_or_a_launch_delete_is_immediate() {
    let (mut c, id) = active();
    let out = delete(&mut c, actor("demo"), id, false);
    assert!(destroyed(&out));
    assert_eq!(host_action(&out), None);
    // Never launched: Nova deletes what it cannot soft-delete.
    let mut c = Conductor::new(soft());
    c.flavors.insert("1".into(), flavor());
    c.images.insert(image().id, image());
    let id = Uuid::new_v4();
    create(&mut c, id);
    selected(&mut c, id, &[HOST]);
    let out = delete(&mut c, actor("demo"), id, false);
    assert!(destroyed(&out));
    // A soft-deleted server deleted again goes for good.
    let (mut c, id) = active_with(soft());
    soft_delete(&mut c, id);
    let out = delete(&mut c, actor("demo"), id, false);
    assert!(destroyed(&out));
}

#[test]
fn reset_state_sets_the_state_and_ends_whatever_was_awaited() {
    let (mut c, id) = active();
    owner_asks(&mut c, id, ServerAction::Reboot { hard: true });
    assert!(c.awaiting.get(&id).is_some());
    let out = ask(
        &mut c,
        admin(),
        id,
        ServerAction::ResetState {
            state: VmState::Error,
        },
    );
    assert_eq!(host_action(&out), None, "decided here alone");
    let i = &c.instances[&id];
    assert_eq!((i.vm_state, i.task_state), (VmState::Error, None));
    assert!(c.awaiting.get(&id).is_none());
    // The reboot's late answer is stale.
    assert!(
        performed(
            &mut c,
            id,
            ServerAction::Reboot { hard: true },
            PowerState::Running
        )
        .is_empty()
    );
    ask(
        &mut c,
        admin(),
        id,
        ServerAction::ResetState {
            state: VmState::Active,
        },
    );
    assert_eq!(c.instances[&id].status(), "ACTIVE");
}

#[test]
fn trigger_crash_dump_is_cast_to_the_host_from_novas_states_only() {
    let (mut c, id) = active();
    let out = owner_asks(&mut c, id, ServerAction::TriggerCrashDump);
    assert_eq!(host_action(&out), Some(ServerAction::TriggerCrashDump));
    let i = &c.instances[&id];
    assert_eq!((i.vm_state, i.task_state), (VmState::Active, None));
    // STOPPED is not among ACTIVE, PAUSED, RESCUED, RESIZED, ERROR.
    owner_asks(&mut c, id, ServerAction::Stop);
    performed(&mut c, id, ServerAction::Stop, PowerState::Shutdown);
    let out = owner_asks(&mut c, id, ServerAction::TriggerCrashDump);
    assert!(invalid_state(&out), "{:?}", rejected(&out));
    // Locked: 409 for the owner.
    let (mut c, id) = active();
    ask(&mut c, admin(), id, ServerAction::Lock { reason: None });
    let out = owner_asks(&mut c, id, ServerAction::TriggerCrashDump);
    assert_eq!(rejected(&out), Some(RejectionKind::Conflict));
}
