//! `host-trainer train-detector`: the report's cells (train on video A, test on video B, per
//! kind of fake, over several seeds) and the saved model (every video, every kind).

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use model_spec::FakeDetectorSpec;
use tch::Device;

use super::data::{graphic_swaps, samples, Kind, Sample, CALIBRATION_SHARE};
use super::fit::{fit, scores};
use super::metrics;
use super::report::{kinds_name, roc_plot, score_cells};
use crate::artefacts::fake_detector::{self, Cell, DetectorReport, Settings, ROC};
use crate::artefacts::run::Generator;
use crate::error::{AtPath, Error, Result};
use crate::model::fake_detector::FakeDetector;
use crate::person::Person;

pub struct DetectorOptions {
    pub datasets: [PathBuf; 2],
    /// A swap run: adds its swaps and reconstructions as fakes.
    pub run: Option<PathBuf>,
    pub out: PathBuf,
    pub preset: String,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
    /// Fits per report cell, with seeds `seed`, `seed + 1`, ….
    pub seeds: usize,
    /// Score at or above which a face is called fake; `None` calibrates it on held-out frames.
    pub threshold: Option<f32>,
    pub device: Device,
    pub progress: bool,
}

pub fn train_detector(opts: &DetectorOptions) -> Result<DetectorReport> {
    let spec = model_spec::fake_detector::preset(&opts.preset)
        .ok_or_else(|| Error::UnknownDetectorPreset(opts.preset.clone()))?;
    let all = both_videos(opts, &spec)?;
    std::fs::create_dir_all(&opts.out).at("create", &opts.out)?;
    let fake_kinds: Vec<Kind> = Kind::FAKES
        .into_iter()
        .filter(|k| all.iter().any(|s| s.kind == *k))
        .collect();
    // Fakes whose face shows video A's own person first; then swaps, whose face is person B's:
    // tested on video B, that cell shows how much a detector learns the identity instead of
    // the forgery (every real face of B carries the identity it was taught is fake).
    let mut train_sets = vec![vec![Kind::Sbi]];
    for kind in [Kind::Reconstruction, Kind::Swap] {
        if fake_kinds.contains(&kind) {
            train_sets.push(vec![Kind::Sbi, kind]);
        }
    }
    let seeds: Vec<u64> = (0..opts.seeds.max(1) as u64)
        .map(|i| opts.seed + i)
        .collect();
    let fitter = Fitter::new(opts, spec.clone(), train_sets.len() * seeds.len() + 1);
    let mut cells = Vec::new();
    for kinds in &train_sets {
        cells.extend(cells_of(&fitter, &all, kinds, &fake_kinds, &seeds));
    }
    let headline = kinds_name(&train_sets[train_sets.len().min(2) - 1]);
    let shown: Vec<&Cell> = cells.iter().filter(|c| c.trained_on == headline).collect();
    roc_plot(
        &shown,
        &format!("ROC, trained on {headline} of video A, tested on video B"),
        &opts.out.join(ROC),
    )?;

    // The model that ships: every video, every kind of fake; the last block of each video
    // calibrates its threshold.
    let everything: Vec<&Sample> = all.iter().collect();
    fitter.bar.set_message("the saved model, on both videos");
    let (model, threshold) = fitter.fit_and_calibrate(&everything, opts.seed);
    fitter.bar.finish_and_clear();
    let threshold_from = match opts.threshold {
        Some(_) => "given with --threshold".to_owned(),
        None => format!(
            "equal-error point on the last {:.0}% of each video's frames, not trained on",
            100.0 * CALIBRATION_SHARE
        ),
    };
    let settings = Settings {
        preset: opts.preset.clone(),
        threshold,
        steps: opts.steps,
    };
    fake_detector::save(&opts.out, &model, &settings)?;
    let report = DetectorReport {
        preset: opts.preset.clone(),
        params: spec.params(),
        mflops: spec.flops_per_face() as f64 / 1e6,
        threshold,
        threshold_from,
        steps: opts.steps,
        seeds: seeds.len(),
        split: format!("Cells train on video A (person A) and test on video B (person B): no frame, identity or scene is shared. Each cell's threshold is the equal-error point on the last {:.0}% of video A's frames, which that cell does not train on. Each cell is fitted {} times (seeds {}–{}): mean ± standard deviation. Self-blended fakes are made afresh at every training step; the graphics swaps are a generator no cell trains on.", 100.0 * CALIBRATION_SHARE, seeds.len(), seeds[0], seeds[seeds.len() - 1]),
        cells,
        final_trained_on: format!("real + {} of both videos", kinds_name(&fake_kinds)),
    };
    report.write(&opts.out)?;
    Ok(report)
}

