//! Image writes end to end on the embedded log: every change is an
//! operation the conductor decides on the image's current state, uploads
//! are one-way (queued → saving → active), and readers change nothing.
//! Regressions for issue 9's defects 2, 3 and 5.

use std::net::SocketAddr;
use std::time::Duration;

use md5::{Digest, Md5};
use novalog_all_in_one::System;
use novalog_tests::test_config;
use reqwest::Method;
use serde_json::{Value, json};

const PATCH: &str = "application/openstack-images-v2.1-json-patch";

/// An Image API client speaking as one noauth2 user.
#[derive(Clone)]
struct Glance {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Glance {
    fn new(addr: SocketAddr, token: &str) -> Self {
        Glance {
            base: format!("http://{addr}/image/v2"),
            token: token.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, Vec<u8>) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Auth-Token", &self.token);
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.bytes().await.unwrap().to_vec())
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, bytes) = self
            .send(
                method,
                path,
                content_type,
                body.map(|b| b.to_string().into_bytes()),
            )
            .await;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    async fn create(&self, body: Value) -> (u16, Value) {
        self.json(
            Method::POST,
            "/images",
            Some("application/json"),
            Some(body),
        )
        .await
    }

    async fn show(&self, id: &str) -> Value {
        let (status, body) = self
            .json(Method::GET, &format!("/images/{id}"), None, None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn patch(&self, id: &str, ops: Value) -> (u16, Value) {
        self.json(
            Method::PATCH,
            &format!("/images/{id}"),
            Some(PATCH),
            Some(ops),
        )
        .await
    }

    async fn upload(&self, id: &str, data: Vec<u8>) -> u16 {
        self.send(
            Method::PUT,
            &format!("/images/{id}/file"),
            Some("application/octet-stream"),
            Some(data),
        )
        .await
        .0
    }

    async fn download(&self, id: &str) -> (u16, Vec<u8>) {
        self.send(Method::GET, &format!("/images/{id}/file"), None, None)
            .await
    }
}

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn start() -> (tempfile::TempDir, System) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(dir.path());
    let system = System::start(&cfg, None).await.unwrap();
    (dir, system)
}

async fn queued_image(g: &Glance, name: &str) -> String {
    let (status, body) = g
        .create(json!({"name": name, "disk_format": "raw", "container_format": "bare"}))
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// Defect 2: twenty concurrent PATCHes, each adding its own property, all
/// answered 200 and a few of the properties were gone afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_image_patches_keep_every_property() {
    let (_dir, system) = start().await;
    let g = Glance::new(system.api_addr, "alice:p1");
    let id = queued_image(&g, "patched").await;

    let patches = (0..20).map(|n| {
        let (g, id) = (g.clone(), id.clone());
        async move {
            g.patch(
                &id,
                json!([{"op": "add", "path": format!("/prop_{n}"), "value": format!("v{n}")}]),
            )
            .await
        }
    });
    for (status, body) in futures::future::join_all(patches).await {
        assert_eq!(status, 200, "{body}");
    }
    let image = g.show(&id).await;
    for n in 0..20 {
        assert_eq!(image[format!("prop_{n}")], format!("v{n}"), "prop_{n}");
    }
    system.stop().await.unwrap();
}

/// Defect 3: with PATCHes racing an upload, the image ended queued with
/// no checksum, and a second upload then replaced an active image's data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_racing_an_upload_leave_it_active_with_its_data() {
    let (_dir, system) = start().await;
    let g = Glance::new(system.api_addr, "alice:p1");
    let id = queued_image(&g, "raced").await;
    let data: Vec<u8> = (0..(4 << 20)).map(|i: u32| (i % 251) as u8).collect();

