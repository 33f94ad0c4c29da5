//! Training batches for the fake detector: pairs of a real face and a fake made from it, with
//! one camera and codec variation for both, self-blends made afresh at every draw.

use std::collections::HashMap;

use rand::{RngExt, SeedableRng};

use super::data::{Kind, Sample};
use crate::artefacts::dataset::FaceAt;
use facekit::forensics::{self_blend, SbiParams};

/// Camera and codec variation applied to reals and fakes alike, so that what one camera does to
/// every face (its resolution, sharpness, noise, compression, exposure) cannot tell real from
/// fake, and a held-out camera looks like one already seen: down-and-up resampling (p 0.5),
/// blur or in-camera sharpening (p 0.3 / 0.2), sensor noise (p 0.3), JPEG re-encoding (p 0.5)
/// and a brightness/contrast change (p 0.3). Identities are few, so cameras are simulated
/// rather than collected.
fn degrade(mut out: image::RgbImage, rng: &mut impl rand::Rng) -> image::RgbImage {
    if rng.random::<f32>() < 0.5 {
        // A face that filled fewer camera pixels, upscaled to the crop like a small face is.
        let (w, h) = out.dimensions();
        let scale = rng.random_range(0.25..0.9f32);
        let small = image::imageops::resize(
            &out,
            ((w as f32 * scale) as u32).max(8),
            ((h as f32 * scale) as u32).max(8),
            image::imageops::FilterType::Triangle,
        );
        out = image::imageops::resize(&small, w, h, image::imageops::FilterType::Triangle);
    }
    let focus = rng.random::<f32>();
    if focus < 0.3 {
        out = image::imageops::blur(&out, rng.random_range(0.3..1.2));
    } else if focus < 0.5 {
        out = facekit::forensics::sharpen(&out, rng.random_range(0.3..1.5));
    }
    if rng.random::<f32>() < 0.3 {
        let sigma = rng.random_range(1.0..6.0f32);
        for p in out.pixels_mut() {
            // Sum of uniforms: near-Gaussian sensor noise without another dependency.
            let n: f32 = (0..3).map(|_| rng.random_range(-1.0..1.0f32)).sum::<f32>() * sigma;
            p.0 = p.0.map(|v| (v as f32 + n).clamp(0.0, 255.0) as u8);
        }
    }
    if rng.random::<f32>() < 0.5 {
        let mut bytes = Vec::new();
        let quality = rng.random_range(40..95);
        let encoded = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
            .encode_image(&out)
            .is_ok();
        if let Some(decoded) = encoded
            .then(|| image::load_from_memory(&bytes).ok())
            .flatten()
        {
            out = decoded.to_rgb8();
        }
    }
    if rng.random::<f32>() < 0.3 {
        let (gain, bias) = (
            rng.random_range(0.85..1.15f32),
            rng.random_range(-12.0..12.0f32),
        );
        for p in out.pixels_mut() {
            p.0 =
                p.0.map(|v| (v as f32 * gain + bias).clamp(0.0, 255.0) as u8);
        }
    }
    out
}

/// Where a crop of a batch was blended.
pub enum Blend {
    /// A real face: nothing.
    Nothing,
    /// A self-blend: its mask (255 = all pasted face).
    Mask(image::GrayImage),
    /// A stored fake, whose mask was not kept.
    Unknown,
}

/// One training batch: crops, their labels (1 = fake), what each is, and whether to mirror it.
pub struct Batch {
    pub crops: Vec<image::RgbImage>,
    pub labels: Vec<f32>,
    pub kinds: Vec<Kind>,
    /// Where each crop was blended, as far as the drawer knows.
    pub blends: Vec<Blend>,
    /// Each crop's landmarks (crop pixels), for the training-set sharpness check.
    pub landmarks: Vec<[[f32; 2]; 5]>,
    pub flip: bool,
}

