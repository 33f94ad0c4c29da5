//! A fake detector's folder: written by `train-detector`, read by `eval-detector` and
//! `export`.
//!
//! ```text
//! detector/
//!   detector.safetensors     the saved model's weights (under `detector/…`)
//!   detector.toml            its preset, verdict threshold and steps ([`Settings`])
//!   eval_detector.md/.json   the report ([`DetectorReport`]), roc.png
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use shared_proto::BlurCheck;
use tch::Device;

use super::{read_json, read_toml, write_json, write_toml};
use crate::error::{AtPath, Error, Result};
use crate::model::fake_detector::FakeDetector;

pub const WEIGHTS: &str = "detector.safetensors";
pub const SETTINGS: &str = "detector.toml";
pub const REPORT_JSON: &str = "eval_detector.json";
pub const REPORT_MD: &str = "eval_detector.md";
pub const ROC: &str = "roc.png";

/// What `detector.toml` records next to the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub preset: String,
    pub threshold: f32,
    pub steps: usize,
    /// Weight of the blending-boundary target it trained with (0: labels alone).
    #[serde(default)]
    pub boundary_weight: f64,
    /// The blur check fitted on its real training faces; scores combine with it.
    #[serde(default)]
    pub blur_check: Option<BlurCheck>,
}

/// Writes the model and its settings into `dir`.
pub fn save(dir: &Path, model: &FakeDetector, settings: &Settings) -> Result<()> {
    let weights = dir.join(WEIGHTS);
    model.vars.save(&weights).at("write", &weights)?;
    let note = "Detector trained by host-trainer train-detector.";
    write_toml(&dir.join(SETTINGS), note, settings)
}

/// Loads the detector saved in `dir`.
pub fn load(dir: &Path, device: Device) -> Result<(FakeDetector, Settings)> {
    let settings: Settings = read_toml(&dir.join(SETTINGS))?;
    let spec = model_spec::fake_detector::preset(&settings.preset)
        .ok_or_else(|| Error::UnknownDetectorPreset(settings.preset.clone()))?;
    let mut model = FakeDetector::new(&spec, device);
    let weights = dir.join(WEIGHTS);
    model.vars.load(&weights).at("read", &weights)?;
    Ok((model, settings))
}

/// One train → test cell of the report: detectors trained on `trained_on` of every identity but
/// `held_out`, tested on `held_out`'s real faces against its fakes of one kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    pub trained_on: String,
    /// The identity (= video, = camera) tested on, which the cell never trained on.
    pub held_out: String,
    pub tested_on: String,
    pub real: usize,
    pub fake: usize,
    /// Means over the cell's `seeds` fits, with the standard deviations beside them: on a few
    /// hundred faces the random seed alone moves AUC by several hundredths.
    #[serde(deserialize_with = "super::nan_if_null")]
    pub auc: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub auc_sd: f64,
    /// Clip level: each clip's score is the mean of its frames' ([`CLIP_FRAMES`] source frames
    /// per clip), as SBI and DeepfakeBench report video AUC.
    ///
    /// [`CLIP_FRAMES`]: crate::stages::fake_detector::data::CLIP_FRAMES
    #[serde(deserialize_with = "super::nan_if_null")]
    pub clip_auc: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub clip_auc_sd: f64,
    pub clips_real: usize,
    pub clips_fake: usize,
    /// AUC on the training identities' own held-out last frames (in distribution: cameras and
    /// people seen in training, frames not), mean and sd over the seeds.
    pub auc_same_video: Option<f64>,
    pub auc_same_video_sd: Option<f64>,
    /// Average precision and equal-error rate (frame level), means over the seeds.
    #[serde(deserialize_with = "super::nan_if_null")]
    pub ap: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub eer: f64,
    /// Accuracy at `threshold`, calibrated without the held-out identity.
    #[serde(deserialize_with = "super::nan_if_null")]
    pub accuracy: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub accuracy_sd: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub threshold: f32,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub log_loss: f64,
    pub seeds: usize,
    /// ROC of the first fit.
    #[serde(skip)]
    pub roc: Vec<(f64, f64)>,
}

