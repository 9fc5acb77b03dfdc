//! Opens the configured log backend.

use std::sync::Arc;

use novalog_log::EventLog;
use novalog_log::embedded::{EmbeddedLog, EmbeddedOptions};
use novalog_log::kafka::{KafkaLog, KafkaOptions};

use crate::config::{Backend, Config};

/// Opens the log `cfg` names and creates Novalog's topics on it.
pub async fn open_log(cfg: &Config) -> anyhow::Result<Arc<dyn EventLog>> {
    let log: Arc<dyn EventLog> = match cfg.log.backend {
        Backend::Embedded => {
            let dir = cfg.data_dir.join("log");
            std::fs::create_dir_all(&dir)?;
            Arc::new(EmbeddedLog::open(
                &dir,
                EmbeddedOptions {
                    default_partitions: cfg.log.partitions,
                    sync: cfg.log.sync,
                },
            )?)
        }
        Backend::Kafka => Arc::new(KafkaLog::new(KafkaOptions {
            bootstrap_servers: cfg.log.bootstrap_servers.clone(),
            partitions: cfg.log.partitions,
            replication_factor: cfg.log.replication_factor,
            properties: cfg.log.kafka_properties.clone(),
            ..KafkaOptions::default()
        })?),
    };
    log.create_topics(&cfg.topics().specs(cfg.log.partitions))
        .await?;
    Ok(log)
}
