//! Nova's default policy for the routes served here (nova/policies/*.py):
//! project members act on their own project's servers, administrators on
//! everything, and a few rules are administrator-only.

use crate::auth::Context;
use crate::error::ApiError;

/// A policy rule, named as in Nova's policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    ServersCreate,
    ServersIndex,
    ServersDetail,
    ServersShow,
    ServersDelete,
    /// `all_tenants` on `GET /servers`.
    ServersIndexAllTenants,
    /// `all_tenants` on `GET /servers/detail`.
    ServersDetailAllTenants,
    /// The `OS-EXT-SRV-ATTR:*` attributes of a server.
    ExtendedServerAttributes,
    /// A server's `host_status` (2.16).
    ServersShowHostStatus,
    FlavorManageCreate,
    /// A write whose default is Nova's `PROJECT_MEMBER_OR_ADMIN`, named as
    /// in Nova's policy (`os_compute_api:servers:reboot`, ...): a caller
    /// with only the reader role is refused.
    OwnerOrAdmin(&'static str),
    /// A read whose default is Nova's `PROJECT_READER_OR_ADMIN`
    /// (`os_compute_api:os-instance-actions:list`, ...).
    ReaderOrAdmin(&'static str),
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::ServersCreate => "os_compute_api:servers:create",
            Rule::ServersIndex => "os_compute_api:servers:index",
            Rule::ServersDetail => "os_compute_api:servers:detail",
            Rule::ServersShow => "os_compute_api:servers:show",
            Rule::ServersDelete => "os_compute_api:servers:delete",
            Rule::ServersIndexAllTenants => "os_compute_api:servers:index:get_all_tenants",
            Rule::ServersDetailAllTenants => "os_compute_api:servers:detail:get_all_tenants",
            Rule::ExtendedServerAttributes => "os_compute_api:os-extended-server-attributes",
            Rule::ServersShowHostStatus => "os_compute_api:servers:show:host_status",
            Rule::FlavorManageCreate => "os_compute_api:os-flavor-manage:create",
            Rule::OwnerOrAdmin(name) | Rule::ReaderOrAdmin(name) => name,
        }
    }

    fn admin_only(self) -> bool {
        matches!(
            self,
            Rule::ServersIndexAllTenants
                | Rule::ServersDetailAllTenants
                | Rule::ExtendedServerAttributes
                | Rule::ServersShowHostStatus
                | Rule::FlavorManageCreate
        )
    }
}

/// Whether `ctx` may do `rule`, on an object of `target_project` when there
/// is one (None: the caller's own project).
pub fn allowed(ctx: &Context, rule: Rule, target_project: Option<&str>) -> bool {
    if ctx.is_admin {
        return true;
    }
    if rule.admin_only() {
        return false;
    }
    // Nova's PROJECT_MEMBER: the reader role alone does not write.
    if matches!(rule, Rule::OwnerOrAdmin(_))
        && ctx.roles.iter().any(|r| r == "reader")
        && !ctx.roles.iter().any(|r| r == "member")
    {
        return false;
    }
    target_project.is_none_or(|p| p == ctx.project_id)
}

/// [`allowed`], as Nova's 403 when not.
pub fn authorize(ctx: &Context, rule: Rule, target_project: Option<&str>) -> Result<(), ApiError> {
    if allowed(ctx, rule, target_project) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "Policy doesn't allow {} to be performed.",
            rule.name()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::noauth2;

    #[test]
    fn members_act_on_their_own_project_only() {
        let alice = noauth2("alice:p1").unwrap();
        assert!(allowed(&alice, Rule::ServersDelete, Some("p1")));
        assert!(!allowed(&alice, Rule::ServersDelete, Some("p2")));
        assert!(allowed(&alice, Rule::ServersCreate, None));
        assert!(!allowed(&alice, Rule::ServersDetailAllTenants, None));
        assert!(!allowed(&alice, Rule::ExtendedServerAttributes, Some("p1")));
    }

    #[test]
    fn admin_may_do_everything() {
        let admin = noauth2("admin").unwrap();
        for rule in [
            Rule::FlavorManageCreate,
            Rule::ServersIndexAllTenants,
            Rule::ExtendedServerAttributes,
            Rule::ServersDelete,
        ] {
            assert!(allowed(&admin, rule, Some("someone-else")));
        }
    }

    #[test]
    fn readers_read_but_do_not_write() {
        let reader = Context::new("r", "p1", vec!["reader".into()]);
        let read = Rule::ReaderOrAdmin("os_compute_api:os-instance-actions:list");
        let write = Rule::OwnerOrAdmin("os_compute_api:servers:reboot");
        assert!(allowed(&reader, read, Some("p1")));
        assert!(!allowed(&reader, read, Some("p2")));
        assert!(!allowed(&reader, write, Some("p1")));
        let member = noauth2("alice:p1").unwrap();
        assert!(allowed(&member, write, Some("p1")));
    }

    #[test]
    fn refusal_is_novas_403() {
        let bob = noauth2("bob").unwrap();
        let e = authorize(&bob, Rule::FlavorManageCreate, None).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::FORBIDDEN);
        assert_eq!(
            e.message,
            "Policy doesn't allow os_compute_api:os-flavor-manage:create to be performed."
        );
    }
}
