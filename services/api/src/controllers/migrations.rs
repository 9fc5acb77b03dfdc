//! `/v2.1/os-migrations` (every migration, administrators only) and
//! `/v2.1/servers/{id}/migrations` (a server's in-progress live
//! migrations, 2.23), as Nova shows them. The migrations are folded from
//! the `instances` topic into each instance ([`Instance::migrations`]).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use novalog_schemas::Instance;
use novalog_schemas::migration::{Migration, MigrationType};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Context;
use crate::compute;
use crate::error::{ApiError, Result};
use crate::http::{query_pairs, without_none};
use crate::microversion::ApiVersion;
use crate::views::{Links, usage_time};

/// Live-migration statuses Nova counts as in progress.
const LIVE_IN_PROGRESS: [&str; 4] = ["queued", "preparing", "running", "post-migrating"];

fn admin_only(ctx: &Context, rule: &str) -> Result<()> {
    if ctx.is_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "Policy doesn't allow {rule} to be performed."
        )))
    }
}

/// Nova's flavor ids in migrations are integers; ours are strings that
/// usually hold one.
fn flavor_id(id: &str) -> Value {
    id.parse::<i64>().map_or_else(|_| json!(id), |n| json!(n))
}

/// One migration as `/os-migrations` shows it.
fn os_migration(links: &Links, version: ApiVersion, i: &Instance, m: &Migration) -> Value {
    let mut v = json!({
        "created_at": usage_time(m.created_at_ms),
        "dest_compute": m.dest_compute,
        "dest_host": m.dest_compute.as_ref().map(|_| "127.0.0.1"),
        "dest_node": m.dest_compute,
        "id": m.id,
        "instance_uuid": i.id,
        "new_instance_type_id": flavor_id(&m.new_flavor.id),
        "old_instance_type_id": flavor_id(&m.old_flavor.id),
        "source_compute": m.source_compute,
        "source_node": m.source_compute,
        "status": m.status,
        "updated_at": usage_time(m.updated_at_ms),
    });
    if version.at_least(2, 23) {
        v["migration_type"] = json!(m.migration_type.as_str());
        if m.migration_type == MigrationType::LiveMigration
            && LIVE_IN_PROGRESS.contains(&m.status.as_str())
        {
            v["links"] = links.pair(&format!("servers/{}/migrations", i.id), &m.id.to_string());
        }
    }
    if version.at_least(2, 59) {
        v["uuid"] = json!(m.uuid);
    }
    if version.at_least(2, 80) {
        v["user_id"] = json!(m.user_id);
        v["project_id"] = json!(m.project_id);
    }
    v
}

/// `GET /os-migrations`: filters `host` (source or destination),
/// `source_compute`, `status`, `instance_uuid`, `migration_type`, and from
/// 2.80 `user_id` and `project_id`; newest first.
pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    links: Links,
    version: ApiVersion,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    admin_only(&ctx, "os_compute_api:os-migrations:index")?;
    let params = without_none(query_pairs(q.as_deref()));
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let mut rows: Vec<(Value, i64, u64)> = Vec::new();
    for i in app.projection.instances(None) {
        if let Some(u) = get("instance_uuid")
            && u != i.id.to_string()
        {
            continue;
        }
        for m in &i.migrations {
            let keep = get("host")
                .is_none_or(|h| m.source_compute == h || m.dest_compute.as_deref() == Some(h))
                && get("source_compute").is_none_or(|h| m.source_compute == h)
                && get("status").is_none_or(|s| m.status.eq_ignore_ascii_case(s))
                && get("migration_type").is_none_or(|t| m.migration_type.as_str() == t)
                && (!version.at_least(2, 80)
                    || (get("user_id").is_none_or(|u| m.user_id == u)
                        && get("project_id").is_none_or(|p| m.project_id == p)));
            if keep {
                rows.push((os_migration(&links, version, &i, m), m.created_at_ms, m.id));
            }
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse((r.1, r.2)));
    let migrations: Vec<Value> = rows.into_iter().map(|(v, _, _)| v).collect();
    Ok(Json(json!({ "migrations": migrations })))
}

/// A live migration as `/servers/{id}/migrations` shows it.
fn server_migration(version: ApiVersion, i: &Instance, m: &Migration) -> Value {
    let mut v = json!({
        "created_at": usage_time(m.created_at_ms),
        "dest_compute": m.dest_compute,
        "dest_host": m.dest_compute.as_ref().map(|_| "127.0.0.1"),
        "dest_node": m.dest_compute,
        "disk_processed_bytes": 0,
        "disk_remaining_bytes": 0,
        "disk_total_bytes": 0,
        "id": m.id,
        "memory_processed_bytes": 0,
        "memory_remaining_bytes": 0,
        "memory_total_bytes": 0,
        "server_uuid": i.id,
        "source_compute": m.source_compute,
        "source_node": m.source_compute,
        "status": m.status,
        "updated_at": usage_time(m.updated_at_ms),
    });
    if version.at_least(2, 59) {
        v["uuid"] = json!(m.uuid);
    }
    if version.at_least(2, 80) {
        v["user_id"] = json!(m.user_id);
        v["project_id"] = json!(m.project_id);
    }
    v
}

fn server(
    app: &AppState,
    ctx: &Context,
    version: ApiVersion,
    id: &str,
) -> Result<std::sync::Arc<Instance>> {
    if !version.at_least(2, 23) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    let inst = compute::visible(app, ctx, id)
        .ok_or_else(|| ApiError::not_found(format!("Instance {id} could not be found.")))?;
    admin_only(ctx, "os_compute_api:servers:migrations:index")?;
    Ok(inst)
}

/// `GET /servers/{id}/migrations` (2.23): in-progress live migrations.
pub async fn server_index(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let inst = server(&app, &ctx, version, &id)?;
    let migrations: Vec<Value> = inst
        .migrations
        .iter()
        .filter(|m| {
            m.migration_type == MigrationType::LiveMigration
                && LIVE_IN_PROGRESS.contains(&m.status.as_str())
        })
        .map(|m| server_migration(version, &inst, m))
        .collect();
    Ok(Json(json!({ "migrations": migrations })))
}

/// `GET /servers/{id}/migrations/{migration_id}` (2.23).
pub async fn server_show(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path((id, mid)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let inst = server(&app, &ctx, version, &id)?;
    let m = mid
        .parse::<u64>()
        .ok()
        .and_then(|n| inst.migrations.iter().find(|m| m.id == n))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "In-progress live migration {mid} is not found for server {id}."
            ))
        })?;
    if m.migration_type != MigrationType::LiveMigration {
        return Err(ApiError::not_found(format!(
            "Migration {mid} for server {id} is not live-migration."
        )));
    }
    if !LIVE_IN_PROGRESS.contains(&m.status.as_str()) {
        return Err(ApiError::not_found(format!(
            "Live migration {mid} for server {id} is not in progress."
        )));
    }
    Ok(Json(
        json!({ "migration": server_migration(version, &inst, m) }),
    ))
}
