//! The bundle subcommands: `keys`, `export`, `inspect`, `verify`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use host_trainer::export::{self, keys, Calibration, ExportOptions};
use shared_proto::bundle;

#[derive(clap::Args)]
pub struct KeysArgs {
    /// Key folder (default: $DOPPEL_KEYS, else ~/.config/doppel/keys).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Run folder of `host-trainer train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Bundle folder to write (replaced only when every check passes).
    #[arg(long)]
    pub out: PathBuf,
    /// Quantise to int8 (per-channel weights, calibrated activations); checked against f32.
    #[arg(long)]
    pub int8: bool,
    /// Activation calibration: `minmax` or a percentile such as `p99.99`.
    #[arg(long, default_value = "minmax")]
    pub calibration: Calibration,
    /// Training faces per direction used for calibration.
    #[arg(long, default_value_t = 64)]
    pub calibration_faces: usize,
    /// Refuse the export when int8 PSNR against f32 on held-out faces is lower.
    #[arg(long, default_value_t = 35.0)]
    pub min_int8_psnr: f64,
    /// Dataset of person A (default: the one recorded in the run).
    #[arg(long, requires = "b")]
    pub a: Option<PathBuf>,
    /// Dataset of person B (default: the one recorded in the run).
    #[arg(long, requires = "a")]
    pub b: Option<PathBuf>,
    /// Output folder of `host-trainer train-detector`: adds the detector to the bundle.
    #[arg(long)]
    pub detector: Option<PathBuf>,
    /// Signing key folder (default: $DOPPEL_KEYS, else ~/.config/doppel/keys).
    #[arg(long)]
    pub keys: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Bundle folder.
    pub bundle: PathBuf,
    /// Trusted public key (64 hex digits or a host.pub file); repeatable. Default: this host's.
    #[arg(long)]
    pub pubkey: Vec<String>,
}

pub fn run_keys(args: KeysArgs) -> Result<()> {
    let dir = args.dir.unwrap_or_else(keys::default_dir);
    let (key, created) =
        keys::load_or_create(&dir).with_context(|| format!("host key in {}", dir.display()))?;
    println!(
        "{} {}\npublic key: {}\nput the public key in the device's trusted_keys",
        if created { "created" } else { "existing" },
        dir.join(keys::SECRET).display(),
        keys::public_hex(&key)
    );
    Ok(())
}

pub fn run_export(args: ExportArgs) -> Result<()> {
    let opts = ExportOptions {
        run: args.run.clone(),
        out: args.out.clone(),
        int8: args.int8,
        calibration: args.calibration,
        calibration_faces: args.calibration_faces,
        min_int8_psnr: args.min_int8_psnr,
        datasets: args.a.zip(args.b).map(|(a, b)| [a, b]),
        detector: args.detector,
        key_dir: args.keys.unwrap_or_else(keys::default_dir),
        device: tch::Device::Cpu,
    };
    let s = export::export(&opts)
        .with_context(|| format!("exporting {} to {}", args.run.display(), args.out.display()))?;
    if s.key_created {
        println!(
            "created signing key {}",
            opts.key_dir.join(keys::SECRET).display()
        );
    }
    for (name, random, real) in &s.f32_max_diff {
        println!(
            "{name}: f32 graph vs tch max |diff| {random:.1e} (random) {real:.1e} (real faces)"
        );
    }
    for m in &s.manifest.models {
        let file = s.manifest.files.iter().find(|f| f.path == m.file);
        print!(
            "{}: {:?}, {:.1} MB, {:.1} MFLOP",
            m.file,
            m.precision,
            file.map_or(0, |f| f.bytes) as f64 / 1e6,
            m.mflops
        );
        if let Some(q) = &m.int8 {
            print!(
                " | int8 vs f32 on {} held-out faces: PSNR {:.1} dB, max {:.4}, mean {:.5}; f32 file {:.1} MB ({:.2}x)",
                q.faces,
                q.psnr_db,
                q.max_abs_error,
                q.mean_abs_error,
                q.f32_bytes as f64 / 1e6,
                q.f32_bytes as f64 / q.int8_bytes.max(1) as f64
            );
        }
        println!();
    }
    println!("bundle: {} (signed by {})", args.out.display(), s.signer);
    Ok(())
}

fn trusted(keys_given: &[String]) -> Result<Vec<ed25519_dalek::VerifyingKey>> {
    keys_given
        .iter()
        .map(|k| {
            bundle::read_public_key(k)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("--pubkey {k}"))
        })
        .collect()
}

pub fn run_inspect(dir: PathBuf) -> Result<()> {
    let b = bundle::open(&dir, &[]).with_context(|| format!("reading bundle {}", dir.display()))?;
    println!("{}", serde_json::to_string_pretty(&b.manifest)?);
    eprintln!(
        "integrity ok; signed by {} (use `verify --pubkey` to check it is a trusted key)",
        b.signer_hex()
    );
    Ok(())
}

pub fn run_verify(args: VerifyArgs) -> Result<()> {
    let mut trust = trusted(&args.pubkey)?;
    if trust.is_empty() {
        let own = keys::default_dir().join(keys::PUBLIC);
        if own.is_file() {
            trust = trusted(&[own.display().to_string()])?;
        } else {
            anyhow::bail!(
                "no trusted key: pass --pubkey <hex or host.pub file> (no host key at {})",
                own.display()
            );
        }
    }
    let b = bundle::open(&args.bundle, &trust)
        .with_context(|| format!("verifying bundle {}", args.bundle.display()))?;
    println!(
        "ok: {} — format version {}, {} files match their sha256, {} models, signed by trusted key {}",
        args.bundle.display(),
        shared_proto::FORMAT_VERSION,
        b.manifest.files.len(),
        b.manifest.models.len(),
        b.signer_hex()
    );
    Ok(())
}
