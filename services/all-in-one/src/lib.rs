//! Every Novalog service in one process (Nova's nova-all): the API, the
//! conductor, the scheduler, billing, the console proxy (`[vnc] enabled`)
//! and a compute agent with fake hosts, on one log
//! (the embedded one by default). Used by `make run`, the end-to-end tests
//! and the benchmarks.

use std::net::SocketAddr;
use std::sync::Arc;

use novalog_log::EventLog;
use novalog_runtime::{Config, Error, Result, Shutdown, ShutdownTrigger};
use tokio::task::JoinHandle;

/// A running all-in-one system.
pub struct System {
    pub log: Arc<dyn EventLog>,
    pub topics: novalog_runtime::Topics,
    pub api_addr: SocketAddr,
    /// Where the console proxy listens, when `[vnc] enabled`.
    pub novncproxy_addr: Option<SocketAddr>,
    /// The demo image's id, when the demo catalog was bootstrapped.
    pub demo_image: Option<uuid::Uuid>,
    /// The billing service's usage ledger.
    pub billing: Arc<novalog_billing::service::Ledger>,
    trigger: ShutdownTrigger,
    tasks: Vec<(&'static str, JoinHandle<Result<()>>)>,
}

impl System {
    /// Opens the configured log and starts every service on it. With
    /// `driver`, the compute agent uses that driver instead of the
    /// configured one (tests keep a handle on a fake driver).
    pub async fn start(
        cfg: &Config,
        driver: Option<Arc<dyn novalog_compute::driver::VirtDriver>>,
    ) -> Result<System> {
        let log = novalog_runtime::backend::open_log(cfg).await?;
        Self::start_on(cfg, log, driver).await
    }

