//! Deepfake forensics on aligned face crops: the face-region mask, self-blended images (SBI) as
//! training fakes, and the hand-made forensic cues (over-blur, edge colour, double edges, mouth
//! blur, flicker: what a person looks for in a face swap). Host training, `detect` and the booth
//! share it.
//!
//! Every cue is a ratio that grows when a face looks blended in:
//! - **over-blur**: sharpness around the face ÷ sharpness of the face (generated faces are soft);
//! - **edge colour**: colour step across the face boundary (skin tone of another person/light);
//! - **double edges**: edge energy in a band along the boundary ÷ inside the face (seams);
//! - **mouth blur**: sharpness of the rest of the face ÷ of the mouth (lip-sync models smear it);
//! - **flicker**: frame-to-frame change inside the face ÷ outside it (over a track).

use image::{imageops, GrayImage, Luma, Rgb, RgbImage};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::align::{sample_bilinear, warp_to_crop, Similarity};
use crate::blend::{erode_dilate, paste_back, BlendOptions};
use crate::to_u8;
pub use shared_proto::face_ellipse;

/// Binary face mask (255 inside the face ellipse) of a `size`×`size` crop.
pub fn face_mask(size: u32, landmarks: &[[f32; 2]; 5]) -> GrayImage {
    let (cx, cy, ax, ay) = face_ellipse(landmarks);
    GrayImage::from_fn(size, size, |x, y| {
        let (dx, dy) = ((x as f32 + 0.5 - cx) / ax, (y as f32 + 0.5 - cy) / ay);
        Luma([if dx * dx + dy * dy <= 1.0 { 255 } else { 0 }])
    })
}

/// How one self-blended image is made; drawn at random by [`SbiParams::sample`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SbiParams {
    /// Per-channel gain and offset of the "source" copy.
    pub gain: [f32; 3],
    pub offset: [f32; 3],
    /// Scale about the crop centre and shift (crop pixels) of the source copy.
    pub scale: f32,
    pub shift: [f32; 2],
    /// Gaussian blur (>0) of the source copy.
    pub blur: f32,
    /// Unsharp-mask amount (>0) of the source copy, applied after any blur: the copy's own
    /// resampling softens it, so without this every self-blend is softer inside than out and a
    /// detector learns "a soft face is fake" (a sharp pasted face then reads as real).
    pub sharpen: f32,
    /// Low-frequency wobble of the mask outline: amplitude (fraction of the radius) and phases.
    pub wobble: f32,
    pub phases: [f32; 3],
    /// Mask grown (negative) or shrunk (positive) by this many pixels, then feathered.
    pub erode: i32,
    pub feather: f32,
    /// Blend strength at the mask centre (1 = full replacement).
    pub strength: f32,
}

impl SbiParams {
    /// The ranges follow the SBI paper's spirit: small enough that the fake is the same person,
    /// large enough that a boundary exists.
    pub fn sample(rng: &mut impl Rng) -> Self {
        let mut u = |lo: f32, hi: f32| lo + (hi - lo) * rng.random::<f32>();
        // Half the copies softened, half sharpened: the copy's resampling already softens it,
        // so the inner face must often be sharper than the frame around it (the training-set
        // sharpness check in `eval_detector.md` measures the balance).
        let soften = u(0.0, 1.0) < 0.5;
        Self {
            gain: [u(0.9, 1.1), u(0.9, 1.1), u(0.9, 1.1)],
            offset: [u(-12.0, 12.0), u(-12.0, 12.0), u(-12.0, 12.0)],
            scale: u(0.95, 1.05),
            shift: [u(-2.0, 2.0), u(-2.0, 2.0)],
            blur: if soften { u(0.0, 0.8) } else { 0.0 },
            sharpen: if soften { 0.0 } else { u(0.5, 2.0) },
            wobble: u(0.0, 0.12),
            phases: [u(0.0, 6.3), u(0.0, 6.3), u(0.0, 6.3)],
            erode: (u(-2.0, 3.0)).round() as i32,
            feather: u(1.0, 4.0),
            strength: u(0.75, 1.0),
        }
    }
}

