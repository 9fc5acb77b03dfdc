//! End-to-end scheduling on the embedded log (issue 4): server groups,
//! image architecture, availability zones and weigher multipliers, each
//! through the public API with every service running.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use novalog_all_in_one::System;
use novalog_log::Record;
use novalog_runtime::Config;
use novalog_schemas::{Actor, Envelope, Event, Image, Intent, Meta};
use novalog_tests::{Client, demo_image_id, test_config};
use serde_json::{Value, json};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

fn with_hosts(dir: &std::path::Path, n: usize) -> Config {
    let mut cfg = test_config(dir);
    cfg.compute.fake_hosts = n;
    cfg
}

async fn create(client: &Client, name: &str, extra: Value, hints: Option<Value>) -> (u16, Value) {
    let mut server = json!({"name": name, "flavorRef": "1", "imageRef": demo_image_id().to_string(), "networks": "none"});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            server[k] = v;
        }
    }
    let mut body = json!({"server": server});
    if let Some(h) = hints {
        body["OS-SCH-HNT:scheduler_hints"] = h;
    }
    client
        .request(reqwest::Method::POST, "/servers", Some(body))
        .await
        .unwrap()
}

fn id_of(created: &(u16, Value)) -> Uuid {
    assert_eq!(created.0, 202, "{}", created.1);
    created.1["server"]["id"].as_str().unwrap().parse().unwrap()
}

