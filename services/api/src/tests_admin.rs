//! Router tests of keypairs, compute services and hypervisors, every 4xx
//! path included, on the harness of [`crate::tests`].

use std::time::Duration;

use axum::http::{Method, StatusCode};
use novalog_log::Record;
use novalog_schemas::events::HostRegistered;
use novalog_schemas::{Actor, Envelope, Event, HostEvent, HostUsage, Meta, Resources};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::projection::host_number;
use crate::tests::{ADMIN, Harness, MEMBER, OTHER, Reply, server_body};

/// The integer id of a host's first service record.
fn id(host: &str) -> u32 {
    host_number(host, 0)
}

// Nova's sample key (`keypairs-import-post-req.json`) and its fingerprint.
const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv/zgGgB4rMYmIf+6A4l6Rr+o/6lHBQdW5aYd44bd8JttDCE/F/pNRr0lRE+PiqSPO8nDPHw0010JeMH9gYgnnFlyY3/OcJ02RhIPyyxYpv9FhY+2YiUkpwFOcLImyrxEsYXpD/0d3ac30bNH6Sw9JD9UZHYcpSxsIbECHw== Generated-by-Nova";
const RSA_FP: &str = "1e:2c:9b:56:79:4b:45:77:f9:ca:7a:98:2c:b0:d5:3c";

