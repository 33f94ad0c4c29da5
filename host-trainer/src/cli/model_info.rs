//! `host-trainer model-info`

use anyhow::{Context, Result};
use model_spec::describe::{describe, describe_fake_detector};
use model_spec::{fake_detector, swap};

#[derive(clap::Args)]
pub struct Args {
    /// original (the classic 64-px deepfake model), lite (device), hq128; deepfake detectors:
    /// meso4, meso-wide, mobile.
    #[arg(long, default_value = "original")]
    preset: String,
    /// Print the spec as JSON instead (what the Python peer benchmark builds from).
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let preset = &args.preset;
    if let Some(d) = fake_detector::preset(preset) {
        if args.json {
            say!("{}", serde_json::to_string_pretty(&d)?);
        } else {
            say!("{}", describe_fake_detector(&d).trim_end());
        }
        return Ok(());
    }
    let spec = swap::preset(preset).with_context(|| {
        format!(
            "unknown preset {preset:?}; choose one of {:?} or a detector {:?}",
            swap::PRESETS,
            fake_detector::PRESETS
        )
    })?;
    spec.validate()?;
    if args.json {
        say!("{}", serde_json::to_string_pretty(&spec)?);
    } else {
        say!("{}", describe(&spec).trim_end());
    }
    Ok(())
}
