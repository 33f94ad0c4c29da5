//! Training augmentation. The classic deepfake trick is the *random warp*: the network sees a
//! locally distorted face and must reproduce the undistorted one, so it learns faces rather than
//! pixels. On top: a random similarity transform, a horizontal flip and a colour jitter, applied
//! to input and target alike so the geometry and colours the model must output stay truthful.

use facekit::align::{sample_bilinear, Similarity};
use image::{GrayImage, Luma, Rgb, RgbImage};
use rand::{Rng, RngExt};
use rand_distr::{Distribution, Normal};

use crate::artefacts::train_config::AugmentConfig;

/// One sampled augmentation.
#[derive(Debug, Clone)]
pub struct Augmentation {
    size: u32,
    /// Target → source pixel mapping of the similarity + flip.
    target_to_source: Similarity,
    flip: bool,
    /// Per-grid-point displacement (pixels) of the input relative to the target.
    grid: Vec<[f32; 2]>,
    grid_n: usize,
    brightness: f32,
    contrast: f32,
    saturation: f32,
}

impl Augmentation {
    pub fn sample(cfg: &AugmentConfig, size: u32, rng: &mut impl Rng) -> Self {
        let s = size as f32;
        let mut uni = |m: f32| {
            if m > 0.0 {
                rng.random_range(-m..=m)
            } else {
                0.0
            }
        };
        let angle = uni(cfg.rotate_deg).to_radians();
        let scale = 1.0 + uni(cfg.zoom);
        let (tx, ty) = (uni(cfg.shift) * s, uni(cfg.shift) * s);
        let (brightness, contrast, saturation) =
            (uni(cfg.brightness), uni(cfg.contrast), uni(cfg.saturation));
        // Rotate and zoom about the crop centre, then shift: this maps source → target.
        let (a, b) = (scale * angle.cos(), scale * angle.sin());
        let c = s / 2.0;
        let source_to_target = Similarity {
            a,
            b,
            tx: c - (a * c - b * c) + tx,
            ty: c - (b * c + a * c) + ty,
        };
        let flip = rng.random::<f32>() < cfg.flip;
        let n = cfg.warp_grid.max(2);
        let normal = Normal::new(0.0f32, (cfg.warp_sigma * s).max(1e-6)).expect("valid sigma");
        let grid = (0..n * n)
            .map(|_| [normal.sample(rng), normal.sample(rng)])
            .collect();
        Self {
            size,
            target_to_source: source_to_target.inverse(),
            flip,
            grid,
            grid_n: n,
            brightness,
            contrast,
            saturation,
        }
    }

    /// Where a source point lands in the target (and input) geometry.
    pub fn map_point(&self, p: [f32; 2]) -> [f32; 2] {
        let q = self.target_to_source.inverse().apply(p);
        if self.flip {
            [self.size as f32 - q[0], q[1]]
        } else {
            q
        }
    }

    /// The random-warp displacement at target pixel `(x, y)`, bilinear over the grid.
    fn displacement(&self, x: f32, y: f32) -> [f32; 2] {
        let n = self.grid_n;
        let step = self.size as f32 / (n - 1) as f32;
        let (gx, gy) = (
            (x / step).clamp(0.0, (n - 1) as f32 - 1e-3),
            (y / step).clamp(0.0, (n - 1) as f32 - 1e-3),
        );
        let (i, j) = (gx.floor() as usize, gy.floor() as usize);
        let (fx, fy) = (gx - i as f32, gy - j as f32);
        let g = |ii: usize, jj: usize| self.grid[jj * n + ii];
        let mut d = [0.0; 2];
        for (k, v) in d.iter_mut().enumerate() {
            let top = g(i, j)[k] * (1.0 - fx) + g(i + 1, j)[k] * fx;
            let bot = g(i, j + 1)[k] * (1.0 - fx) + g(i + 1, j + 1)[k] * fx;
            *v = top * (1.0 - fy) + bot * fy;
        }
        d
    }

    fn colour(&self, px: Rgb<u8>) -> Rgb<u8> {
        let [r, g, b] = px.0.map(|v| v as f32 / 255.0);
        let grey = 0.299 * r + 0.587 * g + 0.114 * b;
        let f = |v: f32| {
            let sat = grey + (v - grey) * (1.0 + self.saturation);
            let con = 0.5 + (sat - 0.5) * (1.0 + self.contrast);
            ((con + self.brightness).clamp(0.0, 1.0) * 255.0).round() as u8
        };
        Rgb([f(r), f(g), f(b)])
    }

    /// Target pixel `(x, y)` unflipped: the flipped target pixel x reads position n - x.
    fn unflipped(&self, x: u32, y: u32) -> [f32; 2] {
        let (cx, cy) = (x as f32 + 0.5, y as f32 + 0.5);
        [if self.flip { self.size as f32 - cx } else { cx }, cy]
    }

    /// (warped input, true target), both `size`×`size`.
    pub fn apply(&self, src: &RgbImage) -> (RgbImage, RgbImage) {
        let n = self.size;
        let mut input = RgbImage::new(n, n);
        let mut target = RgbImage::new(n, n);
        for y in 0..n {
            for x in 0..n {
                let [ux, cy] = self.unflipped(x, y);
                let [sx, sy] = self.target_to_source.apply([ux, cy]);
                target.put_pixel(x, y, self.colour(sample_bilinear(src, sx - 0.5, sy - 0.5)));
                let [dx, dy] = self.displacement(ux, cy);
                let [wx, wy] = self.target_to_source.apply([ux + dx, cy + dy]);
                input.put_pixel(x, y, self.colour(sample_bilinear(src, wx - 0.5, wy - 0.5)));
            }
        }
        (input, target)
    }

