//! Who is asking: the request [`Context`] and the strategies that produce it.
//!
//! `keystone` (the default) accepts the project-scoped tokens the
//! [`novalog_identity`] service issues, checked by signature and expiry.
//! `noauth2` (Nova's development mode, only when configured) takes
//! `user:project` (or `user`, meaning project = user) and user `admin` is an
//! administrator. Nothing outside this module and `identity` looks at tokens.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use novalog_identity::{self as identity, Identity, IdentityError};

// The caller's Context is shared with Identity and Image.
pub use novalog_request::Context;

/// How requests are authenticated (`[api] auth_strategy`).
#[derive(Debug, Clone)]
pub enum AuthStrategy {
    /// Tokens from the identity service served on this listener.
    Keystone(Arc<Identity>),
    /// `X-Auth-Token: user[:project]`; development only.
    NoAuth2,
}

#[derive(Debug, thiserror::Error)]
pub enum StrategyError {
    #[error("unsupported auth_strategy {0:?} (supported: keystone, noauth2)")]
    Unsupported(String),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

impl AuthStrategy {
    /// The strategy `[api] auth_strategy` names. `keystone` builds the
    /// identity service from `[identity]` (hashing every password), its
    /// token key kept in `key_dir` unless configured.
    pub fn from_config(
        cfg: &novalog_runtime::Config,
        key_dir: &Path,
    ) -> Result<Self, StrategyError> {
        match cfg.api.auth_strategy.as_str() {
            "keystone" => Ok(AuthStrategy::Keystone(Arc::new(Identity::from_options(
                &cfg.identity,
                key_dir,
            )?))),
            "noauth2" => Ok(AuthStrategy::NoAuth2),
            other => Err(StrategyError::Unsupported(other.to_owned())),
        }
    }

    /// The identity service, when tokens are keystone's.
    pub fn identity(&self) -> Option<&Arc<Identity>> {
        match self {
            AuthStrategy::Keystone(identity) => Some(identity),
            AuthStrategy::NoAuth2 => None,
        }
    }

    /// The caller's context, or `None` when the request is not
    /// authenticated (401).
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<Context> {
        let token = headers.get("x-auth-token")?.to_str().ok()?;
        match self {
            AuthStrategy::Keystone(identity) => identity.context(token, identity::now_ms()),
            AuthStrategy::NoAuth2 => noauth2(token),
        }
    }
}

/// Parses a noauth2 token: `user:project`, or `user` alone.
pub fn noauth2(token: &str) -> Option<Context> {
    let token = token.trim();
    let (user, project) = match token.split_once(':') {
        Some((user, project)) => (user.trim(), project.trim()),
        None => (token, ""),
    };
    if user.is_empty() {
        return None;
    }
    let project = if project.is_empty() { user } else { project };
    // Development conventions: `admin` administers, `reader` (or
    // `reader-*`) only reads, everyone else is a member.
    let role = if user == "admin" {
        "admin"
    } else if user == "reader" || user.starts_with("reader-") {
        "reader"
    } else {
        "member"
    };
    Some(Context::new(user, project, vec![role.to_owned()]))
}

/// Middleware on every route that needs a caller: 401 without one, else the
/// [`Context`] is stored for the handlers.
pub async fn require(
    State(strategy): State<Arc<AuthStrategy>>,
    mut req: Request,
    next: Next,
) -> Response {
    match strategy.authenticate(req.headers()) {
        Some(ctx) => {
            req.extensions_mut().insert(ctx);
            next.run(req).await
        }
        None => ApiError::unauthorized().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noauth2_tokens() {
        let c = noauth2("alice:proj1").unwrap();
        assert_eq!(
            (c.user_id.as_str(), c.project_id.as_str()),
            ("alice", "proj1")
        );
        assert_eq!(c.roles, vec!["member"]);
        assert!(!c.is_admin);

        let c = noauth2("bob").unwrap();
        assert_eq!(c.project_id, "bob", "project defaults to the user");

        let c = noauth2("admin:ops").unwrap();
        assert!(c.is_admin);
        assert_eq!(c.roles, vec!["admin"]);
        assert_eq!(c.project_id, "ops");

        let c = noauth2("carol:").unwrap();
        assert_eq!(c.project_id, "carol");

        assert_eq!(noauth2(""), None);
        assert_eq!(noauth2("  "), None);
        assert_eq!(noauth2(":proj"), None);
    }

    #[test]
    fn strategy_reads_the_token_header() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = novalog_runtime::Config::default();
        cfg.api.auth_strategy = "noauth2".into();
        let s = AuthStrategy::from_config(&cfg, dir.path()).unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(s.authenticate(&h), None);
        h.insert("x-auth-token", "dave:p".parse().unwrap());
        assert_eq!(s.authenticate(&h).unwrap().user_id, "dave");

        cfg.api.auth_strategy = "keystone".into();
        cfg.identity.password_hash_rounds = 10;
        let k = AuthStrategy::from_config(&cfg, dir.path()).unwrap();
        assert_eq!(
            k.authenticate(&h),
            None,
            "noauth2 tokens are not keystone's"
        );
        cfg.api.auth_strategy = "basic".into();
        assert!(AuthStrategy::from_config(&cfg, dir.path()).is_err());
    }

    #[test]
    fn keystone_is_the_default() {
        assert_eq!(
            novalog_runtime::Config::default().api.auth_strategy,
            "keystone"
        );
    }

    #[test]
    fn actor_carries_roles() {
        let a = Context::admin().actor();
        assert!(a.is_admin());
        assert_eq!(a.project_id, "admin");
    }
}
