//! The tch model built from a [`NetSpec`]. Variable paths (`l{index}/…`) are what the ONNX
//! writer (`model_spec::onnx`) reads back, so keep them stable.

use tch::nn::{self, Module};
use tch::Tensor;

use model_spec::{Act, AutoencoderSpec, Layer, NetSpec, Shape};

#[derive(Debug)]
enum Built {
    Conv(nn::Conv2D),
    Sep(nn::Conv2D, nn::Conv2D),
    Flatten,
    Dense(nn::Linear),
    Reshape(i64, i64, i64),
    MaxPool(i64),
    /// `x · keep + fill`: the [`Layer::FillEllipse`] constants, `[1, 1, h, w]`.
    Fill {
        keep: Tensor,
        fill: Tensor,
    },
}

/// Values inside one layer: the depthwise output (separable layers), the convolution or dense
/// output before pixel shuffle and activation, and the layer's output.
pub struct LayerTrace {
    pub dw: Option<Tensor>,
    pub conv: Tensor,
    pub out: Tensor,
}

/// A feed-forward network whose layers mirror its spec one to one.
#[derive(Debug)]
pub struct Net {
    layers: Vec<(Built, Act, bool)>,
    /// Where the weights live.
    device: tch::Device,
}

fn conv(
    p: nn::Path,
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride: stride as i64,
        padding: (kernel / 2) as i64,
        groups: groups as i64,
        ..Default::default()
    };
    nn::conv2d(p, cin as i64, cout as i64, kernel as i64, cfg)
}

impl Net {
    pub fn new(p: &nn::Path, spec: &NetSpec) -> Self {
        let shapes = spec.shapes().expect("spec validated before building");
        let mut layers = Vec::with_capacity(spec.layers.len());
        for (i, (layer, input)) in spec.layers.iter().zip(&shapes).enumerate() {
            let q = p / format!("l{i}");
            let cin = match input {
                Shape::Chw(c, _, _) => *c,
                Shape::Flat(n) => *n,
            };
            // Variable names (`conv`, `dw`, `pw`) are the same for plain and upscaling layers.
            let plain = |cout, k, stride| Built::Conv(conv(&q / "conv", cin, cout, k, stride, 1));
            let separable = |cout, k, stride| {
                Built::Sep(
                    conv(&q / "dw", cin, cin, k, stride, cin),
                    conv(&q / "pw", cin, cout, 1, 1, 1),
                )
            };
            let built = match *layer {
                Layer::Conv {
                    out,
                    kernel,
                    stride,
                    act,
                } => (plain(out, kernel, stride), act, false),
                Layer::SepConv {
                    out,
                    kernel,
                    stride,
                    act,
                } => (separable(out, kernel, stride), act, false),
                Layer::Flatten => (Built::Flatten, Act::None, false),
                Layer::Dense { out, act } => (
                    Built::Dense(nn::linear(
                        &q / "dense",
                        cin as i64,
                        out as i64,
                        Default::default(),
                    )),
                    act,
                    false,
                ),
                Layer::MaxPool { size } => (Built::MaxPool(size as i64), Act::None, false),
                Layer::FillEllipse { centre, axes, fill } => {
                    let Shape::Chw(_, h, w) = *input else {
                        unreachable!("spec validated before building")
                    };
                    let keep =
                        Tensor::from_slice(&model_spec::keep_outside_ellipse(centre, axes, h, w))
                            .reshape([1, 1, h as i64, w as i64])
                            .to_device(p.device());
                    let fill = (1.0 - &keep) * fill as f64;
                    (Built::Fill { keep, fill }, Act::None, false)
                }
                Layer::Reshape { c, h, w } => (
                    Built::Reshape(c as i64, h as i64, w as i64),
                    Act::None,
                    false,
                ),
                Layer::Upscale {
                    out,
                    kernel,
                    separable: true,
                    act,
                } => (separable(4 * out, kernel, 1), act, true),
                Layer::Upscale {
                    out,
                    kernel,
                    separable: false,
                    act,
                } => (plain(4 * out, kernel, 1), act, true),
            };
            layers.push(built);
        }
        Self {
            layers,
            device: p.device(),
        }
    }

    /// Where the weights live.
    pub fn device(&self) -> tch::Device {
        self.device
    }

    /// Output of every layer, for shape checks and feature matching.
    pub fn forward_all(&self, x: &Tensor) -> Vec<Tensor> {
        self.forward_trace(x).into_iter().map(|t| t.out).collect()
    }

