//! `/v2.1/os-networks` (nova's networks controller): a proxy to the
//! network service up to 2.35 (404 from 2.36). There is no network
//! service here, so the list is empty and every network is unknown; the
//! nova-network writes Nova removed in 21.0.0 answer 410 Gone at every
//! version.

use axum::Json;
use serde_json::{Value, json};

use crate::auth::Context;
use crate::error::{ApiError, Result};
use crate::microversion::ApiVersion;
use crate::policy::{self, Rule};

/// Nova's `MAX_PROXY_API_SUPPORT_VERSION`: the proxies end at 2.35.
fn until_2_35(version: ApiVersion) -> Result<()> {
    if version.at_least(2, 36) {
        Err(ApiError::not_found("The resource could not be found."))
    } else {
        Ok(())
    }
}

/// `GET /os-networks`.
pub async fn index(ctx: Context, version: ApiVersion) -> Result<Json<Value>> {
    until_2_35(version)?;
    policy::authorize(
        &ctx,
        Rule::ReaderOrAdmin("os_compute_api:os-networks:list"),
        Some(&ctx.project_id),
    )?;
    Ok(Json(json!({ "networks": [] })))
}

/// `GET /os-networks/{id}`.
pub async fn show(ctx: Context, version: ApiVersion) -> Result<Json<Value>> {
    until_2_35(version)?;
    policy::authorize(
        &ctx,
        Rule::ReaderOrAdmin("os_compute_api:os-networks:show"),
        Some(&ctx.project_id),
    )?;
    Err(ApiError::not_found("Network not found"))
}

/// `POST /os-networks`, `POST /os-networks/add`, `DELETE /os-networks/{id}`
/// and the `disassociate` action: removed with nova-network.
pub async fn gone(_ctx: Context) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::GONE,
        "This resource is no longer available.  No forwarding address is given.",
    )
}
