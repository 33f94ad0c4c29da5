//! Loading a bundle's ONNX models (swap, detector) into tract, host and device alike.
//!
//! int8 bundles store weights as `DequantizeLinear(int8, scale, zero)`. tract folds such
//! constant subgraphs to float only for tensors under 4 MiB and otherwise dequantises on every
//! run (~7× slower), so [`fold_weight_dequantize`] does it for every weight at load: the file
//! stays 4× smaller, inference runs float kernels on the dequantised weights. The activations'
//! fake quantisation is dropped too ([`strip_activation_qdq`]): tract has no faster integer path
//! on x86 to use it for, so an int8 bundle runs as fast as f32 with int8-rounded weights.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tract_onnx::pb::{tensor_proto::DataType, ModelProto, TensorProto, ValueInfoProto};
use tract_onnx::prelude::*;

use crate::{FacekitError, Result};

type Plan = Arc<TypedSimplePlan>;

/// A loaded model with a fixed batch size.
pub struct OnnxModel {
    plan: Plan,
    /// Shapes of every input in graph order, batch included.
    pub input_shapes: Vec<Vec<usize>>,
    /// How many weight tensors were dequantised at load.
    pub folded: usize,
}

fn bad(name: &str, detail: impl std::fmt::Display) -> FacekitError {
    FacekitError::BadModel {
        path: name.to_owned(),
        detail: detail.to_string(),
    }
}

