//! `/v2.1/servers/{id}/ips[/{network}]` (nova's ips controller): a
//! server's addresses by network label. Servers get no network ports here
//! (no network service), so every server has no network: the index is
//! empty and any label is "not a member", as Nova answers for a server
//! created with `networks: none`.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::auth::Context;
use crate::domain::compute;
use crate::error::{ApiError, Result};
use crate::policy::Rule;

/// A server's addresses by network label (what `addresses` shows).
fn networks_of(_inst: &novalog_schemas::Instance) -> Map<String, Value> {
    Map::new()
}

/// `GET /servers/{id}/ips`.
pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::ReaderOrAdmin("os_compute_api:ips:index"),
    )?;
    Ok(Json(json!({"addresses": networks_of(&inst)})))
}

/// `GET /servers/{id}/ips/{network}`.
pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    Path((id, network)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::ReaderOrAdmin("os_compute_api:ips:show"),
    )?;
    match networks_of(&inst).remove(&network) {
        Some(ips) => Ok(Json(json!({ network: ips }))),
        None => Err(ApiError::not_found(
            "Instance is not a member of specified network",
        )),
    }
}
