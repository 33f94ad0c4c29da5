//! `host-trainer train-detector`: the report's cells (leave one identity out: train on every
//! other video, test on the held-out one, per kind of fake, over several seeds) and the saved
//! model (every video).

use std::path::PathBuf;

use facekit::forensics::Cues;
use indicatif::{ProgressBar, ProgressStyle};
use model_spec::FakeDetectorSpec;

use super::batches::BatchDrawer;
use super::blur::{self, BLUR_CHECK};
use super::camera::{self, CAMERA_CHECK};
use super::data::{self, graphic_swaps, samples, Kind, Sample, CALIBRATION_SHARE, CLIP_FRAMES};
use super::fit::{fit, scores, FitOptions};
use super::metrics;
use super::report::{cue_aucs, kinds_name, roc_plot, score_cells};
use crate::artefacts::fake_detector::{self, Cell, DetectorReport, Settings, Sharpness, ROC};
use crate::artefacts::run::Generator;
use crate::error::{AtPath, Error, Result};
use crate::model::fake_detector::FakeDetector;
use crate::person::Person;

pub struct DetectorOptions {
    /// One dataset per identity (one video, one camera each). With `run`, the first two are its
    /// persons A and B.
    pub datasets: Vec<PathBuf>,
    /// A swap run: its swaps and reconstructions of A and B join the test fakes.
    pub run: Option<PathBuf>,
    pub out: PathBuf,
    pub preset: String,
    /// How every fit trains (steps, batch, learning rate, boundary target, device).
    pub fit: FitOptions,
    pub seed: u64,
    /// Fits per report cell, with seeds `seed`, `seed + 1`, ….
    pub seeds: usize,
    /// The identities the report holds out, by name (empty: every one). Fewer held out makes a
    /// quick experiment; every identity still trains the other cells and the saved model.
    pub hold_out: Vec<String>,
    /// Score at or above which a face is called fake; `None` calibrates it on held-out frames.
    pub threshold: Option<f32>,
    pub progress: bool,
}

/// The kinds of fake detectors train on: made from real faces alone, so they need no
/// generator and teach blending rather than one network's fingerprint. The run's swaps and
/// reconstructions are only ever tested on (the unseen-generator cells).
const TRAINED_KINDS: [Kind; 2] = [Kind::Sbi, Kind::Graphic];

