//! A scripted cloud with known times, billed by hand and by the fold.

use std::collections::BTreeMap;

use novalog_runtime::config::BillingOptions;
use novalog_schemas::events::InstanceCreated;
use novalog_schemas::migration::{Migration, MigrationProgress, MigrationStatus, MigrationType};
use novalog_schemas::{
    Actor, Envelope, Event, Flavor, Image, InstanceEvent, Meta, PowerState, ServerAction, VmState,
};
use uuid::Uuid;

use crate::meter::{BillableState, Interval, Meter};
use crate::money::Rounding;
use crate::period::Period;
use crate::rate::{PriceTable, PricedBy, bill};

/// 2026-12-01T00:00:00Z.
pub(crate) const T0: i64 = 1_796_083_200_000;
const S: i64 = 1000;

fn flavor(id: &str, name: &str, vcpus: u32, ram_mb: u64, disk_gb: u64) -> Flavor {
    Flavor {
        id: id.into(),
        name: name.into(),
        vcpus,
        ram_mb,
        disk_gb,
        ephemeral_gb: 0,
        swap_mb: 0,
        rxtx_factor: 1.0,
        is_public: true,
        extra_specs: BTreeMap::new(),
        description: None,
    }
}

fn small() -> Flavor {
    flavor("2", "m1.small", 1, 2048, 20)
}

fn medium() -> Flavor {
    flavor("3", "m1.medium", 2, 4096, 40)
}

fn image() -> Image {
    Image {
        id: Uuid::nil(),
        name: "cirros".into(),
        status: "active".into(),
        size: 0,
        min_disk: 0,
        min_ram: 0,
        disk_format: "qcow2".into(),
        container_format: "bare".into(),
        properties: BTreeMap::new(),
        owner: String::new(),
        checksum: String::new(),
        visibility: "public".into(),
        created_at_ms: 0,
        updated_at_ms: 0,
        protected: false,
        tags: Vec::new(),
        os_hash_value: String::new(),
        members: Vec::new(),
    }
}

/// Writes one server's history as the conductor would, version by version.
struct Script {
    id: Uuid,
    project: String,
    version: u64,
    log: Vec<Envelope>,
}

impl Script {
    fn new(n: u8, project: &str) -> Self {
        Script {
            id: Uuid::from_bytes([n; 16]),
            project: project.into(),
            version: 0,
            log: Vec::new(),
        }
    }

    fn at(&mut self, ms: i64, e: InstanceEvent) -> &mut Self {
        self.version += 1;
        let meta = Meta {
            event_id: Uuid::new_v5(&self.id, &self.version.to_be_bytes()),
            schema_version: 1,
            occurred_at_ms: ms,
            correlation_id: "req-test".into(),
            causation_id: None,
            actor: Actor {
                user_id: "alice".into(),
                project_id: self.project.clone(),
                roles: vec!["member".into()],
            },
            aggregate_id: self.id.to_string(),
            aggregate_version: self.version,
        };
        self.log.push(Envelope {
            meta,
            event: Event::Instance(e),
        });
        self
    }

    fn boot(&mut self, created: i64, scheduled: i64, active: i64, host: &str) -> &mut Self {
        self.at(
            created,
            InstanceEvent::InstanceCreated(Box::new(InstanceCreated {
                name: format!("server-{}", self.id.as_bytes()[0]),
                project_id: self.project.clone(),
                user_id: "alice".into(),
                flavor: small(),
                image: image(),
                metadata: BTreeMap::new(),
                availability_zone: None,
                key_name: None,
                user_data: None,
                description: None,
                tags: Vec::new(),
                reservation_id: "r-1".into(),
                launch_index: 0,
                created_at_ms: created,
                scheduler_hints: BTreeMap::new(),
                access: Default::default(),
                hostname: String::new(),
                trusted_image_certificates: None,
                requested_host: None,
            })),
        )
        .at(
            scheduled,
            InstanceEvent::InstanceScheduled {
                host: host.into(),
                alternates: Vec::new(),
                attempt: 1,
            },
        )
        .at(
            active,
            InstanceEvent::InstanceBecameActive {
                power_state: PowerState::Running,
                launched_at_ms: active,
            },
        )
    }