/// A self-blended image: `crop` blended with a slightly altered copy of itself under a soft face
/// mask. Returns the fake and the blend mask (0–255, how much of the copy each pixel holds).
pub fn self_blend(
    crop: &RgbImage,
    landmarks: &[[f32; 2]; 5],
    p: &SbiParams,
) -> (RgbImage, GrayImage) {
    let (w, h) = crop.dimensions();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    // The source copy: shifted/scaled, recoloured, softened.
    let moved = RgbImage::from_fn(w, h, |x, y| {
        let sx = (x as f32 - cx - p.shift[0]) / p.scale + cx;
        let sy = (y as f32 - cy - p.shift[1]) / p.scale + cy;
        let px = sample_bilinear(crop, sx, sy).0;
        Rgb(std::array::from_fn(|c| {
            to_u8(px[c] as f32 * p.gain[c] + p.offset[c])
        }))
    });
    let source = if p.blur > 0.05 {
        imageops::blur(&moved, p.blur)
    } else {
        moved
    };
    let source = if p.sharpen > 0.01 {
        sharpen(&source, p.sharpen)
    } else {
        source
    };
    // The mask: the face ellipse with a wobbly outline, eroded/dilated and feathered.
    let (ex, ey, ax, ay) = face_ellipse(landmarks);
    let hard = GrayImage::from_fn(w, h, |x, y| {
        let (dx, dy) = ((x as f32 + 0.5 - ex) / ax, (y as f32 + 0.5 - ey) / ay);
        // The outline stays within 1 ± wobble: only that ring needs the trigonometry.
        let d = dx.hypot(dy);
        if d <= 1.0 - p.wobble || d > 1.0 + p.wobble {
            return Luma([if d <= 1.0 { 255 } else { 0 }]);
        }
        let angle = dy.atan2(dx);
        let r = 1.0
            + p.wobble
                * ((2.0 * angle + p.phases[0]).sin()
                    + 0.6 * (3.0 * angle + p.phases[1]).sin()
                    + 0.4 * (5.0 * angle + p.phases[2]).sin())
                / 2.0;
        Luma([if d <= r { 255 } else { 0 }])
    });
    let mask = imageops::blur(&erode_dilate(&hard, p.erode), p.feather.max(0.1));
    let mask = GrayImage::from_fn(w, h, |x, y| {
        Luma([to_u8(mask.get_pixel(x, y).0[0] as f32 * p.strength)])
    });
    let fake = RgbImage::from_fn(w, h, |x, y| {
        let a = mask.get_pixel(x, y).0[0] as f32 / 255.0;
        let (s, t) = (source.get_pixel(x, y).0, crop.get_pixel(x, y).0);
        Rgb(std::array::from_fn(|c| {
            to_u8(s[c] as f32 * a + t[c] as f32 * (1.0 - a))
        }))
    });
    (fake, mask)
}

/// Unsharp mask: `img + amount · (img − blur(img))`, blur sigma 1 px.
pub fn sharpen(img: &RgbImage, amount: f32) -> RgbImage {
    let soft = imageops::blur(img, 1.0);
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let (a, b) = (img.get_pixel(x, y).0, soft.get_pixel(x, y).0);
        Rgb(std::array::from_fn(|c| {
            to_u8(a[c] as f32 + amount * (a[c] as f32 - b[c] as f32))
        }))
    })
}

/// FaceForensics++'s graphics-based FaceSwap on aligned crops: `donor`'s face warped from its
/// landmarks onto `target`'s, colour-matched and blended under the target's face mask with
/// the booth's blend. `None` when the landmarks admit no similarity.
pub fn graphic_swap(
    target: &RgbImage,
    target_landmarks: &[[f32; 2]; 5],
    donor: &RgbImage,
    donor_landmarks: &[[f32; 2]; 5],
    blend: &BlendOptions,
) -> Option<RgbImage> {
    let to_target = Similarity::fit(donor_landmarks, target_landmarks)?;
    let (face, _) = warp_to_crop(donor, &to_target, target.width());
    let mask = face_mask(target.width(), target_landmarks);
    let mut out = target.clone();
    paste_back(&mut out, &face, &mask, target, &Similarity::IDENTITY, blend);
    Some(out)
}

/// The cues of one aligned crop (see the module docs); all ≈1 on an untouched face.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Cues {
    pub over_blur: f32,
    pub edge_colour: f32,
    pub double_edges: f32,
    pub mouth_blur: f32,
    /// How the face's texture compares with its surround's, beyond over-blur.
    #[serde(default)]
    pub texture: Texture,
}

