//! Given / when / then tests of the build and delete sagas: given the
//! conductor's history, when a record arrives, then these records.

use std::collections::BTreeMap;

use novalog_schemas::events::{SelectHostsRequested, ServerCreateRequested};
use novalog_schemas::{Actor, Envelope, Event, Flavor, Image, Meta, TaskState, VmState};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit, Settings};

const NOW: i64 = 1_700_000_000_000;

fn flavor() -> Flavor {
    Flavor {
        id: "1".into(),
        name: "m1.tiny".into(),
        vcpus: 1,
        ram_mb: 512,
        disk_gb: 1,
        ephemeral_gb: 0,
        swap_mb: 0,
        rxtx_factor: 1.0,
        is_public: true,
        extra_specs: BTreeMap::new(),
        description: None,
    }
}

fn image() -> Image {
    Image {
        id: Uuid::from_u128(7),
        name: "cirros".into(),
        status: "active".into(),
        size: 1,
        min_disk: 0,
        min_ram: 0,
        disk_format: "qcow2".into(),
        container_format: "bare".into(),
        properties: BTreeMap::new(),
        owner: "admin".into(),
        checksum: String::new(),
        visibility: "public".into(),
        created_at_ms: 0,
    }
}

fn actor(project: &str) -> Actor {
    Actor {
        user_id: format!("{project}-user"),
        project_id: project.into(),
        roles: vec!["member".into()],
    }
}

fn record(actor: Actor, event: Event) -> Envelope {
    Envelope {
        meta: Meta::origin(Uuid::new_v4(), "req-test".into(), actor, String::new()),
        event,
    }
}

fn fact(event: Event) -> Envelope {
    record(Actor::service("compute"), event)
}

fn given() -> Conductor {
    let mut c = Conductor::new(Settings { max_attempts: 3 });
    c.flavors.insert("1".into(), flavor());
    c.images.insert(image().id, image());
    c
}

fn create(c: &mut Conductor, id: Uuid) -> Vec<Emit> {
    let req = Event::ServerCreateRequested(Box::new(ServerCreateRequested {
        instance_id: id,
        name: "vm".into(),
        flavor: flavor(),
        image: image(),
        metadata: BTreeMap::new(),
        availability_zone: None,
        key_name: None,
        user_data: None,
        description: None,
        tags: vec![],
        reservation_id: "r-1".into(),
        launch_index: 0,
    }));
    c.handle(&record(actor("demo"), req), NOW)
}

fn select_request(out: &[Emit]) -> SelectHostsRequested {
    out.iter()
        .find_map(|e| match &e.env.event {
            Event::SelectHostsRequested(r) => Some((**r).clone()),
            _ => None,
        })
        .expect("a scheduling request")
}

fn selected(c: &mut Conductor, id: Uuid, hosts: &[&str]) -> Vec<Emit> {
    let ev = Event::HostsSelected {
        request_id: Uuid::new_v5(&id, b"select-hosts"),
        instance_id: id,
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
    };
    c.handle(&record(Actor::service("scheduler"), ev), NOW)
}

fn claim_failed(c: &mut Conductor, id: Uuid, host: &str, attempt: u32) -> Vec<Emit> {
    c.handle(
        &fact(Event::ClaimFailed {
            instance_id: id,
            host: host.into(),
            attempt,
            reason: "full".into(),
            usage: Default::default(),
        }),
        NOW,
    )
}

fn spawned(c: &mut Conductor, id: Uuid, host: &str, attempt: u32) -> Vec<Emit> {
    c.handle(
        &fact(Event::InstanceSpawned {
            instance_id: id,
            host: host.into(),
            attempt,
            power_state: 1,
        }),
        NOW,
    )
}

fn types(out: &[Emit]) -> Vec<&'static str> {
    out.iter().map(|e| e.env.event.type_name()).collect()
}

fn spawn_host(out: &[Emit]) -> Option<(String, u32)> {
    out.iter().find_map(|e| match &e.env.event {
        Event::SpawnInstance(s) => {
            assert_eq!(e.dest, Dest::Compute);
            assert_eq!(e.key, s.host, "commands are keyed by host");
            Some((s.host.clone(), s.attempt))
        }
        _ => None,
    })
}

