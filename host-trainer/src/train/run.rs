//! The training loop: data in the background, steps on CPU or CUDA, checkpoints, metrics,
//! loss curves and the preview grid, resumable and interruptible.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use facekit::draw::{label, tile, RgbCanvas};
use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};
use tch::{Device, Tensor};

use super::config::TrainConfig;
use super::data::{check_pair, spawn_loader, DataError, FaceSet};
use super::trainer::{to_tensor, Batch, Terms, TrainError, Trainer};
use crate::plot::{lines, Line};

pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const CONFIG: &str = "config.toml";
pub const METRICS: &str = "metrics.csv";
pub const CROP: &str = "crop.toml";
/// Which datasets a run was trained on, so eval and export find them (and their consent).
pub const DATASETS: &str = "datasets.toml";

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunDatasets {
    pub a: PathBuf,
    pub b: PathBuf,
}

/// The datasets recorded in `run`, if it was trained by a host-trainer that records them.
pub fn run_datasets(run: &Path) -> Option<[PathBuf; 2]> {
    let text = std::fs::read_to_string(run.join(DATASETS)).ok()?;
    let d: RunDatasets = toml::from_str(&text).ok()?;
    Some([d.a, d.b])
}

/// The generator of a finished run, without discriminators or optimiser state: what eval,
/// convert and export need.
pub struct Generator {
    pub config: TrainConfig,
    pub crop: shared_proto::FaceCropSpec,
    pub vars: tch::nn::VarStore,
    pub model: crate::model::net::Autoencoder,
    pub steps: i64,
    pub checkpoint_sha256: String,
}

