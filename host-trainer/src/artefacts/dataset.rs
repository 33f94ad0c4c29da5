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
//!   crop.toml       the crop geometry every face was made with
//!   curation.toml   the thresholds in force
//!   report.md, pose_histogram.png, contact_accepted.png, contact_rejects.png
//! ```
//!
//! Readers: [`FaceSet`] loads the accepted crops with a held-out split (training, eval,
//! export), and [`accepted_frames`] re-crops the accepted faces from their source frames at
//! another geometry (the fake detector's crop).

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use facekit::quality::Quality;
use facekit::{align_face, AlignedFace, Pose, Similarity};
use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use shared_proto::FaceCropSpec;

use super::{read_toml, write_toml};
use crate::error::{AtPath, Error, Result};

pub const METADATA: &str = "metadata.jsonl";
pub const CONSENT: &str = "consent.toml";
/// The crop geometry and normalisation every face of the dataset was made with.
pub const CROP: &str = "crop.toml";
pub const CURATION: &str = "curation.toml";

/// Why a face was rejected (or `Accepted`). Serialised as the snake_case code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Accepted,
    /// The frame shows more than one face: we cannot know which one is the consenting person.
    MultiFace,
    /// Does not look like the `--reference` photos of the consenting person.
    WrongPerson,
    /// The detector is not confident this is a face.
    LowScore,
    /// The face is too small to give a sharp crop.
    TooSmall,
    /// Part of the face lies outside the frame.
    CutOff,
    /// Landmark geometry implausible for a face (occlusion, bad landmarks).
    Occluded,
    Blurry,
    Dark,
    Overexposed,
    /// Colour cast: the face's channel balance is far from skin under white-ish light.
    Tinted,
    /// Near-identical to a face already accepted.
    Duplicate,
    /// The frame has no face at all (recorded so resume skips it).
    NoFace,
    /// The input (or the rest of a video from this frame on) could not be decoded; skipped.
    Unreadable,
}

impl Reason {
    pub const REJECTIONS: [Reason; 13] = [
        Reason::MultiFace,
        Reason::WrongPerson,
        Reason::LowScore,
        Reason::TooSmall,
        Reason::CutOff,
        Reason::Occluded,
        Reason::Blurry,
        Reason::Dark,
        Reason::Overexposed,
        Reason::Tinted,
        Reason::Duplicate,
        Reason::NoFace,
        Reason::Unreadable,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Reason::Accepted => "accepted",
            Reason::MultiFace => "multi_face",
            Reason::WrongPerson => "wrong_person",
            Reason::LowScore => "low_score",
            Reason::TooSmall => "too_small",
            Reason::CutOff => "cut_off",
            Reason::Occluded => "occluded",
            Reason::Blurry => "blurry",
            Reason::Dark => "dark",
            Reason::Overexposed => "overexposed",
            Reason::Tinted => "tinted",
            Reason::Duplicate => "duplicate",
            Reason::NoFace => "no_face",
            Reason::Unreadable => "unreadable",
        }
    }
}

/// Writes the crop spec of a new dataset, or checks it against the one already there.
pub fn establish_crop(root: &Path, crop: &FaceCropSpec) -> Result<()> {
    let path = root.join(CROP);
    if !path.is_file() {
        let note = "Crop geometry of this dataset; training and the device use exactly this.";
        return write_toml(&path, note, crop);
    }
    let existing: FaceCropSpec = read_toml(&path)?;
    if &existing != crop {
        return Err(Error::BadDataset {
            path,
            problem: format!(
                "dataset was made with {} px crops and margin {}; use the same --size/--margin or a new --out",
                existing.size, existing.margin
            ),
        });
    }
    Ok(())
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
    /// Why an `unreadable` input could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
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
            problem: None,
        }
    }

    pub fn accepted(&self) -> bool {
        self.reason == Reason::Accepted
    }
}

/// The dataset being written: its folder and the open journal.
pub struct Dataset {
    pub root: PathBuf,
    journal: File,
}

