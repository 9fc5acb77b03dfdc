//! `novalog-identity`: the Identity v3 subset keystoneauth and
//! openstackclient need (keystone's role), a service of its own that
//! `novalog-api` mounts at `/identity` on its listener when
//! `auth_strategy = "keystone"`:
//! version documents, password, token and application credential
//! authentication with project scope, token validation, a catalog
//! pointing back at this listener, and keystone's admin API over domains,
//! projects, users, groups, roles, role assignments and application
//! credentials.
//!
//! # Layout
//! - [`directory`]: who exists: the `[identity]` bootstrap with the
//!   changes made since laid over it, read as a [`directory::View`];
//!   passwords and secrets kept only hashed.
//! - [`records`]: those changes, folded from the log by every API replica
//!   (optimistic concurrency on one partition: a change decided against
//!   an older directory is not applied, and its writer decides again).
//! - [`admin`]: the admin API's decisions, pure: a directory and a
//!   request in, one record or keystone's refusal out.
//! - [`policy`]: keystone's default policy for them, as one table.
//! - [`listing`]: keystone's list filters and paging.
//! - [`token`]: signed, expiring, self-contained tokens.
//! - [`revocations`]: the tokens revoked before they expire, folded from
//!   the log by every API replica.
//! - [`views`]: keystone's response bodies.
//! - [`routes`], [`admin_routes`]: the handlers and their routers; a
//!   revocation or a directory change is written through the
//!   [`routes::RevocationLog`] the mounting service provides.
//!
//! It shares with the services beside it only `novalog-request` (the
//! request [`Context`] a token turns into, request ids, bodies), so the
//! compute API depends on it and not the other way round.
//!
//! [`Identity`] ties them together: it turns an auth request into token
//! claims, and a token back into claims or a request [`Context`].

pub mod admin;
pub mod admin_routes;
pub mod directory;
pub mod listing;
pub mod policy;
pub mod records;
pub mod revocations;
pub mod routes;
pub mod token;
pub mod views;

use std::path::Path;

use novalog_runtime::config::IdentityOptions;
use serde_json::Value;

use directory::{DOMAIN_ID, Directory, Ref, View, verify_secret};
use novalog_request::Context;
use novalog_schemas::identity::{
    ApplicationCredential, IdentityDomain, IdentityProject, IdentityUser,
};
use token::{Claims, Signer, TokenError};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("[identity]: {0}")]
    Config(String),
    #[error("token key: {0}")]
    Key(String),
}

/// Why an auth request gets no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// 400: the body is not an auth request.
    BadRequest(String),
    /// 401: wrong credentials, or no access to the scope asked for.
    Unauthorized(String),
}

/// The identity service: its directory and its token key.
#[derive(Debug)]
pub struct Identity {
    pub directory: Directory,
    signer: Signer,
    expiration_ms: i64,
    /// `[identity] public_endpoint`, when set.
    public_endpoint: Option<String>,
    pub region: String,
    /// Tokens revoked before they expire (`DELETE /v3/auth/tokens`).
    pub revocations: std::sync::Arc<revocations::Revocations>,
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Identity {
    /// Builds the directory (hashing every password) and loads the token
    /// key from `[identity] token_secret` or `key_dir/token.key`.
    pub fn from_options(opts: &IdentityOptions, key_dir: &Path) -> Result<Identity, IdentityError> {
        let signer = Signer::load(&opts.token_secret, key_dir)?;
        Ok(Identity {
            directory: Directory::from_options(opts)?,
            signer,
            expiration_ms: i64::try_from(opts.token_expiration)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000),
            public_endpoint: Some(opts.public_endpoint.trim_end_matches('/').to_owned())
                .filter(|e| !e.is_empty()),
            region: opts.region.clone(),
            revocations: Default::default(),
        })
    }

    /// The base URL the catalog and links use: the configured public
    /// endpoint, else the one the client reached us at.
    pub fn base_url(&self, request_base: &str) -> String {
        self.public_endpoint
            .clone()
            .unwrap_or_else(|| request_base.trim_end_matches('/').to_owned())
    }

