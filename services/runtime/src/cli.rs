//! The flags every Novalog binary shares: its config file, its log
//! format, `--check-config`.

use std::path::PathBuf;

use crate::Config;
use crate::observe::LogFormat;

/// Printed under every binary's `--help`.
pub const CONFIG_HELP: &str = "\
Configuration: built-in defaults, then the TOML file given by --config (or \
NOVALOG_CONFIG), then NOVALOG_<SECTION>__<OPTION> environment variables \
(e.g. NOVALOG_LOG__BACKEND=kafka, NOVALOG_API__LISTEN=0.0.0.0:8774). A key \
the file does not know is an error. `novalog config-defaults` prints every \
option with its default and what it does. RUST_LOG sets the log level \
(default info).

Every service serves Prometheus metrics at /metrics, liveness at /healthz \
and readiness at /readyz (200 once its consumers have caught up with the \
log): the API on its listener, the others on [metrics] listen.";

#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// TOML configuration file.
    #[arg(long, env = "NOVALOG_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log lines as text or as one JSON object per line (with the request
    /// id and event id of the record being handled).
    #[arg(long, value_enum, env = "NOVALOG_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Load and validate the configuration, say so, and exit (status 1 and
    /// the reason when it is invalid).
    #[arg(long)]
    pub check_config: bool,
}

impl CommonArgs {
    /// Tunes the allocator, starts logging and loads the configuration.
    pub fn init(&self) -> crate::Result<Config> {
        crate::memory::tune_allocator();
        crate::observe::init_logging(self.log_format);
        Ok(Config::load(self.config.as_deref())?)
    }

    /// What `--check-config` prints once `cfg` loaded and validated.
    pub fn report_valid(&self, cfg: &Config) {
        let source = match &self.config {
            Some(p) => p.display().to_string(),
            None => "defaults and environment (no file)".to_owned(),
        };
        println!(
            "configuration OK: {source} (log backend {:?}, data_dir {})",
            cfg.log.backend,
            cfg.data_dir.display()
        );
    }
}