/// Draws class-balanced batches from `train` as pairs: each real face with a fake made *from
/// that face* — its self-blend, or a stored fake of the same frame (a graphics swap pasted onto
/// it) — both passed through one and the same [`degrade`]. The pair then differs only where the
/// fake was blended in, so neither the person, nor the scene, nor the simulated camera can tell
/// them apart: the SBI paper trains on such pairs. Unpaired, with three training identities the
/// detector learnt what their real faces look like (held-out SBI AUC 0.61 against 0.86–0.95 on
/// their own late frames). Self-blends are made afresh at every draw: a fixed set, one per
/// frame, is learnt by heart on a few hundred frames. The kinds of fake are drawn evenly.
pub struct BatchDrawer<'a> {
    reals: Vec<&'a Sample>,
    fakes: Vec<FakePool<'a>>,
    half: usize,
    rng: rand::rngs::SmallRng,
}

/// The stored fakes of one kind, by the frame they were pasted onto.
struct FakePool<'a> {
    kind: Kind,
    all: Vec<&'a Sample>,
    by_frame: HashMap<(usize, FaceAt), Vec<&'a Sample>>,
}

impl<'a> BatchDrawer<'a> {
    pub fn new(train: &[&'a Sample], batch: usize, seed: u64) -> Self {
        let reals = train
            .iter()
            .copied()
            .filter(|s| !s.kind.is_fake())
            .collect();
        let fakes = Kind::FAKES
            .iter()
            .filter_map(|&kind| {
                let all: Vec<&Sample> = train.iter().copied().filter(|s| s.kind == kind).collect();
                if all.is_empty() {
                    return None;
                }
                let mut by_frame: HashMap<(usize, FaceAt), Vec<&Sample>> = HashMap::new();
                for s in &all {
                    by_frame.entry((s.video, s.at)).or_default().push(s);
                }
                Some(FakePool {
                    kind,
                    all,
                    by_frame,
                })
            })
            .collect();
        Self {
            reals,
            fakes,
            half: (batch / 2).max(1),
            rng: rand::rngs::SmallRng::seed_from_u64(seed),
        }
    }

    pub fn draw(&mut self) -> Batch {
        let mut b = Batch {
            crops: Vec::with_capacity(2 * self.half),
            labels: Vec::with_capacity(2 * self.half),
            kinds: Vec::with_capacity(2 * self.half),
            blends: Vec::with_capacity(2 * self.half),
            landmarks: Vec::with_capacity(2 * self.half),
            flip: self.rng.random::<bool>(),
        };
        for _ in 0..self.half {
            let real = self.reals[self.rng.random_range(0..self.reals.len())];
            let pool = &self.fakes[self.rng.random_range(0..self.fakes.len())];
            let (fake, landmarks, mask) = if pool.kind == Kind::Sbi {
                let params = SbiParams::sample(&mut self.rng);
                let (sbi, mask) = self_blend(&real.crop, &real.landmarks, &params);
                (sbi, real.landmarks, Blend::Mask(mask))
            } else {
                // The fake of this very frame when there is one, else any of its kind.
                let choices = pool
                    .by_frame
                    .get(&(real.video, real.at))
                    .unwrap_or(&pool.all);
                let s = choices[self.rng.random_range(0..choices.len())];
                (s.crop.clone(), s.landmarks, Blend::Unknown)
            };
            // One simulated camera for both of the pair.
            let camera = self.rng.random::<u64>();
            let look = |crop| degrade(crop, &mut rand::rngs::SmallRng::seed_from_u64(camera));
            b.crops.push(look(real.crop.clone()));
            b.labels.push(0f32);
            b.kinds.push(Kind::Real);
            b.blends.push(Blend::Nothing);
            b.landmarks.push(real.landmarks);
            b.crops.push(look(fake));
            b.labels.push(1f32);
            b.kinds.push(pool.kind);
            b.blends.push(mask);
            b.landmarks.push(landmarks);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: Kind, colour: [u8; 3]) -> Sample {
        let crop = super::super::data::detector_test_crop(colour);
        Sample {
            landmarks: detector_crop_landmarks(),
            crop,
            kind,
            video: 0,
            late: false,
            at: FaceAt::default(),
            donor: None,
        }
    }

    fn detector_crop_landmarks() -> [[f32; 2]; 5] {
        model_spec::fake_detector::crop().template_px()
    }

    /// The mean absolute difference of the top quarter of two crops: above every face mask.
    fn top_difference(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
        let rows = a.height() / 4;
        let (mut sum, mut n) = (0f64, 0f64);
        for y in 0..rows {
            for x in 0..a.width() {
                for c in 0..3 {
                    sum += (a.get_pixel(x, y).0[c] as f64 - b.get_pixel(x, y).0[c] as f64).abs();
                    n += 1.0;
                }
            }
        }
        sum / n
    }

    #[test]
    fn each_fake_is_made_from_the_real_beside_it_through_the_same_camera() {
        // Three reals of greys far enough apart that the camera's exposure change cannot make
        // one look like another; a graphics swap stored for frame 1 only: frame 1's crop with a
        // red patch over the face. Other frames can only borrow it.
        let mut train: Vec<Sample> = (0..3u8)
            .map(|i| {
                let mut s = sample(Kind::Real, [20 + 90 * i; 3]);
                s.at.frame = i as u64;
                s
            })
            .collect();
        let mut graphic = train[1].clone();
        graphic.kind = Kind::Graphic;
        let size = graphic.crop.width();
        for y in size / 3..size * 3 / 4 {
            for x in size / 4..size * 3 / 4 {
                graphic.crop.put_pixel(x, y, image::Rgb([220, 40, 40]));
            }
        }
        train.push(graphic);
        // A stored self-blend puts the kind in the pool; the drawer makes its own.
        train.push(sample(Kind::Sbi, [240, 0, 0]));
        let refs: Vec<&Sample> = train.iter().collect();
        let mut drawer = BatchDrawer::new(&refs, 32, 3);
        let (mut own, mut borrowed, mut blends) = (0, 0, 0);
        for _ in 0..20 {
            let b = drawer.draw();
            for pair in 0..16 {
                let (real, fake) = (&b.crops[2 * pair], &b.crops[2 * pair + 1]);
                assert_eq!((b.labels[2 * pair], b.labels[2 * pair + 1]), (0.0, 1.0));
                let grey = real.get_pixel(0, 0).0[0] as i32;
                let frame_1 = (60..160).contains(&grey);
                let same_top = top_difference(real, fake) < 2.0;
                match b.kinds[2 * pair + 1] {
                    // A self-blend of this very face, through this very camera.
                    Kind::Sbi => {
                        assert!(same_top, "{}", top_difference(real, fake));
                        blends += 1;
                    }
                    Kind::Graphic if frame_1 => {
                        assert!(same_top, "{}", top_difference(real, fake));
                        own += 1;
                    }
                    Kind::Graphic => {
                        assert!(!same_top);
                        borrowed += 1;
                    }
                    k => panic!("{k:?}"),
                }
            }
        }
        assert!(
            blends > 100 && own > 5 && borrowed > 50,
            "{blends} {own} {borrowed}"
        );
    }

    #[test]
    fn batches_are_half_real_and_self_blends_are_made_fresh() {
        // Grey reals, a red stored self-blend, a blue swap: the colour tells what was drawn.
        let train = [
            sample(Kind::Real, [60; 3]),
            sample(Kind::Real, [120; 3]),
            sample(Kind::Sbi, [240, 0, 0]),
            sample(Kind::Swap, [0, 0, 240]),
        ];
        let refs: Vec<&Sample> = train.iter().collect();
        let mut drawer = BatchDrawer::new(&refs, 32, 7);
        let (mut fresh, mut swaps) = (0, 0);
        for _ in 0..10 {
            let b = drawer.draw();
            assert_eq!(b.crops.len(), 32);
            assert_eq!(b.labels.iter().filter(|&&l| l == 1.0).count(), 16);
            for (crop, _) in b.crops.iter().zip(&b.labels).filter(|(_, &l)| l == 1.0) {
                let mean = |c: usize| {
                    crop.pixels().map(|p| p.0[c] as f64).sum::<f64>()
                        / (crop.width() * crop.height()) as f64
                };
                let (red, blue) = (mean(0), mean(2));
                assert!(red - blue < 100.0, "the stored SBI was drawn");
                if blue - red > 100.0 {
                    swaps += 1;
                } else {
                    fresh += 1;
                }
            }
        }
        // Two kinds of fake, drawn evenly.
        assert!(
            (50..110).contains(&fresh) && fresh + swaps == 160,
            "{fresh} / {swaps}"
        );
    }
}
