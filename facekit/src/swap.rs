//! One face swap inside a frame, whatever runs the network: host `convert` (tch) and the booth
//! (tract, [`OnnxSwapper`]) both call [`swap_into_frame`], so their blending cannot differ.

use image::{GrayImage, Luma, Rgb, RgbImage};
use shared_proto::{ChannelOrder, FaceCropSpec, Normalisation};

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::align::AlignedFace;
use crate::blend::{paste_back, BlendOptions, MaskSource};
use crate::visitor::{VisitorIdentity, VisitorPolicy};
use crate::{FacekitError, OnnxModel, Result};

/// Turns an aligned crop into the other person's face and a blend mask (both crop-sized).
pub trait FaceSwapper {
    fn swap(&self, crop: &RgbImage) -> Result<(RgbImage, GrayImage)>;
}

/// Swaps `aligned` with `swapper` and blends the result into `frame`. Returns the generated face
/// and mask (crop space) for callers that measure them. On error the frame is left untouched.
pub fn swap_into_frame(
    frame: &mut RgbImage,
    aligned: &AlignedFace,
    swapper: &dyn FaceSwapper,
    blend: &BlendOptions,
) -> Result<(RgbImage, GrayImage)> {
    let (face, learned) = swapper.swap(&aligned.image)?;
    let mask = blend_mask(&learned, aligned, blend.mask);
    paste_back(frame, &face, &mask, &aligned.image, &aligned.to_crop, blend);
    Ok((face, mask))
}

/// The mask `paste_back` uses: the decoder's, the face ellipse of the aligned landmarks, or
/// either of both ([`MaskSource`]).
pub fn blend_mask(learned: &GrayImage, aligned: &AlignedFace, source: MaskSource) -> GrayImage {
    if source == MaskSource::Learned {
        return learned.clone();
    }
    let hull = crate::forensics::face_mask(learned.width(), &aligned.landmarks);
    if source == MaskSource::Hull {
        return hull;
    }
    let pick = if source == MaskSource::Visible {
        u8::min
    } else {
        u8::max
    };
    GrayImage::from_fn(learned.width(), learned.height(), |x, y| {
        Luma([pick(
            learned.get_pixel(x, y).0[0],
            hull.get_pixel(x, y).0[0],
        )])
    })
}

/// NCHW floats of `crop`, a face aligned to `spec`, for the network `model` names: an error
/// when the crop is not the size the network takes.
pub(crate) fn crop_to_input(crop: &RgbImage, spec: &FaceCropSpec, model: &str) -> Result<Vec<f32>> {
    let s = spec.size;
    if crop.dimensions() != (s, s) {
        return Err(FacekitError::Inference(format!(
            "crop is {}x{}, {model} takes {s}x{s}",
            crop.width(),
            crop.height()
        )));
    }
    Ok(to_input(crop, &spec.normalisation))
}

/// NCHW floats of `crop` normalised as `n` says.
pub fn to_input(crop: &RgbImage, n: &Normalisation) -> Vec<f32> {
    let (w, h) = crop.dimensions();
    let mut out = Vec::with_capacity((3 * w * h) as usize);
    for c in 0..3 {
        let src = match n.order {
            ChannelOrder::Rgb => c,
            ChannelOrder::Bgr => 2 - c,
        };
        out.extend(
            crop.pixels()
                .map(|p| (p.0[src] as f32 - n.mean[c]) / n.std[c]),
        );
    }
    out
}

fn to_u8(v: f32) -> u8 {
    crate::to_u8(v * 255.0)
}

/// The bundle's swap model in tract: `face` in, `rgb` and `mask` (0..1) out. A graph that
/// shifts identities (`visitor_offset` in, `identity_offset` out) is fed the mean offset of the
/// visitor in front of it ([`crate::visitor`]), so strangers swap as well as the trained person.
pub struct OnnxSwapper {
    model: OnnxModel,
    crop: FaceCropSpec,
    /// Values in the `visitor_offset` input; 0 for a graph without one.
    offset_len: usize,
    /// `None`: always swap as if the trained source person were in front (zeros).
    visitor: Option<Mutex<VisitorIdentity>>,
    /// The clock of [`FaceSwapper::swap`], which is told no stream time.
    created: Instant,
}

