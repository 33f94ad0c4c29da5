//! The blur check beside the network ([`BlurCheck`]): fitted on a cell's or the saved model's
//! real training faces, and applied to the network's scores the way `detect` and the booth do.

use shared_proto::BlurCheck;

use super::data::{self, Kind, Sample};

/// How the report names cells scored with the check beside the network.
pub const BLUR_CHECK: &str = "blur check";

/// Share of real faces (not fitted on) the check alone may call fake.
pub const FALSE_ALARMS: f32 = 0.01;

/// The over-blur cue of each sample.
pub fn over_blur(samples: &[&Sample]) -> Vec<f32> {
    data::cues(samples).iter().map(|c| c.over_blur).collect()
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
