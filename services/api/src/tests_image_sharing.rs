//! Image API router tests for sharing (members), tags, deactivation,
//! `owner`, the older patch format, the import API and the schemas, with
//! Glance's shapes and default policy: the owner's member, its reader,
//! a member project, another project and an administrator.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::tests::{ADMIN, Harness, MEMBER, OTHER, server_body};

const READER: &str = "reader:p1";
const STRANGER: &str = "carol:p3";
const OCTETS: (&str, &str) = ("content-type", "application/octet-stream");

async fn create(h: &Harness, token: &str, body: Value) -> (StatusCode, Value) {
    let r = h
        .call(Method::POST, "/image/v2/images", Some(token), Some(body))
        .await;
    (r.status, r.body)
}

/// p1's image with data, `shared` (Glance's default visibility).
async fn active_image(h: &Harness) -> String {
    let (status, body) = create(
        h,
        MEMBER,
        json!({"name": "shared-one", "disk_format": "qcow2", "container_format": "bare"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body:?}");
    assert_eq!(body["visibility"], "shared");
    let id = body["id"].as_str().unwrap().to_owned();
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
    id
}

fn assert_member_shape(m: &Value, image: &str, member: &str, status: &str) {
    assert_eq!(m["member_id"], member, "{m:?}");
    assert_eq!(m["image_id"], image, "{m:?}");
    assert_eq!(m["status"], status, "{m:?}");
    assert_eq!(m["schema"], "/v2/schemas/member");
    for k in ["created_at", "updated_at"] {
        let t = m[k].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{k}: {t}");
    }
    assert_eq!(m.as_object().unwrap().len(), 6, "{m:?}");
}

async fn listed(h: &Harness, token: &str, query: &str, id: &str) -> bool {
    let r = h
        .call(
            Method::GET,
            &format!("/image/v2/images{query}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {:?}", r.body);
    r.body["images"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == id)
}

#[tokio::test]
async fn image_members_follow_glances_rules_and_policy() {
    let h = Harness::with_conductor().await;
    let id = active_image(&h).await;
    let members = format!("/image/v2/images/{id}/members");
    let p2 = format!("{members}/p2");

    // Not shared yet: p2 does not see it.
    let r = h
        .call(
            Method::GET,
            &format!("/image/v2/images/{id}"),
            Some(OTHER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let before = h.intents_end().await;
    for (token, body, want) in [
        (MEMBER, json!({}), 400),
        (MEMBER, json!({"member": ""}), 400),
        (MEMBER, json!(["p2"]), 400),
        (READER, json!({"member": "p2"}), 403),
        (OTHER, json!({"member": "p2"}), 404),
    ] {
        let r = h
            .call(Method::POST, &members, Some(token), Some(body.clone()))
            .await;
        assert_eq!(r.status.as_u16(), want, "{token} {body}: {:?}", r.body);
        assert!(r.body["message"].is_string());
    }
    assert_eq!(h.intents_end().await, before, "a refusal writes nothing");

    // The owner shares it: pending.
    let r = h
        .call(
            Method::POST,
            &members,
            Some(MEMBER),
            Some(json!({"member": "p2"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_member_shape(&r.body, &id, "p2", "pending");
    let r = h
        .call(
            Method::POST,
            &members,
            Some(MEMBER),
            Some(json!({"member": "p2"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    // An administrator may share anyone's image.
    let r = h
        .call(
            Method::POST,
            &members,
            Some(ADMIN),
            Some(json!({"member": "p4"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // A pending member sees the image but does not list it by default.
    let r = h
        .call(
            Method::GET,
            &format!("/image/v2/images/{id}"),
            Some(OTHER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(!listed(&h, OTHER, "", &id).await);
    assert!(!listed(&h, OTHER, "?visibility=shared", &id).await);
    assert!(listed(&h, OTHER, "?member_status=pending", &id).await);
    assert!(listed(&h, OTHER, "?visibility=shared&member_status=all", &id).await);
    assert!(!listed(&h, STRANGER, "?member_status=all", &id).await);
    let r = h
        .call(
            Method::GET,
            "/image/v2/images?member_status=maybe",
            Some(OTHER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Listing: the owner sees every member, a member only itself.
    let r = h.call(Method::GET, &members, Some(MEMBER), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["schema"], "/v2/schemas/members");
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    let r = h.call(Method::GET, &members, Some(OTHER), None).await;
    assert_eq!(
        r.body["members"].as_array().unwrap().len(),
        1,
        "{:?}",
        r.body
    );
    assert_member_shape(&r.body["members"][0], &id, "p2", "pending");
    let r = h.call(Method::GET, &members, Some(STRANGER), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.call(Method::GET, &p2, Some(OTHER), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_member_shape(&r.body, &id, "p2", "pending");
    let r = h
        .call(Method::GET, &format!("{members}/p4"), Some(OTHER), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "another member's membership"
    );
    let r = h
        .call(Method::GET, &format!("{members}/p9"), Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Only the member answers.
    let before = h.intents_end().await;
    for (token, body, want) in [
        (MEMBER, json!({"status": "accepted"}), 403),
        (OTHER, json!({"status": "maybe"}), 400),
        (OTHER, json!({}), 400),
    ] {
        let r = h
            .call(Method::PUT, &p2, Some(token), Some(body.clone()))
            .await;
        assert_eq!(r.status.as_u16(), want, "{token} {body}: {:?}", r.body);
    }
    let r = h
        .call(
            Method::PUT,
            &format!("{members}/p4"),
            Some(OTHER),
            Some(json!({"status": "accepted"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(h.intents_end().await, before, "a refusal writes nothing");

    // Before accepting, p2 cannot boot it? It can: Glance shows a shared
    // image to its members whatever their answer, and Nova boots what
    // Glance shows. A stranger cannot.
    let mut boot = server_body("from-shared");
    boot["server"]["imageRef"] = json!(id);
    let r = h
        .call(
            Method::POST,
            "/v2.1/servers",
            Some(STRANGER),
            Some(boot.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);

    let r = h
        .call(
            Method::PUT,
            &p2,
            Some(OTHER),
            Some(json!({"status": "accepted"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_member_shape(&r.body, &id, "p2", "accepted");
    assert!(listed(&h, OTHER, "", &id).await);
    assert!(listed(&h, OTHER, "?visibility=shared", &id).await);
    assert!(!listed(&h, OTHER, "?member_status=pending", &id).await);
    let r = h
        .call(
            Method::GET,
            &format!("/image/v2/images/{id}/file"),
            Some(OTHER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "a member downloads");
    let r = h
        .call(
            Method::POST,
            "/v2.1/servers",
            Some(OTHER),
            Some(boot.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);

    // Only the owner unshares.
    let r = h.call(Method::DELETE, &p2, Some(OTHER), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = h.call(Method::DELETE, &p2, Some(MEMBER), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = h.call(Method::DELETE, &p2, Some(MEMBER), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(
            Method::GET,
            &format!("/image/v2/images/{id}"),
            Some(OTHER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "unshared");
    let r = h
        .call(Method::POST, "/v2.1/servers", Some(OTHER), Some(boot))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);

    // Only shared images have members.
    let patch = json!([{"op": "replace", "path": "/visibility", "value": "private"}]);
    let r = h
        .send(
            Method::PATCH,
            &format!("/image/v2/images/{id}"),
            Some(MEMBER),
            &[(
                "content-type",
                "application/openstack-images-v2.1-json-patch",
            )],
            Some(patch.to_string().into_bytes()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = h
        .call(
            Method::POST,
            &members,
            Some(MEMBER),
            Some(json!({"member": "p2"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h.call(Method::GET, &members, Some(MEMBER), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(Method::GET, &format!("{members}/p4"), Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    h.stop().await;
}

#[tokio::test]
async fn image_tags_deactivation_owner_and_the_old_patch_format() {
    let h = Harness::with_conductor().await;
    let id = active_image(&h).await;
    let uri = format!("/image/v2/images/{id}");

    // Tags.
    let r = h
        .call(Method::PUT, &format!("{uri}/tags/blue"), Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = h
        .call(Method::PUT, &format!("{uri}/tags/blue"), Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "adding a tag it has");
    for (token, want) in [(READER, 403), (OTHER, 404)] {
        let r = h
            .call(Method::PUT, &format!("{uri}/tags/red"), Some(token), None)
            .await;
        assert_eq!(r.status.as_u16(), want, "{token}");
    }
    let r = h.call(Method::GET, &uri, Some(MEMBER), None).await;
    assert_eq!(r.body["tags"], json!(["blue"]));
    assert!(listed(&h, MEMBER, "?tag=blue", &id).await);
    assert!(!listed(&h, MEMBER, "?tag=blue&tag=red", &id).await);
    let r = h
        .call(
            Method::DELETE,
            &format!("{uri}/tags/red"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(
            Method::DELETE,
            &format!("{uri}/tags/blue"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let (_, created) = create(&h, MEMBER, json!({"name": "tagged", "tags": ["a", "b"]})).await;
    assert_eq!(created["tags"], json!(["a", "b"]));

    // Deactivate: data for administrators only, no boot.
    for (token, want) in [(READER, 403), (OTHER, 404)] {
        let r = h
            .call(
                Method::POST,
                &format!("{uri}/actions/deactivate"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(r.status.as_u16(), want, "{token}");
    }
    let r = h
        .call(
            Method::POST,
            &format!("{uri}/actions/deactivate"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = h.call(Method::GET, &uri, Some(MEMBER), None).await;
    assert_eq!(r.body["status"], "deactivated");
    let r = h
        .call(Method::GET, &format!("{uri}/file"), Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(Method::GET, &format!("{uri}/file"), Some(ADMIN), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let mut boot = server_body("from-deactivated");
    boot["server"]["imageRef"] = json!(id);
    let r = h
        .call(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            Some(boot.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = h
        .call(
            Method::POST,
            &format!("{uri}/actions/deactivate"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "deactivating twice is a no-op"
    );
    let r = h
        .call(
            Method::POST,
            &format!("{uri}/actions/reactivate"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h.call(Method::GET, &uri, Some(MEMBER), None).await;
    assert_eq!(r.body["status"], "active");
    let r = h
        .call(Method::POST, "/v2.1/servers", Some(MEMBER), Some(boot))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);

    // A queued image: no data (204), and it cannot be deactivated.
    let (_, queued) = create(&h, MEMBER, json!({"name": "empty"})).await;
    let q = format!("/image/v2/images/{}", queued["id"].as_str().unwrap());
    let r = h
        .call(Method::GET, &format!("{q}/file"), Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h
        .call(
            Method::POST,
            &format!("{q}/actions/deactivate"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.body["message"],
        "Not allowed to deactivate image in status 'queued'"
    );

    // Owner: an administrator's to give.
    let (status, body) = create(&h, ADMIN, json!({"name": "for-p2", "owner": "p2"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body:?}");
    assert_eq!(body["owner"], "p2");
    let (status, _) = create(&h, MEMBER, json!({"name": "x", "owner": "p2"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = create(&h, MEMBER, json!({"name": "x", "owner": "p1"})).await;
    assert_eq!(
        (status, &body["owner"]),
        (StatusCode::CREATED, &json!("p1"))
    );
    let give = json!([{"op": "replace", "path": "/owner", "value": "p3"}]);
    let v21 = (
        "content-type",
        "application/openstack-images-v2.1-json-patch",
    );
    let r = h
        .send(
            Method::PATCH,
            &q,
            Some(MEMBER),
            &[v21],
            Some(give.to_string().into_bytes()),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = h
        .send(
            Method::PATCH,
            &q,
            Some(ADMIN),
            &[v21],
            Some(give.to_string().into_bytes()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["owner"], "p3");

    // The older patch format.
    let v20 = (
        "content-type",
        "application/openstack-images-v2.0-json-patch",
    );
    let ops = json!([{"replace": "/name", "value": "renamed"}, {"add": "/k", "value": "v"}]);
    let r = h
        .send(
            Method::PATCH,
            &uri,
            Some(MEMBER),
            &[v20],
            Some(ops.to_string().into_bytes()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (&r.body["name"], &r.body["k"]),
        (&json!("renamed"), &json!("v"))
    );
    let ops = json!([{"op": "replace", "path": "/name", "value": "x"}]);
    let r = h
        .send(
            Method::PATCH,
            &uri,
            Some(MEMBER),
            &[v20],
            Some(ops.to_string().into_bytes()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    h.stop().await;
}

#[tokio::test]
async fn the_import_api_stages_then_imports_glance_direct() {
    let h = Harness::with_conductor().await;
    let r = h
        .call(Method::GET, "/image/v2/info/import", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["import-methods"]["value"], json!(["glance-direct"]));
    assert_eq!(r.body["import-methods"]["type"], "array");
    let r = h
        .call(Method::GET, "/image/v2/info/stores", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body["message"],
        "Multi backend is not supported at this site."
    );

    let r = h
        .send(
            Method::POST,
            "/image/v2/images",
            Some(MEMBER),
            &[("content-type", "application/json")],
            Some(json!({"name": "imported"}).to_string().into_bytes()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        r.headers.get("openstack-image-import-methods").unwrap(),
        "glance-direct"
    );
    let id = r.body["id"].as_str().unwrap().to_owned();
    let uri = format!("/image/v2/images/{id}");
    let import = |body: Value, token: &'static str| {
        let (h, uri) = (&h, uri.clone());
        async move {
            h.call(
                Method::POST,
                &format!("{uri}/import"),
                Some(token),
                Some(body),
            )
            .await
        }
    };
    let direct = json!({"method": {"name": "glance-direct"}});
    let r = import(direct.clone(), MEMBER).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "not staged: {:?}", r.body);
    let stage = |token: &'static str| {
        let (h, uri) = (&h, uri.clone());
        async move {
            h.send(
                Method::PUT,
                &format!("{uri}/stage"),
                Some(token),
                &[OCTETS],
                Some(vec![7; 5]),
            )
            .await
        }
    };
    for (token, want) in [(READER, 403), (OTHER, 404)] {
        assert_eq!(stage(token).await.status.as_u16(), want, "{token}");
    }
    let r = stage(MEMBER).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = h.call(Method::GET, &uri, Some(MEMBER), None).await;
    assert_eq!(
        (&r.body["status"], &r.body["size"]),
        (&json!("uploading"), &json!(5))
    );
    assert_eq!(stage(MEMBER).await.status, StatusCode::CONFLICT);

    for (body, want) in [
        (json!({}), 400),
        (json!({"method": {}}), 400),
        (json!({"method": {"name": "copy-image"}}), 400),
        (
            json!({"method": {"name": "glance-direct"}, "all_stores": "yes"}),
            400,
        ),
    ] {
        let r = import(body.clone(), MEMBER).await;
        assert_eq!(r.status.as_u16(), want, "{body}: {:?}", r.body);
    }
    let r = import(direct.clone(), MEMBER).await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "formats unset: {:?}",
        r.body
    );
    assert_eq!(
        r.body["message"],
        "'container_format' needs to be set before import"
    );
    let formats = json!([
        {"op": "add", "path": "/disk_format", "value": "raw"},
        {"op": "add", "path": "/container_format", "value": "bare"},
    ]);
    let v21 = (
        "content-type",
        "application/openstack-images-v2.1-json-patch",
    );
    let r = h
        .send(
            Method::PATCH,
            &uri,
            Some(MEMBER),
            &[v21],
            Some(formats.to_string().into_bytes()),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "formats are fixed once staged, as Glance: {:?}",
        r.body
    );
    h.stop().await;
}

#[tokio::test]
async fn an_image_staged_with_its_formats_imports_to_active() {
    let h = Harness::with_conductor().await;
    let (_, body) = create(
        &h,
        MEMBER,
        json!({"name": "imp", "disk_format": "raw", "container_format": "bare"}),
    )
    .await;
    let id = body["id"].as_str().unwrap().to_owned();
    let uri = format!("/image/v2/images/{id}");
    let r = h
        .send(
            Method::PUT,
            &format!("{uri}/stage"),
            Some(MEMBER),
            &[OCTETS],
            Some(b"hello world".to_vec()),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = h
        .call(
            Method::POST,
            &format!("{uri}/import"),
            Some(READER),
            Some(json!({"method": {"name": "glance-direct"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(
            Method::POST,
            &format!("{uri}/import"),
            Some(MEMBER),
            Some(json!({"method": {"name": "glance-direct"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let app = &h.handle.as_ref().unwrap().app;
    let uuid: uuid::Uuid = id.parse().unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.projection.image(&uuid).unwrap().status != "active"
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let r = h.call(Method::GET, &uri, Some(MEMBER), None).await;
    assert_eq!(r.body["status"], "active", "{:?}", r.body);
    assert_eq!(r.body["checksum"], "5eb63bbbe01eeed093cb22bb8f5acdc3");
    assert_eq!(r.body["size"], 11);
    let r = h
        .call(Method::GET, &format!("{uri}/file"), Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h
        .call(
            Method::POST,
            &format!("{uri}/import"),
            Some(MEMBER),
            Some(json!({"method": {"name": "glance-direct"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.body["message"],
        "Image with status active cannot be target for import"
    );
    h.stop().await;
}

#[tokio::test]
async fn image_schemas_are_glances() {
    let h = Harness::without_conductor().await;
    for (path, name) in [
        ("image", "image"),
        ("images", "images"),
        ("member", "member"),
        ("members", "members"),
    ] {
        let r = h
            .call(
                Method::GET,
                &format!("/image/v2/schemas/{path}"),
                Some(MEMBER),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.body["name"], name);
        assert!(r.body["properties"].is_object());
    }
    let r = h
        .call(Method::GET, "/image/v2/schemas/member", Some(MEMBER), None)
        .await;
    assert_eq!(
        r.body["properties"]["status"]["enum"],
        json!(["pending", "accepted", "rejected"])
    );
    assert_eq!(r.body["additionalProperties"], false);
    let r = h
        .call(Method::GET, "/image/v2/schemas/members", Some(MEMBER), None)
        .await;
    assert_eq!(r.body["properties"]["members"]["items"]["name"], "member");
    h.stop().await;
}

/// Glance's full image schema, from the constants the validation uses,
/// and the collection schema around it.
#[tokio::test]
async fn the_image_schema_is_glances_in_full() {
    let h = Harness::without_conductor().await;
    let r = h
        .call(Method::GET, "/image/v2/schemas/image", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let s = &r.body;
    assert_eq!(s["additionalProperties"], json!({"type": "string"}));
    assert_eq!(
        s["links"],
        json!([{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
               {"rel": "describedby", "href": "{schema}"}])
    );
    let p = s["properties"].as_object().unwrap();
    let mut names: Vec<&str> = p.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "architecture",
            "checksum",
            "cinder_encryption_key_deletion_policy",
            "cinder_encryption_key_id",
            "container_format",
            "created_at",
            "description",
            "direct_url",
            "disk_format",
            "file",
            "id",
            "instance_uuid",
            "kernel_id",
            "locations",
            "min_disk",
            "min_ram",
            "name",
            "os_distro",
            "os_hash_algo",
            "os_hash_value",
            "os_hidden",
            "os_version",
            "owner",
            "protected",
            "ramdisk_id",
            "schema",
            "self",
            "size",
            "status",
            "stores",
            "tags",
            "updated_at",
            "virtual_size",
            "visibility",
        ]
    );
    let mut read_only: Vec<&str> = p
        .iter()
        .filter(|(_, v)| v["readOnly"] == true)
        .map(|(k, _)| k.as_str())
        .collect();
    read_only.sort_unstable();
    assert_eq!(
        read_only,
        [
            "checksum",
            "created_at",
            "direct_url",
            "file",
            "os_hash_algo",
            "os_hash_value",
            "schema",
            "self",
            "size",
            "status",
            "stores",
            "updated_at",
            "virtual_size",
        ]
    );
    assert_eq!(
        p["disk_format"]["enum"],
        json!([
            null, "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"
        ])
    );
    assert_eq!(
        p["container_format"]["enum"],
        json!([
            null,
            "ami",
            "ari",
            "aki",
            "bare",
            "ovf",
            "ova",
            "docker",
            "compressed"
        ])
    );
    assert_eq!(
        p["visibility"]["enum"],
        json!(["public", "private", "shared", "community"])
    );
    assert_eq!(
        p["status"]["enum"],
        json!([
            "queued",
            "saving",
            "active",
            "killed",
            "deleted",
            "uploading",
            "importing",
            "pending_delete",
            "deactivated"
        ])
    );
    assert_eq!(p["name"]["maxLength"], 255);
    assert_eq!(p["tags"]["items"]["maxLength"], 255);
    assert_eq!(p["os_hash_value"]["maxLength"], 128);
    assert_eq!(p["kernel_id"]["is_base"], false);
    assert!(p["id"].get("is_base").is_none());
    assert_eq!(
        p["cinder_encryption_key_deletion_policy"]["enum"],
        json!(["on_image_deletion", "do_not_delete"])
    );

    let r = h
        .call(Method::GET, "/image/v2/schemas/images", Some(MEMBER), None)
        .await;
    assert_eq!(r.body["properties"]["images"]["items"], *s);
    assert_eq!(
        r.body["links"],
        json!([{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
               {"rel": "describedby", "href": "{schema}"}])
    );
    h.stop().await;
}

/// One store: Glance's `copy-image` has nowhere to copy to, so it is not
/// among the enabled import methods, and asking for it is Glance's 400
/// for a method not enabled (`_validate_import_body`), before the image
/// is even looked up.
#[tokio::test]
async fn copy_image_is_not_offered_with_one_store() {
    let h = Harness::without_conductor().await;
    let r = h
        .call(Method::GET, "/image/v2/info/import", Some(MEMBER), None)
        .await;
    assert_eq!(r.body["import-methods"]["value"], json!(["glance-direct"]));
    let r = h
        .call(
            Method::POST,
            "/image/v2/images/00000000-0000-0000-0000-000000000000/import",
            Some(MEMBER),
            Some(json!({"method": {"name": "copy-image"}, "stores": ["file"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(
        r.body["message"],
        "Unknown import method name 'copy-image'."
    );
    h.stop().await;
}