impl OnnxSwapper {
    /// A swapper that follows its visitors with the default [`VisitorPolicy`].
    pub fn new(model: OnnxModel, crop: FaceCropSpec) -> Self {
        Self::with_visitors(model, crop, Some(VisitorPolicy::default()))
    }

    /// As [`OnnxSwapper::new`]; `None` turns the following of visitors off.
    pub fn with_visitors(
        model: OnnxModel,
        crop: FaceCropSpec,
        policy: Option<VisitorPolicy>,
    ) -> Self {
        let offset_len = model.input_shapes.get(1).map_or(0, |s| s.iter().product());
        Self {
            model,
            crop,
            offset_len,
            visitor: policy
                .filter(|_| offset_len > 0)
                .map(|p| Mutex::new(VisitorIdentity::new(p))),
            created: Instant::now(),
        }
    }

    /// Someone else is in front from now on (the booth's tracker moved to another face):
    /// their first face is measured afresh rather than moved by the last visitor's mean.
    pub fn new_visitor(&self) {
        if let Some(mut v) = self.visitor() {
            v.forget();
        }
    }

    /// Whether the model reports identities and the swapper follows its visitors.
    pub fn follows_visitors(&self) -> bool {
        self.visitor.is_some()
    }

    /// The swap as if the trained source person were in front, leaving the visitor alone
    /// (a self-test's synthetic face must not become part of the next visitor).
    pub fn swap_as_trained(&self, crop: &RgbImage) -> Result<(RgbImage, GrayImage)> {
        let outs = self.run(self.input(crop)?, None)?;
        self.images(&outs)
    }

    fn visitor(&self) -> Option<std::sync::MutexGuard<'_, VisitorIdentity>> {
        // A worker that panicked mid-update leaves at worst one face too many in the mean.
        self.visitor
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn input(&self, crop: &RgbImage) -> Result<Vec<f32>> {
        crop_to_input(crop, &self.crop, "the model")
    }

    /// Runs the model with the visitor's `offset`; `None`: as trained (zeros, or a graph
    /// without the input).
    fn run(&self, x: Vec<f32>, offset: Option<Vec<f32>>) -> Result<Vec<Vec<f32>>> {
        let outs = match offset {
            Some(offset) => self.model.run_inputs(vec![x, offset])?,
            None => self.model.run_with_zeros_after(x)?,
        };
        if outs.iter().flatten().any(|v| !v.is_finite()) {
            return Err(FacekitError::Inference(
                "swap model produced NaN or infinity".into(),
            ));
        }
        Ok(outs)
    }

    fn images(&self, outs: &[Vec<f32>]) -> Result<(RgbImage, GrayImage)> {
        let s = self.crop.size;
        let (Some(rgb), Some(mask)) = (outs.first(), outs.get(1)) else {
            return Err(FacekitError::Inference(format!(
                "swap model returned {} outputs, expected rgb and mask",
                outs.len()
            )));
        };
        let plane = (s * s) as usize;
        if rgb.len() < 3 * plane || mask.len() < plane {
            return Err(FacekitError::Inference(format!(
                "swap model returned {} rgb and {} mask values, a {s}x{s} crop needs {} and {plane}",
                rgb.len(),
                mask.len(),
                3 * plane
            )));
        }
        let face = RgbImage::from_fn(s, s, |x, y| {
            let i = (y * s + x) as usize;
            Rgb([0, 1, 2].map(|c| to_u8(rgb[c * plane + i])))
        });
        let mask = GrayImage::from_fn(s, s, |x, y| Luma([to_u8(mask[(y * s + x) as usize])]));
        Ok((face, mask))
    }
}

/// The `identity_offset` output of a swap run, when it has one of the expected length.
fn identity_offset(outs: &[Vec<f32>], len: usize) -> Option<&[f32]> {
    outs.get(2).map(Vec::as_slice).filter(|o| o.len() == len)
}

