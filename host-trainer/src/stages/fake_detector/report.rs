//! The report's cells: a fitted detector scored per kind of fake, and the ROC plot.

use std::path::Path;

use super::data::{Kind, Sample};
use super::fit::scores;
use super::metrics;
use crate::artefacts::fake_detector::Cell;
use crate::error::Result;
use crate::model::fake_detector::FakeDetector;
use crate::plot::{lines, Line};

/// One cell per fake kind: `model` on the real faces of `test` against that kind's fakes.
pub fn score_cells(
    model: &FakeDetector,
    test: &[&Sample],
    fake_kinds: &[Kind],
    trained_on: &str,
    threshold: f32,
) -> Vec<Cell> {
    let scores = scores(model, test);
    fake_kinds
        .iter()
        .map(|&kind| {
            let scored: Vec<(f32, bool)> = scores
                .iter()
                .zip(test)
                .filter(|(_, s)| s.kind == Kind::Real || s.kind == kind)
                .map(|(&p, s)| (p, s.kind.is_fake()))
                .collect();
            Cell {
                trained_on: trained_on.into(),
                tested_on: kind.name().into(),
                real: scored.iter().filter(|s| !s.1).count(),
                fake: scored.iter().filter(|s| s.1).count(),
                auc: metrics::auc(&scored),
                auc_sd: 0.0,
                auc_same_video: None,
                auc_same_video_sd: None,
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

/// The ROC curves of `cells` in one plot.
pub fn roc_plot(cells: &[&Cell], title: &str, path: &Path) -> Result<()> {
    let colours = [
        plotters::style::BLUE,
        plotters::style::RED,
        plotters::style::GREEN,
    ];
    let series: Vec<Line<'_>> = cells
        .iter()
        .zip(colours.iter().cycle())
        .map(|(c, colour)| Line {
            label: &c.tested_on,
            points: c.roc.clone(),
            colour: *colour,
        })
        .collect();
    lines(path, title, "false positive rate", &series)
}

pub fn kinds_name(kinds: &[Kind]) -> String {
    kinds
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(" + ")
}
