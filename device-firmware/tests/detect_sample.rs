//! Real detection on real frames; runs natively and, via `cross/build-aarch64.sh --test`,
//! under qemu-aarch64-static.

use std::path::PathBuf;

use device_firmware::find_faces::{detect_frames, Options};
use facekit::{FaceDetectorConfig, RetinaFace, VideoReader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn finds_one_face_per_frame_in_the_first_carphone_frames() {
    let det = RetinaFace::load(
        root().join(facekit::RETINAFACE_MODEL),
        FaceDetectorConfig::default(),
    )
    .expect("run `make setup` first");
    let mut video = VideoReader::open(root().join("data/carphone_pristine.mp4")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let opts = Options {
        every: 8,
        max_frames: Some(6),
        ..Default::default()
    };
    let summary = detect_frames(&det, &mut video, out.path(), &opts).unwrap();
    assert_eq!(summary.frames, 6);
    assert_eq!(summary.frames_with_faces, 6);
    let sheet = image::open(&summary.contact_sheet).unwrap();
    assert!(sheet.width() > 176 && sheet.height() >= 144);
    for line in std::fs::read_to_string(&summary.jsonl).unwrap().lines() {
        let rec: device_firmware::find_faces::FrameDetections = serde_json::from_str(line).unwrap();
        assert_eq!(rec.faces.len(), 1, "frame {}", rec.frame);
        assert!(rec.faces[0].score > 0.9);
    }
}
