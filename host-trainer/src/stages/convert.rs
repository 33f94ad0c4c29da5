//! `host-trainer convert`: swaps every face of a video into the other person with a trained run,
//! pastes it back with the shared blending code, burns in the "SYNTHETIC" label on every frame
//! and writes a provenance sidecar.

use std::path::{Path, PathBuf};

use facekit::blend::BlendOptions;
use facekit::draw::synthetic_label;
use facekit::smooth::OneEuro;
use facekit::swap::swap_into_frame;
use facekit::{align_face, FaceDetectorConfig, FrameSource, RetinaFace, VideoReader, VideoWriter};
use serde::Serialize;
use tch::Device;

use crate::artefacts::run::Generator;
use crate::artefacts::write_json;
use crate::error::Result;
use crate::model::swapper::TchSwapper;
use crate::person::Person;

pub struct ConvertOptions {
    pub run: PathBuf,
    pub input: PathBuf,
    pub output: PathBuf,
    /// Whose decoder renders the faces: `B` swaps A's video into B.
    pub to: Person,
    pub blend: BlendOptions,
    /// One-Euro minimum cutoff (Hz) for landmark smoothing; lower = steadier.
    pub smooth_cutoff: f32,
    /// Frames of the input skipped before converting (e.g. to convert only a held-out tail).
    pub start: u64,
    pub max_frames: Option<u64>,
    pub face_detector: PathBuf,
    pub device: Device,
}

#[derive(Debug, Serialize)]
pub struct Provenance {
    pub synthetic: bool,
    pub tool: String,
    pub created: String,
    pub source: String,
    pub direction: String,
    pub run: String,
    pub preset: String,
    pub checkpoint_sha256: String,
    pub training_steps: i64,
    pub blend: BlendOptions,
    /// The first input frame converted.
    pub start_frame: u64,
    pub frames: u64,
    pub frames_swapped: u64,
}

pub fn convert(opts: &ConvertOptions) -> Result<Provenance> {
    let generator = Generator::load(&opts.run, opts.device)?;
    let crop = generator.crop.clone();
    let detector = RetinaFace::load(&opts.face_detector, FaceDetectorConfig::default())?;
    let mut video = VideoReader::open(&opts.input)?;
    let (w, h) = video.size();
    let fps = facekit::frame_rate(&opts.input).unwrap_or(25.0);
    let mut writer = VideoWriter::create(&opts.output, w, h, fps)?;
    let mut smoother = OneEuro::new(opts.smooth_cutoff, 0.05);
    let (mut frames, mut swapped) = (0u64, 0u64);
    let _guard = tch::no_grad_guard();
    for _ in 0..opts.start {
        if video.next_frame()?.is_none() {
            break;
        }
    }
    while let Some(mut frame) = video.next_frame()? {
        if opts.max_frames.is_some_and(|m| frames >= m) {
            break;
        }
        frames += 1;
        match detector.detect(&frame)?.first() {
            Some(det) => {
                let flat: Vec<f32> = det.landmarks.iter().flatten().copied().collect();
                let s = smoother.filter(&flat, fps as f32);
                let lm: [[f32; 2]; 5] = std::array::from_fn(|i| [s[2 * i], s[2 * i + 1]]);
                if let Some(aligned) = align_face(&frame, &lm, &crop) {
                    let swapper = TchSwapper::swap_into(&generator.model, opts.to);
                    swap_into_frame(&mut frame, &aligned, &swapper, &opts.blend)?;
                    swapped += 1;
                }
            }
            None => smoother.reset(),
        }
        synthetic_label(&mut frame);
        writer.write(&frame)?;
    }
    writer.finish()?;
    let provenance = Provenance {
        synthetic: true,
        tool: format!("doppel host-trainer {}", env!("CARGO_PKG_VERSION")),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        source: opts.input.display().to_string(),
        direction: format!("{} -> {}", opts.to.other(), opts.to),
        run: opts.run.display().to_string(),
        preset: generator.config.preset.clone(),
        checkpoint_sha256: generator.checkpoint_sha256.clone(),
        training_steps: generator.steps,
        blend: opts.blend.clone(),
        start_frame: opts.start,
        frames,
        frames_swapped: swapped,
    };
    write_json(&provenance_path(&opts.output), &provenance)?;
    Ok(provenance)
}

/// `out.mp4` → `out.mp4.provenance.json`.
pub fn provenance_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".provenance.json");
    output.with_file_name(name)
}
