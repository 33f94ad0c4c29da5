//! The camera check: what one camera's real faces look like, learnt at the booth without a
//! single fake.
//!
//! A detector trained on other cameras cannot know how this camera renders a face against its
//! surround: how much softer or sharper, how noisy, how its colour is subsampled, how its
//! seams and mouths look, nor where the detector's own scores of its visitors lie. A face
//! pasted into the picture from elsewhere (a phone fake held up to the booth, a graphics swap,
//! a generated face) breaks that balance, sharper or softer. The booth's operator calibration
//! records a few seconds of real visitors; the check fits the mean and covariance of their
//! features (`facekit::forensics::Cues::camera_features`: the forensic cues and the detector's
//! score) on the first half, and puts the alarm on the second half's Mahalanobis distances at
//! the calibration's false-alarm rate. Once calibrated, its verdict is the booth's
//! ([`CameraCheck::score`]): the network is one of its features, weighed by how its scores of
//! this camera's real faces vary, rather than a second opinion whose noise on an unseen camera
//! would drown the check's. [`threshold_at`] sets the same calibration's threshold for a booth
//! without a check. In the detector report (held-out cameras, checks fitted on each camera's
//! early real faces) it is the strongest opinion on graphics swaps and self-blends.

use serde::{Deserialize, Serialize};

use crate::blur_check::{alarm_at, past};

/// Least variance of a feature (its logarithm): a camera whose faces never varied in one
/// feature cannot turn the smallest change of it into alarms.
const MIN_VARIANCE: f32 = 0.05 * 0.05;
/// Share of each variance added to the diagonal of the covariance (see [`CameraCheck::fit`]).
const RIDGE: f64 = 0.05;
/// Fewest real faces a check is fitted on.
pub const MIN_FIT_FACES: usize = 8;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraCheck {
    /// Mean of the features over this camera's real faces.
    pub mean: Vec<f32>,
    /// Lower Cholesky factor of their covariance, row by row (`mean.len()` squared values).
    pub cholesky: Vec<f32>,
    /// The Mahalanobis distance from `mean` at which the check alone calls a face fake.
    pub alarm: f32,
}

impl CameraCheck {
    /// Fits mean and covariance on `fit` (one feature vector per real face of this camera) and
    /// places the alarm where at most `false_alarms` (a share) of `calibrate` (other real faces
    /// of it) would raise it, never nearer than √n + 1 (n features: a real face's typical
    /// distance is √n). Fewer faces than features leave the covariance singular; the variance
    /// floor and the ridge keep it invertible, and the alarm, placed on faces it was not fitted
    /// on, keeps the false alarms at the rate all the same. `None` with fewer than
    /// [`MIN_FIT_FACES`] faces to fit, none to calibrate, vectors of different lengths, or a
    /// value that is not finite.
    pub fn fit<F: AsRef<[f32]>>(fit: &[F], calibrate: &[F], false_alarms: f32) -> Option<Self> {
        let n = fit.first()?.as_ref().len();
        let all_ok = fit
            .iter()
            .chain(calibrate)
            .all(|f| f.as_ref().len() == n && f.as_ref().iter().all(|v| v.is_finite()));
        if n == 0 || fit.len() < MIN_FIT_FACES || calibrate.is_empty() || !all_ok {
            return None;
        }
        let count = fit.len() as f64;
        let mean: Vec<f64> = (0..n)
            .map(|i| fit.iter().map(|f| f.as_ref()[i] as f64).sum::<f64>() / count)
            .collect();
        let mut covariance = vec![0f64; n * n];
        for f in fit {
            let f = f.as_ref();
            for i in 0..n {
                for j in 0..n {
                    covariance[i * n + j] +=
                        (f[i] as f64 - mean[i]) * (f[j] as f64 - mean[j]) / (count - 1.0);
                }
            }
        }
        // Features that move together (as over-blur and detail do) make the covariance nearly
        // singular: a little of each variance on the diagonal keeps their disagreement telling
        // without letting rounding noise alarm.
        for i in 0..n {
            let v = covariance[i * n + i].max(MIN_VARIANCE as f64);
            covariance[i * n + i] = v * (1.0 + RIDGE);
        }
        let mut check = Self {
            mean: mean.iter().map(|&m| m as f32).collect(),
            cholesky: cholesky(&covariance, n)?,
            alarm: 0.0,
        };
        let distances = calibrate
            .iter()
            .map(|f| check.distance(f.as_ref()))
            .collect();
        check.alarm = alarm_at(distances, false_alarms).max((n as f32).sqrt() + 1.0);
        Some(check)
    }

