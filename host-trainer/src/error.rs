//! The library's one error type. A failure on a file or folder names the path and keeps its cause
//! as `source` ([`Error::File`]); the other variants say what is wrong and what to do about it.
//! The binary prints the whole chain (`anyhow`'s `{:#}`): "exporting runs/ab: cannot parse
//! runs/ab/eval.json: expected value at line 1 column 1".

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any error that can be the cause of a [`Error::File`].
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Doing `action` ("read", "write", "parse", …) on `path` failed because of `source`.
    #[error("cannot {action} {}", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: Cause,
    },
    #[error(transparent)]
    Face(#[from] facekit::FacekitError),
    #[error(transparent)]
    Bundle(#[from] shared_proto::bundle::BundleError),
    #[error(transparent)]
    Spec(#[from] model_spec::SpecError),
    #[error(transparent)]
    Onnx(#[from] model_spec::onnx::OnnxError),
    #[error("torch")]
    Torch(#[from] tch::TchError),

    // --- datasets (extract writes them, everything else reads them) ---
    #[error("{}: not a dataset (no metadata.jsonl); run `host-trainer extract` first", .0.display())]
    NotADataset(PathBuf),
    #[error("{}: no accepted faces; extract more video of this person", .0.display())]
    NoAcceptedFaces(PathBuf),
    #[error("{}: {problem}", path.display())]
    BadDataset { path: PathBuf, problem: String },
    #[error("{}: {problem}", path.display())]
    Consent { path: PathBuf, problem: String },
    #[error("consent: {0}")]
    ConsentArg(String),
    #[error("--person {0:?}: use letters, digits, spaces, '-', '_' or '.' (not first), at most 64 characters")]
    BadPersonName(String),
    #[error("{} line {line}; the dataset's journal is damaged (fix or remove that line)", path.display())]
    Journal {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("no usable face found in {inputs} ({frames} frames looked at); check the inputs show {person}'s face, or loosen the curation thresholds in --config (see {})", report.display())]
    NoFaces {
        person: String,
        inputs: String,
        frames: u64,
        report: PathBuf,
    },
    #[error("{}: file not found", .0.display())]
    NoSuchInput(PathBuf),
    #[error("{pattern}: {problem}")]
    BadPattern { pattern: String, problem: String },
    #[error("{}: folder has no .png/.jpg images", .0.display())]
    NoImages(PathBuf),
    #[error("cannot start worker threads: {0}")]
    ThreadPool(String),

    #[error("{key} = {value}: use {allowed}")]
    Setting {
        key: String,
        value: String,
        allowed: String,
    },

    // --- training runs ---
    #[error("unknown preset {0:?}; choose one of {presets:?}", presets = model_spec::swap::PRESETS)]
    UnknownPreset(String),
    #[error("unknown detector preset {0:?}; choose one of {presets:?}", presets = model_spec::fake_detector::PRESETS)]
    UnknownDetectorPreset(String),
    #[error("preset {preset} works on {model} px crops but the datasets hold {data} px crops")]
    CropSize {
        preset: String,
        model: usize,
        data: u32,
    },
    #[error("checkpoint {}: {problem}; resume from an earlier checkpoint or start a new run", path.display())]
    Checkpoint { path: PathBuf, problem: String },
    #[error("no dataset given for a side of the run")]
    NoDatasetGiven,
    #[error("the training data loader stopped (see the messages above)")]
    LoaderStopped,
    #[error("loss became NaN {0} times in a row even after reloading the last checkpoint; lower `lr` in the config")]
    Diverged(u32),
    #[error("--device cuda: no CUDA device visible (see `host-trainer doctor`)")]
    NoCuda,
    #[error("{}: the run does not record its datasets; pass --a and --b", .0.display())]
    NoDatasets(PathBuf),

    #[error("identity judge: {0}")]
    Judge(String),

    // --- export ---
    #[error("{model}: tract cannot run the exported graph")]
    Tract {
        model: String,
        #[source]
        source: facekit::FacekitError,
    },
    #[error("{model}: tract and tch differ by {max_diff:.2e} on {inputs} (limit {limit:.0e}); the exporter and the tch model disagree")]
    GraphMismatch {
        model: String,
        inputs: &'static str,
        max_diff: f32,
        limit: f32,
    },
    #[error("{model}: int8 PSNR {psnr:.1} dB against f32 is below {min:.1} dB; try --calibration p99.99 or export without --int8")]
    Int8Quality { model: String, psnr: f64, min: f64 },
    #[error("{}: exists and is not a bundle; choose an empty or new --out folder", .0.display())]
    NotABundle(PathBuf),
    #[error("{}: not a doppel host key (64 hex digits expected); move it away to create a new key, then re-export bundles and update the devices' trusted keys", .0.display())]
    CorruptKey(PathBuf),
    #[error("no randomness for a new key: {0}")]
    Random(String),

    // --- fake detector ---
    #[error("{}: no accepted face could be re-cropped from its source video", .0.display())]
    NoRecrops(PathBuf),
    #[error("the detector's report holds each identity out in turn: give at least two datasets (got {0})")]
    TooFewIdentities(usize),
    #[error(
        "--hold-out {name}: no such identity; the datasets are named by their folders: {known}"
    )]
    UnknownIdentity { name: String, known: String },
    #[error("{}: the bundle has no detector; export it with --detector", .0.display())]
    NoFakeDetector(PathBuf),
    #[error("no face found in {}; nothing to score", .0.display())]
    NoFaceToScore(PathBuf),

    // --- plots ---
    #[error("no DejaVu Sans font found ({0}); install fonts-dejavu-core or run `make setup`")]
    NoFont(String),
    #[error("drawing {} failed: {problem}", path.display())]
    Draw { path: PathBuf, problem: String },
}

impl Error {
    /// This error and its causes, joined the way `anyhow` prints them with `{:#}`.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }
}

/// `.at("read", path)` on any fallible result: the failure becomes an [`Error::File`] that
/// names `path` and keeps the original error as its source.
pub trait AtPath<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T>;
}

impl<T, E: Into<Cause>> AtPath<T> for std::result::Result<T, E> {
    fn at(self, action: &'static str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::File {
            action,
            path: path.to_path_buf(),
            source: e.into(),
        })
    }
}
