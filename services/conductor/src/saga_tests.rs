//! Given / when / then tests of the resize, migrate and rebuild sagas and
//! of the step timers: given an instance and a cloud whose hosts answer
//! (or fail, or never answer) as told, when a request, a fact or the
//! passing of time arrives, then these records and these states.

use std::collections::{BTreeMap, VecDeque};

use novalog_schemas::migration::MigrationStatus;
use novalog_schemas::migration::{
    MigrationCommand, MigrationFact, MigrationType, ServerMigrationRequested,
    ServerRebuildRequested,
};
use novalog_schemas::{
    ComputeCommand, ComputeFact, Envelope, Event, Flavor, Instance, InstanceEvent, Intent,
    RejectionKind, SchedulerEvent, TaskState, VmState,
};
use uuid::Uuid;

use crate::core::{Conductor, Dest, Emit, Settings};
use crate::resize;
use crate::tests::{
    NOW, actor, create, fact, flavor, given, image, record, selected, spawned, types,
};

const SECOND: i64 = 1_000;

fn big_flavor() -> Flavor {
    Flavor {
        id: "2".into(),
        name: "m1.small".into(),
        vcpus: 2,
        ram_mb: 2048,
        disk_gb: 20,
        ..flavor()
    }
}

/// A conductor and a make-believe cloud around it: a scheduler that
/// offers `hosts` (less the ignored ones) and hosts that carry out every
/// command unless a step is set to fail or to stay silent on them.
struct Cloud {
    c: Conductor,
    now: i64,
    hosts: Vec<&'static str>,
    /// (step, host) pairs that fail; host `*` for every host.
    fail: Vec<(&'static str, &'static str)>,
    /// (step, host) pairs that never answer.
    silent: Vec<(&'static str, &'static str)>,
    /// Every record the conductor emitted, in order.
    log: Vec<Emit>,
}

fn step_of(e: &Event) -> Option<(&'static str, &MigrationCommand)> {
    Some(match e {
        Event::Compute(ComputeCommand::PrepResize(c)) => ("prep_resize", c),
        Event::Compute(ComputeCommand::MigrateDiskAndPowerOff(c)) => {
            ("migrate_disk_and_power_off", c)
        }
        Event::Compute(ComputeCommand::FinishMigration(c)) => ("finish_migration", c),
        Event::Compute(ComputeCommand::ConfirmMigration(c)) => ("confirm_migration", c),
        Event::Compute(ComputeCommand::RevertMigration(c)) => ("revert_migration", c),
        Event::Compute(ComputeCommand::FinishRevertMigration(c)) => ("finish_revert_migration", c),
        Event::Compute(ComputeCommand::DropMigrationClaim(c)) => ("drop_migration_claim", c),
        Event::Compute(ComputeCommand::RebuildInstance(c)) => ("rebuild", c),
        Event::Compute(ComputeCommand::LiveMigrateInstance(c)) => ("live_migration", c),
        Event::Compute(ComputeCommand::RebuildEvacuatedInstance(c)) => ("rebuild_evacuated", c),
        Event::Compute(ComputeCommand::CleanupEvacuatedInstance(c)) => ("cleanup_evacuated", c),
        _ => return None,
    })
}

impl Cloud {
    fn new(settings: Settings) -> Self {
        let mut c = given();
        c.settings = settings;
        c.flavors.insert("2".into(), big_flavor());
        Cloud {
            c,
            now: NOW,
            hosts: vec!["h1", "h2", "h3"],
            fail: Vec::new(),
            silent: Vec::new(),
            log: Vec::new(),
        }
    }

    fn standard() -> Self {
        Cloud::new(Settings::default())
    }

    /// An ACTIVE instance on `host`.
    fn boot(&mut self, host: &str) -> Uuid {
        let id = Uuid::new_v4();
        create(&mut self.c, id);
        selected(&mut self.c, id, &[host]);
        spawned(&mut self.c, id, host, 1);
        assert_eq!(self.i(id).status(), "ACTIVE");
        id
    }

    fn i(&self, id: Uuid) -> &Instance {
        &self.c.instances[&id]
    }

    fn hits(list: &[(&str, &str)], step: &str, host: &str) -> bool {
        list.iter()
            .any(|(s, h)| *s == step && (*h == host || *h == "*"))
    }

    /// Hands `env` to the conductor and lets the cloud answer until it is
    /// quiet; returns what the conductor emitted meanwhile.
    fn send(&mut self, env: Envelope) -> Vec<Emit> {
        let out = self.c.handle(&env, self.now);
        self.pump(out)
    }

    fn pump(&mut self, out: Vec<Emit>) -> Vec<Emit> {
        let mut seen = Vec::new();
        let mut queue: VecDeque<Emit> = out.into();
        while let Some(e) = queue.pop_front() {
            seen.push(e.clone());
            self.log.push(e.clone());
            let answers = self.answer(&e);
            for a in answers {
                queue.extend(self.c.handle(&a, self.now));
            }
        }
        seen
    }

    /// What the scheduler or a host says to `e`.
    fn answer(&self, e: &Emit) -> Vec<Envelope> {
        let by = |service: &str, event| Envelope {
            meta: e
                .env
                .meta
                .caused(service, e.env.meta.aggregate_id.clone(), 0),
            event,
        };
        if let Event::Scheduler(SchedulerEvent::SelectHostsRequested(r)) = &e.env.event {
            let hosts: Vec<String> = self
                .hosts
                .iter()
                .filter(|h| !r.ignore_hosts.iter().any(|i| i == *h))
                .map(|h| h.to_string())
                .collect();
            let event = if hosts.is_empty() {
                Event::Scheduler(SchedulerEvent::NoValidHostFound {
                    request_id: r.request_id,
                    instance_id: r.instance_id,
                    reason: "There are not enough hosts available.".into(),
                })
            } else {
                Event::Scheduler(SchedulerEvent::HostsSelected {
                    request_id: r.request_id,
                    instance_id: r.instance_id,
                    hosts,
                })
            };
            return vec![by("select", event)];
        }
        let Some((step, cmd)) = step_of(&e.env.event) else {
            return Vec::new();
        };
        assert_eq!(e.dest, Dest::Compute);
        assert_eq!(
            e.key, cmd.host,
            "commands are keyed by the host that carries them out"
        );
        if Cloud::hits(&self.silent, step, &cmd.host) {
            return Vec::new();
        }
        let f = |power_state: novalog_schemas::PowerState, s: &str, reason: &str| {
            Box::new(MigrationFact {
                instance_id: cmd.instance_id,
                migration_id: cmd.migration_id,
                host: cmd.host.clone(),
                attempt: cmd.attempt,
                power_state,
                step: s.into(),
                reason: reason.into(),
                usage: Default::default(),
            })
        };
        let power = if cmd.power_on {
            novalog_schemas::PowerState::Running
        } else {
            novalog_schemas::PowerState::Shutdown
        };
        if step == "rebuild_evacuated" && Cloud::hits(&self.fail, "claim", &cmd.host) {
            return vec![by(
                step,
                Event::ComputeFact(ComputeFact::ResizeClaimFailed(f(
                    novalog_schemas::PowerState::NoState,
                    step,
                    "Insufficient compute resources",
                ))),
            )];
        }
        if Cloud::hits(&self.fail, step, &cmd.host) {
            let event = if step == "prep_resize" || step == "claim" {
                Event::ComputeFact(ComputeFact::ResizeClaimFailed(f(
                    novalog_schemas::PowerState::NoState,
                    step,
                    "Insufficient compute resources",
                )))
            } else {
                Event::ComputeFact(ComputeFact::MigrationStepFailed(f(
                    novalog_schemas::PowerState::NoState,
                    step,
                    "injected failure",
                )))
            };
            return vec![by(step, event)];
        }
        let events = match step {
            "prep_resize" => vec![Event::ComputeFact(ComputeFact::ResizeClaimSucceeded(f(
                novalog_schemas::PowerState::NoState,
                "",
                "",
            )))],
            "migrate_disk_and_power_off" => {
                vec![Event::ComputeFact(ComputeFact::DiskMigratedAndPoweredOff(
                    f(novalog_schemas::PowerState::Shutdown, "", ""),
                ))]
            }
            "finish_migration" => vec![Event::ComputeFact(ComputeFact::MigrationFinishedOnDest(
                f(power, "", ""),
            ))],
            "confirm_migration" => {
                vec![Event::ComputeFact(ComputeFact::MigrationConfirmedOnSource(
                    f(novalog_schemas::PowerState::NoState, "", ""),
                ))]
            }
            "revert_migration" => vec![Event::ComputeFact(ComputeFact::MigrationRevertedOnDest(
                f(novalog_schemas::PowerState::NoState, "", ""),
            ))],
            "finish_revert_migration" => vec![Event::ComputeFact(
                ComputeFact::RevertFinishedOnSource(f(power, "", "")),
            )],
            "rebuild" | "rebuild_evacuated" => vec![
                Event::ComputeFact(ComputeFact::RebuildSpawnStarted(f(
                    novalog_schemas::PowerState::NoState,
                    "",
                    "",
                ))),
                Event::ComputeFact(ComputeFact::InstanceRebuilt(f(power, "", ""))),
            ],
            "live_migration" => vec![Event::ComputeFact(ComputeFact::InstanceLiveMigrated(f(
                novalog_schemas::PowerState::NoState,
                "",
                "",
            )))],
            "cleanup_evacuated" => {
                vec![Event::ComputeFact(ComputeFact::EvacuatedInstanceCleanedUp(
                    f(novalog_schemas::PowerState::NoState, "", ""),
                ))]
            }
            _ => Vec::new(),
        };
        events
            .into_iter()
            .enumerate()
            .map(|(n, ev)| by(&format!("{step}-{n}"), ev))
            .collect()
    }

