//! Who exists: domains, projects, users, groups, roles, role grants and
//! application credentials. The configured ones (`[identity]`, domain
//! `Default`) are the bootstrap; what the admin API changed since is
//! folded from the log ([`crate::records`]) and laid over it. Readers take
//! a [`View`], a consistent snapshot of both, rebuilt only when a change
//! is published. Passwords and secrets are kept only hashed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use novalog_runtime::config::IdentityOptions;
use novalog_schemas::identity::{
    ApplicationCredential, IdentityDomain, IdentityGroup, IdentityProject, IdentityRole,
    IdentityUser, RoleGrant,
};
use parking_lot::RwLock;
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::IdentityError;
use crate::records::{IdentityRecords, IdentityState};

/// Keystone's bootstrap domain.
pub const DOMAIN_ID: &str = "default";
pub const DOMAIN_NAME: &str = "Default";

/// Keystone's bootstrap roles, each implying the next: an admin is also a
/// member and a reader, a member also a reader (and keystone's `manager`
/// implies `member`).
const IMPLIED: [(&str, &str); 4] = [
    ("admin", "manager"),
    ("admin", "member"),
    ("manager", "member"),
    ("member", "reader"),
];

/// A stable keystone-style id (32 hex digits) for a named thing, the same
/// on every start and in every API process.
pub fn stable_id(kind: &str, name: &str) -> String {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("novalog/identity/{kind}/{name}").as_bytes(),
    )
    .simple()
    .to_string()
}

/// A fresh keystone-style id.
pub fn new_id() -> String {
    Uuid::new_v4().simple().to_string()
}

const SCHEME: &str = "pbkdf2-sha256";

/// A password or secret hashed with PBKDF2-HMAC-SHA256 and its own random
/// salt: `pbkdf2-sha256$rounds$salt$hash` (base64). Slow on purpose.
pub fn hash_secret(secret: &str, rounds: u32) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let hash = derive(secret, &salt, rounds);
    format!(
        "{SCHEME}${rounds}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(hash)
    )
}

/// Whether `secret` is the one `hash` was made of (in constant time once
/// derived). A malformed or empty hash matches nothing.
pub fn verify_secret(hash: &str, secret: &str) -> bool {
    let mut parts = hash.split('$');
    let (Some(SCHEME), Some(rounds), Some(salt), Some(expected), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(rounds), Ok(salt), Ok(expected)) = (
        rounds.parse::<u32>(),
        STANDARD_NO_PAD.decode(salt),
        STANDARD_NO_PAD.decode(expected),
    ) else {
        return false;
    };
    if rounds == 0 {
        return false;
    }
    derive(secret, &salt, rounds).ct_eq(&expected[..]).into()
}

fn derive(password: &str, salt: &[u8], rounds: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, rounds, &mut out);
    out
}

/// How a request names a user, a project or a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Id(String),
    Name(String),
}

/// The directory at one instant: bootstrap and changes laid together,
/// with nothing deleted in it and no grant, membership or application
/// credential left naming something deleted.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The version of the changes this view includes.
    pub version: u64,
    pub domains: BTreeMap<String, IdentityDomain>,
    pub projects: BTreeMap<String, IdentityProject>,
    pub users: BTreeMap<String, IdentityUser>,
    pub groups: BTreeMap<String, IdentityGroup>,
    pub roles: BTreeMap<String, IdentityRole>,
    pub grants: BTreeSet<RoleGrant>,
    /// (group id, user id).
    pub members: BTreeSet<(String, String)>,
    pub app_creds: BTreeMap<String, ApplicationCredential>,
}

fn lay<T: Clone>(base: &mut BTreeMap<String, T>, changes: &BTreeMap<String, Option<T>>) {
    for (id, v) in changes {
        match v {
            Some(v) => base.insert(id.clone(), v.clone()),
            None => base.remove(id),
        };
    }
}

