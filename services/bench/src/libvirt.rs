//! The libvirt figures.
//!
//! - `libvirt_boot_p50_ms`: POST /servers → ACTIVE on one libvirt host
//!   (libvirt's `test:///default` hypervisor, no daemon), disks included:
//!   the image fetched over the image API into `_base` once, then for
//!   every server a qcow2 overlay grown to m1.tiny's root by `qemu-img`.
//! - `qemu_guest_boot_to_active_s` (informational): POST /servers →
//!   ACTIVE of a real guest on `qemu:///system` (TCG), Debian's cloud
//!   kernel and a busybox initramfs by direct kernel boot, its images
//!   fetched and its disks made; on a machine without libvirtd and QEMU
//!   it is left out, saying why.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use novalog_all_in_one::System;
use novalog_runtime::Config;
use serde_json::json;
use uuid::Uuid;

/// Servers booted, one at a time (each deleted before the next, so the
/// mock host's memory never runs out).
pub const BOOTS: usize = 20;

/// A libvirt host's configuration whose images come over the image API of
/// the same system (on a port chosen here, so that `[glance] api_servers`
/// can name it before the API starts).
fn libvirt_config(dir: &Path, uri: &str) -> anyhow::Result<Config> {
    let mut cfg = super::config(dir, 0);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    cfg.api.listen = format!("127.0.0.1:{port}");
    cfg.glance.api_servers = vec![format!("http://127.0.0.1:{port}/image")];
    cfg.compute.driver = "libvirt".into();
    cfg.compute.host = "bench-libvirt".into();
    cfg.libvirt.connection_uri = uri.into();
    cfg.image_cache.manager_interval = 0;
    Ok(cfg)
}

async fn start(cfg: &Config) -> anyhow::Result<System> {
    let driver = novalog_compute::libvirt::LibvirtDriver::from_config(cfg)?;
    Ok(System::start(cfg, Some(std::sync::Arc::new(driver))).await?)
}

pub async fn boot_p50_ms() -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let cfg = libvirt_config(dir.path(), "test:///default")?;
    let system = start(&cfg).await?;
    let bytes: Vec<u8> = (0..16usize << 20).map(|i| (i % 251) as u8).collect();
    let image = upload_image(&system, "bench-raw", "raw", bytes, json!({})).await?;
    let http = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(BOOTS);
    for _ in 0..BOOTS {
        let run = super::boot_run_of(&system, image, 1, 1).await?;
        latencies.extend(run.latencies_ms);
        delete_all(&http, &system).await?;
    }
    system.stop().await?;
    Ok(super::percentile(&latencies, 0.5))
}

/// `qemu_guest_boot_to_active_s`, or why this machine cannot measure it.
pub async fn qemu_guest_boot_s() -> anyhow::Result<Result<f64, String>> {
    let guest = match prepare_real_guest() {
        Ok(g) => g,
        Err(why) => return Ok(Err(why)),
    };
    let dir = tempfile::tempdir()?;
    {
        // QEMU runs as libvirt's user: the instance files must be
        // reachable by it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    }
    let mut cfg = libvirt_config(dir.path(), "qemu:///system")?;
    cfg.libvirt.virt_type = "qemu".into();
    cfg.compute.host = format!("bench-qemu-{}", Uuid::new_v4().simple());
    let system = start(&cfg).await?;
    let read = |f: &str| std::fs::read(guest.join(f));
    let kernel = upload_image(&system, "kernel", "aki", read("vmlinuz")?, json!({})).await?;
    let ramdisk = upload_image(&system, "initramfs", "ari", read("initrd.img")?, json!({})).await?;
    let root = upload_image(
        &system,
        "busybox",
        "qcow2",
        read("root.qcow2")?,
        json!({"kernel_id": kernel.to_string(), "ramdisk_id": ramdisk.to_string(),
               "os_command_line": "console=ttyS0 rdinit=/init"}),
    )
    .await?;
    let run = super::boot_run_of(&system, root, 1, 1).await?;
    delete_all(&reqwest::Client::new(), &system).await?;
    system.stop().await?;
    Ok(Ok(super::percentile(&run.latencies_ms, 0.5) / 1000.0))
}

/// libvirtd up (started here when it is not: no systemd runs it) and the
/// guest's images made by `scripts/guest-image.sh`.
fn prepare_real_guest() -> Result<std::path::PathBuf, String> {
    let up = || {
        std::process::Command::new("virsh")
            .args(["-c", "qemu:///system", "version"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !up() {
        for daemon in ["virtlogd", "libvirtd"] {
            match std::process::Command::new(daemon).arg("-d").status() {
                Ok(s) if s.success() => {}
                Ok(s) => return Err(format!("{daemon} -d failed ({s})")),
                Err(e) => return Err(format!("{daemon} is not installed ({e})")),
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while !up() {
            if Instant::now() > deadline {
                return Err("libvirtd does not answer on qemu:///system".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let out = std::process::Command::new("scripts/guest-image.sh")
        .output()
        .map_err(|e| format!("scripts/guest-image.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/guest-image.sh: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().into())
}

/// An image uploaded through the image API.
async fn upload_image(
    system: &System,
    name: &str,
    disk_format: &str,
    bytes: Vec<u8>,
    properties: serde_json::Value,
) -> anyhow::Result<Uuid> {
    let http = reqwest::Client::new();
    let base = format!("http://{}/image/v2/images", system.api_addr);
    let mut body = json!({"name": name, "disk_format": disk_format,
        "container_format": "bare", "visibility": "public"});
    if let (Some(b), Some(p)) = (body.as_object_mut(), properties.as_object()) {
        b.extend(p.clone());
    }
    let resp = http
        .post(&base)
        .header("X-Auth-Token", "admin:admin")
        .json(&body)
        .send()
        .await?;
    if resp.status().as_u16() != 201 {
        bail!("image create: {} {}", resp.status(), resp.text().await?);
    }
    let body: serde_json::Value = resp.json().await?;
    let id: Uuid = body["id"].as_str().context("image id")?.parse()?;
    let resp = http
        .put(format!("{base}/{id}/file"))
        .header("X-Auth-Token", "admin:admin")
        .header("Content-Type", "application/octet-stream")
        .body(bytes)
        .send()
        .await?;
    if resp.status().as_u16() != 204 {
        bail!("image upload: {} {}", resp.status(), resp.text().await?);
    }
    Ok(id)
}

/// Deletes every server and waits until the list is empty.
async fn delete_all(http: &reqwest::Client, system: &System) -> anyhow::Result<()> {
    let url = format!("http://{}/v2.1/servers", system.api_addr);
    for _ in 0..1200 {
        let list: serde_json::Value = http
            .get(&url)
            .header("X-Auth-Token", "admin:admin")
            .send()
            .await?
            .json()
            .await?;
        let ids: Vec<String> = list["servers"]
            .as_array()
            .context("servers")?
            .iter()
            .filter_map(|s| s["id"].as_str().map(str::to_owned))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        for id in ids {
            http.delete(format!("{url}/{id}"))
                .header("X-Auth-Token", "admin:admin")
                .send()
                .await?;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("servers were not deleted")
}
