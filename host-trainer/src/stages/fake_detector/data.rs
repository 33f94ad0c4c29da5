//! Detector training data from the extracted datasets, at the detector's crop geometry:
//! real faces re-cropped from their source frames, and four kinds of fake made from them —
//! self-blended images (SBI), graphics swaps (another person's real face warped onto this one,
//! no network), swaps by a trained run pasted back with the booth's blend, and the run's
//! same-person reconstructions pasted back the same way.

use std::path::Path;

use facekit::align_face;
use facekit::blend::BlendOptions;
use facekit::forensics::{self, graphic_swap, sharpen, Cues};
use facekit::forensics::{self_blend, SbiParams};
use facekit::swap::swap_into_frame;
use image::RgbImage;
use rand::RngExt;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use shared_proto::FaceCropSpec;

use crate::artefacts::dataset::{accepted_frames, FaceAt};
use crate::artefacts::run::Generator;
use crate::error::{Error, Result};
use crate::model::swapper::TchSwapper;
use crate::person::Person;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    Real,
    /// Self-blended image.
    Sbi,
    /// Face swapped into the other person by the run's generator, pasted back.
    Swap,
    /// The run's reconstruction of the same person, pasted back.
    Reconstruction,
    /// Another person's real face warped onto this face's landmarks, colour-matched and
    /// blended with the booth's blend: FaceForensics++'s graphics-based FaceSwap, a generator
    /// with no network that no cell of the report trains on.
    Graphic,
}

impl Kind {
    pub fn is_fake(self) -> bool {
        self != Kind::Real
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Real => "real",
            Kind::Sbi => "SBI",
            Kind::Swap => "swap",
            Kind::Reconstruction => "reconstruction",
            Kind::Graphic => "graphics swap",
        }
    }

    /// Every kind of fake, in report order.
    pub const FAKES: [Kind; 4] = [Kind::Sbi, Kind::Graphic, Kind::Swap, Kind::Reconstruction];
}

/// One detector-geometry crop with what it is and whose video it came from.
#[derive(Clone)]
pub struct Sample {
    pub crop: RgbImage,
    /// The five landmarks in crop pixels (where a fresh self-blend puts its mask).
    pub landmarks: [[f32; 2]; 5],
    pub kind: Kind,
    /// Index of the dataset (= person = video) it was made from: the split key.
    pub video: usize,
    /// From the last block of its video's accepted frames (the last [`CALIBRATION_SHARE`]):
    /// kept out of training to calibrate the threshold.
    pub late: bool,
    /// Where in its dataset the face is: consecutive frames of a source form the clips of
    /// clip-level AUC, and a stored fake is paired with the real face it was made from.
    pub at: FaceAt,
    /// The video whose person's face this fake shows when it is not the video's own (the donor
    /// of a graphics swap, the other person of a swap): a detector tested on that person must
    /// not have trained on it as a fake.
    pub donor: Option<usize>,
}

impl Sample {
    /// The clip (run of [`CLIP_FRAMES`] frames of one source; a photo is a clip of its own)
    /// this sample belongs to.
    pub fn clip(&self) -> (usize, usize, u64) {
        (self.video, self.at.source, self.at.frame / CLIP_FRAMES)
    }
}

/// The hand-made cues of each sample (`facekit::forensics::cues`), computed once for whatever
/// reads them (the blur check, the camera check, the report's cue table).
pub fn cues(samples: &[&Sample]) -> Vec<Cues> {
    samples
        .par_iter()
        .map(|s| forensics::cues(&s.crop, &s.landmarks))
        .collect()
}

/// Source frames per clip for clip-level scores (1.3 s at 25 fps), as SBI and DeepfakeBench
/// average frame scores over a video's frames.
pub const CLIP_FRAMES: u64 = 32;

/// Share of each video's accepted frames, taken from its end, that calibrates the threshold.
pub const CALIBRATION_SHARE: f64 = 0.2;