    /// An action started at `started` and done at `done`, leaving `vm`.
    fn action(&mut self, started: i64, done: i64, a: ServerAction, vm: VmState) -> &mut Self {
        let task = a.task_state().unwrap();
        self.at(
            started,
            InstanceEvent::InstanceTaskStarted {
                action: a.clone(),
                task_state: task,
            },
        )
        .at(
            done,
            InstanceEvent::InstanceTaskCompleted {
                action: a,
                vm_state: vm,
                power_state: PowerState::Running,
            },
        )
    }

    fn migration(&mut self, n: u8, kind: MigrationType, from: &str, new: Flavor) -> Migration {
        Migration {
            id: u64::from(n),
            uuid: Uuid::from_bytes([n; 16]),
            migration_type: kind,
            status: MigrationStatus::PreMigrating,
            source_compute: from.into(),
            dest_compute: None,
            old_flavor: small(),
            new_flavor: new,
            created_at_ms: 0,
            updated_at_ms: 0,
            alternates: Vec::new(),
            attempt: 1,
            original_vm_state: VmState::Active,
            original_power_state: PowerState::Running,
            requested_host: None,
            project_id: self.project.clone(),
            user_id: "alice".into(),
            stop_at_destination: false,
        }
    }

    /// A resize from `from` to `to` with medium, finished at `finished`
    /// (each earlier step one second apart before it).
    fn resize(&mut self, n: u8, from: &str, to: &str, finished: i64) -> Uuid {
        let m = self.migration(n, MigrationType::Resize, from, medium());
        let id = m.uuid;
        let p = |host: Option<&str>| {
            let mut p = MigrationProgress::of(id);
            p.host = host.map(str::to_owned);
            p.power_state = PowerState::Running;
            Box::new(p)
        };
        self.at(
            finished - 5 * S,
            InstanceEvent::MigrationStarted(Box::new(m)),
        )
        .at(
            finished - 4 * S,
            InstanceEvent::MigrationScheduled(p(Some(to))),
        )
        .at(
            finished - 3 * S,
            InstanceEvent::ResizeMigrationStarted(p(None)),
        )
        .at(finished - 2 * S, InstanceEvent::ResizeMigrated(p(None)))
        .at(finished - S, InstanceEvent::ResizeFinishStarted(p(None)))
        .at(finished, InstanceEvent::ResizeFinished(p(None)));
        id
    }

    fn progress(
        &mut self,
        at: i64,
        id: Uuid,
        f: fn(Box<MigrationProgress>) -> InstanceEvent,
    ) -> &mut Self {
        let mut p = MigrationProgress::of(id);
        p.power_state = PowerState::Running;
        self.at(at, f(Box::new(p)))
    }

    fn delete(&mut self, at: i64) -> &mut Self {
        self.at(at - S, InstanceEvent::InstanceDeleteStarted)
            .at(at, InstanceEvent::InstanceDeleted { deleted_at_ms: at })
    }
}

pub(crate) fn table() -> PriceTable {
    PriceTable::from_options(&options()).unwrap()
}

/// The `[billing]` of [`table`].
pub(crate) fn options() -> BillingOptions {
    BillingOptions {
        flavors: BTreeMap::from([("m1.small".into(), "0.02".into())]),
        state_multipliers: BTreeMap::from([
            ("running".into(), "1".into()),
            ("stopped".into(), "0.5".into()),
            ("suspended".into(), "0.25".into()),
        ]),
        ..BillingOptions::default()
    }
}

