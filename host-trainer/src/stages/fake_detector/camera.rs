//! The booth's camera calibration, as the report scores it on a held-out identity. A booth's
//! operator records real visitors on the booth's own camera; from them the booth fits the
//! camera's check ([`CameraCheck`]: every forensic cue and the detector's score, as its real
//! faces give them) and, for a booth without one, sets its threshold ([`threshold_at`]). The
//! report does the same with each held-out camera's *early* real faces and scores its late
//! faces only, so nothing scored was calibrated on, and no fake of the held-out camera was
//! ever seen.

use facekit::forensics::{Cues, CAMERA_FEATURES};
use shared_proto::{threshold_at, CameraCheck};

use super::data::{Kind, Sample};

/// How the report names cells scored as a booth calibrated on its own camera scores them.
pub const CAMERA_CHECK: &str = "camera calibration";

/// The operator console's default false-alarm rate for a calibration (`page.html`).
pub const FALSE_ALARMS: f32 = 0.02;

/// `video`'s early real faces in frame order, as a calibration records them: their indices.
fn recording(samples: &[&Sample], video: usize) -> Vec<usize> {
    (0..samples.len())
        .filter(|&i| {
            let s = samples[i];
            s.video == video && s.kind == Kind::Real && !s.late
        })
        .collect()
}

/// The check a booth's calibration fits on one camera (`video`'s early real faces), on any
/// `features` of the samples: the first half fits it, the second places its alarm, as
/// `doppel-device`'s calibration does.
pub fn camera_check<F: AsRef<[f32]>>(
    samples: &[&Sample],
    features: &[F],
    video: usize,
) -> Option<CameraCheck> {
    fit_on(&recording(samples, video), features)
}

/// The check fitted on the `recorded` faces (indices into `features`, in frame order).
fn fit_on<F: AsRef<[f32]>>(recorded: &[usize], features: &[F]) -> Option<CameraCheck> {
    let recorded: Vec<&[f32]> = recorded.iter().map(|&i| features[i].as_ref()).collect();
    let (fit, alarm) = recorded.split_at(recorded.len() / 2);
    CameraCheck::fit(fit, alarm, FALSE_ALARMS)
}

/// `scores` of `samples`' late faces as a booth calibrated on each face's own camera shows them:
/// the camera's check, fitted on its early real faces' cues and scores, decides, its alarm on
/// `threshold` (the cell's, so that one cell can pool several cameras and its accuracy is the
/// booth's). A camera with too few early faces for a check keeps the network's scores, shifted
/// in logits (which keeps their order) so that the camera's own threshold (at the console's
/// false-alarm rate) falls on `threshold`. Returns the late samples' indices and their scores.
pub fn calibrated(
    samples: &[&Sample],
    cues: &[Cues],
    scores: &[f32],
    threshold: f32,
) -> (Vec<usize>, Vec<f32>) {
    let features: Vec<[f32; CAMERA_FEATURES]> = cues
        .iter()
        .zip(scores)
        .map(|(c, &s)| c.camera_features(s))
        .collect();
    let mut cameras: Vec<(usize, Option<f32>, Option<CameraCheck>)> = Vec::new();
    for video in samples.iter().map(|s| s.video) {
        if !cameras.iter().any(|c| c.0 == video) {
            let recorded = recording(samples, video);
            let recorded_scores: Vec<f32> = recorded.iter().map(|&i| scores[i]).collect();
            let own = threshold_at(&recorded_scores, FALSE_ALARMS);
            cameras.push((video, own, fit_on(&recorded, &features)));
        }
    }
    let logit = |p: f32| {
        let p = p.clamp(1e-6, 1.0 - 1e-6);
        (p / (1.0 - p)).ln()
    };
    (0..samples.len())
        .filter(|&i| samples[i].late)
        .map(|i| {
            let camera = cameras.iter().find(|c| c.0 == samples[i].video);
            let score = match camera {
                Some((_, _, Some(check))) => {
                    check.score(&features[i], threshold).unwrap_or(scores[i])
                }
                Some((_, Some(own), None)) => {
                    let shifted = logit(scores[i]) - logit(*own) + logit(threshold);
                    1.0 / (1.0 + (-shifted).exp())
                }
                _ => scores[i],
            };
            (i, score)
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
        let mut cues = Vec::new();
        let mut scores = Vec::new();
        let face = |over_blur: f32, detail: f32, noise: f32| {
            let mut c = Cues {
                over_blur: over_blur.exp(),
                edge_colour: 1.0,
                double_edges: 1.0,
                mouth_blur: 1.0,
                texture: Default::default(),
            };
            c.texture.detail = detail.exp();
            c.texture.edges = 1.0;
            c.texture.noise = noise.exp();
            c.texture.colour_noise = 1.0;
            c
        };
        for video in 0..2 {
            let lift = 0.3 * video as f32;
            for i in 0..40 {
                let t = i as f32 * 0.9;
                samples.push(sample(Kind::Real, video, false));
                cues.push(face(0.1 * t.sin(), 0.1 * t.cos(), 0.05 * (2.0 * t).sin()));
                scores.push(0.1 + lift + 0.01 * (i % 5) as f32);
            }
            samples.push(sample(Kind::Real, video, true));
            cues.push(face(0.02, 0.0, 0.0));
            scores.push(0.11 + lift);
            samples.push(sample(Kind::Graphic, video, true));
            cues.push(face(-0.8, 0.6, 0.0));
            scores.push(0.11 + lift);
        }
        let refs: Vec<&Sample> = samples.iter().collect();
        let cue_features: Vec<_> = cues.iter().map(Cues::cue_features).collect();
        assert!(camera_check(&refs, &cue_features, 0).is_some());
        let (late, calibrated) = calibrated(&refs, &cues, &scores, 0.5);
        assert_eq!(late, vec![40, 41, 82, 83]);
        // On both cameras the real face stays under the cell's threshold, the fake is over it.
        assert!(calibrated[0] < 0.5 && calibrated[2] < 0.5, "{calibrated:?}");
        assert!(calibrated[1] > 0.9 && calibrated[3] > 0.9, "{calibrated:?}");
    }
}
