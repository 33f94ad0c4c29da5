//! Detector training data from the extracted datasets, at the detector's crop geometry:
//! real faces re-cropped from their source frames, and four kinds of fake made from them —
//! self-blended images (SBI), graphics swaps (another person's real face warped onto this one,
//! no network), swaps by a trained run pasted back with the booth's blend, and the run's
//! same-person reconstructions pasted back the same way.

use std::path::{Path, PathBuf};

use facekit::align_face;
use facekit::blend::BlendOptions;
use facekit::forensics::graphic_swap;
use facekit::forensics::{self_blend, SbiParams};
use facekit::swap::swap_into_frame;
use image::RgbImage;
use rand::RngExt;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use shared_proto::FaceCropSpec;

use crate::convert::TchSwapper;
use crate::extract::dataset::{read_journal, METADATA};
use crate::train::run::Generator;

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
}

/// Share of each video's accepted frames, taken from its end, that calibrates the threshold.
pub const CALIBRATION_SHARE: f64 = 0.2;

#[derive(Debug, thiserror::Error)]
pub enum DetectorDataError {
    #[error("{0}: no metadata.jsonl; run `host-trainer extract` first")]
    NotADataset(String),
    #[error("{path}: {detail}")]
    Source { path: String, detail: String },
    #[error("{0}: no accepted face could be re-cropped from its source video")]
    Empty(String),
}

/// Samples of dataset `video` (index `video`). `generator` adds swaps into decoder `swap_to`
/// and reconstructions with decoder `self_decoder`.
pub fn samples(
    dataset: &Path,
    video: usize,
    crop: &FaceCropSpec,
    generator: Option<(&Generator, usize, usize)>,
    seed: u64,
) -> Result<Vec<Sample>, DetectorDataError> {
    let shown = dataset.display().to_string();
    let records = read_journal(&dataset.join(METADATA))
        .map_err(|e| DetectorDataError::NotADataset(format!("{shown} ({e})")))?;
    if records.is_empty() {
        return Err(DetectorDataError::NotADataset(shown));
    }
    // Accepted frames of each source video with their landmarks (frame pixels).
    type Frames = Vec<(u64, [[f32; 2]; 5])>;
    let mut wanted: std::collections::BTreeMap<String, Frames> = Default::default();
    for r in records.iter().filter(|r| r.accepted()) {
        if let Some(lm) = r.landmarks {
            wanted
                .entry(r.source.clone())
                .or_default()
                .push((r.frame, lm));
        }
    }
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed ^ video as u64);
    let blend = BlendOptions::default();
    let mut out = Vec::new();
    for (source, mut frames) in wanted {
        frames.sort_by_key(|f| f.0);
        let cut = frames
            [((frames.len() as f64 * (1.0 - CALIBRATION_SHARE)) as usize).min(frames.len() - 1)]
        .0;
        let path = PathBuf::from(&source);
        let err = |detail: String| DetectorDataError::Source {
            path: source.clone(),
            detail,
        };
        let mut reader = facekit::open_source(&path).map_err(|e| err(e.to_string()))?;
        let mut index = 0u64;
        while let Some(frame) = reader.next_frame().map_err(|e| err(e.to_string()))? {
            let i = index;
            index += 1;
            let Some(&(_, lm)) = frames.iter().find(|(f, _)| *f == i) else {
                continue;
            };
            let Some(real) = align_face(&frame, &lm, crop) else {
                continue;
            };
            let late = i >= cut;
            let landmarks = real.landmarks;
            let params = SbiParams::sample(&mut rng);
            let (sbi, _) = self_blend(&real.image, &landmarks, &params);
            out.push(Sample {
                crop: sbi,
                landmarks,
                kind: Kind::Sbi,
                video,
                late,
            });
            if let Some((g, swap_to, self_decoder)) = generator {
                for (to, kind) in [(swap_to, Kind::Swap), (self_decoder, Kind::Reconstruction)] {
                    let Some(aligned) = align_face(&frame, &lm, &g.crop) else {
                        continue;
                    };
                    let mut pasted = frame.clone();
                    let swapper = TchSwapper {
                        model: &g.model,
                        to,
                    };
                    if swap_into_frame(&mut pasted, &aligned, &swapper, &blend).is_ok() {
                        if let Some(fake) = align_face(&pasted, &lm, crop) {
                            out.push(Sample {
                                crop: fake.image,
                                landmarks,
                                kind,
                                video,
                                late,
                            });
                        }
                    }
                }
            }
            out.push(Sample {
                crop: real.image,
                landmarks,
                kind: Kind::Real,
                video,
                late,
            });
        }
    }
    if !out.iter().any(|s| s.kind == Kind::Real) {
        return Err(DetectorDataError::Empty(shown));
    }
    Ok(out)
}

/// One graphics swap (see [`Kind::Graphic`]) per real face of `targets`, each with a face drawn
/// at random from the real faces of `donors`.
pub fn graphic_swaps(targets: &[Sample], donors: &[Sample], seed: u64) -> Vec<Sample> {
    let donors: Vec<&Sample> = donors.iter().filter(|s| s.kind == Kind::Real).collect();
    if donors.is_empty() {
        return Vec::new();
    }
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let blend = BlendOptions::default();
    targets
        .iter()
        .filter(|s| s.kind == Kind::Real)
        .filter_map(|target| {
            let donor = donors[rng.random_range(0..donors.len())];
            let fake = graphic_swap(
                &target.crop,
                &target.landmarks,
                &donor.crop,
                &donor.landmarks,
                &blend,
            )?;
            Some(Sample {
                crop: fake,
                landmarks: target.landmarks,
                kind: Kind::Graphic,
                video: target.video,
                late: target.late,
            })
        })
        .collect()
}

/// A flat crop of `colour` at the detector's size with a little texture, for unit tests.
#[cfg(test)]
pub fn detector_test_crop(colour: [u8; 3]) -> RgbImage {
    let size = crate::model::detector::detector_crop().size;
    RgbImage::from_fn(size, size, |x, y| {
        let t = ((x * 3 + y * 5) % 7) as u8;
        image::Rgb(colour.map(|c| c.saturating_add(t)))
    })
}
