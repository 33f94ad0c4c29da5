//! Pasting a generated face back into the frame: the mask controls classic face-swap tools offer
//! (erode/dilate and feather), colour transfer so the new face takes the scene's light, the
//! merger's sharpening (a small crop drawn large is softer than the frame around it), and the
//! inverse warp of the alignment. Host `convert` and the booth share this code.

use image::{GrayImage, ImageBuffer, Luma, Rgb, RgbImage};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::align::Similarity;

/// Which mask decides where the generated face replaces the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskSource {
    /// The decoder's learned mask alone. It can collapse towards zero on the other person's
    /// faces (the demo's B→A decoder: mean 0.008), leaving the frame unswapped.
    Learned,
    /// The face ellipse of the crop template (`forensics::face_mask`): always the whole face.
    Hull,
    /// The larger of both at each pixel: the face is always replaced, the learned mask can
    /// extend it (hair line, beard).
    Union,
    /// The smaller of both: the face ellipse less what the learned mask leaves out, so a hand
    /// or a microphone in front of the face stays in the picture. Needs a model trained with
    /// occluders (`augment.occluders`); without them the learned mask covers the whole face
    /// and this is the ellipse.
    Visible,
}

/// A mask source name that is none of `learned`, `hull`, `union`, `visible`.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0:?}: use learned, hull, union or visible")]
pub struct BadMaskSource(String);

impl std::str::FromStr for MaskSource {
    type Err = BadMaskSource;
    fn from_str(s: &str) -> Result<Self, BadMaskSource> {
        match s {
            "learned" => Ok(Self::Learned),
            "hull" => Ok(Self::Hull),
            "union" => Ok(Self::Union),
            "visible" => Ok(Self::Visible),
            other => Err(BadMaskSource(other.to_owned())),
        }
    }
}

/// Mask and colour controls (crop pixels).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlendOptions {
    pub mask: MaskSource,
    /// Shrink (positive) or grow (negative) the mask by this many crop pixels.
    pub erode: i32,
    /// Gaussian feather of the mask edge (sigma, crop pixels).
    pub feather: f32,
    /// Match the generated face's per-channel mean and spread (in YCbCr) to the original's.
    pub colour_transfer: bool,
    /// Unsharp-mask amount on the generated face's brightness (0 = off; [`sharpen`]), the
    /// blur's sigma [`SHARPEN_SIGMA`] crop pixels. It lifts the edges a small crop loses when
    /// the booth draws it over a larger face; it cannot add detail the decoder did not draw.
    /// 1.5 by default with the bicubic paste: the demo's swaps then read as crisp as with 2 and
    /// the bilinear paste before it (0.63 / 0.55 of the faces they replace, 0.69 / 0.59 before),
    /// nearer their target by dlib's distances (README, "Paste sharpening").
    pub sharpen: f32,
}

/// Sigma (crop pixels) of the blur the unsharp mask subtracts: the finest detail a 64-px crop
/// holds, which the warp into a larger face softens most.
pub const SHARPEN_SIGMA: f32 = 1.0;

impl Default for BlendOptions {
    fn default() -> Self {
        Self {
            mask: MaskSource::Union,
            erode: 2,
            feather: 2.0,
            colour_transfer: true,
            sharpen: 1.5,
        }
    }
}

/// Min (erode) or max (dilate) filter with a square window of radius `|r|`. Outside the crop
/// counts as background (0), so erosion pulls away from the border.
pub fn erode_dilate(mask: &GrayImage, r: i32) -> GrayImage {
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    if r == 0 || w == 0 || h == 0 {
        return mask.clone();
    }
    let k = r.unsigned_abs() as usize;
    let out = if r > 0 {
        window_filter::<true>(mask.as_raw(), w, h, k)
    } else {
        window_filter::<false>(mask.as_raw(), w, h, k)
    };
    GrayImage::from_raw(w as u32, h as u32, out).expect("w × h bytes")
}

