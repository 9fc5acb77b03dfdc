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
mod libvirt;
mod replay;

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
    /// With `--boots-only`: the all-in-one without its billing subscriber
    /// (`[billing] enabled = false`), for billing's cost to boots/s.
    #[arg(long)]
    no_billing: bool,
    /// With `--boots-only`: no client polling `/billing/v1` for the lag
    /// (boots/s with billing, without the poller's own load).
    #[arg(long)]
    no_lag_poll: bool,
    #[arg(long, default_value = "bench/results.json")]
    out_json: PathBuf,
    #[arg(long, default_value = "BENCHMARKS.md")]
    out_md: PathBuf,
}

struct BootRun {
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
    let waiters: EventWaiters = Arc::default();
    let early: EarlyEvents = Arc::default();
    let watcher = tokio::spawn(watch_events(
        system.log.clone(),
        system.topics.instances.clone(),
        waiters.clone(),
        early.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
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
    cfg.api.auth_strategy = "noauth2".into();
    cfg.compute.fake_hosts = hosts;
    // The benchmark boots far more than Nova's default quotas allow.
    cfg.quota.instances = -1;
    cfg.quota.cores = -1;
    cfg.quota.ram = -1;
    cfg.log.namespace = format!("bench{}.", Uuid::new_v4().simple());
    cfg
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
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
        let r = replay::run(&cfg, args.replay_records, args.concurrency).await?;
        println!(
            "replay: log of {} records in {}; rebuild all {} records at {:.0} records/s \
             ({}; busy: read+decode {:.2} s, fold {:.2} s, write {:.2} s); \
             state-at {:.2} ms; verify {:.2} s (equal: {})",
            r.log_records,
            dir.display(),
            r.rebuild_records,
            r.replay_events_per_s,
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
    // with qemu-img: the libvirt driver's own cost on top of the path.
    let libvirt_p50 = libvirt::boot_p50_ms().await?;
    figures.insert("libvirt_boot_p50_ms".into(), libvirt_p50);
    lines.push(format!(
        "| embedded log, one libvirt host (`test:///default`, qcow2 overlays by qemu-img), one client at a time | 1 | {} | 1 | {libvirt_p50:.2} | | |",
        libvirt::BOOTS
    ));
    println!("libvirt (test:///default): boot p50 {libvirt_p50:.2} ms");

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
    let r = replay::run(&replay_cfg, args.replay_records, args.concurrency).await?;
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
        "replay: log {} records ({:.0} MiB, {} servers in {:.0} s); rebuild all {} records at {:.0} records/s ({}); \
         state-at {:.2} ms; verify {:.2} s ({}); index {:.2} s",
        r.log_records,
        r.log_bytes as f64 / 1_048_576.0,
        r.servers,
        r.fill_s,
        r.rebuild_records,
        r.replay_events_per_s,
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
         | `replay_events_per_s`: `rebuild all`, the four projections folded side by side (records folded, each projection counting its own input topics: {}; {}) | {:.0} records/s | ≥ 500,000 |\n\
         | `state_at_ms_1m`: one `state-at` from the index (median of 11) | {:.2} ms | ≤ 50 |\n\
         | `verify_s_1m`: one `verify` of the four projections ({}) | {:.2} s | ≤ 10 |\n\
         | building the `state-at` index from scratch | {:.2} s | |\n\
         | `billing_events_per_s`: novalog-billing's fold and rating of `instances` ({} records; {} period summaries), side effects off | {:.0} records/s | ≥ 500,000 |\n\n\
         Log growth (embedded): {:.0} bytes per record on disk; {:.1} KiB per server \
         (boot, its share of resizes and reboots, delete); heartbeats {:.1} MiB per host per day at \
         `report_interval` = {} s. An idle server adds nothing.\n\n",
        r.log_records,
        r.log_bytes as f64 / 1_048_576.0,
        r.servers,
        r.fill_s,
        r.rebuild_records,
        replay::each_rebuild(&r),
        r.replay_events_per_s,
        r.state_at_ms,
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
         | log | fake hosts | servers | concurrent clients | p50 ms | p99 ms | boots/s |\n|---|---|---|---|---|---|---|\n{}\n\n\
         `billing_lag_ms_p99` (goal ≤ 100): {:.1} ms from an `InstanceBecameActive`'s append to \
         a `GET /billing/v1/projects/admin?format=csv` on the API's listener showing the server's usage running (one client polling back to back), during the embedded {}-client run.\n\n\
         ## Resize: request → VERIFY_RESIZE → confirm → ACTIVE (fake driver, embedded log)\n\n\
         | clients | sagas | to VERIFY_RESIZE p50 ms | to ACTIVE p50 ms | to ACTIVE p99 ms |\n|---|---|---|---|---|\n{}\n\n\
         Sagas per second (resize + confirm, concurrent): {:.0}. Real Nova 34 on this machine: 1.66 s to VERIFY_RESIZE and 0.70 s more to ACTIVE.\n\n\
         ## Scheduler: decisions on a random cloud (default filters and weighers)\n\n\
         | hosts | decisions | decisions/s | p99 µs |\n|---|---|---|---|\n{}\n\n{}{}",
        machine(),
        chrono_like_now(),
        lines.join("\n"),
        billing_lag_p99,
        args.concurrency,
        resize_lines.join("\n"),
        sagas_per_s,
        sched_lines.join("\n"),
        replay_md,
        notes
    );
    std::fs::write(&args.out_md, md)?;
    Ok(())
}

fn chrono_like_now() -> String {
    let out = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
