//! The Image v2 domain as the API serves it: who sees which image, create
//! bodies, listing filters, and the writes. Every write is an operation
//! (create, JSON-patch, upload step, delete) that the conductor decides on
//! the image as it is when it reads the intent
//! ([`novalog_schemas::image`]); the same decision is run here on the
//! projection first, so a request that cannot succeed writes nothing.
//! Image data lives under `<data_dir>/images/<id>`, written to a staging
//! file and moved there only once the conductor has accepted the upload.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::StatusCode;
use md5::{Digest, Md5};
use novalog_schemas::image::{
    self, Action, Caller, ImageChange, ImageData, ImagePatch, PatchOp, Refusal,
};
use novalog_schemas::{CatalogEvent, Event, Image, Rejection};
use serde_json::{Map, Value};
use sha2::Sha512;
use uuid::Uuid;

use novalog_request::Context;

use crate::{AppState, ImageApp, ImageError, Unanswered, Verdict};

pub use novalog_schemas::image::{CONTAINER_FORMATS, DISK_FORMATS, MAX_NAME, VISIBILITIES};

/// Glance's default page size and its ceiling (`limit_param_default`,
/// `api_limit_max`).
pub const DEFAULT_LIMIT: usize = 25;
pub const MAX_LIMIT: usize = 1000;

impl From<Refusal> for ImageError {
    fn from(r: Refusal) -> Self {
        Rejection::from(r).into()
    }
}

/// Whether `ctx` may see `image` (and so boot from it): public and
/// community images are anyone's, private ones their owner's, shared ones
/// their owner's and their members' (whatever their answer, as Glance's
/// `is_image_visible`), all of them administrators'.
pub fn visible(image: &Image, ctx: &Context) -> bool {
    image.status != "deleted"
        && (matches!(image.visibility.as_str(), "public" | "community")
            || ctx.is_admin
            || image.owner == ctx.project_id
            || image::is_member_of(image, &ctx.project_id))
}

fn caller(ctx: &Context) -> Caller<'_> {
    Caller {
        project_id: &ctx.project_id,
        roles: &ctx.roles,
    }
}

fn not_found(id: &str) -> ImageError {
    ImageError::not_found(format!("No image found with ID {id}"))
}

/// An image the caller may see ([`visible`]); others' private images are
/// 404, not 403.
pub fn find(app: &ImageApp, ctx: &Context, id: &str) -> Result<Arc<Image>, ImageError> {
    let uuid = Uuid::parse_str(id).map_err(|_| not_found(id))?;
    app.catalog
        .image(&uuid)
        .filter(|i| visible(i, ctx))
        .ok_or_else(|| not_found(id))
}

/// Glance's default policy for `action` on `image` (`None`: one being
/// created), as its 403.
pub fn authorize(ctx: &Context, action: Action, image: Option<&Image>) -> Result<(), ImageError> {
    Ok(image::authorize(action, &caller(ctx), image)?)
}

/// A new image from `POST /v2/images`: queued, owned by the caller's
/// project (another only for an administrator), `shared` unless asked
/// otherwise (Glance's default: seen by no one else until it has
/// members), within Glance's bounds.
pub fn from_create_body(
    app: &ImageApp,
    ctx: &Context,
    body: &Value,
    now_ms: i64,
) -> Result<Image, ImageError> {
    authorize(ctx, Action::AddImage, None)?;
    let Value::Object(obj) = body else {
        return Err(ImageError::bad_request("Body expected in request."));
    };
    let id = match obj.get("id") {
        None | Some(Value::Null) => Uuid::new_v4(),
        Some(Value::String(s)) => Uuid::parse_str(s).map_err(|_| {
            ImageError::bad_request(format!("Invalid value '{s}' for parameter 'id'"))
        })?,
        Some(_) => return Err(ImageError::bad_request("Invalid value for parameter 'id'")),
    };
    let mut image = Image {
        id,
        name: String::new(),
        status: image::QUEUED.into(),
        size: 0,
        min_disk: 0,
        min_ram: 0,
        disk_format: String::new(),
        container_format: String::new(),
        properties: Default::default(),
        owner: ctx.project_id.clone(),
        checksum: String::new(),
        visibility: "shared".into(),
        created_at_ms: now_ms,
        protected: false,
        tags: Vec::new(),
        os_hash_value: String::new(),
        updated_at_ms: now_ms,
        members: Vec::new(),
    };
    let who = caller(ctx);
    for (k, v) in obj {
        if k == "id" {
            continue;
        }
        image::set(&who, &mut image, k, v)?;
    }
    // A deleted image's id is not reused either.
    let existing = app.catalog.image_with_deleted(&id);
    Ok(image::decide_create(existing.as_deref(), &image, &who)?)
}

