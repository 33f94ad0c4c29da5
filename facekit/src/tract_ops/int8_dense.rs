//! A dense layer whose weights stay int8: `y = s ⊙ (x · qᵀ) + b`, one scale per output. With
//! weights folded to float, lite's two dense layers (2048 → 256 → 6144) read 8.3 MB of f32 per
//! face at 11–13 GFLOP/s, memory-bound, and evict everything else from the caches; kept as int8
//! they read a quarter of that, widened to float in registers. The activations stay float, so
//! the result is the folded layer's up to rounding order.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_hir::internal::{
    check_input_arity, check_output_arity, expand, Expansion, InferenceOp, InferenceResult, Solver,
    TensorProxy,
};

/// The ONNX op type `onnx_model::keep_int8_dense` writes: inputs `x` `[N, in]`, int8 weights
/// `[out, in]`, f32 scales `[out]`, f32 bias `[out]`, all but `x` initializers.
pub const OP_TYPE: &str = "DoppelInt8Gemm";

pub fn from_onnx(
    _ctx: &ParsingContext,
    _node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((expand(OnnxInt8Gemm), vec![]))
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct OnnxInt8Gemm;

impl Expansion for OnnxInt8Gemm {
    fn name(&self) -> StaticName {
        OP_TYPE.into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 4)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].rank, 2)?;
        s.equals(&inputs[1].rank, 2)?;
        s.equals(&outputs[0].rank, 2)?;
        s.equals(&outputs[0].datum_type, f32::datum_type())?;
        s.equals(&inputs[0].shape[1], &inputs[1].shape[1])?;
        s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        s.equals(&outputs[0].shape[1], &inputs[1].shape[0])?;
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let konst = |i: usize| -> TractResult<Arc<Tensor>> {
            model
                .outlet_fact(inputs[i])?
                .konst
                .clone()
                .ok_or_else(|| format_err!("{OP_TYPE}: input {i} is not a constant"))
        };
        let (q, scale, bias) = (konst(1)?, konst(2)?, konst(3)?);
        ensure!(
            q.datum_type() == i8::datum_type() && q.rank() == 2 && q.shape()[1] > 0,
            "{OP_TYPE}: weights {:?}",
            q
        );
        let out = q.shape()[0];
        ensure!(
            scale.datum_type() == f32::datum_type() && scale.len() == out,
            "{OP_TYPE}: {} scales for {out} outputs",
            scale.len()
        );
        ensure!(
            bias.datum_type() == f32::datum_type() && bias.len() == out,
            "{OP_TYPE}: {} biases for {out} outputs",
            bias.len()
        );
        let op = Int8Dense {
            q,
            scale,
            bias,
            batched: true,
        };
        model.wire_node(prefix, op, &inputs[..1])
    }
}

/// `[N, in]` (or `[in]` once tract has dropped a batch of one) → `[N, out]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Int8Dense {
    /// `[out, in]`, i8.
    q: Arc<Tensor>,
    /// `[out]`, f32.
    scale: Arc<Tensor>,
    /// `[out]`, f32.
    bias: Arc<Tensor>,
    batched: bool,
}

impl Int8Dense {
    fn dims(&self) -> (usize, usize) {
        (self.q.shape()[0], self.q.shape()[1])
    }
}

impl Op for Int8Dense {
    fn name(&self) -> StaticName {
        OP_TYPE.into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("int8 weights {:?}", self.q.shape())])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    tract_onnx::tract_core::op_as_typed_op!();
}

