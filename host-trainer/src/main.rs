//! `host-trainer`: the workstation half of doppel.

mod doctor;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "host-trainer", version, about = "Extract, train, export and check doppel face models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the toolchain, libtorch/CUDA, the detector, the sample media and the cross toolchain.
    Doctor(doctor::Args),
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Doctor(args) => doctor::run(&args),
    }
}
