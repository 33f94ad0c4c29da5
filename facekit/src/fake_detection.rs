//! The bundle's fake detector in tract: a face in a frame in, the network's fake probability and
//! the forensic cues out. The booth's detect mode, `host-trainer detect` and the detect bench
//! all score faces through [`OnnxFakeDetector`], so the crop, its normalisation and the check
//! that the network answered with a number are written once.

use image::RgbImage;
use shared_proto::FaceCropSpec;

use crate::align::{align_face, AlignedFace};
use crate::forensics::{cues, Cues};
use crate::swap::crop_to_input;
use crate::{FacekitError, OnnxModel, Result};

/// The fake detector's network and the crop it reads.
pub struct OnnxFakeDetector {
    model: OnnxModel,
    crop: FaceCropSpec,
}

/// One face as the detector saw it.
pub struct ExaminedFace {
    /// The network's fake probability, finite.
    pub network: f32,
    pub cues: Cues,
    /// The face aligned to the detector's crop (the cues and a review draw on it).
    pub aligned: AlignedFace,
}

impl OnnxFakeDetector {
    pub fn new(model: OnnxModel, crop: FaceCropSpec) -> Self {
        Self { model, crop }
    }

    pub fn crop(&self) -> &FaceCropSpec {
        &self.crop
    }

    /// The network's fake probability for `crop`, a face already aligned to [`Self::crop`].
    pub fn score(&self, crop: &RgbImage) -> Result<f32> {
        let out = self
            .model
            .run(crop_to_input(crop, &self.crop, "the fake detector")?)?;
        match out.first().and_then(|v| v.first()) {
            Some(p) if p.is_finite() => Ok(*p),
            Some(p) => Err(FacekitError::Inference(format!(
                "fake detector returned {p}, not a probability"
            ))),
            None => Err(FacekitError::Inference(
                "fake detector returned no output".into(),
            )),
        }
    }

    /// The face whose five landmarks in `frame` are `landmarks`: aligned, scored and its cues
    /// measured. `Ok(None)` when the landmarks admit no alignment (degenerate geometry).
    pub fn examine(
        &self,
        frame: &RgbImage,
        landmarks: &[[f32; 2]; 5],
    ) -> Result<Option<ExaminedFace>> {
        let Some(aligned) = align_face(frame, landmarks, &self.crop) else {
            return Ok(None);
        };
        let network = self.score(&aligned.image)?;
        Ok(Some(ExaminedFace {
            network,
            cues: cues(&aligned.image, &aligned.landmarks),
            aligned,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swap::to_input;
    use model_spec::onnx::{self, attr_int, attr_ints, GraphBuilder};

    /// `fake_probability = sigmoid(mean(input)) · scale`: a tiny real graph run by tract
    /// (tract's sigmoid clamps its input, so a NaN has to come after it).
    fn mean_detector(size: u32, scale: f32) -> OnnxModel {
        let mut g = GraphBuilder::default();
        g.f32_const("scale", &[], &[scale]);
        g.node("Flatten", &["face"], "flat", vec![attr_int("axis", 1)]);
        let mean = vec![attr_ints("axes", vec![1]), attr_int("keepdims", 1)];
        g.node("ReduceMean", &["flat"], "mean", mean);
        g.node("Sigmoid", &["mean"], "p", vec![]);
        g.node("Mul", &["p", "scale"], "fake_probability", vec![]);
        let s = size as i64;
        let model = g.finish(
            "mean_detector",
            "test",
            vec![onnx::value_info("face", &[-1, 3, s, s], "")],
            vec![onnx::value_info("fake_probability", &[-1, 1], "")],
        );
        OnnxModel::from_bytes("mean_detector", &onnx::to_bytes(&model), 1, true).unwrap()
    }

    fn detector(scale: f32) -> OnnxFakeDetector {
        let crop = FaceCropSpec::default();
        OnnxFakeDetector::new(mean_detector(crop.size, scale), crop)
    }

    /// A frame with the face template's landmarks scaled 2× about the origin: alignable.
    fn frame_and_landmarks(crop: &FaceCropSpec) -> (RgbImage, [[f32; 2]; 5]) {
        let frame = RgbImage::from_fn(2 * crop.size, 2 * crop.size, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        (frame, crop.template_px().map(|[x, y]| [2.0 * x, 2.0 * y]))
    }

    #[test]
    fn scores_the_crop_normalised_as_its_spec_says() {
        let d = detector(1.0);
        let s = d.crop().size;
        let crop = RgbImage::from_pixel(s, s, image::Rgb([200, 100, 50]));
        let input = to_input(&crop, &d.crop().normalisation);
        let mean = input.iter().sum::<f32>() / input.len() as f32;
        let expected = 1.0 / (1.0 + (-mean).exp());
        let got = d.score(&crop).unwrap();
        // tract's sigmoid is an approximation: 1.5e-5 off on aarch64. A wrong scale or
        // offset moves the mean, and so the score, by far more.
        assert!((got - expected).abs() < 1e-4, "{got} vs {expected}");
    }

    #[test]
    fn a_crop_of_the_wrong_size_is_an_error_not_a_score() {
        let d = detector(1.0);
        let s = d.crop().size;
        let e = d.score(&RgbImage::new(s / 2, s / 2)).unwrap_err();
        assert!(e.to_string().contains("takes"), "{e}");
    }

    #[test]
    fn a_network_that_answers_nan_is_an_error() {
        let d = detector(f32::NAN);
        let s = d.crop().size;
        let e = d.score(&RgbImage::new(s, s)).unwrap_err();
        assert!(e.to_string().contains("not a probability"), "{e}");
        let (frame, landmarks) = frame_and_landmarks(d.crop());
        assert!(d.examine(&frame, &landmarks).is_err());
    }

    #[test]
    fn examines_an_alignable_face_and_passes_over_a_degenerate_one() {
        let d = detector(1.0);
        let (frame, landmarks) = frame_and_landmarks(d.crop());
        let seen = d
            .examine(&frame, &landmarks)
            .unwrap()
            .expect("an alignable face");
        let s = d.crop().size;
        assert_eq!(seen.aligned.image.dimensions(), (s, s));
        assert_eq!(seen.network, d.score(&seen.aligned.image).unwrap());
        assert_eq!(
            seen.cues,
            cues(&seen.aligned.image, &seen.aligned.landmarks)
        );
        // All five landmarks on one point: no similarity maps them onto the template.
        assert!(d.examine(&frame, &[[10.0, 10.0]; 5]).unwrap().is_none());
    }
}
