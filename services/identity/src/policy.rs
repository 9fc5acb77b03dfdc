//! Keystone's default policy for the admin API, as it reads for the
//! project-scoped tokens this service issues: the `admin` role may do
//! everything; `manager`, `member` and `reader` (whose extra powers in
//! keystone need domain- or system-scoped tokens) may only read and
//! manage what is their own: their user, the projects they are scoped to,
//! their groups and their application credentials.

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
/// token's scope, a project or a domain.
pub fn is_admin(claims: &Claims) -> bool {
    (claims.project_id.is_some() || claims.domain_id.is_some())
        && claims.roles.iter().any(|r| r == "admin")
}

/// Whether `caller` may perform `action` on the user or project
/// `target` names (the path's `{user_id}` or `{project_id}`).
pub fn allows(action: &str, caller: &Claims, target: Option<&str>) -> bool {
    let owner = target.is_some_and(|t| t == caller.user_id);
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
        }
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
