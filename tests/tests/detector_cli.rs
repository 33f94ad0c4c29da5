//! `host-trainer train-detector` on the sample people: SBI and graphics-swap fakes only (no
//! swap run), a short fit, and the report and artefacts it promises; then with a swap run.

use e2e_tests::{host_trainer, host_trainer_ok, sample_pair, succeeded, train_pair};

#[test]
fn a_short_detector_run_reports_cells_split_by_video() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = sample_pair(dir.path());
    let out = dir.path().join("det");
    let o = host_trainer(
        "train-detector",
        &[
            "--a",
            &a,
            "--b",
            &b,
            "--out",
            out.to_str().unwrap(),
            "--steps",
            "40",
            "--seeds",
            "2",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "detector.safetensors",
        "detector.toml",
        "eval_detector.md",
        "eval_detector.json",
        "roc.png",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval_detector.json")).unwrap())
            .unwrap();
    let cells = report["cells"].as_array().unwrap();
    // Without a swap run: trained on SBI, tested on SBI and on graphics swaps (person A's real
    // faces pasted into B's) of the other video, each cell fitted with two seeds.
    let tested: Vec<&str> = cells
        .iter()
        .map(|c| c["tested_on"].as_str().unwrap())
        .collect();
    assert_eq!(tested, ["SBI", "graphics swap"]);
    for c in cells {
        assert_eq!(c["trained_on"], "SBI");
        assert_eq!(c["seeds"], 2);
        assert!(c["real"].as_u64().unwrap() >= 20);
        assert!(c["fake"].as_u64().unwrap() >= 20);
        for key in ["auc", "auc_same_video"] {
            let auc = c[key].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&auc), "{key} {auc}");
        }
        assert!(c["auc_sd"].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(cells[0]["fake"], cells[0]["real"]);
    assert_eq!(report["params"], 15593);

    // With a swap run, the detector joins a bundle and `detect` scores videos with it.
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    succeeded(&train_pair(&a, &b, &run, &["--steps", "3"]), "train");
    let det = dir.path().join("det2");
    host_trainer_ok(
        "train-detector",
        &[
            "--a",
            &a,
            "--b",
            &b,
            "--run",
            r,
            "--out",
            det.to_str().unwrap(),
            "--steps",
            "20",
            "--seeds",
            "1",
        ],
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(det.join("eval_detector.json")).unwrap())
            .unwrap();
    let tested: Vec<&str> = report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["tested_on"].as_str().unwrap())
        .collect();
    assert!(
        tested.contains(&"swap") && tested.contains(&"reconstruction"),
        "{tested:?}"
    );
    // Cells train on fakes of A's own person first, then on swaps that show person B's face.
    let mut trained: Vec<&str> = report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["trained_on"].as_str().unwrap())
        .collect();
    trained.dedup();
    assert_eq!(trained, ["SBI", "SBI + reconstruction", "SBI + swap"]);
    let bundle = dir.path().join("bundle");
    let keys = dir.path().join("keys");
    let exported = host_trainer_ok(
        "export",
        &[
            "--run",
            r,
            "--detector",
            det.to_str().unwrap(),
            "--out",
            bundle.to_str().unwrap(),
            "--keys",
            keys.to_str().unwrap(),
        ],
    );
    // The exported detector equals tch in tract on real faces too, not just on noise.
    let line = exported
        .lines()
        .find(|l| l.starts_with("detector: f32 graph vs tch"))
        .unwrap_or_else(|| panic!("{exported}"));
    let real: f64 = line
        .split_whitespace()
        .rev()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(real <= 1e-4, "{line}");
    let scored = dir.path().join("scored");
    let video = e2e_tests::asset("data/carphone_pristine.mp4");
    let printed = host_trainer_ok(
        "detect",
        &[
            "--bundle",
            bundle.to_str().unwrap(),
            "--input",
            video.to_str().unwrap(),
            "--out",
            scored.to_str().unwrap(),
            "--max-frames",
            "8",
        ],
    );
    assert!(
        printed.contains("REAL") || printed.contains("FAKE"),
        "{printed}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scored.join("detect.json")).unwrap())
            .unwrap();
    assert_eq!(json["frames_with_face"], 8);
    // The threshold calibrated on held-out frames travels from detector.toml through the signed
    // manifest into the verdict.
    let calibrated: f64 = std::fs::read_to_string(det.join("detector.toml"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("threshold = "))
        .expect("detector.toml records the threshold")
        .parse()
        .unwrap();
    assert!(calibrated > 0.0 && calibrated < 1.0, "{calibrated}");
    assert!(
        report["threshold_from"]
            .as_str()
            .unwrap()
            .contains("equal-error"),
        "{}",
        report["threshold_from"]
    );
    let used = json["threshold"].as_f64().unwrap();
    assert!((used - calibrated).abs() < 1e-6, "{used} vs {calibrated}");
    assert!(scored.join("score.png").is_file());
    // No face at all: an error that says so, not a score.
    let blank = dir.path().join("blank");
    std::fs::create_dir_all(&blank).unwrap();
    image::RgbImage::from_pixel(160, 120, image::Rgb([90, 90, 90]))
        .save(blank.join("0001.png"))
        .unwrap();
    let o = host_trainer(
        "detect",
        &[
            "--bundle",
            bundle.to_str().unwrap(),
            "--input",
            blank.to_str().unwrap(),
            "--out",
            scored.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no face found"));

    // A dataset path that is not a dataset fails clearly.
    let o = host_trainer(
        "train-detector",
        &[
            "--a",
            "/nonexistent",
            "--b",
            &b,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent"));
}
