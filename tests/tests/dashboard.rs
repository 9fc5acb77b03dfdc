//! The web console in a real browser: headless Chromium over WebDriver
//! (Debian's `chromium` and `chromium-driver`) against a real `novalog`
//! on the embedded log, with keystone tokens and the default users
//! (`demo`/`demo` member of `demo`, `admin`/`admin`).
//!
//! - demo signs in, creates a server from the form, sees it turn ACTIVE
//!   in the list without the page reloading, stops it, and finds on its
//!   timeline the create, schedule, spawn and stop records in order;
//! - demo never sees admin's server nor the hosts page;
//! - admin signs in, disables a host and sees it marked disabled.
//!
//! Screenshots of every page are saved under the target directory
//! (`<target>/tmp/dashboard-screenshots`). Without the browser the test
//! skips, unless `NOVALOG_REQUIRE_BROWSER` is set, as `make test` sets it.

use std::path::PathBuf;
use std::time::Duration;

use novalog_all_in_one::System;
use novalog_tests::webdriver::{self, Browser};
use novalog_tests::{demo_image_id, test_config};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots")
}

async fn token(http: &reqwest::Client, base: &str, user: &str) -> String {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": user}}},
        "scope": {"project": {"name": user, "domain": {"id": "default"}}},
    }});
    let resp = http
        .post(format!("{base}/identity/v3/auth/tokens"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "token for {user}");
    resp.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn sign_in(b: &Browser, base: &str, user: &str) -> anyhow::Result<()> {
    b.goto(&format!("{base}/dashboard/")).await?;
    b.fill("#login-user", user).await?;
    b.fill("#login-password", user).await?;
    b.fill("#login-project", user).await?;
    b.click("#login-submit").await?;
    b.wait_for(
        "signed in",
        "return !document.querySelector('#nav').hidden",
        WAIT,
        |v| v == &json!(true),
    )
    .await?;
    Ok(())
}

/// The servers in the list: `[id, name, status]`.
const LIST: &str = "return [...document.querySelectorAll('#servers-body tr')]
    .map(r => [r.dataset.id, r.dataset.name, r.querySelector('[data-col=status]').textContent])";

fn has_row(v: &Value, name: &str, status: &str) -> bool {
    v.as_array()
        .is_some_and(|rows| rows.iter().any(|r| r[1] == name && r[2] == status))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_follows_a_server_from_create_to_stop_and_an_admin_disables_a_host() {
    if !webdriver::available() {
        if std::env::var_os("NOVALOG_REQUIRE_BROWSER").is_some() {
            panic!("chromium or chromedriver missing: run scripts/deps.sh test");
        }
        eprintln!("skipped: chromium and chromium-driver are not installed (scripts/deps.sh test)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.api.auth_strategy = "keystone".into();
    cfg.identity.password_hash_rounds = 1_000;
    cfg.compute.fake_hosts = 3;
    let system = System::start(&cfg, None).await.unwrap();
    let base = format!("http://{}", system.api_addr);
    let shots = screenshots();
    let http = reqwest::Client::new();

    // An administrator's server, which demo must never see.
    let admin = token(&http, &base, "admin").await;
    let r = http
        .post(format!("{base}/v2.1/servers"))
        .header("X-Auth-Token", &admin)
        .header("OpenStack-API-Version", "compute 2.37")
        .json(&json!({"server": {"name": "admins-own", "flavorRef": "1",
            "imageRef": demo_image_id(), "networks": "none"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let admins: Value = r.json().await.unwrap();
    let admins_id = admins["server"]["id"].as_str().unwrap().to_owned();

    let b = Browser::start().await.unwrap();
    let run = async {
        // demo signs in.
        b.goto(&format!("{base}/dashboard/")).await?;
        b.find("#login-user", WAIT).await?;
        b.screenshot(&shots, "01-login").await?;
        sign_in(&b, &base, "demo").await?;

        // No hosts page for a member: no link, and the page refuses.
        let hosts_link = b
            .eval(
                "return document.querySelector('a[data-page=hosts]').offsetParent !== null",
                json!([]),
            )
            .await?;
        assert_eq!(hosts_link, json!(false), "demo sees no hosts link");

        // Creates a server from the form.
        b.click("#create summary").await?;
        b.wait_for(
            "the create form's choices",
            "return document.querySelectorAll('#c-image option').length",
            WAIT,
            |v| v.as_u64() > Some(0),
        )
        .await?;
        b.fill("#c-name", "vm-console").await?;
        // The page must not reload from here on: a mark on the window
        // would be lost.
        b.eval("window.__kept = 'yes'", json!([])).await?;
        b.click("#create-submit").await?;
        b.wait_for("the server in BUILD or ACTIVE", LIST, WAIT, |v| {
            has_row(v, "vm-console", "BUILD") || has_row(v, "vm-console", "ACTIVE")
        })
        .await?;
        let list = b
            .wait_for("the server ACTIVE", LIST, WAIT, |v| {
                has_row(v, "vm-console", "ACTIVE")
            })
            .await?;
        assert_eq!(
            b.eval("return window.__kept", json!([])).await?,
            json!("yes"),
            "the list was updated without reloading the page"
        );
        assert!(
            !list.to_string().contains(&admins_id),
            "demo's list holds admin's server: {list}"
        );
        b.screenshot(&shots, "02-servers").await?;
        let id = list
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r[1] == "vm-console")
            .unwrap()[0]
            .as_str()
            .unwrap()
            .to_owned();

        // Its page: start is refused with Nova's 409 message, stop is not.
        b.click(&format!("#servers-body tr[data-id='{id}'] a"))
            .await?;
        b.find("#server-actions button[data-action=stop]", WAIT)
            .await?;
        let offers = b
            .eval(
                "return Object.fromEntries([...document.querySelectorAll('#server-actions button')]
                    .map(x => [x.dataset.action, [x.getAttribute('aria-disabled'), x.title]]))",
                json!([]),
            )
            .await?;
        assert_eq!(offers["stop"][0], "false", "{offers}");
        assert_eq!(offers["start"][0], "true", "{offers}");
        assert!(
            offers["start"][1]
                .as_str()
                .unwrap()
                .contains("Cannot 'start' instance"),
            "{offers}"
        );
        b.click("#server-actions button[data-action=stop]").await?;
        b.wait_for(
            "the server SHUTOFF",
            "const d = document.querySelector('[data-field=Status]'); return d && d.textContent",
            WAIT,
            |v| v == "SHUTOFF",
        )
        .await?;

        // Its timeline: create, schedule, spawn, then the stop, in order.
        let order = b
            .wait_for(
                "the stop on the timeline",
                "return [...document.querySelectorAll('#timeline-body tr')]
                    .map(r => [r.dataset.type, r.dataset.task])",
                WAIT,
                |v| {
                    v.as_array().is_some_and(|rows| {
                        rows.iter().any(|r| r[1] == "powering-off")
                            && rows.iter().any(|r| r[0] == "InstanceTaskCompleted")
                    })
                },
            )
            .await?;
        let rows = order.as_array().unwrap();
        let at = |pred: &dyn Fn(&Value) -> bool| rows.iter().position(pred);
        let created = at(&|r| r[0] == "InstanceCreated").expect("create");
        let scheduled = at(&|r| r[0] == "InstanceScheduled").expect("schedule");
        let spawned = at(&|r| r[0] == "InstanceSpawned").expect("spawn");
        let stopped = at(&|r| r[1] == "powering-off").expect("stop");
        assert!(
            created < scheduled && scheduled < spawned && spawned < stopped,
            "out of order: {order}"
        );
        let steps = b
            .eval(
                "return [...document.querySelectorAll('#gantt .step')].map(s => s.dataset.step)",
                json!([]),
            )
            .await?;
        for step in ["scheduling", "spawning", "powering-off"] {
            assert!(
                steps.as_array().unwrap().iter().any(|s| s == step),
                "no {step} step: {steps}"
            );
        }
        b.screenshot(&shots, "03-server-timeline").await?;

        // The hosts page refuses demo, and so does its read.
        b.goto(&format!("{base}/dashboard/#/hosts")).await?;
        b.wait_for(
            "the hosts page refused",
            "const a = document.querySelector('main [role=alert]'); return a && a.textContent",
            WAIT,
            |v| v.as_str().is_some_and(|s| s.contains("administrators")),
        )
        .await?;
        let demo = token(&http, &base, "demo").await;
        let r = http
            .get(format!("{base}/dashboard/api/hosts"))
            .header("X-Auth-Token", &demo)
            .send()
            .await?;
        assert_eq!(r.status(), 403);

        // Usage and audit pages, for the record.
        b.goto(&format!("{base}/dashboard/#/usage")).await?;
        b.wait_for(
            "demo's bill",
            "return document.querySelector('#usage-total').textContent",
            WAIT,
            |v| v.as_str().is_some_and(|s| s.starts_with("Project ")),
        )
        .await?;
        b.screenshot(&shots, "04-usage").await?;
        b.goto(&format!("{base}/dashboard/#/audit/{id}")).await?;
        b.find("#audit-body tr", WAIT).await?;
        b.screenshot(&shots, "05-audit").await?;

        // admin: every project's servers, and a host disabled.
        b.click("#logout").await?;
        b.find("#login-user", WAIT).await?;
        sign_in(&b, &base, "admin").await?;
        b.wait_for("both servers for admin", LIST, WAIT, |v| {
            let s = v.to_string();
            s.contains(&admins_id) && s.contains("vm-console")
        })
        .await?;
        b.goto(&format!("{base}/dashboard/#/hosts")).await?;
        let host = b
            .wait_for(
                "the hosts",
                "const r = document.querySelector('#hosts-body tr'); return r && r.dataset.host",
                WAIT,
                |v| v.is_string(),
            )
            .await?;
        let host = host.as_str().unwrap().to_owned();
        b.click(&format!(
            "#hosts-body tr[data-host='{host}'] button[data-host-action=disable]"
        ))
        .await?;
        b.wait_for(
            "the host marked disabled",
            &format!(
                "const r = document.querySelector(\"#hosts-body tr[data-host='{host}']\");
                 return r && [r.className, r.querySelector('[data-col=status]').textContent]"
            ),
            WAIT,
            |v| v[0] == "disabled" && v[1].as_str().is_some_and(|s| s.starts_with("disabled")),
        )
        .await?;
        b.screenshot(&shots, "06-hosts").await?;
        let services: Value = http
            .get(format!("{base}/v2.1/os-services?host={host}"))
            .header("X-Auth-Token", &admin)
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(services["services"][0]["status"], "disabled", "{services}");
        anyhow::Ok(())
    };
    let outcome = run.await;
    if outcome.is_err() {
        let _ = b.screenshot(&shots, "failure").await;
    }
    b.quit().await;
    system.stop().await.unwrap();
    outcome.unwrap();
    eprintln!("screenshots in {}", shots.display());
}
