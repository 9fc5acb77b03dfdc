//! `novalog-conductor`: the compute agent alone, on the configured log.

use std::path::PathBuf;

use clap::Parser;

/// Novalog compute agent: claims, spawns and destroys guests on its hosts.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// TOML configuration file (options can also be set as NOVALOG_<SECTION>__<OPTION>).
    #[arg(long, env = "NOVALOG_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    novalog_runtime::init_tracing();
    let args = Args::parse();
    let cfg = novalog_runtime::Config::load(args.config.as_deref())?;
    let log = novalog_runtime::backend::open_log(&cfg).await?;
    let (trigger, shutdown) = novalog_runtime::Shutdown::new();
    tokio::spawn(async move {
        novalog_runtime::termination_signal().await;
        trigger.trigger();
    });
    novalog_compute::service::run(&cfg, log, shutdown).await
}
