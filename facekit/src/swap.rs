//! One face swap inside a frame, whatever runs the network: host `convert` (tch) and the booth
//! (tract, [`OnnxSwapper`]) both call [`swap_into_frame`], so their blending cannot differ.

use image::{GrayImage, Luma, Rgb, RgbImage};
use shared_proto::{ChannelOrder, FaceCropSpec, Normalisation};

use crate::align::AlignedFace;
use crate::blend::{paste_back, BlendOptions, MaskSource};
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

/// The bundle's swap model in tract: `face` in, `rgb` and `mask` (0..1) out.
pub struct OnnxSwapper {
    model: OnnxModel,
    crop: FaceCropSpec,
}

impl OnnxSwapper {
    pub fn new(model: OnnxModel, crop: FaceCropSpec) -> Self {
        Self { model, crop }
    }
}

impl FaceSwapper for OnnxSwapper {
    fn swap(&self, crop: &RgbImage) -> Result<(RgbImage, GrayImage)> {
        let s = self.crop.size;
        if crop.dimensions() != (s, s) {
            return Err(FacekitError::Inference(format!(
                "crop is {}x{}, the model takes {s}x{s}",
                crop.width(),
                crop.height()
            )));
        }
        let outs = self.model.run(to_input(crop, &self.crop.normalisation))?;
        let [rgb, mask] = &outs[..] else {
            return Err(FacekitError::Inference(format!(
                "swap model returned {} outputs, expected rgb and mask",
                outs.len()
            )));
        };
        if rgb.iter().chain(mask).any(|v| !v.is_finite()) {
            return Err(FacekitError::Inference(
                "swap model produced NaN or infinity".into(),
            ));
        }
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