impl Generator {
    pub fn load(run: &Path, device: Device) -> Result<Self, RunError> {
        let read = |name: &str| {
            let path = run.join(name);
            std::fs::read_to_string(&path).map_err(io(&path))
        };
        let config: TrainConfig = toml::from_str(&read(CONFIG)?)
            .map_err(|e| RunError::Config(format!("{}: {e}", run.join(CONFIG).display())))?;
        let crop: shared_proto::FaceCropSpec = toml::from_str(&read(CROP)?)
            .map_err(|e| RunError::Config(format!("{}: {e}", run.join(CROP).display())))?;
        let spec = crate::model::presets::preset(&config.preset)
            .ok_or_else(|| TrainError::UnknownPreset(config.preset.clone()))?;
        let vars = tch::nn::VarStore::new(device);
        let model = crate::model::net::Autoencoder::new(&vars.root(), &spec, 2);
        let path = run.join(CHECKPOINT);
        let steps = super::trainer::load_generator_weights(&vars, &path)?;
        let checkpoint_sha256 = crate::doctor::sha256_file(&path).unwrap_or_default();
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

pub struct RunOptions {
    pub config: TrainConfig,
    pub datasets: [PathBuf; 2],
    pub out: PathBuf,
    /// Stop after this many steps in total (including resumed ones).
    pub steps: Option<i64>,
    /// Stop after this much wall time in this invocation.
    pub minutes: Option<f64>,
    pub save_every: i64,
    pub preview_every: i64,
    pub device: Device,
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error("{path}: {detail}")]
    Io { path: String, detail: String },
    #[error("{0}")]
    Config(String),
    #[error("loss became NaN {0} times in a row even after reloading the last checkpoint; lower `lr` in the config")]
    Diverged(u32),
}

#[derive(Debug, Clone)]
pub struct RunSummary {
    pub steps: i64,
    pub steps_this_run: i64,
    pub seconds: f64,
    pub last: [Terms; 2],
    pub images_per_second: f64,
    pub nan_recoveries: u32,
    pub preview: PathBuf,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> RunError + '_ {
    move |e| RunError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

pub fn train(opts: &RunOptions, stop: &AtomicBool) -> Result<RunSummary, RunError> {
    let [a, b] = [&opts.datasets[0], &opts.datasets[1]].map(|p| FaceSet::load(p, 0.1));
    let (a, b) = (a?, b?);
    check_pair(&a, &b)?;
    std::fs::create_dir_all(&opts.out).map_err(io(&opts.out))?;

    // A resumed run keeps its original config: the checkpoint only fits that architecture.
    let config_path = opts.out.join(CONFIG);
    let checkpoint = opts.out.join(CHECKPOINT);
    let config = if checkpoint.is_file() && config_path.is_file() {
        let text = std::fs::read_to_string(&config_path).map_err(io(&config_path))?;
        toml::from_str(&text)
            .map_err(|e| RunError::Config(format!("{}: {e}", config_path.display())))?
    } else {
        let text = format!(
            "# Settings of this run (written by host-trainer train).\n{}",
            toml::to_string(&opts.config).expect("config serialises")
        );
        std::fs::write(&config_path, text).map_err(io(&config_path))?;
        opts.config.clone()
    };
    let crop = a.crop.clone();
    let crop_path = opts.out.join(CROP);
    let crop_text = format!(
        "# Crop geometry the model was trained on (from the datasets).\n{}",
        toml::to_string(&crop).expect("crop serialises")
    );
    std::fs::write(&crop_path, crop_text).map_err(io(&crop_path))?;
    let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let datasets = RunDatasets {
        a: absolute(&opts.datasets[0]),
        b: absolute(&opts.datasets[1]),
    };
    let datasets_path = opts.out.join(DATASETS);
    let text = format!(
        "# Datasets this run was trained on (eval and export read their faces and consent).\n{}",
        toml::to_string(&datasets).expect("paths serialise")
    );
    std::fs::write(&datasets_path, text).map_err(io(&datasets_path))?;
    let mut trainer = Trainer::new(config.clone(), &crop, opts.device)?;
    if trainer.model.spec.size != a.size as usize {
        return Err(RunError::Config(format!(
            "preset {} works on {} px crops but the datasets hold {} px crops",
            config.preset, trainer.model.spec.size, a.size
        )));
    }
    if checkpoint.is_file() {
        trainer.load(&checkpoint)?;
        tracing::info!(
            "resumed {} at step {}",
            opts.out.display(),
            trainer.step_count()
        );
    }

    let previews = [&a, &b].map(|s| {
        let pool = if s.held_out.len() >= 4 {
            &s.held_out
        } else {
            &s.train
        };
        pool.iter()
            .step_by((pool.len() / 4).max(1))
            .take(4)
            .cloned()
            .collect::<Vec<_>>()
    });
    let loader = spawn_loader(
        [Arc::new(a.train.clone()), Arc::new(b.train.clone())],
        config.batch_size,
        config.augment.clone(),
        config.seed ^ trainer.step_count() as u64,
        4,
        facekit::forensics::face_mask(crop.size, &crop.template_px()),
    );

    let metrics_path = opts.out.join(METRICS);
    let new_file = !metrics_path.is_file();
    let mut metrics = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .map_err(io(&metrics_path))?;
    if new_file {
        writeln!(
            metrics,
            "step,seconds,person,total,l1,ssim,edge,mask,gan,feature,discriminator"
        )
        .map_err(io(&metrics_path))?;
    }

    let bar = if opts.progress {
        ProgressBar::new(opts.steps.unwrap_or(0).max(0) as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps {per_sec} (eta {eta}) {msg}",
        )
        .expect("template"),
    );
    bar.set_position(trainer.step_count().max(0) as u64);

    let started = Instant::now();
    let start_step = trainer.step_count();
    let mut last = [Terms::default(); 2];
    let mut nan_streak = 0u32;
    let mut nan_recoveries = 0u32;
    let preview_path = opts.out.join("preview.png");
    loop {
        let done_steps = opts.steps.is_some_and(|s| trainer.step_count() >= s);
        let done_time = opts
            .minutes
            .is_some_and(|m| started.elapsed().as_secs_f64() >= m * 60.0);
        if done_steps || done_time || stop.load(Ordering::Relaxed) {
            break;
        }
        let host = loader.recv().expect("loader thread alive");
        let s = host.size as i64;
        let batches = host.people.map(|(input, target)| Batch {
            input: Tensor::from_slice(&input)
                .reshape([host.count as i64, 3, s, s])
                .to_device(opts.device),
            target: Tensor::from_slice(&target)
                .reshape([host.count as i64, 3, s, s])
                .to_device(opts.device),
        });
        let terms = trainer.step(&batches);
        if terms.iter().any(|t| !t.total.is_finite()) {
            nan_streak += 1;
            nan_recoveries += 1;
            if nan_streak > 3 || !checkpoint.is_file() {
                return Err(RunError::Diverged(nan_streak));
            }
            tracing::warn!(
                "NaN loss at step {}: reloading {}",
                trainer.step_count(),
                checkpoint.display()
            );
            trainer.load(&checkpoint)?;
            continue;
        }
        nan_streak = 0;
        last = terms;
        let step = trainer.step_count();
        let secs = started.elapsed().as_secs_f64();
        for (p, t) in terms.iter().enumerate() {
            writeln!(
                metrics,
                "{step},{secs:.2},{},{},{},{},{},{},{},{},{}",
                ["A", "B"][p],
                t.total,
                t.l1,
                t.ssim,
                t.edge,
                t.mask,
                t.gan,
                t.feature,
                t.discriminator
            )
            .map_err(io(&metrics_path))?;
        }
        bar.set_position(step as u64);
        bar.set_message(format!(
            "loss A {:.3} B {:.3}",
            terms[0].total, terms[1].total
        ));
        if step % opts.save_every.max(1) == 0 {
            trainer.save(&checkpoint)?;
        }
        if step % opts.preview_every.max(1) == 0 {
            write_preview(&trainer, &previews, &preview_path)?;
        }
    }
    bar.finish_and_clear();
    trainer.save(&checkpoint)?;
    write_preview(&trainer, &previews, &preview_path)?;
    // The checkpoint is safe by now: a missing font must not fail the run.
    if let Err(e) = loss_curve(&metrics_path, &opts.out.join("loss_curve.png")) {
        tracing::warn!("loss curve not drawn: {e}");
    }
    let steps_this_run = trainer.step_count() - start_step;
    let seconds = started.elapsed().as_secs_f64();
    Ok(RunSummary {
        steps: trainer.step_count(),
        steps_this_run,
        seconds,
        last,
        images_per_second: (steps_this_run as f64 * 2.0 * config.batch_size as f64)
            / seconds.max(1e-9),
        nan_recoveries,
        preview: preview_path,
    })
}

/// The preview users of DeepFaceLab/faceswap expect: rows A→A, A→B, B→B, B→A; each cell shows
/// the source face and the decoder's output side by side.
pub fn write_preview(
    trainer: &Trainer,
    faces: &[Vec<RgbImage>; 2],
    path: &Path,
) -> Result<(), RunError> {
    let _guard = tch::no_grad_guard();
    let mut tiles = Vec::new();
    for (src, dst, name) in [(0, 0, "A>A"), (0, 1, "A>B"), (1, 1, "B>B"), (1, 0, "B>A")] {
        let x = to_tensor(&faces[src], trainer.device);
        let (rgb, mask) = trainer.model.forward(&x, dst);
        let out: Tensor = &rgb * &mask + &x * (mask.ones_like() - &mask);
        for (k, face) in faces[src].iter().enumerate() {
            let mut pair = RgbImage::new(face.width() * 2, face.height());
            image::imageops::replace(&mut pair, face, 0, 0);
            image::imageops::replace(
                &mut pair,
                &from_tensor(&out.get(k as i64)),
                face.width() as i64,
                0,
            );
            if k == 0 {
                label(
                    &mut RgbCanvas(&mut pair),
                    name,
                    embedded_graphics::prelude::Point::new(1, 1),
                );
            }
            tiles.push(pair);
        }
    }
    let cols = faces[0].len().max(1) as u32;
    tile(&tiles, cols).save(path).map_err(|e| RunError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

/// `[3, H, W]` in 0..1 → RGB image.
pub fn from_tensor(t: &Tensor) -> RgbImage {
    let t = (t.clamp(0.0, 1.0) * 255.0)
        .round()
        .to_kind(tch::Kind::Uint8)
        .to_device(Device::Cpu)
        .contiguous();
    let (h, w) = (t.size()[1] as u32, t.size()[2] as u32);
    let data: Vec<u8> = Vec::<u8>::try_from(t.flatten(0, -1)).expect("uint8 tensor");
    RgbImage::from_fn(w, h, |x, y| {
        let i = (y * w + x) as usize;
        let n = (w * h) as usize;
        image::Rgb([data[i], data[n + i], data[2 * n + i]])
    })
}

fn loss_curve(metrics: &Path, out: &Path) -> Result<(), RunError> {
    let text = std::fs::read_to_string(metrics).map_err(io(metrics))?;
    let mut series: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 4 {
            continue;
        }
        let (Ok(step), Ok(total)) = (f[0].parse::<f64>(), f[3].parse::<f64>()) else {
            continue;
        };
        series[usize::from(f[2] == "B")].push((step, total));
    }
    let colours = [
        plotters::style::RGBColor(31, 119, 180),
        plotters::style::RGBColor(255, 127, 14),
    ];
    let data = [
        Line {
            label: "A total",
            points: series[0].clone(),
            colour: colours[0],
        },
        Line {
            label: "B total",
            points: series[1].clone(),
            colour: colours[1],
        },
    ];
    lines(out, "generator loss", "step", &data).map_err(|e| RunError::Io {
        path: out.display().to_string(),
        detail: e.to_string(),
    })
}