/// The face's fine texture against its surround's (each the surround's ÷ the face's, median
/// over the pixels of the face and of a ring around it; above 1 = the face is smoother). One
/// camera gives its real faces a typical balance of detail, edges and sensor noise between face
/// and surround; a face pasted from another camera or made by a network breaks it, sharper or
/// softer. No single value tells a fake from a real face across cameras: the booth's camera
/// check learns the balance of its own camera's faces (`shared_proto::CameraCheck`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Texture {
    /// Typical Laplacian magnitude (fine detail; over-blur is its variance, led by edges).
    pub detail: f32,
    /// Typical gradient magnitude (edges and shading).
    pub edges: f32,
    /// Sensor noise of the brightness (Immerkær's noise operator, robust to edges by its median).
    pub noise: f32,
    /// The same operator on the two colour channels: chroma noise and chroma subsampling.
    pub colour_noise: f32,
}

/// How many values [`Cues::cue_features`] gives.
pub const CUE_FEATURES: usize = 8;
/// How many values [`Cues::camera_features`] gives: the cues and the detector's score.
pub const CAMERA_FEATURES: usize = CUE_FEATURES + 1;

impl Cues {
    /// Exponential smoothing along a track: `keep` of `self`, the rest of `new`.
    pub fn smoothed(self, new: Cues, keep: f32) -> Cues {
        let mix = |old: f32, new: f32| keep * old + (1.0 - keep) * new;
        let (t, n) = (self.texture, new.texture);
        Cues {
            over_blur: mix(self.over_blur, new.over_blur),
            edge_colour: mix(self.edge_colour, new.edge_colour),
            double_edges: mix(self.double_edges, new.double_edges),
            mouth_blur: mix(self.mouth_blur, new.mouth_blur),
            texture: Texture {
                detail: mix(t.detail, n.detail),
                edges: mix(t.edges, n.edges),
                noise: mix(t.noise, n.noise),
                colour_noise: mix(t.colour_noise, n.colour_noise),
            },
        }
    }

    /// Every cue as a camera check compares it with its camera's real faces: the logarithms
    /// of over-blur, edge colour, double edges, mouth blur and the [`Texture`] ratios
    /// (logarithms, so sharper and softer weigh alike). All of them rather than a chosen few:
    /// which cue gives a fake away depends on the camera and the fake, and the check learns
    /// from the camera's own faces how each varies.
    pub fn cue_features(&self) -> [f32; CUE_FEATURES] {
        let t = self.texture;
        [
            self.over_blur,
            self.edge_colour,
            self.double_edges,
            self.mouth_blur,
            t.detail,
            t.edges,
            t.noise,
            t.colour_noise,
        ]
        .map(|v| v.max(1e-3).ln())
    }

    /// What the booth's camera check compares (`shared_proto::CameraCheck`): the
    /// [`cue_features`](Self::cue_features) and the logit of the detector's `score` of the
    /// same face, so the network counts as much as its scores of the camera's real faces
    /// prove steady.
    pub fn camera_features(&self, score: f32) -> [f32; CAMERA_FEATURES] {
        let mut out = [0.0; CAMERA_FEATURES];
        out[..CUE_FEATURES].copy_from_slice(&self.cue_features());
        let p = score.clamp(1e-4, 1.0 - 1e-4);
        out[CUE_FEATURES] = (p / (1.0 - p)).ln();
        out
    }
}

/// Laplacian response and gradient magnitude at every interior pixel of a `w`×`h` plane.
fn filters(grey: &[f32], w: usize, h: usize) -> (Vec<f32>, Vec<f32>) {
    let mut lap = vec![0f32; w * h];
    let mut grad = vec![0f32; w * h];
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let i = y * w + x;
            let (l, r, u, d) = (grey[i - 1], grey[i + 1], grey[i - w], grey[i + w]);
            lap[i] = l + r + u + d - 4.0 * grey[i];
            // Not `hypot`: its guard against overflow costs more than the rest of the loop.
            grad[i] = ((r - l) * (r - l) + (d - u) * (d - u)).sqrt() / 2.0;
        }
    }
    (lap, grad)
}

/// Count, sum and sum of squares of one region's values (f64: a crop has ~16 k pixels).
#[derive(Debug, Default, Clone, Copy)]
struct Moments {
    n: f64,
    sum: f64,
    squares: f64,
}

impl Moments {
    fn add(&mut self, v: f32) {
        let v = v as f64;
        self.n += 1.0;
        self.sum += v;
        self.squares += v * v;
    }

    fn mean(&self) -> f32 {
        (self.sum / self.n.max(1.0)) as f32
    }

    /// 0 for fewer than two values.
    fn variance(&self) -> f32 {
        if self.n < 2.0 {
            return 0.0;
        }
        ((self.squares / self.n - (self.sum / self.n).powi(2)).max(0.0)) as f32
    }
}

