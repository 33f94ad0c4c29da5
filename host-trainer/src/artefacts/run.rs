//! A training run's folder: written by `train` (and `eval`), read by `eval`, `convert`,
//! `train-detector` and `export`.
//!
//! ```text
//! runs/ab/
//!   config.toml              the training settings (a resumed run keeps its own)
//!   crop.toml                the crop geometry of the datasets it trained on
//!   datasets.toml            which datasets (eval and export read their faces and consent)
//!   checkpoint.safetensors   generator, discriminators and optimiser state, resumable
//!   metrics.csv, loss_curve.png, preview.png
//!   eval.md, eval.json       `host-trainer eval`'s report ([`EvalReport`])
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shared_proto::FaceCropSpec;
use tch::Device;

use super::train_config::TrainConfig;
use super::{read_json, read_toml, sha256_file, write_json, write_toml};
use crate::error::{AtPath, Error, Result};
use crate::model::checkpoint;
use crate::model::net::Autoencoder;

pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const CONFIG: &str = "config.toml";
pub const METRICS: &str = "metrics.csv";
pub const CROP: &str = "crop.toml";
/// Which datasets a run was trained on, so eval and export find them (and their consent).
pub const DATASETS: &str = "datasets.toml";
pub const PREVIEW: &str = "preview.png";
pub const LOSS_CURVE: &str = "loss_curve.png";
pub const EVAL_JSON: &str = "eval.json";
pub const EVAL_MD: &str = "eval.md";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunDatasets {
    a: PathBuf,
    b: PathBuf,
}

/// The datasets recorded in `run`, if it was trained by a host-trainer that records them.
pub fn datasets(run: &Path) -> Option<[PathBuf; 2]> {
    let d: RunDatasets = read_toml(&run.join(DATASETS)).ok()?;
    Some([d.a, d.b])
}

/// Records the run's settings for a fresh run, or reads them back when `run` already holds a
/// checkpoint (a resumed run keeps its own config: the checkpoint only fits that
/// architecture). Also records the crop geometry and the datasets (as absolute paths).
pub fn establish(
    run: &Path,
    config: &TrainConfig,
    crop: &FaceCropSpec,
    datasets: &[PathBuf; 2],
) -> Result<TrainConfig> {
    std::fs::create_dir_all(run).at("create", run)?;
    let config_path = run.join(CONFIG);
    let config = if run.join(CHECKPOINT).is_file() && config_path.is_file() {
        read_toml(&config_path)?
    } else {
        let note = "Settings of this run (written by host-trainer train).";
        write_toml(&config_path, note, config)?;
        config.clone()
    };
    let note = "Crop geometry the model was trained on (from the datasets).";
    write_toml(&run.join(CROP), note, crop)?;
    let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let recorded = RunDatasets {
        a: absolute(&datasets[0]),
        b: absolute(&datasets[1]),
    };
    let note = "Datasets this run was trained on (eval and export read their faces and consent).";
    write_toml(&run.join(DATASETS), note, &recorded)?;
    Ok(config)
}

/// The generator of a finished run, without discriminators or optimiser state: what eval,
/// convert, the fake detector's data and export need.
pub struct Generator {
    pub config: TrainConfig,
    pub crop: FaceCropSpec,
    pub vars: tch::nn::VarStore,
    pub model: Autoencoder,
    pub steps: i64,
    pub checkpoint_sha256: String,
}

impl Generator {
    pub fn load(run: &Path, device: Device) -> Result<Self> {
        let config: TrainConfig = read_toml(&run.join(CONFIG))?;
        let crop: FaceCropSpec = read_toml(&run.join(CROP))?;
        let spec = model_spec::swap::preset(&config.preset)
            .ok_or_else(|| Error::UnknownPreset(config.preset.clone()))?;
        let vars = tch::nn::VarStore::new(device);
        let model = Autoencoder::new(&vars.root(), &spec, 2);
        let path = run.join(CHECKPOINT);
        let steps = checkpoint::load_generator(&vars, &path)?;
        let checkpoint_sha256 = sha256_file(&path).unwrap_or_default();
        Ok(Self {
            config,
            crop,
            vars,
            model,
            steps,
            checkpoint_sha256,
        })
    }
}

