//! `/v2.1/os-availability-zone[/detail]`: the zones hosts are in, each
//! host's from its aggregates or its own configuration. The detail (with
//! hosts and their services) is for administrators.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Context;
use crate::error::{ApiError, Result};
use crate::views::usage_time;

pub async fn index(State(app): State<AppState>, _ctx: Context) -> Result<Json<Value>> {
    let zones: Vec<Value> = app
        .projection
        .availability_zones()
        .into_iter()
        .map(|z| json!({"zoneName": z, "zoneState": {"available": true}, "hosts": null}))
        .collect();
    Ok(Json(json!({"availabilityZoneInfo": zones})))
}

pub async fn detail(State(app): State<AppState>, ctx: Context) -> Result<Json<Value>> {
    if !ctx.is_admin {
        return Err(ApiError::forbidden(
            "Policy doesn't allow os_compute_api:os-availability-zone:detail to be performed.",
        ));
    }
    let now = novalog_schemas::now_ms();
    let mut zones: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    for h in app.projection.hosts() {
        let up = h.status(now, app.service_down_time_ms) == "UP";
        zones
            .entry(h.availability_zone.clone())
            .or_default()
            .insert(
                h.name.clone(),
                json!({"nova-compute": {
                    "available": up,
                    "active": true,
                    "updated_at": usage_time(h.last_seen_ms),
                }}),
            );
    }
    let info: Vec<Value> = zones
        .into_iter()
        .map(|(z, hosts)| json!({"zoneName": z, "zoneState": {"available": true}, "hosts": hosts}))
        .collect();
    Ok(Json(json!({"availabilityZoneInfo": info})))
}