/// Every sample of both videos: reals, self-blends, the run's swaps and reconstructions, and
/// graphics swaps of each video with the other's faces.
fn both_videos(opts: &DetectorOptions, spec: &FakeDetectorSpec) -> Result<Vec<Sample>> {
    let generator = match &opts.run {
        Some(run) => Some(Generator::load(run, opts.device)?),
        None => None,
    };
    let mut videos = Vec::new();
    for (person, dataset) in Person::BOTH.into_iter().zip(&opts.datasets) {
        let g = generator.as_ref().map(|g| (g, person));
        videos.push(samples(dataset, person.index(), &spec.crop, g, opts.seed)?);
    }
    // Graphics swaps paste the other video's person in: tested on video B, their faces are
    // video A's reals, which every cell trained on as real, so this cell cannot be won by
    // recognising whose face it is.
    let mut all = Vec::new();
    for video in 0..videos.len() {
        let donors = &videos[1 - video];
        all.extend(graphic_swaps(
            &videos[video],
            donors,
            opts.seed ^ video as u64,
        ));
    }
    all.extend(videos.into_iter().flatten());
    Ok(all)
}

/// One fitted cell per kind of fake for the detectors trained on `kinds` of video A, pooled
/// over `seeds`.
fn cells_of(
    fitter: &Fitter<'_>,
    all: &[Sample],
    kinds: &[Kind],
    fake_kinds: &[Kind],
    seeds: &[u64],
) -> Vec<Cell> {
    let train: Vec<&Sample> = all
        .iter()
        .filter(|s| s.video == 0 && (s.kind == Kind::Real || kinds.contains(&s.kind)))
        .collect();
    let test: Vec<&Sample> = all.iter().filter(|s| s.video == 1).collect();
    let same_video: Vec<&Sample> = all.iter().filter(|s| s.video == 0 && s.late).collect();
    let name = kinds_name(kinds);
    fitter.bar.set_message(format!("cell trained on {name}"));
    let fits: Vec<Vec<Cell>> = seeds
        .iter()
        .map(|&seed| {
            let (model, threshold) = fitter.fit_and_calibrate(&train, seed);
            let same = score_cells(&model, &same_video, fake_kinds, &name, threshold);
            let mut cells = score_cells(&model, &test, fake_kinds, &name, threshold);
            for (c, s) in cells.iter_mut().zip(same) {
                c.auc_same_video = Some(s.auc);
                c.auc_same_video_sd = Some(0.0);
            }
            cells
        })
        .collect();
    (0..fake_kinds.len())
        .map(|i| Cell::pool(&fits.iter().map(|f| f[i].clone()).collect::<Vec<_>>()))
        .collect()
}

/// Fits detectors with the run's settings, and counts them on a progress bar.
struct Fitter<'a> {
    opts: &'a DetectorOptions,
    spec: FakeDetectorSpec,
    bar: ProgressBar,
}

impl<'a> Fitter<'a> {
    fn new(opts: &'a DetectorOptions, spec: FakeDetectorSpec, fits: usize) -> Self {
        let bar = if opts.progress {
            ProgressBar::new(fits as u64)
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} fits (eta {eta}) {msg}",
        ) {
            bar.set_style(style);
        }
        Self { opts, spec, bar }
    }

    /// Fits on the early frames of `samples`; the late ones calibrate the verdict threshold
    /// (their equal-error point) unless `--threshold` gave one.
    fn fit_and_calibrate(&self, samples: &[&Sample], seed: u64) -> (FakeDetector, f32) {
        let o = self.opts;
        let (late, early): (Vec<&Sample>, Vec<&Sample>) = samples.iter().partition(|s| s.late);
        let model = fit(&self.spec, &early, o.steps, o.batch, o.lr, seed, o.device);
        self.bar.inc(1);
        let scored: Vec<(f32, bool)> = scores(&model, &late)
            .into_iter()
            .zip(&late)
            .map(|(p, s)| (p, s.kind.is_fake()))
            .collect();
        let threshold = o
            .threshold
            .unwrap_or_else(|| metrics::eer_threshold(&scored));
        (model, threshold)
    }
}
