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
use crate::artefacts::train_config::AugmentConfig;

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
