//! Router-level tests: the whole service on an embedded log in a temporary
//! directory, requests sent through the router with `oneshot`, and a small
//! fake conductor that answers intents the way the real one does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use novalog_log::{EventLog, Record};
use novalog_runtime::{Config, Shutdown, ShutdownTrigger};
use novalog_schemas::events::InstanceCreated;
use novalog_schemas::{
    CatalogEvent, Envelope, Event, HostEvent, InstanceEvent, Intent, RejectionKind,
};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

use crate::app;
use crate::bootstrap::{bootstrap_demo_catalog, demo_image_id};
use crate::service::{ApiHandle, ApiService};

pub(crate) const MEMBER: &str = "alice:p1";
pub(crate) const OTHER: &str = "bob:p2";
pub(crate) const ADMIN: &str = "admin";

pub(crate) struct Harness {
    pub(crate) router: Router,
    pub(crate) log: Arc<dyn EventLog>,
    pub(crate) cfg: Config,
    pub(crate) handle: Option<ApiHandle>,
    trigger: ShutdownTrigger,
    conductor: Option<ShutdownTrigger>,
    _dir: tempfile::TempDir,
}

fn config(dir: &std::path::Path) -> Config {
    let mut cfg = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    cfg.api.listen = "127.0.0.1:0".into();
    cfg.api.auth_strategy = "noauth2".into();
    cfg.api.verdict_timeout_ms = 2_000;
    cfg.api.max_request_body_size = 4_096;
    cfg.log.namespace = "test.".into();
    cfg
}

impl Harness {
    /// The service alone: nothing answers intents.
    pub(crate) async fn without_conductor() -> Harness {
        Harness::without_conductor_configured(|_| {}).await
    }

    /// The service alone, its test configuration changed by `configure`.
    pub(crate) async fn without_conductor_configured(
        configure: impl FnOnce(&mut Config),
    ) -> Harness {
        Harness::using(configure, None).await
    }

    /// The service alone, reading usage from `usage` when given (else
    /// from `[billing] endpoint`).
    pub(crate) async fn using(
        configure: impl FnOnce(&mut Config),
        usage: Option<Arc<dyn crate::domain::usage::UsageSource>>,
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        configure(&mut cfg);
        let log = novalog_runtime::backend::open_log(&cfg).await.unwrap();
        let (trigger, shutdown) = Shutdown::new();
        let wrap = novalog_runtime::consumer::unwrapped();
        let handle = match usage {
            Some(u) => ApiService::start_with_usage(&cfg, log.clone(), shutdown, wrap, u).await,
            None => ApiService::start_wrapped(&cfg, log.clone(), shutdown, wrap).await,
        }
        .unwrap();
        Harness {
            router: app::router(handle.app.clone()),
            log,
            cfg,
            handle: Some(handle),
            trigger,
            conductor: None,
            _dir: dir,
        }
    }

    /// The service with the fake conductor and the demo catalog.
    pub(crate) async fn with_conductor() -> Harness {
        Harness::with_conductor_configured(|_| {}).await
    }

    /// The service with the fake conductor and the demo catalog, its test
    /// configuration changed by `configure`.
    pub(crate) async fn with_conductor_configured(configure: impl FnOnce(&mut Config)) -> Harness {
        let mut h = Harness::without_conductor_configured(configure).await;
        h.conductor = Some(spawn_fake_conductor(h.log.clone(), h.cfg.clone()));
        let image = bootstrap_demo_catalog(h.handle.as_ref().unwrap())
            .await
            .unwrap();
        assert_eq!(image, demo_image_id());
        h
    }

