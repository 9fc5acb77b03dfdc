//! `/v2.1/os-aggregates`: host aggregates, administrators only (Nova's
//! default policy). Writes go to the conductor; an aggregate's
//! `availability_zone` puts its hosts in that zone.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use novalog_schemas::events::HostAggregate;
use novalog_schemas::{CatalogEvent, Event};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::app::{App, AppState};
use crate::auth::Context;
use crate::domain::intents::Intent;
use crate::error::{ApiError, Result};
use crate::http::{JsonBody, RequestId};
use crate::microversion::ApiVersion;
use crate::projection::verdicts::Verdict;
use crate::validation::{invalid, repr};
use crate::views::usage_time;

fn authorize(ctx: &Context, action: &str) -> Result<()> {
    if ctx.is_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "Policy doesn't allow os_compute_api:os-aggregates:{action} to be performed."
        )))
    }
}

fn object<'a>(field: &str, v: &'a Value) -> Result<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| invalid(field, v, format!("{} is not of type 'object'", repr(v))))
}

fn required<'a>(parent: &str, m: &'a Map<String, Value>, key: &str) -> Result<&'a Value> {
    m.get(key).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid input for field/attribute {parent}. Value: None. '{key}' is a required property"
        ))
    })
}

fn only(m: &Map<String, Value>, allowed: &[&str]) -> Result<()> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        ))),
        None => Ok(()),
    }
}

/// Nova's `name` and `az_name`: 1–255 characters, not only spaces; a zone
/// has no `:` (that separates `zone:host`).
fn name(field: &str, v: &Value, is_zone: bool) -> Result<String> {
    match v.as_str() {
        Some(s)
            if !s.trim().is_empty()
                && s.chars().count() <= 255
                && !(is_zone && s.contains(':')) =>
        {
            Ok(s.to_owned())
        }
        _ => Err(invalid(
            field,
            v,
            format!("{} is not a valid name", repr(v)),
        )),
    }
}

/// An optional zone: absent or `null` is none.
fn zone(m: &Map<String, Value>) -> Result<Option<String>> {
    match m.get("availability_zone") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => name("availability_zone", v, true).map(Some),
    }
}

fn render(a: &HostAggregate, version: ApiVersion, full: bool) -> Value {
    let mut v = json!({
        "id": a.id,
        "name": a.name,
        "availability_zone": a.availability_zone(),
        "created_at": usage_time(a.created_at_ms),
        "updated_at": (a.updated_at_ms != a.created_at_ms).then(|| usage_time(a.updated_at_ms)),
        "deleted": false,
        "deleted_at": null,
    });
    if full {
        v["hosts"] = json!(a.hosts);
        v["metadata"] = json!(a.metadata);
    }
    if version.at_least(2, 41) {
        v["uuid"] = json!(a.uuid);
    }
    v
}

fn existing(app: &App, id: &str) -> Result<std::sync::Arc<HostAggregate>> {
    id.parse::<u32>()
        .ok()
        .and_then(|n| app.projection.aggregate(n))
        .ok_or_else(|| ApiError::not_found(format!("Aggregate {id} could not be found.")))
}

async fn decide(
    app: &App,
    ctx: &Context,
    request_id: &str,
    aggregate_id: String,
    event: Event,
) -> Result<HostAggregate> {
    let verdict = app
        .intents
        .submit(
            ctx,
            request_id,
            &ctx.project_id,
            vec![Intent {
                aggregate_id,
                event,
            }],
        )
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::unavailable("No verdict was returned."))?;
    match verdict {
        Verdict::Accepted(e) => match *e {
            Event::Catalog(CatalogEvent::AggregateCreated(a))
            | Event::Catalog(CatalogEvent::AggregateUpdated(a))
            | Event::Catalog(CatalogEvent::AggregateMetadataSet(a))
            | Event::Catalog(CatalogEvent::AggregateHostAdded { aggregate: a, .. })
            | Event::Catalog(CatalogEvent::AggregateHostRemoved { aggregate: a, .. }) => Ok(*a),
            _ => Err(ApiError::unavailable("Unexpected verdict.")),
        },
        Verdict::Rejected(r) => Err(r.into()),
    }
}

pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
) -> Result<Json<Value>> {
    authorize(&ctx, "index")?;
    let all: Vec<Value> = app
        .projection
        .aggregates()
        .iter()
        .map(|a| render(a, version, true))
        .collect();
    Ok(Json(json!({"aggregates": all})))
}

pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    authorize(&ctx, "show")?;
    let a = existing(&app, &id)?;
    Ok(Json(json!({"aggregate": render(&a, version, true)})))
}

