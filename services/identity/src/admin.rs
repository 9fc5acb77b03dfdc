//! Keystone's admin API decided: each write is a pure function of the
//! directory as it is ([`View`]) and the request, giving the one record
//! to append or why not (keystone's rules: names unique in their domain,
//! references that must exist, an enabled domain not deletable, an
//! application credential's roles a subset of its creator's). No I/O:
//! the routes look up what a decision needs, call it, and write its
//! record; a record that loses a race is decided again.

use novalog_schemas::CatalogEvent;
use novalog_schemas::identity::{
    ApplicationCredential, IdentityDomain, IdentityGroup, IdentityProject, IdentityRole,
    IdentityUser, RoleGrant,
};
use serde_json::{Map, Value};

use crate::directory::{DOMAIN_ID, View, new_id};

/// Why a write is refused, by the HTTP status keystone answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    BadRequest(String),
    Forbidden(String),
    NotFound(String),
    Conflict(String),
}

type Decided<T = CatalogEvent> = Result<T, Refusal>;

pub fn invalid(field: &str, why: impl std::fmt::Display) -> Refusal {
    Refusal::BadRequest(format!("Invalid input for field '{field}': {why}"))
}

fn not_found(kind: &str, id: &str) -> Refusal {
    Refusal::NotFound(format!("Could not find {kind}: {id}."))
}

/// The object under `key` of a request body (`{"project": {...}}`).
pub fn member<'a>(body: &'a Value, key: &str) -> Decided<&'a Map<String, Value>> {
    body.get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| Refusal::BadRequest(format!("Expecting to find {key} in request body.")))
}

fn string(o: &Map<String, Value>, field: &str) -> Decided<Option<String>> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(invalid(field, format!("{v} is not of type 'string'"))),
    }
}

/// A name: 1–255 characters, not only spaces (keystone's `name` schema,
/// projects and users at most 64).
fn name(o: &Map<String, Value>, max: usize) -> Decided<Option<String>> {
    let Some(n) = string(o, "name")? else {
        return Ok(None);
    };
    if n.trim().is_empty() {
        return Err(invalid("name", format!("'{n}' does not match '[\\S]+'")));
    }
    if n.chars().count() > max {
        return Err(invalid("name", format!("'{n}' is too long")));
    }
    Ok(Some(n))
}

fn required_name(o: &Map<String, Value>, max: usize) -> Decided<String> {
    name(o, max)?.ok_or_else(|| invalid("name", "'name' is a required property"))
}

fn boolean(o: &Map<String, Value>, field: &str) -> Decided<Option<bool>> {
    match o.get(field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(invalid(field, format!("{v} is not of type 'boolean'"))),
    }
}

fn tags(o: &Map<String, Value>) -> Decided<Option<Vec<String>>> {
    match o.get("tags") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| match t.as_str() {
                Some(s) if !s.is_empty() && s.len() <= 255 && !s.contains('/') => Ok(s.to_owned()),
                _ => Err(invalid("tags", format!("{t} is not a valid tag"))),
            })
            .collect::<Decided<Vec<_>>>()
            .map(Some),
        Some(v) => Err(invalid("tags", format!("{v} is not of type 'array'"))),
    }
}

/// Fields no update may change.
fn immutable(o: &Map<String, Value>, fields: &[&str]) -> Decided<()> {
    for f in fields {
        if o.contains_key(*f) {
            return Err(invalid(f, format!("'{f}' cannot be updated")));
        }
    }
    Ok(())
}

fn domain_exists(view: &View, id: &str) -> Decided<()> {
    if view.domains.contains_key(id) {
        Ok(())
    } else {
        Err(not_found("domain", id))
    }
}

// ---- domains ----

pub fn create_domain(view: &View, body: &Value) -> Decided {
    let o = member(body, "domain")?;
    let d = IdentityDomain {
        id: new_id(),
        name: required_name(o, 64)?,
        description: string(o, "description")?.unwrap_or_default(),
        enabled: boolean(o, "enabled")?.unwrap_or(true),
    };
    check_domain_name(view, &d)?;
    Ok(CatalogEvent::DomainCreated(Box::new(d)))
}

fn check_domain_name(view: &View, d: &IdentityDomain) -> Decided<()> {
    if view
        .domains
        .values()
        .any(|x| x.id != d.id && x.name.eq_ignore_ascii_case(&d.name))
    {
        return Err(Refusal::Conflict(format!(
            "Conflict occurred attempting to store domain - Duplicate entry found with name {}.",
            d.name
        )));
    }
    Ok(())
}

