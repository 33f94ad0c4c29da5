//! `host-trainer eval-detector`

use std::path::PathBuf;

use anyhow::{Context, Result};
use host_trainer::artefacts::fake_detector::{REPORT_MD, ROC};
use host_trainer::stages::fake_detector::{evaluate, EvalOptions};
use host_trainer::Person;

use super::common::DeviceArg;

#[derive(clap::Args)]
pub struct Args {
    /// Output folder of `train-detector`.
    #[arg(long)]
    detector: PathBuf,
    /// Dataset whose video to test on.
    #[arg(long)]
    dataset: PathBuf,
    /// Which person of the run this dataset is (A or B), for its swaps.
    #[arg(long, value_enum, ignore_case = true, default_value_t = Person::B)]
    person: Person,
    /// A swap run: its swaps and reconstructions of this dataset join the fakes.
    #[arg(long)]
    run: Option<PathBuf>,
    /// Another person's dataset: graphics swaps paste its real faces into this one's.
    #[arg(long)]
    donors: Option<PathBuf>,
    /// Output folder (default: <detector>/eval).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write every scored crop as a PNG, with `samples.csv` (file, kind, late, network
    /// score, over-blur), to look at what the detector saw or study it with other tools.
    #[arg(long)]
    save_crops: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn run(args: Args) -> Result<()> {
    let out = args.out.unwrap_or_else(|| args.detector.join("eval"));
    let opts = EvalOptions {
        detector: args.detector,
        dataset: args.dataset.clone(),
        person: args.person,
        run: args.run,
        donors: args.donors,
        out: out.clone(),
        save_crops: args.save_crops,
        seed: 1,
        device: args.device.resolve()?,
    };
    let report = evaluate(&opts)
        .with_context(|| format!("evaluating the detector on {}", args.dataset.display()))?;
    say!("{}", report.markdown().trim_end());
    say!("\nwritten: {0}/{REPORT_MD}, {0}/{ROC}", out.display());
    Ok(())
}