    fn intent(&mut self, event: Event) -> Vec<Emit> {
        self.send(record(actor("demo"), event))
    }

    fn resize(&mut self, id: Uuid, flavor_id: &str) -> Vec<Emit> {
        let mut f = big_flavor();
        f.id = flavor_id.into();
        self.intent(Event::Intent(Intent::ServerMigrationRequested(Box::new(
            ServerMigrationRequested {
                instance_id: id,
                migration_type: MigrationType::Resize,
                flavor: Some(f),
                host: None,
                source_host_down: false,
                auto_disk_config: None,
                stop_at_destination: false,
            },
        ))))
    }

    fn migrate(&mut self, id: Uuid, host: Option<&str>) -> Vec<Emit> {
        self.send(record(
            admin(),
            Event::Intent(Intent::ServerMigrationRequested(Box::new(
                ServerMigrationRequested {
                    instance_id: id,
                    migration_type: MigrationType::Migration,
                    flavor: None,
                    host: host.map(str::to_owned),
                    source_host_down: false,
                    auto_disk_config: None,
                    stop_at_destination: false,
                },
            ))),
        ))
    }

    fn confirm(&mut self, id: Uuid) -> Vec<Emit> {
        self.intent(Event::Intent(Intent::ServerResizeConfirmRequested {
            instance_id: id,
        }))
    }

    fn revert(&mut self, id: Uuid) -> Vec<Emit> {
        self.intent(Event::Intent(Intent::ServerResizeRevertRequested {
            instance_id: id,
        }))
    }

    /// Lets `ms` pass and hands the conductor the timeouts its timer would
    /// append; returns what they caused.
    fn pass(&mut self, ms: i64) -> Vec<Emit> {
        self.now += ms;
        let mut seen = Vec::new();
        for t in self.c.expired(self.now) {
            assert_eq!(t.dest, Dest::Intents);
            seen.push(t.clone());
            seen.extend(self.send(t.env));
        }
        seen
    }

    fn commands_to(&self, host: &str) -> Vec<&'static str> {
        self.log
            .iter()
            .filter(|e| e.dest == Dest::Compute && e.key == host)
            .map(|e| e.env.event.type_name())
            .collect()
    }
}

fn admin() -> novalog_schemas::Actor {
    novalog_schemas::Actor {
        user_id: "admin".into(),
        project_id: "admin".into(),
        roles: vec!["admin".into()],
    }
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
    out.iter().find_map(|e| match &e.env.event {
        Event::Instance(InstanceEvent::IntentRejected { kind, message, .. }) => {
            Some((kind.clone(), message.clone()))
        }
        _ => None,
    })
}

fn task_states(out: &[Emit]) -> Vec<&'static str> {
    let mut c = Conductor::default();
    let _ = &mut c;
    out.iter()
        .filter(|e| e.dest == Dest::Instances)
        .map(|e| e.env.event.type_name())
        .collect()
}

fn migration(c: &Cloud, id: Uuid) -> &novalog_schemas::migration::Migration {
    c.i(id).migrations.last().expect("a migration")
}

// ---- resize and confirm ----

#[test]
fn resize_goes_through_novas_steps_to_verify_resize_then_confirm_makes_it_active_on_the_destination()
 {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    let out = w.resize(id, "2");
    assert_eq!(
        task_states(&out),
        [
            "MigrationStarted",
            "MigrationScheduled",
            "ResizeMigrationStarted",
            "ResizeMigrated",
            "ResizeFinishStarted",
            "ResizeFinished"
        ]
    );
    // The scheduler was asked for the new flavor, away from the source.
    let ask = out
        .iter()
        .find_map(|e| match &e.env.event {
            Event::Scheduler(SchedulerEvent::SelectHostsRequested(r)) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(ask.resources.memory_mb, 2048);
    assert_eq!(ask.ignore_hosts, ["h1"]);
    let i = w.i(id);
    assert_eq!((i.vm_state, i.task_state), (VmState::Resized, None));
    assert_eq!(i.status(), "VERIFY_RESIZE");
    assert_eq!(i.host.as_deref(), Some("h2"));
    assert_eq!(i.flavor.id, "2");
    let m = migration(&w, id);
    assert_eq!(m.status, MigrationStatus::Finished);
    assert_eq!(
        (m.source_compute.as_str(), m.dest_compute.as_deref()),
        ("h1", Some("h2"))
    );
    assert_eq!(m.migration_type, MigrationType::Resize);
    assert_eq!(m.id, 1);
    assert!(
        !w.c.awaiting.contains_key(&id),
        "nothing awaited in VERIFY_RESIZE"
    );
    assert_eq!(w.commands_to("h2"), ["PrepResize", "FinishMigration"]);
    assert_eq!(w.commands_to("h1"), ["MigrateDiskAndPowerOff"]);

    let out = w.confirm(id);
    assert_eq!(
        task_states(&out),
        ["ResizeConfirmStarted", "ResizeConfirmed"]
    );
    let i = w.i(id);
    assert_eq!((i.status(), i.task_state), ("ACTIVE", None));
    assert_eq!(i.host.as_deref(), Some("h2"));
    assert_eq!(migration(&w, id).status, MigrationStatus::Confirmed);
    assert_eq!(
        w.commands_to("h1"),
        ["MigrateDiskAndPowerOff", "ConfirmMigration"],
        "the source cleans up (and releases its claim) on confirm"
    );
    assert!(w.c.awaiting.is_empty());
}

#[test]
fn a_migration_id_comes_from_the_intents_log_position_so_replicas_never_collide() {
    // Two conductors owning different partitions decide a resize each at
    // the same offset: their ids differ. The same position again (a
    // replay) gives the same id.
    let ids: Vec<u64> = [(0, 41), (1, 41), (0, 41), (0, 42)]
        .into_iter()
        .map(|(partition, offset)| {
            let mut w = Cloud::standard();
            let id = w.boot("h1");
            w.c.at(partition, offset);
            w.resize(id, "2");
            migration(&w, id).id
        })
        .collect();
    assert_ne!(ids[0], ids[1], "other partition, same offset");
    assert_eq!(ids[0], ids[2], "the same position decides the same id");
    assert!(ids[3] > ids[0], "a later intent gets a larger id");
    assert_eq!(ids[0], crate::core::migration_id_at(0, 41));
    // Distinct over a grid of positions, and exact as a JSON number.
    let mut seen = std::collections::HashSet::new();
    for partition in [0, 1, 2, 255, 65_535] {
        for offset in [0, 1, 2, 1 << 20, (1 << 37) - 2] {
            let id = crate::core::migration_id_at(partition, offset);
            assert!(id < 1 << 53, "{partition}/{offset}");
            assert!(seen.insert(id), "{partition}/{offset} collides");
        }
    }
}

#[test]
fn every_intermediate_task_state_is_novas() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    // Stop the cloud at each step by silencing it, and look.
    w.silent = vec![("prep_resize", "*")];
    w.resize(id, "2");
    assert_eq!(w.i(id).task_state, Some(TaskState::ResizePrep));
    assert_eq!(w.i(id).status(), "RESIZE");
    assert_eq!(migration(&w, id).status, MigrationStatus::PreMigrating);
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.silent = vec![("migrate_disk_and_power_off", "*")];
    w.resize(id, "2");
    assert_eq!(w.i(id).task_state, Some(TaskState::ResizeMigrating));
    assert_eq!(migration(&w, id).status, MigrationStatus::Migrating);
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.silent = vec![("finish_migration", "*")];
    w.resize(id, "2");
    assert_eq!(w.i(id).task_state, Some(TaskState::ResizeFinish));
    assert_eq!(migration(&w, id).status, MigrationStatus::PostMigrating);
    assert_eq!(w.i(id).host.as_deref(), Some("h1"), "still on the source");
    w.silent = vec![("confirm_migration", "*")];
    let mut w2 = Cloud::standard();
    let id2 = w2.boot("h1");
    w2.resize(id2, "2");
    w2.silent = vec![("confirm_migration", "*"), ("revert_migration", "*")];
    w2.confirm(id2);
    assert_eq!(w2.i(id2).task_state, Some(TaskState::ResizeConfirming));
    assert_eq!(migration(&w2, id2).status, MigrationStatus::Confirming);
    let mut w3 = Cloud::standard();
    let id3 = w3.boot("h1");
    w3.resize(id3, "2");
    w3.silent = vec![("revert_migration", "*")];
    w3.revert(id3);
    assert_eq!(w3.i(id3).status(), "REVERT_RESIZE");
    assert_eq!(migration(&w3, id3).status, MigrationStatus::Reverting);
}

#[test]
fn revert_destroys_the_destination_and_restarts_the_source_with_the_old_flavor() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.resize(id, "2");
    let out = w.revert(id);
    assert_eq!(task_states(&out), ["ResizeRevertStarted", "ResizeReverted"]);
    assert_eq!(
        types(&out)
            .iter()
            .filter(|t| **t == "RevertMigration")
            .count(),
        1
    );
    let i = w.i(id);
    assert_eq!((i.status(), i.task_state), ("ACTIVE", None));
    assert_eq!(i.host.as_deref(), Some("h1"));
    assert_eq!(i.flavor.id, "1");
    assert_eq!(i.power_state, novalog_schemas::PowerState::Running);
    assert_eq!(migration(&w, id).status, MigrationStatus::Reverted);
    assert_eq!(
        w.commands_to("h2"),
        ["PrepResize", "FinishMigration", "RevertMigration"]
    );
    assert_eq!(
        w.commands_to("h1"),
        ["MigrateDiskAndPowerOff", "FinishRevertMigration"]
    );
}

