//! `eval` on video: the held-out frames swapped in their scene, for pose keeping and flicker.

use std::collections::HashMap;
use std::path::PathBuf;

use facekit::blend::BlendOptions;
use facekit::swap::swap_into_frame;
use facekit::{align_face, FrameSource, RetinaFace, VideoReader};
use tch::{Kind, Tensor};

use crate::artefacts::dataset::FaceSet;
use crate::error::Result;
use crate::model::net::Autoencoder;
use crate::model::swapper::TchSwapper;
use crate::model::tensors::to_tensor;
use crate::person::Person;

/// Swaps the held-out video frames of `set` into the other person and measures how well the
/// head pose is kept and how much the swapped face flickers compared with the source.
pub fn pose_and_flicker(
    model: &Autoencoder,
    det: &RetinaFace,
    set: &FaceSet,
    p: Person,
) -> Result<(Option<f64>, Option<f64>, usize)> {
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
            let swapper = TchSwapper {
                model,
                to: p.other(),
            };
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
