//! The booth's settings: one TOML file (`configs/booth.example.toml` documents every key), some
//! keys overridable by `doppel-device run` flags. Defaults are what a kiosk wants.

use std::path::PathBuf;

use facekit::blend::BlendOptions;
use serde::{Deserialize, Serialize};

/// What the booth does with each face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Swap faces into the bundle's target person; every frame is labelled SYNTHETIC.
    Swap,
    /// Score how likely each face is fake.
    Detect,
    /// Swap, then score the swapped frame: can the detector catch it?
    SwapDetect,
}

impl Mode {
    /// The mode the button switches to next.
    pub fn next(self) -> Self {
        match self {
            Mode::Swap => Mode::Detect,
            Mode::Detect => Mode::SwapDetect,
            Mode::SwapDetect => Mode::Swap,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Swap => "swap",
            Mode::Detect => "detect",
            Mode::SwapDetect => "swap+detect",
        }
    }

    pub fn swaps(self) -> bool {
        matches!(self, Mode::Swap | Mode::SwapDetect)
    }

    pub fn scores(self) -> bool {
        matches!(self, Mode::Detect | Mode::SwapDetect)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraFormat {
    /// MJPEG when the camera offers it (less USB bandwidth), else YUYV.
    Auto,
    Mjpeg,
    Yuyv,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceConfig {
    /// `/dev/videoN` for a V4L2 camera, a video file, or a folder of PNG/JPEG frames.
    pub input: PathBuf,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub format: CameraFormat,
    /// Play files in a loop (a demo booth without camera).
    pub looped: bool,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            input: PathBuf::from("/dev/video0"),
            width: 640,
            height: 480,
            fps: 30,
            format: CameraFormat::Auto,
            looped: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    pub mode: Mode,
    /// RetinaFace ONNX model that finds the faces (`detector` in configs written before the
    /// deepfake detector joined the bundle).
    #[serde(alias = "detector")]
    pub face_detector: PathBuf,
    /// Run detection every N frames; landmarks are held and smoothed in between.
    pub detect_every: u32,
    /// Width frames are scaled to for detection (0 = full resolution).
    pub detect_width: u32,
    pub score_threshold: f32,
    /// One-Euro minimum cutoff (Hz) of the landmark smoother; lower = steadier, laggier.
    pub smooth_cutoff: f32,
    /// One-Euro speed coefficient; higher follows fast motion sooner.
    pub smooth_beta: f32,
    /// Whose face to swap in (a person named in the bundle); default: the first swap model's.
    pub swap_to: Option<String>,
    pub blend: BlendOptions,
    /// Fake probability at or above which the verdict reads FAKE; `None` takes the threshold
    /// the bundle's detector was calibrated to.
    pub fake_threshold: Option<f32>,
    /// Exponential smoothing of the fake score along the track (0 = none, 0.9 = slow).
    pub score_smoothing: f32,
    /// tract threads for matrix products.
    pub threads: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Swap,
            face_detector: PathBuf::from(facekit::RETINAFACE_MODEL),
            detect_every: 1,
            detect_width: 320,
            score_threshold: 0.6,
            smooth_cutoff: 1.0,
            smooth_beta: 0.05,
            swap_to: None,
            blend: BlendOptions::default(),
            fake_threshold: None,
            score_smoothing: 0.7,
            threads: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DisplayKind {
    /// No screen: PNG snapshots and/or an MJPEG-over-HTTP stream for a browser kiosk.
    Headless,
    /// Linux framebuffer (`/dev/fb0`, or a regular file with the geometry below).
    Framebuffer,
    /// SPI LCD through mipidsi.
    Lcd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LcdModel {
    St7789,
    Ili9341,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DisplayConfig {
    pub kind: DisplayKind,
    /// Framebuffer device or file.
    pub framebuffer: PathBuf,
    /// Geometry for a framebuffer that is a regular file (a device reports its own).
    pub fb_width: u32,
    pub fb_height: u32,
    /// Bytes per line; 0 = width × bytes per pixel.
    pub fb_stride: u32,
    /// 16 (RGB565) or 32 (XRGB8888).
    pub fb_bits: u32,
    /// Serve an MJPEG stream on this address (e.g. "0.0.0.0:8080"); empty = off.
    pub http: String,
    pub lcd_model: LcdModel,
    pub lcd_spi: PathBuf,
    pub lcd_gpio_chip: PathBuf,
    pub lcd_dc_line: u32,
    pub lcd_reset_line: u32,
    pub lcd_width: u16,
    pub lcd_height: u16,
    pub lcd_spi_hz: u32,
}

impl Default for DisplayConfig {
    fn default() -> Self {
        Self {
            kind: DisplayKind::Headless,
            framebuffer: PathBuf::from("/dev/fb0"),
            fb_width: 0,
            fb_height: 0,
            fb_stride: 0,
            fb_bits: 32,
            http: String::new(),
            lcd_model: LcdModel::St7789,
            lcd_spi: PathBuf::from("/dev/spidev0.0"),
            lcd_gpio_chip: PathBuf::from("/dev/gpiochip0"),
            lcd_dc_line: 25,
            lcd_reset_line: 27,
            lcd_width: 240,
            lcd_height: 320,
            lcd_spi_hz: 40_000_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ButtonConfig {
    /// GPIO character device of the mode button; empty = no button.
    pub gpio_chip: PathBuf,
    pub line: u32,
    /// The line reads low when pressed (button to ground with a pull-up).
    pub active_low: bool,
    pub debounce_ms: u64,
    /// Also switch modes with `m` + Enter on the terminal (when stdin is a terminal).
    pub keyboard: bool,
}

impl Default for ButtonConfig {
    fn default() -> Self {
        Self {
            gpio_chip: PathBuf::new(),
            line: 17,
            active_low: true,
            debounce_ms: 30,
            keyboard: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    pub source: SourceConfig,
    pub pipeline: PipelineConfig,
    pub display: DisplayConfig,
    pub button: ButtonConfig,
    /// Bundle folder from `host-trainer export`; without one the booth only detects faces.
    pub bundle: Option<PathBuf>,
    /// Public keys (hex) whose bundles this booth accepts; empty = refuse every bundle.
    pub trusted_keys: Vec<String>,
    /// Visitor frames are written to disk only when the operator turns this on: then every
    /// `save_every`th displayed frame goes to `save_dir` as PNG.
    pub save_frames: bool,
    pub save_dir: PathBuf,
    pub save_every: u64,
    /// Drop stale frames rather than queue them (default: on for cameras, off for files).
    pub realtime: Option<bool>,
    /// Stop after this many frames (tests, benchmarks).
    pub max_frames: Option<u64>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            source: SourceConfig::default(),
            pipeline: PipelineConfig::default(),
            display: DisplayConfig::default(),
            button: ButtonConfig::default(),
            bundle: None,
            trusted_keys: Vec::new(),
            save_frames: false,
            save_dir: PathBuf::from("frames"),
            save_every: 1,
            realtime: None,
            max_frames: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_is_the_defaults_and_unknown_keys_are_refused() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(root.join("configs/booth.example.toml")).unwrap();
        let parsed: DaemonConfig = toml::from_str(&text).unwrap();
        assert_eq!(parsed, DaemonConfig::default());
        assert!(toml::from_str::<DaemonConfig>("[pipeline]\nmood = \"swap\"").is_err());
        let m = Mode::Swap;
        assert_eq!(m.next().next().next(), m);
    }
}
