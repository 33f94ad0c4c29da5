//! The folders the stages hand to each other, one module per folder, each owning its layout and
//! its typed reading and writing (as faceswap's `alignments.py` owns its file):
//!
//! | folder | written by | read by | module |
//! |---|---|---|---|
//! | dataset (`datasets/A/`) | `extract` | `train`, `eval`, `train-detector`, `eval-detector`, `export` | [`dataset`] |
//! | run (`runs/ab/`) | `train`, `eval` (`eval.json`) | `eval`, `convert`, `train-detector`, `export` | [`run`], its `config.toml`: [`train_config`] |
//! | fake detector (`detector/`) | `train-detector` | `eval-detector`, `export` | [`fake_detector`] |
//! | signing keys (`~/.config/doppel/keys/`) | `keys`, `export` | `export`, `verify` | [`keys`] |
//! | bundle (`bundle/`) | `export` | `verify`, `inspect`, `detect`, the booth | [`bundle`] (format: `shared_proto::bundle`) |
//!
//! Stages never reach into each other; what one stage needs of another's work it reads here.

pub mod bundle;
pub mod dataset;
pub mod fake_detector;
pub mod keys;
pub mod run;
pub mod train_config;

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{AtPath, Result};

/// Reads and parses a TOML file: the one loader for every TOML doppel's host reads.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).at("read", path)?;
    toml::from_str(&text).at("parse", path)
}

/// Writes `value` as TOML under a `# comment` header line.
pub fn write_toml<T: Serialize>(path: &Path, comment: &str, value: &T) -> Result<()> {
    let body = toml::to_string(value).at("serialise", path)?;
    std::fs::write(path, format!("# {comment}\n{body}")).at("write", path)
}

/// Writes `value` as pretty JSON.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).at("serialise", path)?;
    std::fs::write(path, text).at("write", path)
}

/// Reads and parses a JSON file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).at("read", path)?;
    serde_json::from_str(&text).at("parse", path)
}

/// Reads a number that JSON may hold as `null`: serde_json writes NaN (an AUC without both
/// classes, a PSNR that failed) as `null`, and it must read back as NaN, not fail.
pub(crate) fn nan_if_null<'de, D, F>(d: D) -> std::result::Result<F, D::Error>
where
    D: serde::Deserializer<'de>,
    F: Deserialize<'de> + From<f32>,
{
    Ok(Option::<F>::deserialize(d)?.unwrap_or_else(|| F::from(f32::NAN)))
}

/// Makes a finished `tmp` file durable as `path`: its bytes reach the disk before the rename
/// makes it visible, and the rename itself is synced with the folder, so a power cut leaves the
/// old file or the new one, never an empty or half-written one.
pub fn commit_file(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .at("sync", tmp)?;
    std::fs::rename(tmp, path).at("write", path)?;
    sync_parent(path)
}

/// Syncs the folder holding `path` (where a rename is recorded).
pub fn sync_parent(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .at("sync", dir)
}

/// Swaps two existing folders in one step (Linux `renameat2(RENAME_EXCHANGE)`): whoever looks
/// at either path sees the old folder or the new one, never neither.
pub fn exchange(a: &Path, b: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes());
    let (ca, cb) = (c(a).at("exchange", a)?, c(b).at("exchange", b)?);
    // SAFETY: two valid NUL-terminated paths relative to the current folder.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).at("exchange", b);
    }
    sync_parent(b)
}

/// Hex sha256 of a file's bytes, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).at("read", path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).at("read", path)?;
    Ok(hex::encode(hasher.finalize()))
}
