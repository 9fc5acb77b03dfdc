//! `novalog-scheduler`: the scheduler alone, on the configured log.

use clap::Parser;
use novalog_runtime::cli::{CONFIG_HELP, CommonArgs};
use novalog_runtime::service_main::ServiceMain;

/// Novalog scheduler: picks hosts for the conductor's requests with Nova's
/// filters and weighers ([filter_scheduler]), over its own view of every
/// host. Serves /metrics, /healthz and /readyz on [metrics] listen
/// (default 127.0.0.1:9182).
#[derive(Parser)]
#[command(name = "novalog-scheduler", version, about, after_help = CONFIG_HELP)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let main = ServiceMain {
        name: "scheduler",
        metrics_port: Some(9182),
    };
    main.run(&args.common, |cfg, log, shutdown| async move {
        novalog_scheduler::service::run(&cfg, log, shutdown).await
    })
    .await?;
    Ok(())
}
