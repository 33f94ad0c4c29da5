//! Deepfake ("fake face") detector architectures in the same spec system as the swap models, so
//! the ONNX writer and the parameter/FLOP counts need nothing new. MesoNet-class: small
//! convolution + pooling stacks on an aligned face crop with a margin (the blending boundary must
//! be inside). Not to be confused with the face detector (RetinaFace, in facekit), which finds
//! faces; this one scores whether a found face is fake.

use serde::{Deserialize, Serialize};
use shared_proto::FaceCropSpec;

use crate::spec::{Act, Layer, NetSpec, Shape};

pub const PRESETS: [&str; 3] = ["meso4", "meso-wide", "mobile"];

/// The crop every detector sees: 128 px with a quarter of the side as margin on each edge.
pub fn crop() -> FaceCropSpec {
    FaceCropSpec::new(128, 0.25)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FakeDetectorSpec {
    pub preset: String,
    pub crop: FaceCropSpec,
    /// Face crop in, one sigmoid probability that the face is fake out.
    pub net: NetSpec,
}

impl FakeDetectorSpec {
    pub fn params(&self) -> usize {
        self.net.cost().map(|c| c.params).unwrap_or(0)
    }

    pub fn flops_per_face(&self) -> usize {
        2 * self.net.cost().map(|c| c.macs).unwrap_or(0)
    }
}

/// How much of the face ellipse (its semi-axes) a detector's first layer fills with grey: the
/// eyes, nose and mouth. With the inner face visible, detectors trained on three identities
/// learnt those people's faces and called a pasted face of one of them *more* real than the
/// held-out person's own (graphics-swap AUC 0.26 on held-out identities; 0.56 with it hidden).
/// The self-blend boundary (0.85–1.15 of the ellipse after wobble and erosion) stays in view.
pub const HIDDEN_FACE: f32 = 0.65;

/// Meso-4 (Afchar et al. 2018) at 128 px without batch norm: four conv + max-pool stages and a
/// 16-wide dense layer (`meso4`, ~16 k parameters), or the same shape with 4–8× the channels
/// (`meso-wide`, ~230 k); or `mobile`, a MobileNet-style stack of separable convolutions
/// (~57 k parameters, 39 MFLOP, against meso4's 16 k and 30 MFLOP).
/// All first fill the middle of the face with grey ([`HIDDEN_FACE`]).
pub fn preset(name: &str) -> Option<FakeDetectorSpec> {
    let crop = crop();
    let (cx, cy, ax, ay) = shared_proto::face_ellipse(&crop.template_px());
    let hide = Layer::FillEllipse {
        centre: [cx, cy],
        axes: [HIDDEN_FACE * ax, HIDDEN_FACE * ay],
        fill: 0.5,
    };
    let layers = match name {
        "meso4" => meso([8, 8, 16, 16], 16),
        "meso-wide" => meso([16, 32, 64, 64], 64),
        "mobile" => mobile(),
        _ => return None,
    };
    let s = crop.size as usize;
    Some(FakeDetectorSpec {
        preset: name.into(),
        crop,
        net: NetSpec {
            input: Shape::Chw(3, s, s),
            layers: std::iter::once(hide).chain(layers).collect(),
        },
    })
}

fn meso(c: [usize; 4], dense: usize) -> Vec<Layer> {
    let conv = |out, kernel| Layer::Conv {
        out,
        kernel,
        stride: 1,
        act: Act::Leaky,
    };
    let pool = |size| Layer::MaxPool { size };
    vec![
        conv(c[0], 3),
        pool(2),
        conv(c[1], 5),
        pool(2),
        conv(c[2], 5),
        pool(2),
        conv(c[3], 5),
        pool(4),
        Layer::Flatten,
        Layer::Dense {
            out: dense,
            act: Act::Leaky,
        },
        Layer::Dense {
            out: 1,
            act: Act::Sigmoid,
        },
    ]
}

/// 128² → a strided 3×3 conv, then separable 3×3 convs that halve the side three more times
/// (64² → 8²), a max over the last 8×8 (the strongest blend evidence anywhere on the boundary)
/// and a small dense head.
fn mobile() -> Vec<Layer> {
    let sep = |out, stride| Layer::SepConv {
        out,
        kernel: 3,
        stride,
        act: Act::Leaky,
    };
    vec![
        Layer::Conv {
            out: 16,
            kernel: 3,
            stride: 2,
            act: Act::Leaky,
        },
        sep(32, 1),
        sep(64, 2),
        sep(64, 1),
        sep(128, 2),
        sep(128, 1),
        sep(128, 2),
        Layer::MaxPool { size: 8 },
        Layer::Flatten,
        Layer::Dense {
            out: 32,
            act: Act::Leaky,
        },
        Layer::Dense {
            out: 1,
            act: Act::Sigmoid,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meso4_counts_match_hand_computation() {
        let d = preset("meso4").unwrap();
        assert_eq!(d.net.output().unwrap(), Shape::Flat(1));
        // conv 3→8 3×3, 8→8 5×5, 8→16 5×5, 16→16 5×5 (weights + biases), dense 256→16→1.
        let params = (27 * 8 + 8)
            + (200 * 8 + 8)
            + (200 * 16 + 16)
            + (400 * 16 + 16)
            + (256 * 16 + 16)
            + (16 + 1);
        assert_eq!(d.params(), params);
        let macs = 128 * 128 * 8 * 27
            + 64 * 64 * 8 * 200
            + 32 * 32 * 16 * 200
            + 16 * 16 * 16 * 400
            + 256 * 16
            + 16;
        assert_eq!(d.flops_per_face(), 2 * macs);
        assert!(preset("meso-wide").unwrap().params() > 10 * params);
        assert!(preset("meso5").is_none());
    }

    #[test]
    fn mobile_counts_match_hand_computation() {
        let d = preset("mobile").unwrap();
        assert_eq!(d.net.output().unwrap(), Shape::Flat(1));
        // Separable 3×3: a depthwise filter + bias per input channel, then pointwise with bias.
        let sep = |cin: usize, cout: usize, side: usize| {
            (
                cin * 10 + cin * cout + cout,
                (cin * 9 + cin * cout) * side * side,
            )
        };
        let layers = [
            (27 * 16 + 16, 27 * 16 * 64 * 64),
            sep(16, 32, 64),
            sep(32, 64, 32),
            sep(64, 64, 32),
            sep(64, 128, 16),
            sep(128, 128, 16),
            sep(128, 128, 8),
            (128 * 32 + 32, 128 * 32),
            (32 + 1, 32),
        ];
        assert_eq!(d.params(), layers.iter().map(|l| l.0).sum::<usize>());
        assert_eq!(
            d.flops_per_face(),
            2 * layers.iter().map(|l| l.1).sum::<usize>()
        );
        // Within the budget for a detector backbone at this crop (≤ 150 MFLOP).
        assert!(d.flops_per_face() < 150_000_000);
    }
}
