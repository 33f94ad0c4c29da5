//! The report's cells: a fitted detector scored per kind of fake, and the ROC plot.

use std::path::Path;

use super::camera;
use super::data::{self, Kind, Sample};
use super::metrics;
use crate::artefacts::fake_detector::{Cell, CueAuc};
use crate::error::Result;
use crate::plot::{lines, Line, YAxis};
use facekit::forensics::Cues;
use shared_proto::BlurCheck;

/// One cell per fake kind: `scores` of `test` (all from `held_out`; a score per sample) on
/// its real faces against that kind's fakes, at frame and clip level.
pub fn score_cells(
    scores: &[f32],
    test: &[&Sample],
    fake_kinds: &[Kind],
    trained_on: &str,
    held_out: &str,
    threshold: f32,
) -> Vec<Cell> {
    fake_kinds
        .iter()
        .map(|&kind| {
            let of_cell: Vec<(&Sample, f32)> = test
                .iter()
                .zip(scores)
                .filter(|(s, _)| s.kind == Kind::Real || s.kind == kind)
                .map(|(s, &p)| (*s, p))
                .collect();
            let scored: Vec<(f32, bool)> = of_cell
                .iter()
                .map(|(s, p)| (*p, s.kind.is_fake()))
                .collect();
            let clips = metrics::clip_level(
                &of_cell
                    .iter()
                    .map(|(s, p)| (s.clip(), *p, s.kind.is_fake()))
                    .collect::<Vec<_>>(),
            );
            Cell {
                trained_on: trained_on.into(),
                held_out: held_out.into(),
                tested_on: kind.name().into(),
                real: scored.iter().filter(|s| !s.1).count(),
                fake: scored.iter().filter(|s| s.1).count(),
                auc: metrics::auc(&scored),
                auc_sd: 0.0,
                clip_auc: metrics::auc(&clips),
                clip_auc_sd: 0.0,
                clips_real: clips.iter().filter(|c| !c.1).count(),
                clips_fake: clips.iter().filter(|c| c.1).count(),
                auc_same_video: None,
                auc_same_video_sd: None,
                ap: metrics::average_precision(&scored),
                eer: metrics::eer(&scored),
                accuracy: metrics::accuracy(&scored, threshold),
                accuracy_sd: 0.0,
                threshold,
                log_loss: metrics::log_loss(&scored),
                seeds: 1,
                roc: metrics::roc(&scored),
            }
        })
        .collect()
}

/// Each hand-made cue's own AUC on `test` (all from `held_out`), per kind of fake. The cues
/// grow when a face looks blended in (the texture ratios when it is smoother than its
/// surround), so each is a fake score as it stands. Beside them the two-sided sharpness
/// mismatch, how many spreads a face's over-blur lies from real faces' either way by `check`
/// (the blur check fitted on the real faces the detector trained on): a pasted face can be
/// sharper than its frame as well as softer. And the camera check a booth calibrated on its
/// own camera fits ([`camera::camera_check`] of `test`'s early real faces, what an operator's
/// calibration records), on the cues alone: each late face's distance from them.
pub fn cue_aucs(
    test: &[&Sample],
    fake_kinds: &[Kind],
    held_out: &str,
    check: Option<&BlurCheck>,
) -> Vec<CueAuc> {
    let cues = data::cues(test);
    let features: Vec<_> = cues.iter().map(Cues::cue_features).collect();
    let own = test
        .first()
        .and_then(|s| camera::camera_check(test, &features, s.video));
    fake_kinds
        .iter()
        .map(|&kind| {
            let auc_of = |late_only: bool, f: &dyn Fn(&Cues) -> f32| {
                let scored: Vec<(f32, bool)> = test
                    .iter()
                    .zip(&cues)
                    .filter(|(s, _)| s.kind == Kind::Real || s.kind == kind)
                    .filter(|(s, _)| s.late || !late_only)
                    .map(|(s, c)| (f(c), s.kind.is_fake()))
                    .collect();
                metrics::auc(&scored)
            };
            let auc = |f: &dyn Fn(&Cues) -> f32| auc_of(false, f);
            CueAuc {
                held_out: held_out.into(),
                tested_on: kind.name().into(),
                over_blur: auc(&|c| c.over_blur),
                edge_colour: auc(&|c| c.edge_colour),
                double_edges: auc(&|c| c.double_edges),
                mouth_blur: auc(&|c| c.mouth_blur),
                detail: auc(&|c| c.texture.detail),
                edges: auc(&|c| c.texture.edges),
                noise: auc(&|c| c.texture.noise),
                colour_noise: auc(&|c| c.texture.colour_noise),
                sharpness_mismatch: check
                    .map_or(f64::NAN, |check| auc(&|c| check.spreads(c.over_blur).abs())),
                camera_check: own.as_ref().map_or(f64::NAN, |check| {
                    auc_of(true, &|c| check.distance(&c.cue_features()))
                }),
            }
        })
        .collect()
}

/// The ROC curves of `cells` in one plot, each labelled by its kind of fake and by what it adds
/// to `base` (the training set every cell shares), e.g. "SBI + blur check".
pub fn roc_plot(cells: &[&Cell], base: &str, title: &str, path: &Path) -> Result<()> {
    use plotters::style::RGBColor;
    // Four kinds × up to three variants, each pair its own colour.
    const COLOURS: [[u8; 3]; 12] = [
        [31, 119, 180],
        [214, 39, 40],
        [44, 160, 44],
        [148, 103, 189],
        [23, 190, 207],
        [255, 127, 14],
        [188, 189, 34],
        [227, 119, 194],
        [8, 48, 107],
        [103, 0, 13],
        [0, 68, 27],
        [63, 0, 125],
    ];
    let labels: Vec<String> = cells
        .iter()
        .map(|c| match c.trained_on.strip_prefix(base) {
            Some("") | None => c.tested_on.clone(),
            Some(extra) => format!("{} {}", c.tested_on, extra.trim()),
        })
        .collect();
    let mut series: Vec<Line<'_>> = cells
        .iter()
        .zip(&labels)
        .zip(COLOURS.iter().cycle())
        .map(|((c, label), &[r, g, b])| Line {
            label,
            points: c.roc.clone(),
            colour: RGBColor(r, g, b),
        })
        .collect();
    series.push(Line {
        label: "chance",
        points: vec![(0.0, 0.0), (1.0, 1.0)],
        colour: RGBColor(160, 160, 160),
    });
    lines(
        path,
        title,
        "false positive rate",
        YAxis::Rate("true positive rate"),
        &series,
    )
}

pub fn kinds_name(kinds: &[Kind]) -> String {
    kinds
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(" + ")
}
