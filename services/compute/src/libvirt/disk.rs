//! Instance disks through `qemu-img`: qcow2 overlays on base files,
//! grown to the flavor's size, and blank ephemeral and swap disks.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("running qemu-img ({0}); is qemu-utils installed? {1}")]
    Spawn(String, std::io::Error),
    #[error("qemu-img {args} failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("qemu-img info of {0}: unreadable output: {1}")]
    Info(PathBuf, String),
}

/// What `qemu-img info` says of a disk.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DiskInfo {
    pub format: String,
    #[serde(rename = "virtual-size")]
    pub virtual_size: u64,
    #[serde(rename = "backing-filename", default)]
    pub backing_filename: Option<String>,
    #[serde(rename = "backing-filename-format", default)]
    pub backing_format: Option<String>,
}

pub const GIB: u64 = 1 << 30;
pub const MIB: u64 = 1 << 20;

async fn qemu_img(args: &[&str]) -> Result<Vec<u8>, DiskError> {
    let shown = args.join(" ");
    let out = tokio::process::Command::new("qemu-img")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| DiskError::Spawn(shown.clone(), e))?;
    if !out.status.success() {
        return Err(DiskError::Failed {
            args: shown,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out.stdout)
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `qemu-img info` of `path` read as `format` (never probed: a raw image
/// whose bytes look like a qcow2 header must not name host files).
pub async fn info(path: &Path, format: &str) -> Result<DiskInfo, DiskError> {
    let out = qemu_img(&["info", "--output=json", "-f", format, &s(path)]).await?;
    serde_json::from_slice(&out).map_err(|e| DiskError::Info(path.to_owned(), e.to_string()))
}

/// Creates `path` as a qcow2 overlay on `base` (of `base_format`).
pub async fn create_overlay(base: &Path, base_format: &str, path: &Path) -> Result<(), DiskError> {
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        &s(base),
        "-F",
        base_format,
        &s(path),
    ])
    .await
    .map(drop)
}

/// Grows the qcow2 disk at `path` to `bytes`.
pub async fn resize(path: &Path, bytes: u64) -> Result<(), DiskError> {
    qemu_img(&["resize", "-q", "-f", "qcow2", &s(path), &bytes.to_string()])
        .await
        .map(drop)
}

/// Creates a blank qcow2 disk of `bytes` at `path`.
pub async fn create_blank(path: &Path, bytes: u64) -> Result<(), DiskError> {
    qemu_img(&["create", "-q", "-f", "qcow2", &s(path), &bytes.to_string()])
        .await
        .map(drop)
}

/// Copies the disk at `path` (of `format`, with whatever it is layered
/// on) into one standalone image of `out_format` at `dest` (Nova's
/// snapshot extraction, `qemu-img convert`).
pub async fn convert(
    path: &Path,
    format: &str,
    out_format: &str,
    dest: &Path,
) -> Result<(), DiskError> {
    qemu_img(&[
        "convert",
        "-q",
        "-f",
        format,
        "-O",
        out_format,
        &s(path),
        &s(dest),
    ])
    .await
    .map(drop)
}

/// Points the qcow2 overlay at `path` to `base` (of `base_format`)
/// without touching its data (`qemu-img rebase -u`): a migrated overlay
/// names the source host's base file, the same bytes live in this host's.
pub async fn rebase(path: &Path, base: &Path, base_format: &str) -> Result<(), DiskError> {
    qemu_img(&[
        "rebase",
        "-u",
        "-f",
        "qcow2",
        "-b",
        &s(base),
        "-F",
        base_format,
        &s(path),
    ])
    .await
    .map(drop)
}
