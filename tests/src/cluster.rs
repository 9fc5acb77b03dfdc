//! One harness for both log backends.
//!
//! A [`Cluster`] is every service in this process ([`System`]) on the log a
//! [`Backend`] names, with a fake driver the test keeps a handle on (to
//! inject failures and look at guests). The same test body runs on the
//! embedded log and on Kafka: write it as `async fn name(backend: Backend)`
//! and list it in [`on_both_logs!`](crate::on_both_logs), which makes one
//! `embedded::name` and one `kafka::name` test of it. The Kafka one skips
//! when `NOVALOG_KAFKA_BROKERS` is unset; `make test` sets it.
//!
//! A [`ProcessCluster`] runs each service as its own process on Kafka, for
//! the tests that kill one of them with SIGKILL (the embedded log lives in
//! one process, so those have no embedded twin).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use novalog_all_in_one::System;
use novalog_compute::fake::{FakeDriver, FakeOptions};
use novalog_log::EventLog;
use novalog_runtime::Config;
use novalog_runtime::config::Backend as LogBackend;
use serde_json::Value;
use uuid::Uuid;

use crate::{Client, Proc, free_port, kafka_brokers, kafka_env, kafka_test_config_file};

/// Which log a test runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    /// The embedded RocksDB log inside the process.
    Embedded,
    /// The Kafka-protocol broker at these bootstrap servers.
    Kafka(String),
}

impl Backend {
    /// Kafka on the broker `NOVALOG_KAFKA_BROKERS` names; `None`, and a
    /// line saying `test` was skipped, when it is unset.
    pub fn kafka(test: &str) -> Option<Backend> {
        let brokers = kafka_brokers();
        if brokers.is_none() {
            eprintln!("{test}: skipped: NOVALOG_KAFKA_BROKERS not set (make test sets it)");
        }
        brokers.map(Backend::Kafka)
    }

    /// Points `cfg` at this backend.
    pub fn configure(&self, cfg: &mut Config) {
        match self {
            Backend::Embedded => {}
            Backend::Kafka(brokers) => {
                cfg.log.backend = LogBackend::Kafka;
                cfg.log.bootstrap_servers = brokers.clone();
                // More than one partition, so per-key ordering is what
                // the flows rely on, as in production.
                cfg.log.partitions = 4;
            }
        }
    }
}

/// Instantiates each listed `async fn name(backend: Backend)` once per log
/// backend: `embedded::name` and `kafka::name` (skipped without a broker).
#[macro_export]
macro_rules! on_both_logs {
    ($($name:ident),+ $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::cluster::Backend::Embedded).await
                }
            )+
        }
        mod kafka {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(b) = $crate::cluster::Backend::kafka(stringify!($name)) {
                        super::$name(b).await
                    }
                }
            )+
        }
    };
}

/// Every service in this process on one log, with a fake driver the test
/// holds.
pub struct Cluster {
    pub system: System,
    pub driver: Arc<FakeDriver>,
    /// The configuration every service was started with.
    pub cfg: Config,
    /// A client speaking as the administrator.
    pub admin: Client,
    backend: Backend,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// A cluster on `backend` with the test configuration changed by
    /// `tune`, and a fake driver with its defaults.
    pub async fn start(backend: &Backend, tune: impl FnOnce(&mut Config)) -> Cluster {
        Self::start_with(backend, tune, FakeOptions::default()).await
    }

    /// Likewise, with a fake driver made with `fake`.
    pub async fn start_with(
        backend: &Backend,
        tune: impl FnOnce(&mut Config),
        fake: FakeOptions,
    ) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = crate::test_config(dir.path());
        backend.configure(&mut cfg);
        tune(&mut cfg);
        // Snapshots go where the image service keeps image data.
        let fake = FakeOptions {
            image_store: fake
                .image_store
                .or_else(|| Some(cfg.data_dir.join("images"))),
            ..fake
        };
        let stopped = Stopped {
            backend: backend.clone(),
            cfg,
            driver: Arc::new(FakeDriver::new(fake)),
            dir,
        };
        stopped.start().await
    }

    pub fn api_addr(&self) -> SocketAddr {
        self.system.api_addr
    }

    /// A client speaking as `user` of `project` (noauth2).
    pub fn client(&self, user: &str, project: &str) -> Client {
        Client::new(self.system.api_addr, user, project)
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.system.log
    }

    pub fn topics(&self) -> &novalog_runtime::Topics {
        &self.system.topics
    }

    /// Stops every service (and fails the test if one failed).
    pub async fn stop(self) {
        self.system.stop().await.unwrap();
    }

    /// Stops every service, keeping the data directory and the log, to
    /// start them again: a new process in effect.
    pub async fn stop_for_restart(self) -> Stopped {
        self.system.stop().await.unwrap();
        Stopped {
            backend: self.backend,
            cfg: self.cfg,
            driver: self.driver,
            dir: self._dir,
        }
    }
}

/// A stopped [`Cluster`]: its data directory, its log and its driver.
pub struct Stopped {
    backend: Backend,
    cfg: Config,
    driver: Arc<FakeDriver>,
    dir: tempfile::TempDir,
}

impl Stopped {
    /// Starts every service again with the same driver (its guests kept).
    pub async fn start(self) -> Cluster {
        let mut cfg = self.cfg;
        // A fresh port each start: the last one may not be free yet.
        cfg.api.listen = "127.0.0.1:0".into();
        let system = System::start(&cfg, Some(self.driver.clone()))
            .await
            .unwrap_or_else(|e| panic!("start on {:?}: {e:#}", self.backend));
        Cluster {
            admin: Client::admin(system.api_addr),
            system,
            driver: self.driver,
            cfg,
            backend: self.backend,
            _dir: self.dir,
        }
    }

