//! A run's `config.toml`: the training settings (TOML). Every field has a documented default;
//! the run folder keeps a copy so a result can always be traced to its settings.

use facekit::blend::MaskSource;
use serde::{Deserialize, Serialize};

/// Weight of each loss term in the generator objective (0 switches a term off).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LossWeights {
    /// L1 reconstruction, eye/mouth weighted.
    pub l1: f64,
    /// 1 − SSIM.
    pub ssim: f64,
    /// Image-gradient difference (same edges at the same places).
    pub edge: f64,
    /// Learned-mask regulariser: L1 to the face-ellipse prior plus total variation.
    pub mask: f64,
    /// LSGAN adversarial term.
    pub gan: f64,
    /// Discriminator feature matching, our perceptual loss (no pretrained VGG exists here).
    pub feature: f64,
    /// Weight of eye and mouth pixels relative to the rest in the L1 term.
    pub eye_mouth_priority: f64,
    /// Masked training: how much pixels outside the face ellipse count in every image term and
    /// in what the discriminator sees (1 = whole crop, 0 = face only). The swap is pasted back
    /// inside the mask, so background detail only spends the bottleneck's capacity; 1 by default
    /// because the demo measured no gain (see README).
    pub outside_face: f64,
    /// The mask regulariser on the *other* decoder's mask for this person's faces — the mask a
    /// swap pastes with. A decoder otherwise only ever sees its own person's codes and its mask
    /// collapses on the other's. Logged inside the `mask` term (counts only when `mask` > 0).
    pub swap_mask: f64,
    /// LSGAN term on the swap itself: the other decoder's face for this person's code must
    /// pass the other person's discriminator as one of their real faces, and that
    /// discriminator learns swaps as fakes. Without it a decoder is never told what to do with
    /// the other person's codes and keeps their identity (logged inside the `gan` term). Off:
    /// at the demo's budget it moved dlib's distances the right way but painted dark blotches
    /// over eyes and mouth (README, "The demo's swap, measured").
    pub swap_gan: f64,
    /// Adversarial term on the shared code: a discriminator learns to tell A's codes from B's,
    /// the encoder learns to make them alike (labels swapped), so the code carries pose,
    /// expression and light but not who it is (DeepFaceLab's "true face"). Logged inside `gan`.
    pub code_adversarial: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        Self {
            l1: 1.0,
            ssim: 0.5,
            edge: 0.5,
            mask: 0.1,
            gan: 0.05,
            feature: 0.5,
            eye_mouth_priority: 3.0,
            outside_face: 1.0,
            swap_mask: 0.1,
            swap_gan: 0.0,
            code_adversarial: 0.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Architecture preset: original, lite or hq128.
    pub preset: String,
    pub batch_size: usize,
    /// Adam learning rate of the autoencoder and of the discriminators.
    pub lr: f64,
    pub lr_discriminator: f64,
    /// Adam betas.
    pub beta1: f64,
    pub beta2: f64,
    pub seed: u64,
    /// fp16 autocast with dynamic loss scaling on CUDA (ignored on CPU); master weights and
    /// every loss stay f32.
    pub mixed_precision: bool,
    /// The last stretch of a run at a falling learning rate, as DeepFaceLab's users end with
    /// "learning rate dropout" for sharper faces once they are learnt: over the last
    /// `lr_decay_last` of the run (by `--steps` or `--minutes`, whichever is further along)
    /// both learning rates fall linearly to `lr_decay_to` times their value. 0 = constant.
    pub lr_decay_last: f64,
    pub lr_decay_to: f64,
    pub weights: LossWeights,
    pub augment: AugmentConfig,
}

