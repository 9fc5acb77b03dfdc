//! `novalog-compute`: the compute agent alone, on the configured log.

use clap::Parser;
use novalog_runtime::cli::{CONFIG_HELP, CommonArgs};

/// Novalog compute agent: claims, spawns, destroys and migrates guests on
/// its hosts ([compute]: the fake driver runs `fake_hosts` hosts in one
/// process), reports their capacity and heartbeats. Serves /metrics,
/// /healthz and /readyz on [metrics] listen (default 127.0.0.1:9183).
#[derive(Parser)]
#[command(name = "novalog-compute", version, about, after_help = CONFIG_HELP)]
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
    let log = novalog_runtime::backend::open_log(&cfg).await?;
    let (trigger, shutdown) = novalog_runtime::Shutdown::new();
    novalog_runtime::observe::Health::global().expect(&["compute"]);
    novalog_runtime::observe::serve(&cfg.metrics.listen_or(9183), shutdown.clone()).await?;
    novalog_runtime::observe::watch_db_sizes(&cfg.data_dir, &["compute"], &shutdown);
    tokio::spawn(async move {
        novalog_runtime::termination_signal().await;
        trigger.trigger();
    });
    Ok(novalog_compute::service::run(&cfg, log, shutdown).await?)
}