/// A float initializer `name` of shape `dims` holding `values`.
fn f32_initializer(name: String, dims: Vec<i64>, values: &[f32]) -> TensorProto {
    TensorProto {
        name,
        dims,
        data_type: DataType::Float as i32,
        raw_data: values.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn raw_f32(t: &TensorProto) -> Vec<f32> {
    if !t.float_data.is_empty() {
        return t.float_data.clone();
    }
    t.raw_data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Integer values of an int8/uint8 tensor (raw or in `int32_data`).
fn raw_int8(t: &TensorProto) -> Option<Vec<f32>> {
    let signed = t.data_type == DataType::Int8 as i32;
    if !signed && t.data_type != DataType::Uint8 as i32 {
        return None;
    }
    if !t.int32_data.is_empty() {
        return Some(t.int32_data.iter().map(|&v| v as f32).collect());
    }
    Some(
        t.raw_data
            .iter()
            .map(|&b| if signed { b as i8 as f32 } else { b as f32 })
            .collect(),
    )
}

/// Rewrites every stride-1 `Conv` with at most 8 output channels, at least 16 input channels and
/// a k×k kernel (k > 1) into
/// a 1×1 convolution to `k²·out` channels, one per kernel tap, followed by the sum of the taps'
/// shifted groups ([`crate::tract_ops::tap_sum`]): the same arithmetic, but as one wide matrix
/// product.
/// tract lowers a narrow k×k convolution to an im2col product whose output width is the channel
/// count, so its kernel tiles run mostly empty: lite's last layer (5×5, 64 → 4, 52 of its 174
/// MFLOP) ran at 10.7 GFLOP/s, the rest of the model at 40–80. Needs the weights as float
/// initializers (run after [`fold_weight_dequantize`]). Returns how many convolutions it rewrote.
pub fn split_narrow_convs(model: &mut ModelProto) -> usize {
    let Some(graph) = model.graph.as_mut() else {
        return 0;
    };
    let ints = |n: &tract_onnx::pb::NodeProto, name: &str| -> Option<Vec<i64>> {
        n.attribute
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.ints.clone())
    };
    let int = |n: &tract_onnx::pb::NodeProto, name: &str| -> Option<i64> {
        n.attribute.iter().find(|a| a.name == name).map(|a| a.i)
    };
    let ints_attr = |name: &str, ints: Vec<i64>| tract_onnx::pb::AttributeProto {
        name: name.into(),
        r#type: tract_onnx::pb::attribute_proto::AttributeType::Ints as i32,
        ints,
        ..Default::default()
    };
    let mut rewritten = 0;
    let mut nodes = Vec::with_capacity(graph.node.len());
    for node in std::mem::take(&mut graph.node) {
        let weight = (node.op_type == "Conv")
            .then(|| node.input.get(1))
            .flatten()
            .and_then(|w| graph.initializer.iter().find(|t| &t.name == w))
            .filter(|w| w.data_type == DataType::Float as i32 && w.dims.len() == 4);
        let Some(weight) = weight else {
            nodes.push(node);
            continue;
        };
        let (cout, cin, kh, kw) = (
            weight.dims[0],
            weight.dims[1],
            weight.dims[2],
            weight.dims[3],
        );
        let pads = ints(&node, "pads").unwrap_or_else(|| vec![0; 4]);
        let plain = ints(&node, "strides").is_none_or(|s| s.iter().all(|&v| v == 1))
            && ints(&node, "dilations").is_none_or(|d| d.iter().all(|&v| v == 1))
            && int(&node, "group").unwrap_or(1) == 1
            && node
                .attribute
                .iter()
                .all(|a| a.name != "auto_pad" || a.s.is_empty() || a.s == b"NOTSET")
            && pads.len() == 4
            && pads.iter().all(|&p| (0..kh.max(kw)).contains(&p));
        let w = raw_f32(weight);
        // Few input channels (a detector's first layer) gain nothing from the wide product.
        if !plain
            || !(1..=8).contains(&cout)
            || cin < 16
            || kh * kw < 4
            || node.output.len() != 1
            || w.len() as i64 != cout * cin * kh * kw
        {
            nodes.push(node);
            continue;
        }
        let bias = node
            .input
            .get(2)
            .filter(|b| !b.is_empty())
            .and_then(|b| graph.initializer.iter().find(|t| &t.name == b))
            .map(raw_f32)
            .unwrap_or_else(|| vec![0.0; cout as usize]);
        if bias.len() as i64 != cout {
            nodes.push(node);
            continue;
        }
        let (cout, cin, kh, kw) = (cout as usize, cin as usize, kh as usize, kw as usize);
        let taps = kh * kw;
        // Tap t = (i, j) owns channels t·cout .. (t+1)·cout of the 1×1 product.
        let mut w1 = vec![0f32; taps * cout * cin];
        for c in 0..cout {
            for k in 0..cin {
                for t in 0..taps {
                    w1[(t * cout + c) * cin + k] = w[(c * cin + k) * taps + t];
                }
            }
        }
        // The bias once per output pixel: on the centre tap, which is never in the padding.
        let mut b1 = vec![0f32; taps * cout];
        let centre = (pads[0] as usize) * kw + pads[1] as usize;
        b1[centre * cout..(centre + 1) * cout].copy_from_slice(&bias);
        let base = format!("{}.taps", node.name);
        let product = format!("{base}.product");
        graph.initializer.push(f32_initializer(
            format!("{base}.w"),
            vec![(taps * cout) as i64, cin as i64, 1, 1],
            &w1,
        ));
        graph.initializer.push(f32_initializer(
            format!("{base}.b"),
            vec![(taps * cout) as i64],
            &b1,
        ));
        nodes.push(tract_onnx::pb::NodeProto {
            op_type: "Conv".into(),
            name: format!("{base}.conv"),
            input: vec![
                node.input[0].clone(),
                format!("{base}.w"),
                format!("{base}.b"),
            ],
            output: vec![product.clone()],
            ..Default::default()
        });
        nodes.push(tract_onnx::pb::NodeProto {
            op_type: crate::tract_ops::tap_sum::OP_TYPE.into(),
            name: format!("{base}.sum"),
            input: vec![product],
            output: vec![node.output[0].clone()],
            attribute: vec![
                ints_attr("kernel_shape", vec![kh as i64, kw as i64]),
                ints_attr("pads", pads),
            ],
            ..Default::default()
        });
        rewritten += 1;
    }
    graph.node = nodes;
    rewritten
}

/// Rewrites every `Gemm(x, DequantizeLinear(int8 W), b, transB=1)` whose int8 weights are
/// per-output-channel (or per-tensor) initializers with zero points 0 into one
/// [`crate::tract_ops::int8_dense`] node that keeps the weights int8: a quarter of the memory
/// read per run of a memory-bound layer, the same values up to rounding order. Run before
/// [`fold_weight_dequantize`], which then folds only what is left. Returns how many it rewrote.
pub fn keep_int8_dense(model: &mut ModelProto) -> usize {
    let Some(graph) = model.graph.as_mut() else {
        return 0;
    };
    let inits: HashMap<String, usize> = graph
        .initializer
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let init = |name: &str| inits.get(name).map(|&i| &graph.initializer[i]);
    // Dequantized int8 weight matrices: output name → (int8 weights, scales).
    let mut int8_weights: HashMap<String, (String, Vec<f32>)> = HashMap::new();
    for node in &graph.node {
        if node.op_type != "DequantizeLinear" || node.input.len() < 2 || node.output.len() != 1 {
            continue;
        }
        let (Some(q), Some(scale)) = (init(&node.input[0]), init(&node.input[1])) else {
            continue;
        };
        let axis = node
            .attribute
            .iter()
            .find(|a| a.name == "axis")
            .map_or(1, |a| a.i);
        let zero_free = match node.input.get(2).filter(|z| !z.is_empty()) {
            None => true,
            Some(z) => init(z)
                .and_then(raw_int8)
                .is_some_and(|z| z.iter().all(|&v| v == 0.0)),
        };
        let scale = raw_f32(scale);
        let rows = q.dims.first().copied().unwrap_or(0);
        let scales = match scale.len() {
            1 => vec![scale[0]; rows.max(0) as usize],
            n if n as i64 == rows && (axis == 0 || axis == -2) => scale,
            _ => continue,
        };
        let plain = q.data_type == DataType::Int8 as i32 && q.dims.len() == 2;
        if plain && rows > 0 && q.dims[1] > 0 && zero_free {
            int8_weights.insert(node.output[0].clone(), (node.input[0].clone(), scales));
        }
    }
    let attr = |n: &tract_onnx::pb::NodeProto, name: &str| {
        n.attribute.iter().find(|a| a.name == name).cloned()
    };
    let mut added = Vec::new();
    let mut rewritten = 0;
    for node in graph.node.iter_mut() {
        let plain = node.op_type == "Gemm"
            && attr(node, "transB").is_some_and(|a| a.i == 1)
            && attr(node, "transA").is_none_or(|a| a.i == 0)
            && attr(node, "alpha").is_none_or(|a| a.f == 1.0)
            && attr(node, "beta").is_none_or(|a| a.f == 1.0)
            && (2..=3).contains(&node.input.len());
        let Some((q, scales)) = plain.then(|| int8_weights.get(&node.input[1])).flatten() else {
            continue;
        };
        let bias = match node.input.get(2).filter(|b| !b.is_empty()) {
            None => vec![0.0; scales.len()],
            Some(b) => match init(b) {
                Some(t) if t.data_type == DataType::Float as i32 => raw_f32(t),
                _ => continue,
            },
        };
        if bias.len() != scales.len() {
            continue;
        }
        let base = format!("{}.int8", node.name);
        let vector = |name: String, v: &[f32]| f32_initializer(name, vec![v.len() as i64], v);
        added.push(vector(format!("{base}.scale"), scales));
        added.push(vector(format!("{base}.bias"), &bias));
        *node = tract_onnx::pb::NodeProto {
            op_type: crate::tract_ops::int8_dense::OP_TYPE.into(),
            name: node.name.clone(),
            input: vec![
                node.input[0].clone(),
                q.clone(),
                format!("{base}.scale"),
                format!("{base}.bias"),
            ],
            output: node.output.clone(),
            ..Default::default()
        };
        rewritten += 1;
    }
    graph.initializer.extend(added);
    // The dequantisations only the rewritten layers read go too.
    let used: HashSet<String> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .chain(graph.output.iter().map(|o| o.name.clone()))
        .collect();
    graph.node.retain(|n| match n.output.first() {
        Some(out) if int8_weights.contains_key(out) => used.contains(out),
        _ => true,
    });
    rewritten
}

/// Removes every activation `QuantizeLinear` → `DequantizeLinear` pair (fake quantisation),
/// wiring the consumers to the float input. tract 0.23 on x86 has no integer kernels faster
/// than its f32 ones (QLinearConv measured slower), so with weights folded the pairs only
/// round activations in float: ~20% of lite's time for a slightly worse face. What remains is
/// weight-only int8, as `export` measures it. Returns how many pairs were removed.
pub fn strip_activation_qdq(model: &mut ModelProto) -> usize {
    let Some(graph) = model.graph.as_mut() else {
        return 0;
    };
    let outputs: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let consumers = |name: &str, nodes: &[tract_onnx::pb::NodeProto]| -> Vec<usize> {
        (0..nodes.len())
            .filter(|&i| nodes[i].input.iter().any(|x| x == name))
            .collect()
    };
    let mut rename: HashMap<String, String> = HashMap::new();
    let mut drop: HashSet<usize> = HashSet::new();
    for (qi, q) in graph.node.iter().enumerate() {
        if q.op_type != "QuantizeLinear" || q.input.is_empty() || q.output.len() != 1 {
            continue;
        }
        let users = consumers(&q.output[0], &graph.node);
        let all_dq = !users.is_empty()
            && users.iter().all(|&u| {
                let n = &graph.node[u];
                n.op_type == "DequantizeLinear"
                    && n.input.first() == Some(&q.output[0])
                    && n.output.len() == 1
                    && !outputs.contains(&n.output[0])
            });
        if !all_dq || outputs.contains(&q.output[0]) {
            continue;
        }
        drop.insert(qi);
        for u in users {
            drop.insert(u);
            rename.insert(graph.node[u].output[0].clone(), q.input[0].clone());
        }
    }
    let pairs = drop
        .iter()
        .filter(|&&i| graph.node[i].op_type == "QuantizeLinear")
        .count();
    let nodes = std::mem::take(&mut graph.node);
    graph.node = nodes
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, mut n)| {
            for x in n.input.iter_mut() {
                if let Some(to) = rename.get(x) {
                    *x = to.clone();
                }
            }
            n
        })
        .collect();
    pairs
}