impl View {
    /// `self` with `changes` laid over it.
    fn with(mut self, changes: &IdentityState) -> View {
        self.version = changes.version;
        lay(&mut self.domains, &changes.domains);
        lay(&mut self.projects, &changes.projects);
        lay(&mut self.users, &changes.users);
        lay(&mut self.groups, &changes.groups);
        lay(&mut self.roles, &changes.roles);
        lay(&mut self.app_creds, &changes.app_creds);
        for (g, on) in &changes.grants {
            if *on {
                self.grants.insert(g.clone());
            } else {
                self.grants.remove(g);
            }
        }
        for (m, on) in &changes.members {
            if *on {
                self.members.insert(m.clone());
            } else {
                self.members.remove(m);
            }
        }
        // What a deletion leaves naming the deleted is gone with it, as
        // keystone deletes it (ids are never reused).
        let domains = &self.domains;
        self.projects
            .retain(|_, p| domains.contains_key(&p.domain_id));
        self.users.retain(|_, u| domains.contains_key(&u.domain_id));
        self.groups
            .retain(|_, g| domains.contains_key(&g.domain_id));
        let grants = std::mem::take(&mut self.grants);
        self.grants = grants
            .into_iter()
            .filter(|g| {
                self.roles.contains_key(&g.role_id)
                    && if g.actor_is_group {
                        self.groups.contains_key(&g.actor_id)
                    } else {
                        self.users.contains_key(&g.actor_id)
                    }
                    && if g.target_is_domain {
                        self.domains.contains_key(&g.target_id)
                    } else {
                        self.projects.contains_key(&g.target_id)
                    }
            })
            .collect();
        let members = std::mem::take(&mut self.members);
        self.members = members
            .into_iter()
            .filter(|(g, u)| self.groups.contains_key(g) && self.users.contains_key(u))
            .collect();
        let (users, projects) = (&self.users, &self.projects);
        self.app_creds
            .retain(|_, a| users.contains_key(&a.user_id) && projects.contains_key(&a.project_id));
        self
    }

    pub fn domain(&self, r: &Ref) -> Option<&IdentityDomain> {
        match r {
            Ref::Id(id) => self.domains.get(id),
            Ref::Name(n) => self.domains.values().find(|d| &d.name == n),
        }
    }

    /// A user by id, or by name in `domain_id`.
    pub fn user(&self, r: &Ref, domain_id: &str) -> Option<&IdentityUser> {
        match r {
            Ref::Id(id) => self.users.get(id),
            Ref::Name(n) => self
                .users
                .values()
                .find(|u| &u.name == n && u.domain_id == domain_id),
        }
    }

    /// A project by id, or by name in `domain_id`.
    pub fn project(&self, r: &Ref, domain_id: &str) -> Option<&IdentityProject> {
        match r {
            Ref::Id(id) => self.projects.get(id),
            Ref::Name(n) => self
                .projects
                .values()
                .find(|p| &p.name == n && p.domain_id == domain_id),
        }
    }

    pub fn role_by_name(&self, name: &str) -> Option<&IdentityRole> {
        self.roles.values().find(|r| r.name == name)
    }

    fn domain_enabled(&self, id: &str) -> bool {
        self.domains.get(id).is_some_and(|d| d.enabled)
    }

    /// Whether the user may authenticate: enabled, in an enabled domain.
    pub fn user_usable(&self, u: &IdentityUser) -> bool {
        u.enabled && self.domain_enabled(&u.domain_id)
    }

    /// Whether tokens may be scoped to the project: it and its domain are
    /// enabled.
    pub fn project_usable(&self, p: &IdentityProject) -> bool {
        p.enabled && self.domain_enabled(&p.domain_id)
    }

