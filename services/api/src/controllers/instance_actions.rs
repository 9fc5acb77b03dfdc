//! `/v2.1/servers/{id}/os-instance-actions[/{request_id}]`: what was done
//! to a server, by whom, and how it went, from the log
//! ([`crate::projection::action_log`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::{App, AppState};
use crate::auth::Context;
use crate::error::{ApiError, Result};
use crate::http::query_pairs;
use crate::microversion::ApiVersion;
use crate::policy::{self, Rule};
use crate::projection::action_log::{self, ActionEvent, InstanceAction};
use crate::validation::query;
use crate::views::servers::host_id;
use crate::views::{Links, usage_time};

const MAX_LIMIT: usize = 1000;

/// The server, deleted ones included from 2.21, if `ctx` may see it.
fn server(
    app: &App,
    ctx: &Context,
    id: &str,
    version: ApiVersion,
) -> Result<Arc<novalog_schemas::Instance>> {
    Uuid::parse_str(id)
        .ok()
        .and_then(|u| app.projection.instance_with_deleted(&u))
        .filter(|i| ctx.is_admin || i.project_id == ctx.project_id)
        .filter(|i| !i.is_deleted() || version.at_least(2, 21))
        .ok_or_else(|| ApiError::not_found(format!("Instance {id} could not be found.")))
}

fn action_body(a: &InstanceAction, instance: &Uuid, version: ApiVersion) -> Value {
    let mut v = json!({
        "action": a.action,
        "instance_uuid": instance.to_string(),
        "request_id": a.request_id,
        "user_id": a.user_id,
        "project_id": a.project_id,
        "start_time": usage_time(a.start_time_ms),
        "message": a.message,
    });
    if version.at_least(2, 58) {
        v["updated_at"] = json!(usage_time(a.updated_at_ms));
    }
    v
}

/// What of an event the caller sees (Nova's `_format_event`).
#[derive(Debug, Clone, Copy)]
struct EventView {
    traceback: bool,
    host: bool,
    host_id: bool,
    details: bool,
}

fn event_body(e: &ActionEvent, project_id: &str, show: EventView) -> Value {
    let mut v = json!({
        "event": e.event,
        "start_time": usage_time(e.start_time_ms),
        "finish_time": e.finish_time_ms.map(usage_time),
        "result": e.result,
    });
    if show.traceback {
        v["traceback"] = json!(e.traceback);
    }
    if show.host {
        v["host"] = json!(e.host);
    }
    if show.host_id {
        v["hostId"] = json!(host_id(project_id, e.host.as_deref()));
    }
    if show.details {
        v["details"] = json!(e.details);
    }
    v
}

fn query_error(name: &str, value: &str, reason: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid input for query parameters {name}. Value: {value}. {reason}"
    ))
}

fn time(name: &str, value: &str) -> Result<i64> {
    crate::domain::compute::parse_time(value)
        .ok_or_else(|| query_error(name, value, &format!("'{value}' is not a 'date-time'")))
}

/// The list's query (2.58: `limit`, `marker`, `changes-since`; 2.66:
/// `changes-before`; nothing else allowed). Before 2.58 it is ignored.
#[derive(Debug, Default, PartialEq)]
struct Query {
    limit: Option<usize>,
    marker: Option<String>,
    since: Option<i64>,
    before: Option<i64>,
}

