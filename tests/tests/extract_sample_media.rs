//! `host-trainer extract` on the two sample videos: enough faces, aligned to the template,
//! resumable, and a valid dataset after an interrupt.

use std::path::Path;
use std::process::{Command, Stdio};

use e2e_tests::{asset, extract_consented, read_metadata, root, workspace_bin, TEST_CONSENT};
use shared_proto::FaceCropSpec;

fn extract_ok(person: &str, video: &str, out: &Path, extra: &[&str]) -> String {
    let o = extract_consented(person, Path::new(video), out, extra);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Mean distance between the detected landmarks moved into the crop and the template.
fn mean_alignment_error(dataset: &Path) -> (usize, f32) {
    let spec = FaceCropSpec::default();
    let template = spec.template_px();
    let lines: Vec<_> = read_metadata(dataset)
        .into_iter()
        .filter(|l| l.reason == "accepted")
        .collect();
    let mut total = 0.0;
    for l in &lines {
        let t = l.to_crop.unwrap();
        for (p, q) in l.landmarks.unwrap().iter().zip(&template) {
            let m = t.apply(*p);
            total += (m[0] - q[0]).hypot(m[1] - q[1]);
        }
        let png = image::open(dataset.join(l.file.as_ref().unwrap())).unwrap();
        assert_eq!((png.width(), png.height()), (64, 64));
    }
    (lines.len(), total / (lines.len() * 5) as f32)
}

#[test]
fn carphone_gives_at_least_110_aligned_faces_of_a() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("A");
    extract_ok(
        "A",
        asset("data/carphone_pristine.mp4").to_str().unwrap(),
        &out,
        &[],
    );
    let (n, err) = mean_alignment_error(&out);
    eprintln!("carphone: {n} accepted, mean landmark error after alignment {err:.3} px");
    assert!(n >= 110, "{n} accepted");
    assert!(err <= 1.5, "mean landmark error {err} px");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("| accepted |"));
    for f in [
        "pose_histogram.png",
        "contact_accepted.png",
        "contact_rejects.png",
        "consent.toml",
        "curation.toml",
    ] {
        assert!(out.join(f).is_file(), "{f} written");
    }
}

#[test]
fn kphotoalbum_movie_gives_at_least_60_aligned_faces_of_b_and_warns_on_pose_gaps() {
    let dir = tempfile::tempdir().unwrap();
    extract_ok(
        "A",
        asset("data/carphone_pristine.mp4").to_str().unwrap(),
        &dir.path().join("A"),
        &[],
    );
    let out = dir.path().join("B");
    extract_ok("B", asset("data/movie.avi").to_str().unwrap(), &out, &[]);
    let (n, err) = mean_alignment_error(&out);
    eprintln!("movie: {n} accepted, mean landmark error after alignment {err:.3} px");
    assert!(n >= 60, "{n} accepted");
    assert!(err <= 1.5, "mean landmark error {err} px");
    // B only looks left/straight; A also turns right: the report must say so.
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("B lacks yaw +10..+25"), "{report}");
}

#[test]
fn rerun_resumes_and_skips_frames_already_done() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("A");
    let video = asset("data/carphone_pristine.mp4");
    let first = extract_ok("A", video.to_str().unwrap(), &out, &["--max-faces", "30"]);
    assert!(first.contains("A: 30 faces in the dataset"), "{first}");
    let second = extract_ok("A", video.to_str().unwrap(), &out, &[]);
    assert!(second.contains("skipped as already done"), "{second}");
    let lines = read_metadata(&out);
    let mut frames: Vec<u64> = lines.iter().map(|l| l.frame).collect();
    frames.sort();
    frames.dedup();
    assert_eq!(frames.len(), 120, "every frame handled exactly once");
    assert_eq!(lines.len(), 120, "no frame journalled twice");
    let third = extract_ok("A", video.to_str().unwrap(), &out, &[]);
    assert!(third.contains("this run: 0 frames"), "{third}");
}

#[test]
fn interrupt_leaves_a_valid_dataset_that_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("A");
    let child = Command::new(workspace_bin("host-trainer"))
        .current_dir(root())
        .args(["extract", "--person", "A", "--threads", "1", "--input"])
        .arg(asset("data/carphone_pristine.mp4"))
        .arg("--out")
        .arg(&out)
        .args(["--consent", TEST_CONSENT])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt mid-run: as soon as the first frames are journalled.
    let journal = out.join("metadata.jsonl");
    for _ in 0..500 {
        if std::fs::read_to_string(&journal).is_ok_and(|t| t.lines().count() >= 3) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "interrupt is a clean stop: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    let done = read_metadata(&out).len();
    assert!(
        stdout.contains("interrupted") && done < 120,
        "stopped early ({done} frames): {stdout}"
    );
    for l in read_metadata(&out) {
        if let Some(f) = l.file {
            assert!(out.join(&f).is_file(), "{f} journalled but missing");
        }
    }
    extract_ok(
        "A",
        asset("data/carphone_pristine.mp4").to_str().unwrap(),
        &out,
        &[],
    );
    assert_eq!(read_metadata(&out).len(), 120);
}