pub fn train_detector(opts: &DetectorOptions) -> Result<DetectorReport> {
    let spec = model_spec::fake_detector::preset(&opts.preset)
        .ok_or_else(|| Error::UnknownDetectorPreset(opts.preset.clone()))?;
    if opts.datasets.len() < 2 {
        return Err(Error::TooFewIdentities(opts.datasets.len()));
    }
    let names = identity_names(&opts.datasets);
    let held_out = held_out_indices(&names, &opts.hold_out)?;
    let all = every_video(opts, &spec)?;
    std::fs::create_dir_all(&opts.out).at("create", &opts.out)?;
    let fake_kinds: Vec<Kind> = Kind::FAKES
        .into_iter()
        .filter(|k| all.iter().any(|s| s.kind == *k))
        .collect();
    // SBI alone leaves every other kind unseen; adding graphics swaps needs a third identity,
    // or every training swap would paste in the held-out person's face.
    let mut train_sets = vec![vec![Kind::Sbi]];
    if names.len() >= 3 && fake_kinds.contains(&Kind::Graphic) {
        train_sets.push(vec![Kind::Sbi, Kind::Graphic]);
    }
    let seeds: Vec<u64> = (0..opts.seeds.max(1) as u64)
        .map(|i| opts.seed + i)
        .collect();
    let fitter = Fitter::new(
        opts,
        spec.clone(),
        train_sets.len() * held_out.len() * seeds.len() + 1,
    );
    let mut cells = Vec::new();
    for kinds in &train_sets {
        for &h in &held_out {
            cells.extend(cells_of(&fitter, &all, kinds, h, &names, &seeds));
        }
    }
    let cues = held_out
        .iter()
        .flat_map(|&h| {
            let test: Vec<&Sample> = all.iter().filter(|s| s.video == h).collect();
            // The check a cell fits on the other identities' real faces.
            let others: Vec<&Sample> = all.iter().filter(|s| s.video != h).collect();
            let check = blur::fit_check(&others);
            cue_aucs(&test, &kinds_in(&test), &names[h], check.as_ref())
        })
        .collect();
    let headline = kinds_name(&train_sets[train_sets.len() - 1]);
    // B when it is held out (the demo's target), else the first identity held out.
    let shown_identity = &names[*held_out.iter().find(|&&h| h == 1).unwrap_or(&held_out[0])];
    // The network alone beside what the booth decides with, once calibrated.
    let booth = format!("{headline} + {BLUR_CHECK} + {CAMERA_CHECK}");
    let shown: Vec<&Cell> = cells
        .iter()
        .filter(|c| {
            (c.trained_on == headline || c.trained_on == booth) && &c.held_out == shown_identity
        })
        .collect();
    roc_plot(
        &shown,
        &headline,
        &format!("ROC on {shown_identity}, trained on {headline} of the other identities"),
        &opts.out.join(ROC),
    )?;

    // The model that ships: every video, the trained kinds; the last block of each video
    // calibrates its threshold.
    let final_kinds: Vec<Kind> = TRAINED_KINDS
        .into_iter()
        .filter(|k| fake_kinds.contains(k))
        .collect();
    let everything: Vec<&Sample> = all
        .iter()
        .filter(|s| s.kind == Kind::Real || final_kinds.contains(&s.kind))
        .collect();
    fitter.bar.set_message("the saved model, on every video");
    let (model, threshold) = fitter.fit_and_calibrate(&everything, opts.seed);
    let blur_check = blur::fit_check(&everything);
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
        steps: opts.fit.steps,
        boundary_weight: opts.fit.boundary_weight,
        blur_check,
    };
    fake_detector::save(&opts.out, &model, &settings)?;
    let report = DetectorReport {
        preset: opts.preset.clone(),
        params: spec.params(),
        mflops: spec.flops_per_face() as f64 / 1e6,
        threshold,
        threshold_from,
        steps: opts.fit.steps,
        boundary_weight: opts.fit.boundary_weight,
        seeds: seeds.len(),
        split: format!("Leave one identity out: each identity (one person, one video, one camera; or a folder of photos of many people and cameras, held out as one) is held out in turn; its cells train on the other identities only and test on all of its frames, so no face, person, scene or camera of the test was trained on. Photos are clips of their own, and the last {0:.0}% of a folder's photos stand in for a video's late frames. Graphics swaps in training never paste in the held-out person. Each cell's threshold is the equal-error point on the last {0:.0}% of the training identities' frames, which it does not train on. Each cell is fitted {1} times (seeds {2}–{3}): mean ± standard deviation. Self-blended fakes are made afresh at every training step; the run's swaps and reconstructions are a generator no detector trains on (unseen). Clips are runs of {CLIP_FRAMES} source frames scored by their mean.{4}", 100.0 * CALIBRATION_SHARE, seeds.len(), seeds[0], seeds[seeds.len() - 1], only_some_held_out(&names, &held_out)),
        identities: names.clone(),
        sharpness: sharpness_check(&everything, opts.fit.batch, opts.seed),
        cells,
        cues,
        final_trained_on: format!(
            "real + {} of every identity ({})",
            kinds_name(&final_kinds),
            names.join(", ")
        ),
    };
    report.write(&opts.out)?;
    Ok(report)
}

/// Each dataset's folder name, numbered where two are alike.
fn identity_names(datasets: &[PathBuf]) -> Vec<String> {
    let base: Vec<String> = datasets
        .iter()
        .map(|d| {
            d.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| d.display().to_string())
        })
        .collect();
    base.iter()
        .enumerate()
        .map(|(i, n)| {
            if base.iter().filter(|m| *m == n).count() > 1 {
                format!("{n}#{}", i + 1)
            } else {
                n.clone()
            }
        })
        .collect()
}

/// The report's note when `--hold-out` left some identities untested (empty otherwise).
fn only_some_held_out(names: &[String], held_out: &[usize]) -> String {
    if held_out.len() == names.len() {
        return String::new();
    }
    let named: Vec<&str> = held_out.iter().map(|&h| names[h].as_str()).collect();
    format!(
        " Only {} held out here (--hold-out): the other identities train every cell and are never tested.",
        named.join(", ")
    )
}

