//! The aarch64 build (run under qemu-aarch64-static) detects the same faces as the x86 build.
//! `make test` cross-builds the binary first and passes its path in DOPPEL_AARCH64_BIN.

use std::path::PathBuf;
use std::process::Command;

use e2e_tests::{asset, detect_video, device_cmd, FrameRecord};

fn aarch64_cmd() -> Command {
    let bin = std::env::var_os("DOPPEL_AARCH64_BIN").map(PathBuf::from).expect(
        "DOPPEL_AARCH64_BIN is not set: run `make test`, which cross-builds doppel-device for aarch64",
    );
    assert!(
        bin.is_file(),
        "{} missing: run `bash cross/build-aarch64.sh`",
        bin.display()
    );
    // Same runner as .cargo/config.toml (no -L: see the comment there).
    let mut cmd = Command::new("qemu-aarch64-static");
    cmd.arg(bin);
    cmd
}

fn max_coordinate_difference(a: &[FrameRecord], b: &[FrameRecord]) -> f32 {
    assert_eq!(a.len(), b.len(), "same number of frames");
    let mut worst = 0.0f32;
    for (fa, fb) in a.iter().zip(b) {
        assert_eq!(fa.frame, fb.frame);
        assert_eq!(
            fa.faces.len(),
            fb.faces.len(),
            "frame {}: face count differs",
            fa.frame
        );
        for (da, db) in fa.faces.iter().zip(&fb.faces) {
            let pa = da.bbox.iter().chain(da.landmarks.iter().flatten());
            let pb = db.bbox.iter().chain(db.landmarks.iter().flatten());
            for (x, y) in pa.zip(pb) {
                worst = worst.max((x - y).abs());
            }
            assert!(
                (da.score - db.score).abs() < 1e-3,
                "frame {}: score differs",
                fa.frame
            );
        }
    }
    worst
}

#[test]
fn aarch64_detections_equal_x86_on_both_sample_videos() {
    for (file, every) in [("data/carphone_pristine.mp4", "3"), ("data/movie.avi", "2")] {
        let args = ["--every", every];
        let (x86_out, x86) = detect_video(device_cmd(), &asset(file), &args);
        assert!(
            x86_out.status.success(),
            "{}",
            String::from_utf8_lossy(&x86_out.stderr)
        );
        let (arm_out, arm) = detect_video(aarch64_cmd(), &asset(file), &args);
        assert!(
            arm_out.status.success(),
            "aarch64: {}",
            String::from_utf8_lossy(&arm_out.stderr)
        );
        assert!(x86.iter().filter(|r| !r.faces.is_empty()).count() >= x86.len() - 1);
        let diff = max_coordinate_difference(&x86, &arm);
        eprintln!(
            "{file}: {} frames, max coordinate difference {diff:.5} px",
            x86.len()
        );
        assert!(
            diff <= 0.5,
            "{file}: max coordinate difference {diff} px > 0.5"
        );
    }
}
