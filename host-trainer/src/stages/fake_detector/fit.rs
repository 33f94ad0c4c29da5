//! Fitting a fake detector: Adam on binary cross-entropy, batches drawn on a second thread,
//! and, as Face X-ray (Li et al. 2020) does, a second target on the feature map: *where* the
//! face was blended.

use image::{GrayImage, RgbImage};
use tch::nn::{Module, VarStore};
use tch::{Device, Kind, Reduction, Tensor};

use super::batches::{Batch, BatchDrawer, Blend};
use super::data::Sample;
use crate::model::fake_detector::FakeDetector;
use crate::model::optim::Adam;
use crate::model::tensors::to_tensor;
use model_spec::FakeDetectorSpec;

/// How every fit of one `train-detector` run trains.
#[derive(Debug, Clone)]
pub struct FitOptions {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    /// Weight of the blending-boundary loss beside the real/fake loss; 0 trains on the label
    /// alone. The boundary head is a 3×3 convolution on the quarter-resolution feature map,
    /// used in training only: the saved and exported detector is the plain network.
    pub boundary_weight: f64,
    pub device: Device,
}

/// Fits a fresh detector on `train` (reals and fakes; see [`BatchDrawer`]). Batches are made on
/// a second thread while the network trains on the previous one.
///
/// With a boundary weight, every crop whose blend is known (a real face: none; a self-blend:
/// its mask `M`) also asks a small head on the quarter-resolution features for the blending
/// boundary `4·M·(1−M)` (Face X-ray's target): one bit per face says *that* it is fake, the
/// map says *where*, which a blend leaves whoever the person and whatever the camera.
pub fn fit(spec: &FakeDetectorSpec, train: &[&Sample], o: &FitOptions, seed: u64) -> FakeDetector {
    tch::manual_seed(seed as i64);
    let device = o.device;
    let model = FakeDetector::new(spec, device);
    let mut opt = Adam::new(&model.vars, o.lr, (0.9, 0.999));
    let tap = BoundaryHead::new(&model, spec, device);
    let mut head_opt = Adam::new(&tap.vars, o.lr, (0.9, 0.999));
    let mut drawer = BatchDrawer::new(train, o.batch, seed);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(2);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for _ in 0..o.steps {
                if tx.send(drawer.draw()).is_err() {
                    break;
                }
            }
        });
        for b in rx {
            let mut x = to_tensor(&b.crops, device);
            if b.flip {
                x = x.flip([3]);
            }
            let y = Tensor::from_slice(&b.labels)
                .reshape([-1, 1])
                .to_device(device);
            let outs = model.net.forward_all(&x);
            let p = outs[outs.len() - 1].clamp(1e-6, 1.0 - 1e-6);
            let mut loss = p.binary_cross_entropy::<Tensor>(&y, None, Reduction::Mean);
            if o.boundary_weight > 0.0 {
                let (target, known) = boundary_targets(&b.blends, tap.size, b.flip, device);
                let predicted = tap.forward(&outs[tap.layer]).clamp(1e-6, 1.0 - 1e-6);
                let per_pixel =
                    predicted.binary_cross_entropy::<Tensor>(&target, None, Reduction::None);
                let per_face = per_pixel.mean_dim(&[1i64, 2, 3][..], false, Kind::Float);
                let n = known.sum(Kind::Float).clamp_min(1.0);
                loss += (per_face * &known).sum(Kind::Float) / n * o.boundary_weight;
            }
            opt.zero_grad();
            head_opt.zero_grad();
            loss.backward();
            opt.step();
            if o.boundary_weight > 0.0 {
                head_opt.step();
            }
        }
    });
    model
}

/// The training-only boundary head: one 3×3 convolution from the first feature map at a
/// quarter of the crop's resolution to a sigmoid map.
struct BoundaryHead {
    vars: VarStore,
    conv: tch::nn::Conv2D,
    /// Index of the net layer whose output it reads.
    layer: usize,
    /// Side of that layer's map.
    size: i64,
}

impl BoundaryHead {
    fn new(model: &FakeDetector, spec: &FakeDetectorSpec, device: Device) -> Self {
        let s = spec.crop.size as i64;
        let probe = tch::no_grad(|| {
            model
                .net
                .forward_all(&Tensor::zeros([1, 3, s, s], (Kind::Float, device)))
        });
        // The first map at a quarter resolution (meso4: after the second pooling).
        let (layer, channels, size) = probe
            .iter()
            .enumerate()
            .find_map(|(i, t)| {
                let d = t.size();
                (d.len() == 4 && d[3] == s / 4).then(|| (i, d[1], d[3]))
            })
            .unwrap_or_else(|| {
                let d = probe[0].size();
                (0, d[1], d[3])
            });
        let vars = VarStore::new(device);
        let cfg = tch::nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        let conv = tch::nn::conv2d(&(vars.root() / "boundary"), channels, 1, 3, cfg);
        Self {
            vars,
            conv,
            layer,
            size,
        }
    }