/// [`erode_dilate`]'s min (`MIN`) or max filter of radius `k` over a `w`×`h` plane: rows, then
/// columns (gathered into a line). Each line by van Herk / Gil-Werman: padded with background
/// (so a window reaching past the edge takes it in), cut into blocks one window long, running
/// extremes from each block's start and from its end; a window spans the end of one block and
/// the start of the next, so it costs one comparison whatever the radius (the booth runs this
/// twice at radius 8 on every scored face).
fn window_filter<const MIN: bool>(plane: &[u8], w: usize, h: usize, k: usize) -> Vec<u8> {
    let op = |a: u8, b: u8| if MIN { a.min(b) } else { a.max(b) };
    let window = 2 * k + 1;
    let longest = w.max(h) + 2 * k;
    let (mut padded, mut from_start, mut from_end) =
        (vec![0u8; longest], vec![0u8; longest], vec![0u8; longest]);
    let mut filter_line = |line: &[u8], out: &mut [u8]| {
        let n = line.len() + 2 * k;
        let padded = &mut padded[..n];
        padded[k..k + line.len()].copy_from_slice(line);
        padded[k + line.len()..].fill(0); // a longer line may have been here
        let (from_start, from_end) = (&mut from_start[..n], &mut from_end[..n]);
        for (block, ext) in padded.chunks(window).zip(from_start.chunks_mut(window)) {
            let mut acc = block[0];
            for (v, e) in block.iter().zip(ext) {
                acc = op(acc, *v);
                *e = acc;
            }
        }
        for (block, ext) in padded.chunks(window).zip(from_end.chunks_mut(window)) {
            let mut acc = block[block.len() - 1];
            for (v, e) in block.iter().zip(ext).rev() {
                acc = op(acc, *v);
                *e = acc;
            }
        }
        for ((o, end), start) in out
            .iter_mut()
            .zip(&*from_end)
            .zip(&from_start[window - 1..])
        {
            *o = op(*end, *start);
        }
    };
    let mut rows = vec![0u8; w * h];
    for (src, dst) in plane.chunks_exact(w).zip(rows.chunks_exact_mut(w)) {
        filter_line(src, dst);
    }
    let mut out = vec![0u8; w * h];
    let (mut column, mut filtered) = (vec![0u8; h], vec![0u8; h]);
    for x in 0..w {
        for (y, c) in column.iter_mut().enumerate() {
            *c = rows[y * w + x];
        }
        filter_line(&column, &mut filtered);
        for (y, f) in filtered.iter().enumerate() {
            out[y * w + x] = *f;
        }
    }
    out
}

fn to_ycc(p: Rgb<u8>) -> [f32; 3] {
    let [r, g, b] = p.0.map(|v| v as f32);
    [
        0.299 * r + 0.587 * g + 0.114 * b,
        128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b,
        128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b,
    ]
}

fn from_ycc([y, cb, cr]: [f32; 3]) -> Rgb<u8> {
    let r = y + 1.402 * (cr - 128.0);
    let g = y - 0.344_136 * (cb - 128.0) - 0.714_136 * (cr - 128.0);
    let b = y + 1.772 * (cb - 128.0);
    Rgb([r, g, b].map(crate::to_u8))
}

/// Sigma (crop pixels) that splits a face's brightness into shading — the room's light, which
/// the transfer matches — and detail — the face's own features, which it keeps.
pub const SHADING_SIGMA: f32 = 3.0;

/// Colour transfer to the face being replaced, in YCbCr over the mask. Colour (Cb, Cr):
/// Reinhard's `(x − μ_gen)·σ_orig/σ_gen + μ_orig`. Brightness: split at [`SHADING_SIGMA`]; the
/// shading takes the original's mean and spread, the detail is only scaled by the ratio of mean
/// brightness (a light level scales detail). Reinhard's spread on the whole brightness would
/// also scale the detail to the original's flatter or harsher light: franck drawn into cap12's
/// flatly lit room lost contrast and read 1.5× as soft as franck's own faces (README, "What sets
/// cap12-as-franck's softness").
pub fn colour_transfer(generated: &RgbImage, original: &RgbImage, mask: &GrayImage) -> RgbImage {
    let ycc = |img: &RgbImage| -> [Vec<f32>; 3] {
        let mut planes: [Vec<f32>; 3] = Default::default();
        for p in img.pixels() {
            for (plane, v) in planes.iter_mut().zip(to_ycc(*p)) {
                plane.push(v);
            }
        }
        planes
    };
    let (w, h) = generated.dimensions();
    let shading = |y: &[f32]| -> Vec<f32> {
        let plane = ImageBuffer::<Luma<f32>, Vec<f32>>::from_raw(w, h, y.to_vec())
            .expect("one value a pixel");
        image::imageops::blur(&plane, SHADING_SIGMA).into_raw()
    };
    // Mean and spread of `values` over the mask.
    let stats = |values: &[f32]| {
        let (mut sum, mut sq, mut n) = (0f64, 0f64, 0f64);
        for (&v, m) in values.iter().zip(mask.pixels()) {
            if m.0[0] > 127 {
                sum += v as f64;
                sq += (v as f64).powi(2);
                n += 1.0;
            }
        }
        let n = n.max(1.0);
        let mean = sum / n;
        (mean, (sq / n - mean * mean).max(1e-6).sqrt())
    };
    let (gen, orig) = (ycc(generated), ycc(original));
    let (gen_shading, orig_shading) = (shading(&gen[0]), shading(&orig[0]));
    let ((mg, sg), (mo, so)) = (stats(&gen_shading), stats(&orig_shading));
    let light = (stats(&orig[0]).0 / stats(&gen[0]).0.max(1.0)).clamp(0.5, 2.0);
    let colour = [1, 2].map(|i| (stats(&gen[i]), stats(&orig[i])));
    let reinhard = |v: f32, ((mg, sg), (mo, so)): ((f64, f64), (f64, f64))| {
        ((v as f64 - mg) * so / sg + mo) as f32
    };
    let out: Vec<u8> = (0..gen[0].len())
        .flat_map(|k| {
            let base = gen_shading[k] as f64;
            let y = (base - mg) * so / sg + mo + (gen[0][k] as f64 - base) * light;
            let [cb, cr] = [0, 1].map(|c| reinhard(gen[c + 1][k], colour[c]));
            from_ycc([y as f32, cb, cr]).0
        })
        .collect();
    RgbImage::from_raw(w, h, out).expect("three values a pixel")
}

