//! `novalog-bench`: the figures in BENCHMARKS.md and bench/results.json.
//!
//! Boots servers through the real REST API against the whole system in one
//! process, and times each from the start of its POST to the moment its
//! `InstanceBecameActive` event is on the log (read by a subscriber of the
//! `instances` topic, so no polling skews the figure).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use novalog_all_in_one::System;
use novalog_log::{EventLog, OffsetLookup};
use novalog_runtime::Config;
use novalog_runtime::config::Backend;
use novalog_schemas::{Event, InstanceEvent};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::oneshot;
use uuid::Uuid;

mod billing;
mod http;
mod kafka;
mod libvirt;
mod replay;
mod scale;

#[derive(Parser)]
#[command(about = "Novalog benchmarks: boot latency and throughput")]
struct Args {
    /// Kafka bootstrap servers; without, the Kafka figures are skipped.
    #[arg(long)]
    kafka: Option<String>,
    /// Fake hosts.
    #[arg(long, default_value_t = 1000)]
    hosts: usize,
    /// Servers booted on the embedded log.
    #[arg(long, default_value_t = 3000)]
    boots: usize,
    /// Servers booted on Kafka.
    #[arg(long, default_value_t = 1000)]
    kafka_boots: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Resize + confirm sagas on the embedded log.
    #[arg(long, default_value_t = 500)]
    resizes: usize,
    /// Records the replay figures' log must hold at least.
    #[arg(long, default_value_t = 1_000_000)]
    replay_records: i64,
    /// Only the replay figures, over a log built in this directory and kept
    /// there (for `novalog-replay --data-dir DIR --namespace NS` runs); a
    /// directory a previous run built is timed again as it is.
    #[arg(long)]
    replay_only_in: Option<PathBuf>,
    /// Only the embedded boot run (`--boots` servers, `--concurrency`
    /// clients) with the billing lag, printed; nothing is written.
    #[arg(long)]
    boots_only: bool,
    /// With `--replay-only-in`: only `billing_events_per_s`, printed (the
    /// log is built first when the directory has none).
    #[arg(long)]
    billing_only: bool,
    /// With `--replay-only-in`: only `rebuild all` (no index, `state-at`,
    /// `verify` or billing figure), printed; the log is built first if the
    /// directory has none.
    #[arg(long)]
    rebuild_only: bool,
    /// With `--boots-only`: the all-in-one without its billing subscriber
    /// (`[billing] enabled = false`), for billing's cost to boots/s.
    #[arg(long)]
    no_billing: bool,
    /// With `--boots-only`: no client polling `/billing/v1` for the lag
    /// (boots/s with billing, without the poller's own load).
    #[arg(long)]
    no_lag_poll: bool,
    /// Boot + delete cycles before the memory is read again
    /// (`rss_growth_mb_per_100k_deleted`, scaled to 100,000).
    #[arg(long, default_value_t = 100_000)]
    scale_cycles: usize,
    /// Live servers the API alone is measured with (`api_rss_mb_100k`,
    /// `servers_detail_p99_ms_100k`).
    #[arg(long, default_value_t = 100_000)]
    scale_servers: usize,
    /// Boot through this Nova-compatible compute endpoint over HTTP (e.g.
    /// `http://controller:8774/v2.1`) and print the figures; nothing else
    /// runs and nothing is written. With `--os-auth-url` a Keystone token,
    /// else noauth2's `--noauth-token`.
    #[arg(long)]
    url: Option<String>,
    /// Keystone v3 endpoint for `--url` (e.g. `http://controller/identity/v3`).
    #[arg(long, env = "OS_AUTH_URL")]
    os_auth_url: Option<String>,
    #[arg(long, env = "OS_USERNAME", default_value = "admin")]
    os_username: String,
    #[arg(long, env = "OS_PASSWORD", default_value = "admin")]
    os_password: String,
    #[arg(long, env = "OS_PROJECT_NAME", default_value = "admin")]
    os_project_name: String,
    /// noauth2's token (`user:project`) when there is no `--os-auth-url`.
    #[arg(long, default_value = "admin:admin")]
    noauth_token: String,
    /// With `--url`: the flavor (default: the one with the least RAM).
    #[arg(long)]
    flavor: Option<String>,
    /// With `--url`: the image (default: the first active one).
    #[arg(long)]
    image: Option<String>,
    /// Servers booted over HTTP (with `--url`, and the `http_*` figures).
    #[arg(long, default_value_t = 1000)]
    http_boots: usize,
    /// Milliseconds between two looks at a server being built.
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,
    /// With `--url`: delete each server once it is ACTIVE.
    #[arg(long)]
    delete: bool,
    /// Only the scale figures, printed; nothing is written.
    #[arg(long)]
    scale_only: bool,
    /// Only the libvirt figures (`libvirt_boot_p50_ms`,
    /// `qemu_guest_boot_to_active_s`): merged into `--out-json`, their
    /// rows replaced in `--out-md`.
    #[arg(long)]
    libvirt_only: bool,
    #[arg(long, default_value = "bench/results.json")]
    out_json: PathBuf,
    #[arg(long, default_value = "BENCHMARKS.md")]
    out_md: PathBuf,
}

pub(crate) struct BootRun {
    latencies_ms: Vec<f64>,
    wall: Duration,
}

impl BootRun {
    fn percentile(&self, p: f64) -> f64 {
        let mut v = self.latencies_ms.clone();
        v.sort_by(f64::total_cmp);
        let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[idx]
    }

    fn per_second(&self) -> f64 {
        self.latencies_ms.len() as f64 / self.wall.as_secs_f64()
    }
}

type Waiters = Arc<Mutex<HashMap<Uuid, oneshot::Sender<Instant>>>>;

