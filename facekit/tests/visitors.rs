//! The booth's swap follows whoever is in front of it (`facekit::visitor`), judged on a small
//! ONNX graph with the swap graph's interface whose "code" is a face's mean colour: its output
//! colour shows exactly which identity offset tract was fed.
//!
//! code = mean RGB of the face; identity_offset = code − source mean; the face drawn is
//! code + (target mean − source mean) + visitor_offset, everywhere; the mask is 1.

use std::time::Duration;

use facekit::swap::{FaceSwapper, OnnxSwapper};
use facekit::visitor::VisitorPolicy;
use facekit::OnnxModel;
use image::{Rgb, RgbImage};
use model_spec::graphs::{IDENTITY_OFFSET, VISITOR_OFFSET};
use model_spec::onnx::{self, attr_int, attr_ints, GraphBuilder};
use shared_proto::FaceCropSpec;

const SOURCE: [f32; 3] = [0.2, 0.2, 0.2];
const TARGET: [f32; 3] = [0.7, 0.5, 0.3];

fn colour_code_graph(size: i64) -> Vec<u8> {
    let mut g = GraphBuilder::default();
    let code_dims = [1, 3, 1, 1];
    g.node(
        "ReduceMean",
        &["face"],
        "code",
        vec![attr_ints("axes", vec![2, 3]), attr_int("keepdims", 1)],
    );
    g.f32_const("source", &code_dims, &SOURCE);
    let shift: Vec<f32> = TARGET.iter().zip(SOURCE).map(|(t, s)| t - s).collect();
    g.f32_const("shift", &code_dims, &shift);
    g.node("Sub", &["code", "source"], IDENTITY_OFFSET, vec![]);
    g.node("Add", &["code", "shift"], "shifted", vec![]);
    g.node("Add", &["shifted", VISITOR_OFFSET], "visited", vec![]);
    g.f32_const("zero", &[], &[0.0]);
    g.f32_const("one", &[], &[1.0]);
    g.node("Mul", &["face", "zero"], "blank", vec![]);
    g.node("Add", &["blank", "visited"], "rgb", vec![]);
    g.node(
        "ReduceMean",
        &["blank"],
        "blank1",
        vec![attr_ints("axes", vec![1]), attr_int("keepdims", 1)],
    );
    g.node("Add", &["blank1", "one"], "mask", vec![]);
    let model = g.finish(
        "colour_code",
        "test",
        vec![
            onnx::value_info("face", &[-1, 3, size, size], "face"),
            onnx::value_info(VISITOR_OFFSET, &code_dims, "visitor"),
        ],
        vec![
            onnx::value_info("rgb", &[-1, 3, size, size], "rgb"),
            onnx::value_info("mask", &[-1, 1, size, size], "mask"),
            onnx::value_info(IDENTITY_OFFSET, &[-1, 3, 1, 1], "offset"),
        ],
    );
    onnx::to_bytes(&model)
}

fn swapper(policy: Option<VisitorPolicy>) -> OnnxSwapper {
    let crop = FaceCropSpec::default();
    let model = OnnxModel::from_bytes("colour_code", &colour_code_graph(crop.size as i64), 1, true)
        .unwrap();
    OnnxSwapper::with_visitors(model, crop, policy)
}

fn face(rgb: [f32; 3]) -> RgbImage {
    let size = FaceCropSpec::default().size;
    RgbImage::from_pixel(size, size, Rgb(rgb.map(|v| (v * 255.0).round() as u8)))
}

/// The colour the swap drew, in 0..1.
fn drawn(swapper: &OnnxSwapper, rgb: [f32; 3]) -> [f32; 3] {
    let (out, mask) = swapper.swap(&face(rgb)).unwrap();
    assert_eq!(mask.get_pixel(3, 3).0[0], 255);
    out.get_pixel(3, 3).0.map(|v| v as f32 / 255.0)
}

fn assert_near(got: [f32; 3], want: [f32; 3], what: &str) {
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1.5 / 255.0,
            "{what}: drew {got:?}, want {want:?}"
        );
    }
}

