//! `/v2.1/servers`.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use novalog_schemas::Intent;
use serde_json::{Value, json};

use crate::app::{App, AppState};
use crate::auth::Context;
use crate::domain::compute::{self, Page};
use crate::error::{ApiError, Result};
use crate::http::{JsonBody, RequestId, query_pairs, without_none};
use crate::microversion::ApiVersion;
use crate::policy::{self, Rule};
use crate::validation::query;
use crate::validation::server_create;
use crate::views::servers::{Parts, ViewContext};
use crate::views::{self, Links};

/// `POST /servers`: 202 once the conductor accepted the server(s).
pub async fn create(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    links: Links,
    version: ApiVersion,
    JsonBody(body): JsonBody,
) -> Result<Response> {
    let req = server_create::parse(&body, version)?;
    let disk_config = views::servers::disk_config(req.access.auto_disk_config);
    let security_groups = req
        .security_groups
        .clone()
        .unwrap_or_else(|| json!([{"name": "default"}]));
    let return_reservation_id = req.return_reservation_id;
    let created = compute::create(&app, &ctx, &request_id, req).await?;
    if return_reservation_id {
        let body = json!({"reservation_id": created.reservation_id});
        return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
    }
    let id = created.instance_ids[0];
    let body = views::servers::created(
        &links,
        &id,
        disk_config,
        security_groups,
        &created.admin_pass,
    );
    let mut resp = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&links.self_href("servers", &id.to_string())) {
        resp.headers_mut().insert(header::LOCATION, location);
    }
    Ok(resp)
}

pub(crate) fn view_context<'a>(
    app: &App,
    links: &'a Links,
    version: ApiVersion,
    ctx: &Context,
    project: Option<&str>,
) -> ViewContext<'a> {
    ViewContext {
        links,
        version,
        is_admin: ctx.is_admin,
        show_extended_attributes: policy::allowed(ctx, Rule::ExtendedServerAttributes, project),
        show_host_status: policy::allowed(ctx, Rule::ServersShowHostStatus, project),
        now_ms: novalog_schemas::now_ms(),
        service_down_time_ms: app.service_down_time_ms,
    }
}

fn render_detail(app: &App, cx: &ViewContext<'_>, inst: &novalog_schemas::Instance) -> Value {
    render(app, cx, inst, &Parts::default())
}

/// The server with `parts`, its host looked up for the zone and status.
pub(crate) fn render(
    app: &App,
    cx: &ViewContext<'_>,
    inst: &novalog_schemas::Instance,
    parts: &Parts,
) -> Value {
    let host = inst.host.as_deref().and_then(|h| app.projection.host(h));
    views::servers::show_parts(cx, inst, host.as_ref(), parts)
}

fn servers_page(
    app: &App,
    links: &Links,
    params: &[(String, String)],
    page: &Page,
    collection: &str,
    servers: Vec<Value>,
) -> Value {
    let mut body = json!({ "servers": servers });
    let last = page.servers.last().map(|i| i.id.to_string());
    if let Some(next) = crate::paging::next_links(
        links,
        params,
        collection,
        page.servers.len(),
        last.as_deref(),
        app.max_limit,
    ) {
        body["servers_links"] = next;
    }
    body
}

/// `GET /servers`: id, name and links of each visible server.
pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    links: Links,
    version: ApiVersion,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let raw = query_pairs(q.as_deref());
    let checked = query::SERVERS.check(without_none(raw.clone()), version, ctx.is_admin)?;
    policy::authorize(&ctx, Rule::ServersIndex, None)?;
    let page = compute::list(&app, &ctx, &checked, false, version)?;
    let servers = page
        .servers
        .iter()
        .map(|i| views::servers::basic(&links, i))
        .collect();
    Ok(Json(servers_page(
        &app, &links, &raw, &page, "servers", servers,
    )))
}

/// `GET /servers/detail`: every visible server in full.
pub async fn detail(
    State(app): State<AppState>,
    ctx: Context,
    links: Links,
    version: ApiVersion,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let raw = query_pairs(q.as_deref());
    let checked = query::SERVERS_DETAIL.check(without_none(raw.clone()), version, ctx.is_admin)?;
    policy::authorize(&ctx, Rule::ServersDetail, None)?;
    let page = compute::list(&app, &ctx, &checked, true, version)?;
    let servers = page
        .servers
        .iter()
        .map(|i| {
            render_detail(
                &app,
                &view_context(&app, &links, version, &ctx, Some(&i.project_id)),
                i,
            )
        })
        .collect();
    Ok(Json(servers_page(
        &app,
        &links,
        &raw,
        &page,
        "servers/detail",
        servers,
    )))
}

/// `GET /servers/{id}`.
pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    links: Links,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let inst = compute::visible(&app, &ctx, &id)
        .ok_or_else(|| ApiError::not_found(format!("Instance {id} could not be found.")))?;
    policy::authorize(&ctx, Rule::ServersShow, Some(&inst.project_id))?;
    let cx = view_context(&app, &links, version, &ctx, Some(&inst.project_id));
    // The groups the server joined (Nova shows them on show, not detail).
    let parts = Parts::show(version, || groups_of(&app, &inst.id));
    Ok(Json(json!({ "server": render(&app, &cx, &inst, &parts) })))
}

/// The server groups `id` is a member of (at most one, as in Nova).
pub fn groups_of(app: &App, id: &uuid::Uuid) -> Vec<uuid::Uuid> {
    app.projection
        .server_groups()
        .iter()
        .filter(|g| g.members.contains(id))
        .map(|g| g.group.id)
        .collect()
}

/// `DELETE /servers/{id}`: 204 once the conductor accepted the deletion.
pub async fn delete(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    compute::delete(&app, &ctx, &request_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /servers/{id}` with `{"server": {"name", "description" (2.19)}}`:
/// 200 with the server as it is afterwards.
pub async fn update(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    links: Links,
    version: ApiVersion,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let update = crate::validation::server_update::parse(&body, version)?;
    let inst = compute::authorized(
        &app,
        &ctx,
        &id,
        Rule::OwnerOrAdmin("os_compute_api:servers:update"),
    )?;
    let event = novalog_schemas::Event::Intent(Intent::ServerUpdateRequested {
        instance_id: inst.id,
        name: update.name,
        description: update.description,
        access: update.access,
        hostname: update.hostname,
    });
    compute::change(&app, &ctx, &request_id, &inst, event).await?;
    let inst = app
        .projection
        .instance(&inst.id)
        .ok_or_else(|| ApiError::not_found(format!("Instance {id} could not be found.")))?;
    let cx = view_context(&app, &links, version, &ctx, Some(&inst.project_id));
    let parts = Parts::update(version, || groups_of(&app, &inst.id));
    Ok(Json(json!({"server": render(&app, &cx, &inst, &parts)})))
}
