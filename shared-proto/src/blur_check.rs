//! The blur check: a second opinion beside a detector's network, fitted on real faces alone.
//!
//! Generated faces come out softer than the frame around them. How much softer a real face is
//! than its surround (the over-blur cue, see `facekit::forensics`) varies from camera to camera,
//! but its spread over real faces can be learnt without a single fake; a face far outside that
//! spread is suspect whatever generator made it. The network catches what it was taught
//! (blending seams); this catches the blur of generators it never saw. Host and booth combine
//! the two with [`BlurCheck::score`], so both give a face the same score.

use serde::{Deserialize, Serialize};

/// How far above the alarm one robust spread moves the combined score, in logits: steep enough
/// that a face well past the alarm scores near 1, gentle enough to keep faces ranked.
const LOGITS_PER_SPREAD: f32 = 2.0;
/// The check never alarms nearer than this many spreads to real faces' median.
const MIN_ALARM: f32 = 2.0;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BlurCheck {
    /// Median of ln(over-blur) over real faces.
    pub centre: f32,
    /// Robust spread of ln(over-blur) over real faces: 1.4826 × its median absolute deviation.
    pub scale: f32,
    /// How many spreads above `centre` the check alone calls a face fake.
    pub alarm: f32,
}

impl BlurCheck {
    /// Fits the spread on `fit` (over-blur of real faces) and puts the alarm where at most
    /// `false_alarms` (a share) of `calibrate` (other real faces, not in `fit`) would raise it.
    /// With few faces in `calibrate` the alarm sits at the softest of them (never nearer than
    /// [`MIN_ALARM`]). `None` with fewer than 8 faces to fit, none to calibrate, or a value that is
    /// not finite.
    pub fn fit(fit: &[f32], calibrate: &[f32], false_alarms: f32) -> Option<Self> {
        if fit.len() < 8
            || calibrate.is_empty()
            || !fit.iter().chain(calibrate).all(|v| v.is_finite())
        {
            return None;
        }
        let mut logs: Vec<f32> = fit.iter().map(|v| v.max(1e-6).ln()).collect();
        let centre = median(&mut logs);
        let mut deviations: Vec<f32> = logs.iter().map(|l| (l - centre).abs()).collect();
        // A floor so a camera whose faces never varied cannot turn noise into alarms.
        let scale = (1.4826 * median(&mut deviations)).max(0.05);
        let mut check = Self {
            centre,
            scale,
            alarm: 0.0,
        };
        let z: Vec<f32> = calibrate.iter().map(|&v| check.spreads(v)).collect();
        check.alarm = alarm_at(z, false_alarms).max(MIN_ALARM);
        Some(check)
    }

    /// How many spreads `over_blur` lies above real faces' median (negative: sharper).
    pub fn spreads(&self, over_blur: f32) -> f32 {
        (over_blur.max(1e-6).ln() - self.centre) / self.scale
    }

    /// Whether the check alone calls a face of this over-blur fake: softer than the alarm.
    pub fn alarms(&self, over_blur: f32) -> bool {
        self.spreads(over_blur) >= self.alarm
    }

    /// The combined fake score of a face: the network's `network` score, raised when the face is
    /// softer than real faces are, so that it crosses `threshold` (the network's verdict
    /// threshold) exactly where the blur passes the alarm. A face the network calls fake stays
    /// fake; the check only adds.
    pub fn score(&self, network: f32, over_blur: f32, threshold: f32) -> f32 {
        raise(network, self.spreads(over_blur) - self.alarm, threshold)
    }

    /// Whether every field is finite and the spread positive.
    pub fn is_valid(&self) -> bool {
        self.centre.is_finite()
            && self.scale.is_finite()
            && self.scale > 0.0
            && self.alarm.is_finite()
    }
}

/// `network` raised to the score of a check `past_alarm` spreads beyond its alarm: the
/// threshold exactly at the alarm, [`LOGITS_PER_SPREAD`] logits more per spread beyond it. A
/// check only ever adds to the network's verdict.
fn raise(network: f32, past_alarm: f32, threshold: f32) -> f32 {
    network.max(past(past_alarm, threshold))
}

