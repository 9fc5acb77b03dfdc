//! The domain invariants `check` holds the whole history to, folded in log
//! order. Pure: fed decoded records, no I/O, so each rule is tested with
//! a hand-made history.
//!
//! Rules (each violation names the record it was found at):
//! - `deleted-no-task`: no task is left on a deleted instance.
//! - `host-usage`: what a host reports using (its resource tracker, on
//!   `hosts` and `compute-events`) equals the sum of the flavors of the
//!   instances placed there, as `instances` says. Compared only where the
//!   two must agree: at reports of a host none of whose instances is in a
//!   task, a build, ERROR or a migration step (those move claims while the
//!   conductor's view lags), and reports older than the host's newest
//!   (a lower usage generation) are skipped. An instance in VERIFY_RESIZE
//!   counts its new flavor where it is and its old one on the source, as
//!   the source still holds that claim until the confirm.
//! - `migration-claim-left`: a `host-usage` difference of exactly one
//!   flavor of a migration that ended on that host: the claim that
//!   migration took (or held) was not given back.
//! - `quota`: no record takes a project above its quota (the `[quota]`
//!   defaults and the project's own limits from `catalog`). A limit
//!   lowered below the usage (`force`) is not a violation; the next record
//!   that raises that usage is.
//!
//! Records appended in the same millisecond on two topics may come in
//! either order, so the usage and quota rules look at the state at the end
//! of the millisecond of the record they judge.

use novalog_schemas::{CatalogEvent, ComputeFact, HostEvent};
use std::collections::{BTreeMap, HashMap, HashSet};

use novalog_schemas::instance::evolve;
use novalog_schemas::quota::{QuotaDefaults, Usage};
use novalog_schemas::{Envelope, Event, HostUsage, Instance, Resources, TaskState, VmState};
use uuid::Uuid;

use crate::check::Violation;
use crate::records::Position;

/// Claims on one host: resources and how many claims hold them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Held {
    vcpus: i64,
    memory_mb: i64,
    disk_gb: i64,
    instances: i64,
    /// Instances there whose claims may be moving (not compared then).
    unsettled: i64,
}

impl Held {
    /// Adds (`sign` 1) or takes away (-1) one instance's footprint.
    fn add(&mut self, claim: Option<Resources>, settled: bool, sign: i64) {
        if let Some(r) = claim {
            self.vcpus += sign * i64::from(r.vcpus);
            self.memory_mb += sign * r.memory_mb as i64;
            self.disk_gb += sign * r.disk_gb as i64;
            self.instances += sign;
        }
        self.unsettled += sign * i64::from(!settled);
    }

    fn reported(u: &HostUsage) -> Held {
        Held {
            vcpus: i64::from(u.vcpus_used),
            memory_mb: u.memory_mb_used as i64,
            disk_gb: u.disk_gb_used as i64,
            instances: i64::from(u.instances),
            unsettled: 0,
        }
    }

    fn claims(&self) -> Held {
        Held {
            unsettled: 0,
            ..*self
        }
    }

    fn minus(&self, o: &Held) -> Held {
        Held {
            vcpus: self.vcpus - o.vcpus,
            memory_mb: self.memory_mb - o.memory_mb,
            disk_gb: self.disk_gb - o.disk_gb,
            instances: self.instances - o.instances,
            unsettled: 0,
        }
    }

    fn show(&self) -> String {
        format!(
            "{} vcpus, {} MB, {} GB, {} claims",
            self.vcpus, self.memory_mb, self.disk_gb, self.instances
        )
    }
}

