//! The one description of every network doppel runs, and the ONNX graphs written from it.
//!
//! [`spec`] describes a network as a list of layers with shapes and costs; [`swap`] names the
//! face-swap autoencoder presets (and the discriminator that trains them), [`fake_detector`] the
//! deepfake detector presets; [`onnx`] writes any spec as an ONNX graph and [`graphs`] assembles
//! the graphs a bundle ships. host-trainer builds its tch model from the same spec, so the
//! trained network and the exported graph cannot drift apart. Nothing here links libtorch:
//! the ONNX writer is tested against a plain-Rust reference of the spec (`tests/`).

pub mod describe;
pub mod fake_detector;
pub mod graphs;
pub mod onnx;
pub mod spec;
pub mod swap;

pub use fake_detector::FakeDetectorSpec;
pub use spec::{
    keep_outside_ellipse, Act, AutoencoderSpec, Layer, NetSpec, Shape, SpecError, DECODER_CHANNELS,
};
