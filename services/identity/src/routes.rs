//! The `/identity` routes: thin handlers over [`Identity`], answering
//! errors in keystone's `{"error": {"code", "title", "message"}}` shape.

use novalog_schemas::CatalogEvent;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use novalog_request::{BaseUrl, BodyRefusal, RequestId, query_pairs};

use super::token::Claims;
use super::{AuthFailure, Identity, now_ms, views};

type IdentityState = Arc<Identity>;

/// The routes, with their state; merged into the API's router when
/// `auth_strategy = "keystone"`.
pub fn router(identity: IdentityState) -> Router {
    Router::new()
        .route("/identity", get(versions))
        .route("/identity/", get(versions))
        .route("/identity/v3", get(v3))
        .route("/identity/v3/", get(v3))
        .route("/identity/v3/auth/tokens", get(validate).post(issue))
        .route("/identity/v3/auth/projects", get(auth_projects))
        .route("/identity/v3/auth/domains", get(auth_domains))
        .route("/identity/v3/auth/system", get(auth_system))
        .route("/identity/v3/auth/catalog", get(auth_catalog))
        .with_state(identity)
}

/// Where a revocation is written: the mounting service's log, from which
/// every replica folds it into its [`super::revocations::Revocations`].
#[async_trait::async_trait]
pub trait RevocationLog: Send + Sync {
    /// Appends `record` (keyed by `key`) to the `catalog` topic and returns
    /// once this replica's revocations hold it, or why it could not.
    async fn record(&self, key: Vec<u8>, record: novalog_schemas::Envelope) -> Result<(), String>;
}

/// What the revocation route works with.
#[derive(Clone)]
struct RevokeState {
    identity: IdentityState,
    log: Arc<dyn RevocationLog>,
}

/// `DELETE /identity/v3/auth/tokens`, which writes through `log`; merged
/// beside [`router`].
pub fn revoke_router(identity: IdentityState, log: Arc<dyn RevocationLog>) -> Router {
    Router::new()
        .route("/identity/v3/auth/tokens", axum::routing::delete(revoke))
        .with_state(RevokeState { identity, log })
}

/// An error as keystone shows it.
#[derive(Debug)]
pub struct KeystoneError {
    status: StatusCode,
    message: String,
}

impl KeystoneError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        KeystoneError {
            status,
            message: message.into(),
        }
    }

    fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        )
    }

    pub(crate) fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "You are not authorized to perform the requested action.",
        )
    }
}

impl From<BodyRefusal> for KeystoneError {
    fn from(refusal: BodyRefusal) -> Self {
        Self::new(refusal.status(), refusal.message())
    }
}

/// A JSON body, refused in keystone's shape, not Nova's.
pub(crate) struct JsonBody(pub Value);

impl<S: Send + Sync> axum::extract::FromRequest<S> for JsonBody {
    type Rejection = KeystoneError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self> {
        Ok(JsonBody(novalog_request::read_json(req, state).await?))
    }
}

impl From<AuthFailure> for KeystoneError {
    fn from(f: AuthFailure) -> Self {
        match f {
            AuthFailure::BadRequest(m) => Self::new(StatusCode::BAD_REQUEST, m),
            AuthFailure::Unauthorized(m) => Self::new(StatusCode::UNAUTHORIZED, m),
        }
    }
}

impl IntoResponse for KeystoneError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = json!({"error": {
            "code": self.status.as_u16(),
            "title": title,
            "message": self.message,
        }});
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Keystone uri=\"/identity\""),
            );
        }
        resp
    }
}

pub(crate) type Result<T, E = KeystoneError> = std::result::Result<T, E>;

pub(crate) fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The caller's own token (`X-Auth-Token`), valid or 401.
pub(crate) fn caller(identity: &Identity, headers: &HeaderMap) -> Result<Claims> {
    let token = header_value(headers, "x-auth-token").ok_or_else(KeystoneError::unauthorized)?;
    identity
        .validate(token, now_ms())
        .map_err(|_| KeystoneError::unauthorized())
}

fn is_admin(claims: &Claims) -> bool {
    crate::policy::is_admin(claims)
}

pub(crate) fn links(identity: &Identity, base: &BaseUrl) -> String {
    identity.base_url(&base.0)
}

/// `GET /identity`: keystone answers 300 Multiple Choices.
async fn versions(State(identity): State<IdentityState>, l: BaseUrl) -> Response {
    let base = links(&identity, &l);
    (StatusCode::MULTIPLE_CHOICES, Json(views::versions(&base))).into_response()
}

async fn v3(State(identity): State<IdentityState>, l: BaseUrl) -> Json<Value> {
    Json(views::v3(&links(&identity, &l)))
}

fn with_subject_token(status: StatusCode, token: &str, body: Value) -> Result<Response> {
    let value = HeaderValue::from_str(token)
        .map_err(|_| KeystoneError::new(StatusCode::INTERNAL_SERVER_ERROR, "bad token"))?;
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut().insert("x-subject-token", value);
    Ok(resp)
}

fn nocatalog(query: Option<&str>) -> bool {
    query_pairs(query).iter().any(|(k, _)| k == "nocatalog")
}

/// `POST /v3/auth/tokens`: 201 with the token in `X-Subject-Token`.
async fn issue(
    State(identity): State<IdentityState>,
    l: BaseUrl,
    RawQuery(query): RawQuery,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let now = now_ms();
    let checker = identity.clone();
    let claims = tokio::task::spawn_blocking(move || checker.authenticate(&body, now))
        .await
        .map_err(|_| KeystoneError::new(StatusCode::INTERNAL_SERVER_ERROR, "auth failed"))??;
    let token = identity.sign(&claims);
    let body = views::token(
        &identity,
        &claims,
        &links(&identity, &l),
        !nocatalog(query.as_deref()),
    );
    tracing::info!(user_id = %claims.user_id, project_id = ?claims.project_id, "token issued");
    with_subject_token(StatusCode::CREATED, &token, body)
}

