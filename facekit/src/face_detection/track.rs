//! Following one face from frame to frame, MediaPipe's pattern: search the whole frame only when
//! there is no face yet or every `full_every` frames; in between, run RetinaFace again on a small
//! square crop around the face's last box (128², about a fifth of a 320×240 search). A face the
//! crop no longer holds is searched for in the whole frame at once, and if it is not there it is
//! dropped on that frame: nothing stale is painted over a hand that covers it.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::{iou, largest, Detection, Levels, RetinaFace};
use crate::align::{warp_to_crop, Similarity};
use crate::Result;

/// How a tracker looks for the face.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackPolicy {
    /// Search the whole frame at least every this many frames (a new, nearer visitor is found
    /// within that many frames).
    pub full_every: u32,
    /// Side (pixels) of the square crop the face is looked for in between; a multiple of 32
    /// keeps RetinaFace's feature maps whole. 0: no crop search, the last landmarks are held
    /// until the next full search (the old `detect_every` behaviour).
    pub crop_size: u32,
    /// The crop's side as a multiple of the last box's longer side: room for the face to move.
    /// 1.25 puts a face at ~100 px in a 128² crop, where RetinaFace's landmarks agree with the
    /// whole-frame search best (mean error in inter-ocular distances on cap12 / franck: 0.046 /
    /// 0.042 at 1.25, 0.073 / 0.049 at 1.5, 0.111 / 0.053 at 2: smaller faces, noisier marks).
    pub crop_scale: f32,
    /// Width frames are scaled to for the full search (0 = full resolution).
    pub detect_width: u32,
}

impl Default for TrackPolicy {
    fn default() -> Self {
        Self {
            full_every: 30,
            crop_size: 128,
            crop_scale: 1.25,
            detect_width: 320,
        }
    }
}

/// Which search produced a frame's face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Search {
    /// The whole frame (scaled to `detect_width`).
    Full,
    /// The crop around the last box.
    Crop,
    /// No search: the last landmarks were held (`crop_size = 0`).
    Held,
    /// The crop missed, then the whole frame was searched.
    CropThenFull,
}

/// Boxes overlapping at least this much are one face: the whole-frame search run a frame or
/// two behind the track (faces move little in that time) found the face it follows.
const SAME_FACE_IOU: f32 = 0.3;

/// One frame's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    pub face: Option<Detection>,
    pub search: Search,
    /// The face is another than the one last followed: a whole-frame search found a nearer
    /// visitor, or the followed one went and a face came back elsewhere. A face that comes back
    /// where the last one was (a hand passed, a turn away) is the same visitor; one found
    /// elsewhere after frames without a face is someone else, however short the gap (a visitor
    /// stepping in as another leaves must not be swapped with the last one's identity).
    pub new_face: bool,
}

/// One face followed across frames.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub policy: TrackPolicy,
    last: Option<Detection>,
    /// The box of the last face followed, kept through frames without one: where a face that
    /// comes back must be to be the same visitor.
    last_seen: Option<[f32; 4]>,
    since_full: u32,
    /// [`Tracker::adopt_full`] moved the track to another face: the next frame says so.
    adopted_other: bool,
}

impl Tracker {
    pub fn new(policy: TrackPolicy) -> Self {
        Self {
            policy,
            last: None,
            last_seen: None,
            since_full: 0,
            adopted_other: false,
        }
    }

    /// Forgets the face: the next frame is searched in full, and its face is nobody's new one.
    pub fn reset(&mut self) {
        self.last = None;
        self.last_seen = None;
    }

    /// Finds the face in `frame`. An error (the detector failed) also forgets the face.
    pub fn next(&mut self, detector: &RetinaFace, frame: &RgbImage) -> Result<Tracked> {
        let (face, search) = match self.search(detector, frame) {
            Ok(found) => found,
            Err(e) => {
                self.last = None;
                return Err(e);
            }
        };
        let moved = matches!((self.last_seen, &face), (Some(b), Some(f)) if iou(&b, &f.bbox) < SAME_FACE_IOU);
        if let Some(f) = &face {
            self.last_seen = Some(f.bbox);
        }
        self.last = face.clone();
        Ok(Tracked {
            face,
            search,
            new_face: std::mem::take(&mut self.adopted_other) || moved,
        })
    }

    /// Like [`Tracker::next`], but the periodic whole-frame search does not hold up the track:
    /// when it is due while a face is followed, this frame gets the crop search and the returned
    /// flag says the whole-frame search of this frame should run elsewhere (on another core),
    /// its result handed back through [`Tracker::adopt_full`]. A face the crop loses is still
    /// searched for in the whole frame at once, as in `next`.
    pub fn next_deferring_full(
        &mut self,
        detector: &RetinaFace,
        frame: &RgbImage,
    ) -> Result<(Tracked, bool)> {
        let deferred = self.last.is_some() && self.policy.crop_size > 0 && self.full_due();
        if deferred {
            self.since_full = 0;
        }
        let tracked = self.next(detector, frame)?;
        // A crop that lost the face already searched the whole frame.
        let run_full = deferred && tracked.search == Search::Crop;
        Ok((tracked, run_full))
    }

