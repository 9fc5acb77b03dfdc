//! The Image v2 domain (Glance's rules): who sees and changes which image,
//! applying create bodies and JSON-patch operations to an [`Image`], listing
//! filters, and the writes through the conductor (create, update, upload,
//! delete). Image data lives under `<data_dir>/images/<id>`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::StatusCode;
use md5::{Digest, Md5};
use novalog_schemas::{Event, Image};
use serde_json::{Map, Value};
use sha2::Sha512;
use uuid::Uuid;

use crate::app::App;
use crate::auth::Context;
use crate::error::ApiError;
use crate::intents::Intent;
use crate::verdicts::Verdict;

/// Glance's `disk_formats` and `container_formats` defaults.
pub const DISK_FORMATS: &[&str] = &[
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];
pub const CONTAINER_FORMATS: &[&str] = &[
    "ami",
    "ari",
    "aki",
    "bare",
    "ovf",
    "ova",
    "docker",
    "compressed",
];
pub const VISIBILITIES: &[&str] = &["public", "private", "shared", "community"];

/// Attributes the server sets; a client naming one gets Glance's 403.
const READ_ONLY: &[&str] = &[
    "id",
    "status",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
    "direct_url",
    "locations",
    "owner",
];

/// Core attributes that `remove` may not take away.
const CORE: &[&str] = &[
    "name",
    "visibility",
    "protected",
    "disk_format",
    "container_format",
    "min_ram",
    "min_disk",
    "tags",
    "os_hidden",
];

/// Glance's default page size and its ceiling (`limit_param_default`,
/// `api_limit_max`).
pub const DEFAULT_LIMIT: usize = 25;
pub const MAX_LIMIT: usize = 1000;

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("No image found with ID {id}"))
}

/// An image the caller may see: public and community images are anyone's,
/// private and shared ones their owner's and administrators' (image
/// members do not exist); others' private images are 404, not 403.
pub fn find(app: &App, ctx: &Context, id: &str) -> Result<Arc<Image>, ApiError> {
    let uuid = Uuid::parse_str(id).map_err(|_| not_found(id))?;
    crate::catalog::visible_image(app, ctx, &uuid).ok_or_else(|| not_found(id))
}

/// Owner or administrator; a reader of the owner may look but not change
/// (Glance's PROJECT_MEMBER_OR_ADMIN on every write).
pub fn may_modify(ctx: &Context, image: &Image) -> bool {
    ctx.is_admin || (image.owner == ctx.project_id && !crate::policy::is_reader_only(ctx))
}

/// A new image from `POST /v2/images`: queued, owned by the caller's
/// project, private unless asked otherwise.
pub fn from_create_body(
    app: &App,
    ctx: &Context,
    body: &Value,
    now_ms: i64,
) -> Result<Image, ApiError> {
    let Value::Object(obj) = body else {
        return Err(ApiError::bad_request("Body expected in request."));
    };
    let id = match obj.get("id") {
        None | Some(Value::Null) => Uuid::new_v4(),
        Some(Value::String(s)) => Uuid::parse_str(s).map_err(|_| {
            ApiError::bad_request(format!("Invalid value '{s}' for parameter 'id'"))
        })?,
        Some(_) => return Err(ApiError::bad_request("Invalid value for parameter 'id'")),
    };
    if app.projection.image(&id).is_some() {
        return Err(ApiError::conflict(format!(
            "Image with identifier {id} already exists!"
        )));
    }
    let mut image = Image {
        id,
        name: String::new(),
        status: "queued".into(),
        size: 0,
        min_disk: 0,
        min_ram: 0,
        disk_format: String::new(),
        container_format: String::new(),
        properties: Default::default(),
        owner: ctx.project_id.clone(),
        checksum: String::new(),
        visibility: "private".into(),
        created_at_ms: now_ms,
        protected: false,
        tags: Vec::new(),
        os_hash_value: String::new(),
        updated_at_ms: now_ms,
    };
    for (k, v) in obj {
        if k == "id" {
            continue;
        }
        set(ctx, &mut image, k, v)?;
    }
    Ok(image)
}

