//! Response shapes checked against JSON Schemas written from the Compute,
//! Image and Identity API references (`services/api/tests/schemas/`): the
//! server views per microversion (the reduced ones `PUT` and `rebuild`
//! answer with below 2.75 included), `accessIPv4` / `accessIPv6` /
//! `OS-DCF:diskConfig` from create to update, rebuild and resize, and the
//! main resources of each service.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use novalog_log::Record;
use novalog_schemas::events::{HostRegistered, InstanceCreated};
use novalog_schemas::migration::RebuildSpec;
use novalog_schemas::{
    AccessConfig, Actor, Envelope, Event, HostEvent, HostUsage, InstanceEvent, Intent, Meta,
    Resources,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::microversion::ApiVersion;
use crate::tests::{ADMIN, Harness, MEMBER, Reply, server_body};
use crate::views::Links;
use crate::views::servers::{Parts, ViewContext, show_parts};

// ---- the schemas ----

/// Every schema under `tests/schemas`, by its `$id`.
fn schemas() -> &'static HashMap<String, Value> {
    static ALL: OnceLock<HashMap<String, Value>> = OnceLock::new();
    ALL.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas");
        let mut all = HashMap::new();
        for dir in ["compute", "image", "identity"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                let schema: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let id = schema["$id"].as_str().expect("every schema has an $id");
                let name = format!("{dir}/{}", path.file_name().unwrap().to_str().unwrap());
                assert!(id.ends_with(&name), "{name}: $id {id}");
                all.insert(id.to_owned(), schema);
            }
        }
        all
    })
}