impl Dataset {
    /// Opens (creating if needed) the dataset at `root` and reads what was already done.
    pub fn open(root: &Path) -> Result<(Self, Vec<FaceRecord>)> {
        let faces = root.join("faces");
        std::fs::create_dir_all(&faces).at("write", &faces)?;
        let path = root.join(METADATA);
        let records = read_journal(&path)?;
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .at("write", &path)?;
        Ok((
            Self {
                root: root.to_path_buf(),
                journal,
            },
            records,
        ))
    }

    /// Writes the crop (if any), then appends the record. PNG first: see the module docs.
    pub fn append(&mut self, record: &FaceRecord, png: Option<&[u8]>) -> Result<()> {
        if let (Some(rel), Some(bytes)) = (&record.file, png) {
            let path = self.root.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).at("write", parent)?;
            }
            let tmp = path.with_extension("png.part");
            std::fs::write(&tmp, bytes)
                .and_then(|_| std::fs::rename(&tmp, &path))
                .at("write", &path)?;
        }
        let mut line = serde_json::to_vec(record).at("serialise", &self.root.join(METADATA))?;
        line.push(b'\n');
        self.journal
            .write_all(&line)
            .at("write", &self.root.join(METADATA))
    }

    pub fn sync(&mut self) -> Result<()> {
        self.journal
            .sync_data()
            .at("write", &self.root.join(METADATA))
    }
}

/// Reads the journal. A torn last line (the process died mid-write) is dropped and truncated
/// away so the next append starts on a fresh line; damage elsewhere is an error.
pub fn read_journal(path: &Path) -> Result<Vec<FaceRecord>> {
    let Ok(file) = File::open(path) else {
        return Ok(Vec::new());
    };
    let mut records = Vec::new();
    let mut good_bytes = 0u64;
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .map_while(std::result::Result::ok)
        .collect();
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
                OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_len(good_bytes))
                    .at("write", path)?;
            }
            Err(source) => {
                return Err(Error::Journal {
                    path: path.to_path_buf(),
                    line: i + 1,
                    source,
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
    pub fn from_arg(arg: &str) -> Result<Self> {
        let bad = |problem: String| Error::ConsentArg(problem);
        let (mut who, mut when, mut scope, mut recorded_by, mut evidence) =
            (None, None, None, None, None);
        for part in arg.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("`{part}` is not key=value")))?;
            let v = Some(v.trim().to_owned());
            match k.trim() {
                "who" => who = v,
                "when" => when = v,
                "scope" => scope = v,
                "recorded_by" => recorded_by = v,
                "evidence" => evidence = v,
                other => {
                    return Err(bad(format!(
                    "unknown consent field `{other}` (use who, when, scope, recorded_by, evidence)"
                )))
                }
            }
        }
        let consent = Consent {
            who: who.ok_or_else(|| bad("consent needs who=<name>".into()))?,
            when: when.unwrap_or_else(|| {
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            }),
            scope: scope.ok_or_else(|| {
                bad("consent needs scope=<what the faces may be used for>".into())
            })?,
            recorded_by,
            evidence,
        };
        match consent.missing() {
            Some(problem) => Err(bad(problem)),
            None => Ok(consent),
        }
    }

    /// What is missing: the first required field that is empty, as a message.
    fn missing(&self) -> Option<String> {
        let fields = [
            ("who", &self.who),
            ("when", &self.when),
            ("scope", &self.scope),
        ];
        fields
            .iter()
            .find(|(_, v)| v.trim().is_empty())
            .map(|(field, _)| format!("consent field `{field}` is empty"))
    }

    /// The dataset's consent: written from `--consent` the first time, required afterwards.
    /// A different `--consent` for an existing dataset is refused rather than overwritten.
    pub fn establish(root: &Path, given: Option<Consent>) -> Result<Consent> {
        let path = root.join(CONSENT);
        let err = |problem: String| Error::Consent {
            path: path.clone(),
            problem,
        };
        let existing = if path.is_file() {
            let c: Consent = read_toml(&path)?;
            if let Some(problem) = c.missing() {
                return Err(err(problem));
            }
            Some(c)
        } else {
            None
        };
        match (existing, given) {
            (Some(c), None) => Ok(c),
            (Some(c), Some(g)) if c.who == g.who && c.scope == g.scope => Ok(c),
            (Some(c), Some(_)) => Err(err(format!(
                "this dataset already records consent of {:?} for {:?}; use a new --out folder for another person",
                c.who, c.scope
            ))),
            (None, Some(g)) => {
                std::fs::create_dir_all(root).at("write", root)?;
                let note = "Consent record: travels with this dataset into every bundle trained on it.";
                write_toml(&path, note, &g)?;
                Ok(g)
            }
            (None, None) => Err(err(
                "no consent record; pass --consent \"who=<name>;scope=<use>\" (the person must have agreed)".into(),
            )),
        }
    }

    /// The consent of the dataset at `root`, which must exist and be complete.
    pub fn read(root: &Path) -> Result<Consent> {
        let path = root.join(CONSENT);
        if !path.is_file() {
            return Err(Error::Consent {
                path,
                problem: "missing; a dataset without consent cannot be trained on".into(),
            });
        }
        let consent: Consent = read_toml(&path)?;
        match consent.missing() {
            Some(problem) => Err(Error::Consent { path, problem }),
            None => Ok(consent),
        }
    }
}

