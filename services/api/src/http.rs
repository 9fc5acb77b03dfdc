//! HTTP plumbing shared by every route: the request id, the JSON body
//! extractor, the panic catcher, and the rewrite of errors produced
//! outside the handlers (extractor rejections, body limit, method not
//! allowed, panics) into the shape of the service the path belongs to.

use axum::extract::{FromRequest, Request};

use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tracing::Instrument;

use crate::error::ApiError;

// What every service on the listener reads from a request lives in
// novalog-request, which Identity and Image share with this crate.
pub use novalog_request::{REQUEST_ID_HEADER, RequestId, query_pairs, without_none};

/// The request id under the name Nova's compute API also answers with.
pub const COMPUTE_REQUEST_ID_HEADER: &str = "x-compute-request-id";

/// Outermost middleware: assigns the request id and puts it on the
/// response, whatever produced the response.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = RequestId::generate();
    req.extensions_mut().insert(id.clone());
    let compute = Service::of(req.uri().path()) == Service::Compute;
    let span = tracing::info_span!("request", request_id = %id.0, method = %req.method(), path = %req.uri().path());
    let mut resp = next.run(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        if compute {
            // Nova's request id middleware also answers with its older
            // name, which novaclient-era tooling still reads.
            resp.headers_mut()
                .insert(COMPUTE_REQUEST_ID_HEADER, v.clone());
        }
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The service a path belongs to: its errors have that service's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Nova: `{"<faultName>": {"code", "message"}}`.
    Compute,
    /// Keystone, under `/identity`: `{"error": {"code", "title", "message"}}`.
    Identity,
    /// Glance, under `/image`: `{"code": "N Reason", "title", "message"}`.
    Image,
}

impl Service {
    pub fn of(path: &str) -> Service {
        let under = |prefix: &str| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if under("/identity") {
            Service::Identity
        } else if under("/image") {
            Service::Image
        } else {
            Service::Compute
        }
    }

    /// `message` with `status`, in this service's error shape.
    pub fn error(self, status: StatusCode, message: impl Into<String>) -> Response {
        let error = ApiError::new(status, message);
        match self {
            Service::Compute => error.into_response(),
            Service::Identity => {
                novalog_identity::routes::KeystoneError::new(error.status, error.message)
                    .into_response()
            }
            Service::Image => novalog_image::routes::GlanceError(novalog_image::ImageError::new(
                error.status,
                error.message,
            ))
            .into_response(),
        }
    }
}

/// Nova's answer to an unexpected error, naming the request so that an
/// operator can find its log lines.
pub fn unexpected_error_message(request_id: &str) -> String {
    format!(
        "Unexpected API Error. Please report this and attach the API log of request {request_id} if possible."
    )
}

/// What to say for an error that reached the client without a body of its
/// own: a fixed sentence for the statuses the layers outside the handlers
/// produce, else the producer's own short text (axum's extractor
/// rejections explain themselves), else the status's reason.
fn message_for(status: StatusCode, text: &str, request_id: &str) -> String {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "Request is too large.".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => {
            "The method specified is not allowed for this resource.".to_owned()
        }
        StatusCode::NOT_FOUND => "The resource could not be found.".to_owned(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported Content-Type".to_owned(),
        StatusCode::REQUEST_TIMEOUT => "The request took too long.".to_owned(),
        s if s.is_server_error() => unexpected_error_message(request_id),
        s => {
            let text = text.trim();
            if text.is_empty() || text.len() > 512 {
                s.canonical_reason().unwrap_or("Error").to_owned()
            } else {
                text.to_owned()
            }
        }
    }
}

/// Gives every error that is not already JSON the body of the service the
/// path belongs to: extractor rejections (a non-UTF-8 path parameter),
/// the body limit's 413, the router's 404 and 405, a caught panic's 500.
/// A client of any route never gets `text/plain` or an empty error body.
pub async fn error_shapes(req: Request, next: Next) -> Response {
    let service = Service::of(req.uri().path());
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default();
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&resp) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    // Rejections are short texts; anything longer is not read whole.
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let message = message_for(status, &String::from_utf8_lossy(&text), &request_id);
    let fresh = service.error(status, message);
    parts.headers.remove(header::CONTENT_LENGTH);
    for (k, v) in fresh.headers() {
        parts.headers.insert(k, v.clone());
    }
    Response::from_parts(parts, fresh.into_body())
}

