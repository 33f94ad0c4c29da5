//! `host-trainer train-detector` on the sample people: SBI fakes only (no swap run), a short
//! fit, and the report and artefacts it promises.

use e2e_tests::{host_trainer, small_dataset};

#[test]
fn a_short_detector_run_reports_cells_split_by_video() {
    let dir = tempfile::tempdir().unwrap();
    let a = small_dataset(dir.path(), "A", "data/carphone_pristine.mp4");
    let b = small_dataset(dir.path(), "B", "data/movie.avi");
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
    // Without a swap run: trained on SBI, tested on SBI of the other video.
    assert_eq!(cells.len(), 1);
    let c = &cells[0];
    assert_eq!(c["trained_on"], "SBI");
    assert_eq!(c["tested_on"], "SBI");
    assert!(c["real"].as_u64().unwrap() >= 20 && c["fake"] == c["real"]);
    let auc = c["auc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auc), "{auc}");
    assert_eq!(report["params"], 15593);

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
