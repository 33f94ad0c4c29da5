//! `host-trainer convert`: swaps every face of a video into the other person with a trained run,
//! pastes it back with the shared blending code, burns in the "SYNTHETIC" label on every frame
//! and writes a provenance sidecar.

use std::path::{Path, PathBuf};

use facekit::blend::BlendOptions;
use facekit::draw::synthetic_label;
use facekit::smooth::OneEuro;
use facekit::swap::{swap_into_frame, FaceSwapper};
use facekit::{align_face, DetectorConfig, FrameSource, RetinaFace, VideoReader, VideoWriter};
use image::{GrayImage, Luma};
use serde::Serialize;
use tch::Device;

use crate::model::net::Autoencoder;
use crate::train::run::{from_tensor, Generator};
use crate::train::trainer::to_tensor;

pub struct ConvertOptions {
    pub run: PathBuf,
    pub input: PathBuf,
    pub output: PathBuf,
    /// Decoder to render with: 0 = A, 1 = B.
    pub to: usize,
    pub blend: BlendOptions,
    /// One-Euro minimum cutoff (Hz) for landmark smoothing; lower = steadier.
    pub smooth_cutoff: f32,
    pub max_frames: Option<u64>,
    pub detector: PathBuf,
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
    pub frames: u64,
    pub frames_swapped: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{path}: {detail}")]
    Run { path: String, detail: String },
    #[error(transparent)]
    Face(#[from] facekit::FacekitError),
    #[error(transparent)]
    Generator(#[from] crate::train::run::RunError),
}

pub fn convert(opts: &ConvertOptions) -> Result<Provenance, ConvertError> {
    let generator = Generator::load(&opts.run, opts.device)?;
    let crop = generator.crop.clone();
    let detector = RetinaFace::load(&opts.detector, DetectorConfig::default())?;
    let mut video = VideoReader::open(&opts.input)?;
    let (w, h) = video.size();
    let fps = facekit::frame_rate(&opts.input).unwrap_or(25.0);
    let mut writer = VideoWriter::create(&opts.output, w, h, fps)?;
    let mut smoother = OneEuro::new(opts.smooth_cutoff, 0.05);
    let (mut frames, mut swapped) = (0u64, 0u64);
    let _guard = tch::no_grad_guard();
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
                    let swapper = TchSwapper {
                        model: &generator.model,
                        to: opts.to,
                    };
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
    let names = ["A", "B"];
    let provenance = Provenance {
        synthetic: true,
        tool: format!("doppel host-trainer {}", env!("CARGO_PKG_VERSION")),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        source: opts.input.display().to_string(),
        direction: format!("{} -> {}", names[1 - opts.to], names[opts.to]),
        run: opts.run.display().to_string(),
        preset: generator.config.preset.clone(),
        checkpoint_sha256: generator.checkpoint_sha256.clone(),
        training_steps: generator.steps,
        blend: opts.blend.clone(),
        frames,
        frames_swapped: swapped,
    };
    let sidecar = provenance_path(&opts.output);
    std::fs::write(
        &sidecar,
        serde_json::to_string_pretty(&provenance).expect("provenance serialises"),
    )
    .map_err(|e| ConvertError::Run {
        path: sidecar.display().to_string(),
        detail: e.to_string(),
    })?;
    Ok(provenance)
}

/// The tch generator as the shared face library's swapper: decoder `to` of `model`.
pub struct TchSwapper<'a> {
    pub model: &'a Autoencoder,
    pub to: usize,
}

impl FaceSwapper for TchSwapper<'_> {
    fn swap(&self, crop: &image::RgbImage) -> facekit::Result<(image::RgbImage, GrayImage)> {
        let x = to_tensor(std::slice::from_ref(crop), self.model.encoder.device());
        let (rgb, mask) = tch::no_grad(|| self.model.forward(&x, self.to));
        let face = from_tensor(&rgb.get(0));
        let m = from_tensor(&mask.get(0).repeat([3, 1, 1]));
        let mask = GrayImage::from_fn(m.width(), m.height(), |x, y| Luma([m.get_pixel(x, y).0[0]]));
        Ok((face, mask))
    }
}

/// `out.mp4` → `out.mp4.provenance.json`.
pub fn provenance_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".provenance.json");
    output.with_file_name(name)
}