/// The scripted cloud: servers A and B in `demo`, C in `other`.
pub(crate) fn cloud() -> Vec<Envelope> {
    // A: boots, stops for an hour, starts, is resized (confirmed), deleted.
    let mut a = Script::new(0xa, "demo");
    a.boot(T0, T0 + S, T0 + 60 * S, "host1")
        .action(
            T0 + 3650 * S,
            T0 + 3660 * S,
            ServerAction::Stop,
            VmState::Stopped,
        )
        .action(
            T0 + 7250 * S,
            T0 + 7260 * S,
            ServerAction::Start,
            VmState::Active,
        );
    let m = a.resize(1, "host1", "host2", T0 + 10_860 * S);
    a.progress(T0 + 12_000 * S, m, InstanceEvent::ResizeConfirmStarted)
        .progress(T0 + 12_001 * S, m, InstanceEvent::ResizeConfirmed)
        .delete(T0 + 14_460 * S);

    // B: boots, is resized and reverted, suspended, deleted.
    let mut b = Script::new(0xb, "demo");
    b.boot(T0 + 100 * S, T0 + 101 * S, T0 + 130 * S, "host1");
    let m = b.resize(2, "host1", "host2", T0 + 1930 * S);
    b.progress(T0 + 2825 * S, m, InstanceEvent::ResizeRevertStarted)
        .progress(T0 + 2830 * S, m, InstanceEvent::ResizeReverted)
        .action(
            T0 + 4620 * S,
            T0 + 4630 * S,
            ServerAction::Suspend,
            VmState::Suspended,
        )
        .delete(T0 + 8230 * S);

    // C: runs 1234.567 s on host1, is live-migrated to host3, runs 100 s.
    let mut c = Script::new(0xc, "other");
    c.boot(T0, T0 + S, T0 + 10 * S, "host1");
    let live = c.migration(3, MigrationType::LiveMigration, "host1", small());
    let moved = T0 + 10 * S + 1_234_567;
    let id = live.uuid;
    c.at(
        moved - 2 * S,
        InstanceEvent::MigrationStarted(Box::new(live)),
    );
    let mut p = MigrationProgress::of(id);
    p.host = Some("host3".into());
    c.at(moved - S, InstanceEvent::MigrationScheduled(Box::new(p)))
        .progress(moved - S / 2, id, InstanceEvent::LiveMigrationStarted)
        .progress(moved, id, InstanceEvent::LiveMigrated)
        .delete(moved + 100 * S);

    // Interleaved by time, as one partition would hold them.
    let mut all: Vec<Envelope> = [a.log, b.log, c.log].concat();
    all.sort_by_key(|e| e.meta.occurred_at_ms);
    all
}

fn fold(log: &[Envelope]) -> Vec<Interval> {
    let mut m = Meter::default();
    for e in log {
        m.apply(e);
    }
    m.intervals()
}

fn of_project<'a>(all: &'a [Interval], p: &'a str) -> impl Iterator<Item = &'a Interval> + 'a {
    all.iter().filter(move |i| i.project_id == p)
}

fn day() -> Period {
    Period::new(T0, T0 + 86_400 * S).unwrap()
}

#[test]
fn the_scripted_cloud_bills_what_was_computed_by_hand() {
    let t = table();
    let all = fold(&cloud());
    let demo = bill(&t, "demo", of_project(&all, "demo"), day(), T0 + 86_400 * S);
    // (server, flavor, state) -> seconds, cents as billed:
    //  A small running 60..3660 + 7260..10860 = 7200 s at 0.02/h  = 0.04
    //  A small stopped 3660..7260             = 3600 s at 0.01/h  = 0.01
    //  A medium running 10860..14460          = 3600 s at 0.044/h = 0.044
    //    (2 vCPU x 0.01 + 4 GiB x 0.005 + 40 GB x 0.0001; unpriced flavor)
    //  B small running 130..1930 + 2830..4630 = 3600 s            = 0.02
    //  B medium running 1930..2830            =  900 s            = 0.011
    //  B small suspended 4630..8230           = 3600 s at 0.005/h = 0.005
    //  building time is not billed.
    let lines: Vec<(u8, &str, BillableState, i64, String)> = demo
        .lines
        .iter()
        .filter(|l| l.key.state != BillableState::Building)
        .map(|l| {
            (
                l.key.server_id.as_bytes()[0],
                l.key.flavor.name.as_str(),
                l.key.state,
                l.ms,
                l.amount.round(6, Rounding::Down).to_string(),
            )
        })
        .collect();
    use BillableState::*;
    assert_eq!(
        lines,
        vec![
            (0xa, "m1.small", Running, 7200 * S, "0.040000".into()),
            (0xa, "m1.small", Stopped, 3600 * S, "0.010000".into()),
            (0xa, "m1.medium", Running, 3600 * S, "0.044000".into()),
            (0xb, "m1.small", Running, 3600 * S, "0.020000".into()),
            (0xb, "m1.small", Suspended, 3600 * S, "0.005000".into()),
            (0xb, "m1.medium", Running, 900 * S, "0.011000".into()),
        ]
    );
    let building: i64 = demo
        .lines
        .iter()
        .filter(|l| l.key.state == Building)
        .map(|l| l.ms)
        .sum();
    assert_eq!(
        building,
        60 * S + 30 * S,
        "building lines are there, at no charge"
    );
    assert!(
        demo.lines
            .iter()
            .filter(|l| l.key.state == Building)
            .all(|l| l.amount.0 == 0)
    );
    assert_eq!(t.round(demo.total).to_string(), "0.13"); // 0.130 exactly
    assert_eq!(demo.total.round(6, Rounding::Down).to_string(), "0.130000");
    let medium = demo
        .lines
        .iter()
        .find(|l| l.key.flavor.name == "m1.medium")
        .unwrap();
    assert_eq!(medium.priced_by, PricedBy::Resources);

    // C: to the millisecond, one line across the live migration.
    let other = bill(
        &t,
        "other",
        of_project(&all, "other"),
        day(),
        T0 + 86_400 * S,
    );
    let running: Vec<_> = other
        .lines
        .iter()
        .filter(|l| l.key.state == Running)
        .collect();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].ms, 1_334_567);
    // 0.02 x 1334.567 / 3600 = 0.00741426111...
    assert_eq!(other.total.round(6, Rounding::Down).to_string(), "0.007414");
    assert_eq!(t.round(other.total).to_string(), "0.01");
    let hosts: Vec<_> = of_project(&all, "other")
        .filter(|i| i.state == Running)
        .map(|i| (i.host.clone().unwrap(), i.end_ms.unwrap() - i.start_ms))
        .collect();
    assert_eq!(
        hosts,
        vec![("host1".into(), 1_234_567), ("host3".into(), 100_000)]
    );
}