/// What one instance claims on which hosts (`None`: a host it only keeps
/// unsettled), and whether that may be moving.
fn footprint(i: &Instance) -> Vec<(String, Option<Resources>, bool)> {
    if i.is_deleted() {
        return Vec::new();
    }
    let Some(host) = &i.host else {
        return Vec::new();
    };
    let migration = i.migration();
    let settled = i.task_state.is_none()
        && !matches!(i.vm_state, VmState::Building | VmState::Error)
        && migration
            .is_none_or(|m| m.status == novalog_schemas::migration::MigrationStatus::Finished);
    let mut out = vec![(host.clone(), Some(i.flavor.resources()), settled)];
    if let Some(m) = migration {
        // VERIFY_RESIZE: the source keeps the old flavor's claim (on a
        // same-host resize, as a second claim) until the confirm.
        if settled {
            out.push((
                m.source_compute.clone(),
                Some(m.old_flavor.resources()),
                true,
            ));
        } else {
            for h in [Some(&m.source_compute), m.dest_compute.as_ref()]
                .into_iter()
                .flatten()
            {
                if h != host {
                    out.push((h.clone(), None, false));
                }
            }
        }
    }
    out
}

/// What a project's instance counts against its quota (as the conductor
/// counts it: every instance not deleted, by its current flavor).
fn quota_usage(i: Option<&Instance>) -> Usage {
    match i {
        Some(i) if !i.is_deleted() => Usage::of_flavor(&i.flavor),
        _ => Usage::default(),
    }
}

/// A host's usage, where a record reports it.
fn usage_report(event: &Event) -> Option<(&str, &HostUsage)> {
    match event {
        Event::Host(e) => match e {
            HostEvent::HostRegistered(r) => Some((&r.host, &r.usage)),
            HostEvent::HostHeartbeat { host, usage } => Some((host, usage)),
            HostEvent::ServiceUpdated(_) | HostEvent::ServiceDeleted { .. } => None,
        },
        Event::ComputeFact(f) => fact_usage_report(f),
        // Topics that carry no host's usage.
        Event::Intent(_)
        | Event::Instance(_)
        | Event::Scheduler(_)
        | Event::Compute(_)
        | Event::Catalog(_)
        | Event::DeadLetter(_)
        | Event::Billing(_) => None,
    }
}

/// A host's usage after what it reports doing, where the fact carries it.
fn fact_usage_report(fact: &ComputeFact) -> Option<(&str, &HostUsage)> {
    match fact {
        ComputeFact::ClaimSucceeded { host, usage, .. }
        | ComputeFact::ClaimFailed { host, usage, .. }
        | ComputeFact::SpawnFailed { host, usage, .. }
        | ComputeFact::InstanceDestroyed { host, usage, .. } => Some((host, usage)),
        ComputeFact::ResizeClaimSucceeded(f)
        | ComputeFact::ResizeClaimFailed(f)
        | ComputeFact::DiskMigratedAndPoweredOff(f)
        | ComputeFact::MigrationFinishedOnDest(f)
        | ComputeFact::MigrationConfirmedOnSource(f)
        | ComputeFact::MigrationRevertedOnDest(f)
        | ComputeFact::RevertFinishedOnSource(f)
        | ComputeFact::InstanceLiveMigrated(f)
        | ComputeFact::RebuildSpawnStarted(f)
        | ComputeFact::InstanceRebuilt(f)
        | ComputeFact::EvacuatedInstanceCleanedUp(f)
        | ComputeFact::MigrationStepFailed(f) => Some((&f.host, &f.usage)),
        ComputeFact::InstanceSpawned { .. }
        | ComputeFact::ServerActionPerformed { .. }
        | ComputeFact::ServerActionFailed { .. }
        | ComputeFact::ConsoleEndpointReported { .. }
        | ComputeFact::SnapshotProgressed { .. }
        | ComputeFact::ConsoleOutputFetched { .. }
        | ComputeFact::PowerStateObserved { .. } => None,
    }
}

/// A migration that ended, and what its claims were.
#[derive(Debug, Clone)]
struct Ended {
    migration: Uuid,
    instance: Uuid,
    status: String,
    at: Position,
    flavors: [Resources; 2],
}

/// A host's newest usage report.
#[derive(Debug, Clone)]
struct Report {
    at: Position,
    usage: Held,
    generation: u64,
    /// Compared already (at the end of its millisecond).
    judged: bool,
}

