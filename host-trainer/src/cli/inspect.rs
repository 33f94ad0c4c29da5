//! `host-trainer inspect`

use std::path::PathBuf;

use anyhow::{Context, Result};
use shared_proto::bundle;

#[derive(clap::Args)]
pub struct Args {
    /// Bundle folder.
    bundle: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let dir = args.bundle;
    let b = bundle::open(&dir, &[]).with_context(|| format!("reading bundle {}", dir.display()))?;
    say!("{}", serde_json::to_string_pretty(&b.manifest)?);
    eprintln!(
        "integrity ok; signed by {} (use `verify --pubkey` to check it is a trusted key)",
        b.signer_hex()
    );
    Ok(())
}
