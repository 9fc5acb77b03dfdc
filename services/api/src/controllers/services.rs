//! `/v2.1/os-services`: one `nova-compute` service per host, for
//! administrators. Below 2.53 ids are integers and changes go through
//! `PUT /os-services/{enable,disable,disable-log-reason,force-down}`; from
//! 2.53 ids are uuids and `PUT /os-services/{id}` changes a service.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use novalog_schemas::events::{ServiceChange, ServiceStatus};
use serde_json::{Map, Value, json};

use crate::app::{App, AppState};
use crate::auth::Context;
use crate::domain::compute_services::{self as services, COMPUTE, authorize};
use crate::error::{ApiError, Result};
use crate::http::{JsonBody, RequestId, query_pairs};
use crate::microversion::ApiVersion;
use crate::projection::HostView;
use crate::validation::query;
use crate::validation::{self, invalid, repr};
use crate::views::usage_time;

/// A service as `GET /os-services` shows it.
pub fn render(app: &App, h: &HostView, version: ApiVersion, now_ms: i64) -> Value {
    let up = h.is_up(now_ms, app.service_down_time_ms);
    let mut v = json!({
        "id": if version.at_least(2, 53) { json!(h.uuid) } else { json!(h.id) },
        "binary": COMPUTE,
        "host": h.name,
        "zone": h.availability_zone,
        "status": if h.service.disabled { "disabled" } else { "enabled" },
        "state": if up { "up" } else { "down" },
        "updated_at": usage_time(h.last_seen_ms),
        "disabled_reason": h.service.disabled_reason,
    });
    if version.at_least(2, 11) {
        v["forced_down"] = json!(h.service.forced_down);
    }
    v
}

/// `GET /os-services[?host=&binary=]`.
pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let params = query::SERVICES.check(query_pairs(q.as_deref()), version, ctx.is_admin)?;
    authorize(&ctx, "list")?;
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let now = novalog_schemas::now_ms();
    let list: Vec<Value> = app
        .projection
        .hosts()
        .iter()
        .filter(|h| param("host").is_none_or(|want| &h.name == want))
        .filter(|_| param("binary").is_none_or(|b| b == COMPUTE))
        .map(|h| render(&app, h, version, now))
        .collect();
    Ok(Json(json!({"services": list})))
}

/// The `{host, binary}` of the old action bodies; the host must be a
/// compute service's.
fn host_and_binary(
    app: &App,
    body: &Value,
    extra: &[&str],
) -> Result<(HostView, Map<String, Value>)> {
    let m = validation::object("", body)?.clone();
    let mut allowed = vec!["host", "binary"];
    allowed.extend_from_slice(extra);
    validation::only("", &m, &allowed)?;
    let host = validation::string("host", validation::required("", &m, "host")?, 1, 255)?;
    let binary = validation::string("binary", validation::required("", &m, "binary")?, 1, 255)?;
    let found = app.projection.host(host).filter(|_| binary == COMPUTE);
    let view = found.ok_or_else(|| ApiError::not_found("Unknown service"))?;
    Ok((view, m))
}

fn reason(v: &Value) -> Result<String> {
    Ok(validation::string("disabled_reason", v, 1, 255)?.to_owned())
}

