//! `eval` on video: the held-out frames swapped in their scene, for pose keeping, flicker,
//! softness, and the frames the outside identity judge looks at.

use std::collections::HashMap;
use std::path::PathBuf;

use facekit::blend::{BlendOptions, MaskSource};
use facekit::forensics::cues;
use facekit::swap::{swap_into_frame, FaceSwapper};
use facekit::{align_face, FrameSource, RetinaFace, VideoReader};
use image::{GrayImage, RgbImage};
use tch::{Kind, Tensor};

use crate::artefacts::dataset::FaceSet;
use crate::error::Result;
use crate::model::net::Autoencoder;
use crate::model::swapper::TchSwapper;
use crate::model::tensors::to_tensor;
use crate::person::Person;

/// What the swapped held-out frames of one person showed.
#[derive(Default)]
pub struct HeldOutVideo {
    /// Mean landmark error of swapped vs source frames / inter-ocular distance.
    pub pose_error: Option<f64>,
    pub frames_for_pose: usize,
    /// Swapped-face frame-to-frame change over source-face change.
    pub flicker: Option<f64>,
    /// (original, swapped) frames for the identity judge, at most `judge_frames`, spread
    /// evenly over the held-out frames.
    pub judge_pairs: Vec<(RgbImage, RgbImage)>,
    /// Mean over-blur cue of the swapped faces and of the same faces unswapped.
    pub over_blur: Option<(f64, f64)>,
    /// Mean over-blur cue of the same faces pasted back through the model's crop unchanged: the
    /// softness the crop's resolution alone costs (what a perfect model would reach).
    pub over_blur_crop_only: Option<f64>,
    /// Mean over-blur cue of the same faces redrawn by their own person's decoder and pasted
    /// the same way: how soft the model draws a face it knows, apart from the swap.
    pub over_blur_reconstructed: Option<f64>,
}

/// The perfect model: gives the crop back unchanged, with an empty learned mask (so the blend
/// pastes over the face hull, as it does for a swap).
struct CropOnly;

impl FaceSwapper for CropOnly {
    fn swap(&self, crop: &RgbImage) -> facekit::Result<(RgbImage, GrayImage)> {
        Ok((crop.clone(), GrayImage::new(crop.width(), crop.height())))
    }
}

/// Swaps the held-out video frames of `set` (person `p`) into the other person.
pub fn held_out_video(
    model: &Autoencoder,
    det: &RetinaFace,
    set: &FaceSet,
    p: Person,
    judge_frames: usize,
    blend: &BlendOptions,
) -> Result<HeldOutVideo> {
    let mut wanted: HashMap<&str, Vec<u64>> = HashMap::new();
    for (source, frame) in &set.held_out_frames {
        wanted.entry(source.as_str()).or_default().push(*frame);
    }
    let keep_every = set
        .held_out_frames
        .len()
        .div_ceil(judge_frames.max(1))
        .max(1);
    let cue_crop = model_spec::fake_detector::crop();
    let device = model.encoder.device();
    let mut out = HeldOutVideo::default();
    let (mut pose_sum, mut pose_n) = (0.0f64, 0usize);
    let (mut swap_change, mut src_change, mut pairs) = (0.0f64, 0.0f64, 0usize);
    let (mut blur_swap, mut blur_orig, mut blur_n) = (0.0f64, 0.0f64, 0usize);
    let (mut blur_crop_only, mut blur_rec) = (0.0f64, 0.0f64);
    let mut seen = 0usize;
    for (source, frames) in wanted {
        let path = PathBuf::from(source);
        if !path.is_file() {
            tracing::warn!("{source}: source video not found from here; video measures skip it");
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
            let mut swapped = frame.clone();
            let swapper = TchSwapper::swap_into(model, p.other());
            let (face, _) = swap_into_frame(&mut swapped, &aligned, &swapper, blend)?;
            let rgb = to_tensor(&[face], device);
            if let Some(found) = det.detect(&swapped)?.into_iter().next() {
                let iod = (src.landmarks[1][0] - src.landmarks[0][0])
                    .hypot(src.landmarks[1][1] - src.landmarks[0][1])
                    .max(1.0);
                let err: f32 = src
                    .landmarks
                    .iter()
                    .zip(&found.landmarks)
                    .map(|(a, b)| (a[0] - b[0]).hypot(a[1] - b[1]))
                    .sum::<f32>()
                    / 5.0;
                pose_sum += (err / iod) as f64;
                pose_n += 1;
            }
            let mut crop_only = frame.clone();
            // Over the whole face ellipse, whatever mask the swap uses: the floor for any.
            swap_into_frame(
                &mut crop_only,
                &aligned,
                &CropOnly,
                &BlendOptions {
                    mask: MaskSource::Hull,
                    ..blend.clone()
                },
            )?;
            let mut redrawn = frame.clone();
            swap_into_frame(
                &mut redrawn,
                &aligned,
                &TchSwapper::reconstruct(model, p),
                blend,
            )?;
            if let (Some(s), Some(o), Some(c), Some(r)) = (
                align_face(&swapped, &src.landmarks, &cue_crop),
                align_face(&frame, &src.landmarks, &cue_crop),
                align_face(&crop_only, &src.landmarks, &cue_crop),
                align_face(&redrawn, &src.landmarks, &cue_crop),
            ) {
                blur_swap += cues(&s.image, &s.landmarks).over_blur as f64;
                blur_orig += cues(&o.image, &o.landmarks).over_blur as f64;
                blur_crop_only += cues(&c.image, &c.landmarks).over_blur as f64;
                blur_rec += cues(&r.image, &r.landmarks).over_blur as f64;
                blur_n += 1;
            }
            if let Some((pi, px, prgb)) = &prev {
                // Neighbouring held-out frames (a dataset may keep every 2nd or 3rd frame).
                if i - *pi <= 3 {
                    src_change += f64::try_from((&x - px).abs().mean(Kind::Float)).unwrap_or(0.0);
                    swap_change +=
                        f64::try_from((&rgb - prgb).abs().mean(Kind::Float)).unwrap_or(0.0);
                    pairs += 1;
                }
            }
            prev = Some((i, x, rgb));
            if seen.is_multiple_of(keep_every) && out.judge_pairs.len() < judge_frames {
                out.judge_pairs.push((frame, swapped));
            }
            seen += 1;
        }
    }
    out.pose_error = (pose_n > 0).then(|| pose_sum / pose_n as f64);
    out.frames_for_pose = pose_n;
    out.flicker = (pairs > 0 && src_change > 0.0).then(|| swap_change / src_change);
    out.over_blur = (blur_n > 0).then(|| (blur_swap / blur_n as f64, blur_orig / blur_n as f64));
    out.over_blur_crop_only = (blur_n > 0).then(|| blur_crop_only / blur_n as f64);
    out.over_blur_reconstructed = (blur_n > 0).then(|| blur_rec / blur_n as f64);
    Ok(out)
}
