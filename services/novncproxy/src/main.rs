//! `novalog-novncproxy`: the console proxy alone, on the configured log.

use clap::Parser;
use novalog_runtime::cli::{CONFIG_HELP, CommonArgs};
use novalog_runtime::service_main::ServiceMain;

/// Novalog console proxy (nova-novncproxy): serves the noVNC console page
/// and proxies its WebSocket to the guest's VNC display once the token is
/// checked against the tokens issued on the log. Listens on [vnc]
/// novncproxy_host:novncproxy_port (default 127.0.0.1:6080); /metrics,
/// /healthz and /readyz on [metrics] listen (default 127.0.0.1:9185).
#[derive(Parser)]
#[command(name = "novalog-novncproxy", version, about, after_help = CONFIG_HELP)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let main = ServiceMain {
        name: novalog_novncproxy::NAME,
        metrics_port: Some(9185),
    };
    main.run(&args.common, |cfg, log, shutdown| async move {
        let listen = cfg.vnc.proxy_listen();
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| novalog_runtime::Error::io(format!("binding {listen}"), e))?;
        novalog_novncproxy::run(&cfg, log, listener, shutdown).await
    })
    .await?;
    Ok(())
}
