//! Between images and tensors: RGB crops in and out of `[N, 3, S, S]` float tensors in 0..1,
//! scalars read back to the host in one copy, and a model's weights as the plain floats the
//! ONNX writer takes.

use image::RgbImage;
use model_spec::onnx::Weights;
use tch::{Device, Kind, Tensor};

/// Stacks RGB crops (all the same size) into a `[N, 3, S, S]` float tensor in 0..1.
pub fn to_tensor(images: &[RgbImage], device: Device) -> Tensor {
    let (w, h) = images.first().map_or((0, 0), |i| i.dimensions());
    let mut data = Vec::with_capacity(images.len() * (3 * w * h) as usize);
    for img in images {
        for c in 0..3 {
            data.extend(img.pixels().map(|p| p.0[c] as f32 / 255.0));
        }
    }
    Tensor::from_slice(&data)
        .reshape([images.len() as i64, 3, h as i64, w as i64])
        .to_device(device)
}

/// `[3, H, W]` in 0..1 → RGB image.
pub fn from_tensor(t: &Tensor) -> RgbImage {
    let t = (t.clamp(0.0, 1.0) * 255.0)
        .round()
        .to_kind(Kind::Uint8)
        .to_device(Device::Cpu)
        .contiguous();
    let (h, w) = (t.size()[1] as u32, t.size()[2] as u32);
    let data: Vec<u8> = Vec::<u8>::try_from(t.flatten(0, -1)).unwrap_or_default();
    let n = (w * h) as usize;
    RgbImage::from_fn(w, h, |x, y| {
        let i = (y * w + x) as usize;
        let at = |k: usize| data.get(k).copied().unwrap_or(0);
        image::Rgb([at(i), at(n + i), at(2 * n + i)])
    })
}

/// A float tensor's values on the host, flattened.
pub fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(
        t.to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous()
            .flatten(0, -1),
    )
    .unwrap_or_default()
}

/// Scalar tensors as host numbers in one device→host copy (on CUDA each read is a sync);
/// NaN for all of them if the copy fails.
pub fn to_host<T: std::borrow::Borrow<Tensor>>(scalars: &[T]) -> Vec<f64> {
    Vec::<f64>::try_from(
        Tensor::stack(scalars, 0)
            .detach()
            .to_kind(Kind::Double)
            .to_device(Device::Cpu),
    )
    .unwrap_or_else(|_| vec![f64::NAN; scalars.len()])
}

/// Every variable of `vars` as plain floats, keyed by `/`-joined path (tch joins with `.`).
pub fn weights_of(vars: &tch::nn::VarStore) -> Weights {
    let tensors = vars
        .variables()
        .into_iter()
        .map(|(name, t)| (name.replace('.', "/"), (t.size(), to_vec(&t))))
        .collect();
    Weights { tensors }
}
