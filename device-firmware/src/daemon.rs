//! The booth loop: capture and display on their own threads, joined to the booth by one-frame
//! slots; in between, `pipeline.workers` threads share each frame's face search, swap and
//! scoring (`crate::parallel`: whichever is most urgent), and frames are settled (scores
//! smoothed along the track), drawn and shown in order. With a camera the slots keep only the
//! newest frame (a stale frame is dropped, never queued, so latency cannot build up); with a
//! file every frame is processed. SIGHUP reloads the bundle, SIGTERM/SIGINT end the loop
//! cleanly.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use image::RgbImage;

use crate::button::Control;
use crate::calibration::{Calibrator, InForce};
use crate::config::{DaemonConfig, DisplayKind, Mode};
use crate::console::board::{Board, ConsoleSink, FrameReport};
use crate::display::{framebuffer::Framebuffer, png::PngFrames, FrameSink};
use crate::models::{LoadedBundle, ModelSlot};
use crate::overlay::{self, Hud};
use crate::parallel;
use crate::pipeline::{render_work, FrameResult, Pipeline, Rendered, StageTimes};
use crate::service::ServiceManager;
use crate::source::{self, reconnect::Captured, reconnect::Reconnecting};
use crate::sync::lock;
use crate::updates::Updates;

/// A one-item hand-over between threads. Lossy: `put` replaces an unread item (counted as
/// dropped). Lossless: `put` waits until the item was taken.
pub struct Slot<T> {
    state: Mutex<(Option<T>, bool)>,
    cv: Condvar,
    lossy: bool,
    pub dropped: AtomicU64,
}

impl<T> Slot<T> {
    pub fn new(lossy: bool) -> Self {
        Self {
            state: Mutex::new((None, false)),
            cv: Condvar::new(),
            lossy,
            dropped: AtomicU64::new(0),
        }
    }

