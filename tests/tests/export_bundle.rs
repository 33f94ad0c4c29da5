//! `host-trainer export / inspect / verify` end to end: a short real run becomes a signed int8
//! bundle that onnxruntime agrees with, and every kind of damage is refused by `verify`.

use std::path::Path;
use std::process::Command;

use e2e_tests::{
    dataset_faces, host_trainer, host_trainer_ok, root, sample_pair, succeeded, train_pair,
};
use shared_proto::bundle::{self, SigningKey};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("models")).unwrap();
    for rel in [bundle::MANIFEST, bundle::SIGNATURE] {
        std::fs::copy(from.join(rel), to.join(rel)).unwrap();
    }
    for e in std::fs::read_dir(from.join("models")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join("models").join(e.file_name())).unwrap();
    }
}

/// The last `n` faces of a dataset (the held-out end of the video) as NCHW floats in 0..1.
fn last_faces(dataset: &str, n: usize) -> Vec<f32> {
    let faces = dataset_faces(dataset);
    faces[faces.len() - n..].concat()
}

/// onnx.checker + onnxruntime on `model` against `expected` (see scripts/peers/onnx_judge.py).
fn judge(dir: &Path, model: &Path, input: &[f32], expected: &[f32], limit: &[&str]) -> String {
    let raw = |v: &[f32]| v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>();
    std::fs::write(dir.join("x.bin"), raw(input)).unwrap();
    std::fs::write(dir.join("y.bin"), raw(expected)).unwrap();
    let o = Command::new(root().join(".venv/bin/python"))
        .arg(root().join("scripts/peers/onnx_judge.py"))
        .arg(model)
        .arg(dir.join("x.bin"))
        .arg(dir.join("y.bin"))
        .args(limit)
        .output()
        .expect("the venv's python (make setup)");
    succeeded(&o, "onnx_judge.py")
}

