//! Router tests of Nova's deprecated proxies and smaller resources:
//! quota classes, os-hosts, /images, os-networks, extensions, ips,
//! diagnostics, os-server-password, the usage audit log and external
//! events, each with its microversion range and its 4xx, on the harness of
//! [`crate::tests`].

use std::time::Duration;

use axum::http::{Method, StatusCode};
use novalog_log::Record;
use novalog_schemas::events::HostRegistered;
use novalog_schemas::{
    Actor, Envelope, Event, HostEvent, HostUsage, InstanceEvent, Meta, PowerState, Resources,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::bootstrap::demo_image_id;
use crate::projection::Offsets;
use crate::tests::{ADMIN, Harness, MEMBER, OTHER, Reply, server_body};

const READER: &str = "reader:p1";

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

/// Appends `events` to `topic` and waits until the projection applied them.
pub(crate) async fn append(
    h: &Harness,
    topic: String,
    key: &str,
    events: Vec<(String, u64, Event)>,
) {
    let records = events
        .into_iter()
        .map(|(aggregate, version, event)| {
            let env = Envelope {
                meta: Meta {
                    aggregate_version: version,
                    ..Meta::origin(
                        Uuid::new_v4(),
                        "req-test".into(),
                        Actor::service("compute"),
                        aggregate,
                    )
                },
                event,
            };
            Record::new(
                topic.clone(),
                key.as_bytes().to_vec(),
                novalog_schemas::encode(&env),
            )
        })
        .collect();
    h.log.append(records).await.unwrap();
    let ends: Offsets = h
        .log
        .end_offsets(&topic)
        .await
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(p, end)| ((topic.clone(), p as i32), end))
        .collect();
    tokio::time::timeout(
        Duration::from_secs(10),
        h.handle
            .as_ref()
            .unwrap()
            .app
            .projection
            .wait_applied(&ends),
    )
    .await
    .expect("the projection applies the events");
}

pub(crate) async fn register(h: &Harness, name: &str, hypervisor: &str) {
    let reg = HostRegistered {
        host: name.into(),
        capacity: Resources {
            vcpus: 8,
            memory_mb: 16_384,
            disk_gb: 100,
        },
        usage: HostUsage {
            vcpus_used: 1,
            memory_mb_used: 512,
            disk_gb_used: 1,
            instances: 1,
            generation: 1,
        },
        cpu_arch: "x86_64".into(),
        hypervisor_type: hypervisor.into(),
        hypervisor_version: 1000,
        availability_zone: "nova".into(),
        capabilities: Default::default(),
        driver: hypervisor.into(),
    };
    let topic = h.cfg.topics().hosts;
    append(
        h,
        topic,
        name,
        vec![(
            name.into(),
            0,
            Event::Host(HostEvent::HostRegistered(Box::new(reg))),
        )],
    )
    .await;
}

