//! `host-trainer detect`: score a video with the bundle's deepfake detector.

use std::path::PathBuf;

use anyhow::{Context, Result};
use host_trainer::stages::detect_fakes::{detect, DetectOptions};

use super::common::FaceDetectorArg;

#[derive(clap::Args)]
pub struct Args {
    /// Bundle folder with a detector (export --detector).
    #[arg(long)]
    bundle: PathBuf,
    /// Video file or image folder.
    #[arg(long)]
    input: PathBuf,
    /// Output folder: detect.json and score.png.
    #[arg(long)]
    out: PathBuf,
    /// Mean score at or above which the verdict is FAKE (default: the threshold the
    /// bundle's detector was calibrated to, else 0.5).
    #[arg(long)]
    threshold: Option<f32>,
    /// Trusted public key (hex or host.pub file); without one only integrity is checked.
    #[arg(long)]
    pubkey: Option<String>,
    #[arg(long)]
    max_frames: Option<u64>,
    /// Also write a review video (MP4) for an operator: each frame beside the scored face, the
    /// face-boundary band and mouth box coloured by their cues, flicker and lost faces flagged,
    /// the score over the clip; slowed down --review-slowdown times.
    #[arg(long)]
    review: Option<PathBuf>,
    #[arg(long, default_value_t = 4.0)]
    review_slowdown: f64,
    #[command(flatten)]
    face_detector: FaceDetectorArg,
}

pub fn run(args: Args) -> Result<()> {
    let trusted =
        match &args.pubkey {
            Some(k) => vec![shared_proto::bundle::read_public_key(k)
                .with_context(|| format!("--pubkey {k}"))?],
            None => Vec::new(),
        };
    let opts = DetectOptions {
        bundle: args.bundle,
        trusted,
        input: args.input.clone(),
        out: args.out.clone(),
        threshold: args.threshold,
        smoothing: 0.7,
        face_detector: args.face_detector.path,
        max_frames: args.max_frames,
        review: args.review.clone(),
        review_slowdown: args.review_slowdown,
    };
    let r = detect(&opts).with_context(|| format!("scoring {}", args.input.display()))?;
    let c = &r.mean_cues;
    say!(
        "{}: {} (mean fake probability {:.3}, threshold {:.2}) over {} of {} frames",
        r.input,
        r.verdict,
        r.mean_score,
        r.threshold,
        r.frames_with_face,
        r.frames
    );
    say!(
        "cues: over-blur {:.2}, edge colour {:.2}, double edges {:.2}, mouth blur {:.2}, flicker {}",
        c.over_blur,
        c.edge_colour,
        c.double_edges,
        c.mouth_blur,
        r.mean_flicker.map_or("-".into(), |f| format!("{f:.2}"))
    );
    say!(
        "written: {0}/detect.json, {0}/score.png",
        args.out.display()
    );
    if let Some(review) = &args.review {
        say!("review video: {}", review.display());
    }
    Ok(())
}
