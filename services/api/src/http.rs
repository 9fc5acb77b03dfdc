//! HTTP plumbing shared by every route: the request id, the JSON body
//! extractor, and the rewrite of errors produced outside the handlers
//! (body limit, method not allowed) into Nova's shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::ApiError;

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

/// Outermost middleware: assigns the request id and puts it on the
/// response, whatever produced the response.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = RequestId::generate();
    req.extensions_mut().insert(id.clone());
    let span = tracing::info_span!("request", request_id = %id.0, method = %req.method(), path = %req.uri().path());
    let mut resp = next.run(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp
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

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Gives Nova's body to the errors that layers outside the handlers answer
/// with bare text: 413 from the body limit, 405 from the router.
pub async fn nova_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if is_json(&resp) {
        return resp;
    }
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::too_large(),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "The method specified is not allowed for this resource.",
        ),
        _ => return resp,
    };
    let (mut parts, _) = resp.into_parts();
    let fresh = error.into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (k, v) in fresh.headers() {
        parts.headers.insert(k, v.clone());
    }
    Response::from_parts(parts, fresh.into_body())
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
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large()
            } else {
                ApiError::bad_request("Malformed request body")
            }
        })?;
        let body: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|_| ApiError::bad_request("Malformed request body"))?
        };
        if let Some(route) = route {
            crate::validation::requests::check(&method, &route, version, &body)?;
        }
        Ok(JsonBody(body))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
