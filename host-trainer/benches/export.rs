//! Inference speed of the exported swap graphs, `lite` and `original`, batch 1 (one face): tract
//! f32, tract int8 with weights folded at load (what the device runs), tract int8 as tract loads
//! it by itself, and onnxruntime on the same files in the same run (`scripts/peers/ort_bench.py`);
//! achieved GFLOP/s against this core's measured f32 matmul peak; file sizes.
//!
//! `cargo bench --workspace --bench export` (run `make setup` first). Prints a table and leaves
//! the graphs in `out/bench-models/` (with `models.json`: MFLOPs per file) for the booth
//! benchmarks, `cargo bench -p device-firmware --bench booth` and `--bench detect_face` (which
//! also reads the `meso4` fake detector written here; `-- --graphs-only` writes them and stops).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use facekit::onnx_model::set_threads;
use facekit::OnnxModel;
use host_trainer::model::fake_detector::FakeDetector;
use host_trainer::model::net::Autoencoder;
use host_trainer::model::tensors::weights_of;
use host_trainer::stages::export::calibration::{calibrate, Calibration};
use host_trainer::Person;
use model_spec::graphs::{fake_detector_graph, swap_graph, Int8Form};
use model_spec::onnx::{self, GraphBuilder};
use model_spec::swap::preset;
use tch::{Device, Kind, Tensor};

