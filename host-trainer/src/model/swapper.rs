//! A tch generator as facekit's [`FaceSwapper`], so `convert`, `eval` and the fake detector's
//! training fakes paste swaps back with the booth's own code.

use facekit::swap::FaceSwapper;
use image::{GrayImage, Luma, RgbImage};

use super::net::Autoencoder;
use super::tensors::{from_tensor, to_tensor};
use crate::person::Person;

/// Draws faces with decoder `to` of `model`: a swap (the code moved by the identity shift
/// into `to`, when measured) or a reconstruction (the code as it is, for `to`'s own faces).
pub struct TchSwapper<'a> {
    model: &'a Autoencoder,
    to: Person,
    shifted: bool,
}

impl<'a> TchSwapper<'a> {
    /// The other person's faces drawn as `to`.
    pub fn swap_into(model: &'a Autoencoder, to: Person) -> Self {
        Self {
            model,
            to,
            shifted: true,
        }
    }

    /// `person`'s own faces through `person`'s decoder. Not a swap into `person`: the identity
    /// shift into a person assumes the code is the other person's, and moves one already in
    /// place as far again.
    pub fn reconstruct(model: &'a Autoencoder, person: Person) -> Self {
        Self {
            model,
            to: person,
            shifted: false,
        }
    }
}

impl FaceSwapper for TchSwapper<'_> {
    fn swap(&self, crop: &RgbImage) -> facekit::Result<(RgbImage, GrayImage)> {
        let x = to_tensor(std::slice::from_ref(crop), self.model.encoder.device());
        let (rgb, mask) = tch::no_grad(|| match self.shifted {
            true => self.model.swap(&x, self.to.index()),
            false => self.model.forward(&x, self.to.index()),
        });
        let face = from_tensor(&rgb.get(0));
        let m = from_tensor(&mask.get(0).repeat([3, 1, 1]));
        let mask = GrayImage::from_fn(m.width(), m.height(), |x, y| Luma([m.get_pixel(x, y).0[0]]));
        Ok((face, mask))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::Module;
    use tch::{nn, Device, Kind, Tensor};

    /// A reconstruction keeps the code where it is; a swap into the same person moves it by the
    /// shift (what the fake detector's "reconstructions" used to be).
    #[test]
    fn a_reconstruction_is_the_own_decoder_without_the_identity_shift() {
        tch::manual_seed(3);
        let spec = model_spec::swap::preset("lite").unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let mut model = Autoencoder::new(&vs.root(), &spec, 2);
        let code = tch::no_grad(|| {
            model
                .encoder
                .forward(&Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu)))
        });
        model.code_means = Some([code.zeros_like(), code.ones_like() * 3.0]);
        let crop = RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 4) as u8, 128])
        });
        let x = to_tensor(std::slice::from_ref(&crop), Device::Cpu);
        let (own, _) = tch::no_grad(|| model.forward(&x, 1));
        let own = from_tensor(&own.get(0));
        let (rec, _) = TchSwapper::reconstruct(&model, Person::B)
            .swap(&crop)
            .unwrap();
        let (moved, _) = TchSwapper::swap_into(&model, Person::B)
            .swap(&crop)
            .unwrap();
        assert_eq!(rec, own);
        let differ = rec
            .pixels()
            .zip(moved.pixels())
            .filter(|(a, b)| a != b)
            .count();
        assert!(differ > 64 * 64 / 2, "{differ} pixels differ");
    }
}
