//! Training data: a person's accepted crops in memory, a held-out split by contiguous blocks of
//! each source (neighbouring video frames are near-copies, so a random split would leak), and a
//! background loader that augments batches in parallel so the trainer never waits.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use facekit::blend::colour_transfer;
use image::{GrayImage, RgbImage};
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;

use super::augment::{AugmentConfig, Augmentation};
use crate::extract::dataset::{read_journal, Consent, CONSENT, CROP, METADATA};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{0}: not a dataset (no metadata.jsonl); run `host-trainer extract` first")]
    NotADataset(String),
    #[error("{0}: no accepted faces; extract more video of this person")]
    Empty(String),
    #[error("{path}: {detail}")]
    Bad { path: String, detail: String },
    #[error(
        "crop sizes differ: {a} is {sa} px, {b} is {sb} px; extract both with the same --size"
    )]
    Mismatch {
        a: String,
        sa: u32,
        b: String,
        sb: u32,
    },
}

/// One person's faces, split into training and held-out crops.
pub struct FaceSet {
    pub root: PathBuf,
    pub person: String,
    pub size: u32,
    pub crop: shared_proto::FaceCropSpec,
    pub consent: Consent,
    pub train: Vec<RgbImage>,
    pub held_out: Vec<RgbImage>,
    /// (source, frame index) of every held-out crop, in order: contiguous blocks per source.
    pub held_out_frames: Vec<(String, u64)>,
}

impl FaceSet {
    /// Loads `root`, holding out the last `held_out` fraction of every source's frames.
    pub fn load(root: &Path, held_out: f32) -> Result<Self, DataError> {
        let shown = root.display().to_string();
        if !root.join(METADATA).is_file() {
            return Err(DataError::NotADataset(shown));
        }
        let bad = |detail: String| DataError::Bad {
            path: shown.clone(),
            detail,
        };
        let records = read_journal(&root.join(METADATA)).map_err(|e| bad(e.to_string()))?;
        let consent_text = std::fs::read_to_string(root.join(CONSENT)).map_err(|_| {
            bad("no consent.toml; a dataset without consent cannot be trained on".into())
        })?;
        let consent: Consent =
            toml::from_str(&consent_text).map_err(|e| bad(format!("consent.toml: {e}")))?;
        let crop_text = std::fs::read_to_string(root.join(CROP))
            .map_err(|_| bad("no crop.toml; re-run `host-trainer extract` on it".into()))?;
        let crop: shared_proto::FaceCropSpec =
            toml::from_str(&crop_text).map_err(|e| bad(format!("crop.toml: {e}")))?;
        let mut by_source: BTreeMap<&str, Vec<(u64, &str)>> = BTreeMap::new();
        for r in records.iter().filter(|r| r.accepted()) {
            if let Some(f) = &r.file {
                by_source
                    .entry(r.source.as_str())
                    .or_default()
                    .push((r.frame, f.as_str()));
            }
        }
        let person = records
            .first()
            .map(|r| r.person.clone())
            .unwrap_or_default();
        let (mut train_files, mut held_files) = (Vec::new(), Vec::new());
        let mut held_out_frames = Vec::new();
        for (source, frames) in by_source.iter_mut() {
            frames.sort();
            let keep = frames.len()
                - ((frames.len() as f32 * held_out).round() as usize)
                    .min(frames.len().saturating_sub(1));
            train_files.extend(frames[..keep].iter().map(|(_, f)| root.join(f)));
            held_files.extend(frames[keep..].iter().map(|(_, f)| root.join(f)));
            held_out_frames.extend(frames[keep..].iter().map(|(i, _)| (source.to_string(), *i)));
        }
        if train_files.is_empty() {
            return Err(DataError::Empty(shown));
        }
        let read = |files: Vec<PathBuf>| -> Result<Vec<RgbImage>, DataError> {
            files
                .par_iter()
                .map(|p| {
                    image::open(p)
                        .map(|i| i.into_rgb8())
                        .map_err(|e| DataError::Bad {
                            path: p.display().to_string(),
                            detail: e.to_string(),
                        })
                })
                .collect()
        };
        let train = read(train_files)?;
        let held_out = read(held_files)?;
        let size = train[0].width();
        if let Some(odd) = train
            .iter()
            .chain(&held_out)
            .find(|i| i.width() != size || i.height() != size)
        {
            return Err(bad(format!(
                "mixed crop sizes ({size} and {}x{})",
                odd.width(),
                odd.height()
            )));
        }
        if crop.size != size {
            return Err(bad(format!(
                "crop.toml says {} px but the faces are {size} px",
                crop.size
            )));
        }
        Ok(Self {
            root: root.to_path_buf(),
            person,
            size,
            crop,
            consent,
            train,
            held_out,
            held_out_frames,
        })
    }
}

/// Checks that two people's sets can be trained together.
pub fn check_pair(a: &FaceSet, b: &FaceSet) -> Result<(), DataError> {
    if a.size != b.size {
        return Err(DataError::Mismatch {
            a: a.root.display().to_string(),
            sa: a.size,
            b: b.root.display().to_string(),
            sb: b.size,
        });
    }
    if a.crop != b.crop {
        return Err(DataError::Bad {
            path: b.root.display().to_string(),
            detail: format!(
                "crop margin {} differs from {}'s {}; extract both with the same --margin",
                b.crop.margin,
                a.root.display(),
                a.crop.margin
            ),
        });
    }
    Ok(())
}

/// One augmented batch per person: (warped inputs, targets), flat CHW f32 in 0..1.
pub struct HostBatch {
    pub size: u32,
    pub count: usize,
    pub people: [(Vec<f32>, Vec<f32>); 2],
}

fn push_chw(img: &RgbImage, out: &mut Vec<f32>) {
    for c in 0..3 {
        out.extend(img.pixels().map(|p| p.0[c] as f32 / 255.0));
    }
}

/// Spawns the loader: batches are produced ahead on the rayon pool, `depth` at most.
/// `face_mask` (crop-sized, 255 on the face) is where colour statistics are measured.
pub fn spawn_loader(
    sets: [Arc<Vec<RgbImage>>; 2],
    batch: usize,
    augment: AugmentConfig,
    seed: u64,
    depth: usize,
    face_mask: GrayImage,
) -> Receiver<HostBatch> {
    let (tx, rx) = sync_channel(depth);
    std::thread::spawn(move || {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        loop {
            let people = [0, 1].map(|p| {
                let (set, other) = (&sets[p], &sets[1 - p]);
                let picks: Vec<(usize, u64)> = (0..batch)
                    .map(|_| (rng.random_range(0..set.len()), rng.random::<u64>()))
                    .collect();
                let pairs: Vec<(RgbImage, RgbImage)> = picks
                    .par_iter()
                    .map(|&(i, s)| {
                        let mut r = rand::rngs::SmallRng::seed_from_u64(s);
                        let face = if r.random::<f32>() < augment.colour_transfer {
                            let look = &other[r.random_range(0..other.len())];
                            Cow::Owned(colour_transfer(&set[i], look, &face_mask))
                        } else {
                            Cow::Borrowed(&set[i])
                        };
                        Augmentation::sample(&augment, face.width(), &mut r).apply(&face)
                    })
                    .collect();
                let (mut input, mut target) = (Vec::new(), Vec::new());
                for (i, t) in &pairs {
                    push_chw(i, &mut input);
                    push_chw(t, &mut target);
                }
                (input, target)
            });
            let size = sets[0][0].width();
            if tx
                .send(HostBatch {
                    size,
                    count: batch,
                    people,
                })
                .is_err()
            {
                return; // trainer finished
            }
        }
    });
    rx
}