    pub fn sign(&self, claims: &Claims) -> String {
        self.signer.sign(claims)
    }

    /// The claims of a valid, unrevoked token whose user (and project)
    /// still exist and are enabled, with the roles the directory gives the
    /// user on the project now: the token's own list is what held when it
    /// was issued, so a role removed since is not trusted, and a user left
    /// with no role on the project has no valid token for it. A token of
    /// an application credential dies with the credential, and holds at
    /// most the credential's roles.
    pub fn validate(&self, token: &str, now_ms: i64) -> Result<Claims, TokenError> {
        let mut claims = self.signer.verify(token, now_ms)?;
        if claims
            .audit_ids
            .first()
            .is_none_or(|id| self.revocations.is_revoked(id))
        {
            return Err(TokenError::Revoked);
        }
        let view = self.directory.view();
        let user = view
            .users
            .get(&claims.user_id)
            .ok_or(TokenError::Malformed)?;
        // Keystone revokes every token of a user whose password changed.
        if !view.user_usable(user) || claims.user_epoch != user.token_epoch {
            return Err(TokenError::Revoked);
        }
        if let Some(domain_id) = &claims.domain_id {
            if !view.domains.contains_key(domain_id) {
                return Err(TokenError::Malformed);
            }
            claims.roles = view.roles_on_domain(&user.id, domain_id);
            if claims.roles.is_empty() {
                return Err(TokenError::Revoked);
            }
        }
        if let Some(project_id) = &claims.project_id {
            if !view.projects.contains_key(project_id) {
                return Err(TokenError::Malformed);
            }
            claims.roles = view.roles_on(&user.id, project_id);
            if let Some(id) = &claims.app_cred {
                let cred = view
                    .app_creds
                    .get(id)
                    .filter(|a| a.user_id == user.id && &a.project_id == project_id)
                    .filter(|a| a.expires_at_ms == 0 || a.expires_at_ms > now_ms)
                    .ok_or(TokenError::Revoked)?;
                claims.roles = app_cred_roles(&view, cred, claims.roles);
            }
            if claims.roles.is_empty() {
                return Err(TokenError::Revoked);
            }
        }
        Ok(claims)
    }

    /// The compute request context of a valid project-scoped token.
    pub fn context(&self, token: &str, now_ms: i64) -> Option<Context> {
        let claims = self.validate(token, now_ms).ok()?;
        let project_id = claims.project_id?;
        Some(Context::new(&claims.user_id, &project_id, claims.roles))
    }

