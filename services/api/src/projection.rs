//! The API's own view of the cloud, folded from `instances`, `catalog` and
//! `hosts`: kept in memory for reads, persisted in the service's RocksDB
//! together with the offsets it reflects, and reloaded from there on start.
//!
//! Memory holds live state only: a deleted server leaves it (with its
//! actions) and stays in the store, where `deleted=true` and
//! `changes-since` lists, os-instance-actions and audits read it on demand.
//! Lists walk an index in the store ordered as they are shown (newest
//! first), so a page costs what it holds, not every server ever created.
//!
//! [`ProjectionHandler`] stages each batch's changes and publishes them to
//! the in-memory [`Projection`] only in [`Handler::committed`], after the
//! batch and its offsets are durable: readers never see state the store
//! does not have, and a request woken by its verdict reads its own write.
//!
//! The bottom layer of the crate: it imports nothing from [`crate::domain`]
//! or the HTTP modules. [`action_log`] is the os-instance-actions fold,
//! [`verdicts`] the waiters a committed verdict wakes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use novalog_runtime::consumer::{DeadRecord, Rejected};
use novalog_runtime::{Handler, Input, Outbox};
use novalog_schemas::events::{HostAggregate, Keypair};
use novalog_schemas::instance::evolve;
use novalog_schemas::{
    CatalogEvent, Envelope, Event, Flavor, HostEvent, Image, Instance, InstanceEvent, Rejection,
};
use novalog_store::{MemStore, Store, StoreExt, Transaction};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

pub mod action_log;
pub mod verdicts;

use action_log::InstanceAction;
use verdicts::{Verdict, Verdicts};

/// Consumer name: the group and the key of the stored offsets.
pub const CONSUMER: &str = "api";

const T_INSTANCES: &str = "instances";
const T_FLAVORS: &str = "flavors";
const T_IMAGES: &str = "images";
// `_v2`: HostView gained the hypervisor and service fields; rows of older
// builds stay in `hosts`, unread (agents register again on start).
const T_HOSTS: &str = "hosts_v2";
const T_KEYPAIRS: &str = "keypairs";
const T_FLAVOR_ACCESS: &str = "flavor_access";
const T_SERVER_GROUPS: &str = "server_groups";
const T_AGGREGATES: &str = "aggregates";
const T_ACTIONS: &str = "instance_actions";
const T_QUOTAS: &str = "quotas";
const T_QUOTA_CLASSES: &str = "quota_classes";
/// Every instance ever created by [`order_key`]; the value is its project.
const T_BY_CREATED: &str = "instances_by_created";
/// Every instance by its project and [`order_key`]: `project \0 key`.
const T_BY_PROJECT: &str = "instances_by_project";
/// `index`: the version of the instance indexes above; stores written
/// before they existed get them built once on load.
const T_META: &str = "projection_meta";
const INDEX_VERSION: u32 = 1;
/// Index rows a list reads from the store at a time.
const WALK_CHUNK: usize = 64;

/// Where an instance sorts in a list: by creation time, then id, so that
/// a reverse walk is Nova's default order (`created_at desc`). The sign
/// bit is flipped so negative times sort first.
fn order_key(created_at_ms: i64, id: &Uuid) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..8].copy_from_slice(&((created_at_ms as u64) ^ (1 << 63)).to_be_bytes());
    k[8..].copy_from_slice(id.as_bytes());
    k
}

fn project_prefix(project: &str) -> Vec<u8> {
    let mut k = project.as_bytes().to_vec();
    k.push(0);
    k
}

fn project_key(project: &str, created_at_ms: i64, id: &Uuid) -> Vec<u8> {
    let mut k = project_prefix(project);
    k.extend_from_slice(&order_key(created_at_ms, id));
    k
}

/// Stages the index rows of a new instance.
fn index_instance(tx: &mut Transaction, inst: &Instance) -> Result<(), novalog_store::Error> {
    tx.put(
        T_BY_CREATED,
        &order_key(inst.created_at_ms, &inst.id),
        &inst.project_id,
    )?;
    tx.put(
        T_BY_PROJECT,
        &project_key(&inst.project_id, inst.created_at_ms, &inst.id),
        &(),
    )
}

/// A server group and the instances that joined it (with the `group`
/// scheduler hint); deleted members are filtered when shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerGroupView {
    pub group: novalog_schemas::events::ServerGroup,
    pub members: BTreeSet<Uuid>,
}

/// What the API needs to know of a compute host: its `nova-compute`
/// service (os-services) and its hypervisor (os-hypervisors).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostView {
    pub name: String,
    pub availability_zone: String,
    pub hypervisor_type: String,
    /// When the host last registered or sent a heartbeat (ms since epoch).
    pub last_seen_ms: i64,
    /// Nova's integer service / compute node id, [`host_number`] of the
    /// name and the incarnation: every replica computes the same whatever
    /// order it read the `hosts` partitions in.
    pub id: u32,
    /// The service's and the hypervisor's uuid (2.53), [`host_uuid`].
    pub uuid: Uuid,
    /// Times the host's service record was deleted before this one: a
    /// registration after a deletion is a new record with new ids.
    pub incarnation: u32,
    pub hypervisor_version: u64,
    pub cpu_arch: String,
    pub capacity: novalog_schemas::Resources,
    /// The newest usage its agent reported.
    pub usage: novalog_schemas::HostUsage,
    /// When the host (re)registered: the agent's start (uptime).
    pub registered_at_ms: i64,
    /// What operators set (`disabled`, `disabled_reason`, `forced_down`).
    pub service: novalog_schemas::events::ServiceStatus,
    /// The service record was deleted; a new registration makes a new one.
    pub deleted: bool,
}

