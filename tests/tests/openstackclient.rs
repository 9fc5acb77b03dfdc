//! Stock `openstack` (python-openstackclient, from PyPI, in the virtualenv
//! `scripts/osc-venv.sh` makes) against the `novalog` binary: every command
//! a newcomer runs (including server actions and the resize, migrate and
//! rebuild sagas), as admin, as demo and as a reader of demo, with each
//! command's JSON output checked.
//!
//! To add a command: call `os.ok(Cloud::Admin, &[...])` (the output as
//! JSON: `-f json` is appended to `list`, `show`, `create` and `issue`
//! commands; actions such as `server reboot` print nothing and give
//! `Value::Null`) or `os.fails(Cloud::Demo, &[...])` (the error text), then
//! assert on it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use novalog_tests::{bin_dir, free_port};
use serde_json::Value;

// Nova's sample key (`keypairs-import-post-req.json`) and its fingerprint.
const PUBLIC_KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv/zgGgB4rMYmIf+6A4l6Rr+o/6lHBQdW5aYd44bd8JttDCE/F/pNRr0lRE+PiqSPO8nDPHw0010JeMH9gYgnnFlyY3/OcJ02RhIPyyxYpv9FhY+2YiUkpwFOcLImyrxEsYXpD/0d3ac30bNH6Sw9JD9UZHYcpSxsIbECHw== Generated-by-Nova";
const FINGERPRINT: &str = "1e:2c:9b:56:79:4b:45:77:f9:ca:7a:98:2c:b0:d5:3c";

#[derive(Debug, Clone, Copy)]
enum Cloud {
    Admin,
    Demo,
    /// User `auditor`, role reader only, in project demo.
    Reader,
}

impl Cloud {
    fn name(self) -> &'static str {
        match self {
            Cloud::Admin => "admin",
            Cloud::Demo => "demo",
            Cloud::Reader => "reader",
        }
    }
}

/// The `openstack` command, pointed at one Novalog by a clouds.yaml.
struct Osc {
    openstack: PathBuf,
    clouds_yaml: PathBuf,
    dir: PathBuf,
}

impl Osc {
    fn run(&self, cloud: Cloud, args: &[&str]) -> std::process::Output {
        Command::new(&self.openstack)
            .args(args)
            .current_dir(&self.dir)
            .env("OS_CLIENT_CONFIG_FILE", &self.clouds_yaml)
            .env("OS_CLOUD", cloud.name())
            // Nothing from the caller's environment may pick another cloud.
            .env_remove("OS_AUTH_URL")
            .env_remove("OS_TOKEN")
            .output()
            .expect("run openstack")
    }

    /// Runs a command that must succeed; returns its output parsed as JSON
    /// (`-f json` is added to list/show/create/issue), or `Value::Null` for
    /// commands that print nothing.
    fn ok(&self, cloud: Cloud, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        // Listing, showing and creating print a result to format; actions
        // (delete, set, reboot, stop, ...) print nothing.
        let json = args
            .iter()
            .take(3)
            .any(|a| matches!(*a, "list" | "show" | "create" | "issue"));
        if json {
            args.extend(["-f", "json"]);
        }
        let out = self.run(cloud, &args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "openstack {} (as {}) failed: {}\n{}",
            args.join(" "),
            cloud.name(),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        if !json || stdout.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("openstack {}: not JSON ({e}): {stdout}", args.join(" ")))
    }