    /// `mask` (source pixels) where [`Augmentation::apply`] puts the target: which target
    /// pixels an occluder pasted onto the source covers.
    pub fn target_mask(&self, mask: &GrayImage) -> GrayImage {
        let grey = RgbImage::from_fn(mask.width(), mask.height(), |x, y| {
            Rgb([mask.get_pixel(x, y).0[0]; 3])
        });
        GrayImage::from_fn(self.size, self.size, |x, y| {
            let [sx, sy] = self.target_to_source.apply(self.unflipped(x, y));
            Luma([sample_bilinear(&grey, sx - 0.5, sy - 0.5).0[0]])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn dot_image(size: u32, p: [f32; 2]) -> RgbImage {
        RgbImage::from_fn(size, size, |x, y| {
            let d = (x as f32 + 0.5 - p[0]).hypot(y as f32 + 0.5 - p[1]);
            Rgb([if d < 2.0 { 255 } else { 0 }; 3])
        })
    }

    fn centroid(img: &RgbImage) -> [f32; 2] {
        let (mut sx, mut sy, mut sw) = (0.0, 0.0, 0.0);
        for (x, y, p) in img.enumerate_pixels() {
            let w = p.0[0] as f32;
            sx += w * (x as f32 + 0.5);
            sy += w * (y as f32 + 0.5);
            sw += w;
        }
        [sx / sw, sy / sw]
    }

    /// Colour jitter off: it would lift a black background (biasing centroids) and make pixel
    /// comparisons inexact; the geometry is what these tests look at.
    fn no_colour_jitter() -> AugmentConfig {
        AugmentConfig {
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            ..Default::default()
        }
    }

    #[test]
    fn target_landmarks_follow_the_similarity_and_flip() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let cfg = AugmentConfig {
            warp_sigma: 0.0,
            flip: 0.5,
            ..no_colour_jitter()
        };
        for _ in 0..20 {
            let aug = Augmentation::sample(&cfg, 64, &mut rng);
            let p = [22.0, 27.0];
            let (_, target) = aug.apply(&dot_image(64, p));
            let want = aug.map_point(p);
            let got = centroid(&target);
            assert!(
                (got[0] - want[0]).hypot(got[1] - want[1]) < 0.6,
                "{got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn an_occluders_mask_lands_where_the_target_shows_it() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
        let cfg = AugmentConfig {
            flip: 0.5,
            ..no_colour_jitter()
        };
        let p = [20.0, 40.0];
        let dot = dot_image(64, p);
        let mask = GrayImage::from_fn(64, 64, |x, y| Luma([dot.get_pixel(x, y).0[0]]));
        for _ in 0..20 {
            let aug = Augmentation::sample(&cfg, 64, &mut rng);
            let (_, target) = aug.apply(&dot);
            let moved = aug.target_mask(&mask);
            let as_rgb = RgbImage::from_fn(64, 64, |x, y| Rgb([moved.get_pixel(x, y).0[0]; 3]));
            assert_eq!(as_rgb, target, "the mask and the target are sampled alike");
        }
    }

    #[test]
    fn a_flip_alone_maps_pixels_onto_pixels() {
        // The fine-tune's setting (no rotation, zoom or shift): the target keeps every detail
        // of the face, where any resample at the crop's size would blur it.
        let mut rng = rand::rngs::SmallRng::seed_from_u64(5);
        let cfg = AugmentConfig {
            rotate_deg: 0.0,
            zoom: 0.0,
            shift: 0.0,
            warp_sigma: 0.0,
            flip: 1.0,
            ..no_colour_jitter()
        };
        let face = RgbImage::from_fn(64, 64, |x, y| {
            Rgb([(x * 4) as u8, (y * 4) as u8, ((x * 7 + y * 13) % 256) as u8])
        });
        let (input, target) = Augmentation::sample(&cfg, 64, &mut rng).apply(&face);
        let flipped = image::imageops::flip_horizontal(&face);
        assert_eq!(target, flipped);
        assert_eq!(input, flipped);
    }

    #[test]
    fn warp_moves_the_input_but_not_the_target() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let cfg = AugmentConfig {
            rotate_deg: 0.0,
            zoom: 0.0,
            shift: 0.0,
            flip: 0.0,
            warp_sigma: 0.05,
            ..no_colour_jitter()
        };
        let p = [32.0, 32.0];
        let img = dot_image(64, p);
        let mut moved = 0.0f32;
        for _ in 0..10 {
            let aug = Augmentation::sample(&cfg, 64, &mut rng);
            let (input, target) = aug.apply(&img);
            assert_eq!(target, img, "target is the untouched face");
            let c = centroid(&input);
            moved = moved.max((c[0] - p[0]).hypot(c[1] - p[1]));
            // The input dot sits where its displaced sampling position hits the original dot.
            let d = aug.displacement(c[0], c[1]);
            assert!((c[0] + d[0] - p[0]).hypot(c[1] + d[1] - p[1]) < 1.0);
        }
        assert!(
            moved > 1.0,
            "warp must actually distort (max shift {moved})"
        );
    }
}
