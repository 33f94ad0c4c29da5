//! `host-trainer train`

use std::path::PathBuf;

use anyhow::{Context, Result};
use host_trainer::artefacts::read_toml;
use host_trainer::artefacts::run::CHECKPOINT;
use host_trainer::artefacts::train_config::TrainConfig;
use host_trainer::stages::train::{self, RunOptions};

use super::common::{stop_flag, DeviceArg};

#[derive(clap::Args)]
pub struct Args {
    /// Dataset of person A (from `extract`).
    #[arg(long)]
    a: PathBuf,
    /// Dataset of person B.
    #[arg(long)]
    b: PathBuf,
    /// Run folder: config copy, checkpoint, metrics.csv, loss_curve.png, preview.png. An existing
    /// run is resumed from its checkpoint with its own config.
    #[arg(long)]
    out: PathBuf,
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
    steps: Option<i64>,
    /// Stop after this many minutes of this invocation.
    #[arg(long)]
    minutes: Option<f64>,
    /// Save the checkpoint every N steps (and always at the end or on Ctrl-C).
    #[arg(long, default_value_t = 100)]
    save_every: i64,
    /// Write preview.png every N steps.
    #[arg(long, default_value_t = 100)]
    preview_every: i64,
    #[command(flatten)]
    device: DeviceArg,
    /// Turn on the config's `mixed_precision` (fp16 autocast + loss scaling; CUDA only).
    #[arg(long)]
    mixed_precision: bool,
}

pub fn run(args: Args) -> Result<()> {
    let stop = stop_flag()?;
    let mut config: TrainConfig = match &args.config {
        Some(path) => read_toml(path).context("--config: invalid training config")?,
        None => TrainConfig::default(),
    };
    if let Some(p) = args.preset {
        config.preset = p;
    }
    if let Some(b) = args.batch_size {
        config.batch_size = b;
    }
    anyhow::ensure!(config.batch_size > 0, "batch size must be at least 1");
    let device = args.device.resolve()?;
    anyhow::ensure!(
        args.steps.is_some() || args.minutes.is_some(),
        "give --steps or --minutes (or both) so training ends"
    );
    config.mixed_precision |= args.mixed_precision;
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
    let opts = RunOptions {
        config,
        datasets: [args.a, args.b],
        out: args.out.clone(),
        steps: args.steps,
        minutes: args.minutes,
        save_every: args.save_every,
        preview_every: args.preview_every,
        device,
        progress: true,
    };
    let s = train::train(&opts, &stop)
        .with_context(|| format!("training into {}", args.out.display()))?;
    let recoveries = if s.nan_recoveries > 0 {
        format!(", {} NaN recoveries", s.nan_recoveries)
    } else {
        String::new()
    };
    println!(
        "{} steps ({} this run, {:.0} s, {:.1} images/s); last loss A {:.4} B {:.4}{recoveries}",
        s.steps, s.steps_this_run, s.seconds, s.images_per_second, s.last[0].total, s.last[1].total,
    );
    println!(
        "preview: {}\ncheckpoint: {}",
        s.preview.display(),
        args.out.join(CHECKPOINT).display()
    );
    Ok(())
}
