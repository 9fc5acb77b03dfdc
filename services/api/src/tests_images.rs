//! Image API router tests: Glance's default policy over every image route
//! and role, and the bounds, on the harness of [`crate::tests`] (whose
//! fake conductor decides images with the same rules as the real one).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::tests::{ADMIN, Harness, MEMBER, OTHER};

const READER: &str = "reader:p1";
const PATCH: (&str, &str) = (
    "content-type",
    "application/openstack-images-v2.1-json-patch",
);
const OCTETS: (&str, &str) = ("content-type", "application/octet-stream");

/// The callers of the table: an administrator of another project, p1's
/// member and reader, p2's member, and nobody.
const CALLERS: [(&str, Option<&str>); 5] = [
    ("admin", Some(ADMIN)),
    ("member", Some(MEMBER)),
    ("reader", Some(READER)),
    ("other project's member", Some(OTHER)),
    ("no token", None),
];

#[derive(Clone, Copy, Debug)]
enum Route {
    List,
    Create,
    Show,
    Patch,
    Delete,
    Upload,
    Download,
}

/// A fresh image for one cell of the table: p1's private one, or an
/// administrator's public one; with data when the route reads it.
async fn fresh(h: &Harness, public: bool, active: bool) -> String {
    let (owner, body) = if public {
        (ADMIN, json!({"name": "pub", "visibility": "public"}))
    } else {
        (MEMBER, json!({"name": "mine"}))
    };
    let r = h
        .call(Method::POST, "/image/v2/images", Some(owner), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    if active {
        let r = h
            .send(
                Method::PUT,
                &format!("/image/v2/images/{id}/file"),
                Some(owner),
                &[OCTETS],
                Some(vec![1, 2, 3]),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    }
    id
}

async fn call(h: &Harness, route: Route, id: &str, token: Option<&str>) -> StatusCode {
    let uri = format!("/image/v2/images/{id}");
    let r = match route {
        Route::List => h.call(Method::GET, "/image/v2/images", token, None).await,
        Route::Create => {
            h.call(
                Method::POST,
                "/image/v2/images",
                token,
                Some(json!({"name": "new"})),
            )
            .await
        }
        Route::Show => h.call(Method::GET, &uri, token, None).await,
        Route::Patch => {
            let ops = json!([{"op": "add", "path": "/k", "value": "v"}]);
            h.send(
                Method::PATCH,
                &uri,
                token,
                &[PATCH],
                Some(ops.to_string().into_bytes()),
            )
            .await
        }
        Route::Delete => h.call(Method::DELETE, &uri, token, None).await,
        Route::Upload => {
            h.send(
                Method::PUT,
                &format!("{uri}/file"),
                token,
                &[OCTETS],
                Some(vec![9; 8]),
            )
            .await
        }
        Route::Download => {
            h.call(Method::GET, &format!("{uri}/file"), token, None)
                .await
        }
    };
    if r.status.is_client_error() && r.status != StatusCode::UNAUTHORIZED {
        // Glance's error shape, with a message saying why.
        assert!(r.body["message"].is_string(), "{route:?}: {:?}", r.body);
    }
    r.status
}

/// Glance's defaults (`glance/policies/image.py`, secure RBAC): reading
/// needs reader, writing member on the image's own project, publishing
/// admin; an image one cannot see is 404 whatever the route.
#[tokio::test]
async fn image_policy_over_every_route_and_role() {
    let h = Harness::with_conductor().await;
    use Route::*;
    // (route, public image?, [admin, member, reader, other, no token])
    let table: [(Route, bool, [u16; 5]); 13] = [
        (List, false, [200, 200, 200, 200, 401]),
        (Create, false, [201, 201, 403, 201, 401]),
        (Show, false, [200, 200, 200, 404, 401]),
        (Show, true, [200, 200, 200, 200, 401]),
        (Patch, false, [200, 200, 403, 404, 401]),
        (Patch, true, [200, 403, 403, 403, 401]),
        (Delete, false, [204, 204, 403, 404, 401]),
        (Delete, true, [204, 403, 403, 403, 401]),
        (Upload, false, [204, 204, 403, 404, 401]),
        (Upload, true, [204, 403, 403, 403, 401]),
        (Download, false, [200, 200, 403, 404, 401]),
        (Download, true, [200, 200, 403, 200, 401]),
        // Once active, any caller's upload is a conflict or refused first.
        (Upload, false, [409, 409, 403, 404, 401]),
    ];
    for (row, (route, public, expected)) in table.into_iter().enumerate() {
        for ((who, token), want) in CALLERS.into_iter().zip(expected) {
            let active = matches!(route, Download) || row == table.len() - 1;
            let id = fresh(&h, public, active).await;
            let before = h.intents_end().await;
            let got = call(&h, route, &id, token).await;
            assert_eq!(
                got.as_u16(),
                want,
                "{route:?} on a {} image as {who}",
                if public { "public" } else { "private" }
            );
            if got.is_client_error() {
                assert_eq!(h.intents_end().await, before, "a refusal writes nothing");
            }
        }
    }
    h.stop().await;
}

#[tokio::test]
async fn image_bounds_are_glances() {
    let h = Harness::with_conductor().await;
    let create = |body: Value| {
        let h = &h;
        async move {
            h.call(Method::POST, "/image/v2/images", Some(MEMBER), Some(body))
                .await
        }
    };
    let tags = |n: usize| (0..n).map(|i| format!("t{i}")).collect::<Vec<_>>();
    let props = |n: usize| {
        let mut body = serde_json::Map::new();
        for i in 0..n {
            body.insert(format!("p{i}"), json!("v"));
        }
        Value::Object(body)
    };
    let mut long_key = serde_json::Map::new();
    long_key.insert("k".repeat(256), json!("v"));
    let long_key = Value::Object(long_key);
    let before = h.intents_end().await;
    for (body, status) in [
        (json!({"min_disk": 1_099_511_627_776u64}), 400),
        (json!({"min_ram": 2_147_483_648u64}), 400),
        (json!({"min_disk": -1}), 400),
        (json!({"name": "n".repeat(256)}), 400),
        (json!({"tags": tags(129)}), 413),
        (json!({"tags": ["t".repeat(256)]}), 400),
        (props(129), 413),
        (long_key, 400),
        (json!({"size": 1}), 403),
    ] {
        let r = create(body.clone()).await;
        assert_eq!(r.status.as_u16(), status, "{:?}", r.body);
        assert!(r.body["message"].is_string());
    }
    assert_eq!(
        h.intents_end().await,
        before,
        "nothing out of bounds is written"
    );
    for body in [
        json!({"min_disk": 2_147_483_647u64, "min_ram": 2_147_483_647u64}),
        json!({"tags": tags(128)}),
        props(128),
    ] {
        let r = create(body.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }

    // A patch is held to the same bounds, counted on the current image.
    let r = create(props(128)).await;
    let uri = format!("/image/v2/images/{}", r.body["id"].as_str().unwrap());
    let patch = |ops: Value| {
        let (h, uri) = (&h, uri.clone());
        async move {
            h.send(
                Method::PATCH,
                &uri,
                Some(MEMBER),
                &[PATCH],
                Some(ops.to_string().into_bytes()),
            )
            .await
        }
    };
    let r = patch(json!([{"op": "add", "path": "/one_more", "value": "v"}])).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    let r = patch(json!([{"op": "add", "path": "/min_disk", "value": 1_099_511_627_776u64}])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    // Replacing one of the 128 is no new property.
    let r = patch(json!([{"op": "replace", "path": "/p0", "value": "w"}])).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["p0"], "w");
    h.stop().await;
}

/// The status of image `id` as the API's projection has it, once it is
/// `want` (or the last one seen after a bound).
async fn status_becomes(h: &Harness, id: &str, want: &str) -> String {
    let id: uuid::Uuid = id.parse().unwrap();
    let app = &h.handle.as_ref().unwrap().app;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = app.projection.image(&id).unwrap().status.clone();
        if status == want || tokio::time::Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Issue 9: an upload whose client went away mid-body (the handler's
/// future dropped) or whose body failed left the image `saving` for
/// ever; Glance puts it back to queued, and so do we. A new upload then
/// succeeds.
#[tokio::test]
async fn an_upload_cut_off_mid_body_puts_the_image_back_to_queued() {
    use axum::body::{Body, Bytes};
    use tower::ServiceExt;

    let h = Harness::with_conductor().await;
    let id = fresh(&h, false, false).await;
    let upload = |body: Body| {
        axum::http::Request::builder()
            .method(Method::PUT)
            .uri(format!("/image/v2/images/{id}/file"))
            .header("x-auth-token", MEMBER)
            .header(OCTETS.0, OCTETS.1)
            .body(body)
            .unwrap()
    };

    // The client goes away: the request's future is dropped while it
    // waits for the rest of the body.
    let (tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let mut tx = tx;
    let task = tokio::spawn(h.router.clone().oneshot(upload(Body::from_stream(rx))));
    futures::SinkExt::send(&mut tx, Ok(Bytes::from_static(b"abc")))
        .await
        .unwrap();
    assert_eq!(status_becomes(&h, &id, "saving").await, "saving");
    task.abort();
    assert_eq!(status_becomes(&h, &id, "queued").await, "queued");

    // The body fails mid-way.
    let broken = futures::stream::iter([
        Ok(Bytes::from_static(b"abc")),
        Err(std::io::Error::other("reset")),
    ]);
    let resp = h
        .router
        .clone()
        .oneshot(upload(Body::from_stream(broken)))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(status_becomes(&h, &id, "queued").await, "queued");

    let r = h
        .send(
            Method::PUT,
            &format!("/image/v2/images/{id}/file"),
            Some(MEMBER),
            &[OCTETS],
            Some(vec![1, 2, 3]),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(status_becomes(&h, &id, "active").await, "active");
    h.stop().await;
}

/// An API process killed mid-upload runs no drop: the staging file it
/// left tells its next start that the image, still `saving`, was its
/// upload, and the start puts it back to queued.
#[tokio::test]
async fn an_upload_whose_api_died_is_queued_again_at_the_next_start() {
    let h = Harness::with_conductor().await;
    let id = fresh(&h, false, false).await;
    let app = h.handle.as_ref().unwrap().app.clone();
    let image = app.projection.image(&id.parse().unwrap()).unwrap();
    let ctx = crate::auth::Context::new("alice", "p1", vec!["member".to_owned()]);
    tokio::fs::create_dir_all(&app.images_dir).await.unwrap();
    let upload = novalog_image::images::Upload::begin(
        &crate::mounts::image_app(&app),
        &ctx,
        "req-test",
        &image,
    )
    .await
    .unwrap();
    let staging = upload.staging.clone();
    // As if the process ended here: no drop, no abort.
    std::mem::forget(upload);
    assert_eq!(status_becomes(&h, &id, "saving").await, "saving");
    assert!(staging.exists());

    novalog_image::images::abort_interrupted_uploads(&crate::mounts::image_app(&app)).await;
    assert_eq!(status_becomes(&h, &id, "queued").await, "queued");
    assert!(!staging.exists(), "the staging file is removed");
    h.stop().await;
}

/// Issue 9: an upload whose API died on another replica (which may never
/// start again to abort it) left the image `saving` for ever. Its lease
/// bounds it: once the lease has run out, this replica's lease keeper has
/// the conductor put it back to queued, and a new upload succeeds.
#[tokio::test]
async fn an_upload_whose_api_died_on_another_replica_is_queued_again_after_its_lease() {
    let h = Harness::with_conductor_configured(|cfg| cfg.conductor.image_upload_lease = 1).await;
    let id = fresh(&h, false, false).await;
    let app = h.handle.as_ref().unwrap().app.clone();
    let image = app.projection.image(&id.parse().unwrap()).unwrap();
    let ctx = crate::auth::Context::new("alice", "p1", vec!["member".to_owned()]);
    let images = crate::mounts::image_app(&app);
    tokio::fs::create_dir_all(&app.images_dir).await.unwrap();
    let upload = novalog_image::images::Upload::begin(&images, &ctx, "req-test", &image)
        .await
        .unwrap();
    // The other replica's staging file is on its own disk: nothing here
    // tells this replica's start that the upload was interrupted.
    tokio::fs::remove_file(&upload.staging).await.unwrap();
    std::mem::forget(upload);
    assert_eq!(status_becomes(&h, &id, "saving").await, "saving");
    novalog_image::images::abort_interrupted_uploads(&images).await;
    assert_eq!(
        app.projection.image(&id.parse().unwrap()).unwrap().status,
        "saving"
    );

    assert_eq!(status_becomes(&h, &id, "queued").await, "queued");
    let r = h
        .send(
            Method::PUT,
            &format!("/image/v2/images/{id}/file"),
            Some(MEMBER),
            &[OCTETS],
            Some(vec![1, 2, 3]),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(status_becomes(&h, &id, "active").await, "active");
    h.stop().await;
}
