//! Keystone's directory as it travels on the log: domains, projects,
//! users, groups, roles, role grants and application credentials (the
//! `catalog` records the identity service writes; see
//! [`crate::CatalogEvent`]). Secrets are only ever hashes here.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IdentityDomain {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IdentityProject {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
    pub enabled: bool,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IdentityUser {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
    pub enabled: bool,
    /// Empty for none.
    pub default_project_id: String,
    /// Empty for none.
    pub email: String,
    /// `pbkdf2-sha256$rounds$salt$hash`; empty: no password (cannot log in
    /// with one).
    pub password_hash: String,
    /// Bumped when every token of the user is revoked (keystone's
    /// revocation by user, on a password change or a disabling): a token
    /// is valid only in the epoch it was issued in.
    #[serde(default)]
    pub token_epoch: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IdentityGroup {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IdentityRole {
    pub id: String,
    pub name: String,
    pub description: String,
}

/// A role held by a user or a group (the actor) on a project or a domain
/// (the target), or, `inherited`, on every project under the target
/// (keystone's OS-INHERIT `inherited_to_projects`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct RoleGrant {
    pub role_id: String,
    pub actor_id: String,
    pub actor_is_group: bool,
    pub target_id: String,
    pub target_is_domain: bool,
    #[serde(default)]
    pub inherited: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApplicationCredential {
    pub id: String,
    pub name: String,
    pub description: String,
    pub user_id: String,
    pub project_id: String,
    /// Hashed as a password is.
    pub secret_hash: String,
    /// Role ids: a subset of the creator's on `project_id` when created.
    pub role_ids: Vec<String>,
    /// 0: never.
    pub expires_at_ms: i64,
    /// May create further application credentials (keystone's
    /// `unrestricted`).
    pub unrestricted: bool,
}
