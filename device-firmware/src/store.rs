//! The booth's state folder (`--state-dir`, default `/var/lib/doppel`): the bundles it keeps,
//! the serving record, the operator token and the per-camera calibrations.
//!
//! ```text
//! /var/lib/doppel/
//!   operator.token        the console's and the API's secret (0600, made on first start)
//!   serving.bin           ServingRecord (shared-proto): current, previous, trial, highest serial
//!   current -> bundles/S  for people: the bundle in service (the record is what counts)
//!   bundles/<serial>/     verified bundles, the newest three kept
//!   staging/              uploads being received and checked
//!   calibration/<camera>.toml   the fake detector's threshold measured on that camera
//! ```
//!
//! An update keeps the promises of A/B updaters (RAUC, Mender) for a model bundle: it is
//! received into `staging/`, verified completely (trusted signer, format, every file's size and
//! hash, read once), refused when its serial is not newer than every one accepted before, moved
//! into `bundles/<serial>/`, and only then switched to by rewriting the serving record (a synced
//! file renamed into place). The new bundle is on trial until the booth confirms it; a restart
//! during a trial serves the previous bundle. Every step is a failpoint (`fail` crate,
//! `FAILPOINTS=update-<step>=return` kills the process there) so the tests can prove a SIGKILL at
//! any step leaves a complete, verified bundle in service.

use std::io::Read;
use std::path::{Path, PathBuf};

use shared_proto::archive;
use shared_proto::bundle::{self, VerifyingKey};
use shared_proto::serving::{ServingRecord, Trial};

