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

// ---- os-simple-tenant-usage ----

const V240: &[(&str, &str)] = &[("OpenStack-API-Version", "compute 2.40")];

async fn get_at(
    h: &Harness,
    uri: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> crate::tests::Reply {
    h.send(Method::GET, uri, Some(token), headers, None).await
}

/// The scripted cloud's hours, computed by hand: A ran 2 h and was
/// stopped 1 h (its 30 s of building do not count), B ran 3 h of the
/// window, C 1 h.
#[tokio::test]
async fn tenant_usage_gives_the_hand_computed_hours() {
    let h = harness().await;
    let r = get_at(
        &h,
        &format!("/v2.1/os-simple-tenant-usage/p1?{WINDOW}"),
        MEMBER,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let u = &r.body["tenant_usage"];
    assert_eq!(u["tenant_id"], "p1");
    assert_eq!(u["start"], "2026-12-01T00:00:00.000000");
    assert_eq!(u["stop"], "2026-12-01T04:00:00.000000");
    assert_eq!(u["total_hours"], 6.0);
    assert_eq!(u["total_vcpus_usage"], 6.0);
    assert_eq!(u["total_memory_mb_usage"], 512.0 * 3.0 + 2048.0 * 3.0);
    assert_eq!(u["total_local_gb_usage"], 3.0 + 20.0 * 3.0);
    let a = &u["server_usages"][0];
    assert_eq!(a["instance_id"], id(A));
    assert_eq!(a["hours"], 3.0);
    assert_eq!(a["flavor"], "m1.tiny");
    assert_eq!(a["name"], "vm-a");
    assert_eq!(a["started_at"], "2026-12-01T00:00:30.000000");
    assert_eq!(a["ended_at"], "2026-12-01T03:00:30.000000");
    assert_eq!(a["state"], "terminated");
    assert_eq!(a["uptime"], 3 * 3600);
    assert_eq!(a["vcpus"], 1);
    assert_eq!(a["memory_mb"], 512);
    assert_eq!(a["local_gb"], 1);
    assert_eq!(a["tenant_id"], "p1");
    let b = &u["server_usages"][1];
    assert_eq!(b["instance_id"], id(B));
    assert_eq!(b["hours"], 3.0);
    assert_eq!(b["state"], "active");
    assert_eq!(b["ended_at"], Value::Null);
    let keys: Vec<&String> = a.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "ended_at",
            "flavor",
            "hours",
            "instance_id",
            "local_gb",
            "memory_mb",
            "name",
            "started_at",
            "state",
            "tenant_id",
            "uptime",
            "vcpus"
        ]
    );
    assert!(r.body.get("tenant_usage_links").is_none(), "before 2.40");

    // Half an hour of A's running inside a window: 0.5 h exactly.
    let r = get_at(
        &h,
        "/v2.1/os-simple-tenant-usage/p1?start=2026-12-01T00:30:30&end=2026-12-01T01:00:30",
        ADMIN,
        &[],
    )
    .await;
    assert_eq!(r.body["tenant_usage"]["server_usages"][0]["hours"], 0.5);
    // B from 01:00: A's half hour plus 30 s of B.
    assert_eq!(r.body["tenant_usage"]["total_hours"], 0.5 + 30.0 / 3600.0);

    // Nobody's usage: `{}`, as Nova.
    let r = get_at(
        &h,
        &format!("/v2.1/os-simple-tenant-usage/p9?{WINDOW}"),
        "carol:p9",
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, serde_json::json!({"tenant_usage": {}}));
    h.stop().await;
}

