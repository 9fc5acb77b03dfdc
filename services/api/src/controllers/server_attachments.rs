//! What a server has attached beyond its image: NUMA topology (2.78),
//! volumes (`os-volume_attachments`), ports (`os-interface`) and shares
//! (2.97). Novalog has no block storage, networking or file share
//! service and its drivers pin no NUMA cells, so every server has none of
//! them: the lists are empty, as Nova answers for a server without any,
//! and what names a volume, port, network or share answers Nova's 404 for
//! one its service does not have. Policies are Nova's: reading for the
//! project's readers, changing for its members, administrators always.
//! Nothing here changes state, so nothing is written to the log.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::Context;
use crate::domain::compute;
use crate::error::{ApiError, Result};
use crate::http::JsonBody;
use crate::microversion::ApiVersion;
use crate::policy::Rule;
use crate::validation::{invalid, object, repr, required, string};

/// Nova's answer for a route below the microversion that added it.
fn no_such_route() -> ApiError {
    ApiError::not_found("The resource could not be found.")
}

/// A uuid field of a request body, or Nova's 400 for it.
fn uuid_field(field: &str, value: &Value) -> Result<Uuid> {
    let s = string(field, value, 0, usize::MAX)?;
    Uuid::parse_str(s)
        .map_err(|_| invalid(field, value, format!("{} is not a 'uuid'", repr(value))))
}

// ---- topology (2.78) ----

/// `GET /servers/{id}/topology` from 2.78: no NUMA topology is kept for
/// any server, which Nova shows as no nodes.
pub async fn topology(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    if !version.at_least(2, 78) {
        return Err(no_such_route());
    }
    compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::ReaderOrAdmin("compute:server:topology:index"),
    )?;
    Ok(Json(json!({"nodes": [], "pagesize_kb": null})))
}

// ---- os-volume_attachments ----

/// Before 2.20 a shelved server takes no volume changes: Nova's 409.
fn shelved_before_2_20(
    version: ApiVersion,
    inst: &novalog_schemas::Instance,
    method: &str,
) -> Result<()> {
    use novalog_schemas::VmState;
    let shelved = matches!(inst.vm_state, VmState::Shelved | VmState::ShelvedOffloaded);
    if shelved && !version.at_least(2, 20) {
        return Err(ApiError::conflict(format!(
            "Cannot '{method}' instance {} while it is in vm_state {}",
            inst.id,
            inst.vm_state.as_str()
        )));
    }
    Ok(())
}

/// `GET /servers/{id}/os-volume_attachments`: none.
pub async fn volumes_index(
    State(app): State<AppState>,
    ctx: Context,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::ReaderOrAdmin("os_compute_api:os-volumes-attachments:index"),
    )?;
    Ok(Json(json!({"volumeAttachments": []})))
}

/// `GET /servers/{id}/os-volume_attachments/{volume_id}`: not attached.
pub async fn volume_show(
    State(app): State<AppState>,
    ctx: Context,
    Path((id, volume_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::ReaderOrAdmin("os_compute_api:os-volumes-attachments:show"),
    )?;
    Err(ApiError::not_found(format!(
        "Instance {id} is not attached to volume {volume_id}"
    )))
}

/// `POST /servers/{id}/os-volume_attachments`: the body as Nova's schema
/// checks it (`tag` from 2.49, `delete_on_termination` from 2.79), then
/// the volume, which the absent volume service does not have.
pub async fn volume_attach(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let top = object("", &body)?;
    let a = object("volumeAttachment", required("", top, "volumeAttachment")?)?;
    let volume_id = uuid_field("volumeId", required("volumeAttachment", a, "volumeId")?)?;
    let mut allowed = vec!["volumeId", "device"];
    if version.at_least(2, 49) {
        allowed.push("tag");
        if let Some(t) = a.get("tag") {
            crate::validation::server_create::tag(t)?;
        }
    }
    if version.at_least(2, 79) {
        allowed.push("delete_on_termination");
        if let Some(d) = a.get("delete_on_termination") {
            crate::validation::boolean("delete_on_termination", d)?;
        }
    }
    crate::validation::only("volumeAttachment", a, &allowed)?;
    crate::validation::only("", top, &["volumeAttachment"])?;
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::OwnerOrAdmin("os_compute_api:os-volumes-attachments:create"),
    )?;
    shelved_before_2_20(version, &inst, "attach_volume")?;
    Err(ApiError::not_found(format!(
        "Volume {volume_id} could not be found."
    )))
}

