//! End-to-end sagas, every service in one process, on the embedded log and
//! on Kafka (`on_both_logs!`): resize with confirm and revert, cold
//! migrate, rebuild, live migrate, failures injected in the fake driver,
//! steps that never answer, the build timeout and auto-confirm. After each
//! flow every host's usage (as its agent reports it) equals the flavors of
//! the instances on it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use novalog_runtime::Config;
use novalog_schemas::HostUsage;
use novalog_tests::{Backend, Client, Cluster, demo_image_id, host_usage, on_both_logs};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

on_both_logs!(
    resize_then_confirm_moves_the_server_and_its_claims,
    revert_brings_the_server_back_with_its_old_flavor,
    cold_migrate_of_a_stopped_server_keeps_it_stopped,
    a_failed_finish_is_compensated_and_a_silent_one_times_out,
    rebuild_keeps_the_name_and_changes_the_image,
    auto_confirm_after_the_window_and_live_migration,
    a_build_whose_host_never_answers_ends_in_error_with_its_claim_released,
    evacuate_from_a_host_whose_heartbeats_stopped,
    evacuate_needs_the_source_down_and_forced_down_counts,
    a_step_deadline_survives_a_restart,
    a_running_live_migration_is_listed_on_its_server_until_it_ends,
);

/// Three fake hosts and a fast timer tick, then `tune`.
async fn cloud(backend: &Backend, tune: impl FnOnce(&mut Config)) -> Cluster {
    Cluster::start(backend, |cfg| {
        cfg.compute.fake_hosts = 3;
        cfg.conductor.timer_tick_ms = 50;
        tune(cfg);
    })
    .await
}

/// What the saga tests ask of a cluster.
trait Flows {
    async fn boot(&self, flavor: &str) -> Uuid;
    async fn act(&self, id: Uuid, body: Value) -> (u16, Value);
    async fn wait_evacuated(&self, id: Uuid, from: &str) -> Value;
    async fn wait_status(&self, id: Uuid, status: &str) -> Value;
    async fn usage(&self) -> HashMap<String, HostUsage>;
    async fn wait_usage_matches(&self);
    async fn migrations(&self, query: &str) -> Vec<Value>;
}

impl Flows for Cluster {
    async fn boot(&self, flavor: &str) -> Uuid {
        let id = self
            .admin
            .create_server("vm", flavor, demo_image_id())
            .await
            .unwrap();
        self.admin.wait_built(&[id], WAIT).await.unwrap();
        id
    }

    async fn act(&self, id: Uuid, body: Value) -> (u16, Value) {
        let (status, reply, _) = self.admin.server_action(id, body).await.unwrap();
        (status, reply)
    }

