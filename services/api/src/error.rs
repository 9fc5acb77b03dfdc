//! Errors as Nova shows them: `{"<faultName>": {"code": N, "message": "..."}}`
//! (nova/api/openstack/wsgi.py `Fault`), except 401, which in a real cloud
//! comes from keystonemiddleware and has its `{"error": {...}}` shape.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use novalog_schemas::Rejection;
use serde_json::json;

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// An HTTP error with Nova's body. Controllers build these from domain
/// outcomes (validation, policy, not found, the conductor's verdict).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400 `badRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401, keystonemiddleware's shape.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        )
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404 `itemNotFound`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409 `conflictingRequest`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 413 `overLimit`.
    pub fn too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "Request is too large.")
    }

    /// 500 `computeFault`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// 503 `serviceUnavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// The key Nova wraps the body in for this status.
    pub fn fault_name(&self) -> &'static str {
        fault_name(self.status)
    }

    pub fn body(&self) -> serde_json::Value {
        if self.status == StatusCode::UNAUTHORIZED {
            return json!({"error": {
                "code": 401,
                "title": "Unauthorized",
                "message": self.message,
            }});
        }
        json!({ self.fault_name(): {
            "code": self.status.as_u16(),
            "message": self.message,
        }})
    }
}

/// The HTTP status a rejection is answered with (defined beside the
/// request so the Image service, mounted here, maps the same way).
pub use novalog_request::status_of;

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        ApiError::new(status_of(&r.kind), r.message)
    }
}

/// nova/api/openstack/wsgi.py `Fault._fault_names`.
pub fn fault_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 | 429 => "overLimit",
        415 => "badMediaType",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Keystone uri=\"\""),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_use_nova_fault_names() {
        let e = ApiError::bad_request("Invalid input");
        assert_eq!(
            e.body(),
            json!({"badRequest": {"code": 400, "message": "Invalid input"}})
        );
        assert_eq!(ApiError::not_found("x").fault_name(), "itemNotFound");
        assert_eq!(ApiError::conflict("x").fault_name(), "conflictingRequest");
        assert_eq!(ApiError::too_large().fault_name(), "overLimit");
        assert_eq!(
            ApiError::new(StatusCode::NOT_ACCEPTABLE, "x").fault_name(),
            "computeFault"
        );
        assert_eq!(ApiError::unauthorized().body()["error"]["code"], 401);
    }

    #[test]
    fn rejection_kinds_map_to_novas_statuses() {
        let id = uuid::Uuid::nil();
        let cases = [
            (Rejection::invalid("x"), StatusCode::BAD_REQUEST),
            (Rejection::forbidden("x"), StatusCode::FORBIDDEN),
            (Rejection::over_quota("x"), StatusCode::FORBIDDEN),
            (Rejection::not_found("x"), StatusCode::NOT_FOUND),
            (Rejection::conflict("x"), StatusCode::CONFLICT),
            (
                Rejection::invalid_state("vm_state", "stopped", "reboot", &id),
                StatusCode::CONFLICT,
            ),
            (Rejection::gone("x"), StatusCode::GONE),
            (Rejection::over_limit("x"), StatusCode::PAYLOAD_TOO_LARGE),
            (Rejection::internal("x"), StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (rejection, status) in cases {
            let message = rejection.message.clone();
            let e = ApiError::from(rejection);
            assert_eq!(e.status, status, "{message}");
            assert_eq!(e.message, message);
        }
        // Nova's fault names follow from the status.
        assert_eq!(
            ApiError::from(Rejection::invalid_state(
                "vm_state", "stopped", "reboot", &id
            ))
            .fault_name(),
            "conflictingRequest"
        );
        assert_eq!(
            ApiError::from(Rejection::over_quota("x")).fault_name(),
            "forbidden"
        );
    }
}
