//! Issue 9, "every list is paged at `max_limit` with Nova's `next` links",
//! for the lists whose paging needs a running cloud (hosts, actions,
//! migrations): with `[api] max_limit` 3, each is followed link by link
//! and must give every item once, in pages of at most 3. (Servers,
//! flavors, keypairs and server groups: `novalog-api`'s
//! `tests_memory::lists_page_at_max_limit_with_novas_next_links`.)

use std::collections::HashSet;
use std::time::Duration;

use novalog_all_in_one::System;
use novalog_tests::{Client, demo_image_id, test_config};
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const MAX_LIMIT: usize = 3;

/// Follows `first` and its `next` links at `version`: the items of every
/// page under `key`, and the number of pages.
async fn follow(
    client: &Client,
    version: &str,
    first: &str,
    key: &str,
    links: &str,
) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut next = Some(first.to_owned());
    while let Some(path) = next.take() {
        let (status, body) = client
            .request_at(Some(version), Method::GET, &path, None)
            .await
            .unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        let page = body[key].as_array().unwrap();
        assert!(page.len() <= MAX_LIMIT, "{path}: {} items", page.len());
        items.extend(page.iter().cloned());
        pages += 1;
        assert!(pages < 50, "{first}: the links go round");
        next = body[links].as_array().and_then(|l| {
            l.iter()
                .find(|l| l["rel"] == "next")
                .and_then(|l| l["href"].as_str())
                .map(|href| href.split_once("/v2.1").unwrap().1.to_owned())
        });
    }
    (items, pages)
}

fn ids(items: &[Value], field: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| match &i[field] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn assert_each_once(what: &str, got: &[String], want: usize, pages: usize) {
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "{what}: an item twice: {got:?}");
    assert_eq!(got.len(), want, "{what}: {got:?}");
    assert!(pages >= want.div_ceil(MAX_LIMIT), "{what}: {pages} pages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hypervisors_actions_and_migrations_page_at_max_limit_with_next_links() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.api.max_limit = MAX_LIMIT;
    let hosts = cfg.compute.fake_hosts;
    assert!(hosts > MAX_LIMIT);
    let system = System::start(&cfg, None).await.unwrap();
    let admin = Client::admin(system.api_addr);
    admin.wait_up(WAIT).await.unwrap();

    // Hypervisors: paged from 2.33 (by id), from 2.53 by uuid.
    for version in ["2.33", "2.53"] {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let (items, pages) = follow(
                &admin,
                version,
                "/os-hypervisors",
                "hypervisors",
                "hypervisors_links",
            )
            .await;
            if items.len() < hosts && std::time::Instant::now() < deadline {
                // Hosts still registering.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            assert_each_once(
                &format!("hypervisors at {version}"),
                &ids(&items, "id"),
                hosts,
                pages,
            );
            break;
        }
        let (items, pages) = follow(
            &admin,
            version,
            "/os-hypervisors/detail",
            "hypervisors",
            "hypervisors_links",
        )
        .await;
        assert_each_once(
            &format!("hypervisors/detail at {version}"),
            &ids(&items, "id"),
            hosts,
            pages,
        );
    }

    // Instance actions: paged from 2.58, newest first.
    let server = admin
        .create_server("paged", "1", demo_image_id())
        .await
        .unwrap();
    admin.wait_built(&[server], WAIT).await.unwrap();
    for action in ["lock", "unlock", "lock", "unlock", "lock", "unlock"] {
        let (status, body, _) = admin
            .server_action(server, json!({ action: null }))
            .await
            .unwrap();
        assert_eq!(status, 202, "{action}: {body}");
    }
    let (items, pages) = follow(
        &admin,
        "2.58",
        &format!("/servers/{server}/os-instance-actions"),
        "instanceActions",
        "links",
    )
    .await;
    let got = ids(&items, "request_id");
    assert_each_once("instance actions at 2.58", &got, 7, pages);
    assert_eq!(items.last().unwrap()["action"], "create", "{items:?}");

    // Migrations: paged from 2.59, newest first.
    let mut servers = Vec::new();
    for i in 0..MAX_LIMIT + 1 {
        servers.push(
            admin
                .create_server(&format!("m{i}"), "1", demo_image_id())
                .await
                .unwrap(),
        );
    }
    admin.wait_built(&servers, WAIT).await.unwrap();
    for s in &servers {
        let (status, body, _) = admin
            .server_action(*s, json!({"migrate": null}))
            .await
            .unwrap();
        assert_eq!(status, 202, "{body}");
    }
    let (items, pages) = follow(
        &admin,
        "2.59",
        "/os-migrations",
        "migrations",
        "migrations_links",
    )
    .await;
    assert_each_once(
        "migrations at 2.59",
        &ids(&items, "uuid"),
        servers.len(),
        pages,
    );
    system.stop().await.unwrap();
}
