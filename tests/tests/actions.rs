//! End-to-end server actions, every service in one process, on the
//! embedded log and on Kafka (`on_both_logs!`): the fake driver's guests
//! really change power state.

use std::time::Duration;

use novalog_compute::driver::VirtDriver;
use novalog_compute::fake::FakeOptions;
use novalog_schemas::PowerState;
use novalog_tests::{Backend, Client, Cluster, demo_image_id, on_both_logs};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

on_both_logs!(
    power_actions_change_the_guest_on_the_fake_host,
    a_lock_holds_the_owner_but_not_the_administrator,
    a_failing_driver_leaves_a_fault_and_no_task,
    update_metadata_and_tags_go_through_the_conductor,
    power_states_and_locks_survive_a_restart,
);

async fn act(client: &Client, id: Uuid, body: Value) -> (u16, Value) {
    let (status, reply, _) = client.server_action(id, body).await.unwrap();
    (status, reply)
}

/// Waits until the server shows `status` with no task; returns it.
async fn wait_status(client: &Client, id: Uuid, status: &str) -> Value {
    client.wait_status(id, status, WAIT).await
}

fn host_of(s: &Value) -> String {
    s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned()
}

async fn power_actions_change_the_guest_on_the_fake_host(backend: Backend) {
    let c = Cluster::start_with(
        &backend,
        |_| {},
        FakeOptions {
            // Long enough on Kafka (slower to decide) for the suspend below
            // to be decided while the pause is still in progress.
            action_latency: Duration::from_millis(match backend {
                Backend::Embedded => 20,
                Backend::Kafka(_) => 300,
            }),
            ..Default::default()
        },
    )
    .await;
    let (admin, driver) = (&c.admin, &c.driver);
    let id = admin
        .create_server("vm", "1", demo_image_id())
        .await
        .unwrap();
    let built = admin.wait_built(&[id], WAIT).await.unwrap();
    let host = host_of(&built[&id]);
    assert_eq!(driver.get_info(&host, id), Some(PowerState::Running));

    // (body, status after, OS-EXT-STS:vm_state, power_state on the host)
    let steps = [
        (
            json!({"os-stop": null}),
            "SHUTOFF",
            "stopped",
            PowerState::Shutdown,
        ),
        (
            json!({"os-start": null}),
            "ACTIVE",
            "active",
            PowerState::Running,
        ),
        (
            json!({"pause": null}),
            "PAUSED",
            "paused",
            PowerState::Paused,
        ),
        (
            json!({"unpause": null}),
            "ACTIVE",
            "active",
            PowerState::Running,
        ),
        (
            json!({"suspend": null}),
            "SUSPENDED",
            "suspended",
            PowerState::Suspended,
        ),
        (
            json!({"resume": null}),
            "ACTIVE",
            "active",
            PowerState::Running,
        ),
        (
            json!({"reboot": {"type": "SOFT"}}),
            "ACTIVE",
            "active",
            PowerState::Running,
        ),
        (
            json!({"os-stop": null}),
            "SHUTOFF",
            "stopped",
            PowerState::Shutdown,
        ),
        (
            json!({"reboot": {"type": "HARD"}}),
            "ACTIVE",
            "active",
            PowerState::Running,
        ),
    ];
    let mut request_ids = Vec::new();
    for (body, status, vm_state, power) in steps {
        let (code, reply, request_id) = admin.server_action(id, body.clone()).await.unwrap();
        request_ids.push(request_id);
        assert_eq!(code, 202, "{body}: {reply}");
        assert_eq!(reply, Value::Null, "no body");
        let s = wait_status(admin, id, status).await;
        assert_eq!(s["OS-EXT-STS:vm_state"], vm_state, "{body}");
        assert_eq!(s["OS-EXT-STS:power_state"], power.code(), "{body}");
        assert_eq!(driver.get_info(&host, id), Some(power), "{body}");
    }

    // Each request is an instance action, newest first, with its events.
    let (code, list) = admin
        .request(
            Method::GET,
            &format!("/servers/{id}/os-instance-actions"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(code, 200, "{list}");
    let listed: Vec<(String, String)> = list["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["instance_uuid"], id.to_string());
            assert_eq!(a["message"], Value::Null);
            (
                a["action"].as_str().unwrap().to_owned(),
                a["request_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let names: Vec<&str> = listed.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        names,
        [
            "reboot", "stop", "reboot", "resume", "suspend", "unpause", "pause", "start", "stop",
            "create"
        ]
    );
    let mut newest_first = request_ids.clone();
    newest_first.reverse();
    assert_eq!(
        listed[..9]
            .iter()
            .map(|(_, r)| r.clone())
            .collect::<Vec<_>>(),
        newest_first,
        "the request id is the x-openstack-request-id that caused it"
    );
    let (code, detail) = admin
        .request(
            Method::GET,
            &format!("/servers/{id}/os-instance-actions/{}", request_ids[0]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(code, 200, "{detail}");
    let a = &detail["instanceAction"];
    assert_eq!(a["action"], "stop");
    assert_eq!(a["user_id"], "admin");
    let e = &a["events"][0];
    assert_eq!(e["event"], "compute_stop_instance");
    assert_eq!(e["result"], "Success");
    assert!(
        e["finish_time"].is_string() && e["start_time"].is_string(),
        "{e}"
    );
    let (code, _) = admin
        .request(
            Method::GET,
            &format!("/servers/{id}/os-instance-actions/req-nope"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(code, 404);

    // A state Nova does not allow the action from is its 409.
    let (code, reply) = act(admin, id, json!({"os-start": null})).await;
    assert_eq!(code, 409);
    assert_eq!(
        reply["conflictingRequest"]["message"],
        format!("Cannot 'start' instance {id} while it is in vm_state active")
    );
    assert_eq!(driver.get_info(&host, id), Some(PowerState::Running));

    // A task in progress blocks another.
    let slow = act(admin, id, json!({"pause": null})).await;
    assert_eq!(slow.0, 202);
    let s = admin.server(id).await.unwrap().unwrap();
    if s["OS-EXT-STS:task_state"] == "pausing" {
        let (code, reply) = act(admin, id, json!({"suspend": null})).await;
        assert_eq!(code, 409, "{reply}");
        assert_eq!(
            reply["conflictingRequest"]["message"],
            format!("Cannot 'suspend' instance {id} while it is in task_state pausing")
        );
    }
    wait_status(admin, id, "PAUSED").await;

    admin.delete_server(id).await.unwrap();
    admin.wait_gone(&[id], WAIT).await.unwrap();
    assert_eq!(driver.get_info(&host, id), None);
    c.stop().await;
}

async fn a_lock_holds_the_owner_but_not_the_administrator(backend: Backend) {
    let c = Cluster::start(&backend, |_| {}).await;
    let (admin, driver) = (&c.admin, &c.driver);
    let alice = c.client("alice", "p1");
    let id = alice
        .create_server("mine", "1", demo_image_id())
        .await
        .unwrap();
    let built = alice.wait_built(&[id], WAIT).await.unwrap();
    let host = host_of(&admin.server(id).await.unwrap().unwrap());
    assert_eq!(built[&id]["status"], "ACTIVE");

    let (code, _) = act(admin, id, json!({"lock": null})).await;
    assert_eq!(code, 202);
    let (_, s) = alice
        .request_at(Some("2.9"), Method::GET, &format!("/servers/{id}"), None)
        .await
        .unwrap();
    assert_eq!(s["server"]["locked"], true);

    let locked = format!("Instance {id} is locked");
    for body in [
        json!({"os-stop": null}),
        json!({"reboot": {"type": "HARD"}}),
    ] {
        let (code, reply) = act(&alice, id, body).await;
        assert_eq!(code, 409);
        assert_eq!(reply["conflictingRequest"]["message"], locked);
    }
    let (code, reply) = alice
        .request(Method::DELETE, &format!("/servers/{id}"), None)
        .await
        .unwrap();
    assert_eq!(
        (code, &reply["conflictingRequest"]["message"]),
        (409, &json!(locked))
    );
    // The owner cannot lift the administrator's lock.
    let (code, reply) = act(&alice, id, json!({"unlock": null})).await;
    assert_eq!(code, 403, "{reply}");
    assert_eq!(driver.get_info(&host, id), Some(PowerState::Running));

    // The administrator is not held.
    let (code, _) = act(admin, id, json!({"os-stop": null})).await;
    assert_eq!(code, 202);
    wait_status(&alice, id, "SHUTOFF").await;
    assert_eq!(driver.get_info(&host, id), Some(PowerState::Shutdown));

    let (code, _) = act(admin, id, json!({"unlock": null})).await;
    assert_eq!(code, 202);
    let (code, _) = act(&alice, id, json!({"os-start": null})).await;
    assert_eq!(code, 202);
    wait_status(&alice, id, "ACTIVE").await;
    assert_eq!(driver.get_info(&host, id), Some(PowerState::Running));

    // Another project's server does not exist for alice.
    let other = admin
        .create_server("theirs", "1", demo_image_id())
        .await
        .unwrap();
    let (code, reply) = act(&alice, other, json!({"pause": null})).await;
    assert_eq!(code, 404, "{reply}");
    c.stop().await;
}

async fn a_failing_driver_leaves_a_fault_and_no_task(backend: Backend) {
    let c = Cluster::start_with(
        &backend,
        |cfg| cfg.compute.fake_hosts = 1,
        FakeOptions {
            fail_actions: ["fake-host-0".to_string()].into(),
            ..Default::default()
        },
    )
    .await;
    let (admin, driver) = (&c.admin, &c.driver);
    let id = admin
        .create_server("fragile", "1", demo_image_id())
        .await
        .unwrap();
    admin.wait_built(&[id], WAIT).await.unwrap();

    // A failed pause reverts only the task: still ACTIVE and running.
    assert_eq!(act(admin, id, json!({"pause": null})).await.0, 202);
    let s = wait_status(admin, id, "ACTIVE").await;
    assert_eq!(s["OS-EXT-STS:power_state"], 1);
    assert_eq!(
        driver.get_info("fake-host-0", id),
        Some(PowerState::Running)
    );

    // A failed reboot that leaves the guest down is ERROR with its fault.
    assert_eq!(
        act(admin, id, json!({"reboot": {"type": "HARD"}})).await.0,
        202
    );
    let s = wait_status(admin, id, "ERROR").await;
    assert_eq!(s["OS-EXT-STS:power_state"], PowerState::Shutdown.code());
    assert_eq!(s["fault"]["code"], 500);
    assert!(
        s["fault"]["message"]
            .as_str()
            .unwrap()
            .contains("injected reboot failure"),
        "{s}"
    );
    let (_, list) = admin
        .request(
            Method::GET,
            &format!("/servers/{id}/os-instance-actions"),
            None,
        )
        .await
        .unwrap();
    let newest = &list["instanceActions"][0];
    assert_eq!(
        (&newest["action"], &newest["message"]),
        (&json!("reboot"), &json!("Error"))
    );
    let path = format!(
        "/servers/{id}/os-instance-actions/{}",
        newest["request_id"].as_str().unwrap()
    );
    let (_, detail) = admin.request(Method::GET, &path, None).await.unwrap();
    let e = &detail["instanceAction"]["events"][0];
    assert_eq!(e["result"], "Error");
    assert!(
        e["traceback"].as_str().unwrap().contains("reboot_instance"),
        "{e}"
    );
    // Members see no events before 2.51.
    let (_, detail) = c
        .client("someone", "admin")
        .request(Method::GET, &path, None)
        .await
        .unwrap();
    assert!(detail["instanceAction"].get("events").is_none(), "{detail}");
    c.stop().await;
}

async fn update_metadata_and_tags_go_through_the_conductor(backend: Backend) {
    let c = Cluster::start(&backend, |_| {}).await;
    let alice = c.client("alice", "p1");
    let id = alice
        .create_server("named", "1", demo_image_id())
        .await
        .unwrap();
    alice.wait_built(&[id], WAIT).await.unwrap();
    let path = format!("/servers/{id}");
    let v = Some("2.26");

    // PUT /servers/{id}: name and description, answered with the server.
    let (code, s) = alice
        .request_at(
            Some("2.19"),
            Method::PUT,
            &path,
            Some(json!({"server": {"name": "renamed", "description": "web"}})),
        )
        .await
        .unwrap();
    assert_eq!(code, 200, "{s}");
    assert_eq!(
        (&s["server"]["name"], &s["server"]["description"]),
        (&json!("renamed"), &json!("web"))
    );
    let (code, e) = alice
        .request(Method::PUT, &path, Some(json!({"server": {"name": ""}})))
        .await
        .unwrap();
    assert_eq!(code, 400, "{e}");

    // Metadata.
    let meta = format!("{path}/metadata");
    let (code, m) = alice
        .request(
            Method::POST,
            &meta,
            Some(json!({"metadata": {"a": "1", "b": "2"}})),
        )
        .await
        .unwrap();
    assert_eq!((code, &m["metadata"]), (200, &json!({"a": "1", "b": "2"})));
    let (code, m) = alice
        .request(
            Method::PUT,
            &format!("{meta}/b"),
            Some(json!({"meta": {"b": "3"}})),
        )
        .await
        .unwrap();
    assert_eq!((code, &m), (200, &json!({"meta": {"b": "3"}})));
    let (code, e) = alice
        .request(
            Method::PUT,
            &format!("{meta}/b"),
            Some(json!({"meta": {"c": "3"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        (code, &e["badRequest"]["message"]),
        (400, &json!("Request body and URI mismatch"))
    );
    let (code, _) = alice
        .request(Method::DELETE, &format!("{meta}/a"), None)
        .await
        .unwrap();
    assert_eq!(code, 204);
    let (code, e) = alice
        .request(Method::GET, &format!("{meta}/a"), None)
        .await
        .unwrap();
    assert_eq!(
        (code, &e["itemNotFound"]["message"]),
        (404, &json!("Metadata item was not found"))
    );
    let (code, m) = alice
        .request(Method::PUT, &meta, Some(json!({"metadata": {"z": ""}})))
        .await
        .unwrap();
    assert_eq!((code, &m["metadata"]), (200, &json!({"z": ""})));
    assert_eq!(
        alice.server(id).await.unwrap().unwrap()["metadata"],
        json!({"z": ""})
    );

    // Tags (2.26).
    let tags = format!("{path}/tags");
    let (code, _) = alice.request(Method::GET, &tags, None).await.unwrap();
    assert_eq!(code, 404, "no tags before 2.26");
    let (code, _) = alice
        .request_at(v, Method::PUT, &format!("{tags}/red"), None)
        .await
        .unwrap();
    assert_eq!(code, 201);
    let (code, _) = alice
        .request_at(v, Method::PUT, &format!("{tags}/red"), None)
        .await
        .unwrap();
    assert_eq!(code, 204, "already there");
    let (code, e) = alice
        .request_at(v, Method::PUT, &format!("{tags}/a,b"), None)
        .await
        .unwrap();
    assert_eq!(code, 400, "{e}");
    let (code, t) = alice
        .request_at(
            v,
            Method::PUT,
            &tags,
            Some(json!({"tags": ["blue", "green"]})),
        )
        .await
        .unwrap();
    assert_eq!((code, &t), (200, &json!({"tags": ["blue", "green"]})));
    let (code, e) = alice
        .request_at(v, Method::DELETE, &format!("{tags}/red"), None)
        .await
        .unwrap();
    assert_eq!(
        (code, &e["itemNotFound"]["message"]),
        (404, &json!(format!("Instance {id} has no tag 'red'")))
    );
    let (code, _) = alice
        .request_at(v, Method::GET, &format!("{tags}/blue"), None)
        .await
        .unwrap();
    assert_eq!(code, 204);
    let (_, s) = alice.request_at(v, Method::GET, &path, None).await.unwrap();
    assert_eq!(s["server"]["tags"], json!(["blue", "green"]));
    let (code, _) = alice
        .request_at(v, Method::DELETE, &tags, None)
        .await
        .unwrap();
    assert_eq!(code, 204);
    let (_, t) = alice.request_at(v, Method::GET, &tags, None).await.unwrap();
    assert_eq!(t, json!({"tags": []}));

    // A locked server keeps its metadata (Nova's 409).
    assert_eq!(act(&alice, id, json!({"lock": null})).await.0, 202);
    let (code, e) = alice
        .request(Method::POST, &meta, Some(json!({"metadata": {"x": "1"}})))
        .await
        .unwrap();
    assert_eq!(
        (code, &e["conflictingRequest"]["message"]),
        (409, &json!(format!("Instance {id} is locked")))
    );
    // Another project sees none of it.
    let bob = c.client("bob", "p2");
    let (code, _) = bob.request(Method::GET, &meta, None).await.unwrap();
    assert_eq!(code, 404);
    c.stop().await;
}

async fn power_states_and_locks_survive_a_restart(backend: Backend) {
    let c = Cluster::start(&backend, |_| {}).await;
    let admin = &c.admin;
    let ids = [
        admin
            .create_server("off", "1", demo_image_id())
            .await
            .unwrap(),
        admin
            .create_server("paused", "1", demo_image_id())
            .await
            .unwrap(),
    ];
    admin.wait_built(&ids, WAIT).await.unwrap();
    assert_eq!(act(admin, ids[0], json!({"os-stop": null})).await.0, 202);
    assert_eq!(act(admin, ids[1], json!({"pause": null})).await.0, 202);
    assert_eq!(act(admin, ids[1], json!({"lock": null})).await.0, 202);
    wait_status(admin, ids[0], "SHUTOFF").await;
    wait_status(admin, ids[1], "PAUSED").await;
    // A new, empty driver: the agent re-adopts its guests from its store.
    let c = c
        .stop_for_restart()
        .await
        .start_with(FakeOptions::default())
        .await;
    let (admin, driver) = (&c.admin, &c.driver);
    let off = wait_status(admin, ids[0], "SHUTOFF").await;
    let paused = wait_status(admin, ids[1], "PAUSED").await;
    // The agent re-adopted its guests in the power state it left them in.
    assert_eq!(
        driver.get_info(&host_of(&off), ids[0]),
        Some(PowerState::Shutdown)
    );
    assert_eq!(
        driver.get_info(&host_of(&paused), ids[1]),
        Some(PowerState::Paused)
    );
    let (_, s) = admin
        .request_at(
            Some("2.9"),
            Method::GET,
            &format!("/servers/{}", ids[1]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s["server"]["locked"], true);
    // And the conductor still knows each one's state.
    let (code, reply) = act(admin, ids[0], json!({"os-stop": null})).await;
    assert_eq!(code, 409, "{reply}");
    assert_eq!(act(admin, ids[0], json!({"os-start": null})).await.0, 202);
    wait_status(admin, ids[0], "ACTIVE").await;
    assert_eq!(
        driver.get_info(&host_of(&off), ids[0]),
        Some(PowerState::Running)
    );
    let (_, list) = admin
        .request(
            Method::GET,
            &format!("/servers/{}/os-instance-actions", ids[1]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        list["instanceActions"].as_array().unwrap().len(),
        3,
        "create, pause, lock kept"
    );
    c.stop().await;
}
