//! The interoperable image import API: `GET /v2/info/import`,
//! `GET /v2/info/stores`, staging (`PUT /v2/images/{id}/stage`: queued →
//! uploading) and `POST /v2/images/{id}/import` with `glance-direct`
//! (uploading → importing → active).
//!
//! Staged data waits on this replica's disk (`<images_dir>/staging/<id>`)
//! as Glance's does on its node's `node_staging_uri`; its import must come
//! to the same replica.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use novalog_request::{Context, RequestId};
use novalog_schemas::image::{self as rules, Action, ImageChange};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::{GlanceError, IMPORT_METHODS, Result, content_type, json_body};
use crate::images::{self, Hasher};
use crate::{AppState, ImageError};

/// `GET /v2/info/import`: the import methods offered.
pub async fn info_import() -> Json<Value> {
    Json(json!({
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": IMPORT_METHODS,
        }
    }))
}

/// `GET /v2/info/stores`: one store and no `enabled_backends`, so
/// Glance's 404.
pub async fn info_stores() -> GlanceError {
    GlanceError(ImageError::not_found(
        "Multi backend is not supported at this site.",
    ))
}

fn io_error(e: std::io::Error) -> GlanceError {
    tracing::error!(error = %e, "staging image data");
    GlanceError(ImageError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Failed to stage image data.",
    ))
}

/// `PUT /v2/images/{id}/stage`: the conductor moves the image from queued
/// to uploading, the body goes to the staging area (up to
/// `image_size_cap`) and the conductor records its size; a failure puts
/// the image back to queued. 204.
pub async fn stage(
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
    let path = images::staged_path(&app.images_dir, &image.id);
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(io_error)?;
    }
    let uploading = images::change(&app, &ctx, &rid.0, &image, ImageChange::StageStart).await?;
    let written = async {
        let mut hasher = Hasher::default();
        let mut file = tokio::fs::File::create(&path).await.map_err(io_error)?;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| {
                GlanceError(ImageError::bad_request("Error reading the request body."))
            })?;
            hasher.update(&chunk)?;
            file.write_all(&chunk).await.map_err(io_error)?;
        }
        file.sync_all().await.map_err(io_error)?;
        Ok::<u64, GlanceError>(hasher.finish().size)
    }
    .await;
    let recorded = match written {
        Ok(size) => images::change(&app, &ctx, &rid.0, &uploading, ImageChange::Staged { size })
            .await
            .map_err(GlanceError),
        Err(e) => Err(e),
    };
    if let Err(e) = recorded {
        let _ = tokio::fs::remove_file(&path).await;
        let now = app
            .catalog
            .image(&image.id)
            .unwrap_or(std::sync::Arc::new(uploading));
        if let Err(undo) = images::change(&app, &ctx, &rid.0, &now, ImageChange::StageAbort).await {
            tracing::warn!(image = %image.id, error = %undo.message, "unstaging an image");
        }
        return Err(e);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v2/images/{id}/import` with `{"method": {"name": "glance-direct"}}`:
/// Glance's checks, then the conductor moves the image to importing and
/// the import runs after the answer (202), as Glance's task does.
pub async fn import(
    State(app): State<AppState>,
    ctx: Context,
    rid: RequestId,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let body = json_body(&body)?;
    let method = body
        .get("method")
        .ok_or_else(|| bad("Import request requires a 'method' field."))?;
    let name = method
        .get("name")
        .ok_or_else(|| bad("Import request requires a 'name' field."))?;
    let name = name.as_str().unwrap_or_default();
    if !IMPORT_METHODS.contains(&name) {
        return Err(bad(&format!("Unknown import method name '{name}'.")));
    }
    let all_stores_must_succeed = match body.get("all_stores_must_succeed") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("'all_stores_must_succeed' must be boolean value only")),
    };
    if body.get("all_stores").is_some_and(|v| !v.is_boolean()) {
        return Err(bad("'all_stores' must be boolean value only"));
    }
    let image = images::find(&app, &ctx, &id)?;
    rules::check_importable(&image)?;
    images::authorize(&ctx, Action::ModifyImage, Some(&*image))?;
    if !all_stores_must_succeed {
        return Err(bad(
            "All_stores_must_succeed can only be set with enabled_backends None",
        ));
    }
    if tokio::fs::metadata(images::staged_path(&app.images_dir, &image.id))
        .await
        .is_err()
    {
        return Err(GlanceError(ImageError::new(
            StatusCode::CONFLICT,
            "The image's staged data is not on this node; import it where it was staged.",
        )));
    }
    let importing = images::change(&app, &ctx, &rid.0, &image, ImageChange::ImportStart).await?;
    tokio::spawn(images::run_import(app.clone(), ctx, rid.0, importing));
    Ok(StatusCode::ACCEPTED.into_response())
}

fn bad(message: &str) -> GlanceError {
    GlanceError(ImageError::bad_request(message))
}