fn mean_sd(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count().max(1) as f64;
    let mean = values.clone().sum::<f64>() / n;
    let var = values.map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

impl Cell {
    /// One cell from the same cell fitted with different seeds.
    pub fn pool(fits: &[Cell]) -> Cell {
        let (auc, auc_sd) = mean_sd(fits.iter().map(|c| c.auc));
        let (clip_auc, clip_auc_sd) = mean_sd(fits.iter().map(|c| c.clip_auc));
        let (accuracy, accuracy_sd) = mean_sd(fits.iter().map(|c| c.accuracy));
        let (threshold, _) = mean_sd(fits.iter().map(|c| c.threshold as f64));
        let (log_loss, _) = mean_sd(fits.iter().map(|c| c.log_loss));
        let (ap, _) = mean_sd(fits.iter().map(|c| c.ap));
        let (eer, _) = mean_sd(fits.iter().map(|c| c.eer));
        let same: Option<Vec<f64>> = fits.iter().map(|c| c.auc_same_video).collect();
        let same = same.map(|v| mean_sd(v.into_iter()));
        Cell {
            auc,
            auc_sd,
            clip_auc,
            clip_auc_sd,
            auc_same_video: same.map(|m| m.0),
            auc_same_video_sd: same.map(|m| m.1),
            ap,
            eer,
            accuracy,
            accuracy_sd,
            threshold: threshold as f32,
            log_loss,
            seeds: fits.iter().map(|c| c.seeds).sum(),
            ..fits[0].clone()
        }
    }
}

/// `mean` or `mean ± sd` when there was more than one fit.
fn with_sd(mean: f64, sd: f64, seeds: usize) -> String {
    if !mean.is_finite() {
        "–".into()
    } else if seeds > 1 {
        format!("{mean:.3} ± {sd:.3}")
    } else {
        format!("{mean:.3}")
    }
}

/// The training-set sharpness check: the over-blur cue (sharpness around the face ÷ of the
/// face) over crops as training batches draw them, per kind. Real and fake should not differ on
/// average, or a detector can learn sharpness instead of blending.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sharpness {
    pub kind: String,
    pub crops: usize,
    /// Geometric mean: the cue is a ratio, so 2× and ½ cancel, and one crop with no texture
    /// left inside its face (a ratio in the thousands) cannot swamp the average.
    #[serde(alias = "over_blur_mean")]
    pub over_blur_geomean: f64,
    pub over_blur_median: f64,
}

/// Each hand-made cue's own AUC on a held-out identity (the cue as the score), per kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CueAuc {
    pub held_out: String,
    pub tested_on: String,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub over_blur: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub edge_colour: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub double_edges: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub mouth_blur: f64,
    /// The texture ratios (`facekit::forensics::Texture`): fine detail, edges, noise, colour noise.
    #[serde(default = "nan", deserialize_with = "super::nan_if_null")]
    pub detail: f64,
    #[serde(default = "nan", deserialize_with = "super::nan_if_null")]
    pub edges: f64,
    #[serde(default = "nan", deserialize_with = "super::nan_if_null")]
    pub noise: f64,
    #[serde(default = "nan", deserialize_with = "super::nan_if_null")]
    pub colour_noise: f64,
    /// Spreads from the trained real faces' over-blur median (the blur check's), either way.
    #[serde(default = "nan", deserialize_with = "super::nan_if_null")]
    pub sharpness_mismatch: f64,
    /// The camera check a booth calibrated on its own camera fits (`shared_proto::CameraCheck`
    /// on the held-out identity's own early real faces), on the cues alone: distance from
    /// them, late faces only.
    #[serde(default = "nan", deserialize_with = "super::nan_if_null")]
    pub camera_check: f64,
}

