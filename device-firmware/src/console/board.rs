//! What the booth loop publishes for the console: live figures (updated once per frame, a few
//! numbers under a mutex), the newest displayed frame as JPEG (only while someone watches), and
//! the recent log lines.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use image::RgbImage;
use serde::Serialize;

use crate::calibration::ThresholdSource;
use crate::config::Mode;
use crate::display::{DisplayError, FrameSink};
use crate::pipeline::{FrameResult, StageTimes};
use crate::sync::lock;

/// Log lines the console shows.
pub const LOG_LINES: usize = 200;

/// Per-stage milliseconds, averaged over the last few seconds of frames.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StageMs {
    pub decode: f32,
    pub detect: f32,
    pub align: f32,
    pub swap: f32,
    pub blend: f32,
    pub score: f32,
    pub draw: f32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraState {
    /// No frame yet.
    #[default]
    Starting,
    Ok,
    Lost,
}

/// The booth's live figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Live {
    pub mode: Option<Mode>,
    pub fps: f32,
    pub latency_ms: f32,
    pub stage_ms: StageMs,
    pub camera: CameraState,
    pub camera_message: String,
    pub frames: u64,
    pub faces: u64,
    pub swapped: u64,
    pub errors: u64,
    pub last_score: Option<f32>,
    pub threshold: Option<f32>,
    pub threshold_source: Option<ThresholdSource>,
}

/// Shared between the booth loop, the display thread and the console.
pub struct Board {
    live: Mutex<Live>,
    started: Instant,
    logs: Mutex<VecDeque<String>>,
    frames: tokio::sync::watch::Sender<Option<Bytes>>,
    /// Frames published (for the stream watchdog: a client that has not taken a frame for a
    /// long time while new ones keep coming has stopped reading).
    pub published: AtomicU64,
    /// Requests for a single frame in the last few seconds keep the encoder on.
    wanted_until: Mutex<Option<Instant>>,
    pub stream_clients: AtomicUsize,
    pub connections: AtomicUsize,
    pub refused_connections: AtomicU64,
}

/// Moving average over roughly the last 20 frames.
fn ema(old: f32, new: f32) -> f32 {
    if old == 0.0 {
        new
    } else {
        0.95 * old + 0.05 * new
    }
}

impl Default for Board {
    fn default() -> Self {
        Self {
            live: Mutex::default(),
            started: Instant::now(),
            logs: Mutex::new(VecDeque::with_capacity(LOG_LINES)),
            frames: tokio::sync::watch::Sender::new(None),
            published: AtomicU64::new(0),
            wanted_until: Mutex::new(None),
            stream_clients: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            refused_connections: AtomicU64::new(0),
        }
    }
}

/// One processed frame, as the booth loop reports it.
pub struct FrameReport<'a> {
    pub result: &'a FrameResult,
    pub mode: Mode,
    pub fps: f32,
    pub latency_ms: f32,
    pub decode_ms: f64,
    pub draw_ms: f64,
    pub threshold: (f32, ThresholdSource),
}

impl Board {
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn live(&self) -> Live {
        lock(&self.live).clone()
    }

    pub fn frame(&self, f: FrameReport<'_>) {
        let r = f.result;
        let t: &StageTimes = &r.times;
        let mut l = lock(&self.live);
        l.mode = Some(f.mode);
        l.fps = f.fps;
        l.latency_ms = f.latency_ms;
        let s = &mut l.stage_ms;
        s.decode = ema(s.decode, f.decode_ms as f32);
        s.detect = ema(s.detect, t.detect as f32);
        s.align = ema(s.align, t.align as f32);
        s.swap = ema(s.swap, t.swap as f32);
        s.blend = ema(s.blend, t.blend as f32);
        s.score = ema(s.score, t.score as f32);
        s.draw = ema(s.draw, f.draw_ms as f32);
        l.camera = CameraState::Ok;
        l.camera_message.clear();
        l.frames += 1;
        l.faces += r.face.is_some() as u64;
        l.swapped += r.swapped as u64;
        l.errors += r.error.is_some() as u64;
        l.last_score = r.score;
        l.threshold = Some(f.threshold.0);
        l.threshold_source = Some(f.threshold.1);
    }

    pub fn camera_lost(&self, message: &str) {
        let mut l = lock(&self.live);
        l.camera = CameraState::Lost;
        l.camera_message = message.to_owned();
    }

    pub fn mode(&self, mode: Mode) {
        lock(&self.live).mode = Some(mode);
    }

    pub fn log(&self, line: String) {
        let mut logs = lock(&self.logs);
        if logs.len() == LOG_LINES {
            logs.pop_front();
        }
        logs.push_back(line);
    }

    pub fn logs(&self) -> Vec<String> {
        lock(&self.logs).iter().cloned().collect()
    }

    /// A receiver of every JPEG published from now on (the stream and `/api/frame.jpg`).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Option<Bytes>> {
        self.frames.subscribe()
    }

    /// Keeps the encoder on for a few seconds: someone asked for a single frame.
    pub fn want_frames(&self) {
        *lock(&self.wanted_until) = Some(Instant::now() + Duration::from_secs(5));
    }

    fn watched(&self) -> bool {
        self.frames.receiver_count() > 0
            || lock(&self.wanted_until).is_some_and(|t| Instant::now() < t)
    }

    fn publish(&self, jpeg: Vec<u8>) {
        self.frames.send_replace(Some(Bytes::from(jpeg)));
        self.published.fetch_add(1, Ordering::Relaxed);
    }
}

/// The console as a display: encodes the shown frame as JPEG, at most `fps` times a second
/// and only while someone watches, so an unwatched console costs the booth nothing.
pub struct ConsoleSink {
    board: Arc<Board>,
    every: Duration,
    last: Option<Instant>,
    quality: u8,
}

impl ConsoleSink {
    pub fn new(board: Arc<Board>, fps: u32) -> Self {
        Self {
            board,
            every: Duration::from_secs_f32(1.0 / fps.max(1) as f32),
            last: None,
            quality: 80,
        }
    }
}

impl FrameSink for ConsoleSink {
    fn show(&mut self, frame: &RgbImage) -> Result<(), DisplayError> {
        if !self.board.watched() || self.last.is_some_and(|t| t.elapsed() < self.every) {
            return Ok(());
        }
        self.last = Some(Instant::now());
        let mut jpeg = Vec::with_capacity(64 * 1024);
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, self.quality)
            .encode_image(frame)
            .map_err(|e| DisplayError::Device(e.to_string()))?;
        self.board.publish(jpeg);
        Ok(())
    }
}

/// A `tracing` layer that copies INFO and above into the board's log ring.
pub struct LogLayer(pub Arc<Board>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LogLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if *event.metadata().level() > tracing::Level::INFO {
            return;
        }
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                use std::fmt::Write;
                if field.name() == "message" {
                    let _ = write!(self.0, "{value:?}");
                } else {
                    let _ = write!(self.0, " {}={value:?}", field.name());
                }
            }
        }
        let mut m = Message(String::new());
        event.record(&mut m);
        self.0.log(format!(
            "{} {:5} {}",
            chrono::Utc::now().format("%H:%M:%S"),
            event.metadata().level(),
            m.0
        ));
    }
}
