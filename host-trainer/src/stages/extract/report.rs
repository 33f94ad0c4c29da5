//! The dataset report: counts per reason, pose coverage (histogram PNG and warnings against the
//! other people's datasets next to this one), and contact sheets of kept and rejected faces.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use facekit::draw::{label, tile, RgbCanvas};
use image::RgbImage;
use plotters::style::RGBColor;
use shared_proto::FaceCropSpec;

use crate::artefacts::dataset::{self, FaceRecord, Reason};
use crate::error::{AtPath, Result};
use crate::plot::{grouped_bars, Bars};

/// Yaw bin edges in degrees (negative: turned to image-left).
pub const YAW_EDGES: [f32; 8] = [-90.0, -40.0, -25.0, -10.0, 10.0, 25.0, 40.0, 90.0];
/// Pitch bin edges in degrees (negative: chin down).
pub const PITCH_EDGES: [f32; 6] = [-90.0, -20.0, -7.0, 7.0, 20.0, 90.0];

fn bin_labels(edges: &[f32]) -> Vec<String> {
    edges
        .windows(2)
        .map(|w| format!("{:+.0}..{:+.0}", w[0], w[1]))
        .collect()
}

pub fn histogram(values: impl Iterator<Item = f32>, edges: &[f32]) -> Vec<u32> {
    let mut counts = vec![0u32; edges.len() - 1];
    for v in values {
        let v = v.clamp(edges[0], edges[edges.len() - 1] - 1e-3);
        if let Some(i) = edges.windows(2).position(|w| v >= w[0] && v < w[1]) {
            counts[i] += 1;
        }
    }
    counts
}

/// Pose bins this person lacks although another person has them: a swap of those poses will be
/// poor, so the operator should record more video.
pub fn coverage_gaps(mine: &[u32], theirs: &[u32], labels: &[String]) -> Vec<String> {
    let (n_mine, n_theirs) = (
        mine.iter().sum::<u32>().max(1) as f32,
        theirs.iter().sum::<u32>().max(1) as f32,
    );
    mine.iter()
        .zip(theirs)
        .zip(labels)
        .filter(|((&m, &t), _)| t >= 3 && t as f32 / n_theirs >= 0.05 && (m as f32 / n_mine) < 0.01)
        .map(|((_, &t), l)| format!("{l} deg ({t} faces in the other set, none here)"))
        .collect()
}

