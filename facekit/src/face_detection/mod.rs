//! Finding faces: RetinaFace's prior generation, box/landmark decoding and NMS, plus the tract
//! runner that feeds frames to the network. (The deepfake detector, which scores whether a
//! found face is fake, is another network: the bundle's `detector` model.)

mod nms;
mod priors;
mod retinaface;
pub mod track;

pub use nms::{iou, nms};
pub use priors::{decode, Prior, PriorLayout};
pub use retinaface::{FaceDetectorConfig, Levels, RetinaFace};
pub use track::{Search, TrackPolicy, Tracked, Tracker};

use serde::{Deserialize, Serialize};

/// Where `make setup` puts RetinaFace-MobileNet0.25 (relative to the repository root): the
/// default face detector of every command.
pub const RETINAFACE_MODEL: &str = "models/retinaface-mnet025.onnx";

/// One detected face in frame pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// `[x0, y0, x1, y1]`.
    pub bbox: [f32; 4],
    /// Face probability after softmax.
    pub score: f32,
    /// Five landmarks in [`shared_proto::LANDMARK_NAMES`] order.
    pub landmarks: [[f32; 2]; 5],
}

/// The largest face (by box area): the visitor in front of the booth, the subject of a video.
pub fn largest(faces: Vec<Detection>) -> Option<Detection> {
    faces
        .into_iter()
        .max_by(|a, b| (a.width() * a.height()).total_cmp(&(b.width() * b.height())))
}

impl Detection {
    pub fn width(&self) -> f32 {
        self.bbox[2] - self.bbox[0]
    }
    pub fn height(&self) -> f32 {
        self.bbox[3] - self.bbox[1]
    }
}
