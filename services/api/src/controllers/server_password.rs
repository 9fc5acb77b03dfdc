//! A server's encrypted password (nova's server_password controller and
//! the metadata service's password handler), kept on the instance as Nova
//! keeps it in system metadata, every change an event on the log:
//! - `GET /v2.1/servers/{id}/os-server-password`: the password, `""` when
//!   none was posted;
//! - `DELETE /v2.1/servers/{id}/os-server-password`: clears it (204);
//! - `POST /openstack/{version}/password`: what a guest posts through the
//!   metadata service, once (409 while one is set), at most 256 bytes;
//!   `GET` there reads it back. The guest is named by a metadata proxy's
//!   headers (`X-Instance-ID`, `X-Tenant-ID`, and `X-Instance-ID-Signature`,
//!   the HMAC-SHA256 of the instance id under `[api]
//!   metadata_proxy_shared_secret`), as Nova's metadata service takes them
//!   from neutron's proxy.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use novalog_schemas::{Event, Instance, InstanceEvent, Intent};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Context;
use crate::domain::compute;
use crate::error::{ApiError, Result};
use crate::http::RequestId;
use crate::policy::Rule;

/// Nova's `password.MAX_SIZE`: the most a guest may post.
pub const MAX_SIZE: usize = 256;

/// `GET /servers/{id}/os-server-password`.
pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::ReaderOrAdmin("os_compute_api:os-server-password:show"),
    )?;
    Ok(Json(json!({"password": inst.password})))
}

/// `DELETE /servers/{id}/os-server-password`: 204, the password cleared
/// (an event even when none was set, as Nova saves the empty value).
pub async fn clear(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::OwnerOrAdmin("os_compute_api:os-server-password:clear"),
    )?;
    set(&app, &ctx, &request_id, &inst, String::new()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set(
    app: &AppState,
    ctx: &Context,
    request_id: &str,
    inst: &Instance,
    password: String,
) -> Result<()> {
    let event = Event::Intent(Intent::ServerPasswordChangeRequested {
        instance_id: inst.id,
        password,
    });
    match compute::change(app, ctx, request_id, inst, event).await? {
        Event::Instance(InstanceEvent::InstancePasswordSet { .. }) => Ok(()),
        other => Err(ApiError::unavailable(format!(
            "unexpected verdict {}",
            other.type_name()
        ))),
    }
}

/// Whether `signature` (hex) is the HMAC-SHA256 of `instance_id` under
/// `secret` (Nova's `_validate_shared_secret`), compared in constant time.
pub fn signature_valid(secret: &str, instance_id: &str, signature: &str) -> bool {
    if secret.is_empty() || !signature.len().is_multiple_of(2) {
        return false;
    }
    let Some(bytes) = (0..signature.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(signature.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(instance_id.as_bytes());
    mac.verify_slice(&bytes).is_ok()
}

/// The guest a proxied metadata request comes from (Nova's
/// `_handle_instance_id_request`): 400 without the headers, 403 for a bad
/// signature, 404 for an instance that is gone or not the tenant's.
fn guest(app: &AppState, headers: &HeaderMap) -> Result<std::sync::Arc<Instance>> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let instance_id = header("x-instance-id")
        .ok_or_else(|| ApiError::bad_request("X-Instance-ID header is missing from request."))?;
    let tenant_id = header("x-tenant-id")
        .ok_or_else(|| ApiError::bad_request("X-Tenant-ID header is missing from request."))?;
    let signature = header("x-instance-id-signature").unwrap_or("");
    if !signature_valid(&app.metadata_secret, instance_id, signature) {
        return Err(ApiError::forbidden("Invalid proxy request signature."));
    }
    let not_found = || ApiError::not_found("Instance not found.");
    let id: uuid::Uuid = instance_id.parse().map_err(|_| not_found())?;
    let inst = app
        .projection
        .instance(&id)
        .filter(|i| !i.is_deleted())
        .ok_or_else(not_found)?;
    if inst.project_id != tenant_id {
        return Err(not_found());
    }
    Ok(inst)
}

/// `GET /openstack/{version}/password`: the password as text.
pub async fn metadata_show(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(_version): Path<String>,
) -> Result<Response> {
    let inst = guest(&app, &headers)?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=UTF-8",
        )],
        inst.password.clone(),
    )
        .into_response())
}

/// `POST /openstack/{version}/password`: the guest's encrypted password,
/// once. The change is decided as the instance's owner would make it.
pub async fn metadata_set(
    State(app): State<AppState>,
    headers: HeaderMap,
    RequestId(request_id): RequestId,
    Path(_version): Path<String>,
    body: Bytes,
) -> Result<StatusCode> {
    let inst = guest(&app, &headers)?;
    if body.len() > MAX_SIZE {
        return Err(ApiError::bad_request("Request is too large."));
    }
    let password = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_request("The password is not text."))?;
    if !inst.password.is_empty() {
        return Err(ApiError::conflict("Password already set."));
    }
    let owner = Context::new(&inst.user_id, &inst.project_id, vec!["member".into()]);
    set(&app, &owner, &request_id, &inst, password).await?;
    Ok(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_novas_hmac_of_the_instance_id() {
        // hmac.new(b"secret", b"abc", hashlib.sha256).hexdigest()
        let good = "9946dad4e00e913fc8be8e5d3f7e110a4a9e832f83fb09c345285d78638d8a0e";
        assert!(signature_valid("secret", "abc", good));
        assert!(!signature_valid("secret", "abd", good));
        assert!(!signature_valid("other", "abc", good));
        assert!(!signature_valid("", "abc", good));
        assert!(!signature_valid("secret", "abc", "zz"));
        assert!(!signature_valid("secret", "abc", &good[1..]));
    }
}
