//! `host-trainer train-detector`

use std::path::PathBuf;

use anyhow::{Context, Result};
use host_trainer::artefacts::fake_detector::{REPORT_MD, ROC, WEIGHTS};
use host_trainer::stages::fake_detector::{train_detector, DetectorOptions, FitOptions};

use super::common::DeviceArg;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset of person A (the run's A when --run is given).
    #[arg(long)]
    a: PathBuf,
    /// Dataset of person B (the run's B when --run is given).
    #[arg(long)]
    b: PathBuf,
    /// Further identities, one dataset (one video, one camera) each; repeat the flag. The
    /// report holds every identity out in turn, so more of them make it a fairer test.
    #[arg(long = "identity")]
    identities: Vec<PathBuf>,
    /// A swap run whose swaps and reconstructions of A and B join the test fakes (an unseen
    /// generator: detectors train on self-blends and graphics swaps only).
    #[arg(long)]
    run: Option<PathBuf>,
    /// Output folder: detector.safetensors, detector.toml, eval_detector.md/json, roc.png.
    #[arg(long)]
    out: PathBuf,
    /// meso4, meso-wide or mobile.
    #[arg(long, default_value = "meso4")]
    preset: String,
    /// Optimiser steps per fit. On this 2-core box 1000 steps took the SBI cell from AUC 0.91
    /// (200 steps) to 0.97.
    #[arg(long, default_value_t = 600)]
    steps: usize,
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(2..))]
    batch_size: u64,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Weight of the blending-boundary target beside the real/fake label (Face X-ray's map of
    /// where a self-blend was pasted, asked of the quarter-resolution features during training
    /// only); 0 trains on the label alone.
    #[arg(long, default_value_t = 0.0)]
    boundary_weight: f64,
    /// Score at or above which a face is called fake (default: calibrated at the equal-error
    /// point on the last 20% of each video's frames, which training leaves out).
    #[arg(long)]
    threshold: Option<f32>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fits per report cell (seeds seed, seed+1, …), reported as mean ± standard deviation.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// Hold out only this identity in the report (its dataset folder's name, e.g. A); repeat
    /// the flag. Default: every identity. Every identity still trains the saved model.
    #[arg(long = "hold-out")]
    hold_out: Vec<String>,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn run(args: Args) -> Result<()> {
    let opts = DetectorOptions {
        datasets: [args.a, args.b]
            .into_iter()
            .chain(args.identities)
            .collect(),
        run: args.run,
        out: args.out.clone(),
        preset: args.preset,
        fit: FitOptions {
            steps: args.steps,
            batch: args.batch_size as usize,
            lr: args.lr,
            boundary_weight: args.boundary_weight,
            device: args.device.resolve()?,
        },
        seed: args.seed,
        seeds: args.seeds as usize,
        hold_out: args.hold_out,
        threshold: args.threshold,
        progress: true,
    };
    let report = train_detector(&opts)
        .with_context(|| format!("training the detector into {}", args.out.display()))?;
    say!("{}", report.markdown().trim_end());
    say!(
        "\nwritten: {0}/{WEIGHTS}, {0}/{REPORT_MD}, {0}/{ROC}",
        args.out.display()
    );
    Ok(())
}