/// `PUT /os-services/{enable,disable,disable-log-reason,force-down}`
/// (below 2.53).
async fn old_action(
    app: &App,
    ctx: &Context,
    request_id: &str,
    version: ApiVersion,
    action: &str,
    body: &Value,
) -> Result<Json<Value>> {
    if version.at_least(2, 53) || (action == "force-down" && !version.at_least(2, 11)) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    authorize(ctx, "update")?;
    let extra: &[&str] = match action {
        "disable-log-reason" => &["disabled_reason"],
        "force-down" => &["forced_down"],
        _ => &[],
    };
    let (host, m) = host_and_binary(app, body, extra)?;
    let mut change = ServiceChange {
        host: host.name.clone(),
        seen: ServiceStatus {
            host: host.name.clone(),
            ..host.service.clone()
        },
        ..Default::default()
    };
    let mut answer = json!({"host": host.name, "binary": COMPUTE});
    match action {
        "enable" => {
            change.disabled = Some(false);
            change.disabled_reason = Some(None);
            answer["status"] = json!("enabled");
        }
        "disable" => {
            change.disabled = Some(true);
            answer["status"] = json!("disabled");
        }
        "disable-log-reason" => {
            let r = match m.get("disabled_reason") {
                Some(v) => reason(v)?,
                None => return Err(ApiError::bad_request("Missing disabled reason field")),
            };
            change.disabled = Some(true);
            change.disabled_reason = Some(Some(r.clone()));
            answer["status"] = json!("disabled");
            answer["disabled_reason"] = json!(r);
        }
        _ => {
            let v = validation::required("", &m, "forced_down")?;
            let forced = validation::boolean("forced_down", v)?;
            change.forced_down = Some(forced);
            answer["forced_down"] = json!(forced);
        }
    }
    services::update(app, ctx, request_id, change).await?;
    Ok(Json(json!({"service": answer})))
}

macro_rules! old_route {
    ($name:ident, $action:literal) => {
        pub async fn $name(
            State(app): State<AppState>,
            ctx: Context,
            RequestId(request_id): RequestId,
            version: ApiVersion,
            JsonBody(body): JsonBody,
        ) -> Result<Json<Value>> {
            old_action(&app, &ctx, &request_id, version, $action, &body).await
        }
    };
}

old_route!(enable, "enable");
old_route!(disable, "disable");
old_route!(disable_log_reason, "disable-log-reason");
old_route!(force_down, "force-down");

/// `PUT /os-services/{uuid}` (2.53): `status`, `disabled_reason`,
/// `forced_down`; answers with the whole service.
pub async fn update(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    if !version.at_least(2, 53) {
        // Below 2.53 only the action names above exist under this path.
        return Err(ApiError::not_found("The resource could not be found."));
    }
    authorize(&ctx, "update")?;
    let m = validation::object("", &body)?;
    validation::only("", m, &["status", "disabled_reason", "forced_down"])?;
    let status = match m.get("status") {
        None => None,
        Some(v) => match v.as_str() {
            Some("enabled") => Some(false),
            Some("disabled") => Some(true),
            _ => {
                return Err(invalid(
                    "status",
                    v,
                    format!("{} is not one of ['enabled', 'disabled']", repr(v)),
                ));
            }
        },
    };
    let reason = m.get("disabled_reason").map(reason).transpose()?;
    let forced = m
        .get("forced_down")
        .map(|v| validation::boolean("forced_down", v))
        .transpose()?;
    if reason.is_some() && status != Some(true) {
        return Err(ApiError::bad_request(
            "Specifying 'disabled_reason' with status 'enabled' is invalid.",
        ));
    }
    if status.is_none() && forced.is_none() {
        return Err(ApiError::bad_request(
            "No updates were requested. Fields 'status' or 'forced_down' should be specified.",
        ));
    }
    let host = services::by_id(&app, &id, version)?;
    let change = ServiceChange {
        host: host.name.clone(),
        disabled: status,
        disabled_reason: status.map(|disabled| if disabled { reason } else { None }),
        forced_down: forced,
        seen: ServiceStatus {
            host: host.name.clone(),
            ..host.service.clone()
        },
    };
    services::update(&app, &ctx, &request_id, change).await?;
    let now = novalog_schemas::now_ms();
    let shown = app.projection.host(&host.name).unwrap_or(host);
    Ok(Json(json!({"service": render(&app, &shown, version, now)})))
}

/// `DELETE /os-services/{id}`: 204.
pub async fn delete(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    authorize(&ctx, "delete")?;
    let host = services::by_id(&app, &id, version)?;
    services::delete(&app, &ctx, &request_id, &host.name).await?;
    Ok(StatusCode::NO_CONTENT)
}
