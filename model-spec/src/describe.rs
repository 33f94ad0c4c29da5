//! The `model-info` tables: every layer of a spec with its output shape, parameters and MFLOPs,
//! counted from the spec.

use std::fmt::Write as _;

use crate::fake_detector::FakeDetectorSpec;
use crate::spec::{AutoencoderSpec, NetSpec, Shape};

/// The swap autoencoder: encoder and decoder tables and the totals.
pub fn describe(spec: &AutoencoderSpec) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "preset {} — {}×{} RGB in, RGB + mask out",
        spec.preset, spec.size, spec.size
    );
    for (name, net) in [
        ("encoder", &spec.encoder),
        ("decoder (one per person)", &spec.decoder),
    ] {
        let _ = writeln!(out, "\n{name}\n{}", header());
        table(&mut out, net);
    }
    let _ = writeln!(
        out,
        "\nparameters: {:.2} M with 2 decoders ({:.2} M encoder + decoder used per swap)\nper face: {:.1} MFLOP (2 FLOP per multiply-accumulate)",
        spec.params(2) as f64 / 1e6,
        spec.params(1) as f64 / 1e6,
        spec.flops_per_face() as f64 / 1e6
    );
    out
}

/// A fake-face detector preset.
pub fn describe_fake_detector(spec: &FakeDetectorSpec) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "detector {} — {}×{} RGB crop (margin {}) in, fake probability out\n{}",
        spec.preset,
        spec.crop.size,
        spec.crop.size,
        spec.crop.margin,
        header()
    );
    table(&mut out, &spec.net);
    let _ = writeln!(
        out,
        "\nparameters: {}\nper face: {:.1} MFLOP",
        spec.params(),
        spec.flops_per_face() as f64 / 1e6
    );
    out
}

fn header() -> String {
    format!(
        "{:<4} {:<44} {:>16} {:>12} {:>10}",
        "#", "layer", "output", "params", "MFLOP"
    )
}

fn table(out: &mut String, net: &NetSpec) {
    let mut shape = net.input;
    for (i, layer) in net.layers.iter().enumerate() {
        let Ok((next, cost)) = layer.apply(i, shape) else {
            let _ = writeln!(out, "{i:<4} {layer:?}: incompatible with {shape:?}");
            return;
        };
        let shown = match next {
            Shape::Chw(c, h, w) => format!("{c}×{h}×{w}"),
            Shape::Flat(n) => format!("{n}"),
        };
        let name = layer.to_string();
        let _ = writeln!(
            out,
            "{i:<4} {name:<44} {shown:>16} {:>12} {:>10.2}",
            cost.params,
            2.0 * cost.macs as f64 / 1e6
        );
        shape = next;
    }
}
