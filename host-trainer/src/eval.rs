//! `host-trainer eval`: how good is a run, measured on held-out frames (the last block of each
//! source video, never trained on).
//!
//! - reconstruction PSNR / SSIM per person (A→A, B→B);
//! - identity transfer rate: an independent A-vs-B classifier, trained only on real faces (LBPH
//!   nearest-neighbour, no part of the generator), labels A→B outputs as B (and B→A as A);
//! - pose keeping: RetinaFace landmarks on the swapped frame vs on the source frame, divided by
//!   the inter-ocular distance;
//! - flicker: mean frame-to-frame change of the swapped face over that of the source face
//!   (1.0 = as steady as the real video).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use facekit::blend::BlendOptions;
use facekit::{align_face, DetectorConfig, FrameSource, RetinaFace, VideoReader};
use image::RgbImage;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::convert::TchSwapper;
use crate::extract::identity::Lbph;
use crate::model::net::Autoencoder;
use crate::train::data::{DataError, FaceSet};
use crate::train::losses::ssim_loss;
use crate::train::run::{from_tensor, Generator, RunError};
use crate::train::trainer::to_tensor;
use facekit::swap::swap_into_frame;

#[derive(Debug, Serialize, Clone, Default)]
pub struct PersonEval {
    pub person: String,
    pub held_out_faces: usize,
    pub psnr_db: f64,
    pub ssim: f64,
    /// Fraction of this person's faces swapped into the other that the classifier calls "other".
    pub identity_transfer_rate: f64,
    /// The same with a "neither" answer: the swap must also lie within the other person's own
    /// spread of real faces (see `Classifier::predict_open`).
    pub identity_transfer_open_set: f64,
    /// Classifier accuracy on this person's real held-out faces (its own credibility).
    pub classifier_accuracy_real: f64,

    /// Classifier accuracy on this person's reconstructions through their own decoder: the
    /// control that it judges identity rather than the generator's blur.
    pub classifier_accuracy_reconstructed: f64,
    /// The same, open-set: if reconstructions fail it too, open-set misses are the
    /// autoencoder's blur rather than the wrong identity.
    pub classifier_accuracy_reconstructed_open_set: f64,
    /// Mean of the other decoder's learned mask over the face ellipse when swapping this
    /// person's faces: near 0 means the learned mask collapsed and would paste nothing.
    pub swap_mask_on_face: f64,
    /// Mean landmark error of swapped vs source frames / inter-ocular distance.
    pub pose_error: Option<f64>,
    /// Swapped-face frame-to-frame change over source-face change.
    pub flicker_ratio: Option<f64>,
    pub frames_for_pose: usize,
}

#[derive(Debug, Serialize)]
pub struct EvalReport {
    pub run: String,
    pub preset: String,
    pub steps: i64,
    pub people: Vec<PersonEval>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Face(#[from] facekit::FacekitError),
}

/// Nearest-neighbour over LBPH descriptors of real faces of both people.
/// It looks only at the face: pixels outside the template's face ellipse are blanked and colours
/// are grey-world normalised, so the two scenes' backgrounds and lighting cannot decide.
struct Classifier {
    refs: [Vec<Lbph>; 2],
    face_mask: Vec<bool>,
    /// Per person: how far their own unseen real faces lie from their training faces (the
    /// farthest held-out face's nearest-neighbour distance). Farther than that is "neither".
    radius: [f32; 2],
}

impl Classifier {
    fn new(sets: &[FaceSet; 2]) -> Self {
        let crop = &sets[0].crop;
        let prior =
            crate::train::losses::face_prior(&crop.template_px(), crop.size as i64, Device::Cpu);
        let face_mask: Vec<bool> = Vec::<f32>::try_from(prior.flatten(0, -1))
            .expect("float mask")
            .into_iter()
            .map(|v| v > 0.5)
            .collect();
        let mut c = Self {
            refs: [Vec::new(), Vec::new()],
            face_mask,
            radius: [f32::INFINITY; 2],
        };
        c.refs = [0, 1].map(|k| sets[k].train.iter().map(|f| c.describe(f)).collect());
        // Neighbouring training frames are near-copies, so their spread says nothing; the
        // spread of a person's unseen frames does: the farthest held-out real face.
        c.radius = [0, 1].map(|k| {
            let unseen = if sets[k].held_out.is_empty() {
                &sets[k].train
            } else {
                &sets[k].held_out
            };
            unseen
                .iter()
                .map(|f| c.nearest(f)[k])
                .fold(0.0f32, f32::max)
        });
        c
    }

