//! The Image v2 subset at `/image` (Glance): the version document,
//! `/v2/images` (create, list, show, JSON-patch, delete), image data
//! (`PUT`/`GET /v2/images/{id}/file`) and the schemas clients fetch.
//!
//! These routes sit outside the Compute API's body limit (uploads are
//! streamed to disk) and answer errors in Glance's shape.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures::StreamExt;
use novalog_schemas::Image;
use novalog_schemas::image::{self as rules, Action, ImageChange, Refusal};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use novalog_request::{BaseUrl, Context, RequestId, query_pairs};

use crate::images::{self, Hasher, ListQuery};

mod import;
mod members;
use crate::{AppState, ImageError};

/// An error as Glance (webob) renders it in JSON.
#[derive(Debug)]
pub struct GlanceError(pub ImageError);

impl From<ImageError> for GlanceError {
    fn from(e: ImageError) -> Self {
        GlanceError(e)
    }
}

impl From<Refusal> for GlanceError {
    fn from(r: Refusal) -> Self {
        GlanceError(r.into())
    }
}

impl IntoResponse for GlanceError {
    fn into_response(self) -> Response {
        let status = self.0.status;
        let title = status.canonical_reason().unwrap_or("Error");
        let body = json!({
            "code": format!("{} {title}", status.as_u16()),
            "title": title,
            "message": self.0.message,
        });
        (status, Json(body)).into_response()
    }
}

type Result<T> = std::result::Result<T, GlanceError>;

pub const PATCH_MEDIA_TYPE: &str = "application/openstack-images-v2.1-json-patch";
/// The older patch format: `[{"replace": "/name", "value": "x"}]`.
pub const PATCH_MEDIA_TYPE_V20: &str = "application/openstack-images-v2.0-json-patch";

/// The import methods served (Glance's `enabled_import_methods`): one
/// store, so `copy-image` has nowhere to copy to and `web-download` is not
/// offered; asking for either is Glance's 400 for an unknown method.
pub const IMPORT_METHODS: &[&str] = &["glance-direct"];

/// The most a metadata request's body may carry (image create, patch,
/// members, import): far above what Glance's schema allows an image's
/// properties, far below image data.
pub const MAX_METADATA_BODY: usize = 1 << 20;

/// Reads a metadata request's whole body before routing, so every answer,
/// early refusals included (a malformed id in the path, a failed policy
/// check), comes after the body: a connection is never answered and closed
/// with its request half sent, which the client would see as a dropped
/// connection.
/// Image data (`PUT .../file`, `PUT .../stage`) streams through untouched.
async fn read_body_first(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path = req.uri().path();
    if req.method() == axum::http::Method::PUT
        && (path.ends_with("/file") || path.ends_with("/stage"))
    {
        return next.run(req).await;
    }
    match novalog_request::buffer_body(req, MAX_METADATA_BODY).await {
        Ok(req) => next.run(req).await,
        Err(refusal) => {
            GlanceError(ImageError::new(refusal.status(), refusal.message())).into_response()
        }
    }
}

/// The Glance routes; `authenticate` puts the mounting service's
/// authentication on every route but the version documents.
pub fn router(
    app: AppState,
    authenticate: impl FnOnce(Router<AppState>) -> Router<AppState>,
) -> Router {
    let authenticated = Router::new()
        .route("/image/v2/images", get(index).post(create))
        .route(
            "/image/v2/images/{id}",
            get(show).patch(update).delete(delete),
        )
        .route("/image/v2/images/{id}/file", get(download).put(upload))
        .route("/image/v2/images/{id}/stage", put(import::stage))
        .route(
            "/image/v2/images/{id}/members",
            get(members::index).post(members::create),
        )
        .route(
            "/image/v2/images/{id}/members/{member}",
            get(members::show)
                .put(members::update)
                .delete(members::delete),
        )
        .route(
            "/image/v2/images/{id}/tags/{tag}",
            put(tag_add).delete(tag_remove),
        )
        .route("/image/v2/images/{id}/actions/deactivate", post(deactivate))
        .route("/image/v2/images/{id}/actions/reactivate", post(reactivate))
        .route("/image/v2/images/{id}/import", post(import::import))
        .route("/image/v2/info/import", get(import::info_import))
        .route("/image/v2/info/stores", get(import::info_stores))
        .route("/image/v2/schemas/image", get(schema_image))
        .route("/image/v2/schemas/images", get(schema_images))
        .route("/image/v2/schemas/member", get(members::schema_member))
        .route("/image/v2/schemas/members", get(members::schema_members));
    // Outside authentication, so a refused token is answered after the
    // body too.
    let authenticated =
        authenticate(authenticated).route_layer(axum::middleware::from_fn(read_body_first));
    Router::new()
        .route("/image", get(versions_multiple))
        .route("/image/", get(versions_multiple))
        .route("/image/versions", get(versions))
        .merge(authenticated)
        .with_state(app)
}

