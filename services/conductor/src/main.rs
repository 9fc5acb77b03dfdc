//! `novalog-conductor`: the conductor alone, on the configured log.

use clap::Parser;
use novalog_runtime::cli::{CONFIG_HELP, CommonArgs};
use novalog_runtime::service_main::ServiceMain;

/// Novalog conductor: the only writer of instance state. Decides on the
/// intents the API appends, runs every saga (build, delete, resize,
/// migrate, rebuild, evacuate, live migration, server actions) and owns
/// their deadlines. Serves /metrics, /healthz and /readyz on [metrics]
/// listen (default 127.0.0.1:9181).
#[derive(Parser)]
#[command(name = "novalog-conductor", version, about, after_help = CONFIG_HELP)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let main = ServiceMain {
        name: "conductor",
        metrics_port: Some(9181),
    };
    main.run(&args.common, |cfg, log, shutdown| async move {
        novalog_conductor::service::run(&cfg, log, shutdown).await
    })
    .await?;
    Ok(())
}