#[test]
fn cold_migrate_keeps_the_flavor_and_a_stopped_instance_stays_stopped() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    // Stopped, as the stop action leaves it.
    if let Some(i) = w.c.instances.get_mut(&id) {
        i.vm_state = VmState::Stopped;
        i.power_state = novalog_schemas::PowerState::Shutdown;
    }
    let out = w.migrate(id, None);
    assert!(rejection(&out).is_none(), "{out:?}");
    let finish = out
        .iter()
        .find_map(|e| match &e.env.event {
            Event::Compute(ComputeCommand::FinishMigration(c)) => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        !finish.power_on,
        "a stopped instance is not powered on at the destination"
    );
    assert_eq!(w.i(id).flavor.id, "1");
    assert_eq!(migration(&w, id).migration_type, MigrationType::Migration);
    assert_eq!(w.i(id).status(), "VERIFY_RESIZE");
    w.confirm(id);
    let i = w.i(id);
    assert_eq!((i.status(), i.vm_state), ("SHUTOFF", VmState::Stopped));
    assert_eq!(i.host.as_deref(), Some("h2"));
}

#[test]
fn migrate_to_a_named_host_claims_there_without_asking_the_scheduler() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    let out = w.migrate(id, Some("h3"));
    assert!(!types(&out).contains(&"SelectHostsRequested"));
    assert_eq!(w.i(id).host.as_deref(), Some("h3"));
    assert_eq!(migration(&w, id).requested_host.as_deref(), Some("h3"));
}

#[test]
fn migrate_to_the_same_host_is_refused_unless_allowed() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    let out = w.migrate(id, Some("h1"));
    assert_eq!(rejection(&out).map(|r| r.0), Some(RejectionKind::Invalid));
    assert_eq!(w.i(id).status(), "ACTIVE");

    assert_eq!(
        rejection(&w.migrate(id, Some("h1"))).unwrap().1,
        "Cannot migrate to the host where the server exists."
    );
    let mut w = Cloud::new(Settings {
        allow_resize_to_same_host: true,
        ..Settings::default()
    });
    w.hosts = vec!["h1"];
    let id = w.boot("h1");
    let out = w.resize(id, "2");
    assert!(rejection(&out).is_none());
    assert_eq!(w.i(id).status(), "VERIFY_RESIZE");
    assert_eq!(w.i(id).host.as_deref(), Some("h1"));
    w.confirm(id);
    assert_eq!(w.i(id).status(), "ACTIVE");
}

#[test]
fn resize_with_only_the_source_available_is_no_valid_host_and_stays_active() {
    let mut w = Cloud::standard();
    w.hosts = vec!["h1"];
    let id = w.boot("h1");
    let out = w.resize(id, "2");
    assert_eq!(task_states(&out), ["MigrationStarted", "MigrationAborted"]);
    let i = w.i(id);
    assert_eq!(
        (i.status(), i.task_state, i.flavor.id.as_str()),
        ("ACTIVE", None, "1")
    );
    assert_eq!(migration(&w, id).status, MigrationStatus::Error);
    assert!(i.fault.as_ref().unwrap().message.contains("No valid host"));
}

#[test]
fn a_migration_keeps_the_server_groups_policy() {
    let mut w = Cloud::standard();
    let a = w.boot("h1");
    let b = w.boot("h2");
    let group = Uuid::new_v4();
    w.c.server_groups.insert(
        group,
        crate::server_groups::GroupState {
            group: novalog_schemas::events::ServerGroup {
                id: group,
                name: "spread".into(),
                project_id: w.i(a).project_id.clone(),
                user_id: w.i(a).user_id.clone(),
                policy: novalog_schemas::events::ServerGroupPolicy::AntiAffinity,
                max_server_per_host: None,
                created_at_ms: NOW,
            },
            members: [a, b].into_iter().collect(),
            held: Vec::new(),
        },
    );
    let out = w.migrate(a, None);
    let req = out
        .iter()
        .find_map(|e| match &e.env.event {
            Event::Scheduler(SchedulerEvent::SelectHostsRequested(r)) => Some((**r).clone()),
            _ => None,
        })
        .expect("a scheduling request");
    let spec = req
        .server_group
        .expect("the group travels with the request");
    assert_eq!(spec.id, group);
    assert_eq!(spec.members, [b]);
    assert_eq!(spec.hosts, ["h2"]);
    assert_eq!(req.ignore_hosts, ["h1"]);
}

// ---- claims and alternates ----

#[test]
fn a_failed_destination_claim_moves_to_the_next_alternate() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.fail = vec![("prep_resize", "h2")];
    w.resize(id, "2");
    assert_eq!(w.i(id).status(), "VERIFY_RESIZE");
    assert_eq!(w.i(id).host.as_deref(), Some("h3"));
    assert_eq!(migration(&w, id).attempt, 2);
    assert_eq!(w.commands_to("h2"), ["PrepResize"]);
}

