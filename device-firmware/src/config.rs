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
    /// Deliver a file's frames at `fps`, as a camera would (a kiosk playing a clip); off: as
    /// fast as the booth can take them (tests, benchmarks).
    pub pace: bool,
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
            pace: false,
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
    /// Search the whole frame for a face at least every N frames; in between the face is
    /// looked for in a crop around its last box (`track_size`).
    pub detect_every: u32,
    /// Width frames are scaled to for the whole-frame search (0 = full resolution).
    pub detect_width: u32,
    /// Side (pixels) of the crop the tracked face is looked for in between whole-frame
    /// searches, a multiple of 32; 0 holds the last landmarks instead.
    pub track_size: u32,
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
    /// Threads the booth's frames are spread over (`parallel`): each takes whatever is most
    /// urgent — the next face search, a decode, a swap — so two cores give ~1.9× one's
    /// frame rate. The capture and display threads come on top.
    pub workers: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Swap,
            face_detector: PathBuf::from(facekit::RETINAFACE_MODEL),
            detect_every: 30,
            detect_width: 320,
            track_size: 128,
            score_threshold: 0.6,
            smooth_cutoff: 1.0,
            smooth_beta: 0.05,
            swap_to: None,
            blend: BlendOptions::default(),
            fake_threshold: None,
            score_smoothing: 0.7,
            threads: 1,
            workers: 2,
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

/// The operator console and update API (see `console`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Address to serve on, e.g. "0.0.0.0:8080" (port 0 picks a free one); "" = no console.
    pub listen: String,
    /// Open connections at most; more are closed at once (and counted).
    pub max_connections: usize,
    /// Live views at most; more get 503.
    pub max_stream_clients: usize,
    /// Live-view frames per second at most (JPEG encoding costs the display thread).
    pub stream_fps: u32,
    pub upload_limit_mb: u64,
    pub upload_timeout_s: u64,
    /// A client must send its request headers within this long.
    pub header_timeout_s: u64,
    /// A browser on the booth itself may watch the live view without the token (kiosk).
    pub loopback_view: bool,
    /// A new bundle must process this many frames without an error...
    pub trial_frames: u64,
    /// ...within this long after activation, or the previous one serves again.
    pub trial_seconds: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
            max_connections: 64,
            max_stream_clients: 8,
            stream_fps: 15,
            upload_limit_mb: 512,
            upload_timeout_s: 600,
            header_timeout_s: 10,
            loopback_view: true,
            trial_frames: 30,
            trial_seconds: 60,
        }
    }
}

