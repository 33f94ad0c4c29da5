//! The one description of every network doppel trains. host-trainer builds its tch model from
//! it and [`crate::onnx`] writes the ONNX graph from it, so training and inference cannot drift
//! apart; parameter and FLOP counts are computed from it, not measured.

use serde::{Deserialize, Serialize};

/// Activation after a layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Act {
    None,
    /// LeakyReLU with slope 0.1, the classic deepfake choice.
    Leaky,
    Sigmoid,
}

/// One layer. Convolutions use "same" padding (`kernel / 2`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Layer {
    Conv {
        out: usize,
        kernel: usize,
        stride: usize,
        act: Act,
    },
    /// Depthwise `kernel`×`kernel` convolution, then pointwise 1×1 to `out`, one activation.
    SepConv {
        out: usize,
        kernel: usize,
        stride: usize,
        act: Act,
    },
    Flatten,
    Dense {
        out: usize,
        act: Act,
    },
    /// `[N, c·h·w]` → `[N, c, h, w]`.
    Reshape {
        c: usize,
        h: usize,
        w: usize,
    },
    /// Max over non-overlapping `size`×`size` windows (ONNX MaxPool, stride = size).
    MaxPool {
        size: usize,
    },
    /// Convolution to `4·out` channels then pixel shuffle ×2 (ONNX DepthToSpace, CRD order).
    Upscale {
        out: usize,
        kernel: usize,
        separable: bool,
        act: Act,
    },
    /// Sets every channel to `fill` inside an ellipse (crop pixels: centre and semi-axes) and
    /// passes the rest: a fake detector that never sees the middle of the face cannot learn the
    /// few faces it trained on and must judge the blend boundary around them.
    FillEllipse {
        centre: [f32; 2],
        axes: [f32; 2],
        fill: f32,
    },
}

/// What [`Layer::FillEllipse`] keeps of an `h`×`w` image: 0 inside the ellipse (pixel centres),
/// 1 outside, row-major. The tch model and the ONNX graph both take it from here.
pub fn keep_outside_ellipse(centre: [f32; 2], axes: [f32; 2], h: usize, w: usize) -> Vec<f32> {
    (0..h * w)
        .map(|i| {
            let dx = ((i % w) as f32 + 0.5 - centre[0]) / axes[0];
            let dy = ((i / w) as f32 + 0.5 - centre[1]) / axes[1];
            if dx * dx + dy * dy < 1.0 {
                0.0
            } else {
                1.0
            }
        })
        .collect()
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let act = |a: &Act| match a {
            Act::None => "",
            Act::Leaky => " + leaky",
            Act::Sigmoid => " + sigmoid",
        };
        match self {
            Layer::Conv {
                out,
                kernel,
                stride,
                act: a,
            } => write!(f, "conv {kernel}×{kernel}/{stride} → {out}{}", act(a)),
            Layer::SepConv {
                out,
                kernel,
                stride,
                act: a,
            } => {
                write!(f, "sepconv {kernel}×{kernel}/{stride} → {out}{}", act(a))
            }
            Layer::Flatten => write!(f, "flatten"),
            Layer::Dense { out, act: a } => write!(f, "dense → {out}{}", act(a)),
            Layer::Reshape { c, h, w } => write!(f, "reshape → {c}×{h}×{w}"),
            Layer::MaxPool { size } => write!(f, "max pool {size}×{size}"),
            Layer::FillEllipse { centre, axes, fill } => write!(
                f,
                "fill {fill} inside the ellipse ({:.1}, {:.1}) ± ({:.1}, {:.1})",
                centre[0], centre[1], axes[0], axes[1]
            ),
            Layer::Upscale {
                out,
                kernel,
                separable,
                act: a,
            } => {
                let kind = if *separable { "sepconv" } else { "conv" };
                write!(
                    f,
                    "{kind} {kernel}×{kernel} → {} + pixel shuffle ×2{}",
                    4 * out,
                    act(a)
                )
            }
        }
    }
}

/// Activation tensor shape: `Chw(c, h, w)` for images, `Flat(n)` after flatten/dense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    Chw(usize, usize, usize),
    Flat(usize),
}

impl Shape {
    pub fn numel(&self) -> usize {
        match *self {
            Shape::Chw(c, h, w) => c * h * w,
            Shape::Flat(n) => n,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("layer {index} ({layer:?}) cannot take input {input:?}")]
    Incompatible {
        index: usize,
        layer: Layer,
        input: Shape,
    },
    #[error("{net}: {source}")]
    In {
        net: &'static str,
        #[source]
        source: Box<SpecError>,
    },
    #[error("encoder output {encoder:?} does not feed the decoder input {decoder:?}")]
    Bottleneck { encoder: Shape, decoder: Shape },
    #[error("{net} {side} is {found:?}, the preset's crop needs {want:?}")]
    Ends {
        net: &'static str,
        side: &'static str,
        found: Shape,
        want: Shape,
    },
}

/// Cost of one layer for one input (batch 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cost {
    pub params: usize,
    /// Multiply-accumulates.
    pub macs: usize,
}

