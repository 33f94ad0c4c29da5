//! `host-trainer train-detector`: a MesoNet-class detector trained on our own fakes, and an
//! honest measure of how far it generalises: every cell trains on one video (person A) and
//! tests on the other (person B), per kind of fake, so no face, identity or scene leaks.

pub mod data;
pub mod metrics;

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use tch::nn::{Module, VarStore};
use tch::{Device, Reduction, Tensor};

use crate::model::detector::{detector_preset, DetectorSpec, DETECTOR_PRESETS};
use crate::model::net::Net;
use crate::plot::{lines, Line};
use crate::train::optim::Adam;
use crate::train::run::{Generator, RunError};
use crate::train::trainer::to_tensor;
use data::{graphic_swaps, samples, DetectorDataError, Kind, Sample};
use facekit::forensics::{self_blend, SbiParams};

/// Weights of a trained detector, under `detector/…` like the ONNX exporter reads them.
pub const WEIGHTS: &str = "detector.safetensors";
pub const SETTINGS: &str = "detector.toml";

#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    #[error("unknown detector preset {0:?}; choose one of {DETECTOR_PRESETS:?}")]
    UnknownPreset(String),
    #[error(transparent)]
    Data(#[from] DetectorDataError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("{path}: {detail}")]
    Io { path: String, detail: String },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> DetectorError + '_ {
    move |e| DetectorError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// What `detector.toml` records next to the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub preset: String,
    pub threshold: f32,
    pub steps: usize,
}

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

/// A trained detector.
pub struct Trained {
    pub spec: DetectorSpec,
    pub vars: VarStore,
    pub net: Net,
}

/// Camera and codec variation applied to reals and fakes alike, so that what one video's
/// camera does to every face (its resolution, sharpness, compression, exposure) cannot tell real
/// from fake: each of down-and-up resampling, blur, JPEG re-encoding and a brightness/contrast
/// change with probability 0.3.
fn degrade(mut out: image::RgbImage, rng: &mut impl rand::Rng) -> image::RgbImage {
    if rng.random::<f32>() < 0.3 {
        // A face that filled fewer camera pixels, upscaled to the crop like a small face is.
        let (w, h) = out.dimensions();
        let scale = rng.random_range(0.35..0.9f32);
        let small = image::imageops::resize(
            &out,
            ((w as f32 * scale) as u32).max(8),
            ((h as f32 * scale) as u32).max(8),
            image::imageops::FilterType::Triangle,
        );
        out = image::imageops::resize(&small, w, h, image::imageops::FilterType::Triangle);
    }
    if rng.random::<f32>() < 0.3 {
        out = image::imageops::blur(&out, rng.random_range(0.3..1.2));
    }
    if rng.random::<f32>() < 0.3 {
        let mut bytes = Vec::new();
        let quality = rng.random_range(50..95);
        let encoded = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
            .encode_image(&out)
            .is_ok();
        if let Some(decoded) = encoded
            .then(|| image::load_from_memory(&bytes).ok())
            .flatten()
        {
            out = decoded.to_rgb8();
        }
    }
    if rng.random::<f32>() < 0.3 {
        let (gain, bias) = (
            rng.random_range(0.85..1.15f32),
            rng.random_range(-12.0..12.0f32),
        );
        for p in out.pixels_mut() {
            p.0 =
                p.0.map(|v| (v as f32 * gain + bias).clamp(0.0, 255.0) as u8);
        }
    }
    out
}

/// One training batch: crops, their labels (1 = fake) and whether to mirror it.
struct Batch {
    crops: Vec<image::RgbImage>,
    labels: Vec<f32>,
    flip: bool,
}

/// Draws class-balanced batches from `train`: half real, half fake, the fakes spread evenly over
/// the kinds in `train`, each crop passed through [`degrade`]. Self-blended fakes are made
/// afresh from a random training real at every draw, as in the SBI paper: a fixed set of them,
/// one per frame, is learnt by heart on a few hundred frames.
struct BatchDrawer<'a> {
    reals: Vec<&'a Sample>,
    fakes: Vec<(Kind, Vec<&'a Sample>)>,
    half: usize,
    rng: rand::rngs::SmallRng,
}