fn validator(name: &str) -> jsonschema::Validator {
    let id = format!("https://schemas.novalog.test/{name}");
    let schema = schemas()
        .get(&id)
        .unwrap_or_else(|| panic!("no schema {name}"));
    let resources = schemas()
        .iter()
        .map(|(id, s)| (id.clone(), jsonschema::Resource::from_contents(s.clone())));
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .with_resources(resources)
        .build(schema)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every way `body` differs from the schema `name`, one per line.
fn differences(name: &str, body: &Value) -> Vec<String> {
    validator(name)
        .iter_errors(body)
        .map(|e| format!("{} at {:?}", e, e.instance_path().to_string()))
        .collect()
}

#[track_caller]
fn assert_shape(name: &str, body: &Value) {
    let found = differences(name, body);
    assert!(
        found.is_empty(),
        "{name}:\n{}\nbody: {body:#}",
        found.join("\n")
    );
}

#[test]
fn every_schema_compiles_and_rejects_what_it_should() {
    for id in schemas().keys() {
        let name = id.trim_start_matches("https://schemas.novalog.test/");
        validator(name);
    }
    // The checks bite: an extra key, a missing one, a malformed address.
    let inst = crate::views::servers::tests::building("p1");
    let links = Links::new("http://h");
    let cx = context(&links, ApiVersion::new(2, 1), false);
    let full = show_parts(&cx, &inst, None, &Parts::default());
    assert_shape("compute/server-show-v2.1.json", &json!({ "server": full }));
    let mut extra = full.clone();
    extra["OS-EXT-SRV-ATTR:host"] = json!("h");
    assert!(!differences("compute/server-show-v2.1.json", &json!({ "server": extra })).is_empty());
    let reduced = show_parts(&cx, &inst, None, &Parts::update(cx.version, Vec::new));
    assert!(
        !differences(
            "compute/server-show-v2.1.json",
            &json!({ "server": reduced })
        )
        .is_empty(),
        "the reduced view lacks OS-EXT-STS:*"
    );
    assert!(
        !differences(
            "compute/server-update-v2.1.json",
            &json!({ "server": full })
        )
        .is_empty(),
        "GET's view has keys PUT's has not"
    );
    let mut bad = reduced.clone();
    bad["accessIPv4"] = json!("1.2.3");
    assert!(!differences("compute/server-update-v2.1.json", &json!({ "server": bad })).is_empty());
}

// ---- the fake conductor's server changes ----

/// Keeps a created server for [`decide_change`], and returns it.
pub(crate) fn remember(
    servers: &mut HashMap<Uuid, InstanceCreated>,
    id: Uuid,
    created: InstanceCreated,
) -> InstanceCreated {
    servers.insert(id, created.clone());
    created
}

/// Accepts an update or a rebuild as the conductor does: the server's
/// attributes as they are afterwards.
pub(crate) fn decide_change(
    servers: &mut HashMap<Uuid, InstanceCreated>,
    intent: &Intent,
) -> Event {
    match intent {
        Intent::ServerUpdateRequested {
            instance_id,
            name,
            description,
            access,
            hostname,
        } => {
            let s = servers.get_mut(instance_id).expect("a created server");
            if let Some(n) = name {
                s.name = n.clone();
            }
            if let Some(d) = description {
                s.description = d.clone();
            }
            s.access = access.applied_to(s.access);
            if let Some(h) = hostname {
                s.hostname = h.clone();
            }
            Event::Instance(InstanceEvent::InstanceUpdated {
                name: s.name.clone(),
                description: s.description.clone(),
                access: Some(s.access),
                hostname: hostname.clone(),
            })
        }
        Intent::ServerRebuildRequested(r) => {
            let s = servers.get_mut(&r.instance_id).expect("a created server");
            s.image = r.image.clone();
            if let Some(n) = &r.name {
                s.name = n.clone();
            }
            if let Some(m) = &r.metadata {
                s.metadata = m.clone();
            }
            if let Some(k) = &r.key_name {
                s.key_name = k.clone();
            }
            if let Some(u) = &r.user_data {
                s.user_data = u.clone();
            }
            if let Some(d) = &r.description {
                s.description = d.clone();
            }
            s.access = r.access.applied_to(s.access);
            if let Some(t) = &r.trusted_image_certificates {
                s.trusted_image_certificates = t.clone();
            }
            if let Some(h) = &r.hostname {
                s.hostname = h.clone();
            }
            Event::Instance(InstanceEvent::RebuildStarted(Box::new(RebuildSpec {
                image: s.image.clone(),
                name: s.name.clone(),
                metadata: s.metadata.clone(),
                key_name: s.key_name.clone(),
                user_data: s.user_data.clone(),
                description: s.description.clone(),
                access: Some(s.access),
                trusted_image_certificates: s.trusted_image_certificates.clone(),
                hostname: Some(s.hostname.clone()),
            })))
        }
        other => panic!("not a server change: {other:?}"),
    }
}

// ---- helpers ----

fn context(links: &Links, version: ApiVersion, admin: bool) -> ViewContext<'_> {
    ViewContext {
        links,
        version,
        is_admin: admin,
        show_extended_attributes: admin,
        show_host_status: admin,
        now_ms: 1_378_180_900_000,
        service_down_time_ms: 60_000,
    }
}