pub fn update_domain(view: &View, id: &str, body: &Value) -> Decided {
    let o = member(body, "domain")?;
    immutable(o, &["id"])?;
    let mut d = view
        .domains
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("domain", id))?;
    if let Some(n) = name(o, 64)? {
        d.name = n;
    }
    if let Some(desc) = string(o, "description")? {
        d.description = desc;
    }
    if let Some(e) = boolean(o, "enabled")? {
        d.enabled = e;
    }
    check_domain_name(view, &d)?;
    Ok(CatalogEvent::DomainUpdated(Box::new(d)))
}

pub fn delete_domain(view: &View, id: &str) -> Decided {
    let d = view
        .domains
        .get(id)
        .ok_or_else(|| not_found("domain", id))?;
    if d.enabled {
        return Err(Refusal::Forbidden(
            "Cannot delete a domain that is enabled, please disable it first.".into(),
        ));
    }
    Ok(CatalogEvent::DomainDeleted {
        domain_id: id.to_owned(),
    })
}

// ---- projects ----

/// `caller_domain`: where a project goes when the body names no domain
/// (keystone: the domain of the caller's token scope).
pub fn create_project(view: &View, body: &Value, caller_domain: &str) -> Decided {
    let o = member(body, "project")?;
    if boolean(o, "is_domain")? == Some(true) {
        return Err(invalid(
            "is_domain",
            "projects acting as domains are not supported",
        ));
    }
    let domain_id = string(o, "domain_id")?.unwrap_or_else(|| caller_domain.to_owned());
    domain_exists(view, &domain_id)?;
    if let Some(parent) = string(o, "parent_id")?
        && parent != domain_id
    {
        return Err(invalid(
            "parent_id",
            "only projects directly under their domain are supported",
        ));
    }
    let p = IdentityProject {
        id: new_id(),
        name: required_name(o, 64)?,
        domain_id,
        description: string(o, "description")?.unwrap_or_default(),
        enabled: boolean(o, "enabled")?.unwrap_or(true),
        tags: tags(o)?.unwrap_or_default(),
    };
    check_project_name(view, &p)?;
    Ok(CatalogEvent::ProjectCreated(Box::new(p)))
}

fn check_project_name(view: &View, p: &IdentityProject) -> Decided<()> {
    if view
        .projects
        .values()
        .any(|x| x.id != p.id && x.domain_id == p.domain_id && x.name == p.name)
    {
        return Err(Refusal::Conflict(format!(
            "Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain : {}.",
            p.name
        )));
    }
    Ok(())
}

pub fn update_project(view: &View, id: &str, body: &Value) -> Decided {
    let o = member(body, "project")?;
    immutable(o, &["id", "domain_id", "is_domain", "parent_id"])?;
    let mut p = view
        .projects
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("project", id))?;
    if let Some(n) = name(o, 64)? {
        p.name = n;
    }
    if let Some(d) = string(o, "description")? {
        p.description = d;
    }
    if let Some(e) = boolean(o, "enabled")? {
        p.enabled = e;
    }
    if let Some(t) = tags(o)? {
        p.tags = t;
    }
    check_project_name(view, &p)?;
    Ok(CatalogEvent::ProjectUpdated(Box::new(p)))
}

pub fn delete_project(view: &View, id: &str) -> Decided {
    if !view.projects.contains_key(id) {
        return Err(not_found("project", id));
    }
    Ok(CatalogEvent::ProjectDeleted {
        project_id: id.to_owned(),
    })
}

// ---- users ----

/// A user body checked, its password (if any) still in clear: the
/// caller hashes it (slowly, off the runtime) before deciding.
pub struct UserBody<'a> {
    pub fields: &'a Map<String, Value>,
    pub password: Option<String>,
}

pub fn user_body(body: &Value) -> Decided<UserBody<'_>> {
    let o = member(body, "user")?;
    Ok(UserBody {
        fields: o,
        password: string(o, "password")?,
    })
}

