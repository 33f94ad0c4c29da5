//! Extraction throughput: `host-trainer extract` (in-process, 1 and 2 threads) against the Python
//! peer `scripts/peers/extract_peer.py` (onnxruntime + numpy), in one run on the same video.
//!
//! `cargo bench --workspace --bench extract` (run `make setup` first). Prints a table.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use facekit::RetinaFace;
use host_trainer::artefacts::dataset::Consent;
use host_trainer::stages::extract::{self, curate::CurationConfig, inputs::Input, ExtractOptions};
use shared_proto::FaceCropSpec;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let video = root.join("data/carphone_pristine.mp4");
    let model = root.join(facekit::RETINAFACE_MODEL);
    let python = root.join(".venv/bin/python");
    assert!(
        video.is_file() && model.is_file() && python.is_file(),
        "run `make setup` first"
    );
    let curation = CurationConfig::default();
    let detector = RetinaFace::load(&model, extract::detector_config(&curation)).unwrap();
    let rounds = 3;

    println!(
        "extract throughput on {} (best of {rounds})",
        video.display()
    );
    println!("| implementation | threads | frames/s | faces kept |");
    println!("|---|---|---|---|");
    for threads in [1, 2] {
        let mut best = 0.0f64;
        let mut kept = 0;
        for _ in 0..rounds {
            let out = tempfile::tempdir().unwrap();
            let opts = ExtractOptions {
                person: "A".into(),
                inputs: vec![Input::Video(video.clone())],
                out: out.path().join("A"),
                consent: Some(Consent::from_arg("who=bench;scope=benchmark").unwrap()),
                every: 1,
                max_faces: None,
                crop: FaceCropSpec::default(),
                curation: curation.clone(),
                reference: None,
                threads,
                progress: false,
            };
            let s = extract::extract(&opts, &detector, &AtomicBool::new(false)).unwrap();
            best = best.max(s.frames_processed as f64 / s.seconds);
            kept = s.accepted_total;
        }
        println!("| doppel (tract, detect+align+curate+PNG) | {threads} | {best:.1} | {kept} |");
    }
    for threads in [1, 2] {
        let mut best = 0.0f64;
        let mut faces = String::new();
        for _ in 0..rounds {
            let out = Command::new(&python)
                .arg(root.join("scripts/peers/extract_peer.py"))
                .arg("--model")
                .arg(&model)
                .arg("--input")
                .arg(&video)
                .args(["--threads", &threads.to_string()])
                .output()
                .expect("run the Python peer");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "peer failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let field = |k: &str| {
                text.split_whitespace()
                    .find_map(|t| t.strip_prefix(k))
                    .map(str::to_owned)
            };
            best = best.max(field("fps=").and_then(|f| f.parse().ok()).unwrap_or(0.0));
            faces = field("faces=").unwrap_or_default();
        }
        println!("| python peer (onnxruntime+numpy, detect+align) | {threads} | {best:.1} | {faces} (no curation) |");
    }
}
