//! `novalog`: the whole system in one process on the embedded log.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use novalog_all_in_one::System;
use novalog_runtime::cli::{CONFIG_HELP, CommonArgs};

/// Novalog all-in-one: the API, the conductor, the scheduler and a compute
/// agent with fake hosts in one process, on the embedded log in
/// <data_dir>/log (or on Kafka if [log] backend says so). The API, with
/// /metrics, /healthz and /readyz for every service, listens on [api]
/// listen.
#[derive(Parser)]
#[command(name = "novalog", version, about, after_help = CONFIG_HELP)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Data directory (overrides `data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on (overrides `api.listen`).
    #[arg(long)]
    listen: Option<String>,
    /// Number of fake hosts (overrides `compute.fake_hosts`).
    #[arg(long)]
    fake_hosts: Option<usize>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print every configuration option with its default and what it does,
    /// as a TOML file (deploy/novalog.toml is this output).
    ConfigDefaults,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Command::ConfigDefaults) = args.command {
        print!("{}", novalog_runtime::Config::DEFAULTS_TOML);
        return Ok(());
    }
    let mut cfg = args.common.init()?;
    if let Some(d) = args.data_dir {
        cfg.data_dir = d;
    }
    if let Some(l) = args.listen {
        cfg.api.listen = l;
    }
    if let Some(n) = args.fake_hosts {
        cfg.compute.fake_hosts = n;
    }
    if args.common.check_config {
        args.common.report_valid(&cfg);
        return Ok(());
    }
    novalog_runtime::observe::install_metrics();
    novalog_runtime::observe::Health::global().expect(&[
        "api",
        "conductor",
        "scheduler",
        "compute",
        "billing",
    ]);
    std::fs::create_dir_all(&cfg.data_dir)?;
    let mut system = System::start(&cfg, None).await?;
    let (_stop_watchers, watchers) = novalog_runtime::Shutdown::new();
    novalog_runtime::observe::watch_db_sizes(
        &cfg.data_dir,
        &[
            "api",
            "conductor",
            "scheduler",
            "compute",
            "billing",
            "novncproxy",
            "log",
        ],
        &watchers,
    );
    let addr = system.api_addr;
    tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "novalog is up");
    println!(
        "Novalog is listening on http://{addr} (data in {})",
        cfg.data_dir.display()
    );
    if let Some(proxy) = system.novncproxy_addr {
        println!("Consoles (openstack console url show) open at http://{proxy}/vnc_lite.html");
    }
    if let Some(image) = system.demo_image {
        let token = if cfg.api.auth_strategy == "noauth2" {
            "admin:admin"
        } else {
            println!("Get a token (user admin, password admin, project admin):");
            println!(
                "  TOKEN=$(curl -si http://{addr}/identity/v3/auth/tokens \
                 -H 'Content-Type: application/json' \
                 -d '{{\"auth\": {{\"identity\": {{\"methods\": [\"password\"], \"password\": {{\"user\": \
                 {{\"name\": \"admin\", \"domain\": {{\"id\": \"default\"}}, \"password\": \"admin\"}}}}}}, \
                 \"scope\": {{\"project\": {{\"name\": \"admin\", \"domain\": {{\"id\": \"default\"}}}}}}}}}}' \
                 | awk '/^[Xx]-[Ss]ubject-[Tt]oken:/ {{print $2}}' | tr -d '\\r')"
            );
            "$TOKEN"
        };
        println!("Boot a server:");
        println!(
            "  curl -s -X POST http://{addr}/v2.1/servers -H \"X-Auth-Token: {token}\" \
             -H 'Content-Type: application/json' \
             -d '{{\"server\": {{\"name\": \"vm1\", \"flavorRef\": \"1\", \"imageRef\": \"{image}\", \"networks\": \"none\"}}}}'"
        );
        println!("List servers:");
        println!("  curl -s http://{addr}/v2.1/servers/detail -H \"X-Auth-Token: {token}\"");
    }
    let failed = tokio::select! {
        _ = novalog_runtime::termination_signal() => None,
        exited = system.any_exited() => Some(exited),
    };
    match failed {
        None => {
            tracing::info!("shutting down");
            Ok(system.stop().await?)
        }
        Some((name, why)) => anyhow::bail!("service {name} stopped: {why}"),
    }
}
