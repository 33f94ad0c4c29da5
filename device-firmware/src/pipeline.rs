//! One frame through the booth: follow the visitor's face (a whole-frame search every N frames,
//! a small crop around the last box in between: `facekit::face_detection::track`), smooth the
//! landmarks, align with the bundle's crop spec, then swap and/or score according to the mode.
//! Any failure leaves the frame as it came in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use facekit::face_detection::track::detect_largest;
use facekit::face_detection::{Levels, Search, TrackPolicy, Tracked, Tracker};
use facekit::forensics::{flicker, Cues};
use facekit::smooth::OneEuro;
use facekit::{align_face, Detection, FaceDetectorConfig, RetinaFace};
use image::RgbImage;

use crate::config::{Mode, PipelineConfig};
use crate::models::LoadedBundle;

/// Milliseconds spent in each stage of one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    pub detect: f64,
    pub align: f64,
    pub swap: f64,
    pub blend: f64,
    pub score: f64,
}

/// What happened to one frame.
#[derive(Debug, Clone, Default)]
pub struct FrameResult {
    /// The face used (smoothed landmarks), if any.
    pub face: Option<Detection>,
    pub detected: bool,
    /// How the face was looked for on this frame.
    pub search: Option<Search>,
    pub swapped: bool,
    /// Fake probability smoothed along the track.
    pub score: Option<f32>,
    /// The hand-made forensic cues of the scored face, smoothed along the track like the score.
    pub cues: Option<BoothCues>,
    pub times: StageTimes,
    pub error: Option<String>,
}

/// The cues `detect` reports, for the booth: per-crop [`Cues`] and flicker against the previous
/// scored crop of the same track (none on a track's first frame).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BoothCues {
    pub cues: Cues,
    pub flicker: Option<f32>,
}

/// The first half of a frame: where the face is. Sequential by nature (each frame's search
/// starts from the last box), cheap, and kept apart from the swap so that two cores can work
/// on consecutive frames (`locate` of frame n+1 while frame n is swapped).
pub struct Locator {
    face_detector: Arc<RetinaFace>,
    smoother: OneEuro,
    tracker: Tracker,
}

/// The periodic whole-frame search of one frame, to run beside the track
/// ([`Locator::locate_deferring_full`]).
pub struct WholeFrameSearch {
    detector: Arc<RetinaFace>,
    width: u32,
}

impl WholeFrameSearch {
    /// The largest face in `frame`; nothing when the detector fails (the track goes on).
    pub fn run(&self, frame: &RgbImage) -> Option<Detection> {
        detect_largest(&self.detector, frame, self.width).unwrap_or_else(|e| {
            tracing::warn!("whole-frame search beside the track failed: {e}");
            None
        })
    }
}

/// What [`Locator::locate`] found on one frame.
#[derive(Debug, Clone, Default)]
pub struct Located {
    /// The face with smoothed landmarks.
    pub face: Option<Detection>,
    pub detected: bool,
    pub search: Option<Search>,
    /// Another face than the last frame's is followed from this frame on (a new visitor).
    pub new_face: bool,
    pub detect_ms: f64,
    pub error: Option<String>,
}

/// The booth's settings as a tracking policy.
fn track_policy(config: &PipelineConfig) -> TrackPolicy {
    TrackPolicy {
        full_every: config.detect_every,
        crop_size: config.track_size,
        detect_width: config.detect_width,
        ..Default::default()
    }
}

impl Locator {
    pub fn new(config: &PipelineConfig) -> facekit::Result<Self> {
        let face_detector = RetinaFace::load(
            &config.face_detector,
            FaceDetectorConfig {
                score_threshold: config.score_threshold,
                ..Default::default()
            },
        )?;
        // The tracking crop's plan now, not on the second frame (after the service said READY,
        // where it stalled the frame loop and its watchdog pings).
        if config.track_size > 0 {
            face_detector.prepare(config.track_size, config.track_size, Levels::Coarse)?;
        }
        Ok(Self {
            face_detector: Arc::new(face_detector),
            smoother: OneEuro::new(config.smooth_cutoff, config.smooth_beta),
            tracker: Tracker::new(track_policy(config)),
        })
    }

    /// Forgets the face: the next frame is searched in full.
    pub fn reset(&mut self) {
        self.tracker.reset();
        self.smoother.reset();
    }

    /// Follows the face into `frame`; `rate` is the frame rate the smoother assumes.
    pub fn locate(&mut self, frame: &RgbImage, rate: f32) -> Located {
        let t = Instant::now();
        let tracked = self.tracker.next(&self.face_detector, frame);
        self.smooth(tracked, t, rate)
    }