/// Half-width in pixels of the face-boundary band the edge-colour and double-edge cues read, on
/// each side of the face ellipse of a `size`-pixel crop.
pub fn boundary_band(size: u32) -> u32 {
    (size / 16).max(2)
}

/// The mouth box the mouth-blur cue reads: centre and half-width/half-height in crop pixels.
pub fn mouth_box(landmarks: &[[f32; 2]; 5]) -> ([f32; 2], f32, f32) {
    let (ml, mr) = (landmarks[3], landmarks[4]);
    let half_w = 0.6 * (mr[0] - ml[0]).abs().max(2.0);
    (
        [(ml[0] + mr[0]) / 2.0, (ml[1] + mr[1]) / 2.0],
        half_w,
        0.5 * half_w,
    )
}

/// Which regions of the crop a pixel lies in (bit flags), worked out once per face so that
/// every cue reads flat slices instead of testing masks and coordinates per pixel per cue.
const INTERIOR: u8 = 1;
const FACE_MASK: u8 = 2;
const INNER: u8 = 4;
const OUTER: u8 = 8;
const MOUTH: u8 = 16;

/// A predicate on region flags: all of `all` set, none of `none`.
fn region(all: u8, none: u8) -> impl Fn(u8) -> bool + Copy {
    move |r| r & all == all && r & none == 0
}

/// Cues of `crop` (aligned, with margin so the face boundary is inside) whose landmarks are
/// `landmarks` in crop pixels.
pub fn cues(crop: &RgbImage, landmarks: &[[f32; 2]; 5]) -> Cues {
    let (w, h) = crop.dimensions();
    let (wu, hu) = (w as usize, h as usize);
    let mask = face_mask(w, landmarks);
    let band = boundary_band(w) as i32;
    let inner = erode_dilate(&mask, band);
    let outer = erode_dilate(&mask, -band);
    // Mouth: a box around the mouth corners (against the rest of the inner face).
    let ([mcx, mcy], half_w, half_h) = mouth_box(landmarks);
    let flag = |m: &GrayImage, i: usize, f: u8| if m.as_raw()[i] > 127 { f } else { 0 };
    let mut regions = Vec::with_capacity(wu * hu);
    for y in 0..hu {
        let mouth_row = ((y as f32 + 0.5) - mcy).abs() <= half_h;
        for x in 0..wu {
            let i = y * wu + x;
            let interior = x > 0 && y > 0 && x + 1 < wu && y + 1 < hu;
            let mouth = mouth_row && ((x as f32 + 0.5) - mcx).abs() <= half_w;
            regions.push(
                (interior as u8 * INTERIOR)
                    | flag(&mask, i, FACE_MASK)
                    | flag(&inner, i, INNER)
                    | flag(&outer, i, OUTER)
                    | (mouth as u8 * MOUTH),
            );
        }
    }
    let face = region(INTERIOR | INNER, 0);
    let ring = region(INTERIOR | OUTER, FACE_MASK);
    let boundary = region(INTERIOR | OUTER, INNER);
    let (just_in, just_out) = (region(FACE_MASK, INNER), region(OUTER, FACE_MASK));
    let (cheeks, mouth) = (region(INTERIOR | INNER, MOUTH), region(INTERIOR | MOUTH, 0));

    // One plane per channel (Y, Cb, Cr), and the 8-bit brightness the filters read.
    let mut ycc: [Vec<f32>; 3] = std::array::from_fn(|_| Vec::with_capacity(wu * hu));
    for p in crop.pixels() {
        let [r, g, b] = p.0.map(|v| v as f32);
        ycc[0].push(0.299 * r + 0.587 * g + 0.114 * b);
        ycc[1].push(-0.1687 * r - 0.3313 * g + 0.5 * b);
        ycc[2].push(0.5 * r - 0.4187 * g - 0.0813 * b);
    }
    let grey: Vec<f32> = ycc[0].iter().map(|&y| to_u8(y) as f32).collect();
    let (lap, grad) = filters(&grey, wu, hu);

    // Every statistic in one pass over the pixels, each region's in pixel order.
    let [mut lap_ring, mut lap_face, mut lap_cheeks, mut lap_mouth] = [Moments::default(); 4];
    let [mut grad_boundary, mut grad_face] = [Moments::default(); 2];
    let [mut ycc_in, mut ycc_out, mut ycc_face] = [[Moments::default(); 3]; 3];
    // The texture values of the face's interior and of the ring outside it: |Laplacian|,
    // gradient, brightness noise, colour noise.
    let mut texture: [[Vec<f32>; 4]; 2] = Default::default();
    for (i, &r) in regions.iter().enumerate() {
        let (l, g) = (lap[i], grad[i]);
        if ring(r) {
            lap_ring.add(l);
        }
        if face(r) {
            lap_face.add(l);
            grad_face.add(g);
            for (m, ch) in ycc_face.iter_mut().zip(&ycc) {
                m.add(ch[i]);
            }
        }
        if cheeks(r) {
            lap_cheeks.add(l);
        }
        if mouth(r) {
            lap_mouth.add(l);
        }
        if boundary(r) {
            grad_boundary.add(g);
        }
        if just_in(r) {
            for (m, ch) in ycc_in.iter_mut().zip(&ycc) {
                m.add(ch[i]);
            }
        }
        if just_out(r) {
            for (m, ch) in ycc_out.iter_mut().zip(&ycc) {
                m.add(ch[i]);
            }
        }
        let side = if face(r) {
            0
        } else if ring(r) {
            1
        } else {
            continue;
        };
        let noise = |ch: &[f32]| noise_at(ch, wu, i);
        let values = [l.abs(), g, noise(&ycc[0]), noise(&ycc[1]) + noise(&ycc[2])];
        for (v, list) in values.into_iter().zip(&mut texture[side]) {
            list.push(v);
        }
    }
    let eps = 1e-3;
    let over_blur = (lap_ring.variance() + eps) / (lap_face.variance() + eps);
    let double_edges = (grad_boundary.mean() + eps) / (grad_face.mean() + eps);

    // Colour step across the boundary: mean YCbCr just inside vs just outside, per unit of the
    // face's own colour spread so a naturally contrasty scene does not read as a seam.
    let mut step = 0f32;
    let mut spread = 0f32;
    for c in 0..3 {
        step += (ycc_in[c].mean() - ycc_out[c].mean()).powi(2);
        spread += ycc_face[c].variance();
    }
    let edge_colour = (step.sqrt() + 1.0) / (spread.sqrt() + 1.0);

    // Mouth: the rest of the inner face against the box around the mouth corners.
    let mouth_blur = (lap_cheeks.variance() + eps) / (lap_mouth.variance() + eps);

    // Texture medians: the face's interior against the ring outside it. The offset keeps a
    // flat, noiseless region (a saturated or synthetic crop) from dividing by zero.
    let [mut face_values, mut ring_values] = texture;
    let mut ratio =
        |k: usize| (median(&mut ring_values[k]) + 0.5) / (median(&mut face_values[k]) + 0.5);
    Cues {
        over_blur,
        edge_colour,
        double_edges,
        mouth_blur,
        texture: Texture {
            detail: ratio(0),
            edges: ratio(1),
            noise: ratio(2),
            colour_noise: ratio(3),
        },
    }
}

