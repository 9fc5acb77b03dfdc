//! What an operator sees of a running service: Prometheus metrics, health
//! and readiness, logs.
//!
//! - Metrics go through the `metrics` facade to one process-wide
//!   Prometheus recorder ([`install_metrics`]); [`render_metrics`] is the
//!   text served at `/metrics`. The API serves it on its own listener;
//!   every other service on `[metrics] listen` ([`serve`]).
//! - Readiness: every consumer loop registers in [`Health`] and reports
//!   whether it has caught up with the log as it stood when the loop
//!   started (see [`crate::progress`]); `/readyz` is 200 once all have.
//! - Logs: [`init_logging`] in text or JSON; the consumer loop opens a
//!   span per record carrying its request id and event id, so every line
//!   written while handling it carries them too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::Shutdown;

/// Bucket bounds (seconds) of every latency histogram: from a fast HTTP
/// read (1 ms) to a long saga (10 min).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0,
];

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls are
/// no-ops). Every service calls it when it starts, so metrics recorded
/// before the first scrape are kept. `None` when another recorder was
/// installed first (then `/metrics` is empty).
pub fn install_metrics() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .expect("non-empty buckets");
            match builder.install_recorder() {
                Ok(h) => {
                    describe();
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// The Prometheus text exposition of every metric recorded so far.
pub fn render_metrics() -> String {
    match install_metrics() {
        Some(h) => {
            crate::memory::record_gauges();
            h.run_upkeep();
            h.render()
        }
        None => String::new(),
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "novalog_http_requests_total",
        "HTTP requests answered, by method, route and status"
    );
    describe_histogram!(
        "novalog_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency, by method, route and status"
    );
    describe_counter!(
        "novalog_records_consumed_total",
        "log records applied, by consumer and topic"
    );
    describe_counter!(
        "novalog_records_produced_total",
        "log records appended by consumer loops, by consumer and topic"
    );
    describe_gauge!(
        "novalog_consumer_lag",
        "records between a consumer's committed offset and the end of the partition"
    );
    describe_gauge!(
        "novalog_consumer_ready",
        "1 once a consumer has caught up with the log as it stood at its start"
    );
    describe_counter!(
        "novalog_dead_letters_total",
        "records sent to the dead-letter topic, by consumer and source topic"
    );
    describe_histogram!(
        "novalog_saga_duration_seconds",
        Unit::Seconds,
        "time from a saga's first step to its end, by kind and outcome"
    );
    describe_counter!("novalog_sagas_total", "sagas ended, by kind and outcome");
    describe_counter!(
        "novalog_scheduler_decisions_total",
        "scheduling decisions, by outcome (selected, no_valid_host)"
    );
    describe_histogram!(
        "novalog_scheduler_decision_duration_seconds",
        Unit::Seconds,
        "time to filter and weigh the hosts for one request"
    );
    describe_counter!(
        "novalog_builds_total",
        "server builds ended, by outcome (active, error, deleted)"
    );
    describe_gauge!(
        "novalog_rocksdb_size_bytes",
        Unit::Bytes,
        "bytes on disk of each RocksDB (service stores, the embedded log)"
    );
}

/// The consumers of this process and whether each has caught up.
///
/// One per process: the all-in-one's API answers `/readyz` for every
/// service in it.
#[derive(Default)]
pub struct Health {
    consumers: parking_lot::Mutex<BTreeMap<u64, (String, Arc<AtomicBool>)>>,
    /// Consumer name prefixes this process must have registered before it
    /// can be ready: a service loading its state has not started its
    /// consumer yet, and must not let the others answer for it.
    expected: parking_lot::Mutex<Vec<String>>,
    next: AtomicU64,
}

/// A consumer's place in [`Health`]; leaves it when dropped (a stopped
/// consumer no longer holds readiness back, nor grants it).
pub struct Registration {
    id: u64,
    pub ready: Arc<AtomicBool>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        HEALTH.consumers.lock().remove(&self.id);
    }
}

static HEALTH: LazyLock<Health> = LazyLock::new(Health::default);

impl Health {
    pub fn global() -> &'static Health {
        &HEALTH
    }

    pub fn register(&'static self, consumer: &str) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let ready = Arc::new(AtomicBool::new(false));
        self.consumers
            .lock()
            .insert(id, (consumer.to_owned(), ready.clone()));
        Registration { id, ready }
    }

    /// Declares the services (consumer name prefixes: `api`, `conductor`,
    /// `scheduler`, `compute`) this process runs.
    pub fn expect(&self, services: &[&str]) {
        self.expected
            .lock()
            .extend(services.iter().map(|s| (*s).to_owned()));
    }

    /// The consumers still catching up and the expected services whose
    /// consumers have not started (empty: ready).
    pub fn behind(&self) -> Vec<String> {
        let consumers = self.consumers.lock();
        let mut behind: Vec<String> = self
            .expected
            .lock()
            .iter()
            .filter(|e| !consumers.values().any(|(n, _)| n.starts_with(e.as_str())))
            .map(|e| format!("{e} (starting)"))
            .collect();
        behind.extend(
            consumers
                .values()
                .filter(|(_, r)| !r.load(Ordering::Acquire))
                .map(|(n, _)| n.clone()),
        );
        behind
    }
}

/// `/healthz`: the process is alive and serving.
pub async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

/// `/readyz`: 200 once every consumer of the process has caught up with
/// the log, 503 naming those that have not.
pub async fn readyz() -> impl IntoResponse {
    let behind = Health::global().behind();
    if behind.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("catching up: {}\n", behind.join(", ")),
        )
    }
}

