//! What the booth benchmarks share: the repository root, the camera's frames, the Python peer's
//! run and the statistics.

use std::path::{Path, PathBuf};
use std::process::Command;

use shared_proto::FaceCropSpec;

/// Frames of franck.mp4 each benchmark runs through.
pub const FRAMES: usize = 300;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// 640×480 JPEG frames with one face, as a webcam sends them; also written to `dir` for the peer.
pub fn camera_frames(dir: &Path) -> Vec<Vec<u8>> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut r = facekit::VideoReader::open(root().join("data/franck.mp4")).unwrap();
    let mut out = Vec::new();
    while let Some(f) = facekit::FrameSource::next_frame(&mut r).unwrap() {
        let big = image::imageops::resize(&f, 640, 480, image::imageops::FilterType::Triangle);
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
            .encode_image(&big)
            .unwrap();
        std::fs::write(dir.join(format!("{:04}.jpg", out.len())), &jpeg).unwrap();
        out.push(jpeg);
        if out.len() == FRAMES {
            break;
        }
    }
    out
}

/// The value at share `p` of `sorted` (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Mean, p50 and p95 of `v` (sorted in place).
pub fn summary(v: &mut [f64]) -> serde_json::Value {
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    serde_json::json!({"mean": mean, "p50": percentile(v, 0.5), "p95": percentile(v, 0.95)})
}

/// A crop spec as the Python peers read it.
pub fn crop_json(crop: &FaceCropSpec) -> serde_json::Value {
    serde_json::json!({
        "size": crop.size,
        "template_px": crop.template_px(),
        "mean": crop.normalisation.mean,
        "std": crop.normalisation.std,
        "order": format!("{:?}", crop.normalisation.order),
    })
}

/// Runs the Python peer `scripts/peers/<script>` on `job` (written to `job_path`) on one
/// thread, in the project's venv; its JSON answer.
pub fn run_peer(script: &str, job: &serde_json::Value, job_path: &Path) -> serde_json::Value {
    std::fs::write(job_path, serde_json::to_vec_pretty(job).unwrap()).unwrap();
    let out = Command::new(root().join(".venv/bin/python"))
        .arg(root().join("scripts/peers").join(script))
        .arg(job_path)
        .env("OMP_NUM_THREADS", "1")
        .env("OPENBLAS_NUM_THREADS", "1")
        .output()
        .expect("run the Python peer (make setup installs its venv)");
    assert!(
        out.status.success(),
        "peer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
