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

/// Hex sha256 of a file's bytes, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).at("read", path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).at("read", path)?;
    Ok(hex::encode(hasher.finalize()))
}