    fn forward(&self, features: &Tensor) -> Tensor {
        self.conv.forward(features).sigmoid()
    }
}

/// The boundary map `4·M·(1−M)` of each crop's blend at `size`², mirrored like the batch,
/// and a 0/1 weight per face (0 where the blend is unknown).
fn boundary_targets(blends: &[Blend], size: i64, flip: bool, device: Device) -> (Tensor, Tensor) {
    let side = size as u32;
    let mut maps = Vec::with_capacity(blends.len() * (side * side) as usize);
    let mut known = Vec::with_capacity(blends.len());
    for blend in blends {
        if let Blend::Mask(m) = blend {
            let boundary = GrayImage::from_fn(m.width(), m.height(), |x, y| {
                let a = m.get_pixel(x, y).0[0] as f32 / 255.0;
                image::Luma([(4.0 * a * (1.0 - a) * 255.0).round() as u8])
            });
            let small = image::imageops::resize(
                &boundary,
                side,
                side,
                image::imageops::FilterType::Triangle,
            );
            maps.extend(small.pixels().map(|p| p.0[0] as f32 / 255.0));
        } else {
            maps.extend(std::iter::repeat_n(0f32, (side * side) as usize));
        }
        known.push(if matches!(blend, Blend::Unknown) {
            0f32
        } else {
            1f32
        });
    }
    let mut target = Tensor::from_slice(&maps)
        .reshape([blends.len() as i64, 1, size, size])
        .to_device(device);
    if flip {
        target = target.flip([3]);
    }
    (target, Tensor::from_slice(&known).to_device(device))
}

/// Fake probability of every crop of `samples`.
pub fn scores(model: &FakeDetector, samples: &[&Sample]) -> Vec<f32> {
    let crops: Vec<&RgbImage> = samples.iter().map(|s| &s.crop).collect();
    model.predict(&crops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artefacts::dataset::FaceAt;
    use crate::stages::fake_detector::data::{detector_test_crop, Kind as SampleKind};

    #[test]
    fn the_boundary_target_rings_the_blend_and_is_mirrored_with_the_batch() {
        // A disc pasted in full inside radius 40 of a 128 crop, feathered over ~8 px, placed
        // left of centre; a real face (nothing blended) and a fake whose blend is unknown.
        let disc = GrayImage::from_fn(128, 128, |x, y| {
            let r = ((x as f32 - 50.0).powi(2) + (y as f32 - 64.0).powi(2)).sqrt();
            image::Luma([((44.0 - r) / 8.0 * 255.0).clamp(0.0, 255.0) as u8])
        });
        let masks = [Blend::Mask(disc), Blend::Nothing, Blend::Unknown];
        for flip in [false, true] {
            let (t, known) = boundary_targets(&masks, 32, flip, Device::Cpu);
            assert_eq!(t.size(), [3, 1, 32, 32]);
            assert_eq!(Vec::<f32>::try_from(&known).unwrap(), [1.0, 1.0, 0.0]);
            let at = |n: i64, x: i64, y: i64| t.double_value(&[n, 0, y, x]);
            // Disc centre (12.5, 16) at quarter scale, its edge ~10 px out; mirrored: x → 31 − x.
            let x = |x: i64| if flip { 31 - x } else { x };
            assert!(at(0, x(12), 16) < 0.05, "inside the pasted face");
            assert!(at(0, x(12), 6) > 0.5, "on the edge above");
            assert!(at(0, x(2), 16) > 0.5, "on the edge to the left");
            assert!(at(0, x(28), 16) < 0.05, "well outside");
            assert_eq!(t.get(1).abs().sum(Kind::Float).double_value(&[]), 0.0);
        }
    }

    #[test]
    fn the_boundary_head_trains_beside_the_detector_and_is_not_saved_with_it() {
        let spec = model_spec::fake_detector::preset("meso4").unwrap();
        let landmarks = spec.crop.template_px();
        let samples: Vec<Sample> = (0..4u8)
            .map(|i| Sample {
                crop: detector_test_crop([60 + 40 * i, 90, 120]),
                landmarks,
                kind: SampleKind::Real,
                video: i as usize % 2,
                late: false,
                at: FaceAt::default(),
                donor: None,
            })
            .collect();
        // Only reals: the drawer makes self-blends of them.
        let mut with_sbi = samples.clone();
        with_sbi.push(Sample {
            kind: SampleKind::Sbi,
            ..samples[0].clone()
        });
        let train: Vec<&Sample> = with_sbi.iter().collect();
        let o = FitOptions {
            steps: 3,
            batch: 4,
            lr: 1e-3,
            boundary_weight: 1.0,
            device: Device::Cpu,
        };
        let model = fit(&spec, &train, &o, 1);
        let names: Vec<String> = model.vars.variables().into_keys().collect();
        assert!(!names.is_empty());
        assert!(names.iter().all(|n| n.starts_with("detector")), "{names:?}");
        let p = scores(&model, &train);
        assert!(p.iter().all(|p| p.is_finite() && (0.0..=1.0).contains(p)));
    }
}