/// The indices of the identities named in `hold_out` (every identity when it is empty).
fn held_out_indices(names: &[String], hold_out: &[String]) -> Result<Vec<usize>> {
    if hold_out.is_empty() {
        return Ok((0..names.len()).collect());
    }
    let mut at: Vec<usize> = hold_out
        .iter()
        .map(|h| {
            names
                .iter()
                .position(|n| n == h)
                .ok_or_else(|| Error::UnknownIdentity {
                    name: h.clone(),
                    known: names.join(", "),
                })
        })
        .collect::<Result<_>>()?;
    at.sort_unstable();
    at.dedup();
    Ok(at)
}

/// Every sample of every video: reals, self-blends, the run's swaps and reconstructions (first
/// two videos), and graphics swaps of each video with the other videos' faces.
fn every_video(opts: &DetectorOptions, spec: &FakeDetectorSpec) -> Result<Vec<Sample>> {
    let generator = match &opts.run {
        Some(run) => Some(Generator::load(run, opts.fit.device)?),
        None => None,
    };
    let mut all = Vec::new();
    for (video, dataset) in opts.datasets.iter().enumerate() {
        let g = generator.as_ref().zip(Person::BOTH.get(video).copied());
        all.extend(samples(
            dataset,
            video,
            &spec.crop,
            g,
            1 - video.min(1),
            opts.seed,
        )?);
    }
    let donors: Vec<&Sample> = all.iter().filter(|s| s.kind == Kind::Real).collect();
    let graphic = graphic_swaps(&all, &donors, opts.seed);
    all.extend(graphic);
    Ok(all)
}

/// The fake kinds present in `samples`, in report order.
fn kinds_in(samples: &[&Sample]) -> Vec<Kind> {
    Kind::FAKES
        .into_iter()
        .filter(|k| samples.iter().any(|s| s.kind == *k))
        .collect()
}

/// One fitted cell per kind of fake of `held_out`, for the detectors trained on `kinds` of the
/// other identities, pooled over `seeds`.
fn cells_of(
    fitter: &Fitter<'_>,
    all: &[Sample],
    kinds: &[Kind],
    held_out: usize,
    names: &[String],
    seeds: &[u64],
) -> Vec<Cell> {
    let seen = |s: &&Sample| s.video != held_out && s.donor != Some(held_out);
    let train: Vec<&Sample> = all
        .iter()
        .filter(seen)
        .filter(|s| s.kind == Kind::Real || kinds.contains(&s.kind))
        .collect();
    let test: Vec<&Sample> = all.iter().filter(|s| s.video == held_out).collect();
    let test_kinds = kinds_in(&test);
    let same_video: Vec<&Sample> = all.iter().filter(seen).filter(|s| s.late).collect();
    let name = kinds_name(kinds);
    fitter
        .bar
        .set_message(format!("trained on {name}, {} held out", names[held_out]));
    // The blur check needs no network: one per cell, from the same training faces.
    let check = blur::fit_check(&train);
    // Each face's cues once: the blur check reads over-blur, the camera check all of them.
    let (test_cues, same_cues) = (data::cues(&test), data::cues(&same_video));
    let over_blur = |cues: &[Cues]| cues.iter().map(|c| c.over_blur).collect::<Vec<f32>>();
    let (test_blur, same_blur) = (over_blur(&test_cues), over_blur(&same_cues));
    let fits: Vec<Vec<Cell>> = seeds
        .iter()
        .map(|&seed| {
            let (model, threshold) = fitter.fit_and_calibrate(&train, seed);
            let (test_scores, same_scores) = (scores(&model, &test), scores(&model, &same_video));
            let cells_of_samples = |test: &[&Sample],
                                    test_scores: &[f32],
                                    same_video: &[&Sample],
                                    same_scores: &[f32],
                                    trained_on: &str| {
                let same = score_cells(
                    same_scores,
                    same_video,
                    &test_kinds,
                    trained_on,
                    "",
                    threshold,
                );
                let mut cells = score_cells(
                    test_scores,
                    test,
                    &test_kinds,
                    trained_on,
                    &names[held_out],
                    threshold,
                );
                for (c, s) in cells.iter_mut().zip(same) {
                    c.auc_same_video = Some(s.auc);
                    c.auc_same_video_sd = Some(0.0);
                }
                cells
            };
            let cells_of_scores = |test_scores: &[f32], same_scores: &[f32], trained_on: &str| {
                cells_of_samples(&test, test_scores, &same_video, same_scores, trained_on)
            };
            let mut cells = cells_of_scores(&test_scores, &same_scores, &name);
            if let Some(check) = &check {
                let checked_test = blur::checked(check, &test_scores, &test_blur, threshold);
                let checked_same = blur::checked(check, &same_scores, &same_blur, threshold);
                cells.extend(cells_of_scores(
                    &checked_test,
                    &checked_same,
                    &format!("{name} + {BLUR_CHECK}"),
                ));
                // The booth after its camera calibration: late faces only, each camera's
                // check (its cues and these scores) from its own early real faces.
                let (test_late, test_cam) =
                    camera::calibrated(&test, &test_cues, &checked_test, threshold);
                let (same_late, same_cam) =
                    camera::calibrated(&same_video, &same_cues, &checked_same, threshold);
                fn pick<'s>(of: &[&'s Sample], at: &[usize]) -> Vec<&'s Sample> {
                    at.iter().map(|&i| of[i]).collect()
                }
                cells.extend(cells_of_samples(
                    &pick(&test, &test_late),
                    &test_cam,
                    &pick(&same_video, &same_late),
                    &same_cam,
                    &format!("{name} + {BLUR_CHECK} + {CAMERA_CHECK}"),
                ));
            }
            cells
        })
        .collect();
    (0..fits[0].len())
        .map(|i| Cell::pool(&fits.iter().map(|f| f[i].clone()).collect::<Vec<_>>()))
        .collect()
}

