//! Linux framebuffer output. The geometry of `/dev/fbN` (size, line stride, bits per pixel and
//! where each colour sits in the pixel) is read from the device; a regular file stands in for a
//! device in tests and takes its geometry from the config. Frames are letterboxed to fit.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use image::RgbImage;

use super::{fit, DisplayError, FrameSink};
use crate::config::DisplayConfig;

/// Bit position and width of one colour channel inside a pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    pub offset: u32,
    pub length: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub width: u32,
    pub height: u32,
    /// Bytes per line (at least width × bytes per pixel; drivers pad).
    pub stride: u32,
    pub bits_per_pixel: u32,
    pub red: Channel,
    pub green: Channel,
    pub blue: Channel,
}

impl Geometry {
    /// RGB565 (16 bit) or XRGB8888 (32 bit) as most framebuffers lay them out.
    pub fn standard(width: u32, height: u32, stride: u32, bits: u32) -> Result<Self, DisplayError> {
        let (red, green, blue) = match bits {
            16 => ((11, 5), (5, 6), (0, 5)),
            32 => ((16, 8), (8, 8), (0, 8)),
            _ => {
                return Err(DisplayError::Device(format!(
                    "fb_bits {bits}: use 16 (RGB565) or 32 (XRGB8888)"
                )))
            }
        };
        let ch = |(offset, length)| Channel { offset, length };
        let packed = u32::try_from(u64::from(width) * u64::from(bits / 8))
            .map_err(|_| DisplayError::Device(format!("fb_width {width} is too wide")))?;
        let g = Self {
            width,
            height,
            stride: if stride == 0 { packed } else { stride },
            bits_per_pixel: bits,
            red: ch(red),
            green: ch(green),
            blue: ch(blue),
        };
        g.check()?;
        Ok(g)
    }

    /// Whether packing a frame into this geometry stays inside its memory: a size up to
    /// 8192×8192, 16 or 32 bits per pixel, a stride that holds a line, channels inside a pixel.
    /// A driver (or a config) can report anything; [`pack`] relies on this.
    pub fn check(&self) -> Result<(), DisplayError> {
        let bad = |what: String| Err(DisplayError::Device(what));
        if !(1..=8192).contains(&self.width) || !(1..=8192).contains(&self.height) {
            return bad(format!("framebuffer size {}x{}", self.width, self.height));
        }
        if !matches!(self.bits_per_pixel, 16 | 32) {
            return bad(format!(
                "{} bits per pixel is not supported (16 or 32)",
                self.bits_per_pixel
            ));
        }
        let line = u64::from(self.width) * u64::from(self.bits_per_pixel / 8);
        if u64::from(self.stride) < line {
            return bad(format!(
                "line stride {} bytes is less than a line of {} pixels ({line} bytes)",
                self.stride, self.width
            ));
        }
        for c in [&self.red, &self.green, &self.blue] {
            if !(1..=8).contains(&c.length) || c.offset + c.length > self.bits_per_pixel {
                return bad(format!(
                    "colour channel at bit {} of width {}",
                    c.offset, c.length
                ));
            }
        }
        Ok(())
    }

    pub fn bytes(&self) -> usize {
        self.stride as usize * self.height as usize
    }
}

/// Packs `frame` (already `width`×`height`) into framebuffer memory layout.
pub fn pack(frame: &RgbImage, g: &Geometry) -> Vec<u8> {
    let bpp = (g.bits_per_pixel / 8) as usize;
    let mut out = vec![0u8; g.bytes()];
    let put = |v: u8, c: &Channel| ((v as u32) >> (8 - c.length.min(8))) << c.offset;
    for (y, row) in frame.rows().enumerate().take(g.height as usize) {
        let line = &mut out[y * g.stride as usize..];
        for (x, p) in row.enumerate().take(g.width as usize) {
            let v = put(p.0[0], &g.red) | put(p.0[1], &g.green) | put(p.0[2], &g.blue);
            line[x * bpp..(x + 1) * bpp].copy_from_slice(&v.to_le_bytes()[..bpp]);
        }
    }
    out
}

/// Reads pixel (x, y) back out of packed memory as 8-bit RGB (for tests and screenshots).
pub fn unpack_pixel(mem: &[u8], g: &Geometry, x: u32, y: u32) -> [u8; 3] {
    let bpp = (g.bits_per_pixel / 8) as usize;
    let at = y as usize * g.stride as usize + x as usize * bpp;
    let mut raw = [0u8; 4];
    let Some(px) = mem.get(at..at + bpp) else {
        return [0; 3];
    };
    raw[..bpp].copy_from_slice(px);
    let v = u32::from_le_bytes(raw);
    let get = |c: &Channel| {
        let bits = (v >> c.offset) & ((1 << c.length) - 1);
        // Replicate the high bits so full scale maps to 255.
        ((bits << (8 - c.length)) | (bits >> (2 * c.length).saturating_sub(8))) as u8
    };
    [get(&g.red), get(&g.green), get(&g.blue)]
}