#[test]
fn when_every_destination_claim_fails_the_instance_stays_active_on_the_source() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.fail = vec![("prep_resize", "*")];
    let out = w.resize(id, "2");
    assert_eq!(task_states(&out).last(), Some(&"MigrationAborted"));
    let i = w.i(id);
    assert_eq!((i.status(), i.host.as_deref()), ("ACTIVE", Some("h1")));
    assert!(
        i.fault
            .as_ref()
            .unwrap()
            .details
            .contains("Exceeded maximum number of retries")
    );
    assert!(!w.c.awaiting.contains_key(&id));
}

// ---- failures and compensation ----

fn compensated(w: &Cloud, id: Uuid, step: &str) {
    let i = w.i(id);
    assert_eq!((i.status(), i.task_state), ("ACTIVE", None), "{i:?}");
    assert_eq!(i.host.as_deref(), Some("h1"));
    assert_eq!(i.flavor.id, "1");
    assert_eq!(migration(w, id).status, MigrationStatus::Error);
    assert!(
        i.fault.as_ref().unwrap().message.contains(step),
        "the fault names {step}: {:?}",
        i.fault
    );
    assert!(!w.c.awaiting.contains_key(&id));
}

#[test]
fn a_failed_migrate_disk_is_compensated_in_reverse_order() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.fail = vec![("migrate_disk_and_power_off", "h1")];
    let out = w.resize(id, "2");
    let order: Vec<(&str, &str)> = out
        .iter()
        .filter(|e| e.dest == Dest::Compute)
        .map(|e| (e.env.event.type_name(), e.key.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("PrepResize", "h2"),
            ("MigrateDiskAndPowerOff", "h1"),
            ("RevertMigration", "h2"),
            ("FinishRevertMigration", "h1")
        ],
        "the destination lets go first, then the source restarts the guest"
    );
    compensated(&w, id, "migrate_disk_and_power_off");
}

#[test]
fn a_failed_finish_migration_is_compensated_back_onto_the_source() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.fail = vec![("finish_migration", "h2")];
    w.resize(id, "2");
    compensated(&w, id, "finish_migration");
    assert_eq!(w.i(id).power_state, novalog_schemas::PowerState::Running);
    assert_eq!(w.commands_to("h2").last(), Some(&"RevertMigration"));
}

#[test]
fn a_failed_compensation_ends_in_error_naming_both_steps() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.fail = vec![
        ("finish_migration", "h2"),
        ("finish_revert_migration", "h1"),
    ];
    w.resize(id, "2");
    let i = w.i(id);
    assert_eq!((i.status(), i.task_state), ("ERROR", None));
    assert_eq!(i.host.as_deref(), Some("h1"));
    let fault = i.fault.as_ref().unwrap();
    assert!(
        fault.message.contains("finish_revert_migration"),
        "{fault:?}"
    );
    assert!(fault.details.contains("finish_migration"), "{fault:?}");
    assert_eq!(migration(&w, id).status, MigrationStatus::Error);
}

#[test]
fn a_failed_confirm_is_error_on_the_destination() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.resize(id, "2");
    w.fail = vec![("confirm_migration", "h1")];
    w.confirm(id);
    let i = w.i(id);
    assert_eq!(
        (i.status(), i.task_state, i.host.as_deref()),
        ("ERROR", None, Some("h2"))
    );
    assert!(
        i.fault
            .as_ref()
            .unwrap()
            .message
            .contains("confirm_migration")
    );
    assert_eq!(i.flavor.id, "2");
}

#[test]
fn failed_revert_steps_are_errors_naming_the_step() {
    for (step, host, left_on, flavor_id) in [
        ("revert_migration", "h2", "h2", "2"),
        ("finish_revert_migration", "h1", "h1", "1"),
    ] {
        let mut w = Cloud::standard();
        let id = w.boot("h1");
        w.resize(id, "2");
        w.fail = vec![(step, host)];
        w.revert(id);
        let i = w.i(id);
        assert_eq!((i.status(), i.task_state), ("ERROR", None), "{step}");
        assert_eq!(i.host.as_deref(), Some(left_on), "{step}");
        assert_eq!(i.flavor.id, flavor_id, "{step}");
        assert!(i.fault.as_ref().unwrap().message.contains(step));
    }
}

// ---- timeouts ----

#[test]
fn nothing_times_out_before_its_deadline_and_a_deadline_fires_once() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.silent = vec![("finish_migration", "h2")];
    w.resize(id, "2");
    let timeout = w.c.settings.step_timeout_ms;
    assert!(w.c.expired(w.now + timeout - 1).is_empty());
    let due = w.c.expired(w.now + timeout);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].key, "demo", "timeouts are keyed by project");
    let again = w.c.expired(w.now + timeout + 5 * SECOND);
    assert_eq!(
        due[0].env.meta.event_id, again[0].env.meta.event_id,
        "the id derives from instance, step and deadline"
    );
    w.silent.clear();
    let out = w.pass(timeout);
    assert!(
        types(&out).contains(&"MigrationAborted"),
        "{:?}",
        types(&out)
    );
    // The same timeout delivered again changes nothing.
    assert!(w.send(due[0].env.clone()).is_empty());
}

#[test]
fn every_resize_step_that_never_answers_times_out_to_a_stable_state() {
    // (silent step, host, then: status, host, fault mentions)
    let cases = [
        ("prep_resize", "*", "ACTIVE", "h1", "prep_resize"),
        (
            "migrate_disk_and_power_off",
            "h1",
            "ACTIVE",
            "h1",
            "migrate_disk_and_power_off",
        ),
        ("finish_migration", "h2", "ACTIVE", "h1", "finish_migration"),
    ];
    for (step, host, status_after, on, named) in cases {
        let mut w = Cloud::standard();
        let id = w.boot("h1");
        w.silent = vec![(step, host)];
        w.resize(id, "2");
        assert!(w.i(id).task_state.is_some(), "{step}: waiting");
        // Enough time for every attempt (a silent claim moves on to the
        // next alternate each time it times out).
        for _ in 0..4 {
            w.pass(w.c.settings.step_timeout_ms);
        }
        let i = w.i(id);
        assert_eq!((i.status(), i.task_state), (status_after, None), "{step}");
        assert_eq!(i.host.as_deref(), Some(on), "{step}");
        let fault = i.fault.as_ref().unwrap();
        assert!(
            fault.message.contains(named) || fault.details.contains(named),
            "{step}: {fault:?}"
        );
        assert!(w.c.awaiting.is_empty(), "{step}");
    }
}

#[test]
fn a_silent_claim_is_dropped_and_the_next_alternate_tried() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.silent = vec![("prep_resize", "h2")];
    w.resize(id, "2");
    w.pass(w.c.settings.step_timeout_ms);
    assert_eq!(w.i(id).status(), "VERIFY_RESIZE");
    assert_eq!(w.i(id).host.as_deref(), Some("h3"));
    assert_eq!(
        w.commands_to("h2"),
        ["PrepResize", "DropMigrationClaim"],
        "the silent host lets go of any claim it makes late"
    );
}

#[test]
fn scheduler_silence_times_out_and_the_instance_stays_active() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    let out = w.c.handle(
        &record(
            actor("demo"),
            Event::Intent(Intent::ServerMigrationRequested(Box::new(
                ServerMigrationRequested {
                    instance_id: id,
                    migration_type: MigrationType::Resize,
                    flavor: Some(big_flavor()),
                    host: None,
                    source_host_down: false,
                    auto_disk_config: None,
                    stop_at_destination: false,
                },
            ))),
        ),
        w.now,
    );
    assert_eq!(types(&out), ["MigrationStarted", "SelectHostsRequested"]);
    let out = w.pass(w.c.settings.step_timeout_ms);
    assert!(types(&out).contains(&"MigrationAborted"));
    assert_eq!(w.i(id).status(), "ACTIVE");
    assert!(
        w.i(id)
            .fault
            .as_ref()
            .unwrap()
            .details
            .contains("the scheduler")
    );
}