/// Share of each source's frames (its last ones) that `train` holds out and never trains on.
pub const TRAIN_HELD_OUT: f32 = 0.1;

/// One person's faces, split into training and held-out crops.
pub struct FaceSet {
    pub root: PathBuf,
    pub person: String,
    pub size: u32,
    pub crop: FaceCropSpec,
    pub consent: Consent,
    pub train: Vec<RgbImage>,
    pub held_out: Vec<RgbImage>,
    /// (source, frame index) of every held-out crop, in order: contiguous blocks per source.
    pub held_out_frames: Vec<(String, u64)>,
}

impl FaceSet {
    /// Loads `root`, holding out the last `held_out` fraction of every source's frames
    /// (contiguous blocks: neighbouring video frames are near-copies, so a random split leaks).
    pub fn load(root: &Path, held_out: f32) -> Result<Self> {
        if !root.join(METADATA).is_file() {
            return Err(Error::NotADataset(root.to_path_buf()));
        }
        let bad = |problem: String| Error::BadDataset {
            path: root.to_path_buf(),
            problem,
        };
        let records = read_journal(&root.join(METADATA))?;
        let consent = Consent::read(root)?;
        if !root.join(CROP).is_file() {
            return Err(bad(
                "no crop.toml; re-run `host-trainer extract` on it".into()
            ));
        }
        let crop: FaceCropSpec = read_toml(&root.join(CROP))?;
        let mut by_source: BTreeMap<&str, Vec<(u64, &str)>> = BTreeMap::new();
        for r in records.iter().filter(|r| r.accepted()) {
            if let Some(f) = &r.file {
                by_source
                    .entry(r.source.as_str())
                    .or_default()
                    .push((r.frame, f.as_str()));
            }
        }
        let person = records
            .first()
            .map(|r| r.person.clone())
            .unwrap_or_default();
        let (mut train_files, mut held_files) = (Vec::new(), Vec::new());
        let mut held_out_frames = Vec::new();
        for (source, frames) in by_source.iter_mut() {
            frames.sort();
            let keep = frames.len()
                - ((frames.len() as f32 * held_out).round() as usize)
                    .min(frames.len().saturating_sub(1));
            train_files.extend(frames[..keep].iter().map(|(_, f)| root.join(f)));
            held_files.extend(frames[keep..].iter().map(|(_, f)| root.join(f)));
            held_out_frames.extend(frames[keep..].iter().map(|(i, _)| (source.to_string(), *i)));
        }
        if train_files.is_empty() {
            return Err(Error::NoAcceptedFaces(root.to_path_buf()));
        }
        let read = |files: Vec<PathBuf>| -> Result<Vec<RgbImage>> {
            files
                .par_iter()
                .map(|p| image::open(p).map(|i| i.into_rgb8()).at("read", p))
                .collect()
        };
        let train = read(train_files)?;
        let held_out = read(held_files)?;
        let size = train[0].width();
        if let Some(odd) = train
            .iter()
            .chain(&held_out)
            .find(|i| i.width() != size || i.height() != size)
        {
            return Err(bad(format!(
                "mixed crop sizes ({size} and {}x{})",
                odd.width(),
                odd.height()
            )));
        }
        if crop.size != size {
            return Err(bad(format!(
                "crop.toml says {} px but the faces are {size} px",
                crop.size
            )));
        }
        Ok(Self {
            root: root.to_path_buf(),
            person,
            size,
            crop,
            consent,
            train,
            held_out,
            held_out_frames,
        })
    }

