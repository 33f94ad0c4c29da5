//! `doppel-device`: the booth daemon (`run`) and the batch face-finding tool (`find-faces`).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use device_firmware::config::{DaemonConfig, DisplayKind, Mode};
use device_firmware::find_faces::{detect_frames, Options};
use facekit::{open_source, FaceDetectorConfig, RetinaFace};

#[derive(Parser)]
#[command(name = "doppel-device", version, about = "doppel booth daemon")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Booth configuration (TOML; see configs/booth.example.toml). Flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Camera device (/dev/videoN), video file or image folder.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Play a file input in a loop.
    #[arg(long = "loop")]
    looped: bool,
    /// Deliver a file input's frames at the source's fps, as a camera would.
    #[arg(long)]
    pace: bool,
    /// Bundle folder from `host-trainer export`.
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// Trusted public key (hex, or a host.pub file); repeatable; added to the config's.
    #[arg(long)]
    trust: Vec<String>,
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    #[arg(long, value_enum)]
    display: Option<DisplayKind>,
    /// Serve the operator console and update API here (e.g. 0.0.0.0:8080, port 0 = any free
    /// port; "" = none). Default: the config's `console.listen`, 0.0.0.0:8080.
    #[arg(long)]
    http: Option<String>,
    /// State folder: kept bundles, the serving record, operator.token, calibrations. Created
    /// on first start.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Turn saving on: write displayed frames as PNG into this folder.
    #[arg(long)]
    save_frames: Option<PathBuf>,
    /// With --save-frames: write the last displayed frame here at exit.
    #[arg(long, requires = "save_frames")]
    screenshot: Option<PathBuf>,
    /// Stop after this many frames.
    #[arg(long)]
    max_frames: Option<u64>,
    /// tract threads.
    #[arg(long)]
    threads: Option<usize>,
    /// When the booth cannot start (settings, state folder, console address, face detector,
    /// display), stay up showing why on the framebuffer and in `systemctl status` instead of
    /// exiting: the systemd service uses this, so a mistake is seen rather than hidden in a
    /// restart loop.
    #[arg(long)]
    fault_screen: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the booth: camera (or file) → faces → swap / score → display.
    Run(RunArgs),
    /// Find faces (RetinaFace) in a video file or image folder; write detections.jsonl and
    /// contact_sheet.png.
    #[command(alias = "detect-video")]
    FindFaces {
        /// Video file (mp4/avi/mkv/mov) or folder of PNG/JPEG frames.
        #[arg(long)]
        input: PathBuf,
        /// Output folder (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// RetinaFace ONNX model.
        #[arg(long, default_value = facekit::RETINAFACE_MODEL)]
        model: PathBuf,
        /// Minimum face probability.
        #[arg(long, default_value_t = FaceDetectorConfig::default().score_threshold)]
        score_threshold: f32,
        /// Process every Nth frame.
        #[arg(long, default_value_t = 1)]
        every: u64,
        /// Stop after this many processed frames.
        #[arg(long)]
        max_frames: Option<u64>,
    },
    /// Print the operator token (the console's and the update API's secret), making it when
    /// the state folder has none yet.
    Token {
        /// State folder (default: the config's `state_dir`, /var/lib/doppel).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Booth settings (TOML) whose `state_dir` to use.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() {
    // A panic anywhere goes to the log like any other error (journald keeps it), then the
    // default report; a panicking stage ends the booth with a non-zero status.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!("panic: {info}");
        default_hook(info);
    }));
    // The console shows the latest log lines; they go to stderr (journald) as before.
    let board = Arc::new(device_firmware::console::Board::default());
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .with(device_firmware::console::LogLayer(board.clone()))
            .init();
    }
    // `FAILPOINTS=update-<step>=return` (tests only) kills the booth at that update step.
    let _failpoints = fail::FailScenario::setup();
    if let Err(e) = run(Cli::parse(), board) {
        // One line the operator can act on; the chain carries the file and the fix.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn read_config(path: &Path) -> Result<DaemonConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}: invalid booth config", path.display()))
}

