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
        self.wait_status_as(Cloud::Admin, name, status)
    }

    /// [`Osc::wait_status`] as `cloud` (a server is found by name only in
    /// its own project).
    fn wait_status_as(&self, cloud: Cloud, name: &str, status: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let s = self.ok(cloud, &["server", "show", name]);
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

[vnc]
# The console proxy on a free port; console URLs name it.
novncproxy_port = 0
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
    let running = start_novalog(2);
    let os = &running.os;
    use Cloud::{Admin, Demo, Reader};

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
    std::fs::write(running.dir.path().join("disk.raw"), &disk).unwrap();
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
    std::fs::write(running.dir.path().join("key.pub"), PUBLIC_KEY).unwrap();
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

/// Runs `openstack` as cloud `cloud` of the clouds.yaml at `clouds`;
/// returns its JSON output (`-f json` appended), `Value::Null` when it
/// prints nothing, or panics with its error.
fn osc_as(os: &Osc, clouds: &Path, cloud: &str, args: &[&str], json: bool) -> Value {
    let mut args = args.to_vec();
    if json {
        args.extend(["-f", "json"]);
    }
    let out = Command::new(&os.openstack)
        .args(&args)
        .current_dir(&os.dir)
        .env("OS_CLIENT_CONFIG_FILE", clouds)
        .env("OS_CLOUD", cloud)
        .env_remove("OS_AUTH_URL")
        .env_remove("OS_TOKEN")
        .output()
        .expect("run openstack");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "openstack {} (as {cloud}) failed: {stdout}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    if !json || stdout.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("openstack {}: not JSON ({e}): {stdout}", args.join(" ")))
}

/// The identity admin API as an operator's scripts drive it: projects,
/// users and role grants made with `openstack`, the new user working
/// with what it was given, role assignments listed, and an application
/// credential authenticating a script.
#[test]
fn openstackclient_manages_projects_users_roles_and_application_credentials() {
    let running = start_novalog(1);
    let (os, port, dir) = (&running.os, running.port, &running.dir);
    use Cloud::{Admin, Demo};

    // project create / list / show
    let web = os.ok(
        Admin,
        &["project", "create", "--description", "the web tier", "web"],
    );
    assert_eq!(web["name"], "web");
    assert_eq!(web["domain_id"], "default");
    assert_eq!(web["enabled"], true);
    assert_eq!(web["description"], "the web tier");
    let web_id = web["id"].as_str().unwrap().to_owned();
    let err = os.fails(Admin, &["project", "create", "web"]);
    assert!(err.contains("409") || err.contains("Conflict"), "{err}");
    let projects = os.ok(Admin, &["project", "list"]);
    assert!(names(&projects, "Name").contains(&"web".to_owned()));
    assert_eq!(os.ok(Admin, &["project", "show", "web"])["id"], web_id);

    // user create + role add, then the user works on its project
    let user = os.ok(
        Admin,
        &[
            "user",
            "create",
            "--password",
            "s3cret",
            "--project",
            "web",
            "--email",
            "alice@example.org",
            "alice",
        ],
    );
    assert_eq!(user["name"], "alice");
    assert_eq!(user["default_project_id"], web_id);
    let user_id = user["id"].as_str().unwrap().to_owned();
    assert!(names(&os.ok(Admin, &["user", "list"]), "Name").contains(&"alice".to_owned()));
    os.ok(
        Admin,
        &[
            "role",
            "add",
            "--project",
            "web",
            "--user",
            "alice",
            "member",
        ],
    );
    let alice = format!(
        "clouds:\n  alice:\n    auth:\n      auth_url: http://127.0.0.1:{port}/identity/v3\n      username: alice\n      password: s3cret\n      project_name: web\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n    identity_api_version: 3\n"
    );
    let alice_yaml = dir.path().join("alice.yaml");
    std::fs::write(&alice_yaml, &alice).unwrap();
    let servers = osc_as(os, &alice_yaml, "alice", &["server", "list"], true);
    assert_eq!(servers, Value::Array(vec![]));
    let token = osc_as(os, &alice_yaml, "alice", &["token", "issue"], true);
    assert_eq!(token["project_id"], web_id);
    assert_eq!(token["user_id"], user_id);

    // role assignment list, with names
    let assignments = os.ok(
        Admin,
        &["role", "assignment", "list", "--project", "web", "--names"],
    );
    let a = assignments.as_array().unwrap();
    assert_eq!(a.len(), 1, "{assignments}");
    assert_eq!(a[0]["Role"], "member");
    assert_eq!(a[0]["User"], "alice@Default");
    assert_eq!(a[0]["Project"], "web@Default");
    let mine = os.ok(Admin, &["role", "assignment", "list", "--user", "alice"]);
    assert_eq!(mine.as_array().unwrap().len(), 1);

    // an application credential a script authenticates with
    let cred = osc_as(
        os,
        &alice_yaml,
        "alice",
        &[
            "application",
            "credential",
            "create",
            "--role",
            "member",
            "ci",
        ],
        true,
    );
    // The client names its columns for people: "ID", "Secret".
    let cred_id = cred["ID"]
        .as_str()
        .unwrap_or_else(|| panic!("{cred}"))
        .to_owned();
    let secret = cred["Secret"]
        .as_str()
        .unwrap_or_else(|| panic!("{cred}"))
        .to_owned();
    let listed = osc_as(
        os,
        &alice_yaml,
        "alice",
        &["application", "credential", "list"],
        true,
    );
    assert_eq!(names(&listed, "Name"), vec!["ci"]);
    let ci_yaml = dir.path().join("ci.yaml");
    std::fs::write(
        &ci_yaml,
        format!(
            "clouds:\n  ci:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: http://127.0.0.1:{port}/identity/v3\n      application_credential_id: {cred_id}\n      application_credential_secret: {secret}\n    region_name: RegionOne\n    identity_api_version: 3\n"
        ),
    )
    .unwrap();
    let servers = osc_as(os, &ci_yaml, "ci", &["server", "list"], true);
    assert_eq!(servers, Value::Array(vec![]));

    // removing the role takes the user's access at once
    os.ok(
        Admin,
        &[
            "role",
            "remove",
            "--project",
            "web",
            "--user",
            "alice",
            "member",
        ],
    );
    let out = Command::new(&os.openstack)
        .args(["server", "list"])
        .env("OS_CLIENT_CONFIG_FILE", &ci_yaml)
        .env("OS_CLOUD", "ci")
        .output()
        .unwrap();
    assert!(!out.status.success(), "no role, no access");
    os.ok(
        Admin,
        &[
            "role",
            "add",
            "--project",
            "web",
            "--user",
            "alice",
            "member",
        ],
    );
    osc_as(
        os,
        &alice_yaml,
        "alice",
        &["application", "credential", "delete", "ci"],
        false,
    );

    // A member of demo cannot manage identity.
    let err = os.fails(Demo, &["project", "create", "nope"]);
    assert!(
        err.contains("403") || err.contains("not authorized"),
        "{err}"
    );

    os.ok(Admin, &["user", "delete", "alice"]);
    os.ok(Admin, &["project", "delete", "web"]);
    let projects = os.ok(Admin, &["project", "list"]);
    assert!(!names(&projects, "Name").contains(&"web".to_owned()));
}

/// `GET {path}` on the listener at `port` with a keystone token: the JSON.
fn get_json(port: u16, token: &str, path: &str) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}{path}"))
            .header("X-Auth-Token", token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "GET {path}");
        resp.json::<Value>().await.unwrap()
    })
}

