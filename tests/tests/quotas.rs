//! Quotas end to end, on the embedded log and on Kafka (`on_both_logs!`):
//! concurrent creates at the edge never exceed the limit, because the
//! conductor decides one project's creates one after another.

use std::time::Duration;

use novalog_schemas::quota::QuotaDefaults;
use novalog_tests::{Backend, Cluster, demo_image_id, on_both_logs};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

on_both_logs!(concurrent_creates_at_the_quota_edge_never_exceed_it);

async fn concurrent_creates_at_the_quota_edge_never_exceed_it(backend: Backend) {
    let c = Cluster::start(&backend, |cfg| cfg.quota = QuotaDefaults::default()).await;
    let admin = &c.admin;
    let alice = c.client("alice", "p1");

    // Defaults are Nova's.
    let (code, q) = alice
        .request(Method::GET, "/os-quota-sets/p1", None)
        .await
        .unwrap();
    assert_eq!(code, 200, "{q}");
    assert_eq!(q["quota_set"]["id"], "p1");
    assert_eq!(
        (
            &q["quota_set"]["instances"],
            &q["quota_set"]["cores"],
            &q["quota_set"]["ram"]
        ),
        (&json!(10), &json!(20), &json!(51200))
    );
    // Only administrators change quotas; nobody reads another project's.
    let (code, _) = alice
        .request(
            Method::PUT,
            "/os-quota-sets/p1",
            Some(json!({"quota_set": {"instances": 50}})),
        )
        .await
        .unwrap();
    assert_eq!(code, 403);
    let (code, _) = alice
        .request(Method::GET, "/os-quota-sets/p2", None)
        .await
        .unwrap();
    assert_eq!(code, 403);
    let (code, q) = admin
        .request(
            Method::PUT,
            "/os-quota-sets/p1",
            Some(json!({"quota_set": {"instances": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(code, 200, "{q}");
    assert_eq!(q["quota_set"]["instances"], 5);
    assert!(
        q["quota_set"].get("id").is_none(),
        "Nova's update has no id"
    );

    // 30 creates at once: exactly 5 accepted, the rest refused as Nova does.
    let creates = (0..30).map(|i| {
        let c = alice.clone();
        async move {
            let body = json!({"server": {"name": format!("q{i}"), "flavorRef": "1",
                "imageRef": demo_image_id().to_string(), "networks": "none"}});
            c.request(Method::POST, "/servers", Some(body))
                .await
                .unwrap()
        }
    });
    let results = futures::future::join_all(creates).await;
    let accepted: Vec<Uuid> = results
        .iter()
        .filter(|(code, _)| *code == 202)
        .map(|(_, v)| v["server"]["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(accepted.len(), 5, "{results:?}");
    for (code, v) in results.iter().filter(|(code, _)| *code != 202) {
        assert_eq!(*code, 403, "{v}");
        assert_eq!(
            v["forbidden"]["message"],
            "Quota exceeded for instances: Requested 1, but already used 5 of 5 instances"
        );
    }
    assert_eq!(alice.servers_detail().await.unwrap().len(), 5);
    let (_, limits) = alice.request(Method::GET, "/limits", None).await.unwrap();
    let abs = &limits["limits"]["absolute"];
    assert_eq!(
        (&abs["maxTotalInstances"], &abs["totalInstancesUsed"]),
        (&json!(5), &json!(5))
    );
    assert_eq!(abs["totalCoresUsed"], 5);
    assert_eq!(abs["totalRAMUsed"], 5 * 512);
    let (_, detail) = alice
        .request(Method::GET, "/os-quota-sets/p1/detail", None)
        .await
        .unwrap();
    assert_eq!(
        detail["quota_set"]["instances"],
        json!({"in_use": 5, "limit": 5, "reserved": 0})
    );
    // Lowering below usage needs force.
    let (code, e) = admin
        .request(
            Method::PUT,
            "/os-quota-sets/p1",
            Some(json!({"quota_set": {"instances": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(code, 400);
    assert_eq!(
        e["badRequest"]["message"],
        "Quota limit 2 for instances must be greater than or equal to already used and reserved 5."
    );

    // A deleted server gives its room back.
    alice.wait_built(&accepted, WAIT).await.unwrap();
    alice.delete_server(accepted[0]).await.unwrap();
    alice.wait_gone(&accepted[..1], WAIT).await.unwrap();
    alice
        .create_server("room-again", "1", demo_image_id())
        .await
        .unwrap();

    // Cores are counted too (m1.large has 4 vCPUs).
    let (code, _) = admin
        .request(
            Method::PUT,
            "/os-quota-sets/p1",
            Some(json!({"quota_set": {"instances": 50, "cores": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(code, 200);
    let body = json!({"server": {"name": "big", "flavorRef": "4",
        "imageRef": demo_image_id().to_string(), "networks": "none"}});
    let (code, e) = alice
        .request(Method::POST, "/servers", Some(body))
        .await
        .unwrap();
    assert_eq!(code, 403, "{e}");
    assert_eq!(
        e["forbidden"]["message"],
        "Quota exceeded for cores: Requested 4, but already used 5 of 7 cores"
    );

    // Back to the defaults.
    let (code, _) = admin
        .request(Method::DELETE, "/os-quota-sets/p1", None)
        .await
        .unwrap();
    assert_eq!(code, 202);
    let (_, q) = alice
        .request(Method::GET, "/os-quota-sets/p1", None)
        .await
        .unwrap();
    assert_eq!(q["quota_set"]["instances"], 10);
    let (_, d) = alice
        .request(Method::GET, "/os-quota-sets/p1/defaults", None)
        .await
        .unwrap();
    assert_eq!(d["quota_set"]["cores"], 20);

    // A multiple create is admitted whole up to what fits, or not at all
    // below min_count (5 of 10 used).
    let multi = |min: u32, max: u32| {
        json!({"server": {"name": "many", "flavorRef": "1", "min_count": min, "max_count": max,
            "imageRef": demo_image_id().to_string(), "networks": "none"}})
    };
    let (code, e) = alice
        .request(Method::POST, "/servers", Some(multi(6, 8)))
        .await
        .unwrap();
    assert_eq!(code, 403, "{e}");
    assert_eq!(
        e["forbidden"]["message"],
        "Quota exceeded for instances: Requested 6-8, but already used 5 of 10 instances"
    );
    assert_eq!(alice.servers_detail().await.unwrap().len(), 5);
    let (code, e) = alice
        .request(Method::POST, "/servers", Some(multi(2, 8)))
        .await
        .unwrap();
    assert_eq!(code, 202, "{e}");
    assert_eq!(alice.servers_detail().await.unwrap().len(), 10);
    c.stop().await;
}