/// Follows `instances` from its current end and fires the waiter of each
/// instance that becomes ACTIVE (or fails: the bench then stops).
async fn watch_active(
    log: Arc<dyn EventLog>,
    topic: String,
    waiters: Waiters,
    early: Arc<Mutex<HashMap<Uuid, Instant>>>,
) -> anyhow::Result<()> {
    let ends = log.end_offsets(&topic).await?;
    let lookup: OffsetLookup = Arc::new(move |_, p| ends.get(p as usize).copied());
    let mut sub = log
        .subscribe(&format!("bench-{}", Uuid::new_v4()), &[topic], lookup)
        .await?;
    loop {
        for rec in sub.next_batch(1024).await? {
            let now = Instant::now();
            let env = novalog_schemas::decode(&rec.value)?;
            if let Event::Instance(InstanceEvent::InstanceBecameActive { .. })
            | Event::Instance(InstanceEvent::InstanceFailed { .. }) = env.event
            {
                let id: Uuid = env.meta.aggregate_id.parse()?;
                if matches!(
                    env.event,
                    Event::Instance(InstanceEvent::InstanceFailed { .. })
                ) {
                    eprintln!("warning: instance {id} went to ERROR");
                }
                match waiters.lock().remove(&id) {
                    Some(tx) => {
                        let _ = tx.send(now);
                    }
                    None => {
                        early.lock().insert(id, now);
                    }
                }
            }
        }
    }
}

async fn boot_run(system: &System, boots: usize, concurrency: usize) -> anyhow::Result<BootRun> {
    let image = system.demo_image.context("no demo image")?;
    boot_run_of(system, image, boots, concurrency).await
}

/// [`boot_run`] of servers from `image`.
async fn boot_run_of(
    system: &System,
    image: Uuid,
    boots: usize,
    concurrency: usize,
) -> anyhow::Result<BootRun> {
    let waiters: Waiters = Arc::default();
    let early: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let watcher = tokio::spawn(watch_active(
        system.log.clone(),
        system.topics.instances.clone(),
        waiters.clone(),
        early.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let url = format!("http://{}/v2.1/servers", system.api_addr);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let (http, url, next, waiters, early) = (
            http.clone(),
            url.clone(),
            next.clone(),
            waiters.clone(),
            early.clone(),
        );
        async move {
            let mut lat = Vec::new();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= boots {
                    return anyhow::Ok(lat);
                }
                let t0 = Instant::now();
                let id = create_server(&http, &url, image, format!("bench-{n}")).await?;
                let (tx, rx) = oneshot::channel();
                let done = {
                    let mut w = waiters.lock();
                    match early.lock().remove(&id) {
                        Some(at) => Some(at),
                        None => {
                            w.insert(id, tx);
                            None
                        }
                    }
                };
                let at = match done {
                    Some(at) => at,
                    None => tokio::time::timeout(Duration::from_secs(60), rx)
                        .await
                        .context("boot timed out")??,
                };
                lat.push(at.duration_since(t0).as_secs_f64() * 1000.0);
            }
        }
    });
    let results = futures::future::try_join_all(workers).await?;
    let wall = started.elapsed();
    watcher.abort();
    Ok(BootRun {
        latencies_ms: results.into_iter().flatten().collect(),
        wall,
    })
}

