//! `POST /v2.1/servers/{id}/action`: the body's only key names the action
//! (`{"reboot": {"type": "HARD"}}`, `{"os-stop": null}`, ...). Each action
//! is one arm of [`parse`]: its body checked with Nova's schema, its
//! policy rule, and the [`ServerAction`] the conductor decides on. The
//! conductor's verdict is the answer: 202, or Nova's 409 (invalid state,
//! locked) or 403.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use novalog_schemas::ServerAction;
use serde_json::Value;

use crate::app::AppState;
use crate::auth::Context;
use crate::domain::compute;
use crate::error::{ApiError, Result};
use crate::http::{JsonBody, RequestId};
use crate::microversion::ApiVersion;
use crate::validation::{self, invalid, object, only, required, string};

pub use crate::domain::compute::ActionRequest;

fn request(action: ServerAction, policy: &'static str) -> Option<Result<ActionRequest>> {
    Some(Ok(ActionRequest { action, policy }))
}

/// The action the body names, checked; `None` when no such action exists.
pub fn parse_action(
    name: &str,
    value: &Value,
    version: ApiVersion,
) -> Option<Result<ActionRequest>> {
    match name {
        "reboot" => Some(reboot(value).map(|hard| ActionRequest {
            action: ServerAction::Reboot { hard },
            policy: "os_compute_api:servers:reboot",
        })),
        "os-stop" => request(ServerAction::Stop, "os_compute_api:servers:stop"),
        "os-start" => request(ServerAction::Start, "os_compute_api:servers:start"),
        "pause" => request(ServerAction::Pause, "os_compute_api:os-pause-server:pause"),
        "unpause" => request(
            ServerAction::Unpause,
            "os_compute_api:os-pause-server:unpause",
        ),
        "suspend" => request(
            ServerAction::Suspend,
            "os_compute_api:os-suspend-server:suspend",
        ),
        "resume" => request(
            ServerAction::Resume,
            "os_compute_api:os-suspend-server:resume",
        ),
        "lock" => Some(lock_reason(value, version).map(|reason| ActionRequest {
            action: ServerAction::Lock { reason },
            policy: "os_compute_api:os-lock-server:lock",
        })),
        "unlock" => request(ServerAction::Unlock, "os_compute_api:os-lock-server:unlock"),
        _ => None,
    }
}

/// `{"reboot": {"type": "SOFT" | "HARD"}}` (any case Nova's enum lists).
fn reboot(value: &Value) -> Result<bool> {
    let obj = object("reboot", value)?;
    only("reboot", obj, &["type"])?;
    let t = required("reboot", obj, "type")?;
    let s = string("type", t, 0, usize::MAX)?;
    match s {
        "HARD" | "Hard" | "hard" => Ok(true),
        "SOFT" | "Soft" | "soft" => Ok(false),
        _ => Err(invalid(
            "type",
            t,
            format!(
                "{} is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']",
                validation::repr(t)
            ),
        )),
    }
}

/// `{"lock": null}` or, from 2.73, `{"lock": {"locked_reason": "..."}}`.
fn lock_reason(value: &Value, version: ApiVersion) -> Result<Option<String>> {
    if !version.at_least(2, 73) || value.is_null() {
        return Ok(None);
    }
    let obj = object("lock", value)?;
    only("lock", obj, &["locked_reason"])?;
    obj.get("locked_reason")
        .map(|r| string("locked_reason", r, 1, 255).map(str::to_owned))
        .transpose()
}

/// The body's action: exactly one key (Nova's `additionalProperties:
/// false` on every action schema), naming a known action.
pub fn parse(body: &Value, version: ApiVersion) -> Result<ActionRequest> {
    let Some(obj) = body.as_object().filter(|o| !o.is_empty()) else {
        return Err(ApiError::bad_request("Malformed request body"));
    };
    // Nova takes the body's first key; keys come sorted here, so a known
    // action among several keys is the action and the others are extra.
    let (name, value) = obj
        .iter()
        .find(|(k, v)| parse_action(k, v, version).is_some())
        .unwrap_or_else(|| obj.iter().next().expect("not empty"));
    let parsed = parse_action(name, value, version)
        .ok_or_else(|| ApiError::bad_request(format!("There is no such action: {name}")))?;
    if obj.len() > 1 {
        only("", obj, &[name.as_str()])?;
    }
    parsed
}