/// `password_hash`: of the body's password, when it has one.
pub fn create_user(
    view: &View,
    body: &UserBody<'_>,
    password_hash: Option<&str>,
    caller_domain: &str,
) -> Decided {
    let o = body.fields;
    let domain_id = string(o, "domain_id")?.unwrap_or_else(|| caller_domain.to_owned());
    domain_exists(view, &domain_id)?;
    let u = IdentityUser {
        id: new_id(),
        name: required_name(o, 255)?,
        domain_id,
        description: string(o, "description")?.unwrap_or_default(),
        enabled: boolean(o, "enabled")?.unwrap_or(true),
        default_project_id: string(o, "default_project_id")?.unwrap_or_default(),
        email: string(o, "email")?.unwrap_or_default(),
        password_hash: password_hash.unwrap_or_default().to_owned(),
        token_epoch: 0,
    };
    check_user(view, &u)?;
    Ok(CatalogEvent::UserCreated(Box::new(u)))
}

fn check_user(view: &View, u: &IdentityUser) -> Decided<()> {
    if !u.default_project_id.is_empty() && !view.projects.contains_key(&u.default_project_id) {
        return Err(not_found("project", &u.default_project_id));
    }
    if view
        .users
        .values()
        .any(|x| x.id != u.id && x.domain_id == u.domain_id && x.name == u.name)
    {
        return Err(Refusal::Conflict(format!(
            "Conflict occurred attempting to store user - Duplicate entry found with name {} at domain ID {}.",
            u.name, u.domain_id
        )));
    }
    Ok(())
}

/// A new password or a disabling revokes every token the user holds
/// (keystone's revocation by user), so re-enabling the user does not
/// bring old tokens back.
pub fn update_user(
    view: &View,
    id: &str,
    body: &UserBody<'_>,
    password_hash: Option<&str>,
) -> Decided {
    let o = body.fields;
    immutable(o, &["id", "domain_id"])?;
    let mut u = view
        .users
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("user", id))?;
    if let Some(n) = name(o, 255)? {
        u.name = n;
    }
    if let Some(d) = string(o, "description")? {
        u.description = d;
    }
    if let Some(e) = boolean(o, "enabled")? {
        if u.enabled && !e {
            u.token_epoch += 1;
        }
        u.enabled = e;
    }
    if o.contains_key("default_project_id") {
        u.default_project_id = string(o, "default_project_id")?.unwrap_or_default();
    }
    if let Some(e) = string(o, "email")? {
        u.email = e;
    }
    if let Some(h) = password_hash {
        u.password_hash = h.to_owned();
        u.token_epoch += 1;
    }
    check_user(view, &u)?;
    Ok(CatalogEvent::UserUpdated(Box::new(u)))
}

/// The body of `POST /v3/users/{id}/password` (keystone's
/// `password_change` schema): both passwords, nothing else.
pub struct PasswordChange {
    pub original_password: String,
    pub password: String,
}

pub fn password_change(body: &Value) -> Decided<PasswordChange> {
    let o = member(body, "user")?;
    if let Some(extra) = o
        .keys()
        .find(|k| *k != "original_password" && *k != "password")
    {
        return Err(invalid(
            "user",
            format!("Additional properties are not allowed ('{extra}' was unexpected)"),
        ));
    }
    let required =
        |f: &str| string(o, f)?.ok_or_else(|| invalid(f, format!("'{f}' is a required property")));
    Ok(PasswordChange {
        original_password: required("original_password")?,
        password: required("password")?,
    })
}

/// A user's own password change, once the original one has been checked:
/// the new hash, and every token the user holds revoked (keystone's
/// `change_password`).
pub fn change_password(view: &View, id: &str, password_hash: &str) -> Decided {
    let mut u = view
        .users
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("user", id))?;
    u.password_hash = password_hash.to_owned();
    u.token_epoch += 1;
    Ok(CatalogEvent::UserUpdated(Box::new(u)))
}

pub fn delete_user(view: &View, id: &str) -> Decided {
    if !view.users.contains_key(id) {
        return Err(not_found("user", id));
    }
    Ok(CatalogEvent::UserDeleted {
        user_id: id.to_owned(),
    })
}

// ---- groups ----

pub fn create_group(view: &View, body: &Value, caller_domain: &str) -> Decided {
    let o = member(body, "group")?;
    let domain_id = string(o, "domain_id")?.unwrap_or_else(|| caller_domain.to_owned());
    domain_exists(view, &domain_id)?;
    let g = IdentityGroup {
        id: new_id(),
        name: required_name(o, 64)?,
        domain_id,
        description: string(o, "description")?.unwrap_or_default(),
    };
    check_group_name(view, &g)?;
    Ok(CatalogEvent::GroupCreated(Box::new(g)))
}