    /// Waits until `id` is ACTIVE on a host other than `from` and the
    /// source let go of its guest (it cleans up after the destination is
    /// ACTIVE); returns the server.
    async fn wait_evacuated(&self, id: Uuid, from: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        let s = loop {
            let s = self.wait_status(id, "ACTIVE").await;
            if host_of(&s) != from {
                break s;
            }
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        while self.driver.running_on(id) != vec![host_of(&s)] {
            assert!(
                Instant::now() < deadline,
                "{:?}",
                self.driver.running_on(id)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        s
    }

    /// Waits until the server shows `status` with no task.
    async fn wait_status(&self, id: Uuid, status: &str) -> Value {
        self.admin.wait_status(id, status, WAIT).await
    }

    /// Each host's newest usage, as its facts and heartbeats report it.
    async fn usage(&self) -> HashMap<String, HostUsage> {
        host_usage(self.log(), self.topics()).await
    }

    /// Waits until every host's memory in use equals the flavors of the
    /// servers on it (RAM of m1.tiny 512, m1.small 2048).
    async fn wait_usage_matches(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut expected: HashMap<String, u64> = HashMap::new();
            for s in self.admin.servers_detail().await.unwrap() {
                let host = s["OS-EXT-SRV-ATTR:host"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let ram = match s["flavor"]["id"].as_str() {
                    Some("1") => 512,
                    Some("2") => 2048,
                    other => panic!("unexpected flavor {other:?}"),
                };
                *expected.entry(host).or_default() += ram;
            }
            let usage = self.usage().await;
            let actual: HashMap<String, u64> = usage
                .iter()
                .filter(|(_, u)| u.memory_mb_used > 0)
                .map(|(h, u)| (h.clone(), u.memory_mb_used))
                .collect();
            if actual == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "usage {actual:?} never matched the flavors {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn migrations(&self, query: &str) -> Vec<Value> {
        let (status, body) = self
            .admin
            .request_at(
                Some("2.23"),
                Method::GET,
                &format!("/os-migrations{query}"),
                None,
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        body["migrations"].as_array().unwrap().clone()
    }
}

fn host_of(s: &Value) -> String {
    s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned()
}

async fn resize_then_confirm_moves_the_server_and_its_claims(backend: Backend) {
    let c = cloud(&backend, |_| {}).await;
    let id = c.boot("1").await;
    let before = host_of(&c.wait_status(id, "ACTIVE").await);
    let (status, _) = c.act(id, json!({"resize": {"flavorRef": "2"}})).await;
    assert_eq!(status, 202);
    let s = c.wait_status(id, "VERIFY_RESIZE").await;
    let after = host_of(&s);
    assert_ne!(before, after);
    assert_eq!(s["flavor"]["id"], "2");
    let m = c.migrations(&format!("?instance_uuid={id}")).await;
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["status"], "finished");
    assert_eq!(m[0]["migration_type"], "resize");
    assert_eq!(m[0]["source_compute"], before.as_str());
    assert_eq!(m[0]["dest_compute"], after.as_str());
    // Both claims are held until confirm.
    let usage = c.usage().await;
    assert_eq!(usage[&before].memory_mb_used, 512);
    assert_eq!(usage[&after].memory_mb_used, 2048);

    let (status, _) = c.act(id, json!({"confirmResize": null})).await;
    assert_eq!(status, 204);
    let s = c.wait_status(id, "ACTIVE").await;
    assert_eq!(host_of(&s), after);
    assert_eq!(c.driver.running_on(id), std::slice::from_ref(&after));
    assert_eq!(c.migrations("?status=confirmed").await.len(), 1);
    c.wait_usage_matches().await;
    // Confirming again is Nova's 409.
    let (status, body) = c.act(id, json!({"confirmResize": null})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["conflictingRequest"]["message"],
        format!("Cannot 'confirmResize' instance {id} while it is in vm_state active")
    );
    c.stop().await;
}

async fn revert_brings_the_server_back_with_its_old_flavor(backend: Backend) {
    let c = cloud(&backend, |_| {}).await;
    let id = c.boot("1").await;
    let before = host_of(&c.wait_status(id, "ACTIVE").await);
    c.act(id, json!({"resize": {"flavorRef": "2"}})).await;
    c.wait_status(id, "VERIFY_RESIZE").await;
    let (status, _) = c.act(id, json!({"revertResize": null})).await;
    assert_eq!(status, 202);
    let s = c.wait_status(id, "ACTIVE").await;
    assert_eq!(host_of(&s), before);
    assert_eq!(s["flavor"]["id"], "1");
    assert_eq!(c.driver.running_on(id), [before]);
    assert_eq!(c.migrations("").await[0]["status"], "reverted");
    c.wait_usage_matches().await;
    c.stop().await;
}

async fn cold_migrate_of_a_stopped_server_keeps_it_stopped(backend: Backend) {
    let c = cloud(&backend, |_| {}).await;
    let id = c.boot("1").await;
    c.act(id, json!({"os-stop": null})).await;
    let before = host_of(&c.wait_status(id, "SHUTOFF").await);
    let member = Client::new(c.system.api_addr, "alice", "admin");
    let (status, body, _) = member
        .server_action(id, json!({"migrate": null}))
        .await
        .unwrap();
    assert_eq!(status, 403, "migrate is for administrators: {body}");
    let (status, _) = c.act(id, json!({"migrate": null})).await;
    assert_eq!(status, 202);
    c.wait_status(id, "VERIFY_RESIZE").await;
    c.act(id, json!({"confirmResize": null})).await;
    let s = c.wait_status(id, "SHUTOFF").await;
    assert_ne!(host_of(&s), before);
    assert_eq!(s["OS-EXT-STS:power_state"], 4);
    assert!(c.driver.running_on(id).is_empty());
    assert_eq!(c.migrations("?migration_type=migration").await.len(), 1);
    c.wait_usage_matches().await;
    c.stop().await;
}

async fn a_failed_finish_is_compensated_and_a_silent_one_times_out(backend: Backend) {
    let c = cloud(&backend, |cfg| cfg.conductor.step_timeout = 2).await;
    let a = c.boot("1").await;
    let b = c.boot("1").await;
    c.wait_status(a, "ACTIVE").await;
    c.wait_status(b, "ACTIVE").await;
    c.driver.fail_step("finish_migration", "*");
    c.act(a, json!({"resize": {"flavorRef": "2"}})).await;
    let s = c.wait_status(a, "ACTIVE").await;
    assert_eq!(s["flavor"]["id"], "1");
    assert_eq!(
        c.migrations(&format!("?instance_uuid={a}")).await[0]["status"],
        "error"
    );
    c.driver.heal();
    c.driver.silence_step("finish_migration", "*");
    c.act(b, json!({"resize": {"flavorRef": "2"}})).await;
    let s = c.wait_status(b, "ACTIVE").await;
    assert_eq!(s["flavor"]["id"], "1");
    assert_eq!(c.driver.running_on(b).len(), 1, "running on one host only");
    c.driver.heal();
    c.wait_usage_matches().await;
    c.stop().await;
}

async fn rebuild_keeps_the_name_and_changes_the_image(backend: Backend) {
    let c = cloud(&backend, |_| {}).await;
    let id = c.boot("1").await;
    c.wait_status(id, "ACTIVE").await;
    let (status, body) = c
        .act(
            id,
            json!({"rebuild": {"imageRef": demo_image_id(), "metadata": {"role": "web"}}}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["server"]["id"], id.to_string());
    assert!(body["server"]["adminPass"].is_string());
    let s = c.wait_status(id, "ACTIVE").await;
    assert_eq!(s["name"], "vm");
    assert_eq!(s["metadata"], json!({"role": "web"}));
    assert_eq!(c.driver.rebuild_count(id), 1);
    let (status, body) = c
        .act(id, json!({"rebuild": {"imageRef": Uuid::new_v4()}}))
        .await;
    assert_eq!(status, 400, "{body}");
    c.wait_usage_matches().await;
    c.stop().await;
}

async fn auto_confirm_after_the_window_and_live_migration(backend: Backend) {
    let c = cloud(&backend, |cfg| cfg.resize_confirm_window = 1).await;
    let id = c.boot("1").await;
    c.wait_status(id, "ACTIVE").await;
    c.act(id, json!({"resize": {"flavorRef": "2"}})).await;
    // Confirmed without being asked.
    let deadline = Instant::now() + WAIT;
    while c.migrations("").await[0]["status"] != "confirmed" {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = c.wait_status(id, "ACTIVE").await;
    let from = host_of(&s);
    let (status, body) = c
        .act(
            id,
            json!({"os-migrateLive": {"host": null, "block_migration": "auto"}}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + WAIT;
    loop {
        let s = c.wait_status(id, "ACTIVE").await;
        if host_of(&s) != from {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(c.driver.running_on(id).len(), 1);
    c.wait_usage_matches().await;
    c.stop().await;
}

async fn a_build_whose_host_never_answers_ends_in_error_with_its_claim_released(backend: Backend) {
    let c = cloud(&backend, |cfg| cfg.instance_build_timeout = 2).await;
    c.driver.silence_step("spawn", "*");
    let id = c
        .admin
        .create_server("stuck", "1", demo_image_id())
        .await
        .unwrap();
    let s = c.wait_status(id, "ERROR").await;
    assert!(
        s["fault"]["message"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{s}"
    );
    c.driver.heal();
    // The host let go of the claim it made.
    let deadline = Instant::now() + WAIT;
    while c.usage().await.values().any(|u| u.memory_mb_used > 0) {
        assert!(Instant::now() < deadline, "{:?}", c.usage().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.stop().await;
}

async fn evacuate_from_a_host_whose_heartbeats_stopped(backend: Backend) {
    // Heartbeats rarer than service_down_time: every host looks down to
    // the API soon after it registered; the scheduler is told not to mind.
    let c = cloud(&backend, |cfg| {
        cfg.report_interval = 3600;
        cfg.service_down_time = 1;
        cfg.filter_scheduler
            .enabled_filters
            .retain(|f| f != "ComputeFilter");
    })
    .await;
    let id = c.boot("1").await;
    let from = host_of(&c.wait_status(id, "ACTIVE").await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let member = Client::new(c.system.api_addr, "alice", "admin");
    let (status, _, _) = member
        .server_action(id, json!({"evacuate": {}}))
        .await
        .unwrap();
    assert_eq!(status, 403, "evacuate is for administrators");
    let (status, body) = c.act(id, json!({"evacuate": {}})).await;
    assert_eq!(status, 200, "{body}");
    c.wait_evacuated(id, &from).await;
    let m = c.migrations("?migration_type=evacuation").await;
    assert_eq!(m[0]["status"], "done");
    // The source (back, here never gone) cleaned up its guest and claim.
    c.wait_usage_matches().await;
    c.stop().await;
}

async fn evacuate_needs_the_source_down_and_forced_down_counts(backend: Backend) {
    // Heartbeats stay fresh: only an operator's forced_down makes the
    // source down; disabling it is not enough (Nova's servicegroup check).
    let c = cloud(&backend, |_| {}).await;
    let id = c.boot("1").await;
    let from = host_of(&c.wait_status(id, "ACTIVE").await);
    let service = |body: Value| {
        let admin = &c.admin;
        async move {
            admin
                .request_at(
                    Some("2.11"),
                    reqwest::Method::PUT,
                    &format!("/os-services/{}", body["path"].as_str().unwrap()),
                    Some(body["body"].clone()),
                )
                .await
                .unwrap()
        }
    };
    let (status, body) = service(json!({"path": "disable",
        "body": {"host": from, "binary": "nova-compute"}}))
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c.act(id, json!({"evacuate": {}})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains("is still in use"),
        "a disabled host that still beats is up: {body}"
    );
    let (status, body) = service(json!({"path": "force-down",
        "body": {"host": from, "binary": "nova-compute", "forced_down": true}}))
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c.act(id, json!({"evacuate": {}})).await;
    assert_eq!(status, 200, "{body}");
    c.wait_evacuated(id, &from).await;
    c.wait_usage_matches().await;
    c.stop().await;
}

async fn a_step_deadline_survives_a_restart(backend: Backend) {
    let c = cloud(&backend, |cfg| cfg.conductor.step_timeout = 3).await;
    let id = c.boot("1").await;
    c.driver.silence_step("finish_migration", "*");
    let (status, _) = c.act(id, json!({"resize": {"flavorRef": "2"}})).await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + WAIT;
    while c.admin.server(id).await.unwrap().unwrap()["OS-EXT-STS:task_state"] != "resize_finish" {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Down before the deadline; up again after it.
    let stopped = c.stop_for_restart().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let c = stopped.start().await;
    let s = c.wait_status(id, "ACTIVE").await;
    assert_eq!(s["flavor"]["id"], "1");
    let m = c.migrations("").await;
    assert_eq!(m[0]["status"], "error");
    c.wait_usage_matches().await;
    c.stop().await;
}

async fn a_running_live_migration_is_listed_on_its_server_until_it_ends(backend: Backend) {
    let c = cloud(&backend, |cfg| cfg.conductor.step_timeout = 2).await;
    let id = c.boot("1").await;
    let from = host_of(&c.wait_status(id, "ACTIVE").await);
    c.driver.silence_step("live_migration", "*");
    let (status, body) = c
        .act(
            id,
            json!({"os-migrateLive": {"host": null, "block_migration": "auto"}}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let path = format!("/servers/{id}/migrations");
    let deadline = Instant::now() + WAIT;
    let list = loop {
        let (status, body) = c
            .admin
            .request_at(Some("2.23"), Method::GET, &path, None)
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        // preparing (the destination claims), then running.
        if body["migrations"][0]["status"] == "running" {
            break body;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let m = &list["migrations"][0];
    assert_eq!(m["status"], "running");
    assert_eq!(m["server_uuid"], id.to_string());
    assert_eq!(m["source_compute"], from.as_str());
    let (status, shown) = c
        .admin
        .request_at(
            Some("2.23"),
            Method::GET,
            &format!("{path}/{}", m["id"]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["migration"]["id"], m["id"]);
    // The source never answers: the step times out and the server is left
    // in ERROR naming it; the migration is no longer in progress.
    let s = c.wait_status(id, "ERROR").await;
    assert!(
        s["fault"]["message"]
            .as_str()
            .unwrap()
            .contains("live_migration"),
        "{s}"
    );
    let (_, body) = c
        .admin
        .request_at(Some("2.23"), Method::GET, &path, None)
        .await
        .unwrap();
    assert_eq!(body["migrations"], json!([]));
    c.driver.heal();
    c.stop().await;
}
