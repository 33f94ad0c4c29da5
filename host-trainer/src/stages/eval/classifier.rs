//! The forced-choice / open-set A-vs-B identity classifier `eval` uses as its own secondary
//! judge: LBPH nearest neighbour over real faces of both people, looking at the face only.

use image::RgbImage;
use tch::Device;

use crate::artefacts::dataset::FaceSet;
use crate::model::losses::face_prior;
use crate::model::tensors::to_vec;
use facekit::identity::Lbph;

/// Nearest-neighbour over LBPH descriptors of real faces of both people.
/// It looks only at the face: pixels outside the template's face ellipse are blanked and colours
/// are grey-world normalised, so the two scenes' backgrounds and lighting cannot decide.
pub struct Classifier {
    refs: [Vec<Lbph>; 2],
    face_mask: Vec<bool>,
    /// Per person: how far their own unseen real faces lie from their training faces (the
    /// farthest held-out face's nearest-neighbour distance). Farther than that is "neither".
    radius: [f32; 2],
}

impl Classifier {
    pub fn new(sets: &[FaceSet; 2]) -> Self {
        let crop = &sets[0].crop;
        let prior = face_prior(&crop.template_px(), crop.size as i64, Device::Cpu);
        let face_mask: Vec<bool> = to_vec(&prior).into_iter().map(|v| v > 0.5).collect();
        let mut c = Self {
            refs: [Vec::new(), Vec::new()],
            face_mask,
            radius: [f32::INFINITY; 2],
        };
        c.refs = [0, 1].map(|k| sets[k].train.iter().map(|f| c.describe(f)).collect());
        // Neighbouring training frames are near-copies, so their spread says nothing; the
        // spread of a person's unseen frames does: the farthest held-out real face.
        c.radius = [0, 1].map(|k| {
            sets[k]
                .unseen()
                .iter()
                .map(|f| c.nearest(f)[k])
                .fold(0.0f32, f32::max)
        });
        c
    }

    fn describe(&self, face: &RgbImage) -> Lbph {
        let (mut sum, mut count) = ([0f32; 3], 0f32);
        for (p, _) in face
            .pixels()
            .zip(&self.face_mask)
            .filter(|(_, &inside)| inside)
        {
            for (acc, &v) in sum.iter_mut().zip(&p.0) {
                *acc += v as f32;
            }
            count += 1.0;
        }
        // Grey world: every channel's mean over the face becomes 128.
        let scale = sum.map(|s| 128.0 * count.max(1.0) / s.max(1.0));
        let mut normalised = face.clone();
        for (p, &inside) in normalised.pixels_mut().zip(&self.face_mask) {
            p.0 = if inside {
                [0, 1, 2].map(|c| (p.0[c] as f32 * scale[c]).clamp(0.0, 255.0) as u8)
            } else {
                [0; 3]
            };
        }
        Lbph::of(&normalised)
    }

    /// Forced choice: the person whose nearest real face is nearer.
    pub fn predict(&self, face: &RgbImage) -> usize {
        let [a, b] = self.nearest(face);
        usize::from(b < a)
    }

    /// Open set: that person only if the face is also as close to their real faces as their own
    /// unseen faces are; `None` for a face like neither (a featureless blob, say).
    pub fn predict_open(&self, face: &RgbImage) -> Option<usize> {
        let d = self.nearest(face);
        let k = usize::from(d[1] < d[0]);
        (d[k] <= self.radius[k]).then_some(k)
    }

    fn nearest(&self, face: &RgbImage) -> [f32; 2] {
        let d = self.describe(face);
        [0, 1].map(|k| {
            self.refs[k]
                .iter()
                .map(|r| r.distance(&d))
                .fold(f32::INFINITY, f32::min)
        })
    }
}
