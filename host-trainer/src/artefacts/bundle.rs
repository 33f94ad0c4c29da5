//! A bundle folder as `export` writes it. The format (manifest, signature, file hashes) is
//! `shared_proto::bundle`, the one the booth checks; this module builds the folder in a staging
//! sibling and moves it into place only once it is complete and passes the booth's own check.

use std::path::{Path, PathBuf};

use shared_proto::bundle::{self, ConsentRecord, DatasetRecord, Manifest, SigningKey};

use super::dataset::{FaceSet, METADATA};
use super::sha256_file;
use crate::error::{AtPath, Error, Result};

/// A bundle being written next to its final place `out`.
pub struct Staging {
    out: PathBuf,
    dir: PathBuf,
}

impl Staging {
    /// Starts a bundle for `out`, which must be new, empty or an earlier bundle.
    pub fn new(out: &Path) -> Result<Self> {
        let holds_other_things = out.is_dir()
            && !out.join(bundle::MANIFEST).is_file()
            && std::fs::read_dir(out).at("read", out)?.next().is_some();
        if holds_other_things {
            return Err(Error::NotABundle(out.to_path_buf()));
        }
        let dir = out.with_extension("export-tmp");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).at("remove", &dir)?;
        }
        std::fs::create_dir_all(dir.join("models")).at("create", &dir)?;
        Ok(Self {
            out: out.to_path_buf(),
            dir,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a file (`models/….onnx`) into the bundle.
    pub fn write(&self, file: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(file);
        std::fs::write(&path, bytes).at("write", &path)
    }

    /// Signs `manifest`, checks the result as a booth would, and puts it in place of `out`:
    /// an earlier bundle is swapped out in one step (never a moment without a bundle), then
    /// removed.
    pub fn seal(self, manifest: &Manifest, key: &SigningKey) -> Result<()> {
        bundle::seal(&self.dir, manifest, key)?;
        bundle::open(&self.dir, &[key.verifying_key()])?;
        for dir in [self.dir.join("models"), self.dir.clone()] {
            for entry in std::fs::read_dir(&dir).at("read", &dir)? {
                let path = entry.at("read", &dir)?.path();
                if path.is_file() {
                    std::fs::File::open(&path)
                        .and_then(|f| f.sync_all())
                        .at("sync", &path)?;
                }
            }
        }
        if self.out.exists() {
            super::exchange(&self.dir, &self.out)?;
            std::fs::remove_dir_all(&self.dir).at("remove", &self.dir)
        } else {
            std::fs::rename(&self.dir, &self.out).at("write", &self.out)?;
            super::sync_parent(&self.out)
        }
    }
}

/// What the manifest records of a dataset: its person, size, journal hash and consent.
pub fn dataset_record(set: &FaceSet) -> DatasetRecord {
    DatasetRecord {
        person: set.person.clone(),
        faces: (set.train.len() + set.held_out.len()) as u32,
        metadata_sha256: sha256_file(&set.root.join(METADATA)).unwrap_or_default(),
        consent: ConsentRecord {
            who: set.consent.who.clone(),
            when: set.consent.when.clone(),
            scope: set.consent.scope.clone(),
        },
    }
}
