//! The background loader: augmented batches of both people made ahead on the rayon pool, so
//! the trainer never waits for data.

use std::borrow::Cow;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use facekit::blend::colour_transfer;
use image::{GrayImage, RgbImage};
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;

use super::augment::Augmentation;
use super::occluders;
use crate::artefacts::train_config::AugmentConfig;

/// One augmented batch per person.
pub struct HostBatch {
    pub size: u32,
    pub count: usize,
    pub people: [PersonBatch; 2],
}

/// One person's faces, flat NCHW f32 in 0..1.
pub struct PersonBatch {
    /// Warped inputs.
    pub input: Vec<f32>,
    pub target: Vec<f32>,
    /// How much of each target pixel shows the face (1 − an occluder's coverage), one channel;
    /// empty when the config pastes no occluders.
    pub visible: Vec<f32>,
}

fn push_chw(img: &RgbImage, out: &mut Vec<f32>) {
    for c in 0..3 {
        out.extend(img.pixels().map(|p| p.0[c] as f32 / 255.0));
    }
}

/// Spawns the loader: batches are produced ahead on the rayon pool, `depth` at most.
/// `face_mask` (crop-sized, 255 on the face) is where colour statistics and an occluder's skin
/// colour are measured.
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
                let samples: Vec<(RgbImage, RgbImage, Option<GrayImage>)> = picks
                    .par_iter()
                    .map(|&(i, s)| {
                        let mut r = rand::rngs::SmallRng::seed_from_u64(s);
                        let mut face = if r.random::<f32>() < augment.colour_transfer {
                            let look = &other[r.random_range(0..other.len())];
                            Cow::Owned(colour_transfer(&set[i], look, &face_mask))
                        } else {
                            Cow::Borrowed(&set[i])
                        };
                        // The occluder goes on before the augmentation, so input and target
                        // show it in the same place.
                        let cover = (r.random::<f32>() < augment.occluders).then(|| {
                            let pool = if r.random::<bool>() { set } else { other };
                            let donor = &pool[r.random_range(0..pool.len())];
                            occluders::paste(face.to_mut(), donor, &face_mask, &mut r)
                        });
                        let aug = Augmentation::sample(&augment, face.width(), &mut r);
                        let (input, target) = aug.apply(&face);
                        (input, target, cover.map(|c| aug.target_mask(&c)))
                    })
                    .collect();
                let mut out = PersonBatch {
                    input: Vec::new(),
                    target: Vec::new(),
                    visible: Vec::new(),
                };
                for (input, target, cover) in &samples {
                    push_chw(input, &mut out.input);
                    push_chw(target, &mut out.target);
                    if augment.occluders > 0.0 {
                        let n = (target.width() * target.height()) as usize;
                        match cover {
                            Some(c) => out
                                .visible
                                .extend(c.pixels().map(|p| 1.0 - p.0[0] as f32 / 255.0)),
                            None => out.visible.extend(std::iter::repeat_n(1.0, n)),
                        }
                    }
                }
                out
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
