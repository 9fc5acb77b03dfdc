//! The read side of `novalog-billing` for the API, on an internal
//! listener (`[billing] listen`, default 127.0.0.1:8779).
//!
//! It answers data only: no authentication, no policy (novalog-api does
//! both before it asks). Bind it to loopback or a private network, never
//! to where users reach.
//!
//! - `GET /internal/v1/intervals?start_ms=&end_ms=[&project=]`: the whole
//!   history of every server (of the project) with any time in the
//!   window, as [`IntervalsReply`].
//! - `GET /internal/v1/projects`: every project with usage, as
//!   [`ProjectsReply`].

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::meter::Interval;
use crate::service::Ledger;

/// The answer of `GET /internal/v1/intervals`.
#[derive(Debug, Serialize, Deserialize)]
pub struct IntervalsReply {
    pub intervals: Vec<Interval>,
}

/// The answer of `GET /internal/v1/projects`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProjectsReply {
    pub projects: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Window {
    start_ms: i64,
    end_ms: i64,
    project: Option<String>,
}

async fn intervals(
    State(ledger): State<Arc<Ledger>>,
    Query(w): Query<Window>,
) -> Result<Json<IntervalsReply>, (StatusCode, String)> {
    if w.end_ms < w.start_ms {
        return Err((StatusCode::BAD_REQUEST, "end_ms before start_ms".into()));
    }
    Ok(Json(IntervalsReply {
        intervals: ledger.servers_in(w.project.as_deref(), w.start_ms, w.end_ms),
    }))
}

async fn projects(State(ledger): State<Arc<Ledger>>) -> Json<ProjectsReply> {
    Json(ProjectsReply {
        projects: ledger.projects(),
    })
}

/// The internal routes over `ledger`.
pub fn router(ledger: Arc<Ledger>) -> Router {
    Router::new()
        .route("/internal/v1/intervals", get(intervals))
        .route("/internal/v1/projects", get(projects))
        .with_state(ledger)
}

/// Serves [`router`] on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ledger: Arc<Ledger>,
    mut shutdown: novalog_runtime::Shutdown,
) -> std::io::Result<()> {
    axum::serve(listener, router(ledger))
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}
