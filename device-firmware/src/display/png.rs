//! Frames to PNG files: only ever constructed when the operator set `save_frames = true`.

use std::path::PathBuf;

use image::RgbImage;

use super::{DisplayError, FrameSink};

pub struct PngFrames {
    dir: PathBuf,
    every: u64,
    shown: u64,
}

impl PngFrames {
    pub fn new(dir: PathBuf, every: u64) -> Result<Self, DisplayError> {
        std::fs::create_dir_all(&dir).map_err(|e| DisplayError::Io {
            path: dir.display().to_string(),
            detail: e.to_string(),
        })?;
        Ok(Self {
            dir,
            every: every.max(1),
            shown: 0,
        })
    }
}

impl FrameSink for PngFrames {
    fn show(&mut self, frame: &RgbImage) -> Result<(), DisplayError> {
        let n = self.shown;
        self.shown += 1;
        if !n.is_multiple_of(self.every) {
            return Ok(());
        }
        let path = self.dir.join(format!("frame_{n:06}.png"));
        frame.save(&path).map_err(|e| DisplayError::Io {
            path: path.display().to_string(),
            detail: e.to_string(),
        })
    }
}