/// `PUT /servers/{id}/os-volume_attachments/{volume_id}`: a swap
/// (administrators) before 2.85, also the `delete_on_termination` update
/// from it; either way the volume is not found.
pub async fn volume_update(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path((id, volume_id)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let top = object("", &body)?;
    object("volumeAttachment", required("", top, "volumeAttachment")?)?;
    let rule = if version.at_least(2, 85) {
        Rule::OwnerOrAdmin("os_compute_api:os-volumes-attachments:update")
    } else {
        Rule::AdminOnly("os_compute_api:os-volumes-attachments:swap")
    };
    compute::authorized(&app, &ctx, &id, rule)?;
    Err(ApiError::not_found(format!(
        "Volume {volume_id} could not be found."
    )))
}

/// `DELETE /servers/{id}/os-volume_attachments/{volume_id}`.
pub async fn volume_detach(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path((id, volume_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::OwnerOrAdmin("os_compute_api:os-volumes-attachments:delete"),
    )?;
    shelved_before_2_20(version, &inst, "detach_volume")?;
    Err(ApiError::not_found(format!(
        "Volume {volume_id} could not be found."
    )))
}

// ---- os-interface ----

/// `GET /servers/{id}/os-interface`: no ports.
pub async fn interfaces_index(
    State(app): State<AppState>,
    ctx: Context,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::ReaderOrAdmin("os_compute_api:os-attach-interfaces:list"),
    )?;
    Ok(Json(json!({"interfaceAttachments": []})))
}

/// `GET /servers/{id}/os-interface/{port_id}`.
pub async fn interface_show(
    State(app): State<AppState>,
    ctx: Context,
    Path((id, port_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::ReaderOrAdmin("os_compute_api:os-attach-interfaces:show"),
    )?;
    Err(ApiError::not_found(format!(
        "Port id {port_id} could not be found."
    )))
}

/// `POST /servers/{id}/os-interface`: a port or network the absent
/// network service does not have, or none to pick one from.
pub async fn interface_attach(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let top = object("", &body)?;
    let empty = Value::Object(Default::default());
    let a = object(
        "interfaceAttachment",
        top.get("interfaceAttachment").unwrap_or(&empty),
    )?;
    let port = a
        .get("port_id")
        .map(|v| uuid_field("port_id", v))
        .transpose()?;
    let net = a
        .get("net_id")
        .map(|v| uuid_field("net_id", v))
        .transpose()?;
    let mut allowed = vec!["net_id", "port_id", "fixed_ips"];
    if version.at_least(2, 49) {
        allowed.push("tag");
        if let Some(t) = a.get("tag") {
            crate::validation::server_create::tag(t)?;
        }
    }
    crate::validation::only("interfaceAttachment", a, &allowed)?;
    crate::validation::only("", top, &["interfaceAttachment"])?;
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::OwnerOrAdmin("os_compute_api:os-attach-interfaces:create"),
    )?;
    if port.is_some() && net.is_some() {
        return Err(ApiError::bad_request(
            "Must not input both network_id and port_id",
        ));
    }
    Err(match (port, net) {
        (Some(p), _) => ApiError::not_found(format!("Port id {p} could not be found.")),
        (_, Some(n)) => ApiError::not_found(format!("Network {n} could not be found.")),
        _ => ApiError::bad_request(format!(
            "No specific network was requested and none are available for project '{}'.",
            inst.project_id
        )),
    })
}

/// `DELETE /servers/{id}/os-interface/{port_id}`.
pub async fn interface_detach(
    State(app): State<AppState>,
    ctx: Context,
    Path((id, port_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::OwnerOrAdmin("os_compute_api:os-attach-interfaces:delete"),
    )?;
    Err(ApiError::not_found(format!(
        "Port id {port_id} could not be found."
    )))
}

// ---- shares (2.97) ----

/// `GET /servers/{id}/shares` from 2.97: no shares.
pub async fn shares_index(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    if !version.at_least(2, 97) {
        return Err(no_such_route());
    }
    compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::ReaderOrAdmin("os_compute_api:os-shares:index"),
    )?;
    Ok(Json(json!({"shares": []})))
}

/// `GET /servers/{id}/shares/{share_id}` from 2.97.
pub async fn share_show(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path((id, share_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    if !version.at_least(2, 97) {
        return Err(no_such_route());
    }
    compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::ReaderOrAdmin("os_compute_api:os-shares:show"),
    )?;
    Err(ApiError::not_found(format!(
        "Share {share_id} could not be found."
    )))
}

/// `POST /servers/{id}/shares` from 2.97: `{"share": {"share_id": ...,
/// "tag": ...}}`; the share service does not have it.
pub async fn share_attach(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    if !version.at_least(2, 97) {
        return Err(no_such_route());
    }
    let top = object("", &body)?;
    let s = object("share", required("", top, "share")?)?;
    let share_id = uuid_field("share_id", required("share", s, "share_id")?)?;
    if let Some(t) = s.get("tag") {
        string("tag", t, 1, 255)?;
    }
    crate::validation::only("share", s, &["share_id", "tag"])?;
    crate::validation::only("", top, &["share"])?;
    compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::OwnerOrAdmin("os_compute_api:os-shares:create"),
    )?;
    Err(ApiError::not_found(format!(
        "Share {share_id} could not be found."
    )))
}

/// `DELETE /servers/{id}/shares/{share_id}` from 2.97.
pub async fn share_detach(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path((id, share_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    if !version.at_least(2, 97) {
        return Err(no_such_route());
    }
    compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::OwnerOrAdmin("os_compute_api:os-shares:delete"),
    )?;
    Err(ApiError::not_found(format!(
        "Share {share_id} could not be found."
    )))
}
