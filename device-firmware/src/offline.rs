//! Offline detection over a video file or image folder: the first end-to-end slice of the
//! booth pipeline, also what the x86-vs-aarch64 equality test compares.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use facekit::{Detection, FrameSource, RetinaFace};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::overlay::{draw_detection, label, RgbCanvas};

/// One line of `detections.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrameDetections {
    pub frame: u64,
    pub width: u32,
    pub height: u32,
    pub faces: Vec<Detection>,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Process every Nth frame.
    pub every: u64,
    /// Stop after this many processed frames.
    pub max_frames: Option<u64>,
    /// Put every Nth processed frame on the contact sheet.
    pub sheet_every: u64,
    /// Contact sheet columns.
    pub sheet_columns: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            every: 1,
            max_frames: None,
            sheet_every: 5,
            sheet_columns: 6,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub frames: u64,
    pub frames_with_faces: u64,
    pub jsonl: PathBuf,
    pub contact_sheet: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error(transparent)]
    Face(#[from] facekit::FacekitError),
    #[error("cannot write {path}: {source}; check the output folder is writable")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode {path}: {source}")]
    Image {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
}

/// Detects faces in every selected frame of `source`, writing `detections.jsonl` and
/// `contact_sheet.png` into `out_dir`.
pub fn detect_frames(
    detector: &RetinaFace,
    source: &mut dyn FrameSource,
    out_dir: &Path,
    opts: &Options,
) -> Result<Summary, OfflineError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OfflineError::Write { path, source }
    };
    std::fs::create_dir_all(out_dir).map_err(write_err(out_dir))?;
    let jsonl = out_dir.join("detections.jsonl");
    let mut out = BufWriter::new(File::create(&jsonl).map_err(write_err(&jsonl))?);

    let mut tiles = Vec::new();
    let (mut index, mut processed, mut with_faces) = (0u64, 0u64, 0u64);
    while let Some(frame) = source.next_frame()? {
        let this = index;
        index += 1;
        if this % opts.every.max(1) != 0 {
            continue;
        }
        if opts.max_frames.is_some_and(|m| processed >= m) {
            break;
        }
        let faces = detector.detect(&frame)?;
        with_faces += u64::from(!faces.is_empty());
        if processed % opts.sheet_every.max(1) == 0 && tiles.len() < 48 {
            tiles.push(annotate(frame.clone(), this, &faces));
        }
        let record = FrameDetections {
            frame: this,
            width: frame.width(),
            height: frame.height(),
            faces,
        };
        serde_json::to_writer(&mut out, &record).expect("detections serialise");
        out.write_all(b"\n").map_err(write_err(&jsonl))?;
        processed += 1;
    }
    out.flush().map_err(write_err(&jsonl))?;

    let contact_sheet = out_dir.join("contact_sheet.png");
    let sheet = tile(&tiles, opts.sheet_columns.max(1));
    sheet.save(&contact_sheet).map_err(|source| OfflineError::Image {
        path: contact_sheet.clone(),
        source,
    })?;
    Ok(Summary {
        frames: processed,
        frames_with_faces: with_faces,
        jsonl,
        contact_sheet,
    })
}

fn annotate(mut frame: RgbImage, index: u64, faces: &[Detection]) -> RgbImage {
    let mut canvas = RgbCanvas(&mut frame);
    for f in faces {
        draw_detection(&mut canvas, f);
    }
    label(&mut canvas, &format!("#{index}"), embedded_graphics::prelude::Point::new(1, 1));
    frame
}

fn tile(tiles: &[RgbImage], columns: u32) -> RgbImage {
    let (tw, th) = tiles.iter().fold((1, 1), |(w, h), t| (w.max(t.width()), h.max(t.height())));
    let n = tiles.len().max(1) as u32;
    let cols = columns.min(n);
    let rows = n.div_ceil(cols);
    let gap = 2;
    let mut sheet = RgbImage::from_pixel(cols * (tw + gap) + gap, rows * (th + gap) + gap, image::Rgb([40, 40, 40]));
    for (i, t) in tiles.iter().enumerate() {
        let (c, r) = (i as u32 % cols, i as u32 / cols);
        image::imageops::replace(&mut sheet, t, (gap + c * (tw + gap)) as i64, (gap + r * (th + gap)) as i64);
    }
    sheet
}
