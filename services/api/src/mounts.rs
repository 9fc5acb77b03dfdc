//! The Identity and Image services, crates of their own, mounted on this
//! listener at `/identity` and `/image`, and what they read and write
//! through it: the log, and this replica's projection.

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use novalog_image::{ImageApp, ImageCatalog, ImageError, Unanswered};
use novalog_request::Context;
use novalog_schemas::{Envelope, Event, Image};
use uuid::Uuid;

use crate::app::AppState;
use crate::auth;
use crate::domain::intents::{Intent, SubmitError};
use crate::error::ApiError;
use crate::projection::verdicts::Verdict;

/// The `/identity` routes, when tokens are keystone's.
pub fn identity(app: &AppState) -> Option<Router> {
    let identity = app.auth.identity()?;
    let log: Arc<dyn novalog_identity::routes::RevocationLog> =
        Arc::new(RevocationsOnTheLog(app.clone()));
    Some(
        novalog_identity::routes::router(identity.clone())
            .merge(novalog_identity::routes::revoke_router(
                identity.clone(),
                log.clone(),
            ))
            .merge(novalog_identity::admin_routes::router(
                identity.clone(),
                log,
            )),
    )
}

/// The `/image` routes, authenticated as the compute API's are.
/// The Image service's state over this API's projection and log.
pub fn image_app(app: &AppState) -> Arc<ImageApp> {
    Arc::new(ImageApp {
        catalog: Arc::new(ImagesOnTheLog(app.clone())),
        images_dir: app.images_dir.clone(),
        upload_lease: app.image_upload_lease,
    })
}

pub fn image(app: &AppState) -> Router {
    let images = image_app(app);
    let auth = app.auth.clone();
    novalog_image::routes::router(images, |routes| {
        routes.route_layer(from_fn_with_state(auth, auth::require))
    })
}

/// Identity's token revocations and directory changes, written to
/// `catalog` and answered once this replica's projection has folded them
/// (so the change holds here from then on; every other replica holds it
/// once it has folded it too).
struct RevocationsOnTheLog(AppState);

#[async_trait::async_trait]
impl novalog_identity::routes::RevocationLog for RevocationsOnTheLog {
    async fn record(&self, key: Vec<u8>, record: Envelope) -> Result<(), String> {
        let app = &self.0;
        let positions = app
            .log
            .append(vec![novalog_log::Record::new(
                app.topics.catalog.clone(),
                key,
                novalog_schemas::encode(&record),
            )])
            .await
            .map_err(|e| e.to_string())?;
        let ends: crate::projection::Offsets = positions
            .into_iter()
            .map(|p| ((app.topics.catalog.clone(), p.partition), p.offset + 1))
            .collect();
        tokio::time::timeout(app.intents.timeout(), app.projection.wait_applied(&ends))
            .await
            .map_err(|_| "not applied in time".to_owned())
    }
}

/// Images as this replica's projection has them; image intents through
/// the API's intents, their verdicts as the Image API answers them.
struct ImagesOnTheLog(AppState);

fn image_error(e: ApiError) -> ImageError {
    ImageError::new(e.status, e.message)
}

#[async_trait::async_trait]
impl ImageCatalog for ImagesOnTheLog {
    fn image(&self, id: &Uuid) -> Option<Arc<Image>> {
        self.0.projection.image(id)
    }

    fn image_with_deleted(&self, id: &Uuid) -> Option<Arc<Image>> {
        self.0.projection.image_with_deleted(id)
    }

    fn images(&self) -> Vec<Arc<Image>> {
        self.0.projection.images()
    }

    async fn submit(
        &self,
        ctx: &Context,
        request_id: &str,
        owner: &str,
        id: Uuid,
        event: Event,
    ) -> Result<novalog_image::Verdict, Unanswered> {
        let intent = Intent {
            aggregate_id: id.to_string(),
            event,
        };
        let verdict = match self
            .0
            .intents
            .submit(ctx, request_id, owner, vec![intent])
            .await
        {
            Ok(verdicts) => verdicts.into_iter().next(),
            Err(e @ SubmitError::Timeout(_)) => {
                return Err(Unanswered::TimedOut(image_error(e.into())));
            }
            Err(e) => return Err(Unanswered::Unrecorded(image_error(e.into()))),
        };
        // One intent, one verdict.
        Ok(match verdict {
            Some(Verdict::Accepted(e)) => novalog_image::Verdict::Accepted(e),
            // The same kind→status mapping as the compute API's, in
            // Glance's shape.
            Some(Verdict::Rejected(r)) => novalog_image::Verdict::Rejected(ImageError::from(r)),
            None => novalog_image::Verdict::Rejected(image_error(SubmitError::NoVerdict.into())),
        })
    }
}