    /// The groups a user is in.
    pub fn groups_of<'a>(&'a self, user_id: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.members
            .iter()
            .filter(move |(_, u)| u == user_id)
            .map(|(g, _)| g.as_str())
    }

    /// The grants that give a user roles: their own and their groups'.
    pub fn grants_of<'a>(&'a self, user_id: &'a str) -> impl Iterator<Item = &'a RoleGrant> + 'a {
        let groups: BTreeSet<&str> = self.groups_of(user_id).collect();
        self.grants.iter().filter(move |g| {
            if g.actor_is_group {
                groups.contains(g.actor_id.as_str())
            } else {
                g.actor_id == user_id
            }
        })
    }

    /// The role ids a user holds on a project directly or through a
    /// group, before implication: grants on the project itself, and
    /// grants inherited to the projects of its domain (keystone's
    /// OS-INHERIT; a project's own inherited grants reach only projects
    /// under it, and projects here have none).
    pub fn assigned_role_ids(&self, user_id: &str, project_id: &str) -> BTreeSet<String> {
        let domain_id = self.projects.get(project_id).map(|p| p.domain_id.as_str());
        self.grants_of(user_id)
            .filter(|g| grant_reaches_project(g, project_id, domain_id))
            .map(|g| g.role_id.clone())
            .collect()
    }

    /// The role ids a user holds on a domain itself (not inherited),
    /// directly or through a group, before implication.
    pub fn assigned_domain_role_ids(&self, user_id: &str, domain_id: &str) -> BTreeSet<String> {
        self.grants_of(user_id)
            .filter(|g| g.target_is_domain && !g.inherited && g.target_id == domain_id)
            .map(|g| g.role_id.clone())
            .collect()
    }

    /// Role names with those they imply (admin ⇒ manager ⇒ member ⇒
    /// reader, where those roles exist), in the order first met.
    pub fn implied(&self, mut roles: Vec<String>) -> Vec<String> {
        let mut i = 0;
        while i < roles.len() {
            for (prior, implied) in IMPLIED {
                if roles[i] == prior
                    && !roles.iter().any(|r| r == implied)
                    && self.role_by_name(implied).is_some()
                {
                    roles.push(implied.to_owned());
                }
            }
            i += 1;
        }
        roles
    }

    /// The user's effective role names on a project, implied roles
    /// included; empty when the user, the project or either's domain is
    /// disabled, or the user has no role there.
    pub fn roles_on(&self, user_id: &str, project_id: &str) -> Vec<String> {
        let usable = self.users.get(user_id).is_some_and(|u| self.user_usable(u))
            && self
                .projects
                .get(project_id)
                .is_some_and(|p| self.project_usable(p));
        if !usable {
            return Vec::new();
        }
        self.role_names(&self.assigned_role_ids(user_id, project_id))
    }

    /// The user's effective role names on a domain (a domain-scoped
    /// token's), implied roles included; empty when the user or the
    /// domain is disabled, or the user has no role on the domain itself.
    pub fn roles_on_domain(&self, user_id: &str, domain_id: &str) -> Vec<String> {
        let usable = self.users.get(user_id).is_some_and(|u| self.user_usable(u))
            && self.domain_enabled(domain_id);
        if !usable {
            return Vec::new();
        }
        self.role_names(&self.assigned_domain_role_ids(user_id, domain_id))
    }

    /// Role ids as names in keystone's bootstrap order (so tokens list
    /// admin first), with the roles they imply.
    fn role_names(&self, ids: &BTreeSet<String>) -> Vec<String> {
        let mut names: Vec<String> = ids
            .iter()
            .filter_map(|id| self.roles.get(id))
            .map(|r| r.name.clone())
            .collect();
        let rank = |n: &str| {
            ["admin", "manager", "member", "reader"]
                .iter()
                .position(|r| *r == n)
                .unwrap_or(usize::MAX)
        };
        names.sort_by_key(|n| rank(n));
        self.implied(names)
    }

    /// The domains a user may scope a token to.
    pub fn domain_ids_of(&self, user_id: &str) -> BTreeSet<String> {
        let targets: BTreeSet<String> = self
            .grants_of(user_id)
            .filter(|g| g.target_is_domain && !g.inherited)
            .map(|g| g.target_id.clone())
            .collect();
        targets
            .into_iter()
            .filter(|d| !self.roles_on_domain(user_id, d).is_empty())
            .collect()
    }

    /// The projects a user may scope a token to.
    pub fn project_ids_of(&self, user_id: &str) -> BTreeSet<String> {
        let mut targets = BTreeSet::new();
        for g in self.grants_of(user_id) {
            match (g.target_is_domain, g.inherited) {
                (false, false) => {
                    targets.insert(g.target_id.clone());
                }
                (true, true) => targets.extend(
                    self.projects
                        .values()
                        .filter(|p| p.domain_id == g.target_id)
                        .map(|p| p.id.clone()),
                ),
                _ => {}
            }
        }
        targets
            .into_iter()
            .filter(|p| !self.roles_on(user_id, p).is_empty())
            .collect()
    }
}