fn check_group_name(view: &View, g: &IdentityGroup) -> Decided<()> {
    if view
        .groups
        .values()
        .any(|x| x.id != g.id && x.domain_id == g.domain_id && x.name == g.name)
    {
        return Err(Refusal::Conflict(format!(
            "Conflict occurred attempting to store group - Duplicate entry found with name {} at domain ID {}.",
            g.name, g.domain_id
        )));
    }
    Ok(())
}

pub fn update_group(view: &View, id: &str, body: &Value) -> Decided {
    let o = member(body, "group")?;
    immutable(o, &["id", "domain_id"])?;
    let mut g = view
        .groups
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("group", id))?;
    if let Some(n) = name(o, 64)? {
        g.name = n;
    }
    if let Some(d) = string(o, "description")? {
        g.description = d;
    }
    check_group_name(view, &g)?;
    Ok(CatalogEvent::GroupUpdated(Box::new(g)))
}

pub fn delete_group(view: &View, id: &str) -> Decided {
    if !view.groups.contains_key(id) {
        return Err(not_found("group", id));
    }
    Ok(CatalogEvent::GroupDeleted {
        group_id: id.to_owned(),
    })
}

/// `None`: already a member (keystone answers 204 all the same).
pub fn add_member(view: &View, group_id: &str, user_id: &str) -> Decided<Option<CatalogEvent>> {
    if !view.groups.contains_key(group_id) {
        return Err(not_found("group", group_id));
    }
    if !view.users.contains_key(user_id) {
        return Err(not_found("user", user_id));
    }
    if view
        .members
        .contains(&(group_id.to_owned(), user_id.to_owned()))
    {
        return Ok(None);
    }
    Ok(Some(CatalogEvent::GroupMemberAdded {
        group_id: group_id.to_owned(),
        user_id: user_id.to_owned(),
    }))
}

/// Whether the user is in the group: `Ok` if so, else keystone's 404s.
pub fn check_member(view: &View, group_id: &str, user_id: &str) -> Decided<()> {
    if !view.groups.contains_key(group_id) {
        return Err(not_found("group", group_id));
    }
    if !view.users.contains_key(user_id) {
        return Err(not_found("user", user_id));
    }
    if !view
        .members
        .contains(&(group_id.to_owned(), user_id.to_owned()))
    {
        return Err(Refusal::NotFound(format!(
            "User '{user_id}' not found in group '{group_id}'"
        )));
    }
    Ok(())
}

pub fn remove_member(view: &View, group_id: &str, user_id: &str) -> Decided {
    check_member(view, group_id, user_id)?;
    Ok(CatalogEvent::GroupMemberRemoved {
        group_id: group_id.to_owned(),
        user_id: user_id.to_owned(),
    })
}

// ---- roles ----

pub fn create_role(view: &View, body: &Value) -> Decided {
    let o = member(body, "role")?;
    if string(o, "domain_id")?.is_some() {
        return Err(invalid(
            "domain_id",
            "domain-specific roles are not supported",
        ));
    }
    let r = IdentityRole {
        id: new_id(),
        name: required_name(o, 255)?,
        description: string(o, "description")?.unwrap_or_default(),
    };
    check_role_name(view, &r)?;
    Ok(CatalogEvent::RoleCreated(Box::new(r)))
}

fn check_role_name(view: &View, r: &IdentityRole) -> Decided<()> {
    if view
        .roles
        .values()
        .any(|x| x.id != r.id && x.name.eq_ignore_ascii_case(&r.name))
    {
        return Err(Refusal::Conflict(format!(
            "Conflict occurred attempting to store role - Duplicate entry found with name {}.",
            r.name
        )));
    }
    Ok(())
}

pub fn update_role(view: &View, id: &str, body: &Value) -> Decided {
    let o = member(body, "role")?;
    immutable(o, &["id", "domain_id"])?;
    let mut r = view
        .roles
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("role", id))?;
    if let Some(n) = name(o, 255)? {
        r.name = n;
    }
    if let Some(d) = string(o, "description")? {
        r.description = d;
    }
    check_role_name(view, &r)?;
    Ok(CatalogEvent::RoleUpdated(Box::new(r)))
}

pub fn delete_role(view: &View, id: &str) -> Decided {
    if !view.roles.contains_key(id) {
        return Err(not_found("role", id));
    }
    Ok(CatalogEvent::RoleDeleted {
        role_id: id.to_owned(),
    })
}

