//! `novalog-api`: the Compute API service on its own.

use clap::Parser;
use novalog_api::ApiService;
use novalog_runtime::cli::{CONFIG_HELP, CommonArgs};
use novalog_runtime::service_main::ServiceMain;

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
    // /metrics, /healthz and /readyz are on the API's own listener.
    let main = ServiceMain {
        name: "api",
        metrics_port: None,
    };
    main.run(&args.common, |cfg, log, shutdown| async move {
        let mut stopping = shutdown.clone();
        let handle = ApiService::start(&cfg, log, shutdown).await?;
        if cfg.bootstrap.demo_catalog {
            // The conductor may start after us: its verdicts come when it
            // does. A termination signal meanwhile ends the wait.
            let mut tries = 0;
            loop {
                let bootstrapped = tokio::select! {
                    r = novalog_api::bootstrap_demo_catalog(&handle) => r,
                    _ = stopping.wait() => break,
                };
                let Err(e) = bootstrapped else { break };
                tries += 1;
                if tries == 10 {
                    return Err(novalog_runtime::Error::service(
                        "bootstrapping the demo catalog",
                        e,
                    ));
                }
                tracing::warn!(error = %e, "demo catalog not bootstrapped yet; retrying");
            }
        }
        handle.join().await
    })
    .await?;
    Ok(())
}
