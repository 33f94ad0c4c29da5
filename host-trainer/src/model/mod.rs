//! The tch side of the networks: models built from `model_spec` (the one architecture spec the
//! ONNX writer also reads), the tensor helpers, checkpoints, losses, the optimiser, the device
//! choice and the adapter that lets facekit's swap path call a tch generator.

pub mod aten;
pub mod checkpoint;
pub mod device;
pub mod fake_detector;
pub mod losses;
pub mod net;
pub mod optim;
pub mod swapper;
pub mod tensors;

pub use device::ComputeDevice;
