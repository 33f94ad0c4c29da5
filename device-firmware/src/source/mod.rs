//! Where frames come from: a V4L2 camera (feature `camera`), a video file or an image folder,
//! all behind `facekit::FrameSource`; a lost camera is reopened with backoff.

#[cfg(feature = "camera")]
pub mod camera;
pub mod formats;
pub mod reconnect;

use std::path::Path;

use facekit::FrameSource;

use crate::config::SourceConfig;

/// A file source that starts over at the end (a demo booth without a camera).
pub struct Looped {
    path: std::path::PathBuf,
    inner: Box<dyn FrameSource + Send>,
}

impl FrameSource for Looped {
    fn size(&self) -> (u32, u32) {
        self.inner.size()
    }

    fn next_frame(&mut self) -> facekit::Result<Option<image::RgbImage>> {
        if let Some(f) = self.inner.next_frame()? {
            return Ok(Some(f));
        }
        self.inner = facekit::open_source(&self.path)?;
        self.inner.next_frame()
    }
}

pub fn is_camera(input: &Path) -> bool {
    input.starts_with("/dev/")
}

/// Opens the configured source once (cameras are wrapped by [`reconnect::Reconnecting`]).
pub fn open(cfg: &SourceConfig) -> facekit::Result<Box<dyn FrameSource + Send>> {
    if is_camera(&cfg.input) {
        #[cfg(feature = "camera")]
        return Ok(Box::new(camera::Camera::open(cfg)?));
        #[cfg(not(feature = "camera"))]
        return Err(facekit::FacekitError::Inference(
            "this build has no camera support (feature `camera`)".into(),
        ));
    }
    let inner = facekit::open_source(&cfg.input)?;
    if cfg.looped {
        Ok(Box::new(Looped {
            path: cfg.input.clone(),
            inner,
        }))
    } else {
        Ok(inner)
    }
}