/// Glance's supported versions, newest first; 2.9 is the level of the
/// subset served here (the `v2.x` ids all point at the same `/v2/`).
fn versions_doc(base: &str) -> Value {
    let href = format!("{base}/image/v2/");
    let list: Vec<Value> = [
        ("v2.9", "CURRENT"),
        ("v2.7", "SUPPORTED"),
        ("v2.6", "SUPPORTED"),
        ("v2.5", "SUPPORTED"),
        ("v2.4", "SUPPORTED"),
        ("v2.3", "SUPPORTED"),
        ("v2.2", "SUPPORTED"),
        ("v2.1", "SUPPORTED"),
        ("v2.0", "SUPPORTED"),
    ]
    .iter()
    .map(|(id, status)| json!({"id": id, "status": status, "links": [{"rel": "self", "href": href}]}))
    .collect();
    json!({ "versions": list })
}

async fn versions_multiple(BaseUrl(base): BaseUrl) -> Response {
    (StatusCode::MULTIPLE_CHOICES, Json(versions_doc(&base))).into_response()
}

async fn versions(BaseUrl(base): BaseUrl) -> Json<Value> {
    Json(versions_doc(&base))
}

/// Glance's timestamps: `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn isotime(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// An image as Glance shows it: core attributes, then custom properties at
/// the top level.
pub fn view(i: &Image) -> Value {
    let opt = |s: &str| {
        if s.is_empty() {
            Value::Null
        } else {
            Value::String(s.to_owned())
        }
    };
    let uploaded = !i.checksum.is_empty();
    let mut body = images::properties_json(i);
    let core = json!({
        "id": i.id,
        "name": opt(&i.name),
        "status": i.status,
        "visibility": i.visibility,
        "protected": i.protected,
        "os_hidden": false,
        "checksum": opt(&i.checksum),
        "os_hash_algo": if uploaded { json!("sha512") } else { Value::Null },
        "os_hash_value": opt(&i.os_hash_value),
        "size": if uploaded || i.size > 0 { json!(i.size) } else { Value::Null },
        "virtual_size": null,
        "min_disk": i.min_disk,
        "min_ram": i.min_ram,
        "disk_format": opt(&i.disk_format),
        "container_format": opt(&i.container_format),
        "owner": i.owner,
        "created_at": isotime(i.created_at_ms),
        "updated_at": isotime(i.updated_at_ms.max(i.created_at_ms)),
        "tags": i.tags,
        "self": format!("/v2/images/{}", i.id),
        "file": format!("/v2/images/{}/file", i.id),
        "schema": "/v2/schemas/image",
    });
    if let Value::Object(core) = core {
        body.extend(core);
    }
    Value::Object(body)
}

pub(crate) fn json_body(bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes)
        .map_err(|_| GlanceError(ImageError::bad_request("Malformed JSON in request body.")))
}

pub(crate) fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or("")
}

