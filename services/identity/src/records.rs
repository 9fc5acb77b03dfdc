//! The directory changes made through the API (keystone's admin API), as
//! folded from the `catalog` topic by every API replica's projection
//! consumer and persisted with its offsets, so they hold on every replica
//! and across restarts.
//!
//! The fold is [`IdentityState::evolve`]: a record applies only if its
//! `aggregate_version` is the state's version plus one (optimistic
//! concurrency: a writer decides against the directory at one version, and
//! of two writers that decided against the same version only the first on
//! the log wins; the other sees its record was not applied and decides
//! again). Every row written is a function of the record alone, not of
//! what was there before, so a replica that never had the configured
//! bootstrap users (a `novalog-replay rebuild`) stores the same rows.

use std::collections::{BTreeMap, VecDeque};

use novalog_schemas::CatalogEvent;
use novalog_schemas::identity::{
    ApplicationCredential, IdentityDomain, IdentityGroup, IdentityProject, IdentityRole,
    IdentityUser, RoleGrant,
};
use novalog_store::{Store, StoreExt as _, Transaction};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The projection table.
pub const TABLE: &str = "identity";

/// The log key (and aggregate id) of every directory record: one key, one
/// partition, one order.
pub const KEY: &str = "identity";

/// What the API changed, over the configured bootstrap directory: `None`
/// (or `false`) marks something deleted (or revoked), bootstrap or not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdentityState {
    /// Records applied so far.
    pub version: u64,
    pub domains: BTreeMap<String, Option<IdentityDomain>>,
    pub projects: BTreeMap<String, Option<IdentityProject>>,
    pub users: BTreeMap<String, Option<IdentityUser>>,
    pub groups: BTreeMap<String, Option<IdentityGroup>>,
    pub roles: BTreeMap<String, Option<IdentityRole>>,
    pub grants: BTreeMap<RoleGrant, bool>,
    /// (group id, user id) → member.
    pub members: BTreeMap<(String, String), bool>,
    pub app_creds: BTreeMap<String, Option<ApplicationCredential>>,
}

/// One stored row; it names what it is about, so loading needs no key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Row {
    Version(u64),
    Domain(String, Option<IdentityDomain>),
    Project(String, Option<IdentityProject>),
    User(String, Option<IdentityUser>),
    Group(String, Option<IdentityGroup>),
    Role(String, Option<IdentityRole>),
    Grant(RoleGrant, bool),
    Member(String, String, bool),
    AppCred(String, Option<ApplicationCredential>),
}

impl Row {
    fn key(&self) -> String {
        match self {
            Row::Version(_) => "version".into(),
            Row::Domain(id, _) => format!("domain/{id}"),
            Row::Project(id, _) => format!("project/{id}"),
            Row::User(id, _) => format!("user/{id}"),
            Row::Group(id, _) => format!("group/{id}"),
            Row::Role(id, _) => format!("role/{id}"),
            // An inherited grant is another grant than the plain one on
            // the same target; plain grants keep the keys they always had.
            Row::Grant(g, _) => format!(
                "grant/{}/{}/{}/{}/{}{}",
                g.role_id,
                g.actor_is_group,
                g.actor_id,
                g.target_is_domain,
                g.target_id,
                if g.inherited { "/inherited" } else { "" }
            ),
            Row::Member(g, u, _) => format!("member/{g}/{u}"),
            Row::AppCred(id, _) => format!("app_cred/{id}"),
        }
    }
}

/// Whether a catalog record is one of the directory's.
pub fn is_identity(event: &CatalogEvent) -> bool {
    use CatalogEvent::*;
    matches!(
        event,
        DomainCreated(_)
            | DomainUpdated(_)
            | DomainDeleted { .. }
            | ProjectCreated(_)
            | ProjectUpdated(_)
            | ProjectDeleted { .. }
            | UserCreated(_)
            | UserUpdated(_)
            | UserDeleted { .. }
            | GroupCreated(_)
            | GroupUpdated(_)
            | GroupDeleted { .. }
            | RoleCreated(_)
            | RoleUpdated(_)
            | RoleDeleted { .. }
            | RoleGranted(_)
            | RoleRevoked(_)
            | GroupMemberAdded { .. }
            | GroupMemberRemoved { .. }
            | ApplicationCredentialCreated(_)
            | ApplicationCredentialDeleted { .. }
    )
}