// ---- grants ----

/// That every part of a grant exists (keystone checks the role, then the
/// actor, then the target). An inherited grant on a project is accepted
/// as keystone accepts it (it reaches the projects under that one, and
/// there are none here).
pub fn check_grant_parts(view: &View, g: &RoleGrant) -> Decided<()> {
    if !view.roles.contains_key(&g.role_id) {
        return Err(not_found("role", &g.role_id));
    }
    if g.actor_is_group {
        if !view.groups.contains_key(&g.actor_id) {
            return Err(not_found("group", &g.actor_id));
        }
    } else if !view.users.contains_key(&g.actor_id) {
        return Err(not_found("user", &g.actor_id));
    }
    if g.target_is_domain {
        domain_exists(view, &g.target_id)
    } else if view.projects.contains_key(&g.target_id) {
        Ok(())
    } else {
        Err(not_found("project", &g.target_id))
    }
}

/// `None`: already granted (keystone answers 204 all the same).
pub fn grant(view: &View, g: RoleGrant) -> Decided<Option<CatalogEvent>> {
    check_grant_parts(view, &g)?;
    if view.grants.contains(&g) {
        return Ok(None);
    }
    Ok(Some(CatalogEvent::RoleGranted(Box::new(g))))
}

/// Whether the grant is held: `Ok` if so, else keystone's 404s.
pub fn check_grant(view: &View, g: &RoleGrant) -> Decided<()> {
    check_grant_parts(view, g)?;
    if !view.grants.contains(g) {
        return Err(Refusal::NotFound(format!(
            "Could not find role assignment with role: {}, user or group: {}, project, domain, or system: {}.",
            g.role_id, g.actor_id, g.target_id
        )));
    }
    Ok(())
}

pub fn revoke(view: &View, g: RoleGrant) -> Decided {
    check_grant(view, &g)?;
    Ok(CatalogEvent::RoleRevoked(Box::new(g)))
}

// ---- application credentials ----

/// What creating an application credential needs beyond the body: who
/// asks, on which project, with which roles there, and whether the
/// token is itself an application credential's.
pub struct AppCredRequest<'a> {
    pub user_id: &'a str,
    pub project_id: &'a str,
    /// The caller's role names on the project now.
    pub roles: &'a [String],
    /// The hash of the secret (given or generated).
    pub secret_hash: &'a str,
    pub now_ms: i64,
}

pub fn create_app_cred(view: &View, body: &Value, req: &AppCredRequest<'_>) -> Decided {
    let o = member(body, "application_credential")?;
    let name = required_name(o, 255)?;
    let expires_at_ms = match string(o, "expires_at")? {
        None => 0,
        Some(s) => {
            let t = chrono::DateTime::parse_from_rfc3339(&s)
                .or_else(|_| {
                    chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S%.f")
                        .map(|n| n.and_utc().fixed_offset())
                })
                .map_err(|_| invalid("expires_at", format!("'{s}' is not a valid time")))?;
            let ms = t.timestamp_millis();
            if ms <= req.now_ms {
                return Err(invalid(
                    "expires_at",
                    "the expiration time must be in the future",
                ));
            }
            ms
        }
    };
    // Roles by id or name; none asked: every role the caller holds.
    let role_ids: Vec<String> = match o.get("roles") {
        None | Some(Value::Null) => req
            .roles
            .iter()
            .filter_map(|n| view.role_by_name(n))
            .map(|r| r.id.clone())
            .collect(),
        Some(Value::Array(a)) => {
            let mut ids = Vec::new();
            for r in a {
                let found = if let Some(id) = r.get("id").and_then(Value::as_str) {
                    view.roles.get(id)
                } else if let Some(n) = r.get("name").and_then(Value::as_str) {
                    view.role_by_name(n)
                } else {
                    return Err(invalid("roles", format!("{r} names no role")));
                };
                let role = found.ok_or_else(|| {
                    not_found(
                        "role",
                        r.get("id")
                            .or_else(|| r.get("name"))
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    )
                })?;
                if !req.roles.contains(&role.name) {
                    return Err(Refusal::Forbidden(format!(
                        "User {} has no role {} on project {}; an application credential cannot have it.",
                        req.user_id, role.name, req.project_id
                    )));
                }
                if !ids.contains(&role.id) {
                    ids.push(role.id.clone());
                }
            }
            ids
        }
        Some(v) => return Err(invalid("roles", format!("{v} is not of type 'array'"))),
    };
    if role_ids.is_empty() {
        return Err(invalid("roles", "an application credential needs a role"));
    }
    if view
        .app_creds
        .values()
        .any(|a| a.user_id == req.user_id && a.name == name)
    {
        return Err(Refusal::Conflict(format!(
            "Conflict occurred attempting to store application_credential - An application credential with name {name} already exists for this user."
        )));
    }
    Ok(CatalogEvent::ApplicationCredentialCreated(Box::new(
        ApplicationCredential {
            id: new_id(),
            name,
            description: string(o, "description")?.unwrap_or_default(),
            user_id: req.user_id.to_owned(),
            project_id: req.project_id.to_owned(),
            secret_hash: req.secret_hash.to_owned(),
            role_ids,
            expires_at_ms,
            unrestricted: boolean(o, "unrestricted")?.unwrap_or(false),
        },
    )))
}

