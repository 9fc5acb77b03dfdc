//! `novalog-compute`: the compute agent alone, on the configured log.

use clap::Parser;
use novalog_runtime::cli::{CONFIG_HELP, CommonArgs};
use novalog_runtime::service_main::ServiceMain;

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
    let main = ServiceMain {
        name: "compute",
        metrics_port: Some(9183),
    };
    main.run(&args.common, |cfg, log, shutdown| async move {
        novalog_compute::service::run(&cfg, log, shutdown).await
    })
    .await?;
    Ok(())
}
