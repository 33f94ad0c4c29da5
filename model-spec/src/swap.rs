//! The face-swap autoencoder's named architectures (`original` is the classic deepfake model;
//! `lite` is sized for a Raspberry Pi) and the patch discriminator that trains them.

use crate::spec::{Act, AutoencoderSpec, Layer, NetSpec, Shape, DECODER_CHANNELS};

pub const PRESETS: [&str; 3] = ["original", "lite", "hq128"];

pub fn preset(name: &str) -> Option<AutoencoderSpec> {
    match name {
        "original" => Some(original(64)),
        "hq128" => Some(original(128)),
        "lite" => Some(lite()),
        _ => None,
    }
}

/// Patch discriminator for `size`-px faces: three strided 5×5 convolutions and a 3×3 logit map.
pub fn discriminator(size: usize) -> NetSpec {
    let conv = |out| Layer::Conv {
        out,
        kernel: 5,
        stride: 2,
        act: Act::Leaky,
    };
    NetSpec {
        input: Shape::Chw(3, size, size),
        layers: vec![
            conv(64),
            conv(128),
            conv(256),
            Layer::Conv {
                out: 1,
                kernel: 3,
                stride: 1,
                act: Act::None,
            },
        ],
    }
}

/// Discriminator on the shared encoder's code (`code` = the encoder's output shape): tells A's
/// codes from B's. Trained against it, the encoder keeps identity out of the code, so each
/// decoder meets the other person's codes in the form of its own (DeepFaceLab's "true face").
pub fn code_discriminator(code: Shape) -> NetSpec {
    NetSpec {
        input: code,
        layers: vec![
            Layer::Conv {
                out: 128,
                kernel: 3,
                stride: 2,
                act: Act::Leaky,
            },
            Layer::Flatten,
            Layer::Dense {
                out: 1,
                act: Act::None,
            },
        ],
    }
}

/// The classic deepfake autoencoder, as the brief doppel started from describes it: "5
/// convolution layers to extract features followed by 2 dense layers. Then it uses a convolution
/// layer to upsample the image. The decoder continues the upsampling with 4 more convolution
/// layers until it reconstructs the 64 × 64 image back."
///
/// Encoder: five 5×5 stride-2 convolutions 3→64→128→256→512→1024 (64 px → 2×2), dense to a
/// 512-wide bottleneck, dense to 4×4×1024, one 3×3 upscale to 8×8×512. Decoder: three upscales to
/// 64×64×64 and a 5×5 convolution to RGB + mask: four convolutions.
fn original(size: usize) -> AutoencoderSpec {
    let s = size / 32;
    AutoencoderSpec {
        preset: if size == 64 {
            "original".into()
        } else {
            format!("hq{size}")
        },
        size,
        encoder: NetSpec {
            input: Shape::Chw(3, size, size),
            layers: vec![
                down(64, false),
                down(128, false),
                down(256, false),
                down(512, false),
                down(1024, false),
                Layer::Flatten,
                dense(512),
                dense(1024 * 4 * s * s),
                Layer::Reshape {
                    c: 1024,
                    h: 2 * s,
                    w: 2 * s,
                },
                up(512, false),
            ],
        },
        decoder: NetSpec {
            input: Shape::Chw(512, 4 * s, 4 * s),
            layers: vec![
                up(256, false),
                up(128, false),
                up(64, false),
                to_face_and_mask(),
            ],
        },
    }
}

/// Device preset: the same topology with depthwise-separable convolutions and a narrower
/// bottleneck, ≤ 300 MFLOP per face and ≤ 5 M parameters with two decoders.
fn lite() -> AutoencoderSpec {
    AutoencoderSpec {
        preset: "lite".into(),
        size: 64,
        encoder: NetSpec {
            input: Shape::Chw(3, 64, 64),
            layers: vec![
                down(32, false),
                down(64, true),
                down(128, true),
                down(256, true),
                down(512, true),
                Layer::Flatten,
                dense(256),
                dense(384 * 4 * 4),
                Layer::Reshape { c: 384, h: 4, w: 4 },
                up(256, true),
            ],
        },
        decoder: NetSpec {
            input: Shape::Chw(256, 8, 8),
            layers: vec![
                up(128, true),
                up(96, true),
                up(64, true),
                to_face_and_mask(),
            ],
        },
    }
}