/// `openstack usage list` / `usage show` (os-simple-tenant-usage) give the
/// hours billing metered: a server of a known flavor that ran and was
/// deleted shows, in the client's own columns, exactly its flavor times the
/// time `/billing/v1` bills it for (outside building and deleted), and
/// admin's list shows demo's row with the same numbers.
#[test]
fn openstack_usage_agrees_with_billing() {
    let running = start_novalog(1);
    let (os, port) = (&running.os, running.port);
    use Cloud::{Admin, Demo};

    // m1.large (8 GiB, 4 vCPUs, 80 GB) for a few seconds: enough
    // MB-hours to compare at the client's two decimals.
    os.ok(
        Demo,
        &[
            "server", "create", "--flavor", "m1.large", "--image", "cirros", "--nic", "none",
            "metered",
        ],
    );
    os.wait_status_as(Demo, "metered", "ACTIVE");
    std::thread::sleep(Duration::from_secs(3));
    os.ok(Demo, &["server", "delete", "--wait", "metered"]);

    let token = os.ok(Demo, &["token", "issue"]);
    let project = token["project_id"].as_str().unwrap().to_owned();
    let token = token["id"].as_str().unwrap().to_owned();
    let bill = get_json(
        port,
        &token,
        &format!("/billing/v1/projects/{project}?start=2020-01-01T00:00:00Z"),
    );
    let lines = bill["bill"]["line_items"].as_array().unwrap();
    assert!(!lines.is_empty(), "{bill}");
    let flavor = &lines[0]["flavor"];
    assert_eq!(flavor["name"], "m1.large", "{bill}");
    let metered_ms: i64 = lines
        .iter()
        .filter(|l| !matches!(l["state"].as_str(), Some("building" | "deleted")))
        .map(|l| l["milliseconds"].as_i64().unwrap())
        .sum();
    assert!(metered_ms >= 3_000, "ran at least 3 s: {bill}");
    let hours = metered_ms as f64 / 3_600_000.0;
    let (ram, vcpus, disk) = (
        flavor["ram_mb"].as_i64().unwrap(),
        flavor["vcpus"].as_i64().unwrap(),
        flavor["disk_gb"].as_i64().unwrap() + flavor["ephemeral_gb"].as_i64().unwrap(),
    );
    // With `-f json` the client prints the API's raw figures (its two
    // decimals are for the table): the tenant usage's hours agree with the
    // bill's milliseconds to the API's float precision.
    let agrees = |shown: &Value, column: &str, per_hour: i64| {
        let got = shown[column]
            .as_f64()
            .unwrap_or_else(|| panic!("{column}: {shown}"));
        let want = per_hour as f64 * hours;
        assert!(
            (got - want).abs() <= 1e-6 * want.max(1.0),
            "{column}: {got} against {want} from /billing/v1 ({metered_ms} ms)"
        );
    };
    let shown = os.ok(Demo, &["usage", "show", "--project", "demo"]);
    assert_eq!(
        shown["Servers"].as_array().map(Vec::len),
        Some(1),
        "{shown}"
    );
    assert_eq!(shown["Project"], project.as_str(), "{shown}");
    agrees(&shown, "RAM MB-Hours", ram);
    agrees(&shown, "CPU Hours", vcpus);
    agrees(&shown, "Disk GB-Hours", disk);

    let list = os.ok(Admin, &["usage", "list"]);
    let row = find(&list, "Project", &project);
    // (No server count here: the client asks for `detailed=True`, and Nova
    // details only `detailed=1`, so its list has no server_usages.)
    agrees(row, "RAM MB-Hours", ram);
    agrees(row, "CPU Hours", vcpus);
    agrees(row, "Disk GB-Hours", disk);

    // A member may not list every project's usage.
    let err = os.fails(Demo, &["usage", "list"]);
    assert!(
        err.contains("403") || err.contains("Forbidden") || err.contains("olicy"),
        "{err}"
    );
}

