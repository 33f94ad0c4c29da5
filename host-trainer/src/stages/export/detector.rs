//! The fake detector into the bundle: `models/detector.onnx` (f32: at ~16 k parameters int8
//! would save nothing that matters), checked against tch in tract on random inputs and on real
//! faces cropped at the detector's own geometry.

use std::path::Path;

use model_spec::graphs::{fake_detector_graph, fake_detector_inputs, fake_detector_outputs};
use model_spec::onnx;
use shared_proto::bundle::{predict_latency, ModelEntry};
use tch::nn::Module;
use tch::{Device, Kind, Tensor};

use super::check;
use crate::artefacts::bundle::Staging;
use crate::artefacts::dataset::accepted_frames;
use crate::artefacts::fake_detector::{self, DetectorReport};
use crate::error::Result;
use crate::model::tensors::{to_tensor, to_vec, weights_of};

/// What [`export_detector`] wrote and measured.
pub struct ExportedDetector {
    pub entry: ModelEntry,
    /// Max |tract − tch| on random inputs and on real faces.
    pub max_diff: [f32; 2],
    /// The report's cells, as bundle metrics.
    pub metrics: Vec<(String, f64)>,
}

/// Writes the detector saved in `dir`; real faces for the check come from `dataset`.
pub fn export_detector(
    dir: &Path,
    dataset: &Path,
    staging: &Staging,
    device: Device,
) -> Result<ExportedDetector> {
    let (trained, settings) = fake_detector::load(dir, device)?;
    let spec = &trained.spec;
    let name = "detector".to_string();
    let bytes = onnx::to_bytes(&fake_detector_graph(spec, &weights_of(&trained.vars))?);
    let s = spec.crop.size as i64;
    let random = Tensor::rand([4, 3, s, s], (Kind::Float, device));
    let mut faces = Vec::new();
    accepted_frames(dataset, &spec.crop, 0.0, |_, face| {
        faces.push(face.aligned.image);
        Ok(faces.len() < 16)
    })?;
    let real = to_tensor(&faces, device);
    let max_diff = check::f32_graph(
        &name,
        &bytes,
        [&random, &real],
        |m, x| Ok(m.run(to_vec(x))?.into_iter().next().unwrap_or_default()),
        |x| to_vec(&tch::no_grad(|| trained.net.forward(x))),
    )?;
    let file = "models/detector.onnx".to_string();
    staging.write(&file, &bytes)?;
    let mflops = spec.flops_per_face() as f64 / 1e6;
    let metrics = DetectorReport::read(dir)?.map_or_else(Vec::new, |r| r.metrics());
    let entry = ModelEntry {
        preset: spec.preset.clone(),
        crop: Some(spec.crop.clone()),
        inputs: fake_detector_inputs(spec.crop.size as usize),
        outputs: fake_detector_outputs(),
        params: spec.params() as u64,
        mflops,
        latency: predict_latency(mflops),
        threshold: Some(settings.threshold),
        blur_check: settings.blur_check,
        ..ModelEntry::detector(name, file)
    };
    Ok(ExportedDetector {
        entry,
        max_diff,
        metrics,
    })
}