/// Replaces every `DequantizeLinear` whose inputs are all initializers with its float result.
/// Returns how many were folded.
pub fn fold_weight_dequantize(model: &mut ModelProto) -> Result<usize> {
    let Some(graph) = model.graph.as_mut() else {
        return Ok(0);
    };
    let inits: HashMap<String, usize> = graph
        .initializer
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut folded = Vec::new();
    let mut keep = Vec::with_capacity(graph.node.len());
    for node in std::mem::take(&mut graph.node) {
        let constant = node.op_type == "DequantizeLinear"
            && node.input.iter().all(|i| inits.contains_key(i))
            && node.input.len() >= 2;
        if !constant {
            keep.push(node);
            continue;
        }
        let get = |k: usize| {
            node.input
                .get(k)
                .and_then(|n| inits.get(n))
                .and_then(|&i| graph.initializer.get(i))
        };
        let (Some(q), Some(scale)) = (get(0), get(1)) else {
            keep.push(node);
            continue;
        };
        let Some(values) = raw_int8(q) else {
            keep.push(node);
            continue;
        };
        let scale = raw_f32(scale);
        let zero = get(2)
            .and_then(raw_int8)
            .unwrap_or_else(|| vec![0.0; scale.len()]);
        let axis = node
            .attribute
            .iter()
            .find(|a| a.name == "axis")
            .map(|a| a.i)
            .unwrap_or(1);
        let dims = &q.dims;
        // Elements per step along `axis`, and the axis length (1 for per-tensor).
        let (inner, along) = if scale.len() == 1 {
            (values.len().max(1), 1)
        } else {
            let axis = if axis < 0 {
                axis + dims.len() as i64
            } else {
                axis
            };
            let Some(axis) = usize::try_from(axis).ok().filter(|&a| a < dims.len()) else {
                return Err(bad(&node.name, "DequantizeLinear axis outside the tensor"));
            };
            let inner: i64 = dims[axis + 1..].iter().product();
            match (usize::try_from(inner), usize::try_from(dims[axis])) {
                (Ok(i), Ok(a)) if i > 0 && a > 0 => (i, a),
                _ => return Err(bad(&node.name, "DequantizeLinear tensor has no elements")),
            }
        };
        if scale.len() != along || zero.len() != along {
            return Err(bad(
                &node.name,
                "DequantizeLinear scale/zero-point length does not match its axis",
            ));
        }
        let data: Vec<f32> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = (i / inner) % along;
                (v - zero[c]) * scale[c]
            })
            .collect();
        folded.push(f32_initializer(node.output[0].clone(), dims.clone(), &data));
    }
    graph.node = keep;
    let count = folded.len();
    graph.initializer.extend(folded);
    // Drop the int8 tensors nothing reads any more.
    let used: HashSet<&String> = graph.node.iter().flat_map(|n| n.input.iter()).collect();
    let outputs: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let used: HashSet<String> = used.into_iter().cloned().collect();
    graph
        .initializer
        .retain(|t| used.contains(&t.name) || outputs.contains(&t.name));
    Ok(count)
}

