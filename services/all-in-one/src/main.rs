//! `novalog`: the whole system in one process on the embedded log.

use std::path::PathBuf;

use clap::Parser;
use novalog_all_in_one::System;

/// Novalog all-in-one: API, conductor, scheduler and a compute agent with
/// fake hosts, in one process on the embedded log.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// TOML configuration file (options can also be set as NOVALOG_<SECTION>__<OPTION>).
    #[arg(long, env = "NOVALOG_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides `data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on (overrides `api.listen`).
    #[arg(long)]
    listen: Option<String>,
    /// Number of fake hosts (overrides `compute.fake_hosts`).
    #[arg(long)]
    fake_hosts: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    novalog_runtime::init_tracing();
    let args = Args::parse();
    let mut cfg = novalog_runtime::Config::load(args.config.as_deref())?;
    if let Some(d) = args.data_dir {
        cfg.data_dir = d;
    }
    if let Some(l) = args.listen {
        cfg.api.listen = l;
    }
    if let Some(n) = args.fake_hosts {
        cfg.compute.fake_hosts = n;
    }
    std::fs::create_dir_all(&cfg.data_dir)?;
    let mut system = System::start(&cfg, None).await?;
    let addr = system.api_addr;
    tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "novalog is up");
    println!(
        "Novalog is listening on http://{addr} (data in {})",
        cfg.data_dir.display()
    );
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
            system.stop().await
        }
        Some((name, why)) => anyhow::bail!("service {name} stopped: {why}"),
    }
}