fn nan() -> f64 {
    f64::NAN
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DetectorReport {
    pub preset: String,
    pub params: usize,
    pub mflops: f64,
    /// The saved model's threshold and how it was chosen.
    pub threshold: f32,
    pub threshold_from: String,
    pub steps: usize,
    /// Weight of the blending-boundary target in every fit (0: labels alone).
    #[serde(default)]
    pub boundary_weight: f64,
    /// Fits per cell (seeds `seed`, `seed + 1`, …).
    pub seeds: usize,
    pub split: String,
    /// The identities (one video, one camera each) in the order of the folds.
    #[serde(default)]
    pub identities: Vec<String>,
    #[serde(default)]
    pub sharpness: Vec<Sharpness>,
    pub cells: Vec<Cell>,
    #[serde(default)]
    pub cues: Vec<CueAuc>,
    /// What the saved model was trained on.
    pub final_trained_on: String,
}

/// Mean and minimum of finite values; `NaN`s when there are none.
fn mean_min(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    (
        v.iter().sum::<f64>() / v.len() as f64,
        v.iter().copied().fold(f64::INFINITY, f64::min),
    )
}

impl DetectorReport {
    /// `eval_detector.md` and `eval_detector.json` in `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let md = dir.join(REPORT_MD);
        std::fs::write(&md, self.markdown()).at("write", &md)?;
        write_json(&dir.join(REPORT_JSON), self)
    }

    /// The report in `dir`, `None` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(REPORT_JSON);
        if !path.is_file() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }

    /// `(trained_on, tested_on)` pairs in report order.
    fn cell_kinds(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for c in &self.cells {
            let key = (c.trained_on.clone(), c.tested_on.clone());
            if !out.contains(&key) {
                out.push(key);
            }
        }
        out
    }

    /// Per `(trained_on, tested_on)`: frame AUC mean and minimum over the held-out identities,
    /// and clip AUC mean.
    pub fn summary(&self) -> Vec<(String, String, f64, f64, f64)> {
        self.cell_kinds()
            .into_iter()
            .map(|(trained, tested)| {
                let of = || {
                    self.cells
                        .iter()
                        .filter(|c| c.trained_on == trained && c.tested_on == tested)
                };
                let (frame, worst) = mean_min(of().map(|c| c.auc));
                let (clip, _) = mean_min(of().map(|c| c.clip_auc));
                (trained.clone(), tested.clone(), frame, worst, clip)
            })
            .collect()
    }

    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# Detector {} ({} parameters, {:.1} MFLOP/face), threshold {:.3} ({})\n\n{}\n\n",
            self.preset, self.params, self.mflops, self.threshold, self.threshold_from, self.split
        );
        if self.boundary_weight > 0.0 {
            s += &format!("Each fit also learnt where faces were blended (the self-blends' boundary map, Face X-ray's target) at weight {}; the saved network scores without that head.\n\n", self.boundary_weight);
        }
        if !self.identities.is_empty() {
            s += &format!("Identities: {}.\n\n", self.identities.join(", "));
        }
        // One identity: `eval-detector` on a saved model, whose training is not in this report.
        let held_out_report = self.identities.len() > 1;
        let unseen = |trained: &str, tested: &str| {
            if !held_out_report || trained.split(" + ").any(|k| k == tested) {
                ""
            } else {
                " (unseen)"
            }
        };
        s += if held_out_report {
            "## Summary: AUC on held-out identities (mean over them, worst in brackets)"
        } else {
            "## Summary: AUC on the dataset tested (worst in brackets: the same)"
        };
        s += "\n\n| trained on | tested on | frame AUC | clip AUC |\n|---|---|---|---|\n";
        for (trained, tested, frame, worst, clip) in self.summary() {
            s += &format!(
                "| {trained} | {tested}{} | {frame:.3} ({worst:.3}) | {clip:.3} |\n",
                unseen(&trained, &tested)
            );
        }
        if !self.sharpness.is_empty() {
            s += "\n## Training-set sharpness check\n\nOver-blur cue (sharpness around the face ÷ of the face; above 1 = face softer than its surround) on crops as the saved model's training batches draw them, after camera/codec variation. Real and fake should match on average.\n\n| kind | crops | geometric mean | median |\n|---|---|---|---|\n";
            for r in &self.sharpness {
                s += &format!(
                    "| {} | {} | {:.2} | {:.2} |\n",
                    r.kind, r.crops, r.over_blur_geomean, r.over_blur_median
                );
            }
        }
        s += "\n## Every cell (mean ± sd over seeds)\n\n| trained on | held out | tested on | real | fake | frame AUC | clip AUC (clips) | AP | EER | accuracy | at threshold | AUC, training identities' late frames |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
        for c in &self.cells {
            s += &format!(
                "| {} | {} | {} | {} | {} | {} | {} ({}/{}) | {:.3} | {:.3} | {} | {:.3} | {} |\n",
                c.trained_on,
                c.held_out,
                c.tested_on,
                c.real,
                c.fake,
                with_sd(c.auc, c.auc_sd, c.seeds),
                with_sd(c.clip_auc, c.clip_auc_sd, c.seeds),
                c.clips_real,
                c.clips_fake,
                c.ap,
                c.eer,
                with_sd(c.accuracy, c.accuracy_sd, c.seeds),
                c.threshold,
                match (c.auc_same_video, c.auc_same_video_sd) {
                    (Some(m), Some(sd)) => with_sd(m, sd, c.seeds),
                    _ => "–".into(),
                },
            );
        }
        if !self.cues.is_empty() {
            s += "\n## The hand-made cues alone (each cue as the score; AUC on held-out identities)\n\nThe texture columns (detail, edges, noise, colour noise) are the surround's ÷ the face's, as over-blur. The sharpness mismatch is over-blur's distance, either way, from the training identities' real faces; the camera check is the Mahalanobis distance of all eight cues (their logarithms) from the held-out camera's own early real faces, as a booth's calibration fits it, scored on its late faces only; in the booth (the camera-calibration cells above) the detector's score is a ninth feature of it.\n\n| held out | tested on | over-blur | edge colour | double edges | mouth blur | detail | edges | noise | colour noise | sharpness mismatch (either way) | **camera check** (calibrated on the camera's own early faces) |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
            for c in &self.cues {
                s += &format!(
                    "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
                    c.held_out,
                    c.tested_on,
                    c.over_blur,
                    c.edge_colour,
                    c.double_edges,
                    c.mouth_blur,
                    c.detail,
                    c.edges,
                    c.noise,
                    c.colour_noise,
                    c.sharpness_mismatch,
                    c.camera_check
                );
            }
        }
        s += &format!("\nSaved model trained on: {}\n", self.final_trained_on);
        s
    }
}

