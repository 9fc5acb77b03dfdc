//! What an operator relies on, checked on the real binaries: `/metrics`
//! moving with a boot, `/healthz` and `/readyz` (also after a restart), one
//! request id followed through the conductor's, the scheduler's and the
//! compute agent's JSON log lines, the access log, strict configuration
//! (`--check-config`, `config-defaults`) and `--help`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use novalog_tests::{Proc, bin_dir, demo_image_id, free_port};
use serde_json::{Value, json};

/// Starts `novalog` (all-in-one) with JSON logs into `log`.
fn start_novalog(data: &Path, port: u16, log: &Path) -> Proc {
    let env = [
        ("NOVALOG_DATA_DIR", data.display().to_string()),
        ("NOVALOG_API__LISTEN", format!("127.0.0.1:{port}")),
        ("NOVALOG_API__AUTH_STRATEGY", "noauth2".to_owned()),
        ("NOVALOG_COMPUTE__FAKE_HOSTS", "2".to_owned()),
        ("NOVALOG_REPORT_INTERVAL", "1".to_owned()),
        ("NOVALOG_LOG_FORMAT", "json".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    Proc::start_logging_to("novalog", &env, log).unwrap()
}

async fn get(http: &reqwest::Client, url: &str) -> Option<(u16, String)> {
    let resp = http.get(url).send().await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.text().await.ok()?))
}

