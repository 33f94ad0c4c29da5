//! `host-trainer keys`

use std::path::PathBuf;

use anyhow::{Context, Result};
use host_trainer::artefacts::keys;

#[derive(clap::Args)]
pub struct Args {
    /// Key folder (default: $DOPPEL_KEYS, else ~/.config/doppel/keys).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let dir = args.dir.unwrap_or_else(keys::default_dir);
    let (key, created) =
        keys::load_or_create(&dir).with_context(|| format!("host key in {}", dir.display()))?;
    say!(
        "{} {}\npublic key: {}\nput the public key in the device's trusted_keys",
        if created { "created" } else { "existing" },
        dir.join(keys::SECRET).display(),
        keys::public_hex(&key)
    );
    Ok(())
}
