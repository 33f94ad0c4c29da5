//! On-disk layout of a person's dataset and its append-only metadata, which is also the resume
//! journal: a frame is done once its line is in `metadata.jsonl`, and a face PNG is written
//! before its line, so an interrupted run never leaves a line without its image.
//!
//! ```text
//! datasets/A/
//!   faces/          accepted aligned crops (what training reads)
//!   rejects/<code>/ rejected crops, for audit
//!   metadata.jsonl  one line per face candidate (or per faceless frame)
//!   consent.toml    who agreed, when, to what
//!   curation.toml   the thresholds in force
//!   report.md, pose_histogram.png, contact_accepted.png, contact_rejects.png
//! ```

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use facekit::{Pose, Similarity};
use serde::{Deserialize, Serialize};

use super::curate::Reason;
use super::quality::Quality;

pub const METADATA: &str = "metadata.jsonl";
pub const CONSENT: &str = "consent.toml";
/// The crop geometry and normalisation every face of the dataset was made with.
pub const CROP: &str = "crop.toml";

/// Writes the crop spec of a new dataset, or checks it against the one already there.
pub fn establish_crop(root: &Path, crop: &shared_proto::FaceCropSpec) -> Result<(), DatasetError> {
    let path = root.join(CROP);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let existing: shared_proto::FaceCropSpec =
                toml::from_str(&text).map_err(|e| DatasetError::Consent {
                    path: path.clone(),
                    detail: format!("invalid crop spec: {e}"),
                })?;
            if &existing != crop {
                return Err(DatasetError::Consent {
                    path,
                    detail: format!(
                        "dataset was made with {} px crops and margin {}; use the same --size/--margin or a new --out",
                        existing.size, existing.margin
                    ),
                });
            }
            Ok(())
        }
        Err(_) => {
            let text = format!(
                "# Crop geometry of this dataset; training and the device use exactly this.\n{}",
                toml::to_string(crop).expect("crop spec serialises")
            );
            std::fs::write(&path, text).map_err(|source| DatasetError::NotWritable { path, source })
        }
    }
}

/// One metadata line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaceRecord {
    pub person: String,
    /// Input file as given on the command line.
    pub source: String,
    /// Frame index in the source (0 for still images).
    pub frame: u64,
    /// Index of the face in the frame, best score first.
    pub face: u32,
    pub reason: Reason,
    /// Crop path relative to the dataset folder (accepted and rejected crops both kept).
    pub file: Option<String>,
    pub bbox: Option<[f32; 4]>,
    pub score: Option<f32>,
    pub landmarks: Option<[[f32; 2]; 5]>,
    /// Frame → crop similarity; its inverse pastes a face back.
    pub to_crop: Option<Similarity>,
    pub crop_size: u32,
    pub template_error: Option<f32>,
    pub outside_fraction: Option<f32>,
    pub quality: Option<Quality>,
    pub pose: Option<Pose>,
    pub dhash: Option<String>,
    /// LBPH distance to the `--reference` photos, when given.
    #[serde(default)]
    pub identity_distance: Option<f32>,
}

impl FaceRecord {
    /// The record of a frame without a face; face candidates start from it too.
    pub fn no_face(person: &str, source: &str, frame: u64, crop_size: u32) -> Self {
        Self {
            person: person.to_owned(),
            source: source.to_owned(),
            frame,
            face: 0,
            reason: Reason::NoFace,
            file: None,
            bbox: None,
            score: None,
            landmarks: None,
            to_crop: None,
            crop_size,
            template_error: None,
            outside_fraction: None,
            quality: None,
            pose: None,
            dhash: None,
            identity_distance: None,
        }
    }

    pub fn accepted(&self) -> bool {
        self.reason == Reason::Accepted
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot write to {path}: {source}; choose a writable --out folder")]
    NotWritable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Consent { path: PathBuf, detail: String },
    #[error(
        "{path} line {line}: {detail}; the dataset's journal is damaged (fix or remove that line)"
    )]
    Journal {
        path: PathBuf,
        line: usize,
        detail: String,
    },
}

