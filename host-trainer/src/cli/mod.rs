//! The command line, one module per subcommand (as tract's `cli/`): each holds its `Args` and
//! a `run` that turns them into a library call and prints what the user needs. Errors are
//! `anyhow` with context that says what was being done; the library's error chain says why.

/// Prints one line of a command's output. A reader that went away (`host-trainer … | head`)
/// ends the command quietly, as it ends any Unix filter, instead of a panic in `println!`.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::say_line(format_args!($($arg)*))?
    };
}

mod common;
mod convert;
mod deploy;
mod detect;
mod doctor;
mod eval;
mod eval_detector;
mod export;
mod extract;
mod inspect;
mod keys;
mod model_info;
mod pretrain;
mod train;
mod train_detector;
mod verify;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// stdout was closed by its reader: not a failure of the command, which stops there.
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed by its reader")]
pub struct ReaderGone;

/// [`say!`]'s writer: one line to stdout, [`ReaderGone`] when nobody reads it any more.
pub fn say_line(line: std::fmt::Arguments<'_>) -> Result<()> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{line}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(ReaderGone.into()),
        written => written.context("writing to stdout"),
    }
}

#[derive(Parser)]
#[command(
    name = "host-trainer",
    version,
    about = "Extract, train, export and check doppel face models"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the toolchain, libtorch/CUDA, the face detector, the sample media and the cross
    /// toolchain.
    Doctor(doctor::Args),
    /// Extract aligned, curated face crops of one consenting person from videos or photos.
    Extract(extract::Args),
    /// Train a warm start: encoder and decoders on every identity given, for `train --init`.
    Pretrain(pretrain::Args),
    /// Train the face-swap autoencoder (shared encoder, decoders for A and B) with its GAN.
    Train(train::Args),
    /// Measure a run on held-out frames: PSNR/SSIM, identity transfer, pose keeping, flicker.
    Eval(eval::Args),
    /// Swap the faces of a video with a trained run; every frame is labelled SYNTHETIC.
    Convert(convert::Args),
    /// Train the deepfake detector on real faces, self-blended images and (with --run) swaps;
    /// report AUC per kind of fake on the other person's video.
    TrainDetector(train_detector::Args),
    /// Measure a trained deepfake detector on one dataset's video: AUC, accuracy, log loss per
    /// kind of fake (SBI, and with --run the run's swaps and reconstructions), ROC plot.
    EvalDetector(eval_detector::Args),
    /// Score a video with the bundle's deepfake detector: per-frame fake probability, cues,
    /// verdict, plot.
    Detect(detect::Args),
    /// Create (first use) or show this host's bundle signing key.
    Keys(keys::Args),
    /// Write a trained run as a signed bundle of ONNX models (optionally int8), checked in tract.
    Export(export::Args),
    /// Send a bundle to a booth (or a fleet): upload, verify on the booth, activate on trial,
    /// wait for the verdict, print the booth's status.
    Deploy(deploy::Args),
    /// Print a bundle's manifest as JSON (after checking its integrity).
    Inspect(inspect::Args),
    /// Check a bundle's signature, format version and file hashes as a device would.
    Verify(verify::Args),
    /// Print a model preset layer by layer: shapes, parameters and MFLOPs, counted from the spec.
    ModelInfo(model_info::Args),
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Doctor(args) => doctor::run(args),
        Command::Extract(args) => extract::run(args),
        Command::Pretrain(args) => pretrain::run(args),
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Convert(args) => convert::run(args),
        Command::TrainDetector(args) => train_detector::run(args),
        Command::EvalDetector(args) => eval_detector::run(args),
        Command::Detect(args) => detect::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Export(args) => export::run(args),
        Command::Deploy(args) => deploy::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Verify(args) => verify::run(args),
        Command::ModelInfo(args) => model_info::run(args),
    }
}
