//! `novalog-image`: the Image v2 subset at `/image` (Glance's role) that
//! stock clients need, a service of its own that `novalog-api` mounts on
//! its listener: the version document, `/v2/images` (create, list, show,
//! JSON-patch, delete), image data (`PUT`/`GET /v2/images/{id}/file`) and
//! the schemas clients fetch.
//!
//! Image metadata is decided by the conductor like every other catalog
//! change: this crate turns requests into intents and reads images back
//! through the [`ImageCatalog`] the mounting service provides (its log
//! and its projection). Data lives under `<data_dir>/images/<id>`.
//!
//! # Layout
//! - [`images`]: the domain: who sees which image, create bodies,
//!   listing filters, the writes, uploads and their digests.
//! - [`routes`]: the handlers and their router, errors in Glance's shape.
//!
//! It shares with the services beside it only `novalog-request` (the
//! caller's context, request ids, base URLs, query strings).

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::StatusCode;
use novalog_request::Context;
use novalog_schemas::{Event, Image, Rejection};
use uuid::Uuid;

pub mod images;
pub mod routes;

/// An error of the Image API, rendered in Glance's shape by
/// [`routes::GlanceError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ImageError {
    pub status: StatusCode,
    pub message: String,
}

impl ImageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ImageError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

/// A rejection (the conductor's verdict, or Glance's rules run here
/// first) with the status every service on the listener answers it with.
impl From<Rejection> for ImageError {
    fn from(r: Rejection) -> Self {
        ImageError::new(novalog_request::status_of(&r.kind), r.message)
    }
}

/// The conductor's answer to an image intent.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The first record the conductor wrote for it.
    Accepted(Box<Event>),
    /// Refused, with the status and message to answer.
    Rejected(ImageError),
}

/// Why an intent got no verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unanswered {
    /// The log did not take it: nothing was recorded.
    Unrecorded(ImageError),
    /// Recorded, but not decided in time: it will be.
    TimedOut(ImageError),
}

impl From<Unanswered> for ImageError {
    fn from(u: Unanswered) -> Self {
        match u {
            Unanswered::Unrecorded(e) | Unanswered::TimedOut(e) => e,
        }
    }
}

/// What the Image API reads and writes through the service that mounts
/// it: images as its projection has them, intents and their verdicts.
#[async_trait::async_trait]
pub trait ImageCatalog: Send + Sync {
    /// The live image with this id (deleted images are kept on disk only).
    fn image(&self, id: &Uuid) -> Option<Arc<Image>>;

    /// The image with this id, a deleted one read back from disk.
    fn image_with_deleted(&self, id: &Uuid) -> Option<Arc<Image>>;

    /// Every image.
    fn images(&self) -> Vec<Arc<Image>>;

    /// Appends `event` about image `id` on behalf of `ctx`, keyed by
    /// `owner` (every change to one image in one partition, in order),
    /// and waits for the conductor's verdict.
    async fn submit(
        &self,
        ctx: &Context,
        request_id: &str,
        owner: &str,
        id: Uuid,
        event: Event,
    ) -> Result<Verdict, Unanswered>;
}

/// What the image handlers share.
pub struct ImageApp {
    /// Reads and writes.
    pub catalog: Arc<dyn ImageCatalog>,
    /// Where uploaded image data is kept (`<data_dir>/images`).
    pub images_dir: PathBuf,
    /// How long an upload may keep its image `saving`
    /// (`[conductor] image_upload_lease`): the upload handler stops reading
    /// a body past it, and [`images::keep_upload_leases`] returns images
    /// whose upload outlived it (another replica's, dead mid-body).
    pub upload_lease: std::time::Duration,
}

pub type AppState = Arc<ImageApp>;