/// `/metrics`.
pub async fn prometheus() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render_metrics(),
    )
}

/// The operator routes every service serves: `/metrics`, `/healthz`,
/// `/readyz`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/metrics", get(prometheus))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// Serves [`routes`] on `listen` until `shutdown` (the services other than
/// the API). Returns the bound address.
pub async fn serve(
    listen: &str,
    mut shutdown: Shutdown,
) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    install_metrics();
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let app: Router = routes();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.wait().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "metrics listener stopped");
        }
    });
    tracing::info!(%addr, "metrics, health and readiness listening");
    Ok((addr, task))
}

/// Keeps `novalog_rocksdb_size_bytes{db}` up to date with the bytes under
/// `dir` (every 15 s) until `shutdown`.
pub fn watch_db_size(db: &str, dir: PathBuf, mut shutdown: Shutdown) {
    let gauge = metrics::gauge!("novalog_rocksdb_size_bytes", "db" => db.to_owned());
    tokio::spawn(async move {
        loop {
            let d = dir.clone();
            if let Ok(bytes) = tokio::task::spawn_blocking(move || dir_size(&d)).await {
                gauge.set(bytes as f64);
            }
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = tokio::time::sleep(Duration::from_secs(15)) => {}
            }
        }
    });
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, span fields inline.
    #[default]
    Text,
    /// One JSON object per line; the fields of the enclosing spans (request
    /// id, event id) under `span` and `spans`.
    Json,
}

/// Logs to stderr in `format`; `RUST_LOG` sets the level (default info).
pub fn init_logging(format: LogFormat) {
    init_logging_at(format, "info");
}

/// Logs to stderr in `format` at `default_level` unless `RUST_LOG` says
/// otherwise (tools whose stderr is for people use "warn").
pub fn init_logging_at(format: LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

/// The span every record is handled in: the fields that let one request
/// be followed across every service's log.
pub fn record_span(consumer: &str, input: &crate::Input) -> tracing::Span {
    tracing::info_span!(
        "record",
        consumer,
        topic = %input.topic,
        partition = input.partition,
        offset = input.offset,
        request_id = %input.env.meta.correlation_id,
        event_id = %input.env.meta.event_id,
        event_type = input.env.event.type_name(),
    )
}

/// One line per record handled, at info for the records a user's request
/// caused (their correlation id is its `req-` id), at debug for the rest
/// (heartbeats and other background records would drown them).
pub fn record_handled(input: &crate::Input, applied: bool) {
    if input.env.meta.correlation_id.starts_with("req-") {
        tracing::info!(applied, "record handled");
    } else {
        tracing::debug!(applied, "record handled");
    }
}

/// Counts a batch's records by topic; returns the next offset of each
/// partition the batch touched.
pub fn count_consumed(
    consumer: &str,
    batch: &[novalog_log::Consumed],
) -> BTreeMap<(String, i32), i64> {
    let mut next = BTreeMap::new();
    let mut per_topic: BTreeMap<&str, u64> = BTreeMap::new();
    for rec in batch {
        let slot = next.entry((rec.topic.clone(), rec.partition)).or_insert(0);
        *slot = (*slot).max(rec.offset + 1);
        *per_topic.entry(rec.topic.as_str()).or_default() += 1;
    }
    for (topic, n) in per_topic {
        metrics::counter!("novalog_records_consumed_total", "consumer" => consumer.to_owned(),
            "topic" => topic.to_owned())
        .increment(n);
    }
    next
}

/// Counts the records a consumer loop appends, by topic.
pub fn count_produced(consumer: &str, records: &[novalog_log::Record]) {
    let mut per_topic: BTreeMap<&str, u64> = BTreeMap::new();
    for rec in records {
        *per_topic.entry(rec.topic.as_str()).or_default() += 1;
    }
    for (topic, n) in per_topic {
        metrics::counter!("novalog_records_produced_total", "consumer" => consumer.to_owned(),
            "topic" => topic.to_owned())
        .increment(n);
    }
}

/// Keeps `novalog_rocksdb_size_bytes{db}` up to date for each named
/// directory under `data_dir` (`api`, `conductor`, `log`, ...), every 15 s,
/// until `shutdown`.
pub fn watch_db_sizes(data_dir: &Path, dbs: &[&str], shutdown: &Shutdown) {
    for db in dbs {
        watch_db_size(db, data_dir.join(db), shutdown.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_waits_for_every_registered_consumer() {
        let a = Health::global().register("a");
        let b = Health::global().register("b");
        assert_eq!(Health::global().behind(), vec!["a", "b"]);
        a.ready.store(true, Ordering::Release);
        assert_eq!(Health::global().behind(), vec!["b"]);
        drop(b);
        assert!(Health::global().behind().is_empty());
        Health::global().expect(&["conductor"]);
        assert_eq!(Health::global().behind(), vec!["conductor (starting)"]);
        let c = Health::global().register("conductor");
        c.ready.store(true, Ordering::Release);
        assert!(Health::global().behind().is_empty());
    }

    #[test]
    fn recorded_figures_are_rendered() {
        install_metrics().expect("first recorder of this test process");
        metrics::counter!("novalog_records_consumed_total", "consumer" => "t", "topic" => "x")
            .increment(3);
        metrics::histogram!("novalog_saga_duration_seconds", "kind" => "build", "outcome" => "active")
            .record(0.2);
        let text = render_metrics();
        assert!(
            text.contains(r#"novalog_records_consumed_total{consumer="t",topic="x"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"novalog_saga_duration_seconds_bucket{kind="build",outcome="active",le="0.25"} 1"#
            ),
            "{text}"
        );
    }
}