#[test]
fn a_stranger_is_moved_onto_the_target_from_the_first_face_on() {
    let stranger = [0.4, 0.6, 0.8];
    // Without following, the trained shift keeps the stranger's own offset from the source.
    let fixed = swapper(None);
    assert!(!fixed.follows_visitors());
    let as_trained: Vec<f32> = (0..3)
        .map(|c| stranger[c] + TARGET[c] - SOURCE[c])
        .collect();
    assert_near(
        drawn(&fixed, stranger),
        [as_trained[0], as_trained[1], as_trained[2]],
        "fixed",
    );

    let booth = swapper(Some(VisitorPolicy::default()));
    assert!(booth.follows_visitors());
    // The first face is measured before it is swapped: the target exactly.
    assert_near(drawn(&booth, stranger), TARGET, "first face");
    // A second face that differs from the first keeps the difference (expression, light) and
    // sits on the target: the mean so far is the first face.
    let moved = [0.45, 0.55, 0.8];
    let want: Vec<f32> = (0..3).map(|c| moved[c] - stranger[c] + TARGET[c]).collect();
    assert_near(
        drawn(&booth, moved),
        [want[0], want[1], want[2]],
        "second face",
    );
    // The self-test's path swaps as trained and does not join the visitor's mean.
    let (out, _) = booth.swap_as_trained(&face([0.0, 0.0, 0.0])).unwrap();
    let trained = out.get_pixel(0, 0).0.map(|v| v as f32 / 255.0);
    assert_near(trained, [0.5, 0.3, 0.1], "as trained");
    let mean: Vec<f32> = (0..3).map(|c| (stranger[c] + moved[c]) / 2.0).collect();
    let want: Vec<f32> = (0..3).map(|c| stranger[c] - mean[c] + TARGET[c]).collect();
    assert_near(
        drawn(&booth, stranger),
        [want[0], want[1], want[2]],
        "third face",
    );
}

/// The colour the swap drew for a face seen at stream time `ms`.
fn drawn_at(swapper: &OnnxSwapper, rgb: [f32; 3], ms: u64) -> [f32; 3] {
    let (out, _) = swapper
        .swap_seen_at(&face(rgb), Duration::from_millis(ms))
        .unwrap();
    out.get_pixel(3, 3).0.map(|v| v as f32 / 255.0)
}

#[test]
fn a_gap_in_the_stream_not_in_processing_starts_the_next_visitor() {
    let booth = swapper(Some(VisitorPolicy {
        forget_after: Duration::from_millis(50),
        ..VisitorPolicy::default()
    }));
    let first = [0.1, 0.1, 0.1];
    for i in 0..5 {
        assert_near(drawn_at(&booth, first, i * 40), TARGET, "first visitor");
    }
    // A slow board (or emulation) takes longer than forget_after over a frame: the stream's
    // next frame is still the same visitor, so a brighter face is drawn brighter.
    std::thread::sleep(Duration::from_millis(120));
    let brighter = [0.3, 0.3, 0.3];
    let kept = TARGET.map(|t| t + 0.2);
    assert_near(drawn_at(&booth, brighter, 200), kept, "same visitor");
    // A gap in the stream itself forgets them: had the mean stayed, this face would be drawn
    // 0.5 brighter than the target.
    assert_near(
        drawn_at(&booth, [0.6, 0.6, 0.6], 400),
        TARGET,
        "next visitor",
    );
}

#[test]
fn a_new_visitor_named_by_the_tracker_is_measured_afresh() {
    let booth = swapper(Some(VisitorPolicy::default()));
    for i in 0..5 {
        assert_near(
            drawn_at(&booth, [0.1, 0.1, 0.1], i * 40),
            TARGET,
            "first visitor",
        );
    }
    // No gap in the stream: the tracker moved to someone nearer.
    booth.new_visitor();
    assert_near(
        drawn_at(&booth, [0.6, 0.6, 0.6], 200),
        TARGET,
        "next visitor",
    );
}
