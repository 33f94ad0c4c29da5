//! `host-trainer train`

use std::path::PathBuf;

use anyhow::{Context, Result};
use host_trainer::artefacts::read_toml;
use host_trainer::artefacts::run::CHECKPOINT;
use host_trainer::artefacts::train_config::TrainConfig;
use host_trainer::stages::train::{self, RunOptions, RunSummary};

use super::common::{stop_flag, DeviceArg};

#[derive(clap::Args)]
pub struct Args {
    /// Dataset(s) of person A (from `extract`); several are pooled (more footage of A).
    #[arg(long, required = true, num_args = 1..)]
    a: Vec<PathBuf>,
    /// Dataset(s) of person B.
    #[arg(long, required = true, num_args = 1..)]
    b: Vec<PathBuf>,
    /// Run folder: config copy, checkpoint, metrics.csv, loss_curve.png, preview.png. An existing
    /// run is resumed from its checkpoint with its own config.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    schedule: Schedule,
    /// Save the checkpoint every N steps (and always at the end or on Ctrl-C).
    #[arg(long, default_value_t = 100)]
    save_every: i64,
    /// Write preview.png every N steps.
    #[arg(long, default_value_t = 100)]
    preview_every: i64,
    /// Start the generator from a warm start (`host-trainer pretrain`'s warm_start.safetensors,
    /// e.g. assets/pretrained/lite.safetensors) instead of random weights; a resumed run ignores
    /// it.
    #[arg(long)]
    init: Option<PathBuf>,
    /// Also keep the generator at these steps (`snapshots/generator-<step>.safetensors`, fp16;
    /// `eval --weights` measures one).
    #[arg(long, value_delimiter = ',')]
    snapshot_at: Vec<i64>,
}

/// What and how long to train: the settings `train` and `pretrain` share.
#[derive(clap::Args)]
pub struct Schedule {
    /// Training config TOML (see configs/train.example.toml; every key optional).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override the config's architecture preset (original, lite, hq128).
    #[arg(long)]
    preset: Option<String>,
    /// Override the config's batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Stop at this total step count.
    #[arg(long)]
    pub steps: Option<i64>,
    /// Stop after this many minutes of this invocation.
    #[arg(long)]
    pub minutes: Option<f64>,
    #[command(flatten)]
    device: DeviceArg,
    /// Turn on the config's `mixed_precision` (fp16 autocast + loss scaling; CUDA only).
    #[arg(long)]
    mixed_precision: bool,
}

impl Schedule {
    /// The training config with the flags applied, and the device.
    pub fn resolve(&self) -> Result<(TrainConfig, tch::Device)> {
        let mut config: TrainConfig = match &self.config {
            Some(path) => read_toml(path).context("--config: invalid training config")?,
            None => TrainConfig::default(),
        };
        if let Some(p) = &self.preset {
            config.preset = p.clone();
        }
        if let Some(b) = self.batch_size {
            config.batch_size = b;
        }
        anyhow::ensure!(config.batch_size > 0, "batch size must be at least 1");
        let device = self.device.resolve()?;
        anyhow::ensure!(
            self.steps.is_some() || self.minutes.is_some(),
            "give --steps or --minutes (or both) so training ends"
        );
        config.mixed_precision |= self.mixed_precision;
        if config.mixed_precision && !device.is_cuda() {
            tracing::warn!("mixed precision needs CUDA; training in f32 on {device:?}");
        }
        let fp16 = config.mixed_precision && device.is_cuda();
        let precision = if fp16 {
            " with fp16 mixed precision"
        } else {
            ""
        };
        tracing::info!("training {} on {device:?}{precision}", config.preset);
        Ok((config, device))
    }
}

pub fn run(args: Args) -> Result<()> {
    let stop = stop_flag()?;
    let (config, device) = args.schedule.resolve()?;
    let opts = RunOptions {
        config,
        datasets: [args.a, args.b],
        out: args.out.clone(),
        init: args.init,
        snapshots: args.snapshot_at,
        steps: args.schedule.steps,
        minutes: args.schedule.minutes,
        save_every: args.save_every,
        preview_every: args.preview_every,
        device,
        progress: true,
    };
    let s = train::train(&opts, &stop)
        .with_context(|| format!("training into {}", args.out.display()))?;
    print_summary(&s, &args.out)?;
    Ok(())
}

pub fn print_summary(s: &RunSummary, out: &std::path::Path) -> Result<()> {
    let recoveries = if s.nan_recoveries > 0 {
        format!(", {} NaN recoveries", s.nan_recoveries)
    } else {
        String::new()
    };
    say!(
        "{} steps ({} this run, {:.0} s, {:.1} images/s); last loss A {:.4} B {:.4}{recoveries}",
        s.steps,
        s.steps_this_run,
        s.seconds,
        s.images_per_second,
        s.last[0].total,
        s.last[1].total,
    );
    say!(
        "preview: {}\ncheckpoint: {}",
        s.preview.display(),
        out.join(CHECKPOINT).display()
    );
    Ok(())
}