    /// Like [`Locator::locate`], but when the periodic whole-frame search is due while a face
    /// is followed, this frame gets the crop search and the whole-frame search comes back to be
    /// run elsewhere (on another core, off the chain of searches every frame waits on); hand
    /// its result to [`Locator::adopt_full`].
    pub fn locate_deferring_full(
        &mut self,
        frame: &RgbImage,
        rate: f32,
    ) -> (Located, Option<WholeFrameSearch>) {
        let t = Instant::now();
        let (tracked, deferred) = match self.tracker.next_deferring_full(&self.face_detector, frame)
        {
            Ok((tracked, deferred)) => (Ok(tracked), deferred),
            Err(e) => (Err(e), false),
        };
        let search = deferred.then(|| WholeFrameSearch {
            detector: self.face_detector.clone(),
            width: self.tracker.policy.detect_width,
        });
        (self.smooth(tracked, t, rate), search)
    }

    /// Takes in a [`WholeFrameSearch`] run beside the track: a nearer visitor it found
    /// becomes the face followed from the next frame on.
    pub fn adopt_full(&mut self, found: Option<Detection>) {
        if self.tracker.adopt_full(found) {
            self.smoother.reset();
        }
    }

    fn smooth(&mut self, tracked: facekit::Result<Tracked>, t: Instant, rate: f32) -> Located {
        let mut out = Located::default();
        let raw = match tracked {
            Ok(tracked) => {
                out.detected = tracked.face.is_some() && tracked.search != Search::Held;
                out.search = Some(tracked.search);
                out.new_face = tracked.new_face;
                if tracked.new_face {
                    // Not a blend of the last visitor's landmarks into this one's.
                    self.smoother.reset();
                }
                tracked.face
            }
            Err(e) => {
                out.error = Some(format!("detection failed: {e}"));
                None
            }
        };
        out.detect_ms = ms(t);
        let Some(raw) = raw else {
            self.smoother.reset();
            return out;
        };
        let flat: Vec<f32> = raw.landmarks.iter().flatten().copied().collect();
        let s = self.smoother.filter(&flat, rate);
        out.face = Some(Detection {
            landmarks: std::array::from_fn(|i| [s[2 * i], s[2 * i + 1]]),
            ..raw
        });
        out
    }
}

pub struct Pipeline {
    /// `None` once [`Pipeline::detach_locator`] moved the face search to another thread.
    locator: Option<Locator>,
    pub config: PipelineConfig,
    pub mode: Mode,
    score: Option<f32>,
    cues: Option<BoothCues>,
    /// The last scored crop of the track, for flicker.
    previous_crop: Option<RgbImage>,
    /// Stream time of the next frame [`Pipeline::process`] takes (one `1/rate` per frame).
    clock: Duration,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The swap of one located face into `frame` with the bundle's swap model: align, swap, blend.
/// Stateless, so workers on several cores can swap consecutive frames. Returns whether the
/// face was swapped (a face too close to the edge to align is not); an inference error leaves
/// the frame as it was.
pub fn swap_face(
    frame: &mut RgbImage,
    face: &Detection,
    bundle: &LoadedBundle,
    blend: &facekit::blend::BlendOptions,
    seen_at: Duration,
    times: &mut StageTimes,
) -> Result<bool, String> {
    let Some((_, swapper)) = &bundle.swap else {
        return Ok(false);
    };
    let t = Instant::now();
    let aligned = align_face(frame, &face.landmarks, bundle.crop());
    times.align += ms(t);
    let Some(aligned) = aligned else {
        return Ok(false);
    };
    let t = Instant::now();
    let swapped = swapper.swap_seen_at(&aligned.image, seen_at);
    times.swap = ms(t);
    let (rgb, mask) = swapped.map_err(|e| format!("swap failed, frame passed through: {e}"))?;
    let t = Instant::now();
    let mask = facekit::swap::blend_mask(&mask, &aligned, blend.mask);
    facekit::blend::paste_back(frame, &rgb, &mask, &aligned.image, &aligned.to_crop, blend);
    times.blend = ms(t);
    Ok(true)
}

impl Pipeline {
    pub fn new(config: PipelineConfig) -> facekit::Result<Self> {
        Ok(Self {
            locator: Some(Locator::new(&config)?),
            mode: config.mode,
            config,
            score: None,
            cues: None,
            previous_crop: None,
            clock: Duration::ZERO,
        })
    }

    /// Forgets the followed face (a new visitor, a restarted clip).
    pub fn reset_track(&mut self) {
        if let Some(locator) = &mut self.locator {
            locator.reset();
        }
    }

