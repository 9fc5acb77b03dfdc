//! `novalog-api`: the Compute API service on its own.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use novalog_api::ApiService;
use novalog_runtime::{Config, Shutdown};

/// Novalog's Compute API (OpenStack Nova v2.1 compatible).
#[derive(Parser, Debug)]
#[command(name = "novalog-api", version, about)]
struct Args {
    /// Configuration file (TOML); NOVALOG_* environment variables override it.
    #[arg(long, env = "NOVALOG_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    novalog_runtime::init_tracing();
    let cfg = Config::load(args.config.as_deref())?;
    let log = novalog_runtime::backend::open_log(&cfg)
        .await
        .context("opening the log")?;
    let (trigger, shutdown) = Shutdown::new();
    let handle = ApiService::start(&cfg, log, shutdown).await?;
    if cfg.bootstrap.demo_catalog {
        // The conductor may start after us: its verdicts come when it does.
        let mut tries = 0;
        while let Err(e) = novalog_api::bootstrap_demo_catalog(&handle).await {
            tries += 1;
            if tries == 10 {
                return Err(e.context("bootstrapping the demo catalog"));
            }
            tracing::warn!(error = %e, "demo catalog not bootstrapped yet; retrying");
        }
    }
    tokio::spawn(async move {
        novalog_runtime::termination_signal().await;
        tracing::info!("termination signal received; shutting down");
        trigger.trigger();
    });
    handle.join().await
}
