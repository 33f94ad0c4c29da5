//! Soak: 10 000 frames through the whole booth loop (looped sample video, real detector, swap
//! and score models), checking memory does not creep. Ignored in `make test` (minutes); run by
//! `make bench`: `cargo test --release -p device-firmware --test soak -- --ignored --nocapture`.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use device_firmware::config::{DaemonConfig, Mode};
use device_firmware::daemon::{run, Controls};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
#[ignore]
fn ten_thousand_frames_keep_memory_flat() {
    const FRAMES: u64 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let models = common::slot_with_bundle(dir.path(), 1, true);
    let mut cfg = DaemonConfig::default();
    cfg.source.input = common::root().join("data/carphone_pristine.mp4");
    cfg.source.looped = true;
    cfg.pipeline.face_detector = common::root().join(facekit::RETINAFACE_MODEL);
    cfg.pipeline.mode = Mode::SwapDetect;
    cfg.button.keyboard = false;
    cfg.max_frames = Some(FRAMES);
    let progress = Arc::new(AtomicU64::new(0));
    let controls = Controls {
        progress: progress.clone(),
        ..Controls::new(std::sync::mpsc::channel().1)
    };
    let watcher = std::thread::spawn(move || {
        while progress.load(Ordering::Relaxed) < 500 {
            std::thread::sleep(Duration::from_millis(20));
        }
        rss_kib()
    });
    let stats = run(&cfg, &controls, &models, None).unwrap();
    let (early, end) = (watcher.join().unwrap(), rss_kib());
    let growth = end as f64 / early as f64 - 1.0;
    println!(
        "soak: {} frames in {:.0} s ({:.1} fps), {} swapped, {} scored, {} errors; RSS after 500 frames {} KiB, at the end {} KiB ({:+.2}%)",
        stats.frames,
        stats.seconds,
        stats.frames as f64 / stats.seconds,
        stats.swapped,
        stats.scored,
        stats.errors,
        early,
        end,
        100.0 * growth
    );
    assert_eq!(stats.frames, FRAMES);
    assert!(growth.abs() <= 0.05, "RSS moved {:+.2}%", 100.0 * growth);
}
