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
    #[error("YUYV needs an even width and a line stride of at least 2 × width, got width {width}, stride {stride}")]
    YuyvLayout { width: u32, stride: u32 },
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

/// RGB frame from one captured buffer with tightly packed lines.
pub fn decode(
    format: PixelFormat,
    width: u32,
    height: u32,
    data: &[u8],
) -> Result<RgbImage, FormatError> {
    decode_lines(format, width, height, 0, data)
}

/// RGB frame from one captured buffer whose lines are `stride` bytes apart (0 = packed); the
/// driver chooses the stride, and may pad lines.
pub fn decode_lines(
    format: PixelFormat,
    width: u32,
    height: u32,
    stride: u32,
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
            let complete = with_standard_huffman_tables(&data[..end]);
            image::load_from_memory_with_format(&complete, image::ImageFormat::Jpeg)
                .map(|i| i.to_rgb8())
                .map_err(|e| FormatError::BadJpeg(e.to_string()))
        }
        PixelFormat::Yuyv => yuyv_lines_to_rgb(width, height, stride, data),
    }
}

/// The Huffman tables of JPEG's Annex K.3 as one DHT segment (DC luminance and chrominance, then
/// AC, in the order ffmpeg writes them): what an MJPEG frame that carries no tables of its own
/// was coded with.
const STANDARD_DHT: &[u8] = &[
    0xff, 0xc4, 0x01, 0xa2, // DHT, length 418
    0x00, 0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, // DC luminance
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x01, 0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0,
    0, // DC chrominance
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x10, 0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1,
    0x7d, // AC luminance
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
    0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa, 0x11, 0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77, // AC chrominance
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
    0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
    0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
    0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];

/// `jpeg` with the standard Huffman tables inserted before its scan when it has none of its
/// own (many UVC cameras leave them out, as the MJPEG-in-AVI convention allows); any other
/// frame unchanged.
pub fn with_standard_huffman_tables(jpeg: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use std::borrow::Cow;
    if jpeg.len() < 4 || jpeg[..2] != [0xff, 0xd8] {
        return Cow::Borrowed(jpeg);
    }
    let mut at = 2;
    while at + 4 <= jpeg.len() {
        if jpeg[at] != 0xff {
            return Cow::Borrowed(jpeg); // not a marker where one must be: leave it to the decoder
        }
        let marker = jpeg[at + 1];
        match marker {
            0xff => at += 1, // fill byte
            0xc4 => return Cow::Borrowed(jpeg),
            0xda => {
                let mut out = Vec::with_capacity(jpeg.len() + STANDARD_DHT.len());
                out.extend_from_slice(&jpeg[..at]);
                out.extend_from_slice(STANDARD_DHT);
                out.extend_from_slice(&jpeg[at..]);
                return Cow::Owned(out);
            }
            _ => {
                let len = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
                at += 2 + len.max(2);
            }
        }
    }
    Cow::Borrowed(jpeg)
}

/// YUYV 4:2:2 (Y0 U Y1 V per pixel pair), BT.601 limited range, as UVC cameras send it, lines
/// packed.
pub fn yuyv_to_rgb(width: u32, height: u32, data: &[u8]) -> Result<RgbImage, FormatError> {
    yuyv_lines_to_rgb(width, height, 0, data)
}

/// YUYV with lines `stride` bytes apart (0 = packed, `2 × width`). The width is even by
/// definition (pixels come in U/V-sharing pairs).
pub fn yuyv_lines_to_rgb(
    width: u32,
    height: u32,
    stride: u32,
    data: &[u8],
) -> Result<RgbImage, FormatError> {
    let line = width as usize * 2;
    let stride = if stride == 0 { line } else { stride as usize };
    let want = stride * (height as usize).saturating_sub(1) + line;
    if width % 2 == 1 || stride < line {
        return Err(FormatError::YuyvLayout {
            width,
            stride: stride as u32,
        });
    }
    if data.len() < want {
        return Err(FormatError::ShortYuyv {
            got: data.len(),
            want,
            width,
            height,
        });
    }
    let mut out = Vec::with_capacity(width as usize * height as usize * 3);
    for row in data.chunks(stride).take(height as usize) {
        for quad in row[..line].chunks_exact(4) {
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
    }
    RgbImage::from_raw(width, height, out).ok_or(FormatError::ShortYuyv {
        got: data.len(),
        want,
        width,
        height,
    })
}

/// Turns a camera's buffers into frames, skipping the odd damaged one: USB drops and glitches
/// happen, and reopening the camera for each costs a second of black screen. Only a run of
/// `MAX_BAD_IN_A_ROW` bad frames counts as a lost camera.
pub struct FrameDecoder {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub stride: u32,
    bad_in_a_row: u32,
}

/// Damaged frames in a row after which the camera is treated as lost.
pub const MAX_BAD_IN_A_ROW: u32 = 30;

impl FrameDecoder {
    pub fn new(format: PixelFormat, width: u32, height: u32, stride: u32) -> Self {
        Self {
            format,
            width,
            height,
            stride,
            bad_in_a_row: 0,
        }
    }

    /// The frame in `data`, `Ok(None)` for a damaged frame to skip, an error once too many
    /// came in a row.
    pub fn frame(&mut self, data: &[u8]) -> Result<Option<RgbImage>, FormatError> {
        match decode_lines(self.format, self.width, self.height, self.stride, data) {
            Ok(frame) => {
                self.bad_in_a_row = 0;
                Ok(Some(frame))
            }
            Err(e) => {
                self.bad_in_a_row += 1;
                if self.bad_in_a_row >= MAX_BAD_IN_A_ROW {
                    return Err(e);
                }
                tracing::debug!("damaged camera frame skipped: {e}");
                Ok(None)
            }
        }
    }
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
