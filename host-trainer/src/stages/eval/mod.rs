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

mod classifier;
mod video;

use std::path::Path;

use facekit::{FaceDetectorConfig, RetinaFace};
use image::RgbImage;
use tch::{Device, Kind, Tensor};

use crate::artefacts::dataset::FaceSet;
use crate::artefacts::run::{EvalReport, Generator, PersonEval};
use crate::error::Result;
use crate::model::losses::ssim_loss;
use crate::model::tensors::{from_tensor, to_tensor};
use crate::person::Person;
use classifier::Classifier;

fn psnr(a: &Tensor, b: &Tensor) -> f64 {
    let mse = f64::try_from((a - b).square().mean(Kind::Float)).unwrap_or(f64::NAN);
    10.0 * (1.0 / mse.max(1e-12)).log10()
}

pub fn evaluate(
    run: &Path,
    datasets: [&Path; 2],
    face_detector: &Path,
    device: Device,
) -> Result<EvalReport> {
    let generator = Generator::load(run, device)?;
    let sets = [
        FaceSet::load(datasets[0], 0.1)?,
        FaceSet::load(datasets[1], 0.1)?,
    ];
    let classifier = Classifier::new(&sets);
    let det = RetinaFace::load(face_detector, FaceDetectorConfig::default())?;
    let _guard = tch::no_grad_guard();

    let mut people = Vec::new();
    for (person, set) in Person::BOTH.into_iter().zip(&sets) {
        let p = person.index();
        let faces = set.unseen();
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
            video::pose_and_flicker(&generator.model, &det, set, person)?;
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
