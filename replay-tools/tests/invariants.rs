//! `check`'s domain invariants over hand-made histories: each violating
//! log makes the binary exit 1 and name the record (and the host,
//! migration or project) that breaks the rule; the same history without
//! the bad record passes.

use novalog_schemas::{CatalogEvent, HostEvent, InstanceEvent};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use novalog_log::embedded::{EmbeddedLog, EmbeddedOptions};
use novalog_log::{EventLog, Record};
use novalog_schemas::events::InstanceCreated;
use novalog_schemas::migration::{Migration, MigrationProgress, MigrationStatus, MigrationType};
use novalog_schemas::{
    Actor, Envelope, Event, Flavor, HostUsage, Image, Meta, PowerState, VmState,
};
use uuid::Uuid;

fn replay(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_novalog-replay"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--quiet")
        .args(args)
        .env_remove("NOVALOG_CONFIG")
        .output()
        .unwrap()
}

fn flavor(id: &str, vcpus: u32, ram_mb: u64, disk_gb: u64) -> Flavor {
    Flavor {
        id: id.into(),
        name: id.into(),
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
        created_at_ms: 1,
        protected: false,
        tags: vec![],
        os_hash_value: String::new(),
        updated_at_ms: 1,
        members: Vec::new(),
    }
}

fn usage(f: &[&Flavor], generation: u64) -> HostUsage {
    let mut u = HostUsage::default();
    for f in f {
        u.add(f.resources());
    }
    u.generation = generation;
    u
}

/// A log being written by hand, one append (and one millisecond) per
/// step, so the order of the steps is the log's.
struct History {
    log: EmbeddedLog,
    versions: BTreeMap<Uuid, u64>,
}

impl History {
    fn new(dir: &Path) -> Self {
        let opts = EmbeddedOptions {
            default_partitions: 1,
            ..EmbeddedOptions::default()
        };
        History {
            log: EmbeddedLog::open(dir.join("log"), opts).unwrap(),
            versions: BTreeMap::new(),
        }
    }

    async fn append(&self, topic: &str, key: &str, aggregate: String, version: u64, event: Event) {
        let mut meta = Meta::origin(
            Uuid::new_v4(),
            "req-x".into(),
            Actor::service("t"),
            aggregate,
        );
        meta.aggregate_version = version;
        let env = Envelope { meta, event };
        self.log
            .append(vec![Record::new(
                format!("novalog.{topic}"),
                key,
                novalog_schemas::encode(&env),
            )])
            .await
            .unwrap();
        // The next step is appended in a later millisecond.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }

    async fn instance(&mut self, id: Uuid, project: &str, event: Event) {
        let v = self.versions.entry(id).or_insert(0);
        *v += 1;
        let v = *v;
        self.append("instances", project, id.to_string(), v, event)
            .await;
    }

    /// `id` created in `project` with `f`, and ACTIVE on `host`.
    async fn boot(&mut self, id: Uuid, project: &str, f: &Flavor, host: &str) {
        self.create(id, project, f).await;
        self.instance(
            id,
            project,
            Event::Instance(InstanceEvent::InstanceScheduled {
                host: host.into(),
                alternates: vec![],
                attempt: 1,
            }),
        )
        .await;
        self.instance(
            id,
            project,
            Event::Instance(InstanceEvent::InstanceBecameActive {
                power_state: novalog_schemas::PowerState::Running,
                launched_at_ms: 1,
            }),
        )
        .await;
    }

    async fn create(&mut self, id: Uuid, project: &str, f: &Flavor) {
        let created = InstanceCreated {
            name: "vm".into(),
            project_id: project.into(),
            user_id: "u".into(),
            flavor: f.clone(),
            image: image(),
            metadata: BTreeMap::new(),
            availability_zone: None,
            key_name: None,
            user_data: None,
            description: None,
            tags: vec![],
            reservation_id: "r".into(),
            launch_index: 0,
            created_at_ms: 1,
            scheduler_hints: BTreeMap::new(),
            access: Default::default(),
            hostname: String::new(),
            trusted_image_certificates: None,
            requested_host: None,
        };
        self.instance(
            id,
            project,
            Event::Instance(InstanceEvent::InstanceCreated(Box::new(created))),
        )
        .await;
    }

    async fn heartbeat(&self, host: &str, usage: HostUsage) {
        self.append(
            "hosts",
            host,
            host.into(),
            0,
            Event::Host(HostEvent::HostHeartbeat {
                host: host.into(),
                usage,
            }),
        )
        .await;
    }
}

fn violations(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.starts_with("novalog."))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn check_names_the_report_of_a_host_whose_usage_is_not_its_flavors() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = History::new(dir.path());
    let small = flavor("1", 1, 512, 1);
    h.boot(Uuid::new_v4(), "p1", &small, "h1").await;
    h.heartbeat("h1", usage(&[&small], 1)).await;
    let o = replay(dir.path(), &["check"]);
    assert_eq!(violations(&o), Vec::<String>::new());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(", 2 host usage comparisons, 0 violations"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // The tracker counts a second instance that nothing placed there.
    h.heartbeat("h1", usage(&[&small, &small], 2)).await;
    let o = replay(dir.path(), &["check"]);
    assert_eq!(o.status.code(), Some(1));
    let found = violations(&o);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("novalog.hosts/0/1  host-usage  host h1 reports 2 vcpus"),
        "{found:?}"
    );
}