pub fn delete_app_cred(view: &View, user_id: &str, id: &str) -> Decided {
    match view.app_creds.get(id) {
        Some(a) if a.user_id == user_id => Ok(CatalogEvent::ApplicationCredentialDeleted {
            user_id: user_id.to_owned(),
            application_credential_id: id.to_owned(),
        }),
        _ => Err(Refusal::NotFound(format!(
            "Could not find Application Credential: {id}."
        ))),
    }
}

/// The domain new things go in when the body names none.
pub fn default_domain(view: &View, caller_project: Option<&str>) -> String {
    caller_project
        .and_then(|p| view.projects.get(p))
        .map(|p| p.domain_id.clone())
        .unwrap_or_else(|| DOMAIN_ID.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::directory::{Directory, stable_id};

    fn view() -> View {
        let opts = novalog_runtime::config::IdentityOptions {
            password_hash_rounds: 1,
            ..Default::default()
        };
        (*Directory::from_options(&opts).unwrap().view()).clone()
    }

    fn apply(mut v: View, e: &CatalogEvent) -> View {
        match e {
            CatalogEvent::ProjectCreated(p) => drop(v.projects.insert(p.id.clone(), (**p).clone())),
            CatalogEvent::UserCreated(u) => drop(v.users.insert(u.id.clone(), (**u).clone())),
            _ => {}
        }
        v
    }

    #[test]
    fn a_project_name_is_unique_in_its_domain() {
        let v = view();
        let body = json!({"project": {"name": "web", "description": "d"}});
        let e = create_project(&v, &body, DOMAIN_ID).unwrap();
        let CatalogEvent::ProjectCreated(p) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(
            (p.domain_id.as_str(), p.enabled, p.id.len()),
            ("default", true, 32)
        );
        let v = apply(v, &e);
        assert!(matches!(
            create_project(&v, &body, DOMAIN_ID),
            Err(Refusal::Conflict(_))
        ));
        assert!(matches!(
            create_project(
                &v,
                &json!({"project": {"name": "web", "domain_id": "nope"}}),
                DOMAIN_ID
            ),
            Err(Refusal::NotFound(_))
        ));
        assert!(matches!(
            create_project(&v, &json!({"project": {"description": "x"}}), DOMAIN_ID),
            Err(Refusal::BadRequest(_))
        ));
        assert!(matches!(
            create_project(&v, &json!({"project": {"name": "  "}}), DOMAIN_ID),
            Err(Refusal::BadRequest(_))
        ));
    }

    #[test]
    fn user_names_clash_only_in_one_domain() {
        let v = view();
        let body = json!({"user": {"name": "demo"}});
        let b = user_body(&body).unwrap();
        assert!(matches!(
            create_user(&v, &b, None, DOMAIN_ID),
            Err(Refusal::Conflict(m)) if m.contains("Duplicate entry found with name demo at domain ID default")
        ));
        let body = json!({"user": {"name": "eve", "password": "pw"}});
        let b = user_body(&body).unwrap();
        assert_eq!(b.password.as_deref(), Some("pw"));
        let CatalogEvent::UserCreated(u) = create_user(&v, &b, Some("h"), DOMAIN_ID).unwrap()
        else {
            panic!()
        };
        assert_eq!(u.password_hash, "h", "only the hash is recorded");
    }

    #[test]
    fn grants_need_every_part_and_revokes_a_held_one() {
        let v = view();
        let g = RoleGrant {
            role_id: stable_id("role", "member"),
            actor_id: stable_id("user", "demo"),
            actor_is_group: false,
            target_id: stable_id("project", "demo"),
            target_is_domain: false,
            inherited: false,
        };
        assert_eq!(grant(&v, g.clone()), Ok(None), "held already");
        assert!(revoke(&v, g.clone()).is_ok());
        let other = RoleGrant {
            target_id: stable_id("project", "admin"),
            ..g.clone()
        };
        assert!(
            matches!(revoke(&v, other.clone()), Err(Refusal::NotFound(m)) if m.contains("role assignment"))
        );
        assert!(matches!(
            grant(&v, other),
            Ok(Some(CatalogEvent::RoleGranted(_)))
        ));
        let missing = RoleGrant {
            role_id: "nope".into(),
            ..g
        };
        assert_eq!(
            grant(&v, missing),
            Err(Refusal::NotFound("Could not find role: nope.".into()))
        );
    }

    #[test]
    fn an_enabled_domain_cannot_be_deleted() {
        let v = view();
        assert!(matches!(
            delete_domain(&v, DOMAIN_ID),
            Err(Refusal::Forbidden(_))
        ));
        let e = update_domain(&v, DOMAIN_ID, &json!({"domain": {"enabled": false}})).unwrap();
        let CatalogEvent::DomainUpdated(d) = e else {
            panic!()
        };
        let mut v = v;
        v.domains.insert(d.id.clone(), *d);
        assert!(delete_domain(&v, DOMAIN_ID).is_ok());
    }

    #[test]
    fn application_credential_roles_are_a_subset_of_the_creators() {
        let v = view();
        let roles = vec!["member".to_owned(), "reader".to_owned()];
        let req = AppCredRequest {
            user_id: "u",
            project_id: "p",
            roles: &roles,
            secret_hash: "h",
            now_ms: 1_000,
        };
        let e =
            create_app_cred(&v, &json!({"application_credential": {"name": "ci"}}), &req).unwrap();
        let CatalogEvent::ApplicationCredentialCreated(a) = e else {
            panic!()
        };
        assert_eq!(a.role_ids.len(), 2);
        assert!(!a.unrestricted);
        let admin = json!({"application_credential": {"name": "x", "roles": [{"name": "admin"}]}});
        assert!(matches!(
            create_app_cred(&v, &admin, &req),
            Err(Refusal::Forbidden(_))
        ));
        let past =
            json!({"application_credential": {"name": "x", "expires_at": "1970-01-01T00:00:00"}});
        assert!(matches!(
            create_app_cred(&v, &past, &req),
            Err(Refusal::BadRequest(_))
        ));
    }

    #[test]
    fn a_password_change_needs_both_passwords_and_revokes_the_users_tokens() {
        let v = view();
        let demo = stable_id("user", "demo");
        assert!(matches!(
            password_change(&json!({"user": {"password": "n"}})),
            Err(Refusal::BadRequest(m)) if m.contains("'original_password' is a required property")
        ));
        assert!(matches!(
            password_change(&json!({"user": {"password": "n", "original_password": "o", "x": 1}})),
            Err(Refusal::BadRequest(m)) if m.contains("'x' was unexpected")
        ));
        let p =
            password_change(&json!({"user": {"password": "n", "original_password": "o"}})).unwrap();
        assert_eq!(
            (p.original_password.as_str(), p.password.as_str()),
            ("o", "n")
        );
        let CatalogEvent::UserUpdated(u) = change_password(&v, &demo, "h").unwrap() else {
            panic!()
        };
        assert_eq!((u.password_hash.as_str(), u.token_epoch), ("h", 1));
        assert_eq!(
            change_password(&v, "nope", "h"),
            Err(Refusal::NotFound("Could not find user: nope.".into()))
        );
        // Disabling revokes too; an update that changes neither does not.
        let off = json!({"user": {"enabled": false}});
        let CatalogEvent::UserUpdated(u) =
            update_user(&v, &demo, &user_body(&off).unwrap(), None).unwrap()
        else {
            panic!()
        };
        assert_eq!(u.token_epoch, 1);
        let mail = json!({"user": {"email": "d@example.org"}});
        let CatalogEvent::UserUpdated(u) =
            update_user(&v, &demo, &user_body(&mail).unwrap(), None).unwrap()
        else {
            panic!()
        };
        assert_eq!(u.token_epoch, 0);
    }
}