/// An encoder step: 5×5 stride-2 leaky convolution, depthwise-separable when `separable`.
fn down(out: usize, separable: bool) -> Layer {
    let (kernel, stride, act) = (5, 2, Act::Leaky);
    if separable {
        Layer::SepConv {
            out,
            kernel,
            stride,
            act,
        }
    } else {
        Layer::Conv {
            out,
            kernel,
            stride,
            act,
        }
    }
}

/// A 3×3 leaky upscale ×2.
fn up(out: usize, separable: bool) -> Layer {
    Layer::Upscale {
        out,
        kernel: 3,
        separable,
        act: Act::Leaky,
    }
}

fn dense(out: usize) -> Layer {
    Layer::Dense {
        out,
        act: Act::None,
    }
}

/// The decoder's last layer: 5×5 to RGB + mask, squashed to 0..1.
fn to_face_and_mask() -> Layer {
    Layer::Conv {
        out: DECODER_CHANNELS,
        kernel: 5,
        stride: 1,
        act: Act::Sigmoid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_consistent() {
        for name in PRESETS {
            preset(name)
                .unwrap()
                .validate()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn original_counts_match_hand_computation() {
        let spec = preset("original").unwrap();
        // Encoder convolutions: k²·cin·cout + cout for 3→64→128→256→512→1024.
        let convs = (25 * 3 * 64 + 64)
            + (25 * 64 * 128 + 128)
            + (25 * 128 * 256 + 256)
            + (25 * 256 * 512 + 512)
            + (25 * 512 * 1024 + 1024);
        let dense = (4096 * 512 + 512) + (512 * 16384 + 16384);
        let enc_up = 9 * 1024 * 2048 + 2048;
        let dec = (9 * 512 * 1024 + 1024)
            + (9 * 256 * 512 + 512)
            + (9 * 128 * 256 + 256)
            + (25 * 64 * 4 + 4);
        assert_eq!(spec.encoder.cost().unwrap().params, convs + dense + enc_up);
        assert_eq!(spec.decoder.cost().unwrap().params, dec);
        assert_eq!(spec.params(2), convs + dense + enc_up + 2 * dec);

        // MACs: output pixels · cout · cin · k².
        let conv_macs = 32 * 32 * 64 * 3 * 25
            + 16 * 16 * 128 * 64 * 25
            + 8 * 8 * 256 * 128 * 25
            + 4 * 4 * 512 * 256 * 25
            + 2 * 2 * 1024 * 512 * 25;
        let dense_macs = 4096 * 512 + 512 * 16384;
        let up_macs = 4 * 4 * 2048 * 1024 * 9;
        let dec_macs = 8 * 8 * 1024 * 512 * 9
            + 16 * 16 * 512 * 256 * 9
            + 32 * 32 * 256 * 128 * 9
            + 64 * 64 * 4 * 64 * 25;
        assert_eq!(
            spec.flops_per_face(),
            2 * (conv_macs + dense_macs + up_macs + dec_macs)
        );
    }

    #[test]
    fn lite_fits_the_device_budget() {
        let spec = preset("lite").unwrap();
        assert!(
            spec.flops_per_face() <= 300_000_000,
            "{} FLOP",
            spec.flops_per_face()
        );
        assert!(spec.params(2) <= 5_000_000, "{} params", spec.params(2));
    }

    #[test]
    fn incompatible_layers_are_reported_with_their_index() {
        let net = NetSpec {
            input: Shape::Flat(10),
            layers: vec![
                Layer::Dense {
                    out: 4,
                    act: Act::None,
                },
                Layer::Flatten,
            ],
        };
        assert!(matches!(
            net.shapes(),
            Err(crate::spec::SpecError::Incompatible { index: 1, .. })
        ));
    }
}
