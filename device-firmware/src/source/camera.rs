//! V4L2 capture through the `v4l` crate: negotiate MJPEG or YUYV at the configured size and
//! rate, stream from mmap buffers, decode to RGB.

use facekit::{FacekitError, FrameSource};
use image::RgbImage;
use v4l::buffer::Type;
use v4l::io::traits::CaptureStream;
use v4l::prelude::*;
use v4l::video::Capture;
use v4l::FourCC;

use super::formats::{negotiate, FrameDecoder, PixelFormat};
use crate::config::SourceConfig;

/// A camera that delivers no frame for this long is lost (a stalled driver, a pulled cable):
/// the booth shows "camera lost" and reopens it rather than waiting forever.
pub const FRAME_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub struct Camera {
    // The stream borrows the device for its lifetime; both live here, stream first (dropped first).
    stream: MmapStream<'static>,
    _device: Box<Device>,
    decoder: FrameDecoder,
}

fn err(path: &str, e: impl std::fmt::Display) -> FacekitError {
    FacekitError::Camera {
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
        // The driver answers with what it will really send, which may differ from what we
        // asked for: another size, padded lines, or another format altogether.
        let fmt = device.set_format(&fmt).map_err(|e| err(&path, e))?;
        let format = PixelFormat::from_fourcc(&fmt.fourcc.repr).ok_or_else(|| {
            err(
                &path,
                format!(
                    "the driver substituted {}, which doppel does not decode",
                    String::from_utf8_lossy(&fmt.fourcc.repr)
                ),
            )
        })?;
        let _ = device.set_params(&v4l::video::capture::Parameters::with_fps(cfg.fps));
        tracing::info!(
            "camera {path}: {}x{} {}, {} bytes per line",
            fmt.width,
            fmt.height,
            String::from_utf8_lossy(&fmt.fourcc.repr),
            fmt.stride
        );
        // SAFETY of the 'static: the device is boxed (stable address) and outlives the stream,
        // which is declared first and so dropped first.
        let dev_ref: &'static Device = unsafe { &*(device.as_ref() as *const Device) };
        let mut stream =
            MmapStream::with_buffers(dev_ref, Type::VideoCapture, 4).map_err(|e| err(&path, e))?;
        stream.set_timeout(FRAME_TIMEOUT);
        let stride = if format == PixelFormat::Yuyv {
            fmt.stride
        } else {
            0
        };
        Ok(Self {
            stream,
            _device: device,
            decoder: FrameDecoder::new(format, fmt.width, fmt.height, stride),
        })
    }
}

impl FrameSource for Camera {
    fn size(&self) -> (u32, u32) {
        (self.decoder.width, self.decoder.height)
    }

    fn next_frame(&mut self) -> facekit::Result<Option<RgbImage>> {
        loop {
            // Times out after FRAME_TIMEOUT: an error, which the reconnecting source reports as
            // a lost camera.
            let (buf, meta) = self
                .stream
                .next()
                .map_err(|e| err("camera", format!("capture: {e}")))?;
            let used = (meta.bytesused as usize).min(buf.len());
            // A damaged frame is skipped; only a run of them means the camera is lost.
            if let Some(frame) = self
                .decoder
                .frame(&buf[..used])
                .map_err(|e| err("camera", e))?
            {
                return Ok(Some(frame));
            }
        }
    }
}