/// tract's ONNX loader, with the instruction sets its kernels may use settled first: tract
/// 0.23.9's AMX int8 matrix kernel (`avx512amx_mmm_i32_8x8`, picked for integer `QLinearConv`
/// on Sapphire Rapids and later) crashed with SIGSEGV in 2 of 10 runs of model-spec's
/// reference tests here, always with several threads running int8 graphs at once. The booth
/// never runs it (int8 weights are folded to float), so it is left out; int8 graphs fall back
/// to tract's AVX-512 integer kernels. A `TRACT_CPU_ISA` in the environment still wins.
pub fn onnx() -> tract_onnx::Onnx {
    static SETTLED: std::sync::Once = std::sync::Once::new();
    SETTLED.call_once(|| {
        #[cfg(target_arch = "x86_64")]
        if let Err(e) =
            tract_onnx::tract_core::knobs::set_config_global("TRACT_CPU_ISA", "-amx-int8,-amx-bf16")
        {
            tracing::warn!("tract may use AMX kernels: {e}");
        }
    });
    let mut onnx = tract_onnx::onnx();
    crate::tract_ops::register(&mut onnx);
    onnx
}

/// Threads tract uses for matrix products from now on, process-wide (1 = no pool).
pub fn set_threads(threads: usize) {
    use tract_linalg::multithread::{set_default_executor, Executor};
    set_default_executor(if threads > 1 {
        Executor::multithread(threads)
    } else {
        Executor::SingleThread
    });
}

/// An input's shape: its fixed dimensions (each a plausible size: a negative or huge one
/// would allocate without bound at the first run) and `batch` for a symbolic one.
fn input_dims(name: &str, input: &ValueInfoProto, batch: usize) -> Result<Vec<usize>> {
    let dims = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(tract_onnx::pb::type_proto::Value::TensorType(t)) => {
            t.shape.as_ref().map(|s| s.dim.clone()).unwrap_or_default()
        }
        _ => return Err(bad(name, format!("input {:?} is not a tensor", input.name))),
    };
    dims.iter()
        .map(|d| match d.value {
            Some(tract_onnx::pb::tensor_shape_proto::dimension::Value::DimValue(v)) => {
                usize::try_from(v)
                    .ok()
                    .filter(|v| (1..=8192).contains(v))
                    .ok_or_else(|| bad(name, format!("input dimension {v} out of range")))
            }
            _ => Ok(batch),
        })
        .collect()
}

