//! The graphs a bundle ships, assembled from the spec: one swap graph per direction (shared
//! encoder + that person's decoder, outputs `rgb` and `mask`) and the fake detector's graph,
//! with the input/output descriptions the bundle manifest carries.

use shared_proto::bundle::TensorSpec;
use tract_onnx::pb::{attribute_proto::AttributeType, AttributeProto};

use crate::fake_detector::FakeDetectorSpec;
use crate::onnx::{self, GraphBuilder, LayerRanges, OnnxError, Quant, Range, Weights};
use crate::spec::{AutoencoderSpec, Shape};

/// Calibrated activation ranges of one direction's encoder and decoder layers.
pub struct SwapRanges {
    pub input: Range,
    pub encoder: Vec<LayerRanges>,
    /// The decoder's input: the encoder's output, moved by the identity shift when the graph
    /// has one.
    pub code: Range,
    pub decoder: Vec<LayerRanges>,
}

/// Name in [`Weights`] of decoder `to`'s identity shift: the mean code of `to`'s faces less
/// the mean code of the other person's, added to the encoder's output before decoder `to`.
/// Optional: a graph without it decodes the code as it comes.
pub fn identity_shift_name(to: usize) -> String {
    format!("identity_shift/to{to}")
}

/// How int8 graphs compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8Form {
    /// Float operators between Q/DQ pairs (the bundle's form; runtimes may fuse them).
    Qdq,
    /// Convolutions as explicit `QLinearConv` on uint8 tensors (integer arithmetic).
    QLinearConv,
}

pub fn swap_inputs(size: usize) -> Vec<TensorSpec> {
    let s = size as i64;
    vec![TensorSpec {
        name: "face".into(),
        shape: vec![-1, 3, s, s],
        meaning: "aligned face crop, NCHW RGB, (pixel - mean) / std per the manifest's crop normalisation (0..1)".into(),
    }]
}

pub fn swap_outputs(size: usize) -> Vec<TensorSpec> {
    let s = size as i64;
    vec![
        TensorSpec {
            name: "rgb".into(),
            shape: vec![-1, 3, s, s],
            meaning: "the target person's face, NCHW RGB in 0..1".into(),
        },
        TensorSpec {
            name: "mask".into(),
            shape: vec![-1, 1, s, s],
            meaning: "blend weight in 0..1: output = mask * rgb + (1 - mask) * input".into(),
        },
    ]
}

/// ONNX dims of one activation of a batch of one.
fn shape_dims(shape: Shape) -> Vec<i64> {
    match shape {
        Shape::Chw(c, h, w) => vec![1, c as i64, h as i64, w as i64],
        Shape::Flat(n) => vec![1, n as i64],
    }
}

/// The swap graph: shared encoder, then decoder `to`; outputs `rgb` and `mask`.
pub fn swap_graph(
    spec: &AutoencoderSpec,
    weights: &Weights,
    to: usize,
    int8: Option<(&SwapRanges, Int8Form)>,
) -> Result<onnx::Model, OnnxError> {
    let (qe, qd) = match int8 {
        None => (Quant::F32, Quant::F32),
        Some((r, form)) => {
            let qlinear = form == Int8Form::QLinearConv;
            (
                Quant::Int8 {
                    input: r.input,
                    layers: &r.encoder,
                    qlinear,
                },
                Quant::Int8 {
                    // The decoder's input is the encoder's (float) output, shifted.
                    input: r.code,
                    layers: &r.decoder,
                    qlinear,
                },
            )
        }
    };
    let mut g = GraphBuilder::default();
    let x = g.input("face", qe);
    let mut code = g.append_net(&spec.encoder, weights, "encoder", &x, qe)?;
    let shift_name = identity_shift_name(to);
    if weights.tensors.contains_key(&shift_name) {
        // The swap's identity: the source's codes carry its identity as an offset from the
        // target's (what leaks it into the target's decoder); the shift replaces that offset.
        let code_shape = spec.encoder.shapes()?.last().copied().map(shape_dims);
        let dims = code_shape.ok_or_else(|| OnnxError::MissingWeight(shift_name.clone()))?;
        let shift = weights.get(&shift_name, &dims)?.to_vec();
        let shift = g.f32_const(&shift_name, &dims, &shift);
        g.node("Add", &[&code, &shift], "identity_shifted_code", vec![]);
        code = "identity_shifted_code".into();
    }
    let out = g.append_net(&spec.decoder, weights, &format!("decoder{to}"), &code, qd)?;
    let split = g.i64_const("split_sizes", &[2], &[3, 1]);
    g.node_multi(
        "Split",
        &[&out, &split],
        &["rgb", "mask"],
        vec![AttributeProto {
            name: "axis".into(),
            r#type: AttributeType::Int as i32,
            i: 1,
            ..Default::default()
        }],
    );
    let info = |t: &TensorSpec| onnx::value_info(&t.name, &t.shape, &t.meaning);
    Ok(g.finish(
        &format!("doppel_swap_{}_to_{to}", spec.preset),
        &format!(
            "doppel face swap, preset {}: shared encoder + decoder {to}",
            spec.preset
        ),
        swap_inputs(spec.size).iter().map(info).collect(),
        swap_outputs(spec.size).iter().map(info).collect(),
    ))
}

pub fn fake_detector_inputs(size: usize) -> Vec<TensorSpec> {
    let s = size as i64;
    vec![TensorSpec {
        name: "face".into(),
        shape: vec![-1, 3, s, s],
        meaning: "aligned face crop with margin (the model entry's crop spec), NCHW RGB in 0..1"
            .into(),
    }]
}

pub fn fake_detector_outputs() -> Vec<TensorSpec> {
    vec![TensorSpec {
        name: "fake_probability".into(),
        shape: vec![-1, 1],
        meaning: "probability that the face is fake (0..1)".into(),
    }]
}

/// The fake detector's graph, weights under `detector/`.
pub fn fake_detector_graph(
    spec: &FakeDetectorSpec,
    weights: &Weights,
) -> Result<onnx::Model, OnnxError> {
    let mut g = GraphBuilder::default();
    let out = g.append_net(&spec.net, weights, "detector", "face", Quant::F32)?;
    g.node("Identity", &[&out], "fake_probability", vec![]);
    let info = |t: &TensorSpec| onnx::value_info(&t.name, &t.shape, &t.meaning);
    Ok(g.finish(
        &format!("doppel_detector_{}", spec.preset),
        &format!("doppel deepfake detector, preset {}", spec.preset),
        fake_detector_inputs(spec.crop.size as usize)
            .iter()
            .map(info)
            .collect(),
        fake_detector_outputs().iter().map(info).collect(),
    ))
}

/// Largest |a − b|; NaN when any difference is NaN (a NaN output must never pass as "close"),
/// infinite when the lengths differ.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter().zip(b).fold(0f32, |m, (x, y)| {
        let d = (x - y).abs();
        if d.is_nan() || m.is_nan() {
            f32::NAN
        } else {
            m.max(d)
        }
    })
}

/// Max and mean absolute error and PSNR (signal range 1) of `test` against `reference`.
pub fn error_stats(reference: &[f32], test: &[f32]) -> (f32, f32, f64) {
    let n = reference.len().max(1) as f64;
    let (mut max, mut sum, mut sq) = (0f32, 0f64, 0f64);
    for (r, t) in reference.iter().zip(test) {
        let d = (r - t).abs();
        max = max.max(d);
        sum += d as f64;
        sq += (d as f64) * (d as f64);
    }
    let mse = (sq / n).max(1e-12);
    (max, (sum / n) as f32, 10.0 * (1.0 / mse).log10())
}
