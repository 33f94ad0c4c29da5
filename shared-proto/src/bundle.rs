//! The model bundle `host-trainer export` writes and the device loads: a directory of ONNX
//! files plus a postcard manifest that lists every file's sha256 and is signed with ed25519.
//!
//! Writing ([`seal`]) and checking ([`open`]) live side by side so the host and the device can
//! never disagree on what is signed: the signature covers the exact bytes of `manifest.bin`, and
//! the manifest covers every other file by hash and size.

use std::path::{Component, Path, PathBuf};

use ed25519_dalek::{Signature, Signer, Verifier};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{decode, encode, BlurCheck, FaceCropSpec, ProtoError};

pub const MANIFEST: &str = "manifest.bin";
pub const SIGNATURE: &str = "manifest.sig";
pub const MANIFEST_KIND: &str = "bundle-manifest";
/// Swap model input added to the code before the decoder: zeros swap the person the model was
/// trained on; a booth feeds minus the mean [`IDENTITY_OFFSET`] of its visitor's faces.
pub const VISITOR_OFFSET: &str = "visitor_offset";
/// Swap model output: each face's code less the trained source person's mean code.
pub const IDENTITY_OFFSET: &str = "identity_offset";

/// Sustained f32 inference throughput assumed per board, all four cores, to predict latency from
/// a model's FLOPs. Basis: MobileNetV2-class CNNs (~0.6 GFLOP) run in ~70 ms on a Pi 4 and ~25 ms
/// on a Pi 5 with 4 threads in mature CPU runtimes. Estimates, not measurements.
pub const BOARDS: [(&str, f64); 2] = [
    ("Raspberry Pi 4 (4x Cortex-A72 1.8 GHz)", 8.0),
    ("Raspberry Pi 5 (4x Cortex-A76 2.4 GHz)", 24.0),
];

/// One core of a board, for whole-frame estimates from per-operator costs measured on another
/// machine (the booth benchmark): compute-bound operators are scaled by the ratio of f32 peaks
/// (the same share of peak assumed), everything else (pixel loops, JPEG, data movement) by a
/// scalar slowdown against a current x86 server core. Estimates, not measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoardCore {
    pub name: &'static str,
    /// f32 peak of one core: clock × 2 NEON pipes × 4 lanes × 2 (FMA).
    pub peak_gflops: f64,
    /// How many times longer scalar code takes than on the x86 core the benchmark ran on
    /// (single-core scores of public CPU benchmarks: Pi 5 about ½, Pi 4 about ⅕ of such a core).
    pub scalar_slowdown: f64,
}

pub const BOARD_CORES: [BoardCore; 2] = [
    BoardCore {
        name: "Raspberry Pi 4 (Cortex-A72 1.8 GHz)",
        peak_gflops: 28.8,
        scalar_slowdown: 5.0,
    },
    BoardCore {
        name: "Raspberry Pi 5 (Cortex-A76 2.4 GHz)",
        peak_gflops: 38.4,
        scalar_slowdown: 2.2,
    },
];