/// Whether a grant gives its role on a project (of `domain_id`): one on
/// the project itself, or one on its domain inherited to its projects.
pub fn grant_reaches_project(g: &RoleGrant, project_id: &str, domain_id: Option<&str>) -> bool {
    match (g.target_is_domain, g.inherited) {
        (false, false) => g.target_id == project_id,
        (true, true) => domain_id == Some(g.target_id.as_str()),
        _ => false,
    }
}

/// The bootstrap directory and the changes folded over it.
#[derive(Debug)]
pub struct Directory {
    bootstrap: View,
    /// The changes, folded by the mounting service's projection consumer.
    pub records: Arc<IdentityRecords>,
    /// The view at `records`' last version, rebuilt when it moves.
    cache: RwLock<Arc<View>>,
    /// Checked against when the user is unknown, so that an unknown user
    /// costs as much time as a wrong password.
    decoy: String,
    /// PBKDF2 rounds for new passwords and secrets.
    pub rounds: u32,
}

impl Directory {
    /// Builds the bootstrap from `[identity]`: domain `Default`; projects
    /// and roles named by users exist implicitly; user names must be
    /// unique and non-empty.
    pub fn from_options(opts: &IdentityOptions) -> Result<Directory, IdentityError> {
        let mut b = View::default();
        b.domains.insert(
            DOMAIN_ID.to_owned(),
            IdentityDomain {
                id: DOMAIN_ID.to_owned(),
                name: DOMAIN_NAME.to_owned(),
                description: "The default domain".to_owned(),
                enabled: true,
            },
        );
        fn add_project(b: &mut View, name: &str) -> String {
            let id = stable_id("project", name);
            b.projects
                .entry(id.clone())
                .or_insert_with(|| IdentityProject {
                    id: id.clone(),
                    name: name.to_owned(),
                    domain_id: DOMAIN_ID.to_owned(),
                    description: String::new(),
                    enabled: true,
                    tags: Vec::new(),
                });
            id
        }
        fn add_role(b: &mut View, name: &str) -> String {
            let id = stable_id("role", name);
            b.roles.entry(id.clone()).or_insert_with(|| IdentityRole {
                id: id.clone(),
                name: name.to_owned(),
                description: String::new(),
            });
            id
        }
        for p in &opts.projects {
            if p.trim().is_empty() {
                return Err(IdentityError::Config("a project has an empty name".into()));
            }
            add_project(&mut b, p);
        }
        for r in &opts.roles {
            if r.trim().is_empty() {
                return Err(IdentityError::Config("a role has an empty name".into()));
            }
            add_role(&mut b, r);
        }
        for u in &opts.users {
            if u.name.trim().is_empty() {
                return Err(IdentityError::Config("a user has an empty name".into()));
            }
            let id = stable_id("user", &u.name);
            if b.users.contains_key(&id) {
                return Err(IdentityError::Config(format!(
                    "user {:?} is configured twice",
                    u.name
                )));
            }
            let default_project_id = if u.project.is_empty() {
                String::new()
            } else {
                let project_id = add_project(&mut b, &u.project);
                for r in &u.roles {
                    let role_id = add_role(&mut b, r);
                    b.grants.insert(RoleGrant {
                        role_id,
                        actor_id: id.clone(),
                        actor_is_group: false,
                        target_id: project_id.clone(),
                        target_is_domain: false,
                        inherited: false,
                    });
                }
                project_id
            };
            b.users.insert(
                id.clone(),
                IdentityUser {
                    id,
                    name: u.name.clone(),
                    domain_id: DOMAIN_ID.to_owned(),
                    description: String::new(),
                    enabled: true,
                    default_project_id,
                    email: String::new(),
                    password_hash: hash_secret(&u.password, opts.password_hash_rounds),
                    token_epoch: 0,
                },
            );
        }
        Ok(Directory {
            cache: RwLock::new(Arc::new(b.clone())),
            bootstrap: b,
            records: Arc::default(),
            decoy: hash_secret("", opts.password_hash_rounds),
            rounds: opts.password_hash_rounds,
        })
    }

