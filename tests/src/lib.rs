//! Helpers for the end-to-end tests: a small Compute API client, service
//! processes, and log inspection. The tests themselves are in `tests/`.
//!
//! # Layout
//! - [`cluster`]: one harness for both log backends ([`Cluster`],
//!   [`on_both_logs!`]) and services as processes on Kafka
//!   ([`ProcessCluster`]).
//! - [`webdriver`]: headless Chromium over WebDriver, for the web
//!   console's browser tests.
//! - here: the API [`Client`], [`Proc`], log reading ([`read_topic`],
//!   [`host_usage`]) and the test configuration.

pub mod cluster;
pub mod webdriver;

pub use cluster::{Backend, Cluster, ProcessCluster};

use novalog_schemas::{ComputeFact, HostEvent};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use novalog_log::EventLog;
use novalog_runtime::Config;
use novalog_schemas::{Envelope, Event, HostUsage};
use serde_json::{Value, json};
use uuid::Uuid;

/// The demo image every bootstrapped Novalog has.
pub fn demo_image_id() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, b"novalog/demo-image/cirros")
}

/// The Kafka-protocol broker `make test` starts, if any.
pub fn kafka_brokers() -> Option<String> {
    std::env::var("NOVALOG_KAFKA_BROKERS")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A configuration for one test: its own data directory, an ephemeral
/// port, a unique topic namespace, fast heartbeats.
pub fn test_config(data_dir: &Path) -> Config {
    let mut cfg = Config {
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    };
    cfg.api.listen = "127.0.0.1:0".into();
    // The console proxy on a free port too (console URLs name it).
    cfg.vnc.novncproxy_port = 0;
    cfg.api.auth_strategy = "noauth2".into();
    cfg.log.namespace = format!("t{}.", Uuid::new_v4().simple());
    cfg.report_interval = 1;
    // Tests boot more servers than Nova's default quotas allow; quota
    // tests set their own.
    cfg.quota.instances = -1;
    cfg.quota.cores = -1;
    cfg.quota.ram = -1;
    cfg
}

/// A free TCP port on loopback (for services in other processes).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Compute API client speaking as one noauth2 user.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(addr: SocketAddr, user: &str, project: &str) -> Self {
        Client {
            base: format!("http://{addr}/v2.1"),
            token: format!("{user}:{project}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    pub fn admin(addr: SocketAddr) -> Self {
        Self::new(addr, "admin", "admin")
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        self.request_at(None, method, path, body).await
    }

    /// A request at compute microversion `version` (`"2.73"`; `None`: the
    /// default).
    pub async fn request_at(
        &self,
        version: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Auth-Token", &self.token);
        if let Some(v) = version {
            req = req.header("OpenStack-API-Version", format!("compute {v}"));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }

    /// `POST /servers/{id}/action` with `body`: the status, the body and
    /// the request id the API answered with.
    pub async fn server_action(
        &self,
        id: Uuid,
        body: Value,
    ) -> anyhow::Result<(u16, Value, String)> {
        let resp = self
            .http
            .post(format!("{}/servers/{id}/action", self.base))
            .header("X-Auth-Token", &self.token)
            .json(&body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let request_id = resp
            .headers()
            .get("x-openstack-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = resp.text().await?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value, request_id))
    }

    /// Creates a server; returns its id.
    pub async fn create_server(
        &self,
        name: &str,
        flavor: &str,
        image: Uuid,
    ) -> anyhow::Result<Uuid> {
        let body = json!({"server": {"name": name, "flavorRef": flavor, "imageRef": image.to_string(), "networks": "none"}});
        let (status, v) = self
            .request(reqwest::Method::POST, "/servers", Some(body))
            .await?;
        if status != 202 {
            bail!("create {name}: {status} {v}");
        }
        let id = v["server"]["id"].as_str().context("no server id")?;
        Ok(id.parse()?)
    }

    pub async fn server(&self, id: Uuid) -> anyhow::Result<Option<Value>> {
        let (status, v) = self
            .request(reqwest::Method::GET, &format!("/servers/{id}"), None)
            .await?;
        match status {
            200 => Ok(Some(v["server"].clone())),
            404 => Ok(None),
            s => bail!("get {id}: {s} {v}"),
        }
    }

    pub async fn delete_server(&self, id: Uuid) -> anyhow::Result<()> {
        let (status, v) = self
            .request(reqwest::Method::DELETE, &format!("/servers/{id}"), None)
            .await?;
        if status != 204 {
            bail!("delete {id}: {status} {v}");
        }
        Ok(())
    }

    pub async fn servers_detail(&self) -> anyhow::Result<Vec<Value>> {
        let (status, v) = self
            .request(reqwest::Method::GET, "/servers/detail", None)
            .await?;
        if status != 200 {
            bail!("list: {status} {v}");
        }
        Ok(v["servers"].as_array().cloned().unwrap_or_default())
    }

    /// Waits until every server in `ids` has left BUILD; returns each one's
    /// final representation.
    pub async fn wait_built(
        &self,
        ids: &[Uuid],
        timeout: Duration,
    ) -> anyhow::Result<HashMap<Uuid, Value>> {
        let deadline = Instant::now() + timeout;
        let mut done = HashMap::new();
        while done.len() < ids.len() {
            for id in ids {
                if done.contains_key(id) {
                    continue;
                }
                if let Some(s) = self.server(*id).await?
                    && s["status"] != "BUILD"
                {
                    done.insert(*id, s);
                }
            }
            if done.len() < ids.len() {
                if Instant::now() > deadline {
                    bail!(
                        "{} of {} servers still building after {timeout:?}",
                        ids.len() - done.len(),
                        ids.len()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(done)
    }

    /// Waits until the server shows `status` with no task; returns it.
    /// Panics after `timeout` (the test fails naming what it saw last).
    pub async fn wait_status(&self, id: Uuid, status: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.server(id).await.unwrap().expect("server exists");
            if s["status"] == status && s["OS-EXT-STS:task_state"].is_null() {
                return s;
            }
            assert!(Instant::now() < deadline, "never {status}: {s}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every server in `ids` is gone (404).
    pub async fn wait_gone(&self, ids: &[Uuid], timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        for id in ids {
            while self.server(*id).await?.is_some() {
                if Instant::now() > deadline {
                    bail!("server {id} still there after {timeout:?}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Waits until the API answers and the demo catalog is there.
    pub async fn wait_up(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok((200, _)) = self.request(reqwest::Method::GET, "/flavors/5", None).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("API at {} not up after {timeout:?}", self.base);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Every record of `topic`, decoded, in partition then offset order.
pub async fn read_topic(log: &Arc<dyn EventLog>, topic: &str) -> anyhow::Result<Vec<Envelope>> {
    let mut out = Vec::new();
    for (partition, end) in log.end_offsets(topic).await?.into_iter().enumerate() {
        let mut from = 0;
        while from < end {
            let batch = log.read(topic, partition as i32, from, 1_000).await?;
            if batch.is_empty() {
                break;
            }
            for rec in &batch {
                out.push(novalog_schemas::decode(&rec.value)?);
            }
            from = batch.last().unwrap().offset + 1;
        }
    }
    Ok(out)
}

/// Each host's newest usage, as its facts (on `compute-events`) and its
/// heartbeats (on `hosts`) report it.
pub async fn host_usage(
    log: &Arc<dyn EventLog>,
    topics: &novalog_runtime::Topics,
) -> HashMap<String, HostUsage> {
    let mut newest: HashMap<String, HostUsage> = HashMap::new();
    for topic in [&topics.compute_events, &topics.hosts] {
        for env in read_topic(log, topic).await.unwrap() {
            let (host, u) = match &env.event {
                Event::Host(HostEvent::HostHeartbeat { host, usage }) => (host.clone(), *usage),
                Event::ComputeFact(ComputeFact::ClaimSucceeded { host, usage, .. })
                | Event::ComputeFact(ComputeFact::ClaimFailed { host, usage, .. })
                | Event::ComputeFact(ComputeFact::SpawnFailed { host, usage, .. })
                | Event::ComputeFact(ComputeFact::InstanceDestroyed { host, usage, .. }) => {
                    (host.clone(), *usage)
                }
                Event::ComputeFact(ComputeFact::ResizeClaimSucceeded(f))
                | Event::ComputeFact(ComputeFact::ResizeClaimFailed(f))
                | Event::ComputeFact(ComputeFact::DiskMigratedAndPoweredOff(f))
                | Event::ComputeFact(ComputeFact::MigrationFinishedOnDest(f))
                | Event::ComputeFact(ComputeFact::MigrationConfirmedOnSource(f))
                | Event::ComputeFact(ComputeFact::MigrationRevertedOnDest(f))
                | Event::ComputeFact(ComputeFact::RevertFinishedOnSource(f))
                | Event::ComputeFact(ComputeFact::InstanceLiveMigrated(f))
                | Event::ComputeFact(ComputeFact::InstanceRebuilt(f))
                | Event::ComputeFact(ComputeFact::EvacuatedInstanceCleanedUp(f))
                | Event::ComputeFact(ComputeFact::MigrationStepFailed(f)) => {
                    (f.host.clone(), f.usage)
                }
                _ => continue,
            };
            let e = newest.entry(host).or_default();
            if u.generation >= e.generation {
                *e = u;
            }
        }
    }
    newest
}

/// Where cargo put this workspace's binaries.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/<test> → target/debug
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// A service running as its own process; killed (SIGKILL) on drop.
pub struct Proc {
    pub name: String,
    child: Child,
}

impl Proc {
    /// Starts binary `name` with `cfg` passed as environment variables.
    pub fn start(name: &str, env: &[(String, String)], log_dir: &Path) -> anyhow::Result<Proc> {
        Self::start_logging_to(name, env, &log_dir.join(format!("{name}.log")))
    }

    /// Like [`Proc::start`], with the output going to `log_file`.
    pub fn start_logging_to(
        name: &str,
        env: &[(String, String)],
        log_file: &Path,
    ) -> anyhow::Result<Proc> {
        let path = bin_dir().join(name);
        let log = std::fs::File::create(log_file)?;
        // RUST_LOG in `env` wins over the test-wide NOVALOG_TEST_LOG.
        let child = Command::new(&path)
            .env(
                "RUST_LOG",
                std::env::var("NOVALOG_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", path.display()))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
        })
    }

    /// kill -9, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id (for its memory in `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The environment that gives a service process the same configuration as
/// `cfg` on a Kafka log.
pub fn kafka_env(cfg: &Config, brokers: &str) -> Vec<(String, String)> {
    let v = |k: &str, val: String| (k.to_owned(), val);
    vec![
        v("NOVALOG_DATA_DIR", cfg.data_dir.display().to_string()),
        v("NOVALOG_LOG__BACKEND", "kafka".into()),
        v("NOVALOG_LOG__BOOTSTRAP_SERVERS", brokers.into()),
        v("NOVALOG_LOG__NAMESPACE", cfg.log.namespace.clone()),
        v("NOVALOG_LOG__PARTITIONS", cfg.log.partitions.to_string()),
        v("NOVALOG_API__LISTEN", cfg.api.listen.clone()),
        v("NOVALOG_API__AUTH_STRATEGY", cfg.api.auth_strategy.clone()),
        // Any free port: tests run several conductors and schedulers on one
        // machine at once, and the per-service default ports would collide.
        v("NOVALOG_METRICS__LISTEN", "127.0.0.1:0".into()),
        v("NOVALOG_REPORT_INTERVAL", cfg.report_interval.to_string()),
        v(
            "NOVALOG_COMPUTE__FAKE_HOSTS",
            cfg.compute.fake_hosts.to_string(),
        ),
        v(
            "NOVALOG_COMPUTE__FAKE_SPAWN_LATENCY_MS",
            cfg.compute.fake_spawn_latency_ms.to_string(),
        ),
        v("NOVALOG_QUOTA__INSTANCES", cfg.quota.instances.to_string()),
        v("NOVALOG_QUOTA__CORES", cfg.quota.cores.to_string()),
        v("NOVALOG_QUOTA__RAM", cfg.quota.ram.to_string()),
        // novalog-billing's internal read listener and where the API finds
        // it: a free port per cluster, as for the API.
        v("NOVALOG_BILLING__LISTEN", cfg.billing.listen.clone()),
        v("NOVALOG_BILLING__ENDPOINT", cfg.billing.endpoint.clone()),
    ]
}

/// Writes the librdkafka properties Kafka tests need into a config file
/// and returns the environment entry that points a process at it.
///
/// A member killed with SIGKILL never leaves its group; a rebalance then
/// waits for it up to `max.poll.interval.ms` (five minutes by default) on
/// brokers that do not expire the dead member's session first.
pub fn kafka_test_config_file(dir: &Path) -> (String, String) {
    let path = dir.join("novalog-test.toml");
    std::fs::write(
        &path,
        "[log.kafka_properties]\n\"max.poll.interval.ms\" = \"10000\"\n",
    )
    .unwrap();
    ("NOVALOG_CONFIG".to_owned(), path.display().to_string())
}

/// Prints why a Kafka test did not run (no broker configured).
pub fn skip_without_kafka(test: &str) -> Option<String> {
    let b = kafka_brokers();
    if b.is_none() {
        eprintln!("{test}: skipped: NOVALOG_KAFKA_BROKERS not set (make test sets it)");
    }
    b
}