impl<'a> BatchDrawer<'a> {
    fn new(train: &[&'a Sample], batch: usize, seed: u64) -> Self {
        let reals = train
            .iter()
            .copied()
            .filter(|s| !s.kind.is_fake())
            .collect();
        let fakes = Kind::FAKES
            .iter()
            .map(|&k| (k, train.iter().copied().filter(|s| s.kind == k).collect()))
            .filter(|(_, pool): &(Kind, Vec<&Sample>)| !pool.is_empty())
            .collect();
        Self {
            reals,
            fakes,
            half: (batch / 2).max(1),
            rng: rand::rngs::SmallRng::seed_from_u64(seed),
        }
    }

    fn real(&mut self) -> &'a Sample {
        self.reals[self.rng.random_range(0..self.reals.len())]
    }

    fn draw(&mut self) -> Batch {
        let mut crops = Vec::with_capacity(2 * self.half);
        let mut labels = Vec::with_capacity(2 * self.half);
        for _ in 0..self.half {
            let real = self.real();
            crops.push(degrade(real.crop.clone(), &mut self.rng));
            labels.push(0f32);
        }
        for _ in 0..self.half {
            let kind = self.rng.random_range(0..self.fakes.len());
            let fake = if self.fakes[kind].0 == Kind::Sbi {
                let real = self.real();
                let params = SbiParams::sample(&mut self.rng);
                self_blend(&real.crop, &real.landmarks, &params).0
            } else {
                let pool = &self.fakes[kind].1;
                pool[self.rng.random_range(0..pool.len())].crop.clone()
            };
            crops.push(degrade(fake, &mut self.rng));
            labels.push(1f32);
        }
        Batch {
            crops,
            labels,
            flip: self.rng.random::<bool>(),
        }
    }
}

/// Fits a fresh detector on `train` (reals and fakes; see [`BatchDrawer`]). Batches are made on
/// a second thread while the network trains on the previous one.
pub fn fit(
    spec: &DetectorSpec,
    train: &[&Sample],
    steps: usize,
    batch: usize,
    lr: f64,
    seed: u64,
    device: Device,
) -> Trained {
    tch::manual_seed(seed as i64);
    let vars = VarStore::new(device);
    let net = Net::new(&(vars.root() / "detector"), &spec.net);
    let mut opt = Adam::new(&vars, lr, (0.9, 0.999));
    let mut drawer = BatchDrawer::new(train, batch, seed);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(2);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for _ in 0..steps {
                if tx.send(drawer.draw()).is_err() {
                    break;
                }
            }
        });
        for b in rx {
            let mut x = to_tensor(&b.crops, device);
            if b.flip {
                x = x.flip([3]);
            }
            let y = Tensor::from_slice(&b.labels)
                .reshape([-1, 1])
                .to_device(device);
            let p = net.forward(&x).clamp(1e-6, 1.0 - 1e-6);
            let loss = p.binary_cross_entropy::<Tensor>(&y, None, Reduction::Mean);
            opt.zero_grad();
            loss.backward();
            opt.step();
        }
    });
    Trained {
        spec: spec.clone(),
        vars,
        net,
    }
}

/// Fake probability of each crop.
pub fn predict(t: &Trained, crops: &[&image::RgbImage]) -> Vec<f32> {
    let _guard = tch::no_grad_guard();
    let device = t.vars.device();
    let mut out = Vec::with_capacity(crops.len());
    for chunk in crops.chunks(64) {
        let owned: Vec<image::RgbImage> = chunk.iter().map(|c| (*c).clone()).collect();
        let p = t.net.forward(&to_tensor(&owned, device));
        out.extend(
            Vec::<f32>::try_from(p.to_device(Device::Cpu).flatten(0, -1)).unwrap_or_default(),
        );
    }
    out
}

/// One train → test cell of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub trained_on: String,
    pub tested_on: String,
    pub real: usize,
    pub fake: usize,
    /// Means over the cell's `seeds` fits, with the standard deviations beside them: on a few
    /// hundred faces the seed alone moves AUC by several hundredths.
    pub auc: f64,
    pub auc_sd: f64,
    /// AUC on the training video's own held-out last frames (in distribution: same camera,
    /// person and scene, frames not trained on), mean and sd over the seeds.
    pub auc_same_video: Option<f64>,
    pub auc_same_video_sd: Option<f64>,
    /// Accuracy at `threshold`, calibrated without the test video.
    pub accuracy: f64,
    pub accuracy_sd: f64,
    pub threshold: f32,
    pub log_loss: f64,
    pub seeds: usize,
    /// ROC of the first seed's fit.
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