/// The domain state `check` folds, and what it found.
#[derive(Debug, Default)]
pub struct Domain {
    quota: QuotaDefaults,
    /// Projects' own limits.
    overrides: HashMap<String, BTreeMap<String, i64>>,
    /// Quota class `default`'s limits, which projects fall back to.
    class_default: BTreeMap<String, i64>,
    instances: HashMap<String, (Instance, Position)>,
    /// Claims per host, as `instances` places them.
    placed: HashMap<String, Held>,
    reports: HashMap<String, Report>,
    /// Migrations that ended, per host they involved (newest last).
    ended: HashMap<String, Vec<Ended>>,
    /// Hosts found off and not back in step yet (reported once).
    off: HashSet<String>,
    usage: HashMap<String, Usage>,
    /// The millisecond being folded, and what to judge at its end.
    now_ms: i64,
    pending_hosts: Vec<String>,
    /// Projects whose usage went up in this millisecond, with the record.
    pending_quota: BTreeMap<String, Position>,
    violations: Vec<Violation>,
    /// Times a host's usage was compared with the flavors placed.
    compared: u64,
}

/// What the domain rules found.
#[derive(Debug, Default)]
pub struct Found {
    pub violations: Vec<Violation>,
    /// Times a host's usage was compared with the flavors placed there
    /// (reports that came while claims were moving are not).
    pub usage_reports_compared: u64,
}

impl Domain {
    pub fn new(quota: QuotaDefaults) -> Self {
        Domain {
            quota,
            ..Default::default()
        }
    }

    /// Folds one decoded record appended at `ts_ms`; `instances` and
    /// `catalog` say which topics those records are on.
    pub fn record(&mut self, at: &Position, ts_ms: i64, env: &Envelope, topic: TopicKind) {
        if ts_ms != self.now_ms {
            self.judge();
            self.now_ms = ts_ms;
        }
        match topic {
            TopicKind::Instances => self.instance(at, env),
            TopicKind::Catalog => match &env.event {
                Event::Catalog(e) => self.catalog(e),
                // Not what the catalog topic carries.
                Event::Intent(_)
                | Event::Instance(_)
                | Event::Scheduler(_)
                | Event::Compute(_)
                | Event::ComputeFact(_)
                | Event::Host(_)
                | Event::DeadLetter(_)
                | Event::Billing(_) => {}
            },
            TopicKind::Other => {}
        }
        if let Some((host, usage)) = usage_report(&env.event) {
            let newest = self.reports.get(host).map_or(0, |r| r.generation);
            if usage.generation >= newest {
                self.reports.insert(
                    host.to_owned(),
                    Report {
                        at: at.clone(),
                        usage: Held::reported(usage),
                        generation: usage.generation,
                        judged: false,
                    },
                );
                self.pending_hosts.push(host.to_owned());
            }
        }
    }