impl ConsoleConfig {
    pub fn upload_limit_bytes(&self) -> u64 {
        self.upload_limit_mb.saturating_mul(1024 * 1024)
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
    pub console: ConsoleConfig,
    /// Kept bundles, the serving record, the operator token, calibrations (see `store`).
    pub state_dir: PathBuf,
    /// Bundle folder from `host-trainer export`; without one the booth only detects faces.
    pub bundle: Option<PathBuf>,
    /// Public keys (hex) whose bundles this booth accepts; empty = refuse every bundle.
    pub trusted_keys: Vec<String>,
    /// A folder of `*.pub` files (`host-trainer keys` writes host.pub) also trusted; empty = none.
    pub trusted_dir: PathBuf,
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

/// A setting outside what the booth can work with: which key, what it holds, what is allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key} = {value}: {allowed}")]
pub struct InvalidSetting {
    pub key: &'static str,
    pub value: String,
    pub allowed: &'static str,
}

impl DaemonConfig {
    /// Checks every value the booth computes with, once, at start-up: a bad one fails with
    /// its key instead of a NaN, a panic or a giant allocation later (all settings come from
    /// the operator's file or flags).
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let bad = |key, value: String, allowed| {
            Err(InvalidSetting {
                key,
                value,
                allowed,
            })
        };
        let positive = |v: f32| v.is_finite() && v > 0.0;
        let s = &self.source;
        // A 4K camera is 3840×2160; the camera-lost screen allocates width × height × 3.
        for (key, v) in [("source.width", s.width), ("source.height", s.height)] {
            if !(16..=4096).contains(&v) {
                return bad(key, v.to_string(), "16 to 4096 pixels");
            }
        }
        if !(1..=240).contains(&s.fps) {
            return bad("source.fps", s.fps.to_string(), "1 to 240");
        }
        let p = &self.pipeline;
        if !positive(p.smooth_cutoff) {
            return bad(
                "pipeline.smooth_cutoff",
                p.smooth_cutoff.to_string(),
                "a number above 0",
            );
        }
        if !(p.smooth_beta.is_finite() && p.smooth_beta >= 0.0) {
            return bad(
                "pipeline.smooth_beta",
                p.smooth_beta.to_string(),
                "a number of 0 or more",
            );
        }
        if !(p.score_threshold.is_finite() && (0.0..=1.0).contains(&p.score_threshold)) {
            return bad(
                "pipeline.score_threshold",
                p.score_threshold.to_string(),
                "0 to 1",
            );
        }
        if let Some(t) = p.fake_threshold {
            if !(t.is_finite() && (0.0..=1.0).contains(&t)) {
                return bad("pipeline.fake_threshold", t.to_string(), "0 to 1");
            }
        }
        if !(p.score_smoothing.is_finite() && (0.0..1.0).contains(&p.score_smoothing)) {
            return bad(
                "pipeline.score_smoothing",
                p.score_smoothing.to_string(),
                "0 to below 1",
            );
        }
        if p.detect_every == 0 || p.detect_every > 1000 {
            return bad(
                "pipeline.detect_every",
                p.detect_every.to_string(),
                "1 to 1000",
            );
        }
        if p.detect_width != 0 && !(32..=4096).contains(&p.detect_width) {
            return bad(
                "pipeline.detect_width",
                p.detect_width.to_string(),
                "0 (full) or 32 to 4096",
            );
        }
        if p.track_size != 0 && !(32..=1024).contains(&p.track_size) {
            return bad(
                "pipeline.track_size",
                p.track_size.to_string(),
                "0 (hold landmarks) or 32 to 1024",
            );
        }
        if !(1..=64).contains(&p.workers) {
            return bad("pipeline.workers", p.workers.to_string(), "1 to 64");
        }
        if !(1..=64).contains(&p.threads) {
            return bad("pipeline.threads", p.threads.to_string(), "1 to 64");
        }
        let b = &p.blend;
        if !(b.feather.is_finite() && (0.0..=32.0).contains(&b.feather)) {
            return bad(
                "pipeline.blend.feather",
                b.feather.to_string(),
                "0 to 32 crop pixels",
            );
        }
        if !(-32..=32).contains(&b.erode) {
            return bad(
                "pipeline.blend.erode",
                b.erode.to_string(),
                "-32 to 32 crop pixels",
            );
        }
        if !(b.sharpen.is_finite() && (0.0..=4.0).contains(&b.sharpen)) {
            return bad("pipeline.blend.sharpen", b.sharpen.to_string(), "0 to 4");
        }
        let d = &self.display;
        if d.kind == DisplayKind::Framebuffer && !is_device_path(&d.framebuffer) {
            for (key, v) in [
                ("display.fb_width", d.fb_width),
                ("display.fb_height", d.fb_height),
            ] {
                if !(1..=8192).contains(&v) {
                    return bad(key, v.to_string(), "1 to 8192 for a framebuffer file");
                }
            }
            if !matches!(d.fb_bits, 16 | 32) {
                return bad(
                    "display.fb_bits",
                    d.fb_bits.to_string(),
                    "16 (RGB565) or 32 (XRGB8888)",
                );
            }
            let packed = u64::from(d.fb_width) * u64::from(d.fb_bits / 8);
            if d.fb_stride != 0 && u64::from(d.fb_stride) < packed {
                return bad(
                    "display.fb_stride",
                    d.fb_stride.to_string(),
                    "0 or at least fb_width × bytes per pixel",
                );
            }
        }
        if self.save_every == 0 {
            return bad("save_every", "0".into(), "1 or more");
        }
        let c = &self.console;
        for (key, v, range, allowed) in [
            (
                "console.max_connections",
                c.max_connections as u64,
                1..=4096,
                "1 to 4096",
            ),
            (
                "console.max_stream_clients",
                c.max_stream_clients as u64,
                1..=256,
                "1 to 256",
            ),
            (
                "console.stream_fps",
                u64::from(c.stream_fps),
                1..=60,
                "1 to 60",
            ),
            (
                "console.upload_limit_mb",
                c.upload_limit_mb,
                1..=768,
                "1 to 768",
            ),
            (
                "console.upload_timeout_s",
                c.upload_timeout_s,
                1..=3600,
                "1 to 3600",
            ),
            (
                "console.header_timeout_s",
                c.header_timeout_s,
                1..=120,
                "1 to 120",
            ),
            (
                "console.trial_frames",
                c.trial_frames,
                1..=100_000,
                "1 to 100000",
            ),
            (
                "console.trial_seconds",
                c.trial_seconds,
                1..=3600,
                "1 to 3600",
            ),
        ] {
            if !range.contains(&v) {
                return bad(key, v.to_string(), allowed);
            }
        }
        if c.max_stream_clients > c.max_connections {
            return bad(
                "console.max_stream_clients",
                c.max_stream_clients.to_string(),
                "at most console.max_connections",
            );
        }
        for k in &self.trusted_keys {
            if shared_proto::bundle::parse_public_key(k).is_err() {
                return bad(
                    "trusted_keys",
                    format!("{k:?}"),
                    "64 hex digits (`host-trainer keys` prints the key)",
                );
            }
        }
        Ok(())
    }
}

/// `/dev/…`: a real device that reports its own geometry.
fn is_device_path(p: &std::path::Path) -> bool {
    p.starts_with("/dev")
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            source: SourceConfig::default(),
            pipeline: PipelineConfig::default(),
            display: DisplayConfig::default(),
            button: ButtonConfig::default(),
            console: ConsoleConfig::default(),
            state_dir: PathBuf::from("/var/lib/doppel"),
            bundle: None,
            trusted_keys: Vec::new(),
            trusted_dir: PathBuf::new(),
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
        // The Debian package's config is valid and names the packaged paths.
        let text = std::fs::read_to_string(root.join("packaging/debian/booth.toml")).unwrap();
        let packaged: DaemonConfig = toml::from_str(&text).unwrap();
        assert_eq!(packaged.validate(), Ok(()));
        assert_eq!(packaged.state_dir, PathBuf::from("/var/lib/doppel"));
        assert_eq!(packaged.display.kind, DisplayKind::Framebuffer);
        assert!(packaged
            .pipeline
            .face_detector
            .starts_with("/usr/share/doppel"));
    }

