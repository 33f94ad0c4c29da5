//! The booth pipeline on real frames with real (tiny) ONNX models in a real signed bundle.

mod common;

use common::{
    frames, key_hex, loaded_slot, root, slot_with_bundle, write_bundle, write_bundle_with_check,
};
use device_firmware::config::{Mode, PipelineConfig};
use device_firmware::overlay::{self, Hud};
use device_firmware::pipeline::Pipeline;
use facekit::blend::{BlendOptions, MaskSource};
use image::RgbImage;
use shared_proto::BlurCheck;

fn pipeline(mode: Mode) -> Pipeline {
    pipeline_blending(mode, BlendOptions::default())
}

fn pipeline_blending(mode: Mode, blend: BlendOptions) -> Pipeline {
    Pipeline::new(PipelineConfig {
        mode,
        face_detector: root().join(facekit::RETINAFACE_MODEL),
        blend,
        ..Default::default()
    })
    .unwrap()
}

fn diff_count(a: &RgbImage, b: &RgbImage, min: u8) -> usize {
    a.pixels()
        .zip(b.pixels())
        .filter(|(p, q)| (0..3).any(|c| p.0[c].abs_diff(q.0[c]) > min))
        .count()
}

#[test]
fn the_bundles_blur_check_raises_the_score_of_a_face_softer_than_its_real_faces() {
    let frame = frames("data/carphone_pristine.mp4", 1).remove(0);
    let score = |check: Option<BlurCheck>| {
        let dir = tempfile::tempdir().unwrap();
        match check {
            Some(c) => write_bundle_with_check(dir.path(), 1, c),
            None => write_bundle(dir.path(), 1, true),
        }
        let bundle = loaded_slot(dir.path()).current().unwrap();
        let r = pipeline(Mode::Detect).process(&mut frame.clone(), Some(&bundle), 30.0);
        (
            r.score.expect("a score"),
            r.cues.expect("cues").cues.over_blur,
        )
    };
    let (network, over_blur) = score(None);
    assert!(network < 0.99, "the brightness detector scores {network}");
    // Fitted on real faces like this one: the network's score stands.
    let ordinary = BlurCheck {
        centre: over_blur.ln(),
        scale: 0.2,
        alarm: 3.0,
    };
    assert_eq!(score(Some(ordinary)).0, network);
    // Fitted on real faces four times sharper inside than this one: called fake.
    let sharper = BlurCheck {
        centre: (over_blur / 4.0).ln(),
        scale: 0.1,
        alarm: 3.0,
    };
    let raised = score(Some(sharper)).0;
    assert!(raised > 0.99 && raised > network, "{raised} vs {network}");
}

#[test]
fn swap_changes_the_face_only_and_detect_scores_without_touching_the_frame() {
    let dir = tempfile::tempdir().unwrap();
    let models = slot_with_bundle(dir.path(), 1, true);
    let bundle = models.current().unwrap();
    let frame = frames("data/carphone_pristine.mp4", 1).remove(0);

    // The fixture's learned mask is 1 over the whole crop: paste the face ellipse alone, so the
    // crop around the face stays as it was (the flicker check below relies on it), and without
    // the colour transfer, which would take much of the inversion back out.
    let mut p = pipeline_blending(
        Mode::Swap,
        BlendOptions {
            mask: MaskSource::Hull,
            colour_transfer: false,
            ..Default::default()
        },
    );
    let mut swapped = frame.clone();
    let r = p.process(&mut swapped, Some(&bundle), 30.0);
    assert!(r.swapped && r.error.is_none(), "{r:?}");
    let face = r.face.unwrap();
    let changed = diff_count(&frame, &swapped, 40);
    let [x0, y0, x1, y1] = face.bbox;
    let face_area = ((x1 - x0) * (y1 - y0)) as usize;
    assert!(
        changed > face_area / 3,
        "the inverted face shows: {changed} px of {face_area}"
    );
    // Far from the face nothing moves: the bottom-right corner block.
    for y in 130..144 {
        for x in 160..176 {
            assert_eq!(frame.get_pixel(x, y), swapped.get_pixel(x, y));
        }
    }

    // Switching mode: detect leaves pixels alone and scores; swap+detect does both.
    p.mode = p.mode.next();
    assert_eq!(p.mode, Mode::Detect);
    let mut scored = frame.clone();
    let r = p.process(&mut scored, Some(&bundle), 30.0);
    assert!(!r.swapped && r.score.is_some());
    assert_eq!(scored, frame);
    // The cues come with the score; flicker needs a previous scored crop of the track.
    let first = r.cues.expect("cues with the score");
    assert!(first.flicker.is_none());
    let c = first.cues;
    for v in [c.over_blur, c.edge_colour, c.double_edges, c.mouth_blur] {
        assert!(v.is_finite() && v > 0.0, "{c:?}");
    }
    p.mode = p.mode.next();
    assert_eq!(p.mode, Mode::SwapDetect);
    let mut both = frame.clone();
    let r = p.process(&mut both, Some(&bundle), 30.0);
    assert!(r.swapped && r.score.is_some(), "{r:?}");
    // Same frame, swapped face: only the face changed since the last scored crop, several
    // times more inside the face than around it (the feathered edge).
    let flicker = r
        .cues
        .and_then(|c| c.flicker)
        .expect("flicker on the second crop");
    assert!(flicker > 3.0, "flicker {flicker}");
}

