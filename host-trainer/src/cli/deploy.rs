//! `host-trainer deploy`

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use host_trainer::stages::deploy::{self, Booth, DeployReport, Packed, Verdict};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

#[derive(clap::Args)]
pub struct Args {
    /// Bundle folder from `host-trainer export`.
    bundle: PathBuf,
    #[command(flatten)]
    target: Target,
}

/// Where a bundle goes: one booth, or a fleet.
#[derive(clap::Args)]
pub struct Target {
    /// The booth's console, e.g. http://booth.local:8080.
    #[arg(long, required_unless_present = "fleet", requires = "token_file")]
    pub to: Option<String>,
    /// The booth's operator token (a copy of its <state-dir>/operator.token).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Many booths: a TOML file of `[[booth]]` tables (name, url, token_file). The first booth
    /// gets the bundle first; only if it passes its trial do the others get it, in parallel.
    #[arg(long, conflicts_with = "to")]
    pub fleet: Option<PathBuf>,
    /// How long to wait for a booth's verdict after activation, in seconds.
    #[arg(long, default_value_t = 180)]
    pub wait_s: u64,
}

pub fn run(args: Args) -> Result<()> {
    to_target(&args.bundle, &args.target)
}

/// Deploys `bundle` as `target` says (also used by `export --deploy`).
pub fn to_target(bundle: &Path, target: &Target) -> Result<()> {
    let packed = deploy::pack(bundle)?;
    let wait = Duration::from_secs(target.wait_s);
    match (&target.to, &target.fleet) {
        (_, Some(fleet)) => to_fleet(&packed, fleet, wait),
        (Some(url), None) => {
            let token_file = target
                .token_file
                .as_ref()
                .context("--to needs --token-file")?;
            let token = deploy::read_token(token_file)?;
            let r = one(&packed, url, &token, wait, true)
                .with_context(|| format!("deploying {} to {url}", bundle.display()))?;
            print_status(url, &r.status)?;
            match r.verdict {
                Verdict::Confirmed => Ok(()),
                Verdict::RolledBack(why) => bail!(
                    "bundle {} was rolled back on {url}: {why}; the booth serves {} again",
                    r.serial,
                    shown(&r.status["serving"]["current"])
                ),
            }
        }
        (None, None) => bail!("give --to <url> --token-file <file>, or --fleet <booths.toml>"),
    }
}

fn one(packed: &Packed, url: &str, token: &str, wait: Duration, bar: bool) -> Result<DeployReport> {
    let progress = if bar {
        let b = ProgressBar::new(packed.bytes.len() as u64);
        b.set_style(
            ProgressStyle::with_template(
                "uploading {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let report = deploy::deploy(packed, url, token, wait, &|done| {
        progress.set_position(done)
    });
    progress.finish_and_clear();
    let report = report?;
    match &report.verdict {
        Verdict::Confirmed => say!(
            "{url}: bundle {} ({:.1} MB) passed its trial and serves",
            report.serial,
            report.bytes as f64 / 1e6
        ),
        Verdict::RolledBack(why) => say!("{url}: bundle {} rolled back: {why}", report.serial),
    }
    Ok(report)
}

fn shown(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        v => v.to_string().trim_matches('"').to_owned(),
    }
}

/// The booth's status in a few lines.
pub fn print_status(url: &str, s: &Value) -> Result<()> {
    let live = &s["live"];
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    say!("booth {url}");
    say!(
        "  serving   bundle {} ({}), previous {}",
        shown(&s["serving"]["current"]),
        s["bundle"]["version"].as_str().unwrap_or("no bundle"),
        shown(&s["serving"]["previous"])
    );
    say!(
        "  live      {} mode, {:.1} fps, {:.0} ms latency, camera {}",
        shown(&live["mode"]),
        f(&live["fps"]),
        f(&live["latency_ms"]),
        shown(&live["camera"])
    );
    say!(
        "  frames    {} ({} faces, {} swapped, {} errors)",
        live["frames"],
        live["faces"],
        live["swapped"],
        live["errors"]
    );
    say!(
        "  threshold {:.3} ({})",
        f(&s["threshold"]["value"]),
        shown(&s["threshold"]["source"])
    );
    if let Some(kept) = s["kept"].as_array() {
        let serials: Vec<String> = kept.iter().map(|k| shown(&k["serial"])).collect();
        say!("  kept      {}", serials.join(", "));
    }
    Ok(())
}

fn to_fleet(packed: &Packed, fleet: &Path, wait: Duration) -> Result<()> {
    let booths = deploy::read_fleet(fleet)?;
    let attempt = |b: &Booth, bar: bool| -> Result<DeployReport> {
        let token = deploy::read_token(&b.token_file)?;
        one(packed, &b.url, &token, wait, bar)
    };
    let mut results: Vec<(Booth, Option<Result<DeployReport>>)> = Vec::new();
    let first = attempt(&booths[0], true);
    let healthy = matches!(&first, Ok(r) if r.verdict == Verdict::Confirmed);
    results.push((booths[0].clone(), Some(first)));
    if healthy {
        let rest: Vec<Result<DeployReport>> = std::thread::scope(|scope| {
            let handles: Vec<_> = booths[1..]
                .iter()
                .map(|b| scope.spawn(move || attempt(b, false)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("the deploy thread panicked")))
                })
                .collect()
        });
        results.extend(booths[1..].iter().cloned().zip(rest.into_iter().map(Some)));
    } else {
        results.extend(booths[1..].iter().cloned().map(|b| (b, None)));
    }
    say!(
        "\n{:<16} {:<32} {:<8} {:<8} result",
        "booth",
        "url",
        "serial",
        "fps"
    );
    let mut failed = 0;
    for (b, r) in &results {
        let (serial, fps, result) = match r {
            None => (
                "-".into(),
                "-".into(),
                "not attempted: the first booth did not pass".into(),
            ),
            Some(Ok(r)) => (
                r.serial.to_string(),
                format!("{:.1}", r.status["live"]["fps"].as_f64().unwrap_or(0.0)),
                match &r.verdict {
                    Verdict::Confirmed => "serving".to_string(),
                    Verdict::RolledBack(why) => format!("rolled back: {why}"),
                },
            ),
            Some(Err(e)) => ("-".into(), "-".into(), format!("failed: {e:#}")),
        };
        failed += !matches!(r, Some(Ok(r)) if r.verdict == Verdict::Confirmed) as usize;
        say!(
            "{:<16} {:<32} {:<8} {:<8} {result}",
            b.name,
            b.url,
            serial,
            fps
        );
    }
    if failed > 0 {
        bail!(
            "{failed} of {} booths do not serve the new bundle",
            results.len()
        );
    }
    Ok(())
}