pub struct Dataset {
    pub root: PathBuf,
    journal: File,
}

impl Dataset {
    /// Opens (creating if needed) the dataset at `root` and reads what was already done.
    pub fn open(root: &Path) -> Result<(Self, Vec<FaceRecord>), DatasetError> {
        let not_writable = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DatasetError::NotWritable { path, source }
        };
        std::fs::create_dir_all(root.join("faces")).map_err(not_writable(root))?;
        let path = root.join(METADATA);
        let records = read_journal(&path)?;
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(not_writable(&path))?;
        Ok((
            Self {
                root: root.to_path_buf(),
                journal,
            },
            records,
        ))
    }

    /// Writes the crop (if any), then appends the record. PNG first: see the module docs.
    pub fn append(&mut self, record: &FaceRecord, png: Option<&[u8]>) -> Result<(), DatasetError> {
        if let (Some(rel), Some(bytes)) = (&record.file, png) {
            let path = self.root.join(rel);
            let parent = path.parent().expect("crop path has a folder");
            std::fs::create_dir_all(parent).map_err(|source| DatasetError::NotWritable {
                path: parent.into(),
                source,
            })?;
            let tmp = path.with_extension("png.part");
            std::fs::write(&tmp, bytes)
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|source| DatasetError::NotWritable {
                    path: path.clone(),
                    source,
                })?;
        }
        let mut line = serde_json::to_vec(record).expect("record serialises");
        line.push(b'\n');
        let path = self.root.join(METADATA);
        self.journal
            .write_all(&line)
            .map_err(|source| DatasetError::NotWritable { path, source })
    }

    pub fn sync(&mut self) -> Result<(), DatasetError> {
        let path = self.root.join(METADATA);
        self.journal
            .sync_data()
            .map_err(|source| DatasetError::NotWritable { path, source })
    }
}

/// Reads the journal. A torn last line (the process died mid-write) is dropped and truncated
/// away so the next append starts on a fresh line; damage elsewhere is an error.
pub fn read_journal(path: &Path) -> Result<Vec<FaceRecord>, DatasetError> {
    let Ok(file) = File::open(path) else {
        return Ok(Vec::new());
    };
    let mut records = Vec::new();
    let mut good_bytes = 0u64;
    let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<FaceRecord>(line) {
            Ok(r) => {
                records.push(r);
                good_bytes += line.len() as u64 + 1;
            }
            Err(_) if i + 1 == lines.len() => {
                tracing::warn!(
                    "{}: dropping a torn last line from an interrupted run",
                    path.display()
                );
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|source| DatasetError::NotWritable {
                        path: path.to_path_buf(),
                        source,
                    })?;
                f.set_len(good_bytes)
                    .map_err(|source| DatasetError::NotWritable {
                        path: path.to_path_buf(),
                        source,
                    })?;
            }
            Err(e) => {
                return Err(DatasetError::Journal {
                    path: path.to_path_buf(),
                    line: i + 1,
                    detail: e.to_string(),
                })
            }
        }
    }
    Ok(records)
}

/// Frames already handled, by (source, frame).
pub fn done_frames(records: &[FaceRecord]) -> HashSet<(String, u64)> {
    records
        .iter()
        .map(|r| (r.source.clone(), r.frame))
        .collect()
}

/// Who agreed to have their face used, when, and for what. Travels into every bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// Name of the person shown in the dataset.
    pub who: String,
    /// When consent was given (RFC 3339 or a date).
    pub when: String,
    /// What the faces may be used for.
    pub scope: String,
    /// Optional: who recorded the consent, and where the signed form is kept.
    #[serde(default)]
    pub recorded_by: Option<String>,
    #[serde(default)]
    pub evidence: Option<String>,
}

