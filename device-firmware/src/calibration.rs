//! The fake detector's threshold measured on this booth's camera. A detector trained on other
//! cameras scores this camera's real visitors higher or lower than it did at home (see the
//! detector issue's figures); the operator records a few seconds of real visitors and the
//! threshold is set so that only the chosen fraction of those real frames would be called FAKE.
//!
//! The same recording fits this camera's check ([`CameraCheck`]): how its real faces' forensic
//! cues (texture against the surround, seams, mouth) and the detector's scores of them vary
//! together. A face pasted in from elsewhere (a phone fake held up to the booth) breaks that
//! balance, sharper or softer, even where it looks ordinary against the cameras the detector
//! trained on (the detector report's camera-calibration cells). Once fitted, the check's
//! verdict is the booth's.
//!
//! The result is kept per camera in `<state>/calibration/<camera>.toml`, tied to the detector
//! file's sha256: a new detector needs a new calibration. Precedence when the booth scores a
//! face: this calibration, then `pipeline.fake_threshold` from the config, then the bundle's.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;
use facekit::forensics::CAMERA_FEATURES;
use serde::{Deserialize, Serialize};
use shared_proto::bundle::{Manifest, ModelKind, DEFAULT_FAKE_THRESHOLD};
use shared_proto::{threshold_at, CameraCheck};

/// Fewer scored frames than this cannot place a threshold at a false-alarm rate of a few %.
pub const MIN_FRAMES: usize = 20;
/// The longest recording the console may ask for.
pub const MAX_SECONDS: u64 = 120;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub camera: String,
    pub threshold: f32,
    pub false_alarm_rate: f32,
    /// Scored frames it was measured on.
    pub frames: usize,
    /// sha256 of the detector file it belongs to.
    pub detector_sha256: String,
    pub measured: String,
    /// This camera's real faces' cues and scores, fitted on the first half of the recording,
    /// its alarm on the second half (absent in calibrations saved before it, or with too few
    /// faces; the earlier sharpness-only check under `camera_check` is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub texture_check: Option<CameraCheck>,
}

impl Calibration {
    /// The camera check this booth can score with: a valid one over this booth's features (a
    /// check saved by an earlier booth over fewer features is left out until the operator
    /// calibrates again; its threshold still holds).
    pub fn check(&self) -> Option<&CameraCheck> {
        self.texture_check
            .as_ref()
            .filter(|c| c.is_valid() && c.features() == CAMERA_FEATURES)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("a calibration is already running")]
    Busy,
    #[error("the bundle in service has no fake detector to calibrate")]
    NoDetector,
    #[error("seconds must be 1 to {MAX_SECONDS} and false_alarm_rate between 0.001 and 0.5")]
    BadRequest,
    #[error("only {0} frames with a face were scored (at least {MIN_FRAMES} needed): have a visitor face the camera and try again")]
    TooFewFaces(usize),
    #[error("the booth stopped before the calibration finished")]
    Interrupted,
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the threshold in use came from (shown on the console).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ThresholdSource {
    Calibration,
    Config,
    Bundle,
    Default,
}

/// How the booth scores faces on this camera now ([`Calibrator::in_force`]).
#[derive(Debug, Clone, PartialEq)]
pub struct InForce {
    pub threshold: f32,
    pub source: ThresholdSource,
    pub camera: Option<CameraCheck>,
}

impl InForce {
    /// No calibration applies: the config's threshold, else the bundle's, else the default;
    /// no camera check.
    pub fn without_calibration(config: Option<f32>, bundle: Option<&Manifest>) -> Self {
        let bundle_threshold =
            bundle.and_then(|m| m.model(ModelKind::Detector, None).and_then(|d| d.threshold));
        let (threshold, source) = match (config, bundle_threshold) {
            (Some(t), _) => (t, ThresholdSource::Config),
            (None, Some(t)) => (t, ThresholdSource::Bundle),
            (None, None) => (DEFAULT_FAKE_THRESHOLD, ThresholdSource::Default),
        };
        Self {
            threshold,
            source,
            camera: None,
        }
    }
}

type Reply = tokio::sync::oneshot::Sender<Result<Calibration, CalibrationError>>;

struct Recording {
    until: Instant,
    false_alarm_rate: f32,
    detector_sha256: String,
    scores: Vec<f32>,
    /// The camera features of each scored face (`Cues::camera_features`).
    features: Vec<[f32; CAMERA_FEATURES]>,
    reply: Reply,
}

/// One camera's calibration: the saved one and a recording in progress.
pub struct Calibrator {
    file: PathBuf,
    camera: String,
    saved: Mutex<Option<Calibration>>,
    recording: Mutex<Option<Recording>>,
}

/// A file name for the camera: `/dev/video0` → `dev-video0`.
pub fn camera_id(input: &Path) -> String {
    let id: String = input
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let id = id.trim_matches('-').to_string();
    if id.is_empty() {
        "camera".into()
    } else {
        id
    }
}

/// The sha256 of the bundle's detector file, if it has one.
pub fn detector_sha256(manifest: &Manifest) -> Option<String> {
    let entry = manifest.model(ModelKind::Detector, None)?;
    manifest
        .files
        .iter()
        .find(|f| f.path == entry.file)
        .map(|f| f.sha256.clone())
}

impl Calibrator {
    /// Loads `<dir>/<camera>.toml` if a calibration was saved (an unreadable one is ignored
    /// with a warning: the booth then uses the config's or the bundle's threshold).
    pub fn open(dir: &Path, camera: String) -> Self {
        let file = dir.join(format!("{camera}.toml"));
        let saved = match std::fs::read_to_string(&file) {
            Ok(text) => match toml::from_str::<Calibration>(&text) {
                Ok(c) if (0.0..=1.0).contains(&c.threshold) => Some(c),
                Ok(_) | Err(_) => {
                    tracing::warn!("{}: not a usable calibration; ignored", file.display());
                    None
                }
            },
            Err(_) => None,
        };
        Self {
            file,
            camera,
            saved: Mutex::new(saved),
            recording: Mutex::new(None),
        }
    }