fn booth(args: RunArgs, board: Arc<device_firmware::console::Board>) -> Result<()> {
    use device_firmware::calibration::{camera_id, Calibrator};
    use device_firmware::updates::{TrialPolicy, Updates};
    use device_firmware::{button, console, daemon, models::ModelSlot};
    let mut cfg: DaemonConfig = match &args.config {
        Some(p) => read_config(p)?,
        None => DaemonConfig::default(),
    };
    if let Some(i) = args.input {
        cfg.source.input = i;
    }
    cfg.source.looped |= args.looped;
    cfg.source.pace |= args.pace;
    if args.bundle.is_some() {
        cfg.bundle = args.bundle;
    }
    for k in &args.trust {
        let hex =
            shared_proto::bundle::public_key_text(k).with_context(|| format!("--trust {k}"))?;
        cfg.trusted_keys.push(hex);
    }
    if let Some(m) = args.mode {
        cfg.pipeline.mode = m;
    }
    if let Some(d) = args.display {
        cfg.display.kind = d;
    }
    if let Some(h) = args.http {
        cfg.console.listen = h;
    }
    if let Some(dir) = args.state_dir {
        cfg.state_dir = dir;
    }
    if let Some(dir) = args.save_frames {
        cfg.save_frames = true;
        cfg.save_dir = dir;
    }
    if args.max_frames.is_some() {
        cfg.max_frames = args.max_frames;
    }
    if let Some(t) = args.threads {
        cfg.pipeline.threads = t;
    }
    if !cfg.trusted_dir.as_os_str().is_empty() {
        cfg.trusted_keys.extend(trusted_dir_keys(&cfg.trusted_dir));
    }
    cfg.validate()
        .context("booth settings (fix the key named above in the config or its flag)")?;

    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    // The first SIGTERM/SIGINT stops the booth cleanly (it ends within a second); a second one
    // exits at once, whatever the booth is doing.
    let signalled = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, signalled.clone())
            .context("installing signal handlers")?;
        signal_hook::flag::register(sig, signalled.clone())
            .context("installing signal handlers")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
        .context("installing the SIGHUP handler")?;
    let (tx, events) = std::sync::mpsc::channel();
    if cfg.button.keyboard {
        button::spawn_keyboard(tx.clone());
    }
    if !cfg.button.gpio_chip.as_os_str().is_empty() {
        #[cfg(feature = "gpio")]
        button::spawn_gpio(&cfg.button, tx.clone()).context("mode button")?;
        #[cfg(not(feature = "gpio"))]
        anyhow::bail!("button.gpio_chip is set but this build has no `gpio` feature");
    }
    let models = ModelSlot::default();
    let policy = TrialPolicy {
        frames: cfg.console.trial_frames,
        within: std::time::Duration::from_secs(cfg.console.trial_seconds),
    };
    // The state folder serves what was last confirmed (or nothing: faces only, until a deploy).
    let (updates, _recovery) = Updates::open(
        &cfg.state_dir,
        &cfg.trusted_keys,
        cfg.pipeline.swap_to.clone(),
        models.clone(),
        policy,
    )
    .with_context(|| {
        format!(
            "opening the state folder {} (make it writable for the booth, or pass --state-dir)",
            cfg.state_dir.display()
        )
    })?;
    let updates = Arc::new(updates);
    if let Some(dir) = &cfg.bundle {
        // A bundle named in the config or on the command line serves instead, until a deploy.
        // Refused bundles are logged by the slot; the booth still runs.
        let _ = models.reload(dir, &cfg.trusted_keys, cfg.pipeline.swap_to.as_deref());
    }
    let calibrator = Arc::new(Calibrator::open(
        &updates.calibration_dir(),
        camera_id(&cfg.source.input),
    ));
    if !cfg.console.listen.is_empty() {
        let started = console::start(console::AppState {
            board: board.clone(),
            updates: updates.clone(),
            calibrator: calibrator.clone(),
            models: models.clone(),
            config: cfg.console.clone(),
            fake_threshold: cfg.pipeline.fake_threshold,
            input: cfg.source.input.display().to_string(),
            controls: std::sync::Mutex::new(tx.clone()),
            sessions: Default::default(),
            streams: Arc::new(tokio::sync::Semaphore::new(cfg.console.max_stream_clients)),
        })?;
        // Tests and scripts read the address from this line (the port may be chosen by the OS).
        eprintln!(
            "operator console: http://{}/ (token in {})",
            started.address,
            cfg.state_dir.join(device_firmware::store::TOKEN).display()
        );
    }
    let controls = daemon::Controls {
        stop,
        reload,
        updates: Some(updates),
        calibrator: Some(calibrator),
        board: Some(board),
        stream_fps: cfg.console.stream_fps,
        ..daemon::Controls::new(events)
    };
    let last = Mutex::new(None);
    let stats = daemon::run(&cfg, &controls, &models, Some(&last))
        .with_context(|| format!("running the booth on {}", cfg.source.input.display()))?;
    // The screenshot first: a reader of stdout that has gone away must not cost it.
    let last = last.into_inner().unwrap_or_else(|e| e.into_inner());
    let screenshot = match (args.screenshot, last) {
        (Some(path), Some(frame)) => {
            frame
                .save(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            Some(path)
        }
        _ => None,
    };
    let n = stats.frames.max(1) as f64;
    let t = &stats.times;
    let mut summary = format!(
        "{} frames in {:.1} s ({:.1} fps), {} with a face, {} swapped, {} scored, {} errors, {} dropped\n",
        stats.frames,
        stats.seconds,
        stats.frames as f64 / stats.seconds.max(1e-9),
        stats.faces,
        stats.swapped,
        stats.scored,
        stats.errors,
        stats.dropped
    );
    summary += &format!(
        "ms/frame: decode {:.2} detect {:.2} align {:.2} swap {:.2} blend {:.2} score {:.2} draw {:.2}\n",
        stats.decode_ms / n,
        t.detect / n,
        t.align / n,
        t.swap / n,
        t.blend / n,
        t.score / n,
        stats.draw_ms / n
    );
    if cfg.save_frames {
        summary += &format!("frames: {}\n", cfg.save_dir.display());
    }
    if let Some(path) = screenshot {
        summary += &format!("screenshot: {}\n", path.display());
    }
    print_out(&summary)
}

