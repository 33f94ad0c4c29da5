//! The aarch64 build (run under qemu-aarch64-static) detects the same faces as the x86 build.
//! `make test` cross-builds the binary first and passes its path in DOPPEL_AARCH64_BIN.

use std::path::PathBuf;
use std::process::Command;

use e2e_tests::{asset, device_cmd, find_faces, FrameRecord};

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
        let (x86_out, x86) = find_faces(device_cmd(), &asset(file), &args);
        assert!(
            x86_out.status.success(),
            "{}",
            String::from_utf8_lossy(&x86_out.stderr)
        );
        let (arm_out, arm) = find_faces(aarch64_cmd(), &asset(file), &args);
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

/// Runs `doppel-device run` in swap mode on 10 carphone frames, saving the frames into `out`.
fn booth(mut cmd: Command, bundle: &std::path::Path, key: &std::path::Path, out: &std::path::Path) {
    // One worker: with two, a frame may be swapped before the one ahead of it has added its
    // face to the visitor's mean (`facekit::visitor`), so which mean a frame gets depends on
    // scheduling (measured: two x86 runs with two workers differ by up to 10/255), not the CPU.
    let config = out.with_extension("toml");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&config, "[pipeline]\nworkers = 1\n").unwrap();
    let o = cmd
        .current_dir(e2e_tests::root())
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--input")
        .arg(asset("data/carphone_pristine.mp4"))
        .arg("--bundle")
        .arg(bundle)
        .arg("--trust")
        .arg(key)
        .args(["--mode", "swap", "--max-frames", "10", "--threads", "1"])
        // The console runs too (axum on tokio under aarch64), on a free loopback port.
        .args(["--http", "127.0.0.1:0", "--state-dir"])
        .arg(out.with_extension("state"))
        .arg("--save-frames")
        .arg(out)
        .output()
        .expect("run doppel-device");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("10 swapped"));
}

#[test]
fn aarch64_booth_frames_equal_x86_with_a_real_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b) = e2e_tests::sample_pair(d);
    let run = d.join("run");
    let r = run.to_str().unwrap();
    let keys = d.join("keys");
    let bundle = d.join("bundle");
    e2e_tests::succeeded(
        &e2e_tests::train_pair(&a, &b, &run, &["--steps", "3"]),
        "train",
    );
    let (out, k) = (bundle.to_str().unwrap(), keys.to_str().unwrap());
    e2e_tests::host_trainer_ok("export", &["--run", r, "--out", out, "--keys", k]);
    // int8: the booth drops the activations' fake quantisation at load, but the int8-rounded
    // weights make a different model, whose frames must agree as closely.
    let int8 = d.join("bundle8");
    let o = e2e_tests::host_trainer(
        "export",
        &[
            "--run",
            r,
            "--out",
            int8.to_str().unwrap(),
            "--int8",
            // A 3-step model is near its random init, whose int8 error is larger; the quality
            // gate is tested in export_bundle.
            "--min-int8-psnr",
            "20",
            "--keys",
            keys.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let key = keys.join("host.pub");
    // Both bundles at once: each booth runs one worker (below), and under qemu one bundle's
    // 10 frames take ~6 min, so one after the other would double the suite's longest test.
    let ((worst, mean), (worst8, mean8)) = std::thread::scope(|s| {
        let f32 = s.spawn(|| compare_booths(&bundle, &key, &d.join("f32")));
        let i8 = s.spawn(|| compare_booths(&int8, &key, &d.join("int8")));
        (f32.join().unwrap(), i8.join().unwrap())
    });
    eprintln!("booth frames x86 vs aarch64, f32 bundle: max {worst}/255, mean {mean:.4}");
    eprintln!("booth frames x86 vs aarch64, int8 bundle: max {worst8}/255, mean {mean8:.4}");
    // The booth follows the face: each frame's search crop starts from the previous frame's
    // box, so the two CPUs' last-bit float differences feed forward from frame to frame
    // (measured: max 3/255, mean 0.014; with the whole frame searched every frame, max 1,
    // mean 0.002). Rounding the crop to whole pixels made it worse (max 24: a rounding that
    // flips moves the crop a whole pixel).
    assert!(worst <= 4, "f32: max pixel difference {worst}/255 > 4");
    assert!(mean <= 0.05, "f32: mean pixel difference {mean:.4} > 0.05");
    assert!(
        mean8 <= 0.25,
        "int8: mean pixel difference {mean8:.4} > 0.25"
    );
}

/// Runs both builds on the same frames; max and mean channel difference outside the label and
/// the status strip (whose FPS and latency text differ run to run).
fn compare_booths(
    bundle: &std::path::Path,
    key: &std::path::Path,
    out: &std::path::Path,
) -> (u8, f64) {
    let (x86_dir, arm_dir) = (out.join("x86"), out.join("arm"));
    booth(device_cmd(), bundle, key, &x86_dir);
    booth(aarch64_cmd(), bundle, key, &arm_dir);
    let (mut worst, mut sum, mut n) = (0u8, 0f64, 0f64);
    for i in 0..10 {
        let name = format!("frame_{i:06}.png");
        let x = image::open(x86_dir.join(&name)).unwrap().to_rgb8();
        let y = image::open(arm_dir.join(&name)).unwrap().to_rgb8();
        assert_eq!(x.dimensions(), y.dimensions());
        let (lx, ly, lw, lh) = facekit::draw::synthetic_label_rect(x.width());
        let status_top = x.height() - 24;
        for (px, py, p) in x.enumerate_pixels() {
            let in_label = px < lx + lw && py < ly + lh;
            if in_label || py >= status_top {
                continue;
            }
            let q = y.get_pixel(px, py);
            for c in 0..3 {
                let d = p.0[c].abs_diff(q.0[c]);
                worst = worst.max(d);
                sum += d as f64;
                n += 1.0;
            }
        }
    }
    (worst, sum / n)
}
