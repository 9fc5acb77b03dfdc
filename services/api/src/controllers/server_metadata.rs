//! `/v2.1/servers/{id}/metadata[/{key}]` (nova's server_metadata
//! controller). Reads come from the projection; every change is an intent
//! the conductor decides (locked or busy servers refuse, Nova's 409s).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use novalog_schemas::{Event, InstanceEvent, Intent};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Context;
use crate::domain::compute;
use crate::error::{ApiError, Result};
use crate::http::{JsonBody, RequestId};
use crate::policy::Rule;
use crate::validation::server_create::metadata as metadata_items;
use crate::validation::{object, only, required};

fn rule(name: &'static str) -> Rule {
    Rule::OwnerOrAdmin(name)
}

fn read_rule(name: &'static str) -> Rule {
    Rule::ReaderOrAdmin(name)
}

/// `{"metadata": {...}}`, Nova's `metadata` schema.
fn metadata_body(body: &Value) -> Result<BTreeMap<String, String>> {
    let obj = object("", body)?;
    only("", obj, &["metadata"])?;
    metadata_items(required("", obj, "metadata")?)
}

fn not_found() -> ApiError {
    ApiError::not_found("Metadata item was not found")
}

/// A metadata change: everything replaced by `set`, or `set` merged and
/// `remove` removed.
struct Change {
    replace_all: bool,
    set: BTreeMap<String, String>,
    remove: Vec<String>,
}

async fn submit(
    app: &AppState,
    ctx: &Context,
    request_id: &str,
    (id, policy): (&str, &'static str),
    change: Change,
) -> Result<BTreeMap<String, String>> {
    let inst = compute::authorized(app, ctx, id, rule(policy))?;
    let event = Event::Intent(Intent::ServerMetadataChangeRequested {
        instance_id: inst.id,
        replace_all: change.replace_all,
        set: change.set,
        remove: change.remove,
    });
    match compute::change(app, ctx, request_id, &inst, event).await? {
        Event::Instance(InstanceEvent::InstanceMetadataSet { metadata }) => Ok(metadata),
        other => Err(ApiError::unavailable(format!(
            "unexpected verdict {}",
            other.type_name()
        ))),
    }
}

/// `GET /servers/{id}/metadata`.
pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        read_rule("os_compute_api:server-metadata:index"),
    )?;
    Ok(Json(json!({"metadata": inst.metadata})))
}

/// `GET /servers/{id}/metadata/{key}`.
pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        read_rule("os_compute_api:server-metadata:show"),
    )?;
    let value = inst.metadata.get(&key).ok_or_else(not_found)?;
    Ok(Json(json!({"meta": {key: value}})))
}

/// `POST /servers/{id}/metadata`: merges; answers with all the metadata.
pub async fn create(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let set = metadata_body(&body)?;
    let all = submit(
        &app,
        &ctx,
        &request_id,
        (&id, "os_compute_api:server-metadata:create"),
        Change {
            replace_all: false,
            set,
            remove: Vec::new(),
        },
    )
    .await?;
    Ok(Json(json!({"metadata": all})))
}

/// `PUT /servers/{id}/metadata`: replaces everything.
pub async fn update_all(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let set = metadata_body(&body)?;
    let all = submit(
        &app,
        &ctx,
        &request_id,
        (&id, "os_compute_api:server-metadata:update_all"),
        Change {
            replace_all: true,
            set,
            remove: Vec::new(),
        },
    )
    .await?;
    Ok(Json(json!({"metadata": all})))
}

/// `PUT /servers/{id}/metadata/{key}` with `{"meta": {key: value}}`.
pub async fn update(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    Path((id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let obj = object("", &body)?;
    only("", obj, &["meta"])?;
    let meta = required("", obj, "meta")?;
    let items = metadata_items(meta)?;
    if items.is_empty() {
        return Err(crate::validation::invalid(
            "meta",
            meta,
            "{} does not have enough properties",
        ));
    }
    if items.len() > 1 {
        return Err(ApiError::bad_request(
            "Request body contains too many items",
        ));
    }
    let Some(value) = items.get(&key).cloned() else {
        return Err(ApiError::bad_request("Request body and URI mismatch"));
    };
    submit(
        &app,
        &ctx,
        &request_id,
        (&id, "os_compute_api:server-metadata:update"),
        Change {
            replace_all: false,
            set: items,
            remove: Vec::new(),
        },
    )
    .await?;
    Ok(Json(json!({"meta": {key: value}})))
}

/// `DELETE /servers/{id}/metadata/{key}`: 204.
pub async fn delete(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode> {
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        rule("os_compute_api:server-metadata:delete"),
    )?;
    if !inst.metadata.contains_key(&key) {
        return Err(not_found());
    }
    submit(
        &app,
        &ctx,
        &request_id,
        (&id, "os_compute_api:server-metadata:delete"),
        Change {
            replace_all: false,
            set: BTreeMap::new(),
            remove: vec![key],
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