impl TrainConfig {
    /// The first setting no training can use, by its TOML key: a NaN weight, a zero batch, a
    /// learning rate of 1e9, a warp of NaN pixels (all come from the user's file).
    pub fn validate(&self) -> Result<(), crate::Error> {
        let bad = |key: &str, value: f64, allowed: &str| {
            Err(crate::Error::Setting {
                key: key.to_owned(),
                value: value.to_string(),
                allowed: allowed.to_owned(),
            })
        };
        if !(1..=4096).contains(&self.batch_size) {
            return bad("batch_size", self.batch_size as f64, "1 to 4096");
        }
        for (key, v) in [("lr", self.lr), ("lr_discriminator", self.lr_discriminator)] {
            if !(v.is_finite() && v > 0.0 && v < 1.0) {
                return bad(key, v, "above 0 and below 1");
            }
        }
        for (key, v) in [
            ("lr_decay_last", self.lr_decay_last),
            ("lr_decay_to", self.lr_decay_to),
        ] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return bad(key, v, "0 to 1");
            }
        }
        for (key, v) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(v.is_finite() && (0.0..1.0).contains(&v)) {
                return bad(key, v, "0 to below 1");
            }
        }
        let w = &self.weights;
        for (key, v) in [
            ("weights.l1", w.l1),
            ("weights.ssim", w.ssim),
            ("weights.edge", w.edge),
            ("weights.mask", w.mask),
            ("weights.gan", w.gan),
            ("weights.feature", w.feature),
            ("weights.eye_mouth_priority", w.eye_mouth_priority),
            ("weights.swap_mask", w.swap_mask),
            ("weights.swap_gan", w.swap_gan),
            ("weights.code_adversarial", w.code_adversarial),
        ] {
            if !(v.is_finite() && (0.0..=1000.0).contains(&v)) {
                return bad(key, v, "0 to 1000");
            }
        }
        if !(w.outside_face.is_finite() && (0.0..=1.0).contains(&w.outside_face)) {
            return bad("weights.outside_face", w.outside_face, "0 to 1");
        }
        let a = &self.augment;
        if !(2..=32).contains(&a.warp_grid) {
            return bad("augment.warp_grid", a.warp_grid as f64, "2 to 32");
        }
        for (key, v, max) in [
            ("augment.warp_sigma", a.warp_sigma, 0.5),
            ("augment.rotate_deg", a.rotate_deg, 180.0),
            ("augment.zoom", a.zoom, 0.9),
            ("augment.shift", a.shift, 0.9),
            ("augment.flip", a.flip, 1.0),
            ("augment.brightness", a.brightness, 1.0),
            ("augment.contrast", a.contrast, 1.0),
            ("augment.saturation", a.saturation, 1.0),
            ("augment.colour_transfer", a.colour_transfer, 1.0),
            ("augment.occluders", a.occluders, 1.0),
        ] {
            if !(v.is_finite() && (0.0..=max).contains(&v)) {
                return bad(key, f64::from(v), "0 up to its documented maximum");
            }
        }
        Ok(())
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            preset: "lite".into(),
            batch_size: 16,
            lr: 5e-4,
            lr_discriminator: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            seed: 1,
            mixed_precision: false,
            lr_decay_last: 0.0,
            lr_decay_to: 0.1,
            weights: LossWeights::default(),
            augment: AugmentConfig::default(),
        }
    }
}

/// Strength of every augmentation (TOML `[augment]` section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Control points per side of the random-warp grid.
    pub warp_grid: usize,
    /// Standard deviation of the control-point jitter, as a fraction of the crop side.
    pub warp_sigma: f32,
    /// Maximum rotation in degrees.
    pub rotate_deg: f32,
    /// Maximum relative zoom (0.05 = ±5 %).
    pub zoom: f32,
    /// Maximum shift as a fraction of the crop side.
    pub shift: f32,
    /// Probability of a horizontal flip.
    pub flip: f32,
    /// Maximum brightness (additive, 0–1 units) and contrast/saturation (relative) jitter.
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
    /// Probability that a face takes the colour statistics (mean/std per YCbCr channel over the
    /// face) of a random face of the *other* person, input and target alike, so lighting alone
    /// cannot separate A and B in the shared encoder (DFL's `ct_mode`). Off by default: on the
    /// demo data it lowered A→B identity transfer at 530 steps (75% vs 100%).
    pub colour_transfer: f32,
    /// Probability that a face gets a synthetic occluder (a hand or an object reaching in from
    /// an edge, `stages::train::occluders`), input and target alike; the face is then learnt
    /// only where it shows and the mask learns to leave the occluder out, for `--mask
    /// visible`.
    pub occluders: f32,
}

