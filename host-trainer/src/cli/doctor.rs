//! `host-trainer doctor`: one screen that says whether this machine can do every doppel job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(clap::Args)]
pub struct Args {
    /// Project root holding assets.toml, models/ and data/.
    #[arg(long, default_value = ".")]
    root: PathBuf,
}

#[derive(Deserialize)]
struct Asset {
    path: String,
    sha256: String,
    source: String,
}

pub fn run(args: Args) -> Result<()> {
    let mut problems = 0;
    say!(
        "torch      {} (linked by tch 0.24)",
        env!("DOPPEL_TORCH_VERSION")
    );
    let cuda = tch::Cuda::is_available();
    let cuda_linked = env!("DOPPEL_TORCH_CUDA_LINKED") == "1";
    if cuda {
        say!(
            "cuda       available: {} device(s), {}",
            tch::Cuda::device_count(),
            gpu_names().unwrap_or_else(|| "name unknown (nvidia-smi missing)".into())
        );
    } else if cuda_linked {
        say!("cuda       not available (libtorch_cuda linked, no GPU or driver found): training runs on CPU");
    } else {
        say!("cuda       not available (CPU-only torch venv; DOPPEL_TORCH=full make setup links CUDA)");
    }
    say!("threads    {} intra-op", tch::get_num_threads());

    let manifest = args.root.join("assets.toml");
    let assets: BTreeMap<String, Asset> = host_trainer::artefacts::read_toml(&manifest)
        .context("run doctor from the repository root or pass --root")?;
    for (name, asset) in &assets {
        let path = args.root.join(&asset.path);
        match host_trainer::artefacts::sha256_file(&path) {
            Ok(sum) if sum == asset.sha256 => {
                say!("{name:<10} ok  {} sha256 {sum}", asset.path)
            }
            Ok(sum) => {
                problems += 1;
                say!(
                    "{name:<10} BAD {} sha256 {sum} (expected {}); delete it and run `make setup`",
                    asset.path,
                    asset.sha256
                );
            }
            Err(_) => {
                problems += 1;
                say!(
                    "{name:<10} MISSING {} (from {}); run `make setup`",
                    asset.path,
                    asset.source
                );
            }
        }
    }

    for (what, cmd, arg) in [
        ("ffmpeg", "ffmpeg", "-version"),
        ("cross cc", "aarch64-linux-gnu-gcc", "--version"),
        ("cross rustc", "/usr/bin/rustc", "--version"),
        ("qemu", "qemu-aarch64-static", "--version"),
    ] {
        match first_line_of(cmd, arg) {
            Some(v) => say!("{what:<10} {v}"),
            None => {
                problems += 1;
                say!("{what:<10} MISSING `{cmd}`; run `make setup`");
            }
        }
    }
    let std_arm64 = Path::new("/usr/lib/rustlib/aarch64-unknown-linux-gnu/lib");
    if std_arm64.is_dir() {
        say!("cross std  {}", std_arm64.display());
    } else {
        problems += 1;
        say!("cross std  MISSING (Debian libstd-rust-web-dev:arm64); run `make setup`");
    }

    if problems > 0 {
        anyhow::bail!("{problems} problem(s) found; see the lines above");
    }
    say!("all good");
    Ok(())
}

fn first_line_of(cmd: &str, arg: &str) -> Option<String> {
    let out = Command::new(cmd).arg(arg).output().ok()?;
    let text = String::from_utf8_lossy(if out.stdout.is_empty() {
        &out.stderr
    } else {
        &out.stdout
    })
    .into_owned();
    text.lines().next().map(str::to_owned)
}

fn gpu_names() -> Option<String> {
    let out = Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader"])
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .replace('\n', ", ")
    })
}
