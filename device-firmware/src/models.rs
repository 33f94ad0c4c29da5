//! The bundle the booth serves: checked completely (signature by a trusted key, format version,
//! every file's sha256) before any model is built, and swapped in atomically. A bundle that
//! fails any check is refused with one log line and the previous one keeps serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use facekit::swap::OnnxSwapper;
use facekit::OnnxModel;
use shared_proto::bundle::{self, Manifest, ModelKind};
use shared_proto::FaceCropSpec;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("trusted_keys is empty: the booth accepts no bundle; add the host's public key (`host-trainer keys`)")]
    NoTrustedKeys,
    /// The cause is in the message: the booth logs errors with their `Display`.
    #[error("trusted key {key:?}: {cause}")]
    BadKey {
        key: String,
        cause: bundle::KeyError,
    },
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
    #[error("{file}: {source}")]
    Model {
        file: String,
        source: facekit::FacekitError,
    },
    #[error("bundle has no swap model into {0:?}; the bundle's people are {1:?}")]
    NoSuchPerson(String, Vec<String>),
}

/// A verified bundle with its models built for batch 1.
pub struct LoadedBundle {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Shown on screen: preset, training steps, signer.
    pub version: String,
    /// Person swapped in, and the model that does it.
    pub swap: Option<(String, OnnxSwapper)>,
    pub detector: Option<(OnnxModel, FaceCropSpec)>,
}

impl LoadedBundle {
    pub fn crop(&self) -> &FaceCropSpec {
        &self.manifest.crop
    }
}

pub fn load(
    dir: &Path,
    trusted: &[String],
    swap_to: Option<&str>,
) -> Result<LoadedBundle, ModelError> {
    if trusted.is_empty() {
        return Err(ModelError::NoTrustedKeys);
    }
    let keys = trusted
        .iter()
        .map(|k| {
            bundle::parse_public_key(k).map_err(|cause| ModelError::BadKey {
                key: k.clone(),
                cause,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let verified = bundle::open(dir, &keys)?;
    let signer = verified.signer_hex();
    let manifest = verified.manifest.clone();
    // The models are built from the bytes the check read, never from the files again.
    let build = |file: &str| {
        let shown = dir.join(file).display().to_string();
        let bytes = verified.file(file).ok_or_else(|| ModelError::Model {
            file: shown.clone(),
            source: facekit::FacekitError::Inference("not among the verified files".into()),
        })?;
        OnnxModel::from_bytes(&shown, bytes, 1, true).map_err(|source| ModelError::Model {
            file: shown,
            source,
        })
    };
    let swaps: Vec<_> = manifest
        .models
        .iter()
        .filter(|m| m.kind == ModelKind::Swap)
        .collect();
    let entry = match swap_to {
        Some(person) => Some(
            swaps
                .iter()
                .find(|m| m.to.as_deref() == Some(person))
                .ok_or_else(|| {
                    ModelError::NoSuchPerson(
                        person.into(),
                        swaps.iter().filter_map(|m| m.to.clone()).collect(),
                    )
                })?,
        ),
        None => swaps.first(),
    };
    let swap = match entry {
        Some(m) => Some((
            m.to.clone().unwrap_or_default(),
            OnnxSwapper::new(build(&m.file)?, manifest.crop.clone()),
        )),
        None => None,
    };
    let detector = match manifest.model(ModelKind::Detector, None) {
        Some(m) => Some((
            build(&m.file)?,
            m.crop.clone().unwrap_or_else(|| manifest.crop.clone()),
        )),
        None => None,
    };
    let version = format!(
        "{} {}st {}",
        manifest.provenance.preset,
        manifest.provenance.steps,
        &signer[..8]
    );
    Ok(LoadedBundle {
        dir: dir.to_path_buf(),
        manifest,
        version,
        swap,
        detector,
    })
}

/// The bundle in service, replaced only by one that loads completely.
#[derive(Clone, Default)]
pub struct ModelSlot(Arc<RwLock<Option<Arc<LoadedBundle>>>>);

impl ModelSlot {
    pub fn current(&self) -> Option<Arc<LoadedBundle>> {
        // A panic elsewhere cannot leave the slot half-written: it holds one Arc.
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Loads `dir`; on success it serves from now on, on failure the old bundle stays.
    pub fn reload(
        &self,
        dir: &Path,
        trusted: &[String],
        swap_to: Option<&str>,
    ) -> Result<(), ModelError> {
        match load(dir, trusted, swap_to) {
            Ok(b) => {
                tracing::info!("serving bundle {} ({})", dir.display(), b.version);
                *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(b));
                Ok(())
            }
            Err(e) => {
                match self.current() {
                    Some(old) => tracing::error!(
                        "bundle {} refused: {e}; still serving {}",
                        dir.display(),
                        old.version
                    ),
                    None => tracing::error!(
                        "bundle {} refused: {e}; serving detection only",
                        dir.display()
                    ),
                }
                Err(e)
            }
        }
    }
}
