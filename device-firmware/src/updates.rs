//! Model updates on a running booth: an uploaded bundle is checked and kept by the [`Store`],
//! activated on trial (self-test, then a run of clean frames within a time limit), confirmed or
//! rolled back automatically. The booth loop reports each frame with [`Updates::frame_done`];
//! the console calls [`Updates::receive`], [`Updates::activate`] and [`Updates::rollback`] from
//! its blocking pool.

use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use shared_proto::bundle::VerifyingKey;
use shared_proto::serving::ServingRecord;

use crate::models::{self, LoadedBundle, ModelError, ModelSlot};
use crate::pipeline::FrameResult;
use crate::store::{Recovery, Store, StoreError};
use crate::sync::lock;

/// What a bundle on trial must do to stay in service.
#[derive(Debug, Clone, Copy)]
pub struct TrialPolicy {
    /// Frames processed in a row without an error (a NaN output is one).
    pub frames: u64,
    /// ...within this long after activation, or the previous bundle serves again.
    pub within: Duration,
}

impl Default for TrialPolicy {
    fn default() -> Self {
        Self {
            frames: 30,
            within: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("bundle {serial} does not load: {source}")]
    Load { serial: u64, source: ModelError },
    #[error("bundle {serial} failed its self-test ({why}); bundle {previous} serves again")]
    SelfTest {
        serial: u64,
        why: String,
        previous: String,
    },
}

struct Watch {
    serial: u64,
    clean: u64,
    deadline: Instant,
}

/// The update side of the booth: the store, the bundle in service and the trial watch.
pub struct Updates {
    store: Mutex<Store>,
    trusted: Vec<VerifyingKey>,
    models: ModelSlot,
    swap_to: Option<String>,
    policy: TrialPolicy,
    watch: Mutex<Option<Watch>>,
}

/// How far the bundle on trial has come.
#[derive(Debug, Clone, Serialize)]
pub struct TrialProgress {
    pub serial: u64,
    pub clean_frames: u64,
    pub frames_needed: u64,
    pub seconds_left: f32,
}

/// A kept bundle, for the console's history table.
#[derive(Debug, Clone, Serialize)]
pub struct KeptBundle {
    pub serial: u64,
    pub created: String,
    pub preset: String,
    pub steps: i64,
    pub people: Vec<String>,
    pub has_detector: bool,
}

fn shown(serial: Option<u64>) -> String {
    serial.map_or("none (faces only)".into(), |s| s.to_string())
}

impl Updates {
    /// Opens the state folder and puts its bundle in service. A bundle that no longer loads
    /// (a disk error since it was confirmed) is treated as a failed trial: the one before it
    /// serves.
    pub fn open(
        state_dir: &Path,
        trusted: &[String],
        swap_to: Option<String>,
        models: ModelSlot,
        policy: TrialPolicy,
    ) -> Result<(Self, Recovery), UpdateError> {
        let keys = models::trusted_keys(trusted).unwrap_or_default();
        let (store, recovery) = Store::open(state_dir, &keys)?;
        let updates = Self {
            store: Mutex::new(store),
            trusted: keys,
            models,
            swap_to,
            policy,
            watch: Mutex::new(None),
        };
        if let Some(a) = recovery.abandoned_trial {
            tracing::warn!("bundle {a} was on trial when the booth stopped: rolled back");
        }
        updates.serve_current()?;
        Ok((updates, recovery))
    }

    /// Loads what the record says serves; on failure falls back along `previous`.
    fn serve_current(&self) -> Result<(), StoreError> {
        let mut store = lock(&self.store);
        for _ in 0..=crate::store::KEEP {
            let Some(serial) = store.record().current else {
                self.models.set(None);
                return Ok(());
            };
            match self.load(&store, serial) {
                Ok(b) => {
                    tracing::info!("serving bundle {serial} ({})", b.version);
                    self.models.set(Some(b));
                    return Ok(());
                }
                Err(e) => {
                    tracing::error!("{e}; falling back");
                    store.fall_back(serial, &e.to_string())?;
                }
            }
        }
        self.models.set(None);
        Ok(())
    }

    fn load(&self, store: &Store, serial: u64) -> Result<LoadedBundle, UpdateError> {
        let verified = store.open_kept(serial)?;
        models::build(
            &store.bundle_dir(serial),
            &verified,
            self.swap_to.as_deref(),
        )
        .map_err(|source| UpdateError::Load { serial, source })
    }

    /// Receives an uploaded bundle archive: unpacked into staging, checked completely, kept
    /// when its serial is new. Returns the serial; nothing in service changes.
    pub fn receive(&self, archive: impl Read) -> Result<u64, UpdateError> {
        let staging = lock(&self.store).new_staging()?;
        let verified = Store::check_upload(&staging, archive, &self.trusted)?;
        let serial = lock(&self.store).keep(&staging, &verified)?;
        tracing::info!(
            "bundle {serial} received and verified ({} {} steps)",
            verified.manifest.provenance.preset,
            verified.manifest.provenance.steps
        );
        Ok(serial)
    }

