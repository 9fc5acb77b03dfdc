//! `/v2.1/os-hypervisors`: one hypervisor per compute host, for
//! administrators. Microversions: 2.28 `cpu_info` as an object, 2.33
//! paging, 2.53 uuid ids with `hypervisor_hostname_pattern` and
//! `with_servers` on the list and show (and `/servers`, `/search` gone),
//! 2.88 resource fields, `/statistics` and `/uptime` gone, `uptime` in the
//! view.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use novalog_schemas::Instance;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::{App, AppState};
use crate::auth::Context;
use crate::domain::compute_services::uptime as uptime_text;
use crate::error::{ApiError, Result};
use crate::http::query_pairs;
use crate::microversion::ApiVersion;
use crate::projection::HostView;
use crate::validation::parse_bool;
use crate::validation::query;
use crate::views::Links;

fn authorize(ctx: &Context, action: &str) -> Result<()> {
    if ctx.is_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "Policy doesn't allow os_compute_api:os-hypervisors:{action} to be performed."
        )))
    }
}

fn gone() -> ApiError {
    ApiError::not_found("The resource could not be found.")
}

/// The servers on `host` that are not deleted.
fn servers_on(app: &App, host: &str) -> Vec<std::sync::Arc<Instance>> {
    app.projection
        .instances(None)
        .into_iter()
        .filter(|i| !i.is_deleted() && i.host.as_deref() == Some(host))
        .collect()
}

/// The fields of every view: id, hostname, state, status.
fn brief(app: &App, h: &HostView, version: ApiVersion, now: i64) -> Value {
    json!({
        "id": if version.at_least(2, 53) { json!(h.uuid) } else { json!(h.id) },
        "hypervisor_hostname": h.name,
        "state": if h.is_up(now, app.service_down_time_ms) { "up" } else { "down" },
        "status": if h.service.disabled { "disabled" } else { "enabled" },
    })
}

/// The detailed view (`/detail`, show).
fn detailed(app: &App, h: &HostView, version: ApiVersion, now: i64) -> Value {
    let mut v = brief(app, h, version, now);
    v["hypervisor_type"] = json!(h.hypervisor_type);
    v["hypervisor_version"] = json!(h.hypervisor_version);
    v["host_ip"] = Value::Null;
    v["service"] = json!({
        "host": h.name,
        "id": if version.at_least(2, 53) { json!(h.uuid) } else { json!(h.id) },
        "disabled_reason": h.service.disabled_reason,
    });
    if version.at_least(2, 88) {
        v["uptime"] = json!(uptime_text(now, h.registered_at_ms));
        return v;
    }
    let (cap, used) = (h.capacity, h.usage);
    let on_host = servers_on(app, &h.name);
    let busy = on_host.iter().filter(|i| i.task_state.is_some()).count();
    let cpu_info = json!({
        "arch": h.cpu_arch,
        "model": "",
        "vendor": "",
        "features": [],
        "topology": {"cores": cap.vcpus, "threads": 1, "sockets": 1},
    });
    v["cpu_info"] = if version.at_least(2, 28) {
        cpu_info
    } else {
        json!(cpu_info.to_string())
    };
    let free_disk = cap.disk_gb as i64 - used.disk_gb_used as i64;
    v["vcpus"] = json!(cap.vcpus);
    v["vcpus_used"] = json!(used.vcpus_used);
    v["memory_mb"] = json!(cap.memory_mb);
    v["memory_mb_used"] = json!(used.memory_mb_used);
    v["free_ram_mb"] = json!(cap.memory_mb as i64 - used.memory_mb_used as i64);
    v["local_gb"] = json!(cap.disk_gb);
    v["local_gb_used"] = json!(used.disk_gb_used);
    v["free_disk_gb"] = json!(free_disk);
    v["disk_available_least"] = json!(free_disk);
    v["running_vms"] = json!(used.instances);
    v["current_workload"] = json!(busy);
    v
}

/// `servers` on a hypervisor: only when it has some, and from 2.75
/// always (empty when it has none).
fn with_servers(app: &App, mut v: Value, h: &HostView, version: ApiVersion) -> Value {
    let servers: Vec<Value> = servers_on(app, &h.name)
        .iter()
        .map(|i| json!({"name": i.name, "uuid": i.id}))
        .collect();
    if !servers.is_empty() || version.at_least(2, 75) {
        v["servers"] = json!(servers);
    }
    v
}

