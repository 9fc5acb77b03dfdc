//! The version documents at `/`, `/v2` and `/v2.1`
//! (nova/api/openstack/compute/versions.py).

use serde_json::{Value, json};

use crate::microversion::{MAX_VERSION, MIN_VERSION};

const DOCS: &str = "http://docs.openstack.org/";

/// The legacy v2 API's entry: deprecated, no microversions.
const V2_STATUS: &str = "DEPRECATED";
const V2_UPDATED: &str = "2025-07-04T12:00:00Z";

/// `GET /`: every API version.
pub fn index(base: &str) -> Value {
    let base = base.trim_end_matches('/');
    json!({"versions": [
        {
            "id": "v2.0",
            "status": V2_STATUS,
            "version": "",
            "min_version": "",
            "updated": V2_UPDATED,
            "links": [{"rel": "self", "href": format!("{base}/v2/")}],
        },
        {
            "id": "v2.1",
            "status": "CURRENT",
            "version": MAX_VERSION.to_string(),
            "min_version": MIN_VERSION.to_string(),
            "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": format!("{base}/v2.1/")}],
        },
    ]})
}

/// `GET /v2.1`: this version.
pub fn v21(base: &str) -> Value {
    let base = base.trim_end_matches('/');
    json!({"version": {
        "id": "v2.1",
        "status": "CURRENT",
        "version": MAX_VERSION.to_string(),
        "min_version": MIN_VERSION.to_string(),
        "updated": "2013-07-23T11:33:21Z",
        "links": [
            {"rel": "self", "href": format!("{base}/v2.1/")},
            {"rel": "describedby", "type": "text/html", "href": DOCS},
        ],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.compute+json;version=2.1",
        }],
    }})
}

/// `GET /v2[/]`: the legacy v2 API, served by the v2.1 code in Nova's
/// v2-compatible mode.
pub fn v2(base: &str) -> Value {
    let base = base.trim_end_matches('/');
    json!({"version": {
        "id": "v2.0",
        "status": V2_STATUS,
        "version": "",
        "min_version": "",
        "updated": V2_UPDATED,
        "links": [
            {"rel": "self", "href": format!("{base}/v2/")},
            {"rel": "describedby", "type": "text/html", "href": DOCS},
        ],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.compute+json;version=2",
        }],
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_advertise_the_served_range() {
        let doc = index("http://h:8774");
        let v = &doc["versions"][1];
        assert_eq!(v["status"], "CURRENT");
        assert_eq!(v["version"], MAX_VERSION.to_string());
        assert_eq!(v["min_version"], "2.1");
        assert_eq!(v["links"][0]["href"], "http://h:8774/v2.1/");
        assert_eq!(doc["versions"][0]["links"][0]["href"], "http://h:8774/v2/");
        let one = v21("http://h:8774/");
        assert_eq!(one["version"]["id"], "v2.1");
        assert_eq!(one["version"]["links"][0]["href"], "http://h:8774/v2.1/");
        let legacy = v2("http://h:8774/");
        assert_eq!(legacy["version"]["id"], "v2.0");
        assert_eq!(legacy["version"]["status"], "DEPRECATED");
        assert_eq!(legacy["version"]["version"], "");
        assert_eq!(legacy["version"]["links"][0]["href"], "http://h:8774/v2/");
        assert_eq!(
            legacy["version"]["media-types"][0]["type"],
            "application/vnd.openstack.compute+json;version=2"
        );
        assert_eq!(doc["versions"][0]["status"], "DEPRECATED");
    }
}
