//! The identity distance at which a booth takes a face for someone new (`facekit::visitor`):
//! measured on the trained people's faces in the shared code, where the swap graph's
//! `identity_offset` lives (offsets differ from codes by a constant, so distances agree).

use tch::Tensor;

use crate::artefacts::dataset::FaceSet;
use crate::model::net::Autoencoder;

/// Fewer training faces than this per person measure no spread worth trusting.
const MIN_FACES: usize = 10;

/// How far the trained people's faces lie from their own mean and from the other's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdentitySpread {
    /// 99th percentile of each face's distance from its own person's mean (both pooled).
    pub own_p99: f32,
    /// 1st percentile of each face's distance from the other person's mean (both pooled).
    pub other_p1: f32,
}

impl IdentitySpread {
    /// Midway between the two when they do not overlap; `None` when they do (an encoder that
    /// does not keep the two apart would split one visitor into several).
    pub fn switch_distance(&self) -> Option<f32> {
        (self.own_p99 < self.other_p1).then_some(0.5 * (self.own_p99 + self.other_p1))
    }
}

/// The spread of both people's training faces under `model`'s encoder; `None` when either has
/// fewer than [`MIN_FACES`].
pub fn identity_spread(model: &Autoencoder, sets: &[FaceSet; 2]) -> Option<IdentitySpread> {
    let codes = sets.each_ref().map(|s| {
        (s.train.len() >= MIN_FACES)
            .then(|| codes(model, &s.train))
            .flatten()
    });
    let [Some(a), Some(b)] = codes else {
        return None;
    };
    let (mean_a, mean_b) = (
        a.mean_dim(0, true, tch::Kind::Float),
        b.mean_dim(0, true, tch::Kind::Float),
    );
    let distances = |codes: &Tensor, mean: &Tensor| -> Vec<f32> {
        let d = (codes - mean).norm_scalaropt_dim(2, [1], false);
        Vec::<f32>::try_from(d.to_kind(tch::Kind::Float)).unwrap_or_default()
    };
    let own = [distances(&a, &mean_a), distances(&b, &mean_b)].concat();
    let other = [distances(&a, &mean_b), distances(&b, &mean_a)].concat();
    Some(IdentitySpread {
        own_p99: percentile(own, 0.99)?,
        other_p1: percentile(other, 0.01)?,
    })
}

/// Flattened codes `[N, D]` of the faces the mean code is measured on, on the CPU.
fn codes(model: &Autoencoder, faces: &[image::RgbImage]) -> Option<Tensor> {
    model
        .sampled_codes(faces)
        .map(|c| c.flatten(1, -1).to_device(tch::Device::Cpu))
}

/// The `q` quantile (nearest rank) of finite `values`; `None` when there are none.
fn percentile(mut values: Vec<f32>, q: f64) -> Option<f32> {
    values.retain(|v| v.is_finite());
    values.sort_by(f32::total_cmp);
    let last = values.len().checked_sub(1)?;
    values.get(((last as f64) * q).round() as usize).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_lies_midway_only_when_the_people_are_apart() {
        let apart = IdentitySpread {
            own_p99: 44.0,
            other_p1: 54.0,
        };
        assert_eq!(apart.switch_distance(), Some(49.0));
        let overlapping = IdentitySpread {
            own_p99: 54.0,
            other_p1: 44.0,
        };
        assert_eq!(overlapping.switch_distance(), None);
    }

    #[test]
    fn percentiles_by_nearest_rank_skip_what_is_not_a_number() {
        let v: Vec<f32> = (0..=100).map(|k| k as f32).chain([f32::NAN]).collect();
        assert_eq!(percentile(v.clone(), 0.99), Some(99.0));
        assert_eq!(percentile(v, 0.01), Some(1.0));
        assert_eq!(percentile(vec![], 0.5), None);
    }
}
