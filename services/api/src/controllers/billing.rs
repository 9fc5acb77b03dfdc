//! `/billing/v1`: rated usage, exact to the millisecond and to the last
//! unit of money (amounts as decimal strings, never floats).
//!
//! - `GET /billing/v1/projects/{project_id}?start=&end=[&format=csv]`: a
//!   project's bill for `[start, end)`: its total and one line item per
//!   server, flavor and billable state. Policy
//!   `novalog:billing:project:show`: the project's own members (and
//!   readers), administrators.
//! - `GET /billing/v1/projects?start=&end=[&format=csv]`: every project's
//!   total (`novalog:billing:projects:list`, administrators).
//!
//! `end` defaults to now, `start` to the first instant of `end`'s month
//! (UTC). Times are ISO 8601 (`2026-12-01T00:00:00`, optional fraction,
//! `Z` or offset; a date alone is its midnight). Errors are Nova's
//! shape: a malformed time or `end` before `start` 400, a project
//! unknown to the identity service 404, an unreachable billing service
//! 503.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, TimeZone};
use novalog_billing::period::parse_time;
use novalog_billing::rate::{Bill, LineItem, bill, rate_lines};
use novalog_billing::{Interval, Period, PriceTable};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Context;
use crate::domain::usage::now_ms;
use crate::error::{ApiError, Result};
use crate::http::query_pairs;
use crate::policy::{Rule, authorize};

const SHOW: Rule = Rule::ReaderOrAdmin("novalog:billing:project:show");
const LIST: &str = "novalog:billing:projects:list";

/// What a `/billing/v1` query asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct BillQuery {
    pub period: Period,
    pub csv: bool,
}

/// The first instant (ms) of the UTC month holding `ms`.
fn month_start(ms: i64) -> i64 {
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    chrono::Utc
        .with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
        .map_or(ms, |m| m.timestamp_millis())
}

/// Parses `start`, `end` and `format`; anything else is a 400.
pub fn parse_query(pairs: &[(String, String)], now_ms: i64) -> Result<BillQuery> {
    let (mut start, mut end, mut csv) = (None, None, false);
    for (k, v) in pairs {
        match k.as_str() {
            "start" => {
                start = Some(parse_time(v).map_err(|e| ApiError::bad_request(e.to_string()))?)
            }
            "end" => end = Some(parse_time(v).map_err(|e| ApiError::bad_request(e.to_string()))?),
            "format" => {
                csv = match v.as_str() {
                    "csv" => true,
                    "json" => false,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "Invalid format {other:?}: json or csv"
                        )));
                    }
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "Additional properties are not allowed ('{other}' was unexpected)"
                )));
            }
        }
    }
    let end = end.unwrap_or(now_ms);
    let start = start.unwrap_or_else(|| month_start(end));
    let period = Period::new(start, end).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(BillQuery { period, csv })
}

/// Times on bills: ISO 8601 in UTC to the millisecond.
pub fn bill_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// Milliseconds as exact seconds (`3600.250`).
fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn line_json(table: &PriceTable, l: &LineItem) -> Value {
    let f = &l.key.flavor;
    json!({
        "server_id": l.key.server_id,
        "server_name": l.server_name,
        "user_id": l.user_id,
        "flavor": {
            "id": f.id,
            "name": f.name,
            "vcpus": f.vcpus,
            "ram_mb": f.ram_mb,
            "disk_gb": f.disk_gb,
            "ephemeral_gb": f.ephemeral_gb,
        },
        "state": l.key.state.as_str(),
        "milliseconds": l.ms,
        "seconds": seconds(l.ms),
        "priced_by": l.priced_by.as_str(),
        "amount": table.round(l.amount).to_string(),
    })
}

/// A bill as `/billing/v1` shows it.
pub fn bill_json(table: &PriceTable, b: &Bill) -> Value {
    json!({"bill": {
        "project_id": b.project_id,
        "start": bill_time(b.period.start_ms),
        "end": bill_time(b.period.end_ms),
        "currency": b.currency,
        "total": table.round(b.total).to_string(),
        "line_items": b.lines.iter().map(|l| line_json(table, l)).collect::<Vec<_>>(),
    }})
}

/// RFC 4180: a field with a comma, quote or line break is quoted, its
/// quotes doubled.
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

fn csv_row(out: &mut String, fields: &[String]) {
    let row: Vec<_> = fields.iter().map(|f| csv_field(f)).collect();
    let _ = write!(out, "{}\r\n", row.join(","));
}

pub const CSV_HEADER: &str = "project_id,start,end,server_id,server_name,user_id,flavor_id,flavor_name,vcpus,ram_mb,disk_gb,ephemeral_gb,state,seconds,priced_by,currency,amount";

