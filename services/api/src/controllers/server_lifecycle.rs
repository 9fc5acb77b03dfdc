//! The rest of a server's life through `POST /servers/{id}/action`:
//! `createImage` (Nova's ServersController), `os-getConsoleOutput`
//! (ConsoleOutputController), `restore` and `forceDelete`
//! (DeferredDeleteController), `os-resetState` and the removed
//! `resetNetwork` (AdminActionsController), and `trigger_crash_dump`
//! (2.17). Each validates its body with Nova's schema, checks Nova's
//! default policy (the owner or an administrator; `os-resetState`:
//! administrators), and asks the conductor, whose verdict carries Nova's
//! 409s on state and lock.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use novalog_schemas::{CatalogEvent, Event, InstanceEvent, ServerAction, VmState};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::app::App;
use crate::auth::Context;
use crate::domain::compute;
use crate::domain::intents::{Intent, SubmitError};
use crate::error::{ApiError, Result};
use crate::microversion::ApiVersion;
use crate::policy::Rule;
use crate::projection::verdicts::Verdict;
use crate::validation::{self, invalid, object, only};

const ACTIONS: &[&str] = &[
    "createImage",
    "os-getConsoleOutput",
    "restore",
    "forceDelete",
    "os-resetState",
    "resetNetwork",
    "trigger_crash_dump",
];

/// Nova's default for the `metadata_items` quota, which bounds a
/// snapshot's properties before 2.39.
const METADATA_ITEMS: usize = 128;

/// The answer to one of these actions, or `None` when the body names
/// none of them.
pub async fn dispatch(
    app: &App,
    ctx: &Context,
    request_id: &str,
    links: &crate::views::Links,
    version: ApiVersion,
    id: &str,
    body: &Value,
) -> Option<Result<Response>> {
    let obj = body.as_object()?;
    let (name, value) = obj.iter().find(|(k, _)| ACTIONS.contains(&k.as_str()))?;
    if obj.len() > 1
        && let Err(e) = only("", obj, &[name.as_str()])
    {
        return Some(Err(e));
    }
    let answer = match name.as_str() {
        "createImage" => create_image(app, ctx, request_id, links, version, id, value).await,
        "os-getConsoleOutput" => console_output(app, ctx, request_id, id, value).await,
        "restore" => {
            let rule = Rule::OwnerOrAdmin("os_compute_api:os-deferred-delete:restore");
            match compute::authorized(app, ctx, id, rule) {
                Ok(inst) => {
                    compute::submit_action(app, ctx, request_id, &inst, ServerAction::Restore)
                        .await
                        .map(|_| StatusCode::ACCEPTED.into_response())
                }
                Err(e) => Err(e),
            }
        }
        "forceDelete" => {
            let rule = Rule::OwnerOrAdmin("os_compute_api:os-deferred-delete:force");
            match compute::authorized(app, ctx, id, rule) {
                // Already being deleted: nothing more to do.
                Ok(inst) if inst.task_state == Some(novalog_schemas::TaskState::Deleting) => {
                    Ok(StatusCode::ACCEPTED.into_response())
                }
                Ok(inst) => compute::submit_delete(app, ctx, request_id, &inst, true)
                    .await
                    .map(|()| StatusCode::ACCEPTED.into_response()),
                Err(e) => Err(e),
            }
        }
        "os-resetState" => reset_state(app, ctx, request_id, id, value).await,
        // Nova removed it with nova-network (23.0.0): 410 for every caller.
        "resetNetwork" => Err(ApiError::new(
            StatusCode::GONE,
            "This resource is no longer available.  No forwarding address is given.",
        )),
        "trigger_crash_dump" => crash_dump(app, ctx, request_id, version, id, value).await,
        _ => return None,
    };
    Some(answer)
}

/// `createImage`'s body: `{"name": ..., "metadata": {...}}`.
pub fn create_image_args(
    value: &Value,
) -> Result<(String, std::collections::BTreeMap<String, String>)> {
    let o = object("createImage", value)?;
    only("createImage", o, &["name", "metadata"])?;
    let name = match o.get("name") {
        Some(v) => validation::name("name", v)?,
        None => {
            return Err(invalid(
                "createImage",
                value,
                "'name' is a required property",
            ));
        }
    };
    let metadata = match o.get("metadata") {
        Some(m) => crate::validation::server_create::metadata(m)?,
        None => Default::default(),
    };
    Ok((name, metadata))
}