impl Harness {
    async fn at(
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

    /// Appends a host registration as an agent would and waits until the
    /// projection shows it.
    async fn register_host(&self, name: &str) {
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

fn import(name: &str) -> Value {
    json!({"keypair": {"name": name, "public_key": RSA}})
}

fn message(r: &Reply) -> String {
    r.body
        .as_object()
        .and_then(|m| m.values().next())
        .and_then(|f| f["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn keypairs_are_imported_listed_shown_and_deleted() {
    let h = Harness::with_conductor().await;
    let r = h
        .at(
            "2.2",
            Method::POST,
            "/v2.1/os-keypairs",
            MEMBER,
            Some(import("k1")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let k = &r.body["keypair"];
    assert_eq!(k["fingerprint"], RSA_FP);
    assert_eq!(k["type"], "ssh");
    assert_eq!(k["user_id"], "alice");
    assert_eq!(k["public_key"], RSA);
    assert!(k.get("private_key").is_none());

    let r = h
        .at("2.2", Method::GET, "/v2.1/os-keypairs", MEMBER, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        json!({"keypairs": [{"keypair": {
            "name": "k1", "public_key": RSA, "fingerprint": RSA_FP, "type": "ssh"}}]})
    );
    // At 2.1 there is no type.
    let r = h
        .at("2.1", Method::GET, "/v2.1/os-keypairs", MEMBER, None)
        .await;
    assert!(r.body["keypairs"][0]["keypair"].get("type").is_none());
    // Another user sees none of them.
    let r = h
        .at("2.2", Method::GET, "/v2.1/os-keypairs", OTHER, None)
        .await;
    assert_eq!(r.body, json!({"keypairs": []}));

    let r = h
        .at("2.2", Method::GET, "/v2.1/os-keypairs/k1", MEMBER, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let k = &r.body["keypair"];
    assert_eq!(k["id"], 1);
    assert_eq!(k["deleted"], false);
    assert_eq!(k["user_id"], "alice");
    assert!(k["created_at"].as_str().unwrap().contains('T'));
    assert_eq!(k["updated_at"], Value::Null);

    // The same name again: 409.
    let r = h
        .at(
            "2.2",
            Method::POST,
            "/v2.1/os-keypairs",
            MEMBER,
            Some(import("k1")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(message(&r), "Key pair 'k1' already exists.");

    let r = h
        .at("2.2", Method::DELETE, "/v2.1/os-keypairs/k1", MEMBER, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h
        .at("2.2", Method::GET, "/v2.1/os-keypairs/k1", MEMBER, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(message(&r), "Keypair k1 not found for user alice");
    let r = h
        .at("2.2", Method::DELETE, "/v2.1/os-keypairs/k1", MEMBER, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // At 2.1 create answers 200 and delete 202.
    let r = h
        .at(
            "2.1",
            Method::POST,
            "/v2.1/os-keypairs",
            MEMBER,
            Some(import("k2")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["keypair"].get("type").is_none());
    let r = h
        .at("2.1", Method::DELETE, "/v2.1/os-keypairs/k2", MEMBER, None)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    h.stop().await;
}

#[tokio::test]
async fn a_keypair_without_public_key_is_generated() {
    let h = Harness::with_conductor().await;
    let r = h
        .at(
            "2.2",
            Method::POST,
            "/v2.1/os-keypairs",
            MEMBER,
            Some(json!({"keypair": {"name": "gen"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let k = &r.body["keypair"];
    assert!(
        k["private_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
    );
    let public = k["public_key"].as_str().unwrap();
    assert_eq!(
        k["fingerprint"].as_str().unwrap(),
        crate::domain::keypair_api::ssh_fingerprint(public).unwrap()
    );
    // The private key is never shown again.
    let r = h
        .at("2.2", Method::GET, "/v2.1/os-keypairs/gen", MEMBER, None)
        .await;
    assert!(r.body["keypair"].get("private_key").is_none());
    // x509 keys are imported, never generated.
    let r = h
        .at(
            "2.2",
            Method::POST,
            "/v2.1/os-keypairs",
            MEMBER,
            Some(json!({"keypair": {"name": "cert", "type": "x509"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    h.stop().await;
}

#[tokio::test]
async fn bad_keypair_requests_are_400_and_write_nothing() {
    let h = Harness::with_conductor().await;
    let before = h.intents_end().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "2.2",
            json!({"keypair": {"name": "k", "public_key": "ssh-rsa bm90IGEga2V5"}}),
            "Keypair data is invalid: failed to generate fingerprint",
        ),
        (
            "2.2",
            json!({"keypair": {"name": "a/b", "public_key": RSA}}),
            "Keypair data is invalid: Keypair name contains unsafe characters",
        ),
        (
            "2.2",
            json!({"keypair": {"public_key": RSA}}),
            "'name' is a required property",
        ),
        (
            "2.2",
            json!({"keypair": {"name": "", "public_key": RSA}}),
            "is too short",
        ),
        (
            "2.1",
            json!({"keypair": {"name": "k", "type": "ssh"}}),
            "Additional properties are not allowed ('type' was unexpected)",
        ),
        (
            "2.9",
            json!({"keypair": {"name": "k", "user_id": "bob"}}),
            "Additional properties are not allowed ('user_id' was unexpected)",
        ),
        (
            "2.2",
            json!({"keypair": {"name": "k", "type": "pgp"}}),
            "is not one of ['ssh', 'x509']",
        ),
        (
            "2.2",
            json!({"keypair": {"name": "k", "public_key": 7}}),
            "is not of type 'string'",
        ),
        ("2.2", json!({"kp": {}}), "was unexpected"),
        (
            "2.2",
            json!({"keypair": {"name": "k", "type": "x509", "public_key": "junk"}}),
            "Keypair data is invalid: failed to generate X509 fingerprint",
        ),
    ];
    for (version, body, expected) in cases {
        let r = h
            .at(
                version,
                Method::POST,
                "/v2.1/os-keypairs",
                MEMBER,
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
        assert!(message(&r).contains(expected), "{body}: {}", message(&r));
    }
    assert_eq!(h.intents_end().await, before);
    // No token: 401.
    let r = h.call(Method::GET, "/v2.1/os-keypairs", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    h.stop().await;
}

/// Issue 9, defect 4: an empty `user_id` was dropped on the wire, the
/// conductor could not decode the intent, and the caller waited 30 s for a
/// 503. It is refused here before anything is written.
#[tokio::test]
async fn empty_keypair_user_id_is_400_and_writes_nothing() {
    let h = Harness::with_conductor().await;
    let before = h.intents_end().await;
    let r = h
        .at(
            "2.10",
            Method::POST,
            "/v2.1/os-keypairs",
            ADMIN,
            Some(json!({"keypair": {"name": "k", "type": "ssh", "user_id": ""}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(
        message(&r),
        "Invalid input for field/attribute user_id. Value: . '' is too short"
    );
    let long = "u".repeat(256);
    let r = h
        .at(
            "2.10",
            Method::POST,
            "/v2.1/os-keypairs",
            ADMIN,
            Some(json!({"keypair": {"name": "k", "user_id": long}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(message(&r).contains("is too long"), "{}", message(&r));
    assert_eq!(h.intents_end().await, before);
    h.stop().await;
}

#[tokio::test]
async fn only_administrators_act_on_other_users_keypairs() {
    let h = Harness::with_conductor().await;
    let r = h
        .at(
            "2.10",
            Method::POST,
            "/v2.1/os-keypairs",
            OTHER,
            Some(import("bobs")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    for (method, uri) in [
        (Method::GET, "/v2.1/os-keypairs?user_id=bob"),
        (Method::GET, "/v2.1/os-keypairs/bobs?user_id=bob"),
        (Method::DELETE, "/v2.1/os-keypairs/bobs?user_id=bob"),
    ] {
        let r = h.at("2.10", method.clone(), uri, MEMBER, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {uri}");
        assert!(message(&r).starts_with("Policy doesn't allow os_compute_api:os-keypairs:"));
    }
    let r = h
        .at(
            "2.10",
            Method::POST,
            "/v2.1/os-keypairs",
            MEMBER,
            Some(json!({"keypair": {"name": "x", "public_key": RSA, "user_id": "bob"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Below 2.10 user_id is ignored: alice sees her own (none).
    let r = h
        .at(
            "2.9",
            Method::GET,
            "/v2.1/os-keypairs?user_id=bob",
            MEMBER,
            None,
        )
        .await;
    assert_eq!(r.body, json!({"keypairs": []}));
    // An administrator lists and creates for bob.
    let r = h
        .at(
            "2.10",
            Method::GET,
            "/v2.1/os-keypairs?user_id=bob",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.body["keypairs"][0]["keypair"]["name"], "bobs");
    let r = h
        .at(
            "2.10",
            Method::POST,
            "/v2.1/os-keypairs",
            ADMIN,
            Some(json!({"keypair": {"name": "for-bob", "public_key": RSA, "user_id": "bob"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["keypair"]["user_id"], "bob");
    let r = h
        .at(
            "2.10",
            Method::DELETE,
            "/v2.1/os-keypairs/for-bob?user_id=bob",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    h.stop().await;
}

#[tokio::test]
async fn keypairs_page_from_2_35() {
    let h = Harness::with_conductor().await;
    for name in ["a", "b", "c"] {
        let r = h
            .at(
                "2.35",
                Method::POST,
                "/v2.1/os-keypairs",
                MEMBER,
                Some(import(name)),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let r = h
        .at(
            "2.35",
            Method::GET,
            "/v2.1/os-keypairs?limit=2",
            MEMBER,
            None,
        )
        .await;
    let names: Vec<&str> = r.body["keypairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["keypair"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        r.body["keypairs_links"][0]["href"],
        "http://cloud.test:8774/v2.1/os-keypairs?limit=2&marker=b"
    );
    let r = h
        .at(
            "2.35",
            Method::GET,
            "/v2.1/os-keypairs?limit=2&marker=b",
            MEMBER,
            None,
        )
        .await;
    assert_eq!(r.body["keypairs"].as_array().unwrap().len(), 1);
    assert!(r.body.get("keypairs_links").is_none());
    let r = h
        .at(
            "2.35",
            Method::GET,
            "/v2.1/os-keypairs?marker=zz",
            MEMBER,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(message(&r), "Marker zz could not be found.");
    let r = h
        .at(
            "2.35",
            Method::GET,
            "/v2.1/os-keypairs?limit=x",
            MEMBER,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Before 2.35 paging parameters are ignored.
    let r = h
        .at(
            "2.34",
            Method::GET,
            "/v2.1/os-keypairs?limit=1",
            MEMBER,
            None,
        )
        .await;
    assert_eq!(r.body["keypairs"].as_array().unwrap().len(), 3);
    h.stop().await;
}

#[tokio::test]
async fn servers_boot_with_the_callers_keypair() {
    let h = Harness::with_conductor().await;
    let mut body = server_body("vm");
    body["server"]["key_name"] = json!("mykey");
    let r = h
        .at(
            "2.37",
            Method::POST,
            "/v2.1/servers",
            MEMBER,
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(message(&r), "Invalid key_name provided.");
    h.at(
        "2.37",
        Method::POST,
        "/v2.1/os-keypairs",
        MEMBER,
        Some(import("mykey")),
    )
    .await;
    // Another user's key of that name does not count.
    let r = h
        .at(
            "2.37",
            Method::POST,
            "/v2.1/servers",
            OTHER,
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .at("2.37", Method::POST, "/v2.1/servers", MEMBER, Some(body))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let r = h
        .at(
            "2.37",
            Method::GET,
            &format!("/v2.1/servers/{id}"),
            MEMBER,
            None,
        )
        .await;
    assert_eq!(r.body["server"]["key_name"], "mykey");
    h.stop().await;
}

#[tokio::test]
async fn compute_services_are_listed_and_changed_by_administrators() {
    let h = Harness::with_conductor().await;
    h.register_host("cmp1").await;
    h.register_host("cmp2").await;
    let r = h
        .at("2.11", Method::GET, "/v2.1/os-services", MEMBER, None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        message(&r),
        "Policy doesn't allow os_compute_api:os-services:list to be performed."
    );
    let r = h
        .at("2.11", Method::GET, "/v2.1/os-services", ADMIN, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let services = r.body["services"].as_array().unwrap();
    assert_eq!(services.len(), 2);
    let s = &services[0];
    assert_eq!(s["id"], id("cmp1"));
    assert_eq!(s["binary"], "nova-compute");
    assert_eq!(s["host"], "cmp1");
    assert_eq!(s["zone"], "nova");
    assert_eq!(s["state"], "up");
    assert_eq!(s["status"], "enabled");
    assert_eq!(s["forced_down"], false);
    assert_eq!(s["disabled_reason"], Value::Null);
    // forced_down shows from 2.11.
    let r = h
        .at(
            "2.10",
            Method::GET,
            "/v2.1/os-services?host=cmp2",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.body["services"].as_array().unwrap().len(), 1);
    assert!(r.body["services"][0].get("forced_down").is_none());
    let r = h
        .at(
            "2.11",
            Method::GET,
            "/v2.1/os-services?binary=nova-scheduler",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.body, json!({"services": []}));

    // Disable with a reason, then enable.
    let body = json!({"host": "cmp1", "binary": "nova-compute", "disabled_reason": "maintenance"});
    let r = h
        .at(
            "2.11",
            Method::PUT,
            "/v2.1/os-services/disable-log-reason",
            ADMIN,
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"service": {"host": "cmp1", "binary": "nova-compute", "status": "disabled", "disabled_reason": "maintenance"}})
    );
    let r = h
        .at(
            "2.11",
            Method::GET,
            "/v2.1/os-services?host=cmp1",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.body["services"][0]["status"], "disabled");
    assert_eq!(r.body["services"][0]["disabled_reason"], "maintenance");
    let host = h
        .handle
        .as_ref()
        .unwrap()
        .app
        .projection
        .host("cmp1")
        .unwrap();
    assert_eq!(
        host.status(novalog_schemas::now_ms(), 60_000),
        "MAINTENANCE"
    );
    let body = json!({"host": "cmp1", "binary": "nova-compute"});
    let r = h
        .at(
            "2.11",
            Method::PUT,
            "/v2.1/os-services/enable",
            ADMIN,
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.body["service"]["status"], "enabled");
    let r = h
        .at(
            "2.11",
            Method::GET,
            "/v2.1/os-services?host=cmp1",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.body["services"][0]["disabled_reason"], Value::Null);
    let r = h
        .at(
            "2.11",
            Method::PUT,
            "/v2.1/os-services/disable",
            ADMIN,
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.body["service"]["status"], "disabled");

    // Forced down: the state is down whatever the heartbeats say.
    let forced = json!({"host": "cmp2", "binary": "nova-compute", "forced_down": true});
    let r = h
        .at(
            "2.11",
            Method::PUT,
            "/v2.1/os-services/force-down",
            ADMIN,
            Some(forced.clone()),
        )
        .await;
    assert_eq!(r.body["service"]["forced_down"], true);
    let r = h
        .at(
            "2.11",
            Method::GET,
            "/v2.1/os-services?host=cmp2",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.body["services"][0]["state"], "down");
    assert_eq!(r.body["services"][0]["forced_down"], true);
    // force-down does not exist before 2.11.
    let r = h
        .at(
            "2.10",
            Method::PUT,
            "/v2.1/os-services/force-down",
            ADMIN,
            Some(forced),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    h.stop().await;
}

#[tokio::test]
async fn compute_service_errors_follow_nova() {
    let h = Harness::with_conductor().await;
    h.register_host("cmp1").await;
    h.register_host("busy1").await;
    let before = h.intents_end().await;
    let put = |uri: &'static str, body: Value| (uri, body);
    let cases = [
        (
            put(
                "/v2.1/os-services/disable",
                json!({"host": "nope", "binary": "nova-compute"}),
            ),
            StatusCode::NOT_FOUND,
            "Unknown service",
        ),
        (
            put(
                "/v2.1/os-services/disable",
                json!({"host": "cmp1", "binary": "nova-conductor"}),
            ),
            StatusCode::NOT_FOUND,
            "Unknown service",
        ),
        (
            put(
                "/v2.1/os-services/disable",
                json!({"binary": "nova-compute"}),
            ),
            StatusCode::BAD_REQUEST,
            "'host' is a required property",
        ),
        (
            put(
                "/v2.1/os-services/disable",
                json!({"host": "cmp1", "binary": "nova-compute", "extra": 1}),
            ),
            StatusCode::BAD_REQUEST,
            "'extra' was unexpected",
        ),
        (
            put(
                "/v2.1/os-services/disable-log-reason",
                json!({"host": "cmp1", "binary": "nova-compute"}),
            ),
            StatusCode::BAD_REQUEST,
            "Missing disabled reason field",
        ),
        (
            put(
                "/v2.1/os-services/disable-log-reason",
                json!({"host": "cmp1", "binary": "nova-compute", "disabled_reason": ""}),
            ),
            StatusCode::BAD_REQUEST,
            "is too short",
        ),
        (
            put(
                "/v2.1/os-services/force-down",
                json!({"host": "cmp1", "binary": "nova-compute", "forced_down": "maybe"}),
            ),
            StatusCode::BAD_REQUEST,
            "forced_down",
        ),
        (
            put("/v2.1/os-services/7", json!({"status": "disabled"})),
            StatusCode::NOT_FOUND,
            "could not be found",
        ),
    ];
    for ((uri, body), status, text) in cases {
        let r = h
            .at("2.37", Method::PUT, uri, ADMIN, Some(body.clone()))
            .await;
        assert_eq!(r.status, status, "{uri} {body}: {:?}", r.body);
        assert!(message(&r).contains(text), "{uri} {body}: {}", message(&r));
    }
    let body = json!({"host": "cmp1", "binary": "nova-compute"});
    let r = h
        .at(
            "2.37",
            Method::PUT,
            "/v2.1/os-services/disable",
            MEMBER,
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        message(&r),
        "Policy doesn't allow os_compute_api:os-services:update to be performed."
    );
    let cmp1 = format!("/v2.1/os-services/{}", id("cmp1"));
    let busy1 = format!("/v2.1/os-services/{}", id("busy1"));
    let r = h.at("2.37", Method::DELETE, &cmp1, MEMBER, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .at("2.37", Method::DELETE, "/v2.1/os-services/x", ADMIN, None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .at("2.37", Method::DELETE, "/v2.1/os-services/99", ADMIN, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(message(&r), "Service 99 could not be found.");
    assert_eq!(h.intents_end().await, before, "no refused request writes");
    // A host with instances stays: the conductor's 409.
    let r = h.at("2.37", Method::DELETE, &busy1, ADMIN, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = h.at("2.37", Method::DELETE, &cmp1, ADMIN, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h
        .at("2.37", Method::GET, "/v2.1/os-services", ADMIN, None)
        .await;
    assert_eq!(r.body["services"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["services"][0]["host"], "busy1");
    // A new registration is a new service record with a new id.
    h.register_host("cmp1").await;
    let r = h
        .at(
            "2.37",
            Method::GET,
            "/v2.1/os-services?host=cmp1",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.body["services"][0]["id"], host_number("cmp1", 1));
    assert_ne!(host_number("cmp1", 1), id("cmp1"));
    let r = h
        .send(
            Method::GET,
            "/v2.1/os-services",
            Some(ADMIN),
            &[("OpenStack-API-Version", "compute 2.999")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    h.stop().await;
}

#[tokio::test]
async fn hypervisors_show_each_hosts_resources() {
    let h = Harness::with_conductor().await;
    h.register_host("cmp1").await;
    h.register_host("cmp2").await;
    let r = h
        .at("2.37", Method::GET, "/v2.1/os-hypervisors", ADMIN, None)
        .await;
    assert_eq!(
        r.body,
        json!({"hypervisors": [
            {"id": id("cmp1"), "hypervisor_hostname": "cmp1", "state": "up", "status": "enabled"},
            {"id": id("cmp2"), "hypervisor_hostname": "cmp2", "state": "up", "status": "enabled"},
        ]})
    );
    let r = h
        .at(
            "2.1",
            Method::GET,
            "/v2.1/os-hypervisors/detail",
            ADMIN,
            None,
        )
        .await;
    let d = &r.body["hypervisors"][0];
    assert_eq!(d["vcpus"], 8);
    assert_eq!(d["vcpus_used"], 1);
    assert_eq!(d["memory_mb"], 16_384);
    assert_eq!(d["memory_mb_used"], 512);
    assert_eq!(d["free_ram_mb"], 16_384 - 512);
    assert_eq!(d["local_gb"], 100);
    assert_eq!(d["free_disk_gb"], 99);
    assert_eq!(d["running_vms"], 1);
    assert_eq!(d["hypervisor_type"], "fake");
    assert_eq!(d["hypervisor_version"], 1000);
    assert_eq!(
        d["service"],
        json!({"host": "cmp1", "id": id("cmp1"), "disabled_reason": null})
    );
    assert!(d["cpu_info"].is_string(), "a string before 2.28");
    let r = h
        .at(
            "2.28",
            Method::GET,
            &format!("/v2.1/os-hypervisors/{}", id("cmp2")),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.body["hypervisor"]["hypervisor_hostname"], "cmp2");
    assert_eq!(r.body["hypervisor"]["cpu_info"]["arch"], "x86_64");
    let r = h
        .at(
            "2.37",
            Method::GET,
            "/v2.1/os-hypervisors/statistics",
            ADMIN,
            None,
        )
        .await;
    let s = &r.body["hypervisor_statistics"];
    assert_eq!(s["count"], 2);
    assert_eq!(s["vcpus"], 16);
    assert_eq!(s["memory_mb_used"], 1024);
    let r = h
        .at(
            "2.37",
            Method::GET,
            &format!("/v2.1/os-hypervisors/{}/uptime", id("cmp1")),
            ADMIN,
            None,
        )
        .await;
    assert!(
        r.body["hypervisor"]["uptime"]
            .as_str()
            .unwrap()
            .contains(" up 0 days")
    );
    let r = h
        .at(
            "2.37",
            Method::GET,
            "/v2.1/os-hypervisors/cmp/search",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.body["hypervisors"].as_array().unwrap().len(), 2);
    let r = h
        .at(
            "2.37",
            Method::GET,
            "/v2.1/os-hypervisors/cmp2/servers",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.body["hypervisors"][0]["hypervisor_hostname"], "cmp2");
    // Paging from 2.33.
    let r = h
        .at(
            "2.33",
            Method::GET,
            "/v2.1/os-hypervisors?limit=1",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.body["hypervisors"].as_array().unwrap().len(), 1);
    assert!(
        r.body["hypervisors_links"][0]["href"]
            .as_str()
            .unwrap()
            .ends_with(&format!("limit=1&marker={}", id("cmp1")))
    );
    let r = h
        .at(
            "2.33",
            Method::GET,
            &format!("/v2.1/os-hypervisors?limit=1&marker={}", id("cmp1")),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.body["hypervisors"][0]["id"], id("cmp2"));
    h.stop().await;
}

#[tokio::test]
async fn hypervisor_errors_follow_nova() {
    let h = Harness::with_conductor().await;
    h.register_host("cmp1").await;
    for uri in [
        "/v2.1/os-hypervisors",
        "/v2.1/os-hypervisors/detail",
        "/v2.1/os-hypervisors/1",
        "/v2.1/os-hypervisors/statistics",
        "/v2.1/os-hypervisors/1/uptime",
        "/v2.1/os-hypervisors/cmp/servers",
        "/v2.1/os-hypervisors/cmp/search",
    ] {
        let r = h.at("2.37", Method::GET, uri, MEMBER, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}");
        assert!(
            message(&r).starts_with("Policy doesn't allow os_compute_api:os-hypervisors:"),
            "{uri}"
        );
    }
    let r = h
        .at("2.37", Method::GET, "/v2.1/os-hypervisors/9", ADMIN, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(message(&r), "Hypervisor with ID '9' could not be found.");
    let r = h
        .at("2.37", Method::GET, "/v2.1/os-hypervisors/abc", ADMIN, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .at(
            "2.37",
            Method::GET,
            "/v2.1/os-hypervisors/zzz/search",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(message(&r), "No hypervisor matching 'zzz' could be found.");
    let r = h
        .at(
            "2.37",
            Method::GET,
            "/v2.1/os-hypervisors?limit=1&marker=7",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .call(Method::GET, "/v2.1/os-hypervisors", None, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    h.stop().await;
}

fn private_flavor() -> Value {
    json!({"flavor": {"name": "secret", "ram": 256, "vcpus": 1, "disk": 1, "id": "s1",
                      "os-flavor-access:is_public": false}})
}

#[tokio::test]
async fn flavor_extra_specs_are_set_shown_and_deleted() {
    let h = Harness::with_conductor().await;
    let base = "/v2.1/flavors/1/os-extra_specs";
    let r = h.at("2.37", Method::GET, base, MEMBER, None).await;
    assert_eq!(r.body, json!({"extra_specs": {}}));
    let specs = json!({"extra_specs": {"hw:cpu_policy": "dedicated", "quota:cpu_quota": 10000}});
    let r = h.at("2.37", Method::POST, base, ADMIN, Some(specs)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["extra_specs"]["quota:cpu_quota"], "10000");
    let r = h.at("2.37", Method::GET, base, MEMBER, None).await;
    assert_eq!(r.body["extra_specs"]["hw:cpu_policy"], "dedicated");
    let key = format!("{base}/hw:cpu_policy");
    let r = h.at("2.37", Method::GET, &key, MEMBER, None).await;
    assert_eq!(r.body, json!({"hw:cpu_policy": "dedicated"}));
    let r = h
        .at(
            "2.37",
            Method::PUT,
            &key,
            ADMIN,
            Some(json!({"hw:cpu_policy": "shared"})),
        )
        .await;
    assert_eq!(r.body, json!({"hw:cpu_policy": "shared"}));
    // Shown in the flavor from 2.61 only (the API serves 2.61 once raised).
    let r = h
        .at("2.37", Method::GET, "/v2.1/flavors/1", MEMBER, None)
        .await;
    assert!(r.body["flavor"].get("extra_specs").is_none());
    let flavor = h
        .handle
        .as_ref()
        .unwrap()
        .app
        .projection
        .flavor("1")
        .unwrap();
    assert_eq!(flavor.extra_specs["hw:cpu_policy"], "shared");
    let r = h.at("2.37", Method::DELETE, &key, ADMIN, None).await;
    assert_eq!(r.status, StatusCode::OK, "Nova answers 200");
    let r = h.at("2.37", Method::GET, &key, MEMBER, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        message(&r),
        "Flavor 1 has no extra specs with key hw:cpu_policy."
    );
    h.stop().await;
}

#[tokio::test]
async fn flavor_extra_spec_errors_follow_nova() {
    let h = Harness::with_conductor().await;
    let before = h.intents_end().await;
    let base = "/v2.1/flavors/1/os-extra_specs";
    let r = h
        .at(
            "2.37",
            Method::POST,
            base,
            MEMBER,
            Some(json!({"extra_specs": {"a": "1"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        message(&r),
        "Policy doesn't allow os_compute_api:os-flavor-extra-specs:create to be performed."
    );
    for (method, uri, body, status, text) in [
        (
            Method::POST,
            base.to_owned(),
            json!({"extra_specs": {"bad/key": "1"}}),
            StatusCode::BAD_REQUEST,
            "does not match any of the regexes",
        ),
        (
            Method::POST,
            base.to_owned(),
            json!({"extra_specs": {"a": [1]}}),
            StatusCode::BAD_REQUEST,
            "is not of type 'string', 'number', 'boolean'",
        ),
        (
            Method::POST,
            base.to_owned(),
            json!({"specs": {}}),
            StatusCode::BAD_REQUEST,
            "was unexpected",
        ),
        (
            Method::POST,
            "/v2.1/flavors/zz/os-extra_specs".to_owned(),
            json!({"extra_specs": {"a": "1"}}),
            StatusCode::NOT_FOUND,
            "Flavor zz could not be found.",
        ),
        (
            Method::PUT,
            format!("{base}/a"),
            json!({"b": "1"}),
            StatusCode::BAD_REQUEST,
            "Request body and URI mismatch",
        ),
        (
            Method::PUT,
            format!("{base}/a"),
            json!({"a": "1", "b": "2"}),
            StatusCode::BAD_REQUEST,
            "Request body contains too many items",
        ),
    ] {
        let r = h
            .at("2.37", method.clone(), &uri, ADMIN, Some(body.clone()))
            .await;
        assert_eq!(r.status, status, "{method} {uri} {body}: {:?}", r.body);
        assert!(
            message(&r).contains(text),
            "{method} {uri}: {}",
            message(&r)
        );
    }
    let r = h
        .at("2.37", Method::DELETE, &format!("{base}/nope"), ADMIN, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .at(
            "2.37",
            Method::GET,
            "/v2.1/flavors/zz/os-extra_specs",
            MEMBER,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(h.intents_end().await, before);
    h.stop().await;
}

#[tokio::test]
async fn non_public_flavors_are_seen_by_the_projects_given_access() {
    let h = Harness::with_conductor().await;
    let r = h
        .at(
            "2.37",
            Method::POST,
            "/v2.1/flavors",
            ADMIN,
            Some(private_flavor()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = h
        .at("2.37", Method::GET, "/v2.1/flavors/s1", MEMBER, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let add = json!({"addTenantAccess": {"tenant": "p1"}});
    let r = h
        .at(
            "2.37",
            Method::POST,
            "/v2.1/flavors/s1/action",
            MEMBER,
            Some(add.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .at(
            "2.37",
            Method::POST,
            "/v2.1/flavors/s1/action",
            ADMIN,
            Some(add),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"flavor_access": [{"flavor_id": "s1", "tenant_id": "p1"}]})
    );
    // p1 now sees it, p2 does not.
    let r = h
        .at("2.37", Method::GET, "/v2.1/flavors/s1", MEMBER, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h
        .at("2.37", Method::GET, "/v2.1/flavors", MEMBER, None)
        .await;
    assert!(
        r.body["flavors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "s1")
    );
    let r = h
        .at("2.37", Method::GET, "/v2.1/flavors/s1", OTHER, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .at(
            "2.37",
            Method::GET,
            "/v2.1/flavors/s1/os-flavor-access",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.body["flavor_access"][0]["tenant_id"], "p1");
    let r = h
        .at(
            "2.37",
            Method::GET,
            "/v2.1/flavors/s1/os-flavor-access",
            MEMBER,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .at(
            "2.37",
            Method::GET,
            "/v2.1/flavors/1/os-flavor-access",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(message(&r), "Access list not available for public flavors.");
    // Public flavors take no access list: the conductor's 409.
    let r = h
        .at(
            "2.37",
            Method::POST,
            "/v2.1/flavors/1/action",
            ADMIN,
            Some(json!({"addTenantAccess": {"tenant": "p1"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    for (body, text) in [
        (
            json!({"addTenantAccess": {}}),
            "'tenant' is a required property",
        ),
        (json!({"frobnicate": {}}), "Invalid action"),
    ] {
        let r = h
            .at(
                "2.37",
                Method::POST,
                "/v2.1/flavors/s1/action",
                ADMIN,
                Some(body),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(message(&r).contains(text), "{}", message(&r));
    }
    let r = h
        .at(
            "2.37",
            Method::POST,
            "/v2.1/flavors/s1/action",
            ADMIN,
            Some(json!({"removeTenantAccess": {"tenant": "p1"}})),
        )
        .await;
    assert_eq!(r.body, json!({"flavor_access": []}));
    let r = h
        .at("2.37", Method::GET, "/v2.1/flavors/s1", MEMBER, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    h.stop().await;
}

#[tokio::test]
async fn flavors_are_deleted_by_administrators() {
    let h = Harness::with_conductor().await;
    h.at(
        "2.37",
        Method::POST,
        "/v2.1/flavors",
        ADMIN,
        Some(private_flavor()),
    )
    .await;
    let r = h
        .at("2.37", Method::DELETE, "/v2.1/flavors/s1", MEMBER, None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        message(&r),
        "Policy doesn't allow os_compute_api:os-flavor-manage:delete to be performed."
    );
    let r = h
        .at("2.37", Method::DELETE, "/v2.1/flavors/s1", ADMIN, None)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = h
        .at("2.37", Method::GET, "/v2.1/flavors/s1", ADMIN, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .at("2.37", Method::DELETE, "/v2.1/flavors/s1", ADMIN, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The description is changed from 2.55 only.
    let r = h
        .at(
            "2.37",
            Method::PUT,
            "/v2.1/flavors/1",
            ADMIN,
            Some(json!({"flavor": {"description": "d"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    h.stop().await;
}

#[tokio::test]
async fn readers_look_but_do_not_touch() {
    const READER: &str = "reader:p1";
    let h = Harness::with_conductor().await;
    let r = h
        .at(
            "2.37",
            Method::POST,
            "/v2.1/servers",
            MEMBER,
            Some(server_body("vm")),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let before = h.intents_end().await;
    // Reads work: the reader sees its project's server.
    let r = h
        .at("2.37", Method::GET, "/v2.1/servers/detail", READER, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["servers"][0]["id"], id.as_str());
    let r = h
        .at(
            "2.37",
            Method::GET,
            &format!("/v2.1/servers/{id}"),
            READER,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // The action routes (reboot, os-stop, ...) come with the server
    // actions branch; `policy::write_rule` names their rules already.
    for (method, uri, body, rule) in [
        (
            Method::POST,
            "/v2.1/servers".to_owned(),
            Some(server_body("x")),
            "servers:create",
        ),
        (
            Method::DELETE,
            format!("/v2.1/servers/{id}"),
            None,
            "servers:delete",
        ),
        (
            Method::PUT,
            format!("/v2.1/servers/{id}"),
            Some(json!({"server": {"name": "y"}})),
            "servers:update",
        ),
        (
            Method::POST,
            "/v2.1/os-server-groups".to_owned(),
            Some(json!({"server_group": {"name": "g", "policies": ["affinity"]}})),
            "os-server-groups:create",
        ),
    ] {
        let r = h.at("2.37", method.clone(), &uri, READER, body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {uri}");
        assert_eq!(
            message(&r),
            format!("Policy doesn't allow os_compute_api:{rule} to be performed."),
        );
    }
    // Administrator-only writes answer their own rule.
    let r = h
        .at(
            "2.37",
            Method::POST,
            "/v2.1/flavors/1/os-extra_specs",
            READER,
            Some(json!({"extra_specs": {"a": "b"}})),
        )
        .await;
    assert_eq!(
        message(&r),
        "Policy doesn't allow os_compute_api:os-flavor-extra-specs:create to be performed."
    );
    assert_eq!(h.intents_end().await, before, "nothing written");
    // Keypairs are the user's own, as in Nova.
    let r = h
        .at(
            "2.37",
            Method::POST,
            "/v2.1/os-keypairs",
            READER,
            Some(import("rk")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    h.stop().await;
}

#[tokio::test]
async fn services_and_hypervisors_by_uuid_from_2_53() {
    let h = Harness::with_conductor().await;
    h.register_host("cmp1").await;
    h.register_host("cmp2").await;
    let r = h
        .at(
            "2.53",
            Method::GET,
            "/v2.1/os-services?host=cmp1",
            ADMIN,
            None,
        )
        .await;
    let id = r.body["services"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    let uri = format!("/v2.1/os-services/{id}");
    let r = h
        .at(
            "2.53",
            Method::PUT,
            &uri,
            ADMIN,
            Some(json!({"status": "disabled", "disabled_reason": "bios"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["service"]["status"], "disabled");
    assert_eq!(r.body["service"]["disabled_reason"], "bios");
    assert_eq!(r.body["service"]["id"], id.as_str());
    let r = h
        .at(
            "2.53",
            Method::PUT,
            &uri,
            ADMIN,
            Some(json!({"forced_down": true})),
        )
        .await;
    assert_eq!(r.body["service"]["forced_down"], true);
    assert_eq!(r.body["service"]["state"], "down");
    let r = h
        .at(
            "2.53",
            Method::PUT,
            &uri,
            ADMIN,
            Some(json!({"status": "enabled", "forced_down": false})),
        )
        .await;
    assert_eq!(r.body["service"]["status"], "enabled");
    assert_eq!(r.body["service"]["disabled_reason"], Value::Null);
    assert_eq!(r.body["service"]["state"], "up");
    for (body, text) in [
        (json!({}), "No updates were requested"),
        (
            json!({"status": "enabled", "disabled_reason": "x"}),
            "Specifying 'disabled_reason' with status 'enabled' is invalid.",
        ),
        (
            json!({"status": "off"}),
            "is not one of ['enabled', 'disabled']",
        ),
        (json!({"host": "x"}), "was unexpected"),
    ] {
        let r = h
            .at("2.53", Method::PUT, &uri, ADMIN, Some(body.clone()))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(message(&r).contains(text), "{body}: {}", message(&r));
    }
    let r = h
        .at(
            "2.53",
            Method::PUT,
            "/v2.1/os-services/1",
            ADMIN,
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(message(&r), "Invalid uuid 1");
    let unknown = format!("/v2.1/os-services/{}", Uuid::new_v4());
    let r = h
        .at(
            "2.53",
            Method::PUT,
            &unknown,
            ADMIN,
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .at(
            "2.53",
            Method::PUT,
            &uri,
            MEMBER,
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The old action routes are gone at 2.53.
    let r = h
        .at(
            "2.53",
            Method::PUT,
            "/v2.1/os-services/disable",
            ADMIN,
            Some(json!({"host": "cmp1", "binary": "nova-compute"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Hypervisors: uuid ids, name patterns, servers on request.
    let r = h
        .at(
            "2.53",
            Method::GET,
            "/v2.1/os-hypervisors?hypervisor_hostname_pattern=cmp2&with_servers=true",
            ADMIN,
            None,
        )
        .await;
    let hv = &r.body["hypervisors"];
    assert_eq!(hv.as_array().unwrap().len(), 1);
    let hid = hv[0]["id"].as_str().unwrap().to_owned();
    let r = h
        .at(
            "2.53",
            Method::GET,
            &format!("/v2.1/os-hypervisors/{hid}"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.body["hypervisor"]["hypervisor_hostname"], "cmp2");
    assert_eq!(
        r.body["hypervisor"]["service"]["id"]
            .as_str()
            .unwrap()
            .len(),
        36
    );
    let r = h
        .at("2.53", Method::GET, "/v2.1/os-hypervisors/2", ADMIN, None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .at(
            "2.53",
            Method::GET,
            "/v2.1/os-hypervisors/cmp/search",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .at(
            "2.53",
            Method::GET,
            "/v2.1/os-hypervisors?hypervisor_hostname_pattern=cmp&limit=1",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .at(
            "2.53",
            Method::GET,
            "/v2.1/os-hypervisors?hypervisor_hostname_pattern=zzz",
            ADMIN,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Delete by uuid.
    let r = h.at("2.53", Method::DELETE, &uri, ADMIN, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    h.stop().await;
}

#[tokio::test]
async fn later_microversions_of_servers_and_flavors() {
    let h = Harness::with_conductor().await;
    // 2.38: an unknown status filter is 400, before it an empty list.
    let r = h
        .at(
            "2.37",
            Method::GET,
            "/v2.1/servers?status=bogus",
            MEMBER,
            None,
        )
        .await;
    assert_eq!(r.body, json!({"servers": []}));
    let r = h
        .at(
            "2.38",
            Method::GET,
            "/v2.1/servers?status=bogus",
            MEMBER,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(message(&r), "Invalid status value");
    // 2.52 tags at create; 2.47 flavor embedded.
    let mut body = server_body("tagged");
    body["server"]["tags"] = json!(["red", "blue"]);
    let r = h
        .at(
            "2.52",
            Method::POST,
            "/v2.1/servers",
            MEMBER,
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let r = h
        .at(
            "2.61",
            Method::GET,
            &format!("/v2.1/servers/{id}"),
            MEMBER,
            None,
        )
        .await;
    assert_eq!(r.body["server"]["tags"], json!(["red", "blue"]));
    assert_eq!(r.body["server"]["flavor"]["original_name"], "m1.tiny");
    assert!(r.body["server"]["flavor"].get("id").is_none());
    let r = h
        .at("2.51", Method::POST, "/v2.1/servers", MEMBER, Some(body))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // 2.57: personality is gone.
    let mut body = server_body("p");
    body["server"]["personality"] = json!([]);
    let r = h
        .at("2.57", Method::POST, "/v2.1/servers", MEMBER, Some(body))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // 2.55 flavor description, 2.61 extra specs in the flavor.
    let f = json!({"flavor": {"name": "described", "ram": 128, "vcpus": 1, "disk": 0, "id": "d1", "description": "small one"}});
    let r = h
        .at(
            "2.55",
            Method::POST,
            "/v2.1/flavors",
            ADMIN,
            Some(f.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["flavor"]["description"], "small one");
    let r = h
        .at("2.54", Method::POST, "/v2.1/flavors", ADMIN, Some(f))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .at(
            "2.55",
            Method::PUT,
            "/v2.1/flavors/d1",
            ADMIN,
            Some(json!({"flavor": {"description": "new"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["flavor"]["description"], "new");
    let r = h
        .at(
            "2.55",
            Method::PUT,
            "/v2.1/flavors/d1",
            MEMBER,
            Some(json!({"flavor": {"description": "x"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .at(
            "2.55",
            Method::PUT,
            "/v2.1/flavors/d1",
            ADMIN,
            Some(json!({"flavor": {"name": "x"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .at(
            "2.55",
            Method::PUT,
            "/v2.1/flavors/zz",
            ADMIN,
            Some(json!({"flavor": {"description": "x"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    h.at(
        "2.61",
        Method::POST,
        "/v2.1/flavors/d1/os-extra_specs",
        ADMIN,
        Some(json!({"extra_specs": {"k": "v"}})),
    )
    .await;
    let r = h
        .at("2.61", Method::GET, "/v2.1/flavors/d1", MEMBER, None)
        .await;
    assert_eq!(r.body["flavor"]["extra_specs"], json!({"k": "v"}));
    assert_eq!(r.body["flavor"]["description"], "new");
    let r = h
        .at("2.61", Method::GET, "/v2.1/flavors", MEMBER, None)
        .await;
    assert!(r.body["flavors"][0].get("description").is_some());
    h.stop().await;
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let h = Harness::with_conductor().await;
    let r = h.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["openapi"], "3.0.3");
    for op in crate::openapi::OPERATIONS {
        let uri = op
            .path
            .replace("{id}", "1")
            .replace("{name}", "k")
            .replace("{key}", "k")
            .replace("{alias}", "os-keypairs");
        let method: Method = op.method.to_uppercase().parse().unwrap();
        // A reader gets Nova's 403 on routed writes it may not do; what
        // matters is that no operation falls through to the router's 404
        // or 405.
        let body = matches!(op.method, "post" | "put").then(|| json!({}));
        // Some operations exist only below or from a microversion: one of
        // these versions must reach a handler.
        let mut routed = false;
        for version in ["2.1", "2.37", "2.61", "2.100"] {
            let r = h
                .at(version, method.clone(), &uri, ADMIN, body.clone())
                .await;
            routed |= r.status != StatusCode::METHOD_NOT_ALLOWED
                && (r.status, message(&r).as_str())
                    != (StatusCode::NOT_FOUND, "The resource could not be found.");
        }
        assert!(routed, "{method} {uri} is documented but not routed");
    }
    h.stop().await;
}

#[tokio::test]
async fn a_server_knows_the_group_it_joined() {
    let h = Harness::with_conductor().await;
    let r = h
        .at(
            "2.61",
            Method::POST,
            "/v2.1/os-server-groups",
            MEMBER,
            Some(json!({"server_group": {"name": "g", "policies": ["affinity"]}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let group: Uuid = r.body["server_group"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut body = server_body("member");
    body["os:scheduler_hints"] = json!({"group": group.to_string()});
    let r = h
        .at("2.61", Method::POST, "/v2.1/servers", MEMBER, Some(body))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let member: Uuid = r.body["server"]["id"].as_str().unwrap().parse().unwrap();
    let r = h
        .at(
            "2.61",
            Method::POST,
            "/v2.1/servers",
            MEMBER,
            Some(server_body("loner")),
        )
        .await;
    let loner: Uuid = r.body["server"]["id"].as_str().unwrap().parse().unwrap();
    let app = h.handle.as_ref().unwrap().app.clone();
    // What `GET /servers/{id}` shows as `server_groups` from 2.71.
    assert_eq!(
        crate::controllers::servers::groups_of(&app, &member),
        [group]
    );
    assert!(crate::controllers::servers::groups_of(&app, &loner).is_empty());
    // Below 2.71 the key is absent.
    let r = h
        .at(
            "2.61",
            Method::GET,
            &format!("/v2.1/servers/{member}"),
            MEMBER,
            None,
        )
        .await;
    assert!(r.body["server"].get("server_groups").is_none());
    h.stop().await;
}
