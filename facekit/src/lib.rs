//! The face pipeline that host and device share, so a crop seen in training is produced by
//! exactly the code that produces it live on the booth.
//!
//! Layers, bottom up: [`video`] yields RGB frames; [`face_detection`] runs RetinaFace and
//! decodes its priors into [`Detection`]s; [`align`] maps the five landmarks onto the crop template of
//! [`shared_proto::FaceCropSpec`] and warps the crop; [`pose`] estimates head pose from the
//! landmarks; [`draw`] is the `embedded-graphics` canvas every overlay and contact sheet uses.

pub mod align;
pub mod blend;
pub mod draw;
pub mod face_detection;
pub mod fake_detection;
pub mod forensics;
pub mod identity;
pub mod onnx_model;
pub mod pose;
pub mod quality;
pub mod resize;
pub mod smooth;
pub mod swap;
pub mod tract_ops;
pub mod video;
pub mod visitor;

pub use align::{align_face, AlignedFace, Similarity};

/// Nearest u8, saturating (NaN → 0). `f32::round` is a libm call on baseline x86-64 and was the
/// largest single cost of a self-blend; for values ≥ 0, adding ½ and truncating rounds the same.
#[inline]
pub(crate) fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 255.0) + 0.5) as u8
}
pub use face_detection::{Detection, FaceDetectorConfig, RetinaFace, RETINAFACE_MODEL};
pub use fake_detection::{ExaminedFace, OnnxFakeDetector};
pub use onnx_model::OnnxModel;
pub use pose::{estimate_pose, Pose};
pub use resize::{downscale, resize};
pub use video::{
    frame_count_hint, frame_rate, open_source, FrameSource, ImageFolder, VideoReader, VideoWriter,
};

/// Errors of the face library. Each names the file involved and what the user can do.
#[derive(Debug, thiserror::Error)]
pub enum FacekitError {
    #[error("{path}: file not found{hint}")]
    NotFound { path: String, hint: &'static str },
    #[error("{path}: cannot be decoded as video ({detail}); check it plays with `ffprobe {path}` or re-encode it to H.264 MP4")]
    UnreadableVideo { path: String, detail: String },
    #[error("camera {path}: {detail}; check it is plugged in (`v4l2-ctl --list-devices`) and readable by the booth's user (group video)")]
    Camera { path: String, detail: String },
    #[error("ffmpeg/ffprobe not found on PATH; install it (Debian: `apt-get install ffmpeg`, or run `make setup`)")]
    FfmpegMissing,
    #[error(
        "{path}: not a usable ONNX model ({detail}); run `make setup` to restore the detector"
    )]
    BadModel { path: String, detail: String },
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = FacekitError> = std::result::Result<T, E>;
