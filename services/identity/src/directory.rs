//! Who exists: the users, projects and roles of domain `Default`, built
//! from `[identity]` at startup. Passwords are hashed here and the clear
//! text dropped; nothing else in the service sees them.

use std::collections::BTreeMap;

use novalog_runtime::config::IdentityOptions;
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::IdentityError;

/// The only domain (keystone's bootstrap domain).
pub const DOMAIN_ID: &str = "default";
pub const DOMAIN_NAME: &str = "Default";

/// Keystone's bootstrap roles, each implying the next: an admin is also a
/// member and a reader, a member also a reader.
const IMPLIED: [(&str, &str); 2] = [("admin", "member"), ("member", "reader")];

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    /// The project a token is scoped to when the request names no scope.
    pub default_project_id: Option<String>,
    /// Role names held, by project id.
    assignments: BTreeMap<String, Vec<String>>,
    password: PasswordHash,
}

impl User {
    /// The projects this user holds a role on.
    pub fn project_ids(&self) -> impl Iterator<Item = &str> {
        self.assignments.keys().map(String::as_str)
    }
}

/// PBKDF2-HMAC-SHA256 of a password with its own random salt.
#[derive(Clone)]
struct PasswordHash {
    salt: [u8; 16],
    rounds: u32,
    hash: [u8; 32],
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

impl PasswordHash {
    fn new(password: &str, rounds: u32) -> Self {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        PasswordHash {
            salt,
            rounds,
            hash: derive(password, &salt, rounds),
        }
    }

    fn verify(&self, password: &str) -> bool {
        let candidate = derive(password, &self.salt, self.rounds);
        candidate.ct_eq(&self.hash).into()
    }
}

fn derive(password: &str, salt: &[u8], rounds: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, rounds, &mut out);
    out
}

/// How a request names a user or a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Id(String),
    Name(String),
}

/// Every user, project and role, by id.
#[derive(Debug)]
pub struct Directory {
    users: BTreeMap<String, User>,
    projects: BTreeMap<String, Project>,
    roles: BTreeMap<String, Role>,
    /// Checked against when the user is unknown, so that an unknown user
    /// costs as much time as a wrong password.
    decoy: PasswordHash,
}

impl Directory {
    /// Builds the directory from `[identity]`: projects and roles named by
    /// users exist implicitly; user names must be unique and non-empty.
    pub fn from_options(opts: &IdentityOptions) -> Result<Directory, IdentityError> {
        let mut projects = BTreeMap::new();
        let mut roles = BTreeMap::new();
        let mut add_project = |name: &str| {
            let id = stable_id("project", name);
            projects.entry(id.clone()).or_insert(Project {
                id: id.clone(),
                name: name.to_owned(),
            });
            id
        };
        let mut add_role = |name: &str| {
            let id = stable_id("role", name);
            roles.entry(id.clone()).or_insert(Role {
                id,
                name: name.to_owned(),
            });
        };
        for p in &opts.projects {
            if p.trim().is_empty() {
                return Err(IdentityError::Config("a project has an empty name".into()));
            }
            add_project(p);
        }
        for r in &opts.roles {
            if r.trim().is_empty() {
                return Err(IdentityError::Config("a role has an empty name".into()));
            }
            add_role(r);
        }
        let mut users = BTreeMap::new();
        for u in &opts.users {
            if u.name.trim().is_empty() {
                return Err(IdentityError::Config("a user has an empty name".into()));
            }
            let id = stable_id("user", &u.name);
            if users.contains_key(&id) {
                return Err(IdentityError::Config(format!(
                    "user {:?} is configured twice",
                    u.name
                )));
            }
            let mut assignments = BTreeMap::new();
            let default_project_id = if u.project.is_empty() {
                None
            } else {
                let project_id = add_project(&u.project);
                for r in &u.roles {
                    add_role(r);
                }
                assignments.insert(project_id.clone(), u.roles.clone());
                Some(project_id)
            };
            users.insert(
                id.clone(),
                User {
                    id,
                    name: u.name.clone(),
                    default_project_id,
                    assignments,
                    password: PasswordHash::new(&u.password, opts.password_hash_rounds),
                },
            );
        }
        Ok(Directory {
            users,
            projects,
            roles,
            decoy: PasswordHash::new("", opts.password_hash_rounds),
        })
    }

