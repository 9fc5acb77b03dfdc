//! `/v2.1/servers/{id}/tags[/{tag}]` (2.26, nova's server_tags
//! controller). Before 2.26 the routes do not exist (404). Changes are
//! decided by the conductor (vm_state checks, the 50-tag limit).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use novalog_schemas::Event;
use novalog_schemas::{InstanceEvent, Intent};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Context;
use crate::domain::compute;
use crate::error::{ApiError, Result};
use crate::http::{JsonBody, RequestId};
use crate::microversion::ApiVersion;
use crate::policy::Rule;
use crate::validation::server_create::tag;
use crate::validation::{invalid, object, only, repr, required};
use crate::views::Links;

const MAX_TAGS: usize = 50;

fn since_2_26(version: ApiVersion) -> Result<()> {
    if version.at_least(2, 26) {
        Ok(())
    } else {
        Err(ApiError::not_found("The resource could not be found."))
    }
}

fn rule(name: &'static str) -> Rule {
    Rule::OwnerOrAdmin(name)
}

fn read_rule(name: &'static str) -> Rule {
    Rule::ReaderOrAdmin(name)
}

async fn submit(
    app: &AppState,
    ctx: &Context,
    request_id: &str,
    inst: &novalog_schemas::Instance,
    (replace_all, add, remove): (bool, Vec<String>, Vec<String>),
) -> Result<Vec<String>> {
    let event = Event::Intent(Intent::ServerTagsChangeRequested {
        instance_id: inst.id,
        replace_all,
        add,
        remove,
    });
    match compute::change(app, ctx, request_id, inst, event).await? {
        Event::Instance(InstanceEvent::InstanceTagsSet { tags }) => Ok(tags),
        other => Err(ApiError::unavailable(format!(
            "unexpected verdict {}",
            other.type_name()
        ))),
    }
}

/// `GET /servers/{id}/tags`.
pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    since_2_26(version)?;
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        read_rule("os_compute_api:os-server-tags:index"),
    )?;
    Ok(Json(json!({"tags": inst.tags})))
}

/// `GET /servers/{id}/tags/{tag}`: 204 when the server has it.
pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path((id, t)): Path<(String, String)>,
) -> Result<StatusCode> {
    since_2_26(version)?;
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        read_rule("os_compute_api:os-server-tags:show"),
    )?;
    if inst.tags.contains(&t) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("Server {id} has no tag '{t}'")))
    }
}

/// `PUT /servers/{id}/tags/{tag}`: 201 with its Location when added, 204
/// when the server already had it.
pub async fn update(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    links: Links,
    Path((id, t)): Path<(String, String)>,
) -> Result<Response> {
    since_2_26(version)?;
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        rule("os_compute_api:os-server-tags:update"),
    )?;
    if let Err(e) = tag(&Value::String(t.clone())) {
        return Err(ApiError::bad_request(format!(
            "Tag '{t}' is invalid. It must be a non empty string without characters '/' and ','. Validation error message: {}",
            e.message.rsplit(". ").next().unwrap_or_default()
        )));
    }
    if inst.tags.contains(&t) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    submit(
        &app,
        &ctx,
        &request_id,
        &inst,
        (false, vec![t.clone()], Vec::new()),
    )
    .await?;
    let mut resp = StatusCode::CREATED.into_response();
    let location = format!("{}/v2.1/servers/{}/tags/{t}", links.base, inst.id);
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// `PUT /servers/{id}/tags` with `{"tags": [...]}`: replaces them all.
pub async fn update_all(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    since_2_26(version)?;
    let obj = object("", &body)?;
    only("", obj, &["tags"])?;
    let list = required("", obj, "tags")?;
    let items = list.as_array().ok_or_else(|| {
        invalid(
            "tags",
            list,
            format!("{} is not of type 'array'", repr(list)),
        )
    })?;
    if items.len() > MAX_TAGS {
        return Err(invalid("tags", list, format!("{} is too long", repr(list))));
    }
    let mut tags = Vec::new();
    for t in items {
        tag(t)?;
        let t = t.as_str().unwrap_or_default().to_owned();
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        rule("os_compute_api:os-server-tags:update_all"),
    )?;
    let tags = submit(&app, &ctx, &request_id, &inst, (true, tags, Vec::new())).await?;
    Ok(Json(json!({"tags": tags})))
}

/// `DELETE /servers/{id}/tags/{tag}`: 204.
pub async fn delete(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    Path((id, t)): Path<(String, String)>,
) -> Result<StatusCode> {
    since_2_26(version)?;
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        rule("os_compute_api:os-server-tags:delete"),
    )?;
    submit(&app, &ctx, &request_id, &inst, (false, Vec::new(), vec![t])).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /servers/{id}/tags`: 204, every tag removed.
pub async fn delete_all(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    since_2_26(version)?;
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        rule("os_compute_api:os-server-tags:delete_all"),
    )?;
    submit(
        &app,
        &ctx,
        &request_id,
        &inst,
        (true, Vec::new(), Vec::new()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
