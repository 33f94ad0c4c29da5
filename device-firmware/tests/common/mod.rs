//! Fixtures for the booth tests: small but real ONNX models (written with model-spec's graph
//! builder, the exporter's own) run by the real tract runtime, in a real signed bundle. The "swap" model inverts the face (so a swap is visible and exactly
//! predictable); the "detector" scores mean brightness.
#![allow(dead_code)]

pub mod booth;

use std::path::{Path, PathBuf};

use model_spec::onnx::{self, attr_int, attr_ints, GraphBuilder};
use shared_proto::bundle::{
    self, file_entry, Manifest, ModelEntry, ModelKind, Provenance, SigningKey,
};
use shared_proto::FaceCropSpec;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

pub fn key_hex() -> String {
    shared_proto::bundle::VerifyingKey::from(&key())
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One graph from `build`, with a face input of `size` and the given outputs (`-1` = batch).
fn model(
    size: i64,
    outputs: &[(&str, Vec<i64>)],
    build: impl FnOnce(&mut GraphBuilder),
) -> Vec<u8> {
    let mut g = GraphBuilder::default();
    build(&mut g);
    let model = g.finish(
        "fixture",
        "device test fixture",
        vec![onnx::value_info("face", &[-1, 3, size, size], "face crop")],
        outputs
            .iter()
            .map(|(name, dims)| onnx::value_info(name, dims, ""))
            .collect(),
    );
    onnx::to_bytes(&model)
}

/// The swap graph's two outputs for `size`-px faces.
fn swap_outputs(size: i64) -> [(&'static str, Vec<i64>); 2] {
    [
        ("rgb", vec![-1, 3, size, size]),
        ("mask", vec![-1, 1, size, size]),
    ]
}

/// `rgb = 1 - face`, `mask = 1`.
pub fn invert_swap(size: i64) -> Vec<u8> {
    model(size, &swap_outputs(size), |g| {
        g.f32_const("one", &[], &[1.0]);
        g.f32_const("zero", &[], &[0.0]);
        g.node("Neg", &["face"], "neg", vec![]);
        g.node("Add", &["neg", "one"], "rgb", vec![]);
        let mean = vec![attr_ints("axes", vec![1]), attr_int("keepdims", 1)];
        g.node("ReduceMean", &["face"], "m", mean);
        g.node("Mul", &["m", "zero"], "z", vec![]);
        g.node("Add", &["z", "one"], "mask", vec![]);
    })
}

/// `rgb = face · NaN`: a model gone bad.
pub fn nan_swap(size: i64) -> Vec<u8> {
    model(size, &swap_outputs(size), |g| {
        g.f32_const("nan", &[], &[f32::NAN]);
        g.node("Mul", &["face", "nan"], "rgb", vec![]);
        let mean = vec![attr_ints("axes", vec![1]), attr_int("keepdims", 1)];
        g.node("ReduceMean", &["face"], "mask", mean);
    })
}

/// A signed swap model whose outputs are smaller than its crop says (8×8): what a crafted
/// bundle or a host bug could ship. `rgb` and `mask` are averages over 8×8 blocks.
pub fn tiny_swap(size: i64) -> Vec<u8> {
    model(
        size,
        &[("rgb", vec![-1, 3, 8, 8]), ("mask", vec![-1, 1, 8, 8])],
        |g| {
            let k = size / 8;
            let pool = vec![
                attr_ints("kernel_shape", vec![k, k]),
                attr_ints("strides", vec![k, k]),
            ];
            g.node("AveragePool", &["face"], "rgb", pool);
            let mean = vec![attr_ints("axes", vec![1]), attr_int("keepdims", 1)];
            g.node("ReduceMean", &["rgb"], "mask", mean);
        },
    )
}

/// Replaces the bundle's swap model with `model` and seals it again: a bundle that passes
/// every check but carries a bad model.
pub fn reseal_with_swap(dir: &Path, model: &[u8]) {
    std::fs::write(dir.join("models/swap.onnx"), model).unwrap();
    let mut manifest: Manifest = shared_proto::decode(
        bundle::MANIFEST_KIND,
        &std::fs::read(dir.join(bundle::MANIFEST)).unwrap(),
    )
    .unwrap();
    manifest.files = vec![file_entry(dir, "models/swap.onnx").unwrap()];
    bundle::seal(dir, &manifest, &key()).unwrap();
}

/// `fake_probability = sigmoid(10 · (mean(face) − 0.5))`.
pub fn brightness_detector(size: i64) -> Vec<u8> {
    model(size, &[("fake_probability", vec![-1, 1])], |g| {
        g.f32_const("half", &[], &[0.5]);
        g.f32_const("ten", &[], &[10.0]);
        g.node("Flatten", &["face"], "flat", vec![attr_int("axis", 1)]);
        let mean = vec![attr_ints("axes", vec![1]), attr_int("keepdims", 1)];
        g.node("ReduceMean", &["flat"], "mean", mean);
        g.node("Sub", &["mean", "half"], "centred", vec![]);
        g.node("Mul", &["centred", "ten"], "logit", vec![]);
        g.node("Sigmoid", &["logit"], "fake_probability", vec![]);
    })
}

fn entry(name: &str, kind: ModelKind, file: &str) -> ModelEntry {
    let entry = match kind {
        ModelKind::Swap => ModelEntry::swap(name, file, "A", "B"),
        ModelKind::Detector => ModelEntry::detector(name, file),
    };
    ModelEntry {
        preset: "fixture".into(),
        ..entry
    }
}

/// A signed bundle in `dir` with the invert "swap" and, if asked, the brightness detector.
pub fn write_bundle(dir: &Path, steps: i64, with_detector: bool) {
    let crop = FaceCropSpec::default();
    let s = crop.size as i64;
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::write(dir.join("models/swap.onnx"), invert_swap(s)).unwrap();
    let mut models = vec![entry("swap_A_to_B", ModelKind::Swap, "models/swap.onnx")];
    if with_detector {
        std::fs::write(dir.join("models/detector.onnx"), brightness_detector(s)).unwrap();
        models.push(entry(
            "detector",
            ModelKind::Detector,
            "models/detector.onnx",
        ));
    }
    let files = models
        .iter()
        .map(|m| file_entry(dir, &m.file).unwrap())
        .collect();
    let manifest = Manifest {
        serial: steps.max(0) as u64,
        producer: "device tests".into(),
        created: "2026-11-25T00:00:00Z".into(),
        crop,
        models,
        provenance: Provenance {
            run: "fixture".into(),
            preset: "fixture".into(),
            steps,
            datasets: vec![],
            metrics: vec![],
        },
        files,
    };
    bundle::seal(dir, &manifest, &key()).unwrap();
}

/// [`write_bundle`] with the detector, its manifest entry carrying `check`.
pub fn write_bundle_with_check(dir: &Path, steps: i64, check: shared_proto::BlurCheck) {
    write_bundle(dir, steps, true);
    let mut manifest = bundle::open(dir, &[]).unwrap().manifest;
    for m in manifest.models.iter_mut() {
        if m.kind == ModelKind::Detector {
            m.blur_check = Some(check);
        }
    }
    bundle::seal(dir, &manifest, &key()).unwrap();
}

/// The first `n` frames of a sample video.
pub fn frames(video: &str, n: usize) -> Vec<image::RgbImage> {
    let mut r = facekit::VideoReader::open(root().join(video)).unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        match facekit::FrameSource::next_frame(&mut r).unwrap() {
            Some(f) => out.push(f),
            None => break,
        }
    }
    out
}

/// A model slot serving the bundle in `dir` (signed with [`key_hex`]'s key).
pub fn loaded_slot(dir: &Path) -> device_firmware::models::ModelSlot {
    let slot = device_firmware::models::ModelSlot::default();
    slot.reload(dir, &[key_hex()], None).unwrap();
    slot
}

/// [`write_bundle`] into `dir`, then a slot serving it.
pub fn slot_with_bundle(
    dir: &Path,
    steps: i64,
    with_detector: bool,
) -> device_firmware::models::ModelSlot {
    write_bundle(dir, steps, with_detector);
    loaded_slot(dir)
}