    /// The held-out faces, or the training faces when nothing was held out.
    pub fn unseen(&self) -> &[RgbImage] {
        if self.held_out.is_empty() {
            &self.train
        } else {
            &self.held_out
        }
    }
}

/// Checks that two people's sets can be trained together.
pub fn check_pair(a: &FaceSet, b: &FaceSet) -> Result<()> {
    if a.size != b.size {
        return Err(Error::BadDataset {
            path: b.root.clone(),
            problem: format!(
                "crop sizes differ: {} is {} px, this one {} px; extract both with the same --size",
                a.root.display(),
                a.size,
                b.size
            ),
        });
    }
    if a.crop != b.crop {
        return Err(Error::BadDataset {
            path: b.root.clone(),
            problem: format!(
                "crop margin {} differs from {}'s {}; extract both with the same --margin",
                b.crop.margin,
                a.root.display(),
                a.crop.margin
            ),
        });
    }
    Ok(())
}

/// An accepted face found again in its source frame.
pub struct SourceFace<'a> {
    /// The whole source frame.
    pub frame: &'a RgbImage,
    /// The face's five landmarks in frame pixels, as extract recorded them.
    pub landmarks: [[f32; 2]; 5],
    /// The face aligned at the geometry the reader asked for.
    pub aligned: AlignedFace,
    /// Held out: from the last `late_share` of its source's accepted frames, or for a photo,
    /// of the dataset's photos.
    pub late: bool,
    /// Where the face is: source, frame and which of the frame's faces.
    pub at: FaceAt,
}

/// Where an accepted face is in its dataset: consecutive frames of one source form clips.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FaceAt {
    /// Index of the source (video or photo) in the dataset's sorted sources.
    pub source: usize,
    /// Index of the frame in its source (0 for a photo).
    pub frame: u64,
    /// Which accepted face of that frame (a photo of several people has several).
    pub face: usize,
}