fn parse_query(params: &[(String, String)], version: ApiVersion) -> Result<Query> {
    let mut q = Query::default();
    if !version.at_least(2, 58) {
        return Ok(q);
    }
    for (k, v) in params {
        match k.as_str() {
            "limit" => {
                let n = query::non_negative(v).ok_or_else(|| {
                    query_error(k, v, &format!("'{v}' does not match '^[0-9]*$'"))
                })?;
                q.limit = Some(n.min(MAX_LIMIT));
            }
            "marker" => q.marker = Some(v.clone()),
            "changes-since" => q.since = Some(time(k, v)?),
            "changes-before" if version.at_least(2, 66) => q.before = Some(time(k, v)?),
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

/// `GET /servers/{id}/os-instance-actions`, newest first; from 2.58 paged
/// (`limit`, `marker`) and filtered (`changes-since`, from 2.66
/// `changes-before`).
pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    links: Links,
    version: ApiVersion,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let inst = server(&app, &ctx, &id, version)?;
    policy::authorize(
        &ctx,
        Rule::ReaderOrAdmin("os_compute_api:os-instance-actions:list"),
        Some(&inst.project_id),
    )?;
    let params = query::INSTANCE_ACTIONS.check(query_pairs(q.as_deref()), version, ctx.is_admin)?;
    let Query {
        limit,
        marker,
        since,
        before,
    } = parse_query(&params, version)?;
    let all = app.projection.instance_actions(&inst.id);
    // Nova pages from 2.58 only.
    let limit = version
        .at_least(2, 58)
        .then(|| crate::paging::page_size(limit, app.max_limit));
    let page = action_log::page(&all, since, before, marker.as_deref(), limit)
        .map_err(ApiError::bad_request)?;
    let actions: Vec<Value> = page
        .iter()
        .map(|a| action_body(a, &inst.id, version))
        .collect();
    let mut body = json!({ "instanceActions": actions });
    let collection = format!("servers/{}/os-instance-actions", inst.id);
    if version.at_least(2, 58)
        && let Some(next) = crate::paging::next_links(
            &links,
            &params,
            &collection,
            page.len(),
            page.last().map(|a| a.request_id.as_str()),
            app.max_limit,
        )
    {
        body["links"] = next;
    }
    Ok(Json(body))
}

/// `GET /servers/{id}/os-instance-actions/{request_id}`, with its events
/// (administrators always; others from 2.51, without tracebacks).
pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path((id, request_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let inst = server(&app, &ctx, &id, version)?;
    policy::authorize(
        &ctx,
        Rule::ReaderOrAdmin("os_compute_api:os-instance-actions:show"),
        Some(&inst.project_id),
    )?;
    let all = app.projection.instance_actions(&inst.id);
    let action = all
        .iter()
        .rev()
        .find(|a| a.request_id == request_id)
        .ok_or_else(|| ApiError::not_found(format!("Action {request_id} not found")))?;
    let mut body = action_body(action, &inst.id, version);
    let show_events = ctx.is_admin || version.at_least(2, 51);
    if show_events {
        let show = EventView {
            traceback: ctx.is_admin,
            host: ctx.is_admin && version.at_least(2, 62),
            host_id: version.at_least(2, 62),
            details: ctx.is_admin && version.at_least(2, 84),
        };
        let project = if action.project_id.is_empty() {
            &inst.project_id
        } else {
            &action.project_id
        };
        let events: Vec<Value> = action
            .events
            .iter()
            .rev()
            .map(|e| event_body(e, project, show))
            .collect();
        body["events"] = json!(events);
    }
    Ok(Json(json!({ "instanceAction": body })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action() -> InstanceAction {
        InstanceAction {
            action: "reboot".into(),
            request_id: "req-1".into(),
            user_id: "u".into(),
            project_id: "p1".into(),
            start_time_ms: 1_378_180_892_000,
            updated_at_ms: 1_378_180_893_500,
            message: Some("Error".into()),
            events: vec![ActionEvent {
                event: "compute_reboot_instance".into(),
                start_time_ms: 1_378_180_892_000,
                finish_time_ms: Some(1_378_180_893_500),
                result: Some("Error".into()),
                traceback: Some("trace".into()),
                host: Some("h1".into()),
                details: Some("boom".into()),
            }],
        }
    }

    #[test]
    fn list_queries_from_2_58() {
        let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let v258 = ApiVersion::new(2, 58);
        let v266 = ApiVersion::new(2, 66);
        assert_eq!(
            parse_query(&p(&[("limit", "x")]), ApiVersion::new(2, 57)).unwrap(),
            Query::default(),
            "ignored before 2.58"
        );
        let q = parse_query(&p(&[("limit", "5000"), ("marker", "req-1")]), v258).unwrap();
        assert_eq!((q.limit, q.marker.as_deref()), (Some(1000), Some("req-1")));
        let err = |pairs: &[(&str, &str)], v| parse_query(&p(pairs), v).unwrap_err().message;
        assert_eq!(
            err(&[("limit", "-1")], v258),
            "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'"
        );
        assert_eq!(
            err(&[("changes-since", "yesterday")], v258),
            "Invalid input for query parameters changes-since. Value: yesterday. 'yesterday' is not a 'date-time'"
        );
        assert!(
            err(&[("changes-before", "2020-01-01T00:00:00Z")], v258)
                .contains("'changes-before' was unexpected")
        );
        assert_eq!(
            err(
                &[
                    ("changes-since", "2020-01-02T00:00:00Z"),
                    ("changes-before", "2020-01-01T00:00:00Z")
                ],
                v266
            ),
            "The value of changes-since must be less than or equal to changes-before."
        );
    }

    #[test]
    fn action_fields_follow_the_microversion() {
        let id = Uuid::nil();
        let v = action_body(&action(), &id, ApiVersion::new(2, 1));
        assert_eq!(v["start_time"], "2013-09-03T04:01:32.000000");
        assert_eq!(v["message"], "Error");
        assert_eq!(v["instance_uuid"], id.to_string());
        assert!(v.get("updated_at").is_none());
        let v = action_body(&action(), &id, ApiVersion::new(2, 58));
        assert_eq!(v["updated_at"], "2013-09-03T04:01:33.500000");
    }

    #[test]
    fn event_fields_follow_policy_and_microversion() {
        let a = action();
        let e = &a.events[0];
        let member = EventView {
            traceback: false,
            host: false,
            host_id: true,
            details: false,
        };
        let v = event_body(e, "p1", member);
        assert_eq!(v["result"], "Error");
        assert_eq!(v["finish_time"], "2013-09-03T04:01:33.500000");
        assert!(v.get("traceback").is_none() && v.get("host").is_none());
        assert!(v.get("details").is_none());
        assert_eq!(v["hostId"], host_id("p1", Some("h1")));
        let admin = EventView {
            traceback: true,
            host: true,
            host_id: true,
            details: true,
        };
        let v = event_body(e, "p1", admin);
        assert_eq!(
            (&v["traceback"], &v["host"], &v["details"]),
            (&json!("trace"), &json!("h1"), &json!("boom"))
        );
    }
}
