//! What every HTTP request leaves behind for an operator: one access-log
//! line (tower-http's trace layer, inside the request-id span so the line
//! carries the request id) and its count and latency in Prometheus,
//! labelled by route pattern (`/v2.1/servers/{id}`, never the concrete
//! path, so the label set stays bounded).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::LatencyUnit;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{
    DefaultMakeSpan, DefaultOnBodyChunk, DefaultOnEos, DefaultOnResponse, TraceLayer,
};
use tracing::Level;

/// Counts the request and records its latency by method, route and status.
pub async fn metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let start = Instant::now();
    let resp = next.run(req).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", resp.status().as_u16().to_string()),
    ];
    metrics::counter!("novalog_http_requests_total", &labels).increment(1);
    metrics::histogram!("novalog_http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    resp
}

/// One info line per request when its response is ready (status and
/// latency); no line when it starts and no second line for a 5xx.
pub fn access_log() -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    DefaultMakeSpan,
    (),
    DefaultOnResponse,
    DefaultOnBodyChunk,
    DefaultOnEos,
    (),
> {
    TraceLayer::new_for_http()
        .make_span_with(DefaultMakeSpan::new().level(Level::DEBUG))
        .on_request(())
        .on_response(
            DefaultOnResponse::new()
                .level(Level::INFO)
                .latency_unit(LatencyUnit::Millis),
        )
        .on_failure(())
}
