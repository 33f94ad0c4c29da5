//! `host-trainer eval`

use std::path::PathBuf;

use anyhow::{Context, Result};
use host_trainer::artefacts::run::{EVAL_JSON, EVAL_MD};
use host_trainer::stages::eval::{self, judge::JudgeCommand, EvalOptions};

use facekit::blend::BlendOptions;

use super::common::{non_negative, DeviceArg, FaceDetectorArg};

#[derive(clap::Args)]
pub struct Args {
    /// Run folder of `host-trainer train`.
    #[arg(long)]
    run: PathBuf,
    /// Evaluate these generator weights (a snapshot or a warm start) instead of the run's
    /// checkpoint; the report goes next to them (`<weights>.eval.json`, `.eval.md`).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Dataset of person A.
    #[arg(long)]
    a: PathBuf,
    /// Dataset of person B.
    #[arg(long)]
    b: PathBuf,
    #[command(flatten)]
    face_detector: FaceDetectorArg,
    #[command(flatten)]
    device: DeviceArg,
    /// Skip the outside identity judge (dlib; installed by `make setup` into .venv).
    #[arg(long)]
    no_judge: bool,
    /// Swapped held-out frames per direction the judge looks at, and real frames per person
    /// its reference descriptors come from.
    #[arg(long, default_value_t = 40)]
    judge_frames: usize,
    /// Share of A's frames evaluated (the last of each source; the rest are the judge's
    /// references). 0.1 is what `train` holds out; for a stranger no run saw, 0.5.
    #[arg(long, default_value_t = 0.1, value_parser = share)]
    held_out_a: f64,
    /// The same for B.
    #[arg(long, default_value_t = 0.1, value_parser = share)]
    held_out_b: f64,
    /// Measure the swap's identity shift on the reference (not evaluated) frames of --a and
    /// --b instead of the run's own datasets: a stranger's swap as a booth that first
    /// measured the visitor would make it.
    #[arg(long)]
    means_from_datasets: bool,
    /// Unsharp-mask amount at the paste, as `convert --sharpen` applies it.
    #[arg(long, default_value_t = BlendOptions::default().sharpen, value_parser = non_negative)]
    sharpen: f32,
}

/// A share strictly between 0 and 1: some frames evaluated, some left as references.
fn share(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!(
            "{text}: give a share above 0 and below 1 (e.g. 0.5)"
        )),
    }
}

pub fn run(args: Args) -> Result<()> {
    let opts = EvalOptions {
        run: args.run.clone(),
        weights: args.weights.clone(),
        datasets: [args.a, args.b],
        held_out: [args.held_out_a, args.held_out_b],
        face_detector: args.face_detector.path,
        device: args.device.resolve()?,
        judge: (!args.no_judge).then(|| JudgeCommand::in_repository(&PathBuf::from("."))),
        judge_frames: args.judge_frames,
        sharpen: args.sharpen,
        means_from_datasets: args.means_from_datasets,
    };
    let report =
        eval::evaluate(&opts).with_context(|| format!("evaluating {}", args.run.display()))?;
    let (json, md) = match &args.weights {
        Some(w) => (w.with_extension("eval.json"), w.with_extension("eval.md")),
        None => (args.run.join(EVAL_JSON), args.run.join(EVAL_MD)),
    };
    report
        .write_as(&json, &md)
        .with_context(|| format!("writing the report {}", json.display()))?;
    say!("{}", report.markdown().trim_end());
    say!("\nwritten: {}, {}", md.display(), json.display());
    Ok(())
}
