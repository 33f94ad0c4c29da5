//! Missing or corrupt inputs fail with one line that names the file and says what to do.

use std::path::Path;
use std::process::Output;

use e2e_tests::{asset, device_cmd, find_faces};

fn error_line(output: &Output) -> String {
    assert!(!output.status.success(), "bad input must fail");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "exactly one error line, got:\n{stderr}");
    lines[0].to_owned()
}

fn run(input: &Path, model: &Path) -> String {
    let model = model.to_str().unwrap();
    let (output, _) = find_faces(device_cmd(), input, &["--model", model]);
    error_line(&output)
}

#[test]
fn missing_video_names_the_file() {
    let line = run(
        Path::new("/nonexistent/clip.mp4"),
        &asset(facekit::RETINAFACE_MODEL),
    );
    assert!(
        line.contains("/nonexistent/clip.mp4") && line.contains("not found"),
        "{line}"
    );
}

#[test]
fn corrupt_video_names_the_file_and_suggests_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.mp4");
    // The first kilobyte of a real MP4 followed by garbage: a header, then nothing decodable.
    let real = std::fs::read(asset("data/carphone_pristine.mp4")).unwrap();
    let mut bytes = real[..1024].to_vec();
    bytes.extend((0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    std::fs::write(&bad, bytes).unwrap();
    let line = run(&bad, &asset(facekit::RETINAFACE_MODEL));
    assert!(
        line.contains("broken.mp4") && line.contains("cannot be decoded"),
        "{line}"
    );
}

#[test]
fn missing_model_names_the_file_and_setup() {
    let line = run(&asset("data/movie.avi"), Path::new("/nonexistent/det.onnx"));
    assert!(
        line.contains("/nonexistent/det.onnx") && line.contains("make setup"),
        "{line}"
    );
}

#[test]
fn corrupt_model_names_the_file_and_setup() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("truncated.onnx");
    let real = std::fs::read(asset(facekit::RETINAFACE_MODEL)).unwrap();
    std::fs::write(&bad, &real[..real.len() / 3]).unwrap();
    let line = run(&asset("data/movie.avi"), &bad);
    assert!(
        line.contains("truncated.onnx") && line.contains("make setup"),
        "{line}"
    );
}

#[test]
fn a_reader_that_stops_early_costs_neither_the_work_nor_a_panic() {
    // `doppel-device find-faces … | head -0`: the reader is gone before the summary is printed.
    let out = tempfile::tempdir().unwrap();
    let mut child = device_cmd()
        .current_dir(e2e_tests::root())
        .arg("find-faces")
        .arg("--input")
        .arg(asset("data/movie.avi"))
        .arg("--out")
        .arg(out.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !err.contains("panicked"), "{err}");
    assert!(out.path().join("contact_sheet.png").is_file());
    assert!(out.path().join("detections.jsonl").is_file());
}
