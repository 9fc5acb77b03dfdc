//! Opens the configured log backend.

use std::sync::Arc;

use novalog_log::EventLog;
use novalog_log::embedded::{EmbeddedLog, EmbeddedOptions};
use novalog_log::kafka::{KafkaLog, KafkaOptions};

use crate::config::{Backend, Config};

/// Opens the log `cfg` names and creates Novalog's topics on it.
pub async fn open_log(cfg: &Config) -> crate::Result<Arc<dyn EventLog>> {
    let log: Arc<dyn EventLog> = match cfg.log.backend {
        Backend::Embedded => {
            let dir = cfg.data_dir.join("log");
            std::fs::create_dir_all(&dir)
                .map_err(|e| crate::Error::io(format!("creating {}", dir.display()), e))?;
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
    check_retention(&*log, cfg).await?;
    Ok(log)
}

/// Refuses topics whose retention would delete history, unless the
/// operator opted out (`log.allow_deleting_retention`).
pub async fn check_retention(log: &dyn EventLog, cfg: &Config) -> crate::Result<()> {
    let topics: Vec<String> = cfg.topics().all().into_iter().map(str::to_owned).collect();
    let problems = log.retention_problems(&topics).await?;
    if problems.is_empty() {
        return Ok(());
    }
    if cfg.log.allow_deleting_retention {
        for p in &problems {
            tracing::warn!(problem = %p, "topic deletes history (allowed by log.allow_deleting_retention)");
        }
        return Ok(());
    }
    Err(crate::Error::Retention(format!(
        "{}; set retention.ms=-1 and retention.bytes=-1 (cleanup.policy=delete) on the topic, \
         or allow it with log.allow_deleting_retention = true",
        problems.join("; ")
    )))
}
