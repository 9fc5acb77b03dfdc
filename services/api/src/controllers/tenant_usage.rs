//! `/v2.1/os-simple-tenant-usage` as Nova serves it
//! (nova/api/openstack/compute/simple_tenant_usage.py), from the billing
//! service's intervals ([`novalog_billing::usage`]): the hours are the
//! same milliseconds `/billing/v1` rates.
//!
//! - index (`os_compute_api:os-simple-tenant-usage:list`, admin): every
//!   project's totals, `detailed=1` adds `server_usages`;
//! - show (`...:show`, the project's readers and members, admin): one
//!   project's totals with `server_usages`, `{}` when it has none.
//!
//! `start` and `end` in Nova's three formats (`%Y-%m-%dT%H:%M:%S`, with
//! `.%f`, or `%Y-%m-%d %H:%M:%S.%f`), each now when absent; `end` is
//! clamped to now. From 2.40 `limit` and `marker` page the server usages
//! (by project, then server id) and a full page links to the next.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use chrono::NaiveDateTime;
use novalog_billing::Period;
use novalog_billing::usage::{ServerUsage, hours, server_usages};
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::auth::Context;
use crate::domain::usage::now_ms;
use crate::error::{ApiError, Result};
use crate::http::{query_pairs, without_none};
use crate::microversion::ApiVersion;
use crate::policy::{Rule, authorize};
use crate::validation::query;
use crate::views::{Links, usage_time};

const LIST: &str = "os_compute_api:os-simple-tenant-usage:list";
const SHOW: Rule = Rule::ReaderOrAdmin("os_compute_api:os-simple-tenant-usage:show");

/// Nova's `_parse_datetime`: blank is now; else one of its three formats
/// (Python's `%f`: 1 to 6 digits), naive, taken as UTC.
pub fn nova_time(s: &str, now_ms: i64) -> Result<i64> {
    if s.is_empty() {
        return Ok(now_ms);
    }
    let bad = || ApiError::bad_request("Invalid datetime string: Datetime is in invalid format");
    let (main, frac, sep) = match s.split_once('.') {
        Some((m, f)) => (m, Some(f), if m.contains('T') { 'T' } else { ' ' }),
        None => (s, None, 'T'),
    };
    if let Some(f) = frac
        && (f.is_empty() || f.len() > 6 || !f.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let format = if sep == 'T' {
        "%Y-%m-%dT%H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    let t = NaiveDateTime::parse_from_str(main, format).map_err(|_| bad())?;
    let micros: i64 = frac.map_or(0, |f| format!("{f:0<6}").parse().unwrap_or(0));
    Ok(t.and_utc().timestamp_millis() + micros / 1000)
}

/// The first value of `name` (Nova reads `parse_qs(...)[name][0]`, which
/// leaves out blank values).
fn first<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// Nova's period: start < end required, then end clamped to now.
fn period(params: &[(String, String)], now: i64) -> Result<Period> {
    let (given_start, given_end) = (first(params, "start"), first(params, "end"));
    let start = nova_time(given_start.unwrap_or(""), now)?;
    let end = nova_time(given_end.unwrap_or(""), now)?;
    // Nova reads the clock once per absent time, start first, so two
    // absent times make a (microseconds) short period, not an error.
    let defaulted = given_start.is_none() || given_end.is_none();
    if start > end || (start == end && !defaulted) {
        return Err(ApiError::bad_request(
            "Invalid start time. The start time cannot occur after the end time.",
        ));
    }
    Ok(Period {
        start_ms: start,
        end_ms: end.min(now),
    })
}

fn server_usage_json(u: &ServerUsage, now: i64) -> Value {
    json!({
        "ended_at": u.ended_at_ms.map(usage_time),
        "flavor": u.flavor.name,
        "hours": u.hours(),
        "instance_id": u.server_id,
        "local_gb": u.flavor.disk_gb + u.flavor.ephemeral_gb,
        "memory_mb": u.flavor.ram_mb,
        "name": u.name,
        "started_at": usage_time(u.started_at_ms),
        "state": u.state,
        "tenant_id": u.project_id,
        "uptime": u.uptime_s(now),
        "vcpus": u.flavor.vcpus,
    })
}

/// Groups a page of server usages by project, in order, as Nova's
/// `tenant_usages` entries.
fn tenant_usages(page: &[ServerUsage], p: Period, detailed: bool, now: i64) -> Vec<Value> {
    let mut out: Vec<(String, Vec<&ServerUsage>)> = Vec::new();
    for u in page {
        match out.last_mut() {
            Some((project, us)) if *project == u.project_id => us.push(u),
            _ => out.push((u.project_id.clone(), vec![u])),
        }
    }
    out.into_iter()
        .map(|(project, us)| {
            let sum = |f: fn(&ServerUsage) -> i128| hours(us.iter().map(|u| f(u)).sum());
            let mut v = Map::new();
            v.insert("tenant_id".into(), json!(project));
            if detailed {
                let s: Vec<Value> = us.iter().map(|u| server_usage_json(u, now)).collect();
                v.insert("server_usages".into(), json!(s));
            }
            v.insert("total_local_gb_usage".into(), json!(sum(|u| u.local_gb_ms)));
            v.insert("total_vcpus_usage".into(), json!(sum(|u| u.vcpu_ms)));
            v.insert(
                "total_memory_mb_usage".into(),
                json!(sum(|u| u.memory_mb_ms)),
            );
            v.insert("total_hours".into(), json!(sum(|u| i128::from(u.ms))));
            v.insert("start".into(), json!(usage_time(p.start_ms)));
            v.insert("stop".into(), json!(usage_time(p.end_ms)));
            Value::Object(v)
        })
        .collect()
}

/// One page of `usages` (2.40: after `marker`, at most `limit`; before:
/// at most `max_limit`, as Nova).
fn page(
    mut usages: Vec<ServerUsage>,
    checked: &[(String, String)],
    paged: bool,
    max_limit: usize,
) -> Result<(Vec<ServerUsage>, usize)> {
    let mut limit = None;
    if paged {
        if let Some(marker) = checked
            .iter()
            .rev()
            .find(|(k, _)| k == "marker")
            .map(|(_, v)| v)
        {
            let at = usages
                .iter()
                .position(|u| u.server_id.to_string() == *marker)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("Marker {marker} could not be found."))
                })?;
            usages.drain(..=at);
        }
        limit = checked
            .iter()
            .rev()
            .find(|(k, _)| k == "limit")
            .and_then(|(_, v)| query::non_negative(v));
    }
    let size = crate::paging::page_size(limit, max_limit);
    usages.truncate(size);
    Ok((usages, size))
}

