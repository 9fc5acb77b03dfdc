//! Response bodies in Nova's shapes (nova/api/openstack/compute/views/*).
//! Pure functions of the projection's values, the request's microversion
//! and the caller; no I/O.

pub mod flavors;
pub mod servers;
pub mod versions;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// Builds the `links` of resources from the URL the client used to reach
/// us (Nova's `request.application_url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// `scheme://host[:port]`, without a trailing slash.
    pub base: String,
}

impl Links {
    pub fn new(base: impl Into<String>) -> Self {
        let base = base.into();
        Links {
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// `{base}/v2.1/{collection}/{id}`.
    pub fn self_href(&self, collection: &str, id: &str) -> String {
        format!("{}/v2.1/{collection}/{id}", self.base)
    }

    /// `{base}/{collection}/{id}`, the version-independent link.
    pub fn bookmark_href(&self, collection: &str, id: &str) -> String {
        format!("{}/{collection}/{id}", self.base)
    }

    /// `[self, bookmark]`, as every resource carries.
    pub fn pair(&self, collection: &str, id: &str) -> Value {
        json!([
            {"rel": "self", "href": self.self_href(collection, id)},
            {"rel": "bookmark", "href": self.bookmark_href(collection, id)},
        ])
    }

    /// `[bookmark]` only, as a server's image and flavor carry.
    pub fn bookmark(&self, collection: &str, id: &str) -> Value {
        json!([{"rel": "bookmark", "href": self.bookmark_href(collection, id)}])
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Links {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let novalog_request::BaseUrl(base) =
            novalog_request::BaseUrl::from_request_parts(parts, state).await?;
        Ok(Links::new(base))
    }
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Nova's `utils.isotime`: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn isotime(ms: i64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// How Nova prints `OS-SRV-USG:*` timestamps: a naive datetime with
/// microseconds, `YYYY-MM-DDTHH:MM:SS.ffffff`.
pub fn usage_time(ms: i64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_novas_formats() {
        let ms = 1_378_180_892_880; // 2013-09-03T04:01:32.880Z
        assert_eq!(isotime(ms), "2013-09-03T04:01:32Z");
        assert_eq!(usage_time(ms), "2013-09-03T04:01:32.880000");
    }

    #[test]
    fn links_have_self_and_bookmark() {
        let l = Links::new("http://cloud:8774/");
        assert_eq!(
            l.self_href("servers", "x"),
            "http://cloud:8774/v2.1/servers/x"
        );
        assert_eq!(
            l.pair("flavors", "1"),
            json!([
                {"rel": "self", "href": "http://cloud:8774/v2.1/flavors/1"},
                {"rel": "bookmark", "href": "http://cloud:8774/flavors/1"},
            ])
        );
    }
}