/// The answer to a handler that panicked: logged with the panic's message
/// (in the request's span), then a bare 500 that [`error_shapes`] gives
/// the service's shape and the request id. The connection stays up.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with no message".to_owned());
    tracing::error!(panic = %what, "request handler panicked");
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// Answers 408 for a request still unanswered after `limit` (its body
/// too slow to arrive, or anything else stuck), so that no request holds
/// its connection for longer. Image data transfers are exempt: their
/// size, not a client's malice, decides how long they take.
pub async fn request_timeout(
    axum::extract::State(limit): axum::extract::State<Option<std::time::Duration>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let exempt = Service::of(path) == Service::Image && path.ends_with("/file");
    match limit.filter(|_| !exempt) {
        None => next.run(req).await,
        Some(limit) => match tokio::time::timeout(limit, next.run(req)).await {
            Ok(resp) => resp,
            Err(_) => {
                tracing::warn!(?limit, "request timed out");
                StatusCode::REQUEST_TIMEOUT.into_response()
            }
        },
    }
}

/// The layers every route of the listener is served through, outermost
/// first: the request id, the error shapes, the panic catcher.
pub fn edge(router: axum::Router) -> axum::Router {
    router
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(axum::middleware::from_fn(error_shapes))
        .layer(axum::middleware::from_fn(request_id))
}

/// Reads a request's whole body (already bounded by the body limit) before
/// routing, so that every answer, early refusals included (an unknown id in
/// the path, a failed policy check), comes after the body: a connection is
/// never answered and closed with its request half read, which a client
/// reusing it would see as a dropped connection.
pub async fn read_body_first(req: Request, next: Next) -> Response {
    match novalog_request::buffer_body(req, usize::MAX).await {
        Ok(req) => next.run(req).await,
        Err(refusal) => ApiError::new(refusal.status(), refusal.message()).into_response(),
    }
}

/// A JSON request body; malformed JSON is Nova's 400, an oversized body
/// its 413. An empty body is `null`.
#[derive(Debug, Clone)]
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // The route's schema (crate::validation::requests) is checked here,
        // before the handler runs, as Nova's `@validation.schema` does.
        let route = req
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map(|p| p.as_str().to_owned());
        let version = req
            .extensions()
            .get::<crate::microversion::ApiVersion>()
            .copied()
            .unwrap_or(crate::microversion::MIN_VERSION);
        let method = req.method().as_str().to_owned();
        let body = novalog_request::read_json(req, state)
            .await
            .map_err(|refusal| ApiError::new(refusal.status(), refusal.message()))?;
        if let Some(route) = route {
            crate::validation::requests::check(&method, &route, version, &body)?;
        }
        Ok(JsonBody(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_belong_to_their_service() {
        assert_eq!(Service::of("/identity"), Service::Identity);
        assert_eq!(Service::of("/identity/v3/auth/tokens"), Service::Identity);
        assert_eq!(Service::of("/image/v2/images"), Service::Image);
        assert_eq!(Service::of("/images"), Service::Compute);
        assert_eq!(Service::of("/identityx"), Service::Compute);
        assert_eq!(Service::of("/v2.1/servers"), Service::Compute);
        assert_eq!(Service::of("/"), Service::Compute);
    }

    #[test]
    fn bare_errors_get_a_sentence() {
        let m = |s, t| message_for(s, t, "req-1");
        assert_eq!(
            m(StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded"),
            "Request is too large."
        );
        assert!(m(StatusCode::INTERNAL_SERVER_ERROR, "").contains("req-1"));
        assert_eq!(m(StatusCode::BAD_REQUEST, " Invalid URL "), "Invalid URL");
        assert_eq!(m(StatusCode::BAD_REQUEST, ""), "Bad Request");
        assert_eq!(m(StatusCode::BAD_REQUEST, &"x".repeat(600)), "Bad Request");
    }
}