/// `POST /os-aggregates`: 200 with the aggregate (no hosts nor metadata,
/// as Nova answers).
pub async fn create(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    authorize(&ctx, "create")?;
    let top = object("", &body)?;
    only(top, &["aggregate"])?;
    let a = object("aggregate", required("", top, "aggregate")?)?;
    only(a, &["name", "availability_zone"])?;
    let name = name("name", required("aggregate", a, "name")?, false)?;
    let az = zone(a)?;
    let uuid = Uuid::new_v4();
    let req = HostAggregate {
        id: 0,
        uuid,
        name,
        hosts: Vec::new(),
        metadata: az
            .map(|z| BTreeMap::from([("availability_zone".to_owned(), z)]))
            .unwrap_or_default(),
        created_at_ms: 0,
        updated_at_ms: 0,
    };
    let made = decide(
        &app,
        &ctx,
        &request_id,
        uuid.to_string(),
        Event::Intent(novalog_schemas::Intent::AggregateCreateRequested(Box::new(
            req,
        ))),
    )
    .await?;
    Ok(Json(json!({"aggregate": render(&made, version, false)})))
}

/// `PUT /os-aggregates/{id}`: a new name and/or zone.
pub async fn update(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    authorize(&ctx, "update")?;
    let top = object("", &body)?;
    only(top, &["aggregate"])?;
    let a = object("aggregate", required("", top, "aggregate")?)?;
    only(a, &["name", "availability_zone"])?;
    if a.is_empty() {
        return Err(ApiError::bad_request(
            "Invalid input for field/attribute aggregate. Value: {}. {} does not have enough properties",
        ));
    }
    let new_name = a.get("name").map(|v| name("name", v, false)).transpose()?;
    let az = zone(a)?;
    let existing = existing(&app, &id)?;
    let made = decide(
        &app,
        &ctx,
        &request_id,
        existing.id.to_string(),
        Event::Intent(novalog_schemas::Intent::AggregateUpdateRequested {
            aggregate_id: existing.id,
            name: new_name,
            availability_zone: az,
        }),
    )
    .await?;
    Ok(Json(json!({"aggregate": render(&made, version, true)})))
}

/// `DELETE /os-aggregates/{id}`: 200 with no body, as Nova answers; only
/// an empty aggregate goes.
pub async fn delete(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<()> {
    authorize(&ctx, "delete")?;
    let a = existing(&app, &id)?;
    let verdict = app
        .intents
        .submit(
            &ctx,
            &request_id,
            &ctx.project_id,
            vec![Intent {
                aggregate_id: a.id.to_string(),
                event: Event::Intent(novalog_schemas::Intent::AggregateDeleteRequested {
                    aggregate_id: a.id,
                }),
            }],
        )
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::unavailable("No verdict was returned."))?;
    match verdict {
        Verdict::Accepted(_) => Ok(()),
        Verdict::Rejected(r) => Err(r.into()),
    }
}

/// `POST /os-aggregates/{id}/action`: `add_host`, `remove_host`,
/// `set_metadata` (a `null` value removes the key).
pub async fn action(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let top = object("", &body)?;
    let (action, arg) = match top.iter().next() {
        Some((k, v)) if top.len() == 1 => (k.as_str(), v),
        _ => {
            return Err(ApiError::bad_request(
                "There is no such action: the body names one of add_host, remove_host, set_metadata",
            ));
        }
    };
    let event = |aggregate_id: u32| -> Result<Event> {
        let arg = object(action, arg)?;
        match action {
            "add_host" | "remove_host" => {
                only(arg, &["host"])?;
                let host = name("host", required(action, arg, "host")?, false)?;
                Ok(if action == "add_host" {
                    Event::Intent(novalog_schemas::Intent::AggregateHostAddRequested {
                        aggregate_id,
                        host,
                    })
                } else {
                    Event::Intent(novalog_schemas::Intent::AggregateHostRemoveRequested {
                        aggregate_id,
                        host,
                    })
                })
            }
            "set_metadata" => {
                only(arg, &["metadata"])?;
                let m = object("metadata", required(action, arg, "metadata")?)?;
                let mut metadata = BTreeMap::new();
                for (k, v) in m {
                    if k.is_empty() || k.chars().count() > 255 {
                        return Err(invalid(
                            "metadata",
                            &Value::Object(m.clone()),
                            format!("{k:?} is not a valid key"),
                        ));
                    }
                    let v = match v {
                        Value::Null => None,
                        Value::String(s) if s.chars().count() <= 255 => {
                            if k == "availability_zone" {
                                Some(name("metadata/availability_zone", v, true)?)
                            } else {
                                Some(s.clone())
                            }
                        }
                        other => {
                            return Err(invalid(
                                &format!("metadata/{k}"),
                                other,
                                format!("{} is not of type 'string', 'null'", repr(other)),
                            ));
                        }
                    };
                    metadata.insert(k.clone(), v);
                }
                Ok(Event::Intent(
                    novalog_schemas::Intent::AggregateMetadataSetRequested {
                        aggregate_id,
                        metadata,
                    },
                ))
            }
            other => Err(ApiError::bad_request(format!(
                "There is no such action: {other}"
            ))),
        }
    };
    authorize(&ctx, action)?;
    let a = existing(&app, &id)?;
    let event = event(a.id)?;
    if let Event::Intent(novalog_schemas::Intent::AggregateHostAddRequested { host, .. }) = &event
        && app.projection.host(host).is_none()
    {
        return Err(ApiError::not_found(format!(
            "Compute host {host} could not be found."
        )));
    }
    let made = decide(&app, &ctx, &request_id, a.id.to_string(), event).await?;
    Ok(Json(json!({"aggregate": render(&made, version, true)})))
}
