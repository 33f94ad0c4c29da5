//! `host-trainer verify`

use std::path::PathBuf;

use anyhow::{Context, Result};
use host_trainer::artefacts::keys;
use shared_proto::bundle::{self, VerifyingKey};

#[derive(clap::Args)]
pub struct Args {
    /// Bundle folder.
    bundle: PathBuf,
    /// Trusted public key (64 hex digits or a host.pub file); repeatable. Default: this host's.
    #[arg(long)]
    pubkey: Vec<String>,
}

fn trusted(keys_given: &[String]) -> Result<Vec<VerifyingKey>> {
    keys_given
        .iter()
        .map(|k| bundle::read_public_key(k).with_context(|| format!("--pubkey {k}")))
        .collect()
}

pub fn run(args: Args) -> Result<()> {
    let mut trust = trusted(&args.pubkey)?;
    if trust.is_empty() {
        let own = keys::default_dir().join(keys::PUBLIC);
        anyhow::ensure!(
            own.is_file(),
            "no trusted key: pass --pubkey <hex or host.pub file> (no host key at {})",
            own.display()
        );
        trust = trusted(&[own.display().to_string()])?;
    }
    let b = bundle::open(&args.bundle, &trust)
        .with_context(|| format!("verifying bundle {}", args.bundle.display()))?;
    say!(
        "ok: {} — format version {}, {} files match their sha256, {} models, signed by trusted key {}",
        args.bundle.display(),
        shared_proto::FORMAT_VERSION,
        b.manifest.files.len(),
        b.manifest.models.len(),
        b.signer_hex()
    );
    Ok(())
}
