//! Stock `openstack` (python-openstackclient) driving the sagas against the
//! `novalog` binary: `server resize --wait`, `server resize confirm` and
//! `revert`, `server migrate --wait`, `server migration confirm`,
//! `server rebuild --image --wait`, `server migration list`. Uses the
//! client in `$NOVALOG_CACHE/osc-venv` (made by `scripts/osc-venv.sh` where
//! that script exists); without it the test says so and does nothing.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use novalog_tests::{bin_dir, free_port};
use serde_json::Value;

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openstack() -> Option<PathBuf> {
    let cache = std::env::var("NOVALOG_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/novalog")
        });
    let path = cache.join("osc-venv/bin/openstack");
    path.exists().then_some(path)
}

struct Osc {
    openstack: PathBuf,
    clouds: PathBuf,
}

impl Osc {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.openstack)
            .args(args)
            .env("OS_CLIENT_CONFIG_FILE", &self.clouds)
            .env("OS_CLOUD", "admin")
            .env_remove("OS_AUTH_URL")
            .env_remove("OS_TOKEN")
            .output()
            .expect("run openstack")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "openstack {} failed: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-f", "json"]);
        serde_json::from_str(&self.ok(&args)).expect("JSON output")
    }

    fn show(&self, name: &str) -> Value {
        self.json(&["server", "show", name])
    }

    /// Waits until `name` shows `status` (confirm and revert do not wait).
    fn wait_status(&self, name: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.show(name);
            if s["status"] == status && s["OS-EXT-STS:task_state"].is_null() {
                return s;
            }
            assert!(Instant::now() < deadline, "{name} never {status}: {s}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn openstackclient_resizes_migrates_and_rebuilds() {
    let Some(openstack) = openstack() else {
        eprintln!(
            "openstackclient_resizes_migrates_and_rebuilds: skipped: no osc-venv in NOVALOG_CACHE"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let novalog = Command::new(bin_dir().join("novalog"))
        .args([
            "--data-dir",
            &dir.path().join("data").display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--fake-hosts",
            "2",
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::fs::File::create(dir.path().join("novalog.log")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("novalog.err")).unwrap())
        .spawn()
        .expect("start novalog");
    let _guard = KillOnDrop(novalog);
    let clouds = dir.path().join("clouds.yaml");
    std::fs::write(
        &clouds,
        format!(
            "clouds:\n  admin:\n    auth:\n      auth_url: http://127.0.0.1:{port}/identity/v3\n      username: admin\n      password: admin\n      project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n    identity_api_version: 3\n"
        ),
    )
    .unwrap();
    let os = Osc { openstack, clouds };

    // Up once the demo catalog is there.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = os.run(&["flavor", "list", "-f", "json"]);
        if out.status.success() && String::from_utf8_lossy(&out.stdout).contains("m1.xlarge") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "novalog did not come up: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(dir.path().join("novalog.err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let s = os.json(&[
        "server",
        "create",
        "--flavor",
        "m1.tiny",
        "--image",
        "cirros",
        "--no-network",
        "--wait",
        "vm1",
    ]);
    assert_eq!(s["status"], "ACTIVE");
    let first = s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned();

    // resize --wait, then confirm.
    os.ok(&["server", "resize", "--flavor", "m1.small", "--wait", "vm1"]);
    let s = os.wait_status("vm1", "VERIFY_RESIZE");
    assert_ne!(s["OS-EXT-SRV-ATTR:host"], first.as_str());
    os.ok(&["server", "resize", "confirm", "vm1"]);
    let s = os.wait_status("vm1", "ACTIVE");
    assert!(flavor_name(&s).starts_with("m1.small"), "{s}");
    let second = s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned();

    // migrate --wait, then confirm.
    os.ok(&["server", "migrate", "--wait", "vm1"]);
    os.wait_status("vm1", "VERIFY_RESIZE");
    os.ok(&["server", "migration", "confirm", "vm1"]);
    let s = os.wait_status("vm1", "ACTIVE");
    assert_ne!(s["OS-EXT-SRV-ATTR:host"], second.as_str());

    // resize, then revert.
    os.ok(&["server", "resize", "--flavor", "m1.tiny", "--wait", "vm1"]);
    os.wait_status("vm1", "VERIFY_RESIZE");
    os.ok(&["server", "resize", "revert", "vm1"]);
    let s = os.wait_status("vm1", "ACTIVE");
    assert!(flavor_name(&s).starts_with("m1.small"), "{s}");

    // rebuild --image --wait.
    os.ok(&["server", "rebuild", "--image", "cirros", "--wait", "vm1"]);
    os.wait_status("vm1", "ACTIVE");

    // migration list: every migration, newest first, with its status.
    let list = os.json(&["server", "migration", "list"]);
    let statuses: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["reverted", "confirmed", "confirmed"]);
    let types: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["resize", "migration", "resize"]);
    let events = os.json(&["server", "event", "list", "vm1"]);
    let actions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "rebuild",
            "revertResize",
            "resize",
            "confirmResize",
            "migrate",
            "confirmResize",
            "resize",
            "create"
        ]
    );
}

/// The flavor `server show -f json` names: "name (id)" below 2.47, the
/// embedded flavor's `original_name` from 2.47.
fn flavor_name(server: &Value) -> String {
    match &server["flavor"] {
        Value::String(s) => s.clone(),
        f => f["original_name"].as_str().unwrap_or_default().to_owned(),
    }
}