/// The merger's unsharp mask on brightness only: `amount·(Y − blur(Y))`, Y the face's luma, is
/// added to all three channels; `amount` 0 or less returns the face unchanged. Per channel it
/// would also steepen colour edges — the decoder's red shadow at the nostrils, the blue fringe
/// its mask leaves at a cheek — which are artefacts, not detail.
pub fn sharpen(face: &RgbImage, amount: f32) -> RgbImage {
    if amount <= 0.0 || !amount.is_finite() {
        return face.clone();
    }
    let luma = GrayImage::from_fn(face.width(), face.height(), |x, y| {
        Luma([crate::to_u8(to_ycc(*face.get_pixel(x, y))[0])])
    });
    let blurred = image::imageops::blur(&luma, SHARPEN_SIGMA);
    let mut out = face.clone();
    for ((px, y), b) in out.pixels_mut().zip(luma.iter()).zip(blurred.iter()) {
        let lift = amount * (*y as f32 - *b as f32);
        px.0 = px.0.map(|v| crate::to_u8(v as f32 + lift));
    }
    out
}

/// Blends `face` (crop space, with `mask`) into `frame` through the inverse of `to_crop`.
/// `original` is the aligned crop of the frame the face replaces (for colour transfer).
pub fn paste_back(
    frame: &mut RgbImage,
    face: &RgbImage,
    mask: &GrayImage,
    original: &RgbImage,
    to_crop: &Similarity,
    opts: &BlendOptions,
) {
    let mask = erode_dilate(mask, opts.erode);
    let mask = if opts.feather > 0.0 {
        image::imageops::blur(&mask, opts.feather)
    } else {
        mask
    };
    let face = if opts.colour_transfer {
        colour_transfer(face, original, &mask)
    } else {
        face.clone()
    };
    // After the transfer, which would otherwise scale the lifted edges back to the original's
    // spread.
    let face = sharpen(&face, opts.sharpen);
    let size = face.width() as f32;
    // Frame-space bounding box of the crop square.
    let from_crop = to_crop.inverse();
    let corners = [[0.0, 0.0], [size, 0.0], [0.0, size], [size, size]].map(|p| from_crop.apply(p));
    let (fw, fh) = frame.dimensions();
    let x0 = corners
        .iter()
        .map(|c| c[0])
        .fold(f32::INFINITY, f32::min)
        .floor()
        .max(0.0) as u32;
    let y0 = corners
        .iter()
        .map(|c| c[1])
        .fold(f32::INFINITY, f32::min)
        .floor()
        .max(0.0) as u32;
    let x1 = (corners
        .iter()
        .map(|c| c[0])
        .fold(f32::NEG_INFINITY, f32::max)
        .ceil() as u32)
        .min(fw);
    let y1 = (corners
        .iter()
        .map(|c| c[1])
        .fold(f32::NEG_INFINITY, f32::max)
        .ceil() as u32)
        .min(fh);
    // Mix at the mask's resolution: premultiply the face by its alpha once per crop pixel
    // (64² of them), so each frame pixel is one bicubic read of premultiplied RGBA and one
    // `face + frame·(1 − alpha)`. The plane is padded by the cubic's reach with its edge
    // pixels, so no tap needs a clamp, and the weights come from a table of `PHASES` steps
    // per crop pixel (as OpenCV's cubic warp does), not from a cubic per frame pixel. Only
    // frame pixels whose crop coordinate can touch a non-zero mask pixel are visited: at
    // 640×480 a close face's crop square covers ~200k frame pixels, its mask about half of
    // them.
    let s = size as usize;
    let m = mask.as_raw();
    let mut premul = vec![[0f32; 4]; s * s];
    let (mut u_lo, mut u_hi, mut v_lo, mut v_hi) = (usize::MAX, 0, usize::MAX, 0);
    for (i, (px, rgb)) in premul
        .iter_mut()
        .zip(face.as_raw().chunks_exact(3))
        .enumerate()
    {
        if m[i] == 0 {
            continue;
        }
        let alpha = m[i] as f32 / 255.0;
        *px = [
            rgb[0] as f32 * alpha,
            rgb[1] as f32 * alpha,
            rgb[2] as f32 * alpha,
            alpha,
        ];
        let (u, v) = (i % s, i / s);
        (u_lo, u_hi, v_lo, v_hi) = (u_lo.min(u), u_hi.max(u), v_lo.min(v), v_hi.max(v));
    }
    if u_lo > u_hi || x0 >= x1 || y0 >= y1 {
        return; // an empty mask, or the crop lies wholly outside the frame
    }
    let (plane, p) = (padded(&premul, s), s + 2 * REACH);
    let weights: Vec<[f32; 4]> = (0..PHASES)
        .map(|k| catmull_rom(k as f32 / PHASES as f32))
        .collect();
    let last = size - 1.0;
    // Index-space crop coordinates (pixel centres on integers) that read a non-zero tap: the
    // cubic reaches two taps out.
    let u_range = (
        (u_lo as f32 - 2.0).max(-0.5),
        (u_hi as f32 + 2.0).min(last + 0.5),
    );
    let v_range = (
        (v_lo as f32 - 2.0).max(-0.5),
        (v_hi as f32 + 2.0).min(last + 0.5),
    );
    let stride = frame.width() as usize * 3;
    let frame_raw: &mut [u8] = frame;
    let (a, b) = (to_crop.a, to_crop.b);
    let rows = &mut frame_raw[y0 as usize * stride..y1 as usize * stride];
    // Rows are independent: spread them over the cores (the result does not depend on how).
    rows.par_chunks_mut(stride)
        .enumerate()
        .for_each(|(i, row)| {
            let y = y0 as usize + i;
            let [u, v] = to_crop.apply([x0 as f32 + 0.5, y as f32 + 0.5]);
            let (u, v) = (u - 0.5, v - 0.5);
            let n = (x1 - x0) as usize;
            let Some((t0, t1)) = span(u, a, u_range, n)
                .and_then(|su| span(v, b, v_range, n).map(|sv| (su.0.max(sv.0), su.1.min(sv.1))))
            else {
                return;
            };
            // Crop coordinates in 32.32 fixed point, stepped along the row: no float→int
            // conversion or clamp per pixel, which was most of the cost (the step's rounding
            // drifts by under 1e-6 crop px over a row).
            const ONE: f64 = 4_294_967_296.0;
            let fix = |v: f32| (v as f64 * ONE).round() as i64;
            let (du, dv) = (fix(a), fix(b));
            let (mut ui, mut vi) = (fix(u) + du * t0 as i64, fix(v) + dv * t0 as i64);
            let (lo, hi, top) = (fix(-0.5), fix(last + 0.5), fix(last));
            for t in t0..t1 {
                let (uc, vc) = (ui, vi);
                ui += du;
                vi += dv;
                if uc < lo || vc < lo || uc >= hi || vc >= hi {
                    continue;
                }
                let (uc, vc) = (uc.clamp(0, top), vc.clamp(0, top));
                // The nearest of PHASES steps: the tap, and the step past it.
                let step = |c: i64| ((c + HALF_PHASE) >> PHASE_SHIFT) as usize;
                let (sx, sy) = (step(uc), step(vc));
                let acc = bicubic_padded(
                    &plane,
                    p,
                    sx / PHASES,
                    sy / PHASES,
                    &weights[sx % PHASES],
                    &weights[sy % PHASES],
                );
                // Below half an 8-bit step of alpha the frame pixel is left as it was.
                if acc[3] < 0.5 / 255.0 {
                    continue;
                }
                let x = x0 as usize + t;
                let px = &mut row[x * 3..x * 3 + 3];
                for (out, c) in px.iter_mut().zip(acc) {
                    *out = crate::to_u8(c + *out as f32 * (1.0 - acc[3]));
                }
            }
        });
}