/// Other datasets beside this one (`datasets/B` next to `datasets/A`).
fn sibling_datasets(root: &Path) -> Vec<(String, Vec<FaceRecord>)> {
    let Some(parent) = root.parent() else {
        return Vec::new();
    };
    let me = root.canonicalize().ok();
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<FaceRecord>)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(dataset::METADATA).is_file() && p.canonicalize().ok() != me)
        .filter_map(|p| {
            let records = dataset::read_journal(&p.join(dataset::METADATA)).ok()?;
            let person = records.first()?.person.clone();
            Some((person, records))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn poses(records: &[FaceRecord]) -> (Vec<u32>, Vec<u32>) {
    let accepted: Vec<_> = records
        .iter()
        .filter(|r| r.accepted())
        .filter_map(|r| r.pose)
        .collect();
    (
        histogram(accepted.iter().map(|p| p.yaw), &YAW_EDGES),
        histogram(accepted.iter().map(|p| p.pitch), &PITCH_EDGES),
    )
}

const COLOURS: [RGBColor; 3] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
];

/// Writes report.md and its pictures; returns the report path.
pub fn write(
    root: &Path,
    person: &str,
    records: &[FaceRecord],
    crop: &FaceCropSpec,
) -> Result<PathBuf> {
    let mut counts: BTreeMap<Reason, usize> = BTreeMap::new();
    for r in records {
        *counts.entry(r.reason).or_default() += 1;
    }
    let accepted = counts.get(&Reason::Accepted).copied().unwrap_or(0);
    let frames: std::collections::HashSet<(&str, u64)> = records
        .iter()
        .map(|r| (r.source.as_str(), r.frame))
        .collect();
    let sources: std::collections::BTreeSet<&str> =
        records.iter().map(|r| r.source.as_str()).collect();

    let yaw_labels = bin_labels(&YAW_EDGES);
    let pitch_labels = bin_labels(&PITCH_EDGES);
    let (yaw, pitch) = poses(records);
    let siblings = sibling_datasets(root);
    let mut yaw_series = vec![Bars {
        label: person,
        counts: yaw.clone(),
        colour: COLOURS[0],
    }];
    let mut pitch_series = vec![Bars {
        label: person,
        counts: pitch.clone(),
        colour: COLOURS[0],
    }];
    let mut warnings = Vec::new();
    for (k, (other, recs)) in siblings.iter().enumerate() {
        let (oy, op) = poses(recs);
        for gap in coverage_gaps(&yaw, &oy, &yaw_labels) {
            warnings.push(format!("{person} lacks yaw {gap} of {other}"));
        }
        for gap in coverage_gaps(&pitch, &op, &pitch_labels) {
            warnings.push(format!("{person} lacks pitch {gap} of {other}"));
        }
        let colour = COLOURS[(k + 1) % COLOURS.len()];
        yaw_series.push(Bars {
            label: other,
            counts: oy,
            colour,
        });
        pitch_series.push(Bars {
            label: other,
            counts: op,
            colour,
        });
    }
    for w in &warnings {
        tracing::warn!("pose coverage: {w}");
    }
    grouped_bars(
        &root.join("pose_histogram.png"),
        &[
            ("yaw (deg)", &YAW_EDGES, yaw_series),
            ("pitch (deg)", &PITCH_EDGES, pitch_series),
        ],
    )?;
    let sheet = root.join("contact_accepted.png");
    contact_accepted(root, records)
        .save(&sheet)
        .at("write", &sheet)?;
    let sheet = root.join("contact_rejects.png");
    contact_rejects(root, records, crop.size)
        .save(&sheet)
        .at("write", &sheet)?;

    let mut md = String::new();
    let _ = writeln!(md, "# Dataset of person {person}\n");
    let _ = writeln!(
        md,
        "{accepted} faces accepted from {} frames of {} source(s); crops {}×{} px, margin {}.\n",
        frames.len(),
        sources.len(),
        crop.size,
        crop.size,
        crop.margin
    );
    let _ = writeln!(md, "| reason | faces |\n|---|---|");
    for (reason, n) in &counts {
        let _ = writeln!(md, "| {} | {n} |", reason.code());
    }
    let _ = writeln!(md, "\nThresholds: `curation.toml`. Every face, kept or not, is one line of `metadata.jsonl`.\n");
    let _ = writeln!(
        md,
        "## Pose coverage\n\n![pose histogram](pose_histogram.png)\n"
    );
    let _ = writeln!(
        md,
        "| yaw | {} |\n|---|{}",
        yaw_labels.join(" | "),
        "---|".repeat(yaw_labels.len())
    );
    let _ = writeln!(
        md,
        "| {person} | {} |",
        yaw.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    if warnings.is_empty() {
        let _ = writeln!(
            md,
            "\nNo pose gaps against {}.",
            if siblings.is_empty() {
                "other datasets (none found next to this one)".to_owned()
            } else {
                siblings
                    .iter()
                    .map(|s| s.0.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
    } else {
        let _ = writeln!(md, "\n**Warnings** — record more video of these poses:\n");
        for w in &warnings {
            let _ = writeln!(md, "- {w}");
        }
    }
    let _ = writeln!(
        md,
        "\n## Accepted faces\n\n![accepted](contact_accepted.png)\n"
    );
    let _ = writeln!(
        md,
        "## Rejected samples, one row per reason\n\n![rejects](contact_rejects.png)"
    );
    let path = root.join("report.md");
    std::fs::write(&path, md).at("write", &path)?;
    Ok(path)
}

fn load(root: &Path, r: &FaceRecord) -> Option<RgbImage> {
    image::open(root.join(r.file.as_ref()?))
        .ok()
        .map(|i| i.into_rgb8())
}

/// Up to 80 accepted faces, evenly spread over the dataset.
fn contact_accepted(root: &Path, records: &[FaceRecord]) -> RgbImage {
    let kept: Vec<&FaceRecord> = records.iter().filter(|r| r.accepted()).collect();
    let step = kept.len().div_ceil(80).max(1);
    let tiles: Vec<RgbImage> = kept
        .iter()
        .step_by(step)
        .filter_map(|r| load(root, r))
        .collect();
    tile(&tiles, 10)
}

/// Per rejection reason: a name tile, then up to 8 sample crops.
fn contact_rejects(root: &Path, records: &[FaceRecord], size: u32) -> RgbImage {
    let mut tiles = Vec::new();
    for reason in Reason::REJECTIONS {
        let samples: Vec<RgbImage> = records
            .iter()
            .filter(|r| r.reason == reason)
            .filter_map(|r| load(root, r))
            .take(8)
            .collect();
        if samples.is_empty() {
            continue;
        }
        let mut name = RgbImage::new(size, size);
        label(
            &mut RgbCanvas(&mut name),
            reason.code(),
            embedded_graphics::prelude::Point::new(1, size as i32 / 2 - 5),
        );
        tiles.push(name);
        let n = samples.len();
        tiles.extend(samples);
        tiles.extend((n..8).map(|_| RgbImage::from_pixel(size, size, image::Rgb([40, 40, 40]))));
    }
    if tiles.is_empty() {
        tiles.push(RgbImage::from_pixel(size, size, image::Rgb([40, 40, 40])));
    }
    tile(&tiles, 9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bins_and_gap_warnings() {
        let h = histogram([-50.0, -30.0, 0.0, 1.0, 95.0].into_iter(), &YAW_EDGES);
        assert_eq!(h, vec![1, 1, 0, 2, 0, 0, 1]);
        let labels = bin_labels(&YAW_EDGES);
        let mine = vec![0, 0, 5, 40, 5, 0, 0];
        let theirs = vec![0, 10, 5, 40, 5, 0, 0];
        let gaps = coverage_gaps(&mine, &theirs, &labels);
        assert_eq!(gaps.len(), 1);
        assert!(gaps[0].starts_with("-40..-25"), "{gaps:?}");
    }
}