/// The over-blur cue over crops as training batches draw them (after camera/codec
/// variation), per kind.
fn sharpness_check(train: &[&Sample], batch: usize, seed: u64) -> Vec<Sharpness> {
    let mut drawer = BatchDrawer::new(train, batch.max(16), seed);
    let mut by_kind: Vec<(Kind, Vec<f64>)> = Vec::new();
    while by_kind.iter().map(|k| k.1.len()).sum::<usize>() < 640 {
        let b = drawer.draw();
        for ((crop, kind), lm) in b.crops.iter().zip(&b.kinds).zip(&b.landmarks) {
            let v = facekit::forensics::cues(crop, lm).over_blur as f64;
            match by_kind.iter_mut().find(|k| k.0 == *kind) {
                Some(k) => k.1.push(v),
                None => by_kind.push((*kind, vec![v])),
            }
        }
    }
    by_kind
        .into_iter()
        .map(|(kind, mut v)| {
            v.sort_by(f64::total_cmp);
            Sharpness {
                kind: kind.name().into(),
                crops: v.len(),
                over_blur_geomean: (v.iter().map(|x| x.max(1e-6).ln()).sum::<f64>()
                    / v.len() as f64)
                    .exp(),
                over_blur_median: v[v.len() / 2],
            }
        })
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
        let model = fit(&self.spec, &early, &o.fit, seed);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_named_by_their_folders_and_kept_apart_when_alike() {
        let names = identity_names(&[
            PathBuf::from("out/datasets/A"),
            PathBuf::from("x/movie"),
            PathBuf::from("y/movie"),
        ]);
        assert_eq!(names, ["A", "movie#2", "movie#3"]);
    }

    #[test]
    fn held_out_identities_are_found_by_name_and_unknown_ones_named_back() {
        let names: Vec<String> = ["A", "B", "movie"].map(String::from).to_vec();
        assert_eq!(held_out_indices(&names, &[]).unwrap(), [0, 1, 2]);
        let picked = ["movie", "A", "movie"].map(String::from);
        assert_eq!(held_out_indices(&names, &picked).unwrap(), [0, 2]);
        let err = held_out_indices(&names, &["carphone".into()]).unwrap_err();
        assert!(err.to_string().contains("carphone") && err.to_string().contains("A, B, movie"));
    }
}