/// `GET|HEAD /v3/auth/tokens`: validates `X-Subject-Token` for a caller
/// who is an admin or the token's own user; 404 when it is not valid.
async fn validate(
    State(identity): State<IdentityState>,
    headers: HeaderMap,
    l: BaseUrl,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let caller = caller(&identity, &headers)?;
    let subject = header_value(&headers, "x-subject-token").unwrap_or_default();
    let claims = identity
        .validate(subject, now_ms())
        .map_err(|_| KeystoneError::new(StatusCode::NOT_FOUND, "Could not find token."))?;
    if !is_admin(&caller) && caller.user_id != claims.user_id {
        return Err(KeystoneError::forbidden());
    }
    let body = views::token(
        &identity,
        &claims,
        &links(&identity, &l),
        !nocatalog(query.as_deref()),
    );
    with_subject_token(StatusCode::OK, subject, body)
}

/// `DELETE /v3/auth/tokens`: revokes `X-Subject-Token` for a caller who
/// is an admin or the token's own user (keystone's
/// `identity:revoke_token`), then 204. The revocation is a `TokenRevoked`
/// record on `catalog`; the answer waits until this replica has folded
/// it, and every other replica refuses the token once it has too, as
/// after a restart.
async fn revoke(
    State(state): State<RevokeState>,
    headers: HeaderMap,
    rid: RequestId,
) -> Result<StatusCode> {
    let identity = &state.identity;
    let caller = caller(identity, &headers)?;
    let subject = header_value(&headers, "x-subject-token").unwrap_or_default();
    let claims = identity
        .validate(subject, now_ms())
        .map_err(|_| KeystoneError::new(StatusCode::NOT_FOUND, "Could not find token."))?;
    if !is_admin(&caller) && caller.user_id != claims.user_id {
        return Err(KeystoneError::forbidden());
    }
    let audit_id = claims.audit_ids[0].clone();
    let env = novalog_schemas::Envelope {
        meta: novalog_schemas::Meta::origin(
            uuid::Uuid::new_v4(),
            rid.0,
            novalog_schemas::Actor {
                user_id: caller.user_id.clone(),
                project_id: caller.project_id.clone().unwrap_or_default(),
                roles: caller.roles.clone(),
            },
            audit_id.clone(),
        ),
        event: novalog_schemas::Event::Catalog(CatalogEvent::TokenRevoked {
            audit_id: audit_id.clone(),
            expires_at_ms: claims.expires_at,
        }),
    };
    let unavailable = || {
        KeystoneError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is temporarily unable to record the revocation; try again later.",
        )
    };
    state
        .log
        .record(audit_id.into_bytes(), env)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "token revocation not recorded");
            unavailable()
        })?;
    tracing::info!(user_id = %claims.user_id, "token revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/auth/projects`: the projects the caller may scope to.
async fn auth_projects(
    State(identity): State<IdentityState>,
    headers: HeaderMap,
    l: BaseUrl,
) -> Result<Json<Value>> {
    let caller = caller(&identity, &headers)?;
    let view = identity.directory.view();
    let base = links(&identity, &l);
    let projects: Vec<Value> = view
        .project_ids_of(&caller.user_id)
        .iter()
        .filter_map(|id| view.projects.get(id))
        .map(|p| views::project(p, &base))
        .collect();
    Ok(Json(
        json!({"projects": projects, "links": views::list_links(&base, "auth/projects")}),
    ))
}

/// `GET /v3/auth/domains`: the domains the caller may scope to.
async fn auth_domains(
    State(identity): State<IdentityState>,
    headers: HeaderMap,
    l: BaseUrl,
) -> Result<Json<Value>> {
    let caller = caller(&identity, &headers)?;
    let view = identity.directory.view();
    let base = links(&identity, &l);
    let domains: Vec<Value> = view
        .domain_ids_of(&caller.user_id)
        .iter()
        .filter_map(|id| view.domains.get(id))
        .map(|d| views::domain(d, &base))
        .collect();
    Ok(Json(
        json!({"domains": domains, "links": views::list_links(&base, "auth/domains")}),
    ))
}

/// `GET /v3/auth/system`: the system scopes the caller may use. This
/// service keeps no system role assignments, so none; keystone answers
/// the same to a user without one.
async fn auth_system(
    State(identity): State<IdentityState>,
    headers: HeaderMap,
    l: BaseUrl,
) -> Result<Json<Value>> {
    caller(&identity, &headers)?;
    let base = links(&identity, &l);
    Ok(Json(
        json!({"system": [], "links": views::list_links(&base, "auth/system")}),
    ))
}

/// `GET /v3/auth/catalog`: the catalog of a scoped token.
async fn auth_catalog(
    State(identity): State<IdentityState>,
    headers: HeaderMap,
    l: BaseUrl,
) -> Result<Json<Value>> {
    let caller = caller(&identity, &headers)?;
    if caller.project_id.is_none() && caller.domain_id.is_none() {
        return Err(KeystoneError::forbidden());
    }
    Ok(Json(json!({
        "catalog": views::catalog(&links(&identity, &l), &identity.region),
        "links": {"self": null, "previous": null, "next": null},
    })))
}
