//! Keystone's admin API: domains, projects, users, groups, roles, role
//! grants and assignments, group membership and application credentials.
//! Thin handlers: check the policy ([`crate::policy`]), decide
//! ([`crate::admin`]) against the directory as it is, write the one
//! record through the mounting service's log and answer once this
//! replica has folded it. A record that lost a race to a concurrent
//! change is decided again against the newer directory, so of two
//! concurrent creates of one name one gets 201 and the other 409.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use novalog_request::{BaseUrl, RequestId, query_pairs};
use novalog_schemas::identity::{IdentityProject, RoleGrant};
use novalog_schemas::{CatalogEvent, Envelope, Event, Meta};
use rand::RngCore;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::admin::{self, Refusal};
use crate::directory::{View, hash_secret};
use crate::listing::{self, BadQuery, Field, Query};
use crate::routes::{JsonBody, KeystoneError, Result, RevocationLog, caller, links};
use crate::token::Claims;
use crate::{Identity, now_ms, policy, records, views};

/// What the admin routes work with.
#[derive(Clone)]
struct Admin {
    identity: Arc<Identity>,
    /// Where directory records are written (the `catalog` topic).
    log: Arc<dyn RevocationLog>,
}

/// How many times a write is decided again after losing a race.
const ATTEMPTS: usize = 16;