#[test]
fn the_new_flavor_is_billed_from_finish_resize_and_the_old_again_from_revert() {
    let all = fold(&cloud());
    let b: Vec<_> = all
        .iter()
        .filter(|i| i.server_id.as_bytes()[0] == 0xb && i.state == BillableState::Running)
        .map(|i| {
            (
                i.flavor.name.as_str(),
                i.host.as_deref().unwrap(),
                i.start_ms - T0,
                i.end_ms.unwrap() - T0,
            )
        })
        .collect();
    assert_eq!(
        b,
        vec![
            ("m1.small", "host1", 130 * S, 1930 * S),
            ("m1.medium", "host2", 1930 * S, 2830 * S),
            ("m1.small", "host1", 2830 * S, 4630 * S),
        ]
    );
}

#[test]
fn adjacent_periods_add_up_to_the_whole_exactly() {
    let t = table();
    let all = fold(&cloud());
    let whole = day();
    // Every cut, including ones inside intervals and at odd milliseconds.
    for cut in [
        T0 + 1,
        T0 + 1931 * S + 7,
        T0 + 3600 * S,
        T0 + 10_860 * S,
        T0 + 50_000 * S,
    ] {
        let (x, y) = whole.split(cut);
        for p in ["demo", "other"] {
            let (w, a, b) = (
                bill(&t, p, of_project(&all, p), whole, T0),
                bill(&t, p, of_project(&all, p), x, T0),
                bill(&t, p, of_project(&all, p), y, T0),
            );
            assert_eq!(a.total + b.total, w.total, "{p} at {cut}");
            let ms = |b: &crate::rate::Bill| b.lines.iter().map(|l| l.ms).sum::<i64>();
            assert_eq!(ms(&a) + ms(&b), ms(&w));
        }
    }
}

#[test]
fn every_record_delivered_twice_gives_the_same_intervals() {
    let log = cloud();
    let twice: Vec<Envelope> = log.iter().flat_map(|e| [e.clone(), e.clone()]).collect();
    assert_eq!(fold(&twice), fold(&log));
    // A whole redelivery of the history after the fact changes nothing
    // either (deleted servers stay deleted).
    let again: Vec<Envelope> = log.iter().chain(log.iter()).cloned().collect();
    assert_eq!(fold(&again), fold(&log));
}