async fn create_image(
    app: &App,
    ctx: &Context,
    request_id: &str,
    links: &crate::views::Links,
    version: ApiVersion,
    id: &str,
    value: &Value,
) -> Result<Response> {
    let (name, metadata) = create_image_args(value)?;
    let inst = compute::authorized(
        app,
        ctx,
        id,
        Rule::OwnerOrAdmin("os_compute_api:servers:create_image"),
    )?;
    // Before 2.39 the snapshot's properties count against metadata_items.
    if !version.at_least(2, 39) && metadata.len() > METADATA_ITEMS {
        return Err(ApiError::forbidden(format!(
            "Quota exceeded for resources: ['metadata_items']. Maximum number of metadata items is {METADATA_ITEMS}"
        )));
    }
    let action = ServerAction::CreateImage {
        image_id: None,
        name,
        metadata,
    };
    let accepted = compute::submit_action(app, ctx, request_id, &inst, action).await?;
    let image_id = accepted
        .as_ref()
        .and_then(snapshot_id)
        .ok_or_else(|| ApiError::internal("the snapshot was accepted without an image"))?;
    // The image and the instance are on different topics: the verdict is
    // whichever the projection applied first, so wait for the image too
    // (read-your-writes), bounded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.projection.image(&image_id).is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if version.at_least(2, 45) {
        return Ok((StatusCode::ACCEPTED, Json(json!({"image_id": image_id}))).into_response());
    }
    let location = format!("{}/image/v2/images/{image_id}", links.base);
    let mut resp = StatusCode::ACCEPTED.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// The snapshot image an accepted createImage names, from whichever of
/// its first records the verdict is.
fn snapshot_id(event: &Event) -> Option<Uuid> {
    match event {
        Event::Catalog(CatalogEvent::ImageCreated(image)) => Some(image.id),
        Event::Instance(InstanceEvent::InstanceTaskStarted {
            action: ServerAction::CreateImage { image_id, .. },
            ..
        }) => *image_id,
        _ => None,
    }
}

/// `os-getConsoleOutput`'s `length`: an integer of at least -1, a string
/// of digits (any sign: Nova's pattern, whose minimum binds numbers
/// only), or null (all of it).
pub fn console_length(value: &Value) -> Result<Option<i64>> {
    let o = object("os-getConsoleOutput", value)?;
    only("os-getConsoleOutput", o, &["length"])?;
    let Some(length) = o.get("length") else {
        return Ok(None);
    };
    let type_error = || {
        invalid(
            "length",
            length,
            format!(
                "{} is not of type 'integer', 'string', 'null'",
                validation::repr(length)
            ),
        )
    };
    match length {
        Value::Null => Ok(None),
        Value::Number(n) => {
            let n = n.as_i64().ok_or_else(type_error)?;
            if n < -1 {
                return Err(invalid(
                    "length",
                    length,
                    format!("{n} is less than the minimum of -1"),
                ));
            }
            Ok(Some(n))
        }
        Value::String(s) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    "length",
                    length,
                    format!("{} does not match '^-?[0-9]+$'", validation::repr(length)),
                ));
            }
            // Beyond i64: every line (or none) all the same.
            Ok(Some(s.parse::<i64>().unwrap_or(if s.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            })))
        }
        _ => Err(type_error()),
    }
}

/// The output as Nova returns it: without the control characters XML
/// could not carry (`[\x00-\x08\x0B-\x1F]`; tabs and newlines stay).
pub fn printable(output: &str) -> String {
    output
        .chars()
        .filter(|c| !matches!(*c, '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}'))
        .collect()
}

