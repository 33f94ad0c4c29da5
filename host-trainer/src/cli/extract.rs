//! `host-trainer extract`

use std::path::PathBuf;

use anyhow::{Context, Result};
use facekit::RetinaFace;
use host_trainer::artefacts::dataset::Consent;
use host_trainer::artefacts::read_toml;
use host_trainer::stages::extract::{self, curate::CurationConfig, ExtractOptions};
use shared_proto::FaceCropSpec;

use super::common::{stop_flag, FaceDetectorArg};

#[derive(clap::Args)]
pub struct Args {
    /// Name of the person (A, B, or a real name); one dataset holds one person.
    #[arg(long)]
    person: String,
    /// Video files (mp4/avi/mkv/mov), image folders, or glob patterns of either.
    #[arg(long, required = true, num_args = 1..)]
    input: Vec<String>,
    /// Dataset folder (created; re-running resumes where the last run stopped).
    #[arg(long)]
    out: PathBuf,
    /// Consent record, required for a new dataset: "who=<name>;scope=<allowed use>[;when=<date>]".
    #[arg(long)]
    consent: Option<String>,
    /// Use every Nth frame of each video.
    #[arg(long, default_value_t = 1)]
    every: u64,
    /// Stop once the dataset holds this many accepted faces.
    #[arg(long)]
    max_faces: Option<usize>,
    /// Crop side in pixels (64 as in the classic model; 128 for hq).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(32..=512))]
    size: u32,
    /// Context around the tight face box, as a fraction of the crop side per edge (0 to 0.4).
    #[arg(long, default_value_t = 0.125)]
    margin: f32,
    /// Photos, folders or videos of the consenting person: faces that do not look like them are
    /// rejected as `wrong_person` (bystanders walking through the shot).
    #[arg(long, num_args = 1..)]
    reference: Vec<String>,
    /// Curation thresholds as TOML (keys of `curation.toml`; missing keys keep their defaults).
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    face_detector: FaceDetectorArg,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(args: Args) -> Result<()> {
    // First thing, so an early Ctrl-C also ends cleanly.
    let stop = stop_flag()?;
    let curation: CurationConfig = match &args.config {
        Some(path) => read_toml(path).context("--config: invalid curation config")?,
        None => CurationConfig::default(),
    };
    anyhow::ensure!(
        (0.0..0.4).contains(&args.margin),
        "--margin {} is out of range (0..0.4)",
        args.margin
    );
    let consent = args
        .consent
        .as_deref()
        .map(Consent::from_arg)
        .transpose()
        .context("--consent")?;
    let inputs = extract::inputs::expand(&args.input).context("--input")?;
    let detector = RetinaFace::load(
        &args.face_detector.path,
        extract::detector_config(&curation),
    )
    .context("loading the face detector")?;
    let crop = FaceCropSpec::new(args.size, args.margin);
    let reference = if args.reference.is_empty() {
        None
    } else {
        let refs = extract::inputs::expand(&args.reference).context("--reference")?;
        let crops = extract::reference_crops(&refs, &detector, &crop)
            .context("reading the reference photos")?;
        let reference = facekit::identity::Reference::new(&crops)
            .context("--reference: no face found in the reference photos")?;
        tracing::info!("reference: {} face(s) of {}", crops.len(), args.person);
        Some(reference)
    };
    let opts = ExtractOptions {
        person: args.person,
        inputs,
        out: args.out,
        consent,
        every: args.every,
        max_faces: args.max_faces,
        crop,
        curation,
        reference,
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        progress: true,
    };
    let summary = extract::extract(&opts, &detector, &stop)
        .with_context(|| format!("extracting {} into {}", opts.person, opts.out.display()))?;
    let fps = summary.frames_processed as f64 / summary.seconds.max(1e-9);
    say!(
        "{}: {} faces in the dataset; this run: {} frames ({:.1} frames/s), {} skipped as already done",
        opts.person, summary.accepted_total, summary.frames_processed, fps, summary.frames_skipped_as_done
    );
    for (reason, n) in &summary.counts {
        say!("  {:<12} {n}", reason.code());
    }
    say!("report: {}", summary.report.display());
    if summary.interrupted {
        say!("interrupted: the dataset is valid; run the same command again to continue");
    }
    Ok(())
}