fn host_of(s: &Value) -> String {
    s["OS-EXT-SRV-ATTR:host"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_affinity_group_of_four_on_three_hosts_leaves_the_fourth_without_a_host() {
    let dir = tempfile::tempdir().unwrap();
    let system = System::start(&with_hosts(dir.path(), 3), None)
        .await
        .unwrap();
    let client = Client::new(system.api_addr, "alice", "demo");

    let (status, g) = client
        .request(
            reqwest::Method::POST,
            "/os-server-groups",
            Some(json!({"server_group": {"name": "spread", "policies": ["anti-affinity"]}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{g}");
    assert_eq!(g["server_group"]["policies"], json!(["anti-affinity"]));
    let group = g["server_group"]["id"].as_str().unwrap().to_owned();

    let mut ids = Vec::new();
    for i in 0..4 {
        let c = create(
            &client,
            &format!("vm-{i}"),
            json!({}),
            Some(json!({"group": group})),
        )
        .await;
        ids.push(id_of(&c));
    }
    // Hosts are for administrators' eyes.
    let built = Client::admin(system.api_addr)
        .wait_built(&ids, WAIT)
        .await
        .unwrap();
    let active: Vec<&Value> = built.values().filter(|s| s["status"] == "ACTIVE").collect();
    let errored: Vec<&Value> = built.values().filter(|s| s["status"] == "ERROR").collect();
    assert_eq!(active.len(), 3, "{built:?}");
    assert_eq!(errored.len(), 1, "{built:?}");
    let hosts: BTreeSet<String> = active.iter().map(|s| host_of(s)).collect();
    assert_eq!(hosts.len(), 3, "one member per host: {hosts:?}");
    assert!(
        errored[0]["fault"]["message"]
            .as_str()
            .unwrap()
            .contains("No valid host was found"),
        "{}",
        errored[0]
    );

    let (status, shown) = client
        .request(
            reqwest::Method::GET,
            &format!("/os-server-groups/{group}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let members: BTreeSet<&str> = shown["server_group"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(members.len(), 4, "{shown}");
    let (_, list) = client
        .request(reqwest::Method::GET, "/os-server-groups", None)
        .await
        .unwrap();
    assert_eq!(list["server_groups"].as_array().unwrap().len(), 1);

    // Another project neither sees the group nor may join it.
    let bob = Client::new(system.api_addr, "bob", "other");
    let (status, _) = bob
        .request(
            reqwest::Method::GET,
            &format!("/os-server-groups/{group}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 404);
    let (status, body) = create(&bob, "intruder", json!({}), Some(json!({"group": group}))).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = create(&client, "bad", json!({}), Some(json!({"group": "nope"}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("group"), "{body}");

    // A deleted member frees its host for the next one.
    let loser = *built
        .iter()
        .find(|(_, s)| s["status"] == "ERROR")
        .unwrap()
        .0;
    let winner = *built
        .iter()
        .find(|(_, s)| s["status"] == "ACTIVE")
        .unwrap()
        .0;
    client.delete_server(winner).await.unwrap();
    client.delete_server(loser).await.unwrap();
    client.wait_gone(&[winner, loser], WAIT).await.unwrap();
    let again = id_of(
        &create(
            &client,
            "vm-again",
            json!({}),
            Some(json!({"group": group})),
        )
        .await,
    );
    let s = &client.wait_built(&[again], WAIT).await.unwrap()[&again];
    assert_eq!(s["status"], "ACTIVE", "{s}");

    let (status, _) = client
        .request(
            reqwest::Method::DELETE,
            &format!("/os-server-groups/{group}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 204);
    let (status, _) = client
        .request(
            reqwest::Method::GET,
            &format!("/os-server-groups/{group}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 404);
    system.stop().await.unwrap();
}

/// Registers an image the way the bootstrap does (an admin intent), and
/// waits until the API can boot it.
async fn register_image(system: &System, client: &Client, image: Image) {
    let id = image.id;
    let env = Envelope {
        meta: Meta::origin(
            Uuid::new_v4(),
            "req-test-image".into(),
            Actor {
                user_id: "admin".into(),
                project_id: "admin".into(),
                roles: vec!["admin".into()],
            },
            id.to_string(),
        ),
        event: Event::Intent(Intent::ImageCreateRequested(image)),
    };
    system
        .log
        .append(vec![Record::new(
            system.topics.intents.clone(),
            b"admin".to_vec(),
            novalog_schemas::encode(&env),
        )])
        .await
        .unwrap();
    // The API knows the image once the Image API shows it.
    let url = format!(
        "{}/image/v2/images/{id}",
        client.base.trim_end_matches("/v2.1")
    );
    let http = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let status = http
            .get(&url)
            .header("X-Auth-Token", "admin:admin")
            .send()
            .await
            .unwrap()
            .status();
        if status.as_u16() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "image {id} never became visible ({status})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aarch64_image_lands_only_on_aarch64_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = with_hosts(dir.path(), 4);
    cfg.compute.fake_host_arch = BTreeMap::from([("fake-host-2".into(), "aarch64".into())]);
    let system = System::start(&cfg, None).await.unwrap();
    let client = Client::admin(system.api_addr);
    let image = Image {
        id: Uuid::new_v4(),
        name: "debian-arm64".into(),
        status: "active".into(),
        size: 1 << 20,
        min_disk: 0,
        min_ram: 0,
        disk_format: "qcow2".into(),
        container_format: "bare".into(),
        properties: BTreeMap::from([("architecture".into(), "aarch64".into())]),
        owner: "admin".into(),
        checksum: String::new(),
        visibility: "public".into(),
        created_at_ms: 0,
        protected: false,
        tags: Vec::new(),
        os_hash_value: String::new(),
        updated_at_ms: 0,
        members: Vec::new(),
    };
    let arm = image.id;
    register_image(&system, &client, image).await;

    let mut arm_ids = Vec::new();
    let mut x86_ids = Vec::new();
    for i in 0..3 {
        arm_ids.push(id_of(
            &create(
                &client,
                &format!("arm-{i}"),
                json!({"imageRef": arm.to_string()}),
                None,
            )
            .await,
        ));
        x86_ids.push(id_of(
            &create(&client, &format!("x86-{i}"), json!({}), None).await,
        ));
    }
    let built = client
        .wait_built(&[arm_ids.clone(), x86_ids.clone()].concat(), WAIT)
        .await
        .unwrap();
    for id in &arm_ids {
        assert_eq!(built[id]["status"], "ACTIVE", "{}", built[id]);
        assert_eq!(host_of(&built[id]), "fake-host-2");
    }
    for id in &x86_ids {
        assert_eq!(built[id]["status"], "ACTIVE", "{}", built[id]);
        assert_ne!(
            host_of(&built[id]),
            "fake-host-2",
            "x86_64 image on the aarch64 host"
        );
    }
    system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requested_availability_zone_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = with_hosts(dir.path(), 4);
    cfg.compute.fake_host_availability_zone =
        BTreeMap::from([("fake-host-1".into(), "az2".into())]);
    let system = System::start(&cfg, None).await.unwrap();
    let client = Client::admin(system.api_addr);
    // The zone is known once the host registered.
    let deadline = Instant::now() + WAIT;
    let mut ids = Vec::new();
    while ids.is_empty() {
        let c = create(&client, "in-az2", json!({"availability_zone": "az2"}), None).await;
        if c.0 == 202 {
            ids.push(id_of(&c));
        } else {
            assert!(Instant::now() < deadline, "{}", c.1);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for i in 1..3 {
        ids.push(id_of(
            &create(
                &client,
                &format!("in-az2-{i}"),
                json!({"availability_zone": "az2"}),
                None,
            )
            .await,
        ));
    }
    let nova = id_of(
        &create(
            &client,
            "in-nova",
            json!({"availability_zone": "nova"}),
            None,
        )
        .await,
    );
    let built = client
        .wait_built(&[ids.clone(), vec![nova]].concat(), WAIT)
        .await
        .unwrap();
    for id in &ids {
        assert_eq!(built[id]["status"], "ACTIVE", "{}", built[id]);
        assert_eq!(host_of(&built[id]), "fake-host-1");
        assert_eq!(built[id]["OS-EXT-AZ:availability_zone"], "az2");
    }
    assert_ne!(host_of(&built[&nova]), "fake-host-1");
    assert_eq!(built[&nova]["OS-EXT-AZ:availability_zone"], "nova");
    let (status, body) = create(
        &client,
        "nowhere",
        json!({"availability_zone": "az9"}),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negative_ram_weight_multiplier_stacks() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = with_hosts(dir.path(), 4);
    // RAM alone decides: the CPU and disk weighers would spread otherwise.
    cfg.filter_scheduler.ram_weight_multiplier = -1.0;
    cfg.filter_scheduler.cpu_weight_multiplier = 0.0;
    cfg.filter_scheduler.disk_weight_multiplier = 0.0;
    let system = System::start(&cfg, None).await.unwrap();
    let client = Client::admin(system.api_addr);
    let mut hosts = BTreeSet::new();
    // One at a time, so each decision sees the previous one's usage.
    let first = id_of(&create(&client, "stack-0", json!({}), None).await);
    let s = &client.wait_built(&[first], WAIT).await.unwrap()[&first];
    hosts.insert(host_of(s));
    for i in 1..4 {
        let id = id_of(&create(&client, &format!("stack-{i}"), json!({}), None).await);
        let s = &client.wait_built(&[id], WAIT).await.unwrap()[&id];
        assert_eq!(s["status"], "ACTIVE", "{s}");
        hosts.insert(host_of(s));
    }
    assert_eq!(hosts.len(), 1, "every server on one host: {hosts:?}");
    system.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregate_zone_places_its_hosts_and_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let system = System::start(&with_hosts(dir.path(), 3), None)
        .await
        .unwrap();
    let admin = Client::admin(system.api_addr);
    let post = |path: &'static str, body: Value| {
        let admin = admin.clone();
        async move {
            admin
                .request(reqwest::Method::POST, path, Some(body))
                .await
                .unwrap()
        }
    };
    let alice = Client::new(system.api_addr, "alice", "demo");
    let (status, _) = alice
        .request(reqwest::Method::GET, "/os-aggregates", None)
        .await
        .unwrap();
    assert_eq!(status, 403);

    let (status, a) = post(
        "/os-aggregates",
        json!({"aggregate": {"name": "rack-1", "availability_zone": "zone-a"}}),
    )
    .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["aggregate"]["availability_zone"], "zone-a");
    let id = a["aggregate"]["id"].as_u64().unwrap();
    let (status, _) = post("/os-aggregates", json!({"aggregate": {"name": "rack-1"}})).await;
    assert_eq!(status, 409);
    let (status, body) = post("/os-aggregates", json!({"aggregate": {}})).await;
    assert_eq!(status, 400);
    assert!(body.to_string().contains("name"), "{body}");

    // Wait for the hosts to register before adding one.
    let deadline = Instant::now() + WAIT;
    let action = format!("/os-aggregates/{id}/action");
    let added = loop {
        let (status, v) = admin
            .request(
                reqwest::Method::POST,
                &action,
                Some(json!({"add_host": {"host": "fake-host-0"}})),
            )
            .await
            .unwrap();
        if status == 200 {
            break v;
        }
        assert_eq!(status, 404, "{v}");
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(added["aggregate"]["hosts"], json!(["fake-host-0"]));
    let (status, _) = admin
        .request(
            reqwest::Method::POST,
            &action,
            Some(json!({"add_host": {"host": "fake-host-0"}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 409, "already there");
    let (status, _) = admin
        .request(
            reqwest::Method::POST,
            &action,
            Some(json!({"add_host": {"host": "no-such-host"}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 404);

    // A second zone for the same host is a conflict.
    let (_, b) = post(
        "/os-aggregates",
        json!({"aggregate": {"name": "rack-2", "availability_zone": "zone-b"}}),
    )
    .await;
    let b_id = b["aggregate"]["id"].as_u64().unwrap();
    let (status, _) = admin
        .request(
            reqwest::Method::POST,
            &format!("/os-aggregates/{b_id}/action"),
            Some(json!({"add_host": {"host": "fake-host-0"}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 409);

    let (status, m) = admin
        .request(
            reqwest::Method::POST,
            &action,
            Some(json!({"set_metadata": {"metadata": {"ssd": "true"}}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["aggregate"]["metadata"]["ssd"], "true");
    assert_eq!(m["aggregate"]["metadata"]["availability_zone"], "zone-a");

    let (_, zones) = admin
        .request(reqwest::Method::GET, "/os-availability-zone", None)
        .await
        .unwrap();
    let names: BTreeSet<&str> = zones["availabilityZoneInfo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["zoneName"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["nova", "zone-a"]), "{zones}");
    let (_, detail) = admin
        .request(reqwest::Method::GET, "/os-availability-zone/detail", None)
        .await
        .unwrap();
    let zone_a = detail["availabilityZoneInfo"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zoneName"] == "zone-a")
        .unwrap();
    assert!(
        zone_a["hosts"]["fake-host-0"]["nova-compute"].is_object(),
        "{detail}"
    );
    let (status, _) = alice
        .request(reqwest::Method::GET, "/os-availability-zone/detail", None)
        .await
        .unwrap();
    assert_eq!(status, 403);

    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(id_of(
            &create(
                &admin,
                &format!("za-{i}"),
                json!({"availability_zone": "zone-a"}),
                None,
            )
            .await,
        ));
    }
    let built = admin.wait_built(&ids, WAIT).await.unwrap();
    for id in &ids {
        assert_eq!(built[id]["status"], "ACTIVE", "{}", built[id]);
        assert_eq!(host_of(&built[id]), "fake-host-0");
        assert_eq!(built[id]["OS-EXT-AZ:availability_zone"], "zone-a");
    }

    // Only an empty aggregate may go.
    let path = format!("/os-aggregates/{id}");
    let (status, _) = admin
        .request(reqwest::Method::DELETE, &path, None)
        .await
        .unwrap();
    assert_eq!(status, 400);
    let (status, _) = admin
        .request(
            reqwest::Method::POST,
            &action,
            Some(json!({"remove_host": {"host": "fake-host-0"}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, _) = admin
        .request(reqwest::Method::DELETE, &path, None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, _) = admin
        .request(reqwest::Method::GET, &path, None)
        .await
        .unwrap();
    assert_eq!(status, 404);
    system.stop().await.unwrap();
}