/// tract's first `outputs` outputs (rgb, mask, identity_offset) per face, as the device
/// computes them for the person the model was trained on (a zero visitor_offset).
fn tract_outputs(model: &Path, faces: &[f32], n: usize, outputs: usize) -> Vec<f32> {
    let m = facekit::OnnxModel::from_path(model, n, true).unwrap();
    assert_eq!(m.input_shapes.len(), 2, "face and visitor_offset");
    let outs = m.run_with_zeros_after(faces.to_vec()).unwrap();
    assert_eq!(outs.len(), 3, "rgb, mask and identity_offset");
    (0..n)
        .flat_map(|i| {
            outs[..outputs]
                .iter()
                .flat_map(|o| o[i * o.len() / n..(i + 1) * o.len() / n].to_vec())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_trained_run_exports_to_a_verified_int8_bundle_and_damage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b) = sample_pair(d);
    let run = d.join("run");
    let r = run.to_str().unwrap();
    succeeded(&train_pair(&a, &b, &run, &["--steps", "20"]), "train");
    let keys = d.join("keys");
    let k = keys.to_str().unwrap();
    let bundle_dir = d.join("bundle");
    let out = host_trainer_ok(
        "export",
        &[
            "--run",
            r,
            "--out",
            bundle_dir.to_str().unwrap(),
            "--int8",
            "--keys",
            k,
        ],
    );
    assert!(out.contains("created signing key"), "{out}");
    let bundle_s = bundle_dir.to_str().unwrap();

    // inspect prints the manifest as JSON: crop spec, models, provenance with consent.
    let manifest: serde_json::Value =
        serde_json::from_str(&host_trainer_ok("inspect", &[bundle_s])).unwrap();
    assert_eq!(manifest["crop"]["size"], 64);
    let models = manifest["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    // The booth's default swap (the first model) turns the visitor into B.
    assert_eq!(models[0]["to"], "B");
    for m in models {
        assert_eq!(m["precision"], "Int8Qdq");
        let q = &m["int8"];
        assert!(q["psnr_db"].as_f64().unwrap() >= 35.0, "{q}");
        let ratio = q["f32_bytes"].as_f64().unwrap() / q["int8_bytes"].as_f64().unwrap();
        assert!(ratio > 3.5, "int8 file {ratio:.2}x smaller than f32");
        assert_eq!(m["latency"].as_array().unwrap().len(), 2);
        assert_eq!(m["inputs"][0]["name"], "face");
        // The booth's way to swap strangers: a visitor's offset in, each face's out.
        assert_eq!(m["inputs"][1]["name"], "visitor_offset");
        assert_eq!(m["outputs"][2]["name"], "identity_offset");
    }
    let datasets = manifest["provenance"]["datasets"].as_array().unwrap();
    assert_eq!(datasets.len(), 2);
    assert!(datasets
        .iter()
        .all(|d| d["consent"]["who"] == "sample person"));

    let pubkey = keys.join("host.pub");
    let pk = pubkey.to_str().unwrap();
    assert!(host_trainer_ok("verify", &[bundle_s, "--pubkey", pk]).contains("ok:"));

    // onnxruntime and onnx.checker, as outside judges, agree with what tract runs.
    let model = bundle_dir.join("models/swap_A_to_B.onnx");
    let faces = last_faces(&a, 6);
    let tract = tract_outputs(&model, &faces, 6, 2);
    let judged = judge(
        d,
        &model,
        &faces,
        &tract,
        &["--min-psnr", "35", "--outputs", "rgb,mask"],
    );
    assert!(judged.contains("psnr_db"), "{judged}");
    let f32_dir = d.join("bundle_f32");
    host_trainer_ok(
        "export",
        &["--run", r, "--out", f32_dir.to_str().unwrap(), "--keys", k],
    );
    let f32_model = f32_dir.join("models/swap_A_to_B.onnx");
    // Every output in f32, the faces' identity offsets (what the booth follows visitors by)
    // included.
    let tract = tract_outputs(&f32_model, &faces, 6, 3);
    judge(d, &f32_model, &faces, &tract, &["--tol", "1e-4"]);

    // Each kind of damage, on a fresh copy, is refused with a message naming the problem.
    let refused = |name: &str, damage: &dyn Fn(&Path), extra: &[&str], expect: &str| {
        let copy = d.join(name);
        copy_dir(&bundle_dir, &copy);
        damage(&copy);
        let c = copy.to_str().unwrap();
        let o = host_trainer("verify", &[&[c][..], extra].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success(),
            "{name}: verify accepted a damaged bundle"
        );
        assert!(err.contains(expect), "{name}: {err}");
    };
    let model_file = "models/swap_B_to_A.onnx";
    refused(
        "tampered_model",
        &|c| {
            let p = c.join(model_file);
            let mut bytes = std::fs::read(&p).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x55;
            std::fs::write(&p, bytes).unwrap();
        },
        &["--pubkey", pk],
        "sha256",
    );
    refused(
        "truncated_model",
        &|c| {
            let p = c.join(model_file);
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() / 3]).unwrap();
        },
        &["--pubkey", pk],
        "truncated",
    );
    refused(
        "tampered_manifest",
        &|c| {
            let p = c.join(bundle::MANIFEST);
            let mut bytes = std::fs::read(&p).unwrap();
            let i = bytes.len() - 5;
            bytes[i] ^= 1;
            std::fs::write(&p, bytes).unwrap();
        },
        &["--pubkey", pk],
        "signature does not match",
    );
    let stranger = SigningKey::from_bytes(&[7; 32]);
    refused(
        "wrong_signer",
        &|c| bundle::sign_manifest_file(c, &stranger).unwrap(),
        &["--pubkey", pk],
        "not a trusted key",
    );
    let host_key = {
        let hex_seed = std::fs::read_to_string(keys.join("host.key")).unwrap();
        let seed: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&hex_seed.trim()[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        SigningKey::from_bytes(&seed.try_into().unwrap())
    };
    refused(
        "future_version",
        &|c| {
            // The version varint follows the 4 magic bytes; re-signed so only the version is wrong.
            let p = c.join(bundle::MANIFEST);
            let mut bytes = std::fs::read(&p).unwrap();
            bytes[4] = (shared_proto::FORMAT_VERSION + 1) as u8;
            std::fs::write(&p, bytes).unwrap();
            bundle::sign_manifest_file(c, &host_key).unwrap();
        },
        &["--pubkey", pk],
        &format!(
            "format version {} is not supported",
            shared_proto::FORMAT_VERSION + 1
        ),
    );

    // An export into a folder that holds other work is refused and leaves it untouched.
    let precious = d.join("precious");
    std::fs::create_dir_all(&precious).unwrap();
    std::fs::write(precious.join("notes.txt"), "keep me").unwrap();
    let o = host_trainer(
        "export",
        &["--run", r, "--out", precious.to_str().unwrap(), "--keys", k],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a bundle"));
    assert_eq!(
        std::fs::read_to_string(precious.join("notes.txt")).unwrap(),
        "keep me"
    );
}