/// Every admin operation: method, path, summary, policy action and
/// success status (for the API's OpenAPI document).
pub const OPERATIONS: &[(&str, &str, &str, &str, u16)] = &[
    (
        "get",
        "/identity/v3/domains",
        "List domains (?name, ?enabled, ?name__contains etc., ?limit, ?marker)",
        "identity:list_domains",
        200,
    ),
    (
        "post",
        "/identity/v3/domains",
        "Create a domain",
        "identity:create_domain",
        201,
    ),
    (
        "get",
        "/identity/v3/domains/{id}",
        "Show a domain",
        "identity:get_domain",
        200,
    ),
    (
        "patch",
        "/identity/v3/domains/{id}",
        "Update a domain",
        "identity:update_domain",
        200,
    ),
    (
        "delete",
        "/identity/v3/domains/{id}",
        "Delete a disabled domain",
        "identity:delete_domain",
        204,
    ),
    (
        "get",
        "/identity/v3/projects",
        "List projects (?name, ?domain_id, ?enabled, ?name__contains etc., ?limit, ?marker)",
        "identity:list_projects",
        200,
    ),
    (
        "post",
        "/identity/v3/projects",
        "Create a project",
        "identity:create_project",
        201,
    ),
    (
        "get",
        "/identity/v3/projects/{id}",
        "Show a project",
        "identity:get_project",
        200,
    ),
    (
        "patch",
        "/identity/v3/projects/{id}",
        "Update a project",
        "identity:update_project",
        200,
    ),
    (
        "delete",
        "/identity/v3/projects/{id}",
        "Delete a project",
        "identity:delete_project",
        204,
    ),
    (
        "get",
        "/identity/v3/users",
        "List users (?name, ?domain_id, ?enabled, ?name__contains etc., ?limit, ?marker)",
        "identity:list_users",
        200,
    ),
    (
        "post",
        "/identity/v3/users",
        "Create a user",
        "identity:create_user",
        201,
    ),
    (
        "get",
        "/identity/v3/users/{id}",
        "Show a user",
        "identity:get_user",
        200,
    ),
    (
        "patch",
        "/identity/v3/users/{id}",
        "Update a user",
        "identity:update_user",
        200,
    ),
    (
        "delete",
        "/identity/v3/users/{id}",
        "Delete a user",
        "identity:delete_user",
        204,
    ),
    (
        "get",
        "/identity/v3/users/{id}/projects",
        "A user's projects",
        "identity:list_user_projects",
        200,
    ),
    (
        "get",
        "/identity/v3/users/{id}/groups",
        "A user's groups",
        "identity:list_groups_for_user",
        200,
    ),
    (
        "get",
        "/identity/v3/groups",
        "List groups (?name, ?domain_id, ?name__contains etc., ?limit, ?marker)",
        "identity:list_groups",
        200,
    ),
    (
        "post",
        "/identity/v3/groups",
        "Create a group",
        "identity:create_group",
        201,
    ),
    (
        "get",
        "/identity/v3/groups/{id}",
        "Show a group",
        "identity:get_group",
        200,
    ),
    (
        "patch",
        "/identity/v3/groups/{id}",
        "Update a group",
        "identity:update_group",
        200,
    ),
    (
        "delete",
        "/identity/v3/groups/{id}",
        "Delete a group",
        "identity:delete_group",
        204,
    ),
    (
        "get",
        "/identity/v3/groups/{id}/users",
        "A group's users",
        "identity:list_users_in_group",
        200,
    ),
    (
        "get",
        "/identity/v3/groups/{g}/users/{u}",
        "Is the user in the group",
        "identity:check_user_in_group",
        204,
    ),
    (
        "put",
        "/identity/v3/groups/{g}/users/{u}",
        "Add a user to a group",
        "identity:add_user_to_group",
        204,
    ),
    (
        "delete",
        "/identity/v3/groups/{g}/users/{u}",
        "Remove a user from a group",
        "identity:remove_user_from_group",
        204,
    ),
    (
        "get",
        "/identity/v3/roles",
        "List roles (?name, ?name__contains etc., ?limit, ?marker)",
        "identity:list_roles",
        200,
    ),
    (
        "post",
        "/identity/v3/roles",
        "Create a role",
        "identity:create_role",
        201,
    ),
    (
        "get",
        "/identity/v3/roles/{id}",
        "Show a role",
        "identity:get_role",
        200,
    ),
    (
        "patch",
        "/identity/v3/roles/{id}",
        "Update a role",
        "identity:update_role",
        200,
    ),
    (
        "delete",
        "/identity/v3/roles/{id}",
        "Delete a role",
        "identity:delete_role",
        204,
    ),
    (
        "get",
        "/identity/v3/projects/{t}/users/{a}/roles",
        "A user's roles on a project",
        "identity:list_grants",
        200,
    ),
    (
        "get",
        "/identity/v3/projects/{t}/groups/{a}/roles",
        "A group's roles on a project",
        "identity:list_grants",
        200,
    ),
    (
        "get",
        "/identity/v3/domains/{t}/users/{a}/roles",
        "A user's roles on a domain",
        "identity:list_grants",
        200,
    ),
    (
        "get",
        "/identity/v3/domains/{t}/groups/{a}/roles",
        "A group's roles on a domain",
        "identity:list_grants",
        200,
    ),
    (
        "get",
        "/identity/v3/projects/{t}/users/{a}/roles/{r}",
        "Check a user's role on a project",
        "identity:check_grant",
        204,
    ),
    (
        "put",
        "/identity/v3/projects/{t}/users/{a}/roles/{r}",
        "Grant a user a role on a project",
        "identity:create_grant",
        204,
    ),
    (
        "delete",
        "/identity/v3/projects/{t}/users/{a}/roles/{r}",
        "Revoke a user's role on a project",
        "identity:revoke_grant",
        204,
    ),
    (
        "get",
        "/identity/v3/projects/{t}/groups/{a}/roles/{r}",
        "Check a group's role on a project",
        "identity:check_grant",
        204,
    ),
    (
        "put",
        "/identity/v3/projects/{t}/groups/{a}/roles/{r}",
        "Grant a group a role on a project",
        "identity:create_grant",
        204,
    ),
    (
        "delete",
        "/identity/v3/projects/{t}/groups/{a}/roles/{r}",
        "Revoke a group's role on a project",
        "identity:revoke_grant",
        204,
    ),
    (
        "get",
        "/identity/v3/domains/{t}/users/{a}/roles/{r}",
        "Check a user's role on a domain",
        "identity:check_grant",
        204,
    ),
    (
        "put",
        "/identity/v3/domains/{t}/users/{a}/roles/{r}",
        "Grant a user a role on a domain",
        "identity:create_grant",
        204,
    ),
    (
        "delete",
        "/identity/v3/domains/{t}/users/{a}/roles/{r}",
        "Revoke a user's role on a domain",
        "identity:revoke_grant",
        204,
    ),
    (
        "get",
        "/identity/v3/domains/{t}/groups/{a}/roles/{r}",
        "Check a group's role on a domain",
        "identity:check_grant",
        204,
    ),
    (
        "put",
        "/identity/v3/domains/{t}/groups/{a}/roles/{r}",
        "Grant a group a role on a domain",
        "identity:create_grant",
        204,
    ),
    (
        "delete",
        "/identity/v3/domains/{t}/groups/{a}/roles/{r}",
        "Revoke a group's role on a domain",
        "identity:revoke_grant",
        204,
    ),
    (
        "get",
        "/identity/v3/OS-INHERIT/domains/{t}/users/{a}/roles/inherited_to_projects",
        "A user's roles inherited to a domain's projects",
        "identity:list_grants",
        200,
    ),
    (
        "get",
        "/identity/v3/OS-INHERIT/domains/{t}/groups/{a}/roles/inherited_to_projects",
        "A group's roles inherited to a domain's projects",
        "identity:list_grants",
        200,
    ),
    (
        "get",
        "/identity/v3/OS-INHERIT/domains/{t}/users/{a}/roles/{r}/inherited_to_projects",
        "Check a user's role inherited to a domain's projects",
        "identity:check_grant",
        204,
    ),
    (
        "put",
        "/identity/v3/OS-INHERIT/domains/{t}/users/{a}/roles/{r}/inherited_to_projects",
        "Grant a user's role inherited to a domain's projects",
        "identity:create_grant",
        204,
    ),
    (
        "delete",
        "/identity/v3/OS-INHERIT/domains/{t}/users/{a}/roles/{r}/inherited_to_projects",
        "Revoke a user's role inherited to a domain's projects",
        "identity:revoke_grant",
        204,
    ),
    (
        "get",
        "/identity/v3/OS-INHERIT/domains/{t}/groups/{a}/roles/{r}/inherited_to_projects",
        "Check a group's role inherited to a domain's projects",
        "identity:check_grant",
        204,
    ),
    (
        "put",
        "/identity/v3/OS-INHERIT/domains/{t}/groups/{a}/roles/{r}/inherited_to_projects",
        "Grant a group's role inherited to a domain's projects",
        "identity:create_grant",
        204,
    ),
    (
        "delete",
        "/identity/v3/OS-INHERIT/domains/{t}/groups/{a}/roles/{r}/inherited_to_projects",
        "Revoke a group's role inherited to a domain's projects",
        "identity:revoke_grant",
        204,
    ),
    (
        "get",
        "/identity/v3/OS-INHERIT/projects/{t}/users/{a}/roles/{r}/inherited_to_projects",
        "Check a user's role inherited to a project's projects",
        "identity:check_grant",
        204,
    ),
    (
        "put",
        "/identity/v3/OS-INHERIT/projects/{t}/users/{a}/roles/{r}/inherited_to_projects",
        "Grant a user's role inherited to a project's projects",
        "identity:create_grant",
        204,
    ),
    (
        "delete",
        "/identity/v3/OS-INHERIT/projects/{t}/users/{a}/roles/{r}/inherited_to_projects",
        "Revoke a user's role inherited to a project's projects",
        "identity:revoke_grant",
        204,
    ),
    (
        "get",
        "/identity/v3/OS-INHERIT/projects/{t}/groups/{a}/roles/{r}/inherited_to_projects",
        "Check a group's role inherited to a project's projects",
        "identity:check_grant",
        204,
    ),
    (
        "put",
        "/identity/v3/OS-INHERIT/projects/{t}/groups/{a}/roles/{r}/inherited_to_projects",
        "Grant a group's role inherited to a project's projects",
        "identity:create_grant",
        204,
    ),
    (
        "delete",
        "/identity/v3/OS-INHERIT/projects/{t}/groups/{a}/roles/{r}/inherited_to_projects",
        "Revoke a group's role inherited to a project's projects",
        "identity:revoke_grant",
        204,
    ),
    (
        "post",
        "/identity/v3/users/{id}/password",
        "Change one's own password (revokes the user's tokens)",
        "none",
        204,
    ),
    (
        "get",
        "/identity/v3/role_assignments",
        "List role assignments (?user.id, ?group.id, ?scope.project.id, ?scope.domain.id, ?scope.OS-INHERIT:inherited_to, ?role.id, ?effective, ?include_names)",
        "identity:list_role_assignments",
        200,
    ),
    (
        "get",
        "/identity/v3/users/{id}/application_credentials",
        "A user's application credentials (?name)",
        "identity:list_application_credentials",
        200,
    ),
    (
        "post",
        "/identity/v3/users/{id}/application_credentials",
        "Create an application credential",
        "identity:create_application_credential",
        201,
    ),
    (
        "get",
        "/identity/v3/users/{id}/application_credentials/{cred}",
        "Show an application credential",
        "identity:get_application_credential",
        200,
    ),
    (
        "delete",
        "/identity/v3/users/{id}/application_credentials/{cred}",
        "Delete an application credential",
        "identity:delete_application_credential",
        204,
    ),
];

