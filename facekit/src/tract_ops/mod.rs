//! Our own tract operators, where tract 0.23's are slow on the booth's shapes: small maps (64²
//! and less), one image at a time, one core. Each is checked against tract's own operator.
//!
//! - [`depthwise::Depthwise`] for depthwise convolutions (lite's separable layers, RetinaFace's
//!   MobileNet) and [`block_max::BlockMax`] for max pools over non-overlapping blocks (the fake
//!   detector's), swapped in by [`optimise`] after tract's declutter;
//! - [`depth_to_space::DepthToSpace`] for ONNX `DepthToSpace` (lite's pixel shuffles), in one
//!   pass where tract moves two axes, and [`tap_sum::TapSum`], the sum of a narrow convolution's
//!   taps, and [`int8_dense::Int8Dense`], a dense layer whose weights stay int8, all registered
//!   with the ONNX loader by [`register`].

/// [`Batched`] for an operator with a `batched: bool` field; used inside each operator's
/// module, where the field is visible.
macro_rules! batched_by_field {
    ($op:ty) => {
        impl super::Batched for $op {
            fn batched(&self) -> bool {
                self.batched
            }

            fn without_batch(&self) -> Self {
                Self {
                    batched: false,
                    ..self.clone()
                }
            }
        }
    };
}

pub mod block_max;
pub mod depth_to_space;
pub mod depthwise;
pub mod int8_dense;
pub mod tap_sum;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_hir::infer::InferenceModel;

/// Optimises `model` for running, as `into_optimized` does, with our operators in place of
/// tract's where they are faster.
pub fn optimise(model: InferenceModel) -> TractResult<TypedModel> {
    let mut typed = model.into_typed()?.into_decluttered()?;
    depthwise::replace_depthwise(&mut typed)?;
    block_max::replace_block_max(&mut typed)?;
    typed.into_optimized()
}

/// Replaces each node of `model` whose op is a `T` that `ours` can stand in for (it says so by
/// returning one), wired to the node's first `inputs` inputs (ours take the rest, a conv's
/// weights, as constants); returns how many.
fn replace_each<T: Op, O: TypedOp>(
    model: &mut TypedModel,
    inputs: usize,
    ours: impl Fn(&TypedModel, &TypedNode, &T) -> TractResult<Option<O>>,
) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(theirs) = node.op_as::<T>() else {
            continue;
        };
        let Some(op) = ours(model, node, theirs)? else {
            continue;
        };
        let wired = &node.inputs[..inputs.min(node.inputs.len())];
        TypedModelPatch::replace_single_op(model, node, wired, op)?.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// `shape` with its batch axis: as it is when `batched`, else (tract dropped a batch of one)
/// with a leading 1.
fn with_batch(shape: &[usize], batched: bool) -> TVec<usize> {
    let missing = usize::from(!batched);
    std::iter::repeat_n(1, missing)
        .chain(shape.iter().copied())
        .collect()
}

/// Runs `model` on `input` and returns its first output (the operators' tests compare ours
/// with tract's this way).
#[cfg(test)]
fn run_once(model: TypedModel, input: &Tensor) -> Tensor {
    let plan = model.into_runnable().unwrap();
    plan.run(tvec!(input.clone().into()))
        .unwrap()
        .remove(0)
        .into_tensor()
}

/// Has the ONNX loader read our operators where they replace whole ONNX nodes.
pub fn register(onnx: &mut tract_onnx::Onnx) {
    onnx.op_register
        .insert("DepthToSpace", depth_to_space::from_onnx);
    onnx.op_register
        .insert(tap_sum::OP_TYPE, tap_sum::from_onnx);
    onnx.op_register
        .insert(int8_dense::OP_TYPE, int8_dense::from_onnx);
}

/// Whether this x86 CPU has AVX2 and FMA (checked once): our kernels' fast path.
#[cfg(target_arch = "x86_64")]
fn avx2_fma() -> bool {
    static AVX2_FMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVX2_FMA.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// An operator built for tensors with a batch axis first, that also runs without it.
trait Batched: TypedOp + Clone {
    fn batched(&self) -> bool;
    fn without_batch(&self) -> Self;
}

/// `change_axes` of a [`Batched`] operator: tract may drop the batch axis of a batch of one, as
/// it does from the rest of the graph; any other change is refused.
fn drop_batch_axis<O: Batched>(
    op: &O,
    model: &TypedModel,
    node: &TypedNode,
    change: &AxisOp,
) -> TractResult<Option<AxisChangeConsequence>> {
    if !op.batched() || *change != AxisOp::Rm(0) {
        return Ok(None);
    }
    let op = Box::new(op.without_batch());
    Ok(Some(AxisChangeConsequence::new(
        model,
        node,
        Some(op),
        change,
    )))
}