/// Predicted latency of a `mflops` model on every board of [`BOARDS`].
pub fn predict_latency(mflops: f64) -> Vec<LatencyEstimate> {
    BOARDS
        .iter()
        .map(|&(device, gflops)| LatencyEstimate {
            device: device.to_owned(),
            assumed_gflops: gflops,
            // MFLOP / (GFLOP/s) = ms.
            ms: mflops / gflops,
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelKind {
    /// Face in, the other person's face (RGB) and a blend mask out.
    Swap,
    /// Face in, probability that it is fake out.
    Detector,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precision {
    F32,
    /// Per-channel symmetric int8 weights and calibrated int8 activations, as ONNX
    /// QuantizeLinear/DequantizeLinear pairs around float operators.
    Int8Qdq,
}

/// A named graph input or output. `-1` in `shape` is the batch dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<i64>,
    pub meaning: String,
}

/// Latency predicted from the FLOP count and an assumed sustained throughput.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyEstimate {
    pub device: String,
    pub assumed_gflops: f64,
    pub ms: f64,
}

/// How far the int8 model is from its f32 original on held-out faces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantReport {
    pub f32_bytes: u64,
    pub int8_bytes: u64,
    pub max_abs_error: f32,
    pub mean_abs_error: f32,
    pub psnr_db: f64,
    pub calibration: String,
    pub faces: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    pub name: String,
    pub kind: ModelKind,
    pub precision: Precision,
    /// Path of the ONNX file inside the bundle.
    pub file: String,
    pub preset: String,
    /// For swap models: whose face goes in and whose comes out.
    pub from: Option<String>,
    pub to: Option<String>,
    /// The crop this model expects when it differs from the bundle's (detectors see a margin).
    pub crop: Option<FaceCropSpec>,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    pub params: u64,
    pub mflops: f64,
    pub latency: Vec<LatencyEstimate>,
    pub int8: Option<QuantReport>,
    /// Detectors: the score at or above which a face is called fake, calibrated on frames the
    /// detector was not trained on. Devices and `host-trainer detect` use it unless told otherwise.
    pub threshold: Option<f32>,
    /// Detectors: the blur check fitted on the same real faces, combined with the network's
    /// score ([`BlurCheck::score`]) before any threshold is applied.
    pub blur_check: Option<BlurCheck>,
    /// Swap models with an `identity_offset` output: a face whose offset lies farther than
    /// this from the visitor's mean is someone else's. Measured at export on the trained
    /// people's faces, between the spread of one person's faces about their own mean and
    /// their distance from the other's; `None` when the encoder does not keep them apart.
    pub visitor_switch_distance: Option<f32>,
}

impl ModelEntry {
    /// A swap model turning `from`'s face into `to`'s, stored at `file`: f32, with shapes, cost
    /// and calibration unknown until the exporter fills them in.
    pub fn swap(name: impl Into<String>, file: impl Into<String>, from: &str, to: &str) -> Self {
        Self {
            from: Some(from.into()),
            to: Some(to.into()),
            ..Self::bare(name.into(), ModelKind::Swap, file.into())
        }
    }

    /// A deepfake detector stored at `file`, otherwise as [`ModelEntry::swap`].
    pub fn detector(name: impl Into<String>, file: impl Into<String>) -> Self {
        Self::bare(name.into(), ModelKind::Detector, file.into())
    }

    /// A detector's fake score of a face, as host and booth both give it: the network's
    /// `network` score with this entry's blur check (when it has one), which joins at the
    /// entry's calibrated threshold.
    pub fn fake_score(&self, network: f32, over_blur: f32) -> f32 {
        let anchor = self.threshold.unwrap_or(DEFAULT_FAKE_THRESHOLD);
        self.blur_check
            .map_or(network, |c| c.score(network, over_blur, anchor))
    }

    fn bare(name: String, kind: ModelKind, file: String) -> Self {
        Self {
            name,
            kind,
            precision: Precision::F32,
            file,
            preset: String::new(),
            from: None,
            to: None,
            crop: None,
            inputs: vec![],
            outputs: vec![],
            params: 0,
            mflops: 0.0,
            latency: vec![],
            int8: None,
            threshold: None,
            blur_check: None,
            visitor_switch_distance: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub who: String,
    pub when: String,
    pub scope: String,
}

/// One identity dataset a model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    pub person: String,
    pub faces: u32,
    /// sha256 of the dataset's `metadata.jsonl`, which names every accepted crop.
    pub metadata_sha256: String,
    pub consent: ConsentRecord,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub run: String,
    pub preset: String,
    pub steps: i64,
    pub datasets: Vec<DatasetRecord>,
    pub metrics: Vec<Metric>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Rises with every bundle a host exports (seconds since 1970 unless given): a booth refuses
    /// a bundle older than the newest it has accepted, so a withdrawn model (or consent) cannot
    /// be brought back by replaying an old signed bundle.
    pub serial: u64,
    pub producer: String,
    pub created: String,
    /// The crop every model in the bundle expects: size, template, normalisation.
    pub crop: FaceCropSpec,
    pub models: Vec<ModelEntry>,
    pub provenance: Provenance,
    /// Every file of the bundle except the manifest and its signature.
    pub files: Vec<FileEntry>,
}

impl Manifest {
    pub fn model(&self, kind: ModelKind, to: Option<&str>) -> Option<&ModelEntry> {
        self.models
            .iter()
            .find(|m| m.kind == kind && (to.is_none() || m.to.as_deref() == to))
    }

    /// Whether every value a booth computes with is in range: crops ([`FaceCropSpec::validate`]),
    /// thresholds in 0..1, and each model's declared tensor shapes matching its crop (batch
    /// dimension free). A signed manifest can still be wrong: a host bug or a leaked key.
    pub fn validate(&self) -> Result<(), InvalidManifest> {
        let bad = |what: String| Err(InvalidManifest(what));
        if let Err(e) = self.crop.validate() {
            return bad(format!("bundle crop: {e}"));
        }
        for m in &self.models {
            let crop = m.crop.as_ref().unwrap_or(&self.crop);
            if let Err(e) = crop.validate() {
                return bad(format!("{}: crop: {e}", m.name));
            }
            if let Some(t) = m.threshold {
                if !(0.0..=1.0).contains(&t) {
                    return bad(format!("{}: threshold {t} outside 0..1", m.name));
                }
            }
            if m.blur_check.is_some_and(|c| !c.is_valid()) {
                return bad(format!(
                    "{}: blur check {:?} is not finite",
                    m.name, m.blur_check
                ));
            }
            if let Some(d) = m.visitor_switch_distance {
                if !(d.is_finite() && d > 0.0) {
                    return bad(format!(
                        "{}: visitor switch distance {d} is not a positive number",
                        m.name
                    ));
                }
            }
            let s = crop.size as i64;
            let image = vec![-1, 3, s, s];
            // A swap model that shifts identities takes the visitor's offset (a code-shaped
            // tensor, batch 1) and reports each face's (the same shape, any batch).
            let code = match (m.kind, &m.inputs[..]) {
                (ModelKind::Swap, [_, offset]) if offset.name == VISITOR_OFFSET => {
                    let plausible = offset.shape.first() == Some(&1)
                        && offset.shape.iter().all(|d| (1..=1 << 20).contains(d));
                    if !plausible {
                        return bad(format!(
                            "{}: input {} has shape {:?}, a code at batch 1 has positive sizes",
                            m.name, offset.name, offset.shape
                        ));
                    }
                    Some(offset.shape.clone())
                }
                _ => None,
            };
            let want_in: Vec<Vec<i64>> =
                std::iter::once(image.clone()).chain(code.clone()).collect();
            if !m.inputs.is_empty() && m.inputs.iter().map(|t| &t.shape).ne(want_in.iter()) {
                return bad(format!(
                    "{}: inputs {:?}, its crop needs {want_in:?}",
                    m.name,
                    m.inputs.iter().map(|t| &t.shape).collect::<Vec<_>>()
                ));
            }
            let want_out: Vec<Vec<i64>> = match m.kind {
                ModelKind::Swap => {
                    let offset = code.map(|mut c| {
                        c[0] = -1;
                        c
                    });
                    [vec![-1, 3, s, s], vec![-1, 1, s, s]]
                        .into_iter()
                        .chain(offset)
                        .collect()
                }
                ModelKind::Detector => vec![vec![-1, 1]],
            };
            if !m.outputs.is_empty() && m.outputs.iter().map(|t| &t.shape).ne(want_out.iter()) {
                return bad(format!(
                    "{}: outputs {:?}, a {:?} model has {want_out:?}",
                    m.name,
                    m.outputs.iter().map(|t| &t.shape).collect::<Vec<_>>(),
                    m.kind
                ));
            }
        }
        Ok(())
    }

    /// The score at or above which the detector's verdict is FAKE: its calibrated threshold,
    /// or [`DEFAULT_FAKE_THRESHOLD`] when the manifest records none.
    pub fn fake_threshold(&self) -> f32 {
        self.model(ModelKind::Detector, None)
            .and_then(|m| m.threshold)
            .unwrap_or(DEFAULT_FAKE_THRESHOLD)
    }
}

/// A signed manifest with a value no booth can use (which, and why).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidManifest(pub String);

/// Verdict threshold for a detector that records no calibrated one.
pub const DEFAULT_FAKE_THRESHOLD: f32 = 0.5;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: missing; the bundle is incomplete, export it again")]
    Missing(String),
    #[error("{path}: not a doppel signature file ({detail})")]
    BadSignatureFile { path: String, detail: String },
    #[error("{0}: signature does not match the manifest; the bundle was modified after signing")]
    SignatureMismatch(String),
    #[error("bundle signed by key {signer}, which is not a trusted key; add it to the trusted keys only if you made this bundle")]
    UntrustedSigner { signer: String },
    #[error("{path}: {source}")]
    Manifest { path: String, source: ProtoError },
    #[error("{path}: {detail}; the file was modified or truncated, export the bundle again")]
    FileMismatch { path: String, detail: String },
    #[error("manifest names {0:?}, which is outside the bundle")]
    UnsafePath(String),
    #[error("{path}: signed, but unusable: {problem}")]
    Invalid {
        path: String,
        problem: InvalidManifest,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BundleError + '_ {
    move |source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            BundleError::Missing(path.display().to_string())
        } else {
            BundleError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

/// Hash and size of `dir/path`, for the manifest's file list.
pub fn file_entry(dir: &Path, path: &str) -> Result<FileEntry, BundleError> {
    let full = dir.join(path);
    let bytes = std::fs::read(&full).map_err(io(&full))?;
    Ok(FileEntry {
        path: path.to_owned(),
        bytes: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
    })
}

/// Encodes `manifest` into `dir` and signs it with `key`. The caller has filled `files`.
pub fn seal(dir: &Path, manifest: &Manifest, key: &SigningKey) -> Result<(), BundleError> {
    let bytes = encode(MANIFEST_KIND, manifest).map_err(|source| BundleError::Manifest {
        path: dir.join(MANIFEST).display().to_string(),
        source,
    })?;
    let path = dir.join(MANIFEST);
    std::fs::write(&path, &bytes).map_err(io(&path))?;
    sign_manifest_file(dir, key)
}

/// (Re)writes the signature of `dir`'s manifest bytes as they are on disk.
pub fn sign_manifest_file(dir: &Path, key: &SigningKey) -> Result<(), BundleError> {
    let path = dir.join(MANIFEST);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let sig = key.sign(&bytes);
    let text = format!(
        "ed25519 {} {}\n",
        hex::encode(key.verifying_key().as_bytes()),
        hex::encode(sig.to_bytes())
    );
    let path = dir.join(SIGNATURE);
    std::fs::write(&path, text).map_err(io(&path))
}

/// Why a public key given as text or as a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not hex")]
    NotHex(#[source] hex::FromHexError),
    #[error("an ed25519 public key is 32 bytes (64 hex digits), this one is {0} bytes")]
    Length(usize),
    #[error("not an ed25519 public key")]
    Invalid(#[source] ed25519_dalek::SignatureError),
    #[error("{}: no such key file (`host-trainer keys` creates one and prints the key)", .0.display())]
    NoFile(PathBuf),
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Parses a public key written as 64 hex digits (what `host-trainer keys` prints).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let raw = hex::decode(text.trim()).map_err(KeyError::NotHex)?;
    let raw: [u8; 32] = raw
        .try_into()
        .map_err(|raw: Vec<u8>| KeyError::Length(raw.len()))?;
    VerifyingKey::from_bytes(&raw).map_err(KeyError::Invalid)
}

/// A public key as given on a command line — a key file such as `host.pub`, or the 64 hex
/// digits themselves — as hex text.
pub fn public_key_text(arg: &str) -> Result<String, KeyError> {
    let path = Path::new(arg);
    if path.is_file() {
        return std::fs::read_to_string(path)
            .map(|t| t.trim().to_owned())
            .map_err(|source| KeyError::Read {
                path: path.to_path_buf(),
                source,
            });
    }
    if arg.contains('/') || arg.ends_with(".pub") {
        return Err(KeyError::NoFile(path.to_path_buf()));
    }
    Ok(arg.trim().to_owned())
}

/// [`public_key_text`], parsed.
pub fn read_public_key(arg: &str) -> Result<VerifyingKey, KeyError> {
    parse_public_key(&public_key_text(arg)?)
}

fn read_signature(path: &Path) -> Result<(VerifyingKey, Signature), BundleError> {
    let raw = read_regular(path, MAX_SIGNATURE_BYTES, None)?;
    let text = String::from_utf8_lossy(&raw);
    let bad = |detail: String| BundleError::BadSignatureFile {
        path: path.display().to_string(),
        detail,
    };
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [scheme, key, sig] = parts[..] else {
        return Err(bad("expected `ed25519 <public key> <signature>`".into()));
    };
    if scheme != "ed25519" {
        return Err(bad(format!("unknown scheme {scheme:?}")));
    }
    let key = parse_public_key(key).map_err(|e| bad(format!("public key: {e}")))?;
    let sig = hex::decode(sig).map_err(|e| bad(format!("signature: {e}")))?;
    let sig: [u8; 64] = sig
        .try_into()
        .map_err(|_| bad("signature is not 64 bytes".into()))?;
    Ok((key, Signature::from_bytes(&sig)))
}

/// A bundle whose signature, format version and file hashes were all checked, with the bytes
/// that were checked: users load models from [`VerifiedBundle::file`], never from the path
/// again, so a file swapped in after the check is never served.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    pub manifest: Manifest,
    pub signer: VerifyingKey,
    files: std::collections::BTreeMap<String, Vec<u8>>,
}

impl VerifiedBundle {
    pub fn signer_hex(&self) -> String {
        hex::encode(self.signer.as_bytes())
    }

    /// The verified contents of a file the manifest lists (`models/….onnx`).
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }
}

/// The manifest is a few KiB; anything near this is not one (and is never read whole).
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// The signature file is one line of hex.
const MAX_SIGNATURE_BYTES: u64 = 4096;
/// The largest model file a bundle may list (the seed-size autoencoder is ~240 MB in f32).
pub const MAX_FILE_BYTES: u64 = 512 << 20;

/// Reads `path`, which must be a regular file (not a link, FIFO or device) of at most `max`
/// bytes, and exactly `expect` bytes when given. Opening does not block (a FIFO would) and the
/// size is checked before anything is read.
pub fn read_regular(path: &Path, max: u64, expect: Option<u64>) -> Result<Vec<u8>, BundleError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let bad = |detail: String| BundleError::FileMismatch {
        path: path.display().to_string(),
        detail,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                bad("a symbolic link; a bundle holds plain files only".into())
            } else {
                io(path)(e)
            }
        })?;
    let meta = file.metadata().map_err(io(path))?;
    if !meta.file_type().is_file() {
        return Err(bad("not a plain file (a FIFO, device or folder)".into()));
    }
    let size = meta.len();
    if size > max {
        return Err(bad(format!("{size} bytes, more than the {max} allowed")));
    }
    if let Some(want) = expect {
        if size != want {
            return Err(bad(format!("{size} bytes, the manifest says {want}")));
        }
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // Never more than the size checked above, even if the file grows meanwhile.
    file.take(size).read_to_end(&mut bytes).map_err(io(path))?;
    if bytes.len() as u64 != size {
        return Err(bad(format!("shrank to {} bytes while read", bytes.len())));
    }
    Ok(bytes)
}