/// The admin routes, writing through `log`; merged beside
/// [`crate::routes::router`].
pub fn router(identity: Arc<Identity>, log: Arc<dyn RevocationLog>) -> Router {
    let v3 = |p: &str| format!("/identity/v3{p}");
    Router::new()
        .route(&v3("/domains"), get(list_domains).post(create_domain))
        .route(
            &v3("/domains/{id}"),
            get(show_domain).patch(update_domain).delete(delete_domain),
        )
        .route(&v3("/projects"), get(list_projects).post(create_project))
        .route(
            &v3("/projects/{id}"),
            get(show_project)
                .patch(update_project)
                .delete(delete_project),
        )
        .route(&v3("/users"), get(list_users).post(create_user))
        .route(
            &v3("/users/{id}"),
            get(show_user).patch(update_user).delete(delete_user),
        )
        .route(&v3("/users/{id}/projects"), get(user_projects))
        .route(&v3("/users/{id}/groups"), get(user_groups))
        .route(&v3("/groups"), get(list_groups).post(create_group))
        .route(
            &v3("/groups/{id}"),
            get(show_group).patch(update_group).delete(delete_group),
        )
        .route(&v3("/groups/{id}/users"), get(group_users))
        .route(
            &v3("/groups/{g}/users/{u}"),
            get(check_member).put(add_member).delete(remove_member),
        )
        .route(&v3("/roles"), get(list_roles).post(create_role))
        .route(
            &v3("/roles/{id}"),
            get(show_role).patch(update_role).delete(delete_role),
        )
        .route(&v3("/projects/{t}/users/{a}/roles"), get(list_grants))
        .route(&v3("/projects/{t}/groups/{a}/roles"), get(list_grants))
        .route(&v3("/domains/{t}/users/{a}/roles"), get(list_grants))
        .route(&v3("/domains/{t}/groups/{a}/roles"), get(list_grants))
        .route(
            &v3("/projects/{t}/users/{a}/roles/{r}"),
            get(check_grant).put(create_grant).delete(revoke_grant),
        )
        .route(
            &v3("/projects/{t}/groups/{a}/roles/{r}"),
            get(check_grant).put(create_grant).delete(revoke_grant),
        )
        .route(
            &v3("/domains/{t}/users/{a}/roles/{r}"),
            get(check_grant).put(create_grant).delete(revoke_grant),
        )
        .route(
            &v3("/domains/{t}/groups/{a}/roles/{r}"),
            get(check_grant).put(create_grant).delete(revoke_grant),
        )
        .route(
            &v3("/OS-INHERIT/domains/{t}/users/{a}/roles/inherited_to_projects"),
            get(list_grants),
        )
        .route(
            &v3("/OS-INHERIT/domains/{t}/groups/{a}/roles/inherited_to_projects"),
            get(list_grants),
        )
        .route(
            &v3("/OS-INHERIT/domains/{t}/users/{a}/roles/{r}/inherited_to_projects"),
            get(check_grant).put(create_grant).delete(revoke_grant),
        )
        .route(
            &v3("/OS-INHERIT/domains/{t}/groups/{a}/roles/{r}/inherited_to_projects"),
            get(check_grant).put(create_grant).delete(revoke_grant),
        )
        .route(
            &v3("/OS-INHERIT/projects/{t}/users/{a}/roles/{r}/inherited_to_projects"),
            get(check_grant).put(create_grant).delete(revoke_grant),
        )
        .route(
            &v3("/OS-INHERIT/projects/{t}/groups/{a}/roles/{r}/inherited_to_projects"),
            get(check_grant).put(create_grant).delete(revoke_grant),
        )
        .route(&v3("/users/{id}/password"), post(change_password))
        .route(&v3("/role_assignments"), get(role_assignments))
        .route(
            &v3("/users/{id}/application_credentials"),
            get(list_app_creds).post(create_app_cred),
        )
        .route(
            &v3("/users/{id}/application_credentials/{cred}"),
            get(show_app_cred).delete(delete_app_cred),
        )
        .with_state(Admin { identity, log })
}

impl From<Refusal> for KeystoneError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::BadRequest(m) => KeystoneError::new(StatusCode::BAD_REQUEST, m),
            Refusal::Forbidden(m) => KeystoneError::new(StatusCode::FORBIDDEN, m),
            Refusal::NotFound(m) => KeystoneError::new(StatusCode::NOT_FOUND, m),
            Refusal::Conflict(m) => KeystoneError::new(StatusCode::CONFLICT, m),
        }
    }
}

impl Admin {
    /// The caller, if `action` is allowed them on `target` (the path's
    /// user or project id): 401 without a valid token, 403 otherwise.
    fn authorize(&self, headers: &HeaderMap, action: &str, target: Option<&str>) -> Result<Claims> {
        let c = caller(&self.identity, headers)?;
        if !policy::allows(action, &c, target) {
            return Err(KeystoneError::new(
                StatusCode::FORBIDDEN,
                format!("You are not authorized to perform the requested action: {action}."),
            ));
        }
        Ok(c)
    }

    fn base(&self, l: &BaseUrl) -> String {
        links(&self.identity, l)
    }

    /// Decides against the directory now and writes the record, again
    /// while it loses races; `None`: nothing to write (already so).
    async fn write(
        &self,
        caller: &Claims,
        rid: &RequestId,
        mut decide: impl FnMut(&View) -> Result<Option<CatalogEvent>, Refusal>,
    ) -> Result<Option<CatalogEvent>> {
        let records = &self.identity.directory.records;
        for _ in 0..ATTEMPTS {
            let view = self.identity.directory.view();
            let Some(event) = decide(&view)? else {
                return Ok(None);
            };
            let version = view.version + 1;
            let id = Uuid::new_v4();
            let mut meta = Meta::origin(
                id,
                rid.0.clone(),
                novalog_schemas::Actor {
                    user_id: caller.user_id.clone(),
                    project_id: caller.project_id.clone().unwrap_or_default(),
                    roles: caller.roles.clone(),
                },
                records::KEY.to_owned(),
            );
            meta.aggregate_version = version;
            let env = Envelope {
                meta,
                event: Event::Catalog(event.clone()),
            };
            self.log
                .record(records::KEY.as_bytes().to_vec(), env)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "identity change not recorded");
                    unavailable()
                })?;
            if records.applied_at(version) == Some(id) {
                tracing::info!(record = event.type_name(), version, "identity changed");
                return Ok(Some(event));
            }
        }
        Err(unavailable())
    }
}

fn unavailable() -> KeystoneError {
    KeystoneError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "The service is temporarily unable to record the change; try again later.",
    )
}

fn once(r: Result<CatalogEvent, Refusal>) -> Result<Option<CatalogEvent>, Refusal> {
    r.map(Some)
}

/// Keystone's query filters: `name`, `enabled`, `domain_id`, ...
struct Filters(Vec<(String, String)>);