    /// Polls `server show` until the server has `status`; returns it.
    fn wait_status(&self, name: &str, status: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let s = self.ok(Cloud::Admin, &["server", "show", name]);
            if s["status"] == status && s["OS-EXT-STS:task_state"].is_null() {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} never reached {status}: {s}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// Runs a command that must fail; returns what it printed on stderr.
    fn fails(&self, cloud: Cloud, args: &[&str]) -> String {
        let out = self.run(cloud, args);
        assert!(
            !out.status.success(),
            "openstack {} (as {}) should have failed: {}",
            args.join(" "),
            cloud.name(),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// The default users plus `auditor`, a reader of project demo.
const CONFIG: &str = r#"[identity]
# Tests need no slow hashing.
password_hash_rounds = 1000
users = [
  { name = "admin", password = "admin", project = "admin", roles = ["admin"] },
  { name = "demo", password = "demo", project = "demo", roles = ["member"] },
  { name = "auditor", password = "auditor", project = "demo", roles = ["reader"] },
]
"#;

/// `scripts/osc-venv.sh` makes the virtualenv once and prints the path of
/// `openstack` (`make test` already ran it through `make deps`).
fn openstack() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/osc-venv.sh");
    let out = Command::new(&script)
        .output()
        .expect("run scripts/osc-venv.sh");
    assert!(
        out.status.success(),
        "scripts/osc-venv.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn clouds_yaml(port: u16) -> String {
    let cloud = |name: &str, user: &str, project: &str| {
        format!(
            "  {name}:\n    auth:\n      auth_url: http://127.0.0.1:{port}/identity/v3\n      username: {user}\n      password: {user}\n      project_name: {project}\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n    identity_api_version: 3\n"
        )
    };
    format!(
        "clouds:\n{}{}{}",
        cloud("admin", "admin", "admin"),
        cloud("demo", "demo", "demo"),
        cloud("reader", "auditor", "demo")
    )
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|e| e[key].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn find<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|e| e[key] == name)
        .unwrap_or_else(|| panic!("no {key} {name} in {list}"))
}

#[test]
fn stock_openstackclient_works_unchanged() {
    let openstack = openstack();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("novalog.toml"), CONFIG).unwrap();
    let novalog = std::process::Command::new(bin_dir().join("novalog"))
        .args([
            "--config",
            &dir.path().join("novalog.toml").display().to_string(),
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
    std::fs::write(&clouds, clouds_yaml(port)).unwrap();
    let os = Osc {
        openstack,
        clouds_yaml: clouds,
        dir: dir.path().to_owned(),
    };
    use Cloud::{Admin, Demo, Reader};

    // Up once the demo catalog is there and both fake hosts reported.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = os.run(Admin, &["hypervisor", "list", "-f", "json"]);
        let ready = out.status.success()
            && serde_json::from_slice::<Value>(&out.stdout)
                .is_ok_and(|v| v.as_array().is_some_and(|a| a.len() == 2));
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "novalog did not come up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // token issue
    let token = os.ok(Admin, &["token", "issue"]);
    assert!(token["id"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(token["project_id"].as_str().is_some_and(|p| !p.is_empty()));
    assert!(token["expires"].as_str().is_some());

    // flavors
    let flavors = os.ok(Admin, &["flavor", "list"]);
    assert!(names(&flavors, "Name").contains(&"m1.tiny".to_owned()));
    assert_eq!(find(&flavors, "Name", "m1.tiny")["RAM"], 512);
    let tiny = os.ok(Admin, &["flavor", "show", "m1.tiny"]);
    assert_eq!(tiny["ram"], 512);
    assert_eq!(tiny["vcpus"], 1);
    let made = os.ok(
        Admin,
        &[
            "flavor",
            "create",
            "--ram",
            "256",
            "--disk",
            "1",
            "--vcpus",
            "1",
            "osc.small",
        ],
    );
    assert_eq!(made["name"], "osc.small");
    assert_eq!(made["ram"], 256);
    let shown = os.ok(Admin, &["flavor", "show", "osc.small"]);
    assert_eq!(shown["id"], made["id"]);
    os.ok(
        Admin,
        &[
            "flavor",
            "set",
            "--property",
            "hw:cpu_policy=dedicated",
            "osc.small",
        ],
    );
    let shown = os.ok(Admin, &["flavor", "show", "osc.small"]);
    assert_eq!(shown["properties"]["hw:cpu_policy"], "dedicated", "{shown}");

    // images
    let disk: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("disk.raw"), &disk).unwrap();
    let image = os.ok(
        Admin,
        &[
            "image",
            "create",
            "--file",
            "disk.raw",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "oscimg",
        ],
    );
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], 65_536);
    let images = os.ok(Admin, &["image", "list"]);
    let image_names = names(&images, "Name");
    assert!(
        image_names.contains(&"oscimg".to_owned()) && image_names.contains(&"cirros".to_owned())
    );
    let shown = os.ok(Admin, &["image", "show", "oscimg"]);
    assert_eq!(shown["id"], image["id"]);
    assert_eq!(shown["disk_format"], "raw");

    // keypairs
    std::fs::write(dir.path().join("key.pub"), PUBLIC_KEY).unwrap();
    let key = os.ok(
        Admin,
        &["keypair", "create", "--public-key", "key.pub", "osckey"],
    );
    assert_eq!(key["name"], "osckey");
    assert_eq!(key["fingerprint"], FINGERPRINT);
    let keys = os.ok(Admin, &["keypair", "list"]);
    assert_eq!(find(&keys, "Name", "osckey")["Fingerprint"], FINGERPRINT);
    let shown = os.ok(Admin, &["keypair", "show", "osckey"]);
    assert_eq!(shown["fingerprint"], FINGERPRINT);
    assert_eq!(shown["type"], "ssh");

    // servers
    let server = os.ok(
        Admin,
        &[
            "server",
            "create",
            "--flavor",
            "m1.tiny",
            "--image",
            "cirros",
            "--nic",
            "none",
            "--key-name",
            "osckey",
            "--wait",
            "vm1",
        ],
    );
    assert_eq!(server["status"], "ACTIVE");
    assert_eq!(server["key_name"], "osckey");
    let server_id = server["id"].as_str().unwrap().to_owned();
    let servers = os.ok(Admin, &["server", "list"]);
    let row = find(&servers, "Name", "vm1");
    assert_eq!(row["Status"], "ACTIVE");
    assert_eq!(row["ID"], server_id.as_str());
    assert_eq!(row["Flavor"], "m1.tiny");
    let shown = os.ok(Admin, &["server", "show", "vm1"]);
    assert_eq!(shown["id"], server_id.as_str());
    assert_eq!(shown["OS-EXT-STS:vm_state"], "active");
    assert_eq!(shown["OS-EXT-STS:power_state"], 1);
    // 2.47: the flavor is embedded, shown by its original name.
    assert!(
        shown["flavor"].to_string().contains("m1.tiny"),
        "{}",
        shown["flavor"]
    );
    let host = shown["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned();
    assert!(host.starts_with("fake-host-"), "{host}");

    // server actions: each reaches its state on the fake host
    os.ok(Admin, &["server", "reboot", "--wait", "vm1"]);
    assert_eq!(os.wait_status("vm1", "ACTIVE")["OS-EXT-STS:power_state"], 1);
    os.ok(Admin, &["server", "reboot", "--hard", "--wait", "vm1"]);
    os.wait_status("vm1", "ACTIVE");
    for (action, status, power) in [
        ("stop", "SHUTOFF", 4),
        ("start", "ACTIVE", 1),
        ("pause", "PAUSED", 3),
        ("unpause", "ACTIVE", 1),
        ("suspend", "SUSPENDED", 7),
        ("resume", "ACTIVE", 1),
    ] {
        os.ok(Admin, &["server", action, "vm1"]);
        let s = os.wait_status("vm1", status);
        assert_eq!(s["OS-EXT-STS:power_state"], power, "{action}: {s}");
        assert_eq!(s["OS-EXT-STS:task_state"], Value::Null, "{action}: {s}");
    }
    os.ok(Admin, &["server", "lock", "vm1"]);
    assert_eq!(os.ok(Admin, &["server", "show", "vm1"])["locked"], true);
    os.ok(Admin, &["server", "unlock", "vm1"]);
    assert_eq!(os.ok(Admin, &["server", "show", "vm1"])["locked"], false);
    // a stopped server cannot be paused: Nova's 409
    os.ok(Admin, &["server", "stop", "vm1"]);
    os.wait_status("vm1", "SHUTOFF");
    let err = os.fails(Admin, &["server", "pause", "vm1"]);
    assert!(
        err.contains("409") && err.contains("vm_state stopped"),
        "{err}"
    );
    os.ok(Admin, &["server", "start", "vm1"]);
    os.wait_status("vm1", "ACTIVE");
    let events = os.ok(Admin, &["server", "event", "list", "vm1"]);
    let actions = names(&events, "Action");
    for action in [
        "create", "reboot", "stop", "start", "pause", "unpause", "suspend", "resume", "lock",
        "unlock",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }

    // quotas
    let quota = os.ok(Admin, &["quota", "show"]).to_string();
    assert!(
        quota.contains("instances") && quota.contains("cores"),
        "{quota}"
    );

    // compute services and hypervisors
    let services = os.ok(Admin, &["compute", "service", "list"]);
    assert_eq!(services.as_array().unwrap().len(), 2);
    let service = find(&services, "Host", &host);
    // The client negotiated 2.53 or later: service ids are uuids.
    assert!(
        service["ID"].as_str().is_some_and(|id| id.len() == 36),
        "{service}"
    );
    assert_eq!(service["Binary"], "nova-compute");
    assert_eq!(service["State"], "up");
    assert_eq!(service["Status"], "enabled");
    let hypervisors = os.ok(Admin, &["hypervisor", "list"]);
    assert_eq!(
        find(&hypervisors, "Hypervisor Hostname", &host)["State"],
        "up"
    );
    let other = names(&hypervisors, "Hypervisor Hostname")
        .into_iter()
        .find(|h| *h != host)
        .unwrap();
    os.ok(
        Admin,
        &[
            "compute",
            "service",
            "set",
            "--disable",
            "--disable-reason",
            "maintenance",
            &other,
            "nova-compute",
        ],
    );
    let services = os.ok(Admin, &["compute", "service", "list", "--long"]);
    let disabled = find(&services, "Host", &other);
    assert_eq!(disabled["Status"], "disabled");
    assert_eq!(disabled["Disabled Reason"], "maintenance");
    os.ok(
        Admin,
        &[
            "compute",
            "service",
            "set",
            "--enable",
            &other,
            "nova-compute",
        ],
    );
    let services = os.ok(Admin, &["compute", "service", "list"]);
    assert_eq!(find(&services, "Host", &other)["Status"], "enabled");

    // as demo: the admin's server is invisible, admin-only APIs refused
    assert_eq!(os.ok(Demo, &["server", "list"]), Value::Array(vec![]));
    let err = os.fails(Demo, &["server", "show", &server_id]);
    assert!(err.contains("No Server found"), "{err}");
    let err = os.fails(Demo, &["hypervisor", "list"]);
    assert!(
        err.contains("403") && err.contains("os_compute_api:os-hypervisors"),
        "{err}"
    );
    let err = os.fails(Demo, &["compute", "service", "list"]);
    assert!(err.contains("os_compute_api:os-services:list"), "{err}");
    let demo_flavors = os.ok(Demo, &["flavor", "list"]);
    assert!(names(&demo_flavors, "Name").contains(&"osc.small".to_owned()));

    // as a reader of demo: sees demo's server, changes nothing
    let mine = os.ok(
        Demo,
        &[
            "server", "create", "--flavor", "m1.tiny", "--image", "cirros", "--nic", "none",
            "--wait", "demo-vm",
        ],
    );
    assert_eq!(mine["status"], "ACTIVE");
    let seen = os.ok(Reader, &["server", "list"]);
    assert_eq!(names(&seen, "Name"), ["demo-vm"]);
    let err = os.fails(Reader, &["server", "delete", "demo-vm"]);
    assert!(err.contains("os_compute_api:servers:delete"), "{err}");
    let err = os.fails(
        Reader,
        &[
            "server",
            "create",
            "--flavor",
            "m1.tiny",
            "--image",
            "cirros",
            "--nic",
            "none",
            "reader-vm",
        ],
    );
    assert!(err.contains("os_compute_api:servers:create"), "{err}");
    os.ok(Demo, &["server", "delete", "--wait", "demo-vm"]);
    assert_eq!(os.ok(Reader, &["server", "list"]), Value::Array(vec![]));

    // sagas: resize --wait then confirm, migrate --wait then confirm,
    // resize then revert, rebuild --image --wait; migration and event lists
    let first = os.ok(Admin, &["server", "show", "vm1"])["OS-EXT-SRV-ATTR:host"]
        .as_str()
        .unwrap()
        .to_owned();
    os.ok(
        Admin,
        &["server", "resize", "--flavor", "m1.small", "--wait", "vm1"],
    );
    let s = os.wait_status("vm1", "VERIFY_RESIZE");
    assert_ne!(s["OS-EXT-SRV-ATTR:host"], first.as_str());
    os.ok(Admin, &["server", "resize", "confirm", "vm1"]);
    let s = os.wait_status("vm1", "ACTIVE");
    assert!(flavor_name(&s).starts_with("m1.small"), "{s}");
    let second = s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned();
    os.ok(Admin, &["server", "migrate", "--wait", "vm1"]);
    os.wait_status("vm1", "VERIFY_RESIZE");
    os.ok(Admin, &["server", "migration", "confirm", "vm1"]);
    let s = os.wait_status("vm1", "ACTIVE");
    assert_ne!(s["OS-EXT-SRV-ATTR:host"], second.as_str());
    os.ok(
        Admin,
        &["server", "resize", "--flavor", "m1.tiny", "--wait", "vm1"],
    );
    os.wait_status("vm1", "VERIFY_RESIZE");
    os.ok(Admin, &["server", "resize", "revert", "vm1"]);
    let s = os.wait_status("vm1", "ACTIVE");
    assert!(flavor_name(&s).starts_with("m1.small"), "{s}");
    os.ok(
        Admin,
        &["server", "rebuild", "--image", "cirros", "--wait", "vm1"],
    );
    let s = os.wait_status("vm1", "ACTIVE");
    assert_eq!(s["key_name"], "osckey", "a rebuild keeps the key");
    let migrations = os.ok(Admin, &["server", "migration", "list"]);
    assert_eq!(
        names(&migrations, "Status"),
        ["reverted", "confirmed", "confirmed"]
    );
    assert_eq!(
        names(&migrations, "Type"),
        ["resize", "migration", "resize"]
    );
    let events = os.ok(Admin, &["server", "event", "list", "vm1"]);
    assert_eq!(
        names(&events, "Action")[..7],
        [
            "rebuild",
            "revertResize",
            "resize",
            "confirmResize",
            "migrate",
            "confirmResize",
            "resize",
        ]
    );

    // delete
    os.ok(Admin, &["server", "delete", "--wait", "vm1"]);
    assert_eq!(os.ok(Admin, &["server", "list"]), Value::Array(vec![]));
    os.ok(Admin, &["keypair", "delete", "osckey"]);
    os.ok(Admin, &["flavor", "delete", "osc.small"]);
    let flavors = os.ok(Admin, &["flavor", "list"]);
    assert!(!names(&flavors, "Name").contains(&"osc.small".to_owned()));
    assert_eq!(os.ok(Admin, &["keypair", "list"]), Value::Array(vec![]));
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The flavor `server show -f json` names: "name (id)" below 2.47, the
/// embedded flavor's `original_name` from 2.47.
fn flavor_name(server: &Value) -> String {
    match &server["flavor"] {
        Value::String(s) => s.clone(),
        f => f["original_name"].as_str().unwrap_or_default().to_owned(),
    }
}
