//! Keystone's response bodies (keystone/api, keystone/token/provider.py's
//! token data): pure functions of the directory, the claims and the base
//! URL the client reached us at.

use chrono::DateTime;
use serde_json::{Value, json};

use super::Identity;
use novalog_schemas::identity::{
    ApplicationCredential, IdentityDomain, IdentityGroup, IdentityProject, IdentityRole,
    IdentityUser,
};

use super::directory::{DOMAIN_ID, DOMAIN_NAME, View, stable_id};
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

fn default_domain() -> Value {
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

fn link(base: &str, path: &str) -> Value {
    json!({"self": format!("{base}/identity/v3/{path}")})
}

/// A collection's `links`.
pub fn list_links(base: &str, path: &str) -> Value {
    json!({"self": format!("{base}/identity/v3/{path}"), "previous": null, "next": null})
}

pub fn domain(d: &IdentityDomain, base: &str) -> Value {
    json!({
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "enabled": d.enabled,
        "tags": [],
        "options": {},
        "links": link(base, &format!("domains/{}", d.id)),
    })
}

pub fn project(p: &IdentityProject, base: &str) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "domain_id": p.domain_id,
        "description": p.description,
        "enabled": p.enabled,
        "is_domain": false,
        "parent_id": p.domain_id,
        "tags": p.tags,
        "options": {},
        "links": link(base, &format!("projects/{}", p.id)),
    })
}

/// Keystone shows `default_project_id`, `description` and `email` only
/// when set.
pub fn user(u: &IdentityUser, base: &str) -> Value {
    let mut v = json!({
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "password_expires_at": null,
        "options": {},
        "links": link(base, &format!("users/{}", u.id)),
    });
    for (k, x) in [
        ("default_project_id", &u.default_project_id),
        ("description", &u.description),
        ("email", &u.email),
    ] {
        if !x.is_empty() {
            v[k] = json!(x);
        }
    }
    v
}

pub fn group(g: &IdentityGroup, base: &str) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "domain_id": g.domain_id,
        "description": g.description,
        "links": link(base, &format!("groups/{}", g.id)),
    })
}

pub fn role(r: &IdentityRole, base: &str) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "domain_id": null,
        "description": r.description,
        "options": {},
        "links": link(base, &format!("roles/{}", r.id)),
    })
}

/// An application credential; its secret only in the answer that
/// created it.
pub fn app_cred(view: &View, a: &ApplicationCredential, base: &str, secret: Option<&str>) -> Value {
    let roles: Vec<Value> = a
        .role_ids
        .iter()
        .filter_map(|id| view.roles.get(id))
        .map(|r| json!({"id": r.id, "name": r.name, "domain_id": null}))
        .collect();
    let mut v = json!({
        "id": a.id,
        "name": a.name,
        "description": a.description,
        "user_id": a.user_id,
        "project_id": a.project_id,
        "roles": roles,
        "expires_at": (a.expires_at_ms != 0).then(|| isotime(a.expires_at_ms)),
        "unrestricted": a.unrestricted,
        "access_rules": [],
        "links": link(base, &format!("users/{}/application_credentials/{}", a.user_id, a.id)),
    });
    if let Some(s) = secret {
        v["secret"] = json!(s);
    }
    v
}

/// The `{"token": ...}` body of an issued or validated token.
pub fn token(identity: &Identity, claims: &Claims, base: &str, with_catalog: bool) -> Value {
    let view = identity.directory.view();
    let user = view.users.get(&claims.user_id);
    let user_domain = user
        .and_then(|u| view.domains.get(&u.domain_id))
        .map(|d| json!({"id": d.id, "name": d.name}))
        .unwrap_or_else(default_domain);
    let mut token = json!({
        "methods": claims.methods,
        "user": {
            "id": claims.user_id,
            "name": user.map(|u| u.name.clone()).unwrap_or_default(),
            "domain": user_domain,
            "password_expires_at": null,
        },
        "audit_ids": claims.audit_ids,
        "expires_at": isotime(claims.expires_at),
        "issued_at": isotime(claims.issued_at),
    });
    let roles = |view: &View| -> Value {
        claims
            .roles
            .iter()
            .map(|name| {
                let id = view
                    .role_by_name(name)
                    .map(|r| r.id.clone())
                    .unwrap_or_else(|| stable_id("role", name));
                json!({"id": id, "name": name})
            })
            .collect()
    };
    if let Some(project) = claims
        .project_id
        .as_ref()
        .and_then(|id| view.projects.get(id))
    {
        let domain = view
            .domains
            .get(&project.domain_id)
            .map(|d| json!({"id": d.id, "name": d.name}))
            .unwrap_or_else(default_domain);
        token["project"] = json!({"id": project.id, "name": project.name, "domain": domain});
        token["is_domain"] = json!(false);
        token["roles"] = roles(&view);
        if with_catalog {
            token["catalog"] = catalog(base, &identity.region);
        }
    } else if let Some(d) = claims
        .domain_id
        .as_ref()
        .and_then(|id| view.domains.get(id))
    {
        token["domain"] = json!({"id": d.id, "name": d.name});
        token["roles"] = roles(&view);
        if with_catalog {
            token["catalog"] = catalog(base, &identity.region);
        }
    }
    if let Some(a) = claims
        .app_cred
        .as_ref()
        .and_then(|id| view.app_creds.get(id))
    {
        token["application_credential"] =
            json!({"id": a.id, "name": a.name, "restricted": !a.unrestricted});
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