    /// Quota overrides, which the usage checks count against.
    fn catalog(&mut self, e: &CatalogEvent) {
        match e {
            CatalogEvent::QuotaSetUpdated { project_id, limits } => {
                self.overrides.insert(project_id.clone(), limits.clone());
            }
            CatalogEvent::QuotaSetDeleted { project_id } => {
                self.overrides.remove(project_id);
            }
            CatalogEvent::QuotaClassSetUpdated { class_name, limits } => {
                if class_name == "default" {
                    self.class_default = limits.clone();
                }
            }
            CatalogEvent::FlavorCreated(_)
            | CatalogEvent::ImageCreated(_)
            | CatalogEvent::ImageUpdated(_)
            | CatalogEvent::ImageDeleted { .. }
            | CatalogEvent::ServerGroupCreated(_)
            | CatalogEvent::ServerGroupDeleted { .. }
            | CatalogEvent::AggregateCreated(_)
            | CatalogEvent::AggregateUpdated(_)
            | CatalogEvent::AggregateHostAdded { .. }
            | CatalogEvent::AggregateHostRemoved { .. }
            | CatalogEvent::AggregateMetadataSet(_)
            | CatalogEvent::AggregateDeleted { .. }
            | CatalogEvent::TokenRevoked { .. }
            | CatalogEvent::KeypairCreated(_)
            | CatalogEvent::KeypairDeleted { .. }
            | CatalogEvent::FlavorUpdated(_)
            | CatalogEvent::FlavorDeleted { .. }
            | CatalogEvent::FlavorAccessAdded { .. }
            | CatalogEvent::FlavorAccessRemoved { .. }
            | CatalogEvent::DomainCreated(_)
            | CatalogEvent::DomainUpdated(_)
            | CatalogEvent::DomainDeleted { .. }
            | CatalogEvent::ProjectCreated(_)
            | CatalogEvent::ProjectUpdated(_)
            | CatalogEvent::ProjectDeleted { .. }
            | CatalogEvent::UserCreated(_)
            | CatalogEvent::UserUpdated(_)
            | CatalogEvent::UserDeleted { .. }
            | CatalogEvent::GroupCreated(_)
            | CatalogEvent::GroupUpdated(_)
            | CatalogEvent::GroupDeleted { .. }
            | CatalogEvent::RoleCreated(_)
            | CatalogEvent::RoleUpdated(_)
            | CatalogEvent::RoleDeleted { .. }
            | CatalogEvent::RoleGranted(_)
            | CatalogEvent::RoleRevoked(_)
            | CatalogEvent::GroupMemberAdded { .. }
            | CatalogEvent::GroupMemberRemoved { .. }
            | CatalogEvent::ApplicationCredentialCreated(_)
            | CatalogEvent::ApplicationCredentialDeleted { .. } => {}
        }
    }

    fn instance(&mut self, at: &Position, env: &Envelope) {
        let key = &env.meta.aggregate_id;
        let prev = self.instances.remove(key).map(|(i, _)| i);
        let next = evolve(prev.clone(), env);
        for (host, r, settled) in prev.as_ref().map(footprint).unwrap_or_default() {
            self.placed
                .entry(host.clone())
                .or_default()
                .add(r, settled, -1);
            self.pending_hosts.push(host);
        }
        for (host, r, settled) in next.as_ref().map(footprint).unwrap_or_default() {
            self.placed
                .entry(host.clone())
                .or_default()
                .add(r, settled, 1);
            // A report in this millisecond is judged against this.
            self.pending_hosts.push(host);
        }
        if let (Some(p), Some(n)) = (&prev, &next)
            && let Some(m) = p.migration()
            && n.migration().is_none_or(|x| x.uuid != m.uuid)
        {
            let done = n.migrations.iter().rev().find(|x| x.uuid == m.uuid);
            let e = Ended {
                migration: m.uuid,
                instance: n.id,
                status: done.map_or(m.status, |x| x.status).as_str().to_owned(),
                at: at.clone(),
                flavors: [m.old_flavor.resources(), m.new_flavor.resources()],
            };
            for h in [Some(&m.source_compute), m.dest_compute.as_ref()]
                .into_iter()
                .flatten()
            {
                let list = self.ended.entry(h.clone()).or_default();
                list.push(e.clone());
                // Only recent ones can explain a difference.
                if list.len() > 8 {
                    list.remove(0);
                }
            }
        }
        let project = next
            .as_ref()
            .or(prev.as_ref())
            .map(|i| i.project_id.clone());
        if let Some(project) = project {
            let (b, a) = (quota_usage(prev.as_ref()), quota_usage(next.as_ref()));
            if a != b {
                let u = self.usage.entry(project.clone()).or_default();
                *u = u.minus(b).plus(a);
                if a.instances > b.instances || a.cores > b.cores || a.ram > b.ram {
                    self.pending_quota.insert(project, at.clone());
                }
            }
        }
        if let Some(n) = next {
            self.instances.insert(key.clone(), (n, at.clone()));
        }
    }

