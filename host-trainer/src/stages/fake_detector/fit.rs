//! Fitting a fake detector: Adam on binary cross-entropy, batches drawn on a second thread.

use image::RgbImage;
use tch::nn::Module;
use tch::{Device, Reduction, Tensor};

use super::batches::{Batch, BatchDrawer};
use super::data::Sample;
use crate::model::fake_detector::FakeDetector;
use crate::model::optim::Adam;
use crate::model::tensors::to_tensor;
use model_spec::FakeDetectorSpec;

/// Fits a fresh detector on `train` (reals and fakes; see [`BatchDrawer`]). Batches are made on
/// a second thread while the network trains on the previous one.
pub fn fit(
    spec: &FakeDetectorSpec,
    train: &[&Sample],
    steps: usize,
    batch: usize,
    lr: f64,
    seed: u64,
    device: Device,
) -> FakeDetector {
    tch::manual_seed(seed as i64);
    let model = FakeDetector::new(spec, device);
    let mut opt = Adam::new(&model.vars, lr, (0.9, 0.999));
    let mut drawer = BatchDrawer::new(train, batch, seed);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(2);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for _ in 0..steps {
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
            let p = model.net.forward(&x).clamp(1e-6, 1.0 - 1e-6);
            let loss = p.binary_cross_entropy::<Tensor>(&y, None, Reduction::Mean);
            opt.zero_grad();
            loss.backward();
            opt.step();
        }
    });
    model
}

/// Fake probability of every crop of `samples`.
pub fn scores(model: &FakeDetector, samples: &[&Sample]) -> Vec<f32> {
    let crops: Vec<&RgbImage> = samples.iter().map(|s| &s.crop).collect();
    model.predict(&crops)
}