/// Calls `visit` for every accepted face of the dataset at `root`, re-cropped from its source
/// frame at `crop` (another geometry than the dataset's own crops, such as the fake detector's),
/// in source and frame order. `late_share` of each video's accepted frames, from its end, are
/// marked `late`; photos (sources of one frame) are held out as a group: the last `late_share`
/// of them by name, so a folder of photos is split like a video. `visit` returns `false` to
/// stop early.
pub fn accepted_frames(
    root: &Path,
    crop: &FaceCropSpec,
    late_share: f64,
    mut visit: impl FnMut(&str, SourceFace<'_>) -> Result<bool>,
) -> Result<()> {
    let records = read_journal(&root.join(METADATA))?;
    if records.is_empty() {
        return Err(Error::NotADataset(root.to_path_buf()));
    }
    type Faces = Vec<(u64, [[f32; 2]; 5])>;
    let mut wanted: BTreeMap<String, Faces> = BTreeMap::new();
    for r in records.iter().filter(|r| r.accepted()) {
        if let Some(lm) = r.landmarks {
            wanted
                .entry(r.source.clone())
                .or_default()
                .push((r.frame, lm));
        }
    }
    for faces in wanted.values_mut() {
        faces.sort_by_key(|f| f.0);
    }
    // The first held-out position of `n` in order (at least the last one, as before photos).
    let cut_of = |n: usize| ((n as f64 * (1.0 - late_share)) as usize).min(n.saturating_sub(1));
    let photos: Vec<&String> = wanted
        .iter()
        .filter(|(_, faces)| faces.iter().all(|f| f.0 == faces[0].0))
        .map(|(source, _)| source)
        .collect();
    let late_photos: HashSet<String> = photos[cut_of(photos.len())..]
        .iter()
        .map(|s| (*s).clone())
        .collect();
    for (source_index, (source, faces)) in wanted.into_iter().enumerate() {
        let mut frames: Vec<u64> = faces.iter().map(|f| f.0).collect();
        frames.dedup();
        let late_from = match frames.len() {
            1 if late_photos.contains(&source) => 0,
            1 => u64::MAX,
            n => frames[cut_of(n)],
        };
        let path = PathBuf::from(&source);
        let mut reader = facekit::open_source(&path)?;
        let mut index = 0u64;
        // Faces are sorted by frame: those of frame `i` are the run starting at `next`.
        let mut next = 0;
        while next < faces.len() {
            let Some(frame) = reader.next_frame()? else {
                break;
            };
            let i = index;
            index += 1;
            let start = next;
            while next < faces.len() && faces[next].0 == i {
                next += 1;
            }
            for (face, &(_, landmarks)) in faces[start..next].iter().enumerate() {
                let Some(aligned) = align_face(&frame, &landmarks, crop) else {
                    continue;
                };
                let face = SourceFace {
                    frame: &frame,
                    landmarks,
                    aligned,
                    late: i >= late_from,
                    at: FaceAt {
                        source: source_index,
                        frame: i,
                        face,
                    },
                };
                if !visit(&source, face)? {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
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
            Err(Error::Journal { line: 1, .. })
        ));
    }

    #[test]
    fn every_face_of_a_photo_is_found_again_and_the_last_photos_are_held_out() {
        // Five photos by name; photo_2 has two faces. A fifth of the photos (the last one)
        // is held out, as the last fifth of a video's frames would be.
        let dir = tempfile::tempdir().unwrap();
        let face = |dx: f32| {
            [
                [80.0 + dx, 90.0],
                [120.0 + dx, 90.0],
                [100.0 + dx, 110.0],
                [85.0 + dx, 130.0],
                [115.0 + dx, 130.0],
            ]
        };
        let mut journal = String::new();
        for i in 0..5 {
            let photo = dir.path().join(format!("photo_{i}.png"));
            image::RgbImage::from_pixel(400, 240, image::Rgb([90, 60 + 20 * i as u8, 50]))
                .save(&photo)
                .unwrap();
            let faces: &[f32] = if i == 2 { &[0.0, 200.0] } else { &[0.0] };
            for (k, dx) in faces.iter().enumerate() {
                let mut rec = FaceRecord::no_face("P", &photo.to_string_lossy(), 0, 64);
                rec.face = k as u32;
                rec.reason = Reason::Accepted;
                rec.landmarks = Some(face(*dx));
                journal += &format!("{}\n", serde_json::to_string(&rec).unwrap());
            }
        }
        std::fs::write(dir.path().join(METADATA), journal).unwrap();
        let mut seen = Vec::new();
        let crop = FaceCropSpec::new(64, 0.25);
        accepted_frames(dir.path(), &crop, 0.2, |source, f| {
            let name = Path::new(source)
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            seen.push((name, f.at.source, f.at.face, f.late, f.landmarks[0][0]));
            Ok(true)
        })
        .unwrap();
        let expected: Vec<(String, usize, usize, bool, f32)> = [
            (0, 0, false, 80.0),
            (1, 0, false, 80.0),
            (2, 0, false, 80.0),
            (2, 1, false, 280.0),
            (3, 0, false, 80.0),
            (4, 0, true, 80.0),
        ]
        .into_iter()
        .map(|(i, k, late, x)| (format!("photo_{i}"), i, k, late, x))
        .collect();
        assert_eq!(seen, expected);
    }
}
