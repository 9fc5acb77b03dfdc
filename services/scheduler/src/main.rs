//! `novalog-scheduler`: the scheduler alone, on the configured log.

use clap::Parser;
use novalog_runtime::cli::{CONFIG_HELP, CommonArgs};

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
    let cfg = args.common.init()?;
    if args.common.check_config {
        args.common.report_valid(&cfg);
        return Ok(());
    }
    let log = novalog_runtime::backend::open_log(&cfg).await?;
    let (trigger, shutdown) = novalog_runtime::Shutdown::new();
    novalog_runtime::observe::Health::global().expect(&["scheduler"]);
    novalog_runtime::observe::serve(&cfg.metrics.listen_or(9182), shutdown.clone()).await?;
    novalog_runtime::observe::watch_db_sizes(&cfg.data_dir, &["scheduler"], &shutdown);
    tokio::spawn(async move {
        novalog_runtime::termination_signal().await;
        trigger.trigger();
    });
    Ok(novalog_scheduler::service::run(&cfg, log, shutdown).await?)
}
