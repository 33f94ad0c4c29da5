//! `host-trainer export`

use std::path::PathBuf;

use anyhow::{Context, Result};
use host_trainer::artefacts::keys;
use host_trainer::stages::export::{self, Calibration, ExportOptions, ExportSummary};

use super::common::DeviceArg;

#[derive(clap::Args)]
pub struct Args {
    /// Run folder of `host-trainer train`.
    #[arg(long)]
    run: PathBuf,
    /// Bundle folder to write (replaced only when every check passes).
    #[arg(long)]
    out: PathBuf,
    /// Quantise to int8 (per-channel weights, calibrated activations); checked against f32.
    #[arg(long)]
    int8: bool,
    /// Activation calibration: `minmax` or a percentile such as `p99.99`.
    #[arg(long, default_value = "minmax")]
    calibration: Calibration,
    /// Training faces per direction used for calibration.
    #[arg(long, default_value_t = 64)]
    calibration_faces: usize,
    /// Refuse the export when int8 PSNR against f32 on held-out faces is lower.
    #[arg(long, default_value_t = 35.0)]
    min_int8_psnr: f64,
    /// Dataset of person A (default: the one recorded in the run).
    #[arg(long, requires = "b")]
    a: Option<PathBuf>,
    /// Dataset of person B (default: the one recorded in the run).
    #[arg(long, requires = "a")]
    b: Option<PathBuf>,
    /// Output folder of `host-trainer train-detector`: adds the detector to the bundle.
    #[arg(long)]
    detector: Option<PathBuf>,
    /// Signing key folder (default: $DOPPEL_KEYS, else ~/.config/doppel/keys).
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Where tch computes the reference outputs the graphs are checked against.
    #[command(flatten)]
    device: DeviceArg,
    /// The bundle's serial (booths refuse one older than the newest they accepted); default:
    /// seconds since 1970.
    #[arg(long)]
    serial: Option<u64>,
    /// Then deploy the bundle to this booth (needs --deploy-token-file), as `host-trainer
    /// deploy` does.
    #[arg(long, requires = "deploy_token_file")]
    deploy: Option<String>,
    /// The booth's operator token, for --deploy.
    #[arg(long)]
    deploy_token_file: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
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
        device: args.device.resolve()?,
        serial: args.serial,
    };
    let s = export::export(&opts)
        .with_context(|| format!("exporting {} to {}", args.run.display(), args.out.display()))?;
    if s.key_created {
        say!(
            "created signing key {}",
            opts.key_dir.join(keys::SECRET).display()
        );
    }
    print_summary(&s)?;
    say!("bundle: {} (signed by {})", args.out.display(), s.signer);
    if let Some(url) = args.deploy {
        let target = super::deploy::Target {
            to: Some(url),
            token_file: args.deploy_token_file,
            fleet: None,
            wait_s: 180,
        };
        super::deploy::to_target(&args.out, &target)?;
    }
    Ok(())
}

fn print_summary(s: &ExportSummary) -> Result<()> {
    for (name, random, real) in &s.f32_max_diff {
        say!("{name}: f32 graph vs tch max |diff| {random:.1e} (random) {real:.1e} (real faces)");
    }
    for m in &s.manifest.models {
        let file = s.manifest.files.iter().find(|f| f.path == m.file);
        let mut line = format!(
            "{}: {:?}, {:.1} MB, {:.1} MFLOP",
            m.file,
            m.precision,
            file.map_or(0, |f| f.bytes) as f64 / 1e6,
            m.mflops
        );
        if let Some(q) = &m.int8 {
            line += &format!(
                " | int8 vs f32 on {} held-out faces: PSNR {:.1} dB, max {:.4}, mean {:.5}; f32 file {:.1} MB ({:.2}x)",
                q.faces,
                q.psnr_db,
                q.max_abs_error,
                q.mean_abs_error,
                q.f32_bytes as f64 / 1e6,
                q.f32_bytes as f64 / q.int8_bytes.max(1) as f64
            );
        }
        say!("{line}");
    }
    match s.identity_spread {
        Some(spread) => say!(
            "visitors: the trained people's faces lie within {:.1} of their own mean (99%), {:.1} or more from the other's (99%): {}",
            spread.own_p99,
            spread.other_p1,
            spread.switch_distance().map_or_else(
                || "too close to tell a newcomer by face; booths switch visitors only by gaps and place".to_owned(),
                |d| format!("booths take faces beyond {d:.1} from their visitor's mean for someone new")
            )
        ),
        None => say!("visitors: too few training faces to measure how far apart people lie; booths switch visitors only by gaps and place"),
    }
    Ok(())
}