impl EvalOp for Int8Dense {
    tract_onnx::tract_core::op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (out, inn) = self.dims();
        let shape = inputs[0].shape();
        ensure!(
            shape.last() == Some(&inn) && shape.len() == 1 + usize::from(self.batched),
            "{OP_TYPE} with {inn} inputs on shape {shape:?}"
        );
        let x = inputs[0].try_as_plain_ram()?.as_slice::<f32>()?;
        let q = self.q.try_as_plain_ram()?.as_slice::<i8>()?;
        let scale = self.scale.try_as_plain_ram()?.as_slice::<f32>()?;
        let bias = self.bias.try_as_plain_ram()?.as_slice::<f32>()?;
        let rows = x.len() / inn;
        let mut y = vec![0f32; rows * out];
        for (x, y) in x.chunks_exact(inn).zip(y.chunks_exact_mut(out)) {
            dot_rows(x, q, y);
            for ((y, s), b) in y.iter_mut().zip(scale).zip(bias) {
                *y = *y * s + b;
            }
        }
        let shape: TVec<usize> = if self.batched {
            tvec![rows, out]
        } else {
            tvec![out]
        };
        let y = tract_ndarray::ArrayD::from_shape_vec(&*shape, y)?;
        Ok(tvec!(Tensor::from(y).into_tvalue()))
    }
}

impl TypedOp for Int8Dense {
    tract_onnx::tract_core::as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shape = &inputs[0].shape;
        let (out, inn) = self.dims();
        ensure!(
            inputs[0].datum_type == f32::datum_type()
                && shape.rank() == 1 + usize::from(self.batched)
                && shape[shape.rank() - 1] == inn.to_dim(),
            "{OP_TYPE} with {inn} inputs on {:?}",
            inputs[0]
        );
        let mut dims: TVec<TDim> = shape.iter().cloned().collect();
        *dims.last_mut().unwrap() = out.to_dim();
        Ok(tvec!(f32::fact(dims)))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let rows: TDim = if self.batched {
            inputs[0].shape[0].clone()
        } else {
            1.into()
        };
        Ok(tvec!((Cost::FMA(f32::datum_type()), rows * self.q.len())))
    }

    fn change_axes(
        &self,
        model: &TypedModel,
        node: &TypedNode,
        _io: InOut,
        change: &AxisOp,
    ) -> TractResult<Option<AxisChangeConsequence>> {
        super::drop_batch_axis(self, model, node, change)
    }
}

/// `y[j] = Σ x · q[j]` for every row `j` of `q`, with the best instructions this CPU has (as
/// `depthwise::sum_taps`).
fn dot_rows(x: &[f32], q: &[i8], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if super::avx2_fma() {
            // SAFETY: the CPU has both features.
            return unsafe { dot_rows_avx2(x, q, y) };
        }
        dot_rows_in::<false>(x, q, y)
    }
    #[cfg(not(target_arch = "x86_64"))]
    dot_rows_in::<{ cfg!(target_arch = "aarch64") }>(x, q, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_rows_avx2(x: &[f32], q: &[i8], y: &mut [f32]) {
    dot_rows_in::<true>(x, q, y)
}

/// Lanes summed at a time: independent accumulators enough to hide the adds' latency.
const LANES: usize = 32;

#[inline(always)]
fn dot_rows_in<const FUSED: bool>(x: &[f32], q: &[i8], y: &mut [f32]) {
    for (row, y) in q.chunks_exact(x.len()).zip(y) {
        let mut acc = [0f32; LANES];
        let (xs, qs) = (x.chunks_exact(LANES), row.chunks_exact(LANES));
        let (x_rest, q_rest) = (xs.remainder(), qs.remainder());
        for (xc, qc) in xs.zip(qs) {
            let xc: &[f32; LANES] = xc.try_into().unwrap();
            let qc: &[i8; LANES] = qc.try_into().unwrap();
            for l in 0..LANES {
                acc[l] = if FUSED {
                    xc[l].mul_add(qc[l] as f32, acc[l])
                } else {
                    acc[l] + xc[l] * qc[l] as f32
                };
            }
        }
        let tail: f32 = x_rest.iter().zip(q_rest).map(|(x, &q)| x * q as f32).sum();
        *y = acc.iter().sum::<f32>() + tail;
    }
}

batched_by_field!(Int8Dense);
