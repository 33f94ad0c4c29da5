//! One frame through the booth: find the visitor's face (every frame or every N with the
//! landmarks held in between), smooth the landmarks, align with the bundle's crop spec, then
//! swap and/or score according to the mode. Any failure leaves the frame as it came in.

use std::time::Instant;

use facekit::forensics::{cues, flicker, Cues};
use facekit::smooth::OneEuro;
use facekit::swap::{to_input, FaceSwapper};
use facekit::{align_face, Detection, FaceDetectorConfig, RetinaFace};
use image::RgbImage;

use crate::config::{Mode, PipelineConfig};
use crate::models::LoadedBundle;

/// Milliseconds spent in each stage of one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    pub detect: f64,
    pub align: f64,
    pub swap: f64,
    pub blend: f64,
    pub score: f64,
}

/// What happened to one frame.
#[derive(Debug, Clone, Default)]
pub struct FrameResult {
    /// The face used (smoothed landmarks), if any.
    pub face: Option<Detection>,
    pub detected: bool,
    pub swapped: bool,
    /// Fake probability smoothed along the track.
    pub score: Option<f32>,
    /// The hand-made forensic cues of the scored face, smoothed along the track like the score.
    pub cues: Option<BoothCues>,
    pub times: StageTimes,
    pub error: Option<String>,
}

/// The cues `detect` reports, for the booth: per-crop [`Cues`] and flicker against the previous
/// scored crop of the same track (none on a track's first frame).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BoothCues {
    pub cues: Cues,
    pub flicker: Option<f32>,
}

pub struct Pipeline {
    face_detector: RetinaFace,
    pub config: PipelineConfig,
    pub mode: Mode,
    smoother: OneEuro,
    held: Option<Detection>,
    frame_index: u64,
    score: Option<f32>,
    cues: Option<BoothCues>,
    /// The last scored crop of the track, for flicker.
    previous_crop: Option<RgbImage>,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

impl Pipeline {
    pub fn new(config: PipelineConfig) -> facekit::Result<Self> {
        let face_detector = RetinaFace::load(
            &config.face_detector,
            FaceDetectorConfig {
                score_threshold: config.score_threshold,
                ..Default::default()
            },
        )?;
        Ok(Self {
            face_detector,
            smoother: OneEuro::new(config.smooth_cutoff, config.smooth_beta),
            mode: config.mode,
            config,
            held: None,
            frame_index: 0,
            score: None,
            cues: None,
            previous_crop: None,
        })
    }

    /// The largest face at detection resolution, scaled back to the frame.
    fn detect(&self, frame: &RgbImage) -> facekit::Result<Option<Detection>> {
        let w = self.config.detect_width;
        let (small, s) = if w > 0 && w < frame.width() {
            let h = (frame.height() as f32 * w as f32 / frame.width() as f32).round() as u32;
            let small = image::imageops::resize(frame, w, h, image::imageops::FilterType::Triangle);
            (Some(small), frame.width() as f32 / w as f32)
        } else {
            (None, 1.0)
        };
        let faces = self.face_detector.detect(small.as_ref().unwrap_or(frame))?;
        Ok(facekit::face_detection::largest(faces).map(|d| Detection {
            bbox: d.bbox.map(|v| v * s),
            score: d.score,
            landmarks: d.landmarks.map(|[x, y]| [x * s, y * s]),
        }))
    }

    /// Processes `frame` in place. `rate` is the frame rate the smoother assumes.
    pub fn process(
        &mut self,
        frame: &mut RgbImage,
        bundle: Option<&LoadedBundle>,
        rate: f32,
    ) -> FrameResult {
        let mut out = FrameResult::default();
        let every = self.config.detect_every.max(1) as u64;
        let due = self.frame_index.is_multiple_of(every) || self.held.is_none();
        self.frame_index += 1;
        if due {
            let t = Instant::now();
            match self.detect(frame) {
                Ok(found) => {
                    out.detected = found.is_some();
                    self.held = found;
                }
                Err(e) => {
                    out.error = Some(format!("detection failed: {e}"));
                    self.held = None;
                }
            }
            out.times.detect = ms(t);
        }
        let Some(raw) = self.held.clone() else {
            self.smoother.reset();
            self.score = None;
            self.cues = None;
            self.previous_crop = None;
            return out;
        };
        let flat: Vec<f32> = raw.landmarks.iter().flatten().copied().collect();
        let s = self.smoother.filter(&flat, rate);
        let face = Detection {
            landmarks: std::array::from_fn(|i| [s[2 * i], s[2 * i + 1]]),
            ..raw
        };
        out.face = Some(face.clone());
        let Some(bundle) = bundle else {
            return out;
        };

        if self.mode.swaps() {
            if let Some((_, swapper)) = &bundle.swap {
                let t = Instant::now();
                let aligned = align_face(frame, &face.landmarks, bundle.crop());
                out.times.align += ms(t);
                if let Some(aligned) = aligned {
                    let t = Instant::now();
                    // Split the swap from the blend for the per-stage figures.
                    match swapper.swap(&aligned.image) {
                        Ok((rgb, mask)) => {
                            out.times.swap = ms(t);
                            let t = Instant::now();
                            let mask =
                                facekit::swap::blend_mask(&mask, &aligned, self.config.blend.mask);
                            facekit::blend::paste_back(
                                frame,
                                &rgb,
                                &mask,
                                &aligned.image,
                                &aligned.to_crop,
                                &self.config.blend,
                            );
                            out.times.blend = ms(t);
                            out.swapped = true;
                        }
                        Err(e) => {
                            out.times.swap = ms(t);
                            out.error = Some(format!("swap failed, frame passed through: {e}"));
                        }
                    }
                }
            }
        }
        if self.mode.scores() {
            if let Some((model, crop)) = &bundle.detector {
                let t = Instant::now();
                let result = align_face(frame, &face.landmarks, crop)
                    .ok_or_else(|| "face cannot be aligned".to_string())
                    .and_then(|a| {
                        let p = model
                            .run(to_input(&a.image, &crop.normalisation))
                            .map_err(|e| e.to_string())?;
                        match p.first().and_then(|v| v.first()) {
                            Some(p) if p.is_finite() => Ok((*p, a)),
                            _ => Err("detector returned no finite score".to_string()),
                        }
                    });
                match result {
                    Ok((p, aligned)) => {
                        let k = self.config.score_smoothing.clamp(0.0, 0.99);
                        let ema = |old: f32, new: f32| k * old + (1.0 - k) * new;
                        let smoothed = self.score.map_or(p, |old| ema(old, p));
                        self.score = Some(smoothed);
                        out.score = Some(smoothed);
                        let now = BoothCues {
                            cues: cues(&aligned.image, &aligned.landmarks),
                            flicker: self
                                .previous_crop
                                .as_ref()
                                .map(|prev| flicker(prev, &aligned.image, &aligned.landmarks)),
                        };
                        let smoothed = match self.cues {
                            Some(old) => BoothCues {
                                cues: old.cues.smoothed(now.cues, k),
                                flicker: match (old.flicker, now.flicker) {
                                    (Some(o), Some(n)) => Some(ema(o, n)),
                                    (_, n) => n,
                                },
                            },
                            None => now,
                        };
                        self.cues = Some(smoothed);
                        out.cues = Some(smoothed);
                        self.previous_crop = Some(aligned.image);
                    }
                    Err(e) => out.error = Some(format!("scoring failed: {e}")),
                }
                out.times.score = ms(t);
            }
        }
        out
    }
}