impl FaceSwapper for OnnxSwapper {
    /// Swaps a face seen now (wall time since the swapper was made); a booth that knows its
    /// frames' stream time calls [`OnnxSwapper::swap_seen_at`].
    fn swap(&self, crop: &RgbImage) -> Result<(RgbImage, GrayImage)> {
        self.swap_seen_at(crop, self.created.elapsed())
    }
}

impl OnnxSwapper {
    /// Swaps the face of the visitor in front at stream time `now` (see [`crate::visitor`]:
    /// the stream's clock, so a frame's swap does not depend on how fast it was processed).
    pub fn swap_seen_at(&self, crop: &RgbImage, now: Duration) -> Result<(RgbImage, GrayImage)> {
        if self.visitor.is_none() {
            return self.swap_as_trained(crop);
        }
        let x = self.input(crop)?;
        let known = self.visitor().and_then(|mut v| v.offset(now));
        let outs = match known {
            Some(offset) => {
                let outs = self.run(x, Some(offset))?;
                if let (Some(o), Some(mut v)) =
                    (identity_offset(&outs, self.offset_len), self.visitor())
                {
                    if v.observe(o, now) {
                        tracing::info!("a new visitor: their faces are unlike the last one's");
                    }
                }
                outs
            }
            None => {
                // A new visitor: measure them on this face first, so that not even their first
                // frame gets the trained person's shift (twice the model, once per visitor).
                let first = self.run(x.clone(), None)?;
                let offset = match (identity_offset(&first, self.offset_len), self.visitor()) {
                    (Some(o), Some(mut v)) => {
                        v.observe(o, now);
                        v.offset(now)
                    }
                    _ => None,
                };
                match offset {
                    Some(offset) => self.run(x, Some(offset))?,
                    None => first,
                }
            }
        };
        self.images(&outs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::Similarity;

    fn template_face() -> AlignedFace {
        let spec = FaceCropSpec::default();
        AlignedFace {
            image: RgbImage::new(64, 64),
            to_crop: Similarity {
                a: 1.0,
                b: 0.0,
                tx: 0.0,
                ty: 0.0,
            },
            landmarks: spec.template_px(),
            template_error: 0.0,
            outside_fraction: 0.0,
        }
    }

    #[test]
    fn the_union_mask_always_covers_the_face_even_when_the_learned_mask_collapses() {
        let aligned = template_face();
        let collapsed = GrayImage::from_pixel(64, 64, Luma([3]));
        let centre = |m: &GrayImage| m.get_pixel(32, 36).0[0];
        assert_eq!(
            blend_mask(&collapsed, &aligned, MaskSource::Learned),
            collapsed
        );
        let hull = blend_mask(&collapsed, &aligned, MaskSource::Hull);
        let union = blend_mask(&collapsed, &aligned, MaskSource::Union);
        assert_eq!(centre(&hull), 255);
        assert_eq!(centre(&union), 255);
        // Outside the face the learned value survives in the union, the hull is empty.
        assert_eq!(union.get_pixel(0, 0).0[0], 3);
        assert_eq!(hull.get_pixel(0, 0).0[0], 0);
    }

    #[test]
    fn the_visible_mask_keeps_what_the_learned_mask_leaves_out_inside_the_face_only() {
        let aligned = template_face();
        // A learned mask over everything but a "hand" across the chin (rows 44 and below).
        let learned = GrayImage::from_fn(64, 64, |_, y| Luma([if y >= 44 { 0 } else { 255 }]));
        let visible = blend_mask(&learned, &aligned, MaskSource::Visible);
        let hull = blend_mask(&learned, &aligned, MaskSource::Hull);
        assert_eq!(
            visible.get_pixel(32, 30).0[0],
            255,
            "the face above the hand"
        );
        assert_eq!(visible.get_pixel(32, 46).0[0], 0, "the hand stays");
        assert_eq!(hull.get_pixel(32, 46).0[0], 255);
        // Outside the face ellipse nothing is replaced, whatever the learned mask says.
        assert_eq!(visible.get_pixel(0, 0).0[0], 0);
        assert_eq!(learned.get_pixel(0, 0).0[0], 255);
    }
}
