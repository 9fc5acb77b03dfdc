//! Given / when / then tests of shelve, offload, unshelve, rescue and
//! unrescue: Nova's preconditions, the snapshot image, the offload's
//! timing, the unshelve saga through the scheduler and a host, and what
//! a timeout or a failure leaves.

use novalog_schemas::{
    Actor, CatalogEvent, ComputeCommand, ComputeFact, Event, InstanceEvent, Intent, PowerState,
    RejectionKind, SchedulerEvent, ServerAction, TaskState, VmState,
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

fn given_with(settings: Settings) -> Conductor {
    let mut c = Conductor::new(settings);
    c.flavors.insert("1".into(), flavor());
    c.images.insert(image().id, image());
    c
}

/// An ACTIVE server of project `demo` on `h1`, with these settings.
fn active_with(settings: Settings) -> (Conductor, Uuid) {
    let mut c = given_with(settings);
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

/// The host reports `action` done on `host`.
fn performed_on(
    c: &mut Conductor,
    id: Uuid,
    host: &str,
    action: ServerAction,
    power: PowerState,
) -> Vec<Emit> {
    let f = ComputeFact::ServerActionPerformed {
        instance_id: id,
        host: host.into(),
        action,
        power_state: power,
    };
    c.handle(&fact(Event::ComputeFact(f)), NOW)
}

/// The command sent to a host, if any.
fn host_action(out: &[Emit]) -> Option<ServerAction> {
    out.iter().find_map(|e| match &e.env.event {
        Event::Compute(ComputeCommand::PerformServerAction { action, .. }) => Some(action.clone()),
        _ => None,
    })
}

fn rejected(out: &[Emit]) -> Option<RejectionKind> {
    out.iter().find_map(|e| match &e.env.event {
        Event::Instance(InstanceEvent::IntentRejected { kind, .. }) => Some(kind.clone()),
        _ => None,
    })
}

fn catalog(out: &[Emit]) -> Vec<&CatalogEvent> {
    out.iter()
        .filter_map(|e| match &e.env.event {
            Event::Catalog(ev) => Some(ev),
            _ => None,
        })
        .collect()
}

/// Shelves `id` (on `h1`) and lets the host carry it out.
fn shelve(c: &mut Conductor, id: Uuid) -> (Vec<Emit>, Vec<Emit>, Uuid) {
    let accepted = owner_asks(c, id, ServerAction::Shelve { image_id: None });
    let Some(ServerAction::Shelve {
        image_id: Some(image),
    }) = host_action(&accepted)
    else {
        panic!("no shelve command: {:?}", types(&accepted));
    };
    let done = performed_on(
        c,
        id,
        HOST,
        ServerAction::Shelve {
            image_id: Some(image),
        },
        PowerState::Shutdown,
    );
    (accepted, done, image)
}

#[test]
fn shelve_snapshots_then_offloads_at_once_by_default() {
    let (mut c, id) = active();
    let (accepted, done, image) = shelve(&mut c, id);
    // Accepted: the snapshot image `<name>-shelved`, queued, as Nova
    // creates it, and SHELVING.
    let created = catalog(&accepted);
    let [CatalogEvent::ImageCreated(snap)] = created.as_slice() else {
        panic!("{created:?}");
    };
    assert_eq!(snap.name, "vm-shelved");
    assert_eq!(snap.status, "queued");
    assert_eq!(snap.properties["image_type"], "snapshot");
    assert_eq!(snap.properties["instance_uuid"], id.to_string());
    assert_eq!(snap.properties["base_image_ref"], image_id_string());
    assert_eq!(snap.owner, "demo");
    assert_eq!(c.instances[&id].shelved_image_id, Some(image));
    // Done: SHELVED, the snapshot active, then the offload begins.
    assert!(matches!(
        catalog(&done).as_slice(),
        [CatalogEvent::ImageUpdated(i)] if i.status == "active" && i.id == image
    ));
    assert_eq!(host_action(&done), Some(ServerAction::ShelveOffload));
    let i = &c.instances[&id];
    assert_eq!(i.vm_state, VmState::Shelved);
    assert_eq!(i.task_state, Some(TaskState::ShelvingOffloading));
    // The host lets go: SHELVED_OFFLOADED, no host.
    performed_on(
        &mut c,
        id,
        HOST,
        ServerAction::ShelveOffload,
        PowerState::NoState,
    );
    let i = &c.instances[&id];
    assert_eq!(i.vm_state, VmState::ShelvedOffloaded);
    assert_eq!(i.task_state, None);
    assert_eq!(i.host, None);
    assert_eq!(i.status(), "SHELVED_OFFLOADED");
    assert!(c.awaiting.get(&id).is_none());
}

fn image_id_string() -> String {
    image().id.to_string()
}

#[test]
fn shelved_offload_time_minus_one_never_offloads_and_positive_waits() {
    let never = Settings {
        shelved_offload_time_s: -1,
        ..Settings::default()
    };
    let (mut c, id) = active_with(never);
    let (_, done, _) = shelve(&mut c, id);
    assert_eq!(host_action(&done), None);
    assert_eq!(c.instances[&id].status(), "SHELVED");
    assert_eq!(c.instances[&id].host.as_deref(), Some(HOST));
    assert!(c.expired(i64::MAX).is_empty(), "nothing is due");

    let later = Settings {
        shelved_offload_time_s: 60,
        ..Settings::default()
    };
    let (mut c, id) = active_with(later);
    let (_, done, _) = shelve(&mut c, id);
    assert_eq!(host_action(&done), None);
    assert_eq!(c.awaiting[&id].step, Step::ShelvedOffload);
    assert!(c.expired(NOW + 59_999).is_empty());
    let due = c.expired(NOW + 60_000);
    assert_eq!(due.len(), 1);
    let out = c.handle(&due[0].env, NOW + 60_000);
    assert_eq!(host_action(&out), Some(ServerAction::ShelveOffload));
    assert_eq!(
        c.instances[&id].task_state,
        Some(TaskState::ShelvingOffloading)
    );
}

#[test]
fn an_unshelve_before_the_offload_powers_on_where_it_is_and_drops_the_image() {
    let later = Settings {
        shelved_offload_time_s: 60,
        ..Settings::default()
    };
    let (mut c, id) = active_with(later);
    let (_, _, image) = shelve(&mut c, id);
    let unshelve = ServerAction::Unshelve {
        availability_zone: None,
        host: None,
    };
    let out = owner_asks(&mut c, id, unshelve.clone());
    assert_eq!(host_action(&out), Some(unshelve.clone()));
    // The offload deadline gave way to the unshelve's own.
    assert_eq!(c.awaiting[&id].step, Step::Action("unshelve"));
    let done = performed_on(&mut c, id, HOST, unshelve, PowerState::Running);
    assert!(matches!(
        catalog(&done).as_slice(),
        [CatalogEvent::ImageDeleted { image_id }] if *image_id == image
    ));
    let i = &c.instances[&id];
    assert_eq!((i.vm_state, i.task_state), (VmState::Active, None));
    assert_eq!(i.shelved_image_id, None);
    // 2.77 / 2.91 arguments need an offloaded server (Nova's
    // UnshelveInstanceInvalidState, 409).
    let (mut c, id) = active_with(Settings {
        shelved_offload_time_s: -1,
        ..Settings::default()
    });
    shelve(&mut c, id);
    let out = owner_asks(
        &mut c,
        id,
        ServerAction::Unshelve {
            availability_zone: Some(Some("az1".into())),
            host: None,
        },
    );
    assert_eq!(rejected(&out), Some(RejectionKind::Conflict));
}

/// An offloaded server, its shelved image's id.
fn offloaded() -> (Conductor, Uuid, Uuid) {
    let (mut c, id) = active();
    let (_, _, image) = shelve(&mut c, id);
    performed_on(
        &mut c,
        id,
        HOST,
        ServerAction::ShelveOffload,
        PowerState::NoState,
    );
    (c, id, image)
}

fn select_request(out: &[Emit]) -> novalog_schemas::events::SelectHostsRequested {
    out.iter()
        .find_map(|e| match &e.env.event {
            Event::Scheduler(SchedulerEvent::SelectHostsRequested(r)) => Some((**r).clone()),
            _ => None,
        })
        .expect("a scheduling request")
}

fn spawn_of(out: &[Emit]) -> Option<(String, u32, Uuid)> {
    out.iter().find_map(|e| match &e.env.event {
        Event::Compute(ComputeCommand::SpawnInstance(s)) => {
            Some((s.host.clone(), s.attempt, s.image.id))
        }
        _ => None,
    })
}

#[test]
fn unshelve_of_an_offloaded_server_is_scheduled_spawned_from_the_snapshot_and_cleans_up() {
    let (mut c, id, image) = offloaded();
    let out = owner_asks(
        &mut c,
        id,
        ServerAction::Unshelve {
            availability_zone: Some(Some("az1".into())),
            host: None,
        },
    );
    let req = select_request(&out);
    assert_eq!(req.availability_zone.as_deref(), Some("az1"));
    assert_eq!(req.image_id, Some(image));
    assert_eq!(c.instances[&id].task_state, Some(TaskState::Unshelving));
    assert_eq!(c.instances[&id].availability_zone.as_deref(), Some("az1"));
    // A build's decision for the same instance is not this request.
    assert!(selected(&mut c, id, &["h9"]).is_empty());
    let pick = SchedulerEvent::HostsSelected {
        request_id: req.request_id,
        instance_id: id,
        hosts: vec!["h2".into(), "h3".into()],
    };
    let out = c.handle(
        &record(Actor::service("scheduler"), Event::Scheduler(pick)),
        NOW,
    );
    assert_eq!(spawn_of(&out), Some(("h2".into(), 1, image)));
    assert_eq!(c.instances[&id].status(), "SHELVED_OFFLOADED");
    // h2 has no room: the alternate.
    let full = ComputeFact::ClaimFailed {
        instance_id: id,
        host: "h2".into(),
        attempt: 1,
        reason: "full".into(),
        usage: Default::default(),
    };
    let out = c.handle(&fact(Event::ComputeFact(full)), NOW);
    assert_eq!(spawn_of(&out), Some(("h3".into(), 2, image)));
    // A stale answer from h2 changes nothing.
    assert!(spawned(&mut c, id, "h2", 1).is_empty());
    let out = spawned(&mut c, id, "h3", 2);
    assert!(matches!(
        catalog(&out).as_slice(),
        [CatalogEvent::ImageDeleted { image_id }] if *image_id == image
    ));
    let i = &c.instances[&id];
    assert_eq!((i.vm_state, i.task_state), (VmState::Active, None));
    assert_eq!(i.host.as_deref(), Some("h3"));
    assert_eq!(i.shelved_image_id, None);
    assert!(c.awaiting.get(&id).is_none());
}

#[test]
fn unshelve_with_no_valid_host_or_no_answer_stays_offloaded_with_a_fault() {
    let (mut c, id, image) = offloaded();
    let unshelve = ServerAction::Unshelve {
        availability_zone: None,
        host: None,
    };
    let req = select_request(&owner_asks(&mut c, id, unshelve.clone()));
    let none = SchedulerEvent::NoValidHostFound {
        request_id: req.request_id,
        instance_id: id,
        reason: "no room".into(),
    };
    c.handle(
        &record(Actor::service("scheduler"), Event::Scheduler(none)),
        NOW,
    );
    let i = &c.instances[&id];
    assert_eq!(
        (i.vm_state, i.task_state),
        (VmState::ShelvedOffloaded, None)
    );
    assert!(i.fault.is_some());
    assert_eq!(i.shelved_image_id, Some(image), "kept for the next try");

    // An administrator names a host: spawned there at once; it is silent
    // past the deadline: offloaded again, and the host told to clean up.
    let out = ask(
        &mut c,
        admin(),
        id,
        ServerAction::Unshelve {
            availability_zone: None,
            host: Some("h7".into()),
        },
    );
    assert_eq!(spawn_of(&out), Some(("h7".into(), 1, image)));
    let due = c.expired(i64::MAX);
    assert_eq!(due.len(), 1);
    let out = c.handle(&due[0].env, NOW + 1);
    assert!(
        types(&out).contains(&"DestroyInstance"),
        "{:?}",
        types(&out)
    );
    let i = &c.instances[&id];
    assert_eq!(
        (i.vm_state, i.task_state, i.host.as_deref()),
        (VmState::ShelvedOffloaded, None, None)
    );
}

#[test]
fn shelve_actions_refuse_the_states_nova_refuses() {
    use ServerAction as A;
    let shelve = A::Shelve { image_id: None };
    let unshelve = A::Unshelve {
        availability_zone: None,
        host: None,
    };
    // From ACTIVE: shelve and rescue are allowed, the others 409.
    for action in [A::ShelveOffload, unshelve.clone(), A::Unrescue] {
        let (mut c, id) = active();
        let out = owner_asks(&mut c, id, action.clone());
        assert!(
            matches!(rejected(&out), Some(RejectionKind::InvalidState { .. })),
            "{action:?}: {:?}",
            types(&out)
        );
    }
    // While a task runs (SHELVING): everything is refused.
    let (mut c, id) = active();
    owner_asks(&mut c, id, shelve.clone());
    for action in [
        shelve.clone(),
        A::Rescue { image_id: None },
        unshelve.clone(),
    ] {
        let out = owner_asks(&mut c, id, action.clone());
        assert!(
            matches!(rejected(&out), Some(RejectionKind::InvalidState { .. })),
            "{action:?}"
        );
    }
    // Offloaded: no shelve, no offload, no rescue.
    let (mut c, id, _) = offloaded();
    for action in [
        shelve.clone(),
        A::ShelveOffload,
        A::Rescue { image_id: None },
    ] {
        let out = owner_asks(&mut c, id, action.clone());
        assert!(
            matches!(rejected(&out), Some(RejectionKind::InvalidState { .. })),
            "{action:?}"
        );
    }
    // Locked: 409 for the owner.
    let (mut c, id) = active();
    owner_asks(&mut c, id, A::Lock { reason: None });
    let out = owner_asks(&mut c, id, shelve);
    assert_eq!(rejected(&out), Some(RejectionKind::Conflict));
}

#[test]
fn a_failed_shelve_drops_its_snapshot_and_keeps_the_server() {
    let (mut c, id) = active();
    let accepted = owner_asks(&mut c, id, ServerAction::Shelve { image_id: None });
    let action = host_action(&accepted).unwrap();
    let f = ComputeFact::ServerActionFailed {
        instance_id: id,
        host: HOST.into(),
        action,
        reason: "no".into(),
        power_state: PowerState::Running,
    };
    let out = c.handle(&fact(Event::ComputeFact(f)), NOW);
    assert!(matches!(
        catalog(&out).as_slice(),
        [CatalogEvent::ImageDeleted { .. }]
    ));
    let i = &c.instances[&id];
    assert_eq!((i.vm_state, i.task_state), (VmState::Active, None));
    assert_eq!(i.shelved_image_id, None);
}

#[test]
fn rescue_boots_from_the_servers_image_or_the_one_named_and_unrescue_returns() {
    let (mut c, id) = active();
    let out = owner_asks(&mut c, id, ServerAction::Rescue { image_id: None });
    let rescue = host_action(&out).unwrap();
    assert_eq!(
        rescue,
        ServerAction::Rescue {
            image_id: Some(image().id)
        }
    );
    assert_eq!(c.instances[&id].task_state, Some(TaskState::Rescuing));
    performed_on(&mut c, id, HOST, rescue, PowerState::Running);
    assert_eq!(c.instances[&id].status(), "RESCUE");
    // Rescued: a second rescue is refused; unrescue brings it back.
    let out = owner_asks(&mut c, id, ServerAction::Rescue { image_id: None });
    assert!(matches!(
        rejected(&out),
        Some(RejectionKind::InvalidState { .. })
    ));
    let out = owner_asks(&mut c, id, ServerAction::Unrescue);
    assert_eq!(host_action(&out), Some(ServerAction::Unrescue));
    performed_on(
        &mut c,
        id,
        HOST,
        ServerAction::Unrescue,
        PowerState::Running,
    );
    assert_eq!(c.instances[&id].status(), "ACTIVE");
    // An unknown rescue image: Nova's UnsupportedRescueImage (400).
    let out = owner_asks(
        &mut c,
        id,
        ServerAction::Rescue {
            image_id: Some(Uuid::new_v4()),
        },
    );
    assert_eq!(rejected(&out), Some(RejectionKind::Invalid));
    // A failed rescue leaves the server in ERROR (Nova's compute manager).
    let out = owner_asks(&mut c, id, ServerAction::Rescue { image_id: None });
    let f = ComputeFact::ServerActionFailed {
        instance_id: id,
        host: HOST.into(),
        action: host_action(&out).unwrap(),
        reason: "no".into(),
        power_state: PowerState::Shutdown,
    };
    c.handle(&fact(Event::ComputeFact(f)), NOW);
    assert_eq!(c.instances[&id].vm_state, VmState::Error);
}

#[test]
fn a_redelivered_step_changes_nothing_twice() {
    // The saga resumes from its records: a host's answer handled again
    // (a conductor killed before committing its offsets) is stale.
    let (mut c, id, image) = offloaded();
    let again = performed_on(
        &mut c,
        id,
        HOST,
        ServerAction::Shelve {
            image_id: Some(image),
        },
        PowerState::Shutdown,
    );
    assert!(again.is_empty(), "{:?}", types(&again));
    let again = performed_on(
        &mut c,
        id,
        HOST,
        ServerAction::ShelveOffload,
        PowerState::NoState,
    );
    assert!(again.is_empty());
}

#[test]
fn deleting_an_offloaded_server_deletes_it_at_once_with_its_snapshot() {
    let (mut c, id, image) = offloaded();
    let delete = Event::Intent(Intent::ServerDeleteRequested {
        instance_id: id,
        force: false,
    });
    let out = c.handle(&record(actor("demo"), delete), NOW);
    assert!(
        types(&out).contains(&"InstanceDeleted"),
        "{:?}",
        types(&out)
    );
    assert!(matches!(
        catalog(&out).as_slice(),
        [CatalogEvent::ImageDeleted { image_id }] if *image_id == image
    ));
}