/// `eval`'s figures for one person of the run (see `stages::eval` for how each is measured).
#[derive(Debug, Serialize, Deserialize, Clone, Default)]
pub struct PersonEval {
    pub person: String,
    pub held_out_faces: usize,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub psnr_db: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub ssim: f64,
    /// Fraction of this person's faces swapped into the other that the classifier calls "other".
    #[serde(deserialize_with = "super::nan_if_null")]
    pub identity_transfer_rate: f64,
    /// The same with a "neither" answer: the swap must also lie within the other person's own
    /// spread of real faces.
    #[serde(deserialize_with = "super::nan_if_null")]
    pub identity_transfer_open_set: f64,
    /// Classifier accuracy on this person's real held-out faces (its own credibility).
    #[serde(deserialize_with = "super::nan_if_null")]
    pub classifier_accuracy_real: f64,
    /// Classifier accuracy on this person's reconstructions through their own decoder: the
    /// control that it judges identity rather than the generator's blur.
    #[serde(deserialize_with = "super::nan_if_null")]
    pub classifier_accuracy_reconstructed: f64,
    /// The same, open-set: if reconstructions fail it too, open-set misses are the
    /// autoencoder's blur rather than the wrong identity.
    #[serde(deserialize_with = "super::nan_if_null")]
    pub classifier_accuracy_reconstructed_open_set: f64,
    /// Mean of the other decoder's learned mask over the face ellipse when swapping this
    /// person's faces: near 0 means the learned mask collapsed and would paste nothing.
    #[serde(deserialize_with = "super::nan_if_null")]
    pub swap_mask_on_face: f64,
    /// Mean landmark error of swapped vs source frames / inter-ocular distance.
    pub pose_error: Option<f64>,
    /// Swapped-face frame-to-frame change over source-face change.
    pub flicker_ratio: Option<f64>,
    pub frames_for_pose: usize,
}

/// `eval.json`: what `eval` measured on a run's held-out frames.
#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct EvalReport {
    pub run: String,
    pub preset: String,
    pub steps: i64,
    pub people: Vec<PersonEval>,
}

impl EvalReport {
    /// Writes `eval.json` and `eval.md` into the run folder.
    pub fn write(&self, run: &Path) -> Result<()> {
        write_json(&run.join(EVAL_JSON), self)?;
        let md = run.join(EVAL_MD);
        std::fs::write(&md, self.markdown()).at("write", &md)
    }

    /// The run's `eval.json`, `None` when the run was never evaluated.
    pub fn read(run: &Path) -> Result<Option<Self>> {
        let path = run.join(EVAL_JSON);
        if !path.is_file() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }

    /// The figures as bundle metrics, named `A.psnr_db` and so on.
    pub fn metrics(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for p in &self.people {
            let value = serde_json::to_value(p).unwrap_or_default();
            for (k, v) in value.as_object().into_iter().flatten() {
                if let Some(v) = v.as_f64() {
                    out.push((format!("{}.{k}", p.person), v));
                }
            }
        }
        out
    }

    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# Evaluation of {} ({}, {} steps)\n\nHeld-out = the last 10% of each source's frames.\n\n| person | faces | PSNR dB | SSIM | identity transfer (forced / open-set) | classifier on real | classifier on reconstructions (forced / open-set) | swap mask on face | pose error (×IOD) | flicker ratio |\n|---|---|---|---|---|---|---|---|---|---|\n",
            self.run, self.preset, self.steps
        );
        for p in &self.people {
            let opt = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
            s += &format!(
                "| {} | {} | {:.2} | {:.3} | {:.0}% / {:.0}% | {:.0}% | {:.0}% / {:.0}% | {:.2} | {} | {} |\n",
                p.person,
                p.held_out_faces,
                p.psnr_db,
                p.ssim,
                100.0 * p.identity_transfer_rate,
                100.0 * p.identity_transfer_open_set,
                100.0 * p.classifier_accuracy_real,
                100.0 * p.classifier_accuracy_reconstructed,
                100.0 * p.classifier_accuracy_reconstructed_open_set,
                p.swap_mask_on_face,
                opt(p.pose_error),
                opt(p.flicker_ratio)
            );
        }
        s
    }
}
