//! One swap direction into the bundle: the f32 graph checked against tch, then (with `--int8`)
//! the int8 graph calibrated on training faces and judged on held-out ones.

use facekit::OnnxModel;
use model_spec::graphs::{
    code_dims, error_stats, has_code_means, max_abs_diff, swap_graph, swap_inputs, swap_outputs,
    Int8Form,
};
use model_spec::onnx::{self, Weights};
use shared_proto::bundle::{predict_latency, ModelEntry, Precision, QuantReport};
use tch::{Kind, Tensor};

use super::calibration::calibrate;
use super::check::{
    self, in_tract, tch_identity_offset, tch_swap, tract_identity_offset, tract_swap,
};
use super::ExportOptions;
use crate::artefacts::bundle::Staging;
use crate::artefacts::dataset::FaceSet;
use crate::artefacts::run::Generator;
use crate::error::{Error, Result};
use crate::model::tensors::to_tensor;
use crate::person::Person;

/// What one direction put into the bundle.
pub struct ExportedSwap {
    pub entry: ModelEntry,
    /// Max |tract − tch| of the f32 graph on random inputs and on real faces.
    pub max_diff: [f32; 2],
}

/// Writes the graph that swaps `from`'s faces into `to` (`from`'s set in `sets`).
pub fn export_swap(
    opts: &ExportOptions,
    generator: &Generator,
    weights: &Weights,
    sets: &[FaceSet; 2],
    to: Person,
    staging: &Staging,
) -> Result<ExportedSwap> {
    let spec = &generator.model.spec;
    let from = to.other();
    let source = &sets[from.index()];
    let name = format!("swap_{}_to_{}", source.person, sets[to.index()].person);
    let f32_bytes = onnx::to_bytes(&swap_graph(spec, weights, to.index(), None)?);
    let s = spec.size as i64;
    let random = Tensor::rand([4, 3, s, s], (Kind::Float, opts.device));
    let real_faces = source.unseen();
    let real = to_tensor(&real_faces[..real_faces.len().min(16)], opts.device);
    let max_diff = check::f32_graph(&name, &f32_bytes, [&random, &real], tract_swap, |x| {
        tch_swap(&generator.model, x, to)
    })?;
    identity_offsets_match(&name, &f32_bytes, generator, &real, to)?;

    let (bytes, precision, int8) = if opts.int8 {
        let (bytes, report) = int8(opts, generator, weights, source, to, &name, f32_bytes.len())?;
        (bytes, Precision::Int8Qdq, Some(report))
    } else {
        (f32_bytes, Precision::F32, None)
    };
    let file = format!("models/{name}.onnx");
    staging.write(&file, &bytes)?;
    let mflops = spec.flops_per_face() as f64 / 1e6;
    let code = has_code_means(weights)
        .then(|| code_dims(spec))
        .transpose()?;
    let entry = ModelEntry {
        precision,
        preset: spec.preset.clone(),
        inputs: swap_inputs(spec.size, code.as_deref()),
        outputs: swap_outputs(spec.size, code.as_deref()),
        params: spec.params(1) as u64,
        mflops,
        latency: predict_latency(mflops),
        int8,
        ..ModelEntry::swap(name, file, &source.person, &sets[to.index()].person)
    };
    Ok(ExportedSwap { entry, max_diff })
}

/// The f32 graph's `identity_offset` (what a booth follows its visitors by) against tch's on
/// real faces; both absent when the run has no mean codes.
fn identity_offsets_match(
    name: &str,
    bytes: &[u8],
    generator: &Generator,
    faces: &Tensor,
    to: Person,
) -> Result<()> {
    let m = OnnxModel::from_bytes(name, bytes, faces.size()[0] as usize, false)
        .map_err(in_tract(name))?;
    let got = tract_identity_offset(&m, faces).map_err(in_tract(name))?;
    let want = tch_identity_offset(&generator.model, faces, to);
    let diff = match (&got, &want) {
        (Some(g), Some(w)) => max_abs_diff(g, w),
        (None, None) => return Ok(()),
        _ => f32::NAN,
    };
    if diff.is_nan() || diff > check::F32_TOLERANCE {
        return Err(Error::GraphMismatch {
            model: format!("{name} (identity_offset)"),
            inputs: "real faces",
            max_diff: diff,
            limit: check::F32_TOLERANCE,
        });
    }
    Ok(())
}

/// The int8 (QDQ) graph, calibrated on `source`'s training faces; refused when its PSNR
/// against tch on the held-out faces is below `--min-int8-psnr`.
fn int8(
    opts: &ExportOptions,
    generator: &Generator,
    weights: &Weights,
    source: &FaceSet,
    to: Person,
    name: &str,
    f32_bytes: usize,
) -> Result<(Vec<u8>, QuantReport)> {
    let pool = &source.train;
    let step = (pool.len() / opts.calibration_faces.max(1)).max(1);
    let calib: Vec<_> = pool.iter().step_by(step).cloned().collect();
    let faces = to_tensor(&calib, opts.device);
    let ranges = calibrate(&generator.model, &faces, to, opts.calibration);
    let graph = swap_graph(
        &generator.model.spec,
        weights,
        to.index(),
        Some((&ranges, Int8Form::Qdq)),
    )?;
    let bytes = onnx::to_bytes(&graph);
    let real_faces = source.unseen();
    let held = to_tensor(real_faces, opts.device);
    let m = OnnxModel::from_bytes(name, &bytes, real_faces.len(), true).map_err(in_tract(name))?;
    let q_out = tract_swap(&m, &held).map_err(in_tract(name))?;
    let (max_abs_error, mean_abs_error, psnr_db) =
        error_stats(&tch_swap(&generator.model, &held, to), &q_out);
    if psnr_db.is_nan() || psnr_db < opts.min_int8_psnr {
        return Err(Error::Int8Quality {
            model: name.into(),
            psnr: psnr_db,
            min: opts.min_int8_psnr,
        });
    }
    let report = QuantReport {
        f32_bytes: f32_bytes as u64,
        int8_bytes: bytes.len() as u64,
        max_abs_error,
        mean_abs_error,
        psnr_db,
        calibration: format!(
            "{} on {} training faces of {}",
            opts.calibration,
            calib.len(),
            source.person
        ),
        faces: real_faces.len() as u32,
    };
    Ok((bytes, report))
}
