//! ONNX graphs written from the architecture spec ([`crate::spec`]), never traced from tch:
//! every [`Layer`] maps to a fixed run of ONNX operators, reading the weights by the same
//! `l{i}/…` variable names host-trainer's tch `Net` creates.
//!
//! | spec layer | ONNX (opset 13) |
//! |---|---|
//! | `Conv` | `Conv` (pads `k/2`) |
//! | `SepConv` | `Conv` (group = channels) → `Conv` 1×1 |
//! | `Flatten` | `Flatten(axis=1)` |
//! | `Dense` | `Gemm(transB=1)` |
//! | `Reshape` | `Reshape([-1, c, h, w])` |
//! | `MaxPool` | `MaxPool(k, stride k)` |
//! | `Upscale` | conv as above → `DepthToSpace(2, CRD)` (= torch `pixel_shuffle`) |
//! | `Leaky` / `Sigmoid` | `LeakyRelu(0.1)` / `Sigmoid` |
//!
//! With [`Quant::Int8`] weights become per-output-channel symmetric int8 initializers behind
//! `DequantizeLinear`, and every layer output but the last passes a calibrated uint8
//! `QuantizeLinear → DequantizeLinear` pair: the standard QDQ form that onnxruntime runs with
//! integer kernels and that tract reads as-is.

use std::collections::HashMap;

use tract_onnx::pb::{
    self, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

use crate::spec::{keep_outside_ellipse, Act, Layer, NetSpec, Shape, SpecError};

pub const OPSET: i64 = 13;
/// ONNX IR version 7 goes with opset 13.
pub const IR_VERSION: i64 = 7;

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("weights have no variable {0:?}; the checkpoint does not belong to this spec")]
    MissingWeight(String),
    #[error("variable {name} has shape {found:?}, the spec wants {want:?}")]
    WeightShape {
        name: String,
        found: Vec<i64>,
        want: Vec<i64>,
    },
    #[error("spec: {0}")]
    Spec(#[from] SpecError),
    #[error(
        "int8 export needs one calibrated range per layer of {net}, got {got} for {want} layers"
    )]
    Ranges {
        net: String,
        got: usize,
        want: usize,
    },
}

/// Trained weights by variable path (`encoder/l0/conv/weight`), with their shapes.
#[derive(Debug, Clone, Default)]
pub struct Weights {
    pub tensors: HashMap<String, (Vec<i64>, Vec<f32>)>,
}

impl Weights {
    pub(crate) fn get(&self, name: &str, want: &[i64]) -> Result<&[f32], OnnxError> {
        let (dims, data) = self
            .tensors
            .get(name)
            .ok_or_else(|| OnnxError::MissingWeight(name.into()))?;
        if dims != want {
            return Err(OnnxError::WeightShape {
                name: name.into(),
                found: dims.clone(),
                want: want.to_vec(),
            });
        }
        Ok(data)
    }
}

/// Observed value range of one activation tensor (calibration result).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub lo: f32,
    pub hi: f32,
}

impl Range {
    /// uint8 affine parameters covering the range; zero is always exactly representable.
    pub fn uint8_params(&self) -> (f32, u8) {
        let (lo, hi) = (self.lo.min(0.0), self.hi.max(0.0));
        let scale = ((hi - lo) / 255.0).max(1e-8);
        let zero = (-lo / scale).round().clamp(0.0, 255.0) as u8;
        (scale, zero)
    }
}

/// Calibrated ranges inside one layer (host-trainer's `LayerTrace` measures them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerRanges {
    /// The layer's output (after activation): its QDQ pair.
    pub out: Range,
    /// The convolution output before pixel shuffle and activation (QLinearConv's output).
    pub conv: Range,
    /// The depthwise output of a separable layer.
    pub dw: Option<Range>,
}

