//! `host-trainer extract`: faces of one consenting person from videos and photos, detected,
//! aligned to the shared crop template, curated, and written as a resumable dataset.

pub mod curate;
pub mod inputs;
pub mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use facekit::{align_face, estimate_pose, Detection, FaceDetectorConfig, RetinaFace};
use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use shared_proto::FaceCropSpec;

use crate::artefacts::dataset::{self, Consent, Dataset, FaceRecord, Reason};
use crate::artefacts::write_toml;
use crate::error::{Error, Result};
use curate::{Candidate, CurationConfig};
use facekit::identity::Reference;
use facekit::quality::{self, DHash};
use inputs::Input;

/// What to extract, independent of the CLI.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    pub person: String,
    pub inputs: Vec<Input>,
    pub out: PathBuf,
    pub consent: Option<Consent>,
    pub every: u64,
    pub max_faces: Option<usize>,
    pub crop: FaceCropSpec,
    pub curation: CurationConfig,
    /// The consenting person's reference crops; faces unlike them are `wrong_person`.
    pub reference: Option<Reference>,
    pub threads: usize,
    /// Show an indicatif progress bar (off in tests and benchmarks).
    pub progress: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub frames_processed: u64,
    pub frames_skipped_as_done: u64,
    pub accepted_total: usize,
    pub counts: BTreeMap<Reason, usize>,
    pub seconds: f64,
    pub interrupted: bool,
    pub report: PathBuf,
}

/// One processed frame: a record per face candidate (or one `no_face` record), with PNG bytes.
type FrameResult = Vec<(FaceRecord, Option<Vec<u8>>, Option<DHash>)>;

