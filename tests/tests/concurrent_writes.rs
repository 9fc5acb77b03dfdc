//! Every read-modify-write of the Compute API under concurrency: twenty
//! requests at once, each changing a different key of one object, and all
//! twenty kept. Each of these is sent as an operation (the keys to set or
//! remove) and decided by the conductor on the object as it is then, never
//! as a whole object computed from the API's projection (issue 9's
//! lost-update class; images and services have their own tests).

use std::time::Duration;

use novalog_all_in_one::System;
use novalog_tests::{Client, demo_image_id, test_config};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const N: usize = 20;
/// Fake hosts, all added to one aggregate at once.
const HOSTS: usize = 4;

/// Sends `N` requests at once, request `i` made by `make(i)`; each must
/// answer `ok`.
async fn all_at_once(
    client: &Client,
    version: &str,
    ok: u16,
    make: impl Fn(usize) -> (Method, String, Option<Value>),
) {
    let calls = (0..N).map(|i| {
        let (method, path, body) = make(i);
        let client = client.clone();
        let version = version.to_owned();
        async move {
            let (status, answer) = client
                .request_at(Some(&version), method, &path, body)
                .await
                .unwrap();
            assert_eq!(status, ok, "{path}: {answer}");
        }
    });
    futures::future::join_all(calls).await;
}

async fn get(client: &Client, version: &str, path: &str) -> Value {
    let (status, body) = client
        .request_at(Some(version), Method::GET, path, None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_to_one_object_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.compute.fake_hosts = HOSTS;
    let system = System::start(&cfg, None).await.unwrap();
    let admin = Client::admin(system.api_addr);
    admin.wait_up(WAIT).await.unwrap();
    let server = admin
        .create_server("meta", "1", demo_image_id())
        .await
        .unwrap();
    admin.wait_built(&[server], WAIT).await.unwrap();

    // Server metadata, one key each.
    all_at_once(&admin, "2.1", 200, |i| {
        (
            Method::PUT,
            format!("/servers/{server}/metadata/k{i}"),
            Some(json!({"meta": {format!("k{i}"): format!("v{i}")}})),
        )
    })
    .await;
    let meta = get(&admin, "2.1", &format!("/servers/{server}/metadata")).await;
    assert_eq!(meta["metadata"].as_object().unwrap().len(), N, "{meta}");

    // Server tags (2.26), one tag each.
    all_at_once(&admin, "2.26", 201, |i| {
        (Method::PUT, format!("/servers/{server}/tags/t{i}"), None)
    })
    .await;
    let tags = get(&admin, "2.26", &format!("/servers/{server}/tags")).await;
    assert_eq!(tags["tags"].as_array().unwrap().len(), N, "{tags}");

    // Flavor extra specs, one key each.
    all_at_once(&admin, "2.1", 200, |i| {
        (
            Method::POST,
            "/flavors/1/os-extra_specs".to_owned(),
            Some(json!({"extra_specs": {format!("ns:k{i}"): "v"}})),
        )
    })
    .await;
    let specs = get(&admin, "2.1", "/flavors/1/os-extra_specs").await;
    let kept = specs["extra_specs"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("ns:k"))
        .count();
    assert_eq!(kept, N, "{specs}");

    // Aggregate metadata, one key each.
    let (status, agg) = admin
        .request(
            Method::POST,
            "/os-aggregates",
            Some(json!({"aggregate": {"name": "agg"}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{agg}");
    let agg = agg["aggregate"]["id"].as_u64().unwrap();
    all_at_once(&admin, "2.1", 200, |i| {
        (
            Method::POST,
            format!("/os-aggregates/{agg}/action"),
            Some(json!({"set_metadata": {"metadata": {format!("k{i}"): "v"}}})),
        )
    })
    .await;
    let shown = get(&admin, "2.1", &format!("/os-aggregates/{agg}")).await;
    let kept = shown["aggregate"]["metadata"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with('k'))
        .count();
    assert_eq!(kept, N, "{shown}");

    // Aggregate hosts: every host added at once.
    let calls = (0..HOSTS).map(|i| {
        let admin = admin.clone();
        async move {
            let (status, body) = admin
                .request(
                    Method::POST,
                    &format!("/os-aggregates/{agg}/action"),
                    Some(json!({"add_host": {"host": format!("fake-host-{i}")}})),
                )
                .await
                .unwrap();
            assert_eq!(status, 200, "fake-host-{i}: {body}");
        }
    });
    futures::future::join_all(calls).await;
    let shown = get(&admin, "2.1", &format!("/os-aggregates/{agg}")).await;
    let hosts = shown["aggregate"]["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), HOSTS, "{shown}");

    // Flavor access: one project given access by each request.
    let (status, flavor) = admin
        .request(
            Method::POST,
            "/flavors",
            Some(
                json!({"flavor": {"name": "private", "id": "private", "ram": 64,
                "vcpus": 1, "disk": 1, "os-flavor-access:is_public": false}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{flavor}");
    all_at_once(&admin, "2.1", 200, |i| {
        (
            Method::POST,
            "/flavors/private/action".into(),
            Some(json!({"addTenantAccess": {"tenant": format!("project-{i}")}})),
        )
    })
    .await;
    let access = get(&admin, "2.1", "/flavors/private/os-flavor-access").await;
    assert_eq!(
        access["flavor_access"].as_array().unwrap().len(),
        N,
        "{access}"
    );

    // Quotas: each request sets a different resource of one project.
    let resources = [
        "instances",
        "cores",
        "ram",
        "key_pairs",
        "metadata_items",
        "server_groups",
        "server_group_members",
    ];
    let calls = resources.iter().enumerate().map(|(i, r)| {
        let admin = admin.clone();
        async move {
            let (status, body) = admin
                .request(
                    Method::PUT,
                    "/os-quota-sets/quota-project",
                    Some(json!({"quota_set": {*r: 100 + i}})),
                )
                .await
                .unwrap();
            assert_eq!(status, 200, "{r}: {body}");
        }
    });
    futures::future::join_all(calls).await;
    let quotas = get(&admin, "2.1", "/os-quota-sets/quota-project").await;
    for (i, r) in resources.iter().enumerate() {
        assert_eq!(quotas["quota_set"][*r], 100 + i, "{r}: {quotas}");
    }
    system.stop().await.unwrap();
}