    /// Hands the face search over to run elsewhere (the booth's workers take turns with it,
    /// `crate::parallel`); from then on frames come in through [`render_work`] and
    /// [`Pipeline::settle`] with what it found.
    pub fn detach_locator(&mut self) -> Option<Locator> {
        self.locator.take()
    }

    /// Processes `frame` in place. `rate` is the frame rate the smoother assumes.
    pub fn process(
        &mut self,
        frame: &mut RgbImage,
        bundle: Option<&LoadedBundle>,
        rate: f32,
    ) -> FrameResult {
        let located = match &mut self.locator {
            Some(locator) => locator.locate(frame, rate),
            None => Located {
                error: Some("the face search runs elsewhere: use render_work and settle".into()),
                ..Default::default()
            },
        };
        let seen_at = self.clock;
        self.clock += Duration::from_secs_f32(1.0 / rate.max(1e-3));
        let work = render_work(frame, located, bundle, self.mode, &self.config, seen_at);
        self.settle(work)
    }

    /// Smooths a [`render_work`]'s score and cues along the track (frames in order).
    pub fn settle(&mut self, work: Rendered) -> FrameResult {
        let mut out = work.result;
        if out.face.is_none() {
            self.score = None;
            self.cues = None;
            self.previous_crop = None;
            return out;
        }
        let Some(scored) = work.scored else {
            return out;
        };
        let k = self.config.score_smoothing.clamp(0.0, 0.99);
        let ema = |old: f32, new: f32| k * old + (1.0 - k) * new;
        let smoothed = self.score.map_or(scored.p, |old| ema(old, scored.p));
        self.score = Some(smoothed);
        out.score = Some(smoothed);
        let now = BoothCues {
            cues: scored.cues,
            flicker: self
                .previous_crop
                .as_ref()
                .map(|prev| flicker(prev, &scored.crop, &scored.landmarks)),
        };
        let smoothed = match self.cues {
            Some(old) => BoothCues {
                cues: old.cues.smoothed(now.cues, k),
                flicker: match (old.flicker, now.flicker) {
                    (Some(o), Some(n)) => Some(ema(o, n)),
                    (_, n) => n,
                },
            },
            None => now,
        };
        self.cues = Some(smoothed);
        out.cues = Some(smoothed);
        self.previous_crop = Some(scored.crop);
        out
    }
}

/// A frame's render before the smoothing along the track ([`Pipeline::settle`]).
pub struct Rendered {
    /// Everything but `score` and `cues`.
    pub result: FrameResult,
    scored: Option<Scored>,
}

/// One scored face: its fake score (the network with the blur check), aligned crop and cues,
/// unsmoothed.
struct Scored {
    p: f32,
    crop: RgbImage,
    landmarks: [[f32; 2]; 5],
    cues: Cues,
}

/// Swaps and/or scores the located face in `frame` according to `mode`. Depends on nothing
/// but its arguments (and the swap's visitor, fed in stream time `seen_at`), so consecutive
/// frames can be rendered on several cores and settled in order afterwards.
pub fn render_work(
    frame: &mut RgbImage,
    located: Located,
    bundle: Option<&LoadedBundle>,
    mode: Mode,
    config: &PipelineConfig,
    seen_at: Duration,
) -> Rendered {
    let mut out = FrameResult {
        detected: located.detected,
        search: located.search,
        error: located.error,
        ..Default::default()
    };
    out.times.detect = located.detect_ms;
    out.face = located.face.clone();
    let (Some(face), Some(bundle)) = (located.face, bundle) else {
        return Rendered {
            result: out,
            scored: None,
        };
    };
    if located.new_face {
        if let Some((_, swapper)) = &bundle.swap {
            swapper.new_visitor();
        }
    }
    if mode.swaps() {
        match swap_face(frame, &face, bundle, &config.blend, seen_at, &mut out.times) {
            Ok(swapped) => out.swapped = swapped,
            Err(e) => out.error = Some(e),
        }
    }
    let mut scored = None;
    if let (true, Some(detector)) = (mode.scores(), &bundle.detector) {
        let t = Instant::now();
        match detector.network.examine(frame, &face.landmarks) {
            Ok(Some(examined)) => {
                scored = Some(Scored {
                    p: detector.score(examined.network, &examined.cues),
                    cues: examined.cues,
                    crop: examined.aligned.image,
                    landmarks: examined.aligned.landmarks,
                })
            }
            Ok(None) => out.error = Some("scoring failed: face cannot be aligned".into()),
            Err(e) => out.error = Some(format!("scoring failed: {e}")),
        }
        out.times.score = ms(t);
    }
    Rendered {
        result: out,
        scored,
    }
}
