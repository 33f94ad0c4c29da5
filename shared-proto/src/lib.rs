//! Types that cross the host/device boundary, encoded with `postcard` inside a versioned
//! envelope so a device can refuse a bundle or message written by an incompatible host.
//!
//! Every type here is the single source of truth for its concept: the face crop geometry the
//! trainer learned on is the one the device crops with, because both read it from here (and,
//! later, from the bundle manifest that embeds it).

pub mod archive;
mod blur_check;
pub mod bundle;
mod camera_check;
mod crop;
mod envelope;
pub mod serving;

pub use blur_check::BlurCheck;
pub use camera_check::{threshold_at, CameraCheck};
pub use crop::{
    face_ellipse, ChannelOrder, FaceCropSpec, InvalidCrop, Normalisation, LANDMARK_NAMES,
};
pub use envelope::{decode, encode, Envelope, ProtoError, FORMAT_VERSION, MAGIC};