/// The score of a check alone `past_alarm` spreads beyond its alarm: `threshold` at the alarm,
/// [`LOGITS_PER_SPREAD`] logits more per spread beyond it (fewer before it).
pub(crate) fn past(past_alarm: f32, threshold: f32) -> f32 {
    let t = threshold.clamp(1e-4, 1.0 - 1e-4);
    let logit = (t / (1.0 - t)).ln() + LOGITS_PER_SPREAD * past_alarm;
    1.0 / (1.0 + (-logit).exp())
}

/// The distance at or below which all but `false_alarms` (a share) of `distances` lie.
/// `distances` must not be empty.
pub(crate) fn alarm_at(mut distances: Vec<f32>, false_alarms: f32) -> f32 {
    distances.sort_by(f32::total_cmp);
    let at = ((1.0 - false_alarms.clamp(0.0, 1.0)) * distances.len() as f32).ceil() as usize;
    distances[at.min(distances.len() - 1)]
}

fn median(v: &mut [f32]) -> f32 {
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real faces with over-blur spread around 1 (a little softer or sharper than their
    /// surround), as a camera gives them.
    fn reals(n: usize, offset: f32) -> Vec<f32> {
        (0..n)
            .map(|i| (0.2 * ((i as f32 + offset) * 0.7).sin()).exp())
            .collect()
    }

    #[test]
    fn a_face_much_softer_than_real_ones_is_called_fake_and_real_ones_are_left_alone() {
        let check = BlurCheck::fit(&reals(200, 0.0), &reals(100, 0.3), 0.01).unwrap();
        assert!(check.is_valid());
        let t = 0.4;
        let alarms = reals(100, 0.3)
            .iter()
            .filter(|&&v| check.score(0.1, v, t) >= t)
            .count();
        assert!(alarms <= 1, "{alarms} of 100 real faces alarmed");
        // A real face keeps the network's score.
        assert_eq!(check.score(0.1, 1.0, t), 0.1);
        // A generated face 8× softer than its surround.
        assert!(check.score(0.1, 8.0, t) > 0.95);
        // The network's own verdict is never lowered, however sharp the face.
        assert_eq!(check.score(0.9, 0.01, t), 0.9);
        // Softer always scores at least as high.
        let mut last = 0.0;
        for i in 0..50 {
            let s = check.score(0.1, 1.0 + 0.2 * i as f32, t);
            assert!(s >= last);
            last = s;
        }
    }

    #[test]
    fn the_check_crosses_the_threshold_exactly_at_its_alarm() {
        let check = BlurCheck {
            centre: 0.0,
            scale: 0.25,
            alarm: 3.0,
        };
        let at_alarm = (0.25f32 * 3.0).exp();
        assert!((check.score(0.0, at_alarm, 0.3) - 0.3).abs() < 1e-4);
        assert!(check.score(0.0, at_alarm * 0.99, 0.3) < 0.3);
        // Its own alarm agrees with where the score crosses.
        assert!(check.alarms(at_alarm * 1.01) && !check.alarms(at_alarm * 0.99));
    }

    #[test]
    fn too_few_or_broken_faces_fit_nothing() {
        assert!(BlurCheck::fit(&reals(5, 0.0), &reals(100, 0.0), 0.01).is_none());
        assert!(BlurCheck::fit(&reals(50, 0.0), &[], 0.01).is_none());
        // Three faces to calibrate on: the alarm is the softest of them.
        let few = [1.1, 1.3, 1.2];
        let check = BlurCheck::fit(&reals(50, 0.0), &few, 0.01).unwrap();
        assert_eq!(check.alarm, check.spreads(1.3).max(MIN_ALARM));
        let mut bad = reals(50, 0.0);
        bad[3] = f32::NAN;
        assert!(BlurCheck::fit(&bad, &reals(100, 0.0), 0.01).is_none());
        // Faces that never vary still give a usable, finite check.
        let flat = BlurCheck::fit(&[1.0; 20], &[1.0; 20], 0.01).unwrap();
        assert!(flat.is_valid() && flat.alarm >= MIN_ALARM);
    }
}