/// Sub-pixel steps of the paste's cubic weights: positions are rounded to 1/128 crop pixel, a
/// few thousandths of an 8-bit level on a face's gradients.
const PHASES: usize = 64;
/// How far the paste's 32.32 fixed-point crop coordinate is shifted to count `PHASES` steps,
/// and half a step, for rounding to the nearest.
const PHASE_SHIFT: u32 = 32 - PHASES.trailing_zeros();
const HALF_PHASE: i64 = 1 << (PHASE_SHIFT - 1);
/// Taps the cubic reaches past the sample it reads at (one before it, two after).
const REACH: usize = 2;

/// A square `s`×`s` RGBA plane with `REACH` pixels more on each side, copied from its edges.
fn padded(plane: &[[f32; 4]], s: usize) -> Vec<[f32; 4]> {
    let p = s + 2 * REACH;
    let at = |i: usize| i.saturating_sub(REACH).min(s - 1);
    (0..p * p)
        .map(|i| plane[at(i / p) * s + at(i % p)])
        .collect()
}

/// Bicubic read of a `padded` plane (side `p`) at crop tap `(xi, yi)` with the Catmull-Rom
/// weights of its position past that tap. Alpha is clamped to [0, 1] (the cubic overshoots
/// at the mask's edge); colour is clamped when it is mixed.
#[inline]
fn bicubic_padded(
    plane: &[[f32; 4]],
    p: usize,
    xi: usize,
    yi: usize,
    wx: &[f32; 4],
    wy: &[f32; 4],
) -> [f32; 4] {
    // Tap −1 of the crop is index REACH − 1 of the padded plane.
    let first = (yi + REACH - 1) * p + xi + REACH - 1;
    let mut acc = [0f32; 4];
    for (j, wyj) in wy.iter().enumerate() {
        let row = &plane[first + j * p..][..4];
        for (c, a) in acc.iter_mut().enumerate() {
            let line =
                row[0][c] * wx[0] + row[1][c] * wx[1] + row[2][c] * wx[2] + row[3][c] * wx[3];
            *a += line * wyj;
        }
    }
    acc[3] = acc[3].clamp(0.0, 1.0);
    acc
}