async fn console_output(
    app: &App,
    ctx: &Context,
    request_id: &str,
    id: &str,
    value: &Value,
) -> Result<Response> {
    let length = console_length(value)?;
    let inst = compute::authorized(
        app,
        ctx,
        id,
        Rule::OwnerOrAdmin("os_compute_api:os-console-output"),
    )?;
    let intent = Intent {
        aggregate_id: inst.id.to_string(),
        event: Event::Intent(novalog_schemas::Intent::ConsoleOutputRequested {
            instance_id: inst.id,
            length,
        }),
    };
    let verdicts = match app
        .intents
        .submit(ctx, request_id, &inst.project_id, vec![intent])
        .await
    {
        Ok(v) => v,
        // The host did not answer: Nova's API gives up on its call to
        // compute; a gateway that timed out says so.
        Err(SubmitError::Timeout(after)) => {
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "Timed out after {} s waiting for the console output of instance {} from its host.",
                    after.as_secs(),
                    inst.id
                ),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    match verdicts.into_iter().next() {
        Some(Verdict::Accepted(e)) => match *e {
            Event::Instance(InstanceEvent::ConsoleOutputRead { output }) => {
                Ok(Json(json!({"output": printable(&output)})).into_response())
            }
            _ => Err(ApiError::internal("the console output was not returned")),
        },
        Some(Verdict::Rejected(r)) => Err(r.into()),
        None => Err(ApiError::internal("the console output was not returned")),
    }
}

/// `os-resetState`'s state: `active` or `error`.
pub fn reset_state_arg(value: &Value) -> Result<VmState> {
    let o: &Map<String, Value> = object("os-resetState", value)?;
    only("os-resetState", o, &["state"])?;
    let Some(state) = o.get("state") else {
        return Err(invalid(
            "os-resetState",
            value,
            "'state' is a required property",
        ));
    };
    match state.as_str() {
        Some("active") => Ok(VmState::Active),
        Some("error") => Ok(VmState::Error),
        _ => Err(invalid(
            "state",
            state,
            format!(
                "{} is not one of ['active', 'error']",
                validation::repr(state)
            ),
        )),
    }
}

async fn reset_state(
    app: &App,
    ctx: &Context,
    request_id: &str,
    id: &str,
    value: &Value,
) -> Result<Response> {
    let state = reset_state_arg(value)?;
    let inst = compute::visible(app, ctx, id)
        .ok_or_else(|| ApiError::not_found(format!("Instance {id} could not be found.")))?;
    if !ctx.is_admin {
        return Err(ApiError::forbidden(
            "Policy doesn't allow os_compute_api:os-admin-actions:reset_state to be performed.",
        ));
    }
    compute::submit_action(
        app,
        ctx,
        request_id,
        &inst,
        ServerAction::ResetState { state },
    )
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn crash_dump(
    app: &App,
    ctx: &Context,
    request_id: &str,
    version: ApiVersion,
    id: &str,
    value: &Value,
) -> Result<Response> {
    // An action of 2.17: unknown to earlier versions.
    if !version.at_least(2, 17) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    if !value.is_null() {
        return Err(invalid(
            "trigger_crash_dump",
            value,
            format!("{} is not of type 'null'", validation::repr(value)),
        ));
    }
    let inst = compute::authorized(
        app,
        ctx,
        id,
        Rule::OwnerOrAdmin("os_compute_api:servers:trigger_crash_dump"),
    )?;
    compute::submit_action(app, ctx, request_id, &inst, ServerAction::TriggerCrashDump).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lengths_as_novas_schema_takes_them() {
        let l = |v: Value| console_length(&json!({ "length": v }));
        assert_eq!(console_length(&json!({})).unwrap(), None);
        assert_eq!(l(Value::Null).unwrap(), None);
        assert_eq!(l(json!(5)).unwrap(), Some(5));
        assert_eq!(l(json!(-1)).unwrap(), Some(-1));
        assert_eq!(l(json!("12")).unwrap(), Some(12));
        // The minimum binds numbers, not strings.
        assert_eq!(l(json!("-3")).unwrap(), Some(-3));
        assert!(
            l(json!(-2))
                .unwrap_err()
                .message
                .contains("less than the minimum of -1")
        );
        assert!(
            l(json!("ten"))
                .unwrap_err()
                .message
                .contains("does not match")
        );
        assert!(l(json!(1.5)).is_err());
        assert!(l(json!(true)).is_err());
        assert!(console_length(&json!({"length": 1, "x": 2})).is_err());
        assert!(console_length(&Value::Null).is_err());
    }

    #[test]
    fn control_characters_are_dropped() {
        assert_eq!(printable("a\u{1}b\tc\nd\u{1b}[0m"), "ab\tc\nd[0m");
    }

    #[test]
    fn create_image_and_reset_state_bodies() {
        let (name, md) =
            create_image_args(&json!({"name": "snap", "metadata": {"k": "v"}})).unwrap();
        assert_eq!(name, "snap");
        assert_eq!(md.get("k").map(String::as_str), Some("v"));
        assert!(create_image_args(&json!({})).is_err());
        assert!(create_image_args(&json!({"name": " lead"})).is_err());
        assert!(create_image_args(&json!({"name": "x", "other": 1})).is_err());
        assert_eq!(
            reset_state_arg(&json!({"state": "error"})).unwrap(),
            VmState::Error
        );
        assert!(reset_state_arg(&json!({"state": "stopped"})).is_err());
        assert!(reset_state_arg(&json!({})).is_err());
    }
}
