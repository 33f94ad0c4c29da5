//! Depthwise convolutions. tract 0.23's `DepthWiseConv` walks the padding zones of every channel
//! row by row and reaches 2–12 GFLOP/s on the booth's small maps (64² and less): ~1.2 ms of an
//! 8.9-ms frame between the swap model and the face search. [`Depthwise`] copies each channel once
//! into a zero-padded plane split by row and column phase, so that every tap of every output is
//! one fixed offset from the output's flat position, then sums the taps over 32 flat positions at
//! a time in registers (AVX2 + FMA where x86 has them, NEON on aarch64).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::nn::DataFormat;

/// Outputs summed at a time: independent accumulators enough to hide the adds' latency.
const CHUNK: usize = 32;

/// How one channel lies in scratch memory: the zero-padded plane split into `stride[0]` ×
/// `stride[1]` phases of `qh` × `qw` (row phase major), so that every tap of every output is one
/// fixed offset from the output's flat position; `len` includes a chunk of slack for the last
/// (partly discarded) chunk's reads.
#[derive(Debug)]
struct Phases {
    qh: usize,
    qw: usize,
    offsets: Vec<usize>,
    len: usize,
}

/// Buffers reused across the channels of one run.
struct Work {
    phases: Phases,
    scratch: Vec<f32>,
    flat: Vec<f32>,
}

/// A float depthwise convolution (NCHW, or CHW once tract has dropped a batch of one; one filter
/// per channel, no dilation) on one input shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Depthwise {
    /// `[C, kh, kw]`, f32.
    kernel: Arc<Tensor>,
    /// `[C]`, f32.
    bias: Arc<Tensor>,
    /// `[N, C, H, W]` the op was built for.
    input: [usize; 4],
    /// Whether the tensors carry the batch axis (NCHW rather than CHW).
    batched: bool,
    stride: [usize; 2],
    /// Rows above, columns left (the rest of the padding is implied by the output size).
    pad: [usize; 2],
    output: [usize; 4],
}

/// Replaces every float depthwise convolution of `model` whose weights are constants with
/// [`Depthwise`]; returns how many.
pub fn replace_depthwise(model: &mut TypedModel) -> TractResult<usize> {
    super::replace_each(model, 1, Depthwise::from_conv)
}

impl Depthwise {
    /// The op for `node` when it is a float depthwise convolution with constant weights on a
    /// known input shape, `None` otherwise.
    fn from_conv(model: &TypedModel, node: &TypedNode, conv: &Conv) -> TractResult<Option<Self>> {
        let spec = &conv.pool_spec;
        let channels = spec.input_channels;
        let plain = conv.q_params.is_none()
            && conv.kernel_fmt == KernelFormat::OIHW
            && matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
            && spec.kernel_shape.len() == 2
            && conv.group == channels
            && spec.output_channels == channels
            && spec
                .dilations
                .as_ref()
                .is_none_or(|d| d.iter().all(|&d| d == 1))
            && node.inputs.len() == 3;
        if !plain {
            return Ok(None);
        }
        let facts = model.node_input_facts(node.id)?;
        let (Some(kernel), Some(bias)) = (&facts[1].konst, &facts[2].konst) else {
            return Ok(None);
        };
        let Some(shape) = facts[0].shape.as_concrete() else {
            return Ok(None);
        };
        let batched = spec.data_format == DataFormat::NCHW;
        let shape = super::with_batch(shape, batched);
        if facts[0].datum_type != f32::datum_type()
            || kernel.datum_type() != f32::datum_type()
            || bias.datum_type() != f32::datum_type()
            || shape.len() != 4
            || shape[1] != channels
        {
            return Ok(None);
        }
        let (kh, kw) = (spec.kernel_shape[0], spec.kernel_shape[1]);
        if kh == 0
            || kw == 0
            || kernel.len() != channels * kh * kw
            || !(bias.len() == channels || bias.len() == 1)
        {
            return Ok(None);
        }
        let stride = spec.strides.clone().unwrap_or_else(|| tvec![1, 1]);
        if stride.len() != 2 || stride.contains(&0) {
            return Ok(None);
        }
        let padded = spec
            .padding
            .compute(&shape[2..], &spec.kernel_shape, &[1, 1], &stride);
        let output = [
            shape[0],
            channels,
            padded[0].convoluted,
            padded[1].convoluted,
        ];
        if output[2] == 0 || output[3] == 0 {
            return Ok(None);
        }
        let bias = if bias.len() == channels {
            bias.clone().into_tensor().into_shape(&[channels])?
        } else {
            tensor1(&vec![
                *bias.try_as_plain_ram()?.to_scalar::<f32>()?;
                channels
            ])
        };
        Ok(Some(Self {
            kernel: Arc::new(
                kernel
                    .clone()
                    .into_tensor()
                    .into_shape(&[channels, kh, kw])?,
            ),
            bias: Arc::new(bias),
            input: [shape[0], shape[1], shape[2], shape[3]],
            batched,
            stride: [stride[0], stride[1]],
            pad: [padded[0].pad_before, padded[1].pad_before],
            output,
        }))
    }