#[test]
fn an_open_interval_runs_until_now_and_no_further() {
    let mut s = Script::new(1, "demo");
    s.boot(T0, T0, T0 + 10 * S, "h");
    let all = fold(&s.log);
    let running = all
        .iter()
        .find(|i| i.state == BillableState::Running)
        .unwrap();
    assert_eq!(running.end_ms, None);
    assert_eq!(running.overlap_ms(T0, T0 + 86_400 * S, T0 + 70 * S), 60 * S);
    assert_eq!(running.overlap_ms(T0, T0 + 20 * S, T0 + 70 * S), 10 * S);
    assert_eq!(running.overlap_ms(T0 + 80 * S, T0 + 90 * S, T0 + 70 * S), 0);
}

#[test]
fn error_and_building_are_billed_only_when_configured() {
    let mut s = Script::new(1, "demo");
    s.at(
        T0,
        InstanceEvent::InstanceCreated(Box::new(InstanceCreated {
            name: "x".into(),
            project_id: "demo".into(),
            user_id: "alice".into(),
            flavor: small(),
            image: image(),
            metadata: BTreeMap::new(),
            availability_zone: None,
            key_name: None,
            user_data: None,
            description: None,
            tags: Vec::new(),
            reservation_id: "r".into(),
            launch_index: 0,
            created_at_ms: T0,
            scheduler_hints: BTreeMap::new(),
            access: Default::default(),
            hostname: String::new(),
            trusted_image_certificates: None,
            requested_host: None,
        })),
    )
    .at(
        T0 + 3600 * S,
        InstanceEvent::InstanceFailed {
            fault: novalog_schemas::Fault {
                code: 500,
                message: "No valid host".into(),
                details: String::new(),
                created_at_ms: T0,
            },
        },
    );
    let all = fold(&s.log);
    let now = T0 + 7200 * S;
    assert_eq!(bill(&table(), "demo", &all, day(), now).total.0, 0);
    let mut o = BillingOptions::default();
    o.flavors.insert("m1.small".into(), "0.02".into());
    o.state_multipliers.insert("building".into(), "1".into());
    o.state_multipliers.insert("error".into(), "0.5".into());
    let t = PriceTable::from_options(&o).unwrap();
    // 1 h building at 0.02 + 1 h in error at 0.01.
    assert_eq!(
        t.round(bill(&t, "demo", &all, day(), now).total)
            .to_string(),
        "0.03"
    );
}

#[test]
fn a_bad_price_table_is_refused_with_the_option_named() {
    let mut o = BillingOptions::default();
    o.flavors.insert("m1.tiny".into(), "0.1.2".into());
    let e = PriceTable::from_options(&o).unwrap_err().to_string();
    assert!(e.contains("billing.flavors.m1.tiny"), "{e}");
    let mut o = BillingOptions::default();
    o.state_multipliers.insert("sleeping".into(), "1".into());
    assert!(PriceTable::from_options(&o).is_err());
    let o = BillingOptions {
        rounding: "bankers".into(),
        ..BillingOptions::default()
    };
    assert!(PriceTable::from_options(&o).is_err());
    assert!(PriceTable::from_options(&BillingOptions::default()).is_ok());
}

#[test]
fn task_states_do_not_split_intervals() {
    let mut s = Script::new(1, "demo");
    s.boot(T0, T0, T0 + 10 * S, "h").action(
        T0 + 20 * S,
        T0 + 30 * S,
        ServerAction::Reboot { hard: false },
        VmState::Active,
    );
    let all = fold(&s.log);
    assert_eq!(
        all.iter()
            .filter(|i| i.state == BillableState::Running)
            .count(),
        1
    );
}

#[test]
fn the_records_billing_ignores_change_no_interval() {
    let log = cloud();
    let kept: Vec<Envelope> = log
        .iter()
        .filter(|e| !crate::service::ignored(e.event.type_name()))
        .cloned()
        .collect();
    assert!(
        kept.len() < log.len(),
        "the cloud has records billing ignores"
    );
    assert_eq!(fold(&kept), fold(&log));
    // Each ignored name is the type of an instance record (a typo would
    // ignore nothing).
    let seen: std::collections::BTreeSet<&str> = log.iter().map(|e| e.event.type_name()).collect();
    for name in ["InstanceTaskStarted", "InstanceDeleteStarted"] {
        assert!(seen.contains(name) && crate::service::ignored(name));
    }
}
