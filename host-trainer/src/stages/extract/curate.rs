//! Curation rules: every face candidate is kept or rejected with one reason code. Each rule has
//! its threshold in [`CurationConfig`] (TOML), and the measured value goes to the metadata so a
//! rejected face can always be explained.

use facekit::{AlignedFace, Detection, Pose};
use serde::{Deserialize, Serialize};

use crate::artefacts::dataset::Reason;
use facekit::quality::Quality;

/// LBPH distance separating "same person" from "someone else"; see `facekit::identity`.
// Measured on the sample videos (5 reference frames each): same person 0.00–0.76, the
// other person 0.98–1.09.
const MAX_IDENTITY_DISTANCE: f32 = 0.87;

/// Thresholds of every curation rule. Defaults suit webcam/phone video at 64–128 px crops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CurationConfig {
    /// Any second face at or above this detector score rejects the whole frame.
    pub multi_face_score: f32,
    /// Minimum detector score of the face itself.
    pub min_score: f32,
    /// Minimum face box width in source pixels.
    pub min_face_px: f32,
    /// Maximum fraction of the crop sampled from outside the frame.
    pub max_outside: f32,
    /// Maximum mean landmark-to-template distance after alignment, as a fraction of crop size.
    pub max_template_error: f32,
    /// Minimum variance of the Laplacian of the inner face on a 64-px crop; scaled by
    /// (64 / crop size)² for larger crops, whose pixels carry less detail each.
    pub min_sharpness: f32,
    /// Minimum mean luma of the inner face (0–255).
    pub min_brightness: f32,
    /// Maximum mean luma of the inner face (0–255).
    pub max_brightness: f32,
    /// Maximum fraction of clipped (≤5 or ≥250) inner-face pixels.
    pub max_clipped: f32,
    /// Allowed range of the red, green and blue chromaticity of the inner face.
    pub chroma_min: [f32; 3],
    pub chroma_max: [f32; 3],
    /// With `--reference`: largest LBPH chi-square distance to the closest reference crop.
    pub max_identity_distance: f32,
    /// Faces whose 256-bit difference hash is within this many bits of an accepted face are
    /// duplicates (0 = only identical gradients).
    pub duplicate_bits: u32,
}

impl Default for CurationConfig {
    fn default() -> Self {
        Self {
            multi_face_score: 0.6,
            min_score: 0.9,
            min_face_px: 32.0,
            max_outside: 0.10,
            max_template_error: 0.06,
            min_sharpness: 100.0,
            min_brightness: 45.0,
            max_brightness: 215.0,
            max_clipped: 0.2,
            // Skin is red-leaning under any usable light; warm indoor light is allowed, a green,
            // blue or magenta cast is not.
            chroma_min: [0.36, 0.26, 0.08],
            chroma_max: [0.60, 0.38, 0.33],
            duplicate_bits: 3,
            max_identity_distance: MAX_IDENTITY_DISTANCE,
        }
    }
}

/// Everything measured about one face candidate.
pub struct Candidate<'a> {
    pub detection: &'a Detection,
    /// Other faces in the same frame.
    pub others: &'a [Detection],
    pub aligned: &'a AlignedFace,
    pub quality: &'a Quality,
    pub pose: &'a Pose,
    /// Distance to the reference person, when one was given.
    pub identity_distance: Option<f32>,
}

impl CurationConfig {
    /// The first rule the candidate breaks, cheapest and most fundamental first.
    /// Duplicates are judged later, against the faces accepted so far.
    pub fn judge(&self, c: &Candidate<'_>) -> Reason {
        let size = c.aligned.image.width() as f32;
        let lm = &c.detection.landmarks;
        if c.others.iter().any(|o| o.score >= self.multi_face_score) {
            return Reason::MultiFace;
        }
        if c.identity_distance
            .is_some_and(|d| d > self.max_identity_distance)
        {
            return Reason::WrongPerson;
        }
        if c.detection.score < self.min_score {
            return Reason::LowScore;
        }
        if c.detection.width() < self.min_face_px {
            return Reason::TooSmall;
        }
        if c.aligned.outside_fraction > self.max_outside {
            return Reason::CutOff;
        }
        let ordered = lm[0][0] < lm[1][0]
            && lm[3][0] < lm[4][0]
            && lm[0][1].max(lm[1][1]) < lm[3][1].min(lm[4][1]);
        // A turned head legitimately fits the frontal template worse.
        let allowed = self.max_template_error * (1.0 + c.pose.yaw.abs() / 45.0);
        if !ordered || c.aligned.template_error / size > allowed {
            return Reason::Occluded;
        }
        // Exposure first: blur cannot be judged on a face that is mostly black or white.
        let q = c.quality;
        if q.brightness < self.min_brightness {
            return Reason::Dark;
        }
        if q.brightness > self.max_brightness || q.clipped > self.max_clipped {
            return Reason::Overexposed;
        }
        if q.sharpness < self.min_sharpness * (64.0 / size).powi(2) {
            return Reason::Blurry;
        }
        let in_range =
            (0..3).all(|i| q.chroma[i] >= self.chroma_min[i] && q.chroma[i] <= self.chroma_max[i]);
        if !in_range {
            return Reason::Tinted;
        }
        Reason::Accepted
    }
}