/// How the graph stores weights and activations.
#[derive(Debug, Clone, Copy)]
pub enum Quant<'a> {
    F32,
    /// QDQ: int8 weights behind `DequantizeLinear`, a uint8 Q/DQ pair after each layer. With
    /// `qlinear`, convolutions become `QLinearConv` on the uint8 tensors (integer arithmetic).
    Int8 {
        input: Range,
        layers: &'a [LayerRanges],
        qlinear: bool,
    },
}

/// A uint8 tensor in the graph with its quantisation parameters.
#[derive(Debug, Clone)]
struct QTensor {
    q: String,
    scale: String,
    zero: String,
    scale_value: f32,
}

/// Accumulates nodes and initializers of one graph.
#[derive(Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

pub fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints,
        ..Default::default()
    }
}

pub fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f,
        ..Default::default()
    }
}

pub fn attr_string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: s.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn tensor_f32(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn tensor_i64(name: &str, dims: &[i64], data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Int64 as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn tensor_bytes(name: &str, dims: &[i64], ty: DataType, data: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: ty as i32,
        raw_data: data,
        ..Default::default()
    }
}

/// A float tensor value with a fixed shape; `-1` becomes the symbolic batch dimension `N`.
pub fn value_info(name: &str, shape: &[i64], doc: &str) -> ValueInfoProto {
    let dim = shape
        .iter()
        .map(|&d| tensor_shape_proto::Dimension {
            value: Some(if d < 0 {
                tensor_shape_proto::dimension::Value::DimParam("N".into())
            } else {
                tensor_shape_proto::dimension::Value::DimValue(d)
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        doc_string: doc.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
    }
}

/// Per-output-channel (axis 0) symmetric int8: scales and values.
pub fn quantize_per_channel(data: &[f32], channels: usize) -> (Vec<f32>, Vec<i8>) {
    let per = data.len() / channels;
    let mut scales = Vec::with_capacity(channels);
    let mut q = Vec::with_capacity(data.len());
    for chunk in data.chunks(per) {
        let max = chunk.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales.push(scale);
        q.extend(
            chunk
                .iter()
                .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8),
        );
    }
    (scales, q)
}

impl GraphBuilder {
    pub fn node(&mut self, op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) {
        self.node_multi(op, inputs, &[output], attrs);
    }

    pub fn node_multi(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) {
        self.nodes.push(NodeProto {
            op_type: op.into(),
            name: format!("{}_{}", outputs[0], op),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs,
            ..Default::default()
        });
    }

    pub fn f32_const(&mut self, name: &str, dims: &[i64], data: &[f32]) -> String {
        self.initializers.push(tensor_f32(name, dims, data));
        name.into()
    }

    pub fn i64_const(&mut self, name: &str, dims: &[i64], data: &[i64]) -> String {
        self.initializers.push(tensor_i64(name, dims, data));
        name.into()
    }

    /// A weight tensor: float as-is, or int8 per output channel behind `DequantizeLinear`.
    fn weight(&mut self, name: &str, dims: &[i64], data: &[f32], int8: bool) -> String {
        if !int8 {
            return self.f32_const(name, dims, data);
        }
        let channels = dims[0] as usize;
        let (scales, q) = quantize_per_channel(data, channels);
        let qname = format!("{name}_int8");
        self.initializers.push(tensor_bytes(
            &qname,
            dims,
            DataType::Int8,
            q.iter().map(|&v| v as u8).collect(),
        ));
        let s = self.f32_const(&format!("{name}_scale"), &[channels as i64], &scales);
        let zp = format!("{name}_zero");
        self.initializers.push(tensor_bytes(
            &zp,
            &[channels as i64],
            DataType::Int8,
            vec![0; channels],
        ));
        self.node(
            "DequantizeLinear",
            &[&qname, &s, &zp],
            name,
            vec![attr_int("axis", 0)],
        );
        name.into()
    }

    /// uint8 scale and zero-point constants for `range`, named after `x`.
    fn qparams(&mut self, x: &str, range: Range) -> (String, String, f32) {
        let (scale, zero) = range.uint8_params();
        let s = self.f32_const(&format!("{x}_qscale"), &[], &[scale]);
        let zp = format!("{x}_qzero");
        self.initializers
            .push(tensor_bytes(&zp, &[], DataType::Uint8, vec![zero]));
        (s, zp, scale)
    }

    fn quantize(&mut self, x: &str, range: Range) -> QTensor {
        let (scale, zero, scale_value) = self.qparams(x, range);
        let q = format!("{x}_q");
        self.node("QuantizeLinear", &[x, &scale, &zero], &q, vec![]);
        QTensor {
            q,
            scale,
            zero,
            scale_value,
        }
    }

    fn dequantize(&mut self, t: &QTensor, out: &str) {
        self.node("DequantizeLinear", &[&t.q, &t.scale, &t.zero], out, vec![]);
    }

    /// Fake-quantises activation `x` to uint8 over `range` (QDQ pair); returns the float name
    /// and the uint8 tensor.
    fn activation_qdq(&mut self, x: &str, range: Range) -> (String, QTensor) {
        let q = self.quantize(x, range);
        let dq = format!("{x}_dq");
        self.dequantize(&q, &dq);
        (dq, q)
    }

    /// `QLinearConv` of uint8 `x` with per-channel int8 weights at `path`; the uint8 result
    /// covers `y_range`. Bias becomes int32 at scale `x_scale · w_scale[c]`.
    fn qlinear_conv(
        &mut self,
        weights: &Weights,
        path: &str,
        x: &QTensor,
        (cin, cout, k, stride, groups): (usize, usize, usize, usize, usize),
        y_range: Range,
        out: &str,
    ) -> Result<QTensor, OnnxError> {
        let wdims = [cout as i64, (cin / groups) as i64, k as i64, k as i64];
        let w = weights.get(&format!("{path}/weight"), &wdims)?;
        let b = weights.get(&format!("{path}/bias"), &[cout as i64])?;
        let (scales, q) = quantize_per_channel(w, cout);
        let wq = format!("{path}/weight_int8");
        self.initializers.push(tensor_bytes(
            &wq,
            &wdims,
            DataType::Int8,
            q.iter().map(|&v| v as u8).collect(),
        ));
        let ws = self.f32_const(&format!("{path}/weight_scale"), &[cout as i64], &scales);
        let wz = format!("{path}/weight_zero");
        self.initializers.push(tensor_bytes(
            &wz,
            &[cout as i64],
            DataType::Int8,
            vec![0; cout],
        ));
        let bias: Vec<i32> = b
            .iter()
            .zip(&scales)
            .map(|(b, s)| (b / (x.scale_value * s)).round() as i32)
            .collect();
        let bname = format!("{path}/bias_int32");
        self.initializers.push(tensor_bytes(
            &bname,
            &[cout as i64],
            DataType::Int32,
            bias.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ));
        let (ys, yz, y_scale) = self.qparams(out, y_range);
        let yq = format!("{out}_q");
        let p = (k / 2) as i64;
        self.node(
            "QLinearConv",
            &[&x.q, &x.scale, &x.zero, &wq, &ws, &wz, &ys, &yz, &bname],
            &yq,
            vec![
                attr_ints("kernel_shape", vec![k as i64, k as i64]),
                attr_ints("pads", vec![p, p, p, p]),
                attr_ints("strides", vec![stride as i64, stride as i64]),
                attr_int("group", groups as i64),
            ],
        );
        Ok(QTensor {
            q: yq,
            scale: ys,
            zero: yz,
            scale_value: y_scale,
        })
    }

    /// [`Self::conv_block`] on uint8 input with `QLinearConv`; writes float `out`.
    #[allow(clippy::too_many_arguments)]
    fn qlinear_block(
        &mut self,
        weights: &Weights,
        path: &str,
        x: &QTensor,
        (cin, cout, k, stride): (usize, usize, usize, usize),
        separable: bool,
        ranges: &LayerRanges,
        out: &str,
    ) -> Result<(), OnnxError> {
        let y = if separable {
            let dw_range = ranges.dw.unwrap_or(ranges.conv);
            let mid = format!("{path}/dw_out");
            let d = self.qlinear_conv(
                weights,
                &format!("{path}/dw"),
                x,
                (cin, cin, k, stride, cin),
                dw_range,
                &mid,
            )?;
            let t = (cin, cout, 1, 1, 1);
            self.qlinear_conv(weights, &format!("{path}/pw"), &d, t, ranges.conv, out)?
        } else {
            let t = (cin, cout, k, stride, 1);
            self.qlinear_conv(weights, &format!("{path}/conv"), x, t, ranges.conv, out)?
        };
        self.dequantize(&y, out);
        Ok(())
    }

    /// Convolution with "same" padding; weights `[cout, cin/groups, k, k]` at `path/weight`.
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        weights: &Weights,
        path: &str,
        x: &str,
        (cin, cout, k, stride, groups): (usize, usize, usize, usize, usize),
        int8: bool,
        out: &str,
    ) -> Result<(), OnnxError> {
        let wdims = [cout as i64, (cin / groups) as i64, k as i64, k as i64];
        let w = weights.get(&format!("{path}/weight"), &wdims)?;
        let b = weights.get(&format!("{path}/bias"), &[cout as i64])?;
        let w = self.weight(&format!("{path}/weight"), &wdims, w, int8);
        let b = self.f32_const(&format!("{path}/bias"), &[cout as i64], b);
        let p = (k / 2) as i64;
        self.node(
            "Conv",
            &[x, &w, &b],
            out,
            vec![
                attr_ints("kernel_shape", vec![k as i64, k as i64]),
                attr_ints("pads", vec![p, p, p, p]),
                attr_ints("strides", vec![stride as i64, stride as i64]),
                attr_int("group", groups as i64),
            ],
        );
        Ok(())
    }

    /// Plain or depthwise-separable convolution as `Net` builds it under `path`.
    #[allow(clippy::too_many_arguments)]
    fn conv_block(
        &mut self,
        weights: &Weights,
        path: &str,
        x: &str,
        (cin, cout, k, stride): (usize, usize, usize, usize),
        separable: bool,
        int8: bool,
        out: &str,
    ) -> Result<(), OnnxError> {
        if separable {
            let mid = format!("{path}/dw_out");
            let dw = format!("{path}/dw");
            self.conv(weights, &dw, x, (cin, cin, k, stride, cin), int8, &mid)?;
            self.conv(
                weights,
                &format!("{path}/pw"),
                &mid,
                (cin, cout, 1, 1, 1),
                int8,
                out,
            )
        } else {
            let path = format!("{path}/conv");
            self.conv(weights, &path, x, (cin, cout, k, stride, 1), int8, out)
        }
    }

    /// Appends `spec` reading weights under `prefix` and feeding on `input`; returns the name
    /// of the last layer's output.
    pub fn append_net(
        &mut self,
        spec: &NetSpec,
        weights: &Weights,
        prefix: &str,
        input: &str,
        quant: Quant<'_>,
    ) -> Result<String, OnnxError> {
        let shapes = spec.shapes()?;
        let int8 = matches!(quant, Quant::Int8 { .. });
        let qlinear = matches!(quant, Quant::Int8 { qlinear: true, .. });
        // The current tensor quantised (when it is), and the range of its values.
        let mut xq: Option<QTensor> = None;
        let mut x_range = match quant {
            Quant::Int8 { input, .. } => input,
            Quant::F32 => Range { lo: 0.0, hi: 1.0 },
        };
        if let Quant::Int8 { layers, .. } = quant {
            if layers.len() != spec.layers.len() {
                return Err(OnnxError::Ranges {
                    net: prefix.into(),
                    got: layers.len(),
                    want: spec.layers.len(),
                });
            }
        }
        let mut x = input.to_string();
        if input.ends_with("_dq") {
            // The graph input was quantised by `Self::input`: reuse its uint8 tensor.
            let base = input.trim_end_matches("_dq");
            let (scale, _) = x_range.uint8_params();
            xq = Some(QTensor {
                q: format!("{base}_q"),
                scale: format!("{base}_qscale"),
                zero: format!("{base}_qzero"),
                scale_value: scale,
            });
        }
        for (i, (layer, shape)) in spec.layers.iter().zip(&shapes).enumerate() {
            let layer_ranges = match quant {
                Quant::Int8 { layers, .. } => Some(layers[i]),
                Quant::F32 => None,
            };
            let convolves = matches!(
                layer,
                Layer::Conv { .. } | Layer::SepConv { .. } | Layer::Upscale { .. }
            );
            if qlinear && convolves && xq.is_none() {
                xq = Some(self.quantize(&x, x_range));
            }
            let q_in = if qlinear { xq.clone() } else { None };
            let path = format!("{prefix}/l{i}");
            let cin = match *shape {
                Shape::Chw(c, _, _) => c,
                Shape::Flat(n) => n,
            };
            let pre = format!("{path}/pre");
            let (act, produced) = match *layer {
                Layer::Conv {
                    out,
                    kernel,
                    stride,
                    act,
                }
                | Layer::SepConv {
                    out,
                    kernel,
                    stride,
                    act,
                } => {
                    let separable = matches!(layer, Layer::SepConv { .. });
                    let t = (cin, out, kernel, stride);
                    match (&q_in, &layer_ranges) {
                        (Some(q), Some(r)) => {
                            self.qlinear_block(weights, &path, q, t, separable, r, &pre)?
                        }
                        _ => self.conv_block(weights, &path, &x, t, separable, int8, &pre)?,
                    }
                    (act, pre.clone())
                }
                Layer::Upscale {
                    out,
                    kernel,
                    separable,
                    act,
                } => {
                    let conv_out = format!("{path}/conv_out");
                    let t = (cin, 4 * out, kernel, 1);
                    match (&q_in, &layer_ranges) {
                        (Some(q), Some(r)) => {
                            self.qlinear_block(weights, &path, q, t, separable, r, &conv_out)?
                        }
                        _ => self.conv_block(weights, &path, &x, t, separable, int8, &conv_out)?,
                    }
                    self.node(
                        "DepthToSpace",
                        &[&conv_out],
                        &pre,
                        vec![attr_int("blocksize", 2), attr_string("mode", "CRD")],
                    );
                    (act, pre.clone())
                }
                Layer::Flatten => {
                    self.node("Flatten", &[&x], &pre, vec![attr_int("axis", 1)]);
                    (Act::None, pre.clone())
                }
                Layer::Dense { out, act } => {
                    let wdims = [out as i64, cin as i64];
                    let wname = format!("{path}/dense/weight");
                    let w = weights.get(&wname, &wdims)?;
                    let b = weights.get(&format!("{path}/dense/bias"), &[out as i64])?;
                    let w = self.weight(&wname, &wdims, w, int8);
                    let b = self.f32_const(&format!("{path}/dense/bias"), &[out as i64], b);
                    self.node("Gemm", &[&x, &w, &b], &pre, vec![attr_int("transB", 1)]);
                    (act, pre.clone())
                }
                Layer::MaxPool { size } => {
                    let k = size as i64;
                    self.node(
                        "MaxPool",
                        &[&x],
                        &pre,
                        vec![
                            attr_ints("kernel_shape", vec![k, k]),
                            attr_ints("strides", vec![k, k]),
                        ],
                    );
                    (Act::None, pre.clone())
                }
                Layer::FillEllipse { centre, axes, fill } => {
                    let Shape::Chw(_, h, w) = *shape else {
                        unreachable!("validated: a fill takes an image")
                    };
                    let dims = [1, 1, h as i64, w as i64];
                    let keep = keep_outside_ellipse(centre, axes, h, w);
                    let filled: Vec<f32> = keep.iter().map(|k| (1.0 - k) * fill).collect();
                    let keep = self.f32_const(&format!("{path}/keep"), &dims, &keep);
                    let filled = self.f32_const(&format!("{path}/fill"), &dims, &filled);
                    let kept = format!("{path}/kept");
                    self.node("Mul", &[&x, &keep], &kept, vec![]);
                    self.node("Add", &[&kept, &filled], &pre, vec![]);
                    (Act::None, pre.clone())
                }
                Layer::Reshape { c, h, w } => {
                    let s = self.i64_const(
                        &format!("{path}/shape"),
                        &[4],
                        &[-1, c as i64, h as i64, w as i64],
                    );
                    self.node("Reshape", &[&x, &s], &pre, vec![]);
                    (Act::None, pre.clone())
                }
            };
            let out = format!("{path}/out");
            match act {
                Act::None => self.node("Identity", &[&produced], &out, vec![]),
                Act::Leaky => self.node(
                    "LeakyRelu",
                    &[&produced],
                    &out,
                    vec![attr_float("alpha", 0.1)],
                ),
                Act::Sigmoid => self.node("Sigmoid", &[&produced], &out, vec![]),
            }
            x = out;
            // Reshapes do not change values; the last layer stays float for the caller.
            let last = i + 1 == spec.layers.len();
            let reshapes = matches!(layer, Layer::Flatten | Layer::Reshape { .. });
            xq = None;
            if let Some(r) = layer_ranges {
                if !reshapes {
                    x_range = r.out;
                }
                if !last && !reshapes {
                    let (dq, q) = self.activation_qdq(&x, r.out);
                    x = dq;
                    xq = Some(q);
                }
            }
        }
        Ok(x)
    }

    /// Quantises the graph input when exporting int8 (8-bit pixels are exact at scale 1/255).
    pub fn input(&mut self, name: &str, quant: Quant<'_>) -> String {
        match quant {
            Quant::F32 => name.into(),
            Quant::Int8 { input, .. } => self.activation_qdq(name, input).0,
        }
    }

    pub fn finish(
        self,
        name: &str,
        doc: &str,
        inputs: Vec<ValueInfoProto>,
        outputs: Vec<ValueInfoProto>,
    ) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: "doppel host-trainer".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: doc.into(),
            graph: Some(GraphProto {
                name: name.into(),
                node: self.nodes,
                initializer: self.initializers,
                input: inputs,
                output: outputs,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// Serialises a model to ONNX protobuf bytes.
pub fn to_bytes(model: &ModelProto) -> Vec<u8> {
    prost::Message::encode_to_vec(model)
}

/// Keeps `pb` in the public API so callers can edit graphs without naming tract themselves.
pub use pb::ModelProto as Model;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphs::max_abs_diff;

    #[test]
    fn per_channel_quantisation_keeps_each_channel_within_half_a_step() {
        let w = [0.5f32, -1.0, 0.25, 0.001, -0.002, 0.0005];
        let (scales, q) = quantize_per_channel(&w, 2);
        assert_eq!(q[1], -127);
        assert_eq!(q[4], -127);
        for (i, v) in w.iter().enumerate() {
            let back = q[i] as f32 * scales[i / 3];
            assert!((back - v).abs() <= scales[i / 3] / 2.0 + 1e-9);
        }
        assert_eq!(Range { lo: -1.0, hi: 3.0 }.uint8_params().1, 64);
        assert!(max_abs_diff(&[0.0, f32::NAN], &[0.0, 0.0]).is_nan());
    }
}