/// Writes a command's result to stdout. A reader that went away (`doppel-device … | head`) has
/// what it wanted and the work is done: that ends the command quietly instead of a panic.
fn print_out(text: &str) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written.context("writing to stdout"),
    }
}

/// The keys in `dir/*.pub`. A file that is not a key is skipped with an error in the log (one
/// bad file must not take the other keys, or the booth, down); a missing folder trusts none.
fn trusted_dir_keys(dir: &std::path::Path) -> Vec<String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!("trusted_dir {}: {e}; no keys from it", dir.display());
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pub"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            // The same reading as `--trust host.pub`, then the same check as `trusted_keys`.
            let key = shared_proto::bundle::public_key_text(&p.to_string_lossy())
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    shared_proto::bundle::parse_public_key(&t)
                        .map(|_| t)
                        .map_err(|e| e.to_string())
                });
            match key {
                Ok(k) => Some(k),
                Err(e) => {
                    tracing::error!("{}: not a public key ({e}); skipped", p.display());
                    None
                }
            }
        })
        .collect()
}

/// Whether `e` arose after the booth was running (a stage panicked, a file source failed):
/// those end the process so the service manager restarts it.
fn while_running(e: &anyhow::Error) -> bool {
    use device_firmware::daemon::DaemonError;
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<DaemonError>(),
            Some(DaemonError::StagePanicked(_) | DaemonError::Source(_))
        )
    })
}

/// Shows `error` on the framebuffer (when there is one) and in the service status until
/// SIGTERM; pings the watchdog meanwhile. Never returns an error: it is the last resort.
fn fault_screen(error: &anyhow::Error) -> Result<()> {
    use device_firmware::config::{DisplayConfig, DisplayKind};
    use device_firmware::display::{framebuffer::Framebuffer, FrameSink};
    use std::time::Duration;
    let message = format!("{error:#}");
    tracing::error!("the booth cannot start: {message}; showing it until stopped (fix it, then `systemctl restart doppel-device`)");
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    let fb = DisplayConfig {
        kind: DisplayKind::Framebuffer,
        ..Default::default()
    };
    let mut screen = Framebuffer::open(&fb).ok();
    let frame = device_firmware::overlay::status_screen(
        640,
        480,
        "the booth cannot start",
        &format!("{message}\n\nFix /etc/doppel/booth.toml (or what the line above names),\nthen: sudo systemctl restart doppel-device\nLog: journalctl -u doppel-device"),
    );
    let mut service = device_firmware::service::ServiceManager::from_env();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if let Some(s) = screen.as_mut() {
            if let Err(e) = s.show(&frame) {
                tracing::warn!("framebuffer: {e}");
                screen = None;
            }
        }
        service.frame_shown(|| format!("cannot start: {message}"));
        std::thread::sleep(Duration::from_millis(500));
    }
    service.stopping();
    Ok(())
}

fn run(cli: Cli, board: Arc<device_firmware::console::Board>) -> Result<()> {
    match cli.command {
        Command::Run(args) => {
            let fault_screen_on = args.fault_screen;
            match booth(args, board) {
                Err(e) if fault_screen_on && !while_running(&e) => fault_screen(&e),
                other => other,
            }
        }
        Command::FindFaces {
            input,
            out,
            model,
            score_threshold,
            every,
            max_frames,
        } => {
            let config = FaceDetectorConfig {
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
            print_out(&format!(
                "{} frames, {} with a face\ndetections: {}\ncontact sheet: {}\n",
                summary.frames,
                summary.frames_with_faces,
                summary.jsonl.display(),
                summary.contact_sheet.display()
            ))
        }
        Command::Token { state_dir, config } => {
            let dir = match (state_dir, config) {
                (Some(dir), _) => dir,
                (None, Some(path)) => read_config(&path)?.state_dir,
                (None, None) => DaemonConfig::default().state_dir,
            };
            let token = device_firmware::store::operator_token(&dir).with_context(|| {
                format!(
                    "reading or making the operator token in {} (run as the booth's user or root)",
                    dir.display()
                )
            })?;
            print_out(&format!("{token}\n"))
        }
    }
}
