//! Router tests for the Compute API's create refusals and shapes that
//! follow Nova's documented behaviour.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::tests::{ADMIN, Harness, MEMBER, server_body};

#[tokio::test]
async fn an_unknown_security_group_is_400_and_writes_nothing() {
    let h = Harness::with_conductor().await;
    let before = h.intents_end().await;
    let mut body = server_body("sg");
    body["server"]["security_groups"] = json!([{"name": "default"}, {"name": "web"}]);
    let r = h
        .call(Method::POST, "/v2.1/servers", Some(MEMBER), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(
        r.body["badRequest"]["message"],
        "Unable to find security_group with name or id 'web'"
    );
    assert_eq!(h.intents_end().await, before);

    // `default` needs no lookup, and an entry without a name is skipped.
    let mut body = server_body("sg");
    body["server"]["security_groups"] = json!([{"name": "default"}, {}]);
    let r = h
        .call(Method::POST, "/v2.1/servers", Some(MEMBER), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    h.stop().await;
}

#[tokio::test]
async fn compute_answers_carry_both_request_id_headers() {
    let h = Harness::with_conductor().await;
    let r = h
        .call(Method::GET, "/v2.1/flavors", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let id = r.headers["x-openstack-request-id"].to_str().unwrap();
    assert!(id.starts_with("req-"), "{id}");
    assert_eq!(r.headers["x-compute-request-id"], id);
    // Errors too, and only on the Compute API.
    let r = h.call(Method::GET, "/v2.1/servers", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers["x-compute-request-id"],
        r.headers["x-openstack-request-id"]
    );
    let r = h
        .call(Method::GET, "/image/v2/images", Some(MEMBER), None)
        .await;
    assert!(r.headers.get("x-compute-request-id").is_none());
    h.stop().await;
}

#[tokio::test]
async fn deleting_a_flavor_extra_spec_is_200() {
    let h = Harness::with_conductor().await;
    let r = h
        .call(
            Method::POST,
            "/v2.1/flavors/1/os-extra_specs",
            Some(ADMIN),
            Some(json!({"extra_specs": {"hw:cpu_policy": "shared"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let path = "/v2.1/flavors/1/os-extra_specs/hw:cpu_policy";
    let r = h.call(Method::DELETE, path, Some(ADMIN), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body, serde_json::Value::Null);
    let r = h.call(Method::DELETE, path, Some(ADMIN), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.call(Method::DELETE, path, Some(MEMBER), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    h.stop().await;
}

#[tokio::test]
async fn migrate_takes_any_value_before_2_56_and_an_object_or_null_from_it() {
    let h = Harness::with_conductor().await;
    let r = h
        .call(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            Some(server_body("vm")),
        )
        .await;
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let action = format!("/v2.1/servers/{id}/action");
    // A member's body is checked before the policy that refuses it: 403
    // says the body passed, 400 that it did not.
    for (version, body, status) in [
        ("compute 2.1", json!({"migrate": {}}), StatusCode::FORBIDDEN),
        (
            "compute 2.55",
            json!({"migrate": {"x": 1}}),
            StatusCode::FORBIDDEN,
        ),
        (
            "compute 2.56",
            json!({"migrate": {}}),
            StatusCode::FORBIDDEN,
        ),
        (
            "compute 2.56",
            json!({"migrate": null}),
            StatusCode::FORBIDDEN,
        ),
        (
            "compute 2.56",
            json!({"migrate": {"x": 1}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "compute 2.56",
            json!({"migrate": "x"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let before = h.intents_end().await;
        let r = h
            .send(
                Method::POST,
                &action,
                Some(MEMBER),
                &[("OpenStack-API-Version", version)],
                Some(body.to_string().into_bytes()),
            )
            .await;
        assert_eq!(r.status, status, "{version} {body}: {:?}", r.body);
        assert_eq!(h.intents_end().await, before);
    }
    h.stop().await;
}

#[tokio::test]
async fn server_lists_follow_sort_key_and_sort_dir_with_markers() {
    let h = Harness::with_conductor().await;
    let mut ids = std::collections::HashMap::new();
    for name in ["b", "a", "c"] {
        let r = h
            .call(
                Method::POST,
                "/v2.1/servers",
                Some(MEMBER),
                Some(server_body(name)),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
        ids.insert(name, r.body["server"]["id"].as_str().unwrap().to_owned());
    }
    let names = |body: &serde_json::Value| -> Vec<String> {
        body["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = h
        .call(
            Method::GET,
            "/v2.1/servers/detail?sort_key=display_name&sort_dir=asc",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(names(&r.body), ["a", "b", "c"], "{:?}", r.body);
    let r = h
        .call(
            Method::GET,
            "/v2.1/servers?sort_key=display_name",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(names(&r.body), ["c", "b", "a"]);
    // A marker is a place in the order asked for.
    let r = h
        .call(
            Method::GET,
            &format!(
                "/v2.1/servers?sort_key=display_name&sort_dir=asc&limit=1&marker={}",
                ids["a"]
            ),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(names(&r.body), ["b"]);
    // An ignored key with its direction; the rest sorts as asked.
    let r = h
        .call(
            Method::GET,
            "/v2.1/servers?sort_key=vcpus&sort_dir=desc&sort_key=display_name&sort_dir=asc",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(names(&r.body), ["a", "b", "c"]);
    // Refusals as Nova's.
    let r = h
        .call(
            Method::GET,
            "/v2.1/servers?sort_key=host",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = h
        .call(
            Method::GET,
            "/v2.1/servers?sort_key=host&all_tenants=1",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = h
        .call(
            Method::GET,
            "/v2.1/servers?sort_key=display_name&sort_dir=sideways",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = h
        .call(
            Method::GET,
            "/v2.1/servers?sort_key=nonsense",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    h.stop().await;
}
