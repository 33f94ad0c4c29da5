//! `host-trainer eval`: how good is a run, measured on held-out frames (the last block of each
//! source video, never trained on).
//!
//! - first, an outside judge ([`judge`]): dlib's face detector and face-recognition descriptor
//!   on the swapped held-out frames — is a face found, is it nearer the target than the source,
//!   is it verified as the target (distance < 0.6)?
//! - softness: the over-blur cue of the swapped faces against the target's real faces;
//! - reconstruction PSNR / SSIM per person (A→A, B→B);
//! - identity transfer rate: an independent A-vs-B classifier, trained only on real faces (LBPH
//!   nearest-neighbour, no part of the generator), labels A→B outputs as B (and B→A as A);
//! - pose keeping: RetinaFace landmarks on the swapped frame vs on the source frame, divided by
//!   the inter-ocular distance;
//! - flicker: mean frame-to-frame change of the swapped face over that of the source face
//!   (1.0 = as steady as the real video).

mod classifier;
pub mod judge;
mod video;

use std::path::PathBuf;

use facekit::blend::{BlendOptions, MaskSource};
use facekit::{FaceDetectorConfig, RetinaFace};
use image::RgbImage;
use tch::{Device, Kind, Tensor};

use crate::artefacts::dataset::{accepted_frames, FaceSet};
use crate::artefacts::run::{EvalReport, Generator, PersonEval, Softness};
use crate::error::Result;
use crate::model::losses::ssim_loss;
use crate::model::tensors::{from_tensor, to_tensor};
use crate::person::Person;
use crate::stages::train::occluders;
use classifier::Classifier;
use judge::{Direction, JudgeCommand};

/// What `eval` measures and with what.
pub struct EvalOptions {
    pub run: PathBuf,
    /// Generator weights other than the run's checkpoint (a snapshot or a warm start).
    pub weights: Option<PathBuf>,
    pub datasets: [PathBuf; 2],
    /// Share of each dataset's frames (the last ones of each source) that are evaluated; the
    /// rest give the judge its references. 0.1 is what `train` holds out; a stranger no run
    /// ever saw can give more.
    pub held_out: [f64; 2],
    /// RetinaFace, which finds the faces in the held-out frames.
    pub face_detector: PathBuf,
    pub device: Device,
    /// The outside identity judge; `None` skips it.
    pub judge: Option<JudgeCommand>,
    /// Swapped frames per direction the judge looks at (spread over the held-out frames), and
    /// real frames per person its reference descriptors come from.
    pub judge_frames: usize,
    /// Unsharp-mask amount of the paste (`BlendOptions::sharpen`).
    pub sharpen: f32,
    /// The identity shift from these datasets' reference frames rather than the run's.
    pub means_from_datasets: bool,
}

fn psnr(a: &Tensor, b: &Tensor) -> f64 {
    let mse = f64::try_from((a - b).square().mean(Kind::Float)).unwrap_or(f64::NAN);
    10.0 * (1.0 / mse.max(1e-12)).log10()
}

pub fn evaluate(opts: &EvalOptions) -> Result<EvalReport> {
    let device = opts.device;
    let mut generator = match &opts.weights {
        Some(w) => Generator::load_weights(&opts.run, w, device)?,
        None => Generator::load(&opts.run, device)?,
    };
    let sets = [
        FaceSet::load(&opts.datasets[0], opts.held_out[0] as f32)?,
        FaceSet::load(&opts.datasets[1], opts.held_out[1] as f32)?,
    ];
    if opts.means_from_datasets {
        generator
            .model
            .measure_identities([&sets[0].train, &sets[1].train]);
    }
    let classifier = Classifier::new(&sets);
    let det = RetinaFace::load(&opts.face_detector, FaceDetectorConfig::default())?;
    let _guard = tch::no_grad_guard();

    let paste = generator.config.paste_mask();
    let blend = BlendOptions {
        mask: paste,
        sharpen: opts.sharpen,
        ..Default::default()
    };
    let mut people = Vec::new();
    let mut videos = Vec::new();
    for (person, set) in Person::BOTH.into_iter().zip(&sets) {
        let p = person.index();
        let faces = set.unseen();
        let x = to_tensor(faces, device);
        let (rec, rec_mask) = generator.model.forward(&x, p);
        let (swap, learned) = generator.model.swap(&x, 1 - p);
        // Judge what a viewer sees: the swap composited over the face with the mask convert
        // pastes this run with (the learned mask ∪ or ∩ the face ellipse), not the raw decoder
        // output.
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
            let mask = paste_mask(paste, learned, &hull);
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

        let judge_frames = if opts.judge.is_some() {
            opts.judge_frames
        } else {
            0
        };
        let occluder_kept = occluder_kept(&generator, faces, &set.crop, p, paste, &hull);
        let v = video::held_out_video(&generator.model, &det, set, person, judge_frames, &blend)?;
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
            occluder_kept: Some(occluder_kept),
            pose_error: v.pose_error,
            flicker_ratio: v.flicker,
            frames_for_pose: v.frames_for_pose,
        });
        videos.push(v);
    }
    let real = real_frames(&opts.datasets, opts.held_out, opts.judge_frames)?;
    let name = |p: Person| format!("{p}->{}", p.other());
    let softness = Person::BOTH
        .into_iter()
        .filter_map(|p| {
            let (swapped, original) = videos[p.index()].over_blur?;
            Some(Softness {
                name: name(p),
                swapped,
                original,
                crop_only: videos[p.index()].over_blur_crop_only,
                reconstructed: videos[p.index()].over_blur_reconstructed,
                target_real: real[p.other().index()].over_blur?,
            })
        })
        .collect();
    let identity = match &opts.judge {
        Some(cmd) => {
            let references: Vec<(String, Vec<RgbImage>)> = Person::BOTH
                .into_iter()
                .map(|p| (p.to_string(), real[p.index()].references.clone()))
                .collect();
            let directions: Vec<Direction<'_>> = Person::BOTH
                .into_iter()
                .map(|p| Direction {
                    name: name(p),
                    source: p.to_string(),
                    target: p.other().to_string(),
                    pairs: &videos[p.index()].judge_pairs,
                })
                .collect();
            Some(judge::judge(cmd, &references, &directions)?)
        }
        None => None,
    };
    Ok(EvalReport {
        run: opts.run.display().to_string(),
        preset: generator.config.preset.clone(),
        steps: generator.steps,
        identity,
        softness,
        people,
    })
}