    /// `POST /v3/auth/tokens`: the claims of the token to issue for this
    /// body. Checks a password or secret (slow on purpose: run it off the
    /// runtime).
    pub fn authenticate(&self, body: &Value, now_ms: i64) -> Result<Claims, AuthFailure> {
        let auth = body
            .get("auth")
            .filter(|a| a.is_object())
            .ok_or_else(|| bad("Expecting to find auth in request body."))?;
        let identity = auth
            .get("identity")
            .ok_or_else(|| bad("Expecting to find identity in auth."))?;
        let methods: Vec<&str> = identity
            .get("methods")
            .and_then(Value::as_array)
            .map(|m| m.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if methods.is_empty() {
            return Err(bad("Expecting to find methods in identity."));
        }
        let view = self.directory.view();
        if methods.contains(&"application_credential") {
            return self.app_cred_token(&view, identity, auth.get("scope"), now_ms);
        }
        // Who, and the token this one descends from when rescoping.
        let (user, parent) = if methods.contains(&"password") {
            (self.password_user(&view, identity)?, None)
        } else if methods.contains(&"token") {
            let id = identity
                .pointer("/token/id")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("Expecting to find id in token."))?;
            let parent = self
                .validate(id, now_ms)
                .map_err(|_| unauthorized("The request you have made requires authentication."))?;
            if parent.app_cred.is_some() {
                return Err(unauthorized(
                    "The request you have made requires authentication.",
                ));
            }
            let user = view.users.get(&parent.user_id).ok_or_else(|| {
                unauthorized("The request you have made requires authentication.")
            })?;
            (user, Some(parent))
        } else {
            return Err(unauthorized(
                "Attempted to authenticate with an unsupported method.",
            ));
        };

        let (project_id, domain_id, roles) = match self.scope(&view, user, auth.get("scope"))? {
            Scope::Project(p) => {
                let roles = view.roles_on(&user.id, &p.id);
                if roles.is_empty() {
                    return Err(unauthorized(format!(
                        "User {} has no access to project {}",
                        user.id, p.id
                    )));
                }
                (Some(p.id.clone()), None, roles)
            }
            Scope::Domain(d) => {
                let roles = view.roles_on_domain(&user.id, &d.id);
                if roles.is_empty() {
                    return Err(unauthorized(format!(
                        "User {} has no access to domain {}",
                        user.id, d.id
                    )));
                }
                (None, Some(d.id.clone()), roles)
            }
            Scope::Unscoped => (None, None, Vec::new()),
        };
        let (methods, expires_at, audit_ids) = match parent {
            None => (
                vec!["password".to_owned()],
                now_ms.saturating_add(self.expiration_ms),
                vec![token::audit_id()],
            ),
            // A rescoped token expires with its parent and carries its
            // audit chain.
            Some(parent) => {
                let mut methods = parent.methods.clone();
                if !methods.iter().any(|m| m == "token") {
                    methods.insert(0, "token".to_owned());
                }
                let root = parent.audit_ids.first().cloned();
                (
                    methods,
                    parent.expires_at,
                    std::iter::once(token::audit_id()).chain(root).collect(),
                )
            }
        };
        Ok(Claims {
            user_id: user.id.clone(),
            project_id,
            domain_id,
            roles,
            methods,
            issued_at: now_ms,
            expires_at,
            audit_ids,
            app_cred: None,
            user_epoch: user.token_epoch,
        })
    }