impl Harness {
    async fn at_version(
        &self,
        version: &str,
        method: Method,
        uri: &str,
        token: &str,
        body: Option<Value>,
    ) -> Reply {
        let header = format!("compute {version}");
        self.send(
            method,
            uri,
            Some(token),
            &[("OpenStack-API-Version", header.as_str())],
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }

    /// Creates a server as `MEMBER` with `extra` merged into the body.
    async fn shaped_server(&self, name: &str, extra: Value) -> String {
        let mut body = server_body(name);
        for (k, v) in extra.as_object().unwrap() {
            body["server"][k] = v.clone();
        }
        let r = self
            .call(Method::POST, "/v2.1/servers", Some(MEMBER), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        assert_shape("compute/server-create.json", &r.body);
        r.body["server"]["id"].as_str().unwrap().to_owned()
    }

    /// Appends a host registration as an agent would, and waits until the
    /// projection shows it.
    async fn shaped_host(&self, name: &str) {
        let reg = HostRegistered {
            host: name.into(),
            capacity: Resources {
                vcpus: 8,
                memory_mb: 16_384,
                disk_gb: 100,
            },
            usage: HostUsage::default(),
            cpu_arch: "x86_64".into(),
            hypervisor_type: "fake".into(),
            hypervisor_version: 1000,
            availability_zone: "nova".into(),
            capabilities: Default::default(),
            driver: "fake".into(),
        };
        let env = Envelope {
            meta: Meta::origin(
                Uuid::new_v4(),
                "req-agent".into(),
                Actor::service("compute"),
                name.into(),
            ),
            event: Event::Host(HostEvent::HostRegistered(Box::new(reg))),
        };
        self.log
            .append(vec![Record::new(
                self.cfg.topics().hosts,
                name.as_bytes().to_vec(),
                novalog_schemas::encode(&env),
            )])
            .await
            .unwrap();
        let app = self.handle.as_ref().unwrap().app.clone();
        tokio::time::timeout(Duration::from_secs(10), async {
            while app.projection.host(name).is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the host is projected");
    }
}

#[track_caller]
fn ok(r: &Reply, status: StatusCode) -> &Value {
    assert_eq!(r.status, status, "{}", r.body);
    &r.body
}

fn bad_request(r: &Reply) -> String {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    r.body["badRequest"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

// ---- servers ----

#[tokio::test]
async fn server_views_follow_novas_schemas_per_microversion() {
    let h = Harness::with_conductor().await;
    let id = h
        .shaped_server(
            "shapes",
            json!({"accessIPv4": "192.0.2.7", "accessIPv6": "2001:db8::7",
                   "OS-DCF:diskConfig": "AUTO"}),
        )
        .await;
    let uri = format!("/v2.1/servers/{id}");
    for (version, member, admin) in [
        (
            "2.1",
            "compute/server-show-v2.1.json",
            "compute/server-show-v2.1-admin.json",
        ),
        (
            "2.47",
            "compute/server-show-v2.47.json",
            "compute/server-show-v2.47-admin.json",
        ),
    ] {
        let r = h.at_version(version, Method::GET, &uri, MEMBER, None).await;
        let body = ok(&r, StatusCode::OK);
        assert_shape(member, body);
        // What create was given is kept and shown.
        assert_eq!(body["server"]["accessIPv4"], "192.0.2.7");
        assert_eq!(body["server"]["accessIPv6"], "2001:db8::7");
        assert_eq!(body["server"]["OS-DCF:diskConfig"], "AUTO");
        let r = h.at_version(version, Method::GET, &uri, ADMIN, None).await;
        assert_shape(admin, ok(&r, StatusCode::OK));
    }
    let r = h
        .at_version("2.1", Method::GET, "/v2.1/servers/detail", MEMBER, None)
        .await;
    assert_shape("compute/servers-detail-v2.1.json", ok(&r, StatusCode::OK));
    let r = h
        .at_version("2.47", Method::GET, "/v2.1/servers/detail", MEMBER, None)
        .await;
    assert_shape("compute/servers-detail-v2.47.json", ok(&r, StatusCode::OK));
    let r = h
        .call(Method::GET, "/v2.1/servers?limit=1", Some(MEMBER), None)
        .await;
    assert_shape("compute/servers-list.json", ok(&r, StatusCode::OK));
    h.stop().await;
}

#[tokio::test]
async fn update_answers_the_reduced_view_and_changes_the_access_settings() {
    let h = Harness::with_conductor().await;
    let id = h.shaped_server("upd", json!({})).await;
    let uri = format!("/v2.1/servers/{id}");
    let r = h
        .at_version(
            "2.1",
            Method::PUT,
            &uri,
            MEMBER,
            Some(
                json!({"server": {"name": "upd2", "accessIPv4": "198.51.100.4",
                                   "OS-DCF:diskConfig": "AUTO"}}),
            ),
        )
        .await;
    let body = ok(&r, StatusCode::OK);
    assert_shape("compute/server-update-v2.1.json", body);
    assert_eq!(body["server"]["name"], "upd2");
    assert_eq!(body["server"]["accessIPv4"], "198.51.100.4");
    assert_eq!(body["server"]["accessIPv6"], "");
    assert_eq!(body["server"]["OS-DCF:diskConfig"], "AUTO");
    for key in [
        "OS-EXT-STS:vm_state",
        "OS-EXT-AZ:availability_zone",
        "key_name",
    ] {
        assert!(
            body["server"].get(key).is_none(),
            "{key} is not in PUT's view"
        );
    }

    // An address left out stays; the other changes.
    let r = h
        .at_version(
            "2.26",
            Method::PUT,
            &uri,
            MEMBER,
            Some(json!({"server": {"accessIPv6": "2001:db8::1", "description": "d"}})),
        )
        .await;
    let body = ok(&r, StatusCode::OK);
    assert_shape("compute/server-update-v2.26.json", body);
    assert_eq!(body["server"]["accessIPv4"], "198.51.100.4");
    assert_eq!(body["server"]["accessIPv6"], "2001:db8::1");
    assert_eq!(body["server"]["description"], "d");
    let r = h
        .at_version(
            "2.47",
            Method::PUT,
            &uri,
            MEMBER,
            Some(json!({"server": {"OS-DCF:diskConfig": "MANUAL"}})),
        )
        .await;
    let body = ok(&r, StatusCode::OK);
    assert_shape("compute/server-update-v2.47.json", body);
    assert_eq!(body["server"]["OS-DCF:diskConfig"], "MANUAL");
    // And GET shows what PUT changed.
    let r = h.call(Method::GET, &uri, Some(MEMBER), None).await;
    let server = &ok(&r, StatusCode::OK)["server"];
    assert_eq!(server["accessIPv4"], "198.51.100.4");
    assert_eq!(server["accessIPv6"], "2001:db8::1");
    assert_eq!(server["OS-DCF:diskConfig"], "MANUAL");

    // Malformed values are Nova's 400 and write nothing.
    let before = h.intents_end().await;
    for (field, value, reason) in [
        ("accessIPv4", json!("1.2.3"), "is not a 'ipv4'"),
        ("accessIPv4", json!("2001:db8::1"), "is not a 'ipv4'"),
        ("accessIPv6", json!("fe80::zz"), "is not a 'ipv6'"),
        ("accessIPv6", json!(6), "is not of type 'string'"),
        (
            "OS-DCF:diskConfig",
            json!("auto"),
            "is not one of ['AUTO', 'MANUAL']",
        ),
    ] {
        let r = h
            .call(
                Method::PUT,
                &uri,
                Some(MEMBER),
                Some(json!({"server": { field: value }})),
            )
            .await;
        let m = bad_request(&r);
        assert!(m.contains(field) && m.contains(reason), "{m}");
    }
    assert_eq!(h.intents_end().await, before);
    h.stop().await;
}

#[tokio::test]
async fn create_refuses_malformed_access_settings() {
    let h = Harness::with_conductor().await;
    let before = h.intents_end().await;
    for (field, value) in [
        ("accessIPv4", json!("256.1.1.1")),
        ("accessIPv6", json!("1.2.3.4")),
        ("OS-DCF:diskConfig", json!("")),
    ] {
        let mut body = server_body("bad");
        body["server"][field] = value;
        let r = h
            .call(Method::POST, "/v2.1/servers", Some(MEMBER), Some(body))
            .await;
        assert!(bad_request(&r).contains(field));
    }
    assert_eq!(h.intents_end().await, before);
    h.stop().await;
}

#[tokio::test]
async fn rebuild_answers_the_reduced_view_per_microversion() {
    let h = Harness::with_conductor().await;
    let id = h
        .shaped_server("rb", json!({"accessIPv4": "192.0.2.1"}))
        .await;
    let action = format!("/v2.1/servers/{id}/action");
    let image = crate::bootstrap::demo_image_id().to_string();
    for (version, schema) in [
        ("2.1", "compute/server-rebuild-v2.1.json"),
        ("2.26", "compute/server-rebuild-v2.26.json"),
        ("2.54", "compute/server-rebuild-v2.54.json"),
        ("2.57", "compute/server-rebuild-v2.57.json"),
    ] {
        let r = h
            .at_version(
                version,
                Method::POST,
                &action,
                MEMBER,
                Some(
                    json!({"rebuild": {"imageRef": image, "accessIPv6": "2001:db8::2",
                                        "OS-DCF:diskConfig": "AUTO", "adminPass": "s3cret"}}),
                ),
            )
            .await;
        let body = ok(&r, StatusCode::ACCEPTED);
        assert_shape(schema, body);
        assert_eq!(body["server"]["adminPass"], "s3cret");
        assert_eq!(body["server"]["accessIPv4"], "192.0.2.1", "kept");
        assert_eq!(body["server"]["accessIPv6"], "2001:db8::2");
        assert_eq!(body["server"]["OS-DCF:diskConfig"], "AUTO");
    }
    let before = h.intents_end().await;
    for (field, value) in [
        ("accessIPv4", json!("::1")),
        ("accessIPv6", json!("")),
        ("OS-DCF:diskConfig", json!(true)),
    ] {
        let mut rebuild = json!({"imageRef": image});
        rebuild[field] = value;
        let r = h
            .call(
                Method::POST,
                &action,
                Some(MEMBER),
                Some(json!({ "rebuild": rebuild })),
            )
            .await;
        assert!(bad_request(&r).contains(field));
    }
    // resize checks its disk config before anything is written too.
    let r = h
        .call(
            Method::POST,
            &action,
            Some(MEMBER),
            Some(json!({"resize": {"flavorRef": "2", "OS-DCF:diskConfig": "SOMETIMES"}})),
        )
        .await;
    assert!(bad_request(&r).contains("OS-DCF:diskConfig"));
    assert_eq!(h.intents_end().await, before);
    h.stop().await;
}

/// The update and rebuild views of 2.71 to 2.75, checked where they are
/// made.
#[test]
fn update_and_rebuild_views_of_2_71_to_2_75_follow_novas_schemas() {
    let links = Links::new("http://h");
    let mut inst = crate::views::servers::tests::building("p1");
    inst.access = AccessConfig {
        access_ip_v4: Some([192, 0, 2, 9].into()),
        access_ip_v6: None,
        auto_disk_config: true,
    };
    let group = Uuid::new_v4();
    let groups = || vec![group];
    let server = |version, admin, parts: &Parts| json!({"server": show_parts(&context(&links, ApiVersion::new(2, version), admin), &inst, None, parts)});
    for (v, schema) in [
        (71, "compute/server-update-v2.71.json"),
        (73, "compute/server-update-v2.73.json"),
    ] {
        let body = server(v, false, &Parts::update(ApiVersion::new(2, v), groups));
        assert_shape(schema, &body);
        assert_eq!(body["server"]["server_groups"], json!([group]));
    }
    assert_shape(
        "compute/server-update-v2.75-admin.json",
        &server(75, true, &Parts::update(ApiVersion::new(2, 75), groups)),
    );
    let mut rebuilt = server(73, false, &Parts::rebuild(ApiVersion::new(2, 73), groups));
    rebuilt["server"]["adminPass"] = json!("p");
    rebuilt["server"]["user_data"] = Value::Null;
    assert_shape("compute/server-rebuild-v2.73.json", &rebuilt);
    let mut rebuilt = server(75, true, &Parts::rebuild(ApiVersion::new(2, 75), groups));
    assert!(
        rebuilt["server"].get("OS-EXT-SRV-ATTR:user_data").is_none(),
        "rebuild shows user_data at the top instead"
    );
    rebuilt["server"]["adminPass"] = json!("p");
    rebuilt["server"]["user_data"] = Value::Null;
    assert_shape("compute/server-rebuild-v2.75-admin.json", &rebuilt);
    assert_shape(
        "compute/server-show-v2.73-admin.json",
        &server(73, true, &Parts::show(ApiVersion::new(2, 73), groups)),
    );
    assert_eq!(
        server(73, true, &Parts::show(ApiVersion::new(2, 73), groups))["server"]["accessIPv4"],
        "192.0.2.9"
    );
}

/// The newest microversion's server bodies, through the router: show
/// (member and administrator), detail, update and rebuild.
#[tokio::test]
async fn server_views_at_2_100_follow_novas_schemas() {
    let h = Harness::with_conductor().await;
    let mut body = server_body("newest");
    body["server"]["hostname"] = json!("newest-1");
    body["server"]["trusted_image_certificates"] = json!(["cert"]);
    body["os:scheduler_hints"] = json!({"cidr": "/24"});
    let r = h
        .at_version("2.100", Method::POST, "/v2.1/servers", MEMBER, Some(body))
        .await;
    assert_shape("compute/server-create.json", ok(&r, StatusCode::ACCEPTED));
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let uri = format!("/v2.1/servers/{id}");
    let r = h.at_version("2.100", Method::GET, &uri, MEMBER, None).await;
    assert_shape("compute/server-show-v2.100.json", ok(&r, StatusCode::OK));
    assert_eq!(
        r.body["server"]["scheduler_hints"],
        json!({"cidr": ["/24"]})
    );
    let r = h.at_version("2.100", Method::GET, &uri, ADMIN, None).await;
    assert_shape(
        "compute/server-show-v2.100-admin.json",
        ok(&r, StatusCode::OK),
    );
    let r = h
        .at_version("2.100", Method::GET, "/v2.1/servers/detail", MEMBER, None)
        .await;
    assert_shape("compute/servers-detail-v2.100.json", ok(&r, StatusCode::OK));
    let r = h
        .at_version(
            "2.100",
            Method::PUT,
            &uri,
            MEMBER,
            Some(json!({"server": {"name": "renamed"}})),
        )
        .await;
    assert_shape("compute/server-update-v2.100.json", ok(&r, StatusCode::OK));
    let rebuild = json!({"rebuild": {"imageRef": crate::bootstrap::demo_image_id().to_string()}});
    let r = h
        .at_version(
            "2.100",
            Method::POST,
            &format!("{uri}/action"),
            MEMBER,
            Some(rebuild),
        )
        .await;
    assert_shape(
        "compute/server-rebuild-v2.100.json",
        ok(&r, StatusCode::ACCEPTED),
    );
    // Below 2.98 the image has no properties: the 2.73 shape still holds.
    let r = h.at_version("2.73", Method::GET, &uri, ADMIN, None).await;
    assert_shape(
        "compute/server-show-v2.73-admin.json",
        ok(&r, StatusCode::OK),
    );
    h.stop().await;
}

// ---- the other Compute resources ----

#[tokio::test]
async fn flavors_keypairs_limits_and_quotas_follow_novas_schemas() {
    let h = Harness::with_conductor().await;
    for (version, show, list, detail) in [
        (
            "2.1",
            "compute/flavor-v2.1.json",
            "compute/flavors-list-v2.1.json",
            None,
        ),
        (
            "2.61",
            "compute/flavor-v2.61.json",
            "compute/flavors-list-v2.55.json",
            Some("compute/flavors-detail-v2.61.json"),
        ),
    ] {
        let r = h
            .at_version(version, Method::GET, "/v2.1/flavors/1", MEMBER, None)
            .await;
        assert_shape(show, ok(&r, StatusCode::OK));
        let r = h
            .at_version(version, Method::GET, "/v2.1/flavors", MEMBER, None)
            .await;
        assert_shape(list, ok(&r, StatusCode::OK));
        if let Some(detail) = detail {
            let r = h
                .at_version(version, Method::GET, "/v2.1/flavors/detail", MEMBER, None)
                .await;
            assert_shape(detail, ok(&r, StatusCode::OK));
        }
    }

    let r = h
        .at_version(
            "2.2",
            Method::POST,
            "/v2.1/os-keypairs",
            MEMBER,
            Some(json!({"keypair": {"name": "k1"}})),
        )
        .await;
    assert_shape(
        "compute/keypair-create-v2.2.json",
        ok(&r, StatusCode::CREATED),
    );
    let r = h
        .at_version("2.2", Method::GET, "/v2.1/os-keypairs/k1", MEMBER, None)
        .await;
    assert_shape("compute/keypair-v2.2.json", ok(&r, StatusCode::OK));
    let r = h
        .at_version("2.35", Method::GET, "/v2.1/os-keypairs", MEMBER, None)
        .await;
    assert_shape("compute/keypairs-list-v2.2.json", ok(&r, StatusCode::OK));

    let r = h
        .at_version("2.1", Method::GET, "/v2.1/limits", MEMBER, None)
        .await;
    assert_shape("compute/limits-v2.1.json", ok(&r, StatusCode::OK));
    let r = h
        .at_version("2.57", Method::GET, "/v2.1/limits", MEMBER, None)
        .await;
    assert_shape("compute/limits-v2.57.json", ok(&r, StatusCode::OK));

    let r = h
        .at_version("2.1", Method::GET, "/v2.1/os-quota-sets/p1", MEMBER, None)
        .await;
    assert_shape("compute/quota-set-v2.1.json", ok(&r, StatusCode::OK));
    let r = h
        .at_version("2.57", Method::GET, "/v2.1/os-quota-sets/p1", MEMBER, None)
        .await;
    assert_shape("compute/quota-set-v2.57.json", ok(&r, StatusCode::OK));
    let r = h
        .at_version(
            "2.57",
            Method::GET,
            "/v2.1/os-quota-sets/p1/detail",
            MEMBER,
            None,
        )
        .await;
    assert_shape(
        "compute/quota-set-detail-v2.57.json",
        ok(&r, StatusCode::OK),
    );
    let r = h
        .at_version(
            "2.57",
            Method::GET,
            "/v2.1/os-quota-sets/p1/defaults",
            MEMBER,
            None,
        )
        .await;
    assert_shape("compute/quota-set-v2.57.json", ok(&r, StatusCode::OK));
    h.stop().await;
}

#[tokio::test]
async fn server_groups_services_and_hypervisors_follow_novas_schemas() {
    let h = Harness::with_conductor().await;
    for (version, body, schema) in [
        (
            "2.1",
            json!({"server_group": {"name": "g1", "policies": ["affinity"]}}),
            "compute/server-group-v2.1.json",
        ),
        (
            "2.13",
            json!({"server_group": {"name": "g2", "policies": ["anti-affinity"]}}),
            "compute/server-group-v2.13.json",
        ),
    ] {
        let r = h
            .at_version(
                version,
                Method::POST,
                "/v2.1/os-server-groups",
                MEMBER,
                Some(body),
            )
            .await;
        let created = ok(&r, StatusCode::OK).clone();
        assert_shape(schema, &created);
        let uri = format!(
            "/v2.1/os-server-groups/{}",
            created["server_group"]["id"].as_str().unwrap()
        );
        let r = h.at_version(version, Method::GET, &uri, MEMBER, None).await;
        assert_shape(schema, ok(&r, StatusCode::OK));
    }
    let r = h
        .at_version("2.13", Method::GET, "/v2.1/os-server-groups", MEMBER, None)
        .await;
    assert_shape(
        "compute/server-groups-list-v2.13.json",
        ok(&r, StatusCode::OK),
    );

    h.shaped_host("shape-host-1").await;
    for (version, schema) in [
        ("2.1", "compute/services-v2.1.json"),
        ("2.11", "compute/services-v2.11.json"),
        ("2.53", "compute/services-v2.53.json"),
    ] {
        let r = h
            .at_version(version, Method::GET, "/v2.1/os-services", ADMIN, None)
            .await;
        assert_shape(schema, ok(&r, StatusCode::OK));
    }
    for (version, list, detail) in [
        (
            "2.1",
            "compute/hypervisors-list-v2.1.json",
            "compute/hypervisors-detail-v2.1.json",
        ),
        (
            "2.53",
            "compute/hypervisors-list-v2.53.json",
            "compute/hypervisors-detail-v2.53.json",
        ),
    ] {
        let r = h
            .at_version(version, Method::GET, "/v2.1/os-hypervisors", ADMIN, None)
            .await;
        let body = ok(&r, StatusCode::OK).clone();
        assert_shape(list, &body);
        let r = h
            .at_version(
                version,
                Method::GET,
                "/v2.1/os-hypervisors/detail",
                ADMIN,
                None,
            )
            .await;
        assert_shape(detail, ok(&r, StatusCode::OK));
        if version == "2.1" {
            let id = &body["hypervisors"][0]["id"];
            let r = h
                .at_version(
                    version,
                    Method::GET,
                    &format!("/v2.1/os-hypervisors/{id}"),
                    ADMIN,
                    None,
                )
                .await;
            assert_shape("compute/hypervisor-v2.1.json", ok(&r, StatusCode::OK));
        }
    }
    h.stop().await;
}

// ---- Glance ----

#[tokio::test]
async fn images_and_members_follow_glances_schemas() {
    let h = Harness::with_conductor().await;
    let r = h
        .call(
            Method::POST,
            "/image/v2/images",
            Some(MEMBER),
            Some(json!({"name": "shared", "disk_format": "qcow2",
                        "container_format": "bare", "visibility": "shared",
                        "os_distro": "cirros"})),
        )
        .await;
    let image = ok(&r, StatusCode::CREATED).clone();
    assert_shape("image/image.json", &image);
    let id = image["id"].as_str().unwrap();
    let r = h
        .call(
            Method::GET,
            &format!("/image/v2/images/{id}"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_shape("image/image.json", ok(&r, StatusCode::OK));
    let r = h
        .call(Method::GET, "/image/v2/images", Some(MEMBER), None)
        .await;
    assert_shape("image/images-list.json", ok(&r, StatusCode::OK));
    let r = h
        .call(
            Method::POST,
            &format!("/image/v2/images/{id}/members"),
            Some(MEMBER),
            Some(json!({"member": "p2"})),
        )
        .await;
    assert_shape("image/member.json", ok(&r, StatusCode::OK));
    let r = h
        .call(
            Method::GET,
            &format!("/image/v2/images/{id}/members/p2"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_shape("image/member.json", ok(&r, StatusCode::OK));
    let r = h
        .call(
            Method::GET,
            &format!("/image/v2/images/{id}/members"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_shape("image/members-list.json", ok(&r, StatusCode::OK));
    h.stop().await;
}

// ---- Keystone ----

#[tokio::test]
async fn projects_users_roles_and_tokens_follow_keystones_schemas() {
    let h = Harness::without_conductor_configured(|c| {
        c.api.auth_strategy = "keystone".into();
        c.identity.password_hash_rounds = 10;
        c.identity.token_secret = "k".into();
    })
    .await;
    let auth = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": "admin"}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
    let r = h
        .call(Method::POST, "/identity/v3/auth/tokens", None, Some(auth))
        .await;
    assert_shape("identity/token.json", ok(&r, StatusCode::CREATED));
    let token = r.headers["x-subject-token"].to_str().unwrap().to_owned();
    let t = Some(token.as_str());
    let validate = h
        .send(
            Method::GET,
            "/identity/v3/auth/tokens",
            t,
            &[("x-subject-token", token.as_str())],
            None,
        )
        .await;
    assert_shape("identity/token.json", ok(&validate, StatusCode::OK));

    let r = h
        .call(
            Method::POST,
            "/identity/v3/projects",
            t,
            Some(json!({"project": {"name": "shapes"}})),
        )
        .await;
    let project = ok(&r, StatusCode::CREATED).clone();
    assert_shape("identity/project.json", &project);
    let pid = project["project"]["id"].as_str().unwrap();
    let r = h
        .call(
            Method::GET,
            &format!("/identity/v3/projects/{pid}"),
            t,
            None,
        )
        .await;
    assert_shape("identity/project.json", ok(&r, StatusCode::OK));
    let r = h.call(Method::GET, "/identity/v3/projects", t, None).await;
    assert_shape("identity/projects-list.json", ok(&r, StatusCode::OK));

    let r = h
        .call(
            Method::POST,
            "/identity/v3/users",
            t,
            Some(json!({"user": {"name": "shaper", "password": "pw",
                                 "default_project_id": pid}})),
        )
        .await;
    let user = ok(&r, StatusCode::CREATED).clone();
    assert_shape("identity/user.json", &user);
    let uid = user["user"]["id"].as_str().unwrap();
    let r = h
        .call(Method::GET, &format!("/identity/v3/users/{uid}"), t, None)
        .await;
    assert_shape("identity/user.json", ok(&r, StatusCode::OK));
    let r = h.call(Method::GET, "/identity/v3/users", t, None).await;
    assert_shape("identity/users-list.json", ok(&r, StatusCode::OK));

    let r = h
        .call(
            Method::POST,
            "/identity/v3/roles",
            t,
            Some(json!({"role": {"name": "shaper"}})),
        )
        .await;
    let role = ok(&r, StatusCode::CREATED).clone();
    assert_shape("identity/role.json", &role);
    let rid = role["role"]["id"].as_str().unwrap();
    let r = h
        .call(Method::GET, &format!("/identity/v3/roles/{rid}"), t, None)
        .await;
    assert_shape("identity/role.json", ok(&r, StatusCode::OK));
    let r = h.call(Method::GET, "/identity/v3/roles", t, None).await;
    assert_shape("identity/roles-list.json", ok(&r, StatusCode::OK));
    h.stop().await;
}