/// A resize of one server from h1 to h2, confirmed; `leak`: h1 never
/// gives the old flavor's claim back.
async fn resize_and_confirm(dir: &Path, leak: bool) -> (Uuid, Uuid) {
    let mut h = History::new(dir);
    let (small, big) = (flavor("1", 1, 512, 1), flavor("2", 2, 2048, 10));
    let id = Uuid::new_v4();
    h.boot(id, "p1", &small, "h1").await;
    h.heartbeat("h1", usage(&[&small], 1)).await;
    let m = Uuid::new_v4();
    let migration = Migration {
        id: 1,
        uuid: m,
        migration_type: MigrationType::Resize,
        status: MigrationStatus::PreMigrating,
        source_compute: "h1".into(),
        dest_compute: None,
        old_flavor: small.clone(),
        new_flavor: big.clone(),
        created_at_ms: 1,
        updated_at_ms: 1,
        alternates: vec![],
        attempt: 0,
        original_vm_state: VmState::Active,
        original_power_state: PowerState::Running,
        requested_host: None,
        project_id: "p1".into(),
        user_id: "u".into(),
        stop_at_destination: false,
    };
    let step = |host: Option<&str>| {
        Box::new(MigrationProgress {
            host: host.map(str::to_owned),
            power_state: novalog_schemas::PowerState::Running,
            ..MigrationProgress::of(m)
        })
    };
    h.instance(
        id,
        "p1",
        Event::Instance(InstanceEvent::MigrationStarted(Box::new(migration))),
    )
    .await;
    h.instance(
        id,
        "p1",
        Event::Instance(InstanceEvent::MigrationScheduled(step(Some("h2")))),
    )
    .await;
    h.heartbeat("h2", usage(&[&big], 1)).await;
    h.instance(
        id,
        "p1",
        Event::Instance(InstanceEvent::ResizeFinished(step(None))),
    )
    .await;
    // VERIFY_RESIZE: the source still holds the old flavor, rightly.
    h.heartbeat("h1", usage(&[&small], 1)).await;
    h.heartbeat("h2", usage(&[&big], 1)).await;
    h.instance(
        id,
        "p1",
        Event::Instance(InstanceEvent::ResizeConfirmStarted(step(None))),
    )
    .await;
    if leak {
        h.heartbeat("h1", usage(&[&small], 1)).await;
    } else {
        h.heartbeat("h1", usage(&[], 2)).await;
    }
    h.instance(
        id,
        "p1",
        Event::Instance(InstanceEvent::ResizeConfirmed(step(None))),
    )
    .await;
    (id, m)
}

#[tokio::test]
async fn check_names_the_migration_whose_claim_was_left_on_its_source() {
    let dir = tempfile::tempdir().unwrap();
    resize_and_confirm(dir.path(), false).await;
    let o = replay(dir.path(), &["check"]);
    assert_eq!(violations(&o), Vec::<String>::new());
    assert_eq!(o.status.code(), Some(0));

    let dir = tempfile::tempdir().unwrap();
    let (id, m) = resize_and_confirm(dir.path(), true).await;
    let o = replay(dir.path(), &["check"]);
    assert_eq!(o.status.code(), Some(1));
    let found = violations(&o);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("novalog.hosts/0/4  migration-claim-left  host h1"),
        "{found:?}"
    );
    assert!(
        found[0].contains(&format!("migration {m} of instance {id} (confirmed")),
        "{found:?}"
    );
}

#[tokio::test]
async fn check_names_the_record_that_takes_a_project_above_its_quota() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = History::new(dir.path());
    let small = flavor("1", 1, 512, 1);
    h.append(
        "catalog",
        "p1",
        "p1".into(),
        0,
        Event::Catalog(CatalogEvent::QuotaSetUpdated {
            project_id: "p1".into(),
            limits: BTreeMap::from([("instances".to_owned(), 1)]),
        }),
    )
    .await;
    h.create(Uuid::new_v4(), "p1", &small).await;
    // Another project is not counted against p1.
    h.create(Uuid::new_v4(), "p2", &small).await;
    assert_eq!(
        violations(&replay(dir.path(), &["check"])),
        Vec::<String>::new()
    );

    h.create(Uuid::new_v4(), "p1", &small).await;
    let o = replay(dir.path(), &["check"]);
    assert_eq!(o.status.code(), Some(1));
    let found = violations(&o);
    assert_eq!(
        found,
        vec![
            "novalog.instances/0/2  quota  project p1 uses 2 instances, above its quota of 1"
                .to_owned()
        ]
    );
}