    /// Keystone's `application_credential` method: by id, or by name with
    /// its user; the token is scoped to the credential's project (asking
    /// for another scope is refused), with the credential's roles the
    /// user still holds there, and expires no later than it.
    fn app_cred_token(
        &self,
        view: &View,
        identity: &Value,
        scope: Option<&Value>,
        now_ms: i64,
    ) -> Result<Claims, AuthFailure> {
        let body = identity
            .get("application_credential")
            .filter(|a| a.is_object())
            .ok_or_else(|| bad("Expecting to find application_credential in identity."))?;
        let secret = body
            .get("secret")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("Expecting to find secret in application_credential."))?;
        let denied = || unauthorized("The request you have made requires authentication.");
        let cred = if let Some(id) = body.get("id").and_then(Value::as_str) {
            view.app_creds.get(id)
        } else {
            let name = body
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("Expecting to find id or name in application_credential."))?;
            let user = body
                .get("user")
                .filter(|u| u.is_object())
                .ok_or_else(|| bad("Expecting to find user in application_credential."))?;
            let r = named(user).ok_or_else(|| bad("Expecting to find id or name in user."))?;
            let domain_id = domain_of(view, user.get("domain")).ok_or_else(denied)?;
            let user = view.user(&r, &domain_id).ok_or_else(denied)?;
            view.app_creds
                .values()
                .find(|a| a.user_id == user.id && a.name == name)
        };
        let valid = cred.is_some_and(|a| verify_secret(&a.secret_hash, secret));
        let cred = cred.filter(|_| valid).ok_or_else(denied)?;
        if cred.expires_at_ms != 0 && cred.expires_at_ms <= now_ms {
            return Err(denied());
        }
        if scope.is_some_and(|s| !s.is_null()) {
            let asked = scope
                .and_then(|s| s.pointer("/project/id"))
                .and_then(Value::as_str);
            if asked != Some(cred.project_id.as_str()) {
                return Err(unauthorized(
                    "Application credentials cannot request a scope.",
                ));
            }
        }
        let user = view.users.get(&cred.user_id).ok_or_else(denied)?;
        if !view.user_usable(user) {
            return Err(denied());
        }
        let roles = app_cred_roles(view, cred, view.roles_on(&user.id, &cred.project_id));
        if roles.is_empty() {
            return Err(denied());
        }
        let mut expires_at = now_ms.saturating_add(self.expiration_ms);
        if cred.expires_at_ms != 0 {
            expires_at = expires_at.min(cred.expires_at_ms);
        }
        Ok(Claims {
            user_id: user.id.clone(),
            project_id: Some(cred.project_id.clone()),
            domain_id: None,
            roles,
            methods: vec!["application_credential".to_owned()],
            issued_at: now_ms,
            expires_at,
            audit_ids: vec![token::audit_id()],
            app_cred: Some(cred.id.clone()),
            user_epoch: user.token_epoch,
        })
    }

    fn password_user<'v>(
        &self,
        view: &'v View,
        identity: &Value,
    ) -> Result<&'v IdentityUser, AuthFailure> {
        let user = identity
            .pointer("/password/user")
            .filter(|u| u.is_object())
            .ok_or_else(|| bad("Expecting to find user in password."))?;
        let password = user
            .get("password")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("Expecting to find password in user."))?;
        let r = named(user).ok_or_else(|| bad("Expecting to find id or name in user."))?;
        let denied = || unauthorized("The request you have made requires authentication.");
        let found = match &r {
            Ref::Id(_) => view.user(&r, ""),
            Ref::Name(_) => match domain_of(view, user.get("domain")) {
                Some(d) => view.user(&r, &d),
                None => None,
            },
        };
        if !self.directory.check_password(found, password) {
            return Err(denied());
        }
        let user = found.ok_or_else(denied)?;
        if !view.user_usable(user) {
            return Err(denied());
        }
        Ok(user)
    }

    /// What a token is for: the project or the domain asked for, nothing
    /// when asked `"unscoped"`, else the user's default project (or
    /// nothing without one).
    fn scope<'v>(
        &self,
        view: &'v View,
        user: &IdentityUser,
        scope: Option<&Value>,
    ) -> Result<Scope<'v>, AuthFailure> {
        match scope {
            None | Some(Value::Null) => Ok(view
                .projects
                .get(&user.default_project_id)
                .filter(|p| !view.roles_on(&user.id, &p.id).is_empty())
                .map_or(Scope::Unscoped, Scope::Project)),
            Some(Value::String(s)) if s == "unscoped" => Ok(Scope::Unscoped),
            Some(Value::Object(o)) if o.len() > 1 => Err(bad(
                "Authentication cannot be scoped to multiple targets. Pick one of: project, domain, trust, system or unscoped",
            )),
            Some(Value::Object(o)) if o.contains_key("project") => {
                let project = &o["project"];
                let r = named(project)
                    .ok_or_else(|| bad("Expecting to find id or name in project."))?;
                let not_found = || unauthorized("Could not find project.");
                let found = match &r {
                    Ref::Id(_) => view.project(&r, ""),
                    Ref::Name(_) => {
                        let d = domain_of(view, project.get("domain")).ok_or_else(not_found)?;
                        view.project(&r, &d)
                    }
                };
                let p = found.ok_or_else(not_found)?;
                if !view.project_usable(p) {
                    return Err(unauthorized(format!("Project {} is disabled.", p.id)));
                }
                Ok(Scope::Project(p))
            }
            Some(Value::Object(o)) if o.contains_key("domain") => {
                let domain = &o["domain"];
                let r =
                    named(domain).ok_or_else(|| bad("Expecting to find id or name in domain."))?;
                let d = view
                    .domain(&r)
                    .ok_or_else(|| unauthorized("Could not find domain."))?;
                if !d.enabled {
                    return Err(unauthorized(format!("Domain {} is disabled.", d.id)));
                }
                Ok(Scope::Domain(d))
            }
            Some(Value::Object(_)) => Err(unauthorized(
                "Only project and domain scopes are supported by this identity service.",
            )),
            Some(_) => Err(bad("Invalid scope.")),
        }
    }
}