impl Filters {
    fn new(q: &Option<String>) -> Self {
        Filters(query_pairs(q.as_deref()))
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    fn has(&self, k: &str) -> bool {
        self.0.iter().any(|(key, v)| {
            key == k && !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no")
        })
    }
    fn matches(&self, k: &str, v: &str) -> bool {
        self.get(k).is_none_or(|want| want == v)
    }
}

fn created(key: &str, body: Value) -> Response {
    (StatusCode::CREATED, Json(json!({ key: body }))).into_response()
}

fn ok(key: &str, body: Value) -> Json<Value> {
    Json(json!({ key: body }))
}

fn list(key: &str, items: Vec<Value>, base: &str, path: &str) -> Json<Value> {
    Json(json!({ key: items, "links": views::list_links(base, path) }))
}

/// A list query (filters, `limit`, `marker`), or keystone's 400.
fn query(q: &Option<String>) -> Result<Query> {
    Query::new(query_pairs(q.as_deref()))
        .map_err(|BadQuery(m)| KeystoneError::new(StatusCode::BAD_REQUEST, m))
}

/// A filtered, paged collection of `(id, body)` in id order.
fn paged(key: &str, q: &Query, items: Vec<(String, Value)>, base: &str, path: &str) -> Json<Value> {
    Json(listing::collection(key, q, items, base, path))
}

/// The domain a domain-scoped caller reads, when it is not an admin:
/// keystone's `role:reader and domain_id:%(target.domain_id)s`.
fn reader_domain(c: &Claims) -> Option<&str> {
    c.domain_id
        .as_deref()
        .filter(|_| !policy::is_admin(c) && c.roles.iter().any(|r| r == "reader"))
}

/// Where things a caller creates go when the body names no domain: the
/// domain of its token's scope.
fn caller_domain(v: &View, c: &Claims) -> String {
    c.domain_id
        .clone()
        .unwrap_or_else(|| admin::default_domain(v, c.project_id.as_deref()))
}

macro_rules! written {
    ($e:expr, $variant:ident) => {
        match $e {
            Some(CatalogEvent::$variant(x)) => x,
            _ => return Err(unavailable()),
        }
    };
}

// ---- domains ----

async fn list_domains(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    st.authorize(&headers, "identity:list_domains", None)?;
    let f = query(&q)?;
    let (view, base) = (st.identity.directory.view(), st.base(&l));
    let items = view
        .domains
        .values()
        .filter(|d| {
            f.accepts(&[
                ("id", Field::Str(&d.id)),
                ("name", Field::Str(&d.name)),
                ("enabled", Field::Bool(d.enabled)),
            ])
        })
        .map(|d| (d.id.clone(), views::domain(d, &base)))
        .collect();
    Ok(paged("domains", &f, items, &base, "domains"))
}

async fn show_domain(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    st.authorize(&headers, "identity:get_domain", None)?;
    let view = st.identity.directory.view();
    let d = view
        .domains
        .get(&id)
        .ok_or_else(|| not_found("domain", &id))?;
    Ok(ok("domain", views::domain(d, &st.base(&l))))
}

fn not_found(kind: &str, id: &str) -> KeystoneError {
    KeystoneError::new(
        StatusCode::NOT_FOUND,
        format!("Could not find {kind}: {id}."),
    )
}

async fn create_domain(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    rid: RequestId,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let c = st.authorize(&headers, "identity:create_domain", None)?;
    let e = st
        .write(&c, &rid, |v| once(admin::create_domain(v, &body)))
        .await?;
    let d = written!(e, DomainCreated);
    Ok(created("domain", views::domain(&d, &st.base(&l))))
}

async fn update_domain(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    rid: RequestId,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let c = st.authorize(&headers, "identity:update_domain", None)?;
    let e = st
        .write(&c, &rid, |v| once(admin::update_domain(v, &id, &body)))
        .await?;
    let d = written!(e, DomainUpdated);
    Ok(ok("domain", views::domain(&d, &st.base(&l))))
}

async fn delete_domain(
    State(st): State<Admin>,
    headers: HeaderMap,
    rid: RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let c = st.authorize(&headers, "identity:delete_domain", None)?;
    st.write(&c, &rid, |v| once(admin::delete_domain(v, &id)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- projects ----

async fn list_projects(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let c = caller(&st.identity, &headers)?;
    let view = st.identity.directory.view();
    // Keystone lets a user list the projects they hold roles on through
    // `/v3/users/{self}/projects`; `/v3/projects` is the admin's, but
    // openstackclient's name lookups come here as any user, so a
    // non-admin sees their own projects rather than a 403.
    // A domain reader lists its domain's projects.
    let own = view.project_ids_of(&c.user_id);
    let admin = policy::is_admin(&c);
    let domain = reader_domain(&c);
    let f = query(&q)?;
    let base = st.base(&l);
    let items = view
        .projects
        .values()
        .filter(|p| admin || own.contains(&p.id) || domain == Some(p.domain_id.as_str()))
        .filter(|p| f.accepts(&project_fields(p)))
        .map(|p| (p.id.clone(), views::project(p, &base)))
        .collect();
    Ok(paged("projects", &f, items, &base, "projects"))
}

/// What projects are filtered on (keystone's `domain_id`, `enabled`,
/// `name`, `parent_id`, `is_domain`; a project's parent is its domain).
fn project_fields(p: &IdentityProject) -> [(&'static str, Field<'_>); 6] {
    [
        ("id", Field::Str(&p.id)),
        ("name", Field::Str(&p.name)),
        ("domain_id", Field::Str(&p.domain_id)),
        ("enabled", Field::Bool(p.enabled)),
        ("parent_id", Field::Str(&p.domain_id)),
        ("is_domain", Field::Bool(false)),
    ]
}

async fn show_project(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let c = caller(&st.identity, &headers)?;
    let view = st.identity.directory.view();
    let in_domain = view
        .projects
        .get(&id)
        .is_some_and(|p| reader_domain(&c) == Some(p.domain_id.as_str()));
    if !in_domain {
        st.authorize(&headers, "identity:get_project", Some(&id))?;
    }
    let p = view
        .projects
        .get(&id)
        .ok_or_else(|| not_found("project", &id))?;
    Ok(ok("project", views::project(p, &st.base(&l))))
}

async fn create_project(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    rid: RequestId,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let c = st.authorize(&headers, "identity:create_project", None)?;
    let e = st
        .write(&c, &rid, |v| {
            once(admin::create_project(v, &body, &caller_domain(v, &c)))
        })
        .await?;
    let p = written!(e, ProjectCreated);
    Ok(created("project", views::project(&p, &st.base(&l))))
}

async fn update_project(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    rid: RequestId,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let c = st.authorize(&headers, "identity:update_project", None)?;
    let e = st
        .write(&c, &rid, |v| once(admin::update_project(v, &id, &body)))
        .await?;
    let p = written!(e, ProjectUpdated);
    Ok(ok("project", views::project(&p, &st.base(&l))))
}

async fn delete_project(
    State(st): State<Admin>,
    headers: HeaderMap,
    rid: RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let c = st.authorize(&headers, "identity:delete_project", None)?;
    st.write(&c, &rid, |v| once(admin::delete_project(v, &id)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- users ----

async fn list_users(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let c = caller(&st.identity, &headers)?;
    // A domain reader lists its domain's users.
    let domain = reader_domain(&c);
    if domain.is_none() {
        st.authorize(&headers, "identity:list_users", None)?;
    }
    let f = query(&q)?;
    let (view, base) = (st.identity.directory.view(), st.base(&l));
    let items = view
        .users
        .values()
        .filter(|u| domain.is_none_or(|d| u.domain_id == d))
        .filter(|u| {
            f.accepts(&[
                ("id", Field::Str(&u.id)),
                ("name", Field::Str(&u.name)),
                ("domain_id", Field::Str(&u.domain_id)),
                ("enabled", Field::Bool(u.enabled)),
                ("email", Field::Str(&u.email)),
            ])
        })
        .map(|u| (u.id.clone(), views::user(u, &base)))
        .collect();
    Ok(paged("users", &f, items, &base, "users"))
}

async fn show_user(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let c = caller(&st.identity, &headers)?;
    let view = st.identity.directory.view();
    let in_domain = view
        .users
        .get(&id)
        .is_some_and(|u| reader_domain(&c) == Some(u.domain_id.as_str()));
    if !in_domain {
        st.authorize(&headers, "identity:get_user", Some(&id))?;
    }
    let u = view.users.get(&id).ok_or_else(|| not_found("user", &id))?;
    Ok(ok("user", views::user(u, &st.base(&l))))
}

/// The password hashed off the runtime (slow on purpose).
async fn hashed(identity: &Identity, password: Option<String>) -> Result<Option<String>> {
    let Some(p) = password else { return Ok(None) };
    let rounds = identity.directory.rounds;
    tokio::task::spawn_blocking(move || hash_secret(&p, rounds))
        .await
        .map(Some)
        .map_err(|_| KeystoneError::new(StatusCode::INTERNAL_SERVER_ERROR, "hashing failed"))
}

async fn create_user(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    rid: RequestId,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let c = st.authorize(&headers, "identity:create_user", None)?;
    let b = admin::user_body(&body)?;
    let hash = hashed(&st.identity, b.password.clone()).await?;
    let e = st
        .write(&c, &rid, |v| {
            once(admin::create_user(
                v,
                &b,
                hash.as_deref(),
                &caller_domain(v, &c),
            ))
        })
        .await?;
    let u = written!(e, UserCreated);
    Ok(created("user", views::user(&u, &st.base(&l))))
}

async fn update_user(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    rid: RequestId,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let c = st.authorize(&headers, "identity:update_user", None)?;
    let b = admin::user_body(&body)?;
    let hash = hashed(&st.identity, b.password.clone()).await?;
    let e = st
        .write(&c, &rid, |v| {
            once(admin::update_user(v, &id, &b, hash.as_deref()))
        })
        .await?;
    let u = written!(e, UserUpdated);
    Ok(ok("user", views::user(&u, &st.base(&l))))
}

async fn delete_user(
    State(st): State<Admin>,
    headers: HeaderMap,
    rid: RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let c = st.authorize(&headers, "identity:delete_user", None)?;
    st.write(&c, &rid, |v| once(admin::delete_user(v, &id)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/users/{id}/projects`.
async fn user_projects(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    st.authorize(&headers, "identity:list_user_projects", Some(&id))?;
    let f = query(&q)?;
    let view = st.identity.directory.view();
    if !view.users.contains_key(&id) {
        return Err(not_found("user", &id));
    }
    let base = st.base(&l);
    let items = view
        .project_ids_of(&id)
        .iter()
        .filter_map(|p| view.projects.get(p))
        .filter(|p| f.accepts(&project_fields(p)))
        .map(|p| (p.id.clone(), views::project(p, &base)))
        .collect();
    Ok(paged(
        "projects",
        &f,
        items,
        &base,
        &format!("users/{id}/projects"),
    ))
}

async fn user_groups(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    st.authorize(&headers, "identity:list_groups_for_user", Some(&id))?;
    let view = st.identity.directory.view();
    if !view.users.contains_key(&id) {
        return Err(not_found("user", &id));
    }
    let base = st.base(&l);
    let items = view
        .groups_of(&id)
        .filter_map(|g| view.groups.get(g))
        .map(|g| views::group(g, &base))
        .collect();
    Ok(list("groups", items, &base, &format!("users/{id}/groups")))
}

// ---- groups ----

async fn list_groups(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    st.authorize(&headers, "identity:list_groups", None)?;
    let f = query(&q)?;
    let (view, base) = (st.identity.directory.view(), st.base(&l));
    let items = view
        .groups
        .values()
        .filter(|g| {
            f.accepts(&[
                ("id", Field::Str(&g.id)),
                ("name", Field::Str(&g.name)),
                ("domain_id", Field::Str(&g.domain_id)),
            ])
        })
        .map(|g| (g.id.clone(), views::group(g, &base)))
        .collect();
    Ok(paged("groups", &f, items, &base, "groups"))
}

async fn show_group(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    st.authorize(&headers, "identity:get_group", None)?;
    let view = st.identity.directory.view();
    let g = view
        .groups
        .get(&id)
        .ok_or_else(|| not_found("group", &id))?;
    Ok(ok("group", views::group(g, &st.base(&l))))
}

async fn create_group(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    rid: RequestId,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let c = st.authorize(&headers, "identity:create_group", None)?;
    let e = st
        .write(&c, &rid, |v| {
            once(admin::create_group(v, &body, &caller_domain(v, &c)))
        })
        .await?;
    let g = written!(e, GroupCreated);
    Ok(created("group", views::group(&g, &st.base(&l))))
}

async fn update_group(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    rid: RequestId,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let c = st.authorize(&headers, "identity:update_group", None)?;
    let e = st
        .write(&c, &rid, |v| once(admin::update_group(v, &id, &body)))
        .await?;
    let g = written!(e, GroupUpdated);
    Ok(ok("group", views::group(&g, &st.base(&l))))
}

async fn delete_group(
    State(st): State<Admin>,
    headers: HeaderMap,
    rid: RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let c = st.authorize(&headers, "identity:delete_group", None)?;
    st.write(&c, &rid, |v| once(admin::delete_group(v, &id)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn group_users(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    st.authorize(&headers, "identity:list_users_in_group", None)?;
    let view = st.identity.directory.view();
    if !view.groups.contains_key(&id) {
        return Err(not_found("group", &id));
    }
    let base = st.base(&l);
    let items = view
        .members
        .iter()
        .filter(|(g, _)| *g == id)
        .filter_map(|(_, u)| view.users.get(u))
        .map(|u| views::user(u, &base))
        .collect();
    Ok(list("users", items, &base, &format!("groups/{id}/users")))
}

async fn check_member(
    State(st): State<Admin>,
    headers: HeaderMap,
    Path((g, u)): Path<(String, String)>,
) -> Result<StatusCode> {
    st.authorize(&headers, "identity:check_user_in_group", None)?;
    admin::check_member(&st.identity.directory.view(), &g, &u)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_member(
    State(st): State<Admin>,
    headers: HeaderMap,
    rid: RequestId,
    Path((g, u)): Path<(String, String)>,
) -> Result<StatusCode> {
    let c = st.authorize(&headers, "identity:add_user_to_group", None)?;
    st.write(&c, &rid, |v| admin::add_member(v, &g, &u)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_member(
    State(st): State<Admin>,
    headers: HeaderMap,
    rid: RequestId,
    Path((g, u)): Path<(String, String)>,
) -> Result<StatusCode> {
    let c = st.authorize(&headers, "identity:remove_user_from_group", None)?;
    st.write(&c, &rid, |v| once(admin::remove_member(v, &g, &u)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- roles ----

async fn list_roles(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    st.authorize(&headers, "identity:list_roles", None)?;
    let f = query(&q)?;
    let (view, base) = (st.identity.directory.view(), st.base(&l));
    let items = view
        .roles
        .values()
        .filter(|r| {
            f.accepts(&[
                ("id", Field::Str(&r.id)),
                ("name", Field::Str(&r.name)),
                // Keystone's global roles have no domain: a domain filter
                // finds none.
                ("domain_id", Field::Null),
            ])
        })
        .map(|r| (r.id.clone(), views::role(r, &base)))
        .collect();
    Ok(paged("roles", &f, items, &base, "roles"))
}

async fn show_role(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    st.authorize(&headers, "identity:get_role", None)?;
    let view = st.identity.directory.view();
    let r = view.roles.get(&id).ok_or_else(|| not_found("role", &id))?;
    Ok(ok("role", views::role(r, &st.base(&l))))
}

async fn create_role(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    rid: RequestId,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let c = st.authorize(&headers, "identity:create_role", None)?;
    let e = st
        .write(&c, &rid, |v| once(admin::create_role(v, &body)))
        .await?;
    let r = written!(e, RoleCreated);
    Ok(created("role", views::role(&r, &st.base(&l))))
}

async fn update_role(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    rid: RequestId,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let c = st.authorize(&headers, "identity:update_role", None)?;
    let e = st
        .write(&c, &rid, |v| once(admin::update_role(v, &id, &body)))
        .await?;
    let r = written!(e, RoleUpdated);
    Ok(ok("role", views::role(&r, &st.base(&l))))
}

async fn delete_role(
    State(st): State<Admin>,
    headers: HeaderMap,
    rid: RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let c = st.authorize(&headers, "identity:delete_role", None)?;
    st.write(&c, &rid, |v| once(admin::delete_role(v, &id)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- grants ----

/// The grant a `/{projects|domains}/{t}/{users|groups}/{a}/roles[/{r}]`
/// path names (`r` empty when it names none); under `/OS-INHERIT/` with
/// `/inherited_to_projects` after it, the inherited grant.
fn grant_of(uri: &Uri) -> Result<RoleGrant> {
    let path = uri.path();
    let (path, inherited) = match path.strip_suffix("/inherited_to_projects") {
        Some(p) if p.contains("/OS-INHERIT/") => (p, true),
        _ => (path, false),
    };
    let parts: Vec<&str> = path.split('/').collect();
    let at = parts
        .iter()
        .rposition(|p| *p == "roles")
        .filter(|i| *i >= 4)
        .ok_or_else(|| KeystoneError::new(StatusCode::NOT_FOUND, "Not Found"))?;
    // Ids are keystone's hex: nothing to decode.
    let decode = |s: &str| s.to_owned();
    Ok(RoleGrant {
        role_id: parts.get(at + 1).map(|r| decode(r)).unwrap_or_default(),
        actor_id: decode(parts[at - 1]),
        actor_is_group: parts[at - 2] == "groups",
        target_id: decode(parts[at - 3]),
        target_is_domain: parts[at - 4] == "domains",
        inherited,
    })
}

async fn list_grants(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    uri: Uri,
) -> Result<Json<Value>> {
    let g = grant_of(&uri)?;
    st.authorize(&headers, "identity:list_grants", None)?;
    let view = st.identity.directory.view();
    // The parts but the role must exist.
    let any_role = view.roles.keys().next().cloned().unwrap_or_default();
    admin::check_grant_parts(
        &view,
        &RoleGrant {
            role_id: any_role,
            ..g.clone()
        },
    )?;
    let base = st.base(&l);
    let items = view
        .grants
        .iter()
        .filter(|x| {
            x.actor_id == g.actor_id
                && x.actor_is_group == g.actor_is_group
                && x.target_id == g.target_id
                && x.target_is_domain == g.target_is_domain
                && x.inherited == g.inherited
        })
        .filter_map(|x| view.roles.get(&x.role_id))
        .map(|r| views::role(r, &base))
        .collect();
    let path = uri.path().split("/identity/v3/").nth(1).unwrap_or_default();
    Ok(list("roles", items, &base, path))
}

async fn check_grant(State(st): State<Admin>, headers: HeaderMap, uri: Uri) -> Result<StatusCode> {
    let g = grant_of(&uri)?;
    st.authorize(&headers, "identity:check_grant", None)?;
    admin::check_grant(&st.identity.directory.view(), &g)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_grant(
    State(st): State<Admin>,
    headers: HeaderMap,
    rid: RequestId,
    uri: Uri,
) -> Result<StatusCode> {
    let g = grant_of(&uri)?;
    let c = st.authorize(&headers, "identity:create_grant", None)?;
    st.write(&c, &rid, |v| admin::grant(v, g.clone())).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke_grant(
    State(st): State<Admin>,
    headers: HeaderMap,
    rid: RequestId,
    uri: Uri,
) -> Result<StatusCode> {
    let g = grant_of(&uri)?;
    let c = st.authorize(&headers, "identity:revoke_grant", None)?;
    st.write(&c, &rid, |v| once(admin::revoke(v, g.clone())))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- role assignments ----

/// One row of `GET /v3/role_assignments`.
struct Assignment<'a> {
    grant: &'a RoleGrant,
    /// The role shown (an implied one under `effective`).
    role_id: String,
    /// The member a group grant is shown for under `effective`.
    user_id: Option<&'a str>,
    /// The role that implied `role_id`.
    prior: Option<String>,
    /// Under `effective`, the project an inherited grant is shown on.
    project_id: Option<&'a str>,
}

impl Assignment<'_> {
    /// The scope shown: `(is a domain, id)`.
    fn target(&self) -> (bool, &str) {
        match self.project_id {
            Some(p) => (false, p),
            None => (self.grant.target_is_domain, &self.grant.target_id),
        }
    }
}

/// `GET /v3/role_assignments` with keystone's filters: `user.id`,
/// `group.id`, `scope.project.id`, `scope.domain.id`,
/// `scope.OS-INHERIT:inherited_to`, `role.id`, `effective` (group grants
/// as their members', grants inherited to a domain's projects as on each
/// of them, implied roles added) and `include_names`.
async fn role_assignments(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    st.authorize(&headers, "identity:list_role_assignments", None)?;
    let f = Filters::new(&q);
    let effective = f.has("effective");
    let names = f.has("include_names");
    if effective && f.get("group.id").is_some() {
        return Err(KeystoneError::new(
            StatusCode::BAD_REQUEST,
            "Combining effective and group filter will always result in an empty list.",
        ));
    }
    let view = st.identity.directory.view();
    let base = st.base(&l);
    let mut rows: Vec<Assignment<'_>> = Vec::new();
    for g in &view.grants {
        // Under `effective` an inherited grant shows on the projects it
        // reaches (a domain's; a project has none under it), not on its
        // target.
        let targets: Vec<Option<&str>> = match (effective && g.inherited, g.target_is_domain) {
            (false, _) => vec![None],
            (true, true) => view
                .projects
                .values()
                .filter(|p| p.domain_id == g.target_id)
                .map(|p| Some(p.id.as_str()))
                .collect(),
            (true, false) => Vec::new(),
        };
        let users: Vec<Option<&str>> = if effective && g.actor_is_group {
            view.members
                .iter()
                .filter(|(grp, _)| *grp == g.actor_id)
                .map(|(_, u)| Some(u.as_str()))
                .collect()
        } else {
            vec![(!g.actor_is_group).then_some(g.actor_id.as_str())]
        };
        for project_id in &targets {
            for user_id in &users {
                rows.push(Assignment {
                    grant: g,
                    role_id: g.role_id.clone(),
                    user_id: *user_id,
                    prior: None,
                    project_id: *project_id,
                });
            }
        }
    }
    if effective {
        let mut implied = Vec::new();
        for r in &rows {
            let Some(role) = view.roles.get(&r.role_id) else {
                continue;
            };
            for name in view.implied(vec![role.name.clone()]).into_iter().skip(1) {
                if let Some(i) = view.role_by_name(&name) {
                    implied.push(Assignment {
                        grant: r.grant,
                        role_id: i.id.clone(),
                        user_id: r.user_id,
                        prior: Some(role.id.clone()),
                        project_id: r.project_id,
                    });
                }
            }
        }
        rows.extend(implied);
        let mut seen = std::collections::BTreeSet::new();
        rows.retain(|r| {
            let (is_domain, target) = r.target();
            seen.insert((
                r.role_id.clone(),
                r.user_id.map(str::to_owned),
                target.to_owned(),
                is_domain,
                r.grant.actor_is_group,
                r.grant.actor_id.clone(),
            ))
        });
    }
    let inherited_only = f
        .get("scope.OS-INHERIT:inherited_to")
        .map(|v| v == "projects");
    let items: Vec<Value> = rows
        .iter()
        .filter(|r| f.matches("role.id", &r.role_id))
        .filter(|r| {
            f.get("user.id")
                .is_none_or(|u| r.user_id == Some(u) && (effective || !r.grant.actor_is_group))
        })
        .filter(|r| {
            f.get("group.id")
                .is_none_or(|g| r.grant.actor_is_group && r.grant.actor_id == g)
        })
        .filter(|r| {
            f.get("scope.project.id")
                .is_none_or(|p| r.target() == (false, p))
        })
        .filter(|r| {
            f.get("scope.domain.id")
                .is_none_or(|d| r.target() == (true, d))
        })
        .filter(|r| {
            inherited_only.is_none_or(|want| want && r.grant.inherited && r.project_id.is_none())
        })
        .map(|r| assignment_view(&view, r, effective, names, &base))
        .collect();
    Ok(list("role_assignments", items, &base, "role_assignments"))
}

fn named_domain(view: &View, id: &str) -> Value {
    view.domains
        .get(id)
        .map(|d| json!({"id": d.id, "name": d.name}))
        .unwrap_or_else(|| json!({"id": id}))
}

fn assignment_view(
    view: &View,
    r: &Assignment<'_>,
    effective: bool,
    names: bool,
    base: &str,
) -> Value {
    let g = r.grant;
    let target_path = if g.target_is_domain {
        "domains"
    } else {
        "projects"
    };
    let (actor_path, actor_id) = if g.actor_is_group {
        ("groups", &g.actor_id)
    } else {
        ("users", &g.actor_id)
    };
    let assignment = if g.inherited {
        format!(
            "{base}/identity/v3/OS-INHERIT/{target_path}/{}/{actor_path}/{actor_id}/roles/{}/inherited_to_projects",
            g.target_id, g.role_id
        )
    } else {
        format!(
            "{base}/identity/v3/{target_path}/{}/{actor_path}/{actor_id}/roles/{}",
            g.target_id, g.role_id
        )
    };
    let mut links = json!({ "assignment": assignment });
    if effective
        && g.actor_is_group
        && let Some(u) = r.user_id
    {
        links["membership"] = json!(format!(
            "{base}/identity/v3/groups/{}/users/{u}",
            g.actor_id
        ));
    }
    if let Some(p) = &r.prior {
        links["prior_role"] = json!(format!("{base}/identity/v3/roles/{p}"));
    }
    let (is_domain, target_id) = r.target();
    let target = if is_domain { "domain" } else { "project" };
    let mut role = json!({"id": r.role_id});
    let mut scope_obj = json!({"id": target_id});
    if names {
        if let Some(x) = view.roles.get(&r.role_id) {
            role["name"] = json!(x.name);
        }
        if is_domain {
            if let Some(d) = view.domains.get(target_id) {
                scope_obj["name"] = json!(d.name);
            }
        } else if let Some(p) = view.projects.get(target_id) {
            scope_obj["name"] = json!(p.name);
            scope_obj["domain"] = named_domain(view, &p.domain_id);
        }
    }
    let mut scope = json!({ target: scope_obj });
    // Keystone marks an inherited grant shown on its own target.
    if g.inherited && r.project_id.is_none() {
        scope["OS-INHERIT:inherited_to"] = json!("projects");
    }
    let mut v = json!({
        "role": role,
        "scope": scope,
        "links": links,
    });
    match r.user_id {
        Some(u) => {
            let mut user = json!({"id": u});
            if names && let Some(x) = view.users.get(u) {
                user["name"] = json!(x.name);
                user["domain"] = named_domain(view, &x.domain_id);
            }
            v["user"] = user;
        }
        None => {
            let mut group = json!({"id": g.actor_id});
            if names && let Some(x) = view.groups.get(&g.actor_id) {
                group["name"] = json!(x.name);
                group["domain"] = named_domain(view, &x.domain_id);
            }
            v["group"] = group;
        }
    }
    v
}

// ---- password ----

/// `POST /v3/users/{id}/password`: a user's own password change
/// (keystone's, unenforced by policy: the original password is the
/// proof). 204; every token the user held is revoked.
async fn change_password(
    State(st): State<Admin>,
    rid: RequestId,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<StatusCode> {
    let change = admin::password_change(&body)?;
    let view = st.identity.directory.view();
    let user = view
        .users
        .get(&id)
        .cloned()
        .ok_or_else(|| not_found("user", &id))?;
    let identity = st.identity.clone();
    let (checked, hash) = tokio::task::spawn_blocking(move || {
        let checked = identity
            .directory
            .check_password(Some(&user), &change.original_password);
        let hash = checked.then(|| hash_secret(&change.password, identity.directory.rounds));
        (checked, hash)
    })
    .await
    .map_err(|_| KeystoneError::new(StatusCode::INTERNAL_SERVER_ERROR, "hashing failed"))?;
    let Some(hash) = hash.filter(|_| checked) else {
        return Err(KeystoneError::new(
            StatusCode::UNAUTHORIZED,
            "Error when changing user password: Invalid user / password",
        ));
    };
    if !view.users.get(&id).is_some_and(|u| view.user_usable(u)) {
        return Err(KeystoneError::new(
            StatusCode::UNAUTHORIZED,
            format!("The account is disabled for user: {id}."),
        ));
    }
    // The change is the user's own: it is the actor on the log.
    let actor = Claims {
        user_id: id.clone(),
        project_id: None,
        domain_id: None,
        roles: Vec::new(),
        methods: vec!["password".into()],
        issued_at: 0,
        expires_at: 0,
        audit_ids: Vec::new(),
        app_cred: None,
        user_epoch: 0,
    };
    st.write(&actor, &rid, |v| {
        once(admin::change_password(v, &id, &hash))
    })
    .await?;
    tracing::info!(user_id = %id, "password changed, tokens revoked");
    Ok(StatusCode::NO_CONTENT)
}

// ---- application credentials ----

async fn list_app_creds(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    st.authorize(&headers, "identity:list_application_credentials", Some(&id))?;
    let view = st.identity.directory.view();
    if !view.users.contains_key(&id) {
        return Err(not_found("user", &id));
    }
    let f = Filters::new(&q);
    let base = st.base(&l);
    let items = view
        .app_creds
        .values()
        .filter(|a| a.user_id == id && f.matches("name", &a.name))
        .map(|a| views::app_cred(&view, a, &base, None))
        .collect();
    Ok(list(
        "application_credentials",
        items,
        &base,
        &format!("users/{id}/application_credentials"),
    ))
}

fn app_cred_not_found(id: &str) -> KeystoneError {
    KeystoneError::new(
        StatusCode::NOT_FOUND,
        format!("Could not find Application Credential: {id}."),
    )
}

async fn show_app_cred(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    Path((id, cred)): Path<(String, String)>,
) -> Result<Json<Value>> {
    st.authorize(&headers, "identity:get_application_credential", Some(&id))?;
    let view = st.identity.directory.view();
    let a = view
        .app_creds
        .get(&cred)
        .filter(|a| a.user_id == id)
        .ok_or_else(|| app_cred_not_found(&cred))?;
    Ok(ok(
        "application_credential",
        views::app_cred(&view, a, &st.base(&l), None),
    ))
}

/// Keystone's generated secrets: 64 random bytes, base64url.
fn new_secret() -> String {
    let mut b = [0u8; 64];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

async fn create_app_cred(
    State(st): State<Admin>,
    headers: HeaderMap,
    l: BaseUrl,
    rid: RequestId,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let c = st.authorize(
        &headers,
        "identity:create_application_credential",
        Some(&id),
    )?;
    let view = st.identity.directory.view();
    // A restricted credential cannot make more of itself.
    if let Some(a) = c.app_cred.as_ref().and_then(|a| view.app_creds.get(a))
        && !a.unrestricted
    {
        return Err(KeystoneError::new(
            StatusCode::FORBIDDEN,
            "Using method 'application_credential' is not allowed for managing additional application credentials.",
        ));
    }
    let project_id = c.project_id.clone().ok_or_else(|| {
        KeystoneError::new(
            StatusCode::FORBIDDEN,
            "An application credential needs a project-scoped token.",
        )
    })?;
    let o = admin::member(&body, "application_credential")?;
    let secret = match o.get("secret") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        None | Some(Value::Null) => new_secret(),
        Some(v) => {
            return Err(admin::invalid("secret", format!("{v} is not a valid secret")).into());
        }
    };
    let hash = hashed(&st.identity, Some(secret.clone()))
        .await?
        .unwrap_or_default();
    let now = now_ms();
    let e = st
        .write(&c, &rid, |v| {
            let roles = v.roles_on(&c.user_id, &project_id);
            let req = admin::AppCredRequest {
                user_id: &c.user_id,
                project_id: &project_id,
                roles: &roles,
                secret_hash: &hash,
                now_ms: now,
            };
            once(admin::create_app_cred(v, &body, &req))
        })
        .await?;
    let a = written!(e, ApplicationCredentialCreated);
    let view = st.identity.directory.view();
    Ok(created(
        "application_credential",
        views::app_cred(&view, &a, &st.base(&l), Some(&secret)),
    ))
}

async fn delete_app_cred(
    State(st): State<Admin>,
    headers: HeaderMap,
    rid: RequestId,
    Path((id, cred)): Path<(String, String)>,
) -> Result<StatusCode> {
    let c = st.authorize(
        &headers,
        "identity:delete_application_credential",
        Some(&id),
    )?;
    let view = st.identity.directory.view();
    if let Some(a) = c.app_cred.as_ref().and_then(|a| view.app_creds.get(a))
        && !a.unrestricted
    {
        return Err(KeystoneError::new(
            StatusCode::FORBIDDEN,
            "Using method 'application_credential' is not allowed for managing additional application credentials.",
        ));
    }
    st.write(&c, &rid, |v| once(admin::delete_app_cred(v, &id, &cred)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
