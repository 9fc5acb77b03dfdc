//! Billing end to end, every service in one process, on the embedded log
//! and on Kafka: the billing service meters what the conductor did.

use std::time::{Duration, Instant};

use novalog_billing::{BillableState, Interval};
use novalog_tests::{Backend, Cluster, demo_image_id, on_both_logs};
use serde_json::json;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

on_both_logs!(a_server_s_life_is_metered_by_the_billing_service);

/// The server's intervals once `done` holds for them (panics after WAIT).
async fn wait_intervals(
    c: &Cluster,
    id: Uuid,
    done: impl Fn(&[Interval]) -> bool,
) -> Vec<Interval> {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut mine: Vec<Interval> = c
            .system
            .billing
            .intervals("admin")
            .into_iter()
            .filter(|i| i.server_id == id)
            .collect();
        mine.sort_by_key(|i| i.start_ms);
        if done(&mine) {
            return mine;
        }
        assert!(
            Instant::now() < deadline,
            "never metered as expected: {mine:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_server_s_life_is_metered_by_the_billing_service(backend: Backend) {
    let c = Cluster::start(&backend, |_| {}).await;
    let admin = &c.admin;
    let id = admin
        .create_server("metered", "1", demo_image_id())
        .await
        .unwrap();
    admin.wait_status(id, "ACTIVE", WAIT).await;
    let (status, _, _) = admin
        .server_action(id, json!({"os-stop": null}))
        .await
        .unwrap();
    assert_eq!(status, 202);
    admin.wait_status(id, "SHUTOFF", WAIT).await;
    admin.delete_server(id).await.unwrap();
    admin.wait_gone(&[id], WAIT).await.unwrap();
    // Deleted: every interval closed.
    let mine = wait_intervals(&c, id, |is| {
        !is.is_empty() && is.iter().all(|i| i.end_ms.is_some())
    })
    .await;
    let states: Vec<BillableState> = mine
        .iter()
        .map(|i| i.state)
        .filter(|s| *s != BillableState::Building)
        .collect();
    assert_eq!(states, [BillableState::Running, BillableState::Stopped]);
    for w in mine.windows(2) {
        assert_eq!(w[0].end_ms, Some(w[1].start_ms), "intervals abut: {mine:?}");
    }
    let running = mine
        .iter()
        .find(|i| i.state == BillableState::Running)
        .unwrap();
    assert_eq!(running.flavor.id, "1");
    assert!(running.host.is_some());
    c.stop().await;
}
