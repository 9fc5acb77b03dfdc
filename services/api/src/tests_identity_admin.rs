//! Keystone's admin API through the whole router: domains, projects,
//! users, groups, roles, grants, role assignments and application
//! credentials, each a record on the log folded by this API's projection
//! (so it outlives a restart), with keystone's shapes, errors and default
//! policy, and changes that reach tokens already issued.

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
    dir: tempfile::TempDir,
    /// Kept across a restart, as the log outlives an API process.
    log: std::sync::Arc<dyn novalog_log::EventLog>,
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    body: Value,
    token: Option<String>,
}

const V3: &str = "/identity/v3";

impl Harness {
    async fn start() -> Harness {
        Self::start_in(tempfile::tempdir().unwrap(), None).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        log: Option<std::sync::Arc<dyn novalog_log::EventLog>>,
    ) -> Harness {
        let mut cfg = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        cfg.api.listen = "127.0.0.1:0".into();
        cfg.log.namespace = "test.".into();
        cfg.identity.password_hash_rounds = 10;
        cfg.identity.token_secret = "k".into();
        let log = match log {
            Some(l) => l,
            None => novalog_runtime::backend::open_log(&cfg).await.unwrap(),
        };
        let (trigger, shutdown) = Shutdown::new();
        let handle = ApiService::start(&cfg, log.clone(), shutdown)
            .await
            .unwrap();
        Harness {
            router: app::router(handle.app.clone()),
            handle,
            trigger,
            dir,
            log,
        }
    }

    /// Stops and starts again on the same data directory and log: the
    /// projection store is reopened and loaded as in a new process.
    async fn restart(self) -> Harness {
        let Harness {
            router,
            handle,
            trigger,
            dir,
            log,
        } = self;
        drop(router);
        trigger.trigger();
        handle.join().await.unwrap();
        Self::start_in(dir, Some(log)).await
    }

    async fn stop(self) {
        self.trigger.trigger();
        self.handle.join().await.unwrap();
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
        let uri = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("{V3}/{path}")
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

    async fn auth(&self, identity: Value, scope: Option<Value>) -> Reply {
        let mut auth = json!({ "identity": identity });
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

    async fn password(&self, user: &str, password: &str, project: Option<&str>) -> Reply {
        let scope = project.map(|p| json!({"project": {"name": p, "domain": {"id": "default"}}}));
        self.auth(
            json!({"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": "Default"}, "password": password}}}),
            scope,
        )
        .await
    }

    async fn token(&self, user: &str, password: &str, project: &str) -> String {
        let r = self.password(user, password, Some(project)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.token.unwrap()
    }

    async fn admin(&self) -> String {
        self.token("admin", "admin", "admin").await
    }

    /// Creates and returns the object under `key`, asserting 201.
    async fn create(&self, token: &str, path: &str, key: &str, body: Value) -> Value {
        let r = self
            .call(Method::POST, path, token, Some(json!({ key: body })))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.body);
        r.body[key].clone()
    }

    async fn status(&self, method: Method, path: &str, token: &str) -> StatusCode {
        self.call(method, path, token, None).await.status
    }
}

