//! Image-quality measurements of an aligned face crop, each a plain number so thresholds can be
//! tuned in the config and audited in the metadata.

use image::{imageops, GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Variance of the Laplacian of the inner face, rescaled to a mean brightness of 128 so that
    /// exposure alone does not read as blur (grey levels²): low means blurry.
    pub sharpness: f32,
    /// Mean luma of the inner face, 0–255.
    pub brightness: f32,
    /// Fraction of inner-face pixels at the ends of the range (≤ 5 or ≥ 250).
    pub clipped: f32,
    /// Mean rg-chromaticity of the inner face: `[R, G, B] / (R + G + B)`.
    pub chroma: [f32; 3],
}

/// The central part of the crop that is face in every pose (no hair, background or collar).
fn inner_face(crop: &RgbImage) -> RgbImage {
    let s = crop.width().min(crop.height());
    let (x0, side) = (s / 4, s / 2);
    imageops::crop_imm(crop, x0, x0 + s / 16, side, side).to_image()
}

fn luma(img: &RgbImage) -> GrayImage {
    GrayImage::from_fn(img.width(), img.height(), |x, y| {
        let [r, g, b] = img.get_pixel(x, y).0;
        image::Luma([(0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32).round() as u8])
    })
}

pub fn measure(crop: &RgbImage) -> Quality {
    let face = inner_face(crop);
    let grey = luma(&face);
    let n = (grey.width() * grey.height()) as f32;

    let brightness = grey.pixels().map(|p| p.0[0] as f32).sum::<f32>() / n;
    let clipped = grey
        .pixels()
        .filter(|p| p.0[0] <= 5 || p.0[0] >= 250)
        .count() as f32
        / n;

    let (w, h) = grey.dimensions();
    let mut lap = Vec::with_capacity(((w - 2) * (h - 2)) as usize);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let at = |dx: i32, dy: i32| {
                grey.get_pixel((x as i32 + dx) as u32, (y as i32 + dy) as u32)
                    .0[0] as f32
            };
            lap.push(at(-1, 0) + at(1, 0) + at(0, -1) + at(0, 1) - 4.0 * at(0, 0));
        }
    }
    let mean = lap.iter().sum::<f32>() / lap.len() as f32;
    let exposure = 128.0 / brightness.max(8.0);
    let sharpness = lap.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / lap.len() as f32
        * exposure
        * exposure;

    let mut sum = [0f64; 3];
    for p in face.pixels() {
        for (acc, &v) in sum.iter_mut().zip(&p.0) {
            *acc += v as f64;
        }
    }
    let total = (sum[0] + sum[1] + sum[2]).max(1.0);
    let chroma = sum.map(|v| (v / total) as f32);
    Quality {
        sharpness,
        brightness,
        clipped,
        chroma,
    }
}

/// 256-bit difference hash (16×16 brightness gradients) of a crop.
///
/// 64-bit hashes are too coarse for video: consecutive frames of a talking head already collide
/// in them, so a still webcam shot would lose most of its frames. At 256 bits real consecutive
/// frames of the sample videos stay ≥ 5 bits apart while re-encoded copies stay within 1–3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DHash(pub [u64; 4]);

impl DHash {
    pub fn distance(&self, other: &DHash) -> u32 {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|w| format!("{w:016x}")).collect()
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 {
            return None;
        }
        let mut words = [0u64; 4];
        for (i, w) in words.iter_mut().enumerate() {
            *w = u64::from_str_radix(s.get(i * 16..i * 16 + 16)?, 16).ok()?;
        }
        Some(Self(words))
    }
}

pub fn dhash(crop: &RgbImage) -> DHash {
    let small = imageops::resize(&luma(crop), 17, 16, imageops::FilterType::Triangle);
    let mut words = [0u64; 4];
    for y in 0..16u32 {
        for x in 0..16u32 {
            let bit = u64::from(small.get_pixel(x, y).0[0] > small.get_pixel(x + 1, y).0[0]);
            let i = (y * 16 + x) as usize;
            words[i / 64] |= bit << (i % 64);
        }
    }
    DHash(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker(size: u32) -> RgbImage {
        RgbImage::from_fn(size, size, |x, y| {
            let v = if (x / 2 + y / 2) % 2 == 0 { 200 } else { 60 };
            image::Rgb([v, (v as f32 * 0.8) as u8, (v as f32 * 0.6) as u8])
        })
    }

    #[test]
    fn blur_lowers_sharpness_and_keeps_brightness() {
        let sharp = checker(64);
        let blurred = imageops::blur(&sharp, 2.0);
        let (a, b) = (measure(&sharp), measure(&blurred));
        assert!(b.sharpness < a.sharpness / 10.0, "{a:?} {b:?}");
        assert!((a.brightness - b.brightness).abs() < 10.0);
    }

    #[test]
    fn chroma_follows_channel_balance() {
        let q = measure(&checker(64));
        assert!(q.chroma[0] > q.chroma[1] && q.chroma[1] > q.chroma[2]);
        assert!((q.chroma.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }

    #[test]
    fn dhash_is_stable_under_small_changes_only() {
        let a = checker(64);
        let mut b = a.clone();
        b.put_pixel(10, 10, image::Rgb([0, 0, 0]));
        assert!(dhash(&a).distance(&dhash(&b)) <= 2);
        let h = dhash(&a);
        assert_eq!(DHash::from_hex(&h.to_hex()), Some(h));
        let rising = RgbImage::from_fn(64, 64, |x, _| image::Rgb([(x * 4) as u8; 3]));
        let falling = imageops::flip_horizontal(&rising);
        assert_eq!(dhash(&rising).distance(&dhash(&falling)), 256);
    }
}
