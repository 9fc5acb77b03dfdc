//! `libvirt_boot_p50_ms`: POST /servers → ACTIVE on one libvirt host
//! (libvirt's `test:///default` hypervisor, no daemon), disks included:
//! the image fetched into `_base` once, then a qcow2 overlay, an
//! ephemeral-free m1.tiny root grown by `qemu-img` for every server.

use std::sync::Arc;

use anyhow::{Context, bail};
use novalog_all_in_one::System;
use serde_json::json;
use uuid::Uuid;

/// Servers booted, one at a time (each deleted before the next, so the
/// mock host's memory never runs out).
pub const BOOTS: usize = 20;

pub async fn boot_p50_ms() -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut cfg = super::config(dir.path(), 0);
    cfg.compute.driver = "libvirt".into();
    cfg.libvirt.connection_uri = "test:///default".into();
    let driver = novalog_compute::libvirt::LibvirtDriver::from_config(&cfg)?;
    let system = System::start(&cfg, Some(Arc::new(driver))).await?;
    let image = upload_image(&system).await?;
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

/// A 16 MiB raw image uploaded through the image API.
async fn upload_image(system: &System) -> anyhow::Result<Uuid> {
    let http = reqwest::Client::new();
    let base = format!("http://{}/image/v2/images", system.api_addr);
    let resp = http
        .post(&base)
        .header("X-Auth-Token", "admin:admin")
        .json(&json!({"name": "bench-raw", "disk_format": "raw", "container_format": "bare", "visibility": "public"}))
        .send()
        .await?;
    if resp.status().as_u16() != 201 {
        bail!("image create: {} {}", resp.status(), resp.text().await?);
    }
    let body: serde_json::Value = resp.json().await?;
    let id: Uuid = body["id"].as_str().context("image id")?.parse()?;
    let bytes: Vec<u8> = (0..16usize << 20).map(|i| (i % 251) as u8).collect();
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
    for _ in 0..600 {
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
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    bail!("servers were not deleted")
}
