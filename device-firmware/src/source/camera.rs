//! V4L2 capture through the `v4l` crate: negotiate MJPEG or YUYV at the configured size and
//! rate, stream from mmap buffers, decode to RGB.

use facekit::{FacekitError, FrameSource};
use image::RgbImage;
use v4l::buffer::Type;
use v4l::io::traits::CaptureStream;
use v4l::prelude::*;
use v4l::video::Capture;
use v4l::FourCC;

use super::formats::{decode, negotiate, PixelFormat};
use crate::config::SourceConfig;

pub struct Camera {
    // The stream borrows the device for its lifetime; both live here, stream first (dropped first).
    stream: MmapStream<'static>,
    _device: Box<Device>,
    format: PixelFormat,
    width: u32,
    height: u32,
}

fn err(path: &str, e: impl std::fmt::Display) -> FacekitError {
    FacekitError::UnreadableVideo {
        path: path.to_owned(),
        detail: e.to_string(),
    }
}

impl Camera {
    pub fn open(cfg: &SourceConfig) -> facekit::Result<Self> {
        let path = cfg.input.display().to_string();
        let device = Box::new(Device::with_path(&cfg.input).map_err(|e| err(&path, e))?);
        let offered: Vec<[u8; 4]> = device
            .enum_formats()
            .map_err(|e| err(&path, e))?
            .iter()
            .map(|d| d.fourcc.repr)
            .collect();
        let format = negotiate(&offered, cfg.format).map_err(|e| err(&path, e))?;
        let mut fmt = device.format().map_err(|e| err(&path, e))?;
        fmt.width = cfg.width;
        fmt.height = cfg.height;
        fmt.fourcc = FourCC::new(&format.fourcc());
        let fmt = device.set_format(&fmt).map_err(|e| err(&path, e))?;
        let _ = device.set_params(&v4l::video::capture::Parameters::with_fps(cfg.fps));
        tracing::info!(
            "camera {path}: {}x{} {}",
            fmt.width,
            fmt.height,
            String::from_utf8_lossy(&fmt.fourcc.repr)
        );
        // SAFETY of the 'static: the device is boxed (stable address) and outlives the stream,
        // which is declared first and so dropped first.
        let dev_ref: &'static Device = unsafe { &*(device.as_ref() as *const Device) };
        let stream =
            MmapStream::with_buffers(dev_ref, Type::VideoCapture, 4).map_err(|e| err(&path, e))?;
        Ok(Self {
            stream,
            _device: device,
            format,
            width: fmt.width,
            height: fmt.height,
        })
    }
}

impl FrameSource for Camera {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn next_frame(&mut self) -> facekit::Result<Option<RgbImage>> {
        let (buf, meta) = self
            .stream
            .next()
            .map_err(|e| err("camera", format!("capture: {e}")))?;
        let used = (meta.bytesused as usize).min(buf.len());
        decode(self.format, self.width, self.height, &buf[..used])
            .map(Some)
            .map_err(|e| err("camera", e))
    }
}
