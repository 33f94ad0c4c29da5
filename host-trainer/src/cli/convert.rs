//! `host-trainer convert`

use std::path::PathBuf;

use anyhow::{Context, Result};
use facekit::blend::{BlendOptions, MaskSource};
use host_trainer::stages::convert::{convert, provenance_path, ConvertOptions};
use host_trainer::Person;

use super::common::{non_negative, positive, DeviceArg, FaceDetectorArg};

#[derive(clap::Args)]
pub struct Args {
    /// Run folder of `host-trainer train`.
    #[arg(long)]
    run: PathBuf,
    /// Video of the source person.
    #[arg(long)]
    input: PathBuf,
    /// Output video (.mp4 or .mkv); a `<output>.provenance.json` sidecar is written beside it.
    #[arg(long)]
    output: PathBuf,
    /// Render as this person's decoder: B (swap A into B) or A.
    #[arg(long, value_enum, ignore_case = true, default_value_t = Person::B)]
    to: Person,
    /// Mask erosion in crop pixels (negative dilates).
    #[arg(long, default_value_t = 2, allow_negative_numbers = true)]
    erode: i32,
    /// Mask feather (Gaussian sigma, crop pixels).
    #[arg(long, default_value_t = 2.0, value_parser = non_negative)]
    feather: f32,
    /// Skip the colour transfer to the scene.
    #[arg(long)]
    no_colour_transfer: bool,
    /// Unsharp-mask amount on the generated face before it is pasted (0 = off): edges the
    /// small crop loses when drawn over a larger face.
    #[arg(long, default_value_t = BlendOptions::default().sharpen, value_parser = non_negative)]
    sharpen: f32,
    /// learned (the decoder's mask), hull (the face ellipse), union (both), or visible (the
    /// ellipse less what the learned mask leaves out: a hand in front of the face stays; needs
    /// a model trained with `augment.occluders`). Default: visible for such a run, else union.
    #[arg(long)]
    mask: Option<MaskSource>,
    /// Landmark smoothing: One-Euro minimum cutoff in Hz (lower = steadier, more lag).
    #[arg(long, default_value_t = 1.5, value_parser = positive)]
    smooth_cutoff: f32,
    /// Skip this many input frames first (the output starts there).
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Stop after this many frames.
    #[arg(long)]
    max_frames: Option<u64>,
    #[command(flatten)]
    face_detector: FaceDetectorArg,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn run(args: Args) -> Result<()> {
    let mask = match args.mask {
        Some(mask) => mask,
        None => host_trainer::artefacts::run::config(&args.run)
            .with_context(|| {
                format!(
                    "reading the settings of run {} (is it a `host-trainer train` run folder?)",
                    args.run.display()
                )
            })?
            .paste_mask(),
    };
    let opts = ConvertOptions {
        run: args.run,
        input: args.input,
        output: args.output.clone(),
        to: args.to,
        blend: BlendOptions {
            erode: args.erode,
            feather: args.feather,
            colour_transfer: !args.no_colour_transfer,
            sharpen: args.sharpen,
            mask,
        },
        smooth_cutoff: args.smooth_cutoff,
        start: args.start,
        max_frames: args.max_frames,
        face_detector: args.face_detector.path,
        device: args.device.resolve()?,
    };
    let p = convert(&opts).with_context(|| format!("converting {}", opts.input.display()))?;
    say!(
        "{} frames ({} swapped, {}), every frame labelled SYNTHETIC\noutput: {}\nprovenance: {}",
        p.frames,
        p.frames_swapped,
        p.direction,
        args.output.display(),
        provenance_path(&args.output).display()
    );
    Ok(())
}