    /// Starts every service on an already open log.
    pub async fn start_on(
        cfg: &Config,
        log: Arc<dyn EventLog>,
        driver: Option<Arc<dyn novalog_compute::driver::VirtDriver>>,
    ) -> Result<System> {
        let (trigger, shutdown) = Shutdown::new();
        let mut tasks = Vec::new();
        let spawn = |name: &'static str,
                     fut: std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<()>> + Send>,
        >| { (name, tokio::spawn(fut)) };
        {
            let (cfg, log, sd) = (cfg.clone(), log.clone(), shutdown.clone());
            tasks.push(spawn(
                "conductor",
                Box::pin(async move { novalog_conductor::service::run(&cfg, log, sd).await }),
            ));
        }
        {
            let (cfg, log, sd) = (cfg.clone(), log.clone(), shutdown.clone());
            tasks.push(spawn(
                "scheduler",
                Box::pin(async move { novalog_scheduler::service::run(&cfg, log, sd).await }),
            ));
        }
        // `[compute] driver = "libvirt"`: one libvirt host beside the fake
        // ones, each with its own agent.
        let agents = if driver.is_none() && cfg.compute.driver == "libvirt" {
            let mut fake = cfg.clone();
            fake.compute.driver = "fake".into();
            vec![(fake, None), (cfg.clone(), None)]
        } else {
            vec![(cfg.clone(), driver)]
        };
        for (agent_cfg, driver) in agents {
            let driver = match driver {
                Some(d) => d,
                None => novalog_compute::service::driver(&agent_cfg)?,
            };
            // Hosts are registered before the API takes its first request.
            let agent =
                novalog_compute::service::Agent::register(&agent_cfg, log.clone(), driver).await?;
            let sd = shutdown.clone();
            let name = if agent_cfg.compute.driver == "fake" {
                "compute"
            } else {
                "compute-libvirt"
            };
            tasks.push(spawn(name, Box::pin(async move { agent.run(sd).await })));
        }
        // `[billing] enabled = false`: an empty ledger, nothing folded.
        let mut ledger = Arc::new(novalog_billing::service::Ledger::default());
        if cfg.billing.enabled {
            let billing = novalog_billing::service::Billing::open(cfg)?;
            ledger = billing.ledger.clone();
            novalog_billing::rate::PriceTable::from_options(&cfg.billing)
                .map_err(|e| Error::Service(format!("[billing]: {e}")))?;
            let (cfg, log, sd) = (cfg.clone(), log.clone(), shutdown.clone());
            tasks.push(spawn(
                "billing",
                Box::pin(async move {
                    let wrap = novalog_runtime::consumer::unwrapped();
                    billing.run(&cfg, log, sd, wrap).await
                }),
            ));
        }
        // The console proxy; with `novncproxy_port = 0` it takes a free
        // port, and the URLs the API hands out name that one.
        let mut cfg = cfg.clone();
        let mut novncproxy_addr = None;
        if cfg.vnc.enabled {
            let listen = cfg.vnc.proxy_listen();
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .map_err(|e| Error::io(format!("binding the console proxy on {listen}"), e))?;
            let addr = listener
                .local_addr()
                .map_err(|e| Error::io("reading the console proxy's address", e))?;
            if cfg.vnc.novncproxy_port == 0 {
                cfg.vnc.novncproxy_base_url = format!("http://{addr}/vnc_lite.html");
            }
            novncproxy_addr = Some(addr);
            let (proxy_cfg, log, sd) = (cfg.clone(), log.clone(), shutdown.clone());
            tasks.push(spawn(
                "novncproxy",
                Box::pin(
                    async move { novalog_novncproxy::run(&proxy_cfg, log, listener, sd).await },
                ),
            ));
        }
        let cfg = &cfg;
        // The API reads usage from the billing service in this process.
        let api = novalog_api::ApiService::start_with_usage(
            cfg,
            log.clone(),
            shutdown.clone(),
            novalog_runtime::consumer::unwrapped(),
            ledger.clone(),
        )
        .await?;
        let api_addr = api.local_addr();
        let demo_image = if cfg.bootstrap.demo_catalog {
            Some(novalog_api::bootstrap_demo_catalog(&api).await?)
        } else {
            None
        };
        tasks.push(spawn("api", Box::pin(async move { api.join().await })));
        if cfg.log.backend == novalog_runtime::config::Backend::Embedded {
            // `novalog-replay dead-letters redrive` cannot open the log
            // this process holds; it leaves the record in the spool.
            let (log, topics, sd) = (log.clone(), cfg.topics(), shutdown.clone());
            let spool = novalog_runtime::spool::dir(&cfg.data_dir);
            tasks.push(spawn(
                "redrive-spool",
                Box::pin(novalog_runtime::spool::run(log, spool, topics, sd)),
            ));
        }
        Ok(System {
            log,
            topics: cfg.topics(),
            api_addr,
            novncproxy_addr,
            demo_image,
            billing: ledger,
            trigger,
            tasks,
        })
    }

    /// Stops every service and waits for them; the first error wins.
    pub async fn stop(self) -> Result<()> {
        let System {
            log,
            trigger,
            tasks,
            ..
        } = self;
        trigger.trigger();
        let mut result = Ok(());
        for (name, task) in tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(service = name, error = %e, "service failed");
                    if result.is_ok() {
                        result = Err(Error::service(name, e));
                    }
                }
                Err(e) => {
                    if result.is_ok() {
                        result = Err(Error::Service(format!("{name} panicked: {e}")));
                    }
                }
            }
        }
        // The services have stopped, but tasks they spawned (an HTTP
        // connection finishing its answer, a client's idle keep-alive
        // connection closing) may still hold the log for a moment; the
        // embedded log's files stay locked until the last holder lets go,
        // and whoever opens the data directory next (a restart in the same
        // process) would find them locked.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&log) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        if Arc::strong_count(&log) > 1 {
            tracing::warn!(
                holders = Arc::strong_count(&log) - 1,
                "the log is still held after every service stopped"
            );
        }
        result
    }

    /// Completes when any service stops on its own (which is a failure).
    pub async fn any_exited(&mut self) -> (&'static str, String) {
        let futs = self.tasks.iter_mut().map(|(name, t)| {
            Box::pin(async move {
                let r = t.await;
                (*name, format!("{r:?}"))
            })
        });
        let (exited, _, _) = futures::future::select_all(futs).await;
        exited
    }
}