    pub fn user(&self, r: &Ref) -> Option<&User> {
        match r {
            Ref::Id(id) => self.users.get(id),
            Ref::Name(name) => self.users.values().find(|u| &u.name == name),
        }
    }

    pub fn project(&self, r: &Ref) -> Option<&Project> {
        match r {
            Ref::Id(id) => self.projects.get(id),
            Ref::Name(name) => self.projects.values().find(|p| &p.name == name),
        }
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    pub fn projects(&self) -> impl Iterator<Item = &Project> {
        self.projects.values()
    }

    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    pub fn role_by_name(&self, name: &str) -> Option<&Role> {
        self.roles.values().find(|r| r.name == name)
    }

    /// The user if the password is theirs. Takes the time of one hash
    /// whether or not the user exists.
    pub fn check_password(&self, user: &Ref, password: &str) -> Option<&User> {
        match self.user(user) {
            Some(u) if u.password.verify(password) => Some(u),
            Some(_) => None,
            None => {
                self.decoy.verify(password);
                None
            }
        }
    }

    /// The user's effective role names on a project, implied roles
    /// included (admin ⇒ member ⇒ reader, when those roles exist); empty
    /// when the user has no access to it.
    pub fn roles_on(&self, user: &User, project_id: &str) -> Vec<String> {
        let mut roles: Vec<String> = user
            .assignments
            .get(project_id)
            .cloned()
            .unwrap_or_default();
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
}

#[cfg(test)]
mod tests {
    use novalog_runtime::config::IdentityUser;

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
        let admin = d
            .check_password(&Ref::Name("admin".into()), "admin")
            .unwrap();
        assert_eq!(admin.id, stable_id("user", "admin"));
        assert_eq!(admin.id.len(), 32);
        assert_eq!(
            admin.default_project_id.as_deref(),
            Some(stable_id("project", "admin").as_str())
        );
        assert!(
            d.check_password(&Ref::Name("admin".into()), "nope")
                .is_none()
        );
        assert!(d.check_password(&Ref::Name("nobody".into()), "x").is_none());
        assert!(
            d.check_password(&Ref::Id(admin.id.clone()), "admin")
                .is_some()
        );
        let demo = d.user(&Ref::Name("demo".into())).unwrap();
        assert!(
            d.check_password(&Ref::Id(demo.id.clone()), "demo")
                .is_some()
        );
    }

    #[test]
    fn roles_imply_lesser_roles() {
        let d = Directory::from_options(&options()).unwrap();
        let admin = d.user(&Ref::Name("admin".into())).unwrap();
        let admin_project = stable_id("project", "admin");
        assert_eq!(
            d.roles_on(admin, &admin_project),
            vec!["admin", "member", "reader"]
        );
        let demo = d.user(&Ref::Name("demo".into())).unwrap();
        assert_eq!(
            d.roles_on(demo, &stable_id("project", "demo")),
            vec!["member", "reader"]
        );
        assert!(d.roles_on(demo, &admin_project).is_empty());
    }

    #[test]
    fn a_reader_user_and_extra_projects_can_be_configured() {
        let mut o = options();
        o.projects = vec!["ops".into()];
        o.users.push(IdentityUser {
            name: "auditor".into(),
            password: "s3cret".into(),
            project: "demo".into(),
            roles: vec!["reader".into()],
        });
        let d = Directory::from_options(&o).unwrap();
        let auditor = d
            .check_password(&Ref::Name("auditor".into()), "s3cret")
            .unwrap();
        assert_eq!(
            d.roles_on(auditor, &stable_id("project", "demo")),
            vec!["reader"]
        );
        assert!(d.project(&Ref::Name("ops".into())).is_some());
        assert_eq!(d.roles().count(), 3);

        o.users.push(o.users[0].clone());
        assert!(Directory::from_options(&o).is_err(), "duplicate user");
    }
}