async fn index(
    State(app): State<AppState>,
    ctx: Context,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    images::authorize(&ctx, Action::GetImages, None)?;
    let params = query_pairs(raw.as_deref());
    let q = ListQuery::parse(&params)?;
    let (page, more) = images::list(&app, &ctx, &q)?;
    let mut body = json!({
        "images": page.iter().map(|i| view(i)).collect::<Vec<_>>(),
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    });
    if more && let Some(last) = page.last() {
        // The filters carry over to the next page.
        let mut next = format!("/v2/images?marker={}&limit={}", last.id, q.limit);
        for (k, v) in &params {
            if k != "marker" && k != "limit" {
                next.push_str(&format!("&{}={}", encode(k), encode(v)));
            }
        }
        body["next"] = Value::String(next);
    }
    Ok(Json(body))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn create(
    State(app): State<AppState>,
    ctx: Context,
    rid: RequestId,
    body: axum::body::Bytes,
) -> Result<Response> {
    let body = json_body(&body)?;
    let image = images::from_create_body(&app, &ctx, &body, novalog_schemas::now_ms())?;
    let image = images::create(&app, &ctx, &rid.0, image).await?;
    let location = format!("/v2/images/{}", image.id);
    Ok((
        StatusCode::CREATED,
        [
            (header::LOCATION, location),
            // What `openstack image create --import` looks for.
            (
                header::HeaderName::from_static("openstack-image-import-methods"),
                IMPORT_METHODS.join(","),
            ),
        ],
        Json(view(&image)),
    )
        .into_response())
}

async fn show(
    State(app): State<AppState>,
    ctx: Context,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let image = images::find(&app, &ctx, &id)?;
    images::authorize(&ctx, Action::GetImage, Some(&*image))?;
    Ok(Json(view(&image)))
}

async fn update(
    State(app): State<AppState>,
    ctx: Context,
    rid: RequestId,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let ct = content_type(&headers);
    if ct != PATCH_MEDIA_TYPE && ct != PATCH_MEDIA_TYPE_V20 {
        return Err(GlanceError(ImageError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Unsupported Content-Type; use {PATCH_MEDIA_TYPE}"),
        )));
    }
    let image = images::find(&app, &ctx, &id)?;
    // Glance's answer to those who see an image but may not change it.
    images::authorize(&ctx, Action::ModifyImage, Some(&*image))?;
    let body = json_body(&body)?;
    let ops = if ct == PATCH_MEDIA_TYPE_V20 {
        novalog_schemas::image::parse_patch_v20(&body)?
    } else {
        novalog_schemas::image::parse_patch(&body)?
    };
    let done = images::patch(&app, &ctx, &rid.0, &image, ops).await?;
    Ok(Json(view(&done)))
}

async fn delete(
    State(app): State<AppState>,
    ctx: Context,
    rid: RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let image = images::find(&app, &ctx, &id)?;
    images::authorize(&ctx, Action::DeleteImage, Some(&*image))?;
    images::delete(&app, &ctx, &rid.0, &image).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v2/images/{id}/file`: the conductor moves the image from queued
/// to saving, the body is streamed to a staging file while it is hashed
/// (up to `image_size_cap`), and the conductor moves it to active with its
/// size and digests; only then does the file become the image's data. A
/// failed upload puts the image back to queued (see [`images::Upload`]).
async fn upload(
    State(app): State<AppState>,
    ctx: Context,
    rid: RequestId,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    if content_type(&headers) != "application/octet-stream" {
        return Err(GlanceError(ImageError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Content-Type; use application/octet-stream",
        )));
    }
    let image = images::find(&app, &ctx, &id)?;
    images::authorize(&ctx, Action::UploadImage, Some(&*image))?;
    let mut hasher = Hasher::default();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| hasher.would_exceed(len)) {
        return Err(novalog_schemas::image::too_large().into());
    }
    let io_error = |e: std::io::Error| {
        tracing::error!(error = %e, "writing image data");
        GlanceError(ImageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Failed to store image data.",
        ))
    };
    tokio::fs::create_dir_all(&app.images_dir)
        .await
        .map_err(io_error)?;
    // The upload holds the image `saving` for its lease only: past it any
    // replica may put the image back to queued, so the body is not read
    // beyond it (counted from before the image is saving, so this side
    // gives up first).
    let deadline = tokio::time::Instant::now().checked_add(app.upload_lease);
    let lease_over = || {
        GlanceError(ImageError::new(
            StatusCode::REQUEST_TIMEOUT,
            "The upload took longer than the image upload lease; upload again.",
        ))
    };
    // From here every early return drops `upload`, which undoes it.
    let upload = images::Upload::begin(&app, &ctx, &rid.0, &image).await?;
    let mut file = tokio::fs::File::create(&upload.staging)
        .await
        .map_err(io_error)?;
    let mut stream = body.into_data_stream();
    loop {
        let next = match deadline {
            Some(at) => tokio::time::timeout_at(at, stream.next())
                .await
                .map_err(|_| lease_over())?,
            None => stream.next().await,
        };
        let Some(chunk) = next else { break };
        let chunk = chunk
            .map_err(|_| GlanceError(ImageError::bad_request("Error reading the request body.")))?;
        hasher.update(&chunk)?;
        file.write_all(&chunk).await.map_err(io_error)?;
    }
    file.sync_all().await.map_err(io_error)?;
    drop(file);
    upload.finish(hasher.finish()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2/images/{id}/file`: the bytes, with Glance's `Content-MD5`;
/// 204 when the image has no data.
async fn download(
    State(app): State<AppState>,
    ctx: Context,
    Path(id): Path<String>,
) -> Result<Response> {
    let image = images::find(&app, &ctx, &id)?;
    if image.status == novalog_schemas::image::DEACTIVATED && !ctx.is_admin {
        return Err(GlanceError(ImageError::forbidden(
            "The requested image has been deactivated. Image data download is forbidden.",
        )));
    }
    images::authorize(&ctx, Action::DownloadImage, Some(&*image))?;
    // No data yet (queued, staged, being imported): Glance's 204.
    if !matches!(
        image.status.as_str(),
        novalog_schemas::image::ACTIVE | novalog_schemas::image::DEACTIVATED
    ) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let path = images::data_path(&app.images_dir, &image.id);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        Err(e) => {
            tracing::error!(error = %e, "reading image data");
            return Err(GlanceError(ImageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Failed to read image data.",
            )));
        }
    };
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(image.size);
    let stream = futures::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::HeaderName::from_static("content-md5"),
                image.checksum.clone(),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `PUT /v2/images/{id}/tags/{tag}`: 204, also when the image has it.