/// A bill as CSV: a header row, then one row per line item. Written
/// straight into one string: the fields every row shares are quoted once.
pub fn bill_csv(table: &PriceTable, b: &Bill) -> String {
    let mut out = String::with_capacity(64 + b.lines.len() * 200);
    out.push_str(CSV_HEADER);
    out.push_str("\r\n");
    let head = format!(
        "{},{},{},",
        csv_field(&b.project_id),
        bill_time(b.period.start_ms),
        bill_time(b.period.end_ms)
    );
    let currency = csv_field(&b.currency);
    for l in &b.lines {
        let f = &l.key.flavor;
        out.push_str(&head);
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{}.{:03},{},{},{}\r\n",
            l.key.server_id,
            csv_field(&l.server_name),
            csv_field(&l.user_id),
            csv_field(&f.id),
            csv_field(&f.name),
            f.vcpus,
            f.ram_mb,
            f.disk_gb,
            f.ephemeral_gb,
            l.key.state.as_str(),
            l.ms / 1000,
            l.ms % 1000,
            l.priced_by.as_str(),
            currency,
            table.round(l.amount),
        );
    }
    out
}

fn csv_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response()
}

/// Whether `project` is one the cloud knows: the identity service's, or
/// (without one: noauth2) any with usage, and always the caller's own.
async fn known_project(app: &AppState, ctx: &Context, project: &str) -> Result<bool> {
    if project == ctx.project_id {
        return Ok(true);
    }
    if let Some(identity) = app.auth.identity() {
        let r = novalog_identity::directory::Ref::Id(project.to_owned());
        // By id, the domain is not consulted.
        return Ok(identity.directory.view().project(&r, "").is_some());
    }
    Ok(app.usage.projects().await?.iter().any(|p| p == project))
}

/// `GET /billing/v1/projects/{project_id}`.
pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    Path(project): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let now = now_ms();
    let q = parse_query(&query_pairs(q.as_deref()), now)?;
    authorize(&ctx, SHOW, Some(&project))?;
    if !known_project(&app, &ctx, &project).await? {
        return Err(ApiError::not_found(format!(
            "Project {project} could not be found."
        )));
    }
    let lines = app.usage.line_usage(&project, q.period, now).await?;
    let b = rate_lines(&app.prices, &project, lines, q.period);
    Ok(if q.csv {
        csv_response(bill_csv(&app.prices, &b))
    } else {
        Json(bill_json(&app.prices, &b)).into_response()
    })
}

/// `GET /billing/v1/projects`: every project with time in the period.
pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let now = now_ms();
    let q = parse_query(&query_pairs(q.as_deref()), now)?;
    if !ctx.is_admin {
        return Err(ApiError::forbidden(format!(
            "Policy doesn't allow {LIST} to be performed."
        )));
    }
    let intervals = app.usage.servers_in(None, q.period).await?;
    let mut by_project: BTreeMap<&str, Vec<&Interval>> = BTreeMap::new();
    for i in &intervals {
        by_project.entry(&i.project_id).or_default().push(i);
    }
    let bills: Vec<Bill> = by_project
        .into_iter()
        .map(|(p, is)| bill(&app.prices, p, is, q.period, now))
        .collect();
    if q.csv {
        let mut out = "project_id,start,end,currency,total\r\n".to_owned();
        for b in &bills {
            csv_row(
                &mut out,
                &[
                    b.project_id.clone(),
                    bill_time(b.period.start_ms),
                    bill_time(b.period.end_ms),
                    b.currency.clone(),
                    app.prices.round(b.total).to_string(),
                ],
            );
        }
        return Ok(csv_response(out));
    }
    let rows: Vec<Value> = bills
        .iter()
        .map(|b| {
            json!({
                "project_id": b.project_id,
                "start": bill_time(b.period.start_ms),
                "end": bill_time(b.period.end_ms),
                "currency": b.currency,
                "total": app.prices.round(b.total).to_string(),
                "line_items": b.lines.len(),
            })
        })
        .collect();
    Ok(Json(json!({ "bills": rows })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_period_defaults_to_the_month_so_far() {
        let now = 1_796_083_200_000 + 5 * 86_400_000 + 17; // 2026-12-06T00:00:00.017Z
        let q = parse_query(&[], now).unwrap();
        assert_eq!(q.period.start_ms, 1_796_083_200_000);
        assert_eq!(q.period.end_ms, now);
        assert!(!q.csv);
        let q = parse_query(
            &pairs(&[
                ("start", "2026-11-01"),
                ("end", "2026-11-02T00:00:00Z"),
                ("format", "csv"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(q.period.end_ms - q.period.start_ms, 86_400_000);
        assert!(q.csv);
    }

    #[test]
    fn bad_queries_are_400s() {
        for q in [
            &[("start", "2026-12-02"), ("end", "2026-12-01")][..],
            &[("start", "yesterday")],
            &[("end", "2026-13-01")],
            &[("format", "xml")],
            &[("fuzz", "1")],
        ] {
            let e = parse_query(&pairs(q), 0).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{q:?}");
        }
    }

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(seconds(3_600_250), "3600.250");
        assert_eq!(bill_time(0), "1970-01-01T00:00:00.000Z");
    }
}