/// Catmull-Rom weights of the taps at −1, 0, 1 and 2 around a position `t` ∈ [0, 1) past tap 0:
/// the interpolating cubic, which passes through the samples and keeps detail a bilinear read
/// (a triangle filter) softens when a small crop is drawn over a larger face.
pub fn catmull_rom(t: f32) -> [f32; 4] {
    let (t2, t3) = (t * t, t * t * t);
    [
        0.5 * (-t3 + 2.0 * t2 - t),
        0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
        0.5 * (-3.0 * t3 + 4.0 * t2 + t),
        0.5 * (t3 - t2),
    ]
}

/// Bicubic (Catmull-Rom) read of a square `s`×`s` premultiplied RGBA plane at tap `(xi, yi)`
/// plus `(fx, fy)`, edges replicated. Alpha is clamped to [0, 1] (the cubic overshoots at the
/// mask's edge); colour is clamped when it is mixed. The exact read the paste's table of
/// weights and padded plane stand in for: the tests' reference.
#[cfg(test)]
fn bicubic_at(plane: &[[f32; 4]], s: usize, xi: i64, yi: i64, fx: f32, fy: f32) -> [f32; 4] {
    let (wx, wy) = (catmull_rom(fx), catmull_rom(fy));
    let tap = |i: i64, k: usize| (i - 1 + k as i64).clamp(0, s as i64 - 1) as usize;
    let mut acc = [0f32; 4];
    for (j, wyj) in wy.iter().enumerate() {
        let row = &plane[tap(yi, j) * s..][..s];
        let mut line = [0f32; 4];
        for (k, wxk) in wx.iter().enumerate() {
            for (l, v) in line.iter_mut().zip(row[tap(xi, k)]) {
                *l += v * wxk;
            }
        }
        for (a, l) in acc.iter_mut().zip(line) {
            *a += l * wyj;
        }
    }
    acc[3] = acc[3].clamp(0.0, 1.0);
    acc
}

