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
    assert!(labelled(&f), "no label on a saved swap frame");
}

/// The label's middle pixel is the label's red.
fn labelled(frame: &image::RgbImage) -> bool {
    let (x, y, _, h) = facekit::draw::synthetic_label_rect(frame.width());
    let p = frame.get_pixel(x + 1, y + h / 2);
    p.0[0] > 150 && p.0[1] < 80
}

#[test]
fn without_a_swap_model_the_visitor_is_not_labelled_synthetic() {
    // A booth in swap mode before its first bundle shows the visitor's own face: the label
    // would tell them it is a fake. The same frames with a bundle are labelled.
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    for with_bundle in [false, true] {
        let models = if with_bundle {
            common::slot_with_bundle(&bundle, 1, false)
        } else {
            device_firmware::models::ModelSlot::default()
        };
        let mut cfg = config(&bundle, 3);
        cfg.bundle = with_bundle.then(|| bundle.clone());
        cfg.save_frames = true;
        cfg.save_dir = dir.path().join(format!("frames-{with_bundle}"));
        let (c, _tx) = controls();
        let stats = run(&cfg, &c, &models, None).unwrap();
        assert_eq!(stats.frames, 3);
        assert_eq!(stats.swapped, if with_bundle { 3 } else { 0 }, "{stats:?}");
        for i in 0..3 {
            let f = image::open(cfg.save_dir.join(format!("frame_{i:06}.png")))
                .unwrap()
                .to_rgb8();
            assert_eq!(
                labelled(&f),
                with_bundle,
                "frame {i}, bundle: {with_bundle}"
            );
        }
    }
}

#[test]
fn a_camera_calibration_calls_faces_unlike_its_own_fake() {
    // The camera's saved calibration says its faces are far softer than these (over-blur 50,
    // every texture ratio 4): every face is then as foreign as a pasted one and its bar turns
    // red; without the calibration's check the same frames stay below the threshold, and so
    // they do with a check saved by an earlier booth over five features only.
    use device_firmware::calibration::{detector_sha256, Calibration, Calibrator};
    use facekit::forensics::CAMERA_FEATURES;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let models = common::slot_with_bundle(&bundle, 1, true);
    let manifest = models.current().unwrap().manifest.clone();
    // Over-blur, edge colour, double edges, mouth blur, the four texture ratios, the score.
    let mean = [50f32, 1.0, 1.0, 1.0, 4.0, 4.0, 4.0, 4.0, 0.5].map(f32::ln);
    let check = |n: usize| shared_proto::CameraCheck {
        mean: mean[..n].to_vec(),
        // Independent features, each with a spread of 0.2 (in logarithms).
        cholesky: (0..n * n)
            .map(|i| if i % (n + 1) == 0 { 0.2 } else { 0.0 })
            .collect(),
        alarm: 3.0,
    };
    let calibration = Calibration {
        camera: "cam".into(),
        threshold: 0.99,
        false_alarm_rate: 0.05,
        frames: 40,
        detector_sha256: detector_sha256(&manifest).unwrap(),
        measured: "2026-12-02T00:00:00Z".into(),
        texture_check: Some(check(CAMERA_FEATURES)),
    };
    let cal_dir = dir.path().join("calibration");
    std::fs::create_dir_all(&cal_dir).unwrap();
    let red_bars = |features: Option<usize>| {
        let mut c = calibration.clone();
        c.texture_check = features.map(check);
        std::fs::write(cal_dir.join("cam.toml"), toml::to_string(&c).unwrap()).unwrap();
        let mut cfg = config(&bundle, 4);
        cfg.pipeline.mode = Mode::Detect;
        cfg.save_frames = true;
        cfg.save_dir = dir.path().join(format!("frames-{features:?}"));
        let (mut c, _tx) = controls();
        c.calibrator = Some(std::sync::Arc::new(Calibrator::open(
            &cal_dir,
            "cam".into(),
        )));
        let stats = run(&cfg, &c, &models, None).unwrap();
        assert_eq!(stats.scored, 4, "{stats:?}");
        (0..4)
            .filter(|i| {
                let f = image::open(cfg.save_dir.join(format!("frame_{i:06}.png")))
                    .unwrap()
                    .to_rgb8();
                let (x, y, _, h) = device_firmware::overlay::score_bar_rect(f.width(), f.height());
                let p = f.get_pixel(x + 1, y + h / 2).0;
                p[0] > 150 && p[1] < 80
            })
            .count()
    };
    assert_eq!(red_bars(None), 0);
    assert_eq!(red_bars(Some(5)), 0);
    assert_eq!(red_bars(Some(CAMERA_FEATURES)), 4);
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

#[test]
fn any_number_of_workers_shows_every_frame_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let models = common::slot_with_bundle(&bundle, 1, false);
    let mut seen = Vec::new();
    for workers in [1, 3] {
        let mut cfg = config(&bundle, 15);
        cfg.pipeline.workers = workers;
        cfg.save_frames = true;
        cfg.save_dir = dir.path().join(format!("frames-{workers}"));
        let (c, _tx) = controls();
        let stats = run(&cfg, &c, &models, None).unwrap();
        assert_eq!(
            (stats.frames, stats.swapped),
            (15, 15),
            "{workers}: {stats:?}"
        );
        // Saved in display order: the swapped face moves as the clip does, so frame k is
        // nearer to the other run's frame k than to its neighbours.
        let frames: Vec<image::RgbImage> = (0..15)
            .map(|k| {
                image::open(cfg.save_dir.join(format!("frame_{k:06}.png")))
                    .unwrap()
                    .to_rgb8()
            })
            .collect();
        seen.push(frames);
    }
    let distance = |a: &image::RgbImage, b: &image::RgbImage| -> u64 {
        // The picture above the status strip (its fps and latency text differ run to run).
        let h = a.height() * 3 / 4;
        (0..h)
            .flat_map(|y| (0..a.width()).map(move |x| (x, y)))
            .map(|(x, y)| {
                let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
                (0..3).map(|c| p.0[c].abs_diff(q.0[c]) as u64).sum::<u64>()
            })
            .sum()
    };
    for k in 1..14 {
        let same = distance(&seen[0][k], &seen[1][k]);
        let before = distance(&seen[0][k], &seen[1][k - 1]);
        let after = distance(&seen[0][k], &seen[1][k + 1]);
        assert!(
            same < before && same < after,
            "frame {k}: {same} against its neighbours' {before} / {after}"
        );
    }
}