impl HostView {
    /// Nova's `host_status` of an instance on this host: DOWN when forced
    /// down, MAINTENANCE when disabled, UP while its heartbeats are fresher
    /// than `service_down_time`, else UNKNOWN.
    pub fn status(&self, now_ms: i64, service_down_time_ms: i64) -> &'static str {
        if self.service.forced_down {
            "DOWN"
        } else if self.service.disabled {
            "MAINTENANCE"
        } else if self.is_up(now_ms, service_down_time_ms) {
            "UP"
        } else {
            "UNKNOWN"
        }
    }

    /// Nova's servicegroup check: heartbeats fresher than
    /// `service_down_time` and not forced down.
    pub fn is_up(&self, now_ms: i64, service_down_time_ms: i64) -> bool {
        !self.service.forced_down && now_ms - self.last_seen_ms <= service_down_time_ms
    }
}

/// The uuid of host `name`'s service record `incarnation`. Every fact
/// about one host is in one `hosts` partition, so every reader counts the
/// same incarnations.
pub fn host_uuid(name: &str, incarnation: u32) -> Uuid {
    const NS: Uuid = Uuid::from_u128(0x6e6f_7661_6c6f_6700_0000_0000_0000_0001);
    Uuid::new_v5(&NS, format!("{name}/{incarnation}").as_bytes())
}

/// The integer id (below 2.53) of host `name`'s service record
/// `incarnation`: 31 bits of [`host_uuid`], never 0. Unlike Nova's
/// autoincrement it needs no global order; two hosts of a cloud share one
/// with a chance of about n²/2³², and `os-services` then acts on the first
/// by name (uuids, from 2.53, do not collide).
pub fn host_number(name: &str, incarnation: u32) -> u32 {
    let b = host_uuid(name, incarnation).into_bytes();
    (u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff).max(1)
}

/// Next offset applied per (topic, partition).
pub type Offsets = HashMap<(String, i32), i64>;

#[derive(Default)]
struct State {
    /// Instances not deleted; deleted ones are read from the store.
    instances: HashMap<Uuid, Arc<Instance>>,
    /// Live instances of each project, by (created_at, id): lists without
    /// scans.
    by_project: HashMap<String, BTreeSet<(i64, Uuid)>>,
    /// Every live instance by (created_at, id).
    by_created: BTreeSet<(i64, Uuid)>,
    flavors: BTreeMap<String, Arc<Flavor>>,
    images: HashMap<Uuid, Arc<Image>>,
    hosts: BTreeMap<String, HostView>,
    server_groups: BTreeMap<Uuid, Arc<ServerGroupView>>,
    aggregates: BTreeMap<u32, Arc<HostAggregate>>,
    /// Each live instance's actions, oldest first (os-instance-actions).
    actions: HashMap<Uuid, Arc<Vec<InstanceAction>>>,
    /// Projects' own quota limits.
    quotas: HashMap<String, BTreeMap<String, i64>>,
    /// Quota classes' limits (`default`: what projects fall back to).
    quota_classes: HashMap<String, BTreeMap<String, i64>>,
    /// By `user_id/name`.
    keypairs: BTreeMap<String, Arc<Keypair>>,
    /// Projects given each non-public flavor.
    flavor_access: HashMap<String, BTreeSet<String>>,
}

impl State {
    /// The zone `host` is in: an aggregate's `availability_zone`, else the
    /// one it registered with.
    fn zone_of(&self, host: &HostView) -> String {
        self.aggregates
            .values()
            .filter(|a| a.hosts.contains(&host.name))
            .find_map(|a| a.availability_zone())
            .map_or_else(|| host.availability_zone.clone(), str::to_owned)
    }

    /// Keeps a live instance; a deleted one leaves memory.
    /// Keeps a live image; a deleted one leaves memory and stays in the
    /// store (Glance never reuses its id).
    fn put_image(&mut self, image: Image) {
        if image.status == novalog_schemas::image::DELETED {
            self.images.remove(&image.id);
        } else {
            self.images.insert(image.id, Arc::new(image));
        }
    }

    fn put_instance(&mut self, inst: Instance) {
        if inst.is_deleted() {
            self.remove_instance(&inst);
            return;
        }
        if !self.instances.contains_key(&inst.id) {
            self.by_project
                .entry(inst.project_id.clone())
                .or_default()
                .insert((inst.created_at_ms, inst.id));
            self.by_created.insert((inst.created_at_ms, inst.id));
        }
        self.instances.insert(inst.id, Arc::new(inst));
    }

    fn remove_instance(&mut self, inst: &Instance) {
        let key = (inst.created_at_ms, inst.id);
        if let Some(ids) = self.by_project.get_mut(&inst.project_id) {
            ids.remove(&key);
            if ids.is_empty() {
                self.by_project.remove(&inst.project_id);
            }
        }
        self.by_created.remove(&key);
        self.instances.remove(&inst.id);
        self.actions.remove(&inst.id);
        // Nova shows only members not deleted; keeping the others would
        // grow a long-lived group with every server that ever joined it.
        let groups: Vec<Uuid> = self
            .server_groups
            .iter()
            .filter(|(_, g)| g.members.contains(&inst.id))
            .map(|(id, _)| *id)
            .collect();
        for id in groups {
            if let Some(g) = self.server_groups.get_mut(&id) {
                Arc::make_mut(g).members.remove(&inst.id);
            }
        }
    }
}

/// What the projection holds in memory per instance (the memory bound's
/// regression tests count it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resident {
    pub instances: usize,
    pub actions: usize,
    pub projects: usize,
    pub ordered: usize,
    /// Members of server groups, summed over the groups.
    pub group_members: usize,
    /// Images not deleted.
    pub images: usize,
}

/// The in-memory projection every request reads, and the store that
/// holds what memory does not (deleted servers).
pub struct Projection {
    state: RwLock<State>,
    /// Console tokens issued and not yet expired or their server deleted
    /// (changed as records are folded, reloaded from the store after a
    /// failed batch).
    consoles: RwLock<novalog_runtime::console_tokens::ConsoleTokens>,
    applied: watch::Sender<Offsets>,
    store: Arc<dyn Store>,
}

