//! `host-trainer train-detector`: a MesoNet-class detector trained on our own fakes, and an
//! honest measure of how far it generalises: every cell trains on one video (person A) and
//! tests on the other (person B), per kind of fake, so no face, identity or scene leaks.

pub mod data;
pub mod metrics;

use std::path::{Path, PathBuf};

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
use data::{samples, DetectorDataError, Kind, Sample};

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
    /// Score at or above which a face is called fake; `None` calibrates it on held-out frames.
    pub threshold: Option<f32>,
    pub device: Device,
}

/// A trained detector.
pub struct Trained {
    pub spec: DetectorSpec,
    pub vars: VarStore,
    pub net: Net,
}

/// Camera and codec variation applied to reals and fakes alike, so that what one video's
/// camera does to every face (its sharpness, compression, exposure) cannot tell real from fake:
/// each of blur, JPEG re-encoding and a brightness/contrast change with probability 0.3.
fn degrade(img: &image::RgbImage, rng: &mut impl rand::Rng) -> image::RgbImage {
    let mut out = img.clone();
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

/// Fits a fresh detector on `train` with class-balanced batches (half real, half fake), random
/// horizontal flips and [`degrade`].
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
    let reals: Vec<&Sample> = train
        .iter()
        .copied()
        .filter(|s| !s.kind.is_fake())
        .collect();
    let fakes: Vec<&Sample> = train.iter().copied().filter(|s| s.kind.is_fake()).collect();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let half = (batch / 2).max(1);
    for _ in 0..steps {
        let mut crops = Vec::with_capacity(2 * half);
        let mut labels = Vec::with_capacity(2 * half);
        for (pool, label) in [(&reals, 0f32), (&fakes, 1f32)] {
            for _ in 0..half {
                let pick = pool[rng.random_range(0..pool.len())];
                crops.push(degrade(&pick.crop, &mut rng));
                labels.push(label);
            }
        }
        let mut x = to_tensor(&crops, device);
        if rng.random::<bool>() {
            x = x.flip([3]);
        }
        let y = Tensor::from_slice(&labels)
            .reshape([-1, 1])
            .to_device(device);
        let p = net.forward(&x).clamp(1e-6, 1.0 - 1e-6);
        let loss = p.binary_cross_entropy::<Tensor>(&y, None, Reduction::Mean);
        opt.zero_grad();
        loss.backward();
        opt.step();
    }
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
    pub auc: f64,
    /// Accuracy at `threshold`, calibrated without the test video.
    pub accuracy: f64,
    pub threshold: f32,
    pub log_loss: f64,
    #[serde(skip)]
    pub roc: Vec<(f64, f64)>,
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
            "# Detector {} ({} parameters, {:.1} MFLOP/face), threshold {:.3} ({})\n\n{}\n\n| trained on | tested on | real | fake | AUC | accuracy | at threshold | log loss |\n|---|---|---|---|---|---|---|---|\n",
            self.preset, self.params, self.mflops, self.threshold, self.threshold_from, self.split
        );
        for c in &self.cells {
            s += &format!(
                "| {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
                c.trained_on,
                c.tested_on,
                c.real,
                c.fake,
                c.auc,
                c.accuracy,
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
                accuracy: metrics::accuracy(&scored, threshold),
                threshold,
                log_loss: metrics::log_loss(&scored),
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
    let mut all = Vec::new();
    for (video, dataset) in opts.datasets.iter().enumerate() {
        let g = generator.as_ref().map(|g| (g, 1 - video, video));
        all.extend(samples(dataset, video, &spec.crop, g, opts.seed)?);
    }
    std::fs::create_dir_all(&opts.out).map_err(io(&opts.out))?;

    let fake_kinds: Vec<Kind> = [Kind::Sbi, Kind::Swap, Kind::Reconstruction]
        .into_iter()
        .filter(|k| all.iter().any(|s| s.kind == *k))
        .collect();
    let mut train_sets = vec![vec![Kind::Sbi]];
    if fake_kinds.contains(&Kind::Swap) {
        train_sets.push(vec![Kind::Sbi, Kind::Swap]);
    }
    let fit_and_calibrate = |train_and_calibrate: &[&Sample]| -> (Trained, f32) {
        let (late, early): (Vec<&Sample>, Vec<&Sample>) =
            train_and_calibrate.iter().partition(|s| s.late);
        let model = fit(
            &spec,
            &early,
            opts.steps,
            opts.batch,
            opts.lr,
            opts.seed,
            opts.device,
        );
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
        let (model, threshold) = fit_and_calibrate(&train);
        let test: Vec<&Sample> = all.iter().filter(|s| s.video == 1).collect();
        cells.extend(score_cells(
            &model,
            &test,
            &fake_kinds,
            &kinds_name(kinds),
            threshold,
        ));
    }
    let headline = kinds_name(train_sets.last().expect("one set"));
    let shown: Vec<&Cell> = cells.iter().filter(|c| c.trained_on == headline).collect();
    roc_plot(
        &shown,
        &format!("ROC, trained on {headline} of video A, tested on video B"),
        &opts.out.join("roc.png"),
    )?;

    // The model that ships: every video, every kind of fake; the last block of each video
    // calibrates its threshold.
    let everything: Vec<&Sample> = all.iter().collect();
    let (model, threshold) = fit_and_calibrate(&everything);
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
        split: format!("Cells train on video A (person A) and test on video B (person B): no frame, identity or scene is shared. Each cell's threshold is the equal-error point on the last {:.0}% of video A's frames, which that cell does not train on.", 100.0 * data::CALIBRATION_SHARE),
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
    let all = samples(&opts.dataset, 0, &model.spec.crop, g, opts.seed)?;
    let fake_kinds: Vec<Kind> = [Kind::Sbi, Kind::Swap, Kind::Reconstruction]
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