/// Samples of the dataset at `dataset` (index `video`). With `generator`, the dataset's person
/// (`Person`) is also swapped into the other person (whose video is `other_video`) and
/// reconstructed by their own decoder.
pub fn samples(
    dataset: &Path,
    video: usize,
    crop: &FaceCropSpec,
    generator: Option<(&Generator, Person)>,
    other_video: usize,
    seed: u64,
) -> Result<Vec<Sample>> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed ^ video as u64);
    let blend = BlendOptions::default();
    let mut out = Vec::new();
    accepted_frames(dataset, crop, CALIBRATION_SHARE, |_, face| {
        let (late, landmarks, at) = (face.late, face.aligned.landmarks, face.at);
        let params = SbiParams::sample(&mut rng);
        let (sbi, _) = self_blend(&face.aligned.image, &landmarks, &params);
        out.push(Sample {
            crop: sbi,
            landmarks,
            kind: Kind::Sbi,
            video,
            late,
            at,
            donor: None,
        });
        let generated = generator.and_then(|(g, person)| {
            let aligned = align_face(face.frame, &face.landmarks, &g.crop)?;
            Some((g, person, aligned))
        });
        if let Some((g, person, aligned)) = generated {
            for (kind, swapper) in [
                (Kind::Swap, TchSwapper::swap_into(&g.model, person.other())),
                (
                    Kind::Reconstruction,
                    TchSwapper::reconstruct(&g.model, person),
                ),
            ] {
                let mut pasted = face.frame.clone();
                if swap_into_frame(&mut pasted, &aligned, &swapper, &blend).is_ok() {
                    if let Some(fake) = align_face(&pasted, &face.landmarks, crop) {
                        out.push(Sample {
                            crop: fake.image,
                            landmarks,
                            kind,
                            video,
                            late,
                            at,
                            donor: (kind == Kind::Swap).then_some(other_video),
                        });
                    }
                }
            }
        }
        out.push(Sample {
            crop: face.aligned.image,
            landmarks,
            kind: Kind::Real,
            video,
            late,
            at,
            donor: None,
        });
        Ok(true)
    })?;
    if !out.iter().any(|s| s.kind == Kind::Real) {
        return Err(Error::NoRecrops(dataset.to_path_buf()));
    }
    Ok(out)
}

/// One graphics swap (see [`Kind::Graphic`]) per real face of `targets`, each with a face drawn
/// at random from the real faces of `donors` that come from another video. Half the donors
/// are sharpened first: a pasted face is then as often sharper as softer than its frame, so
/// sharpness alone cannot tell these fakes (see [`facekit::forensics::SbiParams::sharpen`]).
pub fn graphic_swaps(targets: &[Sample], donors: &[&Sample], seed: u64) -> Vec<Sample> {
    let donors: Vec<&Sample> = donors
        .iter()
        .copied()
        .filter(|s| s.kind == Kind::Real)
        .collect();
    // The donor pool of each target video, built once per video rather than once per face.
    let mut pools: std::collections::HashMap<usize, Vec<&Sample>> = Default::default();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    // The donor's sharpness is drawn below (half sharpened, half not); the paste adds none.
    let blend = BlendOptions {
        sharpen: 0.0,
        ..Default::default()
    };
    targets
        .iter()
        .filter(|s| s.kind == Kind::Real)
        .filter_map(|target| {
            let others = pools.entry(target.video).or_insert_with(|| {
                donors
                    .iter()
                    .copied()
                    .filter(|d| d.video != target.video)
                    .collect()
            });
            if others.is_empty() {
                return None;
            }
            let donor = others[rng.random_range(0..others.len())];
            let sharpened;
            let donor_crop = if rng.random::<bool>() {
                sharpened = sharpen(&donor.crop, rng.random_range(0.3..1.5));
                &sharpened
            } else {
                &donor.crop
            };
            let fake = graphic_swap(
                &target.crop,
                &target.landmarks,
                donor_crop,
                &donor.landmarks,
                &blend,
            )?;
            Some(Sample {
                crop: fake,
                landmarks: target.landmarks,
                kind: Kind::Graphic,
                video: target.video,
                late: target.late,
                at: target.at,
                donor: Some(donor.video),
            })
        })
        .collect()
}

/// A flat crop of `colour` at the detector's size with a little texture, for unit tests.
#[cfg(test)]
pub fn detector_test_crop(colour: [u8; 3]) -> RgbImage {
    let size = model_spec::fake_detector::crop().size;
    RgbImage::from_fn(size, size, |x, y| {
        let t = ((x * 3 + y * 5) % 7) as u8;
        image::Rgb(colour.map(|c| c.saturating_add(t)))
    })
}