/// Polls `url` until it answers `want`; returns every status seen before.
async fn wait_for(http: &reqwest::Client, url: &str, want: u16) -> Vec<u16> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    loop {
        match get(http, url).await {
            Some((s, _)) if s == want => return seen,
            Some((s, body)) => {
                if s == 503 {
                    assert!(body.contains("catching up"), "503 without a reason: {body}");
                }
                seen.push(s)
            }
            None => {}
        }
        assert!(Instant::now() < deadline, "{url} never answered {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the sample `name{labels}` (labels as rendered, in order),
/// 0 when absent.
fn sample(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The sum of every sample of `name` whose labels contain `label`.
fn sum(metrics: &str, name: &str, label: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The JSON log lines of `log` whose enclosing spans carry `request_id`.
fn lines_of_request(log: &Path, request_id: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["spans"]
                .as_array()
                .is_some_and(|spans| spans.iter().any(|s| s["request_id"] == request_id))
        })
        .collect()
}

fn consumer_of(line: &Value) -> Option<String> {
    line["spans"]
        .as_array()?
        .iter()
        .find_map(|s| s["consumer"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_one_request_followed_through_every_service_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("novalog.jsonl");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut novalog = start_novalog(&data, port, &log);
    wait_for(&http, &format!("{base}/healthz"), 200).await;
    wait_for(&http, &format!("{base}/readyz"), 200).await;
    let before = get(&http, &format!("{base}/metrics")).await.unwrap().1;

    // One boot, its request id from the response.
    let resp = http
        .post(format!("{base}/v2.1/servers"))
        .header("X-Auth-Token", "admin:admin")
        .json(&json!({"server": {"name": "vm1", "flavorRef": "1",
            "imageRef": demo_image_id().to_string(), "networks": "none"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let request_id = resp.headers()["x-openstack-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let server: Value = resp.json().await.unwrap();
    let id: uuid::Uuid = server["server"]["id"].as_str().unwrap().parse().unwrap();
    let client = novalog_tests::Client::admin(format!("127.0.0.1:{port}").parse().unwrap());
    let built = client
        .wait_built(&[id], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(built[&id]["status"], "ACTIVE");

    let after = get(&http, &format!("{base}/metrics")).await.unwrap().1;
    let moved = |what: &str, name: &str, label: &str| {
        let (b, a) = (sum(&before, name, label), sum(&after, name, label));
        assert!(a > b, "{what}: {name}{{{label}}} {b} -> {a}\n{after}");
    };
    moved(
        "the create request",
        "novalog_http_requests_total",
        r#"method="POST",route="/v2.1/servers",status="202""#,
    );
    moved(
        "request latency",
        "novalog_http_request_duration_seconds_count",
        r#"route="/v2.1/servers",status="202""#,
    );
    moved(
        "the build saga",
        "novalog_sagas_total",
        r#"kind="build",outcome="active""#,
    );
    moved(
        "the build saga's duration",
        "novalog_saga_duration_seconds_count",
        r#"kind="build",outcome="active""#,
    );
    moved("builds", "novalog_builds_total", r#"outcome="active""#);
    moved(
        "the conductor's consumer",
        "novalog_records_consumed_total",
        r#"consumer="conductor""#,
    );
    moved(
        "the conductor's outputs",
        "novalog_records_produced_total",
        r#"consumer="conductor""#,
    );
    moved(
        "scheduler decisions",
        "novalog_scheduler_decisions_total",
        r#"outcome="selected""#,
    );
    assert!(
        after.contains("novalog_consumer_lag{consumer=\"conductor\""),
        "{after}"
    );
    assert!(
        sample(&after, r#"novalog_rocksdb_size_bytes{db="log"}"#) > 0.0,
        "{after}"
    );

    // The request id in every service's lines, and one access-log line.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = lines_of_request(&log, &request_id);
        let consumers: Vec<String> = lines.iter().filter_map(consumer_of).collect();
        let has = |prefix: &str| consumers.iter().any(|c| c.starts_with(prefix));
        let access = lines
            .iter()
            .filter(|l| l["fields"]["message"] == "finished processing request")
            .count();
        if has("conductor") && has("scheduler") && has("compute-") && access == 1 {
            for l in &lines {
                if consumer_of(l).is_some() {
                    let span = &l["span"];
                    assert!(
                        span["event_id"].as_str().is_some_and(|e| !e.is_empty()),
                        "{l}"
                    );
                }
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "request {request_id}: consumers {consumers:?}, {access} access lines"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // After a restart the process is alive at once and ready once its
    // consumers have read the log again.
    novalog.kill();
    let _novalog = start_novalog(&data, port, &log);
    wait_for(&http, &format!("{base}/healthz"), 200).await;
    let before_ready = wait_for(&http, &format!("{base}/readyz"), 200).await;
    assert!(
        before_ready.iter().all(|s| *s == 503),
        "only 503 before ready: {before_ready:?}"
    );
    assert_eq!(
        client.server(id).await.unwrap().unwrap()["status"],
        "ACTIVE"
    );
}

fn novalog_bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

const BINARIES: [&str; 5] = [
    "novalog",
    "novalog-api",
    "novalog-conductor",
    "novalog-scheduler",
    "novalog-compute",
];

#[test]
fn check_config_refuses_an_unknown_key_naming_it_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[scheduler]\nmax_attempts = 3\nmax_atempts = 5\n").unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[scheduler]\nmax_attempts = 5\n").unwrap();
    // novalog-replay reads the services' configuration too.
    for bin in BINARIES.into_iter().chain(["novalog-replay"]) {
        let out = Command::new(novalog_bin(bin))
            .args(["--check-config", "--config"])
            .arg(&bad)
            .env_remove("NOVALOG_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bin} accepted {}", bad.display());
        assert!(stderr.contains("max_atempts"), "{bin}: {stderr}");
        assert!(
            stderr.contains(&bad.display().to_string()),
            "{bin}: {stderr}"
        );

        let out = Command::new(novalog_bin(bin))
            .args(["--check-config", "--config"])
            .arg(&good)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{bin}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));
    }
}

#[test]
fn config_defaults_prints_deploy_novalog_toml() {
    let out = Command::new(novalog_bin("novalog"))
        .arg("config-defaults")
        .output()
        .unwrap();
    assert!(out.status.success());
    let deployed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/novalog.toml"),
    )
    .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout) == deployed,
        "deploy/novalog.toml differs from `novalog config-defaults`"
    );
    // And the defaults validate.
    let out = Command::new(novalog_bin("novalog-conductor"))
        .args(["--check-config", "--config"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/novalog.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn help_says_what_each_binary_is_its_config_and_its_flags() {
    for bin in BINARIES {
        let out = Command::new(novalog_bin(bin))
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{bin} --help");
        let help = String::from_utf8_lossy(&out.stdout);
        for needle in [
            "--config",
            "--log-format",
            "--check-config",
            "NOVALOG_<SECTION>__<OPTION>",
            "/metrics",
        ] {
            assert!(
                help.contains(needle),
                "{bin} --help lacks {needle}:\n{help}"
            );
        }
        let first = help.lines().next().unwrap_or_default();
        assert!(first.contains("Novalog"), "{bin}: {first}");
    }
    // The audit tool serves no metrics, but shares the other flags.
    let out = Command::new(novalog_bin("novalog-replay"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "novalog-replay --help");
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["--config", "--log-format", "--check-config"] {
        assert!(
            help.contains(needle),
            "novalog-replay --help lacks {needle}:\n{help}"
        );
    }
}
