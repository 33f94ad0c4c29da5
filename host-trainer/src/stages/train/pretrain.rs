//! `host-trainer pretrain`: a warm start, as DeepFaceLab's pretrained models are. The shared
//! encoder and both decoders learn every identity given (all but a stranger kept out for the
//! unseen-visitor test) as one generic autoencoder; `train --init` then starts a pair's run from
//! it. The result is the generator alone in fp16 (`warm_start.safetensors`) with a provenance
//! record of how it was made (`warm_start.json`).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};
use tch::Device;

use super::{train, RunOptions, RunSummary};
use crate::artefacts::dataset::{FaceSet, METADATA, TRAIN_HELD_OUT};
use crate::artefacts::run::Generator;
use crate::artefacts::train_config::TrainConfig;
use crate::artefacts::{sha256_file, write_json};
use crate::error::{Error, Result};
use crate::model::checkpoint;

pub const WARM_START: &str = "warm_start.safetensors";
pub const PROVENANCE: &str = "warm_start.json";

pub struct PretrainOptions {
    pub config: TrainConfig,
    /// Every identity's dataset; both decoders see all of them.
    pub datasets: Vec<PathBuf>,
    pub out: PathBuf,
    /// An earlier warm start to continue.
    pub init: Option<PathBuf>,
    pub steps: Option<i64>,
    pub minutes: Option<f64>,
    pub device: Device,
    pub progress: bool,
}

/// One dataset the warm start learnt from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainDataset {
    pub path: String,
    pub person: String,
    pub faces: usize,
    pub metadata_sha256: String,
    pub consent_who: String,
    pub consent_scope: String,
}

/// `warm_start.json`: how the warm start was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provenance {
    pub command: Vec<String>,
    pub tool: String,
    pub commit: Option<String>,
    pub created: String,
    pub preset: String,
    /// Steps of training in this warm start, those of the one it continued included.
    pub steps: i64,
    /// The earlier warm start this one continued, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<PretrainInit>,
    pub seconds_this_run: f64,
    pub device: String,
    pub datasets: Vec<PretrainDataset>,
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
}

/// The warm start a warm start continued.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainInit {
    pub path: String,
    pub sha256: String,
    pub steps: i64,
}

pub fn pretrain(opts: &PretrainOptions, stop: &AtomicBool) -> Result<(RunSummary, Provenance)> {
    if opts.datasets.is_empty() {
        return Err(Error::NoDatasetGiven);
    }
    // A resumed run (its checkpoint exists) continues from whatever it started from, which its
    // own earlier provenance recorded.
    let resumed = opts.out.join(crate::artefacts::run::CHECKPOINT).is_file();
    let init = match (&opts.init, resumed) {
        (Some(path), false) => Some(PretrainInit {
            path: path.display().to_string(),
            sha256: sha256_file(path)?,
            steps: checkpoint::saved_step(path)?,
        }),
        (_, true) => earlier_init(&opts.out),
        (None, false) => None,
    };
    let run = RunOptions {
        config: opts.config.clone(),
        datasets: [opts.datasets.clone(), opts.datasets.clone()],
        out: opts.out.clone(),
        init: opts.init.clone(),
        snapshots: Vec::new(),
        steps: opts.steps,
        minutes: opts.minutes,
        save_every: 200,
        preview_every: 200,
        device: opts.device,
        progress: opts.progress,
    };
    // Read before training: commits made in the same tree during a long run must not be
    // credited with it.
    let commit = git_commit();
    let summary = train(&run, stop)?;
    let generator = Generator::load(&opts.out, Device::Cpu)?;
    let file = opts.out.join(WARM_START);
    let steps = generator.steps + init.as_ref().map_or(0, |i| i.steps);
    checkpoint::write_generator_fp16(&file, &generator.vars, steps)?;
    let datasets = opts
        .datasets
        .iter()
        .map(|p| describe(p))
        .collect::<Result<Vec<_>>>()?;
    let provenance = Provenance {
        command: std::env::args().collect(),
        tool: format!("doppel host-trainer {}", env!("CARGO_PKG_VERSION")),
        commit,
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        preset: generator.config.preset.clone(),
        steps,
        init,
        seconds_this_run: summary.seconds,
        device: format!("{:?}", opts.device),
        datasets,
        file: WARM_START.into(),
        sha256: sha256_file(&file)?,
        bytes: std::fs::metadata(&file).map_or(0, |m| m.len()),
    };
    write_json(&opts.out.join(PROVENANCE), &provenance)?;
    Ok((summary, provenance))
}

/// What the run in `out` started from, as its last provenance says.
fn earlier_init(out: &Path) -> Option<PretrainInit> {
    let text = std::fs::read_to_string(out.join(PROVENANCE)).ok()?;
    serde_json::from_str::<Provenance>(&text).ok()?.init
}

fn describe(path: &Path) -> Result<PretrainDataset> {
    let set = FaceSet::load(path, TRAIN_HELD_OUT)?;
    Ok(PretrainDataset {
        path: path.display().to_string(),
        person: set.person.clone(),
        faces: set.train.len() + set.held_out.len(),
        metadata_sha256: sha256_file(&path.join(METADATA))?,
        consent_who: set.consent.who.clone(),
        consent_scope: set.consent.scope.clone(),
    })
}

/// The commit of the working tree this runs from (at the start of the run), when git can tell.
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
