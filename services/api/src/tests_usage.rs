//! Router tests of the usage routes (`/billing/v1`,
//! `os-simple-tenant-usage`) over a scripted ledger with known times, in
//! process and through novalog-billing's internal listener.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use novalog_billing::service::Ledger;
use novalog_billing::{BillableState, FlavorSpec, Interval, period::parse_time};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::usage::UsageSource;
use crate::tests::{ADMIN, Harness, MEMBER, OTHER};

const READER: &str = "reader:p1";
const H: i64 = 3_600_000;

fn t(s: &str) -> i64 {
    parse_time(s).unwrap()
}

fn flavor(id: &str, vcpus: u32, ram_mb: u64, disk_gb: u64) -> FlavorSpec {
    FlavorSpec {
        id: id.into(),
        name: format!("m1.{id}"),
        vcpus,
        ram_mb,
        disk_gb,
        ephemeral_gb: 0,
    }
}

pub(crate) const A: u128 = 0xa;
pub(crate) const B: u128 = 0xb;
pub(crate) const C: u128 = 0xc;

fn iv(
    server: u128,
    project: &str,
    f: &FlavorSpec,
    state: BillableState,
    start: &str,
    end: Option<&str>,
) -> Interval {
    Interval {
        server_id: Uuid::from_u128(server),
        server_name: format!("vm-{server:x}"),
        project_id: project.into(),
        user_id: "alice".into(),
        flavor: f.clone(),
        host: Some("fake-1".into()),
        state,
        start_ms: t(start),
        end_ms: end.map(t),
    }
}

/// On 2026-12-01 (UTC):
/// - A (p1, tiny: 1 vCPU, 512 MiB, 1 GB): building 00:00:00–00:00:30,
///   running until 02:00:30, stopped until 03:00:30, then deleted;
/// - B (p1, small: 1 vCPU, 2048 MiB, 20 GB): running from 01:00, still;
/// - C (p2, tiny): running 00:00–01:00, then deleted.
pub(crate) fn scripted() -> Vec<Interval> {
    use BillableState::*;
    let tiny = flavor("tiny", 1, 512, 1);
    let small = flavor("small", 1, 2048, 20);
    vec![
        iv(
            A,
            "p1",
            &tiny,
            Building,
            "2026-12-01T00:00:00",
            Some("2026-12-01T00:00:30"),
        ),
        iv(
            A,
            "p1",
            &tiny,
            Running,
            "2026-12-01T00:00:30",
            Some("2026-12-01T02:00:30"),
        ),
        iv(
            A,
            "p1",
            &tiny,
            Stopped,
            "2026-12-01T02:00:30",
            Some("2026-12-01T03:00:30"),
        ),
        iv(B, "p1", &small, Running, "2026-12-01T01:00:00", None),
        iv(
            C,
            "p2",
            &tiny,
            Running,
            "2026-12-01T00:00:00",
            Some("2026-12-01T01:00:00"),
        ),
    ]
}

async fn harness() -> Harness {
    let ledger: Arc<dyn UsageSource> = Arc::new(Ledger::of(scripted()));
    Harness::using(|_| {}, Some(ledger)).await
}

const WINDOW: &str = "start=2026-12-01T00:00:00&end=2026-12-01T04:00:00";

fn id(n: u128) -> String {
    Uuid::from_u128(n).to_string()
}

// ---- /billing/v1 ----