/// `GET /os-simple-tenant-usage`.
pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    links: Links,
    version: ApiVersion,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let params = query_pairs(q.as_deref());
    let checked = query::TENANT_USAGE.check(without_none(params.clone()), version, ctx.is_admin)?;
    if !ctx.is_admin {
        return Err(ApiError::forbidden(format!(
            "Policy doesn't allow {LIST} to be performed."
        )));
    }
    let now = now_ms();
    let p = period(&params, now)?;
    let detailed = params
        .iter()
        .find(|(k, _)| k == "detailed")
        .is_some_and(|(_, v)| v == "1");
    let paged = version.at_least(2, 40);
    let all = server_usages(&app.usage.servers_in(None, p).await?, p, now);
    let (page, _) = page(all, &checked, paged, app.max_limit)?;
    let mut body = json!({"tenant_usages": tenant_usages(&page, p, detailed, now)});
    if paged {
        let last = page.last().map(|u| u.server_id.to_string());
        if let Some(next) = crate::paging::next_links(
            &links,
            &params,
            "os-simple-tenant-usage",
            page.len(),
            last.as_deref(),
            app.max_limit,
        ) {
            body["tenant_usages_links"] = next;
        }
    }
    Ok(Json(body))
}

/// `GET /os-simple-tenant-usage/{tenant_id}`.
pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    links: Links,
    version: ApiVersion,
    Path(tenant_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let params = query_pairs(q.as_deref());
    let checked =
        query::TENANT_USAGE_SHOW.check(without_none(params.clone()), version, ctx.is_admin)?;
    authorize(&ctx, SHOW, Some(&tenant_id))?;
    let now = now_ms();
    let p = period(&params, now)?;
    let paged = version.at_least(2, 40);
    let all = server_usages(&app.usage.servers_in(Some(&tenant_id), p).await?, p, now);
    let (page, _) = page(all, &checked, paged, app.max_limit)?;
    let usage = tenant_usages(&page, p, true, now)
        .into_iter()
        .next()
        .unwrap_or_else(|| json!({}));
    let mut body = json!({ "tenant_usage": usage });
    if paged {
        let last = page.last().map(|u| u.server_id.to_string());
        if let Some(next) = crate::paging::next_links(
            &links,
            &params,
            &format!("os-simple-tenant-usage/{tenant_id}"),
            page.len(),
            last.as_deref(),
            app.max_limit,
        ) {
            body["tenant_usage_links"] = next;
        }
    }
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_novas_three_formats_only() {
        let midnight = 1_796_083_200_000; // 2026-12-01T00:00:00Z
        assert_eq!(nova_time("2026-12-01T00:00:00", 0), Ok(midnight));
        assert_eq!(nova_time("2026-12-01T00:00:00.5", 0), Ok(midnight + 500));
        assert_eq!(
            nova_time("2026-12-01T00:00:00.123456", 0),
            Ok(midnight + 123)
        );
        assert_eq!(nova_time("2026-12-01 00:00:00.000001", 0), Ok(midnight));
        assert_eq!(nova_time("", 7), Ok(7));
        for bad in [
            "2026-12-01",
            "2026-12-01T00:00:00Z",
            "2026-12-01 00:00:00",
            "2026-12-01T00:00:00.1234567",
            "2026-12-01T00:00:00.",
            "2026-13-01T00:00:00",
            "tomorrow",
        ] {
            let e = nova_time(bad, 0).unwrap_err();
            assert_eq!(
                e.message, "Invalid datetime string: Datetime is in invalid format",
                "{bad}"
            );
        }
    }
}