pub fn extract(opts: &ExtractOptions, detector: &RetinaFace, stop: &AtomicBool) -> Result<Summary> {
    let started = Instant::now();
    check_person_name(&opts.person)?;
    let (mut dataset, previous) = Dataset::open(&opts.out)?;
    let mismatch = |problem: String| Error::BadDataset {
        path: opts.out.clone(),
        problem,
    };
    if let Some(r) = previous.iter().find(|r| r.crop_size != opts.crop.size) {
        return Err(mismatch(format!(
            "holds {} px crops but --size is {}; use --size {} or a new --out folder",
            r.crop_size, opts.crop.size, r.crop_size
        )));
    }
    if let Some(r) = previous.iter().find(|r| r.person != opts.person) {
        return Err(mismatch(format!(
            "is person {}'s dataset, not {}; use a new --out folder",
            r.person, opts.person
        )));
    }
    Consent::establish(&opts.out, opts.consent.clone())?;
    dataset::establish_crop(&opts.out, &opts.crop)?;
    let note = "Curation thresholds in force for the latest extract run (see `host-trainer extract --help`).";
    write_toml(&opts.out.join(dataset::CURATION), note, &opts.curation)?;

    let done = dataset::done_frames(&previous);
    let mut accepted_hashes: Vec<DHash> = previous
        .iter()
        .filter(|r| r.accepted())
        .filter_map(|r| r.dhash.as_deref().and_then(DHash::from_hex))
        .collect();
    // Everything journalled, old and new, for the report at the end (no re-read of the file).
    let mut journal = previous;
    let mut summary = Summary {
        accepted_total: accepted_hashes.len(),
        ..Default::default()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.max(1))
        .build()
        .map_err(|e| Error::ThreadPool(e.to_string()))?;
    let bar = progress_bar(opts);
    let chunk_len = opts.threads.max(1) * 4;

    'sources: for input in &opts.inputs {
        let source = input.display_name();
        let mut frames = match input.open() {
            Ok(frames) => frames,
            Err(e) if done.contains(&(source.clone(), 0)) => {
                tracing::debug!("{source}: skipped again ({e})");
                summary.frames_skipped_as_done += 1;
                continue;
            }
            Err(e) => {
                let record = unreadable(opts, &source, 0, &e);
                dataset.append(&record, None)?;
                *summary.counts.entry(Reason::Unreadable).or_default() += 1;
                journal.push(record);
                continue;
            }
        };
        let mut index = 0u64;
        let mut broken = None;
        while broken.is_none() {
            if stop.load(Ordering::Relaxed) {
                summary.interrupted = true;
                break 'sources;
            }
            if opts.max_faces.is_some_and(|m| summary.accepted_total >= m) {
                break 'sources;
            }
            // Decode sequentially (one ffmpeg stream), analyse the chunk in parallel.
            let mut chunk: Vec<(u64, RgbImage)> = Vec::with_capacity(chunk_len);
            while chunk.len() < chunk_len {
                let frame = match frames.next_frame() {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    // The rest of this input is lost; what was decoded still counts.
                    Err(e) => {
                        broken = Some((index, e));
                        break;
                    }
                };
                let i = index;
                index += 1;
                bar.inc(1);
                if !i.is_multiple_of(opts.every.max(1)) {
                    continue;
                }
                if done.contains(&(source.clone(), i)) {
                    summary.frames_skipped_as_done += 1;
                    continue;
                }
                chunk.push((i, frame));
            }
            if chunk.is_empty() && broken.is_none() {
                break;
            }
            let results: Vec<Result<FrameResult>> = pool.install(|| {
                chunk
                    .par_iter()
                    .map(|(i, frame)| analyse_frame(opts, detector, &source, *i, frame))
                    .collect()
            });
            for result in results {
                for (mut record, png, hash) in result? {
                    if record.reason == Reason::Accepted {
                        let bits = opts.curation.duplicate_bits;
                        let seen =
                            |h: &DHash| accepted_hashes.iter().any(|a| a.distance(h) <= bits);
                        if hash.as_ref().is_none_or(seen) {
                            record.reason = Reason::Duplicate;
                        } else if opts.max_faces.is_some_and(|m| summary.accepted_total >= m) {
                            continue;
                        } else {
                            accepted_hashes.extend(hash);
                            summary.accepted_total += 1;
                        }
                    }
                    if record.file.is_some() {
                        record.file = Some(crop_path(&record));
                    }
                    dataset.append(&record, png.as_deref())?;
                    *summary.counts.entry(record.reason).or_default() += 1;
                    journal.push(record);
                }
                summary.frames_processed += 1;
            }
            bar.set_message(format!("{} faces kept", summary.accepted_total));
        }
        if let Some((at, e)) = broken {
            if !done.contains(&(source.clone(), at)) {
                let record = unreadable(opts, &source, at, &e);
                dataset.append(&record, None)?;
                *summary.counts.entry(Reason::Unreadable).or_default() += 1;
                journal.push(record);
            }
        }
    }
    dataset.sync()?;
    bar.finish_and_clear();
    summary.seconds = started.elapsed().as_secs_f64();

    summary.report = report::write(&opts.out, &opts.person, &journal, &opts.crop)?;
    if summary.accepted_total == 0 && !summary.interrupted {
        return Err(Error::NoFaces {
            person: opts.person.clone(),
            inputs: opts
                .inputs
                .iter()
                .map(Input::display_name)
                .collect::<Vec<_>>()
                .join(", "),
            frames: summary.frames_processed + summary.frames_skipped_as_done,
            report: summary.report.clone(),
        });
    }
    Ok(summary)
}

/// The journal line of an input that cannot be read from frame `frame` on; extract goes on with
/// the next input.
fn unreadable(
    opts: &ExtractOptions,
    source: &str,
    frame: u64,
    e: &facekit::FacekitError,
) -> FaceRecord {
    tracing::warn!("{source}: skipped from frame {frame} on: {e}");
    FaceRecord {
        reason: Reason::Unreadable,
        problem: Some(e.to_string()),
        ..FaceRecord::no_face(&opts.person, source, frame, opts.crop.size)
    }
}

