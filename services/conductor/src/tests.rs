//! Given / when / then tests of the build and delete sagas: given the
//! conductor's history, when a record arrives, then these records.

use novalog_schemas::{
    CatalogEvent, ComputeCommand, ComputeFact, HostEvent, InstanceEvent, Intent, SchedulerEvent,
};
use std::collections::BTreeMap;

use novalog_schemas::events::{
    SelectHostsRequested, ServerCreateRequested, ServerGroup, ServerGroupPolicy,
};
use novalog_schemas::{
    Actor, Envelope, Event, Flavor, Image, Meta, RejectionKind, TaskState, VmState,
};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit, Settings};

pub(crate) const NOW: i64 = 1_700_000_000_000;

pub(crate) fn flavor() -> Flavor {
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

pub(crate) fn image() -> Image {
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
        protected: false,
        tags: Vec::new(),
        os_hash_value: String::new(),
        updated_at_ms: 0,
        members: Vec::new(),
    }
}

pub(crate) fn actor(project: &str) -> Actor {
    Actor {
        user_id: format!("{project}-user"),
        project_id: project.into(),
        roles: vec!["member".into()],
    }
}

pub(crate) fn record(actor: Actor, event: Event) -> Envelope {
    Envelope {
        meta: Meta::origin(Uuid::new_v4(), "req-test".into(), actor, String::new()),
        event,
    }
}

pub(crate) fn fact(event: Event) -> Envelope {
    record(Actor::service("compute"), event)
}

pub(crate) fn given() -> Conductor {
    let mut c = Conductor::new(Settings::default());
    c.flavors.insert("1".into(), flavor());
    c.images.insert(image().id, image());
    c
}

pub(crate) fn create(c: &mut Conductor, id: Uuid) -> Vec<Emit> {
    create_with_hints(c, id, "demo", BTreeMap::new())
}

pub(crate) fn create_with_hints(
    c: &mut Conductor,
    id: Uuid,
    project: &str,
    scheduler_hints: BTreeMap<String, Vec<String>>,
) -> Vec<Emit> {
    let req = Event::Intent(Intent::ServerCreateRequested(Box::new(
        ServerCreateRequested {
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
            scheduler_hints,
            min_count: 1,
            max_count: 1,
            access: Default::default(),
            hostname: String::new(),
            trusted_image_certificates: None,
            requested_host: None,
        },
    )));
    c.handle(&record(actor(project), req), NOW)
}

fn select_request(out: &[Emit]) -> SelectHostsRequested {
    out.iter()
        .find_map(|e| match &e.env.event {
            Event::Scheduler(SchedulerEvent::SelectHostsRequested(r)) => Some((**r).clone()),
            _ => None,
        })
        .expect("a scheduling request")
}

pub(crate) fn selected(c: &mut Conductor, id: Uuid, hosts: &[&str]) -> Vec<Emit> {
    let ev = Event::Scheduler(SchedulerEvent::HostsSelected {
        request_id: Uuid::new_v5(&id, b"select-hosts"),
        instance_id: id,
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
    });
    c.handle(&record(Actor::service("scheduler"), ev), NOW)
}

fn claim_failed(c: &mut Conductor, id: Uuid, host: &str, attempt: u32) -> Vec<Emit> {
    c.handle(
        &fact(Event::ComputeFact(ComputeFact::ClaimFailed {
            instance_id: id,
            host: host.into(),
            attempt,
            reason: "full".into(),
            usage: Default::default(),
        })),
        NOW,
    )
}

pub(crate) fn spawned(c: &mut Conductor, id: Uuid, host: &str, attempt: u32) -> Vec<Emit> {
    c.handle(
        &fact(Event::ComputeFact(ComputeFact::InstanceSpawned {
            instance_id: id,
            host: host.into(),
            attempt,
            power_state: novalog_schemas::PowerState::Running,
        })),
        NOW,
    )
}

pub(crate) fn types(out: &[Emit]) -> Vec<&'static str> {
    out.iter().map(|e| e.env.event.type_name()).collect()
}

fn spawn_host(out: &[Emit]) -> Option<(String, u32)> {
    out.iter().find_map(|e| match &e.env.event {
        Event::Compute(ComputeCommand::SpawnInstance(s)) => {
            assert_eq!(e.dest, Dest::Compute);
            assert_eq!(e.key, s.host, "commands are keyed by host");
            Some((s.host.clone(), s.attempt))
        }
        _ => None,
    })
}

/// 2.74: the host an administrator asked for is kept on the instance and
/// asked of the scheduler; 2.90 and 2.63: the hostname and certificates
/// asked for are the instance's.
#[test]
fn a_create_keeps_its_requested_host_hostname_and_certificates() {
    let mut c = given();
    let id = Uuid::new_v4();
    let req = Event::Intent(Intent::ServerCreateRequested(Box::new(
        ServerCreateRequested {
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
            scheduler_hints: BTreeMap::from([("cidr".into(), vec!["/24".into()])]),
            min_count: 1,
            max_count: 1,
            access: Default::default(),
            hostname: "web-1.example.org".into(),
            trusted_image_certificates: Some(vec!["cert".into()]),
            requested_host: Some("h2".into()),
        },
    )));
    let out = c.handle(&record(actor("demo"), req), NOW);
    assert_eq!(select_request(&out).requested_host.as_deref(), Some("h2"));
    let i = &c.instances[&id];
    assert_eq!(i.hostname, "web-1.example.org");
    assert_eq!(i.trusted_image_certificates, Some(vec!["cert".to_string()]));
    assert_eq!(i.scheduler_hints["cidr"], vec!["/24".to_string()]);
    assert_eq!(i.requested_host.as_deref(), Some("h2"));
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
    assert_eq!(req.flavor_name, "m1.tiny");
    assert_eq!(req.num_alternates, 2);
    let i = &c.instances[&id];
    assert_eq!(
        (i.vm_state, i.task_state),
        (VmState::Building, Some(TaskState::Scheduling))
    );
    assert!(create(&mut c, id).is_empty());
}

