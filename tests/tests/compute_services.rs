//! End-to-end on the embedded log: an operator disables a compute service
//! through `os-services`, and the scheduler no longer places servers on
//! that host.

use std::collections::BTreeSet;
use std::time::Duration;

use novalog_all_in_one::System;
use novalog_tests::{Client, demo_image_id, test_config};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_host_gets_no_new_servers() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.compute.fake_hosts = 2;
    let system = System::start(&cfg, None).await.unwrap();
    let admin = Client::admin(system.api_addr);
    admin.wait_up(WAIT).await.unwrap();
    let (status, services) = admin
        .request(reqwest::Method::GET, "/os-services", None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{services}");
    let hosts: BTreeSet<String> = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["host"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(hosts.len(), 2, "{services}");
    let disabled = hosts.iter().next().unwrap().clone();
    let (status, body) = admin
        .request(
            reqwest::Method::PUT,
            "/os-services/disable-log-reason",
            Some(json!({"host": disabled, "binary": "nova-compute", "disabled_reason": "maintenance"})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    // The scheduler folds `hosts` on its own consumer; a restart makes it
    // catch up with the log before it answers any request, so what follows
    // does not race with the change.
    system.stop().await.unwrap();
    cfg.api.listen = "127.0.0.1:0".into();
    let system = System::start(&cfg, None).await.unwrap();
    let admin = Client::admin(system.api_addr);
    admin.wait_up(WAIT).await.unwrap();

    // Both hosts are empty and RAM weighing spreads: without the disable,
    // four servers would use both hosts.
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            admin
                .create_server(&format!("vm-{i}"), "1", demo_image_id())
                .await
                .unwrap(),
        );
    }
    let built = admin.wait_built(&ids, WAIT).await.unwrap();
    for (id, s) in &built {
        assert_eq!(s["status"], "ACTIVE", "{id}: {s}");
        assert_ne!(
            s["OS-EXT-SRV-ATTR:host"],
            disabled.as_str(),
            "{id} on the disabled host"
        );
    }
    let (_, services) = admin
        .request(
            reqwest::Method::GET,
            &format!("/os-services?host={disabled}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(services["services"][0]["status"], "disabled");
    assert_eq!(services["services"][0]["disabled_reason"], "maintenance");
    system.stop().await.unwrap();
}

/// Regression: each change to a service sent the whole status as the API
/// had last seen it, so changes to different fields at once lost all but
/// the last. Now each is applied to the status as the conductor has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_service_changes_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.compute.fake_hosts = 1;
    let system = System::start(&cfg, None).await.unwrap();
    let admin = Client::admin(system.api_addr);
    admin.wait_up(WAIT).await.unwrap();
    let (_, services) = admin
        .request(reqwest::Method::GET, "/os-services", None)
        .await
        .unwrap();
    let host = services["services"][0]["host"].as_str().unwrap().to_owned();
    for round in 0..5 {
        let disable = admin.request_at(
            Some("2.11"),
            reqwest::Method::PUT,
            "/os-services/disable-log-reason",
            Some(json!({"host": host, "binary": "nova-compute", "disabled_reason": format!("r{round}")})),
        );
        let force = admin.request_at(
            Some("2.11"),
            reqwest::Method::PUT,
            "/os-services/force-down",
            Some(json!({"host": host, "binary": "nova-compute", "forced_down": true})),
        );
        let (a, b) = tokio::join!(disable, force);
        assert_eq!(a.unwrap().0, 200);
        assert_eq!(b.unwrap().0, 200);
        let (_, services) = admin
            .request_at(
                Some("2.11"),
                reqwest::Method::GET,
                &format!("/os-services?host={host}"),
                None,
            )
            .await
            .unwrap();
        let s = &services["services"][0];
        assert_eq!(s["status"], "disabled", "round {round}: {s}");
        assert_eq!(s["disabled_reason"], format!("r{round}"));
        assert_eq!(s["forced_down"], true, "round {round}: {s}");
        // Back to enabled and up for the next round, both at once again.
        let enable = admin.request_at(
            Some("2.11"),
            reqwest::Method::PUT,
            "/os-services/enable",
            Some(json!({"host": host, "binary": "nova-compute"})),
        );
        let up = admin.request_at(
            Some("2.11"),
            reqwest::Method::PUT,
            "/os-services/force-down",
            Some(json!({"host": host, "binary": "nova-compute", "forced_down": false})),
        );
        let (a, b) = tokio::join!(enable, up);
        assert_eq!(a.unwrap().0, 200);
        assert_eq!(b.unwrap().0, 200);
        let (_, services) = admin
            .request_at(
                Some("2.11"),
                reqwest::Method::GET,
                &format!("/os-services?host={host}"),
                None,
            )
            .await
            .unwrap();
        let s = &services["services"][0];
        assert_eq!(s["status"], "enabled", "round {round}: {s}");
        assert_eq!(s["forced_down"], false, "round {round}: {s}");
    }
    system.stop().await.unwrap();
}