impl IdentityState {
    /// Applies a directory record decided against version `version - 1`;
    /// returns the rows it changed, or `None` (nothing changed) when the
    /// record lost its race or is not the directory's.
    fn evolve(&mut self, version: u64, event: &CatalogEvent) -> Option<Vec<Row>> {
        if version != self.version + 1 || !is_identity(event) {
            return None;
        }
        use CatalogEvent::*;
        let row = match event {
            DomainCreated(d) | DomainUpdated(d) => {
                self.domains.insert(d.id.clone(), Some((**d).clone()));
                Row::Domain(d.id.clone(), Some((**d).clone()))
            }
            DomainDeleted { domain_id } => {
                self.domains.insert(domain_id.clone(), None);
                Row::Domain(domain_id.clone(), None)
            }
            ProjectCreated(p) | ProjectUpdated(p) => {
                self.projects.insert(p.id.clone(), Some((**p).clone()));
                Row::Project(p.id.clone(), Some((**p).clone()))
            }
            ProjectDeleted { project_id } => {
                self.projects.insert(project_id.clone(), None);
                Row::Project(project_id.clone(), None)
            }
            UserCreated(u) | UserUpdated(u) => {
                self.users.insert(u.id.clone(), Some((**u).clone()));
                Row::User(u.id.clone(), Some((**u).clone()))
            }
            UserDeleted { user_id } => {
                self.users.insert(user_id.clone(), None);
                Row::User(user_id.clone(), None)
            }
            GroupCreated(g) | GroupUpdated(g) => {
                self.groups.insert(g.id.clone(), Some((**g).clone()));
                Row::Group(g.id.clone(), Some((**g).clone()))
            }
            GroupDeleted { group_id } => {
                self.groups.insert(group_id.clone(), None);
                Row::Group(group_id.clone(), None)
            }
            RoleCreated(r) | RoleUpdated(r) => {
                self.roles.insert(r.id.clone(), Some((**r).clone()));
                Row::Role(r.id.clone(), Some((**r).clone()))
            }
            RoleDeleted { role_id } => {
                self.roles.insert(role_id.clone(), None);
                Row::Role(role_id.clone(), None)
            }
            RoleGranted(g) => {
                self.grants.insert((**g).clone(), true);
                Row::Grant((**g).clone(), true)
            }
            RoleRevoked(g) => {
                self.grants.insert((**g).clone(), false);
                Row::Grant((**g).clone(), false)
            }
            GroupMemberAdded { group_id, user_id } => {
                self.members
                    .insert((group_id.clone(), user_id.clone()), true);
                Row::Member(group_id.clone(), user_id.clone(), true)
            }
            GroupMemberRemoved { group_id, user_id } => {
                self.members
                    .insert((group_id.clone(), user_id.clone()), false);
                Row::Member(group_id.clone(), user_id.clone(), false)
            }
            ApplicationCredentialCreated(a) => {
                self.app_creds.insert(a.id.clone(), Some((**a).clone()));
                Row::AppCred(a.id.clone(), Some((**a).clone()))
            }
            ApplicationCredentialDeleted {
                application_credential_id,
                ..
            } => {
                self.app_creds
                    .insert(application_credential_id.clone(), None);
                Row::AppCred(application_credential_id.clone(), None)
            }
            _ => return None,
        };
        self.version = version;
        Some(vec![row, Row::Version(version)])
    }

    fn load_row(&mut self, row: Row) {
        match row {
            Row::Version(v) => self.version = v,
            Row::Domain(id, d) => {
                self.domains.insert(id, d);
            }
            Row::Project(id, p) => {
                self.projects.insert(id, p);
            }
            Row::User(id, u) => {
                self.users.insert(id, u);
            }
            Row::Group(id, g) => {
                self.groups.insert(id, g);
            }
            Row::Role(id, r) => {
                self.roles.insert(id, r);
            }
            Row::Grant(g, on) => {
                self.grants.insert(g, on);
            }
            Row::Member(g, u, on) => {
                self.members.insert((g, u), on);
            }
            Row::AppCred(id, a) => {
                self.app_creds.insert(id, a);
            }
        }
    }
}

/// How many recent outcomes a writer can look its record up in.
const RECENT: usize = 4096;

/// The folded directory changes, published once durable.
#[derive(Debug, Default)]
pub struct IdentityRecords {
    state: RwLock<IdentityState>,
    /// The event ids of the last records applied, by version: how a writer
    /// learns whether its record won (not persisted: a writer waits on the
    /// replica it wrote through, while that replica runs).
    applied: RwLock<VecDeque<(u64, Uuid)>>,
}

/// The changes of one batch, not yet published.
#[derive(Debug, Default)]
pub struct Staged {
    /// The state with the batch's records applied (cloned on the first).
    next: Option<IdentityState>,
    applied: Vec<(u64, Uuid)>,
}