/// The mask a swap is pasted with, per pixel, from the decoder's learned mask and the face
/// ellipse (`[1, 1, H, W]`), as `facekit::swap::blend_mask` makes it in the booth.
fn paste_mask(source: MaskSource, learned: &Tensor, hull: &Tensor) -> Tensor {
    match source {
        MaskSource::Learned => learned.shallow_clone(),
        MaskSource::Hull => hull.expand_as(learned),
        MaskSource::Union => learned.maximum(hull),
        MaskSource::Visible => learned.minimum(hull),
    }
}

/// Share of a synthetic occluder (a hand or object pasted over each held-out face, the same
/// ones for every run: a fixed seed) inside the face ellipse that the swap into the other
/// person leaves in the picture: 0 = painted over, 1 = kept. Our own measure, beside the hand
/// outlined in real footage (`scripts/hand_occlusion.py`).
fn occluder_kept(
    generator: &Generator,
    faces: &[RgbImage],
    crop: &shared_proto::FaceCropSpec,
    p: usize,
    paste: MaskSource,
    hull: &Tensor,
) -> f64 {
    use rand::SeedableRng;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(14);
    let ellipse = facekit::forensics::face_mask(crop.size, &crop.template_px());
    let (mut occluded, mut covers) = (Vec::new(), Vec::new());
    for (i, face) in faces.iter().enumerate() {
        let mut face = face.clone();
        let donor = &faces[(i + faces.len() / 2) % faces.len()];
        let cover = occluders::paste(&mut face, donor, &ellipse, &mut rng);
        covers.extend(cover.pixels().map(|c| c.0[0] as f32 / 255.0));
        occluded.push(face);
    }
    let device = generator.vars.device();
    let size = crop.size as i64;
    let cover = Tensor::from_slice(&covers)
        .reshape([faces.len() as i64, 1, size, size])
        .to_device(device);
    let (_, learned) = generator.model.swap(&to_tensor(&occluded, device), 1 - p);
    let mask = paste_mask(paste, &learned, hull);
    let hidden = &cover * hull;
    f64::try_from(
        ((mask.ones_like() - &mask) * &hidden).sum(Kind::Float)
            / hidden.sum(Kind::Float).clamp_min(1e-6),
    )
    .unwrap_or(f64::NAN)
}

/// Real frames of one person: references for the judge (training frames) and the over-blur
/// of their held-out faces.
struct RealFrames {
    references: Vec<RgbImage>,
    over_blur: Option<f64>,
}

/// `references` training frames per dataset, spread evenly, and the mean over-blur cue of its
/// held-out faces (the last `held_out` share of each source), at the fake detector's crop.
fn real_frames(
    datasets: &[PathBuf; 2],
    held_out: [f64; 2],
    references: usize,
) -> Result<Vec<RealFrames>> {
    let crop = model_spec::fake_detector::crop();
    let mut out = Vec::new();
    for (dataset, held_out) in datasets.iter().zip(held_out) {
        let mut early = Vec::new();
        let (mut blur, mut n) = (0.0f64, 0usize);
        let mut count = 0usize;
        accepted_frames(dataset, &crop, held_out, |_, face| {
            if face.late {
                blur += facekit::forensics::cues(&face.aligned.image, &face.aligned.landmarks)
                    .over_blur as f64;
                n += 1;
            } else {
                // Every 8th training frame, thinned to `references` below.
                if count.is_multiple_of(8) {
                    early.push(face.frame.clone());
                }
                count += 1;
            }
            Ok(true)
        })?;
        let step = early.len().div_ceil(references.max(1)).max(1);
        out.push(RealFrames {
            references: early.into_iter().step_by(step).take(references).collect(),
            over_blur: (n > 0).then(|| blur / n as f64),
        });
    }
    Ok(out)
}