impl Consent {
    /// Parses `--consent "who=Jane Doe;scope=doppel booth demo"` (`when` defaults to now).
    pub fn from_arg(arg: &str) -> Result<Self, String> {
        let mut who = None;
        let mut when = None;
        let mut scope = None;
        let mut recorded_by = None;
        let mut evidence = None;
        for part in arg.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not key=value"))?;
            let v = Some(v.trim().to_owned());
            match k.trim() {
                "who" => who = v,
                "when" => when = v,
                "scope" => scope = v,
                "recorded_by" => recorded_by = v,
                "evidence" => evidence = v,
                other => {
                    return Err(format!(
                    "unknown consent field `{other}` (use who, when, scope, recorded_by, evidence)"
                ))
                }
            }
        }
        let consent = Consent {
            who: who.ok_or("consent needs who=<name>")?,
            when: when.unwrap_or_else(|| {
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            }),
            scope: scope.ok_or("consent needs scope=<what the faces may be used for>")?,
            recorded_by,
            evidence,
        };
        consent.validate()?;
        Ok(consent)
    }

    fn validate(&self) -> Result<(), String> {
        for (field, v) in [
            ("who", &self.who),
            ("when", &self.when),
            ("scope", &self.scope),
        ] {
            if v.trim().is_empty() {
                return Err(format!("consent field `{field}` is empty"));
            }
        }
        Ok(())
    }

    /// The dataset's consent: written from `--consent` the first time, required afterwards.
    /// A different `--consent` for an existing dataset is refused rather than overwritten.
    pub fn establish(root: &Path, given: Option<Consent>) -> Result<Consent, DatasetError> {
        let path = root.join(CONSENT);
        let err = |detail: String| DatasetError::Consent {
            path: path.clone(),
            detail,
        };
        let existing = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let c: Consent = toml::from_str(&text)
                    .map_err(|e| err(format!("invalid consent record: {e}")))?;
                c.validate().map_err(err)?;
                Some(c)
            }
            Err(_) => None,
        };
        match (existing, given) {
            (Some(c), None) => Ok(c),
            (Some(c), Some(g)) if c.who == g.who && c.scope == g.scope => Ok(c),
            (Some(c), Some(_)) => Err(err(format!(
                "this dataset already records consent of {:?} for {:?}; use a new --out folder for another person",
                c.who, c.scope
            ))),
            (None, Some(g)) => {
                std::fs::create_dir_all(root).map_err(|source| DatasetError::NotWritable { path: root.into(), source })?;
                let text = format!(
                    "# Consent record: travels with this dataset into every bundle trained on it.\n{}",
                    toml::to_string(&g).expect("consent serialises")
                );
                std::fs::write(&path, text).map_err(|source| DatasetError::NotWritable { path: path.clone(), source })?;
                Ok(g)
            }
            (None, None) => Err(err(
                "no consent record; pass --consent \"who=<name>;scope=<use>\" (the person must have agreed)".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_is_created_then_required_and_never_silently_replaced() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Consent::establish(dir.path(), None).is_err());
        let c = Consent::from_arg("who=Person A;scope=doppel demo;when=2026-11-25").unwrap();
        Consent::establish(dir.path(), Some(c.clone())).unwrap();
        assert_eq!(Consent::establish(dir.path(), None).unwrap(), c);
        let other = Consent::from_arg("who=Person B;scope=doppel demo").unwrap();
        assert!(Consent::establish(dir.path(), Some(other)).is_err());
        assert!(Consent::from_arg("scope=x").is_err());
        assert!(Consent::from_arg("who=x;scope=y;colour=red").is_err());
    }

    #[test]
    fn a_torn_last_journal_line_is_dropped_and_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(METADATA);
        let rec = FaceRecord::no_face("A", "v.mp4", 3, 64);
        let line = serde_json::to_string(&rec).unwrap();
        std::fs::write(&path, format!("{line}\n{}", &line[..20])).unwrap();
        let records = read_journal(&path).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{line}\n"));
        std::fs::write(&path, format!("garbage\n{line}\n")).unwrap();
        assert!(matches!(
            read_journal(&path),
            Err(DatasetError::Journal { line: 1, .. })
        ));
    }
}
