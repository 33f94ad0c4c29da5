//! Fixtures for the booth tests: small but real ONNX models run by the real tract runtime, in a
//! real signed bundle. The "swap" model inverts the face (so a swap is visible and exactly
//! predictable); the "detector" scores mean brightness.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use shared_proto::bundle::{
    self, file_entry, Manifest, ModelEntry, ModelKind, Precision, Provenance, SigningKey,
};
use shared_proto::FaceCropSpec;
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

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

fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: output.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attrs,
        ..Default::default()
    }
}

fn ints(name: &str, v: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v,
        ..Default::default()
    }
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

fn scalar(name: &str, v: f32) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: DataType::Float as i32,
        raw_data: v.to_le_bytes().to_vec(),
        ..Default::default()
    }
}

fn info(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| tensor_shape_proto::Dimension {
                            value: Some(if d < 0 {
                                tensor_shape_proto::dimension::Value::DimParam("N".into())
                            } else {
                                tensor_shape_proto::dimension::Value::DimValue(d)
                            }),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn model(
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
) -> Vec<u8> {
    let m = ModelProto {
        ir_version: 7,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(GraphProto {
            name: "fixture".into(),
            node: nodes,
            initializer: inits,
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    };
    prost::Message::encode_to_vec(&m)
}

/// `rgb = 1 - face`, `mask = 1`.
pub fn invert_swap(size: i64) -> Vec<u8> {
    model(
        vec![
            node("Neg", &["face"], "neg", vec![]),
            node("Add", &["neg", "one"], "rgb", vec![]),
            node(
                "ReduceMean",
                &["face"],
                "m",
                vec![ints("axes", vec![1]), int("keepdims", 1)],
            ),
            node("Mul", &["m", "zero"], "z", vec![]),
            node("Add", &["z", "one"], "mask", vec![]),
        ],
        vec![scalar("one", 1.0), scalar("zero", 0.0)],
        vec![info("face", &[-1, 3, size, size])],
        vec![
            info("rgb", &[-1, 3, size, size]),
            info("mask", &[-1, 1, size, size]),
        ],
    )
}

/// `rgb = face · NaN`: a model gone bad.
pub fn nan_swap(size: i64) -> Vec<u8> {
    model(
        vec![
            node("Mul", &["face", "nan"], "rgb", vec![]),
            node(
                "ReduceMean",
                &["face"],
                "mask",
                vec![ints("axes", vec![1]), int("keepdims", 1)],
            ),
        ],
        vec![scalar("nan", f32::NAN)],
        vec![info("face", &[-1, 3, size, size])],
        vec![
            info("rgb", &[-1, 3, size, size]),
            info("mask", &[-1, 1, size, size]),
        ],
    )
}

/// `fake_probability = sigmoid(10 · (mean(face) − 0.5))`.
pub fn brightness_detector(size: i64) -> Vec<u8> {
    model(
        vec![
            node("Flatten", &["face"], "flat", vec![int("axis", 1)]),
            node(
                "ReduceMean",
                &["flat"],
                "mean",
                vec![ints("axes", vec![1]), int("keepdims", 1)],
            ),
            node("Sub", &["mean", "half"], "centred", vec![]),
            node("Mul", &["centred", "ten"], "logit", vec![]),
            node("Sigmoid", &["logit"], "fake_probability", vec![]),
        ],
        vec![scalar("half", 0.5), scalar("ten", 10.0)],
        vec![info("face", &[-1, 3, size, size])],
        vec![info("fake_probability", &[-1, 1])],
    )
}

fn entry(name: &str, kind: ModelKind, file: &str) -> ModelEntry {
    ModelEntry {
        name: name.into(),
        kind,
        precision: Precision::F32,
        file: file.into(),
        preset: "fixture".into(),
        from: (kind == ModelKind::Swap).then(|| "A".into()),
        to: (kind == ModelKind::Swap).then(|| "B".into()),
        crop: None,
        inputs: vec![],
        outputs: vec![],
        params: 0,
        mflops: 0.0,
        latency: vec![],
        int8: None,
        threshold: None,
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
