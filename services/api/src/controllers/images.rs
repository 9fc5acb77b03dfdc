//! `/v2.1/images[/detail|/{id}]` (nova's images controller, a proxy to
//! the Image service up to 2.35, 404 from 2.36) and
//! `/v2.1/images/{id}/metadata[/{key}]` (nova's image_metadata
//! controller, up to 2.38): the Image service's images in Nova's shapes.
//! Reads come from the projection with Glance's visibility; deletes and
//! metadata changes go through the Image service's own paths (its policy,
//! then an intent the conductor decides), as Nova's proxy calls Glance.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use novalog_image::ImageError;
use novalog_image::images::{self as glance, ListQuery};
use novalog_schemas::Image;
use serde_json::{Value, json};

use crate::app::{App, AppState};
use crate::auth::Context;
use crate::error::{ApiError, Result};
use crate::http::{JsonBody, RequestId, query_pairs};
use crate::microversion::ApiVersion;
use crate::paging;
use crate::views::{Links, isotime};

fn until(version: ApiVersion, minor: u32) -> Result<()> {
    if version.at_least(2, minor + 1) {
        Err(ApiError::not_found("The resource could not be found."))
    } else {
        Ok(())
    }
}

/// An Image service refusal as Nova's proxy words it.
fn proxied(e: ImageError, forbidden: &str) -> ApiError {
    match e.status {
        StatusCode::NOT_FOUND => ApiError::not_found("Image not found."),
        StatusCode::FORBIDDEN => ApiError::forbidden(forbidden),
        status => ApiError::new(status, e.message),
    }
}

/// The image `id` as the caller may see it.
fn find(app: &App, ctx: &Context, id: &str) -> Result<Arc<Image>> {
    let uuid = uuid::Uuid::parse_str(id).map_err(|_| ApiError::not_found("Image not found."))?;
    app.projection
        .image(&uuid)
        .filter(|i| glance::visible(i, ctx))
        .ok_or_else(|| ApiError::not_found("Image not found."))
}

/// Nova's status of a Glance status.
fn status(glance_status: &str) -> &'static str {
    match glance_status {
        "active" => "ACTIVE",
        "queued" | "saving" => "SAVING",
        "deleted" | "pending_delete" => "DELETED",
        "killed" => "ERROR",
        _ => "UNKNOWN",
    }
}

fn progress(glance_status: &str) -> u32 {
    match glance_status {
        "queued" => 25,
        "saving" => 50,
        "active" => 100,
        _ => 0,
    }
}

/// `self`, `bookmark`, and the Image service's own URL as `alternate`.
fn links(l: &Links, id: &str) -> Value {
    json!([
        {"rel": "self", "href": l.self_href("images", id)},
        {"rel": "bookmark", "href": l.bookmark_href("images", id)},
        {"rel": "alternate", "type": "application/vnd.openstack.image",
         "href": format!("{}/image/images/{id}", l.base)},
    ])
}

fn basic(l: &Links, i: &Image) -> Value {
    let id = i.id.to_string();
    json!({"id": id, "name": i.name, "links": links(l, &id)})
}

/// oslo's `bool_from_string`, as Nova reads `auto_disk_config`.
fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

/// Nova's detailed image view.
pub fn detailed(l: &Links, i: &Image) -> Value {
    let id = i.id.to_string();
    let mut v = json!({
        "id": id,
        "name": i.name,
        "minRam": i.min_ram,
        "minDisk": i.min_disk,
        "metadata": i.properties,
        "created": isotime(i.created_at_ms),
        "updated": isotime(i.updated_at_ms),
        "status": status(&i.status),
        "progress": progress(&i.status),
        "OS-EXT-IMG-SIZE:size": i.size,
        "links": links(l, &id),
    });
    if let Some(server) = i.properties.get("instance_uuid") {
        v["server"] = json!({"id": server, "links": l.pair("servers", server)});
    }
    if let Some(auto) = i.properties.get("auto_disk_config") {
        v["OS-DCF:diskConfig"] = json!(if truthy(auto) { "AUTO" } else { "MANUAL" });
    }
    v
}

