//! Keystone's domain-scoped tokens, a user's own password change, grants
//! inherited to a domain's projects (OS-INHERIT) and list filters and
//! paging, through the whole router: each write a record on the log,
//! keystone's shapes and errors, and what reaches tokens already issued.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use novalog_runtime::{Config, Shutdown, ShutdownTrigger};
use serde_json::{Value, json};
use tower::ServiceExt;

use novalog_identity::directory::stable_id;

use crate::app;
use crate::service::{ApiHandle, ApiService};

struct Harness {
    router: Router,
    handle: ApiHandle,
    trigger: ShutdownTrigger,
    _dir: tempfile::TempDir,
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    body: Value,
    token: Option<String>,
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
        cfg.identity.password_hash_rounds = 10;
        cfg.identity.token_secret = "k".into();
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

    async fn stop(self) {
        self.trigger.trigger();
        self.handle.join().await.unwrap();
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
        let uri = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/identity/v3/{path}")
        };
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "cloud.test:8774");
        if !token.is_empty() {
            req = req.header("x-auth-token", token);
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
        let token = resp
            .headers()
            .get("x-subject-token")
            .map(|t| t.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            token,
        }
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    async fn status(&self, method: Method, path: &str, token: &str) -> StatusCode {
        self.call(method, path, token, None).await.status
    }

    /// A password token for `user` with `scope` (none: the default).
    async fn auth(&self, user: &str, password: &str, scope: Option<Value>) -> Reply {
        let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}}});
        if let Some(s) = scope {
            auth["scope"] = s;
        }
        self.call(
            Method::POST,
            "auth/tokens",
            "",
            Some(json!({ "auth": auth })),
        )
        .await
    }

    async fn token(&self, user: &str, password: &str, scope: Value) -> String {
        let r = self.auth(user, password, Some(scope)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{user}: {}", r.body);
        r.token.unwrap()
    }

    async fn admin(&self) -> String {
        self.token("admin", "admin", project("admin")).await
    }

    async fn create(&self, token: &str, path: &str, key: &str, body: Value) -> Value {
        let r = self
            .call(Method::POST, path, token, Some(json!({ key: body })))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.body);
        r.body[key].clone()
    }

    /// A new user with a password and no role anywhere; its id.
    async fn user(&self, admin: &str, name: &str) -> String {
        let u = self
            .create(
                admin,
                "users",
                "user",
                json!({"name": name, "password": "pw"}),
            )
            .await;
        u["id"].as_str().unwrap().to_owned()
    }
}

fn project(name: &str) -> Value {
    json!({"project": {"name": name, "domain": {"id": "default"}}})
}

fn domain() -> Value {
    json!({"domain": {"name": "Default"}})
}

