//! The second half of a narrow convolution split into taps (`onnx_model::split_narrow_convs`):
//! a 1×1 product holds one group of `out` channels per kernel tap, and output `(c, y, x)` is the
//! sum over taps `(i, j)` of group `i·kw + j`, channel `c`, at `(y + i − top, x + j − left)`
//! (zero outside). Written in ONNX as `Pad`, one `Slice` per tap and a `Sum`, tract pads the
//! whole 100-channel product (~0.3 ms of lite's 64² last layer) before slicing it; here each
//! tap adds its in-bounds rectangle straight into the output plane.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_hir::internal::{
    check_input_arity, check_output_arity, expand, Expansion, InferenceOp, InferenceResult,
    ShapeFactoid, Solver, TensorProxy,
};

/// The ONNX op type `split_narrow_convs` writes.
pub const OP_TYPE: &str = "DoppelTapSum";

/// The ONNX node (attributes `kernel_shape` [kh, kw], `pads` [top, left, bottom, right]) as an
/// [`Expansion`] that wires [`TapSum`].
pub fn from_onnx(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let kernel: TVec<usize> = node.get_attr_tvec("kernel_shape")?;
    let pads: TVec<usize> = node.get_attr_tvec("pads")?;
    ensure!(
        kernel.len() == 2 && kernel.iter().all(|&k| (1..=64).contains(&k)) && pads.len() == 4,
        "{OP_TYPE}: kernel_shape {kernel:?}, pads {pads:?}"
    );
    ensure!(
        pads[0] < kernel[0] && pads[2] < kernel[0] && pads[1] < kernel[1] && pads[3] < kernel[1],
        "{OP_TYPE}: pads {pads:?} as wide as the kernel {kernel:?}"
    );
    Ok((
        expand(TapSum {
            kernel: [kernel[0], kernel[1]],
            pads: [pads[0], pads[1], pads[2], pads[3]],
            batched: true,
        }),
        vec![],
    ))
}

/// Sums the taps of `[N, kh·kw·C, H, W]` into `[N, C, H + top + bottom − kh + 1, …]` (or the
/// same without N once tract has dropped a batch of one).
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct TapSum {
    kernel: [usize; 2],
    /// Top, left, bottom, right.
    pads: [usize; 4],
    batched: bool,
}

impl TapSum {
    fn out_hw(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let [kh, kw] = self.kernel;
        let [top, left, bottom, right] = self.pads;
        Some((
            (h + top + bottom + 1).checked_sub(kh)?,
            (w + left + right + 1).checked_sub(kw)?,
        ))
    }

    fn taps(&self) -> usize {
        self.kernel[0] * self.kernel[1]
    }
}

impl Expansion for TapSum {
    fn name(&self) -> StaticName {
        OP_TYPE.into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].rank, 4)?;
        s.equals(&outputs[0].rank, 4)?;
        s.equals(&outputs[0].datum_type, &inputs[0].datum_type)?;
        s.given(&inputs[0].shape, move |s, shape| {
            let [kh, kw] = self.kernel;
            let [top, left, bottom, right] = self.pads;
            let out = tvec![
                shape[0].clone(),
                shape[1].clone() / self.taps(),
                shape[2].clone() + (top + bottom + 1) as i64 - kh as i64,
                shape[3].clone() + (left + right + 1) as i64 - kw as i64
            ];
            s.equals(&outputs[0].shape, ShapeFactoid::from(out))
        })
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let fact = model.outlet_fact(inputs[0])?;
        ensure!(
            fact.datum_type == f32::datum_type(),
            "{OP_TYPE} on {:?}",
            fact.datum_type
        );
        ensure!(
            fact.shape[1].to_usize()? % self.taps() == 0,
            "{OP_TYPE}: {} channels for {} taps",
            fact.shape[1],
            self.taps()
        );
        model.wire_node(prefix, self.clone(), inputs)
    }
}

impl Op for TapSum {
    fn name(&self) -> StaticName {
        OP_TYPE.into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "kernel {:?}, pads {:?}",
            self.kernel, self.pads
        )])
    }

    tract_onnx::tract_core::op_as_typed_op!();
}

impl EvalOp for TapSum {
    tract_onnx::tract_core::op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let shape = inputs[0].shape();
        let (n, rest) = if self.batched {
            (shape[0], &shape[1..])
        } else {
            (1, shape)
        };
        ensure!(rest.len() == 3, "{OP_TYPE} on shape {shape:?}");
        let (depth, h, w) = (rest[0], rest[1], rest[2]);
        let channels = depth / self.taps();
        let (oh, ow) = self
            .out_hw(h, w)
            .ok_or_else(|| format_err!("{OP_TYPE}: {h}×{w} is smaller than the kernel"))?;
        let input = inputs[0].try_as_plain_ram()?.as_slice::<f32>()?;
        let [_, kw] = self.kernel;
        let [top, left, ..] = self.pads;
        let mut output = vec![0f32; n * channels * oh * ow];
        for (k, out) in output.chunks_exact_mut(oh * ow).enumerate() {
            let (b, c) = (k / channels, k % channels);
            for t in 0..self.taps() {
                let plane = &input[(b * depth + t * channels + c) * h * w..][..h * w];
                // Output (y, x) reads (y + dy, x + dx): the rectangle where that is inside.
                let (dy, dx) = (
                    (t / kw) as isize - top as isize,
                    (t % kw) as isize - left as isize,
                );
                let rows = (-dy).max(0) as usize..(h as isize - dy).clamp(0, oh as isize) as usize;
                let cols = (-dx).max(0) as usize..(w as isize - dx).clamp(0, ow as isize) as usize;
                if cols.is_empty() {
                    continue;
                }
                for y in rows {
                    let src = (y as isize + dy) as usize * w;
                    let from =
                        &plane[(src as isize + cols.start as isize + dx) as usize..][..cols.len()];
                    for (o, &v) in out[y * ow..][cols.clone()].iter_mut().zip(from) {
                        *o += v;
                    }
                }
            }
        }
        let shape: TVec<usize> = if self.batched {
            tvec![n, channels, oh, ow]
        } else {
            tvec![channels, oh, ow]
        };
        let output = tract_ndarray::ArrayD::from_shape_vec(&*shape, output)?;
        Ok(tvec!(Tensor::from(output).into_tvalue()))
    }
}

impl TypedOp for TapSum {
    tract_onnx::tract_core::as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shape = &inputs[0].shape;
        let first = usize::from(self.batched);
        ensure!(shape.rank() == 3 + first, "{OP_TYPE} on {:?}", inputs[0]);
        let [kh, kw] = self.kernel;
        let [top, left, bottom, right] = self.pads;
        let mut out: TVec<TDim> = shape.iter().cloned().collect();
        out[first] = shape[first].clone() / self.taps();
        out[first + 1] = shape[first + 1].clone() + (top + bottom + 1) as i64 - kh as i64;
        out[first + 2] = shape[first + 2].clone() + (left + right + 1) as i64 - kw as i64;
        Ok(tvec!(inputs[0].datum_type.fact(out)))
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

batched_by_field!(TapSum);
