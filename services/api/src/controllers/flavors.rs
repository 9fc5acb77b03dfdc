//! `/v2.1/flavors`: flavors, their extra specs (`os-extra_specs`) and
//! access lists (`os-flavor-access`, `addTenantAccess`,
//! `removeTenantAccess`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use novalog_schemas::Flavor;
use novalog_schemas::events::FlavorUpdate;
use serde_json::{Value, json};

use crate::app::{App, AppState};
use crate::auth::Context;
use crate::domain::catalog::{self, FlavorPage};
use crate::error::{ApiError, Result};
use crate::http::{JsonBody, RequestId, query_pairs};
use crate::microversion::ApiVersion;
use crate::validation::query;
use crate::validation::{self, flavor_create};
use crate::views::{self, Links};

fn page(
    app: &App,
    links: &Links,
    params: &[(String, String)],
    page: FlavorPage,
    collection: &str,
    version: ApiVersion,
    render: fn(&Links, &novalog_schemas::Flavor, ApiVersion) -> Value,
) -> Value {
    let mut body = json!({"flavors": page.flavors.iter().map(|f| render(links, f, version)).collect::<Vec<_>>()});
    let last = page.flavors.last().map(|f| f.id.as_str());
    if let Some(next) = crate::paging::next_links(
        links,
        params,
        collection,
        page.flavors.len(),
        last,
        app.max_limit,
    ) {
        body["flavors_links"] = next;
    }
    body
}

pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    links: Links,
    version: ApiVersion,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let params = query_pairs(q.as_deref());
    let checked = query::FLAVORS.check(params.clone(), version, ctx.is_admin)?;
    let found = catalog::list_flavors(&app, &ctx, &checked)?;
    Ok(Json(page(
        &app,
        &links,
        &params,
        found,
        "flavors",
        version,
        views::flavors::basic_at,
    )))
}

pub async fn detail(
    State(app): State<AppState>,
    ctx: Context,
    links: Links,
    version: ApiVersion,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let params = query_pairs(q.as_deref());
    let checked = query::FLAVORS_DETAIL.check(params.clone(), version, ctx.is_admin)?;
    let found = catalog::list_flavors(&app, &ctx, &checked)?;
    Ok(Json(page(
        &app,
        &links,
        &params,
        found,
        "flavors/detail",
        version,
        views::flavors::show_at,
    )))
}

pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    links: Links,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let flavor = visible(&app, &ctx, &id)?;
    Ok(Json(
        json!({"flavor": views::flavors::show_at(&links, &flavor, version)}),
    ))
}

fn visible(app: &App, ctx: &Context, id: &str) -> Result<Arc<Flavor>> {
    catalog::visible_flavor(app, ctx, id)
        .ok_or_else(|| ApiError::not_found(format!("Flavor {id} could not be found.")))
}

/// `DELETE /flavors/{id}`: 202.
pub async fn delete(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    catalog::delete_flavor(&app, &ctx, &request_id, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `PUT /flavors/{id}` (2.55): only the description changes.
pub async fn update(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    links: Links,
    version: ApiVersion,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    if !version.at_least(2, 55) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    catalog::admin_only(&ctx, "os_compute_api:os-flavor-manage:update")?;
    let top = validation::object("", &body)?;
    validation::only("", top, &["flavor"])?;
    let f = validation::object("flavor", validation::required("", top, "flavor")?)?;
    validation::only("flavor", f, &["description"])?;
    let d = validation::required("flavor", f, "description")?;
    let description = match d {
        Value::Null => None,
        v => Some(validation::string("description", v, 0, 65535)?.to_owned()),
    };
    catalog::existing_flavor(&app, &id)?;
    let flavor = catalog::update_flavor(
        &app,
        &ctx,
        &request_id,
        FlavorUpdate {
            flavor_id: id,
            description: Some(description),
            ..Default::default()
        },
    )
    .await?;
    Ok(Json(
        json!({"flavor": views::flavors::show_at(&links, &flavor, version)}),
    ))
}

// ---- os-extra_specs ----

/// Nova's extra spec key: 1–255 of letters, digits, `-_:. `.
fn spec_key(k: &str) -> bool {
    (1..=255).contains(&k.chars().count())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | ' '))
}

/// `{key: value}` checked as Nova's `extra_specs` schema: keys by
/// [`spec_key`], values strings, numbers or booleans of at most 255.
fn specs(field: &str, v: &Value) -> Result<BTreeMap<String, String>> {
    let m = validation::object(field, v)?;
    let mut out = BTreeMap::new();
    for (k, val) in m {
        if !spec_key(k) {
            return Err(validation::invalid(
                field,
                v,
                format!("'{k}' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{{1,255}}$'"),
            ));
        }
        let s = match val {
            Value::String(s) => s.clone(),
            Value::Number(_) | Value::Bool(_) => validation::repr(val),
            other => {
                return Err(validation::invalid(
                    &format!("{field}/{k}"),
                    other,
                    format!(
                        "{} is not of type 'string', 'number', 'boolean'",
                        validation::repr(other)
                    ),
                ));
            }
        };
        if s.chars().count() > 255 {
            return Err(validation::invalid(
                &format!("{field}/{k}"),
                val,
                format!("{} is too long", validation::repr(val)),
            ));
        }
        out.insert(k.clone(), s);
    }
    Ok(out)
}