/// Detect, align, measure and judge every face of one frame (pure: no I/O, runs in parallel).
fn analyse_frame(
    opts: &ExtractOptions,
    detector: &RetinaFace,
    source: &str,
    frame_index: u64,
    frame: &RgbImage,
) -> Result<FrameResult> {
    let faces = detector.detect(frame)?;
    let base = FaceRecord::no_face(&opts.person, source, frame_index, opts.crop.size);
    if faces.is_empty() {
        return Ok(vec![(base, None, None)]);
    }
    let mut out = Vec::new();
    for (k, det) in faces.iter().enumerate().take(8) {
        let others: Vec<Detection> = faces
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != k)
            .map(|(_, d)| d.clone())
            .collect();
        let Some(aligned) = align_face(frame, &det.landmarks, &opts.crop) else {
            continue;
        };
        let quality = quality::measure(&aligned.image);
        let pose = estimate_pose(&det.landmarks);
        let identity_distance = opts.reference.as_ref().map(|r| r.distance(&aligned.image));
        let reason = opts.curation.judge(&Candidate {
            detection: det,
            others: &others,
            aligned: &aligned,
            quality: &quality,
            pose: &pose,
            identity_distance,
        });
        let hash = quality::dhash(&aligned.image);
        let png = encode_png(&aligned.image);
        let record = FaceRecord {
            face: k as u32,
            reason,
            // Named once the final reason (duplicate or not) is known.
            file: Some(String::new()),
            bbox: Some(det.bbox),
            score: Some(det.score),
            landmarks: Some(det.landmarks),
            to_crop: Some(aligned.to_crop),
            template_error: Some(aligned.template_error),
            outside_fraction: Some(aligned.outside_fraction),
            quality: Some(quality),
            pose: Some(pose),
            dhash: Some(hash.to_hex()),
            identity_distance,
            ..base.clone()
        };
        out.push((record, Some(png), Some(hash)));
    }
    Ok(out)
}

/// A person's name names files: letters, digits, spaces, `-`, `_` and `.`, not starting with
/// `.` (so never `..` or a path), at most 64 characters.
fn check_person_name(name: &str) -> Result<()> {
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.');
    if name.trim().is_empty()
        || name.chars().count() > 64
        || name.starts_with('.')
        || !name.chars().all(allowed)
    {
        return Err(Error::BadPersonName(name.to_owned()));
    }
    Ok(())
}

/// `name` with anything but ASCII letters, digits and `-` replaced by `_`: safe in a file name.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `faces/…png` for accepted crops, `rejects/<code>/…png` otherwise; unique per source+frame+face.
fn crop_path(r: &FaceRecord) -> String {
    let stem = Path::new(&r.source)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("src");
    let stem = file_safe(stem);
    let tag = short_hash(&r.source);
    let person = file_safe(&r.person);
    let name = format!("{person}_{stem}-{tag}_f{:06}_{}.png", r.frame, r.face);
    if r.reason == Reason::Accepted {
        format!("faces/{name}")
    } else {
        format!("rejects/{}/{name}", r.reason.code())
    }
}

/// Fast deflate: crops are written once per face and the size difference on 64-px crops is small.
fn encode_png(img: &RgbImage) -> Vec<u8> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::ImageEncoder;
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::Adaptive)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("PNG encodes into memory");
    png
}

fn short_hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(s.as_bytes())[..3])
}

fn progress_bar(opts: &ExtractOptions) -> ProgressBar {
    if !opts.progress {
        return ProgressBar::hidden();
    }
    let total: Option<u64> = opts.inputs.iter().map(Input::frame_count_hint).sum();
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} frames {per_sec} (eta {eta}) {msg}",
        )
        .expect("valid template"),
    );
    bar
}

/// Detector settings for extraction: low enough to see a second, weaker face in the frame.
pub fn detector_config(curation: &CurationConfig) -> FaceDetectorConfig {
    FaceDetectorConfig {
        score_threshold: curation.multi_face_score.min(curation.min_score).min(0.5),
        ..Default::default()
    }
}

/// Aligned crops of the best face in every frame of the reference inputs.
pub fn reference_crops(
    inputs: &[Input],
    detector: &RetinaFace,
    crop: &FaceCropSpec,
) -> Result<Vec<RgbImage>> {
    let mut crops = Vec::new();
    for input in inputs {
        let mut frames = input.open()?;
        while let Some(frame) = frames.next_frame()? {
            if let Some(best) = detector.detect(&frame)?.first() {
                crops.extend(align_face(&frame, &best.landmarks, crop).map(|a| a.image));
            }
        }
    }
    Ok(crops)
}
