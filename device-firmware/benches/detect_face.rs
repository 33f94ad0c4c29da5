//! `make bench-booth`, detect mode: what scoring one face costs the booth, ours against a peer
//! in the same run. The detector issue's goal: ≤ 3 ms per face on one x86 core.
//!
//! Faces: the 300 frames of franck.mp4 at 640×480 that the booth benchmark uses, found with the
//! booth's own face search (not timed). Per face, one core: align the face to the detector's
//! crop (128 px with margin), the fake detector (`meso4`, random weights: timing does not depend
//! on them), the forensic cues (`facekit::forensics::cues`), and the camera check's score
//! (`shared_proto::CameraCheck`, fitted on the first faces as an operator's calibration fits
//! it). The peer (`scripts/peers/detect_peer.py`) does the same in Python — OpenCV's warp,
//! onnxruntime, the cues in NumPy/OpenCV, the check's distance in NumPy — and its cues are held
//! against ours on the same faces, so both are shown doing the same work.
//!
//! Writes `out/bench/detect_face.json` and `out/bench/detect_face.md`. Needs the detector graph
//! that `cargo bench -p host-trainer --bench export -- --graphs-only` leaves in
//! `out/bench-models/`.

mod common;

use std::time::Instant;

use device_firmware::config::PipelineConfig;
use device_firmware::pipeline::Locator;
use device_firmware::source::formats::{decode, PixelFormat};
use facekit::align::align_face;
use facekit::forensics::{cues, CAMERA_FEATURES, CUE_FEATURES};
use facekit::{OnnxFakeDetector, OnnxModel};
use serde_json::{json, Value};
use shared_proto::{threshold_at, CameraCheck};

use common::{camera_frames, crop_json, root, run_peer, summary, FRAMES};