    /// Starts every service again with a new, empty fake driver (a host
    /// rebooted under its agent).
    pub async fn start_with(mut self, fake: FakeOptions) -> Cluster {
        self.driver = Arc::new(FakeDriver::new(fake));
        self.start().await
    }
}

/// Every service in its own process on Kafka, so a test can kill one.
pub struct ProcessCluster {
    pub cfg: Config,
    pub addr: SocketAddr,
    /// Each running service by binary name.
    pub procs: HashMap<&'static str, Proc>,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl ProcessCluster {
    pub const SERVICES: [&'static str; 4] = [
        "novalog-conductor",
        "novalog-scheduler",
        "novalog-compute",
        "novalog-api",
    ];

    /// Starts every service on `brokers` with the test configuration
    /// changed by `tune` and `extra_env` added to each one's environment;
    /// returns once the API answers (within `wait`).
    pub async fn start(
        brokers: &str,
        tune: impl FnOnce(&mut Config),
        extra_env: &[(&str, &str)],
        wait: Duration,
    ) -> ProcessCluster {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = crate::test_config(dir.path());
        Backend::Kafka(brokers.to_owned()).configure(&mut cfg);
        cfg.api.listen = format!("127.0.0.1:{}", free_port());
        cfg.billing.listen = format!("127.0.0.1:{}", free_port());
        cfg.billing.endpoint = format!("http://{}", cfg.billing.listen);
        tune(&mut cfg);
        let mut env = kafka_env(&cfg, brokers);
        env.push(kafka_test_config_file(&cfg.data_dir));
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let mut c = ProcessCluster {
            addr: cfg.api.listen.parse().unwrap(),
            cfg,
            env,
            procs: HashMap::new(),
            _dir: dir,
        };
        for name in Self::SERVICES {
            c.start_proc(name);
        }
        if let Err(e) = Client::admin(c.addr).wait_up(wait).await {
            c.dump_logs(60);
            panic!("{e}");
        }
        c
    }

    /// Starts (again) the service `name`, logging to `<data_dir>/<name>.log`.
    pub fn start_proc(&mut self, name: &'static str) {
        let p = Proc::start(name, &self.env, self.cfg.data_dir.as_path()).unwrap();
        self.procs.insert(name, p);
    }

    /// kill -9 of the service `name`.
    pub fn kill(&mut self, name: &'static str) {
        self.procs.get_mut(name).unwrap().kill();
    }

    /// The cluster's log, opened from this process.
    pub async fn log(&self) -> Arc<dyn EventLog> {
        novalog_runtime::backend::open_log(&self.cfg).await.unwrap()
    }

    /// Sends `body` to every server of `ids` at once; kills the conductor
    /// with SIGKILL once some task is in flight and starts it again; waits
    /// (up to `wait`) until every server has no task and one of `settled`
    /// statuses. Returns the servers, read one by one (a soft-deleted
    /// server is shown, not listed).
    pub async fn all_at_once_through_a_kill(
        &mut self,
        client: &Client,
        ids: &[Uuid],
        body: Value,
        settled: &[&str],
        wait: Duration,
    ) -> Vec<Value> {
        let acts = ids.iter().map(|id| {
            let c = client.clone();
            let (id, body) = (*id, body.clone());
            // An intent appended while the conductor is down is decided
            // after its restart: the answer may be a 503 meanwhile.
            async move {
                let _ = c.server_action(id, body).await;
            }
        });
        let acts = tokio::spawn(futures::future::join_all(acts));
        let servers = || async {
            let reads = ids.iter().map(|id| client.server(*id));
            futures::future::join_all(reads)
                .await
                .into_iter()
                .filter_map(|s| s.ok().flatten())
                .collect::<Vec<Value>>()
        };
        let busy = |servers: &[Value]| {
            servers
                .iter()
                .filter(|s| !s["OS-EXT-STS:task_state"].is_null())
                .count()
        };
        let deadline = Instant::now() + wait;
        while busy(&servers().await) == 0 {
            assert!(Instant::now() < deadline, "no task started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.kill("novalog-conductor");
        eprintln!(
            "conductor killed with {} tasks in flight",
            busy(&servers().await)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.start_proc("novalog-conductor");
        acts.await.unwrap();
        let deadline = Instant::now() + wait;
        loop {
            let servers = servers().await;
            let done = servers.len() == ids.len()
                && servers.iter().all(|s| {
                    s["OS-EXT-STS:task_state"].is_null()
                        && settled.contains(&s["status"].as_str().unwrap_or(""))
                });
            if done {
                return servers;
            }
            if Instant::now() > deadline {
                self.dump_logs(40);
                let busy: Vec<String> = servers
                    .iter()
                    .map(|s| format!("{} {} {}", s["id"], s["status"], s["OS-EXT-STS:task_state"]))
                    .collect();
                panic!("not settled in {settled:?}: {busy:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The images the administrator sees (Glance's API on the same
    /// listener), with their properties.
    pub async fn images(&self) -> Vec<Value> {
        let body: Value = reqwest::Client::new()
            .get(format!("http://{}/image/v2/images?limit=1000", self.addr))
            .header("X-Auth-Token", "admin:admin")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["images"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .clone()
    }

    /// The names of [`ProcessCluster::images`].
    pub async fn image_names(&self) -> Vec<String> {
        self.images()
            .await
            .iter()
            .map(|i| i["name"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// Prints the last `lines` lines of each service's log (on failure).
    pub fn dump_logs(&self, lines: usize) {
        for name in self.procs.keys() {
            let path = self.cfg.data_dir.join(format!("{name}.log"));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(lines).collect();
            eprintln!("---- {name} (last lines) ----");
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}