impl Layer {
    /// Output shape and cost for `input`.
    pub fn apply(&self, index: usize, input: Shape) -> Result<(Shape, Cost), SpecError> {
        let bad = || SpecError::Incompatible {
            index,
            layer: *self,
            input,
        };
        match (*self, input) {
            (
                Layer::Conv {
                    out,
                    kernel,
                    stride,
                    ..
                }
                | Layer::SepConv {
                    out,
                    kernel,
                    stride,
                    ..
                },
                Shape::Chw(c, h, w),
            ) => {
                let (ho, wo) = (h.div_ceil(stride), w.div_ceil(stride));
                let cost = if matches!(self, Layer::SepConv { .. }) {
                    sep_conv_cost(c, out, kernel, ho * wo)
                } else {
                    conv_cost(c, out, kernel, ho * wo)
                };
                Ok((Shape::Chw(out, ho, wo), cost))
            }
            (Layer::Flatten, Shape::Chw(c, h, w)) => Ok((Shape::Flat(c * h * w), Cost::default())),
            (Layer::MaxPool { size }, Shape::Chw(c, h, w))
                if size > 0 && h.is_multiple_of(size) && w.is_multiple_of(size) =>
            {
                Ok((Shape::Chw(c, h / size, w / size), Cost::default()))
            }
            (Layer::FillEllipse { axes, .. }, Shape::Chw(c, h, w))
                if axes[0] > 0.0 && axes[1] > 0.0 =>
            {
                Ok((Shape::Chw(c, h, w), Cost::default()))
            }
            (Layer::Dense { out, .. }, Shape::Flat(n)) => Ok((
                Shape::Flat(out),
                Cost {
                    params: n * out + out,
                    macs: n * out,
                },
            )),
            (Layer::Reshape { c, h, w }, Shape::Flat(n)) if n == c * h * w => {
                Ok((Shape::Chw(c, h, w), Cost::default()))
            }
            (
                Layer::Upscale {
                    out,
                    kernel,
                    separable,
                    ..
                },
                Shape::Chw(c, h, w),
            ) => {
                // The convolution runs at input resolution; the pixel shuffle is free.
                let cost = if separable {
                    sep_conv_cost(c, 4 * out, kernel, h * w)
                } else {
                    conv_cost(c, 4 * out, kernel, h * w)
                };
                Ok((Shape::Chw(out, 2 * h, 2 * w), cost))
            }
            _ => Err(bad()),
        }
    }
}

/// A `k`×`k` convolution `cin`→`cout` with bias, producing `pixels` output positions.
fn conv_cost(cin: usize, cout: usize, k: usize, pixels: usize) -> Cost {
    Cost {
        params: cin * cout * k * k + cout,
        macs: pixels * cout * cin * k * k,
    }
}

/// Depthwise `k`×`k` on `cin` channels, then pointwise 1×1 to `cout`, both with bias.
fn sep_conv_cost(cin: usize, cout: usize, k: usize, pixels: usize) -> Cost {
    let (dw, pw) = (conv_cost(1, 1, k, pixels), conv_cost(cin, cout, 1, pixels));
    Cost {
        params: cin * dw.params + pw.params,
        macs: cin * dw.macs + pw.macs,
    }
}

/// A feed-forward stack of layers from a fixed input shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetSpec {
    pub input: Shape,
    pub layers: Vec<Layer>,
}

impl NetSpec {
    /// Shape after every layer (index 0 is the input).
    pub fn shapes(&self) -> Result<Vec<Shape>, SpecError> {
        let mut shapes = vec![self.input];
        for (i, layer) in self.layers.iter().enumerate() {
            let (next, _) = layer.apply(i, *shapes.last().expect("non-empty"))?;
            shapes.push(next);
        }
        Ok(shapes)
    }

    pub fn output(&self) -> Result<Shape, SpecError> {
        Ok(*self.shapes()?.last().expect("non-empty"))
    }

    pub fn cost(&self) -> Result<Cost, SpecError> {
        let mut shape = self.input;
        let mut total = Cost::default();
        for (i, layer) in self.layers.iter().enumerate() {
            let (next, c) = layer.apply(i, shape)?;
            total.params += c.params;
            total.macs += c.macs;
            shape = next;
        }
        Ok(total)
    }
}

/// The face-swap autoencoder: one shared encoder, one decoder per person. Each decoder ends in
/// four channels: RGB and a mask, both through a sigmoid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoencoderSpec {
    pub preset: String,
    /// Side of the square input and output face crop.
    pub size: usize,
    pub encoder: NetSpec,
    pub decoder: NetSpec,
}

/// Channels each decoder emits: RGB + mask.
pub const DECODER_CHANNELS: usize = 4;

impl AutoencoderSpec {
    /// Checks that encoder output feeds the decoder and the decoder returns RGB+mask at `size`.
    pub fn validate(&self) -> Result<(), SpecError> {
        let within = |net| {
            move |e| SpecError::In {
                net,
                source: Box::new(e),
            }
        };
        let enc = self.encoder.output().map_err(within("encoder"))?;
        if enc != self.decoder.input {
            return Err(SpecError::Bottleneck {
                encoder: enc,
                decoder: self.decoder.input,
            });
        }
        let dec = self.decoder.output().map_err(within("decoder"))?;
        let ends = [
            (
                "decoder",
                "output",
                dec,
                Shape::Chw(DECODER_CHANNELS, self.size, self.size),
            ),
            (
                "encoder",
                "input",
                self.encoder.input,
                Shape::Chw(3, self.size, self.size),
            ),
        ];
        for (net, side, found, want) in ends {
            if found != want {
                return Err(SpecError::Ends {
                    net,
                    side,
                    found,
                    want,
                });
            }
        }
        Ok(())
    }

    /// Parameters of the whole model with `people` decoders.
    pub fn params(&self, people: usize) -> usize {
        self.encoder.cost().map(|c| c.params).unwrap_or(0)
            + people * self.decoder.cost().map(|c| c.params).unwrap_or(0)
    }

    /// FLOPs (2 per multiply-accumulate) to swap one face: encoder + one decoder.
    pub fn flops_per_face(&self) -> usize {
        2 * (self.encoder.cost().map(|c| c.macs).unwrap_or(0)
            + self.decoder.cost().map(|c| c.macs).unwrap_or(0))
    }
}