#[test]
fn confirm_and_revert_steps_that_never_answer_end_in_error() {
    for (action, step, host) in [
        ("confirm", "confirm_migration", "h1"),
        ("revert", "revert_migration", "h2"),
        ("revert", "finish_revert_migration", "h1"),
    ] {
        let mut w = Cloud::standard();
        let id = w.boot("h1");
        w.resize(id, "2");
        w.silent = vec![(step, host)];
        if action == "confirm" {
            w.confirm(id);
        } else {
            w.revert(id);
        }
        assert!(w.i(id).task_state.is_some());
        w.pass(w.c.settings.step_timeout_ms);
        let i = w.i(id);
        assert_eq!((i.status(), i.task_state), ("ERROR", None), "{step}");
        assert!(i.fault.as_ref().unwrap().message.contains(step), "{step}");
    }
}

#[test]
fn a_compensation_that_never_answers_ends_in_error() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.fail = vec![("finish_migration", "h2")];
    w.silent = vec![("finish_revert_migration", "h1")];
    w.resize(id, "2");
    assert_eq!(w.i(id).status(), "RESIZE");
    w.pass(w.c.settings.step_timeout_ms);
    let i = w.i(id);
    assert_eq!((i.status(), i.task_state), ("ERROR", None));
    assert!(
        i.fault
            .as_ref()
            .unwrap()
            .details
            .contains("finish_migration")
    );
}

#[test]
fn a_late_answer_after_a_timeout_is_ignored() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.silent = vec![("finish_migration", "h2")];
    let out = w.resize(id, "2");
    let finish = out
        .iter()
        .find_map(|e| match &e.env.event {
            Event::Compute(ComputeCommand::FinishMigration(c)) => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    w.silent.clear();
    w.pass(w.c.settings.step_timeout_ms);
    let before = w.i(id).clone();
    let late = fact(Event::ComputeFact(ComputeFact::MigrationFinishedOnDest(
        Box::new(MigrationFact {
            instance_id: id,
            migration_id: finish.migration_id,
            host: "h2".into(),
            attempt: 1,
            power_state: novalog_schemas::PowerState::Running,
            step: String::new(),
            reason: String::new(),
            usage: Default::default(),
        }),
    )));
    assert!(w.send(late).is_empty());
    assert_eq!(w.i(id), &before);
}

#[test]
fn step_timeouts_are_configurable_per_step_and_zero_means_never() {
    let mut w = Cloud::new(Settings {
        step_timeouts_ms: BTreeMap::from([("resize:finish_migration".to_owned(), 0)]),
        ..Settings::default()
    });
    let id = w.boot("h1");
    w.silent = vec![("finish_migration", "h2")];
    w.resize(id, "2");
    assert!(w.c.expired(i64::MAX).is_empty());
    assert_eq!(w.c.next_deadline(), None);
}

// ---- auto-confirm ----

#[test]
fn resize_confirm_window_confirms_by_itself() {
    let mut w = Cloud::new(Settings {
        resize_confirm_window_ms: 60 * SECOND,
        ..Settings::default()
    });
    let id = w.boot("h1");
    w.resize(id, "2");
    assert_eq!(w.i(id).status(), "VERIFY_RESIZE");
    assert!(w.pass(59 * SECOND).is_empty());
    let out = w.pass(SECOND);
    assert!(
        types(&out).contains(&"ResizeConfirmed"),
        "{:?}",
        types(&out)
    );
    assert_eq!(w.i(id).status(), "ACTIVE");
}

#[test]
fn auto_confirm_is_off_by_default_and_skips_a_reverted_resize() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.resize(id, "2");
    assert!(w.pass(24 * 3600 * SECOND).is_empty());
    assert_eq!(w.i(id).status(), "VERIFY_RESIZE");

    let mut w = Cloud::new(Settings {
        resize_confirm_window_ms: 60 * SECOND,
        ..Settings::default()
    });
    let id = w.boot("h1");
    w.resize(id, "2");
    w.revert(id);
    assert!(w.pass(120 * SECOND).is_empty());
    assert_eq!(w.i(id).host.as_deref(), Some("h1"));
}

// ---- preconditions ----

#[test]
fn resize_and_migrate_are_refused_from_other_states_with_novas_409() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.resize(id, "2");
    let out = w.resize(id, "2");
    assert_eq!(
        rejection(&out),
        Some((
            invalid_state("vm_state", "resized", "resize"),
            format!("Cannot 'resize' instance {id} while it is in vm_state resized")
        ))
    );
    let out = w.migrate(id, None);
    assert_eq!(
        rejection(&out).unwrap().1,
        format!("Cannot 'migrate' instance {id} while it is in vm_state resized")
    );
    let building = Uuid::new_v4();
    create(&mut w.c, building);
    let out = w.resize(building, "2");
    assert_eq!(
        rejection(&out),
        Some((
            invalid_state("vm_state", "building", "resize"),
            format!("Cannot 'resize' instance {building} while it is in vm_state building")
        ))
    );
}

#[test]
fn a_locked_instance_refuses_its_owner_but_not_an_administrator() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    if let Some(i) = w.c.instances.get_mut(&id) {
        i.locked_by = Some("owner".into());
    }
    assert_eq!(
        rejection(&w.resize(id, "2")),
        Some((RejectionKind::Conflict, format!("Instance {id} is locked")))
    );
    assert!(rejection(&w.migrate(id, None)).is_none(), "admin migrates");
    assert_eq!(w.i(id).status(), "VERIFY_RESIZE");
}

#[test]
fn a_resize_with_a_task_in_progress_is_409_naming_the_task() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.silent = vec![("finish_migration", "*")];
    w.resize(id, "2");
    assert_eq!(
        rejection(&w.resize(id, "2")),
        Some((
            invalid_state("task_state", "resize_finish", "resize"),
            format!("Cannot 'resize' instance {id} while it is in task_state resize_finish")
        ))
    );
}

#[test]
fn confirm_and_revert_need_a_resized_instance() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    assert_eq!(
        rejection(&w.confirm(id)),
        Some((
            invalid_state("vm_state", "active", "confirmResize"),
            format!("Cannot 'confirmResize' instance {id} while it is in vm_state active")
        ))
    );
    assert_eq!(
        rejection(&w.revert(id)).unwrap().1,
        format!("Cannot 'revertResize' instance {id} while it is in vm_state active")
    );
    w.resize(id, "2");
    w.confirm(id);
    assert_eq!(
        rejection(&w.confirm(id)).unwrap().0,
        invalid_state("vm_state", "active", "confirmResize")
    );
}

#[test]
fn resize_to_the_same_or_an_unknown_flavor_is_400() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    assert_eq!(
        rejection(&w.resize(id, "1")),
        Some((
            RejectionKind::Invalid,
            "When resizing, instances must change flavor!".into()
        ))
    );
    assert_eq!(
        rejection(&w.resize(id, "99")),
        Some((
            RejectionKind::Invalid,
            "Flavor 99 could not be found.".into()
        ))
    );
    assert_eq!(w.i(id).status(), "ACTIVE");
}

#[test]
fn a_resize_up_past_the_quota_is_403_and_down_is_not_counted() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.c.quota_overrides
        .insert("demo".into(), BTreeMap::from([("ram".to_owned(), 1024)]));
    let (code, message) = rejection(&w.resize(id, "2")).unwrap();
    assert_eq!(code, RejectionKind::OverQuota);
    assert_eq!(
        message,
        "Quota exceeded for ram: Requested 1536, but already used 512 of 1024 ram"
    );
    assert_eq!(w.i(id).status(), "ACTIVE");
    w.c.quota_overrides.clear();
    w.resize(id, "2");
    w.confirm(id);
    w.c.quota_overrides
        .insert("demo".into(), BTreeMap::from([("ram".to_owned(), 0)]));
    let mut small = flavor();
    small.id = "3".into();
    small.ram_mb = 256;
    w.c.flavors.insert("3".into(), small.clone());
    let out = w.intent(Event::Intent(Intent::ServerMigrationRequested(Box::new(
        ServerMigrationRequested {
            instance_id: id,
            migration_type: MigrationType::Resize,
            flavor: Some(small),
            host: None,
            source_host_down: false,
            auto_disk_config: None,
            stop_at_destination: false,
        },
    ))));
    assert!(rejection(&out).is_none(), "a resize down needs no quota");
}