    /// The directory now.
    pub fn view(&self) -> Arc<View> {
        let version = self.records.version();
        let cached = self.cache.read().clone();
        // Every published change moves the version, so it names the view.
        if cached.version == version {
            return cached;
        }
        let view = Arc::new(self.bootstrap.clone().with(&self.records.state()));
        *self.cache.write() = view.clone();
        view
    }

    /// Whether `password` is the user's; takes the time of one hash
    /// whether or not there is such a user.
    pub fn check_password(&self, user: Option<&IdentityUser>, password: &str) -> bool {
        match user {
            Some(u) => verify_secret(&u.password_hash, password),
            None => {
                verify_secret(&self.decoy, password);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use novalog_runtime::config::IdentityUser as ConfigUser;

    use super::*;

    fn options() -> IdentityOptions {
        IdentityOptions {
            password_hash_rounds: 10,
            ..IdentityOptions::default()
        }
    }

    #[test]
    fn default_users_have_stable_ids_and_checked_passwords() {
        let d = Directory::from_options(&options()).unwrap();
        let v = d.view();
        let admin = v.user(&Ref::Name("admin".into()), DOMAIN_ID).unwrap();
        assert_eq!(admin.id, stable_id("user", "admin"));
        assert_eq!(admin.id.len(), 32);
        assert_eq!(admin.default_project_id, stable_id("project", "admin"));
        assert!(d.check_password(Some(admin), "admin"));
        assert!(!d.check_password(Some(admin), "nope"));
        assert!(!d.check_password(None, "x"));
        assert!(admin.password_hash.starts_with("pbkdf2-sha256$10$"));
        assert!(!admin.password_hash.contains("admin"));
    }

    #[test]
    fn secrets_verify_only_against_their_own_hash() {
        let h = hash_secret("s3cret", 5);
        assert!(verify_secret(&h, "s3cret"));
        assert!(!verify_secret(&h, "s3cret2"));
        assert!(!verify_secret("", ""));
        assert!(!verify_secret("pbkdf2-sha256$0$AA$AA", ""));
        assert_ne!(h, hash_secret("s3cret", 5), "salted");
    }

    #[test]
    fn roles_imply_lesser_roles() {
        let d = Directory::from_options(&options()).unwrap();
        let v = d.view();
        let admin = stable_id("user", "admin");
        let admin_project = stable_id("project", "admin");
        assert_eq!(
            v.roles_on(&admin, &admin_project),
            vec!["admin", "member", "reader"]
        );
        let demo = stable_id("user", "demo");
        assert_eq!(
            v.roles_on(&demo, &stable_id("project", "demo")),
            vec!["member", "reader"]
        );
        assert!(v.roles_on(&demo, &admin_project).is_empty());
    }

    #[test]
    fn a_reader_user_and_extra_projects_can_be_configured() {
        let mut o = options();
        o.projects = vec!["ops".into()];
        o.users.push(ConfigUser {
            name: "auditor".into(),
            password: "s3cret".into(),
            project: "demo".into(),
            roles: vec!["reader".into()],
        });
        let d = Directory::from_options(&o).unwrap();
        let v = d.view();
        let auditor = v.user(&Ref::Name("auditor".into()), DOMAIN_ID).unwrap();
        assert!(d.check_password(Some(auditor), "s3cret"));
        assert_eq!(
            v.roles_on(&auditor.id, &stable_id("project", "demo")),
            vec!["reader"]
        );
        assert!(v.project(&Ref::Name("ops".into()), DOMAIN_ID).is_some());
        assert_eq!(v.roles.len(), 3);

        o.users.push(o.users[0].clone());
        assert!(Directory::from_options(&o).is_err(), "duplicate user");
    }

    #[test]
    fn grants_through_groups_count_and_disabled_things_grant_nothing() {
        let d = Directory::from_options(&options()).unwrap();
        let mut changes = IdentityState {
            version: 3,
            ..Default::default()
        };
        let (demo, project) = (stable_id("user", "demo"), stable_id("project", "admin"));
        changes.groups.insert(
            "g".into(),
            Some(IdentityGroup {
                id: "g".into(),
                name: "ops".into(),
                domain_id: DOMAIN_ID.into(),
                description: String::new(),
            }),
        );
        changes.members.insert(("g".into(), demo.clone()), true);
        changes.grants.insert(
            RoleGrant {
                role_id: stable_id("role", "reader"),
                actor_id: "g".into(),
                actor_is_group: true,
                target_id: project.clone(),
                target_is_domain: false,
                inherited: false,
            },
            true,
        );
        let v = d.bootstrap.clone().with(&changes);
        assert_eq!(v.roles_on(&demo, &project), vec!["reader"]);
        assert!(v.project_ids_of(&demo).contains(&project));

        let mut disabled = changes.clone();
        let mut p = v.projects[&project].clone();
        p.enabled = false;
        disabled.projects.insert(project.clone(), Some(p));
        let v2 = d.bootstrap.clone().with(&disabled);
        assert!(v2.roles_on(&demo, &project).is_empty());

        // The group deleted: its grant goes with it.
        let mut gone = changes;
        gone.groups.insert("g".into(), None);
        let v3 = d.bootstrap.clone().with(&gone);
        assert!(v3.roles_on(&demo, &project).is_empty());
        assert!(v3.grants.iter().all(|g| g.actor_id != "g"));
    }

    /// Keystone's OS-INHERIT: a domain grant inherited to projects gives
    /// the role on every project of the domain (a new one too) and not on
    /// the domain itself; a plain domain grant is the other way round.
    #[test]
    fn inherited_domain_grants_reach_the_domains_projects_only() {
        let d = Directory::from_options(&options()).unwrap();
        let demo = stable_id("user", "demo");
        let admin_project = stable_id("project", "admin");
        let grant = |inherited| RoleGrant {
            role_id: stable_id("role", "reader"),
            actor_id: demo.clone(),
            actor_is_group: false,
            target_id: DOMAIN_ID.into(),
            target_is_domain: true,
            inherited,
        };
        let mut changes = IdentityState {
            version: 1,
            ..Default::default()
        };
        changes.grants.insert(grant(true), true);
        changes.projects.insert(
            "new".into(),
            Some(IdentityProject {
                id: "new".into(),
                name: "new".into(),
                domain_id: DOMAIN_ID.into(),
                enabled: true,
                ..Default::default()
            }),
        );
        let v = d.bootstrap.clone().with(&changes);
        assert_eq!(v.roles_on(&demo, &admin_project), vec!["reader"]);
        assert_eq!(v.roles_on(&demo, "new"), vec!["reader"]);
        assert!(v.project_ids_of(&demo).contains("new"));
        assert!(v.roles_on_domain(&demo, DOMAIN_ID).is_empty());
        assert!(v.domain_ids_of(&demo).is_empty());

        let mut plain = changes.clone();
        plain.grants.insert(grant(true), false);
        plain.grants.insert(grant(false), true);
        let v = d.bootstrap.clone().with(&plain);
        assert!(v.roles_on(&demo, &admin_project).is_empty());
        assert_eq!(v.roles_on_domain(&demo, DOMAIN_ID), vec!["reader"]);
        assert_eq!(
            v.domain_ids_of(&demo).into_iter().collect::<Vec<_>>(),
            vec![DOMAIN_ID]
        );
    }
}