type EventWaiters = Arc<Mutex<HashMap<(Uuid, &'static str), oneshot::Sender<Instant>>>>;
type EarlyEvents = Arc<Mutex<HashMap<(Uuid, &'static str), Instant>>>;

/// Follows `instances` from its current end and fires the waiter of each
/// (instance, event type) it sees.
async fn watch_events(
    log: Arc<dyn EventLog>,
    topic: String,
    waiters: EventWaiters,
    early: EarlyEvents,
) -> anyhow::Result<()> {
    let ends = log.end_offsets(&topic).await?;
    let lookup: OffsetLookup = Arc::new(move |_, p| ends.get(p as usize).copied());
    let mut sub = log
        .subscribe(&format!("bench-{}", Uuid::new_v4()), &[topic], lookup)
        .await?;
    loop {
        for rec in sub.next_batch(1024).await? {
            let now = Instant::now();
            let env = novalog_schemas::decode(&rec.value)?;
            let Ok(id) = env.meta.aggregate_id.parse::<Uuid>() else {
                continue;
            };
            let key = (id, env.event.type_name());
            match waiters.lock().remove(&key) {
                Some(tx) => {
                    let _ = tx.send(now);
                }
                None => {
                    early.lock().insert(key, now);
                }
            }
        }
    }
}

/// Starts [`watch_events`] on `system`'s `instances` from its current end
/// and gives it a moment to subscribe.
async fn follow_events(
    system: &System,
) -> (
    EventWaiters,
    EarlyEvents,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let waiters: EventWaiters = Arc::default();
    let early: EarlyEvents = Arc::default();
    let watcher = tokio::spawn(watch_events(
        system.log.clone(),
        system.topics.instances.clone(),
        waiters.clone(),
        early.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    (waiters, early, watcher)
}

/// Waits for `event` on instance `id`.
/// `POST /servers` as admin (noauth2) for a `m1.tiny` server from `image`
/// with no network; its id once the API accepted it (202).
async fn create_server(
    http: &reqwest::Client,
    servers_url: &str,
    image: Uuid,
    name: String,
) -> anyhow::Result<Uuid> {
    let resp = http
        .post(servers_url)
        .header("X-Auth-Token", "admin:admin")
        .json(&json!({"server": {"name": name, "flavorRef": "1", "imageRef": image.to_string(), "networks": "none"}}))
        .send()
        .await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await?;
    if status.as_u16() != 202 {
        bail!("create: {status} {body}");
    }
    Ok(body["server"]["id"].as_str().context("id")?.parse()?)
}

async fn wait_event(
    waiters: &EventWaiters,
    early: &EarlyEvents,
    id: Uuid,
    event: &'static str,
) -> anyhow::Result<Instant> {
    let (tx, rx) = oneshot::channel();
    {
        let mut w = waiters.lock();
        if let Some(at) = early.lock().remove(&(id, event)) {
            return Ok(at);
        }
        w.insert((id, event), tx);
    }
    Ok(tokio::time::timeout(Duration::from_secs(60), rx)
        .await
        .with_context(|| format!("{event} of {id} timed out"))??)
}

struct ResizeRun {
    /// resize request → VERIFY_RESIZE.
    to_verify_ms: Vec<f64>,
    /// resize request → VERIFY_RESIZE → confirm request → ACTIVE.
    to_confirmed_ms: Vec<f64>,
    wall: Duration,
}

fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Boots `n` servers, then resizes each (m1.tiny → m1.small) and confirms
/// it as soon as it is VERIFY_RESIZE, `concurrency` at a time.
async fn resize_run(system: &System, n: usize, concurrency: usize) -> anyhow::Result<ResizeRun> {
    let (waiters, early, watcher) = follow_events(system).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let base = format!("http://{}/v2.1", system.api_addr);
    let image = system.demo_image.context("no demo image")?;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(
            create_server(
                &http,
                &format!("{base}/servers"),
                image,
                format!("resize-{i}"),
            )
            .await?,
        );
    }
    for id in &ids {
        wait_event(&waiters, &early, *id, "InstanceBecameActive").await?;
    }
    let queue = Arc::new(Mutex::new(ids));
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let (http, base, queue, waiters, early) = (
            http.clone(),
            base.clone(),
            queue.clone(),
            waiters.clone(),
            early.clone(),
        );
        async move {
            let mut out = Vec::new();
            loop {
                let Some(id) = queue.lock().pop() else {
                    return anyhow::Ok(out);
                };
                let action = |body: serde_json::Value| {
                    http.post(format!("{base}/servers/{id}/action"))
                        .header("X-Auth-Token", "admin:admin")
                        .json(&body)
                        .send()
                };
                let t0 = Instant::now();
                let r = action(json!({"resize": {"flavorRef": "2"}})).await?;
                if r.status().as_u16() != 202 {
                    bail!("resize: {} {}", r.status(), r.text().await?);
                }
                let verified = wait_event(&waiters, &early, id, "ResizeFinished").await?;
                let r = action(json!({"confirmResize": null})).await?;
                if r.status().as_u16() != 204 {
                    bail!("confirm: {} {}", r.status(), r.text().await?);
                }
                let done = wait_event(&waiters, &early, id, "ResizeConfirmed").await?;
                out.push((
                    verified.duration_since(t0).as_secs_f64() * 1000.0,
                    done.duration_since(t0).as_secs_f64() * 1000.0,
                ));
            }
        }
    });
    let results: Vec<(f64, f64)> = futures::future::try_join_all(workers)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let wall = started.elapsed();
    watcher.abort();
    Ok(ResizeRun {
        to_verify_ms: results.iter().map(|r| r.0).collect(),
        to_confirmed_ms: results.iter().map(|r| r.1).collect(),
        wall,
    })
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    format!(
        "{} cores ({cpu}), {:.1} GiB RAM, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        mem as f64 / 1_048_576.0,
        std::env::consts::OS
    )
}

fn config(dir: &std::path::Path, hosts: usize) -> Config {
    let mut cfg = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    cfg.api.listen = "127.0.0.1:0".into();
    cfg.vnc.novncproxy_port = 0;
    cfg.api.auth_strategy = "noauth2".into();
    cfg.compute.fake_hosts = hosts;
    // The benchmark boots far more than Nova's default quotas allow.
    cfg.quota.instances = -1;
    cfg.quota.cores = -1;
    cfg.quota.ram = -1;
    cfg.log.namespace = format!("bench{}.", Uuid::new_v4().simple());
    cfg
}

/// The libvirt figures and their rows in the boot table.
async fn libvirt_figures() -> anyhow::Result<(BTreeMap<String, f64>, Vec<String>)> {
    let mut figures = BTreeMap::new();
    let mut lines = Vec::new();
    let p50 = libvirt::boot_p50_ms().await?;
    figures.insert("libvirt_boot_p50_ms".to_owned(), p50);
    lines.push(format!(
        "| {LIBVIRT_ROW} | 1 | {} | 1 | {p50:.2} | | |",
        libvirt::BOOTS
    ));
    println!("libvirt (test:///default): boot p50 {p50:.2} ms");
    match libvirt::qemu_guest_boot_s().await? {
        Ok(s) => {
            figures.insert("qemu_guest_boot_to_active_s".to_owned(), s);
            lines.push(format!(
                "| {QEMU_ROW} | 1 | 1 | 1 | {:.0} | | |",
                s * 1000.0
            ));
            println!("real guest (qemu:///system, TCG): POST to ACTIVE {s:.2} s");
        }
        Err(why) => println!("real guest: not measured on this machine: {why}"),
    }
    Ok((figures, lines))
}

const LIBVIRT_ROW: &str = "embedded log, one libvirt host (`test:///default`, qcow2 overlays by qemu-img), one client at a time";
const QEMU_ROW: &str = "embedded log, one libvirt host (`qemu:///system`, TCG), a real guest (`qemu_guest_boot_to_active_s`, informational)";

/// `--libvirt-only`: the libvirt figures merged into the results and their
/// rows put into the boot table of the Markdown in place of the old ones.
async fn libvirt_only(args: &Args) -> anyhow::Result<()> {
    let (figures, lines) = libvirt_figures().await?;
    let mut results: BTreeMap<String, serde_json::Value> = std::fs::read_to_string(&args.out_json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    for (k, v) in &figures {
        results.insert(k.clone(), serde_json::json!((v * 100.0).round() / 100.0));
    }
    std::fs::write(
        &args.out_json,
        serde_json::to_string_pretty(&results)? + "\n",
    )?;
    if let Ok(md) = std::fs::read_to_string(&args.out_md) {
        std::fs::write(&args.out_md, with_rows(&md, &lines))?;
    }
    Ok(())
}

/// `md` with the libvirt rows of the boot table replaced by `rows` (added
/// after the table's last row if it had none).
fn with_rows(md: &str, rows: &[String]) -> String {
    let is_ours = |l: &str| {
        l.starts_with(&format!("| {LIBVIRT_ROW} ")) || l.starts_with(&format!("| {QEMU_ROW} "))
    };
    let mut out: Vec<String> = Vec::new();
    let mut in_boot_table = false;
    let mut placed = false;
    for line in md.lines() {
        if line.starts_with("| log | fake hosts |") {
            in_boot_table = true;
        }
        if is_ours(line) {
            continue;
        }
        if in_boot_table && !line.starts_with('|') {
            if !placed {
                out.extend(rows.iter().cloned());
                placed = true;
            }
            in_boot_table = false;
        }
        out.push(line.to_owned());
    }
    out.join("\n") + "\n"
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.libvirt_only {
        return libvirt_only(&args).await;
    }
    if let Some(dir) = &args.replay_only_in {
        let mut cfg = config(dir, 100);
        cfg.report_interval = 10;
        if args.billing_only {
            let cfg = replay::filled(&cfg, args.replay_records, args.concurrency)
                .await?
                .cfg;
            let b = billing::run(&cfg).await?;
            println!(
                "billing: {} instances records folded and rated in {:.2} s, {:.0} records/s \
                 ({} period summaries, {} projects)",
                b.records, b.seconds, b.events_per_s, b.summaries, b.projects
            );
            return Ok(());
        }
        let r = replay::run(
            &cfg,
            args.replay_records,
            args.concurrency,
            args.rebuild_only,
        )
        .await?;
        if args.rebuild_only {
            println!(
                "replay: log of {} records in {}; rebuild all {} records in {:.2} s at {:.0} records/s \
                 (the log's records at {:.0}/s; {}; busy: read+decode {:.2} s, fold {:.2} s, write {:.2} s)",
                r.log_records,
                dir.display(),
                r.rebuild_records,
                r.rebuild.seconds,
                r.replay_events_per_s,
                r.log_records as f64 / r.rebuild.seconds.max(1e-9),
                replay::each_rebuild(&r),
                r.rebuild.read_s,
                r.rebuild.fold_s,
                r.rebuild.write_s,
            );
            return Ok(());
        }
        println!(
            "replay: log of {} records in {}; rebuild all {} records in {:.2} s at {:.0} records/s \
             (the log's records at {:.0}/s; {}; busy: read+decode {:.2} s, fold {:.2} s, write {:.2} s); \
             state-at {:.2} ms; verify {:.2} s (equal: {})",
            r.log_records,
            dir.display(),
            r.rebuild_records,
            r.rebuild.seconds,
            r.replay_events_per_s,
            r.log_records as f64 / r.rebuild.seconds.max(1e-9),
            replay::each_rebuild(&r),
            r.rebuild.read_s,
            r.rebuild.fold_s,
            r.rebuild.write_s,
            r.state_at_ms,
            r.verify_s,
            r.verify_equal
        );
        cfg.log.namespace = r.namespace.clone();
        let b = billing::run(&cfg).await?;
        println!(
            "billing: {} instances records folded and rated in {:.2} s, {:.0} records/s \
             ({} period summaries, {} projects)",
            b.records, b.seconds, b.events_per_s, b.summaries, b.projects
        );
        return Ok(());
    }
    let mut figures: BTreeMap<String, f64> = BTreeMap::new();
    let mut lines = Vec::new();
    if args.scale_only {
        scale_figures(&args, &mut figures).await?;
        return Ok(());
    }
    if let Some(url) = &args.url {
        let auth = match &args.os_auth_url {
            Some(auth_url) => http::Auth::Keystone {
                auth_url: auth_url.clone(),
                username: args.os_username.clone(),
                password: args.os_password.clone(),
                project: args.os_project_name.clone(),
            },
            None => http::Auth::NoAuth {
                token: args.noauth_token.clone(),
            },
        };
        let run = http::run(&http::Plan {
            compute_url: url.clone(),
            auth,
            flavor: args.flavor.clone(),
            image: args.image.clone(),
            boots: args.http_boots,
            concurrency: args.concurrency,
            poll: Duration::from_millis(args.poll_ms),
            delete: args.delete,
        })
        .await?;
        println!(
            "{url}: {} boots, {} clients, polling every {} ms: p50 {:.1} ms, p99 {:.1} ms, {:.1} boots/s ({} polls)",
            run.latencies_ms.len(),
            args.concurrency,
            args.poll_ms,
            percentile(&run.latencies_ms, 0.5),
            percentile(&run.latencies_ms, 0.99),
            run.per_second(),
            run.polls
        );
        return Ok(());
    }

    let dir = tempfile::tempdir()?;
    let mut cfg = config(dir.path(), args.hosts);
    if args.no_billing {
        anyhow::ensure!(args.boots_only, "--no-billing is for --boots-only runs");
        cfg.billing.enabled = false;
    }
    let system = System::start(&cfg, None).await?;
    // Warm-up: the first boots pay for connection set-up and cold caches.
    boot_run(&system, 100, args.concurrency).await?;
    if args.no_billing || args.no_lag_poll {
        anyhow::ensure!(args.boots_only, "--no-lag-poll is for --boots-only runs");
        let run = boot_run(&system, args.boots, args.concurrency).await?;
        println!(
            "billing {}, no lag poll: boots p50 {:.2} ms, p99 {:.2} ms, {:.0} boots/s",
            if args.no_billing { "off" } else { "on" },
            run.percentile(0.5),
            run.percentile(0.99),
            run.per_second()
        );
        system.stop().await?;
        return Ok(());
    }
    let lag = billing::Lag::default();
    let lag_watch = tokio::spawn(billing::watch_lag(
        system.log.clone(),
        system.topics.instances.clone(),
        system.api_addr,
        "admin".into(),
        "admin:admin".into(),
        lag.clone(),
    ));
    let ledger_watch = tokio::spawn(billing::watch_ledger(system.billing.clone(), lag.clone()));
    let run = boot_run(&system, args.boots, args.concurrency).await?;
    // The watcher sees the last boots' events after boot_run did: give it
    // a moment to see them (and then to see them billed).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let drained = lag.drain(Duration::from_secs(10)).await;
    if lag_watch.is_finished() {
        // It stopped on an error: that is the bench's error.
        lag_watch.await??;
    } else {
        lag_watch.abort();
    }
    ledger_watch.abort();
    drained?;
    let lag_samples = lag.samples.clone();
    anyhow::ensure!(
        !lag_samples.lock().is_empty(),
        "no billing lag was measured"
    );
    let billing_lag_p99 = percentile(&lag_samples.lock(), 0.99);
    // One lock at a time: the mutex is not reentrant.
    let polls = lag.polls.lock().clone();
    let folded = lag.folded.lock().clone();
    figures.insert("billing_lag_ms_p99".into(), billing_lag_p99);
    println!(
        "billing lag (append → visible in GET /billing/v1): p99 {billing_lag_p99:.1} ms over {} boots \
         ({} GETs, p50 {:.1} ms, p99 {:.1} ms each; committed in the ledger: p50 {:.1} ms, p99 {:.1} ms); \
         boots p50 {:.2} ms, p99 {:.2} ms, {:.0} boots/s",
        lag_samples.lock().len(),
        polls.len(),
        percentile(&polls, 0.5),
        percentile(&polls, 0.99),
        percentile(&folded, 0.5),
        percentile(&folded, 0.99),
        run.percentile(0.5),
        run.percentile(0.99),
        run.per_second()
    );
    if args.boots_only {
        system.stop().await?;
        return Ok(());
    }
    // One client at a time: the latency of the path itself, no queueing.
    let serial = boot_run(&system, 300, 1).await?;
    // Resize + confirm: one client at a time (the saga's own latency), then
    // many (sagas per second).
    let resize_serial = resize_run(&system, 100, 1).await?;
    let resize_many = resize_run(&system, args.resizes, args.concurrency).await?;
    system.stop().await?;
    let scale_md = scale_figures(&args, &mut figures).await?;
    let http_md = http_figures(&args, &mut figures).await?;
    let sagas_per_s = resize_many.to_confirmed_ms.len() as f64 / resize_many.wall.as_secs_f64();
    figures.insert(
        "resize_verify_p50_ms".into(),
        percentile(&resize_serial.to_verify_ms, 0.5),
    );
    figures.insert(
        "resize_confirm_p50_ms".into(),
        percentile(&resize_serial.to_confirmed_ms, 0.5),
    );
    figures.insert(
        "resize_confirm_p50_ms_concurrent".into(),
        percentile(&resize_many.to_confirmed_ms, 0.5),
    );
    figures.insert("sagas_per_s".into(), sagas_per_s);
    let resize_lines = [
        format!(
            "| one client at a time | 100 | {:.2} | {:.2} | {:.2} |",
            percentile(&resize_serial.to_verify_ms, 0.5),
            percentile(&resize_serial.to_confirmed_ms, 0.5),
            percentile(&resize_serial.to_confirmed_ms, 0.99),
        ),
        format!(
            "| {} concurrent clients | {} | {:.2} | {:.2} | {:.2} |",
            args.concurrency,
            args.resizes,
            percentile(&resize_many.to_verify_ms, 0.5),
            percentile(&resize_many.to_confirmed_ms, 0.5),
            percentile(&resize_many.to_confirmed_ms, 0.99),
        ),
    ];
    println!(
        "resize: to VERIFY_RESIZE p50 {:.2} ms, to confirmed p50 {:.2} ms (one client); {:.0} sagas/s",
        percentile(&resize_serial.to_verify_ms, 0.5),
        percentile(&resize_serial.to_confirmed_ms, 0.5),
        sagas_per_s
    );
    figures.insert("boot_p50_ms_one_client".into(), serial.percentile(0.50));
    figures.insert("boot_p99_ms_one_client".into(), serial.percentile(0.99));
    figures.insert("boot_p50_ms".into(), run.percentile(0.50));
    figures.insert("boot_p99_ms".into(), run.percentile(0.99));
    figures.insert("boots_per_s".into(), run.per_second());
    lines.push(format!(
        "| embedded log | {} | {} | {} | {:.2} | {:.2} | {:.0} |",
        args.hosts,
        args.boots,
        args.concurrency,
        run.percentile(0.5),
        run.percentile(0.99),
        run.per_second()
    ));
    lines.push(format!(
        "| embedded log, one client at a time | {} | 300 | 1 | {:.2} | {:.2} | {:.0} |",
        args.hosts,
        serial.percentile(0.5),
        serial.percentile(0.99),
        serial.per_second()
    ));
    println!(
        "embedded: p50 {:.2} ms, p99 {:.2} ms, {:.0} boots/s",
        run.percentile(0.5),
        run.percentile(0.99),
        run.per_second()
    );

    let mut kafka_md = String::new();
    if let Some(brokers) = &args.kafka {
        let dir = tempfile::tempdir()?;
        let mut cfg = config(dir.path(), args.hosts);
        cfg.log.backend = Backend::Kafka;
        cfg.log.bootstrap_servers = brokers.clone();
        cfg.log.partitions = 4;
        let system = System::start(&cfg, None).await?;
        boot_run(&system, 50, args.concurrency).await?;
        let run = boot_run(&system, args.kafka_boots, args.concurrency).await?;
        system.stop().await?;
        // The broker alone, with the same client settings.
        let broker = kafka::open(&cfg, brokers).await?;
        let hop = kafka::hop_ms(&broker, 50).await?;
        let ceiling = kafka::ceiling(&broker, 100_000, 64, 8).await?;
        drop(broker);
        figures.insert("kafka_hop_ms".into(), hop);
        figures.insert(
            "kafka_broker_ceiling_records_per_s".into(),
            ceiling.records_per_s,
        );
        println!(
            "kafka broker alone: hop (append → delivery, one record, idle) p50 {hop:.2} ms; \
             {} records in batches of {} from 8 writers: {:.0} records/s",
            ceiling.records, ceiling.batch, ceiling.records_per_s
        );
        let mock_dir = tempfile::tempdir()?;
        let mock = kafka::mock_boots(
            &config(mock_dir.path(), args.hosts),
            args.kafka_boots,
            args.concurrency,
        )
        .await?;
        figures.insert("kafka_mock_boots_per_s".into(), mock.per_second());
        lines.push(format!(
            "| Kafka (librdkafka's mock cluster, in process) | {} | {} | {} | {:.2} | {:.2} | {:.0} |",
            args.hosts,
            args.kafka_boots,
            args.concurrency,
            mock.percentile(0.5),
            mock.percentile(0.99),
            mock.per_second()
        ));
        println!(
            "kafka mock cluster: p50 {:.2} ms, p99 {:.2} ms, {:.0} boots/s",
            mock.percentile(0.5),
            mock.percentile(0.99),
            mock.per_second()
        );
        kafka_md = format!(
            "Kafka path (tansu): one record's append → delivery when idle (`kafka_hop_ms`) {hop:.2} ms at p50; \
             the broker alone with Novalog's client settings (`kafka_broker_ceiling_records_per_s`): {:.0} records/s \
             ({} records of {} bytes in batches of {} from 8 writers over 4 partitions, one reader).\n\n",
            ceiling.records_per_s, ceiling.records, 400, ceiling.batch
        );
        figures.insert("kafka_boot_p50_ms".into(), run.percentile(0.50));
        figures.insert("kafka_boot_p99_ms".into(), run.percentile(0.99));
        figures.insert("kafka_boots_per_s".into(), run.per_second());
        lines.push(format!(
            "| Kafka (tansu, SQLite storage) | {} | {} | {} | {:.2} | {:.2} | {:.0} |",
            args.hosts,
            args.kafka_boots,
            args.concurrency,
            run.percentile(0.5),
            run.percentile(0.99),
            run.per_second()
        ));
        println!(
            "kafka: p50 {:.2} ms, p99 {:.2} ms, {:.0} boots/s",
            run.percentile(0.5),
            run.percentile(0.99),
            run.per_second()
        );
    }

    // One libvirt host on libvirt's test:///default hypervisor, disks made
    // with qemu-img: the libvirt driver's own cost on top of the path; and
    // a real guest where the machine has libvirtd and QEMU.
    let (libvirt_figures, libvirt_lines) = libvirt_figures().await?;
    figures.extend(libvirt_figures);
    lines.extend(libvirt_lines);

    // The scheduler alone: default filters and weighers, random clouds.
    let mut sched_lines = Vec::new();
    for (hosts, name) in [(1_000, "1k"), (10_000, "10k"), (100_000, "100k")] {
        let decisions = if hosts >= 100_000 { 1_000 } else { 2_000 };
        let (per_s, p99_us) = novalog_scheduler::bench::run(hosts, decisions);
        figures.insert(format!("scheduler_decisions_per_s_{name}"), per_s);
        if hosts == 10_000 {
            figures.insert("scheduler_p99_us_10k".into(), p99_us);
        }
        sched_lines.push(format!(
            "| {hosts} | {decisions} | {per_s:.0} | {p99_us:.0} |"
        ));
        println!("scheduler, {hosts} hosts: {per_s:.0} decisions/s, p99 {p99_us:.0} µs");
    }

    // Replay: a log of at least `replay_records` records from the bench
    // cloud, then novalog-replay over it.
    let replay_dir = tempfile::tempdir()?;
    let mut replay_cfg = config(replay_dir.path(), 100);
    replay_cfg.report_interval = 10;
    let r = replay::run(&replay_cfg, args.replay_records, args.concurrency, false).await?;
    figures.insert("replay_log_records".into(), r.log_records as f64);
    figures.insert("replay_events_per_s".into(), r.replay_events_per_s);
    replay_cfg.log.namespace = r.namespace.clone();
    let b = billing::run(&replay_cfg).await?;
    figures.insert("billing_events_per_s".into(), b.events_per_s);
    figures.insert("state_at_ms_1m".into(), r.state_at_ms);
    figures.insert("verify_s_1m".into(), r.verify_s);
    let per_record = r.log_bytes as f64 / r.log_records.max(1) as f64;
    figures.insert("log_bytes_per_record".into(), per_record);
    let per_server = r.log_bytes as f64 / r.servers.max(1) as f64;
    figures.insert("log_bytes_per_server_lifecycle".into(), per_server);
    let host_day = r.heartbeat_bytes * 86_400.0 / r.report_interval.max(1) as f64;
    figures.insert("log_bytes_per_host_day_heartbeats".into(), host_day);
    println!(
        "replay: log {} records ({:.0} MiB, {} servers in {:.0} s); rebuild all {} records at {:.0} records/s \
         (the log's records at {:.0}/s; {}); state-at {:.2} ms; verify {:.2} s ({}); index {:.2} s",
        r.log_records,
        r.log_bytes as f64 / 1_048_576.0,
        r.servers,
        r.fill_s,
        r.rebuild_records,
        r.replay_events_per_s,
        r.log_records as f64 / r.rebuild.seconds.max(1e-9),
        replay::each_rebuild(&r),
        r.state_at_ms,
        r.verify_s,
        if r.verify_equal {
            "byte-equal"
        } else {
            "DIFFERENT"
        },
        r.index_s
    );
    let replay_md = format!(
        "## Replay: `novalog-replay` over the bench cloud's log (embedded)\n\n\
         The log: {} records ({:.0} MiB on disk) made by {} servers booted, one in ten resized and confirmed, \
         one in four rebooted, all deleted, on 100 fake hosts ({:.0} s).\n\n\
         | figure | value | goal |\n|---|---|---|\n\
         | `replay_events_per_s`: `rebuild all`, the {} projections folded side by side in {:.2} s (records folded, each projection counting its own input topics: {}; {}; the log's own records: {:.0}/s) | {:.0} records/s | ≥ 500,000 |\n\
         | `state_at_ms_1m`: one `state-at` from the index (median of 11) | {:.2} ms | ≤ 50 |\n\
         | `verify_s_1m`: one `verify` of the {} projections ({}) | {:.2} s | ≤ 10 |\n\
         | building the `state-at` index from scratch | {:.2} s | |\n\
         | `billing_events_per_s`: novalog-billing's fold and rating of `instances` ({} records; {} period summaries), side effects off | {:.0} records/s | ≥ 500,000 |\n\n\
         Log growth (embedded): {:.0} bytes per record on disk; {:.1} KiB per server \
         (boot, its share of resizes and reboots, delete); heartbeats {:.1} MiB per host per day at \
         `report_interval` = {} s. An idle server adds nothing.\n\n",
        r.log_records,
        r.log_bytes as f64 / 1_048_576.0,
        r.servers,
        r.fill_s,
        r.rebuilt.len(),
        r.rebuild.seconds,
        r.rebuild_records,
        replay::each_rebuild(&r),
        r.log_records as f64 / r.rebuild.seconds.max(1e-9),
        r.replay_events_per_s,
        r.state_at_ms,
        r.rebuilt.len(),
        if r.verify_equal {
            "byte-equal"
        } else {
            "DIFFERENT"
        },
        r.verify_s,
        r.index_s,
        b.records,
        b.summaries,
        b.events_per_s,
        per_record,
        per_server / 1024.0,
        host_day / 1_048_576.0,
        r.report_interval,
    );

    if let Some(parent) = args.out_json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // Figures measured elsewhere (`first_run_s`, by hand on a fresh clone)
    // stay; the ones measured here are replaced.
    let mut rounded: BTreeMap<String, serde_json::Value> = std::fs::read_to_string(&args.out_json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    for (k, v) in &figures {
        rounded.insert(k.clone(), serde_json::json!((v * 100.0).round() / 100.0));
    }
    std::fs::write(
        &args.out_json,
        serde_json::to_string_pretty(&rounded)? + "\n",
    )?;

    let notes = std::fs::read_to_string("bench/NOTES.md").unwrap_or_default();
    let md = format!(
        "# Benchmarks\n\nWritten by `make bench` (`novalog-bench`); figures also in `bench/results.json`.\n\n\
         - Machine: {}\n- Command: `make bench`\n- Date: {}\n\n\
         ## Boot: POST /servers → ACTIVE (fake driver, zero latency; and one libvirt host)\n\n\
         | log | fake hosts | servers | concurrent clients | p50 ms | p99 ms | boots/s |\n|---|---|---|---|---|---|---|\n{}\n\n{}\
         `billing_lag_ms_p99` (goal ≤ 100): {:.1} ms from an `InstanceBecameActive`'s append to \
         a `GET /billing/v1/projects/admin?format=csv` on the API's listener showing the server's usage running (one client polling back to back), during the embedded {}-client run.\n\n\
         ## Resize: request → VERIFY_RESIZE → confirm → ACTIVE (fake driver, embedded log)\n\n\
         | clients | sagas | to VERIFY_RESIZE p50 ms | to ACTIVE p50 ms | to ACTIVE p99 ms |\n|---|---|---|---|---|\n{}\n\n\
         Sagas per second (resize + confirm, concurrent): {:.0}. Real Nova 34 on this machine: 1.66 s to VERIFY_RESIZE and 0.70 s more to ACTIVE.\n\n\
         ## Scheduler: decisions on a random cloud (default filters and weighers)\n\n\
         | hosts | decisions | decisions/s | p99 µs |\n|---|---|---|---|\n{}\n\n{}{}{}{}",
        machine(),
        chrono_like_now(),
        lines.join("\n"),
        kafka_md,
        billing_lag_p99,
        args.concurrency,
        resize_lines.join("\n"),
        sagas_per_s,
        sched_lines.join("\n"),
        scale_md,
        http_md,
        replay_md,
        notes
    );
    std::fs::write(&args.out_md, md)?;
    Ok(())
}

/// The `http_*` figures: the all-in-one with Keystone, booted through
/// `http` as any client would (the same code as `--url`).
async fn http_figures(args: &Args, figures: &mut BTreeMap<String, f64>) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let mut cfg = config(dir.path(), args.hosts);
    cfg.api.auth_strategy = "keystone".into();
    let system = System::start(&cfg, None).await?;
    let plan = |boots| http::Plan {
        compute_url: format!("http://{}/v2.1", system.api_addr),
        auth: http::Auth::Keystone {
            auth_url: format!("http://{}/identity/v3", system.api_addr),
            username: "admin".into(),
            password: "admin".into(),
            project: "admin".into(),
        },
        flavor: None,
        image: None,
        boots,
        concurrency: args.concurrency,
        poll: Duration::from_millis(args.poll_ms),
        delete: false,
    };
    http::run(&plan(100)).await?;
    let run = http::run(&plan(args.http_boots)).await?;
    system.stop().await?;
    let (p50, p99) = (
        percentile(&run.latencies_ms, 0.5),
        percentile(&run.latencies_ms, 0.99),
    );
    figures.insert("http_boot_p50_ms".into(), p50);
    figures.insert("http_boots_per_s".into(), run.per_second());
    println!(
        "http (keystone, {} clients, polling every {} ms): p50 {p50:.2} ms, p99 {p99:.2} ms, {:.0} boots/s",
        args.concurrency,
        args.poll_ms,
        run.per_second()
    );
    Ok(format!(
        "## Boot over HTTP as any client sees it (`novalog-bench --url`)\n\n\
         The all-in-one with Keystone tokens (fake driver, embedded log, {} fake hosts): {} clients, each \
         `POST /v2.1/servers` then `GET /v2.1/servers/{{id}}` every {} ms until ACTIVE, {} servers. \
         The same client runs against any Nova-compatible endpoint: \
         `novalog-bench --url http://controller:8774/v2.1 --os-auth-url http://controller/identity/v3 \
         --os-username admin --os-password … --os-project-name admin --delete`.\n\n\
         | figure | value |\n|---|---|\n\
         | `http_boot_p50_ms` | {p50:.2} ms (p99 {p99:.2}) |\n\
         | `http_boots_per_s` | {:.0} |\n\n",
        args.hosts,
        args.concurrency,
        args.poll_ms,
        run.latencies_ms.len(),
        run.per_second(),
    ))
}

/// The many-servers figures (`scale`): into `figures`, and their section
/// of BENCHMARKS.md.
async fn scale_figures(args: &Args, figures: &mut BTreeMap<String, f64>) -> anyhow::Result<String> {
    // Many servers: memory after boot + delete cycles, then the API alone
    // with a large live cloud.
    let scale_dir = tempfile::tempdir()?;
    let scale_cfg = config(scale_dir.path(), args.hosts);
    let sc = scale::run(
        &scale_cfg,
        scale_dir.path(),
        args.scale_cycles,
        args.scale_servers,
        args.concurrency,
    )
    .await?;
    drop(scale_dir);
    let growth_per_100k =
        (sc.rss_after_mb - sc.rss_before_mb) * 100_000.0 / sc.cycles.max(1) as f64;
    println!(
        "scale: {} boot+delete cycles in {:.1} s, resident {:.1} → {:.1} MiB ({growth_per_100k:+.1} MiB per 100k); \
         {} live servers in {:.1} s; novalog-api alone: ready in {:.1} s, resident {:.1} MiB, \
         servers/detail?limit=1000 over {} pages p50 {:.2} ms p99 {:.2} ms",
        sc.cycles,
        sc.cycles_s,
        sc.rss_before_mb,
        sc.rss_after_mb,
        sc.servers,
        sc.fill_s,
        sc.api_ready_s,
        sc.api_rss_mb,
        sc.pages,
        sc.detail_p50_ms,
        sc.detail_p99_ms
    );
    figures.insert("rss_growth_mb_per_100k_deleted".into(), growth_per_100k);
    figures.insert("api_rss_mb_100k".into(), sc.api_rss_mb);
    figures.insert("servers_detail_p99_ms_100k".into(), sc.detail_p99_ms);
    Ok(format!(
        "## Many servers (fake driver, embedded log)\n\n\
         | figure | value | goal |\n|---|---|---|\n\
         | `rss_growth_mb_per_100k_deleted`: the all-in-one's resident memory after {} boot + delete cycles ({} clients, {:.0} s) against before them (after 2,000 warm-up cycles), per 100,000 | {:+.1} MiB ({:.1} → {:.1}) | ≈ 0 |\n\
         | `api_rss_mb_100k`: a `novalog-api` process alone over {} live servers, after it listed them all twice (ready {:.1} s after start) | {:.1} MiB | ≤ 300 |\n\
         | `servers_detail_p99_ms_100k`: `GET /v2.1/servers/detail?limit=1000` from that process, every page of the {} servers in turn ({} pages; p50 {:.2} ms) | {:.2} ms | ≤ 50 |\n\n",
        sc.cycles,
        args.concurrency,
        sc.cycles_s,
        growth_per_100k,
        sc.rss_before_mb,
        sc.rss_after_mb,
        sc.servers,
        sc.api_ready_s,
        sc.api_rss_mb,
        sc.servers,
        sc.pages,
        sc.detail_p50_ms,
        sc.detail_p99_ms,
    ))
}

fn chrono_like_now() -> String {
    let out = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
