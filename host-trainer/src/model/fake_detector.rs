//! The fake-face detector as a tch network: built from its spec, scoring crops in batches.

use image::RgbImage;
use model_spec::FakeDetectorSpec;
use tch::nn::{Module, VarStore};
use tch::Device;

use super::net::Net;
use super::tensors::{to_tensor, to_vec};

/// A fake detector's weights (under `detector/…`, the names the ONNX writer reads) and net.
pub struct FakeDetector {
    pub spec: FakeDetectorSpec,
    pub vars: VarStore,
    pub net: Net,
}

impl FakeDetector {
    /// Fresh (randomly initialised) weights on `device`.
    pub fn new(spec: &FakeDetectorSpec, device: Device) -> Self {
        let vars = VarStore::new(device);
        let net = Net::new(&(vars.root() / "detector"), &spec.net);
        Self {
            spec: spec.clone(),
            vars,
            net,
        }
    }

    /// Fake probability of each crop.
    pub fn predict(&self, crops: &[&RgbImage]) -> Vec<f32> {
        let _guard = tch::no_grad_guard();
        let device = self.vars.device();
        let mut out = Vec::with_capacity(crops.len());
        for chunk in crops.chunks(64) {
            let owned: Vec<RgbImage> = chunk.iter().map(|c| (*c).clone()).collect();
            out.extend(to_vec(&self.net.forward(&to_tensor(&owned, device))));
        }
        out
    }
}