    let upload = {
        let (g, id, data) = (g.clone(), id.clone(), data.clone());
        tokio::spawn(async move { g.upload(&id, data).await })
    };
    let patches = (0..20).map(|n| {
        let (g, id) = (g.clone(), id.clone());
        async move {
            g.patch(
                &id,
                json!([{"op": "add", "path": format!("/race_{n}"), "value": "x"}]),
            )
            .await
        }
    });
    for (status, body) in futures::future::join_all(patches).await {
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(upload.await.unwrap(), 204);

    let image = g.show(&id).await;
    assert_eq!(image["status"], "active", "{image}");
    assert_eq!(image["checksum"], md5_hex(&data));
    assert_eq!(image["size"], data.len());
    for n in 0..20 {
        assert_eq!(image[format!("race_{n}")], "x", "race_{n}");
    }
    // PATCHes after the upload do not touch its state either.
    let (status, after) = g
        .patch(
            &id,
            json!([{"op": "replace", "path": "/name", "value": "renamed"}]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (after["status"].clone(), after["checksum"].clone()),
        (image["status"].clone(), image["checksum"].clone())
    );

    // A second upload with other bytes is Glance's 409 and changes nothing.
    let (status, body) = g
        .send(
            Method::PUT,
            &format!("/images/{id}/file"),
            Some("application/octet-stream"),
            Some(b"other bytes".to_vec()),
        )
        .await;
    assert_eq!(status, 409);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body["message"],
        "Image status transition from active to saving is not allowed"
    );
    let (status, stored) = g.download(&id).await;
    assert_eq!(status, 200);
    assert!(stored == data, "the data is unchanged");
    assert_eq!(g.show(&id).await["checksum"], md5_hex(&data));
    system.stop().await.unwrap();
}

/// Two uploads at once: exactly one is accepted and its bytes are the
/// image's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_store_one_image_once() {
    let (_dir, system) = start().await;
    let g = Glance::new(system.api_addr, "alice:p1");
    let id = queued_image(&g, "twice").await;
    let uploads = [vec![1u8; 1 << 20], vec![2u8; 1 << 20]].map(|data| {
        let (g, id) = (g.clone(), id.clone());
        tokio::spawn(async move { (g.upload(&id, data.clone()).await, data) })
    });
    let mut accepted = Vec::new();
    for u in uploads {
        let (status, data) = u.await.unwrap();
        assert!(status == 204 || status == 409, "{status}");
        if status == 204 {
            accepted.push(data);
        }
    }
    assert_eq!(accepted.len(), 1, "exactly one upload wins");
    let image = g.show(&id).await;
    assert_eq!(image["status"], "active");
    assert_eq!(image["checksum"], md5_hex(&accepted[0]));
    assert!(g.download(&id).await.1 == accepted[0]);
    system.stop().await.unwrap();
}

/// Defect 5: Glance's default policy needs member (or admin) to create,
/// change, upload to and delete an image; a reader gets 403 and nothing
/// changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_cannot_change_images() {
    let (_dir, system) = start().await;
    let member = Glance::new(system.api_addr, "alice:p1");
    let reader = Glance::new(system.api_addr, "reader:p1");
    let id = queued_image(&member, "guarded").await;

    let (status, body) = reader.create(json!({"name": "nope"})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["message"],
        "You are not authorized to complete add_image action."
    );
    let (status, _) = reader
        .patch(&id, json!([{"op": "add", "path": "/k", "value": "v"}]))
        .await;
    assert_eq!(status, 403);
    assert_eq!(reader.upload(&id, vec![1, 2, 3]).await, 403);
    let (status, _) = reader
        .json(Method::DELETE, &format!("/images/{id}"), None, None)
        .await;
    assert_eq!(status, 403);

    // The reader still reads.
    let image = reader.show(&id).await;
    assert_eq!(image["status"], "queued");
    assert!(image.get("k").is_none());
    let (status, list) = reader.json(Method::GET, "/images", None, None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(names.contains(&"guarded"), "{names:?}");
    assert!(!names.contains(&"nope"));
    system.stop().await.unwrap();
}
