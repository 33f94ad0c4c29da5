//! Head pose (yaw, pitch, roll) estimated from the five landmarks alone.
//!
//! Five points cannot give a true 3-D pose, but they give a monotonic, well-behaved estimate
//! that is good enough to bin faces for coverage reports: roll is the eye-line angle; yaw comes
//! from how far the nose tip sits off the eyes' midline (the nose protrudes ~0.7 half
//! inter-ocular distances in front of the eye plane); pitch from where the nose sits between
//! the eye line and the mouth line, relative to the frontal template.

use serde::{Deserialize, Serialize};

/// Degrees. Positive yaw: the face turns to image-right; positive pitch: chin up; positive
/// roll: the eye line rotates clockwise on screen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pose {
    pub yaw: f32,
    pub pitch: f32,
    pub roll: f32,
}

/// Nose depth over half the inter-ocular distance (average adult head).
const NOSE_DEPTH_OVER_HALF_IOD: f32 = 0.7;
/// Nose height between the eye line (0) and mouth line (1) on a frontal face (ArcFace template).
const FRONTAL_NOSE_HEIGHT: f32 = 0.495;
/// Nose depth over the eye-to-mouth distance.
const NOSE_DEPTH_OVER_EYE_MOUTH: f32 = 0.45;

pub fn estimate_pose(lm: &[[f32; 2]; 5]) -> Pose {
    let [el, er, nose, ml, mr] = *lm;
    let roll = (er[1] - el[1]).atan2(er[0] - el[0]);
    // Undo roll around the eye midpoint so yaw and pitch are measured in the face's own axes.
    let eye_mid = [(el[0] + er[0]) / 2.0, (el[1] + er[1]) / 2.0];
    let (s, c) = (-roll).sin_cos();
    let derolled = |p: [f32; 2]| {
        let (dx, dy) = (p[0] - eye_mid[0], p[1] - eye_mid[1]);
        [c * dx - s * dy, s * dx + c * dy]
    };
    let half_iod = ((er[0] - el[0]).hypot(er[1] - el[1]) / 2.0).max(1e-3);
    let n = derolled(nose);
    let mouth = {
        let (a, b) = (derolled(ml), derolled(mr));
        [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]
    };
    let yaw = (n[0] / half_iod / NOSE_DEPTH_OVER_HALF_IOD).atan();
    let eye_mouth = mouth[1].max(1e-3);
    let pitch = ((FRONTAL_NOSE_HEIGHT - n[1] / eye_mouth) / NOSE_DEPTH_OVER_EYE_MOUTH).atan();
    Pose {
        yaw: yaw.to_degrees(),
        pitch: pitch.to_degrees(),
        roll: roll.to_degrees(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_proto::FaceCropSpec;

    fn template() -> [[f32; 2]; 5] {
        FaceCropSpec::new(112, 0.0).template_px()
    }

    #[test]
    fn the_template_is_frontal() {
        let p = estimate_pose(&template());
        assert!(
            p.yaw.abs() < 1.0 && p.pitch.abs() < 1.0 && p.roll.abs() < 1.0,
            "{p:?}"
        );
    }

    #[test]
    fn rotating_the_points_changes_only_roll() {
        let r = 15f32.to_radians();
        let rotated =
            template().map(|[x, y]| [x * r.cos() - y * r.sin(), x * r.sin() + y * r.cos()]);
        let (p, base) = (estimate_pose(&rotated), estimate_pose(&template()));
        // The template's eye line itself is tilted by -0.3 degrees.
        assert!((p.roll - base.roll - 15.0).abs() < 0.01, "{p:?}");
        assert!(
            (p.yaw - base.yaw).abs() < 0.01 && (p.pitch - base.pitch).abs() < 0.01,
            "{p:?}"
        );
    }

    #[test]
    fn moving_the_nose_sideways_and_up_gives_yaw_and_pitch() {
        let mut lm = template();
        lm[2][0] += 10.0;
        let p = estimate_pose(&lm);
        assert!(p.yaw > 15.0 && p.pitch.abs() < 1.0, "{p:?}");
        let mut lm = template();
        lm[2][1] -= 8.0;
        assert!(estimate_pose(&lm).pitch > 10.0);
    }
}