    /// Every layer's intermediate values: what int8 calibration measures ranges of.
    pub fn forward_trace(&self, x: &Tensor) -> Vec<LayerTrace> {
        let mut outs = Vec::with_capacity(self.layers.len());
        let mut x = x.shallow_clone();
        for (built, act, shuffle) in &self.layers {
            let mut dw_out = None;
            x = match built {
                Built::Conv(c) => c.forward(&x),
                Built::Sep(dw, pw) => {
                    let d = dw.forward(&x);
                    dw_out = Some(d.shallow_clone());
                    pw.forward(&d)
                }
                Built::Flatten => x.flatten(1, -1),
                Built::Dense(d) => d.forward(&x),
                Built::Reshape(c, h, w) => x.reshape([-1, *c, *h, *w]),
                Built::MaxPool(k) => x.max_pool2d([*k, *k], [*k, *k], [0, 0], [1, 1], false),
                Built::Fill { keep, fill } => x * keep + fill,
            };
            let conv = x.shallow_clone();
            if *shuffle {
                x = x.pixel_shuffle(2);
            }
            x = match act {
                Act::None => x,
                Act::Leaky => super::aten::leaky_relu(&x, 0.1),
                Act::Sigmoid => x.sigmoid(),
            };
            outs.push(LayerTrace {
                dw: dw_out,
                conv,
                out: x.shallow_clone(),
            });
        }
        outs
    }
}

impl Module for Net {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_all(x).pop().expect("at least one layer")
    }
}

/// Faces per person a mean code is measured on: enough for the mean, cheap at every preview.
pub const MEAN_CODE_FACES: usize = 256;

/// Shared encoder, one decoder per person (index 0 = A, 1 = B).
pub struct Autoencoder {
    pub spec: AutoencoderSpec,
    pub encoder: Net,
    pub decoders: Vec<Net>,
    /// Each person's mean code (`[1, …code shape]`), once measured on their faces
    /// ([`Autoencoder::mean_code`]): what [`Autoencoder::swap`] moves a source's code by.
    pub code_means: Option<[Tensor; 2]>,
}

impl Autoencoder {
    pub fn new(root: &nn::Path, spec: &AutoencoderSpec, people: usize) -> Self {
        let encoder = Net::new(&(root / "encoder"), &spec.encoder);
        let decoders = (0..people)
            .map(|k| Net::new(&(root / format!("decoder{k}")), &spec.decoder))
            .collect();
        Self {
            spec: spec.clone(),
            encoder,
            decoders,
            code_means: None,
        }
    }

    /// The identity shift of the swap into `to`: `to`'s mean code less the other person's.
    /// A's and B's codes differ mostly by such an offset (the demo's 256-wide bottleneck: means
    /// 1.24 apart against a spread of 0.67 and 0.50 within each person; with it removed, no
    /// linear read-out tells them apart), and decoder `to` renders whoever's offset it gets.
    pub fn identity_shift(&self, to: usize) -> Option<Tensor> {
        self.code_means.as_ref().map(|m| &m[to] - &m[1 - to])
    }

    /// `x`'s faces as person `to`: encoded, moved by the identity shift (when the means are
    /// known), decoded by `to`'s decoder. (RGB, mask) as [`Autoencoder::forward`].
    pub fn swap(&self, x: &Tensor, to: usize) -> (Tensor, Tensor) {
        self.decode(&self.shifted_code(x, to), to)
    }

    /// The code decoder `to` gets in a swap: the encoder's, moved by the identity shift.
    pub fn shifted_code(&self, x: &Tensor, to: usize) -> Tensor {
        let code = self.encoder.forward(x);
        match self.identity_shift(to) {
            Some(shift) => code + shift.to_device(x.device()),
            None => code,
        }
    }

    /// Sets [`Autoencoder::code_means`] from each person's `faces` (none when either has none).
    pub fn measure_identities(&mut self, faces: [&[image::RgbImage]; 2]) {
        let [a, b] = faces.map(|f| self.mean_code(f));
        self.code_means = a.zip(b).map(|(a, b)| [a, b]);
    }

    /// Mean code of `faces` ([`Autoencoder::sampled_codes`]): one person's place in the shared
    /// code.
    pub fn mean_code(&self, faces: &[image::RgbImage]) -> Option<Tensor> {
        self.sampled_codes(faces)
            .map(|codes| codes.mean_dim(0, true, tch::Kind::Float))
    }

    /// Codes `[N, …code shape]` of every k-th face of `faces`, k = len / [`MEAN_CODE_FACES`]
    /// (batches of 64, gradient-free); `None` for no faces.
    pub fn sampled_codes(&self, faces: &[image::RgbImage]) -> Option<Tensor> {
        let _guard = tch::no_grad_guard();
        let device = self.encoder.device();
        let step = (faces.len() / MEAN_CODE_FACES).max(1);
        let faces: Vec<_> = faces.iter().step_by(step).cloned().collect();
        let codes: Vec<Tensor> = faces
            .chunks(64)
            .map(|chunk| {
                self.encoder
                    .forward(&super::tensors::to_tensor(chunk, device))
            })
            .collect();
        (!codes.is_empty()).then(|| Tensor::cat(&codes, 0))
    }

    /// `x` in 0..1, `[N, 3, S, S]` → (RGB `[N, 3, S, S]`, mask `[N, 1, S, S]`) of `person`.
    pub fn forward(&self, x: &Tensor, person: usize) -> (Tensor, Tensor) {
        self.decode(&self.encoder.forward(x), person)
    }

