//! `host-trainer export`: a trained run becomes a signed bundle the device can load.
//!
//! For each direction (A→B, B→A) the swap graph is written from the spec (`model_spec`),
//! loaded back in tract and compared with tch ([`check`]); int8 graphs are calibrated on
//! training faces ([`calibration`]) and judged on held-out faces ([`swap`]); the fake detector
//! joins with its own check ([`detector`]). Any check that fails stops the export before a
//! bundle exists, and an earlier bundle stays in place.

pub mod calibration;
pub mod check;
pub mod detector;
pub mod swap;
pub mod visitors;

use std::path::PathBuf;

use shared_proto::bundle::{file_entry, Manifest, Metric, Provenance, IDENTITY_OFFSET};
use tch::Device;

use crate::artefacts::bundle::{dataset_record, Staging};
use crate::artefacts::dataset::{FaceSet, TRAIN_HELD_OUT};
use crate::artefacts::keys;
use crate::artefacts::run::{self, EvalReport, Generator};
use crate::error::{Error, Result};
use crate::model::tensors::{to_vec, weights_of};
use crate::person::Person;
pub use calibration::Calibration;

pub struct ExportOptions {
    pub run: PathBuf,
    pub out: PathBuf,
    pub int8: bool,
    pub calibration: Calibration,
    /// Faces per person used for calibration.
    pub calibration_faces: usize,
    /// Lowest acceptable PSNR of int8 against f32 on held-out faces.
    pub min_int8_psnr: f64,
    /// Overrides the datasets recorded in the run.
    pub datasets: Option<[PathBuf; 2]>,
    /// Output folder of `host-trainer train-detector`: the detector joins the bundle.
    pub detector: Option<PathBuf>,
    pub key_dir: PathBuf,
    pub device: Device,
    /// The bundle's serial; default: seconds since 1970 at export (rises with every export).
    pub serial: Option<u64>,
}

/// Seconds since 1970: rises from one export to the next on any host with a sane clock.
fn default_serial() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs())
}

/// What `export` did, for the CLI to print.
#[derive(Debug)]
pub struct ExportSummary {
    pub manifest: Manifest,
    pub signer: String,
    pub key_created: bool,
    /// Per model: max |tract − tch| of the f32 graph on random and on real faces.
    pub f32_max_diff: Vec<(String, f32, f32)>,
    /// Where the trained people's faces lie in the code, which sets the swaps'
    /// `visitor_switch_distance` (`None`: too few faces).
    pub identity_spread: Option<visitors::IdentitySpread>,
}

pub fn export(opts: &ExportOptions) -> Result<ExportSummary> {
    let staging = Staging::new(&opts.out)?;
    let generator = Generator::load(&opts.run, opts.device)?;
    let datasets = opts
        .datasets
        .clone()
        .or_else(|| run::datasets(&opts.run))
        .ok_or_else(|| Error::NoDatasets(opts.run.clone()))?;
    let sets = [
        FaceSet::load(&datasets[0], TRAIN_HELD_OUT)?,
        FaceSet::load(&datasets[1], TRAIN_HELD_OUT)?,
    ];
    let mut weights = weights_of(&generator.vars);
    if let Some(means) = &generator.model.code_means {
        for (k, mean) in means.iter().enumerate() {
            let name = model_spec::graphs::code_mean_name(k);
            weights.tensors.insert(name, (mean.size(), to_vec(mean)));
        }
    }
    let (key, key_created) = keys::load_or_create(&opts.key_dir)?;

    let mut models = Vec::new();
    let mut f32_max_diff = Vec::new();
    // A→B first: a booth without `swap_to` swaps into the first model's person, and the
    // visitor (A's place) becoming B is the swap the bundle is made for.
    for to in [Person::B, Person::A] {
        let swap = swap::export_swap(opts, &generator, &weights, &sets, to, &staging)?;
        let [random, real] = swap.max_diff;
        f32_max_diff.push((swap.entry.name.clone(), random, real));
        models.push(swap.entry);
    }
    let identity_spread = visitors::identity_spread(&generator.model, &sets);
    for m in &mut models {
        if m.outputs.iter().any(|o| o.name == IDENTITY_OFFSET) {
            m.visitor_switch_distance = identity_spread.and_then(|s| s.switch_distance());
        }
    }
    let mut metrics: Vec<Metric> = EvalReport::read(&opts.run)?
        .map_or_else(Vec::new, |r| r.metrics())
        .into_iter()
        .map(|(name, value)| Metric { name, value })
        .collect();
    if let Some(dir) = &opts.detector {
        let d = detector::export_detector(dir, &datasets[0], &staging, opts.device)?;
        let [random, real] = d.max_diff;
        f32_max_diff.push((d.entry.name.clone(), random, real));
        metrics.extend(
            d.metrics
                .into_iter()
                .map(|(name, value)| Metric { name, value }),
        );
        models.push(d.entry);
    }
    let files = models
        .iter()
        .map(|m| file_entry(staging.dir(), &m.file))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let manifest = Manifest {
        serial: opts.serial.unwrap_or_else(default_serial),
        producer: format!("doppel host-trainer {}", env!("CARGO_PKG_VERSION")),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        crop: generator.crop.clone(),
        models,
        provenance: Provenance {
            run: opts.run.display().to_string(),
            preset: generator.model.spec.preset.clone(),
            steps: generator.steps,
            datasets: sets.iter().map(dataset_record).collect(),
            metrics,
        },
        files,
    };
    staging.seal(&manifest, &key)?;
    Ok(ExportSummary {
        manifest,
        signer: keys::public_hex(&key),
        key_created,
        f32_max_diff,
        identity_spread,
    })
}

