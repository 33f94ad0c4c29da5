//! The booth's camera calibration, as the report scores it on a held-out identity. A booth's
//! operator records real visitors on the booth's own camera; from them the booth sets its
//! threshold ([`threshold_at`]) and fits the camera's check ([`CameraCheck`]: the texture of
//! its real faces against their surround). The report does the same with each held-out
//! camera's *early* real faces and scores its late faces only, so nothing scored was
//! calibrated on, and no fake of the held-out camera was ever seen.

use facekit::forensics::{Cues, CAMERA_FEATURES};
use shared_proto::{threshold_at, CameraCheck};

use super::data::{Kind, Sample};

/// How the report names cells scored as a booth calibrated on its own camera scores them.
pub const CAMERA_CHECK: &str = "camera calibration";

/// The operator console's default false-alarm rate for a calibration (`page.html`).
pub const FALSE_ALARMS: f32 = 0.02;

pub type Features = [f32; CAMERA_FEATURES];

/// The camera features of samples from their `cues` (`Cues::camera_features`).
pub fn features(cues: &[Cues]) -> Vec<Features> {
    cues.iter().map(Cues::camera_features).collect()
}

/// `video`'s early real faces in frame order, as a calibration records them: their indices.
fn recording(samples: &[&Sample], video: usize) -> Vec<usize> {
    (0..samples.len())
        .filter(|&i| {
            let s = samples[i];
            s.video == video && s.kind == Kind::Real && !s.late
        })
        .collect()
}

/// The check a booth's calibration fits on one camera (`video`'s early real faces): the first
/// half fits it, the second places its alarm, as `doppel-device`'s calibration does.
pub fn camera_check(
    samples: &[&Sample],
    features: &[Features],
    video: usize,
) -> Option<CameraCheck> {
    fit_on(&recording(samples, video), features)
}

/// The check fitted on the `recorded` faces (indices into `features`, in frame order).
fn fit_on(recorded: &[usize], features: &[Features]) -> Option<CameraCheck> {
    let recorded: Vec<Features> = recorded.iter().map(|&i| features[i]).collect();
    let (fit, alarm) = recorded.split_at(recorded.len() / 2);
    CameraCheck::fit(fit, alarm, FALSE_ALARMS)
}

/// `scores` of `samples`' late faces as a booth calibrated on each face's own camera shows them:
/// the camera's threshold from its early real faces' scores, the score raised by the camera's
/// check. Each camera's scores are then shifted (in logits, which keeps their order) so that
/// its own threshold falls on `threshold`, the cell's: one cell can pool several cameras and
/// its accuracy is the booth's. Returns the late samples' indices and their scores; a camera
/// with too few early faces keeps its scores.
pub fn calibrated(
    samples: &[&Sample],
    features: &[Features],
    scores: &[f32],
    threshold: f32,
) -> (Vec<usize>, Vec<f32>) {
    let mut cameras: Vec<(usize, Option<f32>, Option<CameraCheck>)> = Vec::new();
    for video in samples.iter().map(|s| s.video) {
        if !cameras.iter().any(|c| c.0 == video) {
            let recorded = recording(samples, video);
            let recorded_scores: Vec<f32> = recorded.iter().map(|&i| scores[i]).collect();
            let own = threshold_at(&recorded_scores, FALSE_ALARMS);
            cameras.push((video, own, fit_on(&recorded, features)));
        }
    }
    let logit = |p: f32| {
        let p = p.clamp(1e-6, 1.0 - 1e-6);
        (p / (1.0 - p)).ln()
    };
    (0..samples.len())
        .filter(|&i| samples[i].late)
        .map(|i| {
            let Some((_, Some(own), check)) = cameras.iter().find(|c| c.0 == samples[i].video)
            else {
                return (i, scores[i]);
            };
            let raised = match check {
                Some(check) => check.score(scores[i], &features[i], *own),
                None => scores[i],
            };
            let shifted = logit(raised) - logit(*own) + logit(threshold);
            (i, 1.0 / (1.0 + (-shifted).exp()))
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artefacts::dataset::FaceAt;
    use image::RgbImage;

    fn sample(kind: Kind, video: usize, late: bool) -> Sample {
        Sample {
            crop: RgbImage::new(1, 1),
            landmarks: [[0.0; 2]; 5],
            kind,
            video,
            late,
            at: FaceAt::default(),
            donor: None,
        }
    }

    #[test]
    fn each_camera_is_calibrated_on_its_own_early_real_faces_and_only_late_faces_are_scored() {
        // Two cameras: 40 early real faces each (features wander a little), then late faces:
        // a real one like them, and a fake whose texture is unlike them. Camera 1's network
        // scores everything higher (its threshold from its own faces absorbs that).
        let mut samples = Vec::new();
        let mut features = Vec::new();
        let mut scores = Vec::new();
        for video in 0..2 {
            let lift = 0.3 * video as f32;
            for i in 0..40 {
                let t = i as f32 * 0.9;
                samples.push(sample(Kind::Real, video, false));
                features.push([
                    0.1 * t.sin(),
                    0.1 * t.cos(),
                    0.05 * (2.0 * t).sin(),
                    0.0,
                    0.0,
                ]);
                scores.push(0.1 + lift + 0.01 * (i % 5) as f32);
            }
            samples.push(sample(Kind::Real, video, true));
            features.push([0.02, 0.0, 0.0, 0.0, 0.0]);
            scores.push(0.11 + lift);
            samples.push(sample(Kind::Graphic, video, true));
            features.push([-0.8, 0.6, 0.0, 0.0, 0.0]);
            scores.push(0.11 + lift);
        }
        let refs: Vec<&Sample> = samples.iter().collect();
        assert!(camera_check(&refs, &features, 0).is_some());
        let (late, calibrated) = calibrated(&refs, &features, &scores, 0.5);
        assert_eq!(late, vec![40, 41, 82, 83]);
        // On both cameras the real face stays under the cell's threshold, the fake is over it.
        assert!(calibrated[0] < 0.5 && calibrated[2] < 0.5, "{calibrated:?}");
        assert!(calibrated[1] > 0.9 && calibrated[3] > 0.9, "{calibrated:?}");
    }
}
