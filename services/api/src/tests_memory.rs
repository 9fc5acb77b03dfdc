//! Memory bounded by live state, and lists paged at `[api] max_limit`
//! with Nova's `next` links (issue 9, defect 7).

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use novalog_log::Record;
use novalog_schemas::{Actor, Envelope, Event, InstanceEvent, Meta};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::projection::{Offsets, Projection};
use crate::tests::{ADMIN, Harness, MEMBER, Reply, server_body};

/// A public key to import keypairs with (generating one is slow).
const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv/zgGgB4rMYmIf+6A4l6Rr+o/6lHBQdW5aYd44bd8JttDCE/F/pNRr0lRE+PiqSPO8nDPHw0010JeMH9gYgnnFlyY3/OcJ02RhIPyyxYpv9FhY+2YiUkpwFOcLImyrxEsYXpD/0d3ac30bNH6Sw9JD9UZHYcpSxsIbECHw== Generated-by-Nova";

const MAX_LIMIT: usize = 5;

async fn harness() -> Harness {
    Harness::with_conductor_configured(|cfg| cfg.api.max_limit = MAX_LIMIT).await
}

async fn at(h: &Harness, version: &str, method: Method, uri: &str, token: &str) -> Reply {
    at_with(h, version, method, uri, token, None).await
}

async fn at_with(
    h: &Harness,
    version: &str,
    method: Method,
    uri: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    let header = format!("compute {version}");
    h.send(
        method,
        uri,
        Some(token),
        &[("OpenStack-API-Version", header.as_str())],
        body.map(|b| b.to_string().into_bytes()),
    )
    .await
}

