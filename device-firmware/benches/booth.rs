//! The booth's frame budget on 640×480 input with one face: per-stage milliseconds (decode of a
//! camera-style MJPEG frame, detection, alignment, swap, blend, overlay) and end-to-end FPS, for
//! `lite` and `original`, f32 and int8 (weights folded at load), 1 and 2 threads; onnxruntime on
//! the same swap graphs and on RetinaFace in the same run; MFLOPs per frame and predicted
//! Raspberry Pi 4 / 5 FPS from them.
//!
//! Needs the graphs `cargo bench --workspace --bench export` leaves in `out/bench-models/`
//! (`make bench` runs both in order).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use device_firmware::config::{Mode, PipelineConfig};
use device_firmware::models::{load, LoadedBundle};
use device_firmware::overlay::{self, Hud};
use device_firmware::pipeline::Pipeline;
use device_firmware::source::formats::{decode, PixelFormat};
use shared_proto::bundle::{
    self, file_entry, predict_latency, Manifest, ModelEntry, Provenance, SigningKey, BOARDS,
};
use shared_proto::FaceCropSpec;

const FRAMES: usize = 40;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A signed single-model bundle around `onnx`, loaded the way the booth loads bundles.
fn bundle_for(onnx: &Path, dir: &Path, mflops: f64) -> LoadedBundle {
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::copy(onnx, dir.join("models/swap.onnx")).unwrap();
    let key = SigningKey::from_bytes(&[9; 32]);
    let manifest = Manifest {
        serial: 1,
        producer: "booth bench".into(),
        created: String::new(),
        crop: FaceCropSpec::default(),
        models: vec![ModelEntry {
            preset: "bench".into(),
            mflops,
            latency: predict_latency(mflops),
            ..ModelEntry::swap("swap", "models/swap.onnx", "A", "B")
        }],
        provenance: Provenance {
            run: String::new(),
            preset: "bench".into(),
            steps: 0,
            datasets: vec![],
            metrics: vec![],
        },
        files: vec![file_entry(dir, "models/swap.onnx").unwrap()],
    };
    bundle::seal(dir, &manifest, &key).unwrap();
    let hex: String = bundle::VerifyingKey::from(&key)
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    load(dir, &[hex], None).unwrap()
}

/// 640×480 frames with one face (the movie sample ×4), as JPEG buffers a webcam would send.
fn camera_frames() -> Vec<Vec<u8>> {
    let mut r = facekit::VideoReader::open(root().join("data/movie.avi")).unwrap();
    let mut out = Vec::new();
    while let Some(f) = facekit::FrameSource::next_frame(&mut r).unwrap() {
        let big = image::imageops::resize(&f, 640, 480, image::imageops::FilterType::Triangle);
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
            .encode_image(&big)
            .unwrap();
        out.push(jpeg);
    }
    out
}

#[derive(Default)]
struct Row {
    decode: f64,
    detect: f64,
    align: f64,
    swap: f64,
    blend: f64,
    draw: f64,
    total: f64,
    swapped: usize,
}

fn measure(pipeline: &mut Pipeline, bundle: &LoadedBundle, jpegs: &[Vec<u8>]) -> Row {
    let mut row = Row::default();
    for i in 0..FRAMES + 5 {
        let t0 = Instant::now();
        let jpeg = &jpegs[i % jpegs.len()];
        let mut frame = decode(PixelFormat::Mjpeg, 640, 480, jpeg).unwrap();
        let decode_ms = t0.elapsed().as_secs_f64() * 1e3;
        let r = pipeline.process(&mut frame, Some(bundle), 30.0);
        let t = Instant::now();
        overlay::draw(
            &mut frame,
            &Hud {
                mode: Some(Mode::Swap),
                face: r.face.clone(),
                ..Default::default()
            },
        );
        let draw = t.elapsed().as_secs_f64() * 1e3;
        if i < 5 {
            continue; // warm-up
        }
        row.decode += decode_ms;
        row.detect += r.times.detect;
        row.align += r.times.align;
        row.swap += r.times.swap;
        row.blend += r.times.blend;
        row.draw += draw;
        row.total += t0.elapsed().as_secs_f64() * 1e3;
        row.swapped += r.swapped as usize;
    }
    let n = FRAMES as f64;
    for v in [
        &mut row.decode,
        &mut row.detect,
        &mut row.align,
        &mut row.swap,
        &mut row.blend,
        &mut row.draw,
        &mut row.total,
    ] {
        *v /= n;
    }
    row
}

