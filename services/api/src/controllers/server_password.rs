//! `/v2.1/servers/{id}/os-server-password` (nova's server_password
//! controller): the encrypted password a guest posted to the metadata
//! service, kept in the server's system metadata. There is no metadata
//! service here for a guest to post one to, so a server never has a
//! password: `GET` answers `""` (Nova's answer for a server without one)
//! and `DELETE` has nothing to clear (204, no event: no state changes).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Context;
use crate::domain::compute;
use crate::error::Result;
use crate::policy::Rule;

/// `GET /servers/{id}/os-server-password`.
pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::ReaderOrAdmin("os_compute_api:os-server-password:show"),
    )?;
    Ok(Json(json!({"password": ""})))
}

/// `DELETE /servers/{id}/os-server-password`: 204.
pub async fn clear(
    State(app): State<AppState>,
    ctx: Context,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::OwnerOrAdmin("os_compute_api:os-server-password:clear"),
    )?;
    Ok(StatusCode::NO_CONTENT)
}