/// Keystone's error body: `{"error": {"code", "title", "message"}}`.
fn assert_error(r: &Reply, status: StatusCode, message: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["error"]["code"], status.as_u16());
    assert_eq!(r.body["error"]["title"], status.canonical_reason().unwrap());
    let m = r.body["error"]["message"].as_str().unwrap();
    assert!(m.contains(message), "{m:?} lacks {message:?}");
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_password_change_checks_the_original_and_revokes_the_users_tokens() {
    let h = Harness::start().await;
    let admin = h.admin().await;
    let uid = h.user(&admin, "carol").await;
    let demo = stable_id("project", "demo");
    let member = stable_id("role", "member");
    assert_eq!(
        h.status(
            Method::PUT,
            &format!("projects/{demo}/users/{uid}/roles/{member}"),
            &admin
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let old = h.token("carol", "pw", project("demo")).await;
    let unscoped = h.token("carol", "pw", json!("unscoped")).await;
    let path = format!("users/{uid}/password");
    let change = |original: &str, new: &str| json!({"user": {"original_password": original, "password": new}});

    // Keystone's checks: the body's schema, the user, the original
    // password; no token is needed (the original password is the proof).
    let r = h
        .call(
            Method::POST,
            &path,
            "",
            Some(json!({"user": {"password": "x"}})),
        )
        .await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "'original_password' is a required property",
    );
    let r = h
        .call(
            Method::POST,
            "users/nope/password",
            "",
            Some(change("pw", "new")),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "Could not find user: nope.");
    let r = h
        .call(Method::POST, &path, "", Some(change("wrong", "new")))
        .await;
    assert_error(
        &r,
        StatusCode::UNAUTHORIZED,
        "Error when changing user password: Invalid user / password",
    );
    assert_eq!(
        h.get(&format!("users/{uid}"), &old).await.status,
        StatusCode::OK,
        "a refused change revokes nothing"
    );

    let r = h
        .call(Method::POST, &path, "", Some(change("pw", "s3cret")))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // Every token the user held is gone, scoped or not, on every route.
    for t in [&old, &unscoped] {
        assert_eq!(
            h.get(&format!("users/{uid}"), t).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = h.call(Method::GET, "/v2.1/servers", &old, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        h.auth("carol", "pw", Some(project("demo"))).await.status,
        StatusCode::UNAUTHORIZED
    );
    let new = h.token("carol", "s3cret", project("demo")).await;
    assert_eq!(
        h.get(&format!("users/{uid}"), &new).await.status,
        StatusCode::OK
    );
    // Other users' tokens are untouched.
    assert_eq!(h.get("users", &admin).await.status, StatusCode::OK);
    // An admin setting the password through PATCH revokes as keystone does.
    let r = h
        .call(
            Method::PATCH,
            &format!("users/{uid}"),
            &admin,
            Some(json!({"user": {"password": "third"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        h.get(&format!("users/{uid}"), &new).await.status,
        StatusCode::UNAUTHORIZED
    );
    h.stop().await;
}

#[tokio::test]
async fn domain_scoped_tokens_carry_the_domains_roles_and_read_it() {
    let h = Harness::start().await;
    let admin = h.admin().await;
    let admin_id = stable_id("user", "admin");
    // No role on the domain yet: no domain-scoped token.
    let r = h.auth("admin", "admin", Some(domain())).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "has no access to domain");
    let r = h
        .auth("admin", "admin", Some(json!({"domain": {"name": "Nope"}})))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .auth(
            "admin",
            "admin",
            Some(json!({"domain": {"id": "default"}, "project": {"id": "x"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let admin_role = stable_id("role", "admin");
    let grant = format!("domains/default/users/{admin_id}/roles/{admin_role}");
    assert_eq!(
        h.status(Method::PUT, &grant, &admin).await,
        StatusCode::NO_CONTENT
    );
    let r = h.auth("admin", "admin", Some(domain())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let t = &r.body["token"];
    assert_eq!(t["domain"], json!({"id": "default", "name": "Default"}));
    assert!(t.get("project").is_none());
    let roles: Vec<&str> = t["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["admin", "member", "reader"]);
    assert!(t["catalog"].is_array());
    let dom = r.token.unwrap();
    // The admin API reads and writes with it (admin on the domain).
    let r = h.get("projects", &dom).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(ids(&r.body["projects"]).contains(&stable_id("project", "demo")));
    let p = h
        .create(&dom, "projects", "project", json!({"name": "in-domain"}))
        .await;
    assert_eq!(p["domain_id"], "default");
    // The domains the user may scope to.
    let r = h.get("auth/domains", &admin).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(ids(&r.body["domains"]), ["default"]);
    let r = h.get("auth/system", &admin).await;
    assert_eq!((r.status, &r.body["system"]), (StatusCode::OK, &json!([])));
    assert_eq!(
        h.get("auth/domains", "").await.status,
        StatusCode::UNAUTHORIZED
    );
    // Compute needs a project: a domain-scoped token gets no server list.
    assert_eq!(
        h.status(Method::GET, "/v2.1/servers", &dom).await,
        StatusCode::UNAUTHORIZED
    );
    // Revoking the grant ends the token at once.
    assert_eq!(
        h.status(Method::DELETE, &grant, &admin).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.get("projects", &dom).await.status,
        StatusCode::UNAUTHORIZED
    );

    // A domain reader reads its domain's projects and users, and may not
    // change them (keystone's `role:reader and domain_id:...`).
    let uid = h.user(&admin, "dora").await;
    let reader = stable_id("role", "reader");
    assert_eq!(
        h.status(
            Method::PUT,
            &format!("domains/default/users/{uid}/roles/{reader}"),
            &admin
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let dr = h.token("dora", "pw", domain()).await;
    let r = h.get("projects", &dr).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(ids(&r.body["projects"]).contains(&stable_id("project", "admin")));
    let r = h.get("users?name=admin", &dr).await;
    assert_eq!(
        (r.status, ids(&r.body["users"])),
        (StatusCode::OK, vec![admin_id.clone()])
    );
    assert_eq!(
        h.status(Method::GET, &format!("users/{admin_id}"), &dr)
            .await,
        StatusCode::OK
    );
    let r = h
        .call(
            Method::POST,
            "projects",
            &dr,
            Some(json!({"project": {"name": "no"}})),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "identity:create_project");
    assert_eq!(h.get("domains", &dr).await.status, StatusCode::FORBIDDEN);
    h.stop().await;
}

#[tokio::test]
async fn grants_inherited_to_a_domains_projects_give_roles_on_each() {
    let h = Harness::start().await;
    let admin = h.admin().await;
    let uid = h.user(&admin, "ivy").await;
    let member = stable_id("role", "member");
    let inherited =
        format!("OS-INHERIT/domains/default/users/{uid}/roles/{member}/inherited_to_projects");
    // Nothing yet: 404 on check, no project to scope to.
    let r = h.get(&inherited, &admin).await;
    assert_error(&r, StatusCode::NOT_FOUND, "Could not find role assignment");
    assert_eq!(
        h.auth("ivy", "pw", Some(project("demo"))).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Keystone's policy: admin only; and every part must exist.
    let demo_user = h.token("demo", "demo", project("demo")).await;
    let r = h.call(Method::PUT, &inherited, &demo_user, None).await;
    assert_error(&r, StatusCode::FORBIDDEN, "identity:create_grant");
    let r = h
        .call(
            Method::PUT,
            &format!("OS-INHERIT/domains/nope/users/{uid}/roles/{member}/inherited_to_projects"),
            &admin,
            None,
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "Could not find domain: nope.");

    assert_eq!(
        h.status(Method::PUT, &inherited, &admin).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.status(Method::HEAD, &inherited, &admin).await,
        StatusCode::NO_CONTENT
    );
    let r = h
        .get(
            &format!("OS-INHERIT/domains/default/users/{uid}/roles/inherited_to_projects"),
            &admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(ids(&r.body["roles"]), std::slice::from_ref(&member));
    // Not a grant on the domain itself.
    let r = h
        .get(&format!("domains/default/users/{uid}/roles"), &admin)
        .await;
    assert_eq!(r.body["roles"], json!([]));
    assert_eq!(
        h.auth("ivy", "pw", Some(domain())).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Every project of the domain, one made after the grant too.
    let t = h.token("ivy", "pw", project("demo")).await;
    let p = h
        .create(&admin, "projects", "project", json!({"name": "later"}))
        .await;
    let later = p["id"].as_str().unwrap().to_owned();
    let r = h.auth("ivy", "pw", Some(project("later"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = h.get("auth/projects", &t).await;
    let mine = ids(&r.body["projects"]);
    assert!(
        mine.contains(&later) && mine.contains(&stable_id("project", "demo")),
        "{mine:?}"
    );

    // Role assignments: the grant as keystone shows it, and under
    // `effective` on each project.
    let r = h
        .get(&format!("role_assignments?user.id={uid}"), &admin)
        .await;
    let a = &r.body["role_assignments"];
    assert_eq!(a.as_array().unwrap().len(), 1, "{a}");
    assert_eq!(
        a[0]["scope"],
        json!({"domain": {"id": "default"}, "OS-INHERIT:inherited_to": "projects"})
    );
    assert!(
        a[0]["links"]["assignment"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/identity/v3/{inherited}"))
    );
    let r = h
        .get(
            "role_assignments?scope.OS-INHERIT:inherited_to=projects",
            &admin,
        )
        .await;
    assert_eq!(r.body["role_assignments"].as_array().unwrap().len(), 1);
    let r = h
        .get(
            &format!("role_assignments?effective&user.id={uid}&scope.project.id={later}"),
            &admin,
        )
        .await;
    let a = r.body["role_assignments"].as_array().unwrap().clone();
    let roles: Vec<&str> = a
        .iter()
        .map(|x| x["role"]["id"].as_str().unwrap())
        .collect();
    assert!(roles.contains(&member.as_str()), "{a:?}");
    assert!(
        roles.contains(&stable_id("role", "reader").as_str()),
        "implied: {a:?}"
    );
    assert!(
        a.iter()
            .all(|x| x["scope"] == json!({"project": {"id": later}}))
    );

    // Revoked: gone from the tokens already issued.
    assert_eq!(
        h.status(Method::DELETE, &inherited, &admin).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.get("auth/projects", &t).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.status(Method::DELETE, &inherited, &admin).await,
        StatusCode::NOT_FOUND
    );
    h.stop().await;
}

#[tokio::test]
async fn lists_filter_inexactly_and_page_with_limit_and_marker() {
    let h = Harness::start().await;
    let admin = h.admin().await;
    for name in ["web-1", "Web-2", "db-1"] {
        h.create(&admin, "projects", "project", json!({"name": name}))
            .await;
    }
    let names = |r: &Reply, key: &str| -> Vec<String> {
        let mut n: Vec<String> = r.body[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    let r = h.get("projects?name__contains=web", &admin).await;
    assert_eq!(names(&r, "projects"), ["web-1"]);
    let r = h.get("projects?name__icontains=WEB", &admin).await;
    assert_eq!(names(&r, "projects"), ["Web-2", "web-1"]);
    let r = h
        .get("projects?name__istartswith=web&name__endswith=2", &admin)
        .await;
    assert_eq!(names(&r, "projects"), ["Web-2"]);
    let r = h.get("projects?enabled=false", &admin).await;
    assert_eq!(r.body["projects"], json!([]));
    let r = h.get("users?name__startswith=ad", &admin).await;
    assert_eq!(names(&r, "users"), ["admin"]);
    let r = h.get("roles?name__iendswith=ADER", &admin).await;
    assert_eq!(names(&r, "roles"), ["reader"]);
    let r = h.get("domains?name__icontains=def", &admin).await;
    assert_eq!(names(&r, "domains"), ["Default"]);

    // Paging: ids in order, a cut page marked truncated with its next.
    let all = ids(&h.get("projects", &admin).await.body["projects"]);
    assert!(all.len() >= 5);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted);
    let r = h.get("projects?limit=2", &admin).await;
    assert_eq!(ids(&r.body["projects"]), all[..2]);
    assert_eq!(r.body["truncated"], true);
    let next = r.body["links"]["next"].as_str().unwrap().to_owned();
    assert!(next.contains(&format!("marker={}", all[1])), "{next}");
    let path = next.split("/identity/v3/").nth(1).unwrap();
    let r = h.get(path, &admin).await;
    assert_eq!(ids(&r.body["projects"]), all[2..4]);
    let r = h
        .get(&format!("projects?marker={}", all[all.len() - 2]), &admin)
        .await;
    assert_eq!(ids(&r.body["projects"]), all[all.len() - 1..]);
    assert!(r.body.get("truncated").is_none());
    assert_eq!(r.body["links"]["next"], Value::Null);
    let r = h.get("users?limit=x", &admin).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "limit");
    h.stop().await;
}