const WARMUP: usize = 10;
/// Faces an operator's calibration records before the check is fitted (half fit, half alarm).
const CALIBRATION: usize = 60;
const STAGES: [&str; 5] = ["align", "network", "cues", "check", "total"];
const CUE_NAMES: [&str; CUE_FEATURES] = [
    "over_blur",
    "edge_colour",
    "double_edges",
    "mouth_blur",
    "detail",
    "edges",
    "noise",
    "colour_noise",
];

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let models = root().join("out/bench-models");
    let detector_path = models.join("detector.f32.onnx");
    assert!(
        detector_path.is_file(),
        "run `cargo bench -p host-trainer --bench export -- --graphs-only` first (make bench-booth does)"
    );
    let mflops: Value =
        serde_json::from_str(&std::fs::read_to_string(models.join("models.json")).unwrap())
            .unwrap();
    let mflops = mflops["detector.f32.onnx"].as_f64().unwrap_or(f64::NAN);
    let out_dir = root().join("out/bench");
    let frames_dir = out_dir.join("detect-frames");
    let jpegs = camera_frames(&frames_dir);
    facekit::onnx_model::set_threads(1);

    // The faces, found as the booth finds them.
    let config = PipelineConfig {
        face_detector: root().join(facekit::RETINAFACE_MODEL),
        threads: 1,
        ..Default::default()
    };
    let mut locator = Locator::new(&config).unwrap();
    let faces: Vec<(usize, image::RgbImage, [[f32; 2]; 5])> = jpegs
        .iter()
        .enumerate()
        .filter_map(|(i, jpeg)| {
            let frame = decode(PixelFormat::Mjpeg, 640, 480, jpeg).unwrap();
            let face = locator.locate(&frame, 25.0).face?;
            Some((i, frame, face.landmarks))
        })
        .collect();
    assert!(
        faces.len() * 10 >= FRAMES * 9,
        "only {} of {FRAMES} frames have a face",
        faces.len()
    );

    let crop = model_spec::fake_detector::crop();
    let detector = OnnxFakeDetector::new(
        OnnxModel::from_path(&detector_path, 1, false).unwrap(),
        crop.clone(),
    );
    let score = |image: &image::RgbImage| detector.score(image).unwrap();
    // The calibration: the first faces' features and scores fit the check and the threshold.
    let recorded: Vec<([f32; CAMERA_FEATURES], f32)> = faces[..CALIBRATION]
        .iter()
        .map(|(_, frame, landmarks)| {
            let a = align_face(frame, landmarks, &crop).unwrap();
            let p = score(&a.image);
            (cues(&a.image, &a.landmarks).camera_features(p), p)
        })
        .collect();
    let features: Vec<[f32; CAMERA_FEATURES]> = recorded.iter().map(|r| r.0).collect();
    let (fit, alarm) = features.split_at(CALIBRATION / 2);
    let check = CameraCheck::fit(fit, alarm, 0.02).expect("a camera check");
    let scores: Vec<f32> = recorded.iter().map(|r| r.1).collect();
    let threshold = threshold_at(&scores, 0.02).unwrap();

    // Ours, one core, each face in turn.
    let mut ours: Vec<[f64; 5]> = Vec::new();
    let mut our_cues: Vec<[f32; CUE_FEATURES]> = Vec::new();
    let mut verdicts = 0usize;
    for (n, (_, frame, landmarks)) in faces.iter().enumerate() {
        let t0 = Instant::now();
        let a = align_face(frame, landmarks, &crop).unwrap();
        let align = ms(t0);
        let t = Instant::now();
        let p = score(&a.image);
        let network = ms(t);
        let t = Instant::now();
        let c = cues(&a.image, &a.landmarks);
        let cue_ms = ms(t);
        let t = Instant::now();
        let verdict = check.score(&c.camera_features(p), threshold).unwrap();
        let check_ms = ms(t);
        let total = ms(t0);
        if n >= WARMUP {
            ours.push([align, network, cue_ms, check_ms, total]);
        }
        our_cues.push(c.cue_features());
        verdicts += (verdict >= threshold) as usize;
    }

    // The peer, one core, in the same run.
    let job = json!({
        "frames": frames_dir,
        "faces": faces.iter().map(|(i, _, l)| json!({"frame": i, "landmarks": l})).collect::<Vec<_>>(),
        "model": detector_path,
        "warmup": WARMUP,
        "crop": crop_json(&crop),
        "check": {"mean": check.mean, "cholesky": check.cholesky, "alarm": check.alarm},
        "threshold": threshold,
    });
    let peer = run_peer("detect_peer.py", &job, &out_dir.join("detect-job.json"));
    let peer_ms: Vec<[f64; 5]> = peer["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| STAGES.map(|s| f[s].as_f64().unwrap()))
        .collect();

    // The same work: the peer's cues of each face against ours (logarithms; the two warps
    // round differently, so a few hundredths apart on a face, not more on the median).
    let peer_cues = peer["cues"].as_array().unwrap();
    assert_eq!(peer_cues.len(), our_cues.len());
    let agreement: Vec<(&str, f64)> = CUE_NAMES
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let mut d: Vec<f64> = our_cues
                .iter()
                .zip(peer_cues)
                .map(|(o, p)| (o[k] as f64 - p[k].as_f64().unwrap()).abs())
                .collect();
            d.sort_by(f64::total_cmp);
            (*name, d[d.len() / 2])
        })
        .collect();
    for (name, median) in &agreement {
        assert!(
            *median < 0.1,
            "the peer's {name} differs from ours by {median:.3} (median |Δ ln|): not the same cue"
        );
    }

    let stats = |rows: &[[f64; 5]]| {
        let mut out = serde_json::Map::new();
        for (k, stage) in STAGES.iter().enumerate() {
            let mut v: Vec<f64> = rows.iter().map(|r| r[k]).collect();
            out.insert((*stage).into(), summary(&mut v));
        }
        Value::Object(out)
    };
    let (ours_stats, peer_stats) = (stats(&ours), stats(&peer_ms));
    let mean = |s: &Value, stage: &str| s[stage]["mean"].as_f64().unwrap();
    let report = json!({
        "faces": ours.len(),
        "threads": 1,
        "detector": {"preset": "meso4", "mflops": mflops, "crop": crop.size},
        "ours_ms": ours_stats,
        "peer_ms": peer_stats,
        "ours_over_peer": mean(&ours_stats, "total") / mean(&peer_stats, "total"),
        "cue_agreement_median_abs_log": agreement.iter().map(|(n, d)| (n.to_string(), json!(d))).collect::<serde_json::Map<_, _>>(),
        "faces_past_the_camera_check": verdicts,
    });
    std::fs::write(
        out_dir.join("detect_face.json"),
        serde_json::to_vec_pretty(&report).unwrap(),
    )
    .unwrap();
    let mut md = format!(
        "detect mode, one face per frame (franck.mp4 at 640×480, {} faces after {WARMUP} warm-up), \
         one core: ms per face, mean / p95 (goal: total ≤ 3 ms)\n\
         | who | align | network (meso4, {mflops:.0} MFLOP) | cues | camera check | total mean | total p95 | ours / peer |\n\
         |---|---|---|---|---|---|---|---|\n",
        ours.len()
    );
    for (who, s) in [
        ("ours (tract + facekit)", &ours_stats),
        ("peer (onnxruntime + OpenCV/NumPy)", &peer_stats),
    ] {
        let cell = |stage: &str| {
            format!(
                "{:.2} / {:.2}",
                mean(s, stage),
                s[stage]["p95"].as_f64().unwrap()
            )
        };
        let ratio = if std::ptr::eq(s, &ours_stats) {
            format!("{:.2}", report["ours_over_peer"].as_f64().unwrap())
        } else {
            String::new()
        };
        md += &format!(
            "| {who} | {} | {} | {} | {} | **{:.2}** | {:.2} | {ratio} |\n",
            cell("align"),
            cell("network"),
            cell("cues"),
            cell("check"),
            mean(s, "total"),
            s["total"]["p95"].as_f64().unwrap(),
        );
    }
    md += &format!(
        "\nthe peer's cues against ours, median |Δ ln| per cue: {}\n",
        agreement
            .iter()
            .map(|(n, d)| format!("{n} {d:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    std::fs::write(out_dir.join("detect_face.md"), &md).unwrap();
    print!("{md}");
}
