//! The `main` every service binary shares: load the configuration and
//! start logging (or only check the configuration), open the log, serve
//! metrics and health, turn SIGTERM or Ctrl-C into a graceful shutdown,
//! and run the service until it returns.
//!
//! A binary keeps only what is its own: its `--help` text (its clap
//! `Args`) and the call into its library's `run`; it reports the
//! [`Error`] through `anyhow`.

use std::future::Future;
use std::sync::Arc;

use novalog_log::EventLog;

use crate::cli::CommonArgs;
use crate::{Config, Error, Result, Shutdown, observe};

/// What tells one service binary from another.
#[derive(Debug, Clone, Copy)]
pub struct ServiceMain {
    /// The service's name: the consumers `/readyz` waits for and its store
    /// under `data_dir` (`conductor`, `scheduler`, `compute`, `api`).
    pub name: &'static str,
    /// Where `/metrics`, `/healthz` and `/readyz` listen when `[metrics]
    /// listen` is unset; `None` for a service that serves them on a
    /// listener of its own (the API).
    pub metrics_port: Option<u16>,
}

impl ServiceMain {
    /// Loads the configuration `args` name and starts logging; with
    /// `--check-config`, says whether the configuration is valid and
    /// returns without starting anything. Otherwise as [`ServiceMain::run_with`].
    pub async fn run<F, Fut>(&self, args: &CommonArgs, service: F) -> Result<()>
    where
        F: FnOnce(Config, Arc<dyn EventLog>, Shutdown) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let cfg = args.init()?;
        if args.check_config {
            args.report_valid(&cfg);
            return Ok(());
        }
        self.run_with(cfg, service).await
    }

    /// Opens the log `cfg` names, serves metrics and health, and runs
    /// `service` on it until it returns; SIGTERM or Ctrl-C triggers the
    /// [`Shutdown`] it was given, so it drains and returns.
    pub async fn run_with<F, Fut>(&self, cfg: Config, service: F) -> Result<()>
    where
        F: FnOnce(Config, Arc<dyn EventLog>, Shutdown) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        observe::install_metrics();
        // Not ready until this service's consumers have started and caught up.
        observe::Health::global().expect(&[self.name]);
        let log = crate::backend::open_log(&cfg).await?;
        let (trigger, shutdown) = Shutdown::new();
        if let Some(port) = self.metrics_port {
            observe::serve(&cfg.metrics.listen_or(port), shutdown.clone())
                .await
                .map_err(|e| Error::io("metrics listener", e))?;
        }
        observe::watch_db_sizes(&cfg.data_dir, &[self.name], &shutdown);
        // `novalog-replay dead-letters redrive` cannot open the embedded
        // log this process holds; it leaves the record in the spool.
        let spool = (cfg.log.backend == crate::config::Backend::Embedded).then(|| {
            let (log, topics, sd) = (log.clone(), cfg.topics(), shutdown.clone());
            let spool = crate::spool::dir(&cfg.data_dir);
            tokio::spawn(async move {
                if let Err(e) = crate::spool::run(log, spool, topics, sd).await {
                    tracing::warn!(error = %e, "redrive spool");
                }
            })
        });
        let signal = tokio::spawn(async move {
            crate::termination_signal().await;
            tracing::info!("termination signal received; shutting down");
            trigger.trigger();
        });
        let result = service(cfg, log, shutdown).await;
        signal.abort();
        if let Some(spool) = spool {
            // Its handle on the log goes with it: the log closes when
            // this returns.
            spool.abort();
            let _ = spool.await;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::observe::LogFormat;

    const MAIN: ServiceMain = ServiceMain {
        name: "test",
        metrics_port: None,
    };

    fn config(dir: &std::path::Path) -> Config {
        let mut cfg = Config {
            data_dir: dir.to_path_buf(),
            ..Config::default()
        };
        cfg.metrics.listen = "127.0.0.1:0".into();
        cfg
    }

    #[tokio::test]
    async fn the_service_runs_on_the_configured_log_and_its_result_is_returned() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let main = ServiceMain {
            metrics_port: Some(0),
            ..MAIN
        };
        let ran = AtomicBool::new(false);
        let (path, flag) = (dir.path(), &ran);
        main.run_with(cfg.clone(), |got, log, shutdown| async move {
            assert_eq!(got.data_dir, path);
            assert!(!shutdown.is_triggered());
            // The embedded log, opened under the data directory.
            let topics = got.topics();
            log.create_topics(&topics.specs(1)).await.unwrap();
            assert_eq!(log.end_offsets(&topics.intents).await.unwrap(), [0]);
            assert!(path.join("log").exists());
            flag.store(true, Ordering::SeqCst);
            Ok(())
        })
        .await
        .unwrap();
        assert!(ran.load(Ordering::SeqCst));

        let err = MAIN
            .run_with(cfg, |_, _, _| async {
                Err(Error::Service("the service failed".into()))
            })
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "the service failed");
    }

    #[tokio::test]
    async fn a_service_on_the_embedded_log_drains_the_redrive_spool() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        MAIN.run_with(cfg, |cfg, log, _shutdown| async move {
            let topics = cfg.topics();
            log.create_topics(&topics.specs(1)).await.unwrap();
            let record =
                novalog_log::Record::new(topics.intents.clone(), b"k".to_vec(), b"v".to_vec());
            let file =
                crate::spool::enqueue(&crate::spool::dir(&cfg.data_dir), "5f1c", &record).unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while log.end_offsets(&topics.intents).await.unwrap() != [1] || file.exists() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the spool was not drained"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Ok(())
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn check_config_starts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("novalog.toml");
        std::fs::write(
            &file,
            format!("data_dir = {:?}\n", dir.path().join("data").display()),
        )
        .unwrap();
        let args = CommonArgs {
            config: Some(file),
            log_format: LogFormat::Text,
            check_config: true,
        };
        MAIN.run(&args, |_, _, _| async {
            panic!("--check-config must not start the service")
        })
        .await
        .unwrap();
        assert!(!dir.path().join("data").exists(), "no log opened");
    }
}