    /// The scratch layout of one channel (see [`Phases`]).
    fn phases(&self) -> Phases {
        let [_, _, h, w] = self.input;
        let [_, _, oh, ow] = self.output;
        let [sh, sw] = self.stride;
        let (kh, kw) = (self.kernel.shape()[1], self.kernel.shape()[2]);
        // Tall and wide enough for every tap of every output and every input pixel.
        let ph = ((oh - 1) * sh + kh).max(h + self.pad[0]);
        let pw = ((ow - 1) * sw + kw).max(w + self.pad[1]);
        let (qh, qw) = (ph.div_ceil(sh), pw.div_ceil(sw));
        let offsets = (0..kh * kw)
            .map(|t| {
                let (ky, kx) = (t / kw, t % kw);
                ((ky % sh) * sw + kx % sw) * qh * qw + (ky / sh) * qw + kx / sw
            })
            .collect();
        Phases {
            qh,
            qw,
            offsets,
            len: sh * sw * qh * qw + CHUNK,
        }
    }

    /// One channel: `plane` (H×W) convolved with `taps` (kh×kw) into `out` (OH×OW).
    fn channel(&self, plane: &[f32], taps: &[f32], bias: f32, out: &mut [f32], work: &mut Work) {
        let w = self.input[3];
        let [_, _, oh, ow] = self.output;
        let [sh, sw] = self.stride;
        let [top, left] = self.pad;
        let Work {
            phases,
            scratch,
            flat,
        } = work;
        let Phases { qh, qw, .. } = *phases;
        scratch.fill(0.0);
        for (y, row) in plane.chunks_exact(w).enumerate() {
            let (py, ry) = ((y + top) % sh, (y + top) / sh);
            let (mut px, mut q) = (left % sw, left / sw);
            if sw == 1 {
                scratch[py * qh * qw + ry * qw + q..][..w].copy_from_slice(row);
                continue;
            }
            if sw == 2 {
                // Even and odd columns to their two phases, a pair at a time.
                let plane = |p: usize| (py * 2 + p) * qh * qw + ry * qw;
                let (first, second) = (plane(px) + q, plane(1 - px) + left.div_ceil(2));
                let (lo, hi) = scratch.split_at_mut(first.max(second));
                let (a, b) = if first < second {
                    (&mut lo[first..], &mut hi[..])
                } else {
                    (&mut hi[..], &mut lo[second..])
                };
                let pairs = row.chunks_exact(2);
                if let [last] = pairs.remainder() {
                    a[w / 2] = *last;
                }
                for ((a, b), pair) in a.iter_mut().zip(b.iter_mut()).zip(pairs) {
                    *a = pair[0];
                    *b = pair[1];
                }
                continue;
            }
            for &v in row {
                scratch[(py * sw + px) * qh * qw + ry * qw + q] = v;
                px += 1;
                if px == sw {
                    px = 0;
                    q += 1;
                }
            }
        }
        // Output (oy, ox), tap (ky, kx) reads padded (oy·sh + ky, ox·sw + kx): phase
        // (ky % sh, kx % sw) at (oy + ky / sh, ox + kx / sw), i.e. flat index `oy·qw + ox` plus
        // the tap's offset. Every flat position is computed, CHUNK at a time in registers; the
        // columns past `ow` are discarded.
        sum_taps(flat, scratch, taps, &phases.offsets, bias);
        for (oy, row) in out.chunks_exact_mut(ow).enumerate().take(oh) {
            row.copy_from_slice(&flat[oy * qw..][..ow]);
        }
    }

    /// `nchw` as the graph holds it: without the batch axis when tract dropped it.
    fn shape(&self, nchw: [usize; 4]) -> TVec<usize> {
        nchw[usize::from(!self.batched)..].into()
    }
}

