//! `novalog-request`: what a request carries into any of the OpenStack
//! services served on the API's listener (Compute in `novalog-api`,
//! Identity in `novalog-identity`, Image in `novalog-image`): its id, the
//! base URL its client reached, its query string, its JSON body.
//!
//! The services depend on this crate and not on each other, so it holds
//! nothing of one service's own: no error shape (each answers in its own,
//! Nova's, keystone's or glance's), no policy, no routes. The layers that
//! wrap the one listener (request ids, error shapes, panics, timeouts) are
//! applied by the crate that builds it, `novalog-api`.
//!
//! # Layout
//! - [`Context`]: who is asking, as the listener's authentication found.
//! - [`RequestId`]: `req-<uuid>`, assigned by the listener's outermost layer.
//! - [`BaseUrl`]: `scheme://host[:port]` as the client reached us.
//! - [`query_pairs`], [`without_none`]: query strings as OpenStack clients
//!   send them.
//! - [`read_json`] and [`BodyRefusal`]: a JSON body, or why it is none.
//! - [`status_of`]: the status a typed rejection is answered with.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use novalog_schemas::{Actor, RejectionKind};
use serde_json::Value;
use uuid::Uuid;

/// The authenticated caller of one request (Nova's RequestContext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub user_id: String,
    pub project_id: String,
    pub roles: Vec<String>,
    pub is_admin: bool,
}

impl Context {
    pub fn new(user_id: &str, project_id: &str, roles: Vec<String>) -> Self {
        let is_admin = roles.iter().any(|r| r == "admin");
        Context {
            user_id: user_id.to_owned(),
            project_id: project_id.to_owned(),
            roles,
            is_admin,
        }
    }

    /// The administrator the API acts as on its own account (bootstrap).
    pub fn admin() -> Self {
        Context::new("admin", "admin", vec!["admin".to_owned()])
    }

    /// The actor recorded on the intents this caller causes.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.user_id.clone(),
            project_id: self.project_id.clone(),
            roles: self.roles.clone(),
        }
    }
}

/// A handler asked for the [`Context`] of a request nobody authenticated:
/// 401, which the listener's error layer gives the service's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthenticated;

impl IntoResponse for Unauthenticated {
    fn into_response(self) -> Response {
        (
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        )
            .into_response()
    }
}

/// The context an authentication layer stored on the request.
impl<S: Send + Sync> FromRequestParts<S> for Context {
    type Rejection = Unauthenticated;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Context>()
            .cloned()
            .ok_or(Unauthenticated)
    }
}

/// The response header that carries the request id.
pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";

/// This request's id, `req-<uuid>`: on the response, in the logs, and the
/// correlation id of every intent the request writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn generate() -> Self {
        RequestId(format!("req-{}", Uuid::new_v4()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(RequestId::generate))
    }
}

/// `scheme://host[:port]` (no trailing slash) as the client reached us,
/// proxies' `X-Forwarded-*` headers first: what links in bodies start
/// with (Nova's `request.application_url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(pub String);

impl<S: Send + Sync> FromRequestParts<S> for BaseUrl {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(',').next().unwrap_or("").trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let scheme = header("x-forwarded-proto").unwrap_or_else(|| "http".to_owned());
        let host = header("x-forwarded-host")
            .or_else(|| header("host"))
            .or_else(|| parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "localhost".to_owned());
        Ok(BaseUrl(format!("{scheme}://{host}")))
    }
}

/// Query parameters as (key, value) pairs, repeated keys kept, decoded.
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw else { return Vec::new() };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Drops the literal `None` values stock clients send for unset filters
/// (`?flavor=None&image=None`): they mean "no filter".
pub fn without_none(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs.into_iter().filter(|(_, v)| v != "None").collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a request has no JSON body; each service words it in its own
/// error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRefusal {
    /// 415: a content type that is not read as JSON.
    UnsupportedType,
    /// 413: larger than the listener's body limit.
    TooLarge,
    /// 400: not JSON.
    Malformed,
}

impl BodyRefusal {
    pub fn status(self) -> StatusCode {
        match self {
            BodyRefusal::UnsupportedType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyRefusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyRefusal::Malformed => StatusCode::BAD_REQUEST,
        }
    }

    /// Nova's sentence for it, which keystone's shape carries too.
    pub fn message(self) -> &'static str {
        match self {
            BodyRefusal::UnsupportedType => "Unsupported Content-Type",
            BodyRefusal::TooLarge => "Request is too large.",
            BodyRefusal::Malformed => "Malformed request body",
        }
    }
}

