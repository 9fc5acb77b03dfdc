//! Replay figures (`novalog-replay` over a log of at least a million
//! records made by the bench cloud): `rebuild all` records/s (the four
//! projections), one `state-at` from the index, one `verify` of the four;
//! and how big the embedded log grows.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use novalog_all_in_one::System;
use novalog_replay::rebuild::Service;
use novalog_replay::state_at::At;
use novalog_replay::{Silent, Source};
use parking_lot::Mutex;
use serde_json::json;
use uuid::Uuid;

use super::{EarlyEvents, EventWaiters, create_server, wait_event, watch_events};

pub struct Figures {
    /// The topic namespace the log was filled under.
    pub namespace: String,
    pub log_records: i64,
    pub log_bytes: u64,
    pub servers: usize,
    pub fill_s: f64,
    /// Records `rebuild all` folded: each projection's input topics, so a
    /// topic two projections read counts twice (as the tool's summary line
    /// counts them).
    pub rebuild_records: u64,
    /// The rebuild's stages (busy seconds of each), summed over the
    /// projections; `seconds` is the wall time of the whole `rebuild all`.
    pub rebuild: novalog_replay::rebuild::Stats,
    /// Each projection's own rebuild, in the order `rebuild all` runs them.
    pub rebuilt: Vec<(Service, novalog_replay::rebuild::Stats)>,
    pub replay_events_per_s: f64,
    pub index_s: f64,
    pub state_at_ms: f64,
    pub verify_s: f64,
    pub verify_equal: bool,
    pub heartbeat_bytes: f64,
    pub report_interval: u64,
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|it| {
            it.filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Boots, resizes (one in ten, confirmed), reboots (one in four) and
/// deletes servers through the REST API until the log holds `min_records`.
/// Returns the servers booted and one that was resized.
async fn fill(
    system: &System,
    min_records: i64,
    concurrency: usize,
) -> anyhow::Result<(usize, Uuid)> {
    let waiters: EventWaiters = Arc::default();
    let early: EarlyEvents = Arc::default();
    let watcher = tokio::spawn(watch_events(
        system.log.clone(),
        system.topics.instances.clone(),
        waiters.clone(),
        early.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let enough = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (log, topics, enough) = (system.log.clone(), system.topics.clone(), enough.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let mut n = 0;
                for t in topics.all() {
                    n += log
                        .end_offsets(t)
                        .await
                        .map(|e| e.iter().sum::<i64>())
                        .unwrap_or(0);
                }
                if n >= min_records {
                    enough.store(true, Ordering::Relaxed);
                    return;
                }
            }
        })
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let base = format!("http://{}/v2.1", system.api_addr);
    let image = system.demo_image.context("no demo image")?;
    let booted = Arc::new(AtomicUsize::new(0));
    let resized: Arc<Mutex<Option<Uuid>>> = Arc::default();
    let workers = (0..concurrency).map(|_| {
        let (http, base, waiters, early, enough, booted, resized) = (
            http.clone(),
            base.clone(),
            waiters.clone(),
            early.clone(),
            enough.clone(),
            booted.clone(),
            resized.clone(),
        );
        async move {
            while !enough.load(Ordering::Relaxed) {
                let n = booted.fetch_add(1, Ordering::Relaxed);
                let id = create_server(
                    &http,
                    &format!("{base}/servers"),
                    image,
                    format!("replay-{n}"),
                )
                .await?;
                wait_event(&waiters, &early, id, "InstanceBecameActive").await?;
                let action = |body: serde_json::Value| {
                    http.post(format!("{base}/servers/{id}/action"))
                        .header("X-Auth-Token", "admin:admin")
                        .json(&body)
                        .send()
                };
                if n % 10 == 0 {
                    action(json!({"resize": {"flavorRef": "2"}})).await?;
                    wait_event(&waiters, &early, id, "ResizeFinished").await?;
                    action(json!({"confirmResize": null})).await?;
                    wait_event(&waiters, &early, id, "ResizeConfirmed").await?;
                    resized.lock().get_or_insert(id);
                }
                if n % 4 == 0 {
                    action(json!({"reboot": {"type": "SOFT"}})).await?;
                }
                http.delete(format!("{base}/servers/{id}"))
                    .header("X-Auth-Token", "admin:admin")
                    .send()
                    .await?;
                wait_event(&waiters, &early, id, "InstanceDeleted").await?;
                // What nobody waits for would pile up.
                early.lock().retain(|(i, _), _| *i != id);
            }
            anyhow::Ok(())
        }
    });
    futures::future::try_join_all(workers).await?;
    watcher.abort();
    monitor.abort();
    let resized = resized.lock().context("no server was resized")?;
    Ok((booted.load(Ordering::Relaxed), resized))
}

/// What a fill leaves in its data directory, so that a later
/// `--replay-only-in` over the same directory times the replay again
/// without building the log again.
pub(crate) const FILLED: &str = "replay-fill.json";

/// Each projection's share of `rebuild all`: records and records/s.
pub fn each_rebuild(r: &Figures) -> String {
    r.rebuilt
        .iter()
        .map(|(service, s)| {
            format!(
                "{} {} at {:.0}/s",
                service.dir_name(),
                s.records,
                s.per_second()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What [`filled`] found or built.
pub struct Filled {
    /// The configuration with the log's namespace.
    pub cfg: novalog_runtime::Config,
    pub servers: usize,
    pub resized: Uuid,
    pub fill_s: f64,
    pub heartbeat_bytes: f64,
}

/// Builds the log of at least `min_records` records in `cfg`'s data
/// directory, or finds the one a previous run built there (namespace
/// included).
pub async fn filled(
    cfg: &novalog_runtime::Config,
    min_records: i64,
    concurrency: usize,
) -> anyhow::Result<Filled> {
    let filled = cfg.data_dir.join(FILLED);
    let mut cfg = cfg.clone();
    let (servers, resized, fill_s, heartbeat_bytes) = if filled.exists() {
        let f: serde_json::Value = serde_json::from_slice(&std::fs::read(&filled)?)?;
        let field = |k: &str| f.get(k).with_context(|| format!("{FILLED}: no {k}"));
        cfg.log.namespace = field("namespace")?
            .as_str()
            .context("namespace")?
            .to_owned();
        (
            field("servers")?.as_u64().context("servers")? as usize,
            field("resized")?
                .as_str()
                .context("resized")?
                .parse::<Uuid>()?,
            field("fill_s")?.as_f64().context("fill_s")?,
            field("heartbeat_bytes")?
                .as_f64()
                .context("heartbeat_bytes")?,
        )
    } else {
        let system = System::start(&cfg, None).await?;
        let started = Instant::now();
        let (servers, resized) = fill(&system, min_records, concurrency).await?;
        let fill_s = started.elapsed().as_secs_f64();
        // Heartbeat record size, for the per-host growth.
        let hosts_topic = system.topics.hosts.clone();
        let ends = system.log.end_offsets(&hosts_topic).await?;
        let mut heartbeat_bytes = 0.0;
        if let Some(last) = ends.first().copied().filter(|e| *e > 0) {
            let recs = system.log.read(&hosts_topic, 0, last - 1, 1).await?;
            heartbeat_bytes = recs
                .first()
                .map(|r| (r.value.len() + r.key.len() + 24) as f64)
                .unwrap_or(0.0);
        }
        system.stop().await?;
        std::fs::write(
            &filled,
            serde_json::to_vec(&json!({
                "namespace": cfg.log.namespace,
                "servers": servers,
                "resized": resized.to_string(),
                "fill_s": fill_s,
                "heartbeat_bytes": heartbeat_bytes,
            }))?,
        )?;
        (servers, resized, fill_s, heartbeat_bytes)
    };
    Ok(Filled {
        cfg,
        servers,
        resized,
        fill_s,
        heartbeat_bytes,
    })
}

/// Builds the log (or finds the one a previous run built in the same data
/// directory, namespace included), then times the replay tool over it.
/// With `rebuild_only`, the index, `state-at` and `verify` are skipped
/// (their figures left at zero).
pub async fn run(
    cfg: &novalog_runtime::Config,
    min_records: i64,
    concurrency: usize,
    rebuild_only: bool,
) -> anyhow::Result<Figures> {
    let Filled {
        cfg,
        servers,
        resized,
        fill_s,
        heartbeat_bytes,
    } = filled(cfg, min_records, concurrency).await?;
    let cfg = &cfg;
    let log_dir = cfg.data_dir.join("log");
    let log_bytes = dir_bytes(&log_dir);

    let src = Source::embedded(&log_dir, cfg.topics())?;
    let mut log_records = 0;
    for t in cfg.topics().all() {
        log_records += src
            .end_offsets(t)
            .await
            .map_or(0, |e| e.iter().sum::<i64>());
    }
    let scratch = tempfile::tempdir()?;
    // `rebuild all`, as `novalog-replay rebuild all --into DIR` runs it.
    let all = Service::parse("all")?;
    let t = Instant::now();
    let mut stats = novalog_replay::rebuild::Stats::default();
    let done =
        novalog_replay::rebuild::rebuild_all(&src, cfg, &all, &scratch.path().join("all"), |_| {
            Arc::new(Silent) as Arc<dyn novalog_replay::Progress>
        })
        .await?;
    let rebuilt = done.services;
    for (_, s) in &rebuilt {
        stats.records += s.records;
        stats.read_s += s.read_s;
        stats.fold_s += s.fold_s;
        stats.write_s += s.write_s;
    }
    stats.seconds = t.elapsed().as_secs_f64();
    if rebuild_only {
        return Ok(Figures {
            namespace: cfg.log.namespace.clone(),
            log_records,
            log_bytes,
            servers,
            fill_s,
            rebuild_records: stats.records,
            rebuild: stats,
            rebuilt,
            replay_events_per_s: stats.per_second(),
            index_s: 0.0,
            state_at_ms: 0.0,
            verify_s: 0.0,
            verify_equal: false,
            heartbeat_bytes,
            report_interval: cfg.report_interval,
        });
    }

    let index_dir = scratch.path().join("index");
    let index = novalog_replay::index::Index::open(&index_dir)?;
    let t = Instant::now();
    index.catch_up(&src, &Silent).await?;
    let index_s = t.elapsed().as_secs_f64();
    // The resized server halfway through its life: the index, then only
    // its own records.
    let entries = index.entries(&resized)?;
    let mid = entries[entries.len() / 2].occurred_at_ms;
    let mut times = Vec::new();
    for _ in 0..11 {
        let t = Instant::now();
        let inst =
            novalog_replay::state_at::instance_at(&src, &index, resized, &At::Time(mid)).await?;
        let _ = novalog_replay::state_at::server_body(
            &inst,
            novalog_api::microversion::ApiVersion::new(2, 1),
            mid,
        );
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);

    let t = Instant::now();
    let verified =
        novalog_replay::rebuild::verify(&src, cfg, &cfg.data_dir, &all, None, &Silent).await?;
    let verify_s = t.elapsed().as_secs_f64();
    let verify_equal = verified.iter().all(|v| v.differences.is_empty());
    if !verify_equal {
        eprintln!(
            "warning: verify found {} differing keys",
            verified.iter().map(|v| v.differences.len()).sum::<usize>()
        );
        for v in verified.iter().filter(|v| !v.differences.is_empty()) {
            eprintln!(
                "  {}: {} keys, first {}",
                v.service.dir_name(),
                v.differences.len(),
                novalog_replay::rebuild::show_key(&v.differences[0])
            );
        }
    }
    Ok(Figures {
        namespace: cfg.log.namespace.clone(),
        log_records,
        log_bytes,
        servers,
        fill_s,
        rebuild_records: stats.records,
        rebuild: stats,
        rebuilt,
        replay_events_per_s: stats.per_second(),
        index_s,
        state_at_ms: times[times.len() / 2],
        verify_s,
        verify_equal,
        heartbeat_bytes,
        report_interval: cfg.report_interval,
    })
}