    /// The state, even after a thread panicked while holding it: an `Option` and a flag stay
    /// meaningful, and the booth must go on (or end) rather than panic in turn.
    fn state(&self) -> std::sync::MutexGuard<'_, (Option<T>, bool)> {
        lock(&self.state)
    }

    /// Returns false once the slot is closed.
    pub fn put(&self, item: T) -> bool {
        let mut s = self.state();
        if !self.lossy {
            while s.0.is_some() && !s.1 {
                s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
            }
        }
        if s.1 {
            return false;
        }
        if s.0.replace(item).is_some() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.cv.notify_all();
        true
    }

    /// Waits for an item; `None` once closed and empty.
    pub fn take(&self) -> Option<T> {
        let mut s = self.state();
        loop {
            if let Some(item) = s.0.take() {
                self.cv.notify_all();
                return Some(item);
            }
            if s.1 {
                return None;
            }
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits at most `wait` for an item.
    pub fn take_within(&self, wait: Duration) -> Taken<T> {
        let deadline = Instant::now() + wait;
        let mut s = self.state();
        loop {
            if let Some(item) = s.0.take() {
                self.cv.notify_all();
                return Taken::Item(item);
            }
            if s.1 {
                return Taken::Closed;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Taken::Nothing;
            }
            s = self
                .cv
                .wait_timeout(s, left)
                .map(|(s, _)| s)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    pub fn close(&self) {
        self.state().1 = true;
        self.cv.notify_all();
    }
}

/// What [`Slot::take_within`] found.
pub enum Taken<T> {
    Item(T),
    /// Nothing arrived in time.
    Nothing,
    /// Closed and empty: the producer is gone.
    Closed,
}

/// Closes its slot when dropped: at a thread's normal end and when it unwinds from a panic, so
/// the other side never waits for a thread that is gone.
struct CloseOnDrop<T>(Arc<Slot<T>>);

impl<T> Drop for CloseOnDrop<T> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// How often the booth loop looks at the stop flag while it waits for a frame.
const POLL: Duration = Duration::from_millis(100);
/// How long the booth waits for its threads at the end before leaving them (one stuck in a
/// driver call ends with the process).
const JOIN_WITHIN: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(String),
    #[error("face detector: {0}")]
    Detector(facekit::FacekitError),
    #[error("frame source: {0}")]
    Source(facekit::FacekitError),
    #[error("display: {0}")]
    Display(#[from] crate::display::DisplayError),
    #[error("cannot start the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
    #[error("the {0} thread panicked (see the message above); exiting so the service restarts")]
    StagePanicked(&'static str),
}

/// What a run did, for the log line at exit and for benchmarks.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub frames: u64,
    pub faces: u64,
    pub swapped: u64,
    pub scored: u64,
    pub errors: u64,
    pub dropped: u64,
    pub camera_lost: u64,
    /// Summed per-stage milliseconds (divide by `frames`).
    pub times: StageTimes,
    pub decode_ms: f64,
    pub draw_ms: f64,
    pub seconds: f64,
    pub mode_changes: u64,
    pub reloads: u64,
}

struct Frame {
    image: RgbImage,
    captured: Instant,
    /// On the stream's clock: a camera's capture time since the booth started, a file's
    /// frame index over `source.fps` (as fast or as slow as the booth plays it).
    seen_at: Duration,
    decode_ms: f64,
}

/// Operator controls the loop watches, and what it reports to.
pub struct Controls {
    pub stop: Arc<AtomicBool>,
    pub reload: Arc<AtomicBool>,
    /// Behind a lock: the booth's workers take turns reading it.
    pub events: Mutex<Receiver<Control>>,
    /// Frames processed so far (for watchdogs and the soak test).
    pub progress: Arc<AtomicU64>,
    /// Told of every frame, so a bundle on trial is confirmed or rolled back.
    pub updates: Option<Arc<Updates>>,
    /// Records scores while the operator calibrates; holds the camera's threshold.
    pub calibrator: Option<Arc<Calibrator>>,
    /// The console's view of the booth: figures, the live image, log lines.
    pub board: Option<Arc<Board>>,
    /// Live-view frames per second at most.
    pub stream_fps: u32,
}

impl Controls {
    /// Controls steered by `events` alone (no console, no updates).
    pub fn new(events: Receiver<Control>) -> Self {
        Self {
            stop: Arc::default(),
            reload: Arc::default(),
            events: Mutex::new(events),
            progress: Arc::default(),
            updates: None,
            calibrator: None,
            board: None,
            stream_fps: 15,
        }
    }
}

fn displays(
    cfg: &DaemonConfig,
    controls: &Controls,
) -> Result<Vec<Box<dyn FrameSink>>, DaemonError> {
    let mut out: Vec<Box<dyn FrameSink>> = Vec::new();
    match cfg.display.kind {
        DisplayKind::Headless => {}
        DisplayKind::Framebuffer => out.push(Box::new(Framebuffer::open(&cfg.display)?)),
        DisplayKind::Lcd => {
            #[cfg(feature = "lcd")]
            out.push(Box::new(crate::display::lcd::Lcd::open(&cfg.display)?));
            #[cfg(not(feature = "lcd"))]
            return Err(DaemonError::Config(
                "display kind = \"lcd\" needs a build with feature `lcd`".into(),
            ));
        }
    }
    if let Some(board) = &controls.board {
        out.push(Box::new(ConsoleSink::new(
            board.clone(),
            controls.stream_fps,
        )));
    }
    if cfg.save_frames {
        out.push(Box::new(PngFrames::new(
            cfg.save_dir.clone(),
            cfg.save_every,
        )?));
    }
    Ok(out)
}

/// Runs the booth until the source ends, `max_frames` is reached or `controls.stop` is set.
/// `last_frame` receives the last displayed frame (for a screenshot).
pub fn run(
    cfg: &DaemonConfig,
    controls: &Controls,
    models: &ModelSlot,
    last_frame: Option<&Mutex<Option<RgbImage>>>,
) -> Result<Stats, DaemonError> {
    let mut pipeline = Pipeline::new(cfg.pipeline.clone()).map_err(DaemonError::Detector)?;
    let threads = cfg.pipeline.threads.max(1);
    facekit::onnx_model::set_threads(threads);
    // Blending spreads rows over rayon's pool; the booth's thread budget covers it too. A
    // second run in the same process keeps the first pool (rayon's global pool is set once).
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
    let outputs = displays(cfg, controls)?;
    let camera = source::is_camera(&cfg.source.input);
    let lossy = cfg.realtime.unwrap_or(camera);
    // Sources open on the capture thread, a file too: opening can block (a FIFO, a stalled
    // network mount), and the booth loop must stay free to notice a stop. A file that cannot be
    // opened still ends the run with its error, through the slot.
    let captured: Arc<Slot<Result<Frame, String>>> = Arc::new(Slot::new(lossy));
    let shown: Arc<Slot<RgbImage>> = Arc::new(Slot::new(lossy));
    let stop = controls.stop.clone();
    let mut locator = pipeline
        .detach_locator()
        .expect("a new pipeline has its face search");
    let capture = spawn_capture(cfg, camera, captured.clone(), stop.clone())?;
    let display = spawn_display(outputs, shown.clone())?;

    let started = Instant::now();
    // Its own lock: any worker that finishes a task pings the watchdog (the booth is turning),
    // without waiting for one that holds the booth to show a frame.
    let service = &Mutex::new(ServiceManager::from_env());
    let booth = Mutex::new(Booth {
        pipeline,
        stats: Stats::default(),
        frame_rate: FrameRate::default(),
        lost_size: (cfg.source.width, cfg.source.height),
        result_error: None,
        finished: false,
    });
    let booth = &booth;
    let render_config = cfg.pipeline.clone();
    // Frames come off the capture thread in order; the operator's controls apply from the next
    // frame on, and each frame keeps the mode and bundle it was taken with.
    let inputs = std::iter::from_fn(|| loop {
        if stop.load(Ordering::Relaxed) || lock(booth).finished {
            return None;
        }
        let item = match captured.take_within(POLL) {
            Taken::Item(item) => item,
            Taken::Closed => return None,
            Taken::Nothing => {
                lock(service).alive();
                let b = &mut *lock(booth);
                steer(controls, &mut b.pipeline, &mut b.stats);
                // No frame: a trial or a calibration may still run out of time.
                if let Some(u) = &controls.updates {
                    u.frame_done(None);
                }
                if let Some(c) = &controls.calibrator {
                    c.observe(None, None);
                }
                continue;
            }
        };
        let b = &mut *lock(booth);
        if controls.reload.swap(false, Ordering::Relaxed) {
            if let Some(dir) = &cfg.bundle {
                b.stats.reloads += 1;
                let _ = models.reload(dir, &cfg.trusted_keys, cfg.pipeline.swap_to.as_deref());
            }
        }
        steer(controls, &mut b.pipeline, &mut b.stats);
        return match item {
            Ok(frame) => {
                // A calibration scores every face, whatever the operator's mode.
                let calibrating = controls.calibrator.as_ref().is_some_and(|c| c.recording());
                let mode = if calibrating {
                    Mode::Detect
                } else {
                    b.pipeline.mode
                };
                Some(Input::Frame(frame, mode, models.current()))
            }
            // Shown in order with the frames before it; searching it finds no face, which
            // ends the track, as a camera that comes back must be searched afresh.
            Err(message) if camera => {
                let (w, h) = b.lost_size;
                Some(Input::Lost(overlay::camera_lost(w, h, &message), message))
            }
            Err(message) => {
                b.result_error = Some(message);
                None
            }
        };
    });
    let rate = cfg.source.fps.max(1) as f32;
    parallel::run(
        cfg.pipeline.workers,
        cfg.pipeline.workers + 1,
        &mut locator,
        rate,
        inputs,
        |input: Input| {
            Some(match input {
                Input::Frame(frame, mode, bundle) => (
                    frame.image,
                    Ok(FrameMeta {
                        captured: frame.captured,
                        seen_at: frame.seen_at,
                        decode_ms: frame.decode_ms,
                        mode,
                        bundle,
                    }),
                ),
                Input::Lost(image, message) => (image, Err(message)),
            })
        },
        |mut image, located, meta| {
            let work = meta.as_ref().ok().map(|m| {
                render_work(
                    &mut image,
                    located,
                    m.bundle.as_deref(),
                    m.mode,
                    &render_config,
                    m.seen_at,
                )
            });
            (image, work, meta)
        },
        || {
            if let Ok(mut service) = service.try_lock() {
                service.alive();
            }
        },
        |d| {
            let (image, work, meta) = d.out;
            let b = &mut *lock(booth);
            if b.finished {
                return;
            }
            let shown_ok = match (meta, work) {
                (Ok(meta), Some(work)) => {
                    let image =
                        b.finish_frame(cfg, controls, service, image, work, meta, last_frame);
                    shown.put(image)
                }
                (Ok(_), None) => true,
                (Err(message), _) => {
                    b.stats.camera_lost += 1;
                    if let Some(board) = &controls.board {
                        board.camera_lost(&message);
                    }
                    lock(service).frame_shown(|| format!("camera lost: {message}"));
                    shown.put(image)
                }
            };
            if !shown_ok || cfg.max_frames.is_some_and(|m| b.stats.frames >= m) {
                b.finished = true;
            }
        },
    );
    let mut b = booth.lock().unwrap_or_else(|e| e.into_inner());
    lock(service).stopping();
    stop.store(true, Ordering::Relaxed);
    captured.close();
    shown.close();
    let capture_ok = join_within(capture, JOIN_WITHIN, "capture");
    let display_ok = join_within(display, JOIN_WITHIN, "display");
    let mut stats = std::mem::take(&mut b.stats);
    stats.dropped =
        captured.dropped.load(Ordering::Relaxed) + shown.dropped.load(Ordering::Relaxed);
    stats.seconds = started.elapsed().as_secs_f64();
    if !capture_ok {
        return Err(DaemonError::StagePanicked("capture"));
    }
    if !display_ok {
        return Err(DaemonError::StagePanicked("display"));
    }
    match b.result_error.take() {
        Some(e) => Err(DaemonError::Source(facekit::FacekitError::Inference(e))),
        None => Ok(stats),
    }
}

/// One captured frame on its way to the workers, or the camera's loss.
enum Input {
    /// With the mode it is to be rendered in and the bundle then serving.
    Frame(Frame, Mode, Option<Arc<LoadedBundle>>),
    /// The "camera lost" screen and its message.
    Lost(RgbImage, String),
}

/// What travels with a frame from capture to display.
struct FrameMeta {
    captured: Instant,
    seen_at: Duration,
    decode_ms: f64,
    mode: Mode,
    bundle: Option<Arc<LoadedBundle>>,
}

/// The frame rate the booth shows: the reciprocal of the smoothed interval between shown
/// frames. Smoothing the rate itself would let two frames the workers finish back to back put
/// thousands of fps on the screen for dozens of frames.
#[derive(Debug, Default)]
struct FrameRate {
    interval: f32,
    /// None before the first frame: the start-up is no frame interval.
    last: Option<Instant>,
}

impl FrameRate {
    /// A frame shown at `now`.
    fn shown(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let dt = now.duration_since(last).as_secs_f32().max(1e-6);
            self.interval = if self.interval == 0.0 {
                dt
            } else {
                0.9 * self.interval + 0.1 * dt
            };
        }
        self.last = Some(now);
    }

    /// The rate so far: 0 until two frames were shown.
    fn fps(&self) -> f32 {
        if self.interval > 0.0 {
            1.0 / self.interval
        } else {
            0.0
        }
    }
}

/// The booth's state that frames pass through in order: smoothing along the track, counts,
/// the frame rate, what the operator last chose.
struct Booth {
    pipeline: Pipeline,
    stats: Stats,
    frame_rate: FrameRate,
    /// The size of the last frame, for the "camera lost" screen.
    lost_size: (u32, u32),
    result_error: Option<String>,
    /// The display closed or `max_frames` were shown: take no more frames.
    finished: bool,
}

impl Booth {
    /// Settles a rendered frame (score smoothing along the track), draws the overlay and
    /// reports it; returns the image to show.
    #[allow(clippy::too_many_arguments)]
    fn finish_frame(
        &mut self,
        cfg: &DaemonConfig,
        controls: &Controls,
        service: &Mutex<ServiceManager>,
        mut image: RgbImage,
        work: Rendered,
        meta: FrameMeta,
        last_frame: Option<&Mutex<Option<RgbImage>>>,
    ) -> RgbImage {
        self.lost_size = image.dimensions();
        let bundle = meta.bundle;
        // The overlay names the mode the frame was rendered in (a calibration's Detect).
        let chosen_mode = self.pipeline.mode;
        self.pipeline.mode = meta.mode;
        let mut r = self.pipeline.settle(work);
        let t = Instant::now();
        self.frame_rate.shown(t);
        if let Some(e) = &r.error {
            self.stats.errors += 1;
            tracing::error!("frame {}: {e}", self.stats.frames);
        }
        let latency_ms = meta.captured.elapsed().as_secs_f32() * 1e3;
        let in_force = in_force(cfg, controls, bundle.as_deref());
        let threshold = (in_force.threshold, in_force.source);
        // A calibrated camera's own check decides what the booth shows (the detector's score
        // is one of its features); a calibration in progress records the score without it.
        let detector_score = r.score;
        let features = r
            .cues
            .zip(r.score)
            .map(|(c, score)| c.cues.camera_features(score));
        if let (Some(check), Some(features)) = (&in_force.camera, &features) {
            r.score = check.score(features, threshold.0).or(r.score);
        }
        let hud = hud(
            &self.pipeline,
            bundle.as_deref(),
            &r,
            self.frame_rate.fps(),
            latency_ms,
            threshold.0,
        );
        overlay::draw(&mut image, &hud);
        let draw_ms = t.elapsed().as_secs_f64() * 1e3;
        self.stats.draw_ms += draw_ms;
        if let Some(u) = &controls.updates {
            u.frame_done(Some(&r));
        }
        if let Some(c) = &controls.calibrator {
            c.observe(detector_score, features);
        }
        if let Some(board) = &controls.board {
            board.frame(FrameReport {
                result: &r,
                mode: self.pipeline.mode,
                fps: self.frame_rate.fps(),
                latency_ms,
                decode_ms: meta.decode_ms,
                draw_ms,
                threshold,
            });
        }
        self.pipeline.mode = chosen_mode;
        self.stats.decode_ms += meta.decode_ms;
        self.stats.count(&r);
        controls
            .progress
            .store(self.stats.frames, Ordering::Relaxed);
        if let Some(slot) = last_frame {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(image.clone());
        }
        let fps = self.frame_rate.fps();
        let mode = self.pipeline.mode;
        lock(service).frame_shown(|| {
            format!(
                "{} mode, {fps:.1} fps, bundle {}",
                mode.name(),
                bundle
                    .as_ref()
                    .map_or("none (faces only)", |b| b.version.as_str())
            )
        });
        image
    }
}

/// Waits up to `wait` for a thread; `false` only when it panicked. A thread still busy then
/// (a camera call that does not return) is left to end with the process.
fn join_within(handle: std::thread::JoinHandle<()>, wait: Duration, name: &str) -> bool {
    let deadline = Instant::now() + wait;
    while !handle.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if !handle.is_finished() {
        tracing::warn!("the {name} thread did not stop within {wait:?}; leaving it");
        return true;
    }
    handle.join().is_ok()
}

impl Stats {
    /// Adds one processed frame's outcome and stage times.
    fn count(&mut self, r: &FrameResult) {
        self.frames += 1;
        self.faces += r.face.is_some() as u64;
        self.swapped += r.swapped as u64;
        self.scored += r.score.is_some() as u64;
        let times = &mut self.times;
        times.detect += r.times.detect;
        times.align += r.times.align;
        times.swap += r.times.swap;
        times.blend += r.times.blend;
        times.score += r.times.score;
    }
}

/// Applies the operator's button presses and quit requests.
fn steer(controls: &Controls, pipeline: &mut Pipeline, stats: &mut Stats) {
    let events = lock(&controls.events);
    while let Ok(event) = events.try_recv() {
        match event {
            Control::NextMode => {
                pipeline.mode = pipeline.mode.next();
                stats.mode_changes += 1;
                tracing::info!("mode: {}", pipeline.mode.name());
            }
            Control::SetMode(mode) => {
                if pipeline.mode != mode {
                    pipeline.mode = mode;
                    stats.mode_changes += 1;
                    tracing::info!("mode: {}", pipeline.mode.name());
                }
            }
            Control::Quit => controls.stop.store(true, Ordering::Relaxed),
        }
    }
}

/// The fake threshold in use: this camera's calibration, the config's, the bundle's.
fn in_force(cfg: &DaemonConfig, controls: &Controls, bundle: Option<&LoadedBundle>) -> InForce {
    let manifest = bundle.map(|b| &b.manifest);
    match &controls.calibrator {
        Some(c) => c.in_force(cfg.pipeline.fake_threshold, manifest),
        None => InForce::without_calibration(cfg.pipeline.fake_threshold, manifest),
    }
}

/// What the overlay shows for one processed frame.
fn hud(
    pipeline: &Pipeline,
    bundle: Option<&LoadedBundle>,
    r: &FrameResult,
    fps: f32,
    latency_ms: f32,
    threshold: f32,
) -> Hud {
    let warning = match (bundle, pipeline.mode) {
        (None, m) if m.swaps() || m.scores() => Some("no bundle: showing faces only".into()),
        (Some(b), m) if m.scores() && b.detector.is_none() => Some("bundle has no detector".into()),
        _ => r.error.clone(),
    };
    Hud {
        mode: Some(pipeline.mode),
        fps,
        latency_ms,
        model: bundle.map(|b| b.version.clone()).unwrap_or_default(),
        score: r.score.map(|s| (s, threshold)),
        cues: r.cues,
        face: r.face.clone(),
        warning,
        synthetic: pipeline.mode.swaps() && bundle.is_some_and(|b| b.swap.is_some()),
    }
}

/// The capture thread: frames (or "lost" messages) into `slot` until the source ends or
/// `stop` is set. A lost camera is reopened with backoff; a failed file ends the run.
fn spawn_capture(
    cfg: &DaemonConfig,
    camera: bool,
    slot: Arc<Slot<Result<Frame, String>>>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, DaemonError> {
    let src_cfg = cfg.source.clone();
    std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || {
            let _close = CloseOnDrop(slot.clone());
            let frame_time = Duration::from_secs_f64(1.0 / f64::from(src_cfg.fps.max(1)));
            // A paced file arrives like a camera: one frame every 1/fps, never in a burst.
            let pace = (src_cfg.pace && !camera).then_some(frame_time);
            let mut next = Instant::now();
            let started = next;
            let mut frames = 0u32;
            let mut source = Reconnecting::new(Box::new(move || source::open(&src_cfg)));
            while !stop.load(Ordering::Relaxed) {
                if let Some(every) = pace {
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    }
                    next = next.max(now) + every;
                }
                let t = Instant::now();
                let item = match source.capture() {
                    Captured::Frame(image) => {
                        let decode_ms = t.elapsed().as_secs_f64() * 1e3;
                        let seen_at = if camera {
                            t - started
                        } else {
                            frame_time * frames
                        };
                        frames = frames.saturating_add(1);
                        Ok(Frame {
                            image,
                            captured: t,
                            seen_at,
                            decode_ms,
                        })
                    }
                    Captured::End => break,
                    Captured::Lost {
                        retry_in,
                        error,
                        fresh,
                    } => {
                        if !camera {
                            let _ = slot.put(Err(format!("source failed: {error}")));
                            break;
                        }
                        if fresh {
                            tracing::warn!(
                                "camera lost: {error}; retrying in {:.1} s",
                                retry_in.as_secs_f32()
                            );
                        }
                        std::thread::sleep(retry_in.min(Duration::from_millis(500)));
                        Err(format!(
                            "{error}; retrying in {:.1} s",
                            retry_in.as_secs_f32()
                        ))
                    }
                };
                if !slot.put(item) {
                    break;
                }
            }
        })
        .map_err(|e| DaemonError::Thread("capture", e))
}

/// The display thread: every frame of `slot` to every output.
fn spawn_display(
    mut outputs: Vec<Box<dyn FrameSink>>,
    slot: Arc<Slot<RgbImage>>,
) -> Result<std::thread::JoinHandle<()>, DaemonError> {
    std::thread::Builder::new()
        .name("display".into())
        .spawn(move || {
            let _close = CloseOnDrop(slot.clone());
            while let Some(frame) = slot.take() {
                for out in outputs.iter_mut() {
                    if let Err(e) = out.show(&frame) {
                        tracing::error!("display: {e}");
                    }
                }
            }
        })
        .map_err(|e| DaemonError::Thread("display", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_rate_shrugs_off_frames_shown_back_to_back() {
        let mut rate = FrameRate::default();
        let start = Instant::now();
        rate.shown(start);
        assert_eq!(rate.fps(), 0.0, "one frame is no rate");
        // 30 fps, but every tenth frame the workers hand over two at once.
        let mut at = start;
        let mut shown = Vec::new();
        for i in 1..=60 {
            at += if i % 10 == 0 {
                Duration::from_micros(10)
            } else {
                Duration::from_millis(33)
            };
            rate.shown(at);
            shown.push(rate.fps());
        }
        assert!(
            shown.iter().all(|&fps| (25.0..=40.0).contains(&fps)),
            "{shown:?}"
        );
    }

    #[test]
    fn a_thread_that_panics_closes_its_slot_and_is_reported() {
        let slot: Arc<Slot<u32>> = Arc::new(Slot::new(false));
        let handle = {
            let slot = slot.clone();
            std::thread::spawn(move || {
                let _close = CloseOnDrop(slot.clone());
                slot.put(1);
                panic!("a stage failed");
            })
        };
        assert!(matches!(slot.take_within(POLL * 20), Taken::Item(1)));
        // The panic unwound through the guard: the consumer is told, it does not wait forever.
        assert!(matches!(slot.take_within(POLL * 20), Taken::Closed));
        assert!(!join_within(handle, JOIN_WITHIN, "test"));
        // A thread that keeps running is left, not waited for.
        let stuck = std::thread::spawn(|| std::thread::sleep(Duration::from_secs(30)));
        let t = Instant::now();
        assert!(join_within(stuck, Duration::from_millis(200), "stuck"));
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn waiting_for_a_frame_gives_up_in_time() {
        let slot: Slot<u32> = Slot::new(true);
        let t = Instant::now();
        assert!(matches!(slot.take_within(POLL), Taken::Nothing));
        assert!(t.elapsed() < POLL * 5);
    }
}