#[cfg(test)]
mod tests {
    use facekit::OnnxModel;
    use model_spec::graphs::{fake_detector_graph, max_abs_diff, swap_graph};
    use model_spec::onnx;
    use tch::nn::Module;
    use tch::{Device, Kind, Tensor};

    use super::check::{tch_swap, tract_swap, F32_TOLERANCE};
    use crate::model::fake_detector::FakeDetector;
    use crate::model::net::Autoencoder;
    use crate::model::tensors::{to_vec, weights_of};
    use crate::person::Person;

    /// The tch network and the graph written from the same spec compute the same function
    /// (the ONNX writer itself is judged against a plain reference in model-spec's tests).
    #[test]
    fn tch_and_the_exported_graph_agree_for_every_swap_preset() {
        for name in model_spec::swap::PRESETS {
            let spec = model_spec::swap::preset(name).unwrap();
            let vars = tch::nn::VarStore::new(Device::Cpu);
            let model = Autoencoder::new(&vars.root(), &spec, 2);
            let weights = weights_of(&vars);
            let s = spec.size as i64;
            let x = Tensor::rand([2, 3, s, s], (Kind::Float, Device::Cpu));
            for to in Person::BOTH {
                let graph = swap_graph(&spec, &weights, to.index(), None).unwrap();
                let m = OnnxModel::from_bytes(name, &onnx::to_bytes(&graph), 2, false).unwrap();
                let diff = max_abs_diff(&tract_swap(&m, &x).unwrap(), &tch_swap(&model, &x, to));
                assert!(diff <= F32_TOLERANCE, "{name} decoder {to}: {diff:e}");
            }
        }
    }

    #[test]
    fn tch_and_the_exported_graph_agree_for_every_fake_detector_preset() {
        for name in model_spec::fake_detector::PRESETS {
            let spec = model_spec::fake_detector::preset(name).unwrap();
            let model = FakeDetector::new(&spec, Device::Cpu);
            let s = spec.crop.size as i64;
            let x = Tensor::rand([3, 3, s, s], (Kind::Float, Device::Cpu));
            let want = to_vec(&tch::no_grad(|| model.net.forward(&x)));
            assert_eq!(want.len(), 3);
            let graph = fake_detector_graph(&spec, &weights_of(&model.vars)).unwrap();
            let m = OnnxModel::from_bytes(name, &onnx::to_bytes(&graph), 3, false).unwrap();
            let got = m.run(to_vec(&x)).unwrap().remove(0);
            let diff = max_abs_diff(&got, &want);
            assert!(diff <= F32_TOLERANCE, "{name}: {diff:e}");
        }
    }
}
