//! Camera pixel formats: which one to ask for, and turning a captured buffer into RGB. Kept
//! apart from the V4L2 calls so it is tested on recorded buffers without a camera.

use image::RgbImage;

use crate::config::CameraFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    Mjpeg,
    Yuyv,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FormatError {
    #[error("the camera offers {offered}, none of which doppel decodes (wanted {wanted}); choose format = \"auto\" or a camera with MJPEG or YUYV")]
    Unsupported { offered: String, wanted: String },
    #[error("MJPEG frame does not decode: {0}")]
    BadJpeg(String),
    #[error("YUYV frame has {got} bytes, {width}x{height} needs {want}")]
    ShortYuyv {
        got: usize,
        want: usize,
        width: u32,
        height: u32,
    },
}

impl PixelFormat {
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Mjpeg => *b"MJPG",
            PixelFormat::Yuyv => *b"YUYV",
        }
    }

    pub fn from_fourcc(code: &[u8; 4]) -> Option<Self> {
        match code {
            b"MJPG" => Some(PixelFormat::Mjpeg),
            b"YUYV" => Some(PixelFormat::Yuyv),
            _ => None,
        }
    }
}

/// Picks the format to request from what the camera `offered`. MJPEG first under `auto`: at
/// 640×480@30 YUYV needs 18 MB/s, beyond what many USB 2 webcams deliver.
pub fn negotiate(offered: &[[u8; 4]], wanted: CameraFormat) -> Result<PixelFormat, FormatError> {
    let has = |f: PixelFormat| offered.contains(&f.fourcc());
    let order: &[PixelFormat] = match wanted {
        CameraFormat::Auto => &[PixelFormat::Mjpeg, PixelFormat::Yuyv],
        CameraFormat::Mjpeg => &[PixelFormat::Mjpeg],
        CameraFormat::Yuyv => &[PixelFormat::Yuyv],
    };
    order
        .iter()
        .copied()
        .find(|&f| has(f))
        .ok_or_else(|| FormatError::Unsupported {
            offered: offered
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(", "),
            wanted: format!("{wanted:?}"),
        })
}

/// RGB frame from one captured buffer.
pub fn decode(
    format: PixelFormat,
    width: u32,
    height: u32,
    data: &[u8],
) -> Result<RgbImage, FormatError> {
    match format {
        PixelFormat::Mjpeg => {
            // USB transfers get cut short; the decoder would fill the rest with grey, so a frame
            // without its end-of-image marker is dropped instead (cameras may pad with zeros).
            let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            if end < 2 || data[end - 2..end] != [0xff, 0xd9] {
                return Err(FormatError::BadJpeg(
                    "truncated (no end-of-image marker)".into(),
                ));
            }
            image::load_from_memory_with_format(data, image::ImageFormat::Jpeg)
                .map(|i| i.to_rgb8())
                .map_err(|e| FormatError::BadJpeg(e.to_string()))
        }
        PixelFormat::Yuyv => yuyv_to_rgb(width, height, data),
    }
}

/// YUYV 4:2:2 (Y0 U Y1 V per pixel pair), BT.601 limited range, as UVC cameras send it.
pub fn yuyv_to_rgb(width: u32, height: u32, data: &[u8]) -> Result<RgbImage, FormatError> {
    let want = (width * height * 2) as usize;
    if data.len() < want {
        return Err(FormatError::ShortYuyv {
            got: data.len(),
            want,
            width,
            height,
        });
    }
    let mut out = Vec::with_capacity((width * height * 3) as usize);
    for quad in data[..want].chunks_exact(4) {
        let (u, v) = (quad[1] as f32 - 128.0, quad[3] as f32 - 128.0);
        for y in [quad[0], quad[2]] {
            let c = 1.164 * (y as f32 - 16.0);
            out.extend([
                (c + 1.596 * v).round().clamp(0.0, 255.0) as u8,
                (c - 0.392 * u - 0.813 * v).round().clamp(0.0, 255.0) as u8,
                (c + 2.017 * u).round().clamp(0.0, 255.0) as u8,
            ]);
        }
    }
    Ok(RgbImage::from_raw(width, height, out).expect("size checked"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_mjpeg_and_honours_an_explicit_choice() {
        let both = [*b"YUYV", *b"MJPG"];
        assert_eq!(negotiate(&both, CameraFormat::Auto), Ok(PixelFormat::Mjpeg));
        assert_eq!(negotiate(&both, CameraFormat::Yuyv), Ok(PixelFormat::Yuyv));
        assert_eq!(
            negotiate(&[*b"YUYV"], CameraFormat::Auto),
            Ok(PixelFormat::Yuyv)
        );
        let err = negotiate(&[*b"H264", *b"NV12"], CameraFormat::Auto).unwrap_err();
        assert!(err.to_string().contains("H264, NV12"), "{err}");
        assert!(negotiate(&[*b"YUYV"], CameraFormat::Mjpeg).is_err());
    }

    #[test]
    fn short_yuyv_buffers_are_refused() {
        assert!(matches!(
            yuyv_to_rgb(4, 2, &[0; 10]),
            Err(FormatError::ShortYuyv { want: 16, .. })
        ));
    }
}