/// A tenant usage's hours are the milliseconds of its `/billing/v1` line
/// items in the states usage counts.
#[tokio::test]
async fn tenant_usage_hours_equal_the_billing_quantities() {
    let h = harness().await;
    let usage = get_at(
        &h,
        &format!("/v2.1/os-simple-tenant-usage/p1?{WINDOW}"),
        ADMIN,
        &[],
    )
    .await
    .body;
    let bill = get_at(&h, &format!("/billing/v1/projects/p1?{WINDOW}"), ADMIN, &[])
        .await
        .body;
    for s in usage["tenant_usage"]["server_usages"].as_array().unwrap() {
        let ms: i64 = bill["bill"]["line_items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["server_id"] == s["instance_id"])
            .filter(|l| {
                novalog_billing::usage::counts(
                    BillableState::parse(l["state"].as_str().unwrap()).unwrap(),
                )
            })
            .map(|l| l["milliseconds"].as_i64().unwrap())
            .sum();
        assert_eq!(s["hours"].as_f64().unwrap(), ms as f64 / H as f64, "{s}");
    }
    h.stop().await;
}

#[tokio::test]
async fn tenant_usage_index_is_for_admins_and_pages_from_2_40() {
    let h = harness().await;
    let r = get_at(
        &h,
        &format!("/v2.1/os-simple-tenant-usage?{WINDOW}"),
        ADMIN,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let us = r.body["tenant_usages"].as_array().unwrap();
    assert_eq!(us.len(), 2);
    assert_eq!(us[0]["tenant_id"], "p1");
    assert_eq!(us[0]["total_hours"], 6.0);
    assert!(us[0].get("server_usages").is_none(), "not detailed");
    assert_eq!(us[1]["tenant_id"], "p2");
    assert_eq!(us[1]["total_hours"], 1.0);
    // What openstackclient sends is not `1`: not detailed, as in Nova.
    let r = get_at(
        &h,
        &format!("/v2.1/os-simple-tenant-usage?{WINDOW}&detailed=True"),
        ADMIN,
        V240,
    )
    .await;
    assert!(r.body["tenant_usages"][0].get("server_usages").is_none());

    // 2.40: two server usages a page, a link to the next.
    let first = format!("/v2.1/os-simple-tenant-usage?{WINDOW}&detailed=1&limit=2");
    let r = get_at(&h, &first, ADMIN, V240).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let us = r.body["tenant_usages"].as_array().unwrap();
    assert_eq!(us.len(), 1);
    assert_eq!(us[0]["server_usages"].as_array().unwrap().len(), 2);
    let next = r.body["tenant_usages_links"][0]["href"].as_str().unwrap();
    assert_eq!(r.body["tenant_usages_links"][0]["rel"], "next");
    assert_eq!(
        next,
        format!(
            "http://cloud.test:8774/v2.1/os-simple-tenant-usage?detailed=1&end=2026-12-01T04%3A00%3A00&limit=2&start=2026-12-01T00%3A00%3A00&marker={}",
            id(B)
        )
    );
    let path = next.strip_prefix("http://cloud.test:8774").unwrap();
    let r = get_at(&h, path, ADMIN, V240).await;
    let us = r.body["tenant_usages"].as_array().unwrap();
    assert_eq!(us.len(), 1);
    assert_eq!(us[0]["tenant_id"], "p2");
    assert_eq!(us[0]["server_usages"][0]["instance_id"], id(C));
    assert!(
        r.body.get("tenant_usages_links").is_none(),
        "a short page is the last"
    );

    // Show pages the same way, its links under tenant_usage_links.
    let r = get_at(
        &h,
        &format!("/v2.1/os-simple-tenant-usage/p1?{WINDOW}&limit=1"),
        ADMIN,
        V240,
    )
    .await;
    assert_eq!(
        r.body["tenant_usage"]["server_usages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        r.body["tenant_usage_links"][0]["href"]
            .as_str()
            .unwrap()
            .contains("/v2.1/os-simple-tenant-usage/p1?end="),
        "{}",
        r.body
    );
    h.stop().await;
}

#[tokio::test]
async fn tenant_usage_policy_and_bad_input() {
    let h = harness().await;
    let index = format!("/v2.1/os-simple-tenant-usage?{WINDOW}");
    let show = |p: &str| format!("/v2.1/os-simple-tenant-usage/{p}?{WINDOW}");
    let r = h.call(Method::GET, &index, None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for (token, uri, status) in [
        (MEMBER, index.clone(), StatusCode::FORBIDDEN),
        (READER, index.clone(), StatusCode::FORBIDDEN),
        (READER, show("p1"), StatusCode::OK),
        (OTHER, show("p1"), StatusCode::FORBIDDEN),
        (ADMIN, show("p2"), StatusCode::OK),
    ] {
        let r = get_at(&h, &uri, token, &[]).await;
        assert_eq!(r.status, status, "{token} {uri}: {}", r.body);
    }
    let r = get_at(&h, &index, MEMBER, &[]).await;
    assert_eq!(
        r.body["forbidden"]["message"],
        "Policy doesn't allow os_compute_api:os-simple-tenant-usage:list to be performed."
    );
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let bad: &[Case<'_>] = &[
        (
            "start=2026-12-02T00:00:00&end=2026-12-01T00:00:00",
            &[],
            "Invalid start time. The start time cannot occur after the end time.",
        ),
        (
            "start=2026-12-01T00:00:00&end=2026-12-01T00:00:00",
            &[],
            "Invalid start time. The start time cannot occur after the end time.",
        ),
        (
            "start=2026-12-01",
            &[],
            "Invalid datetime string: Datetime is in invalid format",
        ),
        (
            "end=2026-12-01T00:00:00Z",
            &[],
            "Invalid datetime string: Datetime is in invalid format",
        ),
        (
            "limit=x",
            V240,
            "Invalid input for query parameters limit. Value: x. 'x' does not match '^[0-9]*$'",
        ),
        (
            "limit=-1",
            V240,
            "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'",
        ),
        (
            "marker=nope&start=2026-12-01T00:00:00",
            V240,
            "Marker nope could not be found.",
        ),
    ];
    for (q, headers, message) in bad {
        for uri in [
            format!("/v2.1/os-simple-tenant-usage?{q}"),
            format!("/v2.1/os-simple-tenant-usage/p1?{q}"),
        ] {
            let r = get_at(&h, &uri, ADMIN, headers).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.body);
            assert_eq!(r.body["badRequest"]["message"], *message, "{uri}");
        }
    }
    // Unknown parameters are ignored (until 2.75, beyond this API's
    // maximum); before 2.40 so are limit and marker.
    let r = get_at(
        &h,
        &format!("{index}&fuzz=1&limit=-1&marker=nope"),
        ADMIN,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    h.stop().await;
}

// ---- the read path across processes ----

/// The API reading novalog-billing's internal listener answers exactly
/// what it answers in process.
#[tokio::test]
async fn usage_read_from_the_billing_listener_is_the_same() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (trigger, shutdown) = novalog_runtime::Shutdown::new();
    let served = tokio::spawn(novalog_billing::read::serve(
        listener,
        Arc::new(Ledger::of(scripted())),
        shutdown,
    ));
    let remote = Harness::using(|c| c.billing.endpoint = format!("http://{addr}"), None).await;
    let local = harness().await;
    for uri in [
        format!("/billing/v1/projects/p1?{WINDOW}"),
        format!("/billing/v1/projects?{WINDOW}"),
        format!("/v2.1/os-simple-tenant-usage?{WINDOW}&detailed=1"),
        format!("/v2.1/os-simple-tenant-usage/p2?{WINDOW}"),
    ] {
        let (a, b) = (
            get_at(&remote, &uri, ADMIN, &[]).await,
            get_at(&local, &uri, ADMIN, &[]).await,
        );
        assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.body);
        assert_eq!(a.body, b.body, "{uri}");
    }
    remote.stop().await;
    local.stop().await;
    trigger.trigger();
    served.await.unwrap().unwrap();
}

/// A billing service that is not there is a 503 in Nova's shape, at
/// once; one that accepts and never answers is a 503 after the bound.
#[tokio::test]
async fn an_unreachable_billing_service_is_503() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    // Accepts and holds connections without a word.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    for addr in [closed, silent_addr] {
        let h = Harness::using(|c| c.billing.endpoint = format!("http://{addr}"), None).await;
        for uri in [
            format!("/billing/v1/projects/{}?{WINDOW}", "alice"),
            format!("/v2.1/os-simple-tenant-usage?{WINDOW}"),
        ] {
            let token = if uri.starts_with("/billing") {
                "alice"
            } else {
                ADMIN
            };
            let r = get_at(&h, &uri, token, &[]).await;
            assert_eq!(
                r.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{addr} {uri}: {}",
                r.body
            );
            assert_eq!(r.body["serviceUnavailable"]["code"], 503);
            assert!(
                r.body["serviceUnavailable"]["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("The billing service is unavailable"),
                "{}",
                r.body
            );
        }
        h.stop().await;
    }
    holder.abort();
}
