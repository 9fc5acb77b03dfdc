//! Keystone's default policy for the admin API
//! (keystone/common/policies/*.py): the `admin` role may do everything;
//! `manager`, `member` and `reader` on a project may only read and manage
//! what is their own: their user, the projects they are scoped to, their
//! groups and their application credentials. On a domain-scoped token a
//! `reader` also reads its domain's grants and role assignments, and a
//! `manager` grants and revokes the `manager`, `member` and `reader` roles
//! there ([`grant_allows`]).

use crate::token::Claims;

/// Who an action's target belongs to, when that matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `admin_required`.
    Admin,
    /// Admin, or the caller is the user the path names (`user_id:%(user_id)s`).
    AdminOrOwner,
    /// The caller is the user the path names, admin or not (keystone's
    /// `identity:create_application_credential`).
    Owner,
    /// Admin, or the caller's token is scoped to the project the path names.
    AdminOrScopedProject,
}

/// Every admin action with its rule: one table, read by the routes and
/// by the test that walks each route as each role.
pub const RULES: &[(&str, Rule)] = &[
    ("identity:list_domains", Rule::Admin),
    ("identity:get_domain", Rule::Admin),
    ("identity:create_domain", Rule::Admin),
    ("identity:update_domain", Rule::Admin),
    ("identity:delete_domain", Rule::Admin),
    ("identity:list_projects", Rule::Admin),
    ("identity:get_project", Rule::AdminOrScopedProject),
    // Users and projects are also their domain manager's:
    // [`domain_manager_allows`].
    ("identity:create_project", Rule::Admin),
    ("identity:update_project", Rule::Admin),
    ("identity:delete_project", Rule::Admin),
    ("identity:list_users", Rule::Admin),
    ("identity:get_user", Rule::AdminOrOwner),
    ("identity:create_user", Rule::Admin),
    ("identity:update_user", Rule::Admin),
    ("identity:delete_user", Rule::Admin),
    ("identity:list_user_projects", Rule::AdminOrOwner),
    ("identity:list_groups", Rule::Admin),
    ("identity:get_group", Rule::Admin),
    ("identity:create_group", Rule::Admin),
    ("identity:update_group", Rule::Admin),
    ("identity:delete_group", Rule::Admin),
    ("identity:list_users_in_group", Rule::Admin),
    ("identity:list_groups_for_user", Rule::AdminOrOwner),
    ("identity:add_user_to_group", Rule::Admin),
    ("identity:check_user_in_group", Rule::Admin),
    ("identity:remove_user_from_group", Rule::Admin),
    ("identity:list_roles", Rule::Admin),
    ("identity:get_role", Rule::Admin),
    ("identity:create_role", Rule::Admin),
    ("identity:update_role", Rule::Admin),
    ("identity:delete_role", Rule::Admin),
    // The grants' rules are also a domain reader's and manager's on a
    // domain-scoped token: [`grant_allows`].
    ("identity:list_grants", Rule::Admin),
    ("identity:check_grant", Rule::Admin),
    ("identity:create_grant", Rule::Admin),
    ("identity:revoke_grant", Rule::Admin),
    ("identity:list_role_assignments", Rule::Admin),
    ("identity:list_application_credentials", Rule::AdminOrOwner),
    ("identity:get_application_credential", Rule::AdminOrOwner),
    ("identity:create_application_credential", Rule::Owner),
    ("identity:delete_application_credential", Rule::AdminOrOwner),
];

pub fn rule(action: &str) -> Rule {
    RULES
        .iter()
        .find(|(a, _)| *a == action)
        .map(|(_, r)| *r)
        // An action missing from the table is the most guarded.
        .unwrap_or(Rule::Admin)
}

/// Keystone's `admin_required` (`role:admin`): the admin role on the
/// token's scope, a project, a domain or the system.
pub fn is_admin(claims: &Claims) -> bool {
    (claims.project_id.is_some() || claims.domain_id.is_some() || claims.system)
        && claims.roles.iter().any(|r| r == "admin")
}

/// Keystone's `SYSTEM_READER` (`role:reader and system_scope:all`).
pub fn is_system_reader(claims: &Claims) -> bool {
    claims.system && claims.roles.iter().any(|r| r == "reader")
}