/// How a `GET /v2/images` query parameter's value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// Any string, matched exactly.
    Text,
    /// A page size: a non-negative integer (capped at [`MAX_LIMIT`]).
    Limit,
    /// An image id.
    Uuid,
    /// `all` or one of [`VISIBILITIES`].
    Visibility,
    /// `all` or one of the member statuses.
    MemberStatus,
}

/// One query parameter of `GET /v2/images`.
#[derive(Debug)]
pub struct QueryParam {
    pub name: &'static str,
    pub kind: QueryKind,
    pub about: &'static str,
}

/// The query parameters `GET /v2/images` reads: [`ListQuery::parse`] reads
/// only these, and the OpenAPI document describes these, so the two
/// cannot drift. Any other parameter is ignored (Glance would filter on
/// a custom property of that name; Novalog's images have none to match).
pub const LIST_QUERY: &[QueryParam] = &[
    QueryParam {
        name: "name",
        kind: QueryKind::Text,
        about: "Exact image name",
    },
    QueryParam {
        name: "status",
        kind: QueryKind::Text,
        about: "Image status (queued, saving, active, ...)",
    },
    QueryParam {
        name: "visibility",
        kind: QueryKind::Visibility,
        about: "public, private, shared, community, or all",
    },
    QueryParam {
        name: "member_status",
        kind: QueryKind::MemberStatus,
        about: "Shared images whose membership of the caller has this status: pending, accepted (the default), rejected, or all",
    },
    QueryParam {
        name: "tag",
        kind: QueryKind::Text,
        about: "Images with this tag (repeat for images with every one of them)",
    },
    QueryParam {
        name: "owner",
        kind: QueryKind::Text,
        about: "Images owned by this project",
    },
    QueryParam {
        name: "marker",
        kind: QueryKind::Uuid,
        about: "Start after this image (the last of the previous page)",
    },
    QueryParam {
        name: "limit",
        kind: QueryKind::Limit,
        about: "Page size (default 25, at most 1000)",
    },
];

