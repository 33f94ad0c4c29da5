//! The bundle the booth serves: checked completely (signature by a trusted key, format version,
//! every file's sha256) before any model is built, and swapped in atomically. A bundle that
//! fails any check is refused with one log line and the previous one keeps serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use facekit::forensics::Cues;
use facekit::swap::OnnxSwapper;
use facekit::visitor::VisitorPolicy;
use facekit::OnnxFakeDetector;
use facekit::OnnxModel;
use shared_proto::bundle::{self, Manifest, ModelEntry, ModelKind};
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

/// Why a bundle's models failed on the synthetic test face.
#[derive(Debug, thiserror::Error)]
pub enum SelfTestError {
    #[error("{model}: {source}")]
    Failed {
        model: String,
        source: facekit::FacekitError,
    },
}

/// A verified bundle with its models built for batch 1.
pub struct LoadedBundle {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Shown on screen: preset, training steps, signer.
    pub version: String,
    /// Person swapped in, and the model that does it.
    pub swap: Option<(String, OnnxSwapper)>,
    pub detector: Option<LoadedDetector>,
}

/// The bundle's deepfake detector: its network with the crop it reads, and the blur check that
/// joins the network's score at the network's own threshold (as `host-trainer detect` does).
pub struct LoadedDetector {
    pub network: OnnxFakeDetector,
    /// The bundle's entry: its blur check and the threshold it joins at.
    pub entry: ModelEntry,
}

impl LoadedDetector {
    /// The face's fake score: the network's `network` score with the blur check.
    pub fn score(&self, network: f32, cues: &Cues) -> f32 {
        self.entry.fake_score(network, cues.over_blur)
    }
}

impl LoadedBundle {
    pub fn crop(&self) -> &FaceCropSpec {
        &self.manifest.crop
    }

    /// Runs every model once on a synthetic face (a smooth gradient at the bundle's crop size)
    /// and checks the outputs are finite: a model gone bad (NaN weights, a broken graph) is
    /// caught at activation, before any visitor sees it and whether or not a face is in view.
    pub fn self_test(&self) -> Result<(), SelfTestError> {
        let face = |size: u32| {
            image::RgbImage::from_fn(size, size, |x, y| {
                let v = |a: u32| (64 + a * 128 / size.max(1)) as u8;
                image::Rgb([v(x), v(y), v((x + y) / 2)])
            })
        };
        if let Some((person, swapper)) = &self.swap {
            swapper
                .swap_as_trained(&face(self.crop().size))
                .map_err(|source| SelfTestError::Failed {
                    model: format!("swap model into {person}"),
                    source,
                })?;
        }
        if let Some(LoadedDetector { network, .. }) = &self.detector {
            network
                .score(&face(network.crop().size))
                .map_err(|source| SelfTestError::Failed {
                    model: "fake detector".into(),
                    source,
                })?;
        }
        Ok(())
    }
}

/// The booth's trusted keys from their hex text.
pub fn trusted_keys(trusted: &[String]) -> Result<Vec<bundle::VerifyingKey>, ModelError> {
    if trusted.is_empty() {
        return Err(ModelError::NoTrustedKeys);
    }
    trusted
        .iter()
        .map(|k| {
            bundle::parse_public_key(k).map_err(|cause| ModelError::BadKey {
                key: k.clone(),
                cause,
            })
        })
        .collect()
}

/// Checks the bundle in `dir` and builds its models.
pub fn load(
    dir: &Path,
    trusted: &[String],
    swap_to: Option<&str>,
) -> Result<LoadedBundle, ModelError> {
    let keys = trusted_keys(trusted)?;
    let verified = bundle::open(dir, &keys)?;
    build(dir, &verified, swap_to)
}

/// Builds the models of a bundle checked by [`bundle::open`], from the bytes the check read.
pub fn build(
    dir: &Path,
    verified: &bundle::VerifiedBundle,
    swap_to: Option<&str>,
) -> Result<LoadedBundle, ModelError> {
    let signer = verified.signer_hex();
    let manifest = verified.manifest.clone();
    // The models are built from the bytes the check read, never from the files again.
    let model_from = |file: &str| {
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
        Some(m) => {
            // The bundle's measured distance lets a newcomer who steps into the last visitor's
            // place be told apart by their face alone.
            let policy = VisitorPolicy {
                switch_distance: m.visitor_switch_distance,
                ..VisitorPolicy::default()
            };
            let swapper = OnnxSwapper::with_visitors(
                model_from(&m.file)?,
                manifest.crop.clone(),
                Some(policy),
            );
            if !swapper.follows_visitors() {
                // A bundle from before identity offsets: strangers keep much of their own face.
                tracing::warn!(
                    "swap model {} cannot follow visitors (re-export it with a newer host-trainer): it swaps well only the person it was trained on",
                    m.name
                );
            }
            Some((m.to.clone().unwrap_or_default(), swapper))
        }
        None => None,
    };
    let detector = match manifest.model(ModelKind::Detector, None) {
        Some(m) => Some(LoadedDetector {
            network: OnnxFakeDetector::new(
                model_from(&m.file)?,
                m.crop.clone().unwrap_or_else(|| manifest.crop.clone()),
            ),
            entry: m.clone(),
        }),
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

    /// Serves `bundle` from the next frame on (`None`: faces only).
    pub fn set(&self, bundle: Option<LoadedBundle>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = bundle.map(Arc::new);
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