    /// Mahalanobis distance of `features` from this camera's real faces (`NaN` when they are
    /// not as many as the check's).
    pub fn distance(&self, features: &[f32]) -> f32 {
        let n = self.mean.len();
        if features.len() != n {
            return f32::NAN;
        }
        // Solve L·y = x − mean by forward substitution; |y| is the distance.
        let mut y = vec![0f32; n];
        for i in 0..n {
            let row = &self.cholesky[i * n..i * n + i];
            let known: f32 = row.iter().zip(&y).map(|(l, v)| l * v).sum();
            y[i] = (features[i] - self.mean[i] - known) / self.cholesky[i * n + i];
        }
        y.iter().map(|v| v * v).sum::<f32>().sqrt()
    }

    /// The fake score of a face with these `features` on this camera: `threshold` exactly where
    /// its distance from the camera's real faces passes the alarm, two logits more per unit of
    /// distance beyond it, less before it. `None` when the features are not the check's (a
    /// check saved by an older booth with fewer features).
    pub fn score(&self, features: &[f32], threshold: f32) -> Option<f32> {
        let past_alarm = self.distance(features) - self.alarm;
        (!past_alarm.is_nan()).then(|| past(past_alarm, threshold))
    }

    /// How many features the check compares.
    pub fn features(&self) -> usize {
        self.mean.len()
    }

    /// Whether the check can score: consistent sizes, finite values, a positive diagonal.
    pub fn is_valid(&self) -> bool {
        let n = self.mean.len();
        n > 0
            && self.cholesky.len() == n * n
            && self
                .mean
                .iter()
                .chain(&self.cholesky)
                .all(|v| v.is_finite())
            && (0..n).all(|i| self.cholesky[i * n + i] > 0.0)
            && self.alarm.is_finite()
    }
}

/// The score at which `false_alarm_rate` of `scores` (real visitors) lie at or above: the
/// smallest threshold whose false alarms on this recording do not exceed the rate.
pub fn threshold_at(scores: &[f32], false_alarm_rate: f32) -> Option<f32> {
    let mut sorted: Vec<f32> = scores.iter().copied().filter(|s| s.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f32::total_cmp);
    let allowed = (false_alarm_rate * sorted.len() as f32).floor() as usize;
    // Scores strictly above the threshold raise an alarm (the booth uses `>=`, so step just
    // above the highest real score that must stay quiet).
    let quiet = sorted[sorted.len() - 1 - allowed.min(sorted.len() - 1)];
    Some((quiet + 1e-4).min(1.0))
}