impl QueryParam {
    /// Checks `v` as Glance does, in its words.
    fn check(&self, v: &str) -> Result<(), ImageError> {
        match self.kind {
            QueryKind::Text => Ok(()),
            QueryKind::Visibility if v == "all" || VISIBILITIES.contains(&v) => Ok(()),
            QueryKind::Visibility => Err(ImageError::bad_request(format!(
                "Invalid visibility value: {v}"
            ))),
            QueryKind::MemberStatus if v == "all" || image::MEMBER_STATUSES.contains(&v) => Ok(()),
            QueryKind::MemberStatus => Err(ImageError::bad_request(format!(
                "Invalid status value: {v}"
            ))),
            QueryKind::Uuid => Uuid::parse_str(v).map(|_| ()).map_err(|_| {
                ImageError::bad_request(format!("Invalid marker. Image {v} could not be found."))
            }),
            QueryKind::Limit => {
                let digits = v.strip_prefix('-').unwrap_or(v);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    Err(ImageError::bad_request("limit param must be an integer"))
                } else if v.starts_with('-') {
                    Err(ImageError::bad_request("limit param must be positive"))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The parameter's JSON schema, for the OpenAPI document.
    pub fn schema(&self) -> serde_json::Value {
        use serde_json::json;
        match self.kind {
            QueryKind::Text => json!({"type": "string"}),
            QueryKind::Limit => json!({"type": "integer", "minimum": 0}),
            QueryKind::Uuid => json!({"type": "string", "format": "uuid"}),
            QueryKind::Visibility => {
                let mut values = vec!["all"];
                values.extend(VISIBILITIES);
                json!({"type": "string", "enum": values})
            }
            QueryKind::MemberStatus => {
                let mut values = vec!["all"];
                values.extend(image::MEMBER_STATUSES);
                json!({"type": "string", "enum": values})
            }
        }
    }
}

/// Query of `GET /v2/images`.
#[derive(Debug, Default, PartialEq)]
pub struct ListQuery {
    pub name: Option<String>,
    pub status: Option<String>,
    pub visibility: Option<String>,
    /// `None`: Glance's default, accepted.
    pub member_status: Option<String>,
    /// Every one of these tags.
    pub tags: Vec<String>,
    pub owner: Option<String>,
    pub marker: Option<Uuid>,
    pub limit: usize,
}

impl ListQuery {
    pub fn parse(params: &[(String, String)]) -> Result<ListQuery, ImageError> {
        let mut q = ListQuery {
            limit: DEFAULT_LIMIT,
            ..Default::default()
        };
        for (k, v) in params {
            let Some(param) = LIST_QUERY.iter().find(|p| p.name == k) else {
                continue;
            };
            param.check(v)?;
            match param.name {
                "name" => q.name = Some(v.clone()),
                "status" => q.status = Some(v.clone()),
                "visibility" => q.visibility = Some(v.clone()),
                "member_status" => q.member_status = Some(v.clone()),
                "tag" => q.tags.push(v.clone()),
                "owner" => q.owner = Some(v.clone()),
                "marker" => q.marker = Uuid::parse_str(v).ok(),
                // Python's int(): any size; the page is capped anyway.
                "limit" => q.limit = v.parse::<usize>().unwrap_or(usize::MAX).min(MAX_LIMIT),
                // A name in the table that this match forgot is caught by
                // `every_documented_list_parameter_is_read`.
                _ => {}
            }
        }
        Ok(q)
    }
}

/// Whether `i` is in `ctx`'s listing, as Glance's `_select_images_query`
/// and `image_get_all`: an administrator lists every image; anyone else
/// public and community ones, their own, and shared ones they are a
/// member of with `member_status` (accepted unless asked). Then with a
/// `visibility` only those of it (`all`: any), and without one no
/// community image but one's own.
pub fn listed(i: &Image, ctx: &Context, q: &ListQuery) -> bool {
    let own = i.owner == ctx.project_id;
    let status = q.member_status.as_deref().unwrap_or("accepted");
    let member = i.visibility == "shared"
        && i.members
            .iter()
            .any(|m| m.member_id == ctx.project_id && (status == "all" || m.status == status));
    let candidate =
        ctx.is_admin || own || member || matches!(i.visibility.as_str(), "public" | "community");
    candidate
        && match q.visibility.as_deref() {
            Some("all") => true,
            Some(v) => i.visibility == v,
            None => own || i.visibility != "community",
        }
}

/// One page, newest first (Glance's default `created_at` desc, then id),
/// and whether more may follow.
pub fn list(
    app: &ImageApp,
    ctx: &Context,
    q: &ListQuery,
) -> Result<(Vec<Arc<Image>>, bool), ImageError> {
    let mut images: Vec<Arc<Image>> = app
        .catalog
        .images()
        .into_iter()
        .filter(|i| i.status != "deleted")
        .filter(|i| listed(i, ctx, q))
        .filter(|i| q.name.as_ref().is_none_or(|n| &i.name == n))
        .filter(|i| q.status.as_ref().is_none_or(|s| &i.status == s))
        .filter(|i| q.owner.as_ref().is_none_or(|o| &i.owner == o))
        .filter(|i| q.tags.iter().all(|t| i.tags.contains(t)))
        .collect();
    images.sort_by(|a, b| {
        b.created_at_ms
            .cmp(&a.created_at_ms)
            .then_with(|| b.id.cmp(&a.id))
    });
    if let Some(marker) = &q.marker {
        let pos = images.iter().position(|i| &i.id == marker).ok_or_else(|| {
            ImageError::bad_request(format!(
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
    app: &ImageApp,
    ctx: &Context,
    request_id: &str,
    image: Image,
) -> Result<Image, ImageError> {
    let owner = image.owner.clone();
    let event = Event::Intent(novalog_schemas::Intent::ImageCreateRequested(image.clone()));
    match decide(app, ctx, request_id, &owner, image.id, event).await? {
        Event::Catalog(CatalogEvent::ImageCreated(i)) => Ok(i),
        _ => Ok(image),
    }
}

/// `PATCH`: checks `ops` against the image as the projection has it (a
/// patch that cannot apply, or changes nothing, writes nothing), then has
/// the conductor apply them to the image as it is by then.
pub async fn patch(
    app: &ImageApp,
    ctx: &Context,
    request_id: &str,
    current: &Image,
    ops: Vec<PatchOp>,
) -> Result<Image, ImageError> {
    let id = current.id;
    let next = image::decide_patch(
        Some(current),
        &id,
        &ops,
        &caller(ctx),
        novalog_schemas::now_ms(),
    )?;
    if next == *current {
        return Ok(next);
    }
    let event = Event::Intent(novalog_schemas::Intent::ImagePatchRequested(Box::new(
        ImagePatch { image_id: id, ops },
    )));
    accepted_image(
        decide(app, ctx, request_id, &current.owner, id, event).await?,
        next,
    )
}

/// Has the conductor apply `change` (a member, a tag, deactivate /
/// reactivate, an import step) to the image as it is by then, once the
/// same decision on the projection shows it can apply; a change that
/// leaves the image as it is writes nothing.
pub async fn change(
    app: &ImageApp,
    ctx: &Context,
    request_id: &str,
    current: &Image,
    change: ImageChange,
) -> Result<Image, ImageError> {
    let id = current.id;
    let next = image::decide_change(
        Some(current),
        &id,
        &change,
        &caller(ctx),
        novalog_schemas::now_ms(),
    )?;
    if next == *current {
        return Ok(next);
    }
    let event = Event::Intent(novalog_schemas::Intent::ImageChangeRequested {
        image_id: id,
        change,
    });
    accepted_image(
        decide(app, ctx, request_id, &current.owner, id, event).await?,
        next,
    )
}

/// Where staged data (`PUT /v2/images/{id}/stage`) waits for its import.
pub fn staged_path(dir: &Path, id: &Uuid) -> PathBuf {
    dir.join("staging").join(id.to_string())
}

/// The `glance-direct` import of a staged image, once the conductor has
/// moved it to importing: its staged bytes are measured, become its data,
/// and the conductor makes it active with their size and digests. On any
/// failure the image goes back to queued (the staged data is dropped), as
/// Glance's import flow reverts.
pub async fn run_import(app: AppState, ctx: Context, request_id: String, image: Image) {
    let id = image.id;
    let staged = staged_path(&app.images_dir, &id);
    let measured = async {
        use tokio::io::AsyncReadExt;
        let mut file = tokio::fs::File::open(&staged).await.ok()?;
        let mut hasher = Hasher::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]).ok()?;
        }
        Some(hasher.finish())
    }
    .await;
    let stored = match measured {
        Some(up) => tokio::fs::rename(&staged, data_path(&app.images_dir, &id))
            .await
            .ok()
            .map(|()| up),
        None => None,
    };
    let outcome = match stored {
        Some(up) => {
            let data = ImageData {
                image_id: id,
                size: up.size,
                checksum: up.checksum,
                os_hash_value: up.os_hash_value,
            };
            let event = Event::Intent(novalog_schemas::Intent::ImageUploadFinishRequested(
                Box::new(data),
            ));
            decide(&app, &ctx, &request_id, &image.owner, id, event).await
        }
        None => Err(ImageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the staged data could not be imported",
        )),
    };
    if let Err(e) = outcome {
        tracing::warn!(image = %id, error = %e.message, "importing staged image data");
        let _ = tokio::fs::remove_file(&staged).await;
        let _ = tokio::fs::remove_file(data_path(&app.images_dir, &id)).await;
        let event = Event::Intent(novalog_schemas::Intent::ImageChangeRequested {
            image_id: id,
            change: ImageChange::ImportAbort,
        });
        if let Err(e) = decide(&app, &ctx, &request_id, &image.owner, id, event).await {
            tracing::warn!(image = %id, error = %e.message, "putting an image back to queued");
        }
    }
}

/// Writes `ImageDeleteRequested`; the data file goes once it is accepted.
pub async fn delete(
    app: &ImageApp,
    ctx: &Context,
    request_id: &str,
    current: &Image,
) -> Result<(), ImageError> {
    image::decide_delete(Some(current), &current.id, &caller(ctx))?;
    let event = Event::Intent(novalog_schemas::Intent::ImageDeleteRequested {
        image_id: current.id,
    });
    decide(app, ctx, request_id, &current.owner, current.id, event).await?;
    // The deletion is recorded; a file left behind is only disk space.
    let _ = tokio::fs::remove_file(data_path(&app.images_dir, &current.id)).await;
    let _ = tokio::fs::remove_file(staged_path(&app.images_dir, &current.id)).await;
    Ok(())
}

/// The image an accepted verdict carries (`fallback` if it carries none).
fn accepted_image(event: Event, fallback: Image) -> Result<Image, ImageError> {
    match event {
        Event::Catalog(CatalogEvent::ImageCreated(i))
        | Event::Catalog(CatalogEvent::ImageUpdated(i)) => Ok(i),
        _ => Ok(fallback),
    }
}

async fn submit(
    app: &ImageApp,
    ctx: &Context,
    request_id: &str,
    owner: &str,
    id: Uuid,
    event: Event,
) -> Result<Verdict, Unanswered> {
    app.catalog.submit(ctx, request_id, owner, id, event).await
}

async fn decide(
    app: &ImageApp,
    ctx: &Context,
    request_id: &str,
    owner: &str,
    id: Uuid,
    event: Event,
) -> Result<Event, ImageError> {
    match submit(app, ctx, request_id, owner, id, event).await? {
        Verdict::Accepted(e) => Ok(*e),
        Verdict::Rejected(e) => Err(e),
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

/// Running digests over a stream of chunks, up to a size cap.
pub struct Hasher {
    size: u64,
    cap: u64,
    md5: Md5,
    sha512: Sha512,
}

impl Default for Hasher {
    /// Glance's default `image_size_cap`.
    fn default() -> Self {
        Hasher::with_cap(image::IMAGE_SIZE_CAP)
    }
}

impl Hasher {
    pub fn with_cap(cap: u64) -> Self {
        Hasher {
            size: 0,
            cap,
            md5: Md5::default(),
            sha512: Sha512::default(),
        }
    }

    /// Takes the next chunk; Glance's 413 once the data exceeds the cap.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), Refusal> {
        let size = self.size.saturating_add(chunk.len() as u64);
        if size > self.cap {
            return Err(image::too_large());
        }
        self.size = size;
        self.md5.update(chunk);
        self.sha512.update(chunk);
        Ok(())
    }

    /// Whether `len` more bytes would exceed the cap (a `Content-Length`
    /// checked before reading anything).
    pub fn would_exceed(&self, len: u64) -> bool {
        self.size.saturating_add(len) > self.cap
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

/// An upload under way: the conductor has moved the image from queued to
/// saving on this request's behalf, and its bytes go to `staging`. Dropped
/// before it is settled (an error, a client gone mid-body), it removes the
/// staging file and has the conductor put the image back to queued, as
/// Glance restores an image whose upload failed.
pub struct Upload {
    app: AppState,
    ctx: Context,
    request_id: String,
    image: Image,
    /// The staging file the bytes are written to.
    pub staging: PathBuf,
    settled: bool,
}

impl Upload {
    /// Asks the conductor for queued → saving. Refused (not queued: Glance's
    /// 409 "Image status transition from active to saving is not
    /// allowed") without writing anything when the projection already
    /// shows why.
    pub async fn begin(
        app: &AppState,
        ctx: &Context,
        request_id: &str,
        current: &Image,
    ) -> Result<Upload, ImageError> {
        let now = novalog_schemas::now_ms();
        image::decide_upload_start(Some(current), &current.id, &caller(ctx), now)?;
        let event = Event::Intent(novalog_schemas::Intent::ImageUploadRequested {
            image_id: current.id,
        });
        // The staging file exists before the image is saving: if this
        // process dies mid-upload, it is what tells the next start
        // (`abort_interrupted_uploads`) that the upload was ours.
        let staging = app
            .images_dir
            .join(format!("{}.{}.staging", current.id, Uuid::new_v4()));
        if let Err(e) = tokio::fs::write(&staging, b"").await {
            tracing::error!(error = %e, "creating an image staging file");
            return Err(ImageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Failed to store image data.",
            ));
        }
        let saving = match decide(app, ctx, request_id, &current.owner, current.id, event).await {
            Ok(e) => accepted_image(e, current.clone()),
            Err(e) => Err(e),
        };
        let saving = match saving {
            Ok(image) => image,
            Err(e) => {
                let _ = tokio::fs::remove_file(&staging).await;
                return Err(e);
            }
        };
        Ok(Upload {
            app: app.clone(),
            ctx: ctx.clone(),
            request_id: request_id.to_owned(),
            image: saving,
            staging,
            settled: false,
        })
    }

    /// Records the stored bytes: once the conductor accepts saving →
    /// active, the staging file becomes the image's data.
    pub async fn finish(mut self, up: Uploaded) -> Result<Image, ImageError> {
        let id = self.image.id;
        let data = ImageData {
            image_id: id,
            size: up.size,
            checksum: up.checksum,
            os_hash_value: up.os_hash_value,
        };
        let event = Event::Intent(novalog_schemas::Intent::ImageUploadFinishRequested(
            Box::new(data),
        ));
        let verdict = submit(
            &self.app,
            &self.ctx,
            &self.request_id,
            &self.image.owner,
            id,
            event,
        )
        .await;
        match verdict {
            Ok(Verdict::Accepted(e)) => {
                self.settled = true;
                self.store().await?;
                accepted_image(*e, self.image.clone())
            }
            Ok(Verdict::Rejected(e)) => {
                // Deleted meanwhile (gone): nothing waits for these bytes.
                self.settled = true;
                let _ = tokio::fs::remove_file(&self.staging).await;
                Err(e)
            }
            Err(e @ Unanswered::TimedOut(_)) => {
                // The finish is in the log and will be decided; the image
                // is saving on our behalf, so unless it is deleted first it
                // becomes active, and then its bytes must be in place.
                self.settled = true;
                self.store().await?;
                Err(e.into())
            }
            // Not recorded: dropping `self` puts the image back to queued.
            Err(e) => Err(e.into()),
        }
    }

    async fn store(&self) -> Result<(), ImageError> {
        tokio::fs::rename(
            &self.staging,
            data_path(&self.app.images_dir, &self.image.id),
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, image = %self.image.id, "moving uploaded image data");
            ImageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Failed to store image data.",
            )
        })
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let _ = std::fs::remove_file(&self.staging);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (app, ctx, request_id) = (self.app.clone(), self.ctx.clone(), self.request_id.clone());
        let image = self.image.clone();
        runtime.spawn(async move {
            let event = Event::Intent(novalog_schemas::Intent::ImageUploadAbortRequested { image_id: image.id });
            if let Err(e) = decide(&app, &ctx, &request_id, &image.owner, image.id, event).await {
                tracing::warn!(image = %image.id, error = %e.message, "putting an image back to queued");
            }
        });
    }
}

/// Uploads this API had under way when its process ended (killed
/// mid-body, so no drop of [`Upload`] ran) left their staging files: each
/// file goes, and an image still `saving` is put back to queued, as the
/// drop would have done. Run at start; the conductor decides each abort on
/// the image's current state, so one that moved on meanwhile is left alone.
pub async fn abort_interrupted_uploads(app: &AppState) {
    let Ok(mut dir) = tokio::fs::read_dir(&app.images_dir).await else {
        return;
    };
    while let Ok(Some(entry)) = dir.next_entry().await {
        let Some(id) = entry.file_name().to_str().and_then(staging_image) else {
            continue;
        };
        let _ = tokio::fs::remove_file(entry.path()).await;
        let Some(image) = app.catalog.image(&id) else {
            continue;
        };
        if image.status != image::SAVING {
            continue;
        }
        let ctx = Context::new("novalog-api", &image.owner, vec!["admin".to_owned()]);
        let request_id = novalog_request::RequestId::generate().0;
        let event =
            Event::Intent(novalog_schemas::Intent::ImageUploadAbortRequested { image_id: id });
        match decide(app, &ctx, &request_id, &image.owner, id, event).await {
            Ok(_) => tracing::info!(image = %id, "an interrupted upload's image is queued again"),
            Err(e) => {
                tracing::warn!(image = %id, error = %e.message, "aborting an interrupted upload")
            }
        }
    }
}

/// The images whose upload lease ran out by `now_ms`, as this replica's
/// projection shows them.
pub fn expired_uploads(images: &[Arc<Image>], now_ms: i64, lease_ms: i64) -> Vec<Uuid> {
    images
        .iter()
        .filter(|i| image::upload_lease_expired(i, now_ms, lease_ms))
        .map(|i| i.id)
        .collect()
}

/// Puts back to queued every image whose upload outlived its lease: the
/// API that took the upload died mid-body on a replica that has not
/// started again (its own start would have aborted it) and may never.
/// Returns how many the conductor put back. Every replica runs it; the
/// conductor decides each abort by the lease at the abort's time, so a
/// second replica's, or one racing a newer upload, is refused and changes
/// nothing. The partial data is on the dead replica's disk, in a staging
/// file its next start removes; the uploader itself, if alive after all,
/// has stopped reading the body at the lease and removed its own.
pub async fn expire_uploads(app: &AppState) -> usize {
    let lease_ms = i64::try_from(app.upload_lease.as_millis()).unwrap_or(i64::MAX);
    let expired = expired_uploads(&app.catalog.images(), novalog_schemas::now_ms(), lease_ms);
    let mut requeued = 0;
    for id in expired {
        let Some(image) = app.catalog.image(&id) else {
            continue;
        };
        let ctx = Context::new(image::LEASE_KEEPER, "service", vec!["service".to_owned()]);
        let request_id = novalog_request::RequestId::generate().0;
        let event =
            Event::Intent(novalog_schemas::Intent::ImageUploadAbortRequested { image_id: id });
        match decide(app, &ctx, &request_id, &image.owner, id, event).await {
            Ok(_) => {
                requeued += 1;
                tracing::warn!(image = %id, "an upload outlived its lease; the image is queued again");
            }
            Err(e) => tracing::debug!(image = %id, error = %e.message, "upload lease not expired"),
        }
    }
    requeued
}

/// [`expire_uploads`] for as long as the process runs, a few times per
/// lease (at least every minute, at most every second).
pub async fn keep_upload_leases(app: AppState) {
    let every = (app.upload_lease / 4).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(60),
    );
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        expire_uploads(&app).await;
    }
}

/// The image a staging file (`<id>.<upload>.staging`) belongs to.
fn staging_image(name: &str) -> Option<Uuid> {
    name.strip_suffix(".staging")?
        .split('.')
        .next()?
        .parse()
        .ok()
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
    /// Every parameter of the documented table is read by the parser,
    /// and a value the table refuses is a 400.
    #[test]
    fn every_documented_list_parameter_is_read() {
        let default = ListQuery::parse(&[]).unwrap();
        for p in LIST_QUERY {
            let value = match p.kind {
                QueryKind::Text => "x".to_owned(),
                QueryKind::Limit => "3".to_owned(),
                QueryKind::Uuid => Uuid::nil().to_string(),
                QueryKind::Visibility => "community".to_owned(),
                QueryKind::MemberStatus => "pending".to_owned(),
            };
            let q = ListQuery::parse(&[(p.name.to_owned(), value)]).unwrap();
            assert_ne!(q, default, "{} is documented but not read", p.name);
        }
        let huge = ListQuery::parse(&[("limit".into(), "99999999999999999999".into())]);
        assert_eq!(huge.unwrap().limit, MAX_LIMIT);
        for (k, v) in [
            ("limit", "-1"),
            ("limit", "abc"),
            ("marker", "x"),
            ("visibility", "no"),
        ] {
            assert!(
                ListQuery::parse(&[(k.into(), v.into())]).is_err(),
                "{k}={v}"
            );
        }
    }

    use super::*;

    #[test]
    fn only_saving_images_past_their_lease_are_expired() {
        let at = |status: &str, updated_at_ms: i64| {
            Arc::new(Image {
                id: Uuid::new_v4(),
                name: "img".into(),
                status: status.into(),
                size: 0,
                min_disk: 0,
                min_ram: 0,
                disk_format: String::new(),
                container_format: String::new(),
                properties: Default::default(),
                owner: "demo".into(),
                checksum: String::new(),
                visibility: "private".into(),
                created_at_ms: 0,
                protected: false,
                tags: Vec::new(),
                os_hash_value: String::new(),
                updated_at_ms,
                members: Vec::new(),
            })
        };
        let old = at(image::SAVING, 0);
        let images = [
            old.clone(),
            at(image::SAVING, 500),
            at(image::QUEUED, 0),
            at(image::ACTIVE, 0),
        ];
        assert_eq!(expired_uploads(&images, 1_000, 1_000), [old.id]);
        assert_eq!(expired_uploads(&images, 1_499, 1_000), [old.id]);
        assert_eq!(expired_uploads(&images, 1_500, 1_000).len(), 2);
    }

    #[test]
    fn a_staging_file_names_its_image() {
        let id = Uuid::from_u128(7);
        assert_eq!(
            staging_image(&format!("{id}.{}.staging", Uuid::new_v4())),
            Some(id)
        );
        assert_eq!(staging_image(&id.to_string()), None, "an image's data");
        assert_eq!(staging_image("junk.staging"), None);
    }

    #[test]
    fn digests_are_glances() {
        let mut h = Hasher::default();
        h.update(b"hello ").unwrap();
        h.update(b"world").unwrap();
        let up = h.finish();
        assert_eq!(up.size, 11);
        assert_eq!(up.checksum, "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert!(
            up.os_hash_value
                .starts_with("309ecc489c12d6eb4cc40f50c902f2b4")
        );
    }

    #[test]
    fn data_beyond_the_cap_is_refused() {
        let mut h = Hasher::with_cap(10);
        h.update(&[0; 6]).unwrap();
        assert!(h.would_exceed(5));
        assert!(!h.would_exceed(4));
        let e = h.update(&[0; 5]).unwrap_err();
        assert_eq!(ImageError::from(e).status, StatusCode::PAYLOAD_TOO_LARGE);
        h.update(&[0; 4]).unwrap();
        assert_eq!(h.finish().size, 10);
        assert!(Hasher::default().would_exceed(image::IMAGE_SIZE_CAP + 1));
    }
}
