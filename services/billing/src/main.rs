//! `novalog-billing`: the billing subscriber alone, on the configured log.

use clap::{Parser, Subcommand};
use novalog_billing::check::FlavorsSeen;
use novalog_billing::rate::PriceTable;
use novalog_log::embedded::EmbeddedReader;
use novalog_runtime::cli::{CONFIG_HELP, CommonArgs};
use novalog_runtime::config::Backend;
use novalog_runtime::consumer::decode_record;
use novalog_runtime::service_main::ServiceMain;

/// Novalog billing: meters every server's usage from the `instances` topic
/// to the millisecond and rates it by the [billing] price table, exactly.
/// Serves /metrics, /healthz and /readyz on [metrics] listen (default
/// 127.0.0.1:9184).
#[derive(Parser)]
#[command(name = "novalog-billing", version, about, after_help = CONFIG_HELP)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the [billing] price table and list the flavors in the log
    /// it has no price for (their servers are billed at the default
    /// per-resource rates). Reads the log only; safe while services run.
    CheckPrices,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Command::CheckPrices) = args.command {
        return check_prices(&args.common).await;
    }
    let main = ServiceMain {
        name: novalog_billing::service::NAME,
        metrics_port: Some(9184),
    };
    main.run(&args.common, |cfg, log, shutdown| async move {
        novalog_billing::service::run(&cfg, log, shutdown).await
    })
    .await?;
    Ok(())
}

async fn check_prices(common: &CommonArgs) -> anyhow::Result<()> {
    let cfg = common.init()?;
    let table =
        PriceTable::from_options(&cfg.billing).map_err(|e| anyhow::anyhow!("[billing]: {e}"))?;
    let topics = cfg.topics();
    let mut seen = FlavorsSeen::default();
    let mut observe = |topic: &str, value: &[u8]| {
        // What does not decode is the dead-letter topic's business.
        if let Ok(env) = decode_record(topic, value) {
            seen.observe(&env);
        }
    };
    for topic in [&topics.catalog, &topics.instances] {
        match cfg.log.backend {
            Backend::Embedded => {
                let dir = cfg.data_dir.join("log");
                anyhow::ensure!(
                    dir.is_dir(),
                    "no embedded log in {} (is data_dir right?)",
                    dir.display()
                );
                let reader = EmbeddedReader::open(&dir)?;
                for (p, end) in reader.end_offsets(topic)?.into_iter().enumerate() {
                    reader.for_each(topic, p as i32, 0, end, |_, _, _, v| observe(topic, v))?;
                }
            }
            Backend::Kafka => {
                let log = novalog_runtime::backend::open_log(&cfg).await?;
                for (p, end) in log.end_offsets(topic).await?.into_iter().enumerate() {
                    let mut from = 0;
                    while from < end {
                        let batch = log.read(topic, p as i32, from, 5_000).await?;
                        let Some(last) = batch.last() else { break };
                        from = last.offset + 1;
                        for r in &batch {
                            observe(topic, &r.value);
                        }
                    }
                }
            }
        }
    }
    let unpriced = seen.unpriced(&table);
    println!(
        "[billing] is valid: {} flavors priced, currency {}, {} flavors in the log",
        table.flavors.len(),
        table.currency,
        seen.flavors.len()
    );
    for line in &unpriced {
        println!("{line}");
    }
    Ok(())
}