#[test]
fn another_projects_server_is_not_found() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    let out = w.send(record(
        actor("other"),
        Event::Intent(Intent::ServerResizeConfirmRequested { instance_id: id }),
    ));
    assert_eq!(rejection(&out).unwrap().0, RejectionKind::NotFound);
}

#[test]
fn a_redelivered_resize_request_is_decided_once() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    let req = record(
        actor("demo"),
        Event::Intent(Intent::ServerMigrationRequested(Box::new(
            ServerMigrationRequested {
                instance_id: id,
                migration_type: MigrationType::Resize,
                flavor: Some(big_flavor()),
                host: None,
                source_host_down: false,
                auto_disk_config: None,
                stop_at_destination: false,
            },
        ))),
    );
    w.send(req.clone());
    assert!(w.send(req).is_empty());
    assert_eq!(w.i(id).migrations.len(), 1);
}

#[test]
fn delete_during_a_resize_destroys_on_both_hosts() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.silent = vec![("finish_migration", "h2")];
    w.resize(id, "2");
    let out = w.intent(Event::Intent(Intent::ServerDeleteRequested {
        instance_id: id,
        force: false,
    }));
    let destroys: Vec<&str> = out
        .iter()
        .filter(|e| {
            matches!(
                e.env.event,
                Event::Compute(ComputeCommand::DestroyInstance { .. })
            )
        })
        .map(|e| e.key.as_str())
        .collect();
    assert_eq!(destroys.len(), 2);
    assert!(destroys.contains(&"h1") && destroys.contains(&"h2"));
    assert!(w.c.awaiting.is_empty(), "a deleted instance awaits nothing");
    assert!(w.c.expired(i64::MAX).is_empty());
}

// ---- build timeout ----

#[test]
fn a_build_whose_host_never_answers_goes_to_error_and_the_host_lets_go() {
    let mut w = Cloud::standard();
    let id = Uuid::new_v4();
    create(&mut w.c, id);
    selected(&mut w.c, id, &["h1"]);
    assert_eq!(w.i(id).status(), "BUILD");
    let timeout = w.c.settings.build_timeout_ms;
    assert!(w.pass(timeout - 1).is_empty());
    let out = w.pass(1);
    assert_eq!(
        types(&out),
        ["SagaStepTimedOut", "InstanceFailed", "DestroyInstance"]
    );
    assert_eq!(out[2].key, "h1");
    let i = w.i(id);
    assert_eq!((i.status(), i.task_state), ("ERROR", None));
    assert!(i.fault.as_ref().unwrap().message.contains("timed out"));
    // The host's late report changes nothing.
    assert!(spawned(&mut w.c, id, "h1", 1).is_empty());
    assert_eq!(w.i(id).status(), "ERROR");
}

#[test]
fn a_build_that_finishes_in_time_has_no_deadline_left() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    assert!(!w.c.awaiting.contains_key(&id));
    assert!(w.pass(w.c.settings.build_timeout_ms * 2).is_empty());
}

// ---- rebuild ----

fn rebuild(
    w: &mut Cloud,
    id: Uuid,
    name: Option<&str>,
    metadata: Option<&[(&str, &str)]>,
) -> Vec<Emit> {
    let mut img = image();
    img.id = Uuid::from_u128(8);
    img.name = "fedora".into();
    w.c.images.insert(img.id, img.clone());
    w.intent(Event::Intent(Intent::ServerRebuildRequested(Box::new(
        ServerRebuildRequested {
            instance_id: id,
            image: img,
            name: name.map(str::to_owned),
            metadata: metadata.map(|m| {
                m.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            key_name: None,
            user_data: None,
            description: None,
            access: Default::default(),
            trusted_image_certificates: None,
            hostname: None,
        },
    ))))
}

#[test]
fn rebuild_sets_unsets_or_keeps_key_name_user_data_and_description() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    if let Some(i) = w.c.instances.get_mut(&id) {
        i.key_name = Some("old".into());
        i.user_data = Some("ZGF0YQ==".into());
        i.description = Some("web".into());
    }
    let img = w.i(id).image.clone();
    let out = w.intent(Event::Intent(Intent::ServerRebuildRequested(Box::new(
        ServerRebuildRequested {
            instance_id: id,
            image: img,
            name: None,
            metadata: None,
            key_name: Some(Some("new".into())),
            user_data: None,
            description: Some(None),
            access: Default::default(),
            trusted_image_certificates: None,
            hostname: None,
        },
    ))));
    assert_eq!(task_states(&out)[0], "RebuildStarted");
    let i = w.i(id);
    assert_eq!(i.status(), "ACTIVE");
    assert_eq!(i.key_name.as_deref(), Some("new"));
    assert_eq!(i.user_data.as_deref(), Some("ZGF0YQ=="), "not given: kept");
    assert_eq!(i.description, None, "null: unset");
}

#[test]
fn rebuild_goes_rebuilding_then_spawning_then_active_on_the_same_host() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    if let Some(i) = w.c.instances.get_mut(&id) {
        i.metadata.insert("keep".into(), "me".into());
    }
    let out = rebuild(&mut w, id, None, None);
    assert_eq!(
        task_states(&out),
        ["RebuildStarted", "RebuildSpawnBegan", "RebuildCompleted"]
    );
    assert_eq!(w.commands_to("h1"), ["RebuildInstance"]);
    let i = w.i(id);
    assert_eq!((i.status(), i.task_state), ("ACTIVE", None));
    assert_eq!(i.image.name, "fedora");
    assert_eq!(i.name, "vm", "the name is kept");
    assert_eq!(i.metadata.get("keep").map(String::as_str), Some("me"));
    assert_eq!(i.host.as_deref(), Some("h1"));
}

#[test]
fn rebuild_steps_show_novas_task_states() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.silent = vec![("rebuild", "*")];
    rebuild(&mut w, id, Some("renamed"), Some(&[("a", "b")]));
    let i = w.i(id);
    assert_eq!(
        (i.status(), i.task_state),
        ("REBUILD", Some(TaskState::Rebuilding))
    );
    assert_eq!(i.name, "renamed");
    assert_eq!(
        i.metadata,
        BTreeMap::from([("a".to_string(), "b".to_string())])
    );
}