#[derive(Debug, Clone, Serialize)]
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
    pub fn write(&self, dir: &Path) -> Result<(), DetectorError> {
        let md = dir.join("eval_detector.md");
        std::fs::write(&md, self.markdown()).map_err(io(&md))?;
        let json = dir.join("eval_detector.json");
        std::fs::write(
            &json,
            serde_json::to_string_pretty(self).expect("report serialises"),
        )
        .map_err(io(&json))
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

/// One cell per fake kind: `model` on the real faces of `test` against that kind's fakes.
pub fn score_cells(
    model: &Trained,
    test: &[&Sample],
    fake_kinds: &[Kind],
    trained_on: &str,
    threshold: f32,
) -> Vec<Cell> {
    let scores = predict(model, &test.iter().map(|s| &s.crop).collect::<Vec<_>>());
    fake_kinds
        .iter()
        .map(|&kind| {
            let scored: Vec<(f32, bool)> = scores
                .iter()
                .zip(test)
                .filter(|(_, s)| s.kind == Kind::Real || s.kind == kind)
                .map(|(&p, s)| (p, s.kind.is_fake()))
                .collect();
            Cell {
                trained_on: trained_on.into(),
                tested_on: kind.name().into(),
                real: scored.iter().filter(|s| !s.1).count(),
                fake: scored.iter().filter(|s| s.1).count(),
                auc: metrics::auc(&scored),
                auc_sd: 0.0,
                auc_same_video: None,
                auc_same_video_sd: None,
                accuracy: metrics::accuracy(&scored, threshold),
                accuracy_sd: 0.0,
                threshold,
                log_loss: metrics::log_loss(&scored),
                seeds: 1,
                roc: metrics::roc(&scored),
            }
        })
        .collect()
}

/// The ROC curves of `cells` in one plot.
pub fn roc_plot(cells: &[&Cell], title: &str, path: &Path) -> Result<(), DetectorError> {
    let colours = [
        plotters::style::BLUE,
        plotters::style::RED,
        plotters::style::GREEN,
    ];
    let series: Vec<Line<'_>> = cells
        .iter()
        .zip(colours.iter().cycle())
        .map(|(c, colour)| Line {
            label: &c.tested_on,
            points: c.roc.clone(),
            colour: *colour,
        })
        .collect();
    lines(path, title, "false positive rate", &series).map_err(|e| DetectorError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

fn kinds_name(kinds: &[Kind]) -> String {
    kinds
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(" + ")
}

pub fn train_detector(opts: &DetectorOptions) -> Result<DetectorReport, DetectorError> {
    let spec = detector_preset(&opts.preset)
        .ok_or_else(|| DetectorError::UnknownPreset(opts.preset.clone()))?;
    let generator = match &opts.run {
        Some(run) => Some(Generator::load(run, opts.device)?),
        None => None,
    };
    let mut videos = Vec::new();
    for (video, dataset) in opts.datasets.iter().enumerate() {
        let g = generator.as_ref().map(|g| (g, 1 - video, video));
        videos.push(samples(dataset, video, &spec.crop, g, opts.seed)?);
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
    std::fs::create_dir_all(&opts.out).map_err(io(&opts.out))?;

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
    let bar = if opts.progress {
        ProgressBar::new((train_sets.len() * seeds.len() + 1) as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} fits (eta {eta}) {msg}",
        )
        .expect("template"),
    );
    let fit_and_calibrate = |train_and_calibrate: &[&Sample], seed: u64| -> (Trained, f32) {
        let (late, early): (Vec<&Sample>, Vec<&Sample>) =
            train_and_calibrate.iter().partition(|s| s.late);
        let model = fit(
            &spec,
            &early,
            opts.steps,
            opts.batch,
            opts.lr,
            seed,
            opts.device,
        );
        bar.inc(1);
        let scores = predict(&model, &late.iter().map(|s| &s.crop).collect::<Vec<_>>());
        let scored: Vec<(f32, bool)> = scores
            .into_iter()
            .zip(&late)
            .map(|(p, s)| (p, s.kind.is_fake()))
            .collect();
        let threshold = opts
            .threshold
            .unwrap_or_else(|| metrics::eer_threshold(&scored));
        (model, threshold)
    };
    let mut cells = Vec::new();
    for kinds in &train_sets {
        let train: Vec<&Sample> = all
            .iter()
            .filter(|s| s.video == 0 && (s.kind == Kind::Real || kinds.contains(&s.kind)))
            .collect();
        let test: Vec<&Sample> = all.iter().filter(|s| s.video == 1).collect();
        let same_video: Vec<&Sample> = all.iter().filter(|s| s.video == 0 && s.late).collect();
        bar.set_message(format!("cell trained on {}", kinds_name(kinds)));
        let fits: Vec<Vec<Cell>> = seeds
            .iter()
            .map(|&seed| {
                let (model, threshold) = fit_and_calibrate(&train, seed);
                let name = kinds_name(kinds);
                let same = score_cells(&model, &same_video, &fake_kinds, &name, threshold);
                let mut cells = score_cells(&model, &test, &fake_kinds, &name, threshold);
                for (c, s) in cells.iter_mut().zip(same) {
                    c.auc_same_video = Some(s.auc);
                    c.auc_same_video_sd = Some(0.0);
                }
                cells
            })
            .collect();
        for i in 0..fake_kinds.len() {
            let same_cell: Vec<Cell> = fits.iter().map(|f| f[i].clone()).collect();
            cells.push(Cell::pool(&same_cell));
        }
    }
    let headline = kinds_name(&train_sets[train_sets.len().min(2) - 1]);
    let shown: Vec<&Cell> = cells.iter().filter(|c| c.trained_on == headline).collect();
    roc_plot(
        &shown,
        &format!("ROC, trained on {headline} of video A, tested on video B"),
        &opts.out.join("roc.png"),
    )?;

    // The model that ships: every video, every kind of fake; the last block of each video
    // calibrates its threshold.
    let everything: Vec<&Sample> = all.iter().collect();
    bar.set_message("the saved model, on both videos");
    let (model, threshold) = fit_and_calibrate(&everything, opts.seed);
    bar.finish_and_clear();
    let threshold_from = match opts.threshold {
        Some(_) => "given with --threshold".to_owned(),
        None => format!(
            "equal-error point on the last {:.0}% of each video's frames, not trained on",
            100.0 * data::CALIBRATION_SHARE
        ),
    };
    let weights = opts.out.join(WEIGHTS);
    model.vars.save(&weights).map_err(|e| DetectorError::Io {
        path: weights.display().to_string(),
        detail: e.to_string(),
    })?;
    let settings = opts.out.join(SETTINGS);
    let recorded = Settings {
        preset: opts.preset.clone(),
        threshold,
        steps: opts.steps,
    };
    std::fs::write(
        &settings,
        format!(
            "# Detector trained by host-trainer train-detector.\n{}",
            toml::to_string(&recorded).expect("settings serialise")
        ),
    )
    .map_err(io(&settings))?;
    let report = DetectorReport {
        preset: opts.preset.clone(),
        params: spec.params(),
        mflops: spec.flops_per_face() as f64 / 1e6,
        threshold,
        threshold_from,
        steps: opts.steps,
        seeds: seeds.len(),
        split: format!("Cells train on video A (person A) and test on video B (person B): no frame, identity or scene is shared. Each cell's threshold is the equal-error point on the last {:.0}% of video A's frames, which that cell does not train on. Each cell is fitted {} times (seeds {}–{}): mean ± standard deviation. Self-blended fakes are made afresh at every training step; the graphics swaps are a generator no cell trains on.", 100.0 * data::CALIBRATION_SHARE, seeds.len(), seeds[0], seeds[seeds.len() - 1]),
        cells,
        final_trained_on: format!("real + {} of both videos", kinds_name(&fake_kinds)),
    };
    report.write(&opts.out)?;
    Ok(report)
}

/// Loads a detector saved by [`train_detector`].
pub fn load(dir: &Path, device: Device) -> Result<(Trained, Settings), DetectorError> {
    let path = dir.join(SETTINGS);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let settings: Settings = toml::from_str(&text).map_err(|e| DetectorError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    let spec = detector_preset(&settings.preset)
        .ok_or_else(|| DetectorError::UnknownPreset(settings.preset.clone()))?;
    let mut vars = VarStore::new(device);
    let net = Net::new(&(vars.root() / "detector"), &spec.net);
    let weights = dir.join(WEIGHTS);
    vars.load(&weights).map_err(|e| DetectorError::Io {
        path: weights.display().to_string(),
        detail: e.to_string(),
    })?;
    Ok((Trained { spec, vars, net }, settings))
}

/// `host-trainer eval-detector`: a trained detector on one dataset's video, per kind of fake.
pub struct EvalOptions {
    pub detector: PathBuf,
    pub dataset: PathBuf,
    /// Decoder index of this dataset's person in `run` (A = 0, B = 1).
    pub person: usize,
    pub run: Option<PathBuf>,
    /// Another person's dataset whose real faces the graphics swaps paste in.
    pub donors: Option<PathBuf>,
    pub out: PathBuf,
    pub seed: u64,
    pub device: Device,
}

pub fn evaluate(opts: &EvalOptions) -> Result<DetectorReport, DetectorError> {
    let (model, settings) = load(&opts.detector, opts.device)?;
    let generator = match &opts.run {
        Some(run) => Some(Generator::load(run, opts.device)?),
        None => None,
    };
    let person = opts.person.min(1);
    let g = generator.as_ref().map(|g| (g, 1 - person, person));
    let mut all = samples(&opts.dataset, 0, &model.spec.crop, g, opts.seed)?;
    if let Some(donors) = &opts.donors {
        let donors = samples(donors, 1, &model.spec.crop, None, opts.seed)?;
        all.extend(graphic_swaps(&all, &donors, opts.seed));
    }
    let fake_kinds: Vec<Kind> = Kind::FAKES
        .into_iter()
        .filter(|k| all.iter().any(|s| s.kind == *k))
        .collect();
    let test: Vec<&Sample> = all.iter().collect();
    let cells = score_cells(
        &model,
        &test,
        &fake_kinds,
        &format!("{} (saved model)", opts.detector.display()),
        settings.threshold,
    );
    std::fs::create_dir_all(&opts.out).map_err(io(&opts.out))?;
    roc_plot(
        &cells.iter().collect::<Vec<_>>(),
        &format!("ROC on {}", opts.dataset.display()),
        &opts.out.join("roc.png"),
    )?;
    let report = DetectorReport {
        preset: settings.preset.clone(),
        params: model.spec.params(),
        mflops: model.spec.flops_per_face() as f64 / 1e6,
        threshold: settings.threshold,
        threshold_from: format!("recorded in {}", opts.detector.join(SETTINGS).display()),
        steps: settings.steps,
        seeds: 1,
        split: format!(
            "Every face of {} (its fakes made from its own frames).",
            opts.dataset.display()
        ),
        cells,
        final_trained_on: "see the detector's eval_detector.md".into(),
    };
    report.write(&opts.out)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: Kind, colour: [u8; 3]) -> Sample {
        let crop = data::detector_test_crop(colour);
        Sample {
            landmarks: detector_crop_landmarks(),
            crop,
            kind,
            video: 0,
            late: false,
        }
    }

    fn detector_crop_landmarks() -> [[f32; 2]; 5] {
        crate::model::detector::detector_crop().template_px()
    }

    #[test]
    fn batches_are_half_real_and_self_blends_are_made_fresh() {
        // Grey reals, a red stored self-blend, a blue swap: the colour tells what was drawn.
        let train = [
            sample(Kind::Real, [60; 3]),
            sample(Kind::Real, [120; 3]),
            sample(Kind::Sbi, [240, 0, 0]),
            sample(Kind::Swap, [0, 0, 240]),
        ];
        let refs: Vec<&Sample> = train.iter().collect();
        let mut drawer = BatchDrawer::new(&refs, 32, 7);
        let (mut fresh, mut swaps) = (0, 0);
        for _ in 0..10 {
            let b = drawer.draw();
            assert_eq!(b.crops.len(), 32);
            assert_eq!(b.labels.iter().filter(|&&l| l == 1.0).count(), 16);
            for (crop, _) in b.crops.iter().zip(&b.labels).filter(|(_, &l)| l == 1.0) {
                let mean = |c: usize| {
                    crop.pixels().map(|p| p.0[c] as f64).sum::<f64>()
                        / (crop.width() * crop.height()) as f64
                };
                let (red, blue) = (mean(0), mean(2));
                assert!(red - blue < 100.0, "the stored SBI was drawn");
                if blue - red > 100.0 {
                    swaps += 1;
                } else {
                    fresh += 1;
                }
            }
        }
        // Two kinds of fake, drawn evenly.
        assert!(
            (50..110).contains(&fresh) && fresh + swaps == 160,
            "{fresh} / {swaps}"
        );
    }

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
