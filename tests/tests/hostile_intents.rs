//! Issue 9: nothing a user sends stops the conductor, and every intent gets
//! a verdict. Regressions for defect 1 (rebuild side) and defect 4, end to
//! end on the embedded log, every service in one process.

use std::time::{Duration, Instant};

use novalog_all_in_one::System;
use novalog_log::Record;
use novalog_schemas::events::Keypair;
use novalog_schemas::{
    Actor, CatalogEvent, Envelope, Event, InstanceEvent, Intent, Meta, RejectionKind,
};
use novalog_store::{RocksStore, Store, Transaction};
use novalog_tests::{Client, demo_image_id, read_topic, test_config};
use serde_json::json;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

fn admin_intent(aggregate_id: &str, event: Event) -> Envelope {
    Envelope {
        meta: Meta::origin(
            Uuid::new_v4(),
            format!("req-{}", Uuid::new_v4()),
            Actor {
                user_id: "admin".into(),
                project_id: "admin".into(),
                roles: vec!["admin".into()],
            },
            aggregate_id.to_owned(),
        ),
        event,
    }
}

async fn append_intent(system: &System, env: &Envelope) {
    system
        .log
        .append(vec![Record::new(
            &system.topics.intents,
            env.meta.actor.project_id.clone().into_bytes(),
            novalog_schemas::encode(env),
        )])
        .await
        .unwrap();
}

/// The conductor's dead letters.
async fn conductor_dead_letters(system: &System) -> Vec<String> {
    read_topic(&system.log, &system.topics.dead_letter)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.event {
            Event::DeadLetter(d) if d.consumer == "conductor" => Some(d.error),
            _ => None,
        })
        .collect()
}

/// Defect 1: rebuilding with an image whose `min_disk` (2^40 GiB) times
/// 2^30 overflows u64 panicked the conductor, which then died on the same
/// intent at every restart. Now it is Nova's 400 and the cloud goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_with_an_image_min_disk_past_u64_bytes_is_400_and_the_conductor_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(dir.path());
    let system = System::start(&cfg, None).await.unwrap();
    let client = Client::admin(system.api_addr);
    let server = client
        .create_server("vm", "1", demo_image_id())
        .await
        .unwrap();
    client.wait_built(&[server], WAIT).await.unwrap();

    // The image API bounds min_disk now, so such an image exists only as
    // an older build recorded it: in the conductor's store and on the
    // catalog topic.
    let mut image = novalog_api::bootstrap::demo_image();
    image.id = Uuid::new_v4();
    image.name = "huge-min-disk".into();
    image.min_disk = 1_099_511_627_776;
    let created = admin_intent(
        &image.id.to_string(),
        Event::Catalog(CatalogEvent::ImageCreated(image.clone())),
    );
    system
        .log
        .append(vec![Record::new(
            &system.topics.catalog,
            image.id.to_string().into_bytes(),
            novalog_schemas::encode(&created),
        )])
        .await
        .unwrap();
    system.stop().await.unwrap();
    {
        let store = RocksStore::open(dir.path().join("conductor"), false).unwrap();
        let mut tx = Transaction::new();
        tx.put("images", image.id.as_bytes(), &image).unwrap();
        store.commit(tx).unwrap();
    }
    let system = System::start(&cfg, None).await.unwrap();
    let client = Client::admin(system.api_addr);
    let http = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let r = http
            .get(format!(
                "http://{}/image/v2/images/{}",
                system.api_addr, image.id
            ))
            .header("X-Auth-Token", "admin:admin")
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "image not visible after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (status, body, _) = client
        .server_action(
            server,
            json!({"rebuild": {"imageRef": image.id.to_string()}}),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    let message = body["badRequest"]["message"].as_str().unwrap();
    assert!(message.starts_with("Flavor's disk is"), "{message}");
    assert!(
        message.contains("1180591620717411303424 bytes"),
        "{message}"
    );

    // The conductor is alive and deciding: the same server rebuilds with a
    // fitting image, and nothing was dead-lettered.
    let (status, body, _) = client
        .server_action(
            server,
            json!({"rebuild": {"imageRef": demo_image_id().to_string()}}),
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + WAIT;
    loop {
        let s = client.server(server).await.unwrap().unwrap();
        if s["status"] == "ACTIVE" && s["OS-EXT-STS:task_state"].is_null() {
            break;
        }
        assert!(Instant::now() < deadline, "rebuild not done: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(conductor_dead_letters(&system).await.is_empty());
    system.stop().await.unwrap();
}

/// Defect 4: an empty `user_id` was dropped on the wire, the conductor
/// dead-lettered the intent, and the caller waited 30 s for a 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keypair_with_an_empty_user_id_is_400_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    // Were the request to wait for a verdict that never comes, it would
    // answer 503 after this instead of 400.
    cfg.api.verdict_timeout_ms = 30_000;
    let system = System::start(&cfg, None).await.unwrap();
    let client = Client::admin(system.api_addr);
    let (status, body) = client
        .request_at(
            Some("2.10"),
            reqwest::Method::POST,
            "/os-keypairs",
            Some(json!({"keypair": {"name": "k", "type": "ssh", "user_id": ""}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["badRequest"]["code"], 400);
    assert!(conductor_dead_letters(&system).await.is_empty());
    system.stop().await.unwrap();
}

/// Any intent the conductor cannot decode still gets its verdict (400 for
/// invalid content), so a request waiting on it answers at once; the dead
/// letter is still written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_the_conductor_cannot_decode_gets_a_400_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(dir.path());
    let system = System::start(&cfg, None).await.unwrap();
    // Encoding does not validate; decoding does ("missing field").
    let intent = admin_intent(
        "/k",
        Event::Intent(Intent::KeypairCreateRequested(Box::new(Keypair {
            name: "k".into(),
            user_id: String::new(),
            project_id: "admin".into(),
            public_key: "ssh-ed25519 AAAA".into(),
            fingerprint: "00".into(),
            key_type: "ssh".into(),
            created_at_ms: 0,
            id: 0,
        }))),
    );
    assert!(novalog_schemas::decode(&novalog_schemas::encode(&intent)).is_err());
    append_intent(&system, &intent).await;

    let deadline = Instant::now() + WAIT;
    let verdict = loop {
        let found = read_topic(&system.log, &system.topics.instances)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.meta.causation_id == Some(intent.meta.event_id));
        if let Some(v) = found {
            break v;
        }
        assert!(Instant::now() < deadline, "no verdict after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    match verdict.event {
        Event::Instance(InstanceEvent::IntentRejected {
            kind,
            message,
            intent_type,
        }) => {
            assert_eq!(kind, RejectionKind::Invalid);
            assert!(message.contains("keypair.user_id"), "{message}");
            assert_eq!(intent_type, "KeypairCreateRequested");
        }
        other => panic!("not a rejection: {other:?}"),
    }
    assert_eq!(verdict.meta.correlation_id, intent.meta.correlation_id);
    let dead = conductor_dead_letters(&system).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].contains("keypair.user_id"), "{}", dead[0]);
    system.stop().await.unwrap();
}