#[test]
fn no_face_and_failed_inference_pass_the_frame_through() {
    let dir = tempfile::tempdir().unwrap();
    let models = slot_with_bundle(dir.path(), 1, false);
    let bundle = models.current().unwrap();
    let mut p = pipeline(Mode::Swap);

    let blank = RgbImage::from_pixel(320, 240, image::Rgb([90, 110, 130]));
    let mut out = blank.clone();
    let r = p.process(&mut out, Some(&bundle), 30.0);
    assert!(r.face.is_none() && !r.swapped);
    assert_eq!(out, blank);
    // The overlay still burns the SYNTHETIC label in swap mode; the rest stays as it was.
    let hud = Hud {
        mode: Some(Mode::Swap),
        synthetic: true,
        ..Default::default()
    };
    overlay::draw(&mut out, &hud);
    let (lx, ly, lw, lh) = facekit::draw::synthetic_label_rect(320);
    let red = (ly + 2..ly + lh - 2)
        .flat_map(|y| (lx + 2..lx + lw - 2).map(move |x| (x, y)))
        .filter(|&(x, y)| out.get_pixel(x, y).0[0] > 150 && out.get_pixel(x, y).0[1] < 80)
        .count();
    assert!(
        red > (lw * lh / 4) as usize,
        "label present: {red} red pixels"
    );
    for y in ly + lh + 2..200 {
        for x in 0..320 {
            assert_eq!(out.get_pixel(x, y), blank.get_pixel(x, y), "({x},{y})");
        }
    }

    // A model that returns NaN: logged error, frame untouched.
    let nan_dir = tempfile::tempdir().unwrap();
    write_bundle(nan_dir.path(), 2, false);
    std::fs::write(
        nan_dir.path().join("models/swap.onnx"),
        common::nan_swap(64),
    )
    .unwrap();
    // Re-seal so the bundle is valid and only the model is bad.
    let m = shared_proto::bundle::open(nan_dir.path(), &[]);
    assert!(
        m.is_err(),
        "the changed model breaks the hash until re-sealed"
    );
    let mut manifest: shared_proto::bundle::Manifest = shared_proto::decode(
        shared_proto::bundle::MANIFEST_KIND,
        &std::fs::read(nan_dir.path().join(shared_proto::bundle::MANIFEST)).unwrap(),
    )
    .unwrap();
    manifest.files =
        vec![shared_proto::bundle::file_entry(nan_dir.path(), "models/swap.onnx").unwrap()];
    shared_proto::bundle::seal(nan_dir.path(), &manifest, &common::key()).unwrap();
    let bad = loaded_slot(nan_dir.path()).current().unwrap();
    let frame = frames("data/carphone_pristine.mp4", 1).remove(0);
    let mut out = frame.clone();
    let r = p.process(&mut out, Some(&bad), 30.0);
    assert!(r.face.is_some() && !r.swapped);
    assert!(r.error.unwrap().contains("NaN"));
    assert_eq!(out, frame);
}

#[test]
fn a_signed_model_that_returns_the_wrong_size_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    write_bundle(dir.path(), 3, false);
    common::reseal_with_swap(dir.path(), &common::tiny_swap(64));
    let bad = loaded_slot(dir.path()).current().unwrap();
    let frame = frames("data/carphone_pristine.mp4", 1).remove(0);
    let mut out = frame.clone();
    let r = pipeline(Mode::Swap).process(&mut out, Some(&bad), 30.0);
    assert!(r.face.is_some() && !r.swapped);
    let e = r.error.unwrap();
    assert!(e.contains("rgb") && e.contains("needs"), "{e}");
    assert_eq!(out, frame, "the frame passes through");
}

#[test]
fn a_bad_bundle_is_refused_while_the_old_one_keeps_serving() {
    let good = tempfile::tempdir().unwrap();
    write_bundle(good.path(), 1, false);
    let models = loaded_slot(good.path());
    assert!(models.current().unwrap().version.starts_with("fixture 1st"));

    // Tampered model file: refused, old bundle still serving.
    let tampered = tempfile::tempdir().unwrap();
    write_bundle(tampered.path(), 2, false);
    let model = tampered.path().join("models/swap.onnx");
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&model, bytes).unwrap();
    let err = models
        .reload(tampered.path(), &[key_hex()], None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("sha256"), "{err}");
    assert!(models.current().unwrap().version.starts_with("fixture 1st"));

    // Signed by a key the booth does not trust; and no trusted keys at all.
    let newer = tempfile::tempdir().unwrap();
    write_bundle(newer.path(), 2, false);
    let stranger = "11".repeat(32);
    assert!(models.reload(newer.path(), &[stranger], None).is_err());
    assert!(models.reload(newer.path(), &[], None).is_err());
    assert!(models
        .reload(newer.path(), &[key_hex()], Some("nobody"))
        .unwrap_err()
        .to_string()
        .contains("no swap model into \"nobody\""));
    assert!(models.current().unwrap().version.starts_with("fixture 1st"));

    // A good new bundle replaces it.
    models.reload(newer.path(), &[key_hex()], None).unwrap();
    assert!(models.current().unwrap().version.starts_with("fixture 2st"));
}
