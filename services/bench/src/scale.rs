//! A cloud of many servers: the memory a long run of boots and deletes
//! leaves behind (`rss_growth_mb_per_100k_deleted`), then, with 100,000
//! live servers, the API on its own: its resident memory
//! (`api_rss_mb_100k`) and a page of `GET /servers/detail`
//! (`servers_detail_p99_ms_100k`).
//!
//! The all-in-one makes the cloud (embedded log); the API figures are of a
//! `novalog-api` process started afterwards on the same data directory, so
//! they are the API's own, not the whole system's.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use novalog_all_in_one::System;
use novalog_runtime::Config;

use crate::{create_server, follow_events, percentile, wait_event};

pub struct Scale {
    pub cycles: usize,
    pub cycles_s: f64,
    /// The whole process's resident memory before and after the cycles.
    pub rss_before_mb: f64,
    pub rss_after_mb: f64,
    pub servers: usize,
    pub fill_s: f64,
    /// The `novalog-api` process: seconds from its start to ready, and its
    /// resident memory then and after the pages were read.
    pub api_ready_s: f64,
    pub api_rss_mb: f64,
    pub pages: usize,
    pub detail_p50_ms: f64,
    pub detail_p99_ms: f64,
}

/// Resident memory of a process, from `/proc/<pid>/status`, in MiB.
pub fn rss_mb(pid: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("no VmRSS")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb / 1024.0)
}

/// `n` boot + delete cycles, `concurrency` at a time: each server is
/// created, awaited ACTIVE, deleted and awaited deleted.
async fn cycles(system: &System, n: usize, concurrency: usize) -> anyhow::Result<Duration> {
    let (waiters, early, watcher) = follow_events(system).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let base = format!("http://{}/v2.1", system.api_addr);
    let image = system.demo_image.context("no demo image")?;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let (http, base, next, waiters, early) = (
            http.clone(),
            base.clone(),
            next.clone(),
            waiters.clone(),
            early.clone(),
        );
        async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(());
                }
                let id = create_server(&http, &format!("{base}/servers"), image, format!("c-{i}"))
                    .await?;
                wait_event(&waiters, &early, id, "InstanceBecameActive").await?;
                let r = http
                    .delete(format!("{base}/servers/{id}"))
                    .header("X-Auth-Token", "admin:admin")
                    .send()
                    .await?;
                if r.status().as_u16() != 204 {
                    bail!("delete: {} {}", r.status(), r.text().await?);
                }
                wait_event(&waiters, &early, id, "InstanceDeleted").await?;
            }
        }
    });
    futures::future::try_join_all(workers).await?;
    let wall = started.elapsed();
    watcher.abort();
    Ok(wall)
}

/// A free port on 127.0.0.1 (bound, read, released).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts `novalog-api` (beside this binary) on `cfg`'s data directory and
/// log, and waits until it answers `/readyz` (its projection caught up).
async fn start_api(cfg: &Config, dir: &Path) -> anyhow::Result<(std::process::Child, String)> {
    let exe = std::env::current_exe()?
        .parent()
        .context("no directory")?
        .join("novalog-api");
    anyhow::ensure!(exe.exists(), "{} is not built", exe.display());
    let mut api_cfg = cfg.clone();
    let addr = format!("127.0.0.1:{}", free_port()?);
    api_cfg.api.listen = addr.clone();
    api_cfg.bootstrap.demo_catalog = false;
    let file = dir.join("api.toml");
    std::fs::write(&file, toml::to_string(&api_cfg)?)?;
    let child = std::process::Command::new(exe)
        .arg("--config")
        .arg(&file)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    Ok((child, addr))
}

/// The cloud: `cycles` boot + delete cycles, then `servers` live servers;
/// then the API alone over them.
pub async fn run(
    cfg: &Config,
    dir: &Path,
    cycles_n: usize,
    servers: usize,
    concurrency: usize,
) -> anyhow::Result<Scale> {
    let system = System::start(cfg, None).await?;
    // Warm-up: caches, connections and the allocator's arenas settle.
    cycles(&system, 2_000.min(cycles_n), concurrency).await?;
    let me = std::process::id().to_string();
    let rss_before_mb = rss_mb(&me)?;
    let cycles_s = cycles(&system, cycles_n, concurrency).await?.as_secs_f64();
    let rss_after_mb = rss_mb(&me)?;
    let fill = crate::boot_run(&system, servers, concurrency).await?;
    system.stop().await?;

    let started = Instant::now();
    let (mut child, addr) = start_api(cfg, dir).await?;
    let result = api_figures(&addr, servers, started, &mut child).await;
    let _ = child.kill();
    let _ = child.wait();
    let (api_ready_s, api_rss_mb, pages, detail) = result?;
    Ok(Scale {
        cycles: cycles_n,
        cycles_s,
        rss_before_mb,
        rss_after_mb,
        servers,
        fill_s: fill.wall.as_secs_f64(),
        api_ready_s,
        api_rss_mb,
        pages,
        detail_p50_ms: percentile(&detail, 0.5),
        detail_p99_ms: percentile(&detail, 0.99),
    })
}

/// Ready time, resident memory, pages read and each page's latency of the
/// API at `addr`, which must list `servers` servers.
async fn api_figures(
    addr: &str,
    servers: usize,
    started: Instant,
    child: &mut std::process::Child,
) -> anyhow::Result<(f64, f64, usize, Vec<f64>)> {
    let http = reqwest::Client::new();
    let ready = loop {
        if let Some(status) = child.try_wait()? {
            bail!("novalog-api exited: {status}");
        }
        if let Ok(r) = http.get(format!("http://{addr}/readyz")).send().await
            && r.status().is_success()
        {
            break started.elapsed().as_secs_f64();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "novalog-api not ready after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let pid = child.id().to_string();
    let page = |marker: Option<String>| {
        let mut url = format!("http://{addr}/v2.1/servers/detail?limit=1000");
        if let Some(m) = marker {
            url.push_str(&format!("&marker={m}"));
        }
        http.get(url).header("X-Auth-Token", "admin:admin").send()
    };
    // Every page of the list, twice: the first pass warms what a reader
    // would have warm.
    let mut latencies = Vec::new();
    let mut listed = 0;
    for pass in 0..2 {
        let mut marker = None;
        listed = 0;
        loop {
            let t0 = Instant::now();
            let r = page(marker.clone()).await?;
            let status = r.status();
            let body: serde_json::Value = r.json().await?;
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            if !status.is_success() {
                bail!("servers/detail: {status} {body}");
            }
            let list = body["servers"].as_array().context("servers")?;
            if pass == 1 {
                latencies.push(ms);
            }
            listed += list.len();
            let Some(last) = list.last() else { break };
            if list.len() < 1000 {
                break;
            }
            marker = Some(last["id"].as_str().context("id")?.to_owned());
        }
    }
    anyhow::ensure!(
        listed >= servers,
        "the API listed {listed} servers, expected {servers}"
    );
    let rss = rss_mb(&pid)?;
    Ok((ready, rss, latencies.len(), latencies))
}
