//! `host-trainer eval-detector`: a saved detector on one dataset's video, per kind of fake.

use std::path::{Path, PathBuf};

use tch::Device;

use super::blur::{self, BLUR_CHECK};
use super::data::{graphic_swaps, samples, Kind, Sample};
use super::fit::scores;
use super::report::{cue_aucs, roc_plot, score_cells};
use crate::artefacts::fake_detector::{self, DetectorReport, ROC, SETTINGS};
use crate::artefacts::run::Generator;
use crate::error::{AtPath, Result};
use crate::person::Person;

pub struct EvalOptions {
    pub detector: PathBuf,
    pub dataset: PathBuf,
    /// Which person of `run` this dataset shows (for its swaps and reconstructions).
    pub person: Person,
    pub run: Option<PathBuf>,
    /// Another person's dataset whose real faces the graphics swaps paste in.
    pub donors: Option<PathBuf>,
    pub out: PathBuf,
    /// Where to write every scored crop and `samples.csv` (see [`save_crops`]).
    pub save_crops: Option<PathBuf>,
    pub seed: u64,
    pub device: Device,
}

pub fn evaluate(opts: &EvalOptions) -> Result<DetectorReport> {
    let (model, settings) = fake_detector::load(&opts.detector, opts.device)?;
    let generator = match &opts.run {
        Some(run) => Some(Generator::load(run, opts.device)?),
        None => None,
    };
    let g = generator.as_ref().map(|g| (g, opts.person));
    let mut all = samples(&opts.dataset, 0, &model.spec.crop, g, 1, opts.seed)?;
    if let Some(donors) = &opts.donors {
        let donors = samples(donors, 1, &model.spec.crop, None, 0, opts.seed)?;
        let donors: Vec<&Sample> = donors.iter().collect();
        let graphic = graphic_swaps(&all, &donors, opts.seed);
        all.extend(graphic);
    }
    let fake_kinds: Vec<Kind> = Kind::FAKES
        .into_iter()
        .filter(|k| all.iter().any(|s| s.kind == *k))
        .collect();
    let test: Vec<&Sample> = all.iter().collect();
    let name = opts
        .dataset
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| opts.dataset.display().to_string());
    let network = scores(&model, &test);
    // Once for the blur check and the saved crops' list alike.
    let over_blur = blur::over_blur(&test);
    if let Some(dir) = &opts.save_crops {
        save_crops(dir, &test, &network, &over_blur)?;
    }
    let trained_on = format!("{} (saved model)", opts.detector.display());
    let mut cells = score_cells(
        &network,
        &test,
        &fake_kinds,
        &trained_on,
        &name,
        settings.threshold,
    );
    if let Some(check) = &settings.blur_check {
        let combined = blur::checked(check, &network, &over_blur, settings.threshold);
        cells.extend(score_cells(
            &combined,
            &test,
            &fake_kinds,
            &format!("{trained_on} + {BLUR_CHECK}"),
            &name,
            settings.threshold,
        ));
    }
    let cues = cue_aucs(&test, &fake_kinds, &name, settings.blur_check.as_ref());
    std::fs::create_dir_all(&opts.out).at("create", &opts.out)?;
    roc_plot(
        &cells.iter().collect::<Vec<_>>(),
        &trained_on,
        &format!("ROC on {}", opts.dataset.display()),
        &opts.out.join(ROC),
    )?;
    let report = DetectorReport {
        preset: settings.preset.clone(),
        params: model.spec.params(),
        mflops: model.spec.flops_per_face() as f64 / 1e6,
        threshold: settings.threshold,
        threshold_from: format!("recorded in {}", opts.detector.join(SETTINGS).display()),
        steps: settings.steps,
        boundary_weight: settings.boundary_weight,
        seeds: 1,
        split: format!(
            "Every face of {} (its fakes made from its own frames).",
            opts.dataset.display()
        ),
        identities: vec![name],
        sharpness: Vec::new(),
        cells,
        cues,
        final_trained_on: "see the detector's eval_detector.md".into(),
    };
    report.write(&opts.out)?;
    Ok(report)
}

/// Every scored crop as `<index>_<kind>.png` in `dir`, and `samples.csv` with one line per crop
/// (file, kind, late, network score, over-blur): what the detector saw, for a person to look
/// at or another tool to study.
fn save_crops(dir: &Path, test: &[&Sample], network: &[f32], over_blur: &[f32]) -> Result<()> {
    std::fs::create_dir_all(dir).at("create", dir)?;
    let mut csv = String::from("file,kind,late,network,over_blur\n");
    for (i, ((s, score), blur)) in test.iter().zip(network).zip(over_blur).enumerate() {
        let file = format!("{i:05}_{}.png", s.kind.name().replace(' ', "_"));
        let path = dir.join(&file);
        s.crop.save(&path).at("write", &path)?;
        csv += &format!("{file},{},{},{score},{blur}\n", s.kind.name(), s.late);
    }
    let path = dir.join("samples.csv");
    std::fs::write(&path, csv).at("write", &path)
}
