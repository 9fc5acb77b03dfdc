//! The identity routes through the whole router, with keystone tokens
//! used on the compute API.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use novalog_runtime::{Config, Shutdown, ShutdownTrigger};
use serde_json::{Value, json};
use tower::ServiceExt;

use novalog_identity::Identity;
use novalog_identity::directory::stable_id;

use crate::app;
use crate::service::{ApiHandle, ApiService};

struct Harness {
    router: Router,
    handle: ApiHandle,
    trigger: ShutdownTrigger,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        cfg.api.listen = "127.0.0.1:0".into();
        cfg.log.namespace = "test.".into();
        cfg.identity.password_hash_rounds = 100;
        assert_eq!(cfg.api.auth_strategy, "keystone", "the default");
        let log = novalog_runtime::backend::open_log(&cfg).await.unwrap();
        let (trigger, shutdown) = Shutdown::new();
        let handle = ApiService::start(&cfg, log, shutdown).await.unwrap();
        Harness {
            router: app::router(handle.app.clone()),
            handle,
            trigger,
            _dir: dir,
        }
    }

    fn identity(&self) -> Arc<Identity> {
        self.handle.app.auth.identity().unwrap().clone()
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "cloud.test:8774");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(
                body.map(|b| Body::from(b.to_string()))
                    .unwrap_or_else(Body::empty),
            )
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `POST /identity/v3/auth/tokens` as keystoneauth sends it.
    async fn password(&self, user: &str, password: &str, scope: Option<Value>) -> Reply {
        let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}}});
        if let Some(s) = scope {
            auth["scope"] = s;
        }
        self.send(
            Method::POST,
            "/identity/v3/auth/tokens",
            &[],
            Some(json!({ "auth": auth })),
        )
        .await
    }

    async fn token(&self, user: &str, project: &str) -> String {
        let scope = json!({"project": {"name": project, "domain": {"name": "Default"}}});
        let r = self.password(user, user, Some(scope)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        subject(&r)
    }

    async fn stop(self) {
        self.trigger.trigger();
        self.handle.join().await.unwrap();
    }
}

