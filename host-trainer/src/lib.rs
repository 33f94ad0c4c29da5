//! host-trainer as a library: the CLI (`src/cli/`) and the benchmarks drive the same code.
//!
//! Layers, each using only the ones below it:
//!
//! - [`stages`]: one module per step of the data flow — `extract` → `train` → `eval` /
//!   `convert` → `fake_detector` (train and evaluate the deepfake detector) → `export` (a signed
//!   bundle), and `detect_fakes` (score a video with a bundle). No stage imports another.
//! - [`artefacts`]: the folders stages hand to each other (dataset, run, fake detector, keys,
//!   bundle), each with its typed reading and writing; [`model`]: the tch networks built from
//!   the `model_spec` crate, tensors, checkpoints, losses, the optimiser.
//! - facekit (face pipeline shared with the booth) and shared-proto (the bundle format).
//!
//! [`Error`] is the one error type; [`Person`] says which side of a run (A or B).

pub mod artefacts;
pub mod error;
pub mod model;
pub mod person;
pub mod plot;
pub mod stages;

pub use error::{Error, Result};
pub use person::Person;

/// The device unit tests run on: `DOPPEL_TEST_DEVICE=cuda` takes the CUDA path of the same code
/// (scripts/gpu/check.sh), anything else the CPU.
#[cfg(test)]
pub(crate) fn test_device() -> tch::Device {
    match std::env::var("DOPPEL_TEST_DEVICE").as_deref() {
        Ok("cuda") => tch::Device::Cuda(0),
        _ => tch::Device::Cpu,
    }
}
