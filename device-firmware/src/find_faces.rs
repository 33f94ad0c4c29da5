//! Offline detection over a video file or image folder: the first end-to-end slice of the
//! booth pipeline, also what the x86-vs-aarch64 equality test compares.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use facekit::{Detection, FrameSource, RetinaFace};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use embedded_graphics::pixelcolor::{Rgb888, RgbColor};
use facekit::draw::{draw_detection, label, tile, RgbCanvas};

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
            sheet_columns: 4,
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
        if !this.is_multiple_of(opts.every.max(1)) {
            continue;
        }
        if opts.max_frames.is_some_and(|m| processed >= m) {
            break;
        }
        let faces = detector.detect(&frame)?;
        with_faces += u64::from(!faces.is_empty());
        if processed.is_multiple_of(opts.sheet_every.max(1)) && tiles.len() < 48 {
            tiles.push(annotate(frame.clone(), this, &faces));
        }
        let record = FrameDetections {
            frame: this,
            width: frame.width(),
            height: frame.height(),
            faces,
        };
        serde_json::to_writer(&mut out, &record)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(write_err(&jsonl))?;
        processed += 1;
    }
    out.flush().map_err(write_err(&jsonl))?;

    let contact_sheet = out_dir.join("contact_sheet.png");
    let sheet = tile(&tiles, opts.sheet_columns.max(1));
    sheet
        .save(&contact_sheet)
        .map_err(|source| OfflineError::Image {
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

/// Tiles are at least this wide so landmarks stay visible on small webcam frames.
const MIN_TILE_WIDTH: u32 = 320;

fn annotate(frame: RgbImage, index: u64, faces: &[Detection]) -> RgbImage {
    let scale = MIN_TILE_WIDTH.div_ceil(frame.width()).max(1);
    let mut frame = if scale > 1 {
        let (w, h) = (frame.width() * scale, frame.height() * scale);
        facekit::resize(&frame, w, h)
    } else {
        frame
    };
    let mut canvas = RgbCanvas(&mut frame);
    let s = scale as f32;
    for f in faces {
        let scaled = Detection {
            bbox: f.bbox.map(|v| v * s),
            score: f.score,
            landmarks: f.landmarks.map(|[x, y]| [x * s, y * s]),
        };
        draw_detection(&mut canvas, &scaled, Rgb888::RED);
    }
    label(
        &mut canvas,
        &format!("#{index}"),
        embedded_graphics::prelude::Point::new(1, 1),
    );
    frame
}
