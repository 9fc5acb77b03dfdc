//! The version documents at `/` and `/v2.1`
//! (nova/api/openstack/compute/versions.py).

use serde_json::{Value, json};

use crate::microversion::{MAX_VERSION, MIN_VERSION};

const DOCS: &str = "http://docs.openstack.org/";

/// `GET /`: every API version.
pub fn index(base: &str) -> Value {
    let base = base.trim_end_matches('/');
    json!({"versions": [
        {
            "id": "v2.0",
            "status": "SUPPORTED",
            "version": "",
            "min_version": "",
            "updated": "2011-01-21T11:33:21Z",
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
    }
}