#[tokio::test]
async fn a_projects_bill_has_exact_quantities_and_amounts() {
    let h = harness().await;
    let r = h
        .call(
            Method::GET,
            &format!("/billing/v1/projects/p1?{WINDOW}"),
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let b = &r.body["bill"];
    assert_eq!(b["project_id"], "p1");
    assert_eq!(b["start"], "2026-12-01T00:00:00.000Z");
    assert_eq!(b["end"], "2026-12-01T04:00:00.000Z");
    assert_eq!(b["currency"], "USD");
    // Running tiny 0.0126/h × 2 h = 0.0252; stopped × 0.5 for 1 h =
    // 0.0063; running small 0.022/h × 3 h = 0.066: 0.0975 → 0.10.
    assert_eq!(b["total"], "0.10");
    let lines: Vec<(String, &str, i64, &str, &str)> = b["line_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["server_id"].as_str().unwrap().to_owned(),
                l["state"].as_str().unwrap(),
                l["milliseconds"].as_i64().unwrap(),
                l["seconds"].as_str().unwrap(),
                l["amount"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            (id(A), "running", 2 * H, "7200.000", "0.03"),
            (id(A), "stopped", H, "3600.000", "0.01"),
            (id(A), "building", 30_000, "30.000", "0.00"),
            (id(B), "running", 3 * H, "10800.000", "0.07"),
        ]
    );
    let l = &b["line_items"][3];
    assert_eq!(l["flavor"]["name"], "m1.small");
    assert_eq!(l["flavor"]["ram_mb"], 2048);
    assert_eq!(l["priced_by"], "resources");
    assert!(l["amount"].is_string(), "money is never a float");
    h.stop().await;
}

#[tokio::test]
async fn bills_as_csv_have_a_header_and_a_row_per_line_item() {
    let h = harness().await;
    let r = h
        .call(
            Method::GET,
            &format!("/billing/v1/projects/p1?{WINDOW}&format=csv"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "text/csv; charset=utf-8");
    let text = r.body.as_str().unwrap();
    let rows: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 5, "{text}");
    assert_eq!(rows[0], crate::controllers::billing::CSV_HEADER);
    assert_eq!(
        rows[1],
        format!(
            "p1,2026-12-01T00:00:00.000Z,2026-12-01T04:00:00.000Z,{},vm-a,alice,tiny,m1.tiny,1,512,1,0,running,7200.000,resources,USD,0.03",
            id(A)
        )
    );
    assert!(
        rows[4].ends_with(",running,10800.000,resources,USD,0.07"),
        "{}",
        rows[4]
    );

    let r = h
        .call(
            Method::GET,
            &format!("/billing/v1/projects?{WINDOW}&format=csv"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body.as_str().unwrap(),
        "project_id,start,end,currency,total\r\n\
         p1,2026-12-01T00:00:00.000Z,2026-12-01T04:00:00.000Z,USD,0.10\r\n\
         p2,2026-12-01T00:00:00.000Z,2026-12-01T04:00:00.000Z,USD,0.01\r\n"
    );
    h.stop().await;
}

#[tokio::test]
async fn billing_policy_admin_all_members_their_own() {
    let h = harness().await;
    let show = |p: &str| format!("/billing/v1/projects/{p}?{WINDOW}");
    let list = format!("/billing/v1/projects?{WINDOW}");
    for (token, uri, status) in [
        (None, show("p1"), StatusCode::UNAUTHORIZED),
        (None, list.clone(), StatusCode::UNAUTHORIZED),
        (Some(MEMBER), show("p1"), StatusCode::OK),
        (Some(READER), show("p1"), StatusCode::OK),
        (Some(OTHER), show("p1"), StatusCode::FORBIDDEN),
        (Some(MEMBER), show("p2"), StatusCode::FORBIDDEN),
        (Some(MEMBER), list.clone(), StatusCode::FORBIDDEN),
        (Some(ADMIN), show("p2"), StatusCode::OK),
        (Some(ADMIN), list.clone(), StatusCode::OK),
        // Unknown to everyone (noauth2: no usage, not the caller's).
        (Some(ADMIN), show("nobody"), StatusCode::NOT_FOUND),
        // A member's own project with no usage is known: an empty bill.
        (Some("carol:p9"), show("p9"), StatusCode::OK),
    ] {
        let r = h.call(Method::GET, &uri, token, None).await;
        assert_eq!(r.status, status, "{token:?} {uri}: {}", r.body);
        match status {
            StatusCode::UNAUTHORIZED => assert_eq!(r.body["error"]["code"], 401),
            StatusCode::FORBIDDEN => assert!(
                r.body["forbidden"]["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("Policy doesn't allow novalog:billing:"),
                "{}",
                r.body
            ),
            StatusCode::NOT_FOUND => assert_eq!(
                r.body["itemNotFound"]["message"],
                "Project nobody could not be found."
            ),
            _ => {}
        }
    }
    let r = h.call(Method::GET, &list, Some(ADMIN), None).await;
    let totals: Vec<(&str, &str)> = r.body["bills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["project_id"].as_str().unwrap(),
                b["total"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(totals, [("p1", "0.10"), ("p2", "0.01")]);
    let r = h
        .call(Method::GET, &show("p9"), Some("carol:p9"), None)
        .await;
    assert_eq!(r.body["bill"]["total"], "0.00");
    assert_eq!(r.body["bill"]["line_items"], Value::Array(vec![]));
    h.stop().await;
}

#[tokio::test]
async fn billing_bad_periods_are_400_in_novas_shape() {
    let h = harness().await;
    for q in [
        "start=2026-12-02T00:00:00&end=2026-12-01T00:00:00",
        "start=last-tuesday",
        "end=2026-02-30T00:00:00",
        "format=xml",
        "fuzz=1",
    ] {
        for uri in [
            format!("/billing/v1/projects/p1?{q}"),
            format!("/billing/v1/projects?{q}"),
        ] {
            let r = h.call(Method::GET, &uri, Some(ADMIN), None).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.body);
            assert_eq!(r.body["badRequest"]["code"], 400, "{uri}");
        }
    }
    let r = h
        .call(
            Method::GET,
            "/billing/v1/projects/p1?start=2026-12-02T00:00:00&end=2026-12-01T00:00:00",
            Some(MEMBER),
            None,
        )
        .await;
    assert_eq!(
        r.body["badRequest"]["message"],
        "Invalid start time. The start time cannot occur after the end time."
    );
    h.stop().await;
}

/// Two adjacent periods' quantities add up to the period they split.
#[tokio::test]
async fn adjacent_periods_add_up_to_the_whole() {
    let h = harness().await;
    let ms = |body: &Value| -> i64 {
        body["bill"]["line_items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["milliseconds"].as_i64().unwrap())
            .sum()
    };
    let get = |q: String| {
        let h = &h;
        async move {
            h.call(
                Method::GET,
                &format!("/billing/v1/projects/p1?{q}"),
                Some(ADMIN),
                None,
            )
            .await
            .body
        }
    };
    let whole = get(WINDOW.to_owned()).await;
    let a = get("start=2026-12-01T00:00:00&end=2026-12-01T01:59:59.999".into()).await;
    let b = get("start=2026-12-01T01:59:59.999&end=2026-12-01T04:00:00".into()).await;
    assert_eq!(ms(&a) + ms(&b), ms(&whole));
    assert_eq!(ms(&whole), 6 * H + 30_000);
    h.stop().await;
}
