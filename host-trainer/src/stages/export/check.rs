//! Is the exported graph the trained model? tract runs it; tch gives the reference.

use facekit::OnnxModel;
use model_spec::graphs::max_abs_diff;
use tch::nn::Module;
use tch::Tensor;

use crate::error::{Error, Result};
use crate::model::net::Autoencoder;
use crate::model::tensors::to_vec;
use crate::person::Person;

/// Exactness required of an f32 graph against tch.
pub const F32_TOLERANCE: f32 = 1e-4;

/// tch output of the swap into `to` (RGB then mask, concatenated per face) as plain floats.
pub fn tch_swap(model: &Autoencoder, x: &Tensor, to: Person) -> Vec<f32> {
    let _guard = tch::no_grad_guard();
    to_vec(&model.decoders[to.index()].forward(&model.shifted_code(x, to.index())))
}

/// tch's identity offset of each face for the swap into `to` (its code less the source's mean
/// code, flattened), what the graph's `identity_offset` output must give; `None` without means.
pub fn tch_identity_offset(model: &Autoencoder, x: &Tensor, to: Person) -> Option<Vec<f32>> {
    let _guard = tch::no_grad_guard();
    let means = model.code_means.as_ref()?;
    let source = means[to.other().index()].to_device(x.device());
    Some(to_vec(&(model.encoder.forward(x) - source)))
}

/// tract's `identity_offset` output on `x`, when the graph has one.
pub fn tract_identity_offset(model: &OnnxModel, x: &Tensor) -> facekit::Result<Option<Vec<f32>>> {
    Ok(model.run_with_zeros_after(to_vec(x))?.into_iter().nth(2))
}

/// tract outputs (rgb, mask) merged back into the tch layout `[N, 4, S, S]`.
pub fn tract_swap(model: &OnnxModel, x: &Tensor) -> facekit::Result<Vec<f32>> {
    let outs = model.run_with_zeros_after(to_vec(x))?;
    let n = model.input_shape().first().copied().unwrap_or(1).max(1);
    let (Some(rgb), Some(mask)) = (outs.first(), outs.get(1)) else {
        return Err(facekit::FacekitError::Inference(
            "the swap graph must output rgb and mask".into(),
        ));
    };
    let (pr, pm) = (rgb.len() / n, mask.len() / n);
    let mut merged = Vec::with_capacity(rgb.len() + mask.len());
    for i in 0..n {
        merged.extend_from_slice(&rgb[i * pr..(i + 1) * pr]);
        merged.extend_from_slice(&mask[i * pm..(i + 1) * pm]);
    }
    Ok(merged)
}

/// The model's name on a tract failure.
pub fn in_tract(model: &str) -> impl Fn(facekit::FacekitError) -> Error + '_ {
    move |source| Error::Tract {
        model: model.into(),
        source,
    }
}

/// f32 exactness of an exported graph: max |tract − tch| on random inputs (the whole input
/// range) and on real faces (the real one), in that order. NaN fails too, hence not
/// `diff > tolerance`.
pub fn f32_graph(
    name: &str,
    bytes: &[u8],
    inputs: [&Tensor; 2],
    tract: impl Fn(&OnnxModel, &Tensor) -> facekit::Result<Vec<f32>>,
    tch: impl Fn(&Tensor) -> Vec<f32>,
) -> Result<[f32; 2]> {
    let mut diffs = [0f32; 2];
    for (k, (x, what)) in inputs
        .into_iter()
        .zip(["random inputs", "real faces"])
        .enumerate()
    {
        let m = OnnxModel::from_bytes(name, bytes, x.size()[0] as usize, false)
            .map_err(in_tract(name))?;
        let diff = max_abs_diff(&tract(&m, x).map_err(in_tract(name))?, &tch(x));
        if diff.is_nan() || diff > F32_TOLERANCE {
            return Err(Error::GraphMismatch {
                model: name.to_string(),
                inputs: what,
                max_diff: diff,
                limit: F32_TOLERANCE,
            });
        }
        diffs[k] = diff;
    }
    Ok(diffs)
}
