//! Issue 9 at the HTTP edge: a user's number that overflowed a handler,
//! a panicking handler, and errors that reached clients as text or empty
//! bodies. Each answer must be one the client can read, in the shape of
//! the service the path belongs to.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::routing::get;
use novalog_log::Record;
use novalog_schemas::{Actor, CatalogEvent, Envelope, Event, Meta};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

use crate::bootstrap::demo_image;
use crate::tests::{Harness, MEMBER, server_body};

const OCTETS: (&str, &str) = ("content-type", "application/octet-stream");

fn request_id(headers: &axum::http::HeaderMap) -> String {
    headers["x-openstack-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// Puts `image` in the catalog as the conductor would have accepted it,
/// whatever the image API's own bounds, and waits until the API sees it.
async fn catalog_image(h: &Harness, image: novalog_schemas::Image) {
    let id = image.id;
    let env = Envelope {
        meta: Meta::origin(
            Uuid::new_v4(),
            "req-test".into(),
            Actor {
                user_id: "admin".into(),
                project_id: "admin".into(),
                roles: vec!["admin".into()],
            },
            id.to_string(),
        ),
        event: Event::Catalog(CatalogEvent::ImageCreated(image)),
    };
    h.log
        .append(vec![Record::new(
            h.cfg.topics().catalog,
            id.to_string().into_bytes(),
            novalog_schemas::encode(&env),
        )])
        .await
        .unwrap();
    let app = &h.handle.as_ref().unwrap().app;
    tokio::time::timeout(Duration::from_secs(10), async {
        while app.projection.image(&id).is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the projection folds the image");
}

const MIN_DISK_MESSAGE: &str = "Flavor's disk is smaller than the minimum size specified in image metadata. Flavor disk is 1073741824 bytes, minimum size is";

/// Defect 1 of issue 9: `min_disk * GIB` overflowed in the create handler,
/// which panicked and closed the connection without an answer.
#[tokio::test]
async fn image_min_disk_too_big_to_multiply_is_novas_400_on_create_and_rebuild() {
    let h = Harness::with_conductor().await;
    // As the issue reproduced it, through the image API (which may bound
    // the number itself: then it refuses it, in JSON).
    let r = h
        .call(
            Method::POST,
            "/image/v2/images",
            Some(MEMBER),
            Some(json!({"name": "big", "min_disk": 1_099_511_627_776u64,
                "disk_format": "raw", "container_format": "bare"})),
        )
        .await;
    if r.status == StatusCode::CREATED {
        let id = r.body["id"].as_str().unwrap().to_owned();
        let up = h
            .send(
                Method::PUT,
                &format!("/image/v2/images/{id}/file"),
                Some(MEMBER),
                &[OCTETS],
                Some(vec![7]),
            )
            .await;
        assert_eq!(up.status, StatusCode::NO_CONTENT, "{:?}", up.body);
        let mut body = server_body("vm");
        body["server"]["imageRef"] = json!(id);
        let r = h
            .call(Method::POST, "/v2.1/servers", Some(MEMBER), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
        assert_eq!(
            r.body["badRequest"]["message"].as_str().unwrap(),
            format!("{MIN_DISK_MESSAGE} 1180591620717411303424 bytes.")
        );
    } else {
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
        assert!(
            r.body["message"].is_string(),
            "Glance's shape: {:?}",
            r.body
        );
    }

    // The largest number any path could deliver, straight into the catalog.
    let image = novalog_schemas::Image {
        id: Uuid::new_v4(),
        name: "huge".into(),
        min_disk: u64::MAX,
        size: 1,
        owner: "p1".into(),
        visibility: "private".into(),
        ..demo_image()
    };
    catalog_image(&h, image.clone()).await;
    let mut body = server_body("vm");
    body["server"]["imageRef"] = json!(image.id.to_string());
    let before = h.intents_end().await;
    let r = h
        .call(Method::POST, "/v2.1/servers", Some(MEMBER), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(
        r.body["badRequest"]["message"].as_str().unwrap(),
        format!("{MIN_DISK_MESSAGE} {} bytes.", u128::from(u64::MAX) << 30)
    );

    // Rebuild checks the image against the flavor in the API, as Nova's
    // `_checks_for_create_and_rebuild` does: the conductor never sees it.
    let r = h
        .call(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            Some(server_body("small")),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let written = h.intents_end().await;
    assert_eq!(written, before + 1);
    let r = h
        .call(
            Method::POST,
            &format!("/v2.1/servers/{id}/action"),
            Some(MEMBER),
            Some(json!({"rebuild": {"imageRef": image.id.to_string()}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(
        r.body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .starts_with(MIN_DISK_MESSAGE),
        "{:?}",
        r.body
    );
    assert_eq!(h.intents_end().await, written, "nothing written");
    h.stop().await;
}

async fn boom() -> &'static str {
    panic!("a handler bug")
}

/// A panic in any handler is a 500 in its service's shape that names the
/// request, and the server goes on serving.
#[tokio::test]
async fn a_panicking_handler_is_a_500_in_its_services_shape() {
    let router = crate::http::edge(
        Router::new()
            .route("/v2.1/boom", get(boom))
            .route("/identity/v3/boom", get(boom))
            .route("/image/v2/boom", get(boom))
            .route("/v2.1/fine", get(|| async { "fine" })),
    );
    let call = |uri: &'static str| {
        let router = router.clone();
        async move {
            let resp = router
                .oneshot(Request::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, headers, bytes)
        }
    };
    let json = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap();

    let (status, headers, body) = call("/v2.1/boom").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(headers["content-type"], "application/json");
    let body = json(&body);
    assert_eq!(body["computeFault"]["code"], 500);
    let rid = request_id(&headers);
    let message = body["computeFault"]["message"].as_str().unwrap();
    assert!(message.contains(&rid), "{message}");
    assert!(
        !message.contains("a handler bug"),
        "internals stay in the log"
    );

    let (status, headers, body) = call("/identity/v3/boom").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let body = json(&body);
    assert_eq!(body["error"]["code"], 500);
    assert_eq!(body["error"]["title"], "Internal Server Error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&request_id(&headers))
    );

    let (status, _, body) = call("/image/v2/boom").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let body = json(&body);
    assert_eq!(body["code"], "500 Internal Server Error");
    assert_eq!(body["title"], "Internal Server Error");

    let (status, _, body) = call("/v2.1/fine").await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"fine"[..]));
}

/// Defect 8 of issue 9: errors produced before a handler runs (extractor
/// rejections, limits, the router) are in the service's JSON shape too.
#[tokio::test]
async fn refusals_outside_the_handlers_are_in_each_services_shape() {
    let h = Harness::without_conductor().await;
    let before = h.intents_end().await;
    let is_json = |r: &crate::tests::Reply| {
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    };

    // A path parameter that is not UTF-8.
    let r = h
        .call(Method::GET, "/v2.1/servers/%FF", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(is_json(&r), "{:?}", r.headers);
    assert_eq!(r.body["badRequest"]["code"], 400);
    assert!(r.body["badRequest"]["message"].is_string());
    let r = h
        .call(Method::GET, "/image/v2/images/%FF%FE", Some(MEMBER), None)
        .await;
    assert!(r.status.is_client_error(), "{:?}", r.status);
    assert!(is_json(&r));
    assert!(r.body["message"].is_string(), "{:?}", r.body);

    // Malformed JSON, and a body that says it is not JSON.
    let r = h
        .send(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            &[],
            Some(b"{\"server\": ".to_vec()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["badRequest"]["message"], "Malformed request body");
    let r = h
        .send(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            &[("content-type", "application/xml")],
            Some(b"<server/>".to_vec()),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        r.body,
        json!({"badMediaType": {"code": 415, "message": "Unsupported Content-Type"}})
    );
    // `text/plain` is what many clients default to: read as JSON.
    let r = h
        .send(
            Method::POST,
            "/v2.1/os-keypairs",
            Some(MEMBER),
            &[("content-type", "text/plain")],
            Some(b"{\"keypair\": {}}".to_vec()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(r.body["badRequest"].is_object());

    // An image create larger than the image API takes.
    let big = json!({"name": "x".repeat(3 << 20)})
        .to_string()
        .into_bytes();
    let r = h
        .send(
            Method::POST,
            "/image/v2/images",
            Some(MEMBER),
            &[],
            Some(big),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(is_json(&r));
    assert_eq!(r.body["code"], "413 Payload Too Large");
    assert_eq!(r.body["message"], "Request is too large.");

    // Unknown paths and wrong methods, under each service.
    let r = h
        .call(Method::GET, "/v2.1/nothing", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body["itemNotFound"]["message"],
        "The resource could not be found."
    );
    let r = h
        .call(Method::GET, "/identity/v3/nothing", None, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["code"], 404);
    assert_eq!(r.body["error"]["title"], "Not Found");
    let r = h
        .call(Method::GET, "/image/v2/nothing", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["code"], "404 Not Found");
    let r = h
        .call(Method::DELETE, "/image/v2/images", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.body["code"], "405 Method Not Allowed");
    assert!(!r.headers["x-openstack-request-id"].is_empty());
    assert_eq!(h.intents_end().await, before, "nothing written");
    h.stop().await;
}
