//! Remote consoles: `POST /servers/{id}/remote-consoles` (2.6; Nova's
//! RemoteConsolesController.create), the older `os-getVNCConsole` server
//! action (2.1 to 2.5), and `GET /os-console-auth-tokens/{token}`
//! (administrators). Bodies are checked against Nova's schemas before the
//! handlers run ([`crate::validation::requests`]); what the request means
//! is [`crate::domain::consoles`]'s.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::{App, AppState};
use crate::auth::Context;
use crate::domain::consoles;
use crate::error::{ApiError, Result};
use crate::http::{JsonBody, RequestId};
use crate::microversion::ApiVersion;

fn not_found() -> ApiError {
    ApiError::not_found("The resource could not be found.")
}

/// `POST /servers/{id}/remote-consoles` (2.6): 200 with
/// `{"remote_console": {"protocol", "type", "url"}}`.
pub async fn create(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    if !version.at_least(2, 6) {
        return Err(not_found());
    }
    // The schema (required keys, Nova's enums) held; these are strings.
    let rc = &body["remote_console"];
    let protocol = rc["protocol"].as_str().unwrap_or_default();
    let console_type = rc["type"].as_str().unwrap_or_default();
    let url = consoles::create(&app, &ctx, &request_id, &id, protocol, console_type).await?;
    Ok(Json(json!({"remote_console": {
        "protocol": protocol,
        "type": console_type,
        "url": url,
    }}))
    .into_response())
}

/// `{"os-getVNCConsole": {"type": "novnc"}}` below 2.6: 200 with
/// `{"console": {"type", "url"}}`; `None` when the body names another
/// action. From 2.6 the action is gone (Nova's 404).
pub async fn dispatch(
    app: &App,
    ctx: &Context,
    request_id: &str,
    version: ApiVersion,
    id: &str,
    body: &Value,
) -> Option<Result<Response>> {
    let value = body.as_object()?.get("os-getVNCConsole")?;
    Some(get_vnc_console(app, ctx, request_id, version, id, value).await)
}

async fn get_vnc_console(
    app: &App,
    ctx: &Context,
    request_id: &str,
    version: ApiVersion,
    id: &str,
    value: &Value,
) -> Result<Response> {
    if version.at_least(2, 6) {
        return Err(not_found());
    }
    let console_type = value["type"].as_str().unwrap_or_default();
    let url = consoles::create(app, ctx, request_id, id, "vnc", console_type).await?;
    Ok(Json(json!({"console": {"type": console_type, "url": url}})).into_response())
}

/// `GET /os-console-auth-tokens/{token}` (administrators): what the token
/// names, `{"console": {"instance_uuid", "host", "port",
/// "internal_access_path"}}`; 404 "Token not found". Below 2.31 only RDP
/// consoles' tokens are shown (Nova's 401 for the rest).
pub async fn show_token(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(token): Path<String>,
) -> Result<Json<Value>> {
    let t = consoles::token(&app, &ctx, &token)?;
    if !version.at_least(2, 31) && t.console_type != "rdp-html5" {
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "The requested console type details are not accessible",
        ));
    }
    Ok(Json(json!({"console": {
        "instance_uuid": t.instance_id,
        "host": t.address,
        "port": t.port,
        "internal_access_path": null,
    }})))
}
