//! What a user looks at while training: the preview grid (`preview.png`) and the loss curve.

use std::path::Path;

use facekit::draw::{label, tile, RgbCanvas};
use image::RgbImage;
use tch::Tensor;

use super::trainer::Trainer;
use crate::artefacts::dataset::FaceSet;
use crate::error::{AtPath, Result};
use crate::model::tensors::{from_tensor, to_tensor};
use crate::plot::{lines, Line, YAxis};

/// Four faces of a person for the preview: held-out ones when there are enough.
pub fn faces(set: &FaceSet) -> Vec<RgbImage> {
    let pool = if set.held_out.len() >= 4 {
        &set.held_out
    } else {
        &set.train
    };
    pool.iter()
        .step_by((pool.len() / 4).max(1))
        .take(4)
        .cloned()
        .collect()
}

/// The preview users of DeepFaceLab/faceswap expect: rows A→A, A→B, B→B, B→A; each cell shows
/// the source face and the decoder's output side by side.
pub fn write(trainer: &Trainer, faces: &[Vec<RgbImage>; 2], path: &Path) -> Result<()> {
    let _guard = tch::no_grad_guard();
    let mut tiles = Vec::new();
    for (src, dst, name) in [(0, 0, "A>A"), (0, 1, "A>B"), (1, 1, "B>B"), (1, 0, "B>A")] {
        let x = to_tensor(&faces[src], trainer.device);
        let (rgb, mask) = if src == dst {
            trainer.model.forward(&x, dst)
        } else {
            trainer.model.swap(&x, dst)
        };
        let out: Tensor = &rgb * &mask + &x * (mask.ones_like() - &mask);
        for (k, face) in faces[src].iter().enumerate() {
            let mut pair = RgbImage::new(face.width() * 2, face.height());
            image::imageops::replace(&mut pair, face, 0, 0);
            image::imageops::replace(
                &mut pair,
                &from_tensor(&out.get(k as i64)),
                face.width() as i64,
                0,
            );
            if k == 0 {
                label(
                    &mut RgbCanvas(&mut pair),
                    name,
                    embedded_graphics::prelude::Point::new(1, 1),
                );
            }
            tiles.push(pair);
        }
    }
    let cols = faces[0].len().max(1) as u32;
    tile(&tiles, cols).save(path).at("write", path)
}

/// The generator loss of both people over the steps of `metrics.csv`.
pub fn loss_curve(metrics: &Path, out: &Path) -> Result<()> {
    let text = std::fs::read_to_string(metrics).at("read", metrics)?;
    let mut series: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 4 {
            continue;
        }
        let (Ok(step), Ok(total)) = (f[0].parse::<f64>(), f[3].parse::<f64>()) else {
            continue;
        };
        series[usize::from(f[2] == "B")].push((step, total));
    }
    let colours = [
        plotters::style::RGBColor(31, 119, 180),
        plotters::style::RGBColor(255, 127, 14),
    ];
    let data = [
        Line {
            label: "A total",
            points: series[0].clone(),
            colour: colours[0],
        },
        Line {
            label: "B total",
            points: series[1].clone(),
            colour: colours[1],
        },
    ];
    lines(out, "generator loss", "step", YAxis::Log("loss"), &data)
}