/// The actions a system reader may take besides an admin (keystone's
/// `ADMIN_OR_SYSTEM_READER...` rules): every list, show and check.
fn is_read(action: &str) -> bool {
    ["identity:list_", "identity:get_", "identity:check_"]
        .iter()
        .any(|p| action.starts_with(p))
}

/// The roles a domain manager may grant and revoke (keystone's
/// `domain_managed_target_role`): none above its own.
pub const DOMAIN_MANAGED_ROLES: [&str; 3] = ["manager", "member", "reader"];

/// What keystone's grant rules look at in a grant: the domain of its
/// actor (the user or group), the domain of its target (the project's, or
/// the domain itself) and the role's name. `None` where the thing named
/// does not exist.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrantDomains<'a> {
    pub actor_domain: Option<&'a str>,
    pub target_domain: Option<&'a str>,
    pub role_name: Option<&'a str>,
    /// A grant on the system (no domain reaches it).
    pub system: bool,
}

/// Keystone's grant rules (grant.py): an admin may do anything; on a
/// domain-scoped token whose domain holds both the actor and the target,
/// a `reader` may list and check grants (`GRANTS_DOMAIN_READER`; the roles
/// here are global, so `DOMAIN_MATCHES_ROLE` holds), and a `manager` may
/// also create and revoke grants of [`DOMAIN_MANAGED_ROLES`]
/// (`GRANTS_DOMAIN_MANAGER and rule:domain_managed_target_role`).
pub fn grant_allows(action: &str, caller: &Claims, g: GrantDomains<'_>) -> bool {
    let read = matches!(action, "identity:list_grants" | "identity:check_grant");
    if is_admin(caller) || (read && is_system_reader(caller)) {
        return true;
    }
    let Some(domain) = caller.domain_id.as_deref().filter(|_| !g.system) else {
        return false;
    };
    let has = |role: &str| caller.roles.iter().any(|r| r == role);
    let in_domain = g.actor_domain == Some(domain) && g.target_domain == Some(domain);
    match action {
        "identity:list_grants" | "identity:check_grant" => in_domain && has("reader"),
        "identity:create_grant" | "identity:revoke_grant" => {
            in_domain
                && has("manager")
                && g.role_name
                    .is_some_and(|r| DOMAIN_MANAGED_ROLES.contains(&r))
        }
        _ => false,
    }
}

/// Keystone's `ADMIN_OR_DOMAIN_MANAGER` for users and projects (user.py,
/// project.py): an admin, or a `manager` on a token scoped to the domain
/// the user or project is in (on create, the one it is created in).
pub fn domain_manager_allows(caller: &Claims, target_domain: Option<&str>) -> bool {
    is_admin(caller)
        || (caller.domain_id.is_some()
            && caller.domain_id.as_deref() == target_domain
            && caller.roles.iter().any(|r| r == "manager"))
}

/// The domain whose role assignments a domain-scoped reader lists
/// (keystone's `role:reader and domain_id:%(target.domain_id)s`, the
/// target being the token's domain), when the caller is not an admin.
pub fn assignment_reader_domain(caller: &Claims) -> Option<&str> {
    caller
        .domain_id
        .as_deref()
        .filter(|_| !is_admin(caller) && caller.roles.iter().any(|r| r == "reader"))
}