fn subject(r: &Reply) -> String {
    r.headers["x-subject-token"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn version_documents_are_keystones() {
    let h = Harness::start().await;
    let r = h.send(Method::GET, "/identity", &[], None).await;
    assert_eq!(r.status, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(r.body["versions"]["values"][0]["id"], "v3.14");
    let r = h.send(Method::GET, "/identity/v3", &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = &r.body["version"];
    assert_eq!(v["status"], "stable");
    assert_eq!(v["links"][0]["href"], "http://cloud.test:8774/identity/v3/");
    assert_eq!(
        v["media-types"][0]["type"],
        "application/vnd.openstack.identity-v3+json"
    );
    h.stop().await;
}

#[tokio::test]
async fn password_token_is_project_scoped_with_a_catalog() {
    let h = Harness::start().await;
    let scope = json!({"project": {"name": "admin", "domain": {"id": "default"}}});
    let r = h.password("admin", "admin", Some(scope)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(subject(&r).starts_with("nv1."));
    let t = &r.body["token"];
    assert_eq!(t["methods"], json!(["password"]));
    assert_eq!(t["user"]["id"], stable_id("user", "admin"));
    assert_eq!(t["user"]["name"], "admin");
    assert_eq!(
        t["user"]["domain"],
        json!({"id": "default", "name": "Default"})
    );
    assert_eq!(t["project"]["id"], stable_id("project", "admin"));
    assert_eq!(t["project"]["name"], "admin");
    assert_eq!(t["is_domain"], false);
    let roles: Vec<&str> = t["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["admin", "member", "reader"]);
    assert_eq!(t["audit_ids"].as_array().unwrap().len(), 1);
    assert!(t["expires_at"].as_str().unwrap().ends_with('Z'));
    let compute = t["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "compute")
        .unwrap();
    assert_eq!(compute["name"], "nova");
    assert_eq!(compute["endpoints"].as_array().unwrap().len(), 3);
    assert_eq!(
        compute["endpoints"][0]["url"],
        "http://cloud.test:8774/v2.1"
    );
    assert_eq!(compute["endpoints"][0]["region"], "RegionOne");
    h.stop().await;
}

#[tokio::test]
async fn unscoped_token_rescopes_to_a_project() {
    let h = Harness::start().await;
    let r = h.password("demo", "demo", Some(json!("unscoped"))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.body["token"].get("project").is_none());
    assert!(r.body["token"].get("catalog").is_none());
    let unscoped = subject(&r);

    let r = h
        .send(
            Method::GET,
            "/identity/v3/auth/projects",
            &[("x-auth-token", &unscoped)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["projects"][0]["name"], "demo");
    assert_eq!(r.body["projects"].as_array().unwrap().len(), 1);

    let rescope = json!({"auth": {
        "identity": {"methods": ["token"], "token": {"id": unscoped}},
        "scope": {"project": {"id": stable_id("project", "demo")}},
    }});
    let r = h
        .send(Method::POST, "/identity/v3/auth/tokens", &[], Some(rescope))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["token"]["project"]["name"], "demo");
    assert_eq!(r.body["token"]["audit_ids"].as_array().unwrap().len(), 2);

    // The unscoped token is not good for compute, the rescoped one is.
    let r2 = h
        .send(
            Method::GET,
            "/v2.1/servers",
            &[("x-auth-token", &unscoped)],
            None,
        )
        .await;
    assert_eq!(r2.status, StatusCode::UNAUTHORIZED);
    let scoped = subject(&r);
    let r2 = h
        .send(
            Method::GET,
            "/v2.1/servers",
            &[("x-auth-token", &scoped)],
            None,
        )
        .await;
    assert_eq!(r2.status, StatusCode::OK, "{}", r2.body);
    h.stop().await;
}

#[tokio::test]
async fn wrong_password_unknown_user_or_project_is_401() {
    let h = Harness::start().await;
    for r in [
        h.password("admin", "wrong", None).await,
        h.password("nobody", "admin", None).await,
        h.password(
            "demo",
            "demo",
            Some(json!({"project": {"name": "nope", "domain": {"id": "default"}}})),
        )
        .await,
        h.password(
            "demo",
            "demo",
            Some(json!({"project": {"name": "admin", "domain": {"id": "default"}}})),
        )
        .await,
    ] {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.body["error"]["code"], 401);
        assert_eq!(r.body["error"]["title"], "Unauthorized");
        assert!(r.headers.get("x-subject-token").is_none());
    }
    let r = h
        .send(
            Method::POST,
            "/identity/v3/auth/tokens",
            &[],
            Some(json!({"nope": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    h.stop().await;
}

#[tokio::test]
async fn validate_token() {
    let h = Harness::start().await;
    let admin = h.token("admin", "admin").await;
    let demo = h.token("demo", "demo").await;
    let get = |caller: &str, subject: &str| {
        let (h, caller, subject) = (&h, caller.to_owned(), subject.to_owned());
        async move {
            let headers = [
                ("x-auth-token", caller.as_str()),
                ("x-subject-token", &subject),
            ];
            h.send(Method::GET, "/identity/v3/auth/tokens", &headers, None)
                .await
        }
    };
    let r = get(&admin, &demo).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["token"]["user"]["name"], "demo");
    assert_eq!(subject(&r), demo);
    assert_eq!(get(&demo, &demo).await.status, StatusCode::OK, "own token");
    assert_eq!(get(&demo, &admin).await.status, StatusCode::FORBIDDEN);
    assert_eq!(get(&admin, "garbage").await.status, StatusCode::NOT_FOUND);
    assert_eq!(get("garbage", &demo).await.status, StatusCode::UNAUTHORIZED);
    let r = h
        .send(
            Method::HEAD,
            "/identity/v3/auth/tokens",
            &[("x-auth-token", &admin), ("x-subject-token", &demo)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    h.stop().await;
}

#[tokio::test]
async fn compute_accepts_keystone_tokens_only() {
    let h = Harness::start().await;
    let demo = h.token("demo", "demo").await;
    let r = h
        .send(
            Method::GET,
            "/v2.1/flavors",
            &[("x-auth-token", &demo)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = h.send(Method::GET, "/v2.1/flavors", &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .send(
            Method::GET,
            "/v2.1/flavors",
            &[("x-auth-token", "admin:admin")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "noauth2 is off");
    h.stop().await;
}

#[tokio::test]
async fn expired_and_tampered_tokens_are_refused() {
    let h = Harness::start().await;
    let identity = h.identity();
    let mut claims = identity
        .validate(&h.token("admin", "admin").await, novalog_identity::now_ms())
        .unwrap();
    claims.issued_at -= 7_200_000;
    claims.expires_at = novalog_identity::now_ms() - 1;
    let expired = identity.sign(&claims);
    let r = h
        .send(
            Method::GET,
            "/v2.1/servers",
            &[("x-auth-token", &expired)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let demo = h.token("demo", "demo").await;
    // Flip one character of the payload.
    let mut bytes = demo.into_bytes();
    bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let r = h
        .send(
            Method::GET,
            "/v2.1/servers",
            &[("x-auth-token", &tampered)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    h.stop().await;
}

#[tokio::test]
async fn projects_and_users_for_openstackclient() {
    let h = Harness::start().await;
    let admin = h.token("admin", "admin").await;
    let demo = h.token("demo", "demo").await;
    let list = |token: &str, uri: &str| {
        let (h, token, uri) = (&h, token.to_owned(), uri.to_owned());
        async move {
            h.send(Method::GET, &uri, &[("x-auth-token", &token)], None)
                .await
        }
    };
    let r = list(&admin, "/identity/v3/projects").await;
    assert_eq!(r.body["projects"].as_array().unwrap().len(), 2);
    let r = list(&admin, "/identity/v3/projects?name=demo").await;
    assert_eq!(r.body["projects"][0]["id"], stable_id("project", "demo"));
    let r = list(&demo, "/identity/v3/projects").await;
    assert_eq!(r.body["projects"].as_array().unwrap().len(), 1);
    let own = format!("/identity/v3/users/{}", stable_id("user", "demo"));
    let r = list(&demo, &own).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["user"]["name"], "demo");
    let other = format!("/identity/v3/users/{}", stable_id("user", "admin"));
    assert_eq!(list(&demo, &other).await.status, StatusCode::FORBIDDEN);
    assert_eq!(list(&admin, &other).await.status, StatusCode::OK);
    let r = list(&admin, "/identity/v3/auth/catalog").await;
    assert_eq!(r.body["catalog"].as_array().unwrap().len(), 3);
    h.stop().await;
}

/// Issue 9: `DELETE /v3/auth/tokens` revokes a token; from the 204 on it
/// is refused on every route of this replica (the other replicas and a
/// restart are in the end-to-end tests).
#[tokio::test]
async fn a_revoked_token_is_refused_from_its_204_on() {
    let h = Harness::start().await;
    let demo = h.token("demo", "demo").await;
    let other_demo = h.token("demo", "demo").await;
    let admin = h.token("admin", "admin").await;
    let revoke = |caller: &str, subject: &str| {
        let (caller, subject) = (caller.to_owned(), subject.to_owned());
        let h = &h;
        async move {
            h.send(
                Method::DELETE,
                "/identity/v3/auth/tokens",
                &[("x-auth-token", &caller), ("x-subject-token", &subject)],
                None,
            )
            .await
        }
    };
    // keystone's identity:revoke_token: an admin or the token's own user.
    let r = revoke(&demo, &admin).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"]["code"], 403);
    let r = revoke(&demo, "nv1.garbage.sig").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["message"], "Could not find token.");

    let r = revoke(&demo, &demo).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(h.identity().revocations.len(), 1);
    let r = h
        .send(
            Method::GET,
            "/v2.1/servers",
            &[("x-auth-token", &demo)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for method in [Method::GET, Method::HEAD] {
        let r = h
            .send(
                method,
                "/identity/v3/auth/tokens",
                &[("x-auth-token", &admin), ("x-subject-token", &demo)],
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    let r = h
        .send(
            Method::GET,
            "/identity/v3/auth/projects",
            &[("x-auth-token", &demo)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["code"], 401);
    let rescope = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": demo}}}});
    let r = h
        .send(Method::POST, "/identity/v3/auth/tokens", &[], Some(rescope))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "no new token from it");
    assert_eq!(revoke(&demo, &demo).await.status, StatusCode::UNAUTHORIZED);

    // The user's other token, and an admin revoking it.
    let r = h
        .send(
            Method::GET,
            "/v2.1/servers",
            &[("x-auth-token", &other_demo)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        revoke(&admin, &other_demo).await.status,
        StatusCode::NO_CONTENT
    );
    let r = h
        .send(
            Method::GET,
            "/v2.1/servers",
            &[("x-auth-token", &other_demo)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    h.stop().await;
}

/// Keystone's own refusals of a body are in keystone's shape.
#[tokio::test]
async fn malformed_auth_bodies_are_refused_in_keystones_shape() {
    let h = Harness::start().await;
    let req = Request::builder()
        .method(Method::POST)
        .uri("/identity/v3/auth/tokens")
        .header("content-type", "application/json")
        .body(Body::from("{\"auth\": "))
        .unwrap();
    let resp = h.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], 400);
    assert_eq!(body["error"]["title"], "Bad Request");
    let r = h
        .send(Method::PATCH, "/identity/v3/auth/tokens", &[], None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.body["error"]["code"], 405);
    h.stop().await;
}