    fn describe(&self, face: &RgbImage) -> Lbph {
        let (mut sum, mut count) = ([0f32; 3], 0f32);
        for (p, _) in face
            .pixels()
            .zip(&self.face_mask)
            .filter(|(_, &inside)| inside)
        {
            for (acc, &v) in sum.iter_mut().zip(&p.0) {
                *acc += v as f32;
            }
            count += 1.0;
        }
        // Grey world: every channel's mean over the face becomes 128.
        let scale = sum.map(|s| 128.0 * count.max(1.0) / s.max(1.0));
        let mut normalised = face.clone();
        for (p, &inside) in normalised.pixels_mut().zip(&self.face_mask) {
            p.0 = if inside {
                [0, 1, 2].map(|c| (p.0[c] as f32 * scale[c]).clamp(0.0, 255.0) as u8)
            } else {
                [0; 3]
            };
        }
        Lbph::of(&normalised)
    }

    /// Forced choice: the person whose nearest real face is nearer.
    fn predict(&self, face: &RgbImage) -> usize {
        let [a, b] = self.nearest(face);
        usize::from(b < a)
    }

    /// Open set: that person only if the face is also as close to their real faces as their own
    /// unseen faces are; `None` for a face like neither (a featureless blob, say).
    fn predict_open(&self, face: &RgbImage) -> Option<usize> {
        let d = self.nearest(face);
        let k = usize::from(d[1] < d[0]);
        (d[k] <= self.radius[k]).then_some(k)
    }