/// Keystone's error body: `{"error": {"code", "title", "message"}}`.
fn assert_error(r: &Reply, status: StatusCode, message_part: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let e = &r.body["error"];
    assert_eq!(e["code"], status.as_u16());
    assert_eq!(e["title"], status.canonical_reason().unwrap());
    let m = e["message"].as_str().unwrap();
    assert!(m.contains(message_part), "{m:?} lacks {message_part:?}");
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn projects_are_created_listed_updated_and_deleted_in_keystones_shape() {
    let h = Harness::start().await;
    let admin = h.admin().await;
    let p = h
        .create(
            &admin,
            "projects",
            "project",
            json!({"name": "web", "description": "front", "enabled": true}),
        )
        .await;
    let id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(p["name"], "web");
    assert_eq!(p["domain_id"], "default");
    assert_eq!(p["parent_id"], "default");
    assert_eq!(p["description"], "front");
    assert_eq!(p["enabled"], true);
    assert_eq!(p["is_domain"], false);
    assert_eq!(p["tags"], json!([]));
    assert_eq!(p["options"], json!({}));
    assert_eq!(
        p["links"]["self"],
        format!("http://cloud.test:8774/identity/v3/projects/{id}")
    );

    // The same name in the same domain: 409.
    let r = h
        .call(
            Method::POST,
            "projects",
            &admin,
            Some(json!({"project": {"name": "web"}})),
        )
        .await;
    assert_error(
        &r,
        StatusCode::CONFLICT,
        "Conflict occurred attempting to store project",
    );
    // No name, an unknown domain: 400, 404.
    let r = h
        .call(
            Method::POST,
            "projects",
            &admin,
            Some(json!({"project": {"description": "x"}})),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "'name' is a required property");
    let r = h
        .call(
            Method::POST,
            "projects",
            &admin,
            Some(json!({"project": {"name": "x", "domain_id": "nope"}})),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "Could not find domain: nope.");

    let r = h.get("projects?name=web", &admin).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(names(&r.body["projects"]), vec!["web"]);
    assert_eq!(
        r.body["links"]["self"],
        "http://cloud.test:8774/identity/v3/projects"
    );
    let r = h.get("projects?domain_id=default", &admin).await;
    assert_eq!(r.body["projects"].as_array().unwrap().len(), 3);
    let r = h.get("projects?domain_id=other", &admin).await;
    assert_eq!(r.body["projects"], json!([]));

    let r = h
        .call(
            Method::PATCH,
            &format!("projects/{id}"),
            &admin,
            Some(json!({"project": {"enabled": false, "description": "off"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["project"]["enabled"], false);
    assert_eq!(r.body["project"]["name"], "web");
    let r = h.get("projects?enabled=false", &admin).await;
    assert_eq!(names(&r.body["projects"]), vec!["web"]);
    let r = h
        .call(
            Method::PATCH,
            &format!("projects/{id}"),
            &admin,
            Some(json!({"project": {"domain_id": "x"}})),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "domain_id");

    assert_eq!(
        h.status(Method::DELETE, &format!("projects/{id}"), &admin)
            .await,
        StatusCode::NO_CONTENT
    );
    let r = h.get(&format!("projects/{id}"), &admin).await;
    assert_error(
        &r,
        StatusCode::NOT_FOUND,
        &format!("Could not find project: {id}."),
    );
    let r = h
        .call(Method::DELETE, &format!("projects/{id}"), &admin, None)
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "Could not find project");
    let r = h.get("projects", "").await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "requires authentication");
    h.stop().await;
}

/// Two creates of one name at once: one 201, one 409, whatever the order.
#[tokio::test]
async fn concurrent_creates_of_one_name_give_one_201_and_one_409() {
    let h = Harness::start().await;
    let admin = h.admin().await;
    for round in 0..3 {
        let name = format!("race{round}");
        let body = Some(json!({"user": {"name": name, "password": "pw"}}));
        let (a, b) = tokio::join!(
            h.call(Method::POST, "users", &admin, body.clone()),
            h.call(Method::POST, "users", &admin, body),
        );
        let mut statuses = vec![a.status, b.status];
        statuses.sort();
        assert_eq!(statuses, vec![StatusCode::CREATED, StatusCode::CONFLICT]);
        let r = h.get(&format!("users?name={name}"), &admin).await;
        assert_eq!(r.body["users"].as_array().unwrap().len(), 1);
    }
    h.stop().await;
}

#[tokio::test]
async fn a_new_user_with_a_role_authenticates_and_loses_access_at_once() {
    let h = Harness::start().await;
    let admin = h.admin().await;
    let p = h
        .create(&admin, "projects", "project", json!({"name": "web"}))
        .await;
    let pid = p["id"].as_str().unwrap().to_owned();
    let u = h
        .create(
            &admin,
            "users",
            "user",
            json!({"name": "alice", "password": "s3cret", "default_project_id": pid, "email": "a@x"}),
        )
        .await;
    let uid = u["id"].as_str().unwrap().to_owned();
    assert_eq!(u["domain_id"], "default");
    assert_eq!(u["enabled"], true);
    assert_eq!(u["default_project_id"], pid);
    assert_eq!(u["email"], "a@x");
    assert_eq!(u["password_expires_at"], Value::Null);
    assert!(u.get("password").is_none(), "no password in answers");
    let r = h
        .call(
            Method::POST,
            "users",
            &admin,
            Some(json!({"user": {"name": "alice"}})),
        )
        .await;
    assert_error(
        &r,
        StatusCode::CONFLICT,
        "Duplicate entry found with name alice at domain ID default.",
    );

    // No role yet: no token for the project.
    let r = h.password("alice", "s3cret", Some("web")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let member = stable_id("role", "member");
    let grant = format!("projects/{pid}/users/{uid}/roles/{member}");
    assert_eq!(
        h.status(Method::HEAD, &grant, &admin).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.status(Method::PUT, &grant, &admin).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.status(Method::PUT, &grant, &admin).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.status(Method::HEAD, &grant, &admin).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.status(Method::GET, &grant, &admin).await,
        StatusCode::NO_CONTENT
    );
    let r = h
        .get(&format!("projects/{pid}/users/{uid}/roles"), &admin)
        .await;
    assert_eq!(names(&r.body["roles"]), vec!["member"]);
    let r = h
        .call(
            Method::PUT,
            &format!("projects/{pid}/users/{uid}/roles/nope"),
            &admin,
            None,
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "Could not find role: nope.");
    let r = h
        .call(
            Method::PUT,
            &format!("projects/nope/users/{uid}/roles/{member}"),
            &admin,
            None,
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "Could not find project: nope.");

    let t = h.token("alice", "s3cret", "web").await;
    let r = h.get("/v2.1/servers", &t).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The default project: no scope asked.
    let r = h.password("alice", "s3cret", None).await;
    assert_eq!(r.body["token"]["project"]["id"], pid);
    assert_eq!(
        h.password("alice", "wrong", None).await.status,
        StatusCode::UNAUTHORIZED
    );

    // The role removed: the same token is refused at once.
    assert_eq!(
        h.status(Method::DELETE, &grant, &admin).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.get("/v2.1/servers", &t).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = h.call(Method::DELETE, &grant, &admin, None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "Could not find role assignment");

    // Given back, then the user disabled: refused at once, and no new one.
    assert_eq!(
        h.status(Method::PUT, &grant, &admin).await,
        StatusCode::NO_CONTENT
    );
    let t = h.token("alice", "s3cret", "web").await;
    let r = h
        .call(
            Method::PATCH,
            &format!("users/{uid}"),
            &admin,
            Some(json!({"user": {"enabled": false}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        h.get("/v2.1/servers", &t).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.password("alice", "s3cret", Some("web")).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Enabled again with a new password; the project disabled refuses it.
    h.call(
        Method::PATCH,
        &format!("users/{uid}"),
        &admin,
        Some(json!({"user": {"enabled": true, "password": "n3w"}})),
    )
    .await;
    assert_eq!(
        h.password("alice", "s3cret", Some("web")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let t = h.token("alice", "n3w", "web").await;
    h.call(
        Method::PATCH,
        &format!("projects/{pid}"),
        &admin,
        Some(json!({"project": {"enabled": false}})),
    )
    .await;
    assert_eq!(
        h.get("/v2.1/servers", &t).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Deleted: gone, with its token.
    assert_eq!(
        h.status(Method::DELETE, &format!("users/{uid}"), &admin)
            .await,
        StatusCode::NO_CONTENT
    );
    let r = h.get(&format!("users/{uid}"), &admin).await;
    assert_error(
        &r,
        StatusCode::NOT_FOUND,
        &format!("Could not find user: {uid}."),
    );
    h.stop().await;
}

#[tokio::test]
async fn changes_outlive_a_restart() {
    let h = Harness::start().await;
    let admin = h.admin().await;
    let p = h
        .create(&admin, "projects", "project", json!({"name": "kept"}))
        .await;
    let u = h
        .create(
            &admin,
            "users",
            "user",
            json!({"name": "bob", "password": "pw"}),
        )
        .await;
    let grant = format!(
        "projects/{}/users/{}/roles/{}",
        p["id"].as_str().unwrap(),
        u["id"].as_str().unwrap(),
        stable_id("role", "reader")
    );
    assert_eq!(
        h.status(Method::PUT, &grant, &admin).await,
        StatusCode::NO_CONTENT
    );
    // A bootstrap user's role removed stays removed.
    let demo_grant = format!(
        "projects/{}/users/{}/roles/{}",
        stable_id("project", "demo"),
        stable_id("user", "demo"),
        stable_id("role", "member")
    );
    assert_eq!(
        h.status(Method::DELETE, &demo_grant, &admin).await,
        StatusCode::NO_CONTENT
    );

    let h = h.restart().await;
    let admin = h.admin().await;
    let r = h.get("projects?name=kept", &admin).await;
    assert_eq!(names(&r.body["projects"]), vec!["kept"]);
    let t = h.token("bob", "pw", "kept").await;
    let r = h.get("/v2.1/servers", &t).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        h.password("demo", "demo", Some("demo")).await.status,
        StatusCode::UNAUTHORIZED
    );
    // And what came after the restart is decided against what came before.
    let r = h
        .call(
            Method::POST,
            "projects",
            &admin,
            Some(json!({"project": {"name": "kept"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    h.stop().await;
}

#[tokio::test]
async fn domains_list_by_name_and_only_a_disabled_one_is_deleted() {
    let h = Harness::start().await;
    let admin = h.admin().await;
    let r = h.get("domains?name=Default", &admin).await;
    assert_eq!(r.status, StatusCode::OK);
    let d = &r.body["domains"][0];
    assert_eq!(d["id"], "default");
    assert_eq!(d["enabled"], true);
    assert_eq!(
        d["links"]["self"],
        "http://cloud.test:8774/identity/v3/domains/default"
    );
    let ops = h
        .create(
            &admin,
            "domains",
            "domain",
            json!({"name": "ops", "description": "d"}),
        )
        .await;
    let id = ops["id"].as_str().unwrap().to_owned();
    let r = h
        .call(
            Method::POST,
            "domains",
            &admin,
            Some(json!({"domain": {"name": "ops"}})),
        )
        .await;
    assert_error(
        &r,
        StatusCode::CONFLICT,
        "Duplicate entry found with name ops.",
    );
    // A project and a user by the same names as Default's, in this domain.
    h.create(
        &admin,
        "projects",
        "project",
        json!({"name": "demo", "domain_id": id}),
    )
    .await;
    h.create(
        &admin,
        "users",
        "user",
        json!({"name": "demo", "domain_id": id, "password": "x"}),
    )
    .await;
    let r = h
        .get(&format!("users?name=demo&domain_id={id}"), &admin)
        .await;
    assert_eq!(r.body["users"].as_array().unwrap().len(), 1);

    let r = h
        .call(Method::DELETE, &format!("domains/{id}"), &admin, None)
        .await;
    assert_error(
        &r,
        StatusCode::FORBIDDEN,
        "Cannot delete a domain that is enabled",
    );
    h.call(
        Method::PATCH,
        &format!("domains/{id}"),
        &admin,
        Some(json!({"domain": {"enabled": false}})),
    )
    .await;
    assert_eq!(
        h.status(Method::DELETE, &format!("domains/{id}"), &admin)
            .await,
        StatusCode::NO_CONTENT
    );
    // What it held went with it.
    let r = h.get(&format!("users?domain_id={id}"), &admin).await;
    assert_eq!(r.body["users"], json!([]));
    let r = h.get(&format!("domains/{id}"), &admin).await;
    assert_error(&r, StatusCode::NOT_FOUND, "Could not find domain");
    h.stop().await;
}

#[tokio::test]
async fn group_grants_reach_members_and_show_in_role_assignments() {
    let h = Harness::start().await;
    let admin = h.admin().await;
    let g = h
        .create(
            &admin,
            "groups",
            "group",
            json!({"name": "ops", "description": "d"}),
        )
        .await;
    let gid = g["id"].as_str().unwrap().to_owned();
    assert_eq!(g["domain_id"], "default");
    let r = h
        .call(
            Method::POST,
            "groups",
            &admin,
            Some(json!({"group": {"name": "ops"}})),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "store group");
    let u = h
        .create(
            &admin,
            "users",
            "user",
            json!({"name": "carol", "password": "pw"}),
        )
        .await;
    let uid = u["id"].as_str().unwrap().to_owned();
    let membership = format!("groups/{gid}/users/{uid}");
    assert_eq!(
        h.status(Method::HEAD, &membership, &admin).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.status(Method::PUT, &membership, &admin).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.status(Method::HEAD, &membership, &admin).await,
        StatusCode::NO_CONTENT
    );
    let r = h.get(&format!("groups/{gid}/users"), &admin).await;
    assert_eq!(names(&r.body["users"]), vec!["carol"]);
    let r = h.get(&format!("users/{uid}/groups"), &admin).await;
    assert_eq!(names(&r.body["groups"]), vec!["ops"]);

    let demo = stable_id("project", "demo");
    let reader = stable_id("role", "reader");
    let member = stable_id("role", "member");
    let grant = format!("projects/{demo}/groups/{gid}/roles/{member}");
    assert_eq!(
        h.status(Method::PUT, &grant, &admin).await,
        StatusCode::NO_CONTENT
    );
    let t = h.token("carol", "pw", "demo").await;
    assert_eq!(h.get("/v2.1/servers", &t).await.status, StatusCode::OK);

    // Direct assignments: the group's, not carol's.
    let r = h
        .get(&format!("role_assignments?scope.project.id={demo}"), &admin)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let rows = r.body["role_assignments"].as_array().unwrap();
    assert!(rows.iter().any(|a| a["group"]["id"] == gid));
    assert!(!rows.iter().any(|a| a["user"]["id"] == uid));
    let a = rows.iter().find(|a| a["group"]["id"] == gid).unwrap();
    assert_eq!(a["role"], json!({"id": member}));
    assert_eq!(a["scope"], json!({"project": {"id": demo}}));
    assert_eq!(
        a["links"]["assignment"],
        format!("http://cloud.test:8774/identity/v3/projects/{demo}/groups/{gid}/roles/{member}")
    );
    // Effective: carol's, through the group, with the implied reader.
    let r = h
        .get(
            &format!("role_assignments?user.id={uid}&effective&include_names"),
            &admin,
        )
        .await;
    let rows = r.body["role_assignments"].as_array().unwrap();
    let roles: Vec<&str> = rows
        .iter()
        .map(|a| a["role"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["member", "reader"], "{}", r.body);
    assert_eq!(rows[0]["user"]["name"], "carol");
    assert_eq!(
        rows[0]["user"]["domain"],
        json!({"id": "default", "name": "Default"})
    );
    assert_eq!(rows[0]["scope"]["project"]["name"], "demo");
    assert_eq!(
        rows[0]["links"]["membership"],
        format!("http://cloud.test:8774/identity/v3/groups/{gid}/users/{uid}")
    );
    assert_eq!(rows[1]["role"]["id"], reader);
    let r = h.get("role_assignments?group.id=x&effective", &admin).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .get(
            &format!("role_assignments?role.id={reader}&user.id={uid}"),
            &admin,
        )
        .await;
    assert_eq!(r.body["role_assignments"], json!([]));

    // Out of the group: the token is refused at once.
    assert_eq!(
        h.status(Method::DELETE, &membership, &admin).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.get("/v2.1/servers", &t).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = h.call(Method::DELETE, &membership, &admin, None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not found in group");
    h.stop().await;
}

#[tokio::test]
async fn roles_are_created_and_a_deleted_role_leaves_every_token() {
    let h = Harness::start().await;
    let admin = h.admin().await;
    let r = h.get("roles?name=member", &admin).await;
    assert_eq!(r.body["roles"][0]["id"], stable_id("role", "member"));
    assert_eq!(r.body["roles"][0]["domain_id"], Value::Null);
    let role = h
        .create(&admin, "roles", "role", json!({"name": "auditor"}))
        .await;
    let rid = role["id"].as_str().unwrap().to_owned();
    assert_eq!(role["options"], json!({}));
    let r = h
        .call(
            Method::POST,
            "roles",
            &admin,
            Some(json!({"role": {"name": "Auditor"}})),
        )
        .await;
    assert_error(
        &r,
        StatusCode::CONFLICT,
        "Duplicate entry found with name Auditor.",
    );
    let demo = stable_id("project", "demo");
    let du = stable_id("user", "demo");
    let grant = format!("projects/{demo}/users/{du}/roles/{rid}");
    assert_eq!(
        h.status(Method::PUT, &grant, &admin).await,
        StatusCode::NO_CONTENT
    );
    let t = h.token("demo", "demo", "demo").await;
    let ctx = h
        .handle
        .app
        .auth
        .identity()
        .unwrap()
        .context(&t, novalog_identity::now_ms())
        .unwrap();
    assert!(ctx.roles.iter().any(|r| r == "auditor"));
    assert_eq!(
        h.status(Method::DELETE, &format!("roles/{rid}"), &admin)
            .await,
        StatusCode::NO_CONTENT
    );
    let ctx = h
        .handle
        .app
        .auth
        .identity()
        .unwrap()
        .context(&t, novalog_identity::now_ms())
        .unwrap();
    assert!(!ctx.roles.iter().any(|r| r == "auditor"));
    let r = h.get(&format!("roles/{rid}"), &admin).await;
    assert_error(&r, StatusCode::NOT_FOUND, "Could not find role");
    h.stop().await;
}

#[tokio::test]
async fn application_credentials_authenticate_within_their_roles() {
    let h = Harness::start().await;
    let demo_user = stable_id("user", "demo");
    let demo = h.token("demo", "demo", "demo").await;
    let path = format!("users/{demo_user}/application_credentials");
    let a = h
        .create(
            &demo,
            &path,
            "application_credential",
            json!({"name": "ci", "description": "d", "roles": [{"name": "reader"}]}),
        )
        .await;
    let id = a["id"].as_str().unwrap().to_owned();
    let secret = a["secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 64);
    assert_eq!(a["project_id"], stable_id("project", "demo"));
    assert_eq!(a["unrestricted"], false);
    assert_eq!(a["expires_at"], Value::Null);
    assert_eq!(a["roles"][0]["name"], "reader");
    let r = h.get(&format!("{path}/{id}"), &demo).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["application_credential"].get("secret").is_none());
    let r = h.get(&path, &demo).await;
    assert_eq!(names(&r.body["application_credentials"]), vec!["ci"]);
    let r = h
        .call(
            Method::POST,
            &path,
            &demo,
            Some(json!({"application_credential": {"name": "ci"}})),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "ci");
    let r = h
        .call(
            Method::POST,
            &path,
            &demo,
            Some(json!({"application_credential": {"name": "x", "roles": [{"name": "admin"}]}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    // By id and secret: scoped to its project, with its roles only.
    let r = h
        .auth(
            json!({"methods": ["application_credential"],
                   "application_credential": {"id": id, "secret": secret}}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let t = &r.body["token"];
    assert_eq!(t["methods"], json!(["application_credential"]));
    assert_eq!(
        t["roles"],
        json!([{"id": stable_id("role", "reader"), "name": "reader"}])
    );
    assert_eq!(t["application_credential"]["restricted"], true);
    let token = r.token.unwrap();
    assert_eq!(h.get("/v2.1/servers", &token).await.status, StatusCode::OK);
    // A restricted credential makes no more.
    let r = h
        .call(
            Method::POST,
            &path,
            &token,
            Some(json!({"application_credential": {"name": "more"}})),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "application_credential");
    // By name and user; a wrong secret is refused.
    let r = h
        .auth(
            json!({"methods": ["application_credential"], "application_credential": {
                "name": "ci", "secret": secret,
                "user": {"name": "demo", "domain": {"id": "default"}}}}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = h
        .auth(
            json!({"methods": ["application_credential"],
                   "application_credential": {"id": id, "secret": "wrong"}}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Another user's: 403.
    let admin = h.admin().await;
    let r = h
        .call(
            Method::POST,
            &path,
            &admin,
            Some(json!({"application_credential": {"name": "y"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Deleted: its tokens die with it.
    assert_eq!(
        h.status(Method::DELETE, &format!("{path}/{id}"), &demo)
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.get("/v2.1/servers", &token).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = h
        .call(Method::DELETE, &format!("{path}/{id}"), &demo, None)
        .await;
    assert_error(
        &r,
        StatusCode::NOT_FOUND,
        "Could not find Application Credential",
    );

    // One that expires: not beyond its time.
    let r = h
        .call(
            Method::POST,
            &path,
            &demo,
            Some(json!({"application_credential": {"name": "old", "expires_at": "2001-01-01T00:00:00"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    h.stop().await;
}

/// Keystone's default policy, route by route, for each of the four
/// roles: `admin` everything; `manager`, `member` and `reader` (on a
/// project-scoped token) only what is their own.
#[tokio::test]
async fn every_admin_route_follows_keystones_default_policy() {
    let h = Harness::start().await;
    let admin = h.admin().await;
    h.create(&admin, "roles", "role", json!({"name": "manager"}))
        .await;
    let demo = stable_id("project", "demo");
    let mut tokens = vec![("admin", admin.clone())];
    for role in ["manager", "member", "reader"] {
        let u = h
            .create(
                &admin,
                "users",
                "user",
                json!({"name": role, "password": "pw"}),
            )
            .await;
        let role_id = h.get(&format!("roles?name={role}"), &admin).await.body["roles"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let grant = format!(
            "projects/{demo}/users/{}/roles/{role_id}",
            u["id"].as_str().unwrap()
        );
        assert_eq!(
            h.status(Method::PUT, &grant, &admin).await,
            StatusCode::NO_CONTENT
        );
        tokens.push((role, h.token(role, "pw", "demo").await));
    }
    let g = h
        .create(&admin, "groups", "group", json!({"name": "g"}))
        .await;
    let gid = g["id"].as_str().unwrap().to_owned();
    let uid = stable_id("user", "demo");
    let rid = stable_id("role", "reader");
    let mut admin_only: Vec<(Method, String)> = vec![
        (Method::GET, "domains".into()),
        (Method::GET, "domains/default".into()),
        (Method::POST, "domains".into()),
        (Method::PATCH, "domains/default".into()),
        (Method::DELETE, "domains/default".into()),
        (Method::POST, "projects".into()),
        (
            Method::GET,
            format!("projects/{}", stable_id("project", "admin")),
        ),
        (Method::PATCH, format!("projects/{demo}")),
        (Method::DELETE, format!("projects/{demo}")),
        (Method::GET, "users".into()),
        (Method::POST, "users".into()),
        (Method::GET, format!("users/{uid}")),
        (Method::PATCH, format!("users/{uid}")),
        (Method::DELETE, format!("users/{uid}")),
        (Method::GET, format!("users/{uid}/projects")),
        (Method::GET, format!("users/{uid}/groups")),
        (Method::GET, format!("users/{uid}/application_credentials")),
        (Method::POST, format!("users/{uid}/application_credentials")),
        (Method::GET, "groups".into()),
        (Method::POST, "groups".into()),
        (Method::GET, format!("groups/{gid}")),
        (Method::PATCH, format!("groups/{gid}")),
        (Method::DELETE, format!("groups/{gid}")),
        (Method::GET, format!("groups/{gid}/users")),
        (Method::PUT, format!("groups/{gid}/users/{uid}")),
        (Method::HEAD, format!("groups/{gid}/users/{uid}")),
        (Method::DELETE, format!("groups/{gid}/users/{uid}")),
        (Method::GET, "roles".into()),
        (Method::POST, "roles".into()),
        (Method::GET, format!("roles/{rid}")),
        (Method::PATCH, format!("roles/{rid}")),
        (Method::DELETE, format!("roles/{rid}")),
        (Method::GET, format!("projects/{demo}/users/{uid}/roles")),
        (
            Method::PUT,
            format!("projects/{demo}/users/{uid}/roles/{rid}"),
        ),
        (
            Method::HEAD,
            format!("projects/{demo}/users/{uid}/roles/{rid}"),
        ),
        (
            Method::DELETE,
            format!("projects/{demo}/users/{uid}/roles/{rid}"),
        ),
        (
            Method::PUT,
            format!("projects/{demo}/groups/{gid}/roles/{rid}"),
        ),
        (
            Method::DELETE,
            format!("projects/{demo}/groups/{gid}/roles/{rid}"),
        ),
        (
            Method::PUT,
            format!("domains/default/users/{uid}/roles/{rid}"),
        ),
        (Method::GET, "role_assignments".into()),
    ];
    // Keystone's OS-INHERIT grants: identity:create_grant and its kin.
    for (target, actor) in [
        ("domains/default".to_owned(), format!("users/{uid}")),
        ("domains/default".to_owned(), format!("groups/{gid}")),
        (format!("projects/{demo}"), format!("users/{uid}")),
        (format!("projects/{demo}"), format!("groups/{gid}")),
    ] {
        let grant = format!("OS-INHERIT/{target}/{actor}/roles/{rid}/inherited_to_projects");
        for method in [Method::PUT, Method::HEAD, Method::DELETE] {
            admin_only.push((method, grant.clone()));
        }
        if target.starts_with("domains") {
            admin_only.push((
                Method::GET,
                format!("OS-INHERIT/{target}/{actor}/roles/inherited_to_projects"),
            ));
        }
    }
    for (role, token) in &tokens[1..] {
        for (method, path) in &admin_only {
            let body = matches!(*method, Method::POST | Method::PATCH).then(|| json!({}));
            let r = h.call(method.clone(), path, token, body).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{role} {method} {path}");
            if *method != Method::HEAD {
                assert!(
                    r.body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("identity:"),
                    "{role} {method} {path}: {}",
                    r.body
                );
            }
        }
        // Their own: the project they are scoped to, their user, their
        // projects and groups, their application credentials.
        let me = h
            .handle
            .app
            .auth
            .identity()
            .unwrap()
            .validate(token, novalog_identity::now_ms())
            .unwrap()
            .user_id;
        for path in [
            format!("projects/{demo}"),
            format!("users/{me}"),
            format!("users/{me}/projects"),
            format!("users/{me}/groups"),
            format!("users/{me}/application_credentials"),
        ] {
            assert_eq!(
                h.get(&path, token).await.status,
                StatusCode::OK,
                "{role} {path}"
            );
        }
        let r = h.get("projects", token).await;
        assert_eq!(names(&r.body["projects"]), vec!["demo"], "{role}");
    }
    // The admin passes every check (the writes were checked above).
    for (method, path) in admin_only
        .iter()
        .filter(|(m, p)| *m == Method::GET && !p.contains("application_credentials"))
    {
        let s = h.status(method.clone(), path, &admin).await;
        assert!(s.is_success(), "admin {method} {path}: {s}");
    }
    h.stop().await;
}