/// What Nova's filters ask of an image (`server`, `type`, `property-*`
/// are image properties; `status` lower-cased; `changes-since` on the
/// update time).
fn matches(i: &Image, params: &[(String, String)]) -> Result<bool> {
    for (k, v) in params {
        let ok = match k.as_str() {
            "name" => &i.name == v,
            "status" => i.status == v.to_lowercase(),
            "minRam" => i.min_ram >= parse_u64(v, "min_ram")?,
            "minDisk" => i.min_disk >= parse_u64(v, "min_disk")?,
            "server" => {
                let id = v.rsplit_once('/').map_or(v.as_str(), |(_, tail)| tail);
                i.properties.get("instance_uuid").map(String::as_str) == Some(id)
            }
            "type" => i.properties.get("image_type") == Some(v),
            "changes-since" => {
                let since = chrono::DateTime::parse_from_rfc3339(v)
                    .or_else(|_| chrono::DateTime::parse_from_rfc3339(&format!("{v}Z")))
                    .map_err(|_| {
                        ApiError::bad_request(format!("Invalid changes-since value: {v}"))
                    })?;
                i.updated_at_ms >= since.timestamp_millis()
            }
            other => match other.strip_prefix("property-") {
                Some(prop) => i.properties.get(prop) == Some(v),
                None => true,
            },
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn parse_u64(v: &str, name: &str) -> Result<u64> {
    v.trim()
        .parse::<i64>()
        .map(|n| n.max(0) as u64)
        .map_err(|_| ApiError::bad_request(format!("Invalid {name} filter [{v}]")))
}

/// One page of the caller's images, newest first, with Nova's filters and
/// paging (`limit`, `marker`).
fn page(app: &App, ctx: &Context, params: &[(String, String)]) -> Result<Vec<Arc<Image>>> {
    let limit = match params.iter().rev().find(|(k, _)| k == "limit") {
        None => None,
        Some((_, v)) => Some(
            crate::domain::non_negative(v)
                .ok_or_else(|| ApiError::bad_request("limit param must be an integer"))?,
        ),
    };
    let marker = params
        .iter()
        .rev()
        .find(|(k, _)| k == "marker")
        .map(|(_, v)| v.clone());
    let q = ListQuery::default();
    let mut images: Vec<Arc<Image>> = Vec::new();
    for i in app.projection.images() {
        if i.status != "deleted" && glance::listed(&i, ctx, &q) && matches(&i, params)? {
            images.push(i);
        }
    }
    images.sort_by(|a, b| {
        b.created_at_ms
            .cmp(&a.created_at_ms)
            .then_with(|| b.id.cmp(&a.id))
    });
    if let Some(marker) = marker {
        let pos = images
            .iter()
            .position(|i| i.id.to_string() == marker)
            .ok_or_else(|| ApiError::bad_request(format!("marker [{marker}] not found")))?;
        images.drain(..=pos);
    }
    images.truncate(paging::page_size(limit, app.max_limit));
    Ok(images)
}

async fn list(
    app: &App,
    ctx: &Context,
    l: &Links,
    q: Option<&str>,
    collection: &str,
    view: fn(&Links, &Image) -> Value,
) -> Result<Json<Value>> {
    let params = query_pairs(q);
    let images = page(app, ctx, &params)?;
    let mut body = json!({
        "images": images.iter().map(|i| view(l, i)).collect::<Vec<_>>(),
    });
    let last = images.last().map(|i| i.id.to_string());
    if let Some(next) = paging::next_links(
        l,
        &params,
        collection,
        images.len(),
        last.as_deref(),
        app.max_limit,
    ) {
        body["images_links"] = next;
    }
    Ok(Json(body))
}

/// `GET /images`.
pub async fn index(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    l: Links,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    until(version, 35)?;
    list(&app, &ctx, &l, q.as_deref(), "images", basic).await
}

/// `GET /images/detail`.
pub async fn detail(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    l: Links,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    until(version, 35)?;
    list(&app, &ctx, &l, q.as_deref(), "images/detail", detailed).await
}

/// `GET /images/{id}`.
pub async fn show(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    l: Links,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    until(version, 35)?;
    let image = find(&app, &ctx, &id)?;
    Ok(Json(json!({"image": detailed(&l, &image)})))
}

/// `DELETE /images/{id}`: 204; the Image service's policy decides.
pub async fn delete(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    until(version, 35)?;
    let image = find(&app, &ctx, &id)?;
    let images = crate::mounts::image_app(&app);
    glance::delete(&images, &ctx, &request_id, &image)
        .await
        .map_err(|e| proxied(e, "You are not allowed to delete the image."))?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- /images/{id}/metadata (up to 2.38) ----

/// `GET /images/{id}/metadata`.
pub async fn metadata_index(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    until(version, 38)?;
    let image = find(&app, &ctx, &id)?;
    Ok(Json(json!({"metadata": image.properties})))
}

/// `GET /images/{id}/metadata/{key}`.
pub async fn metadata_show(
    State(app): State<AppState>,
    ctx: Context,
    version: ApiVersion,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<Value>> {
    until(version, 38)?;
    let image = find(&app, &ctx, &id)?;
    match image.properties.get(&key) {
        Some(v) => Ok(Json(json!({"meta": { key: v }}))),
        None => Err(ApiError::not_found("The resource could not be found.")),
    }
}

/// `{key: value}` of a metadata body's `root` (strings only, Nova's
/// image metadata schema).
fn string_map(body: &Value, root: &str) -> Result<BTreeMap<String, String>> {
    let obj = crate::validation::object("", body)?;
    crate::validation::only("", obj, &[root])?;
    let m = crate::validation::object(root, crate::validation::required("", obj, root)?)?;
    m.iter()
        .map(|(k, v)| {
            if k.is_empty() || k.chars().count() > 255 {
                return Err(ApiError::bad_request(format!(
                    "Invalid input for field/attribute {root}. Value: {body}. '{k}' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{{1,255}}$'"
                )));
            }
            let s = crate::validation::string(k, v, 0, 255)?;
            Ok((k.clone(), s.to_owned()))
        })
        .collect()
}

/// Replaces the image's properties with `wanted` through the Image
/// service (a JSON patch of the differences), after Nova's quota check.
async fn set_properties(
    app: &AppState,
    ctx: &Context,
    request_id: &str,
    image: &Image,
    wanted: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let limits = crate::controllers::quota_sets::limits_of(app, &ctx.project_id);
    if !wanted.is_empty() && novalog_schemas::quota::check_metadata(&limits, wanted.len()).is_err()
    {
        return Err(ApiError::forbidden("Image metadata limit exceeded"));
    }
    let mut ops: Vec<Value> = Vec::new();
    for k in image.properties.keys() {
        if !wanted.contains_key(k) {
            ops.push(json!({"op": "remove", "path": format!("/{}", pointer(k))}));
        }
    }
    for (k, v) in wanted {
        if image.properties.get(k) != Some(v) {
            ops.push(json!({"op": "add", "path": format!("/{}", pointer(k)), "value": v}));
        }
    }
    let ops = novalog_schemas::image::parse_patch(&Value::Array(ops))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let images = crate::mounts::image_app(app);
    let after = glance::patch(&images, ctx, request_id, image, ops)
        .await
        .map_err(|e| proxied(e, "You are not authorized to complete this action."))?;
    Ok(after.properties)
}

/// A JSON pointer token (RFC 6901).
fn pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// `POST /images/{id}/metadata`: merged into the properties.
pub async fn metadata_create(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    until(version, 38)?;
    let add = string_map(&body, "metadata")?;
    let image = find(&app, &ctx, &id)?;
    let mut wanted = image.properties.clone();
    wanted.extend(add);
    let after = set_properties(&app, &ctx, &request_id, &image, &wanted).await?;
    Ok(Json(json!({"metadata": after})))
}

/// `PUT /images/{id}/metadata`: the properties replaced.
pub async fn metadata_update_all(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    until(version, 38)?;
    let wanted = string_map(&body, "metadata")?;
    let image = find(&app, &ctx, &id)?;
    set_properties(&app, &ctx, &request_id, &image, &wanted).await?;
    Ok(Json(json!({ "metadata": wanted })))
}

/// `PUT /images/{id}/metadata/{key}`: `{"meta": {key: value}}`.
pub async fn metadata_update(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    Path((id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    until(version, 38)?;
    let meta = string_map(&body, "meta")?;
    if meta.len() > 1 {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute meta. Value: {}. {} has too many properties",
            body["meta"], body["meta"]
        )));
    }
    let Some(value) = meta.get(&key) else {
        return Err(ApiError::bad_request("Request body and URI mismatch"));
    };
    let image = find(&app, &ctx, &id)?;
    let mut wanted = image.properties.clone();
    wanted.insert(key.clone(), value.clone());
    set_properties(&app, &ctx, &request_id, &image, &wanted).await?;
    Ok(Json(json!({"meta": { key: value }})))
}

/// `DELETE /images/{id}/metadata/{key}`: 204.
pub async fn metadata_delete(
    State(app): State<AppState>,
    ctx: Context,
    RequestId(request_id): RequestId,
    version: ApiVersion,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode> {
    until(version, 38)?;
    let image = find(&app, &ctx, &id)?;
    if !image.properties.contains_key(&key) {
        return Err(ApiError::not_found("Invalid metadata key"));
    }
    let mut wanted = image.properties.clone();
    wanted.remove(&key);
    set_properties(&app, &ctx, &request_id, &image, &wanted).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glance_statuses_map_to_novas() {
        assert_eq!(status("queued"), "SAVING");
        assert_eq!(progress("queued"), 25);
        assert_eq!(status("active"), "ACTIVE");
        assert_eq!(status("importing"), "UNKNOWN");
        assert_eq!(progress("importing"), 0);
        assert_eq!(status("killed"), "ERROR");
    }

    #[test]
    fn property_filters_read_the_images_properties() {
        let mut i = Image {
            id: uuid::Uuid::nil(),
            name: "snap".into(),
            status: "active".into(),
            size: 0,
            min_disk: 0,
            min_ram: 0,
            disk_format: "qcow2".into(),
            container_format: "bare".into(),
            properties: BTreeMap::new(),
            owner: "p".into(),
            checksum: String::new(),
            visibility: "private".into(),
            created_at_ms: 0,
            protected: false,
            tags: vec![],
            os_hash_value: String::new(),
            updated_at_ms: 0,
            members: vec![],
        };
        i.properties.insert("instance_uuid".into(), "abc".into());
        let q = |pairs: &[(&str, &str)]| {
            let p: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            matches(&i, &p).unwrap()
        };
        assert!(q(&[("server", "http://x/v2.1/servers/abc")]));
        assert!(!q(&[("server", "other")]));
        assert!(q(&[("status", "ACTIVE"), ("name", "snap")]));
        assert!(q(&[("property-instance_uuid", "abc")]));
        assert!(!q(&[("type", "snapshot")]));
    }
}