#[test]
fn rebuild_of_a_stopped_instance_leaves_it_stopped_and_of_an_errored_one_active() {
    for (before, after) in [(VmState::Stopped, "SHUTOFF"), (VmState::Error, "ACTIVE")] {
        let mut w = Cloud::standard();
        let id = w.boot("h1");
        if let Some(i) = w.c.instances.get_mut(&id) {
            i.vm_state = before;
        }
        let out = rebuild(&mut w, id, None, None);
        let cmd = out
            .iter()
            .find_map(|e| match &e.env.event {
                Event::Compute(ComputeCommand::RebuildInstance(c)) => Some(c.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(cmd.power_on, before != VmState::Stopped);
        assert_eq!(w.i(id).status(), after);
    }
}

#[test]
fn a_failed_or_silent_rebuild_ends_in_error_naming_the_step() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.fail = vec![("rebuild", "h1")];
    rebuild(&mut w, id, None, None);
    let i = w.i(id);
    assert_eq!((i.status(), i.task_state), ("ERROR", None));
    assert!(
        i.fault
            .as_ref()
            .unwrap()
            .message
            .contains("rebuild failed on h1")
    );
    assert!(w.c.awaiting.is_empty());

    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.silent = vec![("rebuild", "h1")];
    rebuild(&mut w, id, None, None);
    w.pass(w.c.settings.step_timeout_ms);
    let i = w.i(id);
    assert_eq!((i.status(), i.task_state), ("ERROR", None));
    assert!(
        i.fault
            .as_ref()
            .unwrap()
            .message
            .contains("rebuild timed out")
    );
}

#[test]
fn rebuild_is_refused_while_a_task_runs_and_with_an_image_too_big_for_the_flavor() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.resize(id, "2");
    let out = rebuild(&mut w, id, None, None);
    assert_eq!(
        rejection(&out),
        Some((
            invalid_state("vm_state", "resized", "rebuild"),
            format!("Cannot 'rebuild' instance {id} while it is in vm_state resized")
        ))
    );
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    let mut img = image();
    img.id = Uuid::from_u128(9);
    img.min_disk = 50;
    w.c.images.insert(img.id, img.clone());
    let out = w.intent(Event::Intent(Intent::ServerRebuildRequested(Box::new(
        ServerRebuildRequested {
            instance_id: id,
            image: img,
            name: None,
            metadata: None,
            key_name: None,
            user_data: None,
            description: None,
            access: Default::default(),
            trusted_image_certificates: None,
            hostname: None,
        },
    ))));
    let (code, message) = rejection(&out).unwrap();
    assert_eq!(code, RejectionKind::Invalid);
    assert!(
        message.starts_with("Flavor's disk is too small for requested image."),
        "{message}"
    );
}

/// Issue 9, defect 1: `min_disk * GIB` overflowed and panicked the
/// conductor on every restart. It is Nova's 400 now, whatever the sizes.
#[test]
fn rebuild_with_a_min_disk_past_u64_bytes_is_refused_not_a_panic() {
    for (min_disk, size) in [(1u64 << 40, 1), (u64::MAX, u64::MAX)] {
        let mut w = Cloud::standard();
        let id = w.boot("h1");
        let mut img = image();
        img.id = Uuid::from_u128(9);
        img.min_disk = min_disk;
        img.size = size;
        w.c.images.insert(img.id, img.clone());
        let out = w.intent(Event::Intent(Intent::ServerRebuildRequested(Box::new(
            ServerRebuildRequested {
                instance_id: id,
                image: img,
                name: None,
                metadata: None,
                key_name: None,
                user_data: None,
                description: None,
                access: Default::default(),
                trusted_image_certificates: None,
                hostname: None,
            },
        ))));
        let (code, message) = rejection(&out).unwrap();
        assert_eq!(code, RejectionKind::Invalid, "{message}");
        assert!(
            message.starts_with("Flavor's disk is too small for requested image."),
            "{message}"
        );
    }
}

#[test]
fn deadlines_name_the_awaited_step() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.silent = vec![("migrate_disk_and_power_off", "h1")];
    w.resize(id, "2");
    let a = &w.c.awaiting[&id];
    assert_eq!(a.step, crate::saga::Step::Resize(resize::Step::MigrateDisk));
    assert_eq!(a.host.as_deref(), Some("h1"));
    assert_eq!(a.deadline_ms, Some(w.now + w.c.settings.step_timeout_ms));
}

// ---- evacuate ----

fn evacuate(w: &mut Cloud, id: Uuid, host: Option<&str>, down: bool) -> Vec<Emit> {
    w.send(record(
        admin(),
        Event::Intent(Intent::ServerMigrationRequested(Box::new(
            ServerMigrationRequested {
                instance_id: id,
                migration_type: MigrationType::Evacuation,
                flavor: None,
                host: host.map(str::to_owned),
                source_host_down: down,
                auto_disk_config: None,
                stop_at_destination: false,
            },
        ))),
    ))
}

#[test]
fn evacuate_rebuilds_elsewhere_and_the_source_cleans_up_when_back() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    let out = evacuate(&mut w, id, None, true);
    assert_eq!(
        task_states(&out),
        [
            "MigrationStarted",
            "MigrationScheduled",
            "RebuildSpawnBegan",
            "Evacuated"
        ]
    );
    let i = w.i(id);
    assert_eq!(
        (i.status(), i.task_state, i.host.as_deref()),
        ("ACTIVE", None, Some("h2"))
    );
    let m = migration(&w, id);
    assert_eq!(
        (m.migration_type, m.status),
        (MigrationType::Evacuation, MigrationStatus::Done)
    );
    assert_eq!(w.commands_to("h1"), ["CleanupEvacuatedInstance"]);
    assert_eq!(w.commands_to("h2"), ["RebuildEvacuatedInstance"]);
}

#[test]
fn evacuate_needs_the_source_down_and_a_valid_state() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    assert_eq!(
        rejection(&evacuate(&mut w, id, None, false)),
        Some((
            RejectionKind::Invalid,
            "Compute service of h1 is still in use.".into()
        ))
    );
    w.resize(id, "2");
    assert_eq!(
        rejection(&evacuate(&mut w, id, None, true)),
        Some((
            invalid_state("vm_state", "resized", "evacuate"),
            format!("Cannot 'evacuate' instance {id} while it is in vm_state resized")
        ))
    );
}

#[test]
fn a_stopped_instance_is_evacuated_stopped_and_an_errored_one_comes_back_active() {
    for (before, after) in [(VmState::Stopped, "SHUTOFF"), (VmState::Error, "ACTIVE")] {
        let mut w = Cloud::standard();
        let id = w.boot("h1");
        if let Some(i) = w.c.instances.get_mut(&id) {
            i.vm_state = before;
        }
        evacuate(&mut w, id, Some("h3"), true);
        assert_eq!(w.i(id).status(), after);
        assert_eq!(w.i(id).host.as_deref(), Some("h3"));
    }
}

#[test]
fn from_2_95_an_evacuated_instance_ends_stopped_whatever_it_was() {
    for before in [VmState::Active, VmState::Stopped, VmState::Error] {
        let mut w = Cloud::standard();
        let id = w.boot("h1");
        if let Some(i) = w.c.instances.get_mut(&id) {
            i.vm_state = before;
        }
        w.send(record(
            admin(),
            Event::Intent(Intent::ServerMigrationRequested(Box::new(
                ServerMigrationRequested {
                    instance_id: id,
                    migration_type: MigrationType::Evacuation,
                    flavor: None,
                    host: Some("h3".into()),
                    source_host_down: true,
                    auto_disk_config: None,
                    stop_at_destination: true,
                },
            ))),
        ));
        let rebuild = w
            .log
            .iter()
            .find_map(|e| match &e.env.event {
                Event::Compute(ComputeCommand::RebuildEvacuatedInstance(c)) => Some(c.clone()),
                _ => None,
            })
            .expect("the destination is told to rebuild");
        assert!(!rebuild.power_on, "{before:?}: the guest is not started");
        assert_eq!(w.i(id).status(), "SHUTOFF", "{before:?}");
        assert_eq!(w.i(id).host.as_deref(), Some("h3"));
        assert!(migration(&w, id).stop_at_destination);
    }
}

#[test]
fn evacuate_claim_failures_walk_the_alternates_and_a_failed_spawn_is_error() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.fail = vec![("claim", "h2")];
    evacuate(&mut w, id, None, true);
    assert_eq!(w.i(id).host.as_deref(), Some("h3"));
    assert_eq!(w.i(id).status(), "ACTIVE");

    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.fail = vec![("rebuild_evacuated", "*")];
    evacuate(&mut w, id, None, true);
    let i = w.i(id);
    assert_eq!((i.status(), i.task_state), ("ERROR", None));
    assert_eq!(migration(&w, id).status, MigrationStatus::Failed);
}

#[test]
fn an_evacuation_nobody_answers_times_out_to_error_and_the_destination_lets_go() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.silent = vec![("rebuild_evacuated", "h2")];
    evacuate(&mut w, id, None, true);
    assert_eq!(w.i(id).status(), "REBUILD");
    let out = w.pass(w.c.settings.step_timeout_ms);
    assert!(types(&out).contains(&"MigrationErrored"));
    assert_eq!(
        w.commands_to("h2"),
        ["RebuildEvacuatedInstance", "DestroyInstance"]
    );
    assert_eq!(w.i(id).status(), "ERROR");
}

// ---- live migrate ----

fn live(w: &mut Cloud, id: Uuid, host: Option<&str>) -> Vec<Emit> {
    w.send(record(
        admin(),
        Event::Intent(Intent::ServerMigrationRequested(Box::new(
            ServerMigrationRequested {
                instance_id: id,
                migration_type: MigrationType::LiveMigration,
                flavor: None,
                host: host.map(str::to_owned),
                source_host_down: false,
                auto_disk_config: None,
                stop_at_destination: false,
            },
        ))),
    ))
}