/// Sets one attribute (core or custom property) as a create body or a
/// patch `add`/`replace` does.
fn set(ctx: &Context, image: &mut Image, key: &str, value: &Value) -> Result<(), ApiError> {
    let invalid = || ApiError::bad_request(format!("Invalid value for attribute '{key}'"));
    let str_or_null = |v: &Value| -> Result<String, ApiError> {
        match v {
            Value::Null => Ok(String::new()),
            Value::String(s) => Ok(s.clone()),
            _ => Err(invalid()),
        }
    };
    let one_of = |v: &Value, allowed: &[&str]| -> Result<String, ApiError> {
        let s = str_or_null(v)?;
        if s.is_empty() || allowed.contains(&s.as_str()) {
            Ok(s)
        } else {
            Err(ApiError::bad_request(format!(
                "Invalid value '{s}' for parameter '{key}': must be one of {}",
                allowed.join(", ")
            )))
        }
    };
    let size = |v: &Value| -> Result<u64, ApiError> {
        v.as_u64().ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid value for '{key}': must be an integer >= 0"
            ))
        })
    };
    match key {
        k if READ_ONLY.contains(&k) => {
            return Err(ApiError::forbidden(format!(
                "Attribute '{k}' is read-only."
            )));
        }
        "name" => {
            let s = str_or_null(value)?;
            if s.chars().count() > 255 {
                return Err(invalid());
            }
            image.name = s;
        }
        "visibility" => {
            let s = one_of(value, VISIBILITIES)?;
            if s.is_empty() {
                return Err(invalid());
            }
            if s == "public" && !ctx.is_admin {
                return Err(ApiError::forbidden(
                    "You are not authorized to complete publicize_image action.",
                ));
            }
            image.visibility = s;
        }
        "protected" => image.protected = value.as_bool().ok_or_else(invalid)?,
        "os_hidden" => {
            value.as_bool().ok_or_else(invalid)?;
        }
        "disk_format" => image.disk_format = one_of(value, DISK_FORMATS)?,
        "container_format" => image.container_format = one_of(value, CONTAINER_FORMATS)?,
        "min_ram" => image.min_ram = size(value)?,
        "min_disk" => image.min_disk = size(value)?,
        "tags" => {
            let tags = value.as_array().ok_or_else(invalid)?;
            let mut out = Vec::with_capacity(tags.len());
            for t in tags {
                let t = t.as_str().ok_or_else(invalid)?;
                if !out.iter().any(|x| x == t) {
                    out.push(t.to_owned());
                }
            }
            image.tags = out;
        }
        k => {
            // Glance's schema: additional properties are strings.
            let Value::String(s) = value else {
                return Err(ApiError::bad_request(format!(
                    "Invalid value for property '{k}': must be a string"
                )));
            };
            if k.is_empty() || k.len() > 255 {
                return Err(ApiError::bad_request(format!(
                    "Invalid property name '{k}'"
                )));
            }
            image.properties.insert(k.to_owned(), s.clone());
        }
    }
    Ok(())
}

/// Applies Glance's JSON-patch (`application/openstack-images-v2.1-json-patch`):
/// `add`, `replace` and `remove` on one top-level attribute each.
pub fn apply_patch(ctx: &Context, image: &Image, ops: &Value) -> Result<Image, ApiError> {
    let Value::Array(ops) = ops else {
        return Err(ApiError::bad_request(
            "Request body must be a JSON array of operation objects.",
        ));
    };
    let mut next = image.clone();
    for op in ops {
        let Some(obj) = op.as_object() else {
            return Err(ApiError::bad_request("Operations must be JSON objects."));
        };
        let verb = obj
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request("Unable to find 'op' in JSON Schema change"))?;
        let path = obj
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request("Unable to find 'path' in JSON Schema change"))?;
        let key = attribute(path)?;
        match verb {
            "add" | "replace" => {
                let value = obj.get("value").ok_or_else(|| {
                    ApiError::bad_request("Unable to find 'value' in JSON Schema change")
                })?;
                let custom = !CORE.contains(&key.as_str()) && !READ_ONLY.contains(&key.as_str());
                if verb == "replace" && custom && !next.properties.contains_key(&key) {
                    return Err(ApiError::conflict(format!(
                        "Property {key} does not exist."
                    )));
                }
                set(ctx, &mut next, &key, value)?;
            }
            "remove" => {
                if READ_ONLY.contains(&key.as_str()) || CORE.contains(&key.as_str()) {
                    return Err(ApiError::forbidden(format!(
                        "Attribute '{key}' can't be removed."
                    )));
                }
                if next.properties.remove(&key).is_none() {
                    return Err(ApiError::conflict(format!(
                        "Property {key} does not exist."
                    )));
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "Invalid operation: `{other}`: Operation must be one of add, replace, remove."
                )));
            }
        }
    }
    Ok(next)
}

