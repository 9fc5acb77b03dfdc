//! `/v2.1/flavors`.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Context;
use crate::catalog::{self, FlavorPage};
use crate::error::{ApiError, Result};
use crate::http::{JsonBody, RequestId, query_pairs};
use crate::validation::flavor_create;
use crate::views::{self, Links};

fn page(
    links: &Links,
    page: FlavorPage,
    collection: &str,
    render: fn(&Links, &novalog_schemas::Flavor) -> Value,
) -> Value {
    let mut body =
        json!({"flavors": page.flavors.iter().map(|f| render(links, f)).collect::<Vec<_>>()});
    if let (Some(marker), Some(limit)) = (page.next_marker, page.limit) {
        body["flavors_links"] = json!([{
            "rel": "next",
            "href": format!("{}/v2.1/{collection}?limit={limit}&marker={marker}", links.base),
        }]);
    }
    body
}

pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    links: Links,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let found = catalog::list_flavors(&app, &ctx, &query_pairs(q.as_deref()))?;
    Ok(Json(page(&links, found, "flavors", views::flavors::basic)))
}

pub async fn detail(
    State(app): State<AppState>,
    ctx: Context,
    links: Links,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let found = catalog::list_flavors(&app, &ctx, &query_pairs(q.as_deref()))?;
    Ok(Json(page(
        &links,
        found,
        "flavors/detail",
        views::flavors::show,
    )))
}

pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    links: Links,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let flavor = catalog::visible_flavor(&app, &ctx, &id)
        .ok_or_else(|| ApiError::not_found(format!("Flavor {id} could not be found.")))?;
    Ok(Json(
        json!({"flavor": views::flavors::show(&links, &flavor)}),
    ))
}

/// `POST /flavors`: 200 with the flavor once the conductor accepted it.
pub async fn create(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    links: Links,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    let req = flavor_create::parse(&body)?;
    let flavor = catalog::create_flavor(&app, &ctx, &request_id, req).await?;
    Ok(Json(
        json!({"flavor": views::flavors::show(&links, &flavor)}),
    ))
}
