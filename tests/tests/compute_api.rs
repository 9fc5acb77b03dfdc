//! The Compute API's behaviour bugs found against Nova, end to end on both
//! log backends: members of a server group created together in one request
//! (`min_count`), the `metadata_items` quota on create, and an unknown
//! security group on create.

use std::collections::BTreeSet;
use std::time::Duration;

use novalog_tests::{Backend, Client, Cluster, demo_image_id, on_both_logs};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

on_both_logs!(
    affinity_members_created_together_share_one_host,
    anti_affinity_members_created_together_spread,
    a_create_with_more_metadata_than_the_quota_is_403,
    an_unknown_security_group_on_create_is_400,
);

async fn group(client: &Client, policy: &str) -> String {
    let (status, g) = client
        .request(
            Method::POST,
            "/os-server-groups",
            Some(json!({"server_group": {"name": policy, "policies": [policy]}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{g}");
    g["server_group"]["id"].as_str().unwrap().to_owned()
}

/// Creates `count` servers named `name-N` in one request in `group`; their
/// ids once all are listed.
async fn create_together(client: &Client, name: &str, count: u32, group: &str) -> Vec<Uuid> {
    let body = json!({
        "server": {
            "name": name, "flavorRef": "1", "imageRef": demo_image_id().to_string(),
            "networks": "none", "min_count": count, "max_count": count,
        },
        "OS-SCH-HNT:scheduler_hints": {"group": group},
    });
    let (status, v) = client
        .request(Method::POST, "/servers", Some(body))
        .await
        .unwrap();
    assert_eq!(status, 202, "{v}");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let ids: Vec<Uuid> = client
            .servers_detail()
            .await
            .unwrap()
            .iter()
            .filter(|s| s["name"].as_str().unwrap_or("").starts_with(name))
            .map(|s| s["id"].as_str().unwrap().parse().unwrap())
            .collect();
        if ids.len() == count as usize {
            return ids;
        }
        assert!(std::time::Instant::now() < deadline, "only {ids:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each server's host, as the administrator sees it, once all are built.
async fn hosts(c: &Cluster, client: &Client, ids: &[Uuid]) -> Vec<String> {
    let built = client.wait_built(ids, WAIT).await.unwrap();
    let mut out = Vec::new();
    for id in ids {
        assert_eq!(built[id]["status"], "ACTIVE", "{}", built[id]);
        let s = c.admin.server(*id).await.unwrap().unwrap();
        out.push(s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned());
    }
    out
}

fn three_hosts(cfg: &mut novalog_runtime::Config) {
    cfg.compute.fake_hosts = 3;
}

async fn affinity_members_created_together_share_one_host(backend: Backend) {
    let c = Cluster::start(&backend, three_hosts).await;
    let client = c.client("alice", "demo");
    let g = group(&client, "affinity").await;
    let ids = create_together(&client, "pair", 2, &g).await;
    let on: BTreeSet<String> = hosts(&c, &client, &ids).await.into_iter().collect();
    assert_eq!(on.len(), 1, "affinity members on {on:?}");
    // A later member joins them too.
    let (status, v) = client
        .request(
            Method::POST,
            "/servers",
            Some(json!({
                "server": {"name": "third", "flavorRef": "1",
                           "imageRef": demo_image_id().to_string(), "networks": "none"},
                "OS-SCH-HNT:scheduler_hints": {"group": g},
            })),
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{v}");
    let third: Uuid = v["server"]["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(hosts(&c, &client, &[third]).await[0], *on.first().unwrap());
    c.stop().await;
}

async fn anti_affinity_members_created_together_spread(backend: Backend) {
    let c = Cluster::start(&backend, three_hosts).await;
    let client = c.client("alice", "demo");
    let g = group(&client, "anti-affinity").await;
    let ids = create_together(&client, "spread", 3, &g).await;
    let on: BTreeSet<String> = hosts(&c, &client, &ids).await.into_iter().collect();
    assert_eq!(on.len(), 3, "anti-affinity members on {on:?}");
    c.stop().await;
}

fn metadata(items: usize) -> Value {
    (0..items)
        .map(|n| (format!("k{n}"), json!("v")))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

async fn a_create_with_more_metadata_than_the_quota_is_403(backend: Backend) {
    let c = Cluster::start(&backend, |_| {}).await;
    let client = c.client("alice", "demo");
    let body = |name: &str, items: usize| {
        json!({"server": {"name": name, "flavorRef": "1",
                          "imageRef": demo_image_id().to_string(), "networks": "none",
                          "metadata": metadata(items)}})
    };
    let (status, v) = client
        .request(Method::POST, "/servers", Some(body("many", 129)))
        .await
        .unwrap();
    assert_eq!(status, 403, "{v}");
    assert_eq!(
        v["forbidden"]["message"],
        "Maximum number of metadata items exceeds 128"
    );
    assert!(client.servers_detail().await.unwrap().is_empty());
    let (status, v) = client
        .request(Method::POST, "/servers", Some(body("enough", 128)))
        .await
        .unwrap();
    assert_eq!(status, 202, "{v}");
    let id: Uuid = v["server"]["id"].as_str().unwrap().parse().unwrap();
    client.wait_status(id, "ACTIVE", WAIT).await;

    // The project's own limit counts, on create and on a metadata change.
    let (status, v) = c
        .admin
        .request(
            Method::PUT,
            "/os-quota-sets/demo",
            Some(json!({"quota_set": {"metadata_items": 130}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{v}");
    let (status, v) = client
        .request(Method::POST, "/servers", Some(body("more", 130)))
        .await
        .unwrap();
    assert_eq!(status, 202, "{v}");
    let (status, v) = client
        .request(
            Method::PUT,
            &format!("/servers/{id}/metadata"),
            Some(json!({"metadata": metadata(131)})),
        )
        .await
        .unwrap();
    assert_eq!(status, 403, "{v}");
    assert_eq!(
        v["forbidden"]["message"],
        "Maximum number of metadata items exceeds 130"
    );
    c.stop().await;
}

async fn an_unknown_security_group_on_create_is_400(backend: Backend) {
    let c = Cluster::start(&backend, |_| {}).await;
    let client = c.client("alice", "demo");
    let (status, v) = client
        .request(
            Method::POST,
            "/servers",
            Some(json!({"server": {"name": "sg", "flavorRef": "1",
                                   "imageRef": demo_image_id().to_string(), "networks": "none",
                                   "security_groups": [{"name": "no-such-group"}]}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["badRequest"]["message"],
        "Unable to find security_group with name or id 'no-such-group'"
    );
    assert!(client.servers_detail().await.unwrap().is_empty());
    c.stop().await;
}