impl DetectorReport {
    /// The report's summary AUCs (mean over held-out identities) as bundle metrics.
    pub fn metrics(&self) -> Vec<(String, f64)> {
        self.summary()
            .into_iter()
            .filter(|r| r.2.is_finite())
            .map(|(trained, tested, frame, _, _)| {
                (format!("detector.auc[{trained} -> {tested}]"), frame)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_cells_carry_mean_and_sample_standard_deviation() {
        let cell = |auc: f64, same: f64| Cell {
            trained_on: "SBI".into(),
            held_out: "B".into(),
            tested_on: "swap".into(),
            real: 10,
            fake: 10,
            auc,
            auc_sd: 0.0,
            clip_auc: auc,
            clip_auc_sd: 0.0,
            clips_real: 2,
            clips_fake: 2,
            ap: 0.9,
            eer: 0.1,
            auc_same_video: Some(same),
            auc_same_video_sd: Some(0.0),
            accuracy: 0.5,
            accuracy_sd: 0.0,
            threshold: 0.4,
            log_loss: 1.0,
            seeds: 1,
            roc: vec![],
        };
        let pooled = Cell::pool(&[cell(0.9, 1.0), cell(1.0, 1.0), cell(0.95, 0.97)]);
        assert_eq!(pooled.seeds, 3);
        assert!((pooled.auc - 0.95).abs() < 1e-12);
        assert!((pooled.auc_sd - 0.05).abs() < 1e-12, "{}", pooled.auc_sd);
        assert!((pooled.auc_same_video.unwrap() - 0.99).abs() < 1e-12);
        assert_eq!(pooled.accuracy_sd, 0.0);
    }
}
