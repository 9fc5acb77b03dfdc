//! `GET /v2.1/servers/{id}/diagnostics` (nova's server_diagnostics
//! controller, administrators only): what the server's virt driver
//! reports, in the driver's own shape before 2.48 and Nova's standard one
//! from 2.48. The server must be on a host (409 not ready) and running
//! (409 for any other power state); a driver that cannot report answers
//! 501.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use novalog_schemas::PowerState;
use serde_json::Value;

use crate::app::AppState;
use crate::auth::Context;
use crate::domain::{compute, diagnostics};
use crate::error::{ApiError, Result};
use crate::microversion::ApiVersion;
use crate::policy::Rule;

/// Nova's name of a power state (`power_state.STATE_MAP`).
fn power_state_name(p: PowerState) -> &'static str {
    match p {
        PowerState::NoState => "pending",
        PowerState::Running => "running",
        PowerState::Paused => "paused",
        PowerState::Shutdown => "shutdown",
        PowerState::Crashed => "crashed",
        PowerState::Suspended => "suspended",
    }
}

/// `GET /servers/{id}/diagnostics`.
pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::AdminOnly("os_compute_api:os-server-diagnostics"),
    )?;
    let Some(host) = inst.host.as_deref() else {
        return Err(ApiError::conflict(format!(
            "Instance {} is not ready",
            inst.id
        )));
    };
    if inst.power_state != PowerState::Running {
        return Err(ApiError::conflict(format!(
            "Cannot 'get_diagnostics' instance {id} while it is in power state {}",
            power_state_name(inst.power_state)
        )));
    }
    let hypervisor = app
        .projection
        .host(host)
        .map(|h| h.hypervisor_type)
        .unwrap_or_default();
    let driver = diagnostics::for_hypervisor(&hypervisor).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "The requested functionality is not supported.",
        )
    })?;
    Ok(Json(if version.at_least(2, 48) {
        driver.standard(host, inst.id).render()
    } else {
        driver.legacy(host, inst.id)
    }))
}
