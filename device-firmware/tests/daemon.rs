//! The booth loop end to end on a video file: threads, outputs, controls, and the rule that
//! visitor frames reach the disk only when the operator turned saving on.

mod common;

use device_firmware::button::Control;
use device_firmware::config::{DaemonConfig, Mode};
use device_firmware::daemon::{run, Controls};

fn config(bundle: &std::path::Path, frames: u64) -> DaemonConfig {
    let mut cfg = DaemonConfig::default();
    cfg.source.input = common::root().join("data/carphone_pristine.mp4");
    cfg.pipeline.face_detector = common::root().join(facekit::RETINAFACE_MODEL);
    cfg.bundle = Some(bundle.to_path_buf());
    cfg.trusted_keys = vec![common::key_hex()];
    cfg.button.keyboard = false;
    cfg.max_frames = Some(frames);
    cfg
}

fn controls() -> (Controls, std::sync::mpsc::Sender<Control>) {
    let (tx, events) = std::sync::mpsc::channel();
    (Controls::new(events), tx)
}

#[test]
fn frames_are_saved_only_when_the_operator_turns_saving_on() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let models = common::slot_with_bundle(&bundle, 1, false);

    let mut cfg = config(&bundle, 12);
    cfg.save_dir = dir.path().join("frames");
    let (c, _tx) = controls();
    let stats = run(&cfg, &c, &models, None).unwrap();
    assert_eq!(stats.frames, 12);
    assert_eq!(stats.swapped, 12, "{stats:?}");
    assert!(
        !cfg.save_dir.exists(),
        "nothing written without save_frames"
    );

    cfg.save_frames = true;
    let (c, _tx) = controls();
    let stats = run(&cfg, &c, &models, None).unwrap();
    assert_eq!(stats.frames, 12);
    let saved: Vec<_> = std::fs::read_dir(&cfg.save_dir).unwrap().collect();
    assert_eq!(saved.len(), 12);
    // Every saved swap frame carries the label.
    let f = image::open(cfg.save_dir.join("frame_000005.png"))
        .unwrap()
        .to_rgb8();
    let (x, y, w, h) = facekit::draw::synthetic_label_rect(f.width());
    let p = f.get_pixel(x + 1, y + h / 2);
    assert!(
        p.0[0] > 150 && p.0[1] < 80,
        "label pixel {p:?} at ({x},{y},{w},{h})"
    );
}

#[test]
fn the_button_switches_modes_and_sighup_reloads_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let models = common::slot_with_bundle(&bundle, 1, true);
    // The operator re-exports (step 2) and sends SIGHUP; then presses the button once.
    common::write_bundle(&bundle, 2, true);
    let cfg = config(&bundle, 6);
    let (c, tx) = controls();
    c.reload.store(true, std::sync::atomic::Ordering::Relaxed);
    tx.send(Control::NextMode).unwrap();
    let stats = run(&cfg, &c, &models, None).unwrap();
    assert_eq!(stats.reloads, 1);
    assert!(models.current().unwrap().version.starts_with("fixture 2st"));
    assert_eq!(stats.mode_changes, 1);
    assert_eq!(cfg.pipeline.mode.next(), Mode::Detect);
    // In detect mode (after the press) nothing is swapped and every face is scored.
    assert_eq!(stats.swapped, 0, "{stats:?}");
    assert_eq!(stats.scored, 6, "{stats:?}");
}