impl TrainConfig {
    /// What the learning rates are multiplied by at `progress` (0 = the run's start, 1 = its
    /// end): 1 until the last `lr_decay_last` of the run, then falling linearly to
    /// `lr_decay_to`.
    pub fn lr_factor(&self, progress: f64) -> f64 {
        if self.lr_decay_last <= 0.0 {
            return 1.0;
        }
        let into = (progress - (1.0 - self.lr_decay_last)) / self.lr_decay_last;
        1.0 - into.clamp(0.0, 1.0) * (1.0 - self.lr_decay_to)
    }

    /// The mask its swaps are pasted with unless the user says otherwise: the face ellipse less
    /// what the learned mask leaves out when training pasted occluders (the mask then knows
    /// hands), else the union of both (a learned mask that never saw the other person's faces
    /// can collapse on them).
    pub fn paste_mask(&self) -> MaskSource {
        if self.augment.occluders > 0.0 {
            MaskSource::Visible
        } else {
            MaskSource::Union
        }
    }
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            warp_grid: 5,
            warp_sigma: 0.02,
            rotate_deg: 10.0,
            zoom: 0.05,
            shift: 0.05,
            flip: 0.5,
            brightness: 0.05,
            contrast: 0.1,
            saturation: 0.1,
            colour_transfer: 0.0,
            occluders: 0.5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_documents_exactly_the_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/train.example.toml");
        let parsed: TrainConfig = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(parsed, TrainConfig::default());
    }

    #[test]
    fn the_fine_tune_config_is_the_defaults_at_batch_8_decaying_without_gan_warp_or_resampling() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../configs/train.finetune.toml"
        );
        let parsed: TrainConfig = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(parsed.validate().is_ok());
        let mut expected = TrainConfig {
            batch_size: 8,
            lr_decay_last: 0.5,
            lr_decay_to: 0.1,
            ..TrainConfig::default()
        };
        expected.weights.gan = 0.0;
        expected.weights.feature = 0.0;
        expected.augment.warp_sigma = 0.0;
        // No rotation, zoom or shift: the target is the face itself, not a resampled copy.
        expected.augment.rotate_deg = 0.0;
        expected.augment.zoom = 0.0;
        expected.augment.shift = 0.0;
        assert_eq!(parsed, expected);
    }

    #[test]
    fn unusable_settings_are_refused_by_their_key() {
        assert!(TrainConfig::default().validate().is_ok());
        for (text, key) in [
            ("lr = nan", "lr"),
            ("batch_size = 0", "batch_size"),
            ("[weights]\nl1 = -1.0", "weights.l1"),
            ("[augment]\nwarp_sigma = nan", "augment.warp_sigma"),
            ("[augment]\noccluders = 1.5", "augment.occluders"),
        ] {
            let c: TrainConfig = toml::from_str(text).unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn a_run_trained_with_occluders_pastes_with_the_visible_mask_by_default() {
        assert_eq!(TrainConfig::default().paste_mask(), MaskSource::Visible);
        // Runs from before occluders (their config.toml has no such key) trained without.
        let c: TrainConfig = toml::from_str("[augment]\noccluders = 0.0").unwrap();
        assert_eq!(c.paste_mask(), MaskSource::Union);
    }

    #[test]
    fn the_learning_rate_falls_only_over_the_last_stretch() {
        let mut c = TrainConfig::default();
        assert_eq!(c.lr_factor(0.99), 1.0, "off by default");
        c.lr_decay_last = 0.4;
        c.lr_decay_to = 0.1;
        assert_eq!(c.lr_factor(0.0), 1.0);
        assert_eq!(c.lr_factor(0.6), 1.0);
        assert!((c.lr_factor(0.8) - 0.55).abs() < 1e-12);
        assert!((c.lr_factor(1.0) - 0.1).abs() < 1e-12);
        assert!(
            (c.lr_factor(1.5) - 0.1).abs() < 1e-12,
            "a run past its end stays low"
        );
        let bad: TrainConfig = toml::from_str("lr_decay_last = 1.5").unwrap();
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("lr_decay_last"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<TrainConfig>("presett = \"lite\"").is_err());
        assert!(toml::from_str::<TrainConfig>("[weights]\nvgg = 1.0").is_err());
    }
}