/// Changes of one batch, published on commit.
#[derive(Default)]
struct Staged {
    instances: HashMap<Uuid, Instance>,
    flavors: Vec<Flavor>,
    images: Vec<Image>,
    hosts: HashMap<String, HostView>,
    /// `None`: deleted.
    server_groups: HashMap<Uuid, Option<ServerGroupView>>,
    /// `None`: deleted.
    aggregates: HashMap<u32, Option<HostAggregate>>,
    actions: HashMap<Uuid, Vec<InstanceAction>>,
    /// Servers changed in the batch: their rows are still to be staged.
    changed: HashSet<Uuid>,
    /// `None`: back to the defaults.
    quotas: HashMap<String, Option<BTreeMap<String, i64>>>,
    quota_classes: HashMap<String, BTreeMap<String, i64>>,
    /// By `user_id/name`; `None`: deleted.
    keypairs: HashMap<String, Option<Keypair>>,
    /// Flavors deleted (after `flavors` are published).
    deleted_flavors: Vec<String>,
    /// Each changed flavor's access list, whole.
    flavor_access: HashMap<String, BTreeSet<String>>,
    verdicts: Vec<(Uuid, Verdict)>,
}

impl Projection {
    /// An empty projection (nothing consumed yet).
    pub fn empty() -> Self {
        Projection {
            state: RwLock::new(State::default()),
            consoles: Default::default(),
            applied: watch::Sender::new(Offsets::new()),
            store: Arc::new(MemStore::new()),
        }
    }

    /// Loads what `store` holds: the live state and the offsets it
    /// reflects (deleted servers stay on disk).
    pub fn load(store: Arc<dyn Store>) -> Result<Self, novalog_store::Error> {
        if store.get::<u32>(T_META, b"index")? != Some(INDEX_VERSION) {
            build_indexes(&*store)?;
        }
        let mut state = State::default();
        let mut failed = None;
        store.walk_raw(
            T_INSTANCES,
            None,
            false,
            &mut |_, v| match novalog_store::decode::<Instance>(T_INSTANCES, v) {
                Ok(inst) => {
                    state.put_instance(inst);
                    true
                }
                Err(e) => {
                    failed = Some(e);
                    false
                }
            },
        )?;
        if let Some(e) = failed {
            return Err(e);
        }
        let live: Vec<Uuid> = state.instances.keys().copied().collect();
        for id in live {
            if let Some(a) = store.get::<Vec<InstanceAction>>(T_ACTIONS, id.as_bytes())? {
                state.actions.insert(id, Arc::new(a));
            }
        }
        for (_, f) in store.scan::<Flavor>(T_FLAVORS)? {
            state.flavors.insert(f.id.clone(), Arc::new(f));
        }
        for (_, i) in store.scan::<Image>(T_IMAGES)? {
            state.put_image(i);
        }
        for (_, h) in store.scan::<HostView>(T_HOSTS)? {
            state.hosts.insert(h.name.clone(), h);
        }
        for (_, mut g) in store.scan::<ServerGroupView>(T_SERVER_GROUPS)? {
            g.members.retain(|m| state.instances.contains_key(m));
            state.server_groups.insert(g.group.id, Arc::new(g));
        }
        for (_, a) in store.scan::<HostAggregate>(T_AGGREGATES)? {
            state.aggregates.insert(a.id, Arc::new(a));
        }
        for (key, q) in store.scan::<BTreeMap<String, i64>>(T_QUOTAS)? {
            state
                .quotas
                .insert(String::from_utf8_lossy(&key).into_owned(), q);
        }
        for (key, q) in store.scan::<BTreeMap<String, i64>>(T_QUOTA_CLASSES)? {
            state
                .quota_classes
                .insert(String::from_utf8_lossy(&key).into_owned(), q);
        }
        for (id, p) in store.scan::<BTreeSet<String>>(T_FLAVOR_ACCESS)? {
            state
                .flavor_access
                .insert(String::from_utf8_lossy(&id).into_owned(), p);
        }
        for (_, k) in store.scan::<Keypair>(T_KEYPAIRS)? {
            state
                .keypairs
                .insert(keypair_key(&k.user_id, &k.name), Arc::new(k));
        }
        let consoles = novalog_runtime::console_tokens::ConsoleTokens::load(&*store)?;
        Ok(Projection {
            state: RwLock::new(state),
            consoles: RwLock::new(consoles),
            applied: watch::Sender::new(store.offsets(CONSUMER)?),
            store,
        })
    }

