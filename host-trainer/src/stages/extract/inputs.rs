//! What `--input` accepts: video files, folders of images, and glob patterns of either.

use std::path::{Path, PathBuf};

use facekit::{FacekitError, FrameSource, VideoReader};
use image::RgbImage;

use crate::error::{AtPath, Error, Result};

const IMAGE_EXTS: [&str; 3] = ["png", "jpg", "jpeg"];

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Video(PathBuf),
    Image(PathBuf),
}

impl Input {
    pub fn display_name(&self) -> String {
        match self {
            Input::Video(p) | Input::Image(p) => p.display().to_string(),
        }
    }

    pub fn frame_count_hint(&self) -> Option<u64> {
        match self {
            Input::Video(p) => facekit::frame_count_hint(p),
            Input::Image(_) => Some(1),
        }
    }

    pub fn open(&self) -> facekit::Result<Box<dyn FrameSource>> {
        match self {
            Input::Video(p) => Ok(Box::new(VideoReader::open(p)?)),
            Input::Image(p) => Ok(Box::new(StillImage::open(p)?)),
        }
    }
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Expands the command-line inputs in order; folders give their images sorted by name.
pub fn expand(args: &[String]) -> Result<Vec<Input>> {
    let mut out = Vec::new();
    for arg in args {
        let paths: Vec<PathBuf> = if arg.contains(['*', '?', '[']) {
            let matched: Vec<PathBuf> = glob::glob(arg)
                .map_err(|e| Error::BadPattern {
                    pattern: arg.clone(),
                    problem: e.to_string(),
                })?
                .filter_map(std::result::Result::ok)
                .collect();
            if matched.is_empty() {
                return Err(Error::BadPattern {
                    pattern: arg.clone(),
                    problem: "pattern matches no file".into(),
                });
            }
            matched
        } else {
            vec![PathBuf::from(arg)]
        };
        for p in paths {
            if p.is_dir() {
                let mut images: Vec<PathBuf> = std::fs::read_dir(&p)
                    .at("read", &p)?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| is_image(p))
                    .collect();
                if images.is_empty() {
                    return Err(Error::NoImages(p));
                }
                images.sort();
                out.extend(images.into_iter().map(Input::Image));
            } else if !p.exists() {
                return Err(Error::NoSuchInput(p));
            } else if is_image(&p) {
                out.push(Input::Image(p));
            } else {
                out.push(Input::Video(p));
            }
        }
    }
    Ok(out)
}

/// A single photo as a one-frame source.
struct StillImage {
    image: Option<RgbImage>,
    size: (u32, u32),
}

impl StillImage {
    fn open(path: &Path) -> facekit::Result<Self> {
        let image = image::open(path)
            .map_err(|e| FacekitError::UnreadableVideo {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?
            .into_rgb8();
        Ok(Self {
            size: image.dimensions(),
            image: Some(image),
        })
    }
}

impl FrameSource for StillImage {
    fn size(&self) -> (u32, u32) {
        self.size
    }
    fn next_frame(&mut self) -> facekit::Result<Option<RgbImage>> {
        Ok(self.image.take())
    }
}
