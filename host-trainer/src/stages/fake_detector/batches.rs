//! Training batches for the fake detector: half real, half fake, with camera and codec
//! variation on both, self-blends made afresh at every draw.

use rand::{RngExt, SeedableRng};

use super::data::{Kind, Sample};
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

/// One training batch: crops, their labels (1 = fake), what each is, and whether to mirror it.
pub struct Batch {
    pub crops: Vec<image::RgbImage>,
    pub labels: Vec<f32>,
    pub kinds: Vec<Kind>,
    /// Each crop's landmarks (crop pixels), for the training-set sharpness check.
    pub landmarks: Vec<[[f32; 2]; 5]>,
    pub flip: bool,
}

/// Draws class-balanced batches from `train`: half real, half fake, the fakes spread evenly over
/// the kinds in `train`, each crop passed through [`degrade`]. Self-blended fakes are made
/// afresh from a random training real at every draw, as in the SBI paper: a fixed set of them,
/// one per frame, is learnt by heart on a few hundred frames.
pub struct BatchDrawer<'a> {
    reals: Vec<&'a Sample>,
    fakes: Vec<(Kind, Vec<&'a Sample>)>,
    half: usize,
    rng: rand::rngs::SmallRng,
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
            .map(|&k| (k, train.iter().copied().filter(|s| s.kind == k).collect()))
            .filter(|(_, pool): &(Kind, Vec<&Sample>)| !pool.is_empty())
            .collect();
        Self {
            reals,
            fakes,
            half: (batch / 2).max(1),
            rng: rand::rngs::SmallRng::seed_from_u64(seed),
        }
    }

    fn real(&mut self) -> &'a Sample {
        self.reals[self.rng.random_range(0..self.reals.len())]
    }

    pub fn draw(&mut self) -> Batch {
        let mut b = Batch {
            crops: Vec::with_capacity(2 * self.half),
            labels: Vec::with_capacity(2 * self.half),
            kinds: Vec::with_capacity(2 * self.half),
            landmarks: Vec::with_capacity(2 * self.half),
            flip: self.rng.random::<bool>(),
        };
        for _ in 0..self.half {
            let real = self.real();
            b.crops.push(degrade(real.crop.clone(), &mut self.rng));
            b.labels.push(0f32);
            b.kinds.push(Kind::Real);
            b.landmarks.push(real.landmarks);
        }
        for _ in 0..self.half {
            let kind = self.rng.random_range(0..self.fakes.len());
            let (fake, landmarks) = if self.fakes[kind].0 == Kind::Sbi {
                let real = self.real();
                let params = SbiParams::sample(&mut self.rng);
                (
                    self_blend(&real.crop, &real.landmarks, &params).0,
                    real.landmarks,
                )
            } else {
                let pool = &self.fakes[kind].1;
                let s = pool[self.rng.random_range(0..pool.len())];
                (s.crop.clone(), s.landmarks)
            };
            b.crops.push(degrade(fake, &mut self.rng));
            b.labels.push(1f32);
            b.kinds.push(self.fakes[kind].0);
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
            frame: 0,
            donor: None,
        }
    }

    fn detector_crop_landmarks() -> [[f32; 2]; 5] {
        model_spec::fake_detector::crop().template_px()
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