/// Nova's `get_content_type`: no type, `text/plain` (what many servers
/// default to) and the JSON types are read as JSON; anything else is 415.
pub fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let mime = value.split(';').next().unwrap_or("").trim();
    mime.is_empty()
        || [
            "text/plain",
            "application/json",
            "application/vnd.openstack.compute+json",
        ]
        .iter()
        .any(|m| mime.eq_ignore_ascii_case(m))
}

/// The request's body as JSON; an empty body is `null`.
pub async fn read_json<S: Send + Sync>(req: Request, state: &S) -> Result<Value, BodyRefusal> {
    if !json_content_type(req.headers()) {
        return Err(BodyRefusal::UnsupportedType);
    }
    let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            BodyRefusal::TooLarge
        } else {
            BodyRefusal::Malformed
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|_| BodyRefusal::Malformed)
}

/// The request with its whole body read into memory (at most `limit`
/// bytes), for the listeners' read-the-body-before-routing layers: every
/// answer, early refusals included (a malformed id in the path, a failed
/// policy check), then comes after the body, so a connection is never
/// answered and closed with its request half sent, which a client reusing
/// it would see as a dropped connection. Each service words the refusal in
/// its own error shape.
pub async fn buffer_body(req: Request, limit: usize) -> Result<Request, BodyRefusal> {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(Request::from_parts(parts, axum::body::Body::from(bytes))),
        Err(e) => {
            // The limit's error is wrapped in axum's.
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(err) = source {
                if err.is::<http_body_util::LengthLimitError>() {
                    return Err(BodyRefusal::TooLarge);
                }
                source = err.source();
            }
            Err(BodyRefusal::Malformed)
        }
    }
}

/// The HTTP status a rejection of `kind` is answered with: the one place
/// where what went wrong (decided by the conductor or Glance's rules)
/// becomes a status, as Nova's API controllers map its exceptions. Every
/// service on the listener answers a rejection with it (Compute in its
/// fault shape, Image in Glance's).
pub fn status_of(kind: &RejectionKind) -> StatusCode {
    match kind {
        RejectionKind::Invalid => StatusCode::BAD_REQUEST,
        // Nova's servers controller answers OverQuota with a 403.
        RejectionKind::Forbidden | RejectionKind::OverQuota => StatusCode::FORBIDDEN,
        RejectionKind::NotFound => StatusCode::NOT_FOUND,
        RejectionKind::Conflict | RejectionKind::InvalidState { .. } => StatusCode::CONFLICT,
        RejectionKind::Gone => StatusCode::GONE,
        RejectionKind::OverLimit => StatusCode::PAYLOAD_TOO_LARGE,
        RejectionKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_read_as_json_are_novas() {
        let h = |v: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = v {
                h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            }
            json_content_type(&h)
        };
        assert!(h(None));
        assert!(h(Some("application/json")));
        assert!(h(Some("application/json; charset=UTF-8")));
        assert!(h(Some("text/plain")));
        assert!(h(Some("application/vnd.openstack.compute+json")));
        assert!(!h(Some("application/xml")));
        assert!(!h(Some("multipart/form-data; boundary=x")));
    }

    #[test]
    fn query_pairs_drop_literal_none() {
        let q = without_none(query_pairs(Some(
            "flavor=None&name=web%2D1&status=ACTIVE&status=BUILD&is_public=None&all_tenants",
        )));
        assert_eq!(
            q,
            vec![
                ("name".to_owned(), "web-1".to_owned()),
                ("status".to_owned(), "ACTIVE".to_owned()),
                ("status".to_owned(), "BUILD".to_owned()),
                ("all_tenants".to_owned(), String::new()),
            ]
        );
        assert_eq!(
            query_pairs(Some("a=b+c&d=%zz")),
            vec![
                ("a".to_owned(), "b c".to_owned()),
                ("d".to_owned(), "%zz".to_owned())
            ]
        );
        assert!(query_pairs(None).is_empty());
    }

    #[tokio::test]
    async fn bodies_are_json_or_refused() {
        let req = |ct: Option<&str>, body: &'static str| {
            let mut b = Request::builder();
            if let Some(ct) = ct {
                b = b.header(header::CONTENT_TYPE, ct);
            }
            b.body(axum::body::Body::from(body)).unwrap()
        };
        assert_eq!(
            read_json(req(None, r#"{"a": 1}"#), &()).await,
            Ok(serde_json::json!({"a": 1}))
        );
        assert_eq!(read_json(req(None, " \n"), &()).await, Ok(Value::Null));
        assert_eq!(
            read_json(req(None, "{"), &()).await,
            Err(BodyRefusal::Malformed)
        );
        assert_eq!(
            read_json(req(Some("application/xml"), "{}"), &()).await,
            Err(BodyRefusal::UnsupportedType)
        );
    }
}
