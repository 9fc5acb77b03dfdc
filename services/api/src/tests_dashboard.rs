//! The web console's routes through the router: the page without a
//! token, its reads with one under the API's policy, and the live event
//! stream (a member's never carries another project's servers; it ends
//! when the token is revoked).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::tests::{ADMIN, Harness, MEMBER, OTHER, server_body};

async fn create(h: &Harness, token: &str, name: &str) -> (String, String) {
    let r = h
        .call(
            Method::POST,
            "/v2.1/servers",
            Some(token),
            Some(server_body(name)),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let request = r.headers["x-openstack-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    (r.body["server"]["id"].as_str().unwrap().to_owned(), request)
}

/// An open `/dashboard/api/events` stream, read event by event.
struct Events {
    body: Body,
    buf: String,
}

impl Events {
    async fn open(h: &Harness, token: &str) -> Events {
        let req = Request::builder()
            .uri("/dashboard/api/events")
            .header("host", "cloud.test:8774")
            .header("x-auth-token", token)
            .body(Body::empty())
            .unwrap();
        let resp = h.router.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Events {
            body: resp.into_body(),
            buf: String::new(),
        }
    }

    /// The next event's name and data; `None` when the stream ended.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(at) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..at + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((name, serde_json::from_str(&data).unwrap()));
            }
            let frame = tokio::time::timeout(Duration::from_secs(10), self.body.frame())
                .await
                .expect("an event within 10 s")?
                .unwrap();
            if let Ok(bytes) = frame.into_data() {
                self.buf.push_str(std::str::from_utf8(&bytes).unwrap());
            }
        }
    }
}

