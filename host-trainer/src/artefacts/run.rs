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
//!   snapshots/generator-<step>.safetensors  the generator at chosen steps (fp16, `--snapshot-at`),
//!                            each with its own `.eval.json` once evaluated
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
pub const SNAPSHOTS: &str = "snapshots";

/// `snapshots/generator-<step>.safetensors`: the generator kept at `step` (fp16).
pub fn snapshot(run: &Path, step: i64) -> PathBuf {
    run.join(SNAPSHOTS)
        .join(format!("generator-{step}.safetensors"))
}

/// One dataset or several (a side of a run can pool datasets of the same person; a warm start
/// pools everyone). Runs recorded before pooling hold one path per side.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum Side {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl Side {
    fn first(self) -> Option<PathBuf> {
        match self {
            Side::One(p) => Some(p),
            Side::Many(v) => v.into_iter().next(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunDatasets {
    a: Side,
    b: Side,
}

/// The (first) dataset of each side recorded in `run`, if it was trained by a host-trainer that
/// records them: what eval and export read faces and consent from by default.
pub fn datasets(run: &Path) -> Option<[PathBuf; 2]> {
    let d: RunDatasets = read_toml(&run.join(DATASETS)).ok()?;
    Some([d.a.first()?, d.b.first()?])
}

/// The settings `run` was trained with. A run's `config.toml` holds every key; one without
/// `augment.occluders` was trained before occluders existed, so without them (not with
/// today's default).
pub fn config(run: &Path) -> Result<TrainConfig> {
    let path = run.join(CONFIG);
    let raw: toml::Table = read_toml(&path)?;
    let recorded = raw
        .get("augment")
        .and_then(toml::Value::as_table)
        .is_some_and(|a| a.contains_key("occluders"));
    let mut config: TrainConfig = toml::Value::Table(raw).try_into().at("parse", &path)?;
    if !recorded {
        config.augment.occluders = 0.0;
    }
    Ok(config)
}

/// Records the run's settings for a fresh run, or reads them back when `run` already holds a
/// checkpoint (a resumed run keeps its own config: the checkpoint only fits that
/// architecture). Also records the crop geometry and the datasets (as absolute paths).
pub fn establish(
    run: &Path,
    config: &TrainConfig,
    crop: &FaceCropSpec,
    datasets: &[Vec<PathBuf>; 2],
) -> Result<TrainConfig> {
    std::fs::create_dir_all(run).at("create", run)?;
    let config_path = run.join(CONFIG);
    let config = if run.join(CHECKPOINT).is_file() && config_path.is_file() {
        self::config(run)?
    } else {
        let note = "Settings of this run (written by host-trainer train).";
        write_toml(&config_path, note, config)?;
        config.clone()
    };
    let note = "Crop geometry the model was trained on (from the datasets).";
    write_toml(&run.join(CROP), note, crop)?;
    let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let side = |paths: &[PathBuf]| match paths {
        [one] => Side::One(absolute(one)),
        many => Side::Many(many.iter().map(|p| absolute(p)).collect()),
    };
    let recorded = RunDatasets {
        a: side(&datasets[0]),
        b: side(&datasets[1]),
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
    /// The run's generator from its checkpoint.
    pub fn load(run: &Path, device: Device) -> Result<Self> {
        Self::load_weights(run, &run.join(CHECKPOINT), device)
    }

    /// The run's architecture with the generator weights of `weights` (the checkpoint, a
    /// snapshot or a warm start).
    pub fn load_weights(run: &Path, weights: &Path, device: Device) -> Result<Self> {
        let config = config(run)?;
        let crop: FaceCropSpec = read_toml(&run.join(CROP))?;
        let spec = model_spec::swap::preset(&config.preset)
            .ok_or_else(|| Error::UnknownPreset(config.preset.clone()))?;
        let vars = tch::nn::VarStore::new(device);
        let mut model = Autoencoder::new(&vars.root(), &spec, 2);
        let steps = checkpoint::load_generator(&vars, weights)?;
        let checkpoint_sha256 = sha256_file(weights).unwrap_or_default();
        model.code_means = code_means(run, &model);
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

/// Each person's mean code under `model`, measured on the training faces of the datasets the
/// run recorded: the swap's identity shift. `None` (with a warning: swaps then keep the
/// source's identity offset) when those datasets cannot be read.
fn code_means(run: &Path, model: &Autoencoder) -> Option<[tch::Tensor; 2]> {
    let mean = |root: &Path| -> Result<tch::Tensor> {
        let set = super::dataset::FaceSet::load(root, super::dataset::TRAIN_HELD_OUT)?;
        model
            .mean_code(&set.train)
            .ok_or_else(|| Error::NoAcceptedFaces(root.to_path_buf()))
    };
    let measured = datasets(run).map(|[a, b]| Ok::<_, Error>([mean(&a)?, mean(&b)?]));
    match measured {
        Some(Ok(means)) => Some(means),
        Some(Err(e)) => {
            tracing::warn!(
                "swaps without the identity shift: the run's datasets are unreadable ({e})"
            );
            None
        }
        None => {
            tracing::warn!(
                "swaps without the identity shift: {} does not record its datasets",
                run.display()
            );
            None
        }
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
    /// Share of a synthetic occluder over this person's held-out faces (inside the face
    /// ellipse) that the swap into the other person leaves in the picture, pasted with the
    /// run's mask; `None` in reports from before it was measured.
    #[serde(default)]
    pub occluder_kept: Option<f64>,
    /// Mean landmark error of swapped vs source frames / inter-ocular distance.
    pub pose_error: Option<f64>,
    /// Swapped-face frame-to-frame change over source-face change.
    pub flicker_ratio: Option<f64>,
    pub frames_for_pose: usize,
}

/// The outside identity judge's verdict on one swap direction (`scripts/peers/identity_judge.py`:
/// dlib's face detector and ResNet face descriptor, nothing of ours), on held-out frames.
#[derive(Debug, Serialize, Deserialize, Clone, Default)]
pub struct JudgedDirection {
    /// `A->B`: A's frames with B's face.
    pub name: String,
    pub source: String,
    pub target: String,
    /// Swapped frames shown to the judge.
    pub frames: usize,
    /// Share of swapped frames where dlib's detector finds a face.
    pub face_found: Option<f64>,
    /// Frames judged at the source's face box (dlib found the face in the original frame).
    pub measured: usize,
    /// Share nearer the target's mean descriptor than the source's.
    pub transfer: Option<f64>,
    /// Share within dlib's same-person distance (0.6) of the target's mean.
    pub verified: Option<f64>,
    pub median_distance_to_target: Option<f64>,
    pub median_distance_to_source: Option<f64>,
    /// The judge on the untouched originals: verified as the source person (its own control).
    pub original_verified_as_source: Option<f64>,
}

/// What the judge saw of each person's real reference frames.
#[derive(Debug, Serialize, Deserialize, Clone, Default)]
pub struct JudgeReference {
    pub frames: usize,
    pub faces: usize,
    pub median_distance_to_own_mean: Option<f64>,
}

/// The identity judge's whole answer.
#[derive(Debug, Serialize, Deserialize, Clone, Default)]
pub struct IdentityJudgement {
    pub judge: String,
    pub same_person_distance: f64,
    pub references: std::collections::BTreeMap<String, JudgeReference>,
    pub reference_means_apart: Option<f64>,
    pub directions: Vec<JudgedDirection>,
}

/// Sharpness of the swapped face against real faces (the over-blur cue: sharpness around the
/// face ÷ of the face, at the fake detector's crop; higher = softer face).
#[derive(Debug, Serialize, Deserialize, Clone, Default)]
pub struct Softness {
    /// `A->B`.
    pub name: String,
    /// Mean over-blur of the swapped faces in their frames.
    pub swapped: f64,
    /// Mean over-blur of the same frames before the swap.
    pub original: f64,
    /// Mean over-blur of the same frames pasted back through the model's crop unchanged: what
    /// the crop's resolution alone costs, the floor for any model of this size.
    #[serde(default)]
    pub crop_only: Option<f64>,
    /// Mean over-blur of the same frames with the source's face redrawn by its own decoder:
    /// the model's softness on a face it knows, so a swap softer than this loses sharpness in
    /// the swap itself (the other decoder meeting a code it was not trained on).
    #[serde(default)]
    pub reconstructed: Option<f64>,
    /// Mean over-blur of the target person's own held-out faces.
    pub target_real: f64,
}

impl Softness {
    /// Swapped ÷ the real target's: ≤ 1.5 is the goal.
    pub fn ratio_to_target(&self) -> f64 {
        self.swapped / self.target_real
    }

    /// Swapped ÷ the same frames unswapped: how much softer the face got than the one it
    /// replaced, under the same camera and background. The target's ratio compares two cameras
    /// (B→A sets franck's face against his plain blue backdrop beside cap12's sharp room), so a
    /// swap that kept the source face's sharpness exactly would still read 2.07 / 0.81 = 2.6
    /// there; this one does not depend on whose room it is.
    pub fn ratio_to_original(&self) -> f64 {
        self.swapped / self.original
    }
}

/// `eval.json`: what `eval` measured on a run's held-out frames.
#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct EvalReport {
    pub run: String,
    pub preset: String,
    pub steps: i64,
    /// The outside judge first (`None` when eval ran with `--no-judge`).
    #[serde(default)]
    pub identity: Option<IdentityJudgement>,
    #[serde(default)]
    pub softness: Vec<Softness>,
    pub people: Vec<PersonEval>,
}

impl EvalReport {
    /// Writes `eval.json` and `eval.md` into the run folder.
    pub fn write(&self, run: &Path) -> Result<()> {
        self.write_as(&run.join(EVAL_JSON), &run.join(EVAL_MD))
    }

    /// Writes the report as `json` and `md`.
    pub fn write_as(&self, json: &Path, md: &Path) -> Result<()> {
        write_json(json, self)?;
        std::fs::write(md, self.markdown()).at("write", md)
    }

    /// The run's `eval.json`, `None` when the run was never evaluated.
    pub fn read(run: &Path) -> Result<Option<Self>> {
        let path = run.join(EVAL_JSON);
        if !path.is_file() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }

    /// The figures as bundle metrics, named `A->B.verified`, `A.psnr_db` and so on.
    pub fn metrics(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for d in self.identity.iter().flat_map(|j| &j.directions) {
            for (k, v) in [
                ("face_found", d.face_found),
                ("transfer", d.transfer),
                ("verified", d.verified),
            ] {
                if let Some(v) = v {
                    out.push((format!("{}.{k}", d.name), v));
                }
            }
        }
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
            "# Evaluation of {} ({}, {} steps)\n\nHeld-out = the last 10% of each source's frames.\n\n",
            self.run, self.preset, self.steps
        );
        s += &self.identity_markdown();
        s += &self.softness_markdown();
        s += "## Our own measures\n\nThe LBPH classifier is ours and secondary: it is a forced choice between two people, so a featureless face can count as transferred.\n\n| person | faces | PSNR dB | SSIM | LBPH identity transfer (forced / open-set) | LBPH on real | LBPH on reconstructions (forced / open-set) | swap mask on face | occluder kept | pose error (×IOD) | flicker ratio |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
        for p in &self.people {
            let opt = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
            s += &format!(
                "| {} | {} | {:.2} | {:.3} | {:.0}% / {:.0}% | {:.0}% | {:.0}% / {:.0}% | {:.2} | {} | {} | {} |\n",
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
                p.occluder_kept
                    .map_or("–".to_owned(), |v| format!("{:.0}%", 100.0 * v)),
                opt(p.pose_error),
                opt(p.flicker_ratio)
            );
        }
        s
    }

    fn identity_markdown(&self) -> String {
        let pct = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{:.0}%", 100.0 * v));
        let num = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.3}"));
        let mut s = String::from("## Identity, judged by dlib (not our code)\n\n");
        let Some(j) = &self.identity else {
            return s + "Not judged (`--no-judge`).\n\n";
        };
        s += &format!(
            "{}; same person = descriptor distance < {}. Reference means {} apart.\n\n| direction | frames | face found | judged | transfer (nearer target) | **verified as target** | median distance to target / source | originals verified as source |\n|---|---|---|---|---|---|---|---|\n",
            j.judge,
            j.same_person_distance,
            num(j.reference_means_apart)
        );
        for d in &j.directions {
            s += &format!(
                "| {} | {} | {} | {} | {} | **{}** | {} / {} | {} |\n",
                d.name,
                d.frames,
                pct(d.face_found),
                d.measured,
                pct(d.transfer),
                pct(d.verified),
                num(d.median_distance_to_target),
                num(d.median_distance_to_source),
                pct(d.original_verified_as_source)
            );
        }
        s + "\n"
    }

    /// Softness, with or without the judge.
    fn softness_markdown(&self) -> String {
        let mut s = String::new();
        let two = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2}"));
        if !self.softness.is_empty() {
            s += "## Softness (the over-blur cue: sharpness around the face ÷ of the face)\n\n| direction | over-blur of swapped faces | of the same frames unswapped | through the crop unchanged (the resolution's floor) | redrawn by the source's own decoder | of the target's real faces | swapped ÷ target (goal ≤ 1.5) | swapped ÷ unswapped |\n|---|---|---|---|---|---|---|---|\n";
            for b in &self.softness {
                s += &format!(
                    "| {} | {:.2} | {:.2} | {} | {} | {:.2} | {:.2} | {:.2} |\n",
                    b.name,
                    b.swapped,
                    b.original,
                    two(b.crop_only),
                    two(b.reconstructed),
                    b.target_real,
                    b.ratio_to_target(),
                    b.ratio_to_original()
                );
            }
            s += "\n";
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use facekit::blend::MaskSource;

    #[test]
    fn a_run_from_before_occluders_reads_as_trained_without_them() {
        let dir = tempfile::tempdir().unwrap();
        write_toml(&dir.path().join(CONFIG), "new", &TrainConfig::default()).unwrap();
        let now = config(dir.path()).unwrap();
        assert_eq!(now, TrainConfig::default());
        assert_eq!(now.paste_mask(), MaskSource::Visible);
        // The same file as a run written before the key existed.
        let text = std::fs::read_to_string(dir.path().join(CONFIG)).unwrap();
        let old: String = text
            .lines()
            .filter(|l| !l.starts_with("occluders"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_ne!(old, text);
        std::fs::write(dir.path().join(CONFIG), old).unwrap();
        let then = config(dir.path()).unwrap();
        assert_eq!(then.augment.occluders, 0.0);
        assert_eq!(then.paste_mask(), MaskSource::Union);
    }

    #[test]
    fn softness_is_reported_against_the_target_and_against_the_face_it_replaced() {
        // The demo's B→A figures: the target's ratio blames the camera change as well, the
        // same-frames ratio does not.
        let report = EvalReport {
            run: "r".into(),
            preset: "lite".into(),
            steps: 1,
            identity: None,
            softness: vec![Softness {
                name: "B->A".into(),
                swapped: 12.98,
                original: 2.07,
                crop_only: Some(1.80),
                reconstructed: Some(4.1),
                target_real: 0.81,
            }],
            people: Vec::new(),
        };
        let row = report
            .markdown()
            .lines()
            .find(|l| l.starts_with("| B->A"))
            .map(str::to_owned)
            .expect("a softness row");
        assert_eq!(
            row,
            "| B->A | 12.98 | 2.07 | 1.80 | 4.10 | 0.81 | 16.02 | 6.27 |"
        );
    }
}
