//! Starting and stopping the service: the projection store, its consumer,
//! the listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use novalog_log::EventLog;
use novalog_runtime::consumer::{self, ConsumerSpec, Wrap};
use novalog_runtime::{Config, Error, Result, Shutdown};
use novalog_store::RocksStore;
use tokio::task::JoinHandle;

use crate::app::{self, App};
use crate::auth::AuthStrategy;
use crate::domain::Domain;
use crate::domain::intents::Intents;
use crate::projection::verdicts::Verdicts;
use crate::projection::{self, Projection, ProjectionHandler};

/// The Compute API service.
pub struct ApiService;

/// A running API service.
pub struct ApiHandle {
    local_addr: SocketAddr,
    pub(crate) app: Arc<App>,
    server: JoinHandle<Result<()>>,
    consumer: JoinHandle<Result<()>>,
}

impl ApiService {
    /// Opens the projection store at `<data_dir>/api`, starts the
    /// projection consumer, binds `cfg.api.listen` and serves until
    /// `shutdown`. Then the listener drains its requests first (their
    /// verdicts still arrive), and the consumer stops last.
    pub async fn start(
        cfg: &Config,
        log: Arc<dyn EventLog>,
        shutdown: Shutdown,
    ) -> Result<ApiHandle> {
        Self::start_wrapped(cfg, log, shutdown, consumer::unwrapped()).await
    }

    /// [`ApiService::start`] with the projection's handler passed through
    /// `wrap` (tests wrap it to inject failures).
    pub async fn start_wrapped(
        cfg: &Config,
        log: Arc<dyn EventLog>,
        shutdown: Shutdown,
        wrap: Wrap,
    ) -> Result<ApiHandle> {
        let usage = crate::domain::usage::remote(&cfg.billing.endpoint);
        Self::start_with_usage(cfg, log, shutdown, wrap, usage).await
    }

