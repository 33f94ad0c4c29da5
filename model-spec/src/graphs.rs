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

/// Name in [`Weights`] of person `k`'s mean code (`[1, …code shape]`): where that person sits
/// in the shared code. With both people's means a swap graph moves the source's identity offset
/// to the target's and reports each face's offset, so a booth can adapt to a visitor.
pub fn code_mean_name(person: usize) -> String {
    format!("code_mean/{person}")
}

pub use shared_proto::bundle::{IDENTITY_OFFSET, VISITOR_OFFSET};

/// Whether `weights` hold both people's mean codes, so swap graphs shift identities.
pub fn has_code_means(weights: &Weights) -> bool {
    (0..2).all(|k| weights.tensors.contains_key(&code_mean_name(k)))
}

/// How int8 graphs compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8Form {
    /// Float operators between Q/DQ pairs (the bundle's form; runtimes may fuse them).
    Qdq,
    /// Convolutions as explicit `QLinearConv` on uint8 tensors (integer arithmetic).
    QLinearConv,
}

/// The swap graph's inputs; `code` is the code's shape (batch 1) when the graph shifts
/// identities ([`has_code_means`]).
pub fn swap_inputs(size: usize, code: Option<&[i64]>) -> Vec<TensorSpec> {
    let s = size as i64;
    let mut inputs = vec![TensorSpec {
        name: "face".into(),
        shape: vec![-1, 3, s, s],
        meaning: "aligned face crop, NCHW RGB, (pixel - mean) / std per the manifest's crop normalisation (0..1)".into(),
    }];
    if let Some(code) = code {
        inputs.push(TensorSpec {
            name: VISITOR_OFFSET.into(),
            shape: code.to_vec(),
            meaning: "added to every face's code before the decoder: zeros swap the person the model was trained on; for anyone else, minus the mean identity_offset of their faces".into(),
        });
    }
    inputs
}

/// The swap graph's outputs, as [`swap_inputs`].
pub fn swap_outputs(size: usize, code: Option<&[i64]>) -> Vec<TensorSpec> {
    let s = size as i64;
    let mut outputs = vec![
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
    ];
    if let Some(code) = code {
        let mut shape = code.to_vec();
        shape[0] = -1;
        outputs.push(TensorSpec {
            name: IDENTITY_OFFSET.into(),
            shape,
            meaning: "each face's code less the mean code of the person the model was trained to swap: averaged over a visitor's faces, where the visitor's identity sits".into(),
        });
    }
    outputs
}

/// The code's ONNX dims at batch 1.
pub fn code_dims(spec: &AutoencoderSpec) -> Result<Vec<i64>, OnnxError> {
    let shapes = spec.encoder.shapes()?;
    let code = shapes
        .last()
        .copied()
        .ok_or_else(|| OnnxError::MissingWeight("the encoder's output".into()))?;
    Ok(shape_dims(code))
}

/// ONNX dims of one activation of a batch of one.
fn shape_dims(shape: Shape) -> Vec<i64> {
    match shape {
        Shape::Chw(c, h, w) => vec![1, c as i64, h as i64, w as i64],
        Shape::Flat(n) => vec![1, n as i64],
    }
}

/// The swap graph: shared encoder, then decoder `to`; outputs `rgb` and `mask`. With both
/// people's mean codes ([`has_code_means`]) the code is moved by the identity shift (the
/// target's mean less the source's) and by the [`VISITOR_OFFSET`] input, and each face's
/// [`IDENTITY_OFFSET`] is a third output.
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
    let identities = has_code_means(weights);
    if identities {
        // The swap's identity: the source's codes carry its identity as an offset from the
        // target's (what leaks it into the target's decoder); the shift replaces that offset,
        // and the visitor's offset replaces the trained source's with whoever is in front.
        let dims = code_dims(spec)?;
        let target = weights.get(&code_mean_name(to), &dims)?.to_vec();
        let source = weights.get(&code_mean_name(1 - to), &dims)?.to_vec();
        let shift: Vec<f32> = target.iter().zip(&source).map(|(t, s)| t - s).collect();
        let source = g.f32_const("source_code_mean", &dims, &source);
        g.node("Sub", &[&code, &source], IDENTITY_OFFSET, vec![]);
        let shift = g.f32_const("identity_shift", &dims, &shift);
        g.node("Add", &[&code, &shift], "identity_shifted_code", vec![]);
        g.node(
            "Add",
            &["identity_shifted_code", VISITOR_OFFSET],
            "visitor_shifted_code",
            vec![],
        );
        code = "visitor_shifted_code".into();
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
    let code = identities.then(|| code_dims(spec)).transpose()?;
    Ok(g.finish(
        &format!("doppel_swap_{}_to_{to}", spec.preset),
        &format!(
            "doppel face swap, preset {}: shared encoder + decoder {to}",
            spec.preset
        ),
        swap_inputs(spec.size, code.as_deref())
            .iter()
            .map(info)
            .collect(),
        swap_outputs(spec.size, code.as_deref())
            .iter()
            .map(info)
            .collect(),
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
