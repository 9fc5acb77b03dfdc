//! `/v2.1/os-hosts` (nova's hosts controller, deprecated at 2.43: 404
//! from there): the compute hosts, their resources, and the old host
//! switches. Administrators only.
//!
//! `PUT` with `status` enables or disables the host's compute service (an
//! intent the conductor decides, as `os-services` does). The maintenance
//! switch and the power actions are what the virt driver answers: the fake
//! driver echoes them (Nova's `FakeDriver`), other drivers do not
//! implement them (501, as Nova's libvirt driver).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use novalog_schemas::events::{ServiceChange, ServiceStatus};
use serde_json::{Value, json};

use crate::app::{App, AppState};
use crate::auth::Context;
use crate::domain::compute_services;
use crate::error::{ApiError, Result};
use crate::http::{JsonBody, RequestId, query_pairs};
use crate::microversion::ApiVersion;
use crate::projection::HostView;
use crate::validation::{self, invalid, repr};

/// The driver whose host switches answer (Nova's `FakeDriver`).
const FAKE_DRIVER: &str = "fake";

fn until_2_42(version: ApiVersion) -> Result<()> {
    if version.at_least(2, 43) {
        Err(ApiError::not_found("The resource could not be found."))
    } else {
        Ok(())
    }
}

fn authorize(ctx: &Context, rule: &str) -> Result<()> {
    if ctx.is_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "Policy doesn't allow os_compute_api:os-hosts:{rule} to be performed."
        )))
    }
}

/// The registered host `name` (Nova looks up its cell mapping first).
fn host(app: &App, name: &str) -> Result<HostView> {
    app.projection
        .host(name)
        .filter(|h| !h.deleted)
        .ok_or_else(|| ApiError::not_found(format!("Host '{name}' is not mapped to any cell")))
}

/// `GET /os-hosts[?zone=]`: the hosts of enabled services.
pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    until_2_42(version)?;
    authorize(&ctx, "list")?;
    // Unknown query parameters are ignored (Nova's schema leaves them open).
    let zone = query_pairs(q.as_deref())
        .into_iter()
        .rev()
        .find(|(k, v)| k == "zone" && !v.is_empty())
        .map(|(_, v)| v);
    let hosts: Vec<Value> = app
        .projection
        .hosts()
        .into_iter()
        .filter(|h| !h.deleted && !h.service.disabled)
        .filter(|h| zone.as_ref().is_none_or(|z| &h.availability_zone == z))
        .map(|h| json!({"host_name": h.name, "service": "compute", "zone": h.availability_zone}))
        .collect();
    Ok(Json(json!({ "hosts": hosts })))
}

/// One row of `GET /os-hosts/{host}`.
fn resource(host: &str, project: &str, cpu: u64, memory_mb: u64, disk_gb: u64) -> Value {
    json!({"resource": {"host": host, "project": project, "cpu": cpu,
                        "memory_mb": memory_mb, "disk_gb": disk_gb}})
}

/// `GET /os-hosts/{host}`: the total, what the host reports in use, the
/// sum of its instances' flavors, then that sum per project.
pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(name): Path<String>,
) -> Result<Json<Value>> {
    until_2_42(version)?;
    authorize(&ctx, "show")?;
    let h = host(&app, &name)?;
    let (cap, used) = (h.capacity, h.usage);
    let mut rows = vec![
        resource(
            &name,
            "(total)",
            u64::from(cap.vcpus),
            cap.memory_mb,
            cap.disk_gb,
        ),
        resource(
            &name,
            "(used_now)",
            u64::from(used.vcpus_used),
            used.memory_mb_used,
            used.disk_gb_used,
        ),
    ];
    // Projects in the order their first instance on the host comes.
    let mut order: Vec<String> = Vec::new();
    let mut by_project: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    let mut sum = (0u64, 0u64, 0u64);
    for i in app.projection.instances(None) {
        if i.is_deleted() || i.host.as_deref() != Some(name.as_str()) {
            continue;
        }
        let f = &i.flavor;
        let add = (
            u64::from(f.vcpus),
            f.ram_mb,
            f.disk_gb.saturating_add(f.ephemeral_gb),
        );
        let entry = by_project.entry(i.project_id.clone()).or_insert_with(|| {
            order.push(i.project_id.clone());
            (0, 0, 0)
        });
        *entry = (entry.0 + add.0, entry.1 + add.1, entry.2 + add.2);
        sum = (sum.0 + add.0, sum.1 + add.1, sum.2 + add.2);
    }
    rows.push(resource(&name, "(used_max)", sum.0, sum.1, sum.2));
    for p in order {
        let (c, m, d) = by_project[&p];
        rows.push(resource(&name, &p, c, m, d));
    }
    Ok(Json(json!({ "host": rows })))
}