    pub(crate) async fn intents_end(&self) -> i64 {
        self.log
            .end_offsets(&self.cfg.topics().intents)
            .await
            .unwrap()
            .iter()
            .sum()
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.send(
            method,
            uri,
            token,
            &[],
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "cloud.test:8774");
        if let Some(t) = token {
            req = req.header("x-auth-token", t);
        }
        if body.is_some()
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn stop(mut self) -> tempfile::TempDir {
        self.trigger.trigger();
        if let Some(c) = self.conductor.take() {
            c.trigger();
        }
        tokio::time::timeout(Duration::from_secs(10), self.handle.take().unwrap().join())
            .await
            .expect("the service stops")
            .unwrap();
        self._dir
    }
}

#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

impl Reply {
    fn request_id(&self) -> &str {
        self.headers["x-openstack-request-id"].to_str().unwrap()
    }
}

/// Answers intents as the conductor does: accepts creates and deletes
/// (names starting `reject` are refused with 409, `ignore` never
/// answered), accepts catalog entries.
fn spawn_fake_conductor(log: Arc<dyn EventLog>, cfg: Config) -> ShutdownTrigger {
    let (trigger, mut shutdown) = Shutdown::new();
    tokio::spawn(async move {
        let topics = cfg.topics();
        let mut sub = log
            .subscribe(
                "fake-conductor",
                std::slice::from_ref(&topics.intents),
                novalog_log::from_beginning(),
            )
            .await
            .unwrap();
        let mut versions: HashMap<String, u64> = HashMap::new();
        // Flavors as created, so updates can answer with the whole flavor.
        let mut flavors: HashMap<String, novalog_schemas::Flavor> = HashMap::new();
        let mut images: HashMap<Uuid, novalog_schemas::Image> = HashMap::new();
        let mut quota_classes: HashMap<String, std::collections::BTreeMap<String, i64>> =
            HashMap::new();
        // Servers as created, so updates and rebuilds can answer whole.
        let mut servers: HashMap<Uuid, InstanceCreated> = HashMap::new();
        loop {
            let batch = tokio::select! {
                _ = shutdown.wait() => break,
                b = sub.next_batch(64) => b.unwrap(),
            };
            let mut out = Vec::new();
            for rec in batch {
                let intent = novalog_schemas::decode(&rec.value).unwrap();
                let m = &intent.meta;
                let project = m.actor.project_id.clone();
                let mut answer = |topic: &str, key: &str, event: Event| {
                    let version = versions.entry(m.aggregate_id.clone()).or_insert(0);
                    if topic == topics.instances
                        && !matches!(event, Event::Instance(InstanceEvent::IntentRejected { .. }))
                    {
                        *version += 1;
                    }
                    let env = Envelope {
                        meta: m.caused("verdict", m.aggregate_id.clone(), *version),
                        event,
                    };
                    out.push(Record::new(
                        topic,
                        key.as_bytes().to_vec(),
                        novalog_schemas::encode(&env),
                    ));
                };
                match &intent.event {
                    Event::Intent(Intent::ServerCreateRequested(c)) if c.name.starts_with("ignore") => {}
                    Event::Intent(Intent::ServerCreateRequested(c)) if c.name.starts_with("reject") => answer(
                        &topics.instances,
                        &project,
                        Event::Instance(InstanceEvent::IntentRejected {
                            intent_type: "ServerCreateRequested".into(),
                            kind: RejectionKind::Conflict,
                            message: "Quota exceeded for instances.".into(),
                        }),
                    ),
                    Event::Intent(Intent::ServerCreateRequested(c)) => answer(
                        &topics.instances,
                        &project,
                        Event::Instance(InstanceEvent::InstanceCreated(Box::new(crate::tests_shapes::remember(&mut servers, c.instance_id, InstanceCreated {
                            name: c.name.clone(),
                            project_id: project.clone(),
                            user_id: m.actor.user_id.clone(),
                            flavor: c.flavor.clone(),
                            image: c.image.clone(),
                            metadata: c.metadata.clone(),
                            availability_zone: c.availability_zone.clone(),
                            key_name: c.key_name.clone(),
                            user_data: c.user_data.clone(),
                            description: c.description.clone(),
                            tags: c.tags.clone(),
                            reservation_id: c.reservation_id.clone(),
                            launch_index: c.launch_index,
                            created_at_ms: m.occurred_at_ms,
                            scheduler_hints: c.scheduler_hints.clone(),
                            access: c.access,
                            hostname: c.hostname.clone(),
                            trusted_image_certificates: c.trusted_image_certificates.clone(),
                            requested_host: c.requested_host.clone(),
                        })))),
                    ),
                    Event::Intent(
                        i @ (Intent::ServerUpdateRequested { .. } | Intent::ServerRebuildRequested(_)),
                    ) => answer(&topics.instances, &project, crate::tests_shapes::decide_change(&mut servers, i)),
                    Event::Intent(Intent::ServerDeleteRequested { .. }) => {
                        answer(&topics.instances, &project, Event::Instance(InstanceEvent::InstanceDeleteStarted))
                    }
                    Event::Intent(Intent::FlavorCreateRequested(f)) => {
                        flavors.insert(f.id.clone(), f.clone());
                        answer(
                            &topics.catalog,
                            &f.id.clone(),
                            Event::Catalog(CatalogEvent::FlavorCreated(f.clone())),
                        )
                    }
                    Event::Intent(Intent::FlavorUpdateRequested(u)) => {
                        let f = flavors.get_mut(&u.flavor_id).expect("a known flavor");
                        for k in &u.extra_specs_unset {
                            f.extra_specs.remove(k);
                        }
                        f.extra_specs.extend(u.extra_specs_set.clone());
                        if let Some(d) = &u.description {
                            f.description = d.clone();
                        }
                        let f = f.clone();
                        answer(&topics.catalog, &f.id.clone(), Event::Catalog(CatalogEvent::FlavorUpdated(f)))
                    }
                    Event::Intent(Intent::FlavorDeleteRequested { flavor_id }) => {
                        flavors.remove(flavor_id);
                        answer(
                            &topics.catalog,
                            &flavor_id.clone(),
                            Event::Catalog(CatalogEvent::FlavorDeleted {
                                flavor_id: flavor_id.clone(),
                            }),
                        )
                    }
                    Event::Intent(Intent::FlavorAccessChangeRequested {
                        flavor_id,
                        project_id,
                        add,
                    }) => {
                        let event = if flavors.get(flavor_id).is_some_and(|f| f.is_public) {
                            Event::Instance(InstanceEvent::IntentRejected {
                                intent_type: "FlavorAccessChangeRequested".into(),
                                kind: RejectionKind::Conflict,
                                message: "Can not add access to a public flavor.".into(),
                            })
                        } else if *add {
                            Event::Catalog(CatalogEvent::FlavorAccessAdded {
                                flavor_id: flavor_id.clone(),
                                project_id: project_id.clone(),
                            })
                        } else {
                            Event::Catalog(CatalogEvent::FlavorAccessRemoved {
                                flavor_id: flavor_id.clone(),
                                project_id: project_id.clone(),
                            })
                        };
                        let topic = if matches!(event, Event::Instance(InstanceEvent::IntentRejected { .. })) {
                            &topics.instances
                        } else {
                            &topics.catalog
                        };
                        answer(topic, &flavor_id.clone(), event)
                    }
                    // Images are decided as the conductor decides them.
                    Event::Intent(Intent::ImageCreateRequested(_))
                    | Event::Intent(Intent::ImagePatchRequested(_))
                    | Event::Intent(Intent::ImageUploadRequested { .. })
                    | Event::Intent(Intent::ImageUploadFinishRequested(_))
                    | Event::Intent(Intent::ImageUploadAbortRequested { .. })
                    | Event::Intent(Intent::ImageDeleteRequested { .. })
                    | Event::Intent(Intent::ImageChangeRequested { .. }) => {
                        let (id, event) = decide_image(
                            &mut images,
                            &intent,
                            (cfg.conductor.image_upload_lease as i64).saturating_mul(1000),
                        );
                        let topic = if matches!(event, Event::Instance(InstanceEvent::IntentRejected { .. })) {
                            &topics.instances
                        } else {
                            &topics.catalog
                        };
                        answer(topic, &id.to_string(), event)
                    }
                    Event::Intent(Intent::ServerGroupCreateRequested(g)) => answer(
                        &topics.catalog,
                        &g.id.to_string(),
                        Event::Catalog(CatalogEvent::ServerGroupCreated(Box::new(novalog_schemas::events::ServerGroup {
                            project_id: project.clone(),
                            user_id: m.actor.user_id.clone(),
                            ..(**g).clone()
                        }))),
                    ),
                    Event::Intent(Intent::KeypairCreateRequested(k)) => answer(
                        &topics.catalog,
                        &k.user_id.clone(),
                        Event::Catalog(CatalogEvent::KeypairCreated(Box::new(novalog_schemas::events::Keypair {
                            created_at_ms: m.occurred_at_ms,
                            id: 1,
                            ..(**k).clone()
                        }))),
                    ),
                    Event::Intent(Intent::KeypairDeleteRequested { user_id, name }) => answer(
                        &topics.catalog,
                        &user_id.clone(),
                        Event::Catalog(CatalogEvent::KeypairDeleted {
                            user_id: user_id.clone(),
                            name: name.clone(),
                        }),
                    ),
                    Event::Intent(Intent::ServiceChangeRequested(ch)) => answer(
                        &topics.hosts,
                        &ch.host.clone(),
                        Event::Host(HostEvent::ServiceUpdated(Box::new(ch.apply(&ch.seen)))),
                    ),
                    // Hosts named `busy*` host instances: Nova's 409.
                    Event::Intent(Intent::ServiceDeleteRequested { host }) if host.starts_with("busy") => answer(
                        &topics.instances,
                        &project,
                        Event::Instance(InstanceEvent::IntentRejected {
                            intent_type: "ServiceDeleteRequested".into(),
                            kind: RejectionKind::Conflict,
                            message: "Unable to delete compute service that is hosting instances. Migrate or delete the instances first.".into(),
                        }),
                    ),
                    Event::Intent(Intent::ServiceDeleteRequested { host }) => answer(
                        &topics.hosts,
                        &host.clone(),
                        Event::Host(HostEvent::ServiceDeleted { host: host.clone() }),
                    ),
                    Event::Intent(Intent::QuotaClassSetRequested { class_name, limits }) => {
                        let merged = quota_classes.entry(class_name.clone()).or_default();
                        merged.extend(limits.clone());
                        let limits = merged.clone();
                        answer(
                            &topics.catalog,
                            &class_name.clone(),
                            Event::Catalog(CatalogEvent::QuotaClassSetUpdated {
                                class_name: class_name.clone(),
                                limits,
                            }),
                        )
                    }
                    // Moves are refused with what the API asked for, so
                    // router tests can read it (the real sagas are the
                    // conductor's tests).
                    Event::Intent(Intent::ServerMigrationRequested(r)) => answer(
                        &topics.instances,
                        &project,
                        Event::Instance(InstanceEvent::IntentRejected {
                            intent_type: "ServerMigrationRequested".into(),
                            kind: RejectionKind::Conflict,
                            message: format!(
                                "{} host={:?} stop_at_destination={}",
                                r.migration_type.as_str(),
                                r.host,
                                r.stop_at_destination
                            ),
                        }),
                    ),
                    other => panic!("unexpected intent {other:?}"),
                }
            }
            if !out.is_empty() {
                log.append(out).await.unwrap();
            }
        }
        sub.close().await;
    });
    trigger
}

/// The fake conductor's images: the shared Glance rules on its own copy.
fn decide_image(
    images: &mut HashMap<Uuid, novalog_schemas::Image>,
    intent: &Envelope,
    lease_ms: i64,
) -> (Uuid, Event) {
    use novalog_schemas::image;
    let who = intent.meta.actor.image_caller();
    let now = intent.meta.occurred_at_ms;
    let (id, decided) = match &intent.event {
        Event::Intent(Intent::ImageCreateRequested(i)) => {
            (i.id, image::decide_create(images.get(&i.id), i, &who))
        }
        Event::Intent(Intent::ImagePatchRequested(p)) => (
            p.image_id,
            image::decide_patch(images.get(&p.image_id), &p.image_id, &p.ops, &who, now),
        ),
        Event::Intent(Intent::ImageUploadRequested { image_id }) => (
            *image_id,
            image::decide_upload_start(images.get(image_id), image_id, &who, now),
        ),
        Event::Intent(Intent::ImageUploadFinishRequested(d)) => (
            d.image_id,
            image::decide_upload_finish(images.get(&d.image_id), d, &who, now),
        ),
        Event::Intent(Intent::ImageUploadAbortRequested { image_id }) => (
            *image_id,
            image::decide_abort_by(
                images.get(image_id),
                image_id,
                &intent.meta.actor,
                now,
                lease_ms,
            ),
        ),
        Event::Intent(Intent::ImageDeleteRequested { image_id }) => (
            *image_id,
            image::decide_delete(images.get(image_id), image_id, &who),
        ),
        Event::Intent(Intent::ImageChangeRequested { image_id, change }) => (
            *image_id,
            image::decide_change(images.get(image_id), image_id, change, &who, now),
        ),
        other => panic!("not an image intent: {other:?}"),
    };
    let event = match decided {
        Err(r) => Event::Instance(InstanceEvent::IntentRejected {
            intent_type: intent.event.type_name().into(),
            kind: r.kind(),
            message: r.message().into(),
        }),
        Ok(next) => {
            images.insert(id, next.clone());
            match &intent.event {
                Event::Intent(Intent::ImageCreateRequested(_)) => {
                    Event::Catalog(CatalogEvent::ImageCreated(next))
                }
                Event::Intent(Intent::ImageDeleteRequested { .. }) => {
                    Event::Catalog(CatalogEvent::ImageDeleted { image_id: id })
                }
                _ => Event::Catalog(CatalogEvent::ImageUpdated(next)),
            }
        }
    };
    (id, event)
}

pub(crate) fn server_body(name: &str) -> Value {
    json!({"server": {
        "name": name,
        "imageRef": demo_image_id().to_string(),
        "flavorRef": "1",
        "networks": "none",
    }})
}

// ---- no conductor needed ----

#[tokio::test]
async fn version_documents_need_no_token() {
    let h = Harness::without_conductor().await;
    let r = h.call(Method::GET, "/", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["versions"][1]["id"], "v2.1");
    assert_eq!(r.body["versions"][1]["status"], "CURRENT");
    assert_eq!(r.body["versions"][0]["status"], "SUPPORTED");
    assert_eq!(
        r.body["versions"][1]["links"][0]["href"],
        "http://cloud.test:8774/v2.1/"
    );
    assert!(r.request_id().starts_with("req-"));
    for uri in ["/v2.1", "/v2.1/"] {
        let r = h.call(Method::GET, uri, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.body["version"]["min_version"], "2.1");
        assert_eq!(r.headers["openstack-api-version"], "compute 2.1");
        assert_eq!(r.headers["x-openstack-nova-api-version"], "2.1");
        assert_eq!(r.headers.get_all("vary").iter().count(), 2);
    }
    h.stop().await;
}

#[tokio::test]
async fn missing_token_is_401_and_writes_nothing() {
    let h = Harness::without_conductor().await;
    let before = h.intents_end().await;
    let r = h.call(Method::GET, "/v2.1/servers", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["code"], 401);
    assert!(r.request_id().starts_with("req-"));
    let r = h
        .call(Method::POST, "/v2.1/servers", None, Some(server_body("vm")))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h.call(Method::GET, "/v2.1/servers", Some(""), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(h.intents_end().await, before);
    h.stop().await;
}

#[tokio::test]
async fn microversions_are_negotiated() {
    let h = Harness::without_conductor().await;
    let r = h
        .send(
            Method::GET,
            "/v2.1/servers",
            Some(MEMBER),
            &[("OpenStack-API-Version", "compute 2.999")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(r.body["computeFault"]["code"], 406);
    assert!(
        r.body["computeFault"]["message"]
            .as_str()
            .unwrap()
            .contains("2.999 is not supported")
    );
    let r = h
        .send(
            Method::GET,
            "/v2.1/servers",
            Some(MEMBER),
            &[("X-OpenStack-Nova-API-Version", "two")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .send(
            Method::GET,
            "/v2.1/servers",
            Some(MEMBER),
            &[("OpenStack-API-Version", "compute latest")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers["openstack-api-version"],
        format!("compute {}", crate::microversion::MAX_VERSION)
    );
    assert_eq!(r.body, json!({"servers": []}));
    h.stop().await;
}

#[tokio::test]
async fn invalid_create_is_400_naming_the_field_and_writes_nothing() {
    let h = Harness::without_conductor().await;
    let before = h.intents_end().await;
    let cases = [
        (
            json!({"server": {"imageRef": demo_image_id(), "flavorRef": "1"}}),
            "'name' is a required property",
        ),
        (
            json!({"server": {"name": "", "imageRef": demo_image_id(), "flavorRef": "1"}}),
            "field/attribute name",
        ),
        (
            json!({"server": {"name": "vm", "imageRef": "not-a-uuid", "flavorRef": "1"}}),
            "field/attribute imageRef",
        ),
        (
            json!({"server": {"name": "vm", "imageRef": demo_image_id(), "flavorRef": "1", "bogus": 1}}),
            "'bogus' was unexpected",
        ),
        (json!({"srv": {}}), "'server' is a required property"),
        // Well-formed, but nothing in the projection resolves it.
        (
            json!({"server": {"name": "vm", "imageRef": demo_image_id(), "flavorRef": "42"}}),
            "Flavor 42 could not be found.",
        ),
    ];
    for (body, expected) in cases {
        let r = h
            .call(
                Method::POST,
                "/v2.1/servers",
                Some(MEMBER),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        let message = r.body["badRequest"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body}: {message}");
        assert_eq!(r.body["badRequest"]["code"], 400);
    }
    let r = h
        .send(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            &[],
            Some(b"{not json".to_vec()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["badRequest"]["message"], "Malformed request body");
    assert_eq!(
        h.intents_end().await,
        before,
        "rejected requests append nothing"
    );
    h.stop().await;
}

#[tokio::test]
async fn member_may_not_create_flavors() {
    let h = Harness::without_conductor().await;
    let before = h.intents_end().await;
    let body = json!({"flavor": {"name": "m1.custom", "ram": 256, "vcpus": 1, "disk": 1}});
    let r = h
        .call(Method::POST, "/v2.1/flavors", Some(MEMBER), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.body["forbidden"]["message"],
        "Policy doesn't allow os_compute_api:os-flavor-manage:create to be performed."
    );
    let bad = json!({"flavor": {"name": "m1.custom", "ram": 0, "vcpus": 1, "disk": 1}});
    let r = h
        .call(Method::POST, "/v2.1/flavors", Some(ADMIN), Some(bad))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("field/attribute ram")
    );
    assert_eq!(h.intents_end().await, before);
    h.stop().await;
}

#[tokio::test]
async fn unknown_server_is_404_and_delete_writes_nothing() {
    let h = Harness::without_conductor().await;
    let before = h.intents_end().await;
    let id = Uuid::new_v4();
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/servers/{id}"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body["itemNotFound"]["message"],
        format!("Instance {id} could not be found.")
    );
    let r = h
        .call(
            Method::GET,
            "/v2.1/servers/my-server-name",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(
            Method::DELETE,
            &format!("/v2.1/servers/{id}"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body["itemNotFound"]["message"],
        "Instance could not be found"
    );
    let r = h
        .call(Method::GET, "/v2.1/flavors/m1.tiny", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(Method::GET, "/v2.1/nothing-here", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(h.intents_end().await, before);
    h.stop().await;
}

#[tokio::test]
async fn oversized_body_is_413_and_writes_nothing() {
    let h = Harness::without_conductor().await;
    let before = h.intents_end().await;
    let mut body = server_body("vm");
    body["server"]["metadata"] = json!({"pad": "x".repeat(255)});
    for i in 0..40 {
        body["server"]["metadata"][format!("k{i}")] = json!("y".repeat(200));
    }
    // Streamed: the limit trips while the body is read.
    let r = h
        .call(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.body["overLimit"]["code"], 413);
    assert_eq!(r.body["overLimit"]["message"], "Request is too large.");
    assert!(r.request_id().starts_with("req-"));
    // Announced: refused from the Content-Length alone.
    let bytes = body.to_string().into_bytes();
    let len = bytes.len().to_string();
    let r = h
        .send(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            &[("content-length", &len)],
            Some(bytes),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.body["overLimit"]["code"], 413);
    assert!(r.request_id().starts_with("req-"));
    assert_eq!(h.intents_end().await, before);
    h.stop().await;
}

#[tokio::test]
async fn wrong_method_is_405_in_novas_shape() {
    let h = Harness::without_conductor().await;
    let r = h
        .call(Method::PUT, "/v2.1/servers", Some(MEMBER), Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.body["badMethod"]["code"], 405);
    h.stop().await;
}

#[tokio::test]
async fn unanswered_write_is_503() {
    let h = Harness::without_conductor().await;
    let before = h.intents_end().await;
    let body = json!({"flavor": {"name": "m1.custom", "ram": 256, "vcpus": 1, "disk": 1}});
    let r = h
        .call(Method::POST, "/v2.1/flavors", Some(ADMIN), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["serviceUnavailable"]["code"], 503);
    assert_eq!(
        h.intents_end().await,
        before + 1,
        "the intent itself was written"
    );
    assert_eq!(
        h.handle.as_ref().unwrap().app.intents.pending(),
        0,
        "no waiter leaks"
    );
    h.stop().await;
}

// ---- with the fake conductor ----

#[tokio::test]
async fn demo_catalog_and_flavor_routes() {
    let h = Harness::with_conductor().await;
    let r = h
        .call(Method::GET, "/v2.1/flavors", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let names: Vec<&str> = r.body["flavors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"]
    );
    assert_eq!(
        r.body["flavors"][0]["links"][0]["href"],
        "http://cloud.test:8774/v2.1/flavors/1"
    );

    let r = h
        .call(
            Method::GET,
            "/v2.1/flavors/detail?is_public=None&minRam=None",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["flavors"].as_array().unwrap().len(), 5);
    let r = h
        .call(Method::GET, "/v2.1/flavors/2", Some(MEMBER), None)
        .await;
    assert_eq!(r.body["flavor"]["ram"], 2048);
    assert_eq!(r.body["flavor"]["swap"], "");
    assert_eq!(r.body["flavor"]["disk"], 20);

    // A second bootstrap finds everything in place and writes nothing.
    let before = h.intents_end().await;
    bootstrap_demo_catalog(h.handle.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(h.intents_end().await, before);

    let body = json!({"flavor": {"name": "m1.private", "id": "p1", "ram": 256, "vcpus": 1, "disk": 0,
        "os-flavor-access:is_public": false}});
    let r = h
        .call(
            Method::POST,
            "/v2.1/flavors",
            Some(ADMIN),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["flavor"]["os-flavor-access:is_public"], false);
    // Read-your-writes: the admin sees it with is_public=None at once.
    let r = h
        .call(
            Method::GET,
            "/v2.1/flavors/detail?is_public=None",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.body["flavors"].as_array().unwrap().len(), 6);
    let r = h
        .call(Method::GET, "/v2.1/flavors/detail", Some(ADMIN), None)
        .await;
    assert_eq!(
        r.body["flavors"].as_array().unwrap().len(),
        5,
        "public only by default"
    );
    let r = h
        .call(Method::GET, "/v2.1/flavors/p1", Some(MEMBER), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "members do not see private flavors"
    );
    let before = h.intents_end().await;
    let r = h
        .call(Method::POST, "/v2.1/flavors", Some(ADMIN), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.body["conflictingRequest"]["message"],
        "Flavor with ID p1 already exists."
    );
    assert_eq!(h.intents_end().await, before);
    h.stop().await;
}

#[tokio::test]
async fn server_lifecycle_through_the_conductor() {
    let h = Harness::with_conductor().await;
    let before = h.intents_end().await;
    let r = h
        .call(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            Some(server_body("web")),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let server = &r.body["server"];
    let id = server["id"].as_str().unwrap().to_owned();
    assert_eq!(server["adminPass"].as_str().unwrap().len(), 12);
    assert_eq!(server["OS-DCF:diskConfig"], "MANUAL");
    assert_eq!(server["security_groups"], json!([{"name": "default"}]));
    let location = format!("http://cloud.test:8774/v2.1/servers/{id}");
    assert_eq!(r.headers["location"], location.as_str());
    assert_eq!(server["links"][0]["href"], location);

    // The intent: keyed by project, correlated with the request id.
    assert_eq!(h.intents_end().await, before + 1);
    let recs = h
        .log
        .read(&h.cfg.topics().intents, 0, before, 10)
        .await
        .unwrap();
    let intent = novalog_schemas::decode(&recs[0].value).unwrap();
    assert_eq!(recs[0].key, b"p1");
    assert_eq!(intent.meta.correlation_id, r.request_id());
    assert_eq!(intent.meta.aggregate_id, id);
    assert_eq!(intent.meta.actor.user_id, "alice");
    assert!(matches!(
        intent.event,
        Event::Intent(Intent::ServerCreateRequested(_))
    ));

    // Read-your-writes: visible at once, BUILD.
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/servers/{id}"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let s = &r.body["server"];
    assert_eq!(s["status"], "BUILD");
    assert_eq!(s["name"], "web");
    assert_eq!(s["tenant_id"], "p1");
    assert_eq!(s["user_id"], "alice");
    assert_eq!(s["OS-EXT-STS:vm_state"], "building");
    assert_eq!(s["flavor"]["id"], "1");
    assert!(s.get("OS-EXT-SRV-ATTR:host").is_none());
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/servers/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.body["server"]["OS-EXT-SRV-ATTR:host"], Value::Null);

    // Lists: own project only; all_tenants for admins.
    let r = h
        .call(Method::GET, "/v2.1/servers", Some(MEMBER), None)
        .await;
    assert_eq!(r.body["servers"][0]["id"], id);
    assert_eq!(r.body["servers"][0].as_object().unwrap().len(), 3);
    let r = h
        .call(
            Method::GET,
            "/v2.1/servers/detail?flavor=None&image=None&name=web&status=BUILD&deleted=False",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.body["servers"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["servers"][0]["status"], "BUILD");
    let r = h
        .call(
            Method::GET,
            "/v2.1/servers/detail?status=ACTIVE",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.body["servers"], json!([]));
    let r = h
        .call(Method::GET, "/v2.1/servers", Some(OTHER), None)
        .await;
    assert_eq!(r.body["servers"], json!([]));
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/servers/{id}"),
            Some(OTHER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(
            Method::GET,
            "/v2.1/servers?all_tenants=True",
            Some(OTHER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(
            Method::GET,
            "/v2.1/servers/detail?all_tenants=1",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.body["servers"].as_array().unwrap().len(), 1);
    let r = h
        .call(Method::GET, "/v2.1/servers/detail", Some(ADMIN), None)
        .await;
    assert_eq!(r.body["servers"], json!([]), "admin's own project has none");

    // Delete: another project cannot; the owner can; a second delete is a no-op.
    let before = h.intents_end().await;
    let r = h
        .call(
            Method::DELETE,
            &format!("/v2.1/servers/{id}"),
            Some(OTHER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(
            Method::DELETE,
            &format!("/v2.1/servers/{id}"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(h.intents_end().await, before + 1);
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/servers/{id}"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.body["server"]["OS-EXT-STS:task_state"], "deleting");
    assert_eq!(r.body["server"]["status"], "BUILD");
    let r = h
        .call(
            Method::DELETE,
            &format!("/v2.1/servers/{id}"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.intents_end().await,
        before + 1,
        "already deleting: nothing appended"
    );
    h.stop().await;
}

#[tokio::test]
async fn rejected_intent_answers_with_its_code() {
    let h = Harness::with_conductor().await;
    let r = h
        .call(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            Some(server_body("reject-me")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.body,
        json!({"conflictingRequest": {"code": 409, "message": "Quota exceeded for instances."}})
    );
    let r = h
        .call(Method::GET, "/v2.1/servers", Some(MEMBER), None)
        .await;
    assert_eq!(r.body["servers"], json!([]));
    h.stop().await;
}

#[tokio::test]
async fn multiple_create_writes_one_intent_per_server() {
    let h = Harness::with_conductor().await;
    let before = h.intents_end().await;
    let mut body = server_body("batch");
    body["server"]["min_count"] = json!(3);
    body["server"]["return_reservation_id"] = json!(true);
    // What openstackclient sends alongside imageRef.
    body["server"]["block_device_mapping_v2"] = json!([{
        "uuid": demo_image_id(), "boot_index": 0, "source_type": "image",
        "destination_type": "local", "delete_on_termination": true,
    }]);
    let r = h
        .call(Method::POST, "/v2.1/servers", Some(MEMBER), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let reservation = r.body["reservation_id"].as_str().unwrap().to_owned();
    assert!(reservation.starts_with("r-"));
    assert_eq!(h.intents_end().await, before + 3);
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/servers/detail?reservation_id={reservation}"),
            Some(MEMBER),
            None,
        )
        .await;
    let mut names: Vec<&str> = r.body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["batch-1", "batch-2", "batch-3"]);
    let r = h
        .call(Method::GET, "/v2.1/servers?limit=2", Some(MEMBER), None)
        .await;
    assert_eq!(r.body["servers"].as_array().unwrap().len(), 2);
    let next = r.body["servers_links"][0]["href"].as_str().unwrap();
    let marker = next.split("marker=").nth(1).unwrap();
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/servers?limit=2&marker={marker}"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.body["servers"].as_array().unwrap().len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn projection_survives_a_restart() {
    let h = Harness::with_conductor().await;
    let r = h
        .call(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            Some(server_body("keep")),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let cfg = h.cfg.clone();
    let log = h.log.clone();
    let dir = h.stop().await;

    // A fresh service on the same store: the projection loads from RocksDB.
    let (trigger, shutdown) = Shutdown::new();
    let handle = ApiService::start(&cfg, log.clone(), shutdown)
        .await
        .unwrap();
    assert!(
        handle
            .app
            .projection
            .instance(&Uuid::parse_str(&id).unwrap())
            .is_some()
    );
    assert_eq!(handle.app.projection.flavors().len(), 5);
    // The real listener answers too.
    let url = format!("http://{}/v2.1/servers/{id}", handle.local_addr());
    let resp = reqwest::Client::new()
        .get(&url)
        .header("x-auth-token", MEMBER)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    assert!(resp.headers().contains_key("x-openstack-request-id"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["server"]["name"], "keep");
    trigger.trigger();
    handle.join().await.unwrap();
    drop(dir);
}

#[tokio::test]
async fn later_microversions_on_the_wire() {
    let h = Harness::with_conductor().await;
    let v237 = [("OpenStack-API-Version", "compute 2.37")];
    let before = h.intents_end().await;
    let mut body = server_body("tagged");
    body["server"].as_object_mut().unwrap().remove("networks");
    let r = h
        .send(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            &v237,
            Some(body.to_string().into_bytes()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("'networks' is a required property")
    );
    assert_eq!(h.intents_end().await, before);

    let mut body = server_body("described");
    body["server"]["description"] = json!("front end");
    let r = h
        .send(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            &v237,
            Some(body.to_string().into_bytes()),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.headers["openstack-api-version"], "compute 2.37");
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();

    let r = h
        .send(
            Method::GET,
            &format!("/v2.1/servers/{id}"),
            Some(MEMBER),
            &v237,
            None,
        )
        .await;
    let s = &r.body["server"];
    assert_eq!(s["description"], "front end");
    assert_eq!(s["locked"], false);
    assert_eq!(s["tags"], json!([]));
    assert!(
        s.get("host_status").is_none(),
        "members do not see host_status"
    );
    let r = h
        .send(
            Method::GET,
            "/v2.1/servers/detail?all_tenants=1&tags-any=none",
            Some(ADMIN),
            &v237,
            None,
        )
        .await;
    assert_eq!(r.body["servers"], json!([]), "no server has the tag");
    let r = h
        .send(
            Method::GET,
            &format!("/v2.1/servers/{id}"),
            Some(ADMIN),
            &v237,
            None,
        )
        .await;
    let s = &r.body["server"];
    assert_eq!(s["host_status"], "", "no host yet");
    assert_eq!(s["OS-EXT-SRV-ATTR:hostname"], "described");
    assert!(
        s["OS-EXT-SRV-ATTR:reservation_id"]
            .as_str()
            .unwrap()
            .starts_with("r-")
    );

    // At 2.1 the same server shows none of it, and its description
    // cannot be given.
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/servers/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert!(r.body["server"].get("description").is_none());
    assert!(r.body["server"].get("locked").is_none());
    let r = h
        .call(Method::POST, "/v2.1/servers", Some(MEMBER), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    h.stop().await;
}

/// Throughput of creates through the router with the fake conductor on
/// the embedded log (`cargo test -p novalog-api -- --ignored --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn create_throughput() {
    let h = Arc::new(Harness::with_conductor().await);
    let total = 4000;
    let concurrency = 128;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..total).step_by(concurrency) {
                let token = format!("user{}:project{}", i % 16, i % 16);
                let r = h
                    .call(
                        Method::POST,
                        "/v2.1/servers",
                        Some(&token),
                        Some(server_body(&format!("vm-{i}"))),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{total} creates in {secs:.2}s: {:.0}/s",
        total as f64 / secs
    );
}

// ---- Image v2 ----

const PATCH: (&str, &str) = (
    "content-type",
    "application/openstack-images-v2.1-json-patch",
);
const OCTETS: (&str, &str) = ("content-type", "application/octet-stream");

#[tokio::test]
async fn image_version_document_needs_no_token() {
    let h = Harness::without_conductor().await;
    let r = h.call(Method::GET, "/image", None, None).await;
    assert_eq!(r.status, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(r.body["versions"][0]["status"], "CURRENT");
    assert!(
        r.body["versions"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("v2.")
    );
    assert_eq!(
        r.body["versions"][0]["links"][0]["href"],
        "http://cloud.test:8774/image/v2/"
    );
    let r = h.call(Method::GET, "/image/versions", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h.call(Method::GET, "/image/v2/images", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    h.stop().await;
}

#[tokio::test]
async fn image_create_upload_download_and_delete() {
    let h = Harness::with_conductor().await;
    let r = h
        .call(
            Method::POST,
            "/image/v2/images",
            Some(MEMBER),
            Some(
                json!({"name": "mine", "disk_format": "raw", "container_format": "bare",
                        "min_ram": 512, "architecture": "x86_64", "tags": ["a"]}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["status"], "queued");
    // Glance's default visibility: shared, seen by no one else until it has members.
    assert_eq!(r.body["visibility"], "shared");
    assert_eq!(r.body["owner"], "p1");
    assert_eq!(r.body["architecture"], "x86_64");
    assert_eq!(r.body["size"], Value::Null);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let uri = format!("/image/v2/images/{id}");

    // Larger than the Compute API's body limit: uploads are streamed.
    let data = vec![7u8; 10_000];
    let r = h
        .send(
            Method::PUT,
            &format!("{uri}/file"),
            Some(MEMBER),
            &[OCTETS],
            Some(data.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = h.call(Method::GET, &uri, Some(MEMBER), None).await;
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["size"], 10_000);
    let mut hasher = novalog_image::images::Hasher::default();
    hasher.update(&data).unwrap();
    let up = hasher.finish();
    assert_eq!(r.body["checksum"], up.checksum);
    assert_eq!(r.body["os_hash_algo"], "sha512");
    assert_eq!(r.body["os_hash_value"], up.os_hash_value);
    let stored = std::fs::read(h.cfg.data_dir.join("images").join(&id)).unwrap();
    assert_eq!(stored, data);

    // A second upload is a conflict and writes nothing.
    let before = h.intents_end().await;
    let r = h
        .send(
            Method::PUT,
            &format!("{uri}/file"),
            Some(MEMBER),
            &[OCTETS],
            Some(vec![1]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["code"], "409 Conflict");
    assert_eq!(h.intents_end().await, before);

    // Another project neither sees nor deletes it.
    let r = h.call(Method::GET, &uri, Some(OTHER), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.call(Method::DELETE, &uri, Some(OTHER), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(Method::GET, &format!("{uri}/file"), Some(OTHER), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(h.intents_end().await, before);

    let r = h.call(Method::DELETE, &uri, Some(MEMBER), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = h.call(Method::GET, &uri, Some(MEMBER), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!h.cfg.data_dir.join("images").join(&id).exists());
    h.stop().await;
}

#[tokio::test]
async fn image_json_patch() {
    let h = Harness::with_conductor().await;
    let r = h
        .call(
            Method::POST,
            "/image/v2/images",
            Some(MEMBER),
            Some(json!({"name": "p", "color": "red"})),
        )
        .await;
    let uri = format!("/image/v2/images/{}", r.body["id"].as_str().unwrap());
    let patch = |ops: Value| Some(ops.to_string().into_bytes());
    let r = h
        .send(
            Method::PATCH,
            &uri,
            Some(MEMBER),
            &[PATCH],
            patch(json!([
                {"op": "replace", "path": "/name", "value": "renamed"},
                {"op": "add", "path": "/min_ram", "value": 1024},
                {"op": "add", "path": "/hypervisor_type", "value": "qemu"},
                {"op": "remove", "path": "/color"},
            ])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["name"], "renamed");
    assert_eq!(r.body["min_ram"], 1024);
    assert_eq!(r.body["hypervisor_type"], "qemu");
    assert!(r.body.get("color").is_none());

    let before = h.intents_end().await;
    for (ops, status) in [
        (
            json!([{"op": "replace", "path": "/nope", "value": "x"}]),
            StatusCode::CONFLICT,
        ),
        (
            json!([{"op": "remove", "path": "/nope"}]),
            StatusCode::CONFLICT,
        ),
        (
            json!([{"op": "replace", "path": "/status", "value": "active"}]),
            StatusCode::FORBIDDEN,
        ),
        (
            json!([{"op": "replace", "path": "/visibility", "value": "public"}]),
            StatusCode::FORBIDDEN,
        ),
        (
            json!([{"op": "replace", "path": "/min_ram", "value": -1}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"op": "move", "path": "/name", "from": "/x"}]),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = h
            .send(
                Method::PATCH,
                &uri,
                Some(MEMBER),
                &[PATCH],
                patch(ops.clone()),
            )
            .await;
        assert_eq!(r.status, status, "{ops}: {:?}", r.body);
    }
    // Plain JSON is not a patch.
    let r = h
        .call(Method::PATCH, &uri, Some(MEMBER), Some(json!([])))
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(h.intents_end().await, before);

    // Others may not modify a public image they can see.
    let r = h
        .send(
            Method::PATCH,
            &format!("/image/v2/images/{}", demo_image_id()),
            Some(MEMBER),
            &[PATCH],
            patch(json!([{"op": "replace", "path": "/name", "value": "x"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(
            Method::DELETE,
            &format!("/image/v2/images/{}", demo_image_id()),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(h.intents_end().await, before);
    h.stop().await;
}

#[tokio::test]
async fn image_list_filters_and_pages() {
    let h = Harness::with_conductor().await;
    for n in ["a", "b", "c"] {
        let r = h
            .call(
                Method::POST,
                "/image/v2/images",
                Some(MEMBER),
                Some(json!({"name": n})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    h.call(
        Method::POST,
        "/image/v2/images",
        Some(OTHER),
        Some(json!({"name": "theirs"})),
    )
    .await;
    let names = |r: &Reply| -> Vec<String> {
        r.body["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = h
        .call(Method::GET, "/image/v2/images", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let mut all = names(&r);
    all.sort();
    assert_eq!(all, ["a", "b", "c", "cirros"]);
    assert_eq!(r.body["first"], "/v2/images");
    assert!(r.body.get("next").is_none());

    let r = h
        .call(
            Method::GET,
            "/image/v2/images?name=cirros",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(names(&r), ["cirros"]);
    let r = h
        .call(
            Method::GET,
            "/image/v2/images?status=queued",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(names(&r).len(), 3);
    let r = h
        .call(
            Method::GET,
            "/image/v2/images?visibility=public",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(names(&r), ["cirros"]);
    let r = h
        .call(Method::GET, "/image/v2/images", Some(ADMIN), None)
        .await;
    assert_eq!(names(&r).len(), 5);

    // Pages of two, following `next`.
    let mut seen = Vec::new();
    let mut uri = "/image/v2/images?limit=2".to_owned();
    loop {
        let r = h.call(Method::GET, &uri, Some(MEMBER), None).await;
        assert_eq!(r.status, StatusCode::OK);
        seen.extend(names(&r));
        match r.body["next"].as_str() {
            Some(next) => uri = format!("/image{next}"),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["a", "b", "c", "cirros"]);
    let r = h
        .call(
            Method::GET,
            &format!("/image/v2/images?marker={}", Uuid::new_v4()),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    h.stop().await;
}

#[tokio::test]
async fn image_create_is_checked_before_anything_is_written() {
    let h = Harness::with_conductor().await;
    let before = h.intents_end().await;
    for (body, status) in [
        (
            json!({"name": "x", "visibility": "public"}),
            StatusCode::FORBIDDEN,
        ),
        (
            json!({"name": "x", "status": "active"}),
            StatusCode::FORBIDDEN,
        ),
        (
            json!({"name": "x", "disk_format": "floppy"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"name": "x", "min_disk": "big"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"name": "x", "prop": 3}), StatusCode::BAD_REQUEST),
        (
            json!({"id": demo_image_id(), "name": "x"}),
            StatusCode::CONFLICT,
        ),
    ] {
        let r = h
            .call(
                Method::POST,
                "/image/v2/images",
                Some(MEMBER),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, status, "{body}: {:?}", r.body);
    }
    assert_eq!(h.intents_end().await, before);
    // Administrators publish.
    let r = h
        .call(
            Method::POST,
            "/image/v2/images",
            Some(ADMIN),
            Some(json!({"name": "pub", "visibility": "public"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    h.stop().await;
}

#[tokio::test]
async fn server_create_needs_an_active_image_big_enough_for_the_flavor() {
    let h = Harness::with_conductor().await;
    let r = h
        .call(
            Method::POST,
            "/image/v2/images",
            Some(MEMBER),
            Some(json!({"name": "q", "min_ram": 4096})),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let boot = |image: &str| json!({"server": {"name": "vm", "imageRef": image, "flavorRef": "1", "networks": "none"}});
    let r = h
        .call(Method::POST, "/v2.1/servers", Some(MEMBER), Some(boot(&id)))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("is not active")
    );
    h.send(
        Method::PUT,
        &format!("/image/v2/images/{id}/file"),
        Some(MEMBER),
        &[OCTETS],
        Some(vec![0; 16]),
    )
    .await;
    let r = h
        .call(Method::POST, "/v2.1/servers", Some(MEMBER), Some(boot(&id)))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["badRequest"]["message"],
        "Flavor's memory is too small for requested image."
    );
    h.stop().await;
}

/// (method, uri, token, body, status, fault key, message)
type Refusal = (
    Method,
    String,
    Option<&'static str>,
    Option<Value>,
    StatusCode,
    &'static str,
    String,
);

/// Every 4xx of the server action, instance action, metadata, tags,
/// update, quota and limits endpoints that the API decides itself: each
/// answered in Nova's words, and none of them writes an intent. (The
/// conductor's 403s and 409s are covered end to end in tests/.)
#[tokio::test]
async fn action_metadata_tags_and_quota_refusals_write_nothing() {
    let h = Harness::with_conductor().await;
    let r = h
        .call(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            Some(server_body("vm")),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let before = h.intents_end().await;
    let missing = Uuid::new_v4();
    let action = format!("/v2.1/servers/{id}/action");
    let v226 = [("OpenStack-API-Version", "compute 2.26")];

    let cases: Vec<Refusal> = vec![
        (Method::POST, action.clone(), Some(MEMBER), Some(json!({"fly": null})), StatusCode::BAD_REQUEST, "badRequest", "There is no such action: fly".into()),
        (Method::POST, action.clone(), Some(MEMBER), Some(json!({})), StatusCode::BAD_REQUEST, "badRequest", "Malformed request body".into()),
        (Method::POST, action.clone(), Some(MEMBER), Some(json!({"reboot": {"type": "NICE"}})), StatusCode::BAD_REQUEST, "badRequest", "Invalid input for field/attribute type. Value: NICE. 'NICE' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']".into()),
        (Method::POST, format!("/v2.1/servers/{missing}/action"), Some(MEMBER), Some(json!({"pause": null})), StatusCode::NOT_FOUND, "itemNotFound", format!("Instance {missing} could not be found.")),
        (Method::POST, action.clone(), Some(OTHER), Some(json!({"pause": null})), StatusCode::NOT_FOUND, "itemNotFound", format!("Instance {id} could not be found.")),
        (Method::GET, format!("/v2.1/servers/{missing}/os-instance-actions"), Some(MEMBER), None, StatusCode::NOT_FOUND, "itemNotFound", format!("Instance {missing} could not be found.")),
        (Method::GET, format!("/v2.1/servers/{id}/os-instance-actions/req-nope"), Some(MEMBER), None, StatusCode::NOT_FOUND, "itemNotFound", "Action req-nope not found".into()),
        (Method::GET, format!("/v2.1/servers/{id}/os-instance-actions"), Some(OTHER), None, StatusCode::NOT_FOUND, "itemNotFound", format!("Instance {id} could not be found.")),
        (Method::PUT, format!("/v2.1/servers/{id}"), Some(MEMBER), Some(json!({"server": {"name": ""}})), StatusCode::BAD_REQUEST, "badRequest", "Invalid input for field/attribute name. Value: . '' is too short".into()),
        (Method::PUT, format!("/v2.1/servers/{missing}"), Some(MEMBER), Some(json!({"server": {"name": "x"}})), StatusCode::NOT_FOUND, "itemNotFound", format!("Instance {missing} could not be found.")),
        (Method::GET, format!("/v2.1/servers/{id}/metadata/nope"), Some(MEMBER), None, StatusCode::NOT_FOUND, "itemNotFound", "Metadata item was not found".into()),
        (Method::DELETE, format!("/v2.1/servers/{id}/metadata/nope"), Some(MEMBER), None, StatusCode::NOT_FOUND, "itemNotFound", "Metadata item was not found".into()),
        (Method::PUT, format!("/v2.1/servers/{id}/metadata/a"), Some(MEMBER), Some(json!({"meta": {"b": "1"}})), StatusCode::BAD_REQUEST, "badRequest", "Request body and URI mismatch".into()),
        (Method::PUT, format!("/v2.1/servers/{id}/metadata/a"), Some(MEMBER), Some(json!({"meta": {"a": "1", "b": "2"}})), StatusCode::BAD_REQUEST, "badRequest", "Request body contains too many items".into()),
        (Method::POST, format!("/v2.1/servers/{id}/metadata"), Some(MEMBER), Some(json!({"metadata": {"k": 1}})), StatusCode::BAD_REQUEST, "badRequest", "Invalid input for field/attribute k. Value: 1. 1 is not of type 'string'".into()),
        (Method::POST, format!("/v2.1/servers/{id}/metadata"), Some(MEMBER), Some(json!({"meta": {}})), StatusCode::BAD_REQUEST, "badRequest", "Additional properties are not allowed ('meta' was unexpected)".into()),
        (Method::GET, format!("/v2.1/servers/{missing}/metadata"), Some(MEMBER), None, StatusCode::NOT_FOUND, "itemNotFound", format!("Instance {missing} could not be found.")),
        (Method::GET, format!("/v2.1/servers/{id}/tags"), Some(MEMBER), None, StatusCode::NOT_FOUND, "itemNotFound", "The resource could not be found.".into()),
        (Method::PUT, "/v2.1/os-quota-sets/p1".into(), Some(MEMBER), Some(json!({"quota_set": {"instances": 1}})), StatusCode::FORBIDDEN, "forbidden", "Policy doesn't allow os_compute_api:os-quota-sets:update to be performed.".into()),
        (Method::DELETE, "/v2.1/os-quota-sets/p1".into(), Some(MEMBER), None, StatusCode::FORBIDDEN, "forbidden", "Policy doesn't allow os_compute_api:os-quota-sets:delete to be performed.".into()),
        (Method::GET, "/v2.1/os-quota-sets/p2".into(), Some(MEMBER), None, StatusCode::FORBIDDEN, "forbidden", "Policy doesn't allow os_compute_api:os-quota-sets:show to be performed.".into()),
        (Method::GET, "/v2.1/os-quota-sets/p2/detail".into(), Some(MEMBER), None, StatusCode::FORBIDDEN, "forbidden", "Policy doesn't allow os_compute_api:os-quota-sets:detail to be performed.".into()),
        (Method::PUT, "/v2.1/os-quota-sets/p1".into(), Some(ADMIN), Some(json!({"quota_set": {"instances": -5}})), StatusCode::BAD_REQUEST, "badRequest", "Invalid input for field/attribute instances. Value: -5. -5 is less than the minimum of -1".into()),
        (Method::GET, "/v2.1/limits?tenant_id=p2".into(), Some(MEMBER), None, StatusCode::FORBIDDEN, "forbidden", "Policy doesn't allow os_compute_api:limits:other_project to be performed.".into()),
        (Method::POST, action.clone(), None, Some(json!({"pause": null})), StatusCode::UNAUTHORIZED, "", String::new()),
    ];
    for (method, uri, token, body, status, fault, message) in cases {
        let r = h.call(method.clone(), &uri, token, body.clone()).await;
        assert_eq!(r.status, status, "{method} {uri} {body:?}: {:?}", r.body);
        if !fault.is_empty() {
            assert_eq!(r.body[fault]["message"], message, "{method} {uri}");
            assert_eq!(r.body[fault]["code"], status.as_u16());
        }
    }

    // Tags from 2.26.
    let tag_cases: Vec<(Method, String, Option<Value>, StatusCode, String)> = vec![
        (Method::GET, format!("/v2.1/servers/{id}/tags/nope"), None, StatusCode::NOT_FOUND, format!("Server {id} has no tag 'nope'")),
        (Method::PUT, format!("/v2.1/servers/{id}/tags/a,b"), None, StatusCode::BAD_REQUEST, "Tag 'a,b' is invalid. It must be a non empty string without characters '/' and ','. Validation error message: 'a,b' does not match '^[^,/]*$'".into()),
        (Method::PUT, format!("/v2.1/servers/{id}/tags"), Some(json!({"tags": "red"})), StatusCode::BAD_REQUEST, "Invalid input for field/attribute tags. Value: red. 'red' is not of type 'array'".into()),
        (Method::PUT, format!("/v2.1/servers/{id}/tags"), Some(json!({"tags": (0..51).map(|n| n.to_string()).collect::<Vec<_>>()})), StatusCode::BAD_REQUEST, String::new()),
        (Method::PUT, format!("/v2.1/servers/{missing}/tags"), Some(json!({"tags": []})), StatusCode::NOT_FOUND, format!("Instance {missing} could not be found.")),
    ];
    for (method, uri, body, status, message) in tag_cases {
        let r = h
            .send(
                method.clone(),
                &uri,
                Some(MEMBER),
                &v226,
                body.map(|b| b.to_string().into_bytes()),
            )
            .await;
        assert_eq!(r.status, status, "{method} {uri}: {:?}", r.body);
        if !message.is_empty() {
            let fault = if status == StatusCode::NOT_FOUND {
                "itemNotFound"
            } else {
                "badRequest"
            };
            assert_eq!(r.body[fault]["message"], message, "{method} {uri}");
        }
    }
    assert_eq!(h.intents_end().await, before, "no refusal wrote an intent");

    // The reads answer in Nova's shapes.
    let r = h
        .call(Method::GET, "/v2.1/limits", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["limits"]["rate"], json!([]));
    assert_eq!(r.body["limits"]["absolute"]["totalInstancesUsed"], 1);
    assert_eq!(r.body["limits"]["absolute"]["maxTotalInstances"], 10);
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/servers/{id}/os-instance-actions"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["instanceActions"][0]["action"], "create");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saga_actions_check_body_policy_and_lookups_before_writing() {
    let h = Harness::with_conductor().await;
    let r = h
        .call(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            Some(server_body("vm")),
        )
        .await;
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let action = format!("/v2.1/servers/{id}/action");
    let cases: Vec<(&str, Value, StatusCode, String)> = vec![
        (
            MEMBER,
            json!({"resize": {}}),
            StatusCode::BAD_REQUEST,
            "Invalid input for field/attribute resize. Value: {}. 'flavorRef' is a required property".into(),
        ),
        (
            MEMBER,
            json!({"resize": {"flavorRef": "99"}}),
            StatusCode::BAD_REQUEST,
            "Flavor 99 could not be found.".into(),
        ),
        (
            MEMBER,
            json!({"migrate": null}),
            StatusCode::FORBIDDEN,
            "Policy doesn't allow os_compute_api:os-migrate-server:migrate to be performed.".into(),
        ),
        (
            MEMBER,
            json!({"os-migrateLive": {"host": null, "block_migration": "auto"}}),
            StatusCode::FORBIDDEN,
            "Policy doesn't allow os_compute_api:os-migrate-server:migrate_live to be performed.".into(),
        ),
        (
            MEMBER,
            json!({"rebuild": {"imageRef": Uuid::new_v4().to_string()}}),
            StatusCode::BAD_REQUEST,
            "Cannot find image for rebuild".into(),
        ),
        (
            MEMBER,
            json!({"confirmResize": {}}),
            StatusCode::BAD_REQUEST,
            "Invalid input for field/attribute confirmResize. Value: {}. {} is not of type 'null'".into(),
        ),
        (
            OTHER,
            json!({"resize": {"flavorRef": "2"}}),
            StatusCode::NOT_FOUND,
            format!("Instance {id} could not be found."),
        ),
        (
            ADMIN,
            json!({"evacuate": {"host": "no-such-host"}}),
            StatusCode::NOT_FOUND,
            "Compute host no-such-host not found.".into(),
        ),
    ];
    refused_without_writing(&h, &action, cases).await;
    let before = h.intents_end().await;
    // Rebuild's schema per microversion: key_name from 2.54, user_data
    // from 2.57, which drops personality.
    let r = h
        .call(
            Method::GET,
            &format!("/v2.1/servers/{id}"),
            Some(MEMBER),
            None,
        )
        .await;
    let image = r.body["server"]["image"]["id"].as_str().unwrap().to_owned();
    let versioned = [
        ("2.53", json!({"key_name": "k"}), "key_name"),
        (
            "2.54",
            json!({"key_name": "nope"}),
            "Invalid key_name provided.",
        ),
        ("2.56", json!({"user_data": "YQ=="}), "user_data"),
        ("2.57", json!({"personality": []}), "personality"),
        (
            "2.57",
            json!({"user_data": "not base64!"}),
            "is not a 'base64'",
        ),
        ("2.18", json!({"description": "d"}), "description"),
    ];
    for (version, extra, says) in versioned {
        let mut rebuild = extra.clone();
        rebuild["imageRef"] = json!(image);
        let header = format!("compute {version}");
        let r = h
            .send(
                Method::POST,
                &action,
                Some(MEMBER),
                &[("OpenStack-API-Version", header.as_str())],
                Some(serde_json::to_vec(&json!({ "rebuild": rebuild })).unwrap()),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{version} {extra}");
        let message = r.body["badRequest"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{version} {extra}: {message}");
    }
    assert_eq!(h.intents_end().await, before, "nothing was written");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_lists_are_for_administrators_and_server_migrations_start_at_2_23() {
    let h = Harness::with_conductor().await;
    let r = h
        .call(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            Some(server_body("vm")),
        )
        .await;
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let r = h
        .call(Method::GET, "/v2.1/os-migrations", Some(MEMBER), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(Method::GET, "/v2.1/os-migrations", Some(ADMIN), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"migrations": []}));
    let path = format!("/v2.1/servers/{id}/migrations");
    let r = h.call(Method::GET, &path, Some(ADMIN), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "2.1 has no such route");
    let r = h
        .send(
            Method::GET,
            &path,
            Some(ADMIN),
            &[("OpenStack-API-Version", "compute 2.23")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body, json!({"migrations": []}));
    let r = h
        .send(
            Method::GET,
            &format!("{path}/7"),
            Some(ADMIN),
            &[("OpenStack-API-Version", "compute 2.23")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body["itemNotFound"]["message"],
        format!("In-progress live migration 7 is not found for server {id}.")
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_actions_refuse_bad_bodies_policy_and_versions_before_writing() {
    let h = Harness::with_conductor().await;
    let r = h
        .call(
            Method::POST,
            "/v2.1/servers",
            Some(MEMBER),
            Some(server_body("vm")),
        )
        .await;
    let id = r.body["server"]["id"].as_str().unwrap().to_owned();
    let action = format!("/v2.1/servers/{id}/action");
    let policy = |rule: &str| format!("Policy doesn't allow {rule} to be performed.");
    let cases: Vec<(&str, Value, StatusCode, String)> = vec![
        (
            OTHER,
            json!({"forceDelete": null}),
            StatusCode::NOT_FOUND,
            format!("Instance {id} could not be found."),
        ),
        (
            OTHER,
            json!({"restore": null}),
            StatusCode::NOT_FOUND,
            format!("Instance {id} could not be found."),
        ),
        (
            MEMBER,
            json!({"os-resetState": {"state": "error"}}),
            StatusCode::FORBIDDEN,
            policy("os_compute_api:os-admin-actions:reset_state"),
        ),
        (
            ADMIN,
            json!({"os-resetState": {"state": "stopped"}}),
            StatusCode::BAD_REQUEST,
            "Invalid input for field/attribute state. Value: stopped. 'stopped' is not one of ['active', 'error']".into(),
        ),
        (
            MEMBER,
            json!({"createImage": {}}),
            StatusCode::BAD_REQUEST,
            "Invalid input for field/attribute createImage. Value: {}. 'name' is a required property".into(),
        ),
        (
            MEMBER,
            json!({"os-getConsoleOutput": {"length": -2}}),
            StatusCode::BAD_REQUEST,
            "Invalid input for field/attribute length. Value: -2. -2 is less than the minimum of -1".into(),
        ),
        (
            MEMBER,
            json!({"os-getConsoleOutput": {"length": "ten"}}),
            StatusCode::BAD_REQUEST,
            "Invalid input for field/attribute length. Value: ten. 'ten' does not match '^-?[0-9]+$'".into(),
        ),
        // Removed with nova-network: 410 whoever asks.
        (
            MEMBER,
            json!({"resetNetwork": null}),
            StatusCode::GONE,
            "This resource is no longer available.  No forwarding address is given.".into(),
        ),
        // An action of 2.17: unknown before it.
        (
            MEMBER,
            json!({"trigger_crash_dump": null}),
            StatusCode::NOT_FOUND,
            "The resource could not be found.".into(),
        ),
    ];
    refused_without_writing(&h, &action, cases).await;
    h.stop().await;
}

/// POSTs each case's body to `path` as its caller: each gets its status and
/// its fault's message, and none writes an intent.
async fn refused_without_writing(
    h: &Harness,
    path: &str,
    cases: Vec<(&str, Value, StatusCode, String)>,
) {
    let before = h.intents_end().await;
    for (who, body, status, message) in cases {
        let r = h
            .call(Method::POST, path, Some(who), Some(body.clone()))
            .await;
        assert_eq!(r.status, status, "{body}: {:?}", r.body);
        let fault = r.body.as_object().unwrap().values().next().unwrap();
        assert_eq!(fault["message"], message, "{body}");
    }
    assert_eq!(h.intents_end().await, before, "nothing was written");
}