impl OnnxModel {
    /// Parses ONNX `bytes` (named `name` in errors), folds int8 weights when `fold`, and
    /// optimises for `batch` inputs.
    pub fn from_bytes(name: &str, bytes: &[u8], batch: usize, fold: bool) -> Result<Self> {
        let onnx = onnx();
        let mut proto = onnx
            .proto_model_for_read(&mut &bytes[..])
            .map_err(|e| bad(name, e.root_cause()))?;
        let folded = rewrite_for_tract(&mut proto, fold)?;
        let inputs = proto
            .graph
            .as_ref()
            .map(|g| g.input.clone())
            .unwrap_or_default();
        if inputs.is_empty() {
            return Err(bad(name, "graph has no input"));
        }
        let input_shapes = inputs
            .iter()
            .map(|input| input_dims(name, input, batch))
            .collect::<Result<Vec<_>>>()?;
        let plan = onnx
            .model_for_proto_model(&proto)
            .and_then(|mut m| {
                for (i, shape) in input_shapes.iter().enumerate() {
                    m.set_input_fact(i, f32::fact(shape).into())?;
                }
                Ok(m)
            })
            .and_then(crate::tract_ops::optimise)
            .and_then(|m| m.into_runnable())
            .map_err(|e| bad(name, e.root_cause()))?;
        Ok(Self {
            plan,
            input_shapes,
            folded,
        })
    }

    pub fn from_path(path: &std::path::Path, batch: usize, fold: bool) -> Result<Self> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| FacekitError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::from_bytes(&shown, &bytes, batch, fold)
    }

    /// Shape of the first input (the image), batch included.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shapes[0]
    }

    /// Runs a single-input model on `input` (row-major, [`OnnxModel::input_shape`]); every output
    /// flattened, in graph order.
    pub fn run(&self, input: Vec<f32>) -> Result<Vec<Vec<f32>>> {
        self.run_inputs(vec![input])
    }

    /// Runs on `input` for the first input and zeros for every further one (a swap graph's
    /// `visitor_offset`: the person it was trained on); every output flattened, in graph order.
    pub fn run_with_zeros_after(&self, input: Vec<f32>) -> Result<Vec<Vec<f32>>> {
        let mut inputs = vec![input];
        inputs.extend(
            self.input_shapes[1..]
                .iter()
                .map(|s| vec![0.0; s.iter().product()]),
        );
        self.run_inputs(inputs)
    }

    /// Runs on one row-major vector per input (`input_shapes`, graph order); every output
    /// flattened, in graph order.
    pub fn run_inputs(&self, inputs: Vec<Vec<f32>>) -> Result<Vec<Vec<f32>>> {
        if inputs.len() != self.input_shapes.len() {
            return Err(FacekitError::Inference(format!(
                "the model takes {} inputs, {} given",
                self.input_shapes.len(),
                inputs.len()
            )));
        }
        let tensors = inputs
            .into_iter()
            .zip(&self.input_shapes)
            .map(|(data, shape)| {
                tract_ndarray::ArrayD::from_shape_vec(shape.clone(), data)
                    .map(|x| Tensor::from(x).into())
                    .map_err(|e| FacekitError::Inference(e.to_string()))
            })
            .collect::<Result<TVec<TValue>>>()?;
        let outs = self
            .plan
            .run(tensors)
            .map_err(|e| FacekitError::Inference(e.root_cause().to_string()))?;
        outs.iter()
            .map(|t| {
                t.to_plain_array_view::<f32>()
                    .map(|v| v.iter().copied().collect())
                    .map_err(|e| FacekitError::Inference(e.to_string()))
            })
            .collect()
    }
}

/// What loading does to a graph before tract optimises it: with `fold`, activation
/// fake-quantisation goes, dense layers keep their int8 weights and every other int8 weight
/// becomes float; narrow convolutions are split into taps.
/// Returns how many weight tensors were folded.
fn rewrite_for_tract(proto: &mut ModelProto, fold: bool) -> Result<usize> {
    let folded = if fold {
        strip_activation_qdq(proto);
        keep_int8_dense(proto);
        fold_weight_dequantize(proto)?
    } else {
        0
    };
    split_narrow_convs(proto);
    Ok(folded)
}

/// One node of an optimised plan: its time per run and its arithmetic from tract's cost model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpCost {
    pub node: String,
    pub op: String,
    /// Milliseconds per run (measured, with the small overhead of timing each node).
    pub ms: f64,
    /// Floating-point operations per run (2 per multiply-add); 0 for data movement.
    pub flops: f64,
}

