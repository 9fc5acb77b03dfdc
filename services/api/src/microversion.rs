//! Compute API microversions: parsing the request headers, negotiating
//! against the range this build implements, echoing the chosen version.
//!
//! As in Nova: `OpenStack-API-Version: compute X.Y` wins over the legacy
//! `X-OpenStack-Nova-API-Version: X.Y`; no header means 2.1; `latest` means
//! [`MAX_VERSION`]; a malformed version is 400, one outside the range 406.

use std::fmt;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// A microversion, ordered as Nova orders them (2.9 < 2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        ApiVersion { major, minor }
    }

    /// Parses `X.Y` exactly as Nova does (`^([1-9]\d*)\.([1-9]\d*|0)$`).
    pub fn parse(s: &str) -> Option<Self> {
        let (major, minor) = s.split_once('.')?;
        let number = |p: &str, zero_ok: bool| -> Option<u32> {
            let ok = !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!p.starts_with('0') || (zero_ok && p == "0"));
            if ok { p.parse().ok() } else { None }
        };
        Some(ApiVersion::new(number(major, false)?, number(minor, true)?))
    }

    /// What the legacy `/v2` endpoint serves at: the v2.1 API in Nova's
    /// v2-compatible mode, without microversions.
    pub const LEGACY_V2: ApiVersion = ApiVersion::new(2, 0);

    /// Whether this request came through the legacy `/v2` endpoint.
    pub fn is_legacy_v2(self) -> bool {
        self == Self::LEGACY_V2
    }

    /// True when this request's version is at least `major.minor`
    /// (Nova's `api_version_request.is_supported`).
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= ApiVersion::new(major, minor)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The oldest microversion served.
pub const MIN_VERSION: ApiVersion = ApiVersion::new(2, 1);
/// The newest microversion served: what openstacksdk and openstackclient
/// ask for. Every version up to it has its request and response shapes on
/// the routes this crate serves, or answers as Nova does where it needs a
/// service Novalog lacks (volumes, networks, shares): docs/microversions.md
/// gives each version's status. Clients negotiate min(theirs, ours) and
/// then rely on every change up to it.
pub const MAX_VERSION: ApiVersion = ApiVersion::new(2, 100);

pub const HEADER: &str = "openstack-api-version";
pub const LEGACY_HEADER: &str = "x-openstack-nova-api-version";

/// What the request asked for, before negotiation.
fn requested(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(HEADER) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut words = item.split_whitespace();
            if let (Some(service), Some(version)) = (words.next(), words.next())
                && service.eq_ignore_ascii_case("compute")
            {
                return Some(version.to_owned());
            }
        }
    }
    headers
        .get(LEGACY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

/// The version this request is served at, or Nova's error for it.
pub fn negotiate(headers: &HeaderMap) -> Result<ApiVersion, ApiError> {
    let Some(requested) = requested(headers) else {
        return Ok(MIN_VERSION);
    };
    if requested.eq_ignore_ascii_case("latest") {
        return Ok(MAX_VERSION);
    }
    let version = ApiVersion::parse(&requested).ok_or_else(|| {
        ApiError::bad_request(format!(
            "API Version String {requested} is of invalid format. Must be of format MajorNum.MinorNum."
        ))
    })?;
    if version < MIN_VERSION || version > MAX_VERSION {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "Version {version} is not supported by the API. Minimum is {MIN_VERSION} and maximum is {MAX_VERSION}."
            ),
        ));
    }
    Ok(version)
}

/// Adds the version headers Nova puts on every versioned response.
pub fn echo(headers: &mut HeaderMap, version: ApiVersion) {
    if let Ok(v) = HeaderValue::from_str(&format!("compute {version}")) {
        headers.insert(HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&version.to_string()) {
        headers.insert(LEGACY_HEADER, v);
    }
    headers.append(
        axum::http::header::VARY,
        HeaderValue::from_static("OpenStack-API-Version"),
    );
    headers.append(
        axum::http::header::VARY,
        HeaderValue::from_static("X-OpenStack-Nova-API-Version"),
    );
}

/// Middleware for everything under `/v2.1`: negotiates, stores the
/// [`ApiVersion`] for the handlers, echoes it on the response.
pub async fn layer(mut req: Request, next: Next) -> Response {
    match negotiate(req.headers()) {
        Ok(version) => {
            req.extensions_mut().insert(version);
            let mut resp = next.run(req).await;
            echo(resp.headers_mut(), version);
            resp
        }
        Err(e) => e.into_response(),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApiVersion {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ApiVersion>()
            .copied()
            .unwrap_or(MIN_VERSION))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn parses_like_nova() {
        assert_eq!(ApiVersion::parse("2.1"), Some(ApiVersion::new(2, 1)));
        assert_eq!(ApiVersion::parse("2.10"), Some(ApiVersion::new(2, 10)));
        assert_eq!(ApiVersion::parse("3.0"), Some(ApiVersion::new(3, 0)));
        for bad in [
            "2", "2.", ".1", "2.01", "02.1", "0.1", "2.1.1", "a.b", "2.-1", "",
        ] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad:?}");
        }
        assert!(ApiVersion::new(2, 9) < ApiVersion::new(2, 10));
        assert!(ApiVersion::new(2, 47).at_least(2, 9));
        assert!(!ApiVersion::new(2, 1).at_least(2, 2));
    }

    #[test]
    fn no_header_is_the_minimum_and_latest_the_maximum() {
        assert_eq!(negotiate(&HeaderMap::new()), Ok(MIN_VERSION));
        assert_eq!(
            negotiate(&headers(&[(HEADER, "compute latest")])),
            Ok(MAX_VERSION)
        );
        assert_eq!(
            negotiate(&headers(&[(LEGACY_HEADER, "latest")])),
            Ok(MAX_VERSION)
        );
        assert_eq!(
            negotiate(&headers(&[(HEADER, "compute 2.1")])),
            Ok(MIN_VERSION)
        );
    }

    #[test]
    fn new_header_wins_and_other_services_are_ignored() {
        let h = headers(&[
            (HEADER, "placement 1.2, compute 2.1"),
            (LEGACY_HEADER, "9.9"),
        ]);
        assert_eq!(negotiate(&h), Ok(MIN_VERSION));
        // A header for another service only: the legacy header decides.
        let h = headers(&[(HEADER, "placement 1.2"), (LEGACY_HEADER, "2.1")]);
        assert_eq!(negotiate(&h), Ok(MIN_VERSION));
    }

    #[test]
    fn out_of_range_is_406_and_garbage_is_400() {
        let e = negotiate(&headers(&[(HEADER, "compute 2.999")])).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(
            e.message,
            format!(
                "Version 2.999 is not supported by the API. Minimum is 2.1 and maximum is {MAX_VERSION}."
            )
        );
        let e = negotiate(&headers(&[(LEGACY_HEADER, "1.0")])).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_ACCEPTABLE);
        let e = negotiate(&headers(&[(HEADER, "compute two")])).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message.contains("two is of invalid format"),
            "{}",
            e.message
        );
    }

    #[test]
    fn echo_sets_both_headers_and_vary() {
        let mut h = HeaderMap::new();
        echo(&mut h, ApiVersion::new(2, 1));
        assert_eq!(h[HEADER], "compute 2.1");
        assert_eq!(h[LEGACY_HEADER], "2.1");
        let vary: Vec<_> = h.get_all("vary").iter().collect();
        assert_eq!(vary.len(), 2);
    }
}