/// `/name` → `name` (RFC 6901 escapes undone); deeper paths are refused.
fn attribute(path: &str) -> Result<String, ApiError> {
    let invalid =
        || ApiError::bad_request(format!("Invalid JSON pointer for this resource: '{path}'"));
    let rest = path.strip_prefix('/').ok_or_else(invalid)?;
    if rest.is_empty() || rest.contains('/') {
        return Err(invalid());
    }
    Ok(rest.replace("~1", "/").replace("~0", "~"))
}

/// Query of `GET /v2/images`.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub name: Option<String>,
    pub status: Option<String>,
    pub visibility: Option<String>,
    pub marker: Option<Uuid>,
    pub limit: usize,
}

impl ListQuery {
    pub fn parse(params: &[(String, String)]) -> Result<ListQuery, ApiError> {
        let mut q = ListQuery {
            limit: DEFAULT_LIMIT,
            ..Default::default()
        };
        for (k, v) in params {
            match k.as_str() {
                "name" => q.name = Some(v.clone()),
                "status" => q.status = Some(v.clone()),
                "visibility" => {
                    if v != "all" && !VISIBILITIES.contains(&v.as_str()) {
                        return Err(ApiError::bad_request(format!(
                            "Invalid visibility value: {v}"
                        )));
                    }
                    q.visibility = Some(v.clone());
                }
                "marker" => {
                    q.marker = Some(Uuid::parse_str(v).map_err(|_| {
                        ApiError::bad_request(format!(
                            "Invalid marker. Image {v} could not be found."
                        ))
                    })?);
                }
                "limit" => {
                    let n: i64 = v
                        .parse()
                        .map_err(|_| ApiError::bad_request("limit param must be an integer"))?;
                    if n < 0 {
                        return Err(ApiError::bad_request("limit param must be positive"));
                    }
                    q.limit = (n as usize).min(MAX_LIMIT);
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

/// One page, newest first (Glance's default `created_at` desc, then id),
/// and whether more may follow.
pub fn list(app: &App, ctx: &Context, q: &ListQuery) -> Result<(Vec<Arc<Image>>, bool), ApiError> {
    let mut images: Vec<Arc<Image>> = app
        .projection
        .images()
        .into_iter()
        .filter(|i| i.status != "deleted")
        .filter(|i| {
            let own = i.owner == ctx.project_id;
            match q.visibility.as_deref() {
                Some("all") => {
                    ctx.is_admin || own || i.visibility == "public" || i.visibility == "community"
                }
                Some(v) => {
                    i.visibility == v && (ctx.is_admin || own || v == "public" || v == "community")
                }
                // Community images are listed only when asked for.
                None => ctx.is_admin || own || i.visibility == "public",
            }
        })
        .filter(|i| q.name.as_ref().is_none_or(|n| &i.name == n))
        .filter(|i| q.status.as_ref().is_none_or(|s| &i.status == s))
        .collect();
    images.sort_by(|a, b| {
        b.created_at_ms
            .cmp(&a.created_at_ms)
            .then_with(|| b.id.cmp(&a.id))
    });
    if let Some(marker) = &q.marker {
        let pos = images.iter().position(|i| &i.id == marker).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid marker. Image {marker} could not be found."
            ))
        })?;
        images.drain(..=pos);
    }
    let more = images.len() > q.limit;
    images.truncate(q.limit);
    Ok((images, more && q.limit > 0))
}

/// Writes `ImageCreateRequested` and returns the accepted image.
pub async fn create(
    app: &App,
    ctx: &Context,
    request_id: &str,
    image: Image,
) -> Result<Image, ApiError> {
    let event = Event::ImageCreateRequested(image.clone());
    match decide(app, ctx, request_id, image.id, event).await? {
        Event::ImageCreated(i) => Ok(i),
        _ => Ok(image),
    }
}

/// Writes `ImageUpdateRequested` with the whole image after the change.
pub async fn update(
    app: &App,
    ctx: &Context,
    request_id: &str,
    image: Image,
) -> Result<Image, ApiError> {
    let event = Event::ImageUpdateRequested(image.clone());
    match decide(app, ctx, request_id, image.id, event).await? {
        Event::ImageUpdated(i) => Ok(i),
        _ => Ok(image),
    }
}

/// Writes `ImageDeleteRequested`; the data file goes once it is accepted.
pub async fn delete(
    app: &App,
    ctx: &Context,
    request_id: &str,
    image: &Image,
) -> Result<(), ApiError> {
    if image.protected {
        return Err(ApiError::forbidden(format!(
            "Image {} is protected and cannot be deleted.",
            image.id
        )));
    }
    let event = Event::ImageDeleteRequested { image_id: image.id };
    decide(app, ctx, request_id, image.id, event).await?;
    // The deletion is recorded; a file left behind is only disk space.
    let _ = tokio::fs::remove_file(data_path(&app.images_dir, &image.id)).await;
    Ok(())
}

async fn decide(
    app: &App,
    ctx: &Context,
    request_id: &str,
    id: Uuid,
    event: Event,
) -> Result<Event, ApiError> {
    let intent = Intent {
        aggregate_id: id.to_string(),
        event,
    };
    let verdict = app
        .intents
        .submit(ctx, request_id, &ctx.project_id, vec![intent])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::unavailable("No verdict was returned."))?;
    match verdict {
        Verdict::Accepted(e) => Ok(*e),
        Verdict::Rejected { code, message } => Err(ApiError::from_code(code, message)),
    }
}