/// Where tract spends a run of the model at `path` on a `shape` input (int8 weights folded when
/// `fold`): every node's time over `runs` runs and its FLOPs, in plan order.
pub fn profile_ops(
    path: &std::path::Path,
    shape: &[usize],
    fold: bool,
    runs: usize,
) -> Result<Vec<OpCost>> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| FacekitError::Io {
        path: name.clone(),
        source,
    })?;
    let onnx = onnx();
    let mut proto = onnx
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|e| bad(&name, e.root_cause()))?;
    rewrite_for_tract(&mut proto, fold)?;
    let plan = onnx
        .model_for_proto_model(&proto)
        .and_then(|m| m.with_input_fact(0, f32::fact(shape).into()))
        .and_then(crate::tract_ops::optimise)
        .and_then(|m| m.into_runnable())
        .map_err(|e| bad(&name, e.root_cause()))?;
    profile_plan(&plan, shape, runs)
}

/// Per-node time (mean of `runs` after two warm-up runs, on a constant `shape` input) and
/// FLOPs of an optimised plan.
pub fn profile_plan(plan: &Plan, shape: &[usize], runs: usize) -> Result<Vec<OpCost>> {
    let model = plan.model();
    let mut costs: Vec<OpCost> = model
        .nodes()
        .iter()
        .map(|node| {
            let flops = model
                .node_input_facts(node.id)
                .and_then(|facts| node.op.cost(&facts))
                .map(|c| {
                    c.iter()
                        .filter(|(k, _)| matches!(k, tract_onnx::tract_core::ops::Cost::FMA(_)))
                        .filter_map(|(_, n)| n.to_i64().ok())
                        .sum::<i64>() as f64
                        * 2.0
                })
                .unwrap_or(0.0);
            OpCost {
                node: node.name.clone(),
                op: node.op.name().to_string(),
                ms: 0.0,
                flops,
            }
        })
        .collect();
    let input: Tensor = tract_ndarray::ArrayD::<f32>::from_elem(shape.to_vec(), 0.5).into();
    let fail = |e: TractError| FacekitError::Inference(e.root_cause().to_string());
    for run in 0..runs + 2 {
        let mut state = TypedSimpleState::new(plan).map_err(fail)?;
        state
            .run_plan_with_eval(
                tvec!(input.clone().into()),
                |ctx, op_state, node, inputs| {
                    let t = std::time::Instant::now();
                    let r = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                    if run >= 2 {
                        costs[node.id].ms += t.elapsed().as_secs_f64() * 1e3 / runs as f64;
                    }
                    r
                },
            )
            .map_err(fail)?;
    }
    Ok(costs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::{AttributeProto, GraphProto, NodeProto};

    fn tensor(name: &str, dims: &[i64], ty: DataType, raw: Vec<u8>) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: ty as i32,
            raw_data: raw,
            ..Default::default()
        }
    }

    /// One `DequantizeLinear` of constant int8 weights `[2, 3]` along `axis`.
    fn dequantize(axis: i64, weight_dims: &[i64]) -> ModelProto {
        let n = weight_dims.iter().product::<i64>().max(0) as usize;
        ModelProto {
            graph: Some(GraphProto {
                node: vec![NodeProto {
                    op_type: "DequantizeLinear".into(),
                    name: "dq".into(),
                    input: vec!["w".into(), "s".into(), "z".into()],
                    output: vec!["wf".into()],
                    attribute: vec![AttributeProto {
                        name: "axis".into(),
                        i: axis,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                initializer: vec![
                    tensor("w", weight_dims, DataType::Int8, vec![3; n]),
                    tensor(
                        "s",
                        &[2],
                        DataType::Float,
                        [0.5f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect(),
                    ),
                    tensor("z", &[2], DataType::Int8, vec![0, 0]),
                ],
                output: vec![tract_onnx::pb::ValueInfoProto {
                    name: "wf".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// `Conv` 24 → 4 with a `k`×`k` kernel and `pads`, on a `[1, 24, 11, 9]` input.
    fn narrow_conv(k: i64, pads: Vec<i64>) -> ModelProto {
        let (cout, cin) = (4i64, 24i64);
        let n = (cout * cin * k * k) as usize;
        let w: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 200.0)
            .collect();
        let b = [0.3f32, -0.2, 0.1, 0.05];
        let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let value = |name: &str| tract_onnx::pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(tract_onnx::pb::TypeProto {
                value: Some(tract_onnx::pb::type_proto::Value::TensorType(
                    tract_onnx::pb::type_proto::Tensor {
                        elem_type: DataType::Float as i32,
                        shape: None,
                    },
                )),
                ..Default::default()
            }),
            ..Default::default()
        };
        ModelProto {
            graph: Some(GraphProto {
                node: vec![NodeProto {
                    op_type: "Conv".into(),
                    name: "narrow".into(),
                    input: vec!["x".into(), "w".into(), "b".into()],
                    output: vec!["y".into()],
                    attribute: vec![
                        AttributeProto {
                            name: "pads".into(),
                            r#type: tract_onnx::pb::attribute_proto::AttributeType::Ints as i32,
                            ints: pads,
                            ..Default::default()
                        },
                        AttributeProto {
                            name: "kernel_shape".into(),
                            r#type: tract_onnx::pb::attribute_proto::AttributeType::Ints as i32,
                            ints: vec![k, k],
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                initializer: vec![
                    tensor("w", &[cout, cin, k, k], DataType::Float, f32s(&w)),
                    tensor("b", &[cout], DataType::Float, f32s(&b)),
                ],
                input: vec![value("x")],
                output: vec![value("y")],
                ..Default::default()
            }),
            opset_import: vec![tract_onnx::pb::OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            ..Default::default()
        }
    }

    fn run_proto(proto: &ModelProto, x: &Tensor) -> Vec<f32> {
        let plan = onnx()
            .model_for_proto_model(proto)
            .unwrap()
            .with_input_fact(0, f32::fact([1, 24, 11, 9]).into())
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let out = plan.run(tvec!(x.clone().into())).unwrap();
        out[0]
            .to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect()
    }

    #[test]
    fn a_narrow_convolution_split_into_taps_computes_the_same_values() {
        let x: Tensor = tract_ndarray::Array4::from_shape_fn((1, 24, 11, 9), |(_, c, y, x)| {
            ((c * 7 + y * 3 + x * 5) % 17) as f32 / 8.0 - 1.0
        })
        .into();
        for (k, pads) in [
            (5, vec![2, 2, 2, 2]),
            (3, vec![1, 1, 1, 1]),
            (3, vec![0, 1, 2, 0]),
        ] {
            let original = narrow_conv(k, pads.clone());
            let mut split = original.clone();
            assert_eq!(split_narrow_convs(&mut split), 1, "k {k} pads {pads:?}");
            let ops: Vec<&str> = split
                .graph
                .as_ref()
                .unwrap()
                .node
                .iter()
                .map(|n| &*n.op_type)
                .collect();
            assert_eq!(ops, ["Conv", crate::tract_ops::tap_sum::OP_TYPE]);
            let (want, got) = (run_proto(&original, &x), run_proto(&split, &x));
            assert_eq!(want.len(), got.len(), "k {k} pads {pads:?}: output size");
            let worst = want
                .iter()
                .zip(&got)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-4, "k {k} pads {pads:?}: max difference {worst}");
        }
    }

    /// `y = Gemm(x, DequantizeLinear(w, s, z), b, transB=1)` with `out` × `inn` int8 weights;
    /// `scales` per output channel (or one), zero points `zero`.
    fn int8_dense(out: usize, inn: usize, scales: &[f32], zero: i8) -> ModelProto {
        let q: Vec<u8> = (0..out * inn)
            .map(|i| ((i * 37 % 255) as i32 - 127) as i8 as u8)
            .collect();
        let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let bias: Vec<f32> = (0..out).map(|j| j as f32 / 10.0 - 1.0).collect();
        // `x` is [N, inn]: the batch named, the width fixed, as the exporter writes inputs.
        let value = |name: &str, dims: Option<usize>| {
            use tract_onnx::pb::tensor_shape_proto::{dimension::Value, Dimension};
            let shape = dims.map(|inn| tract_onnx::pb::TensorShapeProto {
                dim: vec![
                    Dimension {
                        value: Some(Value::DimParam("N".into())),
                        ..Default::default()
                    },
                    Dimension {
                        value: Some(Value::DimValue(inn as i64)),
                        ..Default::default()
                    },
                ],
            });
            tract_onnx::pb::ValueInfoProto {
                name: name.into(),
                r#type: Some(tract_onnx::pb::TypeProto {
                    value: Some(tract_onnx::pb::type_proto::Value::TensorType(
                        tract_onnx::pb::type_proto::Tensor {
                            elem_type: DataType::Float as i32,
                            shape,
                        },
                    )),
                    ..Default::default()
                }),
                ..Default::default()
            }
        };
        let int = |name: &str, i: i64| AttributeProto {
            name: name.into(),
            r#type: tract_onnx::pb::attribute_proto::AttributeType::Int as i32,
            i,
            ..Default::default()
        };
        ModelProto {
            graph: Some(GraphProto {
                node: vec![
                    NodeProto {
                        op_type: "DequantizeLinear".into(),
                        name: "dq".into(),
                        input: vec!["w".into(), "s".into(), "z".into()],
                        output: vec!["wf".into()],
                        attribute: vec![int("axis", 0)],
                        ..Default::default()
                    },
                    NodeProto {
                        op_type: "Gemm".into(),
                        name: "dense".into(),
                        input: vec!["x".into(), "wf".into(), "b".into()],
                        output: vec!["y".into()],
                        attribute: vec![int("transB", 1)],
                        ..Default::default()
                    },
                ],
                initializer: vec![
                    tensor("w", &[out as i64, inn as i64], DataType::Int8, q),
                    tensor("s", &[scales.len() as i64], DataType::Float, f32s(scales)),
                    tensor(
                        "z",
                        &[scales.len() as i64],
                        DataType::Int8,
                        vec![zero as u8; scales.len()],
                    ),
                    tensor("b", &[out as i64], DataType::Float, f32s(&bias)),
                ],
                input: vec![value("x", Some(inn))],
                output: vec![value("y", None)],
                ..Default::default()
            }),
            opset_import: vec![tract_onnx::pb::OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_dense_layer_keeps_its_int8_weights_and_computes_the_folded_values() {
        let stock = |proto: &ModelProto, x: &Tensor| -> Vec<f32> {
            let mut folded = proto.clone();
            fold_weight_dequantize(&mut folded).unwrap();
            let plan = tract_onnx::onnx()
                .model_for_proto_model(&folded)
                .unwrap()
                .with_input_fact(0, f32::fact(x.shape()).into())
                .unwrap()
                .into_optimized()
                .unwrap()
                .into_runnable()
                .unwrap();
            let y = plan.run(tvec!(x.clone().into())).unwrap();
            y[0].to_plain_array_view::<f32>()
                .unwrap()
                .iter()
                .copied()
                .collect()
        };
        let per_channel: Vec<f32> = (0..37).map(|j| 0.01 + j as f32 / 1000.0).collect();
        // (out, in, scales, zero point, batch, kept int8)
        type Case<'a> = (usize, usize, &'a [f32], i8, usize, bool);
        let cases: [Case; 4] = [
            (37, 100, &per_channel, 0, 1, true),
            (37, 100, &per_channel, 0, 3, true),
            (37, 64, &[0.02], 0, 2, true),
            // A zero point other than 0 is left to the folding.
            (37, 100, &per_channel, 5, 1, false),
        ];
        for (out, inn, scales, zero, batch, kept) in cases {
            let proto = int8_dense(out, inn, scales, zero);
            let mut rewritten = proto.clone();
            assert_eq!(
                keep_int8_dense(&mut rewritten) == 1,
                kept,
                "{out}x{inn} z {zero}"
            );
            let x: Tensor = tract_ndarray::Array2::from_shape_fn((batch, inn), |(n, i)| {
                ((n * 31 + i * 7) % 23) as f32 / 11.0 - 1.0
            })
            .into();
            let bytes = {
                use prost::Message;
                proto.encode_to_vec()
            };
            let ours = OnnxModel::from_bytes("int8 dense", &bytes, batch, true).unwrap();
            let got = ours
                .run(
                    x.to_plain_array_view::<f32>()
                        .unwrap()
                        .iter()
                        .copied()
                        .collect(),
                )
                .unwrap()
                .remove(0);
            let want = stock(&proto, &x);
            assert_eq!(got.len(), want.len());
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                worst < 1e-4,
                "{out}x{inn} batch {batch}: max |diff| {worst}"
            );
        }
    }

    #[test]
    fn activation_fake_quantisation_is_removed_and_its_consumers_rewired() {
        let node = |op: &str, i: &[&str], o: &str| NodeProto {
            op_type: op.into(),
            input: i.iter().map(|s| s.to_string()).collect(),
            output: vec![o.into()],
            ..Default::default()
        };
        let mut m = ModelProto {
            graph: Some(GraphProto {
                node: vec![
                    node("QuantizeLinear", &["x", "s", "z"], "xq"),
                    node("DequantizeLinear", &["xq", "s", "z"], "xd"),
                    node("Relu", &["xd"], "y"),
                    // A weight's DequantizeLinear has no QuantizeLinear before it: kept.
                    node("DequantizeLinear", &["w", "s", "z"], "wd"),
                ],
                output: vec![tract_onnx::pb::ValueInfoProto {
                    name: "y".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(strip_activation_qdq(&mut m), 1);
        let nodes = &m.graph.as_ref().unwrap().node;
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].op_type, "Relu");
        assert_eq!(nodes[0].input, vec!["x".to_string()]);
        assert_eq!(nodes[1].output, vec!["wd".to_string()]);
    }

    #[test]
    fn folding_takes_per_channel_scales_and_refuses_a_crafted_axis_without_panicking() {
        let mut ok = dequantize(0, &[2, 3]);
        assert_eq!(fold_weight_dequantize(&mut ok).unwrap(), 1);
        let folded = &ok.graph.as_ref().unwrap().initializer;
        let wf = folded.iter().find(|t| t.name == "wf").unwrap();
        assert_eq!(raw_f32(wf), vec![1.5, 1.5, 1.5, 6.0, 6.0, 6.0]);
        for (axis, dims) in [(5, vec![2, 3]), (-9, vec![2, 3]), (1, vec![2, 0])] {
            let mut bad = dequantize(axis, &dims);
            assert!(
                fold_weight_dequantize(&mut bad).is_err(),
                "axis {axis} dims {dims:?}"
            );
        }
    }
}
