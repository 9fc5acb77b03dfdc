//! The runtime's error: what stops a consumer loop or a service's start.
//! Binaries report it through `anyhow`; libraries match on it.

use crate::config::ConfigError;

/// Why a service could not start or its consumer loop stopped. A record
/// that fails is never one of these: it is dead-lettered and the loop goes
/// on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("event log: {0}")]
    Log(#[from] novalog_log::Error),
    #[error("store: {0}")]
    Store(#[from] novalog_store::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `what` failed on the file system (creating a data directory,
    /// binding a listener).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A topic's retention would delete history (the message says which
    /// and how to fix it).
    #[error("{0}")]
    Retention(String),
    /// A service's own failure, in its words (an unknown driver or filter
    /// name, a task that panicked, a handler's batch that failed).
    #[error("{0}")]
    Service(String),
}

impl Error {
    /// A service's failure at `what`, caused by `cause`.
    pub fn service(what: impl std::fmt::Display, cause: impl std::fmt::Display) -> Self {
        Error::Service(format!("{what}: {cause}"))
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Self {
        Error::io("i/o", source)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