/// Checks `dir` completely before anything in it is used: the signature over the manifest bytes
/// (by one of `trusted`, unless `trusted` is empty), the format version, then every listed file's
/// size and sha256. Every file is read once, as a plain file within its size limits, and the
/// bytes checked are the bytes returned.
pub fn open(dir: &Path, trusted: &[VerifyingKey]) -> Result<VerifiedBundle, BundleError> {
    let manifest_path = dir.join(MANIFEST);
    let bytes = read_regular(&manifest_path, MAX_MANIFEST_BYTES, None)?;
    let sig_path = dir.join(SIGNATURE);
    let (signer, signature) = read_signature(&sig_path)?;
    signer
        .verify(&bytes, &signature)
        .map_err(|_| BundleError::SignatureMismatch(manifest_path.display().to_string()))?;
    if !trusted.is_empty() && !trusted.contains(&signer) {
        return Err(BundleError::UntrustedSigner {
            signer: hex::encode(signer.as_bytes()),
        });
    }
    let manifest: Manifest =
        decode(MANIFEST_KIND, &bytes).map_err(|source| BundleError::Manifest {
            path: manifest_path.display().to_string(),
            source,
        })?;
    manifest
        .validate()
        .map_err(|problem| BundleError::Invalid {
            path: manifest_path.display().to_string(),
            problem,
        })?;
    let mut files = std::collections::BTreeMap::new();
    for entry in &manifest.files {
        let rel = Path::new(&entry.path);
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(BundleError::UnsafePath(entry.path.clone()));
        }
        let full = dir.join(rel);
        // Folders on the way must not be links either (`models/` pointing elsewhere).
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            let meta =
                std::fs::symlink_metadata(dir.join(parent)).map_err(io(&dir.join(parent)))?;
            if !meta.is_dir() {
                return Err(BundleError::FileMismatch {
                    path: dir.join(parent).display().to_string(),
                    detail: "not a plain folder (a link?)".into(),
                });
            }
        }
        if entry.bytes > MAX_FILE_BYTES {
            return Err(BundleError::FileMismatch {
                path: full.display().to_string(),
                detail: format!("the manifest says {} bytes, more than allowed", entry.bytes),
            });
        }
        let content = read_regular(&full, MAX_FILE_BYTES, Some(entry.bytes))?;
        let sha = hex::encode(Sha256::digest(&content));
        if sha != entry.sha256 {
            return Err(BundleError::FileMismatch {
                path: full.display().to_string(),
                detail: format!("sha256 {sha} differs from the manifest's {}", entry.sha256),
            });
        }
        files.insert(entry.path.clone(), content);
    }
    for model in &manifest.models {
        if !files.contains_key(&model.file) {
            return Err(BundleError::FileMismatch {
                path: model.file.clone(),
                detail: "model file is not covered by the manifest's hashes".into(),
            });
        }
    }
    Ok(VerifiedBundle {
        manifest,
        signer,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn a_detectors_blur_check_joins_at_its_own_threshold() {
        let mut entry = ModelEntry::detector("detector", "models/detector.onnx");
        assert_eq!(
            entry.fake_score(0.2, 50.0),
            0.2,
            "no check: the network alone"
        );
        let check = BlurCheck {
            centre: 0.0,
            scale: 0.5,
            alarm: 2.0,
        };
        entry.blur_check = Some(check);
        entry.threshold = Some(0.3);
        // A face exactly at the alarm (e^(2 spreads · 0.5)) sits on the threshold.
        let at_alarm = 1f32.exp();
        assert!((entry.fake_score(0.1, at_alarm) - 0.3).abs() < 1e-4);
        assert!(
            entry.fake_score(0.1, 1.0) < 0.3,
            "a face as soft as real ones"
        );
        assert_eq!(
            entry.fake_score(0.9, 1.0),
            0.9,
            "the check never lowers a score"
        );
        // Without a calibrated threshold the manifest's default anchors it.
        entry.threshold = None;
        let default = entry.fake_score(0.0, at_alarm);
        assert!((default - DEFAULT_FAKE_THRESHOLD).abs() < 1e-4);
    }

    fn sample(dir: &Path) -> Manifest {
        std::fs::create_dir_all(dir.join("models")).unwrap();
        std::fs::write(dir.join("models/swap.onnx"), b"not really onnx, but hashed").unwrap();
        Manifest {
            serial: 1,
            producer: "test".into(),
            created: "2026-11-25T00:00:00Z".into(),
            crop: FaceCropSpec::default(),
            models: vec![ModelEntry {
                preset: "lite".into(),
                params: 1,
                mflops: 1.0,
                ..ModelEntry::swap("swap_A_to_B", "models/swap.onnx", "A", "B")
            }],
            provenance: Provenance {
                run: "r".into(),
                preset: "lite".into(),
                steps: 1,
                datasets: vec![],
                metrics: vec![],
            },
            files: vec![file_entry(dir, "models/swap.onnx").unwrap()],
        }
    }

    #[test]
    fn sealed_bundle_opens_and_every_tampering_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let m = sample(d);
        seal(d, &m, &key(1)).unwrap();
        let ok = open(d, &[key(1).verifying_key()]).unwrap();
        assert_eq!(ok.manifest, m);
        assert!(open(d, &[]).is_ok(), "no trusted keys: integrity only");

        let err = open(d, &[key(2).verifying_key()]).unwrap_err();
        assert!(matches!(err, BundleError::UntrustedSigner { .. }), "{err}");

        // A flipped byte in a model file.
        let model = d.join("models/swap.onnx");
        let orig = std::fs::read(&model).unwrap();
        let mut bad = orig.clone();
        bad[3] ^= 1;
        std::fs::write(&model, &bad).unwrap();
        let err = open(d, &[]).unwrap_err().to_string();
        assert!(err.contains("sha256") && err.contains("swap.onnx"), "{err}");
        std::fs::write(&model, &orig[..10]).unwrap();
        let err = open(d, &[]).unwrap_err().to_string();
        assert!(err.contains("10 bytes"), "{err}");
        std::fs::write(&model, &orig).unwrap();

        // A manifest edited after signing.
        let mpath = d.join(MANIFEST);
        let bytes = std::fs::read(&mpath).unwrap();
        let mut edited = bytes.clone();
        let last = edited.len() - 1;
        edited[last] ^= 0x20;
        std::fs::write(&mpath, &edited).unwrap();
        assert!(matches!(
            open(d, &[]).unwrap_err(),
            BundleError::SignatureMismatch(_)
        ));
        // Re-signed by a key the device does not trust.
        sign_manifest_file(d, &key(3)).unwrap();
        assert!(matches!(
            open(d, &[key(1).verifying_key()]).unwrap_err(),
            BundleError::UntrustedSigner { .. }
        ));
        std::fs::write(&mpath, &bytes).unwrap();
        sign_manifest_file(d, &key(1)).unwrap();
        assert!(open(d, &[key(1).verifying_key()]).is_ok());
    }

    /// `open` on another thread, failing the test instead of hanging it.
    fn open_within(d: &Path, secs: u64) -> Result<VerifiedBundle, BundleError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let d = d.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(open(&d, &[]));
        });
        rx.recv_timeout(std::time::Duration::from_secs(secs))
            .expect("bundle::open hung")
    }

    #[test]
    fn only_plain_files_within_their_sizes_are_read_and_the_checked_bytes_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let m = sample(d);
        seal(d, &m, &key(1)).unwrap();
        let model = d.join("models/swap.onnx");
        let orig = std::fs::read(&model).unwrap();
        assert_eq!(
            open(d, &[]).unwrap().file("models/swap.onnx"),
            Some(&orig[..])
        );

        // A FIFO where the model should be: refused at once instead of blocking forever.
        std::fs::remove_file(&model).unwrap();
        let c = std::ffi::CString::new(model.to_str().unwrap()).unwrap();
        // SAFETY: a valid path; creates a named pipe.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = open_within(d, 10).unwrap_err().to_string();
        assert!(err.contains("not a plain file"), "{err}");
        std::fs::remove_file(&model).unwrap();

        // A link to the right bytes elsewhere is still not a plain file of the bundle.
        let elsewhere = d.join("elsewhere.onnx");
        std::fs::write(&elsewhere, &orig).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &model).unwrap();
        let err = open_within(d, 10).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        std::fs::remove_file(&model).unwrap();
        std::fs::write(&model, &orig).unwrap();

        // An 8 GiB (sparse) manifest is refused by its size, never read.
        let mpath = d.join(MANIFEST);
        let bytes = std::fs::read(&mpath).unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&mpath)
            .unwrap();
        f.set_len(8 << 30).unwrap();
        let started = std::time::Instant::now();
        let err = open_within(d, 10).unwrap_err().to_string();
        assert!(err.contains("more than the"), "{err}");
        assert!(started.elapsed().as_secs() < 2);
        std::fs::write(&mpath, &bytes).unwrap();
        assert!(open(d, &[]).is_ok());
    }

    #[test]
    fn a_signed_manifest_with_values_no_booth_can_use_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut m = sample(d);
        m.crop.size = 1_000_000;
        seal(d, &m, &key(1)).unwrap();
        let err = open(d, &[]).unwrap_err().to_string();
        assert!(err.contains("crop size 1000000"), "{err}");

        let mut m = sample(d);
        m.models[0].threshold = Some(f32::NAN);
        seal(d, &m, &key(1)).unwrap();
        let err = open(d, &[]).unwrap_err().to_string();
        assert!(err.contains("threshold"), "{err}");

        let mut m = sample(d);
        m.models[0].blur_check = Some(BlurCheck {
            centre: 0.0,
            scale: 0.0,
            alarm: 3.0,
        });
        seal(d, &m, &key(1)).unwrap();
        let err = open(d, &[]).unwrap_err().to_string();
        assert!(err.contains("blur check"), "{err}");

        let mut m = sample(d);
        m.models[0].visitor_switch_distance = Some(-1.0);
        seal(d, &m, &key(1)).unwrap();
        let err = open(d, &[]).unwrap_err().to_string();
        assert!(err.contains("visitor switch distance"), "{err}");

        let mut m = sample(d);
        m.models[0].outputs = vec![TensorSpec {
            name: "rgb".into(),
            shape: vec![-1, 3, 8, 8],
            meaning: String::new(),
        }];
        seal(d, &m, &key(1)).unwrap();
        let err = open(d, &[]).unwrap_err().to_string();
        assert!(err.contains("outputs"), "{err}");
    }

    #[test]
    fn a_swap_model_may_take_a_visitors_offset_and_must_then_report_each_faces() {
        let spec = |name: &str, shape: &[i64]| TensorSpec {
            name: name.into(),
            shape: shape.to_vec(),
            meaning: String::new(),
        };
        let s = FaceCropSpec::default().size as i64;
        let with = |inputs: Vec<TensorSpec>, outputs: Vec<TensorSpec>| {
            let dir = tempfile::tempdir().unwrap();
            let mut m = sample(dir.path());
            m.models[0].inputs = inputs;
            m.models[0].outputs = outputs;
            m.validate()
        };
        let face = spec("face", &[-1, 3, s, s]);
        let pictures = [spec("rgb", &[-1, 3, s, s]), spec("mask", &[-1, 1, s, s])];
        let visitor = spec(VISITOR_OFFSET, &[1, 256, 8, 8]);
        let reported = spec(IDENTITY_OFFSET, &[-1, 256, 8, 8]);
        let all = |extra: Option<TensorSpec>| pictures.iter().cloned().chain(extra).collect();

        assert_eq!(with(vec![face.clone()], all(None)), Ok(()));
        assert_eq!(
            with(
                vec![face.clone(), visitor.clone()],
                all(Some(reported.clone()))
            ),
            Ok(())
        );
        // The offset in without the faces' offsets out, or of another shape.
        let err = with(vec![face.clone(), visitor.clone()], all(None)).unwrap_err();
        assert!(err.0.contains("outputs"), "{err}");
        let other = spec(IDENTITY_OFFSET, &[-1, 128, 8, 8]);
        let err = with(vec![face.clone(), visitor.clone()], all(Some(other))).unwrap_err();
        assert!(err.0.contains("outputs"), "{err}");
        // A second input of another name, or a code with an empty dimension.
        let stray = spec("extra", &[1, 256, 8, 8]);
        let err = with(vec![face.clone(), stray], all(Some(reported.clone()))).unwrap_err();
        assert!(err.0.contains("inputs"), "{err}");
        let empty = spec(VISITOR_OFFSET, &[1, 0, 8, 8]);
        let err = with(vec![face, empty], all(Some(reported))).unwrap_err();
        assert!(err.0.contains("positive sizes"), "{err}");
    }
}
