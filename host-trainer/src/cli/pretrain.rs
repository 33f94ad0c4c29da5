//! `host-trainer pretrain`

use std::path::PathBuf;

use anyhow::{Context, Result};
use host_trainer::stages::train::pretrain::{pretrain, PretrainOptions, PROVENANCE};

use super::common::stop_flag;
use super::train::{print_summary, Schedule};

#[derive(clap::Args)]
pub struct Args {
    /// The datasets of every identity the warm start learns (keep out the one you test
    /// strangers with).
    #[arg(long, required = true, num_args = 1..)]
    datasets: Vec<PathBuf>,
    /// Run folder; ends with warm_start.safetensors (generator, fp16) and warm_start.json.
    #[arg(long)]
    out: PathBuf,
    /// Continue an earlier warm start (its generator; the optimiser and discriminators start
    /// fresh), e.g. assets/pretrained/lite.safetensors on a machine without its run folder; the
    /// new one's provenance records it and counts its steps in. A resumed run ignores it.
    #[arg(long)]
    init: Option<PathBuf>,
    #[command(flatten)]
    schedule: Schedule,
}

pub fn run(args: Args) -> Result<()> {
    let stop = stop_flag()?;
    let (config, device) = args.schedule.resolve()?;
    let opts = PretrainOptions {
        config,
        datasets: args.datasets,
        out: args.out.clone(),
        init: args.init,
        steps: args.schedule.steps,
        minutes: args.schedule.minutes,
        device,
        progress: true,
    };
    let (summary, provenance) = pretrain(&opts, &stop)
        .with_context(|| format!("pretraining into {}", args.out.display()))?;
    print_summary(&summary, &args.out)?;
    say!(
        "warm start: {} ({:.1} MB, sha256 {}), provenance {}",
        args.out.join(&provenance.file).display(),
        provenance.bytes as f64 / 1e6,
        provenance.sha256,
        args.out.join(PROVENANCE).display()
    );
    Ok(())
}
