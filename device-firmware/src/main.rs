//! `doppel-device`: the booth daemon. For now it runs the offline detection slice.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use device_firmware::offline::{detect_frames, Options};
use facekit::{open_source, DetectorConfig, RetinaFace};

#[derive(Parser)]
#[command(name = "doppel-device", version, about = "doppel booth daemon")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Detect faces in a video file or image folder; write detections.jsonl and contact_sheet.png.
    DetectVideo {
        /// Video file (mp4/avi/mkv/mov) or folder of PNG/JPEG frames.
        #[arg(long)]
        input: PathBuf,
        /// Output folder (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// RetinaFace ONNX model.
        #[arg(long, default_value = "models/retinaface-mnet025.onnx")]
        model: PathBuf,
        /// Minimum face probability.
        #[arg(long, default_value_t = DetectorConfig::default().score_threshold)]
        score_threshold: f32,
        /// Process every Nth frame.
        #[arg(long, default_value_t = 1)]
        every: u64,
        /// Stop after this many processed frames.
        #[arg(long)]
        max_frames: Option<u64>,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()) {
        // One line the operator can act on; the chain carries the file and the fix.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::DetectVideo {
            input,
            out,
            model,
            score_threshold,
            every,
            max_frames,
        } => {
            let config = DetectorConfig {
                score_threshold,
                ..Default::default()
            };
            let detector = RetinaFace::load(&model, config).context("loading the face detector")?;
            let mut source = open_source(&input).context("opening the input")?;
            let opts = Options {
                every,
                max_frames,
                ..Default::default()
            };
            let summary = detect_frames(&detector, source.as_mut(), &out, &opts)
                .with_context(|| format!("detecting faces in {}", input.display()))?;
            println!(
                "{} frames, {} with a face\ndetections: {}\ncontact sheet: {}",
                summary.frames,
                summary.frames_with_faces,
                summary.jsonl.display(),
                summary.contact_sheet.display()
            );
            Ok(())
        }
    }
}
