//! A tch generator as facekit's [`FaceSwapper`], so `convert`, `eval` and the fake detector's
//! training fakes paste swaps back with the booth's own code.

use facekit::swap::FaceSwapper;
use image::{GrayImage, Luma, RgbImage};

use super::net::Autoencoder;
use super::tensors::{from_tensor, to_tensor};
use crate::person::Person;

/// Swaps into decoder `to` of `model` (with its identity shift, when measured).
pub struct TchSwapper<'a> {
    pub model: &'a Autoencoder,
    pub to: Person,
}

impl FaceSwapper for TchSwapper<'_> {
    fn swap(&self, crop: &RgbImage) -> facekit::Result<(RgbImage, GrayImage)> {
        let x = to_tensor(std::slice::from_ref(crop), self.model.encoder.device());
        let (rgb, mask) = tch::no_grad(|| self.model.swap(&x, self.to.index()));
        let face = from_tensor(&rgb.get(0));
        let m = from_tensor(&mask.get(0).repeat([3, 1, 1]));
        let mask = GrayImage::from_fn(m.width(), m.height(), |x, y| Luma([m.get_pixel(x, y).0[0]]));
        Ok((face, mask))
    }
}