/// The hypervisor an id names: an integer below 2.53, a uuid from it.
fn by_id(app: &App, id: &str, version: ApiVersion) -> Result<HostView> {
    let not_found =
        || ApiError::not_found(format!("Hypervisor with ID '{id}' could not be found."));
    let hosts = app.projection.hosts();
    if version.at_least(2, 53) {
        let uuid =
            Uuid::parse_str(id).map_err(|_| ApiError::bad_request(format!("Invalid uuid {id}")))?;
        hosts
            .into_iter()
            .find(|h| h.uuid == uuid)
            .ok_or_else(not_found)
    } else {
        let n: u32 = id.parse().map_err(|_| not_found())?;
        hosts.into_iter().find(|h| h.id == n).ok_or_else(not_found)
    }
}

/// Hosts whose name contains `pattern` (Nova's `LIKE %pattern%`), or
/// Nova's 404.
fn matching(app: &App, pattern: &str) -> Result<Vec<HostView>> {
    let found: Vec<HostView> = app
        .projection
        .hosts()
        .into_iter()
        .filter(|h| h.name.contains(pattern))
        .collect();
    if found.is_empty() {
        return Err(ApiError::not_found(format!(
            "No hypervisor matching '{pattern}' could be found."
        )));
    }
    Ok(found)
}

struct ListQuery {
    limit: Option<usize>,
    marker: Option<String>,
    pattern: Option<String>,
    with_servers: bool,
}

fn list_query(params: &[(String, String)], version: ApiVersion) -> Result<ListQuery> {
    let mut q = ListQuery {
        limit: None,
        marker: None,
        pattern: None,
        with_servers: false,
    };
    for (k, v) in params {
        match k.as_str() {
            "limit" if version.at_least(2, 33) => {
                q.limit = Some(query::non_negative(v).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Invalid input for query parameters limit. Value: {v}. '{v}' does not match '^[0-9]*$'"
                    ))
                })?);
            }
            "marker" if version.at_least(2, 33) => q.marker = Some(v.clone()),
            "hypervisor_hostname_pattern" if version.at_least(2, 53) => q.pattern = Some(v.clone()),
            "with_servers" if version.at_least(2, 53) => {
                q.with_servers = parse_bool(v).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Invalid input for query parameters with_servers. Value: {v}. '{v}' is not a valid boolean"
                    ))
                })?;
            }
            _ => {}
        }
    }
    if q.pattern.is_some() && (q.limit.is_some() || q.marker.is_some()) {
        return Err(ApiError::bad_request(
            "Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported.",
        ));
    }
    Ok(q)
}

async fn list(
    app: &App,
    ctx: &Context,
    links: &Links,
    version: ApiVersion,
    raw: Option<&str>,
    detail: bool,
) -> Result<Json<Value>> {
    let table = if detail {
        &query::HYPERVISORS_DETAIL
    } else {
        &query::HYPERVISORS
    };
    let params = table.check(query_pairs(raw), version, ctx.is_admin)?;
    authorize(ctx, if detail { "list-detail" } else { "list" })?;
    let q = list_query(&params, version)?;
    // Nova pages from 2.33, and never a search by hostname pattern.
    let paged = version.at_least(2, 33) && q.pattern.is_none();
    let mut hosts = match &q.pattern {
        Some(p) => matching(app, p)?,
        None => app.projection.hosts(),
    };
    if let Some(marker) = &q.marker {
        let pos = hosts
            .iter()
            .position(|h| {
                if version.at_least(2, 53) {
                    h.uuid.to_string() == *marker
                } else {
                    h.id.to_string() == *marker
                }
            })
            .ok_or_else(|| ApiError::bad_request(format!("marker [{marker}] not found")))?;
        hosts.drain(..=pos);
    }
    if paged {
        hosts.truncate(crate::paging::page_size(q.limit, app.max_limit));
    }
    let now = novalog_schemas::now_ms();
    let list: Vec<Value> = hosts
        .iter()
        .map(|h| {
            let v = if detail {
                detailed(app, h, version, now)
            } else {
                brief(app, h, version, now)
            };
            if q.with_servers {
                with_servers(app, v, h, version)
            } else {
                v
            }
        })
        .collect();
    let mut body = json!({"hypervisors": list});
    let last = hosts.last().map(|h| {
        if version.at_least(2, 53) {
            h.uuid.to_string()
        } else {
            h.id.to_string()
        }
    });
    let collection = if detail {
        "os-hypervisors/detail"
    } else {
        "os-hypervisors"
    };
    if paged
        && let Some(next) = crate::paging::next_links(
            links,
            &params,
            collection,
            hosts.len(),
            last.as_deref(),
            app.max_limit,
        )
    {
        body["hypervisors_links"] = next;
    }
    Ok(Json(body))
}

pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    links: Links,
    version: ApiVersion,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    list(&app, &ctx, &links, version, q.as_deref(), false).await
}

pub async fn detail(
    State(app): State<AppState>,
    ctx: Context,
    links: Links,
    version: ApiVersion,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    list(&app, &ctx, &links, version, q.as_deref(), true).await
}

pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    authorize(&ctx, "show")?;
    let with = version.at_least(2, 53)
        && query_pairs(q.as_deref())
            .iter()
            .any(|(k, v)| k == "with_servers" && parse_bool(v) == Some(true));
    let h = by_id(&app, &id, version)?;
    let mut v = detailed(&app, &h, version, novalog_schemas::now_ms());
    if with {
        v = with_servers(&app, v, &h, version);
    }
    Ok(Json(json!({"hypervisor": v})))
}

/// `GET /os-hypervisors/{id}/uptime` (until 2.88).
pub async fn uptime_of(
    app: &App,
    ctx: &Context,
    version: ApiVersion,
    id: &str,
) -> Result<Json<Value>> {
    if version.at_least(2, 88) {
        return Err(gone());
    }
    authorize(ctx, "uptime")?;
    let h = by_id(app, id, version)?;
    let now = novalog_schemas::now_ms();
    let mut v = brief(app, &h, version, now);
    v["uptime"] = json!(uptime_text(now, h.registered_at_ms));
    Ok(Json(json!({"hypervisor": v})))
}

pub async fn uptime(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    uptime_of(&app, &ctx, version, &id).await
}

/// `GET /os-hypervisors/statistics` (until 2.88): sums over every host.
pub async fn statistics(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
) -> Result<Json<Value>> {
    if version.at_least(2, 88) {
        return Err(gone());
    }
    authorize(&ctx, "statistics")?;
    let now = novalog_schemas::now_ms();
    let keys = [
        "count",
        "vcpus",
        "vcpus_used",
        "memory_mb",
        "memory_mb_used",
        "free_ram_mb",
        "local_gb",
        "local_gb_used",
        "free_disk_gb",
        "disk_available_least",
        "running_vms",
        "current_workload",
    ];
    let mut sums = serde_json::Map::new();
    for k in keys {
        sums.insert(k.into(), json!(0));
    }
    for h in app.projection.hosts() {
        let v = detailed(&app, &h, ApiVersion::new(2, 1), now);
        for k in &keys[1..] {
            let add = v[*k].as_i64().unwrap_or(0);
            let cur = sums[*k].as_i64().unwrap_or(0);
            // Hosts report their own sizes: saturate rather than overflow.
            sums.insert((*k).into(), json!(cur.saturating_add(add)));
        }
        let count = sums["count"].as_i64().unwrap_or(0);
        sums.insert("count".into(), json!(count.saturating_add(1)));
    }
    Ok(Json(json!({"hypervisor_statistics": sums})))
}

/// `/{pattern}/servers` and `/{pattern}/search` (until 2.53): hosts whose
/// name contains the pattern, with their servers or without.
async fn by_pattern(
    app: &App,
    ctx: &Context,
    version: ApiVersion,
    pattern: &str,
    servers: bool,
) -> Result<Json<Value>> {
    if version.at_least(2, 53) {
        return Err(gone());
    }
    authorize(ctx, if servers { "servers" } else { "search" })?;
    let now = novalog_schemas::now_ms();
    let list: Vec<Value> = matching(app, pattern)?
        .iter()
        .map(|h| {
            let v = brief(app, h, version, now);
            if servers {
                with_servers(app, v, h, version)
            } else {
                v
            }
        })
        .collect();
    Ok(Json(json!({"hypervisors": list})))
}

pub async fn servers(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(pattern): Path<String>,
) -> Result<Json<Value>> {
    by_pattern(&app, &ctx, version, &pattern, true).await
}

pub async fn search(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(pattern): Path<String>,
) -> Result<Json<Value>> {
    by_pattern(&app, &ctx, version, &pattern, false).await
}
