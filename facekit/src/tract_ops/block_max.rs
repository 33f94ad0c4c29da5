//! Max pooling over non-overlapping blocks (kernel = stride, no padding): the fake detector's
//! four pools. tract 0.23's `MaxPool` walks a generic patch geometry per output and took ~40% of
//! meso4's time at 128² (0.7 of 1.6 ms, one core); here each output row is the running max of
//! its block's input rows, read straight through.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{MaxPool, PaddingSpec};
use tract_onnx::tract_core::ops::nn::DataFormat;

/// `[N, C, H, W]` → `[N, C, H/k, W/k]` (floor), the max of each `k`×`k` block (or the same
/// without N once tract has dropped a batch of one).
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct BlockMax {
    k: usize,
    input: [usize; 4],
    batched: bool,
}

/// Replaces every float max pool of `model` over non-overlapping, unpadded square blocks on a
/// known input shape with [`BlockMax`]; returns how many.
pub fn replace_block_max(model: &mut TypedModel) -> TractResult<usize> {
    super::replace_each(model, 1, BlockMax::from_pool)
}

impl BlockMax {
    fn from_pool(
        model: &TypedModel,
        node: &TypedNode,
        pool: &MaxPool,
    ) -> TractResult<Option<Self>> {
        let spec = &pool.pool_spec;
        let k = spec.kernel_shape.first().copied().unwrap_or(0);
        let zeros = |v: &[usize]| v.iter().all(|&p| p == 0);
        let unpadded = match &spec.padding {
            PaddingSpec::Valid => true,
            PaddingSpec::Explicit(before, after) => zeros(before) && zeros(after),
            PaddingSpec::ExplicitOnnxPool(before, after, ceil) => {
                zeros(before) && zeros(after) && !ceil
            }
            _ => false,
        };
        let plain = pool.with_index_outputs.is_none()
            && matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
            && spec.kernel_shape.len() == 2
            && k > 0
            && spec.kernel_shape[1] == k
            && spec
                .strides
                .as_ref()
                .is_some_and(|s| s.iter().all(|&s| s == k))
            && spec
                .dilations
                .as_ref()
                .is_none_or(|d| d.iter().all(|&d| d == 1))
            && unpadded;
        if !plain {
            return Ok(None);
        }
        let fact = model.outlet_fact(node.inputs[0])?;
        let Some(shape) = fact.shape.as_concrete() else {
            return Ok(None);
        };
        let batched = spec.data_format == DataFormat::NCHW;
        let shape = super::with_batch(shape, batched);
        if fact.datum_type != f32::datum_type() || shape.len() != 4 || shape[2] < k || shape[3] < k
        {
            return Ok(None);
        }
        Ok(Some(Self {
            k,
            input: [shape[0], shape[1], shape[2], shape[3]],
            batched,
        }))
    }

    fn output(&self) -> [usize; 4] {
        let [n, c, h, w] = self.input;
        [n, c, h / self.k, w / self.k]
    }

    /// `nchw` as the graph holds it: without the batch axis when tract dropped it.
    fn shape(&self, nchw: [usize; 4]) -> TVec<usize> {
        nchw[usize::from(!self.batched)..].into()
    }
}

/// One plane: the max over each block's `k` input rows first (whole rows, which vectorises),
/// then over each `k` columns of that. Blocks of 2 and 4 (the detector's) get their own copy
/// with the block size known to the compiler.
fn pool_plane(plane: &[f32], w: usize, k: usize, out: &mut [f32], ow: usize) {
    match k {
        2 => pool_plane_by(plane, w, 2, out, ow),
        4 => pool_plane_by(plane, w, 4, out, ow),
        _ => pool_plane_by(plane, w, k, out, ow),
    }
}

fn larger(a: f32, b: f32) -> f32 {
    if b > a {
        b
    } else {
        a
    }
}