    /// [`ApiService::start_wrapped`], reading usage from `usage` rather
    /// than from `[billing] endpoint` (the all-in-one passes its billing
    /// service's ledger).
    pub async fn start_with_usage(
        cfg: &Config,
        log: Arc<dyn EventLog>,
        shutdown: Shutdown,
        wrap: Wrap,
        usage: Arc<dyn crate::domain::usage::UsageSource>,
    ) -> Result<ApiHandle> {
        let prices = Arc::new(
            novalog_billing::PriceTable::from_options(&cfg.billing)
                .map_err(|e| Error::Service(format!("[billing]: {e}")))?,
        );
        let dir = cfg.data_dir.join("api");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let auth = {
            // Hashing the configured passwords is slow on purpose.
            let (cfg, dir) = (cfg.clone(), dir.clone());
            tokio::task::spawn_blocking(move || AuthStrategy::from_config(&cfg, &dir))
                .await
                .map_err(|e| Error::service("building the auth strategy", e))?
                .map_err(|e| Error::service("building the auth strategy", e))?
        };
        let store = Arc::new(RocksStore::open(&dir, cfg.log.sync).map_err(|e| {
            Error::service(format!("opening the api store in {}", dir.display()), e)
        })?);
        let projection = Arc::new(
            Projection::load(store.clone())
                .map_err(|e| Error::service("loading the api projection", e))?,
        );
        let revocations = auth.identity().map(|i| i.revocations.clone());
        if let Some(r) = &revocations {
            r.load(&*store)
                .map_err(|e| Error::service("loading the revoked tokens", e))?;
        }
        let directory = auth.identity().map(|i| i.directory.records.clone());
        if let Some(d) = &directory {
            d.load(&*store)
                .map_err(|e| Error::service("loading the identity directory", e))?;
        }
        let verdicts = Arc::new(Verdicts::new());
        let topics = cfg.topics();
        // Stops the listener; long-lived answers (the console's event
        // streams) end on it too, so a graceful stop does not wait on them.
        let (stop_server, server_stopped) = Shutdown::new();
        let app = Arc::new(App {
            domain: Domain {
                projection: projection.clone(),
                intents: Intents::new(
                    log.clone(),
                    topics.intents.clone(),
                    verdicts.clone(),
                    Duration::from_millis(cfg.api.verdict_timeout_ms),
                ),
                service_down_time_ms: (cfg.service_down_time as i64).saturating_mul(1000),
                quota_defaults: cfg.quota.clone(),
                max_limit: cfg.api.max_limit,
                usage,
                prices,
                consoles: crate::domain::consoles::ConsoleSettings {
                    vnc_enabled: cfg.vnc.enabled,
                    novncproxy_base_url: cfg.vnc.novncproxy_base_url.clone(),
                },
            },
            auth: Arc::new(auth),
            log: log.clone(),
            topics: topics.clone(),
            max_body: cfg.api.max_request_body_size,
            images_dir: cfg.data_dir.join("images"),
            image_upload_lease: Duration::from_secs(cfg.conductor.image_upload_lease),
            allocation_ratios: crate::dashboard::hosts::AllocationRatios::of(cfg),
            closing: server_stopped.clone(),
            request_timeout: (cfg.wsgi.request_timeout > 0)
                .then(|| Duration::from_secs(cfg.wsgi.request_timeout)),
        });

        let listener = tokio::net::TcpListener::bind(&cfg.api.listen)
            .await
            .map_err(|e| Error::io(format!("binding {}", cfg.api.listen), e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the listener's address", e))?;

        let (stop_consumer, consumer_stopped) = Shutdown::new();
        let stop_server = Arc::new(stop_server);

        let spec = ConsumerSpec {
            name: projection::CONSUMER.to_owned(),
            // Every API replica folds every partition into its own store,
            // so each is a group of its own.
            group: cfg.topics().group(&format!(
                "{}-{}",
                projection::CONSUMER,
                novalog_runtime::replica_id(&*store)?
            )),
            topics: vec![
                topics.instances.clone(),
                topics.catalog.clone(),
                topics.hosts.clone(),
            ],
            dead_letter_topic: topics.dead_letter.clone(),
            max_batch: cfg.log.max_batch,
        };
        let mut handler = ProjectionHandler::new(projection, verdicts, store.clone());
        if let Some(r) = revocations {
            handler = handler.with_revocations(r);
        }
        if let Some(d) = directory {
            handler = handler.with_identity(d);
        }
        let handler = wrap(Box::new(handler));
        let consumer = {
            let stop_server = stop_server.clone();
            tokio::spawn(async move {
                let result = consumer::run(log, store, spec, handler, consumer_stopped).await;
                if let Err(e) = &result {
                    tracing::error!(error = %e, "api projection consumer stopped; stopping the api");
                    stop_server.trigger();
                }
                result
            })
        };
        {
            // Uploads this API's last run left half done stay `saving`
            // until someone puts them back; the consumer must run first,
            // for the verdicts.
            let images = crate::mounts::image_app(&app);
            // Holds the app (and its store) until the server stops, no
            // longer: a restart in the same process reopens the store.
            let mut stopped = server_stopped.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = stopped.wait() => {}
                    _ = async {
                        novalog_image::images::abort_interrupted_uploads(&images).await;
                        // Those of a replica that died and never starts
                        // again are bounded by their lease.
                        novalog_image::images::keep_upload_leases(images.clone()).await
                    } => {}
                }
            });
        }
        {
            let stop_server = stop_server.clone();
            let mut shutdown = shutdown;
            tokio::spawn(async move {
                shutdown.wait().await;
                stop_server.trigger();
            });
        }
        let router = app::router(app.clone());
        let open_files = crate::serve::raise_open_files_limit();
        let serve_options = crate::serve::ServeOptions::new(&cfg.wsgi, open_files);
        tracing::info!(?serve_options, open_files, "api listener bounds");
        let server = tokio::spawn(async move {
            let mut stopped = server_stopped;
            let result = crate::serve::run(listener, router, serve_options, async move {
                stopped.wait().await
            })
            .await;
            stop_consumer.trigger();
            result.map_err(|e| Error::io("serving the api", e))
        });
        tracing::info!(%local_addr, "compute api listening");
        Ok(ApiHandle {
            local_addr,
            app,
            server,
            consumer,
        })
    }
}

impl ApiHandle {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// True once the projection consumer has stopped (on shutdown or error).
    pub fn consumer_finished(&self) -> bool {
        self.consumer.is_finished()
    }

    /// Waits until the service has stopped; the first error of the
    /// listener or the consumer, if any.
    pub async fn join(self) -> Result<()> {
        let server = self
            .server
            .await
            .map_err(|e| Error::service("api listener task", e))?;
        let consumer = self
            .consumer
            .await
            .map_err(|e| Error::service("api consumer task", e))?;
        server.and(consumer)
    }
}
