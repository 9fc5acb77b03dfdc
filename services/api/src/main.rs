//! `novalog-api`: the Compute API service on its own.

use anyhow::Context as _;
use clap::Parser;
use novalog_api::ApiService;
use novalog_runtime::Shutdown;
use novalog_runtime::cli::{CONFIG_HELP, CommonArgs};

/// Novalog's API: the Compute API v2.1 (OpenStack Nova compatible, with
/// microversions), Identity v3 and Image v2 subsets, on [api] listen. It
/// appends intents to the log and answers from its own projection; it
/// also serves /metrics, /healthz and /readyz on the same listener.
#[derive(Parser, Debug)]
#[command(name = "novalog-api", version, about, after_help = CONFIG_HELP)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = args.common.init()?;
    if args.common.check_config {
        args.common.report_valid(&cfg);
        return Ok(());
    }
    novalog_runtime::observe::install_metrics();
    novalog_runtime::observe::Health::global().expect(&["api"]);
    let log = novalog_runtime::backend::open_log(&cfg)
        .await
        .context("opening the log")?;
    let (trigger, shutdown) = Shutdown::new();
    novalog_runtime::observe::watch_db_sizes(&cfg.data_dir, &["api"], &shutdown);
    let handle = ApiService::start(&cfg, log, shutdown).await?;
    if cfg.bootstrap.demo_catalog {
        // The conductor may start after us: its verdicts come when it does.
        let mut tries = 0;
        while let Err(e) = novalog_api::bootstrap_demo_catalog(&handle).await {
            tries += 1;
            if tries == 10 {
                return Err(anyhow::Error::new(e).context("bootstrapping the demo catalog"));
            }
            tracing::warn!(error = %e, "demo catalog not bootstrapped yet; retrying");
        }
    }
    tokio::spawn(async move {
        novalog_runtime::termination_signal().await;
        tracing::info!("termination signal received; shutting down");
        trigger.trigger();
    });
    Ok(handle.join().await?)
}