/// A server of p1, created through the API.
pub(crate) async fn server(h: &Harness, name: &str) -> Uuid {
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

/// Puts server `id` on `host`, active and running, as the conductor and
/// the host would.
pub(crate) async fn place(h: &Harness, id: Uuid, host: &str) {
    let version = h
        .handle
        .as_ref()
        .unwrap()
        .app
        .projection
        .instance(&id)
        .unwrap()
        .version;
    let topic = h.cfg.topics().instances;
    append(
        h,
        topic,
        "p1",
        vec![
            (
                id.to_string(),
                version + 1,
                Event::Instance(InstanceEvent::InstanceScheduled {
                    host: host.into(),
                    alternates: vec![],
                    attempt: 1,
                }),
            ),
            (
                id.to_string(),
                version + 2,
                Event::Instance(InstanceEvent::InstanceBecameActive {
                    power_state: PowerState::Running,
                    launched_at_ms: novalog_schemas::now_ms(),
                }),
            ),
        ],
    )
    .await;
}

// ---- quota classes ----

#[tokio::test]
async fn quota_class_default_is_shown_set_and_what_projects_fall_back_to() {
    let h = Harness::with_conductor().await;
    let r = at(
        &h,
        "2.1",
        Method::GET,
        "/v2.1/os-quota-class-sets/default",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let set = &r.body["quota_class_set"];
    assert_eq!(set["id"], "default");
    assert_eq!(set["cores"], 20);
    assert_eq!(set["floating_ips"], 10);
    assert!(set.get("server_groups").is_none(), "not before 2.50");
    let r = at(
        &h,
        "2.57",
        Method::GET,
        "/v2.1/os-quota-class-sets/default",
        ADMIN,
        None,
    )
    .await;
    let set = &r.body["quota_class_set"];
    assert_eq!(set["server_groups"], 10);
    assert!(set.get("floating_ips").is_none() && set.get("injected_files").is_none());

    let r = at(
        &h,
        "2.57",
        Method::PUT,
        "/v2.1/os-quota-class-sets/default",
        ADMIN,
        Some(json!({"quota_class_set": {"cores": 40, "instances": "15"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body["quota_class_set"].get("id").is_none());
    assert_eq!(r.body["quota_class_set"]["cores"], 40);
    assert_eq!(r.body["quota_class_set"]["instances"], 15);
    // Projects without their own limits fall back to the class.
    let r = h
        .call(Method::GET, "/v2.1/os-quota-sets/p1", Some(ADMIN), None)
        .await;
    assert_eq!(r.body["quota_set"]["cores"], 40);
    let r = h
        .call(
            Method::GET,
            "/v2.1/os-quota-sets/p1/defaults",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.body["quota_set"]["instances"], 15);
    let r = h
        .call(Method::GET, "/v2.1/limits", Some(MEMBER), None)
        .await;
    assert_eq!(r.body["limits"]["absolute"]["maxTotalCores"], 40);
    // Another class answers the defaults for what it has not set.
    let r = at(
        &h,
        "2.57",
        Method::GET,
        "/v2.1/os-quota-class-sets/gold",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(r.body["quota_class_set"]["cores"], 20);

    // 4xx: not an administrator, a body Nova's schema refuses.
    for token in [MEMBER, READER, OTHER] {
        let r = h
            .call(
                Method::GET,
                "/v2.1/os-quota-class-sets/default",
                Some(token),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(
            message(&r),
            "Policy doesn't allow os_compute_api:os-quota-class-sets:show to be performed."
        );
        let r = h
            .call(
                Method::PUT,
                "/v2.1/os-quota-class-sets/default",
                Some(token),
                Some(json!({"quota_class_set": {"cores": 1}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    for (version, body) in [
        ("2.1", json!({"quota_class_set": {"cores": -2}})),
        ("2.1", json!({"quota_class_set": {"force": true}})),
        ("2.50", json!({"quota_class_set": {"floating_ips": 1}})),
        ("2.57", json!({"quota_class_set": {"injected_files": 1}})),
        ("2.1", json!({"quota_set": {"cores": 1}})),
    ] {
        let r = at(
            &h,
            version,
            Method::PUT,
            "/v2.1/os-quota-class-sets/default",
            ADMIN,
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{version} {body}: {:?}",
            r.body
        );
    }
    h.stop().await;
}

// ---- os-hosts ----

#[tokio::test]
async fn os_hosts_list_show_switch_and_power_actions_until_2_42() {
    let h = Harness::with_conductor().await;
    register(&h, "cmp1", "fake").await;
    register(&h, "lv1", "QEMU").await;
    let id = server(&h, "on-cmp1").await;
    place(&h, id, "cmp1").await;

    let r = at(&h, "2.42", Method::GET, "/v2.1/os-hosts", ADMIN, None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let hosts = r.body["hosts"].as_array().unwrap();
    assert!(hosts.contains(&json!({"host_name": "cmp1", "service": "compute", "zone": "nova"})));
    let r = h
        .call(
            Method::GET,
            "/v2.1/os-hosts?zone=elsewhere",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.body["hosts"], json!([]));

    let r = h
        .call(Method::GET, "/v2.1/os-hosts/cmp1", Some(ADMIN), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let rows = r.body["host"].as_array().unwrap();
    let projects: Vec<&str> = rows
        .iter()
        .map(|row| row["resource"]["project"].as_str().unwrap())
        .collect();
    assert_eq!(projects, ["(total)", "(used_now)", "(used_max)", "p1"]);
    assert_eq!(rows[0]["resource"]["cpu"], 8);
    assert_eq!(rows[0]["resource"]["memory_mb"], 16_384);
    assert_eq!(rows[1]["resource"]["memory_mb"], 512);
    assert_eq!(rows[2]["resource"]["cpu"], rows[3]["resource"]["cpu"]);

    // Disabling goes through the conductor: the host leaves the list.
    let r = h
        .call(
            Method::PUT,
            "/v2.1/os-hosts/cmp1",
            Some(ADMIN),
            Some(json!({"status": "Disable"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body, json!({"host": "cmp1", "status": "disabled"}));
    let r = h
        .call(
            Method::GET,
            "/v2.1/os-services?host=cmp1",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.body["services"][0]["status"], "disabled");
    let r = h
        .call(Method::GET, "/v2.1/os-hosts", Some(ADMIN), None)
        .await;
    assert!(
        r.body["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["host_name"] != "cmp1")
    );
    let r = h
        .call(
            Method::PUT,
            "/v2.1/os-hosts/cmp1",
            Some(ADMIN),
            Some(json!({"status": "enable", "maintenance_mode": "enable"})),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"host": "cmp1", "status": "enabled", "maintenance_mode": "on_maintenance"})
    );

    // The fake driver echoes the power actions; another driver cannot.
    for (action, answer) in [
        ("reboot", "reboot"),
        ("shutdown", "shutdown"),
        ("startup", "startup"),
    ] {
        let r = h
            .call(
                Method::GET,
                &format!("/v2.1/os-hosts/cmp1/{action}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, json!({"host": "cmp1", "power_action": answer}));
        let r = h
            .call(
                Method::GET,
                &format!("/v2.1/os-hosts/lv1/{action}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    }

    // 4xx.
    let r = h
        .call(Method::GET, "/v2.1/os-hosts/nowhere", Some(ADMIN), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(message(&r), "Host 'nowhere' is not mapped to any cell");
    let r = h
        .call(
            Method::PUT,
            "/v2.1/os-hosts/nowhere",
            Some(ADMIN),
            Some(json!({"status": "enable"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    for body in [
        json!({}),
        json!({"status": "on"}),
        json!({"status": "enable", "x": 1}),
    ] {
        let r = h
            .call(
                Method::PUT,
                "/v2.1/os-hosts/cmp1",
                Some(ADMIN),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
    }
    let r = h
        .call(Method::GET, "/v2.1/os-hosts", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        message(&r),
        "Policy doesn't allow os_compute_api:os-hosts:list to be performed."
    );
    let r = h
        .call(
            Method::GET,
            "/v2.1/os-hosts/cmp1/reboot",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    for uri in [
        "/v2.1/os-hosts",
        "/v2.1/os-hosts/cmp1",
        "/v2.1/os-hosts/cmp1/reboot",
    ] {
        let r = at(&h, "2.43", Method::GET, uri, ADMIN, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
    }
    h.stop().await;
}

// ---- /servers/{id}/ips, diagnostics, os-server-password ----

#[tokio::test]
async fn server_ips_diagnostics_and_password_answer_as_nova() {
    let h = Harness::with_conductor().await;
    register(&h, "cmp1", "fake").await;
    register(&h, "lv1", "QEMU").await;
    let id = server(&h, "probe").await;

    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/servers/{id}/ips"),
            Some(READER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body, json!({"addresses": {}}));
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/servers/{id}/ips/private"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(message(&r), "Instance is not a member of specified network");
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/servers/{id}/ips"),
            Some(OTHER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Diagnostics: a building server has no host yet.
    let uri = format!("/v2.1/servers/{id}/diagnostics");
    let r = h.call(Method::GET, &uri, Some(ADMIN), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(message(&r), format!("Instance {id} is not ready"));
    place(&h, id, "cmp1").await;
    let r = h.call(Method::GET, &uri, Some(ADMIN), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["cpu0_time"], 17_300_000_000u64);
    let r = at(&h, "2.48", Method::GET, &uri, ADMIN, None).await;
    assert_eq!(r.body["driver"], "libvirt");
    assert_eq!(r.body["num_nics"], 1);
    assert_eq!(
        r.body["memory_details"],
        json!({"maximum": 524288, "used": 0})
    );
    let r = h.call(Method::GET, &uri, Some(MEMBER), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        message(&r),
        "Policy doesn't allow os_compute_api:os-server-diagnostics to be performed."
    );
    let other = server(&h, "on-libvirt").await;
    place(&h, other, "lv1").await;
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/servers/{other}/diagnostics"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);

    // The password: none was ever posted.
    let pw = format!("/v2.1/servers/{id}/os-server-password");
    let r = h.call(Method::GET, &pw, Some(READER), None).await;
    assert_eq!(r.body, json!({"password": ""}));
    let r = h.call(Method::DELETE, &pw, Some(READER), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h.call(Method::DELETE, &pw, Some(MEMBER), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h.call(Method::GET, &pw, Some(OTHER), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/servers/{}/os-server-password", Uuid::new_v4()),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    h.stop().await;
}

// ---- /images (up to 2.35) and their metadata (up to 2.38) ----

#[tokio::test]
async fn images_are_proxied_to_the_image_service_until_2_35() {
    let h = Harness::with_conductor().await;
    let demo = demo_image_id().to_string();
    let r = h
        .call(Method::GET, "/v2.1/images", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let first = &r.body["images"][0];
    assert_eq!(first["id"], demo.as_str());
    assert_eq!(
        first["links"][0]["href"],
        format!("http://cloud.test:8774/v2.1/images/{demo}")
    );
    assert_eq!(
        first["links"][2]["href"],
        format!("http://cloud.test:8774/image/images/{demo}")
    );
    let r = h
        .call(Method::GET, "/v2.1/images/detail", Some(MEMBER), None)
        .await;
    let image = &r.body["images"][0];
    assert_eq!(image["status"], "ACTIVE");
    assert_eq!(image["progress"], 100);
    assert!(image["OS-EXT-IMG-SIZE:size"].is_u64());
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/images/{demo}"),
            Some(READER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["image"]["id"], demo.as_str());
    let r = h
        .call(
            Method::GET,
            "/v2.1/images?name=nothing-by-that-name",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.body["images"], json!([]));
    let r = h
        .call(Method::GET, "/v2.1/images?limit=1", Some(MEMBER), None)
        .await;
    assert_eq!(r.body["images"].as_array().unwrap().len(), 1);
    assert!(
        r.body["images_links"][0]["href"]
            .as_str()
            .unwrap()
            .contains("marker=")
    );

    // Metadata, written through the Image service.
    let meta = format!("/v2.1/images/{demo}/metadata");
    let r = h
        .call(
            Method::POST,
            &meta,
            Some(ADMIN),
            Some(json!({"metadata": {"os_distro": "cirros"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["metadata"]["os_distro"], "cirros");
    let r = h
        .call(
            Method::GET,
            &format!("{meta}/os_distro"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.body, json!({"meta": {"os_distro": "cirros"}}));
    let r = h
        .call(
            Method::PUT,
            &format!("{meta}/os_distro"),
            Some(ADMIN),
            Some(json!({"meta": {"other": "x"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(message(&r), "Request body and URI mismatch");
    let r = h
        .call(
            Method::PUT,
            &format!("{meta}/os_distro"),
            Some(ADMIN),
            Some(json!({"meta": {"os_distro": "fedora"}})),
        )
        .await;
    assert_eq!(r.body, json!({"meta": {"os_distro": "fedora"}}));
    // A member may not change another project's public image.
    let r = h
        .call(
            Method::POST,
            &meta,
            Some(MEMBER),
            Some(json!({"metadata": {"k": "v"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = h
        .call(
            Method::DELETE,
            &format!("{meta}/os_distro"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h
        .call(
            Method::DELETE,
            &format!("{meta}/os_distro"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(message(&r), "Invalid metadata key");
    let r = h.call(Method::GET, &meta, Some(MEMBER), None).await;
    assert!(r.body["metadata"].get("os_distro").is_none());

    // 4xx and the version ranges.
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/images/{}", Uuid::new_v4()),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(message(&r), "Image not found.");
    let r = h
        .call(
            Method::DELETE,
            &format!("/v2.1/images/{demo}"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(message(&r), "You are not allowed to delete the image.");
    let r = h
        .call(Method::GET, "/v2.1/images?limit=x", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .call(Method::GET, "/v2.1/images?marker=nope", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for uri in ["/v2.1/images", "/v2.1/images/detail"] {
        let r = at(&h, "2.36", Method::GET, uri, MEMBER, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
    }
    let r = at(
        &h,
        "2.36",
        Method::GET,
        &format!("/v2.1/images/{demo}"),
        MEMBER,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = at(&h, "2.38", Method::GET, &meta, MEMBER, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = at(&h, "2.39", Method::GET, &meta, MEMBER, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The administrator deletes it through the proxy.
    let r = h
        .call(
            Method::DELETE,
            &format!("/v2.1/images/{demo}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/images/{demo}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    h.stop().await;
}

// ---- os-networks, extensions, usage audit log, external events ----

#[tokio::test]
async fn networks_extensions_audit_log_and_external_events() {
    let h = Harness::with_conductor().await;
    register(&h, "cmp1", "fake").await;

    let r = h
        .call(Method::GET, "/v2.1/os-networks", Some(READER), None)
        .await;
    assert_eq!(r.body, json!({"networks": []}));
    let r = h
        .call(Method::GET, "/v2.1/os-networks/net1", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(message(&r), "Network not found");
    let r = at(&h, "2.36", Method::GET, "/v2.1/os-networks", MEMBER, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    for (method, uri) in [
        (Method::POST, "/v2.1/os-networks"),
        (Method::POST, "/v2.1/os-networks/add"),
        (Method::DELETE, "/v2.1/os-networks/net1"),
        (Method::POST, "/v2.1/os-networks/net1/action"),
    ] {
        let body = (method == Method::POST).then(|| json!({"network": {}}));
        let r = at(&h, "2.60", method.clone(), uri, ADMIN, body).await;
        assert_eq!(r.status, StatusCode::GONE, "{method} {uri}");
        assert_eq!(r.body["computeFault"]["code"], 410);
    }

    let r = h
        .call(Method::GET, "/v2.1/extensions", Some(READER), None)
        .await;
    assert_eq!(r.body["extensions"].as_array().unwrap().len(), 99);
    let r = h
        .call(Method::GET, "/v2.1/extensions/os-hosts", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["extension"]["name"], "Hosts");
    let r = h
        .call(Method::GET, "/v2.1/extensions/nope", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = h
        .call(
            Method::GET,
            "/v2.1/os-instance_usage_audit_log",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let log = &r.body["instance_usage_audit_logs"];
    assert_eq!(log["num_hosts"], 1);
    assert_eq!(log["hosts_not_run"], json!(["cmp1"]));
    assert_eq!(log["overall_status"], "0 of 1 hosts done. 0 errors.");
    let r = h
        .call(
            Method::GET,
            "/v2.1/os-instance_usage_audit_log/2026-03-15%2010:00:00",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(
        r.body["instance_usage_audit_log"]["period_beginning"],
        "2026-02-01 00:00:00"
    );
    assert_eq!(
        r.body["instance_usage_audit_log"]["period_ending"],
        "2026-03-01 00:00:00"
    );
    let r = h
        .call(
            Method::GET,
            "/v2.1/os-instance_usage_audit_log/soon",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(message(&r), "Invalid timestamp for date soon");
    let r = h
        .call(
            Method::GET,
            "/v2.1/os-instance_usage_audit_log",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let building = server(&h, "building").await;
    let running = server(&h, "running").await;
    place(&h, running, "cmp1").await;
    let events = json!({"events": [
        {"name": "network-vif-plugged", "server_uuid": running, "tag": "port1"},
        {"name": "network-changed", "server_uuid": building},
        {"name": "network-changed", "server_uuid": Uuid::new_v4()},
    ]});
    let r = h
        .call(
            Method::POST,
            "/v2.1/os-server-external-events",
            Some(ADMIN),
            Some(events),
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS, "{:?}", r.body);
    let codes: Vec<i64> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [200, 422, 404]);
    assert_eq!(r.body["events"][0]["tag"], "port1");
    assert_eq!(r.body["events"][0]["status"], "completed");
    let ok = json!({"events": [{"name": "network-changed", "server_uuid": running}]});
    let r = h
        .call(
            Method::POST,
            "/v2.1/os-server-external-events",
            Some(ADMIN),
            Some(ok.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h
        .call(
            Method::POST,
            "/v2.1/os-server-external-events",
            Some(MEMBER),
            Some(ok),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    for body in [
        json!({"events": []}),
        json!({"events": [{"name": "volume-extended", "server_uuid": running}]}),
        json!({"events": [{"name": "network-changed", "server_uuid": "not-a-uuid"}]}),
        json!({"events": [{"name": "network-changed"}]}),
    ] {
        let r = h
            .call(
                Method::POST,
                "/v2.1/os-server-external-events",
                Some(ADMIN),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
    }
    // 2.51 knows volume-extended, which needs its tag.
    let r = at(
        &h,
        "2.51",
        Method::POST,
        "/v2.1/os-server-external-events",
        ADMIN,
        Some(json!({"events": [{"name": "volume-extended", "server_uuid": running}]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert_eq!(r.body["events"][0]["code"], 400);
    h.stop().await;
}
