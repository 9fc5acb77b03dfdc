//! Nova's default policy for the routes served here (nova/policies/*.py):
//! project members act on their own project's servers, administrators on
//! everything, and a few rules are administrator-only.

use axum::body::Body;
use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

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
    /// A rule whose default is Nova's `ADMIN`
    /// (`os_compute_api:os-server-diagnostics`, ...).
    AdminOnly(&'static str),
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
            Rule::OwnerOrAdmin(name) | Rule::ReaderOrAdmin(name) | Rule::AdminOnly(name) => name,
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
                | Rule::AdminOnly(_)
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

/// Whether `ctx` only holds the reader role (neither member nor admin):
/// Nova's `PROJECT_READER` may look but not change anything.
pub fn is_reader_only(ctx: &Context) -> bool {
    !ctx.is_admin && !ctx.roles.iter().any(|r| r == "member")
}

/// The Nova rule a write to a server (or server group) is checked against,
/// from its method, path and, for actions, the action's name.
pub fn write_rule(method: &Method, path: &str, action: Option<&str>) -> Option<String> {
    let rest = path.strip_prefix("/v2.1/")?;
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let rule = match (parts.as_slice(), method.as_str()) {
        (["servers"], "POST") => "servers:create".to_owned(),
        (["servers", _], "PUT") => "servers:update".to_owned(),
        (["servers", _], "DELETE") => "servers:delete".to_owned(),
        (["servers", _, "action"], "POST") => match action.unwrap_or("") {
            "reboot" => "servers:reboot".into(),
            "os-stop" => "servers:stop".into(),
            "os-start" => "servers:start".into(),
            "resize" => "servers:resize".into(),
            "confirmResize" => "servers:confirm_resize".into(),
            "revertResize" => "servers:revert_resize".into(),
            "rebuild" => "servers:rebuild".into(),
            "createImage" => "servers:create_image".into(),
            "pause" | "unpause" => format!("os-pause-server:{}", action.unwrap_or("")),
            "suspend" | "resume" => format!("os-suspend-server:{}", action.unwrap_or("")),
            "lock" | "unlock" => format!("os-lock-server:{}", action.unwrap_or("")),
            "migrate" => "os-migrate-server:migrate".into(),
            "forceDelete" => "os-deferred-delete:force".into(),
            "os-getVNCConsole" => "os-remote-consoles".into(),
            // Removed from Nova: 410 for every caller, no policy of its own.
            "resetNetwork" => return None,
            other => format!("servers:{other}"),
        },
        (["servers", _, "metadata"], "POST") => "server-metadata:create".into(),
        (["servers", _, "metadata"], "PUT") => "server-metadata:update_all".into(),
        (["servers", _, "metadata", _], "PUT") => "server-metadata:update".into(),
        (["servers", _, "metadata", _], "DELETE") => "server-metadata:delete".into(),
        (["servers", _, "tags"], "PUT") => "os-server-tags:update_all".into(),
        (["servers", _, "tags"], "DELETE") => "os-server-tags:delete_all".into(),
        (["servers", _, "tags", _], "PUT") => "os-server-tags:update".into(),
        (["servers", _, "tags", _], "DELETE") => "os-server-tags:delete".into(),
        (["servers", _, "os-server-password"], "DELETE") => "os-server-password:clear".into(),
        (["servers", _, "remote-consoles"], "POST") => "os-remote-consoles".into(),
        (["os-server-groups"], "POST") => "os-server-groups:create".into(),
        (["os-server-groups", _], "DELETE") => "os-server-groups:delete".into(),
        _ => return None,
    };
    Some(format!("os_compute_api:{rule}"))
}

/// Middleware inside authentication: a reader-only caller gets Nova's 403
/// for every write to servers and server groups (the writes members may
/// do). Writes that are administrators' only answer their own 403 in
/// their handlers; keypairs are the user's own whatever the role, as in
/// Nova.
pub async fn read_only(req: Request, next: Next) -> Response {
    let reader = req
        .extensions()
        .get::<Context>()
        .is_some_and(is_reader_only);
    let method = req.method().clone();
    if !reader || method == Method::GET || method == Method::HEAD {
        return next.run(req).await;
    }
    let path = req.uri().path().to_owned();
    let (parts, body) = req.into_parts();
    // Actions are named by the body's only key; the body limit outside
    // this layer bounds what is read.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => return ApiError::too_large().into_response(),
    };
    let action = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.as_object().and_then(|m| m.keys().next().cloned()));
    match write_rule(&method, &path, action.as_deref()) {
        Some(rule) => ApiError::forbidden(format!("Policy doesn't allow {rule} to be performed."))
            .into_response(),
        None => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::noauth2;

    #[test]
    fn readers_are_recognised_and_writes_named() {
        assert!(is_reader_only(&noauth2("reader:p1").unwrap()));
        assert!(!is_reader_only(&noauth2("alice:p1").unwrap()));
        assert!(!is_reader_only(&noauth2("admin").unwrap()));
        let rule = |m: Method, p: &str, a: Option<&str>| write_rule(&m, p, a);
        assert_eq!(
            rule(Method::POST, "/v2.1/servers", None).as_deref(),
            Some("os_compute_api:servers:create")
        );
        assert_eq!(
            rule(Method::POST, "/v2.1/servers/x/action", Some("os-stop")).as_deref(),
            Some("os_compute_api:servers:stop")
        );
        assert_eq!(
            rule(Method::POST, "/v2.1/servers/x/action", Some("pause")).as_deref(),
            Some("os_compute_api:os-pause-server:pause")
        );
        assert_eq!(
            rule(Method::PUT, "/v2.1/servers/x/tags/t", None).as_deref(),
            Some("os_compute_api:os-server-tags:update")
        );
        assert_eq!(rule(Method::POST, "/v2.1/os-keypairs", None), None);
        assert_eq!(rule(Method::POST, "/v2.1/flavors", None), None);
    }

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