/// `POST /servers/{id}/action`: 202 once the conductor accepted it. The
/// saga actions (resize, migrate, rebuild, ...) go to [`crate::controllers::saga_actions`].
pub async fn action(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    links: crate::views::Links,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    if let Some(answer) = crate::controllers::saga_actions::dispatch(
        &app,
        &ctx,
        &request_id,
        &links,
        version,
        &id,
        &body,
    )
    .await
    {
        return answer;
    }
    if let Some(answer) =
        crate::controllers::shelve_rescue::dispatch(&app, &ctx, &request_id, version, &id, &body)
            .await
    {
        return answer;
    }
    if let Some(answer) =
        crate::controllers::remote_consoles::dispatch(&app, &ctx, &request_id, version, &id, &body)
            .await
    {
        return answer;
    }
    if let Some(answer) = crate::controllers::server_lifecycle::dispatch(
        &app,
        &ctx,
        &request_id,
        &links,
        version,
        &id,
        &body,
    )
    .await
    {
        return answer;
    }
    let req = parse(&body, version)?;
    compute::act(&app, &ctx, &request_id, &id, req).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const V21: ApiVersion = ApiVersion::new(2, 1);

    fn err(body: Value, version: ApiVersion) -> String {
        parse(&body, version).unwrap_err().message
    }

    #[test]
    fn every_action_parses() {
        let cases = [
            (
                json!({"reboot": {"type": "HARD"}}),
                ServerAction::Reboot { hard: true },
            ),
            (
                json!({"reboot": {"type": "soft"}}),
                ServerAction::Reboot { hard: false },
            ),
            (json!({"os-stop": null}), ServerAction::Stop),
            (json!({"os-start": null}), ServerAction::Start),
            (json!({"pause": null}), ServerAction::Pause),
            (json!({"unpause": null}), ServerAction::Unpause),
            (json!({"suspend": null}), ServerAction::Suspend),
            (json!({"resume": null}), ServerAction::Resume),
            (json!({"lock": null}), ServerAction::Lock { reason: None }),
            (json!({"unlock": null}), ServerAction::Unlock),
        ];
        for (body, action) in cases {
            assert_eq!(parse(&body, V21).unwrap().action, action, "{body}");
        }
    }

    #[test]
    fn bad_bodies_get_novas_400s() {
        assert_eq!(
            err(json!({"fly": null}), V21),
            "There is no such action: fly"
        );
        assert_eq!(err(json!({}), V21), "Malformed request body");
        assert_eq!(err(json!([1]), V21), "Malformed request body");
        assert_eq!(err(Value::Null, V21), "Malformed request body");
        assert_eq!(
            err(json!({"reboot": {"type": "GENTLE"}}), V21),
            "Invalid input for field/attribute type. Value: GENTLE. 'GENTLE' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"
        );
        assert_eq!(
            err(json!({"reboot": {}}), V21),
            "Invalid input for field/attribute reboot. Value: {}. 'type' is a required property"
        );
        assert_eq!(
            err(json!({"reboot": null}), V21),
            "Invalid input for field/attribute reboot. Value: None. None is not of type 'object'"
        );
        assert_eq!(
            err(json!({"os-stop": null, "extra": 1}), V21),
            "Additional properties are not allowed ('extra' was unexpected)"
        );
    }

    #[test]
    fn lock_reason_from_2_73() {
        let v273 = ApiVersion::new(2, 73);
        let body = json!({"lock": {"locked_reason": "maintenance"}});
        assert_eq!(
            parse(&body, V21).unwrap().action,
            ServerAction::Lock { reason: None },
            "ignored before 2.73"
        );
        assert_eq!(
            parse(&body, v273).unwrap().action,
            ServerAction::Lock {
                reason: Some("maintenance".into())
            }
        );
        assert!(err(json!({"lock": {"locked_reason": ""}}), v273).contains("is too short"));
        assert!(
            err(json!({"lock": {"locked_reason": "x".repeat(256)}}), v273).contains("is too long")
        );
        assert!(err(json!({"lock": {"why": "x"}}), v273).contains("'why' was unexpected"));
        assert!(err(json!({"lock": 3}), v273).contains("is not of type 'object'"));
    }
}