#[test]
fn unknown_flavor_is_rejected_as_invalid() {
    let mut c = given();
    c.flavors.clear();
    let out = create(&mut c, Uuid::new_v4());
    match &out[..] {
        [
            Emit {
                env:
                    Envelope {
                        event: Event::Instance(InstanceEvent::IntentRejected { kind, message, .. }),
                        ..
                    },
                ..
            },
        ] => {
            assert_eq!(*kind, RejectionKind::Invalid);
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
            Event::Scheduler(SchedulerEvent::NoValidHostFound {
                request_id: Uuid::nil(),
                instance_id: id,
                reason: "There are not enough hosts available.".into(),
            }),
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
            Event::Intent(Intent::ServerDeleteRequested {
                instance_id: id,
                force: false,
            }),
        ),
        NOW,
    );
    assert_eq!(types(&out), ["InstanceDeleteStarted", "InstanceDeleted"]);
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
            Event::Intent(Intent::ServerDeleteRequested {
                instance_id: id,
                force: false,
            }),
        ),
        NOW,
    );
    assert_eq!(types(&out), ["InstanceDeleteStarted", "DestroyInstance"]);
    assert_eq!(out[1].key, "h1");
    // A claim failure while deleting does not reschedule.
    assert!(claim_failed(&mut c, id, "h1", 1).is_empty());
    // A second delete is a no-op.
    assert!(
        c.handle(
            &record(
                actor("demo"),
                Event::Intent(Intent::ServerDeleteRequested {
                    instance_id: id,
                    force: false
                })
            ),
            NOW
        )
        .is_empty()
    );
    let out = c.handle(
        &fact(Event::ComputeFact(ComputeFact::InstanceDestroyed {
            instance_id: id,
            host: "h1".into(),
            usage: Default::default(),
        })),
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
                Event::Intent(Intent::ServerDeleteRequested {
                    instance_id: target,
                    force: false,
                }),
            ),
            NOW,
        );
        assert!(
            matches!(
                &out[..],
                [Emit {
                    env: Envelope {
                        event: Event::Instance(InstanceEvent::IntentRejected {
                            kind: RejectionKind::NotFound,
                            ..
                        }),
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
        Event::Intent(Intent::ServerCreateRequested(Box::new(
            ServerCreateRequested {
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
                scheduler_hints: BTreeMap::new(),
                min_count: 1,
                max_count: 1,
                access: Default::default(),
                hostname: String::new(),
                trusted_image_certificates: None,
                requested_host: None,
            },
        ))),
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
        &record(
            actor("demo"),
            Event::Intent(Intent::FlavorCreateRequested(flavor())),
        ),
        NOW,
    );
    assert!(matches!(
        &member[0].env.event,
        Event::Instance(InstanceEvent::IntentRejected {
            kind: RejectionKind::Forbidden,
            ..
        })
    ));
    let admin = Actor {
        roles: vec!["admin".into()],
        ..actor("admin")
    };
    let ok = c.handle(
        &record(
            admin.clone(),
            Event::Intent(Intent::FlavorCreateRequested(flavor())),
        ),
        NOW,
    );
    assert_eq!(types(&ok), ["FlavorCreated"]);
    assert_eq!(ok[0].dest, Dest::Catalog);
    let dup = c.handle(
        &record(
            admin,
            Event::Intent(Intent::FlavorCreateRequested(flavor())),
        ),
        NOW,
    );
    assert!(matches!(
        &dup[0].env.event,
        Event::Instance(InstanceEvent::IntentRejected {
            kind: RejectionKind::Conflict,
            ..
        })
    ));
}

// ---- server groups ----

fn group(policy: ServerGroupPolicy) -> ServerGroup {
    ServerGroup {
        id: Uuid::from_u128(42),
        name: "g".into(),
        project_id: String::new(),
        user_id: String::new(),
        policy,
        max_server_per_host: None,
        created_at_ms: 0,
    }
}

fn group_hint(id: Uuid) -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([("group".into(), vec![id.to_string()])])
}

#[test]
fn a_server_group_is_created_for_the_callers_project() {
    let mut c = given();
    let g = group(ServerGroupPolicy::AntiAffinity);
    let intent = record(
        actor("demo"),
        Event::Intent(Intent::ServerGroupCreateRequested(Box::new(g.clone()))),
    );
    let out = c.handle(&intent, NOW);
    assert_eq!(types(&out), ["ServerGroupCreated"]);
    assert_eq!(out[0].dest, Dest::Catalog);
    let Event::Catalog(CatalogEvent::ServerGroupCreated(created)) = &out[0].env.event else {
        unreachable!()
    };
    assert_eq!(created.project_id, "demo");
    assert_eq!(created.created_at_ms, NOW);
    assert!(c.handle(&intent, NOW).is_empty(), "redelivery");
}

#[test]
fn members_carry_the_group_and_their_peers_hosts_to_the_scheduler() {
    let mut c = given();
    let g = group(ServerGroupPolicy::AntiAffinity);
    c.handle(
        &record(
            actor("demo"),
            Event::Intent(Intent::ServerGroupCreateRequested(Box::new(g.clone()))),
        ),
        NOW,
    );
    let first = Uuid::from_u128(1);
    let out = create_with_hints(&mut c, first, "demo", group_hint(g.id));
    let req = select_request(&out);
    let spec = req.server_group.expect("group spec");
    assert_eq!(spec.policy, ServerGroupPolicy::AntiAffinity);
    assert!(spec.members.is_empty() && spec.hosts.is_empty());
    assert_eq!(req.scheduler_hints, group_hint(g.id));
    selected(&mut c, first, &["h1"]);
    spawned(&mut c, first, "h1", 1);

    let second = Uuid::from_u128(2);
    let req = select_request(&create_with_hints(&mut c, second, "demo", group_hint(g.id)));
    let spec = req.server_group.unwrap();
    assert_eq!(spec.members, vec![first]);
    assert_eq!(spec.hosts, vec!["h1".to_string()]);
    assert_eq!(c.server_groups[&g.id].members.len(), 2);
}

fn new_group(c: &mut Conductor, policy: ServerGroupPolicy) -> Uuid {
    let g = group(policy);
    c.handle(
        &record(
            actor("demo"),
            Event::Intent(Intent::ServerGroupCreateRequested(Box::new(g.clone()))),
        ),
        NOW,
    );
    g.id
}

/// The scheduling requests among `out`, by instance.
fn selects(out: &[Emit]) -> Vec<SelectHostsRequested> {
    out.iter()
        .filter_map(|e| match &e.env.event {
            Event::Scheduler(SchedulerEvent::SelectHostsRequested(r)) => Some((**r).clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn members_created_together_in_an_affinity_group_are_placed_one_after_another() {
    for policy in [ServerGroupPolicy::Affinity, ServerGroupPolicy::AntiAffinity] {
        let mut c = given();
        let g = new_group(&mut c, policy);
        let (a, b, d) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        assert_eq!(
            selects(&create_with_hints(&mut c, a, "demo", group_hint(g))).len(),
            1
        );
        // While `a` is still building, the others wait: where `a` lands
        // is not settled (a failed claim may move it to an alternate).
        for id in [b, d] {
            let out = create_with_hints(&mut c, id, "demo", group_hint(g));
            assert_eq!(types(&out), ["InstanceCreated"], "{policy:?}");
        }
        assert!(selects(&selected(&mut c, a, &["h1", "h2"])).is_empty());
        // `a` active on h1: `b` is asked for, knowing h1; `d` still waits.
        let out = spawned(&mut c, a, "h1", 1);
        let asked = selects(&out);
        assert_eq!(asked.len(), 1, "{policy:?}");
        assert_eq!(asked[0].instance_id, b);
        let spec = asked[0].server_group.clone().unwrap();
        assert_eq!(spec.hosts, vec!["h1".to_string()]);
        assert_eq!(spec.members, vec![a, d]);
        assert_eq!(asked[0].scheduler_hints, group_hint(g));
        // `b` finds no host: it fails, and `d` goes next, knowing h1.
        let failed = c.handle(
            &record(
                Actor::service("scheduler"),
                Event::Scheduler(SchedulerEvent::NoValidHostFound {
                    request_id: Uuid::new_v5(&b, b"select-hosts"),
                    instance_id: b,
                    reason: "none fits".into(),
                }),
            ),
            NOW,
        );
        assert_eq!(c.instances[&b].vm_state, VmState::Error);
        let asked = selects(&failed);
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].instance_id, d);
        assert_eq!(
            asked[0].server_group.clone().unwrap().hosts,
            vec!["h1".to_string()]
        );
        assert!(c.server_groups[&g].held.is_empty());
    }
}

#[test]
fn a_held_member_deleted_before_its_turn_is_never_scheduled() {
    let mut c = given();
    let g = new_group(&mut c, ServerGroupPolicy::Affinity);
    let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
    create_with_hints(&mut c, a, "demo", group_hint(g));
    create_with_hints(&mut c, b, "demo", group_hint(g));
    c.handle(
        &record(
            actor("demo"),
            Event::Intent(Intent::ServerDeleteRequested {
                instance_id: b,
                force: false,
            }),
        ),
        NOW,
    );
    selected(&mut c, a, &["h1"]);
    assert!(selects(&spawned(&mut c, a, "h1", 1)).is_empty());
    assert!(c.server_groups[&g].held.is_empty());
}

#[test]
fn soft_policies_do_not_hold_members() {
    let mut c = given();
    let g = new_group(&mut c, ServerGroupPolicy::SoftAffinity);
    for n in 1..=2 {
        let out = create_with_hints(&mut c, Uuid::from_u128(n), "demo", group_hint(g));
        assert_eq!(selects(&out).len(), 1);
    }
}

#[test]
fn an_unknown_or_foreign_group_is_refused() {
    let mut c = given();
    let g = group(ServerGroupPolicy::Affinity);
    let out = create_with_hints(&mut c, Uuid::new_v4(), "demo", group_hint(g.id));
    assert_eq!(types(&out), ["IntentRejected"]);
    c.handle(
        &record(
            actor("other"),
            Event::Intent(Intent::ServerGroupCreateRequested(Box::new(g.clone()))),
        ),
        NOW,
    );
    let out = create_with_hints(&mut c, Uuid::new_v4(), "demo", group_hint(g.id));
    assert!(matches!(
        &out[0].env.event,
        Event::Instance(InstanceEvent::IntentRejected {
            kind: RejectionKind::Invalid,
            ..
        })
    ));
    let del = c.handle(
        &record(
            actor("demo"),
            Event::Intent(Intent::ServerGroupDeleteRequested { group_id: g.id }),
        ),
        NOW,
    );
    assert!(matches!(
        &del[0].env.event,
        Event::Instance(InstanceEvent::IntentRejected {
            kind: RejectionKind::NotFound,
            ..
        })
    ));
    let del = c.handle(
        &record(
            actor("other"),
            Event::Intent(Intent::ServerGroupDeleteRequested { group_id: g.id }),
        ),
        NOW,
    );
    assert_eq!(types(&del), ["ServerGroupDeleted"]);
    assert!(c.server_groups.is_empty());
}

// ---- aggregates ----

fn admin() -> Actor {
    Actor {
        user_id: "admin".into(),
        project_id: "admin".into(),
        roles: vec!["admin".into()],
    }
}

fn agg_intent(c: &mut Conductor, who: Actor, event: Event) -> Vec<Emit> {
    c.handle(&record(who, event), NOW)
}

fn new_aggregate(name: &str) -> Event {
    Event::Intent(Intent::AggregateCreateRequested(Box::new(
        novalog_schemas::events::HostAggregate {
            id: 0,
            uuid: Uuid::new_v4(),
            name: name.into(),
            hosts: vec![],
            metadata: BTreeMap::new(),
            created_at_ms: 0,
            updated_at_ms: 0,
        },
    )))
}

fn rejected_with(out: &[Emit]) -> RejectionKind {
    match &out[0].env.event {
        Event::Instance(InstanceEvent::IntentRejected { kind, .. }) => kind.clone(),
        other => panic!("accepted: {other:?}"),
    }
}

#[test]
fn aggregates_are_for_administrators_with_unique_names() {
    let mut c = given();
    assert_eq!(
        rejected_with(&agg_intent(&mut c, actor("demo"), new_aggregate("a"))),
        RejectionKind::Forbidden
    );
    let out = agg_intent(&mut c, admin(), new_aggregate("a"));
    assert_eq!(types(&out), ["AggregateCreated"]);
    assert_eq!(out[0].dest, Dest::Catalog);
    assert_eq!(c.aggregates[&1].name, "a");
    assert_eq!(
        rejected_with(&agg_intent(&mut c, admin(), new_aggregate("a"))),
        RejectionKind::Conflict
    );
    agg_intent(&mut c, admin(), new_aggregate("b"));
    assert_eq!(c.aggregates[&2].name, "b");
}

#[test]
fn a_host_is_in_one_zone_and_a_non_empty_aggregate_stays() {
    let mut c = given();
    agg_intent(&mut c, admin(), new_aggregate("a"));
    agg_intent(&mut c, admin(), new_aggregate("b"));
    let set_az = |id: u32, az: &str| {
        Event::Intent(Intent::AggregateMetadataSetRequested {
            aggregate_id: id,
            metadata: BTreeMap::from([("availability_zone".into(), Some(az.into()))]),
        })
    };
    let add = |id: u32| {
        Event::Intent(Intent::AggregateHostAddRequested {
            aggregate_id: id,
            host: "h1".into(),
        })
    };
    assert_eq!(
        types(&agg_intent(&mut c, admin(), set_az(1, "az1"))),
        ["AggregateMetadataSet"]
    );
    assert_eq!(
        types(&agg_intent(&mut c, admin(), add(1))),
        ["AggregateHostAdded"]
    );
    assert_eq!(
        rejected_with(&agg_intent(&mut c, admin(), add(1))),
        RejectionKind::Conflict
    );
    agg_intent(&mut c, admin(), set_az(2, "az2"));
    assert_eq!(
        rejected_with(&agg_intent(&mut c, admin(), add(2))),
        RejectionKind::Conflict
    );
    // Without a zone b may take h1, but then may not get another zone.
    agg_intent(
        &mut c,
        admin(),
        Event::Intent(Intent::AggregateMetadataSetRequested {
            aggregate_id: 2,
            metadata: BTreeMap::from([("availability_zone".into(), None)]),
        }),
    );
    assert_eq!(
        types(&agg_intent(&mut c, admin(), add(2))),
        ["AggregateHostAdded"]
    );
    assert_eq!(
        rejected_with(&agg_intent(&mut c, admin(), set_az(2, "az2"))),
        RejectionKind::Invalid
    );
    assert_eq!(
        types(&agg_intent(&mut c, admin(), set_az(2, "az1"))),
        ["AggregateMetadataSet"]
    );

    let delete = |id: u32| Event::Intent(Intent::AggregateDeleteRequested { aggregate_id: id });
    assert_eq!(
        rejected_with(&agg_intent(&mut c, admin(), delete(1))),
        RejectionKind::Invalid
    );
    let remove = Event::Intent(Intent::AggregateHostRemoveRequested {
        aggregate_id: 1,
        host: "h1".into(),
    });
    assert_eq!(
        types(&agg_intent(&mut c, admin(), remove.clone())),
        ["AggregateHostRemoved"]
    );
    assert_eq!(
        rejected_with(&agg_intent(&mut c, admin(), remove)),
        RejectionKind::NotFound
    );
    assert_eq!(
        types(&agg_intent(&mut c, admin(), delete(1))),
        ["AggregateDeleted"]
    );
    assert_eq!(
        rejected_with(&agg_intent(&mut c, admin(), delete(1))),
        RejectionKind::NotFound
    );
}

fn rejected(out: &[Emit]) -> Option<RejectionKind> {
    match &out[0].env.event {
        Event::Instance(InstanceEvent::IntentRejected { kind, .. }) => Some(kind.clone()),
        _ => None,
    }
}

#[test]
fn images_are_updated_and_deleted_by_their_owner_only() {
    let mut c = given();
    let mut mine = image();
    mine.id = Uuid::from_u128(8);
    mine.owner = "demo".into();
    mine.status = "queued".into();
    mine.size = 0;
    // Community: other projects see it, so their refusal is a 403.
    mine.visibility = "community".into();
    let out = c.handle(
        &record(
            actor("demo"),
            Event::Intent(Intent::ImageCreateRequested(mine.clone())),
        ),
        NOW,
    );
    assert_eq!(types(&out), ["ImageCreated"]);

    let start = Event::Intent(Intent::ImageUploadRequested { image_id: mine.id });
    let out = c.handle(&record(actor("other"), start.clone()), NOW);
    assert!(matches!(
        &out[0].env.event,
        Event::Instance(InstanceEvent::IntentRejected {
            kind: RejectionKind::Forbidden,
            ..
        })
    ));
    let out = c.handle(&record(actor("demo"), start.clone()), NOW);
    assert_eq!(types(&out), ["ImageUpdated"]);
    assert_eq!(c.images[&mine.id].status, "saving");
    let data = novalog_schemas::image::ImageData {
        image_id: mine.id,
        size: 3,
        checksum: "a".repeat(32),
        os_hash_value: "b".repeat(128),
    };
    let finish = Event::Intent(Intent::ImageUploadFinishRequested(Box::new(data.clone())));
    let out = c.handle(&record(actor("demo"), finish.clone()), NOW);
    assert_eq!(types(&out), ["ImageUpdated"]);
    assert_eq!(c.images[&mine.id].status, "active");

    // Data is written once.
    let out = c.handle(&record(actor("demo"), start), NOW);
    assert!(matches!(
        &out[0].env.event,
        Event::Instance(InstanceEvent::IntentRejected {
            kind: RejectionKind::Conflict,
            ..
        })
    ));
    let out = c.handle(&record(actor("demo"), finish), NOW);
    assert_eq!(rejected(&out), Some(RejectionKind::Conflict));
    assert_eq!(c.images[&mine.id].checksum, data.checksum);

    let out = c.handle(
        &record(
            actor("other"),
            Event::Intent(Intent::ImageDeleteRequested { image_id: mine.id }),
        ),
        NOW,
    );
    assert!(matches!(
        &out[0].env.event,
        Event::Instance(InstanceEvent::IntentRejected {
            kind: RejectionKind::Forbidden,
            ..
        })
    ));
    let out = c.handle(
        &record(
            actor("demo"),
            Event::Intent(Intent::ImageDeleteRequested { image_id: mine.id }),
        ),
        NOW,
    );
    assert_eq!(types(&out), ["ImageDeleted"]);
    let out = c.handle(
        &record(
            actor("demo"),
            Event::Intent(Intent::ImageDeleteRequested { image_id: mine.id }),
        ),
        NOW,
    );
    assert!(matches!(
        &out[0].env.event,
        Event::Instance(InstanceEvent::IntentRejected {
            kind: RejectionKind::NotFound,
            ..
        })
    ));
    // A deleted image boots nothing and its id is not reused.
    let out = c.handle(
        &record(
            actor("demo"),
            Event::Intent(Intent::ImageCreateRequested(mine.clone())),
        ),
        NOW,
    );
    assert!(matches!(
        &out[0].env.event,
        Event::Instance(InstanceEvent::IntentRejected {
            kind: RejectionKind::Conflict,
            ..
        })
    ));
}

fn queued_image(c: &mut Conductor, owner: &str, n: u128) -> Uuid {
    let mut i = image();
    i.id = Uuid::from_u128(n);
    i.owner = owner.into();
    i.status = "queued".into();
    i.size = 0;
    i.visibility = "private".into();
    let out = c.handle(
        &record(actor(owner), Event::Intent(Intent::ImageCreateRequested(i))),
        NOW,
    );
    assert_eq!(types(&out), ["ImageCreated"]);
    Uuid::from_u128(n)
}

fn patch(id: Uuid, ops: serde_json::Value) -> Event {
    Event::Intent(Intent::ImagePatchRequested(Box::new(
        novalog_schemas::image::ImagePatch {
            image_id: id,
            ops: novalog_schemas::image::parse_patch(&ops).unwrap(),
        },
    )))
}

/// Regression: concurrent PATCHes each wrote the whole image as the API
/// had last seen it, and all but the last added property were lost.
#[test]
fn concurrent_image_patches_are_all_applied() {
    let mut c = given();
    let id = queued_image(&mut c, "demo", 20);
    // Twenty patches, all written before any is decided.
    let intents: Vec<Envelope> = (0..20)
        .map(|n| {
            let ops = serde_json::json!([{"op": "add", "path": format!("/p{n}"), "value": "v"}]);
            record(actor("demo"), patch(id, ops))
        })
        .collect();
    for env in &intents {
        assert_eq!(types(&c.handle(env, NOW)), ["ImageUpdated"]);
    }
    assert_eq!(c.images[&id].properties.len(), 20);
    // Each verdict carries the image as it was after that patch.
    let out = c.handle(
        &record(
            actor("demo"),
            patch(id, serde_json::json!([{"op": "remove", "path": "/p3"}])),
        ),
        NOW,
    );
    match &out[0].env.event {
        Event::Catalog(CatalogEvent::ImageUpdated(i)) => assert_eq!(i.properties.len(), 19),
        other => panic!("{other:?}"),
    }
    // State-dependent refusals are decided here too.
    let out = c.handle(
        &record(
            actor("demo"),
            patch(id, serde_json::json!([{"op": "remove", "path": "/p3"}])),
        ),
        NOW,
    );
    assert_eq!(rejected(&out), Some(RejectionKind::Conflict));
}

/// Regression: a PATCH racing an upload put the active image back to
/// queued and let a second upload replace its data.
#[test]
fn a_patch_racing_an_upload_leaves_it_active() {
    let mut c = given();
    let id = queued_image(&mut c, "demo", 21);
    let start = Event::Intent(Intent::ImageUploadRequested { image_id: id });
    assert_eq!(
        types(&c.handle(&record(actor("demo"), start.clone()), NOW)),
        ["ImageUpdated"]
    );
    let add = |n: u32| {
        record(
            actor("demo"),
            patch(
                id,
                serde_json::json!([{"op": "add", "path": format!("/k{n}"), "value": "v"}]),
            ),
        )
    };
    assert_eq!(types(&c.handle(&add(1), NOW)), ["ImageUpdated"]);
    assert_eq!(c.images[&id].status, "saving");
    let data = novalog_schemas::image::ImageData {
        image_id: id,
        size: 1,
        checksum: "a".repeat(32),
        os_hash_value: "b".repeat(128),
    };
    let finish = Event::Intent(Intent::ImageUploadFinishRequested(Box::new(data.clone())));
    assert_eq!(
        types(&c.handle(&record(actor("demo"), finish), NOW)),
        ["ImageUpdated"]
    );
    assert_eq!(types(&c.handle(&add(2), NOW)), ["ImageUpdated"]);
    let i = &c.images[&id];
    assert_eq!((i.status.as_str(), i.size), ("active", 1));
    assert_eq!(i.checksum, data.checksum);
    assert_eq!(i.properties.len(), 2);
    assert_eq!(
        rejected(&c.handle(&record(actor("demo"), start), NOW)),
        Some(RejectionKind::Conflict)
    );
    // The old whole-image intent cannot put it back either.
    let mut stale = c.images[&id].clone();
    stale.status = "queued".into();
    assert_eq!(
        rejected(&c.handle(
            &record(
                actor("demo"),
                Event::Intent(Intent::ImageUpdateRequested(stale))
            ),
            NOW
        )),
        Some(RejectionKind::Conflict)
    );
    assert_eq!(c.images[&id].status, "active");
}

#[test]
fn a_failed_upload_goes_back_to_queued() {
    let mut c = given();
    let id = queued_image(&mut c, "demo", 22);
    let start = Event::Intent(Intent::ImageUploadRequested { image_id: id });
    c.handle(&record(actor("demo"), start.clone()), NOW);
    let abort = Event::Intent(Intent::ImageUploadAbortRequested { image_id: id });
    assert_eq!(
        types(&c.handle(&record(actor("demo"), abort.clone()), NOW)),
        ["ImageUpdated"]
    );
    assert_eq!(c.images[&id].status, "queued");
    assert_eq!(
        rejected(&c.handle(&record(actor("demo"), abort), NOW)),
        Some(RejectionKind::Conflict)
    );
    assert_eq!(
        types(&c.handle(&record(actor("demo"), start), NOW)),
        ["ImageUpdated"]
    );
}

#[test]
fn readers_do_not_change_images() {
    let mut c = given();
    let id = queued_image(&mut c, "demo", 23);
    let reader = Actor {
        user_id: "r".into(),
        project_id: "demo".into(),
        roles: vec!["reader".into()],
    };
    let mut new = image();
    new.id = Uuid::from_u128(24);
    new.owner = "demo".into();
    new.status = "queued".into();
    new.size = 0;
    new.visibility = "private".into();
    for event in [
        Event::Intent(Intent::ImageCreateRequested(new)),
        patch(
            id,
            serde_json::json!([{"op": "add", "path": "/k", "value": "v"}]),
        ),
        Event::Intent(Intent::ImageUploadRequested { image_id: id }),
        Event::Intent(Intent::ImageDeleteRequested { image_id: id }),
    ] {
        let name = event.type_name();
        assert_eq!(
            rejected(&c.handle(&record(reader.clone(), event), NOW)),
            Some(RejectionKind::Forbidden),
            "{name}"
        );
    }
}

fn keypair(user: &str, name: &str) -> novalog_schemas::events::Keypair {
    novalog_schemas::events::Keypair {
        name: name.into(),
        user_id: user.into(),
        project_id: "demo".into(),
        public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== me".into(),
        fingerprint: "aa:bb".into(),
        key_type: "ssh".into(),
        created_at_ms: 0,
        id: 0,
    }
}

#[test]
fn keypairs_are_unique_per_user_and_deleted_by_their_owner() {
    let mut c = given();
    let demo = actor("demo");
    let create = |k| Event::Intent(Intent::KeypairCreateRequested(Box::new(k)));
    // Given demo-user's key k1, when demo-user creates k1 again: 409.
    let out = c.handle(
        &record(demo.clone(), create(keypair("demo-user", "k1"))),
        NOW,
    );
    assert_eq!(types(&out), ["KeypairCreated"]);
    assert_eq!(out[0].dest, Dest::Catalog);
    match &out[0].env.event {
        Event::Catalog(CatalogEvent::KeypairCreated(k)) => {
            assert_eq!((k.created_at_ms, k.id), (NOW, 1))
        }
        other => panic!("{other:?}"),
    }
    let out = c.handle(
        &record(demo.clone(), create(keypair("demo-user", "k1"))),
        NOW,
    );
    assert_eq!(rejected_with(&out), RejectionKind::Conflict);
    // Another user may use the same name.
    let out = c.handle(
        &record(actor("other"), create(keypair("other-user", "k1"))),
        NOW,
    );
    assert_eq!(types(&out), ["KeypairCreated"]);
    // A member may not create or delete another user's key.
    let out = c.handle(
        &record(demo.clone(), create(keypair("other-user", "k2"))),
        NOW,
    );
    assert_eq!(rejected_with(&out), RejectionKind::Forbidden);
    let del = |user: &str, name: &str| {
        Event::Intent(Intent::KeypairDeleteRequested {
            user_id: user.into(),
            name: name.into(),
        })
    };
    let out = c.handle(&record(demo.clone(), del("other-user", "k1")), NOW);
    assert_eq!(rejected_with(&out), RejectionKind::Forbidden);
    let out = c.handle(&record(demo.clone(), del("demo-user", "k1")), NOW);
    assert_eq!(types(&out), ["KeypairDeleted"]);
    let out = c.handle(&record(demo, del("demo-user", "k1")), NOW);
    assert_eq!(rejected_with(&out), RejectionKind::NotFound);
    assert_eq!(c.keypairs.len(), 1);
    let mut tx = novalog_store::Transaction::new();
    assert_eq!(c.keypairs.persist(&mut tx).unwrap().len(), 2);
}

#[test]
fn keypairs_are_limited_per_user() {
    let mut c = given();
    for i in 0..crate::keypairs::MAX_KEYPAIRS_PER_USER {
        let k = keypair("demo-user", &format!("k{i}"));
        let out = c.handle(
            &record(
                actor("demo"),
                Event::Intent(Intent::KeypairCreateRequested(Box::new(k))),
            ),
            NOW,
        );
        assert_eq!(types(&out), ["KeypairCreated"]);
    }
    let k = keypair("demo-user", "one-too-many");
    let out = c.handle(
        &record(
            actor("demo"),
            Event::Intent(Intent::KeypairCreateRequested(Box::new(k))),
        ),
        NOW,
    );
    assert_eq!(rejected_with(&out), RejectionKind::OverQuota);
}

#[test]
fn services_are_changed_by_administrators_and_hosts_with_instances_stay() {
    use novalog_schemas::events::ServiceStatus;
    let mut c = given();
    let status = ServiceStatus {
        host: "h1".into(),
        disabled: true,
        disabled_reason: Some("maintenance".into()),
        forced_down: false,
    };
    let update = Event::Intent(Intent::ServiceUpdateRequested(Box::new(status.clone())));
    let out = c.handle(&record(actor("demo"), update.clone()), NOW);
    assert_eq!(rejected_with(&out), RejectionKind::Forbidden);
    let out = c.handle(&record(admin(), update), NOW);
    assert_eq!(types(&out), ["ServiceUpdated"]);
    assert_eq!(out[0].dest, Dest::Hosts);
    assert_eq!(out[0].key, "h1");
    // Given an instance built on h1, its service cannot be deleted.
    let id = Uuid::new_v4();
    create(&mut c, id);
    selected(&mut c, id, &["h1"]);
    spawned(&mut c, id, "h1", 1);
    let delete = |host: &str| Event::Intent(Intent::ServiceDeleteRequested { host: host.into() });
    let out = c.handle(&record(admin(), delete("h1")), NOW);
    assert_eq!(rejected_with(&out), RejectionKind::Conflict);
    let out = c.handle(&record(actor("demo"), delete("h2")), NOW);
    assert_eq!(rejected_with(&out), RejectionKind::Forbidden);
    let out = c.handle(&record(admin(), delete("h2")), NOW);
    assert_eq!(types(&out), ["ServiceDeleted"]);
}

/// Regression: each `PUT /os-services` sent the whole status as the API
/// had last seen it, so a disable and a force-down at once kept only one.
#[test]
fn concurrent_service_changes_are_all_kept() {
    use novalog_schemas::events::{ServiceChange, ServiceStatus};
    let mut c = given();
    let seen = ServiceStatus {
        host: "h1".into(),
        ..Default::default()
    };
    // Both written against the same view, before either is decided.
    let disable = ServiceChange {
        host: "h1".into(),
        disabled: Some(true),
        disabled_reason: Some(Some("maintenance".into())),
        seen: seen.clone(),
        ..Default::default()
    };
    let force = ServiceChange {
        host: "h1".into(),
        forced_down: Some(true),
        seen,
        ..Default::default()
    };
    for ch in [disable, force] {
        let out = c.handle(
            &record(
                admin(),
                Event::Intent(Intent::ServiceChangeRequested(Box::new(ch))),
            ),
            NOW,
        );
        assert_eq!(types(&out), ["ServiceUpdated"]);
    }
    let want = ServiceStatus {
        host: "h1".into(),
        disabled: true,
        disabled_reason: Some("maintenance".into()),
        forced_down: true,
    };
    assert_eq!(c.services["h1"], want);
    let enable = ServiceChange {
        host: "h1".into(),
        disabled: Some(false),
        disabled_reason: Some(None),
        seen: Default::default(),
        ..Default::default()
    };
    let out = c.handle(
        &record(
            admin(),
            Event::Intent(Intent::ServiceChangeRequested(Box::new(enable.clone()))),
        ),
        NOW,
    );
    match &out[0].env.event {
        Event::Host(HostEvent::ServiceUpdated(s)) => {
            assert!(!s.disabled && s.disabled_reason.is_none() && s.forced_down)
        }
        other => panic!("{other:?}"),
    }
    let out = c.handle(
        &record(
            actor("demo"),
            Event::Intent(Intent::ServiceChangeRequested(Box::new(enable))),
        ),
        NOW,
    );
    assert_eq!(rejected_with(&out), RejectionKind::Forbidden);
}

#[test]
fn flavor_extra_specs_description_access_and_delete() {
    use novalog_schemas::events::FlavorUpdate;
    let mut c = given();
    let mut private = flavor();
    private.id = "p1".into();
    private.name = "private".into();
    private.is_public = false;
    c.flavors.insert("p1".into(), private);
    let update = |set: &[(&str, &str)], unset: &[&str]| {
        Event::Intent(Intent::FlavorUpdateRequested(Box::new(FlavorUpdate {
            flavor_id: "1".into(),
            extra_specs_set: set
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            extra_specs_unset: unset.iter().map(|k| k.to_string()).collect(),
            description: Some(Some("tiny".into())),
        })))
    };
    // Members may not change flavors.
    let out = c.handle(&record(actor("demo"), update(&[("a", "1")], &[])), NOW);
    assert_eq!(rejected_with(&out), RejectionKind::Forbidden);
    let out = c.handle(
        &record(admin(), update(&[("a", "1"), ("b", "2")], &[])),
        NOW,
    );
    match &out[0].env.event {
        Event::Catalog(CatalogEvent::FlavorUpdated(f)) => {
            assert_eq!(f.extra_specs.len(), 2);
            assert_eq!(f.description.as_deref(), Some("tiny"));
        }
        other => panic!("{other:?}"),
    }
    let out = c.handle(&record(admin(), update(&[], &["a"])), NOW);
    assert_eq!(types(&out), ["FlavorUpdated"]);
    assert_eq!(c.flavors["1"].extra_specs.len(), 1);
    let out = c.handle(&record(admin(), update(&[], &["a"])), NOW);
    assert_eq!(rejected_with(&out), RejectionKind::NotFound);

    let access = |flavor: &str, add| {
        Event::Intent(Intent::FlavorAccessChangeRequested {
            flavor_id: flavor.into(),
            project_id: "demo".into(),
            add,
        })
    };
    assert_eq!(
        rejected_with(&c.handle(&record(admin(), access("1", true)), NOW)),
        RejectionKind::Conflict
    );
    let out = c.handle(&record(admin(), access("p1", true)), NOW);
    assert_eq!(types(&out), ["FlavorAccessAdded"]);
    assert_eq!(
        rejected_with(&c.handle(&record(admin(), access("p1", true)), NOW)),
        RejectionKind::Conflict
    );
    let out = c.handle(&record(admin(), access("p1", false)), NOW);
    assert_eq!(types(&out), ["FlavorAccessRemoved"]);
    assert_eq!(
        rejected_with(&c.handle(&record(admin(), access("p1", false)), NOW)),
        RejectionKind::NotFound
    );
    assert_eq!(
        rejected_with(&c.handle(&record(admin(), access("nope", true)), NOW)),
        RejectionKind::NotFound
    );

    let delete = |id: &str| {
        Event::Intent(Intent::FlavorDeleteRequested {
            flavor_id: id.into(),
        })
    };
    assert_eq!(
        rejected_with(&c.handle(&record(actor("demo"), delete("p1")), NOW)),
        RejectionKind::Forbidden
    );
    let out = c.handle(&record(admin(), delete("p1")), NOW);
    assert_eq!(types(&out), ["FlavorDeleted"]);
    assert!(!c.flavors.contains_key("p1"));
    assert_eq!(
        rejected_with(&c.handle(&record(admin(), delete("p1")), NOW)),
        RejectionKind::NotFound
    );
}

#[test]
fn an_upload_left_saving_past_its_lease_is_queued_again_by_the_lease_keeper_only() {
    let mut c = given();
    c.settings.upload_lease_ms = 60_000;
    let mut mine = image();
    mine.id = Uuid::new_v4();
    mine.owner = "demo".into();
    mine.status = "queued".into();
    mine.size = 0;
    mine.visibility = "private".into();
    let create = Event::Intent(Intent::ImageCreateRequested(mine.clone()));
    c.handle(&record(actor("demo"), create), NOW);
    let mut start = record(
        actor("demo"),
        Event::Intent(Intent::ImageUploadRequested { image_id: mine.id }),
    );
    start.meta.occurred_at_ms = 1_000;
    assert_eq!(types(&c.handle(&start, NOW)), ["ImageUpdated"]);
    assert_eq!(c.images[&mine.id].status, "saving");

    let keeper = Actor::service(novalog_schemas::image::LEASE_KEEPER);
    let expire = |at: i64| {
        let mut r = record(
            keeper.clone(),
            Event::Intent(Intent::ImageUploadAbortRequested { image_id: mine.id }),
        );
        r.meta.occurred_at_ms = at;
        r
    };
    // Within the lease the upload keeps the image.
    let out = c.handle(&expire(1_000 + 59_999), NOW);
    assert!(
        matches!(
            &out[..],
            [Emit {
                env: Envelope {
                    event: Event::Instance(InstanceEvent::IntentRejected {
                        kind: RejectionKind::Conflict,
                        ..
                    }),
                    ..
                },
                ..
            }]
        ),
        "{out:?}"
    );
    assert_eq!(c.images[&mine.id].status, "saving");
    // Another project's member cannot pass for the keeper.
    let mut forged = record(
        actor("other"),
        Event::Intent(Intent::ImageUploadAbortRequested { image_id: mine.id }),
    );
    forged.meta.occurred_at_ms = 1_000_000;
    c.handle(&forged, NOW);
    assert_eq!(c.images[&mine.id].status, "saving");
    // Past it the keeper puts it back to queued, ready for a new upload.
    assert_eq!(
        types(&c.handle(&expire(1_000 + 60_000), NOW)),
        ["ImageUpdated"]
    );
    assert_eq!(c.images[&mine.id].status, "queued");
    assert_eq!(c.images[&mine.id].checksum, "");
}