#[test]
fn create_is_accepted_and_scheduled_and_a_redelivery_changes_nothing() {
    let mut c = given();
    let id = Uuid::new_v4();
    let out = create(&mut c, id);
    assert_eq!(types(&out), ["InstanceCreated", "SelectHostsRequested"]);
    assert_eq!(out[0].key, "demo", "instance events are keyed by project");
    assert_eq!(out[0].env.meta.aggregate_version, 1);
    let req = select_request(&out);
    assert_eq!(req.resources.memory_mb, 512);
    assert_eq!(req.num_alternates, 2);
    let i = &c.instances[&id];
    assert_eq!(
        (i.vm_state, i.task_state),
        (VmState::Building, Some(TaskState::Scheduling))
    );
    assert!(create(&mut c, id).is_empty());
}

#[test]
fn unknown_flavor_is_rejected_with_400() {
    let mut c = given();
    c.flavors.clear();
    let out = create(&mut c, Uuid::new_v4());
    match &out[..] {
        [
            Emit {
                env:
                    Envelope {
                        event: Event::IntentRejected { code, message, .. },
                        ..
                    },
                ..
            },
        ] => {
            assert_eq!(*code, 400);
            assert!(message.contains("Flavor"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(c.instances.is_empty());
}

#[test]
fn scheduled_instance_spawns_on_the_first_host_and_goes_active() {
    let mut c = given();
    let id = Uuid::new_v4();
    create(&mut c, id);
    let out = selected(&mut c, id, &["h1", "h2", "h3"]);
    assert_eq!(types(&out), ["InstanceScheduled", "SpawnInstance"]);
    assert_eq!(spawn_host(&out), Some(("h1".into(), 1)));
    assert_eq!(c.instances[&id].alternates, ["h2", "h3"]);
    // A second decision (redelivered request) is ignored.
    assert!(selected(&mut c, id, &["h9"]).is_empty());
    // Another host's claim about this instance is not believed.
    assert!(spawned(&mut c, id, "h2", 1).is_empty());
    let out = spawned(&mut c, id, "h1", 1);
    assert_eq!(types(&out), ["InstanceBecameActive"]);
    let i = &c.instances[&id];
    assert_eq!((i.vm_state, i.task_state), (VmState::Active, None));
    assert_eq!(i.status(), "ACTIVE");
    assert!(spawned(&mut c, id, "h1", 1).is_empty(), "duplicate fact");
}

#[test]
fn claim_failures_walk_the_alternates_then_end_in_no_valid_host() {
    let mut c = given();
    let id = Uuid::new_v4();
    create(&mut c, id);
    selected(&mut c, id, &["h1", "h2", "h3"]);
    let out = claim_failed(&mut c, id, "h1", 1);
    assert_eq!(types(&out), ["InstanceRescheduled", "SpawnInstance"]);
    assert_eq!(spawn_host(&out), Some(("h2".into(), 2)));
    // A stale failure from the first attempt changes nothing.
    assert!(claim_failed(&mut c, id, "h1", 1).is_empty());
    let out = claim_failed(&mut c, id, "h2", 2);
    assert_eq!(spawn_host(&out), Some(("h3".into(), 3)));
    let out = claim_failed(&mut c, id, "h3", 3);
    assert_eq!(types(&out), ["InstanceFailed"]);
    let i = &c.instances[&id];
    assert_eq!((i.vm_state, i.task_state), (VmState::Error, None));
    let fault = i.fault.as_ref().unwrap();
    assert!(fault.message.starts_with("No valid host was found"));
    assert!(
        fault.details.contains("max scheduling attempts 3"),
        "{}",
        fault.details
    );
}

#[test]
fn running_out_of_alternates_fails_early() {
    let mut c = given();
    let id = Uuid::new_v4();
    create(&mut c, id);
    selected(&mut c, id, &["only"]);
    let out = claim_failed(&mut c, id, "only", 1);
    assert_eq!(types(&out), ["InstanceFailed"]);
}

#[test]
fn no_valid_host_from_the_scheduler_is_an_error() {
    let mut c = given();
    let id = Uuid::new_v4();
    create(&mut c, id);
    let out = c.handle(
        &record(
            Actor::service("scheduler"),
            Event::NoValidHostFound {
                request_id: Uuid::nil(),
                instance_id: id,
                reason: "There are not enough hosts available.".into(),
            },
        ),
        NOW,
    );
    assert_eq!(types(&out), ["InstanceFailed"]);
    assert_eq!(c.instances[&id].status(), "ERROR");
}

#[test]
fn delete_of_an_unscheduled_instance_finishes_at_once() {
    let mut c = given();
    let id = Uuid::new_v4();
    create(&mut c, id);
    let out = c.handle(
        &record(
            actor("demo"),
            Event::ServerDeleteRequested {
                instance_id: id,
                force: false,
            },
        ),
        NOW,
    );
    assert_eq!(types(&out), ["InstanceDeleting", "InstanceDeleted"]);
    assert!(c.instances[&id].is_deleted());
    // The scheduler's late answer is ignored.
    assert!(selected(&mut c, id, &["h1"]).is_empty());
}

#[test]
fn delete_pre_empts_a_build_and_waits_for_the_host() {
    let mut c = given();
    let id = Uuid::new_v4();
    create(&mut c, id);
    selected(&mut c, id, &["h1", "h2"]);
    let out = c.handle(
        &record(
            actor("demo"),
            Event::ServerDeleteRequested {
                instance_id: id,
                force: false,
            },
        ),
        NOW,
    );
    assert_eq!(types(&out), ["InstanceDeleting", "DestroyInstance"]);
    assert_eq!(out[1].key, "h1");
    // A claim failure while deleting does not reschedule.
    assert!(claim_failed(&mut c, id, "h1", 1).is_empty());
    // A second delete is a no-op.
    assert!(
        c.handle(
            &record(
                actor("demo"),
                Event::ServerDeleteRequested {
                    instance_id: id,
                    force: false
                }
            ),
            NOW
        )
        .is_empty()
    );
    let out = c.handle(
        &fact(Event::InstanceDestroyed {
            instance_id: id,
            host: "h1".into(),
            usage: Default::default(),
        }),
        NOW,
    );
    assert_eq!(types(&out), ["InstanceDeleted"]);
    assert_eq!(c.instances[&id].status(), "DELETED");
}

#[test]
fn delete_of_unknown_or_foreign_instance_is_404() {
    let mut c = given();
    let id = Uuid::new_v4();
    create(&mut c, id);
    for (who, target) in [(actor("demo"), Uuid::new_v4()), (actor("other"), id)] {
        let out = c.handle(
            &record(
                who,
                Event::ServerDeleteRequested {
                    instance_id: target,
                    force: false,
                },
            ),
            NOW,
        );
        assert!(
            matches!(
                &out[..],
                [Emit {
                    env: Envelope {
                        event: Event::IntentRejected { code: 404, .. },
                        ..
                    },
                    ..
                }]
            ),
            "{out:?}"
        );
    }
    assert_eq!(c.instances[&id].status(), "BUILD");
}

#[test]
fn output_ids_are_deterministic() {
    let mut a = given();
    let mut b = given();
    let id = Uuid::new_v4();
    let intent = record(
        actor("demo"),
        Event::ServerCreateRequested(Box::new(ServerCreateRequested {
            instance_id: id,
            name: "vm".into(),
            flavor: flavor(),
            image: image(),
            metadata: BTreeMap::new(),
            availability_zone: None,
            key_name: None,
            user_data: None,
            description: None,
            tags: vec![],
            reservation_id: "r".into(),
            launch_index: 0,
        })),
    );
    let ids = |out: Vec<Emit>| {
        out.into_iter()
            .map(|e| e.env.meta.event_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(a.handle(&intent, NOW)), ids(b.handle(&intent, NOW + 5)));
}

#[test]
fn flavor_create_needs_admin_and_a_new_name() {
    let mut c = Conductor::new(Settings::default());
    let member = c.handle(
        &record(actor("demo"), Event::FlavorCreateRequested(flavor())),
        NOW,
    );
    assert!(matches!(
        &member[0].env.event,
        Event::IntentRejected { code: 403, .. }
    ));
    let admin = Actor {
        roles: vec!["admin".into()],
        ..actor("admin")
    };
    let ok = c.handle(
        &record(admin.clone(), Event::FlavorCreateRequested(flavor())),
        NOW,
    );
    assert_eq!(types(&ok), ["FlavorCreated"]);
    assert_eq!(ok[0].dest, Dest::Catalog);
    let dup = c.handle(&record(admin, Event::FlavorCreateRequested(flavor())), NOW);
    assert!(matches!(
        &dup[0].env.event,
        Event::IntentRejected { code: 409, .. }
    ));
}