#[test]
fn live_migration_moves_an_active_or_paused_instance_and_keeps_its_state() {
    for before in [VmState::Active, VmState::Paused] {
        let mut w = Cloud::standard();
        let id = w.boot("h1");
        if let Some(i) = w.c.instances.get_mut(&id) {
            i.vm_state = before;
        }
        let out = live(&mut w, id, None);
        assert_eq!(
            task_states(&out),
            [
                "MigrationStarted",
                "MigrationScheduled",
                "LiveMigrationStarted",
                "LiveMigrated"
            ]
        );
        let i = w.i(id);
        assert_eq!((i.vm_state, i.task_state), (before, None));
        assert_eq!(i.host.as_deref(), Some("h2"));
        assert_eq!(migration(&w, id).status, MigrationStatus::Completed);
        assert_eq!(w.commands_to("h1"), ["LiveMigrateInstance"]);
        assert_eq!(w.commands_to("h2"), ["PrepResize", "FinishMigration"]);
    }
}

#[test]
fn live_migration_shows_migrating_while_it_runs_and_refuses_a_stopped_instance() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.silent = vec![("live_migration", "*")];
    live(&mut w, id, Some("h3"));
    assert_eq!(w.i(id).status(), "MIGRATING");
    assert_eq!(migration(&w, id).status, MigrationStatus::Running);

    let mut w = Cloud::standard();
    let id = w.boot("h1");
    if let Some(i) = w.c.instances.get_mut(&id) {
        i.vm_state = VmState::Stopped;
    }
    assert_eq!(
        rejection(&live(&mut w, id, None)),
        Some((
            invalid_state("vm_state", "stopped", "os-migrateLive"),
            format!("Cannot 'os-migrateLive' instance {id} while it is in vm_state stopped")
        ))
    );
}

#[test]
fn a_failed_live_migration_leaves_the_instance_on_the_source_and_drops_the_claim() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    w.fail = vec![("live_migration", "h1")];
    live(&mut w, id, None);
    let i = w.i(id);
    assert_eq!((i.status(), i.host.as_deref()), ("ACTIVE", Some("h1")));
    assert_eq!(migration(&w, id).status, MigrationStatus::Error);
    assert_eq!(w.commands_to("h2"), ["PrepResize", "DropMigrationClaim"]);
}

#[test]
fn live_migration_steps_that_never_answer_time_out() {
    for (step, host, on, state) in [
        ("prep_resize", "*", "h1", "ACTIVE"),
        ("live_migration", "h1", "h1", "ERROR"),
        ("finish_migration", "h2", "h2", "ERROR"),
    ] {
        let mut w = Cloud::standard();
        let id = w.boot("h1");
        w.silent = vec![(step, host)];
        live(&mut w, id, None);
        for _ in 0..4 {
            w.pass(w.c.settings.step_timeout_ms);
        }
        let i = w.i(id);
        assert_eq!(
            (i.status(), i.task_state, i.host.as_deref()),
            (state, None, Some(on)),
            "{step}"
        );
        assert!(w.c.awaiting.is_empty());
    }
}

// ---- never stuck ----

/// Every saga, with every step failing or never answering on every host,
/// ends stable once enough time has passed: no task, nothing awaited,
/// the migration over, and the instance on a host with that host's
/// flavor.
#[test]
fn no_saga_is_ever_left_stuck_whatever_step_fails_or_hangs() {
    let steps = [
        "prep_resize",
        "migrate_disk_and_power_off",
        "finish_migration",
        "confirm_migration",
        "revert_migration",
        "finish_revert_migration",
        "live_migration",
        "rebuild",
        "rebuild_evacuated",
        "claim",
    ];
    let flows = [
        "resize+confirm",
        "resize+revert",
        "migrate+confirm",
        "live",
        "evacuate",
        "rebuild",
    ];
    for flow in flows {
        for step in steps {
            for silent in [false, true] {
                let mut w = Cloud::standard();
                let id = w.boot("h1");
                if silent {
                    w.silent = vec![(step, "*")];
                } else {
                    w.fail = vec![(step, "*")];
                }
                match flow {
                    "resize+confirm" | "resize+revert" => {
                        w.resize(id, "2");
                    }
                    "migrate+confirm" => {
                        w.migrate(id, None);
                    }
                    "live" => {
                        live(&mut w, id, None);
                    }
                    "evacuate" => {
                        evacuate(&mut w, id, None, true);
                    }
                    _ => {
                        rebuild(&mut w, id, None, None);
                    }
                }
                for round in 0..6 {
                    if w.i(id).status() == "VERIFY_RESIZE" {
                        if flow.ends_with("revert") {
                            w.revert(id);
                        } else {
                            w.confirm(id);
                        }
                    }
                    w.pass(w.c.settings.step_timeout_ms);
                    let _ = round;
                }
                let case = format!(
                    "{flow}, {step} {}",
                    if silent { "silent" } else { "failing" }
                );
                let i = w.i(id);
                assert_eq!(i.task_state, None, "{case}: {i:?}");
                assert!(
                    matches!(i.status(), "ACTIVE" | "ERROR"),
                    "{case}: {}",
                    i.status()
                );
                assert!(w.c.awaiting.is_empty(), "{case}: {:?}", w.c.awaiting);
                assert!(i.migration().is_none(), "{case}: {:?}", i.migrations);
                if let Some(m) = i.migrations.last() {
                    let expect = if i.host.as_deref() == Some(m.source_compute.as_str()) {
                        &m.old_flavor
                    } else {
                        &m.new_flavor
                    };
                    assert_eq!(&i.flavor, expect, "{case}: the flavor of the host it is on");
                }
            }
        }
    }
}

// ---- access settings (accessIPv4 / accessIPv6 / OS-DCF:diskConfig) ----

#[test]
fn a_resize_given_a_disk_config_sets_it_when_accepted_and_a_revert_keeps_it() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    let out = w.intent(Event::Intent(Intent::ServerMigrationRequested(Box::new(
        ServerMigrationRequested {
            instance_id: id,
            migration_type: MigrationType::Resize,
            flavor: Some(big_flavor()),
            host: None,
            source_host_down: false,
            auto_disk_config: Some(true),
            stop_at_destination: false,
        },
    ))));
    assert_eq!(
        task_states(&out)[..2],
        ["InstanceUpdated", "MigrationStarted"]
    );
    assert!(w.i(id).access.auto_disk_config);
    // A refused resize changes nothing.
    let mut other = Cloud::standard();
    let id2 = other.boot("h1");
    let out = other.intent(Event::Intent(Intent::ServerMigrationRequested(Box::new(
        ServerMigrationRequested {
            instance_id: id2,
            migration_type: MigrationType::Resize,
            flavor: Some(flavor()),
            host: None,
            source_host_down: false,
            auto_disk_config: Some(true),
            stop_at_destination: false,
        },
    ))));
    assert_eq!(task_states(&out), ["IntentRejected"]);
    assert!(!other.i(id2).access.auto_disk_config);
}

#[test]
fn rebuild_changes_the_access_settings_it_is_given_and_keeps_the_others() {
    let mut w = Cloud::standard();
    let id = w.boot("h1");
    if let Some(i) = w.c.instances.get_mut(&id) {
        i.access.access_ip_v4 = Some([192, 0, 2, 1].into());
    }
    let img = w.i(id).image.clone();
    w.intent(Event::Intent(Intent::ServerRebuildRequested(Box::new(
        ServerRebuildRequested {
            instance_id: id,
            image: img,
            name: None,
            metadata: None,
            key_name: None,
            user_data: None,
            description: None,
            access: novalog_schemas::AccessChange {
                access_ip_v6: Some("2001:db8::2".parse().unwrap()),
                auto_disk_config: Some(true),
                ..Default::default()
            },
            trusted_image_certificates: None,
            hostname: None,
        },
    ))));
    let a = w.i(id).access;
    assert_eq!(
        a.access_ip_v4,
        Some([192, 0, 2, 1].into()),
        "not given: kept"
    );
    assert_eq!(a.access_ip_v6, Some("2001:db8::2".parse().unwrap()));
    assert!(a.auto_disk_config);
}
