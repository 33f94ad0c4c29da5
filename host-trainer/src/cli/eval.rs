//! `host-trainer eval`

use std::path::PathBuf;

use anyhow::{Context, Result};
use host_trainer::artefacts::run::{EVAL_JSON, EVAL_MD};
use host_trainer::stages::eval;

use super::common::{DeviceArg, FaceDetectorArg};

#[derive(clap::Args)]
pub struct Args {
    /// Run folder of `host-trainer train`.
    #[arg(long)]
    run: PathBuf,
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
}

pub fn run(args: Args) -> Result<()> {
    let device = args.device.resolve()?;
    let report = eval::evaluate(
        &args.run,
        [&args.a, &args.b],
        &args.face_detector.path,
        device,
    )
    .with_context(|| format!("evaluating {}", args.run.display()))?;
    report
        .write(&args.run)
        .with_context(|| format!("writing the report into {}", args.run.display()))?;
    print!("{}", report.markdown());
    println!(
        "\nwritten: {0}/{EVAL_MD}, {0}/{EVAL_JSON}",
        args.run.display()
    );
    Ok(())
}
