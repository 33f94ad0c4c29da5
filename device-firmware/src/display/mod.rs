//! Where finished frames go. One small trait, [`FrameSink`], that every backend implements:
//! the Linux framebuffer, an SPI LCD (feature `lcd`), the console's live view
//! (`console::ConsoleSink`) and PNG files when the operator allows saving frames.

pub mod framebuffer;
#[cfg(feature = "lcd")]
pub mod lcd;
pub mod png;

use image::RgbImage;

#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    #[error("{path}: {detail}")]
    Io { path: String, detail: String },
    #[error("{0}")]
    Device(String),
}

pub trait FrameSink: Send {
    fn show(&mut self, frame: &RgbImage) -> Result<(), DisplayError>;
}

/// `frame` scaled to fit `width`×`height` with its aspect kept, centred on black.
pub fn fit(frame: &RgbImage, width: u32, height: u32) -> RgbImage {
    if frame.dimensions() == (width, height) {
        return frame.clone();
    }
    let s = (width as f32 / frame.width() as f32).min(height as f32 / frame.height() as f32);
    let (w, h) = (
        ((frame.width() as f32 * s).round() as u32).clamp(1, width),
        ((frame.height() as f32 * s).round() as u32).clamp(1, height),
    );
    let scaled = facekit::resize(frame, w, h);
    let mut out = RgbImage::new(width, height);
    image::imageops::replace(
        &mut out,
        &scaled,
        ((width - w) / 2) as i64,
        ((height - h) / 2) as i64,
    );
    out
}
