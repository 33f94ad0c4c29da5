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

/// One train → test cell of the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    pub trained_on: String,
    pub tested_on: String,
    pub real: usize,
    pub fake: usize,
    /// Means over the cell's `seeds` fits, with the standard deviations beside them: on a few
    /// hundred faces the random seed alone moves AUC by several hundredths.
    #[serde(deserialize_with = "super::nan_if_null")]
    pub auc: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub auc_sd: f64,
    /// AUC on the training video's own held-out last frames (in distribution: same camera,
    /// person and scene, frames not trained on), mean and sd over the seeds.
    pub auc_same_video: Option<f64>,
    pub auc_same_video_sd: Option<f64>,
    /// Accuracy at `threshold`, calibrated without the test video.
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
        let (accuracy, accuracy_sd) = mean_sd(fits.iter().map(|c| c.accuracy));
        let (threshold, _) = mean_sd(fits.iter().map(|c| c.threshold as f64));
        let (log_loss, _) = mean_sd(fits.iter().map(|c| c.log_loss));
        let same: Option<Vec<f64>> = fits.iter().map(|c| c.auc_same_video).collect();
        let same = same.map(|v| mean_sd(v.into_iter()));
        Cell {
            auc,
            auc_sd,
            auc_same_video: same.map(|m| m.0),
            auc_same_video_sd: same.map(|m| m.1),
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
    if seeds > 1 {
        format!("{mean:.3} ± {sd:.3}")
    } else {
        format!("{mean:.3}")
    }
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
    /// Fits per cell (seeds `seed`, `seed + 1`, …).
    pub seeds: usize,
    pub split: String,
    pub cells: Vec<Cell>,
    /// What the saved model was trained on (both videos).
    pub final_trained_on: String,
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

    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# Detector {} ({} parameters, {:.1} MFLOP/face), threshold {:.3} ({})\n\n{}\n\n| trained on | tested on | real | fake | AUC, same video | AUC | accuracy | at threshold | log loss |\n|---|---|---|---|---|---|---|---|---|\n",
            self.preset, self.params, self.mflops, self.threshold, self.threshold_from, self.split
        );
        for c in &self.cells {
            s += &format!(
                "| {} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} |\n",
                c.trained_on,
                c.tested_on,
                c.real,
                c.fake,
                match (c.auc_same_video, c.auc_same_video_sd) {
                    (Some(m), Some(sd)) => with_sd(m, sd, c.seeds),
                    _ => "–".into(),
                },
                with_sd(c.auc, c.auc_sd, c.seeds),
                with_sd(c.accuracy, c.accuracy_sd, c.seeds),
                c.threshold,
                c.log_loss
            );
        }
        s += &format!("\nSaved model trained on: {}\n", self.final_trained_on);
        s
    }
}

impl DetectorReport {
    /// The report's AUC cells as bundle metrics.
    pub fn metrics(&self) -> Vec<(String, f64)> {
        self.cells
            .iter()
            .filter(|c| c.auc.is_finite())
            .map(|c| {
                (
                    format!("detector.auc[{} -> {}]", c.trained_on, c.tested_on),
                    c.auc,
                )
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
            tested_on: "swap".into(),
            real: 10,
            fake: 10,
            auc,
            auc_sd: 0.0,
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
