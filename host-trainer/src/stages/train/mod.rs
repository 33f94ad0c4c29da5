//! `host-trainer train`: the shared-encoder / two-decoder face-swap autoencoder, trained on two
//! datasets into a run folder — data in the background ([`loader`]), steps on CPU or CUDA
//! ([`trainer`]), checkpoints, metrics, loss curve and preview grid ([`preview`]), resumable and
//! interruptible.

pub mod augment;
pub mod loader;
pub mod occluders;
pub mod pretrain;
pub mod preview;
pub mod trainer;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use tch::{Device, Tensor};

use crate::artefacts::dataset::{check_pair, FaceSet, TRAIN_HELD_OUT};
use crate::artefacts::run::{self, CHECKPOINT, METRICS, PREVIEW};
use crate::artefacts::train_config::TrainConfig;
use crate::error::{AtPath, Error, Result};
use crate::model::checkpoint;
use loader::{spawn_loader, HostBatch};
use trainer::{Batch, Terms, Trainer};

pub struct RunOptions {
    pub config: TrainConfig,
    /// Datasets of person A and of person B; several per side are pooled (more footage of the
    /// same person, or everyone for a warm start).
    pub datasets: [Vec<PathBuf>; 2],
    pub out: PathBuf,
    /// Generator weights (a warm start from `host-trainer pretrain`) that a new run starts
    /// from instead of random ones; ignored when the run resumes from its own checkpoint.
    pub init: Option<PathBuf>,
    /// Steps at which the generator is also kept as `snapshots/generator-<step>.safetensors`
    /// (fp16), for measuring a run against its training length.
    pub snapshots: Vec<i64>,
    /// Stop after this many steps in total (including resumed ones).
    pub steps: Option<i64>,
    /// Stop after this much wall time in this invocation.
    pub minutes: Option<f64>,
    pub save_every: i64,
    pub preview_every: i64,
    pub device: Device,
    pub progress: bool,
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

pub fn train(opts: &RunOptions, stop: &AtomicBool) -> Result<RunSummary> {
    let sides = [load_side(&opts.datasets[0])?, load_side(&opts.datasets[1])?];
    let (a, b) = (&sides[0][0], &sides[1][0]);
    for set in sides.iter().flatten() {
        check_pair(a, set)?;
    }
    opts.config.validate()?;
    let config = run::establish(&opts.out, &opts.config, &a.crop, &opts.datasets)?;
    config.validate()?;
    let mut trainer = Trainer::new(config.clone(), &a.crop, opts.device)?;
    if trainer.model.spec.size != a.size as usize {
        return Err(Error::CropSize {
            preset: config.preset.clone(),
            model: trainer.model.spec.size,
            data: a.size,
        });
    }
    let checkpoint = opts.out.join(CHECKPOINT);
    if checkpoint.is_file() {
        trainer.load(&checkpoint)?;
        tracing::info!(
            "resumed {} at step {}",
            opts.out.display(),
            trainer.step_count()
        );
    } else if let Some(init) = &opts.init {
        trainer.init_generator(init)?;
        tracing::info!("generator starts from {}", init.display());
    }
    let previews = [a, b].map(preview::faces);
    let pooled = |side: &[FaceSet]| -> Arc<Vec<image::RgbImage>> {
        Arc::new(side.iter().flat_map(|s| s.train.iter().cloned()).collect())
    };
    // The loader's pools, kept for the preview's mean codes.
    let faces = [pooled(&sides[0]), pooled(&sides[1])];
    let loader = spawn_loader(
        faces.clone(),
        config.batch_size,
        config.augment.clone(),
        config.seed ^ trainer.step_count() as u64,
        4,
        facekit::forensics::face_mask(a.crop.size, &a.crop.template_px()),
    );
    let mut metrics = MetricsLog::open(&opts.out.join(METRICS))?;
    let bar = progress_bar(opts, trainer.step_count());

    let started = Instant::now();
    let start_step = trainer.step_count();
    let mut last = [Terms::default(); 2];
    let (mut nan_streak, mut nan_recoveries) = (0u32, 0u32);
    let mut lr_falling = false;
    let preview_path = opts.out.join(PREVIEW);
    loop {
        let done_steps = opts.steps.is_some_and(|s| trainer.step_count() >= s);
        let done_time = opts
            .minutes
            .is_some_and(|m| started.elapsed().as_secs_f64() >= m * 60.0);
        if done_steps || done_time || stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(host) = loader.recv() else {
            return Err(Error::LoaderStopped);
        };
        let lr_factor = config.lr_factor(run_progress(
            opts,
            trainer.step_count(),
            started.elapsed().as_secs_f64(),
        ));
        if lr_factor < 1.0 && !lr_falling {
            lr_falling = true;
            tracing::info!(
                "step {}: the learning rate starts to fall (to {} of it by the end)",
                trainer.step_count(),
                config.lr_decay_to
            );
        }
        trainer.set_lr_factor(lr_factor);
        let terms = trainer.step(&to_device(&host, opts.device));
        if terms.iter().any(|t| !t.total.is_finite()) {
            nan_streak += 1;
            nan_recoveries += 1;
            if nan_streak > 3 || !checkpoint.is_file() {
                return Err(Error::Diverged(nan_streak));
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
        metrics.append(step, started.elapsed().as_secs_f64(), &terms)?;
        bar.set_position(step as u64);
        bar.set_message(format!(
            "loss A {:.3} B {:.3}",
            terms[0].total, terms[1].total
        ));
        if step % opts.save_every.max(1) == 0 {
            trainer.save(&checkpoint)?;
        }
        if opts.snapshots.contains(&step) {
            let path = run::snapshot(&opts.out, step);
            checkpoint::write_generator_fp16(&path, &trainer.generator_vars, step)?;
        }
        if step % opts.preview_every.max(1) == 0 {
            best_effort_preview(&mut trainer, &previews, &faces, &preview_path);
        }
    }
    bar.finish_and_clear();
    trainer.save(&checkpoint)?;
    best_effort_preview(&mut trainer, &previews, &faces, &preview_path);
    // The checkpoint is safe by now: a missing font must not fail the run.
    if let Err(e) = preview::loss_curve(&metrics.path, &opts.out.join(run::LOSS_CURVE)) {
        tracing::warn!("loss curve not drawn: {}", e.chain());
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

/// How far along the run is (0..1): by steps against `--steps` (the total, resumed steps
/// included) or by this invocation's time against `--minutes`, whichever is further; 0 when
/// neither bounds it.
fn run_progress(opts: &RunOptions, step: i64, seconds: f64) -> f64 {
    let by_steps = opts.steps.map_or(0.0, |s| step as f64 / s.max(1) as f64);
    let by_time = opts.minutes.map_or(0.0, |m| seconds / (m * 60.0).max(1e-9));
    by_steps.max(by_time).clamp(0.0, 1.0)
}

/// The preview is for looking, not for training: a failed write (full disk, a folder in its
/// place) is reported and training goes on.
/// The preview, its swaps moved by the identity shift measured now on `mean_faces` (as convert
/// and the bundle will).
fn best_effort_preview(
    trainer: &mut Trainer,
    faces: &[Vec<image::RgbImage>; 2],
    mean_faces: &[Arc<Vec<image::RgbImage>>; 2],
    path: &Path,
) {
    trainer
        .model
        .measure_identities([&mean_faces[0], &mean_faces[1]]);
    if let Err(e) = preview::write(trainer, faces, path) {
        tracing::warn!("preview not written: {}", e.chain());
    }
}

/// The datasets of one side, at least one.
fn load_side(paths: &[PathBuf]) -> Result<Vec<FaceSet>> {
    if paths.is_empty() {
        return Err(Error::NoDatasetGiven);
    }
    paths
        .iter()
        .map(|p| FaceSet::load(p, TRAIN_HELD_OUT))
        .collect()
}

/// A loader batch as tensors on `device`.
fn to_device(host: &HostBatch, device: Device) -> [Batch; 2] {
    let s = host.size as i64;
    let tensor = |v: &[f32]| {
        Tensor::from_slice(v)
            .reshape([host.count as i64, 3, s, s])
            .to_device(device)
    };
    [0, 1].map(|p| {
        let person = &host.people[p];
        Batch {
            input: tensor(&person.input),
            target: tensor(&person.target),
            visible: (!person.visible.is_empty()).then(|| {
                Tensor::from_slice(&person.visible)
                    .reshape([host.count as i64, 1, s, s])
                    .to_device(device)
            }),
        }
    })
}

/// `metrics.csv`: one line per step and person with every loss term, appended across resumes.
struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    fn open(path: &Path) -> Result<Self> {
        let new_file = !path.is_file();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .at("write", path)?;
        if new_file {
            writeln!(
                file,
                "step,seconds,person,total,l1,ssim,edge,mask,gan,feature,discriminator"
            )
            .at("write", path)?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    fn append(&mut self, step: i64, secs: f64, terms: &[Terms; 2]) -> Result<()> {
        for (p, t) in terms.iter().enumerate() {
            writeln!(
                self.file,
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
            .at("write", &self.path)?;
        }
        Ok(())
    }
}

fn progress_bar(opts: &RunOptions, at: i64) -> ProgressBar {
    let bar = if opts.progress {
        ProgressBar::new(opts.steps.unwrap_or(0).max(0) as u64)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps {per_sec} (eta {eta}) {msg}",
    ) {
        bar.set_style(style);
    }
    bar.set_position(at.max(0) as u64);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(steps: Option<i64>, minutes: Option<f64>) -> RunOptions {
        RunOptions {
            config: TrainConfig::default(),
            datasets: [vec![], vec![]],
            out: PathBuf::new(),
            init: None,
            snapshots: vec![],
            steps,
            minutes,
            save_every: 100,
            preview_every: 100,
            device: Device::Cpu,
            progress: false,
        }
    }

    #[test]
    fn a_run_is_as_far_along_as_its_nearer_bound_says() {
        assert_eq!(run_progress(&options(None, None), 5000, 3600.0), 0.0);
        assert_eq!(run_progress(&options(Some(1000), None), 250, 9e9), 0.25);
        assert_eq!(run_progress(&options(None, Some(10.0)), 9999, 300.0), 0.5);
        // Both: whichever ends the run first.
        assert_eq!(
            run_progress(&options(Some(1000), Some(10.0)), 800, 60.0),
            0.8
        );
        assert_eq!(
            run_progress(&options(Some(1000), Some(10.0)), 100, 540.0),
            0.9
        );
        assert_eq!(run_progress(&options(Some(1000), None), 1500, 0.0), 1.0);
    }
}