pub const TOKEN: &str = "operator.token";
pub const RECORD: &str = "serving.bin";
pub const BUNDLES: &str = "bundles";
pub const STAGING: &str = "staging";
pub const CURRENT: &str = "current";
pub const CALIBRATION: &str = "calibration";
/// Bundles kept for rollback and re-activation.
pub const KEEP: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Archive(#[from] archive::ArchiveError),
    #[error("bundle refused: {0}")]
    Refused(#[from] bundle::BundleError),
    #[error("bundle serial {serial} is not newer than {highest}, the newest this booth accepted; export again (a new serial) or activate a kept one")]
    Stale { serial: u64, highest: u64 },
    #[error("bundle serial {0} failed its trial on this booth before")]
    FailedBefore(u64),
    #[error("no kept bundle with serial {0}")]
    NotKept(u64),
    #[error("nothing to roll back to")]
    NoPrevious,
    #[error("serving record: {0}")]
    Record(#[from] shared_proto::ProtoError),
    #[error("no randomness for the operator token: {0}")]
    Random(String),
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A failpoint of the update sequence: with `FAILPOINTS=<name>=return` the process is killed
/// (SIGKILL, no clean-up) right there, as a power cut or the OOM killer would.
macro_rules! step {
    ($name:literal) => {
        fail::eval($name, |_| {
            tracing::warn!("failpoint {}: killing the booth", $name);
            // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        });
    };
}

/// Writes `bytes` to `path` through a synced temporary file and a synced rename.
fn write_durably(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// What opening the state folder found and did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Recovery {
    /// A trial that was running when the booth stopped: rolled back.
    pub abandoned_trial: Option<u64>,
    /// The serving record was missing or unreadable and was rebuilt from the kept bundles.
    pub rebuilt: bool,
}

pub struct Store {
    root: PathBuf,
    record: ServingRecord,
    trusted: Vec<VerifyingKey>,
    token: String,
}

impl Store {
    /// Opens (creating on first start) the state folder. A trial left running by a crash is
    /// rolled back; a lost record is rebuilt from the newest bundle that still verifies.
    pub fn open(root: &Path, trusted: &[VerifyingKey]) -> Result<(Self, Recovery)> {
        for dir in [
            root.to_path_buf(),
            root.join(BUNDLES),
            root.join(CALIBRATION),
        ] {
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        }
        let staging = root.join(STAGING);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
        }
        let token = load_or_make_token(&root.join(TOKEN))?;
        let mut store = Self {
            root: root.to_path_buf(),
            record: ServingRecord::default(),
            trusted: trusted.to_vec(),
            token,
        };
        let mut recovery = Recovery::default();
        let path = root.join(RECORD);
        let read = std::fs::read(&path)
            .ok()
            .and_then(|b| ServingRecord::from_bytes(&b).ok());
        match read {
            Some(r) => store.record = r,
            None => {
                recovery.rebuilt = path.exists() || !store.kept().is_empty();
                store.record.current = store
                    .kept()
                    .into_iter()
                    .rev()
                    .find(|&s| store.verify(s).is_ok());
                store.record.highest = store.kept().into_iter().max().unwrap_or(0);
            }
        }
        if let Some(trial) = store.record.trial.take() {
            recovery.abandoned_trial = Some(trial.serial);
            store.record.current = trial.previous;
            store.record.failed.push(trial.serial);
            store.record.note(
                now(),
                trial.serial,
                "rolled back: the booth stopped during its trial",
            );
        }
        if recovery != Recovery::default() {
            store.save()?;
        }
        Ok((store, recovery))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn trusted(&self) -> &[VerifyingKey] {
        &self.trusted
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn record(&self) -> &ServingRecord {
        &self.record
    }

    pub fn bundle_dir(&self, serial: u64) -> PathBuf {
        self.root.join(BUNDLES).join(serial.to_string())
    }

    /// Serials of the bundles kept, oldest first.
    pub fn kept(&self) -> Vec<u64> {
        let mut out: Vec<u64> = std::fs::read_dir(self.root.join(BUNDLES))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        out.sort_unstable();
        out
    }

    /// The folder of the bundle in service, if any.
    pub fn current_dir(&self) -> Option<PathBuf> {
        self.record.current.map(|s| self.bundle_dir(s))
    }

    fn verify(&self, serial: u64) -> Result<bundle::VerifiedBundle> {
        Ok(bundle::open(&self.bundle_dir(serial), &self.trusted)?)
    }

    /// A fresh folder under `staging/` for an upload. Unpacking and checking happen without
    /// the store (an upload over a slow link must not hold the booth's status); [`Store::keep`]
    /// takes the checked folder.
    pub fn new_staging(&self) -> Result<PathBuf> {
        let base = self.root.join(STAGING);
        std::fs::create_dir_all(&base).map_err(io(&base))?;
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| StoreError::Random(e.to_string()))?;
        let dir = base.join(format!("upload-{}", u64::from_le_bytes(raw)));
        std::fs::create_dir(&dir).map_err(io(&dir))?;
        Ok(dir)
    }

    /// Unpacks an uploaded bundle archive into `staging` and checks it completely (trusted
    /// signer, format, every file's size and hash). Needs no lock on the store.
    pub fn check_upload(
        staging: &Path,
        archive: impl Read,
        trusted: &[VerifyingKey],
    ) -> Result<bundle::VerifiedBundle> {
        let checked = archive::unpack(archive, staging)
            .map_err(StoreError::from)
            .and_then(|()| {
                step!("update-received");
                Ok(bundle::open(staging, trusted)?)
            });
        if checked.is_err() {
            let _ = std::fs::remove_dir_all(staging);
        }
        checked
    }

    /// Keeps a checked upload as `bundles/<serial>/` when its serial is newer than every one
    /// accepted before. Nothing in service changes yet.
    pub fn keep(&mut self, staging: &Path, verified: &bundle::VerifiedBundle) -> Result<u64> {
        let serial = verified.manifest.serial;
        let refusal = if serial <= self.record.highest {
            Some(StoreError::Stale {
                serial,
                highest: self.record.highest,
            })
        } else if self.record.failed.contains(&serial) {
            Some(StoreError::FailedBefore(serial))
        } else {
            None
        };
        if let Some(e) = refusal {
            let _ = std::fs::remove_dir_all(staging);
            return Err(e);
        }
        step!("update-verified");
        let dest = self.bundle_dir(serial);
        if dest.exists() {
            // Left by a crash between the move and the record: it was never accepted.
            std::fs::remove_dir_all(&dest).map_err(io(&dest))?;
        }
        std::fs::rename(staging, &dest).map_err(io(&dest))?;
        sync_dir(&self.root.join(BUNDLES))?;
        step!("update-kept");
        self.record.highest = serial;
        self.record.note(now(), serial, "uploaded and verified");
        self.save()?;
        Ok(serial)
    }

    /// The verified bundle `serial` from the kept ones (read once, for loading).
    pub fn open_kept(&self, serial: u64) -> Result<bundle::VerifiedBundle> {
        if !self.kept().contains(&serial) {
            return Err(StoreError::NotKept(serial));
        }
        self.verify(serial)
    }

    /// Puts a kept bundle in service, on trial: the previous one serves again if the trial fails
    /// or the booth stops before it is confirmed.
    pub fn begin_trial(&mut self, serial: u64) -> Result<()> {
        if !self.kept().contains(&serial) {
            return Err(StoreError::NotKept(serial));
        }
        self.verify(serial)?;
        let previous = match &self.record.trial {
            Some(t) => t.previous,
            None => self.record.current,
        };
        self.record.trial = Some(Trial {
            serial,
            previous,
            started: now(),
        });
        self.record.current = Some(serial);
        self.record.failed.retain(|&s| s != serial);
        self.record.note(now(), serial, "on trial");
        self.save()?;
        step!("update-switched");
        self.link_current();
        Ok(())
    }

    /// The bundle on trial worked: it stays, and only the newest [`KEEP`] bundles are kept.
    pub fn confirm(&mut self, serial: u64) -> Result<()> {
        let Some(trial) = self.record.trial.take_if(|t| t.serial == serial) else {
            return Ok(());
        };
        self.record.previous = trial.previous;
        self.record.note(now(), serial, "confirmed");
        self.save()?;
        step!("update-confirmed");
        self.prune();
        Ok(())
    }

    /// The bundle on trial failed: the previous one serves again. Returns what serves now.
    pub fn fail_trial(&mut self, why: &str) -> Result<Option<u64>> {
        let Some(trial) = self.record.trial.take() else {
            return Ok(self.record.current);
        };
        self.record.current = trial.previous;
        self.record.failed.push(trial.serial);
        self.record
            .note(now(), trial.serial, format!("rolled back: {why}"));
        self.save()?;
        self.link_current();
        Ok(self.record.current)
    }

    /// The bundle in service (`serial`) no longer loads: it is marked failed and the one before
    /// it serves (on the next [`Store::open`] too).
    pub fn fall_back(&mut self, serial: u64, why: &str) -> Result<()> {
        if self
            .record
            .trial
            .as_ref()
            .is_some_and(|t| t.serial == serial)
        {
            self.fail_trial(why)?;
            return Ok(());
        }
        self.record.current = self.record.previous.take().filter(|&p| p != serial);
        self.record.failed.push(serial);
        self.record
            .note(now(), serial, format!("taken out of service: {why}"));
        self.save()?;
        self.link_current();
        Ok(())
    }

    /// The manifest of kept bundle `serial`, read without hashing its files again (for
    /// descriptions; serving always goes through [`Store::open_kept`]).
    pub fn manifest(&self, serial: u64) -> Result<bundle::Manifest> {
        let path = self.bundle_dir(serial).join(bundle::MANIFEST);
        let bytes = bundle::read_regular(&path, bundle::MAX_MANIFEST_BYTES, None)?;
        Ok(shared_proto::decode(bundle::MANIFEST_KIND, &bytes)?)
    }

    /// The operator's rollback: a bundle on trial is dropped; otherwise the previous confirmed
    /// bundle goes back into service (on trial). Returns what serves now.
    pub fn rollback(&mut self) -> Result<Option<u64>> {
        if self.record.trial.is_some() {
            return self.fail_trial("the operator rolled back");
        }
        let previous = self.record.previous.ok_or(StoreError::NoPrevious)?;
        let from = self.record.current;
        if let Some(from) = from {
            self.record.note(
                now(),
                from,
                format!("the operator rolled back to {previous}"),
            );
        }
        self.begin_trial(previous)?;
        if let (Some(t), Some(from)) = (self.record.trial.as_mut(), from) {
            t.previous = Some(from);
        }
        self.record.previous = None;
        self.save()?;
        Ok(Some(previous))
    }

    fn save(&self) -> Result<()> {
        write_durably(&self.root.join(RECORD), &self.record.to_bytes()?, 0o600)
    }

    /// `current -> bundles/<serial>` for people looking at the folder; the record is what counts,
    /// so a failure here is only logged.
    fn link_current(&self) {
        let link = self.root.join(CURRENT);
        let tmp = self.root.join("current.tmp");
        let _ = std::fs::remove_file(&tmp);
        let made = match self.record.current {
            Some(s) => std::os::unix::fs::symlink(Path::new(BUNDLES).join(s.to_string()), &tmp)
                .and_then(|()| std::fs::rename(&tmp, &link)),
            None => std::fs::remove_file(&link).or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            }),
        };
        if let Err(e) = made {
            tracing::warn!("{}: {e}", link.display());
        }
    }

    /// Keeps the bundle in service, the previous one, one on trial and the newest others up to
    /// [`KEEP`].
    fn prune(&mut self) {
        let mut keep: Vec<u64> = [
            self.record.current,
            self.record.previous,
            self.record.trial.as_ref().map(|t| t.serial),
        ]
        .into_iter()
        .flatten()
        .collect();
        for s in self.kept().into_iter().rev() {
            if keep.len() >= KEEP {
                break;
            }
            if !keep.contains(&s) {
                keep.push(s);
            }
        }
        for s in self.kept() {
            if !keep.contains(&s) {
                let dir = self.bundle_dir(s);
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => self.record.note(now(), s, "removed (kept the newest)"),
                    Err(e) => tracing::warn!("{}: {e}", dir.display()),
                }
            }
        }
        let _ = self.save();
    }
}

/// The operator token in `path`, made (32 random bytes, hex, mode 0600) when missing.
/// The operator token of the state folder `root`, made (with the folder) when missing: the
/// image's first boot makes it before the booth starts, `doppel-device token` prints it.
pub fn operator_token(root: &Path) -> Result<String> {
    std::fs::create_dir_all(root).map_err(io(root))?;
    load_or_make_token(&root.join(TOKEN))
}

fn load_or_make_token(path: &Path) -> Result<String> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let t = text.trim().to_owned();
        if t.len() >= 32 {
            return Ok(t);
        }
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| StoreError::Random(e.to_string()))?;
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    write_durably(path, format!("{token}\n").as_bytes(), 0o600)?;
    tracing::info!("created the operator token {}", path.display());
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_proto::bundle::{file_entry, Manifest, ModelEntry, Provenance, SigningKey};

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[5; 32])
    }

    /// A sealed bundle with serial `serial` (the store never runs its model).
    fn bundle(serial: u64) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("models")).unwrap();
        std::fs::write(d.join("models/swap.onnx"), format!("model {serial}")).unwrap();
        let manifest = Manifest {
            serial,
            producer: "store test".into(),
            created: String::new(),
            crop: Default::default(),
            models: vec![ModelEntry::swap("swap", "models/swap.onnx", "A", "B")],
            provenance: Provenance {
                run: "r".into(),
                preset: "t".into(),
                steps: 1,
                datasets: vec![],
                metrics: vec![],
            },
            files: vec![file_entry(d, "models/swap.onnx").unwrap()],
        };
        bundle::seal(d, &manifest, &key()).unwrap();
        archive::pack(d).unwrap()
    }

    fn receive(store: &mut Store, archive: &[u8]) -> Result<u64> {
        let staging = store.new_staging()?;
        let v = Store::check_upload(&staging, archive, &[VerifyingKey::from(&key())])?;
        store.keep(&staging, &v)
    }

    fn open(root: &Path) -> (Store, Recovery) {
        Store::open(root, &[VerifyingKey::from(&key())]).unwrap()
    }

    #[test]
    fn updates_are_kept_switched_confirmed_refused_and_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, rec) = open(dir.path());
        assert_eq!(rec, Recovery::default());
        assert_eq!(s.record().current, None);
        assert!(matches!(s.rollback(), Err(StoreError::NoPrevious)));
        let token = s.token().to_owned();
        assert_eq!(token.len(), 64);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(TOKEN))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        assert_eq!(receive(&mut s, &bundle(10)).unwrap(), 10);
        assert_eq!(
            s.record().current,
            None,
            "receiving changes nothing in service"
        );
        s.begin_trial(10).unwrap();
        s.confirm(10).unwrap();
        assert_eq!(s.record().current, Some(10));
        assert_eq!(
            std::fs::read_link(dir.path().join(CURRENT)).unwrap(),
            Path::new("bundles/10")
        );

        // Older or equal serials are refused; a foreign signer is refused.
        assert!(matches!(
            receive(&mut s, &bundle(10)),
            Err(StoreError::Stale { .. })
        ));
        assert!(matches!(
            receive(&mut s, &bundle(3)),
            Err(StoreError::Stale { .. })
        ));
        let staging = s.new_staging().unwrap();
        let other = VerifyingKey::from(&SigningKey::from_bytes(&[6; 32]));
        assert!(matches!(
            Store::check_upload(&staging, &bundle(11)[..], &[other]),
            Err(StoreError::Refused(_))
        ));
        assert!(!staging.exists(), "a refused upload leaves nothing behind");

        // A failed trial puts the previous bundle back and is never taken again.
        receive(&mut s, &bundle(20)).unwrap();
        s.begin_trial(20).unwrap();
        assert_eq!(s.fail_trial("NaN").unwrap(), Some(10));
        assert_eq!(s.record().current, Some(10));
        assert!(s.record().failed.contains(&20));

        // The operator's rollback returns to the previous confirmed bundle, on trial.
        receive(&mut s, &bundle(30)).unwrap();
        s.begin_trial(30).unwrap();
        s.confirm(30).unwrap();
        assert_eq!(s.record().previous, Some(10));
        assert_eq!(s.rollback().unwrap(), Some(10));
        assert_eq!(
            s.record().trial.as_ref().map(|t| t.previous),
            Some(Some(30))
        );
        s.confirm(10).unwrap();
        assert_eq!(
            s.record().previous,
            Some(30),
            "a second rollback undoes the first"
        );

        // Only the newest few are kept, always including what serves and what came before.
        for serial in [40, 50, 60] {
            receive(&mut s, &bundle(serial)).unwrap();
            s.begin_trial(serial).unwrap();
            s.confirm(serial).unwrap();
        }
        let kept = s.kept();
        assert_eq!(kept.len(), KEEP, "{kept:?}");
        assert!(kept.contains(&60) && kept.contains(&50), "{kept:?}");
        assert_eq!(s.manifest(60).unwrap().serial, 60);
    }

    #[test]
    fn a_restart_during_a_trial_serves_the_previous_bundle_and_a_lost_record_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = open(dir.path());
            receive(&mut s, &bundle(1)).unwrap();
            s.begin_trial(1).unwrap();
            s.confirm(1).unwrap();
            receive(&mut s, &bundle(2)).unwrap();
            s.begin_trial(2).unwrap();
            // The booth stops here (power cut): no confirm, no fail.
        }
        let (s, rec) = open(dir.path());
        assert_eq!(rec.abandoned_trial, Some(2));
        assert_eq!(s.record().current, Some(1));
        assert!(s.record().trial.is_none());
        drop(s);

        std::fs::write(dir.path().join(RECORD), b"garbage").unwrap();
        let (s, rec) = open(dir.path());
        assert!(rec.rebuilt);
        assert_eq!(
            s.record().current,
            Some(2),
            "the newest kept bundle that verifies"
        );
        assert_eq!(s.record().highest, 2);
        drop(s);

        // A kept bundle damaged on disk is passed over.
        std::fs::write(dir.path().join("bundles/2/models/swap.onnx"), b"bit rot").unwrap();
        std::fs::remove_file(dir.path().join(RECORD)).unwrap();
        let (s, _) = open(dir.path());
        assert_eq!(s.record().current, Some(1));
    }
}
