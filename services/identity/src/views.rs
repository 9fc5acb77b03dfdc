//! Keystone's response bodies (keystone/api, keystone/token/provider.py's
//! token data): pure functions of the directory, the claims and the base
//! URL the client reached us at.

use chrono::DateTime;
use serde_json::{Value, json};

use super::Identity;
use super::directory::{DOMAIN_ID, DOMAIN_NAME, Project, Ref, User, stable_id};
use super::token::Claims;

/// The Identity API version this subset speaks.
pub const VERSION: &str = "v3.14";

/// Keystone's time format: `2026-01-01T00:00:00.000000Z`.
pub fn isotime(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn domain() -> Value {
    json!({"id": DOMAIN_ID, "name": DOMAIN_NAME})
}

fn version(base: &str) -> Value {
    json!({
        "id": VERSION,
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/identity/v3/")}],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.identity-v3+json",
        }],
    })
}

/// `GET /identity`.
pub fn versions(base: &str) -> Value {
    json!({"versions": {"values": [version(base)]}})
}

/// `GET /identity/v3`.
pub fn v3(base: &str) -> Value {
    json!({ "version": version(base) })
}

/// The service catalog: compute, image and identity, each at this
/// listener, on the public, internal and admin interfaces.
pub fn catalog(base: &str, region: &str) -> Value {
    let services = [
        ("compute", "nova", format!("{base}/v2.1")),
        ("image", "glance", format!("{base}/image")),
        ("identity", "keystone", format!("{base}/identity/v3")),
    ];
    Value::Array(
        services
            .into_iter()
            .map(|(kind, name, url)| {
                let endpoints: Vec<Value> = ["public", "internal", "admin"]
                    .into_iter()
                    .map(|interface| {
                        json!({
                            "id": stable_id("endpoint", &format!("{kind}/{interface}")),
                            "interface": interface,
                            "region": region,
                            "region_id": region,
                            "url": url,
                        })
                    })
                    .collect();
                json!({
                    "id": stable_id("service", kind),
                    "type": kind,
                    "name": name,
                    "endpoints": endpoints,
                })
            })
            .collect(),
    )
}

pub fn project(p: &Project, base: &str) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "domain_id": DOMAIN_ID,
        "description": "",
        "enabled": true,
        "is_domain": false,
        "parent_id": DOMAIN_ID,
        "tags": [],
        "options": {},
        "links": {"self": format!("{base}/identity/v3/projects/{}", p.id)},
    })
}

pub fn user(u: &User, base: &str) -> Value {
    json!({
        "id": u.id,
        "name": u.name,
        "domain_id": DOMAIN_ID,
        "default_project_id": u.default_project_id,
        "enabled": true,
        "password_expires_at": null,
        "options": {},
        "links": {"self": format!("{base}/identity/v3/users/{}", u.id)},
    })
}

/// The `{"token": ...}` body of an issued or validated token.
pub fn token(identity: &Identity, claims: &Claims, base: &str, with_catalog: bool) -> Value {
    let dir = &identity.directory;
    let user_name = dir
        .user(&Ref::Id(claims.user_id.clone()))
        .map(|u| u.name.clone())
        .unwrap_or_default();
    let mut token = json!({
        "methods": claims.methods,
        "user": {
            "id": claims.user_id,
            "name": user_name,
            "domain": domain(),
            "password_expires_at": null,
        },
        "audit_ids": claims.audit_ids,
        "expires_at": isotime(claims.expires_at),
        "issued_at": isotime(claims.issued_at),
    });
    if let Some(project) = claims
        .project_id
        .as_ref()
        .and_then(|id| dir.project(&Ref::Id(id.clone())))
    {
        token["project"] = json!({"id": project.id, "name": project.name, "domain": domain()});
        token["is_domain"] = json!(false);
        token["roles"] = claims
            .roles
            .iter()
            .map(|name| json!({"id": stable_id("role", name), "name": name}))
            .collect();
        if with_catalog {
            token["catalog"] = catalog(base, &identity.region);
        }
    }
    json!({ "token": token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_points_back_at_the_listener() {
        let c = catalog("http://h:8774", "RegionOne");
        let types: Vec<&str> = c
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, vec!["compute", "image", "identity"]);
        let compute = &c[0];
        assert_eq!(compute["name"], "nova");
        let interfaces: Vec<&str> = compute["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["interface"].as_str().unwrap())
            .collect();
        assert_eq!(interfaces, vec!["public", "internal", "admin"]);
        for e in compute["endpoints"].as_array().unwrap() {
            assert_eq!(e["url"], "http://h:8774/v2.1");
            assert_eq!(e["region_id"], "RegionOne");
        }
        assert_eq!(c[1]["endpoints"][0]["url"], "http://h:8774/image");
        assert_eq!(c[2]["endpoints"][2]["url"], "http://h:8774/identity/v3");
    }

    #[test]
    fn times_have_microseconds() {
        assert_eq!(isotime(1_500), "1970-01-01T00:00:01.500000Z");
    }
}