    /// Judges what the millisecond that just ended left pending.
    fn judge(&mut self) {
        for (project, at) in std::mem::take(&mut self.pending_quota) {
            let used = self.usage.get(&project).copied().unwrap_or_default();
            let empty = BTreeMap::new();
            let limits = self.quota.limits_in_class(
                &self.class_default,
                self.overrides.get(&project).unwrap_or(&empty),
            );
            for resource in ["instances", "cores", "ram"] {
                let limit = limits.get(resource).copied().unwrap_or(-1);
                if limit >= 0 && used.get(resource) > limit {
                    self.violations.push(Violation {
                        at: at.clone(),
                        rule: "quota",
                        detail: format!(
                            "project {project} uses {} {resource}, above its quota of {limit}",
                            used.get(resource)
                        ),
                    });
                }
            }
        }
        let mut hosts = std::mem::take(&mut self.pending_hosts);
        hosts.sort();
        hosts.dedup();
        for host in hosts {
            self.judge_host(&host);
        }
    }

    fn judge_host(&mut self, host: &str) {
        let placed = self.placed.get(host).copied().unwrap_or_default();
        let Some(report) = self.reports.get_mut(host) else {
            return;
        };
        if report.judged || placed.unsettled > 0 {
            return;
        }
        report.judged = true;
        self.compared += 1;
        let (reported, at) = (report.usage, report.at.clone());
        if reported == placed.claims() {
            self.off.remove(host);
            return;
        }
        if !self.off.insert(host.to_owned()) {
            return;
        }
        let extra = reported.minus(&placed.claims());
        let left = self.ended.get(host).and_then(|list| {
            list.iter().rev().find(|e| {
                e.flavors.iter().any(|r| {
                    let mut one = Held::default();
                    one.add(Some(*r), true, 1);
                    one == extra
                })
            })
        });
        let v = match left {
            Some(e) => Violation {
                at,
                rule: "migration-claim-left",
                detail: format!(
                    "host {host} still holds a claim of migration {} of instance {} \
                     ({}, ended at {}): reports {}, instances there add up to {}",
                    e.migration,
                    e.instance,
                    e.status,
                    e.at,
                    reported.show(),
                    placed.claims().show()
                ),
            },
            None => Violation {
                at,
                rule: "host-usage",
                detail: format!(
                    "host {host} reports {}, the flavors placed there add up to {}",
                    reported.show(),
                    placed.claims().show()
                ),
            },
        };
        self.violations.push(v);
    }

    /// Ends the fold: judges what is pending, then each host's newest
    /// report against where the instances ended up, and looks for tasks
    /// left on deleted instances.
    pub fn finish(mut self) -> Found {
        self.judge();
        let mut hosts: Vec<String> = self.reports.keys().cloned().collect();
        hosts.sort();
        for h in hosts {
            if let Some(r) = self.reports.get_mut(&h) {
                r.judged = false;
            }
            self.judge_host(&h);
        }
        let mut left: Vec<_> = self
            .instances
            .values()
            .filter(|(i, _)| i.vm_state == VmState::Deleted && i.task_state.is_some())
            .collect();
        left.sort_by(|a, b| a.1.cmp(&b.1));
        for (i, at) in left {
            self.violations.push(Violation {
                at: at.clone(),
                rule: "deleted-no-task",
                detail: format!(
                    "instance {} is deleted with task_state {}",
                    i.id,
                    i.task_state.map(TaskState::as_str).unwrap_or("-")
                ),
            });
        }
        Found {
            violations: self.violations,
            usage_reports_compared: self.compared,
        }
    }
}