/// `flat[i] = bias + Σ taps[t] · scratch[i + offsets[t]]`, with the best instructions this CPU
/// has: AVX2 with fused multiply-adds where x86 has them (checked once), NEON's on aarch64.
fn sum_taps(flat: &mut [f32], scratch: &[f32], taps: &[f32], offsets: &[usize], bias: f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if super::avx2_fma() {
            // SAFETY: the CPU has both features.
            return unsafe { sum_taps_avx2(flat, scratch, taps, offsets, bias) };
        }
        sum_taps_in::<false>(flat, scratch, taps, offsets, bias)
    }
    #[cfg(not(target_arch = "x86_64"))]
    sum_taps_in::<{ cfg!(target_arch = "aarch64") }>(flat, scratch, taps, offsets, bias)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn sum_taps_avx2(flat: &mut [f32], scratch: &[f32], taps: &[f32], offsets: &[usize], bias: f32) {
    sum_taps_in::<true>(flat, scratch, taps, offsets, bias)
}

/// [`sum_taps`], CHUNK outputs at a time in registers; `FUSED` where `mul_add` is one
/// instruction (elsewhere it is a slow library call).
#[inline(always)]
fn sum_taps_in<const FUSED: bool>(
    flat: &mut [f32],
    scratch: &[f32],
    taps: &[f32],
    offsets: &[usize],
    bias: f32,
) {
    for (i, chunk) in flat.chunks_exact_mut(CHUNK).enumerate() {
        let mut acc = [bias; CHUNK];
        for (&k, &offset) in taps.iter().zip(offsets) {
            let at = i * CHUNK + offset;
            let src: &[f32; CHUNK] = scratch[at..at + CHUNK].try_into().unwrap();
            for j in 0..CHUNK {
                acc[j] = if FUSED {
                    k.mul_add(src[j], acc[j])
                } else {
                    acc[j] + k * src[j]
                };
            }
        }
        chunk.copy_from_slice(&acc);
    }
}

impl Op for Depthwise {
    fn name(&self) -> StaticName {
        "DoppelDepthwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "kernel {:?}, stride {:?}, pad {:?}",
            self.kernel.shape(),
            self.stride,
            self.pad
        )])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    tract_onnx::tract_core::op_as_typed_op!();
}

impl EvalOp for Depthwise {
    tract_onnx::tract_core::op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = inputs[0].try_as_plain_ram()?.as_slice::<f32>()?;
        ensure!(
            inputs[0].shape() == &*self.shape(self.input),
            "DoppelDepthwise was built for {:?}, got {:?}",
            self.input,
            inputs[0].shape()
        );
        let [n, c, h, w] = self.input;
        let [_, _, oh, ow] = self.output;
        let kernel = self.kernel.try_as_plain_ram()?.as_slice::<f32>()?;
        let bias = self.bias.try_as_plain_ram()?.as_slice::<f32>()?;
        let taps = kernel.len() / c;
        let phases = self.phases();
        let flat_len = (oh * phases.qw).div_ceil(CHUNK) * CHUNK;
        let mut work = Work {
            scratch: vec![0f32; phases.len + flat_len],
            flat: vec![0f32; flat_len],
            phases,
        };
        let mut output = vec![0f32; n * c * oh * ow];
        for (i, out) in output.chunks_exact_mut(oh * ow).enumerate() {
            let ch = i % c;
            self.channel(
                &input[i * h * w..][..h * w],
                &kernel[ch * taps..][..taps],
                bias[ch],
                out,
                &mut work,
            );
        }
        let output = tract_ndarray::ArrayD::from_shape_vec(&*self.shape(self.output), output)?;
        Ok(tvec!(Tensor::from(output).into_tvalue()))
    }
}