    fn nearest(&self, face: &RgbImage) -> [f32; 2] {
        let d = self.describe(face);
        [0, 1].map(|k| {
            self.refs[k]
                .iter()
                .map(|r| r.distance(&d))
                .fold(f32::INFINITY, f32::min)
        })
    }
}

fn psnr(a: &Tensor, b: &Tensor) -> f64 {
    let mse = f64::try_from((a - b).square().mean(Kind::Float)).unwrap_or(f64::NAN);
    10.0 * (1.0 / mse.max(1e-12)).log10()
}

pub fn evaluate(
    run: &Path,
    datasets: [&Path; 2],
    detector: &Path,
    device: Device,
) -> Result<EvalReport, EvalError> {
    let generator = Generator::load(run, device)?;
    let sets = [
        FaceSet::load(datasets[0], 0.1)?,
        FaceSet::load(datasets[1], 0.1)?,
    ];
    let classifier = Classifier::new(&sets);
    let det = RetinaFace::load(detector, DetectorConfig::default())?;
    let _guard = tch::no_grad_guard();

    let mut people = Vec::new();
    for (p, set) in sets.iter().enumerate() {
        let faces = if set.held_out.is_empty() {
            &set.train
        } else {
            &set.held_out
        };
        let x = to_tensor(faces, device);
        let (rec, rec_mask) = generator.model.forward(&x, p);
        let (swap, learned) = generator.model.forward(&x, 1 - p);
        // Judge what a viewer sees: the swap composited over the face with the blend mask the
        // booth and convert use (learned ∪ face ellipse), not the raw decoder output.
        let size = faces[0].width();
        let hull = facekit::forensics::face_mask(size, &set.crop.template_px());
        let hull = Tensor::from_slice(
            &hull
                .as_raw()
                .iter()
                .map(|&v| v as f32 / 255.0)
                .collect::<Vec<_>>(),
        )
        .reshape([1, 1, size as i64, size as i64])
        .to_device(device);
        let swap_mask_on_face = f64::try_from(
            (&learned * &hull).sum(Kind::Float) / (hull.sum(Kind::Float) * faces.len() as f64),
        )
        .unwrap_or(f64::NAN);
        let composite = |generated: &Tensor, learned: &Tensor| -> Vec<RgbImage> {
            let mask = learned.maximum(&hull);
            let out: Tensor = &mask * generated + (mask.ones_like() - &mask) * &x;
            (0..faces.len() as i64)
                .map(|i| from_tensor(&out.get(i)))
                .collect()
        };
        let swapped = composite(&swap, &learned);
        let transferred = swapped
            .iter()
            .filter(|f| classifier.predict(f) == 1 - p)
            .count();
        let transferred_open = swapped
            .iter()
            .filter(|f| classifier.predict_open(f) == Some(1 - p))
            .count();
        // Control: the same decoder path on the person's own decoder. If the classifier calls
        // these the other person, it is reading the generator's blur, not identity.
        let reconstructed = composite(&rec, &rec_mask);
        let kept = reconstructed
            .iter()
            .filter(|f| classifier.predict(f) == p)
            .count();
        let kept_open = reconstructed
            .iter()
            .filter(|f| classifier.predict_open(f) == Some(p))
            .count();
        let real_ok = faces.iter().filter(|f| classifier.predict(f) == p).count();

        let (pose_error, flicker_ratio, frames_for_pose) =
            pose_and_flicker(&generator.model, &det, set, p)?;
        people.push(PersonEval {
            person: set.person.clone(),
            held_out_faces: faces.len(),
            psnr_db: psnr(&rec, &x),
            ssim: 1.0 - f64::try_from(ssim_loss(&rec, &x)).unwrap_or(f64::NAN),
            identity_transfer_rate: transferred as f64 / faces.len().max(1) as f64,
            identity_transfer_open_set: transferred_open as f64 / faces.len().max(1) as f64,
            classifier_accuracy_real: real_ok as f64 / faces.len().max(1) as f64,

            classifier_accuracy_reconstructed: kept as f64 / faces.len().max(1) as f64,
            classifier_accuracy_reconstructed_open_set: kept_open as f64
                / faces.len().max(1) as f64,
            swap_mask_on_face,
            pose_error,
            flicker_ratio,
            frames_for_pose,
        });
    }
    Ok(EvalReport {
        run: run.display().to_string(),
        preset: generator.config.preset.clone(),
        steps: generator.steps,
        people,
    })
}

/// Swaps the held-out video frames of `set` into the other person and measures how well the
/// head pose is kept and how much the swapped face flickers compared with the source.
fn pose_and_flicker(
    model: &Autoencoder,
    det: &RetinaFace,
    set: &FaceSet,
    p: usize,
) -> Result<(Option<f64>, Option<f64>, usize), EvalError> {
    let mut wanted: HashMap<&str, Vec<u64>> = HashMap::new();
    for (source, frame) in &set.held_out_frames {
        wanted.entry(source.as_str()).or_default().push(*frame);
    }
    let device = model.encoder.device();
    let (mut pose_sum, mut pose_n) = (0.0f64, 0usize);
    let (mut swap_change, mut src_change, mut pairs) = (0.0f64, 0.0f64, 0usize);
    for (source, frames) in wanted {
        let path = PathBuf::from(source);
        if !path.is_file() {
            tracing::warn!("{source}: source video not found from here; pose and flicker skip it");
            continue;
        }
        let mut video = VideoReader::open(&path)?;
        let mut index = 0u64;
        let mut prev: Option<(u64, Tensor, Tensor)> = None;
        while let Some(frame) = video.next_frame()? {
            let i = index;
            index += 1;
            if !frames.contains(&i) {
                continue;
            }
            let Some(src) = det.detect(&frame)?.into_iter().next() else {
                continue;
            };
            let Some(aligned) = align_face(&frame, &src.landmarks, &set.crop) else {
                continue;
            };
            let x = to_tensor(std::slice::from_ref(&aligned.image), device);
            let mut out = frame.clone();
            let swapper = TchSwapper { model, to: 1 - p };
            let (face, _) =
                swap_into_frame(&mut out, &aligned, &swapper, &BlendOptions::default())?;
            let rgb = to_tensor(&[face], device);
            if let Some(swapped) = det.detect(&out)?.into_iter().next() {
                let iod = (src.landmarks[1][0] - src.landmarks[0][0])
                    .hypot(src.landmarks[1][1] - src.landmarks[0][1])
                    .max(1.0);
                let err: f32 = src
                    .landmarks
                    .iter()
                    .zip(&swapped.landmarks)
                    .map(|(a, b)| (a[0] - b[0]).hypot(a[1] - b[1]))
                    .sum::<f32>()
                    / 5.0;
                pose_sum += (err / iod) as f64;
                pose_n += 1;
            }
            if let Some((pi, px, prgb)) = &prev {
                if *pi + 1 == i {
                    src_change += f64::try_from((&x - px).abs().mean(Kind::Float)).unwrap_or(0.0);
                    swap_change +=
                        f64::try_from((&rgb - prgb).abs().mean(Kind::Float)).unwrap_or(0.0);
                    pairs += 1;
                }
            }
            prev = Some((i, x, rgb));
        }
    }
    let pose = (pose_n > 0).then(|| pose_sum / pose_n as f64);
    let flicker = (pairs > 0 && src_change > 0.0).then(|| swap_change / src_change);
    Ok((pose, flicker, pose_n))
}

impl EvalReport {
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# Evaluation of {} ({}, {} steps)\n\nHeld-out = the last 10% of each source's frames.\n\n| person | faces | PSNR dB | SSIM | identity transfer (forced / open-set) | classifier on real | classifier on reconstructions (forced / open-set) | swap mask on face | pose error (×IOD) | flicker ratio |\n|---|---|---|---|---|---|---|---|---|---|\n",
            self.run, self.preset, self.steps
        );
        for p in &self.people {
            let opt = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
            s += &format!(
                "| {} | {} | {:.2} | {:.3} | {:.0}% / {:.0}% | {:.0}% | {:.0}% / {:.0}% | {:.2} | {} | {} |\n",
                p.person,
                p.held_out_faces,
                p.psnr_db,
                p.ssim,
                100.0 * p.identity_transfer_rate,
                100.0 * p.identity_transfer_open_set,
                100.0 * p.classifier_accuracy_real,
                100.0 * p.classifier_accuracy_reconstructed,
                100.0 * p.classifier_accuracy_reconstructed_open_set,
                p.swap_mask_on_face,
                opt(p.pose_error),
                opt(p.flicker_ratio)
            );
        }
        s
    }
}
