use serde::{Deserialize, Serialize};

/// Order of the five landmarks everywhere in doppel (RetinaFace's order): image-left eye,
/// image-right eye, nose tip, image-left mouth corner, image-right mouth corner.
pub const LANDMARK_NAMES: [&str; 5] = ["eye_l", "eye_r", "nose", "mouth_l", "mouth_r"];

/// Canonical five-point face template in unit coordinates of a tight square face box
/// (the widely used ArcFace 112×112 template divided by 112).
const UNIT_TEMPLATE: [[f32; 2]; 5] = [
    [0.341_916, 0.461_574],
    [0.656_534, 0.459_834],
    [0.500_225, 0.640_505],
    [0.370_976, 0.824_692],
    [0.631_517, 0.823_251],
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

/// How 8-bit pixels become network input: `(channel_value - mean) / std`, in `order`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    pub order: ChannelOrder,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalisation {
    /// Maps 0..=255 to 0..=1, what the swap networks are trained on.
    pub fn unit_rgb() -> Self {
        Self {
            order: ChannelOrder::Rgb,
            mean: [0.0; 3],
            std: [255.0; 3],
        }
    }

    /// RetinaFace (Pytorch_Retinaface weights): BGR with the Caffe means, unscaled.
    pub fn retinaface_bgr() -> Self {
        Self {
            order: ChannelOrder::Bgr,
            mean: [104.0, 117.0, 127.0],
            std: [1.0; 3],
        }
    }
}

/// A crop spec no pipeline can make (which value, and why).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidCrop(pub String);

/// Geometry and normalisation of an aligned face crop. Written once by the trainer and carried
/// in the bundle so the device crops exactly as the training data was cropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceCropSpec {
    /// Side of the square crop in pixels (64 in the classic model, 128 for hq).
    pub size: u32,
    /// Extra context around the tight face box, as a fraction of the crop side on each edge.
    pub margin: f32,
    /// Landmark template in unit coordinates of the tight face box.
    pub template: [[f32; 2]; 5],
    pub normalisation: Normalisation,
}

impl Default for FaceCropSpec {
    fn default() -> Self {
        Self::new(64, 0.125)
    }
}

impl FaceCropSpec {
    /// Crop sides a bundle may ask for: a side outside this range is a broken or hostile
    /// manifest (a 10⁶-px side would allocate terabytes per frame).
    pub const SIZES: std::ops::RangeInclusive<u32> = 16..=1024;

    /// Whether the spec describes a crop the pipeline can make: a side in [`Self::SIZES`], a
    /// margin in 0..0.45, a finite template inside the face box, finite normalisation with a
    /// non-zero spread. `Err` says which value is wrong.
    pub fn validate(&self) -> Result<(), InvalidCrop> {
        let bad = |what: String| Err(InvalidCrop(what));
        if !Self::SIZES.contains(&self.size) {
            return bad(format!("crop size {} outside {:?}", self.size, Self::SIZES));
        }
        if !(0.0..0.45).contains(&self.margin) {
            return bad(format!("crop margin {} outside 0..0.45", self.margin));
        }
        if !self
            .template
            .iter()
            .flatten()
            .all(|v| v.is_finite() && (0.0..=1.0).contains(v))
        {
            return bad("landmark template outside the unit face box".into());
        }
        let n = &self.normalisation;
        if !n.mean.iter().all(|v| v.is_finite())
            || !n.std.iter().all(|v| v.is_finite() && *v != 0.0)
        {
            return bad("normalisation mean/std not finite or std zero".into());
        }
        Ok(())
    }

    pub fn new(size: u32, margin: f32) -> Self {
        Self {
            size,
            margin,
            template: UNIT_TEMPLATE,
            normalisation: Normalisation::unit_rgb(),
        }
    }

    /// Where the five landmarks land in the crop, in pixels.
    pub fn template_px(&self) -> [[f32; 2]; 5] {
        let s = self.size as f32;
        let inner = 1.0 - 2.0 * self.margin;
        self.template
            .map(|[x, y]| [s * (self.margin + inner * x), s * (self.margin + inner * y)])
    }
}

/// Ellipse covering the face (brows to chin, cheek to cheek) for landmarks in crop pixels:
/// centre x, y and semi-axes x, y. Where self-blends put their mask, the forensic cues look, and
/// what a fake detector's input fill hides, so it lives next to the crop template.
pub fn face_ellipse(landmarks: &[[f32; 2]; 5]) -> (f32, f32, f32, f32) {
    let eye = [
        (landmarks[0][0] + landmarks[1][0]) / 2.0,
        (landmarks[0][1] + landmarks[1][1]) / 2.0,
    ];
    let mouth = [
        (landmarks[3][0] + landmarks[4][0]) / 2.0,
        (landmarks[3][1] + landmarks[4][1]) / 2.0,
    ];
    let iod = (landmarks[1][0] - landmarks[0][0]).hypot(landmarks[1][1] - landmarks[0][1]);
    let eye_mouth = (mouth[0] - eye[0]).hypot(mouth[1] - eye[1]);
    let (cx, cy) = (
        (eye[0] + mouth[0]) / 2.0,
        (eye[1] + mouth[1]) / 2.0 - 0.1 * eye_mouth,
    );
    (cx, cy, 0.95 * iod, 1.35 * eye_mouth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode, encode, ProtoError, FORMAT_VERSION};

    #[test]
    fn crop_spec_round_trips_through_postcard() {
        let spec = FaceCropSpec::new(128, 0.2);
        let bytes = encode("face-crop-spec", &spec).unwrap();
        let back: FaceCropSpec = decode("face-crop-spec", &bytes).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn template_in_pixels_respects_size_and_margin() {
        let tight = FaceCropSpec::new(112, 0.0).template_px();
        assert!((tight[0][0] - 38.2946).abs() < 1e-3 && (tight[0][1] - 51.6963).abs() < 1e-3);
        // A margin pulls every landmark towards the centre.
        let loose = FaceCropSpec::new(112, 0.25).template_px();
        for (t, l) in tight.iter().zip(loose.iter()) {
            assert!((l[0] - 56.0).abs() < (t[0] - 56.0).abs());
        }
    }

    #[test]
    fn wrong_kind_and_version_are_refused() {
        let bytes = encode("face-crop-spec", &FaceCropSpec::default()).unwrap();
        assert!(matches!(
            decode::<FaceCropSpec>("telemetry", &bytes),
            Err(ProtoError::WrongKind { .. })
        ));
        let mut future = bytes.clone();
        // The version is the postcard varint right after the 4 magic bytes.
        future[4] = (FORMAT_VERSION + 1) as u8;
        assert!(matches!(
            decode::<FaceCropSpec>("face-crop-spec", &future),
            Err(ProtoError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            decode::<FaceCropSpec>("face-crop-spec", b"garbage"),
            Err(ProtoError::BadMagic)
        ));
        assert!(decode::<FaceCropSpec>("face-crop-spec", &bytes[..bytes.len() - 3]).is_err());
    }
}