/// Whether `caller` may perform `action` on the user or project
/// `target` names (the path's `{user_id}` or `{project_id}`).
pub fn allows(action: &str, caller: &Claims, target: Option<&str>) -> bool {
    let owner = target.is_some_and(|t| t == caller.user_id);
    if is_system_reader(caller) && is_read(action) {
        return true;
    }
    match rule(action) {
        Rule::Admin => is_admin(caller),
        Rule::AdminOrOwner => is_admin(caller) || owner,
        Rule::Owner => owner,
        Rule::AdminOrScopedProject => {
            is_admin(caller) || target.is_some_and(|t| caller.project_id.as_deref() == Some(t))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(roles: &[&str]) -> Claims {
        Claims {
            user_id: "u".into(),
            project_id: Some("p".into()),
            domain_id: None,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            methods: vec!["password".into()],
            issued_at: 0,
            expires_at: 1,
            audit_ids: vec!["a".into()],
            app_cred: None,
            user_epoch: 0,
            system: false,
        }
    }

    fn on_domain(domain: &str, roles: &[&str]) -> Claims {
        Claims {
            project_id: None,
            domain_id: Some(domain.into()),
            ..claims(roles)
        }
    }

    #[test]
    fn domain_managers_grant_the_lower_roles_in_their_domain_only() {
        let here = |role| GrantDomains {
            actor_domain: Some("d1"),
            target_domain: Some("d1"),
            role_name: Some(role),
            system: false,
        };
        let manager = on_domain("d1", &["manager", "member", "reader"]);
        for role in DOMAIN_MANAGED_ROLES {
            assert!(grant_allows("identity:create_grant", &manager, here(role)));
            assert!(grant_allows("identity:revoke_grant", &manager, here(role)));
        }
        // Nothing above a manager.
        assert!(!grant_allows(
            "identity:create_grant",
            &manager,
            here("admin")
        ));
        assert!(!grant_allows(
            "identity:create_grant",
            &manager,
            here("custom")
        ));
        // Both the actor and the target in its domain.
        let mixed = GrantDomains {
            target_domain: Some("d2"),
            ..here("member")
        };
        assert!(!grant_allows("identity:create_grant", &manager, mixed));
        let outsider = GrantDomains {
            actor_domain: Some("d2"),
            ..here("member")
        };
        assert!(!grant_allows("identity:check_grant", &manager, outsider));
        assert!(grant_allows(
            "identity:list_grants",
            &manager,
            here("member")
        ));
        // A reader reads, and does not write.
        let reader = on_domain("d1", &["reader"]);
        assert!(grant_allows(
            "identity:check_grant",
            &reader,
            here("member")
        ));
        assert!(grant_allows(
            "identity:list_grants",
            &reader,
            here("member")
        ));
        assert!(!grant_allows(
            "identity:create_grant",
            &reader,
            here("member")
        ));
        assert!(!grant_allows(
            "identity:revoke_grant",
            &reader,
            here("reader")
        ));
        // A project's manager has no domain powers; an admin has all.
        let project_manager = claims(&["manager", "member", "reader"]);
        assert!(!grant_allows(
            "identity:create_grant",
            &project_manager,
            here("member")
        ));
        assert!(!grant_allows(
            "identity:list_grants",
            &project_manager,
            here("member")
        ));
        let admin = claims(&["admin"]);
        assert!(grant_allows("identity:create_grant", &admin, here("admin")));
        assert_eq!(assignment_reader_domain(&reader), Some("d1"));
        // Users and projects: a manager of their domain, or an admin.
        assert!(domain_manager_allows(&manager, Some("d1")));
        assert!(!domain_manager_allows(&manager, Some("d2")));
        assert!(!domain_manager_allows(&manager, None));
        assert!(!domain_manager_allows(&reader, Some("d1")));
        assert!(!domain_manager_allows(&project_manager, Some("d1")));
        assert!(domain_manager_allows(&admin, Some("d2")));
        assert_eq!(assignment_reader_domain(&project_manager), None);
        assert_eq!(assignment_reader_domain(&on_domain("d1", &["admin"])), None);
    }

    #[test]
    fn only_admins_manage_and_others_reach_their_own() {
        let admin = claims(&["admin", "member", "reader"]);
        for role in ["manager", "member", "reader"] {
            let c = claims(&[role]);
            assert!(!allows("identity:create_project", &c, None), "{role}");
            assert!(allows("identity:get_user", &c, Some("u")), "{role}");
            assert!(!allows("identity:get_user", &c, Some("v")), "{role}");
            assert!(allows("identity:get_project", &c, Some("p")), "{role}");
        }
        assert!(allows("identity:create_project", &admin, None));
        assert!(!allows(
            "identity:create_application_credential",
            &admin,
            Some("v")
        ));
        assert!(!allows("identity:unknown", &claims(&["member"]), None));
    }
}