/// `console url show`: the URL a stock client prints serves the console
/// page (noVNC's client from the `@novnc/novnc` package, which
/// `scripts/deps.sh` fetches), and the token in it opens the guest's VNC
/// display through the proxy's WebSocket (the `RFB 003.008` banner).
#[test]
fn openstackclient_shows_a_console_url_that_opens_the_console() {
    let Running { os, .. } = &start_novalog(1);
    use Cloud::{Demo, Reader};
    os.ok(
        Demo,
        &[
            "server", "create", "--flavor", "m1.tiny", "--image", "cirros", "--nic", "none",
            "--wait", "vnc1",
        ],
    );
    let shown = os.ok(Demo, &["console", "url", "show", "vnc1"]);
    assert_eq!(shown["type"], "novnc", "{shown}");
    let url = shown["url"].as_str().unwrap().to_owned();
    let (base, token) = url
        .split_once("?path=%3Ftoken%3D")
        .unwrap_or_else(|| panic!("no token in {url}"));
    assert!(base.ends_with("/vnc_lite.html"), "{url}");
    let root = base.trim_end_matches("/vnc_lite.html").to_owned();
    let err = os.fails(Reader, &["console", "url", "show", "vnc1"]);
    assert!(err.contains("403") || err.contains("Policy"), "{err}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let get = |u: String| async move {
            let r = reqwest::get(&u).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        };
        let (status, page) = get(url.clone()).await;
        assert_eq!(status, 200);
        assert!(page.contains("core/rfb.js"), "{page}");
        let (status, rfb) = get(format!("{root}/core/rfb.js")).await;
        assert_eq!(
            status, 200,
            "noVNC's client is not served (scripts/deps.sh run fetches @novnc/novnc)"
        );
        assert!(
            rfb.contains("export default class RFB"),
            "not noVNC's rfb.js"
        );

        use futures::StreamExt;
        let ws_url = format!("{}/?token={token}", root.replacen("http://", "ws://", 1));
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .expect("the console's WebSocket opens");
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the display answers")
            .unwrap()
            .unwrap();
        assert_eq!(&frame.into_data()[..], b"RFB 003.008\n");
    });
}