/// Lower Cholesky factor of the `n`×`n` symmetric matrix `a` (row-major); `None` when it is not
/// positive definite. A few features only, so the textbook loop rather than a linear-algebra
/// crate on the board.
fn cholesky(a: &[f64], n: usize) -> Option<Vec<f32>> {
    let mut l = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] - sum;
                if d <= 0.0 || !d.is_finite() {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - sum) / l[j * n + j];
            }
        }
    }
    Some(l.iter().map(|&v| v as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `count` real faces of one camera: two correlated features that wander together, and a
    /// third of its own.
    fn reals(count: usize, phase: f32) -> Vec<[f32; 3]> {
        (0..count)
            .map(|i| {
                let t = i as f32 * 0.7 + phase;
                let a = 0.3 * t.sin();
                [a, 0.9 * a + 0.05 * (3.1 * t).cos(), 0.2 * (1.3 * t).cos()]
            })
            .collect()
    }

    #[test]
    fn faces_unlike_the_cameras_own_are_called_fake_and_its_own_are_left_alone() {
        let check = CameraCheck::fit(&reals(200, 0.0), &reals(100, 0.3), 0.01).unwrap();
        assert!(check.is_valid());
        let t = 0.4;
        let alarms = reals(100, 0.5)
            .iter()
            .filter(|f| check.score(&f[..], t).unwrap() >= t)
            .count();
        assert!(alarms <= 2, "{alarms} of 100 real faces alarmed");
        // Each feature alone within the camera's range, but the two that always move together
        // now disagree: a face pasted in from elsewhere, which no single feature shows.
        let broken = [0.25, -0.25, 0.0];
        assert!(broken.iter().all(|v: &f32| v.abs() <= 0.3));
        assert!(check.score(&broken, t).unwrap() > 0.95, "{check:?}");
        // Far out either way.
        assert!(check.score(&[1.5, 1.4, 0.0], t).unwrap() > 0.95);
        assert!(check.score(&[-1.5, -1.4, 0.0], t).unwrap() > 0.95);
        // The camera's typical face is well below the threshold.
        assert!(check.score(&[0.0, 0.0, 0.0], t).unwrap() < 0.1);
        // A vector of the wrong length cannot be checked.
        assert_eq!(check.score(&[9.0, 9.0], t), None);
        assert_eq!(check.features(), 3);
    }

    #[test]
    fn the_threshold_lets_through_the_chosen_share_of_real_scores() {
        let scores: Vec<f32> = (0..100).map(|i| i as f32 / 100.0).collect();
        let t = threshold_at(&scores, 0.05).unwrap();
        let alarms = scores.iter().filter(|&&s| s >= t).count();
        assert_eq!(alarms, 5, "threshold {t}");
        let t = threshold_at(&scores, 0.001).unwrap();
        assert_eq!(scores.iter().filter(|&&s| s >= t).count(), 0);
        assert!(threshold_at(&[f32::NAN], 0.1).is_none());
    }

    #[test]
    fn the_score_crosses_the_threshold_exactly_at_the_alarm() {
        let check = CameraCheck {
            mean: vec![0.0, 0.0],
            cholesky: vec![0.5, 0.0, 0.0, 0.25],
            alarm: 3.0,
        };
        assert!((check.distance(&[1.5, 0.0]) - 3.0).abs() < 1e-6);
        assert!((check.distance(&[0.0, 0.75]) - 3.0).abs() < 1e-6);
        assert!((check.score(&[1.5, 0.0], 0.3).unwrap() - 0.3).abs() < 1e-4);
        assert!(check.score(&[1.49, 0.0], 0.3).unwrap() < 0.3);
        assert!(check.score(&[1.51, 0.0], 0.3).unwrap() > 0.3);
    }

    #[test]
    fn too_few_or_broken_faces_fit_nothing_and_flat_ones_still_fit() {
        assert!(CameraCheck::fit(&reals(7, 0.0), &reals(10, 0.0), 0.01).is_none());
        assert!(CameraCheck::fit(&reals(8, 0.0), &reals(10, 0.0), 0.01).is_some());
        // Fewer faces than features: the ridge keeps the fit invertible.
        let wide: Vec<[f32; 9]> = reals(8, 0.0)
            .iter()
            .map(|r| {
                [
                    r[0],
                    r[1],
                    r[2],
                    r[0] - r[1],
                    0.5 * r[2],
                    r[1],
                    0.0,
                    r[0] * r[2],
                    0.1,
                ]
            })
            .collect();
        assert!(CameraCheck::fit(&wide, &wide, 0.01).is_some_and(|c| c.is_valid()));
        assert!(CameraCheck::fit(&reals(50, 0.0), &[], 0.01).is_none());
        let mut bad = reals(50, 0.0);
        bad[3][1] = f32::NAN;
        assert!(CameraCheck::fit(&bad, &reals(10, 0.0), 0.01).is_none());
        let ragged: Vec<Vec<f32>> = (0..20).map(|i| vec![0.1 * i as f32; 2 + i % 2]).collect();
        assert!(CameraCheck::fit(&ragged, &ragged, 0.01).is_none());
        // Faces that never varied still give a finite check that alarms only well away.
        let flat = CameraCheck::fit(&[[0.0f32; 3]; 20], &[[0.0f32; 3]; 20], 0.01).unwrap();
        assert!(flat.is_valid());
        assert_eq!(flat.alarm, 3f32.sqrt() + 1.0);
        assert!(flat.distance(&[0.05, 0.0, 0.0]) <= 1.0 + 1e-5);
        // The saved form survives TOML.
        let text = toml::to_string(&flat).unwrap();
        assert_eq!(toml::from_str::<CameraCheck>(&text).unwrap(), flat);
    }
}