    /// The shared encoder's code of `x`.
    pub fn encode(&self, x: &Tensor) -> Tensor {
        self.encoder.forward(x)
    }

    /// (RGB, mask) of `person`'s decoder for an encoder code.
    pub fn decode(&self, code: &Tensor, person: usize) -> (Tensor, Tensor) {
        let (rgb, mask, _) = self.decode_with_logits(code, person);
        (rgb, mask)
    }

    /// (RGB, mask, the mask's logits before the sigmoid): training fits the mask in logit space,
    /// where a saturated sigmoid still passes gradient.
    pub fn decode_with_logits(&self, code: &Tensor, person: usize) -> (Tensor, Tensor, Tensor) {
        let last = self.decoders[person]
            .forward_trace(code)
            .pop()
            .expect("the decoder has layers");
        (
            last.out.narrow(1, 0, 3),
            last.out.narrow(1, 3, 1),
            last.conv.narrow(1, 3, 1),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model_spec::swap::{preset, PRESETS};

    #[test]
    fn every_layer_of_every_preset_has_the_spec_shape_in_tch() {
        for name in PRESETS {
            let spec = preset(name).unwrap();
            let vs = nn::VarStore::new(tch::Device::Cpu);
            let ae = Autoencoder::new(&vs.root(), &spec, 2);
            let s = spec.size as i64;
            let x = Tensor::rand([2, 3, s, s], (tch::Kind::Float, tch::Device::Cpu));
            let code = tch::no_grad(|| ae.encoder.forward_all(&x));
            let decoded = tch::no_grad(|| ae.decoders[1].forward_all(code.last().unwrap()));
            let want: Vec<Shape> = spec.encoder.shapes().unwrap()[1..]
                .iter()
                .chain(&spec.decoder.shapes().unwrap()[1..])
                .copied()
                .collect();
            for (t, w) in code.iter().chain(&decoded).zip(&want) {
                let dims: Vec<usize> = t.size()[1..].iter().map(|&d| d as usize).collect();
                let expect = match *w {
                    Shape::Chw(c, h, w) => vec![c, h, w],
                    Shape::Flat(n) => vec![n],
                };
                assert_eq!(dims, expect, "{name}");
            }
            let params: i64 = vs
                .trainable_variables()
                .iter()
                .map(|t| t.numel() as i64)
                .sum();
            assert_eq!(
                params as usize,
                spec.params(2),
                "{name}: tch parameters == spec count"
            );
            let (rgb, mask) = tch::no_grad(|| ae.forward(&x, 0));
            assert_eq!(rgb.size(), [2, 3, s, s]);
            assert_eq!(mask.size(), [2, 1, s, s]);
            let (lo, hi) = (
                f64::try_from(mask.min()).unwrap(),
                f64::try_from(mask.max()).unwrap(),
            );
            assert!(lo >= 0.0 && hi <= 1.0, "{name}: mask is a sigmoid");
        }
    }

    #[test]
    fn the_identity_shift_centres_a_swapped_persons_codes_on_the_targets() {
        let spec = preset("lite").unwrap();
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let mut ae = Autoencoder::new(&vs.root(), &spec, 2);
        let s = spec.size;
        // Two "people": darker and brighter faces with a little texture each.
        let person = |base: u8, seed: u32| -> Vec<image::RgbImage> {
            (0..70)
                .map(|k| {
                    image::RgbImage::from_fn(s as u32, s as u32, |x, y| {
                        let t = ((x * 7 + y * 13 + k * 31 + seed) % 40) as u8;
                        image::Rgb([base + t, base / 2 + t, base / 3 + t])
                    })
                })
                .collect()
        };
        let (a, b) = (person(40, 1), person(180, 5));
        let x = super::super::tensors::to_tensor(&a, tch::Device::Cpu);
        let close = |p: &Tensor, q: &Tensor| f64::try_from((p - q).abs().max()).unwrap() < 1e-4;
        tch::no_grad(|| {
            // Unmeasured, a swap is the plain decoder.
            assert!(close(&ae.swap(&x, 1).0, &ae.forward(&x, 1).0));
            let means = [ae.mean_code(&a).unwrap(), ae.mean_code(&b).unwrap()];
            // The mean over batches of 64 is the mean over all faces.
            let whole = ae.encode(&x).mean_dim(0, true, tch::Kind::Float);
            assert!(close(&means[0], &whole));
            assert!(!close(&means[0], &means[1]), "the two people sit apart");
            ae.code_means = Some(means.each_ref().map(|m| m.shallow_clone()));
            let moved = ae.shifted_code(&x, 1).mean_dim(0, true, tch::Kind::Float);
            assert!(close(&moved, &means[1]), "A's codes now centre on B's");
            let (rgb, _) = ae.swap(&x, 1);
            assert!(close(&rgb, &ae.decode(&ae.shifted_code(&x, 1), 1).0));
            assert!(
                !close(&rgb, &ae.forward(&x, 1).0),
                "the shift changes the swap"
            );
        });
    }
}
