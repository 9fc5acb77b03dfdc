//! `/v2.1/os-migrations` (every migration, administrators only) and
//! `/v2.1/servers/{id}/migrations` (a server's in-progress live
//! migrations, 2.23), as Nova shows them. The migrations are folded from
//! the `instances` topic into each instance ([`Instance::migrations`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use novalog_schemas::Instance;
use novalog_schemas::migration::{Migration, MigrationType};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Context;
use crate::domain::compute;
use crate::error::{ApiError, Result};
use crate::http::{query_pairs, without_none};
use crate::microversion::ApiVersion;
use crate::validation::query;
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

fn query_error(name: &str, value: &str, reason: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid input for query parameters {name}. Value: {value}. {reason}"
    ))
}

fn time(name: &str, value: &str) -> Result<i64> {
    compute::parse_time(value)
        .ok_or_else(|| query_error(name, value, &format!("'{value}' is not a 'date-time'")))
}

/// The filters and paging `/os-migrations` takes at `version`.
#[derive(Debug, Default)]
struct Query {
    host: Option<String>,
    source_compute: Option<String>,
    status: Option<String>,
    instance_uuid: Option<String>,
    migration_type: Option<String>,
    user_id: Option<String>,
    project_id: Option<String>,
    /// 2.59: paging by migration uuid, newest first.
    limit: Option<usize>,
    marker: Option<String>,
    since: Option<i64>,
    before: Option<i64>,
}

fn parse_query(params: &[(String, String)], version: ApiVersion) -> Result<Query> {
    let mut q = Query::default();
    let paged = version.at_least(2, 59);
    for (k, v) in params {
        let v = v.clone();
        match k.as_str() {
            "host" => q.host = Some(v),
            "source_compute" => q.source_compute = Some(v),
            "status" => q.status = Some(v),
            "instance_uuid" => q.instance_uuid = Some(v),
            "migration_type" => q.migration_type = Some(v),
            "hidden" => {}
            "limit" if paged => {
                let n = query::non_negative(&v).ok_or_else(|| {
                    query_error(k, &v, &format!("'{v}' does not match '^[0-9]*$'"))
                })?;
                q.limit = Some(n);
            }
            "marker" if paged => q.marker = Some(v),
            "changes-since" if paged => q.since = Some(time(k, &v)?),
            "changes-before" if version.at_least(2, 66) => q.before = Some(time(k, &v)?),
            "user_id" if version.at_least(2, 80) => q.user_id = Some(v),
            "project_id" if version.at_least(2, 80) => q.project_id = Some(v),
            // Before 2.59 Nova's schema let anything else through.
            _ if !paged => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "Additional properties are not allowed ('{other}' was unexpected)"
                )));
            }
        }
    }
    if let (Some(s), Some(b)) = (q.since, q.before)
        && b < s
    {
        return Err(ApiError::bad_request(
            "The value of changes-since must be less than or equal to changes-before.",
        ));
    }
    Ok(q)
}

/// `GET /os-migrations`: filters `host` (source or destination),
/// `source_compute`, `status`, `instance_uuid`, `migration_type`, from 2.59
/// `limit`, `marker`, `changes-since` (2.66 `changes-before`), from 2.80
/// `user_id` and `project_id`; newest first.
pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    links: Links,
    version: ApiVersion,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let params = query_pairs(q.as_deref());
    let checked = query::MIGRATIONS.check(without_none(params.clone()), version, ctx.is_admin)?;
    admin_only(&ctx, "os_compute_api:os-migrations:index")?;
    let q = parse_query(&checked, version)?;
    let paged = version.at_least(2, 59);
    let mut rows: Vec<(&Migration, Arc<Instance>)> = Vec::new();
    let instances = app.projection.instances(None);
    for i in &instances {
        if q.instance_uuid
            .as_ref()
            .is_some_and(|u| *u != i.id.to_string())
        {
            continue;
        }
        for m in &i.migrations {
            let keep = q.host.as_ref().is_none_or(|h| {
                m.source_compute == *h || m.dest_compute.as_deref() == Some(h.as_str())
            }) && q
                .source_compute
                .as_ref()
                .is_none_or(|h| m.source_compute == *h)
                && q.status
                    .as_ref()
                    .is_none_or(|s| m.status.as_str().eq_ignore_ascii_case(s))
                && q.migration_type
                    .as_ref()
                    .is_none_or(|t| m.migration_type.as_str() == t)
                && q.user_id.as_ref().is_none_or(|u| m.user_id == *u)
                && q.project_id.as_ref().is_none_or(|p| m.project_id == *p)
                && q.since.is_none_or(|t| m.updated_at_ms >= t)
                && q.before.is_none_or(|t| m.updated_at_ms <= t);
            if keep {
                rows.push((m, i.clone()));
            }
        }
    }
    rows.sort_by_key(|(m, _)| std::cmp::Reverse((m.created_at_ms, m.id)));
    if let Some(marker) = &q.marker {
        let at = rows
            .iter()
            .position(|(m, _)| m.uuid.to_string() == *marker)
            .ok_or_else(|| ApiError::bad_request(format!("Marker {marker} could not be found.")))?;
        rows.drain(..=at);
    }
    if paged {
        rows.truncate(crate::paging::page_size(q.limit, app.max_limit));
    }
    let migrations: Vec<Value> = rows
        .iter()
        .map(|(m, i)| os_migration(&links, version, i, m))
        .collect();
    let mut body = json!({ "migrations": migrations });
    let last = rows.last().map(|(m, _)| m.uuid.to_string());
    if paged
        && let Some(next) = crate::paging::next_links(
            &links,
            &params,
            "os-migrations",
            rows.len(),
            last.as_deref(),
            app.max_limit,
        )
    {
        body["migrations_links"] = next;
    }
    Ok(Json(body))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)], version: ApiVersion) -> Result<Query> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_query(&pairs, version)
    }

    #[test]
    fn paging_and_time_filters_come_with_their_microversions() {
        let v223 = ApiVersion::new(2, 23);
        let v259 = ApiVersion::new(2, 59);
        let v266 = ApiVersion::new(2, 66);
        // Before 2.59 anything unknown passes, paging included.
        let before = q(&[("limit", "x"), ("foo", "1")], v223).unwrap();
        assert_eq!(before.limit, None);
        let paged = q(
            &[("limit", "2"), ("marker", "m"), ("status", "error")],
            v259,
        )
        .unwrap();
        assert_eq!((paged.limit, paged.marker.as_deref()), (Some(2), Some("m")));
        assert_eq!(paged.status.as_deref(), Some("error"));
        assert_eq!(
            q(&[("foo", "1")], v259).unwrap_err().message,
            "Additional properties are not allowed ('foo' was unexpected)"
        );
        assert_eq!(
            q(&[("limit", "-1")], v259).unwrap_err().message,
            "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'"
        );
        assert!(q(&[("changes-before", "2026-01-01T00:00:00Z")], v259).is_err());
        assert_eq!(
            q(
                &[
                    ("changes-since", "2026-01-02T00:00:00Z"),
                    ("changes-before", "2026-01-01T00:00:00Z")
                ],
                v266
            )
            .unwrap_err()
            .message,
            "The value of changes-since must be less than or equal to changes-before."
        );
        assert_eq!(
            q(&[("changes-since", "yesterday")], v259)
                .unwrap_err()
                .message,
            "Invalid input for query parameters changes-since. Value: yesterday. 'yesterday' is not a 'date-time'"
        );
    }
}
