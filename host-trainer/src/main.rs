//! `host-trainer`: the workstation half of doppel.

mod bundle_cli;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use facekit::RetinaFace;
use host_trainer::doctor;
use host_trainer::extract::{self, curate::CurationConfig, dataset::Consent, ExtractOptions};
use shared_proto::FaceCropSpec;

#[derive(Parser)]
#[command(
    name = "host-trainer",
    version,
    about = "Extract, train, export and check doppel face models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the toolchain, libtorch/CUDA, the detector, the sample media and the cross toolchain.
    Doctor(doctor::Args),
    /// Extract aligned, curated face crops of one consenting person from videos or photos.
    Extract(ExtractArgs),
    /// Train the face-swap autoencoder (shared encoder, decoders for A and B) with its GAN.
    Train(TrainArgs),
    /// Measure a run on held-out frames: PSNR/SSIM, identity transfer, pose keeping, flicker.
    Eval {
        /// Run folder of `host-trainer train`.
        #[arg(long)]
        run: PathBuf,
        /// Dataset of person A.
        #[arg(long)]
        a: PathBuf,
        /// Dataset of person B.
        #[arg(long)]
        b: PathBuf,
        /// RetinaFace ONNX model.
        #[arg(long, default_value = "models/retinaface-mnet025.onnx")]
        model: PathBuf,
    },
    /// Train the deepfake detector on real faces, self-blended images and (with --run) swaps;
    /// report AUC per kind of fake on the other person's video.
    TrainDetector(TrainDetectorArgs),
    /// Measure a trained detector on one dataset's video: AUC, accuracy, log loss per kind of
    /// fake (SBI, and with --run the run's swaps and reconstructions), ROC plot.
    EvalDetector {
        /// Output folder of `train-detector`.
        #[arg(long)]
        detector: PathBuf,
        /// Dataset whose video to test on.
        #[arg(long)]
        dataset: PathBuf,
        /// Which person of the run this dataset is (A or B), for its swaps.
        #[arg(long, default_value = "B")]
        person: String,
        /// A swap run: its swaps and reconstructions of this dataset join the fakes.
        #[arg(long)]
        run: Option<PathBuf>,
        /// Another person's dataset: graphics swaps paste its real faces into this one's.
        #[arg(long)]
        donors: Option<PathBuf>,
        /// Output folder (default: <detector>/eval).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Score a video with the bundle's detector: per-frame fake probability, cues, verdict, plot.
    Detect {
        /// Bundle folder with a detector (export --detector).
        #[arg(long)]
        bundle: PathBuf,
        /// Video file or image folder.
        #[arg(long)]
        input: PathBuf,
        /// Output folder: detect.json and score.png.
        #[arg(long)]
        out: PathBuf,
        /// Mean score at or above which the verdict is FAKE (default: the threshold the
        /// bundle's detector was calibrated to, else 0.5).
        #[arg(long)]
        threshold: Option<f32>,
        /// Trusted public key (hex or host.pub file); without one only integrity is checked.
        #[arg(long)]
        pubkey: Option<String>,
        #[arg(long)]
        max_frames: Option<u64>,
        /// RetinaFace ONNX model.
        #[arg(long, default_value = "models/retinaface-mnet025.onnx")]
        model: PathBuf,
    },
    /// Swap the faces of a video with a trained run; every frame is labelled SYNTHETIC.
    Convert(ConvertArgs),
    /// Create (first use) or show this host's bundle signing key.
    Keys(bundle_cli::KeysArgs),
    /// Write a trained run as a signed bundle of ONNX models (optionally int8), checked in tract.
    Export(bundle_cli::ExportArgs),
    /// Print a bundle's manifest as JSON (after checking its integrity).
    Inspect {
        /// Bundle folder.
        bundle: PathBuf,
    },
    /// Check a bundle's signature, format version and file hashes as a device would.
    Verify(bundle_cli::VerifyArgs),
    /// Print a model preset layer by layer: shapes, parameters and MFLOPs, counted from the spec.
    ModelInfo {
        /// original (the seed's 64-px model), lite (device), hq128; detectors: meso4, meso-wide.
        #[arg(long, default_value = "original")]
        preset: String,
        /// Print the spec as JSON instead (what the Python peer benchmark builds from).
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct TrainDetectorArgs {
    /// Dataset of person A (training video of the report's cells).
    #[arg(long)]
    a: PathBuf,
    /// Dataset of person B (test video of the report's cells).
    #[arg(long)]
    b: PathBuf,
    /// A swap run whose swaps and reconstructions join the fakes.
    #[arg(long)]
    run: Option<PathBuf>,
    /// Output folder: detector.safetensors, detector.toml, eval_detector.md/json, roc.png.
    #[arg(long)]
    out: PathBuf,
    /// meso4 or meso-wide.
    #[arg(long, default_value = "meso4")]
    preset: String,
    /// Optimiser steps per fit (three fits: two report cells and the saved model). On this
    /// 2-core box 1000 steps took the SBI cell from AUC 0.91 (200 steps) to 0.97.
    #[arg(long, default_value_t = 600)]
    steps: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Score at or above which a face is called fake (default: calibrated at the equal-error
    /// point on the last 20% of each video's frames, which training leaves out).
    #[arg(long)]
    threshold: Option<f32>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fits per report cell (seeds seed, seed+1, …), reported as mean ± standard deviation.
    #[arg(long, default_value_t = 3)]
    seeds: usize,
}

#[derive(clap::Args)]
struct ExtractArgs {
    /// Name of the person (A, B, or a real name); one dataset holds one person.
    #[arg(long)]
    person: String,
    /// Video files (mp4/avi/mkv/mov), image folders, or glob patterns of either.
    #[arg(long, required = true, num_args = 1..)]
    input: Vec<String>,
    /// Dataset folder (created; re-running resumes where the last run stopped).
    #[arg(long)]
    out: PathBuf,
    /// Consent record, required for a new dataset: "who=<name>;scope=<allowed use>[;when=<date>]".
    #[arg(long)]
    consent: Option<String>,
    /// Use every Nth frame of each video.
    #[arg(long, default_value_t = 1)]
    every: u64,
    /// Stop once the dataset holds this many accepted faces.
    #[arg(long)]
    max_faces: Option<usize>,
    /// Crop side in pixels (64 as in the classic model; 128 for hq).
    #[arg(long, default_value_t = 64)]
    size: u32,
    /// Context around the tight face box, as a fraction of the crop side per edge.
    #[arg(long, default_value_t = 0.125)]
    margin: f32,
    /// Photos, folders or videos of the consenting person: faces that do not look like them are
    /// rejected as `wrong_person` (bystanders walking through the shot).
    #[arg(long, num_args = 1..)]
    reference: Vec<String>,
    /// Curation thresholds as TOML (keys of `curation.toml`; missing keys keep their defaults).
    #[arg(long)]
    config: Option<PathBuf>,
    /// RetinaFace ONNX model.
    #[arg(long, default_value = "models/retinaface-mnet025.onnx")]
    model: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(clap::Args)]
struct ConvertArgs {
    /// Run folder of `host-trainer train`.
    #[arg(long)]
    run: PathBuf,
    /// Video of the source person.
    #[arg(long)]
    input: PathBuf,
    /// Output video (.mp4 or .mkv); a `<output>.provenance.json` sidecar is written beside it.
    #[arg(long)]
    output: PathBuf,
    /// Render as this person's decoder: B (swap A into B) or A.
    #[arg(long, default_value = "B")]
    to: String,
    /// Mask erosion in crop pixels (negative dilates).
    #[arg(long, default_value_t = 2, allow_negative_numbers = true)]
    erode: i32,
    /// Mask feather (Gaussian sigma, crop pixels).
    #[arg(long, default_value_t = 2.0)]
    feather: f32,
    /// Skip the colour transfer to the scene.
    #[arg(long)]
    no_colour_transfer: bool,
    /// learned (the decoder's mask), hull (the face ellipse), or union (both).
    #[arg(long, default_value = "union")]
    mask: facekit::blend::MaskSource,
    /// Landmark smoothing: One-Euro minimum cutoff in Hz (lower = steadier, more lag).
    #[arg(long, default_value_t = 1.5)]
    smooth_cutoff: f32,
    /// Stop after this many frames.
    #[arg(long)]
    max_frames: Option<u64>,
    /// RetinaFace ONNX model.
    #[arg(long, default_value = "models/retinaface-mnet025.onnx")]
    model: PathBuf,
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Dataset of person A (from `extract`).
    #[arg(long)]
    a: PathBuf,
    /// Dataset of person B.
    #[arg(long)]
    b: PathBuf,
    /// Run folder: config copy, checkpoint, metrics.csv, loss_curve.png, preview.png. An existing
    /// run is resumed from its checkpoint with its own config.
    #[arg(long)]
    out: PathBuf,
    /// Training config TOML (see `train::config`; every key optional).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override the config's architecture preset (original, lite, hq128).
    #[arg(long)]
    preset: Option<String>,
    /// Override the config's batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Stop at this total step count.
    #[arg(long)]
    steps: Option<i64>,
    /// Stop after this many minutes of this invocation.
    #[arg(long)]
    minutes: Option<f64>,
    /// Save the checkpoint every N steps (and always at the end or on Ctrl-C).
    #[arg(long, default_value_t = 100)]
    save_every: i64,
    /// Write preview.png every N steps.
    #[arg(long, default_value_t = 100)]
    preview_every: i64,
    /// auto (CUDA when available), cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Turn on the config's `mixed_precision` (fp16 autocast + loss scaling; CUDA only).
    #[arg(long)]
    mixed_precision: bool,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Doctor(args) => doctor::run(&args),
        Command::Extract(args) => run_extract(args),
        Command::Train(args) => run_train(args),
        Command::Convert(args) => run_convert(args),
        Command::EvalDetector {
            detector,
            dataset,
            person,
            run,
            donors,
            out,
        } => {
            let person = match person.as_str() {
                "A" | "a" => 0,
                "B" | "b" => 1,
                other => anyhow::bail!("--person {other}: use A or B"),
            };
            let out = out.unwrap_or_else(|| detector.join("eval"));
            let opts = host_trainer::detector::EvalOptions {
                detector,
                dataset: dataset.clone(),
                person,
                run,
                donors,
                out: out.clone(),
                seed: 1,
                device: tch::Device::cuda_if_available(),
            };
            let report = host_trainer::detector::evaluate(&opts)
                .with_context(|| format!("evaluating the detector on {}", dataset.display()))?;
            print!("{}", report.markdown());
            println!(
                "\nwritten: {0}/eval_detector.md, {0}/roc.png",
                out.display()
            );
            Ok(())
        }
        Command::Detect {
            bundle,
            input,
            out,
            threshold,
            pubkey,
            max_frames,
            model,
        } => {
            let trusted = match pubkey {
                Some(k) => vec![shared_proto::bundle::read_public_key(&k)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("--pubkey {k}"))?],
                None => Vec::new(),
            };
            let opts = host_trainer::detect::DetectOptions {
                bundle,
                trusted,
                input: input.clone(),
                out: out.clone(),
                threshold,
                smoothing: 0.7,
                detector: model,
                max_frames,
            };
            let r = host_trainer::detect::detect(&opts)
                .with_context(|| format!("scoring {}", input.display()))?;
            let c = &r.mean_cues;
            println!(
                "{}: {} (mean fake probability {:.3}, threshold {:.2}) over {} of {} frames\ncues: over-blur {:.2}, edge colour {:.2}, double edges {:.2}, mouth blur {:.2}, flicker {}\nwritten: {}/detect.json, {}/score.png",
                r.input,
                r.verdict,
                r.mean_score,
                r.threshold,
                r.frames_with_face,
                r.frames,
                c.over_blur,
                c.edge_colour,
                c.double_edges,
                c.mouth_blur,
                r.mean_flicker.map_or("-".into(), |f| format!("{f:.2}")),
                out.display(),
                out.display()
            );
            Ok(())
        }
        Command::TrainDetector(args) => {
            use host_trainer::detector::{train_detector, DetectorOptions};
            anyhow::ensure!(args.batch_size >= 2, "--batch-size must be at least 2");
            anyhow::ensure!(args.seeds >= 1, "--seeds must be at least 1");
            let opts = DetectorOptions {
                datasets: [args.a, args.b],
                run: args.run,
                out: args.out.clone(),
                preset: args.preset,
                steps: args.steps,
                batch: args.batch_size,
                lr: args.lr,
                seed: args.seed,
                seeds: args.seeds,
                threshold: args.threshold,
                device: tch::Device::cuda_if_available(),
                progress: true,
            };
            let report = train_detector(&opts)
                .with_context(|| format!("training the detector into {}", args.out.display()))?;
            print!("{}", report.markdown());
            println!(
                "\nwritten: {0}/detector.safetensors, {0}/eval_detector.md, {0}/roc.png",
                args.out.display()
            );
            Ok(())
        }
        Command::Eval { run, a, b, model } => {
            let report = host_trainer::eval::evaluate(
                &run,
                [&a, &b],
                &model,
                tch::Device::cuda_if_available(),
            )
            .with_context(|| format!("evaluating {}", run.display()))?;
            let md = report.markdown();
            std::fs::write(run.join("eval.md"), &md)
                .with_context(|| format!("writing {}/eval.md", run.display()))?;
            std::fs::write(
                run.join("eval.json"),
                serde_json::to_string_pretty(&report)?,
            )
            .with_context(|| format!("writing {}/eval.json", run.display()))?;
            print!("{md}");
            println!("\nwritten: {0}/eval.md, {0}/eval.json", run.display());
            Ok(())
        }
        Command::Keys(args) => bundle_cli::run_keys(args),
        Command::Export(args) => bundle_cli::run_export(args),
        Command::Inspect { bundle } => bundle_cli::run_inspect(bundle),
        Command::Verify(args) => bundle_cli::run_verify(args),
        Command::ModelInfo { preset, json } => {
            use host_trainer::model::detector::{detector_preset, DETECTOR_PRESETS};
            if let Some(d) = detector_preset(&preset) {
                if json {
                    println!("{}", serde_json::to_string_pretty(&d)?);
                } else {
                    print!("{}", host_trainer::model::describe_detector(&d));
                }
                return Ok(());
            }
            let spec = host_trainer::model::presets::preset(&preset).with_context(|| {
                format!(
                    "unknown preset {preset:?}; choose one of {:?} or a detector {:?}",
                    host_trainer::model::presets::PRESETS,
                    DETECTOR_PRESETS
                )
            })?;
            spec.validate().map_err(anyhow::Error::msg)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&spec)?);
            } else {
                print!("{}", host_trainer::model::describe(&spec));
            }
            Ok(())
        }
    }
}