    /// The console token with hash `token_hash`, if it still works at
    /// `now_ms` (its server not deleted).
    pub fn console_token(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Option<novalog_schemas::console::ConsoleToken> {
        self.consoles.read().valid(token_hash, now_ms).cloned()
    }

    /// A server not deleted.
    pub fn instance(&self, id: &Uuid) -> Option<Arc<Instance>> {
        self.state.read().instances.get(id).cloned()
    }

    /// A server, deleted ones included (those from the store).
    pub fn instance_with_deleted(&self, id: &Uuid) -> Option<Arc<Instance>> {
        if let Some(i) = self.instance(id) {
            return Some(i);
        }
        match self.store.get::<Instance>(T_INSTANCES, id.as_bytes()) {
            Ok(i) => i.map(Arc::new),
            Err(e) => {
                tracing::warn!(error = %e, instance = %id, "reading a deleted instance");
                None
            }
        }
    }

    /// What memory holds per instance.
    pub fn resident(&self) -> Resident {
        let state = self.state.read();
        Resident {
            instances: state.instances.len(),
            actions: state.actions.len(),
            projects: state.by_project.values().map(BTreeSet::len).sum(),
            ordered: state.by_created.len(),
            group_members: state.server_groups.values().map(|g| g.members.len()).sum(),
            images: state.images.len(),
        }
    }

    /// Visits the servers of `project` (every project with `None`) newest
    /// first, starting after `after` (a server's `(created_at_ms, id)`),
    /// until `visit` returns false. Live servers come from memory; with
    /// `with_deleted`, every server from the store's index, deleted ones
    /// read from disk one chunk at a time. `visit` must not call back into
    /// the projection (it runs under its lock for live servers).
    pub fn walk_instances(
        &self,
        project: Option<&str>,
        after: Option<(i64, Uuid)>,
        with_deleted: bool,
        mut visit: impl FnMut(Arc<Instance>) -> bool,
    ) -> Result<(), novalog_store::Error> {
        if !with_deleted {
            let state = self.state.read();
            let upper = match after {
                Some(a) => std::ops::Bound::Excluded(a),
                None => std::ops::Bound::Unbounded,
            };
            let range = (std::ops::Bound::Unbounded, upper);
            let ids: Box<dyn Iterator<Item = &(i64, Uuid)>> = match project {
                Some(p) => match state.by_project.get(p) {
                    Some(ids) => Box::new(ids.range(range).rev()),
                    None => return Ok(()),
                },
                None => Box::new(state.by_created.range(range).rev()),
            };
            for (_, id) in ids {
                if let Some(i) = state.instances.get(id)
                    && !visit(i.clone())
                {
                    break;
                }
            }
            return Ok(());
        }
        let (table, prefix) = match project {
            Some(p) => (T_BY_PROJECT, project_prefix(p)),
            None => (T_BY_CREATED, Vec::new()),
        };
        let mut cursor = prefix.clone();
        match after {
            Some((at, id)) => cursor.extend_from_slice(&order_key(at, &id)),
            None => cursor.extend_from_slice(&[0xff; 24]),
        }
        let mut skip_cursor = after.is_some();
        loop {
            let mut ids: Vec<(Vec<u8>, Uuid)> = Vec::with_capacity(WALK_CHUNK);
            self.store
                .walk_raw(table, Some(&cursor), true, &mut |k, _| {
                    if !k.starts_with(&prefix) {
                        return false;
                    }
                    if skip_cursor && k == cursor.as_slice() {
                        return true;
                    }
                    if let Some(id) = k
                        .len()
                        .checked_sub(16)
                        .and_then(|at| Uuid::from_slice(&k[at..]).ok())
                    {
                        ids.push((k.to_vec(), id));
                    }
                    ids.len() < WALK_CHUNK
                })?;
            let Some((last, _)) = ids.last() else {
                return Ok(());
            };
            cursor = last.clone();
            skip_cursor = true;
            let full = ids.len() == WALK_CHUNK;
            for (_, id) in ids {
                let inst = match self.instance(&id) {
                    Some(i) => Some(i),
                    None => self
                        .store
                        .get::<Instance>(T_INSTANCES, id.as_bytes())?
                        .map(Arc::new),
                };
                if let Some(i) = inst
                    && !visit(i)
                {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Live instances of `project` (every project with `None`), newest
    /// first.
    pub fn instances(&self, project: Option<&str>) -> Vec<Arc<Instance>> {
        let mut all = Vec::new();
        // Memory only: no store error is possible.
        let _ = self.walk_instances(project, None, false, |i| {
            all.push(i);
            true
        });
        all
    }

    /// The actions recorded for instance `id`, oldest first (a deleted
    /// instance's from the store).
    pub fn instance_actions(&self, id: &Uuid) -> Arc<Vec<InstanceAction>> {
        if let Some(a) = self.state.read().actions.get(id) {
            return a.clone();
        }
        match self
            .store
            .get::<Vec<InstanceAction>>(T_ACTIONS, id.as_bytes())
        {
            Ok(a) => Arc::new(a.unwrap_or_default()),
            Err(e) => {
                tracing::warn!(error = %e, instance = %id, "reading a deleted instance's actions");
                Arc::default()
            }
        }
    }

    /// The limits quota class `class` has set (empty: none).
    pub fn quota_class(&self, class: &str) -> BTreeMap<String, i64> {
        self.state
            .read()
            .quota_classes
            .get(class)
            .cloned()
            .unwrap_or_default()
    }

    /// `project`'s own quota limits (empty: the defaults).
    pub fn quota_overrides(&self, project: &str) -> BTreeMap<String, i64> {
        self.state
            .read()
            .quotas
            .get(project)
            .cloned()
            .unwrap_or_default()
    }

    /// What `project`'s instances use, as its quota counts it (instances
    /// not deleted), and how many server groups it has.
    pub fn usage(&self, project: &str) -> (novalog_schemas::quota::Usage, i64) {
        let state = self.state.read();
        let mut u = novalog_schemas::quota::Usage::default();
        for (_, id) in state.by_project.get(project).into_iter().flatten() {
            if let Some(i) = state.instances.get(id)
                && !i.is_deleted()
            {
                // Saturating: a flavor's numbers come from a user.
                u.instances = u.instances.saturating_add(1);
                u.cores = u.cores.saturating_add(i64::from(i.flavor.vcpus));
                u.ram = u
                    .ram
                    .saturating_add(i64::try_from(i.flavor.ram_mb).unwrap_or(i64::MAX));
            }
        }
        let groups = state
            .server_groups
            .values()
            .filter(|g| g.group.project_id == project)
            .count() as i64;
        (u, groups)
    }

    pub fn flavor(&self, id: &str) -> Option<Arc<Flavor>> {
        self.state.read().flavors.get(id).cloned()
    }

    /// Every flavor, by id (Nova's default sort, `flavorid asc`).
    pub fn flavors(&self) -> Vec<Arc<Flavor>> {
        self.state.read().flavors.values().cloned().collect()
    }

    /// An image not deleted.
    pub fn image(&self, id: &Uuid) -> Option<Arc<Image>> {
        self.state.read().images.get(id).cloned()
    }

    /// An image, deleted ones included (those from the store).
    pub fn image_with_deleted(&self, id: &Uuid) -> Option<Arc<Image>> {
        if let Some(i) = self.image(id) {
            return Some(i);
        }
        match self.store.get::<Image>(T_IMAGES, id.as_bytes()) {
            Ok(i) => i.map(Arc::new),
            Err(e) => {
                tracing::warn!(error = %e, image = %id, "reading a deleted image");
                None
            }
        }
    }

    pub fn images(&self) -> Vec<Arc<Image>> {
        self.state.read().images.values().cloned().collect()
    }

    pub fn server_group(&self, id: &Uuid) -> Option<Arc<ServerGroupView>> {
        self.state.read().server_groups.get(id).cloned()
    }

    /// Every server group, by id.
    pub fn server_groups(&self) -> Vec<Arc<ServerGroupView>> {
        self.state.read().server_groups.values().cloned().collect()
    }

    /// A host whose service is not deleted, in the zone its aggregates put
    /// it in.
    pub fn host(&self, name: &str) -> Option<HostView> {
        let state = self.state.read();
        state
            .hosts
            .get(name)
            .filter(|h| !h.deleted)
            .map(|h| HostView {
                availability_zone: state.zone_of(h),
                ..h.clone()
            })
    }

    /// Every host whose service is not deleted, each in the zone its
    /// aggregates put it in, by name.
    pub fn hosts(&self) -> Vec<HostView> {
        let state = self.state.read();
        state
            .hosts
            .values()
            .filter(|h| !h.deleted)
            .map(|h| HostView {
                availability_zone: state.zone_of(h),
                ..h.clone()
            })
            .collect()
    }

    /// The host as it registered (its own zone).
    fn registered_host(&self, name: &str) -> Option<HostView> {
        self.state.read().hosts.get(name).cloned()
    }

    /// Availability zones that have at least one host.
    pub fn availability_zones(&self) -> BTreeSet<String> {
        let state = self.state.read();
        state.hosts.values().map(|h| state.zone_of(h)).collect()
    }

    pub fn aggregate(&self, id: u32) -> Option<Arc<HostAggregate>> {
        self.state.read().aggregates.get(&id).cloned()
    }

    /// Every aggregate, by id.
    pub fn aggregates(&self) -> Vec<Arc<HostAggregate>> {
        self.state.read().aggregates.values().cloned().collect()
    }

    /// The projects given non-public flavor `id`.
    pub fn flavor_access(&self, id: &str) -> BTreeSet<String> {
        self.state
            .read()
            .flavor_access
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    pub fn keypair(&self, user_id: &str, name: &str) -> Option<Arc<Keypair>> {
        self.state
            .read()
            .keypairs
            .get(&keypair_key(user_id, name))
            .cloned()
    }

    /// A user's keypairs, by name.
    pub fn keypairs(&self, user_id: &str) -> Vec<Arc<Keypair>> {
        let prefix = format!("{user_id}/");
        self.state
            .read()
            .keypairs
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Offsets applied so far.
    pub fn applied(&self) -> Offsets {
        self.applied.borrow().clone()
    }

    /// Wakes whenever a batch has been applied (the web console's live
    /// server list follows the projection with it).
    pub fn watch_applied(&self) -> watch::Receiver<Offsets> {
        self.applied.subscribe()
    }

    /// Waits until every partition in `ends` is applied up to its offset.
    pub async fn wait_applied(&self, ends: &Offsets) {
        let mut rx = self.applied.subscribe();
        let _ = rx
            .wait_for(|applied| {
                ends.iter()
                    .all(|(k, end)| *end <= 0 || applied.get(k).copied().unwrap_or(0) >= *end)
            })
            .await;
    }

    fn publish(&self, staged: Staged, applied: Option<Offsets>) {
        if !staged.instances.is_empty()
            || !staged.flavors.is_empty()
            || !staged.images.is_empty()
            || !staged.hosts.is_empty()
            || !staged.server_groups.is_empty()
            || !staged.aggregates.is_empty()
            || !staged.actions.is_empty()
            || !staged.quotas.is_empty()
            || !staged.quota_classes.is_empty()
            || !staged.keypairs.is_empty()
            || !staged.deleted_flavors.is_empty()
            || !staged.flavor_access.is_empty()
        {
            let mut state = self.state.write();
            for (_, inst) in staged.instances {
                state.put_instance(inst);
            }
            for f in staged.flavors {
                state.flavors.insert(f.id.clone(), Arc::new(f));
            }
            for i in staged.images {
                state.put_image(i);
            }
            for (name, h) in staged.hosts {
                state.hosts.insert(name, h);
            }
            for (id, g) in staged.server_groups {
                match g {
                    Some(g) => state.server_groups.insert(id, Arc::new(g)),
                    None => state.server_groups.remove(&id),
                };
            }
            for (id, a) in staged.aggregates {
                match a {
                    Some(a) => state.aggregates.insert(id, Arc::new(a)),
                    None => state.aggregates.remove(&id),
                };
            }
            for (id, a) in staged.actions {
                // A deleted instance's actions stay in the store only.
                if state.instances.contains_key(&id) {
                    state.actions.insert(id, Arc::new(a));
                }
            }
            for (project, q) in staged.quotas {
                match q {
                    Some(q) => state.quotas.insert(project, q),
                    None => state.quotas.remove(&project),
                };
            }
            state.quota_classes.extend(staged.quota_classes);
            for id in staged.deleted_flavors {
                state.flavors.remove(&id);
            }
            for (id, p) in staged.flavor_access {
                state.flavor_access.insert(id, p);
            }
            for (key, k) in staged.keypairs {
                match k {
                    Some(k) => state.keypairs.insert(key, Arc::new(k)),
                    None => state.keypairs.remove(&key),
                };
            }
        }
        if let Some(applied) = applied {
            self.applied.send_replace(applied);
        }
    }
}

/// The consumer's [`Handler`]: folds records into the store transaction and
/// a staged change set, then publishes and wakes waiters on commit.
pub struct ProjectionHandler<S: Store> {
    projection: Arc<Projection>,
    verdicts: Arc<Verdicts>,
    store: Arc<S>,
    staged: Staged,
    /// The identity service's revoked tokens, when tokens are keystone's.
    revocations: Option<Arc<novalog_identity::revocations::Revocations>>,
    staged_revocations: novalog_identity::revocations::Staged,
    /// The identity directory's changes: folded whether or not tokens
    /// are keystone's, so a rebuilt projection stores the same rows.
    identity: Arc<novalog_identity::records::IdentityRecords>,
    staged_identity: novalog_identity::records::Staged,
}

impl<S: Store> ProjectionHandler<S> {
    pub fn new(projection: Arc<Projection>, verdicts: Arc<Verdicts>, store: Arc<S>) -> Self {
        ProjectionHandler {
            projection,
            verdicts,
            store,
            staged: Staged::default(),
            revocations: None,
            staged_revocations: Default::default(),
            identity: Default::default(),
            staged_identity: Default::default(),
        }
    }

    /// Folds the identity directory's changes into `identity` (the
    /// identity service's), rather than into a private copy.
    pub fn with_identity(
        mut self,
        identity: Arc<novalog_identity::records::IdentityRecords>,
    ) -> Self {
        self.identity = identity;
        self
    }

    /// Folds `TokenRevoked` records into `revocations` too.
    pub fn with_revocations(
        mut self,
        revocations: Arc<novalog_identity::revocations::Revocations>,
    ) -> Self {
        self.revocations = Some(revocations);
        self
    }

    fn current_host(&self, name: &str) -> Option<HostView> {
        self.staged
            .hosts
            .get(name)
            .cloned()
            .or_else(|| self.projection.registered_host(name))
    }

    fn current_group(&self, id: &Uuid) -> Option<ServerGroupView> {
        match self.staged.server_groups.get(id) {
            Some(g) => g.clone(),
            None => self.projection.server_group(id).map(|g| (*g).clone()),
        }
    }

    fn stage_group(
        &mut self,
        tx: &mut Transaction,
        id: Uuid,
        g: Option<ServerGroupView>,
    ) -> Result<(), Rejected> {
        match &g {
            Some(g) => tx
                .put(T_SERVER_GROUPS, id.as_bytes(), g)
                .map_err(stage_err)?,
            None => tx.delete(T_SERVER_GROUPS, id.as_bytes()),
        }
        self.staged.server_groups.insert(id, g);
        Ok(())
    }

    /// The instance as this batch leaves it so far; a deleted one from the
    /// store, so that a late or repeated record never brings it back.
    fn current(&self, id: &Uuid) -> Result<Option<Instance>, Rejected> {
        if let Some(i) = self.staged.instances.get(id) {
            return Ok(Some(i.clone()));
        }
        if let Some(i) = self.projection.instance(id) {
            return Ok(Some((*i).clone()));
        }
        self.store
            .get::<Instance>(T_INSTANCES, id.as_bytes())
            .map_err(stage_err)
    }
}

/// Writes the instance indexes of a store that predates them.
fn build_indexes(store: &dyn Store) -> Result<(), novalog_store::Error> {
    let mut tx = Transaction::new();
    let mut failed = None;
    store.walk_raw(
        T_INSTANCES,
        None,
        false,
        &mut |_, v| match novalog_store::decode::<Instance>(T_INSTANCES, v)
            .and_then(|inst| index_instance(&mut tx, &inst))
        {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        },
    )?;
    if let Some(e) = failed {
        return Err(e);
    }
    tx.put(T_META, b"index", &INDEX_VERSION)?;
    store.commit(tx)
}

/// The key of a keypair: names are unique per user.
pub fn keypair_key(user_id: &str, name: &str) -> String {
    format!("{user_id}/{name}")
}

fn stage_err(e: novalog_store::Error) -> Rejected {
    Rejected(e.to_string())
}

impl<S: Store> ProjectionHandler<S> {
    fn fold_instance(&mut self, env: &Envelope, tx: &mut Transaction) -> Result<(), Rejected> {
        let Ok(id) = Uuid::parse_str(&env.meta.aggregate_id) else {
            return Ok(());
        };
        // Taken out of the batch's staging (put back below): folding a
        // server's records one by one never copies it.
        let staged = self.staged.instances.remove(&id);
        let was_staged = staged.is_some();
        let prev = match staged {
            Some(i) => Some(i),
            None => self.current(&id)?,
        };
        let prev_version = prev.as_ref().map(|i| i.version);
        let is_new = prev.is_none();
        // An accepted create joins the group its hints name.
        if prev.is_none()
            && let Event::Instance(InstanceEvent::InstanceCreated(c)) = &env.event
            && let Some(group) = c
                .scheduler_hints
                .get("group")
                .and_then(|v| v.first())
                .and_then(|g| Uuid::parse_str(g).ok())
            && let Some(mut view) = self.current_group(&group)
        {
            view.members.insert(id);
            self.stage_group(tx, group, Some(view))?;
        }
        match evolve(prev, env) {
            Some(next) if Some(next.version) != prev_version => {
                let mut actions = match self.staged.actions.remove(&id) {
                    Some(a) => a,
                    None => match self.projection.state.read().actions.get(&id) {
                        Some(a) => (**a).clone(),
                        None => self
                            .store
                            .get::<Vec<InstanceAction>>(T_ACTIONS, id.as_bytes())
                            .map_err(stage_err)?
                            .unwrap_or_default(),
                    },
                };
                action_log::record(&mut actions, env, &next);
                self.staged.actions.insert(id, actions);
                if is_new {
                    index_instance(tx, &next).map_err(stage_err)?;
                }
                // Its rows are written once per batch (`finish_batch`),
                // not once per record.
                self.staged.changed.insert(id);
                self.staged.instances.insert(id, next);
            }
            Some(same) if was_staged => {
                self.staged.instances.insert(id, same);
            }
            _ => {}
        }
        Ok(())
    }

    fn fold_catalog(
        &mut self,
        env: &Envelope,
        event: &CatalogEvent,
        tx: &mut Transaction,
    ) -> Result<(), Rejected> {
        if novalog_identity::records::is_identity(event) {
            return self
                .identity
                .stage(tx, &mut self.staged_identity, env, event)
                .map_err(stage_err);
        }
        match event {
            CatalogEvent::FlavorCreated(f) | CatalogEvent::FlavorUpdated(f) => {
                tx.put(T_FLAVORS, f.id.as_bytes(), f).map_err(stage_err)?;
                self.staged.deleted_flavors.retain(|id| id != &f.id);
                self.staged.flavors.push(f.clone());
            }
            CatalogEvent::FlavorDeleted { flavor_id } => {
                tx.delete(T_FLAVORS, flavor_id.as_bytes());
                tx.delete(T_FLAVOR_ACCESS, flavor_id.as_bytes());
                self.staged.flavors.retain(|f| &f.id != flavor_id);
                self.staged.deleted_flavors.push(flavor_id.clone());
                self.staged
                    .flavor_access
                    .insert(flavor_id.clone(), BTreeSet::new());
            }
            CatalogEvent::FlavorAccessAdded {
                flavor_id,
                project_id,
            }
            | CatalogEvent::FlavorAccessRemoved {
                flavor_id,
                project_id,
            } => {
                let mut projects = self
                    .staged
                    .flavor_access
                    .get(flavor_id)
                    .cloned()
                    .unwrap_or_else(|| self.projection.flavor_access(flavor_id));
                if matches!(event, CatalogEvent::FlavorAccessAdded { .. }) {
                    projects.insert(project_id.clone());
                } else {
                    projects.remove(project_id);
                }
                tx.put(T_FLAVOR_ACCESS, flavor_id.as_bytes(), &projects)
                    .map_err(stage_err)?;
                self.staged
                    .flavor_access
                    .insert(flavor_id.clone(), projects);
            }
            CatalogEvent::ImageCreated(i) | CatalogEvent::ImageUpdated(i) => {
                tx.put(T_IMAGES, i.id.as_bytes(), i).map_err(stage_err)?;
                self.staged.images.push(i.clone());
            }
            CatalogEvent::ImageDeleted { image_id } => {
                // Kept as `deleted` (Glance never reuses an id); readers
                // treat it as gone.
                let current = self
                    .staged
                    .images
                    .iter()
                    .rev()
                    .find(|i| i.id == *image_id)
                    .cloned()
                    .or_else(|| self.projection.image(image_id).map(|i| (*i).clone()));
                if let Some(mut i) = current {
                    i.status = "deleted".into();
                    i.updated_at_ms = env.meta.occurred_at_ms;
                    tx.put(T_IMAGES, i.id.as_bytes(), &i).map_err(stage_err)?;
                    self.staged.images.push(i);
                }
            }
            CatalogEvent::ServerGroupCreated(g) => {
                let members = self
                    .current_group(&g.id)
                    .map(|v| v.members)
                    .unwrap_or_default();
                let view = ServerGroupView {
                    group: (**g).clone(),
                    members,
                };
                self.stage_group(tx, g.id, Some(view))?;
            }
            CatalogEvent::ServerGroupDeleted { group_id } => {
                self.stage_group(tx, *group_id, None)?;
            }
            CatalogEvent::AggregateCreated(a)
            | CatalogEvent::AggregateUpdated(a)
            | CatalogEvent::AggregateMetadataSet(a)
            | CatalogEvent::AggregateHostAdded { aggregate: a, .. }
            | CatalogEvent::AggregateHostRemoved { aggregate: a, .. } => {
                tx.put(T_AGGREGATES, &a.id.to_be_bytes(), &**a)
                    .map_err(stage_err)?;
                self.staged.aggregates.insert(a.id, Some((**a).clone()));
            }
            CatalogEvent::QuotaSetUpdated { project_id, limits } => {
                tx.put(T_QUOTAS, project_id.as_bytes(), limits)
                    .map_err(stage_err)?;
                self.staged
                    .quotas
                    .insert(project_id.clone(), Some(limits.clone()));
            }
            CatalogEvent::QuotaSetDeleted { project_id } => {
                tx.delete(T_QUOTAS, project_id.as_bytes());
                self.staged.quotas.insert(project_id.clone(), None);
            }
            CatalogEvent::QuotaClassSetUpdated { class_name, limits } => {
                tx.put(T_QUOTA_CLASSES, class_name.as_bytes(), limits)
                    .map_err(stage_err)?;
                self.staged
                    .quota_classes
                    .insert(class_name.clone(), limits.clone());
            }
            CatalogEvent::AggregateDeleted { aggregate_id } => {
                tx.delete(T_AGGREGATES, &aggregate_id.to_be_bytes());
                self.staged.aggregates.insert(*aggregate_id, None);
            }
            CatalogEvent::KeypairCreated(k) => {
                let key = keypair_key(&k.user_id, &k.name);
                tx.put(T_KEYPAIRS, key.as_bytes(), &**k)
                    .map_err(stage_err)?;
                self.staged.keypairs.insert(key, Some((**k).clone()));
            }
            CatalogEvent::KeypairDeleted { user_id, name } => {
                let key = keypair_key(user_id, name);
                tx.delete(T_KEYPAIRS, key.as_bytes());
                self.staged.keypairs.insert(key, None);
            }
            CatalogEvent::TokenRevoked {
                audit_id,
                expires_at_ms,
            } => {
                if let Some(revocations) = &self.revocations {
                    revocations
                        .stage(
                            tx,
                            &mut self.staged_revocations,
                            audit_id,
                            *expires_at_ms,
                            env.meta.occurred_at_ms,
                        )
                        .map_err(stage_err)?;
                }
            }
            // Folded above.
            CatalogEvent::DomainCreated(_)
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
        Ok(())
    }

    fn fold_host(
        &mut self,
        env: &Envelope,
        event: &HostEvent,
        tx: &mut Transaction,
    ) -> Result<(), Rejected> {
        let at = env.meta.occurred_at_ms;
        let live = |v: HostView| (!v.deleted).then_some(v);
        let view = match event {
            HostEvent::HostRegistered(h) => {
                // A known service keeps its ids and what operators set;
                // after a deletion the host is a new record.
                let (incarnation, service) = match self.current_host(&h.host) {
                    Some(v) if !v.deleted => (v.incarnation, v.service),
                    Some(v) => (v.incarnation + 1, Default::default()),
                    None => (0, Default::default()),
                };
                Some(HostView {
                    name: h.host.clone(),
                    availability_zone: h.availability_zone.clone(),
                    hypervisor_type: h.hypervisor_type.clone(),
                    last_seen_ms: at,
                    id: host_number(&h.host, incarnation),
                    uuid: host_uuid(&h.host, incarnation),
                    incarnation,
                    hypervisor_version: h.hypervisor_version,
                    cpu_arch: h.cpu_arch.clone(),
                    capacity: h.capacity,
                    usage: h.usage,
                    registered_at_ms: at,
                    service: novalog_schemas::events::ServiceStatus {
                        host: h.host.clone(),
                        ..service
                    },
                    deleted: false,
                })
            }
            HostEvent::HostHeartbeat { host, usage } => {
                self.current_host(host).and_then(live).map(|mut v| {
                    v.last_seen_ms = v.last_seen_ms.max(at);
                    if usage.generation >= v.usage.generation {
                        v.usage = *usage;
                    }
                    v
                })
            }
            HostEvent::ServiceUpdated(s) => {
                self.current_host(&s.host).and_then(live).map(|mut v| {
                    v.service = (**s).clone();
                    v
                })
            }
            HostEvent::ServiceDeleted { host } => self.current_host(host).map(|mut v| {
                v.deleted = true;
                v
            }),
        };
        if let Some(view) = view {
            tx.put(T_HOSTS, view.name.as_bytes(), &view)
                .map_err(stage_err)?;
            self.staged.hosts.insert(view.name.clone(), view);
        }
        Ok(())
    }
}

#[async_trait]
impl<S: Store> Handler for ProjectionHandler<S> {
    async fn handle(
        &mut self,
        input: &Input,
        _out: &mut Outbox,
        tx: &mut Transaction,
    ) -> Result<(), Rejected> {
        let env = &input.env;
        if let Some(cause) = env.meta.causation_id {
            self.staged.verdicts.push((cause, Verdict::of(&env.event)));
        }
        match &env.event {
            Event::Instance(_) => {
                self.projection
                    .consoles
                    .write()
                    .apply(env, tx)
                    .map_err(stage_err)?;
                self.fold_instance(env, tx)?
            }
            Event::Catalog(event) => self.fold_catalog(env, event, tx)?,
            Event::Host(event) => self.fold_host(env, event, tx)?,
            // Not on the topics it reads.
            Event::Intent(_)
            | Event::Scheduler(_)
            | Event::Compute(_)
            | Event::ComputeFact(_)
            | Event::DeadLetter(_)
            | Event::Billing(_) => {}
        }
        Ok(())
    }

    /// Stages each server the batch changed, with its actions, once.
    async fn finish_batch(
        &mut self,
        _out: &mut Outbox,
        tx: &mut Transaction,
    ) -> novalog_runtime::Result<()> {
        for id in &self.staged.changed {
            if let Some(i) = self.staged.instances.get(id) {
                tx.put(T_INSTANCES, id.as_bytes(), i)?;
            }
            if let Some(a) = self.staged.actions.get(id) {
                tx.put(T_ACTIONS, id.as_bytes(), a)?;
            }
        }
        Ok(())
    }

    /// The published projection changes only on commit, so what a failed
    /// batch left behind is all in `staged`.
    async fn recover(&mut self) -> novalog_runtime::Result<()> {
        self.staged = Staged::default();
        *self.projection.consoles.write() =
            novalog_runtime::console_tokens::ConsoleTokens::load(&*self.store)?;
        self.staged_revocations = Default::default();
        self.staged_identity = Default::default();
        Ok(())
    }

    /// A record this projection cannot apply may be the verdict a request
    /// waits for: the request answers a 500 naming itself at once rather
    /// than waiting out its timeout (resolved with the dead letter's
    /// commit; a request already answered is not affected).
    fn dead_lettered(&mut self, dead: &DeadRecord<'_>, _out: &mut Outbox) {
        if let Some((meta, _)) = &dead.meta
            && let Some(cause) = meta.causation_id
        {
            self.staged.verdicts.push((
                cause,
                Verdict::Rejected(Rejection::internal(format!(
                    "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible. (request {})",
                    meta.correlation_id
                ))),
            ));
        }
    }

    fn committed(&mut self) {
        // Revocations first: once a revoking request is woken by the
        // offsets below, its token is refused.
        if let Some(revocations) = &self.revocations {
            revocations.publish(std::mem::take(&mut self.staged_revocations));
        }
        // So is a directory change before its writer is woken.
        self.identity
            .publish(std::mem::take(&mut self.staged_identity));
        let mut staged = std::mem::take(&mut self.staged);
        let causes = std::mem::take(&mut staged.verdicts);
        // Offsets come from the store rather than from the records handled:
        // records that did not decode were dead-lettered without reaching
        // `handle`, but their offsets were committed all the same.
        let applied = match self.store.offsets(CONSUMER) {
            Ok(o) => Some(o),
            Err(e) => {
                tracing::warn!(error = %e, "reading the api consumer's offsets");
                None
            }
        };
        self.projection.publish(staged, applied);
        self.verdicts.resolve(causes);
    }
}
