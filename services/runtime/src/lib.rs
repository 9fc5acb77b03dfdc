//! What every Novalog service shares around its domain logic: configuration,
//! topic names, opening the log and the store, the consumer loop with its
//! exactly-once bookkeeping and dead-lettering, logging and shutdown.
//!
//! # Layout
//! - [`config`]: typed options, layered defaults → TOML → environment.
//! - [`config_console`]: `[vnc]` and `[consoleauth]`; [`console_tokens`]:
//!   the console tokens every reader of `instances` that checks them keeps.
//! - [`topics`]: the namespaced topic names and their partition counts.
//! - [`consumer`]: [`consumer::run`] drives a [`consumer::Handler`]: decode,
//!   apply, append outputs, then commit state and offsets in one
//!   transaction; a record that does not decode, or whose handling fails or
//!   panics, is dead-lettered alone and the loop goes on.
//! - [`backend`]: opens the configured log backend.
//! - [`observe`]: Prometheus metrics, `/healthz` and `/readyz`, logging
//!   (text or JSON) with a span per record.
//! - [`progress`]: each consumer's lag and readiness.
//! - [`memory`]: RocksDB's and the allocator's memory as gauges; the
//!   allocator's settings.
//! - [`cli`]: the flags every binary shares.
//! - [`spool`]: redrives `novalog-replay` leaves for the process that holds
//!   an embedded log; [`service_main`] (and `novalog`) drain it.
//! - [`service_main`]: the `main` every service binary shares (config,
//!   logging, log, metrics, signals, run).
//! - [`error`]: [`Error`], why a service could not start or its consumer
//!   loop stopped (binaries report it through `anyhow`).

pub mod backend;
pub mod cli;
pub mod config;
pub mod config_console;
pub mod console_tokens;
pub mod consumer;
pub mod error;
pub mod memory;
pub mod observe;
pub mod progress;
pub mod service_main;
pub mod spool;
pub mod topics;

pub use config::Config;
pub use consumer::{Handler, Input, Outbox};
pub use error::{Error, Result};
pub use topics::Topics;

use novalog_store::{Store, StoreExt, Transaction};
use tokio::sync::watch;

/// This replica's id, made once and kept in its own store: stable across
/// restarts, different for every replica (each has its own store). Used
/// for the consumer groups a replica must not share with its peers.
pub fn replica_id<S: Store + ?Sized>(store: &S) -> novalog_store::Result<String> {
    const TABLE: &str = "_replica";
    if let Some(id) = store.get::<String>(TABLE, b"id")? {
        return Ok(id);
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut tx = Transaction::new();
    tx.put(TABLE, b"id", &id)?;
    store.commit(tx)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn replica_id_is_stable_per_store_and_distinct_across_stores() {
        let (a, b) = (
            novalog_store::MemStore::new(),
            novalog_store::MemStore::new(),
        );
        let first = super::replica_id(&a).unwrap();
        assert_eq!(first, super::replica_id(&a).unwrap());
        assert_ne!(first, super::replica_id(&b).unwrap());
    }
}

/// A shutdown signal that many tasks can wait on.
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// The sending half of [`Shutdown`].
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }
}

impl Shutdown {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger { tx }, Shutdown { rx })
    }

    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes once shutdown has been triggered (or the trigger dropped).
    pub async fn wait(&mut self) {
        let _ = self.rx.wait_for(|v| *v).await;
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn termination_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Text logs to stderr; `RUST_LOG` overrides the level.
pub fn init_tracing() {
    observe::init_logging(observe::LogFormat::Text);
}
