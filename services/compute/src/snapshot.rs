//! What every driver's snapshot and console share: where a snapshot's
//! bytes go (the image service's store, as an upload puts them) with the
//! size and digests the image then carries, and how a console log is cut
//! to the lines asked for (Nova's `_tail_log`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::Md5;
use sha2::{Digest, Sha512};
use uuid::Uuid;

use crate::driver::DriverError;

/// A snapshot's stored bytes: their size and Glance's digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub size: u64,
    /// MD5, hex (Glance's `checksum`).
    pub checksum: String,
    /// SHA-512, hex (Glance's `os_hash_value`).
    pub os_hash_value: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Size and digests of everything `reader` yields.
pub fn digest(mut reader: impl Read) -> std::io::Result<Stored> {
    let (mut md5, mut sha512) = (Md5::new(), Sha512::new());
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        sha512.update(&buf[..n]);
        size += n as u64;
    }
    Ok(Stored {
        size,
        checksum: hex(&md5.finalize()),
        os_hash_value: hex(&sha512.finalize()),
    })
}

/// The image service's store (`<data_dir>/images/<id>`): a snapshot is
/// written beside its final name and moved there once complete, so the
/// image's bytes appear whole or not at all.
#[derive(Debug, Clone)]
pub struct ImageStore(pub PathBuf);

impl ImageStore {
    /// Where a driver writes the snapshot of image `id` before it is
    /// stored.
    pub fn staging(&self, id: Uuid) -> PathBuf {
        self.0.join(format!(".{id}.snapshot"))
    }

    /// Stores what the driver wrote at [`ImageStore::staging`] as image
    /// `id`'s bytes; afterwards they are in place and the staging file is
    /// gone. On error nothing of either is left.
    pub fn commit(&self, id: Uuid) -> Result<Stored, DriverError> {
        let staging = self.staging(id);
        let result = (|| {
            let stored = digest(std::fs::File::open(&staging)?)?;
            std::fs::rename(&staging, self.0.join(id.to_string()))?;
            Ok::<_, std::io::Error>(stored)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&staging);
        }
        result.map_err(|e| DriverError::Failed(format!("storing snapshot {id}: {e}")))
    }

    /// Writes `bytes` as image `id`'s (a driver whose snapshot is made in
    /// memory).
    pub fn put(&self, id: Uuid, bytes: &[u8]) -> Result<Stored, DriverError> {
        std::fs::create_dir_all(&self.0)
            .and_then(|()| std::fs::File::create(self.staging(id)))
            .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
            .map_err(|e| DriverError::Failed(format!("writing snapshot {id}: {e}")))?;
        self.commit(id)
    }

    /// The bytes of image `id`, if the store has them.
    pub fn read(&self, id: Uuid) -> Option<Vec<u8>> {
        std::fs::read(self.0.join(id.to_string())).ok()
    }

    pub fn dir(&self) -> &Path {
        &self.0
    }
}

/// The console output Nova's compute manager returns: the log's last
/// `length` lines (`None`: all; 0: nothing; a negative `-n` drops the
/// first `n` lines, as Python's `lines[-length:]` does), its bytes read as
/// ASCII with anything else replaced.
pub fn tail(log: &[u8], length: Option<i64>) -> String {
    let cut: Vec<u8> = match length {
        None => log.to_vec(),
        Some(0) => Vec::new(),
        Some(n) => {
            let lines: Vec<&[u8]> = log.split(|b| *b == b'\n').collect();
            let len = lines.len() as i64;
            // Python's `lines[-n:]`.
            let start = if n > 0 {
                (len - n).max(0)
            } else {
                (-n).min(len)
            };
            lines[start as usize..].join(&b'\n')
        }
    };
    cut.iter()
        .map(|b| if b.is_ascii() { *b as char } else { '\u{fffd}' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_cuts_as_nova_does() {
        let log = b"one\ntwo\nthree\n";
        assert_eq!(tail(log, None), "one\ntwo\nthree\n");
        assert_eq!(tail(log, Some(0)), "");
        // The trailing newline makes an empty last line, as in Nova.
        assert_eq!(tail(log, Some(1)), "");
        assert_eq!(tail(log, Some(2)), "three\n");
        assert_eq!(tail(log, Some(100)), "one\ntwo\nthree\n");
        assert_eq!(tail(log, Some(-1)), "two\nthree\n");
        assert_eq!(tail(log, Some(-100)), "");
        assert_eq!(tail("é\n".as_bytes(), None), "\u{fffd}\u{fffd}\n");
    }

    #[test]
    fn a_snapshot_is_stored_whole_with_its_digests() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore(dir.path().join("images"));
        let id = Uuid::new_v4();
        let stored = store.put(id, b"disk bytes").unwrap();
        assert_eq!(stored.size, 10);
        assert_eq!(stored.checksum, hex(&Md5::digest(b"disk bytes")));
        assert_eq!(store.read(id).unwrap(), b"disk bytes");
        assert!(!store.staging(id).exists());
        // Nothing staged: nothing stored, and an error.
        assert!(store.commit(Uuid::new_v4()).is_err());
    }
}