    #[test]
    fn every_unusable_setting_is_refused_by_its_key() {
        assert_eq!(DaemonConfig::default().validate(), Ok(()));
        let cases: [(&str, &str); 15] = [
            ("[pipeline]\nsmooth_cutoff = nan", "pipeline.smooth_cutoff"),
            ("[pipeline]\nsmooth_cutoff = -1.0", "pipeline.smooth_cutoff"),
            ("[pipeline]\nfake_threshold = 1.5", "pipeline.fake_threshold"),
            ("[pipeline]\nfake_threshold = nan", "pipeline.fake_threshold"),
            ("[pipeline]\nscore_smoothing = 1.0", "pipeline.score_smoothing"),
            ("[pipeline]\ndetect_every = 0", "pipeline.detect_every"),
            ("[pipeline]\ntrack_size = 8", "pipeline.track_size"),
            ("[pipeline.blend]\nsharpen = -1.0", "pipeline.blend.sharpen"),
            ("[pipeline.blend]\nsharpen = nan", "pipeline.blend.sharpen"),
            ("[source]\nwidth = 100000000", "source.width"),
            ("[source]\nheight = 0", "source.height"),
            (
                "[display]\nkind = \"framebuffer\"\nframebuffer = \"fb.raw\"\nfb_width = 4294967295\nfb_height = 2\nfb_bits = 32",
                "display.fb_width",
            ),
            (
                "[display]\nkind = \"framebuffer\"\nframebuffer = \"fb.raw\"\nfb_width = 640\nfb_height = 480\nfb_stride = 100",
                "display.fb_stride",
            ),
            ("trusted_keys = [\"not a key\"]", "trusted_keys"),
            ("save_every = 0", "save_every"),
        ];
        for (toml_text, key) in cases {
            let cfg: DaemonConfig = toml::from_str(toml_text).unwrap();
            let err = cfg.validate().expect_err(toml_text);
            assert_eq!(err.key, key, "{toml_text}: {err}");
        }
    }
}
