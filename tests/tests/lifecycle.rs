//! createImage, console output and soft delete end to end, every service
//! in one process, on the embedded log and on Kafka (`on_both_logs!`):
//! the snapshot's bytes are the fake guest's disk in the image service's
//! store, a server boots from it, the console is read through the host,
//! and a soft-deleted server is restored, then reclaimed by the
//! conductor's timer.

use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use novalog_tests::{Backend, Client, Cluster, demo_image_id, on_both_logs};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

on_both_logs!(
    a_snapshot_holds_the_guests_disk_and_boots_a_server,
    soft_delete_restores_and_reclaims,
    each_action_answers_novas_409_from_the_states_nova_refuses,
);

/// The image as the image service shows it to the administrator.
async fn image(c: &Cluster, id: &str) -> Value {
    reqwest::Client::new()
        .get(format!("http://{}/image/v2/images/{id}", c.api_addr()))
        .header("X-Auth-Token", "admin:admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_image(c: &Cluster, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let i = image(c, id).await;
        if i["status"] == status {
            return i;
        }
        assert!(Instant::now() < deadline, "{id} never {status}: {i}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn built(client: &Client, name: &str, image: &str) -> Uuid {
    let (status, body) = client
        .request(
            Method::POST,
            "/servers",
            Some(json!({"server": {"name": name, "flavorRef": "1", "imageRef": image, "networks": "none"}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let id = Uuid::parse_str(body["server"]["id"].as_str().unwrap()).unwrap();
    client.wait_status(id, "ACTIVE", WAIT).await;
    id
}

async fn a_snapshot_holds_the_guests_disk_and_boots_a_server(backend: Backend) {
    let c = Cluster::start(&backend, |_| {}).await;
    let client = c.client("demo", "demo");
    let id = built(&client, "snapped", &demo_image_id().to_string()).await;
    let action = format!("/servers/{id}/action");
    // 2.45: the image id in the body.
    let (status, body) = client
        .request_at(
            Some("2.45"),
            Method::POST,
            &action,
            Some(json!({"createImage": {"name": "snap", "metadata": {"purpose": "test"}}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let image_id = body["image_id"].as_str().unwrap().to_owned();
    let snap = wait_image(&c, &image_id, "active").await;
    assert_eq!(snap["image_type"], "snapshot", "{snap}");
    assert_eq!(snap["instance_uuid"], id.to_string(), "{snap}");
    assert_eq!(snap["base_image_ref"], demo_image_id().to_string());
    assert_eq!(snap["purpose"], "test");
    // The bytes in the store are the fake guest's disk: what it printed
    // on its console ends them, and the image's checksum is theirs.
    let bytes = std::fs::read(c.cfg.data_dir.join("images").join(&image_id)).unwrap();
    assert!(String::from_utf8_lossy(&bytes).contains("login:"));
    assert_eq!(snap["size"], bytes.len() as u64, "{snap}");
    let md5: String = Md5::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(snap["checksum"], md5);
    // The server is as it was; its actions list the snapshot.
    let s = client.wait_status(id, "ACTIVE", WAIT).await;
    assert!(s["OS-EXT-STS:task_state"].is_null());
    // Before 2.45: the image's address in Location, no body.
    let (status, body) = client
        .request_at(
            Some("2.44"),
            Method::POST,
            &action,
            Some(json!({"createImage": {"name": "snap-2"}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    assert!(body.is_null(), "{body}");
    // A server boots from the snapshot.
    let from = built(&client, "from-snap", &image_id).await;
    let s = client.wait_status(from, "ACTIVE", WAIT).await;
    assert_eq!(s["image"]["id"], image_id.as_str(), "{s}");

    // The console, read through the host: the last two lines.
    let (status, body) = client
        .request(
            Method::POST,
            &action,
            Some(json!({"os-getConsoleOutput": {"length": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let output = body["output"].as_str().unwrap();
    assert!(output.contains("login:"), "{output}");
    assert_eq!(output.split('\n').count(), 2, "{output:?}");
    let (status, _) = client
        .request(
            Method::POST,
            &action,
            Some(json!({"os-getConsoleOutput": {"length": -2}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 400);
    c.stop().await;
}

async fn soft_delete_restores_and_reclaims(backend: Backend) {
    let c = Cluster::start(&backend, |cfg| {
        cfg.reclaim_instance_interval = 2;
    })
    .await;
    let client = c.client("demo", "demo");
    let id = built(&client, "doomed", &demo_image_id().to_string()).await;
    let action = format!("/servers/{id}/action");
    let (status, _) = client
        .request(Method::DELETE, &format!("/servers/{id}"), None)
        .await
        .unwrap();
    assert_eq!(status, 204);
    let s = client.wait_status(id, "SOFT_DELETED", WAIT).await;
    assert_eq!(s["OS-EXT-STS:power_state"], 4, "powered off: {s}");
    let (status, body) = client
        .request(Method::POST, &action, Some(json!({"restore": null})))
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    client.wait_status(id, "ACTIVE", WAIT).await;
    // Restoring what is not soft-deleted is Nova's 409.
    let (status, _) = client
        .request(Method::POST, &action, Some(json!({"restore": null})))
        .await
        .unwrap();
    assert_eq!(status, 409);
    // Deleted again and left alone: the reclaim deletes it for real.
    client
        .request(Method::DELETE, &format!("/servers/{id}"), None)
        .await
        .unwrap();
    client.wait_status(id, "SOFT_DELETED", WAIT).await;
    client.wait_gone(&[id], WAIT).await.unwrap();
    c.stop().await;
}

async fn post(client: &Client, id: Uuid, version: Option<&str>, body: Value) -> (u16, String) {
    let (status, reply) = client
        .request_at(
            version,
            Method::POST,
            &format!("/servers/{id}/action"),
            Some(body),
        )
        .await
        .unwrap();
    let message = reply
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(|f| f["message"].as_str())
        .unwrap_or_default()
        .to_owned();
    (status, message)
}

async fn each_action_answers_novas_409_from_the_states_nova_refuses(backend: Backend) {
    let c = Cluster::start(&backend, |_| {}).await;
    let owner = c.client("demo", "demo");
    let admin = &c.admin;
    let id = built(&owner, "refused", &demo_image_id().to_string()).await;
    let crash = json!({"trigger_crash_dump": null});
    let snap = json!({"createImage": {"name": "s"}});
    let restore = json!({"restore": null});

    // SHUTOFF: no crash dump (not ACTIVE, PAUSED, RESCUED, RESIZED,
    // ERROR), no restore (not SOFT_DELETED); a snapshot is fine.
    assert_eq!(
        post(&owner, id, None, json!({"os-stop": null})).await.0,
        202
    );
    owner.wait_status(id, "SHUTOFF", WAIT).await;
    let (status, message) = post(&owner, id, Some("2.17"), crash.clone()).await;
    assert_eq!(status, 409, "{message}");
    assert_eq!(
        message,
        format!("Cannot 'trigger_crash_dump' instance {id} while it is in vm_state stopped")
    );
    let (status, message) = post(&owner, id, None, restore.clone()).await;
    assert_eq!(status, 409);
    assert_eq!(
        message,
        format!("Cannot 'restore' instance {id} while it is in vm_state stopped")
    );
    assert_eq!(post(&owner, id, None, snap.clone()).await.0, 202);
    owner.wait_status(id, "SHUTOFF", WAIT).await;
    assert_eq!(
        post(&owner, id, None, json!({"os-start": null})).await.0,
        202
    );
    owner.wait_status(id, "ACTIVE", WAIT).await;

    // RESCUE: no snapshot.
    assert_eq!(post(&owner, id, None, json!({"rescue": null})).await.0, 200);
    owner.wait_status(id, "RESCUE", WAIT).await;
    let (status, message) = post(&owner, id, None, snap.clone()).await;
    assert_eq!(status, 409);
    assert_eq!(
        message,
        format!("Cannot 'createImage' instance {id} while it is in vm_state rescued")
    );
    assert_eq!(
        post(&owner, id, None, json!({"unrescue": null})).await.0,
        202
    );
    owner.wait_status(id, "ACTIVE", WAIT).await;

    // Locked by the administrator: the owner's crash dump is refused, a
    // snapshot is not (Nova checks no lock for it).
    assert_eq!(post(admin, id, None, json!({"lock": null})).await.0, 202);
    let (status, message) = post(&owner, id, Some("2.17"), crash.clone()).await;
    assert_eq!((status, message), (409, format!("Instance {id} is locked")));
    assert_eq!(post(&owner, id, None, snap.clone()).await.0, 202);
    owner.wait_status(id, "ACTIVE", WAIT).await;
    assert_eq!(post(admin, id, None, json!({"unlock": null})).await.0, 202);

    // os-resetState is the administrator's; ERROR refuses a snapshot.
    let to_error = json!({"os-resetState": {"state": "error"}});
    assert_eq!(post(&owner, id, None, to_error.clone()).await.0, 403);
    assert_eq!(post(admin, id, None, to_error).await.0, 202);
    owner.wait_status(id, "ERROR", WAIT).await;
    let (status, message) = post(&owner, id, None, snap).await;
    assert_eq!(status, 409);
    assert_eq!(
        message,
        format!("Cannot 'createImage' instance {id} while it is in vm_state error")
    );
    // ERROR allows a crash dump: the fake guest panics.
    assert_eq!(post(&owner, id, Some("2.17"), crash).await.0, 202);
    let deadline = Instant::now() + WAIT;
    while !c.driver.console_log(id).contains("Kernel panic") {
        assert!(Instant::now() < deadline, "{}", c.driver.console_log(id));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.stop().await;
}
