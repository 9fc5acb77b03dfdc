//! The files in `deploy/` checked by the tools that read them: the compose
//! file by `docker-compose config`, the Kubernetes manifests against the
//! Kubernetes API schemas (`kubernetes-validate --strict`, and the
//! rendered kustomization when `kubectl` is there), the systemd units by
//! `systemd-analyze verify`, and what each must hold for Novalog (a valid
//! KRaft cluster id, retention kept forever, health checks, no root).
//!
//! The validators are installed by `scripts/deploy-tools.sh` and the
//! `systemd` package (`make test` runs both through `scripts/deps.sh`); a
//! run without them skips, unless `NOVALOG_REQUIRE_DEPLOY_TOOLS` is set,
//! as `make test` sets it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn deploy() -> PathBuf {
    repo().join("deploy")
}

/// `tool`'s path, or `None` (the test skips) when it is not installed and
/// not required.
fn tool(path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("NOVALOG_REQUIRE_DEPLOY_TOOLS").is_some() {
        panic!(
            "{} missing: run scripts/deps.sh test (or scripts/deploy-tools.sh)",
            path.display()
        );
    }
    eprintln!(
        "skipped: {} not installed (scripts/deploy-tools.sh)",
        path.display()
    );
    None
}

fn tools_bin() -> PathBuf {
    let cache = std::env::var_os("NOVALOG_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/novalog"));
    cache.join("deploy-tools/bin")
}

fn ok(what: &str, out: Output) -> String {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    stdout + &stderr
}

/// A KRaft cluster id: 16 bytes in URL-safe base64 without padding (22
/// characters; Kafka's `Uuid.fromString` decodes it and wants 16 bytes),
/// not the all-zero id Kafka reserves.
fn is_kraft_cluster_id(id: &str) -> bool {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let Some(digits) = id
        .chars()
        .map(|c| ALPHABET.find(c))
        .collect::<Option<Vec<usize>>>()
    else {
        return false;
    };
    digits.len() == 22 && digits.iter().any(|d| *d != 0)
}

#[test]
fn kraft_cluster_ids_are_checked_as_kafka_reads_them() {
    assert!(
        is_kraft_cluster_id("MkU3OEVBNTcwNTJENDM2Qk"),
        "Kafka's documented example"
    );
    assert!(
        !is_kraft_cluster_id("novalog-kraft-cluster-0001"),
        "the old id"
    );
    assert!(!is_kraft_cluster_id("MkU3OEVBNTcwNTJENDM2Q"), "15 bytes");
    assert!(!is_kraft_cluster_id("AAAAAAAAAAAAAAAAAAAAAA"), "reserved");
}

#[test]
fn compose_file_is_valid_with_a_kraft_id_retention_forever_health_checks_and_no_root() {
    let Some(compose) = tool(tools_bin().join("docker-compose")) else {
        return;
    };
    let file = deploy().join("docker-compose.yml");
    let out = Command::new(&compose)
        .arg("-f")
        .arg(&file)
        .arg("config")
        .output()
        .unwrap();
    let rendered = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "docker-compose config: {stderr}");
    assert!(
        !stderr.contains("WARN"),
        "docker-compose config warns: {stderr}"
    );
    // The rendered file as JSON, through the venv's PyYAML.
    let python = compose.canonicalize().unwrap().with_file_name("python");
    let mut child = Command::new(python)
        .args([
            "-c",
            "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rendered.as_bytes())
        .unwrap();
    let json = ok("yaml to json", child.wait_with_output().unwrap());
    let doc: Value = serde_json::from_str(&json).unwrap();
    let services = doc["services"].as_object().unwrap();
    let mut cluster_ids = Vec::new();
    for (name, svc) in services {
        let env = &svc["environment"];
        assert!(
            svc["healthcheck"]["test"]
                .as_array()
                .is_some_and(|t| !t.is_empty()),
            "{name} has no health check"
        );
        if name.starts_with("kafka") {
            let id = env["CLUSTER_ID"].as_str().unwrap();
            assert!(is_kraft_cluster_id(id), "{name}: CLUSTER_ID {id}");
            cluster_ids.push(id.to_owned());
            for key in ["KAFKA_LOG_RETENTION_MS", "KAFKA_LOG_RETENTION_BYTES"] {
                assert_eq!(
                    env[key].to_string().trim_matches('"'),
                    "-1",
                    "{name}: {key}"
                );
            }
        } else {
            let user = svc["user"].as_str().unwrap_or("root");
            assert!(
                !user.is_empty()
                    && !user.starts_with("root")
                    && !user.starts_with("0:")
                    && user != "0",
                "{name} runs as {user}"
            );
            assert_eq!(env["NOVALOG_LOG__BACKEND"], "kafka", "{name}");
        }
    }
    assert_eq!(cluster_ids.len(), 3);
    assert!(
        cluster_ids.windows(2).all(|w| w[0] == w[1]),
        "{cluster_ids:?}"
    );
    for svc in ["api", "conductor", "scheduler", "compute", "billing"] {
        assert!(services.contains_key(svc), "no {svc} service");
    }
}

fn kubernetes_resources() -> Vec<PathBuf> {
    let dir = deploy().join("kubernetes");
    let kustomization = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
    let listed: Vec<PathBuf> = kustomization
        .lines()
        .skip_while(|l| !l.starts_with("resources:"))
        .skip(1)
        .take_while(|l| l.starts_with("  - "))
        .map(|l| dir.join(l.trim_start_matches("  - ").trim()))
        .collect();
    let mut on_disk: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    on_disk.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, on_disk, "kustomization.yaml lists every manifest");
    listed
}