fn ort(threads: usize, files: &[PathBuf], shape: Option<&str>) -> serde_json::Value {
    let mut cmd = Command::new(root().join(".venv/bin/python"));
    cmd.arg(root().join("scripts/peers/ort_bench.py"))
        .arg("--threads")
        .arg(threads.to_string())
        .env("OPENBLAS_NUM_THREADS", threads.to_string());
    if let Some(s) = shape {
        cmd.arg("--input-shape").arg(s);
    }
    let out = cmd.args(files).output().expect("onnxruntime peer");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn main() {
    let models = root().join("out/bench-models");
    let mflops: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(models.join("models.json"))
            .expect("run `cargo bench --workspace --bench export` first (make bench does)"),
    )
    .unwrap();
    let jpegs = camera_frames();
    let tmp = tempfile::tempdir().unwrap();
    let detector = root().join(facekit::RETINAFACE_MODEL);

    // The detector alone at both resolutions, tract vs onnxruntime, 1 thread.
    facekit::onnx_model::set_threads(1);
    let det = facekit::RetinaFace::load(&detector, Default::default()).unwrap();
    let frame = decode(PixelFormat::Mjpeg, 640, 480, &jpegs[0]).unwrap();
    println!("RetinaFace-mnet0.25, 1 thread (ms)");
    println!("| input | tract | onnxruntime | tract / ORT |");
    println!("|---|---|---|---|");
    for (w, h) in [(320u32, 240u32), (640, 480)] {
        let f = image::imageops::resize(&frame, w, h, image::imageops::FilterType::Triangle);
        det.detect(&f).unwrap();
        let t = Instant::now();
        for _ in 0..20 {
            det.detect(&f).unwrap();
        }
        let tract = t.elapsed().as_secs_f64() * 1e3 / 20.0;
        let o = ort(
            1,
            std::slice::from_ref(&detector),
            Some(&format!("1,3,{h},{w}")),
        );
        let ortms = o["retinaface-mnet025.onnx"].as_f64().unwrap();
        println!(
            "| {w}x{h} | {tract:.1} | {ortms:.1} | {:.2} |",
            tract / ortms
        );
    }

    println!(
        "\nbooth, 640x480 MJPEG input, one face, detection at 320 px, {FRAMES} frames (ms per frame)"
    );
    println!("| model | threads | decode | detect | align | swap | blend | draw | total | FPS | swap ORT | swap tract/ORT | swap MFLOP | Pi 4 FPS* | Pi 5 FPS* |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for threads in [1usize, 2] {
        facekit::onnx_model::set_threads(threads);
        let files: Vec<PathBuf> = ["lite.f32", "lite.int8", "original.f32", "original.int8"]
            .iter()
            .map(|n| models.join(format!("{n}.onnx")))
            .collect();
        let peer = ort(threads, &files, None);
        for file in &files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let mf = mflops[&name].as_f64().unwrap();
            let bundle = bundle_for(file, &tmp.path().join(format!("{name}-{threads}")), mf);
            let mut pipeline = Pipeline::new(PipelineConfig {
                face_detector: detector.clone(),
                threads,
                ..Default::default()
            })
            .unwrap();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let r = pool.install(|| measure(&mut pipeline, &bundle, &jpegs));
            assert_eq!(r.swapped, FRAMES, "every frame has the face swapped");
            let o = peer[&name].as_f64().unwrap();
            let pi: Vec<f64> = BOARDS.iter().map(|(_, g)| 1e3 / (mf / g)).collect();
            println!(
                "| {} | {threads} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {o:.2} | {:.2} | {mf:.0} | {:.0} | {:.0} |",
                name.trim_end_matches(".onnx"),
                r.decode,
                r.detect,
                r.align,
                r.swap,
                r.blend,
                r.draw,
                r.total,
                1e3 / r.total,
                r.swap / o,
                pi[0],
                pi[1],
            );
        }
    }
    println!("* swap model only, from MFLOPs and shared_proto::bundle::BOARDS (estimates, not measured on a board)");
}