/// |Immerkær's noise operator| at interior pixel `i` of a channel `w` pixels wide: the
/// difference of two Laplacians, which cancels smooth shading and leaves noise (and strong
/// edges, which a median over a region ignores).
fn noise_at(channel: &[f32], w: usize, i: usize) -> f32 {
    let at = |dx: usize, dy: usize| channel[i + dy * w + dx - w - 1];
    let corners = at(0, 0) + at(2, 0) + at(0, 2) + at(2, 2);
    let sides = at(1, 0) + at(0, 1) + at(2, 1) + at(1, 2);
    (corners - 2.0 * sides + 4.0 * at(1, 1)).abs()
}

/// The upper median of `values` (0 for none), reordering them.
fn median(values: &mut [f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let middle = values.len() / 2;
    *values.select_nth_unstable_by(middle, f32::total_cmp).1
}

/// Flicker of one step of a track: mean absolute change inside the face ÷ outside it, between
/// two consecutive aligned crops of the same face.
pub fn flicker(previous: &RgbImage, current: &RgbImage, landmarks: &[[f32; 2]; 5]) -> f32 {
    let mask = face_mask(current.width(), landmarks);
    let (mut inside, mut ni, mut outside, mut no) = (0f64, 0f64, 0f64, 0f64);
    for ((a, b), m) in previous.pixels().zip(current.pixels()).zip(mask.pixels()) {
        let d: f64 = (0..3).map(|c| a.0[c].abs_diff(b.0[c]) as f64).sum::<f64>() / 3.0;
        if m.0[0] > 127 {
            inside += d;
            ni += 1.0;
        } else {
            outside += d;
            no += 1.0;
        }
    }
    ((inside / ni.max(1.0) + 0.5) / (outside / no.max(1.0) + 0.5)) as f32
}