#[test]
fn kubernetes_manifests_validate_against_the_kubernetes_schemas() {
    let Some(validate) = tool(tools_bin().join("kubernetes-validate")) else {
        return;
    };
    let files = kubernetes_resources();
    let out = Command::new(&validate)
        .args(["--strict", "--quiet"])
        .args(&files)
        .output()
        .unwrap();
    ok("kubernetes-validate", out);
    // Rendered by kustomize too, where kubectl is installed.
    if let Ok(out) = Command::new("kubectl")
        .arg("kustomize")
        .arg(deploy().join("kubernetes"))
        .output()
    {
        let rendered = ok("kubectl kustomize", out);
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), rendered).unwrap();
        let out = Command::new(&validate)
            .args(["--strict", "--quiet"])
            .arg(tmp.path())
            .output()
            .unwrap();
        ok("kubernetes-validate (kustomized)", out);
    }
    // What Novalog needs of them.
    for svc in ["conductor", "scheduler", "compute", "billing"] {
        let text =
            std::fs::read_to_string(deploy().join(format!("kubernetes/{svc}.yaml"))).unwrap();
        assert!(text.contains("kind: StatefulSet"), "{svc}");
        assert!(
            text.contains("volumeClaimTemplates:"),
            "{svc}: a volume of its own"
        );
        assert!(
            text.contains("path: /healthz") && text.contains("path: /readyz"),
            "{svc}"
        );
        assert!(text.contains("runAsNonRoot: true"), "{svc}");
    }
    let api = std::fs::read_to_string(deploy().join("kubernetes/api.yaml")).unwrap();
    assert!(api.contains("kind: Deployment") && api.contains("kind: Service"));
    assert!(api.contains("path: /readyz") && api.contains("secretKeyRef"));
    let cm = std::fs::read_to_string(deploy().join("kubernetes/configmap.yaml")).unwrap();
    assert!(
        cm.contains("bootstrap_servers:"),
        "a Kafka bootstrap reference"
    );
}

#[test]
fn systemd_units_verify() {
    let Some(analyze) = tool(PathBuf::from("/usr/bin/systemd-analyze")) else {
        return;
    };
    // Verify checks that ExecStart's binary exists: point the units at the
    // binaries this build made.
    let bin = novalog_tests::bin_dir();
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for entry in std::fs::read_dir(deploy().join("systemd")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_owned();
        if path.extension().is_some_and(|e| e == "service") {
            assert!(text.contains("Restart=on-failure"), "{name:?}");
            assert!(
                text.contains("NOVALOG_CONFIG=/etc/novalog/novalog.toml"),
                "{name:?}: the shared config"
            );
            assert!(text.contains("User=novalog"), "{name:?}: not root");
        }
        let local = dir.path().join(&name);
        std::fs::write(
            &local,
            text.replace("/usr/local/bin/", &format!("{}/", bin.display())),
        )
        .unwrap();
        units.push(local);
    }
    assert_eq!(units.len(), 7, "six services and novalog.target");
    let target = std::fs::read_to_string(deploy().join("systemd/novalog.target")).unwrap();
    for unit in &units {
        let name = unit.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".service") {
            assert!(target.contains(&name), "novalog.target wants {name}");
        }
    }
    let out = Command::new(analyze)
        .arg("verify")
        .args(&units)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let said = ok("systemd-analyze verify", out);
    assert!(said.trim().is_empty(), "systemd-analyze verify: {said}");
}

#[test]
fn dockerfile_builds_release_binaries_runs_as_non_root_with_a_health_check() {
    let text = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    assert!(text.contains("cargo build --release"));
    let user = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "USER {user}"
    );
    assert!(text.lines().any(|l| l.starts_with("HEALTHCHECK ")));
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    for entry in ["target/", ".git/", "data/"] {
        assert!(
            ignore.lines().any(|l| l == entry),
            ".dockerignore lacks {entry}"
        );
    }
}

#[test]
fn grafana_dashboard_charts_only_metrics_novalog_exports() {
    let text = std::fs::read_to_string(deploy().join("grafana-dashboard.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).unwrap();
    let exported = [
        "novalog_http_requests_total",
        "novalog_http_request_duration_seconds_bucket",
        "novalog_records_consumed_total",
        "novalog_records_produced_total",
        "novalog_consumer_lag",
        "novalog_consumer_ready",
        "novalog_saga_duration_seconds_bucket",
        "novalog_sagas_total",
        "novalog_scheduler_decisions_total",
        "novalog_scheduler_decision_duration_seconds_bucket",
        "novalog_builds_total",
        "novalog_dead_letters_total",
        "novalog_rocksdb_size_bytes",
    ];
    let mut charted = std::collections::BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let names: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("novalog_"))
                .collect();
            assert!(!names.is_empty(), "{expr}");
            for n in names {
                assert!(exported.contains(&n), "{n} is not a Novalog metric");
                charted.insert(n);
            }
        }
    }
    assert_eq!(charted.len(), exported.len(), "every metric is charted");
}