/// `enable` / `disable` in any of Nova's three spellings.
fn switch(body: &serde_json::Map<String, Value>, field: &str) -> Result<Option<bool>> {
    let Some(v) = body.get(field) else {
        return Ok(None);
    };
    match v.as_str() {
        Some("enable" | "Enable" | "ENABLE") => Ok(Some(true)),
        Some("disable" | "Disable" | "DISABLE") => Ok(Some(false)),
        _ => Err(invalid(
            field,
            v,
            format!(
                "{} is not one of ['enable', 'disable', 'Enable', 'Disable', 'ENABLE', 'DISABLE']",
                repr(v)
            ),
        )),
    }
}

/// The parsed body of `PUT /os-hosts/{host}`: `(status, maintenance_mode)`,
/// at least one of them.
pub fn parse_update(body: &Value) -> Result<(Option<bool>, Option<bool>)> {
    let m = validation::object("", body)?;
    validation::only("", m, &["status", "maintenance_mode"])?;
    let status = switch(m, "status")?;
    let maintenance = switch(m, "maintenance_mode")?;
    if status.is_none() && maintenance.is_none() {
        // Nova's schema: `anyOf` requiring one of them.
        return Err(ApiError::bad_request(format!(
            "{} is not valid under any of the given schemas",
            repr(body)
        )));
    }
    Ok((status, maintenance))
}

/// A host switch only the fake driver implements.
fn driver_answer<'a>(h: &HostView, answer: &'a str) -> Result<&'a str> {
    if h.hypervisor_type == FAKE_DRIVER {
        Ok(answer)
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            "The requested functionality is not supported.",
        ))
    }
}

/// `PUT /os-hosts/{host}`: `{"status": "enable"|"disable",
/// "maintenance_mode": ...}`, answered unwrapped as Nova does.
pub async fn update(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    until_2_42(version)?;
    authorize(&ctx, "update")?;
    let (status, maintenance) = parse_update(&body)?;
    let h = host(&app, &name)?;
    let mut answer = json!({ "host": name });
    if let Some(enabled) = status {
        let change = ServiceChange {
            host: h.name.clone(),
            disabled: Some(!enabled),
            disabled_reason: Some(None),
            forced_down: None,
            seen: ServiceStatus {
                host: h.name.clone(),
                ..h.service.clone()
            },
        };
        compute_services::update(&app, &ctx, &request_id, change).await?;
        answer["status"] = json!(if enabled { "enabled" } else { "disabled" });
    }
    if let Some(on) = maintenance {
        let mode = if on {
            "on_maintenance"
        } else {
            "off_maintenance"
        };
        answer["maintenance_mode"] = json!(driver_answer(&h, mode)?);
    }
    Ok(Json(answer))
}

async fn power_action(
    app: &App,
    ctx: &Context,
    version: ApiVersion,
    name: &str,
    rule: &str,
    action: &str,
) -> Result<Json<Value>> {
    until_2_42(version)?;
    authorize(ctx, rule)?;
    let h = host(app, name)?;
    Ok(Json(
        json!({"host": name, "power_action": driver_answer(&h, action)?}),
    ))
}

/// `GET /os-hosts/{host}/reboot`.
pub async fn reboot(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(name): Path<String>,
) -> Result<Json<Value>> {
    power_action(&app, &ctx, version, &name, "reboot", "reboot").await
}

/// `GET /os-hosts/{host}/shutdown`.
pub async fn shutdown(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(name): Path<String>,
) -> Result<Json<Value>> {
    power_action(&app, &ctx, version, &name, "shutdown", "shutdown").await
}

/// `GET /os-hosts/{host}/startup`.
pub async fn startup(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(name): Path<String>,
) -> Result<Json<Value>> {
    power_action(&app, &ctx, version, &name, "start", "startup").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_take_novas_spellings_and_need_one_switch() {
        assert_eq!(
            parse_update(&json!({"status": "Disable"})).unwrap(),
            (Some(false), None)
        );
        assert_eq!(
            parse_update(&json!({"status": "ENABLE", "maintenance_mode": "disable"})).unwrap(),
            (Some(true), Some(false))
        );
        assert!(
            parse_update(&json!({}))
                .unwrap_err()
                .message
                .contains("is not valid under any of the given schemas")
        );
        assert!(
            parse_update(&json!({"status": "on"}))
                .unwrap_err()
                .message
                .contains("'on' is not one of")
        );
        assert!(
            parse_update(&json!({"status": "enable", "x": 1}))
                .unwrap_err()
                .message
                .contains("'x' was unexpected")
        );
    }
}
