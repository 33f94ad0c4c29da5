//! The blur check beside the network ([`BlurCheck`]): fitted on a cell's or the saved model's
//! real training faces, and applied to the network's scores the way `detect` and the booth do.

use facekit::forensics;
use rayon::prelude::*;
use shared_proto::BlurCheck;

use super::data::{Kind, Sample};

/// How the report names cells scored with the check beside the network.
pub const BLUR_CHECK: &str = "blur check";

/// Share of real faces (not fitted on) the check alone may call fake.
pub const FALSE_ALARMS: f32 = 0.01;

/// How the report names cells scored as a booth calibrated on its own camera scores them.
pub const CAMERA_CHECK: &str = "camera calibration";

/// The over-blur cue of each sample.
pub fn over_blur(samples: &[&Sample]) -> Vec<f32> {
    samples
        .par_iter()
        .map(|s| forensics::cues(&s.crop, &s.landmarks).over_blur)
        .collect()
}

/// The check of `samples`' real faces: the early frames fit real faces' spread, the late ones
/// (which the network does not train on either) place the alarm.
pub fn fit_check(samples: &[&Sample]) -> Option<BlurCheck> {
    let (late, early): (Vec<&Sample>, Vec<&Sample>) = samples
        .iter()
        .filter(|s| s.kind == Kind::Real)
        .partition(|s| s.late);
    BlurCheck::fit(&over_blur(&early), &over_blur(&late), FALSE_ALARMS)
}

/// `network` scores combined with the check, face by face.
pub fn checked(check: &BlurCheck, network: &[f32], over_blur: &[f32], threshold: f32) -> Vec<f32> {
    network
        .iter()
        .zip(over_blur)
        .map(|(&p, &b)| check.score(p, b, threshold))
        .collect()
}

/// The two-sided check a booth's calibration fits on one camera (`video`'s samples): its early
/// real faces in frame order, the first half fitting the spread and the second placing the
/// alarm ([`BlurCheck::fit_either_way`], as `doppel-device`'s calibration does). `over_blur`
/// holds each sample's cue.
pub fn camera_check(samples: &[&Sample], over_blur: &[f32], video: usize) -> Option<BlurCheck> {
    let early: Vec<f32> = samples
        .iter()
        .zip(over_blur)
        .filter(|(s, _)| s.video == video && s.kind == Kind::Real && !s.late)
        .map(|(_, &b)| b)
        .collect();
    let (fit, alarm) = early.split_at(early.len() / 2);
    BlurCheck::fit_either_way(fit, alarm, FALSE_ALARMS)
}

/// `scores` (the network with the blur check) of `samples`' late faces, each raised by its own
/// camera's [`camera_check`]: the booth after its calibration. Returns the late samples'
/// indices and their scores; a video with too few early faces keeps its scores.
pub fn camera_checked(
    samples: &[&Sample],
    over_blur: &[f32],
    scores: &[f32],
    threshold: f32,
) -> (Vec<usize>, Vec<f32>) {
    let mut cameras: Vec<(usize, Option<BlurCheck>)> = Vec::new();
    for video in samples.iter().map(|s| s.video) {
        if !cameras.iter().any(|c| c.0 == video) {
            cameras.push((video, camera_check(samples, over_blur, video)));
        }
    }
    (0..samples.len())
        .filter(|&i| samples[i].late)
        .map(|i| {
            let camera = cameras.iter().find(|c| c.0 == samples[i].video);
            let score = match camera.and_then(|c| c.1.as_ref()) {
                Some(check) => check.score_either_way(scores[i], over_blur[i], threshold),
                None => scores[i],
            };
            (i, score)
        })
        .unzip()
}
