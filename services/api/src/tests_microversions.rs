//! Router tests of the microversions 2.62 to 2.100: each behaviour change
//! at the version before it and at the version itself, on the harness of
//! [`crate::tests`] (docs/microversions.md has every version's status).

use axum::http::{Method, StatusCode};
use novalog_schemas::{Event, InstanceEvent};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::tests::{ADMIN, Harness, MEMBER, Reply, server_body};
use crate::tests_proxies::{append, place, register, server};

async fn at(
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

fn message(r: &Reply) -> String {
    r.body
        .as_object()
        .and_then(|m| m.values().next())
        .and_then(|f| f["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

async fn show(h: &Harness, version: &str, id: &str, token: &str) -> Value {
    let r = at(
        h,
        version,
        Method::GET,
        &format!("/v2.1/servers/{id}"),
        token,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["server"].clone()
}

/// Creates `body` at `version` as `token`; the new server's id.
async fn create(h: &Harness, version: &str, token: &str, body: Value) -> String {
    let r = at(h, version, Method::POST, "/v2.1/servers", token, Some(body)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    r.body["server"]["id"].as_str().unwrap().to_owned()
}

fn ids(r: &Reply) -> Vec<String> {
    r.body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_maximum_is_2_100() {
    let h = Harness::with_conductor().await;
    let r = h.call(Method::GET, "/v2.1", None, None).await;
    assert_eq!(r.body["version"]["version"], "2.100");
    let r = at(&h, "latest", Method::GET, "/v2.1/servers", MEMBER, None).await;
    assert_eq!(r.headers["openstack-api-version"], "compute 2.100");
    let r = at(&h, "2.100", Method::GET, "/v2.1/servers", MEMBER, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = at(&h, "2.101", Method::GET, "/v2.1/servers", MEMBER, None).await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    h.stop().await;
}

#[tokio::test]
async fn trusted_certificates_from_2_63_on_create_rebuild_and_in_views() {
    let h = Harness::with_conductor().await;
    let mut body = server_body("certs");
    body["server"]["trusted_image_certificates"] = json!(["cert-a", "cert-b"]);
    let r = at(
        &h,
        "2.62",
        Method::POST,
        "/v2.1/servers",
        MEMBER,
        Some(body.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(
        message(&r).contains("trusted_image_certificates"),
        "{}",
        message(&r)
    );
    let id = create(&h, "2.63", MEMBER, body.clone()).await;
    assert_eq!(
        show(&h, "2.63", &id, MEMBER).await["trusted_image_certificates"],
        json!(["cert-a", "cert-b"])
    );
    assert!(
        show(&h, "2.62", &id, MEMBER)
            .await
            .get("trusted_image_certificates")
            .is_none()
    );
    // Without any: null.
    let plain = create(&h, "2.63", MEMBER, server_body("plain")).await;
    assert_eq!(
        show(&h, "2.63", &plain, MEMBER).await["trusted_image_certificates"],
        Value::Null
    );
    // Nova's schema: 1 to 50 distinct, non-empty ids.
    for bad in [json!([]), json!(["a", "a"]), json!([""]), json!("a")] {
        let mut b = server_body("bad");
        b["server"]["trusted_image_certificates"] = bad.clone();
        let r = at(&h, "2.63", Method::POST, "/v2.1/servers", MEMBER, Some(b)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
    }
    // Rebuild: a new list replaces them, null unsets them; 2.62 has no key.
    let rebuild = |certs: Value| {
        json!({"rebuild": {"imageRef": crate::bootstrap::demo_image_id().to_string(),
                           "trusted_image_certificates": certs}})
    };
    let action = format!("/v2.1/servers/{id}/action");
    let r = at(
        &h,
        "2.62",
        Method::POST,
        &action,
        MEMBER,
        Some(rebuild(json!(["c"]))),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = at(
        &h,
        "2.63",
        Method::POST,
        &action,
        MEMBER,
        Some(rebuild(json!(["c"]))),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["server"]["trusted_image_certificates"], json!(["c"]));
    let r = at(
        &h,
        "2.63",
        Method::POST,
        &action,
        MEMBER,
        Some(rebuild(Value::Null)),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["server"]["trusted_image_certificates"], Value::Null);
    h.stop().await;
}

#[tokio::test]
async fn a_mapping_s_volume_type_is_known_from_2_67_and_needs_a_volume() {
    let h = Harness::with_conductor().await;
    let bdm = |volume_type: Value| {
        let mut b = server_body("typed");
        b["server"]["block_device_mapping_v2"] = json!([{
            "uuid": crate::bootstrap::demo_image_id().to_string(), "boot_index": 0,
            "source_type": "image", "destination_type": "local",
            "delete_on_termination": true, "volume_type": volume_type}]);
        b
    };
    let r = at(
        &h,
        "2.66",
        Method::POST,
        "/v2.1/servers",
        MEMBER,
        Some(bdm(Value::Null)),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(message(&r).contains("volume_type"), "{}", message(&r));
    create(&h, "2.67", MEMBER, bdm(Value::Null)).await;
    let r = at(
        &h,
        "2.67",
        Method::POST,
        "/v2.1/servers",
        MEMBER,
        Some(bdm(json!("ssd"))),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(
        message(&r).contains("volumes are not supported"),
        "{}",
        message(&r)
    );
    h.stop().await;
}

#[tokio::test]
async fn force_on_live_migrate_and_evacuate_is_gone_at_2_68() {
    let h = Harness::with_conductor().await;
    let id = server(&h, "moving").await;
    let action = format!("/v2.1/servers/{id}/action");
    let live = json!({"os-migrateLive": {"host": null, "block_migration": "auto", "force": false}});
    // 2.67 takes it (the fake conductor answers with what it was asked).
    let r = at(&h, "2.67", Method::POST, &action, ADMIN, Some(live.clone())).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(message(&r).starts_with("live-migration"), "{}", message(&r));
    let r = at(&h, "2.68", Method::POST, &action, ADMIN, Some(live)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(
        message(&r).contains("'force' was unexpected"),
        "{}",
        message(&r)
    );
    let evacuate = json!({"evacuate": {"force": false}});
    let r = at(
        &h,
        "2.68",
        Method::POST,
        &action,
        ADMIN,
        Some(evacuate.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(
        message(&r).contains("'force' was unexpected"),
        "{}",
        message(&r)
    );
    // At 2.67 `force` is valid: the answer is about the (running) host.
    let r = at(&h, "2.67", Method::POST, &action, ADMIN, Some(evacuate)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(message(&r).starts_with("evacuation"), "{}", message(&r));
    h.stop().await;
}

#[tokio::test]
async fn the_locked_filter_from_2_73() {
    let h = Harness::with_conductor().await;
    let locked = server(&h, "locked").await;
    let open = server(&h, "open").await;
    let version = h
        .handle
        .as_ref()
        .unwrap()
        .app
        .projection
        .instance(&locked)
        .unwrap()
        .version;
    append(
        &h,
        h.cfg.topics().instances,
        "p1",
        vec![(
            locked.to_string(),
            version + 1,
            Event::Instance(InstanceEvent::InstanceLocked {
                locked_by: "owner".into(),
                reason: Some("maintenance".into()),
            }),
        )],
    )
    .await;
    let list = |v: &'static str, q: &'static str| {
        let h = &h;
        async move {
            at(
                h,
                v,
                Method::GET,
                &format!("/v2.1/servers?{q}"),
                MEMBER,
                None,
            )
            .await
        }
    };
    // 2.72 does not know the filter: both.
    let r = list("2.72", "locked=true").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(ids(&r).len(), 2);
    let r = list("2.73", "locked=true").await;
    assert_eq!(ids(&r), vec![locked.to_string()]);
    let r = list("2.73", "locked=false").await;
    assert_eq!(ids(&r), vec![open.to_string()]);
    let r = list("2.73", "locked=maybe").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        message(&r).contains("Unrecognized value 'maybe'"),
        "{}",
        message(&r)
    );
    // And a sort key from 2.73 (ignored before).
    let r = list("2.73", "sort_key=locked&sort_dir=asc").await;
    assert_eq!(ids(&r), vec![open.to_string(), locked.to_string()]);
    h.stop().await;
}

#[tokio::test]
async fn a_requested_host_at_create_from_2_74_for_administrators() {
    let h = Harness::with_conductor().await;
    register(&h, "fake-host-9", "fake").await;
    let mut body = server_body("pinned");
    body["server"]["host"] = json!("fake-host-9");
    let r = at(
        &h,
        "2.73",
        Method::POST,
        "/v2.1/servers",
        ADMIN,
        Some(body.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = at(
        &h,
        "2.74",
        Method::POST,
        "/v2.1/servers",
        MEMBER,
        Some(body.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(
        message(&r).contains("requested_destination"),
        "{}",
        message(&r)
    );
    let id: Uuid = create(&h, "2.74", ADMIN, body.clone())
        .await
        .parse()
        .unwrap();
    let app = h.handle.as_ref().unwrap().app.clone();
    assert_eq!(
        app.projection
            .instance(&id)
            .unwrap()
            .requested_host
            .as_deref(),
        Some("fake-host-9")
    );
    // The node alone names the host too; an unknown one is Nova's 400.
    let mut by_node = server_body("by-node");
    by_node["server"]["hypervisor_hostname"] = json!("fake-host-9");
    let id: Uuid = create(&h, "2.74", ADMIN, by_node).await.parse().unwrap();
    assert_eq!(
        app.projection
            .instance(&id)
            .unwrap()
            .requested_host
            .as_deref(),
        Some("fake-host-9")
    );
    body["server"]["host"] = json!("nowhere");
    let r = at(
        &h,
        "2.74",
        Method::POST,
        "/v2.1/servers",
        ADMIN,
        Some(body.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(message(&r), "Compute host nowhere could not be found.");
    body["server"]["host"] = json!("fake-host-9");
    body["server"]["hypervisor_hostname"] = json!("other-node");
    let r = at(&h, "2.74", Method::POST, "/v2.1/servers", ADMIN, Some(body)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    h.stop().await;
}

#[tokio::test]
async fn unknown_list_parameters_and_ignored_sort_keys_are_400_from_2_75() {
    let h = Harness::with_conductor().await;
    server(&h, "one").await;
    for q in ["fuzz=1", "sort_key=architecture"] {
        let r = at(
            &h,
            "2.74",
            Method::GET,
            &format!("/v2.1/servers/detail?{q}"),
            MEMBER,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {:?}", r.body);
        assert_eq!(r.body["servers"].as_array().unwrap().len(), 1);
        let r = at(
            &h,
            "2.75",
            Method::GET,
            &format!("/v2.1/servers/detail?{q}"),
            MEMBER,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {:?}", r.body);
    }
    // Nova's other filters are known at 2.75 (an administrator's here).
    for q in [
        "vm_state=building",
        "task_state=scheduling",
        "node=x",
        "uuid=y",
        "launch_index=0",
    ] {
        let r = at(
            &h,
            "2.75",
            Method::GET,
            &format!("/v2.1/servers?{q}"),
            ADMIN,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {:?}", r.body);
    }
    h.stop().await;
}

#[tokio::test]
async fn more_filters_for_everyone_from_2_83_and_hostname_from_2_90() {
    let h = Harness::with_conductor().await;
    let mut body = server_body("keyed");
    body["server"]["availability_zone"] = json!("nova");
    create(&h, "2.1", MEMBER, body).await;
    server(&h, "other").await;
    let count = |v: &'static str, q: &'static str, token: &'static str| {
        let h = &h;
        async move {
            let r = at(
                h,
                v,
                Method::GET,
                &format!("/v2.1/servers?{q}"),
                token,
                None,
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {:?}", r.body);
            ids(&r).len()
        }
    };
    // A member's vm_state, availability_zone and power_state: dropped
    // before 2.83, used from it; an administrator's always.
    assert_eq!(count("2.82", "vm_state=error", MEMBER).await, 2);
    assert_eq!(count("2.83", "vm_state=error", MEMBER).await, 0);
    assert_eq!(count("2.83", "vm_state=building", MEMBER).await, 2);
    assert_eq!(
        count("2.82", "all_tenants=1&vm_state=building", ADMIN).await,
        2
    );
    assert_eq!(
        count("2.82", "all_tenants=1&vm_state=error", ADMIN).await,
        0
    );
    assert_eq!(count("2.82", "availability_zone=^nova$", MEMBER).await, 2);
    assert_eq!(count("2.83", "availability_zone=^nova$", MEMBER).await, 1);
    assert_eq!(count("2.83", "power_state=1", MEMBER).await, 0);
    assert_eq!(count("2.83", "power_state=0", MEMBER).await, 2);
    // hostname: a member's from 2.90.
    assert_eq!(count("2.89", "hostname=^keyed$", MEMBER).await, 2);
    assert_eq!(count("2.90", "hostname=^keyed$", MEMBER).await, 1);
    h.stop().await;
}

#[tokio::test]
async fn the_topology_from_2_78_and_shares_from_2_97_are_empty() {
    let h = Harness::with_conductor().await;
    let id = server(&h, "bare").await;
    let topology = format!("/v2.1/servers/{id}/topology");
    let r = at(&h, "2.77", Method::GET, &topology, MEMBER, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = at(&h, "2.78", Method::GET, &topology, MEMBER, None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body, json!({"nodes": [], "pagesize_kb": null}));
    let shares = format!("/v2.1/servers/{id}/shares");
    let r = at(&h, "2.96", Method::GET, &shares, MEMBER, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = at(&h, "2.97", Method::GET, &shares, MEMBER, None).await;
    assert_eq!(r.body, json!({"shares": []}));
    let share = Uuid::new_v4();
    let r = at(
        &h,
        "2.97",
        Method::POST,
        &shares,
        MEMBER,
        Some(json!({"share": {"share_id": share.to_string()}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(message(&r), format!("Share {share} could not be found."));
    // Volumes and ports: none, and Nova's 404 for one that is named.
    let r = at(
        &h,
        "2.100",
        Method::GET,
        &format!("/v2.1/servers/{id}/os-volume_attachments"),
        MEMBER,
        None,
    )
    .await;
    assert_eq!(r.body, json!({"volumeAttachments": []}));
    let r = at(
        &h,
        "2.100",
        Method::GET,
        &format!("/v2.1/servers/{id}/os-interface"),
        MEMBER,
        None,
    )
    .await;
    assert_eq!(r.body, json!({"interfaceAttachments": []}));
    let volume = Uuid::new_v4();
    let attach = json!({"volumeAttachment": {"volumeId": volume.to_string(), "delete_on_termination": true}});
    let uri = format!("/v2.1/servers/{id}/os-volume_attachments");
    let r = at(&h, "2.78", Method::POST, &uri, MEMBER, Some(attach.clone())).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "2.79 adds delete_on_termination"
    );
    let r = at(&h, "2.79", Method::POST, &uri, MEMBER, Some(attach)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(message(&r), format!("Volume {volume} could not be found."));
    h.stop().await;
}

#[tokio::test]
async fn accelerator_and_reimage_events_from_2_82_and_2_93() {
    let h = Harness::with_conductor().await;
    let id = server(&h, "evented").await;
    for (name, since, before) in [
        ("accelerator-request-bound", "2.82", "2.81"),
        ("volume-reimaged", "2.93", "2.92"),
    ] {
        let body = json!({"events": [{"name": name, "server_uuid": id.to_string(), "tag": "t"}]});
        let r = at(
            &h,
            before,
            Method::POST,
            "/v2.1/os-server-external-events",
            ADMIN,
            Some(body.clone()),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {:?}", r.body);
        let r = at(
            &h,
            since,
            Method::POST,
            "/v2.1/os-server-external-events",
            ADMIN,
            Some(body),
        )
        .await;
        assert!(r.status.is_success(), "{name}: {:?}", r.body);
    }
    h.stop().await;
}

#[tokio::test]
async fn hostname_from_2_90_and_fqdn_from_2_94() {
    let h = Harness::with_conductor().await;
    let mut body = server_body("Named Server");
    body["server"]["hostname"] = json!("web-1");
    let r = at(
        &h,
        "2.89",
        Method::POST,
        "/v2.1/servers",
        MEMBER,
        Some(body.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let id = create(&h, "2.90", MEMBER, body.clone()).await;
    // Shown to its member from 2.90 only (the extended attributes are
    // an administrator's before).
    assert_eq!(
        show(&h, "2.90", &id, MEMBER).await["OS-EXT-SRV-ATTR:hostname"],
        "web-1"
    );
    assert!(
        show(&h, "2.89", &id, MEMBER)
            .await
            .get("OS-EXT-SRV-ATTR:hostname")
            .is_none()
    );
    assert_eq!(
        show(&h, "2.89", &id, ADMIN).await["OS-EXT-SRV-ATTR:hostname"],
        "web-1"
    );
    // A rename keeps the hostname; asking changes it.
    let uri = format!("/v2.1/servers/{id}");
    let r = at(
        &h,
        "2.90",
        Method::PUT,
        &uri,
        MEMBER,
        Some(json!({"server": {"name": "renamed"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["server"]["OS-EXT-SRV-ATTR:hostname"], "web-1");
    let r = at(
        &h,
        "2.89",
        Method::PUT,
        &uri,
        MEMBER,
        Some(json!({"server": {"hostname": "web-2"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = at(
        &h,
        "2.90",
        Method::PUT,
        &uri,
        MEMBER,
        Some(json!({"server": {"hostname": "web-2"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["server"]["OS-EXT-SRV-ATTR:hostname"], "web-2");
    // Rebuild sets it too.
    let rebuild = json!({"rebuild": {"imageRef": crate::bootstrap::demo_image_id().to_string(), "hostname": "web-3"}});
    let r = at(
        &h,
        "2.90",
        Method::POST,
        &format!("{uri}/action"),
        MEMBER,
        Some(rebuild),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["server"]["OS-EXT-SRV-ATTR:hostname"], "web-3");
    // A server without one asked for: derived from its name.
    let plain = create(&h, "2.90", MEMBER, server_body("Plain Name")).await;
    assert_eq!(
        show(&h, "2.90", &plain, MEMBER).await["OS-EXT-SRV-ATTR:hostname"],
        "plain-name"
    );
    // An FQDN: 400 until 2.94.
    body["server"]["hostname"] = json!("web-1.example.org");
    let r = at(
        &h,
        "2.93",
        Method::POST,
        "/v2.1/servers",
        MEMBER,
        Some(body.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let fqdn = create(&h, "2.94", MEMBER, body.clone()).await;
    assert_eq!(
        show(&h, "2.94", &fqdn, MEMBER).await["OS-EXT-SRV-ATTR:hostname"],
        "web-1.example.org"
    );
    // One hostname for several servers: Nova's 400.
    body["server"]["max_count"] = json!(2);
    let r = at(
        &h,
        "2.94",
        Method::POST,
        "/v2.1/servers",
        MEMBER,
        Some(body),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message(&r),
        "Unable to allocate a single hostname to multiple instances"
    );
    h.stop().await;
}

#[tokio::test]
async fn an_evacuated_server_is_asked_stopped_from_2_95() {
    let h = Harness::with_conductor().await;
    register(&h, "gone-host", "fake").await;
    let id = server(&h, "evacuee").await;
    place(&h, id, "gone-host").await;
    let r = at(
        &h,
        "2.11",
        Method::PUT,
        "/v2.1/os-services/force-down",
        ADMIN,
        Some(json!({"host": "gone-host", "binary": "nova-compute", "forced_down": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let action = format!("/v2.1/servers/{id}/action");
    let r = at(
        &h,
        "2.94",
        Method::POST,
        &action,
        ADMIN,
        Some(json!({"evacuate": {}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(
        message(&r),
        "evacuation host=None stop_at_destination=false"
    );
    let r = at(
        &h,
        "2.95",
        Method::POST,
        &action,
        ADMIN,
        Some(json!({"evacuate": {}})),
    )
    .await;
    assert_eq!(message(&r), "evacuation host=None stop_at_destination=true");
    h.stop().await;
}

#[tokio::test]
async fn pinned_zone_2_96_image_properties_2_98_scheduler_hints_2_100() {
    let h = Harness::with_conductor().await;
    let mut body = server_body("hinted");
    body["server"]["availability_zone"] = json!("nova");
    body["os:scheduler_hints"] = json!({"build_near_host_ip": "192.0.2.1", "cidr": "/24"});
    let hinted = create(&h, "2.1", MEMBER, body).await;
    let plain = create(&h, "2.1", MEMBER, server_body("plain")).await;
    let s = show(&h, "2.95", &hinted, MEMBER).await;
    assert!(s.get("pinned_availability_zone").is_none());
    let s = show(&h, "2.96", &hinted, MEMBER).await;
    assert_eq!(s["pinned_availability_zone"], "nova");
    assert_eq!(
        show(&h, "2.96", &plain, MEMBER).await["pinned_availability_zone"],
        Value::Null
    );
    assert!(s["image"].get("properties").is_none());
    let s = show(&h, "2.98", &hinted, MEMBER).await;
    // The demo image's `architecture`: a property Nova knows.
    assert_eq!(s["image"]["properties"], json!({"architecture": "x86_64"}));
    assert!(s.get("scheduler_hints").is_none());
    let s = show(&h, "2.100", &hinted, MEMBER).await;
    assert_eq!(
        s["scheduler_hints"],
        json!({"build_near_host_ip": ["192.0.2.1"], "cidr": ["/24"]})
    );
    assert_eq!(
        show(&h, "2.100", &plain, MEMBER).await["scheduler_hints"],
        json!({})
    );
    // The detail list carries them too.
    let r = at(
        &h,
        "2.100",
        Method::GET,
        "/v2.1/servers/detail",
        MEMBER,
        None,
    )
    .await;
    for s in r.body["servers"].as_array().unwrap() {
        assert!(s.get("scheduler_hints").is_some());
        assert!(s.get("pinned_availability_zone").is_some());
    }
    h.stop().await;
}

#[tokio::test]
async fn a_hypervisor_without_servers_lists_none_from_2_75() {
    let h = Harness::with_conductor().await;
    register(&h, "idle-host", "fake").await;
    let list = |v: &'static str| {
        let h = &h;
        async move {
            let r = at(
                h,
                v,
                Method::GET,
                "/v2.1/os-hypervisors?with_servers=true",
                ADMIN,
                None,
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            r.body["hypervisors"][0].clone()
        }
    };
    assert!(list("2.74").await.get("servers").is_none());
    assert_eq!(list("2.75").await["servers"], json!([]));
    h.stop().await;
}