impl TypedOp for Depthwise {
    tract_onnx::tract_core::as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 1 && inputs[0].datum_type == f32::datum_type());
        Ok(tvec!(f32::fact(self.shape(self.output))))
    }

    fn cost(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let macs = self.output.iter().product::<usize>() * self.kernel.len() / self.input[1];
        Ok(tvec!((Cost::FMA(f32::datum_type()), macs.into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tract_ops::run_once as run;
    use tract_onnx::tract_core::ops::cnn::{PaddingSpec, PoolSpec};

    /// A graph of one depthwise convolution with random weights on an `n×c×h×w` input.
    fn graph(
        [n, c, h, w]: [usize; 4],
        k: [usize; 2],
        stride: [usize; 2],
        padding: PaddingSpec,
    ) -> TypedModel {
        let mut rng = 0x2545f491u32;
        let mut random = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 17;
                    rng ^= rng << 5;
                    rng as f32 / u32::MAX as f32 - 0.5
                })
                .collect()
        };
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([n, c, h, w])).unwrap();
        let kernel = tensor1(&random(c * k[0] * k[1]))
            .into_shape(&[c, 1, k[0], k[1]])
            .unwrap();
        let kernel = model.add_const("kernel", kernel).unwrap();
        let bias = model.add_const("bias", tensor1(&random(c))).unwrap();
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec![k[0], k[1]],
                padding,
                dilations: None,
                strides: Some(tvec![stride[0], stride[1]]),
                input_channels: c,
                output_channels: c,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: c,
            q_params: None,
        };
        let y = model.wire_node("conv", conv, &[x, kernel, bias]).unwrap();
        model.select_output_outlets(&y).unwrap();
        model
    }

    fn input(shape: [usize; 4]) -> Tensor {
        let len = shape.iter().product::<usize>();
        let values: Vec<f32> = (0..len)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        Tensor::from_shape(&shape, &values).unwrap()
    }

    #[test]
    fn every_geometry_computes_what_tracts_own_depthwise_computes() {
        let explicit = |b: [usize; 2], a: [usize; 2]| {
            PaddingSpec::Explicit(tvec![b[0], b[1]], tvec![a[0], a[1]])
        };
        let cases = [
            // lite's encoder (5×5 stride 2) and decoder (3×3 stride 1) steps.
            ([1, 32, 32, 32], [5, 5], [2, 2], explicit([2, 2], [2, 2])),
            ([1, 384, 4, 4], [3, 3], [1, 1], explicit([1, 1], [1, 1])),
            ([1, 96, 32, 32], [3, 3], [1, 1], explicit([1, 1], [1, 1])),
            // RetinaFace's stride-2 steps, padded on one side only, odd sizes, a batch of two.
            ([1, 16, 31, 45], [3, 3], [2, 2], explicit([0, 0], [1, 1])),
            ([2, 8, 17, 23], [3, 3], [2, 2], explicit([1, 1], [1, 1])),
            ([1, 5, 9, 19], [3, 5], [1, 2], PaddingSpec::SameUpper),
            ([1, 3, 12, 12], [3, 3], [3, 3], PaddingSpec::Valid),
        ];
        for (shape, k, stride, padding) in cases {
            let model = graph(shape, k, stride, padding.clone());
            let x = input(shape);
            let theirs = run(model.clone().into_optimized().unwrap(), &x);
            let mut ours = model.into_decluttered().unwrap();
            assert_eq!(
                replace_depthwise(&mut ours).unwrap(),
                1,
                "{shape:?} {padding:?}"
            );
            let ours = run(ours.into_optimized().unwrap(), &x);
            assert_eq!(
                ours.shape(),
                theirs.shape(),
                "{shape:?} {k:?} {stride:?} {padding:?}"
            );
            let (a, b) = (
                ours.to_plain_array_view::<f32>().unwrap(),
                theirs.to_plain_array_view::<f32>().unwrap(),
            );
            let worst = a
                .iter()
                .zip(b)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                worst < 1e-5,
                "{shape:?} {k:?} {stride:?} {padding:?}: max |diff| {worst}"
            );
        }
    }

    /// Times ours against tract's on lite's and RetinaFace's shapes:
    /// `cargo test --release -p facekit depthwise::tests::timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn timing() {
        let explicit = |b: [usize; 2], a: [usize; 2]| {
            PaddingSpec::Explicit(tvec![b[0], b[1]], tvec![a[0], a[1]])
        };
        for (shape, k, stride, padding) in [
            ([1, 32, 32, 32], [5, 5], [2, 2], explicit([2, 2], [2, 2])),
            ([1, 384, 4, 4], [3, 3], [1, 1], explicit([1, 1], [1, 1])),
            ([1, 96, 32, 32], [3, 3], [1, 1], explicit([1, 1], [1, 1])),
            ([1, 64, 32, 32], [3, 3], [2, 2], explicit([1, 1], [1, 1])),
        ] {
            let model = graph(shape, k, stride, padding);
            let x: TValue = input(shape).into();
            let theirs = model
                .clone()
                .into_optimized()
                .unwrap()
                .into_runnable()
                .unwrap();
            let mut ours = model.into_decluttered().unwrap();
            replace_depthwise(&mut ours).unwrap();
            let ours = ours.into_optimized().unwrap().into_runnable().unwrap();
            let time = |plan: &Arc<TypedSimplePlan>| {
                for _ in 0..20 {
                    plan.run(tvec!(x.clone())).unwrap();
                }
                let t = std::time::Instant::now();
                for _ in 0..500 {
                    plan.run(tvec!(x.clone())).unwrap();
                }
                t.elapsed().as_secs_f64() * 1e3 / 500.0
            };
            println!(
                "{shape:?} {k:?} /{stride:?}: ours {:.4} ms, tract {:.4} ms",
                time(&ours),
                time(&theirs)
            );
        }
    }
}