/// A `novalog` started on its own port and data directory, with
/// `openstack` pointed at it; it is stopped (before its directory goes)
/// when this is dropped.
struct Running {
    _guard: KillOnDrop,
    os: Osc,
    port: u16,
    dir: tempfile::TempDir,
}

/// Starts `novalog` with `fake_hosts` fake hosts; returns once every host
/// is listed as a hypervisor.
fn start_novalog(fake_hosts: usize) -> Running {
    start_novalog_configured(fake_hosts, CONFIG)
}

/// [`start_novalog`] with `config` as its configuration file.
fn start_novalog_configured(fake_hosts: usize, config: &str) -> Running {
    let openstack = openstack();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("novalog.toml"), config).unwrap();
    let novalog = Command::new(bin_dir().join("novalog"))
        .args([
            "--config",
            &dir.path().join("novalog.toml").display().to_string(),
            "--data-dir",
            &dir.path().join("data").display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--fake-hosts",
            &fake_hosts.to_string(),
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::fs::File::create(dir.path().join("novalog.log")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("novalog.err")).unwrap())
        .spawn()
        .expect("start novalog");
    let guard = KillOnDrop(novalog);
    let clouds = dir.path().join("clouds.yaml");
    std::fs::write(&clouds, clouds_yaml(port)).unwrap();
    let os = Osc {
        openstack,
        clouds_yaml: clouds,
        dir: dir.path().to_owned(),
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = os.run(Cloud::Admin, &["hypervisor", "list", "-f", "json"]);
        let ready = out.status.success()
            && serde_json::from_slice::<Value>(&out.stdout)
                .is_ok_and(|v| v.as_array().is_some_and(|a| a.len() == fake_hosts));
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
    Running {
        _guard: guard,
        os,
        port,
        dir,
    }
}

/// A `novalog` with two fake hosts and a small raw disk file to upload.
fn start_for_images() -> Running {
    let running = start_novalog(2);
    let disk: Vec<u8> = (0..4_096u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(running.dir.path().join("disk.raw"), &disk).unwrap();
    running
}

/// Polls `image show` until the image has `status`; returns it.
fn image_becomes(os: &Osc, cloud: Cloud, name: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let image = os.ok(cloud, &["image", "show", name]);
        if image["status"] == status {
            return image;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never became {status}: {image}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `image add project` as the admin owner, `image set --accept` as demo,
/// then demo boots a server from the shared image; once the owner removes
/// the share, demo no longer sees it.
#[test]
fn an_image_shared_with_a_project_boots_there() {
    let Running { os, .. } = &start_for_images();
    use Cloud::{Admin, Demo};
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
            "--shared",
            "shared-img",
        ],
    );
    assert_eq!(image["visibility"], "shared", "{image}");
    let id = image["id"].as_str().unwrap().to_owned();
    os.fails(Demo, &["image", "show", &id]);

    let member = osc_as(
        os,
        &os.clouds_yaml,
        "admin",
        &["image", "add", "project", "shared-img", "demo"],
        true,
    );
    assert_eq!(member["status"], "pending", "{member}");
    // Pending: not in demo's default list, but there when asked for.
    let listed = os.ok(Demo, &["image", "list"]);
    assert!(!names(&listed, "ID").contains(&id), "{listed}");
    let listed = os.ok(
        Demo,
        &["image", "list", "--shared", "--member-status", "pending"],
    );
    assert!(names(&listed, "ID").contains(&id), "{listed}");
    os.ok(Demo, &["image", "set", "--accept", &id]);
    let members = os.ok(Admin, &["image", "member", "list", "shared-img"]);
    assert_eq!(members[0]["Status"], "accepted", "{members}");
    let listed = os.ok(Demo, &["image", "list", "--shared"]);
    assert!(names(&listed, "ID").contains(&id), "{listed}");

    os.ok(
        Demo,
        &[
            "server",
            "create",
            "--flavor",
            "m1.tiny",
            "--image",
            &id,
            "--nic",
            "none",
            "--wait",
            "on-shared",
        ],
    );
    let server = os.wait_status_as(Demo, "on-shared", "ACTIVE");
    assert!(server["image"].to_string().contains(&id), "{server}");

    os.ok(Admin, &["image", "remove", "project", "shared-img", "demo"]);
    os.fails(Demo, &["image", "show", &id]);
    os.ok(Demo, &["server", "delete", "--wait", "on-shared"]);
}

/// `image create --import` (stage + glance-direct), tags, and
/// `image set --deactivate` refusing boots until `--activate`.
#[test]
fn image_import_tags_and_deactivation_through_openstackclient() {
    let Running { os, .. } = &start_for_images();
    use Cloud::{Admin, Demo};
    let created = os.ok(
        Demo,
        &[
            "image",
            "create",
            "--import",
            "--file",
            "disk.raw",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "imported",
        ],
    );
    assert_eq!(created["name"], "imported", "{created}");
    let image = image_becomes(os, Demo, "imported", "active");
    assert_eq!(image["size"], 4_096, "{image}");

    os.ok(
        Demo,
        &[
            "image", "set", "--tag", "blue", "--tag", "green", "imported",
        ],
    );
    let image = os.ok(Demo, &["image", "show", "imported"]);
    let tags = image["tags"].to_string();
    assert!(tags.contains("blue") && tags.contains("green"), "{image}");
    let listed = os.ok(Demo, &["image", "list", "--tag", "blue"]);
    assert_eq!(names(&listed, "Name"), ["imported"], "{listed}");
    os.ok(Demo, &["image", "unset", "--tag", "green", "imported"]);
    let image = os.ok(Demo, &["image", "show", "imported"]);
    assert!(!image["tags"].to_string().contains("green"), "{image}");

    os.ok(Admin, &["image", "set", "--deactivate", "imported"]);
    assert_eq!(
        os.ok(Demo, &["image", "show", "imported"])["status"],
        "deactivated"
    );
    let refused = os.fails(
        Demo,
        &[
            "server", "create", "--flavor", "m1.tiny", "--image", "imported", "--nic", "none",
            "nope",
        ],
    );
    assert!(refused.contains("not active"), "{refused}");
    os.ok(Admin, &["image", "set", "--activate", "imported"]);
    assert_eq!(
        os.ok(Demo, &["image", "show", "imported"])["status"],
        "active"
    );
    os.ok(
        Demo,
        &[
            "server", "create", "--flavor", "m1.tiny", "--image", "imported", "--nic", "none",
            "--wait", "yes",
        ],
    );
    os.ok(Demo, &["server", "delete", "--wait", "yes"]);
}

/// `server shelve` / `unshelve` (offloaded at once, Nova's default),
/// `server shelve --offload`, and `server rescue` / `unrescue`, as a
/// stock client drives them; the shelved snapshot is an image of the
/// server's project until the unshelve deletes it.
#[test]
fn openstackclient_shelves_unshelves_and_rescues() {
    let Running { os, .. } = &start_novalog(2);
    use Cloud::{Admin, Demo};
    let created = os.ok(
        Demo,
        &[
            "server", "create", "--flavor", "m1.tiny", "--image", "cirros", "--nic", "none",
            "--wait", "shelf",
        ],
    );
    // The administrator names it by id (a name is looked up in the
    // caller's own project).
    let id = created["id"].as_str().unwrap().to_owned();
    os.ok(Demo, &["server", "shelve", "shelf"]);
    let s = os.wait_status_as(Demo, "shelf", "SHELVED_OFFLOADED");
    assert_eq!(s["OS-EXT-STS:vm_state"], "shelved_offloaded", "{s}");
    let shelved = image_becomes(os, Demo, "shelf-shelved", "active");
    let props = shelved["properties"].to_string();
    assert!(props.contains("snapshot"), "{shelved}");
    let host = os.ok(Admin, &["server", "show", &id]);
    assert!(host["OS-EXT-SRV-ATTR:host"].is_null(), "{host}");

    os.ok(Demo, &["server", "unshelve", "shelf"]);
    os.wait_status_as(Demo, "shelf", "ACTIVE");
    let host = os.ok(Admin, &["server", "show", &id]);
    assert!(host["OS-EXT-SRV-ATTR:host"].is_string(), "{host}");
    let images = os.ok(Demo, &["image", "list"]);
    assert!(
        !names(&images, "Name").contains(&"shelf-shelved".to_owned()),
        "the shelved image is deleted once unshelved: {images}"
    );

    // `--offload` (an administrator's, by Nova's default policy):
    // shelved, then offloaded unless that happened already.
    os.ok(Admin, &["server", "shelve", "--offload", "--wait", &id]);
    os.wait_status_as(Demo, "shelf", "SHELVED_OFFLOADED");
    os.ok(Demo, &["server", "unshelve", "--wait", "shelf"]);
    os.wait_status_as(Demo, "shelf", "ACTIVE");

    // Rescue answers with an admin password; RESCUE, then back.
    os.ok(Demo, &["server", "rescue", "shelf"]);
    os.wait_status_as(Demo, "shelf", "RESCUE");
    let err = os.fails(Demo, &["server", "shelve", "shelf"]);
    assert!(err.contains("409") || err.contains("rescued"), "{err}");
    os.ok(Demo, &["server", "unrescue", "shelf"]);
    os.wait_status_as(Demo, "shelf", "ACTIVE");

    let actions = os.ok(Demo, &["server", "event", "list", "shelf"]);
    let listed = actions.to_string();
    for action in ["shelve", "unshelve", "rescue", "unrescue"] {
        assert!(
            listed.contains(&format!("\"{action}\"")),
            "{action}: {actions}"
        );
    }
    os.ok(Demo, &["server", "delete", "--wait", "shelf"]);
}

/// `server image create` then `server create` from that snapshot,
/// `console log show`, `server set --state error` / `--state active`, and,
/// with a reclaim interval, `server delete` + `server restore`.
#[test]
fn openstackclient_snapshots_reads_the_console_resets_and_restores() {
    let config = format!("reclaim_instance_interval = 3600\n{CONFIG}");
    let Running { os, .. } = &start_novalog_configured(2, &config);
    use Cloud::{Admin, Demo};
    let created = os.ok(
        Demo,
        &[
            "server", "create", "--flavor", "m1.tiny", "--image", "cirros", "--nic", "none",
            "--wait", "snapper",
        ],
    );
    let id = created["id"].as_str().unwrap().to_owned();
    os.ok(
        Demo,
        &[
            "server",
            "image",
            "create",
            "--name",
            "snapper-snap",
            "--wait",
            "snapper",
        ],
    );
    let snap = image_becomes(os, Demo, "snapper-snap", "active");
    let props = snap["properties"].to_string();
    assert!(props.contains("snapshot") && props.contains(&id), "{snap}");
    assert!(
        snap["size"].as_u64().unwrap_or(0) > 0,
        "the guest's bytes: {snap}"
    );
    os.ok(
        Demo,
        &[
            "server",
            "create",
            "--flavor",
            "m1.tiny",
            "--image",
            "snapper-snap",
            "--nic",
            "none",
            "--wait",
            "from-snap",
        ],
    );
    let booted = os.ok(Demo, &["server", "show", "from-snap"]);
    assert_eq!(booted["status"], "ACTIVE", "{booted}");

    // The fake guest's console: what it printed as it booted.
    let out = os.run(Demo, &["console", "log", "show", "--lines", "3", "snapper"]);
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(log.contains("login:"), "{log}");
    assert!(log.lines().count() <= 3, "{log}");

    // os-resetState is an administrator's.
    let err = os.fails(
        Demo,
        &[
            "server",
            "set",
            "--auto-approve",
            "--state",
            "error",
            "snapper",
        ],
    );
    assert!(err.contains("403") || err.contains("Policy"), "{err}");
    os.ok(
        Admin,
        &["server", "set", "--auto-approve", "--state", "error", &id],
    );
    let s = os.ok(Demo, &["server", "show", "snapper"]);
    assert_eq!(s["status"], "ERROR", "{s}");
    os.ok(
        Admin,
        &["server", "set", "--auto-approve", "--state", "active", &id],
    );
    os.wait_status_as(Demo, "snapper", "ACTIVE");

    // Soft delete: SOFT_DELETED (shown by id, not listed), then restored.
    os.ok(Demo, &["server", "delete", "snapper"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = os.ok(Demo, &["server", "show", &id]);
        if s["status"] == "SOFT_DELETED" && s["OS-EXT-STS:task_state"].is_null() {
            break;
        }
        assert!(Instant::now() < deadline, "never soft-deleted: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let listed = os.ok(Demo, &["server", "list"]);
    assert!(
        !names(&listed, "Name").contains(&"snapper".to_owned()),
        "{listed}"
    );
    os.ok(Demo, &["server", "restore", &id]);
    os.wait_status_as(Demo, "snapper", "ACTIVE");
    let actions = os
        .ok(Demo, &["server", "event", "list", "snapper"])
        .to_string();
    for action in ["createImage", "restore"] {
        assert!(
            actions.contains(&format!("\"{action}\"")),
            "{action}: {actions}"
        );
    }
}

/// A clouds.yaml of one cloud named `name`: `user` with `password`,
/// scoped to `project` (none: no project, for `--os-domain-name`).
fn one_cloud_yaml(
    port: u16,
    name: &str,
    user: &str,
    password: &str,
    project: Option<&str>,
) -> String {
    let scope = project
        .map(|p| format!("      project_name: {p}\n      project_domain_name: Default\n"))
        .unwrap_or_default();
    format!(
        "clouds:\n  {name}:\n    auth:\n      auth_url: http://127.0.0.1:{port}/identity/v3\n      username: {user}\n      password: {password}\n      user_domain_name: Default\n{scope}    region_name: RegionOne\n    identity_api_version: 3\n"
    )
}

/// Runs `openstack` as the one cloud of `yaml` (written under `dir`),
/// expecting failure; returns stderr.
fn osc_fails_as(os: &Osc, yaml: &Path, cloud: &str, args: &[&str]) -> String {
    let out = Command::new(&os.openstack)
        .args(args)
        .current_dir(&os.dir)
        .env("OS_CLIENT_CONFIG_FILE", yaml)
        .env("OS_CLOUD", cloud)
        .env_remove("OS_AUTH_URL")
        .env_remove("OS_TOKEN")
        .output()
        .expect("run openstack");
    assert!(
        !out.status.success(),
        "openstack {} (as {cloud}) should have failed",
        args.join(" ")
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A user changing its own password (`openstack user password set`), an
/// operator working domain-scoped (`--os-domain-name Default`), and a
/// role inherited to every project of a domain (`role add --inherited`).
#[test]
fn openstackclient_sets_passwords_scopes_to_a_domain_and_inherits_roles() {
    let running = start_novalog(1);
    let (os, port, dir) = (&running.os, running.port, &running.dir);
    use Cloud::Admin;
    let write = |file: &str, yaml: String| {
        let path = dir.path().join(file);
        std::fs::write(&path, yaml).unwrap();
        path
    };

    // user password set: the original is checked, the new one works and
    // the old one no longer does.
    os.ok(
        Admin,
        &[
            "user",
            "create",
            "--password",
            "old-pw",
            "--project",
            "demo",
            "carol",
        ],
    );
    os.ok(
        Admin,
        &[
            "role",
            "add",
            "--project",
            "demo",
            "--user",
            "carol",
            "member",
        ],
    );
    let old = write(
        "carol-old.yaml",
        one_cloud_yaml(port, "carol", "carol", "old-pw", Some("demo")),
    );
    let err = osc_fails_as(
        os,
        &old,
        "carol",
        &[
            "user",
            "password",
            "set",
            "--original-password",
            "wrong",
            "--password",
            "new-pw",
        ],
    );
    assert!(
        err.contains("401") || err.contains("Invalid user / password"),
        "{err}"
    );
    osc_as(
        os,
        &old,
        "carol",
        &[
            "user",
            "password",
            "set",
            "--original-password",
            "old-pw",
            "--password",
            "new-pw",
        ],
        false,
    );
    let err = osc_fails_as(os, &old, "carol", &["token", "issue"]);
    assert!(err.contains("401") || err.contains("authenticat"), "{err}");
    let new = write(
        "carol-new.yaml",
        one_cloud_yaml(port, "carol", "carol", "new-pw", Some("demo")),
    );
    let t = osc_as(os, &new, "carol", &["token", "issue"], true);
    assert_eq!(
        t["project_id"],
        os.ok(Admin, &["project", "show", "demo"])["id"]
    );

    // A domain-scoped admin: granted on the domain, then listing with
    // `--os-domain-name` and no project.
    os.ok(
        Admin,
        &[
            "role", "add", "--domain", "Default", "--user", "admin", "admin",
        ],
    );
    let domain = write(
        "admin-domain.yaml",
        one_cloud_yaml(port, "admind", "admin", "admin", None),
    );
    let projects = osc_as(
        os,
        &domain,
        "admind",
        &["--os-domain-name", "Default", "project", "list"],
        true,
    );
    let listed = names(&projects, "Name");
    assert!(
        listed.contains(&"admin".to_owned()) && listed.contains(&"demo".to_owned()),
        "{projects}"
    );
    let t = osc_as(
        os,
        &domain,
        "admind",
        &["--os-domain-name", "Default", "token", "issue"],
        true,
    );
    assert_eq!(t["domain_id"], "default", "{t}");

    // role add --inherited: a user with no role of its own gets the role
    // on every project of the domain.
    os.ok(Admin, &["user", "create", "--password", "ivy-pw", "ivy"]);
    let ivy = write(
        "ivy.yaml",
        one_cloud_yaml(port, "ivy", "ivy", "ivy-pw", Some("demo")),
    );
    osc_fails_as(os, &ivy, "ivy", &["token", "issue"]);
    os.ok(
        Admin,
        &[
            "role",
            "add",
            "--domain",
            "Default",
            "--user",
            "ivy",
            "--inherited",
            "member",
        ],
    );
    let a = os.ok(
        Admin,
        &["role", "assignment", "list", "--user", "ivy", "--names"],
    );
    let a = a.as_array().unwrap();
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["Role"], "member");
    assert_eq!(a[0]["Domain"], "Default");
    assert_eq!(a[0]["Inherited"], true);
    let t = osc_as(os, &ivy, "ivy", &["token", "issue"], true);
    assert_eq!(
        t["project_id"],
        os.ok(Admin, &["project", "show", "demo"])["id"]
    );
    let effective = os.ok(
        Admin,
        &[
            "role",
            "assignment",
            "list",
            "--user",
            "ivy",
            "--project",
            "demo",
            "--effective",
            "--names",
        ],
    );
    let roles: Vec<&str> = effective
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Role"].as_str().unwrap())
        .collect();
    assert!(roles.contains(&"member"), "{effective}");
    os.ok(
        Admin,
        &[
            "role",
            "remove",
            "--domain",
            "Default",
            "--user",
            "ivy",
            "--inherited",
            "member",
        ],
    );
    osc_fails_as(os, &ivy, "ivy", &["token", "issue"]);
}