/// Where an image's bytes are kept.
pub fn data_path(dir: &Path, id: &Uuid) -> PathBuf {
    dir.join(id.to_string())
}

/// What an upload measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub size: u64,
    /// md5, hex (Glance's `checksum`).
    pub checksum: String,
    /// sha512, hex (Glance's `os_hash_value`).
    pub os_hash_value: String,
}

/// Running digests over a stream of chunks.
#[derive(Default)]
pub struct Hasher {
    size: u64,
    md5: Md5,
    sha512: Sha512,
}

impl Hasher {
    pub fn update(&mut self, chunk: &[u8]) {
        self.size += chunk.len() as u64;
        self.md5.update(chunk);
        self.sha512.update(chunk);
    }

    pub fn finish(self) -> Uploaded {
        Uploaded {
            size: self.size,
            checksum: hex(&self.md5.finalize()),
            os_hash_value: hex(&self.sha512.finalize()),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Records an upload whose bytes are in `staging`: the image becomes
/// active with their size and digests, then the file moves into place. A
/// refused upload removes the staging file.
pub async fn finish_upload(
    app: &App,
    ctx: &Context,
    request_id: &str,
    image: &Image,
    staging: &Path,
    up: Uploaded,
) -> Result<Image, ApiError> {
    let mut next = image.clone();
    next.status = "active".into();
    next.size = up.size;
    next.checksum = up.checksum;
    next.os_hash_value = up.os_hash_value;
    next.updated_at_ms = novalog_schemas::now_ms();
    match update(app, ctx, request_id, next).await {
        Ok(done) => {
            tokio::fs::rename(staging, data_path(&app.images_dir, &image.id))
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, image = %image.id, "moving uploaded image data");
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Failed to store image data.",
                    )
                })?;
            Ok(done)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(staging).await;
            Err(e)
        }
    }
}

/// Custom properties at the top level, as Glance shows them.
pub fn properties_json(image: &Image) -> Map<String, Value> {
    image
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_glances() {
        let mut h = Hasher::default();
        h.update(b"hello ");
        h.update(b"world");
        let up = h.finish();
        assert_eq!(up.size, 11);
        assert_eq!(up.checksum, "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert!(
            up.os_hash_value
                .starts_with("309ecc489c12d6eb4cc40f50c902f2b4")
        );
    }

    #[test]
    fn patch_paths_are_one_attribute() {
        assert_eq!(attribute("/name").unwrap(), "name");
        assert_eq!(attribute("/a~1b").unwrap(), "a/b");
        assert!(attribute("name").is_err());
        assert!(attribute("/a/b").is_err());
    }
}