    /// Puts kept bundle `serial` in service on trial. A bundle that does not load or fails its
    /// self-test is rolled back at once (the error says so); otherwise the trial runs on live
    /// frames and ends in [`Updates::frame_done`].
    pub fn activate(&self, serial: u64) -> Result<(), UpdateError> {
        let mut store = lock(&self.store);
        store.begin_trial(serial)?;
        let tested = self.load(&store, serial).and_then(|b| match b.self_test() {
            Ok(()) => Ok(b),
            Err(why) => Err(UpdateError::SelfTest {
                serial,
                why: why.to_string(),
                previous: String::new(),
            }),
        });
        match tested {
            Ok(bundle) => {
                tracing::info!(
                    "bundle {serial} on trial: {} clean frames within {:?}",
                    self.policy.frames,
                    self.policy.within
                );
                self.models.set(Some(bundle));
                *lock(&self.watch) = Some(Watch {
                    serial,
                    clean: 0,
                    deadline: Instant::now() + self.policy.within,
                });
                Ok(())
            }
            Err(e) => {
                let why = match &e {
                    UpdateError::SelfTest { why, .. } => format!("self-test: {why}"),
                    other => other.to_string(),
                };
                let now = store.fail_trial(&why)?;
                drop(store);
                self.serve_current()?;
                tracing::error!("bundle {serial} rolled back: {why}");
                Err(match e {
                    UpdateError::SelfTest { serial, why, .. } => UpdateError::SelfTest {
                        serial,
                        why,
                        previous: shown(now),
                    },
                    other => other,
                })
            }
        }
    }

    /// The operator's rollback (see [`Store::rollback`]); returns what serves now.
    pub fn rollback(&self) -> Result<Option<u64>, UpdateError> {
        let mut store = lock(&self.store);
        let on_trial = store.record().trial.is_some();
        let now = store.rollback()?;
        drop(store);
        *lock(&self.watch) = None;
        self.serve_current()?;
        if !on_trial {
            // Going back to the previous bundle is itself a change: it is on trial too.
            if let Some(serial) = now {
                *lock(&self.watch) = Some(Watch {
                    serial,
                    clean: 0,
                    deadline: Instant::now() + self.policy.within,
                });
            }
        }
        tracing::warn!("operator rollback: serving {}", shown(now));
        Ok(now)
    }

    /// Called by the booth loop after every frame (and while it waits for one, with `None`).
    /// Ends a trial: confirmed after enough clean frames, rolled back on an error or when time
    /// runs out.
    pub fn frame_done(&self, result: Option<&FrameResult>) {
        let verdict = {
            let mut watch = lock(&self.watch);
            let Some(w) = watch.as_mut() else {
                return;
            };
            let verdict = match result {
                Some(r) if r.error.is_some() => Some(Err(format!(
                    "a frame failed: {}",
                    r.error.as_deref().unwrap_or_default()
                ))),
                Some(_) => {
                    w.clean += 1;
                    (w.clean >= self.policy.frames).then_some(Ok(()))
                }
                None => None,
            };
            let verdict = verdict.or_else(|| {
                (Instant::now() >= w.deadline).then(|| {
                    Err(format!(
                        "only {} of {} clean frames within {:?}",
                        w.clean, self.policy.frames, self.policy.within
                    ))
                })
            });
            verdict.map(|v| (watch.take().map(|w| w.serial).unwrap_or_default(), v))
        };
        let Some((serial, verdict)) = verdict else {
            return;
        };
        let outcome = match verdict {
            Ok(()) => lock(&self.store).confirm(serial).map(|()| {
                tracing::info!("bundle {serial} confirmed");
            }),
            Err(why) => {
                let r = lock(&self.store).fail_trial(&why);
                tracing::error!("bundle {serial} rolled back: {why}");
                r.and_then(|_| self.serve_current())
            }
        };
        if let Err(e) = outcome {
            tracing::error!("recording the trial of bundle {serial}: {e}");
        }
    }

    /// A fresh staging folder for an upload in progress (removed by the caller, or at the
    /// next start).
    pub fn new_incoming(&self) -> Result<std::path::PathBuf, UpdateError> {
        Ok(lock(&self.store).new_staging()?)
    }

    /// The trial in progress, for the console and `host-trainer deploy`.
    pub fn trial(&self) -> Option<TrialProgress> {
        lock(&self.watch).as_ref().map(|w| TrialProgress {
            serial: w.serial,
            clean_frames: w.clean,
            frames_needed: self.policy.frames,
            seconds_left: w
                .deadline
                .saturating_duration_since(Instant::now())
                .as_secs_f32(),
        })
    }

    pub fn record(&self) -> ServingRecord {
        lock(&self.store).record().clone()
    }

    pub fn token(&self) -> String {
        lock(&self.store).token().to_owned()
    }

    pub fn calibration_dir(&self) -> std::path::PathBuf {
        lock(&self.store).root().join(crate::store::CALIBRATION)
    }

    /// The kept bundles, newest first, described from their signed manifests (checked when
    /// they were received; not hashed again for a status page).
    pub fn kept(&self) -> Vec<KeptBundle> {
        let store = lock(&self.store);
        store
            .kept()
            .into_iter()
            .rev()
            .filter_map(|serial| {
                let m = store.manifest(serial).ok()?;
                Some(KeptBundle {
                    serial,
                    people: m.models.iter().filter_map(|e| e.to.clone()).collect(),
                    has_detector: m
                        .model(shared_proto::bundle::ModelKind::Detector, None)
                        .is_some(),
                    created: m.created,
                    preset: m.provenance.preset,
                    steps: m.provenance.steps,
                })
            })
            .collect()
    }
}
