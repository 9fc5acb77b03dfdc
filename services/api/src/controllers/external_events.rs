//! `POST /v2.1/os-server-external-events` (nova's server_external_events
//! controller): events other services (Neutron, Cinder) send about
//! servers. Each event is answered on its own: 200 `completed` when the
//! server is on a host, 422 `failed` when it has none yet, 404 `failed`
//! when no such server exists, 400 `failed` when a tag the event needs is
//! missing; the request is 200 when every event was accepted, else 207.
//! No event changes state here (the network events concern ports this
//! deployment does not have), so nothing is written.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::Context;
use crate::error::{ApiError, Result};
use crate::http::JsonBody;

/// Events Nova drops without a `tag`.
const TAG_REQUIRED: &[&str] = &[
    "volume-extended",
    "power-update",
    "accelerator-request-bound",
];

/// Nova's default is the `service` role (the services that send events);
/// administrators are let through as well.
fn authorize(ctx: &Context) -> Result<()> {
    if ctx.is_admin || ctx.roles.iter().any(|r| r == "service") {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "Policy doesn't allow os_compute_api:os-server-external-events:create to be performed.",
        ))
    }
}

/// Where an event's server is, as far as the event is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Unknown,
    WithoutHost,
    OnHost,
}

/// Each event answered (`status`, `code`), and the request's status: the
/// pure part of `create`, given where each event's server is.
pub fn answer(events: &[Value], target: impl Fn(&str) -> Target) -> (Vec<Value>, StatusCode) {
    let mut result = StatusCode::OK;
    let answered = events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            let uuid = e["server_uuid"].as_str().unwrap_or_default().to_owned();
            let name = e["name"].as_str().unwrap_or_default();
            let (status, code) = match target(&uuid) {
                Target::Unknown => ("failed", 404),
                _ if TAG_REQUIRED.contains(&name) && e.get("tag").is_none() => ("failed", 400),
                Target::OnHost => ("completed", 200),
                Target::WithoutHost => ("failed", 422),
            };
            if code != 200 {
                result = StatusCode::MULTI_STATUS;
            }
            e["status"] = json!(status);
            e["code"] = json!(code);
            e
        })
        .collect();
    (answered, result)
}

/// `POST /os-server-external-events`.
pub async fn create(
    State(app): State<AppState>,
    ctx: Context,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>)> {
    authorize(&ctx)?;
    let events = body["events"].as_array().cloned().unwrap_or_default();
    let (answered, status) = answer(&events, |uuid| {
        let found = Uuid::parse_str(uuid)
            .ok()
            .and_then(|id| app.projection.instance(&id))
            .filter(|i| !i.is_deleted());
        match found {
            None => Target::Unknown,
            Some(i) if i.host.is_some() => Target::OnHost,
            Some(_) => Target::WithoutHost,
        }
    });
    Ok((status, Json(json!({ "events": answered }))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_gets_its_own_code_and_any_failure_makes_207() {
        let ev = |uuid: &str, name: &str| json!({"server_uuid": uuid, "name": name});
        let target = |u: &str| match u {
            "on" => Target::OnHost,
            "building" => Target::WithoutHost,
            _ => Target::Unknown,
        };
        let (all_ok, status) = answer(&[ev("on", "network-changed")], target);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(all_ok[0]["code"], 200);
        assert_eq!(all_ok[0]["status"], "completed");
        let (mixed, status) = answer(
            &[
                ev("on", "network-vif-plugged"),
                ev("building", "network-changed"),
                ev("gone", "network-changed"),
                ev("on", "volume-extended"),
            ],
            target,
        );
        assert_eq!(status, StatusCode::MULTI_STATUS);
        let codes: Vec<i64> = mixed.iter().map(|e| e["code"].as_i64().unwrap()).collect();
        assert_eq!(codes, [200, 422, 404, 400]);
        assert!(mixed[1..].iter().all(|e| e["status"] == "failed"));
        // Even when no event's server exists, the answer is 207, not 404.
        assert_eq!(
            answer(&[ev("gone", "network-changed")], target).1,
            StatusCode::MULTI_STATUS
        );
    }
}