impl IdentityRecords {
    /// The directory changes as published now.
    pub fn state(&self) -> parking_lot::RwLockReadGuard<'_, IdentityState> {
        self.state.read()
    }

    pub fn version(&self) -> u64 {
        self.state.read().version
    }

    /// The event id of the record applied at `version`, while remembered.
    pub fn applied_at(&self, version: u64) -> Option<Uuid> {
        self.applied
            .read()
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, id)| *id)
    }

    /// Loads what the projection store holds.
    pub fn load<S: Store>(&self, store: &S) -> Result<(), novalog_store::Error> {
        let mut state = IdentityState::default();
        for (_, row) in store.scan::<Row>(TABLE)? {
            state.load_row(row);
        }
        *self.state.write() = state;
        Ok(())
    }

    /// Folds one directory record into `staged` and its rows into `tx`;
    /// a record that lost its race changes nothing.
    pub fn stage(
        &self,
        tx: &mut Transaction,
        staged: &mut Staged,
        env: &novalog_schemas::Envelope,
        event: &CatalogEvent,
    ) -> Result<(), novalog_store::Error> {
        let next = staged.next.get_or_insert_with(|| self.state.read().clone());
        let version = env.meta.aggregate_version;
        if let Some(rows) = next.evolve(version, event) {
            for row in rows {
                tx.put(TABLE, row.key().as_bytes(), &row)?;
            }
            staged.applied.push((version, env.meta.event_id));
        }
        Ok(())
    }

    /// Publishes what [`IdentityRecords::stage`] staged, once durable.
    pub fn publish(&self, staged: Staged) {
        let Some(next) = staged.next else { return };
        *self.state.write() = next;
        let mut applied = self.applied.write();
        for a in staged.applied {
            if applied.len() == RECENT {
                applied.pop_front();
            }
            applied.push_back(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use novalog_schemas::{Actor, Envelope, Event, Meta};

    use super::*;

    fn env(version: u64, event: CatalogEvent) -> Envelope {
        let mut meta = Meta::origin(
            Uuid::new_v4(),
            "req-1".into(),
            Actor::default(),
            KEY.to_owned(),
        );
        meta.aggregate_version = version;
        Envelope {
            meta,
            event: Event::Catalog(event),
        }
    }

    fn project(id: &str) -> CatalogEvent {
        CatalogEvent::ProjectCreated(Box::new(IdentityProject {
            id: id.into(),
            name: "web".into(),
            domain_id: "default".into(),
            enabled: true,
            ..Default::default()
        }))
    }

    fn fold(records: &IdentityRecords, envs: &[Envelope]) {
        let mut tx = Transaction::new();
        let mut staged = Staged::default();
        for e in envs {
            let Event::Catalog(c) = &e.event else {
                unreachable!()
            };
            records.stage(&mut tx, &mut staged, e, c).unwrap();
        }
        records.publish(staged);
    }

    /// Two writers decided against version 0: the first on the log wins,
    /// the second changes nothing and learns so by its event id.
    #[test]
    fn of_two_records_decided_against_one_version_only_the_first_applies() {
        let r = IdentityRecords::default();
        let (a, b) = (env(1, project("a")), env(1, project("b")));
        fold(&r, &[a.clone(), b.clone()]);
        let s = r.state();
        assert_eq!(s.version, 1);
        assert!(s.projects.contains_key("a") && !s.projects.contains_key("b"));
        assert_eq!(r.applied_at(1), Some(a.meta.event_id));
    }

    /// What a replica stored is what it loads after a restart.
    #[test]
    fn the_stored_rows_load_back_to_the_same_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = novalog_store::RocksStore::open(dir.path(), false).unwrap();
        let r = IdentityRecords::default();
        let mut tx = Transaction::new();
        let mut staged = Staged::default();
        let grant = RoleGrant {
            role_id: "r".into(),
            actor_id: "u".into(),
            actor_is_group: false,
            target_id: "a".into(),
            target_is_domain: false,
            inherited: false,
        };
        for e in [
            env(1, project("a")),
            env(2, CatalogEvent::RoleGranted(Box::new(grant.clone()))),
            env(3, CatalogEvent::RoleRevoked(Box::new(grant))),
        ] {
            let Event::Catalog(c) = &e.event else {
                unreachable!()
            };
            r.stage(&mut tx, &mut staged, &e, c).unwrap();
        }
        store.commit(tx).unwrap();
        r.publish(staged);
        let loaded = IdentityRecords::default();
        loaded.load(&store).unwrap();
        assert_eq!(*loaded.state(), *r.state());
        assert_eq!(loaded.version(), 3);
    }

    #[test]
    fn deletions_are_remembered_as_tombstones() {
        let r = IdentityRecords::default();
        fold(
            &r,
            &[
                env(1, project("a")),
                env(
                    2,
                    CatalogEvent::ProjectDeleted {
                        project_id: "a".into(),
                    },
                ),
            ],
        );
        assert_eq!(r.state().projects.get("a"), Some(&None));
        assert_eq!(r.version(), 2);
    }
}