    /// Takes in a whole-frame search run beside the track (see
    /// [`Tracker::next_deferring_full`]) on a frame a little older than the last one searched.
    /// Returns true when the track moved to its face: another face than the one followed (a
    /// nearer visitor), or a face when none is followed. When it found the followed face again,
    /// or nothing, the crop's fresher result stands.
    pub fn adopt_full(&mut self, full: Option<Detection>) -> bool {
        let Some(found) = full else {
            return false;
        };
        match &self.last {
            Some(last) if iou(&last.bbox, &found.bbox) >= SAME_FACE_IOU => false,
            _ => {
                self.adopted_other |= self
                    .last_seen
                    .is_some_and(|b| iou(&b, &found.bbox) < SAME_FACE_IOU);
                self.last_seen = Some(found.bbox);
                self.last = Some(found);
                true
            }
        }
    }

    fn full_due(&self) -> bool {
        self.since_full + 1 >= self.policy.full_every.max(1)
    }

    /// The face and how it was found.
    fn search(
        &mut self,
        detector: &RetinaFace,
        frame: &RgbImage,
    ) -> Result<(Option<Detection>, Search)> {
        let full_due = self.full_due();
        let last = match &self.last {
            Some(last) if !full_due => last.clone(),
            _ => return Ok((self.full(detector, frame)?, Search::Full)),
        };
        self.since_full += 1;
        if self.policy.crop_size == 0 {
            return Ok((Some(last), Search::Held));
        }
        if let Some(face) = find_in_crop(detector, frame, &last, &self.policy)? {
            return Ok((Some(face), Search::Crop));
        }
        Ok((self.full(detector, frame)?, Search::CropThenFull))
    }

    fn full(&mut self, detector: &RetinaFace, frame: &RgbImage) -> Result<Option<Detection>> {
        self.since_full = 0;
        detect_largest(detector, frame, self.policy.detect_width)
    }
}

/// The largest face of `frame`, searched at `width` pixels wide (0 or wider than the frame: at
/// full resolution), in frame pixels.
pub fn detect_largest(
    detector: &RetinaFace,
    frame: &RgbImage,
    width: u32,
) -> Result<Option<Detection>> {
    if width == 0 || width >= frame.width() {
        return Ok(largest(detector.detect(frame)?));
    }
    let small = crate::downscale(frame, width);
    let s = frame.width() as f32 / width as f32;
    Ok(largest(detector.detect(&small)?).map(|d| map_detection(&d, |[x, y]| [x * s, y * s])))
}

/// The face in a square crop centred on `last`'s box, mapped back to frame pixels: of the faces
/// there, the one overlapping `last` most (the largest if none overlaps).
pub fn find_in_crop(
    detector: &RetinaFace,
    frame: &RgbImage,
    last: &Detection,
    policy: &TrackPolicy,
) -> Result<Option<Detection>> {
    let to_crop = crop_around(last, policy.crop_size, policy.crop_scale);
    let (crop, _) = warp_to_crop(frame, &to_crop, policy.crop_size);
    let from_crop = to_crop.inverse();
    // The face fills the crop (~1/crop_scale of it), far above the stride-8 level's 16–32 px.
    let faces: Vec<Detection> = detector
        .detect_levels(&crop, Levels::Coarse)?
        .iter()
        .map(|d| map_detection(d, |p| from_crop.apply(p)))
        .collect();
    let best = faces
        .iter()
        .map(|d| (iou(&d.bbox, &last.bbox), d))
        .filter(|(o, _)| *o > 0.0)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, d)| d.clone());
    Ok(best.or_else(|| largest(faces)))
}

/// Frame → crop for a `size`² crop of side `scale` × the box's longer side, centred on the box.
pub fn crop_around(face: &Detection, size: u32, scale: f32) -> Similarity {
    let [x0, y0, x1, y1] = face.bbox;
    let side = ((x1 - x0).max(y1 - y0) * scale).max(1.0);
    let s = size as f32 / side;
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    Similarity {
        a: s,
        b: 0.0,
        tx: -(cx - side / 2.0) * s,
        ty: -(cy - side / 2.0) * s,
    }
}

/// `d` with its box corners and landmarks moved by `f` (an axis-aligned scale and shift).
fn map_detection(d: &Detection, f: impl Fn([f32; 2]) -> [f32; 2]) -> Detection {
    let [x0, y0] = f([d.bbox[0], d.bbox[1]]);
    let [x1, y1] = f([d.bbox[2], d.bbox[3]]);
    Detection {
        bbox: [x0, y0, x1, y1],
        score: d.score,
        landmarks: d.landmarks.map(&f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crop_is_centred_on_the_box_and_twice_its_longer_side() {
        let face = Detection {
            bbox: [100.0, 50.0, 160.0, 130.0],
            score: 0.9,
            landmarks: [[0.0; 2]; 5],
        };
        let t = crop_around(&face, 128, 2.0);
        let centre = t.apply([130.0, 90.0]);
        assert!((centre[0] - 64.0).abs() < 1e-4 && (centre[1] - 64.0).abs() < 1e-4);
        // Side 160 frame px -> 128 crop px.
        let edge = t.apply([130.0 - 80.0, 90.0 - 80.0]);
        assert!(edge[0].abs() < 1e-4 && edge[1].abs() < 1e-4, "{edge:?}");
    }
}