fn ids(servers: &Value) -> Vec<String> {
    servers
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_page_needs_no_token_and_names_nothing_outside_the_listener() {
    let h = Harness::without_conductor().await;
    let r = h.call(Method::GET, "/dashboard/", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
    let page = r.body.as_str().unwrap();
    assert!(
        page.contains("<label for=\"login-user\">"),
        "labelled fields"
    );
    for asset in ["/dashboard/app.js", "/dashboard/app.css"] {
        let r = h.call(Method::GET, asset, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{asset}");
        let text = r.body.as_str().unwrap();
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{asset} names an address outside the listener"
        );
    }
    let r = h.call(Method::GET, "/dashboard", None, None).await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    for path in [
        "/dashboard/api/events",
        "/dashboard/api/hosts",
        "/dashboard/api/audit?q=req-x",
    ] {
        let r = h.call(Method::GET, path, None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    h.stop().await;
}

#[tokio::test]
async fn a_members_event_stream_never_carries_another_projects_servers() {
    let h = Harness::with_conductor().await;
    let (mine, _) = create(&h, MEMBER, "mine").await;
    let (theirs, _) = create(&h, OTHER, "theirs").await;

    let mut member = Events::open(&h, MEMBER).await;
    let (name, snapshot) = member.next().await.unwrap();
    assert_eq!(name, "snapshot");
    assert_eq!(ids(&snapshot["servers"]), std::slice::from_ref(&mine));
    assert!(
        snapshot["servers"][0].get("host").is_none(),
        "hosts are for administrators"
    );
    let mut admin = Events::open(&h, ADMIN).await;
    let (_, all) = admin.next().await.unwrap();
    let mut every = ids(&all["servers"]);
    every.sort();
    let mut expected = vec![mine.clone(), theirs.clone()];
    expected.sort();
    assert_eq!(every, expected);

    // Another project's server appears, then one of the member's own:
    // the member's stream carries only the second.
    let (theirs_too, _) = create(&h, OTHER, "theirs-too").await;
    let (mine_too, _) = create(&h, MEMBER, "mine-too").await;
    let mut seen = Vec::new();
    while !seen.contains(&mine_too) {
        let (name, changes) = member.next().await.unwrap();
        assert_eq!(name, "changes");
        let text = changes.to_string();
        assert!(
            !text.contains(&theirs) && !text.contains(&theirs_too),
            "{changes}"
        );
        seen.extend(ids(&changes["servers"]));
    }
    // The administrator's stream carries both.
    let mut seen = Vec::new();
    while !(seen.contains(&mine_too) && seen.contains(&theirs_too)) {
        let (_, changes) = admin.next().await.unwrap();
        seen.extend(ids(&changes["servers"]));
    }

    // A delete shows as it starts (this fake conductor never finishes
    // one; `live::tests` has the id gone).
    let r = h
        .call(
            Method::DELETE,
            &format!("/v2.1/servers/{mine_too}"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    loop {
        let (_, changes) = member.next().await.unwrap();
        let row = changes["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == mine_too.as_str());
        if row.is_some_and(|s| s["task_state"] == "deleting") {
            break;
        }
    }
    h.stop().await;
}

#[tokio::test]
async fn timeline_actions_and_audit_follow_the_apis_policy() {
    let h = Harness::with_conductor().await;
    let (mine, request) = create(&h, MEMBER, "mine").await;
    let (theirs, _) = create(&h, OTHER, "theirs").await;

    let r = h
        .call(
            Method::GET,
            &format!("/dashboard/api/servers/{mine}/timeline"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let types: Vec<&str> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    let asked = types.iter().position(|t| *t == "ServerCreateRequested");
    let created = types.iter().position(|t| *t == "InstanceCreated");
    assert!(asked.is_some() && asked < created, "{types:?}");
    let created = &r.body["events"][created.unwrap()];
    assert_eq!(created["vm_state"], "building", "{}", r.body);
    assert_eq!(created["task_state"], "scheduling");
    assert!(
        created.get("host").is_none(),
        "hosts are for administrators"
    );
    assert_eq!(r.body["steps"][0]["name"], "scheduling", "{}", r.body);
    assert_eq!(r.body["steps"][0]["outcome"], "running");

    // A building server: stop refused (it has no host yet), delete not.
    let r = h
        .call(
            Method::GET,
            &format!("/dashboard/api/servers/{mine}/actions"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let offer = |name: &str| {
        r.body["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(offer("stop")["allowed"], false);
    assert_eq!(
        offer("stop")["reason"],
        format!("Instance {mine} is not ready")
    );
    assert_eq!(offer("reboot")["allowed"], false);
    assert!(
        offer("reboot")["reason"]
            .as_str()
            .unwrap()
            .starts_with("Cannot 'reboot' instance"),
        "{}",
        r.body
    );
    assert_eq!(offer("delete")["allowed"], true);
    assert!(offer("delete")["body"].is_null());

    // Another project's server is not found, in every read.
    for path in [
        format!("/dashboard/api/servers/{theirs}/timeline"),
        format!("/dashboard/api/servers/{theirs}/actions"),
        format!("/dashboard/api/audit?q={theirs}"),
    ] {
        let r = h.call(Method::GET, &path, Some(MEMBER), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }

    // A request's records: for its project and administrators only.
    let audit = format!("/dashboard/api/audit?q={request}");
    let r = h.call(Method::GET, &audit, Some(MEMBER), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["request_id"] == request.as_str())
    );
    let r = h.call(Method::GET, &audit, Some(OTHER), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.call(Method::GET, &audit, Some(ADMIN), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h
        .call(
            Method::GET,
            "/dashboard/api/audit?q=demo",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Hosts: administrators only.
    let r = h
        .call(Method::GET, "/dashboard/api/hosts", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(Method::GET, "/dashboard/api/hosts", Some(ADMIN), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["ratios"]["cpu"], 16.0);
    h.stop().await;
}

#[tokio::test]
async fn the_event_stream_ends_when_its_token_is_revoked() {
    let h = Harness::without_conductor_configured(|c| {
        c.api.auth_strategy = "keystone".into();
        c.identity.password_hash_rounds = 100;
    })
    .await;
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "demo", "domain": {"id": "default"}, "password": "demo"}}},
        "scope": {"project": {"name": "demo", "domain": {"id": "default"}}},
    }});
    let r = h
        .call(Method::POST, "/identity/v3/auth/tokens", None, Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let token = r.headers["x-subject-token"].to_str().unwrap().to_owned();
    let mut events = Events::open(&h, &token).await;
    assert_eq!(events.next().await.unwrap().0, "snapshot");
    let r = h
        .send(
            Method::DELETE,
            "/identity/v3/auth/tokens",
            Some(token.as_str()),
            &[("x-subject-token", token.as_str())],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(events.next().await.unwrap().0, "expired");
    assert!(events.next().await.is_none(), "the stream ends");
    h.stop().await;
}
