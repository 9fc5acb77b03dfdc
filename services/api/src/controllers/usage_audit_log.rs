//! `/v2.1/os-instance_usage_audit_log[/{before}]` (nova's
//! instance_usage_audit_log controller, administrators only): how far the
//! periodic instance usage audit got on each compute host for the last
//! completed audit period (a month, Nova's default
//! `instance_usage_audit_period`). Nova's audit is off by default
//! (`instance_usage_audit = False`) and no host runs it here (usage is
//! metered from the log instead), so every compute host is "not run".

use axum::Json;
use axum::extract::{Path, State};
use chrono::{Datelike, NaiveDate, NaiveDateTime};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Context;
use crate::error::{ApiError, Result};

fn authorize(ctx: &Context, rule: &str) -> Result<()> {
    if ctx.is_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "Policy doesn't allow os_compute_api:os-instance-usage-audit-log:{rule} to be performed."
        )))
    }
}

fn first_of_month(year: i32, month: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

fn month_before(t: NaiveDateTime) -> NaiveDateTime {
    if t.month() == 1 {
        first_of_month(t.year() - 1, 12)
    } else {
        first_of_month(t.year(), t.month() - 1)
    }
}

/// The last monthly audit period completed before `now` (Nova's
/// `last_completed_audit_period` for unit `month`): `[begin, end)`, `end`
/// the 1st of `now`'s month unless `now` is that very instant.
pub fn last_completed_month(now: NaiveDateTime) -> (NaiveDateTime, NaiveDateTime) {
    let mut end = first_of_month(now.year(), now.month());
    if end >= now {
        end = month_before(end);
    }
    (month_before(end), end)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]`, as Nova's `show` parses its id.
pub fn parse_before(id: &str) -> Result<NaiveDateTime> {
    let format = if id.contains('.') {
        "%Y-%m-%d %H:%M:%S%.f"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    NaiveDateTime::parse_from_str(id, format)
        .map_err(|_| ApiError::bad_request(format!("Invalid timestamp for date {id}")))
}

/// The audit log of the period before `before` over `hosts` (none ran).
fn audit_log(hosts: &[String], before: NaiveDateTime) -> Value {
    let (begin, end) = last_completed_month(before);
    let n = hosts.len();
    // No host is done: "ALL" only when there are no hosts at all.
    let done = if n == 0 {
        "ALL".to_owned()
    } else {
        format!("0 of {n}")
    };
    json!({
        "period_beginning": begin.format("%Y-%m-%d %H:%M:%S").to_string(),
        "period_ending": end.format("%Y-%m-%d %H:%M:%S").to_string(),
        "num_hosts": n,
        "num_hosts_done": 0,
        "num_hosts_running": 0,
        "num_hosts_not_run": n,
        "hosts_not_run": hosts,
        "total_instances": 0,
        "total_errors": 0,
        "overall_status": format!("{done} hosts done. 0 errors."),
        "log": {},
    })
}

fn compute_hosts(app: &AppState) -> Vec<String> {
    let mut hosts: Vec<String> = app
        .projection
        .hosts()
        .into_iter()
        .filter(|h| !h.deleted)
        .map(|h| h.name)
        .collect();
    hosts.sort();
    hosts
}

/// `GET /os-instance_usage_audit_log`: the period completed before now.
pub async fn index(State(app): State<AppState>, ctx: Context) -> Result<Json<Value>> {
    authorize(&ctx, "list")?;
    let now = chrono::Utc::now().naive_utc();
    Ok(Json(json!({
        "instance_usage_audit_logs": audit_log(&compute_hosts(&app), now)
    })))
}

/// `GET /os-instance_usage_audit_log/{before}`: the period completed
/// before that time.
pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    Path(before): Path<String>,
) -> Result<Json<Value>> {
    authorize(&ctx, "show")?;
    let before = parse_before(&before)?;
    Ok(Json(json!({
        "instance_usage_audit_log": audit_log(&compute_hosts(&app), before)
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        parse_before(s).unwrap()
    }

    #[test]
    fn the_period_is_the_last_whole_month_before() {
        let (b, e) = last_completed_month(at("2026-12-07 18:00:00"));
        assert_eq!(
            (b, e),
            (at("2026-11-01 00:00:00"), at("2026-12-01 00:00:00"))
        );
        // The 1st at midnight has not completed December's predecessor yet.
        let (b, e) = last_completed_month(at("2026-12-01 00:00:00"));
        assert_eq!(
            (b, e),
            (at("2026-10-01 00:00:00"), at("2026-11-01 00:00:00"))
        );
        let (b, e) = last_completed_month(at("2027-01-15 10:00:00.5"));
        assert_eq!(
            (b, e),
            (at("2026-12-01 00:00:00"), at("2027-01-01 00:00:00"))
        );
        let (b, _) = last_completed_month(at("2027-02-02 00:00:00"));
        assert_eq!(b, at("2027-01-01 00:00:00"));
    }

    #[test]
    fn a_bad_timestamp_is_novas_400() {
        let e = parse_before("yesterday").unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(e.message, "Invalid timestamp for date yesterday");
    }

    #[test]
    fn no_host_has_run_the_audit() {
        let log = audit_log(&["a".into(), "b".into()], at("2026-12-07 00:00:00"));
        assert_eq!(log["overall_status"], "0 of 2 hosts done. 0 errors.");
        assert_eq!(log["num_hosts_not_run"], 2);
        assert_eq!(log["period_beginning"], "2026-11-01 00:00:00");
        let none = audit_log(&[], at("2026-12-07 00:00:00"));
        assert_eq!(none["overall_status"], "ALL hosts done. 0 errors.");
    }
}
