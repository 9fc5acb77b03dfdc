//! `novalog-replay`: the log read back as the truth (DESIGN §9 "Audit").
//!
//! Every subcommand of the binary is a function here that takes a
//! [`Source`] (the log, read-only) and writes to a `Write`, so the
//! end-to-end tests call the same code on both log backends.
//!
//! # Layout
//! - [`source`]: reading the log — an embedded log on disk through a
//!   read-only RocksDB secondary, or any [`novalog_log::EventLog`] (Kafka).
//! - [`records`]: a decoded record and its one-line and JSON forms.
//! - [`history`]: every record of a server, a request or a project.
//! - [`index`] and [`state_at`]: per-instance record index; the server at
//!   an instant, folded by the shared `evolve` and shown by the API's view.
//! - [`rebuild`]: fold the log into a fresh projection store with a
//!   service's own handler; `diff` two stores; `verify` against the live one.
//! - [`check`]: envelope invariants over the whole history; [`invariants`]:
//!   the domain ones (usage, claims, quotas), pure.
//! - [`export`]: JSON lines / CSV, and `tail`.
//! - [`dead_letters`]: list, show and redrive; [`spool`] (novalog-runtime's,
//!   drained by every process that holds an embedded log): how a redrive
//!   reaches an embedded log a running process holds.

pub mod check;
pub mod dead_letters;
pub mod export;
pub mod history;
pub mod index;
pub mod invariants;
pub mod rebuild;
pub mod records;
pub mod source;
pub mod state_at;

pub use novalog_runtime::spool;
pub use source::Source;

/// What went wrong. [`Error::BadInput`] is the operator's (exit 2); a
/// [`Error::Failed`] check or verify exits 1.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Unknown id, time before the log, unknown topic, unreadable directory.
    #[error("{0}")]
    BadInput(String),
    /// The log or a store said something other than "no".
    #[error("{0}")]
    Io(String),
}

impl From<novalog_log::Error> for Error {
    fn from(e: novalog_log::Error) -> Self {
        match e {
            novalog_log::Error::UnknownTopic(t) => Error::BadInput(format!("unknown topic {t}")),
            e => Error::Io(e.to_string()),
        }
    }
}

impl From<novalog_store::Error> for Error {
    fn from(e: novalog_store::Error) -> Self {
        Error::Io(e.to_string())
    }
}

impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        Error::Io(e.into_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Reports progress of a long pass (a progress bar in the binary).
pub trait Progress: Send + Sync {
    fn set_total(&self, _total: u64) {}
    fn advance(&self, _n: u64) {}
}

/// No progress reporting.
pub struct Silent;
impl Progress for Silent {}

/// Parses an RFC 3339 time to milliseconds since the epoch.
pub fn parse_time(s: &str) -> Result<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| Error::BadInput(format!("not an RFC 3339 time: {s:?} ({e})")))
}

/// Milliseconds since the epoch as RFC 3339 (UTC, milliseconds).
pub fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}
