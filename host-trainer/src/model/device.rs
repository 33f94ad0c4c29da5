//! Where tch runs: `--device auto|cpu|cuda`, the same flag on every command that runs a model.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ComputeDevice {
    /// CUDA when a GPU is visible, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

impl ComputeDevice {
    pub fn resolve(self) -> Result<tch::Device> {
        match self {
            ComputeDevice::Auto => Ok(tch::Device::cuda_if_available()),
            ComputeDevice::Cpu => Ok(tch::Device::Cpu),
            ComputeDevice::Cuda if tch::Cuda::is_available() => Ok(tch::Device::Cuda(0)),
            ComputeDevice::Cuda => Err(Error::NoCuda),
        }
    }
}