async fn tag_add(
    State(app): State<AppState>,
    ctx: Context,
    rid: RequestId,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    let image = images::find(&app, &ctx, &id)?;
    images::change(&app, &ctx, &rid.0, &image, ImageChange::AddTag { tag }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v2/images/{id}/tags/{tag}`: 204, or 404 for a tag it lacks.
async fn tag_remove(
    State(app): State<AppState>,
    ctx: Context,
    rid: RequestId,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    let image = images::find(&app, &ctx, &id)?;
    images::change(&app, &ctx, &rid.0, &image, ImageChange::RemoveTag { tag }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v2/images/{id}/actions/deactivate`: 204; an active image's
/// data is then downloadable by administrators only, and no server boots
/// from it.
async fn deactivate(
    State(app): State<AppState>,
    ctx: Context,
    rid: RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let image = images::find(&app, &ctx, &id)?;
    images::change(&app, &ctx, &rid.0, &image, ImageChange::Deactivate).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v2/images/{id}/actions/reactivate`: 204.
async fn reactivate(
    State(app): State<AppState>,
    ctx: Context,
    rid: RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let image = images::find(&app, &ctx, &id)?;
    images::change(&app, &ctx, &rid.0, &image, ImageChange::Reactivate).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2/schemas/image`: Glance's image schema (`get_schema()`'s
/// `raw()`), with the custom properties of Glance's stock
/// `schema-image.json` marked `is_base: false`; any other property is a
/// string.
async fn schema_image() -> Json<Value> {
    Json(image_schema())
}

/// Glance's UUID pattern for `id`, `kernel_id` and `ramdisk_id`.
const UUID_PATTERN: &str =
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$";

/// Every status an image passes through (Glance's `status` enum).
pub const STATUSES: &[&str] = &[
    rules::QUEUED,
    rules::SAVING,
    rules::ACTIVE,
    "killed",
    rules::DELETED,
    rules::UPLOADING,
    rules::IMPORTING,
    "pending_delete",
    rules::DEACTIVATED,
];

/// The image schema, built from the constants the validation checks
/// against (formats, visibilities, lengths, the read-only attributes).
pub fn image_schema() -> Value {
    // What an update may not change, as Glance's schema marks it: not
    // `id` (a create may set it), `locations` (a location API of its
    // own) or `owner` (an admin may set it); and `stores`, which only a
    // multi-store site shows.
    let read_only = |name: &str| {
        (rules::READ_ONLY.contains(&name) && !matches!(name, "id" | "locations" | "owner"))
            || name == "stores"
    };
    let nullable_enum = |values: &[&str]| {
        std::iter::once(Value::Null)
            .chain(values.iter().map(|v| json!(v)))
            .collect::<Vec<_>>()
    };
    let mut properties = json!({
        "id": {"type": "string", "description": "An identifier for the image",
            "pattern": UUID_PATTERN},
        "name": {"type": ["null", "string"], "description": "Descriptive name for the image",
            "maxLength": rules::MAX_NAME},
        "status": {"type": "string", "description": "Status of the image",
            "enum": STATUSES},
        "visibility": {"type": "string", "description": "Scope of image accessibility",
            "enum": rules::VISIBILITIES},
        "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
        "os_hidden": {"type": "boolean",
            "description": "If true, image will not appear in default image list response."},
        "checksum": {"type": ["null", "string"], "description": "md5 hash of image contents.",
            "maxLength": 32},
        "os_hash_algo": {"type": ["null", "string"],
            "description": "Algorithm to calculate the os_hash_value", "maxLength": 64},
        "os_hash_value": {"type": ["null", "string"],
            "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo",
            "maxLength": 128},
        "owner": {"type": ["null", "string"], "description": "Owner of the image",
            "maxLength": 255},
        "size": {"type": ["null", "integer"], "description": "Size of image file in bytes"},
        "virtual_size": {"type": ["null", "integer"],
            "description": "Virtual size of image in bytes"},
    });
    // In parts: one `json!` this size exceeds the macro recursion limit.
    let formats = json!({
        "container_format": {"type": ["null", "string"], "description": "Format of the container",
            "enum": nullable_enum(rules::CONTAINER_FORMATS)},
        "disk_format": {"type": ["null", "string"], "description": "Format of the disk",
            "enum": nullable_enum(rules::DISK_FORMATS)},
        "created_at": {"type": "string", "description": "Date and time of image registration"},
        "updated_at": {"type": "string",
            "description": "Date and time of the last image modification"},
        "tags": {"type": "array", "description": "List of strings related to the image",
            "items": {"type": "string", "maxLength": rules::MAX_NAME}},
        "direct_url": {"type": "string",
            "description": "URL to access the image file kept in external store"},
        "min_ram": {"type": "integer",
            "description": "Amount of ram (in MB) required to boot image."},
        "min_disk": {"type": "integer",
            "description": "Amount of disk space (in GB) required to boot image."},
        "self": {"type": "string", "description": "An image self url"},
        "file": {"type": "string", "description": "An image file url"},
        "stores": {"type": "string",
            "description": "Store in which image data resides.  Only present when the operator has enabled multiple stores.  May be a comma-separated list of store identifiers."},
        "schema": {"type": "string", "description": "An image schema url"},
    });
    let locations = json!({
        "locations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "maxLength": 255},
                    "metadata": {"type": "object"},
                    "validation_data": {
                        "description": "Values to be used to populate the corresponding image properties. If the image status is not 'queued', values must exactly match those already contained in the image properties.",
                        "type": "object",
                        "writeOnly": true,
                        "additionalProperties": false,
                        "properties": {
                            "checksum": {"type": "string", "minLength": 32, "maxLength": 32},
                            "os_hash_algo": {"type": "string", "maxLength": 64},
                            "os_hash_value": {"type": "string", "maxLength": 128},
                        },
                        "required": ["os_hash_algo", "os_hash_value"],
                    },
                },
                "required": ["url", "metadata"],
            },
            "description": "A set of URLs to access the image file kept in external store",
        },
    });
    let custom = json!({
        // Glance's stock etc/schema-image.json.
        "kernel_id": {"type": ["null", "string"], "pattern": UUID_PATTERN,
            "description": "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.",
            "is_base": false},
        "ramdisk_id": {"type": ["null", "string"], "pattern": UUID_PATTERN,
            "description": "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image.",
            "is_base": false},
        "instance_uuid": {"type": "string",
            "description": "Metadata which can be used to record which instance this image is associated with. (Informational only, does not create an instance snapshot.)",
            "is_base": false},
        "architecture": {"type": "string",
            "description": "Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html",
            "is_base": false},
        "os_distro": {"type": "string",
            "description": "Common name of operating system distribution as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html",
            "is_base": false},
        "os_version": {"type": "string",
            "description": "Operating system version as specified by the distributor.",
            "is_base": false},
        "description": {"type": "string",
            "description": "A human-readable string describing this image.",
            "is_base": false},
        "cinder_encryption_key_id": {"type": "string",
            "description": "Identifier in the OpenStack Key Management Service for the encryption key for the Block Storage Service to use when mounting a volume created from this image",
            "is_base": false},
        "cinder_encryption_key_deletion_policy": {"type": "string",
            "description": "States the condition under which the Image Service will delete the object associated with the 'cinder_encryption_key_id' image property.  If this property is missing, the Image Service will take no action",
            "enum": ["on_image_deletion", "do_not_delete"],
            "is_base": false},
    });
    for part in [formats, locations, custom] {
        if let (Some(all), Value::Object(more)) = (properties.as_object_mut(), part) {
            all.extend(more);
        }
    }
    for (name, p) in properties.as_object_mut().expect("an object").iter_mut() {
        if read_only(name) {
            p["readOnly"] = json!(true);
        }
    }
    json!({
        "name": "image",
        "properties": properties,
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}

/// `GET /v2/schemas/images`: Glance's `CollectionSchema('images', ...)`.
async fn schema_images() -> Json<Value> {
    Json(images_schema())
}

pub fn images_schema() -> Value {
    json!({
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}
