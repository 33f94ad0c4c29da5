//! `host-trainer eval`

use std::path::PathBuf;

use anyhow::{Context, Result};
use host_trainer::artefacts::run::{EVAL_JSON, EVAL_MD};
use host_trainer::stages::eval::{self, judge::JudgeCommand, EvalOptions};

use super::common::{DeviceArg, FaceDetectorArg};

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
}

pub fn run(args: Args) -> Result<()> {
    let opts = EvalOptions {
        run: args.run.clone(),
        weights: args.weights.clone(),
        datasets: [args.a, args.b],
        face_detector: args.face_detector.path,
        device: args.device.resolve()?,
        judge: (!args.no_judge).then(|| JudgeCommand::in_repository(&PathBuf::from("."))),
        judge_frames: args.judge_frames,
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
    print!("{}", report.markdown());
    println!("\nwritten: {}, {}", md.display(), json.display());
    Ok(())
}