/// `GET /flavors/{id}/os-extra_specs`.
pub async fn extra_specs_index(
    State(app): State<AppState>,
    ctx: Context,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let f = visible(&app, &ctx, &id)?;
    Ok(Json(json!({"extra_specs": f.extra_specs})))
}

/// `POST /flavors/{id}/os-extra_specs`: sets every key given.
pub async fn extra_specs_create(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    catalog::admin_only(&ctx, "os_compute_api:os-flavor-extra-specs:create")?;
    let top = validation::object("", &body)?;
    validation::only("", top, &["extra_specs"])?;
    let set = specs("extra_specs", validation::required("", top, "extra_specs")?)?;
    catalog::existing_flavor(&app, &id)?;
    catalog::update_flavor(
        &app,
        &ctx,
        &request_id,
        FlavorUpdate {
            flavor_id: id,
            extra_specs_set: set.clone(),
            ..Default::default()
        },
    )
    .await?;
    Ok(Json(json!({"extra_specs": set})))
}

/// `GET /flavors/{id}/os-extra_specs/{key}`.
pub async fn extra_spec_show(
    State(app): State<AppState>,
    ctx: Context,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let f = visible(&app, &ctx, &id)?;
    let v = f.extra_specs.get(&key).ok_or_else(|| {
        ApiError::not_found(format!("Flavor {id} has no extra specs with key {key}."))
    })?;
    Ok(Json(json!({ key: v })))
}

/// `PUT /flavors/{id}/os-extra_specs/{key}`: `{key: value}`, the key the
/// URL names and nothing else.
pub async fn extra_spec_update(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    Path((id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    catalog::admin_only(&ctx, "os_compute_api:os-flavor-extra-specs:update")?;
    let set = specs("", &body)?;
    if set.len() > 1 {
        return Err(ApiError::bad_request(
            "Request body contains too many items",
        ));
    }
    if !set.contains_key(&key) {
        return Err(ApiError::bad_request("Request body and URI mismatch"));
    }
    catalog::existing_flavor(&app, &id)?;
    catalog::update_flavor(
        &app,
        &ctx,
        &request_id,
        FlavorUpdate {
            flavor_id: id,
            extra_specs_set: set.clone(),
            ..Default::default()
        },
    )
    .await?;
    Ok(Json(json!(set)))
}

/// `DELETE /flavors/{id}/os-extra_specs/{key}`: 202.
pub async fn extra_spec_delete(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode> {
    catalog::admin_only(&ctx, "os_compute_api:os-flavor-extra-specs:delete")?;
    let f = catalog::existing_flavor(&app, &id)?;
    if !f.extra_specs.contains_key(&key) {
        return Err(ApiError::not_found(format!(
            "Flavor {id} has no extra specs with key {key}."
        )));
    }
    catalog::update_flavor(
        &app,
        &ctx,
        &request_id,
        FlavorUpdate {
            flavor_id: id,
            extra_specs_unset: vec![key],
            ..Default::default()
        },
    )
    .await?;
    // Nova declares no status for this delete: its default, 200 with no body.
    Ok(StatusCode::OK)
}

// ---- os-flavor-access ----

fn access_list(app: &App, id: &str) -> Value {
    let list: Vec<Value> = app
        .projection
        .flavor_access(id)
        .iter()
        .map(|p| json!({"flavor_id": id, "tenant_id": p}))
        .collect();
    json!({"flavor_access": list})
}

/// `GET /flavors/{id}/os-flavor-access` (administrators).
pub async fn access_index(
    State(app): State<AppState>,
    ctx: Context,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    catalog::admin_only(&ctx, "os_compute_api:os-flavor-access")?;
    let f = catalog::existing_flavor(&app, &id)?;
    if f.is_public {
        return Err(ApiError::not_found(
            "Access list not available for public flavors.",
        ));
    }
    Ok(Json(access_list(&app, &id)))
}

/// `POST /flavors/{id}/action`: `addTenantAccess` / `removeTenantAccess`.
pub async fn action(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let top = validation::object("", &body)?;
    let (name, add) = if top.contains_key("addTenantAccess") {
        ("addTenantAccess", true)
    } else if top.contains_key("removeTenantAccess") {
        ("removeTenantAccess", false)
    } else {
        return Err(ApiError::bad_request("Invalid action"));
    };
    let rule = if add {
        "os_compute_api:os-flavor-access:add_tenant_access"
    } else {
        "os_compute_api:os-flavor-access:remove_tenant_access"
    };
    catalog::admin_only(&ctx, rule)?;
    validation::only("", top, &[name])?;
    let args = validation::object(name, &top[name])?;
    validation::only(name, args, &["tenant"])?;
    let tenant = validation::string(
        &format!("{name}/tenant"),
        validation::required(name, args, "tenant")?,
        1,
        255,
    )?
    .to_owned();
    catalog::existing_flavor(&app, &id)?;
    catalog::change_flavor_access(&app, &ctx, &request_id, &id, &tenant, add).await?;
    Ok(Json(access_list(&app, &id)))
}

/// `POST /flavors`: 200 with the flavor once the conductor accepted it.
pub async fn create(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    links: Links,
    version: ApiVersion,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let req = flavor_create::parse_at(&body, version)?;
    let flavor = catalog::create_flavor(&app, &ctx, &request_id, req).await?;
    Ok(Json(
        json!({"flavor": views::flavors::show_at(&links, &flavor, version)}),
    ))
}