async fn create_server(h: &Harness, name: &str) -> Uuid {
    let r = h
        .call(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            Some(server_body(name)),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    r.body["server"]["id"].as_str().unwrap().parse().unwrap()
}

fn projection(h: &Harness) -> &Projection {
    &h.handle.as_ref().unwrap().app.projection
}

/// `ids` in Nova's list order: newest first (by creation time, then id).
fn newest_first(h: &Harness, ids: &[Uuid]) -> Vec<Uuid> {
    let mut keyed: Vec<(i64, Uuid)> = ids
        .iter()
        .map(|id| {
            (
                projection(h)
                    .instance_with_deleted(id)
                    .unwrap()
                    .created_at_ms,
                *id,
            )
        })
        .collect();
    keyed.sort();
    keyed.into_iter().rev().map(|(_, id)| id).collect()
}

/// Deletes servers as the conductor would: the API's DELETE (the fake
/// conductor answers `InstanceDeleteStarted`), then `InstanceDeleted` on
/// `instances`; returns once the projection has applied it.
async fn delete_servers(h: &Harness, ids: &[Uuid]) {
    let mut records = Vec::new();
    for id in ids {
        let r = h
            .call(
                Method::DELETE,
                &format!("/v2.1/servers/{id}"),
                Some(MEMBER),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        let version = projection(h).instance(id).unwrap().version + 1;
        let env = Envelope {
            meta: Meta {
                aggregate_version: version,
                ..Meta::origin(
                    Uuid::new_v4(),
                    "req-delete".into(),
                    Actor::service("conductor"),
                    id.to_string(),
                )
            },
            event: Event::Instance(InstanceEvent::InstanceDeleted {
                deleted_at_ms: novalog_schemas::now_ms(),
            }),
        };
        records.push(Record::new(
            h.cfg.topics().instances,
            b"p1".to_vec(),
            novalog_schemas::encode(&env),
        ));
    }
    h.log.append(records).await.unwrap();
    let topic = h.cfg.topics().instances;
    let ends: Offsets = h
        .log
        .end_offsets(&topic)
        .await
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(p, end)| ((topic.clone(), p as i32), end))
        .collect();
    projection(h).wait_applied(&ends).await;
}

/// Follows `next` links from `uri` to the end; every page's items (under
/// `key`) and the number of pages. A page is full at `limit=` of the
/// first request, or at max_limit.
async fn follow(
    h: &Harness,
    version: &str,
    uri: &str,
    key: &str,
    links_key: &str,
) -> (Vec<Value>, usize) {
    let per_page = uri
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("limit="))
        .and_then(|l| l.parse::<usize>().ok())
        .map_or(MAX_LIMIT, |l| l.min(MAX_LIMIT));
    let mut items = Vec::new();
    let mut pages = 0;
    let mut uri = uri.to_owned();
    loop {
        let r = at(h, version, Method::GET, &uri, ADMIN).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {:?}", r.body);
        let page = r.body[key].as_array().unwrap().clone();
        assert!(page.len() <= MAX_LIMIT, "{uri}: {} items", page.len());
        pages += 1;
        let full = page.len() == per_page;
        items.extend(page);
        match r.body.get(links_key) {
            Some(links) => {
                assert!(full, "a next link only on a full page");
                let href = links[0]["href"].as_str().unwrap();
                assert_eq!(links[0]["rel"], "next");
                uri = href
                    .strip_prefix("http://cloud.test:8774")
                    .unwrap_or_else(|| panic!("{href}"))
                    .to_owned();
            }
            None => {
                assert!(!full, "{uri}: a full page links to the next");
                return (items, pages);
            }
        }
        assert!(pages < 100, "paging never ends");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_servers_leave_memory_and_are_listed_from_disk() {
    let h = harness().await;
    let live: Vec<Uuid> = [
        create_server(&h, "live-0").await,
        create_server(&h, "live-1").await,
    ]
    .into();
    let mut gone = Vec::new();
    for round in 0..4 {
        let mut batch = Vec::new();
        for i in 0..6 {
            batch.push(create_server(&h, &format!("gone-{round}-{i}")).await);
        }
        delete_servers(&h, &batch).await;
        gone.extend(batch);
    }
    let resident = projection(&h).resident();
    assert_eq!(resident.instances, live.len(), "{resident:?}");
    assert_eq!(resident.actions, live.len(), "{resident:?}");
    assert_eq!(resident.projects, live.len(), "{resident:?}");
    assert_eq!(resident.ordered, live.len(), "{resident:?}");

    // deleted=true: every deleted server, newest first, from the store,
    // in pages of max_limit.
    let (deleted, pages) = follow(
        &h,
        "2.1",
        "/v2.1/servers/detail?deleted=true&all_tenants=1",
        "servers",
        "servers_links",
    )
    .await;
    // Nova links a full last page too; the page after it is empty.
    assert_eq!(pages, gone.len() / MAX_LIMIT + 1);
    let ids: Vec<Uuid> = deleted
        .iter()
        .map(|s| s["id"].as_str().unwrap().parse().unwrap())
        .collect();
    let gone = newest_first(&h, &gone);
    assert_eq!(ids, gone);
    assert!(deleted.iter().all(|s| s["status"] == "DELETED"));
    // The live ones are listed from memory; changes-since shows both.
    let r = at(&h, "2.1", Method::GET, "/v2.1/servers?all_tenants=1", ADMIN).await;
    assert_eq!(r.body["servers"].as_array().unwrap().len(), live.len());
    let (all, _) = follow(
        &h,
        "2.1",
        "/v2.1/servers?all_tenants=1&changes-since=2000-01-01T00:00:00Z",
        "servers",
        "servers_links",
    )
    .await;
    assert_eq!(all.len(), live.len() + gone.len());
    let unique: HashSet<&str> = all.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), all.len());
    // A deleted server as marker.
    let marker = gone[10];
    let r = at(
        &h,
        "2.1",
        Method::GET,
        &format!("/v2.1/servers?deleted=true&all_tenants=1&marker={marker}&limit=2"),
        ADMIN,
    )
    .await;
    let page: Vec<&str> = r.body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(page, [gone[11].to_string(), gone[12].to_string()]);

    // A deleted server's actions (admin, 2.21) come from the store.
    let r = at(
        &h,
        "2.21",
        Method::GET,
        &format!("/v2.1/servers/{}/os-instance-actions", gone[0]),
        ADMIN,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let actions: Vec<&str> = r.body["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["delete", "create"]);
    // Still not found where Nova says so.
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/servers/{}", gone[0]),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A restart loads the live ones only.
    let dir = h.stop().await;
    let store = novalog_store::RocksStore::open(dir.path().join("api"), false).unwrap();
    let reloaded = Projection::load(std::sync::Arc::new(store)).unwrap();
    assert_eq!(reloaded.resident().instances, live.len());
    assert_eq!(reloaded.resident().actions, live.len());
    assert_eq!(reloaded.instances(None).len(), live.len());
    assert!(
        reloaded
            .instance_with_deleted(&gone[0])
            .unwrap()
            .is_deleted()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_at_max_limit_with_novas_next_links() {
    let h = harness().await;
    let mut created = Vec::new();
    for i in 0..12 {
        created.push(create_server(&h, &format!("s{i:02}")).await);
    }
    let created = newest_first(&h, &created);
    for uri in [
        "/v2.1/servers?all_tenants=1",
        "/v2.1/servers/detail?all_tenants=1&flavor=None",
        "/v2.1/servers/detail?all_tenants=1&limit=3",
        "/v2.1/servers?all_tenants=1&limit=500",
    ] {
        let (servers, pages) = follow(&h, "2.1", uri, "servers", "servers_links").await;
        let ids: Vec<Uuid> = servers
            .iter()
            .map(|s| s["id"].as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(ids, created, "{uri}");
        let per_page = if uri.contains("limit=3") {
            3
        } else {
            MAX_LIMIT
        };
        assert!(pages >= created.len().div_ceil(per_page), "{uri}: {pages}");
    }
    // The link repeats the query, sorted, with the marker.
    let r = at(
        &h,
        "2.1",
        Method::GET,
        "/v2.1/servers/detail?name=s&all_tenants=1",
        ADMIN,
    )
    .await;
    assert_eq!(
        r.body["servers_links"][0]["href"],
        format!(
            "http://cloud.test:8774/v2.1/servers/detail?all_tenants=1&name=s&marker={}",
            created[MAX_LIMIT - 1]
        )
    );

    // Flavors: the demo ones and more, past max_limit.
    for i in 0..6 {
        let r = at_with(
            &h,
            "2.1",
            Method::POST,
            "/v2.1/flavors",
            ADMIN,
            Some(
                json!({"flavor": {"name": format!("f{i}"), "id": format!("f{i}"),
                "ram": 64, "vcpus": 1, "disk": 1}}),
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let r = at(&h, "2.1", Method::GET, "/v2.1/flavors", ADMIN).await;
    let total = projection(&h).flavors().len();
    assert!(total > MAX_LIMIT);
    assert_eq!(r.body["flavors"].as_array().unwrap().len(), MAX_LIMIT);
    let (flavors, _) = follow(
        &h,
        "2.1",
        "/v2.1/flavors/detail",
        "flavors",
        "flavors_links",
    )
    .await;
    assert_eq!(flavors.len(), total);

    // Keypairs page from 2.35; before, the whole list.
    for i in 0..7 {
        let r = at_with(
            &h,
            "2.35",
            Method::POST,
            "/v2.1/os-keypairs",
            ADMIN,
            Some(json!({"keypair": {"name": format!("k{i}"), "public_key": RSA}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let (keypairs, pages) = follow(
        &h,
        "2.35",
        "/v2.1/os-keypairs",
        "keypairs",
        "keypairs_links",
    )
    .await;
    assert_eq!(keypairs.len(), 7);
    assert_eq!(pages, 2);
    let r = at(&h, "2.34", Method::GET, "/v2.1/os-keypairs", ADMIN).await;
    assert_eq!(r.body["keypairs"].as_array().unwrap().len(), 7);
    assert!(r.body.get("keypairs_links").is_none());

    // Server groups: Nova's `limited`, max_limit and no link.
    for i in 0..7 {
        let r = at_with(
            &h,
            "2.1",
            Method::POST,
            "/v2.1/os-server-groups",
            ADMIN,
            Some(json!({"server_group": {"name": format!("g{i}"), "policies": ["affinity"]}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let r = at(&h, "2.1", Method::GET, "/v2.1/os-server-groups", ADMIN).await;
    assert_eq!(r.body["server_groups"].as_array().unwrap().len(), MAX_LIMIT);
    let r = at(
        &h,
        "2.1",
        Method::GET,
        "/v2.1/os-server-groups?offset=5&limit=0",
        ADMIN,
    )
    .await;
    assert_eq!(r.body["server_groups"].as_array().unwrap().len(), 2);
    h.stop().await;
}

/// Deleted images leave memory as deleted servers do: the projection's
/// image map shrinks back to the live ones, before and after a restart,
/// while a deleted image's id still cannot be reused (it is on disk).
#[tokio::test]
async fn deleted_images_leave_memory_and_their_ids_stay_taken() {
    let h = harness().await;
    let before = projection(&h).resident().images;
    let mut gone = Vec::new();
    for i in 0..8 {
        let r = h
            .call(
                Method::POST,
                "/image/v2/images",
                Some(MEMBER),
                Some(json!({"name": format!("img-{i}")})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        gone.push(r.body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(projection(&h).resident().images, before + gone.len());
    for id in &gone {
        let r = h
            .call(
                Method::DELETE,
                &format!("/image/v2/images/{id}"),
                Some(MEMBER),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    }
    assert_eq!(projection(&h).resident().images, before);
    let r = h
        .call(
            Method::GET,
            &format!("/image/v2/images/{}", gone[0]),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(
            Method::POST,
            "/image/v2/images",
            Some(MEMBER),
            Some(json!({"id": gone[0], "name": "again"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);

    let dir = h.stop().await;
    let store = novalog_store::RocksStore::open(dir.path().join("api"), false).unwrap();
    let reloaded = Projection::load(std::sync::Arc::new(store)).unwrap();
    assert_eq!(reloaded.resident().images, before);
    let id: Uuid = gone[0].parse().unwrap();
    assert!(reloaded.image(&id).is_none());
    assert_eq!(reloaded.image_with_deleted(&id).unwrap().status, "deleted");
}