#[inline(always)]
fn pool_plane_by(plane: &[f32], w: usize, k: usize, out: &mut [f32], ow: usize) {
    let mut rows = vec![0f32; ow * k];
    for (oy, row) in out.chunks_exact_mut(ow).enumerate() {
        let block = &plane[oy * k * w..][..k * w];
        rows.copy_from_slice(&block[..ow * k]);
        for input in block.chunks_exact(w).skip(1) {
            for (m, &v) in rows.iter_mut().zip(&input[..ow * k]) {
                *m = larger(*m, v);
            }
        }
        for (o, c) in row.iter_mut().zip(rows.chunks_exact(k)) {
            *o = c.iter().fold(c[0], |m, &v| larger(m, v));
        }
    }
}

impl Op for BlockMax {
    fn name(&self) -> StaticName {
        "DoppelBlockMax".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{0}×{0} blocks of {1:?}", self.k, self.input)])
    }

    tract_onnx::tract_core::op_as_typed_op!();
}

impl EvalOp for BlockMax {
    tract_onnx::tract_core::op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(
            inputs[0].shape() == &*self.shape(self.input),
            "DoppelBlockMax was built for {:?}, got {:?}",
            self.input,
            inputs[0].shape()
        );
        let input = inputs[0].try_as_plain_ram()?.as_slice::<f32>()?;
        let [n, c, h, w] = self.input;
        let [_, _, oh, ow] = self.output();
        let mut output = vec![0f32; n * c * oh * ow];
        for (plane, out) in input
            .chunks_exact(h * w)
            .zip(output.chunks_exact_mut(oh * ow))
        {
            pool_plane(plane, w, self.k, out, ow);
        }
        let output = tract_ndarray::ArrayD::from_shape_vec(&*self.shape(self.output()), output)?;
        Ok(tvec!(Tensor::from(output).into_tvalue()))
    }
}

impl TypedOp for BlockMax {
    tract_onnx::tract_core::as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 1 && inputs[0].datum_type == f32::datum_type());
        Ok(tvec!(f32::fact(self.shape(self.output()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tract_ops::run_once as run;
    use tract_onnx::tract_core::ops::cnn::PoolSpec;

    fn graph(shape: [usize; 4], k: usize, padding: PaddingSpec) -> TypedModel {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact(shape)).unwrap();
        let pool = MaxPool {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec![k, k],
                padding,
                dilations: None,
                strides: Some(tvec![k, k]),
                input_channels: shape[1],
                output_channels: shape[1],
            },
            with_index_outputs: None,
        };
        let y = model.wire_node("pool", pool, &[x]).unwrap();
        model.select_output_outlets(&y).unwrap();
        model
    }

    #[test]
    fn every_block_size_computes_what_tracts_own_max_pool_computes() {
        let onnx = PaddingSpec::ExplicitOnnxPool(tvec![0, 0], tvec![0, 0], false);
        let cases = [
            // meso4 at 128²: its four pools.
            ([1, 8, 128, 128], 2, onnx.clone()),
            ([1, 8, 64, 64], 2, onnx.clone()),
            ([1, 16, 32, 32], 2, onnx.clone()),
            ([1, 16, 16, 16], 4, onnx),
            // Sizes the blocks do not divide (the rest is dropped), a batch of two, k = 3.
            ([2, 3, 13, 9], 2, PaddingSpec::Valid),
            ([1, 2, 10, 11], 3, PaddingSpec::Valid),
        ];
        for (shape, k, padding) in cases {
            let model = graph(shape, k, padding.clone());
            let len = shape.iter().product::<usize>();
            // Distinct values in no order, negative ones included.
            let values: Vec<f32> = (0..len)
                .map(|i| ((i * 7919) % 1009) as f32 - 500.0)
                .collect();
            let x = Tensor::from_shape(&shape, &values).unwrap();
            let theirs = run(model.clone().into_optimized().unwrap(), &x);
            let mut ours = model.into_decluttered().unwrap();
            assert_eq!(replace_block_max(&mut ours).unwrap(), 1, "{shape:?} {k}");
            let ours = run(ours.into_optimized().unwrap(), &x);
            assert_eq!(ours, theirs, "{shape:?} {k} {padding:?}");
        }
        // Padded or overlapping pools stay tract's.
        let mut padded = graph(
            [1, 2, 8, 8],
            2,
            PaddingSpec::Explicit(tvec![1, 1], tvec![1, 1]),
        )
        .into_decluttered()
        .unwrap();
        assert_eq!(replace_block_max(&mut padded).unwrap(), 0);
    }
}