/// Which of the topics the domain rules read a record is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    Instances,
    Catalog,
    Other,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use novalog_schemas::InstanceEvent;
    use novalog_schemas::events::InstanceCreated;
    use novalog_schemas::{Actor, Flavor, Image, Meta};

    use super::*;

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
        serde_json::from_value(serde_json::json!({
            "id": Uuid::nil(), "name": "i", "status": "active", "size": 1, "min_disk": 0,
            "min_ram": 0, "disk_format": "qcow2", "container_format": "bare",
            "properties": {}, "owner": "", "checksum": "", "visibility": "public",
            "created_at_ms": 0, "protected": false, "tags": [], "os_hash_value": "",
            "updated_at_ms": 0
        }))
        .unwrap()
    }

    fn env(aggregate: Uuid, version: u64, event: Event) -> Envelope {
        let mut meta = Meta::origin(
            Uuid::new_v4(),
            "req-1".into(),
            Actor::service("t"),
            aggregate.to_string(),
        );
        meta.aggregate_version = version;
        Envelope { meta, event }
    }

    fn at(topic: &str, offset: i64) -> Position {
        Position {
            topic: topic.into(),
            partition: 0,
            offset,
        }
    }

    /// An instance booted on h1: its records, in order.
    fn boot(id: Uuid) -> Vec<Envelope> {
        vec![
            env(
                id,
                1,
                Event::Instance(InstanceEvent::InstanceCreated(Box::new(InstanceCreated {
                    name: "vm".into(),
                    project_id: "p".into(),
                    user_id: "u".into(),
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
                    created_at_ms: 0,
                    scheduler_hints: BTreeMap::new(),
                    access: Default::default(),
                    hostname: String::new(),
                    trusted_image_certificates: None,
                    requested_host: None,
                }))),
            ),
            env(
                id,
                2,
                Event::Instance(InstanceEvent::InstanceScheduled {
                    host: "h1".into(),
                    alternates: vec![],
                    attempt: 1,
                }),
            ),
            env(
                id,
                3,
                Event::Instance(InstanceEvent::InstanceBecameActive {
                    power_state: novalog_schemas::PowerState::Running,
                    launched_at_ms: 0,
                }),
            ),
        ]
    }

    fn heartbeat(instances: u32, generation: u64) -> Envelope {
        let mut usage = HostUsage::default();
        for _ in 0..instances {
            usage.add(flavor().resources());
        }
        usage.generation = generation;
        env(
            Uuid::nil(),
            0,
            Event::Host(HostEvent::HostHeartbeat {
                host: "h1".into(),
                usage,
            }),
        )
    }

    #[test]
    fn a_report_appended_in_the_millisecond_of_what_it_reflects_agrees_in_either_order() {
        let id = Uuid::new_v4();
        let mut d = Domain::new(QuotaDefaults::default());
        // The agent's report sorts before the conductor's records of the
        // same millisecond.
        d.record(&at("hosts", 0), 5, &heartbeat(1, 1), TopicKind::Other);
        for (n, e) in boot(id).iter().enumerate() {
            d.record(&at("instances", n as i64), 5, e, TopicKind::Instances);
        }
        let found = d.finish();
        assert_eq!(found.violations, vec![]);
        assert!(found.usage_reports_compared > 0);
    }

    #[test]
    fn an_older_report_than_the_hosts_newest_is_not_compared() {
        let id = Uuid::new_v4();
        let mut d = Domain::new(QuotaDefaults::default());
        for (n, e) in boot(id).iter().enumerate() {
            d.record(&at("instances", n as i64), 1, e, TopicKind::Instances);
        }
        d.record(&at("hosts", 0), 2, &heartbeat(1, 2), TopicKind::Other);
        // Computed before the claim, appended after it.
        d.record(&at("hosts", 1), 3, &heartbeat(0, 1), TopicKind::Other);
        assert_eq!(d.finish().violations, vec![]);

        let mut d = Domain::new(QuotaDefaults::default());
        for (n, e) in boot(id).iter().enumerate() {
            d.record(&at("instances", n as i64), 1, e, TopicKind::Instances);
        }
        d.record(&at("hosts", 0), 2, &heartbeat(0, 2), TopicKind::Other);
        let found = d.finish().violations;
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].rule, found[0].at.offset), ("host-usage", 0));
    }
}
