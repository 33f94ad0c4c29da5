//! host-trainer as a library: the CLI in `main.rs` and the benchmarks drive the same code.
//!
//! Modules follow the data flow: [`extract`] turns videos of consenting people into curated,
//! aligned face datasets; [`model`] is the one architecture spec the trainer and the exporter
//! share; training and export build on those.

pub mod aten;
pub mod convert;
pub mod detect;
pub mod detector;
pub mod doctor;
pub mod eval;
pub mod export;
pub mod extract;
pub mod model;
pub mod plot;
pub mod train;

/// The device unit tests run on: `DOPPEL_TEST_DEVICE=cuda` takes the CUDA path of the same code
/// (scripts/gpu/check.sh), anything else the CPU.
#[cfg(test)]
pub(crate) fn test_device() -> tch::Device {
    match std::env::var("DOPPEL_TEST_DEVICE").as_deref() {
        Ok("cuda") => tch::Device::Cuda(0),
        _ => tch::Device::Cpu,
    }
}
