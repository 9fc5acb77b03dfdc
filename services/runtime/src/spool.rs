//! The redrive spool: how `novalog-replay dead-letters redrive` reaches an
//! embedded log that a running process holds (RocksDB lets one process
//! write it).
//!
//! `redrive` writes the record to append as one file in
//! `<data-dir>/redrive-spool/` (written aside, then renamed, so a reader
//! never sees half a file); the running process (`novalog`, or any service
//! binary through [`crate::service_main::ServiceMain`], whichever holds the
//! embedded log) looks at the directory
//! every [`POLL`], appends each file's record to its topic and removes the
//! file. Only whoever may write the data directory can redrive, as with the
//! services stopped. A file that does not parse, or names a topic that is
//! not one of the cloud's, is renamed `*.rejected` and logged, never
//! appended. A crash between the append and the removal appends the
//! record again on restart: the same event id, which readers drop.

use std::path::{Path, PathBuf};
use std::time::Duration;

use novalog_log::{EventLog, Record};
use serde::{Deserialize, Serialize};

use crate::{Error, Result, Shutdown, Topics};

/// How often the running process looks at the spool.
pub const POLL: Duration = Duration::from_millis(500);

/// One record to append, as a spool file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spooled {
    pub topic: String,
    /// The record's key and value, hex.
    pub key: String,
    pub value: String,
}

/// The spool of the cloud whose data directory is `data_dir`.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("redrive-spool")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Queues `record` for the running process, as `<name>.redrive`; returns
/// the file.
pub fn enqueue(spool: &Path, name: &str, record: &Record) -> Result<PathBuf> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(Error::Service(format!("not a spool name: {name:?}")));
    }
    let io = |what: &str, path: &Path| {
        let what = format!("{what} {}", path.display());
        move |source| Error::Io { what, source }
    };
    std::fs::create_dir_all(spool).map_err(io("creating", spool))?;
    let entry = Spooled {
        topic: record.topic.clone(),
        key: hex(&record.key),
        value: hex(&record.value),
    };
    let body =
        serde_json::to_vec(&entry).map_err(|e| Error::service("encoding a spool file", e))?;
    let tmp = spool.join(format!("{name}.tmp"));
    let file = spool.join(format!("{name}.redrive"));
    std::fs::write(&tmp, body).map_err(io("writing", &tmp))?;
    std::fs::rename(&tmp, &file).map_err(io("renaming", &tmp))?;
    Ok(file)
}

/// Appends every queued record whose topic is one of `topics`, oldest
/// file first, removing each file once its record is appended; returns how
/// many were appended.
pub async fn drain_once(log: &dyn EventLog, spool: &Path, topics: &Topics) -> Result<usize> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = match std::fs::read_dir(spool) {
        Ok(it) => it
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "redrive"))
            .map(|p| {
                let t = p
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (t, p)
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(Error::Io {
                what: format!("reading {}", spool.display()),
                source,
            });
        }
    };
    files.sort();
    let known = topics.all();
    let mut appended = 0;
    for (_, path) in files {
        let parsed = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Spooled>(&b).ok())
            .and_then(|s| {
                let record = Record::new(s.topic.clone(), unhex(&s.key)?, unhex(&s.value)?);
                known.contains(&s.topic.as_str()).then_some(record)
            });
        match parsed {
            Some(record) => {
                let topic = record.topic.clone();
                log.append(vec![record]).await?;
                std::fs::remove_file(&path).map_err(|source| Error::Io {
                    what: format!("removing {}", path.display()),
                    source,
                })?;
                tracing::info!(file = %path.display(), %topic, "redriven from the spool");
                appended += 1;
            }
            None => {
                tracing::warn!(file = %path.display(),
                    "not a redrive of this cloud (unreadable, or an unknown topic); set aside");
                std::fs::rename(&path, path.with_extension("rejected")).map_err(|source| {
                    Error::Io {
                        what: format!("setting aside {}", path.display()),
                        source,
                    }
                })?;
            }
        }
    }
    Ok(appended)
}

/// Drains the spool every [`POLL`] until `shutdown` (what the process
/// that holds an embedded log runs). A failure is logged and tried again
/// next time.
pub async fn run(
    log: std::sync::Arc<dyn EventLog>,
    spool: PathBuf,
    topics: Topics,
    mut shutdown: Shutdown,
) -> Result<()> {
    loop {
        tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            _ = tokio::time::sleep(POLL) => {}
        }
        if let Err(e) = drain_once(&*log, &spool, &topics).await {
            tracing::warn!(error = %e, spool = %spool.display(), "redrive spool");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_what_is_not_hex() {
        let b = vec![0u8, 1, 0xab, 0xff];
        assert_eq!(unhex(&hex(&b)), Some(b));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn a_spool_name_cannot_leave_the_spool() {
        let d = tempfile::tempdir().unwrap();
        let r = Record::new("novalog.intents", b"k".to_vec(), b"v".to_vec());
        assert!(enqueue(d.path(), "../x", &r).is_err());
        assert!(enqueue(d.path(), "", &r).is_err());
        let f = enqueue(d.path(), "5f1c-01", &r).unwrap();
        assert_eq!(f, d.path().join("5f1c-01.redrive"));
    }
}