/// What an auth request asked its token to be scoped to.
enum Scope<'v> {
    Project(&'v IdentityProject),
    Domain(&'v IdentityDomain),
    Unscoped,
}

/// The roles of an application credential's token: those of the
/// credential the user still holds (implied ones included), in the
/// user's order.
fn app_cred_roles(view: &View, cred: &ApplicationCredential, held: Vec<String>) -> Vec<String> {
    let granted: Vec<String> = cred
        .role_ids
        .iter()
        .filter_map(|id| view.roles.get(id))
        .map(|r| r.name.clone())
        .collect();
    let allowed = view.implied(granted);
    held.into_iter().filter(|r| allowed.contains(r)).collect()
}

/// `{"id": ...}` or `{"name": ...}`.
fn named(v: &Value) -> Option<Ref> {
    if let Some(id) = v.get("id").and_then(Value::as_str) {
        return Some(Ref::Id(id.to_owned()));
    }
    v.get("name")
        .and_then(Value::as_str)
        .map(|n| Ref::Name(n.to_owned()))
}

/// The id of the domain a name is looked up in: the one given by id or
/// name, `Default` when none is given; `None` when it does not exist.
fn domain_of(view: &View, domain: Option<&Value>) -> Option<String> {
    let Some(d) = domain.filter(|d| !d.is_null()) else {
        return Some(DOMAIN_ID.to_owned());
    };
    let r = named(d).unwrap_or(Ref::Id(DOMAIN_ID.to_owned()));
    view.domain(&r).map(|d| d.id.clone())
}

fn bad(m: impl Into<String>) -> AuthFailure {
    AuthFailure::BadRequest(m.into())
}

fn unauthorized(m: impl Into<String>) -> AuthFailure {
    AuthFailure::Unauthorized(m.into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use directory::stable_id;

    fn identity() -> Identity {
        let dir = tempfile::tempdir().unwrap();
        let opts = IdentityOptions {
            password_hash_rounds: 10,
            token_secret: "s".into(),
            ..IdentityOptions::default()
        };
        Identity::from_options(&opts, dir.path()).unwrap()
    }

    fn password(user: &str, pw: &str, scope: Option<Value>) -> Value {
        let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": pw}}}});
        if let Some(s) = scope {
            auth["scope"] = s;
        }
        json!({ "auth": auth })
    }

    #[test]
    fn password_with_project_scope() {
        let id = identity();
        let scope = json!({"project": {"name": "demo", "domain": {"id": "default"}}});
        let c = id
            .authenticate(&password("demo", "demo", Some(scope)), 1_000)
            .unwrap();
        assert_eq!(c.user_id, stable_id("user", "demo"));
        assert_eq!(c.project_id, Some(stable_id("project", "demo")));
        assert_eq!(c.roles, vec!["member", "reader"]);
        assert_eq!(c.expires_at, 1_000 + 3_600_000);
        let ctx = id.context(&id.sign(&c), 2_000).unwrap();
        assert_eq!(ctx.project_id, stable_id("project", "demo"));
        assert!(!ctx.is_admin);
    }

    #[test]
    fn no_scope_means_the_default_project_and_unscoped_can_be_asked() {
        let id = identity();
        let c = id
            .authenticate(&password("admin", "admin", None), 0)
            .unwrap();
        assert_eq!(c.project_id, Some(stable_id("project", "admin")));
        let u = id
            .authenticate(&password("admin", "admin", Some(json!("unscoped"))), 0)
            .unwrap();
        assert_eq!(u.project_id, None);
        assert!(u.roles.is_empty());
        assert_eq!(
            id.context(&id.sign(&u), 1),
            None,
            "unscoped: no compute context"
        );
    }

    #[test]
    fn unscoped_tokens_rescope() {
        let id = identity();
        let u = id
            .authenticate(&password("admin", "admin", Some(json!("unscoped"))), 0)
            .unwrap();
        let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": id.sign(&u)}},
            "scope": {"project": {"id": stable_id("project", "admin")}}}});
        let s = id.authenticate(&body, 5).unwrap();
        assert_eq!(s.project_id, Some(stable_id("project", "admin")));
        assert_eq!(s.expires_at, u.expires_at, "expires with its parent");
        assert_eq!(s.audit_ids[1], u.audit_ids[0]);
        assert_eq!(s.methods, vec!["token", "password"]);
        assert!(id.context(&id.sign(&s), 6).unwrap().is_admin);
    }

    /// Issue 9: the roles a token carries are those of when it was issued;
    /// validation takes them from the directory as it is now.
    #[test]
    fn roles_are_the_directorys_when_a_token_is_validated() {
        use novalog_runtime::config::IdentityUser;
        let dir = tempfile::tempdir().unwrap();
        let options = |roles: &[&str]| {
            let mut opts = IdentityOptions {
                password_hash_rounds: 10,
                token_secret: "s".into(),
                ..IdentityOptions::default()
            };
            opts.users.push(IdentityUser {
                name: "carol".into(),
                password: "c".into(),
                project: "demo".into(),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            });
            opts
        };
        let before = Identity::from_options(&options(&["admin"]), dir.path()).unwrap();
        let claims = before
            .authenticate(&password("carol", "c", None), 0)
            .unwrap();
        assert!(claims.roles.iter().any(|r| r == "admin"));
        let token = before.sign(&claims);
        assert!(before.context(&token, 1).unwrap().is_admin);

        // The admin role removed: the same token is a reader's at once.
        let after = Identity::from_options(&options(&["reader"]), dir.path()).unwrap();
        let ctx = after.context(&token, 1).unwrap();
        assert!(!ctx.is_admin);
        assert_eq!(ctx.roles, vec!["reader"]);
        assert_eq!(after.validate(&token, 1).unwrap().roles, vec!["reader"]);
        // Every role removed: the token is refused.
        let none = Identity::from_options(&options(&[]), dir.path()).unwrap();
        assert_eq!(none.validate(&token, 1), Err(TokenError::Revoked));
        assert_eq!(none.context(&token, 1), None);
    }

    #[test]
    fn revoked_tokens_are_refused_and_their_rescoped_children_are_not() {
        use novalog_store::Transaction;
        let id = identity();
        let unscoped = id
            .authenticate(&password("admin", "admin", Some(json!("unscoped"))), 0)
            .unwrap();
        let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": id.sign(&unscoped)}},
            "scope": {"project": {"id": stable_id("project", "admin")}}}});
        let scoped = id.authenticate(&body, 5).unwrap();
        let (parent, child) = (id.sign(&unscoped), id.sign(&scoped));
        let mut staged = revocations::Staged::default();
        id.revocations
            .stage(
                &mut Transaction::new(),
                &mut staged,
                &scoped.audit_ids[0],
                scoped.expires_at,
                6,
            )
            .unwrap();
        id.revocations.publish(staged);
        assert_eq!(id.validate(&child, 7), Err(TokenError::Revoked));
        assert_eq!(id.context(&child, 7), None);
        // Keystone revokes the one token, not the chain it belongs to.
        assert!(id.validate(&parent, 7).is_ok());
    }

    #[test]
    fn refusals() {
        let id = identity();
        let unauthorized = |r: Result<Claims, AuthFailure>| {
            assert!(matches!(r, Err(AuthFailure::Unauthorized(_))), "{r:?}")
        };
        unauthorized(id.authenticate(&password("admin", "wrong", None), 0));
        unauthorized(id.authenticate(&password("nobody", "x", None), 0));
        let other = json!({"project": {"name": "admin", "domain": {"id": "default"}}});
        unauthorized(id.authenticate(&password("demo", "demo", Some(other)), 0));
        let missing = json!({"project": {"name": "nope", "domain": {"id": "default"}}});
        unauthorized(id.authenticate(&password("demo", "demo", Some(missing)), 0));
        let domain = json!({"domain": {"id": "default"}});
        unauthorized(id.authenticate(&password("admin", "admin", Some(domain)), 0));
        let expired = id.authenticate(&password("demo", "demo", None), 0).unwrap();
        let rescope = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": id.sign(&expired)}}}});
        unauthorized(id.authenticate(&rescope, expired.expires_at));
        assert!(matches!(
            id.authenticate(&json!({"nope": 1}), 0),
            Err(AuthFailure::BadRequest(_))
        ));
        assert_eq!(id.context(&id.sign(&expired), expired.expires_at), None);
    }

    /// Folds one directory record, as the API's projection consumer does.
    fn apply(id: &Identity, version: u64, event: novalog_schemas::CatalogEvent) {
        use novalog_schemas::{Actor, Envelope, Event, Meta};
        let mut meta = Meta::origin(
            uuid::Uuid::new_v4(),
            "req-1".into(),
            Actor::default(),
            records::KEY.to_owned(),
        );
        meta.aggregate_version = version;
        let env = Envelope {
            meta,
            event: Event::Catalog(event.clone()),
        };
        let mut staged = records::Staged::default();
        id.directory
            .records
            .stage(
                &mut novalog_store::Transaction::new(),
                &mut staged,
                &env,
                &event,
            )
            .unwrap();
        id.directory.records.publish(staged);
    }

    #[test]
    fn domain_scoped_tokens_and_a_new_token_epoch_revoking_the_users_tokens() {
        use novalog_schemas::CatalogEvent;
        use novalog_schemas::identity::RoleGrant;
        let id = identity();
        let admin = stable_id("user", "admin");
        apply(
            &id,
            1,
            CatalogEvent::RoleGranted(Box::new(RoleGrant {
                role_id: stable_id("role", "reader"),
                actor_id: admin.clone(),
                actor_is_group: false,
                target_id: DOMAIN_ID.into(),
                target_is_domain: true,
                inherited: false,
            })),
        );
        let scope = json!({"domain": {"name": "Default"}});
        let c = id
            .authenticate(&password("admin", "admin", Some(scope)), 0)
            .unwrap();
        assert_eq!(
            (c.project_id.as_deref(), c.domain_id.as_deref()),
            (None, Some(DOMAIN_ID))
        );
        assert_eq!(c.roles, vec!["reader"]);
        let domain_token = id.sign(&c);
        assert!(id.validate(&domain_token, 1).is_ok());
        assert_eq!(
            id.context(&domain_token, 1),
            None,
            "compute needs a project"
        );
        let both = json!({"domain": {"id": "default"}, "project": {"id": "x"}});
        assert!(matches!(
            id.authenticate(&password("admin", "admin", Some(both)), 0),
            Err(AuthFailure::BadRequest(_))
        ));
        let project_token = id.sign(
            &id.authenticate(&password("admin", "admin", None), 0)
                .unwrap(),
        );

        // A password change moves the user's epoch: every token it held
        // is refused, a new one is not.
        let mut u = id.directory.view().users[&admin].clone();
        u.token_epoch += 1;
        apply(&id, 2, CatalogEvent::UserUpdated(Box::new(u)));
        assert_eq!(id.validate(&domain_token, 1), Err(TokenError::Revoked));
        assert_eq!(id.validate(&project_token, 1), Err(TokenError::Revoked));
        let again = id
            .authenticate(&password("admin", "admin", None), 2)
            .unwrap();
        assert!(id.validate(&id.sign(&again), 3).is_ok());
    }
}