    pub fn saved(&self) -> Option<Calibration> {
        lock(&self.saved).clone()
    }

    pub fn recording(&self) -> bool {
        lock(&self.recording).is_some()
    }

    /// The threshold to use with this bundle, and where it came from.
    pub fn threshold(
        &self,
        config: Option<f32>,
        bundle: Option<&Manifest>,
    ) -> (f32, ThresholdSource) {
        let in_force = self.in_force(config, bundle);
        (in_force.threshold, in_force.source)
    }

    /// What scores this bundle's faces on this camera (one look at the calibration per frame):
    /// the threshold, and the camera's check when its calibration belongs to the bundle's
    /// detector.
    pub fn in_force(&self, config: Option<f32>, bundle: Option<&Manifest>) -> InForce {
        let sha = bundle.and_then(detector_sha256);
        if let (Some(c), Some(sha)) = (lock(&self.saved).as_ref(), sha) {
            if c.detector_sha256 == sha {
                return InForce {
                    threshold: c.threshold,
                    source: ThresholdSource::Calibration,
                    camera: c.check().cloned(),
                };
            }
        }
        InForce::without_calibration(config, bundle)
    }

    /// Starts recording for `seconds`; the receiver gets the result once the booth has seen
    /// that much. The booth scores every face meanwhile (it switches to detect mode).
    pub fn start(
        &self,
        seconds: u64,
        false_alarm_rate: f32,
        bundle: Option<&Manifest>,
    ) -> Result<
        tokio::sync::oneshot::Receiver<Result<Calibration, CalibrationError>>,
        CalibrationError,
    > {
        if !(1..=MAX_SECONDS).contains(&seconds) || !(0.001..=0.5).contains(&false_alarm_rate) {
            return Err(CalibrationError::BadRequest);
        }
        let sha = bundle
            .and_then(detector_sha256)
            .ok_or(CalibrationError::NoDetector)?;
        let mut recording = lock(&self.recording);
        if recording.is_some() {
            return Err(CalibrationError::Busy);
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        *recording = Some(Recording {
            until: Instant::now() + Duration::from_secs(seconds),
            false_alarm_rate,
            detector_sha256: sha,
            scores: Vec::new(),
            features: Vec::new(),
            reply,
        });
        tracing::info!("calibrating the fake detector for {seconds} s at a false-alarm rate of {false_alarm_rate}");
        Ok(rx)
    }

    /// Called by the booth loop after each frame with the face's score and camera features (if
    /// one was scored).
    pub fn observe(&self, score: Option<f32>, features: Option<[f32; CAMERA_FEATURES]>) {
        let mut recording = lock(&self.recording);
        let Some(r) = recording.as_mut() else {
            return;
        };
        r.scores.extend(score.filter(|s| s.is_finite()));
        r.features
            .extend(features.filter(|f| f.iter().all(|v| v.is_finite())));
        if Instant::now() < r.until {
            return;
        }
        let Some(r) = recording.take() else {
            return;
        };
        drop(recording);
        let result = self.finish(&r);
        match &result {
            Ok(c) => tracing::info!(
                "calibrated: threshold {:.3} on {} frames ({})",
                c.threshold,
                c.frames,
                self.file.display()
            ),
            Err(e) => tracing::warn!("calibration failed: {e}"),
        }
        let _ = r.reply.send(result);
    }

    fn finish(&self, r: &Recording) -> Result<Calibration, CalibrationError> {
        if r.scores.len() < MIN_FRAMES {
            return Err(CalibrationError::TooFewFaces(r.scores.len()));
        }
        let threshold =
            threshold_at(&r.scores, r.false_alarm_rate).ok_or(CalibrationError::TooFewFaces(0))?;
        // Early faces fit the check, late ones place its alarm (as the host's report does).
        let (early, late) = r.features.split_at(r.features.len() / 2);
        let texture_check = CameraCheck::fit(early, late, r.false_alarm_rate);
        let calibration = Calibration {
            camera: self.camera.clone(),
            threshold,
            false_alarm_rate: r.false_alarm_rate,
            frames: r.scores.len(),
            detector_sha256: r.detector_sha256.clone(),
            measured: chrono::Utc::now().to_rfc3339(),
            texture_check,
        };
        let text = toml::to_string(&calibration).unwrap_or_default();
        let io = |source| CalibrationError::Io {
            path: self.file.clone(),
            source,
        };
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &self.file))
            .map_err(io)?;
        *lock(&self.saved) = Some(calibration.clone());
        Ok(calibration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_of_real_faces_fits_the_camera_check_and_saves_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = Calibrator::open(dir.path(), "cam".into());
        let (reply, _rx) = tokio::sync::oneshot::channel();
        *lock(&c.recording) = Some(Recording {
            until: Instant::now(),
            false_alarm_rate: 0.05,
            detector_sha256: "ab".into(),
            scores: Vec::new(),
            features: Vec::new(),
            reply,
        });
        // 60 real faces whose cues wander a little (several features together, as a face
        // turning to the light does) and whose scores stay near 0.1; the recording ends with
        // the first frame observed after its time is up.
        let face = |a: f32, b: f32, c: f32| {
            let mut f = [0.0; CAMERA_FEATURES];
            f[..6].copy_from_slice(&[a, 0.8 * a, 0.5 * a, b, c, 0.3 * b]);
            f[CAMERA_FEATURES - 1] = -2.2 + 0.1 * c;
            f
        };
        let faces: Vec<[f32; CAMERA_FEATURES]> = (0..60)
            .map(|i| {
                let t = i as f32 * 0.7;
                face(0.2 * t.sin(), 0.1 * (1.3 * t).cos(), 0.1 * (2.1 * t).sin())
            })
            .collect();
        {
            let mut r = lock(&c.recording);
            let r = r.as_mut().unwrap();
            r.scores = vec![0.1; 59];
            r.features = faces[..59].to_vec();
        }
        c.observe(Some(0.1), Some(faces[59]));
        assert!(!c.recording());
        let saved = c.saved().expect("calibrated");
        let check = saved.texture_check.clone().expect("a camera check");
        assert_eq!(saved.frames, 60);
        assert_eq!(saved.check(), Some(&check));
        // Real faces pass; a face from a much sharper or much softer camera is called fake.
        let score = |f: &[f32]| check.score(f, 0.5).unwrap();
        assert!(faces.iter().all(|f| score(f) < 0.5));
        assert!(score(&face(-1.0, 0.0, 0.0)) > 0.9);
        assert!(score(&face(1.0, 0.0, 0.0)) > 0.9);
        // It comes back from the file, for this detector only.
        let again = Calibrator::open(dir.path(), "cam".into());
        assert_eq!(again.saved().as_ref(), Some(&saved));
        // A calibration saved before the camera check, or with the earlier sharpness-only
        // check, still loads its threshold, without a check.
        let before = "camera = \"old\"\nthreshold = 0.3\nfalse_alarm_rate = 0.05\nframes = 30\n\
             detector_sha256 = \"ab\"\nmeasured = \"2026-11-01T00:00:00Z\"\n";
        let sharpness_only =
            format!("{before}[camera_check]\ncentre = 0.1\nscale = 0.2\nalarm = 2.5\n");
        for (name, text) in [("old", before.to_string()), ("older", sharpness_only)] {
            std::fs::write(dir.path().join(format!("{name}.toml")), text).unwrap();
            let old = Calibrator::open(dir.path(), name.into()).saved().unwrap();
            assert_eq!((old.threshold, old.texture_check), (0.3, None));
        }
        // A check over the five texture features of an earlier booth is kept in the file but
        // not scored with: the threshold holds until the operator calibrates again.
        let mut five = saved;
        five.texture_check = CameraCheck::fit(&[[0.1f32; 5]; 8], &[[0.1; 5]; 4], 0.05);
        assert!(five
            .texture_check
            .as_ref()
            .is_some_and(CameraCheck::is_valid));
        assert_eq!(five.check(), None);
    }

    #[test]
    fn camera_names_become_file_names() {
        assert_eq!(camera_id(Path::new("/dev/video0")), "dev-video0");
        assert_eq!(camera_id(Path::new("data/franck.mp4")), "data-franck-mp4");
        assert_eq!(camera_id(Path::new("/")), "camera");
    }
}
