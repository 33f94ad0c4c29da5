//! `host-trainer detect`: is this video a deepfake? The bundle's detector (tract, the same ONNX
//! the booth runs) scores the main face of every frame; scores are smoothed along the track and
//! reported next to the hand-made forensic cues, with a verdict, a score-over-time plot and JSON.

use std::path::{Path, PathBuf};

use facekit::forensics::{flicker, Cues, Texture};
use facekit::{FaceDetectorConfig, OnnxFakeDetector, OnnxModel, RetinaFace};
use serde::Serialize;
use shared_proto::bundle::{self, ModelKind};

mod review;

use review::{ReviewWriter, Scored};

use crate::artefacts::write_json;
use crate::error::{AtPath, Error, Result};
use crate::plot::{lines, Line, YAxis};

pub struct DetectOptions {
    pub bundle: PathBuf,
    /// Trusted signers; empty = integrity check only.
    pub trusted: Vec<bundle::VerifyingKey>,
    pub input: PathBuf,
    pub out: PathBuf,
    /// Verdict threshold; `None` takes the one the bundle's detector was calibrated to.
    pub threshold: Option<f32>,
    /// Exponential smoothing of the score along the track (0 = none).
    pub smoothing: f32,
    /// RetinaFace ONNX model that finds the faces to score.
    pub face_detector: PathBuf,
    pub max_frames: Option<u64>,
    /// Also write this review video: every frame beside its face, score and cues, slowed down
    /// `review_slowdown` times (see [`review`]).
    pub review: Option<PathBuf>,
    pub review_slowdown: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FrameScore {
    pub frame: u64,
    /// The network's score, with the bundle's blur check when it has one.
    pub score: f32,
    /// The network's score alone.
    pub network: f32,
    pub smoothed: f32,
    pub cues: Cues,
    /// Face change over background change since the previous scored frame.
    pub flicker: Option<f32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DetectReport {
    pub input: String,
    pub bundle: String,
    pub detector: String,
    pub frames: u64,
    pub frames_with_face: usize,
    pub mean_score: f32,
    pub threshold: f32,
    pub verdict: String,
    pub mean_cues: Cues,
    pub mean_flicker: Option<f32>,
    pub per_frame: Vec<FrameScore>,
}

pub fn detect(opts: &DetectOptions) -> Result<DetectReport> {
    let verified = bundle::open(&opts.bundle, &opts.trusted)?;
    let entry = verified
        .manifest
        .model(ModelKind::Detector, None)
        .ok_or_else(|| Error::NoFakeDetector(opts.bundle.clone()))?
        .clone();
    let crop = entry
        .crop
        .clone()
        .unwrap_or_else(|| verified.manifest.crop.clone());
    // Built from the bytes the check read, never from the file again.
    let shown = opts.bundle.join(&entry.file).display().to_string();
    let bytes = verified
        .file(&entry.file)
        .ok_or_else(|| Error::NoFakeDetector(opts.bundle.clone()))?;
    let detector = OnnxFakeDetector::new(OnnxModel::from_bytes(&shown, bytes, 1, true)?, crop);
    let faces = RetinaFace::load(&opts.face_detector, FaceDetectorConfig::default())?;
    let mut video = facekit::open_source(&opts.input)?;
    let threshold = opts
        .threshold
        .unwrap_or_else(|| verified.manifest.fake_threshold());
    let mut review = match &opts.review {
        Some(path) => {
            let total = facekit::video::frame_count_hint(&opts.input).unwrap_or(1);
            let total = opts.max_frames.map_or(total, |m| total.min(m));
            let fps = facekit::video::frame_rate(&opts.input).unwrap_or(25.0);
            Some(ReviewWriter::create(
                path,
                fps,
                opts.review_slowdown,
                total,
                threshold,
            )?)
        }
        None => None,
    };
    let (mut frames, mut per_frame) = (0u64, Vec::new());
    let mut previous: Option<image::RgbImage> = None;
    let mut smoothed: Option<f32> = None;
    let k = opts.smoothing.clamp(0.0, 0.99);
    while let Some(frame) = video.next_frame()? {
        if opts.max_frames.is_some_and(|m| frames >= m) {
            break;
        }
        let index = frames;
        frames += 1;
        let found = faces.detect(&frame)?;
        let Some(face) = facekit::face_detection::largest(found) else {
            previous = None;
            if let Some(r) = review.as_mut() {
                r.no_face(&frame, index)?;
            }
            continue;
        };
        let Some(examined) = detector.examine(&frame, &face.landmarks)? else {
            if let Some(r) = review.as_mut() {
                r.no_face(&frame, index)?;
            }
            continue;
        };
        let (network, face_cues, aligned) = (examined.network, examined.cues, examined.aligned);
        // The blur check joins where the network's own threshold lies, whatever the verdict's.
        let score = entry.fake_score(network, face_cues.over_blur);
        let s = smoothed.map_or(score, |old| k * old + (1.0 - k) * score);
        smoothed = Some(s);
        let flick = previous
            .as_ref()
            .map(|p| flicker(p, &aligned.image, &aligned.landmarks));
        let scored = FrameScore {
            frame: index,
            score,
            network,
            smoothed: s,
            cues: face_cues,
            flicker: flick,
        };
        if let Some(r) = review.as_mut() {
            r.scored(
                &frame,
                &Scored {
                    index,
                    bbox: face.bbox,
                    aligned: &aligned,
                    score,
                    network,
                    smoothed: s,
                    cues: scored.cues,
                    flicker: flick,
                    blur_alarm: entry
                        .blur_check
                        .is_some_and(|c| c.alarms(face_cues.over_blur)),
                },
            )?;
        }
        per_frame.push(scored);
        previous = Some(aligned.image);
    }
    if let Some(r) = review {
        r.finish()?;
    }
    if per_frame.is_empty() {
        return Err(Error::NoFaceToScore(opts.input.clone()));
    }
    let n = per_frame.len() as f32;
    let mean_score = per_frame.iter().map(|f| f.score).sum::<f32>() / n;
    let mean = |get: fn(&Cues) -> f32| per_frame.iter().map(|f| get(&f.cues)).sum::<f32>() / n;
    let flickers: Vec<f32> = per_frame.iter().filter_map(|f| f.flicker).collect();
    let report = DetectReport {
        input: opts.input.display().to_string(),
        bundle: opts.bundle.display().to_string(),
        detector: format!(
            "{} ({}{})",
            entry.name,
            entry.preset,
            if entry.blur_check.is_some() {
                ", with its blur check"
            } else {
                ""
            }
        ),
        frames,
        frames_with_face: per_frame.len(),
        mean_score,
        threshold,
        verdict: if mean_score >= threshold {
            "FAKE".into()
        } else {
            "REAL".into()
        },
        mean_cues: Cues {
            over_blur: mean(|c| c.over_blur),
            edge_colour: mean(|c| c.edge_colour),
            double_edges: mean(|c| c.double_edges),
            mouth_blur: mean(|c| c.mouth_blur),
            texture: Texture {
                detail: mean(|c| c.texture.detail),
                edges: mean(|c| c.texture.edges),
                noise: mean(|c| c.texture.noise),
                colour_noise: mean(|c| c.texture.colour_noise),
            },
        },
        mean_flicker: (!flickers.is_empty())
            .then(|| flickers.iter().sum::<f32>() / flickers.len() as f32),
        per_frame,
    };
    write_outputs(&report, &opts.out)?;
    Ok(report)
}

fn write_outputs(report: &DetectReport, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).at("create", out)?;
    write_json(&out.join("detect.json"), report)?;
    let plot = out.join("score.png");
    let series = [
        Line {
            label: "score",
            points: report
                .per_frame
                .iter()
                .map(|f| (f.frame as f64, f.score as f64))
                .collect(),
            colour: plotters::style::RGBColor(150, 150, 150),
        },
        Line {
            label: "smoothed",
            points: report
                .per_frame
                .iter()
                .map(|f| (f.frame as f64, f.smoothed as f64))
                .collect(),
            colour: plotters::style::RED,
        },
        Line {
            label: "threshold",
            points: vec![
                (0.0, report.threshold as f64),
                (report.frames as f64, report.threshold as f64),
            ],
            colour: plotters::style::BLACK,
        },
    ];
    lines(
        &plot,
        &format!("fake probability, {}: {}", report.input, report.verdict),
        "frame",
        YAxis::Unit("fake probability"),
        &series,
    )
}