/// Median milliseconds of `f` over at least 10 runs and 1 s, after two warm-up runs.
fn median_ms(mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 10 || start.elapsed().as_secs_f64() < 1.0 {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn tract_ms(path: &Path, fold: bool) -> f64 {
    let m = OnnxModel::from_path(path, 1, fold).expect("model loads in tract");
    let x = vec![0.5f32; m.input_shape().iter().product()];
    median_ms(|| {
        m.run_with_zeros_after(x.clone()).expect("runs");
    })
}

/// tract's f32 matrix-product rate on a 512×1024 · 1024×1024 Gemm, in GFLOP/s.
fn tract_gemm_gflops(dir: &Path) -> f64 {
    let (m, k, n) = (512i64, 1024i64, 1024i64);
    let mut g = GraphBuilder::default();
    let w = vec![0.01f32; (k * n) as usize];
    let b = vec![0f32; n as usize];
    g.f32_const("w", &[n, k], &w);
    g.f32_const("b", &[n], &b);
    g.node(
        "Gemm",
        &["x", "w", "b"],
        "y",
        vec![onnx::attr_int("transB", 1)],
    );
    let model = g.finish(
        "gemm",
        "peak probe",
        vec![onnx::value_info("x", &[m, k], "")],
        vec![onnx::value_info("y", &[m, n], "")],
    );
    let path = dir.join("gemm.onnx");
    std::fs::write(&path, onnx::to_bytes(&model)).unwrap();
    let ms = tract_ms(&path, false);
    2.0 * (m * k * n) as f64 / (ms * 1e6)
}

fn ort(python: &Path, script: &Path, threads: usize, files: &[PathBuf]) -> HashMap<String, f64> {
    let out = Command::new(python)
        .arg(script)
        .arg("--threads")
        .arg(threads.to_string())
        .args(files)
        .env("OPENBLAS_NUM_THREADS", threads.to_string())
        .env("OMP_NUM_THREADS", threads.to_string())
        .output()
        .expect("run the onnxruntime peer");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("peer prints JSON")
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv/bin/python");
    assert!(python.is_file(), "run `make setup` first");
    let script = root.join("scripts/peers/ort_bench.py");
    let dir = root.join("out/bench-models");
    std::fs::create_dir_all(&dir).unwrap();
    tch::manual_seed(0);
    let mut mflops_by_file = serde_json::Map::new();

    // Timing does not depend on trained values: random weights, calibrated on random faces.
    let mut rows = Vec::new();
    for name in ["lite", "original"] {
        let spec = preset(name).unwrap();
        let vars = tch::nn::VarStore::new(Device::Cpu);
        let model = Autoencoder::new(&vars.root(), &spec, 2);
        let weights = weights_of(&vars);
        let s = spec.size as i64;
        let faces = Tensor::rand([16, 3, s, s], (Kind::Float, Device::Cpu));
        let ranges = calibrate(&model, &faces, Person::B, Calibration::MinMax);
        let f32_path = dir.join(format!("{name}.f32.onnx"));
        let int8_path = dir.join(format!("{name}.int8.onnx"));
        let qlin_path = dir.join(format!("{name}.qlinear.onnx"));
        for p in [&f32_path, &int8_path, &qlin_path] {
            mflops_by_file.insert(
                p.file_name().unwrap().to_string_lossy().into_owned(),
                (spec.flops_per_face() as f64 / 1e6).into(),
            );
        }
        let f32_bytes = onnx::to_bytes(&swap_graph(&spec, &weights, 1, None).unwrap());
        let int8 =
            |form| onnx::to_bytes(&swap_graph(&spec, &weights, 1, Some((&ranges, form))).unwrap());
        let int8_bytes = int8(Int8Form::Qdq);
        std::fs::write(&f32_path, &f32_bytes).unwrap();
        std::fs::write(&int8_path, &int8_bytes).unwrap();
        std::fs::write(&qlin_path, int8(Int8Form::QLinearConv)).unwrap();
        rows.push((
            name,
            spec.flops_per_face() as f64 / 1e6,
            f32_path,
            int8_path,
            qlin_path,
            f32_bytes.len(),
            int8_bytes.len(),
        ));
    }

    // The booth's fake detector (detect mode), for `--bench detect_face`.
    let spec = model_spec::fake_detector::preset("meso4").unwrap();
    let detector = FakeDetector::new(&spec, Device::Cpu);
    let graph = fake_detector_graph(&spec, &weights_of(&detector.vars)).unwrap();
    std::fs::write(dir.join("detector.f32.onnx"), onnx::to_bytes(&graph)).unwrap();
    mflops_by_file.insert(
        "detector.f32.onnx".into(),
        (spec.flops_per_face() as f64 / 1e6).into(),
    );

    std::fs::write(
        dir.join("models.json"),
        serde_json::to_string_pretty(&mflops_by_file).unwrap(),
    )
    .unwrap();
    // `make bench-booth` needs the graphs only.
    if std::env::args().any(|a| a == "--graphs-only") {
        println!("graphs written to {}", dir.display());
        return;
    }
    println!("swap model, batch 1 (ms per face, median), this machine's CPU");
    println!("| preset | MFLOP | threads | tract f32 | tract int8 folded | tract int8 as loaded | tract int8 QLinearConv | ORT f32 | ORT int8 | ORT int8 QLinearConv | tract/ORT f32 | tract f32 GFLOP/s | % of peak |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut peaks = Vec::new();
    for threads in [1usize, 2] {
        set_threads(threads);
        let files: Vec<PathBuf> = rows
            .iter()
            .flat_map(|r| [r.2.clone(), r.3.clone(), r.4.clone()])
            .collect();
        let peer = ort(&python, &script, threads, &files);
        let peak = tract_gemm_gflops(&dir).max(peer["numpy_gemm_gflops"]);
        peaks.push((threads, peak, peer["numpy_gemm_gflops"]));
        for (name, mflops, f32_path, int8_path, qlin_path, _, _) in &rows {
            let t32 = tract_ms(f32_path, false);
            let t8 = tract_ms(int8_path, true);
            let t8_raw = tract_ms(int8_path, false);
            let tq = tract_ms(qlin_path, true);
            let key = |p: &PathBuf| p.file_name().unwrap().to_string_lossy().into_owned();
            let (o32, o8, oq) = (
                peer[&key(f32_path)],
                peer[&key(int8_path)],
                peer[&key(qlin_path)],
            );
            let gflops = mflops / t32;
            println!(
                "| {name} | {mflops:.1} | {threads} | {t32:.2} | {t8:.2} | {t8_raw:.2} | {tq:.2} | {o32:.2} | {o8:.2} | {oq:.2} | {:.2} | {gflops:.1} | {:.0}% |",
                t32 / o32,
                100.0 * gflops / peak
            );
        }
    }
    for (threads, peak, numpy) in peaks {
        println!("f32 matmul peak, {threads} thread(s): {peak:.1} GFLOP/s (max of tract Gemm 512x1024x1024 and numpy/OpenBLAS 1024^3 = {numpy:.1})");
    }
    for (name, _, _, _, _, f32_len, int8_len) in &rows {
        println!(
            "{name}: f32 file {:.1} MB, int8 file {:.1} MB ({:.2}x smaller)",
            *f32_len as f64 / 1e6,
            *int8_len as f64 / 1e6,
            *f32_len as f64 / *int8_len as f64
        );
    }
    println!("int8 QLinearConv: convolutions as QLinearConv on uint8 tensors, dense layers float on int8 weights");
    detector_table(&python, &script, &dir);
}

/// The deepfake detector presets, one face, one thread: what the booth's detect mode pays per
/// face (issue budget: 3 ms on one x86 core), tract against onnxruntime on the same file.
fn detector_table(python: &Path, script: &Path, dir: &Path) {
    use model_spec::fake_detector;
    use model_spec::graphs::fake_detector_graph;
    set_threads(1);
    let mut files = Vec::new();
    for name in fake_detector::PRESETS {
        let spec = fake_detector::preset(name).unwrap();
        let model = host_trainer::model::fake_detector::FakeDetector::new(&spec, Device::Cpu);
        let bytes = onnx::to_bytes(&fake_detector_graph(&spec, &weights_of(&model.vars)).unwrap());
        let path = dir.join(format!("detector-{name}.onnx"));
        std::fs::write(&path, bytes).unwrap();
        files.push((name, spec.flops_per_face() as f64 / 1e6, path));
    }
    let peer = ort(
        python,
        script,
        1,
        &files.iter().map(|f| f.2.clone()).collect::<Vec<_>>(),
    );
    println!("\ndeepfake detector, one face, 1 thread (ms, median)");
    println!("| preset | MFLOP | tract f32 | ORT f32 | tract/ORT |");
    println!("|---|---|---|---|---|");
    for (name, mflops, path) in files {
        let t = tract_ms(&path, false);
        let o = peer[&path.file_name().unwrap().to_string_lossy().into_owned()];
        println!("| {name} | {mflops:.1} | {t:.2} | {o:.2} | {:.2} |", t / o);
    }
}