/// The steps `t` in `0..n` where `p + q·t` lies in `[lo, hi]`, widened by one step each side
/// against rounding; `None` when there are none.
fn span(p: f32, q: f32, (lo, hi): (f32, f32), n: usize) -> Option<(usize, usize)> {
    let (t_lo, t_hi) = if q.abs() < 1e-9 {
        if p < lo || p > hi {
            return None;
        }
        (0.0, n as f32)
    } else {
        let (ta, tb) = ((lo - p) / q, (hi - p) / q);
        (ta.min(tb), ta.max(tb))
    };
    let start = (t_lo.floor() - 1.0).max(0.0);
    let end = (t_hi.ceil() + 2.0).min(n as f32);
    (start < end).then_some((start as usize, end as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    fn disc(size: u32, r: f32) -> GrayImage {
        GrayImage::from_fn(size, size, |x, y| {
            let d = (x as f32 + 0.5 - size as f32 / 2.0).hypot(y as f32 + 0.5 - size as f32 / 2.0);
            Luma([if d <= r { 255 } else { 0 }])
        })
    }

    fn area(m: &GrayImage) -> usize {
        m.pixels().filter(|p| p.0[0] > 127).count()
    }

    #[test]
    fn erosion_shrinks_and_dilation_grows_the_mask() {
        let m = disc(64, 20.0);
        assert!(area(&erode_dilate(&m, 3)) < area(&m));
        assert!(area(&erode_dilate(&m, -3)) > area(&m));
        assert_eq!(erode_dilate(&m, 0), m);
    }

    #[test]
    fn the_line_filter_matches_the_window_filter_everywhere() {
        // The definition, tap by tap: the square window's min or max, background outside.
        let reference = |m: &GrayImage, r: i32| {
            let k = r.unsigned_abs() as i64;
            GrayImage::from_fn(m.width(), m.height(), |x, y| {
                let mut v = if r > 0 { 255 } else { 0 };
                for dy in -k..=k {
                    for dx in -k..=k {
                        let (xx, yy) = (x as i64 + dx, y as i64 + dy);
                        let inside =
                            xx >= 0 && yy >= 0 && xx < m.width() as i64 && yy < m.height() as i64;
                        let s = if inside {
                            m.get_pixel(xx as u32, yy as u32).0[0]
                        } else {
                            0
                        };
                        v = if r > 0 { v.min(s) } else { v.max(s) };
                    }
                }
                Luma([v])
            })
        };
        let m = GrayImage::from_fn(23, 17, |x, y| {
            Luma([((x * 37 + y * 91 + x * y) % 256) as u8])
        });
        for r in [-30, -4, -1, 1, 2, 5, 12, 30] {
            assert_eq!(erode_dilate(&m, r), reference(&m, r), "radius {r}");
        }
        assert_eq!(erode_dilate(&GrayImage::new(0, 5), 3).dimensions(), (0, 5));
    }

    #[test]
    fn colour_transfer_moves_the_mean_to_the_original() {
        let gen = RgbImage::from_fn(32, 32, |x, _| Rgb([100 + x as u8, 60, 60]));
        let orig = RgbImage::from_fn(32, 32, |x, _| Rgb([180, 140 + x as u8, 120]));
        let m = GrayImage::from_pixel(32, 32, Luma([255]));
        let out = colour_transfer(&gen, &orig, &m);
        let mean =
            |img: &RgbImage, c: usize| img.pixels().map(|p| p.0[c] as f32).sum::<f32>() / 1024.0;
        for c in 0..3 {
            assert!((mean(&out, c) - mean(&orig, c)).abs() < 3.0, "channel {c}");
        }
    }

    #[test]
    fn colour_transfer_takes_the_rooms_shading_and_keeps_the_faces_detail() {
        // The generated face: strong shading (a ramp across) and a fine checker of ±12 (the
        // detail); the face it replaces: flat light at the same mean brightness.
        let gen = RgbImage::from_fn(48, 48, |x, y| {
            let v = 70 + 2 * x + if (x + y) % 2 == 0 { 12 } else { 0 };
            Rgb([v as u8; 3])
        });
        let orig = RgbImage::from_fn(48, 48, |x, _| Rgb([(112 + x % 3) as u8; 3]));
        let m = GrayImage::from_pixel(48, 48, Luma([255]));
        let out = colour_transfer(&gen, &orig, &m);
        let luma = |img: &RgbImage, x: u32, y: u32| img.get_pixel(x, y).0[0] as f32;
        // Detail: the step between checker neighbours, away from the borders.
        let detail = |img: &RgbImage| {
            let mut sum = 0.0;
            for y in 8..40 {
                for x in 8..40 {
                    sum += (luma(img, x, y) - luma(img, x + 1, y)).abs();
                }
            }
            sum / (32.0 * 32.0)
        };
        // Shading: the left-to-right rise of the brightness averaged over the rows.
        let rise = |img: &RgbImage| {
            let col = |x: u32| (0..48).map(|y| luma(img, x, y)).sum::<f32>() / 48.0;
            (col(38) + col(39)) / 2.0 - (col(8) + col(9)) / 2.0
        };
        let (d_gen, d_out) = (detail(&gen), detail(&out));
        assert!(
            (d_out / d_gen - 1.0).abs() < 0.15,
            "detail {d_out} against the generated face's {d_gen}"
        );
        assert!(
            rise(&out).abs() < 0.25 * rise(&gen),
            "shading rise {} against {} generated, ~0 in the original",
            rise(&out),
            rise(&gen)
        );
        // Reinhard on the whole brightness would have flattened the detail with the shading.
        let spread = |img: &RgbImage| {
            let n = (48 * 48) as f32;
            let mean = img.pixels().map(|p| p.0[0] as f32).sum::<f32>() / n;
            (img.pixels()
                .map(|p| (p.0[0] as f32 - mean).powi(2))
                .sum::<f32>()
                / n)
                .sqrt()
        };
        assert!(spread(&orig) / spread(&gen) < 0.1, "the test's premise");
    }

    /// Every frame pixel mixed by the same bicubic read of premultiplied RGBA, without the span
    /// culling and with float coordinates: the culled fixed-point walk must match it.
    fn paste_everywhere(frame: &mut RgbImage, face: &RgbImage, mask: &GrayImage, t: &Similarity) {
        let s = face.width() as usize;
        let last = s as f32 - 1.0;
        let premul: Vec<[f32; 4]> = face
            .pixels()
            .zip(mask.pixels())
            .map(|(p, m)| {
                let a = m.0[0] as f32 / 255.0;
                [p[0] as f32 * a, p[1] as f32 * a, p[2] as f32 * a, a]
            })
            .collect();
        for y in 0..frame.height() {
            for x in 0..frame.width() {
                let [u, v] = t.apply([x as f32 + 0.5, y as f32 + 0.5]);
                let (uc, vc) = (u - 0.5, v - 0.5);
                if uc < -0.5 || vc < -0.5 || uc >= last + 0.5 || vc >= last + 0.5 {
                    continue;
                }
                let (uc, vc) = (uc.clamp(0.0, last), vc.clamp(0.0, last));
                let (x0, y0) = (uc.floor(), vc.floor());
                let acc = bicubic_at(&premul, s, x0 as i64, y0 as i64, uc - x0, vc - y0);
                if acc[3] < 0.5 / 255.0 {
                    continue;
                }
                let px = frame.get_pixel_mut(x, y);
                for (out, c) in px.0.iter_mut().zip(acc) {
                    *out = crate::to_u8(c + *out as f32 * (1.0 - acc[3]));
                }
            }
        }
    }

    #[test]
    fn catmull_rom_passes_through_the_samples_and_keeps_ramps_straight() {
        assert_eq!(catmull_rom(0.0), [0.0, 1.0, 0.0, 0.0]);
        for t in [0.1f32, 0.25, 0.5, 0.8, 0.99] {
            let w = catmull_rom(t);
            assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{t}: {w:?}");
            // A linear ramp (taps at −1, 0, 1, 2) is read exactly: no softening of a gradient.
            let ramp: f32 = w
                .iter()
                .enumerate()
                .map(|(k, wk)| wk * (k as f32 - 1.0))
                .sum();
            assert!((ramp - t).abs() < 1e-6, "{t}: {ramp}");
            // Negative outer lobes: what keeps an edge steeper than a bilinear read does.
            assert!(w[0] < 0.0 && w[3] < 0.0, "{t}: {w:?}");
        }
    }

    #[test]
    fn culled_paste_matches_mixing_every_pixel_under_rotation_and_scale() {
        let face = RgbImage::from_fn(64, 64, |x, y| Rgb([(x * 4) as u8, (y * 4) as u8, 90]));
        let mask = image::imageops::blur(&disc(64, 22.0), 2.0);
        let opts = BlendOptions {
            colour_transfer: false,
            erode: 0,
            feather: 0.0,
            ..Default::default()
        };
        for (deg, scale, tx, ty) in [
            (0.0f32, 0.25f32, -20.0, -10.0),
            (30.0, 0.3, 10.0, -30.0),
            (-75.0, 0.5, 40.0, 60.0),
            (180.0, 0.2, 70.0, 55.0),
            (90.0, 0.4, 30.0, -20.0), // partly above the frame
        ] {
            let (a, b) = (
                scale * deg.to_radians().cos(),
                scale * deg.to_radians().sin(),
            );
            let t = Similarity { a, b, tx, ty };
            let base =
                RgbImage::from_fn(320, 240, |x, y| Rgb([(x % 251) as u8, 40, (y % 199) as u8]));
            let (mut culled, mut everywhere) = (base.clone(), base.clone());
            paste_back(&mut culled, &face, &mask, &face, &t, &opts);
            paste_everywhere(&mut everywhere, &face, &mask, &t);
            assert!(culled != base, "{deg}°: something was pasted");
            // The walk steps fixed-point coordinates and takes its weights from a table of
            // 1/64-pixel steps, the reference computes each exactly in float: a rounding may
            // differ by one level (here in 0.7–1.3% of values), a skipped region or a wrong
            // tap would differ by far more.
            let diffs: Vec<u8> = culled
                .as_raw()
                .iter()
                .zip(everywhere.as_raw())
                .map(|(p, q)| p.abs_diff(*q))
                .collect();
            let worst = diffs.iter().copied().max().unwrap_or(0);
            let off = diffs.iter().filter(|d| **d > 0).count();
            assert!(worst <= 1, "{deg}°: a pixel differs by {worst}");
            assert!(off * 40 <= diffs.len(), "{deg}°: {off} values differ");
        }
    }

    #[test]
    fn sharpening_steepens_an_edge_and_leaves_flat_skin_alone() {
        // A soft vertical edge from 60 to 180 over columns 28..36, as a decoder draws one.
        let face = RgbImage::from_fn(64, 64, |x, _| {
            let t = ((x as f32 - 28.0) / 8.0).clamp(0.0, 1.0);
            Rgb([(60.0 + 120.0 * t) as u8; 3])
        });
        assert_eq!(sharpen(&face, 0.0), face, "amount 0 is off");
        let sharp = sharpen(&face, 1.0);
        let at = |img: &RgbImage, x: u32| img.get_pixel(x, 32).0[0] as i32;
        // The steepest step across the edge grows; far from it nothing changes.
        let steepest = |img: &RgbImage| (20..44).map(|x| at(img, x + 1) - at(img, x)).max();
        assert!(steepest(&sharp) > steepest(&face));
        assert!(
            at(&sharp, 27) < at(&face, 27),
            "dark side darker at the edge"
        );
        assert!(
            at(&sharp, 37) > at(&face, 37),
            "bright side brighter at the edge"
        );
        for x in [5, 58] {
            assert!(
                (at(&sharp, x) - at(&face, x)).abs() <= 1,
                "flat at column {x}"
            );
        }
    }

    #[test]
    fn sharpening_lifts_brightness_edges_not_colour_edges() {
        // Red beside grey of the same luma (a colour edge, like the decoder's nostril shadow),
        // then a dark-to-bright grey edge below it.
        let (red, grey) = (Rgb([200u8, 80, 80]), Rgb([115u8; 3]));
        assert!((to_ycc(red)[0] - to_ycc(grey)[0]).abs() < 1.0);
        let face = RgbImage::from_fn(64, 64, |x, y| match (y < 32, x < 32) {
            (true, true) => red,
            (true, false) => grey,
            (false, true) => Rgb([60; 3]),
            (false, false) => Rgb([180; 3]),
        });
        let sharp = sharpen(&face, 2.0);
        for x in 28..36 {
            for c in 0..3 {
                let (a, b) = (sharp.get_pixel(x, 10).0[c], face.get_pixel(x, 10).0[c]);
                assert!(
                    a.abs_diff(b) <= 2,
                    "colour edge at x {x}, channel {c}: {b} -> {a}"
                );
            }
        }
        // Across the grey edge every channel moves alike: no colour is added.
        let (dark, bright) = (sharp.get_pixel(31, 50).0, sharp.get_pixel(32, 50).0);
        assert!(dark[0] < 60 && bright[0] > 180, "{dark:?} {bright:?}");
        assert!(dark.iter().all(|v| *v == dark[0]) && bright.iter().all(|v| *v == bright[0]));
    }

    #[test]
    fn paste_back_changes_only_the_masked_face_region() {
        let mut frame = RgbImage::from_pixel(120, 100, Rgb([10, 20, 30]));
        let before = frame.clone();
        let face = RgbImage::from_pixel(64, 64, Rgb([200, 50, 50]));
        let original = RgbImage::from_pixel(64, 64, Rgb([10, 20, 30]));
        // Crop = frame region starting at (30, 20), scale 1.
        let t = Similarity {
            a: 1.0,
            b: 0.0,
            tx: -30.0,
            ty: -20.0,
        };
        let opts = BlendOptions {
            colour_transfer: false,
            ..Default::default()
        };
        paste_back(&mut frame, &face, &disc(64, 24.0), &original, &t, &opts);
        assert_eq!(
            frame.get_pixel(62, 52).0,
            [200, 50, 50],
            "centre of the mask is the new face"
        );
        assert_eq!(
            frame.get_pixel(5, 5),
            before.get_pixel(5, 5),
            "outside the crop untouched"
        );
        assert_eq!(
            frame.get_pixel(32, 22),
            before.get_pixel(32, 22),
            "crop corner outside the mask untouched"
        );
    }
}