pub struct Framebuffer {
    file: File,
    path: String,
    pub geometry: Geometry,
}

#[cfg(target_os = "linux")]
fn device_geometry(file: &File) -> Result<Geometry, DisplayError> {
    use std::os::fd::AsRawFd;
    // struct fb_var_screeninfo (160 bytes) and fb_fix_screeninfo (80 bytes on 64-bit Linux).
    const FBIOGET_VSCREENINFO: libc::c_ulong = 0x4600;
    const FBIOGET_FSCREENINFO: libc::c_ulong = 0x4602;
    let mut var = [0u8; 160];
    let mut fix = [0u8; 80];
    // SAFETY: both ioctls write at most the struct sizes above into the buffers we pass.
    let ok = unsafe {
        libc::ioctl(file.as_raw_fd(), FBIOGET_VSCREENINFO as _, var.as_mut_ptr()) == 0
            && libc::ioctl(file.as_raw_fd(), FBIOGET_FSCREENINFO as _, fix.as_mut_ptr()) == 0
    };
    if !ok {
        return Err(DisplayError::Device(format!(
            "not a framebuffer device ({})",
            std::io::Error::last_os_error()
        )));
    }
    let u = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    let ch = |at: usize| Channel {
        offset: u(&var, at),
        length: u(&var, at + 4),
    };
    Ok(Geometry {
        width: u(&var, 0),
        height: u(&var, 4),
        bits_per_pixel: u(&var, 24),
        red: ch(32),
        green: ch(44),
        blue: ch(56),
        stride: u(&fix, 48),
    })
}

impl Framebuffer {
    pub fn open(cfg: &DisplayConfig) -> Result<Self, DisplayError> {
        let path = cfg.framebuffer.display().to_string();
        let err = |detail: String| DisplayError::Io {
            path: path.clone(),
            detail,
        };
        use std::os::unix::fs::FileTypeExt;
        let path_ref = Path::new(&cfg.framebuffer);
        let is_device = std::fs::metadata(path_ref)
            .map(|m| m.file_type().is_char_device())
            .unwrap_or(path_ref.starts_with("/dev"));
        let file = OpenOptions::new()
            .write(true)
            .create(!is_device)
            .truncate(false)
            .open(&cfg.framebuffer)
            .map_err(|e| {
                err(if is_device {
                    format!("{e}; is the user in the `video` group, is the display attached?")
                } else {
                    e.to_string()
                })
            })?;
        let geometry = if is_device {
            #[cfg(target_os = "linux")]
            {
                device_geometry(&file).map_err(|e| err(e.to_string()))?
            }
            #[cfg(not(target_os = "linux"))]
            {
                return Err(err("framebuffer devices need Linux".into()));
            }
        } else {
            if cfg.fb_width == 0 || cfg.fb_height == 0 {
                return Err(err(
                    "a framebuffer file needs fb_width and fb_height in the config".into(),
                ));
            }
            Geometry::standard(cfg.fb_width, cfg.fb_height, cfg.fb_stride, cfg.fb_bits)
                .map_err(|e| err(e.to_string()))?
        };
        geometry.check().map_err(|e| err(e.to_string()))?;
        tracing::info!(
            "framebuffer {path}: {}x{} {} bpp, stride {}",
            geometry.width,
            geometry.height,
            geometry.bits_per_pixel,
            geometry.stride
        );
        Ok(Self {
            file,
            path,
            geometry,
        })
    }
}

impl FrameSink for Framebuffer {
    fn show(&mut self, frame: &RgbImage) -> Result<(), DisplayError> {
        let fitted = fit(frame, self.geometry.width, self.geometry.height);
        let mem = pack(&fitted, &self.geometry);
        self.file
            .write_all_at(&mem, 0)
            .map_err(|e| DisplayError::Io {
                path: self.path.clone(),
                detail: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_geometry_whose_lines_do_not_fit_is_refused_before_packing() {
        let ok = Geometry::standard(640, 480, 0, 32).unwrap();
        assert_eq!(ok.stride, 2560);
        assert!(
            Geometry::standard(640, 480, 100, 32).is_err(),
            "stride < a line"
        );
        assert!(
            Geometry::standard(u32::MAX, 2, 0, 32).is_err(),
            "width × bpp wraps"
        );
        assert!(Geometry::standard(640, 480, 0, 24).is_err());
        // What a driver might report: a channel outside the pixel.
        let mut g = ok;
        g.red.offset = 30;
        assert!(g.check().is_err());
        let mut g = ok;
        g.stride = 10;
        assert!(g.check().is_err());
    }
}