fn run_extract(args: ExtractArgs) -> Result<()> {
    // First thing, so an early Ctrl-C also ends cleanly.
    let stop = stop_flag()?;
    let curation = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str::<CurationConfig>(&text)
                .with_context(|| format!("{}: invalid curation config", path.display()))?
        }
        None => CurationConfig::default(),
    };
    anyhow::ensure!(
        (32..=512).contains(&args.size),
        "--size {} is out of range (32..=512)",
        args.size
    );
    anyhow::ensure!(
        (0.0..0.4).contains(&args.margin),
        "--margin {} is out of range (0..0.4)",
        args.margin
    );
    let consent = args
        .consent
        .as_deref()
        .map(Consent::from_arg)
        .transpose()
        .map_err(anyhow::Error::msg)
        .context("--consent")?;
    let inputs = extract::inputs::expand(&args.input)
        .map_err(anyhow::Error::msg)
        .context("--input")?;
    let detector = RetinaFace::load(&args.model, extract::detector_config(&curation))
        .context("loading the face detector")?;
    let crop = FaceCropSpec::new(args.size, args.margin);
    let reference = if args.reference.is_empty() {
        None
    } else {
        let refs = extract::inputs::expand(&args.reference)
            .map_err(anyhow::Error::msg)
            .context("--reference")?;
        let crops = extract::reference_crops(&refs, &detector, &crop)
            .context("reading the reference photos")?;
        let reference = extract::identity::Reference::new(&crops)
            .context("--reference: no face found in the reference photos")?;
        tracing::info!("reference: {} face(s) of {}", crops.len(), args.person);
        Some(reference)
    };

    let opts = ExtractOptions {
        person: args.person,
        inputs,
        out: args.out,
        consent,
        every: args.every,
        max_faces: args.max_faces,
        crop,
        curation,
        reference,
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        progress: true,
    };
    let summary = extract::extract(&opts, &detector, &stop)
        .with_context(|| format!("extracting {} into {}", opts.person, opts.out.display()))?;
    let fps = summary.frames_processed as f64 / summary.seconds.max(1e-9);
    println!(
        "{}: {} faces in the dataset; this run: {} frames ({:.1} frames/s), {} skipped as already done",
        opts.person, summary.accepted_total, summary.frames_processed, fps, summary.frames_skipped_as_done
    );
    for (reason, n) in &summary.counts {
        println!("  {:<12} {n}", reason.code());
    }
    println!("report: {}", summary.report.display());
    if summary.interrupted {
        println!("interrupted: the dataset is valid; run the same command again to continue");
    }
    Ok(())
}

fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: finishing the work in flight and saving (Ctrl-C again to abort)");
    })
    .context("installing the Ctrl-C handler")?;
    Ok(stop)
}

fn run_train(args: TrainArgs) -> Result<()> {
    use host_trainer::train::{config::TrainConfig, run};
    let stop = stop_flag()?;
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str::<TrainConfig>(&text)
                .with_context(|| format!("{}: invalid training config", path.display()))?
        }
        None => TrainConfig::default(),
    };
    if let Some(p) = args.preset {
        config.preset = p;
    }
    if let Some(b) = args.batch_size {
        config.batch_size = b;
    }
    anyhow::ensure!(config.batch_size > 0, "batch size must be at least 1");
    let device = match args.device.as_str() {
        "auto" => tch::Device::cuda_if_available(),
        "cpu" => tch::Device::Cpu,
        "cuda" => {
            anyhow::ensure!(
                tch::Cuda::is_available(),
                "--device cuda: no CUDA device visible (see `host-trainer doctor`)"
            );
            tch::Device::Cuda(0)
        }
        other => anyhow::bail!("--device {other}: use auto, cpu or cuda"),
    };
    anyhow::ensure!(
        args.steps.is_some() || args.minutes.is_some(),
        "give --steps or --minutes (or both) so training ends"
    );
    if args.mixed_precision {
        config.mixed_precision = true;
    }
    if config.mixed_precision && !device.is_cuda() {
        tracing::warn!("mixed precision needs CUDA; training in f32 on {device:?}");
    }
    tracing::info!(
        "training {} on {:?}{}",
        config.preset,
        device,
        if config.mixed_precision && device.is_cuda() {
            " with fp16 mixed precision"
        } else {
            ""
        }
    );
    let opts = run::RunOptions {
        config,
        datasets: [args.a, args.b],
        out: args.out.clone(),
        steps: args.steps,
        minutes: args.minutes,
        save_every: args.save_every,
        preview_every: args.preview_every,
        device,
        progress: true,
    };
    let s = run::train(&opts, &stop)
        .with_context(|| format!("training into {}", args.out.display()))?;
    println!(
        "{} steps ({} this run, {:.0} s, {:.1} images/s); last loss A {:.4} B {:.4}{}",
        s.steps,
        s.steps_this_run,
        s.seconds,
        s.images_per_second,
        s.last[0].total,
        s.last[1].total,
        if s.nan_recoveries > 0 {
            format!(", {} NaN recoveries", s.nan_recoveries)
        } else {
            String::new()
        }
    );
    println!(
        "preview: {}\ncheckpoint: {}",
        s.preview.display(),
        args.out.join(run::CHECKPOINT).display()
    );
    Ok(())
}

fn run_convert(args: ConvertArgs) -> Result<()> {
    use host_trainer::convert::{convert, provenance_path, ConvertOptions};
    let to = match args.to.as_str() {
        "A" | "a" => 0,
        "B" | "b" => 1,
        other => anyhow::bail!("--to {other}: use A or B"),
    };
    let opts = ConvertOptions {
        run: args.run,
        input: args.input,
        output: args.output.clone(),
        to,
        blend: facekit::blend::BlendOptions {
            erode: args.erode,
            feather: args.feather,
            colour_transfer: !args.no_colour_transfer,
            mask: args.mask,
        },
        smooth_cutoff: args.smooth_cutoff,
        max_frames: args.max_frames,
        detector: args.model,
        device: tch::Device::cuda_if_available(),
    };
    let p = convert(&opts).with_context(|| format!("converting {}", opts.input.display()))?;
    println!(
        "{} frames ({} swapped, {}), every frame labelled SYNTHETIC\noutput: {}\nprovenance: {}",
        p.frames,
        p.frames_swapped,
        p.direction,
        args.output.display(),
        provenance_path(&args.output).display()
    );
    Ok(())
}
